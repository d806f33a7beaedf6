//! Live drift: the most recent scored rows of each loaded version, kept in
//! a fixed-size ring, from which `GET /models/{name}/drift` and `/metrics`
//! compute the same statistics as `presage-train drift` (per-feature PSI
//! against the training histograms, missing and unseen shares, score PSI).
//!
//! Recording never blocks scoring: a request that finds the ring busy
//! (another worker is recording or a drift report is reading it) skips it,
//! so under heavy load the window samples rather than waits. The ring's
//! memory is allocated by the first recorded row, so a loaded version that
//! is never scored (an alias other than `champion`) costs nothing.

use std::sync::Mutex;

use presage_models::artifact::ModelArtifact;
use presage_models::drift::{report, DriftReport};
use serde::Serialize;

/// Rows kept per loaded version (fewer for very wide models, see
/// [`DRIFT_WINDOW_BYTES`]).
pub const DRIFT_WINDOW_ROWS: usize = 10_000;

/// Most bytes one window's rows may take: a model with very many features
/// keeps fewer rows rather than gigabytes.
pub const DRIFT_WINDOW_BYTES: usize = 32 << 20;

/// The ring of recent rows.
struct Ring {
    rows: Vec<f64>,
    probabilities: Vec<f64>,
    next: usize,
    filled: usize,
}

/// Recent encoded rows and probabilities of one loaded version.
pub struct DriftWindow {
    width: usize,
    capacity: usize,
    ring: Mutex<Ring>,
}

impl std::fmt::Debug for DriftWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftWindow")
            .field("width", &self.width)
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// A drift report over the window.
#[derive(Debug, Clone, Serialize)]
pub struct LiveDrift {
    /// Rows in the window.
    pub window_rows: usize,
    /// The window's capacity.
    pub window_capacity: usize,
    /// Per-feature drift and score PSI, as `presage-train drift` reports them.
    #[serde(flatten)]
    pub drift: DriftReport,
}

impl DriftWindow {
    /// An empty window for up to `capacity` rows of `width` features (at
    /// most [`DRIFT_WINDOW_BYTES`] of them).
    pub fn new(width: usize, capacity: usize) -> Self {
        let row_bytes = (width + 1) * std::mem::size_of::<f64>();
        DriftWindow {
            width,
            capacity: capacity.min(DRIFT_WINDOW_BYTES / row_bytes),
            ring: Mutex::new(Ring {
                rows: Vec::new(),
                probabilities: Vec::new(),
                next: 0,
                filled: 0,
            }),
        }
    }

    /// Rows the window holds when full.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records a scored row, unless the ring is busy (then it is skipped).
    pub fn record(&self, row: &[f64], probability: f64) {
        if self.capacity == 0 || row.len() != self.width {
            return;
        }
        let Ok(mut ring) = self.ring.try_lock() else {
            return;
        };
        if ring.probabilities.is_empty() {
            ring.rows = vec![f64::NAN; self.width * self.capacity];
            ring.probabilities = vec![f64::NAN; self.capacity];
        }
        let at = ring.next;
        ring.rows[at * self.width..(at + 1) * self.width].copy_from_slice(row);
        ring.probabilities[at] = probability;
        ring.next = (at + 1) % self.capacity;
        ring.filled = (ring.filled + 1).min(self.capacity);
    }

    /// Drift of the window's rows against `artifact`'s training data;
    /// `None` while the window is empty.
    pub fn report(&self, artifact: &ModelArtifact) -> Option<LiveDrift> {
        let (columns, probabilities) = {
            let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            if ring.filled == 0 {
                return None;
            }
            let columns: Vec<Vec<f64>> = (0..self.width)
                .map(|f| {
                    (0..ring.filled)
                        .map(|r| ring.rows[r * self.width + f])
                        .collect()
                })
                .collect();
            (columns, ring.probabilities[..ring.filled].to_vec())
        };
        Some(LiveDrift {
            window_rows: probabilities.len(),
            window_capacity: self.capacity,
            drift: report(
                &artifact.schema.features,
                &columns,
                &artifact.score_quantiles,
                &probabilities,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_is_allocated_by_the_first_row() {
        let w = DriftWindow::new(4, 10_000);
        assert_eq!(w.ring.lock().unwrap().rows.capacity(), 0);
        w.record(&[1.0; 4], 0.5);
        assert_eq!(w.ring.lock().unwrap().rows.len(), 40_000);
    }

    #[test]
    fn a_very_wide_model_keeps_fewer_rows() {
        let w = DriftWindow::new(100_000, DRIFT_WINDOW_ROWS);
        assert_eq!(w.capacity, 41);
        w.record(&vec![0.0; 100_000], 0.5);
        assert!(w.ring.lock().unwrap().rows.len() * 8 <= DRIFT_WINDOW_BYTES);
    }

    #[test]
    fn the_ring_keeps_the_latest_rows() {
        let w = DriftWindow::new(2, 3);
        for i in 0..5 {
            w.record(&[i as f64, 0.0], 0.5);
        }
        let ring = w.ring.lock().unwrap();
        assert_eq!(ring.filled, 3);
        let mut firsts: Vec<f64> = (0..3).map(|r| ring.rows[r * 2]).collect();
        firsts.sort_by(f64::total_cmp);
        assert_eq!(firsts, [2.0, 3.0, 4.0]);
    }
}
