//! Triggers: when Presage acts on its own for a user, declared per model
//! in its policy file as `[[triggers]]` tables and checked when the policy
//! loads, so a typo is a load-time error naming the key.
//!
//! ```toml
//! [[triggers]]
//! name = "call_at_risk"
//! on = "segment_change"   # optionally from = "...", to = "..."
//! to = "high"
//!
//! [[triggers]]
//! name = "likely_churn"
//! on = "probability"
//! at_least = 0.8          # fires once per upward crossing
//!
//! [[triggers]]
//! name = "nudge_first_project"
//! on = "no_event"
//! event = "project_created"
//! within_hours = 48       # from signup; fires at the deadline
//! ```
//!
//! This module holds the checked declarations only; `presage-serve` decides
//! when they fire (on ingest, or at a deadline) and delivers the messages.
//! Whether a `no_event` trigger's event is one the model's spec knows is
//! checked there too, where the spec is at hand.

use serde::Deserialize;

use crate::policy::Segment;

/// A trigger as written in the policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    name: String,
    on: String,
    from: Option<String>,
    to: Option<String>,
    at_least: Option<f64>,
    event: Option<String>,
    within_hours: Option<f64>,
}

/// What makes a trigger fire.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerKind {
    /// An ingested event moves the user's segment (from `from`, to `to`,
    /// when given).
    SegmentChange {
        /// The segment left, if only one counts.
        from: Option<String>,
        /// The segment entered, if only one counts.
        to: Option<String>,
    },
    /// An ingested event lifts the probability from below `at_least` to at
    /// least `at_least`.
    Probability {
        /// The bar.
        at_least: f64,
    },
    /// No `event` within `within_hours` of signup: fires at the deadline.
    NoEvent {
        /// The event that cancels it.
        event: String,
        /// Hours after signup.
        within_hours: f64,
    },
}

/// A checked trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// Its name (unique within the model's policy).
    pub name: String,
    /// When it fires.
    pub kind: TriggerKind,
}

/// Longest deadline a `no_event` trigger may set (a year).
pub const MAX_WITHIN_HOURS: f64 = 24.0 * 366.0;

impl Trigger {
    /// The `on` value it was declared with.
    pub fn on(&self) -> &'static str {
        match self.kind {
            TriggerKind::SegmentChange { .. } => "segment_change",
            TriggerKind::Probability { .. } => "probability",
            TriggerKind::NoEvent { .. } => "no_event",
        }
    }

    /// Why it fired, in words, given the segments before and after and the
    /// probability.
    pub fn reason(&self, before: &str, after: &str, probability: f64) -> String {
        match &self.kind {
            TriggerKind::SegmentChange { .. } => {
                format!("segment changed from {before} to {after}")
            }
            TriggerKind::Probability { at_least } => {
                format!("probability rose to {probability:.4}, at least {at_least}")
            }
            TriggerKind::NoEvent {
                event,
                within_hours,
            } => format!("no {event} within {within_hours} h of signup"),
        }
    }

    /// Whether a change of segment (or probability) from `before` to
    /// `after` fires this trigger. `no_event` triggers never fire on a
    /// change.
    pub fn fires_on_change(
        &self,
        (segment_before, p_before): (&str, f64),
        (segment_after, p_after): (&str, f64),
    ) -> bool {
        match &self.kind {
            TriggerKind::SegmentChange { from, to } => {
                segment_before != segment_after
                    && from.as_deref().is_none_or(|f| f == segment_before)
                    && to.as_deref().is_none_or(|t| t == segment_after)
            }
            TriggerKind::Probability { at_least } => p_before < *at_least && p_after >= *at_least,
            TriggerKind::NoEvent { .. } => false,
        }
    }
}

/// Checks the `[[triggers]]` of a policy against its segments. Errors name
/// the trigger (`triggers[2]`, 1-based as a reader counts) and the key.
pub fn check(specs: &[TriggerSpec], segments: &[Segment]) -> Result<Vec<Trigger>, String> {
    let mut out: Vec<Trigger> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let at = format!("triggers[{}]", i + 1);
        if spec.name.is_empty() || spec.name.len() > 128 {
            return Err(format!("{at}.name must be 1 to 128 characters"));
        }
        if out.iter().any(|t| t.name == spec.name) {
            return Err(format!(
                "{at}.name: trigger '{}' is declared twice",
                spec.name
            ));
        }
        let segment = |key: &str, value: &Option<String>| -> Result<Option<String>, String> {
            match value {
                Some(name) if !segments.iter().any(|s| &s.name == name) => Err(format!(
                    "{at}.{key}: '{name}' is not a segment of this policy (its segments: {})",
                    segments
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                other => Ok(other.clone()),
            }
        };
        let unused = |keys: &[(&str, bool)]| -> Result<(), String> {
            match keys.iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(format!("{at}.{key} does not apply to on = \"{}\"", spec.on)),
                None => Ok(()),
            }
        };
        let kind = match spec.on.as_str() {
            "segment_change" => {
                unused(&[
                    ("at_least", spec.at_least.is_some()),
                    ("event", spec.event.is_some()),
                    ("within_hours", spec.within_hours.is_some()),
                ])?;
                let (from, to) = (segment("from", &spec.from)?, segment("to", &spec.to)?);
                if from.is_some() && from == to {
                    return Err(format!(
                        "{at}: from and to are both '{}'; a change needs two segments",
                        spec.to.as_deref().unwrap_or_default()
                    ));
                }
                TriggerKind::SegmentChange { from, to }
            }
            "probability" => {
                unused(&[
                    ("from", spec.from.is_some()),
                    ("to", spec.to.is_some()),
                    ("event", spec.event.is_some()),
                    ("within_hours", spec.within_hours.is_some()),
                ])?;
                let at_least = spec
                    .at_least
                    .ok_or_else(|| format!("{at}.at_least is missing (the probability bar)"))?;
                if !(at_least > 0.0 && at_least <= 1.0) {
                    return Err(format!(
                        "{at}.at_least is {at_least}; it is a probability in (0, 1]"
                    ));
                }
                TriggerKind::Probability { at_least }
            }
            "no_event" => {
                unused(&[
                    ("from", spec.from.is_some()),
                    ("to", spec.to.is_some()),
                    ("at_least", spec.at_least.is_some()),
                ])?;
                let event = spec
                    .event
                    .clone()
                    .filter(|e| !e.is_empty())
                    .ok_or_else(|| format!("{at}.event is missing (the event that cancels it)"))?;
                let within_hours = spec
                    .within_hours
                    .ok_or_else(|| format!("{at}.within_hours is missing (hours after signup)"))?;
                if !(within_hours > 0.0 && within_hours <= MAX_WITHIN_HOURS) {
                    return Err(format!(
                        "{at}.within_hours is {within_hours}; it is more than 0 and at most {MAX_WITHIN_HOURS}"
                    ));
                }
                TriggerKind::NoEvent {
                    event,
                    within_hours,
                }
            }
            other => {
                return Err(format!(
                    "{at}.on is \"{other}\"; it is one of segment_change, probability, no_event"
                ))
            }
        };
        out.push(Trigger {
            name: spec.name.clone(),
            kind,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments() -> Vec<Segment> {
        ["low", "high"]
            .iter()
            .map(|n| Segment {
                name: (*n).into(),
                from: 0.0,
                to: 1.0,
                flow: (*n).into(),
                attributes: serde_json::Map::new(),
            })
            .collect()
    }

    fn parse(text: &str) -> Result<Vec<Trigger>, String> {
        #[derive(Deserialize)]
        struct File {
            triggers: Vec<TriggerSpec>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        check(&file.triggers, &segments())
    }

    #[test]
    fn each_kind_reads_and_fires_as_declared() {
        let triggers = parse(
            r#"
            [[triggers]]
            name = "up"
            on = "segment_change"
            to = "high"
            [[triggers]]
            name = "bar"
            on = "probability"
            at_least = 0.8
            [[triggers]]
            name = "nudge"
            on = "no_event"
            event = "project_created"
            within_hours = 48
            "#,
        )
        .unwrap();
        assert_eq!(triggers.len(), 3);
        assert!(triggers[0].fires_on_change(("low", 0.1), ("high", 0.9)));
        assert!(!triggers[0].fires_on_change(("high", 0.9), ("low", 0.1)));
        assert!(triggers[1].fires_on_change(("low", 0.79), ("low", 0.8)));
        assert!(!triggers[1].fires_on_change(("low", 0.8), ("low", 0.9)));
        assert!(!triggers[2].fires_on_change(("low", 0.1), ("high", 0.9)));
        assert_eq!(
            triggers[2].reason("low", "low", 0.1),
            "no project_created within 48 h of signup"
        );
    }

    #[test]
    fn mistakes_name_the_trigger_and_key() {
        let one = |body: &str| parse(&format!("[[triggers]]\nname = \"t\"\n{body}")).unwrap_err();
        assert!(one("on = \"probability\"\nat_leest = 0.8").contains("unknown field `at_leest`"));
        assert_eq!(
            one("on = \"segment_change\"\nto = \"hihg\""),
            "triggers[1].to: 'hihg' is not a segment of this policy (its segments: low, high)"
        );
        assert_eq!(
            one("on = \"probability\"\nat_least = 80"),
            "triggers[1].at_least is 80; it is a probability in (0, 1]"
        );
        assert_eq!(
            one("on = \"no_event\"\nevent = \"x\""),
            "triggers[1].within_hours is missing (hours after signup)"
        );
        assert_eq!(
            one("on = \"segment_change\"\nat_least = 0.5"),
            "triggers[1].at_least does not apply to on = \"segment_change\""
        );
        assert_eq!(
            one("on = \"later\""),
            "triggers[1].on is \"later\"; it is one of segment_change, probability, no_event"
        );
    }
}
