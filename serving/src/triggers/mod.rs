//! Triggers: the server acting on its own for a user, as each model's
//! policy declares ([`presage_models::trigger`]), with messages delivered
//! to a webhook.
//!
//! - **On ingest** (`segment_change`, `probability`): the request's users
//!   are scored before their events are applied and again after (both at
//!   the same moment, so only the events differ); a trigger whose change
//!   happened fires.
//! - **At a deadline** (`no_event`): when a signup arrives while its
//!   deadline (`signup + within_hours`) is still ahead, the deadline is
//!   armed in the journal before the request is answered. An ingested
//!   event that meets it settles it at once; at the deadline the user's
//!   stored events are read again, and the trigger fires unless the event
//!   happened inside the window. After a restart, deadlines that passed
//!   while the server was down fire at once, saying how late.
//! - **Delivery**: a message is written to the journal before its first
//!   attempt and settled only when the receiver answers 2xx or it goes to
//!   the dead letter (`dead-letter.ndjson`, replayed by
//!   `POST /admin/triggers/replay`). Delivery is at least once: a crash
//!   between the receiver's answer and the journal's `done` line delivers
//!   again, with the same idempotency key.
//!
//! The journal and the dead letter live in `<online dir>/triggers/`;
//! erasing a user removes their deadlines, pending messages and dead
//! letters and rewrites both files.

pub mod delivery;
pub mod journal;
pub mod message;
pub mod score;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use presage_models::trigger::TriggerKind;
use tokio::sync::{mpsc, Notify};

use crate::online::now_us;
use crate::state::AppState;
use journal::{Deadline, Entry, Journal, JournalError, Live};
use message::{idempotency_key, Message};

/// How triggers deliver, from `[triggers]` in `serve.toml`.
#[derive(Debug, Clone)]
pub struct TriggerConfig {
    /// The journal's and dead letter's directory.
    pub dir: PathBuf,
    /// The receiver.
    pub webhook_url: reqwest::Url,
    /// The HMAC key of the signature.
    pub webhook_secret: String,
    /// Attempts before the dead letter.
    pub max_attempts: u32,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Time allowed for one attempt.
    pub timeout: Duration,
}

/// How long a deadline that cannot be evaluated yet waits before the next try.
const DEADLINE_RETRY: Duration = Duration::from_secs(5);

/// Most deliveries in flight at once.
const CONCURRENT_DELIVERIES: usize = 16;

struct Inner {
    journal: Journal,
    live: Live,
    /// Armed deadlines by time.
    due: BTreeSet<(i64, String)>,
    /// Armed deadlines' keys by user.
    by_user: HashMap<String, Vec<String>>,
}

impl Inner {
    fn forget_user_key(&mut self, key: &str) {
        let Some(user) = self.live.armed.get(key).map(|d| d.user.clone()) else {
            return;
        };
        if let Some(keys) = self.by_user.get_mut(&user) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }
}

/// The trigger engine.
pub struct Triggers {
    config: TriggerConfig,
    inner: Mutex<Inner>,
    queue: mpsc::UnboundedSender<Message>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Message>>>,
    deadlines_changed: Notify,
    dead_letter: Mutex<()>,
}

impl std::fmt::Debug for Triggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triggers")
            .field("dir", &self.config.dir)
            .finish_non_exhaustive()
    }
}

/// Why a trigger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The journal or dead letter could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl Triggers {
    /// Opens the journal (replaying it); [`Triggers::start`] then runs
    /// delivery and the deadline timer.
    pub fn open(config: TriggerConfig) -> Result<Arc<Triggers>, TriggerError> {
        let (journal, live) = Journal::open(&config.dir)?;
        let due = live
            .armed
            .values()
            .map(|d| (d.due_us, d.key.clone()))
            .collect();
        let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
        for d in live.armed.values() {
            by_user
                .entry(d.user.clone())
                .or_default()
                .push(d.key.clone());
        }
        let (queue, receiver) = mpsc::unbounded_channel();
        for message in live.pending.values() {
            let _ = queue.send(message.clone());
        }
        Ok(Arc::new(Triggers {
            config,
            inner: Mutex::new(Inner {
                journal,
                live,
                due,
                by_user,
            }),
            queue,
            receiver: Mutex::new(Some(receiver)),
            deadlines_changed: Notify::new(),
            dead_letter: Mutex::new(()),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &TriggerConfig {
        &self.config
    }

    /// Starts delivery (including messages pending from before a restart)
    /// and the deadline timer.
    pub fn start(self: &Arc<Self>, state: AppState) {
        let Some(receiver) = self.receiver.lock().expect("not poisoned").take() else {
            return;
        };
        tokio::spawn(self.clone().deliver_all(receiver));
        tokio::spawn(self.clone().run_deadlines(state));
    }

    fn pending_gauge(inner: &Inner) {
        metrics::gauge!("presage_trigger_pending").set(inner.live.pending.len() as f64);
        metrics::gauge!("presage_trigger_deadlines").set(inner.live.armed.len() as f64);
    }

    /// Applies entries to the live state and the journal (durably). Runs
    /// the blocking write off the async workers.
    async fn record(self: &Arc<Self>, entries: Vec<Entry>) -> Result<(), TriggerError> {
        if entries.is_empty() {
            return Ok(());
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.record_now(entries))
            .await
            .expect("the journal writer does not panic")
    }

    fn record_now(&self, entries: Vec<Entry>) -> Result<(), TriggerError> {
        let mut inner = self.inner.lock().expect("not poisoned");
        inner.journal.append(&entries)?;
        let mut armed = false;
        for entry in entries {
            match &entry {
                Entry::Armed(d) if !inner.live.knows(&d.key) => {
                    inner.due.insert((d.due_us, d.key.clone()));
                    inner
                        .by_user
                        .entry(d.user.clone())
                        .or_default()
                        .push(d.key.clone());
                    armed = true;
                }
                Entry::Pending(m) => {
                    if let Some(d) = inner.live.armed.get(&m.idempotency_key) {
                        let slot = (d.due_us, d.key.clone());
                        inner.due.remove(&slot);
                    }
                    inner.forget_user_key(&m.idempotency_key);
                }
                Entry::Done { key, due_us } => {
                    if let Some(due) = due_us {
                        inner.due.remove(&(*due, key.clone()));
                    }
                    inner.forget_user_key(key);
                }
                Entry::Armed(_) => {}
            }
            inner.live.apply(entry);
        }
        if inner.journal.wants_rewrite() {
            let Inner { journal, live, .. } = &mut *inner;
            journal.rewrite(live, now_us())?;
        }
        Self::pending_gauge(&inner);
        drop(inner);
        if armed {
            self.deadlines_changed.notify_one();
        }
        Ok(())
    }

    /// Fires messages: durable in the journal first, then queued for
    /// delivery. Returns once they are durable.
    pub async fn fire(self: &Arc<Self>, messages: Vec<Message>) -> Result<(), TriggerError> {
        let fresh: Vec<Message> = {
            let inner = self.inner.lock().expect("not poisoned");
            messages
                .into_iter()
                .filter(|m| {
                    !inner.live.pending.contains_key(&m.idempotency_key)
                        && !inner.live.done.contains_key(&m.idempotency_key)
                })
                .collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        self.record(
            fresh
                .iter()
                .cloned()
                .map(|m| Entry::Pending(Box::new(m)))
                .collect(),
        )
        .await?;
        for m in fresh {
            metrics::counter!("presage_triggers_fired_total", "model" => m.model.clone(), "trigger" => m.trigger.clone()).increment(1);
            let _ = self.queue.send(m);
        }
        Ok(())
    }

    /// Arms `no_event` deadlines for users whose signup just arrived:
    /// every model's `no_event` trigger whose deadline is still ahead.
    /// Returns once they are durable.
    pub async fn arm(
        self: &Arc<Self>,
        state: &AppState,
        signups: &[(String, i64)],
    ) -> Result<(), TriggerError> {
        if signups.is_empty() {
            return Ok(());
        }
        let now = now_us();
        let catalog = state.store.catalog();
        let mut entries = Vec::new();
        for (model, entry) in &catalog.models {
            let Some(version) = entry.champion() else {
                continue;
            };
            for trigger in &version.policy.triggers {
                let TriggerKind::NoEvent { within_hours, .. } = &trigger.kind else {
                    continue;
                };
                let within_us = (within_hours * 3_600_000_000.0) as i64;
                for (user, signup_us) in signups {
                    let due_us = signup_us.saturating_add(within_us);
                    if due_us <= now {
                        continue;
                    }
                    let key =
                        idempotency_key(&[model, &trigger.name, user, &signup_us.to_string()]);
                    entries.push(Entry::Armed(Deadline {
                        key,
                        model: model.clone(),
                        trigger: trigger.name.clone(),
                        user: user.clone(),
                        signup_us: *signup_us,
                        due_us,
                    }));
                }
            }
        }
        let entries: Vec<Entry> = {
            let inner = self.inner.lock().expect("not poisoned");
            entries
                .into_iter()
                .filter(|e| matches!(e, Entry::Armed(d) if !inner.live.knows(&d.key)))
                .collect()
        };
        self.record(entries).await
    }

    /// Cancels the armed deadlines of `users` whose event has now
    /// happened inside the window (called once an ingest request's events
    /// are stored), so the deadline is settled when the event comes first.
    pub async fn cancel_met(
        self: &Arc<Self>,
        state: &AppState,
        users: &[String],
    ) -> Result<(), TriggerError> {
        let candidates: Vec<Deadline> = {
            let inner = self.inner.lock().expect("not poisoned");
            users
                .iter()
                .filter_map(|u| inner.by_user.get(u))
                .flatten()
                .filter_map(|key| inner.live.armed.get(key))
                .cloned()
                .collect()
        };
        let met: Vec<Entry> = candidates
            .into_iter()
            .filter(|d| score::event_happened(state, d) == Some(true))
            .map(|d| Entry::Done {
                key: d.key,
                due_us: Some(d.due_us),
            })
            .collect();
        if !met.is_empty() {
            metrics::counter!("presage_trigger_deadlines_cancelled_total")
                .increment(met.len() as u64);
        }
        self.record(met).await
    }

    /// Runs deadlines as they come due.
    async fn run_deadlines(self: Arc<Self>, state: AppState) {
        loop {
            let next = {
                let inner = self.inner.lock().expect("not poisoned");
                inner.due.first().cloned()
            };
            let wait = match &next {
                Some((due, _)) => Duration::from_micros((due - now_us()).max(0) as u64),
                None => Duration::from_secs(3600),
            };
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.deadlines_changed.notified() => {}
                }
                continue;
            }
            let Some((slot_us, key)) = next else { continue };
            let deadline = {
                let inner = self.inner.lock().expect("not poisoned");
                inner.live.armed.get(&key).cloned()
            };
            let Some(deadline) = deadline else {
                self.inner
                    .lock()
                    .expect("not poisoned")
                    .due
                    .retain(|(_, k)| k != &key);
                continue;
            };
            let outcome = score::deadline(&state, &deadline);
            let result = match outcome {
                Ok(Some(message)) => self.fire(vec![message]).await,
                Ok(None) => {
                    metrics::counter!("presage_trigger_deadlines_cancelled_total").increment(1);
                    self.record(vec![Entry::Done {
                        key: deadline.key.clone(),
                        due_us: Some(deadline.due_us),
                    }])
                    .await
                }
                Err(why) => {
                    // The store is recovering or the model is not loaded:
                    // try this one again later, without holding up the
                    // deadlines behind it (its journal record keeps the
                    // real time, so the message still says how late).
                    tracing::warn!(trigger = %deadline.trigger, model = %deadline.model, reason = %why, "deadline not evaluated yet; retrying in {} s", DEADLINE_RETRY.as_secs());
                    let mut inner = self.inner.lock().expect("not poisoned");
                    inner.due.remove(&(slot_us, key.clone()));
                    inner
                        .due
                        .insert((now_us() + DEADLINE_RETRY.as_micros() as i64, key));
                    continue;
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "trigger journal write failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Delivers queued messages, several at a time.
    async fn deliver_all(self: Arc<Self>, mut receiver: mpsc::UnboundedReceiver<Message>) {
        let webhook = delivery::Webhook::new(&self.config);
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_DELIVERIES));
        while let Some(message) = receiver.recv().await {
            let permit = slots.clone().acquire_owned().await.expect("never closed");
            let (me, webhook) = (self.clone(), webhook.clone());
            tokio::spawn(async move {
                me.deliver(&webhook, message).await;
                drop(permit);
            });
        }
    }

    async fn deliver(self: &Arc<Self>, webhook: &delivery::Webhook, message: Message) {
        let config = &self.config;
        let mut seed = u64::from_str_radix(&message.idempotency_key[..16], 16).unwrap_or(1) | 1;
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match webhook.post(config, &message).await {
                Ok(()) => break Ok(()),
                Err(why) if attempt >= config.max_attempts => break Err(why),
                Err(why) => {
                    metrics::counter!("presage_trigger_delivery_retries_total").increment(1);
                    tracing::debug!(reason = %why, attempt, "trigger delivery failed; retrying");
                    // xorshift: jitter without a shared generator.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let unit = (seed >> 11) as f64 / (1u64 << 53) as f64;
                    tokio::time::sleep(delivery::backoff(config, attempt, unit)).await;
                }
            }
        };
        let settled = match outcome {
            Ok(()) => {
                metrics::counter!("presage_trigger_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                Ok(())
            }
            Err(why) => {
                metrics::counter!("presage_trigger_deliveries_total", "outcome" => "dead_letter")
                    .increment(1);
                tracing::warn!(trigger = %message.trigger, model = %message.model, attempts = attempt, reason = %why, "trigger message moved to the dead letter");
                let me = self.clone();
                let copy = message.clone();
                tokio::task::spawn_blocking(move || me.append_dead_letter(&copy))
                    .await
                    .expect("the dead letter writer does not panic")
            }
        };
        let done = match settled {
            Ok(()) => {
                self.record(vec![Entry::Done {
                    key: message.idempotency_key.clone(),
                    due_us: None,
                }])
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            // Still pending in the journal: delivered again after a restart.
            tracing::error!(error = %e, "trigger journal write failed after delivery");
        }
    }

    fn dead_letter_path(&self) -> PathBuf {
        self.config.dir.join("dead-letter.ndjson")
    }

    fn append_dead_letter(&self, message: &Message) -> Result<(), TriggerError> {
        let _guard = self.dead_letter.lock().expect("not poisoned");
        let path = self.dead_letter_path();
        let io = |e: std::io::Error| {
            TriggerError::Journal(JournalError::Io {
                path: path.display().to_string(),
                source: e,
            })
        };
        let mut line = serde_json::to_vec(message).expect("messages serialize");
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(())
    }

    /// Reads the dead letter's messages (a partial last line is skipped).
    fn read_dead_letter(&self) -> Result<Vec<Message>, TriggerError> {
        let path = self.dead_letter_path();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(TriggerError::Journal(JournalError::Io {
                    path: path.display().to_string(),
                    source: e,
                }))
            }
        };
        Ok(text
            .split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect())
    }

    fn write_dead_letter(&self, messages: &[Message]) -> Result<(), TriggerError> {
        let path = self.dead_letter_path();
        let mut out = Vec::new();
        for m in messages {
            serde_json::to_writer(&mut out, m).expect("messages serialize");
            out.push(b'\n');
        }
        presage_models::write_atomic(&path, &out).map_err(|e| {
            TriggerError::Journal(JournalError::Io {
                path: path.display().to_string(),
                source: e,
            })
        })
    }

    /// Sends every dead-lettered message again (as a new delivery with its
    /// idempotency key) and empties the dead letter. Returns how many.
    pub async fn replay_dead_letter(self: &Arc<Self>) -> Result<usize, TriggerError> {
        let me = self.clone();
        let messages =
            tokio::task::spawn_blocking(move || -> Result<Vec<Message>, TriggerError> {
                let _guard = me.dead_letter.lock().expect("not poisoned");
                let messages = me.read_dead_letter()?;
                if messages.is_empty() {
                    return Ok(messages);
                }
                // Pending again (durably) before the dead letter forgets them.
                {
                    let mut inner = me.inner.lock().expect("not poisoned");
                    let entries: Vec<Entry> = messages
                        .iter()
                        .cloned()
                        .map(|m| Entry::Pending(Box::new(m)))
                        .collect();
                    inner.journal.append(&entries)?;
                    for m in &messages {
                        inner.live.done.remove(&m.idempotency_key);
                        inner
                            .live
                            .pending
                            .insert(m.idempotency_key.clone(), m.clone());
                    }
                    Self::pending_gauge(&inner);
                }
                me.write_dead_letter(&[])?;
                Ok(messages)
            })
            .await
            .expect("the dead letter reader does not panic")?;
        let n = messages.len();
        for m in messages {
            let _ = self.queue.send(m);
        }
        Ok(n)
    }

    /// Removes a user's deadlines, pending messages and dead letters, and
    /// rewrites the journal and dead letter without them.
    pub async fn erase(self: &Arc<Self>, user: String) -> Result<(), TriggerError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || -> Result<(), TriggerError> {
            let _guard = me.dead_letter.lock().expect("not poisoned");
            {
                let mut inner = me.inner.lock().expect("not poisoned");
                let Inner {
                    journal,
                    live,
                    due,
                    by_user,
                } = &mut *inner;
                by_user.remove(&user);
                let gone: Vec<(i64, String)> = live
                    .armed
                    .values()
                    .filter(|d| d.user == user)
                    .map(|d| (d.due_us, d.key.clone()))
                    .collect();
                for slot in &gone {
                    due.remove(slot);
                    live.armed.remove(&slot.1);
                }
                live.pending.retain(|_, m| m.user_id != user);
                journal.rewrite(live, now_us())?;
                Self::pending_gauge(&inner);
            }
            let kept: Vec<Message> = me
                .read_dead_letter()?
                .into_iter()
                .filter(|m| m.user_id != user)
                .collect();
            me.write_dead_letter(&kept)
        })
        .await
        .expect("the eraser does not panic")
    }

    /// Messages in the dead letter.
    pub fn dead_letter_len(&self) -> usize {
        let _guard = self.dead_letter.lock().expect("not poisoned");
        self.read_dead_letter().map_or(0, |m| m.len())
    }
}
