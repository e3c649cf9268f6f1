//! The AIHWKIT PCM tiles on a GPU: the same chip, read and IO model as the host path (mod.rs, io.rs,
//! hwa.rs), with the per-call work in kernels (gpu/pcm.rs) and the GEMMs in cuBLAS.
//!
//! A chip is programmed on the host once (it is also what the GDC readouts use) and its four planes are
//! kept on the GPU, chunk-major, so that one batched GEMM multiplies every input chunk with all of its tiles;
//! the drift of the latest drift time is kept too, and every call reads that with fresh read noise.
//! Bound management runs on the GPU from the list of saturated (row, tile)s (gpu/pcm.rs `tiles_forward`).
//! Noise is Philox (gpu.rs), so the draws differ from the host's, equal in distribution.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use super::chip::{Chip, READ, Tiling};
use super::{OUT, PcmAihwkit, host};
use crate::pim::gpu::PhiloxKey;
use crate::pim::gpu::pcm::{self as kernels, Io, MAX_CHUNK, Tiles};
use crate::pim::simulator::{HwaForward, TileCall};

/// Stream tags of the training draws (hwa.rs).
const HWA_WEIGHT_NOISE: u64 = 0xA6;
const HWA_OUT: u64 = 0xA7;

/// A chip's planes on a GPU, with the output factors (row scale × GDC α) of the drift times read so far and
/// the drifted planes of the latest one.
#[derive(Debug)]
pub(super) struct DeviceChip {
    chip: Arc<Chip>,
    planes: Tensor,
    factors: HashMap<u64, Tensor>,
    drifted: Option<(u64, Tensor)>,
}

impl DeviceChip {
    fn holds(&self, chip: &Arc<Chip>, device: &Device) -> bool {
        Arc::ptr_eq(&self.chip, chip) && self.planes.device().same_device(device)
    }
}

/// Whether the GPU path computes this simulator's numerics for a layer of `k` inputs (the MVM read noise and
/// IR drop are host-only; a chunk must fit the bound-management kernel's shared memory).
pub(super) fn supported(sim: &PcmAihwkit, k: usize) -> bool {
    let chunk = if sim.core_size == 0 { k } else { sim.core_size.min(k) };
    sim.io.w_noise == 0.0 && sim.io.ir_drop == 0.0 && chunk <= MAX_CHUNK
}

impl PcmAihwkit {
    fn gpu_io(&self) -> Io {
        let io = &self.io;
        Io {
            abs_max: io.abs_max,
            inp_step: io.inp_step,
            out_noise: io.out_noise,
            out_step: io.out_step,
            out_bound: io.out_bound,
            iterative_bm: io.iterative_bm,
        }
    }
}

fn tiles(tiling: &Tiling) -> Tiles {
    Tiles { tc: tiling.chunks.first().map_or(1, |&(_, kt)| kt.max(1)), tw: tiling.tile_width().max(1) }
}

impl PcmAihwkit {
    /// The chip's planes drifted to time `t` (gpu/pcm.rs `drift`; chunk-major, `Tiling::chunk_major`) and its
    /// output factors at `t` (`[chunks, n]`: row scale × the tile's GDC α) on `device`, cached per layer.
    fn device_chip(&self, layer: &str, chip: &Arc<Chip>, device: &Device, t: f64) -> Result<(Tensor, Tensor)> {
        let mut cache = self.device_chips.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.get(layer).is_some_and(|d| d.holds(chip, device)) {
            let devices = chip.tiling.devices();
            let planes: Vec<f32> = chip.planes().chunks(devices.max(1)).flat_map(|plane| chip.tiling.chunk_major(plane)).collect();
            let planes = Tensor::from_vec(planes, (4, devices), device)?;
            cache.insert(layer.to_string(), DeviceChip { chip: chip.clone(), planes, factors: HashMap::new(), drifted: None });
        }
        let entry = cache.get_mut(layer).expect("inserted above");
        if !entry.factors.contains_key(&t.to_bits()) {
            let alpha = self.gdc.then(|| chip.gdc_alpha(t, &self.phys, &self.io));
            let tiling = &chip.tiling;
            let mut factors = vec![0.0f32; tiling.chunks.len() * tiling.n];
            for (ti, tile) in tiling.tiles.iter().enumerate() {
                let a = alpha.as_ref().map_or(1.0, |a| a[ti]);
                let scales = &chip.row_scale[tile.row_off..tile.row_off + tile.nt];
                let dst = &mut factors[tile.ki * tiling.n + tile.n0..][..tile.nt];
                // A zero row contributes nothing (the host path skips an all-zero tile).
                dst.iter_mut().zip(scales).for_each(|(f, &s)| *f = if s == 0.0 { 0.0 } else { s * a });
            }
            let shape = (tiling.chunks.len(), tiling.n);
            entry.factors.insert(t.to_bits(), Tensor::from_vec(factors, shape, device)?);
        }
        if entry.drifted.as_ref().is_none_or(|(at, _)| *at != t.to_bits()) {
            let tf = self.phys.at(t);
            entry.drifted = Some((t.to_bits(), kernels::drift(&entry.planes, tf.log_drift, tf.read_sigma_factor, self.phys.g_max)?));
        }
        let drifted = entry.drifted.as_ref().expect("set above").1.clone();
        Ok((drifted, entry.factors[&t.to_bits()].clone()))
    }

    /// The evaluation forward (mod.rs `forward`) of `x` `[rows, k]` on a GPU.
    pub(super) fn forward_on_device(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
        let (rows, k) = x.dims2()?;
        let (n, _) = weight.dims2()?;
        if rows == 0 || n == 0 || k == 0 {
            return Tensor::zeros((rows, n), DType::F32, x.device());
        }
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        let chip = self.chip(self.fingerprints.of(call.layer, weight)?, n, k, call, || host(weight))?;
        let (drifted, factors) = self.device_chip(call.layer, &chip, x.device(), call.drift_s)?;
        let noisy = self.phys.at(call.drift_s).read_sigma_factor > 0.0;
        let wc = kernels::read(&drifted, noisy, self.phys.g_max, PhiloxKey::new(call.noise, READ << 48))?;
        let key = PhiloxKey::new(call.noise, OUT << 48);
        let tiles = tiles(&chip.tiling);
        let dac = self.dacs.get(&x, tiles.tc, self.gpu_io())?;
        Ok(kernels::tiles_forward(&x, &dac, &wc, &factors, tiles, self.gpu_io(), key, false)?.0)
    }

    /// The hardware-aware training forward (hwa.rs) on a GPU.
    pub(super) fn hwa_forward_on_device(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<HwaForward> {
        let k = x.dim(1)?;
        let (n, _) = weight.dims2()?;
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        let tiling = Tiling::new(n, k, self.core_size);
        let key = PhiloxKey::new(call.noise, HWA_WEIGHT_NOISE << 48);
        let (normalised, used, factors) = kernels::hwa_weights(weight, self.core_size, self.per_row, self.train_weight_noise, key)?;
        let key = PhiloxKey::new(call.noise, HWA_OUT << 48);
        let tiles = tiles(&tiling);
        let dac = self.dacs.get(&x, tiles.tc, self.gpu_io())?;
        let (y, pass) = kernels::tiles_forward(&x, &dac, &normalised, &factors, tiles, self.gpu_io(), key, true)?;
        Ok(HwaForward { y, chunks: tiling.chunks, weight: used, pass: pass.expect("asked for") })
    }
}
