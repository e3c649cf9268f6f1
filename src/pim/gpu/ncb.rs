//! NewComputeBench's PCM tile on a GPU (pcm_ncb.cuh `pim_ncb_*`, pcm_ncb.rs for the numerics): the DAC with
//! its per-group input norms, the programming of one forward call, every K-chunk's tile products, and the
//! output step over all K-chunks. Like gpu/pcm.rs, these launch on the storages of tensors made for the call,
//! since two of the kernels write two outputs.

use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{DType, Result, Tensor};

use super::PhiloxKey;
use super::cuda::{MODULE, PTX, RoundKeys, THREADS, launch_quantize, tile_max_launch, warp_tasks};
use super::pcm::{device, uninit, view};

/// How the DAC groups a layer input `[rows, K]`: runs of `group_rows` rows within each sequence of
/// `sequence_rows` rows share one scale per K-chunk (1 and 1: per token).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Groups {
    pub cs: usize,
    pub group_rows: usize,
    pub sequence_rows: usize,
}

impl Groups {
    fn count(&self, rows: usize) -> usize {
        rows.div_ceil(self.sequence_rows) * self.sequence_rows.div_ceil(self.group_rows)
    }
}

/// The NCB DAC of `x` `[rows, k]` (`bits`: `None` = normalise only): the converted inputs and the norm
/// `x_max` of every (group, K-chunk).
pub fn dac(x: &Tensor, groups: Groups, bits: Option<u32>) -> Result<(Tensor, Tensor)> {
    let (rows, k) = x.dims2()?;
    let chunks = k.div_ceil(groups.cs);
    let x = x.contiguous()?;
    // Safety: launch_quantize writes every element.
    let xq = unsafe { uninit::<f32>(&device(&x)?, (rows, k)) }?;
    let norms = Tensor::ones(groups.count(rows) * chunks, DType::F32, x.device())?;
    let ((xs, xl), (qs, ql), (ns, nl)) = (x.storage_and_layout(), xq.storage_and_layout(), norms.storage_and_layout());
    let (xv, qv, nv) = (view::<f32>(&xs, xl)?, view::<f32>(&qs, ql)?, view::<f32>(&ns, nl)?);
    let format = match bits {
        Some(b) => [3, 0, 0, b as i32],
        None => [4, 0, 0, 0],
    };
    let dims = [rows, k, groups.cs, groups.group_rows, groups.sequence_rows];
    let aligned = x.layout().start_offset() % 4 == 0;
    launch_quantize(&device(&x)?, (&xv, aligned), &qv, dims, format, Some(&nv))?;
    drop((xs, qs, ns));
    Ok((xq, norms))
}

/// The ncb tiles' DAC passes ([`dac`]: the converted input and its norms), by grouping and bits.
pub type DacCache = super::pcm::InputCache<(Groups, Option<u32>), (Tensor, Tensor)>;

impl DacCache {
    pub fn get(&self, x: &Tensor, groups: Groups, bits: Option<u32>) -> Result<(Tensor, Tensor)> {
        self.get_or_make(x, (groups, bits), || dac(x, groups, bits))
    }
}

/// The weights `w` `[n, k]` as one forward call programs them (normalised to ±`g_max` per cs × cs tile, plus
/// `noise_scale`·σ·ξ programming noise from `noise` when given), and each tile's de-scale `w_max/g_max`
/// `[row tiles × K-chunks]`.
pub fn program(w: &Tensor, cs: usize, g_max: f32, noise: Option<(f32, PhiloxKey)>) -> Result<(Tensor, Tensor)> {
    let (n, k) = w.dims2()?;
    let tiles = n.div_ceil(cs) * k.div_ceil(cs);
    let w = w.to_dtype(DType::F32)?.contiguous()?;
    let scales = Tensor::ones(tiles, DType::F32, w.device())?;
    if tiles == 0 {
        return Ok((Tensor::zeros((n, k), DType::F32, w.device())?, scales));
    }
    let dev = device(&w)?;
    // Safety: pim_ncb_program writes every weight.
    let wp = unsafe { uninit::<f32>(&dev, (n, k)) }?;
    let tmax = Tensor::zeros(tiles, DType::F32, w.device())?;
    let ((ws, wl), (ps, pl)) = (w.storage_and_layout(), wp.storage_and_layout());
    let ((ms, ml), (ss, sl)) = (tmax.storage_and_layout(), scales.storage_and_layout());
    let (wv, pv, mv, sv) = (view::<f32>(&ws, wl)?, view::<f32>(&ps, pl)?, view::<f32>(&ms, ml)?, view::<f32>(&ss, sl)?);
    let a = [n as i32, k as i32, cs as i32];
    let f = dev.get_or_load_custom_func("pim_tile_max", MODULE, PTX)?;
    let mut l = f.builder();
    l.arg(&wv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&mv);
    unsafe { l.launch(tile_max_launch(tiles, cs.min(n))) }.w()?;
    drop(l);
    let (scale, key) = noise.map_or((0.0, RoundKeys::new([0; 2], 0)), |(s, k)| (s, RoundKeys::from(k)));
    let f = dev.get_or_load_custom_func("pim_ncb_program", MODULE, PTX)?;
    let mut l = f.builder();
    l.arg(&wv).arg(&pv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&mv).arg(&g_max).arg(&scale);
    l.arg(&key).arg(&sv);
    // A thread per four columns.
    let grid = (k.div_ceil(4 * THREADS as usize) as u32, n.min(2048) as u32, 1);
    unsafe { l.launch(LaunchConfig { grid_dim: grid, block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }) }.w()?;
    drop(l);
    drop((ws, ps, ms, ss));
    Ok((wp, scales))
}

/// Every K-chunk's product of `x` `[rows, k]` with `w` `[n, k]` (chunks of `cs` columns; a narrower last
/// chunk is as if padded with zeros): `[chunks, rows, n]`, straight from the row-major operands.
pub fn chunk_products(x: &Tensor, w: &Tensor, cs: usize) -> Result<Tensor> {
    let (rows, k) = x.dims2()?;
    let n = w.dim(0)?;
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    let chunks = k.div_ceil(cs);
    if rows == 0 || n == 0 || k == 0 {
        return Tensor::zeros((chunks, rows, n), DType::F32, x.device());
    }
    // Safety: the products write every element.
    let out = unsafe { uninit::<f32>(&device(&x)?, (chunks, rows, n)) }?;
    super::gemm::chunk_products(&x, &w, false, cs, &out)?;
    Ok(out)
}

/// The optional analog terms of the outputs, each `[chunks, rows, n]`: read noise (the variance `x_a²·|w_p|`
/// and its key), IR drop (`|x_a|·|w_p|`, the position-weighted product, and γ·cs), output noise (its key).
pub struct Terms<'a> {
    pub read: Option<(&'a Tensor, PhiloxKey)>,
    pub ir: Option<(&'a Tensor, &'a Tensor, f32)>,
    pub out: Option<PhiloxKey>,
}

/// The de-scale of a chunk: the input norms `[groups × chunks]` from [`dac`] and the weight scales from
/// [`program`].
pub struct Scales<'a> {
    pub groups: Groups,
    pub norms: &'a Tensor,
    pub weights: &'a Tensor,
}

/// The layer output `[rows, n]`: `Σ_chunks descale(ADC(r + terms))` per (row, N-tile), from the tile products
/// of every chunk `r` `[chunks, rows, n]` (overwritten). `adc`: the converter's bits and clamp, or none.
pub fn output(r: &Tensor, scales: &Scales, terms: &Terms, adc: Option<(u32, f32)>) -> Result<Tensor> {
    let (chunks, rows, n) = r.dims3()?;
    let cs = scales.groups.cs;
    let plain = terms.read.is_none() && terms.ir.is_none() && terms.out.is_none();
    // The vector kernel's 16-byte loads need rows of a multiple of 4 floats from an aligned start.
    let aligned = r.is_contiguous() && r.layout().start_offset() % 4 == 0 && n % 4 == 0;
    if plain && aligned && matches!(cs, 128 | 256 | 512) && rows * n > 0 {
        return output_vec(r, scales, adc);
    }
    let acc = Tensor::zeros((rows, n), DType::F32, r.device())?;
    let kernel = if plain { "pim_ncb_output_plain" } else { "pim_ncb_output" };
    let f = device(r)?.get_or_load_custom_func(kernel, MODULE, PTX)?;
    let ((as_, al), (rs, rl)) = (acc.storage_and_layout(), r.storage_and_layout());
    let ((ns, nl), (ss, sl)) = (scales.norms.storage_and_layout(), scales.weights.storage_and_layout());
    let (av, rv, nv, sv) = (view::<f32>(&as_, al)?, view::<f32>(&rs, rl)?, view::<f32>(&ns, nl)?, view::<f32>(&ss, sl)?);
    let read = terms.read.map(|(t, key)| (t.storage_and_layout(), key));
    let read_view = read.as_ref().map(|((s, l), _)| view::<f32>(s, l)).transpose()?;
    let ir = terms.ir.map(|(a, xs, gamma_n)| (a.storage_and_layout(), xs.storage_and_layout(), gamma_n));
    let ir_views =
        ir.as_ref().map(|((a, al), (x, xl), _)| Ok::<_, candle_core::Error>((view::<f32>(a, al)?, view::<f32>(x, xl)?))).transpose()?;
    let null = 0u64;
    let no_key = PhiloxKey { key: [0; 2], stream: 0 };
    let read_key = RoundKeys::from(read.as_ref().map_or(no_key, |(_, k)| *k));
    let out_key = RoundKeys::from(terms.out.unwrap_or(no_key));
    let ir_gamma_n = ir.as_ref().map_or(0.0, |(_, _, g)| *g);
    let (bits, clamp) = adc.unwrap_or((0, 0.0));
    let a = [rows as i32, n as i32, cs as i32, chunks as i32, scales.groups.sequence_rows as i32, scales.groups.group_rows as i32];
    let (out_noise, bits) = (terms.out.is_some() as i32, bits as i32);
    let mut l = f.builder();
    l.arg(&av).arg(&rv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&nv).arg(&a[4]).arg(&a[5]).arg(&sv);
    match &read_view {
        Some(v) => l.arg(v),
        None => l.arg(&null),
    };
    l.arg(&read_key);
    match &ir_views {
        Some((a, x)) => l.arg(a).arg(x),
        None => l.arg(&null).arg(&null),
    };
    l.arg(&ir_gamma_n).arg(&out_noise).arg(&out_key).arg(&bits).arg(&clamp);
    unsafe { l.launch(warp_tasks((rows * n.div_ceil(cs)) as u64)) }.w()?;
    drop(l);
    drop((as_, rs, ns, ss, read, ir));
    Ok(acc)
}

/// [`output`] without noise terms for tiles of 128, 256 or 512 outputs and rows of a multiple of 4 (the presets'
/// shapes): a lane holds a tile row's outputs as float4s, so a chunk's row is a few 16-byte loads per lane, with
/// no per-output bounds or index arithmetic. Half the instructions of the general kernel, on the same bits.
fn output_vec(r: &Tensor, scales: &Scales, adc: Option<(u32, f32)>) -> Result<Tensor> {
    let (chunks, rows, n) = r.dims3()?;
    let cs = scales.groups.cs;
    let dev = device(r)?;
    // Safety: every output belongs to one (row, tile), whose warp writes it.
    let acc = unsafe { uninit::<f32>(&dev, (rows, n)) }?;
    let f = dev.get_or_load_custom_func(&format!("pim_ncb_output_vec{}", cs / 128), MODULE, PTX)?;
    let ((as_, al), (rs, rl)) = (acc.storage_and_layout(), r.storage_and_layout());
    let ((ns, nl), (ss, sl)) = (scales.norms.storage_and_layout(), scales.weights.storage_and_layout());
    let (av, rv, nv, sv) = (view::<f32>(&as_, al)?, view::<f32>(&rs, rl)?, view::<f32>(&ns, nl)?, view::<f32>(&ss, sl)?);
    let (bits, clamp) = adc.unwrap_or((0, 0.0));
    let a = [rows as i32, n as i32, cs as i32, chunks as i32, scales.groups.sequence_rows as i32, scales.groups.group_rows as i32];
    let bits = bits as i32;
    let mut l = f.builder();
    l.arg(&av).arg(&rv).arg(&a[0]).arg(&a[1]).arg(&a[2]).arg(&a[3]).arg(&nv).arg(&a[4]).arg(&a[5]).arg(&sv).arg(&bits).arg(&clamp);
    unsafe { l.launch(warp_tasks((rows * n.div_ceil(cs)) as u64)) }.w()?;
    drop(l);
    drop((as_, rs, ns, ss));
    Ok(acc)
}
