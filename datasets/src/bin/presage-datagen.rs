//! `presage-datagen`: writes a synthetic SaaS onboarding extract (users,
//! partitioned events, and the true label probabilities) for tests and
//! benchmarks. Deterministic by seed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use presage_datasets::onboarding::experiment::ExperimentConfig;
use presage_datasets::onboarding::simulate::Calendar;
use presage_datasets::onboarding::{generate, GenerateConfig};
use presage_models::time::parse_timestamp;

#[derive(Parser)]
#[command(
    name = "presage-datagen",
    version,
    about = "Generate a synthetic onboarding extract: users.parquet, events/ (Parquet partitions) and truth.parquet; with --experiment also an A/B test's assignments.parquet and experiment_truth.json.",
    after_help = "Exit codes: 0 success, 1 failure writing the output, 2 bad arguments.\n\
                  Each user is observed for 7 days after signup (the cutoff); labels look at the next 28 days,\n\
                  as datasets/configs/churn.toml and adoption.toml do.\n\
                  Experiment mode: users are assigned at signup with a segment (at_risk, watch, healthy); treatment\n\
                  raises each onboarding step's log-odds by 0.5 (at_risk), 0.2 (watch) or 0 (healthy).\n\
                  experiment_truth.json holds the exact effect per outcome of datasets/configs/experiment.toml\n\
                  and segment: every user is simulated under both arms with the same random numbers."
)]
struct Cli {
    /// Number of users.
    #[arg(long)]
    users: u64,
    /// Days in the calendar: signups fall on any of them, and the extract ends after the last.
    #[arg(long, default_value_t = 90)]
    days: u32,
    /// First calendar day (UTC), YYYY-MM-DD.
    #[arg(long, default_value = "2024-01-01")]
    start: String,
    /// Random seed.
    #[arg(long)]
    seed: u64,
    /// Output directory (created; must not exist yet, or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// Experiment mode: assign each user at signup to control (generic
    /// onboarding) or treatment (the segment's onboarding), with a known effect
    /// per segment; also writes assignments.parquet and experiment_truth.json.
    #[arg(long)]
    experiment: bool,
    /// Experiment mode: share of users assigned to treatment.
    #[arg(long, default_value_t = 0.5, requires = "experiment")]
    treatment_share: f64,
    /// Experiment mode: share of treatment assignments lost from
    /// assignments.parquet (injects a sample-ratio mismatch).
    #[arg(long, default_value_t = 0.0, requires = "experiment")]
    lose_treatment_assignments: f64,
    /// Experiment mode: treatment has no effect in any segment (an A/A test).
    #[arg(long, requires = "experiment")]
    no_effect: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bad = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    };
    if cli.users == 0 {
        return bad("--users must be at least 1".into());
    }
    if cli.days == 0 {
        return bad("--days must be at least 1".into());
    }
    // A date only: the calendar starts at midnight UTC.
    let start = match parse_timestamp(&cli.start) {
        Some(us) if cli.start.len() == 10 => us,
        _ => {
            return bad(format!(
                "--start {:?} is not a date; write YYYY-MM-DD",
                cli.start
            ))
        }
    };
    for (flag, value) in [
        ("--treatment-share", cli.treatment_share),
        (
            "--lose-treatment-assignments",
            cli.lose_treatment_assignments,
        ),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return bad(format!("{flag} {value}: must be between 0 and 1"));
        }
    }
    if cli.experiment && !(cli.treatment_share > 0.0 && cli.treatment_share < 1.0) {
        return bad(format!(
            "--treatment-share {}: both arms need users; choose a share strictly between 0 and 1",
            cli.treatment_share
        ));
    }
    if cli.out.exists() && std::fs::read_dir(&cli.out).map_or(true, |mut d| d.next().is_some()) {
        return bad(format!(
            "{} already exists and is not empty; choose a new directory",
            cli.out.display()
        ));
    }
    let config = GenerateConfig {
        users: cli.users,
        seed: cli.seed,
        calendar: Calendar {
            start,
            days: cli.days,
        },
        out: cli.out.clone(),
        experiment: cli.experiment.then_some(ExperimentConfig {
            treatment_share: cli.treatment_share,
            lost_treatment_share: cli.lose_treatment_assignments,
            effect: !cli.no_effect,
        }),
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(cli.users);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} simulating [{bar:30}] {pos}/{len} users ({elapsed})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    });
    let started = std::time::Instant::now();
    let result = generate(&config, &|done| {
        if let Some(bar) = &bar {
            bar.set_position(done);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(summary) => {
            if cli.json {
                println!("{}", serde_json::to_string(&summary).expect("plain data"));
            } else {
                println!(
                    "{} users, {} events in {} partitions -> {} ({:.1}s); churn rate {:.1}% and adoption rate {:.1}% among {} users with complete label windows",
                    summary.users,
                    summary.events,
                    summary.partitions,
                    cli.out.display(),
                    started.elapsed().as_secs_f64(),
                    100.0 * summary.churn_rate,
                    100.0 * summary.adoption_rate,
                    summary.labelled_users,
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
