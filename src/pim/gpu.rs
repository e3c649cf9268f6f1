//! The tiles' per-element work as candle ops that run where the tensors are: on the CPU (the reference
//! loops of quant.rs) and, in a `cuda` build, on the GPU (src/pim/gpu/kernels.cu and the .cuh files it
//! includes, compiled to PTX by build.rs). Each op is one fused pass over memory; the matrix products stay
//! in cuBLAS (candle's matmul, or gpu/gemm.rs where the operands are strided chunks).
//!
//! The CPU side of every op is what CI tests against the technologies' CPU paths; the GPU side is checked
//! against the CPU side by tests/cuda.rs on a GPU machine. Noise is Philox4x32-10 counter-based (one draw per
//! element index), so a GPU draw does not depend on the launch shape; it is another stream than the CPU
//! technologies' ChaCha draws, equal in distribution only.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, DType, Device, InplaceOp1, InplaceOp2, Layout, Result, Storage, Tensor, bail};

use super::noise::NoiseKey;
use super::quant::{Format, Grid, max_abs, sym_grid};
use super::tiling::{Geometry, InputScale};

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "cuda")]
pub(crate) use cuda::RoundKeys;
#[cfg(feature = "cuda")]
pub mod gemm;
#[cfg(feature = "cuda")]
pub mod ncb;
#[cfg(feature = "cuda")]
pub mod pcm;

/// Quantizes `x` `[rows, K]` with one scale per (row group, K-chunk): `group_rows` rows at a time within each
/// run of `rows_per_sequence` rows (1 and 1: per token or weight row; cs and the sequence length: the
/// block input scale; cs and N: per weight tile). Returns a new tensor on `x`'s device.
pub fn quantize_groups(x: &Tensor, cs: usize, group_rows: usize, rows_per_sequence: usize, format: Format) -> Result<Tensor> {
    let x = x.contiguous()?;
    if format == Format::Exact {
        return x.copy();
    }
    let (rows, _) = x.dims2()?;
    let rps = if rows_per_sequence == 0 { rows.max(1) } else { rows_per_sequence.min(rows.max(1)) };
    x.apply_op1_no_bwd(&QuantizeGroups { cs: cs.max(1), group_rows: group_rows.max(1), rps, format })
}

/// The DAC of a layer input `[rows, K]`: one scale per (token, K-chunk), or per (block of `cs` rows of one
/// sequence, K-chunk) (tiling.rs `quantize_inputs` on the tensor's device).
pub fn quantize_inputs(x: &Tensor, cs: usize, mode: InputScale, rows_per_sequence: usize, format: Format) -> Result<Tensor> {
    match mode {
        InputScale::Token => quantize_groups(x, cs, 1, 1, format),
        InputScale::Block => quantize_groups(x, cs, cs, rows_per_sequence, format),
    }
}

/// `acc += y + y·σ·ξ` with ξ ~ N(0, 1) from `key` and `stream` (SRAM approximate computing).
pub fn accumulate_relative_noise(acc: &Tensor, y: &Tensor, sigma: f32, key: NoiseKey, stream: u64) -> Result<()> {
    acc.inplace_op2(&y.contiguous()?, &RelativeNoise { sigma, key: PhiloxKey::new(key, stream) })
}

/// `acc += ADC(p)`: each (row, N-tile of `cs` outputs) of the partial sums `p` `[rows, N]` quantized on the
/// symmetric `bits`-bit grid of its own max |p| (ReRAM's ADC).
pub fn accumulate_sym_adc(acc: &Tensor, p: &Tensor, cs: usize, bits: u32) -> Result<()> {
    acc.inplace_op2(&p.contiguous()?, &SymAdc { cs: cs.max(1), bits })
}

/// `n` N(0, 1) draws of `stream`, on `device`.
pub fn normals(n: usize, device: &Device, key: NoiseKey, stream: u64) -> Result<Tensor> {
    let out = Tensor::zeros(n, DType::F32, device)?;
    out.inplace_op1(&FillNormal { key: PhiloxKey::new(key, stream) })?;
    Ok(out)
}

/// tiling.rs `weight_fingerprint` of a weight `[n, k]`, computed where the weight is (on a GPU, only the
/// 8-byte sum crosses the bus).
pub fn weight_fingerprint(w: &Tensor) -> Result<u64> {
    Ok(weight_fingerprints(&[w])?[0])
}

/// [`weight_fingerprint`] of several weights on one device, read back together: one host round trip (on a
/// GPU, one launch for up to 64 weights).
pub fn weight_fingerprints(weights: &[&Tensor]) -> Result<Vec<u64>> {
    #[cfg(feature = "cuda")]
    let sums = match weights.first().is_some_and(|w| w.device().is_cuda()) {
        true => cuda::fingerprint_sums(weights)?,
        false => cpu_fingerprint_sums(weights)?,
    };
    #[cfg(not(feature = "cuda"))]
    let sums = cpu_fingerprint_sums(weights)?;
    weights
        .iter()
        .zip(sums)
        .map(|(w, sum)| {
            let (n, k) = w.dims2()?;
            Ok(super::tiling::finish_fingerprint(sum, n, k))
        })
        .collect()
}

fn cpu_fingerprint_sums(weights: &[&Tensor]) -> Result<Vec<u64>> {
    weights
        .iter()
        .map(|w| {
            let w = w.contiguous()?;
            let (storage, layout) = w.storage_and_layout();
            let Storage::Cpu(s) = &*storage else { bail!("weight fingerprints: the weights are on different devices") };
            Ok(super::tiling::fingerprint_sum(f32_slice(s, layout)?))
        })
        .collect()
}

/// Weight fingerprints measured ahead of their layers' calls. On a GPU every fingerprint read is a
/// synchronisation that drains the queue of kernels; [`Fingerprints::prefetch`] measures all the layers of a
/// forward at its start with one. Each prefetched value serves its layer's next call only; the next
/// prefetch replaces them all.
#[derive(Debug, Default)]
pub struct Fingerprints(Mutex<HashMap<String, u64>>);

impl Fingerprints {
    /// Measures the fingerprints of `layers` (name, weight `[n, k]`) on a GPU; does nothing on the CPU,
    /// where measuring at the call costs the same.
    pub fn prefetch(&self, layers: &[(&str, &Tensor)]) -> Result<()> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.clear();
        if layers.first().is_none_or(|(_, w)| w.device().is_cpu()) {
            return Ok(());
        }
        let weights: Vec<&Tensor> = layers.iter().map(|&(_, w)| w).collect();
        for ((name, _), fingerprint) in layers.iter().zip(weight_fingerprints(&weights)?) {
            map.insert(name.to_string(), fingerprint);
        }
        Ok(())
    }

    /// The fingerprint of `layer`'s weight: the prefetched one (used up), else measured now.
    pub fn of(&self, layer: &str, weight: &Tensor) -> Result<u64> {
        let prefetched = self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(layer);
        match prefetched {
            Some(fingerprint) => Ok(fingerprint),
            None => weight_fingerprint(weight),
        }
    }
}

/// The ReRAM programming of a training forward (reram.rs `program`) where `w` `[n, k]` is: per tile of `cs`
/// rows × `cs` columns with max |w| = m, `levels` (`Some(L)`: v ← round(v/m·L)/L·m) and device variation
/// `sigma_dev·m·ξ`, then additive weight noise `sigma_add·ξ'`; ξ, ξ' Philox draws of the two keys at each
/// weight's flat index. Returns a new tensor.
pub fn reram_program(w: &Tensor, cs: usize, levels: Option<f32>, sigma_dev: f32, sigma_add: f32, keys: [PhiloxKey; 2]) -> Result<Tensor> {
    let out = w.contiguous()?.copy()?;
    out.inplace_op1(&ReramProgram { cs: cs.max(1), levels: levels.unwrap_or(0.0), sigma_dev, sigma_add, keys })?;
    Ok(out)
}

/// A Philox key and stream word derived from a noise key and a stream (BLAKE3, as [`NoiseKey::rng`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhiloxKey {
    pub key: [u32; 2],
    pub stream: u32,
}

impl PhiloxKey {
    pub fn new(key: NoiseKey, stream: u64) -> PhiloxKey {
        let mut bytes = [0u8; 48];
        for (i, v) in [key.seed, key.layer, key.chip, key.draw, stream, u64::MAX].into_iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        let h = blake3::hash(&bytes);
        let word = |i: usize| u32::from_le_bytes(h.as_bytes()[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        PhiloxKey { key: [word(0), word(1)], stream: word(2) }
    }

    /// Draw `index` of the stream: Philox4x32-10 on (index, stream, 0x5eed), then Box-Muller (kernels.cu
    /// `normal_at`; the GPU's logf/cospif differ from these in the last bits).
    pub fn normal_at(&self, index: u64) -> f32 {
        let r = philox([index as u32, (index >> 32) as u32, self.stream, 0x5eed], self.key);
        let u1 = ((r[0] >> 8) as f32 + 1.0) * (1.0 / 16_777_216.0);
        let u2 = (r[1] >> 8) as f32 * (1.0 / 16_777_216.0);
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::PI * 2.0 * u2).cos()
    }
}

/// Philox4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011).
pub(crate) fn philox(mut c: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    for k in round_keys(key) {
        let p0 = 0xD251_1F53u64 * c[0] as u64;
        let p1 = 0xCD9E_8D57u64 * c[2] as u64;
        let (hi0, lo0, hi1, lo1) = ((p0 >> 32) as u32, p0 as u32, (p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Philox4x32-10's key schedule: the key of each round (the GPU kernels take them precomputed, cuda.rs
/// `RoundKeys`).
pub(crate) fn round_keys(key: [u32; 2]) -> [[u32; 2]; 10] {
    std::array::from_fn(|i| {
        [key[0].wrapping_add(0x9E37_79B9u32.wrapping_mul(i as u32)), key[1].wrapping_add(0xBB67_AE85u32.wrapping_mul(i as u32))]
    })
}

fn f32_slice_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout) -> Result<&'a mut [f32]> {
    match storage {
        CpuStorage::F32(v) => Ok(&mut v[layout.start_offset()..layout.start_offset() + layout.shape().elem_count()]),
        _ => bail!("PIM ops take f32 tensors"),
    }
}

fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    match storage {
        CpuStorage::F32(v) => Ok(&v[layout.start_offset()..layout.start_offset() + layout.shape().elem_count()]),
        _ => bail!("PIM ops take f32 tensors"),
    }
}

/// The kernel codes of a format (kernels.cu): (format, exponent bits, mantissa bits, bits).
#[cfg(feature = "cuda")]
fn format_code(format: Format) -> (i32, i32, i32, i32) {
    match format {
        Format::Exact => (0, 0, 0, 0),
        Format::Bfp { exponent_bits, mantissa_bits } => (1, exponent_bits as i32, mantissa_bits as i32, 0),
        Format::Int { bits } => (2, 0, 0, bits as i32),
        Format::NcbDac { bits: Some(b) } => (3, 0, 0, b as i32),
        Format::NcbDac { bits: None } => (4, 0, 0, 0),
    }
}

struct QuantizeGroups {
    cs: usize,
    group_rows: usize,
    rps: usize,
    format: Format,
}

/// Out of place: a copy then a pass over it would read and write the input twice.
impl CustomOp1 for QuantizeGroups {
    fn name(&self) -> &'static str {
        "pim-quantize-groups"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, candle_core::Shape)> {
        let (rows, k) = layout.shape().dims2()?;
        let mut out = f32_slice(storage, layout)?.to_vec();
        let x = &mut out[..];
        let geom = Geometry::new(rows, k, 1, self.cs, self.rps);
        let mut seq = 0;
        while seq < rows {
            let seq_end = (seq + self.rps).min(rows);
            let mut r0 = seq;
            while r0 < seq_end {
                let r1 = (r0 + self.group_rows).min(seq_end);
                for c in 0..geom.k_chunks() {
                    let cols = geom.chunk(c);
                    let m = (r0..r1).fold(0.0f32, |m, r| m.max(max_abs(&x[r * k + cols.start..r * k + cols.end])));
                    let grid = self.format.grid(m);
                    for r in r0..r1 {
                        x[r * k + cols.start..r * k + cols.end].iter_mut().for_each(|v| *v = grid.apply(*v));
                    }
                }
                r0 = r1;
            }
            seq = seq_end;
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, storage: &candle_core::CudaStorage, layout: &Layout) -> Result<(candle_core::CudaStorage, candle_core::Shape)> {
        let (rows, k) = layout.shape().dims2()?;
        let (format, e, m, bits) = format_code(self.format);
        let out = cuda::quantize_groups(storage, layout, [rows, k, self.cs, self.group_rows, self.rps], [format, e, m, bits])?;
        Ok((out, layout.shape().clone()))
    }
}

struct RelativeNoise {
    sigma: f32,
    key: PhiloxKey,
}

impl InplaceOp2 for RelativeNoise {
    fn name(&self) -> &'static str {
        "pim-relative-noise"
    }

    fn cpu_fwd(&self, acc: &mut CpuStorage, la: &Layout, y: &CpuStorage, ly: &Layout) -> Result<()> {
        let (acc, y) = (f32_slice_mut(acc, la)?, f32_slice(y, ly)?);
        for (i, (a, &v)) in acc.iter_mut().zip(y).enumerate() {
            let noise = v * self.sigma;
            *a += v + noise * self.key.normal_at(i as u64);
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, acc: &mut candle_core::CudaStorage, la: &Layout, y: &candle_core::CudaStorage, ly: &Layout) -> Result<()> {
        cuda::relative_noise(acc, la, y, ly, self.sigma, self.key)
    }
}

struct SymAdc {
    cs: usize,
    bits: u32,
}

impl InplaceOp2 for SymAdc {
    fn name(&self) -> &'static str {
        "pim-sym-adc"
    }

    fn cpu_fwd(&self, acc: &mut CpuStorage, la: &Layout, p: &CpuStorage, lp: &Layout) -> Result<()> {
        let (_, n) = lp.shape().dims2()?;
        let (acc, p) = (f32_slice_mut(acc, la)?, f32_slice(p, lp)?);
        for (a, p) in acc.chunks_mut(n.max(1)).zip(p.chunks(n.max(1))) {
            for (a, p) in a.chunks_mut(self.cs).zip(p.chunks(self.cs)) {
                let grid: Grid = sym_grid(max_abs(p), self.bits);
                a.iter_mut().zip(p).for_each(|(a, &y)| *a += grid.apply(y));
            }
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, acc: &mut candle_core::CudaStorage, la: &Layout, p: &candle_core::CudaStorage, lp: &Layout) -> Result<()> {
        cuda::sym_adc(acc, la, p, lp, self.cs, self.bits)
    }
}

struct ReramProgram {
    cs: usize,
    /// 0: no level quantisation.
    levels: f32,
    sigma_dev: f32,
    sigma_add: f32,
    keys: [PhiloxKey; 2],
}

impl InplaceOp1 for ReramProgram {
    fn name(&self) -> &'static str {
        "pim-reram-program"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let (n, k) = layout.shape().dims2()?;
        let w = f32_slice_mut(storage, layout)?;
        let geom = Geometry::new(n, k, n, self.cs, 0);
        for r0 in (0..n).step_by(self.cs) {
            let rows = r0..(r0 + self.cs).min(n);
            for c in 0..geom.k_chunks() {
                let cols = geom.chunk(c);
                let m = rows.clone().fold(0.0f32, |m, r| m.max(max_abs(&w[r * k + cols.start..r * k + cols.end])));
                for r in rows.clone() {
                    let row = r * k + cols.start..r * k + cols.end;
                    for (at, w) in row.clone().zip(&mut w[row]) {
                        let mut v = *w;
                        if m > 0.0 {
                            if self.levels > 0.0 {
                                v = (v / m * self.levels).round_ties_even() / self.levels * m;
                            }
                            if self.sigma_dev > 0.0 {
                                v += self.sigma_dev * m * self.keys[0].normal_at(at as u64);
                            }
                        }
                        if self.sigma_add > 0.0 {
                            v += self.sigma_add * self.keys[1].normal_at(at as u64);
                        }
                        *w = v;
                    }
                }
            }
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, storage: &mut candle_core::CudaStorage, layout: &Layout) -> Result<()> {
        let (n, k) = layout.shape().dims2()?;
        cuda::reram_program(storage, layout, [n, k, self.cs], [self.levels, self.sigma_dev, self.sigma_add], self.keys)
    }
}

struct FillNormal {
    key: PhiloxKey,
}

impl InplaceOp1 for FillNormal {
    fn name(&self) -> &'static str {
        "pim-fill-normal"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        f32_slice_mut(storage, layout)?.iter_mut().enumerate().for_each(|(i, v)| *v = self.key.normal_at(i as u64));
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, storage: &mut candle_core::CudaStorage, layout: &Layout) -> Result<()> {
        cuda::fill_normal(storage, layout, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pim::tiling::{InputScale, quantize_inputs};

    fn tensor(rows: usize, k: usize, seed: u64) -> (Vec<f32>, Tensor) {
        let key = NoiseKey::new(seed, "t", 0, 0);
        let mut v = key.normals(1, rows * k);
        v[3] = 0.0;
        v[k + 1] *= 40.0; // an outlier that sets its group's scale
        let t = Tensor::from_vec(v.clone(), (rows, k), &Device::Cpu).unwrap();
        (v, t)
    }

    #[test]
    fn grouped_quantization_is_the_tile_code_for_token_and_block_scales() {
        let (rows, k, cs, seq) = (10, 77, 32, 5);
        let (v, t) = tensor(rows, k, 1);
        for format in [
            Format::Bfp { exponent_bits: 4, mantissa_bits: 3 },
            Format::Bfp { exponent_bits: 8, mantissa_bits: 7 },
            Format::Int { bits: 8 },
            Format::NcbDac { bits: Some(8) },
        ] {
            let geom = Geometry::new(rows, k, 1, cs, seq);
            let token = quantize_inputs(v.clone(), &geom, InputScale::Token, format).data;
            let got = quantize_groups(&t, cs, 1, 1, format).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(got, token, "{format:?} token");
            let block = quantize_inputs(v.clone(), &geom, InputScale::Block, format).data;
            let got = quantize_groups(&t, cs, cs, seq, format).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(got, block, "{format:?} block");
        }
    }

    #[test]
    fn philox_matches_the_published_known_answer() {
        // Random123's kat_vectors: philox4x32_10 with counter and key all 0xffffffff / all 0.
        assert_eq!(philox([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(philox([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    }

    #[test]
    fn philox_normals_are_standard_and_keyed() {
        let key = PhiloxKey::new(NoiseKey::new(7, "layer", 0, 1), 3);
        let n = 200_000;
        let draws = normals(n, &Device::Cpu, NoiseKey::new(7, "layer", 0, 1), 3).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(draws[12345], key.normal_at(12345));
        // Mean within 5 standard errors (1/sqrt(n)); variance within 5·sqrt(2/n); kurtosis 3 within 5·sqrt(24/n).
        let nf = n as f64;
        let mean = draws.iter().map(|&v| v as f64).sum::<f64>() / nf;
        let var = draws.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / nf;
        let kurt = draws.iter().map(|&v| (v as f64 - mean).powi(4)).sum::<f64>() / nf / (var * var);
        assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "variance {var}");
        assert!((kurt - 3.0).abs() < 5.0 * (24.0 / nf).sqrt(), "kurtosis {kurt}");
        let other = normals(8, &Device::Cpu, NoiseKey::new(7, "layer", 0, 2), 3).unwrap().to_vec1::<f32>().unwrap();
        assert_ne!(other[..], draws[..8], "another draw, other numbers");
    }

    #[test]
    fn the_fingerprint_op_is_the_tile_code_and_sees_one_changed_bit() {
        let (v, t) = tensor(30, 50, 3);
        let fp = weight_fingerprint(&t).unwrap();
        assert_eq!(fp, crate::pim::tiling::weight_fingerprint(&v, 30, 50));
        let mut changed = v.clone();
        changed[777] = f32::from_bits(changed[777].to_bits() ^ 1);
        let changed = Tensor::from_vec(changed, (30, 50), &Device::Cpu).unwrap();
        assert_ne!(weight_fingerprint(&changed).unwrap(), fp);
        // Measured together, each weight keeps its own.
        assert_eq!(weight_fingerprints(&[&t, &changed, &t]).unwrap(), [fp, weight_fingerprint(&changed).unwrap(), fp]);
    }

    #[test]
    fn the_adc_op_quantizes_each_tile_row_on_its_own_range() {
        let p = Tensor::new(&[[1.0f32, -0.5, 0.25, 100.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]], &Device::Cpu).unwrap();
        let acc = Tensor::ones((2, 5), DType::F32, &Device::Cpu).unwrap();
        accumulate_sym_adc(&acc, &p, 3, 4).unwrap();
        let got = acc.to_vec2::<f32>().unwrap();
        // Tile 0 of row 0: max 1, grid 8/1: 1 → clamp(8, -8, 7)/8 = 0.875; -0.5 → -0.5; 0.25 → 0.25.
        // Tile 1: max 100, s = 0.08: 100 → 7/0.08 = 87.5; 3 → round(0.24) = 0.
        let expected = [[1.875, 0.5, 1.25, 88.5, 1.0], [1.0; 5]];
        for (g, e) in got.iter().flatten().zip(expected.iter().flatten()) {
            assert!((g - e).abs() < 1e-5, "{got:?}");
        }
    }
}
