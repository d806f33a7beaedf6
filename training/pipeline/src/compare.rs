//! Two versions of a model side by side: metrics with deltas, DeLong's test
//! of the AUC difference, the shift of the score distribution (PSI), the
//! segment migration matrix, and feature-importance changes. On new
//! labelled data both versions score the same rows; without data the stored
//! held-out metrics are compared (no test, no migration: those need rows).

use presage_models::artifact::{Metrics, ModelArtifact};
use presage_models::metrics::BinaryMetrics;
use presage_models::policy::SegmentPolicy;
use presage_models::stats::{delong, psi, DeLong};
use serde::Serialize;

use crate::scoring::{labelled_rows, score_table, ScoreError};
use presage_data::table::Table;

/// One metric of both versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    /// Metric name (`auc`, `pr_auc`, `log_loss`, `brier`, `ece`, `lift_10`, `lift_20`).
    pub metric: &'static str,
    /// Version A's value.
    pub a: Option<f64>,
    /// Version B's value.
    pub b: Option<f64>,
    /// `b - a`.
    pub delta: Option<f64>,
}

/// How users move between segments from A to B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Migration {
    /// Segment names (rows: under A, columns: under B).
    pub segments: Vec<String>,
    /// `counts[i][j]`: users in segment `i` under A and `j` under B.
    pub counts: Vec<Vec<u64>>,
}

impl Migration {
    /// Users per segment under A (row sums).
    pub fn sizes_a(&self) -> Vec<u64> {
        self.counts.iter().map(|r| r.iter().sum()).collect()
    }

    /// Users per segment under B (column sums).
    pub fn sizes_b(&self) -> Vec<u64> {
        (0..self.segments.len())
            .map(|j| self.counts.iter().map(|r| r[j]).sum())
            .collect()
    }
}

/// A feature whose importance changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportanceChange {
    /// Feature name.
    pub feature: String,
    /// Share of A's total gain (0 if A does not use it).
    pub share_a: f64,
    /// Share of B's total gain.
    pub share_b: f64,
    /// `share_b - share_a`.
    pub delta: f64,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Model name.
    pub model: String,
    /// Version A.
    pub a: u64,
    /// Version B.
    pub b: u64,
    /// What was compared: `stored test metrics` or the data file.
    pub source: String,
    /// Rows scored by both (data only).
    pub rows: Option<u64>,
    /// Metrics side by side.
    pub metrics: Vec<MetricRow>,
    /// DeLong's test of `auc_b - auc_a` (data only).
    pub delong: Option<DeLongSummary>,
    /// PSI of B's probabilities against A's (data only).
    pub score_psi: Option<f64>,
    /// Segment migration (data only).
    pub migration: Option<Migration>,
    /// Where the segments came from.
    pub policy: Option<String>,
    /// The 15 features whose gain share changed most.
    pub importance: Vec<ImportanceChange>,
    /// Labels and both versions' probabilities for the rows scored (data
    /// only; for plots, not printed).
    #[serde(skip)]
    pub scored: Option<ScoredRows>,
}

/// The rows both versions scored.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredRows {
    /// Labels.
    pub labels: Vec<bool>,
    /// Version A's probabilities.
    pub a: Vec<f64>,
    /// Version B's probabilities.
    pub b: Vec<f64>,
}

/// DeLong's test, ready to print.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeLongSummary {
    /// AUC difference (B - A).
    pub difference: f64,
    /// 95% confidence interval.
    pub ci95: [f64; 2],
    /// z statistic.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether p < 0.05.
    pub significant: bool,
}

impl DeLongSummary {
    /// `p = 0.0123`, or `p < 0.0001`.
    pub fn p_text(&self) -> String {
        if self.p_value < 1e-4 {
            "p < 0.0001".to_owned()
        } else {
            format!("p = {:.4}", self.p_value)
        }
    }

    /// Whether the difference is significant at 0.05, in words.
    pub fn verdict(&self) -> &'static str {
        if self.significant {
            "significant at 0.05"
        } else {
            "not significant at 0.05"
        }
    }
}

impl From<DeLong> for DeLongSummary {
    fn from(d: DeLong) -> Self {
        DeLongSummary {
            difference: d.difference,
            ci95: [d.ci95.0, d.ci95.1],
            z: d.z,
            p_value: d.p_value,
            significant: d.p_value < 0.05,
        }
    }
}

/// The binary metrics compared and exported, in report order.
pub const METRIC_NAMES: [&str; 7] = [
    "auc", "pr_auc", "log_loss", "brier", "ece", "lift_10", "lift_20",
];

/// The values of [`METRIC_NAMES`] in `m`.
pub fn metric_values(m: &BinaryMetrics) -> [Option<f64>; 7] {
    [
        m.auc,
        m.pr_auc,
        Some(m.log_loss),
        Some(m.brier),
        Some(m.ece),
        m.lift_10.as_ref().map(|l| l.lift),
        m.lift_20.as_ref().map(|l| l.lift),
    ]
}

fn metric_rows(a: Option<&BinaryMetrics>, b: Option<&BinaryMetrics>) -> Vec<MetricRow> {
    let (va, vb) = (a.map(metric_values), b.map(metric_values));
    METRIC_NAMES
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let x = va.and_then(|v| v[k]);
            let y = vb.and_then(|v| v[k]);
            MetricRow {
                metric: name,
                a: x,
                b: y,
                delta: x.zip(y).map(|(x, y)| y - x),
            }
        })
        .collect()
}

fn importance_changes(a: &ModelArtifact, b: &ModelArtifact) -> Vec<ImportanceChange> {
    let shares = |m: &ModelArtifact| {
        let total: f64 = m.importance.iter().map(|i| i.gain).sum();
        m.importance
            .iter()
            .map(|i| {
                (
                    i.feature.clone(),
                    if total > 0.0 { i.gain / total } else { 0.0 },
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (sa, sb) = (shares(a), shares(b));
    let mut changes: Vec<ImportanceChange> = sa
        .keys()
        .chain(sb.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|f| {
            let (x, y) = (
                sa.get(f).copied().unwrap_or(0.0),
                sb.get(f).copied().unwrap_or(0.0),
            );
            ImportanceChange {
                feature: f.clone(),
                share_a: x,
                share_b: y,
                delta: y - x,
            }
        })
        .collect();
    changes.sort_by(|x, y| {
        y.delta
            .abs()
            .total_cmp(&x.delta.abs())
            .then(x.feature.cmp(&y.feature))
    });
    changes.truncate(15);
    changes
}

fn binary(m: &Option<Metrics>) -> Option<&BinaryMetrics> {
    match m {
        Some(Metrics::Binary(b)) => Some(b),
        _ => None,
    }
}

/// Compares the stored held-out metrics of two versions.
pub fn compare_stored(a: &ModelArtifact, b: &ModelArtifact) -> Comparison {
    Comparison {
        model: a.name.clone(),
        a: a.version,
        b: b.version,
        source: "stored test metrics (each version's own held-out rows)".into(),
        rows: None,
        metrics: metric_rows(binary(&a.evaluation.test), binary(&b.evaluation.test)),
        delong: None,
        score_psi: None,
        migration: None,
        policy: None,
        importance: importance_changes(a, b),
        scored: None,
    }
}

/// Scores `table` (labelled) with both versions and compares them.
/// Segments come from `policies` (A's, B's), each checked against its
/// version's schema by the caller.
pub fn compare_on_data(
    a: &ModelArtifact,
    b: &ModelArtifact,
    table: &Table,
    policies: (&SegmentPolicy, &SegmentPolicy),
) -> Result<Comparison, ScoreError> {
    let (keep, targets) = labelled_rows(table, &a.task)?;
    let y: Vec<bool> = targets.iter().map(|t| *t > 0.5).collect();
    let (scored_a, scored_b) = (score_table(a, table, false)?, score_table(b, table, false)?);
    let (pa, pb): (Vec<f64>, Vec<f64>) = keep
        .iter()
        .map(|&i| (scored_a.probabilities[i], scored_b.probabilities[i]))
        .unzip();
    let (ma, mb) = (
        BinaryMetrics::compute(&y, &pa),
        BinaryMetrics::compute(&y, &pb),
    );
    let names: Vec<String> = policies.0.segments.iter().map(|s| s.name.clone()).collect();
    let names_b: Vec<String> = policies.1.segments.iter().map(|s| s.name.clone()).collect();
    let mut segments = names.clone();
    for n in names_b {
        if !segments.contains(&n) {
            segments.push(n);
        }
    }
    let slot = |name: &str| segments.iter().position(|s| s == name).expect("listed");
    let mut counts = vec![vec![0u64; segments.len()]; segments.len()];
    for (k, &i) in keep.iter().enumerate() {
        let from = policies
            .0
            .assign(pa[k], scored_a.row(i), &a.score_quantiles);
        let to = policies
            .1
            .assign(pb[k], scored_b.row(i), &b.score_quantiles);
        counts[slot(&from.segment.name)][slot(&to.segment.name)] += 1;
    }
    Ok(Comparison {
        model: a.name.clone(),
        a: a.version,
        b: b.version,
        source: table.path.display().to_string(),
        rows: Some(keep.len() as u64),
        metrics: metric_rows(Some(&ma), Some(&mb)),
        delong: delong(&y, &pa, &pb).map(DeLongSummary::from),
        score_psi: psi(&pa, &pb),
        migration: Some(Migration { segments, counts }),
        policy: None,
        importance: importance_changes(a, b),
        scored: Some(ScoredRows {
            labels: y,
            a: pa,
            b: pb,
        }),
    })
}
