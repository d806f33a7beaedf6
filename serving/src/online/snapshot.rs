//! Snapshots: the whole store in one checksummed file, written when the
//! log is compacted, so that recovery reads one snapshot and the segments
//! after it instead of every change ever made.
//!
//! `snapshot-<seq>.bin` holds every change in segments up to `seq`. It is
//! written under a temporary name, synced, renamed into place and its
//! directory synced; only then are the segments it covers and older
//! snapshots removed. A crash at any step leaves either the old snapshot
//! with its segments or the new one, never neither. Erased users are not
//! in it, which is how an erasure leaves the disk.
//!
//! Layout: magic `PRSGSNP1`, the last segment covered (u64), the store's
//! clock (i64), the name table, then each user (id, signup, consent, the
//! retention mark, attributes, packed events), and a CRC-32 of everything
//! before it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::codec::{DecodeError, Put, Reader};
use super::history::{Names, UserHistory};
use super::log::{
    consent_byte, read_attribute, read_consent, read_option_i64, sync_dir, write_attribute,
    write_option_i64, LogError,
};

const MAGIC: &[u8; 8] = b"PRSGSNP1";

/// The path of the snapshot covering segments up to `seq`.
pub fn snapshot_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("snapshot-{seq:016}.bin"))
}

/// The sequence number of a snapshot file name.
pub fn snapshot_seq(name: &str) -> Option<u64> {
    name.strip_prefix("snapshot-")?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

/// A snapshot read back.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The last segment it covers.
    pub covers: u64,
    /// The store's clock when it was written.
    pub clock_us: i64,
    /// Names by id.
    pub names: Names,
    /// Every user.
    pub users: HashMap<Box<str>, UserHistory>,
}

fn write_user(out: &mut Vec<u8>, id: &str, user: &UserHistory) {
    out.put_str(id);
    write_option_i64(out, user.signup_us);
    out.put_u8(consent_byte(user.consent));
    write_option_i64(out, user.dropped_until_us);
    out.put_varint(user.attributes.len() as u64);
    for (name, value) in &user.attributes {
        out.put_varint(u64::from(*name));
        write_attribute(out, value);
    }
    out.put_varint(user.packed().len() as u64);
    out.extend_from_slice(user.packed());
}

/// Writes the snapshot covering segments up to `covers`; returns its size.
pub fn write<'a>(
    dir: &Path,
    covers: u64,
    clock_us: i64,
    names: &Names,
    users: impl ExactSizeIterator<Item = (&'a str, &'a UserHistory)>,
) -> Result<u64, LogError> {
    let path = snapshot_path(dir, covers);
    let tmp = path.with_extension("tmp");
    let io = |e| LogError::Io {
        path: tmp.display().to_string(),
        source: e,
    };
    let file = File::create(&tmp).map_err(io)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0u64;
    let mut chunk = Vec::with_capacity(1 << 16);
    chunk.extend_from_slice(MAGIC);
    chunk.put_u64(covers);
    chunk.put_u64(clock_us as u64);
    chunk.put_varint(names.all().len() as u64);
    for name in names.all() {
        chunk.put_str(name);
    }
    let n = users.len();
    chunk.put_varint(n as u64);
    for (i, (id, user)) in users.enumerate() {
        write_user(&mut chunk, id, user);
        if chunk.len() >= 1 << 16 || i + 1 == n {
            crc.update(&chunk);
            out.write_all(&chunk).map_err(io)?;
            size += chunk.len() as u64;
            chunk.clear();
        }
        if i == n / 2 {
            out.flush().map_err(io)?;
            super::failpoint::hit("mid-snapshot");
        }
    }
    crc.update(&chunk);
    chunk.extend_from_slice(&crc.finalize().to_le_bytes());
    out.write_all(&chunk).map_err(io)?;
    size += chunk.len() as u64;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(LogError::io(&path))?;
    sync_dir(dir)?;
    Ok(size)
}

/// Reads a snapshot, checking its checksum and every value in it.
pub fn read(path: &Path) -> Result<Snapshot, LogError> {
    let bytes = std::fs::read(path).map_err(LogError::io(path))?;
    let damaged = |offset: usize, what: String| LogError::Damaged {
        path: path.display().to_string(),
        offset: offset as u64,
        what,
    };
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(damaged(0, "not a Presage store snapshot".into()));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes(tail.try_into().expect("four bytes"));
    if crc32fast::hash(body) != stored {
        return Err(damaged(body.len(), "the checksum does not match".into()));
    }
    let mut r = Reader::new(&body[MAGIC.len()..]);
    decode(&mut r).map_err(|e| damaged(MAGIC.len() + r.position(), e.to_string()))
}

fn decode(r: &mut Reader<'_>) -> Result<Snapshot, DecodeError> {
    let covers = r.u64()?;
    let clock_us = r.u64()? as i64;
    let mut names = Names::default();
    let n_names = r.count(u32::MAX as usize)?;
    for i in 0..n_names {
        let name = r.str()?;
        if names.intern(name) as usize != i {
            return Err(r.bad("duplicate name"));
        }
    }
    let n_users = r.count(usize::MAX)?;
    let mut users = HashMap::with_capacity(n_users.min(1 << 24));
    for _ in 0..n_users {
        let id: Box<str> = r.str()?.into();
        let mut user = UserHistory::default();
        user.signup_us = read_option_i64(r)?;
        user.consent = read_consent(r)?;
        user.dropped_until_us = read_option_i64(r)?;
        let n_attributes = r.count(super::ingest::MAX_ATTRIBUTES * 16)?;
        for _ in 0..n_attributes {
            let name = u32::try_from(r.varint()?)
                .ok()
                .filter(|id| (*id as usize) < n_names)
                .ok_or(r.bad("attribute name id"))?;
            user.set_attribute(name, read_attribute(r)?);
        }
        let n_bytes = r.count(usize::MAX)?;
        user.set_packed(r.take(n_bytes)?, n_names)?;
        if users.insert(id, user).is_some() {
            return Err(r.bad("duplicate user"));
        }
    }
    if !r.is_done() {
        return Err(r.bad("trailing bytes"));
    }
    Ok(Snapshot {
        covers,
        clock_us,
        names,
        users,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::online::history::{Attribute, StoredEvent};

    #[test]
    fn a_snapshot_reads_back_and_a_flipped_byte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut names = Names::default();
        let login = names.intern("login");
        let plan = names.intern("plan");
        let mut user = UserHistory::default();
        user.signup_us = Some(5);
        user.consent = Some(true);
        user.set_attribute(plan, Attribute::Text("pro".into()));
        user.insert(&StoredEvent {
            at_us: 10,
            name: login,
            id: Some(3),
            properties: vec![],
        });
        let users = [("u1", &user), ("u2", &UserHistory::default())];
        write(dir.path(), 7, 99, &names, users.into_iter()).unwrap();
        let path = snapshot_path(dir.path(), 7);
        let back = read(&path).unwrap();
        assert_eq!((back.covers, back.clock_us), (7, 99));
        assert_eq!(back.users.len(), 2);
        assert_eq!(back.users["u1"], user);
        assert_eq!(back.names.name(plan), "plan");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = read(&path).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
