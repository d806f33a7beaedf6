//! Gradient histograms: per feature and bin, the sums of gradients, hessians
//! and row counts of the rows in one leaf.
//!
//! All features' bins live in one flat array addressed through
//! [`HistogramLayout`] offsets. Building is parallel over features (each
//! feature's bins are summed by one thread in row order, so results do not
//! depend on the thread count); a sibling's histogram is obtained by
//! subtraction from its parent's, as LightGBM does, so only the smaller child
//! of a split is ever built from rows.

use rayon::prelude::*;

use crate::binning::BinnedData;

/// Sums over the rows that fell in one bin.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BinStat {
    /// Sum of gradients.
    pub g: f64,
    /// Sum of hessians.
    pub h: f64,
    /// Number of rows.
    pub n: f64,
}

impl BinStat {
    /// Adds another bin's sums.
    #[inline]
    pub fn add(&mut self, other: &BinStat) {
        self.g += other.g;
        self.h += other.h;
        self.n += other.n;
    }

    /// Subtracts another bin's sums.
    #[inline]
    pub fn sub(&mut self, other: &BinStat) {
        self.g -= other.g;
        self.h -= other.h;
        self.n -= other.n;
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

    /// Splits a flat histogram into one mutable slice per feature.
    pub fn split_mut<'a>(&self, hist: &'a mut [BinStat]) -> Vec<&'a mut [BinStat]> {
        let mut slices = Vec::with_capacity(self.offsets.len() - 1);
        let mut rest = hist;
        for f in 0..self.offsets.len() - 1 {
            let (head, tail) = rest.split_at_mut(self.offsets[f + 1] - self.offsets[f]);
            slices.push(head);
            rest = tail;
        }
        slices
    }
}

/// Builds the histograms of `features` for the leaf holding `rows`.
///
/// `grad` and `hess` are *ordered*: `grad[k]` belongs to `rows[k]`. Bins of
/// features not listed are left untouched.
pub fn build(
    hist: &mut [BinStat],
    layout: &HistogramLayout,
    data: &BinnedData,
    features: &[usize],
    rows: &[u32],
    grad: &[f32],
    hess: &[f32],
) {
    debug_assert_eq!(rows.len(), grad.len());
    debug_assert_eq!(rows.len(), hess.len());
    let mut slices = layout.split_mut(hist);
    let mut selected: Vec<(usize, &mut [BinStat])> = Vec::with_capacity(features.len());
    // `features` is sorted ascending; walk the slices once.
    let mut wanted = features.iter().peekable();
    for (f, slice) in slices.drain(..).enumerate() {
        if wanted.peek() == Some(&&f) {
            wanted.next();
            selected.push((f, slice));
        }
    }
    selected
        .par_iter_mut()
        .with_min_len(1)
        .for_each(|(f, bins)| {
            bins.fill(BinStat::default());
            build_feature(bins, data.column(*f), rows, grad, hess);
        });
}

/// Sums one feature's bins over the leaf's rows.
#[inline]
fn build_feature(bins: &mut [BinStat], column: &[u8], rows: &[u32], grad: &[f32], hess: &[f32]) {
    for ((&row, &g), &h) in rows.iter().zip(grad).zip(hess) {
        let stat = &mut bins[column[row as usize] as usize];
        stat.g += f64::from(g);
        stat.h += f64::from(h);
        stat.n += 1.0;
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
            build(&mut hist, &layout, &data, &features, rows, &g, &h);
            hist
        };
        let all: Vec<u32> = (0..n as u32).collect();
        let (left, right): (Vec<u32>, Vec<u32>) = all.iter().partition(|r| *r % 3 == 0);
        let mut parent = build_for(&all);
        let small = build_for(&left);
        subtract(&mut parent, &small, &layout, &features);
        let direct = build_for(&right);
        for (a, b) in parent.iter().zip(&direct) {
            assert!((a.g - b.g).abs() < 1e-9 && (a.h - b.h).abs() < 1e-9 && a.n == b.n);
        }
    }
}
