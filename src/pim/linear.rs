//! [`PimLinear`]: a technology plugged into the model's linear-layer seam ([`LinearForward`]).
//!
//! It picks the layers the technology maps (`only-layers` / `exclude-layers`), hands each mapped layer's
//! input rows and master weight to the [`Simulator`], and adds the bias digitally. In training it applies
//! the straight-through estimator of PIM_MODELS.md §6: the value is the simulated output, the gradient is
//! the plain linear gradient with the clean weights (`y = clean + (pim − clean).detach()`), or, for a
//! technology with AIHWKIT's hardware-aware training, the gradient through the perturbed weights it used.
//!
//! One `PimLinear` is one evaluation (a chip at a drift time) or one training: it counts each layer's
//! forward calls so that every call draws fresh noise, and the same run replays the same draws.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{D, Result, Tensor};

use super::gradient;
use super::noise::NoiseKey;
use super::simulator::{Simulator, TileCall};
use crate::model::{LinearForward, LinearLayer, Mode};
use crate::sweep::ParamSet;

/// Which layers a technology maps, by name pattern (`*` any characters, `?` one, `[abc]` a set).
#[derive(Debug, Clone, Default)]
pub struct LayerFilter {
    only: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
}

impl LayerFilter {
    /// From a technology's `only-layers` and `exclude-layers` (validated when the sweep was read).
    pub fn from_params(params: &ParamSet) -> anyhow::Result<LayerFilter> {
        let compile = |name: &str| -> anyhow::Result<Vec<glob::Pattern>> {
            params.patterns(name).iter().map(|p| glob::Pattern::new(p).map_err(|e| anyhow::anyhow!("{name} {p:?}: {}", e.msg))).collect()
        };
        Ok(LayerFilter { only: compile("only-layers")?, exclude: compile("exclude-layers")? })
    }

    /// Whether the layer runs on the technology (otherwise it stays digital).
    pub fn maps(&self, layer: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| p.matches(layer))) && !self.exclude.iter().any(|p| p.matches(layer))
    }
}

/// A technology ready to plug into models: its simulator and the layers it maps.
#[derive(Debug, Clone)]
pub struct Technology {
    pub simulator: Arc<dyn Simulator>,
    pub filter: LayerFilter,
}

impl Technology {
    /// From a sweep's technology kind and validated parameters.
    pub fn new(kind: crate::sweep::PimKind, params: &ParamSet) -> anyhow::Result<Technology> {
        Ok(Technology { simulator: super::simulator::build(kind, params)?, filter: LayerFilter::from_params(params)? })
    }

    /// The linear forward of one evaluation or training (see [`PimLinear::new`]).
    pub fn linear(&self, seed: u64, chip: u64, drift_s: f64, evaluation: u64) -> Arc<PimLinear> {
        Arc::new(PimLinear::new(self.simulator.clone(), self.filter.clone(), seed, chip, drift_s, evaluation))
    }
}

/// The linear forward of a model whose mapped layers run on a simulated technology.
#[derive(Debug)]
pub struct PimLinear {
    simulator: Arc<dyn Simulator>,
    filter: LayerFilter,
    seed: u64,
    chip: u64,
    drift_s: f64,
    /// Distinguishes the evaluations of one chip (repeats and drift times), so their fresh draws differ.
    evaluation: u64,
    /// Forward calls so far, per layer name.
    calls: Mutex<HashMap<String, u64>>,
}

impl PimLinear {
    /// `chip` names the programmed chip (a repeat, or 0 when repeats share one); `evaluation` must differ
    /// between the evaluations of a run (e.g. `repeat · drift times + drift index`).
    pub fn new(simulator: Arc<dyn Simulator>, filter: LayerFilter, seed: u64, chip: u64, drift_s: f64, evaluation: u64) -> PimLinear {
        PimLinear { simulator, filter, seed, chip, drift_s, evaluation, calls: Mutex::new(HashMap::new()) }
    }

    /// The next draw of `layer`: the evaluation in the high bits, the layer's call counter in the low ones.
    fn next_draw(&self, layer: &str) -> u64 {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let count = calls.entry(layer.to_string()).or_insert(0);
        *count += 1;
        (self.evaluation << 32) | *count
    }
}

impl LinearForward for PimLinear {
    fn forward(&self, layer: &LinearLayer, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if !self.filter.maps(layer.name()) {
            return layer.digital_forward(x);
        }
        let in_features = x.dim(D::Minus1)?;
        let rows = x.elem_count() / in_features.max(1);
        // A 3-D input is [batch, seq, K]: sequences matter to `input-scale "block"`. A 2-D input (the head)
        // is treated as one sequence of examples, as NewComputeBench does.
        let rows_per_sequence = if x.rank() == 3 { x.dim(1)? } else { rows };
        let call = TileCall {
            layer: layer.name(),
            rows_per_sequence: rows_per_sequence.max(1),
            training: mode == Mode::Train,
            drift_s: self.drift_s,
            noise: NoiseKey::new(self.seed, layer.name(), self.chip, self.next_draw(layer.name())),
        };
        // The input rows in the graph (the gradient ops route the backward to them) and detached (the tiles').
        let x_graph = x.contiguous()?.reshape((rows, in_features))?;
        let x_rows = x_graph.detach();
        let mut out_dims = x.dims().to_vec();
        *out_dims.last_mut().expect("rank >= 1") = layer.out_features();
        let weight = layer.weight();
        if mode == Mode::Train
            && let Some(hwa) = self.simulator.hardware_aware_forward(&x_rows, &weight.detach(), &call)?
        {
            let y = gradient::hardware_aware(&x_graph, weight, hwa)?;
            return layer.add_bias(&y.reshape(out_dims)?);
        }
        let pim = self.simulator.matmul(&x_rows, &weight.detach(), &call)?;
        let y = match mode {
            Mode::Eval => pim,
            // Straight-through: forward value from the tiles, gradient of the clean f32 layer.
            Mode::Train => gradient::straight_through(&x_graph, weight, &pim)?,
        };
        layer.add_bias(&y.reshape(out_dims)?)
    }

    fn begin_forward(&self, layers: &[&LinearLayer], mode: Mode) -> Result<()> {
        let mapped: Vec<(&str, &Tensor)> = layers.iter().filter(|l| self.filter.maps(l.name())).map(|l| (l.name(), l.weight())).collect();
        self.simulator.begin_forward(&mapped, mode == Mode::Train)
    }

    fn post_update(&self, layer: &LinearLayer) -> Result<Option<Tensor>> {
        if !self.filter.maps(layer.name()) {
            return Ok(None);
        }
        self.simulator.post_update(&layer.weight().detach())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};
    use candle_nn::VarBuilder;

    use super::*;

    /// A stand-in technology with a visible effect: rounds x·Wᵀ to multiples of 0.25.
    #[derive(Debug)]
    struct Coarse;

    impl Simulator for Coarse {
        fn matmul(&self, x: &Tensor, weight: &Tensor, _call: &TileCall) -> Result<Tensor> {
            let y = x.matmul(&weight.t()?)?;
            (y * 4.0)?.round()? / 4.0
        }
    }

    fn layer(name: &str) -> (LinearLayer, candle_nn::VarMap) {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu).pp(name);
        let layer = LinearLayer::new(vb, 5, 3).unwrap();
        // VarMap initialises to zeros: give the weight and bias values that show an effect.
        for var in varmap.all_vars() {
            var.set(&Tensor::randn(0f32, 1.0, var.shape(), &Device::Cpu).unwrap()).unwrap();
        }
        (layer, varmap)
    }

    fn pim(filter: LayerFilter) -> PimLinear {
        PimLinear::new(Arc::new(Coarse), filter, 42, 0, 0.0, 0)
    }

    #[test]
    fn the_straight_through_gradient_is_the_clean_linear_gradient() {
        let (layer, varmap) = layer("encoder.layer.0.output.dense");
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 4, 5), &Device::Cpu).unwrap()).unwrap();
        let weight = varmap.data().lock().unwrap()["encoder.layer.0.output.dense.weight"].clone();
        let bias = varmap.data().lock().unwrap()["encoder.layer.0.output.dense.bias"].clone();
        let upstream = Tensor::randn(0f32, 1.0, (2, 4, 3), &Device::Cpu).unwrap();

        let gradients = |y: Tensor| {
            let grads = (y * &upstream).unwrap().sum_all().unwrap().backward().unwrap();
            [x.as_tensor(), weight.as_tensor(), bias.as_tensor()]
                .map(|t| grads.get(t).expect("every input gets a gradient").flatten_all().unwrap().to_vec1::<f32>().unwrap())
        };
        let simulated = pim(LayerFilter::default()).forward(&layer, x.as_tensor(), Mode::Train).unwrap();
        let plain = layer.digital_forward(x.as_tensor()).unwrap();
        // The value is the simulated one (on the 0.25 grid, plus the bias)...
        let values = (simulated.broadcast_sub(layer.bias()).unwrap() * 4.0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(values.iter().all(|v| (v - v.round()).abs() < 1e-5), "{values:?}");
        // ...the gradients those of the plain layer, to f32 rounding.
        for (a, b) in gradients(simulated).iter().zip(gradients(plain)) {
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() <= 1e-6 * v.abs().max(1.0), "{u} vs {v}");
            }
        }
    }

    #[test]
    fn excluded_layers_stay_digital_and_mapped_ones_do_not() {
        let x = Tensor::randn(0f32, 1.0, (3, 5), &Device::Cpu).unwrap();
        let filter = |only: &[&str], exclude: &[&str]| LayerFilter {
            only: only.iter().map(|p| glob::Pattern::new(p).unwrap()).collect(),
            exclude: exclude.iter().map(|p| glob::Pattern::new(p).unwrap()).collect(),
        };
        let head = filter(&[], &["classifier*", "pooler.*"]);
        assert!(!head.maps("classifier.out_proj") && !head.maps("pooler.dense") && head.maps("encoder.layer.0.attention.self.query"));
        let only_attention = filter(&["*.attention.*"], &[]);
        assert!(only_attention.maps("encoder.layer.3.attention.output.dense") && !only_attention.maps("encoder.layer.3.output.dense"));

        let (digital, _vars) = layer("classifier.out_proj");
        let exact = digital.digital_forward(&x).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(pim(head.clone()).forward(&digital, &x, Mode::Eval).unwrap().to_vec2::<f32>().unwrap(), exact);
        let (mapped, _vars) = layer("encoder.layer.0.output.dense");
        let simulated = pim(head).forward(&mapped, &x, Mode::Eval).unwrap().to_vec2::<f32>().unwrap();
        assert_ne!(simulated, mapped.digital_forward(&x).unwrap().to_vec2::<f32>().unwrap());
    }

    #[test]
    fn every_call_of_a_layer_draws_anew_and_a_replay_draws_the_same() {
        #[derive(Debug, Default)]
        struct Recorder(Mutex<Vec<NoiseKey>>);
        impl Simulator for Recorder {
            fn matmul(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
                self.0.lock().unwrap().push(call.noise);
                x.matmul(&weight.t()?)
            }
        }
        let (layer, _vars) = layer("encoder.layer.0.intermediate.dense");
        let x = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
        let keys = |evaluation: u64| {
            let recorder = Arc::new(Recorder::default());
            let linear = PimLinear::new(recorder.clone(), LayerFilter::default(), 7, 3, 0.0, evaluation);
            for _ in 0..3 {
                linear.forward(&layer, &x, Mode::Eval).unwrap();
            }
            recorder.0.lock().unwrap().clone()
        };
        let first = keys(0);
        assert_eq!(first.len(), 3);
        assert!(first[0].draw != first[1].draw && first[1].draw != first[2].draw);
        assert!(first.iter().all(|k| k.seed == 7 && k.chip == 3));
        assert_eq!(keys(0), first, "a replay draws the same");
        assert!(keys(1).iter().all(|k| !first.iter().any(|f| f.draw == k.draw)), "another evaluation draws anew");
    }
}
