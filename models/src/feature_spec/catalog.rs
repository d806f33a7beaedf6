//! The features a spec builds from events: each one's name, family and
//! description, in table order, given the event names the extract (or the
//! model's training data) contains. `presage-data` compiles each family to
//! a polars aggregation; [`super::state`] computes the same value for one
//! user from their events.

use super::spec::{pattern_matches, resolve_patterns, EventSelection, FeatureSpec, SpecError};
use crate::time::MINUTE_US;

/// How a feature is computed from one user's observed events.
#[derive(Debug, Clone, PartialEq)]
pub enum Family {
    /// Events observed (0 without any).
    EventsTotal,
    /// Events with this name (0 without any).
    EventCount(String),
    /// Distinct UTC calendar days with an event.
    ActiveDays,
    /// Runs of events, a new one when more than `gap_us` passed since the
    /// previous event.
    Sessions {
        /// The gap in microseconds.
        gap_us: i64,
    },
    /// Hours from signup to the first event with this name (missing without).
    HoursToFirst(String),
    /// 1 if an event with this name happened, else 0.
    OnboardingCompleted(String),
    /// Hours from signup to the first event with this name (missing without).
    HoursToOnboarding(String),
    /// Days from the last event to the cutoff (missing without events).
    DaysSinceLastEvent,
    /// Distinct names among these events.
    DistinctEvents(Vec<String>),
    /// Sum of a numeric event property (0 without values).
    PropertySum(String),
    /// Mean of a numeric event property (missing without values).
    PropertyMean(String),
    /// (second-half events − first-half events) / events, missing without.
    ActivityTrend,
}

/// One feature built from events.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFeature {
    /// Column name in the training table and the model's schema.
    pub name: String,
    /// How it is computed.
    pub family: Family,
    /// What it measures, in words (stored in the artifact).
    pub description: String,
    /// Dropped from the table when no user has it: a count for an event
    /// name matched only by `"all"` or a prefix that never occurs inside an
    /// observation window (columns must not depend on later events).
    pub drop_if_never_observed: bool,
}

fn feature(name: String, family: Family, description: String) -> EventFeature {
    EventFeature {
        name,
        family,
        description,
        drop_if_never_observed: false,
    }
}

/// The event features `spec` asks for, in table order, given every event
/// name in the data (`names`, sorted). A list in the spec that matches no
/// event name is an error naming the key.
pub fn event_features(
    spec: &FeatureSpec,
    names: &[String],
) -> Result<Vec<EventFeature>, SpecError> {
    let f = &spec.features;
    let window = spec.window.describe();
    let mut out = Vec::new();
    if f.events_total {
        out.push(feature(
            "events_total".into(),
            Family::EventsTotal,
            format!("events {window}"),
        ));
    }
    if let Some(selection) = &f.event_counts {
        if let EventSelection::Named(patterns) = selection {
            for p in patterns {
                if !names.iter().any(|n| pattern_matches(p, n)) {
                    return Err(SpecError {
                        key: "features.event_counts",
                        message: format!(
                            "[features] event_counts names {p:?}, which matches no event in the events extract"
                        ),
                    });
                }
            }
        }
        for name in names.iter().filter(|n| selection.matches(n)) {
            let exact = match selection {
                EventSelection::Named(patterns) => patterns.iter().any(|p| p == name),
                EventSelection::All(_) => false,
            };
            let mut count = feature(
                format!("count_{name}"),
                Family::EventCount(name.clone()),
                format!("'{name}' events {window}"),
            );
            count.drop_if_never_observed = !exact;
            out.push(count);
        }
    }
    if f.active_days {
        out.push(feature(
            "active_days".into(),
            Family::ActiveDays,
            format!("distinct calendar days (UTC) with an event {window}"),
        ));
    }
    if let Some(gap) = f.session_gap_minutes {
        out.push(feature(
            "sessions".into(),
            Family::Sessions {
                gap_us: (gap * MINUTE_US as f64).round() as i64,
            },
            format!("sessions (events less than {gap} minutes apart) {window}"),
        ));
    }
    for event in &f.time_to_first {
        out.push(feature(
            format!("hours_to_first_{event}"),
            Family::HoursToFirst(event.clone()),
            format!("hours from signup to the first '{event}' event {window}; missing if none"),
        ));
    }
    if let Some(event) = &f.onboarding_event {
        out.push(feature(
            "onboarding_completed".into(),
            Family::OnboardingCompleted(event.clone()),
            format!("1 if '{event}' (onboarding completed) happened {window}"),
        ));
        out.push(feature(
            "hours_to_onboarding".into(),
            Family::HoursToOnboarding(event.clone()),
            format!("hours from signup to '{event}' {window}; missing if not completed"),
        ));
    }
    if f.recency {
        out.push(feature(
            "days_since_last_event".into(),
            Family::DaysSinceLastEvent,
            format!("days from the last event {window} to the cutoff; missing without events"),
        ));
    }
    if let Some(patterns) = &f.feature_events {
        let used = resolve_patterns(patterns, names);
        if used.is_empty() {
            return Err(SpecError {
                key: "features.feature_events",
                message: format!(
                    "[features] feature_events {patterns:?} matches no event in the events extract"
                ),
            });
        }
        let n = used.len();
        out.push(feature(
            "distinct_features_used".into(),
            Family::DistinctEvents(used),
            format!("distinct product features used ({n} event names) {window}"),
        ));
    }
    for p in &f.property_sums {
        out.push(feature(
            format!("sum_{p}"),
            Family::PropertySum(p.clone()),
            format!("sum of '{p}' over events {window}"),
        ));
    }
    for p in &f.property_means {
        out.push(feature(
            format!("mean_{p}"),
            Family::PropertyMean(p.clone()),
            format!("mean of '{p}' over events {window}; missing without events"),
        ));
    }
    if f.trend {
        out.push(feature(
            "activity_trend".into(),
            Family::ActivityTrend,
            "(events in the second half of the window - first half) / all events; missing without events".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_counts_are_droppable_named_ones_are_not() {
        let spec: FeatureSpec = toml::from_str(
            "[window]\ndays_after_signup = 7\n[features]\nevent_counts = [\"login\", \"feature_*\"]\ntrend = true\n",
        )
        .unwrap();
        let built = event_features(&spec, &names(&["feature_a", "login", "logout"])).unwrap();
        let got: Vec<(&str, bool)> = built
            .iter()
            .map(|f| (f.name.as_str(), f.drop_if_never_observed))
            .collect();
        assert_eq!(
            got,
            [
                ("events_total", false),
                ("count_feature_a", true),
                ("count_login", false),
                ("activity_trend", false)
            ]
        );
        assert_eq!(
            built[2].description,
            "'login' events in the first 7 days after signup"
        );
    }

    #[test]
    fn a_list_matching_no_event_names_its_key() {
        let spec: FeatureSpec = toml::from_str(
            "[window]\ndays_after_signup = 7\n[features]\nfeature_events = [\"x*\"]\n",
        )
        .unwrap();
        let err = event_features(&spec, &names(&["login"])).unwrap_err();
        assert_eq!(err.key, "features.feature_events");
    }
}
