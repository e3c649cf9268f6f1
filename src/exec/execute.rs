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
use super::schedule::{Policy, Schedule};
use super::select::select;
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
    let selection = select(plan, &options.only)?;
    let store = Store::new(&options.results);
    let sweep_dir = store.sweep_dir(&plan.sweep)?;
    std::fs::create_dir_all(&sweep_dir).with_context(|| format!("cannot create {}", sweep_dir.display()))?;
    let _lock = SweepLock::acquire(&sweep_dir)?;
    store::remove_temp_files(&sweep_dir); // a killed writer's, now that no other process writes here

    let mut plan_json = plan::plan_json(plan);
    if let Value::Object(map) = &mut plan_json {
        map.insert("reports".to_string(), options.reports.clone());
    }
    write_json_atomic(&sweep_dir.join("plan.json"), &plan_json)?;
    for run in &selection.runs {
        write_params(&Store::run_dir(&sweep_dir, &run.id), plan, run)?;
    }

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
