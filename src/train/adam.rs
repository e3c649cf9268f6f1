//! Adam with decoupled weight decay (torch.optim.AdamW; decay 0 is Adam) as two fused passes per variable:
//! the moments, then the parameter. candle-nn's AdamW spends about sixteen tensor ops per variable and step;
//! on a GPU each is a kernel launch and an allocation, which bounded training (docs/BENCHMARKS.md).
//!
//! The state of a variable of n elements is one tensor `[2, n]` (first moment, then second), so that each
//! pass has one tensor to write: candle's in-place ops take one mutable argument.

use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Tensor, Var, bail};
use rayon::prelude::*;

#[cfg(feature = "cuda")]
mod cuda;

/// Elements per parallel task: a smaller variable is one task, on the calling thread's pool.
const PARALLEL_MIN: usize = 1 << 16;

/// The hyper-parameters of one step.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay λ: the parameter is first scaled by 1 − lr·λ.
    pub weight_decay: f64,
    /// The step number, from 1 (bias correction).
    pub t: i32,
}

/// One variable's Adam state.
pub struct AdamState {
    moments: Tensor,
}

impl AdamState {
    pub fn new(var: &Var) -> Result<AdamState> {
        Ok(AdamState { moments: Tensor::zeros((2, var.elem_count()), DType::F32, var.device())? })
    }

    /// Updates `var` in place from its gradient `grad`.
    pub fn step(&self, var: &Var, grad: &Tensor, hp: &AdamStep) -> Result<()> {
        if var.dtype() != DType::F32 || !var.is_contiguous() {
            bail!("the fused Adam step takes contiguous f32 variables");
        }
        let grad = grad.to_dtype(DType::F32)?.contiguous()?;
        self.moments.inplace_op2(&grad, &Moments { beta1: hp.beta1 as f32, beta2: hp.beta2 as f32 })?;
        let apply = Apply {
            lr: hp.lr as f32,
            decay: (1.0 - hp.lr * hp.weight_decay) as f32,
            scale_m: (1.0 / (1.0 - hp.beta1.powi(hp.t))) as f32,
            scale_v: (1.0 / (1.0 - hp.beta2.powi(hp.t))) as f32,
            eps: hp.eps as f32,
        };
        var.as_tensor().inplace_op2(&self.moments, &apply)
    }
}

/// m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g².
struct Moments {
    beta1: f32,
    beta2: f32,
}

impl Moments {
    #[inline]
    fn one(&self, m: &mut f32, v: &mut f32, g: f32) {
        *m = *m * self.beta1 + g * (1.0 - self.beta1);
        *v = *v * self.beta2 + g * g * (1.0 - self.beta2);
    }
}

/// θ ← θ·(1 − lr·λ) − lr·m̂/(√v̂ + ε), with m̂ = m·scale_m and v̂ = v·scale_v.
struct Apply {
    lr: f32,
    decay: f32,
    scale_m: f32,
    scale_v: f32,
    eps: f32,
}

impl Apply {
    #[inline]
    fn one(&self, theta: &mut f32, m: f32, v: f32) {
        let (m_hat, v_hat) = (m * self.scale_m, v * self.scale_v);
        *theta = *theta * self.decay - self.lr * (m_hat / (v_hat.sqrt() + self.eps));
    }
}

fn f32s<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => bail!("the fused Adam step takes contiguous f32 tensors"),
    }
}

fn f32s_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout) -> Result<&'a mut [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => bail!("the fused Adam step takes contiguous f32 tensors"),
    }
}

impl InplaceOp2 for Moments {
    fn name(&self) -> &'static str {
        "adam-moments"
    }

    fn cpu_fwd(&self, state: &mut CpuStorage, ls: &Layout, grad: &CpuStorage, lg: &Layout) -> Result<()> {
        let (state, g) = (f32s_mut(state, ls)?, f32s(grad, lg)?);
        if state.len() != 2 * g.len() {
            bail!("adam-moments: a state of {} for a gradient of {}", state.len(), g.len());
        }
        let (m, v) = state.split_at_mut(g.len());
        m.par_iter_mut().zip(v.par_iter_mut()).zip(g).with_min_len(PARALLEL_MIN).for_each(|((m, v), &g)| self.one(m, v, g));
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, state: &mut candle_core::CudaStorage, ls: &Layout, grad: &candle_core::CudaStorage, lg: &Layout) -> Result<()> {
        cuda::moments(state, ls, grad, lg, self.beta1, self.beta2)
    }
}

impl InplaceOp2 for Apply {
    fn name(&self) -> &'static str {
        "adam-apply"
    }

    fn cpu_fwd(&self, theta: &mut CpuStorage, lt: &Layout, state: &CpuStorage, ls: &Layout) -> Result<()> {
        let (theta, state) = (f32s_mut(theta, lt)?, f32s(state, ls)?);
        if state.len() != 2 * theta.len() {
            bail!("adam-apply: a state of {} for a variable of {}", state.len(), theta.len());
        }
        let (m, v) = state.split_at(theta.len());
        theta.par_iter_mut().zip(m).zip(v).with_min_len(PARALLEL_MIN).for_each(|((t, &m), &v)| self.one(t, m, v));
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, theta: &mut candle_core::CudaStorage, lt: &Layout, state: &candle_core::CudaStorage, ls: &Layout) -> Result<()> {
        cuda::apply(theta, lt, state, ls, [self.lr, self.decay, self.scale_m, self.scale_v, self.eps])
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use candle_nn::{AdamW, Optimizer as _, ParamsAdamW};

    use super::*;

    /// Three steps on random parameters and gradients: candle-nn's AdamW (the composed reference, torch's
    /// update rule) and the fused passes agree to f32 rounding, with and without weight decay, on a variable
    /// large enough to take the parallel path and one that is not.
    #[test]
    fn fused_steps_are_candle_nn_adamw() {
        for (n, wd) in [(37, 0.0), (37, 0.1), (PARALLEL_MIN + 3, 0.01)] {
            let init = Tensor::randn(0f32, 1.0, n, &Device::Cpu).unwrap();
            let (reference, fused) = (Var::from_tensor(&init).unwrap(), Var::from_tensor(&init).unwrap());
            let params = ParamsAdamW { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: wd };
            let mut adamw = AdamW::new(vec![reference.clone()], params.clone()).unwrap();
            let state = AdamState::new(&fused).unwrap();
            for t in 1..=3 {
                let g = Tensor::randn(0f32, 1.0, n, &Device::Cpu).unwrap();
                // d/dθ Σ θ·g = g.
                let grads = (reference.as_tensor() * &g).unwrap().sum_all().unwrap().backward().unwrap();
                adamw.step(&grads).unwrap();
                let hp = AdamStep { lr: params.lr, beta1: params.beta1, beta2: params.beta2, eps: params.eps, weight_decay: wd, t };
                state.step(&fused, &g, &hp).unwrap();
            }
            let (a, b) = (reference.as_tensor().to_vec1::<f32>().unwrap(), fused.as_tensor().to_vec1::<f32>().unwrap());
            let moved = a.iter().zip(init.to_vec1::<f32>().unwrap()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(moved > 1e-3, "the steps move the parameters: {moved}");
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "n {n}, wd {wd}: candle-nn {x}, fused {y}");
            }
        }
    }
}
