//! Attention heads in and out of the batched-matmul layout: `[batch, seq, heads·head_dim]` ↔
//! `[batch, heads, seq, head_dim]`, optionally times a scale (the query's 1/√head_dim), as one copy.
//!
//! candle writes these as reshape + transpose + copy, and its strided copy finds every element's source
//! with a division per dimension: on an H100 the four per layer took about 44 µs each at 4096 × 768,
//! several times their memory time. Here a row of the `[batch, seq, hidden]` side is one task (a CUDA block
//! on a GPU), its heads contiguous slices of `head_dim`.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::{f32_slice, fusable, output};

/// `[batch, seq, heads·head_dim]` → `[batch, heads, seq, head_dim]`, times `scale`.
pub fn split_heads(x: &Tensor, heads: usize, scale: f32) -> Result<Tensor> {
    let (batch, seq, hidden) = x.dims3()?;
    if heads == 0 || hidden % heads != 0 {
        bail!("split-heads: hidden size {hidden} is not a multiple of {heads} heads")
    }
    if !fusable(&[x]) {
        let split = x.reshape((batch, seq, heads, hidden / heads))?.transpose(1, 2)?.contiguous()?;
        return if scale == 1.0 { Ok(split) } else { split * scale as f64 };
    }
    x.contiguous()?.apply_op1(Heads { direction: Direction::Split { heads }, scale })
}

/// `[batch, heads, seq, head_dim]` → `[batch, seq, heads·head_dim]`.
pub fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (batch, heads, seq, head_dim) = x.dims4()?;
    if !fusable(&[x]) {
        return x.transpose(1, 2)?.reshape((batch, seq, heads * head_dim));
    }
    x.contiguous()?.apply_op1(Heads { direction: Direction::Merge, scale: 1.0 })
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Split { heads: usize },
    Merge,
}

/// The copy both ways; the backward of one direction is the other with the same scale.
struct Heads {
    direction: Direction,
    scale: f32,
}

/// The `[batch, seq, heads, head_dim]` of either side's layout, and the output shape.
fn geometry(op: &str, direction: Direction, layout: &Layout) -> Result<([usize; 4], Shape)> {
    match (direction, layout.dims()) {
        (Direction::Split { heads }, &[b, s, hidden]) if heads > 0 && hidden % heads == 0 => {
            let d = hidden / heads;
            Ok(([b, s, heads, d], Shape::from((b, heads, s, d))))
        }
        (Direction::Merge, &[b, h, s, d]) => Ok(([b, s, h, d], Shape::from((b, s, h * d)))),
        (_, dims) => bail!("{op}: cannot take {direction:?} of a tensor {dims:?}"),
    }
}

impl CustomOp1 for Heads {
    fn name(&self) -> &'static str {
        "fused-attention-heads"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let ([_, seq, heads, d], shape) = geometry(self.name(), self.direction, layout)?;
        let hidden = heads * d;
        let mut out = vec![0f32; x.len()];
        let scale = self.scale;
        let copy = |dst: &mut [f32], src: &[f32]| dst.iter_mut().zip(src).for_each(|(o, &v)| *o = v * scale);
        if hidden > 0 && seq > 0 {
            match self.direction {
                // One task per (batch, head) block of the output: seq slices of d, one from each input row.
                Direction::Split { .. } => out.par_chunks_mut(seq * d).enumerate().for_each(|(bj, block)| {
                    let (b, j) = (bj / heads, bj % heads);
                    for (s, dst) in block.chunks_exact_mut(d).enumerate() {
                        copy(dst, &x[(b * seq + s) * hidden + j * d..][..d]);
                    }
                }),
                // One task per output row (batch, position): a slice of d from each head's block.
                Direction::Merge => out.par_chunks_mut(hidden).enumerate().for_each(|(row, dst)| {
                    let (b, s) = (row / seq, row % seq);
                    for (j, dst) in dst.chunks_exact_mut(d).enumerate() {
                        copy(dst, &x[((b * heads + j) * seq + s) * d..][..d]);
                    }
                }),
            }
        }
        output(out, &shape)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, storage: &candle_core::CudaStorage, layout: &Layout) -> Result<(candle_core::CudaStorage, Shape)> {
        let ([b, s, h, d], shape) = geometry(self.name(), self.direction, layout)?;
        let merge = matches!(self.direction, Direction::Merge);
        Ok((super::cuda::heads((storage, layout), [b, s, h, d], self.scale, merge)?, shape))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let direction = match self.direction {
            Direction::Split { .. } => Direction::Merge,
            // x is the merge's `[batch, heads, seq, head_dim]` input.
            Direction::Merge => Direction::Split { heads: x.dim(1)? },
        };
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&Heads { direction, scale: self.scale })?))
    }
}
