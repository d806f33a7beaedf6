//! The feature spec: which per-user features a model reads, what each one
//! means, and how one user's events become their values, as plain types
//! with no dataframe library.
//!
//! Training reads the spec from the `[window]`, `[features]` and `[label]`
//! sections of a config and compiles it to polars expressions (in
//! `presage-data`); the artifact stores it as JSON; the server can read it
//! back and compute the same values from live events. Both sides take the
//! feature list from [`catalog::event_features`] and the per-user window
//! from [`window::UserWindow`], so a feature's name, description and
//! meaning are written once.
//!
//! - [`spec`]: the serde types and their checks.
//! - [`window`]: one user's observation and label windows.
//! - [`catalog`]: the features a spec builds, given the event names seen.
//! - [`state`]: what one event does to each feature, and what a feature
//!   reads at the user's cutoff.
//! - [`online`]: a model's features for one user at any moment, from the
//!   spec stored in its artifact.

pub mod catalog;
pub mod online;
pub mod spec;
pub mod state;
pub mod window;
