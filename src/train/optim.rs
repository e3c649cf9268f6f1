//! The optimizer: candle's AdamW over two parameter groups (Hugging Face's recipe: no weight decay on
//! biases and LayerNorm weights), or Adam with L2 weight decay added to the gradient (torch's `Adam`),
//! plus global gradient-norm clipping.

use candle_core::backprop::GradStore;
use candle_core::{Result, Var};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW.
    AdamW,
    /// Weight decay as an L2 term added to the gradient, as torch.optim.Adam.
    Adam,
}

/// Names Hugging Face exempts from weight decay.
pub fn exempt_from_decay(name: &str) -> bool {
    name.ends_with("bias") || name.contains("LayerNorm") || name.contains("layer_norm")
}

/// An optimizer over named trainable variables.
pub struct Optimizer {
    decayed: Option<AdamW>,
    exempt: Option<AdamW>,
    /// Adam's coupled L2 decay (0 for AdamW, whose decay lives inside `decayed`).
    l2: f64,
    vars: Vec<Var>,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, vars: &[(String, Var)], lr: f64, weight_decay: f64) -> Result<Optimizer> {
        let params = |wd: f64| ParamsAdamW { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: wd };
        let (exempt, decayed): (Vec<_>, Vec<_>) = vars.iter().partition(|(name, _)| exempt_from_decay(name));
        let group = |vs: Vec<&(String, Var)>, wd: f64| -> Result<Option<AdamW>> {
            if vs.is_empty() { Ok(None) } else { AdamW::new(vs.into_iter().map(|(_, v)| v.clone()).collect(), params(wd)).map(Some) }
        };
        let (decoupled, l2) = match kind {
            OptimizerKind::AdamW => (weight_decay, 0.0),
            OptimizerKind::Adam => (0.0, weight_decay),
        };
        Ok(Optimizer {
            decayed: group(decayed, decoupled)?,
            exempt: group(exempt, 0.0)?,
            l2,
            vars: vars.iter().map(|(_, v)| v.clone()).collect(),
        })
    }

    pub fn set_lr(&mut self, lr: f64) {
        for opt in self.decayed.iter_mut().chain(self.exempt.iter_mut()) {
            opt.set_learning_rate(lr);
        }
    }

    /// Applies one update from `grads`. Variables without a gradient are left as they are.
    pub fn step(&mut self, grads: &mut GradStore) -> Result<()> {
        if self.l2 > 0.0 {
            for v in &self.vars {
                if let Some(g) = grads.get(v.as_tensor()) {
                    let g = (g + (v.as_tensor() * self.l2)?)?;
                    grads.insert(v.as_tensor(), g);
                }
            }
        }
        for opt in self.decayed.iter_mut().chain(self.exempt.iter_mut()) {
            opt.step(grads)?;
        }
        Ok(())
    }

    /// Scales the gradients so their global L2 norm is at most `max_norm` (torch's clip_grad_norm_);
    /// returns the norm before clipping.
    pub fn clip_grad_norm(&self, grads: &mut GradStore, max_norm: f64) -> Result<f64> {
        let mut sum = 0f64;
        for v in &self.vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                sum += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        let norm = sum.sqrt();
        if max_norm > 0.0 && norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            for v in &self.vars {
                if let Some(g) = grads.get(v.as_tensor()) {
                    let scaled = (g * scale)?;
                    grads.insert(v.as_tensor(), scaled);
                }
            }
        }
        Ok(norm)
    }
}
