//! Drift: how far new data has moved from what a model was trained on,
//! per feature (population stability index over the training histogram
//! stored in the artifact, share of missing values, share of categories
//! never seen in training) and for the predicted scores, with a verdict per
//! feature.

use serde::Serialize;

use crate::artifact::ScoreQuantiles;
use crate::schema::{Feature, FeatureKind, UNSEEN_CATEGORY};
use crate::stats::psi_of_shares;

/// PSI at or above which a feature counts as shifted.
pub const SHIFTED_PSI: f64 = 0.1;

/// A feature's drift verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// PSI below [`SHIFTED_PSI`].
    Stable,
    /// PSI at or above [`SHIFTED_PSI`].
    Shifted,
    /// The feature is mostly missing, or mostly unseen categories, where
    /// it was not in training: the model is scoring blind on it.
    Broken,
}

/// Drift of one feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub feature: String,
    /// PSI over the training bins plus a missing bin (and an unseen bin for categories).
    pub psi: f64,
    /// Share of missing values in training.
    pub missing_train: f64,
    /// Share of missing values now.
    pub missing_now: f64,
    /// Share of categories never seen in training (categorical features).
    pub unseen_now: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

fn shares(counts: &[u64]) -> Vec<f64> {
    let total = counts.iter().sum::<u64>().max(1) as f64;
    counts.iter().map(|&c| c as f64 / total).collect()
}

/// Drift of `feature` (as recorded at training) in `values` (encoded as
/// the model encodes them: NaN missing, categories as codes,
/// [`UNSEEN_CATEGORY`] for new ones).
pub fn feature_drift(feature: &Feature, values: &[f64]) -> FeatureDrift {
    let h = &feature.histogram;
    let categorical = matches!(feature.kind, FeatureKind::Categorical { .. });
    // Bins: the training bins, then missing, then (categorical) unseen.
    let bins = h.counts.len() + 1 + usize::from(categorical);
    let mut train = h.counts.clone();
    train.push(h.missing);
    if categorical {
        train.push(0);
    }
    let mut now = vec![0u64; bins];
    for &x in values {
        let b = if x.is_nan() {
            h.counts.len()
        } else if categorical {
            if x == UNSEEN_CATEGORY || x < 0.0 || x as usize >= h.counts.len() {
                h.counts.len() + 1
            } else {
                x as usize
            }
        } else {
            h.bin_of(x)
        };
        now[b] += 1;
    }
    let (expected, actual) = (shares(&train), shares(&now));
    let missing_train = expected[h.counts.len()];
    let missing_now = actual[h.counts.len()];
    let unseen_now = categorical.then(|| actual[h.counts.len() + 1]);
    let psi = psi_of_shares(&expected, &actual);
    let verdict = if (missing_now > 0.5 && missing_now - missing_train > 0.25)
        || unseen_now.is_some_and(|u| u > 0.5)
    {
        Verdict::Broken
    } else if psi >= SHIFTED_PSI {
        Verdict::Shifted
    } else {
        Verdict::Stable
    };
    FeatureDrift {
        feature: feature.name.clone(),
        psi,
        missing_train,
        missing_now,
        unseen_now,
        verdict,
    }
}

/// PSI of new predicted scores against the stored score distribution,
/// over its deciles.
pub fn score_drift(quantiles: &ScoreQuantiles, scores: &[f64]) -> Option<f64> {
    let q = &quantiles.values;
    if q.len() != 101 || scores.is_empty() {
        return None;
    }
    let edges: Vec<f64> = (1..10).map(|k| q[10 * k]).collect();
    let mut counts = [0u64; 10];
    for &s in scores {
        counts[edges.partition_point(|e| *e < s)] += 1;
    }
    Some(psi_of_shares(&[0.1; 10], &shares(&counts)))
}

/// Drift of a whole data set against a version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    /// Per feature, most drifted first: broken, then shifted, then stable,
    /// each by decreasing PSI.
    pub features: Vec<FeatureDrift>,
    /// PSI of the probabilities against the stored score distribution.
    pub score_psi: Option<f64>,
}

impl DriftReport {
    /// How many features got `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.features
            .iter()
            .filter(|f| f.verdict == verdict)
            .count()
    }
}

/// Drift of `columns` (one per schema feature, encoded as the model
/// encodes them) and of `probabilities` (calibrated, like the stored
/// quantiles) against what `features` and `quantiles` recorded at training.
pub fn report(
    features: &[Feature],
    columns: &[Vec<f64>],
    quantiles: &ScoreQuantiles,
    probabilities: &[f64],
) -> DriftReport {
    let mut drifts: Vec<FeatureDrift> = features
        .iter()
        .zip(columns)
        .map(|(feature, values)| feature_drift(feature, values))
        .collect();
    let rank = |v: Verdict| match v {
        Verdict::Broken => 0,
        Verdict::Shifted => 1,
        Verdict::Stable => 2,
    };
    drifts.sort_by(|a, b| {
        rank(a.verdict)
            .cmp(&rank(b.verdict))
            .then(b.psi.total_cmp(&a.psi))
    });
    DriftReport {
        features: drifts,
        score_psi: score_drift(quantiles, probabilities),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FeatureHistogram, FeatureStats};

    fn numeric() -> Feature {
        Feature {
            name: "x".into(),
            kind: FeatureKind::Numeric,
            stats: FeatureStats {
                rows: 100,
                missing: 0,
                min: 0.0,
                max: 2.0,
                mean: 1.0,
            },
            histogram: FeatureHistogram {
                edges: vec![1.0],
                counts: vec![50, 50],
                missing: 0,
            },
        }
    }

    #[test]
    fn psi_matches_the_hand_computed_value() {
        // Training 50/50 around 1.0; now 80 at or below 1.0 and 20 above:
        // PSI = 0.3 ln(0.8/0.5) + 0.3 ln(0.5/0.2) (the missing bin is empty
        // on both sides and adds nothing).
        let values: Vec<f64> = (0..100).map(|i| if i < 80 { 0.5 } else { 1.5 }).collect();
        let d = feature_drift(&numeric(), &values);
        let expected = 0.3 * (1.6f64).ln() + 0.3 * (2.5f64).ln();
        assert!((d.psi - expected).abs() < 1e-12, "{} vs {expected}", d.psi);
        assert_eq!(d.verdict, Verdict::Shifted);
        let same: Vec<f64> = (0..100).map(|i| if i < 50 { 0.5 } else { 1.5 }).collect();
        let d = feature_drift(&numeric(), &same);
        assert!(d.psi.abs() < 1e-12);
        assert_eq!(d.verdict, Verdict::Stable);
    }

    #[test]
    fn missing_or_unseen_features_are_broken() {
        let d = feature_drift(&numeric(), &[f64::NAN; 10]);
        assert_eq!((d.missing_now, d.verdict), (1.0, Verdict::Broken));
        let category = Feature {
            name: "plan".into(),
            kind: FeatureKind::Categorical {
                categories: vec!["free".into(), "pro".into()],
            },
            stats: FeatureStats {
                rows: 10,
                missing: 0,
                min: f64::NAN,
                max: f64::NAN,
                mean: f64::NAN,
            },
            histogram: FeatureHistogram {
                edges: vec![],
                counts: vec![5, 5],
                missing: 0,
            },
        };
        let d = feature_drift(&category, &[UNSEEN_CATEGORY, UNSEEN_CATEGORY, 0.0]);
        assert_eq!(d.unseen_now, Some(2.0 / 3.0));
        assert_eq!(d.verdict, Verdict::Broken);
    }

    #[test]
    fn score_drift_is_zero_on_the_stored_distribution() {
        let q = ScoreQuantiles {
            source: "valid".into(),
            values: (0..=100).map(|i| i as f64 / 100.0).collect(),
        };
        let scores: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
        assert!(score_drift(&q, &scores).unwrap().abs() < 1e-12);
        let high: Vec<f64> = scores.iter().map(|s| 0.5 + s / 2.0).collect();
        assert!(score_drift(&q, &high).unwrap() > 0.25);
    }
}
