//! The planner: expands a [`Sweep`]'s grids, zips and filters into [`Run`]s, collapses axes that do not
//! apply to a run (identical runs are one run), and derives the stage DAG: the trainings that runs start
//! from — a digital fine-tune shared by every technology and mode that starts from the same model, task,
//! baseline parameters and seed, and each run's own hardware-aware training. Runs evaluate; stages train.

mod expand;
pub mod ids;
mod print;

use serde_json::Value;

pub use expand::expand;
pub use print::{plan_json, print_plan, print_why, reports_json};

use crate::sweep::{DataSpec, Mode, ParamSet, SweepDiagnostic, TechnologyKind};
use crate::task::Task;

/// An expanded sweep.
#[derive(Debug)]
pub struct Plan {
    pub sweep: String,
    pub description: Option<String>,
    pub runs: Vec<Run>,
    pub stages: Vec<Stage>,
    /// Grid points before filtering and merging.
    pub points: usize,
    /// Grid points removed by `exclude`/`only`.
    pub filtered: usize,
    /// Axes that did not apply to some runs, and why.
    pub collapsed: Vec<Collapse>,
    pub warnings: Vec<SweepDiagnostic>,
}

/// One evaluation: a model on a task under a technology, after its stage (if any), at each drift time.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    /// Readable, e.g. `task=rte,tech=reram,noise=0.05,mode=post-training,seed=42`.
    pub name: String,
    pub model: String,
    pub task: Task,
    pub technology: String,
    pub tech: TechnologyKind,
    pub mode: Mode,
    pub seed: u64,
    /// Drift times in seconds, ascending; one chip per repeat is evaluated at all of them.
    pub drift_s: Vec<f64>,
    pub eval: ParamSet,
    pub data: DataSpec,
    pub max_seq_len: u32,
    /// The stage whose checkpoint this run evaluates (None: the model as loaded, or a random init).
    pub stage: Option<String>,
    /// The axis values that name this run (after collapse), in display order.
    pub axes: Vec<(String, String)>,
    /// Every reported axis (model, task, technology, mode, noise, bits, seed, and each parameter path the
    /// sweep mentions) → the run's canonical value, None where the axis does not apply. Drift is per record.
    pub values: std::collections::BTreeMap<String, Option<String>>,
    /// Everything that determines the result; its hash is the id.
    pub canonical: Value,
}

impl Run {
    /// Whether this run matches a filter clause (on its reported axis values; a `drift` clause matches a run
    /// that evaluates any of the listed drift times).
    pub fn matches(&self, clause: &crate::sweep::Clause) -> bool {
        use crate::sweep::{Axis, AxisValue};
        if clause.axis == Axis::Drift {
            return self.drift_s.iter().any(|d| clause.matches(&AxisValue::Drift(*d)));
        }
        let wanted: Vec<String> = clause.values.iter().map(AxisValue::canonical).collect();
        self.values.get(&clause.axis.key()).and_then(|v| v.as_ref()).is_some_and(|v| wanted.contains(v))
    }
}

/// What a stage trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StageKind {
    /// Digital fine-tune with the `baseline` parameters.
    Finetune,
    /// Hardware-aware fine-tune on a technology with the `train` parameters.
    PimFinetune,
    /// Hardware-aware LoRA on a technology with the `train` and `lora` parameters.
    Lora,
}

impl StageKind {
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Finetune => "finetune",
            StageKind::PimFinetune => "pim-finetune",
            StageKind::Lora => "lora",
        }
    }
}

/// A training whose checkpoint one or more runs (or stages) start from.
#[derive(Debug, Clone)]
pub struct Stage {
    pub id: String,
    pub name: String,
    pub kind: StageKind,
    pub model: String,
    pub task: Task,
    pub seed: u64,
    pub technology: Option<String>,
    /// The technology a hardware-aware stage trains on (None for the digital fine-tune).
    pub tech: Option<TechnologyKind>,
    pub train: ParamSet,
    /// LoRA adapters (lora stages).
    pub lora: Option<ParamSet>,
    pub data: DataSpec,
    pub max_seq_len: u32,
    /// The stage this one starts from (a PIM-aware fine-tune of a model without a task head).
    pub parent: Option<String>,
    /// Ids of the runs that evaluate this stage's checkpoint.
    pub runs: Vec<String>,
    /// Ids of the stages that start from this one.
    pub children: Vec<String>,
    pub canonical: Value,
}

/// An axis that collapsed for some grid points.
#[derive(Debug, Clone, PartialEq)]
pub struct Collapse {
    pub axis: String,
    pub reason: String,
    pub points: usize,
}

impl Plan {
    pub fn run(&self, id: &str) -> Option<&Run> {
        self.runs.iter().find(|r| r.id == id)
    }

    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// Finds runs by id, id prefix or name (for `plan --why`).
    pub fn find_runs(&self, key: &str) -> Vec<&Run> {
        if let Some(r) = self.runs.iter().find(|r| r.id == key || r.name == key) {
            return vec![r];
        }
        let by_prefix: Vec<&Run> = self.runs.iter().filter(|r| r.id.starts_with(key)).collect();
        if !by_prefix.is_empty() || key.len() < 3 {
            return by_prefix;
        }
        self.runs.iter().filter(|r| r.name.contains(key)).collect()
    }
}
