//! `pimsweep run` with PIM technologies, end to end on a tiny 2-layer BERT and real SST-2 examples:
//! post-training evaluation over chips (repeats) and drift times, PIM-aware fine-tuning stages, and
//! bit-for-bit replay of a run from its seed.

mod common;
use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;
use common::{hf_home, read_parquet, repo_root, tiny_model};
use polars::prelude::*;

const EVAL_EXAMPLES: usize = 64;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    sweep: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let model = tiny_model(&root);
    let configs = repo_root().join("configs");
    let text = format!(
        r#"sweep "pim" {{
    include "{reram}" "{pcm}"
    model "{model}" task-head=#false
    data "nyu-mll/glue" max-train=96 max-eval={EVAL_EXAMPLES}
    max-seq-len 32
    baseline epochs=1 lr=1e-3 batch-size=16
    train epochs=1 lr=1e-3 batch-size=16
    eval batch-size=32 repeats=2
    grid {{
        task sst2
        technology reram pcm
        mode post-training pim-finetune
        drift 0 "1h"
    }}
}}
"#,
        reram = configs.join("reram.kdl").display(),
        pcm = configs.join("pcm.kdl").display(),
        model = model.display()
    );
    let sweep = root.join("pim.kdl");
    std::fs::write(&sweep, text).unwrap();
    Setup { _dir: dir, root, sweep }
}

fn run(s: &Setup, extra: &[&str]) -> String {
    let out = Command::cargo_bin("pimsweep")
        .unwrap()
        .current_dir(&s.root)
        .env("HF_HOME", hf_home())
        .env("HF_HUB_OFFLINE", "1")
        .env("NO_COLOR", "1")
        .arg("run")
        .arg(&s.sweep)
        .args(["--results", s.root.join("results").to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    log
}

/// Each run's (technology, mode) → its predictions.parquet.
fn predictions(s: &Setup) -> Vec<((String, String), DataFrame)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(s.root.join("results/pim/runs")).unwrap() {
        let dir = entry.unwrap().path();
        let params: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("params.json")).unwrap()).unwrap();
        let value = |k: &str| params["values"][k].as_str().unwrap().to_string();
        out.push(((value("technology"), value("mode")), read_parquet(&dir.join("predictions.parquet"))));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

use common::logits_at as outputs;

#[test]
fn chips_drift_times_and_pim_aware_training_replay_bit_for_bit() {
    let s = setup();
    let log = run(&s, &[]);
    // 2 technologies × 2 modes = 4 runs; stages: the digital fine-tune and 2 PIM-aware trainings.
    assert!(log.contains("4 runs and 3 stages selected"), "{log}");

    let first = predictions(&s);
    assert_eq!(first.len(), 4);
    for ((tech, mode), df) in &first {
        // PCM drifts: 2 chips × 2 drift times. ReRAM does not: the drift axis collapses to t = 0.
        let drifts: Vec<f64> = if tech == "pcm" { vec![0.0, 3600.0] } else { vec![0.0] };
        assert_eq!(df.height(), 2 * drifts.len() * EVAL_EXAMPLES, "{tech} {mode}");
        let seen: BTreeSet<(u32, u64)> = df
            .column("repeat")
            .unwrap()
            .u32()
            .unwrap()
            .into_no_null_iter()
            .zip(df.column("drift_s").unwrap().f64().unwrap().into_no_null_iter())
            .map(|(r, d)| (r, d as u64))
            .collect();
        let expected: BTreeSet<(u32, u64)> = (0..2).flat_map(|r| drifts.iter().map(move |d| (r, *d as u64))).collect();
        assert_eq!(seen, expected, "{tech} {mode}");
        for values in outputs(df, 0, 0.0).iter().chain(&outputs(df, 1, *drifts.last().unwrap())) {
            assert!(values.iter().all(|v| v.is_finite()), "{tech} {mode}: {values:?}");
        }
        // Each repeat is a new chip: device variation (ReRAM) and programming noise (PCM) differ.
        assert_ne!(outputs(df, 0, 0.0), outputs(df, 1, 0.0), "{tech} {mode}: two chips read the same");
        if tech == "pcm" {
            assert_ne!(outputs(df, 0, 0.0), outputs(df, 0, 3600.0), "an hour of drift changes nothing");
        }
    }
    // PIM-aware training changed the weights the post-training runs read.
    let by_key = |t: &str, m: &str| &first.iter().find(|((tech, mode), _)| tech == t && mode == m).unwrap().1;
    assert_ne!(outputs(by_key("reram", "post-training"), 0, 0.0), outputs(by_key("reram", "pim-finetune"), 0, 0.0));

    // Recomputing everything, stages included, reproduces every logit bit for bit.
    run(&s, &["--force"]);
    let again = predictions(&s);
    for (((key, a), (_, b)), drifts) in first.iter().zip(&again).zip([[0.0, 3600.0]; 4]) {
        for repeat in 0..2 {
            for drift in if key.0 == "pcm" { &drifts[..] } else { &drifts[..1] } {
                assert_eq!(outputs(a, repeat, *drift), outputs(b, repeat, *drift), "{key:?} repeat {repeat} drift {drift}");
            }
        }
    }
}
