//! Human and machine reports of metrics: aligned terminal tables and JSON
//! objects with stable field names.

use presage_models::artifact::{Metrics, ModelArtifact};
use serde_json::{json, Value};

/// Metrics as a flat JSON object (`auc`, `pr_auc`, `log_loss`, `brier`, `ece`,
/// `lift_10`, `capture_10`, `lift_20`, `capture_20`, or regression metrics).
pub fn metrics_json(metrics: &Metrics) -> Value {
    match metrics {
        Metrics::Binary(m) => json!({
            "rows": m.rows,
            "positives": m.positives,
            "auc": m.auc,
            "pr_auc": m.pr_auc,
            "log_loss": m.log_loss,
            "brier": m.brier,
            "ece": m.ece,
            "lift_10": m.lift_10.as_ref().map(|l| l.lift),
            "capture_10": m.lift_10.as_ref().map(|l| l.capture_rate),
            "lift_20": m.lift_20.as_ref().map(|l| l.lift),
            "capture_20": m.lift_20.as_ref().map(|l| l.capture_rate),
        }),
        Metrics::Regression(m) => {
            json!({ "rows": m.rows, "rmse": m.rmse, "mae": m.mae, "r2": m.r2 })
        }
    }
}

fn cell(value: Option<f64>) -> String {
    value
        .filter(|v| v.is_finite())
        .map_or("-".into(), |v| format!("{v:.4}"))
}

/// Header and cells of one metrics row.
fn metric_cells(metrics: &Metrics) -> (Vec<&'static str>, Vec<String>) {
    match metrics {
        Metrics::Binary(m) => (
            vec![
                "rows",
                "auc",
                "pr_auc",
                "log_loss",
                "brier",
                "ece",
                "lift@10%",
                "capture@10%",
                "lift@20%",
            ],
            vec![
                m.rows.to_string(),
                cell(m.auc),
                cell(m.pr_auc),
                cell(Some(m.log_loss)),
                cell(Some(m.brier)),
                cell(Some(m.ece)),
                cell(m.lift_10.as_ref().map(|l| l.lift)),
                cell(m.lift_10.as_ref().map(|l| l.capture_rate)),
                cell(m.lift_20.as_ref().map(|l| l.lift)),
            ],
        ),
        Metrics::Regression(m) => (
            vec!["rows", "rmse", "mae", "r2"],
            vec![
                m.rows.to_string(),
                cell(Some(m.rmse)),
                cell(Some(m.mae)),
                cell(Some(m.r2)),
            ],
        ),
    }
}

/// An aligned table of named metric rows.
pub fn metrics_table(rows: &[(String, &Metrics)]) -> String {
    let Some((_, first)) = rows.first() else {
        return String::new();
    };
    let (header, _) = metric_cells(first);
    let mut lines: Vec<Vec<String>> = vec![std::iter::once("split".to_string())
        .chain(header.iter().map(|h| h.to_string()))
        .collect()];
    for (name, metrics) in rows {
        let (_, cells) = metric_cells(metrics);
        lines.push(std::iter::once(name.clone()).chain(cells).collect());
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c == 0 {
                    format!("{v:<w$}", w = widths[c])
                } else {
                    format!("{v:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The evaluation rows of an artifact: train/valid/test and baselines.
pub fn evaluation_rows(artifact: &ModelArtifact) -> Vec<(String, &Metrics)> {
    let e = &artifact.evaluation;
    let mut rows: Vec<(String, &Metrics)> = Vec::new();
    for (name, m) in [("train", &e.train), ("valid", &e.valid), ("test", &e.test)] {
        if let Some(m) = m {
            rows.push((name.to_string(), m));
        }
    }
    for b in &e.baselines {
        rows.push((format!("test: {}", b.name), &b.test));
    }
    rows
}
