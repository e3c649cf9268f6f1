//! The seam between the executor and the computation: a [`Worker`] trains stages and evaluates runs; the
//! executor decides when, where and on how many threads, and stores what comes back. Nothing here knows what
//! a technology or a mode is, so adding one never touches the executor.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::fs::File;
use std::io::{self, LineWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::plan::{Run, Stage};

/// Trains stages and evaluates runs. Called from several threads at once, each call inside a rayon pool of
/// [`Job::threads`] threads (so `par_iter` and candle's CPU kernels stay within the job's share of cores).
pub trait Worker: Send + Sync {
    /// Trains `stage` into `job.dir` (write the checkpoint under `job.dir.join("checkpoint")`, and per-epoch
    /// numbers in `metrics.json` if useful), starting from the parent stage's finished artifact directory when
    /// `parent` is Some. `job.dir` is a private temporary directory that the executor renames into the store
    /// only after this returns `Ok`, so files in it need no atomic writes.
    fn train(&self, stage: &Stage, parent: Option<&Path>, job: &mut Job) -> anyhow::Result<()>;

    /// Evaluates `run`, from its stage's finished artifact directory when Some. The executor writes
    /// `metrics.json` and `predictions.parquet` from the result.
    fn evaluate(&self, run: &Run, stage: Option<&Path>, job: &mut Job) -> anyhow::Result<Evaluation>;

    /// The device jobs compute on, as recorded in status.json (`cpu`, `cuda:0`).
    fn device(&self) -> String {
        "cpu".to_string()
    }
}

/// What a worker gets besides the stage or run: where to write, how many threads it has, its log and its
/// progress bar.
pub struct Job {
    /// Stage: the temporary artifact directory. Run: the run's folder (`<sweep>/runs/<id>`).
    pub dir: PathBuf,
    /// Threads of the rayon pool the call runs in.
    pub threads: usize,
    /// `log.txt` of this stage or run (line-buffered, so a killed job keeps what it logged).
    pub log: Log,
    /// The job's progress bar (hidden when stderr is not a terminal).
    pub progress: JobProgress,
}

impl Job {
    /// A job writing its log to `dir/log.txt` (truncated), with a hidden progress bar: what the executor
    /// builds, and what a worker's own tests can use.
    pub fn new(dir: impl Into<PathBuf>, threads: usize) -> io::Result<Job> {
        let dir = dir.into();
        let log = Log::create(&dir.join("log.txt"))?;
        Ok(Job { dir, threads, log, progress: JobProgress::hidden() })
    }

    /// Writes one line to the log. A failing log write is ignored: the log is for people, and a full disk
    /// surfaces at the next result write anyway.
    pub fn log(&mut self, line: impl Display) {
        let _ = writeln!(self.log, "{line}");
    }
}

/// A job's `log.txt`.
pub struct Log(LineWriter<File>);

impl Log {
    pub(crate) fn create(path: &Path) -> io::Result<Log> {
        Ok(Log(LineWriter::new(File::create(path)?)))
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A job's progress: set a length (e.g. epochs or batches), advance it, say what is happening.
#[derive(Clone)]
pub struct JobProgress(ProgressBar);

impl JobProgress {
    pub(crate) fn new(bar: ProgressBar) -> JobProgress {
        JobProgress(bar)
    }

    pub fn hidden() -> JobProgress {
        JobProgress(ProgressBar::hidden())
    }

    pub fn set_length(&self, len: u64) {
        if !self.0.is_hidden() && self.0.length() == Some(0) {
            self.0.set_style(super::progress::job_bar_style());
        }
        self.0.set_length(len);
    }

    pub fn set_position(&self, pos: u64) {
        self.0.set_position(pos);
    }

    pub fn inc(&self, delta: u64) {
        self.0.inc(delta);
    }

    pub fn set_message(&self, message: impl Into<String>) {
        self.0.set_message(message.into());
    }

    pub(crate) fn bar(&self) -> &ProgressBar {
        &self.0
    }
}

/// What an evaluation produced.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// One record per (repeat, drift time); at least one.
    pub records: Vec<Record>,
    /// Per-example outputs, written to `predictions.parquet`. Columns (docs/RESULTS.md): `idx`, `label`,
    /// `prediction`, `outputs` (logits or regression value), `repeat`, `drift_s`; extra columns are kept.
    pub predictions: Option<DataFrame>,
}

/// The metrics of one chip (repeat) read at one drift time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub repeat: u32,
    pub drift_s: f64,
    /// Metric name → value. An undefined value (NaN) is written as `null`.
    pub metrics: BTreeMap<String, f64>,
}

/// The columns `predictions.parquet` must have.
pub const PREDICTION_COLUMNS: [&str; 6] = ["idx", "label", "prediction", "outputs", "repeat", "drift_s"];

impl Evaluation {
    /// Checks what the worker returned against the results contract, before anything is written.
    pub fn validate(&self) -> Result<(), String> {
        if self.records.is_empty() {
            return Err("the evaluation returned no records".to_string());
        }
        if let Some(df) = &self.predictions {
            let missing: Vec<&str> = PREDICTION_COLUMNS.iter().copied().filter(|c| df.column(c).is_err()).collect();
            if !missing.is_empty() {
                return Err(format!("the predictions lack the column(s) {}", missing.join(", ")));
            }
        }
        Ok(())
    }
}
