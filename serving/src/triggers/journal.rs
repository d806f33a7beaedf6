//! The triggers' durable state: one append-only file of JSON lines
//! (`<online dir>/triggers/journal.ndjson`), made durable with `fdatasync`
//! before anything depending on it is acknowledged.
//!
//! - `armed`: a `no_event` deadline, written before the ingest request
//!   that set the user's signup is answered, so it fires after a restart;
//! - `pending`: a message to deliver, written before the first attempt, so
//!   a crash redelivers it (at least once);
//! - `done`: a deadline cancelled, or a message delivered or dead-lettered
//!   (a later `pending` for the same key is a replay of the dead letter).
//!
//! Replaying the lines rebuilds what is live. A crash can leave a partial
//! last line; it was never acknowledged and is cut. A bad line followed by
//! good ones is damage: the server refuses to start and names the file
//! and line. The file is rewritten with only what is live when it grows
//! past [`REWRITE_BYTES`] and after an erasure (so an erased user's id is
//! gone from disk). JSON lines rather than the store's binary frames: the
//! volume is small and an operator can read them.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};

use presage_models::write_atomic;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::message::Message;

/// Rewrite the journal when it passes this size.
pub const REWRITE_BYTES: u64 = 8 << 20;

/// A `no_event` deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deadline {
    /// The firing's idempotency key.
    pub key: String,
    /// Model name.
    pub model: String,
    /// Trigger name.
    pub trigger: String,
    /// The user.
    pub user: String,
    /// The user's signup (microseconds since the epoch).
    pub signup_us: i64,
    /// When it fires.
    pub due_us: i64,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// A deadline set.
    Armed(Deadline),
    /// A message to deliver.
    Pending(Box<Message>),
    /// A key settled: a deadline cancelled, a message delivered or
    /// dead-lettered. `due_us` keeps a deadline's time, so its key is
    /// remembered (and not armed again) until then.
    Done {
        /// The key.
        key: String,
        /// The deadline's time, for a deadline's key.
        due_us: Option<i64>,
    },
}

/// What the journal holds that is still live.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Live {
    /// Deadlines not yet fired or cancelled, by key.
    pub armed: BTreeMap<String, Deadline>,
    /// Messages not yet delivered or dead-lettered, by key.
    pub pending: BTreeMap<String, Message>,
    /// Keys settled, with a deadline's time.
    pub done: HashMap<String, Option<i64>>,
}

impl Live {
    /// Whether `key` was ever armed, pending or settled.
    pub fn knows(&self, key: &str) -> bool {
        self.armed.contains_key(key)
            || self.pending.contains_key(key)
            || self.done.contains_key(key)
    }

    /// Applies one entry.
    pub fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Armed(d) => {
                if !self.knows(&d.key) {
                    self.armed.insert(d.key.clone(), d);
                }
            }
            Entry::Pending(m) => {
                // After a `done`, a `pending` is a replay of the dead
                // letter: the message is due again.
                self.armed.remove(&m.idempotency_key);
                self.done.remove(&m.idempotency_key);
                self.pending.insert(m.idempotency_key.clone(), *m);
            }
            Entry::Done { key, due_us } => {
                self.armed.remove(&key);
                self.pending.remove(&key);
                self.done.insert(key, due_us);
            }
        }
    }

    /// The entries that rebuild this state: live deadlines and messages,
    /// and settled deadline keys whose time is still ahead of `now_us`
    /// (older ones cannot be armed again: arming needs a future deadline).
    fn entries(&self, now_us: i64) -> Vec<Entry> {
        let done = self
            .done
            .iter()
            .filter(|(_, due)| due.is_some_and(|d| d >= now_us))
            .map(|(key, due_us)| Entry::Done {
                key: key.clone(),
                due_us: *due_us,
            });
        let mut out: Vec<Entry> = done.collect();
        out.sort_by(|a, b| match (a, b) {
            (Entry::Done { key: x, .. }, Entry::Done { key: y, .. }) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        });
        out.extend(self.armed.values().cloned().map(Entry::Armed));
        out.extend(
            self.pending
                .values()
                .cloned()
                .map(|m| Entry::Pending(Box::new(m))),
        );
        out
    }
}

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A line is damaged where a crash cannot have left it.
    #[error("{path}: line {line} is damaged ({what}); restore the file from a backup, or move it away to start without the deadlines and messages it holds")]
    Damaged {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    bytes: u64,
}

impl Journal {
    /// Opens (creating) the journal in `dir` and replays it.
    pub fn open(dir: &Path) -> Result<(Journal, Live), JournalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join("journal.ndjson");
        // Temporary files of a rewrite a crash interrupted (they may hold
        // an erased user's id); the files they would replace are intact.
        for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".tmp-") {
                std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            }
        }
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut live = Live::default();
        let mut valid = 0usize;
        let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let last = i + 1 == lines.len();
            let whole = line.ends_with(b"\n");
            match serde_json::from_slice::<Entry>(line) {
                Ok(entry) if whole => live.apply(entry),
                // A partial last line: never acknowledged.
                _ if last => break,
                Ok(_) => unreachable!("only the last line can lack its newline"),
                Err(e) => {
                    return Err(JournalError::Damaged {
                        path: path.display().to_string(),
                        line: i + 1,
                        what: e.to_string(),
                    })
                }
            }
            valid += line.len();
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if valid < text.len() {
            tracing::warn!(file = %path.display(), "cutting an unacknowledged partial line at the end of the trigger journal");
            file.set_len(valid as u64).map_err(io(&path))?;
        }
        let journal = Journal {
            path,
            file,
            bytes: valid as u64,
        };
        Ok((journal, live))
    }

    /// Appends entries and makes them durable.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        for entry in entries {
            serde_json::to_writer(&mut out, entry).expect("entries serialize");
            out.push(b'\n');
        }
        self.file.write_all(&out).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        self.bytes += out.len() as u64;
        Ok(())
    }

    /// Whether the journal has grown enough to be rewritten.
    pub fn wants_rewrite(&self) -> bool {
        self.bytes > REWRITE_BYTES
    }

    /// Replaces the file with only what `live` holds (atomically).
    pub fn rewrite(&mut self, live: &Live, now_us: i64) -> Result<(), JournalError> {
        let mut out = Vec::new();
        for entry in live.entries(now_us) {
            serde_json::to_writer(&mut out, &entry).expect("entries serialize");
            out.push(b'\n');
        }
        write_atomic(&self.path, &out).map_err(io(&self.path))?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        self.bytes = out.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline(key: &str, due_us: i64) -> Deadline {
        Deadline {
            key: key.into(),
            model: "churn".into(),
            trigger: "nudge".into(),
            user: "u1".into(),
            signup_us: 0,
            due_us,
        }
    }

    #[test]
    fn replay_keeps_what_is_live_and_cuts_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, live) = Journal::open(dir.path()).unwrap();
        assert_eq!(live, Live::default());
        journal
            .append(&[
                Entry::Armed(deadline("a", 10)),
                Entry::Armed(deadline("b", 20)),
                Entry::Done {
                    key: "a".into(),
                    due_us: Some(10),
                },
            ])
            .unwrap();
        drop(journal);
        let path = dir.path().join("journal.ndjson");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"armed\": {\"key\": \"c\"").unwrap();
        drop(f);
        let (_, live) = Journal::open(dir.path()).unwrap();
        assert_eq!(live.armed.keys().collect::<Vec<_>>(), ["b"]);
        assert!(live.knows("a"));
        assert!(!std::fs::read_to_string(&path).unwrap().contains("\"c\""));

        // Damage before the last line refuses to start, naming the line.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("x{text}")).unwrap();
        let err = Journal::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 1 is damaged"), "{err}");
    }

    #[test]
    fn a_replayed_dead_letter_is_pending_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        let message: Message = serde_json::from_value(serde_json::json!({
            "idempotency_key": "k", "trigger": "t", "on": "probability", "model": "m",
            "version": 1, "user_id": "u1", "segment_before": "low", "segment": "high",
            "probability": 0.9, "onboarding": {}, "reason": "r", "fired_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        let pending = Entry::Pending(Box::new(message));
        let done = Entry::Done {
            key: "k".into(),
            due_us: None,
        };
        journal.append(&[pending.clone(), done, pending]).unwrap();
        let (_, live) = Journal::open(dir.path()).unwrap();
        assert_eq!(live.pending.keys().collect::<Vec<_>>(), ["k"]);
        assert!(!live.done.contains_key("k"));
    }

    #[test]
    fn rewrite_keeps_live_entries_and_future_settled_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, mut live) = Journal::open(dir.path()).unwrap();
        let entries = [
            Entry::Armed(deadline("old", 5)),
            Entry::Done {
                key: "old".into(),
                due_us: Some(5),
            },
            Entry::Armed(deadline("soon", 50)),
            Entry::Done {
                key: "soon".into(),
                due_us: Some(50),
            },
            Entry::Armed(deadline("live", 60)),
        ];
        journal.append(&entries).unwrap();
        for e in entries {
            live.apply(e);
        }
        journal.rewrite(&live, 40).unwrap();
        let (_, back) = Journal::open(dir.path()).unwrap();
        assert_eq!(back.armed.keys().collect::<Vec<_>>(), ["live"]);
        assert!(back.knows("soon") && !back.knows("old"));
    }
}
