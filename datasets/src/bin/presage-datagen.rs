//! `presage-datagen`: writes a synthetic SaaS onboarding extract (users,
//! partitioned events, and the true label probabilities) for tests and
//! benchmarks. Deterministic by seed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use presage_datasets::onboarding::simulate::{Calendar, DAY_US};
use presage_datasets::onboarding::{generate, GenerateConfig};

#[derive(Parser)]
#[command(
    name = "presage-datagen",
    version,
    about = "Generate a synthetic onboarding extract: users.parquet, events/ (Parquet partitions) and truth.parquet.",
    after_help = "Exit codes: 0 success, 1 failure writing the output, 2 bad arguments.\n\
                  Each user is observed for 7 days after signup (the cutoff); labels look at the next 28 days,\n\
                  as datasets/configs/churn.toml and adoption.toml do."
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
}

/// Days since 1970-01-01 of `YYYY-MM-DD`.
fn epoch_day(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (y, m, d): (i64, i64, i64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    Some(era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468)
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
    let Some(start) = epoch_day(&cli.start) else {
        return bad(format!(
            "--start {:?} is not a date; write YYYY-MM-DD",
            cli.start
        ));
    };
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
            start: start * DAY_US,
            days: cli.days,
        },
        out: cli.out.clone(),
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
