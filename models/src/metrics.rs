//! Evaluation metrics for binary classifiers and regressors.
//!
//! Everything here is a pure function of `labels: &[bool]` (the positive
//! class is `true`) and `scores`/`probs: &[f64]`, and is deterministic: the
//! same input gives bit-identical output, independently of thread count.
//!
//! Design notes:
//! - Ranking metrics ([`roc_auc`], [`pr_auc`]) sort once (`O(n log n)`) and
//!   walk groups of tied scores. [`roc_auc`] is the Mann–Whitney statistic
//!   with mid-ranks for ties, accumulated as an exact integer (twice the U
//!   statistic in `u128`), so it equals the brute-force pairwise count with
//!   ties worth ½. [`pr_auc`] is scikit-learn's `average_precision_score`:
//!   `Σ (R_k − R_{k−1}) · P_k` over distinct score thresholds, high to low.
//! - [`lift_at`] selects the top `ceil(fraction · n)` rows in `O(n)` with a
//!   total order (score descending, then original index ascending), which is
//!   exactly the prefix of a stable descending sort.
//! - Degenerate input never panics. Functions returning `Option` give `None`
//!   and functions returning `f64` give `NaN` when the input is empty, when
//!   `labels` and the scores differ in length, or when a score is `NaN`
//!   (for the ranking metrics, where no order exists). Check the documented
//!   conditions on each function.
//! - [`BinaryMetrics`] and [`RegressionMetrics`] are stored inside bincode-2
//!   model artifacts, so they use plain serde derives only (no
//!   `skip_serializing_if`, `flatten` or `untagged`). Note that JSON cannot
//!   represent `NaN`: serde_json writes it as `null`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Probabilities are clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` in [`log_loss`].
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Lift and capture rate of the top `fraction` of rows ranked by score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiftAt {
    /// Requested fraction of rows, in `(0, 1]`.
    pub fraction: f64,
    /// Positive rate among the top rows divided by the overall positive rate.
    pub lift: f64,
    /// Share of all positives that fall in the top rows.
    pub capture_rate: f64,
}

/// The standard set of binary-classification metrics for one data split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    /// Number of rows evaluated.
    pub rows: u64,
    /// Number of positive rows.
    pub positives: u64,
    /// ROC-AUC (`None` when only one class is present).
    pub auc: Option<f64>,
    /// Average precision (`None` without positives).
    pub pr_auc: Option<f64>,
    /// Mean binary cross-entropy (probabilities clipped, see [`log_loss`]).
    pub log_loss: f64,
    /// Mean squared error of the probabilities.
    pub brier: f64,
    /// Expected calibration error over 10 equal-width bins.
    pub ece: f64,
    /// Lift in the top 10% of rows (`None` without positives).
    pub lift_10: Option<LiftAt>,
    /// Lift in the top 20% of rows (`None` without positives).
    pub lift_20: Option<LiftAt>,
}

impl BinaryMetrics {
    /// Computes every binary metric; degenerate inputs give `None`/`NaN` fields as documented per metric.
    pub fn compute(labels: &[bool], probs: &[f64]) -> BinaryMetrics {
        BinaryMetrics {
            rows: labels.len() as u64,
            positives: count_positives(labels),
            auc: roc_auc(labels, probs),
            pr_auc: pr_auc(labels, probs),
            log_loss: log_loss(labels, probs),
            brier: brier(labels, probs),
            ece: expected_calibration_error(labels, probs, 10),
            lift_10: lift_at(labels, probs, 0.1),
            lift_20: lift_at(labels, probs, 0.2),
        }
    }
}

/// The standard set of regression metrics for one data split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Number of rows evaluated.
    pub rows: u64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Coefficient of determination (scikit-learn's `r2_score`).
    pub r2: f64,
}

impl RegressionMetrics {
    /// Computes RMSE, MAE and R²; empty or length-mismatched input gives `NaN` metrics.
    ///
    /// With constant targets R² is 1 for a perfect fit and 0 otherwise, as
    /// scikit-learn's `r2_score` (with `force_finite=True`).
    pub fn compute(targets: &[f64], preds: &[f64]) -> RegressionMetrics {
        let rows = targets.len() as u64;
        if targets.is_empty() || targets.len() != preds.len() {
            return RegressionMetrics {
                rows,
                rmse: f64::NAN,
                mae: f64::NAN,
                r2: f64::NAN,
            };
        }
        let n = targets.len() as f64;
        let mean = targets.iter().sum::<f64>() / n;
        let (mut ss_res, mut ss_tot, mut abs) = (0.0, 0.0, 0.0);
        for (&t, &p) in targets.iter().zip(preds) {
            let e = t - p;
            ss_res += e * e;
            abs += e.abs();
            ss_tot += (t - mean) * (t - mean);
        }
        let r2 = if ss_tot == 0.0 {
            if ss_res == 0.0 {
                1.0
            } else {
                0.0
            }
        } else {
            1.0 - ss_res / ss_tot
        };
        RegressionMetrics {
            rows,
            rmse: (ss_res / n).sqrt(),
            mae: abs / n,
            r2,
        }
    }
}

/// ROC-AUC by the Mann–Whitney rank statistic with mid-ranks for ties.
///
/// `None` if only one class is present (including empty input), if the
/// lengths differ, or if any score is `NaN`.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    if !rankable(labels, scores) {
        return None;
    }
    let order = sorted_order(scores, Ordering::Less);
    // Twice the U statistic: each positive scores 2 per negative ranked below
    // it and 1 per negative tied with it.
    let mut twice_u: u128 = 0;
    let (mut neg_below, mut n_pos) = (0u64, 0u64);
    for_each_tie_group(&order, labels, scores, |pos, neg| {
        twice_u += u128::from(pos) * u128::from(2 * neg_below + neg);
        neg_below += neg;
        n_pos += pos;
    });
    let n_neg = neg_below;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    Some(twice_u as f64 / (2.0 * n_pos as f64 * n_neg as f64))
}

/// Average precision, as scikit-learn's `average_precision_score`.
///
/// Step-wise: `Σ (R_k − R_{k−1}) · P_k` over distinct score thresholds from
/// high to low, tied scores entering together. `None` without positives
/// (including empty input), if the lengths differ, or if any score is `NaN`.
pub fn pr_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    if !rankable(labels, scores) {
        return None;
    }
    let total_pos = count_positives(labels);
    if total_pos == 0 {
        return None;
    }
    let order = sorted_order(scores, Ordering::Greater);
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut ap = 0.0;
    for_each_tie_group(&order, labels, scores, |pos, neg| {
        tp += pos;
        fp += neg;
        if pos > 0 {
            let recall_step = pos as f64 / total_pos as f64;
            let precision = tp as f64 / (tp + fp) as f64;
            ap += recall_step * precision;
        }
    });
    Some(ap)
}

/// Mean binary cross-entropy (natural log), probabilities clipped to `[1e-15, 1 - 1e-15]`.
///
/// `NaN` for empty or length-mismatched input, or if a probability is `NaN`.
pub fn log_loss(labels: &[bool], probs: &[f64]) -> f64 {
    if labels.is_empty() || labels.len() != probs.len() {
        return f64::NAN;
    }
    let total: f64 = labels
        .iter()
        .zip(probs)
        .map(|(&y, &p)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            if y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    total / labels.len() as f64
}

/// Brier score: mean of `(p − y)²`.
///
/// `NaN` for empty or length-mismatched input, or if a probability is `NaN`.
pub fn brier(labels: &[bool], probs: &[f64]) -> f64 {
    if labels.is_empty() || labels.len() != probs.len() {
        return f64::NAN;
    }
    let total: f64 = labels
        .iter()
        .zip(probs)
        .map(|(&y, &p)| {
            let e = p - f64::from(u8::from(y));
            e * e
        })
        .sum();
    total / labels.len() as f64
}

/// Expected calibration error over `bins` equal-width bins of `[0, 1]`.
///
/// Bin `i` holds probabilities in `[i/bins, (i+1)/bins)`; `1.0` (and anything
/// above) goes to the last bin, anything below `0` to the first. The result is
/// `Σ_b (n_b / n) · |mean(label_b) − mean(prob_b)|`. `NaN` for empty or
/// length-mismatched input, `bins == 0`, or a `NaN` probability.
pub fn expected_calibration_error(labels: &[bool], probs: &[f64], bins: usize) -> f64 {
    if bins == 0 || labels.is_empty() || labels.len() != probs.len() {
        return f64::NAN;
    }
    if probs.iter().any(|p| p.is_nan()) {
        return f64::NAN;
    }
    let bin_of = |p: f64| -> usize {
        if p > 0.0 {
            // `as` saturates, so huge values land in the last bin too.
            ((p * bins as f64) as usize).min(bins - 1)
        } else {
            0
        }
    };
    // Per-bin (Σ label, Σ prob), summed in row order, then over bins in order.
    // A dense vector when it is no larger than the input, else a sparse map so
    // a huge `bins` cannot force a huge allocation.
    let gap_sum: f64 = if bins <= labels.len() {
        let mut sums = vec![(0.0f64, 0.0f64); bins];
        for (&y, &p) in labels.iter().zip(probs) {
            let s = &mut sums[bin_of(p)];
            s.0 += f64::from(u8::from(y));
            s.1 += p;
        }
        sums.iter().map(|(sy, sp)| (sy - sp).abs()).sum()
    } else {
        let mut sums: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
        for (&y, &p) in labels.iter().zip(probs) {
            let s = sums.entry(bin_of(p)).or_insert((0.0, 0.0));
            s.0 += f64::from(u8::from(y));
            s.1 += p;
        }
        sums.values().map(|(sy, sp)| (sy - sp).abs()).sum()
    };
    gap_sum / labels.len() as f64
}

/// Lift and capture rate of the top `ceil(fraction · n)` rows by score.
///
/// Ties are broken by original index (earlier rows first), as a stable
/// descending sort would. `fraction · n` within `1e-9` (relative) of an
/// integer counts as that integer, so floating-point noise such as
/// `0.1 · 30 = 3.0000000000000004` does not add a row. At least one row is
/// always taken. `None` if `fraction` is not in `(0, 1]`, there are no
/// positives (including empty input), the lengths differ, or a score is `NaN`.
pub fn lift_at(labels: &[bool], scores: &[f64], fraction: f64) -> Option<LiftAt> {
    let fraction_ok = fraction > 0.0 && fraction <= 1.0; // false for NaN
    if !fraction_ok || !rankable(labels, scores) {
        return None;
    }
    let total_pos = count_positives(labels);
    if total_pos == 0 {
        return None;
    }
    let n = labels.len();
    let k = top_count(fraction, n);
    let mut order: Vec<usize> = (0..n).collect();
    if k < n {
        order.select_nth_unstable_by(k - 1, |&a, &b| {
            cmp_f64(scores[b], scores[a]).then(a.cmp(&b))
        });
    }
    let top_pos = order[..k].iter().filter(|&&i| labels[i]).count() as f64;
    let total_pos = total_pos as f64;
    Some(LiftAt {
        fraction,
        lift: (top_pos / k as f64) / (total_pos / n as f64),
        capture_rate: top_pos / total_pos,
    })
}

/// Number of `true` labels.
fn count_positives(labels: &[bool]) -> u64 {
    labels.iter().filter(|&&y| y).count() as u64
}

/// Whether a ranking metric can be computed: equal lengths and no `NaN` score.
fn rankable(labels: &[bool], scores: &[f64]) -> bool {
    labels.len() == scores.len() && !scores.iter().any(|s| s.is_nan())
}

/// Orders two non-`NaN` floats (`-0.0 == 0.0`).
#[inline]
fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Row indices sorted by score: ascending for `Less`, descending for `Greater`.
fn sorted_order(scores: &[f64], direction: Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    if direction == Ordering::Greater {
        order.sort_unstable_by(|&a, &b| cmp_f64(scores[b], scores[a]));
    } else {
        order.sort_unstable_by(|&a, &b| cmp_f64(scores[a], scores[b]));
    }
    order
}

/// Calls `f(positives, negatives)` for each run of equal scores in `order`.
fn for_each_tie_group(
    order: &[usize],
    labels: &[bool],
    scores: &[f64],
    mut f: impl FnMut(u64, u64),
) {
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        let (mut pos, mut neg) = (0u64, 0u64);
        while i < order.len() && scores[order[i]] == s {
            if labels[order[i]] {
                pos += 1;
            } else {
                neg += 1;
            }
            i += 1;
        }
        f(pos, neg);
    }
}

/// `ceil(fraction · n)` tolerant of floating-point noise, clamped to `[1, n]` (`n ≥ 1`).
fn top_count(fraction: f64, n: usize) -> usize {
    let x = fraction * n as f64;
    let r = x.round();
    let k = if (x - r).abs() <= 1e-9 * r.max(1.0) {
        r
    } else {
        x.ceil()
    };
    (k as usize).clamp(1, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (Knuth's MMIX LCG).
    struct Lcg(u64);

    impl Lcg {
        fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 11
        }

        fn next_f64(&mut self) -> f64 {
            self.next_u64() as f64 / (1u64 << 53) as f64
        }
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    fn brute_force_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &yi) in labels.iter().enumerate() {
            for (j, &yj) in labels.iter().enumerate() {
                if yi && !yj {
                    pairs += 1.0;
                    if scores[i] > scores[j] {
                        wins += 1.0;
                    } else if scores[i] == scores[j] {
                        wins += 0.5;
                    }
                }
            }
        }
        (pairs > 0.0).then(|| wins / pairs)
    }

    /// AP by definition: for each distinct threshold (high to low), precision
    /// and recall of `score >= t`, summing precision times recall increase.
    fn brute_force_ap(labels: &[bool], scores: &[f64]) -> Option<f64> {
        let total_pos = labels.iter().filter(|&&y| y).count() as f64;
        if total_pos == 0.0 {
            return None;
        }
        let mut thresholds: Vec<f64> = scores.to_vec();
        thresholds.sort_by(|a, b| b.partial_cmp(a).unwrap());
        thresholds.dedup();
        let (mut ap, mut prev_recall) = (0.0, 0.0);
        for t in thresholds {
            let (mut tp, mut fp) = (0.0, 0.0);
            for (&y, &s) in labels.iter().zip(scores) {
                if s >= t {
                    if y {
                        tp += 1.0;
                    } else {
                        fp += 1.0;
                    }
                }
            }
            let recall = tp / total_pos;
            ap += (recall - prev_recall) * tp / (tp + fp);
            prev_recall = recall;
        }
        Some(ap)
    }

    fn random_case(rng: &mut Lcg, n: usize, levels: u64, pos_rate: f64) -> (Vec<bool>, Vec<f64>) {
        let labels: Vec<bool> = (0..n).map(|_| rng.next_f64() < pos_rate).collect();
        let scores: Vec<f64> = (0..n)
            .map(|_| (rng.next_u64() % levels) as f64 / levels as f64)
            .collect();
        (labels, scores)
    }

    #[test]
    fn auc_matches_brute_force_with_ties() {
        let mut rng = Lcg(42);
        for case in 0..300 {
            let n = 1 + case % 60;
            let levels = 1 + (case as u64 % 7);
            let pos_rate = [0.05, 0.3, 0.5, 0.9][case % 4];
            let (labels, scores) = random_case(&mut rng, n, levels, pos_rate);
            let fast = roc_auc(&labels, &scores);
            let slow = brute_force_auc(&labels, &scores);
            match (fast, slow) {
                (Some(a), Some(b)) => assert!(close(a, b, 1e-12), "case {case}: {a} vs {b}"),
                (None, None) => {}
                other => panic!("case {case}: {other:?}"),
            }
        }
    }

    #[test]
    fn auc_edge_cases() {
        assert_eq!(roc_auc(&[], &[]), None);
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
        assert_eq!(roc_auc(&[false, false], &[0.1, 0.2]), None);
        assert_eq!(roc_auc(&[true, false], &[0.1]), None);
        assert_eq!(roc_auc(&[true, false], &[f64::NAN, 0.2]), None);
        assert_eq!(roc_auc(&[false, true], &[0.1, 0.9]), Some(1.0));
        assert_eq!(roc_auc(&[true, false], &[0.1, 0.9]), Some(0.0));
        assert_eq!(roc_auc(&[true, false, true], &[0.5, 0.5, 0.5]), Some(0.5));
        // -0.0 and 0.0 are a tie.
        assert_eq!(roc_auc(&[true, false], &[-0.0, 0.0]), Some(0.5));
    }

    #[test]
    fn average_precision_matches_sklearn_examples() {
        // sklearn's average_precision_score docstring example.
        let ap = pr_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert!(close(ap, 5.0 / 6.0, 1e-12), "{ap}");
        // Ties enter together: thresholds 0.5 (tp 1, fp 1), then 0.2 (tp 2, fp 1).
        let ap = pr_auc(&[true, false, true], &[0.5, 0.5, 0.2]).unwrap();
        assert!(close(ap, 0.5 * 0.5 + 0.5 * 2.0 / 3.0, 1e-12), "{ap}");
        // Perfect ranking and a single class.
        assert_eq!(pr_auc(&[true, false], &[0.9, 0.1]), Some(1.0));
        assert_eq!(pr_auc(&[true, true], &[0.9, 0.1]), Some(1.0));
        assert_eq!(pr_auc(&[false, false], &[0.9, 0.1]), None);
        assert_eq!(pr_auc(&[], &[]), None);
        // Worst ranking: the positive comes last, precision 1/3 at recall 1.
        let ap = pr_auc(&[false, false, true], &[0.9, 0.8, 0.1]).unwrap();
        assert!(close(ap, 1.0 / 3.0, 1e-12));
    }

    #[test]
    fn average_precision_matches_brute_force() {
        let mut rng = Lcg(7);
        for case in 0..200 {
            let n = 1 + case % 40;
            let levels = 1 + (case as u64 % 9);
            let (labels, scores) = random_case(&mut rng, n, levels, 0.4);
            let fast = pr_auc(&labels, &scores);
            let slow = brute_force_ap(&labels, &scores);
            match (fast, slow) {
                (Some(a), Some(b)) => assert!(close(a, b, 1e-12), "case {case}: {a} vs {b}"),
                (None, None) => {}
                other => panic!("case {case}: {other:?}"),
            }
        }
    }

    #[test]
    fn log_loss_and_brier_by_hand() {
        let ll = log_loss(&[true, false], &[0.8, 0.3]);
        assert!(close(ll, -(0.8f64.ln() + 0.7f64.ln()) / 2.0, 1e-12));
        // Clipping keeps a confident mistake finite: -ln(1e-15) ≈ 34.54.
        let ll = log_loss(&[false], &[1.0]);
        assert!(ll.is_finite() && close(ll, -(1e-15f64).ln(), 0.01), "{ll}");
        let ll = log_loss(&[true], &[0.0]);
        assert!(close(ll, -(1e-15f64).ln(), 1e-9), "{ll}");
        assert!(log_loss(&[], &[]).is_nan());
        assert!(log_loss(&[true], &[0.5, 0.5]).is_nan());

        let b = brier(&[true, false, true], &[0.9, 0.2, 0.4]);
        assert!(close(b, (0.01 + 0.04 + 0.36) / 3.0, 1e-12));
        assert!(brier(&[], &[]).is_nan());
    }

    #[test]
    fn ece_by_hand() {
        // Two bins: [0, .5) holds .2 and .4 (mean .3, label mean .5) and
        // [.5, 1] holds .6 and 1.0 (mean .8, label mean 1): .5·.2 + .5·.2.
        let e = expected_calibration_error(&[false, true, true, true], &[0.2, 0.4, 0.6, 1.0], 2);
        assert!(close(e, 0.2, 1e-12), "{e}");
        // Perfect calibration within one bin.
        let e = expected_calibration_error(&[true, false], &[0.5, 0.5], 1);
        assert!(close(e, 0.0, 1e-15));
        // 1.0 lands in the last bin rather than out of range.
        let e = expected_calibration_error(&[true], &[1.0], 10);
        assert!(close(e, 0.0, 1e-15));
        // More bins than rows uses the sparse path and agrees with the dense one.
        let labels = [false, true, true, false, true];
        let probs = [0.11, 0.52, 0.93, 0.34, 0.75];
        let dense = expected_calibration_error(&labels, &probs, 5);
        let sparse_same_edges = expected_calibration_error(&labels, &probs, 5_000_000);
        // With one row per bin the gap is the mean |y - p|.
        let mean_abs: f64 = labels
            .iter()
            .zip(&probs)
            .map(|(&y, &p)| (f64::from(u8::from(y)) - p).abs())
            .sum::<f64>()
            / 5.0;
        assert!(close(dense, mean_abs, 1e-12));
        assert!(close(sparse_same_edges, mean_abs, 1e-12));
        assert!(close(
            expected_calibration_error(&labels, &probs, usize::MAX),
            mean_abs,
            1e-12
        ));
        assert!(expected_calibration_error(&labels, &probs, 0).is_nan());
        assert!(expected_calibration_error(&[], &[], 10).is_nan());
        assert!(expected_calibration_error(&[true], &[f64::NAN], 10).is_nan());
    }

    #[test]
    fn lift_by_hand() {
        // 10 rows, 3 positives (rate .3). Scores descending with a tie at .8
        // between rows 1 (positive) and 2 (negative); the earlier row wins.
        let labels = [
            true, true, false, false, true, false, false, false, false, false,
        ];
        let scores = [0.9, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
        let l = lift_at(&labels, &scores, 0.2).unwrap();
        assert_eq!(l.fraction, 0.2);
        assert!(close(l.lift, 1.0 / 0.3, 1e-12));
        assert!(close(l.capture_rate, 2.0 / 3.0, 1e-12));
        // Swap the tied rows' labels: now the negative comes first.
        let labels2 = [
            true, false, true, false, true, false, false, false, false, false,
        ];
        let l = lift_at(&labels2, &scores, 0.2).unwrap();
        assert!(close(l.lift, 0.5 / 0.3, 1e-12));
        // ceil(0.25 · 10) = 3 rows.
        let l = lift_at(&labels, &scores, 0.25).unwrap();
        assert!(close(l.capture_rate, 2.0 / 3.0, 1e-12));
        assert!(close(l.lift, (2.0 / 3.0) / 0.3, 1e-12));
        // Whole population: lift 1, capture 1.
        let l = lift_at(&labels, &scores, 1.0).unwrap();
        assert!(close(l.lift, 1.0, 1e-12) && close(l.capture_rate, 1.0, 1e-12));
        // A tiny fraction still takes one row.
        let l = lift_at(&labels, &scores, 1e-9).unwrap();
        assert!(close(l.capture_rate, 1.0 / 3.0, 1e-12));
        assert_eq!(lift_at(&labels, &scores, 0.0), None);
        assert_eq!(lift_at(&labels, &scores, 1.5), None);
        assert_eq!(lift_at(&labels, &scores, f64::NAN), None);
        assert_eq!(lift_at(&[false, false], &[0.1, 0.2], 0.5), None);
        assert_eq!(lift_at(&[], &[], 0.5), None);
    }

    #[test]
    fn lift_top_count_ignores_float_noise() {
        assert_eq!(top_count(0.1, 30), 3);
        assert_eq!(top_count(0.7, 10), 7);
        assert_eq!(top_count(0.1, 31), 4);
        assert_eq!(top_count(0.2, 1), 1);
        for n in 1..2000usize {
            assert_eq!(top_count(0.1, n), n.div_ceil(10), "n = {n}");
            assert_eq!(top_count(0.2, n), n.div_ceil(5), "n = {n}");
        }
    }

    #[test]
    fn lift_matches_stable_sort() {
        let mut rng = Lcg(99);
        for case in 0..100 {
            let n = 1 + case % 50;
            let (labels, scores) = random_case(&mut rng, n, 4, 0.3);
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap());
            for fraction in [0.1, 0.2, 0.5] {
                let Some(l) = lift_at(&labels, &scores, fraction) else {
                    assert!(!labels.contains(&true));
                    continue;
                };
                let k = top_count(fraction, n);
                let top = order[..k].iter().filter(|&&i| labels[i]).count() as f64;
                let total = labels.iter().filter(|&&y| y).count() as f64;
                assert_eq!(l.capture_rate, top / total);
            }
        }
    }

    #[test]
    fn binary_metrics_compute_and_round_trip() {
        let labels = [false, false, true, true];
        let probs = [0.1, 0.4, 0.35, 0.8];
        let m = BinaryMetrics::compute(&labels, &probs);
        assert_eq!((m.rows, m.positives), (4, 2));
        assert_eq!(m.auc, Some(0.75));
        assert!(close(m.pr_auc.unwrap(), 5.0 / 6.0, 1e-12));
        assert_eq!(m.lift_10.as_ref().map(|l| l.capture_rate), Some(0.5));
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&m, config).unwrap();
        let (back, _): (BinaryMetrics, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, m);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<BinaryMetrics>(&json).unwrap(), m);

        let empty = BinaryMetrics::compute(&[], &[]);
        assert_eq!((empty.rows, empty.positives, empty.auc), (0, 0, None));
        assert!(empty.log_loss.is_nan() && empty.brier.is_nan() && empty.ece.is_nan());
        let bytes = bincode::serde::encode_to_vec(&empty, config).unwrap();
        let (back, _): (BinaryMetrics, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!((back.rows, back.auc, back.lift_20), (0, None, None));
    }

    #[test]
    fn regression_metrics_by_hand() {
        let m = RegressionMetrics::compute(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
        assert_eq!(m.rows, 3);
        assert!(close(m.rmse, (1.0f64 / 3.0).sqrt(), 1e-12));
        assert!(close(m.mae, 1.0 / 3.0, 1e-12));
        assert!(close(m.r2, 0.5, 1e-12));
        assert_eq!(RegressionMetrics::compute(&[2.0, 2.0], &[2.0, 2.0]).r2, 1.0);
        assert_eq!(RegressionMetrics::compute(&[2.0, 2.0], &[2.0, 3.0]).r2, 0.0);
        let e = RegressionMetrics::compute(&[], &[]);
        assert!(e.rmse.is_nan() && e.mae.is_nan() && e.r2.is_nan());
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&m, config).unwrap();
        let (back, _): (RegressionMetrics, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, m);
    }
}
