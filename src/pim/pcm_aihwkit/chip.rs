//! A programmed PCM chip for one layer: the tiling (§2), the weight mapping onto differential conductance
//! pairs, the once-per-chip programming noise and drift exponents, the per-read conductances at a drift time,
//! and global drift compensation (GDC) with its cached readouts.
//!
//! Device state is kept tile by tile (`[nt, kt]` row-major per tile, tiles in order), so one tile's weights are
//! a contiguous slice a GEMM can use as is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::io::{Io, TileNoise};
use super::physics::Physics;
use crate::pim::NoiseKey;

/// Elements per independently seeded block of a fused device pass (fixed, so draws do not depend on threads).
const BLOCK: usize = 1 << 13;
/// Stream tags (upper bits of the stream number) of the chip's draws.
pub const PROGRAM: u64 = 0xA1;
pub const READ: u64 = 0xA2;
const GDC_READ: u64 = 0xA3;
const GDC_OUT: u64 = 0xA4;

/// One tile: outputs `n0..n0+nt`, inputs `k0..k0+kt` of chunk `ki`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tile {
    pub n0: usize,
    pub nt: usize,
    pub k0: usize,
    pub kt: usize,
    pub ki: usize,
    /// Offset of the tile's devices in the chip arrays.
    pub off: usize,
    /// Offset of the tile's rows in the per-row arrays.
    pub row_off: usize,
}

/// The layer `[n, k]` cut into tiles of at most `cs × cs` (edge tiles are smaller, never padded).
#[derive(Debug, Clone, PartialEq)]
pub struct Tiling {
    pub n: usize,
    pub k: usize,
    pub tiles: Vec<Tile>,
    /// `(k0, kt)` of each input chunk.
    pub chunks: Vec<(usize, usize)>,
}

impl Tiling {
    /// `cs = 0` maps the whole layer onto one tile.
    pub fn new(n: usize, k: usize, cs: usize) -> Tiling {
        let spans = |len: usize| -> Vec<(usize, usize)> {
            let c = if cs == 0 { len.max(1) } else { cs };
            (0..len).step_by(c).map(|s| (s, c.min(len - s))).collect()
        };
        let chunks = spans(k);
        let (mut tiles, mut off, mut row_off) = (Vec::new(), 0, 0);
        for (n0, nt) in spans(n) {
            for (ki, &(k0, kt)) in chunks.iter().enumerate() {
                tiles.push(Tile { n0, nt, k0, kt, ki, off, row_off });
                off += nt * kt;
                row_off += nt;
            }
        }
        Tiling { n, k, tiles, chunks }
    }

    pub fn devices(&self) -> usize {
        self.tiles.last().map_or(0, |t| t.off + t.nt * t.kt)
    }

    pub fn tile_rows(&self) -> usize {
        self.tiles.last().map_or(0, |t| t.row_off + t.nt)
    }

    /// The output width of a row tile (the last may be narrower).
    #[cfg(any(feature = "cuda", test))]
    pub fn tile_width(&self) -> usize {
        self.tiles.first().map_or(1, |t| t.nt)
    }

    /// Per-device values in tile order rearranged chunk-major: chunk `ki` becomes the `[n, kt]` matrix at
    /// offset `n·k0`, so one GEMM multiplies an input chunk with all of its tiles.
    #[cfg(any(feature = "cuda", test))]
    pub fn chunk_major(&self, tile_order: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; tile_order.len()];
        for t in &self.tiles {
            for a in 0..t.nt {
                let (src, dst) = (t.off + a * t.kt, self.n * t.k0 + (t.n0 + a) * t.kt);
                out[dst..dst + t.kt].copy_from_slice(&tile_order[src..src + t.kt]);
            }
        }
        out
    }
}

/// The programmed state of one differential pair.
#[derive(Debug, Clone, Copy, Default)]
struct Pair {
    g_pos: f32,
    g_neg: f32,
    nu_pos: f32,
    nu_neg: f32,
}

/// One layer's programmed chip.
#[derive(Debug)]
pub struct Chip {
    pub tiling: Tiling,
    /// The key the chip was programmed from, and the weight it was programmed with.
    pub key: NoiseKey,
    pub fingerprint: u64,
    /// Digital factor of each tile row: the weight that maps to a normalised ±1 (row max, or tile max).
    pub row_scale: Vec<f32>,
    pairs: Vec<Pair>,
    /// GDC readout right after programming, per tile (empty without GDC).
    beta0: Vec<f64>,
    /// GDC factors per drift time (f64 bits).
    alphas: Mutex<HashMap<u64, Arc<Vec<f32>>>>,
}

impl Chip {
    /// Maps `w` (`[n, k]` row-major) onto conductance pairs and programs them with the draws of `key`.
    /// `per_row`: weight scaling "row" (each tile row normalised to max 1), else "tile".
    /// With `gdc`, also measures the t = 0 readout β0 that later calls compensate towards.
    pub fn program(w: &[f32], tiling: Tiling, per_row: bool, phys: &Physics, io: &Io, key: NoiseKey, gdc: bool) -> Chip {
        let fingerprint = crate::pim::tiling::weight_fingerprint(w, tiling.n, tiling.k);
        // Normalised weights, tile-contiguous, and the digital scale of each tile row.
        let mut wn = vec![0.0f32; tiling.devices()];
        let mut row_scale = vec![0.0f32; tiling.tile_rows()];
        let mut views: Vec<(&Tile, &mut [f32], &mut [f32])> = Vec::with_capacity(tiling.tiles.len());
        let (mut wn_rest, mut rs_rest) = (&mut wn[..], &mut row_scale[..]);
        for t in &tiling.tiles {
            let (a, b) = wn_rest.split_at_mut(t.nt * t.kt);
            let (c, d) = rs_rest.split_at_mut(t.nt);
            views.push((t, a, c));
            (wn_rest, rs_rest) = (b, d);
        }
        views.into_par_iter().for_each(|(t, dst, scales)| {
            let row = |i: usize| &w[(t.n0 + i) * tiling.k + t.k0..(t.n0 + i) * tiling.k + t.k0 + t.kt];
            let max_abs = |s: &[f32]| s.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let tile_max = (0..t.nt).map(|i| max_abs(row(i))).fold(0.0f32, f32::max);
            for i in 0..t.nt {
                let s = if per_row { max_abs(row(i)) } else { tile_max };
                scales[i] = s;
                // A zero row (or tile) stays zero: its digital scale of 0 drops its output anyway.
                if s > 0.0 {
                    for (d, &v) in dst[i * t.kt..(i + 1) * t.kt].iter_mut().zip(row(i)) {
                        *d = (v / s).clamp(-1.0, 1.0);
                    }
                }
            }
        });
        // G± = g_max·max(±w, 0); programming noise, then ν from the target conductance. One seeded RNG per block.
        let mut pairs = vec![Pair::default(); wn.len()];
        pairs.par_chunks_mut(BLOCK).zip(wn.par_chunks(BLOCK)).enumerate().for_each(|(b, (ps, ws))| {
            let mut rng = key.rng(PROGRAM << 48, b as u64);
            for (p, &v) in ps.iter_mut().zip(ws) {
                let (gp, gn) = (phys.g_max * v.max(0.0), phys.g_max * (-v).max(0.0));
                let xi: [f32; 4] = std::array::from_fn(|_| rng.sample(StandardNormal));
                *p = Pair {
                    g_pos: phys.program(gp, xi[0]),
                    g_neg: phys.program(gn, xi[1]),
                    nu_pos: phys.sample_nu(gp, xi[2]),
                    nu_neg: phys.sample_nu(gn, xi[3]),
                };
            }
        });
        let mut chip = Chip { tiling, key, fingerprint, row_scale, pairs, beta0: Vec::new(), alphas: Mutex::new(HashMap::new()) };
        if gdc {
            chip.beta0 = chip.readout(0.0, phys, io);
        }
        chip
    }

    /// The normalised weights `(G+ − G−)/g_max` a read at drift time `t` sees, tile-contiguous, with fresh
    /// read noise from stream `tag` of `key`.
    pub fn read(&self, t: f64, phys: &Physics, key: NoiseKey, tag: u64) -> Vec<f32> {
        let tf = phys.at(t);
        let noisy = tf.read_sigma_factor > 0.0;
        let inv_g = 1.0 / phys.g_max;
        let mut wc = vec![0.0f32; self.pairs.len()];
        wc.par_chunks_mut(BLOCK).zip(self.pairs.par_chunks(BLOCK)).enumerate().for_each(|(b, (ws, ps))| {
            let mut rng = noisy.then(|| key.rng(tag << 48, b as u64));
            for (w, p) in ws.iter_mut().zip(ps) {
                let mut xi = || rng.as_mut().map_or(0.0, |r| r.sample::<f32, _>(StandardNormal));
                let (xp, xn) = (xi(), xi());
                *w = (phys.read(p.g_pos, p.nu_pos, &tf, xp) - phys.read(p.g_neg, p.nu_neg, &tf, xn)) * inv_g;
            }
        });
        wc
    }

    /// The programmed state as four planes `[g+ | g− | ν+ | ν−]`, tile-contiguous (how a GPU keeps the chip).
    #[cfg(feature = "cuda")]
    pub fn planes(&self) -> Vec<f32> {
        let fields: [fn(&Pair) -> f32; 4] = [|p| p.g_pos, |p| p.g_neg, |p| p.nu_pos, |p| p.nu_neg];
        fields.iter().flat_map(|field| self.pairs.iter().map(field)).collect()
    }

    /// GDC readouts β per tile at drift time `t`, from the chip's fixed readout draws.
    fn readout(&self, t: f64, phys: &Physics, io: &Io) -> Vec<f64> {
        let wc = self.read(t, phys, self.key, GDC_READ);
        self.tiling
            .tiles
            .iter()
            .enumerate()
            .map(|(i, tile)| {
                let noise = TileNoise { key: self.key, tag: GDC_OUT, tile: i as u64 };
                io.identity_mean_abs(&wc[tile.off..tile.off + tile.nt * tile.kt], tile.nt, tile.kt, noise)
            })
            .collect()
    }

    /// GDC factors α = β0/β(t) per tile, computed once per drift time. 1 where a readout is 0 (a dead tile).
    pub fn gdc_alpha(&self, t: f64, phys: &Physics, io: &Io) -> Arc<Vec<f32>> {
        let bits = t.to_bits();
        if let Some(a) = self.alphas.lock().unwrap_or_else(|e| e.into_inner()).get(&bits) {
            return a.clone();
        }
        let beta = self.readout(t, phys, io);
        let alpha: Vec<f32> =
            self.beta0.iter().zip(&beta).map(|(&b0, &b)| if b > 0.0 && b0 > 0.0 { (b0 / b) as f32 } else { 1.0 }).collect();
        let alpha = Arc::new(alpha);
        self.alphas.lock().unwrap_or_else(|e| e.into_inner()).insert(bits, alpha.clone());
        alpha
    }
}
