//! An ingest body read straight into the fields the contracts use, without
//! building a JSON tree.
//!
//! `serde_json::Value` costs a sorted map and an owned string per key for
//! every event, which was most of the ingest path's time. Here each item is
//! visited once: the fields [`super::ingest`] checks are kept as
//! [`Scalar`]s (strings borrowed from the body when they have no escapes),
//! objects the contracts read (`properties`, `attributes`, `traits`) as
//! sorted field lists, and everything else is skipped, remembering only
//! which keys were present so an unknown field can still be named.
//!
//! Sizes are bounded while reading, before anything is kept: at most
//! `max_items` items in the body (counting Segment `batch` entries) and at
//! most [`MAX_FIELDS`] fields in one object, so a body of tiny items cannot
//! turn into a large allocation.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Most fields kept of one `properties`, `attributes` or `traits` object.
pub const MAX_FIELDS: usize = 1024;

/// A JSON value as far as the checks need it: a scalar, or only the kind
/// of an array or object (their contents are skipped).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A negative whole number.
    Int(i64),
    /// A non-negative whole number.
    Uint(u64),
    /// Any other number.
    Float(f64),
    /// A string.
    Text(Cow<'a, str>),
    /// An array (contents skipped).
    Array,
    /// An object (contents skipped).
    Object,
}

impl Scalar<'_> {
    /// What it is, for messages ("a string", "an array", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Int(_) | Scalar::Uint(_) | Scalar::Float(_) => "a number",
            Scalar::Text(_) => "a string",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }

    /// The number, for any numeric value.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::Int(i) => Some(i as f64),
            Scalar::Uint(u) => Some(u as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        }
    }

    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(if v >= 0 {
            Scalar::Uint(v as u64)
        } else {
            Scalar::Int(v)
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Uint(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A key, borrowed from the body when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_str(ScalarVisitor)? {
            Scalar::Text(t) => Ok(Key(t)),
            _ => Err(de::Error::custom("a key is not a string")),
        }
    }
}

/// An object the contracts read field by field.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields<'a> {
    /// Its fields, sorted by name (for a name sent twice, the last value).
    Object(Vec<(Cow<'a, str>, Scalar<'a>)>),
    /// More than [`MAX_FIELDS`] fields.
    TooMany,
    /// Not an object: what it is instead.
    Not(&'static str),
}

impl<'a> Fields<'a> {
    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Scalar<'a>> {
        match self {
            Fields::Object(fields) => fields
                .binary_search_by(|(k, _)| k.as_ref().cmp(name))
                .ok()
                .map(|i| &fields[i].1),
            _ => None,
        }
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields: Vec<(Cow<'de, str>, Scalar<'de>)> = Vec::new();
        let mut too_many = false;
        while let Some(Key(key)) = map.next_key()? {
            if fields.len() == MAX_FIELDS {
                too_many = true;
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            fields.push((key, map.next_value()?));
        }
        if too_many {
            return Ok(Fields::TooMany);
        }
        // The order and the last-value-wins rule of a JSON object read into
        // a map: stable sort, then keep the last of equal names.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(Cow<'de, str>, Scalar<'de>)> = Vec::with_capacity(fields.len());
        for field in fields {
            match kept.last_mut() {
                Some(last) if last.0 == field.0 => *last = field,
                _ => kept.push(field),
            }
        }
        Ok(Fields::Object(kept))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Fields<'de>, E> {
        Ok(Fields::Not("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Fields<'de>, E> {
        Ok(Fields::Not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Fields<'de>, E> {
        Ok(Fields::Not("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Fields<'de>, E> {
        Ok(Fields::Not("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Fields<'de>, E> {
        Ok(Fields::Not("a string"))
    }
    fn visit_unit<E>(self) -> Result<Fields<'de>, E> {
        Ok(Fields::Not("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Fields<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Fields::Not("an array"))
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldsVisitor)
    }
}

/// The keys an item's contracts know, in one bit each of [`Item::present`].
pub const KEYS: [&str; 15] = [
    "type",
    "user_id",
    "userId",
    "event",
    "occurred_at",
    "event_id",
    "timestamp",
    "originalTimestamp",
    "messageId",
    "signup_at",
    "consent",
    "properties",
    "attributes",
    "traits",
    "batch",
];

/// The bit of a known key.
pub const fn bit(key: &str) -> u32 {
    let mut i = 0;
    while i < KEYS.len() {
        if const_eq(KEYS[i], key) {
            return 1 << i;
        }
        i += 1;
    }
    panic!("not a known key")
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// One item of a body: the fields the contracts read.
#[derive(Debug, Default)]
pub struct Item<'a> {
    /// Set when the item is not an object: what it is.
    pub not_object: Option<&'static str>,
    /// Which of [`KEYS`] were present (a bit each, also when `null`).
    pub present: u32,
    /// The first key not in [`KEYS`], in name order.
    pub unknown: Option<Cow<'a, str>>,
    /// `type` (Segment).
    pub kind: Option<Scalar<'a>>,
    /// `user_id`.
    pub user_id: Option<Scalar<'a>>,
    /// `userId` (Segment).
    pub segment_user_id: Option<Scalar<'a>>,
    /// `event`.
    pub event: Option<Scalar<'a>>,
    /// `occurred_at`.
    pub occurred_at: Option<Scalar<'a>>,
    /// `event_id`.
    pub event_id: Option<Scalar<'a>>,
    /// `timestamp` (Segment).
    pub timestamp: Option<Scalar<'a>>,
    /// `originalTimestamp` (Segment).
    pub original_timestamp: Option<Scalar<'a>>,
    /// `messageId` (Segment).
    pub message_id: Option<Scalar<'a>>,
    /// `signup_at`.
    pub signup_at: Option<Scalar<'a>>,
    /// `consent`.
    pub consent: Option<Scalar<'a>>,
    /// `properties`.
    pub properties: Option<Fields<'a>>,
    /// `attributes`.
    pub attributes: Option<Fields<'a>>,
    /// `traits` (Segment).
    pub traits: Option<Fields<'a>>,
    /// Whether it held a Segment `batch` array (read only at the top of
    /// the body; its items were handed over as they were read).
    pub batch: bool,
}

impl<'a> Item<'a> {
    /// The first present key, in name order, that is neither in `allowed`
    /// (bits of [`KEYS`]) nor `type`.
    pub fn first_unknown(&self, allowed: u32) -> Option<&str> {
        let extra = self.present & !allowed;
        let known = KEYS
            .iter()
            .enumerate()
            .filter(|(i, _)| extra & (1 << i) != 0)
            .map(|(_, k)| *k)
            .min();
        match (known, self.unknown.as_deref()) {
            (Some(k), Some(u)) => Some(k.min(u)),
            (k, u) => k.or(u),
        }
    }
}

/// What stopped the reading, besides bad JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    TooMany,
    BatchType,
    BatchArray,
}

/// Where items go, and how many more the body may hold (every level
/// counts against the one budget).
struct Out<'s, 'de> {
    left: usize,
    stop: Option<Stop>,
    sink: &'s mut dyn FnMut(Item<'de>),
}

impl<'de> Out<'_, 'de> {
    fn halt<E: de::Error>(&mut self, why: Stop) -> E {
        self.stop = Some(why);
        E::custom("stopped")
    }

    fn emit<E: de::Error>(&mut self, item: Item<'de>) -> Result<(), E> {
        match self.left.checked_sub(1) {
            Some(left) => {
                self.left = left;
                (self.sink)(item);
                Ok(())
            }
            None => Err(self.halt(Stop::TooMany)),
        }
    }
}

/// Reads one item; the items of a Segment `batch` it holds (top-level
/// items only) go to `out` as they are read.
struct ItemSeed<'o, 's, 'de> {
    out: Option<&'o mut Out<'s, 'de>>,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_, 'de> {
    type Value = Item<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Item<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

fn not_object<'de>(kind: &'static str) -> Item<'de> {
    Item {
        not_object: Some(kind),
        ..Item::default()
    }
}

fn key_bit(key: &str) -> u32 {
    KEYS.iter().position(|k| *k == key).map_or(0, |i| 1 << i)
}

impl<'de> Visitor<'de> for ItemSeed<'_, '_, 'de> {
    type Value = Item<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Item<'de>, A::Error> {
        let mut item = Item::default();
        while let Some(Key(key)) = map.next_key()? {
            item.present |= key_bit(&key);
            let slot = match key.as_ref() {
                "type" => &mut item.kind,
                "user_id" => &mut item.user_id,
                "userId" => &mut item.segment_user_id,
                "event" => &mut item.event,
                "occurred_at" => &mut item.occurred_at,
                "event_id" => &mut item.event_id,
                "timestamp" => &mut item.timestamp,
                "originalTimestamp" => &mut item.original_timestamp,
                "messageId" => &mut item.message_id,
                "signup_at" => &mut item.signup_at,
                "consent" => &mut item.consent,
                "properties" => {
                    item.properties = Some(map.next_value()?);
                    continue;
                }
                "attributes" => {
                    item.attributes = Some(map.next_value()?);
                    continue;
                }
                "traits" => {
                    item.traits = Some(map.next_value()?);
                    continue;
                }
                "batch" => {
                    item.batch = match self.out.as_deref_mut() {
                        Some(out) => map.next_value_seed(BatchSeed { out })?,
                        None => {
                            map.next_value::<IgnoredAny>()?;
                            false
                        }
                    };
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    if item.unknown.as_deref().is_none_or(|u| key.as_ref() < u) {
                        item.unknown = Some(key);
                    }
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(item)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Item<'de>, E> {
        Ok(not_object("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Item<'de>, E> {
        Ok(not_object("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Item<'de>, E> {
        Ok(not_object("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Item<'de>, E> {
        Ok(not_object("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Item<'de>, E> {
        Ok(not_object("a string"))
    }
    fn visit_unit<E>(self) -> Result<Item<'de>, E> {
        Ok(not_object("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_object("an array"))
    }
}

/// Reads an array of items into `out`; anything else is skipped
/// (answers whether it was an array).
struct BatchSeed<'o, 's, 'de> {
    out: &'o mut Out<'s, 'de>,
}

impl<'de> DeserializeSeed<'de> for BatchSeed<'_, '_, 'de> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed<'_, '_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(item) = seq.next_element_seed(ItemSeed { out: None })? {
            self.out.emit(item)?;
        }
        Ok(true)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Reads one value of the body into `out`: an array of items (only as
/// the first value), a Segment batch, or one item.
struct ValueSeed<'o, 's, 'de> {
    out: &'o mut Out<'s, 'de>,
    first: bool,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.first {
            return d.deserialize_any(self);
        }
        let item = ItemSeed {
            out: Some(&mut *self.out),
        }
        .deserialize(d)?;
        finish_top(self.out, item)
    }
}

/// Emits a top-level item, unless it was a Segment batch (whose items
/// were emitted as they were read).
fn finish_top<'de, E: de::Error>(out: &mut Out<'_, 'de>, item: Item<'de>) -> Result<(), E> {
    let batch_type = match &item.kind {
        Some(Scalar::Text(t)) => t == "batch",
        _ => false,
    };
    if item.batch {
        if item.kind.is_some() && !batch_type {
            return Err(out.halt(Stop::BatchType));
        }
        return Ok(());
    }
    if batch_type {
        return Err(out.halt(Stop::BatchArray));
    }
    out.emit(item)
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        BatchSeed { out: self.out }.visit_seq(seq).map(|_| ())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let item = ItemSeed {
            out: Some(&mut *self.out),
        }
        .visit_map(map)?;
        finish_top(self.out, item)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.out.emit(not_object("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.out.emit(not_object("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.out.emit(not_object("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.out.emit(not_object("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.out.emit(not_object("a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.emit(not_object("null"))
    }
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadError {
    /// Not JSON or NDJSON: the value (1-based) and serde_json's message.
    Malformed(usize, String),
    /// More than `max_items` items.
    TooMany,
    /// A Segment batch without a `batch` array, or with a `type` other
    /// than `batch`: the value (1-based).
    Batch(usize, &'static str),
    /// No value at all.
    Empty,
}

/// Reads a body, one JSON value or NDJSON (one value per line), handing
/// each item (with the entries of a Segment `batch` in its place) to
/// `sink` in order. When it fails, `sink` may have seen some items.
pub fn read<'de>(
    body: &'de [u8],
    max_items: usize,
    sink: &mut dyn FnMut(Item<'de>),
) -> Result<(), ReadError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ReadError::Empty);
    }
    // Most bodies are one value. serde_json stops after the first value,
    // so text after it means NDJSON: then every line is read on its own.
    let mut whole = true;
    let mut seen = 0usize;
    {
        let mut counting = |item: Item<'de>| {
            seen += 1;
            sink(item);
        };
        let mut out = Out {
            left: max_items,
            stop: None,
            sink: &mut counting,
        };
        let mut de = serde_json::Deserializer::from_slice(body);
        ValueSeed {
            out: &mut out,
            first: true,
        }
        .deserialize(&mut de)
        .map_err(|e| failed(&out, 1, e))?;
        if de.end().is_err() {
            whole = false;
        }
    }
    if whole {
        return Ok(());
    }
    // The first line's items were handed over already; skip them.
    let mut handed = 0usize;
    let mut skipping = |item: Item<'de>| {
        handed += 1;
        if handed > seen {
            sink(item);
        }
    };
    let mut out = Out {
        left: max_items,
        stop: None,
        sink: &mut skipping,
    };
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
    for (i, line) in lines.enumerate() {
        let mut de = serde_json::Deserializer::from_slice(line);
        ValueSeed {
            out: &mut out,
            first: i == 0,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| failed(&out, i + 1, e))?;
    }
    Ok(())
}

fn failed(out: &Out<'_, '_>, value: usize, e: serde_json::Error) -> ReadError {
    match out.stop {
        Some(Stop::TooMany) => ReadError::TooMany,
        Some(Stop::BatchType) => ReadError::Batch(value, "its type is not \"batch\""),
        Some(Stop::BatchArray) => ReadError::Batch(value, "it has no \"batch\" array"),
        None => ReadError::Malformed(value, e.to_string()),
    }
}
