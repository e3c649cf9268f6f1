//! The `lora` mode's pieces of work (PIM_MODELS.md §7): the adapters a LoRA stage trains on top of the frozen
//! pretrained model (whose mapped layers run on the technology's tiles), the variables that train (adapters,
//! and the task head with `train-head`), and the files that carry them from the stage to its runs:
//! `checkpoint/adapters.safetensors` and `checkpoint/lora.json` beside the model checkpoint.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::Var;

use crate::model::lora::{DEFAULT_TARGETS, LoraAdapters, LoraLinear, LoraSettings};
use crate::model::{LinearForward, SequenceClassifier};
use crate::sweep::ParamSet;

/// The adapter settings of a sweep's `lora` node.
pub fn settings(params: &ParamSet) -> LoraSettings {
    LoraSettings {
        rank: params.int("rank") as usize,
        alpha: params.float("alpha"),
        dropout: params.float("dropout") as f32,
        targets: DEFAULT_TARGETS.iter().map(|t| t.to_string()).collect(),
    }
}

/// The variables a LoRA stage trains: the adapters, and the task head's when `train_head`.
pub fn trainable(adapters: &LoraAdapters, model: &SequenceClassifier, train_head: bool) -> Vec<(String, Var)> {
    let mut vars = adapters.vars();
    if train_head {
        vars.extend(model.vars().into_iter().filter(|(name, _)| name.starts_with("classifier.")));
    }
    vars
}

/// The model's linear forward with the adapters on top of `base`.
pub fn with_adapters(base: Arc<dyn LinearForward>, adapters: &Arc<LoraAdapters>) -> Arc<dyn LinearForward> {
    Arc::new(LoraLinear { base, adapters: adapters.clone() })
}

/// Writes the adapters and their settings into a checkpoint folder.
pub fn save(adapters: &LoraAdapters, checkpoint: &Path) -> Result<()> {
    adapters.save(checkpoint).with_context(|| format!("cannot write the adapters in {}", checkpoint.display()))?;
    let s = adapters.settings();
    let json = serde_json::json!({ "rank": s.rank, "alpha": s.alpha, "dropout": s.dropout, "targets": s.targets });
    std::fs::write(checkpoint.join("lora.json"), serde_json::to_string_pretty(&json)?).context("cannot write lora.json")
}

/// The adapters saved in a checkpoint folder, None when it holds none (not a LoRA stage).
pub fn load(checkpoint: &Path, model: &SequenceClassifier) -> Result<Option<Arc<LoraAdapters>>> {
    let path = checkpoint.join("lora.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let field = |k: &str| json.get(k).with_context(|| format!("{}: no field `{k}`", path.display()));
    let settings = LoraSettings {
        rank: field("rank")?.as_u64().with_context(|| format!("{}: `rank` is not an integer", path.display()))? as usize,
        alpha: field("alpha")?.as_f64().with_context(|| format!("{}: `alpha` is not a number", path.display()))?,
        dropout: field("dropout")?.as_f64().unwrap_or(0.0) as f32,
        targets: serde_json::from_value(field("targets")?.clone()).with_context(|| format!("{}: `targets`", path.display()))?,
    };
    let mut adapters = LoraAdapters::for_model(settings, model, 0)?;
    adapters.load(checkpoint).with_context(|| format!("loading {}", checkpoint.join("adapters.safetensors").display()))?;
    Ok(Some(Arc::new(adapters)))
}
