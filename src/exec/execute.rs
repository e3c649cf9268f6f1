//! [`execute`]: one invocation of a plan against a results root — select, lock the sweep folder, write
//! plan.json and each run's params.json, then schedule what is not done.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use super::budget::{Budget, available_cores};
use super::jobs::Context;
use super::lock::SweepLock;
use super::progress::{Output, Progress};
use super::schedule::{PendingJob, Policy, Schedule};
use super::select::{Selection, select};
use super::store::{self, Store, write_json_atomic};
use super::summary::{Outcome, Summary};
use super::worker::Worker;
use crate::plan::{self, Plan, Run};
use crate::sweep::Clause;

/// How to execute a plan.
#[derive(Debug, Clone)]
pub struct Options {
    /// The results root (`results/`); the sweep writes `<results>/<sweep>/`, stages `<results>/.store/`.
    pub results: PathBuf,
    pub budget: Budget,
    /// `--only` filters: a run is selected when it matches every clause of every filter.
    pub only: Vec<Vec<Clause>>,
    /// Recompute every selected stage and run.
    pub force: bool,
    /// Rerun stages and runs that failed in an earlier invocation.
    pub retry_failed: bool,
    /// The `reports` field of plan.json ([`plan::reports_json`] of the sweep).
    pub reports: Value,
    pub output: Output,
}

impl Options {
    /// Defaults: all runs, the default budget for this machine's cores, progress bars on a terminal.
    pub fn new(results: impl Into<PathBuf>) -> Options {
        Options {
            results: results.into(),
            budget: Budget::resolve(None, None, available_cores()),
            only: Vec::new(),
            force: false,
            retry_failed: false,
            reports: json!({"tables": [], "plots": []}),
            output: Output::Auto,
        }
    }
}

/// Executes the selected part of `plan`: trains the stages its runs need and evaluates the runs, skipping
/// what is done. Errors only when it cannot start (nothing selected, the sweep folder locked by another
/// process, plan.json or params.json not writable); a failing stage or run is in the [`Summary`] instead.
pub fn execute(plan: &Plan, worker: &dyn Worker, options: &Options) -> Result<Summary> {
    let clock = Instant::now();
    let Prepared { store, sweep_dir, selection, lock: _lock } = prepare(plan, options, |_| true)?;
    let policy = Policy { force: options.force, retry_failed: options.retry_failed };
    let schedule = Schedule::new(&store, &sweep_dir, &selection, policy);
    let progress = Progress::new(
        options.output,
        &plan.sweep,
        schedule.waiting(),
        schedule.settled(|o| *o == Outcome::Cached),
        schedule.settled(Outcome::is_failed),
    );
    let cx = Context {
        store,
        sweep_dir: sweep_dir.clone(),
        worker,
        device: worker.device(),
        threads: options.budget.threads_per_job.max(1),
        force: options.force,
        progress: &progress,
    };
    progress.note(&format!(
        "{}: {} runs and {} stages selected; {} to compute ({} × {} threads), {} already done, {} failed earlier{}",
        plan.sweep,
        selection.runs.len(),
        selection.stages.len(),
        schedule.waiting(),
        options.budget.jobs,
        options.budget.threads_per_job,
        schedule.settled(|o| *o == Outcome::Cached),
        schedule.settled(Outcome::is_failed),
        if schedule.settled(Outcome::is_failed) > 0 { " (--retry-failed reruns them)" } else { "" }
    ));
    let jobs = schedule.execute(&cx, options.budget.jobs);
    progress.finish();
    Ok(Summary { sweep: plan.sweep.clone(), dir: sweep_dir, jobs, budget: options.budget, wall: clock.elapsed() })
}

/// A sweep folder ready for computing, locked against other `run`s while this is held.
struct Prepared<'p> {
    store: Store,
    sweep_dir: PathBuf,
    selection: Selection<'p>,
    lock: SweepLock,
}

/// Selects, creates and locks the sweep folder, clears a killed writer's temporary files, writes plan.json
/// and the params.json of each selected run that `write_params_of` accepts.
fn prepare<'p>(plan: &'p Plan, options: &Options, write_params_of: impl Fn(&Run) -> bool) -> Result<Prepared<'p>> {
    let selection = select(plan, &options.only)?;
    let store = Store::new(&options.results);
    let sweep_dir = store.sweep_dir(&plan.sweep)?;
    std::fs::create_dir_all(&sweep_dir).with_context(|| format!("cannot create {}", sweep_dir.display()))?;
    let lock = SweepLock::acquire(&sweep_dir)?;
    store::remove_temp_files(&sweep_dir); // a killed writer's, now that no other process writes here

    let mut plan_json = plan::plan_json(plan);
    if let Value::Object(map) = &mut plan_json {
        map.insert("reports".to_string(), options.reports.clone());
    }
    write_json_atomic(&sweep_dir.join("plan.json"), &plan_json)?;
    for run in selection.runs.iter().filter(|r| write_params_of(r)) {
        write_params(&Store::run_dir(&sweep_dir, &run.id), plan, run)?;
    }
    Ok(Prepared { store, sweep_dir, selection, lock })
}

/// For a batch executor (Slurm): prepares the sweep folder as [`execute`] does and returns it with the
/// selected stages and runs that are not done, stages first. Runs for which `busy` holds (queued or running
/// elsewhere) keep their folder untouched and are left out, as are the stages only they need.
pub fn pending_jobs(plan: &Plan, options: &Options, busy: &dyn Fn(&str) -> bool) -> Result<(PathBuf, Vec<PendingJob>)> {
    let Prepared { store, sweep_dir, selection, .. } = prepare(plan, options, |r| !busy(&r.id))?;
    let policy = Policy { force: options.force, retry_failed: options.retry_failed };
    let pending = Schedule::new(&store, &sweep_dir, &selection, policy).pending();
    Ok((sweep_dir, without_busy(pending, busy)))
}

/// Drops the busy jobs and, transitively, the jobs that start from them (they wait on a submission that is
/// still queued), renumbering `after`.
fn without_busy(pending: Vec<PendingJob>, busy: &dyn Fn(&str) -> bool) -> Vec<PendingJob> {
    let mut keep: Vec<bool> = pending.iter().map(|j| !busy(&j.id)).collect();
    loop {
        let dropped: Vec<usize> = (0..pending.len()).filter(|&i| keep[i] && pending[i].after.is_some_and(|a| !keep[a])).collect();
        if dropped.is_empty() {
            break;
        }
        dropped.into_iter().for_each(|i| keep[i] = false);
    }
    let mut new_index = vec![None; pending.len()];
    (0..pending.len()).filter(|&i| keep[i]).enumerate().for_each(|(n, i)| new_index[i] = Some(n));
    let kept = pending.into_iter().enumerate().filter(|(i, _)| keep[*i]);
    kept.map(|(_, job)| PendingJob { after: job.after.and_then(|a| new_index[a]), ..job }).collect()
}

/// `runs/<id>/params.json`: the run as planned (docs/RESULTS.md). Left alone when already identical.
fn write_params(dir: &std::path::Path, plan: &Plan, run: &Run) -> Result<()> {
    let params = json!({
        "id": run.id,
        "name": run.name,
        "sweep": plan.sweep,
        "stage": run.stage,
        "values": run.values,
        "drift_s": run.drift_s,
        "params": run.canonical,
    });
    let path = dir.join("params.json");
    let unchanged = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()) == Some(params.clone());
    if unchanged {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    store::remove_temp_files(dir);
    write_json_atomic(&path, &params)
}
