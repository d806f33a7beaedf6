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

use serde::{Deserialize, Serialize};

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
                    let x = row[*feature as usize];
                    index = if rule.goes_left(x) {
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
    pub fn depth(&self) -> usize {
        fn walk(tree: &Tree, index: usize) -> usize {
            match &tree.nodes[index] {
                Node::Leaf { .. } => 0,
                Node::Split { left, right, .. } => {
                    1 + walk(tree, *left as usize).max(walk(tree, *right as usize))
                }
            }
        }
        walk(self, 0)
    }

    /// Checks that child indices are in range, every node is reachable once,
    /// and features are below `n_features`. Used when loading artifacts.
    pub fn validate(&self, n_features: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("tree has no nodes".into());
        }
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            if i >= self.nodes.len() {
                return Err(format!(
                    "child index {i} is out of range ({} nodes)",
                    self.nodes.len()
                ));
            }
            if std::mem::replace(&mut seen[i], true) {
                return Err(format!("node {i} is reachable twice"));
            }
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
                stack.push(*left as usize);
                stack.push(*right as usize);
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(format!("node {i} is unreachable"));
        }
        Ok(())
    }
}
