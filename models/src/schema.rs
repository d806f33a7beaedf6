//! The feature schema a model was trained on.
//!
//! A row handed to a scorer is a `&[f64]` in schema order. Numeric features
//! carry their value (`NaN` = missing). Categorical features carry the
//! category's dictionary code as `f64`; a category the model never saw is
//! encoded as [`UNSEEN_CATEGORY`] and routed like LightGBM routes unseen
//! categories (to the right child of every categorical split).
//!
//! The schema also keeps what serving and drift checks need to know about the
//! training data: value ranges, missing shares and a histogram per feature.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Code used for a category that is not in the feature's dictionary.
pub const UNSEEN_CATEGORY: f64 = -1.0;

/// Whether a feature is numeric or categorical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FeatureKind {
    /// A number; missing is `NaN`.
    Numeric,
    /// A string dictionary-encoded by position in `categories`.
    Categorical {
        /// Categories seen in training, most frequent first; code = position.
        categories: Vec<String>,
    },
}

/// Summary statistics of one feature over the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    /// Rows seen.
    pub rows: u64,
    /// Rows where the value was missing.
    pub missing: u64,
    /// Smallest non-missing value (numeric features; `NaN` otherwise).
    pub min: f64,
    /// Largest non-missing value (numeric features; `NaN` otherwise).
    pub max: f64,
    /// Mean of non-missing values (numeric features; `NaN` otherwise).
    pub mean: f64,
}

/// Distribution of one feature over the training rows, for drift checks.
///
/// Numeric: `counts[i]` counts values in `(edges[i-1], edges[i]]`, with open
/// ends, so `counts.len() == edges.len() + 1`. Categorical: `edges` is empty
/// and `counts[code]` counts each category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureHistogram {
    /// Inner bin edges (numeric only).
    pub edges: Vec<f64>,
    /// Rows per bin (or per category).
    pub counts: Vec<u64>,
    /// Rows with a missing value.
    pub missing: u64,
}

impl FeatureHistogram {
    /// The bin a numeric value falls in (the first edge `>= x`).
    pub fn bin_of(&self, x: f64) -> usize {
        self.edges.partition_point(|edge| *edge < x)
    }
}

/// One input feature of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// Column name, as in the training data.
    pub name: String,
    /// Numeric or categorical (with its dictionary).
    pub kind: FeatureKind,
    /// Training statistics.
    pub stats: FeatureStats,
    /// Training distribution.
    pub histogram: FeatureHistogram,
}

impl Feature {
    /// Whether this feature is categorical.
    pub fn is_categorical(&self) -> bool {
        matches!(self.kind, FeatureKind::Categorical { .. })
    }
}

/// The ordered input features of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSchema {
    /// Features in the order a row lists them.
    pub features: Vec<Feature>,
}

impl FeatureSchema {
    /// Number of features.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Whether the schema has no features.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Position of the feature called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }

    /// Feature names in schema order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    /// Builds per-feature lookups from category string to code, for encoding
    /// many rows (one `HashMap` per categorical feature, `None` for numeric).
    pub fn category_lookup(&self) -> Vec<Option<HashMap<String, u32>>> {
        self.features
            .iter()
            .map(|f| match &f.kind {
                FeatureKind::Numeric => None,
                FeatureKind::Categorical { categories } => Some(
                    categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.clone(), i as u32))
                        .collect(),
                ),
            })
            .collect()
    }
}
