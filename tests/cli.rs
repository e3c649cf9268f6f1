//! The `check` and `plan` commands, driven as a user would from a shell.

mod common;
use assert_cmd::Command;
use common::repo_root;
use predicates::prelude::*;

fn pimsweep() -> Command {
    let mut cmd = Command::cargo_bin("pimsweep").unwrap();
    cmd.current_dir(repo_root()).env("NO_COLOR", "1");
    cmd
}

#[test]
fn check_prints_a_one_line_summary() {
    pimsweep()
        .args(["check", "sweeps/glue_all.kdl"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("ok: glue-all (sweeps/glue_all.kdl): 64 runs, 24 stages; 8 tasks, 5 technologies, 2 modes"));
}

#[test]
fn check_accepts_presets() {
    pimsweep()
        .args(["check", "configs/ncb/pcm.kdl"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ok: configs/ncb/pcm.kdl is a preset defining pcm (kind=pcm model=ncb)"));
}

#[test]
fn check_points_at_the_error_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.kdl");
    std::fs::write(&path, "sweep \"bad\" {\n    model \"m\"\n    grid { task rte; technology rerm }\n}\n").unwrap();
    pimsweep()
        .args(["check", path.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no technology named `rerm`"))
        .stderr(predicate::str::contains("bad.kdl:3:"))
        .stderr(predicate::str::contains("has 1 error"));
}

#[test]
fn check_reports_a_missing_file() {
    pimsweep()
        .args(["check", "sweeps/nope.kdl"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot read sweep file sweeps/nope.kdl"));
}

#[test]
fn plan_lists_stages_and_runs() {
    let out = pimsweep().args(["plan", "sweeps/quickstart.kdl"]).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("stages (12)"), "{text}");
    assert!(text.contains("runs (24)"), "{text}");
    assert!(text.contains("finetune:task=sst2,seed=42"), "{text}");
    assert!(text.contains("pim-finetune:task=mrpc,tech=reram,seed=42"), "{text}");
    assert!(text.contains("task=mrpc,tech=random,mode=post-training,seed=42"), "{text}");
}

#[test]
fn plan_json_and_why_agree() {
    let out = pimsweep().args(["plan", "sweeps/reram_noise.kdl", "--json"]).assert().success().get_output().stdout.clone();
    let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    // 2 tasks × (5 noise × 5 bits × 3 seeds of reram + 3 seeds of original)
    assert_eq!(runs.len(), 2 * (75 + 3));
    let run = &runs[0];
    let id = run["id"].as_str().unwrap();
    let why = pimsweep().args(["plan", "sweeps/reram_noise.kdl", "--why", &id[..8]]).assert().success().get_output().stdout.clone();
    let why = String::from_utf8(why).unwrap();
    assert!(why.starts_with(&format!("run {id} (")), "{why}");
    assert!(why.contains("\"numerics\": 1"), "{why}");
    pimsweep()
        .args(["plan", "sweeps/reram_noise.kdl", "--why", "zzzz"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no run matches"));
}
