"""Holds Presage's `experiment --json` against reference.py's output: every
count must be equal and every statistic agree to 1e-9 (relative). Usage:
compare.py PRESAGE.json REFERENCE.json"""
import json
import sys

presage, reference = (json.load(open(p)) for p in sys.argv[1:3])
worst = {}
checked = 0


def close(what, got, want):
    global checked
    checked += 1
    if isinstance(want, int):
        assert got == want, f"{what}: Presage {got}, reference {want}"
        return
    err = abs(got - want) / max(abs(want), 1e-300) if want != 0 else abs(got)
    worst[what.split("/")[-1]] = max(worst.get(what.split("/")[-1], 0.0), err)
    assert err < 1e-9 or abs(got - want) < 1e-12, f"{what}: Presage {got}, reference {want}"


for mine, ref in zip(presage["sample_ratio"], reference["sample_ratio"]):
    assert mine["segment"] == ref["segment"]
    for key in ["control", "treatment", "chi_square", "p_value"]:
        close(f"srm/{ref['segment']}/{key}", mine[key], ref[key])
for mine_o, ref_o in zip(presage["outcomes"], reference["outcomes"]):
    assert mine_o["outcome"] == ref_o["outcome"]
    for mine, ref in zip(mine_o["comparisons"], ref_o["comparisons"]):
        assert mine["segment"] == ref["segment"]
        tag = f"{ref_o['outcome']}/{ref['segment']}"
        close(f"{tag}/control users", mine["control"]["users"], ref["control_users"])
        close(f"{tag}/treatment users", mine["treatment"]["users"], ref["treatment_users"])
        close(f"{tag}/control mean", mine["control"]["mean"], ref["control_mean"])
        close(f"{tag}/treatment mean", mine["treatment"]["mean"], ref["treatment_mean"])
        for key in ["difference", "ci_low", "ci_high", "p_value", "chi_square",
                    "chi_square_p_value", "statistic", "degrees_of_freedom"]:
            if key in ref:
                close(f"{tag}/{key}", mine[key], ref[key])
print(f"{checked} numbers agree with DuckDB + scipy; largest relative differences:")
print("  " + ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items())))
