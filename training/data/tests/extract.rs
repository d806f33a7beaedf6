//! Building features and labels from users + events extracts, checked by
//! hand on a tiny extract (`tests/data/extract_tiny`, values worked out in
//! the comments below), plus point-in-time, consent/erasure and bad-input
//! cases.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use presage_data::extract::spec::ExtractSpec;
use presage_data::extract::{self, kpis, segments, BuiltTable};

fn tiny_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/extract_tiny")
}

/// Copies the tiny extract into a temp dir so a test can edit it.
fn tiny_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["users.csv", "events.csv", "churn.toml"] {
        std::fs::copy(tiny_dir().join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn build_with(config: &Path, text: &str) -> Result<BuiltTable, extract::ExtractError> {
    let spec = ExtractSpec::from_config(text, config, None, None)?.expect("has [extract]");
    extract::build(&spec, config)
}

/// Builds the tiny extract with its config edited (`from` replaced by `to`).
fn build_edited(config: &Path, from: &str, to: &str) -> BuiltTable {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(from), "{from}");
    build_with(config, &text.replacen(from, to, 1)).unwrap()
}

fn build(config: &Path) -> Result<BuiltTable, extract::ExtractError> {
    build_with(config, &std::fs::read_to_string(config).unwrap())
}

/// The value of `column` for `user` as f64 (None = missing).
fn value(built: &BuiltTable, user: &str, column: &str) -> Option<f64> {
    let ids = built
        .frame
        .column("user_id")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    let row = ids
        .iter()
        .position(|id| id == Some(user))
        .unwrap_or_else(|| panic!("{user} not in the table"));
    let c = built
        .frame
        .column(column)
        .unwrap_or_else(|_| panic!("no column {column}"))
        .cast(&DataType::Float64)
        .unwrap();
    c.f64().unwrap().get(row)
}

fn users(built: &BuiltTable) -> Vec<String> {
    let ids = built
        .frame
        .column("user_id")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    ids.iter().map(|v| v.unwrap().to_owned()).collect()
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() < 1e-9)
}

#[test]
fn tiny_extract_features_match_hand_computed_values() {
    let built = build(&tiny_dir().join("churn.toml")).unwrap();
    // u3 has no consent; u5's label window (cutoff 2024-02-01 + 14 days) ends
    // after the extract (2024-02-01). Order is the users extract's.
    assert_eq!(users(&built), ["u1", "u2", "u4"]);
    let r = &built.report;
    assert_eq!(r.users_read, 5);
    assert_eq!(r.excluded_no_consent, 1);
    assert_eq!(r.excluded_label_incomplete, 1);
    assert_eq!(
        (r.events_read, r.events_unknown_user, r.unknown_users),
        (14, 1, 1)
    );
    // u2's login on 2023-12-31 precedes its signup.
    assert_eq!(r.events_before_signup, 1);
    // Observed: u1's five events and u2's two (see below).
    assert_eq!(r.events_observed, 7);

    // u1: signup 2024-01-01T00:00, cutoff 2024-01-08T00:00. Observed: login 01:00,
    // create_project 01:10, login 03:00, feature_export 01-03 10:00,
    // onboarding_completed 01-03 10:05. The login at exactly the cutoff is not
    // observed (it falls in the label window instead).
    let u = "u1";
    assert_eq!(value(&built, u, "events_total"), Some(5.0));
    assert_eq!(value(&built, u, "count_login"), Some(2.0));
    assert_eq!(value(&built, u, "count_create_project"), Some(1.0));
    assert_eq!(value(&built, u, "count_feature_share"), Some(0.0));
    assert_eq!(value(&built, u, "active_days"), Some(2.0));
    // Gaps 10 min, 110 min, 2 days, 5 min: two gaps over 30 minutes -> 3 sessions.
    assert_eq!(value(&built, u, "sessions"), Some(3.0));
    assert!(close(
        value(&built, u, "hours_to_first_create_project"),
        70.0 / 60.0
    ));
    assert_eq!(value(&built, u, "onboarding_completed"), Some(1.0));
    assert!(close(
        value(&built, u, "hours_to_onboarding"),
        58.0 + 5.0 / 60.0
    ));
    // 2024-01-08T00:00 - 2024-01-03T10:05 = 4 days 13 h 55 min.
    assert!(close(
        value(&built, u, "days_since_last_event"),
        4.0 + (13.0 * 60.0 + 55.0) / 1440.0
    ));
    // Window midpoint 2024-01-04T12:00: all five events in the first half.
    assert_eq!(value(&built, u, "activity_trend"), Some(-1.0));
    assert_eq!(value(&built, u, "distinct_features_used"), Some(1.0));
    assert_eq!(value(&built, u, "sum_amount"), Some(7.0));
    assert_eq!(value(&built, u, "mean_amount"), Some(3.5));
    // Logins on 01-08 and 01-09 fall in [cutoff, cutoff + 14 days).
    assert_eq!(value(&built, u, "churned"), Some(0.0));

    // u2: signup 2024-01-01T12:00, cutoff 2024-01-08T12:00; login 01-01 13:00 and
    // feature_share 01-02 13:00; nothing after.
    let u = "u2";
    assert_eq!(value(&built, u, "events_total"), Some(2.0));
    assert_eq!(value(&built, u, "sessions"), Some(2.0));
    assert_eq!(value(&built, u, "hours_to_first_create_project"), None);
    assert_eq!(value(&built, u, "onboarding_completed"), Some(0.0));
    assert_eq!(value(&built, u, "hours_to_onboarding"), None);
    assert!(close(
        value(&built, u, "days_since_last_event"),
        5.0 + 23.0 / 24.0
    ));
    assert_eq!(value(&built, u, "distinct_features_used"), Some(1.0));
    assert_eq!(value(&built, u, "churned"), Some(1.0));

    // u4: no events at all: zero counts, missing times and means, churned.
    let u = "u4";
    for zero in [
        "events_total",
        "count_login",
        "active_days",
        "sessions",
        "sum_amount",
        "onboarding_completed",
    ] {
        assert_eq!(value(&built, u, zero), Some(0.0), "{zero}");
    }
    for missing in [
        "days_since_last_event",
        "activity_trend",
        "mean_amount",
        "hours_to_onboarding",
    ] {
        assert_eq!(value(&built, u, missing), None, "{missing}");
    }
    assert_eq!(value(&built, u, "churned"), Some(1.0));

    // Attributes come through; the consent column does not.
    let names: Vec<&str> = built.features.iter().map(|f| f.name.as_str()).collect();
    assert!(
        names.contains(&"plan") && names.contains(&"country"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"consent") && !names.contains(&"signup_at"),
        "{names:?}"
    );
    assert_eq!(built.report.positives, Some(2));
}

/// Writes the table's feature columns (label dropped) as Parquet bytes.
fn parquet_bytes(frame: &DataFrame) -> Vec<u8> {
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .finish(&mut frame.clone())
        .unwrap();
    bytes
}

fn feature_bytes(built: &BuiltTable) -> Vec<u8> {
    parquet_bytes(&built.frame.drop("churned").unwrap())
}

#[test]
fn events_at_or_after_the_cutoff_never_change_features() {
    let dir = tiny_copy();
    let config = dir.path().join("churn.toml");
    let before = build(&config).unwrap();
    let events = dir.path().join("events.csv");
    let original = std::fs::read_to_string(&events).unwrap();

    // Alter (u1's login at the cutoff becomes a purchase), delete (u1's 01-09
    // login) and append events (a burst for u2 and u4 after their cutoffs).
    let altered = original
        .replace("u1,login,2024-01-08T00:00:00,", "u1,purchase,2024-01-08T00:00:00,99")
        .replace("u1,login,2024-01-09T00:00:00,\n", "")
        + "u2,create_project,2024-01-08T12:00:00,3\nu2,onboarding_completed,2024-01-20T00:00:00,\nu4,login,2024-01-10T08:00:00,\nu4,feature_export,2024-01-11T00:00:00,8\n";
    std::fs::write(&events, &altered).unwrap();
    let after = build(&config).unwrap();
    assert_eq!(feature_bytes(&before), feature_bytes(&after));
    // The labels did see the change: u2 and u4 are active after their cutoffs now.
    assert_eq!(value(&after, "u2", "churned"), Some(0.0));
    assert_eq!(value(&after, "u4", "churned"), Some(0.0));
}

#[test]
fn erased_users_disappear_from_features_labels_and_counts() {
    let dir = tiny_copy();
    std::fs::write(
        dir.path().join("erase.txt"),
        "# erasure requests\nu2\n\nu404\n",
    )
    .unwrap();
    let config = dir.path().join("churn.toml");
    let built = build_edited(
        &config,
        "consent = \"consent\"",
        "consent = \"consent\"\nerasure = \"erase.txt\"",
    );
    assert_eq!(users(&built), ["u1", "u4"]);
    assert_eq!(built.report.excluded_erased, 1);
    // u2's events are known (not counted as an unknown user), and dropped.
    assert_eq!(built.report.unknown_users, 1);
    let json = serde_json::to_string(&built.report).unwrap();
    assert!(!json.contains("u2"), "{json}");
    // u3 (no consent) is excluded before its consent-free events count anywhere.
    assert_eq!(built.report.excluded_no_consent, 1);
}

#[test]
fn label_windows_past_the_extract_end_are_excluded_and_counted() {
    let dir = tiny_copy();
    let config = dir.path().join("churn.toml");
    let built = build_edited(&config, "end = \"2024-02-01\"", "end = \"2024-01-20\"");
    // Cutoffs + 14 days: u1 01-22, u2 01-22T12, u4 01-24: all past 01-20.
    // u5's observation window (to 02-01) is itself incomplete.
    assert_eq!(built.report.excluded_label_incomplete, 3);
    assert_eq!(built.report.excluded_window_incomplete, 1);
    assert_eq!(built.report.users_in_table, 0);
}

#[test]
fn adoption_label_excludes_prior_adopters() {
    let config = tiny_dir().join("churn.toml");
    let built = build_edited(
        &config,
        "kind = \"churn\"\nhorizon_days = 14",
        "kind = \"adoption\"\nevent = \"feature_export\"\nhorizon_days = 14",
    );
    // u1 used feature_export before its cutoff: excluded. u2, u4 never did.
    assert_eq!(built.report.excluded_already_adopted, 1);
    assert_eq!(users(&built), ["u2", "u4"]);
    assert_eq!(value(&built, "u2", "adopted"), Some(0.0));
}

#[test]
fn bad_inputs_name_the_file_column_and_row() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (file, from, to, expected message part)
        (
            "users.csv",
            "u4,2024-01-03T08:00:00",
            "u4,03/01/2024",
            "column 'signup_at', row 4: cannot parse \"03/01/2024\"",
        ),
        (
            "events.csv",
            "u2,login,2024-01-01T13:00:00",
            "u2,login,tomorrow",
            "column 'occurred_at', row 9: cannot parse \"tomorrow\"",
        ),
        (
            "users.csv",
            "u4,2024-01-03",
            "u1,2024-01-03",
            "rows 1 and 4 share one",
        ),
        (
            "users.csv",
            "user_id,signup_at",
            "id,signup_at",
            "no column 'user_id' (columns: id, signup_at",
        ),
        (
            "events.csv",
            "user_id,event,occurred_at,amount",
            "user_id,name,occurred_at,amount",
            "no column 'event'",
        ),
    ];
    for (file, from, to, expected) in cases {
        let dir = tiny_copy();
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let err = build(&dir.path().join("churn.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{file} ({to}): {err}");
        assert!(err.contains(file), "{err}");
    }

    let dir = tiny_copy();
    std::fs::write(
        dir.path().join("events.csv"),
        "user_id,event,occurred_at,amount\n",
    )
    .unwrap();
    let err = build(&dir.path().join("churn.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("events.csv") && err.contains("no rows"),
        "{err}"
    );
}

#[test]
fn spec_typos_are_config_errors() {
    let config = tiny_dir().join("churn.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    for (from, to, expected) in [
        (
            "active_days = true",
            "active_day = true",
            "unknown field `active_day`",
        ),
        (
            "days_after_signup = 7",
            "days_after_signup = 7\ncutoff = \"2024-01-10\"",
            "choose one",
        ),
        ("kind = \"churn\"", "kind = \"churm\"", "churm"),
        (
            "horizon_days = 14",
            "horizon_days = -1",
            "horizon_days = -1",
        ),
        (
            "event_counts = \"all\"",
            "event_counts = [\"logn\"]",
            "matches no event",
        ),
    ] {
        let err = build_with(&config, &text.replacen(from, to, 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{to}: {err}");
        assert!(err.contains("churn.toml"), "{err}");
    }
}

const SEGMENTS: &str = r#"
[[segments]]
name = "engagement"
rules = [
  { segment = "high", when = "onboarding_completed == 1 and hours_to_onboarding <= 72" },
  { segment = "moderate", when = "onboarding_completed == 1" },
  { segment = "low" },
]

[[segments]]
name = "plan_mix"
rules = [{ segment = "paying", when = "plan == \"pro\"" }]
"#;

fn segment_spec(extra: &str) -> (ExtractSpec, BuiltTable) {
    let config = tiny_dir().join("churn.toml");
    let text = std::fs::read_to_string(&config).unwrap() + extra;
    let mut spec = ExtractSpec::from_config(&text, &config, None, None)
        .unwrap()
        .unwrap();
    spec.feature_spec.label = None;
    let built = extract::build(&spec, &config).unwrap();
    (spec, built)
}

#[test]
fn rule_segments_first_match_wins_and_sizes_are_checked() {
    let (spec, built) = segment_spec(SEGMENTS);
    // Without the label, u5 (complete 7-day window) is in the table too.
    assert_eq!(users(&built), ["u1", "u2", "u4", "u5"]);
    let assigned =
        segments::assign(&spec.segments, &built, "user_id", Path::new("c.toml")).unwrap();
    let column = |name: &str| -> Vec<Option<String>> {
        let c = assigned.frame.column(name).unwrap().str().unwrap().clone();
        c.iter().map(|v| v.map(str::to_owned)).collect()
    };
    // u1 completed onboarding 58 hours after signup; nobody else did.
    assert_eq!(
        column("engagement"),
        [Some("high"), Some("low"), Some("low"), Some("low")].map(|s| s.map(String::from))
    );
    // u1 and u4 are on pro; no catch-all rule, so the others get no segment.
    assert_eq!(
        column("plan_mix"),
        [
            Some("paying".to_owned()),
            None,
            Some("paying".to_owned()),
            None
        ]
    );
    let size = |seg: &str, s: &str| {
        assigned
            .sizes
            .iter()
            .find(|x| x.segmentation == seg && x.segment == s)
            .map(|x| x.users)
    };
    assert_eq!(size("engagement", "high"), Some(1));
    assert_eq!(size("engagement", "moderate"), Some(0));
    assert_eq!(size("engagement", "low"), Some(3));
    assert_eq!(size("plan_mix", segments::UNASSIGNED), Some(2));
    // 'moderate' is empty (under 1%); nothing holds over 80% of 4 users.
    assert!(
        assigned
            .warnings
            .iter()
            .any(|w| w.contains("'moderate' of 'engagement' holds 0.00%")),
        "{:?}",
        assigned.warnings
    );
    assert_eq!(assigned.warnings.len(), 1, "{:?}", assigned.warnings);
}

#[test]
fn segment_rules_are_checked_against_the_built_columns() {
    for (from, to, expected) in [
        (
            "hours_to_onboarding <= 72",
            "hours_to_onbording <= 72",
            "unknown feature 'hours_to_onbording'",
        ),
        (
            "plan == \\\"pro\\\"",
            "plan == \\\"gold\\\"",
            "'gold' is not a category of 'plan'",
        ),
        (
            "{ segment = \"low\" },",
            "{ segment = \"low\" },\n  { segment = \"never\", when = \"sessions > 1\" },",
            "rule 3 has no `when` but is not the last",
        ),
        (
            "{ segment = \"moderate\", when = \"onboarding_completed == 1\" }",
            "{ segment = \"moderate\" }",
            "has no `when` but is not the last",
        ),
        (
            "name = \"plan_mix\"",
            "name = \"engagement\"",
            "named twice",
        ),
    ] {
        let extra = SEGMENTS.replacen(from, to, 1);
        assert_ne!(extra, SEGMENTS, "{from}");
        let (spec, built) = segment_spec(&extra);
        let result = segments::assign(&spec.segments, &built, "user_id", Path::new("c.toml"));
        let err = result.unwrap_err().to_string();
        assert!(err.contains(expected), "{to}: {err}");
        assert!(err.starts_with("c.toml: "), "{err}");
    }
}

#[test]
fn kpis_match_hand_computed_values() {
    let config = tiny_dir().join("churn.toml");
    let text = std::fs::read_to_string(&config).unwrap()
        + r#"
[kpis]
key_action = "create_project"
funnel = ["login", "create_project", "onboarding_completed"]
retention_weeks = 2
"#;
    let spec = ExtractSpec::from_config(&text, &config, None, None)
        .unwrap()
        .unwrap();
    let report = kpis::report(&spec, &config, Some("plan")).unwrap();
    // Without a label every consented user with a complete 7-day window
    // counts: u1, u2, u4, u5.
    let all = &report.groups[0];
    assert_eq!((all.group.as_str(), all.users), ("all", 4));
    // Only u1 created a project, 70 minutes after signup.
    assert_eq!(all.key_action_rate, Some(0.25));
    assert!((all.key_action_median_hours.unwrap() - 70.0 / 60.0).abs() < 1e-9);
    assert_eq!(all.key_action_p90_hours, all.key_action_median_hours);
    assert_eq!(all.onboarding_completion_rate, Some(0.25));
    // u1 used feature_export and u2 feature_share in their windows.
    assert_eq!(all.feature_adoption_rate, Some(0.5));
    // login: u1, u2, u5 (3 of 4); then create_project: u1 (1 of 3); then
    // onboarding_completed: u1 (1 of 1).
    let funnel: Vec<(&str, u64)> = all
        .funnel
        .iter()
        .map(|s| (s.step.as_str(), s.users))
        .collect();
    assert_eq!(
        funnel,
        [
            ("login", 3),
            ("create_project", 1),
            ("onboarding_completed", 1)
        ]
    );
    assert_eq!(all.funnel[0].drop_off, 0.25);
    assert!((all.funnel[1].conversion - 1.0 / 3.0).abs() < 1e-12);
    // By plan: pro = u1, u4; free = u2, u5.
    let pro = report.groups.iter().find(|g| g.group == "pro").unwrap();
    assert_eq!((pro.users, pro.key_action_rate), (2, Some(0.5)));
    let free = report.groups.iter().find(|g| g.group == "free").unwrap();
    assert_eq!((free.users, free.key_action_rate), (2, Some(0.0)));
    assert_eq!(free.key_action_median_hours, None);
    // Cohorts by signup week (Mondays): u1, u2, u4 in the week of 2024-01-01
    // (u1 active in its week 1, nobody in week 2); u5 in the week of
    // 2024-01-22, whose weeks end after the extract (2024-02-01).
    assert_eq!(report.cohorts.len(), 2);
    let first = &report.cohorts[0];
    assert_eq!((first.week_of.as_str(), first.users), ("2024-01-01", 3));
    assert_eq!(first.retention, [Some(1.0 / 3.0), Some(0.0)]);
    let second = &report.cohorts[1];
    assert_eq!((second.week_of.as_str(), second.users), ("2024-01-22", 1));
    assert_eq!(second.retention, [None, None]);

    let err = kpis::report(&spec, &config, Some("plann"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--by plann: not a column or a [[segments]] name"),
        "{err}"
    );
}

#[test]
fn several_passes_over_the_events_give_the_same_table() {
    let config = tiny_dir().join("churn.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let one = build_with(&config, &text).unwrap();
    // 14 events, at most 3 per pass: 5 passes, each for a fifth of the users.
    let many = build_with(
        &config,
        &text.replace(
            "end = \"2024-02-01\"",
            "end = \"2024-02-01\"\nevents_per_pass = 3",
        ),
    )
    .unwrap();
    assert_eq!(parquet_bytes(&one.frame), parquet_bytes(&many.frame));
    assert_eq!(one.report, many.report);
}

#[test]
fn absolute_cutoff_with_a_lookback_window() {
    let config = tiny_dir().join("churn.toml");
    // Everyone who signed up before 2024-01-09 is observed over the 3 days
    // before it: [2024-01-06, 2024-01-09) (or from signup, if later).
    let built = build_edited(
        &config,
        "days_after_signup = 7",
        "cutoff = \"2024-01-09\"\nlookback_days = 3",
    );
    // u5 signed up after the cutoff; u3 has no consent.
    assert_eq!(built.report.excluded_signed_up_after_cutoff, 1);
    assert_eq!(users(&built), ["u1", "u2", "u4"]);
    // u1's only event in [01-06, 01-09) is the login at 01-08T00:00.
    assert_eq!(value(&built, "u1", "events_total"), Some(1.0));
    assert_eq!(value(&built, "u1", "count_login"), Some(1.0));
    // 2024-01-09 - 2024-01-08 = 1 day.
    assert_eq!(value(&built, "u1", "days_since_last_event"), Some(1.0));
    // The login on 01-09 is at the cutoff: label window, not features; u1 is active.
    assert_eq!(value(&built, "u1", "churned"), Some(0.0));
    assert_eq!(value(&built, "u2", "events_total"), Some(0.0));
    assert!(built.features[0]
        .description
        .contains("in the 3 days before 2024-01-09"));
}
