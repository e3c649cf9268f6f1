//! Every sweep and preset shipped in sweeps/ and configs/ must pass `check`; the sweeps' plans are the
//! published layouts.

mod common;
use std::path::Path;

use common::{render, repo_root};
use pimsweep::plan::{self, StageKind};
use pimsweep::sweep;

fn kdl_files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![repo_root().join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "kdl") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_shipped_sweep_loads_and_expands_without_warnings() {
    let sweeps = kdl_files("sweeps");
    assert!(sweeps.len() >= 4, "{sweeps:?}");
    for path in sweeps {
        let loaded = sweep::load(&path).unwrap_or_else(|d| panic!("{}:\n{}", path.display(), render(&d)));
        assert!(loaded.warnings.is_empty(), "{}:\n{}", path.display(), render(&loaded.warnings));
        let plan = plan::expand(&loaded.sweep).unwrap_or_else(|d| panic!("{}:\n{}", path.display(), render(&d)));
        assert!(plan.warnings.is_empty(), "{}:\n{}", path.display(), render(&plan.warnings));
    }
}

#[test]
fn every_shipped_preset_loads() {
    let presets = kdl_files("configs");
    assert!(presets.len() >= 7, "{presets:?}");
    for path in presets {
        let (techs, warnings) = sweep::load_preset(&path).unwrap_or_else(|d| panic!("{}:\n{}", path.display(), render(&d)));
        assert_eq!(techs.len(), 1, "{}", path.display());
        assert!(warnings.is_empty(), "{}:\n{}", path.display(), render(&warnings));
    }
}

#[test]
fn glue_all_is_both_published_tables() {
    let loaded = sweep::load(&repo_root().join("sweeps/glue_all.kdl")).unwrap();
    let plan = plan::expand(&loaded.sweep).unwrap();
    // 8 tasks × (5 post-training rows + 3 PIM-aware rows).
    assert_eq!(plan.runs.len(), 8 * 8);
    assert_eq!(plan.stages.iter().filter(|s| s.kind == StageKind::PimFinetune).count(), 8 * 3);
    let tasks: std::collections::BTreeSet<_> = plan.runs.iter().map(|r| r.task.name()).collect();
    assert_eq!(tasks.len(), 8);
    assert_eq!(loaded.sweep.tables.len(), 2);
    // The NewComputeBench presets: block input scale for SRAM and PCM, 3-bit per-row inputs for ReRAM.
    let reram = plan.runs.iter().find(|r| r.technology == "reram").unwrap();
    assert_eq!(reram.canonical["technology"]["params"]["input-bits"], 3);
    assert_eq!(reram.canonical["technology"]["params"]["noise-magnitude"], 0.0);
    let pcm = plan.runs.iter().find(|r| r.technology == "pcm").unwrap();
    assert_eq!(pcm.canonical["technology"]["model"], "ncb");
    assert_eq!(pcm.model, format!("JeremiahZ/roberta-base-{}", pcm.task.name()));
}

#[test]
fn quickstart_fine_tunes_each_task_once() {
    let loaded = sweep::load(Path::new(&repo_root().join("sweeps/quickstart.kdl"))).unwrap();
    let plan = plan::expand(&loaded.sweep).unwrap();
    let finetunes: Vec<_> = plan.stages.iter().filter(|s| s.kind == StageKind::Finetune).collect();
    assert_eq!(finetunes.len(), 3);
    // 3 tasks × (original, random, and 3 technologies in 2 modes).
    assert_eq!(plan.runs.len(), 3 * (2 + 3 * 2));
    // Each fine-tune serves the digital row and the three post-training rows, and starts the three
    // PIM-aware trainings; the random row needs none.
    assert!(finetunes.iter().all(|s| s.runs.len() == 4 && s.children.len() == 3));
    assert!(plan.runs.iter().filter(|r| r.technology == "random").all(|r| r.stage.is_none()));
    let pim_aware: Vec<_> = plan.stages.iter().filter(|s| s.kind == StageKind::PimFinetune).collect();
    assert_eq!(pim_aware.len(), 9);
    assert!(pim_aware.iter().all(|s| s.runs.len() == 1 && s.parent.is_some()));
}
