//! The code paths the models fuzz targets drive, shared by the targets
//! (`fuzz_targets/*.rs`) and the corpus replay test
//! (`models/tests/fuzz_corpus.rs`), which both include this file by path
//! next to `serving/tests/support/fixture.rs` as `crate::fixture`.
//!
//! Each function takes one fuzz input and returns whether it was accepted;
//! it panics only when the code under test does, or when an accepted input
//! breaks an invariant.

#![allow(dead_code)]

use presage_models::artifact::{ModelArtifact, FORMAT_VERSION, HEADER_LEN, MAGIC};
use presage_models::policy::SegmentPolicy;
use presage_models::rule::Condition;
use presage_models::schema::{FeatureKind, UNSEEN_CATEGORY};
use presage_models::{drift, shap};
use sha2::{Digest, Sha256};

/// Input mode bytes of the `artifact` target (byte 0 of each input).
pub const RAW: u8 = 0;
/// The rest is a payload; a format-2 header with its SHA-256 is added.
pub const PAYLOAD_V2: u8 = 1;
/// The rest is a payload; a format-1 header with its SHA-256 is added.
pub const PAYLOAD_V1: u8 = 2;

/// A file around `payload`, with a valid header for `version`.
pub fn framed(payload: &[u8], version: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&Sha256::digest(payload));
    bytes.extend_from_slice(payload);
    bytes
}

/// `artifact` input: byte 0 picks the mode ([`PAYLOAD_V2`] and
/// [`PAYLOAD_V1`] frame the rest with a correct header, so mutations reach
/// the decoder and the checks past the checksum; anything else reads the
/// rest as a whole file). An artifact that loads is compiled, scored,
/// explained, checked for drift and written back.
pub fn artifact(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let file;
    let bytes = match mode & 3 {
        PAYLOAD_V2 => {
            file = framed(rest, FORMAT_VERSION);
            &file[..]
        }
        PAYLOAD_V1 => {
            file = framed(rest, 1);
            &file[..]
        }
        _ => rest,
    };
    let Ok(artifact) = ModelArtifact::from_bytes(bytes, "fuzz") else {
        return false;
    };
    exercise(&artifact);
    // What loads writes back, and what it writes loads.
    let written = artifact.to_bytes().expect("a loaded artifact encodes");
    let again = ModelArtifact::from_bytes(&written, "fuzz").expect("a written artifact loads");
    assert_eq!(again.to_bytes().expect("encodes"), written);
    true
}

/// Everything that reads a loaded artifact, on an all-missing row and on a
/// row of values taken from the model itself.
fn exercise(artifact: &ModelArtifact) {
    let _ = artifact.created_at();
    let _ = artifact.label_column();
    let Ok(compiled) = artifact.compile() else {
        return;
    };
    let features = &artifact.schema.features;
    let width = features.len();
    assert_eq!(compiled.n_features(), width);
    let missing = vec![f64::NAN; width];
    let sample: Vec<f64> = features
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.kind {
            FeatureKind::Numeric => f.histogram.edges.first().copied().unwrap_or(f.stats.max),
            FeatureKind::Categorical { categories } if i % 2 == 0 => categories.len() as f64 - 1.0,
            FeatureKind::Categorical { .. } => UNSEEN_CATEGORY,
        })
        .collect();
    let mut probabilities = Vec::new();
    for row in [&missing, &sample] {
        let raw = compiled.predict(row);
        let p = artifact.calibration.apply(raw);
        let _ = artifact.score_quantiles.rank(p);
        let policy = SegmentPolicy::default_policy();
        let _ = policy.assign(p, row, &artifact.score_quantiles);
        let contributions = shap::contributions(&artifact.ensemble, row);
        assert_eq!(contributions.len(), width + 1);
        probabilities.push(p);
    }
    let batch: Vec<f64> = missing.iter().chain(&sample).copied().collect();
    // A batch of rows without features is empty: its row count is lost.
    let expected = if width == 0 { 0 } else { 2 };
    assert_eq!(compiled.predict_batch(&batch).len(), expected);
    let columns: Vec<Vec<f64>> = (0..width).map(|i| vec![missing[i], sample[i]]).collect();
    let report = drift::report(
        features,
        &columns,
        &artifact.score_quantiles,
        &probabilities,
    );
    assert_eq!(report.features.len(), width);
}

/// The fixture model, whose schema policies are checked against: tenure,
/// charges, visits (numeric), plan (monthly, yearly, two-year) and region
/// (north, south, east, west).
pub fn fixture() -> ModelArtifact {
    crate::fixture::artifact("fuzz", 0.0)
}

/// `policy` input: UTF-8 text, parsed both as a whole policy file and as a
/// rule condition against `model`'s schema. What parses is applied to a
/// few rows and probabilities. Returns whether either parsed.
pub fn policy(model: &ModelArtifact, data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let (schema, quantiles) = (&model.schema, &model.score_quantiles);
    let width = schema.len();
    // All missing, all zero, and (for the fixture) values at the splits.
    let mut at_splits = vec![12.0, 70.0, 3.0, 2.0, UNSEEN_CATEGORY];
    at_splits.resize(width, f64::NAN);
    let rows = [vec![f64::NAN; width], vec![0.0; width], at_splits];
    let mut accepted = false;
    if let Ok(policy) = SegmentPolicy::parse(text, "fuzz.toml", schema) {
        accepted = true;
        assert!(!policy.segments.is_empty());
        assert_eq!(policy.segments[0].from, 0.0);
        for row in &rows {
            for p in [f64::NAN, -1.0, 0.0, 0.3, 0.7, 0.9, 1.0, 2.0] {
                let a = policy.assign(p, row, quantiles);
                assert!(a.index < policy.segments.len());
            }
        }
    }
    if let Ok(condition) = Condition::parse(text, schema) {
        accepted = true;
        assert!(condition.features().all(|f| f < width));
        for row in &rows {
            let _ = condition.matches(row);
        }
    }
    accepted
}
