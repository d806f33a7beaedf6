//! Every `presage-train` subcommand documents itself with `--help`.

use std::process::Command;

#[test]
fn every_subcommand_has_help() {
    let bin = env!("CARGO_BIN_EXE_presage-train");
    for sub in [
        &[][..],
        &["fit"],
        &["features"],
        &["segments"],
        &["kpis"],
        &["compare"],
        &["drift"],
        &["retrain"],
        &["predict"],
        &["evaluate"],
        &["models"],
    ] {
        let out = Command::new(bin)
            .args(sub)
            .arg("--help")
            .output()
            .expect("run presage-train");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub:?} --help failed");
        assert!(text.contains("Usage: presage-train"), "{sub:?}: {text}");
    }
    let fit = Command::new(bin).args(["fit", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&fit.stdout);
    for flag in [
        "--num-leaves",
        "--early-stopping-rounds",
        "--split-by",
        "--config",
        "--registry",
    ] {
        assert!(text.contains(flag), "fit --help lacks {flag}");
    }
}
