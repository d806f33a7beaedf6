//! The real-time half: live onboarding events in, each user's history kept
//! durably, and a model's features computed from it at scoring time with
//! the same spec training used.
//!
//! - [`ingest`]: request bodies (Presage's contract, Segment's spec) checked
//!   item by item into changes; [`body`] reads a body into those items
//!   without building a JSON tree.
//! - [`history`]: one user's signup, consent, attributes and packed events.
//! - [`store`]: the users in memory, the single writer with group commit,
//!   recovery, compaction, erasure.
//! - [`log`] and [`snapshot`]: the files in the store's directory;
//!   [`codec`] their byte layout.
//! - [`features`]: a model's features for one user, from the spec its
//!   artifact stores.
//! - [`backfill`]: loading exported extracts before the server listens.
//! - [`failpoint`]: named crash points for the durability tests.

pub mod backfill;
pub mod body;
pub mod codec;
pub mod failpoint;
pub mod features;
pub mod history;
pub mod ingest;
pub mod log;
pub mod snapshot;
pub mod store;

/// Now, in microseconds since the epoch (0 if the clock is before 1970).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
