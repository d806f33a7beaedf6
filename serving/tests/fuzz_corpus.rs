//! Replays the committed fuzz corpora (`serving/fuzz/corpus/rest_rows` and
//! `serving/fuzz/corpus/v2_request`) through the fuzz targets' own code
//! (`serving/fuzz/chain.rs`): no input may panic, every one answers `Ok`
//! or an `ApiError`, and the seeds still reach past parsing. No fuzzing
//! here; see `serving/fuzz/README.md`.

#[path = "../fuzz/chain.rs"]
mod chain;
#[path = "support/fixture.rs"]
mod fixture;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use presage_serving::error::ApiError;

/// Runs every file of `target`'s corpus; returns how many answered `Ok`.
fn replay(target: &str, mut run: impl FnMut(&[u8]) -> Result<usize, ApiError>) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    let (mut accepted, mut panicked) = (0, Vec::new());
    for path in &files {
        let data = std::fs::read(path).expect("corpus file");
        match catch_unwind(AssertUnwindSafe(|| run(&data))) {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(e)) => assert!(!e.message.is_empty(), "{}: empty error", path.display()),
            Err(_) => panicked.push(path.display().to_string()),
        }
    }
    assert!(panicked.is_empty(), "these inputs panic: {panicked:#?}");
    accepted
}

#[test]
fn rest_rows_corpus_replays_without_panics() {
    let model = chain::model();
    let accepted = replay("rest_rows", |data| chain::rest_rows(&model, data));
    // Eleven seeds parse; a few may start failing if the parser gets stricter.
    assert!(accepted >= 8, "only {accepted} rest_rows seeds parse");
}

#[test]
fn v2_request_corpus_replays_without_panics() {
    let model = chain::model();
    let accepted = replay("v2_request", |data| chain::v2_request(&model, data));
    // Sixteen seeds decode, JSON and binary.
    assert!(accepted >= 12, "only {accepted} v2_request seeds decode");
}
