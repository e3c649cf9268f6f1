//! The AIHWKIT PCM tiles on a GPU: the same chip, read and IO model as the host path (mod.rs, io.rs,
//! hwa.rs), with the per-call work in kernels (gpu/pcm.rs) and the GEMMs in cuBLAS.
//!
//! A chip is programmed on the host once (it is also what the GDC readouts use) and its four planes are
//! kept on the GPU; every call reads them at its drift time with fresh read noise on the GPU. Bound
//! management runs round 0 of every tile, then looks once per call at how many rows saturated and re-runs
//! only the tiles that have such rows (all their rows, of which only the pending ones are taken). Noise is
//! Philox (gpu.rs), so the draws differ from the host's, equal in distribution.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use super::chip::{Chip, READ, Tiling};
use super::{OUT, PcmAihwkit, host};
use crate::pim::gpu::pcm::{self as kernels, Adc, Dac, Rows, Sink};
use crate::pim::gpu::{self, PhiloxKey};
use crate::pim::simulator::{HwaChunk, HwaForward, TileCall};

/// Bound management stops halving the input at this reduction (io.rs `MAX_BM_REDUCTION`).
const MAX_BM_REDUCTION: f32 = 32.0;
/// Stream tags of the training draws (hwa.rs).
const HWA_WEIGHT_NOISE: u64 = 0xA6;
const HWA_OUT: u64 = 0xA7;

/// A chip's planes on a GPU, with the output factors (row scale × GDC α) of the drift times read so far.
#[derive(Debug)]
pub(super) struct DeviceChip {
    chip: Arc<Chip>,
    planes: Tensor,
    factors: HashMap<u64, Tensor>,
}

impl DeviceChip {
    fn holds(&self, chip: &Arc<Chip>, device: &Device) -> bool {
        Arc::ptr_eq(&self.chip, chip) && self.planes.device().same_device(device)
    }
}

/// Whether the GPU path computes this simulator's numerics (the MVM read noise and IR drop are host-only).
pub(super) fn supported(sim: &PcmAihwkit) -> bool {
    sim.io.w_noise == 0.0 && sim.io.ir_drop == 0.0
}

/// One input chunk on the GPU: its columns' input scales and round-0 DAC output, shared by its tiles.
struct Chunk {
    k0: usize,
    kt: usize,
    scale: Tensor,
    xq0: Tensor,
}

impl Chunk {
    fn new(sim: &PcmAihwkit, x: &Tensor, k0: usize, kt: usize) -> Result<Chunk> {
        let scale = Tensor::zeros(x.dim(0)?, DType::F32, x.device())?;
        let xq0 = kernels::dac(x, k0, kt, &scale, true, dac(sim), 1.0)?;
        Ok(Chunk { k0, kt, scale, xq0 })
    }
}

fn dac(sim: &PcmAihwkit) -> Dac {
    Dac { abs_max: sim.io.abs_max, inp_step: sim.io.inp_step }
}

fn adc(sim: &PcmAihwkit) -> Adc {
    Adc { out_noise: sim.io.out_noise, out_step: sim.io.out_step, out_bound: sim.io.out_bound }
}

/// A tile after round 0, in case bound management needs more rounds of it.
struct Retry {
    chunk: usize,
    w: Tensor,
    factor: Tensor,
    n0: usize,
    key: PhiloxKey,
    /// The tile's row of the layer's pending flags.
    slot: usize,
    /// Where hardware-aware training marks the clipped outputs (the tile's chunk's mask).
    pass: Option<Tensor>,
}

/// A layer's tiles through the IO model, their finished rows accumulated into `out`. Bound
/// management looks at all tiles' pending flags at once, once per round: a GPU round trip per round of
/// the layer, not per tile.
struct TileRun<'a> {
    sim: &'a PcmAihwkit,
    x: &'a Tensor,
    out: &'a Tensor,
    chunks: Vec<Chunk>,
    /// `[tiles, rows]` u32: the rows of each tile still to be computed again.
    pending: Tensor,
    retries: Vec<Retry>,
}

impl<'a> TileRun<'a> {
    fn new(sim: &'a PcmAihwkit, x: &'a Tensor, out: &'a Tensor, tiling: &Tiling) -> Result<TileRun<'a>> {
        let chunks = tiling.chunks.iter().map(|&(k0, kt)| Chunk::new(sim, x, k0, kt)).collect::<Result<Vec<_>>>()?;
        let pending = Tensor::zeros((tiling.tiles.len(), x.dim(0)?), DType::U32, x.device())?;
        Ok(TileRun { sim, x, out, chunks, pending, retries: Vec::new() })
    }

    fn pending_of(&self, slot: usize) -> Result<Tensor> {
        self.pending.narrow(0, slot, 1)?.flatten_all()
    }

    /// Round 0 of tile `slot` (weights `w` `[nt, kt]`, output factors `factor` `[nt]`) on input chunk `ki`.
    #[allow(clippy::too_many_arguments)]
    fn round0(&mut self, ki: usize, w: Tensor, factor: Tensor, n0: usize, key: PhiloxKey, slot: usize, pass: Option<Tensor>) -> Result<()> {
        let chunk = &self.chunks[ki];
        let y = chunk.xq0.matmul(&w.t()?)?;
        let sink = Sink { out: self.out, n0, factor: &factor, pass: pass.as_ref() };
        let pending = self.pending_of(slot)?;
        let rows = Rows { pending: &pending, first: true, scale: &chunk.scale, map: None };
        kernels::finalize(&y, &rows, &sink, adc(self.sim), 1.0, self.sim.io.iterative_bm, key, 0)?;
        self.retries.push(Retry { chunk: ki, w, factor, n0, key, slot, pass });
        Ok(())
    }

    /// Iterative bound management after round 0: each round halves the inputs of the rows still pending and
    /// computes only those rows, until none is left or the reduction limit.
    fn finish(&self) -> Result<()> {
        if !self.sim.io.iterative_bm || self.retries.is_empty() {
            return Ok(());
        }
        let rows = self.x.dim(0)?;
        let (mut red, mut round) = (1.0f32, 0u32);
        while red < MAX_BM_REDUCTION {
            let flags = self.pending.flatten_all()?.to_vec1::<u32>()?;
            red *= 2.0;
            round += 1;
            let mut any = false;
            for t in &self.retries {
                let ids: Vec<u32> = (0..rows as u32).filter(|&r| flags[t.slot * rows + r as usize] != 0).collect();
                if ids.is_empty() {
                    continue;
                }
                any = true;
                let count = ids.len();
                let map = Tensor::from_vec(ids, count, self.x.device())?;
                let chunk = &self.chunks[t.chunk];
                let x = self.x.index_select(&map, 0)?;
                let xq = kernels::dac(&x, chunk.k0, chunk.kt, &chunk.scale.index_select(&map, 0)?, false, dac(self.sim), red)?;
                let y = xq.matmul(&t.w.t()?)?;
                let sink = Sink { out: self.out, n0: t.n0, factor: &t.factor, pass: t.pass.as_ref() };
                let pending = self.pending_of(t.slot)?;
                let rows = Rows { pending: &pending, first: false, scale: &chunk.scale, map: Some(&map) };
                kernels::finalize(&y, &rows, &sink, adc(self.sim), red, red < MAX_BM_REDUCTION, t.key, round)?;
            }
            if !any {
                break;
            }
        }
        Ok(())
    }
}

impl PcmAihwkit {
    /// The chip's planes (and its factors at drift time `t`) on `device`, cached per layer.
    fn device_chip(&self, layer: &str, chip: &Arc<Chip>, device: &Device, t: f64) -> Result<(Tensor, Tensor)> {
        let mut cache = self.device_chips.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.get(layer).is_some_and(|d| d.holds(chip, device)) {
            let planes = Tensor::from_vec(chip.planes(), (4, chip.tiling.devices()), device)?;
            cache.insert(layer.to_string(), DeviceChip { chip: chip.clone(), planes, factors: HashMap::new() });
        }
        let entry = cache.get_mut(layer).expect("inserted above");
        if !entry.factors.contains_key(&t.to_bits()) {
            let alpha = self.gdc.then(|| chip.gdc_alpha(t, &self.phys, &self.io));
            let factors: Vec<f32> = chip
                .tiling
                .tiles
                .iter()
                .enumerate()
                .flat_map(|(ti, tile)| {
                    let a = alpha.as_ref().map_or(1.0, |a| a[ti]);
                    chip.row_scale[tile.row_off..tile.row_off + tile.nt].iter().map(move |s| s * a)
                })
                .collect();
            let len = factors.len();
            entry.factors.insert(t.to_bits(), Tensor::from_vec(factors, len, device)?);
        }
        Ok((entry.planes.clone(), entry.factors[&t.to_bits()].clone()))
    }

    /// The evaluation forward (mod.rs `forward`) of `x` `[rows, k]` on a GPU.
    pub(super) fn forward_on_device(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
        let (rows, k) = x.dims2()?;
        let (n, _) = weight.dims2()?;
        let out = Tensor::zeros((rows, n), DType::F32, x.device())?;
        if rows == 0 || n == 0 || k == 0 {
            return Ok(out);
        }
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        let chip = self.chip(gpu::weight_fingerprint(weight)?, n, k, call, || host(weight))?;
        let (planes, factors) = self.device_chip(call.layer, &chip, x.device(), call.drift_s)?;
        let tf = self.phys.at(call.drift_s);
        let read_key = PhiloxKey::new(call.noise, READ << 48);
        let wc = kernels::read(&planes, tf.log_drift, tf.read_sigma_factor, self.phys.g_max, read_key)?;
        let tiling = &chip.tiling;
        let mut run = TileRun::new(self, &x, &out, tiling)?;
        for (ti, tile) in tiling.tiles.iter().enumerate() {
            if chip.row_scale[tile.row_off..tile.row_off + tile.nt].iter().all(|&s| s == 0.0) {
                continue; // an all-zero weight tile contributes nothing
            }
            let w = wc.narrow(0, tile.off, tile.nt * tile.kt)?.reshape((tile.nt, tile.kt))?;
            let factor = factors.narrow(0, tile.row_off, tile.nt)?;
            run.round0(tile.ki, w, factor, tile.n0, PhiloxKey::new(call.noise, OUT << 48 | ti as u64), ti, None)?;
        }
        run.finish()?;
        Ok(out)
    }

    /// The hardware-aware training forward (hwa.rs) on a GPU.
    pub(super) fn hwa_forward_on_device(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<HwaForward> {
        let (rows, k) = x.dims2()?;
        let (n, _) = weight.dims2()?;
        let dev = x.device().clone();
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        let weight = weight.to_dtype(DType::F32)?;
        let y = Tensor::zeros((rows, n), DType::F32, &dev)?;
        let tiling = Tiling::new(n, k, self.core_size);
        let passes: Vec<Tensor> = (0..tiling.chunks.len()).map(|_| Tensor::ones((rows, n), DType::F32, &dev)).collect::<Result<_>>()?;
        let mut used: Vec<Vec<Tensor>> = vec![Vec::new(); tiling.chunks.len()];
        let mut run = TileRun::new(self, &x, &y, &tiling)?;
        for (ti, tile) in tiling.tiles.iter().enumerate() {
            let w = weight.narrow(0, tile.n0, tile.nt)?.narrow(1, tile.k0, tile.kt)?;
            // Per-row (or per-tile) max |w|; a zero row or tile stays zero (the host path skips a zero tile).
            let row_max = w.abs()?.max_keepdim(1)?;
            let scales = if self.per_row { row_max } else { row_max.max_keepdim(0)?.broadcast_as((tile.nt, 1))?.contiguous()? };
            let live = scales.gt(0.0)?.to_dtype(DType::F32)?;
            let safe = (&scales + live.affine(-1.0, 1.0)?)?;
            let mut wn = w.broadcast_div(&safe)?;
            if self.train_weight_noise > 0.0 {
                let z =
                    gpu::normals(tile.nt * tile.kt, &dev, call.noise, HWA_WEIGHT_NOISE << 48 | ti as u64)?.reshape((tile.nt, tile.kt))?;
                // The host path adds the noise to every row of a live tile (a zero row of it included).
                let tile_live = live.max_keepdim(0)?;
                wn = (wn + z.affine(self.train_weight_noise as f64, 0.0)?.broadcast_mul(&tile_live)?)?;
            }
            let wn = wn.contiguous()?;
            used[tile.ki].push(wn.broadcast_mul(&scales)?);
            let (key, pass) = (PhiloxKey::new(call.noise, HWA_OUT << 48 | ti as u64), passes[tile.ki].clone());
            run.round0(tile.ki, wn, scales.flatten_all()?, tile.n0, key, ti, Some(pass))?;
        }
        run.finish()?;
        let chunks = tiling
            .chunks
            .iter()
            .zip(passes)
            .zip(used)
            .map(|((&(k0, kt), pass), used)| Ok(HwaChunk { k0, kt, weight: Tensor::cat(&used, 0)?, pass }))
            .collect::<Result<Vec<_>>>()?;
        Ok(HwaForward { y, chunks })
    }
}
