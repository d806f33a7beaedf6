//! The online store: every user's history in memory, made durable by the
//! log and snapshots in one directory, recovered on start.
//!
//! One writer thread owns every change. Requests hand it their checked
//! changes; it takes whatever has queued up (group commit), decides each
//! change against the current state (duplicate event id, consent, signup,
//! retention), applies the accepted ones in memory, writes them as one
//! frame per request, syncs the log once for the whole group, and only then
//! answers each request. A crash before the sync loses only unanswered
//! requests; the log replays exactly the accepted changes, in order, so
//! recovery rebuilds the same state, and an event id seen before a restart
//! is still a duplicate after it.
//!
//! The writer also compacts: when the log passes `compact_log_bytes`, or
//! `erasure_delay` after an erasure, it starts a new segment, writes a
//! snapshot of the state (dropping events the retention rules no longer
//! keep) and removes the older segments and snapshot. After that, an erased
//! user's id is in no file of the directory.
//!
//! Retention: with a known signup, an event is kept while it is in the
//! first `retain_days_after_signup` days after signup or in the last
//! `retain_last_days` days before the store's clock (the newest event time
//! accepted). Events of users without a known signup are kept until it is
//! known. This is what any spec within those horizons can read; a model
//! that reads further is refused for online scoring (see
//! [`super::features`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use presage_models::time::days_to_us;
use tokio::sync::oneshot;

use super::codec::Reader;
use super::history::{Names, StoredEvent, UserHistory};
use super::ingest::{Changes, Traits};
use super::log::{self, LogError, Record, RecordRef, Segment};
use super::snapshot;

/// How the store keeps data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store's directory.
    pub dir: PathBuf,
    /// Events in the first this many days after signup are kept.
    pub retain_days_after_signup: f64,
    /// Events in the last this many days before the store's clock are kept.
    pub retain_last_days: f64,
    /// Store events only of users whose consent is known to be given.
    pub require_consent: bool,
    /// Which identify traits carry the signup time and consent.
    pub traits: Traits,
    /// Most items in one ingest request.
    pub max_events_per_request: usize,
    /// Compact when the log passes this many bytes.
    pub compact_log_bytes: u64,
    /// Compact this long after an erasure (so the id leaves the disk).
    pub erasure_delay: Duration,
}

/// Why the store cannot do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Recovery has not finished.
    #[error("the online store is recovering its state; retry when /readyz answers 200")]
    Recovering,
    /// The store failed (a disk error, or a damaged file at start-up) and
    /// takes no more changes.
    #[error("the online store failed: {0}")]
    Failed(String),
}

/// What happened to a request's changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Outcome {
    /// Events stored.
    pub accepted: u64,
    /// Users created or updated.
    pub users_updated: u64,
    /// Events whose id was seen before (counted once).
    pub duplicates: u64,
    /// Events dropped: before their user's signup.
    pub dropped_before_signup: u64,
    /// Events dropped: older than anything a served spec can read.
    pub dropped_expired: u64,
    /// Events dropped: their user has not consented.
    pub dropped_no_consent: u64,
}

impl Outcome {
    /// Adds another request's counts to these.
    pub fn add(&mut self, other: &Outcome) {
        self.accepted += other.accepted;
        self.users_updated += other.users_updated;
        self.duplicates += other.duplicates;
        self.dropped_before_signup += other.dropped_before_signup;
        self.dropped_expired += other.dropped_expired;
        self.dropped_no_consent += other.dropped_no_consent;
    }
}

/// The in-memory state.
#[derive(Debug, Default)]
pub struct State {
    /// Users by id.
    pub users: HashMap<Box<str>, UserHistory>,
    /// Names by id.
    pub names: Names,
    /// The newest event time accepted.
    pub clock_us: i64,
    heap_bytes: usize,
}

/// Fixed cost of one user in the map, besides its packed events and
/// attributes (key, record, table slot).
const USER_OVERHEAD: usize = std::mem::size_of::<UserHistory>() + 16 + 8;

impl State {
    /// Approximate bytes the users take in memory.
    pub fn heap_bytes(&self) -> usize {
        self.heap_bytes
            + self.names.heap_bytes()
            + self.users.capacity() * (std::mem::size_of::<(Box<str>, UserHistory)>() + 1)
    }

    fn user_cost(id: &str, user: &UserHistory) -> usize {
        USER_OVERHEAD + id.len() + user.heap_bytes()
    }

    /// Applies a logged record unconditionally (replay); returns, for a
    /// user record, how many stored events it removed.
    fn apply(&mut self, record: &RecordRef<'_>) -> usize {
        match record {
            RecordRef::Event(e) => {
                let event = StoredEvent {
                    at_us: e.at_us,
                    name: self.names.intern(e.name),
                    id: e.id,
                    properties: e
                        .properties
                        .iter()
                        .map(|(p, v)| (self.names.intern(p), v))
                        .collect(),
                };
                self.clock_us = self.clock_us.max(e.at_us);
                self.with_user(e.user, |u| u.insert(&event));
                0
            }
            RecordRef::User(u) => {
                let attributes: Vec<_> = u
                    .attributes
                    .iter()
                    .map(|(n, v)| (self.names.intern(n), v.clone()))
                    .collect();
                self.with_user(u.user, |user| {
                    update_user(user, u.signup_us, u.consent, attributes)
                })
            }
            RecordRef::Erase { user } => {
                if let Some(old) = self.users.remove(*user) {
                    self.heap_bytes -= Self::user_cost(user, &old);
                }
                0
            }
        }
    }

    /// Runs `f` on the user (created if new), keeping the byte count.
    fn with_user<R>(&mut self, id: &str, f: impl FnOnce(&mut UserHistory) -> R) -> R {
        let user = match self.users.get_mut(id) {
            Some(user) => user,
            None => {
                self.heap_bytes += Self::user_cost(id, &UserHistory::default());
                self.users.entry(id.into()).or_default()
            }
        };
        let before = user.heap_bytes();
        let out = f(user);
        self.heap_bytes = self.heap_bytes + user.heap_bytes() - before;
        out
    }
}

/// Applies a user change; returns how many stored events it removed
/// (events before a new signup, or all of them when consent is withdrawn).
fn update_user(
    user: &mut UserHistory,
    signup_us: Option<i64>,
    consent: Option<bool>,
    attributes: Vec<(u32, super::history::Attribute)>,
) -> usize {
    let mut removed = 0;
    if let Some(signup) = signup_us {
        user.signup_us = Some(signup);
        removed += user.retain(|t| t >= signup).len();
    }
    if let Some(c) = consent {
        user.consent = Some(c);
        if !c {
            removed += user.retain(|_| false).len();
        }
    }
    for (name, value) in attributes {
        user.set_attribute(name, value);
    }
    removed
}

enum Job {
    Apply {
        changes: Changes,
        reply: oneshot::Sender<Result<Outcome, StoreError>>,
    },
    Erase {
        user: String,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Compact {
        reply: oneshot::Sender<Result<CompactReport, StoreError>>,
    },
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CompactReport {
    /// Users in the snapshot written.
    pub users: u64,
    /// Events dropped by the retention rules.
    pub events_dropped: u64,
    /// Bytes of the store's files afterwards.
    pub disk_bytes: u64,
}

/// Counters and gauges of the store, read by `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes of the store's files.
    pub disk_bytes: AtomicU64,
    /// Milliseconds recovery took.
    pub recovery_ms: AtomicU64,
    /// Compactions since start.
    pub compactions: AtomicU64,
}

/// The online store.
pub struct OnlineStore {
    config: StoreConfig,
    state: RwLock<State>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    ready: AtomicBool,
    failure: Mutex<Option<String>>,
    /// Counters and gauges.
    pub stats: Stats,
    _lock: std::fs::File,
}

impl std::fmt::Debug for OnlineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineStore")
            .field("dir", &self.config.dir)
            .finish_non_exhaustive()
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The directory could not be created or locked.
    #[error("{path}: {message}")]
    Directory {
        /// The directory.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl OnlineStore {
    /// Opens (creating) the store directory, takes its lock, and starts
    /// recovery on a thread of its own; the store answers
    /// [`StoreError::Recovering`] until recovery is done.
    pub fn open(config: StoreConfig) -> Result<Arc<OnlineStore>, OpenError> {
        let dir_error = |message: String| OpenError::Directory {
            path: config.dir.display().to_string(),
            message,
        };
        std::fs::create_dir_all(&config.dir).map_err(|e| dir_error(e.to_string()))?;
        let lock_path = config.dir.join("LOCK");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| dir_error(e.to_string()))?;
        lock.try_lock().map_err(|_| {
            dir_error(
                "another presage-serve uses this online store; give each server its own [online] dir"
                    .into(),
            )
        })?;
        let store = Arc::new(OnlineStore {
            config,
            state: RwLock::new(State::default()),
            jobs: Mutex::new(None),
            ready: AtomicBool::new(false),
            failure: Mutex::new(None),
            stats: Stats::default(),
            _lock: lock,
        });
        let recovering = store.clone();
        std::thread::Builder::new()
            .name("online-recovery".into())
            .spawn(move || recovering.recover_and_run())
            .map_err(|e| OpenError::Directory {
                path: String::new(),
                message: format!("cannot start the store's thread: {e}"),
            })?;
        Ok(store)
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Whether the store takes requests, and why not.
    pub fn status(&self) -> Result<(), StoreError> {
        if let Some(failure) = self.failure.lock().expect("not poisoned").clone() {
            return Err(StoreError::Failed(failure));
        }
        if !self.ready.load(Ordering::Acquire) {
            return Err(StoreError::Recovering);
        }
        Ok(())
    }

    fn fail(&self, message: String) {
        tracing::error!(error = %message, "online store failed; it takes no more changes");
        self.failure
            .lock()
            .expect("not poisoned")
            .get_or_insert(message);
    }

    fn recover_and_run(self: Arc<Self>) {
        let started = Instant::now();
        let recovered = recover(&self.config.dir);
        let (state, segment) = match recovered {
            Ok(found) => found,
            Err(e) => {
                self.fail(e.to_string());
                return;
            }
        };
        let users = state.users.len();
        *self.state.write().expect("not poisoned") = state;
        self.stats
            .disk_bytes
            .store(dir_bytes(&self.config.dir), Ordering::Relaxed);
        let elapsed = started.elapsed();
        self.stats
            .recovery_ms
            .store(elapsed.as_millis() as u64, Ordering::Relaxed);
        tracing::info!(
            users,
            millis = elapsed.as_millis() as u64,
            "online store recovered"
        );
        let (tx, rx) = mpsc::channel();
        *self.jobs.lock().expect("not poisoned") = Some(tx);
        self.ready.store(true, Ordering::Release);
        Writer {
            store: &self,
            segment,
            erase_pending: None,
        }
        .run(rx);
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.status()?;
        let jobs = self.jobs.lock().expect("not poisoned");
        let sender = jobs.as_ref().ok_or(StoreError::Recovering)?;
        sender
            .send(job)
            .map_err(|_| StoreError::Failed("the store's writer stopped".into()))
    }

    /// Applies checked changes; answers once they are durable.
    pub async fn apply(&self, changes: Changes) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Apply { changes, reply })?;
        answer
            .await
            .map_err(|_| StoreError::Failed("the store's writer stopped".into()))?
    }

    /// Erases a user from memory, and from disk at the next compaction
    /// (at most `erasure_delay` later). Answers whether the user existed,
    /// once the erasure is durable.
    pub async fn erase(&self, user: String) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Erase { user, reply })?;
        answer
            .await
            .map_err(|_| StoreError::Failed("the store's writer stopped".into()))?
    }

    /// Compacts now.
    pub async fn compact(&self) -> Result<CompactReport, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Compact { reply })?;
        answer
            .await
            .map_err(|_| StoreError::Failed("the store's writer stopped".into()))?
    }

    /// Reads the state.
    pub fn read(&self) -> Result<RwLockReadGuard<'_, State>, StoreError> {
        self.status()?;
        Ok(self.state.read().expect("not poisoned"))
    }

    /// Whether an event at `at_us` of a user who signed up at `signup_us`
    /// is kept, with the store's clock at `clock_us`.
    pub fn retains(&self, at_us: i64, signup_us: Option<i64>, clock_us: i64) -> bool {
        match signup_us {
            None => true,
            Some(signup) => {
                at_us < signup.saturating_add(days_to_us(self.config.retain_days_after_signup))
                    || at_us >= clock_us.saturating_sub(days_to_us(self.config.retain_last_days))
            }
        }
    }
}

/// Total size of the files in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Rebuilds the state from the newest snapshot and the segments after it,
/// cutting a torn tail, removing files a crash left behind, and opening a
/// new segment to append to.
fn recover(dir: &Path) -> Result<(State, Segment), LogError> {
    let mut snapshots = Vec::new();
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LogError::io(dir))? {
        let entry = entry.map_err(LogError::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seq) = snapshot::snapshot_seq(&name) {
            snapshots.push(seq);
        } else if let Some(seq) = log::segment_seq(&name) {
            segments.push(seq);
        } else if name.ends_with(".tmp") {
            // A snapshot a crash interrupted; the files it would replace are intact.
            std::fs::remove_file(entry.path()).map_err(LogError::io(&entry.path()))?;
        }
    }
    snapshots.sort_unstable();
    segments.sort_unstable();
    let mut state = State::default();
    let covered = match snapshots.last() {
        Some(&seq) => {
            let snap = snapshot::read(&snapshot::snapshot_path(dir, seq))?;
            state.names = snap.names;
            state.clock_us = snap.clock_us;
            state.users = snap.users;
            state.heap_bytes = state
                .users
                .iter()
                .map(|(id, u)| State::user_cost(id, u))
                .sum();
            seq
        }
        None => 0,
    };
    let newest = segments.last().copied();
    for &seq in segments.iter().filter(|s| **s > covered) {
        let path = log::segment_path(dir, seq);
        let contents = log::read_segment(&path, Some(seq) == newest)?;
        if contents.torn {
            tracing::warn!(
                file = %path.display(),
                "cutting an unacknowledged partial write at the end of the log"
            );
            log::truncate(&path, contents.valid_len)?;
        }
        for payload in contents.payloads {
            let mut reader = Reader::new(&payload);
            while !reader.is_done() {
                let record = RecordRef::decode(&mut reader).map_err(|e| LogError::Damaged {
                    path: path.display().to_string(),
                    offset: 0,
                    what: format!("a record does not decode ({e})"),
                })?;
                state.apply(&record);
            }
        }
    }
    // Left over by a crash between writing a snapshot and removing what it covers.
    for &seq in segments.iter().filter(|s| **s <= covered) {
        let path = log::segment_path(dir, seq);
        std::fs::remove_file(&path).map_err(LogError::io(&path))?;
    }
    for &seq in snapshots.iter().filter(|s| **s < covered) {
        let path = snapshot::snapshot_path(dir, seq);
        std::fs::remove_file(&path).map_err(LogError::io(&path))?;
    }
    let next = newest.unwrap_or(0).max(covered) + 1;
    let segment = Segment::create(dir, next)?;
    Ok((state, segment))
}

/// The writer thread's state.
struct Writer<'s> {
    store: &'s OnlineStore,
    segment: Segment,
    erase_pending: Option<Instant>,
}

/// Most requests committed together.
const MAX_GROUP: usize = 256;

impl Writer<'_> {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        loop {
            let first = match self.erase_pending {
                Some(since) => {
                    let wait = self
                        .store
                        .config
                        .erasure_delay
                        .saturating_sub(since.elapsed());
                    match rx.recv_timeout(wait) {
                        Ok(job) => Some(job),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                None => match rx.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                },
            };
            let mut jobs: Vec<Job> = first.into_iter().collect();
            while jobs.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.commit(jobs) {
                self.store.fail(e.to_string());
                return;
            }
            let erase_due = self
                .erase_pending
                .is_some_and(|since| since.elapsed() >= self.store.config.erasure_delay);
            if erase_due || self.segment.bytes >= self.store.config.compact_log_bytes {
                if let Err(e) = self.compact() {
                    self.store.fail(e.to_string());
                    return;
                }
            }
        }
    }

    /// Decides and applies a group of jobs, logs them in one sync, answers them.
    fn commit(&mut self, jobs: Vec<Job>) -> Result<(), LogError> {
        enum Answer {
            Applied(oneshot::Sender<Result<Outcome, StoreError>>, Outcome),
            Erased(oneshot::Sender<Result<bool, StoreError>>, bool),
        }
        let mut frames = Vec::new();
        let mut answers = Vec::new();
        let mut compactions = Vec::new();
        {
            let mut state = self.store.state.write().expect("not poisoned");
            for job in jobs {
                let mut payload = Vec::new();
                match job {
                    Job::Apply { changes, reply } => {
                        let outcome = self.decide(&mut state, &changes, &mut payload);
                        answers.push(Answer::Applied(reply, outcome));
                    }
                    Job::Erase { user, reply } => {
                        let existed = match state.users.remove(user.as_str()) {
                            Some(old) => {
                                state.heap_bytes -= State::user_cost(&user, &old);
                                true
                            }
                            None => false,
                        };
                        Record::Erase { user }.encode(&mut payload);
                        answers.push(Answer::Erased(reply, existed));
                    }
                    Job::Compact { reply } => compactions.push(reply),
                }
                if !payload.is_empty() {
                    log::frame(&mut frames, &payload);
                }
            }
        }
        if !frames.is_empty() {
            self.segment.append_durably(&frames)?;
            self.store
                .stats
                .disk_bytes
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
            super::failpoint::hit("after-log-sync");
        }
        for answer in answers {
            match answer {
                Answer::Applied(reply, outcome) => {
                    let _ = reply.send(Ok(outcome));
                }
                Answer::Erased(reply, existed) => {
                    self.erase_pending.get_or_insert_with(Instant::now);
                    let _ = reply.send(Ok(existed));
                }
            }
        }
        if !compactions.is_empty() {
            let report = self.compact();
            for reply in compactions {
                let _ = reply.send(
                    report
                        .as_ref()
                        .map(Clone::clone)
                        .map_err(|e| StoreError::Failed(e.to_string())),
                );
            }
            report?;
        }
        Ok(())
    }

    /// Decides each change of one request against the state, applies the
    /// accepted ones and appends their records to `payload`. A duplicate
    /// inside the request is found like any other: the first copy is in
    /// the user's history by the time the second is decided.
    fn decide(&self, state: &mut State, changes: &Changes, payload: &mut Vec<u8>) -> Outcome {
        let config = &self.store.config;
        let mut outcome = Outcome::default();
        for (record, span) in changes.records() {
            match &record {
                RecordRef::Event(e) => {
                    let user = state.users.get(e.user);
                    let (signup, consent) = user.map_or((None, None), |u| (u.signup_us, u.consent));
                    if consent == Some(false) || (config.require_consent && consent != Some(true)) {
                        outcome.dropped_no_consent += 1;
                        continue;
                    }
                    if signup.is_some_and(|s| e.at_us < s) {
                        outcome.dropped_before_signup += 1;
                        continue;
                    }
                    let clock = state.clock_us.max(e.at_us);
                    if !self.store.retains(e.at_us, signup, clock) {
                        outcome.dropped_expired += 1;
                        continue;
                    }
                    if let (Some(id), Some(user)) = (e.id, user) {
                        if user.has_event_id(id) {
                            outcome.duplicates += 1;
                            continue;
                        }
                    }
                    outcome.accepted += 1;
                }
                RecordRef::User(u) => {
                    outcome.users_updated += 1;
                    let removed = state.apply(&record) as u64;
                    if u.consent == Some(false) {
                        outcome.dropped_no_consent += removed;
                    } else {
                        outcome.dropped_before_signup += removed;
                    }
                    payload.extend_from_slice(&changes.bytes()[span]);
                    continue;
                }
                // Ingest never sends one; erasure is its own job.
                RecordRef::Erase { .. } => continue,
            }
            state.apply(&record);
            payload.extend_from_slice(&changes.bytes()[span]);
        }
        outcome
    }

    /// Starts a new segment, snapshots the state into what the old ones
    /// covered, and removes them.
    fn compact(&mut self) -> Result<CompactReport, LogError> {
        let dir = self.store.config.dir.clone();
        let covered = self.segment.seq;
        self.segment = Segment::create(&dir, covered + 1)?;
        let mut events_dropped = 0u64;
        {
            let mut state = self.store.state.write().expect("not poisoned");
            let clock = state.clock_us;
            let State {
                users, heap_bytes, ..
            } = &mut *state;
            for (id, user) in users.iter_mut() {
                let Some(signup) = user.signup_us else {
                    continue;
                };
                let before = State::user_cost(id, user);
                let dropped = user.retain(|t| self.store.retains(t, Some(signup), clock));
                if let Some(last) = dropped.iter().max() {
                    events_dropped += dropped.len() as u64;
                    user.dropped_until_us =
                        Some(user.dropped_until_us.unwrap_or(i64::MIN).max(*last));
                    *heap_bytes = *heap_bytes + State::user_cost(id, user) - before;
                }
            }
        }
        let users = {
            let state = self.store.state.read().expect("not poisoned");
            snapshot::write(
                &dir,
                covered,
                state.clock_us,
                &state.names,
                state.users.iter().map(|(id, u)| (&**id, u)),
            )?;
            state.users.len() as u64
        };
        super::failpoint::hit("after-snapshot");
        for entry in std::fs::read_dir(&dir).map_err(LogError::io(&dir))? {
            let entry = entry.map_err(LogError::io(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let old_segment = log::segment_seq(&name).is_some_and(|s| s <= covered);
            let old_snapshot = snapshot::snapshot_seq(&name).is_some_and(|s| s < covered);
            if old_segment || old_snapshot {
                std::fs::remove_file(entry.path()).map_err(LogError::io(&entry.path()))?;
            }
        }
        log::sync_dir(&dir)?;
        self.erase_pending = None;
        let disk_bytes = dir_bytes(&dir);
        self.store
            .stats
            .disk_bytes
            .store(disk_bytes, Ordering::Relaxed);
        self.store.stats.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(CompactReport {
            users,
            events_dropped,
            disk_bytes,
        })
    }
}
