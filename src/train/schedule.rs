//! Learning-rate schedules: linear warm-up, then linear decay to zero (Hugging Face's
//! `get_linear_schedule_with_warmup`, stepped after every optimizer step) or a constant rate.

/// After warm-up: decay linearly to zero at the last step, or stay at the peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decay {
    Linear,
    Constant,
}

/// The learning rate of every optimizer step of a training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub peak: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub decay: Decay,
}

impl Schedule {
    /// Warm-up covers `ceil(warmup_ratio × total_steps)` steps, as in Hugging Face's Trainer.
    pub fn new(peak: f64, total_steps: usize, warmup_ratio: f64, decay: Decay) -> Schedule {
        let warmup_steps = (warmup_ratio * total_steps as f64).ceil() as usize;
        Schedule { peak, warmup_steps, total_steps, decay }
    }

    /// The rate of optimizer step `step` (0-based). As in Hugging Face, step 0 of a warm-up uses rate 0.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak * step as f64 / self.warmup_steps.max(1) as f64;
        }
        match self.decay {
            Decay::Constant => self.peak,
            Decay::Linear => {
                let remaining = self.total_steps.saturating_sub(step) as f64;
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                self.peak * (remaining / span).max(0.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_decay_without_warmup_matches_hugging_face() {
        // torch: LambdaLR with lambda(s) = (total - s) / total, total = 4.
        let s = Schedule::new(2e-5, 4, 0.0, Decay::Linear);
        for (step, expected) in [2e-5, 1.5e-5, 1e-5, 0.5e-5].into_iter().enumerate() {
            assert!((s.lr(step) - expected).abs() < 1e-18, "step {step}: {}", s.lr(step));
        }
    }

    #[test]
    fn warmup_then_decay() {
        // 10 steps, ratio 0.25 → ceil(2.5) = 3 warm-up steps: 0, 1/3, 2/3 of the peak, then (10-s)/7.
        let s = Schedule::new(1.0, 10, 0.25, Decay::Linear);
        assert_eq!(s.warmup_steps, 3);
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(2) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.lr(3), 1.0);
        assert!((s.lr(9) - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(s.lr(10), 0.0);
    }

    #[test]
    fn constant_after_warmup() {
        let s = Schedule::new(3e-4, 100, 0.1, Decay::Constant);
        assert_eq!(s.lr(5), 1.5e-4);
        assert_eq!(s.lr(99), 3e-4);
    }
}
