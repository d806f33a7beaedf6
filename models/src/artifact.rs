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
//! Loading stats the file first and refuses one larger than
//! [`MAX_ARTIFACT_BYTES`] (or the caller's cap) without reading it, then
//! checks the magic, the format version, the length and the checksum before
//! decoding. Decoding is plain data: no code is executed on load. The
//! encoding is named by the format version, so moving to another encoding
//! (postcard, wincode) is a version bump that keeps reading old files.
//!
//! A checksum only proves the file is the one that was written, not that
//! what was written is sound, so [`ModelArtifact::validate`] then checks
//! the decoded content before anything scores, explains or measures drift
//! with it; each failure names its [`ArtifactCheck`]. The invariants it
//! establishes, which scoring ([`crate::compiled`]), TreeSHAP
//! ([`crate::shap`]) and drift ([`crate::drift`]) rely on to never panic,
//! loop or index out of bounds:
//! - the schema has one uniquely named feature per tree input, each
//!   categorical dictionary lists a category once, and each histogram fits
//!   its feature (numeric: `NaN`-free, strictly ascending edges and one
//!   count more than edges; categorical: no edges and one count per
//!   category) and counts no more rows than the feature saw;
//! - every tree is a tree over those features, at most
//!   [`crate::tree::MAX_TREE_DEPTH`] levels deep, whose splits match their
//!   feature's kind and name only dictionary codes, within the compiled
//!   scorer's memory limits for categorical sets;
//! - leaf values, thresholds, the base score, covers (finite, not
//!   negative), calibration parameters and the 101 score quantiles
//!   (ascending) are finite, and the link fits the task and learner.
//!
//! Each check accepts everything presage-train writes (it only rejects what
//! the trainer never produces). [`crate::registry::Registry::read_version`]
//! adds the last check: the name and version inside the file are those of
//! its place in the registry.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic_file::write_atomic;
use crate::calibration::Calibrator;
use crate::compiled::CompiledEnsemble;
use crate::ensemble::{Ensemble, Link};
use crate::metrics::{BinaryMetrics, RegressionMetrics};
use crate::schema::{Feature, FeatureKind, FeatureSchema};
use crate::tree::{Node, SplitRule, TreeError};

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
/// Largest artifact file [`ModelArtifact::read`] reads, and the largest
/// [`ModelArtifact::to_bytes`] writes: the header plus the largest payload
/// the decoder accepts (2 GiB), 2,147,483,700 bytes.
///
/// A larger file could never decode, so it is refused from its size alone,
/// before a byte is read. The limit is not lower because trained models can
/// be large: a random forest of 100 trees at the 131,072-leaf limit is
/// about 720 MB. Callers that want less (a server with a memory budget)
/// pass their own cap to [`ModelArtifact::read_capped`].
pub const MAX_ARTIFACT_BYTES: u64 = HEADER_LEN as u64 + MAX_PAYLOAD as u64;

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
/// `values[i]` is the `i`-th percentile (101 values, 0..=100, ascending;
/// none if the model had no scores to summarise). Percentile segment
/// policies and drift checks read these.
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
    /// The decoded model failed one of [`ModelArtifact::validate`]'s checks.
    #[error("{path}: model is invalid, the {check} check failed: {message}; presage-train does not write such models, so the file is damaged or was made elsewhere: restore it from a backup or retrain the model")]
    Invalid {
        /// The file.
        path: String,
        /// The check that failed.
        check: ArtifactCheck,
        /// What is wrong, and where.
        message: String,
    },
    /// The file is larger than the cap it was read with, so it was not read.
    #[error("{path}: model file is {size} bytes, more than the limit of {limit} bytes, so it was not read; check that the path names a Presage model (a genuine model this large needs a higher limit, or retraining with fewer or smaller trees)")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size in bytes.
        size: u64,
        /// The cap it was read with ([`MAX_ARTIFACT_BYTES`] unless the caller chose one).
        limit: u64,
    },
    /// The path names something other than a regular file (a directory, a
    /// device, a pipe), so it was not read.
    #[error("{path}: not a regular file, so it was not read as a model; point at a .presage file")]
    NotAFile {
        /// The path.
        path: String,
    },
    /// The encoded model would be larger than [`MAX_ARTIFACT_BYTES`], so it
    /// could never be read back; nothing was written.
    #[error("model '{name}' encodes to {size} bytes, more than the {limit}-byte limit of a model file (MAX_ARTIFACT_BYTES); train fewer or smaller trees")]
    TooLargeToWrite {
        /// Model name.
        name: String,
        /// Encoded size in bytes, header included.
        size: u64,
        /// [`MAX_ARTIFACT_BYTES`].
        limit: u64,
    },
}

/// One of the checks [`ModelArtifact::validate`] runs on a decoded model;
/// [`ArtifactError::Invalid`] and [`InvalidArtifact`] name the one that
/// failed. Each accepts everything presage-train writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactCheck {
    /// The schema has as many features as the trees take.
    SchemaWidth,
    /// No two features share a name (rows are matched to features by name).
    FeatureNames,
    /// No categorical dictionary lists a category twice.
    Categories,
    /// No feature has more missing values than rows.
    FeatureStats,
    /// Each histogram fits its feature: numeric ones have `NaN`-free,
    /// strictly ascending edges (`±inf` is allowed: training data may hold
    /// infinities) and one count more than edges; categorical ones have no
    /// edges and one count per category; neither counts more rows than the
    /// feature saw.
    Histogram,
    /// Each tree is a tree: children in range, every node reached once,
    /// features in range, sorted category sets, no `NaN` threshold.
    TreeStructure,
    /// No tree is deeper than [`crate::tree::MAX_TREE_DEPTH`].
    TreeDepth,
    /// Numeric splits are on numeric features, categorical splits on
    /// categorical ones.
    SplitKind,
    /// Categorical splits name only codes in their feature's dictionary.
    SplitCategories,
    /// The categorical sets fit the compiled scorer's memory limits.
    CategorySets,
    /// Numeric thresholds are finite (training places them between values).
    Thresholds,
    /// Leaf values are finite.
    LeafValues,
    /// Node covers (training rows or bootstrap weight) are finite and not
    /// negative.
    Covers,
    /// The base score is finite.
    BaseScore,
    /// The link is the one the task and learner use (logit for boosted
    /// classifiers, probability for forest classifiers, identity for
    /// regression).
    Link,
    /// The calibrator is usable (finite parameters, sorted knots) and is
    /// the identity for regression models.
    Calibration,
    /// There are 101 finite, ascending score quantiles (or none).
    ScoreQuantiles,
}

impl ArtifactCheck {
    /// The check's name in messages, e.g. `histogram`, `tree_depth`.
    pub fn name(self) -> &'static str {
        match self {
            ArtifactCheck::SchemaWidth => "schema_width",
            ArtifactCheck::FeatureNames => "feature_names",
            ArtifactCheck::Categories => "categories",
            ArtifactCheck::FeatureStats => "feature_stats",
            ArtifactCheck::Histogram => "histogram",
            ArtifactCheck::TreeStructure => "tree_structure",
            ArtifactCheck::TreeDepth => "tree_depth",
            ArtifactCheck::SplitKind => "split_kind",
            ArtifactCheck::SplitCategories => "split_categories",
            ArtifactCheck::CategorySets => "category_sets",
            ArtifactCheck::Thresholds => "thresholds",
            ArtifactCheck::LeafValues => "leaf_values",
            ArtifactCheck::Covers => "covers",
            ArtifactCheck::BaseScore => "base_score",
            ArtifactCheck::Link => "link",
            ArtifactCheck::Calibration => "calibration",
            ArtifactCheck::ScoreQuantiles => "score_quantiles",
        }
    }
}

impl fmt::Display for ArtifactCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded model that failed [`ModelArtifact::validate`]: which check,
/// and what is wrong where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {check} check failed: {message}")]
pub struct InvalidArtifact {
    /// The check that failed.
    pub check: ArtifactCheck,
    /// What is wrong, and where (tree, node, feature).
    pub message: String,
}

fn invalid(check: ArtifactCheck, message: impl Into<String>) -> InvalidArtifact {
    InvalidArtifact {
        check,
        message: message.into(),
    }
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
        let size = (HEADER_LEN + payload.len()) as u64;
        if size > MAX_ARTIFACT_BYTES {
            return Err(ArtifactError::TooLargeToWrite {
                name: self.name.clone(),
                size,
                limit: MAX_ARTIFACT_BYTES,
            });
        }
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
            .map_err(
                |InvalidArtifact { check, message }| ArtifactError::Invalid {
                    path,
                    check,
                    message,
                },
            )?;
        Ok(artifact)
    }

    /// Reads and validates an artifact file of at most
    /// [`MAX_ARTIFACT_BYTES`] (see [`ModelArtifact::read_capped`]).
    pub fn read(path: &Path) -> Result<Self, ArtifactError> {
        Self::read_capped(path, MAX_ARTIFACT_BYTES)
    }

    /// Reads and validates an artifact file of at most `max_bytes`.
    ///
    /// The file is stat'ed first: anything but a regular file
    /// ([`ArtifactError::NotAFile`]) or a file larger than `max_bytes`
    /// ([`ArtifactError::TooLarge`]) is refused without reading a byte. The
    /// read itself stops after `max_bytes + 1` bytes, so a file that grows
    /// after the stat is refused too, and memory stays within the cap.
    pub fn read_capped(path: &Path, max_bytes: u64) -> Result<Self, ArtifactError> {
        let display = path.display().to_string();
        let io = |source| ArtifactError::Io {
            path: display.clone(),
            source,
        };
        let too_large = |size| ArtifactError::TooLarge {
            path: display.clone(),
            size,
            limit: max_bytes,
        };
        // By path, before opening: opening a pipe would block.
        let metadata = std::fs::metadata(path).map_err(io)?;
        if !metadata.is_file() {
            return Err(ArtifactError::NotAFile { path: display });
        }
        if metadata.len() > max_bytes {
            return Err(too_large(metadata.len()));
        }
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > max_bytes {
            return Err(too_large(bytes.len() as u64));
        }
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

    /// Checks that the decoded content is sound, whatever bytes produced
    /// it: the schema, every tree against it, the base score and link, the
    /// calibration and the score quantiles (the module documentation lists
    /// the invariants; [`ArtifactCheck`] lists the checks). Loading runs it,
    /// so scoring, explaining and drift checks of a loaded artifact cannot
    /// panic on its content. The first failure is returned.
    pub fn validate(&self) -> Result<(), InvalidArtifact> {
        if self.schema.len() != self.ensemble.n_features {
            return Err(invalid(
                ArtifactCheck::SchemaWidth,
                format!(
                    "schema has {} features but the trees expect {}",
                    self.schema.len(),
                    self.ensemble.n_features
                ),
            ));
        }
        self.validate_schema()?;
        self.validate_trees()?;
        let base_score = self.ensemble.base_score;
        if !base_score.is_finite() {
            return Err(invalid(
                ArtifactCheck::BaseScore,
                format!("the base score is {base_score}; it must be a finite number"),
            ));
        }
        self.validate_link()?;
        self.calibration
            .validate()
            .map_err(|e| invalid(ArtifactCheck::Calibration, e.message))?;
        self.validate_quantiles()
    }

    /// Feature names, dictionaries, statistics and histograms.
    fn validate_schema(&self) -> Result<(), InvalidArtifact> {
        let mut names = HashSet::with_capacity(self.schema.len());
        for (i, feature) in self.schema.features.iter().enumerate() {
            if !names.insert(feature.name.as_str()) {
                return Err(invalid(
                    ArtifactCheck::FeatureNames,
                    format!(
                        "feature {i} is named {:?}, like an earlier feature; feature names must be unique",
                        feature.name
                    ),
                ));
            }
            if let FeatureKind::Categorical { categories } = &feature.kind {
                let mut codes: HashMap<&str, usize> = HashMap::with_capacity(categories.len());
                for (code, category) in categories.iter().enumerate() {
                    if let Some(first) = codes.insert(category, code) {
                        return Err(invalid(
                            ArtifactCheck::Categories,
                            format!(
                                "feature {:?} lists category {category:?} twice (codes {first} and {code}); each category has one code",
                                feature.name
                            ),
                        ));
                    }
                }
            }
            let stats = &feature.stats;
            if stats.missing > stats.rows {
                return Err(invalid(
                    ArtifactCheck::FeatureStats,
                    format!(
                        "feature {:?} has {} missing values in {} rows",
                        feature.name, stats.missing, stats.rows
                    ),
                ));
            }
            validate_histogram(feature).map_err(|m| {
                invalid(
                    ArtifactCheck::Histogram,
                    format!("feature {:?}: {m}", feature.name),
                )
            })?;
        }
        Ok(())
    }

    /// Tree structure and depth, then each node against the schema.
    fn validate_trees(&self) -> Result<(), InvalidArtifact> {
        let n_features = self.ensemble.n_features;
        for (t, tree) in self.ensemble.trees.iter().enumerate() {
            tree.validate(n_features).map_err(|e| {
                let check = match e {
                    TreeError::TooDeep { .. } => ArtifactCheck::TreeDepth,
                    TreeError::Malformed(_) => ArtifactCheck::TreeStructure,
                };
                invalid(check, format!("tree {t}: {e}"))
            })?;
            for (i, node) in tree.nodes.iter().enumerate() {
                let cover = node.cover();
                if !(cover.is_finite() && cover >= 0.0) {
                    return Err(invalid(
                        ArtifactCheck::Covers,
                        format!("tree {t}, node {i}: cover is {cover}; a cover counts training rows, so it is finite and not negative"),
                    ));
                }
                match node {
                    Node::Leaf { value, .. } => {
                        if !value.is_finite() {
                            return Err(invalid(
                                ArtifactCheck::LeafValues,
                                format!("tree {t}, node {i}: leaf value is {value}; leaf values must be finite"),
                            ));
                        }
                    }
                    Node::Split { feature, rule, .. } => {
                        // In range: the tree validated against the schema's width.
                        let feature = &self.schema.features[*feature as usize];
                        validate_split(feature, rule).map_err(|(check, m)| {
                            invalid(check, format!("tree {t}, node {i}: {m}"))
                        })?;
                    }
                }
            }
        }
        crate::compiled::category_words(&self.ensemble)
            .map_err(|m| invalid(ArtifactCheck::CategorySets, m))?;
        Ok(())
    }

    /// The link the task and learner call for, and no calibration of
    /// regression outputs.
    fn validate_link(&self) -> Result<(), InvalidArtifact> {
        let (expected, task) = match (&self.task, self.algorithm) {
            (Task::Regression { .. }, _) => (Link::Identity, "regression"),
            (Task::BinaryClassification { .. }, Algorithm::GradientBoosting) => {
                (Link::Logit, "binary classification")
            }
            (Task::BinaryClassification { .. }, Algorithm::RandomForest) => {
                (Link::Probability, "binary classification")
            }
        };
        if self.ensemble.link != expected {
            return Err(invalid(
                ArtifactCheck::Link,
                format!(
                    "{task} models trained by {} use the {expected:?} link, but this one names {:?}",
                    self.algorithm, self.ensemble.link
                ),
            ));
        }
        if matches!(self.task, Task::Regression { .. }) && self.calibration != Calibrator::Identity
        {
            return Err(invalid(
                ArtifactCheck::Calibration,
                format!(
                    "a regression model is not calibrated, but this one has a {} calibrator",
                    self.calibration.name()
                ),
            ));
        }
        Ok(())
    }

    /// 101 finite, ascending quantiles, or none.
    fn validate_quantiles(&self) -> Result<(), InvalidArtifact> {
        let q = &self.score_quantiles.values;
        let fail = |m: String| Err(invalid(ArtifactCheck::ScoreQuantiles, m));
        if !(q.is_empty() || q.len() == 101) {
            return fail(format!(
                "there are {} score quantiles; there must be 101 (the 0th to the 100th percentile), or none",
                q.len()
            ));
        }
        if let Some(k) = q.iter().position(|v| !v.is_finite()) {
            return fail(format!(
                "score quantile {k} is {}; quantiles must be finite",
                q[k]
            ));
        }
        if let Some(k) = q.windows(2).position(|w| w[1] < w[0]) {
            return fail(format!(
                "score quantiles decrease: quantile {} = {} is below quantile {k} = {}",
                k + 1,
                q[k + 1],
                q[k]
            ));
        }
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

/// Checks a feature's histogram against its kind and row count (see
/// [`ArtifactCheck::Histogram`]); drift checks index bins by these shapes.
fn validate_histogram(feature: &Feature) -> Result<(), String> {
    let h = &feature.histogram;
    match &feature.kind {
        FeatureKind::Numeric => {
            if let Some(k) = h.edges.iter().position(|e| e.is_nan()) {
                return Err(format!("histogram edge {k} is NaN"));
            }
            // Training takes edges at quantiles of the sorted values and
            // drops repeats, so they strictly ascend.
            if let Some(k) = h.edges.windows(2).position(|w| w[0] >= w[1]) {
                return Err(format!(
                    "histogram edges do not strictly ascend: edge {} = {} follows edge {k} = {}",
                    k + 1,
                    h.edges[k + 1],
                    h.edges[k]
                ));
            }
            if h.counts.len() != h.edges.len() + 1 {
                return Err(format!(
                    "a numeric histogram with {} edges has {} bins, but there are {} counts",
                    h.edges.len(),
                    h.edges.len() + 1,
                    h.counts.len()
                ));
            }
        }
        FeatureKind::Categorical { categories } => {
            if !h.edges.is_empty() {
                return Err(format!(
                    "a categorical histogram has no edges, but this one has {}",
                    h.edges.len()
                ));
            }
            if h.counts.len() != categories.len() {
                return Err(format!(
                    "{} categories but {} histogram counts; there is one count per category",
                    categories.len(),
                    h.counts.len()
                ));
            }
        }
    }
    let rows = feature.stats.rows;
    let total = h
        .counts
        .iter()
        .try_fold(h.missing, |sum, &c| sum.checked_add(c));
    match total {
        Some(total) if total <= rows => Ok(()),
        Some(total) => Err(format!(
            "the histogram counts {total} rows ({} of them missing), more than the {rows} rows the feature saw",
            h.missing
        )),
        None => Err(format!(
            "the histogram counts more than 2^64 rows, more than the {rows} rows the feature saw"
        )),
    }
}

/// Checks a split rule against the feature it splits on.
fn validate_split(feature: &Feature, rule: &SplitRule) -> Result<(), (ArtifactCheck, String)> {
    match (rule, &feature.kind) {
        (SplitRule::Numeric { threshold, .. }, FeatureKind::Numeric) => {
            if threshold.is_finite() {
                Ok(())
            } else {
                Err((
                    ArtifactCheck::Thresholds,
                    format!("the threshold on feature {:?} is {threshold}; training only places thresholds between finite values", feature.name),
                ))
            }
        }
        (SplitRule::Categorical { left, .. }, FeatureKind::Categorical { categories }) => {
            // Sorted (the tree validated), so the last code is the largest.
            match left.last() {
                Some(&code) if code as usize >= categories.len() => Err((
                    ArtifactCheck::SplitCategories,
                    format!(
                        "the split sends category code {code} of feature {:?} left, but its dictionary has {} categories",
                        feature.name,
                        categories.len()
                    ),
                )),
                _ => Ok(()),
            }
        }
        (SplitRule::Numeric { .. }, FeatureKind::Categorical { .. }) => Err((
            ArtifactCheck::SplitKind,
            format!("a numeric split on categorical feature {:?}", feature.name),
        )),
        (SplitRule::Categorical { .. }, FeatureKind::Numeric) => Err((
            ArtifactCheck::SplitKind,
            format!("a categorical split on numeric feature {:?}", feature.name),
        )),
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
                values: (0..=100).map(|i| f64::from(i) / 100.0).collect(),
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
