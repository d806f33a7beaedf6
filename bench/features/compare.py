"""Checks that two feature tables agree: same users, and the same value in
every column they share (numbers to 1e-9 relative, missing = missing).

    python compare.py PRESAGE.parquet DUCKDB.parquet

Prints one JSON line: users, shared columns, and mismatching cells per column.
Exits 1 on any mismatch.
"""
import json
import sys

import numpy as np
import pandas as pd


def main():
    a = pd.read_parquet(sys.argv[1])
    b = pd.read_parquet(sys.argv[2])
    out = {"users": [len(a), len(b)], "only_in_presage": [], "only_in_duckdb": [], "mismatches": {}}
    if set(a.user_id) != set(b.user_id):
        out["user_sets_differ"] = True
    m = a.merge(b, on="user_id", suffixes=("_p", "_d"))
    shared = [c for c in a.columns if c in b.columns and c != "user_id"]
    out["shared_columns"] = len(shared)
    out["only_in_presage"] = [c for c in a.columns if c not in b.columns]
    out["only_in_duckdb"] = [c for c in b.columns if c not in a.columns]
    for c in shared:
        x, y = m[c + "_p"], m[c + "_d"]
        if not (pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y)):
            bad = ~((x == y) | (x.isna() & y.isna()))
        else:
            xf, yf = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            both_nan = np.isnan(xf) & np.isnan(yf)
            close = np.isclose(xf, yf, rtol=1e-9, atol=1e-9)
            bad = ~(both_nan | close)
        n = int(np.sum(bad))
        if n:
            out["mismatches"][c] = n
    print(json.dumps(out))
    sys.exit(1 if out["mismatches"] or out.get("user_sets_differ") else 0)


if __name__ == "__main__":
    main()
