//! Exact per-row feature contributions (SHAP values) for tree ensembles.
//!
//! This is the polynomial-time *TreeSHAP* algorithm of Lundberg, Erion & Lee
//! (2018), "Consistent Individualized Feature Attribution for Tree
//! Ensembles" (arXiv:1802.03888), Algorithm 2, written from the paper.
//!
//! ## What is computed
//!
//! For a tree `f` and a row `x`, the value of a feature subset `S` is the
//! conditional expectation `E[f(x) | x_S]` under the tree's cover weights:
//! walk the tree, following the row at splits on features in `S` and taking
//! the cover-weighted average of both children at every other split. The
//! contribution of feature `i` is its Shapley value in that game, and the
//! bias slot holds `E[f]` (the value of the empty set). By the efficiency of
//! Shapley values, bias plus contributions equals `f(x)` (local accuracy).
//! Contributions are additive over trees, so an ensemble's contributions are
//! the sum over its trees, with `base_score` added to the bias.
//!
//! ## How
//!
//! A depth-first walk keeps the *path* of unique features from the root to
//! the current node. Each path element stores its feature, the fraction of
//! zero-paths (cover share of the branch taken when the feature is *not* in
//! `S`) and one-paths (1 if `x` itself takes the branch, else 0) flowing
//! through it, and the path carries, for every subset size `k`, the total
//! Shapley-weighted proportion of subsets of that size (`pweight`). EXTEND
//! adds a feature to the path in `O(D)`; UNWIND undoes it. At a leaf, for
//! each feature on the path, unwinding it and summing the remaining weights
//! gives that feature's Shapley weight, so the leaf adds
//! `weight * (one - zero) * value`. A feature met twice on one path is
//! unwound first and re-extended with the product of its fractions, as in the
//! paper. The cost is `O(L D^2)` per tree, `L` leaves, `D` depth.
//!
//! Conventions of this implementation:
//! - The "hot" child is the one [`crate::tree::SplitRule::goes_left`] picks
//!   for the row, so missing values, unseen categories and infinities are
//!   attributed exactly along the path scoring takes.
//! - The share of a child is its cover over the sum of both children's
//!   covers. For trees whose split covers equal the sum of their children's
//!   (every trained tree) this is the paper's `r_child / r_parent`; it also
//!   keeps shares summing to 1 when covers are rounded or inconsistent.
//!   Negative or `NaN` covers count as 0; when the children's total cover
//!   is zero or infinite, each gets 1/2.
//! - Subtrees reached only with zero probability on both the zero- and the
//!   one-path contribute nothing and are skipped (this also avoids dividing
//!   by a zero fraction while unwinding).
//!
//! Path storage lives in a [`ShapWorkspace`] that can be reused across rows,
//! so explaining many rows does not allocate per row.
//!
//! ## Depth
//!
//! Both walks (the expected value and RECURSE) recurse once per tree level,
//! and RECURSE keeps one copy of the path per level: at depth `D` the
//! workspace holds at most `(D + 1)(D + 2) / 2` path elements (fewer when
//! features repeat along a path). Trees that pass
//! [`crate::tree::Tree::validate`], which every loaded artifact's trees do,
//! are at most [`MAX_TREE_DEPTH`] levels deep, and that bounds both the
//! stack (under 256 KiB optimised, under 1 MiB in debug builds, where
//! threads get 2 MiB) and the workspace (16.8 MB); the constant's
//! documentation has the numbers. A deeper,
//! unvalidated tree makes the walk panic with a message before it recurses
//! past the limit, instead of overflowing the stack.
//!
//! The limit bounds resources, not rounding. UNWIND inverts EXTEND by
//! division, and on a path of many distinct features with lopsided covers
//! (each split sending a few rows one way) its rounding errors compound: on
//! such a chain, bias plus contributions misses the raw score by about
//! 1e-10 with 30 distinct features on the path, 1e-5 with 48, and by more
//! than the score itself with 64; with even covers it stays within 1e-14 at
//! 1,024. Explanations of deep trees over many features are only as good as
//! their local accuracy, which callers can check.

use crate::ensemble::Ensemble;
use crate::tree::{Node, Tree, MAX_TREE_DEPTH};

/// Feature id of the placeholder element at the start of every path.
const NO_FEATURE: u32 = u32::MAX;

/// One element of the unique-feature path (the paper's `m`).
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    /// Feature split on (`NO_FEATURE` for the root placeholder).
    feature: u32,
    /// Fraction of zero-paths (feature not in `S`) flowing through.
    zero: f64,
    /// Fraction of one-paths (feature in `S`) flowing through: 0 or 1.
    one: f64,
    /// Proportion of subsets of size equal to this element's index.
    pweight: f64,
}

/// Reusable scratch memory for TreeSHAP; keeps per-row explanation
/// allocation-free once it has grown to the deepest tree seen.
#[derive(Debug, Clone, Default)]
pub struct ShapWorkspace {
    path: Vec<PathElement>,
}

impl ShapWorkspace {
    /// An empty workspace; it grows on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the contributions of `row` to `out` (`n_features + 1` slots,
    /// the last the bias including `base_score`), overwriting it.
    ///
    /// # Panics
    /// If `row.len() != ensemble.n_features` or `out.len() != row.len() + 1`,
    /// or if a tree is malformed (see [`Ensemble::validate`]).
    pub fn contributions_into(&mut self, ensemble: &Ensemble, row: &[f64], out: &mut [f64]) {
        assert_eq!(
            row.len(),
            ensemble.n_features,
            "row has the wrong number of features"
        );
        assert_eq!(
            out.len(),
            row.len() + 1,
            "out must have one slot per feature plus the bias"
        );
        out.fill(0.0);
        for tree in &ensemble.trees {
            self.tree_contributions(tree, row, out);
        }
        out[row.len()] += ensemble.base_score;
    }

    /// Adds the contributions of one tree for `row` to `out`
    /// (`row.len() + 1` slots, the last the tree's expected value).
    ///
    /// # Panics
    /// If `out.len() != row.len() + 1` or the tree is malformed (a child
    /// index out of range, a feature outside `row`, a cycle, more than
    /// [`MAX_TREE_DEPTH`] levels).
    pub fn tree_contributions(&mut self, tree: &Tree, row: &[f64], out: &mut [f64]) {
        assert_eq!(
            out.len(),
            row.len() + 1,
            "out must have one slot per feature plus the bias"
        );
        assert!(!tree.nodes.is_empty(), "tree has no nodes");
        let n_features = row.len();
        out[n_features] += expected_value(tree, 0, 0);
        let mut walk = Walk {
            tree,
            row,
            out: &mut out[..n_features],
            path: &mut self.path,
        };
        walk.recurse(0, 0, 0, 1.0, 1.0, NO_FEATURE, 0);
    }
}

/// Adds one tree's contributions for `row` to `out` (`row.len() + 1` slots,
/// the last the tree's cover-weighted expected value).
pub fn tree_contributions(tree: &Tree, row: &[f64], out: &mut [f64]) {
    ShapWorkspace::new().tree_contributions(tree, row, out);
}

/// Contributions of every feature to the raw score of `row`, plus the bias
/// (expected raw score, including `base_score`) in the last slot.
///
/// # Panics
/// If `row.len() != ensemble.n_features` or a tree is malformed.
pub fn contributions(ensemble: &Ensemble, row: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; row.len() + 1];
    ShapWorkspace::new().contributions_into(ensemble, row, &mut out);
    out
}

/// Cover shares `(left, right)` of a split's two children.
#[inline]
fn child_shares(tree: &Tree, left: usize, right: usize) -> (f64, f64) {
    // `f64::max` maps NaN to 0 as well as clamping negatives.
    let left_cover = tree.nodes[left].cover().max(0.0);
    let right_cover = tree.nodes[right].cover().max(0.0);
    let total = left_cover + right_cover;
    if total > 0.0 && total.is_finite() {
        (left_cover / total, right_cover / total)
    } else {
        (0.5, 0.5)
    }
}

/// Cover-weighted mean leaf value of the subtree at `index` (`E[f]`).
fn expected_value(tree: &Tree, index: usize, depth: usize) -> f64 {
    check_depth(tree, depth);
    match &tree.nodes[index] {
        Node::Leaf { value, .. } => *value,
        Node::Split { left, right, .. } => {
            let (left, right) = (*left as usize, *right as usize);
            let (left_share, right_share) = child_shares(tree, left, right);
            left_share * expected_value(tree, left, depth + 1)
                + right_share * expected_value(tree, right, depth + 1)
        }
    }
}

/// Stops a walk that reaches `depth` in `tree` before it can loop forever
/// (a cycle) or exhaust the stack (deeper than [`MAX_TREE_DEPTH`]).
#[inline]
fn check_depth(tree: &Tree, depth: usize) {
    assert!(depth <= tree.nodes.len(), "tree has a cycle");
    assert!(
        depth <= MAX_TREE_DEPTH,
        "tree is deeper than MAX_TREE_DEPTH ({MAX_TREE_DEPTH}); validate it first"
    );
}

/// State of one TreeSHAP walk over a tree.
struct Walk<'a> {
    tree: &'a Tree,
    row: &'a [f64],
    out: &'a mut [f64],
    /// Stack of paths: a node's path starts right after its parent's.
    path: &'a mut Vec<PathElement>,
}

impl Walk<'_> {
    /// The paper's RECURSE: visits `index`, whose parent's path occupies
    /// `path[parent_start..parent_start + parent_len]`, after taking a branch
    /// with fractions `(zero, one)` on `feature`.
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &mut self,
        index: usize,
        parent_start: usize,
        parent_len: usize,
        zero: f64,
        one: f64,
        feature: u32,
        depth: usize,
    ) {
        check_depth(self.tree, depth);
        if zero == 0.0 && one == 0.0 {
            // No subset reaches this subtree: every leaf weight below is 0.
            return;
        }
        // Copy the parent's path and extend it with this branch.
        let start = parent_start + parent_len;
        let mut len = parent_len + 1;
        if self.path.len() < start + len {
            self.path.resize(start + len, PathElement::default());
        }
        self.path.copy_within(parent_start..start, start);
        extend(&mut self.path[start..start + len], zero, one, feature);

        match &self.tree.nodes[index] {
            Node::Leaf { value, .. } => {
                let path = &self.path[start..start + len];
                for (i, element) in path.iter().enumerate().skip(1) {
                    let weight = unwound_sum(path, i);
                    self.out[element.feature as usize] +=
                        weight * (element.one - element.zero) * value;
                }
            }
            Node::Split {
                feature: split_feature,
                rule,
                left,
                right,
                ..
            } => {
                let (left, right) = (*left as usize, *right as usize);
                let (left_share, right_share) = child_shares(self.tree, left, right);
                let x = self.row[*split_feature as usize];
                let (hot, hot_share, cold, cold_share) = if rule.goes_left(x) {
                    (left, left_share, right, right_share)
                } else {
                    (right, right_share, left, left_share)
                };
                // A feature already on the path is unwound and re-entered
                // with the product of its fractions.
                let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
                if let Some(k) = self.path[start + 1..start + len]
                    .iter()
                    .position(|e| e.feature == *split_feature)
                    .map(|k| k + 1)
                {
                    let element = self.path[start + k];
                    incoming_zero = element.zero;
                    incoming_one = element.one;
                    unwind(&mut self.path[start..start + len], k);
                    len -= 1;
                }
                self.recurse(
                    hot,
                    start,
                    len,
                    incoming_zero * hot_share,
                    incoming_one,
                    *split_feature,
                    depth + 1,
                );
                self.recurse(
                    cold,
                    start,
                    len,
                    incoming_zero * cold_share,
                    0.0,
                    *split_feature,
                    depth + 1,
                );
            }
        }
    }
}

/// The paper's EXTEND: `path` has room for one more element at its end;
/// the others already hold the parent's path. Adds `(feature, zero, one)`
/// and updates the subset-size weights.
fn extend(path: &mut [PathElement], zero: f64, one: f64, feature: u32) {
    let l = path.len() - 1; // elements before this one
    path[l] = PathElement {
        feature,
        zero,
        one,
        pweight: if l == 0 { 1.0 } else { 0.0 },
    };
    let scale = (l + 1) as f64;
    for i in (0..l).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f64 / scale;
        path[i].pweight = zero * path[i].pweight * (l - i) as f64 / scale;
    }
}

/// The paper's UNWIND, in place: removes element `k` from `path`, leaving
/// the first `path.len() - 1` elements as if `k` had never been extended.
fn unwind(path: &mut [PathElement], k: usize) {
    let len = path.len();
    let n = len as f64;
    let PathElement { zero, one, .. } = path[k];
    if one != 0.0 {
        let mut carry = path[len - 1].pweight;
        for j in (0..len - 1).rev() {
            let previous = path[j].pweight;
            path[j].pweight = carry * n / ((j + 1) as f64 * one);
            carry = previous - path[j].pweight * zero * (len - 1 - j) as f64 / n;
        }
    } else {
        for (j, element) in path[..len - 1].iter_mut().enumerate() {
            element.pweight = element.pweight * n / (zero * (len - 1 - j) as f64);
        }
    }
    for j in k..len - 1 {
        let next = path[j + 1];
        path[j].feature = next.feature;
        path[j].zero = next.zero;
        path[j].one = next.one;
    }
}

/// Sum of the weights UNWIND would leave after removing element `k`,
/// without modifying `path`.
fn unwound_sum(path: &[PathElement], k: usize) -> f64 {
    let len = path.len();
    let n = len as f64;
    let PathElement { zero, one, .. } = path[k];
    let mut total = 0.0;
    if one != 0.0 {
        let mut carry = path[len - 1].pweight;
        for j in (0..len - 1).rev() {
            let weight = carry * n / ((j + 1) as f64 * one);
            total += weight;
            carry = path[j].pweight - weight * zero * (len - 1 - j) as f64 / n;
        }
    } else {
        for (j, element) in path[..len - 1].iter().enumerate() {
            total += element.pweight * n / (zero * (len - 1 - j) as f64);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ensemble::Link;
    use crate::tree::SplitRule;

    /// SplitMix64, enough randomness for building test trees.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n
        }

        fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        fn chance(&mut self, p: f64) -> bool {
            self.unit() < p
        }
    }

    fn leaf(value: f64, cover: f64) -> Node {
        Node::Leaf { value, cover }
    }

    fn numeric(
        feature: u32,
        threshold: f64,
        missing_left: bool,
        left: u32,
        right: u32,
        cover: f64,
    ) -> Node {
        Node::Split {
            feature,
            rule: SplitRule::Numeric {
                threshold,
                missing_left,
            },
            left,
            right,
            gain: 1.0,
            cover,
        }
    }

    fn categorical(
        feature: u32,
        codes: &[u32],
        missing_left: bool,
        left: u32,
        right: u32,
        cover: f64,
    ) -> Node {
        Node::Split {
            feature,
            rule: SplitRule::Categorical {
                left: codes.to_vec(),
                missing_left,
            },
            left,
            right,
            gain: 1.0,
            cover,
        }
    }

    /// Appends a random subtree of at most `depth` levels; returns its index.
    /// Feature 0 is categorical, the others numeric. Covers are consistent
    /// (a split's cover is the sum of its children's) unless `sloppy`.
    fn random_subtree(
        rng: &mut Rng,
        nodes: &mut Vec<Node>,
        n_features: u32,
        depth: usize,
        sloppy: bool,
    ) -> u32 {
        let index = nodes.len();
        nodes.push(leaf(0.0, 0.0)); // placeholder
        if depth == 0 || rng.chance(0.2) {
            let value = (rng.unit() - 0.5) * 10.0;
            let cover = 1.0 + (rng.below(100) as f64);
            nodes[index] = leaf(value, cover);
            return index as u32;
        }
        let feature = rng.below(u64::from(n_features)) as u32;
        let left = random_subtree(rng, nodes, n_features, depth - 1, sloppy);
        let right = random_subtree(rng, nodes, n_features, depth - 1, sloppy);
        let mut cover = nodes[left as usize].cover() + nodes[right as usize].cover();
        if sloppy {
            cover *= 0.5 + rng.unit();
        }
        let missing_left = rng.chance(0.5);
        nodes[index] = if feature == 0 {
            let mut codes: Vec<u32> = (0..6).filter(|_| rng.chance(0.5)).collect();
            codes.dedup();
            categorical(feature, &codes, missing_left, left, right, cover)
        } else {
            let threshold = rng.below(5) as f64;
            numeric(feature, threshold, missing_left, left, right, cover)
        };
        index as u32
    }

    fn random_tree(rng: &mut Rng, n_features: u32, depth: usize, sloppy: bool) -> Tree {
        let mut nodes = Vec::new();
        random_subtree(rng, &mut nodes, n_features, depth, sloppy);
        Tree { nodes }
    }

    fn random_row(rng: &mut Rng, n_features: usize) -> Vec<f64> {
        (0..n_features)
            .map(|_| match rng.below(10) {
                0 => f64::NAN,
                1 => -1.0,
                2 => 2.5,
                3 => f64::INFINITY,
                _ => rng.below(6) as f64,
            })
            .collect()
    }

    /// Brute-force `E[f(x) | x_S]` by the cover-weighted walk, using the
    /// same child shares as TreeSHAP.
    fn conditional_expectation(tree: &Tree, row: &[f64], subset: u32, index: usize) -> f64 {
        match &tree.nodes[index] {
            Node::Leaf { value, .. } => *value,
            Node::Split {
                feature,
                rule,
                left,
                right,
                ..
            } => {
                let (left, right) = (*left as usize, *right as usize);
                if subset >> feature & 1 == 1 {
                    let next = if rule.goes_left(row[*feature as usize]) {
                        left
                    } else {
                        right
                    };
                    conditional_expectation(tree, row, subset, next)
                } else {
                    let (left_share, right_share) = child_shares(tree, left, right);
                    left_share * conditional_expectation(tree, row, subset, left)
                        + right_share * conditional_expectation(tree, row, subset, right)
                }
            }
        }
    }

    /// Exact Shapley values by enumerating all `2^M` subsets.
    fn brute_force(tree: &Tree, row: &[f64]) -> Vec<f64> {
        let m = row.len();
        let factorial = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
        let values: Vec<f64> = (0..1u32 << m)
            .map(|s| conditional_expectation(tree, row, s, 0))
            .collect();
        let mut phi = vec![0.0; m + 1];
        for (i, phi_i) in phi.iter_mut().enumerate().take(m) {
            for s in 0..1u32 << m {
                if s >> i & 1 == 1 {
                    continue;
                }
                let size = s.count_ones() as usize;
                let weight = factorial(size) * factorial(m - size - 1) / factorial(m);
                *phi_i += weight * (values[(s | 1 << i) as usize] - values[s as usize]);
            }
        }
        phi[m] = values[0];
        phi
    }

    fn assert_sums_to_score(ensemble: &Ensemble, row: &[f64]) {
        let phi = contributions(ensemble, row);
        assert_eq!(phi.len(), row.len() + 1);
        let total: f64 = phi.iter().sum();
        let raw = ensemble.raw_score_reference(row);
        assert!(
            (total - raw).abs() <= 1e-9 * raw.abs().max(1.0),
            "contributions sum to {total}, raw score is {raw} (row {row:?}, phi {phi:?})"
        );
    }

    /// Hand-built trees: numeric, categorical, a repeated feature, NaN routing.
    fn hand_built() -> Ensemble {
        // x0 numeric (<= 1.5, missing right), then x1 categorical {1, 3}
        // (missing left) on the left, x0 again (<= 4, missing left) on the right.
        let tree_a = Tree {
            nodes: vec![
                numeric(0, 1.5, false, 1, 2, 100.0),
                categorical(1, &[1, 3], true, 3, 4, 40.0),
                numeric(0, 4.0, true, 5, 6, 60.0),
                leaf(2.0, 10.0),
                leaf(-1.0, 30.0),
                leaf(0.5, 45.0),
                leaf(7.0, 15.0),
            ],
        };
        // Categorical root on x2 with codes across two words.
        let tree_b = Tree {
            nodes: vec![
                categorical(2, &[0, 65, 70], false, 1, 2, 50.0),
                leaf(-3.0, 20.0),
                numeric(1, 0.0, true, 3, 4, 30.0),
                leaf(1.25, 5.0),
                leaf(-0.75, 25.0),
            ],
        };
        Ensemble {
            n_features: 4,
            base_score: 0.3,
            trees: vec![tree_a, tree_b, Tree::leaf(0.125, 50.0)],
            link: Link::Logit,
        }
    }

    #[test]
    fn shap_sums_to_raw_score_on_hand_built_trees() {
        let ensemble = hand_built();
        let rows = [
            [0.0, 1.0, 0.0, 9.0],
            [1.5, 3.0, 65.0, 0.0],
            [f64::NAN, f64::NAN, f64::NAN, f64::NAN],
            [2.0, -1.0, 70.0, f64::NAN],
            [4.0, 2.5, -1.0, 1.0],
            [f64::INFINITY, 500.0, 64.0, 1.0],
            [f64::NEG_INFINITY, 3.0, 0.0, -2.0],
            [f64::NAN, 1.0, 66.0, 0.0],
        ];
        for row in &rows {
            assert_sums_to_score(&ensemble, row);
        }
    }

    #[test]
    fn shap_sums_to_raw_score_on_random_ensembles() {
        let mut rng = Rng(7);
        for case in 0..200 {
            let n_features = 1 + rng.below(6) as usize;
            let trees = (0..1 + rng.below(5))
                .map(|_| random_tree(&mut rng, n_features as u32, 6, case % 2 == 1))
                .collect();
            let ensemble = Ensemble {
                n_features,
                base_score: rng.unit() - 0.5,
                trees,
                link: Link::Identity,
            };
            for _ in 0..5 {
                let row = random_row(&mut rng, n_features);
                assert_sums_to_score(&ensemble, &row);
            }
        }
    }

    #[test]
    fn shap_matches_brute_force_shapley_values() {
        let mut rng = Rng(42);
        let mut workspace = ShapWorkspace::new();
        for case in 0..300 {
            let n_features = 1 + rng.below(5) as usize;
            let depth = 1 + rng.below(6) as usize;
            let tree = random_tree(&mut rng, n_features as u32, depth, case % 3 == 0);
            for _ in 0..4 {
                let row = random_row(&mut rng, n_features);
                let expected = brute_force(&tree, &row);
                let mut got = vec![0.0; n_features + 1];
                workspace.tree_contributions(&tree, &row, &mut got);
                for (g, e) in got.iter().zip(&expected) {
                    assert!(
                        (g - e).abs() <= 1e-9,
                        "TreeSHAP {got:?} != brute force {expected:?} for {row:?}, {tree:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn shap_matches_brute_force_on_hand_built_trees() {
        let ensemble = hand_built();
        let row = [f64::NAN, 3.0, 65.0, 2.0];
        let mut total = vec![0.0; 5];
        for tree in &ensemble.trees {
            let expected = brute_force(tree, &row);
            let mut got = vec![0.0; 5];
            tree_contributions(tree, &row, &mut got);
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() <= 1e-12, "{got:?} != {expected:?}");
            }
            total.iter_mut().zip(&got).for_each(|(t, g)| *t += g);
        }
        total[4] += ensemble.base_score;
        let phi = contributions(&ensemble, &row);
        for (p, t) in phi.iter().zip(&total) {
            assert!((p - t).abs() <= 1e-12);
        }
    }

    #[test]
    fn shap_unused_feature_gets_exactly_zero() {
        let ensemble = hand_built(); // feature 3 is never split on
        let mut rng = Rng(3);
        let mut workspace = ShapWorkspace::new();
        let mut out = vec![f64::NAN; 5];
        for _ in 0..50 {
            let row = random_row(&mut rng, 4);
            workspace.contributions_into(&ensemble, &row, &mut out);
            assert_eq!(out[3].to_bits(), 0.0f64.to_bits(), "{out:?}");
        }
        for case in 0..100 {
            // Random trees over features 0..3 explained in a 5-feature row.
            let tree = random_tree(&mut rng, 3, 6, case % 2 == 0);
            let row = random_row(&mut rng, 5);
            let mut out = vec![0.0; 6];
            tree_contributions(&tree, &row, &mut out);
            assert_eq!(out[3].to_bits(), 0.0f64.to_bits());
            assert_eq!(out[4].to_bits(), 0.0f64.to_bits());
        }
    }

    #[test]
    fn shap_single_leaf_and_zero_cover_trees() {
        let mut out = vec![0.0; 3];
        tree_contributions(&Tree::leaf(1.5, 0.0), &[1.0, 2.0], &mut out);
        assert_eq!(out, vec![0.0, 0.0, 1.5]);

        // Both children without cover: each counts half in the expectation.
        let tree = Tree {
            nodes: vec![
                numeric(0, 0.0, false, 1, 2, 0.0),
                leaf(1.0, 0.0),
                leaf(4.0, 0.0),
            ],
        };
        let mut out = vec![0.0; 2];
        tree_contributions(&tree, &[-1.0], &mut out);
        assert_eq!(out, vec![-1.5, 2.5]);

        // A cold branch with no cover, and a split whose children have none.
        let tree = Tree {
            nodes: vec![
                numeric(0, 0.0, false, 1, 2, 10.0),
                numeric(1, 0.0, false, 3, 4, 10.0),
                numeric(1, 0.0, false, 5, 6, 0.0),
                leaf(1.0, 4.0),
                leaf(3.0, 6.0),
                leaf(-2.0, 0.0),
                leaf(8.0, 0.0),
            ],
        };
        for row in [[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [f64::NAN, f64::NAN]] {
            let mut out = vec![0.0; 3];
            tree_contributions(&tree, &row, &mut out);
            assert!(out.iter().all(|v| v.is_finite()), "{out:?}");
            let expected = brute_force(&tree, &row);
            for (g, e) in out.iter().zip(&expected) {
                assert!((g - e).abs() <= 1e-12, "{out:?} != {expected:?}");
            }
            assert!((out.iter().sum::<f64>() - tree.predict_row(&row)).abs() <= 1e-12);
        }
    }

    #[test]
    fn shap_workspace_reuse_matches_fresh() {
        let mut rng = Rng(11);
        let trees = (0..4).map(|_| random_tree(&mut rng, 5, 6, false)).collect();
        let ensemble = Ensemble {
            n_features: 5,
            base_score: -0.5,
            trees,
            link: Link::Probability,
        };
        let mut workspace = ShapWorkspace::new();
        let mut out = vec![0.0; 6];
        for _ in 0..20 {
            let row = random_row(&mut rng, 5);
            workspace.contributions_into(&ensemble, &row, &mut out);
            let fresh = contributions(&ensemble, &row);
            assert_eq!(out, fresh);
        }
    }
}
