//! The planner: how grids, unions, zips, filters and collapsing axes turn into runs and stages, and how
//! run and stage ids respond to edits of the sweep.

mod common;
use std::collections::{BTreeMap, BTreeSet};

use common::*;
use pimsweep::plan::{Plan, StageKind};

fn names(plan: &Plan) -> BTreeSet<String> {
    plan.runs.iter().map(|r| r.name.clone()).collect()
}

fn ids_by_name(plan: &Plan) -> BTreeMap<String, String> {
    plan.runs.iter().map(|r| (r.name.clone(), r.id.clone())).collect()
}

#[test]
fn a_grid_is_a_cartesian_product() {
    let plan = plan_of(&sweep("    grid { task rte mrpc; technology original sram reram }"));
    assert_eq!(plan.points, 6);
    assert_eq!(plan.runs.len(), 6);
    assert!(names(&plan).contains("task=mrpc,tech=reram,mode=post-training,seed=42"));
}

#[test]
fn several_grids_are_a_union_without_duplicates() {
    let plan = plan_of(&sweep("    grid { task rte mrpc; technology original }\n    grid { task mrpc stsb; technology original }"));
    assert_eq!(plan.points, 4);
    assert_eq!(plan.runs.len(), 3, "mrpc/original is one run");
}

#[test]
fn zip_pairs_values() {
    let plan = plan_of(&sweep(
        "    grid {\n        task rte\n        technology sram\n        mode pim-finetune\n        zip { lr 1e-4 3e-4; epochs 3 5; }\n    }",
    ));
    assert_eq!(plan.runs.len(), 2, "paired, not crossed");
    let trainings: BTreeSet<(String, String)> = plan
        .stages
        .iter()
        .filter(|s| s.kind == StageKind::PimFinetune)
        .map(|s| (s.train.get("lr").unwrap().to_string(), s.train.get("epochs").unwrap().to_string()))
        .collect();
    assert_eq!(trainings, BTreeSet::from([("0.0001".into(), "3".into()), ("0.0003".into(), "5".into())]));
    // A top-level zip is a grid of its own.
    let plan = plan_of(&sweep("    zip { task rte mrpc; technology sram reram }"));
    assert_eq!(
        names(&plan),
        BTreeSet::from(["task=rte,tech=sram,mode=post-training,seed=42".into(), "task=mrpc,tech=reram,mode=post-training,seed=42".into()])
    );
}

#[test]
fn exclude_and_only_filter_points() {
    let grid = "    grid { task rte mrpc; technology original random sram; mode post-training pim-finetune }";
    let all = plan_of(&sweep(grid));
    assert_eq!(all.runs.len(), 12);
    let excluded = plan_of(&sweep(&format!("{grid}\n    exclude technology=\"original random\" mode=pim-finetune")));
    assert_eq!((excluded.runs.len(), excluded.filtered), (8, 4));
    let only = plan_of(&sweep(&format!("{grid}\n    only task=rte technology=sram")));
    assert_eq!(only.runs.len(), 2);
    // Several `only` nodes: a point is kept when any of them matches.
    let two =
        plan_of(&sweep(&format!("{grid}\n    only task=rte technology=sram\n    only task=mrpc mode=post-training technology=original")));
    assert_eq!(two.runs.len(), 3);
}

#[test]
fn axes_that_do_not_apply_collapse() {
    let plan = plan_of(&sweep("    grid { task rte; technology original sram reram; noise 0 0.1; bits 2 4 }"));
    // original: noise and bits collapse (1 run); sram: bits collapse (2); reram: 2 × 2.
    assert_eq!(plan.points, 12);
    assert_eq!(plan.runs.len(), 1 + 2 + 4);
    let notes: BTreeSet<(String, String)> = plan.collapsed.iter().map(|c| (c.axis.clone(), c.reason.clone())).collect();
    assert!(notes.contains(&("noise".into(), "does not apply to technology original".into())));
    assert!(notes.contains(&("bits".into(), "does not apply to technology sram".into())));
    assert!(!notes.iter().any(|(_, r)| r.contains("reram")));
    assert!(names(&plan).contains("task=rte,tech=reram,noise=0.1,bits=2,mode=post-training,seed=42"));
    assert!(names(&plan).contains("task=rte,tech=sram,noise=0.1,mode=post-training,seed=42"));
}

#[test]
fn parameter_paths_apply_to_their_technology_only() {
    let plan = plan_of(&sweep("    grid { task rte; technology sram pcm; \"pcm.out-noise\" 0 0.02 0.04 }"));
    assert_eq!(plan.runs.len(), 1 + 3);
    let pcm: Vec<_> = plan.runs.iter().filter(|r| r.technology == "pcm").collect();
    let values: BTreeSet<String> = pcm.iter().map(|r| r.canonical["technology"]["params"]["out-noise"].to_string()).collect();
    assert_eq!(values, BTreeSet::from(["0.0".into(), "0.02".into(), "0.04".into()]));
}

#[test]
fn drift_times_of_one_chip_are_one_run() {
    let plan = plan_of(&sweep("    grid { task rte; technology pcm reram; drift 0 \"1h\" \"1d\" 3600 }"));
    assert_eq!(plan.runs.len(), 2);
    let pcm = plan.runs.iter().find(|r| r.technology == "pcm").unwrap();
    assert_eq!(pcm.drift_s, vec![0.0, 3600.0, 86400.0]);
    let reram = plan.runs.iter().find(|r| r.technology == "reram").unwrap();
    assert_eq!(reram.drift_s, vec![0.0]);
    assert!(plan.collapsed.iter().any(|c| c.axis == "drift" && c.reason == "technology reram does not drift"));
}

#[test]
fn finetune_stages_are_shared_across_technologies() {
    let plan = plan_of(&sweep(
        "    grid { task rte mrpc; technology original random sram reram; mode post-training pim-finetune }\n    exclude technology=\"original random\" mode=pim-finetune",
    ));
    let finetunes: Vec<_> = plan.stages.iter().filter(|s| s.kind == StageKind::Finetune).collect();
    assert_eq!(finetunes.len(), 2, "one digital fine-tune per task");
    for s in &finetunes {
        // original, sram and reram post-training evaluate it; the two PIM-aware trainings start from it.
        assert_eq!(s.runs.len(), 3, "{}", s.name);
        assert_eq!(s.children.len(), 2, "{}", s.name);
    }
    let pim: Vec<_> = plan.stages.iter().filter(|s| s.kind == StageKind::PimFinetune).collect();
    assert_eq!(pim.len(), 4);
    assert!(pim.iter().all(|s| s.parent.is_some() && s.runs.len() == 1));
    // The random classifier needs no training.
    assert!(plan.runs.iter().filter(|r| r.technology == "random").all(|r| r.stage.is_none()));
}

#[test]
fn models_with_task_heads_need_no_digital_finetune() {
    let text = sweep("    grid { task rte; technology original sram; mode post-training pim-finetune }")
        .replace("sentence-transformers/all-MiniLM-L6-v2", "JeremiahZ/roberta-base-{task}");
    let plan = plan_of(&text);
    assert!(plan.stages.iter().all(|s| s.kind != StageKind::Finetune));
    let run = plan.runs.iter().find(|r| r.mode.name() == "post-training").unwrap();
    assert_eq!(run.model, "JeremiahZ/roberta-base-rte");
    assert!(run.stage.is_none());
}

#[test]
fn train_axes_collapse_for_runs_that_do_not_train() {
    let plan = plan_of(&sweep("    grid { task rte; technology sram; mode post-training pim-finetune; lr 1e-5 2e-5 }"));
    assert_eq!(plan.runs.len(), 1 + 2);
    assert!(plan.collapsed.iter().any(|c| c.axis == "train.lr" && c.reason == "mode post-training does not train"));
}

#[test]
fn finetune_mode_is_digital() {
    let plan = plan_of(&sweep("    grid { task rte; technology original sram reram; mode finetune }"));
    assert_eq!(plan.runs.len(), 1);
    assert_eq!(plan.runs[0].technology, "original");
}

// ---- ids ------------------------------------------------------------------------------------------------

const BASE: &str = r#"// a comment
sweep "ids" {
    include "../configs/sram.kdl" "../configs/reram.kdl"
    model "sentence-transformers/all-MiniLM-L6-v2"
    baseline epochs=2 lr=5e-5
    train epochs=1 lr=2e-5 batch-size=16
    grid {
        task rte mrpc
        technology original sram reram
        mode post-training pim-finetune
    }
    exclude technology=original mode=pim-finetune
}
"#;

/// The same sweep with other formatting, comments, key order, axis order and number spelling.
const REFORMATTED: &str = r#"sweep "ids" {
  /* reordered */ include "../configs/sram.kdl" "../configs/reram.kdl"
  train batch-size=16 lr=0.00002 epochs=1   // same values, other order and spelling
  baseline lr=0.00005 epochs=2
  model "sentence-transformers/all-MiniLM-L6-v2"
  exclude mode=pim-finetune technology=original
  grid { mode post-training pim-finetune; technology reram sram original; task mrpc rte; }
}
"#;

fn ids(text: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let plan = plan_of(text);
    (ids_by_name(&plan), plan.stages.iter().map(|s| s.id.clone()).collect())
}

#[test]
fn ids_are_stable() {
    assert_eq!(ids(BASE), ids(BASE));
    assert_eq!(ids(BASE), ids(REFORMATTED));
}

#[test]
fn a_changed_technology_parameter_changes_exactly_the_affected_ids() {
    let (runs, stages) = ids(BASE);
    // Same sweep, but the reram preset's noise changes.
    let mut mem: Vec<(&str, &str)> = vec![(MAIN, BASE)];
    let reram = "technology \"reram\" kind=reram {\n    weight-bits 4\n    noise-magnitude 0.06\n}\n";
    mem.push(("configs/reram.kdl", reram));
    let loaded = load_files(&mem).unwrap();
    let plan = pimsweep::plan::expand(&loaded.sweep).unwrap();
    let changed = ids_by_name(&plan);
    for (name, id) in &runs {
        let moved = changed[name] != *id;
        assert_eq!(moved, name.contains("tech=reram"), "{name}");
    }
    let new_stages: BTreeSet<String> = plan.stages.iter().map(|s| s.id.clone()).collect();
    // The two reram PIM-aware trainings change; the digital fine-tunes and sram trainings do not.
    assert_eq!(stages.difference(&new_stages).count(), 2);
    for s in plan.stages.iter().filter(|s| !stages.contains(&s.id)) {
        assert_eq!(s.technology.as_deref(), Some("reram"));
    }
}

#[test]
fn a_changed_baseline_changes_its_stages_and_their_runs_only() {
    let (runs, _) = ids(BASE);
    let (changed, _) = ids(&BASE.replace("baseline epochs=2", "baseline epochs=3"));
    for (name, id) in &runs {
        assert_ne!(changed[name], *id, "every run here starts from a digital fine-tune: {name}");
    }
    let with_random = BASE.replace("technology original sram reram", "technology original random sram reram");
    let (a, _) = ids(&with_random);
    let (b, _) = ids(&with_random.replace("baseline epochs=2", "baseline epochs=3"));
    let random_runs: Vec<_> = a.keys().filter(|n| n.contains("tech=random")).collect();
    assert!(!random_runs.is_empty());
    for n in random_runs {
        assert_eq!(a[n], b[n], "a random classifier does not depend on the fine-tune: {n}");
    }
}

#[test]
fn a_changed_train_parameter_changes_only_trained_runs() {
    let (runs, _) = ids(BASE);
    let (changed, _) = ids(&BASE.replace("train epochs=1", "train epochs=2"));
    for (name, id) in &runs {
        assert_eq!(changed[name] != *id, name.contains("mode=pim-finetune"), "{name}");
    }
}

#[test]
fn eval_repeats_change_runs_but_not_stages() {
    let (runs, stages) = ids(BASE);
    let (changed, new_stages) = ids(&BASE.replace("    grid {", "    eval repeats=3\n    grid {"));
    assert!(runs.iter().all(|(n, id)| changed[n] != *id));
    assert_eq!(stages, new_stages, "training does not depend on how it is evaluated");
}

#[test]
fn runs_report_every_axis_value_or_null() {
    let plan = plan_of(&sweep(
        "    grid { task rte; technology original reram; noise 0.1; \"reram.input-bits\" 4 }\n    table \"T\" rows=noise columns=bits",
    ));
    let reram = plan.runs.iter().find(|r| r.technology == "reram").unwrap();
    let original = plan.runs.iter().find(|r| r.technology == "original").unwrap();
    let get = |r: &pimsweep::plan::Run, k: &str| r.values.get(k).cloned().unwrap_or_else(|| panic!("no column {k}"));
    assert_eq!(get(reram, "noise").as_deref(), Some("0.1"));
    assert_eq!(get(reram, "bits").as_deref(), Some("4"), "the preset's weight-bits");
    assert_eq!(get(reram, "reram.input-bits").as_deref(), Some("4"));
    assert_eq!(get(reram, "seed").as_deref(), Some("42"));
    assert_eq!(get(original, "noise"), None);
    assert_eq!(get(original, "reram.input-bits"), None);
    assert_eq!(get(original, "task").as_deref(), Some("rte"));
}

#[test]
fn command_line_filters_select_runs_and_point_into_the_argument() {
    let text = sweep("    grid { task rte mrpc; technology original sram reram; drift 0 \"1d\" }");
    let loaded = load(&text).unwrap();
    let plan = pimsweep::plan::expand(&loaded.sweep).unwrap();
    let clauses = pimsweep::sweep::parse_cli_filter(&loaded.sweep, "--only", "task=rte technology=sram,reram").unwrap();
    let chosen: BTreeSet<&str> = plan.runs.iter().filter(|r| clauses.iter().all(|c| r.matches(c))).map(|r| r.name.as_str()).collect();
    assert_eq!(chosen, BTreeSet::from(["task=rte,tech=sram,mode=post-training,seed=42", "task=rte,tech=reram,mode=post-training,seed=42"]));
    let err = pimsweep::sweep::parse_cli_filter(&loaded.sweep, "--only", "tsk=rte").unwrap_err();
    let rendered = render(&err);
    assert!(rendered.contains("unknown axis `tsk`") && rendered.contains("--only"), "{rendered}");
}

#[test]
fn reports_are_kept_in_the_plan_json() {
    let loaded = load(&sweep("    grid { task rte; technology sram }\n    table \"T\" where=\"technology=sram mode=post-training\" rows=technology columns=task average=#true")).unwrap();
    let reports = pimsweep::plan::reports_json(&loaded.sweep);
    assert_eq!(reports["tables"][0]["rows"], "technology");
    assert_eq!(reports["tables"][0]["where"][1]["values"][0], "post-training");
    assert_eq!(reports["tables"][0]["average"], true);
}
