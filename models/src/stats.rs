//! Statistics for comparing model versions and analysing experiments:
//! DeLong's test for two correlated ROC curves, the normal and Student t
//! distributions, the population stability index, two-proportion z and
//! chi-square tests, Welch's t-test, Holm's correction, and power.

/// The standard normal cumulative distribution function, to about 1e-15
/// relative error in both tails (so p-values as small as 1e-300 keep their
/// digits).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The two-sided p-value of a standard normal statistic, `P(|Z| >= |z|)`,
/// computed from the tail so that it keeps its digits far out (`1 - cdf`
/// would round to 0 beyond |z| = 8.3).
pub fn normal_p_two_sided(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// The complementary error function: the Maclaurin series of erf below 1,
/// and Lentz's continued fraction of erfc from 1 on (under 200 terms).
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 1.0 {
        // erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        let (mut term, mut sum) = (x, x);
        let x2 = x * x;
        for n in 1..100 {
            term *= -x2 / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        return 1.0 - sum * std::f64::consts::FRAC_2_SQRT_PI;
    }
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
    let tiny = 1e-300;
    let mut f = x;
    let (mut c, mut d) = (x, 0.0);
    for k in 1..300 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        d = if d.abs() < tiny { 1.0 / tiny } else { 1.0 / d };
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        let step = c * d;
        f *= step;
        if (step - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (f * std::f64::consts::PI.sqrt())
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
        normal_p_two_sided(z)
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

/// Shares below this are floored before taking the PSI's logarithm, so an
/// empty bin on one side gives a large but finite term.
pub const PSI_FLOOR: f64 = 1e-4;

/// Population stability index between two distributions over the same
/// bins, given as shares (each floored at [`PSI_FLOOR`]): the sum of
/// `(actual - expected) * ln(actual / expected)`. Below 0.1 is usually read
/// as stable, 0.1–0.25 as a moderate shift, above 0.25 as a major one. The
/// one PSI formula: [`psi`] and [`crate::drift`] both use it.
pub fn psi_of_shares(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let (e, a) = (e.max(PSI_FLOOR), a.max(PSI_FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Population stability index of the sample `actual` against the sample
/// `expected`, over ten bins at the deciles of `expected`.
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
        counts.map(|c| c as f64 / values.len() as f64)
    };
    Some(psi_of_shares(&shares(expected), &shares(actual)))
}

/// The standard normal quantile function (inverse of [`normal_cdf`]):
/// Acklam's rational approximation (relative error below 1.15e-9) and one
/// Halley step, which brings it to about 1e-15.
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let low = 0.024_25;
    let x = if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // One step of Halley's method on the accurate CDF (Acklam's refinement).
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; ~1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b) (continued fraction,
/// modified Lentz).
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // Use the symmetry that makes the continued fraction converge fast.
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut f = d;
    for m in 1..=300 {
        let m = f64::from(m);
        let numerator = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 + numerator * d;
        d = if d.abs() < tiny { 1.0 / tiny } else { 1.0 / d };
        c = 1.0 + numerator / c;
        if c.abs() < tiny {
            c = tiny;
        }
        f *= d * c;
        let numerator = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 + numerator * d;
        d = if d.abs() < tiny { 1.0 / tiny } else { 1.0 / d };
        c = 1.0 + numerator / c;
        if c.abs() < tiny {
            c = tiny;
        }
        let step = d * c;
        f *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * f / a
}

/// The two-sided p-value of a Student t statistic with `df` degrees of
/// freedom, `P(|T| >= |t|)`, computed from the tail.
pub fn student_t_p_two_sided(t: f64, df: f64) -> f64 {
    incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// The CDF of Student's t distribution with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `p` quantile of Student's t with `df` degrees of freedom, by
/// bisection on [`student_t_cdf`] (to 1e-12).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let mut high = 1.0;
    while student_t_cdf(high, df) < p && high < 1e12 {
        high *= 2.0;
    }
    let mut low = 0.0;
    while high - low > 1e-12 * high.max(1.0) {
        let mid = 0.5 * (low + high);
        if student_t_cdf(mid, df) < p {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

/// Chi-square goodness-of-fit test of two observed counts against the
/// planned shares `(1 - share, share)`: the sample-ratio-mismatch check.
/// One degree of freedom.
pub fn chi_square_split(first: u64, second: u64, share: f64) -> Option<TestResult> {
    let total = (first + second) as f64;
    if total == 0.0 || !(share > 0.0 && share < 1.0) {
        return None;
    }
    let expected = [total * (1.0 - share), total * share];
    let chi2: f64 = [first as f64, second as f64]
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    Some(TestResult {
        statistic: chi2,
        p_value: normal_p_two_sided(chi2.sqrt()),
    })
}

/// A two-sample test result.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// The statistic (z, chi-square or t).
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Two-proportion z-test (pooled variance) of `x1/n1` against `x2/n2`.
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<TestResult> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se == 0.0 {
        return None;
    }
    let z = (p2 - p1) / se;
    Some(TestResult {
        statistic: z,
        p_value: normal_p_two_sided(z),
    })
}

/// Pearson's chi-square test (no continuity correction) on the 2×2 table
/// of successes and failures; equals the pooled z-test squared.
pub fn chi_square_2x2(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<TestResult> {
    let observed = [[x1 as f64, (n1 - x1) as f64], [x2 as f64, (n2 - x2) as f64]];
    let total = (n1 + n2) as f64;
    let rows = [n1 as f64, n2 as f64];
    let cols = [(x1 + x2) as f64, total - (x1 + x2) as f64];
    if total == 0.0 || cols.contains(&0.0) || rows.contains(&0.0) {
        return None;
    }
    let mut chi2 = 0.0;
    for (i, row) in observed.iter().enumerate() {
        for (j, o) in row.iter().enumerate() {
            let e = rows[i] * cols[j] / total;
            chi2 += (o - e) * (o - e) / e;
        }
    }
    // One degree of freedom: P(chi2 > x) = 2 (1 - Phi(sqrt(x))).
    Some(TestResult {
        statistic: chi2,
        p_value: normal_p_two_sided(chi2.sqrt()),
    })
}

/// Welch's t-test of two means given their samples' mean, variance
/// (n - 1 denominator) and size. Returns the test and the
/// Welch–Satterthwaite degrees of freedom.
pub fn welch_t(
    (m1, v1, n1): (f64, f64, f64),
    (m2, v2, n2): (f64, f64, f64),
) -> Option<(TestResult, f64)> {
    if n1 < 2.0 || n2 < 2.0 {
        return None;
    }
    let (a, b) = (v1 / n1, v2 / n2);
    let se = (a + b).sqrt();
    if se == 0.0 {
        return None;
    }
    let t = (m2 - m1) / se;
    let df = (a + b).powi(2) / (a * a / (n1 - 1.0) + b * b / (n2 - 1.0));
    let p = student_t_p_two_sided(t, df);
    Some((
        TestResult {
            statistic: t,
            p_value: p,
        },
        df,
    ))
}

/// Holm's step-down adjustment of `p_values` (same order as given).
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// The minimum detectable difference of two proportions around `p` with
/// `n1` and `n2` users, at two-sided `alpha` and `power`.
pub fn mde_two_proportions(p: f64, n1: f64, n2: f64, alpha: f64, power: f64) -> f64 {
    (normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power))
        * (p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)).sqrt()
}

/// The minimum detectable difference of two means whose samples have
/// variances `v1`, `v2` and sizes `n1`, `n2`, at two-sided `alpha` and
/// `power` (normal approximation).
pub fn mde_two_means(v1: f64, n1: f64, v2: f64, n2: f64, alpha: f64, power: f64) -> f64 {
    (normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power)) * (v1 / n1 + v2 / n2).sqrt()
}

/// Users per group needed to detect a difference `effect` between two
/// means with variances `v1` and `v2` (equal groups), at two-sided `alpha`
/// and `power`.
pub fn sample_size_two_means(v1: f64, v2: f64, effect: f64, alpha: f64, power: f64) -> f64 {
    let z = normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power);
    (z * z * (v1 + v2) / (effect * effect)).ceil()
}

/// Users per group needed to detect a difference `effect` between two
/// proportions around `p` (equal groups), at two-sided `alpha` and `power`.
pub fn sample_size_two_proportions(p: f64, effect: f64, alpha: f64, power: f64) -> f64 {
    let z = normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power);
    (z * z * 2.0 * p * (1.0 - p) / (effect * effect)).ceil()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_inverts_the_cdf() {
        assert!((normal_quantile(0.975) - Z_975).abs() < 1e-15);
        assert!((normal_quantile(0.025) + Z_975).abs() < 1e-15);
        assert!((normal_quantile(1e-10) + 6.361_340_902_404_056).abs() < 1e-12);
        assert!((normal_quantile(0.8) - 0.841_621_233_572_914_2).abs() < 1e-15);
        for p in [1e-6, 0.01, 0.3, 0.5, 0.77, 0.999] {
            assert!(
                (normal_cdf(normal_quantile(p)) - p).abs() < 1e-14 * p,
                "{p}"
            );
        }
    }

    #[test]
    fn normal_tails_keep_their_digits() {
        // erfc from C99 libm (Python math.erfc), on both sides of the switch at 1.
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (0.999_999, 0.157_299_622_158_197_68),
            (1.0, 0.157_299_207_050_285_13),
            (1.999_999, 0.004_677_755_648_073_953),
            (2.0, 0.004_677_734_981_047_266),
            (3.0, 2.209_049_699_858_544e-5),
            (6.0, 2.151_973_671_249_891_3e-17),
            (10.0, 2.088_487_583_762_545e-45),
        ] {
            let got = erfc(x);
            assert!(
                (got - want).abs() <= 1e-14 * want,
                "erfc({x}) = {got}, want {want}"
            );
        }
        assert!((normal_cdf(-1.959_963_984_540_054) - 0.025).abs() < 1e-16);
        assert_eq!(normal_cdf(0.0), 0.5);
        // Far tails: 2 P(Z > 10) = erfc(10 / sqrt 2) = 1.52397060483e-23 (libm);
        // P(|T| > 3) with 10 df = 0.013343655022570 (t tables).
        let far = normal_p_two_sided(-10.0);
        assert!(
            (far - 1.523_970_604_832_118_6e-23).abs() < 1e-14 * far,
            "{far}"
        );
        assert!((student_t_p_two_sided(3.0, 10.0) - 0.013_343_655_022_570).abs() < 1e-12);
        assert_eq!(
            student_t_p_two_sided(-3.0, 10.0),
            student_t_p_two_sided(3.0, 10.0)
        );
    }

    #[test]
    fn t_quantile_and_split_test_match_tables() {
        // t tables: t(0.975; 1) = 12.7062, t(0.975; 10) = 2.2281, t(0.95; 30) = 1.6973.
        assert!((student_t_quantile(0.975, 1.0) - 12.706_204_736_174_7).abs() < 1e-8);
        assert!((student_t_quantile(0.975, 10.0) - 2.228_138_851_986_522).abs() < 1e-9);
        assert!((student_t_quantile(0.05, 30.0) + 1.697_260_886_926_22).abs() < 1e-9);
        // 520 vs 480 against 50/50: chi2 = (20^2 + 20^2) / 500 = 1.6.
        let t = chi_square_split(520, 480, 0.5).unwrap();
        assert!((t.statistic - 1.6).abs() < 1e-12);
        assert!((t.p_value - 0.205_903_210_732_068_33).abs() < 1e-14);
        // 300 vs 700 against 30/70 fits exactly.
        assert!(chi_square_split(300, 700, 0.7).unwrap().statistic < 1e-20);
        // Means: z = 1.95996 + 0.84162 = 2.80158; sqrt(4/100 + 9/100) = 0.36056.
        let mde = mde_two_means(4.0, 100.0, 9.0, 100.0, 0.05, 0.8);
        assert!((mde - 2.801_585_218_113_0 * 0.13f64.sqrt()).abs() < 1e-6);
        assert_eq!(sample_size_two_means(4.0, 9.0, 1.0, 0.05, 0.8), 103.0);
    }

    #[test]
    fn student_t_matches_tables() {
        // Tabulated: P(T <= 2.228 | 10 df) = 0.975; P(T <= 1.0 | 1 df) = 0.75 (Cauchy);
        // P(T <= 2.0 | 5 df) = 0.949030.
        assert!((student_t_cdf(2.228_138_851_986_522, 10.0) - 0.975).abs() < 1e-9);
        assert!((student_t_cdf(1.0, 1.0) - 0.75).abs() < 1e-12);
        assert!((student_t_cdf(2.0, 5.0) - 0.949_030_260_585_070_9).abs() < 1e-9);
        assert!((student_t_cdf(-2.0, 5.0) - (1.0 - 0.949_030_260_585_070_9)).abs() < 1e-9);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn z_test_and_chi_square_agree() {
        // 120/1000 vs 150/1000: pooled p = 0.135; se = sqrt(0.135*0.865*0.002);
        // z = 0.03 / se = 1.9649...
        let z = two_proportion_z(120, 1000, 150, 1000).unwrap();
        let se = (0.135f64 * 0.865 * 0.002).sqrt();
        assert!((z.statistic - 0.03 / se).abs() < 1e-12);
        let chi = chi_square_2x2(120, 1000, 150, 1000).unwrap();
        assert!((chi.statistic - z.statistic * z.statistic).abs() < 1e-9);
        assert!((chi.p_value - z.p_value).abs() < 1e-12);
    }

    #[test]
    fn welch_matches_a_worked_example() {
        // Means 20.0 and 22.0, variances 16 and 25, n = 30 and 40:
        // se = sqrt(16/30 + 25/40) = 1.07626, t = 1.85829,
        // df = (0.53333 + 0.625)^2 / (0.53333^2/29 + 0.625^2/39) = 67.85.
        let (t, df) = welch_t((20.0, 16.0, 30.0), (22.0, 25.0, 40.0)).unwrap();
        let se = (16.0f64 / 30.0 + 25.0 / 40.0).sqrt();
        assert!((t.statistic - 2.0 / se).abs() < 1e-12);
        let expected_df = (16.0f64 / 30.0 + 0.625).powi(2)
            / ((16.0f64 / 30.0).powi(2) / 29.0 + 0.625f64.powi(2) / 39.0);
        assert!((df - expected_df).abs() < 1e-9);
        assert!((t.p_value - 2.0 * (1.0 - student_t_cdf(t.statistic, df))).abs() < 1e-15);
        assert!(t.p_value > 0.05 && t.p_value < 0.08, "{}", t.p_value);
    }

    #[test]
    fn holm_steps_down_and_stays_monotone() {
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]);
        // Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06.
        assert_eq!(adjusted, [0.03, 0.06, 0.06, 0.02]);
    }

    #[test]
    fn power_and_sample_size_round_trip() {
        let n = sample_size_two_proportions(0.2, 0.02, 0.05, 0.8);
        // (1.95996 + 0.84162)^2 * 2 * 0.16 / 0.0004 = 6279.2 -> 6280.
        assert_eq!(n, 6280.0);
        let mde = mde_two_proportions(0.2, n, n, 0.05, 0.8);
        assert!((mde - 0.02).abs() < 2e-5, "{mde}");
    }

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
