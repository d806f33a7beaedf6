"""Train the LightGBM twin of Presage's churn model for the serving benchmark.

Same table, same hyper-parameters as `presage-train fit` in run.sh:
objective binary, num_leaves 31, learning_rate 0.05, 100 rounds, max_bin 255,
min_data_in_leaf 20, seed 42, no early stopping, no calibration; a stratified
60/20/20 train/validation/test split (seeded like Presage's, though not the
same rows: the split is not bit-for-bit reproducible across the two
implementations). `TotalCharges` has blank cells, read as NaN; text columns
are pandas `category` and so LightGBM categorical features.

Writes, into OUT_DIR:
  churn_lgbm.txt   the LightGBM model (its `pandas_categorical` holds the
                   category order the serving apps encode with)
  churn_meta.json  feature order, categories per categorical feature, the 101
                   validation-score quantiles used for percentile segments
                   (Presage's default policy: low < 70th, medium < 90th, high),
                   test AUC and the tree count

Usage: python train_lgbm.py CSV OUT_DIR
"""

import json
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

LABEL, POSITIVE, ID = "Churn", "Yes", "customerID"
PARAMS = {
    "objective": "binary",
    "num_leaves": 31,
    "learning_rate": 0.05,
    "max_bin": 255,
    "min_data_in_leaf": 20,
    "seed": 42,
    "num_threads": 2,
    "verbose": -1,
}
ROUNDS = 100


def stratified_split(y, seed=42, valid=0.2, test=0.2):
    """Index arrays (train, valid, test), stratified on the label."""
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test))
        n_valid = int(round(len(idx) * valid))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_valid])
        parts[0].append(idx[n_test + n_valid :])
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def auc(y, p):
    """ROC AUC via the rank-sum formula (ties get mid-ranks)."""
    ranks = pd.Series(p).rank(method="average").to_numpy()
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main():
    csv, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(csv)
    y = (df[LABEL] == POSITIVE).astype(np.int32).to_numpy()
    X = df.drop(columns=[LABEL, ID])
    # Blank TotalCharges cells (" ") make the column text; they are missing values.
    X["TotalCharges"] = pd.to_numeric(X["TotalCharges"], errors="coerce")
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    for c in categorical:
        X[c] = X[c].astype("category")

    tr, va, te = stratified_split(y)
    started = time.perf_counter()
    booster = lgb.train(PARAMS, lgb.Dataset(X.iloc[tr], y[tr]), num_boost_round=ROUNDS)
    seconds = time.perf_counter() - started
    path = out / "churn_lgbm.txt"
    booster.save_model(str(path))

    valid_scores = booster.predict(X.iloc[va])
    test_scores = booster.predict(X.iloc[te])
    reloaded = lgb.Booster(model_file=str(path))
    cats = dict(zip(categorical, reloaded.pandas_categorical))
    meta = {
        "features": reloaded.feature_name(),
        "categorical": {c: list(cats[c]) for c in categorical},
        "score_quantiles": np.quantile(valid_scores, np.linspace(0, 1, 101)).tolist(),
        "segments": [["low", 0.7], ["medium", 0.9], ["high", 1.0]],
        "trees": reloaded.num_trees(),
        "test_auc": auc(y[te], test_scores),
        "rows": {"train": int(len(tr)), "valid": int(len(va)), "test": int(len(te))},
        "train_seconds": seconds,
        "params": PARAMS | {"num_iterations": ROUNDS},
    }
    (out / "churn_meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({k: meta[k] for k in ("trees", "test_auc", "rows", "train_seconds")}))


if __name__ == "__main__":
    main()
