//! The linear-layer seam where PIM technologies plug in.
//!
//! Every `Linear` of the encoder and of the classification head is a [`LinearLayer`]: a stable name
//! (the Hugging Face parameter path without the `bert.`/`roberta.` prefix, e.g.
//! `encoder.layer.3.attention.self.query`) plus its trainable f32 master weight `[out, in]` and bias
//! `[out]`. The layer does not compute anything itself: the model calls the [`LinearForward`] hook it
//! was given with the layer and its input. [`Digital`] is the exact f32 default; a PIM technology
//! implements the trait once, simulates its tiles from `layer.weight()` (re-quantizing from the master
//! weight on every call, so training updates it) and can fall back to [`LinearLayer::digital_forward`]
//! for layers its name filter excludes.

use candle_core::{D, Result, Tensor};
use candle_nn::VarBuilder;

use super::encoder::Mode;

/// One linear layer of the model: `y = x·Wᵀ + b`, computed by a [`LinearForward`] hook.
#[derive(Debug, Clone)]
pub struct LinearLayer {
    name: String,
    weight: Tensor,
    bias: Tensor,
}

impl LinearLayer {
    /// Creates the layer's `weight` and `bias` variables under `vb` (whose prefix is the layer name).
    pub(crate) fn new(vb: VarBuilder, in_features: usize, out_features: usize) -> Result<Self> {
        let weight = vb.get((out_features, in_features), "weight")?;
        let bias = vb.get(out_features, "bias")?;
        Ok(Self { name: vb.prefix(), weight, bias })
    }

    /// The stable full name, e.g. `encoder.layer.0.attention.self.query` or `classifier.out_proj`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The f32 master weight, `[out_features, in_features]` (the PyTorch layout).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The f32 bias, `[out_features]`. PIM technologies add it digitally after the tile result.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The same layer with its weight and bias detached from the graph: what a frozen layer computes with.
    pub fn frozen(&self) -> LinearLayer {
        LinearLayer { name: self.name.clone(), weight: self.weight.detach(), bias: self.bias.detach() }
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The exact f32 forward `x·Wᵀ + b` for `x` of shape `[.., in_features]` (2-D or 3-D).
    pub fn digital_forward(&self, x: &Tensor) -> Result<Tensor> {
        self.add_bias(&matmul_transposed_weight(x, &self.weight)?)
    }

    /// `y + b` for `y` `[.., out_features]`: the bias, added digitally and exactly after the matmul, whatever
    /// computed it (PIM_MODELS.md §1).
    pub fn add_bias(&self, y: &Tensor) -> Result<Tensor> {
        super::fused::add_bias(y, &self.bias)
    }
}

/// `x·Wᵀ` for `x` of shape `[.., in]` and `W` of shape `[out, in]`, without copying `W`: leading
/// dimensions are flattened into one matrix so a single GEMM runs.
pub fn matmul_transposed_weight(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let in_features = x.dim(D::Minus1)?;
    let mut out_dims = x.dims().to_vec();
    *out_dims.last_mut().expect("dim(D::Minus1) succeeded") = weight.dim(0)?;
    let rows = x.elem_count() / in_features.max(1);
    let x2 = x.contiguous()?.reshape((rows, in_features))?;
    x2.matmul(&weight.t()?)?.reshape(out_dims)
}

/// How a model computes its linear layers. One implementation serves every layer of a model; it sees
/// the layer (name, weight, bias) and can treat layers differently by name.
///
/// `mode` tells training from evaluation, for technologies whose forward differs (e.g. drift
/// compensation only in evaluation, straight-through estimators in training). Implementations must
/// keep the result differentiable with respect to `layer.weight()`, `layer.bias()` and `x` if the
/// model is to be trained through them.
pub trait LinearForward: Send + Sync {
    fn forward(&self, layer: &LinearLayer, x: &Tensor, mode: Mode) -> Result<Tensor>;

    /// Called once at the start of every model forward with the layers it may compute, so that an
    /// implementation can prepare them all at once. The default does nothing.
    fn begin_forward(&self, _layers: &[&LinearLayer], _mode: Mode) -> Result<()> {
        Ok(())
    }

    /// The layer's weight after an optimizer step, where the technology constrains it (AIHWKIT's clip and
    /// remap of analog tiles), frozen layers included; `None` (the default) keeps it.
    fn post_update(&self, _layer: &LinearLayer) -> Result<Option<Tensor>> {
        Ok(None)
    }
}

/// The exact digital f32 forward, the default of every model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Digital;

impl LinearForward for Digital {
    fn forward(&self, layer: &LinearLayer, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        layer.digital_forward(x)
    }
}
