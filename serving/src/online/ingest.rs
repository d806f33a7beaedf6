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

use std::borrow::Cow;

use presage_models::time::parse_timestamp;

use super::body::{self, Fields, Item, ReadError, Scalar};
use super::codec::Reader;
use super::history::Attribute;
use super::log::{self, RecordRef};

/// Longest user id, event name, event id, property or attribute name, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Most numeric properties one event may carry.
pub const MAX_PROPERTIES: usize = 64;
/// Most attributes one user item may set.
pub const MAX_ATTRIBUTES: usize = 256;
/// Longest attribute string value, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// A request's accepted items, encoded as the log records they become
/// (see [`super::log`]), in request order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    bytes: Vec<u8>,
    count: usize,
}

impl Changes {
    /// How many changes there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded records.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The records, read in place, each with its byte range in [`Changes::bytes`].
    pub fn records(&self) -> impl Iterator<Item = (RecordRef<'_>, std::ops::Range<usize>)> {
        let mut r = Reader::new(&self.bytes);
        std::iter::from_fn(move || {
            if r.is_done() {
                return None;
            }
            let start = r.position();
            // Encoded by `parse` in this process.
            let record = RecordRef::decode(&mut r).expect("encoded records decode");
            Some((record, start..r.position()))
        })
    }
}

/// The event id hash, stored instead of the id itself: the first 64 bits
/// of its SHA-256 (a hash that will not change between releases, as the
/// log and snapshots keep it across restarts).
pub fn event_id_hash(id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("eight bytes"))
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
    /// The accepted items' changes, in request order.
    pub changes: Changes,
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
    let mut parsed = Parsed::default();
    let mut index = 0usize;
    let mut not_object: Option<(usize, &'static str)> = None;
    let read = body::read(body, max_items, &mut |item| {
        let i = index;
        index += 1;
        if not_object.is_some() {
            return;
        }
        if let Some(kind) = item.not_object {
            not_object = Some((i, kind));
            return;
        }
        let out = &mut parsed.changes.bytes;
        let start = out.len();
        match item_change(&item, expect, traits, now_us, out) {
            Ok(true) => parsed.changes.count += 1,
            Ok(false) => parsed.ignored += 1,
            Err(reason) => {
                out.truncate(start);
                parsed.rejected.push(Rejection { index: i, reason });
            }
        }
    });
    read.map_err(|e| match e {
        ReadError::Malformed(value, message) => BodyError::Malformed(format!(
            "the body is not JSON or NDJSON (value {value}): {message}"
        )),
        ReadError::TooMany => BodyError::TooMany(max_items),
        ReadError::Batch(value, what) => BodyError::Malformed(format!(
            "value {value} is a Segment batch but {what}; send {{\"type\": \"batch\", \"batch\": [...]}}"
        )),
        ReadError::Empty => BodyError::Malformed(
            "the body is empty; send a JSON array or NDJSON of items".into(),
        ),
    })?;
    if let Some((index, kind)) = not_object {
        return Err(BodyError::NotObject { index, kind });
    }
    Ok(parsed)
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
fn user_id<'f>(value: Option<&'f Scalar<'_>>, field: &str) -> Result<Cow<'f, str>, String> {
    let id = match value {
        None | Some(Scalar::Null) => return Err(format!("missing user id ({field})")),
        Some(Scalar::Text(s)) => Cow::Borrowed(s.as_ref()),
        Some(Scalar::Uint(n)) => Cow::Owned(n.to_string()),
        Some(Scalar::Int(n)) => Cow::Owned(n.to_string()),
        Some(other) => {
            return Err(format!(
                "{field} is {}; send a string or a whole number",
                other.kind()
            ))
        }
    };
    bounded(field, &id)?;
    Ok(id)
}

fn text<'f>(value: Option<&'f Scalar<'_>>, field: &str) -> Result<Option<&'f str>, String> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Text(s)) => {
            bounded(field, s)?;
            Ok(Some(s.as_ref()))
        }
        Some(other) => Err(format!("{field} is {}; send a string", other.kind())),
    }
}

fn time(value: &Scalar<'_>, field: &str, now_us: i64) -> Result<i64, String> {
    let Scalar::Text(s) = value else {
        return Err(format!(
            "{field} is {}; send an ISO 8601 time in UTC, e.g. 2024-03-01T09:30:00Z",
            value.kind()
        ));
    };
    let at = parse_timestamp(s).ok_or_else(|| {
        let shown: String = s.chars().take(40).collect();
        format!("{field}: cannot parse {shown:?} as a time; use ISO 8601 in UTC without an offset, e.g. 2024-03-01T09:30:00Z")
    })?;
    // Five minutes of clock skew are allowed; later than that is a bug in
    // the sender, and would move the store's clock.
    if at > now_us + 5 * 60_000_000 {
        let shown: String = s.chars().take(40).collect();
        return Err(format!("{field}: {shown:?} is in the future"));
    }
    Ok(at)
}

/// An object field (`properties`, `attributes`, `traits`): its fields,
/// none when absent or null.
fn object<'f, 'a>(
    value: Option<&'f Fields<'a>>,
    field: &str,
    limit: usize,
) -> Result<&'f [(Cow<'a, str>, Scalar<'a>)], String> {
    match value {
        None | Some(Fields::Not("null")) => Ok(&[]),
        Some(Fields::Object(fields)) => Ok(fields),
        Some(Fields::TooMany) => Err(format!(
            "{field} has more than {} fields; at most {limit} are used",
            body::MAX_FIELDS
        )),
        Some(Fields::Not(kind)) => Err(format!("{field} is {kind}; send an object")),
    }
}

fn properties<'f>(
    value: Option<&'f Fields<'_>>,
    lenient: bool,
) -> Result<Vec<(&'f str, f64)>, String> {
    let fields = object(value, "properties", MAX_PROPERTIES)?;
    let mut out = Vec::new();
    for (name, value) in fields {
        let number = match value {
            Scalar::Null => None,
            v => match v.as_f64() {
                Some(n) => Some(n),
                None if lenient => None,
                None => {
                    return Err(format!(
                        "properties.{name} is {}; event properties are numbers (or null)",
                        v.kind()
                    ))
                }
            },
        };
        if let Some(number) = number {
            bounded("a property name", name)?;
            out.push((name.as_ref(), number));
            if out.len() > MAX_PROPERTIES {
                return Err(format!(
                    "more than {MAX_PROPERTIES} numeric properties in one event"
                ));
            }
        }
    }
    Ok(out)
}

fn attribute(name: &str, value: &Scalar<'_>) -> Result<Option<Attribute>, String> {
    Ok(Some(match value {
        Scalar::Int(_) | Scalar::Uint(_) | Scalar::Float(_) => {
            Attribute::Number(value.as_f64().unwrap_or(f64::NAN))
        }
        Scalar::Bool(b) => Attribute::Number(if *b { 1.0 } else { 0.0 }),
        Scalar::Text(s) if s.len() > MAX_TEXT_BYTES => {
            return Err(format!(
                "attribute {name} is {} bytes; at most {MAX_TEXT_BYTES}",
                s.len()
            ))
        }
        Scalar::Text(s) => Attribute::Text(s.as_ref().into()),
        Scalar::Null => Attribute::Null,
        Scalar::Array | Scalar::Object => return Ok(None),
    }))
}

fn attributes<'f>(
    fields: &'f [(Cow<'_, str>, Scalar<'_>)],
    skip: &[&str],
    strict: bool,
) -> Result<Vec<(&'f str, Attribute)>, String> {
    let mut out = Vec::new();
    for (name, value) in fields {
        if skip.contains(&name.as_ref()) {
            continue;
        }
        bounded("an attribute name", name)?;
        match attribute(name, value)? {
            Some(a) => out.push((name.as_ref(), a)),
            None if strict => {
                return Err(format!(
                    "attributes.{name} is {}; attributes are numbers, strings, booleans or null",
                    value.kind()
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

fn consent(value: Option<&Scalar<'_>>, field: &str) -> Result<Option<bool>, String> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("{field} is {}; send true or false", other.kind())),
    }
}

/// Refuses an item with a field outside `allowed` (named in messages).
fn only_fields(item: &Item<'_>, allowed: &[&str]) -> Result<(), String> {
    let mask = allowed.iter().fold(0, |m, k| m | body::bit(k));
    match item.first_unknown(mask) {
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

const EVENT_FIELDS: [&str; 5] = ["user_id", "event", "occurred_at", "event_id", "properties"];
const USER_FIELDS: [&str; 4] = ["user_id", "signup_at", "consent", "attributes"];

/// Checks one item and appends its record to `out`: true when it is a
/// change, false for a Segment message the store does not use.
fn item_change(
    item: &Item<'_>,
    expect: Expect,
    traits: &Traits,
    now_us: i64,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    if let Some(kind) = &item.kind {
        return segment(item, kind, expect, traits, now_us, out);
    }
    match expect {
        Expect::Events => {
            only_fields(item, &EVENT_FIELDS)?;
            let user = user_id(item.user_id.as_ref(), "user_id")?;
            let name = text(item.event.as_ref(), "event")?.ok_or("missing event name (event)")?;
            let at_us = time(
                item.occurred_at
                    .as_ref()
                    .ok_or("missing time (occurred_at)")?,
                "occurred_at",
                now_us,
            )?;
            let id = text(item.event_id.as_ref(), "event_id")?.map(event_id_hash);
            let properties = properties(item.properties.as_ref(), false)?;
            log::encode_event(out, &user, name, at_us, id, &properties);
        }
        Expect::Users => {
            only_fields(item, &USER_FIELDS)?;
            let user = user_id(item.user_id.as_ref(), "user_id")?;
            let signup_us = match &item.signup_at {
                None | Some(Scalar::Null) => None,
                Some(v) => Some(time(v, "signup_at", now_us)?),
            };
            let fields = object(item.attributes.as_ref(), "attributes", MAX_ATTRIBUTES)?;
            let consent = consent(item.consent.as_ref(), "consent")?;
            let attributes = attributes(fields, &[], true)?;
            log::encode_user(
                out,
                &user,
                signup_us,
                consent,
                attributes.iter().map(|(n, v)| (*n, v)),
            );
        }
    }
    Ok(true)
}

fn segment(
    item: &Item<'_>,
    kind: &Scalar<'_>,
    expect: Expect,
    traits: &Traits,
    now_us: i64,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    let Scalar::Text(kind) = kind else {
        return Err(format!("type is {}; send a string", kind.kind()));
    };
    match kind.as_ref() {
        "track" if expect == Expect::Events => {
            let user = user_id(item.segment_user_id.as_ref(), "userId")?;
            let name = text(item.event.as_ref(), "event")?.ok_or("missing event name (event)")?;
            let at = item
                .timestamp
                .as_ref()
                .or(item.original_timestamp.as_ref())
                .ok_or("missing time (timestamp)")?;
            let at_us = time(at, "timestamp", now_us)?;
            let id = text(item.message_id.as_ref(), "messageId")?.map(event_id_hash);
            let properties = properties(item.properties.as_ref(), true)?;
            log::encode_event(out, &user, name, at_us, id, &properties);
            Ok(true)
        }
        "identify" => {
            let user = user_id(item.segment_user_id.as_ref(), "userId")?;
            let traits_fields = object(item.traits.as_ref(), "traits", MAX_ATTRIBUTES)?;
            let trait_value = |name: &str| {
                traits_fields
                    .binary_search_by(|(k, _)| k.as_ref().cmp(name))
                    .ok()
                    .map(|i| &traits_fields[i].1)
            };
            let signup = match trait_value(traits.signup.as_str()).or(trait_value("createdAt")) {
                None | Some(Scalar::Null) => None,
                Some(v) => Some(time(v, &format!("traits.{}", traits.signup), now_us)?),
            };
            let consent = consent(
                trait_value(traits.consent.as_str()),
                &format!("traits.{}", traits.consent),
            )?;
            let skip = [traits.signup.as_str(), "createdAt", traits.consent.as_str()];
            let attributes = attributes(traits_fields, &skip, false)?;
            log::encode_user(
                out,
                &user,
                signup,
                consent,
                attributes.iter().map(|(n, v)| (*n, v)),
            );
            Ok(true)
        }
        "track" => Err("a track message goes to POST /events".into()),
        "page" | "screen" | "group" | "alias" => Ok(false),
        other => {
            let shown: String = other.chars().take(40).collect();
            Err(format!(
                "unknown Segment type {shown:?}; send track, identify or batch"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::online::log::Record;

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

    fn records(parsed: &Parsed) -> Vec<Record> {
        let mut r = Reader::new(parsed.changes.bytes());
        std::iter::from_fn(|| (!r.is_done()).then(|| Record::decode(&mut r).unwrap())).collect()
    }

    #[test]
    fn arrays_ndjson_and_segment_batches_give_the_same_events() {
        let one = r#"{"user_id": "u1", "event": "login", "occurred_at": "2024-03-01T09:30:00Z", "event_id": "e1", "properties": {"seconds": 3, "x": null}}"#;
        let array = events(&format!("[{one}]"));
        let ndjson = events(&format!("{one}\n{one}\n"));
        let segment = events(
            r#"{"batch": [{"type": "track", "userId": "u1", "event": "login", "timestamp": "2024-03-01T09:30:00Z", "messageId": "e1", "properties": {"seconds": 3, "plan": "pro"}}, {"type": "page", "userId": "u1"}]}"#,
        );
        let expected = Record::Event {
            user: "u1".into(),
            name: "login".into(),
            at_us: parse_timestamp("2024-03-01T09:30:00").unwrap(),
            id: Some(event_id_hash("e1")),
            properties: vec![("seconds".into(), 3.0)],
        };
        assert_eq!(records(&array), std::slice::from_ref(&expected));
        assert_eq!(records(&ndjson), [expected.clone(), expected.clone()]);
        assert_eq!(records(&segment), [expected]);
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
        assert!(matches!(&records(&parsed)[..], [Record::Event { name, .. }] if name == "ok"));
    }

    #[test]
    fn identify_sets_signup_consent_and_attributes() {
        let body = r#"{"type": "identify", "userId": 42, "traits": {"createdAt": "2024-03-01T00:00:00.000Z", "consent": true, "plan": "pro", "seats": 3, "beta": false, "address": {"city": "x"}}}"#;
        let parsed = parse(body.as_bytes(), Expect::Users, &traits(), 10, NOW).unwrap();
        assert_eq!(
            records(&parsed),
            [Record::User {
                user: "42".into(),
                signup_us: parse_timestamp("2024-03-01"),
                consent: Some(true),
                attributes: vec![
                    ("beta".into(), Attribute::Number(0.0)),
                    ("plan".into(), Attribute::Text("pro".into())),
                    ("seats".into(), Attribute::Number(3.0)),
                ],
            }]
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

    #[test]
    fn bodies_read_in_place_keep_json_semantics() {
        let t = traits();
        // Escapes, a key sent twice (the last wins), CRLF lines, a pretty
        // printed single value.
        let parsed = events(
            "{\"user_id\": \"u\\u0031\", \"event\": \"a\", \"event\": \"b\", \"occurred_at\": \"2024-03-01\"}\r\n\r\n{\"user_id\": 7, \"event\": \"c\", \"occurred_at\": \"2024-03-02\"}\r\n",
        );
        let got: Vec<(String, String)> = records(&parsed)
            .into_iter()
            .map(|r| match r {
                Record::Event { user, name, .. } => (user, name),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, [("u1".into(), "b".into()), ("7".into(), "c".into())]);
        let pretty = events("[\n  {\"user_id\": \"u1\",\n   \"event\": \"a\",\n   \"occurred_at\": \"2024-03-01\"}\n]\n");
        assert_eq!(pretty.changes.len(), 1);

        // A batch of exactly the limit is fine; one more is refused.
        let track = r#"{"type": "track", "userId": "u1", "event": "a", "timestamp": "2024-03-01"}"#;
        let batch = |n: usize| {
            format!(
                r#"{{"type": "batch", "batch": [{}]}}"#,
                vec![track; n].join(",")
            )
        };
        let ten = parse(batch(10).as_bytes(), Expect::Events, &t, 10, NOW).unwrap();
        assert_eq!(ten.changes.len(), 10);
        assert_eq!(
            parse(batch(11).as_bytes(), Expect::Events, &t, 10, NOW).unwrap_err(),
            BodyError::TooMany(10)
        );
        let lines = [track; 11].join("\n");
        assert_eq!(
            parse(lines.as_bytes(), Expect::Events, &t, 10, NOW).unwrap_err(),
            BodyError::TooMany(10)
        );

        // A batch inside a batch is an unknown Segment type; a batch with
        // another type, or without its array, refuses the body.
        let nested = format!(r#"{{"batch": [{track}, {{"type": "batch", "batch": []}}]}}"#);
        let parsed = events(&nested);
        assert_eq!(parsed.changes.len(), 1);
        assert_eq!(
            parsed.rejected,
            [Rejection {
                index: 1,
                reason: "unknown Segment type \"batch\"; send track, identify or batch".into()
            }]
        );
        for body in [r#"{"type": "track", "batch": []}"#, r#"{"type": "batch"}"#] {
            assert!(matches!(
                parse(body.as_bytes(), Expect::Events, &t, 10, NOW),
                Err(BodyError::Malformed(m)) if m.contains("Segment batch")
            ));
        }

        // Only the first value may be an array; later ones are items.
        assert_eq!(
            parse(
                format!("[{track}]\n[{track}]").as_bytes(),
                Expect::Events,
                &t,
                10,
                NOW
            )
            .unwrap_err(),
            BodyError::NotObject {
                index: 1,
                kind: "an array"
            }
        );
        // An object of more fields than are ever kept is refused as an item.
        let props: Vec<String> = (0..1100).map(|i| format!(r#""p{i}": 1"#)).collect();
        let wide = format!(
            r#"{{"user_id": "u1", "event": "a", "occurred_at": "2024-03-01", "properties": {{{}}}}}"#,
            props.join(",")
        );
        assert_eq!(
            events(&wide).rejected[0].reason,
            "properties has more than 1024 fields; at most 64 are used"
        );
    }
}
