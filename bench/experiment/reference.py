"""The experiment analysis of datasets/configs/experiment.toml written the
way a data scientist would: DuckDB SQL for the per-user outcomes, scipy for
the tests. Usage: reference.py DATA_DIR OUT.json THREADS

Writes, per outcome and group (all, then each segment), the arms' users and
means, the difference, its 95% interval, and the p-values, plus the
sample-ratio check, for compare.py to hold against Presage's --json.
"""
import json
import sys

import duckdb
import numpy as np
from scipy import stats

data, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
DAY = 86_400_000_000
END = "TIMESTAMP '2024-03-31 00:00:00'"

con = duckdb.connect()
con.execute(f"SET threads = {threads}")
frame = con.execute(f"""
WITH a AS (
  SELECT user_id, variant, segment, epoch_us(assigned_at) AS t0
  FROM read_parquet('{data}/assignments.parquet')
), e AS (
  SELECT user_id, event, epoch_us(occurred_at) AS ts
  FROM read_parquet('{data}/events/*.parquet')
), per AS (
  SELECT a.user_id,
    max(CASE WHEN event = 'onboarding_completed' AND ts < t0 + 7 * {DAY} THEN 1 ELSE 0 END) AS onboarded_7d,
    max(CASE WHEN event = 'automation_enabled' AND ts < t0 + 28 * {DAY} THEN 1 ELSE 0 END) AS adopted_28d,
    max(CASE WHEN ts >= t0 + 30 * {DAY} AND ts < t0 + 37 * {DAY} THEN 1 ELSE 0 END) AS retained_d30,
    min(CASE WHEN event = 'project_created' AND ts < t0 + 7 * {DAY} THEN ts - t0 END) AS first_project_us,
    sum(CASE WHEN event = 'session_start' AND ts < t0 + 7 * {DAY} THEN 1 ELSE 0 END) AS sessions_week1
  FROM a JOIN e USING (user_id)
  WHERE ts >= t0 AND ts < t0 + 37 * {DAY}
  GROUP BY a.user_id
)
SELECT a.variant, a.segment,
  CASE WHEN a.t0 + 7 * {DAY} <= epoch_us({END}) THEN coalesce(onboarded_7d, 0) END AS onboarded_7d,
  CASE WHEN a.t0 + 28 * {DAY} <= epoch_us({END}) THEN coalesce(adopted_28d, 0) END AS adopted_28d,
  CASE WHEN a.t0 + 37 * {DAY} <= epoch_us({END}) THEN coalesce(retained_d30, 0) END AS retained_d30,
  CASE WHEN a.t0 + 7 * {DAY} <= epoch_us({END})
       THEN coalesce(first_project_us / 3.6e9, 168.0) END AS hours_to_first_project,
  CASE WHEN a.t0 + 7 * {DAY} <= epoch_us({END}) THEN coalesce(sessions_week1, 0) END AS sessions_week1
FROM a LEFT JOIN per USING (user_id)
""").df()

BINARY = ["onboarded_7d", "adopted_28d", "retained_d30"]
OUTCOMES = BINARY + ["hours_to_first_project", "sessions_week1"]
z = stats.norm.ppf(0.975)
groups = [("all", frame)] + [(s, g) for s, g in sorted(frame.groupby("segment"))]


def srm(g):
    n_c, n_t = int((g.variant == "control").sum()), int((g.variant == "treatment").sum())
    chi2, p = stats.chisquare([n_c, n_t], [(n_c + n_t) / 2] * 2)
    return {"segment": name, "control": n_c, "treatment": n_t, "chi_square": chi2, "p_value": p}


report = {"sample_ratio": [], "outcomes": []}
for name, g in groups:
    report["sample_ratio"].append(srm(g))
for outcome in OUTCOMES:
    rows = []
    for name, g in groups:
        c = g.loc[g.variant == "control", outcome].dropna().to_numpy(dtype=float)
        t = g.loc[g.variant == "treatment", outcome].dropna().to_numpy(dtype=float)
        row = {"segment": name, "control_users": len(c), "treatment_users": len(t),
               "control_mean": c.mean(), "treatment_mean": t.mean(),
               "difference": t.mean() - c.mean()}
        if outcome in BINARY:
            table = np.array([[t.sum(), len(t) - t.sum()], [c.sum(), len(c) - c.sum()]])
            chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
            se = np.sqrt(c.mean() * (1 - c.mean()) / len(c) + t.mean() * (1 - t.mean()) / len(t))
            row.update(chi_square=chi2, chi_square_p_value=p, p_value=p,
                       ci_low=row["difference"] - z * se, ci_high=row["difference"] + z * se)
        else:
            res = stats.ttest_ind(t, c, equal_var=False)
            ci = res.confidence_interval(0.95)
            row.update(statistic=res.statistic, p_value=res.pvalue, degrees_of_freedom=res.df,
                       ci_low=ci.low, ci_high=ci.high)
        rows.append(row)
    report["outcomes"].append({"outcome": outcome, "comparisons": rows})

with open(out, "w") as f:
    json.dump(report, f, default=float)
