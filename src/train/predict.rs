//! Inference over a split: batched evaluation forwards, outputs in split order, and scoring them with the
//! task's metrics.

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};

use crate::data::Label;
use crate::data::{Batch, EncodedSplit, Order, Predictions, TaskMetrics, task_metrics};
use crate::model::{EncoderInputs, Mode, SequenceClassifier};
use crate::task::Task;

/// A batch's token buffers as the model's input tensors.
pub fn batch_inputs(batch: &Batch, device: &Device) -> candle_core::Result<EncoderInputs> {
    let shape = batch.shape();
    Ok(EncoderInputs {
        input_ids: Tensor::from_slice(&batch.input_ids, shape, device)?,
        attention_mask: Tensor::from_slice(&batch.attention_mask, shape, device)?,
        token_type_ids: Some(Tensor::from_slice(&batch.token_type_ids, shape, device)?),
    })
}

/// The model's raw outputs (logits, or the regression value) for every example, in split order.
pub fn predict(model: &SequenceClassifier, data: &EncodedSplit, batch_size: usize) -> Result<Vec<Vec<f32>>> {
    let mut outputs = vec![Vec::new(); data.len()];
    for batch in data.batches(batch_size, Order::Sequential)? {
        let inputs = batch_inputs(&batch, model.device())?;
        let logits: Vec<Vec<f32>> = model.forward(&inputs, Mode::Eval)?.to_vec2()?;
        for (row, position) in logits.into_iter().zip(&batch.positions) {
            outputs[*position] = row;
        }
    }
    Ok(outputs)
}

/// The prediction each output stands for: the argmax class, or the regression value (STS-B).
pub fn decide(task: Task, output: &[f32]) -> f64 {
    if task.is_regression() {
        output[0] as f64
    } else {
        output.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i) as f64
    }
}

/// Scores outputs against gold labels with the task's metrics.
pub fn score(task: Task, outputs: &[Vec<f32>], labels: &[Label]) -> Result<TaskMetrics> {
    let metrics = if task.is_regression() {
        let scores: Vec<f32> = outputs.iter().map(|o| o[0]).collect();
        task_metrics(task, Predictions::Scores(&scores), labels)
    } else {
        let classes: Vec<i64> = outputs.iter().map(|o| decide(task, o) as i64).collect();
        task_metrics(task, Predictions::Classes(&classes), labels)
    };
    metrics.context("scoring predictions")
}
