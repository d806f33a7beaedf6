//! The compiled scorer: an ensemble flattened into one cache-friendly array.
//!
//! All trees are laid out in a single array of 16-byte nodes, breadth first
//! per tree, with the two children of a split stored next to each other (so
//! a node needs only the index of its left child); leaf values live in a
//! parallel array and categorical sets in a shared bitset array.
//!
//! A step from a numeric node is branch-free: the next index is
//! `left + goes_right`, where `goes_right = x > threshold`, or `x` is NaN and
//! missing values go right. Leaves are nodes that step to themselves
//! (threshold `+inf`, missing left, left child = itself), so a walk needs no
//! leaf test: it takes at most the tree's depth in steps.
//!
//! Batch scoring transposes a block of rows feature-major and walks
//! [`LANES`] rows through each tree in lockstep (checking every two steps
//! whether any row still moves). The lanes are independent, so their loads
//! overlap, and the walk has no data-dependent branches to mispredict; for
//! trees without categorical splits the lane loop has no calls and unrolls
//! into registers. A block goes through the trees one at a time, so each
//! tree's nodes stay in cache, and blocks are spread over rayon's pool.
//!
//! Invariant: for every row, [`CompiledEnsemble::raw_score`] and the batch
//! functions equal [`crate::ensemble::Ensemble::raw_score_reference`] bit for
//! bit, because all add the same leaf values in the same (tree) order.

use rayon::prelude::*;

use crate::ensemble::{Ensemble, Link};
use crate::tree::{category_code, Node, SplitRule};

/// Flag bit: missing values go right.
const MISSING_RIGHT: u32 = 1 << 31;
/// Flag bit: a categorical split (the threshold field holds the bitset).
const CATEGORICAL: u32 = 1 << 30;
/// Mask of the feature index in `feature_flags`.
const FEATURE_MASK: u32 = (1 << 30) - 1;

/// Largest categorical bitset, in 64-bit words (category codes below 4,194,304).
const MAX_CATEGORY_WORDS: usize = 1 << 16;

thread_local! {
    /// Per-thread scratch for transposed row blocks (reused across calls).
    static LANE_BUFFER: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Rows per block in batch scoring (one rayon task).
const BLOCK_ROWS: usize = 256;
/// Rows walked through a tree together.
pub const LANES: usize = 8;

/// One node of the flattened ensemble (16 bytes, four per cache line).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct CompiledNode {
    /// Numeric threshold (`+inf` for leaves). For categorical splits, the bits
    /// of `cat_start | cat_words << 32` (see [`CompiledNode::bitset`]).
    threshold: f64,
    /// Index of the left child; the right child is `left + 1`. A leaf's
    /// `left` is its own index.
    left: u32,
    /// Feature index (0 for leaves) with `MISSING_RIGHT` and `CATEGORICAL`.
    feature_flags: u32,
}

impl CompiledNode {
    /// First word and word count of a categorical split's bitset.
    #[inline]
    fn bitset(&self) -> (usize, usize) {
        let bits = self.threshold.to_bits();
        ((bits & 0xFFFF_FFFF) as usize, (bits >> 32) as usize)
    }
}

/// An ensemble compiled for fast scoring. Build it with
/// [`CompiledEnsemble::new`]; it is immutable and `Sync`.
#[derive(Debug, Clone)]
pub struct CompiledEnsemble {
    n_features: usize,
    base_score: f64,
    link: Link,
    nodes: Vec<CompiledNode>,
    /// Leaf value of each node (0 for splits), read once per tree walk.
    values: Vec<f64>,
    /// Root index and depth (steps from root to deepest leaf) of each tree.
    trees: Vec<(u32, u32)>,
    /// Whether each tree has only numeric splits (a faster batch walk).
    numeric_only: Vec<bool>,
    cat_bits: Vec<u64>,
}

/// Error compiling an ensemble whose structure is invalid.
#[derive(Debug, thiserror::Error)]
#[error("cannot compile the ensemble: {0}")]
pub struct CompileError(String);

fn index(value: usize, what: &str) -> Result<u32, CompileError> {
    u32::try_from(value).map_err(|_| CompileError(format!("too many {what}")))
}

impl CompiledEnsemble {
    /// Flattens `ensemble`. Fails if a tree is malformed (which a loaded
    /// artifact could be), so scoring never indexes out of bounds.
    pub fn new(ensemble: &Ensemble) -> Result<Self, CompileError> {
        ensemble.validate().map_err(CompileError)?;
        if ensemble.n_features == 0 && ensemble.trees.iter().any(|t| t.nodes.len() > 1) {
            return Err(CompileError(
                "trees split on features but the model has none".into(),
            ));
        }
        let mut nodes = Vec::new();
        let mut values = Vec::new();
        let mut trees = Vec::with_capacity(ensemble.trees.len());
        let mut numeric_only = Vec::with_capacity(ensemble.trees.len());
        let mut cat_bits = Vec::new();
        for tree in &ensemble.trees {
            let root = nodes.len();
            // Breadth-first: `queue[k]` is (source node, depth) placed at `root + k`.
            let mut queue = vec![(0usize, 0u32)];
            let mut head = 0;
            let mut depth = 0;
            while head < queue.len() {
                let (source, level) = queue[head];
                let here = index(root + head, "nodes")?;
                head += 1;
                depth = depth.max(level);
                let (compiled, value) = match &tree.nodes[source] {
                    Node::Leaf { value, .. } => (
                        CompiledNode {
                            threshold: f64::INFINITY,
                            left: here,
                            feature_flags: 0,
                        },
                        *value,
                    ),
                    Node::Split {
                        feature,
                        rule,
                        left,
                        right,
                        ..
                    } => {
                        let left_index = index(root + queue.len(), "nodes")?;
                        queue.push((*left as usize, level + 1));
                        queue.push((*right as usize, level + 1));
                        if *feature > FEATURE_MASK {
                            return Err(CompileError(format!(
                                "feature index {feature} is too large"
                            )));
                        }
                        let missing = if rule.missing_left() {
                            0
                        } else {
                            MISSING_RIGHT
                        };
                        let node = match rule {
                            SplitRule::Numeric { threshold, .. } => CompiledNode {
                                threshold: *threshold,
                                left: left_index,
                                feature_flags: feature | missing,
                            },
                            SplitRule::Categorical { left: set, .. } => {
                                let words = set.last().map_or(0, |max| *max as usize / 64 + 1);
                                if words > MAX_CATEGORY_WORDS {
                                    return Err(CompileError(format!(
                                        "category code {} is too large (limit {})",
                                        set.last().copied().unwrap_or(0),
                                        MAX_CATEGORY_WORDS * 64 - 1
                                    )));
                                }
                                let cat_start = cat_bits.len();
                                cat_bits.resize(cat_start + words, 0u64);
                                for code in set {
                                    cat_bits[cat_start + *code as usize / 64] |=
                                        1u64 << (code % 64);
                                }
                                let packed = u64::from(index(cat_start, "categories")?)
                                    | u64::from(index(words, "categories")?) << 32;
                                CompiledNode {
                                    threshold: f64::from_bits(packed),
                                    left: left_index,
                                    feature_flags: feature | missing | CATEGORICAL,
                                }
                            }
                        };
                        (node, 0.0)
                    }
                };
                nodes.push(compiled);
                values.push(value);
            }
            trees.push((index(root, "nodes")?, depth));
            numeric_only.push(
                nodes[root..]
                    .iter()
                    .all(|n| n.feature_flags & CATEGORICAL == 0),
            );
        }
        Ok(CompiledEnsemble {
            n_features: ensemble.n_features,
            base_score: ensemble.base_score,
            link: ensemble.link,
            nodes,
            values,
            trees,
            numeric_only,
            cat_bits,
        })
    }

    /// Number of input features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The output link.
    pub fn link(&self) -> Link {
        self.link
    }

    /// Whether a categorical node routes `x` right.
    #[cold]
    fn categorical_goes_right(&self, node: &CompiledNode, x: f64) -> bool {
        if x.is_nan() {
            return node.feature_flags & MISSING_RIGHT != 0;
        }
        let (start, words) = node.bitset();
        match category_code(x) {
            Some(code) if (code as usize / 64) < words => {
                self.cat_bits[start + code as usize / 64] >> (code % 64) & 1 == 0
            }
            _ => true,
        }
    }

    /// One step from `node` for `row`: the index of the next node (a leaf
    /// steps to itself).
    #[inline(always)]
    fn step(&self, node: &CompiledNode, row: &[f64]) -> u32 {
        let feature = (node.feature_flags & FEATURE_MASK) as usize;
        // SAFETY: `new` checked every split's feature against `n_features`
        // (leaves use feature 0), and callers pass rows of `n_features`
        // values (asserted in `raw_score` and `raw_scores_into`; a model
        // with no features scores a one-value dummy row).
        let x = unsafe { *row.get_unchecked(feature) };
        debug_assert!(feature < row.len());
        let goes_right = if node.feature_flags & CATEGORICAL == 0 {
            (x > node.threshold) | (x.is_nan() & (node.feature_flags & MISSING_RIGHT != 0))
        } else {
            self.categorical_goes_right(node, x)
        };
        node.left + u32::from(goes_right)
    }

    /// The node at `index`, which must come from a root or a `step`.
    #[inline(always)]
    fn node(&self, index: u32) -> &CompiledNode {
        debug_assert!((index as usize) < self.nodes.len());
        // SAFETY: roots index their tree's first node; a split's `left` and
        // `left + 1` were both pushed by `new` (children are placed when
        // their parent is), and a leaf's `left` is its own index, so every
        // index a walk reaches is in bounds.
        unsafe { self.nodes.get_unchecked(index as usize) }
    }

    /// The leaf value tree `(root, depth)` gives `row`.
    #[inline(always)]
    fn leaf_value(&self, (root, depth): (u32, u32), row: &[f64]) -> f64 {
        let mut index = root;
        for _ in 0..depth {
            let next = self.step(self.node(index), row);
            if next == index {
                break;
            }
            index = next;
        }
        self.values[index as usize]
    }

    /// Raw score of one row (features in schema order). Allocation-free.
    ///
    /// # Panics
    /// If `row.len()` differs from [`Self::n_features`].
    #[inline]
    pub fn raw_score(&self, row: &[f64]) -> f64 {
        assert_eq!(
            row.len(),
            self.n_features,
            "row has the wrong number of features"
        );
        let row = if self.n_features == 0 {
            &[0.0][..]
        } else {
            row
        };
        let mut sum = self.base_score;
        for &tree in &self.trees {
            sum += self.leaf_value(tree, row);
        }
        sum
    }

    /// The model output (after the link) for one row. Allocation-free.
    #[inline]
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.link.apply(self.raw_score(row))
    }

    /// Adds every tree's leaf value to `out` for a block of rows (`rows`
    /// holds `out.len()` rows of `width` values). Full groups of [`LANES`]
    /// rows are transposed feature-major into `lanes` and walked in lockstep,
    /// tree by tree, so a tree's nodes stay in cache across the block.
    fn score_block(&self, rows: &[f64], width: usize, out: &mut [f64], lanes: &mut Vec<f64>) {
        let groups = out.len() / LANES;
        let group_len = width * LANES;
        // Group `g`, feature `f`, lane `l` lives at `g * group_len + f * LANES + l`.
        lanes.clear();
        lanes.resize(groups * group_len, 0.0);
        for (i, row) in rows.chunks_exact(width).take(groups * LANES).enumerate() {
            let (g, l) = (i / LANES, i % LANES);
            for (f, x) in row.iter().enumerate() {
                lanes[g * group_len + f * LANES + l] = *x;
            }
        }
        for (&(root, depth), &numeric_only) in self.trees.iter().zip(&self.numeric_only) {
            for (group, sums) in lanes
                .chunks_exact(group_len)
                .zip(out.chunks_exact_mut(LANES))
            {
                let mut index = [root; LANES];
                let mut remaining = depth;
                while remaining > 0 {
                    // Two steps, then stop early if no lane moved (all at leaves).
                    let before = index;
                    for _ in 0..remaining.min(2) {
                        if numeric_only {
                            for (l, at) in index.iter_mut().enumerate() {
                                *at = step_numeric(self.node(*at), group, l);
                            }
                        } else {
                            for (l, at) in index.iter_mut().enumerate() {
                                *at = self.step_lane(self.node(*at), group, l);
                            }
                        }
                    }
                    remaining = remaining.saturating_sub(2);
                    if index == before {
                        break;
                    }
                }
                for (sum, at) in sums.iter_mut().zip(index) {
                    *sum += self.values[at as usize];
                }
            }
        }
        // Rows that do not fill a group walk one at a time.
        let done = groups * LANES;
        for (sum, row) in out[done..]
            .iter_mut()
            .zip(rows[done * width..].chunks_exact(width))
        {
            for &tree in &self.trees {
                *sum += self.leaf_value(tree, row);
            }
        }
    }

    /// [`Self::step`] for lane `l` of a feature-major block.
    #[inline(always)]
    fn step_lane(&self, node: &CompiledNode, lanes: &[f64], l: usize) -> u32 {
        let at = (node.feature_flags & FEATURE_MASK) as usize * LANES + l;
        debug_assert!(at < lanes.len());
        // SAFETY: the feature is below `n_features` (checked by `new`; 0 for
        // leaves), `lanes` holds `n_features * LANES` values, and `l < LANES`.
        let x = unsafe { *lanes.get_unchecked(at) };
        let goes_right = if node.feature_flags & CATEGORICAL == 0 {
            (x > node.threshold) | (x.is_nan() & (node.feature_flags & MISSING_RIGHT != 0))
        } else {
            self.categorical_goes_right(node, x)
        };
        node.left + u32::from(goes_right)
    }

    /// Raw scores of many rows stored row-major in `rows`
    /// (`rows.len() == out.len() * n_features`), written to `out`.
    ///
    /// Blocks of rows run in parallel on rayon's pool; inside a block, rows
    /// go through each tree [`LANES`] at a time. Each row's sum is taken in
    /// tree order, so results equal [`Self::raw_score`] bit for bit.
    pub fn raw_scores_into(&self, rows: &[f64], out: &mut [f64]) {
        let width = self.n_features;
        assert_eq!(
            rows.len(),
            out.len() * width,
            "rows and out lengths disagree"
        );
        if width == 0 {
            let constant = self.raw_score(&[]);
            out.fill(constant);
            return;
        }
        out.par_chunks_mut(BLOCK_ROWS)
            .zip(rows.par_chunks(BLOCK_ROWS * width))
            .for_each(|(out_block, row_block)| {
                out_block.fill(self.base_score);
                LANE_BUFFER
                    .with_borrow_mut(|lanes| self.score_block(row_block, width, out_block, lanes));
            });
    }

    /// Raw scores of many row-major rows.
    pub fn raw_scores(&self, rows: &[f64]) -> Vec<f64> {
        let n = rows.len().checked_div(self.n_features).unwrap_or(0);
        let mut out = vec![0.0; n];
        self.raw_scores_into(rows, &mut out);
        out
    }

    /// Model outputs (after the link) of many row-major rows.
    pub fn predict_batch(&self, rows: &[f64]) -> Vec<f64> {
        let mut out = self.raw_scores(rows);
        out.iter_mut().for_each(|v| *v = self.link.apply(*v));
        out
    }
}

/// [`CompiledEnsemble::step_lane`] for a tree without categorical splits:
/// no call on the path, so the lane loop unrolls and stays in registers.
#[inline(always)]
fn step_numeric(node: &CompiledNode, lanes: &[f64], l: usize) -> u32 {
    let at = (node.feature_flags & FEATURE_MASK) as usize * LANES + l;
    debug_assert!(at < lanes.len());
    // SAFETY: as in `CompiledEnsemble::step_lane`.
    let x = unsafe { *lanes.get_unchecked(at) };
    let goes_right =
        (x > node.threshold) | (x.is_nan() & (node.feature_flags & MISSING_RIGHT != 0));
    node.left + u32::from(goes_right)
}
