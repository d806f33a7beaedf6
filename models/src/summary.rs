//! What an artifact records about its training data and trees: per-feature
//! statistics and histograms (for drift checks), feature importance, score
//! quantiles and the data fingerprint.

use crate::artifact::{FeatureImportance, ScoreQuantiles};
use crate::ensemble::Ensemble;
use crate::schema::{Feature, FeatureHistogram, FeatureKind, FeatureStats};
use crate::tree::Node;
use sha2::{Digest, Sha256};

/// Numeric histogram bins for drift checks.
const DRIFT_BINS: usize = 20;

/// Builds a schema feature with statistics and a histogram of `values`.
pub fn describe_feature(name: &str, kind: &FeatureKind, values: &[f64]) -> Feature {
    let present: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    let missing = (values.len() - present.len()) as u64;
    let (stats, histogram) = match kind {
        FeatureKind::Numeric => {
            let mut sorted = present.clone();
            sorted.sort_by(f64::total_cmp);
            let mean = if sorted.is_empty() {
                f64::NAN
            } else {
                sorted.iter().sum::<f64>() / sorted.len() as f64
            };
            let mut edges: Vec<f64> = (1..DRIFT_BINS)
                .filter_map(|k| sorted.get(k * sorted.len() / DRIFT_BINS).copied())
                .collect();
            edges.dedup();
            let mut histogram = FeatureHistogram {
                edges,
                counts: Vec::new(),
                missing,
            };
            histogram.counts = vec![0; histogram.edges.len() + 1];
            for x in &sorted {
                let b = histogram.bin_of(*x);
                histogram.counts[b] += 1;
            }
            (
                FeatureStats {
                    rows: values.len() as u64,
                    missing,
                    min: sorted.first().copied().unwrap_or(f64::NAN),
                    max: sorted.last().copied().unwrap_or(f64::NAN),
                    mean,
                },
                histogram,
            )
        }
        FeatureKind::Categorical { categories } => {
            let mut counts = vec![0u64; categories.len()];
            for x in &present {
                if let Some(c) = counts.get_mut(*x as usize) {
                    *c += 1;
                }
            }
            (
                FeatureStats {
                    rows: values.len() as u64,
                    missing,
                    min: f64::NAN,
                    max: f64::NAN,
                    mean: f64::NAN,
                },
                FeatureHistogram {
                    edges: Vec::new(),
                    counts,
                    missing,
                },
            )
        }
    };
    Feature {
        name: name.to_string(),
        kind: kind.clone(),
        stats,
        histogram,
    }
}

/// Gain and split count per feature, most gain first (ties by name).
pub fn importance(ensemble: &Ensemble, names: &[String]) -> Vec<FeatureImportance> {
    let mut gain = vec![0.0; names.len()];
    let mut splits = vec![0u64; names.len()];
    for tree in &ensemble.trees {
        for node in &tree.nodes {
            if let Node::Split {
                feature, gain: g, ..
            } = node
            {
                gain[*feature as usize] += g;
                splits[*feature as usize] += 1;
            }
        }
    }
    let mut out: Vec<FeatureImportance> = names
        .iter()
        .enumerate()
        .map(|(i, n)| FeatureImportance {
            feature: n.clone(),
            gain: gain[i],
            splits: splits[i],
        })
        .collect();
    out.sort_by(|a, b| b.gain.total_cmp(&a.gain).then(a.feature.cmp(&b.feature)));
    out
}

/// The 0th..100th percentiles of `scores` (linear interpolation).
pub fn score_quantiles(scores: &[f64], source: &str) -> ScoreQuantiles {
    let mut sorted: Vec<f64> = scores.iter().copied().filter(|x| !x.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let values = if sorted.is_empty() {
        Vec::new()
    } else {
        (0..=100)
            .map(|k| {
                let pos = k as f64 / 100.0 * (sorted.len() - 1) as f64;
                let lo = pos.floor() as usize;
                let hi = pos.ceil() as usize;
                sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
            })
            .collect()
    };
    ScoreQuantiles {
        source: source.to_string(),
        values,
    }
}

/// SHA-256 over feature names, kinds, values and the target.
pub fn fingerprint(
    names: &[String],
    kinds: &[FeatureKind],
    columns: &[Vec<f64>],
    target: &[f64],
) -> String {
    let mut hasher = Sha256::new();
    for ((name, kind), values) in names.iter().zip(kinds).zip(columns) {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        if let FeatureKind::Categorical { categories } = kind {
            for c in categories {
                hasher.update(c.as_bytes());
                hasher.update([0]);
            }
        }
        for v in values {
            hasher.update(v.to_bits().to_le_bytes());
        }
    }
    for y in target {
        hasher.update(y.to_bits().to_le_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
