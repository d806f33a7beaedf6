//! The experiment as one self-contained HTML file, in the style of the
//! model comparison report: the sample-ratio check (a mismatch as a red
//! banner), and per outcome its table and a confidence-interval plot with
//! one row per segment (inline SVG drawn with plotters; nothing is loaded
//! from anywhere).

use std::fmt::Write as _;

use plotters::prelude::*;

use super::compare_html::escape;
use super::experiment_text::{difference_cell, lift_cell, mde_cell, mismatch_banner, p_text};
use presage_experiment::analysis::{ArmSummary, Comparison, ExperimentReport, OutcomeResult};
use presage_experiment::numbers::group_digits;

const WIDTH: u32 = 640;
const ROW_HEIGHT: u32 = 46;
const SIGNIFICANT: RGBColor = RGBColor(214, 39, 40);
const NOT_SIGNIFICANT: RGBColor = RGBColor(31, 119, 180);

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The confidence-interval plot of one outcome: a row per comparison
/// (overall first), the difference as a dot and its interval as a bar,
/// red when significant, and a line at zero.
fn interval_plot(o: &OutcomeResult, confidence: f64) -> anyhow::Result<String> {
    let mut svg = String::new();
    draw_intervals(&mut svg, o, confidence)
        .map_err(|e| anyhow::anyhow!("drawing the intervals of '{}': {e}", o.outcome))?;
    Ok(svg)
}

fn draw_intervals(svg: &mut String, o: &OutcomeResult, confidence: f64) -> DrawResult {
    let rows = &o.comparisons;
    let rate = o.is_rate();
    let scale = if rate { 100.0 } else { 1.0 };
    let ends = |c: &Comparison| {
        [c.ci_low, c.ci_high, Some(c.difference)]
            .into_iter()
            .flatten()
            .map(|v| v * scale)
            .collect::<Vec<_>>()
    };
    let all: Vec<f64> = rows.iter().flat_map(ends).chain([0.0]).collect();
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let pad = ((hi - lo) * 0.08).max(1e-6);
    let height = 90 + ROW_HEIGHT * rows.len() as u32;
    {
        let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let names: Vec<String> = rows.iter().map(|c| c.segment.clone()).collect();
        let n = rows.len() as i32;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: treatment − control", o.outcome),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d((lo - pad)..(hi + pad), (0..n).into_segmented())?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "difference{} with {:.0}% interval",
                if rate { " (points)" } else { "" },
                100.0 * confidence
            ))
            .y_labels(rows.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names
                    .get((n - 1 - *i) as usize)
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .disable_y_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        chart.draw_series(std::iter::once(PathElement::new(
            [(0.0, SegmentValue::Exact(0)), (0.0, SegmentValue::Last)],
            RGBColor(120, 120, 120).stroke_width(1),
        )))?;
        for (i, c) in rows.iter().enumerate() {
            let y = SegmentValue::CenterOf(n - 1 - i as i32);
            let color = if c.significant {
                SIGNIFICANT
            } else {
                NOT_SIGNIFICANT
            };
            if let (Some(a), Some(b)) = (c.ci_low, c.ci_high) {
                chart.draw_series(std::iter::once(PathElement::new(
                    [(a * scale, y.clone()), (b * scale, y.clone())],
                    color.stroke_width(3),
                )))?;
            }
            chart.draw_series(std::iter::once(Circle::new(
                (c.difference * scale, y),
                5,
                color.filled(),
            )))?;
        }
        root.present()?;
    }
    Ok(())
}

fn cell(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

/// Renders the report.
pub fn render(r: &ExperimentReport) -> anyhow::Result<String> {
    let mut html = String::new();
    let title = format!("Experiment: {} vs {}", r.treatment, r.control);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:8px 0 12px}}\
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}th:first-child,td:first-child{{text-align:left}}\
.srm{{background:#fde2e1;border:3px solid #c00;color:#900;padding:10px 16px;font-weight:bold}}\
.sig{{color:#c00;font-weight:bold}}.verdicts{{margin:4px 0 28px}}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let banner = mismatch_banner(r);
    if !banner.is_empty() {
        html.push_str("<div class=\"srm\" id=\"srm\">\n");
        for line in &banner {
            let _ = writeln!(html, "<p>{}</p>", escape(line.trim_start_matches("!!! ")));
        }
        html.push_str("</div>\n");
    }
    let c = &r.counts;
    let _ = writeln!(
        html,
        "<p>Assignments from {} (extract ends {}): {}; analysed {} {} and {} {}.</p>",
        escape(&r.assignments),
        escape(&r.extract_end),
        c.exclusions(),
        group_digits(c.control),
        escape(&r.control),
        group_digits(c.treatment),
        escape(&r.treatment)
    );
    let _ = writeln!(
        html,
        "<h2>Sample ratio</h2>\n<p>Planned {:.1}% treatment; a chi-square p-value below {} flags a mismatch.</p>\n<table><tr><th>segment</th><th>{}</th><th>{}</th><th>treatment share</th><th>chi-square</th><th>p</th><th>check</th></tr>",
        100.0 * r.planned_treatment_share,
        r.srm_alpha,
        escape(&r.control),
        escape(&r.treatment)
    );
    for s in &r.sample_ratio {
        let _ = writeln!(
            html,
            "<tr>{}<td>{}</td><td>{}</td><td>{:.2}%</td><td>{:.2}</td><td>{}</td><td{}>{}</td></tr>",
            cell(&s.segment),
            group_digits(s.control),
            group_digits(s.treatment),
            100.0 * s.treatment_share(),
            s.chi_square,
            p_text(Some(s.p_value)),
            if s.mismatch { " class=\"sig\"" } else { "" },
            if s.mismatch { "MISMATCH" } else { "ok" }
        );
    }
    html.push_str("</table>\n");
    let _ = writeln!(
        html,
        "<p>Two-sided tests at alpha {} with {:.0}% intervals. Segment rows are significant after Holm's correction across the segments; their intervals are unadjusted. Power {:.0}% for the minimum detectable effect (MDE); users needed for a {:.1}% lift.</p>",
        r.alpha,
        100.0 * r.confidence,
        100.0 * r.power,
        100.0 * r.target_lift
    );
    for o in &r.outcomes {
        let binary = o.is_rate();
        let _ = writeln!(
            html,
            "<h2>{}</h2>\n<p>{} ({}); {} users assigned too late for the window left out.</p>",
            escape(&o.outcome),
            escape(&o.definition),
            escape(&o.kind),
            group_digits(o.assigned_too_late)
        );
        let _ = writeln!(
            html,
            "<table><tr><th>segment</th><th>{}</th><th>{}</th><th>difference [CI]</th><th>lift [CI]</th><th>{}</th>{}<th>p Holm</th><th>significant</th><th>MDE</th><th>users needed</th></tr>",
            escape(&r.control),
            escape(&r.treatment),
            if binary { "p (z)" } else { "p (Welch t)" },
            if binary { "<th>p (chi-square)</th>" } else { "" }
        );
        for cmp in &o.comparisons {
            let arm = |a: &ArmSummary| match a.conversions {
                Some(x) => format!(
                    "{:.2}% ({} / {})",
                    100.0 * a.mean,
                    group_digits(x),
                    group_digits(a.users)
                ),
                None => format!(
                    "{:.3} ± {:.3} (n {})",
                    a.mean,
                    a.std_dev,
                    group_digits(a.users)
                ),
            };
            let _ = writeln!(
                html,
                "<tr>{}{}{}{}{}{}{}{}<td{}>{}</td>{}{}</tr>",
                cell(&cmp.segment),
                cell(&arm(&cmp.control)),
                cell(&arm(&cmp.treatment)),
                cell(&difference_cell(cmp)),
                cell(&lift_cell(cmp)),
                cell(&p_text(cmp.p_value)),
                if binary {
                    cell(&p_text(cmp.chi_square_p_value))
                } else {
                    String::new()
                },
                cell(&p_text(cmp.p_holm)),
                if cmp.significant {
                    " class=\"sig\""
                } else {
                    ""
                },
                if cmp.significant { "yes" } else { "no" },
                cell(&mde_cell(cmp)),
                cell(
                    &cmp.users_needed
                        .map_or("–".into(), |n| group_digits(n as u64))
                )
            );
        }
        html.push_str("</table>\n<ul class=\"verdicts\">\n");
        for cmp in &o.comparisons {
            let _ = writeln!(
                html,
                "<li><b>{}</b>: {}</li>",
                escape(&cmp.segment),
                escape(&cmp.verdict)
            );
        }
        html.push_str("</ul>\n");
        html.push_str(&interval_plot(o, r.confidence)?);
        html.push('\n');
    }
    html.push_str("</body></html>\n");
    Ok(html)
}
