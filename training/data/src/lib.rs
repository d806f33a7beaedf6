//! # presage-data
//!
//! Presage's table side: reading and writing CSV and Parquet tables
//! ([`table`]) and building a per-user training table from raw warehouse
//! extracts, point-in-time correct ([`extract`]), with rule segments and
//! onboarding KPIs over the built table.
//!
//! This is where polars lives. The feature spec itself (window, families,
//! label, what each feature means) is plain types in
//! [`presage_models::feature_spec`]; this crate compiles it to polars
//! expressions. It may depend on `presage-models`, `polars`, `serde`,
//! `toml` and `thiserror`; nothing here trains, renders or parses a
//! command line.

pub mod extract;
pub mod table;
