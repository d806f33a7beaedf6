//! The statistics of an experiment: the sample-ratio check, and per
//! outcome and segment the arms' rates or means, the difference with its
//! confidence interval, the tests, Holm's correction across segments, and
//! the power answers (minimum detectable effect, users needed).

use presage_models::stats::{
    chi_square_2x2, chi_square_split, holm, mde_two_means, mde_two_proportions, normal_quantile,
    sample_size_two_means, sample_size_two_proportions, student_t_quantile, two_proportion_z,
    welch_t,
};
use serde::Serialize;

use crate::data::{AssignmentCounts, Observations};
use crate::numbers::group_digits;
use crate::spec::{ExperimentSettings, OutcomeSpec};

/// The sample-ratio check of one group of users.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatioCheck {
    /// `all` or a segment.
    pub segment: String,
    /// Control users.
    pub control: u64,
    /// Treatment users.
    pub treatment: u64,
    /// Treatment users expected under the planned split.
    pub expected_treatment: f64,
    /// Chi-square goodness-of-fit statistic (1 degree of freedom).
    pub chi_square: f64,
    /// Its p-value.
    pub p_value: f64,
    /// Whether `p_value` is below `srm_alpha`.
    pub mismatch: bool,
}

/// One arm of one comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmSummary {
    /// Users with a complete outcome.
    pub users: u64,
    /// Users who converted (binary outcomes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversions: Option<u64>,
    /// The rate (binary) or the mean.
    pub mean: f64,
    /// Sample standard deviation (n - 1).
    pub std_dev: f64,
}

/// Control against treatment on one outcome in one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// `all` or a segment.
    pub segment: String,
    /// Control.
    pub control: ArmSummary,
    /// Treatment.
    pub treatment: ArmSummary,
    /// Treatment minus control (rate points as a share, or the outcome's unit).
    pub difference: f64,
    /// Lower end of the confidence interval of the difference.
    pub ci_low: Option<f64>,
    /// Upper end.
    pub ci_high: Option<f64>,
    /// `difference / control mean`.
    pub relative_lift: Option<f64>,
    /// Confidence interval of the relative lift: the log of the rate ratio
    /// (Katz) for binary outcomes, the delta method on the ratio of means
    /// otherwise. Only when the control's rate or mean is positive.
    pub lift_ci: Option<[f64; 2]>,
    /// `two-proportion z` or `Welch t`.
    pub test: &'static str,
    /// z or t.
    pub statistic: Option<f64>,
    /// Two-sided p-value of that test.
    pub p_value: Option<f64>,
    /// Pearson chi-square on the 2×2 table (binary outcomes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi_square: Option<f64>,
    /// Its p-value (equal to the z-test's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi_square_p_value: Option<f64>,
    /// Welch–Satterthwaite degrees of freedom (continuous outcomes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degrees_of_freedom: Option<f64>,
    /// Holm-adjusted p-value across the segments (segments only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_holm: Option<f64>,
    /// Significant at alpha (segments: after Holm).
    pub significant: bool,
    /// Smallest absolute difference this many users detect with the
    /// configured power.
    pub mde: Option<f64>,
    /// `mde` relative to the control mean.
    pub mde_relative: Option<f64>,
    /// Users per variant needed to detect the target lift.
    pub users_needed: Option<f64>,
    /// What the numbers say, in words.
    pub verdict: String,
}

/// One outcome's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeResult {
    /// The outcome's name.
    pub outcome: String,
    /// Its kind (`conversion`, `retention`, `time_to_event`, `count`, `sessions`).
    pub kind: String,
    /// What is measured.
    pub definition: String,
    /// Users left out because their outcome window passes the end of the
    /// extract (assigned too late).
    pub assigned_too_late: u64,
    /// Overall first, then each segment.
    pub comparisons: Vec<Comparison>,
}

/// The whole analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    /// The assignment extract.
    pub assignments: String,
    /// Control variant.
    pub control: String,
    /// Treatment variant.
    pub treatment: String,
    /// Planned treatment share.
    pub planned_treatment_share: f64,
    /// Significance level.
    pub alpha: f64,
    /// Confidence level of the intervals (`1 - alpha`).
    pub confidence: f64,
    /// Power for the MDE and the sample size.
    pub power: f64,
    /// The relative lift the sample size is computed for.
    pub target_lift: f64,
    /// Sample-ratio threshold.
    pub srm_alpha: f64,
    /// The end of the extract (UTC).
    pub extract_end: String,
    /// What happened to the assignment rows.
    pub counts: AssignmentCounts,
    /// The sample-ratio checks, overall first.
    pub sample_ratio: Vec<RatioCheck>,
    /// Whether any sample-ratio check failed: the results are then not valid.
    pub sample_ratio_mismatch: bool,
    /// Per outcome.
    pub outcomes: Vec<OutcomeResult>,
}

impl RatioCheck {
    /// The observed share of treatment users.
    pub fn treatment_share(&self) -> f64 {
        self.treatment as f64 / (self.control + self.treatment).max(1) as f64
    }
}

impl Comparison {
    /// Whether the outcome is a rate (shown in percent and points).
    pub fn is_rate(&self) -> bool {
        self.control.conversions.is_some()
    }
}

impl OutcomeResult {
    /// Whether the outcome is a rate.
    pub fn is_rate(&self) -> bool {
        self.comparisons.first().is_some_and(Comparison::is_rate)
    }
}

fn summary(values: &[f64], binary: bool) -> ArmSummary {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    ArmSummary {
        users: values.len() as u64,
        conversions: binary.then(|| values.iter().filter(|&&v| v > 0.0).count() as u64),
        mean,
        std_dev: var.sqrt(),
    }
}

/// Compares the two arms' values.
fn compare(
    segment: &str,
    control: &[f64],
    treatment: &[f64],
    binary: bool,
    settings: &ExperimentSettings,
) -> Comparison {
    let (c, t) = (summary(control, binary), summary(treatment, binary));
    let alpha = settings.alpha;
    let difference = t.mean - c.mean;
    let relative = |x: f64| (c.mean != 0.0).then(|| x / c.mean.abs());
    let (nc, nt) = (c.users as f64, t.users as f64);
    let mut out = Comparison {
        segment: segment.to_owned(),
        difference,
        ci_low: None,
        ci_high: None,
        relative_lift: relative(difference),
        lift_ci: None,
        test: if binary {
            "two-proportion z"
        } else {
            "Welch t"
        },
        statistic: None,
        p_value: None,
        chi_square: None,
        chi_square_p_value: None,
        degrees_of_freedom: None,
        p_holm: None,
        significant: false,
        mde: None,
        mde_relative: None,
        users_needed: None,
        verdict: String::new(),
        control: c.clone(),
        treatment: t.clone(),
    };
    if c.users == 0 || t.users == 0 {
        return out;
    }
    let target = settings.target_lift * c.mean.abs();
    if binary {
        let (xc, xt) = (c.conversions.unwrap_or(0), t.conversions.unwrap_or(0));
        let se = (c.mean * (1.0 - c.mean) / nc + t.mean * (1.0 - t.mean) / nt).sqrt();
        let z = normal_quantile(1.0 - alpha / 2.0);
        out.ci_low = Some(difference - z * se);
        out.ci_high = Some(difference + z * se);
        if let Some(test) = two_proportion_z(xc, c.users, xt, t.users) {
            out.statistic = Some(test.statistic);
            out.p_value = Some(test.p_value);
        }
        if let Some(test) = chi_square_2x2(xc, c.users, xt, t.users) {
            out.chi_square = Some(test.statistic);
            out.chi_square_p_value = Some(test.p_value);
        }
        if xc > 0 && xt > 0 {
            let log_ratio = (t.mean / c.mean).ln();
            let se = ((1.0 - t.mean) / xt as f64 + (1.0 - c.mean) / xc as f64).sqrt();
            out.lift_ci = Some([
                (log_ratio - z * se).exp() - 1.0,
                (log_ratio + z * se).exp() - 1.0,
            ]);
        }
        if c.mean > 0.0 && c.mean < 1.0 {
            out.mde = Some(mde_two_proportions(c.mean, nc, nt, alpha, settings.power));
            out.users_needed = Some(sample_size_two_proportions(
                c.mean,
                target,
                alpha,
                settings.power,
            ));
        }
    } else {
        let (vc, vt) = (c.std_dev * c.std_dev, t.std_dev * t.std_dev);
        if let Some((test, df)) = welch_t((c.mean, vc, nc), (t.mean, vt, nt)) {
            let se = (vc / nc + vt / nt).sqrt();
            let q = student_t_quantile(1.0 - alpha / 2.0, df);
            out.ci_low = Some(difference - q * se);
            out.ci_high = Some(difference + q * se);
            out.statistic = Some(test.statistic);
            out.p_value = Some(test.p_value);
            out.degrees_of_freedom = Some(df);
            if c.mean > 0.0 {
                let ratio = t.mean / c.mean;
                let se = (vt / nt / (c.mean * c.mean) + t.mean * t.mean * vc / nc / c.mean.powi(4))
                    .sqrt();
                let z = normal_quantile(1.0 - alpha / 2.0);
                out.lift_ci = Some([ratio - z * se - 1.0, ratio + z * se - 1.0]);
            }
            out.mde = Some(mde_two_means(vc, nc, vt, nt, alpha, settings.power));
            if target > 0.0 {
                out.users_needed =
                    Some(sample_size_two_means(vc, vt, target, alpha, settings.power));
            }
        }
    }
    out.mde_relative = out.mde.and_then(relative);
    out.significant = out.p_value.is_some_and(|p| p < alpha);
    out
}

/// Fills in each comparison's verdict.
fn verdict(c: &Comparison, settings: &ExperimentSettings, unit: &str) -> String {
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let Some(p) = c.p_holm.or(c.p_value) else {
        return "no test: an arm has too few users or no variation".into();
    };
    let p = if c.p_holm.is_some() {
        format!("Holm p = {p:.3}")
    } else {
        format!("p = {p:.3}")
    };
    if c.significant {
        let direction = if c.difference > 0.0 {
            "raises"
        } else {
            "lowers"
        };
        let size = if unit == "points" {
            format!("{:.1} points", 100.0 * c.difference.abs())
        } else {
            format!("{:.3}{unit}", c.difference.abs())
        };
        let lift = c
            .relative_lift
            .map_or(String::new(), |l| format!(" ({:+.1}%)", 100.0 * l));
        return format!("significant: treatment {direction} it by {size}{lift}");
    }
    let target = settings.target_lift;
    match (c.mde_relative, c.users_needed) {
        (Some(mde), _) if mde <= target => format!(
            "not significant ({p}), and a {} lift would have been detected: no effect of that size",
            pct(target)
        ),
        (Some(mde), Some(needed)) => format!(
            "inconclusive ({p}): too few users to detect a {} lift (this sample detects {}; needs about {} users per variant)",
            pct(target),
            pct(mde),
            group_digits(needed as u64)
        ),
        _ => format!("not significant ({p})"),
    }
}

fn ratio_check(
    segment: &str,
    control: u64,
    treatment: u64,
    settings: &ExperimentSettings,
) -> RatioCheck {
    let share = settings.treatment_share;
    let test = chi_square_split(control, treatment, share);
    let (chi_square, p_value) = test.map_or((0.0, 1.0), |t| (t.statistic, t.p_value));
    RatioCheck {
        segment: segment.to_owned(),
        control,
        treatment,
        expected_treatment: (control + treatment) as f64 * share,
        chi_square,
        p_value,
        mismatch: p_value < settings.srm_alpha,
    }
}

/// Analyses the observations.
pub fn analyse(
    observations: &Observations,
    outcomes: &[OutcomeSpec],
    settings: &ExperimentSettings,
    assignments: &str,
    extract_end: String,
) -> ExperimentReport {
    let obs = observations;
    let groups: Vec<Option<usize>> = std::iter::once(None)
        .chain((0..obs.segments.len()).map(Some))
        .collect();
    let name = |g: Option<usize>| g.map_or("all".to_owned(), |s| obs.segments[s].clone());
    let in_group = |g: Option<usize>, seg: Option<usize>| g.is_none() || g == seg;

    let sample_ratio: Vec<RatioCheck> = groups
        .iter()
        .map(|&g| {
            let members = obs.units.iter().filter(|u| in_group(g, u.segment));
            let (mut control, mut treatment) = (0, 0);
            for u in members {
                if u.treated {
                    treatment += 1;
                } else {
                    control += 1;
                }
            }
            ratio_check(&name(g), control, treatment, settings)
        })
        .collect();

    let results = outcomes
        .iter()
        .zip(&obs.values)
        .map(|(outcome, values)| {
            let binary = outcome.kind.is_binary();
            let mut comparisons: Vec<Comparison> = groups
                .iter()
                .map(|&g| {
                    let (mut control, mut treatment) = (Vec::new(), Vec::new());
                    for (u, v) in obs.units.iter().zip(values) {
                        if let (Some(v), true) = (v, in_group(g, u.segment)) {
                            if u.treated {
                                treatment.push(*v);
                            } else {
                                control.push(*v);
                            }
                        }
                    }
                    compare(&name(g), &control, &treatment, binary, settings)
                })
                .collect();
            if comparisons.len() > 2 {
                let segments = &mut comparisons[1..];
                let p: Vec<f64> = segments.iter().map(|c| c.p_value.unwrap_or(1.0)).collect();
                for (c, adjusted) in segments.iter_mut().zip(holm(&p)) {
                    c.p_holm = Some(adjusted);
                    c.significant = c.p_value.is_some() && adjusted < settings.alpha;
                }
            }
            let unit = match outcome.kind {
                k if k.is_binary() => "points",
                crate::spec::OutcomeKind::TimeToEvent => " hours",
                _ => "",
            };
            for c in &mut comparisons {
                c.verdict = verdict(c, settings, unit);
            }
            OutcomeResult {
                outcome: outcome.name.clone(),
                kind: outcome.kind.name().to_owned(),
                definition: outcome.describe(),
                assigned_too_late: values.iter().filter(|v| v.is_none()).count() as u64,
                comparisons,
            }
        })
        .collect();

    ExperimentReport {
        assignments: assignments.to_owned(),
        control: settings.control.clone(),
        treatment: settings.treatment.clone(),
        planned_treatment_share: settings.treatment_share,
        alpha: settings.alpha,
        confidence: 1.0 - settings.alpha,
        power: settings.power,
        target_lift: settings.target_lift,
        srm_alpha: settings.srm_alpha,
        extract_end,
        counts: obs.counts.clone(),
        sample_ratio_mismatch: sample_ratio.iter().any(|r| r.mismatch),
        sample_ratio,
        outcomes: results,
    }
}
