//! A seeded simulator of a SaaS product's onboarding, written as warehouse
//! extracts (`users.parquet`, partitioned `events/`) plus each user's true
//! label probabilities (`truth.parquet`), so that reports and tests can
//! compare a model's AUC with the best achievable one.
//!
//! - [`model`]: the generative model and the exact true probabilities.
//! - [`simulate`]: one user from signup to the end of the extract.
//! - [`experiment`]: experiment mode, an A/B test with known effects.
//! - [`generate`]: many users, in chunks, streamed to Parquet: memory stays
//!   bounded by the chunk size at any number of users. The output depends
//!   only on the seed, the user count and the calendar (not on threads).

pub mod experiment;
pub mod model;
pub mod simulate;

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

use experiment::{measure_all, Assignment, ExperimentConfig, PotentialOutcomes, TruthBuilder};
use model::ATTRIBUTES;
use simulate::{event_names, simulate, Calendar, Event, User};

/// Users simulated (and events written) per chunk.
pub const CHUNK_USERS: u64 = 20_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Number of users.
    pub users: u64,
    /// Seed.
    pub seed: u64,
    /// The calendar: signup days and the extract's end.
    pub calendar: Calendar,
    /// Output directory.
    pub out: PathBuf,
    /// Experiment mode: also write `assignments.parquet` and
    /// `experiment_truth.json`.
    pub experiment: Option<ExperimentConfig>,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A file could not be written.
    #[error("{path}: {message}")]
    Write {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GenerateSummary {
    /// Users written.
    pub users: u64,
    /// Events written.
    pub events: u64,
    /// Event partitions written.
    pub partitions: u64,
    /// Users whose churn label window ends within the extract.
    pub labelled_users: u64,
    /// Realised churn rate among them.
    pub churn_rate: f64,
    /// Realised adoption rate among users with an adoption label.
    pub adoption_rate: f64,
    /// Experiment mode: rows of `assignments.parquet` per arm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignments: Option<experiment::Arms>,
}

fn user_id(index: u64, width: usize) -> String {
    format!("u{:0width$}", index + 1)
}

fn write_error(path: &Path) -> impl Fn(PolarsError) -> GenerateError + '_ {
    move |e| GenerateError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> GenerateError + '_ {
    move |e| GenerateError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn timestamps(name: &str, values: Vec<i64>) -> Column {
    Int64Chunked::from_vec(name.into(), values)
        .into_datetime(TimeUnit::Microseconds, None)
        .into_column()
}

/// A column of `rows` mapped by `value`.
fn column<R, T>(name: &str, rows: &[R], value: impl Fn(&R) -> T) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), rows.iter().map(value).collect::<Vec<_>>())
}

fn users_frame(users: &[User], width: usize) -> PolarsResult<DataFrame> {
    let mut columns = vec![
        column("user_id", users, |u| user_id(u.index, width)),
        timestamps("signup_at", users.iter().map(|u| u.signup_at).collect()),
    ];
    for (slot, attribute) in ATTRIBUTES.iter().enumerate() {
        columns.push(column(attribute.name, users, |u| {
            attribute.values[u.attributes[slot]].0
        }));
    }
    columns.push(column("consent", users, |u| u.consent));
    DataFrame::new(users.len(), columns)
}

fn truth_frame(users: &[User], width: usize) -> PolarsResult<DataFrame> {
    DataFrame::new(
        users.len(),
        vec![
            column("user_id", users, |u| user_id(u.index, width)),
            column("churn_probability", users, |u| u.churn_probability),
            column("adoption_probability", users, |u| u.adoption_probability),
            column("churned", users, |u| u.churned),
            column("adopted", users, |u| u.adopted),
            column("engagement", users, |u| u.engagement),
        ],
    )
}

fn assignments_frame(rows: &[(u64, Assignment)], width: usize) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            column("user_id", rows, |(i, _)| user_id(*i, width)),
            column("variant", rows, |(_, a)| {
                if a.treated {
                    "treatment"
                } else {
                    "control"
                }
            }),
            timestamps(
                "assigned_at",
                rows.iter().map(|(_, a)| a.assigned_at).collect(),
            ),
            column("segment", rows, |(_, a)| a.segment.name()),
        ],
    )
}

/// One simulated user of a chunk, with its experiment arm when assigned.
struct Simulated {
    user: User,
    events: Vec<Event>,
    experiment: Option<(Assignment, PotentialOutcomes)>,
}

/// Simulates user `index`; in experiment mode under both arms, keeping the
/// assigned arm's events.
fn simulate_user(config: &GenerateConfig, index: u64) -> Simulated {
    let (seed, calendar) = (config.seed, config.calendar);
    let mut events = Vec::new();
    let user = simulate(seed, index, calendar, 0.0, &mut events);
    let Some(experiment) = &config.experiment else {
        return Simulated {
            user,
            events,
            experiment: None,
        };
    };
    let assignment = experiment.assign(seed, index, &user);
    let lift = experiment.lift(assignment.segment);
    let (treated_user, treated_events) = if lift == 0.0 {
        (user.clone(), events.clone())
    } else {
        let mut treated_events = Vec::new();
        let treated = simulate(seed, index, calendar, lift, &mut treated_events);
        (treated, treated_events)
    };
    let end = calendar.end();
    let potential = [
        measure_all(assignment.assigned_at, &events, end),
        measure_all(assignment.assigned_at, &treated_events, end),
    ];
    let (user, events) = if assignment.treated {
        (treated_user, treated_events)
    } else {
        (user, events)
    };
    Simulated {
        user,
        events,
        experiment: Some((assignment, potential)),
    }
}

fn events_frame(chunk: &[Simulated], width: usize, names: &[&str]) -> PolarsResult<DataFrame> {
    let n: usize = chunk.iter().map(|s| s.events.len()).sum();
    let (mut ids, mut events, mut at, mut durations) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for Simulated {
        user,
        events: user_events,
        ..
    } in chunk
    {
        let id = user_id(user.index, width);
        for e in user_events {
            ids.push(id.clone());
            events.push(names[e.code as usize]);
            at.push(e.at);
            durations.push(e.duration_s);
        }
    }
    DataFrame::new(
        n,
        vec![
            Column::new("user_id".into(), ids),
            Column::new("event".into(), events),
            timestamps("occurred_at", at),
            Column::new("duration_s".into(), durations),
        ],
    )
}

/// A Parquet file written batch by batch under a temporary name, then
/// synced and renamed into place by [`BatchedParquet::finish`].
struct BatchedParquet {
    path: PathBuf,
    partial: PathBuf,
    file: File,
    writer: Option<polars::io::parquet::write::BatchedWriter<File>>,
}

impl BatchedParquet {
    fn create(path: &Path) -> Result<Self, GenerateError> {
        let partial = path.with_extension("parquet.partial");
        let file = File::create(&partial).map_err(io_error(path))?;
        Ok(BatchedParquet {
            path: path.to_path_buf(),
            partial,
            file,
            writer: None,
        })
    }

    fn write(&mut self, frame: &DataFrame) -> Result<(), GenerateError> {
        let writer = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(
                ParquetWriter::new(self.file.try_clone().map_err(io_error(&self.path))?)
                    .batched(frame.schema())
                    .map_err(write_error(&self.path))?,
            ),
        };
        writer.write_batch(frame).map_err(write_error(&self.path))
    }

    fn finish(mut self) -> Result<(), GenerateError> {
        if let Some(w) = &mut self.writer {
            w.finish().map_err(write_error(&self.path))?;
        }
        self.file.sync_all().map_err(io_error(&self.path))?;
        std::fs::rename(&self.partial, &self.path).map_err(io_error(&self.path))
    }
}

/// Generates the extracts into `config.out` (created; it must not hold a
/// previous generation). Files are written under a temporary name and
/// renamed when complete. `on_chunk` is called with the users done so far.
pub fn generate(
    config: &GenerateConfig,
    on_chunk: &dyn Fn(u64),
) -> Result<GenerateSummary, GenerateError> {
    let out = &config.out;
    let events_dir = out.join("events");
    std::fs::create_dir_all(&events_dir).map_err(io_error(&events_dir))?;
    let width = (config.users.max(1)).to_string().len().max(7);
    let names = event_names();
    let users_path = out.join("users.parquet");
    let truth_path = out.join("truth.parquet");
    let mut users_file = BatchedParquet::create(&users_path)?;
    let mut truth_file = BatchedParquet::create(&truth_path)?;
    let assignments_path = out.join("assignments.parquet");
    let mut assignments_file = match config.experiment {
        Some(_) => Some(BatchedParquet::create(&assignments_path)?),
        None => None,
    };
    let mut experiment_truth = TruthBuilder::default();
    let mut summary = GenerateSummary::default();
    let (mut churned, mut adopted, mut adoption_labelled) = (0u64, 0u64, 0u64);
    let chunks = config.users.div_ceil(CHUNK_USERS);
    for chunk in 0..chunks {
        let first = chunk * CHUNK_USERS;
        let last = (first + CHUNK_USERS).min(config.users);
        let simulated: Vec<Simulated> = (first..last)
            .into_par_iter()
            .map(|index| simulate_user(config, index))
            .collect();
        let users: Vec<User> = simulated.iter().map(|s| s.user.clone()).collect();
        if let Some(file) = &mut assignments_file {
            let mut logged = Vec::new();
            for s in &simulated {
                if let Some((assignment, potential)) = &s.experiment {
                    experiment_truth.add(assignment, potential);
                    if assignment.logged {
                        logged.push((s.user.index, *assignment));
                    }
                }
            }
            file.write(
                &assignments_frame(&logged, width).map_err(write_error(&assignments_path))?,
            )?;
        }
        users_file.write(&users_frame(&users, width).map_err(write_error(&users_path))?)?;
        truth_file.write(&truth_frame(&users, width).map_err(write_error(&truth_path))?)?;

        let part = events_dir.join(format!("part-{chunk:05}.parquet"));
        let mut events = events_frame(&simulated, width, &names).map_err(write_error(&part))?;
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .finish(&mut events)
            .map_err(write_error(&part))?;
        presage_models::write_atomic(&part, &bytes).map_err(io_error(&part))?;

        summary.users += users.len() as u64;
        summary.events += events.height() as u64;
        summary.partitions += 1;
        for u in &users {
            if let Some(c) = u.churned {
                summary.labelled_users += 1;
                churned += u64::from(c);
            }
            if let Some(a) = u.adopted {
                adoption_labelled += 1;
                adopted += u64::from(a);
            }
        }
        on_chunk(last);
    }
    users_file.finish()?;
    truth_file.finish()?;
    if let (Some(file), Some(experiment)) = (assignments_file, &config.experiment) {
        file.finish()?;
        let truth = experiment_truth.finish(experiment);
        let path = out.join("experiment_truth.json");
        let mut json = serde_json::to_vec_pretty(&truth).expect("plain data");
        json.push(b'\n');
        presage_models::write_atomic(&path, &json).map_err(io_error(&path))?;
        summary.assignments = Some(truth.logged);
    }
    summary.churn_rate = churned as f64 / summary.labelled_users.max(1) as f64;
    summary.adoption_rate = adopted as f64 / adoption_labelled.max(1) as f64;
    Ok(summary)
}
