//! The sweep language: KDL files that declare grids of PIM experiments. [`load`] reads a sweep file and its
//! includes into a typed [`Sweep`], or returns diagnostics that point into the user's files.
//!
//! Reading happens in two passes: [`parse`] walks the KDL nodes and collects definitions with their spans
//! (so a technology may be used before the include that defines it), then [`resolve`] checks every axis,
//! filter, table and plot against those definitions.

pub mod axis;
pub mod diag;
pub mod duration;
pub mod params;
mod parse;
mod parse_tech;
mod reader;
mod resolve;
pub mod source;
pub mod tech;

use std::collections::BTreeMap;
use std::path::Path;

pub use axis::{Axis, AxisValue, Scope};
pub use diag::{Loc, SweepDiagnostic};
pub use params::{ParamSet, ParamValue};
pub use resolve::parse_cli_filter;
pub use source::{DiskFiles, FileSource, MemoryFiles};
pub use tech::{Mode, PimKind, TechnologyKind};

/// A sweep, validated: everything the planner needs, with the spans diagnostics point at.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    pub description: Option<String>,
    /// The `sweep` node, for diagnostics about the sweep as a whole.
    pub loc: Loc,
    pub model: ModelSpec,
    pub data: DataSpec,
    pub max_seq_len: u32,
    pub seed: u64,
    pub train: ParamSet,
    /// The shared digital fine-tune stage; the `train` values when no `baseline` node is written.
    pub baseline: ParamSet,
    pub eval: ParamSet,
    pub lora: ParamSet,
    /// Defined and built-in technologies by name.
    pub technologies: BTreeMap<String, Technology>,
    pub grids: Vec<Grid>,
    pub filters: Vec<Filter>,
    pub tables: Vec<TableSpec>,
    pub plots: Vec<PlotSpec>,
}

/// The model every run starts from (unless a `model` axis varies it).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// A hub id or a local path; `{task}` is replaced by the run's task.
    pub template: String,
    /// Whether the model already has a head for the task (else a digital fine-tune stage comes first).
    /// Written `task-head=#true|#false`; by default, true exactly when the id contains `{task}`.
    pub task_head: Option<bool>,
}

impl ModelSpec {
    pub fn for_task(&self, task: crate::task::Task) -> String {
        self.template.replace("{task}", task.name())
    }

    pub fn has_task_head(&self) -> bool {
        self.task_head.unwrap_or_else(|| self.template.contains("{task}"))
    }
}

/// Where GLUE comes from, and the optional deterministic subsample.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    pub source: DataSource,
    pub max_train: Option<u64>,
    pub max_eval: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// A Hugging Face dataset id such as `nyu-mll/glue`.
    Hub(String),
    /// A classic GLUE TSV folder (written with `./`, `../`, `/` or `~`); resolved against the sweep file.
    Folder { written: String, resolved: std::path::PathBuf },
}

impl DataSource {
    /// The text that identifies the data in run ids (as written, so ids do not depend on the machine).
    pub fn canonical(&self) -> &str {
        match self {
            DataSource::Hub(id) => id,
            DataSource::Folder { written, .. } => written,
        }
    }
}

/// A technology a run can use.
#[derive(Debug, Clone)]
pub struct Technology {
    pub name: String,
    pub kind: TechnologyKind,
    /// Where it was defined (None for built-ins).
    pub loc: Option<Loc>,
}

/// One `grid` (or a top-level `zip`): the cartesian product of its factors.
#[derive(Debug, Clone)]
pub struct Grid {
    pub loc: Loc,
    pub factors: Vec<Factor>,
}

/// A factor of a grid: one axis with its values, or a `zip` of several axes whose values pair up row by row.
#[derive(Debug, Clone)]
pub struct Factor {
    pub axes: Vec<(Axis, Loc)>,
    /// One row per combination this factor contributes; each row has one value per axis.
    pub rows: Vec<Vec<(AxisValue, Loc)>>,
}

/// `exclude` or `only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    Exclude,
    Only,
}

/// A filter over grid points: a point matches when every clause matches.
#[derive(Debug, Clone)]
pub struct Filter {
    pub kind: FilterKind,
    pub loc: Loc,
    pub clauses: Vec<Clause>,
}

/// `axis=value` (several values: any of them).
#[derive(Debug, Clone)]
pub struct Clause {
    pub axis: Axis,
    pub values: Vec<AxisValue>,
    pub loc: Loc,
}

impl Clause {
    pub fn matches(&self, value: &AxisValue) -> bool {
        let canonical = value.canonical();
        self.values.iter().any(|v| v.canonical() == canonical)
    }
}

/// A `table` node: a pivot of the results laid out like the published tables.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub title: String,
    pub loc: Loc,
    pub filter: Vec<Clause>,
    pub rows: Axis,
    pub columns: Axis,
    /// Add an `Avg` column (plain mean of the row's cells).
    pub average: bool,
    /// A metric name, or None for each task's table metric.
    pub metric: Option<String>,
}

/// A `plot` node: a line chart of a metric against an axis.
#[derive(Debug, Clone)]
pub struct PlotSpec {
    pub title: String,
    pub loc: Loc,
    pub filter: Vec<Clause>,
    pub x: Axis,
    pub series: Option<Axis>,
    pub metric: Option<String>,
    pub log_x: bool,
}

/// A successfully read sweep and the warnings found on the way.
pub struct Loaded {
    pub sweep: Sweep,
    pub warnings: Vec<SweepDiagnostic>,
}

/// Reads and validates a sweep file from disk.
pub fn load(path: &Path) -> Result<Loaded, Vec<SweepDiagnostic>> {
    load_with(&DiskFiles, path)
}

/// Whether a file is a sweep (it has a `sweep` node) rather than a preset of definitions to include.
pub fn is_sweep_file(text: &str) -> bool {
    match kdl::KdlDocument::parse_v2(text).or_else(|_| kdl::KdlDocument::parse_v1(text)) {
        Ok(doc) => doc.nodes().iter().any(|n| n.name().value() == "sweep"),
        // Unparseable: let the sweep reader report the syntax error.
        Err(_) => true,
    }
}

/// Reads a preset file (technology definitions meant to be included) and returns what it defines.
pub fn load_preset(path: &Path) -> Result<(Vec<Technology>, Vec<SweepDiagnostic>), Vec<SweepDiagnostic>> {
    let mut decls = parse::read_preset(&DiskFiles, path)?;
    let techs = decls
        .technologies
        .drain(..)
        .map(|t| Technology { name: t.name, kind: TechnologyKind::Pim { kind: t.kind, params: t.params }, loc: Some(t.loc) })
        .collect();
    Ok((techs, decls.diags.items))
}

/// Reads and validates a sweep file through any [`FileSource`] (tests and the fuzzer use [`MemoryFiles`]).
pub fn load_with(files: &dyn FileSource, path: &Path) -> Result<Loaded, Vec<SweepDiagnostic>> {
    let decls = parse::read_sweep(files, path)?;
    resolve::resolve(decls)
}
