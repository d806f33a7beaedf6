//! `presage-serve --help` documents every option, and a bad configuration
//! stops it before it listens, with exit code 2 and the file named.

use std::process::Command;

#[test]
fn help_lists_the_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_presage-serve"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for flag in [
        "--registry",
        "--listen",
        "--config",
        "--max-body-bytes",
        "--max-batch-rows",
        "--strict",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}: {text}");
    }
}

#[test]
fn bad_config_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nmax_batch_row = 5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_presage-serve"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("serve.toml") && stderr.contains("unknown field `max_batch_row`"),
        "{stderr}"
    );
}
