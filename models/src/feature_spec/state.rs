//! Per-user feature state: what one event does to each feature, and what
//! each feature reads at the user's cutoff. This is the meaning of every
//! feature family written without a dataframe, so that a server can keep a
//! user's features up to date from live events and get the values the
//! training table has.
//!
//! Events are applied in time order (equal timestamps in any order):
//! `sessions` compares each event with the one before it, so an event older
//! than the last one applied is refused with [`StateError::OutOfOrder`] and
//! changes nothing. Sums are added in the order events are applied; the
//! training build sorts each user's events by time, then name, then
//! property values, so applying them in that order gives the same bits.

use std::collections::BTreeSet;

use super::catalog::{EventFeature, Family};
use super::window::UserWindow;
use crate::time::{DAY_US, HOUR_US};

/// Hours per microsecond. Durations are converted by multiplying with the
/// reciprocal, not dividing: the training build's dataframe library
/// divides a column by a constant that way, and a feature must have the
/// same bits online as in the table the model was trained on (a division
/// differs in the last bit for some durations).
const PER_HOUR: f64 = 1.0 / HOUR_US as f64;
/// Days per microsecond (see [`PER_HOUR`]).
const PER_DAY: f64 = 1.0 / DAY_US as f64;

/// One event of one user.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The event's name.
    pub name: &'a str,
    /// When it happened, in microseconds since the epoch.
    pub at_us: i64,
    /// Its numeric properties that have a value (absent = missing).
    pub properties: &'a [(&'a str, f64)],
}

impl Event<'_> {
    fn property(&self, name: &str) -> Option<f64> {
        self.properties
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// Why an event could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The event is older than one already applied.
    #[error("event at {at_us} µs arrived after one at {last_us} µs; apply a user's events in time order")]
    OutOfOrder {
        /// The refused event's time.
        at_us: i64,
        /// The latest event applied so far.
        last_us: i64,
    },
}

/// What one feature has accumulated.
#[derive(Debug, Clone, PartialEq)]
enum Accumulator {
    Count(u64),
    Days(BTreeSet<i64>),
    Sessions(u64),
    First(Option<i64>),
    Last(Option<i64>),
    Distinct(Vec<bool>),
    Sum(f64),
    Mean { sum: f64, n: u64 },
    Trend { first: u64, second: u64 },
}

/// The features of one user, as their events have left them.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureState {
    window: UserWindow,
    /// The latest observed event, for ordering and sessions.
    last_us: Option<i64>,
    accumulators: Vec<Accumulator>,
}

impl FeatureState {
    /// A user with no events yet, for the features `catalog` lists.
    pub fn new(catalog: &[EventFeature], window: UserWindow) -> Self {
        let accumulators = catalog
            .iter()
            .map(|f| match &f.family {
                Family::EventsTotal | Family::EventCount(_) => Accumulator::Count(0),
                Family::ActiveDays => Accumulator::Days(BTreeSet::new()),
                Family::Sessions { .. } => Accumulator::Sessions(0),
                Family::HoursToFirst(_)
                | Family::OnboardingCompleted(_)
                | Family::HoursToOnboarding(_) => Accumulator::First(None),
                Family::DaysSinceLastEvent => Accumulator::Last(None),
                Family::DistinctEvents(names) => Accumulator::Distinct(vec![false; names.len()]),
                Family::PropertySum(_) => Accumulator::Sum(0.0),
                Family::PropertyMean(_) => Accumulator::Mean { sum: 0.0, n: 0 },
                Family::ActivityTrend => Accumulator::Trend {
                    first: 0,
                    second: 0,
                },
            })
            .collect();
        FeatureState {
            window,
            last_us: None,
            accumulators,
        }
    }

    /// The user's windows.
    pub fn window(&self) -> &UserWindow {
        &self.window
    }

    /// Applies one event. Events outside the observation window change
    /// nothing (and return `Ok(false)`); `catalog` must be the one the state
    /// was made with.
    pub fn observe(
        &mut self,
        catalog: &[EventFeature],
        event: &Event<'_>,
    ) -> Result<bool, StateError> {
        if !self.window.observes(event.at_us) {
            return Ok(false);
        }
        if let Some(last_us) = self.last_us {
            if event.at_us < last_us {
                return Err(StateError::OutOfOrder {
                    at_us: event.at_us,
                    last_us,
                });
            }
        }
        let previous = self.last_us.replace(event.at_us);
        let second_half = self.window.in_second_half(event.at_us);
        for (feature, acc) in catalog.iter().zip(&mut self.accumulators) {
            match (&feature.family, acc) {
                (Family::EventsTotal, Accumulator::Count(n)) => *n += 1,
                (Family::EventCount(name), Accumulator::Count(n)) => {
                    *n += u64::from(name == event.name);
                }
                (Family::ActiveDays, Accumulator::Days(days)) => {
                    days.insert(event.at_us.div_euclid(DAY_US));
                }
                (Family::Sessions { gap_us }, Accumulator::Sessions(n)) => {
                    let continues = previous.is_some_and(|p| event.at_us - p <= *gap_us);
                    *n += u64::from(!continues);
                }
                (
                    Family::HoursToFirst(name)
                    | Family::OnboardingCompleted(name)
                    | Family::HoursToOnboarding(name),
                    Accumulator::First(first),
                ) => {
                    if name == event.name && first.is_none() {
                        *first = Some(event.at_us);
                    }
                }
                (Family::DaysSinceLastEvent, Accumulator::Last(last)) => {
                    *last = Some(event.at_us);
                }
                (Family::DistinctEvents(names), Accumulator::Distinct(seen)) => {
                    if let Some(i) = names.iter().position(|n| n == event.name) {
                        seen[i] = true;
                    }
                }
                (Family::PropertySum(p), Accumulator::Sum(sum)) => {
                    if let Some(v) = event.property(p) {
                        *sum += v;
                    }
                }
                (Family::PropertyMean(p), Accumulator::Mean { sum, n }) => {
                    if let Some(v) = event.property(p) {
                        *sum += v;
                        *n += 1;
                    }
                }
                (Family::ActivityTrend, Accumulator::Trend { first, second }) => {
                    if second_half {
                        *second += 1;
                    } else {
                        *first += 1;
                    }
                }
                _ => unreachable!("accumulators are made from the same catalog"),
            }
        }
        Ok(true)
    }

    /// Each feature's value at the cutoff, in catalog order (`None` =
    /// missing, as in the training table).
    pub fn values(&self, catalog: &[EventFeature]) -> Vec<Option<f64>> {
        let hours_since_signup = |t: i64| (t - self.window.signup_us) as f64 * PER_HOUR;
        catalog
            .iter()
            .zip(&self.accumulators)
            .map(|(feature, acc)| match (&feature.family, acc) {
                (_, Accumulator::Count(n)) | (_, Accumulator::Sessions(n)) => Some(*n as f64),
                (_, Accumulator::Days(days)) => Some(days.len() as f64),
                (Family::OnboardingCompleted(_), Accumulator::First(first)) => {
                    Some(if first.is_some() { 1.0 } else { 0.0 })
                }
                (_, Accumulator::First(first)) => first.map(hours_since_signup),
                (_, Accumulator::Last(last)) => {
                    last.map(|t| (self.window.cutoff_us - t) as f64 * PER_DAY)
                }
                (_, Accumulator::Distinct(seen)) => {
                    Some(seen.iter().filter(|s| **s).count() as f64)
                }
                (_, Accumulator::Sum(sum)) => Some(*sum),
                (_, Accumulator::Mean { sum, n }) => (*n > 0).then(|| *sum / *n as f64),
                (_, Accumulator::Trend { first, second }) => {
                    let total = (first + second) as f64;
                    (total > 0.0).then(|| (*second as f64 - *first as f64) / total)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feature_spec::catalog::event_features;
    use crate::feature_spec::spec::FeatureSpec;
    use crate::time::MINUTE_US;

    fn setup() -> (Vec<EventFeature>, FeatureState) {
        let spec: FeatureSpec = toml::from_str(
            "[window]\ndays_after_signup = 2\n[features]\nevent_counts = \"all\"\nactive_days = true\n\
             session_gap_minutes = 30\ntime_to_first = [\"invite\"]\nonboarding_event = \"setup\"\n\
             recency = true\ntrend = true\nfeature_events = [\"invite\", \"export\"]\n\
             property_sums = [\"seconds\"]\nproperty_means = [\"seconds\"]\n",
        )
        .unwrap();
        let names: Vec<String> = ["export", "invite", "login", "setup"]
            .map(String::from)
            .into();
        let catalog = event_features(&spec, &names).unwrap();
        let window = UserWindow::new(&spec, 0).unwrap();
        let state = FeatureState::new(&catalog, window);
        (catalog, state)
    }

    fn value(catalog: &[EventFeature], state: &FeatureState, name: &str) -> Option<f64> {
        let i = catalog.iter().position(|f| f.name == name).unwrap();
        state.values(catalog)[i]
    }

    #[test]
    fn a_user_without_events_has_zero_counts_and_missing_times() {
        let (catalog, state) = setup();
        for (name, expected) in [
            ("events_total", Some(0.0)),
            ("count_login", Some(0.0)),
            ("active_days", Some(0.0)),
            ("sessions", Some(0.0)),
            ("hours_to_first_invite", None),
            ("onboarding_completed", Some(0.0)),
            ("hours_to_onboarding", None),
            ("days_since_last_event", None),
            ("distinct_features_used", Some(0.0)),
            ("sum_seconds", Some(0.0)),
            ("mean_seconds", None),
            ("activity_trend", None),
        ] {
            assert_eq!(value(&catalog, &state, name), expected, "{name}");
        }
    }

    #[test]
    fn events_update_each_family() {
        let (catalog, mut state) = setup();
        let hour = 60 * MINUTE_US;
        for (name, at_us, seconds) in [
            ("login", hour, Some(10.0)),
            ("invite", hour + 30 * MINUTE_US, None), // exactly the gap: same session
            ("setup", 3 * hour, Some(20.0)),
            ("invite", DAY_US + hour, Some(30.0)),
            ("login", 2 * DAY_US, Some(1000.0)), // at the cutoff: not observed
        ] {
            let properties: Vec<(&str, f64)> =
                seconds.map(|s| ("seconds", s)).into_iter().collect();
            let event = Event {
                name,
                at_us,
                properties: &properties,
            };
            let observed = state.observe(&catalog, &event).unwrap();
            assert_eq!(observed, at_us < 2 * DAY_US);
        }
        for (name, expected) in [
            ("events_total", Some(4.0)),
            ("count_invite", Some(2.0)),
            ("count_login", Some(1.0)),
            ("count_export", Some(0.0)),
            ("active_days", Some(2.0)),
            ("sessions", Some(3.0)),
            ("hours_to_first_invite", Some(1.5)),
            ("onboarding_completed", Some(1.0)),
            ("hours_to_onboarding", Some(3.0)),
            (
                "days_since_last_event",
                Some((DAY_US - hour) as f64 * PER_DAY),
            ),
            ("distinct_features_used", Some(1.0)),
            ("sum_seconds", Some(60.0)),
            ("mean_seconds", Some(20.0)),
            ("activity_trend", Some((1.0 - 3.0) / 4.0)),
        ] {
            assert_eq!(value(&catalog, &state, name), expected, "{name}");
        }
    }

    #[test]
    fn an_older_event_is_refused_and_changes_nothing() {
        let (catalog, mut state) = setup();
        let later = Event {
            name: "login",
            at_us: 2 * MINUTE_US * 60,
            properties: &[],
        };
        state.observe(&catalog, &later).unwrap();
        let before = state.clone();
        let earlier = Event {
            name: "login",
            at_us: MINUTE_US,
            properties: &[],
        };
        assert_eq!(
            state.observe(&catalog, &earlier),
            Err(StateError::OutOfOrder {
                at_us: MINUTE_US,
                last_us: 2 * MINUTE_US * 60
            })
        );
        assert_eq!(state, before);
    }
}
