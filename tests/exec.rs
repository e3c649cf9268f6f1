//! The executor end to end through its library API, with a test worker (no models): what is trained and
//! evaluated, what the results folder holds, resume, `--only`, failures, the lock, leftovers of a killed
//! process, and parallel jobs.

mod exec_support;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use exec_support::*;
use pimsweep::exec::{Budget, JobKind, Options, Outcome, Summary, execute};
use pimsweep::plan::StageKind;

fn count(summary: &Summary, kind: JobKind, outcome: Outcome) -> usize {
    summary.count(kind, |o| *o == outcome)
}

/// Every status.json under the results root with its modification time, to prove nothing was rewritten.
fn statuses(f: &Fixture) -> Vec<(std::path::PathBuf, String, SystemTime)> {
    let mut dirs: Vec<_> = f.plan.runs.iter().map(|r| f.run_dir(r)).collect();
    dirs.extend(f.plan.stages.iter().map(|s| f.stage_dir(s)));
    dirs.into_iter()
        .map(|d| {
            let p = d.join("status.json");
            let text = fs::read_to_string(&p).unwrap();
            let modified = fs::metadata(&p).unwrap().modified().unwrap();
            (p, text, modified)
        })
        .collect()
}

#[test]
fn a_first_execution_trains_each_stage_once_and_stores_every_run() {
    let f = Fixture::new(STAGED);
    assert_eq!((f.plan.runs.len(), f.plan.stages.len()), (4, 2), "the fixture's plan changed");
    let finetune = f.stage_of_kind(StageKind::Finetune);
    assert_eq!(finetune.runs.len(), 3, "three post-training runs share the digital fine-tune");
    let worker = TestWorker::default();

    let summary = execute(&f.plan, &worker, &f.options()).unwrap();

    assert!(summary.success(), "{}", summary.render());
    let mut trained = worker.trained();
    trained.sort();
    let mut stage_ids: Vec<String> = f.plan.stages.iter().map(|s| s.id.clone()).collect();
    stage_ids.sort();
    assert_eq!(trained, stage_ids, "each stage trained exactly once");
    assert_eq!(worker.evaluated().len(), 4);
    assert_eq!((count(&summary, JobKind::Run, Outcome::Done), count(&summary, JobKind::Stage, Outcome::Done)), (4, 2));

    for stage in &f.plan.stages {
        let dir = f.stage_dir(stage);
        assert_eq!(read_json(&dir.join("status.json"))["state"], "done");
        assert_eq!(fs::read_to_string(dir.join("checkpoint/model.safetensors")).unwrap(), stage.id);
        assert!(fs::read_to_string(dir.join("log.txt")).unwrap().contains("training"));
    }
    let pim = f.stage_of_kind(StageKind::PimFinetune);
    assert!(fs::read_to_string(f.stage_dir(pim).join("log.txt")).unwrap().contains(&format!("from {}", finetune.id)));

    for run in &f.plan.runs {
        let dir = f.run_dir(run);
        let params = read_json(&dir.join("params.json"));
        assert_eq!(params["id"], run.id.as_str());
        assert_eq!(params["name"], run.name.as_str());
        assert_eq!(params["sweep"], "staged");
        assert_eq!(params["stage"], serde_json::json!(run.stage));
        assert_eq!(params["values"], serde_json::json!(run.values));
        assert_eq!(params["drift_s"], serde_json::json!(run.drift_s));
        assert_eq!(params["params"], run.canonical);

        let status = read_json(&dir.join("status.json"));
        assert_eq!(status["state"], "done");
        assert_eq!(status["threads"], 1);
        assert_eq!(status["pid"], std::process::id());
        assert!(status["finished"].as_str().unwrap().ends_with('Z'));

        let records = read_json(&dir.join("metrics.json"))["records"].as_array().unwrap().clone();
        assert_eq!(records.len(), run.drift_s.len());
        assert_eq!(records[0]["metrics"]["accuracy"].as_f64().unwrap(), expected_accuracy(&run.id));
        assert!(dir.join("predictions.parquet").metadata().unwrap().len() > 0);
        assert!(fs::read_to_string(dir.join("log.txt")).unwrap().contains("evaluating"));
    }

    let plan_json = read_json(&f.sweep_dir().join("plan.json"));
    assert_eq!(plan_json["runs"].as_array().unwrap().len(), 4);
    assert!(plan_json["reports"]["tables"].is_array());
    assert!(worker.pool_threads.lock().unwrap().iter().all(|&t| t == 1), "every call ran in its job's 1-thread pool");
}

#[test]
fn a_second_execution_recomputes_nothing() {
    let f = Fixture::new(STAGED);
    execute(&f.plan, &TestWorker::default(), &f.options()).unwrap();
    let before = statuses(&f);

    let worker = TestWorker::default();
    let summary = execute(&f.plan, &worker, &f.options()).unwrap();

    assert!(worker.trained().is_empty() && worker.evaluated().is_empty());
    assert_eq!((count(&summary, JobKind::Run, Outcome::Cached), count(&summary, JobKind::Stage, Outcome::Cached)), (4, 2));
    assert!(summary.success());
    assert_eq!(statuses(&f), before, "no status.json was rewritten");
}

#[test]
fn a_run_without_a_status_is_the_only_one_recomputed() {
    let f = Fixture::new(STAGED);
    execute(&f.plan, &TestWorker::default(), &f.options()).unwrap();
    let run = f.run_named("tech=sram");
    fs::remove_file(f.run_dir(run).join("status.json")).unwrap();

    let worker = TestWorker::default();
    let summary = execute(&f.plan, &worker, &f.options()).unwrap();

    assert_eq!(worker.evaluated(), vec![run.id.clone()]);
    assert!(worker.trained().is_empty(), "its stage is done");
    assert_eq!((count(&summary, JobKind::Run, Outcome::Done), count(&summary, JobKind::Run, Outcome::Cached)), (1, 3));
    assert_eq!(read_json(&f.run_dir(run).join("status.json"))["state"], "done");
}

#[test]
fn force_recomputes_everything_once() {
    let f = Fixture::new(STAGED);
    execute(&f.plan, &TestWorker::default(), &f.options()).unwrap();
    let worker = TestWorker::default();
    let summary = execute(&f.plan, &worker, &Options { force: true, ..f.options() }).unwrap();
    assert_eq!((worker.trained().len(), worker.evaluated().len()), (2, 4));
    assert!(summary.success());
}

#[test]
fn only_restricts_the_runs_and_the_stages_they_need() {
    let f = Fixture::new(STAGED);
    let sram = f.run_named("tech=sram");
    let worker = TestWorker::default();
    let summary = execute(&f.plan, &worker, &Options { only: vec![f.only("technology=sram")], ..f.options() }).unwrap();

    assert_eq!(worker.evaluated(), vec![sram.id.clone()]);
    assert_eq!(worker.trained(), vec![f.stage_of_kind(StageKind::Finetune).id.clone()], "the PIM fine-tune is not needed");
    assert_eq!(summary.jobs.len(), 2);
    let run_dirs: Vec<_> = fs::read_dir(f.sweep_dir().join("runs")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(run_dirs, vec![std::ffi::OsString::from(&sram.id)]);

    // Several filters must all hold: reram and pim-finetune select the one PIM-aware run and both stages.
    let worker = TestWorker::default();
    let only = vec![f.only("technology=reram"), f.only("mode=pim-finetune")];
    let summary = execute(&f.plan, &worker, &Options { only, ..f.options() }).unwrap();
    assert_eq!(worker.evaluated(), vec![f.run_named("mode=pim-finetune").id.clone()]);
    assert_eq!(worker.trained(), vec![f.stage_of_kind(StageKind::PimFinetune).id.clone()], "the fine-tune is cached");
    assert_eq!(count(&summary, JobKind::Stage, Outcome::Cached), 1);

    let err = execute(&f.plan, &worker, &Options { only: vec![f.only("technology=sram mode=pim-finetune")], ..f.options() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("select none of the 4 runs"), "{err}");
}

#[test]
fn failing_and_panicking_runs_are_contained_and_retried_on_request() {
    let f = Fixture::new(STAGED);
    let (bad, wild) = (f.run_named("tech=sram"), f.run_named("tech=original"));
    let worker = TestWorker { panic: [wild.id.clone()].into(), ..TestWorker::failing(&[bad.id.as_str()]) };

    let summary = execute(&f.plan, &worker, &f.options()).unwrap();

    assert!(!summary.success());
    assert_eq!((count(&summary, JobKind::Run, Outcome::Done), summary.count(JobKind::Run, Outcome::is_failed)), (2, 2));
    let bad_status = read_json(&f.run_dir(bad).join("status.json"));
    assert_eq!(bad_status["state"], "failed");
    assert_eq!(bad_status["error"], format!("computing {}: the device caught fire", bad.id).as_str());
    let bad_log = fs::read_to_string(f.run_dir(bad).join("log.txt")).unwrap();
    assert!(
        bad_log.contains(&format!("error: computing {}", bad.id)) && bad_log.contains("caused by: the device caught fire"),
        "{bad_log}"
    );
    let wild_status = read_json(&f.run_dir(wild).join("status.json"));
    let panicked = wild_status["error"].as_str().unwrap();
    let expected = format!("panicked: test worker told to panic on {} at tests/exec_support/mod.rs:", wild.id);
    assert!(panicked.starts_with(&expected), "{panicked}");
    let failure = summary.failures().find(|j| j.id == bad.id).unwrap();
    assert_eq!(failure.log, f.run_dir(bad).join("log.txt"));
    assert!(summary.render().contains(&failure.log.display().to_string()));

    // Without --retry-failed they stay failed, and nothing runs.
    let worker = TestWorker::default();
    let summary = execute(&f.plan, &worker, &f.options()).unwrap();
    assert!(worker.evaluated().is_empty() && !summary.success());
    assert!(summary.failures().all(|j| matches!(j.outcome, Outcome::Failed { earlier: true, .. })));
    assert!(summary.render().contains("--retry-failed"));

    // With it, exactly those two rerun.
    let summary = execute(&f.plan, &worker, &Options { retry_failed: true, ..f.options() }).unwrap();
    let mut expected = vec![bad.id.clone(), wild.id.clone()];
    expected.sort();
    assert_eq!(worker.evaluated(), expected);
    assert!(summary.success(), "{}", summary.render());
}

#[test]
fn a_failed_stage_fails_its_runs_without_evaluating_them() {
    let f = Fixture::new(STAGED);
    let finetune = f.stage_of_kind(StageKind::Finetune);
    let worker = TestWorker::failing(&[finetune.id.as_str()]);

    let summary = execute(&f.plan, &worker, &f.options()).unwrap();

    assert!(!summary.success());
    assert_eq!(worker.trained(), vec![finetune.id.clone()], "the PIM fine-tune that starts from it never trains");
    assert!(worker.evaluated().is_empty());
    assert_eq!(summary.count(JobKind::Run, Outcome::is_failed), 4);
    let text = summary.render();
    assert!(text.contains(&format!("stage {} {}: computing", finetune.id, finetune.name)), "{text}");
    assert!(text.contains("4 runs and 1 stage not run because a stage they start from failed"), "{text}");
    let stage_status = read_json(&f.stage_dir(finetune).join("status.json"));
    assert_eq!(stage_status["state"], "failed");
    assert!(fs::read_to_string(f.stage_dir(finetune).join("log.txt")).unwrap().contains("caused by: the device caught fire"));
    for run in &f.plan.runs {
        let status = read_json(&f.run_dir(run).join("status.json"));
        assert_eq!(status["state"], "failed");
        let error = status["error"].as_str().unwrap();
        assert!(error.starts_with("stage ") && error.contains(&format!("{} ({}) failed: ", finetune.id, finetune.name)), "{error}");
    }

    // Retried with a worker that works, everything completes.
    let worker = TestWorker::default();
    let summary = execute(&f.plan, &worker, &Options { retry_failed: true, ..f.options() }).unwrap();
    assert!(summary.success(), "{}", summary.render());
    assert_eq!((worker.trained().len(), worker.evaluated().len()), (2, 4));
}

#[test]
fn a_second_execution_on_a_locked_sweep_folder_is_refused() {
    let f = Fixture::new(FLAT);
    let (entered, release) = (Arc::new(Signal::default()), Arc::new(Signal::default()));
    let blocked = TestWorker { gate: Some((entered.clone(), release.clone())), ..TestWorker::default() };
    std::thread::scope(|s| {
        let first = s.spawn(|| execute(&f.plan, &blocked, &f.options()));
        entered.wait();
        let err = execute(&f.plan, &TestWorker::default(), &f.options()).unwrap_err().to_string();
        release.raise();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains(&f.sweep_dir().join(".lock").display().to_string()), "{err}");
        assert!(first.join().unwrap().unwrap().success());
    });
    // Released with the first execution.
    assert!(execute(&f.plan, &TestWorker::default(), &f.options()).unwrap().success());
}

/// Another process (flock(1)) holds the sweep lock: refused, naming the holder recorded in the file; once that
/// process is killed with SIGKILL, the OS has released the lock.
#[cfg(target_os = "linux")]
#[test]
fn a_lock_held_by_another_process_is_refused_until_that_process_is_killed() {
    let f = Fixture::new(FLAT);
    fs::create_dir_all(f.sweep_dir()).unwrap();
    let lock = f.sweep_dir().join(".lock");
    fs::write(&lock, r#"{"pid": 4242, "host": "elsewhere", "started": "2026-11-22T01:00:00Z"}"#).unwrap();
    // --close: the lock stays with flock itself, not with the sleep it starts.
    let spawned = std::process::Command::new("flock").arg("--close").arg(&lock).args(["sleep", "20"]).spawn();
    let Ok(mut holder) = spawned else {
        eprintln!("skipped: flock(1) is not installed");
        return;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fs::File::open(&lock).unwrap().try_lock().is_ok() {
        assert!(std::time::Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }

    let err = execute(&f.plan, &TestWorker::default(), &f.options()).unwrap_err().to_string();
    assert!(err.contains("pid 4242 on host elsewhere, since 2026-11-22T01:00:00Z"), "{err}");

    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    assert!(execute(&f.plan, &TestWorker::default(), &f.options()).unwrap().success());
}

#[test]
fn leftovers_of_a_killed_process_are_not_trusted() {
    let f = Fixture::new(STAGED);
    execute(&f.plan, &TestWorker::default(), &f.options()).unwrap();
    let (sram, reram) = (f.run_named("tech=sram"), f.run_named("tech=reram,mode=post-training"));
    let pim = f.stage_of_kind(StageKind::PimFinetune);

    // Killed before renaming its status into place: only a temporary file says done.
    let sram_dir = f.run_dir(sram);
    fs::rename(sram_dir.join("status.json"), sram_dir.join(".status.json.tmp-999999-0")).unwrap();
    // Killed while evaluating.
    let reram_status = f.run_dir(reram).join("status.json");
    let text = fs::read_to_string(&reram_status).unwrap().replace("\"done\"", "\"running\"");
    fs::write(&reram_status, text).unwrap();
    // Killed while training: the stage folder was never renamed into place, and its run never started.
    let stages = f.results().join(".store/stages");
    let leftover = stages.join(format!("{}.tmp-999999-0", pim.id));
    fs::rename(f.stage_dir(pim), &leftover).unwrap();
    fs::remove_file(f.run_dir(f.run_named("mode=pim-finetune")).join("status.json")).unwrap();
    // Killed between renaming a trained stage into place and writing its status.
    let finetune = f.stage_of_kind(StageKind::Finetune);
    fs::remove_file(f.stage_dir(finetune).join("status.json")).unwrap();

    let worker = TestWorker::default();
    let summary = execute(&f.plan, &worker, &f.options()).unwrap();

    assert_eq!(worker.trained(), vec![finetune.id.clone(), pim.id.clone()]);
    let mut expected = vec![sram.id.clone(), reram.id.clone(), f.run_named("mode=pim-finetune").id.clone()];
    expected.sort();
    assert_eq!(worker.evaluated(), expected);
    assert!(summary.success());
    assert!(!leftover.exists() && !sram_dir.join(".status.json.tmp-999999-0").exists(), "leftovers are cleaned up");
    assert_eq!(read_json(&reram_status)["state"], "done");
    assert_eq!(read_json(&f.stage_dir(finetune).join("status.json"))["state"], "done");
    let names: Vec<_> = fs::read_dir(&stages).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-") && !n.contains(".old-")), "{names:?}");
}

#[test]
fn two_sweeps_under_one_root_share_a_stage() {
    let f = Fixture::new(STAGED);
    execute(&f.plan, &TestWorker::default(), &f.options()).unwrap();
    let (_, copy) = f.sibling("sweeps/copy.kdl", &STAGED.replace("sweep \"staged\"", "sweep \"copy\""));
    let worker = TestWorker::default();
    let summary = execute(&copy, &worker, &f.options()).unwrap();
    assert!(worker.trained().is_empty(), "the stages are in the shared store already");
    assert_eq!(worker.evaluated().len(), 4);
    assert_eq!(count(&summary, JobKind::Stage, Outcome::Cached), 2);
}

#[test]
fn two_sweeps_executing_at_once_train_a_shared_stage_once() {
    let f = Fixture::new(STAGED);
    let (_, copy) = f.sibling("sweeps/copy.kdl", &STAGED.replace("sweep \"staged\"", "sweep \"copy\""));
    let (entered, release) = (Arc::new(Signal::default()), Arc::new(Signal::default()));
    let first = TestWorker { train_gate: Some((entered.clone(), release.clone())), ..TestWorker::default() };
    let second = TestWorker::default();
    std::thread::scope(|s| {
        let a = s.spawn(|| execute(&f.plan, &first, &f.options()));
        entered.wait(); // the first sweep holds the fine-tune's lock
        let b = s.spawn(|| execute(&copy, &second, &f.options()));
        std::thread::sleep(Duration::from_millis(100)); // the second sweep now waits for that lock
        release.raise();
        assert!(a.join().unwrap().unwrap().success());
        assert!(b.join().unwrap().unwrap().success());
    });
    let mut trained = [first.trained(), second.trained()].concat();
    trained.sort();
    let mut stages: Vec<String> = f.plan.stages.iter().map(|s| s.id.clone()).collect();
    stages.sort();
    assert_eq!(trained, stages, "each shared stage trained once in all");
    assert_eq!(second.evaluated().len(), 4);
}

#[test]
fn jobs_run_in_parallel_within_the_budget() {
    let f = Fixture::new(FLAT);
    assert_eq!((f.plan.runs.len(), f.plan.stages.len()), (4, 0));
    let worker = TestWorker { sleep: Duration::from_millis(200), ..TestWorker::default() };
    let options = Options { budget: Budget::resolve(Some(2), Some(1), 2), ..f.options() };
    let summary = execute(&f.plan, &worker, &options).unwrap();
    assert!(summary.success());
    assert_eq!(worker.max_running.load(Ordering::SeqCst), 2, "two evaluations overlapped, never more");

    // One job of two threads: one at a time, in a pool of two.
    let worker = TestWorker::default();
    let options = Options { budget: Budget::resolve(Some(1), Some(2), 2), force: true, ..f.options() };
    execute(&f.plan, &worker, &options).unwrap();
    assert_eq!(worker.max_running.load(Ordering::SeqCst), 1);
    assert!(worker.pool_threads.lock().unwrap().iter().all(|&t| t == 2));
    assert_eq!(read_json(&f.run_dir(&f.plan.runs[0]).join("status.json"))["threads"], 2);
}

mod cli {
    use assert_cmd::Command;
    use predicates::prelude::*;

    fn pimsweep() -> Command {
        let mut cmd = Command::cargo_bin("pimsweep").unwrap();
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).env("NO_COLOR", "1");
        cmd
    }

    #[test]
    fn run_points_at_a_bad_only_filter() {
        pimsweep()
            .args(["run", "sweeps/quickstart.kdl", "--only", "tecnology=sram"])
            .assert()
            .failure()
            .stderr(predicate::str::contains("--only"))
            .stderr(predicate::str::contains("tecnology"));
    }

    #[test]
    fn run_explains_quoted_only_values() {
        pimsweep()
            .args(["run", "sweeps/quickstart.kdl", "--only", "task=\"sst2 mrpc\" mode=post-training"])
            .assert()
            .failure()
            .stderr(predicate::str::contains("values by commas"))
            .stderr(predicate::str::contains("task=rte,mrpc mode=post-training"));
    }

    #[test]
    fn run_refuses_a_filter_that_selects_nothing() {
        pimsweep()
            .args(["run", "sweeps/quickstart.kdl", "--only", "task=rte"])
            .assert()
            .failure()
            .stderr(predicate::str::contains("select none of the 24 runs"));
    }

    #[test]
    fn run_refuses_zero_jobs() {
        pimsweep().args(["run", "sweeps/quickstart.kdl", "--jobs", "0"]).assert().failure().stderr(predicate::str::contains("--jobs"));
    }
}
