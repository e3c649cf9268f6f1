//! Digital SRAM PIM (`kind=digital`, PIM_MODELS.md §3): block floating point (or symmetric integer)
//! quantization of inputs and weights with vector-wise pre-alignment, an exact f32 tile product, and
//! optional relative output noise per tile.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::gpu;
use super::quant::{Format, max_abs};
use super::simulator::{Simulator, TileCall};
use super::tiling::{self, Geometry, InputScale};
use crate::sweep::ParamSet;

/// Noise stream of the approximate-computing output noise (one stream per K-chunk: `STREAM + chunk`).
const STREAM_APPROX: u64 = 0x5_0000_0000;

/// Exponent sharing of the weights and (in block mode) the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rescale {
    /// One exponent per output column per K-chunk.
    Vector,
    /// One exponent per cs × cs weight tile.
    Matrix,
}

#[derive(Debug, Clone)]
pub struct Sram {
    pub core_size: usize,
    pub input_scale: InputScale,
    pub format: Format,
    pub rescale: Rescale,
    pub approximate_noise: f32,
}

impl Sram {
    pub fn from_params(params: &ParamSet) -> anyhow::Result<Sram> {
        let rescale = match params.string("rescale") {
            "vector" => Rescale::Vector,
            "matrix" => Rescale::Matrix,
            other => anyhow::bail!("unknown rescale {other:?} (expected \"vector\" or \"matrix\")"),
        };
        Ok(Sram {
            core_size: usize::try_from(params.int("core-size"))?,
            input_scale: InputScale::from_param(params.string("input-scale"))?,
            format: params.number_format("format").into(),
            rescale,
            approximate_noise: params.float("approximate-noise") as f32,
        })
    }

    /// The weights re-quantized from the master copy: per (output column, chunk) vector, or per tile.
    fn quantize_weight(&self, mut w: Vec<f32>, geom: &Geometry) -> Vec<f32> {
        let k = geom.k.max(1);
        match self.rescale {
            Rescale::Vector => w.par_chunks_mut(k).for_each(|row| {
                for c in 0..geom.k_chunks() {
                    let seg = &mut row[geom.chunk(c)];
                    let grid = self.format.grid(max_abs(seg));
                    seg.iter_mut().for_each(|v| *v = grid.apply(*v));
                }
            }),
            Rescale::Matrix => w.par_chunks_mut(geom.cs * k).for_each(|block| {
                for c in 0..geom.k_chunks() {
                    let cols = geom.chunk(c);
                    let grid = self.format.grid(tiling::tile_max(block, k, &cols));
                    for row in block.chunks_mut(k) {
                        row[cols.clone()].iter_mut().for_each(|v| *v = grid.apply(*v));
                    }
                }
            }),
        }
        w
    }
}

impl Sram {
    /// The same tiles composed of device ops (gpu.rs): how a GPU computes them.
    fn matmul_on_device(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
        let (rows, k) = x.dims2()?;
        let (n, _) = weight.dims2()?;
        let cs = self.core_size;
        // "matrix" shares one exponent over a whole input block too: that is the block input scale.
        let mode = if self.rescale == Rescale::Matrix { InputScale::Block } else { self.input_scale };
        let xq = gpu::quantize_inputs(x, cs, mode, call.rows_per_sequence, self.format)?;
        let wq = match self.rescale {
            Rescale::Vector => gpu::quantize_groups(weight, cs, 1, 1, self.format)?,
            Rescale::Matrix => gpu::quantize_groups(weight, cs, cs, n, self.format)?,
        };
        if self.approximate_noise == 0.0 {
            return xq.matmul(&wq.t()?);
        }
        let geom = Geometry::new(rows, k, n, cs, call.rows_per_sequence);
        let acc = Tensor::zeros((rows, n), candle_core::DType::F32, x.device())?;
        for c in 0..geom.k_chunks() {
            let cols = geom.chunk(c);
            let partial =
                xq.narrow(1, cols.start, cols.len())?.contiguous()?.matmul(&wq.narrow(1, cols.start, cols.len())?.contiguous()?.t()?)?;
            gpu::accumulate_relative_noise(&acc, &partial, self.approximate_noise, call.noise, STREAM_APPROX + c as u64)?;
        }
        Ok(acc)
    }
}

impl Simulator for Sram {
    fn matmul(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
        if !x.device().is_cpu() {
            return self.matmul_on_device(x, weight, call);
        }
        let (rows, k) = x.dims2()?;
        let (n, _) = weight.dims2()?;
        let geom = Geometry::new(rows, k, n, self.core_size, call.rows_per_sequence);
        // "matrix" shares one exponent over a whole input block too: that is the block input scale.
        let mode = if self.rescale == Rescale::Matrix { InputScale::Block } else { self.input_scale };
        let xq = tiling::quantize_inputs(x.flatten_all()?.to_vec1::<f32>()?, &geom, mode, self.format);
        let wq = self.quantize_weight(weight.flatten_all()?.to_vec1::<f32>()?, &geom);
        let xt = tiling::cpu_tensor(xq.data, rows, k)?;
        let wt = tiling::cpu_tensor(wq, n, k)?;
        let out = if self.approximate_noise == 0.0 {
            // No per-tile output step: the tiles' f32 partial sums are one GEMM of the quantized operands.
            tiling::gemm_all(&xt, &wt)?
        } else {
            let mut acc = vec![0.0f32; rows * n];
            let mut xi = vec![0.0f32; rows * n];
            for c in 0..geom.k_chunks() {
                let mut partial = tiling::gemm_chunk(&xt, &wt, &geom, c)?;
                call.noise.fill_normal(STREAM_APPROX + c as u64, &mut xi);
                let sigma = self.approximate_noise;
                tiling::par_row_tiles(&mut partial, &mut acc, &geom, |row, t, p, a| {
                    let xi = &xi[row * n + geom.n_tile(t).start..];
                    for ((a, &y), &e) in a.iter_mut().zip(p.iter()).zip(xi) {
                        *a += y + y * sigma * e;
                    }
                });
            }
            acc
        };
        Tensor::from_vec(out, (rows, n), x.device())
    }
}

#[cfg(test)]
mod tests;
