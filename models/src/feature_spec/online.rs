//! A model's event features for one user at any moment, from that user's
//! stored events: the online reading of the spec.
//!
//! Training computes each user's features once, at the cutoff its window
//! gives. A server asked for a score now needs the same features as of now:
//! in relative mode (`days_after_signup = D`) they read
//! `[signup, min(now, signup + D))`, and the window is complete once `now`
//! reaches `signup + D`; in absolute mode (`cutoff`, optional
//! `lookback_days`) the cutoff becomes `now` and the window is the lookback
//! ending there. [`OnlineSpec::compute`] replays the user's events through
//! [`FeatureState`] with that window, so a feature means the same thing, to
//! the bit, as the column `presage-train features` builds with the cutoff
//! set to the same moment.
//!
//! The spec alone does not say which columns a model has: `event_counts =
//! "all"` makes one per event name in the training extract. Artifacts
//! written since the online store exists keep those names beside the spec
//! ([`StoredSpec::event_names`]); for older ones they are read back from the
//! model's column names (`count_<event>`, `hours_to_first_<event>`), and a
//! model whose columns cannot all be rebuilt that way is refused with the
//! column named.

use serde::{Deserialize, Serialize};

use super::catalog::{event_features, EventFeature, Family};
use super::spec::{FeatureSpec, SpecError};
use super::state::{Event, FeatureState, StateError};
use super::window::UserWindow;
use crate::time::days_to_us;

/// The spec as a format-2 artifact stores it (`FeatureSpecRecord::spec_json`):
/// the spec's sections, plus the event names of the training extract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSpec {
    /// Window, feature families and label.
    #[serde(flatten)]
    pub spec: FeatureSpec,
    /// Every event name in the training extract, sorted (absent in
    /// artifacts written before online scoring existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_names: Option<Vec<String>>,
}

/// Why a model's features cannot be computed online.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnlineSpecError {
    /// The stored spec is not a spec.
    #[error("the model's stored feature spec cannot be read: {0}")]
    Unreadable(String),
    /// The stored spec fails its own checks.
    #[error("the model's stored feature spec is invalid: {0}")]
    Invalid(#[from] SpecError),
    /// A column looks like an event feature but the spec does not build it.
    #[error("column '{column}' looks like an event feature but the stored spec does not build it; retrain the model with this version of presage-train")]
    UnknownColumn {
        /// The model's column.
        column: String,
    },
}

/// How far back a spec reads, which bounds what a store must keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// Events in the first `days` days after signup.
    AfterSignup {
        /// The window's length.
        days: f64,
    },
    /// Events in the last `days` days before the moment scored.
    Lookback {
        /// The lookback.
        days: f64,
    },
    /// Every event since signup (absolute cutoff without a lookback).
    SinceSignup,
}

/// The window one online computation read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnlineWindow {
    /// The first instant read (microseconds since the epoch).
    pub start_us: i64,
    /// Events before this instant were read.
    pub cutoff_us: i64,
    /// Whether the window is as long as the spec asks: in relative mode,
    /// whether `signup + days_after_signup` has been reached.
    pub complete: bool,
}

/// A model's event features, computable from one user's events.
#[derive(Debug, Clone)]
pub struct OnlineSpec {
    spec: FeatureSpec,
    catalog: Vec<EventFeature>,
    names: std::collections::HashSet<String>,
    properties: Vec<String>,
    events: Vec<String>,
}

/// The event names a model's column names imply, for artifacts that did not
/// store them: `count_<event>`, `hours_to_first_<event>`, and the names the
/// spec lists literally.
fn names_from_columns(spec: &FeatureSpec, columns: &[String]) -> Vec<String> {
    let f = &spec.features;
    let mut names: Vec<String> = columns
        .iter()
        .filter_map(|c| {
            c.strip_prefix("count_")
                .or_else(|| c.strip_prefix("hours_to_first_"))
        })
        .map(str::to_owned)
        .collect();
    names.extend(f.time_to_first.iter().cloned());
    names.extend(f.onboarding_event.iter().cloned());
    names.extend(
        f.feature_events
            .iter()
            .flatten()
            .filter(|p| !p.ends_with('*'))
            .cloned(),
    );
    names.sort();
    names.dedup();
    names
}

impl OnlineSpec {
    /// Reads a stored spec (`FeatureSpecRecord::spec_json`) for a model
    /// whose columns are `columns`. Columns the spec does not build are the
    /// user's attributes, except ones named like an event feature.
    pub fn from_stored(spec_json: &str, columns: &[String]) -> Result<Self, OnlineSpecError> {
        let stored: StoredSpec = serde_json::from_str(spec_json)
            .map_err(|e| OnlineSpecError::Unreadable(e.to_string()))?;
        let spec = stored.spec;
        spec.check()?;
        let names = match stored.event_names {
            Some(names) => names,
            None => names_from_columns(&spec, columns),
        };
        let catalog: Vec<EventFeature> = event_features(&spec, &names)?
            .into_iter()
            .filter(|f| columns.contains(&f.name))
            .collect();
        if let Some(column) = columns.iter().find(|c| {
            (c.starts_with("count_") || c.starts_with("hours_to_first_"))
                && !catalog.iter().any(|f| &f.name == *c)
        }) {
            return Err(OnlineSpecError::UnknownColumn {
                column: column.clone(),
            });
        }
        let properties = spec.features.properties().into_iter().cloned().collect();
        let features = catalog.iter().map(|f| f.name.clone()).collect();
        Ok(OnlineSpec {
            spec,
            catalog,
            names: features,
            properties,
            events: names,
        })
    }

    /// The event names the training extract had (what a trigger may name).
    pub fn events(&self) -> &[String] {
        &self.events
    }

    /// The spec.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// The event features the model reads, in the spec's order.
    pub fn catalog(&self) -> &[EventFeature] {
        &self.catalog
    }

    /// Whether the model reads `column` from events (otherwise it is an
    /// attribute of the user, or not computable online).
    pub fn is_event_feature(&self, column: &str) -> bool {
        self.names.contains(column)
    }

    /// The numeric event properties the features read, sorted.
    pub fn properties(&self) -> &[String] {
        &self.properties
    }

    /// Whether any feature reads events of every name (a total, days,
    /// sessions, recency or the trend), not only named ones.
    pub fn reads_every_event(&self) -> bool {
        self.catalog.iter().any(|f| {
            matches!(
                f.family,
                Family::EventsTotal
                    | Family::ActiveDays
                    | Family::Sessions { .. }
                    | Family::DaysSinceLastEvent
                    | Family::PropertySum(_)
                    | Family::PropertyMean(_)
                    | Family::ActivityTrend
            )
        })
    }

    /// How far back the spec reads.
    pub fn reach(&self) -> Reach {
        let w = &self.spec.window;
        match (w.days_after_signup, w.lookback_days) {
            (Some(days), _) => Reach::AfterSignup { days },
            (None, Some(days)) => Reach::Lookback { days },
            (None, None) => Reach::SinceSignup,
        }
    }

    /// The window a user who signed up at `signup_us` is read in at
    /// `as_of_us`.
    pub fn window_at(&self, signup_us: i64, as_of_us: i64) -> (UserWindow, bool) {
        match self.spec.window.days_after_signup {
            Some(days) => {
                let mut window = UserWindow::with_cutoff(&self.spec, None, signup_us);
                let complete = as_of_us >= signup_us + days_to_us(days);
                window.cutoff_us = window.cutoff_us.min(as_of_us);
                (window, complete)
            }
            None => (
                UserWindow::with_cutoff(&self.spec, Some(as_of_us), signup_us),
                true,
            ),
        }
    }

    /// The features of a user who signed up at `signup_us`, as of
    /// `as_of_us`, from their events in the order the training build sums
    /// them (time, then name, then property values); events outside the
    /// window are skipped. Values are in [`OnlineSpec::catalog`] order.
    pub fn compute<'e>(
        &self,
        signup_us: i64,
        as_of_us: i64,
        events: impl IntoIterator<Item = Event<'e>>,
    ) -> Result<(Vec<Option<f64>>, OnlineWindow), StateError> {
        let (window, complete) = self.window_at(signup_us, as_of_us);
        let mut state = FeatureState::new(&self.catalog, window);
        for event in events {
            if event.at_us >= window.cutoff_us {
                break;
            }
            state.observe(&self.catalog, &event)?;
        }
        let read = OnlineWindow {
            start_us: window.start_us,
            cutoff_us: window.cutoff_us,
            complete,
        };
        Ok((state.values(&self.catalog), read))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{DAY_US, HOUR_US};

    fn spec_json(window: &str, names: Option<&[&str]>) -> String {
        let spec: FeatureSpec = toml::from_str(&format!(
            "{window}\n[features]\nevent_counts = \"all\"\ntime_to_first = [\"invite\"]\ntrend = true\n"
        ))
        .unwrap();
        serde_json::to_string(&StoredSpec {
            spec,
            event_names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
        })
        .unwrap()
    }

    fn columns(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn login(at_us: i64) -> Event<'static> {
        Event {
            name: "login",
            at_us,
            properties: &[],
        }
    }

    #[test]
    fn a_relative_window_grows_until_complete() {
        let json = spec_json(
            "[window]\ndays_after_signup = 2",
            Some(&["invite", "login"]),
        );
        let cols = columns(&[
            "events_total",
            "count_invite",
            "count_login",
            "hours_to_first_invite",
            "activity_trend",
            "plan",
        ]);
        let online = OnlineSpec::from_stored(&json, &cols).unwrap();
        assert!(!online.is_event_feature("plan") && online.is_event_feature("count_login"));
        let events = [login(HOUR_US), login(DAY_US + HOUR_US), login(3 * DAY_US)];
        let (values, window) = online.compute(0, DAY_US, events).unwrap();
        assert_eq!(
            window,
            OnlineWindow {
                start_us: 0,
                cutoff_us: DAY_US,
                complete: false
            }
        );
        assert_eq!(values[0], Some(1.0));
        let (values, window) = online.compute(0, 10 * DAY_US, events).unwrap();
        assert!(window.complete && window.cutoff_us == 2 * DAY_US);
        // The third login is after the window; the trend splits at day 1.
        assert_eq!(values[0], Some(2.0));
        assert_eq!(values[4], Some(0.0));
    }

    #[test]
    fn an_absolute_window_ends_at_the_moment_scored() {
        let json = spec_json(
            "[window]\ncutoff = \"1970-01-31\"\nlookback_days = 2",
            Some(&["login"]),
        );
        let online =
            OnlineSpec::from_stored(&json, &columns(&["events_total", "count_login"])).unwrap();
        assert_eq!(online.reach(), Reach::Lookback { days: 2.0 });
        let events = [login(HOUR_US), login(5 * DAY_US), login(6 * DAY_US)];
        let (values, window) = online.compute(0, 6 * DAY_US + 1, events).unwrap();
        assert_eq!(
            (window.start_us, window.cutoff_us),
            (4 * DAY_US + 1, 6 * DAY_US + 1)
        );
        assert_eq!(values, [Some(2.0), Some(2.0)]);
    }

    #[test]
    fn old_artifacts_rebuild_event_names_from_columns() {
        let json = spec_json("[window]\ndays_after_signup = 2", None);
        let online = OnlineSpec::from_stored(
            &json,
            &columns(&["events_total", "count_login", "hours_to_first_invite"]),
        )
        .unwrap();
        let names: Vec<&str> = online.catalog().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["events_total", "count_login", "hours_to_first_invite"]
        );
    }

    #[test]
    fn a_column_the_spec_does_not_build_is_named() {
        let json = spec_json("[window]\ndays_after_signup = 2", Some(&["login"]));
        let err = OnlineSpec::from_stored(&json, &columns(&["count_logout"])).unwrap_err();
        assert_eq!(
            err,
            OnlineSpecError::UnknownColumn {
                column: "count_logout".into()
            }
        );
        let err = OnlineSpec::from_stored("{\"window\": 3}", &[]).unwrap_err();
        assert!(matches!(err, OnlineSpecError::Unreadable(_)), "{err}");
    }
}
