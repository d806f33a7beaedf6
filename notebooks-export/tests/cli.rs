//! `presage-export` documents itself and refuses a missing registry entry
//! with exit code 2 (its end-to-end test, which runs the notebook, is in
//! `tests/tests/notebook_export.rs`).

use std::process::Command;

#[test]
fn help_and_errors() {
    let bin = env!("CARGO_BIN_EXE_presage-export");
    let help = Command::new(bin).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in ["--versions", "--data", "--out", "--registry"] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(bin)
        .args(["nope", "--versions", "1", "--out"])
        .arg(dir.path().join("out"))
        .arg("--registry")
        .arg(dir.path().join("registry"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("nope"));
}
