//! `presage-serve --backfill-users PATH --backfill-events PATH`: loads the
//! NDJSON files `presage-train export-online` writes (the same items
//! `POST /users` and `POST /events` take) into the store before the server
//! starts listening, so the first day in production has complete history.
//!
//! Lines go through the ingest path in chunks (checked, deduplicated by
//! event id, logged durably), so a backfill that is interrupted and run
//! again stores each event once. Rejected lines are counted and the first
//! few reported with their file and line number.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::ingest::{self, Expect};
use super::store::{OnlineStore, Outcome, StoreError};

/// Lines parsed and applied together.
const CHUNK_LINES: usize = 10_000;
/// Rejected lines reported one by one.
const LISTED: usize = 5;

/// What a backfill of one file did.
#[derive(Debug, Clone, Default)]
pub struct BackfillReport {
    /// Lines read.
    pub lines: u64,
    /// Accepted, duplicate and dropped counts.
    pub outcome: Outcome,
    /// Lines rejected.
    pub rejected: u64,
    /// The first rejected lines: `path:line: reason`.
    pub first_rejections: Vec<String>,
}

/// Why a backfill stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Waits until the store has recovered (or failed).
pub async fn wait_recovered(store: &OnlineStore) -> Result<(), StoreError> {
    loop {
        match store.status() {
            Err(StoreError::Recovering) => tokio::time::sleep(Duration::from_millis(20)).await,
            other => return other,
        }
    }
}

/// Loads one NDJSON file of users or events.
pub async fn backfill_file(
    store: &Arc<OnlineStore>,
    path: &Path,
    expect: Expect,
) -> Result<BackfillReport, BackfillError> {
    let file_error = |message: String| BackfillError::File {
        path: path.display().to_string(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| file_error(format!("cannot open: {e}")))?;
    let mut lines = std::io::BufReader::with_capacity(1 << 20, file).lines();
    let mut report = BackfillReport::default();
    let traits = store.config().traits.clone();
    loop {
        let mut chunk = String::new();
        let first_line = report.lines;
        let mut n = 0usize;
        for line in lines.by_ref().take(CHUNK_LINES) {
            let line = line
                .map_err(|e| file_error(format!("line {}: cannot read: {e}", report.lines + 1)))?;
            report.lines += 1;
            n += 1;
            if line.trim().is_empty() {
                // Kept as an empty object, so item indexes stay line numbers.
                chunk.push_str("{}\n");
            } else {
                chunk.push_str(&line);
                chunk.push('\n');
            }
        }
        if n == 0 {
            return Ok(report);
        }
        let parsed = ingest::parse(
            chunk.as_bytes(),
            expect,
            &traits,
            CHUNK_LINES,
            crate::online::now_us(),
        )
        .map_err(|e| file_error(format!("lines {}-{}: {e}", first_line + 1, report.lines)))?;
        for rejection in &parsed.rejected {
            report.rejected += 1;
            if report.first_rejections.len() < LISTED {
                report.first_rejections.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    first_line + rejection.index as u64 + 1,
                    rejection.reason
                ));
            }
        }
        if !parsed.changes.is_empty() {
            report.outcome.add(&store.apply(parsed.changes).await?);
        }
    }
}
