//! What clients send to `POST /events` and `POST /users`, checked item by
//! item into [`Change`]s, with a reason for every item refused.
//!
//! A body is one JSON value or NDJSON (one value per line). Each item is
//! either Presage's own contract or a Segment message (it has `"type"`):
//!
//! - an event: `user_id`, `event`, `occurred_at` (ISO 8601 in UTC, as the
//!   extract builder reads it: no offset), optional `event_id` and numeric
//!   `properties`; unknown fields are refused so a typo is not silently
//!   dropped;
//! - a user (`POST /users`): `user_id`, optional `signup_at`, `consent`
//!   and `attributes`;
//! - Segment `track` (the event: `userId`, `event`, `timestamp`,
//!   `messageId` as the event id, numeric `properties`; properties of other
//!   types are ignored, as Segment sends strings there too), `identify`
//!   (`traits` become attributes; `createdAt`, or the configured signup
//!   trait, is the signup time; the configured consent trait is consent) and
//!   `batch` (its `batch` array). Other Segment types (`page`, `screen`,
//!   `group`, `alias`) are counted as ignored.
//!
//! Every size is checked before it is kept: ids and names at most
//! [`MAX_ID_BYTES`], at most [`MAX_PROPERTIES`] properties and
//! [`MAX_ATTRIBUTES`] attributes per item, and at most `max_items` items a
//! request (the body itself is bounded by `max_body_bytes` before parsing).

use serde_json::{Map, Value};

use presage_models::time::parse_timestamp;

use super::history::Attribute;

/// Longest user id, event name, event id, property or attribute name, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Most numeric properties one event may carry.
pub const MAX_PROPERTIES: usize = 64;
/// Most attributes one user item may set.
pub const MAX_ATTRIBUTES: usize = 256;
/// Longest attribute string value, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// An event, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct EventIn {
    /// The user.
    pub user_id: String,
    /// Event name.
    pub name: String,
    /// When it happened (microseconds since the epoch, UTC).
    pub at_us: i64,
    /// The client's id for it (`event_id` or Segment's `messageId`).
    pub event_id: Option<String>,
    /// Numeric properties with a value.
    pub properties: Vec<(String, f64)>,
}

/// A user's signup, consent or attributes, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct UserIn {
    /// The user.
    pub user_id: String,
    /// Signup time, when sent.
    pub signup_us: Option<i64>,
    /// Consent, when sent.
    pub consent: Option<bool>,
    /// Attributes to set.
    pub attributes: Vec<(String, Attribute)>,
}

/// One change to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Store an event.
    Event(EventIn),
    /// Create or update a user.
    User(UserIn),
}

/// An item that was refused, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Position of the item in the request (0-based; inside a Segment
    /// `batch`, the position in `batch`).
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// A request's items, checked.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Changes in request order, each with its item's index.
    pub changes: Vec<(usize, Change)>,
    /// Items refused.
    pub rejected: Vec<Rejection>,
    /// Segment messages of types the store does not use.
    pub ignored: usize,
}

/// What a request body may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `POST /events`: events and Segment messages.
    Events,
    /// `POST /users`: users and Segment `identify` messages.
    Users,
}

/// How identify traits are read.
#[derive(Debug, Clone)]
pub struct Traits {
    /// The trait holding the signup time (besides `createdAt`).
    pub signup: String,
    /// The trait holding consent.
    pub consent: String,
}

/// Why a whole body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON or NDJSON.
    #[error("{0}")]
    Malformed(String),
    /// More items than a request may carry.
    #[error("more than {0} items in one request (max_events_per_request); send smaller batches")]
    TooMany(usize),
    /// An item is not an object.
    #[error("item {index} is {kind}; every item is a JSON object")]
    NotObject {
        /// Position of the item.
        index: usize,
        /// What it is.
        kind: &'static str,
    },
}

/// Parses a body into changes.
pub fn parse(
    body: &[u8],
    expect: Expect,
    traits: &Traits,
    max_items: usize,
    now_us: i64,
) -> Result<Parsed, BodyError> {
    let mut items: Vec<Value> = Vec::new();
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let mut values = 0usize;
    for (line, value) in stream.enumerate() {
        let value = value.map_err(|e| {
            BodyError::Malformed(format!(
                "the body is not JSON or NDJSON (value {}): {e}",
                line + 1
            ))
        })?;
        values += 1;
        match value {
            Value::Array(list) if values == 1 => items.extend(list),
            Value::Object(mut o)
                if o.get("type").and_then(Value::as_str) == Some("batch")
                    || (!o.contains_key("type") && o.get("batch").is_some_and(Value::is_array)) =>
            {
                match o.remove("batch") {
                    Some(Value::Array(list)) => items.extend(list),
                    _ => {
                        return Err(BodyError::Malformed(
                            "a Segment batch needs a \"batch\" array".into(),
                        ))
                    }
                }
            }
            other => items.push(other),
        }
        if items.len() > max_items {
            return Err(BodyError::TooMany(max_items));
        }
    }
    if values == 0 {
        return Err(BodyError::Malformed(
            "the body is empty; send a JSON array or NDJSON of items".into(),
        ));
    }
    if items.len() > max_items {
        return Err(BodyError::TooMany(max_items));
    }
    if let Some((index, item)) = items.iter().enumerate().find(|(_, v)| !v.is_object()) {
        return Err(BodyError::NotObject {
            index,
            kind: kind_of(item),
        });
    }
    let mut parsed = Parsed::default();
    for (index, item) in items.into_iter().enumerate() {
        match item_change(item, expect, traits, now_us) {
            Ok(Some(change)) => parsed.changes.push((index, change)),
            Ok(None) => parsed.ignored += 1,
            Err(reason) => parsed.rejected.push(Rejection { index, reason }),
        }
    }
    Ok(parsed)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn bounded(field: &str, text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if text.len() > MAX_ID_BYTES {
        return Err(format!(
            "{field} is {} bytes; at most {MAX_ID_BYTES}",
            text.len()
        ));
    }
    Ok(())
}

/// A user id: a string, or a whole number (warehouse ids often are).
fn user_id(o: &Map<String, Value>, field: &str) -> Result<String, String> {
    let id = match o.get(field) {
        None | Some(Value::Null) => return Err(format!("missing user id ({field})")),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(other) => {
            return Err(format!(
                "{field} is {}; send a string or a whole number",
                kind_of(other)
            ))
        }
    };
    bounded(field, &id)?;
    Ok(id)
}

fn text(o: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            bounded(field, s)?;
            Ok(Some(s.clone()))
        }
        Some(other) => Err(format!("{field} is {}; send a string", kind_of(other))),
    }
}

fn time(value: &Value, field: &str, now_us: i64) -> Result<i64, String> {
    let Value::String(s) = value else {
        return Err(format!(
            "{field} is {}; send an ISO 8601 time in UTC, e.g. 2024-03-01T09:30:00Z",
            kind_of(value)
        ));
    };
    let shown: String = s.chars().take(40).collect();
    let at = parse_timestamp(s).ok_or_else(|| {
        format!("{field}: cannot parse {shown:?} as a time; use ISO 8601 in UTC without an offset, e.g. 2024-03-01T09:30:00Z")
    })?;
    // Five minutes of clock skew are allowed; later than that is a bug in
    // the sender, and would move the store's clock.
    if at > now_us + 5 * 60_000_000 {
        return Err(format!("{field}: {shown:?} is in the future"));
    }
    Ok(at)
}

fn properties(value: Option<&Value>, lenient: bool) -> Result<Vec<(String, f64)>, String> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(format!("properties is {}; send an object", kind_of(other))),
    };
    let mut out = Vec::new();
    for (name, value) in map {
        let number = match value {
            Value::Number(n) => n.as_f64(),
            Value::Null => None,
            _ if lenient => None,
            other => {
                return Err(format!(
                    "properties.{name} is {}; event properties are numbers (or null)",
                    kind_of(other)
                ))
            }
        };
        if let Some(number) = number {
            bounded("a property name", name)?;
            out.push((name.clone(), number));
            if out.len() > MAX_PROPERTIES {
                return Err(format!(
                    "more than {MAX_PROPERTIES} numeric properties in one event"
                ));
            }
        }
    }
    Ok(out)
}

fn attribute(name: &str, value: &Value) -> Result<Option<Attribute>, String> {
    Ok(Some(match value {
        Value::Number(n) => Attribute::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Attribute::Number(if *b { 1.0 } else { 0.0 }),
        Value::String(s) if s.len() > MAX_TEXT_BYTES => {
            return Err(format!(
                "attribute {name} is {} bytes; at most {MAX_TEXT_BYTES}",
                s.len()
            ))
        }
        Value::String(s) => Attribute::Text(s.as_str().into()),
        Value::Null => Attribute::Null,
        Value::Array(_) | Value::Object(_) => return Ok(None),
    }))
}

fn attributes(
    map: &Map<String, Value>,
    skip: &[&str],
    strict: bool,
) -> Result<Vec<(String, Attribute)>, String> {
    let mut out = Vec::new();
    for (name, value) in map {
        if skip.contains(&name.as_str()) {
            continue;
        }
        bounded("an attribute name", name)?;
        match attribute(name, value)? {
            Some(a) => out.push((name.clone(), a)),
            None if strict => {
                return Err(format!(
                    "attributes.{name} is {}; attributes are numbers, strings, booleans or null",
                    kind_of(value)
                ))
            }
            None => {}
        }
        if out.len() > MAX_ATTRIBUTES {
            return Err(format!("more than {MAX_ATTRIBUTES} attributes in one item"));
        }
    }
    Ok(out)
}

fn consent(value: Option<&Value>, field: &str) -> Result<Option<bool>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("{field} is {}; send true or false", kind_of(other))),
    }
}

fn only_fields(o: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => {
            let shown: String = k.chars().take(40).collect();
            Err(format!(
                "unknown field {shown:?}; the fields are {}",
                allowed.join(", ")
            ))
        }
        None => Ok(()),
    }
}

fn item_change(
    item: Value,
    expect: Expect,
    traits: &Traits,
    now_us: i64,
) -> Result<Option<Change>, String> {
    let Value::Object(o) = item else {
        unreachable!("parse refuses items that are not objects");
    };
    if let Some(kind) = o.get("type") {
        return segment(&o, kind, expect, traits, now_us);
    }
    match expect {
        Expect::Events => {
            only_fields(
                &o,
                &["user_id", "event", "occurred_at", "event_id", "properties"],
            )?;
            let user_id = user_id(&o, "user_id")?;
            let name = text(&o, "event")?.ok_or("missing event name (event)")?;
            let at_us = time(
                o.get("occurred_at").ok_or("missing time (occurred_at)")?,
                "occurred_at",
                now_us,
            )?;
            Ok(Some(Change::Event(EventIn {
                user_id,
                name,
                at_us,
                event_id: text(&o, "event_id")?,
                properties: properties(o.get("properties"), false)?,
            })))
        }
        Expect::Users => {
            only_fields(&o, &["user_id", "signup_at", "consent", "attributes"])?;
            let user_id = user_id(&o, "user_id")?;
            let signup_us = match o.get("signup_at") {
                None | Some(Value::Null) => None,
                Some(v) => Some(time(v, "signup_at", now_us)?),
            };
            let attributes = match o.get("attributes") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(map)) => attributes(map, &[], true)?,
                Some(other) => {
                    return Err(format!("attributes is {}; send an object", kind_of(other)))
                }
            };
            Ok(Some(Change::User(UserIn {
                user_id,
                signup_us,
                consent: consent(o.get("consent"), "consent")?,
                attributes,
            })))
        }
    }
}

fn segment(
    o: &Map<String, Value>,
    kind: &Value,
    expect: Expect,
    traits: &Traits,
    now_us: i64,
) -> Result<Option<Change>, String> {
    match kind.as_str() {
        Some("track") if expect == Expect::Events => {
            let user_id = user_id(o, "userId")?;
            let name = text(o, "event")?.ok_or("missing event name (event)")?;
            let at = o
                .get("timestamp")
                .or_else(|| o.get("originalTimestamp"))
                .ok_or("missing time (timestamp)")?;
            Ok(Some(Change::Event(EventIn {
                user_id,
                name,
                at_us: time(at, "timestamp", now_us)?,
                event_id: text(o, "messageId")?,
                properties: properties(o.get("properties"), true)?,
            })))
        }
        Some("identify") => {
            let user_id = user_id(o, "userId")?;
            let traits_map = match o.get("traits") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m.clone(),
                Some(other) => return Err(format!("traits is {}; send an object", kind_of(other))),
            };
            let signup = match traits_map
                .get(traits.signup.as_str())
                .or_else(|| traits_map.get("createdAt"))
            {
                None | Some(Value::Null) => None,
                Some(v) => Some(time(v, &format!("traits.{}", traits.signup), now_us)?),
            };
            let consent = consent(
                traits_map.get(traits.consent.as_str()),
                &format!("traits.{}", traits.consent),
            )?;
            let skip = [traits.signup.as_str(), "createdAt", traits.consent.as_str()];
            Ok(Some(Change::User(UserIn {
                user_id,
                signup_us: signup,
                consent,
                attributes: attributes(&traits_map, &skip, false)?,
            })))
        }
        Some("track") => Err("a track message goes to POST /events".into()),
        Some("page" | "screen" | "group" | "alias") => Ok(None),
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            Err(format!(
                "unknown Segment type {shown:?}; send track, identify or batch"
            ))
        }
        None => Err(format!("type is {}; send a string", kind_of(kind))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000;

    fn traits() -> Traits {
        Traits {
            signup: "signup_at".into(),
            consent: "consent".into(),
        }
    }

    fn events(body: &str) -> Parsed {
        parse(body.as_bytes(), Expect::Events, &traits(), 100, NOW).unwrap()
    }

    #[test]
    fn arrays_ndjson_and_segment_batches_give_the_same_events() {
        let one = r#"{"user_id": "u1", "event": "login", "occurred_at": "2024-03-01T09:30:00Z", "event_id": "e1", "properties": {"seconds": 3, "x": null}}"#;
        let array = events(&format!("[{one}]"));
        let ndjson = events(&format!("{one}\n{one}\n"));
        let segment = events(
            r#"{"batch": [{"type": "track", "userId": "u1", "event": "login", "timestamp": "2024-03-01T09:30:00Z", "messageId": "e1", "properties": {"seconds": 3, "plan": "pro"}}, {"type": "page", "userId": "u1"}]}"#,
        );
        let expected = Change::Event(EventIn {
            user_id: "u1".into(),
            name: "login".into(),
            at_us: parse_timestamp("2024-03-01T09:30:00").unwrap(),
            event_id: Some("e1".into()),
            properties: vec![("seconds".into(), 3.0)],
        });
        assert_eq!(array.changes, [(0, expected.clone())]);
        assert_eq!(ndjson.changes.len(), 2);
        assert_eq!(segment.changes, [(0, expected)]);
        assert_eq!(segment.ignored, 1);
    }

    #[test]
    fn each_bad_item_is_refused_with_its_index_and_reason() {
        let long = "u".repeat(10_000);
        let body = format!(
            r#"[{{"user_id": "u1", "event": "a", "occurred_at": "2024-03-01T09:30:00+02:00"}},
                {{"event": "a", "occurred_at": "2024-03-01"}},
                {{"user_id": "u1", "event": "a", "occurred_at": "2024-03-01", "properties": {{"plan": "pro"}}}},
                {{"user_id": "{long}", "event": "a", "occurred_at": "2024-03-01"}},
                {{"user_id": "u1", "event": "a", "occured_at": "2024-03-01"}},
                {{"user_id": "u1", "event": "a", "occurred_at": "2099-01-01"}},
                {{"user_id": "u1", "event": "ok", "occurred_at": "2024-03-01"}}]"#
        );
        let parsed = events(&body);
        let reasons: Vec<(usize, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (0, "occurred_at: cannot parse \"2024-03-01T09:30:00+02:00\" as a time; use ISO 8601 in UTC without an offset, e.g. 2024-03-01T09:30:00Z"),
                (1, "missing user id (user_id)"),
                (2, "properties.plan is a string; event properties are numbers (or null)"),
                (3, "user_id is 10000 bytes; at most 256"),
                (4, "unknown field \"occured_at\"; the fields are user_id, event, occurred_at, event_id, properties"),
                (5, "occurred_at: \"2099-01-01\" is in the future"),
            ]
        );
        assert_eq!(parsed.changes.len(), 1);
        assert_eq!(parsed.changes[0].0, 6);
    }

    #[test]
    fn identify_sets_signup_consent_and_attributes() {
        let body = r#"{"type": "identify", "userId": 42, "traits": {"createdAt": "2024-03-01T00:00:00.000Z", "consent": true, "plan": "pro", "seats": 3, "beta": false, "address": {"city": "x"}}}"#;
        let parsed = parse(body.as_bytes(), Expect::Users, &traits(), 10, NOW).unwrap();
        assert_eq!(
            parsed.changes,
            [(
                0,
                Change::User(UserIn {
                    user_id: "42".into(),
                    signup_us: parse_timestamp("2024-03-01"),
                    consent: Some(true),
                    attributes: vec![
                        ("beta".into(), Attribute::Number(0.0)),
                        ("plan".into(), Attribute::Text("pro".into())),
                        ("seats".into(), Attribute::Number(3.0)),
                    ],
                })
            )]
        );
    }

    #[test]
    fn whole_body_problems_refuse_the_request() {
        let t = traits();
        assert!(matches!(
            parse(b"[{\"user_id\": ", Expect::Events, &t, 10, NOW),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"", Expect::Events, &t, 10, NOW),
            Err(BodyError::Malformed(_))
        ));
        assert_eq!(
            parse(b"[{}, 3]", Expect::Events, &t, 10, NOW).unwrap_err(),
            BodyError::NotObject {
                index: 1,
                kind: "a number"
            }
        );
        let many = format!("[{}]", ["{}"; 11].join(","));
        assert_eq!(
            parse(many.as_bytes(), Expect::Events, &t, 10, NOW).unwrap_err(),
            BodyError::TooMany(10)
        );
    }
}
