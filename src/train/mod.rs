//! Training: the fine-tuning loop shared by the digital baseline and the hardware-aware modes, its
//! optimizer and learning-rate schedule, and batched prediction with scoring.

mod adam;
mod finetune;
mod optim;
mod predict;
mod schedule;

pub use finetune::{EpochSummary, EvalSet, TrainEvent, TrainSettings, finetune};
pub use optim::{Optimizer, OptimizerKind, exempt_from_decay};
pub use predict::{batch_inputs, decide, predict, score};
pub use schedule::{Decay, Schedule};
