//! The fine-tuning loop: seeded shuffling, dynamically padded batches, cross-entropy (or MSE for STS-B),
//! backward, optional gradient clipping, an optimizer step on the trainable variables and the technology's
//! post-update step on the weights (analog tiles), the learning-rate schedule, and an evaluation after every
//! epoch. The model of the last epoch is kept (the reference recipe).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Tensor, Var};

use super::optim::{Optimizer, OptimizerKind};
use super::predict::{batch_inputs, predict, score};
use super::schedule::{Decay, Schedule};
use crate::data::{BatchLabels, EncodedSplit, Label, Order, TaskMetrics};
use crate::model::{Mode, SequenceClassifier};
use crate::sweep::{ParamSet, ParamValue};
use crate::task::Task;

/// The hyper-parameters of one training (a sweep's `train` or `baseline` node).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub weight_decay: f64,
    pub warmup_ratio: f64,
    /// Global gradient-norm clip; 0 = off.
    pub grad_clip: f64,
    pub optimizer: OptimizerKind,
    pub decay: Decay,
    /// Seeds the batch order (and, through the caller, dropout).
    pub seed: u64,
}

impl TrainSettings {
    /// Reads the validated `train`/`baseline` parameter set of a sweep.
    pub fn from_params(params: &ParamSet, seed: u64) -> Result<TrainSettings> {
        let int = |k: &str| match params.get(k) {
            Some(ParamValue::Int(i)) => Ok(*i),
            other => bail!("training parameter `{k}` is {other:?}, expected an integer"),
        };
        let float = |k: &str| params.get(k).and_then(ParamValue::as_f64).with_context(|| format!("training parameter `{k}` missing"));
        let text = |k: &str| match params.get(k) {
            Some(ParamValue::Str(s)) => Ok(s.clone()),
            other => bail!("training parameter `{k}` is {other:?}, expected a string"),
        };
        Ok(TrainSettings {
            epochs: int("epochs")? as usize,
            lr: float("lr")?,
            batch_size: int("batch-size")? as usize,
            weight_decay: float("weight-decay")?,
            warmup_ratio: float("warmup-ratio")?,
            grad_clip: float("grad-clip")?,
            optimizer: if text("optimizer")? == "adam" { OptimizerKind::Adam } else { OptimizerKind::AdamW },
            decay: if text("schedule")? == "constant" { Decay::Constant } else { Decay::Linear },
            seed,
        })
    }
}

/// What happened in one epoch.
#[derive(Debug, Clone)]
pub struct EpochSummary {
    pub epoch: usize,
    pub steps: usize,
    pub mean_loss: f64,
    pub seconds: f64,
    /// Evaluation after the epoch, when an evaluation split was given.
    pub eval: Option<TaskMetrics>,
}

/// Progress reports for bars and logs.
#[derive(Debug, Clone)]
pub enum TrainEvent<'a> {
    Step { epoch: usize, step: usize, total_steps: usize, loss: f64, lr: f64 },
    Epoch(&'a EpochSummary),
}

/// Data to evaluate on after every epoch.
pub struct EvalSet<'a> {
    pub data: &'a EncodedSplit,
    pub labels: &'a [Label],
    pub batch_size: usize,
}

/// Trains `vars` (a subset of the model's variables, or all of them) on `train` for `task`.
pub fn finetune(
    model: &SequenceClassifier,
    vars: &[(String, Var)],
    task: Task,
    train: &EncodedSplit,
    eval: Option<&EvalSet>,
    settings: &TrainSettings,
    observe: &mut dyn FnMut(TrainEvent),
) -> Result<Vec<EpochSummary>> {
    if train.is_empty() {
        bail!("the training split is empty");
    }
    let steps_per_epoch = train.len().div_ceil(settings.batch_size);
    let total_steps = steps_per_epoch * settings.epochs;
    let schedule = Schedule::new(settings.lr, total_steps, settings.warmup_ratio, settings.decay);
    let mut optimizer = Optimizer::new(settings.optimizer, vars, settings.lr, settings.weight_decay)?;
    let device = model.device().clone();
    let mut summaries = Vec::with_capacity(settings.epochs);
    let mut step = 0;
    for epoch in 0..settings.epochs {
        let start = Instant::now();
        let mut loss_sum = 0.0;
        let mut epoch_steps = 0;
        for batch in train.batches(settings.batch_size, Order::Shuffled { seed: settings.seed, epoch: epoch as u64 })? {
            let inputs = batch_inputs(&batch, &device)?;
            let outputs = model.forward(&inputs, Mode::Train)?;
            let loss = loss_of(task, &outputs, &batch.labels, &device)?;
            let value = loss.to_scalar::<f32>()? as f64;
            let lr = schedule.lr(step);
            if !value.is_finite() {
                bail!("the training loss is {value} at epoch {}, step {} (learning rate {lr:e}): training diverged", epoch + 1, step + 1);
            }
            let mut grads = loss.backward()?;
            if settings.grad_clip > 0.0 {
                optimizer.clip_grad_norm(&mut grads, settings.grad_clip)?;
            }
            optimizer.set_lr(lr);
            optimizer.step(&mut grads)?;
            model.post_update()?;
            loss_sum += value;
            epoch_steps += 1;
            step += 1;
            observe(TrainEvent::Step { epoch, step, total_steps, loss: value, lr });
        }
        let eval = match eval {
            Some(set) => Some(score(task, &predict(model, set.data, set.batch_size)?, set.labels)?),
            None => None,
        };
        let summary = EpochSummary {
            epoch: epoch + 1,
            steps: epoch_steps,
            mean_loss: loss_sum / epoch_steps.max(1) as f64,
            seconds: start.elapsed().as_secs_f64(),
            eval,
        };
        observe(TrainEvent::Epoch(&summary));
        summaries.push(summary);
    }
    Ok(summaries)
}

/// Cross-entropy over classes, or MSE for the STS-B regression head.
fn loss_of(task: Task, outputs: &Tensor, labels: &BatchLabels, device: &candle_core::Device) -> Result<Tensor> {
    match labels {
        BatchLabels::Classes(classes) => {
            if task.is_regression() {
                bail!("{task} is a regression task but its training labels are classes");
            }
            if classes.iter().any(|&c| c < 0) {
                bail!("the training split has hidden labels (-1): it cannot be trained on");
            }
            let target = Tensor::from_slice(classes, classes.len(), device)?;
            Ok(candle_nn::loss::cross_entropy(outputs, &target)?)
        }
        BatchLabels::Scores(scores) => {
            let target = Tensor::from_slice(scores, scores.len(), device)?;
            let predicted = outputs.squeeze(1)?.to_dtype(DType::F32)?;
            Ok(candle_nn::loss::mse(&predicted, &target)?)
        }
    }
}
