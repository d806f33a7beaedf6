//! Simulates one user from signup to the end of the extract: attributes,
//! latent engagement, daily sessions with onboarding steps, feature use and
//! adoption, and the true and realised labels.

use presage_models::rng::SplitMix64;

use super::model::{
    activity, adoption, adoption_probability, churn_probability, funnel_step, hazard, is_weekend,
    sigmoid, CutoffState, ADOPTION_EVENT, ATTRIBUTES, FEATURES, FUNNEL, HORIZON_DAYS,
    NO_CONSENT_SHARE, WINDOW_DAYS,
};

pub use presage_models::time::DAY_US;
const SECOND_US: i64 = 1_000_000;

/// Event names by code: `session_start`, `page_view`, the funnel steps,
/// the features, then the adoption event.
pub fn event_names() -> Vec<&'static str> {
    let mut names = vec!["session_start", "page_view"];
    names.extend(FUNNEL);
    names.extend(FEATURES);
    names.push(ADOPTION_EVENT);
    names
}

/// The code of an event name (its index in [`event_names`]), without
/// building the list.
pub fn event_code(name: &str) -> Option<u8> {
    match name {
        "session_start" => Some(SESSION_START),
        "page_view" => Some(PAGE_VIEW),
        _ if name == ADOPTION_EVENT => Some(ADOPTED),
        _ => FUNNEL
            .iter()
            .position(|f| *f == name)
            .map(|i| FUNNEL_FIRST + i as u8)
            .or_else(|| {
                FEATURES
                    .iter()
                    .position(|f| *f == name)
                    .map(|i| FEATURE_FIRST + i as u8)
            }),
    }
}

const SESSION_START: u8 = 0;
const PAGE_VIEW: u8 = 1;
const FUNNEL_FIRST: u8 = 2;
const FEATURE_FIRST: u8 = FUNNEL_FIRST + FUNNEL.len() as u8;
const ADOPTED: u8 = FEATURE_FIRST + FEATURES.len() as u8;

/// One event of a simulated user.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// Index into [`event_names`].
    pub code: u8,
    /// Microseconds since the epoch (UTC).
    pub at: i64,
    /// Seconds spent (page views and feature use), else `None`.
    pub duration_s: Option<f64>,
}

/// A simulated user: what the `users` extract holds, plus the truth.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Index (the id is formatted from it).
    pub index: u64,
    /// Signup, microseconds since the epoch.
    pub signup_at: i64,
    /// Index of each attribute's value in [`ATTRIBUTES`].
    pub attributes: [usize; ATTRIBUTES.len()],
    /// Consent to use the data for modelling.
    pub consent: bool,
    /// Latent engagement.
    pub engagement: f64,
    /// True probability of `churned = 1` given the state at the cutoff.
    pub churn_probability: f64,
    /// True probability of `adopted = 1`; `None` if adopted before the cutoff.
    pub adoption_probability: Option<f64>,
    /// Realised churn label; `None` when the label window passes the extract's end.
    pub churned: Option<bool>,
    /// Realised adoption label; `None` when the label window passes the
    /// extract's end or the user adopted before the cutoff.
    pub adopted: Option<bool>,
}

/// The simulated calendar.
#[derive(Debug, Clone, Copy)]
pub struct Calendar {
    /// First signup day, microseconds since the epoch (a midnight).
    pub start: i64,
    /// Days covered: signups happen on any of them, and the extract ends
    /// at `start + days`.
    pub days: u32,
}

impl Calendar {
    /// The end of the extract.
    pub fn end(&self) -> i64 {
        self.start + i64::from(self.days) * DAY_US
    }
}

fn pick(rng: &mut SplitMix64, weights: impl Iterator<Item = f64>) -> usize {
    let u = rng.next_f64();
    let mut acc = 0.0;
    let mut last = 0;
    for (i, w) in weights.enumerate() {
        acc += w;
        last = i;
        if u < acc {
            return i;
        }
    }
    last
}

fn normal(rng: &mut SplitMix64) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let (u, v) = (1.0 - rng.next_f64(), rng.next_f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn poisson(rng: &mut SplitMix64, mean: f64) -> u32 {
    let limit = (-mean).exp();
    let (mut k, mut p) = (0, rng.next_f64());
    while p > limit && k < 100 {
        k += 1;
        p *= rng.next_f64();
    }
    k
}

fn exponential(rng: &mut SplitMix64, mean: f64) -> f64 {
    -mean * (1.0 - rng.next_f64()).ln()
}

/// Simulates user `index` and appends its events to `events` in time order.
/// `funnel_lift` shifts the log-odds of every onboarding step (0 outside
/// experiments); every other draw is the same, so an experiment simulates
/// one user under both arms with common random numbers.
pub fn simulate(
    seed: u64,
    index: u64,
    calendar: Calendar,
    funnel_lift: f64,
    events: &mut Vec<Event>,
) -> User {
    let mut rng = SplitMix64::derive(seed, index);
    // Signups: any day of the calendar, weekdays 1.7 times as likely.
    let signup_day = loop {
        let day = rng.below(calendar.days as usize) as i64;
        let weekend = is_weekend(calendar.start.div_euclid(DAY_US) + day);
        if !weekend || rng.next_f64() < 0.6 {
            break day;
        }
    };
    let signup_at = calendar.start
        + signup_day * DAY_US
        + (rng.next_f64() * (DAY_US / SECOND_US) as f64) as i64 * SECOND_US;
    let mut attributes = [0usize; ATTRIBUTES.len()];
    let mut shift = 0.0;
    for (slot, attribute) in attributes.iter_mut().zip(&ATTRIBUTES) {
        *slot = pick(&mut rng, attribute.values.iter().map(|v| v.1));
        shift += attribute.values[*slot].2;
    }
    let pro = ATTRIBUTES[1].values[attributes[1]].0 == "pro";
    let consent = rng.next_f64() >= NO_CONSENT_SHARE;
    let engagement = shift + normal(&mut rng);

    let end = calendar.end();
    let cutoff = signup_at + i64::from(WINDOW_DAYS) * DAY_US;
    let first_event = events.len();
    let (mut alive, mut onboarded_at_cutoff, mut adopted_at_cutoff) = (true, false, false);
    let (mut alive_at_cutoff, mut reached_cutoff) = (true, false);
    let (mut step, mut adopted) = (0usize, false);
    let mut k = 0u32;
    while signup_at + i64::from(k) * DAY_US < end {
        let day_start = signup_at + i64::from(k) * DAY_US;
        if k == WINDOW_DAYS {
            onboarded_at_cutoff = step == FUNNEL.len();
            adopted_at_cutoff = adopted;
            alive_at_cutoff = alive;
            reached_cutoff = true;
        }
        if k >= 1 && alive && rng.next_f64() < hazard(k, engagement, pro, onboarded_at_cutoff) {
            alive = false;
        }
        if !alive {
            if k >= WINDOW_DAYS {
                break;
            }
            k += 1;
            continue;
        }
        let weekend = is_weekend(day_start.div_euclid(DAY_US));
        if rng.next_f64() < activity(k, engagement, weekend) {
            let sessions = 1 + poisson(&mut rng, 0.25 * (0.35 * engagement).exp()).min(5);
            let mut starts: Vec<i64> = (0..sessions)
                .map(|_| (rng.next_f64() * 20.0 * 3600.0) as i64 * SECOND_US)
                .collect();
            starts.sort_unstable();
            let day_end = (day_start + DAY_US).min(end);
            let mut t_last = day_start;
            for (s, offset) in starts.into_iter().enumerate() {
                let mut t = (day_start + offset).max(t_last);
                let emit = |code: u8, t: i64, duration_s: Option<f64>, events: &mut Vec<Event>| {
                    if t < day_end {
                        events.push(Event {
                            code,
                            at: t,
                            duration_s,
                        });
                    }
                };
                emit(SESSION_START, t, None, events);
                let gap = |rng: &mut SplitMix64| (1.0 + exponential(rng, 60.0)) as i64 * SECOND_US;
                if s == 0 {
                    while step < FUNNEL.len()
                        && rng.next_f64() < funnel_step(step, engagement, funnel_lift)
                    {
                        t += gap(&mut rng);
                        emit(FUNNEL_FIRST + step as u8, t, None, events);
                        step += 1;
                    }
                    if !adopted
                        && rng.next_f64() < adoption(k, engagement, pro, onboarded_at_cutoff)
                    {
                        t += gap(&mut rng);
                        emit(ADOPTED, t, None, events);
                        adopted = true;
                    }
                }
                let actions = 1 + poisson(&mut rng, 1.3 * (0.25 * engagement).exp()).min(30);
                for _ in 0..actions {
                    t += gap(&mut rng);
                    let feature_share = sigmoid(-0.8 + 0.5 * engagement);
                    let code = if rng.next_f64() < feature_share {
                        let weights = FEATURES.iter().map(|f| match *f {
                            "feature_api" | "feature_export" if pro => 2.0,
                            "feature_api" => 0.4,
                            _ => 1.0,
                        });
                        let total: f64 = FEATURES
                            .iter()
                            .map(|f| match *f {
                                "feature_api" | "feature_export" if pro => 2.0,
                                "feature_api" => 0.4,
                                _ => 1.0,
                            })
                            .sum();
                        FEATURE_FIRST + pick(&mut rng, weights.map(|w| w / total)) as u8
                    } else {
                        PAGE_VIEW
                    };
                    let seconds = (3.0 + 0.8 * normal(&mut rng)).exp().min(3600.0);
                    emit(code, t, Some((seconds * 10.0).round() / 10.0), events);
                }
                t_last = t;
            }
        }
        k += 1;
    }
    if !reached_cutoff {
        // The extract ended before the cutoff.
        onboarded_at_cutoff = step == FUNNEL.len();
        adopted_at_cutoff = adopted;
        alive_at_cutoff = alive;
    }

    let state = CutoffState {
        engagement,
        pro,
        alive: alive_at_cutoff,
        onboarded: onboarded_at_cutoff,
        adopted: adopted_at_cutoff,
        signup_epoch_day: signup_at.div_euclid(DAY_US),
    };
    let label_end = cutoff + i64::from(HORIZON_DAYS) * DAY_US;
    let complete = label_end <= end;
    let in_label = |e: &&Event| e.at >= cutoff && e.at < label_end;
    let mine = &events[first_event..];
    let adopted_before = mine.iter().any(|e| e.code == ADOPTED && e.at < cutoff);
    User {
        index,
        signup_at,
        attributes,
        consent,
        engagement,
        churn_probability: churn_probability(&state),
        adoption_probability: adoption_probability(&state),
        churned: complete.then(|| !mine.iter().any(|e| in_label(&e))),
        adopted: (complete && !adopted_before)
            .then(|| mine.iter().filter(in_label).any(|e| e.code == ADOPTED)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALENDAR: Calendar = Calendar {
        start: 19_723 * DAY_US, // 2024-01-01
        days: 120,
    };

    #[test]
    fn event_codes_index_the_names() {
        for (code, name) in event_names().iter().enumerate() {
            assert_eq!(event_code(name), Some(code as u8), "{name}");
        }
        assert_eq!(event_code("nothing"), None);
    }

    #[test]
    fn same_seed_same_user_and_events() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert_eq!(
            simulate(7, 42, CALENDAR, 0.0, &mut a),
            simulate(7, 42, CALENDAR, 0.0, &mut b)
        );
        assert_eq!(a, b);
        let mut c = Vec::new();
        simulate(8, 42, CALENDAR, 0.0, &mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn events_are_ordered_inside_the_calendar_and_after_signup() {
        for index in 0..300 {
            let mut events = Vec::new();
            let user = simulate(1, index, CALENDAR, 0.0, &mut events);
            assert!(
                events.windows(2).all(|w| w[0].at <= w[1].at),
                "user {index}"
            );
            assert!(events
                .iter()
                .all(|e| e.at >= user.signup_at && e.at < CALENDAR.end()));
            assert!(events.iter().filter(|e| e.code == ADOPTED).count() <= 1);
        }
    }

    #[test]
    fn realised_churn_rate_matches_the_true_probabilities() {
        // Over many users the mean true probability and the realised rate agree.
        let (mut truth, mut realised, mut n) = (0.0, 0.0, 0.0);
        for index in 0..20_000 {
            let mut events = Vec::new();
            let user = simulate(3, index, CALENDAR, 0.0, &mut events);
            if let Some(churned) = user.churned {
                truth += user.churn_probability;
                realised += f64::from(u8::from(churned));
                n += 1.0;
            }
        }
        let (truth, realised) = (truth / n, realised / n);
        // Binomial standard error at n ~ 14k is under 0.005.
        assert!(
            (truth - realised).abs() < 0.015,
            "true {truth:.4} vs realised {realised:.4}"
        );
    }
}
