//! The interface every PIM technology implements, and building one from a sweep's technology parameters.

use std::fmt::Debug;
use std::sync::Arc;

use candle_core::{Result, Tensor};

use super::noise::NoiseKey;
use crate::sweep::{ParamSet, PimKind};

/// Everything a tile simulation needs besides the input and the weight.
#[derive(Debug, Clone, Copy)]
pub struct TileCall<'a> {
    /// The layer's stable name (`encoder.layer.0.attention.self.query`), for messages and caches.
    pub layer: &'a str,
    /// Token rows per sequence in `x`: `seq` when the layer input was `[batch, seq, K]`; all rows when it
    /// was 2-D (the classifier head: one "sequence" of examples). Only `input-scale "block"` uses it.
    pub rows_per_sequence: usize,
    /// Training forward: the master weights change between calls, and noise follows the training
    /// semantics of PIM_MODELS.md §6 (re-sampled every forward).
    pub training: bool,
    /// Seconds since the chip was programmed (drifting technologies; 0 otherwise).
    pub drift_s: f64,
    /// Seeds of this call's draws; `noise.chip` names the programmed chip.
    pub noise: NoiseKey,
}

/// A simulated PIM technology.
pub trait Simulator: Send + Sync + Debug {
    /// The simulated `x·Wᵀ` WITHOUT the bias. `x` is `[rows, K]` f32, contiguous; `weight` is the detached
    /// f32 master weight `[N, K]` (PyTorch layout). Returns `[rows, N]` f32 on `x`'s device. Must never
    /// return NaN or Inf for finite inputs.
    fn matmul(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor>;

    /// Called at the start of every model forward with the mapped layers (name, master weight `[N, K]`) it
    /// may compute, so that per-layer checks can run for all of them at once (the chip caches' weight
    /// fingerprints: one GPU synchronisation per forward instead of one per layer). The default does nothing.
    fn begin_forward(&self, _layers: &[(&str, &Tensor)], _training: bool) -> Result<()> {
        Ok(())
    }

    /// AIHWKIT-style hardware-aware training (PIM_MODELS.md §6, second bullet): the training forward together
    /// with the perturbed weights it used and where it clipped, for a backward through them. `None` (the
    /// default): the technology trains with the straight-through estimator on the clean weights (§6, first
    /// bullet). Only called in training.
    fn hardware_aware_forward(&self, _x: &Tensor, _weight: &Tensor, _call: &TileCall) -> Result<Option<HwaForward>> {
        Ok(None)
    }

    /// The step applied to a mapped layer's weight `[N, K]` after every optimizer step (AIHWKIT's clip and
    /// remap), frozen layers included; `None` (the default) leaves it as the optimizer left it.
    fn post_update(&self, _weight: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }
}

/// A hardware-aware training forward: the value, and per input chunk what its gradient goes through.
#[derive(Debug)]
pub struct HwaForward {
    /// `[rows, N]`, without the bias.
    pub y: Tensor,
    /// The input chunks `(k0, kt)` in order; together they cover the inputs.
    pub chunks: Vec<(usize, usize)>,
    /// The perturbed effective weights the forward multiplied with, chunk-major (`[N·K]`: chunk `(k0, kt)` is
    /// the `[N, kt]` matrix at `N·k0`).
    pub weight: Tensor,
    /// `[chunks, rows, N]`: 1 where a chunk's output passed the converters, 0 where it was clipped (no
    /// gradient). f32 on the CPU; u8 on a GPU, whose backward (gpu/pcm.rs `masked_gradient`) reads bytes.
    pub pass: Tensor,
}

impl HwaForward {
    /// Chunk `c`'s perturbed weights `[N, kt]`.
    pub fn chunk_weight(&self, c: usize) -> Result<Tensor> {
        let (k0, kt) = self.chunks[c];
        let n = self.y.dim(1)?;
        self.weight.narrow(0, n * k0, n * kt)?.reshape((n, kt))
    }
}

/// The simulator of a technology kind with its validated parameters.
pub fn build(kind: PimKind, params: &ParamSet) -> anyhow::Result<Arc<dyn Simulator>> {
    match kind {
        PimKind::Digital => Ok(Arc::new(super::sram::Sram::from_params(params)?)),
        PimKind::Reram => Ok(Arc::new(super::reram::Reram::from_params(params)?)),
        PimKind::PcmNcb => Ok(Arc::new(super::pcm_ncb::PcmNcb::from_params(params)?)),
        PimKind::PcmAihwkit => Ok(Arc::new(super::pcm_aihwkit::PcmAihwkit::from_params(params)?)),
    }
}
