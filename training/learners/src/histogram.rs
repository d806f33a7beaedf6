//! Gradient histograms: per feature and bin, the sums of gradients and
//! hessians of the rows in one leaf.
//!
//! All features' bins live in one flat array addressed through
//! [`HistogramLayout`] offsets. A bin is 16 bytes (gradient and hessian sums,
//! as in LightGBM); row counts are not accumulated but estimated from the
//! hessian during split search, and counted exactly when a leaf is split.
//! Building is column-wise and parallel over features: each feature's bins
//! are summed by one task in row order, so results do not depend on the
//! thread count. A sibling's histogram is obtained by subtraction from its
//! parent's, so only the smaller child of a split is ever built from rows.

use rayon::prelude::*;

use crate::binning::BinnedData;

/// Sums over the rows that fell in one bin.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C)]
pub struct BinStat {
    /// Sum of gradients.
    pub g: f64,
    /// Sum of hessians.
    pub h: f64,
}

impl BinStat {
    /// Adds another bin's sums.
    #[inline]
    pub fn add(&mut self, other: &BinStat) {
        self.g += other.g;
        self.h += other.h;
    }

    /// Subtracts another bin's sums.
    #[inline]
    pub fn sub(&mut self, other: &BinStat) {
        self.g -= other.g;
        self.h -= other.h;
    }
}

/// Where each feature's bins start in a flat histogram.
#[derive(Debug, Clone)]
pub struct HistogramLayout {
    offsets: Vec<usize>,
}

impl HistogramLayout {
    /// The layout for a binned dataset.
    pub fn new(data: &BinnedData) -> Self {
        let mut offsets = Vec::with_capacity(data.n_features() + 1);
        let mut total = 0;
        offsets.push(0);
        for f in 0..data.n_features() {
            total += data.mapper(f).num_bins();
            offsets.push(total);
        }
        HistogramLayout { offsets }
    }

    /// Total bins over all features.
    pub fn total_bins(&self) -> usize {
        *self.offsets.last().unwrap_or(&0)
    }

    /// The bin range of feature `f`.
    #[inline]
    pub fn range(&self, f: usize) -> std::ops::Range<usize> {
        self.offsets[f]..self.offsets[f + 1]
    }
}

/// The rows a histogram is built over.
#[derive(Debug, Clone, Copy)]
pub enum RowSet<'a> {
    /// Every row, in order (gradients indexed by row).
    All,
    /// These rows, ascending (gradients *ordered*: `grad[k]` belongs to `rows[k]`).
    Subset(&'a [u32]),
}

/// Builds the histograms of `features` (ascending) over `rows`. Bins of
/// features not listed are left untouched.
pub fn build(
    hist: &mut [BinStat],
    layout: &HistogramLayout,
    data: &BinnedData,
    features: &[usize],
    rows: RowSet<'_>,
    grad: &[f32],
    hess: &[f32],
) {
    let n = match rows {
        RowSet::All => data.n_rows(),
        RowSet::Subset(rows) => rows.len(),
    };
    assert!(
        grad.len() == n && hess.len() == n,
        "one gradient and hessian per row"
    );
    assert!(
        hist.len() == layout.total_bins(),
        "histogram has the layout's size"
    );
    assert!(
        features.windows(2).all(|w| w[0] < w[1])
            && features.last().is_none_or(|&f| f < data.n_features()),
        "features must be ascending and in range"
    );
    if let RowSet::Subset(rows) = rows {
        assert!(
            rows.iter().all(|&r| (r as usize) < data.n_rows()),
            "row out of range"
        );
    }
    // Carve the histogram into one disjoint slice per listed feature.
    let mut tasks: Vec<(usize, &mut [BinStat])> = Vec::with_capacity(features.len());
    let mut rest = hist;
    let mut consumed = 0;
    for &f in features {
        let range = layout.range(f);
        let (_, tail) = rest.split_at_mut(range.start - consumed);
        let (slice, tail) = tail.split_at_mut(range.len());
        tasks.push((f, slice));
        rest = tail;
        consumed = range.end;
    }
    // Features are processed in small groups: one pass over the rows loads
    // each row index and gradient once for the whole group.
    let mut groups: Vec<Vec<(&[u8], &mut [BinStat])>> = Vec::new();
    for chunk in tasks.chunks_mut(FEATURES_PER_PASS) {
        groups.push(
            chunk
                .iter_mut()
                .map(|(f, bins)| (data.column(*f), std::mem::take(bins)))
                .collect(),
        );
    }
    groups.par_iter_mut().with_min_len(1).for_each(|group| {
        for (_, bins) in group.iter_mut() {
            bins.fill(BinStat::default());
        }
        match (rows, group.len()) {
            (RowSet::All, FEATURES_PER_PASS) => {
                accumulate_n::<FEATURES_PER_PASS>(group, n, |k| k, grad, hess)
            }
            (RowSet::Subset(rows), FEATURES_PER_PASS) => {
                accumulate_n::<FEATURES_PER_PASS>(group, n, |k| rows[k] as usize, grad, hess)
            }
            (RowSet::All, _) => accumulate(group, n, |k| k, grad, hess),
            (RowSet::Subset(rows), _) => accumulate(group, n, |k| rows[k] as usize, grad, hess),
        }
    });
}

/// [`accumulate`] for a group of exactly `N` features, unrolled.
#[inline(always)]
fn accumulate_n<const N: usize>(
    group: &mut [(&[u8], &mut [BinStat])],
    n: usize,
    row_of: impl Fn(usize) -> usize,
    grad: &[f32],
    hess: &[f32],
) {
    assert!(group.len() == N && grad.len() >= n && hess.len() >= n);
    let columns: [&[u8]; N] = std::array::from_fn(|i| group[i].0);
    let bins: [&mut [BinStat]; N] = {
        let mut iter = group.iter_mut().map(|(_, b)| &mut **b);
        std::array::from_fn(|_| iter.next().expect("N features"))
    };
    for k in 0..n {
        // SAFETY: as in `accumulate`: `k < n <= grad.len(), hess.len()`;
        // `row_of(k) < column.len()`; bins below each slice's length.
        unsafe {
            let (g, h) = (
                f64::from(*grad.get_unchecked(k)),
                f64::from(*hess.get_unchecked(k)),
            );
            let row = row_of(k);
            for i in 0..N {
                debug_assert!(row < columns[i].len());
                let bin = *columns[i].get_unchecked(row) as usize;
                debug_assert!(bin < bins[i].len());
                let stat = bins[i].get_unchecked_mut(bin);
                stat.g += g;
                stat.h += h;
            }
        }
    }
}

/// Features whose histograms one pass over the rows builds together.
const FEATURES_PER_PASS: usize = 4;

/// Adds `n` rows (the `k`-th is row `row_of(k)` with gradient `grad[k]`)
/// to the bins of each (column, bins) pair of a feature group.
///
/// The hottest loop of training: it skips bounds checks (see SAFETY).
#[inline(always)]
fn accumulate(
    group: &mut [(&[u8], &mut [BinStat])],
    n: usize,
    row_of: impl Fn(usize) -> usize,
    grad: &[f32],
    hess: &[f32],
) {
    assert!(grad.len() >= n && hess.len() >= n);
    for k in 0..n {
        // SAFETY: `k < n <= grad.len(), hess.len()` (asserted above).
        let (g, h) = unsafe {
            (
                f64::from(*grad.get_unchecked(k)),
                f64::from(*hess.get_unchecked(k)),
            )
        };
        let row = row_of(k);
        for (column, bins) in group.iter_mut() {
            // SAFETY: `row` is below `n_rows == column.len()` (`build`
            // asserts it for subsets; for all rows it is `k < n == n_rows`).
            // Every bin in a column was produced by `BinMapper::bin`, which
            // is below the mapper's `num_bins()` (test
            // `bins_stay_below_num_bins`), and `bins` is that feature's slice
            // of exactly `num_bins()` entries (`HistogramLayout`).
            unsafe {
                debug_assert!(row < column.len());
                let bin = *column.get_unchecked(row) as usize;
                debug_assert!(bin < bins.len());
                let stat = bins.get_unchecked_mut(bin);
                stat.g += g;
                stat.h += h;
            }
        }
    }
}

/// `parent -= child` for the bins of `features`: turns the parent's histogram
/// into the histogram of the child's sibling.
pub fn subtract(
    parent: &mut [BinStat],
    child: &[BinStat],
    layout: &HistogramLayout,
    features: &[usize],
) {
    for &f in features {
        let range = layout.range(f);
        for (p, c) in parent[range.clone()].iter_mut().zip(&child[range]) {
            p.sub(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binning::BinMapper;

    #[test]
    fn parent_minus_child_equals_sibling() {
        let n = 1000;
        let col_a: Vec<f64> = (0..n).map(|i| (i % 37) as f64).collect();
        let col_b: Vec<f64> = (0..n)
            .map(|i| if i % 7 == 0 { f64::NAN } else { (i % 5) as f64 })
            .collect();
        let mappers = vec![
            BinMapper::numeric(&col_a, 16),
            BinMapper::numeric(&col_b, 16),
        ];
        let data = BinnedData::new(&[col_a, col_b], mappers);
        let layout = HistogramLayout::new(&data);
        let grad: Vec<f32> = (0..n).map(|i| ((i * 13) % 11) as f32 - 5.0).collect();
        let hess: Vec<f32> = (0..n).map(|i| 0.25 + (i % 3) as f32 * 0.1).collect();
        let features = [0, 1];
        let build_for = |rows: &[u32]| {
            let mut hist = vec![BinStat::default(); layout.total_bins()];
            let g: Vec<f32> = rows.iter().map(|&r| grad[r as usize]).collect();
            let h: Vec<f32> = rows.iter().map(|&r| hess[r as usize]).collect();
            build(
                &mut hist,
                &layout,
                &data,
                &features,
                RowSet::Subset(rows),
                &g,
                &h,
            );
            hist
        };
        let all: Vec<u32> = (0..n as u32).collect();
        let (left, right): (Vec<u32>, Vec<u32>) = all.iter().partition(|r| *r % 3 == 0);
        let mut parent = build_for(&all);
        let mut streamed = vec![BinStat::default(); layout.total_bins()];
        build(
            &mut streamed,
            &layout,
            &data,
            &features,
            RowSet::All,
            &grad,
            &hess,
        );
        assert_eq!(parent, streamed, "all rows in order == the full subset");
        let small = build_for(&left);
        subtract(&mut parent, &small, &layout, &features);
        let direct = build_for(&right);
        for (a, b) in parent.iter().zip(&direct) {
            assert!((a.g - b.g).abs() < 1e-9 && (a.h - b.h).abs() < 1e-9);
        }
    }
}
