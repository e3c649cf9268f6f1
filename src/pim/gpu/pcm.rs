//! The AIHWKIT PCM tile's per-call work on a GPU (kernels.cu `pim_pcm_*`): the chip read at a drift time,
//! the DAC of an input chunk, and the output converter with bound management. These launch on the storages
//! of tensors the caller made for the call (contiguous, on one GPU): several of them are written by one
//! kernel, which candle's one-output custom ops cannot express.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDType, CudaDevice, WrapErr};
use candle_core::{DType, Layout, Result, Storage, Tensor, bail};

use super::PhiloxKey;
use super::cuda::{MODULE, PTX, THREADS, WARPS, elements};

/// The elements of a contiguous tensor on a GPU. The kernels write some of these views: the tensors the
/// caller made for this call alone (candle's custom ops have one output; these kernels have several).
pub(super) fn view<'a, T: CudaDType>(storage: &'a Storage, layout: &Layout) -> Result<CudaView<'a, T>> {
    let Storage::Cuda(s) = storage else { bail!("PCM GPU kernels take CUDA tensors") };
    let Some((start, end)) = layout.contiguous_offsets() else { bail!("PCM GPU kernels take contiguous tensors") };
    Ok(s.as_cuda_slice::<T>()?.slice(start..end))
}

/// One warp per row.
fn warp_rows(rows: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: ((rows as u64).div_ceil(WARPS).max(1) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

pub(super) fn device(t: &Tensor) -> Result<CudaDevice> {
    let Storage::Cuda(s) = &*t.storage_and_layout().0 else { bail!("PCM GPU kernels take CUDA tensors") };
    Ok(s.device().clone())
}

/// The normalised weights `wc` `[n]` a read at a drift time sees, from the planes `[4, n]` (g+, g−, ν+, ν−);
/// read noise from `key` when `read_sigma_factor > 0`.
pub fn read(pairs: &Tensor, log_drift: f32, read_sigma_factor: f32, g_max: f32, key: PhiloxKey) -> Result<Tensor> {
    let n = pairs.elem_count() / 4;
    let wc = Tensor::zeros(n, DType::F32, pairs.device())?;
    let f = device(pairs)?.get_or_load_custom_func("pim_pcm_read", MODULE, PTX)?;
    let ((ps, pl), (ws, wl)) = (pairs.storage_and_layout(), wc.storage_and_layout());
    let (p, w) = (view::<f32>(&ps, pl)?, view::<f32>(&ws, wl)?);
    let len = n as i64;
    let mut b = f.builder();
    b.arg(&p).arg(&w).arg(&len).arg(&log_drift).arg(&read_sigma_factor).arg(&g_max).arg(&key.key[0]).arg(&key.key[1]).arg(&key.stream);
    unsafe { b.launch(elements(n)) }.w()?;
    drop((ps, ws));
    Ok(wc)
}

/// The DAC settings of a chunk.
#[derive(Debug, Clone, Copy)]
pub struct Dac {
    pub abs_max: bool,
    pub inp_step: f32,
}

/// Columns `k0..k0+kt` of `x` `[rows, k]` through the DAC at reduction `red`, `[rows, kt]`. With `measure`,
/// first sets `scale` `[rows]` to each row's input scale (0 for an all-zero row); otherwise reads it.
pub fn dac(x: &Tensor, k0: usize, kt: usize, scale: &Tensor, measure: bool, dac: Dac, red: f32) -> Result<Tensor> {
    let xq = Tensor::zeros((x.dim(0)?, kt), DType::F32, x.device())?;
    dac_into(x, k0, kt, scale, measure, dac, red, &xq)?;
    Ok(xq)
}

/// [`dac`] into `xq` `[rows, kt]` (contiguous; a view of a larger tensor is fine).
#[allow(clippy::too_many_arguments)]
pub fn dac_into(x: &Tensor, k0: usize, kt: usize, scale: &Tensor, measure: bool, dac: Dac, red: f32, xq: &Tensor) -> Result<()> {
    let (rows, k) = x.dims2()?;
    let f = device(x)?.get_or_load_custom_func("pim_pcm_dac", MODULE, PTX)?;
    let ((xs, xl), (qs, ql), (ss, sl)) = (x.storage_and_layout(), xq.storage_and_layout(), scale.storage_and_layout());
    let (xv, qv, sv) = (view::<f32>(&xs, xl)?, view::<f32>(&qs, ql)?, view::<f32>(&ss, sl)?);
    let a = [rows as i32, k as i32, k0 as i32, kt as i32, measure as i32, dac.abs_max as i32];
    let mut b = f.builder();
    b.arg(&xv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&qv).arg(&sv).arg(&a[4]).arg(&a[5]).arg(&dac.inp_step).arg(&red);
    unsafe { b.launch(warp_rows(rows)) }.w()?;
    Ok(())
}

/// The output converter of one tile and round.
#[derive(Debug, Clone, Copy)]
pub struct Adc {
    pub out_noise: f32,
    pub out_step: f32,
    pub out_bound: f32,
}

/// Where a chunk's finished rows go: `out` `[rows, n]`, with `factor` `[n]` per output; and optionally the
/// ADC pass mask `pass` `[rows, n]`.
pub struct Sink<'a> {
    pub out: &'a Tensor,
    pub factor: &'a Tensor,
    pub pass: Option<&'a Tensor>,
}

/// Which rows of the layer a round computes.
pub struct Rows<'a> {
    /// The pending flags of the layer's (tile, row)s (`[tiles, rows]` u32, tile = row tile · chunks + chunk):
    /// set by round 0 (`first`) where a row saturated, cleared by later rounds as rows finish.
    pub pending: &'a Tensor,
    pub first: bool,
    /// The input scale of each of the layer's rows (`[rows]`).
    pub scale: &'a Tensor,
    /// The rows `y` holds (`[local rows]` u32), when not all of them in order.
    pub map: Option<&'a Tensor>,
}

/// Which of the layer's `chunks` input chunks a product is of, and the width of its tiles' output spans.
#[derive(Debug, Clone, Copy)]
pub struct ChunkTiles {
    pub chunk: usize,
    pub chunks: usize,
    pub tile_width: usize,
}

/// One round of an input chunk's tiles: `y` `[local rows, n]` (overwritten) through noise and ADC for the
/// (row, tile)s still pending; those that saturate while `may_retry` stay pending.
#[allow(clippy::too_many_arguments)]
pub fn finalize(
    y: &Tensor,
    rows: &Rows,
    sink: &Sink,
    tiles: ChunkTiles,
    adc: Adc,
    red: f32,
    may_retry: bool,
    key: PhiloxKey,
    round: u32,
) -> Result<()> {
    let (local_rows, n) = y.dims2()?;
    let (_, all_rows) = rows.pending.dims2()?;
    let f = device(y)?.get_or_load_custom_func("pim_pcm_finalize", MODULE, PTX)?;
    let ((ys, yl), (ps, pl), (ss, sl)) = (y.storage_and_layout(), rows.pending.storage_and_layout(), rows.scale.storage_and_layout());
    let ((os, ol), (fs, fl)) = (sink.out.storage_and_layout(), sink.factor.storage_and_layout());
    let (yv, pv, sv) = (view::<f32>(&ys, yl)?, view::<u32>(&ps, pl)?, view::<f32>(&ss, sl)?);
    let (ov, fv) = (view::<f32>(&os, ol)?, view::<f32>(&fs, fl)?);
    // The optional arguments: views where given, else the kernel's null pointers.
    let (map, pass) = (rows.map.map(|t| t.storage_and_layout()), sink.pass.map(|t| t.storage_and_layout()));
    let map_view = map.as_ref().map(|(s, l)| view::<u32>(s, l)).transpose()?;
    let pass_view = pass.as_ref().map(|(s, l)| view::<f32>(s, l)).transpose()?;
    let null = 0u64;
    let tile_width = tiles.tile_width.max(1);
    let a = [local_rows as i32, all_rows as i32, n as i32, tile_width as i32, tiles.chunks as i32, tiles.chunk as i32];
    let (first, may_retry, round) = (rows.first as i32, may_retry as i32, round as i32);
    let mut b = f.builder();
    b.arg(&yv).arg(&a[0]).arg(&a[1]);
    match &map_view {
        Some(v) => b.arg(v),
        None => b.arg(&null),
    };
    b.arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&a[5]).arg(&pv).arg(&first).arg(&sv).arg(&ov);
    match &pass_view {
        Some(v) => b.arg(v),
        None => b.arg(&null),
    };
    b.arg(&fv).arg(&red).arg(&may_retry).arg(&adc.out_noise).arg(&adc.out_step).arg(&adc.out_bound);
    b.arg(&key.key[0]).arg(&key.key[1]).arg(&key.stream).arg(&round);
    unsafe { b.launch(super::cuda::warp_tasks((local_rows * n.div_ceil(tile_width)) as u64)) }.w()?;
    Ok(())
}

/// The weights of a hardware-aware training forward (hwa.rs) from the master weight `w` `[n, k]`, tiles of
/// `core_size` (0: the whole layer), chunk-major (chunk c is the `[n, kt]` matrix at offset `n·k0`): the
/// normalised weights with weight noise `noise`·ξ from `key`, the weights the forward used (normalised ×
/// scale), and each row's scale per chunk, `[chunks, n]`.
pub fn hwa_weights(w: &Tensor, core_size: usize, per_row: bool, noise: f32, key: PhiloxKey) -> Result<(Tensor, Tensor, Tensor)> {
    let (n, k) = w.dims2()?;
    let w = w.to_dtype(DType::F32)?.contiguous()?;
    let (tr, tc) = if core_size == 0 { (n.max(1), k.max(1)) } else { (core_size, core_size) };
    let chunks = k.div_ceil(tc);
    let dev = w.device();
    let (wn, used) = (Tensor::zeros(n * k, DType::F32, dev)?, Tensor::zeros(n * k, DType::F32, dev)?);
    let factor = Tensor::zeros((chunks, n), DType::F32, dev)?;
    if n == 0 || k == 0 {
        return Ok((wn, used, factor));
    }
    let rmax = Tensor::zeros(n * chunks, DType::F32, dev)?;
    let cuda_dev = device(&w)?;
    let ((ws, wl), (ms, ml)) = (w.storage_and_layout(), rmax.storage_and_layout());
    let ((ns, nl), (us, ul), (fs, fl)) = (wn.storage_and_layout(), used.storage_and_layout(), factor.storage_and_layout());
    let (wv, mv) = (view::<f32>(&ws, wl)?, view::<f32>(&ms, ml)?);
    let (nv, uv, fv) = (view::<f32>(&ns, nl)?, view::<f32>(&us, ul)?, view::<f32>(&fs, fl)?);
    let a = [n as i32, k as i32, tr as i32, tc as i32, chunks as i32, per_row as i32];
    row_max(&cuda_dev, &wv, [n, k, tc, chunks], &mv)?;
    let f = cuda_dev.get_or_load_custom_func("pim_pcm_hwa_weights", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&wv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&mv).arg(&a[5]).arg(&noise);
    b.arg(&key.key[0]).arg(&key.key[1]).arg(&key.stream).arg(&nv).arg(&uv).arg(&fv);
    unsafe { b.launch(warp_rows(n * chunks)) }.w()?;
    drop(b);
    drop((ws, ms, ns, us, fs));
    Ok((wn, used, factor))
}

/// `rmax[row · chunks + c]` = max |w| over the columns of tile column `c` (`tc` wide) of each row of `w`
/// `[n, k]`.
fn row_max(dev: &CudaDevice, w: &CudaView<f32>, dims: [usize; 4], rmax: &CudaView<f32>) -> Result<()> {
    let [n, k, tc, chunks] = dims;
    let a = [n as i32, k as i32, tc as i32, chunks as i32];
    let f = dev.get_or_load_custom_func("pim_pcm_row_max", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(w).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(rmax);
    unsafe { b.launch(warp_rows(n * chunks)) }.w()?;
    Ok(())
}

/// remap.rs `clip_and_remap` on a GPU: a copy of the effective weights `w` `[n, k]` after one post-update
/// step with tiles of `core_size` (0: the whole layer).
pub fn clip_and_remap(w: &Tensor, core_size: usize, clip_sigma: f32) -> Result<Tensor> {
    /// Rows per partial sum of the tile statistics.
    const SLAB: usize = 16;
    let (n, k) = w.dims2()?;
    let out = w.to_dtype(DType::F32)?.contiguous()?.copy()?;
    if n == 0 || k == 0 {
        return Ok(out);
    }
    let (tr, tc) = if core_size == 0 { (n, k) } else { (core_size, core_size) };
    let (row_tiles, chunks) = (n.div_ceil(tr), k.div_ceil(tc));
    let (tiles, slabs) = (row_tiles * chunks, tr.div_ceil(SLAB));
    let dev = w.device();
    let rmax = Tensor::zeros(n * chunks, DType::F32, dev)?;
    let part = Tensor::zeros(tiles * slabs * 3, DType::F64, dev)?;
    let bound = Tensor::zeros(tiles, DType::F32, dev)?;
    let cuda_dev = device(&out)?;
    let ((os, ol), (ms, ml), (ps, pl), (bs, bl)) =
        (out.storage_and_layout(), rmax.storage_and_layout(), part.storage_and_layout(), bound.storage_and_layout());
    let (ov, mv, pv, bv) = (view::<f32>(&os, ol)?, view::<f32>(&ms, ml)?, view::<f64>(&ps, pl)?, view::<f32>(&bs, bl)?);
    let a = [n as i32, k as i32, tr as i32, tc as i32, chunks as i32, SLAB as i32, tiles as i32, slabs as i32];
    let total = (n * k) as i64;
    row_max(&cuda_dev, &ov, [n, k, tc, chunks], &mv)?;
    let f = cuda_dev.get_or_load_custom_func("pim_pcm_clip_stats", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&ov).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&mv).arg(&a[5]).arg(&pv);
    let cfg = LaunchConfig { grid_dim: (tiles as u32, slabs as u32, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
    unsafe { b.launch(cfg) }.w()?;
    let f = cuda_dev.get_or_load_custom_func("pim_pcm_clip_bound", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&pv).arg(&a[6]).arg(&a[7]).arg(&clip_sigma).arg(&bv);
    unsafe { b.launch(elements(tiles)) }.w()?;
    let f = cuda_dev.get_or_load_custom_func("pim_pcm_clip_apply", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&ov).arg(&total).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&mv).arg(&bv);
    unsafe { b.launch(elements(n * k)) }.w()?;
    drop((os, ms, ps, bs));
    Ok(out)
}
