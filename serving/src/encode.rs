//! From a request's `features` object to a model row.
//!
//! Each schema feature is looked up by name: numbers for numeric features,
//! strings (categories) for categorical ones. A wrong type is a 422 naming
//! the feature. Absent features are scored as missing and listed in
//! `warnings`; `null` is missing too (the caller said so, no warning). An
//! unseen category is scored as the model scores unseen categories and
//! listed in `warnings`. Unknown features are listed in `warnings` and
//! ignored, or rejected with 422 when the server runs with `strict = true`.

use presage_models::schema::{FeatureKind, UNSEEN_CATEGORY};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::store::LoadedVersion;

/// A row ready to score and what the caller should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedRow {
    /// Values in schema order.
    pub row: Vec<f64>,
    /// Non-fatal problems (missing, unknown features, unseen categories).
    pub warnings: Vec<String>,
}

/// Encodes `features` for `model`; `field` prefixes field names in errors
/// (e.g. `rows[3].features`).
pub fn encode(
    model: &LoadedVersion,
    features: &Map<String, Value>,
    strict: bool,
    field: &str,
) -> Result<EncodedRow, ApiError> {
    let schema = &model.artifact.schema;
    let mut row = vec![f64::NAN; schema.len()];
    let mut warnings = Vec::new();
    for (name, value) in features {
        let Some(&position) = model.positions.get(name) else {
            if strict {
                return Err(ApiError::invalid(
                    "unknown_feature",
                    format!("'{name}' is not a feature of this model (the server runs with strict = true)"),
                    format!("{field}.{name}"),
                ));
            }
            warnings.push(format!("unknown feature '{name}' ignored"));
            continue;
        };
        let feature = &schema.features[position];
        row[position] = match (&feature.kind, value) {
            (_, Value::Null) => f64::NAN,
            (FeatureKind::Numeric, Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            (FeatureKind::Numeric, other) => {
                return Err(ApiError::invalid(
                    "wrong_type",
                    format!("feature '{name}' is numeric; got {}", describe(other)),
                    format!("{field}.{name}"),
                ))
            }
            (FeatureKind::Categorical { .. }, Value::String(s)) => {
                let lookup = model.categories[position]
                    .as_ref()
                    .expect("categorical features have a lookup");
                match lookup.get(s) {
                    Some(code) => f64::from(*code),
                    None => {
                        warnings.push(format!(
                            "unseen category for '{name}', scored as an unseen category"
                        ));
                        UNSEEN_CATEGORY
                    }
                }
            }
            (FeatureKind::Categorical { .. }, other) => {
                return Err(ApiError::invalid(
                    "wrong_type",
                    format!(
                        "feature '{name}' is categorical (a string); got {}",
                        describe(other)
                    ),
                    format!("{field}.{name}"),
                ))
            }
        };
    }
    for feature in &schema.features {
        if !features.contains_key(&feature.name) {
            warnings.push(format!(
                "missing feature '{}' scored as missing",
                feature.name
            ));
        }
    }
    Ok(EncodedRow { row, warnings })
}

/// A JSON value's type, for error messages (never its content: values may be
/// personal data).
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
