//! Leaf-wise tree growth on binned data (LightGBM's strategy).
//!
//! The grower keeps the current leaves, each with its rows (a range of one
//! shared index buffer, kept in ascending row order), its gradient sums, its
//! histogram and its best split. It repeatedly splits the leaf with the
//! largest gain until `num_leaves` is reached or no split gains. After a
//! split, only the smaller child's histogram is built from rows; the larger
//! child's is the parent's minus the smaller (histogram subtraction). For
//! random forests, where each node samples its own features, both children
//! are built for just their sampled features instead.
//!
//! The result is a [`Tree`] with real-valued thresholds (bin upper bounds)
//! and category codes, plus the rows of each leaf, so the caller can update
//! training scores without walking the tree.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use presage_models::tree::{Node, SplitRule, Tree};
use rayon::prelude::*;

use crate::binning::{BinMapper, BinnedData};
use crate::histogram::{self, BinStat, HistogramLayout, RowSet};
use crate::split::{leaf_output, BinSplit, SplitCandidate, SplitConfig, Totals};
use presage_models::rng::SplitMix64;

/// How trees are grown.
#[derive(Debug, Clone)]
pub struct GrowerConfig {
    /// Maximum number of leaves.
    pub num_leaves: usize,
    /// Maximum depth (`None` = unlimited).
    pub max_depth: Option<usize>,
    /// Split constraints and regularisation.
    pub split: SplitConfig,
    /// Fraction of the tree's features each node may split on.
    pub feature_fraction_bynode: f64,
    /// Build the smaller child and subtract for the larger (GBM), or build
    /// both for per-node feature samples (random forest).
    pub histogram_subtraction: bool,
    /// Without subtraction, nodes with at most this many rows find their
    /// split from their sorted rows instead of a histogram (same result,
    /// faster for the many tiny nodes of fully grown trees).
    pub small_node_rows: usize,
}

/// A grown tree and the rows of each leaf.
#[derive(Debug)]
pub struct GrownTree {
    /// Leaf values are raw outputs `-G / (H + λ)`; the caller scales them.
    pub tree: Tree,
    /// For each leaf: its node index in `tree`, and the rows that reached it.
    pub leaves: Vec<(usize, Vec<u32>)>,
}

/// A leaf waiting to be split, ordered by gain (ties: the lower slot first).
struct Candidate {
    gain: f64,
    slot: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.gain
            .total_cmp(&other.gain)
            .then(other.slot.cmp(&self.slot))
    }
}

struct Leaf {
    node: usize,
    start: usize,
    len: usize,
    depth: usize,
    totals: Totals,
    hist: Option<Vec<BinStat>>,
    features: Vec<usize>,
    best: Option<SplitCandidate>,
}

/// Grows trees over one binned dataset, reusing buffers between trees.
pub struct Grower<'a> {
    data: &'a BinnedData,
    layout: HistogramLayout,
    config: GrowerConfig,
    spare: Vec<Vec<BinStat>>,
    ordered_g: Vec<f32>,
    ordered_h: Vec<f32>,
    scratch: Vec<u32>,
}

impl<'a> Grower<'a> {
    /// A grower for `data`.
    pub fn new(data: &'a BinnedData, config: GrowerConfig) -> Self {
        Grower {
            data,
            layout: HistogramLayout::new(data),
            config,
            spare: Vec::new(),
            ordered_g: Vec::new(),
            ordered_h: Vec::new(),
            scratch: Vec::new(),
        }
    }

    fn take_hist(&mut self) -> Vec<BinStat> {
        self.spare
            .pop()
            .unwrap_or_else(|| vec![BinStat::default(); self.layout.total_bins()])
    }

    fn build_hist(
        &mut self,
        rows: &[u32],
        features: &[usize],
        grad: &[f32],
        hess: &[f32],
    ) -> Vec<BinStat> {
        let mut hist = self.take_hist();
        if rows.len() == self.data.n_rows() {
            // Rows are ascending and distinct (checked in `grow`), so this is
            // every row in order: gradients are already in row order.
            histogram::build(
                &mut hist,
                &self.layout,
                self.data,
                features,
                RowSet::All,
                grad,
                hess,
            );
            return hist;
        }
        // Gather gradients into row order (in parallel for large leaves).
        self.ordered_g.resize(rows.len(), 0.0);
        self.ordered_h.resize(rows.len(), 0.0);
        self.ordered_g
            .par_chunks_mut(GATHER_CHUNK)
            .zip(self.ordered_h.par_chunks_mut(GATHER_CHUNK))
            .zip(rows.par_chunks(GATHER_CHUNK))
            .for_each(|((g, h), rows)| {
                for ((g, h), &r) in g.iter_mut().zip(h.iter_mut()).zip(rows) {
                    *g = grad[r as usize];
                    *h = hess[r as usize];
                }
            });
        let (g, h) = (&self.ordered_g, &self.ordered_h);
        histogram::build(
            &mut hist,
            &self.layout,
            self.data,
            features,
            RowSet::Subset(rows),
            g,
            h,
        );
        hist
    }

    fn sample_node_features(&self, tree_features: &[usize], rng: &mut SplitMix64) -> Vec<usize> {
        let fraction = self.config.feature_fraction_bynode;
        if fraction >= 1.0 {
            return tree_features.to_vec();
        }
        let k =
            ((tree_features.len() as f64 * fraction + 0.5) as usize).clamp(1, tree_features.len());
        rng.sample_indices(tree_features.len(), k)
            .into_iter()
            .map(|i| tree_features[i])
            .collect()
    }

    fn can_split(&self, leaf: &Leaf) -> bool {
        let split = &self.config.split;
        leaf.len as f64 >= 2.0 * split.min_data_in_leaf.max(1.0)
            && leaf.totals.h >= 2.0 * split.min_sum_hessian_in_leaf
            // Unlimited still stops at the depth artifacts may hold.
            && leaf.depth
                < self
                    .config
                    .max_depth
                    .unwrap_or(presage_models::tree::MAX_TREE_DEPTH)
    }

    fn find_best(
        &self,
        hist: &[BinStat],
        features: &[usize],
        totals: &Totals,
    ) -> Option<SplitCandidate> {
        let candidates: Vec<Option<SplitCandidate>> = features
            .par_iter()
            .map(|&f| {
                self.config.split.best_for_feature(
                    f,
                    self.data.mapper(f),
                    &hist[self.layout.range(f)],
                    totals,
                )
            })
            .collect();
        // Deterministic: highest gain, ties to the lowest feature index.
        candidates
            .into_iter()
            .flatten()
            .fold(None, |best: Option<SplitCandidate>, c| match best {
                Some(b) if b.gain >= c.gain => Some(b),
                _ => Some(c),
            })
    }

    /// Best split of a small node without histograms: per feature, the
    /// node's rows sorted by bin (stably, so each bin's sums add rows in row
    /// order, exactly as a histogram would) and only occupied bins scanned.
    fn find_best_small(
        &self,
        rows: &[u32],
        features: &[usize],
        grad: &[f32],
        hess: &[f32],
        totals: &Totals,
    ) -> Option<SplitCandidate> {
        let mut entries: Vec<(u8, f32, f32)> = Vec::with_capacity(rows.len());
        let mut occupied: Vec<(u8, BinStat)> = Vec::with_capacity(rows.len());
        let mut best: Option<SplitCandidate> = None;
        for &f in features {
            let mapper = self.data.mapper(f);
            let column = self.data.column(f);
            let missing_bin = mapper.missing_bin();
            entries.clear();
            entries.extend(
                rows.iter()
                    .map(|&r| (column[r as usize], grad[r as usize], hess[r as usize])),
            );
            entries.sort_by_key(|e| e.0);
            occupied.clear();
            let mut missing = BinStat::default();
            for &(bin, g, h) in &entries {
                let stat = BinStat {
                    g: f64::from(g),
                    h: f64::from(h),
                };
                match occupied.last_mut() {
                    _ if bin == missing_bin => missing.add(&stat),
                    Some((last, sums)) if *last == bin => sums.add(&stat),
                    _ => occupied.push((bin, stat)),
                }
            }
            let candidate = if mapper.is_categorical() {
                let mut bins = vec![BinStat::default(); mapper.num_bins()];
                for (bin, stat) in &occupied {
                    bins[usize::from(*bin)] = *stat;
                }
                bins[usize::from(missing_bin)] = missing;
                self.config.split.best_for_feature(f, mapper, &bins, totals)
            } else {
                self.config
                    .split
                    .best_numeric_sparse(f, &occupied, missing, missing_bin, totals)
            };
            if let Some(c) = candidate {
                if best.as_ref().is_none_or(|b| c.gain > b.gain) {
                    best = Some(c);
                }
            }
        }
        best
    }

    /// Grows one tree on `rows` (ascending, distinct), with gradients and hessians
    /// indexed by row, splitting only on `tree_features` (ascending).
    pub fn grow(
        &mut self,
        rows: Vec<u32>,
        grad: &[f32],
        hess: &[f32],
        tree_features: &[usize],
        rng: &mut SplitMix64,
    ) -> GrownTree {
        let mut rows = rows;
        // Histogram building indexes columns by these rows without bounds
        // checks, and treats a full-length row list as "every row in order".
        let n_rows = self.data.n_rows();
        assert!(
            rows.windows(2).all(|w| w[0] < w[1])
                && rows.last().is_none_or(|&r| (r as usize) < n_rows),
            "rows must be ascending, distinct and below the row count"
        );
        let mut totals = Totals {
            n: rows.len() as f64,
            ..Totals::default()
        };
        for &r in &rows {
            totals.g += f64::from(grad[r as usize]);
            totals.h += f64::from(hess[r as usize]);
        }
        let lambda = self.config.split.lambda_l2;
        let mut nodes = vec![Node::Leaf {
            value: leaf_output(&totals, lambda),
            cover: totals.n,
        }];
        let root_features = self.sample_node_features(tree_features, rng);
        let mut root = Leaf {
            node: 0,
            start: 0,
            len: rows.len(),
            depth: 0,
            totals,
            hist: None,
            features: root_features,
            best: None,
        };
        if self.can_split(&root) {
            let hist_features = if self.config.histogram_subtraction {
                tree_features
            } else {
                &root.features
            };
            let hist = self.build_hist(&rows, hist_features, grad, hess);
            root.best = self.find_best(&hist, &root.features, &root.totals);
            self.keep_or_recycle(&mut root, hist);
        }
        // Leaves that can split, best gain first (ties: the earlier leaf).
        // A split leaf's slot is emptied; its children are appended.
        let mut leaves: Vec<Option<Leaf>> = Vec::new();
        let mut queue = BinaryHeap::new();
        let mut n_leaves = 1;
        let push =
            |leaf: Leaf, leaves: &mut Vec<Option<Leaf>>, queue: &mut BinaryHeap<Candidate>| {
                if let Some(best) = &leaf.best {
                    queue.push(Candidate {
                        gain: best.gain,
                        slot: leaves.len(),
                    });
                }
                leaves.push(Some(leaf));
            };
        push(root, &mut leaves, &mut queue);
        while n_leaves < self.config.num_leaves {
            let Some(Candidate { slot, .. }) = queue.pop() else {
                break;
            };
            let mut parent = leaves[slot].take().expect("queued leaf is present");
            let best = parent.best.take().expect("queued leaf has a split");
            let (left, right) = self.split_leaf(
                &mut parent,
                best,
                &mut rows,
                &mut nodes,
                grad,
                hess,
                tree_features,
                rng,
            );
            push(left, &mut leaves, &mut queue);
            push(right, &mut leaves, &mut queue);
            n_leaves += 1;
        }
        let mut leaves: Vec<Leaf> = leaves.into_iter().flatten().collect();

        for leaf in &mut leaves {
            if let Some(hist) = leaf.hist.take() {
                self.spare.push(hist);
            }
        }
        leaves.sort_by_key(|l| l.node);
        let leaf_rows = leaves
            .iter()
            .map(|l| (l.node, rows[l.start..l.start + l.len].to_vec()))
            .collect();
        GrownTree {
            tree: Tree { nodes },
            leaves: leaf_rows,
        }
    }

    fn keep_or_recycle(&mut self, leaf: &mut Leaf, hist: Vec<BinStat>) {
        if self.config.histogram_subtraction && leaf.best.is_some() {
            leaf.hist = Some(hist);
        } else {
            self.spare.push(hist);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn split_leaf(
        &mut self,
        parent: &mut Leaf,
        mut best: SplitCandidate,
        rows: &mut [u32],
        nodes: &mut Vec<Node>,
        grad: &[f32],
        hess: &[f32],
        tree_features: &[usize],
        rng: &mut SplitMix64,
    ) -> (Leaf, Leaf) {
        let feature = best.feature;
        let mapper = self.data.mapper(feature);
        let missing_bin = mapper.missing_bin();
        let column = self.data.column(feature);

        // Stable partition of the parent's rows; counts become exact here.
        let range = &mut rows[parent.start..parent.start + parent.len];
        let n_left = stable_partition(range, &mut self.scratch, |r| {
            best.split.goes_left(column[r as usize], missing_bin)
        });
        best.left.n = n_left as f64;
        best.right.n = (parent.len - n_left) as f64;

        let lambda = self.config.split.lambda_l2;
        let left_node = nodes.len();
        nodes.push(Node::Leaf {
            value: leaf_output(&best.left, lambda),
            cover: best.left.n,
        });
        nodes.push(Node::Leaf {
            value: leaf_output(&best.right, lambda),
            cover: best.right.n,
        });
        nodes[parent.node] = Node::Split {
            feature: feature as u32,
            rule: split_rule(mapper, &best.split),
            left: left_node as u32,
            right: left_node as u32 + 1,
            gain: best.gain,
            cover: parent.totals.n,
        };

        let make = |node, start, len, totals, features| Leaf {
            node,
            start,
            len,
            depth: parent.depth + 1,
            totals,
            hist: None,
            features,
            best: None,
        };
        let left_features = self.sample_node_features(tree_features, rng);
        let right_features = self.sample_node_features(tree_features, rng);
        let mut left = make(left_node, parent.start, n_left, best.left, left_features);
        let mut right = make(
            left_node + 1,
            parent.start + n_left,
            parent.len - n_left,
            best.right,
            right_features,
        );

        let left_splits = self.can_split(&left);
        let right_splits = self.can_split(&right);
        if self.config.histogram_subtraction {
            let mut parent_hist = parent.hist.take().expect("split leaf kept its histogram");
            if left_splits || right_splits {
                let (small, large) = if left.len <= right.len {
                    (&mut left, &mut right)
                } else {
                    (&mut right, &mut left)
                };
                let small_rows = &rows[small.start..small.start + small.len];
                let small_hist = self.build_hist(small_rows, tree_features, grad, hess);
                histogram::subtract(&mut parent_hist, &small_hist, &self.layout, tree_features);
                for (leaf, hist) in [(small, small_hist), (large, parent_hist)] {
                    if self.can_split(leaf) {
                        leaf.best = self.find_best(&hist, &leaf.features, &leaf.totals);
                    }
                    self.keep_or_recycle(leaf, hist);
                }
            } else {
                self.spare.push(parent_hist);
            }
        } else {
            for (leaf, splits) in [(&mut left, left_splits), (&mut right, right_splits)] {
                if splits {
                    let leaf_rows = &rows[leaf.start..leaf.start + leaf.len];
                    if leaf.len <= self.config.small_node_rows {
                        leaf.best = self.find_best_small(
                            leaf_rows,
                            &leaf.features,
                            grad,
                            hess,
                            &leaf.totals,
                        );
                    } else {
                        let features = leaf.features.clone();
                        let hist = self.build_hist(leaf_rows, &features, grad, hess);
                        leaf.best = self.find_best(&hist, &leaf.features, &leaf.totals);
                        self.spare.push(hist);
                    }
                }
            }
        }
        (left, right)
    }
}

/// Translates a bin-level split into the real-valued rule stored in the tree.
fn split_rule(mapper: &BinMapper, split: &BinSplit) -> SplitRule {
    match split {
        BinSplit::Numeric {
            threshold_bin,
            missing_left,
        } => SplitRule::Numeric {
            threshold: mapper.upper_bound(*threshold_bin as usize),
            missing_left: *missing_left,
        },
        BinSplit::Categorical { .. } => {
            let missing_bin = mapper.missing_bin();
            let mut left: Vec<u32> = (0..mapper.num_bins())
                .filter(|&b| split.goes_left(b as u8, missing_bin))
                .filter_map(|b| mapper.code_of_bin(b))
                .collect();
            left.sort_unstable();
            SplitRule::Categorical {
                left,
                missing_left: false,
            }
        }
    }
}

/// Rows per task when gathering ordered gradients.
const GATHER_CHUNK: usize = 65_536;

/// Rows per task when partitioning large leaves in parallel.
const PARTITION_CHUNK: usize = 32_768;

/// Stable partition of `rows` by `goes_left`: left rows first, each side in
/// its original order. Returns the number of left rows. Large ranges are
/// partitioned in fixed-size chunks on rayon and stitched together in chunk
/// order, which gives exactly the sequential result.
fn stable_partition(
    rows: &mut [u32],
    scratch: &mut Vec<u32>,
    goes_left: impl Fn(u32) -> bool + Sync,
) -> usize {
    if rows.len() <= PARTITION_CHUNK {
        scratch.clear();
        let mut n_left = 0;
        for i in 0..rows.len() {
            let r = rows[i];
            if goes_left(r) {
                rows[n_left] = r;
                n_left += 1;
            } else {
                scratch.push(r);
            }
        }
        rows[n_left..].copy_from_slice(scratch);
        return n_left;
    }
    // Count each chunk's left rows, then let every chunk write its left and
    // right rows straight into their final places in `scratch`.
    let counts: Vec<usize> = rows
        .par_chunks(PARTITION_CHUNK)
        .map(|chunk| chunk.iter().filter(|&&r| goes_left(r)).count())
        .collect();
    let n_left: usize = counts.iter().sum();
    scratch.clear();
    scratch.resize(rows.len(), 0);
    let (mut lefts, mut rights) = scratch.split_at_mut(n_left);
    let mut targets = Vec::with_capacity(counts.len());
    for (chunk, &count) in rows.chunks(PARTITION_CHUNK).zip(&counts) {
        let (left, rest_left) = lefts.split_at_mut(count);
        let (right, rest_right) = rights.split_at_mut(chunk.len() - count);
        targets.push((left, right));
        lefts = rest_left;
        rights = rest_right;
    }
    rows.par_chunks(PARTITION_CHUNK)
        .zip(targets)
        .for_each(|(chunk, (left, right))| {
            let (mut l, mut r) = (0, 0);
            for &row in chunk {
                if goes_left(row) {
                    left[l] = row;
                    l += 1;
                } else {
                    right[r] = row;
                    r += 1;
                }
            }
        });
    rows.copy_from_slice(scratch);
    n_left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_partition_equals_sequential() {
        let rows: Vec<u32> = (0..200_000u32).filter(|r| r % 3 != 1).collect();
        let rule = |r: u32| (r.wrapping_mul(2_654_435_761) >> 7) % 5 < 2;
        let mut big = rows.clone();
        let n_left = stable_partition(&mut big, &mut Vec::new(), rule);
        let (left, right): (Vec<u32>, Vec<u32>) = rows.iter().partition(|&&r| rule(r));
        assert_eq!(n_left, left.len());
        assert_eq!(&big[..n_left], &left[..]);
        assert_eq!(&big[n_left..], &right[..]);
        let mut small = rows[..1000].to_vec();
        let n = stable_partition(&mut small, &mut Vec::new(), rule);
        assert!(small[..n].iter().all(|&r| rule(r)) && small[n..].iter().all(|&r| !rule(r)));
    }

    #[test]
    fn small_node_path_grows_the_same_trees_as_histograms() {
        let mut rng = SplitMix64::new(3);
        let n = 3000;
        let columns: Vec<Vec<f64>> = (0..4)
            .map(|f| {
                (0..n)
                    .map(|_| {
                        if rng.next_f64() < 0.05 {
                            f64::NAN
                        } else {
                            (rng.next_f64() * (10 + 40 * f) as f64).floor()
                        }
                    })
                    .collect()
            })
            .collect();
        let mut mappers: Vec<BinMapper> = columns[..3]
            .iter()
            .map(|c| BinMapper::numeric(c, 255))
            .collect();
        let codes: Vec<f64> = columns[3]
            .iter()
            .map(|x| if x.is_nan() { *x } else { x % 12.0 })
            .collect();
        mappers.push(BinMapper::categorical(&codes, 12, 255));
        let data = BinnedData::new(
            &[
                columns[0].clone(),
                columns[1].clone(),
                columns[2].clone(),
                codes,
            ],
            mappers,
        );
        let grad: Vec<f32> = (0..n).map(|i| -((i * 7 % 3 == 0) as u8 as f32)).collect();
        let hess = vec![1.0f32; n];
        let config = |small_node_rows| GrowerConfig {
            num_leaves: 100_000,
            max_depth: None,
            split: SplitConfig::permissive(),
            feature_fraction_bynode: 0.5,
            histogram_subtraction: false,
            small_node_rows,
        };
        let rows: Vec<u32> = (0..n as u32).collect();
        let grow = |small| {
            let mut rng = SplitMix64::new(9);
            Grower::new(&data, config(small))
                .grow(rows.clone(), &grad, &hess, &[0, 1, 2, 3], &mut rng)
                .tree
        };
        let reference = grow(0);
        assert!(reference.num_leaves() > 100);
        assert_eq!(reference, grow(64));
        assert_eq!(reference, grow(100_000));
    }
}
