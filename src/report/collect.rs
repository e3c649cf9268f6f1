//! Collects the finished runs of a results folder into the long table of docs/RESULTS.md (one row per
//! run × repeat × drift time × metric) and writes it to `results.parquet`.
//!
//! Only runs listed in plan.json are read: a run folder left from an earlier plan (an edited sweep changes
//! ids) would otherwise be averaged into the tables under the same axis values. A run that is not `done`,
//! or whose params.json or metrics.json is missing or unreadable, is skipped; the files are the user's,
//! so a bad one is a warning that names it, never a panic.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use polars::prelude::{Column, DataFrame, ParquetWriter, PolarsResult};
use serde::Deserialize;

use super::files::{read_json, write_atomic};
use super::plan_file::PlanFile;
use super::status_file::{State, StatusFile, read_status};

/// The built-in axis columns, in the order docs/RESULTS.md lists them; parameter paths follow, sorted.
pub const BUILTIN_AXES: [&str; 7] = ["model", "task", "technology", "mode", "noise", "bits", "seed"];

/// One row of results.parquet.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub run_id: String,
    pub run_name: String,
    pub sweep: String,
    /// Reported axis → canonical value, None where the axis does not apply to the run.
    pub values: BTreeMap<String, Option<String>>,
    pub drift_s: f64,
    pub repeat: i64,
    pub metric: String,
    pub value: f64,
    pub provenance: Provenance,
}

impl Record {
    /// The record's value of an axis; `drift` is its drift time in canonical text (`0s`, `1h`).
    pub fn axis(&self, axis: &str) -> Option<String> {
        if axis == "drift" {
            return Some(crate::sweep::duration::format_duration(self.drift_s));
        }
        self.values.get(axis).cloned().flatten()
    }
}

/// Where and how a run was computed (from its status.json).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    pub pimsweep: Option<String>,
    pub host: Option<String>,
    pub device: Option<String>,
    pub threads: Option<i64>,
    pub wall_s: Option<f64>,
}

/// The collected results of one sweep folder.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Axis columns, built-ins first.
    pub axes: Vec<String>,
    pub records: Vec<Record>,
    /// Runs whose metrics were collected.
    pub runs: usize,
    /// Problems with individual runs' files (the run was skipped or partly read).
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct ParamsFile {
    id: String,
    name: String,
    #[serde(default)]
    sweep: Option<String>,
    values: BTreeMap<String, Option<String>>,
}

#[derive(Deserialize)]
struct MetricsFile {
    records: Vec<MetricsRecord>,
}

#[derive(Deserialize)]
struct MetricsRecord {
    repeat: i64,
    drift_s: f64,
    /// A metric may be null (undefined, e.g. a correlation of constant predictions).
    metrics: BTreeMap<String, Option<f64>>,
}

/// Reads every finished run of `plan` under `sweep_dir/runs/`.
pub fn collect(sweep_dir: &Path, plan: &PlanFile) -> Results {
    let runs_dir = sweep_dir.join("runs");
    let mut results = Results::default();
    let mut axes: BTreeSet<String> = plan.runs.iter().flat_map(|r| r.values.keys().cloned()).collect();
    for run in &plan.runs {
        let folder = runs_dir.join(&run.id);
        match read_run(&folder, &run.id, &plan.sweep) {
            Ok(Some(records)) => {
                results.runs += 1;
                for r in &records {
                    axes.extend(r.values.keys().cloned());
                }
                results.records.extend(records);
            }
            Ok(None) => {}
            Err(e) => results.warnings.push(format!("skipped run {} ({}): {e:#}", run.id, run.name)),
        }
    }
    let planned: HashSet<&str> = plan.runs.iter().map(|r| r.id.as_str()).collect();
    let stale = std::fs::read_dir(&runs_dir)
        .map(|d| d.flatten().filter(|e| !planned.contains(e.file_name().to_string_lossy().as_ref())).count())
        .unwrap_or(0);
    if stale > 0 {
        results
            .warnings
            .push(format!("ignored {stale} folder(s) in {} that plan.json does not list (from an earlier plan)", runs_dir.display()));
    }
    results.axes = order_axes(axes);
    results
}

fn order_axes(axes: BTreeSet<String>) -> Vec<String> {
    let mut ordered: Vec<String> = BUILTIN_AXES.iter().map(|a| a.to_string()).collect();
    ordered.extend(axes.into_iter().filter(|a| !BUILTIN_AXES.contains(&a.as_str()) && a != "drift"));
    ordered
}

/// The records of one run: Ok(None) when it is not done (pending, running, failed: nothing to collect).
fn read_run(folder: &Path, id: &str, sweep: &str) -> anyhow::Result<Option<Vec<Record>>> {
    let Some(status) = read_status(folder)? else { return Ok(None) };
    if status.state != State::Done {
        return Ok(None);
    }
    let params_path = folder.join("params.json");
    let params: ParamsFile = read_json(&params_path)?;
    if params.id != id {
        anyhow::bail!("{}: field `id` is {:?}, but the folder is run {id}", params_path.display(), params.id);
    }
    let metrics_path = folder.join("metrics.json");
    let metrics: MetricsFile = read_json(&metrics_path)?;
    let provenance = provenance(&status);
    let mut records = Vec::new();
    for (i, rec) in metrics.records.iter().enumerate() {
        if !rec.drift_s.is_finite() || rec.drift_s < 0.0 {
            anyhow::bail!("{}: records[{i}].drift_s is {}, not a time >= 0", metrics_path.display(), rec.drift_s);
        }
        for (metric, value) in &rec.metrics {
            let Some(value) = value.filter(|v| v.is_finite()) else { continue };
            records.push(Record {
                run_id: params.id.clone(),
                run_name: params.name.clone(),
                sweep: params.sweep.clone().unwrap_or_else(|| sweep.to_string()),
                values: params.values.clone(),
                drift_s: rec.drift_s,
                repeat: rec.repeat,
                metric: metric.clone(),
                value,
                provenance: provenance.clone(),
            });
        }
    }
    Ok(Some(records))
}

fn provenance(s: &StatusFile) -> Provenance {
    Provenance { pimsweep: s.pimsweep.clone(), host: s.host.clone(), device: s.device.clone(), threads: s.threads, wall_s: s.wall_s }
}

/// The long table as a DataFrame, with the columns of docs/RESULTS.md.
pub fn to_dataframe(results: &Results) -> PolarsResult<DataFrame> {
    let recs = &results.records;
    let text = |name: &str, f: &dyn Fn(&Record) -> Option<String>| -> Column {
        Column::new(name.into(), recs.iter().map(f).collect::<Vec<Option<String>>>())
    };
    let mut columns = vec![
        text("run_id", &|r| Some(r.run_id.clone())),
        text("run_name", &|r| Some(r.run_name.clone())),
        text("sweep", &|r| Some(r.sweep.clone())),
    ];
    for axis in &results.axes {
        columns.push(text(axis, &|r| r.values.get(axis).cloned().flatten()));
    }
    columns.push(Column::new("drift_s".into(), recs.iter().map(|r| r.drift_s).collect::<Vec<f64>>()));
    columns.push(Column::new("repeat".into(), recs.iter().map(|r| r.repeat).collect::<Vec<i64>>()));
    columns.push(text("metric", &|r| Some(r.metric.clone())));
    columns.push(Column::new("value".into(), recs.iter().map(|r| r.value).collect::<Vec<f64>>()));
    columns.push(text("pimsweep", &|r| r.provenance.pimsweep.clone()));
    columns.push(text("host", &|r| r.provenance.host.clone()));
    columns.push(text("device", &|r| r.provenance.device.clone()));
    columns.push(Column::new("threads".into(), recs.iter().map(|r| r.provenance.threads).collect::<Vec<Option<i64>>>()));
    columns.push(Column::new("wall_s".into(), recs.iter().map(|r| r.provenance.wall_s).collect::<Vec<Option<f64>>>()));
    DataFrame::new(recs.len(), columns)
}

/// Serialises a DataFrame as Parquet and writes it atomically.
pub fn write_parquet(df: &DataFrame, path: &Path) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut df.clone()).with_context(|| format!("cannot encode {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// Writes `<sweep>/results.parquet`; returns its path.
pub fn write_results(sweep_dir: &Path, results: &Results) -> anyhow::Result<PathBuf> {
    let path = sweep_dir.join("results.parquet");
    let df = to_dataframe(results).context("cannot build the results table")?;
    write_parquet(&df, &path)?;
    Ok(path)
}
