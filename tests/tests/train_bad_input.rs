//! Bad input to `presage-train`: each case must exit non-zero with a message
//! naming the file, column or key, and leave the registry byte-for-byte
//! unchanged.

use std::path::{Path, PathBuf};

use presage_tests::{snapshot, train};

struct Fixture {
    dir: tempfile::TempDir,
    registry: PathBuf,
}

impl Fixture {
    /// A registry that already holds one trained model.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry");
        let fx = Fixture { dir, registry };
        let small = fx.write("small.csv", &small_table());
        fx.fit(&small, &[]).ok();
        fx
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn fit(&self, data: &Path, extra: &[&str]) -> presage_tests::Run {
        let data = data.to_str().unwrap();
        let mut args = vec![
            "fit",
            "--data",
            data,
            "--label",
            "churned",
            "--model",
            "churn",
            "--num-iterations",
            "5",
            "--min-data-in-leaf",
            "5",
        ];
        args.extend_from_slice(extra);
        train(&self.registry, &args)
    }

    /// Runs `args`, expects exit 2 with every needle in stderr, and an unchanged registry.
    fn expect_rejected(&self, args: &[&str], needles: &[&str]) {
        let before = snapshot(&self.registry);
        let run = train(&self.registry, args);
        assert_eq!(
            run.code, 2,
            "expected exit 2 for {args:?}\nstderr: {}",
            run.stderr
        );
        for needle in needles {
            assert!(
                run.stderr.contains(needle),
                "stderr lacks {needle:?}:\n{}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert_eq!(
            before,
            snapshot(&self.registry),
            "registry changed after rejected {args:?}"
        );
    }
}

/// 200 rows: a signal column, a constant column and an all-missing column.
fn small_table() -> String {
    let mut text = String::from("user,sessions,plan,constant,empty,churned\n");
    for i in 0..200 {
        let sessions = i % 20;
        let plan = ["free", "pro", "team"][i % 3];
        let churned = u8::from(sessions < 8);
        text.push_str(&format!("u{i},{sessions},{plan},1,,{churned}\n"));
    }
    text
}

#[test]
fn missing_label_column_is_named() {
    let fx = Fixture::new();
    let data = fx.write("t.csv", &small_table());
    let path = data.to_str().unwrap();
    fx.expect_rejected(
        &[
            "fit",
            "--data",
            path,
            "--label",
            "cancelled",
            "--model",
            "churn",
        ],
        &["no column 'cancelled' (label)", path, "sessions"],
    );
}

#[test]
fn three_class_label_is_rejected() {
    let fx = Fixture::new();
    let text = small_table().replacen(",0\n", ",2\n", 1);
    let data = fx.write("three.csv", &text);
    fx.expect_rejected(
        &[
            "fit",
            "--data",
            data.to_str().unwrap(),
            "--label",
            "churned",
            "--model",
            "churn",
        ],
        &[
            "label column 'churned' has 3 distinct values (0, 1, 2)",
            "three.csv",
        ],
    );
}

#[test]
fn empty_file_and_header_only_file_are_rejected() {
    let fx = Fixture::new();
    let empty = fx.write("empty.csv", "");
    fx.expect_rejected(
        &[
            "fit",
            "--data",
            empty.to_str().unwrap(),
            "--label",
            "churned",
            "--model",
            "churn",
        ],
        &["empty.csv", "empty"],
    );
    let header = fx.write("header.csv", "user,sessions,churned\n");
    fx.expect_rejected(
        &[
            "fit",
            "--data",
            header.to_str().unwrap(),
            "--label",
            "churned",
            "--model",
            "churn",
        ],
        &["header.csv", "a header but no rows"],
    );
}

#[test]
fn truncated_parquet_is_rejected() {
    let fx = Fixture::new();
    let csv = fx.write("t.csv", &small_table());
    let parquet = fx.dir.path().join("scores.parquet");
    train(
        &fx.registry,
        &[
            "predict",
            "--model",
            "churn",
            "--data",
            csv.to_str().unwrap(),
            "--out",
            parquet.to_str().unwrap(),
        ],
    )
    .ok();
    let bytes = std::fs::read(&parquet).unwrap();
    std::fs::write(&parquet, &bytes[..bytes.len() / 2]).unwrap();
    fx.expect_rejected(
        &[
            "fit",
            "--data",
            parquet.to_str().unwrap(),
            "--label",
            "probability",
            "--model",
            "churn",
        ],
        &["scores.parquet", "cannot read Parquet file"],
    );
}

#[test]
fn corrupted_artifact_is_detected_and_nothing_else_is_damaged() {
    let fx = Fixture::new();
    let artifact = fx.registry.join("churn/v1.presage");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, &bytes).unwrap();
    let csv = fx.write("t.csv", &small_table());
    let out = fx.dir.path().join("out.csv");
    fx.expect_rejected(
        &[
            "predict",
            "--model",
            "churn",
            "--data",
            csv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["v1.presage", "corrupted (payload checksum mismatch)"],
    );
    assert!(!out.exists());
    // Not a model file at all.
    std::fs::write(&artifact, b"hello").unwrap();
    fx.expect_rejected(
        &[
            "predict",
            "--model",
            "churn",
            "--data",
            csv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["v1.presage", "not a Presage model file"],
    );
    // The registry still works: a new version is added beside the damaged one.
    let run = fx.fit(&csv, &["--json"]).ok();
    assert_eq!(run.json()["version"], 2);
}

#[test]
fn unknown_config_key_and_bad_range_are_named() {
    let fx = Fixture::new();
    let csv = fx.write("t.csv", &small_table());
    // The whole file is read once: a misspelt key or section is named, and
    // so is a value out of range.
    for (file, text, expected) in [
        (
            "churn.toml",
            "algo = \"gbm\"\n[params]\nnum_leaf = 15\n",
            &["churn.toml", "unknown field `num_leaf`"][..],
        ),
        (
            "section.toml",
            "algo = \"gbm\"\n[parms]\nnum_leaves = 15\n",
            &["section.toml", "unknown field `parms`"][..],
        ),
        (
            "range.toml",
            "[params]\nlearning_rate = 3.0\n",
            &["learning_rate", "(0, 1]"][..],
        ),
    ] {
        let config = fx.write(file, text);
        fx.expect_rejected(
            &[
                "fit",
                "--data",
                csv.to_str().unwrap(),
                "--label",
                "churned",
                "--model",
                "churn",
                "--config",
                config.to_str().unwrap(),
            ],
            expected,
        );
    }
}

#[test]
fn constant_and_empty_columns_are_dropped_with_a_warning() {
    let fx = Fixture::new();
    let csv = fx.write("t.csv", &small_table());
    let run = fx.fit(&csv, &["--id", "user"]).ok();
    assert!(
        run.stderr
            .contains("column 'constant' is constant; dropped"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("column 'empty' is entirely missing; dropped"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_model_is_a_clear_error() {
    let fx = Fixture::new();
    let csv = fx.write("t.csv", &small_table());
    let out = fx.dir.path().join("o.csv");
    fx.expect_rejected(
        &[
            "predict",
            "--model",
            "adoption",
            "--data",
            csv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["no model named 'adoption'", "models: churn"],
    );
    fx.expect_rejected(
        &[
            "predict",
            "--model",
            "churn",
            "--version",
            "9",
            "--data",
            csv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["model 'churn' has no version 9 (versions: 1)"],
    );
}
