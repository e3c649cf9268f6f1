//! [`execute_one`]: exactly one stage or run of a plan, by id, into the shared results root — what a Slurm
//! array task (`pimsweep exec`) does. The same jobs, locks and atomic status files as a local execution;
//! no sweep lock, since many tasks of one sweep run at once (each writes only its own folder).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use super::jobs::{self, Blocked, Context};
use super::progress::{Label, Output, Progress};
use super::status::{State, read_status};
use super::store::Store;
use super::summary::{JobKind, Outcome};
use super::worker::Worker;
use crate::plan::Plan;

/// Trains the stage or evaluates the run `id` of `plan` on `threads` threads. A job whose stage failed is
/// recorded as failed without running, as the local scheduler does; one whose stage is not done yet is an
/// error (the submission orders them with dependencies). `force` retrains a stage found done.
pub fn execute_one(plan: &Plan, worker: &dyn Worker, results: &Path, id: &str, threads: usize, force: bool) -> Result<Outcome> {
    let store = Store::new(results);
    let sweep_dir = store.sweep_dir(&plan.sweep)?;
    std::fs::create_dir_all(&sweep_dir).with_context(|| format!("cannot create {}", sweep_dir.display()))?;
    let (kind, name, dep) = if let Some(stage) = plan.stage(id) {
        (JobKind::Stage, stage.name.as_str(), stage.parent.as_deref())
    } else if let Some(run) = plan.run(id) {
        (JobKind::Run, run.name.as_str(), run.stage.as_deref())
    } else {
        bail!(
            "no stage or run {id} in the plan of sweep {}: was the sweep file changed since it was submitted? submit it again",
            plan.sweep
        );
    };
    let progress = Progress::new(Output::Lines, &plan.sweep, 1, 0, 0);
    let cx = Context { store, sweep_dir, worker, device: worker.device(), threads: threads.max(1), force, progress: &progress };
    let label = Label { kind, id, name };
    let blocked_by = match dep.map(|d| (d, read_status(&cx.store.stage_dir(d)))) {
        None => None,
        Some((_, Some(status))) if status.is_done() => None,
        Some((d, Some(status))) if status.state == State::Failed => {
            let stage = plan.stage(d).map_or(d, |s| s.name.as_str());
            Some(super::schedule::blocked_reason(d, stage, status.error.as_deref().unwrap_or("no error recorded")))
        }
        Some((d, _)) => bail!(
            "stage {d}, which {} {id} starts from, has no result yet (on Slurm: its task ended without one, e.g. at its time limit; `pimsweep status` says why)",
            kind.name()
        ),
    };
    let clock = Instant::now();
    let (outcome, bar) = match &blocked_by {
        Some(reason) => {
            let which = if kind == JobKind::Stage { Blocked::Stage(id) } else { Blocked::Run(id) };
            (jobs::fail_blocked(&cx, which, reason), None)
        }
        None => {
            let bar = progress.started(&label);
            let outcome = match kind {
                JobKind::Stage => jobs::train_stage(&cx, plan.stage(id).expect("found above"), bar.clone()),
                JobKind::Run => jobs::evaluate_run(&cx, plan.run(id).expect("found above"), bar.clone()),
            };
            (outcome, Some(bar))
        }
    };
    let log = match kind {
        JobKind::Stage => cx.store.stage_dir(id).join("log.txt"),
        JobKind::Run => cx.run_dir(id).join("log.txt"),
    };
    progress.finished(&label, bar.as_ref(), &outcome, clock.elapsed().as_secs_f64(), &log);
    progress.finish();
    Ok(outcome)
}
