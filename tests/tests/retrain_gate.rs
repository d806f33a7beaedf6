//! `presage-train retrain`: the champion/challenger gate on crafted cases
//! (first version, worse, equal within tolerance), the decision log,
//! retention, exit codes, and a run killed at many points that leaves the
//! registry loadable and the champion as it was.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use presage_tests::{binary, churn, churn_args, train, Run};

/// A much weaker model than the default: 2 tiny rounds, uncalibrated.
const WEAK: &[&str] = &[
    "--num-iterations",
    "2",
    "--learning-rate",
    "0.01",
    "--calibration",
    "none",
];

fn retrain(registry: &Path, extra: &[&str]) -> Run {
    let mut args = extra.to_vec();
    if !extra.contains(&"--num-iterations") {
        args.extend(["--num-iterations", "60"]);
    }
    churn(registry, "retrain", &args)
}

fn champion(registry: &Path) -> u64 {
    let text = std::fs::read_to_string(registry.join("churn/aliases.json")).unwrap();
    let aliases: serde_json::Value = serde_json::from_str(&text).unwrap();
    aliases["champion"].as_u64().unwrap()
}

fn decisions(registry: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(registry.join("churn/decisions.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn gate_promotes_keeps_and_logs_each_decision() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");

    // No champion yet: the first challenger is promoted.
    let first = retrain(&registry, &[]).ok();
    assert!(
        first
            .stdout
            .trim_end()
            .ends_with("status: promoted (champion: v1, challenger: v1)"),
        "{}",
        first.stdout
    );
    assert_eq!(champion(&registry), 1);

    // Worse (2 tiny rounds, no calibration), same rows: kept, exit 0, stored as v2.
    let worse = retrain(&registry, &[WEAK, &["--json"]].concat()).ok();
    let report = worse.json();
    assert_eq!(report["decision"], "kept", "{report}");
    assert_eq!(
        (report["challenger"].as_u64(), report["champion"].as_u64()),
        (Some(2), Some(1))
    );
    let auc = &report["checks"][0];
    assert_eq!(
        (auc["check"].as_str(), auc["passed"].as_bool()),
        (Some("auc"), Some(false))
    );
    assert_eq!(champion(&registry), 1);

    // Equal (the same training again: identical model, AUC difference 0,
    // within the 0.005 tolerance): promoted.
    let equal = retrain(&registry, &["--json"]).ok().json();
    assert_eq!(equal["decision"], "promoted", "{equal}");
    let (new, old) = (
        equal["challenger_metrics"]["auc"].as_f64().unwrap(),
        equal["champion_metrics"]["auc"].as_f64().unwrap(),
    );
    assert_eq!(new, old);
    assert_eq!(champion(&registry), 3);

    let log = decisions(&registry);
    let logged: Vec<&str> = log
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(logged, ["promoted", "kept", "promoted"]);
    assert_eq!(log[1]["champion"], 1);
}

#[test]
fn retention_keeps_the_champion_and_aliased_versions() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, "[gate]\nmax_auc_drop = 0.005\nkeep_versions = 2\n").unwrap();
    let cfg = config.to_str().unwrap();
    retrain(&registry, &["--config", cfg]).ok(); // v1 champion
    train(&registry, &["models"]).ok();
    // Three worse challengers: v2, v3, v4, all kept out.
    for _ in 0..3 {
        let run = retrain(&registry, &[&["--config", cfg], WEAK].concat()).ok();
        assert!(run.stdout.contains("status: kept"), "{}", run.stdout);
    }
    let mut versions: Vec<String> = std::fs::read_dir(registry.join("churn"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".presage"))
        .collect();
    versions.sort();
    // Newest two (v3, v4) plus the champion v1; v2 was deleted.
    assert_eq!(versions, ["v1.presage", "v3.presage", "v4.presage"]);
    assert_eq!(champion(&registry), 1);
    assert!(decisions(&registry).last().unwrap()["deleted"]
        .as_array()
        .unwrap()
        .contains(&2.into()));
}

#[test]
fn bad_gate_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, "[gate]\nmax_auc_drop = 5\n").unwrap();
    let run = retrain(
        &dir.path().join("registry"),
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("max_auc_drop = 5"), "{}", run.stderr);
    std::fs::write(&config, "[gate]\nmax_auc_dorp = 0.01\n").unwrap();
    let run = retrain(
        &dir.path().join("registry"),
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("max_auc_dorp"), "{}", run.stderr);
}

#[test]
fn killed_at_any_point_the_registry_loads_and_the_champion_holds() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    retrain(&registry, &[]).ok();
    for delay_ms in [5u64, 20, 40, 60, 80, 100, 130, 160, 200, 260, 330, 420] {
        let mut child = Command::new(binary("presage-train"))
            .arg("--registry")
            .arg(&registry)
            .args(churn_args("retrain"))
            .args(WEAK)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Every listed version loads, and the worse challenger never became champion.
        let models = train(&registry, &["models", "--json"]).ok().json();
        for m in models["models"].as_array().unwrap() {
            assert!(m["error"].is_null(), "after a kill at {delay_ms} ms: {m}");
        }
        assert_eq!(champion(&registry), 1, "after a kill at {delay_ms} ms");
    }
    // And the next full run still works.
    let run = retrain(&registry, &[]).ok();
    assert!(run.stdout.contains("status: promoted"), "{}", run.stdout);
}

#[test]
fn a_better_challenger_is_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    // A weak champion first (2 tiny rounds, uncalibrated) ...
    retrain(&registry, WEAK).ok();
    // ... then a proper model on the same rows: clearly better, promoted.
    let better = retrain(&registry, &["--json"]).ok().json();
    assert_eq!(better["decision"], "promoted", "{better}");
    let (new, old) = (
        better["challenger_metrics"]["auc"].as_f64().unwrap(),
        better["champion_metrics"]["auc"].as_f64().unwrap(),
    );
    assert!(new > old + 0.005, "{new} vs {old}");
    assert_eq!(champion(&registry), 2);
}
