//! Reading and writing tables (CSV or Parquet, chosen by extension) through
//! polars, converted at the boundary into plain columns the learners and
//! the pipeline work with (they never see a polars type).
//!
//! Cell conventions: empty, whitespace-only and `NaN` cells are missing. A
//! text column whose non-missing cells all parse as numbers is numeric (the
//! Telco table's `TotalCharges` is text only because of 11 blank cells);
//! other text columns are categorical.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

/// Errors reading or writing a table; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The extension is not `.csv`, `.parquet` or `.pq`.
    #[error("{path}: unsupported file type; use a .csv or .parquet file")]
    UnsupportedExtension {
        /// The file.
        path: String,
    },
    /// The file could not be opened.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// polars could not parse the file.
    #[error("{path}: cannot read {format} file: {message}")]
    Parse {
        /// The file.
        path: String,
        /// `CSV` or `Parquet`.
        format: &'static str,
        /// polars' message.
        message: String,
    },
    /// The file has no columns or no rows.
    #[error("{path}: the file is empty ({what})")]
    Empty {
        /// The file.
        path: String,
        /// `no columns` or `a header but no rows`.
        what: &'static str,
    },
    /// A column has a type that cannot be used.
    #[error("{path}: column '{column}' has type {dtype}, which Presage cannot use; drop it with --drop {column}")]
    UnsupportedType {
        /// The file.
        path: String,
        /// The column.
        column: String,
        /// polars' type name.
        dtype: String,
    },
    /// Writing failed.
    #[error("{path}: cannot write: {message}")]
    Write {
        /// The file.
        path: String,
        /// The reason.
        message: String,
    },
}

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers; `NaN` = missing.
    Numeric(Vec<f64>),
    /// Text; `None` = missing.
    Text(Vec<Option<String>>),
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Text(v) => v.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `i` is missing.
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            ColumnData::Numeric(v) => v[i].is_nan(),
            ColumnData::Text(v) => v[i].is_none(),
        }
    }

    /// Row `i` as text (numbers formatted without a trailing `.0`).
    pub fn text(&self, i: usize) -> Option<String> {
        match self {
            ColumnData::Numeric(v) => (!v[i].is_nan()).then(|| format_number(v[i])),
            ColumnData::Text(v) => v[i].clone(),
        }
    }
}

/// Formats a number the way a user wrote it in a CSV (`1`, not `1.0`).
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Header name.
    pub name: String,
    /// Values.
    pub data: ColumnData,
}

/// A table read from one file.
#[derive(Debug, Clone)]
pub struct Table {
    /// Where it was read from.
    pub path: PathBuf,
    /// Columns in file order.
    pub columns: Vec<Column>,
}

impl Table {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.data.len())
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// A table of the given rows, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> Table {
        let columns = self
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                data: match &c.data {
                    ColumnData::Numeric(v) => {
                        ColumnData::Numeric(rows.iter().map(|&r| v[r]).collect())
                    }
                    ColumnData::Text(v) => {
                        ColumnData::Text(rows.iter().map(|&r| v[r].clone()).collect())
                    }
                },
            })
            .collect();
        Table {
            path: self.path.clone(),
            columns,
        }
    }

    /// Column names, comma separated (for error messages).
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

enum Format {
    Csv,
    Parquet,
}

fn format_of(path: &Path) -> Result<Format, TableError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(Format::Csv),
        Some("parquet") | Some("pq") => Ok(Format::Parquet),
        _ => Err(TableError::UnsupportedExtension {
            path: path.display().to_string(),
        }),
    }
}

/// Whether a text cell means "missing".
pub fn is_missing_text(s: &str) -> bool {
    let t = s.trim();
    t.is_empty() || t.eq_ignore_ascii_case("nan")
}

/// Reads a CSV or Parquet file.
pub fn read_table(path: &Path) -> Result<Table, TableError> {
    let display = path.display().to_string();
    let format = format_of(path)?;
    let file = File::open(path).map_err(|source| TableError::Io {
        path: display.clone(),
        source,
    })?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(TableError::Empty {
            path: display,
            what: "no columns",
        });
    }
    let frame = match format {
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(10_000))
            .into_reader_with_file_handle(file)
            .finish()
            .map_err(|e| TableError::Parse {
                path: display.clone(),
                format: "CSV",
                message: e.to_string(),
            })?,
        Format::Parquet => ParquetReader::new(file)
            .finish()
            .map_err(|e| TableError::Parse {
                path: display.clone(),
                format: "Parquet",
                message: e.to_string(),
            })?,
    };
    if frame.width() == 0 {
        return Err(TableError::Empty {
            path: display,
            what: "no columns",
        });
    }
    if frame.height() == 0 {
        return Err(TableError::Empty {
            path: display,
            what: "a header but no rows",
        });
    }
    table_from_frame(&frame, path)
}

/// Converts a polars frame into a [`Table`] (same cell conventions as
/// [`read_table`]); `path` names where it came from in messages.
pub fn table_from_frame(frame: &DataFrame, path: &Path) -> Result<Table, TableError> {
    let display = path.display().to_string();
    let columns = frame
        .columns()
        .iter()
        .map(|c| convert_column(c.as_materialized_series(), &display))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Table {
        path: path.to_path_buf(),
        columns,
    })
}

fn convert_column(series: &Series, path: &str) -> Result<Column, TableError> {
    let name = series.name().to_string();
    let unsupported = || TableError::UnsupportedType {
        path: path.to_string(),
        column: name.clone(),
        dtype: series.dtype().to_string(),
    };
    let data = if series.dtype().is_primitive_numeric() || series.dtype() == &DataType::Boolean {
        let cast = series.cast(&DataType::Float64).map_err(|_| unsupported())?;
        let values = cast.f64().map_err(|_| unsupported())?;
        ColumnData::Numeric(values.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    } else {
        let cast = series.cast(&DataType::String).map_err(|_| unsupported())?;
        let values = cast.str().map_err(|_| unsupported())?;
        let cells: Vec<Option<String>> = values
            .iter()
            .map(|v| {
                v.filter(|s| !is_missing_text(s))
                    .map(|s| s.trim().to_string())
            })
            .collect();
        let parsed: Option<Vec<f64>> = cells
            .iter()
            .map(|c| c.as_ref().map_or(Some(f64::NAN), |s| s.parse::<f64>().ok()))
            .collect();
        match parsed {
            Some(numbers) if cells.iter().any(Option::is_some) => ColumnData::Numeric(numbers),
            _ => ColumnData::Text(cells),
        }
    };
    Ok(Column { name, data })
}

/// Writes columns to a CSV or Parquet file (by extension), atomically.
pub fn write_table(path: &Path, columns: &[Column]) -> Result<(), TableError> {
    let display = path.display().to_string();
    let format = format_of(path)?;
    let height = columns.first().map_or(0, |c| c.data.len());
    let polars_columns: Vec<polars::prelude::Column> = columns
        .iter()
        .map(|c| {
            let name = PlSmallStr::from(c.name.as_str());
            match &c.data {
                ColumnData::Numeric(v) => Series::new(
                    name,
                    v.iter()
                        .map(|x| (!x.is_nan()).then_some(*x))
                        .collect::<Vec<_>>(),
                )
                .into(),
                ColumnData::Text(v) => Series::new(name, v.clone()).into(),
            }
        })
        .collect();
    let write_err = |e: PolarsError| TableError::Write {
        path: display.clone(),
        message: e.to_string(),
    };
    let mut frame = DataFrame::new(height, polars_columns).map_err(write_err)?;
    let mut bytes = Vec::new();
    match format {
        Format::Csv => CsvWriter::new(&mut bytes)
            .finish(&mut frame)
            .map_err(write_err)?,
        Format::Parquet => {
            ParquetWriter::new(&mut bytes)
                .finish(&mut frame)
                .map_err(write_err)?;
        }
    }
    presage_models::write_atomic(path, &bytes).map_err(|e| TableError::Write {
        path: display.clone(),
        message: e.to_string(),
    })
}
