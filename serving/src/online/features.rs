//! A model's features for one user, from the online store: the event
//! features its artifact's spec defines, computed from the user's stored
//! events as of a moment, and the user's stored attributes for the other
//! columns.
//!
//! The result is a `features` object like the one a caller would send, so
//! scoring by id goes through the same parser, warnings and explanations as
//! scoring with features, and values the caller does send override the
//! online ones. Numbers survive the trip exactly (`serde_json` writes the
//! shortest representation that reads back to the same bits, and reads
//! with `float_roundtrip`).
//!
//! A model is scored online only if the store keeps everything its spec
//! reads: a window of `D` days after signup needs
//! `retain_days_after_signup` of at least `D`, a lookback of `L` days needs
//! `retain_last_days` of at least `L`. Otherwise it
//! is refused with the key to raise (and the store must then be backfilled,
//! since events already dropped do not come back). A spec reading every
//! event since signup is served, and its window is reported incomplete for
//! users whose older events the retention rules dropped.

use presage_models::feature_spec::online::{OnlineSpec, OnlineWindow, Reach};
use presage_models::feature_spec::state::Event;
use serde_json::Value;

use super::history::{Attribute, StoredEvent};
use super::store::{State, StoreConfig};

/// One user's features as of a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct UserFeatures<'s> {
    /// (feature name, value) as a caller would send them (null = missing):
    /// the spec's event features in catalog order, then the stored
    /// attributes of the other columns. Names borrow the spec and schema,
    /// so scoring by id builds no map of owned keys.
    pub values: Vec<(&'s str, Value)>,
    /// The window the event features read (absent when the user's signup
    /// is not known).
    pub window: Option<OnlineWindow>,
    /// What the caller should know (unknown user, unknown signup).
    pub warnings: Vec<String>,
}

/// Whether the store keeps what `spec` reads; the message names the key
/// to raise.
pub fn check_reach(spec: &OnlineSpec, config: &StoreConfig) -> Result<(), String> {
    match spec.reach() {
        Reach::AfterSignup { days } if days > config.retain_days_after_signup => Err(format!(
            "its features read the first {days} days after signup, and the online store keeps {} ([online] retain_days_after_signup); raise it and backfill",
            config.retain_days_after_signup
        )),
        Reach::Lookback { days } if days > config.retain_last_days => Err(format!(
            "its features read the last {days} days, and the online store keeps {} ([online] retain_last_days); raise it and backfill",
            config.retain_last_days
        )),
        _ => Ok(()),
    }
}

fn number(x: Option<f64>) -> Value {
    x.and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// The features of `user_id` for a model with this spec and these columns,
/// as of `as_of_us`.
pub fn user_features<'s>(
    spec: &'s OnlineSpec,
    columns: impl Iterator<Item = &'s str>,
    state: &State,
    user_id: &str,
    as_of_us: i64,
) -> UserFeatures<'s> {
    let mut values = Vec::with_capacity(spec.catalog().len() + 8);
    let mut warnings = Vec::new();
    let user = state.users.get(user_id);
    let signup = user.and_then(|u| u.signup_us);
    let mut window = None;
    match (user, signup) {
        (None, _) => warnings.push(
            "unknown user: scored as a user without events or attributes".to_owned(),
        ),
        (Some(_), None) => warnings.push(
            "the user's signup time is not known (send it with POST /users or a Segment identify): event features are scored as for a user without events".to_owned(),
        ),
        _ => {}
    }
    let signup_us = signup.unwrap_or(as_of_us);
    let mut events: Vec<StoredEvent> = match (user, signup) {
        (Some(u), Some(_)) => u.events().take_while(|e| e.at_us < as_of_us).collect(),
        _ => Vec::new(),
    };
    // The order the training build sums in: time, name, then the spec's
    // property values (missing last).
    let properties: Vec<Option<u32>> = spec
        .properties()
        .iter()
        .map(|p| state.names.get(p))
        .collect();
    let property = |e: &StoredEvent, id: Option<u32>| {
        id.and_then(|id| e.properties.iter().find(|(p, _)| *p == id).map(|(_, v)| *v))
    };
    events.sort_by(|a, b| {
        a.at_us
            .cmp(&b.at_us)
            .then_with(|| state.names.name(a.name).cmp(state.names.name(b.name)))
            .then_with(|| {
                properties
                    .iter()
                    .map(|id| match (property(a, *id), property(b, *id)) {
                        (Some(x), Some(y)) => x.total_cmp(&y),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
    });
    let named: Vec<Vec<(&str, f64)>> = events
        .iter()
        .map(|e| {
            e.properties
                .iter()
                .map(|(p, v)| (state.names.name(*p), *v))
                .collect()
        })
        .collect();
    let replay = events.iter().zip(&named).map(|(e, props)| Event {
        name: state.names.name(e.name),
        at_us: e.at_us,
        properties: props,
    });
    // Events are sorted, so the state accepts them in order.
    let (computed, mut read) = spec
        .compute(signup_us, as_of_us, replay)
        .expect("events are applied in time order");
    if signup.is_some() {
        let dropped = user.and_then(|u| u.dropped_until_us);
        if dropped.is_some_and(|d| d >= read.start_us) {
            read.complete = false;
        }
        window = Some(read);
    }
    for (feature, value) in spec.catalog().iter().zip(computed) {
        values.push((feature.name.as_str(), number(value)));
    }
    if let Some(user) = user {
        for column in columns.filter(|c| !spec.is_event_feature(c)) {
            let value = match state.names.get(column).and_then(|id| user.attribute(id)) {
                Some(Attribute::Number(x)) => number(Some(*x)),
                Some(Attribute::Text(t)) => Value::String(t.to_string()),
                Some(Attribute::Null) => Value::Null,
                None => continue,
            };
            values.push((column, value));
        }
    }
    UserFeatures {
        values,
        window,
        warnings,
    }
}
