//! ReRAM analog crossbar (`kind=reram`, PIM_MODELS.md §4): a symmetric input DAC per (row or block,
//! K-chunk), per-tile weight levels, device variation relative to the tile's max |w| (a property of the
//! programmed chip), additive raw weight noise (NewComputeBench's `weight_noise`) and an optional
//! symmetric per-row ADC on each tile's outputs.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::gpu;
use super::noise::NoiseKey;
use super::quant::{Format, max_abs, sym_grid};
use super::simulator::{Simulator, TileCall};
use super::tiling::{self, Geometry, InputScale};
use crate::sweep::ParamSet;

/// Noise stream of the device variation `σ·w_max·ξ`.
const STREAM_DEVICE: u64 = 0x1_0000_0000;
/// Noise stream of the additive raw weight noise.
const STREAM_WEIGHT_NOISE: u64 = 0x1_0000_0001;

#[derive(Debug)]
pub struct Reram {
    pub core_size: usize,
    pub input_scale: InputScale,
    /// DAC resolution; `None` = ideal inputs.
    pub input_bits: Option<u32>,
    /// Cell resolution; `None` = unquantized weights.
    pub weight_bits: Option<u32>,
    pub noise_magnitude: f32,
    pub weight_noise: f32,
    pub adc_bits: Option<u32>,
    /// Evaluation: each layer's programmed weights on the latest chip, so a chip is programmed once, not on
    /// every forward (a new chip or a changed master weight replaces the entry).
    programmed: Mutex<HashMap<String, Programmed>>,
    /// The fingerprints of the master weights, measured for a whole forward at once on a GPU.
    fingerprints: gpu::Fingerprints,
}

/// A layer's weights as programmed on one chip.
#[derive(Debug)]
struct Programmed {
    key: NoiseKey,
    fingerprint: u64,
    weights: Tensor,
}

fn opt_bits(params: &ParamSet, name: &str) -> anyhow::Result<Option<u32>> {
    params.opt_int(name).map(|b| u32::try_from(b).map_err(|_| anyhow::anyhow!("`{name}` must be positive, not {b}"))).transpose()
}

impl Reram {
    pub fn from_params(params: &ParamSet) -> anyhow::Result<Reram> {
        let weight_bits = opt_bits(params, "weight-bits")?;
        if weight_bits == Some(1) {
            // Signed levels round(w/w_max·(2^(b-1)-1)) leave a 1-bit cell no level but 0.
            anyhow::bail!("`weight-bits` 1 gives a cell no non-zero level (2^(b-1)-1 = 0): use 2 or more, or #null");
        }
        Ok(Reram {
            core_size: usize::try_from(params.int("core-size"))?,
            input_scale: InputScale::from_param(params.string("input-scale"))?,
            input_bits: opt_bits(params, "input-bits")?,
            weight_bits,
            noise_magnitude: params.float("noise-magnitude") as f32,
            weight_noise: params.float("weight-noise") as f32,
            adc_bits: opt_bits(params, "adc-bits")?,
            programmed: Mutex::new(HashMap::new()),
            fingerprints: gpu::Fingerprints::default(),
        })
    }

    /// The weights `[n, k]` as programmed for this call: in training drawn afresh, in evaluation the chip's
    /// (draw 0 of its key), programmed on the first read and reused while the master weight is unchanged.
    /// The chip is programmed on the CPU and kept on the weight's device; the fingerprint that notices a
    /// changed master weight is computed where the weight is.
    fn programmed_weights(&self, weight: &Tensor, geom: &Geometry, call: &TileCall) -> Result<Tensor> {
        let program = |key: NoiseKey| -> Result<Tensor> {
            let w = weight.flatten_all()?.to_vec1::<f32>()?;
            Tensor::from_vec(self.program(w, geom, key), (geom.n, geom.k), weight.device())
        };
        if call.training {
            if !weight.device().is_cpu() {
                // Re-drawn on every training forward: programmed where the weight is, with Philox draws.
                let keys = [gpu::PhiloxKey::new(call.noise, STREAM_DEVICE), gpu::PhiloxKey::new(call.noise, STREAM_WEIGHT_NOISE)];
                return gpu::reram_program(weight, geom.cs, self.levels(), self.noise_magnitude, self.weight_noise, keys);
            }
            return program(call.noise);
        }
        let key = call.noise.with_draw(0);
        let fingerprint = self.fingerprints.of(call.layer, weight)?;
        let mut cache = self.programmed.lock().unwrap_or_else(|e| e.into_inner());
        // A chip read on another device (a CPU and a GPU model sharing one technology) is programmed anew there.
        let here = |p: &&Programmed| p.weights.device().same_device(weight.device());
        if let Some(p) = cache.get(call.layer).filter(|p| p.key == key && p.fingerprint == fingerprint).filter(here) {
            return Ok(p.weights.clone());
        }
        let weights = program(key)?;
        cache.insert(call.layer.to_string(), Programmed { key, fingerprint, weights: weights.clone() });
        Ok(weights)
    }

    /// The signed cell levels `2^(b−1) − 1` of `weight-bits` b (`None`: unquantized weights).
    fn levels(&self) -> Option<f32> {
        self.weight_bits.map(|b| ((1u32 << (b - 1)) - 1) as f32)
    }

    /// Programs `w`: per-tile levels, then device variation and raw weight noise drawn from `key`.
    fn program(&self, mut w: Vec<f32>, geom: &Geometry, key: NoiseKey) -> Vec<f32> {
        let variation = (self.noise_magnitude > 0.0).then(|| key.normals(STREAM_DEVICE, w.len()));
        let additive = (self.weight_noise > 0.0).then(|| key.normals(STREAM_WEIGHT_NOISE, w.len()));
        let k = geom.k.max(1);
        let block = geom.cs * k;
        w.par_chunks_mut(block).enumerate().for_each(|(t, tile)| {
            let base = t * block;
            for c in 0..geom.k_chunks() {
                let cols = geom.chunk(c);
                let w_max = tiling::tile_max(tile, k, &cols);
                if w_max == 0.0 {
                    continue; // an all-zero tile: zero levels and zero variation
                }
                let levels = self.levels();
                for (i, row) in tile.chunks_mut(k).enumerate() {
                    for j in cols.clone() {
                        let mut v = row[j];
                        if let Some(l) = levels {
                            // Divide before scaling so a huge w_max cannot overflow w·L.
                            v = (v / w_max * l).round_ties_even() / l * w_max;
                        }
                        if let Some(xi) = &variation {
                            v += self.noise_magnitude * w_max * xi[base + i * k + j];
                        }
                        row[j] = v;
                    }
                }
            }
            if let Some(xi) = &additive {
                tile.iter_mut().zip(&xi[base..]).for_each(|(v, e)| *v += self.weight_noise * e);
            }
        });
        w
    }
}

impl Reram {
    /// The same tiles composed of device ops (gpu.rs): how a GPU computes them.
    fn matmul_on_device(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
        let (rows, k) = x.dims2()?;
        let (n, _) = weight.dims2()?;
        let geom = Geometry::new(rows, k, n, self.core_size, call.rows_per_sequence);
        let format = self.input_bits.map_or(Format::Exact, |bits| Format::Int { bits });
        let xq = gpu::quantize_inputs(x, geom.cs, self.input_scale, geom.rows_per_sequence, format)?;
        let w = self.programmed_weights(weight, &geom, call)?;
        let Some(bits) = self.adc_bits else { return xq.matmul(&w.t()?) };
        let acc = Tensor::zeros((rows, n), candle_core::DType::F32, x.device())?;
        for c in 0..geom.k_chunks() {
            let cols = geom.chunk(c);
            let partial =
                xq.narrow(1, cols.start, cols.len())?.contiguous()?.matmul(&w.narrow(1, cols.start, cols.len())?.contiguous()?.t()?)?;
            gpu::accumulate_sym_adc(&acc, &partial, geom.cs, bits)?;
        }
        Ok(acc)
    }
}

impl Simulator for Reram {
    fn begin_forward(&self, layers: &[(&str, &Tensor)], training: bool) -> Result<()> {
        if training {
            return Ok(()); // training programs every forward afresh: no chip cache to check
        }
        self.fingerprints.prefetch(layers)
    }

    fn matmul(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
        if !x.device().is_cpu() {
            return self.matmul_on_device(x, weight, call);
        }
        let (rows, k) = x.dims2()?;
        let (n, _) = weight.dims2()?;
        let geom = Geometry::new(rows, k, n, self.core_size, call.rows_per_sequence);
        let format = self.input_bits.map_or(Format::Exact, |bits| Format::Int { bits });
        let xq = tiling::quantize_inputs(x.flatten_all()?.to_vec1::<f32>()?, &geom, self.input_scale, format);
        let wt = self.programmed_weights(weight, &geom, call)?;
        let xt = tiling::cpu_tensor(xq.data, rows, k)?;
        let out = match self.adc_bits {
            None => tiling::gemm_all(&xt, &wt)?,
            Some(bits) => {
                let mut acc = vec![0.0f32; rows * n];
                for c in 0..geom.k_chunks() {
                    let mut partial = tiling::gemm_chunk(&xt, &wt, &geom, c)?;
                    tiling::par_row_tiles(&mut partial, &mut acc, &geom, |_, _, p, a| {
                        let grid = sym_grid(max_abs(p), bits);
                        a.iter_mut().zip(p.iter()).for_each(|(a, &y)| *a += grid.apply(y));
                    });
                }
                acc
            }
        };
        Tensor::from_vec(out, (rows, n), x.device())
    }
}

#[cfg(test)]
mod tests;
