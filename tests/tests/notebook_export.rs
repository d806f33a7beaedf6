//! `presage-export`: Parquet files and an nbformat 4 notebook, which is then
//! executed with nbclient (in a virtualenv created beside the test
//! binaries on first use, with the packages from PyPI) and must run every
//! cell without an error and draw its plots.

use std::path::{Path, PathBuf};
use std::process::Command;

use presage_data::table::read_table;
use presage_tests::{binary, fit_churn, Run};

const PACKAGES: &[&str] = &[
    "nbclient",
    "nbformat",
    "ipykernel",
    "pandas",
    "pyarrow",
    "matplotlib",
];

/// A Python with nbclient and the notebook's packages.
fn notebook_python() -> PathBuf {
    let venv = binary("presage-export")
        .parent()
        .expect("target dir")
        .join("notebook-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".ready");
    if !ready.exists() {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        assert!(created.is_ok_and(|s| s.success()), "python3 -m venv failed");
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(PACKAGES)
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "pip install {} failed (is PyPI reachable?)",
            PACKAGES.join(" ")
        );
        std::fs::write(&ready, "").unwrap();
    }
    python
}

fn export(registry: &Path, args: &[&str]) -> Run {
    Command::new(binary("presage-export"))
        .arg("--registry")
        .arg(registry)
        .args(args)
        .output()
        .expect("run presage-export")
        .into()
}

#[test]
fn exported_notebook_runs_every_cell() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    fit_churn(&registry, &["--num-iterations", "40"]).ok();
    fit_churn(&registry, &["--algo", "rf", "--num-iterations", "40"]).ok();
    let out = dir.path().join("export");
    let telco = presage_datasets::telco_churn_csv();
    let run = export(
        &registry,
        &[
            "churn",
            "--versions",
            "1,2",
            "--data",
            telco.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    for file in ["metrics", "importance", "scores", "curves", "shap"] {
        assert!(
            run.stdout.contains(&format!("{file}.parquet")),
            "{}",
            run.stdout
        );
    }
    let scores = read_table(&out.join("scores.parquet")).unwrap();
    assert_eq!(scores.n_rows(), 2 * 7043);
    let shap = read_table(&out.join("shap.parquet")).unwrap();
    assert_eq!(shap.n_rows(), 2 * 200 * 19);

    let script = r#"
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read("compare.ipynb", as_version=4)
nbformat.validate(nb)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
print("images", images)
"#;
    let executed = Command::new(notebook_python())
        .args(["-c", script])
        .current_dir(&out)
        .output()
        .expect("run nbclient");
    let stdout = String::from_utf8_lossy(&executed.stdout);
    assert!(
        executed.status.success(),
        "the notebook failed:\n{}",
        String::from_utf8_lossy(&executed.stderr)
    );
    assert!(stdout.contains("images 4"), "{stdout}");
}

#[test]
fn export_without_data_and_bad_versions() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    fit_churn(&registry, &["--num-iterations", "10"]).ok();
    let out = dir.path().join("export");
    let run = export(
        &registry,
        &["churn", "--versions", "1", "--out", out.to_str().unwrap()],
    )
    .ok();
    assert!(run.stdout.contains("metrics.parquet") && !run.stdout.contains("scores.parquet"));
    assert!(out.join("compare.ipynb").exists());
    let bad = export(
        &registry,
        &["churn", "--versions", "1,7", "--out", out.to_str().unwrap()],
    );
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("no version 7"), "{}", bad.stderr);
}
