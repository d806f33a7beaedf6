//! From the assignment log, the users and the events to one outcome value
//! per user and outcome.
//!
//! The assignment log is checked first: every row needs a user, a known
//! variant and a timestamp; a user logged twice in one variant keeps the
//! earliest row (counted); a user in both variants is an error naming how
//! many and the first few ids, hashed. Users missing from the users
//! extract, without consent or on the erasure list are left out and
//! counted. Each outcome then reads only the user's events from the
//! assignment on, and users whose outcome window passes the end of the
//! extract are left out of that outcome (counted per outcome).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use presage_data::extract::source::{self, column_type, Events, EVENT, TS, UID};
use presage_data::extract::users::{consent_values, last_event, read_erasure};
use presage_data::extract::ExtractError;
use presage_models::time::{days_to_us, HOUR_US, MINUTE_US};

use crate::spec::{ExperimentSpec, OutcomeKind, OutcomeSpec, SESSION_GAP_MINUTES};

const VARIANT: &str = "__variant";
const SEGMENT: &str = "__segment";
const INDEX: &str = "__index";
const AT: &str = "__at";
const CODE: &str = "__code";
const OFFSET: &str = "__offset";
/// Event code of events no outcome names (they still count for retention).
const OTHER: u32 = u32::MAX;

/// How many ids an error names.
const IDS_SHOWN: usize = 5;

/// What happened to the assignment rows, before any outcome. Counts only.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AssignmentCounts {
    /// Rows of the assignment extract.
    pub rows: u64,
    /// Repeated rows of a user in the same variant (the earliest is kept).
    pub duplicate_rows: u64,
    /// Assigned users absent from the users extract (left out).
    pub unknown_users: u64,
    /// Assigned users whose consent flag is false (left out).
    pub no_consent: u64,
    /// Assigned users on the erasure list (left out).
    pub erased: u64,
    /// Users analysed in control.
    pub control: u64,
    /// Users analysed in treatment.
    pub treatment: u64,
}

impl AssignmentCounts {
    /// The rows and what was left out, in words (counts only).
    pub fn exclusions(&self) -> String {
        use crate::numbers::group_digits as n;
        format!(
            "{} rows; left out {} repeated rows, {} users not in the users extract, {} without consent, {} erased",
            n(self.rows),
            n(self.duplicate_rows),
            n(self.unknown_users),
            n(self.no_consent),
            n(self.erased)
        )
    }
}

/// One analysed user.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// In treatment (else control).
    pub treated: bool,
    /// Index into [`Observations::segments`], if the experiment has segments.
    pub segment: Option<usize>,
    /// Assignment time, microseconds since the epoch.
    pub assigned_at: i64,
}

/// The analysed users and their outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    /// Segment names, sorted (a user without one is in `(none)`).
    pub segments: Vec<String>,
    /// The users, in assignment-log order.
    pub units: Vec<Unit>,
    /// Per outcome (config order), per unit: the value, or `None` when the
    /// outcome window passes the end of the extract.
    pub values: Vec<Vec<Option<f64>>>,
    /// Assignment counts.
    pub counts: AssignmentCounts,
    /// The end of the extract, microseconds since the epoch.
    pub end: i64,
}

fn data_error(path: &Path, message: String) -> ExtractError {
    ExtractError::Data {
        path: path.display().to_string(),
        message,
    }
}

/// The first 12 hex digits of the id's SHA-256 (what errors show instead
/// of ids: `printf %s ID | sha256sum` finds the user).
pub fn hashed_id(id: &str) -> String {
    Sha256::digest(id.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the selected columns of an extract into memory.
fn collect(frame: LazyFrame, path: &Path) -> Result<DataFrame, ExtractError> {
    frame.collect().map_err(ExtractError::compute(format!(
        "{}: reading",
        path.display()
    )))
}

/// One row of the assignment log after checks, borrowing its text from
/// the log's frame.
struct Assigned<'a> {
    id: &'a str,
    treated: bool,
    at: i64,
    segment: Option<&'a str>,
}

/// The cells of a text column (all empty when the frame lacks it).
fn texts<'a>(frame: &'a DataFrame, name: &str) -> Box<dyn Iterator<Item = Option<&'a str>> + 'a> {
    match frame.column(name).ok().and_then(|c| c.str().ok()) {
        Some(column) => Box::new(column.iter()),
        None => Box::new(std::iter::repeat_n(None, frame.height())),
    }
}

/// Reads the assignment log as [`UID`], [`VARIANT`], [`TS`] and, when the
/// log has the segment column, [`SEGMENT`]; says whether it has.
fn read_assignments(spec: &ExperimentSpec) -> Result<(DataFrame, bool), ExtractError> {
    let e = &spec.experiment;
    let uid = spec.extract.user_id.as_str();
    let path = e.assignments.clone().expect("checked by the spec");
    let mut text: Vec<&str> = vec![uid, &e.variant];
    text.extend(e.segment.as_deref());
    let mut frame = source::scan(&path, &text)?;
    let schema = frame
        .collect_schema()
        .map_err(ExtractError::compute(path.display().to_string()))?;
    column_type(&mut frame, uid, &path)?;
    column_type(&mut frame, &e.variant, &path)?;
    let ts_type = column_type(&mut frame, &e.assigned_at, &path)?;
    let has_segment = e.segment.as_deref().is_some_and(|s| schema.contains(s));
    source::check_text_timestamps(frame.clone(), &e.assigned_at, &ts_type, &path)?;
    let mut select = vec![
        col(uid).cast(DataType::String).alias(UID),
        col(e.variant.as_str())
            .cast(DataType::String)
            .alias(VARIANT),
        source::timestamp_us(&e.assigned_at, &ts_type, &path)?.alias(TS),
    ];
    if has_segment {
        let s = e.segment.as_deref().expect("has_segment");
        select.push(col(s).cast(DataType::String).alias(SEGMENT));
    }
    let rows = collect(frame.select(select), &path)?;
    if rows.height() == 0 {
        return Err(data_error(
            &path,
            "the assignment extract has no rows".into(),
        ));
    }
    Ok((rows, has_segment))
}

/// Checks every row of the log and keeps one per user (the earliest of a
/// user's rows in one variant); a user in both variants is an error.
fn check_assignments<'a>(
    rows: &'a DataFrame,
    spec: &ExperimentSpec,
    counts: &mut AssignmentCounts,
) -> Result<Vec<Assigned<'a>>, ExtractError> {
    let e = &spec.experiment;
    let uid = spec.extract.user_id.as_str();
    let path = e.assignments.clone().expect("checked by the spec");
    counts.rows = rows.height() as u64;
    let times = rows
        .column(TS)
        .and_then(|c| c.i64())
        .map_err(ExtractError::compute(format!(
            "{}: reading",
            path.display()
        )))?;
    let cells = texts(rows, UID)
        .zip(texts(rows, VARIANT))
        .zip(times.iter())
        .zip(texts(rows, SEGMENT));
    let mut kept: Vec<Assigned> = Vec::with_capacity(rows.height());
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(rows.height());
    let mut both: Vec<&str> = Vec::new();
    let mut both_seen: HashSet<&str> = HashSet::new();
    for (row, (((id, variant), at), segment)) in cells.enumerate() {
        let line = row + 1;
        let Some(id) = id.filter(|s| !s.trim().is_empty()) else {
            return Err(data_error(
                &path,
                format!("column '{uid}', row {line}: the user id is empty"),
            ));
        };
        let treated = match variant {
            Some(v) if v == e.control => false,
            Some(v) if v == e.treatment => true,
            other => {
                return Err(data_error(
                    &path,
                    format!(
                        "column '{}', row {line}: {} is neither the control ({:?}) nor the treatment ({:?}); set [experiment] control and treatment to the log's variant names",
                        e.variant,
                        other.map_or("an empty value".to_owned(), |v| format!("{v:?}")),
                        e.control,
                        e.treatment
                    ),
                ))
            }
        };
        let Some(at) = at else {
            return Err(data_error(
                &path,
                format!(
                    "column '{}', row {line}: the timestamp is empty",
                    e.assigned_at
                ),
            ));
        };
        match seen.get(id) {
            Some(&k) if kept[k].treated == treated => {
                counts.duplicate_rows += 1;
                if at < kept[k].at {
                    kept[k].at = at;
                    kept[k].segment = segment;
                }
            }
            Some(_) => {
                if both_seen.insert(id) {
                    both.push(id);
                }
            }
            None => {
                seen.insert(id, kept.len());
                kept.push(Assigned {
                    id,
                    treated,
                    at,
                    segment,
                });
            }
        }
    }
    if !both.is_empty() {
        let shown: Vec<String> = both
            .iter()
            .take(IDS_SHOWN)
            .map(|id| hashed_id(id))
            .collect();
        return Err(data_error(
            &path,
            format!(
                "{} user(s) are assigned to both {:?} and {:?} (first ids as SHA-256 prefixes: {}); each user must stay in one variant: fix the assignment log, or remove these users from it and report that you did",
                both.len(),
                e.control,
                e.treatment,
                shown.join(", ")
            ),
        ));
    }
    Ok(kept)
}

/// The users extract as [`UID`], the consent column and, when the segment
/// comes from it, [`SEGMENT`]; `None` when the config names no users extract.
fn read_users(
    spec: &ExperimentSpec,
    segment_column: Option<&str>,
) -> Result<Option<(DataFrame, Vec<bool>)>, ExtractError> {
    let sources = &spec.extract;
    let Some(path) = &sources.users else {
        return Ok(None);
    };
    let uid = sources.user_id.as_str();
    let mut text = vec![uid];
    text.extend(segment_column);
    let mut frame = source::scan(path, &text)?;
    column_type(&mut frame, uid, path)?;
    let mut select = vec![col(uid).cast(DataType::String).alias(UID)];
    if let Some(c) = &sources.consent {
        column_type(&mut frame, c, path)?;
        select.push(col(c.as_str()));
    }
    if let Some(s) = segment_column {
        match column_type(&mut frame, s, path) {
            Err(ExtractError::MissingColumn { available, .. }) => {
                return Err(data_error(
                    path,
                    format!("no column '{s}' for [experiment] segment here (columns: {available}) nor in the assignments; name a column of either"),
                ))
            }
            other => other?,
        };
        select.push(col(s).cast(DataType::String).alias(SEGMENT));
    }
    let users = collect(frame.select(select), path)?;
    let consent = match &sources.consent {
        Some(c) => consent_values(
            users
                .column(c)
                .map_err(ExtractError::compute(path.display().to_string()))?,
            path,
        )?,
        None => vec![true; users.height()],
    };
    Ok(Some((users, consent)))
}

/// What the users extract says of each user: consent, and the segment
/// (when the assignments do not carry it).
fn user_facts<'a>(
    users: &'a DataFrame,
    consent: &[bool],
) -> HashMap<&'a str, (bool, Option<&'a str>)> {
    texts(users, UID)
        .zip(consent)
        .zip(texts(users, SEGMENT))
        .filter_map(|((id, &consent), segment)| Some((id?, (consent, segment))))
        .collect()
}

/// The extract's end: `[extract] end`, else the last event.
fn extract_end(spec: &ExperimentSpec, events: &Events) -> Result<i64, ExtractError> {
    let configured = spec.extract.end_us().map_err(|e| ExtractError::Config {
        path: "[extract] end".into(),
        message: e.message,
    })?;
    match configured {
        Some(end) => Ok(end),
        None => last_event(events)?
            .ok_or_else(|| data_error(&events.path, "the events extract has no timestamps".into())),
    }
}

/// Reads everything the analysis needs.
pub fn observe(spec: &ExperimentSpec) -> Result<Observations, ExtractError> {
    let e = &spec.experiment;
    let mut counts = AssignmentCounts::default();
    let (log, segment_in_log) = read_assignments(spec)?;
    let assigned = check_assignments(&log, spec, &mut counts)?;
    let segment_from_users = e.segment.as_deref().filter(|_| !segment_in_log);
    let users = read_users(spec, segment_from_users)?;
    if let (Some(s), None) = (segment_from_users, &users) {
        return Err(data_error(
            e.assignments.as_ref().expect("checked"),
            format!("no column '{s}' for [experiment] segment, and no users extract to look in; name a column of the assignments, or set [extract] users to a users extract that has it"),
        ));
    }
    let facts = users
        .as_ref()
        .map(|(frame, consent)| user_facts(frame, consent));
    let erased = match &spec.extract.erasure {
        Some(p) => read_erasure(p)?,
        None => HashSet::new(),
    };

    let mut kept: Vec<Assigned> = Vec::with_capacity(assigned.len());
    for mut a in assigned {
        if erased.contains(a.id) {
            counts.erased += 1;
            continue;
        }
        if let Some(facts) = &facts {
            let Some(&(consent, segment)) = facts.get(a.id) else {
                counts.unknown_users += 1;
                continue;
            };
            if !consent {
                counts.no_consent += 1;
                continue;
            }
            if segment_from_users.is_some() {
                a.segment = segment;
            }
        }
        kept.push(a);
    }
    counts.treatment = kept.iter().filter(|k| k.treated).count() as u64;
    counts.control = kept.len() as u64 - counts.treatment;
    let path = e.assignments.as_ref().expect("checked");
    for (n, arm) in [
        (counts.control, &e.control),
        (counts.treatment, &e.treatment),
    ] {
        if n == 0 {
            return Err(data_error(
                path,
                format!(
                    "no users left in {arm:?} ({}); an experiment needs both variants",
                    counts.exclusions()
                ),
            ));
        }
    }

    const NO_SEGMENT: &str = "(none)";
    let segments: Vec<String> = if e.segment.is_some() {
        let mut names: Vec<&str> = kept
            .iter()
            .map(|k| k.segment.unwrap_or(NO_SEGMENT))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        names.sort_unstable();
        names.into_iter().map(str::to_owned).collect()
    } else {
        Vec::new()
    };
    let units: Vec<Unit> = kept
        .iter()
        .map(|k| Unit {
            treated: k.treated,
            assigned_at: k.at,
            segment: e.segment.as_ref().map(|_| {
                let name = k.segment.unwrap_or(NO_SEGMENT);
                segments
                    .binary_search_by(|s| s.as_str().cmp(name))
                    .expect("listed")
            }),
        })
        .collect();

    let events = Events::open_sources(&spec.extract, &[])?;
    let end = extract_end(spec, &events)?;
    let ids: Vec<&str> = kept.iter().map(|k| k.id).collect();
    let values = outcome_values(spec, &events, &ids, &units, end)?;
    Ok(Observations {
        segments,
        units,
        values,
        counts,
        end,
    })
}

/// The distinct events the outcomes name; an event's code is its index.
fn event_codes(spec: &ExperimentSpec) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for name in spec.outcomes.iter().filter_map(|o| o.event.as_deref()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Each outcome's value for each unit (`None` where the outcome window
/// passes `end`), aggregated per unit by a streaming polars query over the
/// events from each unit's assignment to the longest horizon: memory grows
/// with the users, not the events.
fn outcome_values(
    spec: &ExperimentSpec,
    events: &Events,
    ids: &[&str],
    units: &[Unit],
    end: i64,
) -> Result<Vec<Vec<Option<f64>>>, ExtractError> {
    let compute = |what: &str| ExtractError::compute(format!("{}: {what}", events.path.display()));
    let horizon = spec
        .outcomes
        .iter()
        .map(OutcomeSpec::horizon_days)
        .fold(0.0, f64::max);
    let keys = DataFrame::new(
        units.len(),
        vec![
            Column::new(UID.into(), ids),
            Column::new(INDEX.into(), (0..units.len() as u32).collect::<Vec<_>>()),
            Column::new(
                AT.into(),
                units.iter().map(|u| u.assigned_at).collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(ExtractError::compute("indexing the assignments"))?;
    let codes = event_codes(spec);
    let mut code = lit(OTHER);
    for (c, name) in codes.iter().enumerate() {
        code = when(col(EVENT).eq(lit(*name)))
            .then(lit(c as u32))
            .otherwise(code);
    }
    let needs_every_event = spec
        .outcomes
        .iter()
        .any(|o| matches!(o.kind, OutcomeKind::Retention | OutcomeKind::Sessions));
    let mut joined = events
        .frame
        .clone()
        .with_column(col(UID).cast(DataType::String))
        .join(
            keys.lazy(),
            [col(UID)],
            [col(UID)],
            JoinArgs::new(JoinType::Inner),
        )
        .select([
            col(INDEX),
            (col(TS) - col(AT)).alias(OFFSET),
            code.cast(DataType::UInt32).alias(CODE),
        ])
        .filter(
            col(OFFSET)
                .gt_eq(lit(0i64))
                .and(col(OFFSET).lt(lit(days_to_us(horizon)))),
        );
    if !needs_every_event {
        joined = joined.filter(col(CODE).neq(lit(OTHER)));
    }

    let code_of = |outcome: &OutcomeSpec| {
        outcome
            .event
            .as_deref()
            .and_then(|name| codes.iter().position(|c| *c == name))
            .map_or(OTHER, |c| c as u32)
    };
    let column = column_name;
    let mut aggregates = Vec::new();
    for (o, outcome) in spec.outcomes.iter().enumerate() {
        let within = col(OFFSET).lt(lit(days_to_us(outcome.within_days.unwrap_or(0.0))));
        let hit = col(CODE).eq(lit(code_of(outcome))).and(within);
        let aggregate = match outcome.kind {
            OutcomeKind::Conversion => hit.cast(DataType::UInt32).max(),
            OutcomeKind::Retention => {
                let from = days_to_us(outcome.from_day.unwrap_or(0.0));
                let to = days_to_us(outcome.to_day.unwrap_or(0.0));
                col(OFFSET)
                    .gt_eq(lit(from))
                    .and(col(OFFSET).lt(lit(to)))
                    .cast(DataType::UInt32)
                    .max()
            }
            OutcomeKind::TimeToEvent => when(hit).then(col(OFFSET)).otherwise(lit(NULL)).min(),
            OutcomeKind::Count => hit.cast(DataType::UInt32).sum(),
            OutcomeKind::Sessions => continue,
        };
        aggregates.push(aggregate.cast(DataType::Float64).alias(column(o)));
    }
    let mut per_unit: Vec<(usize, DataFrame)> = Vec::new();
    if !aggregates.is_empty() {
        let frame = joined
            .clone()
            .group_by([col(INDEX)])
            .agg(aggregates)
            .collect_with_engine(Engine::Streaming)
            .map_err(compute("joining events to the assigned users"))?
            .unwrap_single();
        per_unit.extend(
            spec.outcomes
                .iter()
                .enumerate()
                .filter(|(_, o)| o.kind != OutcomeKind::Sessions)
                .map(|(o, _)| (o, frame.clone())),
        );
    }
    for (o, outcome) in spec.outcomes.iter().enumerate() {
        if outcome.kind != OutcomeKind::Sessions {
            continue;
        }
        // A session starts at a unit's first event and after every gap
        // longer than session_gap_minutes, as the sessions feature counts.
        let gap = outcome.session_gap_minutes.unwrap_or(SESSION_GAP_MINUTES);
        let gap = (gap * MINUTE_US as f64).round() as i64;
        let within = days_to_us(outcome.within_days.unwrap_or(0.0));
        let starts = col(INDEX)
            .neq(col(INDEX).shift(lit(1)))
            .or((col(OFFSET) - col(OFFSET).shift(lit(1))).gt(lit(gap)))
            .fill_null(lit(true));
        let frame = joined
            .clone()
            .filter(col(OFFSET).lt(lit(within)))
            .select([col(INDEX), col(OFFSET)])
            .sort([INDEX, OFFSET], SortMultipleOptions::default())
            .with_column(starts.alias(CODE))
            .group_by([col(INDEX)])
            .agg([col(CODE)
                .cast(DataType::UInt32)
                .sum()
                .cast(DataType::Float64)
                .alias(column(o))])
            .collect_with_engine(Engine::Streaming)
            .map_err(compute("counting sessions"))?
            .unwrap_single();
        per_unit.push((o, frame));
    }
    per_unit.sort_by_key(|(o, _)| *o);

    let mut values = Vec::with_capacity(spec.outcomes.len());
    for ((o, frame), outcome) in per_unit.iter().zip(&spec.outcomes) {
        let days = outcome.within_days.unwrap_or(0.0);
        let (default, scale) = match outcome.kind {
            OutcomeKind::TimeToEvent => (days * 24.0, 1.0 / HOUR_US as f64),
            _ => (0.0, 1.0),
        };
        let complete = days_to_us(outcome.horizon_days());
        let mut column: Vec<Option<f64>> = units
            .iter()
            .map(|u| (u.assigned_at + complete <= end).then_some(default))
            .collect();
        let index = frame
            .column(INDEX)
            .and_then(|c| c.u32().cloned())
            .map_err(ExtractError::compute("reading the outcomes"))?;
        let value = frame
            .column(&column_name(*o))
            .and_then(|c| c.f64().cloned())
            .map_err(ExtractError::compute("reading the outcomes"))?;
        for (i, v) in index.iter().zip(value.iter()) {
            if let (Some(i), Some(v)) = (i, v) {
                if let Some(slot) = column[i as usize].as_mut() {
                    *slot = v * scale;
                }
            }
        }
        values.push(column);
    }
    Ok(values)
}

fn column_name(o: usize) -> String {
    format!("__outcome{o}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shown_as_sha256_prefixes() {
        // printf abc | sha256sum = ba7816bf8f01cfea...
        assert_eq!(hashed_id("abc"), "ba7816bf8f01");
    }
}
