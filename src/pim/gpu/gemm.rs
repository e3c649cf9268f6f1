//! Matrix products that candle's matmul cannot express, straight through cuBLAS on candle's handle and
//! stream (and a second stream for a chunked product's narrower last chunk): operands that are the K-chunks
//! of a row-major matrix (a row stride wider than the chunk) and results written into a slice of a larger
//! buffer. The PCM tiles use them to multiply every input chunk with its tiles without copying the chunks out
//! first.

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::cublas::{CudaBlas, result, sys};
use candle_core::cuda_backend::cudarc::driver::{CudaStream, DevicePtr};
use candle_core::cuda_backend::{CudaDevice, DeviceId, WrapErr};
use candle_core::{DType, Result, Storage, Tensor, bail};

/// `batch` row-major matrices in a contiguous f32 tensor: the first at element `offset`, rows `ld` elements
/// apart, each matrix `stride` elements after the one before.
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    pub data: &'a Tensor,
    pub offset: usize,
    pub ld: usize,
    pub stride: usize,
}

impl Strided<'_> {
    /// Fails unless the tensor is contiguous f32 and each of the `batch` `[rows, cols]` matrices lies inside it.
    fn check(&self, rows: usize, cols: usize, batch: usize, what: &str) -> Result<()> {
        let last = self.offset + (batch - 1) * self.stride + (rows - 1) * self.ld + cols;
        if self.data.dtype() != DType::F32 || !self.data.is_contiguous() || cols > self.ld || last > self.data.elem_count() {
            bail!(
                "strided product: {what} ({batch} × [{rows}, {cols}], ld {}, stride {}) does not fit {:?}",
                self.ld,
                self.stride,
                self.data
            );
        }
        Ok(())
    }
}

/// Which product [`products`] computes, row-major, for `c_i` `[m, n]` and the inner dimension `kt`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Product {
    /// `a_i · b_iᵀ`: `a_i` `[m, kt]`, `b_i` `[n, kt]`.
    ABt,
    /// `a_i · b_i`: `a_i` `[m, kt]`, `b_i` `[kt, n]`.
    AB,
    /// `a_iᵀ · b_i`: `a_i` `[kt, m]`, `b_i` `[kt, n]`.
    AtB,
}

/// `c_i` (`[m, n]`, overwritten) `=` the `product` of `a_i` and `b_i` for `i < batch`, in f32 (cuBLAS SGEMM,
/// as candle's matmul).
pub fn products(product: Product, a: Strided, b: Strided, c: Strided, dims: (usize, usize, usize), batch: usize) -> Result<()> {
    products_on(None, product, a, b, c, dims, batch)
}

/// [`products`] on candle's stream, or on `side`'s.
fn products_on(
    side: Option<&Side>,
    product: Product,
    a: Strided,
    b: Strided,
    c: Strided,
    (m, n, kt): (usize, usize, usize),
    batch: usize,
) -> Result<()> {
    if m == 0 || n == 0 || batch == 0 {
        return Ok(());
    }
    if kt == 0 {
        bail!("strided product: no inner dimension");
    }
    match product {
        Product::ABt => (a.check(m, kt, batch, "a")?, b.check(n, kt, batch, "b")?),
        Product::AB => (a.check(m, kt, batch, "a")?, b.check(kt, n, batch, "b")?),
        Product::AtB => (a.check(kt, m, batch, "a")?, b.check(kt, n, batch, "b")?),
    };
    c.check(m, n, batch, "c")?;
    let (sa, la) = a.data.storage_and_layout();
    let (sb, lb) = b.data.storage_and_layout();
    let (sc, lc) = c.data.storage_and_layout();
    let (Storage::Cuda(ca), Storage::Cuda(cb), Storage::Cuda(cc)) = (&*sa, &*sb, &*sc) else {
        bail!("strided product: operands must be on a GPU")
    };
    let dev = ca.device();
    let candle_blas = dev.cublas_handle();
    let (stream, handle) = match side {
        Some(side) => (side.stream.clone(), *side.blas.handle()),
        None => (dev.cuda_stream(), *candle_blas.handle()),
    };
    let (pa, _ga) = ca.as_cuda_slice::<f32>()?.device_ptr(&stream);
    let (pb, _gb) = cb.as_cuda_slice::<f32>()?.device_ptr(&stream);
    let (pc, _gc) = cc.as_cuda_slice::<f32>()?.device_ptr(&stream);
    let at = |p: u64, start: usize, offset: usize| p + ((start + offset) * std::mem::size_of::<f32>()) as u64;
    let (pa, pb, pc) = (at(pa, la.start_offset(), a.offset), at(pb, lb.start_offset(), b.offset), at(pc, lc.start_offset(), c.offset));
    let (alpha, beta) = (1.0f32, 0.0f32);
    // cuBLAS is column-major: it computes cᵀ [n, m] = op(b) · op(a), a row-major matrix being its transpose.
    let op = |transposed: bool| if transposed { sys::cublasOperation_t::CUBLAS_OP_T } else { sys::cublasOperation_t::CUBLAS_OP_N };
    // Safety: check() keeps every matrix inside its tensor; c is a buffer of this call's caller alone.
    unsafe {
        result::sgemm_strided_batched(
            handle,
            op(product == Product::ABt),
            op(product == Product::AtB),
            n as i32,
            m as i32,
            kt as i32,
            &alpha,
            pb as *const f32,
            b.ld as i32,
            b.stride as i64,
            pa as *const f32,
            a.ld as i32,
            a.stride as i64,
            &beta,
            pc as *mut f32,
            c.ld as i32,
            c.stride as i64,
            batch as i32,
        )
    }
    .w()?;
    Ok(())
}

/// A second stream of a GPU, with a cuBLAS handle on it, for a narrower last chunk's product to run beside
/// the full chunks' on candle's stream.
struct Side {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
}

static SIDES: Mutex<Vec<(DeviceId, Arc<Side>)>> = Mutex::new(Vec::new());

/// The device's side stream, made on first use.
fn side(dev: &CudaDevice) -> Result<Arc<Side>> {
    let mut sides = SIDES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, side)) = sides.iter().find(|(id, _)| *id == dev.id()) {
        return Ok(side.clone());
    }
    // Safety: chunk_products orders the side stream's work by joins both ways, and its operands are alive
    // for the whole call. With event tracking on, cudarc would record and wait on an event for every
    // operand of every launch in the program once a second stream exists.
    unsafe { dev.disable_event_tracking() };
    let stream = dev.cuda_stream().fork().w()?;
    let side = Arc::new(Side { blas: CudaBlas::new(stream.clone()).w()?, stream });
    sides.push((dev.id(), side.clone()));
    Ok(side)
}

/// The K-chunks of `cs` columns (the last one possibly narrower) of `a` `[m, k]` times those of `b` (`[n, k]`,
/// or chunk-major: chunk c the `[n, kt]` matrix at n·k0), into `out` `[chunks, m, n]` (chunk c at `c·m·n`).
/// One batched call for the full chunks, one for a narrower last chunk. The two run side by side, on two
/// streams: each alone left SMs idle in its last wave (a 768-wide input: chunks of 512 and 256, 192 blocks of
/// 128 × 128 outputs each on 132 SMs).
pub fn chunk_products(a: &Tensor, b: &Tensor, b_chunk_major: bool, cs: usize, out: &Tensor) -> Result<()> {
    if cs == 0 {
        bail!("chunk products: chunks of 0 columns");
    }
    let (m, k) = a.dims2()?;
    let n = b.elem_count() / k.max(1);
    let (full, rest) = (k / cs, k % cs);
    let b_at = |k0: usize, kt: usize| {
        if b_chunk_major {
            Strided { data: b, offset: n * k0, ld: kt, stride: n * kt }
        } else {
            Strided { data: b, offset: k0, ld: k, stride: kt }
        }
    };
    let c_at = |chunk: usize| Strided { data: out, offset: chunk * m * n, ld: n, stride: m * n };
    let k0 = full * cs;
    let full_products = |side: Option<&Side>| {
        products_on(side, Product::ABt, Strided { data: a, offset: 0, ld: k, stride: cs }, b_at(0, cs), c_at(0), (m, n, cs), full)
    };
    let rest_product = |side: Option<&Side>| {
        products_on(side, Product::ABt, Strided { data: a, offset: k0, ld: k, stride: rest }, b_at(k0, rest), c_at(full), (m, n, rest), 1)
    };
    match (full > 0, rest > 0) {
        (true, true) => {
            let dev = super::pcm::device(out)?;
            let (side, main) = (side(&dev)?, dev.cuda_stream());
            side.stream.join(&main).w()?;
            let products = rest_product(Some(&side)).and_then(|()| full_products(None));
            // Joined even after an error, so that no later work on candle's stream overtakes the side's.
            main.join(&side.stream).w()?;
            products
        }
        (true, false) => full_products(None),
        (false, true) => rest_product(None),
        (false, false) => Ok(()),
    }
}
