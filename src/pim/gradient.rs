//! How a PIM layer's gradient flows in training (PIM_MODELS.md §6), as one op per layer: the op's value is
//! the simulated tile output, its backward that of a linear map of the layer input and master weight.
//!
//! Written as `clean + (pim − clean).detach()` in candle, the straight-through estimator would also run the
//! clean forward GEMM and two element-wise passes only to give the graph its shape; the backward never
//! reads the clean value. These ops compute the backward's two GEMMs directly instead.

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor, bail};

use super::simulator::HwaChunk;

/// The straight-through estimator: the value of `pim` `[rows, N]`, the gradients of `x·Wᵀ` for `x`
/// `[rows, K]` and the master weight `W` `[N, K]`.
pub fn straight_through(x: &Tensor, weight: &Tensor, pim: &Tensor) -> Result<Tensor> {
    x.apply_op2(weight, Passthrough { value: pim.detach(), chunks: None })
}

/// AIHWKIT's hardware-aware training backward: the value `y` `[rows, N]` of the hardware-aware forward, the
/// gradient of `Σ_chunks pass ⊙ (x_chunk · W̃_chunkᵀ)`: through the perturbed weights W̃ to `x`, to the
/// master weight as if it were W̃ (the noise is a constant), and none where the converters clipped.
pub fn hardware_aware(x: &Tensor, weight: &Tensor, y: &Tensor, chunks: Vec<HwaChunk>) -> Result<Tensor> {
    x.apply_op2(weight, Passthrough { value: y.detach(), chunks: Some(chunks) })
}

/// Arguments `(x, W)`; the value is `value`'s, the backward that of `x·Wᵀ` (`chunks: None`) or of the
/// hardware-aware chunks.
struct Passthrough {
    value: Tensor,
    chunks: Option<Vec<HwaChunk>>,
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
        let Some(chunks) = &self.chunks else {
            let dx = want_dx.then(|| grad.matmul(weight)).transpose()?;
            let dw = want_dw.then(|| grad.t()?.matmul(x)).transpose()?;
            return Ok((dx, dw));
        };
        #[cfg(feature = "cuda")]
        if grad.device().is_cuda() && [x.dtype(), weight.dtype(), grad.dtype()].iter().all(|&d| d == candle_core::DType::F32) {
            return hardware_aware_on_device(&grad, &x.contiguous()?, weight.dims2()?, chunks, (want_dx, want_dw));
        }
        let (mut dx, mut dw) = (Vec::new(), Vec::new());
        for c in chunks {
            let g = (&grad * &c.pass)?;
            if want_dx {
                dx.push(g.matmul(&c.weight)?);
            }
            if want_dw {
                // contiguous: candle's CUDA matmul takes no column slices.
                dw.push(g.t()?.matmul(&x.narrow(1, c.k0, c.kt)?.contiguous()?)?);
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

/// The hardware-aware backward on a GPU: each chunk's two products go straight into its columns of the full
/// gradients (cuBLAS on strided operands), with no copies of x's chunks and no concatenation.
#[cfg(feature = "cuda")]
fn hardware_aware_on_device(
    grad: &Tensor,
    x: &Tensor,
    (n, k): (usize, usize),
    chunks: &[HwaChunk],
    (want_dx, want_dw): (bool, bool),
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    use crate::pim::gpu::gemm::{Product, Strided, products};
    let rows = grad.dim(0)?;
    let zeros = |shape: (usize, usize)| Tensor::zeros(shape, candle_core::DType::F32, grad.device());
    let (dx, dw) = (want_dx.then(|| zeros((rows, k))).transpose()?, want_dw.then(|| zeros((n, k))).transpose()?);
    fn at(data: &Tensor, offset: usize, ld: usize) -> Strided<'_> {
        Strided { data, offset, ld, stride: 0 }
    }
    for c in chunks {
        let g = (grad * &c.pass)?;
        if let Some(dx) = &dx {
            products(Product::AB, at(&g, 0, n), at(&c.weight, 0, c.kt), at(dx, c.k0, k), (rows, c.kt, n), 1)?;
        }
        if let Some(dw) = &dw {
            products(Product::AtB, at(&g, 0, n), at(x, c.k0, k), at(dw, c.k0, k), (n, c.kt, rows), 1)?;
        }
    }
    Ok((dx, dw))
}
