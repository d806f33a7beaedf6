//! The per-user aggregation: one lazy pass over the events joined with
//! each user's windows, grouped by user.
//!
//! Point-in-time correctness lives in one place: every feature reads only
//! the rows of the `__obs` mask (`start <= occurred_at < cutoff`); only the
//! label expressions read events at or after the cutoff.

use polars::prelude::*;

use super::source::{Events, EVENT, TS, UID};
use super::spec::{pattern_matches, EventSelection, ExtractSpec, LabelSpec};
use super::time::{DAY_US, HOUR_US, MINUTE_US};
use super::users::{Users, CUTOFF, KEEP, LABEL_END, LABEL_START, ORDER, SIGNUP, START};
use super::{BuiltTable, ExtractError, FeatureDefinition};

const OBS: &str = "__obs";
const DAY: &str = "__day";
const MID: &str = "__mid";
const N_ALL: &str = "__n_all";
const BEFORE_SIGNUP: &str = "__before_signup";
const UNKNOWN: &str = "__unknown";
const TREND_FIRST: &str = "__trend_first";
const TREND_SECOND: &str = "__trend_second";
const LABEL_HIT: &str = "__label_hit";
const ADOPTED_BEFORE: &str = "__adopted_before";

/// A feature: its aggregation, whether a user without events gets 0
/// (counts) or stays missing (times, means), and its description.
struct Feature {
    name: String,
    expr: Expr,
    zero_when_absent: bool,
    description: String,
    /// Dropped when no user in the table has it (a count for an event name
    /// matched by `"all"` or a prefix that only occurs outside every
    /// observation window): the columns must not depend on later events.
    drop_if_never_observed: bool,
}

fn feature(name: String, expr: Expr, zero_when_absent: bool, description: String) -> Feature {
    Feature {
        name,
        expr,
        zero_when_absent,
        description,
        drop_if_never_observed: false,
    }
}

fn obs() -> Expr {
    col(OBS)
}

fn event_is(name: &str) -> Expr {
    col(EVENT).eq(lit(name.to_owned()))
}

fn any_event(names: &[String]) -> Expr {
    names
        .iter()
        .map(|n| event_is(n))
        .reduce(|a, b| a.or(b))
        .unwrap_or_else(|| lit(false))
}

/// Distinct event names in the extract, sorted.
fn event_names(events: &Events) -> Result<Vec<String>, ExtractError> {
    let frame = events
        .frame
        .clone()
        .select([col(EVENT)])
        .filter(col(EVENT).is_not_null())
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .map_err(ExtractError::compute(format!(
            "{}: listing event names",
            events.path.display()
        )))?;
    let mut names: Vec<String> = frame
        .column(EVENT)
        .and_then(|c| {
            c.str()
                .map(|s| s.iter().flatten().map(str::to_owned).collect())
        })
        .map_err(ExtractError::compute("listing event names"))?;
    names.sort();
    Ok(names)
}

/// The names among `all` that `patterns` select.
fn resolve(patterns: &[String], all: &[String]) -> Vec<String> {
    all.iter()
        .filter(|n| patterns.iter().any(|p| pattern_matches(p, n)))
        .cloned()
        .collect()
}

fn hours_since_signup(first: Expr) -> Expr {
    (first - col(SIGNUP).first()).cast(DataType::Float64) / lit(HOUR_US as f64)
}

/// The feature list the spec asks for.
fn features(
    spec: &ExtractSpec,
    names: &[String],
    config: &std::path::Path,
) -> Result<Vec<Feature>, ExtractError> {
    let f = &spec.features;
    let mut out = Vec::new();
    let window = match (spec.window.days_after_signup, &spec.window.cutoff) {
        (Some(days), _) => format!("in the first {days} days after signup"),
        (None, Some(cutoff)) => match spec.window.lookback_days {
            Some(days) => format!("in the {days} days before {cutoff}"),
            None => format!("from signup until {cutoff}"),
        },
        (None, None) => unreachable!("checked spec"),
    };
    let config_error = |message: String| ExtractError::Config {
        path: config.display().to_string(),
        message,
    };
    if f.events_total {
        out.push(feature(
            "events_total".into(),
            obs().sum(),
            true,
            format!("events {window}"),
        ));
    }
    if let Some(selection) = &f.event_counts {
        let selected: Vec<&String> = names.iter().filter(|n| selection.matches(n)).collect();
        if let EventSelection::Named(patterns) = selection {
            for p in patterns {
                if !names.iter().any(|n| pattern_matches(p, n)) {
                    return Err(config_error(format!(
                        "[features] event_counts names {p:?}, which matches no event in the events extract"
                    )));
                }
            }
        }
        for name in selected {
            let exact = match selection {
                EventSelection::Named(patterns) => patterns.iter().any(|p| p == name),
                EventSelection::All(_) => false,
            };
            out.push(feature(
                format!("count_{name}"),
                obs().and(event_is(name)).sum(),
                true,
                format!("'{name}' events {window}"),
            ));
            out.last_mut().expect("just pushed").drop_if_never_observed = !exact;
        }
    }
    if f.active_days {
        out.push(feature(
            "active_days".into(),
            col(DAY).filter(obs()).n_unique(),
            true,
            format!("distinct calendar days (UTC) with an event {window}"),
        ));
    }
    if let Some(gap) = f.session_gap_minutes {
        let gap_us = (gap * MINUTE_US as f64).round() as i64;
        let times = col(TS).filter(obs()).sort(SortOptions::default());
        let new_sessions = (times.clone() - times.shift(lit(1))).gt(lit(gap_us)).sum();
        out.push(feature(
            "sessions".into(),
            new_sessions + obs().any(true).cast(DataType::UInt32),
            true,
            format!("sessions (events less than {gap} minutes apart) {window}"),
        ));
    }
    for event in &f.time_to_first {
        out.push(feature(
            format!("hours_to_first_{event}"),
            hours_since_signup(col(TS).filter(obs().and(event_is(event))).min()),
            false,
            format!("hours from signup to the first '{event}' event {window}; missing if none"),
        ));
    }
    if let Some(event) = &f.onboarding_event {
        out.push(feature(
            "onboarding_completed".into(),
            obs().and(event_is(event)).any(true).cast(DataType::UInt32),
            true,
            format!("1 if '{event}' (onboarding completed) happened {window}"),
        ));
        out.push(feature(
            "hours_to_onboarding".into(),
            hours_since_signup(col(TS).filter(obs().and(event_is(event))).min()),
            false,
            format!("hours from signup to '{event}' {window}; missing if not completed"),
        ));
    }
    if f.recency {
        out.push(feature(
            "days_since_last_event".into(),
            (col(CUTOFF).first() - col(TS).filter(obs()).max()).cast(DataType::Float64)
                / lit(DAY_US as f64),
            false,
            format!("days from the last event {window} to the cutoff; missing without events"),
        ));
    }
    if let Some(patterns) = &f.feature_events {
        let used = resolve(patterns, names);
        if used.is_empty() {
            return Err(config_error(format!(
                "[features] feature_events {patterns:?} matches no event in the events extract"
            )));
        }
        out.push(feature(
            "distinct_features_used".into(),
            col(EVENT).filter(obs().and(any_event(&used))).n_unique(),
            true,
            format!(
                "distinct product features used ({} event names) {window}",
                used.len()
            ),
        ));
    }
    for p in &f.property_sums {
        out.push(feature(
            format!("sum_{p}"),
            col(p.as_str()).filter(obs()).sum(),
            true,
            format!("sum of '{p}' over events {window}"),
        ));
    }
    for p in &f.property_means {
        out.push(feature(
            format!("mean_{p}"),
            col(p.as_str()).filter(obs()).mean(),
            false,
            format!("mean of '{p}' over events {window}; missing without events"),
        ));
    }
    Ok(out)
}

/// Joins, aggregates and assembles the table.
pub fn build_table(
    spec: &ExtractSpec,
    users: Users,
    events: Events,
    config: &std::path::Path,
) -> Result<BuiltTable, ExtractError> {
    let names = event_names(&events)?;
    let features = features(spec, &names, config)?;
    let mut report = users.report.clone();
    let compute = |what: &str| ExtractError::compute(format!("{}: {what}", events.path.display()));

    // Final column order: id, features, attributes, label. Names must be
    // unique before the joins below (polars would suffix a clash).
    let label_column = spec.label.as_ref().map(LabelSpec::column);
    let id_name = spec.extract.user_id.as_str();
    let mut definitions: Vec<FeatureDefinition> = Vec::new();
    let mut seen: std::collections::HashSet<String> = [id_name, UID, ORDER, KEEP]
        .into_iter()
        .chain(label_column)
        .map(str::to_owned)
        .collect();
    let trend = spec.features.trend.then(|| {
        (
            "activity_trend".to_owned(),
            "(events in the second half of the window - first half) / all events; missing without events".to_owned(),
        )
    });
    let feature_iter = features
        .iter()
        .map(|f| (f.name.clone(), f.description.clone()))
        .chain(trend);
    let attribute_iter = users.attribute_names.iter().map(|a| {
        (
            a.clone(),
            format!("user attribute '{a}' from the users extract"),
        )
    });
    for (name, description) in feature_iter.chain(attribute_iter) {
        if !seen.insert(name.clone()) {
            return Err(ExtractError::Config {
                path: config.display().to_string(),
                message: format!(
                    "two columns of the built table are called '{name}' (a feature, a user attribute or the label); rename the attribute or drop it with [extract] ignore_attributes"
                ),
            });
        }
        definitions.push(FeatureDefinition { name, description });
    }

    let windows = users.keys.clone().lazy().select([
        col(UID),
        col(SIGNUP),
        col(START),
        col(CUTOFF),
        col(LABEL_START),
        col(LABEL_END),
    ]);
    let joined = events
        .frame
        .clone()
        .join(
            windows,
            [col(UID)],
            [col(UID)],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col(TS)
                .gt_eq(col(START))
                .and(col(TS).lt(col(CUTOFF)))
                .fill_null(lit(false))
                .alias(OBS),
            col(TS).floor_div(lit(DAY_US)).alias(DAY),
            (col(START) + (col(CUTOFF) - col(START)).floor_div(lit(2i64))).alias(MID),
        ]);

    let mut aggs = vec![
        len().alias(N_ALL),
        col(SIGNUP).first().is_null().alias(UNKNOWN),
        col(TS)
            .lt(col(SIGNUP))
            .fill_null(lit(false))
            .sum()
            .alias(BEFORE_SIGNUP),
    ];
    if spec.features.trend {
        aggs.push(obs().and(col(TS).lt(col(MID))).sum().alias(TREND_FIRST));
        aggs.push(obs().and(col(TS).gt_eq(col(MID))).sum().alias(TREND_SECOND));
    }
    match &spec.label {
        Some(LabelSpec::Churn {
            qualifying_events, ..
        }) => {
            let qualifying = match qualifying_events {
                Some(patterns) => any_event(&resolve(patterns, &names)),
                None => lit(true),
            };
            aggs.push(
                col(TS)
                    .gt_eq(col(LABEL_START))
                    .and(col(TS).lt(col(LABEL_END)))
                    .and(qualifying)
                    .fill_null(lit(false))
                    .any(true)
                    .alias(LABEL_HIT),
            );
        }
        Some(LabelSpec::Adoption { event, .. }) => {
            aggs.push(
                col(TS)
                    .lt(col(CUTOFF))
                    .and(event_is(event))
                    .fill_null(lit(false))
                    .any(true)
                    .alias(ADOPTED_BEFORE),
            );
            aggs.push(
                col(TS)
                    .gt_eq(col(CUTOFF))
                    .and(col(TS).lt(col(LABEL_END)))
                    .and(event_is(event))
                    .fill_null(lit(false))
                    .any(true)
                    .alias(LABEL_HIT),
            );
        }
        None => {}
    }
    aggs.extend(
        features
            .iter()
            .map(|f| f.expr.clone().alias(f.name.as_str())),
    );
    let per_user = joined
        .group_by([col(UID)])
        .agg(aggs)
        .collect()
        .map_err(compute("aggregating events per user"))?;

    let column_u64 = |frame: &DataFrame, name: &str| -> Result<Vec<u64>, ExtractError> {
        let c = frame
            .column(name)
            .and_then(|c| c.cast(&DataType::UInt64))
            .map_err(compute("reading aggregates"))?;
        Ok(c.u64()
            .map_err(compute("reading aggregates"))?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    };
    let unknown: Vec<bool> = per_user
        .column(UNKNOWN)
        .and_then(|c| {
            c.bool()
                .map(|b| b.iter().map(|v| v.unwrap_or(false)).collect())
        })
        .map_err(compute("reading aggregates"))?;
    let n_all = column_u64(&per_user, N_ALL)?;
    let before_signup = column_u64(&per_user, BEFORE_SIGNUP)?;
    report.events_read = n_all.iter().sum();
    for (i, &u) in unknown.iter().enumerate() {
        if u {
            report.unknown_users += 1;
            report.events_unknown_user += n_all[i];
        } else {
            report.events_before_signup += before_signup[i];
        }
    }

    // Users first (their order), then their aggregates; users without events
    // get zero counts and missing times.
    let mut table = users
        .keys
        .clone()
        .lazy()
        .filter(col(KEEP))
        .select([col(UID), col(ORDER)])
        .join(
            per_user.lazy().filter(col(UNKNOWN).not()),
            [col(UID)],
            [col(UID)],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            users.attributes.clone().lazy(),
            [col(UID)],
            [col(UID)],
            JoinArgs::new(JoinType::Left),
        )
        .sort([ORDER], SortMultipleOptions::default());
    let mut fills: Vec<Expr> = features
        .iter()
        .filter(|f| f.zero_when_absent)
        .map(|f| col(f.name.as_str()).fill_null(lit(0)))
        .collect();
    if spec.features.trend {
        let (first, second) = (
            col(TREND_FIRST).fill_null(lit(0)).cast(DataType::Float64),
            col(TREND_SECOND).fill_null(lit(0)).cast(DataType::Float64),
        );
        let total = first.clone() + second.clone();
        fills.push(
            when(total.clone().gt(lit(0.0)))
                .then((second - first) / total)
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("activity_trend"),
        );
    }
    if !fills.is_empty() {
        table = table.with_columns(fills);
    }
    if let Some(label) = &spec.label {
        let hit = col(LABEL_HIT).fill_null(lit(false));
        let value = match label {
            LabelSpec::Churn { .. } => hit.not(),
            LabelSpec::Adoption { .. } => hit,
        };
        table = table.with_column(value.cast(DataType::UInt32).alias(label.column()));
    }
    let mut table = table.collect().map_err(compute("assembling the table"))?;

    if let Some(LabelSpec::Adoption { .. }) = &spec.label {
        let before: Vec<bool> = table
            .column(ADOPTED_BEFORE)
            .and_then(|c| {
                c.bool()
                    .map(|b| b.iter().map(|v| v.unwrap_or(false)).collect())
            })
            .map_err(compute("reading adoption"))?;
        report.excluded_already_adopted = before.iter().filter(|b| **b).count() as u64;
        let mask = BooleanChunked::from_iter_values("keep".into(), before.iter().map(|b| !b));
        table = table.filter(&mask).map_err(compute("excluding adopters"))?;
    }
    report.events_observed = column_u64(&table, "events_total")
        .map(|v| v.iter().sum())
        .unwrap_or(0);

    let never_observed: Vec<&str> = features
        .iter()
        .filter(|f| f.drop_if_never_observed)
        .map(|f| f.name.as_str())
        .filter(|name| column_u64(&table, name).is_ok_and(|v| v.iter().all(|x| *x == 0)))
        .collect();
    definitions.retain(|d| !never_observed.contains(&d.name.as_str()));
    let mut select: Vec<Expr> = vec![col(UID).alias(id_name)];
    select.extend(definitions.iter().map(|d| col(d.name.as_str())));
    if let Some(l) = label_column {
        select.push(col(l));
    }
    let frame = table
        .lazy()
        .select(select)
        .collect()
        .map_err(compute("assembling the table"))?;
    report.users_in_table = frame.height() as u64;
    if let Some(l) = label_column {
        report.positives = Some(column_u64(&frame, l)?.iter().sum());
    }
    Ok(BuiltTable {
        frame,
        features: definitions,
        label: label_column.map(str::to_owned),
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_keeps_extract_order_and_prefixes() {
        let all: Vec<String> = ["feature_a", "feature_b", "login"].map(String::from).into();
        assert_eq!(
            resolve(&["feature_*".into()], &all),
            ["feature_a", "feature_b"]
        );
        assert_eq!(resolve(&["login".into()], &all), ["login"]);
        assert!(resolve(&["nope".into()], &all).is_empty());
    }
}
