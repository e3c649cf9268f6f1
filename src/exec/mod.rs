//! The executor and the result store: `pimsweep run`. It trains a plan's stages and evaluates its runs
//! through a [`Worker`] (the seam to the models: the executor never knows what a stage or run computes), in
//! dependency order, several jobs at once under a thread budget, resuming from what the store holds, and
//! writes the results folder described in docs/RESULTS.md.
//!
//! The models plug in by implementing [`Worker`] and returning it from [`default_worker`]; the library entry
//! point is [`execute`] (what the tests drive with their own worker), the command is [`cmd::run`].
//!
//! ```text
//! worker.rs    the seam: Worker, Job (dir, threads, log, progress), Evaluation
//! execute.rs   execute(plan, worker, options): select, lock, plan.json, params.json, schedule
//! select.rs    --only: the runs selected and the stages they need
//! schedule.rs  resume from the store, dependency order, parallel slots, failures that do not spread
//! one.rs       execute_one: exactly one stage or run by id (a Slurm array task)
//! jobs.rs      one stage or run: locks, its own rayon pool, panics caught, files in a kill-safe order
//! panics.rs    a panic in a job becomes its error (with its location), not output over the bars
//! store.rs     paths, atomic writes, stage folders renamed into place
//! status.rs    status.json
//! lock.rs      the sweep lock and the stage locks
//! budget.rs    jobs × threads per job ≤ cores
//! progress.rs  bars on a terminal, plain lines elsewhere
//! summary.rs   what an execution did, and the summary printed at the end
//! cmd.rs       the `run` command
//! ```

mod budget;
pub mod cmd;
mod execute;
mod jobs;
mod lock;
mod one;
mod panics;
mod progress;
mod schedule;
mod select;
pub mod status;
pub mod store;
mod summary;
mod worker;

pub use budget::{Budget, available_cores};
pub use execute::{Options, execute, pending_jobs};
pub use lock::{StageLock, SweepLock};
pub use one::execute_one;
pub use progress::Output;
pub use schedule::PendingJob;
pub use select::{Selection, select};
pub use summary::{JobKind, JobReport, Outcome, Summary, format_wall};
pub use worker::{Evaluation, Job, JobProgress, Log, PREDICTION_COLUMNS, Record, Worker};

/// The worker of `pimsweep exec`: [`crate::work::LocalWorker`] on `device` (`run` builds its own, to size its
/// jobs by the GPUs it opened).
pub fn default_worker(device: crate::device::DeviceSpec) -> anyhow::Result<Box<dyn Worker>> {
    Ok(Box::new(crate::work::LocalWorker::from_env(device)?))
}
