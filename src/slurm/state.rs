//! Slurm's side of `pimsweep status` for a submitted sweep. The status files stay the source of truth; for
//! the runs and stages they leave unfinished, the latest submission's array task says whether it is queued
//! (and why), running, or ended without writing a result (timeout, preemption, node failure, cancelled),
//! which `status` then reports as failed with Slurm's reason and the task's log.

use std::collections::BTreeMap;
use std::path::Path;

use super::cluster::{self, TaskState};
use super::submit::{Submission, submissions};
use crate::report::progress::{Failure, Progress, Unfinished};
use crate::report::status_file::{State, read_status};

/// Adds Slurm's view to `progress` and returns the lines to print (none when the sweep was never submitted).
pub fn annotate(sweep_dir: &Path, progress: &mut Progress) -> Vec<String> {
    let subs = submissions(sweep_dir);
    let Some(latest) = subs.last() else { return Vec::new() };
    let mut lines = vec![format!("slurm: {} submission(s), latest {} ({})", subs.len(), latest.dir.display(), describe_jobs(latest))];
    // The latest submission that computes each id.
    let mut task_of: BTreeMap<&str, (&Submission, usize)> = BTreeMap::new();
    for s in &subs {
        for t in &s.manifest.tasks {
            task_of.insert(t.id.as_str(), (s, t.index));
        }
    }
    let job_ids: Vec<String> = subs.iter().flat_map(|s| s.jobs.arrays.values().cloned()).collect();
    let live = match cluster::task_states(&job_ids) {
        Ok(states) => states,
        Err(e) => {
            lines.push(format!("  (Slurm not reachable from here: {e:#}; showing the status files only)"));
            return lines;
        }
    };
    let mut accounted: Option<Result<cluster::TaskStates, String>> = None;
    let mut queued: BTreeMap<String, usize> = BTreeMap::new();
    let mut running = 0;
    let unfinished: Vec<Unfinished> = progress.unfinished.clone();
    for u in &unfinished {
        let Some(&(sub, index)) = task_of.get(u.id.as_str()) else { continue };
        let Some(key) = sub.task_of(index) else { continue };
        let state = live.get(&key);
        match state {
            Some(st) if st.state == "PENDING" => *queued.entry(st.reason.clone()).or_default() += 1,
            Some(st) if st.is_live() => running += 1,
            _ => {
                // The task ended. Its status may have been written just now: read it again before blaming Slurm.
                if read_status(&u.folder).ok().flatten().is_some_and(|s| matches!(s.state, State::Done | State::Failed)) {
                    continue;
                }
                let reason = match state {
                    Some(st) => describe_end(st),
                    None => {
                        let acct = accounted.get_or_insert_with(|| cluster::accounted_states(&job_ids).map_err(|e| format!("{e:#}")));
                        match acct {
                            Ok(states) => states.get(&key).map_or_else(|| "Slurm has no record of it".to_string(), describe_end),
                            Err(e) => format!("Slurm no longer remembers it and keeps no accounting ({e})"),
                        }
                    }
                };
                let log = sub.log_of(index).unwrap_or_else(|| sub.dir.join("logs"));
                let error = format!("Slurm task {}_{} ended without writing a result: {reason}", key.0, key.1);
                progress.mark_failed(u, Failure { kind: u.kind, id: u.id.clone(), name: u.name.clone(), error: Some(error), log });
            }
        }
    }
    let queued_text: Vec<String> = queued.iter().map(|(reason, n)| format!("{n} ({reason})")).collect();
    lines.push(format!(
        "  in Slurm now: {} queued{}, {running} running",
        queued.values().sum::<usize>(),
        if queued_text.is_empty() { String::new() } else { format!(": {}", queued_text.join(", ")) }
    ));
    lines
}

/// `FAILED (NonZeroExitCode)`, `TIMEOUT (TimeLimit)`, `CANCELLED`.
fn describe_end(st: &TaskState) -> String {
    if st.reason.is_empty() || st.reason == "None" { st.state.clone() } else { format!("{} ({})", st.state, st.reason) }
}

fn describe_jobs(s: &Submission) -> String {
    let mut parts: Vec<String> =
        s.manifest.arrays.iter().filter_map(|a| Some(format!("job {} {}", s.jobs.arrays.get(&a.name)?, a.name))).collect();
    if let Some(r) = &s.jobs.report {
        parts.push(format!("job {r} report"));
    }
    if parts.is_empty() { "nothing submitted".to_string() } else { parts.join(", ") }
}
