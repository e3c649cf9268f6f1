//! The parts of `<sweep>/plan.json` that reports need: the runs and stages the sweep planned (to count what is
//! pending and to ignore run folders of earlier plans) and the table and plot specs under "reports"
//! (written by `plan::reports_json`), so a results folder can be re-rendered without the sweep file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::files::read_json;

#[derive(Debug, Clone, Deserialize)]
pub struct PlanFile {
    pub sweep: String,
    #[serde(default)]
    pub description: Option<String>,
    pub runs: Vec<PlannedRun>,
    #[serde(default)]
    pub stages: Vec<PlannedStage>,
    #[serde(default)]
    pub reports: Reports,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlannedRun {
    pub id: String,
    pub name: String,
    /// Reported axis → canonical value (null where the axis does not apply), as in params.json.
    #[serde(default)]
    pub values: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlannedStage {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reports {
    #[serde(default)]
    pub tables: Vec<TableSpec>,
    #[serde(default)]
    pub plots: Vec<PlotSpec>,
}

/// `axis=value,value`: a record matches when its axis value (canonical text) is one of `values`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Clause {
    pub axis: String,
    pub values: Vec<String>,
}

/// A `table` node of the sweep.
#[derive(Debug, Clone, Deserialize)]
pub struct TableSpec {
    pub title: String,
    #[serde(rename = "where", default)]
    pub filter: Vec<Clause>,
    pub rows: String,
    pub columns: String,
    #[serde(default)]
    pub average: bool,
    /// None: each task's table metric.
    #[serde(default)]
    pub metric: Option<String>,
}

/// A `plot` node of the sweep.
#[derive(Debug, Clone, Deserialize)]
pub struct PlotSpec {
    pub title: String,
    #[serde(rename = "where", default)]
    pub filter: Vec<Clause>,
    pub x: String,
    #[serde(default)]
    pub series: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default)]
    pub log_x: bool,
}

impl PlanFile {
    pub fn read(sweep_dir: &Path) -> anyhow::Result<PlanFile> {
        read_json(&sweep_dir.join("plan.json"))
    }
}
