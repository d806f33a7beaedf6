//! `presage-datagen` documents itself and refuses bad arguments with exit code 2.

use std::process::Command;

fn datagen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_presage-datagen"))
        .args(args)
        .output()
        .expect("run presage-datagen")
}

#[test]
fn help_lists_every_flag() {
    let out = datagen(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--users", "--days", "--start", "--seed", "--out", "--json"] {
        assert!(text.contains(flag), "--help lacks {flag}: {text}");
    }
}

#[test]
fn bad_arguments_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    for (args, reason) in [
        (
            vec!["--users", "0", "--seed", "1", "--out", out],
            "--users must be at least 1",
        ),
        (
            vec!["--users", "5", "--seed", "1", "--days", "0", "--out", out],
            "--days must be at least 1",
        ),
        (
            vec![
                "--users",
                "5",
                "--seed",
                "1",
                "--start",
                "2024-13-01",
                "--out",
                out,
            ],
            "is not a date",
        ),
    ] {
        let run = datagen(&args);
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("x").exists());
}

#[test]
fn json_summary_counts_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen");
    let run = datagen(&[
        "--users",
        "300",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["users"], 300);
    assert_eq!(summary["partitions"], 1);
    assert!(summary["events"].as_u64().unwrap() > 300);
    for file in [
        "users.parquet",
        "truth.parquet",
        "events/part-00000.parquet",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
}
