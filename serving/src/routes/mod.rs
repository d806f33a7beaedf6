//! HTTP handlers, one module per area: scoring, model information,
//! health and metrics, admin, the online store, and the Open Inference
//! Protocol (`v2`).

pub mod admin;
pub mod health;
pub mod models;
pub mod online;
pub mod predict;
pub mod v2;
