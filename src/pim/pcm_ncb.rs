//! PCM as NewComputeBench's tile computes it (`kind=pcm model="ncb"`, PIM_MODELS.md §5b): a normalising
//! DAC per (block or row, K-chunk), weights normalised per tile to ±g_max, programming noise re-drawn on
//! every forward call, optional read noise, IR drop and output noise, an asymmetric per-row ADC on every
//! tile's outputs, and the de-scale `q·x_max·w_max/g_max`. On a GPU the same steps run as kernels
//! (pcm_ncb/device.rs), with Philox noise in place of the host's ChaCha streams.
//!
//! The ADC range of an edge N-tile includes the zero outputs of its padded columns (exact without noise;
//! the noise a padded cell would add is not simulated).

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::quant::{Format, ncb_adc};
use super::simulator::{Simulator, TileCall};
use super::tiling::{self, Geometry, InputScale};
use crate::sweep::ParamSet;

/// Noise stream of the programming noise (one N(0,1) per weight).
const STREAM_PROG: u64 = 0x3_0000_0000;
/// Noise streams of the read noise: `STREAM_READ + chunk`, one N(0,1) per (row, output); on a GPU one
/// Philox stream, indexed by (chunk, row, output).
const STREAM_READ: u64 = 0x3_1000_0000;
/// Noise streams of the output noise: `STREAM_OUT + chunk` (on a GPU, as the read noise).
const STREAM_OUT: u64 = 0x3_2000_0000;

const READ_NOISE: f32 = 0.0175;
const OUT_NOISE: f32 = 0.04;
/// IR-drop γ (0.35 · 5e-6).
const IR_GAMMA: f32 = 0.35 * 5e-6;

#[derive(Debug, Clone)]
pub struct PcmNcb {
    pub core_size: usize,
    pub input_scale: InputScale,
    pub g_max: f32,
    /// DAC resolution; `None` = an ideal (still normalising) converter.
    pub dac_bits: Option<u32>,
    /// ADC resolution; `None` = no ADC (no clamp, no quantization).
    pub adc_bits: Option<u32>,
    pub programming_noise: bool,
    pub prog_noise_scale: f32,
    pub read_noise: bool,
    pub ir_drop: bool,
    pub out_noise: bool,
    /// The latest layer input through the DAC on a GPU (the query, key and value layers share theirs).
    #[cfg(feature = "cuda")]
    dacs: super::gpu::ncb::DacCache,
}

fn opt_bits(params: &ParamSet, name: &str) -> anyhow::Result<Option<u32>> {
    params.opt_int(name).map(|b| u32::try_from(b).map_err(|_| anyhow::anyhow!("`{name}` must be positive, not {b}"))).transpose()
}

/// NewComputeBench's programming-noise σ at normalised weight `u = w_a/g_max` (signed, not clamped).
#[inline]
pub fn prog_sigma(u: f32) -> f32 {
    -1.1731 * u * u + 1.9650 * u + 0.2635
}

impl PcmNcb {
    pub fn from_params(params: &ParamSet) -> anyhow::Result<PcmNcb> {
        Ok(PcmNcb {
            core_size: usize::try_from(params.int("core-size"))?,
            input_scale: InputScale::from_param(params.string("input-scale"))?,
            g_max: params.float("g-max") as f32,
            dac_bits: opt_bits(params, "dac-bits")?,
            adc_bits: opt_bits(params, "adc-bits")?,
            programming_noise: params.flag("programming-noise"),
            prog_noise_scale: params.float("prog-noise-scale") as f32,
            read_noise: params.flag("read-noise"),
            ir_drop: params.flag("ir-drop"),
            out_noise: params.flag("out-noise"),
            #[cfg(feature = "cuda")]
            dacs: Default::default(),
        })
    }

    /// Whether every tile's output needs its own step (otherwise one GEMM of folded operands is exact).
    fn per_tile_output(&self) -> bool {
        self.adc_bits.is_some() || self.read_noise || self.ir_drop || self.out_noise
    }

    /// Normalised programmed weights `w_p` and the de-scale `w_max/g_max` of every (N-tile, chunk).
    fn program(&self, mut w: Vec<f32>, geom: &Geometry, call: &TileCall) -> (Vec<f32>, Vec<f32>) {
        let (k, nc, g) = (geom.k.max(1), geom.k_chunks(), self.g_max);
        let xi = (self.programming_noise && self.prog_noise_scale > 0.0).then(|| call.noise.normals(STREAM_PROG, w.len()));
        let block = geom.cs * k;
        let scales: Vec<f32> = w
            .par_chunks_mut(block)
            .enumerate()
            .flat_map_iter(|(t, tile)| {
                let base = t * block;
                (0..nc)
                    .map(|c| {
                        let cols = geom.chunk(c);
                        let w_max = tiling::tile_max(tile, k, &cols) + 1e-9;
                        for (i, row) in tile.chunks_mut(k).enumerate() {
                            for j in cols.clone() {
                                let wa = row[j] * g / w_max;
                                row[j] = match &xi {
                                    Some(xi) => wa + self.prog_noise_scale * prog_sigma(wa / g) * xi[base + i * k + j],
                                    None => wa,
                                };
                            }
                        }
                        w_max / g
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        (w, scales)
    }
}

impl Simulator for PcmNcb {
    fn matmul(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            return self.matmul_on_device(x, weight, call);
        }
        let (rows, k) = x.dims2()?;
        let (n, _) = weight.dims2()?;
        let geom = Geometry::new(rows, k, n, self.core_size, call.rows_per_sequence);
        let nc = geom.k_chunks();
        let mut xq =
            tiling::quantize_inputs(x.flatten_all()?.to_vec1::<f32>()?, &geom, self.input_scale, Format::NcbDac { bits: self.dac_bits });
        let (mut wp, w_scale) = self.program(weight.flatten_all()?.to_vec1::<f32>()?, &geom, call);
        if !self.per_tile_output() {
            // Fold the de-scale into the operands: Σ_tiles (x_a·w_p)·x_max·w_max/g = (x_a·x_max)·(w_p·w_max/g).
            let kk = k.max(1);
            xq.data.par_chunks_mut(kk).enumerate().for_each(|(r, row)| {
                for c in 0..nc {
                    let s = xq.norms[xq.row_group[r] * nc + c];
                    row[geom.chunk(c)].iter_mut().for_each(|v| *v *= s);
                }
            });
            wp.par_chunks_mut(geom.cs * kk).enumerate().for_each(|(t, tile)| {
                for row in tile.chunks_mut(kk) {
                    for c in 0..nc {
                        let s = w_scale[t * nc + c];
                        row[geom.chunk(c)].iter_mut().for_each(|v| *v *= s);
                    }
                }
            });
            let out = tiling::gemm_all(&tiling::cpu_tensor(xq.data, rows, k)?, &tiling::cpu_tensor(wp, n, k)?)?;
            return Tensor::from_vec(out, (rows, n), x.device());
        }
        let out = self.tiled(xq, wp, &w_scale, &geom, call)?;
        Tensor::from_vec(out, (rows, n), x.device())
    }
}

impl PcmNcb {
    /// One GEMM per K-chunk, then per (row, N-tile): noise terms, ADC, de-scale, accumulate.
    fn tiled(&self, xq: tiling::QuantizedInput, wp: Vec<f32>, w_scale: &[f32], geom: &Geometry, call: &TileCall) -> Result<Vec<f32>> {
        let (rows, k, n, nc) = (geom.rows, geom.k, geom.n, geom.k_chunks());
        let map = |v: &[f32], f: fn(f32) -> f32| v.par_iter().map(|&a| f(a)).collect::<Vec<f32>>();
        let xt = tiling::cpu_tensor(xq.data.clone(), rows, k)?;
        let wt = tiling::cpu_tensor(wp.clone(), n, k)?;
        // Operands of the optional terms: x_a², |x_a|, |w_p|.
        let abs_w = if self.read_noise || self.ir_drop { Some(tiling::cpu_tensor(map(&wp, f32::abs), n, k)?) } else { None };
        let sq_x = if self.read_noise { Some(tiling::cpu_tensor(map(&xq.data, |a| a * a), rows, k)?) } else { None };
        let abs_x = if self.ir_drop { Some(tiling::cpu_tensor(map(&xq.data, f32::abs), rows, k)?) } else { None };
        let mut acc = vec![0.0f32; rows * n];
        let mut read_xi = vec![0.0f32; if self.read_noise { rows * n } else { 0 }];
        let mut out_xi = vec![0.0f32; if self.out_noise { rows * n } else { 0 }];
        for c in 0..nc {
            let mut r = tiling::gemm_chunk(&xt, &wt, geom, c)?;
            let read_var = match (&sq_x, &abs_w) {
                (Some(sq), Some(aw)) => {
                    call.noise.fill_normal(STREAM_READ + c as u64, &mut read_xi);
                    tiling::gemm_chunk(sq, aw, geom, c)?
                }
                _ => Vec::new(),
            };
            let (ir_a, ir_xs) = match (&abs_x, &abs_w) {
                (Some(ax), Some(aw)) => (tiling::gemm_chunk(ax, aw, geom, c)?, self.ir_weighted(&xt, &wt, geom, c)?),
                _ => (Vec::new(), Vec::new()),
            };
            if self.out_noise {
                call.noise.fill_normal(STREAM_OUT + c as u64, &mut out_xi);
            }
            let ir_n = geom.cs as f32;
            tiling::par_row_tiles(&mut r, &mut acc, geom, |row, t, seg, a| {
                let base = row * n + geom.n_tile(t).start;
                for (j, v) in seg.iter_mut().enumerate() {
                    let i = base + j;
                    if !read_var.is_empty() {
                        *v += READ_NOISE * read_var[i].max(0.0).sqrt() * read_xi[i];
                    }
                    if !ir_a.is_empty() {
                        let a = IR_GAMMA * ir_n * ir_a[i];
                        *v -= (0.05 * a * a * a - 0.2 * a * a + 0.5 * a) * ir_xs[i];
                    }
                    if !out_xi.is_empty() {
                        *v += OUT_NOISE * out_xi[i];
                    }
                }
                if let Some(bits) = self.adc_bits {
                    ncb_adc(seg, bits, 10.0 * self.g_max, seg.len() < geom.cs);
                }
                let s = xq.norm(row, c, nc) * w_scale[t * nc + c];
                a.iter_mut().zip(seg.iter()).for_each(|(a, &q)| *a += q * s);
            });
        }
        Ok(acc)
    }

    /// `(x_a ⊙ s)·w_p` of chunk `c`, with the IR-drop position weights `s_j = 1 − (1 − j/n)²`, n = cs.
    fn ir_weighted(&self, xt: &Tensor, wt: &Tensor, geom: &Geometry, c: usize) -> Result<Vec<f32>> {
        let cols = geom.chunk(c);
        let s = Tensor::from_vec(ir_position_weights(cols.len(), geom.cs), (1, cols.len()), &candle_core::Device::Cpu)?;
        let xs = xt.narrow(1, cols.start, cols.len())?.broadcast_mul(&s)?;
        let wc = wt.narrow(1, cols.start, cols.len())?.contiguous()?;
        tiling::gemm_all(&xs, &wc)
    }
}

/// The IR-drop position weights `s_j = 1 − (1 − j/n)²` of a chunk's `width` columns, n = cs.
fn ir_position_weights(width: usize, cs: usize) -> Vec<f32> {
    let n = cs as f32;
    (0..width).map(|j| 1.0 - (1.0 - j as f32 / n).powi(2)).collect()
}

#[cfg(feature = "cuda")]
mod device;
#[cfg(test)]
mod tests;
