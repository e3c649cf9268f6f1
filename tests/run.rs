//! `pimsweep run` end to end, driven as a user would: a tiny 2-layer BERT (random weights, saved by the test)
//! fine-tuned on a few hundred real SST-2 and MRPC examples from the offline cache, evaluated digitally and as
//! a random classifier. Asserts the tables against metrics recomputed from predictions.parquet, resuming,
//! `--only`, a failing run, and a run killed with SIGKILL mid-training.

mod common;
use std::path::{Path, PathBuf};

use common::{hf_home, tiny_model};
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use polars::prelude::*;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    sweep: PathBuf,
    results: PathBuf,
}

fn setup(grid: &str, max_train: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let model = tiny_model(&root);
    let text = format!(
        r#"sweep "tiny" {{
    model "{}" task-head=#false
    data "nyu-mll/glue" max-train={max_train} max-eval=120
    max-seq-len 48
    baseline epochs=2 lr=1e-3 batch-size=16
    eval batch-size=40
    {grid}
    table "Tiny" rows=technology columns=task average=#true
}}
"#,
        model.display()
    );
    let sweep = root.join("tiny.kdl");
    std::fs::write(&sweep, text).unwrap();
    Setup { results: root.join("results"), sweep, root, _dir: dir }
}

const GRID: &str = "grid { task sst2 mrpc; technology original random; }";

fn pimsweep(s: &Setup) -> Command {
    let mut cmd = Command::cargo_bin("pimsweep").unwrap();
    cmd.current_dir(&s.root).env("HF_HOME", hf_home()).env("HF_HUB_OFFLINE", "1").env("NO_COLOR", "1");
    cmd
}

fn run(s: &Setup, extra: &[&str]) -> (bool, String) {
    let out = pimsweep(s).arg("run").arg(&s.sweep).arg("--results").arg(&s.results).args(extra).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout))
}

fn sweep_dir(s: &Setup) -> PathBuf {
    s.results.join("tiny")
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

/// Accuracy of each run recomputed from its predictions.parquet, keyed by (task, technology).
fn accuracies(s: &Setup) -> Vec<((String, String), f64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(sweep_dir(s).join("runs")).unwrap() {
        let dir = entry.unwrap().path();
        let params: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("params.json")).unwrap()).unwrap();
        let predictions = read_parquet(&dir.join("predictions.parquet"));
        let label = predictions.column("label").unwrap().f64().unwrap().clone();
        let predicted = predictions.column("prediction").unwrap().f64().unwrap().clone();
        let hits = label.iter().zip(predicted.iter()).filter(|(a, b)| a == b).count();
        let key = (params["values"]["task"].as_str().unwrap().to_string(), params["values"]["technology"].as_str().unwrap().to_string());
        out.push((key, hits as f64 / predictions.height() as f64));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Each run's status.json, whole: a rewrite changes its pid and wall time even within the same second
/// (timestamps have one-second resolution, and a fast machine evaluates a tiny run in less).
fn run_statuses(s: &Setup) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(sweep_dir(s).join("runs"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path().join("status.json");
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn run_resume_and_tables_agree_with_predictions() {
    let s = setup(GRID, 160);
    let (ok, log) = run(&s, &[]);
    assert!(ok, "{log}");
    assert!(log.contains("6 to compute"), "{log}");

    // The table's cells are the accuracies recomputed here from the stored predictions.
    let table = read_parquet(&sweep_dir(&s).join("tables/tiny.parquet"));
    let recomputed = accuracies(&s);
    assert_eq!(recomputed.len(), 4);
    for ((task, tech), accuracy) in &recomputed {
        let column = if task == "sst2" { "sst2_mean" } else { "mrpc_mean" };
        let rows = table.column(table.get_column_names()[0].as_str()).unwrap().str().unwrap().clone();
        let row = rows.iter().position(|r| r == Some(tech.as_str())).unwrap_or_else(|| panic!("no row {tech} in {table}"));
        let cell = table.column(column).unwrap().f64().unwrap().get(row).unwrap();
        assert!((cell - accuracy).abs() < 1e-12, "{task}/{tech}: table {cell}, predictions {accuracy}");
    }
    let markdown = std::fs::read_to_string(sweep_dir(&s).join("tables/tiny.md")).unwrap();
    assert!(
        markdown.contains("| original") && markdown.contains("| random") && markdown.contains("SST-2") && markdown.contains("Avg"),
        "{markdown}"
    );
    let results = read_parquet(&sweep_dir(&s).join("results.parquet"));
    assert_eq!(results.height(), 2 + 2 * 2, "per run, sst2 has accuracy; mrpc has accuracy and f1");

    // A rerun computes nothing and rewrites no status.
    let before = run_statuses(&s);
    let (ok, log) = run(&s, &[]);
    assert!(ok, "{log}");
    assert!(log.contains("0 to compute"), "{log}");
    assert_eq!(run_statuses(&s), before);

    // Deleting one run's status recomputes exactly that run.
    let victim = before[0].0.clone();
    std::fs::remove_file(&victim).unwrap();
    let (ok, log) = run(&s, &[]);
    assert!(ok, "{log}");
    assert!(log.contains("1 to compute"), "{log}");
    let after = run_statuses(&s);
    assert_eq!(after.iter().filter(|(p, t)| before.iter().any(|(q, u)| p == q && t != u)).count(), 1);
}

#[test]
fn only_restricts_the_runs_and_their_stages() {
    let s = setup(GRID, 120);
    let (ok, log) = run(&s, &["--only", "task=mrpc technology=original"]);
    assert!(ok, "{log}");
    assert!(log.contains("1 runs and 1 stages selected") || log.contains("1 run and 1 stage selected"), "{log}");
    let runs: Vec<_> = std::fs::read_dir(sweep_dir(&s).join("runs")).unwrap().collect();
    assert_eq!(runs.len(), 1);
}

#[test]
fn a_failing_run_is_reported_and_the_others_finish() {
    let s = setup("grid { task sst2; technology original random; }", 120);
    // Point a second grid at a model that does not exist.
    let text = std::fs::read_to_string(&s.sweep)
        .unwrap()
        .replace("    table", "    grid { task sst2; technology original; model \"/nonexistent/model\"; }\n    table");
    std::fs::write(&s.sweep, text).unwrap();
    let (ok, log) = run(&s, &[]);
    assert!(!ok, "a failed run must fail the command:\n{log}");
    assert!(log.contains("/nonexistent/model"), "{log}");
    assert!(log.contains("log.txt"), "failures name their log:\n{log}");
    let done = run_statuses(&s).iter().filter(|(_, text)| text.contains(r#""state": "done""#)).count();
    assert!(done >= 2, "the other runs finish");
    let status = pimsweep(&s).arg("status").arg(sweep_dir(&s)).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout).to_string() + &String::from_utf8_lossy(&status.stderr);
    assert!(text.contains("failed"), "{text}");
}

#[test]
fn a_run_killed_mid_training_resumes_to_the_same_tables() {
    let reference = setup(GRID, 400);
    let (ok, log) = run(&reference, &[]);
    assert!(ok, "{log}");

    let s = setup(GRID, 400);
    let bin = assert_cmd::cargo::cargo_bin("pimsweep");
    let mut child = StdCommand::new(bin)
        .current_dir(&s.root)
        .env("HF_HOME", hf_home())
        .env("HF_HUB_OFFLINE", "1")
        .args(["run", s.sweep.to_str().unwrap(), "--results", s.results.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as a stage is training (its temporary artifact folder exists).
    let stages = s.results.join(".store/stages");
    let start = Instant::now();
    let training = loop {
        let busy =
            std::fs::read_dir(&stages).map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains(".tmp-"))).unwrap_or(false);
        if busy || start.elapsed() > Duration::from_secs(120) {
            break busy;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(training, "the run never reached training");

    let (ok, log) = run(&s, &[]);
    assert!(ok, "{log}");
    for file in ["tables/tiny.md", "tables/tiny.csv"] {
        let a = std::fs::read_to_string(sweep_dir(&reference).join(file)).unwrap();
        let b = std::fs::read_to_string(sweep_dir(&s).join(file)).unwrap();
        assert_eq!(a, b, "{file} differs after a kill and a resume");
    }
}
