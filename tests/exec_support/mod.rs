//! For the executor's tests: sweeps written to a temporary folder, and a [`TestWorker`] that trains and
//! evaluates nothing but leaves the files a real worker would, can be told to fail or panic, and counts.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use pimsweep::exec::{Budget, Evaluation, Job, Options, Output, Record, Worker};
use pimsweep::plan::{self, Plan, Run, Stage};
use pimsweep::sweep::{self, Clause, Sweep};

const PRESETS: &[(&str, &str)] = &[
    ("configs/sram.kdl", "technology \"sram\" kind=digital {\n    format \"e4m3\"\n}\n"),
    ("configs/reram.kdl", "technology \"reram\" kind=reram {\n    weight-bits 4\n    noise-magnitude 0.05\n}\n"),
];

/// A model without a task head: one digital fine-tune stage shared by the three post-training runs, and a
/// PIM-aware fine-tune stage on top of it for the fourth run.
pub const STAGED: &str = r#"sweep "staged" {
    include "../configs/sram.kdl" "../configs/reram.kdl"
    model "sentence-transformers/all-MiniLM-L6-v2"
    data "nyu-mll/glue" max-train=100 max-eval=50
    grid {
        task rte
        technology original sram reram
    }
    grid {
        task rte
        technology reram
        mode pim-finetune
        drift 0 "1h"
    }
}
"#;

/// Four independent runs (per-task checkpoints: no stages).
pub const FLAT: &str = r#"sweep "flat" {
    model "textattack/roberta-base-{task}"
    grid {
        task rte mrpc sst2 cola
    }
}
"#;

/// A sweep file in a temporary folder, loaded and planned, with a results root beside it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub sweep: Sweep,
    pub plan: Plan,
}

impl Fixture {
    pub fn new(text: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (sweep, plan) = write_sweep(dir.path(), "sweeps/main.kdl", text);
        Fixture { dir, sweep, plan }
    }

    /// Another sweep file in the same folder (sharing the results root).
    pub fn sibling(&self, file: &str, text: &str) -> (Sweep, Plan) {
        write_sweep(self.dir.path(), file, text)
    }

    pub fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    pub fn sweep_dir(&self) -> PathBuf {
        self.results().join(&self.plan.sweep)
    }

    pub fn run_dir(&self, run: &Run) -> PathBuf {
        self.sweep_dir().join("runs").join(&run.id)
    }

    pub fn stage_dir(&self, stage: &Stage) -> PathBuf {
        self.results().join(".store/stages").join(&stage.id)
    }

    /// Two jobs of one thread, no progress output (`PIMSWEEP_TEST_OUTPUT=lines|auto` shows it, for debugging).
    pub fn options(&self) -> Options {
        let output = match std::env::var("PIMSWEEP_TEST_OUTPUT").as_deref() {
            Ok("lines") => Output::Lines,
            Ok("auto") => Output::Auto,
            _ => Output::Silent,
        };
        Options { budget: Budget::resolve(Some(2), Some(1), 2), output, ..Options::new(self.results()) }
    }

    /// `--only` as the command line parses it.
    pub fn only(&self, text: &str) -> Vec<Clause> {
        sweep::parse_cli_filter(&self.sweep, "--only", text).unwrap_or_else(|d| panic!("bad filter {text}: {d:?}"))
    }

    pub fn run_named(&self, needle: &str) -> &Run {
        let found: Vec<&Run> = self.plan.runs.iter().filter(|r| r.name.contains(needle)).collect();
        assert_eq!(found.len(), 1, "{needle:?} should name one run of {:?}", self.plan.runs.iter().map(|r| &r.name).collect::<Vec<_>>());
        found[0]
    }

    pub fn stage_of_kind(&self, kind: plan::StageKind) -> &Stage {
        self.plan.stages.iter().find(|s| s.kind == kind).unwrap_or_else(|| panic!("no {kind:?} stage"))
    }
}

fn write_sweep(root: &Path, file: &str, text: &str) -> (Sweep, Plan) {
    for (path, preset) in PRESETS {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, preset).unwrap();
    }
    let path = root.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    let loaded = sweep::load(&path).unwrap_or_else(|d| panic!("{}", d.iter().map(|d| d.render(false)).collect::<String>()));
    let plan = plan::expand(&loaded.sweep).unwrap_or_else(|d| panic!("{}", d.iter().map(|d| d.render(false)).collect::<String>()));
    (loaded.sweep, plan)
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A one-shot signal between threads.
#[derive(Default)]
pub struct Signal(Mutex<bool>, Condvar);

impl Signal {
    pub fn raise(&self) {
        *self.0.lock().unwrap() = true;
        self.1.notify_all();
    }

    /// Waits for the signal; panics after 30 s, so that a broken test fails instead of hanging.
    pub fn wait(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut raised = self.0.lock().unwrap();
        while !*raised {
            let left = deadline.checked_duration_since(std::time::Instant::now()).expect("the signal never came");
            raised = self.1.wait_timeout(raised, left).unwrap().0;
        }
    }
}

/// Trains by writing a tiny checkpoint; evaluates to metrics derived from the run id.
#[derive(Default)]
pub struct TestWorker {
    /// Stage or run ids whose call returns an error.
    pub fail: HashSet<String>,
    /// Stage or run ids whose call panics.
    pub panic: HashSet<String>,
    /// How long each evaluation takes.
    pub sleep: Duration,
    /// When set, evaluations raise `.0` and then wait for `.1`.
    pub gate: Option<(std::sync::Arc<Signal>, std::sync::Arc<Signal>)>,
    /// The same for trainings.
    pub train_gate: Option<(std::sync::Arc<Signal>, std::sync::Arc<Signal>)>,
    pub trained: Mutex<Vec<String>>,
    pub evaluated: Mutex<Vec<String>>,
    /// Threads of the rayon pool each call ran in.
    pub pool_threads: Mutex<Vec<usize>>,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
}

impl TestWorker {
    pub fn failing(ids: &[&str]) -> TestWorker {
        TestWorker { fail: ids.iter().map(|s| s.to_string()).collect(), ..TestWorker::default() }
    }

    pub fn trained(&self) -> Vec<String> {
        self.trained.lock().unwrap().clone()
    }

    pub fn evaluated(&self) -> Vec<String> {
        let mut v = self.evaluated.lock().unwrap().clone();
        v.sort();
        v
    }

    fn misbehave(&self, id: &str) -> anyhow::Result<()> {
        if self.panic.contains(id) {
            panic!("test worker told to panic on {id}");
        }
        if self.fail.contains(id) {
            return Err(anyhow::anyhow!("the device caught fire")).context(format!("computing {id}"));
        }
        Ok(())
    }
}

/// Metrics a run's id determines, so tests can check what was stored.
pub fn expected_accuracy(run_id: &str) -> f64 {
    u32::from_str_radix(&run_id[..8], 16).unwrap() as f64 / u32::MAX as f64
}

impl Worker for TestWorker {
    fn train(&self, stage: &Stage, parent: Option<&Path>, job: &mut Job) -> anyhow::Result<()> {
        self.trained.lock().unwrap().push(stage.id.clone());
        self.pool_threads.lock().unwrap().push(rayon::current_num_threads());
        job.log(format!("training {}", stage.name));
        if let Some((entered, release)) = &self.train_gate {
            entered.raise();
            release.wait();
        }
        self.misbehave(&stage.id)?;
        if let Some(parent) = parent {
            let from = std::fs::read_to_string(parent.join("checkpoint/model.safetensors")).context("parent checkpoint")?;
            job.log(format!("from {from}"));
        }
        std::fs::create_dir_all(job.dir.join("checkpoint"))?;
        std::fs::write(job.dir.join("checkpoint/model.safetensors"), &stage.id)?;
        job.progress.set_length(2);
        job.progress.inc(2);
        Ok(())
    }

    fn evaluate(&self, run: &Run, stage: Option<&Path>, job: &mut Job) -> anyhow::Result<Evaluation> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let result = self.evaluate_inner(run, stage, job);
        self.running.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

impl TestWorker {
    fn evaluate_inner(&self, run: &Run, stage: Option<&Path>, job: &mut Job) -> anyhow::Result<Evaluation> {
        self.evaluated.lock().unwrap().push(run.id.clone());
        self.pool_threads.lock().unwrap().push(rayon::current_num_threads());
        job.log(format!("evaluating {}", run.name));
        if let Some((entered, release)) = &self.gate {
            entered.raise();
            release.wait();
        }
        std::thread::sleep(self.sleep);
        self.misbehave(&run.id)?;
        match (&run.stage, stage) {
            (Some(id), Some(dir)) => {
                let checkpoint = std::fs::read_to_string(dir.join("checkpoint/model.safetensors")).context("stage checkpoint")?;
                if &checkpoint != id {
                    bail!("stage folder {} holds {checkpoint}, not {id}", dir.display());
                }
            }
            (None, None) => {}
            (want, got) => bail!("run stage {want:?} but evaluated from {got:?}"),
        }
        let accuracy = expected_accuracy(&run.id);
        let records = run
            .drift_s
            .iter()
            .map(|&drift_s| Record { repeat: 0, drift_s, metrics: BTreeMap::from([("accuracy".to_string(), accuracy)]) })
            .collect();
        let n = run.drift_s.len();
        let predictions = polars::df!(
            "idx" => vec![0i64; n],
            "label" => vec![1i64; n],
            "prediction" => vec![1i64; n],
            "outputs" => vec![accuracy; n],
            "repeat" => vec![0i64; n],
            "drift_s" => run.drift_s.clone(),
        )?;
        Ok(Evaluation { records, predictions: Some(predictions) })
    }
}
