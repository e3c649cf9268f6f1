//! Technologies: the built-in rows (`original`, `random`) and the PIM kinds, each with its parameter schema
//! and the parameters that the generic `noise` and `bits` axes bind to.

use std::fmt;

use super::params::{self, ParamSet, ParamSpec};

/// A PIM technology kind (`technology "x" kind=… model=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PimKind {
    /// Digital SRAM with block floating point (PIM_MODELS.md §3).
    Digital,
    /// Analog ReRAM crossbar (§4).
    Reram,
    /// Analog PCM, AIHWKIT's statistical model (§5a).
    PcmAihwkit,
    /// Analog PCM as NewComputeBench computes it (§5b).
    PcmNcb,
}

pub const KIND_NAMES: &[&str] = &["digital", "reram", "pcm"];
pub const PCM_MODELS: &[&str] = &["aihwkit", "ncb"];

impl PimKind {
    pub fn schema(self) -> &'static [ParamSpec] {
        match self {
            PimKind::Digital => params::DIGITAL,
            PimKind::Reram => params::RERAM,
            PimKind::PcmAihwkit => params::PCM_AIHWKIT,
            PimKind::PcmNcb => params::PCM_NCB,
        }
    }

    /// `kind` as written in sweep files.
    pub fn kind_name(self) -> &'static str {
        match self {
            PimKind::Digital => "digital",
            PimKind::Reram => "reram",
            PimKind::PcmAihwkit | PimKind::PcmNcb => "pcm",
        }
    }

    /// `model` as written in sweep files (PCM only).
    pub fn model_name(self) -> Option<&'static str> {
        match self {
            PimKind::PcmAihwkit => Some("aihwkit"),
            PimKind::PcmNcb => Some("ncb"),
            _ => None,
        }
    }

    /// The parameters the `noise` axis sets (empty: the axis does not apply and collapses).
    pub fn noise_knob(self) -> &'static [&'static str] {
        match self {
            PimKind::Digital => &["approximate-noise"],
            PimKind::Reram => &["noise-magnitude"],
            PimKind::PcmAihwkit | PimKind::PcmNcb => &["prog-noise-scale"],
        }
    }

    /// The parameters the `bits` axis sets (empty: the axis does not apply and collapses).
    /// Digital SRAM's precision is its `format`: sweep it with a `"<tech>.format"` axis.
    pub fn bits_knob(self) -> &'static [&'static str] {
        match self {
            PimKind::Digital => &[],
            PimKind::Reram => &["weight-bits"],
            PimKind::PcmAihwkit => &["input-bits", "output-bits"],
            PimKind::PcmNcb => &["dac-bits", "adc-bits"],
        }
    }

    /// Whether conductances drift with time, so the `drift` axis applies.
    pub fn drifts(self) -> bool {
        self == PimKind::PcmAihwkit
    }
}

/// What a technology name stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum TechnologyKind {
    /// Digital f32, no PIM: the "Original" row.
    Original,
    /// A randomly initialised classifier: the "Random" row.
    Random,
    Pim {
        kind: PimKind,
        params: ParamSet,
    },
}

pub const BUILTIN_TECHNOLOGIES: &[&str] = &["original", "random"];

impl TechnologyKind {
    pub fn pim_kind(&self) -> Option<PimKind> {
        match self {
            TechnologyKind::Pim { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub fn schema(&self) -> &'static [ParamSpec] {
        self.pim_kind().map_or(&[], PimKind::schema)
    }

    pub fn noise_knob(&self) -> &'static [&'static str] {
        self.pim_kind().map_or(&[], PimKind::noise_knob)
    }

    pub fn bits_knob(&self) -> &'static [&'static str] {
        self.pim_kind().map_or(&[], PimKind::bits_knob)
    }

    pub fn drifts(&self) -> bool {
        self.pim_kind().is_some_and(PimKind::drifts)
    }

    /// Canonical JSON of the kind and every parameter (defaults included), for run ids.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            TechnologyKind::Original => serde_json::json!({ "kind": "original" }),
            TechnologyKind::Random => serde_json::json!({ "kind": "random" }),
            TechnologyKind::Pim { kind, params } => serde_json::json!({
                "kind": kind.kind_name(),
                "model": kind.model_name(),
                "params": params.to_json(),
            }),
        }
    }
}

/// The training a run does, decided by its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Transform a trained model, then evaluate.
    #[serde(rename = "post-training")]
    PostTraining,
    /// Hardware-aware fine-tuning on the simulated technology, then evaluate.
    #[serde(rename = "pim-finetune")]
    PimFinetune,
    /// Hardware-aware LoRA from the pretrained model.
    #[serde(rename = "lora")]
    Lora,
    /// The digital fine-tune only (the baseline).
    #[serde(rename = "finetune")]
    Finetune,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::PostTraining, Mode::PimFinetune, Mode::Lora, Mode::Finetune];
    pub const NAMES: [&'static str; 4] = ["post-training", "pim-finetune", "lora", "finetune"];

    pub fn name(self) -> &'static str {
        match self {
            Mode::PostTraining => "post-training",
            Mode::PimFinetune => "pim-finetune",
            Mode::Lora => "lora",
            Mode::Finetune => "finetune",
        }
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the run trains with the `train` parameters.
    pub fn trains(self) -> bool {
        matches!(self, Mode::PimFinetune | Mode::Lora)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
