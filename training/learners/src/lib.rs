//! # presage-learners
//!
//! Presage's tree learners as a library: histogram gradient boosting and a
//! random forest, producing the [`presage_models::ensemble::Ensemble`] that
//! the artifact stores and the compiled scorer runs.
//!
//! Stages are modules named as in LightGBM, so a reader who knows it finds
//! their way: [`dataset`] (the columns a learner trains on), [`binning`]
//! (values → `u8` bins), [`histogram`] (gradient sums per bin, with
//! subtraction), [`split`] (best split per feature, numeric and
//! categorical), [`grower`] (leaf-wise tree growth), [`booster`] (gradient
//! boosting) and [`forest`] (random forest). [`params`] checks
//! hyper-parameters once; [`learner`] (default feature `linfa`) exposes
//! both learners through linfa's `Fit`/`Predict` traits.
//!
//! It may depend on `presage-models`, `rayon`, `serde` and `thiserror`
//! (and `linfa` with `ndarray` behind the `linfa` feature), and on nothing
//! that reads tables, draws plots or parses command lines: taking the
//! booster as a library costs no dataframe library.

pub mod binning;
pub mod booster;
pub mod dataset;
pub mod forest;
pub mod grower;
pub mod histogram;
#[cfg(feature = "linfa")]
pub mod learner;
pub mod params;
pub mod split;
