//! How far a sweep has come: each planned run's and stage's state from its status.json (none yet: pending),
//! and what went wrong in the failed ones. Behind `pimsweep status` and the counts in report.md.

use std::path::{Path, PathBuf};

use super::plan_file::PlanFile;
use super::status_file::{State, read_status};

/// Runs or stages per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub done: usize,
    pub failed: usize,
    pub running: usize,
    pub pending: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.done + self.failed + self.running + self.pending
    }

    fn add(&mut self, state: State) {
        match state {
            State::Done => self.done += 1,
            State::Failed => self.failed += 1,
            State::Running => self.running += 1,
            State::Pending => self.pending += 1,
        }
    }

    /// `12 done, 1 failed, 0 running, 3 pending`.
    pub fn summary(&self) -> String {
        format!("{} done, {} failed, {} running, {} pending", self.done, self.failed, self.running, self.pending)
    }
}

/// A failed run or stage: what it is, its error line, and where its full log is.
#[derive(Debug, Clone)]
pub struct Failure {
    /// "run" or "stage".
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    pub error: Option<String>,
    pub log: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub runs: Counts,
    pub stages: Counts,
    pub failures: Vec<Failure>,
    /// Unreadable status files (counted as pending).
    pub warnings: Vec<String>,
    /// The runs and stages neither done nor failed (pending or running), for `status` to ask Slurm about.
    pub unfinished: Vec<Unfinished>,
}

/// A run or stage whose status file is not final.
#[derive(Debug, Clone)]
pub struct Unfinished {
    /// "run" or "stage".
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    /// Its folder (status.json, log.txt).
    pub folder: PathBuf,
    pub state: State,
}

impl Progress {
    /// Counts an unfinished run or stage as failed instead (a Slurm task that ended without a status).
    pub fn mark_failed(&mut self, unfinished: &Unfinished, failure: Failure) {
        let counts = if unfinished.kind == "run" { &mut self.runs } else { &mut self.stages };
        match unfinished.state {
            State::Running => counts.running -= 1,
            _ => counts.pending -= 1,
        }
        counts.failed += 1;
        self.failures.push(failure);
    }
}

/// The state of every run and stage in plan.json. Stages live in the shared store beside the sweep folder
/// (`<results>/.store/stages/<id>/`).
pub fn progress(sweep_dir: &Path, plan: &PlanFile) -> Progress {
    let mut p = Progress::default();
    let store = sweep_dir.parent().unwrap_or(Path::new(".")).join(".store").join("stages");
    let runs = plan.runs.iter().map(|r| ("run", sweep_dir.join("runs").join(&r.id), &r.id, &r.name));
    let stages = plan.stages.iter().map(|s| ("stage", store.join(&s.id), &s.id, &s.name));
    for (kind, folder, id, name) in runs.chain(stages) {
        let state = match read_status(&folder) {
            Ok(Some(status)) => {
                if status.state == State::Failed {
                    let log = folder.join("log.txt");
                    p.failures.push(Failure { kind, id: id.clone(), name: name.clone(), error: status.error.clone(), log });
                }
                status.state
            }
            Ok(None) => State::Pending,
            Err(e) => {
                p.warnings.push(format!("{kind} {id} counted as pending: {e:#}"));
                State::Pending
            }
        };
        if matches!(state, State::Pending | State::Running) {
            p.unfinished.push(Unfinished { kind, id: id.clone(), name: name.clone(), folder: folder.clone(), state });
        }
        if kind == "run" { p.runs.add(state) } else { p.stages.add(state) }
    }
    p
}
