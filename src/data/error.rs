//! The data layer's error type: every failure names what it was reading (file, column, row or line) and
//! what it expected, so a sweep that stops on bad data says where to look.

use std::path::PathBuf;

use crate::task::Task;

/// An error from loading GLUE data, tokenising it or computing metrics.
///
/// Messages are self-contained (the underlying library error is folded into the text), so printing the
/// top-level error is enough. Fields are named by the messages they fill.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // fields
pub enum DataError {
    /// A file could not be opened or read.
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },

    /// A file is not readable Parquet.
    #[error("{}: cannot read Parquet: {cause}", path.display())]
    Parquet { path: PathBuf, cause: polars::error::PolarsError },

    /// A Parquet file or TSV header lacks a column the task needs.
    #[error("{}: missing column `{column}` (expected {expected}; columns present: {present})", path.display())]
    MissingColumn { path: PathBuf, column: String, expected: String, present: String },

    /// A Parquet column has the wrong data type.
    #[error("{}: column `{column}` has type {found}, expected {expected}", path.display())]
    ColumnType { path: PathBuf, column: String, found: String, expected: String },

    /// A Parquet value is null or out of range.
    #[error("{}: column `{column}`, row {row}: {problem}", path.display())]
    BadValue { path: PathBuf, column: String, row: usize, problem: String },

    /// Offline, and the split's file is not in the hub cache.
    #[error(
        "dataset `{dataset}`, task `{task}`, split `{split}`: file `{file}` is not cached under {} \
         and HF_HUB_OFFLINE is set (unset it to download, or point HF_HOME at a cache that has it)",
        cache.display()
    )]
    NotCached { dataset: String, task: Task, split: String, file: String, cache: PathBuf },

    /// Downloading from the hub failed.
    #[error("dataset `{dataset}`: {action} (Hugging Face hub): {cause}")]
    Hub {
        dataset: String,
        /// What was being done, e.g. "cannot fetch `cola/train-00000-of-00001.parquet`".
        action: String,
        cause: String,
    },

    /// A TSV line is malformed (field count, label, encoding).
    #[error("{}:{line}: {problem}", path.display())]
    Tsv { path: PathBuf, line: usize, problem: String },

    /// The task has no split of that name.
    #[error("task `{task}` has no split `{split}` (known: {})", task.splits().join(", "))]
    UnknownSplit { task: Task, split: String },

    /// Loading or applying a tokenizer failed.
    #[error("tokenizer {source_name}: {problem}")]
    Tokenizer { source_name: String, problem: String },

    /// Inputs a metric cannot score (empty, mismatched, hidden labels, non-finite values).
    #[error("metric: {0}")]
    Metric(String),

    /// A caller-supplied parameter is out of range (batch size, max length, label kinds).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias for the data layer.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Validates a split name against the task's published splits.
pub(crate) fn check_split(task: Task, split: &str) -> Result<()> {
    if task.splits().contains(&split) { Ok(()) } else { Err(DataError::UnknownSplit { task, split: split.to_string() }) }
}
