//! The comparison as one self-contained HTML file: inline SVG charts drawn
//! with plotters (ROC, precision-recall, reliability diagram with counts,
//! cumulative gain, score histograms; version A and B overlaid) and the
//! tables of the terminal report. No scripts, styles or fonts are loaded
//! from anywhere.

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::compare::{Comparison, ScoredRows};

const WIDTH: u32 = 560;
const HEIGHT: u32 = 420;
const COLOR_A: RGBColor = RGBColor(31, 119, 180);
const COLOR_B: RGBColor = RGBColor(214, 39, 40);

/// A curve as `(x, y)` points.
pub type Curve = Vec<(f64, f64)>;

/// Rows sorted by score, highest first, as (label, score).
fn ranked(labels: &[bool], scores: &[f64]) -> Vec<(bool, f64)> {
    let mut rows: Vec<(bool, f64)> = labels.iter().copied().zip(scores.iter().copied()).collect();
    rows.sort_by(|x, y| y.1.total_cmp(&x.1));
    rows
}

/// ROC, precision-recall and cumulative-gain curves, one point per
/// distinct score (ties move together).
pub fn curves(labels: &[bool], scores: &[f64]) -> (Curve, Curve, Curve) {
    let rows = ranked(labels, scores);
    let positives = labels.iter().filter(|y| **y).count().max(1) as f64;
    let negatives = (labels.len() as f64 - positives).max(1.0);
    let total = labels.len().max(1) as f64;
    let (mut roc, mut pr, mut gain) = (vec![(0.0, 0.0)], Vec::new(), vec![(0.0, 0.0)]);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < rows.len() {
        let score = rows[i].1;
        while i < rows.len() && rows[i].1 == score {
            if rows[i].0 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        roc.push((fp / negatives, tp / positives));
        pr.push((tp / positives, tp / (tp + fp)));
        gain.push(((tp + fp) / total, tp / positives));
    }
    (thin(roc, 400), thin(pr, 400), thin(gain, 400))
}

/// At most `limit` points of `curve`, evenly spaced along it, always
/// keeping both ends (keeps the report small on large data).
fn thin(curve: Curve, limit: usize) -> Curve {
    if curve.len() <= limit {
        return curve;
    }
    let step = curve.len().div_ceil(limit);
    let last = *curve.last().expect("non-empty");
    let mut out: Curve = curve.into_iter().step_by(step).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// Reliability: per tenth of the probability range, (mean predicted,
/// observed rate, rows).
fn reliability(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64, usize)> {
    let mut bins = vec![(0.0, 0.0, 0usize); 10];
    for (&y, &p) in labels.iter().zip(scores) {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += f64::from(u8::from(y));
        bins[b].2 += 1;
    }
    bins.into_iter()
        .filter(|b| b.2 > 0)
        .map(|(p, y, n)| (p / n as f64, y / n as f64, n))
        .collect()
}

/// Share of rows per twentieth of the probability range.
fn histogram(scores: &[f64]) -> Vec<(f64, f64)> {
    let mut counts = [0usize; 20];
    for &p in scores {
        counts[((p * 20.0) as usize).min(19)] += 1;
    }
    let n = scores.len().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .flat_map(|(i, &c)| {
            let (lo, hi) = (i as f64 / 20.0, (i + 1) as f64 / 20.0);
            [(lo, c as f64 / n), (hi, c as f64 / n)]
        })
        .collect()
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// One chart with two labelled series (and an optional diagonal).
fn line_chart(
    title: &str,
    axes: (&str, &str),
    y_max: f64,
    series: [(&str, &Curve); 2],
    diagonal: bool,
) -> Result<String, String> {
    let mut svg = String::new();
    draw_lines(&mut svg, title, axes, y_max, series, diagonal)
        .map_err(|e| format!("drawing '{title}': {e}"))?;
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
fn reliability_chart(series: [(&str, &Bins); 2]) -> Result<String, String> {
    let mut svg = String::new();
    draw_reliability(&mut svg, series)
        .map_err(|e| format!("drawing the reliability diagram: {e}"))?;
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
pub fn render(c: &Comparison) -> Result<String, String> {
    let ScoredRows { labels, a, b } = c
        .scored
        .as_ref()
        .ok_or("the HTML report needs per-row scores: compare on labelled data (--data)")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_end_at_the_corners_and_gain_is_monotone() {
        let labels = [true, false, true, false, false];
        let scores = [0.9, 0.8, 0.8, 0.1, 0.1];
        let (roc, pr, gain) = curves(&labels, &scores);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        // The tie at 0.8 moves one positive and one negative together.
        assert_eq!(roc[2], (1.0 / 3.0, 1.0));
        assert_eq!(pr[0], (0.5, 1.0));
        assert!(gain
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn reliability_bins_count_every_row() {
        let bins = reliability(&[true, false, false, true], &[0.95, 0.05, 0.15, 0.12]);
        assert_eq!(bins.iter().map(|b| b.2).sum::<usize>(), 4);
        assert_eq!(bins[1], (0.135, 0.5, 2));
    }
}
