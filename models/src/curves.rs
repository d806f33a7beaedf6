//! Curves of a binary classifier's scores against its labels, as the
//! comparison report draws them and the notebook export writes them: ROC,
//! precision-recall and cumulative gain (one point per distinct score,
//! thinned to at most 400 points), the reliability diagram's bins and the
//! score histogram. Plain numbers; drawing is the caller's business.

/// A curve as `(x, y)` points.
pub type Curve = Vec<(f64, f64)>;

/// Rows sorted by score, highest first, as (label, score).
fn ranked(labels: &[bool], scores: &[f64]) -> Vec<(bool, f64)> {
    let mut rows: Vec<(bool, f64)> = labels.iter().copied().zip(scores.iter().copied()).collect();
    rows.sort_by(|x, y| y.1.total_cmp(&x.1));
    rows
}

/// ROC, precision-recall and cumulative-gain curves, one point per
/// distinct score (ties move together).
pub fn curves(labels: &[bool], scores: &[f64]) -> (Curve, Curve, Curve) {
    let rows = ranked(labels, scores);
    let positives = labels.iter().filter(|y| **y).count().max(1) as f64;
    let negatives = (labels.len() as f64 - positives).max(1.0);
    let total = labels.len().max(1) as f64;
    let (mut roc, mut pr, mut gain) = (vec![(0.0, 0.0)], Vec::new(), vec![(0.0, 0.0)]);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < rows.len() {
        let score = rows[i].1;
        while i < rows.len() && rows[i].1 == score {
            if rows[i].0 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        roc.push((fp / negatives, tp / positives));
        pr.push((tp / positives, tp / (tp + fp)));
        gain.push(((tp + fp) / total, tp / positives));
    }
    (thin(roc, 400), thin(pr, 400), thin(gain, 400))
}

/// At most `limit` points of `curve`, evenly spaced along it, always
/// keeping both ends (keeps the report small on large data).
fn thin(curve: Curve, limit: usize) -> Curve {
    if curve.len() <= limit {
        return curve;
    }
    let step = curve.len().div_ceil(limit);
    let last = *curve.last().expect("non-empty");
    let mut out: Curve = curve.into_iter().step_by(step).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// Reliability: per tenth of the probability range, (mean predicted,
/// observed rate, rows).
pub fn reliability(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64, usize)> {
    let mut bins = vec![(0.0, 0.0, 0usize); 10];
    for (&y, &p) in labels.iter().zip(scores) {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += f64::from(u8::from(y));
        bins[b].2 += 1;
    }
    bins.into_iter()
        .filter(|b| b.2 > 0)
        .map(|(p, y, n)| (p / n as f64, y / n as f64, n))
        .collect()
}

/// Share of rows per twentieth of the probability range.
pub fn histogram(scores: &[f64]) -> Vec<(f64, f64)> {
    let mut counts = [0usize; 20];
    for &p in scores {
        counts[((p * 20.0) as usize).min(19)] += 1;
    }
    let n = scores.len().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .flat_map(|(i, &c)| {
            let (lo, hi) = (i as f64 / 20.0, (i + 1) as f64 / 20.0);
            [(lo, c as f64 / n), (hi, c as f64 / n)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_end_at_the_corners_and_gain_is_monotone() {
        let labels = [true, false, true, false, false];
        let scores = [0.9, 0.8, 0.8, 0.1, 0.1];
        let (roc, pr, gain) = curves(&labels, &scores);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        // The tie at 0.8 moves one positive and one negative together.
        assert_eq!(roc[2], (1.0 / 3.0, 1.0));
        assert_eq!(pr[0], (0.5, 1.0));
        assert!(gain
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn reliability_bins_count_every_row() {
        let bins = reliability(&[true, false, false, true], &[0.95, 0.05, 0.15, 0.12]);
        assert_eq!(bins.iter().map(|b| b.2).sum::<usize>(), 4);
        assert_eq!(bins[1], (0.135, 0.5, 2));
    }
}
