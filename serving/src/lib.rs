//! # presage-serving
//!
//! The library behind `presage-serve`: low-latency REST scoring of Presage
//! models, mapping probabilities to onboarding segments.
//!
//! [`store`] keeps the loaded models in an atomically swapped catalog and
//! reloads it from the registry; [`policy`] turns probabilities into
//! segments; [`row_parser`] turns request bodies into model rows; [`routes`]
//! holds the handlers and [`app`] the router and its middleware. Errors are
//! always [`error::ApiError`] JSON. This crate links `presage-models` and no
//! dataframe library.

pub mod app;
pub mod config;
pub mod drift_window;
pub mod error;
pub mod json;
pub mod openapi;
pub use presage_models::policy;
pub mod routes;
pub mod row_parser;
pub mod state;
pub mod store;
