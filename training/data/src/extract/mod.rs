//! From warehouse extracts to a per-user training table.
//!
//! The warehouse exports a `users` extract (`user_id`, `signup_at`,
//! attributes, optional consent) and an `events` extract (`user_id`,
//! `event`, `occurred_at`, optional properties). [`build`] turns them into
//! one row per user: features computed only from events strictly before
//! each user's cutoff, and a label computed only from events after it.
//!
//! - [`spec`]: the TOML spec (sources, window, feature families, label).
//! - [`source`]: lazy polars scans of files, directories and globs, with
//!   timestamps normalised to microseconds since the Unix epoch (UTC).
//! - [`users`]: the users extract checked and narrowed (consent, erasure,
//!   duplicates, windows that are not complete yet).
//! - [`aggregate`]: the per-user aggregation over events.
//! - [`segments`]: rule segments assigned on the built table.
//! - [`export`]: the extracts as NDJSON for backfilling an online store.
//! - [`kpis`]: onboarding KPIs (time to first action, completion, funnel,
//!   cohort retention).

pub mod aggregate;
pub mod export;
pub mod kpis;
pub mod segments;
pub mod source;
pub mod spec;
pub mod users;

use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use spec::ExtractSpec;

/// Why the extracts could not be turned into a table. Each names the file
/// (and the column or row) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The spec in the config is wrong.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An extract could not be opened or read.
    #[error("{path}: {message}")]
    Source {
        /// The file, directory or glob.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A required column is absent.
    #[error("{path}: no column '{column}' (columns: {available}); name the right one in [extract] of the config")]
    MissingColumn {
        /// The extract.
        path: String,
        /// The column looked for.
        column: String,
        /// The columns present.
        available: String,
    },
    /// A column has a type that cannot serve its role.
    #[error("{path}: column '{column}' {problem}")]
    ColumnType {
        /// The extract.
        path: String,
        /// The column.
        column: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A timestamp cell could not be parsed.
    #[error("{path}: column '{column}', row {row}: cannot parse {value:?} as a timestamp; use ISO 8601 in UTC, e.g. 2024-03-01 or 2024-03-01T09:30:00")]
    Timestamp {
        /// The extract.
        path: String,
        /// The column.
        column: String,
        /// 1-based data row (the header is not counted).
        row: u64,
        /// The cell.
        value: String,
    },
    /// The data cannot produce a table (duplicates, empty extracts, ...).
    #[error("{path}: {message}")]
    Data {
        /// The extract.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// polars failed while computing.
    #[error("{context}: {message}")]
    Compute {
        /// What was being computed.
        context: String,
        /// polars' message.
        message: String,
    },
}

impl ExtractError {
    pub fn compute(context: impl Into<String>) -> impl FnOnce(PolarsError) -> ExtractError {
        let context = context.into();
        move |e| ExtractError::Compute {
            context,
            message: e.to_string(),
        }
    }
}

/// What building the table kept and left out. Counts only: no user id or
/// attribute value is ever reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExtractReport {
    /// Rows of the users extract.
    pub users_read: u64,
    /// Users excluded because their consent column is false or empty.
    pub excluded_no_consent: u64,
    /// Users excluded because they are on the erasure list.
    pub excluded_erased: u64,
    /// Users who signed up at or after the cutoff (absolute windows).
    pub excluded_signed_up_after_cutoff: u64,
    /// Users whose observation window ends after the extract does.
    pub excluded_window_incomplete: u64,
    /// Users whose label window ends after the extract does.
    pub excluded_label_incomplete: u64,
    /// Users who adopted before the cutoff (adoption labels only).
    pub excluded_already_adopted: u64,
    /// Rows in the built table.
    pub users_in_table: u64,
    /// Rows of the events extract.
    pub events_read: u64,
    /// Events whose user is not in the users extract (ignored).
    pub events_unknown_user: u64,
    /// Distinct unknown users those events belong to.
    pub unknown_users: u64,
    /// Events before their user's signup (ignored).
    pub events_before_signup: u64,
    /// Events inside an observation window (what the features read).
    pub events_observed: u64,
    /// The extract's end (microseconds since the epoch, UTC), if one was needed.
    pub extract_end_us: Option<i64>,
    /// Positive labels among the users in the table.
    pub positives: Option<u64>,
}

impl ExtractReport {
    /// One human-readable line per non-zero exclusion or warning.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |n: u64, what: &str| {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        };
        add(self.excluded_no_consent, "users excluded: no consent");
        add(self.excluded_erased, "users excluded: on the erasure list");
        add(
            self.excluded_signed_up_after_cutoff,
            "users excluded: signed up at or after the cutoff",
        );
        add(
            self.excluded_window_incomplete,
            "users excluded: observation window not complete at the end of the extract",
        );
        add(
            self.excluded_label_incomplete,
            "users excluded: label window not complete at the end of the extract",
        );
        add(
            self.excluded_already_adopted,
            "users excluded: adopted before the cutoff",
        );
        add(
            self.events_unknown_user,
            &format!(
                "events ignored: their user ({} distinct) is not in the users extract",
                self.unknown_users
            ),
        );
        add(
            self.events_before_signup,
            "events ignored: before their user's signup",
        );
        out
    }
}

/// One feature of the built table, for people and for serving callers.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FeatureDefinition {
    /// Column name.
    pub name: String,
    /// What it measures.
    pub description: String,
}

/// The built table and how it was built.
#[derive(Debug)]
pub struct BuiltTable {
    /// One row per user: the user id column, features, then the label (if any).
    pub frame: DataFrame,
    /// Every feature column, in table order.
    pub features: Vec<FeatureDefinition>,
    /// Every event name in the events extract, sorted: with the spec, what
    /// fixes the feature columns (`event_counts = "all"` makes one per name).
    pub event_names: Vec<String>,
    /// The label column, if the spec has a label.
    pub label: Option<String>,
    /// Counts of what was kept and left out.
    pub report: ExtractReport,
}

/// Builds the per-user table the spec describes. `config` is the config
/// file's path (for messages).
pub fn build(spec: &ExtractSpec, config: &Path) -> Result<BuiltTable, ExtractError> {
    let mut events = source::Events::open(spec)?;
    let users = users::Users::load(spec, &mut events, config)?;
    aggregate::build_table(spec, users, events, config)
}
