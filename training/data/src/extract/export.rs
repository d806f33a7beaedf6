//! The extracts as `presage-serve` ingests them: one NDJSON file of users
//! (`user_id`, `signup_at`, `consent`, `attributes`) and one of events
//! (`user_id`, `event`, `occurred_at`, `event_id`, `properties`), in the
//! contract of `POST /users` and `POST /events`, for backfilling an online
//! store (`presage-serve --backfill-users --backfill-events`).
//!
//! The same reading as the training build: the spec's column names,
//! timestamps normalised to UTC microseconds, users who withheld consent or
//! are on the erasure list left out (with their events), events of users
//! not in the users extract left out. Each event gets the id
//! `extract-<row>` (its row in the events extract), so a backfill sent
//! twice is stored once.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use polars::prelude::*;
use presage_models::time::format_timestamp;
use serde_json::{json, Map, Value};

use super::source::{Events, EVENT, TS, UID};
use super::spec::ExtractSpec;
use super::users::{Users, SIGNUP};
use super::ExtractError;

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ExportReport {
    /// Users written.
    pub users: u64,
    /// Users left out: no consent, or on the erasure list.
    pub users_withheld: u64,
    /// Events written.
    pub events: u64,
    /// Events left out: their user is withheld or not in the users extract.
    pub events_left_out: u64,
}

fn json_value(value: AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(v) => json!(v),
        AnyValue::Int16(v) => json!(v),
        AnyValue::Int32(v) => json!(v),
        AnyValue::Int64(v) => json!(v),
        AnyValue::UInt8(v) => json!(v),
        AnyValue::UInt16(v) => json!(v),
        AnyValue::UInt32(v) => json!(v),
        AnyValue::UInt64(v) => json!(v),
        AnyValue::Float32(v) => {
            serde_json::Number::from_f64(f64::from(v)).map_or(Value::Null, Value::Number)
        }
        AnyValue::Float64(v) => serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        other => Value::String(other.to_string()),
    }
}

fn texts(
    frame: &DataFrame,
    name: &str,
    context: &str,
) -> Result<Vec<Option<String>>, ExtractError> {
    let column = frame
        .column(name)
        .and_then(|c| c.cast(&DataType::String))
        .map_err(ExtractError::compute(context))?;
    let strings = column.str().map_err(ExtractError::compute(context))?;
    Ok(strings.iter().map(|v| v.map(str::to_owned)).collect())
}

fn write_line(out: &mut impl Write, value: &Value, path: &Path) -> Result<(), ExtractError> {
    serde_json::to_writer(&mut *out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| ExtractError::Source {
            path: path.display().to_string(),
            message: format!("cannot write: {e}"),
        })
}

/// Writes the users and events NDJSON files.
pub fn export_online(
    spec: &ExtractSpec,
    config: &Path,
    users_out: &Path,
    events_out: &Path,
) -> Result<ExportReport, ExtractError> {
    let mut events = Events::open(spec)?;
    let users = Users::load(spec, &mut events, config)?;
    let mut report = ExportReport::default();
    let open = |path: &Path| {
        std::fs::File::create(path)
            .map(|f| std::io::BufWriter::with_capacity(1 << 20, f))
            .map_err(|e| ExtractError::Source {
                path: path.display().to_string(),
                message: format!("cannot create: {e}"),
            })
    };

    // Users.
    let ids = texts(&users.keys, UID, "reading user ids")?;
    let signups: Vec<Option<i64>> = users
        .keys
        .column(SIGNUP)
        .and_then(|c| c.i64().map(|c| c.iter().collect()))
        .map_err(ExtractError::compute("reading signups"))?;
    let consent_column = spec.extract.consent.is_some();
    let mut kept: HashSet<String> = HashSet::with_capacity(ids.len());
    let mut out = open(users_out)?;
    let attribute_columns: Vec<&Column> = users
        .attribute_names
        .iter()
        .map(|n| users.attributes.column(n))
        .collect::<Result<_, _>>()
        .map_err(ExtractError::compute("reading attributes"))?;
    for (row, id) in ids.iter().enumerate() {
        let Some(id) = id else { continue };
        if users.withheld[row] {
            report.users_withheld += 1;
            continue;
        }
        let mut attributes = Map::new();
        for (name, column) in users.attribute_names.iter().zip(&attribute_columns) {
            let value = column
                .get(row)
                .map_err(ExtractError::compute("reading attributes"))?;
            attributes.insert(name.clone(), json_value(value));
        }
        let mut user = json!({
            "user_id": id,
            "signup_at": signups[row].map(format_timestamp),
            "attributes": attributes,
        });
        if consent_column {
            user["consent"] = Value::Bool(true);
        }
        write_line(&mut out, &user, users_out)?;
        kept.insert(id.clone());
        report.users += 1;
    }
    out.flush().map_err(|e| ExtractError::Source {
        path: users_out.display().to_string(),
        message: format!("cannot write: {e}"),
    })?;

    // Events, in extract order.
    let properties: Vec<String> = spec
        .feature_spec
        .features
        .properties()
        .into_iter()
        .cloned()
        .collect();
    let mut select = vec![col(UID).cast(DataType::String), col(TS), col(EVENT)];
    select.extend(
        properties
            .iter()
            .map(|p| col(p.as_str()).cast(DataType::Float64)),
    );
    let frame = events
        .frame
        .clone()
        .select(select)
        .collect()
        .map_err(ExtractError::compute(format!(
            "{}: reading events",
            events.path.display()
        )))?;
    let uids = texts(&frame, UID, "reading event user ids")?;
    let times = frame
        .column(TS)
        .and_then(|c| c.i64().cloned())
        .map_err(ExtractError::compute("reading event times"))?;
    let names = frame
        .column(EVENT)
        .and_then(|c| c.str().cloned())
        .map_err(ExtractError::compute("reading event names"))?;
    let values: Vec<Float64Chunked> = properties
        .iter()
        .map(|p| frame.column(p).and_then(|c| c.f64().cloned()))
        .collect::<Result<_, _>>()
        .map_err(ExtractError::compute("reading event properties"))?;
    let mut out = open(events_out)?;
    for (row, uid) in uids.iter().enumerate() {
        let (Some(uid), Some(at), Some(name)) = (uid, times.get(row), names.get(row)) else {
            report.events_left_out += 1;
            continue;
        };
        if !kept.contains(uid) {
            report.events_left_out += 1;
            continue;
        }
        let mut props = Map::new();
        for (p, column) in properties.iter().zip(&values) {
            if let Some(v) = column.get(row) {
                props.insert(p.clone(), json_value(AnyValue::Float64(v)));
            }
        }
        let event = json!({
            "user_id": uid,
            "event": name,
            "occurred_at": format_timestamp(at),
            "event_id": format!("extract-{row}"),
            "properties": props,
        });
        write_line(&mut out, &event, events_out)?;
        report.events += 1;
    }
    out.flush().map_err(|e| ExtractError::Source {
        path: events_out.display().to_string(),
        message: format!("cannot write: {e}"),
    })?;
    Ok(report)
}
