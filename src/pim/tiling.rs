//! Tile geometry shared by the tile technologies (PIM_MODELS.md §2): K-chunks of `cs` inputs, N-tiles of
//! `cs` outputs, the input-scale groups ("token": one row; "block": up to `cs` consecutive rows of one
//! sequence), and the CPU building blocks on top of them: grouped input quantization, per-chunk GEMMs and
//! per-(row, N-tile) output passes. Edge tiles are zero-padded only conceptually: a padded input or weight
//! is zero, contributes nothing to a product or a max |·|, so it is never materialised.

use std::ops::Range;

use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

use super::quant::{Format, max_abs};

/// Granularity of the input (DAC) scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputScale {
    /// One scale per token row per K-chunk.
    Token,
    /// One scale per block of up to `cs` rows of one sequence per K-chunk (NewComputeBench).
    Block,
}

impl InputScale {
    pub fn from_param(s: &str) -> anyhow::Result<InputScale> {
        match s {
            "token" => Ok(InputScale::Token),
            "block" => Ok(InputScale::Block),
            other => anyhow::bail!("unknown input-scale {other:?} (expected \"token\" or \"block\")"),
        }
    }
}

/// The tiling of one `[rows, K]·[N, K]ᵀ` product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub rows: usize,
    pub k: usize,
    pub n: usize,
    pub cs: usize,
    /// Rows per sequence (block boundaries); 0 or anything ≥ rows means one sequence.
    pub rows_per_sequence: usize,
}

impl Geometry {
    pub fn new(rows: usize, k: usize, n: usize, cs: usize, rows_per_sequence: usize) -> Geometry {
        let rows_per_sequence = if rows_per_sequence == 0 { rows } else { rows_per_sequence.min(rows.max(1)) };
        Geometry { rows, k, n, cs: cs.max(1), rows_per_sequence }
    }

    pub fn k_chunks(&self) -> usize {
        self.k.div_ceil(self.cs)
    }

    /// Inputs of K-chunk `c` (the last one may be shorter: its padding is implicit).
    pub fn chunk(&self, c: usize) -> Range<usize> {
        c * self.cs..((c + 1) * self.cs).min(self.k)
    }

    pub fn n_tiles(&self) -> usize {
        self.n.div_ceil(self.cs)
    }

    /// Outputs of N-tile `t`.
    pub fn n_tile(&self, t: usize) -> Range<usize> {
        t * self.cs..((t + 1) * self.cs).min(self.n)
    }

    /// The row groups that share one input scale, in order, covering all rows.
    pub fn row_groups(&self, mode: InputScale) -> Vec<Range<usize>> {
        match mode {
            InputScale::Token => (0..self.rows).map(|r| r..r + 1).collect(),
            InputScale::Block => {
                let mut groups = Vec::new();
                let mut seq = 0;
                while seq < self.rows {
                    let end = (seq + self.rows_per_sequence).min(self.rows);
                    let mut b = seq;
                    while b < end {
                        groups.push(b..(b + self.cs).min(end));
                        b += self.cs;
                    }
                    seq = end;
                }
                groups
            }
        }
    }
}

/// Inputs after the DAC: values in place, and the norm factor of every (group, chunk) (`x_max` for the
/// NCB DAC, 1 otherwise).
#[derive(Debug, Clone)]
pub struct QuantizedInput {
    pub data: Vec<f32>,
    /// `[groups × k_chunks]`.
    pub norms: Vec<f32>,
    /// The group of each row.
    pub row_group: Vec<usize>,
}

impl QuantizedInput {
    pub fn norm(&self, row: usize, chunk: usize, k_chunks: usize) -> f32 {
        self.norms[self.row_group[row] * k_chunks + chunk]
    }
}

/// Quantizes `x` (`[rows, K]`, row-major) with one scale per (row group, K-chunk), in one parallel pass.
pub fn quantize_inputs(mut x: Vec<f32>, geom: &Geometry, mode: InputScale, format: Format) -> QuantizedInput {
    let groups = geom.row_groups(mode);
    let (k, nc) = (geom.k, geom.k_chunks());
    let mut row_group = vec![0; geom.rows];
    for (g, range) in groups.iter().enumerate() {
        row_group[range.clone()].fill(g);
    }
    // Groups are consecutive row ranges: carve `x` into one mutable slice per group.
    let mut slices = Vec::with_capacity(groups.len());
    let mut rest = &mut x[..];
    for range in &groups {
        let (head, tail) = rest.split_at_mut(range.len() * k);
        slices.push(head);
        rest = tail;
    }
    let norms: Vec<f32> = slices
        .into_par_iter()
        .flat_map_iter(|block| {
            (0..nc)
                .map(|c| {
                    if format == Format::Exact {
                        return 1.0; // no scale to find
                    }
                    let cols = geom.chunk(c);
                    let m = block.chunks(k.max(1)).fold(0.0f32, |m, row| m.max(max_abs(&row[cols.clone()])));
                    let grid = format.grid(m);
                    for row in block.chunks_mut(k.max(1)) {
                        row[cols.clone()].iter_mut().for_each(|v| *v = grid.apply(*v));
                    }
                    format.norm(m)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    QuantizedInput { data: x, norms, row_group }
}

/// Largest |w| of the tile of rows `block` (one N-tile of a `[N, K]` weight) in K-chunk `cols`.
pub fn tile_max(block: &[f32], k: usize, cols: &Range<usize>) -> f32 {
    block.chunks(k.max(1)).fold(0.0f32, |m, row| m.max(max_abs(&row[cols.clone()])))
}

/// A CPU tensor of `data` with shape `[rows, cols]`.
pub fn cpu_tensor(data: Vec<f32>, rows: usize, cols: usize) -> Result<Tensor> {
    Tensor::from_vec(data, (rows, cols), &Device::Cpu)
}

/// `x·wᵀ` over all of K (`x`: `[rows, K]`, `w`: `[N, K]`), flattened row-major.
pub fn gemm_all(x: &Tensor, w: &Tensor) -> Result<Vec<f32>> {
    x.matmul(&w.t()?)?.flatten_all()?.to_vec1::<f32>()
}

/// The partial product of K-chunk `c` only: `x[:, chunk]·w[:, chunk]ᵀ`, `[rows, N]` flattened.
pub fn gemm_chunk(x: &Tensor, w: &Tensor, geom: &Geometry, c: usize) -> Result<Vec<f32>> {
    let cols = geom.chunk(c);
    let xc = x.narrow(1, cols.start, cols.len())?.contiguous()?;
    let wc = w.narrow(1, cols.start, cols.len())?.contiguous()?;
    gemm_all(&xc, &wc)
}

/// Runs `f(row, tile, outputs of that tile)` over every (row, N-tile) of a `[rows, N]` buffer, in
/// parallel over rows; `f` also gets the row's slice of `acc` at the same outputs to accumulate into.
pub fn par_row_tiles(partial: &mut [f32], acc: &mut [f32], geom: &Geometry, f: impl Fn(usize, usize, &mut [f32], &mut [f32]) + Sync) {
    let n = geom.n.max(1);
    partial.par_chunks_mut(n).zip(acc.par_chunks_mut(n)).enumerate().for_each(|(row, (p, a))| {
        for t in 0..geom.n_tiles() {
            let outs = geom.n_tile(t);
            f(row, t, &mut p[outs.clone()], &mut a[outs]);
        }
    });
}

/// A cheap, exact-change-sensitive fingerprint of a weight `[n, k]`: how a cache of programmed chips notices
/// that the master weight changed (an order-independent integer sum, so the parallel reduction is deterministic).
pub fn weight_fingerprint(w: &[f32], n: usize, k: usize) -> u64 {
    finish_fingerprint(fingerprint_sum(w), n, k)
}

/// The order-independent part of [`weight_fingerprint`]: Σ mix((bits << 32) ^ index), wrapping.
pub fn fingerprint_sum(w: &[f32]) -> u64 {
    w.par_iter().enumerate().map(|(i, v)| mix64((v.to_bits() as u64) << 32 ^ i as u64)).reduce(|| 0, u64::wrapping_add)
}

/// The last step of [`weight_fingerprint`] from [`fingerprint_sum`] (which a GPU computes where the weight is).
pub fn finish_fingerprint(sum: u64, n: usize, k: usize) -> u64 {
    mix64(sum ^ mix64((n as u64) << 32 ^ k as u64))
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_and_tiles() {
        let g = Geometry::new(5, 77, 45, 32, 0);
        assert_eq!((g.k_chunks(), g.n_tiles()), (3, 2));
        assert_eq!(g.chunk(2), 64..77);
        assert_eq!(g.n_tile(1), 32..45);
        assert_eq!(g.rows_per_sequence, 5);
    }

    #[test]
    fn groups_respect_sequences() {
        let g = Geometry::new(10, 8, 8, 4, 5);
        assert_eq!(g.row_groups(InputScale::Block), vec![0..4, 4..5, 5..9, 9..10]);
        assert_eq!(g.row_groups(InputScale::Token).len(), 10);
        let one = Geometry::new(6, 8, 8, 4, 6);
        assert_eq!(one.row_groups(InputScale::Block), vec![0..4, 4..6]);
    }

    #[test]
    fn block_scale_is_shared() {
        // Two rows of one block: row 1's small values share row 0's large max, so they flush to 0 in e4m3.
        let g = Geometry::new(2, 4, 1, 4, 2);
        let x = vec![8.0, 1.0, 0.0, 0.0, 0.1, 0.2, 0.0, 0.0];
        let fmt = Format::Bfp { exponent_bits: 4, mantissa_bits: 3 };
        let block = quantize_inputs(x.clone(), &g, InputScale::Block, fmt);
        assert_eq!(block.data[4..6], [0.0, 0.0]);
        let token = quantize_inputs(x, &g, InputScale::Token, fmt);
        assert_eq!(token.data[4..6], [0.09375, 0.1875]);
        assert_eq!(token.row_group, [0, 1]);
    }
}
