//! # presage-serving
//!
//! The library behind `presage-serve`: low-latency REST scoring of Presage
//! models, mapping probabilities to onboarding segments.
//!
//! [`store`] keeps the loaded models in an atomically swapped catalog and
//! reloads it from the registry (segment policies come from
//! `presage_models::policy`); [`row_parser`] turns request bodies into model
//! rows; [`routes`] holds the handlers, [`app`] the router and its
//! middleware, and [`server`] the connection loop with its limits;
//! [`heavy`] runs CPU-heavy work off the async workers. Errors are always
//! [`error::ApiError`] JSON. It may depend on `presage-models` (and so knows
//! the feature spec), axum, tokio, hyper and the metrics crates; never on a
//! training crate or a dataframe library.

pub mod allocator;
pub mod app;
pub mod config;
pub mod drift_window;
pub mod error;
pub mod heavy;
pub mod json;
pub mod online;
pub mod openapi;
pub mod routes;
pub mod row_parser;
pub mod server;
pub mod state;
pub mod store;
pub mod triggers;
