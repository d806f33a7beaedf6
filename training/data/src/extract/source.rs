//! Lazy scans of the extracts: one CSV or Parquet file, a directory of
//! Parquet files, or a glob. Timestamps become `Int64` microseconds since
//! the epoch (UTC) whatever their stored type; a cell that is not a
//! timestamp is an error naming its row.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::spec::{ExtractSources, ExtractSpec};
use super::ExtractError;
use presage_models::time::{parse_timestamp, DAY_US};

/// Internal column names (a leading `__` keeps them apart from user columns).
pub const UID: &str = "__uid";
pub const TS: &str = "__ts";
pub const EVENT: &str = "__event";

fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

fn ref_path(path: &str) -> PlRefPath {
    PlRefPath::new(path)
}

/// Opens `path` lazily. Directories are read as every `*.parquet` file
/// below them; globs must match Parquet files. In a CSV, `text_columns`
/// are read as text (ids such as `00042` keep their leading zeros).
pub fn scan(path: &Path, text_columns: &[&str]) -> Result<LazyFrame, ExtractError> {
    let display = path.display().to_string();
    let source_err = |message: String| ExtractError::Source {
        path: display.clone(),
        message,
    };
    let parquet = |pattern: &str| {
        LazyFrame::scan_parquet(ref_path(pattern), ScanArgsParquet::default())
            .map_err(|e| source_err(format!("cannot read Parquet: {e}")))
    };
    let mut frame = if is_glob(path) {
        parquet(&display)?
    } else if path.is_dir() {
        let has_parquet = walk_has_parquet(path)
            .map_err(|e| source_err(format!("cannot list the directory: {e}")))?;
        if !has_parquet {
            return Err(source_err(
                "the directory holds no .parquet files".to_owned(),
            ));
        }
        parquet(&format!("{}/**/*.parquet", display.trim_end_matches('/')))?
    } else if !path.exists() {
        return Err(source_err("no such file or directory".to_owned()));
    } else {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => LazyCsvReader::new(ref_path(&display))
                .with_has_header(true)
                .with_infer_schema_length(Some(10_000))
                .with_dtype_overwrite(Some(Arc::new(
                    text_columns
                        .iter()
                        .map(|c| Field::new((*c).into(), DataType::String))
                        .collect(),
                )))
                .finish()
                .map_err(|e| source_err(format!("cannot read CSV: {e}")))?,
            Some("parquet") | Some("pq") => parquet(&display)?,
            _ => return Err(source_err(
                "unsupported file type; use .csv, .parquet, a directory of Parquet files or a glob"
                    .to_owned(),
            )),
        }
    };
    let schema = frame
        .collect_schema()
        .map_err(|e| source_err(format!("cannot read: {e}")))?;
    if schema.is_empty() {
        return Err(source_err("the extract has no columns".to_owned()));
    }
    Ok(frame)
}

fn walk_has_parquet(dir: &Path) -> std::io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if walk_has_parquet(&path)? {
                return Ok(true);
            }
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The type of `column` in `frame`, or an error listing the columns present.
pub fn column_type(
    frame: &mut LazyFrame,
    column: &str,
    path: &Path,
) -> Result<DataType, ExtractError> {
    let schema = frame
        .collect_schema()
        .map_err(ExtractError::compute(path.display().to_string()))?;
    schema
        .get(column)
        .cloned()
        .ok_or_else(|| ExtractError::MissingColumn {
            path: path.display().to_string(),
            column: column.to_owned(),
            available: schema
                .iter_names()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Parses a text column of timestamps; unparseable and empty cells become null.
fn parse_text_timestamps(column: Column) -> PolarsResult<Column> {
    let text = column.str()?;
    let parsed: Int64Chunked = text
        .iter()
        .map(|cell| cell.and_then(parse_timestamp))
        .collect();
    Ok(parsed.with_name(column.name().clone()).into_column())
}

/// An expression giving `column` as microseconds since the epoch.
pub fn timestamp_us(column: &str, dtype: &DataType, path: &Path) -> Result<Expr, ExtractError> {
    let c = col(column);
    Ok(match dtype {
        DataType::Datetime(unit, _) => {
            let raw = c.cast(DataType::Int64);
            match unit {
                TimeUnit::Nanoseconds => raw.floor_div(lit(1_000i64)),
                TimeUnit::Microseconds => raw,
                TimeUnit::Milliseconds => raw * lit(1_000i64),
            }
        }
        DataType::Date => c.cast(DataType::Int32).cast(DataType::Int64) * lit(DAY_US),
        DataType::String => c.map(parse_text_timestamps, |_, field| {
            Ok(Field::new(field.name().clone(), DataType::Int64))
        }),
        other => {
            return Err(ExtractError::ColumnType {
                path: path.display().to_string(),
                column: column.to_owned(),
                problem: format!(
                    "has type {other}; timestamps must be a Datetime, a Date or ISO 8601 text"
                ),
            })
        }
    })
}

/// Fails with the first row of `frame` whose `column` (text) is not a
/// timestamp. Only text columns can hold one.
pub fn check_text_timestamps(
    frame: LazyFrame,
    column: &str,
    dtype: &DataType,
    path: &Path,
) -> Result<(), ExtractError> {
    if dtype != &DataType::String {
        return Ok(());
    }
    let parsed = timestamp_us(column, dtype, path)?;
    let bad = frame
        .select([col(column)])
        .with_row_index("__row", Some(1))
        .filter(parsed.is_null())
        .limit(1)
        .collect()
        .map_err(ExtractError::compute(format!(
            "{}: checking column '{column}'",
            path.display()
        )))?;
    if bad.height() == 0 {
        return Ok(());
    }
    let row = bad
        .column("__row")
        .and_then(|c| c.cast(&DataType::UInt64))
        .ok()
        .and_then(|c| c.u64().ok().and_then(|c| c.get(0)))
        .unwrap_or(0);
    let value = bad
        .column(column)
        .ok()
        .and_then(|c| c.str().ok().and_then(|c| c.get(0).map(str::to_owned)));
    Err(match value {
        Some(value) => ExtractError::Timestamp {
            path: path.display().to_string(),
            column: column.to_owned(),
            row,
            value,
        },
        None => ExtractError::Data {
            path: path.display().to_string(),
            message: format!("column '{column}', row {row}: the timestamp is empty"),
        },
    })
}

/// The events extract, scanned lazily with its columns normalised:
/// [`UID`], [`EVENT`] (text), [`TS`] (microseconds) and the numeric
/// property columns the spec asks for, under their own names.
pub struct Events {
    /// Where it was read from.
    pub path: PathBuf,
    /// The normalised scan.
    pub frame: LazyFrame,
    /// The user id column's type, as stored.
    pub uid_type: DataType,
}

impl Events {
    /// Scans the events extract named by the spec and checks its columns.
    pub fn open(spec: &ExtractSpec) -> Result<Events, ExtractError> {
        Events::open_sources(&spec.extract, &spec.feature_spec.features.properties())
    }

    /// Scans the events extract named by `sources`, with the numeric
    /// `properties` as extra columns, and checks its columns.
    pub fn open_sources(
        sources: &ExtractSources,
        properties: &[&String],
    ) -> Result<Events, ExtractError> {
        let path = sources.events.clone().ok_or_else(|| ExtractError::Source {
            path: "[extract] events".into(),
            message: "no events extract named; set [extract] events or pass --events PATH".into(),
        })?;
        let mut frame = scan(&path, &[&sources.user_id, &sources.event])?;
        let first = frame
            .clone()
            .limit(1)
            .collect()
            .map_err(ExtractError::compute(path.display().to_string()))?;
        if first.height() == 0 {
            return Err(ExtractError::Data {
                path: path.display().to_string(),
                message: "the events extract has no rows".into(),
            });
        }
        let uid_type = column_type(&mut frame, &sources.user_id, &path)?;
        let event_type = column_type(&mut frame, &sources.event, &path)?;
        let ts_type = column_type(&mut frame, &sources.occurred_at, &path)?;
        if event_type != DataType::String && !event_type.is_integer() {
            return Err(ExtractError::ColumnType {
                path: path.display().to_string(),
                column: sources.event.clone(),
                problem: format!("has type {event_type}; event names must be text"),
            });
        }
        let mut select = vec![
            col(sources.user_id.as_str()).alias(UID),
            col(sources.event.as_str())
                .cast(DataType::String)
                .alias(EVENT),
            timestamp_us(&sources.occurred_at, &ts_type, &path)?.alias(TS),
        ];
        for &p in properties {
            let dtype = column_type(&mut frame, p, &path)?;
            if !(dtype.is_primitive_numeric() || dtype == DataType::Boolean) {
                return Err(ExtractError::ColumnType {
                    path: path.display().to_string(),
                    column: p.clone(),
                    problem: format!(
                        "has type {dtype}; property sums and means need a numeric column"
                    ),
                });
            }
            select.push(col(p.as_str()).cast(DataType::Float64));
        }
        check_text_timestamps(frame.clone(), &sources.occurred_at, &ts_type, &path)?;
        Ok(Events {
            frame: frame.select(select),
            path,
            uid_type,
        })
    }
}
