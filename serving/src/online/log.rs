//! The write-ahead log: numbered segment files of checksummed frames, one
//! frame per ingest request (a group of records), appended and made
//! durable with `fdatasync` before the request is acknowledged.
//!
//! A frame is `[payload length: u32 LE][CRC-32 of the payload: u32 LE]
//! [payload]`. A crash can leave the newest segment ending in a partial or
//! garbled frame: that frame was never acknowledged, so recovery cuts the
//! segment at the last whole frame. A bad frame anywhere else (in an older
//! segment, or followed by good frames) is damage, reported with the file
//! and offset, and the server refuses to start rather than guess.
//!
//! Records inside a payload:
//! - `1` event: user, name, time, optional id hash, numeric properties;
//! - `2` user: user, optional signup, consent, attributes;
//! - `3` erasure: user.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::codec::{DecodeError, Put, Reader};
use super::history::Attribute;
use super::ingest::{MAX_ATTRIBUTES, MAX_PROPERTIES};

/// Largest frame read back (a request is bounded by `max_body_bytes`,
/// which is far below this).
pub const MAX_FRAME_BYTES: usize = 1 << 30;

/// One accepted change, as logged.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An event stored.
    Event {
        /// The user.
        user: String,
        /// Event name.
        name: String,
        /// Microseconds since the epoch.
        at_us: i64,
        /// Hash of the event id.
        id: Option<u64>,
        /// Numeric properties.
        properties: Vec<(String, f64)>,
    },
    /// A user created or updated.
    User {
        /// The user.
        user: String,
        /// New signup time, if sent.
        signup_us: Option<i64>,
        /// New consent, if sent.
        consent: Option<bool>,
        /// Attributes set.
        attributes: Vec<(String, Attribute)>,
    },
    /// A user erased.
    Erase {
        /// The user.
        user: String,
    },
}

/// Why the log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A frame is damaged where a crash cannot have left it.
    #[error("{path}: damaged at byte {offset} ({what}); restore the store directory from a backup, or move this file away to start without the changes it holds")]
    Damaged {
        /// The file.
        path: String,
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

impl LogError {
    /// An I/O error on `path`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
        move |source| LogError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The path of segment `seq` in `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:016}.log"))
}

/// The sequence number of a segment file name.
pub fn segment_seq(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Writes an attribute value (shared with snapshots).
pub fn write_attribute(out: &mut Vec<u8>, value: &Attribute) {
    match value {
        Attribute::Null => out.put_u8(0),
        Attribute::Number(x) => {
            out.put_u8(1);
            out.put_f64(*x);
        }
        Attribute::Text(t) => {
            out.put_u8(2);
            out.put_str(t);
        }
    }
}

/// Reads an attribute value written by the log or a snapshot.
pub fn read_attribute(r: &mut Reader<'_>) -> Result<Attribute, DecodeError> {
    Ok(match r.u8()? {
        0 => Attribute::Null,
        1 => Attribute::Number(r.f64()?),
        2 => Attribute::Text(r.str()?.into()),
        _ => return Err(r.bad("attribute kind")),
    })
}

/// Writes an optional time (shared with snapshots).
pub fn write_option_i64(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => out.put_u8(0),
        Some(v) => {
            out.put_u8(1);
            out.put_varint_i64(v);
        }
    }
}

/// Reads an optional time (shared with snapshots).
pub fn read_option_i64(r: &mut Reader<'_>) -> Result<Option<i64>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.varint_i64()?)),
        _ => Err(r.bad("option")),
    }
}

/// Consent as one byte: 0 unknown, 1 no, 2 yes.
pub fn consent_byte(c: Option<bool>) -> u8 {
    match c {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

/// The consent a byte written by [`consent_byte`] stands for.
pub fn read_consent(r: &mut Reader<'_>) -> Result<Option<bool>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(false)),
        2 => Ok(Some(true)),
        _ => Err(r.bad("consent")),
    }
}

/// Appends an event record (tag 1) to a payload.
pub fn encode_event(
    out: &mut Vec<u8>,
    user: &str,
    name: &str,
    at_us: i64,
    id: Option<u64>,
    properties: &[(&str, f64)],
) {
    out.put_u8(1);
    out.put_str(user);
    out.put_str(name);
    out.put_varint_i64(at_us);
    out.put_varint(((properties.len() as u64) << 1) | u64::from(id.is_some()));
    if let Some(id) = id {
        out.put_u64(id);
    }
    for (p, v) in properties {
        out.put_str(p);
        out.put_f64(*v);
    }
}

/// Appends a user record (tag 2) to a payload.
pub fn encode_user<'x>(
    out: &mut Vec<u8>,
    user: &str,
    signup_us: Option<i64>,
    consent: Option<bool>,
    attributes: impl ExactSizeIterator<Item = (&'x str, &'x Attribute)>,
) {
    out.put_u8(2);
    out.put_str(user);
    write_option_i64(out, signup_us);
    out.put_u8(consent_byte(consent));
    out.put_varint(attributes.len() as u64);
    for (name, value) in attributes {
        out.put_str(name);
        write_attribute(out, value);
    }
}

impl Record {
    /// Appends the record to a payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::Event {
                user,
                name,
                at_us,
                id,
                properties,
            } => {
                let properties: Vec<(&str, f64)> =
                    properties.iter().map(|(p, v)| (p.as_str(), *v)).collect();
                encode_event(out, user, name, *at_us, *id, &properties);
            }
            Record::User {
                user,
                signup_us,
                consent,
                attributes,
            } => encode_user(
                out,
                user,
                *signup_us,
                *consent,
                attributes.iter().map(|(n, v)| (n.as_str(), v)),
            ),
            Record::Erase { user } => {
                out.put_u8(3);
                out.put_str(user);
            }
        }
    }

    /// Reads one record.
    pub fn decode(r: &mut Reader<'_>) -> Result<Record, DecodeError> {
        Ok(match RecordRef::decode(r)? {
            RecordRef::Event(e) => Record::Event {
                user: e.user.to_owned(),
                name: e.name.to_owned(),
                at_us: e.at_us,
                id: e.id,
                properties: e
                    .properties
                    .iter()
                    .map(|(p, v)| (p.to_owned(), v))
                    .collect(),
            },
            RecordRef::User(u) => Record::User {
                user: u.user.to_owned(),
                signup_us: u.signup_us,
                consent: u.consent,
                attributes: u
                    .attributes
                    .into_iter()
                    .map(|(n, v)| (n.to_owned(), v))
                    .collect(),
            },
            RecordRef::Erase { user } => Record::Erase {
                user: user.to_owned(),
            },
        })
    }
}

/// A record read in place: its strings borrow the payload, so replaying
/// the log and deciding an ingest request allocate nothing per event.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordRef<'a> {
    /// An event stored.
    Event(EventRef<'a>),
    /// A user created or updated.
    User(UserRef<'a>),
    /// A user erased.
    Erase {
        /// The user.
        user: &'a str,
    },
}

/// An event record, read in place.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRef<'a> {
    /// The user.
    pub user: &'a str,
    /// Event name.
    pub name: &'a str,
    /// Microseconds since the epoch.
    pub at_us: i64,
    /// Hash of the event id.
    pub id: Option<u64>,
    /// Numeric properties.
    pub properties: Properties<'a>,
}

/// A user record, read in place.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRef<'a> {
    /// The user.
    pub user: &'a str,
    /// New signup time, if sent.
    pub signup_us: Option<i64>,
    /// New consent, if sent.
    pub consent: Option<bool>,
    /// Attributes set.
    pub attributes: Vec<(&'a str, Attribute)>,
}

/// An event's numeric properties in the record's bytes (checked when the
/// record was decoded).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Properties<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Properties<'a> {
    /// How many there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// (name, value) pairs, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        let mut r = Reader::new(self.bytes);
        (0..self.count).map(move |_| {
            // Checked by `RecordRef::decode`.
            let name = r.str().expect("checked property name");
            (name, r.f64().expect("checked property value"))
        })
    }
}

impl<'a> RecordRef<'a> {
    /// Reads one record.
    pub fn decode(r: &mut Reader<'a>) -> Result<RecordRef<'a>, DecodeError> {
        Ok(match r.u8()? {
            1 => {
                let user = r.str()?;
                let name = r.str()?;
                let at_us = r.varint_i64()?;
                let flags = r.varint()?;
                let id = if flags & 1 == 1 { Some(r.u64()?) } else { None };
                let count = usize::try_from(flags >> 1)
                    .ok()
                    .filter(|n| *n <= MAX_PROPERTIES)
                    .ok_or(r.bad("property count"))?;
                let mut check = r.clone();
                let start = check.position();
                for _ in 0..count {
                    check.str()?;
                    check.f64()?;
                }
                let bytes = r.take(check.position() - start)?;
                RecordRef::Event(EventRef {
                    user,
                    name,
                    at_us,
                    id,
                    properties: Properties { bytes, count },
                })
            }
            2 => {
                let user = r.str()?;
                let signup_us = read_option_i64(r)?;
                let consent = read_consent(r)?;
                let n = r.count(MAX_ATTRIBUTES)?;
                let mut attributes = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = r.str()?;
                    attributes.push((name, read_attribute(r)?));
                }
                RecordRef::User(UserRef {
                    user,
                    signup_us,
                    consent,
                    attributes,
                })
            }
            3 => RecordRef::Erase { user: r.str()? },
            _ => return Err(r.bad("record tag")),
        })
    }
}

/// Appends one frame holding `payload` to `out`.
pub fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What reading a segment found.
#[derive(Debug)]
pub struct SegmentContents {
    /// Each whole frame's payload, in order.
    pub payloads: Vec<Vec<u8>>,
    /// Bytes up to the end of the last whole frame.
    pub valid_len: u64,
    /// Whether bytes after the last whole frame were cut off (a torn tail).
    pub torn: bool,
}

/// The frame starting at `at`, if one is whole and its checksum matches.
fn frame_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(at..at + 8)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if len > MAX_FRAME_BYTES {
        return None;
    }
    let payload = bytes.get(at + 8..at + 8 + len)?;
    (crc32fast::hash(payload) == crc).then_some((payload, at + 8 + len))
}

/// Reads a segment. In the newest segment (`newest`) a bad frame with
/// nothing readable after it is a torn tail; anywhere else it is damage.
pub fn read_segment(path: &Path, newest: bool) -> Result<SegmentContents, LogError> {
    let bytes = std::fs::read(path).map_err(LogError::io(path))?;
    let mut payloads = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        match frame_at(&bytes, at) {
            Some((payload, next)) => {
                payloads.push(payload.to_vec());
                at = next;
            }
            None => {
                // Torn only if no whole frame follows anywhere after it.
                let later = (at + 1..bytes.len().saturating_sub(8))
                    .any(|p| frame_at(&bytes, p).is_some_and(|(pl, _)| !pl.is_empty()));
                if !newest || later {
                    return Err(LogError::Damaged {
                        path: path.display().to_string(),
                        offset: at as u64,
                        what: "a frame's length or checksum is wrong".into(),
                    });
                }
                return Ok(SegmentContents {
                    payloads,
                    valid_len: at as u64,
                    torn: true,
                });
            }
        }
    }
    Ok(SegmentContents {
        payloads,
        valid_len: at as u64,
        torn: false,
    })
}

/// The segment being appended to.
#[derive(Debug)]
pub struct Segment {
    /// Its sequence number.
    pub seq: u64,
    /// Its path.
    pub path: PathBuf,
    file: File,
    /// Bytes written.
    pub bytes: u64,
}

impl Segment {
    /// Creates segment `seq` in `dir` (it must not exist), and makes its
    /// directory entry durable.
    pub fn create(dir: &Path, seq: u64) -> Result<Segment, LogError> {
        let path = segment_path(dir, seq);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(LogError::io(&path))?;
        sync_dir(dir)?;
        Ok(Segment {
            seq,
            path,
            file,
            bytes: 0,
        })
    }

    /// Appends frames and waits until they are on disk.
    pub fn append_durably(&mut self, frames: &[u8]) -> Result<(), LogError> {
        self.file
            .write_all(frames)
            .map_err(LogError::io(&self.path))?;
        super::failpoint::hit("after-log-write");
        self.file.sync_data().map_err(LogError::io(&self.path))?;
        self.bytes += frames.len() as u64;
        Ok(())
    }
}

/// Makes a directory's entries (new, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io(dir))
}

/// Cuts a torn segment back to its last whole frame.
pub fn truncate(path: &Path, len: u64) -> Result<(), LogError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(LogError::io(path))?;
    file.set_len(len).map_err(LogError::io(path))?;
    file.sync_all().map_err(LogError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        vec![
            Record::Event {
                user: "u1".into(),
                name: "login".into(),
                at_us: -5,
                id: Some(77),
                properties: vec![("s".into(), 1.5)],
            },
            Record::User {
                user: "u1".into(),
                signup_us: Some(3),
                consent: Some(true),
                attributes: vec![
                    ("plan".into(), Attribute::Text("pro".into())),
                    ("n".into(), Attribute::Null),
                ],
            },
            Record::Erase { user: "u2".into() },
        ]
    }

    #[test]
    fn records_read_back() {
        let mut payload = Vec::new();
        for r in records() {
            r.encode(&mut payload);
        }
        let mut reader = Reader::new(&payload);
        let mut back = Vec::new();
        while !reader.is_done() {
            back.push(Record::decode(&mut reader).unwrap());
        }
        assert_eq!(back, records());
    }

    #[test]
    fn a_torn_tail_is_cut_and_damage_elsewhere_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal-0000000000000001.log");
        let mut bytes = Vec::new();
        frame(&mut bytes, b"first");
        frame(&mut bytes, b"second");
        let whole = bytes.len();
        let mut torn = bytes.clone();
        let mut third = Vec::new();
        frame(&mut third, b"third frame");
        torn.extend_from_slice(&third[..third.len() - 3]);
        std::fs::write(&path, &torn).unwrap();
        let read = read_segment(&path, true).unwrap();
        assert_eq!(read.payloads, [b"first".to_vec(), b"second".to_vec()]);
        assert_eq!((read.valid_len, read.torn), (whole as u64, true));
        // The same bytes in an older segment are damage.
        let err = read_segment(&path, false).unwrap_err();
        assert!(
            matches!(&err, LogError::Damaged { offset, .. } if *offset == whole as u64),
            "{err}"
        );
        // A flipped bit in the first frame, with a good frame after it, is damage too.
        let mut flipped = bytes.clone();
        flipped[9] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let err = read_segment(&path, true).unwrap_err();
        assert!(matches!(err, LogError::Damaged { offset: 0, .. }), "{err}");
    }
}
