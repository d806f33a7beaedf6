//! Two trainers registering the same model at the same time both succeed,
//! with distinct versions, and every stored artifact loads.

use std::process::{Command, Stdio};

use presage_tests::{binary, train};

#[test]
fn concurrent_fits_get_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let data = presage_datasets::telco_churn_csv();
    let spawn = || {
        Command::new(binary("presage-train"))
            .arg("--registry")
            .arg(&registry)
            .args([
                "fit",
                "--label",
                "Churn",
                "--positive",
                "Yes",
                "--model",
                "churn",
                "--num-iterations",
                "40",
                "--json",
                "--data",
            ])
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start presage-train")
    };
    let children: Vec<_> = (0..4).map(|_| spawn()).collect();
    let mut versions: Vec<u64> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            report["version"].as_u64().unwrap()
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    let listing = train(&registry, &["models", "--json"]).ok().json();
    let models = listing["models"].as_array().unwrap();
    assert_eq!(models.len(), 4);
    assert!(models.iter().all(|m| m["error"].is_null()), "{listing}");
    let champions = models
        .iter()
        .filter(|m| m["aliases"] == serde_json::json!(["champion"]))
        .count();
    assert_eq!(champions, 1);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(registry.join("churn"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
