#!/usr/bin/env python3
"""Drive presage-serve's Open Inference Protocol (KServe V2) routes with real
clients: NVIDIA's tritonclient[http] and the KServe SDK's InferenceRESTClient.

    python v2_clients.py --url http://127.0.0.1:PORT --model churn \
        --rows rows.json [--out out.json] [--modes m1,m2] [--header 'Name: value']

rows.json is one of
  - a list of objects, feature name -> value,
  - a list of {"features": {...}} objects, or {"rows": [...]} of those
    (the body of POST /predict/{model}/batch).
Numeric features (metadata datatype FP64) take numbers; null or an absent key
is missing and is sent as NaN. Categorical features (BYTES) take strings; a
BYTES tensor cannot carry null, so a missing categorical value is an error.
Keys that are not model inputs (ids, labels) are ignored and listed.

The script first reads GET /v2/models/{model} (through tritonclient) and builds
one input of shape [n] per model input. It checks health and readiness through
both clients, then runs every mode:

  triton_json     tritonclient, inputs binary_data=False, outputs requested
                  with InferRequestedOutput(name, binary_data=False)
  triton_binary   tritonclient, inputs binary (the default), outputs requested
                  with InferRequestedOutput(name) (binary_data=True)
  triton_default  tritonclient.infer(model, inputs) with the defaults: binary
                  inputs and no outputs, so parameters.binary_data_output=true
  triton_version  as triton_binary, on /v2/models/{model}/versions/{champion}/infer
  kserve_json     kserve InferenceRESTClient, inputs set_data_from_numpy(...,
                  binary_data=False): a plain application/json body
  kserve_binary   kserve, binary inputs (its default) and outputs requested
                  with RequestedOutput(name, {"binary_data": True})

Each mode must answer n probabilities (FP64) and n segments (BYTES), echo the
request id, come back binary exactly when binary outputs were asked for, and
agree bit for bit with every other mode. The result is one JSON object on
stdout (and in --out): per mode the probabilities as float.hex() strings, the
segments, which outputs came back binary, model_name/model_version/id and the
response's parameters. Any failure is reported in "errors", on stderr, and by
exit code 1.
"""

import argparse
import asyncio
import json
import math
import sys
import traceback

import numpy as np

ALL_MODES = [
    "triton_json",
    "triton_binary",
    "triton_default",
    "triton_version",
    "kserve_json",
    "kserve_binary",
]
BINARY_OUTPUT_MODES = {"triton_binary", "triton_default", "triton_version", "kserve_binary"}
OUTPUTS = ("probability", "segment")


class Failure(Exception):
    pass


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    p.add_argument("--model", required=True)
    p.add_argument("--rows", required=True, help="JSON file of rows (see above)")
    p.add_argument("--out", help="also write the result here")
    p.add_argument("--modes", default=",".join(ALL_MODES), help="comma-separated subset of: " + ", ".join(ALL_MODES))
    p.add_argument("--header", action="append", default=[], help="'Name: value', sent on every request")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = p.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in ALL_MODES]
    if unknown:
        p.error(f"unknown mode(s) {unknown}; known: {ALL_MODES}")
    if not args.url.startswith("http://"):
        p.error("--url must be http://HOST:PORT")
    args.hostport = args.url[len("http://"):].rstrip("/")
    headers = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            p.error(f"--header {h!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    args.headers = headers
    return args


def load_rows(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict) and "rows" in data:
        data = data["rows"]
    if not isinstance(data, list) or not data:
        raise Failure(f"{path}: expected a non-empty list of rows")
    rows = []
    for i, row in enumerate(data):
        if isinstance(row, dict) and isinstance(row.get("features"), dict):
            row = row["features"]
        if not isinstance(row, dict):
            raise Failure(f"{path}: row {i} is not an object")
        rows.append(row)
    return rows


def build_arrays(rows, metadata):
    """One numpy array of shape [n] per model input, in metadata order."""
    inputs = metadata.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise Failure(f"model metadata has no inputs: {metadata}")
    names = {i["name"] for i in inputs}
    ignored = sorted({k for row in rows for k in row} - names)
    arrays = []
    nan_count = 0
    for spec in inputs:
        name, datatype = spec["name"], spec["datatype"]
        if datatype == "FP64":
            values = []
            for r, row in enumerate(rows):
                v = row.get(name)
                if v is None:
                    values.append(math.nan)
                    nan_count += 1
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    values.append(float(v))
                else:
                    raise Failure(f"row {r}: '{name}' is numeric (FP64): give a number or null, not {v!r}")
            arrays.append((name, datatype, np.array(values, dtype=np.float64)))
        elif datatype == "BYTES":
            values = []
            for r, row in enumerate(rows):
                v = row.get(name)
                if not isinstance(v, str):
                    raise Failure(
                        f"row {r}: '{name}' is categorical (BYTES): give a string, not {v!r} "
                        "(a BYTES tensor cannot carry null)"
                    )
                values.append(v.encode("utf-8"))
            arrays.append((name, datatype, np.array(values, dtype=np.object_)))
        else:
            raise Failure(f"input '{name}' has datatype {datatype}; this script sends FP64 and BYTES only")
    return arrays, ignored, nan_count


def as_text(items):
    out = []
    for s in items:
        if isinstance(s, bytes):
            s = s.decode("utf-8")
        if not isinstance(s, str):
            raise Failure(f"segment element {s!r} is not a string")
        out.append(s)
    return out


def check_outputs(mode, n, probability, segment, binary_outputs):
    if probability is None or segment is None:
        raise Failure(f"response lacks an output: probability={probability is not None}, segment={segment is not None}")
    probability = np.asarray(probability)
    if probability.dtype != np.float64 or probability.shape != (n,):
        raise Failure(f"probability is {probability.dtype} {list(probability.shape)}, expected float64 [{n}]")
    segment = as_text(list(np.asarray(segment, dtype=object).reshape(-1)))
    if len(segment) != n:
        raise Failure(f"segment has {len(segment)} values, expected {n}")
    want_binary = mode in BINARY_OUTPUT_MODES
    expected = sorted(OUTPUTS) if want_binary else []
    if sorted(binary_outputs) != expected:
        raise Failure(
            f"outputs returned as binary: {sorted(binary_outputs)}, expected {expected} "
            f"({'binary outputs were requested' if want_binary else 'JSON outputs were requested'})"
        )
    return {
        "probability": [float(p).hex() for p in probability],
        "segment": segment,
        "binary_outputs": sorted(binary_outputs),
    }


# ---------------------------------------------------------------- tritonclient

def triton_client(args):
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(
        url=args.hostport, connection_timeout=args.timeout, network_timeout=args.timeout
    )


def triton_health(args, client):
    model_ready = client.is_model_ready(args.model, headers=args.headers)
    result = {
        "live": client.is_server_live(headers=args.headers),
        "ready": client.is_server_ready(headers=args.headers),
        "model_ready": model_ready,
    }
    if not all(result.values()):
        raise Failure(f"tritonclient health: {result}")
    return result


def triton_infer(args, client, mode, arrays, n, champion):
    import tritonclient.http as httpclient

    binary_inputs = mode != "triton_json"
    inputs = []
    for name, datatype, array in arrays:
        t = httpclient.InferInput(name, [n], datatype)
        if mode == "triton_default":
            t.set_data_from_numpy(array)
        else:
            t.set_data_from_numpy(array, binary_data=binary_inputs)
        inputs.append(t)
    if mode == "triton_default":
        outputs = None
    else:
        outputs = [httpclient.InferRequestedOutput(o, binary_data=(mode != "triton_json")) for o in OUTPUTS]
    version = ""
    if mode == "triton_version":
        if champion is None:
            raise Failure("metadata has no parameters.champion to call the versioned route with")
        version = str(champion)
    request_id = f"presage-{mode}"
    result = client.infer(
        args.model,
        inputs,
        model_version=version,
        outputs=outputs,
        request_id=request_id,
        headers=dict(args.headers) or None,
    )
    response = result.get_response()
    binary_outputs = [
        o["name"]
        for o in response.get("outputs", [])
        if isinstance(o.get("parameters"), dict) and "binary_data_size" in o["parameters"]
    ]
    out = check_outputs(mode, n, result.as_numpy("probability"), result.as_numpy("segment"), binary_outputs)
    if response.get("id") != request_id:
        raise Failure(f"response id {response.get('id')!r}, expected the request's {request_id!r}")
    if response.get("model_name") != args.model:
        raise Failure(f"response model_name {response.get('model_name')!r}, expected {args.model!r}")
    if mode == "triton_version" and str(response.get("model_version")) != version:
        raise Failure(f"response model_version {response.get('model_version')!r}, expected {version!r}")
    out.update(
        model_name=response.get("model_name"),
        model_version=response.get("model_version"),
        id=response.get("id"),
        parameters=response.get("parameters"),
    )
    return out


# ---------------------------------------------------------------- kserve

async def kserve_run(args, modes, arrays, n, record, errors):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput

    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=args.timeout))
    try:
        try:
            result = {
                "live": await client.is_server_live(args.url, headers=args.headers),
                "ready": await client.is_server_ready(args.url, headers=args.headers),
                "model_ready": await client.is_model_ready(args.url, args.model, headers=args.headers),
            }
            record["health"]["kserve"] = result
            if not all(result.values()):
                raise Failure(f"kserve health: {result}")
        except Exception as e:  # noqa: BLE001
            errors.append(f"kserve health: {describe(e)}")
        for mode in modes:
            try:
                binary = mode == "kserve_binary"
                inputs = []
                for name, datatype, array in arrays:
                    t = InferInput(name, [n], datatype)
                    t.set_data_from_numpy(array, binary_data=binary)
                    inputs.append(t)
                request_id = f"presage-{mode}"
                outputs = [RequestedOutput(o, {"binary_data": True}) for o in OUTPUTS] if binary else None
                request = InferRequest(
                    model_name=args.model, infer_inputs=inputs, request_id=request_id, request_outputs=outputs
                )
                response_headers = {}
                response = await client.infer(
                    args.url,
                    request,
                    model_name=args.model,
                    headers=dict(args.headers) or None,
                    response_headers=response_headers,
                )
                by_name = {o.name: o for o in response.outputs}
                # kserve drops outputs' binary_data_size once it has decoded
                # them, so tell binary from JSON by the response's headers: a
                # binary part follows the JSON when the JSON is shorter than
                # the body.
                lowered = {k.lower(): v for k, v in response_headers.items()}
                header_length = lowered.get("inference-header-content-length")
                body_length = lowered.get("content-length")
                has_binary = (
                    header_length is not None
                    and body_length is not None
                    and int(header_length) < int(body_length)
                )
                binary_outputs = list(OUTPUTS) if has_binary else []
                prob = by_name["probability"].as_numpy() if "probability" in by_name else None
                seg = by_name["segment"].as_numpy() if "segment" in by_name else None
                out = check_outputs(mode, n, prob, seg, binary_outputs)
                if response.id != request_id:
                    raise Failure(f"response id {response.id!r}, expected the request's {request_id!r}")
                if response.model_name != args.model:
                    raise Failure(f"response model_name {response.model_name!r}, expected {args.model!r}")
                out.update(model_name=response.model_name, id=response.id, parameters=response.parameters)
                record["modes"][mode] = out
            except Exception as e:  # noqa: BLE001
                errors.append(f"{mode}: {describe(e)}")
    finally:
        await client.close()


# ---------------------------------------------------------------- main

def describe(e):
    if isinstance(e, Failure):
        return str(e)
    if type(e).__name__ == "InferenceServerException":
        # Its str() assumes the body's "error" is a string (Triton's own
        # format) and raises TypeError on an object: print the parts instead.
        return f"InferenceServerException: HTTP {e.status()}: {json.dumps(e.message())}"
    text = f"{type(e).__name__}: {e}"
    if not str(e):
        text += "\n" + traceback.format_exc()
    return text


def main():
    args = parse_args()
    record = {"model": args.model, "url": args.url, "modes": {}, "health": {}}
    errors = []
    try:
        rows = load_rows(args.rows)
        n = len(rows)
        record["rows"] = n
        client = triton_client(args)
        try:
            metadata = client.get_model_metadata(args.model, headers=args.headers)
        except Exception as e:  # noqa: BLE001
            raise Failure(f"tritonclient get_model_metadata: {describe(e)}") from e
        if metadata.get("name") != args.model:
            raise Failure(f"metadata name {metadata.get('name')!r}, expected {args.model!r}")
        outputs = {o.get("name"): o.get("datatype") for o in metadata.get("outputs", [])}
        if outputs != {"probability": "FP64", "segment": "BYTES"}:
            raise Failure(f"metadata outputs {outputs}, expected probability FP64 and segment BYTES")
        record["metadata"] = {
            "name": metadata.get("name"),
            "versions": metadata.get("versions"),
            "platform": metadata.get("platform"),
            "inputs": metadata.get("inputs"),
            "outputs": metadata.get("outputs"),
        }
        champion = (metadata.get("parameters") or {}).get("champion")
        arrays, ignored, nan_count = build_arrays(rows, metadata)
        record["ignored_keys"] = ignored
        record["nan_inputs"] = nan_count
        try:
            record["health"]["triton"] = triton_health(args, client)
        except Exception as e:  # noqa: BLE001
            errors.append(f"tritonclient health: {describe(e)}")
        for mode in [m for m in args.modes if m.startswith("triton_")]:
            try:
                record["modes"][mode] = triton_infer(args, client, mode, arrays, n, champion)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{mode}: {describe(e)}")
        client.close()
        kserve_modes = [m for m in args.modes if m.startswith("kserve_")]
        asyncio.run(kserve_run(args, kserve_modes, arrays, n, record, errors))
    except Exception as e:  # noqa: BLE001
        errors.append(describe(e))

    # Every mode must give the same bits and segments.
    done = record["modes"]
    disagreements = []
    if len(done) > 1:
        first, *rest = sorted(done)
        for mode in rest:
            for key in ("probability", "segment"):
                if done[mode][key] != done[first][key]:
                    diff = next(
                        i for i, (a, b) in enumerate(zip(done[mode][key], done[first][key])) if a != b
                    ) if len(done[mode][key]) == len(done[first][key]) else "length"
                    disagreements.append(f"{mode} and {first} disagree on {key} (first difference at row {diff})")
    errors.extend(disagreements)
    record["agree"] = not disagreements
    record["errors"] = errors
    text = json.dumps(record, sort_keys=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    for e in errors:
        print(f"v2_clients: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
