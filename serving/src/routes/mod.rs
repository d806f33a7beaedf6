//! HTTP handlers, one module per area: scoring, model information,
//! health and metrics, and admin.

pub mod admin;
pub mod health;
pub mod models;
pub mod predict;
