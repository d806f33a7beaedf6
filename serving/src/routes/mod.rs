//! HTTP handlers, one module per area: scoring, model information, and
//! health and metrics.

pub mod health;
pub mod models;
pub mod predict;
