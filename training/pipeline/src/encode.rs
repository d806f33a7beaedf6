//! From a [`Table`] to model inputs: picks the label and the feature columns,
//! dictionary-encodes categorical columns, and encodes later tables (test
//! files, prediction inputs) with a trained model's schema.
//!
//! Categorical dictionaries list categories most frequent first (ties by
//! name), so codes are deterministic. Columns that are entirely missing or
//! constant carry no information; they are dropped with a warning naming them.

use std::collections::HashMap;

use presage_models::artifact::Task;
use presage_models::schema::{FeatureKind, FeatureSchema, UNSEEN_CATEGORY};

use presage_data::table::{ColumnData, Table};
use presage_learners::dataset::ColumnKind;
use presage_learners::params::Objective;

/// Errors turning a table into model inputs; each names the file and column.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// A named column does not exist.
    #[error("{path}: no column '{column}' ({role}); the file has: {available}")]
    MissingColumn {
        /// The file.
        path: String,
        /// The column asked for.
        column: String,
        /// What it was for (`label`, `id`, `--drop`, ...).
        role: &'static str,
        /// Columns that exist.
        available: String,
    },
    /// The label does not have exactly two classes.
    #[error("{path}: label column '{column}' has {count} distinct values ({values}); binary classification needs exactly two")]
    NotBinary {
        /// The file.
        path: String,
        /// Label column.
        column: String,
        /// Number of distinct values.
        count: usize,
        /// Some of them.
        values: String,
    },
    /// `--positive` is not one of the label's values.
    #[error("{path}: --positive '{positive}' is not a value of label column '{column}' (values: {values})")]
    UnknownPositive {
        /// The file.
        path: String,
        /// Label column.
        column: String,
        /// The value given.
        positive: String,
        /// Values present.
        values: String,
    },
    /// Two label values and no way to tell which is positive.
    #[error("{path}: cannot tell which value of label column '{column}' is positive ({values}); pass --positive VALUE")]
    AmbiguousPositive {
        /// The file.
        path: String,
        /// Label column.
        column: String,
        /// The two values.
        values: String,
    },
    /// A regression target is not numeric.
    #[error("{path}: target column '{column}' must be numeric for regression, but holds text such as '{example}'")]
    NonNumericTarget {
        /// The file.
        path: String,
        /// Target column.
        column: String,
        /// A non-numeric value.
        example: String,
    },
    /// A numeric feature holds text.
    #[error("{path}: column '{column}' must be numeric (the model was trained on numbers) but holds '{example}'")]
    NotNumeric {
        /// The file.
        path: String,
        /// Column.
        column: String,
        /// A non-numeric value.
        example: String,
    },
    /// The model's feature columns are absent.
    #[error("{path}: missing model feature columns: {columns}; add them or pass --allow-missing to score them as missing")]
    MissingFeatures {
        /// The file.
        path: String,
        /// Missing columns.
        columns: String,
    },
    /// No usable rows or features remain.
    #[error("{path}: {message}")]
    NothingToTrain {
        /// The file.
        path: String,
        /// What is missing.
        message: String,
    },
}

/// Which columns play which role.
#[derive(Debug, Clone)]
pub struct ColumnRoles {
    /// Label (target) column.
    pub label: String,
    /// Positive label value (binary).
    pub positive: Option<String>,
    /// Id column, kept out of the features.
    pub id: Option<String>,
    /// Columns to leave out.
    pub drop: Vec<String>,
}

/// A table prepared for training.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Feature names and kinds (with dictionaries), in column order.
    pub features: Vec<(String, FeatureKind)>,
    /// Column-major feature values (codes for categorical features).
    pub columns: Vec<Vec<f64>>,
    /// Target per row (0/1 for binary).
    pub target: Vec<f64>,
    /// What is predicted.
    pub task: Task,
    /// Id per row, when an id column was named.
    pub ids: Option<Vec<String>>,
    /// Warnings for the user (dropped columns, dropped rows).
    pub warnings: Vec<String>,
}

impl Prepared {
    /// Column kinds for the learners.
    pub fn kinds(&self) -> Vec<ColumnKind> {
        self.features
            .iter()
            .map(|(_, kind)| match kind {
                FeatureKind::Numeric => ColumnKind::Numeric,
                FeatureKind::Categorical { categories } => ColumnKind::Categorical {
                    n_categories: categories.len(),
                },
            })
            .collect()
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.target.len()
    }
}

fn require<'t>(
    table: &'t Table,
    column: &str,
    role: &'static str,
) -> Result<&'t ColumnData, FeatureError> {
    table
        .column(column)
        .map(|c| &c.data)
        .ok_or_else(|| FeatureError::MissingColumn {
            path: table.path.display().to_string(),
            column: column.to_string(),
            role,
            available: table.column_list(),
        })
}

/// Decides the task and encodes the target; rows with a missing label are
/// reported as `None`.
fn encode_target(
    table: &Table,
    roles: &ColumnRoles,
    objective: Objective,
) -> Result<(Task, Vec<Option<f64>>), FeatureError> {
    let path = table.path.display().to_string();
    let data = require(table, &roles.label, "label")?;
    if objective == Objective::Regression {
        let values = match data {
            ColumnData::Numeric(v) => v.iter().map(|x| (!x.is_nan()).then_some(*x)).collect(),
            ColumnData::Text(v) => {
                let example = v.iter().flatten().next().cloned().unwrap_or_default();
                return Err(FeatureError::NonNumericTarget {
                    path,
                    column: roles.label.clone(),
                    example,
                });
            }
        };
        return Ok((
            Task::Regression {
                target: roles.label.clone(),
            },
            values,
        ));
    }
    let texts: Vec<Option<String>> = (0..data.len()).map(|i| data.text(i)).collect();
    let mut distinct: Vec<String> = texts.iter().flatten().cloned().collect();
    distinct.sort();
    distinct.dedup();
    let listing = |values: &[String]| {
        let shown: Vec<&str> = values.iter().take(5).map(String::as_str).collect();
        if values.len() > 5 {
            format!("{}, ...", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    if distinct.len() != 2 {
        return Err(FeatureError::NotBinary {
            path,
            column: roles.label.clone(),
            count: distinct.len(),
            values: listing(&distinct),
        });
    }
    let positive = match &roles.positive {
        Some(p) if distinct.contains(p) => p.clone(),
        Some(p) => {
            return Err(FeatureError::UnknownPositive {
                path,
                column: roles.label.clone(),
                positive: p.clone(),
                values: listing(&distinct),
            })
        }
        None => {
            let conventional = ["1", "true", "yes", "y", "positive"];
            let matches: Vec<&String> = distinct
                .iter()
                .filter(|v| conventional.contains(&v.to_ascii_lowercase().as_str()))
                .collect();
            match matches.as_slice() {
                [one] => (*one).clone(),
                _ => {
                    return Err(FeatureError::AmbiguousPositive {
                        path,
                        column: roles.label.clone(),
                        values: listing(&distinct),
                    })
                }
            }
        }
    };
    let negative = distinct
        .iter()
        .find(|v| **v != positive)
        .cloned()
        .unwrap_or_default();
    let values = texts
        .iter()
        .map(|t| t.as_ref().map(|t| f64::from(u8::from(*t == positive))))
        .collect();
    Ok((
        Task::BinaryClassification {
            label: roles.label.clone(),
            positive,
            negative,
        },
        values,
    ))
}

/// Builds a category dictionary: most frequent first, ties by name.
fn dictionary(values: &[Option<String>]) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in values.iter().flatten() {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let mut categories: Vec<(&str, usize)> = counts.into_iter().collect();
    categories.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    categories.into_iter().map(|(c, _)| c.to_string()).collect()
}

/// Picks label and features from a training table, for a binary or
/// regression objective.
pub fn prepare(
    table: &Table,
    roles: &ColumnRoles,
    objective: Objective,
) -> Result<Prepared, FeatureError> {
    let path = table.path.display().to_string();
    let (task, target) = encode_target(table, roles, objective)?;
    if let Some(id) = &roles.id {
        require(table, id, "id")?;
    }
    for d in &roles.drop {
        require(table, d, "--drop")?;
    }
    let keep_rows: Vec<usize> = (0..target.len()).filter(|i| target[*i].is_some()).collect();
    let mut warnings = Vec::new();
    if keep_rows.len() < target.len() {
        warnings.push(format!(
            "{} rows have no value in label column '{}' and were left out",
            target.len() - keep_rows.len(),
            roles.label
        ));
    }
    if keep_rows.is_empty() {
        return Err(FeatureError::NothingToTrain {
            path,
            message: format!("no row has a value in label column '{}'", roles.label),
        });
    }
    let excluded = |name: &str| {
        name == roles.label
            || roles.id.as_deref() == Some(name)
            || roles.drop.iter().any(|d| d == name)
    };
    let mut features = Vec::new();
    let mut columns = Vec::new();
    for column in table.columns.iter().filter(|c| !excluded(&c.name)) {
        let (kind, values) = match &column.data {
            ColumnData::Numeric(v) => (
                FeatureKind::Numeric,
                keep_rows.iter().map(|&i| v[i]).collect::<Vec<f64>>(),
            ),
            ColumnData::Text(v) => {
                let kept: Vec<Option<String>> = keep_rows.iter().map(|&i| v[i].clone()).collect();
                let categories = dictionary(&kept);
                let lookup: HashMap<&str, usize> = categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_str(), i))
                    .collect();
                let codes = kept
                    .iter()
                    .map(|c| c.as_deref().map_or(f64::NAN, |c| lookup[c] as f64))
                    .collect();
                (FeatureKind::Categorical { categories }, codes)
            }
        };
        let mut present = values.iter().filter(|x| !x.is_nan());
        let first = present.next();
        match first {
            None => warnings.push(format!(
                "column '{}' is entirely missing; dropped",
                column.name
            )),
            Some(f) if present.all(|x| x == f) && values.iter().all(|x| !x.is_nan()) => {
                warnings.push(format!("column '{}' is constant; dropped", column.name))
            }
            _ => {
                features.push((column.name.clone(), kind));
                columns.push(values);
            }
        }
    }
    if features.is_empty() {
        return Err(FeatureError::NothingToTrain {
            path,
            message: "no usable feature columns remain".into(),
        });
    }
    let ids = roles.id.as_ref().map(|id| {
        let data = &table.column(id).expect("checked above").data;
        keep_rows
            .iter()
            .map(|&i| data.text(i).unwrap_or_default())
            .collect()
    });
    let target = keep_rows
        .iter()
        .map(|&i| target[i].expect("kept rows have labels"))
        .collect();
    Ok(Prepared {
        features,
        columns,
        target,
        task,
        ids,
        warnings,
    })
}

/// Encodes a table's feature columns with a trained schema, column-major.
///
/// Unknown categories become [`UNSEEN_CATEGORY`]; columns the table lacks are
/// an error unless `allow_missing`, when they are scored as missing. Returns
/// the columns and the names of absent ones.
pub fn encode_with_schema(
    table: &Table,
    schema: &FeatureSchema,
    allow_missing: bool,
) -> Result<(Vec<Vec<f64>>, Vec<String>), FeatureError> {
    let path = table.path.display().to_string();
    let n = table.n_rows();
    let absent: Vec<String> = schema
        .names()
        .filter(|name| table.column(name).is_none())
        .map(str::to_string)
        .collect();
    if !absent.is_empty() && !allow_missing {
        return Err(FeatureError::MissingFeatures {
            path,
            columns: absent.join(", "),
        });
    }
    let lookups = schema.category_lookup();
    let mut columns = Vec::with_capacity(schema.len());
    for (feature, lookup) in schema.features.iter().zip(&lookups) {
        let Some(column) = table.column(&feature.name) else {
            columns.push(vec![f64::NAN; n]);
            continue;
        };
        let encoded = match (&column.data, lookup) {
            (ColumnData::Numeric(v), None) => v.clone(),
            (ColumnData::Text(v), None) => {
                let example = v.iter().flatten().next().cloned().unwrap_or_default();
                return Err(FeatureError::NotNumeric {
                    path,
                    column: feature.name.clone(),
                    example,
                });
            }
            (data, Some(lookup)) => (0..n)
                .map(|i| {
                    data.text(i).map_or(f64::NAN, |t| {
                        lookup.get(&t).map_or(UNSEEN_CATEGORY, |c| *c as f64)
                    })
                })
                .collect(),
        };
        columns.push(encoded);
    }
    Ok((columns, absent))
}

/// Encodes the label column of an evaluation table with a trained task.
pub fn encode_labels(table: &Table, task: &Task) -> Result<Vec<Option<f64>>, FeatureError> {
    let path = table.path.display().to_string();
    match task {
        Task::BinaryClassification {
            label,
            positive,
            negative,
        } => {
            let data = require(table, label, "label")?;
            (0..data.len())
                .map(|i| match data.text(i) {
                    None => Ok(None),
                    Some(t) if t == *positive => Ok(Some(1.0)),
                    Some(t) if t == *negative => Ok(Some(0.0)),
                    Some(t) => Err(FeatureError::NotBinary {
                        path: path.clone(),
                        column: label.clone(),
                        count: 3,
                        values: format!("{positive}, {negative}, {t}"),
                    }),
                })
                .collect()
        }
        Task::Regression { target } => {
            let data = require(table, target, "label")?;
            match data {
                ColumnData::Numeric(v) => {
                    Ok(v.iter().map(|x| (!x.is_nan()).then_some(*x)).collect())
                }
                ColumnData::Text(v) => Err(FeatureError::NonNumericTarget {
                    path,
                    column: target.clone(),
                    example: v.iter().flatten().next().cloned().unwrap_or_default(),
                }),
            }
        }
    }
}
