//! The HTML comparison report in a real browser: headless Chromium (Debian's
//! package, installed here with apt-get when missing) renders it with every
//! plot and without a single console message. A page that does log to the
//! console is rendered first, to prove the check can fail.

use presage_tests::browser::{console_lines, render};
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
