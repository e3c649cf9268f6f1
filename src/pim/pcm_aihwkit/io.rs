//! The forward IO model of one analog tile, after AIHWKIT's `IOParameters` (PIM_MODELS.md §5a): per-token
//! abs-max noise management, DAC quantisation, the MVM (a candle GEMM), IR drop and PCM read noise on the MVM,
//! output noise, ADC quantisation with saturation, and iterative bound management.
//!
//! Units: inputs are normalised to [−1, 1] per token row, weights are the tile's conductance differences over
//! `g_max` (so at most 1 in magnitude), and `out-noise` / `out-bound` are in the units of their product.

use candle_core::{Device, Result, Tensor};
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::pim::NoiseKey;

/// Bound management stops halving the input at this reduction (AIHWKIT: `max_bm_res / inp_res` ≈ 32 at 8 bits).
const MAX_BM_REDUCTION: f32 = 32.0;
/// AIHWKIT's `ir_drop_Gw_div_gmax`: wire conductance over g_max.
const IR_DROP_GW_DIV_GMAX: f32 = 5.7e5;

/// The IO parameters of the tiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Io {
    /// Noise management "abs-max": scale each token row by its max |x| before the DAC.
    pub abs_max: bool,
    /// DAC step over [−1, 1] (`2·inp_res`, 255 levels at 8 bits); 0 = not quantised.
    pub inp_step: f32,
    /// ADC step over ±`out_bound` (`2·out_bound·out_res`); 0 = not quantised.
    pub out_step: f32,
    /// ADC saturation (infinite = none).
    pub out_bound: f32,
    pub out_noise: f32,
    /// Bound management "iterative".
    pub iterative_bm: bool,
    /// PCM read noise on the MVM (`w_noise·sqrt(Σ_j |w_ij|·x_j²)·ξ_i`).
    pub w_noise: f32,
    /// IR-drop scale (AIHWKIT `ir_drop`).
    pub ir_drop: f32,
}

/// Step of a symmetric converter with `bits` over a range of width `range`: 2^bits − 1 levels.
pub fn step(bits: i64, range: f32) -> f32 {
    range / ((1u64 << bits.clamp(2, 32)) - 2) as f32
}

/// Round half to even onto the grid of `step`, clamped to ±`bound` (a step of 0 only clamps).
fn quantize(v: f32, step: f32, bound: f32) -> f32 {
    let q = if step > 0.0 { round_ties_even(v / step) * step } else { v };
    q.clamp(-bound, bound)
}

/// `f32::round_ties_even` without the libm call baseline x86-64 makes of it: adding and subtracting
/// 1.5·2²³ rounds to an integer in the default ties-to-even mode, exactly for |v| < 2²².
#[inline]
fn round_ties_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    if v.abs() < 4_194_304.0 { (v + MAGIC) - MAGIC } else { v.round_ties_even() }
}

/// One K-chunk of the layer input, shared by the tiles of that chunk.
pub struct Chunk {
    pub rows: usize,
    pub kt: usize,
    x: Vec<f32>,
    /// The DAC output of the first bound-management round, shared by all tiles of the chunk.
    xq0: Vec<f32>,
    /// Per-row input scale (max |x| under abs-max, else 1); 0 marks an all-zero row, whose output is 0.
    scale: Vec<f32>,
}

/// Per-call noise identity of one tile: the key, what the draws are for, and which tile.
#[derive(Debug, Clone, Copy)]
pub struct TileNoise {
    pub key: NoiseKey,
    /// Stream tag (upper bits) of this tile's output and MVM noise.
    pub tag: u64,
    pub tile: u64,
}

impl TileNoise {
    fn rng(&self, round: u64, row: u64) -> StdRng {
        self.key.rng(self.tag << 48 | self.tile << 8 | round, row)
    }
}

/// Where the optional MVM non-idealities get their inputs: per output, `Σ|w|x²`, `Σ|w||x|` and `Σ w·x·s`.
#[derive(Default)]
struct Aux {
    sq: Option<Vec<f32>>,
    current: Option<Vec<f32>>,
    shaped: Option<Vec<f32>>,
}

impl Io {
    /// Gathers columns `k0..k0+kt` of `x` ([rows, k]) and measures each row's input scale.
    pub fn chunk(&self, x: &[f32], rows: usize, k: usize, k0: usize, kt: usize) -> Chunk {
        let mut cx = vec![0.0f32; rows * kt];
        let mut scale = vec![0.0f32; rows];
        cx.par_chunks_mut(kt.max(1)).zip(scale.par_iter_mut()).enumerate().for_each(|(r, (row, s))| {
            row.copy_from_slice(&x[r * k + k0..r * k + k0 + kt]);
            let m = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            *s = if m == 0.0 {
                0.0
            } else if self.abs_max {
                m
            } else {
                1.0
            };
        });
        let mut xq0 = vec![0.0f32; rows * kt];
        xq0.par_chunks_mut(kt.max(1)).zip(cx.par_chunks(kt.max(1))).zip(&scale).for_each(|((q, row), &s)| {
            if s > 0.0 {
                self.dac(q, row, s, 1.0);
            }
        });
        Chunk { rows, kt, x: cx, xq0, scale }
    }

    /// The tile's output for every row of `chunk`, `[rows, nt]`, de-scaled by the input scale and the bound
    /// management reduction (still in units of the normalised weights `wc`, `[nt, kt]`).
    /// With `pass` (`[rows, nt]`), also marks each output that left the ADC clipped at the bound with 0
    /// (hardware-aware training gives those no gradient).
    pub fn tile(
        &self,
        chunk: &Chunk,
        wc: &Tensor,
        wc_abs: Option<&Tensor>,
        nt: usize,
        noise: TileNoise,
        mut pass: Option<&mut [f32]>,
    ) -> Result<Vec<f32>> {
        let kt = chunk.kt;
        let mut out = vec![0.0f32; chunk.rows * nt];
        let mut todo: Vec<(usize, f32)> = (0..chunk.rows).filter(|&r| chunk.scale[r] > 0.0).map(|r| (r, 1.0)).collect();
        let mut round = 0u64;
        while !todo.is_empty() {
            let xq = if round == 0 && todo.len() == chunk.rows {
                std::borrow::Cow::Borrowed(&chunk.xq0)
            } else {
                let mut xq = vec![0.0f32; todo.len() * kt];
                xq.par_chunks_mut(kt).zip(todo.par_iter()).for_each(|(q, &(r, red))| {
                    if round == 0 {
                        q.copy_from_slice(&chunk.xq0[r * kt..(r + 1) * kt]);
                    } else {
                        self.dac(q, &chunk.x[r * kt..(r + 1) * kt], chunk.scale[r], red);
                    }
                });
                std::borrow::Cow::Owned(xq)
            };
            let aux = self.aux(&xq, todo.len(), kt, wc, wc_abs)?;
            let mut y = gemm(&xq, todo.len(), kt, wc)?;
            let saturated: Vec<bool> = y
                .par_chunks_mut(nt)
                .enumerate()
                .map(|(i, yr)| {
                    let mut rng = noise.rng(round, todo[i].0 as u64);
                    self.finalize(yr, &aux, i * nt, kt, &mut rng)
                })
                .collect();
            let mut next = Vec::new();
            for (i, &(r, red)) in todo.iter().enumerate() {
                if self.iterative_bm && saturated[i] && red < MAX_BM_REDUCTION {
                    next.push((r, red * 2.0));
                    continue;
                }
                // (v·red)·scale, saturated: inputs near f32::MAX must not turn into ∞ (and later 0·∞).
                for (o, &v) in out[r * nt..(r + 1) * nt].iter_mut().zip(&y[i * nt..(i + 1) * nt]) {
                    *o = (v * red * chunk.scale[r]).clamp(f32::MIN, f32::MAX);
                }
                if let Some(pass) = pass.as_deref_mut() {
                    for (p, &v) in pass[r * nt..(r + 1) * nt].iter_mut().zip(&y[i * nt..(i + 1) * nt]) {
                        *p = if v.abs() >= self.out_bound { 0.0 } else { 1.0 };
                    }
                }
            }
            todo = next;
            round += 1;
        }
        Ok(out)
    }

    /// GDC readout: mean |output| of the tile `wc` (`[nt, kt]`) for the identity input (one one-hot row per
    /// input), through the same noisy forward as [`Io::tile`]. The MVM of a one-hot row is a column of `wc`,
    /// so no GEMM is needed.
    pub fn identity_mean_abs(&self, wc: &[f32], nt: usize, kt: usize, noise: TileNoise) -> f64 {
        if nt == 0 || kt == 0 {
            return 0.0;
        }
        let sums: Vec<f64> = (0..kt)
            .into_par_iter()
            .map(|k| {
                let mut red = 1.0f32;
                let mut round = 0;
                loop {
                    let xk = quantize(1.0 / red, self.inp_step, 1.0);
                    let col = |f: &dyn Fn(f32) -> f32| -> Vec<f32> { (0..nt).map(|i| f(wc[i * kt + k])).collect() };
                    let mut y = col(&|w| w * xk);
                    let shape = 1.0 - (1.0 - k as f32 / kt as f32).powi(2);
                    let aux = Aux {
                        sq: (self.w_noise > 0.0).then(|| col(&|w| w.abs() * xk * xk)),
                        current: (self.ir_drop > 0.0).then(|| col(&|w| w.abs() * xk.abs())),
                        shaped: (self.ir_drop > 0.0).then(|| col(&|w| w * xk * shape)),
                    };
                    let mut rng = noise.rng(round, k as u64);
                    let saturated = self.finalize(&mut y, &aux, 0, kt, &mut rng);
                    if !(self.iterative_bm && saturated && red < MAX_BM_REDUCTION) {
                        return y.iter().map(|v| (v.abs() * red) as f64).sum::<f64>();
                    }
                    red *= 2.0;
                    round += 1;
                }
            })
            .collect();
        // Summed in a fixed order so the readout does not depend on the thread count.
        sums.iter().sum::<f64>() / (nt * kt) as f64
    }

    /// DAC of one row at input scale `s` (max |x|) and bound-management reduction `red`. Divisions, not a
    /// reciprocal or a product of scales, so neither a subnormal nor a huge scale can overflow.
    fn dac(&self, q: &mut [f32], x: &[f32], s: f32, red: f32) {
        for (q, &v) in q.iter_mut().zip(x) {
            *q = quantize(v / s / red, self.inp_step, 1.0);
        }
    }

    /// The auxiliary MVMs the enabled non-idealities need.
    fn aux(&self, xq: &[f32], rows: usize, kt: usize, wc: &Tensor, wc_abs: Option<&Tensor>) -> Result<Aux> {
        let mut aux = Aux::default();
        if let Some(wa) = wc_abs.filter(|_| self.w_noise > 0.0) {
            aux.sq = Some(gemm(&xq.iter().map(|v| v * v).collect::<Vec<_>>(), rows, kt, wa)?);
        }
        if let Some(wa) = wc_abs.filter(|_| self.ir_drop > 0.0) {
            aux.current = Some(gemm(&xq.iter().map(|v| v.abs()).collect::<Vec<_>>(), rows, kt, wa)?);
            // Inputs weighted by how far along the line they enter: 1 − (1 − j/n)².
            let shaped: Vec<f32> = xq
                .chunks(kt)
                .flat_map(|row| row.iter().enumerate().map(|(j, v)| v * (1.0 - (1.0 - j as f32 / kt as f32).powi(2))))
                .collect();
            aux.shaped = Some(gemm(&shaped, rows, kt, wc)?);
        }
        Ok(aux)
    }

    /// Non-idealities, output noise and the ADC on one output row (`at` = its offset in the aux vectors).
    /// Returns whether the ADC saturated (AIHWKIT's bound test: the quantised value beyond the bound).
    fn finalize(&self, y: &mut [f32], aux: &Aux, at: usize, kt: usize, rng: &mut StdRng) -> bool {
        let nt = y.len();
        if let (Some(cur), Some(shaped)) = (&aux.current, &aux.shaped) {
            let a_scale = kt as f32 / IR_DROP_GW_DIV_GMAX;
            for i in 0..nt {
                let a = a_scale * cur[at + i];
                let c = a * (a * (0.05 * a - 0.2) + 0.5);
                y[i] -= self.ir_drop * c * shaped[at + i];
            }
        }
        if let Some(sq) = &aux.sq {
            for i in 0..nt {
                y[i] += self.w_noise * sq[at + i].max(0.0).sqrt() * rng.sample::<f32, _>(StandardNormal);
            }
        }
        let mut saturated = false;
        for v in y.iter_mut() {
            if self.out_noise > 0.0 {
                *v += self.out_noise * rng.sample::<f32, _>(StandardNormal);
            }
            let q = quantize(*v, self.out_step, f32::INFINITY);
            saturated |= q.abs() > self.out_bound;
            *v = q.clamp(-self.out_bound, self.out_bound);
        }
        saturated
    }
}

/// `a · wᵀ` for `a` `[rows, kt]` and `w` `[nt, kt]`, as a row-major `[rows, nt]` vector.
fn gemm(a: &[f32], rows: usize, kt: usize, w: &Tensor) -> Result<Vec<f32>> {
    let a = Tensor::from_slice(a, (rows, kt), &Device::Cpu)?;
    a.matmul(&w.t()?)?.flatten_all()?.to_vec1()
}
