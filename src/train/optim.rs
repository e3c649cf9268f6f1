//! The optimizer: AdamW over two parameter groups (Hugging Face's recipe: no weight decay on biases and
//! LayerNorm weights), or Adam with L2 weight decay added to the gradient (torch's `Adam`), plus global
//! gradient-norm clipping. The update itself is adam.rs's two fused passes per variable.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

use super::adam::{AdamState, AdamStep};

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

/// One trainable variable with its Adam state and its decoupled weight decay.
struct Slot {
    var: Var,
    state: AdamState,
    decoupled_decay: f64,
}

/// An optimizer over named trainable variables.
pub struct Optimizer {
    slots: Vec<Slot>,
    lr: f64,
    /// Adam's coupled L2 decay (0 for AdamW, whose decay is decoupled).
    l2: f64,
    /// Steps taken (Adam's bias correction).
    t: i32,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, vars: &[(String, Var)], lr: f64, weight_decay: f64) -> Result<Optimizer> {
        let (decoupled, l2) = match kind {
            OptimizerKind::AdamW => (weight_decay, 0.0),
            OptimizerKind::Adam => (0.0, weight_decay),
        };
        let slots = vars
            .iter()
            .map(|(name, var)| {
                let decoupled_decay = if exempt_from_decay(name) { 0.0 } else { decoupled };
                Ok(Slot { var: var.clone(), state: AdamState::new(var)?, decoupled_decay })
            })
            .collect::<Result<_>>()?;
        Ok(Optimizer { slots, lr, l2, t: 0 })
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Applies one update from `grads`. Variables without a gradient are left as they are.
    pub fn step(&mut self, grads: &mut GradStore) -> Result<()> {
        self.t += 1;
        for slot in &self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else { continue };
            let coupled;
            let g = if self.l2 > 0.0 {
                coupled = (g + (slot.var.as_tensor() * self.l2)?)?;
                &coupled
            } else {
                g
            };
            let hp = AdamStep { lr: self.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: slot.decoupled_decay, t: self.t };
            slot.state.step(&slot.var, g, &hp)?;
        }
        Ok(())
    }

    /// Scales the gradients so their global L2 norm is at most `max_norm` (torch's clip_grad_norm_);
    /// returns the norm before clipping.
    pub fn clip_grad_norm(&self, grads: &mut GradStore, max_norm: f64) -> Result<f64> {
        // Each variable's sum of squares stays where the gradients are, summed in f64 there: one read of the
        // norm per step, not one per variable (each a GPU synchronisation).
        let squares = self
            .slots
            .iter()
            .filter_map(|s| grads.get(s.var.as_tensor()))
            .map(|g| g.sqr()?.sum_all()?.to_dtype(DType::F64))
            .collect::<Result<Vec<_>>>()?;
        if squares.is_empty() {
            return Ok(0.0);
        }
        let norm = Tensor::stack(&squares, 0)?.sum_all()?.to_scalar::<f64>()?.sqrt();
        if max_norm > 0.0 && norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            for v in self.slots.iter().map(|s| &s.var) {
                if let Some(g) = grads.get(v.as_tensor()) {
                    let scaled = (g * scale)?;
                    grads.insert(v.as_tensor(), scaled);
                }
            }
        }
        Ok(norm)
    }
}
