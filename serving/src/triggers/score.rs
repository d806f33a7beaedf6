//! Scoring users for triggers, exactly as `POST /predict/{model}` scores
//! them by id, and deciding which triggers fire.

use std::collections::HashMap;
use std::sync::Arc;

use presage_models::time::format_timestamp as timestamp;
use presage_models::trigger::{Trigger, TriggerKind};
use serde_json::{json, Value};

use super::journal::Deadline;
use super::message::{idempotency_key, Message};
use crate::online::history::UserHistory;
use crate::online::ingest::Changes;
use crate::online::log::RecordRef;
use crate::online::now_us;
use crate::online::store::State;
use crate::row_parser::{self, ParseOptions};
use crate::state::AppState;
use crate::store::LoadedVersion;

/// A user's score for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The segment.
    pub segment: String,
    /// The probability.
    pub probability: f64,
    /// The segment's onboarding payload.
    pub onboarding: Value,
}

/// Scores `user` with `version` from the online store, as of `at_us`.
pub fn score(
    state: &AppState,
    version: &LoadedVersion,
    model: &str,
    user: &str,
    at_us: i64,
) -> Result<Scored, String> {
    let store = state.online.as_deref().ok_or("no online store")?;
    let computed = crate::routes::online::compute(store, version, model, user, at_us)
        .map_err(|e| e.message)?;
    let options = ParseOptions {
        strict: false,
        keep_values: false,
        max_rows: 1,
        max_features: usize::MAX,
    };
    let parsed = row_parser::encode_features(&computed.features, None, None, version, options)
        .map_err(|e| e.message)?;
    let row = &parsed.encoded.row;
    let probability = version.probability(row);
    let assignment = version
        .policy
        .assign(probability, row, &version.artifact.score_quantiles);
    Ok(Scored {
        segment: assignment.segment.name.clone(),
        probability,
        onboarding: json!({
            "flow": assignment.segment.flow,
            "attributes": assignment.segment.attributes,
        }),
    })
}

fn fires_on_change(trigger: &Trigger) -> bool {
    !matches!(trigger.kind, TriggerKind::NoEvent { .. })
}

/// The scores before an ingest request's events are applied.
pub struct Watch {
    at_us: i64,
    models: Vec<(String, Arc<LoadedVersion>)>,
    /// (model index, user, score before), and the newest event time of the
    /// user in the request.
    before: Vec<(usize, String, Scored, i64)>,
}

/// Scores the users whose events are in `changes`, for every model with a
/// `segment_change` or `probability` trigger; none when there is no such
/// model.
pub fn before(state: &AppState, changes: &Changes) -> Option<Watch> {
    let catalog = state.store.catalog();
    let models: Vec<(String, Arc<LoadedVersion>)> = catalog
        .models
        .iter()
        .filter_map(|(name, entry)| Some((name.clone(), entry.champion()?.clone())))
        .filter(|(_, v)| v.online.is_ok() && v.policy.triggers.iter().any(fires_on_change))
        .collect();
    if models.is_empty() {
        return None;
    }
    let mut newest: HashMap<&str, i64> = HashMap::new();
    for (record, _) in changes.records() {
        if let RecordRef::Event(e) = record {
            let at = newest.entry(e.user).or_insert(e.at_us);
            *at = (*at).max(e.at_us);
        }
    }
    let at_us = now_us();
    let mut before = Vec::new();
    for (i, (model, version)) in models.iter().enumerate() {
        for (user, newest_us) in &newest {
            if let Ok(scored) = score(state, version, model, user, at_us) {
                before.push((i, (*user).to_owned(), scored, *newest_us));
            }
        }
    }
    Some(Watch {
        at_us,
        models,
        before,
    })
}

/// Scores the watched users again, after their events were applied, and
/// returns the messages of the triggers their change fires.
pub fn after(state: &AppState, watch: Watch) -> Vec<Message> {
    let mut out = Vec::new();
    for (i, user, was, newest_us) in watch.before {
        let (model, version) = &watch.models[i];
        let Ok(now) = score(state, version, model, &user, watch.at_us) else {
            continue;
        };
        for trigger in version
            .policy
            .triggers
            .iter()
            .filter(|t| fires_on_change(t))
        {
            let fired = trigger.fires_on_change(
                (&was.segment, was.probability),
                (&now.segment, now.probability),
            );
            if !fired {
                continue;
            }
            let key = idempotency_key(&[
                model,
                &trigger.name,
                &user,
                &newest_us.to_string(),
                &was.segment,
                &now.segment,
            ]);
            out.push(Message {
                idempotency_key: key,
                trigger: trigger.name.clone(),
                on: trigger.on().to_owned(),
                model: model.clone(),
                version: version.version(),
                user_id: user.clone(),
                reason: trigger.reason(&was.segment, &now.segment, now.probability),
                segment_before: was.segment.clone(),
                segment: now.segment.clone(),
                probability: now.probability,
                onboarding: now.onboarding.clone(),
                fired_at: timestamp(watch.at_us),
                due_at: None,
                late_seconds: None,
            });
        }
    }
    out
}

/// Whether the deadline's event is in the user's stored history inside
/// its window; `None` when that cannot be read (the model, its trigger or
/// the user is gone, or the store is recovering).
pub fn event_happened(state: &AppState, d: &Deadline) -> Option<bool> {
    let catalog = state.store.catalog();
    let version = catalog.models.get(&d.model)?.champion()?.clone();
    let trigger = version
        .policy
        .triggers
        .iter()
        .find(|t| t.name == d.trigger)?;
    let TriggerKind::NoEvent { event, .. } = &trigger.kind else {
        return None;
    };
    let online = state.online.as_deref()?.read().ok()?;
    let user = online.users.get(d.user.as_str())?;
    Some(happened(&online, user, event, d))
}

/// Whether `user` has `event` in `[signup, due)`.
fn happened(online: &State, user: &UserHistory, event: &str, d: &Deadline) -> bool {
    online.names.get(event).is_some_and(|id| {
        user.events()
            .any(|e| e.name == id && e.at_us >= d.signup_us && e.at_us < d.due_us)
    })
}

/// What a deadline does now that it is due: `Ok(Some)` the message to
/// fire, `Ok(None)` cancelled (the event happened in time, the user was
/// erased or withheld consent, or the trigger is gone from the policy),
/// `Err` not decidable yet (the store is recovering, the model is not
/// loaded).
pub fn deadline(state: &AppState, d: &Deadline) -> Result<Option<Message>, String> {
    let catalog = state.store.catalog();
    let version = catalog
        .models
        .get(&d.model)
        .and_then(|e| e.champion())
        .ok_or_else(|| format!("model '{}' is not loaded", d.model))?
        .clone();
    let Some(trigger) = version.policy.triggers.iter().find(|t| t.name == d.trigger) else {
        return Ok(None);
    };
    let TriggerKind::NoEvent {
        event,
        within_hours: _,
    } = &trigger.kind
    else {
        return Ok(None);
    };
    let store = state.online.as_deref().ok_or("no online store")?;
    {
        let online = store.read().map_err(|e| e.to_string())?;
        let Some(user) = online.users.get(d.user.as_str()) else {
            return Ok(None);
        };
        let consented = match user.consent {
            Some(c) => c,
            None => !store.config().require_consent,
        };
        if !consented {
            return Ok(None);
        }
        if happened(&online, user, event, d) {
            return Ok(None);
        }
    }
    let at_us = now_us();
    let scored = score(state, &version, &d.model, &d.user, at_us)?;
    Ok(Some(Message {
        idempotency_key: d.key.clone(),
        trigger: trigger.name.clone(),
        on: trigger.on().to_owned(),
        model: d.model.clone(),
        version: version.version(),
        user_id: d.user.clone(),
        reason: trigger.reason(&scored.segment, &scored.segment, scored.probability),
        segment_before: scored.segment.clone(),
        segment: scored.segment,
        probability: scored.probability,
        onboarding: scored.onboarding,
        fired_at: timestamp(at_us),
        due_at: Some(timestamp(d.due_us)),
        late_seconds: Some(((at_us - d.due_us).max(0) as f64 / 1e6 * 1000.0).round() / 1000.0),
    }))
}
