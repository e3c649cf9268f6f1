//! The AIHWKIT PCM tile's per-call work on a GPU (the `pim_pcm_*` kernels of pcm_aihwkit.cuh, pcm_retry.cuh
//! and pcm_training.cuh): the chip read at a drift time, and a layer's tiles through the IO model (the DAC of
//! every input chunk, one batched GEMM, the output converters with bound management); the weights of a
//! hardware-aware training forward and the post-update clip. These launch on the storages of tensors the
//! caller made for the call (contiguous, on one GPU): several of them are written by one kernel, which
//! candle's one-output custom ops cannot express.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaView, DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDType, CudaDevice, WrapErr};
use candle_core::op::BackpropOp;
use candle_core::{CudaStorage, DType, Layout, Result, Shape, Storage, Tensor, bail};

use std::sync::{Arc, Mutex};

use super::PhiloxKey;
use super::cuda::{MODULE, PTX, RoundKeys, THREADS, WARPS, elements};

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

pub(crate) fn device(t: &Tensor) -> Result<CudaDevice> {
    let Storage::Cuda(s) = &*t.storage_and_layout().0 else { bail!("PCM GPU kernels take CUDA tensors") };
    Ok(s.device().clone())
}

/// Each device's drifted conductances and read-noise deviations at a drift time, `[4, n]` (g_d+, g_d−, σ+,
/// σ−), from the programmed planes `[4, n]` (g+, g−, ν+, ν−): what every read at that time shares.
pub fn drift(planes: &Tensor, log_drift: f32, read_sigma_factor: f32, g_max: f32) -> Result<Tensor> {
    let n = planes.elem_count() / 4;
    let dev = device(planes)?;
    // Safety: the kernel writes all 4·n elements.
    let drifted = unsafe { uninit::<f32>(&dev, planes.shape().clone()) }?;
    let f = dev.get_or_load_custom_func("pim_pcm_drift", MODULE, PTX)?;
    let ((ps, pl), (ds, dl)) = (planes.storage_and_layout(), drifted.storage_and_layout());
    let (p, d) = (view::<f32>(&ps, pl)?, view::<f32>(&ds, dl)?);
    let len = n as i64;
    let mut b = f.builder();
    b.arg(&p).arg(&d).arg(&len).arg(&log_drift).arg(&read_sigma_factor).arg(&g_max);
    unsafe { b.launch(elements(n)) }.w()?;
    drop(b);
    drop((ps, ds));
    Ok(drifted)
}

/// The normalised weights `wc` `[n]` of one read from the drifted planes ([`drift`]), with read noise from
/// `key` when `noisy`.
pub fn read(drifted: &Tensor, noisy: bool, g_max: f32, key: PhiloxKey) -> Result<Tensor> {
    let n = drifted.elem_count() / 4;
    let dev = device(drifted)?;
    // Safety: the kernel writes all n elements.
    let wc = unsafe { uninit::<f32>(&dev, n) }?;
    let f = dev.get_or_load_custom_func("pim_pcm_read", MODULE, PTX)?;
    let ((ds, dl), (ws, wl)) = (drifted.storage_and_layout(), wc.storage_and_layout());
    let (d, w) = (view::<f32>(&ds, dl)?, view::<f32>(&ws, wl)?);
    let (len, noisy) = (n as i64, noisy as i32);
    let key = RoundKeys::from(key);
    let mut b = f.builder();
    b.arg(&d).arg(&w).arg(&len).arg(&noisy).arg(&g_max).arg(&key);
    unsafe { b.launch(elements(n.div_ceil(2))) }.w()?;
    drop(b);
    drop((ds, ws));
    Ok(wc)
}

/// A new tensor on `dev` that the caller's kernels write in full before anything reads it.
///
/// # Safety
/// Every element must be written before it is read.
pub(crate) unsafe fn uninit<T: CudaDType + DeviceRepr>(dev: &CudaDevice, shape: impl Into<Shape>) -> Result<Tensor> {
    let shape = shape.into();
    let slice = unsafe { dev.alloc::<T>(shape.elem_count()) }?;
    Ok(Tensor::from_storage(Storage::Cuda(CudaStorage::wrap_cuda_slice(slice, dev.clone())), shape, BackpropOp::none(), false))
}

/// The forward IO model of the tiles (pcm_aihwkit/io.rs): DAC, output noise, ADC, bound management.
#[derive(Debug, Clone, Copy)]
pub struct Io {
    pub abs_max: bool,
    pub inp_step: f32,
    pub out_noise: f32,
    pub out_step: f32,
    pub out_bound: f32,
    pub iterative_bm: bool,
}

/// A layer's tiles: input chunks of `tc` columns (the last one possibly narrower), each cut into tiles of
/// `tw` outputs.
#[derive(Debug, Clone, Copy)]
pub struct Tiles {
    pub tc: usize,
    pub tw: usize,
}

/// The widest tile whose outputs the converter kernel holds in registers (pcm_aihwkit.cuh `HELD` · 4 · 32).
const HELD_OUTPUTS: usize = 512;

/// Threads per block of the bound-management kernel (pcm_retry.cuh `RETRY_THREADS`), and the outputs of
/// one of its units (`RETRY_SLAB`).
const RETRY_THREADS: u32 = 128;
const RETRY_SLAB: usize = 32;

/// Blocks of the bound-management kernel at most: it strides over a count only the GPU knows, so the grid is
/// fixed; 8 blocks per SM of an H100 or H200.
const RETRY_BLOCKS: usize = 132 * 8;

/// A layer input `x` `[rows, k]` (contiguous f32) through the DAC of every input chunk of `tc` columns (io.rs
/// `chunk` + `dac`): `xq` `[rows, k]`, each (row, chunk) divided by its input scale, and the scales
/// `[chunks, rows]` (0 for an all-zero chunk row, else max |x| (abs-max) or 1).
#[derive(Debug)]
pub struct Dac {
    /// The input, held so that its storage stays the one [`Dac::is_for`] compares.
    x: Tensor,
    settings: DacSettings,
    xq: Tensor,
    scale: Tensor,
}

impl Dac {
    pub fn new(x: &Tensor, tc: usize, io: Io) -> Result<Dac> {
        let (rows, k) = x.dims2()?;
        let chunks = k.div_ceil(tc.max(1));
        if rows == 0 || k == 0 {
            let (xq, scale) = (x.zeros_like()?, Tensor::zeros(chunks * rows, DType::F32, x.device())?);
            return Ok(Dac { x: x.clone(), settings: DacSettings::new(tc, io), xq, scale });
        }
        let dev = device(x)?;
        // Safety: the DAC writes every element of both.
        let (xq, scale) = unsafe { (uninit::<f32>(&dev, (rows, k))?, uninit::<f32>(&dev, chunks * rows)?) };
        let f = dev.get_or_load_custom_func(&vector_kernel("pim_pcm_dac", tc, k, &[x]), MODULE, PTX)?;
        let ((xs, xl), (qs, ql), (ss, sl)) = (x.storage_and_layout(), xq.storage_and_layout(), scale.storage_and_layout());
        let (xv, qv, sv) = (view::<f32>(&xs, xl)?, view::<f32>(&qs, ql)?, view::<f32>(&ss, sl)?);
        let a = [rows as i32, k as i32, tc as i32, chunks as i32, io.abs_max as i32];
        let mut b = f.builder();
        b.arg(&xv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&qv).arg(&sv).arg(&a[4]).arg(&io.inp_step);
        unsafe { b.launch(warp_rows(rows * chunks)) }.w()?;
        drop(b);
        drop((xs, qs, ss));
        Ok(Dac { x: x.clone(), settings: DacSettings::new(tc, io), xq, scale })
    }

    /// Whether this is `x` through the DAC of chunks of `tc` and `io`'s input converter: the same storage
    /// and layout, the same settings.
    pub fn is_for(&self, x: &Tensor, tc: usize, io: Io) -> bool {
        self.settings == DacSettings::new(tc, io) && same_elements(&self.x, x)
    }
}

/// What a [`Dac`] depends on besides its input: the chunk width and the input converter (the step by its bits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DacSettings {
    tc: usize,
    abs_max: bool,
    inp_step_bits: u32,
}

impl DacSettings {
    fn new(tc: usize, io: Io) -> DacSettings {
        DacSettings { tc, abs_max: io.abs_max, inp_step_bits: io.inp_step.to_bits() }
    }
}

/// Whether two tensors are the same elements: the same storage and layout (reshaped and detached views of one
/// tensor are).
fn same_elements(a: &Tensor, b: &Tensor) -> bool {
    let identity = |t: &Tensor| {
        let (storage, layout) = t.storage_and_layout();
        (&*storage as *const Storage as usize, layout.clone())
    };
    identity(a) == identity(b)
}

/// The value a tile model last computed from a layer input (its DAC pass), for the next call with the same
/// input and settings `S`: a layer's query, key and value share one input. A clone starts empty.
#[derive(Debug)]
pub struct InputCache<S, V>(Mutex<Option<(Tensor, S, V)>>);

impl<S, V> Default for InputCache<S, V> {
    fn default() -> Self {
        InputCache(Mutex::new(None))
    }
}

impl<S, V> Clone for InputCache<S, V> {
    fn clone(&self) -> Self {
        InputCache::default()
    }
}

impl<S: PartialEq + Copy, V: Clone> InputCache<S, V> {
    /// The last call's value where that was the same input and settings, else `make`'s.
    pub fn get_or_make(&self, x: &Tensor, settings: S, make: impl FnOnce() -> Result<V>) -> Result<V> {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // A variable's storage may be written in place between two calls: never reused.
        let hit = |(input, s, _): &&(Tensor, S, V)| !x.is_variable() && *s == settings && same_elements(input, x);
        if let Some((_, _, value)) = last.as_ref().filter(hit) {
            return Ok(value.clone());
        }
        // The old entry goes first: two of the largest inputs need not be held at once.
        *last = None;
        let value = make()?;
        *last = Some((x.clone(), settings, value.clone()));
        Ok(value)
    }
}

/// The AIHWKIT tiles' DAC passes, by chunk width and input converter.
pub type DacCache = InputCache<DacSettings, Arc<Dac>>;

impl DacCache {
    pub fn get(&self, x: &Tensor, tc: usize, io: Io) -> Result<Arc<Dac>> {
        self.get_or_make(x, DacSettings::new(tc, io), || Ok(Arc::new(Dac::new(x, tc, io)?)))
    }
}

/// A layer's tiles through the IO model (io.rs `tile`, mod.rs `forward`): `x` `[rows, k]` (contiguous f32)
/// through the DAC per (row, chunk), as `dac` holds it ([`Dac`]); each chunk's product with its tiles of `wc` (chunk-major: chunk c the
/// `[n, kt]` matrix at n·k0), in one batched GEMM; output noise, ADC and bound management per (row, tile);
/// each tile's outputs times `factor` `[chunks, n]`, summed over the chunks: `[rows, n]`. Noise from `key`.
/// With `with_pass`, also the ADC's pass mask of every chunk, `[chunks, rows, n]` u8 (hardware-aware training;
/// bytes, not floats: a quarter of the traffic of a mask written every forward and read every backward).
/// Bound management runs on the GPU from a list of the saturated (row, tile)s that only the GPU reads: no
/// host round trip.
pub fn tiles_forward(
    x: &Tensor,
    dac: &Dac,
    wc: &Tensor,
    factor: &Tensor,
    tiles: Tiles,
    io: Io,
    key: PhiloxKey,
    with_pass: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let (rows, k) = x.dims2()?;
    let (chunks, n) = factor.dims2()?;
    let Tiles { tc, tw } = tiles;
    if tc == 0 || tw == 0 || chunks != k.div_ceil(tc) || wc.elem_count() != n * k {
        bail!("PCM tiles: x {:?}, weights {:?} and factors {:?} do not fit chunks of {tc}", x.shape(), wc.shape(), factor.shape());
    }
    if !dac.is_for(x, tc, io) {
        bail!("PCM tiles: the DAC'd input is not x {:?} in chunks of {tc}", x.shape());
    }
    if rows == 0 || n == 0 || k == 0 {
        let pass = with_pass.then(|| Tensor::ones((chunks, rows, n), DType::U8, x.device())).transpose()?;
        return Ok((Tensor::zeros((rows, n), DType::F32, x.device())?, pass));
    }
    let dev = device(x)?;
    let row_tiles = n.div_ceil(tw);
    // Safety: the converter writes every output of a tile it holds in registers; a wider tile adds its chunks
    // into zeros.
    let out = match tw <= HELD_OUTPUTS {
        true => unsafe { uninit::<f32>(&dev, (rows, n))? },
        false => Tensor::zeros((rows, n), DType::F32, x.device())?,
    };
    // Safety: the GEMMs write every element of y, the finalize kernel every pending flag and, with the
    // retries, every pass mask element; the retry list is read only up to the count the finalize kernel leaves.
    let pass = with_pass.then(|| unsafe { uninit::<u8>(&dev, (chunks, rows, n)) }).transpose()?;
    let (xq, scale) = (&dac.xq, &dac.scale);
    let (y, pending, items) = unsafe {
        (uninit::<f32>(&dev, (chunks, rows, n))?, uninit::<u32>(&dev, row_tiles * chunks * rows)?, uninit::<u32>(&dev, rows * row_tiles)?)
    };
    // The retry count, then each retry item's finished units (the bound-management kernel's).
    let count = Tensor::zeros(1 + rows * row_tiles, DType::U32, x.device())?;
    super::gemm::chunk_products(xq, wc, true, tc, &y)?;
    let ((ys, yl), (fs, fl), (os, ol)) = (y.storage_and_layout(), factor.storage_and_layout(), out.storage_and_layout());
    let ((ss, sl), (ps, pl)) = (scale.storage_and_layout(), pending.storage_and_layout());
    let ((is, il), (cs, cl)) = (items.storage_and_layout(), count.storage_and_layout());
    let (yv, fv, ov, sv) = (view::<f32>(&ys, yl)?, view::<f32>(&fs, fl)?, view::<f32>(&os, ol)?, view::<f32>(&ss, sl)?);
    let (pv, iv, counts) = (view::<u32>(&ps, pl)?, view::<u32>(&is, il)?, view::<u32>(&cs, cl)?);
    let (cv, done) = (counts.slice(0..1), counts.slice(1..));
    let pass_storage = pass.as_ref().map(|t| t.storage_and_layout());
    let pass_view = pass_storage.as_ref().map(|(s, l)| view::<u8>(s, l)).transpose()?;
    let null = 0u64;
    let rk = RoundKeys::from(key);
    let a = [rows as i32, n as i32, tw as i32, chunks as i32, io.iterative_bm as i32];
    let f = dev.get_or_load_custom_func(&finalize_kernel(tw, n, factor, io), MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&yv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&sv).arg(&fv).arg(&ov);
    match &pass_view {
        Some(v) => b.arg(v),
        None => b.arg(&null),
    };
    b.arg(&pv).arg(&iv).arg(&cv).arg(&a[4]).arg(&io.out_noise).arg(&io.out_step).arg(&io.out_bound);
    b.arg(&rk);
    unsafe { b.launch(super::cuda::warp_tasks((rows * row_tiles) as u64)) }.w()?;
    drop(b);
    if io.iterative_bm {
        let ((xs, xl), (ws, wl)) = (x.storage_and_layout(), wc.storage_and_layout());
        let (xv, wv) = (view::<f32>(&xs, xl)?, view::<f32>(&ws, wl)?);
        let a = [rows as i32, k as i32, tc as i32, chunks as i32, n as i32, tw as i32];
        let f = dev.get_or_load_custom_func("pim_pcm_retry", MODULE, PTX)?;
        let mut b = f.builder();
        b.arg(&xv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&wv).arg(&a[4]).arg(&a[5]).arg(&sv).arg(&fv).arg(&yv).arg(&ov);
        match &pass_view {
            Some(v) => b.arg(v),
            None => b.arg(&null),
        };
        b.arg(&pv).arg(&iv).arg(&cv).arg(&done).arg(&io.inp_step).arg(&io.out_noise).arg(&io.out_step).arg(&io.out_bound);
        b.arg(&rk);
        let units = rows * row_tiles * chunks * tw.div_ceil(RETRY_SLAB);
        let blocks = RETRY_BLOCKS.min(units) as u32;
        let shared = (tc.min(k) * std::mem::size_of::<f32>()) as u32;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (RETRY_THREADS, 1, 1), shared_mem_bytes: shared };
        unsafe { b.launch(cfg) }.w()?;
    }
    drop(pass_view);
    drop(pass_storage);
    drop((ys, fs, os, ss, ps, is, cs));
    Ok((out, pass))
}

/// The form of a DAC or converter kernel for chunks or tiles of `width` columns in rows of `len`: its vector
/// form (`_vec1`, `_vec2`, `_vec4`: float4s of 128·V columns per warp) where `width` is 128, 256 or 512, `len` a
/// multiple of 4 and the `operands` other than the call's own fresh tensors start 16-byte aligned (the presets'
/// shapes: roughly half the instructions), else the general one.
fn vector_kernel(name: &str, width: usize, len: usize, operands: &[&Tensor]) -> String {
    let aligned = operands.iter().all(|t| t.is_contiguous() && t.layout().start_offset() % 4 == 0);
    match (width, len % 4, aligned) {
        (128 | 256 | 512, 0, true) => format!("{name}_vec{}", width / 128),
        _ => name.to_string(),
    }
}

/// The output converter for tiles of `tw` outputs: a vector form where the shapes allow, its `_full` form where
/// output noise and the step are both on (pcm_aihwkit.cuh `PCM_FINALIZE_VEC`).
fn finalize_kernel(tw: usize, n: usize, factor: &Tensor, io: Io) -> String {
    let name = vector_kernel("pim_pcm_finalize", tw, n, &[factor]);
    match name != "pim_pcm_finalize" && io.out_noise > 0.0 && io.out_step > 0.0 {
        true => format!("{name}_full"),
        false => name,
    }
}

/// The largest chunk the bound-management kernel holds in shared memory (48 KiB, the default limit).
pub const MAX_CHUNK: usize = 12 * 1024;

/// The gradient `grad` `[rows, n]` through every chunk's pass mask `pass` `[chunks, rows, n]` (u8, from
/// [`tiles_forward`]; hardware-aware training's backward): `[chunks, rows, n]`. One pass; candle's
/// broadcasting multiply indexes every element through the strides.
pub fn masked_gradient(pass: &Tensor, grad: &Tensor) -> Result<Tensor> {
    let (chunks, rows, n) = pass.dims3()?;
    if pass.dtype() != DType::U8 {
        bail!("masked gradient: the pass mask is {:?}, where tiles_forward writes u8", pass.dtype());
    }
    if grad.dims() != [rows, n] {
        bail!("masked gradient: pass {:?} and gradient {:?} do not fit", pass.shape(), grad.shape());
    }
    let (pass, grad) = (pass.contiguous()?, grad.to_dtype(DType::F32)?.contiguous()?);
    let total = chunks * rows * n;
    if total == 0 {
        return Tensor::zeros((chunks, rows, n), DType::F32, pass.device());
    }
    let dev = device(&pass)?;
    // Safety: the kernel writes every element.
    let out = unsafe { uninit::<f32>(&dev, (chunks, rows, n)) }?;
    let ((ps, pl), (gs, gl), (os, ol)) = (pass.storage_and_layout(), grad.storage_and_layout(), out.storage_and_layout());
    let (pv, gv, ov) = (view::<u8>(&ps, pl)?, view::<f32>(&gs, gl)?, view::<f32>(&os, ol)?);
    let (per_chunk, chunks_arg) = ((rows * n) as i64, chunks as i32);
    let f = dev.get_or_load_custom_func("pim_pcm_mask_grad", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&pv).arg(&gv).arg(&ov).arg(&per_chunk).arg(&chunks_arg);
    unsafe { b.launch(elements(rows * n)) }.w()?;
    drop(b);
    drop((ps, gs, os));
    Ok(out)
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
    if n == 0 || k == 0 {
        return Ok((
            Tensor::zeros(n * k, DType::F32, dev)?,
            Tensor::zeros(n * k, DType::F32, dev)?,
            Tensor::zeros((chunks, n), DType::F32, dev)?,
        ));
    }
    let cuda_dev = device(&w)?;
    // Safety: pim_pcm_row_max writes every row maximum, pim_pcm_hwa_weights every weight and factor.
    let (wn, used, factor, rmax) = unsafe {
        (
            uninit::<f32>(&cuda_dev, n * k)?,
            uninit::<f32>(&cuda_dev, n * k)?,
            uninit::<f32>(&cuda_dev, (chunks, n))?,
            uninit::<f32>(&cuda_dev, n * chunks)?,
        )
    };
    let ((ws, wl), (ms, ml)) = (w.storage_and_layout(), rmax.storage_and_layout());
    let ((ns, nl), (us, ul), (fs, fl)) = (wn.storage_and_layout(), used.storage_and_layout(), factor.storage_and_layout());
    let (wv, mv) = (view::<f32>(&ws, wl)?, view::<f32>(&ms, ml)?);
    let (nv, uv, fv) = (view::<f32>(&ns, nl)?, view::<f32>(&us, ul)?, view::<f32>(&fs, fl)?);
    let a = [n as i32, k as i32, tr as i32, tc as i32, chunks as i32, per_row as i32];
    let rk = RoundKeys::from(key);
    // Each tile's maximum once, not once per row of the tile.
    let tmax = Tensor::zeros(n.div_ceil(tr) * chunks, DType::F32, dev)?;
    let (ts, tl) = tmax.storage_and_layout();
    let tv = view::<f32>(&ts, tl)?;
    row_max(&cuda_dev, &wv, [n, k, tc, chunks, tr], &mv, &tv)?;
    let f = cuda_dev.get_or_load_custom_func("pim_pcm_hwa_weights", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&wv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&mv).arg(&tv).arg(&a[5]).arg(&noise);
    b.arg(&rk).arg(&nv).arg(&uv).arg(&fv);
    unsafe { b.launch(warp_rows(n * chunks)) }.w()?;
    drop(b);
    drop((ws, ms, ns, us, fs, ts));
    Ok((wn, used, factor))
}

/// `rmax[row · chunks + c]` = max |w| over the columns of tile column `c` (`tc` wide) of each row of `w`
/// `[n, k]`, and `tmax` (zeros on entry) each tile's maximum, for tiles of `tr` rows.
fn row_max(dev: &CudaDevice, w: &CudaView<f32>, dims: [usize; 5], rmax: &CudaView<f32>, tmax: &CudaView<f32>) -> Result<()> {
    let [n, k, tc, chunks, tr] = dims;
    let a = [n as i32, k as i32, tc as i32, chunks as i32, tr as i32];
    let f = dev.get_or_load_custom_func("pim_pcm_row_max", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(w).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(rmax).arg(&a[4]).arg(tmax);
    unsafe { b.launch(warp_rows(n * chunks)) }.w()?;
    Ok(())
}

/// remap.rs `clip_and_remap` on a GPU: the effective weights `w` `[n, k]` after one post-update step with
/// tiles of `core_size` (0: the whole layer), as a new tensor. Two kernels, each a block per (tile, slab of
/// `SLAB` rows): the row maxima and the slabs' partial sums, then the tile's bound and the clip.
pub fn clip_and_remap(w: &Tensor, core_size: usize, clip_sigma: f32) -> Result<Tensor> {
    /// Rows per block (pcm_training.cuh `CLIP_SLAB`), and threads per block (`CLIP_THREADS`).
    const SLAB: usize = 8;
    const CLIP_THREADS: u32 = 256;
    let (n, k) = w.dims2()?;
    let w = w.to_dtype(DType::F32)?.contiguous()?;
    if n == 0 || k == 0 {
        return w.copy();
    }
    let (tr, tc) = if core_size == 0 { (n, k) } else { (core_size, core_size) };
    let (row_tiles, chunks) = (n.div_ceil(tr), k.div_ceil(tc));
    let (tiles, slabs) = (row_tiles * chunks, tr.div_ceil(SLAB));
    let cuda_dev = device(&w)?;
    // Safety: every element of each is written by its kernel below (clip_apply writes every weight, clipped
    // or not; every (tile, slab) block writes its rows' maxima and its partial sums).
    let (out, rmax, part) =
        unsafe { (uninit::<f32>(&cuda_dev, (n, k))?, uninit::<f32>(&cuda_dev, n * chunks)?, uninit::<f64>(&cuda_dev, tiles * slabs * 3)?) };
    let ((ws, wl), (os, ol), (ms, ml)) = (w.storage_and_layout(), out.storage_and_layout(), rmax.storage_and_layout());
    let (ps, pl) = part.storage_and_layout();
    let (wv, ov, mv, pv) = (view::<f32>(&ws, wl)?, view::<f32>(&os, ol)?, view::<f32>(&ms, ml)?, view::<f64>(&ps, pl)?);
    let a = [n as i32, k as i32, tr as i32, tc as i32, chunks as i32];
    let cfg = LaunchConfig { grid_dim: (tiles as u32, slabs as u32, 1), block_dim: (CLIP_THREADS, 1, 1), shared_mem_bytes: 0 };
    let f = cuda_dev.get_or_load_custom_func("pim_pcm_clip_stats", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&wv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&mv).arg(&pv);
    unsafe { b.launch(cfg) }.w()?;
    let f = cuda_dev.get_or_load_custom_func("pim_pcm_clip_apply", MODULE, PTX)?;
    let mut b = f.builder();
    b.arg(&wv).arg(&ov).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&a[4]).arg(&mv).arg(&pv).arg(&clip_sigma);
    unsafe { b.launch(cfg) }.w()?;
    drop(b);
    drop((ws, os, ms, ps));
    Ok(out)
}
