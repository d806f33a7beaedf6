//! # presage-pipeline
//!
//! The jobs `presage-train` runs on a feature table: [`fit`] (splits,
//! learner, calibration, evaluation beside the [`baseline`]s, registration),
//! [`scoring`] a table with a stored version, [`compare`] two versions,
//! and [`retrain`] behind the champion/challenger gate. [`encode`] turns a
//! table into the learners' columns and [`splits`] cuts it into train,
//! validation and test rows.
//!
//! It may depend on `presage-models`, `presage-learners`, `presage-data`
//! (for tables), `linfa-logistic` (the logistic baseline), `rayon`, `serde`
//! and `thiserror`; config files, rendering and the command line live in
//! `presage-train`, which hands the jobs their parsed sections.

pub mod baseline;
pub mod compare;
pub mod encode;
pub mod fit;
pub mod retrain;
pub mod scoring;
pub mod splits;
