//! The scheduler: decides from the store what is already done (every invocation is a resume), then runs the
//! rest in dependency order (a stage after its parent, a run after its stage) on `jobs` threads, stages first.
//! A job whose stage failed is recorded as failed without running; other jobs go on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::jobs::{self, Blocked, Context};
use super::progress::Label;
use super::select::Selection;
use super::status::{State, Status, read_status};
use super::store::Store;
use super::summary::{JobKind, JobReport, Outcome};
use crate::plan::{Run, Stage};

/// What to recompute besides what is not done.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Policy {
    /// Recompute everything selected.
    pub force: bool,
    /// Rerun what failed in an earlier invocation (otherwise it stays failed and counts as failed).
    pub retry_failed: bool,
}

#[derive(Clone, Copy)]
enum Node<'p> {
    Stage(&'p Stage),
    Run(&'p Run),
}

impl Node<'_> {
    fn label(&self) -> Label<'_> {
        match self {
            Node::Stage(s) => Label { kind: JobKind::Stage, id: &s.id, name: &s.name },
            Node::Run(r) => Label { kind: JobKind::Run, id: &r.id, name: &r.name },
        }
    }
}

/// A stage or run not done yet, for an executor that hands jobs to another system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJob {
    pub kind: JobKind,
    pub id: String,
    pub name: String,
    /// Index (in the same list) of the pending stage this one starts from; None when that is done already.
    pub after: Option<usize>,
}

enum TaskState {
    Waiting,
    Running,
    Finished(Outcome, Option<f64>),
}

struct Task<'p> {
    node: Node<'p>,
    /// Index of the stage this one starts from.
    dep: Option<usize>,
    state: TaskState,
}

/// The task graph of one selection, with the outcomes the store already settles.
pub(crate) struct Schedule<'p> {
    tasks: Vec<Task<'p>>,
}

impl<'p> Schedule<'p> {
    /// Classifies every selected stage and run from its stored status: done → cached, failed → failed (unless
    /// retried), otherwise waiting; a stage is waiting only if something waiting starts from it.
    pub fn new(store: &Store, sweep_dir: &Path, selection: &Selection<'p>, policy: Policy) -> Schedule<'p> {
        let index: HashMap<&str, usize> = selection.stages.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let dep = |id: &Option<String>| id.as_deref().and_then(|id| index.get(id).copied());
        let mut tasks: Vec<Task> = selection
            .stages
            .iter()
            .copied()
            .map(|s| Task { node: Node::Stage(s), dep: dep(&s.parent), state: TaskState::Waiting })
            .collect();
        tasks.extend(selection.runs.iter().copied().map(|r| Task { node: Node::Run(r), dep: dep(&r.stage), state: TaskState::Waiting }));

        let mut needed = vec![false; selection.stages.len()];
        // Runs first, then stages children-first, so that "needed" is known before a stage is classified.
        for i in (selection.stages.len()..tasks.len()).chain((0..selection.stages.len()).rev()) {
            let (dir, is_stage) = match tasks[i].node {
                Node::Stage(s) => (store.stage_dir(&s.id), true),
                Node::Run(r) => (Store::run_dir(sweep_dir, &r.id), false),
            };
            let stored = if policy.force { None } else { read_status(&dir) };
            let state = match stored {
                Some(s) if s.is_done() => TaskState::Finished(Outcome::Cached, None),
                Some(Status { state: State::Failed, error, .. }) if !policy.retry_failed => {
                    let error = error.unwrap_or_else(|| "failed (no error recorded)".to_string());
                    TaskState::Finished(Outcome::Failed { error, earlier: true }, None)
                }
                _ if is_stage && !needed[i] => TaskState::Finished(Outcome::Skipped, None),
                _ => TaskState::Waiting,
            };
            if let (TaskState::Waiting, Some(d)) = (&state, tasks[i].dep) {
                needed[d] = true;
            }
            tasks[i].state = state;
        }
        Schedule { tasks }
    }

    /// Jobs this invocation will execute.
    pub fn waiting(&self) -> usize {
        self.tasks.iter().filter(|t| matches!(t.state, TaskState::Waiting)).count()
    }

    /// Outcomes the store settled before anything ran.
    pub fn settled(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.tasks.iter().filter(|t| matches!(&t.state, TaskState::Finished(o, _) if pred(o))).count()
    }

    /// The jobs an invocation would execute, stages first in plan order, each with the position (in the
    /// returned list) of the waiting stage it starts from: what a batch executor (Slurm) submits.
    pub fn pending(&self) -> Vec<PendingJob> {
        let waiting = |t: &Task| matches!(t.state, TaskState::Waiting);
        let mut position = vec![None; self.tasks.len()];
        for (n, i) in (0..self.tasks.len()).filter(|&i| waiting(&self.tasks[i])).enumerate() {
            position[i] = Some(n);
        }
        let waiting_tasks = self.tasks.iter().filter(|t| waiting(t));
        waiting_tasks
            .map(|t| {
                let label = t.node.label();
                let after = t.dep.and_then(|d| position[d]);
                PendingJob { kind: label.kind, id: label.id.to_string(), name: label.name.to_string(), after }
            })
            .collect()
    }

    /// Executes the waiting jobs on `slots` threads and returns every stage's and run's report.
    pub fn execute(self, cx: &Context, slots: usize) -> Vec<JobReport> {
        let slots = slots.clamp(1, self.waiting().max(1));
        let shared = Shared { state: Mutex::new(self), wake: Condvar::new() };
        std::thread::scope(|scope| {
            for slot in 1..slots {
                let spawned = std::thread::Builder::new().name(format!("pimsweep-slot-{slot}")).spawn_scoped(scope, || shared.work(cx));
                if spawned.is_err() {
                    break; // fewer slots; the current thread below still works through everything
                }
            }
            shared.work(cx);
        });
        let schedule = shared.state.into_inner().unwrap_or_else(PoisonError::into_inner);
        schedule.tasks.into_iter().map(|t| report(cx, t)).collect()
    }

    /// The next job whose stage has finished (stages before runs, in plan order), with the error of that
    /// stage when it failed.
    fn next_ready(&self) -> Option<(usize, Option<String>)> {
        self.tasks.iter().enumerate().find_map(|(i, t)| {
            if !matches!(t.state, TaskState::Waiting) {
                return None;
            }
            match t.dep.map(|d| (&self.tasks[d].node, &self.tasks[d].state)) {
                None => Some((i, None)),
                Some((_, TaskState::Waiting | TaskState::Running)) => None,
                Some((node, TaskState::Finished(outcome, _))) => {
                    let stage = node.label();
                    match outcome {
                        Outcome::Done | Outcome::Cached => Some((i, None)),
                        Outcome::Failed { error, .. } => Some((i, Some(blocked_reason(stage.id, stage.name, error)))),
                        // Unreachable: a stage that something waits on is never skipped.
                        Outcome::Skipped => Some((i, Some(format!("stage {} ({}) was not trained", stage.id, stage.name)))),
                    }
                }
            }
        })
    }
}

struct Shared<'p> {
    state: Mutex<Schedule<'p>>,
    wake: Condvar,
}

impl<'p> Shared<'p> {
    fn lock(&self) -> MutexGuard<'_, Schedule<'p>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One slot: take a ready job, run it, record it, until nothing is waiting or running.
    fn work(&self, cx: &Context) {
        let progress = cx.progress;
        while let Some((i, node, blocked_by)) = self.take() {
            let clock = Instant::now();
            let label = node.label();
            let (outcome, bar) = match &blocked_by {
                Some(reason) => {
                    let which = match node {
                        Node::Stage(s) => Blocked::Stage(&s.id),
                        Node::Run(r) => Blocked::Run(&r.id),
                    };
                    (jobs::fail_blocked(cx, which, reason), None)
                }
                None => {
                    let bar = progress.started(&label);
                    let outcome = match node {
                        Node::Stage(s) => jobs::train_stage(cx, s, bar.clone()),
                        Node::Run(r) => jobs::evaluate_run(cx, r, bar.clone()),
                    };
                    (outcome, Some(bar))
                }
            };
            let wall = clock.elapsed().as_secs_f64();
            progress.finished(&label, bar.as_ref(), &outcome, wall, &log_path(cx, node));
            let mut schedule = self.lock();
            schedule.tasks[i].state = TaskState::Finished(outcome, blocked_by.is_none().then_some(wall));
            drop(schedule);
            self.wake.notify_all();
        }
    }

    /// Waits for a ready job; None when nothing is waiting that could still become ready.
    fn take(&self) -> Option<(usize, Node<'p>, Option<String>)> {
        let mut schedule = self.lock();
        loop {
            if let Some((i, blocked_by)) = schedule.next_ready() {
                schedule.tasks[i].state = TaskState::Running;
                return Some((i, schedule.tasks[i].node, blocked_by));
            }
            if !schedule.tasks.iter().any(|t| matches!(t.state, TaskState::Running)) {
                return None;
            }
            schedule = self.wake.wait(schedule).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

fn log_path(cx: &Context, node: Node) -> std::path::PathBuf {
    match node {
        Node::Stage(s) => cx.store.stage_dir(&s.id).join("log.txt"),
        Node::Run(r) => cx.run_dir(&r.id).join("log.txt"),
    }
}

/// The error of a job not run because the stage it starts from failed.
pub(crate) fn blocked_reason(stage_id: &str, stage_name: &str, error: &str) -> String {
    format!("stage {stage_id} ({stage_name}) failed: {error}")
}

/// Whether a stored or fresh error is a [`blocked_reason`].
fn is_blocked(error: &str) -> bool {
    error.starts_with("stage ") && error.contains(") failed: ")
}

fn report(cx: &Context, task: Task) -> JobReport {
    let label = task.node.label();
    let (outcome, wall_s) = match task.state {
        TaskState::Finished(outcome, wall) => (outcome, wall),
        // Only a dependency cycle could leave a job waiting; the selection rules cycles out.
        TaskState::Waiting | TaskState::Running => (Outcome::failed("not run: what it starts from never finished"), None),
    };
    JobReport {
        kind: label.kind,
        id: label.id.to_string(),
        name: label.name.to_string(),
        blocked: matches!(&outcome, Outcome::Failed { error, .. } if is_blocked(error)),
        outcome,
        log: log_path(cx, task.node),
        wall_s,
    }
}
