//! `pimsweep exec --manifest M --index I`: what one Slurm array task runs — the manifest's stage or run at
//! that index, planned again from the sweep file, into the shared results folder.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use super::manifest::Manifest;

/// Runs `pimsweep exec`; the exit status tells Slurm whether the task succeeded (dependent arrays wait on it).
pub fn exec(manifest_path: &Path, index: usize, threads: Option<usize>, device: crate::device::DeviceSpec) -> ExitCode {
    match exec_task(manifest_path, index, threads, device) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn exec_task(manifest_path: &Path, index: usize, threads: Option<usize>, device: crate::device::DeviceSpec) -> Result<bool> {
    let text = std::fs::read_to_string(manifest_path).with_context(|| format!("cannot read the manifest {}", manifest_path.display()))?;
    let manifest: Manifest =
        serde_json::from_str(&text).with_context(|| format!("{} is not a pimsweep manifest", manifest_path.display()))?;
    let Some(task) = manifest.tasks.get(index) else {
        bail!("index {index} is not in {} (it has {} tasks)", manifest_path.display(), manifest.tasks.len());
    };
    // Slurm's allocation first, then the submission's request.
    let threads =
        threads.or_else(|| std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|t| t.parse().ok())).unwrap_or(manifest.threads).max(1);
    eprintln!(
        "pimsweep exec: index {index} = {} {} ({}) of sweep {}, {threads} threads on {}",
        task.kind,
        task.id,
        task.name,
        manifest.sweep,
        crate::exec::status::hostname()
    );
    let Some((_, plan)) = crate::cli::load_plan(&manifest.sweep_file) else {
        bail!("cannot plan {}", manifest.sweep_file.display());
    };
    if plan.sweep != manifest.sweep {
        bail!("{} now defines sweep {:?}, not {:?}: submit it again", manifest.sweep_file.display(), plan.sweep, manifest.sweep);
    }
    let worker = crate::exec::default_worker(device)?;
    let outcome = crate::exec::execute_one(&plan, worker.as_ref(), &manifest.results, &task.id, threads, manifest.force)?;
    Ok(outcome.is_ok())
}
