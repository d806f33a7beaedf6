//! Named crash points, for the tests that prove an acknowledged change
//! survives a crash anywhere. `PRESAGE_FAILPOINT=NAME` (or `NAME:N`, the
//! N-th time) makes the process abort, like `kill -9`, when it reaches that
//! point. The points are:
//!
//! - `after-log-write`: a frame is written but not yet synced;
//! - `after-log-sync`: a frame is durable but its request not yet answered;
//! - `mid-snapshot`: half a snapshot is written (under its temporary name);
//! - `after-snapshot`: the snapshot is in place, the old files not yet removed.
//!
//! Unset (always, in production), a check is one load of a static.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

struct Point {
    name: String,
    nth: u64,
    seen: AtomicU64,
}

fn configured() -> Option<&'static Point> {
    static POINT: OnceLock<Option<Point>> = OnceLock::new();
    POINT
        .get_or_init(|| {
            let text = std::env::var("PRESAGE_FAILPOINT").ok()?;
            let (name, nth) = match text.split_once(':') {
                Some((name, n)) => (name.to_owned(), n.parse().ok()?),
                None => (text, 1),
            };
            Some(Point {
                name,
                nth,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Aborts the process if `name` is the configured point and this is its
/// configured occurrence.
pub fn hit(name: &str) {
    if let Some(point) = configured() {
        if point.name == name && point.seen.fetch_add(1, Ordering::SeqCst) + 1 == point.nth {
            eprintln!("failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}
