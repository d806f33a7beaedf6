"""Feast + LightGBM churn scorer by user id: the peer of presage-serve's
`POST /predict/churn {"user_id": ...}` in bench/online.

`POST /predict/churn` with `{"user_id": "u0000042"}`: the user's churn
features from Feast's online store (`FeatureStore.get_online_features` on
the `churn_features` feature view, Redis behind it), a numpy row in the
model's feature order with the training-time category codes, LightGBM
`predict(num_threads=1)`, and `{"user_id", "probability", "segment",
"features_source": "feast"}`; the segment is Presage's default percentile
policy (low < 0.7 <= medium < 0.9 <= high among validation scores). A user
Feast does not know comes back with every feature missing (Feast's answer),
scored like that, as Presage scores an unknown id.

Written for speed like bench/serve/app_tuned.py: orjson on the raw body,
precomputed lookups, a preallocated row, the answer as orjson bytes, no
access log.
The handler is `async def` and awaits `get_online_features_async` (Feast's
Redis store reads asynchronously), so one worker keeps several requests in
flight while Redis answers. Set FEAST_BENCH_SYNC=1 for the synchronous
`get_online_features` in a plain `def` handler (FastAPI's thread pool)
instead. Nothing is cached between requests.

Run: FEAST_BENCH_REPO=REPO_DIR PRESAGE_BENCH_MODEL_DIR=DIR uvicorn app_feast:app --workers 2 --no-access-log
"""

import json
import math
import os
from bisect import bisect_left, bisect_right
from pathlib import Path

import lightgbm as lgb
import numpy as np
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from feast import FeatureStore

MODEL_DIR = Path(os.environ["PRESAGE_BENCH_MODEL_DIR"])
REPO = os.environ["FEAST_BENCH_REPO"]
VIEW = os.environ.get("FEAST_BENCH_VIEW", "churn_features")
SYNC = os.environ.get("FEAST_BENCH_SYNC") == "1"

booster = lgb.Booster(model_file=str(MODEL_DIR / "churn_lgbm.txt"))
meta = json.loads((MODEL_DIR / "churn_meta.json").read_text())
FEATURES = booster.feature_name()
N_FEATURES = len(FEATURES)
PLAN = [
    (i, name, {c: float(k) for k, c in enumerate(meta["categorical"][name])} if name in meta["categorical"] else None)
    for i, name in enumerate(FEATURES)
]
QUANTILES = list(meta["score_quantiles"])
STEPS = len(QUANTILES) - 1
SEGMENTS = [(name, upper) for name, upper in meta["segments"]]
NAN = math.nan
ROW = np.empty((1, N_FEATURES), dtype=np.float64)

store = FeatureStore(repo_path=REPO)
REFS = [f"{VIEW}:{name}" for name in FEATURES]

app = FastAPI(title="churn scorer (Feast + LightGBM)")


def segment_of(p: float) -> str:
    rank = (bisect_left(QUANTILES, p) + bisect_right(QUANTILES, p)) / 2 - 0.5
    rank = min(max(rank, 0.0), STEPS) / STEPS
    for name, upper in SEGMENTS:
        if rank < upper:
            return name
    return SEGMENTS[-1][0]


def score(user_id, online: dict) -> dict:
    row = ROW[0]
    for i, name, codes in PLAN:
        value = online[name][0]
        if value is None:
            row[i] = NAN
        elif codes is not None:
            row[i] = codes.get(value, NAN)
        else:
            row[i] = value
    p = float(booster.predict(ROW, num_threads=1)[0])
    return {"user_id": user_id, "probability": p, "segment": segment_of(p), "features_source": "feast"}


def user_of(raw: bytes):
    body = orjson.loads(raw)
    user_id = body["user_id"]
    if not isinstance(user_id, str):
        raise TypeError("user_id must be a string")
    return user_id


def json_response(content, status_code=200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


@app.get("/readyz")
async def ready():
    return json_response({"status": "ready"})


async def body_of(request: Request) -> bytes:
    return await request.body()


async def predict_async(raw: bytes = Depends(body_of)):
    try:
        user_id = user_of(raw)
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as e:
        return json_response({"error": str(e)}, status_code=422)
    response = await store.get_online_features_async(features=REFS, entity_rows=[{"user_id": user_id}])
    return json_response(score(user_id, response.to_dict()))


def predict_sync(raw: bytes = Depends(body_of)):
    try:
        user_id = user_of(raw)
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as e:
        return json_response({"error": str(e)}, status_code=422)
    response = store.get_online_features(features=REFS, entity_rows=[{"user_id": user_id}])
    return json_response(score(user_id, response.to_dict()))


app.add_api_route("/predict/churn", predict_sync if SYNC else predict_async, methods=["POST"])
