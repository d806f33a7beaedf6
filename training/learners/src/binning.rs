//! Feature binning: every feature value becomes a small integer bin.
//!
//! Numeric features are cut at quantiles of (a sample of) their distinct
//! values into at most `max_bin` value bins; each bin keeps its inclusive
//! upper bound, so "bin ≤ b" during training is exactly "x ≤ upper[b]" at
//! scoring time. Categorical features give each frequent category its own bin
//! (most frequent first), put the rest in an `other` bin, and like numeric
//! features reserve a dedicated last bin for missing values.
//!
//! Bins are `u8`, so `max_bin` is at most 255 (255 value bins + missing).

use presage_models::tree::category_code;

/// Rows sampled per feature to find numeric bin bounds (as LightGBM's
/// `bin_construct_sample_cnt`).
pub const BIN_SAMPLE_ROWS: usize = 200_000;

/// How one feature's values map to bins.
#[derive(Debug, Clone, PartialEq)]
pub enum BinMapper {
    /// Numeric bins with inclusive upper bounds (the last is `+inf`).
    Numeric {
        /// `upper[b]` is the largest value in bin `b`'s range.
        upper: Vec<f64>,
    },
    /// One bin per frequent category, then `other`, then missing.
    Categorical {
        /// Category code → bin (`other` bin for rare codes).
        code_to_bin: Vec<u8>,
        /// Bin → category code, for the category bins.
        bin_to_code: Vec<u32>,
    },
}

impl BinMapper {
    /// Builds numeric bins from a column (NaN = missing).
    pub fn numeric(values: &[f64], max_bin: usize) -> Self {
        let step = values.len().div_ceil(BIN_SAMPLE_ROWS).max(1);
        let mut sample: Vec<f64> = values
            .iter()
            .step_by(step)
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        sample.sort_unstable_by(f64::total_cmp);
        let mut distinct: Vec<(f64, usize)> = Vec::new();
        for v in sample {
            match distinct.last_mut() {
                Some((last, count)) if *last == v => *count += 1,
                _ => distinct.push((v, 1)),
            }
        }
        let max_bin = max_bin.max(1);
        let mut upper = Vec::new();
        if distinct.len() <= max_bin {
            for pair in distinct.windows(2) {
                upper.push(midpoint(pair[0].0, pair[1].0));
            }
        } else {
            let total: usize = distinct.iter().map(|d| d.1).sum();
            let mut remaining_total = total;
            let mut remaining_bins = max_bin;
            let mut in_bin = 0usize;
            for i in 0..distinct.len() - 1 {
                in_bin += distinct[i].1;
                let target = remaining_total as f64 / remaining_bins as f64;
                let next = distinct[i + 1].1 as f64;
                // Close the bin when it is full, or when adding the next value
                // would overshoot the target by more than stopping here falls short.
                if in_bin as f64 >= target
                    || (in_bin as f64 + next - target) > (target - in_bin as f64)
                {
                    upper.push(midpoint(distinct[i].0, distinct[i + 1].0));
                    remaining_total -= in_bin;
                    remaining_bins -= 1;
                    in_bin = 0;
                    if remaining_bins == 1 {
                        break;
                    }
                }
            }
        }
        upper.push(f64::INFINITY);
        BinMapper::Numeric { upper }
    }

    /// Builds categorical bins from codes (NaN = missing; codes are
    /// dictionary positions, most frequent first).
    pub fn categorical(codes: &[f64], n_categories: usize, max_bin: usize) -> Self {
        let mut counts = vec![0usize; n_categories];
        for &c in codes {
            if let Some(code) = category_code(c).filter(|c| (*c as usize) < n_categories) {
                counts[code as usize] += 1;
            }
        }
        let mut order: Vec<u32> = (0..n_categories as u32)
            .filter(|c| counts[*c as usize] > 0)
            .collect();
        order.sort_by_key(|c| (std::cmp::Reverse(counts[*c as usize]), *c));
        // Leave room for `other` and the missing bin.
        order.truncate(max_bin.saturating_sub(1).clamp(1, 254));
        let other = order.len() as u8;
        let mut code_to_bin = vec![other; n_categories];
        for (bin, code) in order.iter().enumerate() {
            code_to_bin[*code as usize] = bin as u8;
        }
        BinMapper::Categorical {
            code_to_bin,
            bin_to_code: order,
        }
    }

    /// Number of bins including `other` (categorical) and the missing bin.
    pub fn num_bins(&self) -> usize {
        match self {
            BinMapper::Numeric { upper } => upper.len() + 1,
            BinMapper::Categorical { bin_to_code, .. } => bin_to_code.len() + 2,
        }
    }

    /// The bin reserved for missing values (always the last).
    pub fn missing_bin(&self) -> u8 {
        (self.num_bins() - 1) as u8
    }

    /// Whether this feature is categorical.
    pub fn is_categorical(&self) -> bool {
        matches!(self, BinMapper::Categorical { .. })
    }

    /// The bin of a value.
    #[inline]
    pub fn bin(&self, x: f64) -> u8 {
        if x.is_nan() {
            return self.missing_bin();
        }
        match self {
            BinMapper::Numeric { upper } => upper.partition_point(|u| *u < x) as u8,
            BinMapper::Categorical {
                code_to_bin,
                bin_to_code,
            } => category_code(x)
                .and_then(|c| code_to_bin.get(c as usize).copied())
                .unwrap_or(bin_to_code.len() as u8),
        }
    }

    /// Upper bound of numeric bin `b` (the split threshold "bin ≤ b").
    pub fn upper_bound(&self, b: usize) -> f64 {
        match self {
            BinMapper::Numeric { upper } => upper[b],
            BinMapper::Categorical { .. } => f64::NAN,
        }
    }

    /// Category code of categorical bin `b`.
    pub fn code_of_bin(&self, b: usize) -> Option<u32> {
        match self {
            BinMapper::Categorical { bin_to_code, .. } => bin_to_code.get(b).copied(),
            BinMapper::Numeric { .. } => None,
        }
    }
}

/// A threshold between two adjacent distinct values that never rounds up to
/// the larger one (so the smaller stays in the lower bin).
fn midpoint(a: f64, b: f64) -> f64 {
    let m = a + (b - a) / 2.0;
    if m >= b || m < a {
        a
    } else {
        m
    }
}

/// All features binned, column-major: `column(f)[row]` is a bin.
#[derive(Debug, Clone)]
pub struct BinnedData {
    n_rows: usize,
    columns: Vec<Vec<u8>>,
    mappers: Vec<BinMapper>,
}

impl BinnedData {
    /// Bins column-major feature values with the given mappers.
    pub fn new(columns: &[Vec<f64>], mappers: Vec<BinMapper>) -> Self {
        use rayon::prelude::*;
        let n_rows = columns.first().map_or(0, Vec::len);
        let binned = columns
            .par_iter()
            .zip(mappers.par_iter())
            .map(|(values, mapper)| values.iter().map(|&x| mapper.bin(x)).collect())
            .collect();
        BinnedData {
            n_rows,
            columns: binned,
            mappers,
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.columns.len()
    }

    /// Bins of feature `f`, one per row.
    #[inline]
    pub fn column(&self, f: usize) -> &[u8] {
        &self.columns[f]
    }

    /// The mapper of feature `f`.
    pub fn mapper(&self, f: usize) -> &BinMapper {
        &self.mappers[f]
    }

    /// All mappers.
    pub fn mappers(&self) -> &[BinMapper] {
        &self.mappers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_bins_respect_thresholds() {
        let values: Vec<f64> = (0..1000)
            .map(|i| (i % 97) as f64 * 0.5)
            .chain([f64::NAN; 5])
            .collect();
        let mapper = BinMapper::numeric(&values, 16);
        assert!(mapper.num_bins() <= 17);
        for &x in &values {
            let b = mapper.bin(x) as usize;
            if x.is_nan() {
                assert_eq!(b, mapper.num_bins() - 1);
            } else {
                assert!(x <= mapper.upper_bound(b));
                if b > 0 {
                    assert!(x > mapper.upper_bound(b - 1));
                }
            }
        }
    }

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        let mapper = BinMapper::numeric(&[1.0, 2.0, 2.0, 3.0], 255);
        assert_eq!(mapper.num_bins(), 4);
        assert_eq!(mapper.bin(1.0), 0);
        assert_eq!(mapper.bin(2.0), 1);
        assert_eq!(mapper.bin(3.0), 2);
        assert_eq!(mapper.bin(f64::NAN), 3);
    }

    #[test]
    fn categorical_bins_by_frequency_with_other_and_missing() {
        let codes = [0.0, 0.0, 1.0, 2.0, 2.0, 2.0, f64::NAN];
        let mapper = BinMapper::categorical(&codes, 3, 3);
        // max_bin 3 leaves room for two category bins.
        assert_eq!(mapper.bin(2.0), 0);
        assert_eq!(mapper.bin(0.0), 1);
        assert_eq!(mapper.bin(1.0), 2); // other
        assert_eq!(mapper.bin(-1.0), 2); // unseen → other
        assert_eq!(mapper.bin(f64::NAN), 3);
    }

    #[test]
    fn bins_stay_below_num_bins() {
        let values = [
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            1.0,
            2.0,
            f64::INFINITY,
            f64::NAN,
            f64::MAX,
        ];
        for max_bin in [2, 3, 255] {
            let mapper = BinMapper::numeric(&values, max_bin);
            for x in values.iter().chain(&[f64::MIN, 1e300, -0.0]) {
                assert!(
                    (mapper.bin(*x) as usize) < mapper.num_bins(),
                    "{x} with max_bin {max_bin}"
                );
            }
            let codes = [0.0, 1.0, 2.0, 2.0, f64::NAN];
            let mapper = BinMapper::categorical(&codes, 3, max_bin);
            for x in [-1.0, 0.0, 2.0, 3.0, 1e9, 0.5, f64::NAN, f64::INFINITY] {
                assert!(
                    (mapper.bin(x) as usize) < mapper.num_bins(),
                    "{x} with max_bin {max_bin}"
                );
            }
        }
    }
}
