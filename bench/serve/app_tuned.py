"""Hand-tuned FastAPI churn scorer (the benchmark's variant b).

Same API and answers as app_naive.py, written for speed: the raw body from
`Request.body()` parsed with orjson (no pydantic), feature positions and
category codes looked up in precomputed tables, rows written into
preallocated numpy arrays (safe to reuse: handlers are `async def`, so they
run on the event loop and nothing awaits between filling an array and
`predict`), `booster.predict(..., num_threads=1)` (no OpenMP fan-out for a
row or a hundred), percentile rank with `bisect` on a Python list, and
`ORJSONResponse`. Bad input is a 422, as in variant a. Nothing is cached
between requests.

Run: PRESAGE_BENCH_MODEL_DIR=DIR uvicorn app_tuned:app --workers 2 --no-access-log
"""

import json
import math
import os
from bisect import bisect_left, bisect_right
from pathlib import Path

import lightgbm as lgb
import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse

MODEL_DIR = Path(os.environ["PRESAGE_BENCH_MODEL_DIR"])
booster = lgb.Booster(model_file=str(MODEL_DIR / "churn_lgbm.txt"))
meta = json.loads((MODEL_DIR / "churn_meta.json").read_text())
FEATURES = booster.feature_name()
N_FEATURES = len(FEATURES)
# (position, name, category -> code or None for numeric)
PLAN = [
    (i, name, {c: float(k) for k, c in enumerate(meta["categorical"][name])} if name in meta["categorical"] else None)
    for i, name in enumerate(FEATURES)
]
QUANTILES = list(meta["score_quantiles"])
STEPS = len(QUANTILES) - 1
SEGMENTS = [(name, upper) for name, upper in meta["segments"]]
NAN = math.nan
MAX_ROWS = 10_000
ROW = np.empty((1, N_FEATURES), dtype=np.float64)
MATRIX = np.empty((MAX_ROWS, N_FEATURES), dtype=np.float64)

app = FastAPI(title="churn scorer (tuned)", default_response_class=ORJSONResponse)


class BadInput(Exception):
    pass


def fill(out: np.ndarray, features) -> None:
    if not isinstance(features, dict):
        raise BadInput("features must be an object")
    for i, name, codes in PLAN:
        value = features.get(name)
        if value is None:
            out[i] = NAN
        elif codes is not None:
            out[i] = codes.get(value, NAN)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[i] = value
        else:
            raise BadInput(f"feature '{name}' must be a number")


def segment_of(p: float) -> str:
    rank = (bisect_left(QUANTILES, p) + bisect_right(QUANTILES, p)) / 2 - 0.5
    rank = min(max(rank, 0.0), STEPS) / STEPS
    for name, upper in SEGMENTS:
        if rank < upper:
            return name
    return SEGMENTS[-1][0]


def reasons_of(contributions: np.ndarray, features: dict, k: int) -> list:
    order = np.argsort(-np.abs(contributions[:-1]), kind="stable")[:k]
    return [
        {"feature": FEATURES[i], "value": features.get(FEATURES[i]), "contribution": float(contributions[i])}
        for i in order.tolist()
    ]


def explain_param(request: Request) -> int:
    raw = request.query_params.get("explain")
    if raw is None:
        return 0
    k = int(raw)
    if not 0 <= k <= 100:
        raise ValueError
    return k


def error(message: str) -> ORJSONResponse:
    return ORJSONResponse({"error": message}, status_code=422)


@app.get("/readyz")
async def ready():
    return {"status": "ready"}


@app.post("/predict/churn")
async def predict(request: Request):
    try:
        explain = explain_param(request)
        body = orjson.loads(await request.body())
        user_id = body["user_id"]
        features = body["features"]
        fill(ROW[0], features)
    except (BadInput, KeyError, TypeError, ValueError, orjson.JSONDecodeError) as e:
        return error(str(e))
    p = float(booster.predict(ROW, num_threads=1)[0])
    out = {"user_id": user_id, "probability": p, "segment": segment_of(p)}
    if explain:
        out["reasons"] = reasons_of(booster.predict(ROW, pred_contrib=True, num_threads=1)[0], features, explain)
    return ORJSONResponse(out)


@app.post("/predict/churn/batch")
async def predict_batch(request: Request):
    try:
        explain = explain_param(request)
        body = orjson.loads(await request.body())
        rows = body["rows"]
        n = len(rows)
        if not 0 < n <= MAX_ROWS:
            raise BadInput(f"rows must hold 1 to {MAX_ROWS} rows")
        for i, row in enumerate(rows):
            fill(MATRIX[i], row["features"])
        user_ids = [row["user_id"] for row in rows]
    except (BadInput, KeyError, TypeError, ValueError, orjson.JSONDecodeError) as e:
        return error(str(e))
    X = MATRIX[:n]
    probabilities = booster.predict(X, num_threads=1).tolist()
    contributions = booster.predict(X, pred_contrib=True, num_threads=1) if explain else None
    results = []
    for i, p in enumerate(probabilities):
        item = {"user_id": user_ids[i], "probability": p, "segment": segment_of(p)}
        if contributions is not None:
            item["reasons"] = reasons_of(contributions[i], rows[i]["features"], explain)
        results.append(item)
    return ORJSONResponse({"results": results})
