//! How `pimsweep plan` shows a plan: a readable summary and tables of stages and runs, JSON for machines,
//! and `--why` (the resolved parameters behind an id).

use std::fmt::Write;

use serde_json::json;

use super::{Plan, Run};
use crate::sweep::duration::format_duration;

/// The human-readable plan.
pub fn print_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let desc = plan.description.as_deref().map(|d| format!(" — {d}")).unwrap_or_default();
    let _ = writeln!(out, "sweep {}{desc}", plan.sweep);
    let finetunes = plan.stages.iter().filter(|s| s.kind == super::StageKind::Finetune).count();
    let _ = writeln!(
        out,
        "  {} grid points → {} runs, {} stages ({} shared digital fine-tunes, {} hardware-aware trainings)",
        plan.points,
        plan.runs.len(),
        plan.stages.len(),
        finetunes,
        plan.stages.len() - finetunes
    );
    if plan.filtered > 0 {
        let _ = writeln!(out, "  excluded by filters: {} points", plan.filtered);
    }
    let merged = plan.points - plan.filtered - plan.runs.len();
    if merged > 0 {
        let _ =
            writeln!(out, "  merged: {merged} points are the same run as another (collapsed axes, duplicates or drift times of one chip)");
    }
    for c in &plan.collapsed {
        let _ = writeln!(out, "  collapsed: {} {} ({} points)", c.axis, c.reason, c.points);
    }

    if !plan.stages.is_empty() {
        let _ = writeln!(out, "\nstages ({})", plan.stages.len());
        let w = plan.stages.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
        let _ = writeln!(out, "  {:<16}  {:<w$}  {:>4}  STARTS FROM", "ID", "NAME", "RUNS");
        for s in &plan.stages {
            let from = s.parent.as_ref().map_or_else(|| s.model.clone(), |p| format!("stage {p}"));
            let _ = writeln!(out, "  {:<16}  {:<w$}  {:>4}  {from}", s.id, s.name, s.runs.len());
        }
    }

    let _ = writeln!(out, "\nruns ({})", plan.runs.len());
    let w = plan.runs.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(out, "  {:<16}  {:<w$}  {:<16}  DRIFT", "ID", "NAME", "STAGE");
    for r in &plan.runs {
        let stage = r.stage.as_deref().unwrap_or("-");
        let _ = writeln!(out, "  {:<16}  {:<w$}  {:<16}  {}", r.id, r.name, stage, drift_list(r));
    }
    out
}

fn drift_list(r: &Run) -> String {
    r.drift_s.iter().map(|d| format_duration(*d)).collect::<Vec<_>>().join(" ")
}

/// A filter as JSON: `[{"axis": "mode", "values": ["post-training"]}]`, values in canonical form.
fn clauses_json(clauses: &[crate::sweep::Clause]) -> serde_json::Value {
    json!(
        clauses
            .iter()
            .map(|c| json!({"axis": c.axis.key(), "values": c.values.iter().map(|v| v.canonical()).collect::<Vec<_>>()}))
            .collect::<Vec<_>>()
    )
}

/// The sweep's `table` and `plot` nodes as JSON, so reports can be re-rendered from a results folder alone.
pub fn reports_json(sweep: &crate::sweep::Sweep) -> serde_json::Value {
    json!({
        "tables": sweep.tables.iter().map(|t| json!({
            "title": t.title, "where": clauses_json(&t.filter), "rows": t.rows.key(), "columns": t.columns.key(),
            "average": t.average, "metric": t.metric,
        })).collect::<Vec<_>>(),
        "plots": sweep.plots.iter().map(|p| json!({
            "title": p.title, "where": clauses_json(&p.filter), "x": p.x.key(), "series": p.series.as_ref().map(|s| s.key()),
            "metric": p.metric, "log_x": p.log_x,
        })).collect::<Vec<_>>(),
    })
}

/// The plan as JSON (`plan --json`).
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    json!({
        "sweep": plan.sweep,
        "description": plan.description,
        "points": plan.points,
        "filtered": plan.filtered,
        "collapsed": plan.collapsed.iter().map(|c| json!({"axis": c.axis, "reason": c.reason, "points": c.points})).collect::<Vec<_>>(),
        "stages": plan.stages.iter().map(|s| json!({
            "id": s.id, "name": s.name, "kind": s.kind.name(), "parent": s.parent, "runs": s.runs, "children": s.children, "params": s.canonical,
        })).collect::<Vec<_>>(),
        "runs": plan.runs.iter().map(|r| json!({
            "id": r.id, "name": r.name, "stage": r.stage,
            "axes": r.axes.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "values": r.values,
            "params": r.canonical,
        })).collect::<Vec<_>>(),
    })
}

/// `plan --why RUN`: the resolved parameters that determine a run's id, and those of its stages.
pub fn print_why(plan: &Plan, key: &str) -> Result<String, String> {
    let found = plan.find_runs(key);
    let run = match found.as_slice() {
        [one] => *one,
        [] => return Err(format!("no run matches {key:?} (give an id, an id prefix or a run name)")),
        many => {
            let list: Vec<String> = many.iter().take(10).map(|r| format!("  {}  {}", r.id, r.name)).collect();
            return Err(format!("{} runs match {key:?}; be more specific:\n{}", many.len(), list.join("\n")));
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "run {} ({})", run.id, run.name);
    let _ = writeln!(out, "id = blake3(canonical JSON below)[..16]\n{}", pretty(&run.canonical));
    let mut stage = run.stage.clone();
    while let Some(id) = stage {
        let Some(s) = plan.stage(&id) else { break };
        let _ = writeln!(out, "\nstage {} ({})\n{}", s.id, s.name, pretty(&s.canonical));
        stage = s.parent.clone();
    }
    Ok(out)
}

fn pretty(v: &serde_json::Value) -> String {
    // Sorted keys, like the id's canonical form, then indented for reading.
    let sorted: serde_json::Value = serde_json::from_str(&super::ids::canonical_json(v)).unwrap_or_else(|_| v.clone());
    serde_json::to_string_pretty(&sorted).unwrap_or_default()
}
