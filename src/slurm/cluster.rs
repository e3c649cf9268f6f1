//! Talking to Slurm through its commands (sbatch, scontrol, squeue, sacct): what the cluster allows, submitting
//! a script, and what it says about submitted array tasks. The parsers are separate from the calls so that
//! they are tested on real output without a cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// Slurm's default MaxArraySize, used when `scontrol show config` does not answer.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// One array task as Slurm reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, CANCELLED, NODE_FAIL, PREEMPTED, OUT_OF_MEMORY, …
    pub state: String,
    /// Why it waits or ended (`Dependency`, `JobHeldUser`, `NonZeroExitCode`, `TimeLimit`, …; `None` if none).
    pub reason: String,
}

impl TaskState {
    /// Still in the queue or on a node: its status file is not final yet.
    pub fn is_live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "REQUEUED" | "RESIZING" | "SUSPENDED" | "STAGE_OUT" | "SIGNALING"
        )
    }
}

/// (array job id, array task id) → state.
pub type TaskStates = BTreeMap<(String, usize), TaskState>;

/// `MaxArraySize` from `scontrol show config`, or Slurm's default if it cannot be read.
pub fn max_array_size() -> usize {
    let out = Command::new("scontrol").args(["show", "config"]).output();
    out.ok()
        .filter(|o| o.status.success())
        .and_then(|o| parse_max_array_size(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or(DEFAULT_MAX_ARRAY_SIZE)
}

/// The `MaxArraySize = N` line of `scontrol show config`.
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize").then(|| value.trim().parse().ok()).flatten()
    })
}

/// Submits a script with `sbatch --parsable`, to start once all of `after` have ended (`afterany`: the
/// array tasks themselves tell a failed stage from a finished one, see `exec`); returns the job id.
pub fn sbatch(script: &Path, after: &[String]) -> Result<String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if !after.is_empty() {
        cmd.arg(format!("--dependency=afterany:{}", after.join(":")));
    }
    cmd.arg(script);
    let out = cmd.output().context("cannot run sbatch: is Slurm installed here (see scripts/slurm-local.sh)?")?;
    if !out.status.success() {
        bail!("sbatch {} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    parse_sbatch_id(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("sbatch printed no job id: {:?}", String::from_utf8_lossy(&out.stdout)))
}

/// `--parsable` prints `id` or `id;cluster`.
pub fn parse_sbatch_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// What Slurm still remembers of these array jobs' tasks: queued and running ones, and those ended within
/// MinJobAge (`squeue -t all`). Err when squeue cannot be run at all.
pub fn task_states(job_ids: &[String]) -> Result<TaskStates> {
    if job_ids.is_empty() {
        return Ok(TaskStates::new());
    }
    let out = Command::new("squeue")
        .args(["-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", &job_ids.join(",")])
        .output()
        .context("cannot run squeue")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // Every id forgotten (ended before MinJobAge): not an error, just nothing to say.
        if stderr.contains("Invalid job id") {
            return Ok(TaskStates::new());
        }
        bail!("squeue failed: {}", stderr.trim());
    }
    Ok(parse_squeue(&String::from_utf8_lossy(&out.stdout)))
}

/// Lines `JOB_TASK|STATE|REASON` (`squeue -r -o %i|%T|%r`); non-array lines are skipped.
pub fn parse_squeue(text: &str) -> TaskStates {
    array_task_lines(text, |f| TaskState { state: f[0].to_string(), reason: f.get(1).copied().unwrap_or("None").to_string() })
}

/// The accounting record of ended tasks (`sacct`), for clusters that keep one; Err (with sacct's message,
/// e.g. "Slurm accounting storage is disabled") where none exists.
pub fn accounted_states(job_ids: &[String]) -> Result<TaskStates> {
    let out = Command::new("sacct")
        .args(["-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j", &job_ids.join(",")])
        .output()
        .context("cannot run sacct")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(parse_sacct(&String::from_utf8_lossy(&out.stdout)))
}

/// Lines `JOB_TASK|STATE|EXIT` of `sacct -P -X -o JobID,State,ExitCode`; the reason is `exit code E`.
pub fn parse_sacct(text: &str) -> TaskStates {
    array_task_lines(text, |f| TaskState {
        // `CANCELLED by 1000` → CANCELLED.
        state: f[0].split_whitespace().next().unwrap_or_default().to_string(),
        reason: format!("exit code {}", f.get(1).copied().unwrap_or("?")),
    })
}

/// `|`-separated lines whose first field is an array task `JOB_TASK`, the other fields handed to `state`.
fn array_task_lines(text: &str, state: impl Fn(&[&str]) -> TaskState) -> TaskStates {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split('|').map(str::trim).collect();
            let (job, task) = fields[0].split_once('_')?;
            let rest = &fields[1..];
            (!rest.is_empty()).then_some(())?;
            Some(((job.to_string(), task.parse().ok()?), state(rest)))
        })
        .collect()
}

/// Whether Slurm's commands answer here (`sinfo`).
pub fn available() -> bool {
    Command::new("sinfo").arg("-h").output().is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_array_size_is_read_from_scontrol() {
        let config = "MailType                = (null)\nMaxArraySize            = 100001\nMaxJobCount             = 200000\n";
        assert_eq!(parse_max_array_size(config), Some(100001));
        assert_eq!(parse_max_array_size("MaxJobCount = 5\n"), None);
    }

    #[test]
    fn sbatch_ids_with_and_without_a_cluster_name() {
        assert_eq!(parse_sbatch_id("12345\n").as_deref(), Some("12345"));
        assert_eq!(parse_sbatch_id("12345;cluster2\n").as_deref(), Some("12345"));
        assert_eq!(parse_sbatch_id("Submitted batch job 5\n"), None);
        assert_eq!(parse_sbatch_id(""), None);
    }

    #[test]
    fn squeue_lines_as_seen_on_slurm_22_05() {
        let text =
            "9_1|FAILED|NonZeroExitCode\n9_2|COMPLETED|None\n12_0|PENDING|Dependency\n13|RUNNING|None\n14_[3-5]|PENDING|JobHeldUser\n";
        let states = parse_squeue(text);
        assert_eq!(states.len(), 3, "{states:?}");
        assert_eq!(states[&("9".to_string(), 1)], TaskState { state: "FAILED".into(), reason: "NonZeroExitCode".into() });
        assert!(!states[&("9".to_string(), 2)].is_live());
        assert!(states[&("12".to_string(), 0)].is_live());
    }

    #[test]
    fn sacct_lines_keep_the_state_word_and_the_exit_code() {
        let states = parse_sacct("20_4|TIMEOUT|0:15\n20_5|CANCELLED by 1000|0:0\n20|COMPLETED|0:0\n");
        assert_eq!(states[&("20".to_string(), 4)], TaskState { state: "TIMEOUT".into(), reason: "exit code 0:15".into() });
        assert_eq!(states[&("20".to_string(), 5)].state, "CANCELLED");
        assert_eq!(states.len(), 2);
    }
}
