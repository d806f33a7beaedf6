//! `presage-train experiment` on a small hand-built extract whose outcomes
//! are known by construction: every count, rate, mean, test statistic,
//! p-value, interval, Holm adjustment, MDE and sample size is checked
//! against a computation written here independently (tail probabilities by
//! numerical integration of the normal and Student t densities, not the
//! library's series). Then the guard rails: bad logs and configs fail with
//! exit code 2 and a message naming what is wrong, and write nothing.

use std::path::{Path, PathBuf};

use presage_models::time::{format_timestamp, parse_timestamp, HOUR_US};
use presage_tests::{entry, train, Run};
use serde_json::Value;
use sha2::{Digest, Sha256};

const COMPLETE: usize = 220;
const CONTROL: usize = 100;

fn base() -> i64 {
    parse_timestamp("2024-01-01").unwrap()
}

fn at(hours: f64) -> String {
    format_timestamp(base() + (hours * HOUR_US as f64) as i64)
}

fn id(i: usize) -> String {
    format!("u{i:03}")
}

fn treated(i: usize) -> bool {
    i >= CONTROL
}

fn segment(i: usize) -> &'static str {
    if i.is_multiple_of(3) {
        "a"
    } else {
        "b"
    }
}

/// Hours after 2024-01-01 of the assignment of user `i` (complete users),
/// a minute after their signup.
fn assigned(i: usize) -> f64 {
    2.0 * i as f64 + 1.0 / 60.0
}

fn converted(i: usize) -> bool {
    if treated(i) {
        (i - CONTROL) % 5 < 2
    } else {
        i % 10 < 3
    }
}

/// Hours from assignment to the goal of a converter: 30 minutes, 15
/// minutes or 2 hours after the time of a ping (which the user may or may
/// not have).
fn goal_hours(i: usize) -> f64 {
    10.0 * ((i % 7) + 1) as f64 + [0.5, 0.25, 2.0][i % 3]
}

fn pings(i: usize) -> usize {
    if treated(i) {
        (i * 3) % 7
    } else {
        (i * 7) % 5
    }
}

/// Sessions in the 7 days after assignment: the goal and the pings in the
/// window, a new session after more than 30 minutes without an event.
fn sessions(i: usize) -> usize {
    let mut hours: Vec<f64> = (0..pings(i)).map(|k| 10.0 * (k + 1) as f64).collect();
    if converted(i) {
        hours.push(goal_hours(i));
    }
    hours.sort_by(f64::total_cmp);
    hours
        .iter()
        .enumerate()
        .filter(|&(k, h)| k == 0 || h - hours[k - 1] > 0.5)
        .count()
}

/// Writes the extract and config into `dir`; `edit` may change the
/// assignment rows (after the header) and the config before writing.
fn write_extract(dir: &Path, edit: impl FnOnce(&mut Vec<String>, &mut String)) -> PathBuf {
    let mut users = vec!["user_id,signup_at,consent".to_owned()];
    let mut assignments = Vec::new();
    let mut events = vec!["user_id,event,occurred_at".to_owned()];
    let variant = |t: bool| if t { "treatment" } else { "control" };
    for i in 0..COMPLETE {
        let (signup, a) = (2.0 * i as f64, assigned(i));
        users.push(format!("{},{},true", id(i), at(signup)));
        assignments.push(format!(
            "{},{},{},{}",
            id(i),
            variant(treated(i)),
            at(a),
            segment(i)
        ));
        if converted(i) {
            events.push(format!("{},goal,{}", id(i), at(a + goal_hours(i))));
        } else if !treated(i) && i % 10 == 5 {
            // Before the assignment: does not count.
            events.push(format!("{},goal,{}", id(i), at(a - 0.5)));
        } else if treated(i) && (i - CONTROL) % 5 == 3 {
            // After the 7-day window: does not count.
            events.push(format!("{},goal,{}", id(i), at(a + 8.0 * 24.0)));
        }
        for k in 0..pings(i) {
            events.push(format!("{},ping,{}", id(i), at(a + 10.0 * (k + 1) as f64)));
        }
        if i.is_multiple_of(4) {
            events.push(format!("{},ping,{}", id(i), at(a + 7.0 * 24.0 + 1.0)));
        }
    }
    // Assigned 3 days before the end: too late for 7-day outcomes.
    for i in COMPLETE..COMPLETE + 5 {
        let a = 28.0 * 24.0;
        users.push(format!("{},{},true", id(i), at(a)));
        assignments.push(format!("{},{},{},a", id(i), variant(i >= 222), at(a)));
        events.push(format!("{},goal,{}", id(i), at(a + 1.0)));
    }
    // Without consent: left out.
    for i in [225, 226] {
        users.push(format!("{},{},false", id(i), at(10.0)));
        assignments.push(format!("{},{},{},b", id(i), variant(i == 226), at(10.0)));
        events.push(format!("{},goal,{}", id(i), at(11.0)));
    }
    // Not in the users extract: left out.
    assignments.push(format!("ghost,treatment,{},a", at(5.0)));
    // Logged twice in the same variant, later: the first row counts.
    for i in [0, 1, 150] {
        assignments.push(format!(
            "{},{},{},{}",
            id(i),
            variant(treated(i)),
            at(assigned(i) + 3.0),
            segment(i)
        ));
    }
    let mut config = r#"
[extract]
users = "users.csv"
events = "events.csv"
consent = "consent"
end = "2024-02-01"

[experiment]
assignments = "assignments.csv"
segment = "segment"
alpha = 0.05
power = 0.8
target_lift = 0.1

[[outcomes]]
name = "goal_7d"
kind = "conversion"
event = "goal"
within_days = 7

[[outcomes]]
name = "hours_to_goal"
kind = "time_to_event"
event = "goal"
within_days = 7

[[outcomes]]
name = "pings_7d"
kind = "count"
event = "ping"
within_days = 7

[[outcomes]]
name = "sessions_7d"
kind = "sessions"
within_days = 7
session_gap_minutes = 30
"#
    .to_owned();
    edit(&mut assignments, &mut config);
    let write = |name: &str, lines: &[String]| {
        std::fs::write(dir.join(name), lines.join("\n") + "\n").unwrap();
    };
    write("users.csv", &users);
    write("events.csv", &events);
    let mut with_header = vec!["user_id,variant,assigned_at,segment".to_owned()];
    with_header.extend(assignments);
    write("assignments.csv", &with_header);
    let path = dir.join("experiment.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn run(dir: &Path, config: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["experiment", "--config", config.to_str().unwrap()];
    args.extend(extra);
    train(&dir.join("registry"), &args)
}

// ---- independent statistics -------------------------------------------

/// Simpson's rule on `[a, b]` with `n` (even) intervals.
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut sum = f(a) + f(b);
    for k in 1..n {
        sum += f(a + k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
    }
    sum * h / 3.0
}

/// P(|Z| > |z|) for a standard normal Z.
fn normal_two_sided(z: f64) -> f64 {
    let density = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    2.0 * simpson(density, z.abs(), z.abs() + 40.0, 200_000)
}

/// P(|T| > |t|) for Student's t with `df` degrees of freedom.
fn t_two_sided(t: f64, df: f64) -> f64 {
    let density = |x: f64| (1.0 + x * x / df).powf(-(df + 1.0) / 2.0);
    let half = simpson(density, 0.0, 200.0, 400_000);
    simpson(density, t.abs(), 200.0, 400_000) / half
}

/// The two-sided `1 - alpha` critical value of Student's t, by bisection.
fn t_critical(alpha: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 50.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if t_two_sided(mid, df) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Normal quantiles from tables: z(0.975) and z(0.8).
const Z_975: f64 = 1.959_963_984_540_054;
const Z_80: f64 = 0.841_621_233_572_914_3;

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

fn close(got: &Value, want: f64, what: &str) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    let tolerance = 1e-10 + 1e-9 * want.abs();
    assert!(
        (g - want).abs() <= tolerance,
        "{what}: got {g}, independent computation {want}"
    );
}

/// Outcome values of the analysed complete users of one arm and group.
fn values(outcome: &str, group: Option<&str>, arm_treated: bool) -> Vec<f64> {
    (0..COMPLETE)
        .filter(|&i| treated(i) == arm_treated && group.is_none_or(|g| segment(i) == g))
        .map(|i| match outcome {
            "goal_7d" => f64::from(u8::from(converted(i))),
            "hours_to_goal" => {
                if converted(i) {
                    goal_hours(i)
                } else {
                    168.0
                }
            }
            "pings_7d" => pings(i) as f64,
            _ => sessions(i) as f64,
        })
        .collect()
}

fn check_comparison(c: &Value, outcome: &str, group: Option<&str>) {
    let what = |field: &str| format!("{outcome}/{}/{field}", group.unwrap_or("all"));
    let (control, treatment) = (values(outcome, group, false), values(outcome, group, true));
    let (nc, nt) = (control.len() as f64, treatment.len() as f64);
    let ((mc, vc), (mt, vt)) = (mean_var(&control), mean_var(&treatment));
    assert_eq!(
        c["control"]["users"].as_u64(),
        Some(nc as u64),
        "{}",
        what("n")
    );
    assert_eq!(
        c["treatment"]["users"].as_u64(),
        Some(nt as u64),
        "{}",
        what("n")
    );
    close(&c["control"]["mean"], mc, &what("control mean"));
    close(&c["treatment"]["mean"], mt, &what("treatment mean"));
    close(&c["control"]["std_dev"], vc.sqrt(), &what("control sd"));
    close(&c["difference"], mt - mc, &what("difference"));
    close(&c["relative_lift"], (mt - mc) / mc, &what("lift"));
    // Lift interval: Katz's log rate ratio, or the delta method on mt / mc.
    let (lift_low, lift_high) = if outcome == "goal_7d" {
        let (xc, xt) = (mc * nc, mt * nt);
        let se = (1.0 / xt - 1.0 / nt + 1.0 / xc - 1.0 / nc).sqrt();
        let r = (mt / mc).ln();
        ((r - Z_975 * se).exp() - 1.0, (r + Z_975 * se).exp() - 1.0)
    } else {
        let ratio = mt / mc;
        let se = ratio * (vt / (nt * mt * mt) + vc / (nc * mc * mc)).sqrt();
        (ratio - 1.0 - Z_975 * se, ratio - 1.0 + Z_975 * se)
    };
    close(&c["lift_ci"][0], lift_low, &what("lift ci low"));
    close(&c["lift_ci"][1], lift_high, &what("lift ci high"));
    let target = 0.1 * mc;
    if outcome == "goal_7d" {
        let (xc, xt) = (mc * nc, mt * nt);
        assert_eq!(c["control"]["conversions"].as_f64(), Some(xc.round()));
        let pooled = (xc + xt) / (nc + nt);
        let z = (mt - mc) / (pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt)).sqrt();
        close(&c["statistic"], z, &what("z"));
        close(&c["p_value"], normal_two_sided(z), &what("p"));
        // Pearson's chi-square from the expected cell counts.
        let mut chi2 = 0.0;
        for (row_n, row_x) in [(nc, xc), (nt, xt)] {
            for (cell, share) in [(row_x, pooled), (row_n - row_x, 1.0 - pooled)] {
                let e = row_n * share;
                chi2 += (cell - e).powi(2) / e;
            }
        }
        close(&c["chi_square"], chi2, &what("chi-square"));
        close(
            &c["chi_square_p_value"],
            normal_two_sided(chi2.sqrt()),
            &what("chi-square p"),
        );
        let se = (mc * (1.0 - mc) / nc + mt * (1.0 - mt) / nt).sqrt();
        close(&c["ci_low"], mt - mc - Z_975 * se, &what("ci low"));
        close(&c["ci_high"], mt - mc + Z_975 * se, &what("ci high"));
        let mde = (Z_975 + Z_80) * (mc * (1.0 - mc) * (1.0 / nc + 1.0 / nt)).sqrt();
        close(&c["mde"], mde, &what("mde"));
        let needed = ((Z_975 + Z_80).powi(2) * 2.0 * mc * (1.0 - mc) / (target * target)).ceil();
        close(&c["users_needed"], needed, &what("users needed"));
    } else {
        let (a, b) = (vc / nc, vt / nt);
        let t = (mt - mc) / (a + b).sqrt();
        let df = (a + b).powi(2) / (a * a / (nc - 1.0) + b * b / (nt - 1.0));
        close(&c["statistic"], t, &what("t"));
        close(&c["degrees_of_freedom"], df, &what("df"));
        close(&c["p_value"], t_two_sided(t, df), &what("p"));
        let q = t_critical(0.05, df);
        close(&c["ci_low"], mt - mc - q * (a + b).sqrt(), &what("ci low"));
        close(
            &c["ci_high"],
            mt - mc + q * (a + b).sqrt(),
            &what("ci high"),
        );
        close(&c["mde"], (Z_975 + Z_80) * (a + b).sqrt(), &what("mde"));
        let needed = ((Z_975 + Z_80).powi(2) * (vc + vt) / (target * target)).ceil();
        close(&c["users_needed"], needed, &what("users needed"));
    }
}

#[test]
fn every_statistic_matches_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_extract(dir.path(), |_, _| {});
    let report = run(dir.path(), &config, &["--json"]).ok().json();

    let counts = &report["counts"];
    assert_eq!(counts["rows"], COMPLETE + 5 + 2 + 1 + 3);
    assert_eq!(counts["duplicate_rows"], 3);
    assert_eq!(counts["unknown_users"], 1);
    assert_eq!(counts["no_consent"], 2);
    assert_eq!(counts["erased"], 0);
    // The 5 late users are assigned and count for the split.
    assert_eq!(counts["control"], CONTROL + 2);
    assert_eq!(counts["treatment"], COMPLETE - CONTROL + 3);
    let srm = &report["sample_ratio"][0];
    let (c, t) = ((CONTROL + 2) as f64, (COMPLETE - CONTROL + 3) as f64);
    let e = (c + t) / 2.0;
    let chi2 = ((c - e).powi(2) + (t - e).powi(2)) / e;
    close(&srm["chi_square"], chi2, "split chi-square");
    close(&srm["p_value"], normal_two_sided(chi2.sqrt()), "split p");
    assert_eq!(srm["mismatch"], false);

    // Some goals fall exactly 30 minutes after a ping: the same session.
    assert!((0..COMPLETE).any(|i| converted(i) && i.is_multiple_of(3) && i % 7 < pings(i)));
    for outcome in ["goal_7d", "hours_to_goal", "pings_7d", "sessions_7d"] {
        let result = entry(&report["outcomes"], "outcome", outcome);
        assert_eq!(result["assigned_too_late"], 5, "{outcome}");
        let comparisons = result["comparisons"].as_array().unwrap();
        let names: Vec<&str> = comparisons
            .iter()
            .map(|c| c["segment"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["all", "a", "b"]);
        for (c, group) in comparisons.iter().zip([None, Some("a"), Some("b")]) {
            check_comparison(c, outcome, group);
        }
        // Holm over the two segments, by hand.
        let (pa, pb) = (
            comparisons[1]["p_value"].as_f64().unwrap(),
            comparisons[2]["p_value"].as_f64().unwrap(),
        );
        let (low, high) = (pa.min(pb), pa.max(pb));
        let first = (2.0 * low).min(1.0);
        let (holm_low, holm_high) = (first, high.max(first));
        let (ha, hb) = if pa <= pb {
            (holm_low, holm_high)
        } else {
            (holm_high, holm_low)
        };
        close(&comparisons[1]["p_holm"], ha, "holm a");
        close(&comparisons[2]["p_holm"], hb, "holm b");
        for c in &comparisons[1..] {
            assert_eq!(c["significant"], c["p_holm"].as_f64().unwrap() < 0.05);
        }
        assert_eq!(
            comparisons[0]["significant"],
            comparisons[0]["p_value"].as_f64().unwrap() < 0.05
        );
    }
}

fn sha_prefix(id: &str) -> String {
    Sha256::digest(id.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs the analysis on an edited extract and expects exit 2, no output
/// and no report file; returns stderr.
fn rejected(edit: impl FnOnce(&mut Vec<String>, &mut String)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = write_extract(dir.path(), edit);
    let html = dir.path().join("report.html");
    let out = run(dir.path(), &config, &["--html", html.to_str().unwrap()]);
    assert_eq!(
        out.code, 2,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(!html.exists());
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out.stderr
}

#[test]
fn users_in_both_variants_are_an_error_naming_them_hashed() {
    let err = rejected(|rows, _| {
        rows.push(format!("{},treatment,{},a", id(3), at(7.0)));
        rows.push(format!("{},control,{},b", id(104), at(209.0)));
        rows.push(format!("{},control,{},b", id(104), at(210.0)));
    });
    assert!(
        err.contains("2 user(s) are assigned to both \"control\" and \"treatment\""),
        "{err}"
    );
    let shown = format!("{}, {}", sha_prefix(&id(3)), sha_prefix(&id(104)));
    assert!(err.contains(&shown), "{err}");
    assert!(
        !err.contains(&id(3)) && !err.contains(&id(104)),
        "raw ids: {err}"
    );
}

#[test]
fn bad_assignment_rows_are_named_by_column_and_row() {
    let err = rejected(|rows, _| rows[9] = format!("{},treatmnet,{},b", id(9), at(18.0)));
    assert!(
        err.contains("column 'variant', row 10: \"treatmnet\" is neither the control (\"control\") nor the treatment (\"treatment\")"),
        "{err}"
    );
    let err = rejected(|rows, _| rows[4] = format!("{},control,yesterday,b", id(4)));
    assert!(
        err.contains("column 'assigned_at', row 5: cannot parse \"yesterday\" as a timestamp"),
        "{err}"
    );
    let err = rejected(|rows, _| rows[0] = format!(",control,{},a", at(0.0)));
    assert!(
        err.contains("column 'user_id', row 1: the user id is empty"),
        "{err}"
    );
    let err = rejected(|rows, _| rows.clear());
    assert!(
        err.contains("assignments.csv") && err.contains("no rows"),
        "{err}"
    );
    let err = rejected(|_, config| {
        *config = config.replace("segment = \"segment\"", "segment = \"tier\"");
    });
    assert!(
        err.contains("no column 'tier' for [experiment] segment"),
        "{err}"
    );
}

#[test]
fn bad_configs_are_named() {
    for (from, to, message) in [
        (
            "event = \"ping\"\n",
            "",
            "[[outcomes]] pings_7d: kind = \"count\" needs event = \"...\"",
        ),
        (
            "within_days = 7\n\n[[outcomes]]\nname = \"hours_to_goal\"",
            "within_days = 0\n\n[[outcomes]]\nname = \"hours_to_goal\"",
            "[[outcomes]] goal_7d: within_days = 0: must be a positive number",
        ),
        (
            "alpha = 0.05",
            "alpha = 5",
            "[experiment] alpha = 5: must be strictly between 0 and 0.5",
        ),
        (
            "kind = \"count\"",
            "kind = \"median\"",
            "unknown variant `median`",
        ),
        (
            "power = 0.8",
            "power = 0.8\ncontrol = \"treatment\"",
            "control and treatment are both \"treatment\"",
        ),
        ("power = 0.8", "powr = 0.8", "unknown field `powr`"),
        (
            "end = \"2024-02-01\"",
            "end = \"Feb 1\"",
            "[extract] end = \"Feb 1\" is not a date",
        ),
    ] {
        let err = rejected(|_, config| {
            assert!(config.contains(from), "{from}");
            *config = config.replacen(from, to, 1);
        });
        assert!(err.contains(message), "{message}: {err}");
        assert!(err.contains("experiment.toml"), "{err}");
    }
}
