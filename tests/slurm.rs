//! `pimsweep run --executor slurm` against a real Slurm: the single-node cluster of scripts/slurm-local.sh
//! (`.ci/run` starts it; this test starts it itself when it can). A tiny sweep (6 runs, 2 shared fine-tune
//! stages) goes to Slurm as job arrays and its tables must equal the local executor's; a second submission
//! submits nothing; a task that ends without a result shows up in `status` as failed with Slurm's reason
//! and its log. Skipped, with a message, only where Slurm cannot be installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{hf_home, repo_root, tiny_model};

/// Slurm's config for the commands this test runs, and whether this test started the cluster.
struct Cluster {
    conf: Option<String>,
    started: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new(repo_root().join("scripts/slurm-local.sh")).arg("down").status();
        }
    }
}

impl Cluster {
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        if let Some(conf) = &self.conf {
            cmd.env("SLURM_CONF", conf);
        }
        cmd
    }
}

fn sinfo_answers(conf: Option<&str>) -> bool {
    let mut cmd = Command::new("sinfo");
    cmd.arg("-h");
    if let Some(c) = conf {
        cmd.env("SLURM_CONF", c);
    }
    cmd.output().is_ok_and(|o| o.status.success())
}

/// The running cluster, or one started with scripts/slurm-local.sh; None (skip) where it cannot be installed.
fn cluster() -> Option<Cluster> {
    let conf = std::env::var("SLURM_CONF").ok();
    if sinfo_answers(conf.as_deref()) {
        return Some(Cluster { conf, started: false });
    }
    let out = Command::new(repo_root().join("scripts/slurm-local.sh")).arg("up").output().expect("cannot run scripts/slurm-local.sh");
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED: Slurm cannot be installed here: {}", String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scripts/slurm-local.sh up failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let conf = stdout.lines().last().and_then(|l| l.strip_prefix("export SLURM_CONF=")).map(|c| c.trim_matches(['"', '\'']).to_string());
    assert!(conf.is_some(), "no SLURM_CONF from slurm-local.sh: {stdout}");
    Some(Cluster { conf, started: true })
}

fn write_sweep(root: &Path, name: &str, model: &Path, grid: &str) -> PathBuf {
    let sram = repo_root().join("configs/sram.kdl");
    let text = format!(
        r#"sweep "{name}" {{
    include "{}"
    model "{}" task-head=#false
    data "nyu-mll/glue" max-train=96 max-eval=64
    max-seq-len 32
    baseline epochs=1 lr=1e-3 batch-size=16
    eval batch-size=32
    {grid}
    table "Tiny" rows=technology columns=task average=#true
}}
"#,
        sram.display(),
        model.display()
    );
    let path = root.join(format!("{name}.kdl"));
    std::fs::write(&path, text).unwrap();
    path
}

fn pimsweep(cluster: &Cluster, root: &Path, args: &[&str]) -> (bool, String) {
    let out = cluster
        .cmd(env!("CARGO_BIN_EXE_pimsweep"))
        .current_dir(root)
        .env("HF_HOME", hf_home())
        .env("HF_HUB_OFFLINE", "1")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

/// The job ids of a submission folder's jobs.json (arrays and report).
fn job_ids(submission: &Path) -> Vec<String> {
    let jobs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(submission.join("jobs.json")).unwrap()).unwrap();
    let mut ids: Vec<String> = jobs["arrays"].as_object().unwrap().values().map(|v| v.as_str().unwrap().to_string()).collect();
    ids.extend(jobs["report"].as_str().map(str::to_string));
    ids
}

/// Polls squeue (not `sbatch --wait`, whose back-off is slow) until none of `ids` is queued or running.
fn wait_until_ended(cluster: &Cluster, ids: &[String], limit: Duration) {
    let clock = Instant::now();
    loop {
        let out = cluster.cmd("squeue").args(["-h", "-o", "%i %T %r", "-j", &ids.join(",")]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        // Exit 1 with "Invalid job id": Slurm has forgotten them, so they ended.
        if text.trim().is_empty() {
            return;
        }
        assert!(clock.elapsed() < limit, "Slurm jobs {ids:?} still queued after {limit:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn tables(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir.join("tables"))
        .unwrap_or_else(|e| panic!("no tables in {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv" || x == "md"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn a_sweep_on_slurm_equals_the_local_run_resubmits_nothing_and_reports_dead_tasks() {
    let Some(cluster) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let model = tiny_model(root);
    let sweep = write_sweep(root, "tiny", &model, "grid { task sst2 mrpc; technology original random sram; }");
    let sweep = sweep.to_str().unwrap();

    let (ok, out) = pimsweep(&cluster, root, &["run", sweep, "--results", "local"]);
    assert!(ok, "local run failed:\n{out}");

    let (ok, out) = pimsweep(&cluster, root, &["run", sweep, "--results", "slurm", "--executor", "slurm", "--cpus-per-run", "1"]);
    assert!(ok, "submission failed:\n{out}");
    assert!(out.contains("submitted 2 stages and 6 runs to Slurm as 3 job arrays"), "{out}");
    let submission = root.join("slurm/tiny/slurm/001");
    let script = std::fs::read_to_string(submission.join("level1-runs.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=") && script.contains(" exec --manifest "), "{script}");
    let ids = job_ids(&submission);
    // The fine-tunes; the random classifiers (no stage) at once, sparse; the runs of the fine-tunes after them.
    assert!(out.contains("level0-runs  --array=3,6 (2 tasks)") && out.contains("--array=2,4-5,7 (4 tasks, after level0-stages)"), "{out}");
    assert_eq!(ids.len(), 4, "three arrays and the report job");
    wait_until_ended(&cluster, &ids, Duration::from_secs(900));

    let (ok, status) = pimsweep(&cluster, root, &["status", "slurm/tiny"]);
    assert!(ok && status.contains("runs:   6 planned: 6 done") && status.contains("stages: 2 planned: 2 done"), "{status}");
    assert_eq!(tables(&root.join("slurm/tiny")), tables(&root.join("local/tiny")), "Slurm's tables differ from the local run's");
    assert!(!tables(&root.join("local/tiny")).is_empty());

    let (ok, out) = pimsweep(&cluster, root, &["run", sweep, "--results", "slurm", "--executor", "slurm"]);
    assert!(ok && out.contains("nothing to submit"), "{out}");
    assert!(!root.join("slurm/tiny/slurm/002").exists(), "a second submission submitted something");

    // A task that never writes a result: submitted held, then cancelled.
    let held = write_sweep(root, "held", &model, "grid { task sst2; technology random; }");
    let (ok, out) =
        pimsweep(&cluster, root, &["run", held.to_str().unwrap(), "--results", "slurm", "--executor", "slurm", "--sbatch-arg=--hold"]);
    assert!(ok, "{out}");
    let held_ids = job_ids(&root.join("slurm/held/slurm/001"));
    let (_, status) = pimsweep(&cluster, root, &["status", "slurm/held"]);
    assert!(status.contains("in Slurm now: 1 queued: 1 (JobHeldUser)"), "{status}");
    assert!(status.contains("runs:   1 planned: 0 done, 0 failed, 0 running, 1 pending"), "{status}");
    let array = &held_ids[0];
    assert!(cluster.cmd("scancel").args(&held_ids).status().unwrap().success());
    wait_until_ended(&cluster, &held_ids, Duration::from_secs(60));
    let (_, status) = pimsweep(&cluster, root, &["status", "slurm/held"]);
    assert!(status.contains("1 failed"), "{status}");
    assert!(status.contains(&format!("Slurm task {array}_0 ended without writing a result: CANCELLED")), "{status}");
    assert!(status.contains(&format!("log:   slurm/held/slurm/001/logs/{array}_0.out")), "{status}");
}
