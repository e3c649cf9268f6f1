//! `pimsweep run SWEEP --executor slurm`: the selected stages and runs that are not done (and not still queued
//! from an earlier submission) become a manifest and job arrays under `<sweep>/slurm/NNN/`, submitted with
//! their dependencies; returns at once with the job ids.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::cluster;
use super::manifest::Manifest;
use super::script::{self, Paths, Resources};
use crate::exec::store::{Store, write_atomic, write_json_atomic};
use crate::exec::{Options, pending_jobs};
use crate::plan::Plan;

/// What a submission's `jobs.json` records: the Slurm job id of each array, and of the report job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// Array name → job id.
    pub arrays: std::collections::BTreeMap<String, String>,
    pub report: Option<String>,
}

/// One earlier or new submission: its folder, manifest and job ids.
#[derive(Debug, Clone)]
pub struct Submission {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub jobs: Jobs,
}

impl Submission {
    /// The Slurm log of a manifest index: `logs/<array job>_<task>.out`.
    pub fn log_of(&self, index: usize) -> Option<PathBuf> {
        let array = self.manifest.array_of(index)?;
        let job = self.jobs.arrays.get(&array.name)?;
        Some(self.dir.join("logs").join(format!("{job}_{}.out", index - array.offset)))
    }

    /// (array job id, task id) of a manifest index, once submitted.
    pub fn task_of(&self, index: usize) -> Option<(String, usize)> {
        let array = self.manifest.array_of(index)?;
        Some((self.jobs.arrays.get(&array.name)?.clone(), index - array.offset))
    }
}

/// The submissions of a sweep folder, oldest first (`slurm/001`, `slurm/002`, …); unreadable ones are skipped.
pub fn submissions(sweep_dir: &Path) -> Vec<Submission> {
    let Ok(entries) = std::fs::read_dir(sweep_dir.join("slurm")) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.join("manifest.json").is_file()).collect();
    dirs.sort();
    dirs.into_iter()
        .filter_map(|dir| {
            let manifest = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).ok()?).ok()?;
            let jobs = std::fs::read_to_string(dir.join("jobs.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
            Some(Submission { dir, manifest, jobs })
        })
        .collect()
}

/// Submits the sweep; prints what it submitted (or that nothing is left to submit).
pub fn submit(sweep_file: &Path, plan: &Plan, options: &Options, resources: &Resources) -> Result<Option<Submission>> {
    let results = std::path::absolute(&options.results).context("cannot resolve the results folder")?;
    let sweep_file = std::path::absolute(sweep_file).context("cannot resolve the sweep file")?;
    let sweep_dir = Store::new(&results).sweep_dir(&plan.sweep)?;

    // Stages and runs still queued or running from an earlier submission are not submitted twice.
    let earlier = submissions(&sweep_dir);
    let job_ids: Vec<String> = earlier.iter().flat_map(|s| s.jobs.arrays.values().cloned()).collect();
    let states = cluster::task_states(&job_ids)?;
    let busy_ids: std::collections::BTreeSet<String> = earlier
        .iter()
        .flat_map(|s| {
            s.manifest
                .tasks
                .iter()
                .filter(|t| s.task_of(t.index).and_then(|k| states.get(&k)).is_some_and(|st| st.is_live()))
                .map(|t| t.id.clone())
        })
        .collect();
    let (sweep_dir, pending) = pending_jobs(plan, &Options { results: results.clone(), ..options.clone() }, &|id| busy_ids.contains(id))?;
    if pending.is_empty() {
        let queued = if busy_ids.is_empty() {
            String::new()
        } else {
            format!(" ({} still queued or running from an earlier submission)", busy_ids.len())
        };
        println!(
            "{}: nothing to submit: every selected stage and run is done or failed{queued}; `pimsweep status {}`",
            plan.sweep,
            sweep_dir.display()
        );
        return Ok(None);
    }

    let dir = next_submission_dir(&sweep_dir)?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let manifest =
        Manifest::build(&plan.sweep, sweep_file, results, &pending, cluster::max_array_size(), resources.cpus_per_run, options.force);
    let manifest_path = dir.join("manifest.json");
    write_json_atomic(&manifest_path, &manifest)?;
    let binary = std::env::current_exe().context("cannot find the pimsweep binary to run on the nodes")?;
    let workdir = std::env::current_dir().context("cannot read the current directory")?;
    let paths = Paths { binary: &binary, manifest: &manifest_path, logs: &logs, workdir: &workdir };

    let mut jobs = Jobs::default();
    let submitted = (|| -> Result<()> {
        for array in &manifest.arrays {
            let path = dir.join(format!("{}.sbatch", array.name));
            write_atomic(&path, script::array_script(&plan.sweep, array, resources, paths).as_bytes())?;
            let after: Vec<String> = array.after.iter().filter_map(|a| jobs.arrays.get(a).cloned()).collect();
            let id = cluster::sbatch(&path, &after)?;
            jobs.arrays.insert(array.name.clone(), id);
        }
        let path = dir.join("report.sbatch");
        write_atomic(&path, script::report_script(&plan.sweep, &sweep_dir, resources, paths).as_bytes())?;
        let all: Vec<String> = jobs.arrays.values().cloned().collect();
        jobs.report = Some(cluster::sbatch(&path, &all)?);
        Ok(())
    })();
    // Recorded even when a later sbatch failed: status must know the arrays that are in the queue.
    write_json_atomic(&dir.join("jobs.json"), &jobs)?;
    if let Err(e) = submitted {
        let ids: Vec<&str> = jobs.arrays.values().map(String::as_str).collect();
        let hint = if ids.is_empty() {
            String::new()
        } else {
            format!(" (already submitted: {}; `scancel {}` to withdraw them)", ids.join(", "), ids.join(" "))
        };
        return Err(e.context(format!("submitting {} failed{hint}", dir.display())));
    }
    let submission = Submission { dir, manifest, jobs };
    print_submitted(plan, &submission, &sweep_dir, resources);
    Ok(Some(submission))
}

/// `slurm/001`, `slurm/002`, …: one past the highest existing number.
fn next_submission_dir(sweep_dir: &Path) -> Result<PathBuf> {
    let root = sweep_dir.join("slurm");
    let highest = std::fs::read_dir(&root)
        .map(|entries| entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()).max().unwrap_or(0))
        .unwrap_or(0);
    let dir = root.join(format!("{:03}", highest + 1));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn print_submitted(plan: &Plan, s: &Submission, sweep_dir: &Path, resources: &Resources) {
    let stages = s.manifest.tasks.iter().filter(|t| t.kind == "stage").count();
    let runs = s.manifest.tasks.len() - stages;
    println!(
        "{}: submitted {stages} stages and {runs} runs to Slurm as {} job arrays ({}):",
        plan.sweep,
        s.manifest.arrays.len(),
        s.dir.display()
    );
    for array in &s.manifest.arrays {
        let after = if array.after.is_empty() { String::new() } else { format!(", after {}", array.after.join(" ")) };
        let job = s.jobs.arrays.get(&array.name).map_or("?", String::as_str);
        println!("  job {job}  {}  --array={} ({} tasks{after})", array.name, script::array_spec(array, resources), array.indices.len());
    }
    if let Some(id) = &s.jobs.report {
        println!("  job {id}  report (tables, plots and report.md once every array has ended)");
    }
    println!("follow it with `pimsweep status {}`; logs in {}", sweep_dir.display(), s.dir.join("logs").display());
}
