//! The model artifact: one file per model version.
//!
//! ## File layout
//! ```text
//! offset  size  field
//! 0       8     magic  b"PRESAGE\x01"
//! 8       4     format version (u32, little endian)
//! 12      8     payload length in bytes (u64, little endian)
//! 20      32    SHA-256 of the payload
//! 52      n     payload: ModelArtifact encoded with bincode 2 (serde, standard config)
//! ```
//! Format versions: 1 had no `feature_spec`; 2 added it (version 1 files
//! still load, with `feature_spec: None`).
//! Loading checks the magic, the format version, the length and the
//! checksum before decoding, and validates the decoded trees, schema and
//! calibration before anything scores with them. Decoding is plain data:
//! no code is executed on load. The encoding is named by the format version,
//! so moving to another encoding (postcard, wincode) is a version bump that
//! keeps reading old files.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic_file::write_atomic;
use crate::calibration::Calibrator;
use crate::compiled::CompiledEnsemble;
use crate::ensemble::Ensemble;
use crate::metrics::{BinaryMetrics, RegressionMetrics};
use crate::schema::FeatureSchema;

/// First bytes of every artifact file.
pub const MAGIC: [u8; 8] = *b"PRESAGE\x01";
/// The format version this build writes.
pub const FORMAT_VERSION: u32 = 2;
/// Format versions this build reads.
pub const SUPPORTED_FORMAT_VERSIONS: &[u32] = &[1, 2];
/// Size of the header in bytes.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 32;
/// Largest payload accepted when decoding (guards against crafted lengths).
const MAX_PAYLOAD: usize = 1 << 31;

/// Which learner produced the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// Histogram gradient-boosted trees.
    GradientBoosting,
    /// Random forest on the histogram tree learner.
    RandomForest,
}

impl Algorithm {
    /// Short name used on the command line and in reports (`gbm`, `rf`).
    pub fn short_name(self) -> &'static str {
        match self {
            Algorithm::GradientBoosting => "gbm",
            Algorithm::RandomForest => "rf",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// What the model predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Task {
    /// Probability that `label` equals `positive`.
    BinaryClassification {
        /// Label column in the training data.
        label: String,
        /// The label value counted as positive, as text.
        positive: String,
        /// The other label value, as text.
        negative: String,
    },
    /// A numeric target (L2 loss).
    Regression {
        /// Target column in the training data.
        target: String,
    },
}

/// Metrics for one split of the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Metrics {
    /// Classification metrics.
    Binary(BinaryMetrics),
    /// Regression metrics.
    Regression(RegressionMetrics),
}

impl Metrics {
    /// ROC-AUC, when these are classification metrics over both classes.
    pub fn auc(&self) -> Option<f64> {
        match self {
            Metrics::Binary(m) => m.auc,
            Metrics::Regression(_) => None,
        }
    }
}

/// A simple reference model evaluated on the same test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// e.g. `class_prior`, `logistic_regression`.
    pub name: String,
    /// Its metrics on the test split.
    pub test: Metrics,
}

/// How the model was evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Rows in each split: train, validation, test.
    pub split_rows: [u64; 3],
    /// How the rows were split (e.g. `stratified random, seed 42`).
    pub split_method: String,
    /// Metrics on the training rows.
    pub train: Option<Metrics>,
    /// Metrics on the validation rows (used for early stopping and calibration).
    pub valid: Option<Metrics>,
    /// Metrics on the held-out test rows, never seen in fitting.
    pub test: Option<Metrics>,
    /// Baselines on the test rows.
    pub baselines: Vec<Baseline>,
    /// Whether the model's test AUC beats every baseline's (None without a test split).
    pub beats_baselines: Option<bool>,
    /// Iteration kept by early stopping, if it stopped early.
    pub best_iteration: Option<u32>,
}

/// Importance of one feature, summed over the ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    /// Feature name.
    pub feature: String,
    /// Total loss reduction of splits on this feature.
    pub gain: f64,
    /// Number of splits on this feature.
    pub splits: u64,
}

/// What the model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// The file (or files) read.
    pub source: String,
    /// Rows read (before splitting).
    pub rows: u64,
    /// Columns read.
    pub columns: u64,
    /// SHA-256 over the column names and the values the model saw.
    pub sha256: String,
}

/// Quantiles of the model's (calibrated) score distribution on held-out rows:
/// `values[i]` is the `i`-th percentile (101 values, 0..=100). Percentile
/// segment policies and drift checks read these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreQuantiles {
    /// Which rows they were computed on (`validation` or `test`).
    pub source: String,
    /// The 0th..100th percentiles.
    pub values: Vec<f64>,
}

impl ScoreQuantiles {
    /// Percentile rank in `[0, 1]` of a score against these quantiles.
    pub fn rank(&self, score: f64) -> f64 {
        if self.values.len() < 2 || score.is_nan() {
            return f64::NAN;
        }
        let steps = (self.values.len() - 1) as f64;
        let below = self.values.partition_point(|q| *q < score);
        let at_or_below = self.values.partition_point(|q| *q <= score);
        // Mid-rank among equal quantiles keeps ties stable.
        ((below + at_or_below) as f64 / 2.0 - 0.5).clamp(0.0, steps) / steps
    }
}

/// One stored model version: everything needed to score, explain and audit it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// Model name (the registry directory).
    pub name: String,
    /// Version number within the model's registry entry (set on register).
    pub version: u64,
    /// Creation time, seconds since the Unix epoch (UTC).
    pub created_at_unix: i64,
    /// Presage version that trained it.
    pub trainer_version: String,
    /// Learner.
    pub algorithm: Algorithm,
    /// Every hyper-parameter, as name and value text, sorted by name.
    pub params: Vec<(String, String)>,
    /// What is predicted.
    pub task: Task,
    /// Id column of the training data, if one was named.
    pub id_column: Option<String>,
    /// Input features.
    pub schema: FeatureSchema,
    /// The trees.
    pub ensemble: Ensemble,
    /// Calibration applied after the link.
    pub calibration: Calibrator,
    /// Training data fingerprint.
    pub data: DataFingerprint,
    /// Held-out evaluation.
    pub evaluation: Evaluation,
    /// Feature importance, most important (by gain) first.
    pub importance: Vec<FeatureImportance>,
    /// Score distribution on held-out rows.
    pub score_quantiles: ScoreQuantiles,
    /// How the features were built from warehouse extracts; `None` for a
    /// model trained on a ready-made feature table.
    pub feature_spec: Option<FeatureSpecRecord>,
}

/// The feature and label spec a model's training table was built with, so
/// that callers (and `GET /models/{name}`) know what each feature means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpecRecord {
    /// The spec sections of the training config, as JSON.
    pub spec_json: String,
    /// Each built feature and what it measures, in table order.
    pub features: Vec<FeatureDescription>,
    /// The label column and what it means.
    pub label: FeatureDescription,
}

/// A named column and what it measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDescription {
    /// Column name.
    pub name: String,
    /// What it measures.
    pub description: String,
}

/// Format version 1's payload: [`ModelArtifact`] before `feature_spec`.
/// bincode encodes fields by position, so old files decode through this.
#[derive(Serialize, Deserialize)]
struct PayloadV1 {
    name: String,
    version: u64,
    created_at_unix: i64,
    trainer_version: String,
    algorithm: Algorithm,
    params: Vec<(String, String)>,
    task: Task,
    id_column: Option<String>,
    schema: FeatureSchema,
    ensemble: Ensemble,
    calibration: Calibrator,
    data: DataFingerprint,
    evaluation: Evaluation,
    importance: Vec<FeatureImportance>,
    score_quantiles: ScoreQuantiles,
}

impl From<PayloadV1> for ModelArtifact {
    fn from(v1: PayloadV1) -> Self {
        ModelArtifact {
            name: v1.name,
            version: v1.version,
            created_at_unix: v1.created_at_unix,
            trainer_version: v1.trainer_version,
            algorithm: v1.algorithm,
            params: v1.params,
            task: v1.task,
            id_column: v1.id_column,
            schema: v1.schema,
            ensemble: v1.ensemble,
            calibration: v1.calibration,
            data: v1.data,
            evaluation: v1.evaluation,
            importance: v1.importance,
            score_quantiles: v1.score_quantiles,
            feature_spec: None,
        }
    }
}

/// Why an artifact could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not start with the artifact magic bytes.
    #[error(
        "{path}: not a Presage model file (bad magic bytes); was it written by presage-train?"
    )]
    BadMagic {
        /// The file.
        path: String,
    },
    /// The format version is not one this build reads.
    #[error("{path}: model format version {found} is not supported (this build reads {supported:?}); upgrade Presage or retrain the model")]
    UnsupportedVersion {
        /// The file.
        path: String,
        /// Version in the file.
        found: u32,
        /// Versions this build reads.
        supported: &'static [u32],
    },
    /// The file is shorter or longer than its header says.
    #[error("{path}: model file is truncated or has trailing bytes (header says {expected} payload bytes, file has {found})")]
    Length {
        /// The file.
        path: String,
        /// Payload length from the header.
        expected: u64,
        /// Payload bytes present.
        found: u64,
    },
    /// The payload does not match its checksum.
    #[error("{path}: model file is corrupted (payload checksum mismatch); restore it from a backup or retrain")]
    Checksum {
        /// The file.
        path: String,
    },
    /// The payload could not be decoded.
    #[error("{path}: model payload cannot be decoded: {message}")]
    Decode {
        /// The file.
        path: String,
        /// Decoder message.
        message: String,
    },
    /// The decoded model is inconsistent.
    #[error("{path}: model is invalid: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

impl ModelArtifact {
    /// Encodes the artifact with its header.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArtifactError> {
        let payload = bincode::serde::encode_to_vec(self, bincode_config()).map_err(|e| {
            ArtifactError::Decode {
                path: self.name.clone(),
                message: e.to_string(),
            }
        })?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&Sha256::digest(&payload));
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }

    /// Decodes and validates an artifact; `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, ArtifactError> {
        let path = path.to_string();
        if bytes.len() < 8 || bytes[..8] != MAGIC {
            return Err(ArtifactError::BadMagic { path });
        }
        if bytes.len() < HEADER_LEN {
            return Err(ArtifactError::Length {
                path,
                expected: 0,
                found: bytes.len().saturating_sub(HEADER_LEN) as u64,
            });
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if !SUPPORTED_FORMAT_VERSIONS.contains(&version) {
            return Err(ArtifactError::UnsupportedVersion {
                path,
                found: version,
                supported: SUPPORTED_FORMAT_VERSIONS,
            });
        }
        let expected = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let payload = &bytes[HEADER_LEN..];
        if payload.len() as u64 != expected {
            return Err(ArtifactError::Length {
                path,
                expected,
                found: payload.len() as u64,
            });
        }
        if Sha256::digest(payload).as_slice() != &bytes[20..52] {
            return Err(ArtifactError::Checksum { path });
        }
        let decode_error = |e: bincode::error::DecodeError| ArtifactError::Decode {
            path: path.clone(),
            message: e.to_string(),
        };
        let (artifact, used): (ModelArtifact, usize) = if version == 1 {
            let (v1, used): (PayloadV1, usize) =
                bincode::serde::decode_from_slice(payload, bincode_config())
                    .map_err(decode_error)?;
            (v1.into(), used)
        } else {
            bincode::serde::decode_from_slice(payload, bincode_config()).map_err(decode_error)?
        };
        if used != payload.len() {
            return Err(ArtifactError::Decode {
                path,
                message: format!("{} unread bytes after the model", payload.len() - used),
            });
        }
        artifact
            .validate()
            .map_err(|message| ArtifactError::Invalid { path, message })?;
        Ok(artifact)
    }

    /// Reads and validates an artifact file.
    pub fn read(path: &Path) -> Result<Self, ArtifactError> {
        let display = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ArtifactError::Io {
            path: display.clone(),
            source,
        })?;
        Self::from_bytes(&bytes, &display)
    }

    /// Writes the artifact atomically (temp file, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<(), ArtifactError> {
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes).map_err(|source| ArtifactError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Checks internal consistency: trees against the schema, category codes
    /// against dictionaries, calibration knots.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema.len() != self.ensemble.n_features {
            return Err(format!(
                "schema has {} features but the trees expect {}",
                self.schema.len(),
                self.ensemble.n_features
            ));
        }
        self.ensemble.validate()?;
        self.calibration
            .validate()
            .map_err(|e| format!("calibration: {e}"))?;
        Ok(())
    }

    /// Compiles the ensemble for scoring.
    pub fn compile(&self) -> Result<CompiledEnsemble, crate::compiled::CompileError> {
        CompiledEnsemble::new(&self.ensemble)
    }

    /// Creation time as an RFC 3339 UTC timestamp.
    pub fn created_at(&self) -> String {
        format_utc(self.created_at_unix)
    }

    /// The label (or target) column.
    pub fn label_column(&self) -> &str {
        match &self.task {
            Task::BinaryClassification { label, .. } => label,
            Task::Regression { target } => target,
        }
    }
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(unix: i64) -> String {
    crate::time::format_timestamp(unix.saturating_mul(1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_909_714), "2026-11-28T23:48:34Z");
    }

    fn small_artifact() -> ModelArtifact {
        use crate::ensemble::Link;
        use crate::schema::{Feature, FeatureHistogram, FeatureKind, FeatureStats};
        use crate::tree::{Node, SplitRule, Tree};
        let tree = Tree {
            nodes: vec![
                Node::Split {
                    feature: 0,
                    rule: SplitRule::Numeric {
                        threshold: 1.5,
                        missing_left: true,
                    },
                    left: 1,
                    right: 2,
                    gain: 3.0,
                    cover: 10.0,
                },
                Node::Leaf {
                    value: -0.5,
                    cover: 4.0,
                },
                Node::Leaf {
                    value: 0.5,
                    cover: 6.0,
                },
            ],
        };
        let stats = FeatureStats {
            rows: 10,
            missing: 0,
            min: 0.0,
            max: 3.0,
            mean: 1.5,
        };
        ModelArtifact {
            name: "churn".into(),
            version: 3,
            created_at_unix: 0,
            trainer_version: "test".into(),
            algorithm: Algorithm::GradientBoosting,
            params: vec![("num_leaves".into(), "2".into())],
            task: Task::BinaryClassification {
                label: "y".into(),
                positive: "1".into(),
                negative: "0".into(),
            },
            id_column: None,
            schema: FeatureSchema {
                features: vec![Feature {
                    name: "x".into(),
                    kind: FeatureKind::Numeric,
                    stats,
                    histogram: FeatureHistogram {
                        edges: vec![1.5],
                        counts: vec![4, 6],
                        missing: 0,
                    },
                }],
            },
            ensemble: Ensemble {
                n_features: 1,
                base_score: 0.0,
                trees: vec![tree],
                link: Link::Logit,
            },
            calibration: Calibrator::Identity,
            data: DataFingerprint {
                source: "t.csv".into(),
                rows: 10,
                columns: 2,
                sha256: "00".into(),
            },
            evaluation: Evaluation {
                split_rows: [10, 0, 0],
                split_method: "test".into(),
                train: None,
                valid: None,
                test: None,
                baselines: vec![],
                beats_baselines: None,
                best_iteration: None,
            },
            importance: vec![],
            score_quantiles: ScoreQuantiles {
                source: "train".into(),
                values: vec![0.0, 1.0],
            },
            feature_spec: None,
        }
    }

    /// Encodes `artifact` as format version 1 wrote it (no `feature_spec`).
    fn version_1_bytes(a: &ModelArtifact) -> Vec<u8> {
        let v1 = PayloadV1 {
            name: a.name.clone(),
            version: a.version,
            created_at_unix: a.created_at_unix,
            trainer_version: a.trainer_version.clone(),
            algorithm: a.algorithm,
            params: a.params.clone(),
            task: a.task.clone(),
            id_column: a.id_column.clone(),
            schema: a.schema.clone(),
            ensemble: a.ensemble.clone(),
            calibration: a.calibration.clone(),
            data: a.data.clone(),
            evaluation: a.evaluation.clone(),
            importance: a.importance.clone(),
            score_quantiles: a.score_quantiles.clone(),
        };
        let payload = bincode::serde::encode_to_vec(&v1, bincode_config()).unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&Sha256::digest(&payload));
        bytes.extend_from_slice(&payload);
        bytes
    }

    #[test]
    fn reads_format_version_1_files() {
        let mut artifact = small_artifact();
        let old = version_1_bytes(&artifact);
        assert_eq!(ModelArtifact::from_bytes(&old, "m").unwrap(), artifact);

        artifact.feature_spec = Some(FeatureSpecRecord {
            spec_json: "{}".into(),
            features: vec![FeatureDescription {
                name: "x".into(),
                description: "events in the first 7 days".into(),
            }],
            label: FeatureDescription {
                name: "churned".into(),
                description: "no event in the 28 days after the cutoff".into(),
            },
        });
        let new = artifact.to_bytes().unwrap();
        assert_eq!(
            u32::from_le_bytes(new[8..12].try_into().unwrap()),
            FORMAT_VERSION
        );
        assert_eq!(ModelArtifact::from_bytes(&new, "m").unwrap(), artifact);
    }

    #[test]
    fn round_trips_and_names_each_kind_of_damage() {
        let artifact = small_artifact();
        let bytes = artifact.to_bytes().unwrap();
        assert_eq!(ModelArtifact::from_bytes(&bytes, "m").unwrap(), artifact);

        let mut other_format = bytes.clone();
        other_format[8..12].copy_from_slice(&99u32.to_le_bytes());
        let err = ModelArtifact::from_bytes(&other_format, "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("format version 99 is not supported"), "{err}");

        let err = ModelArtifact::from_bytes(&bytes[..bytes.len() - 3], "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");

        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        let err = ModelArtifact::from_bytes(&flipped, "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum mismatch"), "{err}");

        let err = ModelArtifact::from_bytes(b"PK\x03\x04 a zip file", "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a Presage model file"), "{err}");

        // A payload that decodes but is inconsistent (tree uses a feature the schema lacks).
        let mut bad = artifact.clone();
        bad.ensemble.n_features = 2;
        let err = ModelArtifact::from_bytes(&bad.to_bytes().unwrap(), "m")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("schema has 1 features but the trees expect 2"),
            "{err}"
        );
    }

    #[test]
    fn quantile_rank_is_monotone_and_bounded() {
        let q = ScoreQuantiles {
            source: "test".into(),
            values: (0..=100).map(|i| i as f64 / 100.0).collect(),
        };
        assert_eq!(q.rank(-1.0), 0.0);
        assert_eq!(q.rank(2.0), 1.0);
        assert!((q.rank(0.5) - 0.5).abs() < 1e-12);
        assert!(q.rank(0.3) < q.rank(0.31));
    }
}
