//! How a PIM layer's gradient flows in training (PIM_MODELS.md §6), as one op per layer: the op's value is
//! the simulated tile output, its backward that of a linear map of the layer input and master weight.
//!
//! Written as `clean + (pim − clean).detach()` in candle, the straight-through estimator would also run the
//! clean forward GEMM and two element-wise passes only to give the graph its shape; the backward never
//! reads the clean value. These ops compute the backward's two GEMMs directly instead.

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor, bail};

use super::simulator::HwaForward;

/// The straight-through estimator: the value of `pim` `[rows, N]`, the gradients of `x·Wᵀ` for `x`
/// `[rows, K]` and the master weight `W` `[N, K]`.
pub fn straight_through(x: &Tensor, weight: &Tensor, pim: &Tensor) -> Result<Tensor> {
    x.apply_op2(weight, Passthrough { value: pim.detach(), hwa: None })
}

/// AIHWKIT's hardware-aware training backward: the value `y` `[rows, N]` of the hardware-aware forward, the
/// gradient of `Σ_chunks pass ⊙ (x_chunk · W̃_chunkᵀ)`: through the perturbed weights W̃ to `x`, to the
/// master weight as if it were W̃ (the noise is a constant), and none where the converters clipped.
pub fn hardware_aware(x: &Tensor, weight: &Tensor, hwa: HwaForward) -> Result<Tensor> {
    x.apply_op2(weight, Passthrough { value: hwa.y.detach(), hwa: Some(hwa) })
}

/// Arguments `(x, W)`; the value is `value`'s, the backward that of `x·Wᵀ` (`hwa: None`) or of the
/// hardware-aware forward's chunks.
struct Passthrough {
    value: Tensor,
    hwa: Option<HwaForward>,
}

impl Passthrough {
    fn check(&self, lx: &Layout, lw: &Layout) -> Result<Shape> {
        let ((rows, k), (n, kw)) = (lx.shape().dims2()?, lw.shape().dims2()?);
        if k != kw || self.value.dims() != [rows, n] {
            bail!("PIM gradient op: x {:?}, weight {:?} and value {:?} do not fit", lx.shape(), lw.shape(), self.value.shape());
        }
        Ok(self.value.shape().clone())
    }
}

impl CustomOp2 for Passthrough {
    fn name(&self) -> &'static str {
        "pim-gradient"
    }

    fn cpu_fwd(&self, _: &CpuStorage, lx: &Layout, _: &CpuStorage, lw: &Layout) -> Result<(CpuStorage, Shape)> {
        let shape = self.check(lx, lw)?;
        let (storage, layout) = self.value.storage_and_layout();
        let Storage::Cpu(value) = &*storage else { bail!("PIM gradient op: the value is not on the CPU") };
        let mut out = unsafe { candle_core::cpu_backend::CpuDevice.alloc_uninit(&shape, value.dtype())? };
        value.copy_strided_src(&mut out, 0, layout)?;
        Ok((out, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        _: &candle_core::CudaStorage,
        lw: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let shape = self.check(lx, lw)?;
        let (storage, layout) = self.value.storage_and_layout();
        let Storage::Cuda(value) = &*storage else { bail!("PIM gradient op: the value is not on the GPU") };
        // Safety: every element is written by the copy below.
        let mut out = unsafe { x.device().alloc_uninit(&shape, value.dtype())? };
        value.copy_strided_src(&mut out, 0, layout)?;
        Ok((out, shape))
    }

    fn bwd(&self, x: &Tensor, weight: &Tensor, _value: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // Only what the graph needs: a frozen weight (LoRA's base layers) or an input that depends on no
        // variable takes no GEMM.
        let (want_dx, want_dw) = (x.track_op(), weight.track_op());
        let grad = grad.contiguous()?;
        let Some(hwa) = &self.hwa else {
            let dx = want_dx.then(|| grad.matmul(weight)).transpose()?;
            let dw = want_dw.then(|| grad.t()?.matmul(x)).transpose()?;
            return Ok((dx, dw));
        };
        #[cfg(feature = "cuda")]
        if grad.device().is_cuda() && [x.dtype(), weight.dtype(), grad.dtype()].iter().all(|&d| d == candle_core::DType::F32) {
            return hardware_aware_on_device(&grad, &x.contiguous()?, weight.dims2()?, hwa, (want_dx, want_dw));
        }
        let (mut dx, mut dw) = (Vec::new(), Vec::new());
        for (c, &(k0, kt)) in hwa.chunks.iter().enumerate() {
            let g = (&grad * &hwa.pass.get(c)?)?;
            if want_dx {
                dx.push(g.matmul(&hwa.chunk_weight(c)?)?);
            }
            if want_dw {
                // contiguous: candle's CUDA matmul takes no column slices.
                dw.push(g.t()?.matmul(&x.narrow(1, k0, kt)?.contiguous()?)?);
            }
        }
        let join = |parts: Vec<Tensor>| -> Result<Option<Tensor>> {
            match parts.len() {
                0 => Ok(None),
                1 => Ok(parts.into_iter().next()),
                _ => Tensor::cat(&parts, 1).map(Some),
            }
        };
        Ok((join(dx)?, join(dw)?))
    }
}

/// The hardware-aware backward on a GPU: the gradient through every chunk's pass mask in one op, then the
/// chunks' products straight into their columns of the full gradients (cuBLAS on strided operands: one
/// batched call for the full-width chunks and one for a narrower last chunk, per gradient), with no copies of
/// x's chunks and no concatenation.
#[cfg(feature = "cuda")]
fn hardware_aware_on_device(
    grad: &Tensor,
    x: &Tensor,
    (n, k): (usize, usize),
    hwa: &HwaForward,
    (want_dx, want_dw): (bool, bool),
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    use crate::pim::gpu::gemm::{Product, Strided, products};
    let rows = grad.dim(0)?;
    let new = |shape: (usize, usize)| match rows == 0 || n == 0 {
        true => Tensor::zeros(shape, candle_core::DType::F32, grad.device()),
        // Safety: the chunks cover the inputs: their products below write every column.
        false => unsafe { crate::pim::gpu::pcm::uninit::<f32>(&crate::pim::gpu::pcm::device(grad)?, shape) },
    };
    let (dx, dw) = (want_dx.then(|| new((rows, k))).transpose()?, want_dw.then(|| new((n, k))).transpose()?);
    if rows == 0 || n == 0 || hwa.chunks.is_empty() {
        return Ok((dx, dw));
    }
    // [chunks, rows, n]: the gradient where each chunk's converters passed.
    let g = crate::pim::gpu::pcm::masked_gradient(&hwa.pass, grad)?;
    // Runs of consecutive, equally wide chunks (the tilings': all but possibly the last), one batch each.
    let mut first = 0;
    while first < hwa.chunks.len() {
        let (k0, kt) = hwa.chunks[first];
        let count = hwa.chunks[first..].iter().enumerate().take_while(|&(i, &c)| c == (k0 + i * kt, kt)).count();
        let gs = Strided { data: &g, offset: first * rows * n, ld: n, stride: rows * n };
        if let Some(dx) = &dx {
            let w = Strided { data: &hwa.weight, offset: n * k0, ld: kt, stride: n * kt };
            products(Product::AB, gs, w, Strided { data: dx, offset: k0, ld: k, stride: kt }, (rows, kt, n), count)?;
        }
        if let Some(dw) = &dw {
            let xs = Strided { data: x, offset: k0, ld: k, stride: kt };
            products(Product::AtB, gs, xs, Strided { data: dw, offset: k0, ld: k, stride: kt }, (n, kt, rows), count)?;
        }
        first += count;
    }
    Ok((dx, dw))
}
