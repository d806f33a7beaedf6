//! Onboarding KPIs from the same extracts the features are built from, so a
//! team can set its baseline before personalising: time to first key action
//! (median, p90), onboarding completion, feature adoption within the
//! window, the funnel of onboarding steps with the drop-off at each step
//! (overall, or per attribute or rule segment), and retention by weekly
//! signup cohort.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use super::source::{Events, TS, UID};
use super::spec::{ExtractSpec, KpiSpec};
use super::users::{last_event, Users, KEEP, SIGNUP};
use super::{build, segments, ExtractError};
use crate::table::{table_from_frame, Column as TableColumn, ColumnData, Table};
use presage_models::feature_spec::spec::EventSelection;
use presage_models::time::{format_timestamp, DAY_US};

/// One step of the funnel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelStep {
    /// The step's event.
    pub step: String,
    /// Users who did this step and every earlier one within the window.
    pub users: u64,
    /// `users` / the previous step's users (the first step: / all users).
    pub conversion: f64,
    /// 1 - conversion.
    pub drop_off: f64,
}

/// The KPIs of one group of users.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupKpis {
    /// The group (`all`, or the value of the `--by` column).
    pub group: String,
    /// Users in the group.
    pub users: u64,
    /// Share of users who did the key action within the window.
    pub key_action_rate: Option<f64>,
    /// Median hours from signup to the key action, among those who did it.
    pub key_action_median_hours: Option<f64>,
    /// 90th percentile of the same.
    pub key_action_p90_hours: Option<f64>,
    /// Share of users who completed onboarding within the window.
    pub onboarding_completion_rate: Option<f64>,
    /// Share of users who used at least one product feature within the window.
    pub feature_adoption_rate: Option<f64>,
    /// The funnel.
    pub funnel: Vec<FunnelStep>,
}

/// Retention of one weekly signup cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cohort {
    /// Monday of the signup week (UTC).
    pub week_of: String,
    /// Users who signed up that week.
    pub users: u64,
    /// Share active in week 1, 2, ... after signup; `None` where the week
    /// is not over for every user of the cohort at the end of the extract.
    pub retention: Vec<Option<f64>>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiReport {
    /// The window the KPIs cover, as `WindowSpec::describe` words it
    /// ("in the first 14 days after signup").
    pub window: String,
    /// What `--by` split on, if anything.
    pub by: Option<String>,
    /// All users first, then one entry per group.
    pub groups: Vec<GroupKpis>,
    /// Retention by weekly signup cohort.
    pub cohorts: Vec<Cohort>,
}

/// The spec with what the KPIs need added: counts of the funnel steps and
/// the key action, the key action's time, no label (every user with a
/// complete window counts).
fn kpi_build_spec(spec: &ExtractSpec, kpis: &KpiSpec) -> ExtractSpec {
    let mut spec = spec.clone();
    spec.feature_spec.label = None;
    let mut needed: Vec<String> = kpis.funnel.clone();
    needed.extend(kpis.key_action.iter().cloned());
    let f = &mut spec.feature_spec.features;
    f.event_counts = match f.event_counts.take() {
        Some(EventSelection::All(a)) => Some(EventSelection::All(a)),
        Some(EventSelection::Named(mut names)) => {
            for n in &needed {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
            Some(EventSelection::Named(names))
        }
        None => Some(EventSelection::Named(needed)),
    };
    if let Some(key) = &kpis.key_action {
        if !f.time_to_first.contains(key) {
            f.time_to_first.push(key.clone());
        }
    }
    spec
}

fn numbers(table: &Table, name: &str) -> Option<Vec<f64>> {
    match &table.column(name)?.data {
        ColumnData::Numeric(v) => Some(v.clone()),
        ColumnData::Text(_) => None,
    }
}

/// The `q` quantile (0..=1) of `values` by the nearest-rank method.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn group_kpis(
    group: String,
    rows: &[usize],
    table: &Table,
    spec: &ExtractSpec,
    kpis: &KpiSpec,
) -> GroupKpis {
    let n = rows.len();
    let share = |hits: usize| (n > 0).then(|| hits as f64 / n as f64);
    let mut key = (None, None, None);
    if let Some(action) = &kpis.key_action {
        if let Some(hours) = numbers(table, &format!("hours_to_first_{action}")) {
            let mut done: Vec<f64> = rows
                .iter()
                .map(|&r| hours[r])
                .filter(|h| !h.is_nan())
                .collect();
            done.sort_by(f64::total_cmp);
            key = (
                share(done.len()),
                quantile(&done, 0.5),
                quantile(&done, 0.9),
            );
        }
    }
    let rate_of = |column: &str, at_least: f64| {
        numbers(table, column)
            .map(|v| rows.iter().filter(|&&r| v[r] >= at_least).count())
            .and_then(share)
    };
    let onboarding = spec
        .feature_spec
        .features
        .onboarding_event
        .as_ref()
        .and_then(|_| rate_of("onboarding_completed", 1.0));
    let adoption = spec
        .feature_spec
        .features
        .feature_events
        .as_ref()
        .and_then(|_| rate_of("distinct_features_used", 1.0));
    let mut funnel = Vec::new();
    let mut reached: Vec<usize> = rows.to_vec();
    let mut previous = n;
    for step in &kpis.funnel {
        let counts = numbers(table, &format!("count_{step}"));
        reached.retain(|&r| counts.as_ref().is_some_and(|c| c[r] >= 1.0));
        let conversion = if previous > 0 {
            reached.len() as f64 / previous as f64
        } else {
            0.0
        };
        funnel.push(FunnelStep {
            step: step.clone(),
            users: reached.len() as u64,
            conversion,
            drop_off: 1.0 - conversion,
        });
        previous = reached.len();
    }
    GroupKpis {
        group,
        users: n as u64,
        key_action_rate: key.0,
        key_action_median_hours: key.1,
        key_action_p90_hours: key.2,
        onboarding_completion_rate: onboarding,
        feature_adoption_rate: adoption,
        funnel,
    }
}

/// Retention by weekly signup cohort over the kept users.
fn cohorts(spec: &ExtractSpec, config: &Path, weeks: u32) -> Result<Vec<Cohort>, ExtractError> {
    let mut events = Events::open(spec)?;
    let users = Users::load(spec, &mut events, config)?;
    let end = match users.report.extract_end_us {
        Some(end) => end,
        None => last_event(&events)?.unwrap_or(i64::MAX),
    };
    const WEEK: i64 = 7 * DAY_US;
    let kept = users
        .keys
        .clone()
        .lazy()
        .filter(col(KEEP))
        .select([col(UID), col(SIGNUP)]);
    let kept_frame = kept
        .clone()
        .collect()
        .map_err(ExtractError::compute("reading signups"))?;
    // Monday of the signup week: epoch day 4 (1970-01-05) was a Monday.
    let signups: Vec<i64> = kept_frame
        .column(SIGNUP)
        .and_then(|c| c.i64().map(|c| c.iter().flatten().collect()))
        .map_err(ExtractError::compute("reading signups"))?;
    let monday = |t: i64| {
        let day = t.div_euclid(DAY_US);
        (day - (day - 4).rem_euclid(7)) * DAY_US
    };
    let mut cohort_users: BTreeMap<i64, u64> = BTreeMap::new();
    let mut cohort_latest: BTreeMap<i64, i64> = BTreeMap::new();
    for &s in &signups {
        *cohort_users.entry(monday(s)).or_default() += 1;
        let latest = cohort_latest.entry(monday(s)).or_insert(s);
        *latest = (*latest).max(s);
    }
    let active = events
        .frame
        .clone()
        .select([col(UID), col(TS)])
        .join(kept, [col(UID)], [col(UID)], JoinArgs::new(JoinType::Inner))
        .with_column(((col(TS) - col(SIGNUP)).floor_div(lit(WEEK))).alias("__week"))
        .filter(
            col("__week")
                .gt_eq(lit(1i64))
                .and(col("__week").lt_eq(lit(i64::from(weeks)))),
        )
        .select([col(UID), col(SIGNUP), col("__week")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .map_err(ExtractError::compute("computing weekly activity"))?;
    let signup_of: Vec<i64> = active
        .column(SIGNUP)
        .and_then(|c| c.i64().map(|c| c.iter().flatten().collect()))
        .map_err(ExtractError::compute("reading activity"))?;
    let week_of: Vec<i64> = active
        .column("__week")
        .and_then(|c| c.i64().map(|c| c.iter().flatten().collect()))
        .map_err(ExtractError::compute("reading activity"))?;
    let mut hits: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for (s, w) in signup_of.iter().zip(&week_of) {
        *hits.entry((monday(*s), *w)).or_default() += 1;
    }
    Ok(cohort_users
        .iter()
        .map(|(&week_start, &n)| Cohort {
            week_of: format_timestamp(week_start)[..10].to_owned(),
            users: n,
            retention: (1..=i64::from(weeks))
                .map(|w| {
                    let complete = cohort_latest[&week_start] + (w + 1) * WEEK <= end;
                    complete
                        .then(|| hits.get(&(week_start, w)).copied().unwrap_or(0) as f64 / n as f64)
                })
                .collect(),
        })
        .collect())
}

/// Computes the KPI report; `by` names an attribute or feature column, or a
/// `[[segments]]` segmentation.
pub fn report(
    spec: &ExtractSpec,
    config: &Path,
    by: Option<&str>,
) -> Result<KpiReport, ExtractError> {
    let kpis = spec.kpis.clone().unwrap_or(KpiSpec {
        key_action: None,
        funnel: Vec::new(),
        retention_weeks: 4,
    });
    let build_spec = kpi_build_spec(spec, &kpis);
    let built = build(&build_spec, config)?;
    let mut table = table_from_frame(&built.frame, config).map_err(|e| ExtractError::Compute {
        context: "reading the built table".into(),
        message: e.to_string(),
    })?;
    let id = spec.extract.user_id.as_str();
    let groups_column = match by {
        None => None,
        Some(name) if table.column(name).is_some() => Some(name.to_owned()),
        Some(name) => {
            let Some(segmentation) = spec.segments.iter().find(|s| s.name == name) else {
                let known: Vec<&str> = built
                    .features
                    .iter()
                    .map(|f| f.name.as_str())
                    .chain(spec.segments.iter().map(|s| s.name.as_str()))
                    .collect();
                return Err(ExtractError::Config {
                    path: config.display().to_string(),
                    message: format!(
                        "--by {name}: not a column or a [[segments]] name (known: {})",
                        known.join(", ")
                    ),
                });
            };
            let assigned =
                segments::assign(std::slice::from_ref(segmentation), &built, id, config)?;
            let values =
                table_from_frame(&assigned.frame, config).map_err(|e| ExtractError::Compute {
                    context: "reading segments".into(),
                    message: e.to_string(),
                })?;
            let column: TableColumn = values.column(name).expect("assigned").clone();
            table.columns.push(column);
            Some(name.to_owned())
        }
    };
    let all: Vec<usize> = (0..table.n_rows()).collect();
    let mut groups = vec![group_kpis("all".into(), &all, &table, spec, &kpis)];
    if let Some(name) = &groups_column {
        let column = &table.column(name).expect("checked").data;
        let mut by_value: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for r in 0..table.n_rows() {
            let value = column
                .text(r)
                .unwrap_or_else(|| segments::UNASSIGNED.to_owned());
            by_value.entry(value).or_default().push(r);
        }
        for (value, rows) in by_value {
            groups.push(group_kpis(value, &rows, &table, spec, &kpis));
        }
    }
    let window = spec.feature_spec.window.describe();
    Ok(KpiReport {
        window,
        by: groups_column,
        groups,
        cohorts: cohorts(&build_spec, config, kpis.retention_weeks)?,
    })
}
