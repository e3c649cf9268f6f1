//! PCM with IBM AIHWKIT's statistical model (`kind=pcm model="aihwkit"`, PIM_MODELS.md §5a): a layer is cut
//! into tiles, each tile's weights are programmed once per chip onto differential PCM pairs (programming
//! noise, drift exponents), read at the call's drift time with fresh 1/f read noise, and multiplied through
//! AIHWKIT's forward IO model; global drift compensation rescales each tile's output.
//!
//! In evaluation the programmed chip of each layer is cached per (layer, chip, weight). Training is AIHWKIT's
//! hardware-aware training (hwa.rs: weight noise, the IO model, a backward through both) with its
//! post-update clip and remap (remap.rs) after every optimizer step.

mod chip;
#[cfg(feature = "cuda")]
mod device;
mod hwa;
mod io;
mod physics;
pub mod remap;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::bail;
use candle_core::{DType, Device, Result, Tensor};
use rayon::prelude::*;

use self::chip::{Chip, Tiling};
use self::io::{Io, TileNoise};
use self::physics::Physics;
use super::simulator::{Simulator, TileCall};
use crate::sweep::ParamSet;

/// Stream tag of the per-call output and MVM noise.
const OUT: u64 = 0xA5;

/// The AIHWKIT PCM simulator with its validated parameters and its cache of programmed chips.
#[derive(Debug)]
pub struct PcmAihwkit {
    /// Tile size (0: the whole layer on one tile).
    core_size: usize,
    /// Weight scaling "row" (else "tile").
    per_row: bool,
    gdc: bool,
    phys: Physics,
    io: Io,
    /// Hardware-aware training: weight noise relative to a tile's max |normalised w|, and the post-update clip.
    train_weight_noise: f32,
    clip_sigma: f32,
    /// The latest programmed chip of each layer (a new chip or weight replaces it, so memory stays one chip).
    chips: Mutex<HashMap<String, Arc<Chip>>>,
    /// The chips' planes on a GPU, per layer.
    #[cfg(feature = "cuda")]
    device_chips: Mutex<HashMap<String, device::DeviceChip>>,
    /// The fingerprints of the master weights, measured for a whole forward at once on a GPU.
    fingerprints: super::gpu::Fingerprints,
    /// The latest layer input through the DAC on a GPU (the query, key and value layers share theirs).
    #[cfg(feature = "cuda")]
    dacs: super::gpu::pcm::DacCache,
}

impl PcmAihwkit {
    /// Builds the simulator from a `PCM_AIHWKIT` parameter set.
    pub fn from_params(params: &ParamSet) -> anyhow::Result<PcmAihwkit> {
        if params.string("input-scale") == "block" {
            bail!(
                "input-scale \"block\" is only for NewComputeBench compatibility (model=\"ncb\"); model=\"aihwkit\" scales inputs per token"
            );
        }
        let core_size = params.int("core-size");
        let Ok(core_size) = usize::try_from(core_size) else { bail!("core-size must be >= 0, got {core_size}") };
        let out_bound = params.float("out-bound") as f32;
        let io = Io {
            abs_max: params.string("noise-management") == "abs-max",
            inp_step: io::step(params.int("input-bits"), 2.0),
            out_step: io::step(params.int("output-bits"), 2.0 * out_bound),
            out_bound,
            out_noise: params.float("out-noise") as f32,
            iterative_bm: params.string("bound-management") == "iterative",
            w_noise: params.float("w-noise") as f32,
            ir_drop: params.float("ir-drop") as f32,
        };
        let phys = Physics {
            g_max: params.float("g-max") as f32,
            prog_noise_scale: params.float("prog-noise-scale") as f32,
            read_noise_scale: params.float("read-noise-scale") as f32,
            drift_scale: params.float("drift-scale") as f32,
            fixed_nu: None,
        };
        if !(phys.g_max.is_finite() && phys.g_max > 0.0 && out_bound > 0.0) {
            bail!("g-max and out-bound must be positive and finite");
        }
        let mut sim = PcmAihwkit::new(core_size, params.string("weight-scaling") == "row", params.flag("gdc"), phys, io);
        sim.train_weight_noise = params.float("train-weight-noise") as f32;
        sim.clip_sigma = params.float("clip-sigma") as f32;
        Ok(sim)
    }

    fn new(core_size: usize, per_row: bool, gdc: bool, phys: Physics, io: Io) -> PcmAihwkit {
        PcmAihwkit {
            core_size,
            per_row,
            gdc,
            phys,
            io,
            train_weight_noise: 0.067,
            clip_sigma: 3.0,
            chips: Mutex::new(HashMap::new()),
            #[cfg(feature = "cuda")]
            device_chips: Mutex::new(HashMap::new()),
            fingerprints: super::gpu::Fingerprints::default(),
            #[cfg(feature = "cuda")]
            dacs: Default::default(),
        }
    }

    /// The layer's programmed chip for this call, cached: `fingerprint` is the weight's
    /// (tiling.rs `weight_fingerprint`), and `host_weight` gives the weight when the chip has to be programmed.
    fn chip(
        &self,
        fingerprint: u64,
        n: usize,
        k: usize,
        call: &TileCall,
        host_weight: impl FnOnce() -> Result<Vec<f32>>,
    ) -> Result<Arc<Chip>> {
        let tiling = Tiling::new(n, k, self.core_size);
        // Programming draws come from draw 0 of the chip, so every call on that chip sees the same devices.
        let key = call.noise.with_draw(0);
        let lock = || self.chips.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = lock().get(call.layer).filter(|c| c.key == key && c.fingerprint == fingerprint && c.tiling == tiling) {
            return Ok(c.clone());
        }
        let c = Arc::new(Chip::program(&host_weight()?, tiling, self.per_row, &self.phys, &self.io, key, self.gdc));
        lock().insert(call.layer.to_string(), c.clone());
        Ok(c)
    }

    /// The simulated `x·Wᵀ` on host vectors: `x` `[rows, k]`, `w` `[n, k]`, result `[rows, n]`.
    fn forward(&self, x: &[f32], rows: usize, w: &[f32], n: usize, k: usize, call: &TileCall) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; rows * n];
        if rows == 0 || n == 0 || k == 0 {
            return Ok(out);
        }
        let chip = self.chip(super::tiling::weight_fingerprint(w, n, k), n, k, call, || Ok(w.to_vec()))?;
        let t = call.drift_s;
        let alpha = self.gdc.then(|| chip.gdc_alpha(t, &self.phys, &self.io));
        let wc = chip.read(t, &self.phys, call.noise, chip::READ);
        let wc_abs = (self.io.w_noise > 0.0 || self.io.ir_drop > 0.0)
            .then(|| Tensor::from_vec(wc.iter().map(|v| v.abs()).collect::<Vec<_>>(), wc.len(), &Device::Cpu))
            .transpose()?;
        let wc = Tensor::from_vec(wc, chip.tiling.devices(), &Device::Cpu)?;
        let tiling = &chip.tiling;
        for (ki, &(k0, kt)) in tiling.chunks.iter().enumerate() {
            let chunk = self.io.chunk(x, rows, k, k0, kt);
            for (ti, tile) in tiling.tiles.iter().enumerate().filter(|(_, t)| t.ki == ki) {
                let scales = &chip.row_scale[tile.row_off..tile.row_off + tile.nt];
                if scales.iter().all(|&s| s == 0.0) {
                    continue; // an all-zero weight tile contributes nothing
                }
                let view = |m: &Tensor| m.narrow(0, tile.off, tile.nt * tile.kt)?.reshape((tile.nt, tile.kt));
                let abs_view = wc_abs.as_ref().map(view).transpose()?;
                let noise = TileNoise { key: call.noise, tag: OUT, tile: ti as u64 };
                let y = self.io.tile(&chunk, &view(&wc)?, abs_view.as_ref(), tile.nt, noise, None)?;
                // De-scale by the digital per-row weight scale and the GDC factor, and add the K-partial sums.
                let a = alpha.as_ref().map_or(1.0, |a| a[ti]);
                let factors: Vec<f32> = scales.iter().map(|s| s * a).collect();
                out.par_chunks_mut(n).zip(y.par_chunks(tile.nt)).for_each(|(o, yr)| {
                    for ((o, &v), &f) in o[tile.n0..tile.n0 + tile.nt].iter_mut().zip(yr).zip(&factors) {
                        // The digital accumulator saturates rather than overflowing (inputs near f32::MAX).
                        *o = (*o + (v * f).clamp(f32::MIN, f32::MAX)).clamp(f32::MIN, f32::MAX);
                    }
                });
            }
        }
        Ok(out)
    }
}

/// A tensor's elements as host f32s (the host path's operands, and a weight to program a chip from).
fn host(t: &Tensor) -> Result<Vec<f32>> {
    t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

impl PcmAihwkit {
    /// The hardware-aware training forward where `x` is.
    fn hwa_forward(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<super::simulator::HwaForward> {
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() && device::supported(self, x.dim(1)?) {
            return self.hwa_forward_on_device(x, weight, call);
        }
        hwa::forward(self, x, weight, call)
    }
}

impl Simulator for PcmAihwkit {
    fn begin_forward(&self, layers: &[(&str, &Tensor)], training: bool) -> Result<()> {
        if training {
            return Ok(()); // hardware-aware training reads no programmed chip
        }
        self.fingerprints.prefetch(layers)
    }

    fn matmul(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
        let (rows, k) = x.dims2()?;
        let (n, kw) = weight.dims2()?;
        if k != kw {
            candle_core::bail!("{}: input has {k} features but the weight expects {kw}", call.layer);
        }
        if call.training {
            return Ok(self.hwa_forward(x, weight, call)?.y);
        }
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() && device::supported(self, k) {
            return self.forward_on_device(x, weight, call);
        }
        let out = self.forward(&host(x)?, rows, &host(weight)?, n, k, call)?;
        Tensor::from_vec(out, (rows, n), &Device::Cpu)?.to_device(x.device())
    }

    fn hardware_aware_forward(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Option<super::simulator::HwaForward>> {
        if !call.training {
            return Ok(None);
        }
        self.hwa_forward(x, weight, call).map(Some)
    }

    fn post_update(&self, weight: &Tensor) -> Result<Option<Tensor>> {
        #[cfg(feature = "cuda")]
        if weight.device().is_cuda() {
            return Ok(Some(crate::pim::gpu::pcm::clip_and_remap(weight, self.core_size, self.clip_sigma)?));
        }
        let (n, k) = weight.dims2()?;
        let mut w = weight.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        remap::clip_and_remap(&mut w, n, k, self.core_size, self.clip_sigma);
        Ok(Some(Tensor::from_vec(w, (n, k), &Device::Cpu)?.to_device(weight.device())?))
    }
}
