//! # presage-models
//!
//! The core both Presage binaries link: the tree-ensemble format
//! ([`tree`], [`ensemble`]), the compiled scorer ([`compiled`]), feature
//! contributions ([`shap`]), calibration ([`calibration`]), evaluation
//! metrics ([`metrics`]) and their curves ([`curves`]), the feature schema
//! ([`schema`]) and the per-feature training summaries ([`summary`]), the
//! versioned artifact file ([`artifact`]), the on-disk model registry
//! ([`registry`]), segment policies ([`policy`], [`rule`]), drift
//! ([`drift`], [`stats`]) and the feature spec ([`feature_spec`]): what each
//! per-user feature means and how one user's events become its value.
//!
//! Nothing here reads CSV or Parquet: rows arrive as `&[f64]` in schema order
//! (see [`schema`] for how categories are encoded), so serving can link this
//! crate without a dataframe library. It may depend on `serde`, `serde_json`,
//! `toml`, `bincode`, `sha2`, `thiserror` and `rayon`, and on no other
//! Presage crate.

pub mod artifact;
mod atomic_file;
pub mod calibration;
pub mod compiled;
pub mod curves;
pub mod drift;
pub mod ensemble;
pub mod feature_spec;
pub mod metrics;
pub mod policy;
pub mod registry;
pub mod rng;
pub mod rule;
pub mod schema;
pub mod shap;
pub mod stats;
pub mod summary;
pub mod time;
pub mod tree;
pub mod trigger;

pub use atomic_file::write_atomic;
