//! AIHWKIT's hardware-aware training forward for PCM tiles (PIM_MODELS.md §6, second bullet): each tile's
//! weights are normalised per row (or per tile) as when programmed, perturbed with fresh Gaussian weight noise
//! `train-weight-noise · max|w_tile|` (AIHWKIT's ADD_NORMAL, drawn on every forward), and multiplied through the
//! same IO model as evaluation (DAC, out-noise, ADC with bound management). No programming noise, drift or
//! read noise: those belong to the chip, which training never programs. The result carries, per input chunk,
//! the perturbed weights and where the ADC clipped, so the backward goes through the perturbed weights with
//! zero gradient where clipped (the straight-through estimator through the quantisers). Inputs are scaled by
//! their abs-max before the DAC, so they never clip there; with `noise-management "none"` inputs beyond ±1
//! still pass their gradient.

use candle_core::{Device, Result, Tensor};

use super::chip::Tiling;
use super::io::TileNoise;
use super::{PcmAihwkit, host};
use crate::pim::simulator::{HwaForward, TileCall};

/// Stream tags of the training draws: the weight noise, and the IO's output noise.
const WEIGHT_NOISE: u64 = 0xA6;
const OUT: u64 = 0xA7;

/// The training forward of `x` `[rows, K]` through weight `[N, K]`.
pub(super) fn forward(sim: &PcmAihwkit, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<HwaForward> {
    let (rows, k) = x.dims2()?;
    let (n, _) = weight.dims2()?;
    let (xs, w) = (host(x)?, host(weight)?);
    let tiling = Tiling::new(n, k, sim.core_size);
    let mut y = vec![0.0f32; rows * n];
    // Chunk-major: each chunk's [n, kt] weights and [rows, n] pass mask after the last.
    let (mut weight, mut passes) = (Vec::with_capacity(n * k), Vec::with_capacity(tiling.chunks.len() * rows * n));
    for (ki, &(k0, kt)) in tiling.chunks.iter().enumerate() {
        let chunk = sim.io.chunk(&xs, rows, k, k0, kt);
        let mut w_used = vec![0.0f32; n * kt];
        let mut pass = vec![1.0f32; rows * n];
        for (ti, tile) in tiling.tiles.iter().enumerate().filter(|(_, t)| t.ki == ki) {
            let (nt, n0) = (tile.nt, tile.n0);
            let row = |i: usize| &w[(n0 + i) * k + k0..(n0 + i) * k + k0 + kt];
            let max_abs = |r: &[f32]| r.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let tile_max = (0..nt).map(|i| max_abs(row(i))).fold(0.0f32, f32::max);
            if tile_max == 0.0 {
                continue; // an all-zero tile contributes nothing, and its gradient is that of zero weights
            }
            let scales: Vec<f32> = (0..nt).map(|i| if sim.per_row { max_abs(row(i)) } else { tile_max }).collect();
            // Normalised weights (max |w| 1 per row, or per tile), then the fresh weight noise.
            let mut wn: Vec<f32> = Vec::with_capacity(nt * kt);
            for (i, &s) in scales.iter().enumerate() {
                wn.extend(row(i).iter().map(|v| if s > 0.0 { v / s } else { 0.0 }));
            }
            if sim.train_weight_noise > 0.0 {
                let noise = call.noise.normals(WEIGHT_NOISE << 48 | ti as u64, nt * kt);
                for (v, z) in wn.iter_mut().zip(noise) {
                    *v += sim.train_weight_noise * z;
                }
            }
            let wn_abs = (sim.io.w_noise > 0.0 || sim.io.ir_drop > 0.0)
                .then(|| Tensor::from_vec(wn.iter().map(|v| v.abs()).collect::<Vec<_>>(), (nt, kt), &Device::Cpu))
                .transpose()?;
            let wt = Tensor::from_slice(&wn, (nt, kt), &Device::Cpu)?;
            let mut tile_pass = vec![1.0f32; rows * nt];
            let noise = TileNoise { key: call.noise, tag: OUT, tile: ti as u64 };
            let yt = sim.io.tile(&chunk, &wt, wn_abs.as_ref(), nt, noise, Some(&mut tile_pass))?;
            for r in 0..rows {
                for i in 0..nt {
                    let o = r * n + n0 + i;
                    y[o] = (y[o] + yt[r * nt + i] * scales[i]).clamp(f32::MIN, f32::MAX);
                    pass[o] = tile_pass[r * nt + i];
                }
            }
            for i in 0..nt {
                for j in 0..kt {
                    w_used[(n0 + i) * kt + j] = wn[i * kt + j] * scales[i];
                }
            }
        }
        weight.extend(w_used);
        passes.extend(pass);
    }
    let device = x.device();
    let on_device = |v: Vec<f32>, shape: &[usize]| Tensor::from_vec(v, shape, &Device::Cpu)?.to_device(device);
    Ok(HwaForward {
        y: on_device(y, &[rows, n])?,
        chunks: tiling.chunks.clone(),
        weight: on_device(weight, &[n * k])?,
        pass: on_device(passes, &[tiling.chunks.len(), rows, n])?,
    })
}
