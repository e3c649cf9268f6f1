//! LoRA adapters (PIM_MODELS.md §7) on the model's linear seam: an adapted layer computes
//! `base(x) + (alpha / rank) · dropout(x)·Aᵀ·Bᵀ`, where `base` is whatever the model's linear forward does
//! (an analog tile in the `lora` mode) on the layer's FROZEN weight, and A `[rank, in]`, B `[out, rank]` are
//! digital, noise-free and the only encoder parameters that train. Initialised as PEFT does: A Kaiming-uniform
//! (bound 1/√in), B zero, so an adapted model starts equal to its base model.
//!
//! The adapters live in their own [`VarMap`] with PEFT's tensor names (`<layer>.lora_A.weight`), saved beside
//! a checkpoint as `adapters.safetensors`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};

use super::encoder::Mode;
use super::layers::DropoutRng;
use super::linear::{LinearForward, LinearLayer};

/// The layers LoRA adapts by default: every query, key, value and dense layer of the encoder (the pooler and
/// the task head stay as they are; the head trains when `train-head` is on).
pub const DEFAULT_TARGETS: [&str; 4] = ["encoder.layer.*.query", "encoder.layer.*.key", "encoder.layer.*.value", "encoder.layer.*.dense"];

/// A sweep's `lora` node.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSettings {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f32,
    /// Name patterns of the adapted layers (`*` any characters).
    pub targets: Vec<String>,
}

impl LoraSettings {
    /// The output scale `alpha / rank` (4 for the reference's rank 8, alpha 32).
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    fn adapts(&self, layer: &str) -> bool {
        self.targets.iter().any(|t| glob::Pattern::new(t).is_ok_and(|p| p.matches(layer)))
    }
}

/// One adapted layer's matrices.
#[derive(Debug, Clone)]
struct Adapter {
    a: Var,
    b: Var,
}

/// The adapters of one model.
pub struct LoraAdapters {
    settings: LoraSettings,
    varmap: VarMap,
    adapters: BTreeMap<String, Adapter>,
    dropout: DropoutRng,
}

impl LoraAdapters {
    /// Fresh adapters for every target among `layers` (name, in, out), A drawn from `seed`.
    pub fn new<'a>(
        settings: LoraSettings,
        layers: impl IntoIterator<Item = (&'a str, usize, usize)>,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let varmap = VarMap::new();
        let mut adapters = BTreeMap::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for (name, in_features, out_features) in layers.into_iter().filter(|(n, _, _)| settings.adapts(n)) {
            let bound = 1.0 / (in_features as f32).sqrt();
            let a: Vec<f32> = (0..settings.rank * in_features).map(|_| rng.random_range(-bound..bound)).collect();
            let a = Var::from_tensor(&Tensor::from_vec(a, (settings.rank, in_features), device)?)?;
            let b = Var::zeros((out_features, settings.rank), DType::F32, device)?;
            let mut data = varmap.data().lock().expect("fresh map");
            data.insert(format!("{name}.lora_A.weight"), a.clone());
            data.insert(format!("{name}.lora_B.weight"), b.clone());
            adapters.insert(name.to_string(), Adapter { a, b });
        }
        // Its own dropout stream, apart from the model's (which is seeded from the same run seed).
        Ok(LoraAdapters { settings, varmap, adapters, dropout: DropoutRng::new(seed ^ 0x4C6F_5241) })
    }

    /// Adapters for every target layer of a model.
    pub fn for_model(settings: LoraSettings, model: &super::SequenceClassifier, seed: u64) -> Result<Self> {
        let layers: Vec<(String, usize, usize)> =
            model.linear_layers().map(|l| (l.name().to_string(), l.in_features(), l.out_features())).collect();
        LoraAdapters::new(settings, layers.iter().map(|(n, i, o)| (n.as_str(), *i, *o)), seed, model.device())
    }

    pub fn settings(&self) -> &LoraSettings {
        &self.settings
    }

    /// The adapted layers' names.
    pub fn layers(&self) -> impl Iterator<Item = &str> {
        self.adapters.keys().map(String::as_str)
    }

    /// The trainable variables with their tensor names, sorted by name.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().expect("adapter map");
        let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// rank · (in + out) summed over the adapted layers.
    pub fn num_parameters(&self) -> usize {
        self.adapters.values().map(|a| a.a.elem_count() + a.b.elem_count()).sum()
    }

    /// Writes `adapters.safetensors` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.varmap.save(dir.join("adapters.safetensors"))
    }

    /// Loads the adapters saved by [`LoraAdapters::save`] into fresh ones of the same layers and shapes.
    pub fn load(&mut self, dir: &Path) -> Result<()> {
        self.varmap.load(dir.join("adapters.safetensors"))
    }

    /// The adapter term of `layer` for `x`, None when the layer is not adapted.
    fn delta(&self, layer: &str, x: &Tensor, mode: Mode) -> Result<Option<Tensor>> {
        let Some(adapter) = self.adapters.get(layer) else { return Ok(None) };
        let x = match mode {
            Mode::Train if self.settings.dropout > 0.0 => self.dropout.apply(x, self.settings.dropout)?,
            _ => x.clone(),
        };
        let h = super::linear::matmul_transposed_weight(&x, adapter.a.as_tensor())?;
        let d = super::linear::matmul_transposed_weight(&h, adapter.b.as_tensor())?;
        Ok(Some((d * self.settings.scale())?))
    }
}

/// A model's linear forward with LoRA: adapted layers run `base` (the analog tile) on their frozen weight plus
/// the digital adapter term; every other layer (the pooler, the task head) is digital and noise-free (§7).
pub struct LoraLinear {
    pub base: Arc<dyn LinearForward>,
    pub adapters: Arc<LoraAdapters>,
}

impl LinearForward for LoraLinear {
    fn forward(&self, layer: &LinearLayer, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if !self.adapters.adapters.contains_key(layer.name()) {
            return layer.digital_forward(x);
        }
        // Frozen: no gradient reaches the base weight and bias (nor is any computed for them).
        let y = self.base.forward(&layer.frozen(), x, mode)?;
        let delta = self.adapters.delta(layer.name(), x, mode)?.expect("adapted layer");
        y + delta
    }

    fn begin_forward(&self, layers: &[&LinearLayer], mode: Mode) -> Result<()> {
        let adapted: Vec<LinearLayer> =
            layers.iter().filter(|l| self.adapters.adapters.contains_key(l.name())).map(|l| l.frozen()).collect();
        self.base.begin_forward(&adapted.iter().collect::<Vec<_>>(), mode)
    }

    /// The base's step on the adapted (analog) layers, frozen as they are: AIHWKIT clips and remaps every tile.
    fn post_update(&self, layer: &LinearLayer) -> Result<Option<Tensor>> {
        if !self.adapters.adapters.contains_key(layer.name()) {
            return Ok(None);
        }
        self.base.post_update(layer)
    }
}

#[cfg(test)]
mod tests;
