//! # presage-datasets
//!
//! Real public datasets shipped with Presage, each in its own folder with a
//! `PROVENANCE.md` (source, checksum, terms, shape). Tests and examples find
//! the files through these functions, so they work from any directory.
//!
//! [`onboarding`] is the synthetic onboarding-event generator behind the
//! `presage-datagen` binary. It may depend on `presage-models`, polars (to
//! write Parquet), rayon, clap and indicatif; not on the training crates.

use std::path::PathBuf;

pub mod onboarding;

/// The folder holding the shipped datasets.
///
/// Found at run time from `CARGO_MANIFEST_DIR` (set by cargo for tests and
/// `cargo run`: this crate's folder, or a sibling crate's in the same
/// workspace), falling back to where this crate was compiled. Looking at run
/// time keeps a build cached from another checkout pointing at this one.
pub fn root() -> PathBuf {
    let runtime = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let candidates = runtime
        .iter()
        .flat_map(|dir| [dir.clone(), dir.join("../datasets")]);
    candidates
        .chain(std::iter::once(PathBuf::from(env!("CARGO_MANIFEST_DIR"))))
        .find(|dir| dir.join("telco_churn").is_dir())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// IBM's Telco Customer Churn sample: 7,043 customers, 21 columns, label
/// `Churn` (`Yes`/`No`), id `customerID`. See `telco_churn/PROVENANCE.md`.
pub fn telco_churn_csv() -> PathBuf {
    root()
        .join("telco_churn")
        .join("WA_Fn-UseC_-Telco-Customer-Churn.csv")
}

/// The CDNOW purchase log converted to the users + events extract
/// contract: `(users.csv, events.csv)`. See `cdnow/PROVENANCE.md`.
pub fn cdnow_extracts() -> (PathBuf, PathBuf) {
    let dir = root().join("cdnow");
    (dir.join("users.csv"), dir.join("events.csv"))
}

/// The small synthetic onboarding extract shipped for tests, written by
/// `presage-datagen --users 10000 --seed 7 --out datasets/onboarding_small`
/// (see `onboarding_small/PROVENANCE.md`).
pub fn onboarding_small() -> PathBuf {
    root().join("onboarding_small")
}

/// A shipped config, e.g. `configs("churn_cdnow.toml")`.
pub fn config(name: &str) -> PathBuf {
    root().join("configs").join(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn telco_file_is_shipped_with_its_provenance() {
        let csv = super::telco_churn_csv();
        let text = std::fs::read_to_string(&csv).expect("telco csv is shipped");
        assert_eq!(text.lines().count(), 7044);
        assert!(super::root().join("telco_churn/PROVENANCE.md").exists());
    }

    #[test]
    fn cdnow_extracts_are_shipped_with_their_provenance() {
        let (users, events) = super::cdnow_extracts();
        let users = std::fs::read_to_string(users).expect("cdnow users are shipped");
        let events = std::fs::read_to_string(events).expect("cdnow events are shipped");
        assert_eq!(users.lines().count(), 23_571);
        assert_eq!(events.lines().count(), 69_660);
        assert!(super::root().join("cdnow/PROVENANCE.md").exists());
    }
}
