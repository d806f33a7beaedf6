//! The generative model of a SaaS product's onboarding: who signs up, how a
//! latent engagement drives daily activity, and when users churn and adopt.
//!
//! Time is counted in whole days since each user's signup: day `k` is
//! `[signup + k·24h, signup + (k+1)·24h)`. At the start of each day `k >= 1`
//! a live user dies (churns for good) with a daily hazard; a live user is
//! active on day `k` with a probability that falls with age and at weekends;
//! every event happens in a session on an active day. The observation window
//! is days `0..WINDOW_DAYS`, so the cutoff is the start of day `WINDOW_DAYS`,
//! and both labels look at days `WINDOW_DAYS..WINDOW_DAYS + HORIZON_DAYS`.
//! After the cutoff the hazard and the adoption chance depend only on the
//! latent engagement, the plan and the onboarding state at the cutoff, so the
//! true label probabilities given the state at the cutoff are computed
//! exactly ([`churn_probability`], [`adoption_probability`]).

/// Days observed before the cutoff (the shipped configs' `days_after_signup`).
pub const WINDOW_DAYS: u32 = 7;
/// Days after the cutoff the labels look at (the configs' `horizon_days`).
pub const HORIZON_DAYS: u32 = 28;

/// Onboarding steps, in order; the last one completes onboarding.
pub const FUNNEL: [&str; 5] = [
    "profile_completed",
    "project_created",
    "teammate_invited",
    "integration_connected",
    "onboarding_completed",
];

/// The adoption event (first use of automations), emitted at most once.
pub const ADOPTION_EVENT: &str = "automation_enabled";

/// Product feature events (names start with `feature_`).
pub const FEATURES: [&str; 6] = [
    "feature_reports",
    "feature_dashboards",
    "feature_export",
    "feature_sharing",
    "feature_api",
    "feature_search",
];

/// A categorical attribute: values with sampling weights and their effect
/// on the latent engagement.
pub struct Attribute {
    /// Column name in `users`.
    pub name: &'static str,
    /// `(value, weight, engagement shift)`.
    pub values: &'static [(&'static str, f64, f64)],
}

/// The user attributes, as a warehouse would export them.
pub const ATTRIBUTES: [Attribute; 6] = [
    Attribute {
        name: "country",
        values: &[
            ("US", 0.34, 0.0),
            ("GB", 0.10, 0.0),
            ("DE", 0.10, 0.05),
            ("FR", 0.07, -0.05),
            ("IN", 0.12, -0.15),
            ("BR", 0.08, -0.1),
            ("JP", 0.05, 0.1),
            ("CA", 0.06, 0.0),
            ("AU", 0.04, 0.0),
            ("ES", 0.04, -0.05),
        ],
    },
    Attribute {
        name: "plan",
        values: &[
            ("free", 0.68, -0.2),
            ("trial", 0.22, 0.25),
            ("pro", 0.10, 0.6),
        ],
    },
    Attribute {
        name: "device",
        values: &[
            ("desktop", 0.56, 0.1),
            ("mobile", 0.36, -0.2),
            ("tablet", 0.08, -0.1),
        ],
    },
    Attribute {
        name: "acquisition_channel",
        values: &[
            ("organic", 0.34, 0.1),
            ("paid_search", 0.24, -0.25),
            ("paid_social", 0.14, -0.35),
            ("referral", 0.16, 0.35),
            ("partner", 0.12, 0.2),
        ],
    },
    Attribute {
        name: "industry",
        values: &[
            ("software", 0.24, 0.15),
            ("retail", 0.14, -0.1),
            ("finance", 0.12, 0.05),
            ("education", 0.12, -0.05),
            ("healthcare", 0.09, 0.0),
            ("media", 0.09, -0.05),
            ("manufacturing", 0.08, 0.0),
            ("other", 0.12, -0.1),
        ],
    },
    Attribute {
        name: "company_size",
        values: &[
            ("1", 0.30, -0.3),
            ("2-10", 0.30, 0.0),
            ("11-50", 0.20, 0.2),
            ("51-200", 0.12, 0.3),
            ("201+", 0.08, 0.35),
        ],
    },
];

/// Share of users whose consent flag is false.
pub const NO_CONSENT_SHARE: f64 = 0.03;

/// The logistic function.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Whether a day index since the epoch (1970-01-01 was a Thursday) is a
/// Saturday or a Sunday.
pub fn is_weekend(epoch_day: i64) -> bool {
    matches!((epoch_day + 3).rem_euclid(7), 5 | 6)
}

/// Chance of dying at the start of day `k` (`k >= 1`). Before the cutoff it
/// depends on engagement only; from the cutoff on, on engagement, plan and
/// whether onboarding was completed by the cutoff.
pub fn hazard(k: u32, engagement: f64, pro: bool, onboarded_at_cutoff: bool) -> f64 {
    if k < WINDOW_DAYS {
        sigmoid(-3.0 - 0.9 * engagement)
    } else {
        sigmoid(
            -2.7 - 1.0 * engagement
                - 0.9 * f64::from(u8::from(onboarded_at_cutoff))
                - 0.4 * f64::from(u8::from(pro)),
        )
    }
}

/// Chance that a live user is active on day `k`, which falls on a weekend or not.
pub fn activity(k: u32, engagement: f64, weekend: bool) -> f64 {
    sigmoid(0.3 + 1.0 * engagement - 0.025 * f64::from(k) - if weekend { 0.7 } else { 0.0 })
}

/// Chance that an active user reaches the next onboarding step `step`
/// (0-based) during the day. `lift` shifts the log-odds: it is the effect
/// of a personalised onboarding flow in experiment mode, and 0 otherwise.
pub fn funnel_step(step: usize, engagement: f64, lift: f64) -> f64 {
    sigmoid(0.9 + 0.9 * engagement - 0.35 * step as f64 + lift)
}

/// Chance that an active user enables automations during day `k`. After the
/// cutoff it also depends on the onboarding state at the cutoff.
pub fn adoption(k: u32, engagement: f64, pro: bool, onboarded_at_cutoff: bool) -> f64 {
    let base = -3.6 + 0.7 * engagement + 1.0 * f64::from(u8::from(pro));
    if k < WINDOW_DAYS {
        sigmoid(base)
    } else {
        sigmoid(base + 0.8 * f64::from(u8::from(onboarded_at_cutoff)))
    }
}

/// What the simulator knows about a user at the cutoff.
#[derive(Debug, Clone, Copy)]
pub struct CutoffState {
    /// Latent engagement.
    pub engagement: f64,
    /// On the pro plan.
    pub pro: bool,
    /// Still alive on the last day before the cutoff.
    pub alive: bool,
    /// Onboarding completed before the cutoff.
    pub onboarded: bool,
    /// Automations enabled before the cutoff.
    pub adopted: bool,
    /// Day index since the epoch of the user's signup day.
    pub signup_epoch_day: i64,
}

/// Day index since the epoch of day `k` after signup (for weekends).
fn epoch_day(state: &CutoffState, k: u32) -> i64 {
    state.signup_epoch_day + i64::from(k)
}

/// True probability that the user has no event in the label window
/// (`churned = 1` by the shipped churn config), given the state at the cutoff.
pub fn churn_probability(state: &CutoffState) -> f64 {
    if !state.alive {
        return 1.0;
    }
    let (mut alive_quiet, mut dead) = (1.0, 0.0);
    for k in WINDOW_DAYS..WINDOW_DAYS + HORIZON_DAYS {
        let h = hazard(k, state.engagement, state.pro, state.onboarded);
        dead += alive_quiet * h;
        let p = activity(k, state.engagement, is_weekend(epoch_day(state, k)));
        alive_quiet *= (1.0 - h) * (1.0 - p);
    }
    dead + alive_quiet
}

/// True probability that the user enables automations in the label window,
/// given the state at the cutoff; `None` for users who already did (the
/// adoption config excludes them).
pub fn adoption_probability(state: &CutoffState) -> Option<f64> {
    if state.adopted {
        return None;
    }
    if !state.alive {
        return Some(0.0);
    }
    let mut alive_not_adopted = 1.0;
    let mut never = 0.0;
    for k in WINDOW_DAYS..WINDOW_DAYS + HORIZON_DAYS {
        let h = hazard(k, state.engagement, state.pro, state.onboarded);
        never += alive_not_adopted * h;
        let p = activity(k, state.engagement, is_weekend(epoch_day(state, k)));
        let q = adoption(k, state.engagement, state.pro, state.onboarded);
        alive_not_adopted *= (1.0 - h) * (1.0 - p * q);
    }
    Some(1.0 - (never + alive_not_adopted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekends_are_saturday_and_sunday() {
        // 1970-01-03 was a Saturday, 2024-03-04 (day 19786) a Monday.
        assert!(!is_weekend(1) && is_weekend(2) && is_weekend(3) && !is_weekend(4));
        assert!(!is_weekend(19_786) && is_weekend(19_785));
    }

    #[test]
    fn attribute_weights_sum_to_one() {
        for a in &ATTRIBUTES {
            let total: f64 = a.values.iter().map(|v| v.1).sum();
            assert!((total - 1.0).abs() < 1e-9, "{}: {total}", a.name);
        }
    }

    #[test]
    fn truths_move_the_right_way() {
        let state = |engagement, alive| CutoffState {
            engagement,
            pro: false,
            alive,
            onboarded: false,
            adopted: false,
            signup_epoch_day: 19_786,
        };
        assert_eq!(churn_probability(&state(0.0, false)), 1.0);
        assert!(churn_probability(&state(1.5, true)) < churn_probability(&state(-1.5, true)));
        let adopt = |e| adoption_probability(&state(e, true)).unwrap();
        assert!(adopt(1.5) > adopt(-1.5));
        assert!((0.0..=1.0).contains(&adopt(0.0)));
    }
}
