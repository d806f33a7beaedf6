//! The HTML comparison report in a real browser: headless Chromium (Debian's
//! package, installed here with apt-get when missing) renders it with every
//! plot and without a single console message. A page that does log to the
//! console is rendered first, to prove the check can fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use presage_tests::compare_report;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Debian's Chromium, installed on first use (the CI machine runs as root).
fn chromium() -> PathBuf {
    if !Path::new(CHROMIUM).exists() {
        let install = |update: bool| {
            if update {
                let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            }
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "chromium"])
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(
            install(false) || install(true),
            "Chromium is needed for this test and `apt-get install -y chromium` failed; install it and rerun"
        );
    }
    PathBuf::from(CHROMIUM)
}

/// Renders `page` headless; returns (DOM, stderr).
fn render(page: &Path, screenshot: Option<&Path>) -> (String, String) {
    let mut command = Command::new(chromium());
    command.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--log-level=0",
        "--window-size=1280,2400",
    ]);
    match screenshot {
        Some(png) => command.arg(format!("--screenshot={}", png.display())),
        None => command.arg("--dump-dom"),
    };
    let out = command
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

#[test]
fn chromium_renders_the_report_without_console_messages() {
    let dir = tempfile::tempdir().unwrap();

    // The check itself: a page that logs an error is caught.
    let noisy = dir.path().join("noisy.html");
    std::fs::write(
        &noisy,
        "<!DOCTYPE html><html><body><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let (_, stderr) = render(&noisy, None);
    assert_eq!(console_lines(&stderr).len(), 1, "{stderr}");

    let registry = dir.path().join("registry");
    let report = dir.path().join("report.html");
    compare_report(
        &registry,
        &["--algo", "rf", "--num-iterations", "40"],
        &report,
    )
    .ok();
    let (dom, stderr) = render(&report, None);
    assert!(
        console_lines(&stderr).is_empty(),
        "{:?}",
        console_lines(&stderr)
    );
    assert_eq!(
        dom.matches("<svg").count(),
        5,
        "the browser's DOM lacks plots"
    );
    assert!(dom.contains("Segment migration"));
    let png = dir.path().join("report.png");
    let (_, stderr) = render(&report, Some(&png));
    assert!(
        console_lines(&stderr).is_empty(),
        "{:?}",
        console_lines(&stderr)
    );
    // A 1280x2400 screenshot of five plots and tables is far from blank.
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 50_000, "screenshot is {size} bytes");
}
