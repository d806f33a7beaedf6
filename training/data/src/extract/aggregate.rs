//! The per-user aggregation.
//!
//! 1. One streaming pass joins the events with each user's windows: event
//!    names become integer codes, user ids become the user's row number,
//!    and events that can change nothing (unknown users, after the label
//!    window) are dropped. A second streaming pass only counts what was
//!    left out.
//! 2. Labels are aggregated over the joined rows (order-independent).
//! 3. Features are aggregated over the observed rows only, sorted into a
//!    canonical order first so that float sums are identical on every run.
//!
//! Point-in-time correctness lives in one place: features read only the
//! rows of the `__obs` mask (`start <= occurred_at < cutoff`); only the
//! label aggregation reads events at or after the cutoff.

use polars::prelude::*;

use super::source::{Events, EVENT, TS, UID};
use presage_models::feature_spec::catalog::{event_features, EventFeature, Family};
use presage_models::feature_spec::spec::{resolve_patterns, LabelSpec};

use super::spec::ExtractSpec;
use super::users::{Users, CUTOFF, KEEP, LABEL_END, LABEL_START, ORDER, SIGNUP, START};
use super::{BuiltTable, ExtractError, FeatureDefinition};
use presage_models::time::{DAY_US, HOUR_US, MINUTE_US};

const OBS: &str = "__obs";
const CODE: &str = "__code";
const IDX: &str = "__idx";
const DAY: &str = "__day";
const SECOND_HALF: &str = "__second_half";
const IN_LABEL: &str = "__in_label";
const BEFORE_CUTOFF: &str = "__before_cutoff";
const BEFORE_SIGNUP: &str = "__before_signup";
const NEW_SESSION: &str = "__new_session";
const N_ALL: &str = "__n_all";
const N_OBSERVED: &str = "__n_observed";
const UNKNOWN_EVENTS: &str = "__unknown_events";
const UNKNOWN_USERS: &str = "__unknown_users";
const TREND_FIRST: &str = "__trend_first";
const TREND_SECOND: &str = "__trend_second";
const LABEL_HIT: &str = "__label_hit";
const ADOPTED_BEFORE: &str = "__adopted_before";

/// What happens to a feature's aggregate once users are joined with it.
#[derive(Clone, Copy)]
enum Then {
    /// A count: a user without events gets 0.
    ZeroWhenAbsent,
    /// A mean or similar: missing without events.
    Keep,
    /// A timestamp becomes hours since the user's signup.
    HoursSinceSignup,
    /// A timestamp becomes days until the user's cutoff.
    DaysUntilCutoff,
}

/// A catalog feature compiled to polars: its per-user aggregation over the
/// observed rows and what to do with it once users are joined.
/// `activity_trend` has no aggregation of its own (it is assembled from
/// two counts after the join).
struct Compiled<'c> {
    feature: &'c EventFeature,
    expr: Option<Expr>,
    then: Then,
}

/// A count-like column of `frame` as u64s (missing = 0).
fn column_u64(frame: &DataFrame, name: &str) -> Result<Vec<u64>, ExtractError> {
    let c = frame
        .column(name)
        .and_then(|c| c.cast(&DataType::UInt64))
        .map_err(ExtractError::compute(format!("reading '{name}'")))?;
    Ok(c.u64()
        .map_err(ExtractError::compute(format!("reading '{name}'")))?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

fn obs() -> Expr {
    col(OBS)
}

/// `column` where `mask` holds, else null: elementwise, so polars aggregates
/// it on its fast path (a per-group `filter` takes the slow one).
fn masked(column: &str, mask: Expr) -> Expr {
    when(mask).then(col(column)).otherwise(lit(NULL))
}

/// Distinct non-null values of `masked` per group (`n_unique` counts null as a value).
fn distinct(masked: Expr) -> Expr {
    masked.clone().n_unique() - masked.null_count().gt(lit(0)).cast(DataType::UInt32)
}

/// Whether the event is `name`. Events are compared by code (the name's
/// index among the sorted `names`): one string lookup per row when the
/// codes are made, instead of one string comparison per name and row.
fn event_is(names: &[String], name: &str) -> Expr {
    match names.binary_search_by(|n| n.as_str().cmp(name)) {
        Ok(code) => col(CODE).eq(lit(code as u32)),
        Err(_) => lit(false),
    }
}

fn any_event(names: &[String], selected: &[String]) -> Expr {
    selected
        .iter()
        .map(|n| event_is(names, n))
        .reduce(|a, b| a.or(b))
        .unwrap_or_else(|| lit(false))
}

/// `frame` with the event name replaced by its code ([`CODE`]: the index
/// among the sorted `names`), looked up with one hash join.
fn with_event_codes(frame: LazyFrame, names: &[String]) -> Result<LazyFrame, ExtractError> {
    let codes = DataFrame::new(
        names.len(),
        vec![
            Column::new(EVENT.into(), names),
            Column::new(CODE.into(), (0..names.len() as u32).collect::<Vec<_>>()),
        ],
    )
    .map_err(ExtractError::compute("coding event names"))?;
    Ok(frame.join(
        codes.lazy(),
        [col(EVENT)],
        [col(EVENT)],
        JoinArgs::new(JoinType::Left),
    ))
}

/// Distinct event names in the extract, sorted.
fn event_names(events: &Events) -> Result<Vec<String>, ExtractError> {
    let frame = events
        .frame
        .clone()
        .select([col(EVENT)])
        .filter(col(EVENT).is_not_null())
        .unique(None, UniqueKeepStrategy::Any)
        .collect_with_engine(Engine::Streaming)
        .map_err(ExtractError::compute(format!(
            "{}: listing event names",
            events.path.display()
        )))?
        .unwrap_single();
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

/// Each catalog feature as a polars aggregation (the meaning of each
/// family is [`presage_models::feature_spec::state`]; this is the same
/// computation over many users at once).
fn compile<'c>(catalog: &'c [EventFeature], names: &[String]) -> Vec<Compiled<'c>> {
    catalog
        .iter()
        .map(|feature| {
            let (expr, then) = match &feature.family {
                Family::EventsTotal => (Some(obs().sum()), Then::ZeroWhenAbsent),
                Family::EventCount(name) => (
                    Some(obs().and(event_is(names, name)).sum()),
                    Then::ZeroWhenAbsent,
                ),
                Family::ActiveDays => (Some(distinct(masked(DAY, obs()))), Then::ZeroWhenAbsent),
                Family::Sessions { .. } => (Some(col(NEW_SESSION).sum()), Then::ZeroWhenAbsent),
                Family::HoursToFirst(event) | Family::HoursToOnboarding(event) => (
                    Some(masked(TS, obs().and(event_is(names, event))).min()),
                    Then::HoursSinceSignup,
                ),
                Family::OnboardingCompleted(event) => (
                    Some(
                        obs()
                            .and(event_is(names, event))
                            .any(true)
                            .cast(DataType::UInt32),
                    ),
                    Then::ZeroWhenAbsent,
                ),
                Family::DaysSinceLastEvent => {
                    (Some(masked(TS, obs()).max()), Then::DaysUntilCutoff)
                }
                Family::DistinctEvents(used) => (
                    Some(distinct(masked(CODE, obs().and(any_event(names, used))))),
                    Then::ZeroWhenAbsent,
                ),
                Family::PropertySum(p) => (Some(masked(p, obs()).sum()), Then::ZeroWhenAbsent),
                Family::PropertyMean(p) => (Some(masked(p, obs()).mean()), Then::Keep),
                Family::ActivityTrend => (None, Then::Keep),
            };
            Compiled {
                feature,
                expr,
                then,
            }
        })
        .collect()
}

/// Joins, aggregates and assembles the table.
pub fn build_table(
    spec: &ExtractSpec,
    users: Users,
    events: Events,
    config: &std::path::Path,
) -> Result<BuiltTable, ExtractError> {
    let names = event_names(&events)?;
    let fs = &spec.feature_spec;
    let catalog = event_features(fs, &names).map_err(|e| ExtractError::Config {
        path: config.display().to_string(),
        message: e.message,
    })?;
    let features = compile(&catalog, &names);
    let mut report = users.report.clone();
    let compute = |what: &str| ExtractError::compute(format!("{}: {what}", events.path.display()));

    // Final column order: id, features, attributes, label. Names must be
    // unique before the joins below (polars would suffix a clash).
    let label_column = fs.label.as_ref().map(LabelSpec::column);
    let id_name = spec.extract.user_id.as_str();
    let mut definitions: Vec<FeatureDefinition> = Vec::new();
    let mut seen: std::collections::HashSet<String> = [id_name, UID, ORDER, KEEP]
        .into_iter()
        .chain(label_column)
        .map(str::to_owned)
        .collect();
    let feature_iter = catalog
        .iter()
        .map(|f| (f.name.clone(), f.description.clone()));
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

    // What was left out, counted exactly (counts do not depend on order).
    let known = users.keys.clone().lazy().select([col(UID), col(SIGNUP)]);
    let totals = events
        .frame
        .clone()
        .select([col(UID)])
        .join(known, [col(UID)], [col(UID)], JoinArgs::new(JoinType::Left))
        .select([
            len().alias(N_ALL),
            col(SIGNUP).is_null().sum().alias(UNKNOWN_EVENTS),
            distinct(masked(UID, col(SIGNUP).is_null())).alias(UNKNOWN_USERS),
        ])
        .collect_with_engine(Engine::Streaming)
        .map_err(compute("counting events"))?
        .unwrap_single();
    let total = |name: &str| -> Result<u64, ExtractError> {
        Ok(column_u64(&totals, name)?.first().copied().unwrap_or(0))
    };
    report.events_read = total(N_ALL)?;
    report.events_unknown_user = total(UNKNOWN_EVENTS)?;
    report.unknown_users = total(UNKNOWN_USERS)?;

    // Users are split into passes over the events when the extract is
    // large, so memory stays bounded: each pass keeps only its users'
    // events. Per-user results do not depend on the split.
    let passes = report
        .events_read
        .div_ceil(spec.extract.events_per_pass.max(1))
        .max(1) as usize;
    let n_users = users.keys.height();
    let mut labels: Option<DataFrame> = None;
    let mut per_user: Option<DataFrame> = None;
    for pass in 0..passes {
        let (first, last) = (n_users * pass / passes, n_users * (pass + 1) / passes);
        // One streaming pass over the events: names become integer codes, the
        // user id becomes the user's row (an integer), and each event gets the
        // flags of its user's windows. Events of unknown users, and events after
        // a user's label window, can change nothing and are dropped, so the
        // in-memory grouping below sees only what matters. Row order is kept.
        let windows = users.keys.slice(first as i64, last - first).lazy().select([
            col(UID),
            col(ORDER).cast(DataType::UInt32).alias(IDX),
            col(SIGNUP),
            col(START),
            col(CUTOFF),
            col(LABEL_START),
            col(LABEL_END),
        ]);
        let mut keep_order = JoinArgs::new(JoinType::Inner);
        keep_order.maintain_order = MaintainOrderJoin::Left;
        let mut narrow = vec![
            col(IDX),
            col(CODE),
            col(TS),
            col(TS)
                .gt_eq(col(START))
                .and(col(TS).lt(col(CUTOFF)))
                .alias(OBS),
            col(TS)
                .gt_eq(col(START) + (col(CUTOFF) - col(START)).floor_div(lit(2i64)))
                .alias(SECOND_HALF),
            col(TS)
                .gt_eq(col(LABEL_START))
                .and(col(TS).lt(col(LABEL_END)))
                .alias(IN_LABEL),
            col(TS).lt(col(CUTOFF)).alias(BEFORE_CUTOFF),
            col(TS).lt(col(SIGNUP)).alias(BEFORE_SIGNUP),
        ];
        narrow.extend(fs.features.properties().iter().map(|p| col(p.as_str())));
        let rows = with_event_codes(events.frame.clone(), &names)?
            .join(windows, [col(UID)], [col(UID)], keep_order)
            .filter(col(TS).lt(col(LABEL_END)))
            .select(narrow)
            .collect_with_engine(Engine::Streaming)
            .map_err(compute("joining events to their users"))?
            .unwrap_single();

        // Labels and counts: order-independent, over every kept row.
        let mut aggs = vec![col(BEFORE_SIGNUP).sum().alias(BEFORE_SIGNUP)];
        match &fs.label {
            Some(LabelSpec::Churn {
                qualifying_events, ..
            }) => {
                let qualifying = match qualifying_events {
                    Some(patterns) => any_event(&names, &resolve_patterns(patterns, &names)),
                    None => lit(true),
                };
                aggs.push(col(IN_LABEL).and(qualifying).any(true).alias(LABEL_HIT));
            }
            Some(LabelSpec::Adoption { event, .. }) => {
                aggs.push(
                    col(BEFORE_CUTOFF)
                        .and(event_is(&names, event))
                        .any(true)
                        .alias(ADOPTED_BEFORE),
                );
                aggs.push(
                    col(IN_LABEL)
                        .and(event_is(&names, event))
                        .any(true)
                        .alias(LABEL_HIT),
                );
            }
            None => {}
        }
        let labels_part = rows
            .clone()
            .lazy()
            .group_by([col(IDX)])
            .agg(aggs)
            .collect()
            .map_err(compute("aggregating labels per user"))?;

        // Features: only the observed rows, in a canonical order (user, time,
        // then every other value) whatever order the streaming engine delivered.
        // Per-user float sums are then the same bits on every run, and sessions
        // are found by comparing each event with the one before it.
        let mut aggs: Vec<Expr> = features
            .iter()
            .filter_map(|f| Some(f.expr.clone()?.alias(f.feature.name.as_str())))
            .collect();
        aggs.push(len().alias(N_OBSERVED));
        if fs.features.trend {
            aggs.push(col(SECOND_HALF).not().sum().alias(TREND_FIRST));
            aggs.push(col(SECOND_HALF).sum().alias(TREND_SECOND));
        }
        let mut order: Vec<PlSmallStr> = vec![IDX.into(), TS.into(), CODE.into()];
        order.extend(fs.features.properties().iter().map(|p| p.as_str().into()));
        let mut observed = rows
            .lazy()
            .filter(obs())
            .sort(order, SortMultipleOptions::default().with_nulls_last(true))
            .with_column(col(TS).floor_div(lit(DAY_US)).alias(DAY));
        if let Some(gap) = fs.features.session_gap_minutes {
            let gap_us = (gap * MINUTE_US as f64).round() as i64;
            let continues = col(IDX)
                .eq(col(IDX).shift(lit(1)))
                .and((col(TS) - col(TS).shift(lit(1))).lt_eq(lit(gap_us)))
                .fill_null(lit(false));
            observed = observed.with_column(continues.not().alias(NEW_SESSION));
        }
        let per_user_part = observed
            .group_by([col(IDX)])
            .agg(aggs)
            .collect()
            .map_err(compute("aggregating events per user"))?;
        for (all, part) in [(&mut labels, labels_part), (&mut per_user, per_user_part)] {
            match all {
                Some(all) => {
                    all.vstack_mut(&part)
                        .map_err(compute("collecting per-user results"))?;
                }
                None => *all = Some(part),
            }
        }
    }
    let labels = labels.expect("at least one pass");
    let per_user = per_user.expect("at least one pass");
    report.events_before_signup = column_u64(&labels, BEFORE_SIGNUP)?.iter().sum();

    // Users first (their order), then their aggregates; users without events
    // get zero counts and missing times.
    let mut table = users
        .keys
        .clone()
        .lazy()
        .filter(col(KEEP))
        .select([
            col(UID),
            col(ORDER),
            col(ORDER).cast(DataType::UInt32).alias(IDX),
            col(SIGNUP),
            col(CUTOFF),
        ])
        .join(
            per_user.lazy(),
            [col(IDX)],
            [col(IDX)],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            labels.lazy(),
            [col(IDX)],
            [col(IDX)],
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
        .filter_map(|f| {
            let c = col(f.feature.name.as_str());
            let value = match f.then {
                Then::ZeroWhenAbsent => c.fill_null(lit(0)),
                Then::Keep => return None,
                Then::HoursSinceSignup => {
                    (c - col(SIGNUP)).cast(DataType::Float64) / lit(HOUR_US as f64)
                }
                Then::DaysUntilCutoff => {
                    (col(CUTOFF) - c).cast(DataType::Float64) / lit(DAY_US as f64)
                }
            };
            Some(value.alias(f.feature.name.as_str()))
        })
        .collect();
    if fs.features.trend {
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
    if let Some(label) = &fs.label {
        let hit = col(LABEL_HIT).fill_null(lit(false));
        let value = match label {
            LabelSpec::Churn { .. } => hit.not(),
            LabelSpec::Adoption { .. } => hit,
        };
        table = table.with_column(value.cast(DataType::UInt32).alias(label.column()));
    }
    let mut table = table.collect().map_err(compute("assembling the table"))?;

    if let Some(LabelSpec::Adoption { .. }) = &fs.label {
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
    report.events_observed = column_u64(&table, N_OBSERVED)?.iter().sum();

    let never_observed: Vec<&str> = catalog
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
        event_names: names,
        label: label_column.map(str::to_owned),
        report,
    })
}
