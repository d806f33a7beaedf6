//! Experiment mode: an A/B test of personalised onboarding against the
//! generic flow, with a known effect per segment.
//!
//! Each user is assigned at signup, at random, to `control` (generic
//! onboarding) or `treatment` (the segment's onboarding), and carries the
//! segment a signup-time model would give them: [`Segment::AtRisk`],
//! [`Segment::Watch`] or [`Segment::Healthy`], from the engagement their
//! attributes predict. Treatment shifts the log-odds of every onboarding
//! step by the segment's [`Segment::funnel_lift`] (none for healthy users).
//! That raises onboarding completion directly and, through the onboarding
//! state at the cutoff, retention and adoption; it leaves the number of
//! sessions alone.
//!
//! Every user is simulated under both arms with the same random numbers,
//! so the truth is exact: for each outcome and segment, the mean outcome
//! of the segment's users had all been treated, minus had none been
//! ([`Truth`]). The assigned arm's events are the ones written.

use std::collections::BTreeMap;

use presage_models::rng::SplitMix64;
use serde::Serialize;

use super::model::{ADOPTION_EVENT, ATTRIBUTES, FUNNEL};
use super::simulate::{event_code, Event, User, DAY_US};

/// Salt of the assignment random stream, kept apart from the simulation's
/// streams so that experiment mode does not change any user's behaviour.
const ASSIGNMENT_SALT: u64 = 0x4558_5045_524D_4E54;

/// How the experiment is run.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentConfig {
    /// Share of users assigned to treatment (the planned split).
    pub treatment_share: f64,
    /// Share of treatment users whose assignment row is lost from
    /// `assignments.parquet` (a logging bug: injects a sample-ratio mismatch).
    pub lost_treatment_share: f64,
    /// Whether treatment has its effect; `false` runs an A/A test.
    pub effect: bool,
}

/// The segment a user is in at assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    /// Attributes predict low engagement.
    AtRisk,
    /// In between.
    Watch,
    /// Attributes predict high engagement.
    Healthy,
}

impl Segment {
    /// Every segment, in report order.
    pub const ALL: [Segment; 3] = [Segment::AtRisk, Segment::Watch, Segment::Healthy];

    /// The segment of a user with these attribute values: tiers of the
    /// engagement shift the attributes carry (about 30%, 35%, 35%).
    pub fn of(attributes: &[usize; ATTRIBUTES.len()]) -> Segment {
        let shift: f64 = attributes
            .iter()
            .zip(&ATTRIBUTES)
            .map(|(&v, a)| a.values[v].2)
            .sum();
        if shift < -0.25 {
            Segment::AtRisk
        } else if shift < 0.15 {
            Segment::Watch
        } else {
            Segment::Healthy
        }
    }

    /// Its name in `assignments.parquet`.
    pub fn name(self) -> &'static str {
        match self {
            Segment::AtRisk => "at_risk",
            Segment::Watch => "watch",
            Segment::Healthy => "healthy",
        }
    }

    /// How much the segment's onboarding flow shifts the log-odds of each
    /// onboarding step.
    pub fn funnel_lift(self) -> f64 {
        match self {
            Segment::AtRisk => 0.5,
            Segment::Watch => 0.2,
            Segment::Healthy => 0.0,
        }
    }
}

/// One user's assignment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    /// Assigned to treatment.
    pub treated: bool,
    /// When (the signup: assignment happens on the first onboarding screen).
    pub assigned_at: i64,
    /// The segment at assignment.
    pub segment: Segment,
    /// Whether the row reached `assignments.parquet`.
    pub logged: bool,
}

impl ExperimentConfig {
    /// Assigns user `index` (a stream of its own, so the split does not
    /// depend on the simulation).
    pub fn assign(&self, seed: u64, index: u64, user: &User) -> Assignment {
        let mut rng = SplitMix64::derive(seed ^ ASSIGNMENT_SALT, index);
        let treated = rng.next_f64() < self.treatment_share;
        let lost = rng.next_f64() < self.lost_treatment_share;
        Assignment {
            treated,
            assigned_at: user.signup_at,
            segment: Segment::of(&user.attributes),
            logged: !(treated && lost),
        }
    }

    /// The treatment's funnel lift for a segment.
    pub fn lift(&self, segment: Segment) -> f64 {
        if self.effect {
            segment.funnel_lift()
        } else {
            0.0
        }
    }
}

/// How an outcome is measured from a user's events after assignment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// 1 if the event happens within `days`, else 0.
    Within {
        /// The event.
        event: &'static str,
        /// Days after assignment.
        days: u32,
    },
    /// 1 if any event happens in days `from..to` after assignment, else 0.
    ActiveBetween {
        /// First day.
        from: u32,
        /// Day after the last.
        to: u32,
    },
    /// Hours to the first `event`, capped at `days · 24` for users who do
    /// not do it within `days`.
    HoursToFirst {
        /// The event.
        event: &'static str,
        /// Days after assignment.
        days: u32,
    },
    /// How many times `event` happens within `days`.
    Count {
        /// The event.
        event: &'static str,
        /// Days after assignment.
        days: u32,
    },
}

impl Measure {
    /// Days after assignment the outcome needs to be complete.
    pub fn horizon_days(self) -> u32 {
        match self {
            Measure::Within { days, .. }
            | Measure::HoursToFirst { days, .. }
            | Measure::Count { days, .. } => days,
            Measure::ActiveBetween { to, .. } => to,
        }
    }

    /// The outcome of one user's `events` (in time order), or `None` when
    /// the extract ends before the outcome is complete.
    pub fn of(self, assigned_at: i64, events: &[Event], end: i64) -> Option<f64> {
        if assigned_at + i64::from(self.horizon_days()) * DAY_US > end {
            return None;
        }
        let code = |name: &str| event_code(name).expect("a simulated event");
        let within = |days: u32| {
            let until = assigned_at + i64::from(days) * DAY_US;
            events
                .iter()
                .filter(move |e| e.at >= assigned_at && e.at < until)
        };
        Some(match self {
            Measure::Within { event, days } => {
                let c = code(event);
                f64::from(u8::from(within(days).any(|e| e.code == c)))
            }
            Measure::ActiveBetween { from, to } => {
                let (a, b) = (
                    assigned_at + i64::from(from) * DAY_US,
                    assigned_at + i64::from(to) * DAY_US,
                );
                f64::from(u8::from(events.iter().any(|e| e.at >= a && e.at < b)))
            }
            Measure::HoursToFirst { event, days } => {
                let c = code(event);
                within(days)
                    .find(|e| e.code == c)
                    .map_or(f64::from(days) * 24.0, |e| {
                        (e.at - assigned_at) as f64 / 3_600_000_000.0
                    })
            }
            Measure::Count { event, days } => {
                let c = code(event);
                within(days).filter(|e| e.code == c).count() as f64
            }
        })
    }
}

/// An outcome of the shipped `datasets/configs/experiment.toml`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Its name in the config and the report.
    pub name: &'static str,
    /// `conversion` (0/1) or `continuous`.
    pub kind: &'static str,
    /// How it is measured.
    pub measure: Measure,
    /// Whether the onboarding funnel drives it, so a funnel lift changes it.
    pub driven_by_funnel: bool,
}

/// The outcomes of `datasets/configs/experiment.toml`, measured the same way.
pub const OUTCOMES: [Outcome; 5] = [
    Outcome {
        name: "onboarded_7d",
        kind: "conversion",
        measure: Measure::Within {
            event: FUNNEL[4],
            days: 7,
        },
        driven_by_funnel: true,
    },
    Outcome {
        name: "adopted_28d",
        kind: "conversion",
        measure: Measure::Within {
            event: ADOPTION_EVENT,
            days: 28,
        },
        driven_by_funnel: true,
    },
    Outcome {
        name: "retained_d30",
        kind: "conversion",
        measure: Measure::ActiveBetween { from: 30, to: 37 },
        driven_by_funnel: true,
    },
    Outcome {
        name: "hours_to_first_project",
        kind: "continuous",
        measure: Measure::HoursToFirst {
            event: FUNNEL[1],
            days: 7,
        },
        driven_by_funnel: true,
    },
    Outcome {
        name: "sessions_week1",
        kind: "continuous",
        measure: Measure::Count {
            event: "session_start",
            days: 7,
        },
        driven_by_funnel: false,
    },
];

/// A user's outcomes under control (`[0]`) and treatment (`[1]`).
pub type PotentialOutcomes = [[Option<f64>; OUTCOMES.len()]; 2];

/// Measures every outcome of one arm's events.
pub fn measure_all(assigned_at: i64, events: &[Event], end: i64) -> [Option<f64>; OUTCOMES.len()] {
    OUTCOMES.map(|o| o.measure.of(assigned_at, events, end))
}

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    users: u64,
    control: f64,
    treatment: f64,
}

/// Accumulates the exact effects over users.
#[derive(Debug, Default)]
pub struct TruthBuilder {
    sums: BTreeMap<(usize, Option<Segment>), Sums>,
    assigned: [u64; 2],
    logged: [u64; 2],
    segments: BTreeMap<Segment, u64>,
}

impl TruthBuilder {
    /// Adds one user.
    pub fn add(&mut self, assignment: &Assignment, potential: &PotentialOutcomes) {
        let arm = usize::from(assignment.treated);
        self.assigned[arm] += 1;
        self.logged[arm] += u64::from(assignment.logged);
        *self.segments.entry(assignment.segment).or_default() += 1;
        for (o, (control, treated)) in potential[0].iter().zip(&potential[1]).enumerate() {
            let (Some(y0), Some(y1)) = (*control, *treated) else {
                continue;
            };
            for scope in [None, Some(assignment.segment)] {
                let s = self.sums.entry((o, scope)).or_default();
                s.users += 1;
                s.control += y0;
                s.treatment += y1;
            }
        }
    }

    /// The truth for `experiment_truth.json`.
    pub fn finish(&self, config: &ExperimentConfig) -> Truth {
        let outcomes = OUTCOMES
            .iter()
            .enumerate()
            .map(|(o, outcome)| {
                let scopes = std::iter::once(None).chain(Segment::ALL.map(Some));
                TruthOutcome {
                    outcome: outcome.name.to_owned(),
                    kind: outcome.kind.to_owned(),
                    effects: scopes
                        .filter_map(|scope| {
                            let s = self.sums.get(&(o, scope))?;
                            let n = s.users as f64;
                            let exists = outcome.driven_by_funnel
                                && match scope {
                                    Some(seg) => config.lift(seg) != 0.0,
                                    None => Segment::ALL.iter().any(|&g| config.lift(g) != 0.0),
                                };
                            Some(TruthEffect {
                                segment: scope.map_or("all", Segment::name).to_owned(),
                                users: s.users,
                                control: s.control / n,
                                treatment: s.treatment / n,
                                effect: (s.treatment - s.control) / n,
                                exists,
                            })
                        })
                        .collect(),
                }
            })
            .collect();
        Truth {
            planned_treatment_share: config.treatment_share,
            lost_treatment_share: config.lost_treatment_share,
            assigned: Arms {
                control: self.assigned[0],
                treatment: self.assigned[1],
            },
            logged: Arms {
                control: self.logged[0],
                treatment: self.logged[1],
            },
            segments: Segment::ALL
                .iter()
                .map(|&s| TruthSegment {
                    segment: s.name().to_owned(),
                    users: self.segments.get(&s).copied().unwrap_or(0),
                    funnel_logit_lift: config.lift(s),
                })
                .collect(),
            outcomes,
        }
    }
}

/// Counts per arm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arms {
    /// Control users.
    pub control: u64,
    /// Treatment users.
    pub treatment: u64,
}

/// A segment and its treatment effect on the funnel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthSegment {
    /// Its name.
    pub segment: String,
    /// Users in it.
    pub users: u64,
    /// The log-odds shift of each onboarding step under treatment.
    pub funnel_logit_lift: f64,
}

/// The exact effect on one outcome in one segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthEffect {
    /// `all` or a segment.
    pub segment: String,
    /// Users whose outcome is complete by the end of the extract (whatever
    /// their arm, and whether or not their assignment was logged).
    pub users: u64,
    /// Their mean outcome had none been treated.
    pub control: f64,
    /// Their mean outcome had all been treated.
    pub treatment: f64,
    /// `treatment - control`: the sample average treatment effect.
    pub effect: f64,
    /// Whether the mechanism has an effect here (in the population, not
    /// just this sample): the segment's lift is not 0 and the funnel drives
    /// the outcome.
    pub exists: bool,
}

/// The truth about one outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthOutcome {
    /// The outcome's name in `datasets/configs/experiment.toml`.
    pub outcome: String,
    /// `conversion` or `continuous`.
    pub kind: String,
    /// Overall (`all`) and per segment.
    pub effects: Vec<TruthEffect>,
}

/// `experiment_truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// Planned share of treatment.
    pub planned_treatment_share: f64,
    /// Share of treatment assignments dropped from the log.
    pub lost_treatment_share: f64,
    /// Users assigned to each arm.
    pub assigned: Arms,
    /// Rows per arm in `assignments.parquet`.
    pub logged: Arms,
    /// Segments and their lifts.
    pub segments: Vec<TruthSegment>,
    /// Exact effects.
    pub outcomes: Vec<TruthOutcome>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onboarding::simulate::{event_names, simulate, Calendar};

    const CALENDAR: Calendar = Calendar {
        start: 19_723 * DAY_US,
        days: 90,
    };

    #[test]
    fn healthy_users_and_a_a_tests_have_identical_arms() {
        let config = ExperimentConfig {
            treatment_share: 0.5,
            lost_treatment_share: 0.0,
            effect: true,
        };
        let mut seen = [0; 3];
        for index in 0..400 {
            let mut control = Vec::new();
            let user = simulate(5, index, CALENDAR, 0.0, &mut control);
            let a = config.assign(5, index, &user);
            seen[a.segment as usize] += 1;
            let mut treated = Vec::new();
            simulate(5, index, CALENDAR, config.lift(a.segment), &mut treated);
            if a.segment == Segment::Healthy {
                assert_eq!(control, treated, "user {index}");
            }
        }
        assert!(seen.iter().all(|&n| n > 80), "{seen:?}");
    }

    #[test]
    fn measures_read_only_their_window() {
        let names = event_names();
        let code = |n: &str| names.iter().position(|x| *x == n).unwrap() as u8;
        let at = |days: f64| (days * DAY_US as f64) as i64;
        let ev = |name: &str, days: f64| Event {
            code: code(name),
            at: at(days),
            duration_s: None,
        };
        let events = [
            ev("session_start", 0.5),
            ev("project_created", 1.5),
            ev("session_start", 6.9),
            ev("session_start", 7.0),
            ev("onboarding_completed", 7.1),
            ev("page_view", 36.9),
        ];
        let end = at(40.0);
        let get = |o: usize| OUTCOMES[o].measure.of(0, &events, end);
        assert_eq!(get(0), Some(0.0)); // completed after day 7
        assert_eq!(get(1), Some(0.0));
        assert_eq!(get(2), Some(1.0)); // active on day 36
        assert_eq!(get(3), Some(36.0));
        assert_eq!(get(4), Some(2.0));
        assert_eq!(OUTCOMES[2].measure.of(0, &events, at(36.0)), None);
        assert_eq!(OUTCOMES[3].measure.of(0, &events[2..], end), Some(168.0));
    }
}
