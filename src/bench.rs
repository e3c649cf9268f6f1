//! `pimsweep bench`: throughput of evaluation and training steps for the encoder shapes the project
//! reproduces, on random weights and random full-length token ids (the protocol of the PyTorch figures in
//! docs/BENCHMARKS.md: fp32, evaluation forward only; training = forward, backward and an AdamW step).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::{EncoderConfig, EncoderInputs, Mode, SequenceClassifier, random_model};
use crate::train::{Optimizer, OptimizerKind};

/// Model shapes to measure: (name, config.json).
pub const SHAPES: &[(&str, &str)] = &[
    (
        "minilm-l6",
        r#"{"model_type": "bert", "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
            "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12}"#,
    ),
    (
        "roberta-base",
        r#"{"model_type": "roberta", "vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
            "intermediate_size": 3072, "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1}"#,
    ),
];

/// One measured configuration.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub batch: usize,
    pub seq: usize,
    pub samples_per_s: f64,
    pub iterations: usize,
}

/// The config of a named shape.
pub fn shape_config(name: &str) -> Result<EncoderConfig> {
    let (_, json) = SHAPES.iter().find(|(n, _)| *n == name).with_context(|| {
        format!("unknown model shape {name:?}; known: {}", SHAPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))
    })?;
    Ok(EncoderConfig::from_json_str(json, Path::new(name))?)
}

fn random_inputs(config: &EncoderConfig, batch: usize, seq: usize, rng: &mut StdRng, device: &Device) -> Result<EncoderInputs> {
    let ids: Vec<u32> = (0..batch * seq).map(|_| rng.random_range(5..config.vocab_size as u32)).collect();
    Ok(EncoderInputs {
        input_ids: Tensor::from_vec(ids, (batch, seq), device)?,
        attention_mask: Tensor::ones((batch, seq), candle_core::DType::U32, device)?,
        token_type_ids: None,
    })
}

/// Repeats `step` after one warm-up call until `min_time` has passed (and at least `min_iters` times).
fn measure(min_time: Duration, min_iters: usize, mut step: impl FnMut() -> Result<()>) -> Result<(usize, Duration)> {
    step()?;
    let start = Instant::now();
    let mut n = 0;
    while n < min_iters || start.elapsed() < min_time {
        step()?;
        n += 1;
    }
    Ok((n, start.elapsed()))
}

/// Evaluation forwards per second × batch.
pub fn eval_throughput(model: &SequenceClassifier, batch: usize, seq: usize, min_time: Duration) -> Result<Throughput> {
    let mut rng = StdRng::seed_from_u64(0);
    let inputs = random_inputs(model.config(), batch, seq, &mut rng, model.device())?;
    let (n, t) = measure(min_time, 3, || {
        model.forward(&inputs, Mode::Eval)?.to_vec2::<f32>()?;
        Ok(())
    })?;
    Ok(Throughput { batch, seq, samples_per_s: (n * batch) as f64 / t.as_secs_f64(), iterations: n })
}

/// Training steps (forward, cross-entropy, backward, AdamW over every parameter) per second × batch.
pub fn train_throughput(model: &SequenceClassifier, batch: usize, seq: usize, min_time: Duration) -> Result<Throughput> {
    let mut rng = StdRng::seed_from_u64(1);
    let inputs = random_inputs(model.config(), batch, seq, &mut rng, model.device())?;
    let labels: Vec<u32> = (0..batch).map(|i| (i % model.num_labels()) as u32).collect();
    let labels = Tensor::from_vec(labels, batch, model.device())?;
    let vars = model.vars();
    let mut opt = Optimizer::new(OptimizerKind::AdamW, &vars, 2e-5, 0.01)?;
    let (n, t) = measure(min_time, 2, || {
        let logits = model.forward(&inputs, Mode::Train)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
        let mut grads = loss.backward()?;
        opt.step(&mut grads)?;
        model.post_update()?; // the technology's post-update step (AIHWKIT PCM: clip and remap), as in fine-tuning
        loss.to_scalar::<f32>()?;
        Ok(())
    })?;
    Ok(Throughput { batch, seq, samples_per_s: (n * batch) as f64 / t.as_secs_f64(), iterations: n })
}

/// Runs the benchmark for the named shapes and prints a Markdown table.
pub fn run(shapes: &[String], eval_batch: usize, train_batch: usize, seq: usize, min_time: Duration, device: &Device) -> Result<String> {
    let mut out = String::from("| model | eval samples/s (batch × seq) | train samples/s (batch × seq) |\n|---|---|---|\n");
    for name in shapes {
        let config = shape_config(name)?;
        let model = random_model(&config, 2, 0, device)?;
        let eval = eval_throughput(&model, eval_batch, seq, min_time)?;
        let train = train_throughput(&model, train_batch, seq, min_time)?;
        let line = format!(
            "| {name} | {:.1} ({eval_batch} × {seq}, {} iters) | {:.1} ({train_batch} × {seq}, {} iters) |\n",
            eval.samples_per_s, eval.iterations, train.samples_per_s, train.iterations
        );
        eprint!("{line}");
        out.push_str(&line);
    }
    Ok(out)
}
