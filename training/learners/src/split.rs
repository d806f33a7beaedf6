//! Split search over one leaf's histograms.
//!
//! Numeric features are scanned bin by bin twice, once with missing values
//! sent right and once left, so the default direction for missing values is
//! learned. Categorical features follow LightGBM: with few categories each is
//! tried alone against the rest; otherwise categories are sorted by
//! `sum_gradient / (sum_hessian + cat_smooth)` and prefixes of that order
//! (from both ends, up to `max_cat_threshold` categories) are tried as the
//! left set. Missing and rare ("other") categories go right.

use crate::binning::BinMapper;
use crate::histogram::BinStat;

/// Constraints and regularisation for split search.
#[derive(Debug, Clone)]
pub struct SplitConfig {
    /// L2 regularisation on leaf values.
    pub lambda_l2: f64,
    /// Minimum rows in each child.
    pub min_data_in_leaf: f64,
    /// Minimum hessian sum in each child.
    pub min_sum_hessian_in_leaf: f64,
    /// Minimum gain to make a split.
    pub min_gain_to_split: f64,
    /// Smoothing added to hessians when ordering categories.
    pub cat_smooth: f64,
    /// Extra L2 regularisation for categorical splits.
    pub cat_l2: f64,
    /// Largest left set of a categorical split.
    pub max_cat_threshold: usize,
    /// Up to this many categories, try one-vs-rest splits.
    pub max_cat_to_onehot: usize,
    /// Minimum rows on each side of a categorical split.
    pub min_data_per_group: f64,
}

/// Sums over a set of rows: gradients, hessians and the row count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Sum of gradients.
    pub g: f64,
    /// Sum of hessians.
    pub h: f64,
    /// Number of rows (exact for leaves; estimated from the hessian for
    /// split candidates, as LightGBM does, and made exact once split).
    pub n: f64,
}

impl Totals {
    /// Totals of a histogram range and an estimated row count.
    #[inline]
    fn from_bins(stat: BinStat, count_per_hessian: f64) -> Totals {
        Totals {
            g: stat.g,
            h: stat.h,
            n: (stat.h * count_per_hessian).round(),
        }
    }

    /// `self - other`.
    #[inline]
    fn minus(&self, other: &Totals) -> Totals {
        Totals {
            g: self.g - other.g,
            h: self.h - other.h,
            n: self.n - other.n,
        }
    }
}

/// How a chosen split routes bins.
#[derive(Debug, Clone, PartialEq)]
pub enum BinSplit {
    /// `bin <= threshold_bin` goes left; the missing bin goes by `missing_left`.
    Numeric {
        /// Last bin on the left.
        threshold_bin: u8,
        /// Where missing values go.
        missing_left: bool,
    },
    /// Bins in the set go left (missing and `other` never do).
    Categorical {
        /// 256-bit set of left bins.
        left_bins: [u64; 4],
    },
}

impl BinSplit {
    /// Whether rows in `bin` go left (`missing_bin` is the feature's missing bin).
    #[inline]
    pub fn goes_left(&self, bin: u8, missing_bin: u8) -> bool {
        match self {
            BinSplit::Numeric {
                threshold_bin,
                missing_left,
            } => {
                if bin == missing_bin {
                    *missing_left
                } else {
                    bin <= *threshold_bin
                }
            }
            BinSplit::Categorical { left_bins } => {
                left_bins[(bin >> 6) as usize] >> (bin & 63) & 1 == 1
            }
        }
    }
}

/// The best split found for a leaf.
#[derive(Debug, Clone)]
pub struct SplitCandidate {
    /// Feature index.
    pub feature: usize,
    /// Loss reduction.
    pub gain: f64,
    /// Bin routing.
    pub split: BinSplit,
    /// Sums over rows going left.
    pub left: Totals,
    /// Sums over rows going right.
    pub right: Totals,
}

/// Rounds a non-negative count estimate to the nearest integer (a cast, not
/// the `round` libm call, which profiling showed in random-forest training).
#[inline]
fn round_count(x: f64) -> f64 {
    (x + 0.5) as u64 as f64
}

/// Rows per unit of hessian in a leaf, to estimate bin counts.
#[inline]
fn count_per_hessian(total: &Totals) -> f64 {
    if total.h > 0.0 {
        total.n / total.h
    } else {
        0.0
    }
}

#[inline]
fn leaf_score(g: f64, h: f64, lambda: f64) -> f64 {
    g * g / (h + lambda)
}

/// The output of a leaf with these sums: `-G / (H + λ)`.
#[inline]
pub fn leaf_output(totals: &Totals, lambda: f64) -> f64 {
    if totals.h + lambda <= 0.0 {
        0.0
    } else {
        -totals.g / (totals.h + lambda)
    }
}

impl SplitConfig {
    /// No constraints and no regularisation: every gaining split is taken
    /// (for tests).
    #[cfg(test)]
    pub(crate) fn permissive() -> SplitConfig {
        SplitConfig {
            lambda_l2: 0.0,
            min_data_in_leaf: 1.0,
            min_sum_hessian_in_leaf: 0.0,
            min_gain_to_split: 0.0,
            cat_smooth: 1.0,
            cat_l2: 0.0,
            max_cat_threshold: 32,
            max_cat_to_onehot: 4,
            min_data_per_group: 1.0,
        }
    }

    #[inline]
    fn admissible(&self, left: &Totals, right: &Totals, min_rows: f64) -> bool {
        left.n >= min_rows
            && right.n >= min_rows
            && left.h >= self.min_sum_hessian_in_leaf
            && right.h >= self.min_sum_hessian_in_leaf
    }

    /// Best split of one feature, or `None` if no split gains.
    pub fn best_for_feature(
        &self,
        feature: usize,
        mapper: &BinMapper,
        bins: &[BinStat],
        total: &Totals,
    ) -> Option<SplitCandidate> {
        match mapper {
            BinMapper::Numeric { .. } => self.best_numeric(feature, bins, total),
            BinMapper::Categorical { .. } => self.best_categorical(feature, bins, total),
        }
    }

    fn best_numeric(
        &self,
        feature: usize,
        bins: &[BinStat],
        total: &Totals,
    ) -> Option<SplitCandidate> {
        let missing_bin = bins.len() - 1;
        let occupied = bins[..missing_bin]
            .iter()
            .enumerate()
            .filter(|(_, b)| b.h != 0.0)
            .map(|(i, b)| (i, *b));
        self.scan_numeric(feature, occupied, bins[missing_bin], missing_bin, total)
    }

    /// Best numeric split from a node's occupied value bins only (ascending
    /// `(bin, sums)`), for nodes with far fewer rows than bins, where
    /// scanning every bin would dominate.
    pub fn best_numeric_sparse(
        &self,
        feature: usize,
        occupied: &[(u8, BinStat)],
        missing: BinStat,
        missing_bin: u8,
        total: &Totals,
    ) -> Option<SplitCandidate> {
        let occupied = occupied.iter().map(|(b, s)| (usize::from(*b), *s));
        self.scan_numeric(feature, occupied, missing, usize::from(missing_bin), total)
    }

    /// Scans thresholds at each occupied value bin, with missing values sent
    /// right and then left. `occupied` yields `(bin, sums)` ascending, for
    /// non-empty value bins only.
    fn scan_numeric(
        &self,
        feature: usize,
        occupied: impl Iterator<Item = (usize, BinStat)> + Clone,
        missing: BinStat,
        missing_bin: usize,
        total: &Totals,
    ) -> Option<SplitCandidate> {
        let per_hessian = count_per_hessian(total);
        let lambda = self.lambda_l2;
        let parent = leaf_score(total.g, total.h, lambda);
        let mut best: Option<SplitCandidate> = None;
        let has_missing = missing.h > 0.0;
        let directions: &[bool] = if has_missing {
            &[false, true]
        } else {
            &[false]
        };
        for &missing_left in directions {
            let mut acc = if missing_left {
                missing
            } else {
                BinStat::default()
            };
            // The last value bin cannot be a threshold (nothing left for the right).
            for (b, bin) in occupied.clone().take_while(|(b, _)| *b + 1 < missing_bin) {
                acc.add(&bin);
                let left = Totals::from_bins(acc, per_hessian);
                let right = total.minus(&left);
                if !self.admissible(&left, &right, self.min_data_in_leaf) {
                    if right.n < self.min_data_in_leaf || right.h < self.min_sum_hessian_in_leaf {
                        break;
                    }
                    continue;
                }
                let gain = leaf_score(left.g, left.h, lambda)
                    + leaf_score(right.g, right.h, lambda)
                    - parent;
                if gain > self.min_gain_to_split && best.as_ref().is_none_or(|c| gain > c.gain) {
                    // Without missing values in training, send future missing
                    // values to the side that saw more rows.
                    let missing_left = if has_missing {
                        missing_left
                    } else {
                        left.n >= right.n
                    };
                    best = Some(SplitCandidate {
                        feature,
                        gain,
                        split: BinSplit::Numeric {
                            threshold_bin: b as u8,
                            missing_left,
                        },
                        left,
                        right,
                    });
                }
            }
        }
        best
    }

    fn best_categorical(
        &self,
        feature: usize,
        bins: &[BinStat],
        total: &Totals,
    ) -> Option<SplitCandidate> {
        // Bins: categories, then `other`, then missing.
        let n_categories = bins.len().saturating_sub(2);
        let per_hessian = count_per_hessian(total);
        let count = |b: usize| round_count(bins[b].h * per_hessian);
        let lambda = self.lambda_l2 + self.cat_l2;
        let parent = leaf_score(total.g, total.h, lambda);
        let used: Vec<usize> = (0..n_categories).filter(|b| bins[*b].h > 0.0).collect();
        let mut best: Option<SplitCandidate> = None;
        let consider =
            |left_set: &[usize], acc: BinStat, best: &mut Option<SplitCandidate>, min_rows: f64| {
                let left = Totals::from_bins(acc, per_hessian);
                let right = total.minus(&left);
                if !self.admissible(&left, &right, min_rows) {
                    return;
                }
                let gain = leaf_score(left.g, left.h, lambda)
                    + leaf_score(right.g, right.h, lambda)
                    - parent;
                if gain > self.min_gain_to_split && best.as_ref().is_none_or(|c| gain > c.gain) {
                    let mut left_bins = [0u64; 4];
                    for &b in left_set {
                        left_bins[b >> 6] |= 1u64 << (b & 63);
                    }
                    *best = Some(SplitCandidate {
                        feature,
                        gain,
                        split: BinSplit::Categorical { left_bins },
                        left,
                        right,
                    });
                }
            };
        if used.len() <= self.max_cat_to_onehot {
            for &b in &used {
                consider(&[b], bins[b], &mut best, self.min_data_in_leaf);
            }
            return best;
        }
        let mut sorted: Vec<usize> = used
            .into_iter()
            .filter(|b| count(*b) >= self.cat_smooth.min(self.min_data_per_group))
            .collect();
        sorted.sort_by(|a, b| {
            let ra = bins[*a].g / (bins[*a].h + self.cat_smooth);
            let rb = bins[*b].g / (bins[*b].h + self.cat_smooth);
            ra.total_cmp(&rb).then(a.cmp(b))
        });
        let max_left = self.max_cat_threshold.min(sorted.len().div_ceil(2)).max(1);
        let min_rows = self.min_data_in_leaf.max(self.min_data_per_group);
        for reversed in [false, true] {
            let order: Vec<usize> = if reversed {
                sorted.iter().rev().copied().collect()
            } else {
                sorted.clone()
            };
            let mut left = BinStat::default();
            for k in 0..max_left.min(order.len().saturating_sub(1)) {
                left.add(&bins[order[k]]);
                consider(&order[..=k], left, &mut best, min_rows);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SplitConfig {
        SplitConfig::permissive()
    }

    fn stat(g: f64, n: f64) -> BinStat {
        BinStat { g, h: n }
    }

    fn total(bins: &[BinStat]) -> Totals {
        let mut t = BinStat::default();
        bins.iter().for_each(|b| t.add(b));
        Totals {
            g: t.g,
            h: t.h,
            n: t.h,
        }
    }

    #[test]
    fn numeric_split_finds_the_sign_change_and_learns_missing_direction() {
        // Bins 0,1 have negative gradients, 2,3 positive; missing resembles the left side.
        let bins = [
            stat(-5.0, 5.0),
            stat(-4.0, 4.0),
            stat(6.0, 6.0),
            stat(5.0, 5.0),
            stat(-3.0, 3.0),
        ];
        let best = config().best_for_feature(
            0,
            &BinMapper::Numeric {
                upper: vec![0.0; 4],
            },
            &bins,
            &total(&bins),
        );
        let best = best.expect("a split");
        assert_eq!(
            best.split,
            BinSplit::Numeric {
                threshold_bin: 1,
                missing_left: true
            }
        );
        assert_eq!(best.left.n, 12.0);
    }

    #[test]
    fn categorical_split_groups_similar_categories() {
        // Six categories (more than one-hot), other, missing.
        let bins = [
            stat(-3.0, 3.0),
            stat(3.0, 3.0),
            stat(-3.0, 3.0),
            stat(3.0, 3.0),
            stat(-3.0, 3.0),
            stat(3.0, 3.0),
            stat(0.0, 0.0),
            stat(0.0, 0.0),
        ];
        let mapper = BinMapper::Categorical {
            code_to_bin: vec![],
            bin_to_code: (0..6).collect(),
        };
        let best = config()
            .best_for_feature(0, &mapper, &bins, &total(&bins))
            .expect("a split");
        let BinSplit::Categorical { left_bins } = best.split else {
            panic!("categorical")
        };
        let left: Vec<u8> = (0..6u8).filter(|b| left_bins[0] >> b & 1 == 1).collect();
        assert!(left == vec![0, 2, 4] || left == vec![1, 3, 5], "{left:?}");
    }
}
