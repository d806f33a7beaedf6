//! The HTML comparison report in a real browser: headless Chromium (Debian's
//! package, installed here with apt-get when missing) renders it with every
//! plot and without a single console message. A page that does log to the
//! console is rendered first, to prove the check can fail.

use presage_tests::browser::{console_lines, render, render_cleanly};
use presage_tests::compare_report;

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
    let dom = render_cleanly(&report);
    assert_eq!(
        dom.matches("<svg").count(),
        5,
        "the browser's DOM lacks plots"
    );
    assert!(dom.contains("Segment migration"));
}
