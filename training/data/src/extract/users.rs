//! The users extract, read eagerly (one row per user fits in memory even
//! when the events do not) and checked: ids present and unique, signups
//! parseable, consent and erasure applied, and each user's observation and
//! label windows placed. Excluded users stay in [`Users::keys`] with
//! `__keep = false`, so their events are recognised (not reported as
//! unknown) and then dropped.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::source::{self, column_type, Events, TS, UID};
use super::spec::ExtractSpec;
use super::{ExtractError, ExtractReport};
use presage_models::feature_spec::spec::EventSelection;
use presage_models::feature_spec::window::UserWindow;

/// Column names of [`Users::keys`].
pub(crate) const KEEP: &str = "__keep";
pub const SIGNUP: &str = "__signup";
pub(crate) const START: &str = "__start";
pub(crate) const CUTOFF: &str = "__cutoff";
pub(crate) const LABEL_START: &str = "__label_start";
pub(crate) const LABEL_END: &str = "__label_end";
pub(crate) const ORDER: &str = "__order";

/// The checked users extract.
pub struct Users {
    /// Where it was read from.
    pub path: PathBuf,
    /// Every user: [`UID`], [`KEEP`], [`SIGNUP`], [`START`], [`CUTOFF`],
    /// [`LABEL_START`], [`LABEL_END`] (microseconds) and [`ORDER`] (row in
    /// the extract).
    pub keys: DataFrame,
    /// [`UID`] and the attribute columns, for every user.
    pub attributes: DataFrame,
    /// Attribute column names, in extract order.
    pub attribute_names: Vec<String>,
    /// Per row of [`Users::keys`]: the user withheld consent or is on the
    /// erasure list (left out of anything built, online stores included).
    pub withheld: Vec<bool>,
    /// Counts so far.
    pub report: ExtractReport,
}

fn data_error(path: &Path, message: String) -> ExtractError {
    ExtractError::Data {
        path: path.display().to_string(),
        message,
    }
}

/// Text of each id (for duplicate checks and the erasure list).
fn id_texts(ids: &Column) -> Result<Vec<Option<String>>, PolarsError> {
    let text = ids.cast(&DataType::String)?;
    Ok(text.str()?.iter().map(|v| v.map(str::to_owned)).collect())
}

/// Consent per row: true only for a true value; empty means no consent.
pub fn consent_values(column: &Column, path: &Path) -> Result<Vec<bool>, ExtractError> {
    let name = column.name().to_string();
    let type_error = |problem: String| ExtractError::ColumnType {
        path: path.display().to_string(),
        column: name.clone(),
        problem,
    };
    match column.dtype() {
        DataType::Boolean => Ok(column
            .bool()
            .map_err(|e| type_error(e.to_string()))?
            .iter()
            .map(|v| v.unwrap_or(false))
            .collect()),
        DataType::String => column
            .str()
            .map_err(|e| type_error(e.to_string()))?
            .iter()
            .enumerate()
            .map(
                |(i, v)| match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
                    None | Some("") => Ok(false),
                    Some("true" | "yes" | "y" | "t" | "1") => Ok(true),
                    Some("false" | "no" | "n" | "f" | "0") => Ok(false),
                    Some(other) => Err(type_error(format!(
                        "row {}: {other:?} is not a consent value; use true/false, yes/no or 1/0",
                        i + 1
                    ))),
                },
            )
            .collect(),
        dtype if dtype.is_primitive_numeric() => {
            let values = column
                .cast(&DataType::Float64)
                .map_err(|e| type_error(e.to_string()))?;
            Ok(values
                .f64()
                .map_err(|e| type_error(e.to_string()))?
                .iter()
                .map(|v| v.is_some_and(|x| x != 0.0))
                .collect())
        }
        other => Err(type_error(format!(
            "has type {other}; a consent column must be boolean, text or 0/1"
        ))),
    }
}

/// Reads an erasure list: one id per line; blank lines and `#` comments skipped.
pub fn read_erasure(path: &Path) -> Result<HashSet<String>, ExtractError> {
    let text = std::fs::read_to_string(path).map_err(|e| ExtractError::Source {
        path: path.display().to_string(),
        message: format!("cannot read the erasure list: {e}"),
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The last event's timestamp (the default end of the extract).
pub fn last_event(events: &Events) -> Result<Option<i64>, ExtractError> {
    let frame = events
        .frame
        .clone()
        .select([col(TS).max()])
        .collect_with_engine(Engine::Streaming)
        .map_err(ExtractError::compute(format!(
            "{}: finding the last event",
            events.path.display()
        )))?
        .unwrap_single();
    Ok(frame
        .column(TS)
        .ok()
        .and_then(|c| c.i64().ok().and_then(|c| c.get(0))))
}

impl Users {
    /// Reads and checks the users extract. Aligns the id type of `events`
    /// with the users' (both become text when they differ).
    pub fn load(
        spec: &ExtractSpec,
        events: &mut Events,
        config: &Path,
    ) -> Result<Users, ExtractError> {
        let sources = &spec.extract;
        let path = sources
            .users
            .clone()
            .expect("ExtractSpec::check requires users");
        let mut frame = source::scan(&path, &[&sources.user_id])?;
        let uid_type = column_type(&mut frame, &sources.user_id, &path)?;
        let signup_type = column_type(&mut frame, &sources.signup_at, &path)?;
        if let Some(consent) = &sources.consent {
            column_type(&mut frame, consent, &path)?;
        }
        let schema = frame
            .collect_schema()
            .map_err(ExtractError::compute(path.display().to_string()))?;
        let reserved: Vec<&str> = [
            Some(&sources.user_id),
            Some(&sources.signup_at),
            sources.consent.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
        let attribute_names: Vec<String> = match &spec.feature_spec.features.attributes {
            Some(EventSelection::Named(names)) => {
                for name in names {
                    column_type(&mut frame, name, &path)?;
                }
                schema
                    .iter_names()
                    .map(|n| n.to_string())
                    .filter(|n| names.contains(n))
                    .collect()
            }
            _ => schema
                .iter_names()
                .map(|n| n.to_string())
                .filter(|n| {
                    !reserved.contains(&n.as_str()) && !sources.ignore_attributes.contains(n)
                })
                .collect(),
        };
        for name in &sources.ignore_attributes {
            column_type(&mut frame, name, &path)?;
        }
        source::check_text_timestamps(frame.clone(), &sources.signup_at, &signup_type, &path)?;

        let uid = if uid_type == events.uid_type {
            col(sources.user_id.as_str())
        } else {
            events.frame = events
                .frame
                .clone()
                .with_column(col(UID).cast(DataType::String));
            col(sources.user_id.as_str()).cast(DataType::String)
        };
        let mut select = vec![
            uid.alias(UID),
            source::timestamp_us(&sources.signup_at, &signup_type, &path)?.alias(SIGNUP),
        ];
        if let Some(consent) = &sources.consent {
            select.push(col(consent.as_str()).alias("__consent"));
        }
        select.extend(attribute_names.iter().map(|a| col(a.as_str())));
        let table = frame
            .select(select)
            .collect()
            .map_err(ExtractError::compute(format!(
                "{}: reading users",
                path.display()
            )))?;
        let n = table.height();
        if n == 0 {
            return Err(data_error(&path, "the users extract has no rows".into()));
        }
        let mut report = ExtractReport {
            users_read: n as u64,
            ..ExtractReport::default()
        };

        let compute = |what: &str| ExtractError::compute(format!("{}: {what}", path.display()));
        let ids = id_texts(table.column(UID).map_err(compute("reading ids"))?)
            .map_err(compute("reading ids"))?;
        let mut first_row: HashMap<&str, usize> = HashMap::with_capacity(n);
        let mut duplicates = 0usize;
        let mut first_duplicate = None;
        for (row, id) in ids.iter().enumerate() {
            let Some(id) = id else {
                return Err(data_error(
                    &path,
                    format!(
                        "column '{}', row {}: the user id is empty",
                        sources.user_id,
                        row + 1
                    ),
                ));
            };
            if let Some(&earlier) = first_row.get(id.as_str()) {
                duplicates += 1;
                first_duplicate.get_or_insert((earlier + 1, row + 1));
            } else {
                first_row.insert(id, row);
            }
        }
        if let Some((a, b)) = first_duplicate {
            return Err(data_error(
                &path,
                format!(
                    "{duplicates} rows repeat a user id already seen (first: rows {a} and {b} share one); the users extract must have one row per user"
                ),
            ));
        }
        drop(first_row);

        let signups: Vec<Option<i64>> = table
            .column(SIGNUP)
            .and_then(|c| c.i64().map(|c| c.iter().collect()))
            .map_err(compute("reading signups"))?;
        if let Some(row) = signups.iter().position(Option::is_none) {
            return Err(data_error(
                &path,
                format!(
                    "column '{}', row {}: the signup timestamp is empty",
                    sources.signup_at,
                    row + 1
                ),
            ));
        }
        let signups: Vec<i64> = signups.into_iter().map(|s| s.unwrap_or_default()).collect();

        let consent = match &sources.consent {
            Some(_) => Some(consent_values(
                table
                    .column("__consent")
                    .map_err(compute("reading consent"))?,
                &path,
            )?),
            None => None,
        };
        let erased = match &sources.erasure {
            Some(list) => read_erasure(list)?,
            None => HashSet::new(),
        };

        let fs = &spec.feature_spec;
        let window = &fs.window;
        let absolute_cutoff = window.cutoff_us().map_err(|e| ExtractError::Config {
            path: config.display().to_string(),
            message: e.message,
        })?;
        let configured_end = sources.end_us().map_err(|e| ExtractError::Config {
            path: config.display().to_string(),
            message: e.message,
        })?;
        let end = match configured_end {
            Some(end) => Some(end),
            None if fs.label.is_some() || window.days_after_signup.is_some() => last_event(events)?,
            None => None,
        };
        report.extract_end_us = end;

        let mut keep = Vec::with_capacity(n);
        let mut withheld = Vec::with_capacity(n);
        let (mut starts, mut cutoffs) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut label_starts, mut label_ends) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for row in 0..n {
            let signup = signups[row];
            let w = UserWindow::with_cutoff(fs, absolute_cutoff, signup);
            let cutoff = w.cutoff_us;
            let label_end = fs.label.as_ref().map(|_| w.label_end_us);
            let no_consent = consent.as_ref().is_some_and(|c| !c[row]);
            let is_erased = ids[row].as_ref().is_some_and(|id| erased.contains(id));
            withheld.push(no_consent || is_erased);
            let excluded = if no_consent {
                Some(&mut report.excluded_no_consent)
            } else if is_erased {
                Some(&mut report.excluded_erased)
            } else if absolute_cutoff.is_some() && signup >= cutoff {
                Some(&mut report.excluded_signed_up_after_cutoff)
            } else if absolute_cutoff.is_none() && end.is_some_and(|e| cutoff > e) {
                Some(&mut report.excluded_window_incomplete)
            } else if let (Some(e), Some(le)) = (end, label_end) {
                (le > e).then_some(&mut report.excluded_label_incomplete)
            } else {
                None
            };
            match excluded {
                Some(count) => {
                    *count += 1;
                    keep.push(false);
                }
                None => keep.push(true),
            }
            starts.push(w.start_us);
            cutoffs.push(cutoff);
            label_starts.push(w.label_start_us);
            label_ends.push(w.label_end_us);
        }
        let uid_column = table.column(UID).map_err(compute("reading ids"))?.clone();
        let keys = DataFrame::new(
            n,
            vec![
                uid_column.clone(),
                Column::new(KEEP.into(), keep),
                Column::new(SIGNUP.into(), signups),
                Column::new(START.into(), starts),
                Column::new(CUTOFF.into(), cutoffs),
                Column::new(LABEL_START.into(), label_starts),
                Column::new(LABEL_END.into(), label_ends),
                Column::new(ORDER.into(), (0..n as u64).collect::<Vec<_>>()),
            ],
        )
        .map_err(compute("placing windows"))?;
        let mut attribute_columns = vec![uid_column];
        for name in &attribute_names {
            attribute_columns.push(
                table
                    .column(name)
                    .map_err(compute("reading attributes"))?
                    .clone(),
            );
        }
        let attributes =
            DataFrame::new(n, attribute_columns).map_err(compute("reading attributes"))?;
        Ok(Users {
            path,
            keys,
            attributes,
            attribute_names,
            withheld,
            report,
        })
    }
}
