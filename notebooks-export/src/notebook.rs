//! The exported notebook: nbformat 4 JSON whose cells load the Parquet
//! files next to it with pandas and draw the report's plots with
//! matplotlib. Every cell skips what was not exported (no `--data`: no
//! scores, curves or SHAP values).

use serde_json::{json, Value};

fn source(text: &str) -> Value {
    let lines: Vec<String> = text
        .trim_start_matches('\n')
        .split_inclusive('\n')
        .map(str::to_owned)
        .collect();
    json!(lines)
}

fn markdown(id: usize, text: &str) -> Value {
    json!({"cell_type": "markdown", "id": format!("cell-{id}"), "metadata": {}, "source": source(text)})
}

fn code(id: usize, text: &str) -> Value {
    json!({"cell_type": "code", "id": format!("cell-{id}"), "metadata": {}, "execution_count": null,
           "outputs": [], "source": source(text)})
}

/// The notebook for `model`'s `versions`.
pub fn notebook(model: &str, versions: &[u64]) -> Value {
    let list = versions
        .iter()
        .map(|v| format!("v{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let cells = vec![
        markdown(0, &format!(
            "# {model}: {list}\n\nWritten by `presage-export`. The Parquet files beside this notebook hold what the plots need; edit freely.\n"
        )),
        code(1, r#"
import os
import pandas as pd
import matplotlib.pyplot as plt

def load(name):
    return pd.read_parquet(name) if os.path.exists(name) else None

metrics = load("metrics.parquet")
importance = load("importance.parquet")
scores = load("scores.parquet")
curves = load("curves.parquet")
shap = load("shap.parquet")
metrics.pivot(index="metric", columns="version", values="value")
"#),
        markdown(2, "## ROC, precision-recall and cumulative gain\n"),
        code(3, r#"
if curves is not None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    titles = {"roc": ("ROC", "false positive rate", "true positive rate"),
              "pr": ("Precision-recall", "recall", "precision"),
              "gain": ("Cumulative gain", "share of users", "share of positives")}
    for ax, (curve, (title, xl, yl)) in zip(axes, titles.items()):
        for version, points in curves[curves.curve == curve].groupby("version"):
            ax.plot(points.x, points.y, label=f"v{int(version)}")
        ax.set(title=title, xlabel=xl, ylabel=yl)
        ax.legend()
    plt.show()
"#),
        markdown(4, "## Calibration and score distributions\n"),
        code(5, r#"
if scores is not None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for version, rows in scores.groupby("version"):
        bins = pd.cut(rows.probability, bins=[i / 10 for i in range(11)], include_lowest=True)
        table = rows.groupby(bins, observed=True).agg(predicted=("probability", "mean"), observed=("label", "mean"), rows=("label", "size"))
        left.plot(table.predicted, table.observed, marker="o", label=f"v{int(version)}")
        right.hist(rows.probability, bins=20, alpha=0.5, label=f"v{int(version)}")
    left.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    left.set(title="Calibration", xlabel="mean predicted probability", ylabel="observed positive rate")
    right.set(title="Score distribution", xlabel="probability", ylabel="users")
    left.legend(); right.legend()
    plt.show()
    display(scores.groupby(["version", "segment"]).size().unstack(fill_value=0))
"#),
        markdown(6, "## Feature importance and SHAP values\n"),
        code(7, r#"
top = importance.sort_values("share", ascending=False).groupby("version").head(15)
top.pivot(index="feature", columns="version", values="share").fillna(0).sort_values(top.version.max()).plot.barh(figsize=(8, 6), title="Share of total gain")
plt.show()
if shap is not None:
    mean_abs = shap.assign(magnitude=shap.contribution.abs()).groupby(["version", "feature"]).magnitude.mean().unstack(0).fillna(0)
    mean_abs.sort_values(mean_abs.columns[-1]).tail(15).plot.barh(figsize=(8, 6), title="Mean |SHAP contribution| (sampled rows)")
    plt.show()
"#),
    ];
    json!({
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}
        },
        "cells": cells,
    })
}
