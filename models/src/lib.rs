//! # presage-models
//!
//! The core both Presage binaries link: the tree-ensemble format
//! ([`tree`], [`ensemble`]), the compiled scorer ([`compiled`]), feature
//! contributions ([`shap`]), calibration ([`calibration`]), evaluation
//! metrics ([`metrics`]), the feature schema ([`schema`]), the versioned
//! artifact file ([`artifact`]) and the on-disk model registry ([`registry`]).
//!
//! Nothing here reads CSV or Parquet: rows arrive as `&[f64]` in schema order
//! (see [`schema`] for how categories are encoded), so serving can link this
//! crate without a dataframe library.

pub mod artifact;
mod atomic_file;
pub mod calibration;
pub mod compiled;
pub mod drift;
pub mod ensemble;
pub mod metrics;
pub mod policy;
pub mod registry;
pub mod rng;
pub mod rule;
pub mod schema;
pub mod shap;
pub mod stats;
pub mod time;
pub mod tree;

pub use atomic_file::write_atomic;
