//! The compiled scorer: an ensemble flattened into one cache-friendly array.
//!
//! All trees are laid out in a single array of 16-byte nodes, breadth first
//! per tree, with the two children of a split stored next to each other (so
//! a node needs only the index of its left child); leaf values live in a
//! parallel array and categorical sets in a shared bitset array.
//!
//! Numeric thresholds are stored as *order keys*: integers that compare like
//! the floats they come from (see [`order_key`]), so `x > threshold` is one
//! integer comparison. A row's values get two keys each, one with missing
//! values mapped below every threshold and one with them mapped above; each
//! node reads the copy that sends missing values its learned way. A step is
//! then `left + (key > threshold_key)`: no NaN test and no branch. Leaves
//! are nodes that step to themselves (threshold key `i64::MAX`), so a walk
//! needs no leaf test: it takes at most the tree's depth in steps.
//!
//! Batch scoring converts a block of rows into feature-major keys and walks
//! [`LANES`] rows through each tree in lockstep (checking every two steps
//! whether any row still moves). The lanes are independent, so their loads
//! overlap, and the walk has no data-dependent branches to mispredict; for
//! trees without categorical splits the lane loop has no calls and unrolls
//! into registers. A block goes through the trees one at a time, so each
//! tree's nodes stay in cache, and blocks are spread over rayon's pool.
//!
//! A categorical split's bitset spans codes 0 to its largest code, so the
//! sets are limited (per split and in total, in proportion to the number of
//! nodes) before anything is allocated: the compiled ensemble's memory stays
//! proportional to the ensemble's size whatever codes a file names.
//!
//! Invariant: for every row, [`CompiledEnsemble::raw_score`] and the batch
//! functions equal [`crate::ensemble::Ensemble::raw_score_reference`] bit for
//! bit, because all route rows identically and add the same leaf values in
//! the same (tree) order.

use rayon::prelude::*;

use crate::ensemble::{Ensemble, Link};
use crate::tree::{category_code, Node, SplitRule};

/// Flag bit: a categorical split (the key field holds the bitset location).
const CATEGORICAL: u32 = 1 << 31;
/// Mask of the slot in `slot_flags`.
const SLOT_MASK: u32 = !CATEGORICAL;

/// Largest categorical bitset of one split, in 64-bit words (category codes
/// below 4,194,304).
const MAX_CATEGORY_WORDS: usize = 1 << 16;
/// Bitset words allowed per node of the ensemble, on top of one largest
/// bitset ([`MAX_CATEGORY_WORDS`]); see [`category_words`].
const CATEGORY_WORDS_PER_NODE: usize = 16;

thread_local! {
    /// Per-thread scratch for a block's keys and values (reused across calls).
    static BLOCK_BUFFER: std::cell::RefCell<(Vec<i64>, Vec<f64>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Rows per block in batch scoring (one rayon task).
const BLOCK_ROWS: usize = 256;
/// Rows walked through a tree together.
pub const LANES: usize = 8;

/// Key of a missing value for nodes that send missing values left.
const MISSING_LOW: i64 = i64::MIN;
/// Key of a missing value for nodes that send missing values right.
const MISSING_HIGH: i64 = i64::MAX;

/// An integer that orders like `x` for every non-NaN `x`: `a > b` exactly
/// when `order_key(a) > order_key(b)`. Negative zero is treated as zero, as
/// float comparison does. Keys of real numbers lie strictly between
/// `i64::MIN` and `i64::MAX`.
#[inline(always)]
pub fn order_key(x: f64) -> i64 {
    let x = if x == 0.0 { 0.0 } else { x };
    let bits = x.to_bits() as i64;
    // Negative floats order backwards as integers: flip all but the sign bit.
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// One node of the flattened ensemble (16 bytes, four per cache line).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct CompiledNode {
    /// Numeric split: the threshold's order key (`i64::MAX` for leaves).
    /// Categorical split: `cat_start | cat_words << 32`.
    key: i64,
    /// Index of the left child; the right child is `left + 1`. A leaf's
    /// `left` is its own index.
    left: u32,
    /// The feature's slot (its index, plus `n_features` when missing values
    /// go right) and the `CATEGORICAL` flag.
    slot_flags: u32,
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
    /// Whether each tree has only numeric splits (the key-only batch walk).
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

/// Words of the bitset a categorical split's sorted `set` compiles to.
fn set_words(set: &[u32]) -> usize {
    set.last().map_or(0, |max| *max as usize / 64 + 1)
}

/// The total size, in 64-bit words, of the categorical bitsets the
/// compiled form of `ensemble` needs, or why it is too large.
///
/// A split's bitset covers codes 0 to its largest code, so a set of one
/// large code costs far more memory than its bytes in a file. One split may
/// use at most [`MAX_CATEGORY_WORDS`]; all splits together at most that
/// plus [`CATEGORY_WORDS_PER_NODE`] per node. Trained sets hold codes of a
/// feature's most frequent categories (dictionaries list those first), a
/// few words each, far inside both limits; the total limit keeps a crafted
/// artifact with many sets of large codes from allocating gigabytes (memory
/// stays proportional to the number of nodes).
pub(crate) fn category_words(ensemble: &Ensemble) -> Result<usize, String> {
    let mut total = 0usize;
    let mut nodes = 0usize;
    for (t, tree) in ensemble.trees.iter().enumerate() {
        nodes = nodes.saturating_add(tree.nodes.len());
        for (i, node) in tree.nodes.iter().enumerate() {
            if let Node::Split {
                rule: SplitRule::Categorical { left: set, .. },
                ..
            } = node
            {
                let words = set_words(set);
                if words > MAX_CATEGORY_WORDS {
                    return Err(format!(
                        "tree {t}, node {i}: category code {} is too large (limit {})",
                        set.last().copied().unwrap_or(0),
                        MAX_CATEGORY_WORDS * 64 - 1
                    ));
                }
                total += words;
            }
        }
    }
    let budget = nodes
        .saturating_mul(CATEGORY_WORDS_PER_NODE)
        .saturating_add(MAX_CATEGORY_WORDS);
    if total > budget {
        return Err(format!(
            "the categorical splits need {total} bitset words in all, more than the {budget} \
             allowed for {nodes} nodes ({CATEGORY_WORDS_PER_NODE} per node plus {MAX_CATEGORY_WORDS}): \
             their sets name category codes far beyond any trained split"
        ));
    }
    Ok(total)
}

impl CompiledEnsemble {
    /// Flattens `ensemble`. Fails if a tree is malformed (which a loaded
    /// artifact could be), so scoring never indexes out of bounds, or if
    /// its categorical sets would need too much memory (one split's bitset
    /// may span 65,536 words, all of them together that plus 16 words per
    /// node), so a crafted artifact cannot make it allocate gigabytes.
    pub fn new(ensemble: &Ensemble) -> Result<Self, CompileError> {
        ensemble
            .validate()
            .map_err(|e| CompileError(e.to_string()))?;
        let total_words = category_words(ensemble).map_err(CompileError)?;
        let n_features = ensemble.n_features;
        if n_features == 0 && ensemble.trees.iter().any(|t| t.nodes.len() > 1) {
            return Err(CompileError(
                "trees split on features but the model has none".into(),
            ));
        }
        if n_features > SLOT_MASK as usize / 2 {
            return Err(CompileError(format!("{n_features} features are too many")));
        }
        let mut nodes = Vec::new();
        let mut values = Vec::new();
        let mut trees = Vec::with_capacity(ensemble.trees.len());
        let mut numeric_only = Vec::with_capacity(ensemble.trees.len());
        let mut cat_bits = Vec::with_capacity(total_words);
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
                            key: i64::MAX,
                            left: here,
                            slot_flags: 0,
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
                        let slot = *feature
                            + if rule.missing_left() {
                                0
                            } else {
                                n_features as u32
                            };
                        let node = match rule {
                            SplitRule::Numeric { threshold, .. } => CompiledNode {
                                key: order_key(*threshold),
                                left: left_index,
                                slot_flags: slot,
                            },
                            SplitRule::Categorical { left: set, .. } => {
                                // At most MAX_CATEGORY_WORDS (`category_words`).
                                let words = set_words(set);
                                let cat_start = cat_bits.len();
                                cat_bits.resize(cat_start + words, 0u64);
                                for code in set {
                                    cat_bits[cat_start + *code as usize / 64] |=
                                        1u64 << (code % 64);
                                }
                                let packed = i64::from(index(cat_start, "categories")?)
                                    | (words as i64) << 32;
                                CompiledNode {
                                    key: packed,
                                    left: left_index,
                                    slot_flags: slot | CATEGORICAL,
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
                    .all(|n| n.slot_flags & CATEGORICAL == 0),
            );
        }
        Ok(CompiledEnsemble {
            n_features,
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

    /// The node at `index`, which must come from a root or a step.
    #[inline(always)]
    fn node(&self, index: u32) -> &CompiledNode {
        debug_assert!((index as usize) < self.nodes.len());
        // SAFETY: roots index their tree's first node; a split's `left` and
        // `left + 1` were both pushed by `new` (children are placed when
        // their parent is), and a leaf's `left` is its own index, so every
        // index a walk reaches is in bounds.
        unsafe { self.nodes.get_unchecked(index as usize) }
    }

    /// Feature index and whether missing values go right, from a slot.
    #[inline(always)]
    fn feature_of(&self, node: &CompiledNode) -> (usize, bool) {
        let slot = (node.slot_flags & SLOT_MASK) as usize;
        if slot >= self.n_features {
            (slot - self.n_features, true)
        } else {
            (slot, false)
        }
    }

    /// Whether a categorical node routes `x` right.
    #[cold]
    fn categorical_goes_right(&self, node: &CompiledNode, x: f64, missing_right: bool) -> bool {
        if x.is_nan() {
            return missing_right;
        }
        let (start, words) = ((node.key & 0xFFFF_FFFF) as usize, (node.key >> 32) as usize);
        match category_code(x) {
            Some(code) if (code as usize / 64) < words => {
                self.cat_bits[start + code as usize / 64] >> (code % 64) & 1 == 0
            }
            _ => true,
        }
    }

    /// One step from `node` for the value `x` of its feature: the index of
    /// the next node (a leaf steps to itself).
    #[inline(always)]
    fn step_value(&self, node: &CompiledNode, x: f64, missing_right: bool) -> u32 {
        let goes_right = if node.slot_flags & CATEGORICAL != 0 {
            self.categorical_goes_right(node, x, missing_right)
        } else if x.is_nan() {
            missing_right && node.key != i64::MAX
        } else {
            order_key(x) > node.key
        };
        node.left + u32::from(goes_right)
    }

    /// The leaf value tree `(root, depth)` gives `row`.
    #[inline(always)]
    fn leaf_value(&self, (root, depth): (u32, u32), row: &[f64]) -> f64 {
        let mut index = root;
        for _ in 0..depth {
            let node = self.node(index);
            let (feature, missing_right) = self.feature_of(node);
            let next = self.step_value(node, row[feature], missing_right);
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
        // A walk is a chain of dependent loads; walking LANES trees at once
        // gives the CPU independent chains to overlap. Leaves step to
        // themselves, so lanes that arrive early idle in place. The sum is
        // still taken in tree order (bit-identical to one tree at a time).
        let mut sum = self.base_score;
        let mut groups = self.trees.chunks_exact(LANES);
        for group in &mut groups {
            let mut index: [u32; LANES] = std::array::from_fn(|l| group[l].0);
            let mut remaining = group.iter().map(|&(_, depth)| depth).max().unwrap_or(0);
            while remaining > 0 {
                let before = index;
                for _ in 0..remaining.min(2) {
                    for at in index.iter_mut() {
                        let node = self.node(*at);
                        let (feature, missing_right) = self.feature_of(node);
                        *at = self.step_value(node, row[feature], missing_right);
                    }
                }
                remaining = remaining.saturating_sub(2);
                if index == before {
                    break;
                }
            }
            for at in index {
                sum += self.values[at as usize];
            }
        }
        for &tree in groups.remainder() {
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
    /// holds `out.len()` rows of `width` values).
    ///
    /// Full groups of [`LANES`] rows are laid out feature-major: in group
    /// `g`, the key of slot `s` for lane `l` is
    /// `keys[g * 2 * width * LANES + s * LANES + l]` (slots below `width`
    /// map missing values low, the others high), and likewise `values` holds
    /// the raw values for trees with categorical splits.
    fn score_block(
        &self,
        rows: &[f64],
        width: usize,
        out: &mut [f64],
        keys: &mut Vec<i64>,
        values: &mut Vec<f64>,
    ) {
        let groups = out.len() / LANES;
        let key_group = 2 * width * LANES;
        let value_group = width * LANES;
        let need_values = self.numeric_only.iter().any(|n| !n);
        keys.clear();
        keys.resize(groups * key_group, 0);
        values.clear();
        if need_values {
            values.resize(groups * value_group, 0.0);
        }
        for (i, row) in rows.chunks_exact(width).take(groups * LANES).enumerate() {
            let (g, l) = (i / LANES, i % LANES);
            for (f, x) in row.iter().enumerate() {
                let (low, high) = if x.is_nan() {
                    (MISSING_LOW, MISSING_HIGH)
                } else {
                    (order_key(*x), order_key(*x))
                };
                keys[g * key_group + f * LANES + l] = low;
                keys[g * key_group + (width + f) * LANES + l] = high;
                if need_values {
                    values[g * value_group + f * LANES + l] = *x;
                }
            }
        }
        for (&(root, depth), &numeric_only) in self.trees.iter().zip(&self.numeric_only) {
            for (g, sums) in out.chunks_exact_mut(LANES).enumerate() {
                let group_keys = &keys[g * key_group..(g + 1) * key_group];
                let mut index = [root; LANES];
                let mut remaining = depth;
                while remaining > 0 {
                    // Two steps, then stop early if no lane moved (all at leaves).
                    let before = index;
                    for _ in 0..remaining.min(2) {
                        if numeric_only {
                            for (l, at) in index.iter_mut().enumerate() {
                                *at = step_key(self.node(*at), group_keys, l);
                            }
                        } else {
                            let group_values = &values[g * value_group..(g + 1) * value_group];
                            for (l, at) in index.iter_mut().enumerate() {
                                let node = self.node(*at);
                                let (feature, missing_right) = self.feature_of(node);
                                *at = self.step_value(
                                    node,
                                    group_values[feature * LANES + l],
                                    missing_right,
                                );
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
                BLOCK_BUFFER.with_borrow_mut(|(keys, values)| {
                    self.score_block(row_block, width, out_block, keys, values)
                });
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

/// One step of a numeric-only tree for lane `l` of a group's keys: the
/// node's slot picks the key copy that routes missing values its way.
#[inline(always)]
fn step_key(node: &CompiledNode, keys: &[i64], l: usize) -> u32 {
    let at = node.slot_flags as usize * LANES + l;
    debug_assert!(at < keys.len());
    // SAFETY: numeric nodes have `slot < 2 * n_features` (`new` builds it
    // from a feature below `n_features`; leaves use slot 0), `keys` holds
    // `2 * n_features * LANES` keys for the group, and `l < LANES`.
    let key = unsafe { *keys.get_unchecked(at) };
    node.left + u32::from(key > node.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_order_like_floats() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -2.0,
            -1.0,
            -f64::MIN_POSITIVE,
            -5e-324,
            -0.0,
            0.0,
            5e-324,
            f64::MIN_POSITIVE,
            1.0,
            1.5,
            1e300,
            f64::INFINITY,
        ];
        for a in values {
            for b in values {
                assert_eq!(a > b, order_key(a) > order_key(b), "{a} vs {b}");
            }
            assert!(order_key(a) > MISSING_LOW && order_key(a) < MISSING_HIGH);
        }
    }
}
