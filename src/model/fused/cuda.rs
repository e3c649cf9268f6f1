//! Launches of the fused ops' CUDA kernels (kernels.cu, PTX built by build.rs) on candle's CUDA storages.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::{CudaStorage, Layout, Result, bail};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/model_kernels.ptx"));
const MODULE: &str = "pimsweep_model";
const THREADS: u32 = 256;

/// One warp per row.
fn warp_rows(rows: usize) -> LaunchConfig {
    let per_block = (THREADS / 32) as usize;
    LaunchConfig { grid_dim: (rows.div_ceil(per_block).max(1) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// A grid-stride loop over `n` elements.
fn elements(n: usize) -> LaunchConfig {
    let blocks = (n as u64).div_ceil(THREADS as u64).clamp(1, 65_535 * 8) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// The contiguous f32 elements of an argument.
fn input<'a>(storage: &'a CudaStorage, layout: &Layout, op: &str) -> Result<CudaView<'a, f32>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(storage.as_cuda_slice::<f32>()?.slice(start..end)),
        None => bail!("{op}: the argument has to be contiguous"),
    }
}

fn alloc(dev: &CudaDevice, n: usize) -> Result<CudaSlice<f32>> {
    // SAFETY: every kernel below writes each element of its output.
    unsafe { dev.alloc::<f32>(n) }
}

pub fn layer_norm(x: (&CudaStorage, &Layout), w: (&CudaStorage, &Layout), b: (&CudaStorage, &Layout), eps: f32) -> Result<CudaStorage> {
    let dev = x.0.device().clone();
    let (xs, ws, bs) = (input(x.0, x.1, "layer-norm")?, input(w.0, w.1, "layer-norm")?, input(b.0, b.1, "layer-norm")?);
    let h = ws.len();
    let rows = xs.len() / h;
    let mut y = alloc(&dev, xs.len())?;
    let f = dev.get_or_load_custom_func("model_layer_norm", MODULE, PTX)?;
    let (rows_arg, h_arg) = (rows as i64, h as i32);
    let mut l = f.builder();
    l.arg(&xs).arg(&ws).arg(&bs).arg(&mut y).arg(&rows_arg).arg(&h_arg).arg(&eps);
    unsafe { l.launch(warp_rows(rows)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(y, dev))
}

/// `[rows + 2, h]`: dx by rows, then dweight and dbias.
pub fn layer_norm_grad(
    x: (&CudaStorage, &Layout),
    w: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
    eps: f32,
) -> Result<CudaStorage> {
    /// Rows per partial sum of dweight and dbias.
    const SLAB: usize = 64;
    let dev = x.0.device().clone();
    let (xs, ws, dys) = (input(x.0, x.1, "layer-norm-grad")?, input(w.0, w.1, "layer-norm-grad")?, input(dy.0, dy.1, "layer-norm-grad")?);
    let h = ws.len();
    let rows = xs.len() / h;
    let mut out = alloc(&dev, (rows + 2) * h)?;
    let mut stats = alloc(&dev, 2 * rows.max(1))?;
    let (rows_arg, h_arg, slab) = (rows as i64, h as i32, SLAB as i32);
    {
        let f = dev.get_or_load_custom_func("model_layer_norm_grad_x", MODULE, PTX)?;
        let mut dx = out.slice_mut(0..rows * h);
        let mut l = f.builder();
        l.arg(&xs).arg(&ws).arg(&dys).arg(&mut dx).arg(&mut stats).arg(&rows_arg).arg(&h_arg).arg(&eps);
        unsafe { l.launch(warp_rows(rows)) }.w()?;
    }
    let slabs = rows.div_ceil(SLAB).max(1);
    let mut part = alloc(&dev, slabs * 2 * h)?;
    {
        let f = dev.get_or_load_custom_func("model_layer_norm_grad_params", MODULE, PTX)?;
        let cfg = LaunchConfig { grid_dim: (h.div_ceil(32) as u32, slabs as u32, 1), block_dim: (32, 8, 1), shared_mem_bytes: 0 };
        let mut l = f.builder();
        l.arg(&xs).arg(&dys).arg(&stats).arg(&mut part).arg(&rows_arg).arg(&h_arg).arg(&slab);
        unsafe { l.launch(cfg) }.w()?;
    }
    let f = dev.get_or_load_custom_func("model_layer_norm_grad_reduce", MODULE, PTX)?;
    let mut params = out.slice_mut(rows * h..);
    let slabs_arg = slabs as i32;
    let mut l = f.builder();
    l.arg(&part).arg(&mut params).arg(&slabs_arg).arg(&h_arg);
    unsafe { l.launch(elements(2 * h)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// Softmax over rows of `n`; with a mask `[batch · n]`, row r adds mask row `r / rows_per_mask` first.
pub fn softmax(x: (&CudaStorage, &Layout), mask: Option<(&CudaStorage, &Layout)>, n: usize, rows_per_mask: usize) -> Result<CudaStorage> {
    let dev = x.0.device().clone();
    let xs = input(x.0, x.1, "softmax")?;
    let rows = xs.len() / n.max(1);
    let mut y = alloc(&dev, xs.len())?;
    let f = dev.get_or_load_custom_func("model_softmax", MODULE, PTX)?;
    let (rows_arg, n_arg, rpm) = (rows as i64, n as i32, rows_per_mask.max(1) as i64);
    let mask = mask.map(|(s, l)| input(s, l, "softmax")).transpose()?;
    let no_mask = 0u64; // a null pointer
    let mut l = f.builder();
    l.arg(&xs);
    match &mask {
        Some(m) => l.arg(m),
        None => l.arg(&no_mask),
    };
    l.arg(&mut y).arg(&rows_arg).arg(&n_arg).arg(&rpm);
    unsafe { l.launch(warp_rows(rows)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(y, dev))
}

pub fn softmax_grad(y: (&CudaStorage, &Layout), dy: (&CudaStorage, &Layout), n: usize) -> Result<CudaStorage> {
    let dev = y.0.device().clone();
    let (ys, dys) = (input(y.0, y.1, "softmax-grad")?, input(dy.0, dy.1, "softmax-grad")?);
    let rows = ys.len() / n.max(1);
    let mut dx = alloc(&dev, ys.len())?;
    let f = dev.get_or_load_custom_func("model_softmax_grad", MODULE, PTX)?;
    let (rows_arg, n_arg) = (rows as i64, n as i32);
    let mut l = f.builder();
    l.arg(&ys).arg(&dys).arg(&mut dx).arg(&rows_arg).arg(&n_arg);
    unsafe { l.launch(warp_rows(rows)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(dx, dev))
}

pub fn gelu(x: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    let dev = x.0.device().clone();
    let xs = input(x.0, x.1, "gelu")?;
    let mut y = alloc(&dev, xs.len())?;
    let f = dev.get_or_load_custom_func("model_gelu", MODULE, PTX)?;
    let n = xs.len() as i64;
    let mut l = f.builder();
    l.arg(&xs).arg(&mut y).arg(&n);
    unsafe { l.launch(elements(xs.len())) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(y, dev))
}

pub fn gelu_grad(x: (&CudaStorage, &Layout), dy: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    let dev = x.0.device().clone();
    let (xs, dys) = (input(x.0, x.1, "gelu-grad")?, input(dy.0, dy.1, "gelu-grad")?);
    let mut dx = alloc(&dev, xs.len())?;
    let f = dev.get_or_load_custom_func("model_gelu_grad", MODULE, PTX)?;
    let n = xs.len() as i64;
    let mut l = f.builder();
    l.arg(&xs).arg(&dys).arg(&mut dx).arg(&n);
    unsafe { l.launch(elements(xs.len())) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(dx, dev))
}

/// A dropout mask of `n` elements: 0 with probability `p`, else `scale`, from the Philox key `(key, stream)`.
pub fn dropout_mask(storage: &mut CudaStorage, layout: &Layout, p: f32, scale: f32, key: [u32; 2], stream: u32) -> Result<()> {
    let dev = storage.device().clone();
    let n = layout.shape().elem_count();
    let out = storage.as_cuda_slice_mut::<f32>()?;
    let mut out = out.slice_mut(layout.start_offset()..layout.start_offset() + n);
    let f = dev.get_or_load_custom_func("model_dropout_mask", MODULE, PTX)?;
    let len = n as i64;
    let key = crate::pim::gpu::RoundKeys::new(key, stream);
    let mut l = f.builder();
    l.arg(&mut out).arg(&len).arg(&p).arg(&scale).arg(&key);
    unsafe { l.launch(elements(n.div_ceil(4))) }.w()?;
    Ok(())
}

/// `y + bias` over rows of `bias.len()`: blocks stride over the rows, threads over a row's columns, so that
/// no thread divides to find its column.
pub fn add_bias(y: (&CudaStorage, &Layout), bias: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    let dev = y.0.device().clone();
    let (ys, bs) = (input(y.0, y.1, "add-bias")?, input(bias.0, bias.1, "add-bias")?);
    let n = bs.len();
    let rows = if n == 0 { 0 } else { ys.len() / n };
    let mut out = alloc(&dev, ys.len())?;
    if rows == 0 {
        return Ok(CudaStorage::wrap_cuda_slice(out, dev));
    }
    let f = dev.get_or_load_custom_func("model_add_bias", MODULE, PTX)?;
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(THREADS as usize) as u32, rows.min(65_535) as u32, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let (rows_arg, n_arg) = (rows as i64, n as i32);
    let mut l = f.builder();
    l.arg(&ys).arg(&bs).arg(&mut out).arg(&rows_arg).arg(&n_arg);
    unsafe { l.launch(cfg) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// Attention heads split (`[b, s, h·d]` → `[b, h, s, d]`) or merged (the reverse), times `scale`; `bshd` is
/// `[b, s, h, d]`. One block per row of the `[b, s, h·d]` side.
pub fn heads(x: (&CudaStorage, &Layout), bshd: [usize; 4], scale: f32, merge: bool) -> Result<CudaStorage> {
    let dev = x.0.device().clone();
    let xs = input(x.0, x.1, "attention-heads")?;
    let [b, s, h, d] = bshd;
    let mut out = alloc(&dev, xs.len())?;
    let rows = b * s;
    if rows == 0 || h * d == 0 {
        return Ok(CudaStorage::wrap_cuda_slice(out, dev));
    }
    let f = dev.get_or_load_custom_func("model_heads", MODULE, PTX)?;
    let cfg = LaunchConfig { grid_dim: (rows.min(1 << 20) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
    let (rows_arg, s_arg, h_arg, d_arg, merge_arg) = (rows as i64, s as i32, h as i32, d as i32, merge as i32);
    let mut l = f.builder();
    l.arg(&xs).arg(&mut out).arg(&rows_arg).arg(&s_arg).arg(&h_arg).arg(&d_arg).arg(&scale).arg(&merge_arg);
    unsafe { l.launch(cfg) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// One block per row (up to 2^20 blocks, striding).
fn row_blocks(rows: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (rows.clamp(1, 1 << 20) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// The contiguous u32 elements of an argument.
fn input_ids<'a>(storage: &'a CudaStorage, layout: &Layout, op: &str) -> Result<CudaView<'a, u32>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(storage.as_cuda_slice::<u32>()?.slice(start..end)),
        None => bail!("{op}: the ids have to be contiguous"),
    }
}

/// The rows of `table` `[vocab, dim]` at `ids`, `[count, dim]`.
pub fn embedding(table: (&CudaStorage, &Layout), ids: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    let dev = table.0.device().clone();
    let (vocab, dim) = table.1.shape().dims2()?;
    let (ts, is) = (input(table.0, table.1, "embedding")?, input_ids(ids.0, ids.1, "embedding")?);
    let count = is.len();
    let mut out = alloc(&dev, count * dim)?;
    if count == 0 || dim == 0 {
        return Ok(CudaStorage::wrap_cuda_slice(out, dev));
    }
    let f = dev.get_or_load_custom_func("model_embedding", MODULE, PTX)?;
    let (count_arg, dim_arg, vocab_arg) = (count as i64, dim as i32, vocab as i64);
    let mut l = f.builder();
    l.arg(&ts).arg(&is).arg(&mut out).arg(&count_arg).arg(&dim_arg).arg(&vocab_arg);
    unsafe { l.launch(row_blocks(count)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// The lookup's backward: the table gradient `[vocab, dim]` from `grad` `[count, dim]` at `ids`. The ids
/// come back to the host to be grouped (embedding.rs `segments`): a synchronisation, once per table.
pub fn embedding_grad(grad: (&CudaStorage, &Layout), ids: (&CudaStorage, &Layout), vocab: usize, op: &str) -> Result<CudaStorage> {
    let dev = grad.0.device().clone();
    let (_, dim) = grad.1.shape().dims2()?;
    let (gs, is) = (input(grad.0, grad.1, op)?, input_ids(ids.0, ids.1, op)?);
    let host_ids = dev.clone_dtoh(&is)?;
    if let Some(id) = host_ids.iter().find(|&&id| id as usize >= vocab) {
        bail!("{op}: id {id} is outside the table of {vocab} rows")
    }
    let mut out = dev.alloc_zeros::<f32>(vocab * dim)?;
    if host_ids.is_empty() || dim == 0 {
        return Ok(CudaStorage::wrap_cuda_slice(out, dev));
    }
    let s = super::embedding::segments(&host_ids);
    let (positions, starts) = (dev.clone_htod(&s.positions)?, dev.clone_htod(&s.segment_starts)?);
    let (occurring, id_segments) = (dev.clone_htod(&s.ids)?, dev.clone_htod(&s.id_segments)?);
    let segments = s.segment_starts.len() - 1;
    let mut partial = alloc(&dev, segments * dim)?;
    let dim_arg = dim as i32;
    let f = dev.get_or_load_custom_func("model_embedding_grad_segments", MODULE, PTX)?;
    let segments_arg = segments as i64;
    let mut l = f.builder();
    l.arg(&gs).arg(&dim_arg).arg(&positions).arg(&starts).arg(&segments_arg).arg(&mut partial);
    unsafe { l.launch(row_blocks(segments)) }.w()?;
    let f = dev.get_or_load_custom_func("model_embedding_grad_rows", MODULE, PTX)?;
    let count_arg = s.ids.len() as i64;
    let mut l = f.builder();
    l.arg(&partial).arg(&dim_arg).arg(&occurring).arg(&id_segments).arg(&count_arg).arg(&mut out);
    unsafe { l.launch(row_blocks(s.ids.len())) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}
