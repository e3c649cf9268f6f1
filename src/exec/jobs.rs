//! One stage or one run, from start to stored result: locks, the worker call inside the job's own rayon
//! pool (a panic becomes an error), and the files in the order that makes a kill harmless — artifacts and
//! metrics first, `status.json` = done last.

use std::fs;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow, bail};

use super::lock::StageLock;
use super::panics;
use super::progress::Progress;
use super::status::{Status, read_status, write_status};
use super::store::{self, Store, write_json_atomic, write_parquet_atomic};
use super::summary::Outcome;
use super::worker::{Evaluation, Job, JobProgress, Log, Worker};
use crate::plan::{Run, Stage};

/// What every job of one execution shares.
pub(crate) struct Context<'a> {
    pub store: Store,
    pub sweep_dir: PathBuf,
    pub worker: &'a dyn Worker,
    pub device: String,
    pub threads: usize,
    pub force: bool,
    pub progress: &'a Progress,
}

impl Context<'_> {
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        Store::run_dir(&self.sweep_dir, run_id)
    }
}

/// Trains a stage into the shared store. Another sweep may be training it: the exclusive stage lock makes
/// this wait, and a stage found done afterwards is `Cached`.
pub(crate) fn train_stage(cx: &Context, stage: &Stage, progress: JobProgress) -> Outcome {
    // Ancestors first: the parent's shared lock before this stage's exclusive one.
    let parent = stage.parent.as_deref().map(|p| lock_finished_stage(cx, p));
    let waiting = || cx.progress.note(&format!("waiting for stage {} ({}): another pimsweep process holds its lock", stage.id, stage.name));
    let _own = match StageLock::exclusive(&cx.store.stage_lock(&stage.id), waiting) {
        Ok(lock) => lock,
        Err(e) => return Outcome::failed(first_line(&e)),
    };
    if !cx.force && read_status(&cx.store.stage_dir(&stage.id)).is_some_and(|s| s.is_done()) {
        return Outcome::Cached;
    }
    store::remove_stage_leftovers(&cx.store, &stage.id);
    let clock = Instant::now();
    let running = Status::running(cx.threads, &cx.device);
    let temp = match store::new_stage_temp_dir(&cx.store, &stage.id) {
        Ok(dir) => dir,
        Err(e) => return Outcome::failed(first_line(&e)),
    };
    let mut job = match Job::new(&temp, cx.threads) {
        Ok(job) => Job { progress, ..job },
        Err(e) => return Outcome::failed(format!("cannot create {}: {e}", temp.join("log.txt").display())),
    };
    let trained = (|| {
        // The parent's lock is held (bound, not dropped) until training ends.
        let (_parent_lock, parent_dir) = match parent {
            Some(locked) => locked.map(|(lock, dir)| (Some(lock), Some(dir)))?,
            None => (None, None),
        };
        in_pool(cx.threads, || cx.worker.train(stage, parent_dir.as_deref(), &mut job))
    })();
    if let Err(e) = &trained {
        log_error(&mut job.log, e);
    }
    drop(job);
    // A failed attempt is installed too, so that its log sits where the status says.
    match store::install_stage_dir(&cx.store, &temp, &stage.id) {
        Ok(dir) => conclude(&dir, running, clock, trained, None),
        Err(e) => {
            let _ = fs::remove_dir_all(&temp);
            Outcome::failed(first_line(&e))
        }
    }
}

/// Evaluates a run into its folder of the sweep.
pub(crate) fn evaluate_run(cx: &Context, run: &Run, progress: JobProgress) -> Outcome {
    let dir = cx.run_dir(&run.id);
    let clock = Instant::now();
    let running = Status::running(cx.threads, &cx.device);
    let started = (|| -> Result<Job> {
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        store::remove_temp_files(&dir);
        write_status(&dir, &running)?;
        let job = Job::new(&dir, cx.threads).with_context(|| format!("cannot create {}", dir.join("log.txt").display()))?;
        Ok(Job { progress, ..job })
    })();
    let mut job = match started {
        Ok(job) => job,
        Err(e) => return Outcome::failed(first_line(&e)),
    };
    let evaluated = (|| {
        let (_stage_lock, stage_dir) = match &run.stage {
            Some(id) => lock_finished_stage(cx, id).map(|(lock, dir)| (Some(lock), Some(dir)))?,
            None => (None, None),
        };
        let evaluation = in_pool(cx.threads, || cx.worker.evaluate(run, stage_dir.as_deref(), &mut job))?;
        write_evaluation(&dir, &evaluation)
    })();
    conclude(&dir, running, clock, evaluated, Some(&mut job.log))
}

/// Records a stage or run as failed without running it, because what it starts from failed.
pub(crate) fn fail_blocked(cx: &Context, stage_or_run: Blocked, reason: &str) -> Outcome {
    let recorded = (|| -> Result<()> {
        let (dir, _lock) = match stage_or_run {
            Blocked::Run(id) => (cx.run_dir(id), None),
            Blocked::Stage(id) => (cx.store.stage_dir(id), Some(StageLock::exclusive(&cx.store.stage_lock(id), || {})?)),
        };
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log = dir.join("log.txt");
        fs::write(&log, format!("not run: {reason}\n")).with_context(|| format!("cannot write {}", log.display()))?;
        let status = Status::running(cx.threads, &cx.device).finished(0.0, Some(reason.to_string()));
        write_status(&dir, &status)
    })();
    match recorded {
        Ok(()) => Outcome::failed(reason),
        Err(e) => Outcome::failed(format!("{reason} (and {})", first_line(&e))),
    }
}

/// The id of a stage or run that cannot run.
#[derive(Clone, Copy)]
pub(crate) enum Blocked<'a> {
    Stage(&'a str),
    Run(&'a str),
}

/// A shared lock on a stage that must be done, and its artifact folder.
fn lock_finished_stage(cx: &Context, id: &str) -> Result<(StageLock, PathBuf)> {
    let waiting = || cx.progress.note(&format!("waiting for stage {id}: another pimsweep process holds its lock"));
    let lock = StageLock::shared(&cx.store.stage_lock(id), waiting)?;
    let dir = cx.store.stage_dir(id);
    match read_status(&dir) {
        Some(s) if s.is_done() => Ok((lock, dir)),
        // Only a retraining by another process (--force) gets here, after this invocation saw it done.
        other => bail!(
            "stage {id} is not finished (status: {}); was it retrained meanwhile? run the sweep again",
            other.map_or("missing".to_string(), |s| format!("{:?}", s.state).to_lowercase())
        ),
    }
}

/// Writes metrics.json, then predictions.parquet (or removes an older attempt's).
fn write_evaluation(dir: &Path, evaluation: &Evaluation) -> Result<()> {
    evaluation.validate().map_err(|e| anyhow!(e))?;
    write_json_atomic(&dir.join("metrics.json"), &serde_json::json!({ "records": evaluation.records }))?;
    let predictions = dir.join("predictions.parquet");
    match &evaluation.predictions {
        Some(df) => write_parquet_atomic(&predictions, df),
        None => match fs::remove_file(&predictions) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove the stale {}", predictions.display()))
            }
            _ => Ok(()),
        },
    }
}

/// Writes the final status (done, or failed with the error's first line; the whole chain goes to the log).
fn conclude(dir: &Path, running: Status, clock: Instant, result: Result<()>, log: Option<&mut Log>) -> Outcome {
    let wall = clock.elapsed().as_secs_f64();
    let result = result.and_then(|()| write_status(dir, &running.clone().finished(wall, None)));
    match result {
        Ok(()) => Outcome::Done,
        Err(e) => {
            if let Some(log) = log {
                log_error(log, &e);
            }
            let error = first_line(&e);
            let _ = write_status(dir, &running.finished(wall, Some(error.clone())));
            Outcome::failed(error)
        }
    }
}

/// Runs `work` in a fresh rayon pool of `threads` threads (so the job's parallel kernels use exactly its
/// share of cores, never the global pool), turning a panic into an error that says where it happened.
fn in_pool<T: Send>(threads: usize, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    panics::install_hook();
    let job = panics::next_job();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(move |i| panics::thread_name(job, i))
        // A panic in a detached rayon task would otherwise abort the whole process.
        .panic_handler(|payload| eprintln!("warning: a background task panicked: {}", panics::message(payload.as_ref())))
        .build()
        .context("cannot start the job's thread pool")?;
    let in_job = || {
        crate::blas::limit_threads_of_this_thread(threads);
        work()
    };
    match catch_unwind(AssertUnwindSafe(|| pool.install(in_job))) {
        Ok(result) => result,
        Err(payload) => Err(anyhow!("panicked: {}", panics::take(job).unwrap_or_else(|| panics::message(payload.as_ref())))),
    }
}

/// The error and its causes on one line: `cannot load x: file not found`.
pub(crate) fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or_default().to_string()
}

/// The whole chain, one cause per line, without a backtrace.
fn log_error(log: &mut Log, e: &anyhow::Error) {
    let _ = writeln!(log, "error: {e}");
    for cause in e.chain().skip(1) {
        let _ = writeln!(log, "  caused by: {cause}");
    }
    let _ = log.flush();
}
