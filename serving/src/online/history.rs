//! One user's stored history: signup time, consent, attributes and the raw
//! events the store keeps, packed into one byte string per user.
//!
//! Raw events rather than running aggregates, because a feature depends on
//! the moment it is read: `days_since_last_event`, the trend's halves and
//! every relative window up to `signup + days_after_signup` move with "now",
//! and `?as_of=` asks for any past moment. Replaying a user's few dozen
//! events through the spec's per-user state takes microseconds and gives the
//! training table's values exactly.
//!
//! Events are packed in time order (equal times in arrival order) as
//! varints: the time as a delta from the previous event, the name and
//! property names as ids of [`Names`], an optional 64-bit hash of the
//! event id for idempotency, and property values as `f64` bits. A typical
//! event takes 8 to 20 bytes.

use std::collections::HashMap;

use super::codec::{DecodeError, Put, Reader};

/// Names (events, properties, attributes) as small integers, shared by
/// every user. Ids are assigned in order of first use and never reused.
#[derive(Debug, Default, Clone)]
pub struct Names {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    /// The id of `name`, assigning the next one if it is new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The id of `name`, if it was ever used.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name with this id (empty for an id never assigned).
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    /// Every name, by id.
    pub fn all(&self) -> &[Box<str>] {
        &self.names
    }

    /// Bytes the names take in memory (approximately).
    pub fn heap_bytes(&self) -> usize {
        self.names.iter().map(|n| 2 * n.len() + 48).sum()
    }
}

/// A user attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    /// A number (booleans are stored as 1 and 0, as the training table
    /// reads them).
    Number(f64),
    /// A string, for categorical features.
    Text(Box<str>),
    /// Sent as null: missing.
    Null,
}

/// One stored event, unpacked.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Microseconds since the epoch.
    pub at_us: i64,
    /// Event name id.
    pub name: u32,
    /// 64-bit hash of the event id, when one was sent.
    pub id: Option<u64>,
    /// Numeric properties: (property name id, value).
    pub properties: Vec<(u32, f64)>,
}

/// What the store keeps about one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserHistory {
    /// Signup time, once known.
    pub signup_us: Option<i64>,
    /// Consent, once known.
    pub consent: Option<bool>,
    /// Attributes: (attribute name id, value), sorted by id.
    pub attributes: Vec<(u32, Attribute)>,
    /// The latest time of an event the retention rules dropped: the
    /// history before it may be incomplete.
    pub dropped_until_us: Option<i64>,
    events: Box<[u8]>,
    count: u32,
    last_us: i64,
}

fn encode(out: &mut Vec<u8>, previous_us: i64, event: &StoredEvent) {
    out.put_varint_i64(event.at_us.wrapping_sub(previous_us));
    out.put_varint(u64::from(event.name));
    out.put_varint(((event.properties.len() as u64) << 1) | u64::from(event.id.is_some()));
    if let Some(id) = event.id {
        out.put_u64(id);
    }
    for (name, value) in &event.properties {
        out.put_varint(u64::from(*name));
        out.put_f64(*value);
    }
}

/// Iterates over a user's packed events.
pub struct Events<'a> {
    reader: Reader<'a>,
    previous_us: i64,
}

impl Iterator for Events<'_> {
    type Item = StoredEvent;
    fn next(&mut self) -> Option<StoredEvent> {
        if self.reader.is_done() {
            return None;
        }
        // The bytes were written by `encode` in this process (or checked by
        // `UserHistory::from_packed`), so they always decode.
        let event = decode(&mut self.reader, self.previous_us).expect("packed events decode");
        self.previous_us = event.at_us;
        Some(event)
    }
}

fn decode(r: &mut Reader<'_>, previous_us: i64) -> Result<StoredEvent, DecodeError> {
    let at_us = previous_us.wrapping_add(r.varint_i64()?);
    let name = u32::try_from(r.varint()?).map_err(|_| r.bad("event name id"))?;
    let flags = r.varint()?;
    let id = if flags & 1 == 1 { Some(r.u64()?) } else { None };
    let n = usize::try_from(flags >> 1)
        .ok()
        .filter(|n| *n <= super::ingest::MAX_PROPERTIES)
        .ok_or(r.bad("property count"))?;
    let mut properties = Vec::with_capacity(n);
    for _ in 0..n {
        let name = u32::try_from(r.varint()?).map_err(|_| r.bad("property name id"))?;
        properties.push((name, r.f64()?));
    }
    Ok(StoredEvent {
        at_us,
        name,
        id,
        properties,
    })
}

impl UserHistory {
    /// The stored events, in time order.
    pub fn events(&self) -> Events<'_> {
        Events {
            reader: Reader::new(&self.events),
            previous_us: 0,
        }
    }

    /// How many events are stored.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no event is stored.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The packed events (for snapshots).
    pub fn packed(&self) -> &[u8] {
        &self.events
    }

    /// Restores packed events written by [`UserHistory::packed`], checking
    /// that they decode (a snapshot's bytes are not trusted) and that no
    /// name id is past `names` ids.
    pub fn set_packed(&mut self, bytes: &[u8], names: usize) -> Result<(), DecodeError> {
        let mut reader = Reader::new(bytes);
        let (mut previous, mut count) = (0i64, 0u32);
        while !reader.is_done() {
            let event = decode(&mut reader, previous)?;
            if event.name as usize >= names
                || event.properties.iter().any(|(p, _)| *p as usize >= names)
            {
                return Err(reader.bad("name id"));
            }
            if count > 0 && event.at_us < previous {
                return Err(reader.bad("event order"));
            }
            previous = event.at_us;
            count += 1;
        }
        self.events = bytes.into();
        self.count = count;
        self.last_us = previous;
        Ok(())
    }

    /// Bytes this user takes in memory, counting the packed events and the
    /// attributes (approximately, for the store's metrics).
    pub fn heap_bytes(&self) -> usize {
        let attributes: usize = self
            .attributes
            .iter()
            .map(|(_, a)| match a {
                Attribute::Text(t) => 24 + t.len(),
                _ => 24,
            })
            .sum();
        self.events.len() + attributes
    }

    /// Whether an event with this id hash is stored (a scan that skips
    /// names and property values without unpacking them).
    pub fn has_event_id(&self, id: u64) -> bool {
        let mut r = Reader::new(&self.events);
        let mut scan = || -> Result<bool, DecodeError> {
            while !r.is_done() {
                r.varint()?;
                r.varint()?;
                let flags = r.varint()?;
                if flags & 1 == 1 && r.u64()? == id {
                    return Ok(true);
                }
                for _ in 0..flags >> 1 {
                    r.varint()?;
                    r.take(8)?;
                }
            }
            Ok(false)
        };
        // The bytes were packed by `encode` (or checked when restored).
        scan().expect("packed events decode")
    }

    /// Stores an event at its place in time (after any stored event at the
    /// same time).
    pub fn insert(&mut self, event: &StoredEvent) {
        if self.count == 0 || event.at_us >= self.last_us {
            let mut bytes = std::mem::take(&mut self.events).into_vec();
            let mut tail = Vec::with_capacity(24);
            encode(&mut tail, self.last_us, event);
            bytes.reserve_exact(tail.len());
            bytes.extend_from_slice(&tail);
            self.events = bytes.into_boxed_slice();
            self.last_us = event.at_us;
            self.count += 1;
            return;
        }
        let mut all: Vec<StoredEvent> = self.events().collect();
        let at = all.partition_point(|e| e.at_us <= event.at_us);
        all.insert(at, event.clone());
        self.repack(&all);
    }

    /// Keeps only the events `keep` accepts; returns the times of those it
    /// dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(i64) -> bool) -> Vec<i64> {
        let (kept, dropped): (Vec<StoredEvent>, Vec<StoredEvent>) =
            self.events().partition(|e| keep(e.at_us));
        if !dropped.is_empty() {
            self.repack(&kept);
        }
        dropped.into_iter().map(|e| e.at_us).collect()
    }

    fn repack(&mut self, events: &[StoredEvent]) {
        let mut bytes = Vec::new();
        let mut previous = 0;
        for e in events {
            encode(&mut bytes, previous, e);
            previous = e.at_us;
        }
        self.events = bytes.into_boxed_slice();
        self.count = events.len() as u32;
        self.last_us = events.last().map_or(0, |e| e.at_us);
    }

    /// Sets an attribute (sent as null, it is stored as missing).
    pub fn set_attribute(&mut self, name: u32, value: Attribute) {
        match self.attributes.binary_search_by_key(&name, |(n, _)| *n) {
            Ok(i) => self.attributes[i].1 = value,
            Err(i) => self.attributes.insert(i, (name, value)),
        }
    }

    /// The attribute with this name id.
    pub fn attribute(&self, name: u32) -> Option<&Attribute> {
        self.attributes
            .binary_search_by_key(&name, |(n, _)| *n)
            .ok()
            .map(|i| &self.attributes[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_us: i64, name: u32, id: Option<u64>) -> StoredEvent {
        StoredEvent {
            at_us,
            name,
            id,
            properties: vec![(7, at_us as f64 * 0.5)],
        }
    }

    #[test]
    fn late_events_take_their_place_in_time() {
        let mut user = UserHistory::default();
        for (at, id) in [
            (100, Some(1)),
            (300, None),
            (200, Some(2)),
            (300, Some(3)),
            (50, None),
        ] {
            user.insert(&event(at, 1, id));
        }
        let got: Vec<(i64, Option<u64>)> = user.events().map(|e| (e.at_us, e.id)).collect();
        assert_eq!(
            got,
            [
                (50, None),
                (100, Some(1)),
                (200, Some(2)),
                (300, None),
                (300, Some(3))
            ]
        );
        assert!(user.has_event_id(2) && !user.has_event_id(4));
        assert_eq!(user.events().nth(2).unwrap().properties, [(7, 100.0)]);
        assert_eq!(user.len(), 5);
    }

    #[test]
    fn retain_drops_and_reports_times() {
        let mut user = UserHistory::default();
        for at in [10, 20, 30] {
            user.insert(&event(at, 0, None));
        }
        assert_eq!(user.retain(|t| t >= 20), [10]);
        assert_eq!(user.events().map(|e| e.at_us).collect::<Vec<_>>(), [20, 30]);
        user.insert(&event(40, 0, None));
        assert_eq!(user.len(), 3);
    }

    #[test]
    fn packed_bytes_are_checked_when_restored() {
        let mut user = UserHistory::default();
        user.insert(&event(10, 3, Some(9)));
        let mut copy = UserHistory::default();
        copy.set_packed(user.packed(), 8).unwrap();
        assert_eq!(copy, user);
        assert!(
            copy.set_packed(user.packed(), 3).is_err(),
            "name id 3 of 3 names"
        );
        let bytes = user.packed();
        assert!(copy.set_packed(&bytes[..bytes.len() - 1], 8).is_err());
    }
}
