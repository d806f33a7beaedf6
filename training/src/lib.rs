//! # presage-training
//!
//! The learners and the training pipeline behind `presage-train`.
//!
//! Stages are modules named as in LightGBM, so a reader who knows it finds
//! their way: [`binning`] (values → `u8` bins), [`histogram`] (gradient
//! sums per bin, with subtraction), [`split`] (best split per feature,
//! numeric and categorical), [`grower`] (leaf-wise tree growth),
//! [`booster`] (gradient boosting) and [`forest`] (random forest).
//! [`params`] checks hyper-parameters once; [`learner`] exposes both
//! learners through linfa's `Fit`/`Predict` traits. [`table`] and
//! [`features`] read data through polars; [`fit`] runs a whole training job
//! and registers the artifact.

pub mod baseline;
pub mod binning;
pub mod booster;
pub mod compare;
pub mod compare_html;
pub mod experiment;
pub mod extract;
pub mod features;
pub mod fit;
pub mod forest;
pub mod grower;
pub mod histogram;
pub mod learner;
pub mod params;
pub mod report;
pub mod retrain;
pub mod scoring;
pub use presage_models::rng;
pub mod split;
pub mod splits;
pub mod summary;
pub mod table;
