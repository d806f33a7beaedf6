//! The tree format shared by every learner and every scorer.
//!
//! A [`Tree`] is a flat vector of [`Node`]s with the root at index 0. Split
//! nodes name their children by index; leaves hold the value the tree adds to
//! the raw score. Every node also records its *cover* (the number of training
//! rows, or bootstrap weight, that reached it), which TreeSHAP needs.
//!
//! Routing rules (the same in the reference walk here and in
//! [`crate::compiled::CompiledEnsemble`]):
//! - a missing value (`NaN`) follows the split's learned `missing_left` flag;
//! - a numeric value goes left when `x <= threshold`;
//! - a categorical value is a dictionary code (see [`crate::schema`]); it goes
//!   left when the code is in the split's `left` set. Codes the split never saw
//!   (unseen categories, encoded as `-1`) go right.
//!
//! A tree read from a file is checked by [`Tree::validate`] before anything
//! walks it: children in range, every node reached exactly once (so it is a
//! tree, without cycles), features in range, sorted category sets, no `NaN`
//! threshold and at most [`MAX_TREE_DEPTH`] levels. The check is one
//! iterative walk, like [`Tree::depth`], so a crafted tree of any depth
//! cannot overflow the stack while it is being checked.

use serde::{Deserialize, Serialize};

/// The deepest tree [`Tree::validate`] accepts: at most 1,024 levels from
/// the root to the deepest leaf (a single leaf is depth 0).
///
/// Our learners stay far below it. Gradient boosting stops at `max_depth`
/// (at most 64) or at `num_leaves - 1` levels (31 leaves by default).
/// Random forests grow without a depth limit (up to 131,072 leaves), but
/// every split needs rows on both sides and narrows one feature to fewer of
/// its at most 255 bins (or fewer categories), so fully grown trees are
/// typically tens of levels deep even on millions of rows. Only a path that
/// peels off a few rows at a time, over and over, through many features
/// could reach the limit; the learners do not enforce it themselves.
///
/// The limit keeps TreeSHAP ([`crate::shap`]) sound on any tree that
/// validates. Its walk recurses once per level, so a tree of depth `D`
/// needs `D + 1` stack frames: at 1,024 levels under 256 KiB in optimised
/// builds and just under 1 MiB in debug builds, against the 2 MiB that
/// spawned threads (tokio's and rayon's included) get. Its workspace keeps
/// one copy of the unique-feature path per level, at most
/// `(D + 1)(D + 2) / 2` elements of 32 bytes (16.8 MB at 1,024 levels,
/// reached only when each level splits on a new feature). Scoring does not
/// depend on it: compiled walks are loops of at most `D` steps.
pub const MAX_TREE_DEPTH: usize = 1024;

/// How a split node routes a feature value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SplitRule {
    /// `x <= threshold` goes left.
    Numeric {
        /// Upper bound (inclusive) of the left side.
        threshold: f64,
        /// Where a missing value goes.
        missing_left: bool,
    },
    /// `x` in `left` (sorted category codes) goes left.
    Categorical {
        /// Sorted, de-duplicated category codes routed left.
        left: Vec<u32>,
        /// Where a missing value goes.
        missing_left: bool,
    },
}

impl SplitRule {
    /// Whether the value `x` of the split feature is routed to the left child.
    #[inline]
    pub fn goes_left(&self, x: f64) -> bool {
        match self {
            _ if x.is_nan() => self.missing_left(),
            SplitRule::Numeric { threshold, .. } => x <= *threshold,
            SplitRule::Categorical { left, .. } => {
                category_code(x).is_some_and(|code| left.binary_search(&code).is_ok())
            }
        }
    }

    /// Where a missing value goes.
    pub fn missing_left(&self) -> bool {
        match self {
            SplitRule::Numeric { missing_left, .. }
            | SplitRule::Categorical { missing_left, .. } => *missing_left,
        }
    }
}

/// The dictionary code held in a categorical feature value, if it is one.
///
/// Codes are non-negative integers stored as `f64`; anything else (the `-1`
/// used for unseen categories, fractions, infinities) is no known category.
#[inline]
pub fn category_code(x: f64) -> Option<u32> {
    // A cast and a comparison, not `fract()` (a libm call on the scoring path).
    if x >= 0.0 && x <= u32::MAX as f64 && (x as u32) as f64 == x {
        Some(x as u32)
    } else {
        None
    }
}

/// One node of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Node {
    /// A terminal node.
    Leaf {
        /// Value added to the raw score (learning rate already applied).
        value: f64,
        /// Training rows (or bootstrap weight) that reached this leaf.
        cover: f64,
    },
    /// An internal node.
    Split {
        /// Index of the feature in the model's [`crate::schema::FeatureSchema`].
        feature: u32,
        /// How the feature value is routed.
        rule: SplitRule,
        /// Index of the left child in [`Tree::nodes`].
        left: u32,
        /// Index of the right child in [`Tree::nodes`].
        right: u32,
        /// Loss reduction achieved by this split during training.
        gain: f64,
        /// Training rows (or bootstrap weight) that reached this node.
        cover: f64,
    },
}

impl Node {
    /// Training rows (or bootstrap weight) that reached this node.
    pub fn cover(&self) -> f64 {
        match self {
            Node::Leaf { cover, .. } | Node::Split { cover, .. } => *cover,
        }
    }
}

/// A single decision tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes, root first.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// A tree that is a single leaf.
    pub fn leaf(value: f64, cover: f64) -> Self {
        Tree {
            nodes: vec![Node::Leaf { value, cover }],
        }
    }

    /// Reference walk: the leaf value this tree adds for `row`.
    ///
    /// This is the plain, obviously-correct walk; production scoring goes
    /// through [`crate::compiled::CompiledEnsemble`], which must agree with
    /// it bit for bit.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        self.predict_by(|feature| row[feature])
    }

    /// The same walk, reading feature `f` of the row as `feature_value(f)`
    /// (for column-major data, as the learners hold it).
    #[inline]
    pub fn predict_by(&self, feature_value: impl Fn(usize) -> f64) -> f64 {
        let mut index = 0usize;
        loop {
            match &self.nodes[index] {
                Node::Leaf { value, .. } => return *value,
                Node::Split {
                    feature,
                    rule,
                    left,
                    right,
                    ..
                } => {
                    index = if rule.goes_left(feature_value(*feature as usize)) {
                        *left as usize
                    } else {
                        *right as usize
                    };
                }
            }
        }
    }

    /// Number of leaves.
    pub fn num_leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Leaf { .. }))
            .count()
    }

    /// Depth of the deepest leaf (a single leaf has depth 0).
    ///
    /// Found by the same iterative walk as [`Tree::validate`] (no
    /// recursion), so even a very deep tree cannot overflow the stack.
    ///
    /// # Panics
    /// If the tree is malformed (a child index out of range, a node reached
    /// twice or never): validate trees from outside first.
    pub fn depth(&self) -> usize {
        self.walk(usize::MAX)
            .unwrap_or_else(|e| panic!("cannot measure a malformed tree: {e}"))
    }

    /// Checks that child indices are in range, every node is reachable once,
    /// features are below `n_features`, categorical sets are sorted without
    /// repeats, no threshold is `NaN`, and the tree is at most
    /// [`MAX_TREE_DEPTH`] levels deep. Used when loading artifacts and
    /// compiling, so scoring and TreeSHAP never meet a tree that could make
    /// them index out of bounds, loop or exhaust the stack.
    ///
    /// Thresholds of `±inf` pass: they route like any other number (see the
    /// artifact's own check, [`crate::artifact::ModelArtifact::validate`],
    /// for what a trained model may hold).
    pub fn validate(&self, n_features: usize) -> Result<(), TreeError> {
        let depth = self.walk(n_features).map_err(TreeError::Malformed)?;
        if depth > MAX_TREE_DEPTH {
            return Err(TreeError::TooDeep { depth });
        }
        Ok(())
    }

    /// The structural checks of [`Tree::validate`] (all but the depth
    /// limit), in one depth-first walk with an explicit stack; returns the
    /// depth of the deepest leaf.
    fn walk(&self, n_features: usize) -> Result<usize, String> {
        if self.nodes.is_empty() {
            return Err("tree has no nodes".into());
        }
        let mut seen = vec![false; self.nodes.len()];
        // (node, its depth). A node's children are pushed only on its first
        // visit (a second one is an error), so the stack holds at most two
        // entries per node.
        let mut stack = vec![(0usize, 0usize)];
        let mut deepest = 0;
        while let Some((i, depth)) = stack.pop() {
            if i >= self.nodes.len() {
                return Err(format!(
                    "child index {i} is out of range ({} nodes)",
                    self.nodes.len()
                ));
            }
            if std::mem::replace(&mut seen[i], true) {
                return Err(format!("node {i} is reachable twice"));
            }
            deepest = deepest.max(depth);
            if let Node::Split {
                feature,
                rule,
                left,
                right,
                ..
            } = &self.nodes[i]
            {
                if *feature as usize >= n_features {
                    return Err(format!(
                        "node {i} splits on feature {feature}, but the model has {n_features}"
                    ));
                }
                match rule {
                    SplitRule::Categorical { left: set, .. }
                        if !set.windows(2).all(|w| w[0] < w[1]) =>
                    {
                        return Err(format!("node {i} has an unsorted or repeated category set"));
                    }
                    SplitRule::Numeric { threshold, .. } if threshold.is_nan() => {
                        return Err(format!("node {i} has a NaN threshold"));
                    }
                    _ => {}
                }
                stack.push((*left as usize, depth + 1));
                stack.push((*right as usize, depth + 1));
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(format!("node {i} is unreachable"));
        }
        Ok(deepest)
    }
}

/// Why a tree failed [`Tree::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A child index is out of range, a node is reached twice or never, a
    /// feature index is out of range, a category set is unsorted, or a
    /// threshold is `NaN`.
    #[error("{0}")]
    Malformed(String),
    /// The tree is deeper than [`MAX_TREE_DEPTH`].
    #[error(
        "tree is {depth} levels deep, more than the limit of {MAX_TREE_DEPTH} (MAX_TREE_DEPTH); presage-train grows far shallower trees"
    )]
    TooDeep {
        /// Depth of the deepest leaf.
        depth: usize,
    },
}
