#!/usr/bin/env python3
"""Presage vs. its peers: one run, same data, same machine.

Three benchmarks, each contestant in its own child process:

* gbm   - gradient boosting: Presage, LightGBM, XGBoost, perpetual, forust.
* rf    - random forest: Presage RF vs scikit-learn RandomForestClassifier.
* score - batch scoring of test rows with a 200-tree model: Presage's compiled
          scorer vs LightGBM ``predict``, lleaves (LLVM) and treelite+tl2cgen (gcc).

Usage: ``bench/run_bench.sh [--rows N | --quick] [--only gbm,rf,score] [--rf-full]``
(the shell script creates bench/.venv first; this file can also be run with
that venv's python directly).

Fairness choices
----------------
Data.  One seeded synthetic table (``make_dataset``): 50 numeric features
(normal, uniform, log-normal, low-cardinality integers, a correlated block),
10% NaN in 5 of them, and a 0/1 label drawn from the logistic of a sum of
nonlinear terms and interactions, so test AUC is about 0.83, not trivially
separable. Rows are split 80/20 in file order; the first 100,000 rows form
the second, smaller size (split 80/20 the same way). Every contestant reads
the same Parquet files (bench/data/, gitignored).

Settings.  GBM: 200 rounds, 31 leaves (leaf-wise / loss-guided growth),
learning rate 0.1, 255 bins, 2 threads, no early stopping, no bagging or
feature subsampling, min_data_in_leaf 20, min_sum_hessian 1e-3, no L2 — the
LightGBM defaults that Presage shares. Peers get the closest knobs they have:

* XGBoost: tree_method=hist, grow_policy=lossguide, max_leaves=31,
  max_depth=0, max_bin=255, nthread=2; reg_lambda=0 and min_child_weight=1e-3
  to match LightGBM's lambda_l2=0 / min_sum_hessian_in_leaf=1e-3. It has no
  row-count minimum per leaf (min_data_in_leaf): deviation.
* forust: grow_policy=LossGuide, max_leaves=31, max_depth=30 (cannot bind
  with 31 leaves), nbins=255, l2=0, min_leaf_weight=1e-3, num_threads=2. No
  min_data_in_leaf: deviation.
* perpetual: has no rounds/leaves/learning-rate knobs; its ``budget`` sets the
  step size as 10^-budget, so budget=1.0 (step 0.1) with iteration_limit=200,
  max_bin=255, num_threads=2, every feature numeric. Tree size and stopping
  are chosen by its own generalization control, which cannot be switched
  off: it may stop before 200 rounds (the trees it built are reported).
  memory_limit=1 GB: by default perpetual sizes its histogram cache from the
  machine's RAM (about 8 GB here, even for 16k rows) and spends seconds
  touching it; 1 GB gives the same model and is noted in the output.

RF: 100 trees, sqrt(n_features) features per node, bootstrap rows, grown
until pure (min 1 row per leaf, no depth limit), 2 threads. Presage splits on
255-bin histograms and caps a tree at 131,072 leaves; scikit-learn searches
exact thresholds. Fully grown sklearn forests are slow on 800k rows, so RF runs
on the 100k size unless ``--rf-full`` adds the full size.

Scoring: each scorer gets the first N test rows (N = 200,000 on the 1M size)
as one row-major float64 array and returns probabilities, 2 threads, best of
5 after one warm-up. Presage scores its own model of the same shape (200
trees, 31 leaves, trained in the gbm run); LightGBM, lleaves and treelite
score the LightGBM-trained model. Compilation (lleaves, tl2cgen+gcc) is done
before timing and reported separately; tl2cgen's time includes building its
DMatrix from the numpy array, since that is part of scoring an array with it.

Timing.  Fit time covers binning + training and excludes reading Parquet:
``train_gbm``/``train_forest`` for Presage, ``lgb.Dataset`` construction +
``lgb.train`` for LightGBM, ``QuantileDMatrix`` + ``xgb.train`` for XGBoost,
``fit`` for the others (which bin inside fit).

Memory.  Each contestant is its own process. After loading the data it resets
the kernel's peak-RSS mark (/proc/self/clear_refs) and records its RSS
(baseline); after fitting it reads the peak (VmHWM). ``fit MB`` is that peak
minus the baseline: the memory the fit itself added. ``proc MB`` is the
whole process's max RSS (from wait4), which also counts the interpreter or
binary, the loaded data and the prediction on the test set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA_DIR = HERE / "data"
OUT_DIR = HERE / "out"

SEED = 20240607
N_FEATURES = 50
MISSING_FEATURES = (3, 7, 21, 31, 45)
SMALL_ROWS = 100_000
SCORE_ROWS = 200_000
THREADS = 2
PERPETUAL_MEMORY_LIMIT_GB = 1.0  # see the docstring: its default takes ~1/3 of RAM

GBM_PEERS = ["presage", "lightgbm", "xgboost", "perpetual", "forust"]
RF_PEERS = ["presage", "sklearn"]
SCORE_PEERS = ["presage", "lightgbm", "lleaves", "treelite"]

# Python distributions whose versions are reported.
PACKAGES = [
    "lightgbm", "xgboost", "scikit-learn", "perpetual", "forust", "lleaves",
    "llvmlite", "treelite", "tl2cgen", "numpy", "pandas", "pyarrow", "scipy",
]


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def make_dataset(n: int, seed: int = SEED):
    """Returns (X float64 [n, 50], y int32 [n]) — see the module docstring."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = np.empty((n, N_FEATURES))
    X[:, :20] = rng.standard_normal((n, 20))
    X[:, 20:30] = rng.uniform(-2, 2, (n, 10))
    X[:, 30:38] = rng.lognormal(0, 0.75, (n, 8))
    X[:, 38:44] = rng.integers(0, 10, (n, 6)).astype(float)  # low-cardinality ordinals
    z = rng.standard_normal(n)
    X[:, 44:50] = 0.7 * z[:, None] + 0.7 * rng.standard_normal((n, 6))  # correlated block
    logit = (
        1.2 * np.sin(1.5 * X[:, 0])
        + 0.9 * X[:, 1] * X[:, 2]
        + 1.0 * (X[:, 3] > 0.5) - 0.4
        - 0.6 * np.abs(X[:, 4])
        + 0.35 * X[:, 5] ** 2 - 0.35
        + 0.6 * X[:, 6]
        + 0.8 * np.tanh(X[:, 20] * X[:, 21])
        + 0.5 * np.log(X[:, 30])
        + 0.7 * ((X[:, 38] >= 7) & (X[:, 7] > 0))
        + 0.4 * X[:, 44]
        + 0.5 * np.cos(2.0 * X[:, 22])
    )
    logit = 1.15 * logit - 0.3
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int32)
    # Missing completely at random, after the label is drawn (the label saw the true values).
    for j in MISSING_FEATURES:
        X[rng.uniform(size=n) < 0.10, j] = np.nan
    return X, y


def write_split(X, y, directory: Path) -> dict:
    """Writes an 80/20 split (file order) as train.parquet / test.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    n_train = int(round(len(y) * 0.8))
    for name, rows in (("train", slice(0, n_train)), ("test", slice(n_train, len(y)))):
        columns = {f"f{j}": pa.array(X[rows, j].copy()) for j in range(X.shape[1])}
        columns["label"] = pa.array(y[rows])
        tmp = directory / f"{name}.parquet.tmp"
        pq.write_table(pa.table(columns), tmp)
        tmp.replace(directory / f"{name}.parquet")
    return {"dir": str(directory), "train": str(directory / "train.parquet"),
            "test": str(directory / "test.parquet"), "n_train": n_train, "n_test": len(y) - n_train}


def ensure_data(rows: int) -> dict:
    """Generates (once) the full table and its 100k prefix; returns {size: split info}."""
    base = DATA_DIR / f"seed{SEED}_rows{rows}"
    meta_path = base / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(Path(s["train"]).exists() and Path(s["test"]).exists() for s in meta["sizes"].values()):
            print(f"data: reusing {base}")
            return meta["sizes"]
    print(f"data: generating {rows:,} rows x {N_FEATURES} features (seed {SEED}) ...", flush=True)
    start = time.perf_counter()
    X, y = make_dataset(rows)
    sizes = {}
    if rows > SMALL_ROWS:
        sizes[str(SMALL_ROWS)] = write_split(X[:SMALL_ROWS], y[:SMALL_ROWS], base / f"prefix{SMALL_ROWS}")
    sizes[str(rows)] = write_split(X, y, base / "full")
    meta = {"seed": SEED, "rows": rows, "positive_rate": float(y.mean()),
            "missing_features": [f"f{j}" for j in MISSING_FEATURES], "sizes": sizes}
    meta_path.write_text(json.dumps(meta, indent=2))
    print(f"data: written to {base} in {time.perf_counter() - start:.1f}s "
          f"(positive rate {y.mean():.3f})", flush=True)
    return sizes


# --------------------------------------------------------------------------
# Worker side (runs in a child process: `run_bench.py worker TASK NAME SPEC`)
# --------------------------------------------------------------------------

def proc_status_mb(field: str):
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def load_xy(path: str):
    """Parquet -> (X row-major float64, y float64), with the pyarrow table freed."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    names = [c for c in table.column_names if c != "label"]
    X = np.empty((table.num_rows, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        X[:, j] = table.column(name).to_numpy()
    y = table.column("label").to_numpy().astype(np.float64)
    del table
    return X, y


def auc(labels, scores) -> float:
    """ROC-AUC (Mann-Whitney with mid-ranks), numpy only."""
    import numpy as np

    labels = np.asarray(labels) > 0.5
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    # mid-ranks for ties
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mid = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(mid, counts)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def measured_fit(fit):
    """Runs fit() with the peak-RSS mark reset; returns (model, seconds, memory dict)."""
    import gc

    gc.collect()
    reset = reset_peak_rss()
    baseline = proc_status_mb("VmRSS")
    start = time.perf_counter()
    model = fit()
    seconds = time.perf_counter() - start
    peak = proc_status_mb("VmHWM") if reset else None
    return model, seconds, {"baseline_rss_mb": baseline, "fit_peak_rss_mb": peak}


def best_of_5(run) -> dict:
    """One warm-up, then the best of 5 timed calls."""
    out = run()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return {"best_seconds": min(times), "times": times, "output": out}


# ---- GBM contestants: each returns (fit closure, predict(model, X) -> probabilities, notes)

def gbm_lightgbm(spec, X, y):
    import lightgbm as lgb

    params = {
        "objective": "binary", "num_leaves": spec["num_leaves"], "learning_rate": spec["learning_rate"],
        "max_bin": spec["max_bin"], "num_threads": THREADS, "min_data_in_leaf": 20,
        "min_sum_hessian_in_leaf": 1e-3, "lambda_l2": 0.0, "bagging_fraction": 1.0, "bagging_freq": 0,
        "feature_fraction": 1.0, "seed": 0, "verbose": -1,
    }

    def fit():
        data = lgb.Dataset(X, y, params={"max_bin": spec["max_bin"], "verbose": -1}, free_raw_data=True)
        return lgb.train(params, data, num_boost_round=spec["rounds"])

    def predict(model, Xt):
        return model.predict(Xt, num_threads=THREADS)

    def describe(model):
        if spec.get("save_model"):
            model.save_model(spec["save_model"])
        return {"n_trees": model.num_trees()}

    return fit, predict, describe


def gbm_xgboost(spec, X, y):
    import xgboost as xgb

    params = {
        "objective": "binary:logistic", "tree_method": "hist", "grow_policy": "lossguide",
        "max_leaves": spec["num_leaves"], "max_depth": 0, "max_bin": spec["max_bin"], "nthread": THREADS,
        "eta": spec["learning_rate"], "reg_lambda": 0.0, "min_child_weight": 1e-3,
        "subsample": 1.0, "colsample_bytree": 1.0, "seed": 0, "verbosity": 0,
    }

    def fit():
        data = xgb.QuantileDMatrix(X, y, max_bin=spec["max_bin"], nthread=THREADS)
        return xgb.train(params, data, num_boost_round=spec["rounds"])

    def predict(model, Xt):
        return model.inplace_predict(Xt)

    def describe(model):
        return {"n_trees": model.num_boosted_rounds(),
                "deviation": "no min_data_in_leaf (row count); reg_lambda=0, min_child_weight=1e-3"}

    return fit, predict, describe


def gbm_perpetual(spec, X, y):
    from perpetual import PerpetualBooster

    def fit():
        model = PerpetualBooster(objective="LogLoss", budget=1.0, num_threads=THREADS,
                                 iteration_limit=spec["rounds"], max_bin=spec["max_bin"],
                                 memory_limit=PERPETUAL_MEMORY_LIMIT_GB, categorical_features=None, seed=0)
        model.fit(X, y)
        return model

    def predict(model, Xt):
        return model.predict_proba(Xt)[:, 1]

    def describe(model):
        return {"n_trees": model.number_of_trees,
                "deviation": "no rounds/leaves/learning-rate knobs: budget=1.0 (step 0.1), "
                             "iteration_limit=rounds; tree size and stopping by its own control; "
                             f"memory_limit={PERPETUAL_MEMORY_LIMIT_GB} GB (default cache ~1/3 of RAM)"}

    return fit, predict, describe


def gbm_forust(spec, X, y):
    from forust import GradientBooster

    def fit():
        model = GradientBooster(objective_type="LogLoss", iterations=spec["rounds"],
                                learning_rate=spec["learning_rate"], grow_policy="LossGuide",
                                max_leaves=spec["num_leaves"], max_depth=30, nbins=spec["max_bin"],
                                l2=0.0, min_leaf_weight=1e-3, parallel=True, num_threads=THREADS, seed=0)
        model.fit(X, y)
        return model

    def predict(model, Xt):
        return model.predict(Xt)  # log-odds; AUC is rank-based

    def describe(model):
        return {"n_trees": model.number_of_trees,
                "deviation": "no min_data_in_leaf (row count); max_depth=30 (non-binding)"}

    return fit, predict, describe


def rf_sklearn(spec, X, y):
    from sklearn.ensemble import RandomForestClassifier

    def fit():
        model = RandomForestClassifier(n_estimators=spec["trees"], max_features="sqrt", n_jobs=THREADS,
                                       random_state=0)
        return model.fit(X, y)

    def predict(model, Xt):
        return model.predict_proba(Xt)[:, 1]

    def describe(model):
        return {"n_trees": len(model.estimators_),
                "total_leaves": int(sum(t.tree_.n_leaves for t in model.estimators_)),
                "max_tree_depth": int(max(t.tree_.max_depth for t in model.estimators_))}

    return fit, predict, describe


FIT_WORKERS = {
    ("gbm", "lightgbm"): gbm_lightgbm,
    ("gbm", "xgboost"): gbm_xgboost,
    ("gbm", "perpetual"): gbm_perpetual,
    ("gbm", "forust"): gbm_forust,
    ("rf", "sklearn"): rf_sklearn,
}


def worker_fit(task, name, spec) -> dict:
    X, y = load_xy(spec["train"])
    Xt, yt = load_xy(spec["test"])
    fit, predict, describe = FIT_WORKERS[(task, name)](spec, X, y)
    model, seconds, memory = measured_fit(fit)
    return {"fit_seconds": seconds, "test_auc": auc(yt, predict(model, Xt)), **memory, **describe(model)}


# ---- scoring contestants: each returns (prepare() -> compile seconds, score(X) -> probabilities)

def score_lightgbm(model_file, workdir):
    import lightgbm as lgb

    booster = lgb.Booster(model_file=model_file)
    return (lambda: 0.0), (lambda Xs: booster.predict(Xs, num_threads=THREADS))


def score_lleaves(model_file, workdir):
    import lleaves

    model = lleaves.Model(model_file=model_file)

    def prepare():
        start = time.perf_counter()
        model.compile(cache=str(Path(workdir) / "lleaves_model.o"))
        return time.perf_counter() - start

    return prepare, (lambda Xs: model.predict(Xs, n_jobs=THREADS))


def score_treelite(model_file, workdir):
    import tl2cgen
    import treelite

    state = {}

    def prepare():
        start = time.perf_counter()
        model = treelite.frontend.load_lightgbm_model(model_file)
        libpath = Path(workdir) / "treelite_model.so"
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(libpath),
                           params={"parallel_comp": THREADS}, nthread=THREADS)
        state["predictor"] = tl2cgen.Predictor(str(libpath), nthread=THREADS)
        return time.perf_counter() - start

    def score(Xs):
        out = state["predictor"].predict(tl2cgen.DMatrix(Xs, dtype="float64"))
        return out.reshape(-1)

    return prepare, score


SCORE_WORKERS = {"lightgbm": score_lightgbm, "lleaves": score_lleaves, "treelite": score_treelite}


def worker_score(name, spec) -> dict:
    import numpy as np

    Xt, yt = load_xy(spec["test"])
    n = min(spec["score_rows"], len(yt))
    Xs = np.ascontiguousarray(Xt[:n])
    del Xt
    with tempfile.TemporaryDirectory(prefix=f"bench_{name}_") as workdir:
        prepare, score = SCORE_WORKERS[name](spec["model_file"], workdir)
        compile_seconds = prepare()
        timed = best_of_5(lambda: score(Xs))
    probabilities = np.asarray(timed["output"]).reshape(-1)
    return {"rows": n, "best_seconds": timed["best_seconds"], "times": timed["times"],
            "rows_per_second": n / timed["best_seconds"], "compile_seconds": compile_seconds,
            "auc_scored_rows": auc(yt[:n], probabilities), "checksum": float(probabilities.sum())}


def worker_main(argv) -> int:
    task, name, spec = argv[0], argv[1], json.loads(argv[2])
    try:
        result = worker_score(name, spec) if task == "score" else worker_fit(task, name, spec)
    except ImportError as e:
        print(f"RESULT {json.dumps({'error': f'not installed: {e}'})}")
        return 0
    except Exception as e:  # noqa: BLE001 - report, don't crash the harness
        traceback.print_exc()
        print(f"RESULT {json.dumps({'error': f'{type(e).__name__}: {e}'[:300]})}")
        return 0
    print(f"RESULT {json.dumps(result)}")
    return 0


# --------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------

def child_env() -> dict:
    env = dict(os.environ)  # OPENBLAS_* are inherited unchanged on purpose
    env.update({"OMP_NUM_THREADS": str(THREADS), "RAYON_NUM_THREADS": str(THREADS),
                "POLARS_MAX_THREADS": str(THREADS), "PYTHONUNBUFFERED": "1"})
    return env


def run_child(cmd, label: str, timeout: float) -> dict:
    """Runs one contestant; returns its result dict plus wall time and process peak RSS."""
    logs = OUT_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"{label}.out", logs / f"{label}.err"
    print(f"  running {label} ...", end="", flush=True)
    start = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env(), cwd=ROOT)
        timer = threading.Timer(timeout, proc.kill) if timeout > 0 else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if timer:
            timer.cancel()
    wall = time.perf_counter() - start
    stdout = out_path.read_text()
    result = None
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            break
        if line.startswith("{"):
            result = json.loads(line)
            break
    if result is None:
        tail = [l for l in err_path.read_text().splitlines() if l.strip()][-1:] or ["no output"]
        why = "timed out" if proc.returncode == -9 and timeout > 0 else f"exit {proc.returncode}"
        result = {"error": f"{why}: {tail[0][:200]}"}
    result["process_seconds"] = wall
    result["process_peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    print(f" {wall:.1f}s" + (f"  n/a: {result['error']}" if "error" in result else ""), flush=True)
    return result


def build_presage(args) -> tuple[Path | None, str | None]:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "examples" / "bench_learners"
    if not args.no_build:
        print("building: cargo build --release --workspace --example bench_learners", flush=True)
        done = subprocess.run(["cargo", "build", "--release", "--workspace", "--example",
                               "bench_learners"], cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [l for l in done.stderr.splitlines() if l.startswith("error")]
            return None, f"cargo build failed: {(errors or done.stderr.splitlines()[-1:] or ['?'])[0][:200]}"
    if not binary.exists():
        return None, f"{binary} not found (build it, or unset --no-build)"
    return binary, None


def presage_cmd(binary, task, size, spec) -> list[str]:
    cmd = [str(binary), "--train", size["train"], "--test", size["test"], "--algo", task,
           "--threads", str(THREADS), "--max-bin", str(spec["max_bin"])]
    if task == "gbm":
        cmd += ["--num-iterations", str(spec["rounds"]), "--num-leaves", str(spec["num_leaves"]),
                "--learning-rate", str(spec["learning_rate"]), "--min-data-in-leaf", "20"]
    else:
        cmd += ["--num-iterations", str(spec["trees"])]
    if spec.get("score_rows"):
        cmd += ["--score-rows", str(spec["score_rows"])]
    return cmd


def python_cmd(task, name, spec) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "worker", task, name, json.dumps(spec)]


def lightgbm_model_path(size_key: str, spec) -> Path:
    return OUT_DIR / "models" / f"lightgbm_{size_key}_r{spec['rounds']}_l{spec['num_leaves']}.txt"


def run_fit_bench(task, peers, sizes, spec, presage, args, score_spec=None) -> dict:
    """Runs every peer on every size; returns {size: {peer: result}}."""
    results = {}
    for size_key in sizes:
        size = args.data[size_key]
        print(f"\n[{task}] {int(size_key):,} rows ({size['n_train']:,} train / {size['n_test']:,} test)")
        results[size_key] = {}
        for name in peers:
            run_spec = {**spec, "train": size["train"], "test": size["test"]}
            if name == "presage":
                if presage[0] is None:
                    results[size_key][name] = {"error": presage[1]}
                    continue
                if score_spec and size_key == score_spec["size"]:
                    run_spec["score_rows"] = score_spec["rows"]
                cmd = presage_cmd(presage[0], task, size, run_spec)
            else:
                if task == "gbm" and name == "lightgbm":
                    path = lightgbm_model_path(size_key, spec)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    run_spec["save_model"] = str(path)
                cmd = python_cmd(task, name, run_spec)
            results[size_key][name] = run_child(cmd, f"{task}_{size_key}_{name}", args.timeout)
    return results


def run_score_bench(spec, score_spec, presage, args, gbm_results) -> dict:
    size_key = score_spec["size"]
    size = args.data[size_key]
    print(f"\n[score] {score_spec['rows']:,} test rows, {spec['rounds']}-tree models trained on "
          f"{size['n_train']:,} rows")
    results = {}
    # Presage: reuse the gbm run on this size if it scored; otherwise train + score now.
    previous = gbm_results.get(size_key, {}).get("presage") if gbm_results else None
    if previous and previous.get("score"):
        results["presage"] = {**previous["score"], "from": "gbm run"}
    elif presage[0] is None:
        results["presage"] = {"error": presage[1]}
    else:
        run_spec = {**spec, "score_rows": score_spec["rows"]}
        r = run_child(presage_cmd(presage[0], "gbm", size, run_spec), f"score_{size_key}_presage", args.timeout)
        results["presage"] = r.get("score") or {"error": r.get("error", "no score in output")}
    # The LightGBM model the other scorers compile.
    model_file = lightgbm_model_path(size_key, spec)
    if not model_file.exists():
        model_file.parent.mkdir(parents=True, exist_ok=True)
        run_spec = {**spec, "train": size["train"], "test": size["test"], "save_model": str(model_file)}
        run_child(python_cmd("gbm", "lightgbm", run_spec), f"score_{size_key}_train_lightgbm", args.timeout)
    for name in SCORE_PEERS[1:]:
        if not model_file.exists():
            results[name] = {"error": "no LightGBM model (its training failed)"}
            continue
        run_spec = {"test": size["test"], "score_rows": score_spec["rows"], "model_file": str(model_file)}
        results[name] = run_child(python_cmd("score", name, run_spec), f"score_{size_key}_{name}", args.timeout)
    return results


# ---- reporting

def fmt(value, pattern="{:.2f}", none="-"):
    return none if value is None else pattern.format(value)


def ratio(presage_value, peer_value):
    if presage_value is None or peer_value in (None, 0):
        return None
    return presage_value / peer_value


def fit_delta(r):
    if r.get("fit_peak_rss_mb") is None or r.get("baseline_rss_mb") is None:
        return None
    return r["fit_peak_rss_mb"] - r["baseline_rss_mb"]


def print_table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def print_fit_tables(task, results):
    for size_key, by_peer in results.items():
        print(f"\n== {task.upper()} fit, {int(size_key):,} rows ==")
        me = by_peer.get("presage", {})
        rows = []
        for name, r in by_peer.items():
            if "error" in r:
                rows.append([name] + ["n/a"] * 7)
                continue
            rows.append([
                name, fmt(r.get("fit_seconds")), fmt(fit_delta(r), "{:.0f}"),
                fmt(r.get("process_peak_rss_mb"), "{:.0f}"), fmt(r.get("test_auc"), "{:.4f}"),
                fmt(r.get("n_trees"), "{}"),
                fmt(ratio(me.get("fit_seconds"), r.get("fit_seconds")), "{:.2f}"),
                fmt(ratio(fit_delta(me), fit_delta(r)), "{:.2f}"),
            ])
        print_table(["contestant", "fit s", "fit MB", "proc MB", "test AUC", "trees",
                     "time ratio", "mem ratio"], rows)
        print_errors(by_peer)
    notes = {n: r["deviation"] for b in results.values() for n, r in b.items() if r.get("deviation")}
    for name, note in notes.items():
        print(f"  note {name}: {note}")


def print_errors(by_peer):
    for name, r in by_peer.items():
        if "error" in r:
            print(f"  {name}: n/a: {r['error']}")


def print_score_table(results):
    print("\n== batch scoring ==")
    me = results.get("presage", {})
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name] + ["n/a"] * 6)
            continue
        rows.append([
            name, fmt(r.get("rows"), "{:,}"), fmt(r.get("best_seconds"), "{:.4f}"),
            fmt(r.get("rows_per_second"), "{:,.0f}"),
            fmt(r.get("compile_seconds"), "{:.2f}"), fmt(r.get("auc_scored_rows"), "{:.4f}"),
            fmt(ratio(me.get("best_seconds"), r.get("best_seconds")), "{:.2f}"),
        ])
    print_table(["contestant", "rows", "best s", "rows/s", "compile s", "AUC", "time ratio"], rows)
    print_errors(results)


def machine_info() -> dict:
    from importlib import metadata

    cpu = "?"
    try:
        cpu = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    mem_gb = None
    try:
        mem_gb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 2**20
    except (OSError, AttributeError):
        pass

    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return None

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_gb, 1) if mem_gb else None, "kernel": platform.release(),
        "python": platform.python_version(), "rustc": first_line(["rustc", "--version"]),
        "gcc": first_line(["gcc", "--version"]),
        "presage_commit": first_line(["git", "rev-parse", "--short", "HEAD"]) or "unknown",
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "packages": versions,
    }


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows generated (80/20 train/test)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20k rows, 20 rounds / trees")
    parser.add_argument("--only", default="gbm,rf,score", help="comma list of gbm, rf, score")
    parser.add_argument("--rf-full", action="store_true", help="also run RF on the full size (slow)")
    parser.add_argument("--no-build", action="store_true", help="use the already built Presage example")
    parser.add_argument("--timeout", type=float, default=0, help="seconds per contestant (0 = none)")
    args = parser.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - {"gbm", "rf", "score"}
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}")
    if args.quick:
        args.rows = 20_000
    rounds = 20 if args.quick else 200
    trees = 20 if args.quick else 100

    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
          f"{info['memory_gb']} GB, kernel {info['kernel']}")
    print(f"python {info['python']}, {info['rustc']}, {info['gcc']}, presage {info['presage_commit']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    print(f"threads per contestant: {THREADS}; OPENBLAS_CORETYPE={info['openblas_coretype']} (unchanged)")

    args.data = ensure_data(args.rows)
    full_key, small_key = str(args.rows), str(min(SMALL_ROWS, args.rows))
    presage = build_presage(args)
    if presage[1]:
        print(f"presage: n/a: {presage[1]}")

    gbm_spec = {"rounds": rounds, "num_leaves": 31, "learning_rate": 0.1, "max_bin": 255}
    rf_spec = {"trees": trees, "max_bin": 255}
    score_spec = {"size": full_key, "rows": min(SCORE_ROWS, args.data[full_key]["n_test"])}
    report = {"machine": info, "settings": {"rows": args.rows, "quick": args.quick, "threads": THREADS,
                                            "gbm": gbm_spec, "rf": rf_spec, "score": score_spec},
              "data": args.data, "results": {}}

    gbm = rf = score = None
    if "gbm" in only:
        sizes = list(dict.fromkeys([small_key, full_key]))
        gbm = run_fit_bench("gbm", GBM_PEERS, sizes, gbm_spec, presage, args,
                            score_spec if "score" in only else None)
        report["results"]["gbm"] = gbm
    if "rf" in only:
        sizes = list(dict.fromkeys([small_key] + ([full_key] if args.rf_full else [])))
        rf = run_fit_bench("rf", RF_PEERS, sizes, rf_spec, presage, args)
        report["results"]["rf"] = rf
    if "score" in only:
        score = run_score_bench(gbm_spec, score_spec, presage, args, gbm)
        report["results"]["score"] = score

    print("\nfit s = binning + training seconds; fit MB = peak RSS during fit minus RSS after loading data;")
    print("proc MB = whole-process max RSS; ratio = presage / peer (<= 1.0: Presage faster / smaller)")
    if gbm:
        print_fit_tables("gbm", gbm)
    if rf:
        print_fit_tables("rf", rf)
    if score:
        print_score_table(score)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=str)
    (OUT_DIR / "results.json").write_text(text)
    stamped = OUT_DIR / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    stamped.write_text(text)
    print(f"\nresults: {OUT_DIR / 'results.json'} (and {stamped.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
