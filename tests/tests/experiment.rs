//! `presage-train experiment` on generated experiments with known effects:
//! it finds the effects that exist (its intervals cover the exact effects
//! in `experiment_truth.json`), does not find absent ones (over 60 A/A
//! experiments the p-values are uniform and the false-positive rate is near
//! alpha), and flags an injected sample-ratio mismatch with exit code 3.
//! The HTML report renders in headless Chromium.

use std::path::Path;

use presage_tests::browser::render_cleanly;
use presage_tests::{datagen, entry, train, Run};
use serde_json::Value;

const OUTCOMES: [&str; 5] = [
    "onboarded_7d",
    "adopted_28d",
    "retained_d30",
    "hours_to_first_project",
    "sessions_week1",
];

fn config() -> String {
    presage_datasets::root()
        .join("configs/experiment.toml")
        .display()
        .to_string()
}

/// Generates an experiment into `dir` with `extra` datagen flags.
fn generate(dir: &Path, users: u64, seed: u64, extra: &[&str]) {
    let (users, seed) = (users.to_string(), seed.to_string());
    let out = dir.display().to_string();
    let mut args = vec![
        "--users",
        &users,
        "--seed",
        &seed,
        "--out",
        &out,
        "--experiment",
    ];
    args.extend(extra);
    datagen(&args).ok();
}

/// Analyses the experiment in `dir` with the shipped config.
fn analyse(dir: &Path, extra: &[&str]) -> Run {
    let p = |name: &str| dir.join(name).display().to_string();
    let (config, users, events, assignments) = (
        config(),
        p("users.parquet"),
        p("events"),
        p("assignments.parquet"),
    );
    let mut args = vec![
        "experiment",
        "--config",
        &config,
        "--users",
        &users,
        "--events",
        &events,
        "--assignments",
        &assignments,
    ];
    args.extend(extra);
    train(&dir.join("unused-registry"), &args)
}

fn truth(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("experiment_truth.json")).unwrap()).unwrap()
}

/// The report's comparison of `outcome` in `segment`.
fn comparison<'a>(report: &'a Value, outcome: &str, segment: &str) -> &'a Value {
    let result = entry(&report["outcomes"], "outcome", outcome);
    entry(&result["comparisons"], "segment", segment)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn finds_the_effects_that_exist_and_not_the_absent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("exp");
    generate(&data, 20_000, 7, &[]);
    let html = dir.path().join("report.html");
    let run = analyse(&data, &["--json", "--html", html.to_str().unwrap()]).ok();
    let report = run.json();
    let truth = truth(&data);
    assert_eq!(report["sample_ratio_mismatch"], false);
    assert_eq!(report["counts"]["control"], truth["assigned"]["control"]);
    assert_eq!(
        report["counts"]["treatment"],
        truth["assigned"]["treatment"]
    );

    let (mut covered, mut total) = (0, 0);
    for outcome in truth["outcomes"].as_array().unwrap() {
        let name = outcome["outcome"].as_str().unwrap();
        for effect in outcome["effects"].as_array().unwrap() {
            let segment = effect["segment"].as_str().unwrap();
            let c = comparison(&report, name, segment);
            // Same users as the truth: every complete outcome window.
            let users =
                c["control"]["users"].as_u64().unwrap() + c["treatment"]["users"].as_u64().unwrap();
            assert_eq!(users, effect["users"].as_u64().unwrap(), "{name}/{segment}");
            let e = f(&effect["effect"]);
            total += 1;
            if f(&c["ci_low"]) <= e && e <= f(&c["ci_high"]) {
                covered += 1;
            }
            if !effect["exists"].as_bool().unwrap() {
                // Healthy users are identical in both arms; sessions are not
                // driven by the funnel.
                if segment == "healthy" {
                    assert_eq!(e, 0.0, "{name}");
                }
                assert_eq!(c["significant"], false, "{name}/{segment}: {c}");
            }
        }
    }
    // 95% intervals: at least 18 of the 20 cover the exact effect.
    assert!(
        covered >= 18,
        "{covered} of {total} intervals cover the truth"
    );

    // The effects large enough for 20,000 users are found.
    for (outcome, segment) in [
        ("onboarded_7d", "all"),
        ("onboarded_7d", "at_risk"),
        ("onboarded_7d", "watch"),
        ("hours_to_first_project", "at_risk"),
    ] {
        let c = comparison(&report, outcome, segment);
        assert_eq!(c["significant"], true, "{outcome}/{segment}: {c}");
        assert!(
            c["verdict"].as_str().unwrap().starts_with("significant"),
            "{c}"
        );
    }
    let onboarded = comparison(&report, "onboarded_7d", "at_risk");
    assert!(f(&onboarded["difference"]) > 0.05, "{onboarded}");
    // z and chi-square agree; Holm never lowers a p-value.
    for outcome in ["onboarded_7d", "adopted_28d", "retained_d30"] {
        for segment in ["all", "at_risk", "watch", "healthy"] {
            let c = comparison(&report, outcome, segment);
            assert!((f(&c["p_value"]) - f(&c["chi_square_p_value"])).abs() < 1e-9);
            assert!((f(&c["statistic"]).powi(2) - f(&c["chi_square"])).abs() < 1e-6);
            if segment != "all" {
                assert!(f(&c["p_holm"]) >= f(&c["p_value"]));
            }
        }
    }
    // Users assigned in the last 37 days cannot have a day-30 retention.
    let retained = entry(&report["outcomes"], "outcome", "retained_d30");
    assert!(
        retained["assigned_too_late"].as_u64().unwrap() > 5_000,
        "{retained}"
    );

    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), OUTCOMES.len());
    assert!(!page.contains("<script") && !page.contains("id=\"srm\""));
    for outcome in OUTCOMES {
        assert!(page.contains(&format!("<h2>{outcome}</h2>")), "{outcome}");
    }

    // The terminal table says the same.
    let text = analyse(&data, &[]).ok().stdout;
    assert!(
        text.contains("at_risk: significant: treatment raises it by"),
        "{text}"
    );
    assert!(!text.contains("MISMATCH"), "{text}");
}

/// The largest gap between the empirical CDF of `p` and the uniform CDF.
fn ks_uniform(mut p: Vec<f64>) -> f64 {
    p.sort_by(f64::total_cmp);
    let n = p.len() as f64;
    p.iter()
        .enumerate()
        .map(|(i, &x)| (x - i as f64 / n).abs().max(((i + 1) as f64 / n - x).abs()))
        .fold(0.0, f64::max)
}

#[test]
fn a_a_experiments_reject_at_about_alpha() {
    // 60 experiments without any effect, 2,000 users each. Under the null
    // every p-value is uniform: a Kolmogorov-Smirnov distance above 0.252
    // (the 0.1% critical value for 60 draws) fails, and so does a pooled
    // rejection rate outside 1%-11% of 300 tests.
    let dir = tempfile::tempdir().unwrap();
    let seeds = 1..=60u64;
    let mut p_values: Vec<Vec<f64>> = vec![Vec::new(); OUTCOMES.len()];
    let mut ratio_p = Vec::new();
    for seed in seeds.clone() {
        let data = dir.path().join(format!("aa{seed}"));
        generate(&data, 2_000, seed, &["--no-effect"]);
        let truth = truth(&data);
        for outcome in truth["outcomes"].as_array().unwrap() {
            for effect in outcome["effects"].as_array().unwrap() {
                assert_eq!(f(&effect["effect"]), 0.0, "seed {seed}: {effect}");
            }
        }
        let run = analyse(&data, &["--json"]);
        // A true split flags a mismatch in about 0.1% of checks; it still reports.
        assert!(run.code == 0 || run.code == 3, "{}", run.stderr);
        let report = run.json();
        ratio_p.push(f(&report["sample_ratio"][0]["p_value"]));
        for (i, outcome) in OUTCOMES.iter().enumerate() {
            p_values[i].push(f(&comparison(&report, outcome, "all")["p_value"]));
        }
        std::fs::remove_dir_all(&data).unwrap();
    }
    let mut rejections = 0;
    for (outcome, p) in OUTCOMES.iter().zip(&p_values) {
        let d = ks_uniform(p.clone());
        let below = p.iter().filter(|&&x| x < 0.05).count();
        eprintln!(
            "{outcome}: KS distance {d:.3}, {below} of {} below 0.05",
            p.len()
        );
        assert!(
            d < 0.252,
            "{outcome}: KS distance {d:.3} from uniform: {p:?}"
        );
        rejections += below;
    }
    let rate = rejections as f64 / (OUTCOMES.len() * seeds.count()) as f64;
    assert!((0.01..=0.11).contains(&rate), "false-positive rate {rate}");
    let d = ks_uniform(ratio_p.clone());
    assert!(d < 0.252, "sample-ratio p-values: KS {d:.3}: {ratio_p:?}");
}

#[test]
fn flags_an_injected_sample_ratio_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srm");
    // 10% of treatment assignments never reach the log.
    generate(&data, 20_000, 11, &["--lose-treatment-assignments", "0.1"]);
    let truth = truth(&data);
    let html = dir.path().join("srm.html");
    let run = analyse(&data, &["--json", "--html", html.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("sample ratio mismatch"),
        "{}",
        run.stderr
    );
    let report = run.json();
    assert_eq!(report["sample_ratio_mismatch"], true);
    let all = &report["sample_ratio"][0];
    assert_eq!(all["control"], truth["logged"]["control"]);
    assert_eq!(all["treatment"], truth["logged"]["treatment"]);
    assert_eq!(all["mismatch"], true);
    assert!(f(&all["p_value"]) < 0.001, "{all}");
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains("id=\"srm\""));

    let text = analyse(&data, &[]);
    assert_eq!(text.code, 3);
    let first = text.stdout.lines().next().unwrap();
    assert_eq!(
        first,
        "!!! SAMPLE RATIO MISMATCH: THE RESULTS BELOW ARE NOT VALID"
    );
    assert!(text
        .stdout
        .trim_end()
        .ends_with("before reading any effect."));
}

#[test]
fn chromium_renders_the_report_with_its_banner_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("exp");
    generate(&data, 20_000, 11, &["--lose-treatment-assignments", "0.1"]);
    let html = dir.path().join("report.html");
    assert_eq!(analyse(&data, &["--html", html.to_str().unwrap()]).code, 3);
    let dom = render_cleanly(&html);
    assert_eq!(
        dom.matches("<svg").count(),
        OUTCOMES.len(),
        "the DOM lacks plots"
    );
    assert!(dom.contains("SAMPLE RATIO MISMATCH"));
}
