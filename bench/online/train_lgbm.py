"""Train the LightGBM twin of Presage's churn model for the Feast side of the
online benchmark.

Same table and hyper-parameters as `presage-train fit --config
datasets/configs/churn.toml` in bench.py: the table is `presage-train
features` of the same extract (one row per user, label `churned`), and the
parameters are read from the config's [params] (objective binary,
num_leaves 31, learning_rate 0.05, up to 500 rounds with early stopping after
30 rounds without a better validation binary_logloss, min_data_in_leaf 40,
feature_fraction 0.9, seed 42, max_bin 255), on a stratified 60/20/20
train/validation/test split (seeded like Presage's, though not the same rows).
No calibration (Presage's `calibration = "auto"` picks Platt scaling; a
sigmoid per request would cost the Python side next to nothing). Text
columns (the user attributes) are pandas `category`, so LightGBM categorical
features.

Writes, into OUT_DIR:
  churn_lgbm.txt   the LightGBM model
  churn_meta.json  feature order, categories per categorical feature, the 101
                   validation-score quantiles for Presage's default
                   percentile segments (low < 70th, medium < 90th, high),
                   test AUC, tree count and parameters

Usage: python train_lgbm.py TABLE.parquet CONFIG.toml OUT_DIR
"""

import json
import sys
import time
import tomllib
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

ID = "user_id"
# presage-train's config keys -> LightGBM's (the config uses LightGBM's names).
KEYS = ("learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "seed", "max_bin", "lambda_l2")


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
    table, config, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    spec = tomllib.loads(config.read_text())
    label = {"churn": "churned"}.get(spec.get("label", {}).get("kind"), "churned")
    given = spec.get("params", {})
    params = {"objective": "binary", "metric": "binary_logloss", "max_bin": 255, "num_threads": 2, "verbose": -1}
    params |= {k: given[k] for k in KEYS if k in given}
    rounds = int(given.get("num_iterations", 100))
    early = int(given.get("early_stopping_rounds", 0))

    df = pd.read_parquet(table)
    y = df[label].astype(np.int32).to_numpy()
    X = df.drop(columns=[label, ID])
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    for c in categorical:
        X[c] = X[c].astype("category")
    for c in X.columns:
        if c not in categorical:
            X[c] = X[c].astype(np.float64)

    tr, va, te = stratified_split(y, seed=int(params.get("seed", 42)))
    started = time.perf_counter()
    train = lgb.Dataset(X.iloc[tr], y[tr])
    valid = lgb.Dataset(X.iloc[va], y[va], reference=train)
    callbacks = [lgb.early_stopping(early, verbose=False)] if early else []
    booster = lgb.train(params, train, num_boost_round=rounds, valid_sets=[valid], callbacks=callbacks)
    seconds = time.perf_counter() - started
    path = out / "churn_lgbm.txt"
    booster.save_model(str(path), num_iteration=booster.best_iteration or None)

    reloaded = lgb.Booster(model_file=str(path))
    valid_scores = reloaded.predict(X.iloc[va])
    test_scores = reloaded.predict(X.iloc[te])
    cats = dict(zip(categorical, reloaded.pandas_categorical or []))
    meta = {
        "features": reloaded.feature_name(),
        "categorical": {c: list(cats[c]) for c in categorical},
        "score_quantiles": np.quantile(valid_scores, np.linspace(0, 1, 101)).tolist(),
        "segments": [["low", 0.7], ["medium", 0.9], ["high", 1.0]],
        "trees": reloaded.num_trees(),
        "test_auc": auc(y[te], test_scores),
        "rows": {"train": int(len(tr)), "valid": int(len(va)), "test": int(len(te))},
        "train_seconds": seconds,
        "params": params | {"num_iterations": rounds, "early_stopping_rounds": early},
    }
    (out / "churn_meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({k: meta[k] for k in ("trees", "test_auc", "rows", "train_seconds")}))


if __name__ == "__main__":
    main()
