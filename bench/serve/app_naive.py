"""FastAPI churn scorer "as most users write it" (the benchmark's variant a).

A pydantic request model mirroring Presage's `POST /predict/churn`
(`{"user_id": str, "features": {name: value}}`), features turned into a numpy
row in the model's feature order with the training-time category codes,
`booster.predict`, and a pydantic response `{"user_id", "probability",
"segment"}`; the segment is Presage's default policy (percentile rank of the
probability among validation scores: low < 0.7 <= medium < 0.9 <= high).
`?explain=K` adds the K largest LightGBM TreeSHAP contributions
(`pred_contrib=True`), and `POST /predict/churn/batch` takes
`{"rows": [...]}` and scores them in one `predict` call, like Presage.

Handlers are plain `def`, as FastAPI's docs advise for blocking work (they
run in the thread pool). LightGBM keeps its default threads. Nothing is
cached between requests.

Run: PRESAGE_BENCH_MODEL_DIR=DIR uvicorn app_naive:app [--workers N]
"""

import json
import os
from pathlib import Path
from typing import Optional, Union

import lightgbm as lgb
import numpy as np
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel

MODEL_DIR = Path(os.environ["PRESAGE_BENCH_MODEL_DIR"])
booster = lgb.Booster(model_file=str(MODEL_DIR / "churn_lgbm.txt"))
meta = json.loads((MODEL_DIR / "churn_meta.json").read_text())
FEATURES = booster.feature_name()
CATEGORIES = {name: {c: i for i, c in enumerate(cats)} for name, cats in meta["categorical"].items()}
QUANTILES = np.array(meta["score_quantiles"])
SEGMENTS = meta["segments"]  # [[name, upper bound of the percentile band], ...]

app = FastAPI(title="churn scorer")


class PredictRequest(BaseModel):
    user_id: str
    features: dict[str, Union[str, float, None]]


class BatchRequest(BaseModel):
    rows: list[PredictRequest]


class Reason(BaseModel):
    feature: str
    value: Union[str, float, None]
    contribution: float


class PredictResponse(BaseModel):
    user_id: str
    probability: float
    segment: str
    reasons: Optional[list[Reason]] = None


class BatchResponse(BaseModel):
    results: list[PredictResponse]


def to_row(features: dict) -> list:
    try:
        return encode(features)
    except (TypeError, ValueError) as e:
        raise HTTPException(status_code=422, detail=f"bad feature value: {e}")


def encode(features: dict) -> list:
    row = []
    for name in FEATURES:
        value = features.get(name)
        if name in CATEGORIES:
            code = CATEGORIES[name].get(value)
            row.append(np.nan if code is None else float(code))
        else:
            row.append(np.nan if value is None else float(value))
    return row


def segment_of(probability: float) -> str:
    # Percentile rank among the validation-score quantiles (mid-rank on ties).
    below = np.searchsorted(QUANTILES, probability, side="left")
    at_or_below = np.searchsorted(QUANTILES, probability, side="right")
    rank = min(max((below + at_or_below) / 2 - 0.5, 0), len(QUANTILES) - 1) / (len(QUANTILES) - 1)
    for name, upper in SEGMENTS:
        if rank < upper:
            return name
    return SEGMENTS[-1][0]


def reasons_of(contributions: np.ndarray, features: dict, k: int) -> list[Reason]:
    order = np.argsort(-np.abs(contributions[:-1]), kind="stable")[:k]
    return [
        Reason(feature=FEATURES[i], value=features.get(FEATURES[i]), contribution=float(contributions[i]))
        for i in order
    ]


@app.get("/readyz")
def ready():
    return {"status": "ready"}


@app.post("/predict/churn", response_model=PredictResponse, response_model_exclude_none=True)
def predict(request: PredictRequest, explain: int = Query(0, ge=0, le=100)):
    X = np.array([to_row(request.features)], dtype=np.float64)
    probability = float(booster.predict(X)[0])
    reasons = None
    if explain:
        reasons = reasons_of(booster.predict(X, pred_contrib=True)[0], request.features, explain)
    return PredictResponse(
        user_id=request.user_id, probability=probability, segment=segment_of(probability), reasons=reasons
    )


@app.post("/predict/churn/batch", response_model=BatchResponse, response_model_exclude_none=True)
def predict_batch(request: BatchRequest, explain: int = Query(0, ge=0, le=100)):
    if not request.rows:
        raise HTTPException(status_code=422, detail="rows is empty")
    X = np.array([to_row(r.features) for r in request.rows], dtype=np.float64)
    probabilities = booster.predict(X)
    contributions = booster.predict(X, pred_contrib=True) if explain else None
    return BatchResponse(
        results=[
            PredictResponse(
                user_id=r.user_id,
                probability=float(p),
                segment=segment_of(float(p)),
                reasons=None if contributions is None else reasons_of(contributions[i], r.features, explain),
            )
            for i, (r, p) in enumerate(zip(request.rows, probabilities))
        ]
    )
