//! DeLong's test checked two ways: a hand-worked four-row example, and an
//! independent implementation written from the paper (DeLong, DeLong &
//! Clarke-Pearson, Biometrics 1988: placements by comparing every positive
//! with every negative, O(m·n)) on random data with many ties.

use presage_models::rng::SplitMix64;
use presage_models::stats::{delong, normal_cdf};

/// The 1988 paper's estimator, written out directly.
fn reference(labels: &[bool], a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let psi = |x: f64, y: f64| {
        if x > y {
            1.0
        } else if x == y {
            0.5
        } else {
            0.0
        }
    };
    let pos: Vec<usize> = (0..labels.len()).filter(|&i| labels[i]).collect();
    let neg: Vec<usize> = (0..labels.len()).filter(|&i| !labels[i]).collect();
    let (m, n) = (pos.len() as f64, neg.len() as f64);
    let components = |s: &[f64]| {
        let v10: Vec<f64> = pos
            .iter()
            .map(|&i| neg.iter().map(|&j| psi(s[i], s[j])).sum::<f64>() / n)
            .collect();
        let v01: Vec<f64> = neg
            .iter()
            .map(|&j| pos.iter().map(|&i| psi(s[i], s[j])).sum::<f64>() / m)
            .collect();
        (v10, v01)
    };
    let ((a10, a01), (b10, b01)) = (components(a), components(b));
    let auc = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let s = |x: &[f64], y: &[f64]| {
        let (mx, my) = (auc(x), auc(y));
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - mx) * (q - my))
            .sum::<f64>()
            / (x.len() as f64 - 1.0)
    };
    let var = (s(&a10, &a10) + s(&b10, &b10) - 2.0 * s(&a10, &b10)) / m
        + (s(&a01, &a01) + s(&b01, &b01) - 2.0 * s(&a01, &b01)) / n;
    (auc(&a10), auc(&b10), var)
}

#[test]
fn hand_worked_example() {
    // Positives 0.9 and 0.4, negatives 0.5 and 0.1 under A: placements 1 and
    // 1/2, AUC 0.75; B separates perfectly, AUC 1. Var = 0.125/2 + 0.125/2.
    let labels = [true, true, false, false];
    let t = delong(&labels, &[0.9, 0.4, 0.5, 0.1], &[0.8, 0.7, 0.3, 0.2]).unwrap();
    assert_eq!((t.auc_a, t.auc_b, t.difference), (0.75, 1.0, 0.25));
    assert!((t.std_error - 0.125f64.sqrt()).abs() < 1e-15);
    assert!((t.z - 0.25 / 0.125f64.sqrt()).abs() < 1e-12);
    // 2 * (1 - Phi(0.7071)) = 0.4795.
    assert!((t.p_value - 0.479_500_122).abs() < 1e-6, "{}", t.p_value);
}

#[test]
fn matches_the_papers_estimator_on_random_data() {
    let mut rng = SplitMix64::new(11);
    for case in 0..20 {
        let rows = 20 + case * 15;
        let labels: Vec<bool> = (0..rows).map(|_| rng.next_f64() < 0.4).collect();
        // Scores on a coarse grid, so there are many ties within and across classes.
        let score = |rng: &mut SplitMix64, y: bool, shift: f64| {
            ((rng.next_f64() + if y { shift } else { 0.0 }) * 10.0).round() / 10.0
        };
        let a: Vec<f64> = labels.iter().map(|&y| score(&mut rng, y, 0.3)).collect();
        let b: Vec<f64> = labels.iter().map(|&y| score(&mut rng, y, 0.5)).collect();
        let Some(t) = delong(&labels, &a, &b) else {
            continue;
        };
        let (auc_a, auc_b, var) = reference(&labels, &a, &b);
        assert!((t.auc_a - auc_a).abs() < 1e-12 && (t.auc_b - auc_b).abs() < 1e-12);
        assert!(
            (t.std_error * t.std_error - var).abs() < 1e-12,
            "case {case}"
        );
        let p = 2.0 * (1.0 - normal_cdf(((auc_b - auc_a) / var.sqrt()).abs()));
        assert!((t.p_value - p).abs() < 1e-12);
        assert!(t.ci95.0 < t.difference && t.difference < t.ci95.1);
    }
}
