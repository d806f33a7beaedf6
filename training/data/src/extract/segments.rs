//! Rule segments: named segmentations of the built feature table, each an
//! ordered list of `segment if condition` rules (first match wins, a rule
//! without a condition catches everyone left). Conditions use the same
//! grammar as serving's policy rules ([`presage_models::rule`]) and are
//! checked against the built table's columns before anything is assigned.

use std::collections::BTreeSet;
use std::path::Path;

use polars::prelude::{Column as PlColumn, DataFrame};
use presage_models::rule::Condition;
use presage_models::schema::{FeatureKind, FeatureSchema};
use serde::Serialize;

use super::spec::SegmentationSpec;
use super::{BuiltTable, ExtractError};
use crate::table::{table_from_frame, ColumnData};
use presage_models::summary::describe_feature;

/// How many users one segment holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentSize {
    /// The segmentation.
    pub segmentation: String,
    /// The segment (`(none)` for users no rule matched).
    pub segment: String,
    /// Users in it.
    pub users: u64,
    /// Share of all users in the table.
    pub share: f64,
}

/// Segments assigned to every user of a built table.
#[derive(Debug)]
pub struct AssignedSegments {
    /// The id column and one text column per segmentation (null = no rule matched).
    pub frame: DataFrame,
    /// Size of every segment, in rule order, then `(none)`.
    pub sizes: Vec<SegmentSize>,
    /// Segments under 1% or over 80% of users.
    pub warnings: Vec<String>,
}

/// The name used for users no rule matched.
pub const UNASSIGNED: &str = "(none)";

/// Encodes the table's columns as a schema and rows for condition checks:
/// numbers as they are, text as the index of its value among the sorted
/// distinct values.
fn encode(
    built: &BuiltTable,
    config: &Path,
) -> Result<(FeatureSchema, Vec<Vec<f64>>), ExtractError> {
    let table = table_from_frame(&built.frame, config).map_err(|e| ExtractError::Compute {
        context: "reading the built table".into(),
        message: e.to_string(),
    })?;
    let mut features = Vec::new();
    let mut columns = Vec::new();
    for column in &table.columns {
        let (kind, values) = match &column.data {
            ColumnData::Numeric(v) => (FeatureKind::Numeric, v.clone()),
            ColumnData::Text(cells) => {
                let categories: Vec<String> = cells
                    .iter()
                    .flatten()
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let codes = cells
                    .iter()
                    .map(|c| match c {
                        Some(c) => categories.binary_search(c).map_or(f64::NAN, |i| i as f64),
                        None => f64::NAN,
                    })
                    .collect();
                (FeatureKind::Categorical { categories }, codes)
            }
        };
        features.push(describe_feature(&column.name, &kind, &values));
        columns.push(values);
    }
    Ok((FeatureSchema { features }, columns))
}

/// Assigns every segmentation of `specs` to the users of `built`.
pub fn assign(
    specs: &[SegmentationSpec],
    built: &BuiltTable,
    id_column: &str,
    config: &Path,
) -> Result<AssignedSegments, ExtractError> {
    let config_error = |message: String| ExtractError::Config {
        path: config.display().to_string(),
        message,
    };
    if specs.is_empty() {
        return Err(config_error(
            "no [[segments]] in the config: add one with a name and rules (see the README)".into(),
        ));
    }
    let (schema, columns) = encode(built, config)?;
    let n = built.frame.height();
    let mut out = vec![built
        .frame
        .column(id_column)
        .map_err(ExtractError::compute("reading user ids"))?
        .clone()];
    let mut sizes = Vec::new();
    let mut warnings = Vec::new();
    let mut seen_names = BTreeSet::new();
    for spec in specs {
        if !seen_names.insert(spec.name.as_str()) || spec.name == id_column {
            return Err(config_error(format!(
                "segmentation '{}' is named twice (or like the id column); give each a unique name",
                spec.name
            )));
        }
        if spec.rules.is_empty() {
            return Err(config_error(format!(
                "segmentation '{}' has no rules",
                spec.name
            )));
        }
        let mut rules = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            let condition = match &rule.when {
                Some(text) => Some(Condition::parse(text, &schema).map_err(|m| {
                    config_error(format!(
                        "segmentation '{}', rule {} ('{text}'): {m}",
                        spec.name,
                        i + 1
                    ))
                })?),
                None if i + 1 < spec.rules.len() => {
                    return Err(config_error(format!(
                        "segmentation '{}', rule {} has no `when` but is not the last: the rules after it could never match",
                        spec.name,
                        i + 1
                    )))
                }
                None => None,
            };
            rules.push((rule.segment.as_str(), condition));
        }
        let mut names: Vec<&str> = Vec::new();
        for (segment, _) in &rules {
            if !names.contains(segment) {
                names.push(segment);
            }
        }
        let mut counts = vec![0u64; names.len() + 1];
        let mut row = vec![0.0; columns.len()];
        let assigned: Vec<Option<&str>> = (0..n)
            .map(|r| {
                for (c, column) in columns.iter().enumerate() {
                    row[c] = column[r];
                }
                let hit = rules
                    .iter()
                    .find(|(_, condition)| condition.as_ref().is_none_or(|c| c.matches(&row)))
                    .map(|(segment, _)| *segment);
                let slot = hit.map_or(names.len(), |s| {
                    names.iter().position(|n| *n == s).expect("listed")
                });
                counts[slot] += 1;
                hit
            })
            .collect();
        out.push(PlColumn::new(spec.name.as_str().into(), assigned));
        let listed = names.iter().copied().chain(std::iter::once(UNASSIGNED));
        for (segment, &users) in listed.zip(&counts) {
            if segment == UNASSIGNED && users == 0 {
                continue;
            }
            let share = users as f64 / n.max(1) as f64;
            if segment != UNASSIGNED && share < 0.01 {
                warnings.push(format!(
                    "segment '{segment}' of '{}' holds {:.2}% of users (under 1%): too small to act on; merge it or loosen its rule",
                    spec.name,
                    100.0 * share
                ));
            } else if share > 0.8 {
                warnings.push(format!(
                    "segment '{segment}' of '{}' holds {:.1}% of users (over 80%): it barely separates anyone; tighten the rules",
                    spec.name,
                    100.0 * share
                ));
            }
            sizes.push(SegmentSize {
                segmentation: spec.name.clone(),
                segment: segment.to_owned(),
                users,
                share,
            });
        }
    }
    let frame = DataFrame::new(n, out).map_err(ExtractError::compute("assembling segments"))?;
    Ok(AssignedSegments {
        frame,
        sizes,
        warnings,
    })
}
