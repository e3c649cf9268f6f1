//! Fused, differentiable CPU kernels for the encoder's element-wise work: LayerNorm, softmax (plain and
//! with the attention mask added), GELU, the linear layers' bias add, and the attention heads' layout
//! change ([`heads`]).
//!
//! candle 0.11's fused `candle_nn::LayerNorm` and `ops::softmax_last_dim` have no backward (gradients
//! silently stop there), so [`super::layers`] composes them from basic ops: four to eight passes over memory
//! each, every pass allocating a new tensor, and the same again in the backward. Here each is one candle
//! custom op whose forward makes one pass over memory per row (rayon over blocks of rows; the row itself
//! stays in L1 between its sub-passes) and whose `bwd` computes the input gradient with another custom op
//! of one pass. LayerNorm's backward recomputes each row's mean and variance instead of storing them: the
//! row is read anyway and stays in L1.
//!
//! f32 tensors on the CPU, and in a `cuda` build on a GPU (fused/kernels.cu: a warp per row), take these
//! paths; the public functions fall back to the composed ops for other dtypes.
//! Inner loops run over equal-length slices with eight independent accumulators, so that they vectorise
//! without fast-math; `exp` and `erfc` are polynomial approximations (a few ulp) for the same reason.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Device, InplaceOp1, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use self::math::{dot, exp, gelu, gelu_grad, max, sum, sum_sq_dev};
use super::layers::composed;

#[cfg(feature = "cuda")]
mod cuda;
mod embedding;
mod heads;
mod math;

pub use embedding::embedding;
pub use heads::{merge_heads, split_heads};

/// Layer normalisation over the last dimension, `(x − mean) / sqrt(var + eps) · weight + bias`, with
/// gradients for `x`, `weight` and `bias`.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if !fusable(&[x, weight, bias]) {
        return composed::layer_norm(x, weight, bias, eps);
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNorm { eps: eps as f32 })
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !fusable(&[x]) {
        return composed::softmax_last_dim(x);
    }
    x.contiguous()?.apply_op1(Softmax)
}

/// `softmax(scores + mask_bias)` over the keys, for `scores` `[batch, heads, queries, keys]` and the
/// additive mask `mask_bias` `[batch, 1, 1, keys]`; saves the pass and the tensor of the broadcast add.
/// The mask gets no gradient (it is a constant of the inputs).
pub fn attention_softmax(scores: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
    let (batch, _, _, keys) = scores.dims4()?;
    if !fusable(&[scores, mask_bias]) || mask_bias.dims() != [batch, 1, 1, keys] {
        return composed::softmax_last_dim(&scores.broadcast_add(mask_bias)?);
    }
    scores.contiguous()?.apply_op2(&mask_bias.contiguous()?, MaskedSoftmax)
}

/// GELU with the exact erf form, `x · Φ(x)`.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if !fusable(&[x]) {
        return x.gelu_erf();
    }
    x.contiguous()?.apply_op1(Gelu)
}

/// `y + bias` for `y` `[.., n]` and `bias` `[n]`, with gradients for both: a linear layer's digital bias.
/// candle's `broadcast_add` walks a broadcast operand with a strided index per element: on an H100, 272 µs
/// for roberta-base's 4096 × 3072 intermediate add (Nsight Compute), about 8× its memory time. This op
/// made a roberta-base evaluation forward 17 % shorter there.
pub fn add_bias(y: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if !fusable(&[y, bias]) || bias.rank() != 1 || y.dims().last() != Some(&bias.elem_count()) {
        return y.broadcast_add(bias);
    }
    y.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)
}

/// A dropout mask for `shape` on `device`: each element 0 with probability `p`, else `1/(1−p)`, from
/// Philox4x32-10 keyed by `seed` (four uniforms per counter). The mask is made where it is used, so a GPU
/// step moves no mask over the bus ([`super::layers::DropoutRng`] uses it on every device, so the CPU and
/// the GPU drop the same units).
pub fn dropout_mask(shape: &Shape, p: f32, seed: u64, device: &Device) -> Result<Tensor> {
    if !(0.0..1.0).contains(&p) {
        bail!("dropout probability has to be in [0, 1), got {p}")
    }
    let mask = Tensor::zeros(shape, DType::F32, device)?;
    mask.inplace_op1(&DropoutMask { p, scale: 1.0 / (1.0 - p), key: [seed as u32, (seed >> 32) as u32] })?;
    Ok(mask)
}

fn fusable(tensors: &[&Tensor]) -> bool {
    let fused_device = |t: &Tensor| t.device().is_cpu() || (cfg!(feature = "cuda") && t.device().is_cuda());
    tensors.iter().all(|t| fused_device(t) && t.dtype() == DType::F32)
}

/// The contiguous f32 elements of a custom op's argument.
fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else { bail!("{op}: expected an f32 argument") };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => bail!("{op}: the argument has to be contiguous"),
    }
}

/// The two operands of an element-wise backward op (`(y, dy)`, `(x, dy)`), which must have equal lengths.
fn same_length_pair<'a>(s1: &'a CpuStorage, l1: &Layout, s2: &'a CpuStorage, l2: &Layout, op: &str) -> Result<(&'a [f32], &'a [f32])> {
    same_length(op, l1, l2)?;
    Ok((f32_slice(s1, l1, op)?, f32_slice(s2, l2, op)?))
}

// Argument checks on layouts, shared by the CPU and CUDA sides of each op.

/// The hidden size `h` of LayerNorm's `(x, weight, bias)`.
fn layer_norm_width(op: &str, x: &Layout, weight: &Layout, bias: &Layout) -> Result<usize> {
    let h = weight.shape().elem_count();
    if h == 0 || bias.shape().elem_count() != h || x.dims().last() != Some(&h) {
        bail!("{op}: x {:?}, weight {:?}, bias {:?} do not match", x.dims(), weight.dims(), bias.dims())
    }
    Ok(h)
}

/// The `(rows, h)` of LayerNorm's backward arguments `(x, weight, dy)`.
fn layer_norm_grad_rows(op: &str, x: &Layout, weight: &Layout, dy: &Layout) -> Result<(usize, usize)> {
    let (len, h) = (x.shape().elem_count(), weight.shape().elem_count());
    if h == 0 || len != dy.shape().elem_count() || len % h != 0 {
        bail!("{op}: x {:?}, weight [{h}], dy {:?} do not match", x.dims(), dy.dims())
    }
    Ok((len / h, h))
}

/// `(batch, heads, queries, keys)` of the attention scores, with a mask of `batch · keys` elements.
fn attention_dims(op: &str, scores: &Layout, mask: &Layout) -> Result<(usize, usize, usize, usize)> {
    let &[batch, heads, queries, keys] = scores.dims() else { bail!("{op}: scores must be 4-D, got {:?}", scores.dims()) };
    if mask.shape().elem_count() != batch * keys {
        bail!("{op}: mask {:?} does not fit scores {:?}", mask.dims(), scores.dims())
    }
    Ok((batch, heads, queries, keys))
}

/// The width `n` of [`add_bias`]'s `(y [.., n], bias [n])`.
fn bias_width(op: &str, y: &Layout, bias: &Layout) -> Result<usize> {
    let n = bias.shape().elem_count();
    if bias.dims().len() != 1 || y.dims().last() != Some(&n) {
        bail!("{op}: y {:?} and bias {:?} do not match", y.dims(), bias.dims())
    }
    Ok(n)
}

/// The two operands of an element-wise backward op have equal lengths.
fn same_length(op: &str, l1: &Layout, l2: &Layout) -> Result<()> {
    if l1.shape().elem_count() != l2.shape().elem_count() {
        bail!("{op}: operands {:?} and {:?} differ", l1.dims(), l2.dims())
    }
    Ok(())
}

fn output(values: Vec<f32>, shape: &Shape) -> Result<(CpuStorage, Shape)> {
    Ok((CpuStorage::F32(values), shape.clone()))
}

/// Rows per rayon task: enough work per task that scheduling stays negligible, and a few tasks per
/// thread so that the threads finish together.
fn rows_per_task(rows: usize, row_len: usize) -> usize {
    const MIN_ELEMENTS_PER_TASK: usize = 16 * 1024;
    let by_size = MIN_ELEMENTS_PER_TASK.div_ceil(row_len.max(1));
    let by_balance = rows.div_ceil(4 * rayon::current_num_threads());
    by_size.max(by_balance).max(1)
}

/// Elements per rayon task of an element-wise op.
const ELEMENTWISE_CHUNK: usize = 32 * 1024;

// ---------------------------------------------------------------------------------------------------
// LayerNorm.

struct LayerNorm {
    eps: f32,
}

/// Mean and `1/sqrt(var + eps)` of one row (two-pass variance, as the composed version).
#[inline(always)]
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = sum(x) / n;
    let var = sum_sq_dev(x, mean) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let (weight, bias) = (f32_slice(s2, l2, self.name())?, f32_slice(s3, l3, self.name())?);
        let h = layer_norm_width(self.name(), l1, l2, l3)?;
        let mut y = vec![0f32; x.len()];
        let task = rows_per_task(x.len() / h, h) * h;
        y.par_chunks_mut(task).zip(x.par_chunks(task)).for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(h).zip(x.chunks_exact(h)) {
                let (mean, rstd) = row_stats(x, self.eps);
                for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(weight).zip(bias) {
                    *y = (x - mean) * rstd * w + b;
                }
            }
        });
        output(y, l1.shape())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        layer_norm_width(self.name(), l1, l2, l3)?;
        Ok((cuda::layer_norm((s1, l1), (s2, l2), (s3, l3), self.eps)?, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = weight.elem_count();
        let rows = x.elem_count() / h;
        // One op computes all three gradients: rows of dx, then dweight, then dbias.
        let packed = x.apply_op3_no_bwd(&weight.contiguous()?, &dy.contiguous()?, &LayerNormGrad { eps: self.eps })?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dweight = packed.narrow(0, rows, 1)?.reshape(weight.shape())?;
        let dbias = packed.narrow(0, rows + 1, 1)?.reshape(weight.shape())?;
        Ok((Some(dx), Some(dweight), Some(dbias)))
    }
}

/// Arguments `(x, weight, dy)`; result `[rows + 2, h]`: `dx` by rows, then `dweight` and `dbias`.
struct LayerNormGrad {
    eps: f32,
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "fused-layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, weight, dy) = (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?, f32_slice(s3, l3, self.name())?);
        let (rows, h) = layer_norm_grad_rows(self.name(), l1, l2, l3)?;
        let mut out = vec![0f32; (rows + 2) * h];
        let (dx, param_grads) = out.split_at_mut(rows * h);
        let task = rows_per_task(rows, h) * h;
        let n = h as f32;
        // Each task sums dweight and dbias over its rows; the partial sums are added afterwards.
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(task)
            .zip(x.par_chunks(task))
            .zip(dy.par_chunks(task))
            .map(|((dx, x), dy)| {
                let mut acc = vec![0f32; 2 * h];
                let (dw_acc, db_acc) = acc.split_at_mut(h);
                let mut g = vec![0f32; h];
                for ((dx, x), dy) in dx.chunks_exact_mut(h).zip(x.chunks_exact(h)).zip(dy.chunks_exact(h)) {
                    let (mean, rstd) = row_stats(x, self.eps);
                    for ((g, &dy), &w) in g.iter_mut().zip(dy).zip(weight) {
                        *g = dy * w;
                    }
                    // Σ g·x̂ = rstd · (Σ g·x − mean · Σ g).
                    let sum_g = sum(&g);
                    let sum_gx_hat = rstd * (dot(&g, x) - mean * sum_g);
                    let (mean_g, mean_gx_hat) = (sum_g / n, sum_gx_hat / n);
                    for (((((dx, &x), &g), &dy), dw), db) in
                        dx.iter_mut().zip(x).zip(&g).zip(dy).zip(dw_acc.iter_mut()).zip(db_acc.iter_mut())
                    {
                        let x_hat = (x - mean) * rstd;
                        *dx = rstd * (g - mean_g - x_hat * mean_gx_hat);
                        *dw += dy * x_hat;
                        *db += dy;
                    }
                }
                acc
            })
            .collect();
        for partial in partials {
            for (total, p) in param_grads.iter_mut().zip(&partial) {
                *total += p;
            }
        }
        output(out, &Shape::from((rows + 2, h)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (rows, h) = layer_norm_grad_rows(self.name(), l1, l2, l3)?;
        Ok((cuda::layer_norm_grad((s1, l1), (s2, l2), (s3, l3), self.eps)?, Shape::from((rows + 2, h))))
    }
}

// ---------------------------------------------------------------------------------------------------
// Softmax.

/// In place: `row ← softmax(row)`. A row of −∞ only (nothing to attend to) becomes zeros, not NaN.
#[inline(always)]
fn softmax_in_place(row: &mut [f32]) {
    let m = max(row);
    let m = if m == f32::NEG_INFINITY { 0.0 } else { m };
    for v in row.iter_mut() {
        *v = exp(*v - m);
    }
    let total = sum(row);
    let inv = if total > 0.0 { 1.0 / total } else { 0.0 };
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// `dx = y ⊙ (dy − Σ dy ⊙ y)` for one row.
#[inline(always)]
fn softmax_grad_row(dx: &mut [f32], y: &[f32], dy: &[f32]) {
    let s = dot(dy, y);
    for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
        *dx = y * (dy - s);
    }
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let n = layout.dims().last().copied().unwrap_or(1);
        let mut y = x.to_vec();
        if let Some(rows) = x.len().checked_div(n) {
            let task = rows_per_task(rows, n) * n;
            y.par_chunks_mut(task).for_each(|y| y.chunks_exact_mut(n).for_each(softmax_in_place));
        }
        output(y, layout.shape())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, storage: &candle_core::CudaStorage, layout: &Layout) -> Result<(candle_core::CudaStorage, Shape)> {
        let n = layout.dims().last().copied().unwrap_or(1);
        Ok((cuda::softmax((storage, layout), None, n, 1)?, layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&dy.contiguous()?, &SoftmaxGrad)?))
    }
}

struct MaskedSoftmax;

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "fused-attention-softmax"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (scores, mask) = (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?);
        let (_, heads, queries, keys) = attention_dims(self.name(), l1, l2)?;
        let mut y = vec![0f32; scores.len()];
        if keys > 0 {
            // One task per (batch, head) block of rows: all its rows share one mask row.
            let block = queries * keys;
            y.par_chunks_mut(block).zip(scores.par_chunks(block)).enumerate().for_each(|(i, (y, s))| {
                let mask = &mask[(i / heads) * keys..][..keys];
                for (y, s) in y.chunks_exact_mut(keys).zip(s.chunks_exact(keys)) {
                    for ((y, &s), &m) in y.iter_mut().zip(s).zip(mask) {
                        *y = s + m;
                    }
                    softmax_in_place(y);
                }
            });
        }
        output(y, l1.shape())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (_, heads, queries, keys) = attention_dims(self.name(), l1, l2)?;
        Ok((cuda::softmax((s1, l1), Some((s2, l2)), keys, heads * queries)?, l1.shape().clone()))
    }

    fn bwd(&self, _scores: &Tensor, _mask: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(y.apply_op2_no_bwd(&dy.contiguous()?, &SoftmaxGrad)?), None))
    }
}

/// Arguments `(y, bias)` of [`add_bias`].
struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "fused-add-bias"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, bias) = (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?);
        let n = bias_width(self.name(), l1, l2)?;
        let mut out = vec![0f32; y.len()];
        if let Some(rows) = y.len().checked_div(n) {
            let task = rows_per_task(rows, n) * n;
            out.par_chunks_mut(task).zip(y.par_chunks(task)).for_each(|(out, y)| {
                for (out, y) in out.chunks_exact_mut(n).zip(y.chunks_exact(n)) {
                    for ((o, &v), &b) in out.iter_mut().zip(y).zip(bias) {
                        *o = v + b;
                    }
                }
            });
        }
        output(out, l1.shape())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        bias_width(self.name(), l1, l2)?;
        Ok((cuda::add_bias((s1, l1), (s2, l2))?, l1.shape().clone()))
    }

    fn bwd(&self, y: &Tensor, bias: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let rows = y.elem_count() / bias.elem_count().max(1);
        let bias_grad = grad.reshape((rows, bias.elem_count()))?.sum(0)?;
        Ok((Some(grad.clone()), Some(bias_grad)))
    }
}

/// Arguments `(y, dy)` of a softmax over the last dimension; result `dx`.
struct SoftmaxGrad;

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "fused-softmax-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, dy) = same_length_pair(s1, l1, s2, l2, self.name())?;
        let n = l1.dims().last().copied().unwrap_or(1);
        let mut dx = vec![0f32; y.len()];
        if let Some(rows) = y.len().checked_div(n) {
            let task = rows_per_task(rows, n) * n;
            dx.par_chunks_mut(task).zip(y.par_chunks(task)).zip(dy.par_chunks(task)).for_each(|((dx, y), dy)| {
                for ((dx, y), dy) in dx.chunks_exact_mut(n).zip(y.chunks_exact(n)).zip(dy.chunks_exact(n)) {
                    softmax_grad_row(dx, y, dy);
                }
            });
        }
        output(dx, l1.shape())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        same_length(self.name(), l1, l2)?;
        let n = l1.dims().last().copied().unwrap_or(1);
        Ok((cuda::softmax_grad((s1, l1), (s2, l2), n)?, l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------------
// GELU.

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(ELEMENTWISE_CHUNK).zip(x.par_chunks(ELEMENTWISE_CHUNK)).for_each(|(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = gelu(x);
            }
        });
        output(y, layout.shape())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, storage: &candle_core::CudaStorage, layout: &Layout) -> Result<(candle_core::CudaStorage, Shape)> {
        Ok((cuda::gelu((storage, layout))?, layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&dy.contiguous()?, &GeluGrad)?))
    }
}

/// Arguments `(x, dy)`; result `dx = dy · gelu'(x)`.
struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "fused-gelu-erf-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, dy) = same_length_pair(s1, l1, s2, l2, self.name())?;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(ELEMENTWISE_CHUNK).zip(x.par_chunks(ELEMENTWISE_CHUNK)).zip(dy.par_chunks(ELEMENTWISE_CHUNK)).for_each(
            |((dx, x), dy)| {
                for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                    *dx = dy * gelu_grad(x);
                }
            },
        );
        output(dx, l1.shape())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        same_length(self.name(), l1, l2)?;
        Ok((cuda::gelu_grad((s1, l1), (s2, l2))?, l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------------
// Dropout masks.

/// Counter word of the dropout stream (kernels.cu `model_dropout_mask` uses the same).
const DROPOUT_STREAM: u32 = 0xd70f;

struct DropoutMask {
    p: f32,
    scale: f32,
    key: [u32; 2],
}

impl DropoutMask {
    /// Element `i`: uniform `(word >> 8)·2⁻²⁴` from word `i % 4` of Philox on counter `i / 4`.
    fn value(&self, words: &[u32; 4], i: usize) -> f32 {
        let u = (words[i % 4] >> 8) as f32 * (1.0 / 16_777_216.0);
        if u < self.p { 0.0 } else { self.scale }
    }
}

impl InplaceOp1 for DropoutMask {
    fn name(&self) -> &'static str {
        "dropout-mask"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(values) = storage else { bail!("{}: expected an f32 tensor", self.name()) };
        let mask = &mut values[layout.start_offset()..layout.start_offset() + layout.shape().elem_count()];
        mask.par_chunks_mut(ELEMENTWISE_CHUNK).enumerate().for_each(|(c, chunk)| {
            let first = c * ELEMENTWISE_CHUNK; // a multiple of 4: each chunk starts on a counter boundary
            for (g, group) in chunk.chunks_mut(4).enumerate() {
                let counter = (first / 4 + g) as u64;
                let words = crate::pim::gpu::philox([counter as u32, (counter >> 32) as u32, DROPOUT_STREAM, 0xd70f], self.key);
                for (j, v) in group.iter_mut().enumerate() {
                    *v = self.value(&words, j);
                }
            }
        });
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, storage: &mut candle_core::CudaStorage, layout: &Layout) -> Result<()> {
        cuda::dropout_mask(storage, layout, self.p, self.scale, self.key, DROPOUT_STREAM)
    }
}

#[cfg(test)]
mod tests;
