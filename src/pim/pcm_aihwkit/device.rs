//! The AIHWKIT PCM tiles on a GPU: the same chip, read and IO model as the host path (mod.rs, io.rs,
//! hwa.rs), with the per-call work in kernels (gpu/pcm.rs) and the GEMMs in cuBLAS.
//!
//! A chip is programmed on the host once (it is also what the GDC readouts use) and its four planes are
//! kept on the GPU, chunk-major, so that one GEMM multiplies an input chunk with all of its tiles; every call
//! reads them at its drift time with fresh read noise on the GPU. Bound management runs round 0 of every
//! chunk, then looks once per round at which (row, tile)s saturated and re-runs those rows of each chunk that
//! has any (a kernel takes each only for the tiles where it is pending). Noise is Philox (gpu.rs), so the
//! draws differ from the host's, equal in distribution.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use super::chip::{Chip, READ, Tiling};
use super::{OUT, PcmAihwkit, host};
use crate::pim::gpu::PhiloxKey;
use crate::pim::gpu::pcm::{self as kernels, Adc, Dac, Rows, Sink};
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
    /// The chunk's DAC output into `xq0` `[rows, kt]`.
    fn new(sim: &PcmAihwkit, x: &Tensor, k0: usize, kt: usize, xq0: Tensor) -> Result<Chunk> {
        let scale = Tensor::zeros(x.dim(0)?, DType::F32, x.device())?;
        kernels::dac_into(x, k0, kt, &scale, true, dac(sim), 1.0, &xq0)?;
        Ok(Chunk { k0, kt, scale, xq0 })
    }
}

fn dac(sim: &PcmAihwkit) -> Dac {
    Dac { abs_max: sim.io.abs_max, inp_step: sim.io.inp_step }
}

fn adc(sim: &PcmAihwkit) -> Adc {
    Adc { out_noise: sim.io.out_noise, out_step: sim.io.out_step, out_bound: sim.io.out_bound }
}

/// An input chunk after round 0, in case bound management needs more rounds of it.
struct Retry {
    chunk: usize,
    /// The chunk's weights `[n, kt]` and the output factors `[n]`.
    w: Tensor,
    factor: Tensor,
    key: PhiloxKey,
    /// Where hardware-aware training marks the clipped outputs (the chunk's mask).
    pass: Option<Tensor>,
}

/// A layer's tiles through the IO model, an input chunk with all its tiles at a time (one GEMM), their
/// finished rows accumulated into `out`. Bound management looks at all tiles' pending flags at once, once
/// per round: a GPU round trip per round of the layer, not per tile.
struct TileRun<'a> {
    sim: &'a PcmAihwkit,
    x: &'a Tensor,
    out: &'a Tensor,
    tile_width: usize,
    chunks: Vec<Chunk>,
    /// All chunks' DAC outputs `[chunks, rows, kt]` when the chunks are equally wide: their products are
    /// then one batched GEMM (the 3072-input layers' six 512-wide chunks alone fill too few blocks of an H100).
    stacked: Option<Tensor>,
    /// `[tiles, rows]` u32: the rows of each tile still to be computed again.
    pending: Tensor,
    retries: Vec<Retry>,
}

impl<'a> TileRun<'a> {
    fn new(sim: &'a PcmAihwkit, x: &'a Tensor, out: &'a Tensor, tiling: &Tiling) -> Result<TileRun<'a>> {
        let (rows, dev) = (x.dim(0)?, x.device());
        let width = tiling.chunks[0].1;
        let uniform = tiling.chunks.len() > 1 && tiling.chunks.iter().all(|&(_, kt)| kt == width);
        let stacked = uniform.then(|| Tensor::zeros((tiling.chunks.len(), rows, width), DType::F32, dev)).transpose()?;
        let chunks = tiling
            .chunks
            .iter()
            .enumerate()
            .map(|(ki, &(k0, kt))| {
                let xq0 = match &stacked {
                    Some(s) => s.get(ki)?,
                    None => Tensor::zeros((rows, kt), DType::F32, dev)?,
                };
                Chunk::new(sim, x, k0, kt, xq0)
            })
            .collect::<Result<Vec<_>>>()?;
        let pending = Tensor::zeros((tiling.tiles.len(), rows), DType::U32, dev)?;
        Ok(TileRun { sim, x, out, tile_width: tiling.tile_width(), chunks, stacked, pending, retries: Vec::new() })
    }

    /// Every chunk's round-0 product with its tiles, from the chunk-major weights `w` (`[n·k]`, chunk `ki`
    /// the `[n, kt]` matrix at `n·k0`): `[rows, n]` per chunk.
    fn products(&self, w: &Tensor) -> Result<Vec<Tensor>> {
        let n = self.out.dim(1)?;
        if let Some(stacked) = &self.stacked {
            let (chunks, _, kt) = stacked.dims3()?;
            let y = stacked.matmul(&w.reshape((chunks, n, kt))?.transpose(1, 2)?)?;
            return (0..chunks).map(|ki| y.get(ki)).collect();
        }
        self.chunks.iter().map(|c| c.xq0.matmul(&w.narrow(0, n * c.k0, n * c.kt)?.reshape((n, c.kt))?.t()?)).collect()
    }

    fn tiles(&self, chunk: usize) -> kernels::ChunkTiles {
        kernels::ChunkTiles { chunk, chunks: self.chunks.len(), tile_width: self.tile_width }
    }

    /// Round 0 of input chunk `ki` with all its tiles: their product `y` `[rows, n]` ([`TileRun::products`])
    /// with weights `w` `[n, kt]`, output factors `factor` `[n]`.
    fn round0(&mut self, ki: usize, y: &Tensor, w: Tensor, factor: Tensor, key: PhiloxKey, pass: Option<Tensor>) -> Result<()> {
        let chunk = &self.chunks[ki];
        let sink = Sink { out: self.out, factor: &factor, pass: pass.as_ref() };
        let rows = Rows { pending: &self.pending, first: true, scale: &chunk.scale, map: None };
        kernels::finalize(y, &rows, &sink, self.tiles(ki), adc(self.sim), 1.0, self.sim.io.iterative_bm, key, 0)?;
        self.retries.push(Retry { chunk: ki, w, factor, key, pass });
        Ok(())
    }

    /// Iterative bound management after round 0: each round halves the inputs of the rows still pending and
    /// computes those rows of each chunk that has any, until none is left or the reduction limit.
    fn finish(&self) -> Result<()> {
        if !self.sim.io.iterative_bm || self.retries.is_empty() {
            return Ok(());
        }
        let (tiles, rows) = self.pending.dims2()?;
        let chunks = self.chunks.len();
        let (mut red, mut round) = (1.0f32, 0u32);
        while red < MAX_BM_REDUCTION {
            let flags = self.pending.flatten_all()?.to_vec1::<u32>()?;
            red *= 2.0;
            round += 1;
            let mut any = false;
            for t in &self.retries {
                // The rows pending in any tile of the chunk; the kernel computes each only where it is pending.
                let pending_in = |r: usize| (t.chunk..tiles).step_by(chunks).any(|tile| flags[tile * rows + r] != 0);
                let ids: Vec<u32> = (0..rows).filter(|&r| pending_in(r)).map(|r| r as u32).collect();
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
                let sink = Sink { out: self.out, factor: &t.factor, pass: t.pass.as_ref() };
                let rows = Rows { pending: &self.pending, first: false, scale: &chunk.scale, map: Some(&map) };
                kernels::finalize(&y, &rows, &sink, self.tiles(t.chunk), adc(self.sim), red, red < MAX_BM_REDUCTION, t.key, round)?;
            }
            if !any {
                break;
            }
        }
        Ok(())
    }
}

impl PcmAihwkit {
    /// The chip's planes, chunk-major (`Tiling::chunk_major`), and its output factors at drift time `t`
    /// (`[chunks, n]`: row scale × the tile's GDC α) on `device`, cached per layer.
    fn device_chip(&self, layer: &str, chip: &Arc<Chip>, device: &Device, t: f64) -> Result<(Tensor, Tensor)> {
        let mut cache = self.device_chips.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.get(layer).is_some_and(|d| d.holds(chip, device)) {
            let devices = chip.tiling.devices();
            let planes: Vec<f32> = chip.planes().chunks(devices.max(1)).flat_map(|plane| chip.tiling.chunk_major(plane)).collect();
            let planes = Tensor::from_vec(planes, (4, devices), device)?;
            cache.insert(layer.to_string(), DeviceChip { chip: chip.clone(), planes, factors: HashMap::new() });
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
        let chip = self.chip(self.fingerprints.of(call.layer, weight)?, n, k, call, || host(weight))?;
        let (planes, factors) = self.device_chip(call.layer, &chip, x.device(), call.drift_s)?;
        let tf = self.phys.at(call.drift_s);
        let read_key = PhiloxKey::new(call.noise, READ << 48);
        let wc = kernels::read(&planes, tf.log_drift, tf.read_sigma_factor, self.phys.g_max, read_key)?;
        let tiling = &chip.tiling;
        let mut run = TileRun::new(self, &x, &out, tiling)?;
        for (ki, (&(k0, kt), y)) in tiling.chunks.iter().zip(run.products(&wc)?).enumerate() {
            let w = wc.narrow(0, n * k0, n * kt)?.reshape((n, kt))?;
            let key = PhiloxKey::new(call.noise, OUT << 48 | ki as u64);
            run.round0(ki, &y, w, factors.get(ki)?, key, None)?;
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
        let y = Tensor::zeros((rows, n), DType::F32, &dev)?;
        let tiling = Tiling::new(n, k, self.core_size);
        let key = PhiloxKey::new(call.noise, HWA_WEIGHT_NOISE << 48);
        let (normalised, used, factors) = kernels::hwa_weights(weight, self.core_size, self.per_row, self.train_weight_noise, key)?;
        let mut run = TileRun::new(self, &x, &y, &tiling)?;
        let mut chunks = Vec::with_capacity(tiling.chunks.len());
        for (ki, (&(k0, kt), y)) in tiling.chunks.iter().zip(run.products(&normalised)?).enumerate() {
            let at = |m: &Tensor| m.narrow(0, n * k0, n * kt)?.reshape((n, kt));
            let pass = Tensor::ones((rows, n), DType::F32, &dev)?;
            let key = PhiloxKey::new(call.noise, HWA_OUT << 48 | ki as u64);
            run.round0(ki, &y, at(&normalised)?, factors.get(ki)?, key, Some(pass.clone()))?;
            chunks.push(HwaChunk { k0, kt, weight: at(&used)?, pass });
        }
        run.finish()?;
        Ok(HwaForward { y, chunks })
    }
}
