//! Choosing and ordering what a table or plot shows: the records its `where` clauses keep, the metric of
//! each record (the spec's, else the record's task's table metric), the drift time (0 s unless the spec is
//! about drift), the order of an axis's values, and their labels. Shared by tables and plots.

use std::collections::{BTreeMap, BTreeSet};

use super::collect::Record;
use super::plan_file::{Clause, PlanFile};
use crate::sweep::duration::parse_duration;
use crate::task::Task;

/// The records a table or plot aggregates, and what the reader should know about how they were chosen.
pub struct Selection<'a> {
    pub records: Vec<&'a Record>,
    pub notes: Vec<String>,
}

/// Keeps the records that match every clause, measured at drift 0 s unless `drift` is one of `shown_axes`
/// or a clause, and whose metric is `metric` (None: the record's task's table metric).
pub fn select<'a>(records: &'a [Record], filter: &[Clause], shown_axes: &[&str], metric: Option<&str>) -> Selection<'a> {
    let mut notes = Vec::new();
    let matching: Vec<&Record> =
        records.iter().filter(|r| filter.iter().all(|c| r.axis(&c.axis).is_some_and(|v| c.values.contains(&v)))).collect();
    let about_drift = shown_axes.contains(&"drift") || filter.iter().any(|c| c.axis == "drift");
    let at_zero = |r: &&Record| about_drift || r.drift_s == 0.0;
    if !about_drift && matching.iter().any(|r| r.drift_s != 0.0) {
        notes.push("Drift: values at 0 s (evaluated right after programming); later drift times are left out.".into());
    }
    let wanted = |r: &&Record| match metric {
        Some(m) => r.metric == m,
        None => task_metric(r).is_some_and(|m| r.metric == m),
    };
    let records: Vec<&Record> = matching.into_iter().filter(at_zero).filter(wanted).collect();
    notes.push(metric_note(metric, &records));
    let pooled = pooled_axes(&records, shown_axes);
    if !pooled.is_empty() {
        notes.push(format!("Pooled over: {}.", pooled.join(", ")));
    }
    Selection { records, notes }
}

/// The table metric of the record's task, if it has a known task.
fn task_metric(r: &Record) -> Option<&'static str> {
    r.axis("task").and_then(|t| Task::from_name(&t)).map(|t| t.table_metric().name())
}

fn metric_note(metric: Option<&str>, records: &[&Record]) -> String {
    match metric {
        Some(m) => format!("Metric: {m}."),
        None => {
            let used = metrics_used(records);
            let here = if used.is_empty() { String::new() } else { format!(" (here: {})", used.join(", ")) };
            format!("Metric: each task's table metric{here}.")
        }
    }
}

/// The distinct metric names among the records, sorted.
pub fn metrics_used(records: &[&Record]) -> Vec<String> {
    let used: BTreeSet<&str> = records.iter().map(|r| r.metric.as_str()).collect();
    used.into_iter().map(String::from).collect()
}

/// Axes not shown whose values differ within a cell, i.e. among records that agree on every shown axis (seed,
/// repeat, …): the cells average over them. An axis that differs only between cells (each technology's own
/// bit width, in a table whose rows are technologies) is not pooled. Each is listed with the most values one
/// cell pools.
fn pooled_axes(records: &[&Record], shown: &[&str]) -> Vec<String> {
    let mut cells: BTreeMap<Vec<Option<String>>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for r in records {
        let distinct = cells.entry(shown.iter().map(|a| r.axis(a)).collect()).or_default();
        for (axis, value) in &r.values {
            if !shown.contains(&axis.as_str()) {
                distinct.entry(axis.clone()).or_default().insert(value.clone().unwrap_or_default());
            }
        }
        if !shown.contains(&"drift") {
            distinct.entry("drift".into()).or_default().insert(r.drift_s.to_string());
        }
        distinct.entry("repeat".into()).or_default().insert(r.repeat.to_string());
    }
    let mut widest: BTreeMap<String, usize> = BTreeMap::new();
    for (axis, values) in cells.values().flatten() {
        let most = widest.entry(axis.clone()).or_default();
        *most = (*most).max(values.len());
    }
    widest.into_iter().filter(|(_, n)| *n > 1).map(|(axis, n)| format!("{axis} ({n} values)")).collect()
}

/// The distinct values of `axis` among `records`, in display order: tasks in the published tables' order,
/// numbers (and drift times) ascending, anything else in order of first appearance in the plan. Records
/// without the axis (it does not apply to them) come last as None.
pub fn ordered_values(axis: &str, records: &[&Record], plan: &PlanFile) -> Vec<Option<String>> {
    let present: BTreeSet<Option<String>> = records.iter().map(|r| r.axis(axis)).collect();
    let mut values: Vec<String> = present.iter().flatten().cloned().collect();
    let numbers: Option<Vec<f64>> = values.iter().map(|v| numeric(axis, v)).collect();
    if axis == "task" {
        values.sort_by_key(|v| task_rank(v));
    } else if numbers.is_some() {
        values.sort_by(|a, b| numeric(axis, a).partial_cmp(&numeric(axis, b)).unwrap_or(std::cmp::Ordering::Equal));
    } else {
        let first_seen: Vec<String> = plan.runs.iter().filter_map(|r| r.values.get(axis).cloned().flatten()).collect();
        values.sort_by_key(|v| (first_seen.iter().position(|s| s == v).unwrap_or(usize::MAX), v.clone()));
    }
    let mut out: Vec<Option<String>> = values.into_iter().map(Some).collect();
    if present.contains(&None) {
        out.push(None);
    }
    out
}

/// The value as a number, if it is one: drift times in seconds, plain numbers as written.
pub fn numeric(axis: &str, value: &str) -> Option<f64> {
    if axis == "drift" { parse_duration(value).ok() } else { value.parse::<f64>().ok().filter(|x| x.is_finite()) }
}

fn task_rank(name: &str) -> (usize, String) {
    let rank = match Task::from_name(name) {
        Some(t) => Task::TABLE_ORDER.iter().position(|&o| o == t).unwrap_or(Task::TABLE_ORDER.len()),
        None => Task::TABLE_ORDER.len() + 1,
    };
    (rank, name.to_string())
}

/// How a value is shown in a header: task names as the GLUE papers write them, None as `n/a`.
pub fn label(axis: &str, value: &Option<String>) -> String {
    let Some(v) = value else { return "n/a".into() };
    if axis != "task" {
        return v.clone();
    }
    match Task::from_name(v) {
        Some(Task::Cola) => "CoLA",
        Some(Task::Sst2) => "SST-2",
        Some(Task::Mrpc) => "MRPC",
        Some(Task::Qqp) => "QQP",
        Some(Task::Stsb) => "STS-B",
        Some(Task::Mnli) => "MNLI",
        Some(Task::Qnli) => "QNLI",
        Some(Task::Rte) => "RTE",
        Some(Task::Wnli) => "WNLI",
        None => v,
    }
    .to_string()
}

/// Mean, population standard deviation and count of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// Population standard deviation (divides by n): the spread of these seeds and repeats themselves.
    pub std: f64,
    pub n: usize,
}

impl Stat {
    /// None for no values.
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        Some(Stat { mean, std: var.sqrt(), n })
    }
}

/// The published tables' style: four decimals without the leading zero (`.8728`, `-.0512`, `1.0000`).
pub fn fmt_num(x: f64) -> String {
    let s = format!("{x:.4}");
    if let Some(rest) = s.strip_prefix("0.") {
        format!(".{rest}")
    } else if let Some(rest) = s.strip_prefix("-0.") {
        if rest.chars().all(|c| c == '0') { ".0000".into() } else { format!("-.{rest}") }
    } else {
        s
    }
}

/// A cell as text: `mean` for one value, `mean ± std (n)` for several.
pub fn fmt_stat(s: &Stat) -> String {
    if s.n > 1 { format!("{} ± {} ({})", fmt_num(s.mean), fmt_num(s.std), s.n) } else { fmt_num(s.mean) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_in_the_papers() {
        assert_eq!(fmt_num(0.8728), ".8728");
        assert_eq!(fmt_num(0.87284), ".8728");
        assert_eq!(fmt_num(-0.0512), "-.0512");
        assert_eq!(fmt_num(-0.00001), ".0000");
        assert_eq!(fmt_num(1.0), "1.0000");
        assert_eq!(fmt_stat(&Stat { mean: 0.5, std: 0.0, n: 1 }), ".5000");
        assert_eq!(fmt_stat(&Stat { mean: 0.5, std: 0.01, n: 3 }), ".5000 ± .0100 (3)");
    }

    fn record(technology: &str, bits: &str, seed: &str, repeat: i64) -> Record {
        let values = [("technology", technology), ("bits", bits), ("seed", seed), ("task", "rte")]
            .into_iter()
            .map(|(a, v)| (a.to_string(), Some(v.to_string())))
            .collect();
        Record {
            run_id: format!("{technology}{bits}{seed}"),
            run_name: String::new(),
            sweep: "s".into(),
            values,
            drift_s: 0.0,
            repeat,
            metric: "accuracy".into(),
            value: 0.5,
            provenance: Default::default(),
        }
    }

    #[test]
    fn only_axes_that_vary_within_a_cell_are_pooled() {
        // Each technology has its own bit width (constant within its row), two seeds and two repeats per cell.
        let records: Vec<Record> = [("sram", "8"), ("reram", "3")]
            .iter()
            .flat_map(|(t, b)| ["1", "2"].into_iter().flat_map(move |s| (0..2).map(move |r| record(t, b, s, r))))
            .collect();
        let refs: Vec<&Record> = records.iter().collect();
        assert_eq!(pooled_axes(&refs, &["technology", "task"]), ["repeat (2 values)", "seed (2 values)"]);
        // With technology not shown, a cell holds both bit widths.
        assert_eq!(pooled_axes(&refs, &["task"]), ["bits (2 values)", "repeat (2 values)", "seed (2 values)", "technology (2 values)"]);
    }

    #[test]
    fn population_std() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(s.mean, 2.5);
        assert!((s.std - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(Stat::of(&[]), None);
    }
}
