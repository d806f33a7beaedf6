//! Probability calibration: a monotone map applied to a model's probability.
//!
//! A [`Calibrator`] is fitted on held-out rows (labels and the uncalibrated
//! probabilities) and stored in the model artifact, so it is plain data with
//! serde derives; [`Calibrator::validate`] checks a decoded one before use.
//!
//! Design notes:
//! - [`fit_platt`] is Platt scaling on the log-odds of the probability,
//!   `p' = sigmoid(a · logit(p) + b)`, fitted with Platt's smoothed targets by
//!   the Newton method with backtracking line search of Lin, Lin & Weng (2007),
//!   "A note on Platt's probabilistic outputs for support vector machines".
//!   Internally it minimises their objective in their parameterisation
//!   `P(y=1|f) = 1 / (1 + exp(A·f + B))`; the stored parameters are
//!   `a = −A`, `b = −B`.
//! - [`fit_isotonic`] mirrors scikit-learn's `IsotonicRegression(
//!   out_of_bounds="clip")`: points sorted by probability, equal probabilities
//!   merged first (mean label, weight = count), pool-adjacent-violators (equal
//!   neighbours are pooled too, so block values strictly increase), and only
//!   the first and last probability of each block kept as knots. With 0/1
//!   labels, block sums are integers, so pooling decisions are exact
//!   (cross-multiplied in `u128`).
//! - [`Calibrator::apply`] never allocates: a binary search and a linear
//!   interpolation (as `numpy.interp`), clamping outside the knots.
//! - Fitting is deterministic and never panics. Rows whose probability is not
//!   finite are ignored; with no usable rows (or mismatched lengths) the fit
//!   returns [`Calibrator::Identity`].

use serde::{Deserialize, Serialize};

use crate::ensemble::{logit, sigmoid};

/// A fitted map from uncalibrated to calibrated probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Calibrator {
    /// No calibration: probabilities pass through.
    Identity,
    /// Platt scaling on the log-odds of the uncalibrated probability: p' = sigmoid(a * logit(p) + b).
    Platt {
        /// Slope on `logit(p)`.
        a: f64,
        /// Intercept.
        b: f64,
    },
    /// Isotonic regression: a non-decreasing piecewise-linear map through (x[i], y[i]); clamps outside [x0, xn].
    Isotonic {
        /// Knot positions (uncalibrated probabilities), ascending.
        x: Vec<f64>,
        /// Knot values (calibrated probabilities), non-decreasing in `[0, 1]`.
        y: Vec<f64>,
    },
}

/// Why stored calibration parameters cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CalibrationError {
    /// What is wrong with the parameters.
    pub message: String,
}

impl Calibrator {
    /// Maps an uncalibrated probability to a calibrated one (`NaN` stays `NaN`).
    ///
    /// Allocation-free. A calibrator that fails [`Calibrator::validate`] never
    /// panics here but may return meaningless values (`NaN` for empty knots).
    #[inline]
    pub fn apply(&self, p: f64) -> f64 {
        match self {
            Calibrator::Identity => p,
            Calibrator::Platt { a, b } => {
                if p.is_nan() {
                    p
                } else {
                    sigmoid(a * logit(p) + b)
                }
            }
            Calibrator::Isotonic { x, y } => interp(x, y, p),
        }
    }

    /// Short name for reports: `"none"`, `"platt"` or `"isotonic"`.
    pub fn name(&self) -> &'static str {
        match self {
            Calibrator::Identity => "none",
            Calibrator::Platt { .. } => "platt",
            Calibrator::Isotonic { .. } => "isotonic",
        }
    }

    /// Checks the parameters are usable (finite; knots non-empty, equal in number, x ascending, y non-decreasing in `[0, 1]`).
    pub fn validate(&self) -> Result<(), CalibrationError> {
        self.check().map_err(|message| CalibrationError { message })
    }

    fn check(&self) -> Result<(), String> {
        match self {
            Calibrator::Identity => Ok(()),
            Calibrator::Platt { a, b } => {
                if a.is_finite() && b.is_finite() {
                    Ok(())
                } else {
                    Err(format!(
                        "platt parameters must be finite (a = {a}, b = {b})"
                    ))
                }
            }
            Calibrator::Isotonic { x, y } => {
                if x.is_empty() {
                    return Err("isotonic calibrator has no knots".to_string());
                }
                if x.len() != y.len() {
                    return Err(format!(
                        "isotonic calibrator has {} x knots but {} y knots",
                        x.len(),
                        y.len()
                    ));
                }
                for (i, (&xi, &yi)) in x.iter().zip(y).enumerate() {
                    if !xi.is_finite() {
                        return Err(format!("isotonic knot {i}: x = {xi} is not finite"));
                    }
                    if !(0.0..=1.0).contains(&yi) {
                        return Err(format!("isotonic knot {i}: y = {yi} is not in [0, 1]"));
                    }
                    if i > 0 && xi < x[i - 1] {
                        return Err(format!(
                            "isotonic knots are not sorted: x[{i}] = {xi} < x[{}] = {}",
                            i - 1,
                            x[i - 1]
                        ));
                    }
                    if i > 0 && yi < y[i - 1] {
                        return Err(format!(
                            "isotonic map decreases: y[{i}] = {yi} < y[{}] = {}",
                            i - 1,
                            y[i - 1]
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}

/// Piecewise-linear interpolation through `(x, y)`, clamped outside, as `numpy.interp`.
#[inline]
fn interp(x: &[f64], y: &[f64], p: f64) -> f64 {
    let n = x.len().min(y.len());
    if p.is_nan() || n == 0 {
        return f64::NAN;
    }
    if p <= x[0] {
        return y[0];
    }
    if p >= x[n - 1] {
        return y[n - 1];
    }
    // First knot strictly right of p; with sorted knots x[i-1] <= p < x[i].
    // The clamp only matters for unsorted (invalid) knots: it keeps indices in
    // range.
    let i = x[..n].partition_point(|&v| v <= p).clamp(1, n - 1);
    let (x0, x1, y0, y1) = (x[i - 1], x[i], y[i - 1], y[i]);
    (y1 - y0) / (x1 - x0) * (p - x0) + y0
}

/// Fits Platt scaling on `logit(p)` (Lin, Lin & Weng's Newton method); `Identity` without usable rows.
///
/// Targets are Platt's smoothed labels `(N₊+1)/(N₊+2)` and `1/(N₋+2)`. Rows
/// with a non-finite probability are ignored. Deterministic.
pub fn fit_platt(labels: &[bool], probs: &[f64]) -> Calibrator {
    if labels.len() != probs.len() {
        return Calibrator::Identity;
    }
    let (deci, ys): (Vec<f64>, Vec<bool>) = probs
        .iter()
        .zip(labels)
        .filter(|(p, _)| p.is_finite())
        .map(|(&p, &y)| (logit(p), y))
        .unzip();
    if deci.is_empty() {
        return Calibrator::Identity;
    }
    let prior1 = ys.iter().filter(|&&y| y).count() as f64;
    let prior0 = ys.len() as f64 - prior1;
    let hi_target = (prior1 + 1.0) / (prior1 + 2.0);
    let lo_target = 1.0 / (prior0 + 2.0);
    let target = |y: bool| if y { hi_target } else { lo_target };

    // Negative log-likelihood of P(y=1|f) = 1 / (1 + exp(A f + B)), stably.
    let objective = |a: f64, b: f64| -> f64 {
        deci.iter()
            .zip(&ys)
            .map(|(&f, &y)| {
                let t = target(y);
                let f_ap_b = f * a + b;
                if f_ap_b >= 0.0 {
                    t * f_ap_b + (-f_ap_b).exp().ln_1p()
                } else {
                    (t - 1.0) * f_ap_b + f_ap_b.exp().ln_1p()
                }
            })
            .sum()
    };

    const MAX_ITER: usize = 100;
    const MIN_STEP: f64 = 1e-10;
    const SIGMA: f64 = 1e-12; // Keeps the Hessian positive definite.
    const EPS: f64 = 1e-5; // Gradient tolerance.

    let mut a = 0.0;
    let mut b = ((prior0 + 1.0) / (prior1 + 1.0)).ln();
    let mut fval = objective(a, b);
    for _ in 0..MAX_ITER {
        let (mut h11, mut h22, mut h21) = (SIGMA, SIGMA, 0.0);
        let (mut g1, mut g2) = (0.0, 0.0);
        for (&f, &y) in deci.iter().zip(&ys) {
            let f_ap_b = f * a + b;
            // p = P(y=1|f), q = 1 - p, computed without overflow.
            let (p, q) = if f_ap_b >= 0.0 {
                let e = (-f_ap_b).exp();
                (e / (1.0 + e), 1.0 / (1.0 + e))
            } else {
                let e = f_ap_b.exp();
                (1.0 / (1.0 + e), e / (1.0 + e))
            };
            let d2 = p * q;
            h11 += f * f * d2;
            h22 += d2;
            h21 += f * d2;
            let d1 = target(y) - p;
            g1 += f * d1;
            g2 += d1;
        }
        if g1.abs() < EPS && g2.abs() < EPS {
            break;
        }
        let det = h11 * h22 - h21 * h21;
        let da = -(h22 * g1 - h21 * g2) / det;
        let db = -(-h21 * g1 + h11 * g2) / det;
        let gd = g1 * da + g2 * db;
        if !(da.is_finite() && db.is_finite()) {
            break;
        }
        let mut step = 1.0;
        while step >= MIN_STEP {
            let (new_a, new_b) = (a + step * da, b + step * db);
            let new_f = objective(new_a, new_b);
            if new_f < fval + 1e-4 * step * gd {
                a = new_a;
                b = new_b;
                fval = new_f;
                break;
            }
            step /= 2.0;
        }
        if step < MIN_STEP {
            // Line search failed: no further progress is possible.
            break;
        }
    }
    // `0.0 - x` rather than `-x` so that a zero parameter is +0.0.
    let (a, b) = (0.0 - a, 0.0 - b);
    if a.is_finite() && b.is_finite() {
        Calibrator::Platt { a, b }
    } else {
        Calibrator::Identity
    }
}

/// Fits isotonic regression by pool-adjacent-violators (as scikit-learn, clipping); `Identity` without usable rows.
///
/// Rows with a non-finite probability are ignored. Deterministic: the knots
/// depend only on the multiset of `(probability, label)` pairs.
pub fn fit_isotonic(labels: &[bool], probs: &[f64]) -> Calibrator {
    if labels.len() != probs.len() {
        return Calibrator::Identity;
    }
    let mut points: Vec<(f64, bool)> = probs
        .iter()
        .zip(labels)
        .filter(|(p, _)| p.is_finite())
        .map(|(&p, &y)| (p, y))
        .collect();
    if points.is_empty() {
        return Calibrator::Identity;
    }
    // Finite values only, so partial_cmp is total here (-0.0 ties 0.0).
    points.sort_unstable_by(|l, r| l.0.partial_cmp(&r.0).unwrap_or(std::cmp::Ordering::Equal));

    /// A run of unique probabilities pooled to one value `pos / count`.
    struct Block {
        x_first: f64,
        x_last: f64,
        pos: u64,
        count: u64,
    }
    // `mean(l) >= mean(r)`, exactly.
    let violates = |l: &Block, r: &Block| {
        u128::from(l.pos) * u128::from(r.count) >= u128::from(r.pos) * u128::from(l.count)
    };

    let mut blocks: Vec<Block> = Vec::new();
    let mut i = 0;
    while i < points.len() {
        // Merge tied probabilities into one weighted point.
        let x = points[i].0;
        let (mut pos, mut count) = (0u64, 0u64);
        while i < points.len() && points[i].0 == x {
            pos += u64::from(points[i].1);
            count += 1;
            i += 1;
        }
        let mut block = Block {
            x_first: x,
            x_last: x,
            pos,
            count,
        };
        // Pool with preceding blocks while the sequence is not increasing.
        while let Some(prev) = blocks.last() {
            if !violates(prev, &block) {
                break;
            }
            block.x_first = prev.x_first;
            block.pos += prev.pos;
            block.count += prev.count;
            blocks.pop();
        }
        blocks.push(block);
    }

    let mut xs = Vec::with_capacity(2 * blocks.len());
    let mut ys = Vec::with_capacity(2 * blocks.len());
    for block in &blocks {
        let value = block.pos as f64 / block.count as f64;
        xs.push(block.x_first);
        ys.push(value);
        if block.x_last != block.x_first {
            xs.push(block.x_last);
            ys.push(value);
        }
    }
    Calibrator::Isotonic { x: xs, y: ys }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{brier, log_loss};

    /// A small deterministic generator (Knuth's MMIX LCG).
    struct Lcg(u64);

    impl Lcg {
        fn next_f64(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn iso(x: &[f64], y: &[f64]) -> Calibrator {
        Calibrator::Isotonic {
            x: x.to_vec(),
            y: y.to_vec(),
        }
    }

    /// Scores `q` uniform on [0, 1) with true probability `q²`.
    fn squared_sample(rng: &mut Lcg, n: usize) -> (Vec<bool>, Vec<f64>) {
        (0..n)
            .map(|_| {
                let q = rng.next_f64();
                (rng.next_f64() < q * q, q)
            })
            .unzip()
    }

    #[test]
    fn isotonic_is_monotone_and_improves_brier() {
        let mut rng = Lcg(2024);
        let (labels, probs) = squared_sample(&mut rng, 5000);
        let cal = fit_isotonic(&labels, &probs);
        assert_eq!(cal.name(), "isotonic");
        cal.validate().unwrap();
        let Calibrator::Isotonic { x, y } = &cal else {
            panic!("expected isotonic, got {cal:?}");
        };
        assert!(x.windows(2).all(|w| w[0] < w[1]), "x strictly increasing");
        assert!(y.windows(2).all(|w| w[0] <= w[1]), "y non-decreasing");
        // Monotone on a fine grid, including outside the knots.
        let grid: Vec<f64> = (-10..=110).map(|i| f64::from(i) / 100.0).collect();
        let mapped: Vec<f64> = grid.iter().map(|&p| cal.apply(p)).collect();
        assert!(mapped.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(cal.apply(-1.0), y[0]);
        assert_eq!(cal.apply(2.0), *y.last().unwrap());

        let before = brier(&labels, &probs);
        let calibrated: Vec<f64> = probs.iter().map(|&p| cal.apply(p)).collect();
        let after = brier(&labels, &calibrated);
        assert!(after < before - 0.02, "in-sample brier {before} -> {after}");
        // Also on fresh rows from the same distribution.
        let (labels2, probs2) = squared_sample(&mut rng, 5000);
        let before = brier(&labels2, &probs2);
        let calibrated: Vec<f64> = probs2.iter().map(|&p| cal.apply(p)).collect();
        let after = brier(&labels2, &calibrated);
        assert!(
            after < before - 0.02,
            "out-of-sample brier {before} -> {after}"
        );
        // Deterministic.
        assert_eq!(fit_isotonic(&labels, &probs), cal);
    }

    #[test]
    fn isotonic_knots_match_sklearn_by_hand() {
        // Violator at the start pooled to 0.5; equal neighbours pooled to 1.
        let cal = fit_isotonic(&[true, false, true, true], &[0.1, 0.2, 0.3, 0.4]);
        assert_eq!(cal, iso(&[0.1, 0.2, 0.3, 0.4], &[0.5, 0.5, 1.0, 1.0]));
        // Interior points of a block are dropped.
        let cal = fit_isotonic(
            &[false, false, false, false, true],
            &[0.1, 0.2, 0.3, 0.4, 0.5],
        );
        assert_eq!(cal, iso(&[0.1, 0.4, 0.5], &[0.0, 0.0, 1.0]));
        // Ties in p are merged first (mean label), whatever the row order.
        let cal = fit_isotonic(&[true, true, false], &[0.7, 0.5, 0.5]);
        assert_eq!(cal, iso(&[0.5, 0.7], &[0.5, 1.0]));
        assert_eq!(fit_isotonic(&[false, true, true], &[0.5, 0.7, 0.5]), cal);
        assert_eq!(cal.apply(0.6), 0.75);
        assert_eq!(cal.apply(0.0), 0.5);
        assert_eq!(cal.apply(0.9), 1.0);
        // Entirely decreasing data collapses to one constant block.
        let cal = fit_isotonic(&[true, true, false], &[0.1, 0.2, 0.3]);
        assert_eq!(cal, iso(&[0.1, 0.3], &[2.0 / 3.0, 2.0 / 3.0]));
        // A single unique probability gives a single knot (a constant map).
        let cal = fit_isotonic(&[true, false], &[0.4, 0.4]);
        assert_eq!(cal, iso(&[0.4], &[0.5]));
        assert_eq!(cal.apply(0.9), 0.5);
        cal.validate().unwrap();
    }

    #[test]
    fn degenerate_fits_are_identity() {
        assert_eq!(fit_isotonic(&[], &[]), Calibrator::Identity);
        assert_eq!(fit_platt(&[], &[]), Calibrator::Identity);
        assert_eq!(fit_isotonic(&[true], &[0.1, 0.2]), Calibrator::Identity);
        assert_eq!(fit_platt(&[true], &[0.1, 0.2]), Calibrator::Identity);
        assert_eq!(fit_isotonic(&[true], &[f64::NAN]), Calibrator::Identity);
        assert_eq!(fit_platt(&[true], &[f64::NAN]), Calibrator::Identity);
        // Non-finite rows are ignored.
        assert_eq!(
            fit_isotonic(&[true, false, true], &[0.3, f64::NAN, f64::INFINITY]),
            iso(&[0.3], &[1.0])
        );
        // A single class still gives a valid (smoothed) Platt fit.
        let cal = fit_platt(&[true, true, true], &[0.2, 0.5, 0.8]);
        cal.validate().unwrap();
        assert!(cal.apply(0.5) > 0.5);
    }

    #[test]
    fn platt_recovers_logistic_map() {
        let (true_a, true_b) = (1.5, -0.5);
        let mut rng = Lcg(7);
        let n = 20_000;
        let (labels, probs): (Vec<bool>, Vec<f64>) = (0..n)
            .map(|_| {
                let z = -4.0 + 8.0 * rng.next_f64();
                let truth = sigmoid(true_a * z + true_b);
                (rng.next_f64() < truth, sigmoid(z))
            })
            .unzip();
        let cal = fit_platt(&labels, &probs);
        assert_eq!(cal.name(), "platt");
        cal.validate().unwrap();
        let Calibrator::Platt { a, b } = cal else {
            panic!("expected platt, got {cal:?}");
        };
        assert!((a - true_a).abs() < 0.08, "a = {a}");
        assert!((b - true_b).abs() < 0.08, "b = {b}");
        // Calibration improves the log loss, and the fit is deterministic.
        let calibrated: Vec<f64> = probs.iter().map(|&p| cal.apply(p)).collect();
        assert!(log_loss(&labels, &calibrated) < log_loss(&labels, &probs));
        assert_eq!(fit_platt(&labels, &probs), cal);
    }

    #[test]
    fn platt_on_calibrated_data_is_near_identity() {
        let mut rng = Lcg(11);
        let (labels, probs): (Vec<bool>, Vec<f64>) = (0..20_000)
            .map(|_| {
                let p = sigmoid(-3.0 + 6.0 * rng.next_f64());
                (rng.next_f64() < p, p)
            })
            .unzip();
        let Calibrator::Platt { a, b } = fit_platt(&labels, &probs) else {
            panic!("expected platt");
        };
        assert!((a - 1.0).abs() < 0.08 && b.abs() < 0.08, "a = {a}, b = {b}");
    }

    #[test]
    fn apply_passes_nan_through() {
        for cal in [
            Calibrator::Identity,
            Calibrator::Platt { a: 1.2, b: -0.3 },
            iso(&[0.1, 0.9], &[0.0, 1.0]),
        ] {
            assert!(cal.apply(f64::NAN).is_nan(), "{}", cal.name());
        }
        assert_eq!(Calibrator::Identity.apply(0.37), 0.37);
        assert_eq!(Calibrator::Identity.name(), "none");
        // Platt with a = 1, b = 0 is the identity (up to rounding).
        let p = Calibrator::Platt { a: 1.0, b: 0.0 }.apply(0.3);
        assert!((p - 0.3).abs() < 1e-12);
        // Invalid (empty) knots do not panic.
        assert!(iso(&[], &[]).apply(0.5).is_nan());
        assert!(!iso(&[0.9, 0.1, 0.5], &[0.0, 0.5, 1.0]).apply(0.3).is_nan());
    }

    #[test]
    fn isotonic_apply_interpolates_like_numpy() {
        let cal = iso(&[0.0, 0.5, 1.0], &[0.1, 0.3, 0.9]);
        assert_eq!(cal.apply(0.0), 0.1);
        assert_eq!(cal.apply(0.5), 0.3);
        assert_eq!(cal.apply(1.0), 0.9);
        assert!((cal.apply(0.25) - 0.2).abs() < 1e-15);
        assert!((cal.apply(0.75) - 0.6).abs() < 1e-15);
        // Duplicate x knots (a step) are handled without dividing by zero.
        let step = iso(&[0.0, 0.5, 0.5, 1.0], &[0.0, 0.2, 0.8, 1.0]);
        step.validate().unwrap();
        assert!((step.apply(0.25) - 0.1).abs() < 1e-15);
        assert!((step.apply(0.75) - 0.9).abs() < 1e-15);
        assert!(step.apply(0.5).is_finite());
    }

    #[test]
    fn validate_rejects_bad_parameters() {
        assert!(Calibrator::Identity.validate().is_ok());
        assert!(Calibrator::Platt { a: 1.0, b: 0.0 }.validate().is_ok());
        assert!(Calibrator::Platt {
            a: f64::NAN,
            b: 0.0
        }
        .validate()
        .is_err());
        assert!(Calibrator::Platt {
            a: 1.0,
            b: f64::INFINITY
        }
        .validate()
        .is_err());
        assert!(iso(&[0.1, 0.5], &[0.2, 0.7]).validate().is_ok());
        assert!(iso(&[], &[]).validate().is_err());
        assert!(iso(&[0.1, 0.5], &[0.2]).validate().is_err());
        assert!(iso(&[0.5, 0.1], &[0.2, 0.7]).validate().is_err());
        assert!(iso(&[0.1, 0.5], &[0.7, 0.2]).validate().is_err());
        assert!(iso(&[0.1, 0.5], &[0.2, 1.5]).validate().is_err());
        assert!(iso(&[0.1, 0.5], &[-0.1, 0.2]).validate().is_err());
        assert!(iso(&[0.1, f64::NAN], &[0.2, 0.7]).validate().is_err());
        assert!(iso(&[0.1, f64::INFINITY], &[0.2, 0.7]).validate().is_err());
        assert!(iso(&[0.1, 0.5], &[0.2, f64::NAN]).validate().is_err());
    }

    #[test]
    fn calibrators_round_trip_through_bincode() {
        let config = bincode::config::standard();
        for cal in [
            Calibrator::Identity,
            Calibrator::Platt { a: 1.2, b: -0.3 },
            iso(&[0.1, 0.9], &[0.0, 1.0]),
        ] {
            let bytes = bincode::serde::encode_to_vec(&cal, config).unwrap();
            let (back, _): (Calibrator, usize) =
                bincode::serde::decode_from_slice(&bytes, config).unwrap();
            assert_eq!(back, cal);
        }
    }
}
