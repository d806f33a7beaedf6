//! The compiled scorer: an ensemble flattened into one cache-friendly array.
//!
//! All trees are laid out in a single `Vec<CompiledNode>`, breadth first per
//! tree, with the two children of a split stored next to each other (so a
//! node needs only the index of its left child). Categorical sets live in a
//! shared bitset array. Scoring one row walks these arrays without allocating;
//! batch scoring works through blocks of rows, tree by tree, so a tree's nodes
//! stay in cache across the block, and spreads blocks over rayon's pool.
//!
//! Invariant: for every row, [`CompiledEnsemble::raw_score`] equals
//! [`crate::ensemble::Ensemble::raw_score_reference`] bit for bit, because
//! both add the same leaf values in the same (tree) order.

use rayon::prelude::*;

use crate::ensemble::{Ensemble, Link};
use crate::tree::{category_code, Node, SplitRule};

const LEAF: u16 = 1;
const MISSING_LEFT: u16 = 2;
const CATEGORICAL: u16 = 4;

/// Rows per block in batch scoring.
const BLOCK_ROWS: usize = 64;

/// One node of the flattened ensemble (24 bytes).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct CompiledNode {
    /// Threshold for numeric splits, the leaf value for leaves.
    value: f64,
    /// Index of the left child; the right child is `left + 1`.
    left: u32,
    /// Feature index (splits only).
    feature: u32,
    /// First word of the categorical bitset (categorical splits only).
    cat_start: u32,
    /// Number of bitset words (categorical splits only).
    cat_words: u16,
    /// `LEAF`, `MISSING_LEFT`, `CATEGORICAL` bits.
    flags: u16,
}

/// An ensemble compiled for fast scoring. Build it with
/// [`CompiledEnsemble::new`]; it is immutable and `Sync`.
#[derive(Debug, Clone)]
pub struct CompiledEnsemble {
    n_features: usize,
    base_score: f64,
    link: Link,
    nodes: Vec<CompiledNode>,
    roots: Vec<u32>,
    cat_bits: Vec<u64>,
}

/// Error compiling an ensemble whose structure is invalid.
#[derive(Debug, thiserror::Error)]
#[error("cannot compile the ensemble: {0}")]
pub struct CompileError(String);

impl CompiledEnsemble {
    /// Flattens `ensemble`. Fails if a tree is malformed (which a loaded
    /// artifact could be), so scoring never indexes out of bounds.
    pub fn new(ensemble: &Ensemble) -> Result<Self, CompileError> {
        ensemble.validate().map_err(CompileError)?;
        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(ensemble.trees.len());
        let mut cat_bits = Vec::new();
        for tree in &ensemble.trees {
            let root = nodes.len();
            roots.push(u32::try_from(root).map_err(|_| CompileError("too many nodes".into()))?);
            // Breadth-first: `queue[k]` is the source node placed at `root + k`.
            let mut queue = vec![0usize];
            let mut head = 0;
            while head < queue.len() {
                let source = &tree.nodes[queue[head]];
                head += 1;
                let compiled = match source {
                    Node::Leaf { value, .. } => CompiledNode {
                        value: *value,
                        left: 0,
                        feature: 0,
                        cat_start: 0,
                        cat_words: 0,
                        flags: LEAF,
                    },
                    Node::Split {
                        feature,
                        rule,
                        left,
                        right,
                        ..
                    } => {
                        let left_index = root + queue.len();
                        queue.push(*left as usize);
                        queue.push(*right as usize);
                        let left_index = u32::try_from(left_index)
                            .map_err(|_| CompileError("too many nodes".into()))?;
                        match rule {
                            SplitRule::Numeric {
                                threshold,
                                missing_left,
                            } => CompiledNode {
                                value: *threshold,
                                left: left_index,
                                feature: *feature,
                                cat_start: 0,
                                cat_words: 0,
                                flags: if *missing_left { MISSING_LEFT } else { 0 },
                            },
                            SplitRule::Categorical {
                                left: set,
                                missing_left,
                            } => {
                                let words = set.last().map_or(0, |max| *max as usize / 64 + 1);
                                let cat_words = u16::try_from(words).map_err(|_| {
                                    CompileError(format!(
                                        "category code {} is too large",
                                        set.last().unwrap_or(&0)
                                    ))
                                })?;
                                let cat_start = cat_bits.len();
                                cat_bits.resize(cat_start + words, 0u64);
                                for code in set {
                                    cat_bits[cat_start + *code as usize / 64] |=
                                        1u64 << (code % 64);
                                }
                                CompiledNode {
                                    value: 0.0,
                                    left: left_index,
                                    feature: *feature,
                                    cat_start: u32::try_from(cat_start)
                                        .map_err(|_| CompileError("too many categories".into()))?,
                                    cat_words,
                                    flags: CATEGORICAL
                                        | if *missing_left { MISSING_LEFT } else { 0 },
                                }
                            }
                        }
                    }
                };
                nodes.push(compiled);
            }
        }
        Ok(CompiledEnsemble {
            n_features: ensemble.n_features,
            base_score: ensemble.base_score,
            link: ensemble.link,
            nodes,
            roots,
            cat_bits,
        })
    }

    /// Number of input features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// The output link.
    pub fn link(&self) -> Link {
        self.link
    }

    #[inline(always)]
    fn leaf_value(&self, root: u32, row: &[f64]) -> f64 {
        let mut index = root as usize;
        loop {
            let node = &self.nodes[index];
            if node.flags & LEAF != 0 {
                return node.value;
            }
            let x = row[node.feature as usize];
            let goes_left = if x.is_nan() {
                node.flags & MISSING_LEFT != 0
            } else if node.flags & CATEGORICAL == 0 {
                x <= node.value
            } else {
                match category_code(x) {
                    Some(code) if (code as usize / 64) < node.cat_words as usize => {
                        let word = self.cat_bits[node.cat_start as usize + code as usize / 64];
                        word >> (code % 64) & 1 == 1
                    }
                    _ => false,
                }
            };
            index = node.left as usize + usize::from(!goes_left);
        }
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
        let mut sum = self.base_score;
        for &root in &self.roots {
            sum += self.leaf_value(root, row);
        }
        sum
    }

    /// The model output (after the link) for one row. Allocation-free.
    #[inline]
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.link.apply(self.raw_score(row))
    }

    /// Raw scores of many rows stored row-major in `rows`
    /// (`rows.len() == n * n_features`), written to `out` (length `n`).
    ///
    /// Rows are processed in blocks of 64, tree by tree inside a block, and
    /// blocks run in parallel on rayon's pool. Each row's sum is taken in
    /// tree order, so results equal [`Self::raw_score`] bit for bit.
    pub fn raw_scores_into(&self, rows: &[f64], out: &mut [f64]) {
        let width = self.n_features;
        assert_eq!(
            rows.len(),
            out.len() * width,
            "rows and out lengths disagree"
        );
        if width == 0 {
            out.fill(
                self.base_score
                    + self
                        .roots
                        .iter()
                        .map(|&r| self.leaf_value(r, &[]))
                        .sum::<f64>(),
            );
            return;
        }
        out.par_chunks_mut(BLOCK_ROWS)
            .zip(rows.par_chunks(BLOCK_ROWS * width))
            .for_each(|(out_block, row_block)| {
                out_block.fill(self.base_score);
                for &root in &self.roots {
                    for (sum, row) in out_block.iter_mut().zip(row_block.chunks_exact(width)) {
                        *sum += self.leaf_value(root, row);
                    }
                }
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
