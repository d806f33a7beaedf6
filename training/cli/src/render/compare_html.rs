//! The comparison as one self-contained HTML file: inline SVG charts drawn
//! with plotters (ROC, precision-recall, reliability diagram with counts,
//! cumulative gain, score histograms; version A and B overlaid) and the
//! tables of the terminal report. No scripts, styles or fonts are loaded
//! from anywhere.

use std::fmt::Write as _;

use plotters::prelude::*;

use presage_models::curves::{curves, histogram, reliability, Curve};
use presage_pipeline::compare::{Comparison, ScoredRows};

const WIDTH: u32 = 560;
const HEIGHT: u32 = 420;
const COLOR_A: RGBColor = RGBColor(31, 119, 180);
const COLOR_B: RGBColor = RGBColor(214, 39, 40);

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// One chart with two labelled series (and an optional diagonal).
fn line_chart(
    title: &str,
    axes: (&str, &str),
    y_max: f64,
    series: [(&str, &Curve); 2],
    diagonal: bool,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    draw_lines(&mut svg, title, axes, y_max, series, diagonal)
        .map_err(|e| anyhow::anyhow!("drawing '{title}': {e}"))?;
    Ok(svg)
}

fn draw_lines(
    svg: &mut String,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    y_max: f64,
    series: [(&str, &Curve); 2],
    diagonal: bool,
) -> DrawResult {
    {
        let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        if diagonal {
            chart.draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, y_max.min(1.0))],
                RGBColor(150, 150, 150),
            ))?;
        }
        for ((label, points), color) in series.iter().zip([COLOR_A, COLOR_B]) {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        root.present()?;
    }
    Ok(())
}

/// Reliability bins: (mean predicted, observed rate, rows).
type Bins = [(f64, f64, usize)];

/// The reliability diagram: observed rate against mean predicted
/// probability per bin, with each point's row count written beside it.
fn reliability_chart(series: [(&str, &Bins); 2]) -> anyhow::Result<String> {
    let mut svg = String::new();
    draw_reliability(&mut svg, series)
        .map_err(|e| anyhow::anyhow!("drawing the reliability diagram: {e}"))?;
    Ok(svg)
}

fn draw_reliability(svg: &mut String, series: [(&str, &Bins); 2]) -> DrawResult {
    {
        let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Calibration (reliability, rows per bin)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc("mean predicted probability")
            .y_desc("observed positive rate")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            RGBColor(150, 150, 150),
        ))?;
        for ((label, bins), color) in series.iter().zip([COLOR_A, COLOR_B]) {
            chart
                .draw_series(LineSeries::new(
                    bins.iter().map(|b| (b.0, b.1)),
                    color.stroke_width(2),
                ))?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(
                bins.iter()
                    .map(|b| Circle::new((b.0, b.1), 3, color.filled())),
            )?;
            chart.draw_series(bins.iter().map(|b| {
                Text::new(
                    format!("{}", b.2),
                    (b.0, b.1),
                    ("sans-serif", 11).into_font().color(&color),
                )
            }))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        root.present()?;
    }
    Ok(())
}

/// `text` escaped for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn cell(x: Option<f64>) -> String {
    x.map_or("–".to_owned(), |v| format!("{v:.4}"))
}

/// Renders the comparison; it must have been computed on data (the plots
/// need the scored rows).
pub fn render(c: &Comparison) -> anyhow::Result<String> {
    let ScoredRows { labels, a, b } = c.scored.as_ref().ok_or_else(|| {
        anyhow::anyhow!("the HTML report needs per-row scores: compare on labelled data (--data)")
    })?;
    let (va, vb) = (format!("v{}", c.a), format!("v{}", c.b));
    let ((roc_a, pr_a, gain_a), (roc_b, pr_b, gain_b)) = (curves(labels, a), curves(labels, b));
    let charts = [
        line_chart(
            "ROC",
            ("false positive rate", "true positive rate"),
            1.0,
            [(&va, &roc_a), (&vb, &roc_b)],
            true,
        )?,
        line_chart(
            "Precision-recall",
            ("recall", "precision"),
            1.0,
            [(&va, &pr_a), (&vb, &pr_b)],
            false,
        )?,
        reliability_chart([
            (&va, &reliability(labels, a)),
            (&vb, &reliability(labels, b)),
        ])?,
        line_chart(
            "Cumulative gain",
            (
                "share of users, highest scores first",
                "share of positives captured",
            ),
            1.0,
            [(&va, &gain_a), (&vb, &gain_b)],
            true,
        )?,
        {
            let (ha, hb) = (histogram(a), histogram(b));
            let top = ha
                .iter()
                .chain(&hb)
                .map(|p| p.1)
                .fold(0.0, f64::max)
                .max(0.01)
                * 1.1;
            line_chart(
                "Score distribution",
                ("probability", "share of users"),
                top,
                [(&va, &ha), (&vb, &hb)],
                false,
            )?
        },
    ];

    let mut html = String::new();
    let title = format!("{}: {va} vs {vb}", c.model);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:8px 0 20px}}\
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}th:first-child,td:first-child{{text-align:left}}\
.charts{{display:flex;flex-wrap:wrap;gap:12px}}</style></head><body>\n<h1>{}</h1>\n<p>{} labelled rows from {}.</p>\n",
        escape(&title),
        escape(&title),
        c.rows.unwrap_or(0),
        escape(&c.source)
    );
    html.push_str("<h2>Metrics</h2>\n<table><tr><th>metric</th>");
    let _ = writeln!(html, "<th>{va}</th><th>{vb}</th><th>delta</th></tr>");
    for m in &c.metrics {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            m.metric,
            cell(m.a),
            cell(m.b),
            m.delta.map_or("–".to_owned(), |d| format!("{d:+.4}"))
        );
    }
    html.push_str("</table>\n");
    if let Some(d) = &c.delong {
        let _ = writeln!(
            html,
            "<p>DeLong test, AUC {vb} − {va}: <b>{:+.4}</b> (95% CI [{:+.4}, {:+.4}]), z = {:.2}, {}: {}.</p>",
            d.difference,
            d.ci95[0],
            d.ci95[1],
            d.z,
            escape(&d.p_text()),
            d.verdict()
        );
    }
    if let Some(p) = c.score_psi {
        let _ = writeln!(
            html,
            "<p>Score distribution shift (PSI of {vb} against {va}): {p:.4}.</p>"
        );
    }
    html.push_str("<h2>Plots</h2>\n<div class=\"charts\">\n");
    for svg in &charts {
        html.push_str(svg);
        html.push('\n');
    }
    html.push_str("</div>\n");
    if let Some(m) = &c.migration {
        let _ = write!(
            html,
            "<h2>Segment migration</h2>\n<p>Rows: segment under {va}; columns: under {vb} (policy: {}).</p>\n<table><tr><th></th>",
            escape(c.policy.as_deref().unwrap_or("default"))
        );
        for s in &m.segments {
            let _ = write!(html, "<th>{}</th>", escape(s));
        }
        let _ = writeln!(html, "<th>{va} total</th></tr>");
        let (sizes_a, sizes_b) = (m.sizes_a(), m.sizes_b());
        for (i, row) in m.counts.iter().enumerate() {
            let _ = write!(html, "<tr><td>{}</td>", escape(&m.segments[i]));
            for n in row {
                let _ = write!(html, "<td>{n}</td>");
            }
            let _ = writeln!(html, "<td>{}</td></tr>", sizes_a[i]);
        }
        let _ = write!(html, "<tr><td>{vb} total</td>");
        for n in sizes_b {
            let _ = write!(html, "<td>{n}</td>");
        }
        html.push_str("<td></td></tr></table>\n");
    }
    let _ = write!(
        html,
        "<h2>Feature importance</h2>\n<p>Share of total gain; the 15 largest changes.</p>\n<table><tr><th>feature</th><th>{va}</th><th>{vb}</th><th>change</th></tr>\n"
    );
    for f in &c.importance {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{:.1}%</td><td>{:.1}%</td><td>{:+.1} pts</td></tr>",
            escape(&f.feature),
            100.0 * f.share_a,
            100.0 * f.share_b,
            100.0 * f.delta
        );
    }
    html.push_str("</table>\n</body></html>\n");
    Ok(html)
}
