//! What `presage-train` prints and writes for people: terminal tables and
//! self-contained HTML reports with inline SVG charts (plotters). The jobs
//! themselves live in the library crates; these modules only format their
//! results.
//!
//! - [`metrics_text`]: the metrics table and its JSON form.
//! - [`compare_html`]: the version comparison report.
//! - [`experiment_text`] and [`experiment_html`]: the A/B analysis as a
//!   terminal table and as a report.

pub mod compare_html;
pub mod experiment_html;
pub mod experiment_text;
pub mod metrics_text;
