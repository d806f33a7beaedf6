//! The terminal report: the assignment counts, the sample-ratio check (a
//! mismatch as a banner above and below everything else), then one table
//! per outcome with a verdict per row.

use std::fmt::Write;

use presage_experiment::analysis::{ArmSummary, Comparison, ExperimentReport};
use presage_experiment::numbers::group_digits;

/// A p-value for a table cell.
pub fn p_text(p: Option<f64>) -> String {
    match p {
        None => "–".into(),
        Some(p) if p < 1e-4 => "<0.0001".into(),
        Some(p) => format!("{p:.4}"),
    }
}

fn arm_cell(arm: &ArmSummary) -> String {
    match arm.conversions {
        Some(_) => format!("{:.1}% of {}", 100.0 * arm.mean, group_digits(arm.users)),
        None => format!("{:.3} (n {})", arm.mean, group_digits(arm.users)),
    }
}

/// The difference and its interval, in points for rates.
pub fn difference_cell(c: &Comparison) -> String {
    let (scale, digits, unit) = if c.is_rate() {
        (100.0, 1, " pts")
    } else {
        (1.0, 3, "")
    };
    let v = |x: f64| format!("{:+.*}", digits, scale * x);
    match (c.ci_low, c.ci_high) {
        (Some(lo), Some(hi)) => format!("{} [{}, {}]{unit}", v(c.difference), v(lo), v(hi)),
        _ => format!("{}{unit}", v(c.difference)),
    }
}

/// The relative lift and its interval, in percent.
pub fn lift_cell(c: &Comparison) -> String {
    let pct = |x: f64| format!("{:+.1}", 100.0 * x);
    match (c.relative_lift, c.lift_ci) {
        (None, _) => "–".into(),
        (Some(l), None) => format!("{}%", pct(l)),
        (Some(l), Some([lo, hi])) => format!("{}% [{}, {}]", pct(l), pct(lo), pct(hi)),
    }
}

/// The minimum detectable effect, in points for rates.
pub fn mde_cell(c: &Comparison) -> String {
    match (c.mde, c.is_rate()) {
        (None, _) => "–".into(),
        (Some(m), true) => format!("{:.1} pts", 100.0 * m),
        (Some(m), false) => format!("{m:.3}"),
    }
}

/// The sample-ratio banner lines, empty when the split is as planned.
pub fn mismatch_banner(r: &ExperimentReport) -> Vec<String> {
    if !r.sample_ratio_mismatch {
        return Vec::new();
    }
    let mut lines = vec!["!!! SAMPLE RATIO MISMATCH: THE RESULTS BELOW ARE NOT VALID".to_owned()];
    for check in r.sample_ratio.iter().filter(|c| c.mismatch) {
        lines.push(format!(
            "!!! {}: {} {} vs {} {}; planned {:.1}% treatment, observed {:.2}% (chi-square {:.2}, p = {} < {})",
            check.segment,
            group_digits(check.control),
            r.control,
            group_digits(check.treatment),
            r.treatment,
            100.0 * r.planned_treatment_share,
            100.0 * check.treatment_share(),
            check.chi_square,
            p_text(Some(check.p_value)),
            r.srm_alpha
        ));
    }
    lines.push(
        "!!! Users were lost or assigned unevenly between the variants: find the cause (assignment, logging, exclusions) before reading any effect."
            .to_owned(),
    );
    lines
}

/// Renders the report for a terminal.
pub fn render(r: &ExperimentReport) -> String {
    let mut out = String::new();
    let banner = mismatch_banner(r);
    for line in &banner {
        let _ = writeln!(out, "{line}");
    }
    if !banner.is_empty() {
        out.push('\n');
    }
    let c = &r.counts;
    let _ = writeln!(
        out,
        "Experiment {:?} vs {:?}: {} (extract ends {})",
        r.treatment, r.control, r.assignments, r.extract_end
    );
    let _ = writeln!(
        out,
        "Assignments: {}; analysed {} {} and {} {}",
        c.exclusions(),
        group_digits(c.control),
        r.control,
        group_digits(c.treatment),
        r.treatment
    );
    let _ = writeln!(
        out,
        "Sample ratio (planned {:.1}% treatment, flagged below p = {}):",
        100.0 * r.planned_treatment_share,
        r.srm_alpha
    );
    for check in &r.sample_ratio {
        let total = check.control + check.treatment;
        let _ = writeln!(
            out,
            "  {:<12} {:>9} users, {:.2}% treatment, chi-square {:.2}, p = {}: {}",
            check.segment,
            group_digits(total),
            100.0 * check.treatment_share(),
            check.chi_square,
            p_text(Some(check.p_value)),
            if check.mismatch { "MISMATCH" } else { "ok" }
        );
    }
    let segments = r.outcomes.first().map_or(0, |o| o.comparisons.len() - 1);
    let _ = writeln!(
        out,
        "Two-sided tests at alpha {} ({:.0}% intervals){}; power {:.0}% for the minimum detectable effect (MDE); users needed for a {:.1}% lift.",
        r.alpha,
        100.0 * r.confidence,
        if segments > 1 {
            format!("; segment rows significant after Holm's correction across {segments} segments (their intervals are unadjusted)")
        } else {
            String::new()
        },
        100.0 * r.power,
        100.0 * r.target_lift
    );
    for o in &r.outcomes {
        let _ = writeln!(
            out,
            "\n{} ({}): {}; {} users assigned too late for the window left out",
            o.outcome,
            o.kind,
            o.definition,
            group_digits(o.assigned_too_late)
        );
        let binary = o.is_rate();
        let _ = writeln!(
            out,
            "  {:<12} {:>20} {:>20} {:>30} {:>24} {:>8} {:>8} {:>8} {:>4} {:>10}",
            "segment",
            r.control,
            r.treatment,
            "difference [CI]",
            "lift [CI]",
            if binary { "p (z)" } else { "p (t)" },
            if binary { "p (chi2)" } else { "" },
            "p Holm",
            "sig",
            "MDE"
        );
        for cmp in &o.comparisons {
            let _ = writeln!(
                out,
                "  {:<12} {:>20} {:>20} {:>30} {:>24} {:>8} {:>8} {:>8} {:>4} {:>10}",
                cmp.segment,
                arm_cell(&cmp.control),
                arm_cell(&cmp.treatment),
                difference_cell(cmp),
                lift_cell(cmp),
                p_text(cmp.p_value),
                if binary {
                    p_text(cmp.chi_square_p_value)
                } else {
                    String::new()
                },
                p_text(cmp.p_holm),
                if cmp.significant { "yes" } else { "no" },
                mde_cell(cmp)
            );
        }
        for cmp in &o.comparisons {
            let _ = writeln!(out, "  {}: {}", cmp.segment, cmp.verdict);
        }
    }
    if !banner.is_empty() {
        out.push('\n');
        for line in &banner {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}
