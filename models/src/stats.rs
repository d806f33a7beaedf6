//! Statistics for comparing model versions: DeLong's test for two
//! correlated ROC curves, the normal distribution it needs, and the
//! population stability index of two score distributions.

/// The standard normal cumulative distribution function.
///
/// Uses the complementary error function approximation of Numerical
/// Recipes (`erfcc`, fractional error below 1.2e-7 everywhere).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The 97.5% quantile of the standard normal distribution.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// DeLong's test that two correlated ROC AUCs (two score columns on the
/// same labelled rows) are equal.
#[derive(Debug, Clone, PartialEq)]
pub struct DeLong {
    /// AUC of the first scores.
    pub auc_a: f64,
    /// AUC of the second scores.
    pub auc_b: f64,
    /// `auc_b - auc_a`.
    pub difference: f64,
    /// Standard error of the difference.
    pub std_error: f64,
    /// `difference / std_error`.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// 95% confidence interval of the difference.
    pub ci95: (f64, f64),
}

/// Midranks (1-based; ties share the mean of their ranks) of `values`.
fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// DeLong's structural components of one score column: for each positive,
/// the share of negatives it outranks (`v10`), and for each negative the
/// share of positives that outrank it (`v01`); ties count one half.
/// Computed from midranks in O(n log n) (Sun & Xu, 2014).
pub fn structural_components(labels: &[bool], scores: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let positives: Vec<f64> = labels
        .iter()
        .zip(scores)
        .filter(|(y, _)| **y)
        .map(|(_, s)| *s)
        .collect();
    let negatives: Vec<f64> = labels
        .iter()
        .zip(scores)
        .filter(|(y, _)| !**y)
        .map(|(_, s)| *s)
        .collect();
    let (m, n) = (positives.len() as f64, negatives.len() as f64);
    let all: Vec<f64> = positives.iter().chain(&negatives).copied().collect();
    let tz = midranks(&all);
    let tx = midranks(&positives);
    let ty = midranks(&negatives);
    let v10 = (0..positives.len()).map(|i| (tz[i] - tx[i]) / n).collect();
    let v01 = (0..negatives.len())
        .map(|j| 1.0 - (tz[positives.len() + j] - ty[j]) / m)
        .collect();
    (v10, v01)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (a.len() as f64 - 1.0)
}

/// DeLong's test on `scores_a` and `scores_b` for the same rows. `None`
/// without at least two positives and two negatives.
pub fn delong(labels: &[bool], scores_a: &[f64], scores_b: &[f64]) -> Option<DeLong> {
    let m = labels.iter().filter(|y| **y).count();
    let n = labels.len() - m;
    if m < 2 || n < 2 || scores_a.len() != labels.len() || scores_b.len() != labels.len() {
        return None;
    }
    let (a10, a01) = structural_components(labels, scores_a);
    let (b10, b01) = structural_components(labels, scores_b);
    let (auc_a, auc_b) = (mean(&a10), mean(&b10));
    let var = |x10: &[f64], y10: &[f64], x01: &[f64], y01: &[f64]| {
        covariance(x10, y10) / m as f64 + covariance(x01, y01) / n as f64
    };
    let variance = var(&a10, &a10, &a01, &a01) + var(&b10, &b10, &b01, &b01)
        - 2.0 * var(&a10, &b10, &a01, &b01);
    let std_error = variance.max(0.0).sqrt();
    let difference = auc_b - auc_a;
    let z = if std_error > 0.0 {
        difference / std_error
    } else {
        0.0
    };
    let p_value = if std_error > 0.0 {
        2.0 * (1.0 - normal_cdf(z.abs()))
    } else {
        1.0
    };
    Some(DeLong {
        auc_a,
        auc_b,
        difference,
        std_error,
        z,
        p_value,
        ci95: (
            difference - Z_975 * std_error,
            difference + Z_975 * std_error,
        ),
    })
}

/// Population stability index of `actual` against `expected`, over ten
/// bins at the deciles of `expected` (empty shares floored at 1e-4).
/// Below 0.1 is usually read as stable, 0.1–0.25 as a moderate shift,
/// above 0.25 as a major one.
pub fn psi(expected: &[f64], actual: &[f64]) -> Option<f64> {
    if expected.is_empty() || actual.is_empty() {
        return None;
    }
    let mut sorted = expected.to_vec();
    sorted.sort_by(f64::total_cmp);
    let edges: Vec<f64> = (1..10)
        .map(|k| sorted[(k * sorted.len() / 10).min(sorted.len() - 1)])
        .collect();
    let shares = |values: &[f64]| {
        let mut counts = [0usize; 10];
        for v in values {
            counts[edges.partition_point(|e| e <= v)] += 1;
        }
        counts.map(|c| (c as f64 / values.len() as f64).max(1e-4))
    };
    let (e, a) = (shares(expected), shares(actual));
    Some(e.iter().zip(&a).map(|(e, a)| (a - e) * (a / e).ln()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_tabulated_values() {
        for (x, expected) in [
            (0.0, 0.5),
            (Z_975, 0.975),
            (-1.0, 0.158_655_253_931_457_05),
            (-3.0, 0.001_349_898_031_630_094_6),
            (2.5, 0.993_790_334_674_223_8),
        ] {
            let got = normal_cdf(x);
            assert!(
                (got - expected).abs() < 2e-7 * expected.max(1e-3),
                "{x}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn midranks_share_ties() {
        assert_eq!(midranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() {
        let a: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        assert!(psi(&a, &a).unwrap().abs() < 1e-12);
        let shifted: Vec<f64> = a.iter().map(|x| (x + 0.2).min(0.999)).collect();
        assert!(psi(&a, &shifted).unwrap() > 0.25);
    }
}
