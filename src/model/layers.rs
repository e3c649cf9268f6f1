//! Differentiable building blocks: LayerNorm, softmax, embedding lookup, seeded dropout.
//!
//! candle 0.11's fused `candle_nn::LayerNorm` and `candle_nn::ops::softmax_last_dim` have no backward
//! pass (gradients silently stop there). On the CPU and on GPUs, LayerNorm and softmax run as the fused
//! custom ops of [`super::fused`]; for other dtypes as the [`composed`] versions built from basic candle ops (which also serve
//! as the fused ops' reference in tests). Dropout masks come from a seeded generator so training runs are
//! reproducible (candle's CPU `rand` cannot be seeded), and are the same on the CPU and on a GPU.

use std::sync::Mutex;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fused;

/// Layer normalisation over the last dimension: `(x − mean) / sqrt(var + eps) · weight + bias`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub(crate) fn new(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: vb.get(size, "weight")?, bias: vb.get(size, "bias")?, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        fused::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    fused::softmax_last_dim(x)
}

/// The same operations composed from basic candle ops, each with candle's own backward: the path for
/// devices without fused kernels, and the reference of the fused ops' tests.
pub mod composed {
    use candle_core::{D, Result, Tensor};

    /// `(x − mean) / sqrt(var + eps) · weight + bias` over the last dimension.
    pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let inv_std = (variance + eps)?.sqrt()?.recip()?;
        centred.broadcast_mul(&inv_std)?.broadcast_mul(weight)?.broadcast_add(bias)
    }

    /// Softmax over the last dimension. The row maximum is subtracted for stability and detached: the
    /// softmax does not depend on it, so no gradient needs to flow through it.
    pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
        let max = x.max_keepdim(D::Minus1)?.detach();
        let exp = x.broadcast_sub(&max)?.exp()?;
        exp.broadcast_div(&exp.sum_keepdim(D::Minus1)?)
    }
}

/// An embedding table `[num_embeddings, dim]`, looked up by u32 ids of any shape.
#[derive(Debug, Clone)]
pub struct Embedding {
    table: Tensor,
}

impl Embedding {
    pub(crate) fn new(vb: VarBuilder, num_embeddings: usize, dim: usize) -> Result<Self> {
        Ok(Self { table: vb.get((num_embeddings, dim), "weight")? })
    }

    pub fn table(&self) -> &Tensor {
        &self.table
    }

    /// Looks ids up; the output has the ids' shape plus the embedding dimension.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        super::fused::embedding(&self.table, ids)
    }
}

/// Inverted dropout with masks from a seeded generator, shared by all dropout sites of a model.
#[derive(Debug)]
pub struct DropoutRng {
    rng: Mutex<StdRng>,
}

impl DropoutRng {
    pub fn new(seed: u64) -> Self {
        Self { rng: Mutex::new(StdRng::seed_from_u64(seed)) }
    }

    /// Restarts the mask sequence from `seed`.
    pub fn reseed(&self, seed: u64) {
        *self.lock() = StdRng::seed_from_u64(seed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StdRng> {
        // A poisoned lock only means another thread panicked mid-draw; the generator is still usable.
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Zeroes each element with probability `p` and scales the rest by `1/(1−p)`; identity if `p`
    /// is 0. Callers apply it in training only. Each call takes one number from the seeded generator and
    /// expands it into the mask where `x` lives ([`fused::dropout_mask`]): the same masks on the CPU and on
    /// a GPU, and no mask crossing the bus.
    pub fn apply(&self, x: &Tensor, p: f32) -> Result<Tensor> {
        if p <= 0.0 {
            return Ok(x.clone());
        }
        let seed = self.lock().random::<u64>();
        let mask = fused::dropout_mask(x.shape(), p, seed, x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}
