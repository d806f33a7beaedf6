//! Hyper-parameters: a raw, all-optional [`ParamSet`] (from a TOML `[params]`
//! table and command-line flags) checked once into [`GbmParams`] or
//! [`ForestParams`]. Names follow LightGBM so settings carry over. Unknown
//! keys and out-of-range values are errors that name the key and the allowed
//! range; learners only ever see checked parameters.

use serde::{Deserialize, Serialize};

use crate::grower::GrowerConfig;
use crate::split::SplitConfig;

/// A parameter error: names the parameter and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("parameter `{name}` = {value}: {allowed}")]
pub struct ParamError {
    /// Parameter name.
    pub name: &'static str,
    /// The value given.
    pub value: String,
    /// What would be accepted.
    pub allowed: String,
}

/// The learning objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Binary log loss (probabilities).
    Binary,
    /// L2 regression.
    Regression,
}

/// Early-stopping metric on the validation rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppingMetric {
    /// Binary log loss (lower is better).
    BinaryLogloss,
    /// ROC-AUC (higher is better).
    Auc,
    /// Mean squared error (regression).
    L2,
}

/// How probabilities are calibrated on the validation rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationMethod {
    /// The default: Platt scaling, which keeps the ranking (and so AUC)
    /// intact. Isotonic steps create ties and 0/1 probabilities that hurt
    /// AUC and log loss on small validation sets.
    Auto,
    /// No calibration.
    None,
    /// Platt (logistic) scaling.
    Platt,
    /// Isotonic regression.
    Isotonic,
}

/// Hyper-parameters as given: every field optional. Unknown keys are
/// rejected when parsing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSet {
    pub objective: Option<Objective>,
    pub num_iterations: Option<i64>,
    pub learning_rate: Option<f64>,
    pub num_leaves: Option<i64>,
    pub max_depth: Option<i64>,
    pub min_data_in_leaf: Option<i64>,
    pub min_sum_hessian_in_leaf: Option<f64>,
    pub min_gain_to_split: Option<f64>,
    pub lambda_l2: Option<f64>,
    pub max_bin: Option<i64>,
    pub feature_fraction: Option<f64>,
    pub feature_fraction_bynode: Option<f64>,
    pub bagging_fraction: Option<f64>,
    pub bagging_freq: Option<i64>,
    pub early_stopping_rounds: Option<i64>,
    pub metric: Option<StoppingMetric>,
    pub scale_pos_weight: Option<f64>,
    pub num_threads: Option<i64>,
    pub seed: Option<u64>,
    pub cat_smooth: Option<f64>,
    pub cat_l2: Option<f64>,
    pub max_cat_threshold: Option<i64>,
    pub max_cat_to_onehot: Option<i64>,
    pub min_data_per_group: Option<i64>,
    pub calibration: Option<CalibrationMethod>,
}

impl ParamSet {
    /// Values in `other` replace values here (flags over config file).
    pub fn overridden_by(mut self, other: &ParamSet) -> ParamSet {
        macro_rules! merge {
            ($($field:ident),*) => { $( if other.$field.is_some() { self.$field = other.$field; } )* };
        }
        merge!(
            objective,
            num_iterations,
            learning_rate,
            num_leaves,
            max_depth,
            min_data_in_leaf,
            min_sum_hessian_in_leaf,
            min_gain_to_split,
            lambda_l2,
            max_bin,
            feature_fraction,
            feature_fraction_bynode,
            bagging_fraction,
            bagging_freq,
            early_stopping_rounds,
            metric,
            scale_pos_weight,
            num_threads,
            seed,
            cat_smooth,
            cat_l2,
            max_cat_threshold,
            max_cat_to_onehot,
            min_data_per_group,
            calibration
        );
        self
    }
}

fn int_in(
    name: &'static str,
    value: Option<i64>,
    default: i64,
    lo: i64,
    hi: i64,
) -> Result<usize, ParamError> {
    let v = value.unwrap_or(default);
    if v < lo || v > hi {
        return Err(ParamError {
            name,
            value: v.to_string(),
            allowed: format!("must be an integer in [{lo}, {hi}]"),
        });
    }
    Ok(v as usize)
}

fn float_in(
    name: &'static str,
    value: Option<f64>,
    default: f64,
    lo: f64,
    hi: f64,
    lo_open: bool,
) -> Result<f64, ParamError> {
    let v = value.unwrap_or(default);
    let ok = v.is_finite() && (if lo_open { v > lo } else { v >= lo }) && v <= hi;
    if !ok {
        let open = if lo_open { "(" } else { "[" };
        let hi_text = if hi.is_infinite() {
            "inf)".to_string()
        } else {
            format!("{hi}]")
        };
        return Err(ParamError {
            name,
            value: v.to_string(),
            allowed: format!("must be a number in {open}{lo}, {hi_text}"),
        });
    }
    Ok(v)
}

/// Parameters shared by both learners once checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeParams {
    pub objective: Objective,
    pub num_iterations: usize,
    pub num_leaves: usize,
    pub max_depth: Option<usize>,
    pub min_data_in_leaf: usize,
    pub min_sum_hessian_in_leaf: f64,
    pub min_gain_to_split: f64,
    pub lambda_l2: f64,
    pub max_bin: usize,
    pub feature_fraction: f64,
    pub feature_fraction_bynode: f64,
    pub cat_smooth: f64,
    pub cat_l2: f64,
    pub max_cat_threshold: usize,
    pub max_cat_to_onehot: usize,
    pub min_data_per_group: usize,
    pub num_threads: usize,
    pub seed: u64,
    pub calibration: CalibrationMethod,
}

/// Checked gradient-boosting parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct GbmParams {
    pub tree: TreeParams,
    pub learning_rate: f64,
    pub bagging_fraction: f64,
    pub bagging_freq: usize,
    pub early_stopping_rounds: usize,
    pub metric: StoppingMetric,
    pub scale_pos_weight: f64,
}

/// Checked random-forest parameters (`num_iterations` = number of trees).
#[derive(Debug, Clone, PartialEq)]
pub struct ForestParams {
    pub tree: TreeParams,
    /// Fraction of rows drawn (with replacement) for each tree.
    pub bagging_fraction: f64,
}

/// Which learner, for algorithm-specific defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learner {
    Gbm,
    Forest,
}

impl ParamSet {
    fn check_tree(&self, learner: Learner, n_features: usize) -> Result<TreeParams, ParamError> {
        let rf = learner == Learner::Forest;
        let bynode_default = if rf && n_features > 0 {
            ((n_features as f64).sqrt().floor().max(1.0)) / n_features as f64
        } else {
            1.0
        };
        let max_depth = match self.max_depth.unwrap_or(-1) {
            d if d <= 0 => None,
            d => Some(int_in("max_depth", Some(d), -1, 1, 64)?),
        };
        let objective = self.objective.unwrap_or(Objective::Binary);
        Ok(TreeParams {
            objective,
            num_iterations: int_in("num_iterations", self.num_iterations, 100, 1, 100_000)?,
            num_leaves: int_in(
                "num_leaves",
                self.num_leaves,
                if rf { 131_072 } else { 31 },
                2,
                131_072,
            )?,
            max_depth,
            min_data_in_leaf: int_in(
                "min_data_in_leaf",
                self.min_data_in_leaf,
                if rf { 1 } else { 20 },
                1,
                i64::MAX,
            )?,
            min_sum_hessian_in_leaf: float_in(
                "min_sum_hessian_in_leaf",
                self.min_sum_hessian_in_leaf,
                if rf { 0.0 } else { 1e-3 },
                0.0,
                f64::INFINITY,
                false,
            )?,
            min_gain_to_split: float_in(
                "min_gain_to_split",
                self.min_gain_to_split,
                0.0,
                0.0,
                f64::INFINITY,
                false,
            )?,
            lambda_l2: float_in("lambda_l2", self.lambda_l2, 0.0, 0.0, f64::INFINITY, false)?,
            max_bin: int_in("max_bin", self.max_bin, 255, 2, 255)?,
            feature_fraction: float_in(
                "feature_fraction",
                self.feature_fraction,
                1.0,
                0.0,
                1.0,
                true,
            )?,
            feature_fraction_bynode: float_in(
                "feature_fraction_bynode",
                self.feature_fraction_bynode,
                bynode_default,
                0.0,
                1.0,
                true,
            )?,
            cat_smooth: float_in(
                "cat_smooth",
                self.cat_smooth,
                10.0,
                0.0,
                f64::INFINITY,
                false,
            )?,
            cat_l2: float_in("cat_l2", self.cat_l2, 10.0, 0.0, f64::INFINITY, false)?,
            max_cat_threshold: int_in("max_cat_threshold", self.max_cat_threshold, 32, 1, 254)?,
            max_cat_to_onehot: int_in("max_cat_to_onehot", self.max_cat_to_onehot, 4, 1, 254)?,
            min_data_per_group: int_in(
                "min_data_per_group",
                self.min_data_per_group,
                if rf { 1 } else { 100 },
                1,
                i64::MAX,
            )?,
            num_threads: int_in("num_threads", self.num_threads, 0, 0, 1024)?,
            seed: self.seed.unwrap_or(42),
            calibration: self.calibration.unwrap_or(CalibrationMethod::Auto),
        })
    }

    /// Checks parameters for gradient boosting.
    pub fn check_gbm(&self, n_features: usize) -> Result<GbmParams, ParamError> {
        let tree = self.check_tree(Learner::Gbm, n_features)?;
        let metric = self.metric.unwrap_or(match tree.objective {
            Objective::Binary => StoppingMetric::BinaryLogloss,
            Objective::Regression => StoppingMetric::L2,
        });
        if tree.objective == Objective::Regression && metric != StoppingMetric::L2 {
            return Err(ParamError {
                name: "metric",
                value: format!("{metric:?}").to_lowercase(),
                allowed: "regression supports only `l2`".into(),
            });
        }
        Ok(GbmParams {
            learning_rate: float_in("learning_rate", self.learning_rate, 0.1, 0.0, 1.0, true)?,
            bagging_fraction: float_in(
                "bagging_fraction",
                self.bagging_fraction,
                1.0,
                0.0,
                1.0,
                true,
            )?,
            bagging_freq: int_in("bagging_freq", self.bagging_freq, 0, 0, 100_000)?,
            early_stopping_rounds: int_in(
                "early_stopping_rounds",
                self.early_stopping_rounds,
                0,
                0,
                100_000,
            )?,
            metric,
            scale_pos_weight: float_in(
                "scale_pos_weight",
                self.scale_pos_weight,
                1.0,
                0.0,
                f64::INFINITY,
                true,
            )?,
            tree,
        })
    }

    /// Checks parameters for a random forest.
    pub fn check_forest(&self, n_features: usize) -> Result<ForestParams, ParamError> {
        for (name, set) in [
            ("learning_rate", self.learning_rate.is_some()),
            (
                "early_stopping_rounds",
                self.early_stopping_rounds.is_some(),
            ),
            ("bagging_freq", self.bagging_freq.is_some()),
            ("scale_pos_weight", self.scale_pos_weight.is_some()),
            ("metric", self.metric.is_some()),
        ] {
            if set {
                return Err(ParamError {
                    name,
                    value: "(set)".into(),
                    allowed: "does not apply to random forests (algo = rf); remove it".into(),
                });
            }
        }
        Ok(ForestParams {
            tree: self.check_tree(Learner::Forest, n_features)?,
            bagging_fraction: float_in(
                "bagging_fraction",
                self.bagging_fraction,
                1.0,
                0.0,
                1.0,
                true,
            )?,
        })
    }
}

impl TreeParams {
    /// The grower configuration these parameters describe.
    pub fn grower_config(&self, histogram_subtraction: bool) -> GrowerConfig {
        GrowerConfig {
            num_leaves: self.num_leaves,
            max_depth: self.max_depth,
            split: SplitConfig {
                lambda_l2: self.lambda_l2,
                min_data_in_leaf: self.min_data_in_leaf as f64,
                min_sum_hessian_in_leaf: self.min_sum_hessian_in_leaf,
                min_gain_to_split: self.min_gain_to_split,
                cat_smooth: self.cat_smooth,
                cat_l2: self.cat_l2,
                max_cat_threshold: self.max_cat_threshold,
                max_cat_to_onehot: self.max_cat_to_onehot,
                min_data_per_group: self.min_data_per_group as f64,
            },
            feature_fraction_bynode: self.feature_fraction_bynode,
            histogram_subtraction,
            small_node_rows: if histogram_subtraction { 0 } else { 64 },
        }
    }

    /// Name/value pairs of every parameter, for the artifact.
    pub fn describe(&self) -> Vec<(String, String)> {
        vec![
            (
                "objective".into(),
                format!("{:?}", self.objective).to_lowercase(),
            ),
            ("num_iterations".into(), self.num_iterations.to_string()),
            ("num_leaves".into(), self.num_leaves.to_string()),
            (
                "max_depth".into(),
                self.max_depth.map_or("-1".into(), |d| d.to_string()),
            ),
            ("min_data_in_leaf".into(), self.min_data_in_leaf.to_string()),
            (
                "min_sum_hessian_in_leaf".into(),
                self.min_sum_hessian_in_leaf.to_string(),
            ),
            (
                "min_gain_to_split".into(),
                self.min_gain_to_split.to_string(),
            ),
            ("lambda_l2".into(), self.lambda_l2.to_string()),
            ("max_bin".into(), self.max_bin.to_string()),
            ("feature_fraction".into(), self.feature_fraction.to_string()),
            (
                "feature_fraction_bynode".into(),
                self.feature_fraction_bynode.to_string(),
            ),
            ("cat_smooth".into(), self.cat_smooth.to_string()),
            ("cat_l2".into(), self.cat_l2.to_string()),
            (
                "max_cat_threshold".into(),
                self.max_cat_threshold.to_string(),
            ),
            (
                "max_cat_to_onehot".into(),
                self.max_cat_to_onehot.to_string(),
            ),
            (
                "min_data_per_group".into(),
                self.min_data_per_group.to_string(),
            ),
            ("num_threads".into(), self.num_threads.to_string()),
            ("seed".into(), self.seed.to_string()),
            (
                "calibration".into(),
                format!("{:?}", self.calibration).to_lowercase(),
            ),
        ]
    }
}

impl GbmParams {
    /// Every parameter as sorted name/value pairs.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut all = self.tree.describe();
        all.extend([
            ("learning_rate".into(), self.learning_rate.to_string()),
            ("bagging_fraction".into(), self.bagging_fraction.to_string()),
            ("bagging_freq".into(), self.bagging_freq.to_string()),
            (
                "early_stopping_rounds".into(),
                self.early_stopping_rounds.to_string(),
            ),
            ("metric".into(), format!("{:?}", self.metric).to_lowercase()),
            ("scale_pos_weight".into(), self.scale_pos_weight.to_string()),
        ]);
        all.sort();
        all
    }
}

impl ForestParams {
    /// Every parameter as sorted name/value pairs.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut all = self.tree.describe();
        all.push(("bagging_fraction".into(), self.bagging_fraction.to_string()));
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = toml::from_str::<ParamSet>("num_leaf = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `num_leaf`"), "{err}");
    }

    #[test]
    fn out_of_range_names_the_range() {
        let p = ParamSet {
            learning_rate: Some(0.0),
            ..Default::default()
        };
        let err = p.check_gbm(3).unwrap_err();
        assert_eq!(err.name, "learning_rate");
        assert_eq!(
            err.to_string(),
            "parameter `learning_rate` = 0: must be a number in (0, 1]"
        );
        let p = ParamSet {
            max_bin: Some(1000),
            ..Default::default()
        };
        assert_eq!(
            p.check_gbm(3).unwrap_err().allowed,
            "must be an integer in [2, 255]"
        );
    }

    #[test]
    fn flags_override_config() {
        let file = ParamSet {
            num_leaves: Some(15),
            learning_rate: Some(0.05),
            ..Default::default()
        };
        let flags = ParamSet {
            num_leaves: Some(63),
            ..Default::default()
        };
        let merged = file.overridden_by(&flags);
        assert_eq!(merged.num_leaves, Some(63));
        assert_eq!(merged.learning_rate, Some(0.05));
    }

    #[test]
    fn forest_defaults_sample_sqrt_features() {
        let p = ParamSet::default().check_forest(16).unwrap();
        assert_eq!(p.tree.feature_fraction_bynode, 0.25);
        assert_eq!(p.tree.min_data_in_leaf, 1);
    }
}
