//! # presage-notebooks-export
//!
//! `presage-export MODEL --versions 6,7 [--data FILE] --out DIR` writes, for
//! data scientists who work in notebooks, what the comparison report shows:
//!
//! - `metrics.parquet` (version, metric, value): on `--data` if given, else
//!   the stored test metrics;
//! - `importance.parquet` (version, feature, gain, share);
//! - with `--data`: `scores.parquet` (row, id, label, version, probability,
//!   segment), `curves.parquet` (version, curve, x, y: ROC, precision-recall,
//!   cumulative gain) and `shap.parquet` (version, row, feature,
//!   contribution) for a sample of rows;
//! - `compare.ipynb`, an nbformat 4 notebook that loads them with pandas and
//!   draws the plots with matplotlib.
//!
//! It may depend on `presage-models` (artifacts, curves, SHAP),
//! `presage-data` (Parquet) and `presage-pipeline` (scoring a table, the
//! comparison's metric names), and on nothing that renders HTML.

pub mod notebook;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use presage_data::table::{read_table, write_table, Column, ColumnData, Table};
use presage_models::artifact::{Metrics, ModelArtifact};
use presage_models::curves::curves;
use presage_models::metrics::BinaryMetrics;
use presage_models::policy::{policy_file, SegmentPolicy};
use presage_models::registry::{Registry, VersionSelector};
use presage_models::shap::contributions;
use presage_pipeline::compare::{metric_values, METRIC_NAMES};
use presage_pipeline::scoring::{labelled_rows, score_table};

/// Rows whose SHAP values are exported (the first ones of the data).
pub const SHAP_ROWS: usize = 200;

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    /// Files written, in order.
    pub files: Vec<PathBuf>,
}

fn numeric(name: &str, values: Vec<f64>) -> Column {
    Column {
        name: name.into(),
        data: ColumnData::Numeric(values),
    }
}

fn text(name: &str, values: Vec<String>) -> Column {
    Column {
        name: name.into(),
        data: ColumnData::Text(values.into_iter().map(Some).collect()),
    }
}

/// Exports `versions` of `model` from `registry` into `out`.
pub fn export(
    registry: &Path,
    model: &str,
    versions: &[u64],
    data: Option<&Path>,
    out: &Path,
) -> anyhow::Result<Exported> {
    if versions.is_empty() {
        bail!("--versions lists no version; give e.g. --versions 6,7");
    }
    let reg = Registry::new(registry);
    let artifacts: Vec<ModelArtifact> = versions
        .iter()
        .map(|&v| reg.load(model, &VersionSelector::Version(v)))
        .collect::<Result<_, _>>()?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut files = Vec::new();
    let mut write = |name: &str, columns: Vec<Column>| -> anyhow::Result<()> {
        let path = out.join(name);
        write_table(&path, &columns)?;
        files.push(path);
        Ok(())
    };
    let table: Option<Table> = data.map(read_table).transpose()?;

    let (mut mv, mut mm, mut mx) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sr, mut sid, mut sy, mut sv, mut sp, mut ss) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut cv, mut cc, mut cx, mut cy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut hv, mut hr, mut hf, mut hc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in &artifacts {
        let v = a.version as f64;
        let measured = match &table {
            None => match &a.evaluation.test {
                Some(Metrics::Binary(m)) => m.clone(),
                _ => bail!(
                    "{model} v{}: no stored binary test metrics; give --data",
                    a.version
                ),
            },
            Some(table) => {
                let (keep, targets) = labelled_rows(table, &a.task)?;
                let scored = score_table(a, table, false)?;
                let probs = &scored.probabilities;
                let file = policy_file(None, registry, model);
                let policy = SegmentPolicy::load_or_default(file.as_deref(), &a.schema)?;
                let id = a.id_column.as_ref().and_then(|c| table.column(c));
                for (&i, &target) in keep.iter().zip(&targets) {
                    let seg = policy.assign(probs[i], scored.row(i), &a.score_quantiles);
                    sr.push(i as f64);
                    sid.push(
                        id.and_then(|c| c.data.text(i))
                            .unwrap_or_else(|| i.to_string()),
                    );
                    sy.push(target);
                    sv.push(v);
                    sp.push(probs[i]);
                    ss.push(seg.segment.name.clone());
                }
                let y: Vec<bool> = targets.iter().map(|t| *t > 0.5).collect();
                let p: Vec<f64> = keep.iter().map(|&i| probs[i]).collect();
                let (roc, pr, gain) = curves(&y, &p);
                for (name, points) in [("roc", roc), ("pr", pr), ("gain", gain)] {
                    for (x, yv) in points {
                        cv.push(v);
                        cc.push(name.to_owned());
                        cx.push(x);
                        cy.push(yv);
                    }
                }
                for &i in keep.iter().take(SHAP_ROWS) {
                    let contrib = contributions(&a.ensemble, scored.row(i));
                    for (f, feature) in a.schema.features.iter().enumerate() {
                        hv.push(v);
                        hr.push(i as f64);
                        hf.push(feature.name.clone());
                        hc.push(contrib[f]);
                    }
                }
                BinaryMetrics::compute(&y, &p)
            }
        };
        for (name, value) in METRIC_NAMES.iter().zip(metric_values(&measured)) {
            mv.push(v);
            mm.push((*name).to_owned());
            mx.push(value.unwrap_or(f64::NAN));
        }
    }
    write(
        "metrics.parquet",
        vec![
            numeric("version", mv),
            text("metric", mm),
            numeric("value", mx),
        ],
    )?;
    let (mut iv, mut ifeat, mut ig, mut is) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in &artifacts {
        let total: f64 = a.importance.iter().map(|i| i.gain).sum();
        for i in &a.importance {
            iv.push(a.version as f64);
            ifeat.push(i.feature.clone());
            ig.push(i.gain);
            is.push(if total > 0.0 { i.gain / total } else { 0.0 });
        }
    }
    write(
        "importance.parquet",
        vec![
            numeric("version", iv),
            text("feature", ifeat),
            numeric("gain", ig),
            numeric("share", is),
        ],
    )?;
    if table.is_some() {
        write(
            "scores.parquet",
            vec![
                numeric("row", sr),
                text("id", sid),
                numeric("label", sy),
                numeric("version", sv),
                numeric("probability", sp),
                text("segment", ss),
            ],
        )?;
        write(
            "curves.parquet",
            vec![
                numeric("version", cv),
                text("curve", cc),
                numeric("x", cx),
                numeric("y", cy),
            ],
        )?;
        write(
            "shap.parquet",
            vec![
                numeric("version", hv),
                numeric("row", hr),
                text("feature", hf),
                numeric("contribution", hc),
            ],
        )?;
    }
    let path = out.join("compare.ipynb");
    let text = serde_json::to_string_pretty(&notebook::notebook(model, versions))?;
    presage_models::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    files.push(path);
    Ok(Exported { files })
}
