//! Launches of kernels.cu (PTX built by build.rs for `CUDA_COMPUTE_CAP`) on candle's CUDA storages.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::CudaDevice;
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::{CudaStorage, DType, Layout, Result, Tensor};

use super::PhiloxKey;

pub(super) const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/pim_kernels.ptx"));
pub(super) const MODULE: &str = "pimsweep_pim";

/// philox.cuh `RoundKeys`, a kernel parameter: a Philox key's round keys (gpu.rs `round_keys`, scheduled here
/// once a launch rather than in every draw) and its stream word.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RoundKeys {
    x: [u32; 10],
    y: [u32; 10],
    stream: u32,
}

// Safety: a plain C struct of integers, laid out as philox.cuh's.
unsafe impl DeviceRepr for RoundKeys {}

impl RoundKeys {
    pub(crate) fn new(key: [u32; 2], stream: u32) -> RoundKeys {
        let rounds = super::round_keys(key);
        RoundKeys { x: rounds.map(|k| k[0]), y: rounds.map(|k| k[1]), stream }
    }
}

impl From<PhiloxKey> for RoundKeys {
    fn from(k: PhiloxKey) -> RoundKeys {
        RoundKeys::new(k.key, k.stream)
    }
}

/// Threads per block; the warp-per-task kernels run 8 tasks per block.
pub(super) const THREADS: u32 = 256;
pub(super) const WARPS: u64 = THREADS as u64 / 32;

/// One warp per task.
pub(super) fn warp_tasks(tasks: u64) -> LaunchConfig {
    LaunchConfig { grid_dim: (tasks.div_ceil(WARPS).max(1) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// The launch of pim_tile_max over `tiles` tiles of `tile_rows` rows: a block per slab of its rows.
pub(super) fn tile_max_launch(tiles: usize, tile_rows: usize) -> LaunchConfig {
    /// kernels.cu `TILE_MAX_SLAB`.
    const SLAB: usize = 16;
    LaunchConfig { grid_dim: (tiles as u32, tile_rows.div_ceil(SLAB).max(1) as u32, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// A grid-stride loop over `n` elements.
pub(super) fn elements(n: usize) -> LaunchConfig {
    let blocks = (n as u64).div_ceil(THREADS as u64).clamp(1, 65_535 * 8) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

fn view<'a>(slice: &'a CudaSlice<f32>, layout: &Layout) -> CudaView<'a, f32> {
    slice.slice(layout.start_offset()..layout.start_offset() + layout.shape().elem_count())
}

/// `src` (contiguous) quantized into a new storage.
pub fn quantize_groups(src: &CudaStorage, layout: &Layout, dims: [usize; 5], format: [i32; 4]) -> Result<CudaStorage> {
    let [rows, k, ..] = dims;
    let dev = src.device().clone();
    let x = view(src.as_cuda_slice::<f32>()?, layout);
    // Safety: launch_quantize writes every element.
    let out = unsafe { dev.alloc::<f32>(rows * k) }?;
    launch_quantize(&dev, (&x, layout.start_offset() % 4 == 0), &out.slice(..), dims, format, None)?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// Quantizes `x` `[rows, k]` into `out` (every element written) with one scale per (row group, K-chunk):
/// `dims` = rows, k, cs, group_rows, rows per sequence; `format` = kernels.cu's codes; `norms` (groups ×
/// chunks) as pim_quantize_groups' when given; `x_aligned`: x starts 16-byte aligned (`out` must). Groups of
/// one row: a warp per (row, chunk). Larger groups: their maxima first (a block per slab of a group's rows),
/// then every element, a thread per 4 (or 1). A block per group left most of the GPU waiting on loads: 86 µs for
/// a 4096 × 3072 input on an H200.
pub(super) fn launch_quantize(
    dev: &CudaDevice,
    (x, x_aligned): (&CudaView<f32>, bool),
    out: &CudaView<f32>,
    dims: [usize; 5],
    format: [i32; 4],
    norms: Option<&CudaView<f32>>,
) -> Result<()> {
    /// kernels.cu `GROUP_MAX_SLAB`.
    const SLAB: usize = 16;
    let [rows, k, cs, group_rows, rps] = dims;
    if rows == 0 || k == 0 {
        return Ok(());
    }
    let groups = rows.div_ceil(rps) * rps.div_ceil(group_rows);
    let tasks = groups * k.div_ceil(cs);
    let null = 0u64;
    let [format, e_bits, m_bits, bits] = format;
    let a = [rows as i32, k as i32, cs as i32, group_rows as i32, rps as i32];
    if group_rows.min(rps) <= 1 {
        let f = dev.get_or_load_custom_func("pim_quantize_groups", MODULE, PTX)?;
        let mut b = f.builder();
        b.arg(x).arg(out).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&format).arg(&e_bits).arg(&m_bits).arg(&bits);
        match norms {
            Some(v) => b.arg(v),
            None => b.arg(&null),
        };
        unsafe { b.launch(warp_tasks(tasks as u64)) }.w()?;
        return Ok(());
    }
    // 16-byte accesses where a run of 4 never crosses a row or a chunk and x is aligned.
    let vec = if x_aligned && k % 4 == 0 && cs % 4 == 0 { 4 } else { 1 };
    let gmax = dev.alloc_zeros::<f32>(tasks)?;
    let f = dev.get_or_load_custom_func("pim_group_max", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(x).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&gmax);
    let slabs = group_rows.min(rps).div_ceil(SLAB) as u32;
    unsafe { b.launch(LaunchConfig { grid_dim: (tasks as u32, slabs, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }) }.w()?;
    let f = dev.get_or_load_custom_func(&format!("pim_quantize_by_max{vec}_f{format}"), MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(x).arg(out).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&e_bits).arg(&m_bits).arg(&bits);
    b.arg(&gmax);
    match norms {
        Some(v) => b.arg(v),
        None => b.arg(&null),
    };
    let threads = (rows * (k / vec)) as u64;
    let cfg = LaunchConfig { grid_dim: (threads.div_ceil(THREADS as u64) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
    unsafe { b.launch(cfg) }.w()?;
    Ok(())
}

pub fn relative_noise(acc: &mut CudaStorage, la: &Layout, y: &CudaStorage, ly: &Layout, sigma: f32, key: PhiloxKey) -> Result<()> {
    let dev = acc.device().clone();
    let n = la.shape().elem_count();
    let y = view(y.as_cuda_slice::<f32>()?, ly);
    let acc = acc.as_cuda_slice_mut::<f32>()?;
    let mut acc = acc.slice_mut(la.start_offset()..la.start_offset() + n);
    let f = dev.get_or_load_custom_func("pim_accumulate_rel_noise", MODULE, PTX)?;
    let len = n as i64;
    let key = RoundKeys::from(key);
    let mut b = f.builder();
    b.arg(&mut acc).arg(&y).arg(&len).arg(&sigma).arg(&key);
    unsafe { b.launch(elements(n)) }.w()?;
    Ok(())
}

pub fn sym_adc(acc: &mut CudaStorage, la: &Layout, p: &CudaStorage, lp: &Layout, cs: usize, bits: u32) -> Result<()> {
    let dev = acc.device().clone();
    let (rows, n) = lp.shape().dims2()?;
    let p = view(p.as_cuda_slice::<f32>()?, lp);
    let acc = acc.as_cuda_slice_mut::<f32>()?;
    let mut acc = acc.slice_mut(la.start_offset()..la.start_offset() + rows * n);
    let f = dev.get_or_load_custom_func("pim_adc_sym_accumulate", MODULE, PTX)?;
    let tasks = (rows * n.div_ceil(cs)) as u64;
    let (rows, n, cs, bits) = (rows as i32, n as i32, cs as i32, bits as i32);
    let mut b = f.builder();
    b.arg(&mut acc).arg(&p).arg(&rows).arg(&n).arg(&cs).arg(&bits);
    unsafe { b.launch(warp_tasks(tasks)) }.w()?;
    Ok(())
}

pub fn fill_normal(storage: &mut CudaStorage, layout: &Layout, key: PhiloxKey) -> Result<()> {
    let dev = storage.device().clone();
    let n = layout.shape().elem_count();
    let out = storage.as_cuda_slice_mut::<f32>()?;
    let mut out = out.slice_mut(layout.start_offset()..layout.start_offset() + n);
    let f = dev.get_or_load_custom_func("pim_fill_normal", MODULE, PTX)?;
    let len = n as i64;
    let key = RoundKeys::from(key);
    let mut b = f.builder();
    b.arg(&mut out).arg(&len).arg(&key);
    unsafe { b.launch(elements(n)) }.w()?;
    Ok(())
}

/// kernels.cu `FINGERPRINT_BATCH` and `FINGERPRINT_BLOCK`: the weights per launch of pim_fingerprint_sums
/// and the elements each of its blocks sums.
const FINGERPRINT_BATCH: usize = 64;
const FINGERPRINT_BLOCK: usize = 8192;

/// kernels.cu `FingerprintBatch`, passed by value as the kernel's parameter (1.3 KB of the 4 KB allowed).
#[repr(C)]
#[derive(Clone, Copy)]
struct FingerprintBatch {
    w: [u64; FINGERPRINT_BATCH],
    n: [i64; FINGERPRINT_BATCH],
    first_block: [i32; FINGERPRINT_BATCH + 1],
    count: i32,
}

// Safety: a plain C struct of integers, laid out as kernels.cu's.
unsafe impl DeviceRepr for FingerprintBatch {}

/// tiling.rs `fingerprint_sum` of each weight (f32, on one GPU), read back together: a launch per 64 weights
/// and one host round trip.
pub fn fingerprint_sums(weights: &[&Tensor]) -> Result<Vec<u64>> {
    let Some(first) = weights.first() else { return Ok(Vec::new()) };
    let dev = super::pcm::device(first)?;
    let weights = weights.iter().map(|w| w.contiguous()).collect::<Result<Vec<_>>>()?;
    let sums = Tensor::zeros(weights.len(), DType::I64, first.device())?;
    let stream = dev.cuda_stream();
    let f = dev.get_or_load_custom_func("pim_fingerprint_sums", MODULE, PTX)?;
    for (batch, weights) in weights.chunks(FINGERPRINT_BATCH).enumerate() {
        let storages: Vec<_> = weights.iter().map(|w| w.storage_and_layout()).collect();
        let views = storages.iter().map(|(s, l)| super::pcm::view::<f32>(s, l)).collect::<Result<Vec<_>>>()?;
        let pointers: Vec<_> = views.iter().map(|v| v.device_ptr(&stream)).collect();
        let mut params = FingerprintBatch {
            w: [0; FINGERPRINT_BATCH],
            n: [0; FINGERPRINT_BATCH],
            first_block: [0; FINGERPRINT_BATCH + 1],
            count: weights.len() as i32,
        };
        let mut blocks = 0usize;
        for (i, (w, (pointer, _))) in weights.iter().zip(&pointers).enumerate() {
            params.w[i] = *pointer;
            params.n[i] = w.elem_count() as i64;
            params.first_block[i] = blocks as i32;
            blocks += w.elem_count().div_ceil(FINGERPRINT_BLOCK);
        }
        params.first_block[weights.len()] = blocks as i32;
        if blocks == 0 {
            continue;
        }
        let (ss, sl) = sums.storage_and_layout();
        let out = super::pcm::view::<i64>(&ss, sl)?.slice(batch * FINGERPRINT_BATCH..);
        let mut b = f.builder();
        b.arg(&params).arg(&out);
        let cfg = LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
        unsafe { b.launch(cfg) }.w()?;
        drop(b);
        drop(pointers);
    }
    Ok(sums.to_vec1::<i64>()?.into_iter().map(|s| s as u64).collect())
}

pub fn reram_program(storage: &mut CudaStorage, layout: &Layout, dims: [usize; 3], sigmas: [f32; 3], keys: [PhiloxKey; 2]) -> Result<()> {
    let [n, k, cs] = dims;
    let [levels, sigma_dev, sigma_add] = sigmas;
    let dev = storage.device().clone();
    let w = storage.as_cuda_slice_mut::<f32>()?;
    let mut w = w.slice_mut(layout.start_offset()..layout.start_offset() + n * k);
    if n == 0 || k == 0 {
        return Ok(());
    }
    let tiles = n.div_ceil(cs) * k.div_ceil(cs);
    let mut tmax = dev.alloc_zeros::<f32>(tiles)?;
    let (n_arg, k_arg, cs_arg) = (n as i32, k as i32, cs as i32);
    let f = dev.get_or_load_custom_func("pim_tile_max", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&mut w).arg(&n_arg).arg(&k_arg).arg(&cs_arg).arg(&mut tmax);
    unsafe { b.launch(tile_max_launch(tiles, cs.min(n))) }.w()?;
    let f = dev.get_or_load_custom_func("pim_reram_program", MODULE, PTX)?;
    let [d, a] = keys.map(RoundKeys::from);
    let mut b = f.builder();
    b.arg(&mut w).arg(&n_arg).arg(&k_arg).arg(&cs_arg).arg(&tmax).arg(&levels).arg(&sigma_dev).arg(&sigma_add).arg(&d).arg(&a);
    let grid = (k.div_ceil(THREADS as usize) as u32, n.min(2048) as u32, 1);
    unsafe { b.launch(LaunchConfig { grid_dim: grid, block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }) }.w()?;
    Ok(())
}
