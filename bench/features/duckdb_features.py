"""The feature table of datasets/configs/churn.toml, written as SQL for DuckDB.

    python duckdb_features.py USERS.parquet EVENTS_DIR OUT.parquet [THREADS]

Same definitions as `presage-train features` (see the README's extract
section): 7-day window after signup, consented users only, churned = no event
in [cutoff, cutoff + 28 days), users whose label window passes the last
event are left out. Prints one JSON line with the row count.
"""
import json
import sys

import duckdb

DAY = 86_400_000_000
HOUR = 3_600_000_000
ATTRIBUTES = ["country", "plan", "device", "acquisition_channel", "industry", "company_size"]
TIME_TO_FIRST = ["project_created", "teammate_invited", "integration_connected"]


def q(name):
    return '"' + name.replace('"', '""') + '"'


def main():
    users, events, out = sys.argv[1:4]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    ev = f"(SELECT user_id, event, epoch_us(occurred_at) AS t, duration_s FROM read_parquet('{events}/**/*.parquet'))"
    names = [r[0] for r in con.execute(f"SELECT DISTINCT event FROM {ev} ORDER BY 1").fetchall()]
    counts = ",\n      ".join(f"count(*) FILTER (WHERE event = '{n}') AS {q('count_' + n)}" for n in names)
    firsts = ",\n      ".join(
        f"(min(t) FILTER (WHERE event = '{n}') - any_value(s)) / {HOUR}.0 AS {q('hours_to_first_' + n)}"
        for n in TIME_TO_FIRST
    )
    count_cols = ", ".join(f"coalesce(agg.{q('count_' + n)}, 0) AS {q('count_' + n)}" for n in names)
    first_cols = ", ".join(f"agg.{q('hours_to_first_' + n)}" for n in TIME_TO_FIRST)
    attrs = ", ".join(f"keep.{a}" for a in ATTRIBUTES)
    sql = f"""
    COPY (
    WITH ev AS {ev},
    bounds AS (SELECT max(t) AS end_t FROM ev),
    keep AS (
      SELECT u.user_id, epoch_us(u.signup_at) AS s, epoch_us(u.signup_at) + 7 * {DAY} AS c, {", ".join("u." + a for a in ATTRIBUTES)}
      FROM read_parquet('{users}') u, bounds
      WHERE u.consent AND epoch_us(u.signup_at) + 35 * {DAY} <= bounds.end_t
    ),
    j AS (
      SELECT ev.user_id, ev.event, ev.t, ev.duration_s, keep.s, keep.c FROM ev JOIN keep USING (user_id)
      WHERE ev.t < keep.c + 28 * {DAY}  -- later events change nothing (Presage drops them too)
    ),
    obs AS (SELECT * FROM j WHERE t >= s AND t < c),
    agg AS (
      SELECT user_id,
      count(*) AS events_total,
      {counts},
      count(DISTINCT t // {DAY}) AS active_days,
      {firsts},
      max(CASE WHEN event = 'onboarding_completed' THEN 1 ELSE 0 END) AS onboarding_completed,
      (min(t) FILTER (WHERE event = 'onboarding_completed') - any_value(s)) / {HOUR}.0 AS hours_to_onboarding,
      (any_value(c) - max(t)) / {DAY}.0 AS days_since_last_event,
      count(DISTINCT event) FILTER (WHERE event LIKE 'feature\\_%' ESCAPE '\\') AS distinct_features_used,
      sum(duration_s) AS sum_duration_s,
      avg(duration_s) AS mean_duration_s,
      count(*) FILTER (WHERE t < s + (c - s) // 2) AS first_half,
      count(*) FILTER (WHERE t >= s + (c - s) // 2) AS second_half
      FROM obs GROUP BY user_id
    ),
    sess AS (
      SELECT user_id, count(*) FILTER (WHERE gap IS NULL OR gap > 30 * 60 * 1000000) AS sessions
      FROM (SELECT user_id, t - lag(t) OVER (PARTITION BY user_id ORDER BY t) AS gap FROM obs)
      GROUP BY user_id
    ),
    lab AS (SELECT DISTINCT user_id FROM j WHERE t >= c AND t < c + 28 * {DAY})
    SELECT keep.user_id,
      coalesce(agg.events_total, 0) AS events_total, {count_cols},
      coalesce(agg.active_days, 0) AS active_days, coalesce(sess.sessions, 0) AS sessions,
      {first_cols},
      coalesce(agg.onboarding_completed, 0) AS onboarding_completed, agg.hours_to_onboarding,
      agg.days_since_last_event, coalesce(agg.distinct_features_used, 0) AS distinct_features_used,
      coalesce(agg.sum_duration_s, 0) AS sum_duration_s, agg.mean_duration_s,
      (agg.second_half - agg.first_half) / (agg.second_half + agg.first_half) AS activity_trend,
      {attrs},
      CASE WHEN lab.user_id IS NULL THEN 1 ELSE 0 END AS churned
    FROM keep LEFT JOIN agg USING (user_id) LEFT JOIN sess USING (user_id) LEFT JOIN lab USING (user_id)
    ) TO '{out}' (FORMAT parquet)
    """
    con.execute(sql)
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
