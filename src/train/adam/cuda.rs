//! Launches of the fused Adam passes (src/train/kernels.cu, PTX built by build.rs) on candle's CUDA storages.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{CudaStorage, Layout, Result, bail};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/train_kernels.ptx"));
const MODULE: &str = "pimsweep_train";
const THREADS: u32 = 256;

/// A grid-stride loop over `n` elements.
fn elements(n: usize) -> LaunchConfig {
    let blocks = (n as u64).div_ceil(THREADS as u64).clamp(1, 65_535 * 8) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

fn range(layout: &Layout) -> Result<(usize, usize)> {
    match layout.contiguous_offsets() {
        Some(r) => Ok(r),
        None => bail!("the fused Adam step takes contiguous tensors"),
    }
}

pub fn moments(state: &mut CudaStorage, ls: &Layout, grad: &CudaStorage, lg: &Layout, beta1: f32, beta2: f32) -> Result<()> {
    let dev = state.device().clone();
    let ((s0, s1), (g0, g1)) = (range(ls)?, range(lg)?);
    let g = grad.as_cuda_slice::<f32>()?.slice(g0..g1);
    let state = state.as_cuda_slice_mut::<f32>()?;
    let mut state = state.slice_mut(s0..s1);
    let n = (g1 - g0) as i64;
    let f = dev.get_or_load_custom_func("adam_moments", MODULE, PTX)?;
    let mut l = f.builder();
    l.arg(&mut state).arg(&g).arg(&n).arg(&beta1).arg(&beta2);
    unsafe { l.launch(elements(n as usize)) }.w()?;
    Ok(())
}

/// `hp`: lr, decay factor, scale_m, scale_v, eps.
pub fn apply(theta: &mut CudaStorage, lt: &Layout, state: &CudaStorage, ls: &Layout, hp: [f32; 5]) -> Result<()> {
    let dev = theta.device().clone();
    let ((t0, t1), (s0, s1)) = (range(lt)?, range(ls)?);
    let state = state.as_cuda_slice::<f32>()?.slice(s0..s1);
    let theta = theta.as_cuda_slice_mut::<f32>()?;
    let mut theta = theta.slice_mut(t0..t1);
    let n = (t1 - t0) as i64;
    let f = dev.get_or_load_custom_func("adam_apply", MODULE, PTX)?;
    let [lr, decay, scale_m, scale_v, eps] = hp;
    let mut l = f.builder();
    l.arg(&mut theta).arg(&state).arg(&n).arg(&lr).arg(&decay).arg(&scale_m).arg(&scale_v).arg(&eps);
    unsafe { l.launch(elements(n as usize)) }.w()?;
    Ok(())
}
