//! Train / validation / test splits.
//!
//! Random splits are stratified by label and seeded: each class's rows are
//! shuffled with the seed and cut by the fractions, so class balance is the
//! same in every split and the same seed gives the same split. Time-ordered
//! splits sort rows by a column (oldest first) and hold out the newest rows
//! for test, the next newest for validation. Row order inside each split is
//! ascending, so results do not depend on how rows were shuffled.

use presage_models::rng::SplitMix64;

/// Row indices of each split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Splits {
    /// Rows the learner fits on.
    pub train: Vec<usize>,
    /// Rows for early stopping and calibration.
    pub valid: Vec<usize>,
    /// Held-out rows for the final evaluation.
    pub test: Vec<usize>,
}

fn cut(n: usize, fraction: f64) -> usize {
    ((n as f64) * fraction).round() as usize
}

/// Stratified random split of rows by `target` class.
pub fn stratified(target: &[f64], valid_fraction: f64, test_fraction: f64, seed: u64) -> Splits {
    let mut splits = Splits::default();
    let mut rng = SplitMix64::new(seed ^ 0x5EED_5EED);
    let mut classes: Vec<f64> = target.to_vec();
    classes.sort_by(f64::total_cmp);
    classes.dedup();
    // Regression targets have many values: stratify by nothing then.
    if classes.len() > 2 {
        classes = vec![f64::NAN];
    }
    for class in classes {
        let mut rows: Vec<usize> = (0..target.len())
            .filter(|&i| class.is_nan() || target[i] == class)
            .collect();
        for i in (1..rows.len()).rev() {
            let j = rng.below(i + 1);
            rows.swap(i, j);
        }
        let n_test = cut(rows.len(), test_fraction);
        let n_valid = cut(rows.len(), valid_fraction).min(rows.len() - n_test);
        splits.test.extend_from_slice(&rows[..n_test]);
        splits
            .valid
            .extend_from_slice(&rows[n_test..n_test + n_valid]);
        splits.train.extend_from_slice(&rows[n_test + n_valid..]);
    }
    splits.train.sort_unstable();
    splits.valid.sort_unstable();
    splits.test.sort_unstable();
    splits
}

/// Time-ordered split: `order` lists rows oldest first.
pub fn time_ordered(order: &[usize], valid_fraction: f64, test_fraction: f64) -> Splits {
    let n = order.len();
    let n_test = cut(n, test_fraction);
    let n_valid = cut(n, valid_fraction).min(n - n_test);
    let n_train = n - n_test - n_valid;
    let mut splits = Splits {
        train: order[..n_train].to_vec(),
        valid: order[n_train..n_train + n_valid].to_vec(),
        test: order[n_train + n_valid..].to_vec(),
    };
    splits.train.sort_unstable();
    splits.valid.sort_unstable();
    splits.test.sort_unstable();
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_keeps_class_balance_and_is_seeded() {
        let target: Vec<f64> = (0..1000).map(|i| f64::from(u8::from(i % 4 == 0))).collect();
        let s = stratified(&target, 0.1, 0.2, 7);
        assert_eq!(s.test.len(), 200);
        assert_eq!(s.valid.len(), 100);
        assert_eq!(s.train.len(), 700);
        let positives = s.test.iter().filter(|&&i| target[i] == 1.0).count();
        assert_eq!(positives, 50);
        assert_eq!(s, stratified(&target, 0.1, 0.2, 7));
        assert_ne!(s, stratified(&target, 0.1, 0.2, 8));
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.valid)
            .chain(&s.test)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn time_ordered_holds_out_the_newest() {
        let order: Vec<usize> = (0..10).rev().collect();
        let s = time_ordered(&order, 0.2, 0.3);
        assert_eq!(s.test, vec![0, 1, 2]);
        assert_eq!(s.valid, vec![3, 4]);
        assert_eq!(s.train, vec![5, 6, 7, 8, 9]);
    }
}
