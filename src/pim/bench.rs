//! `pimsweep bench --technology FILE`: what simulating a technology costs. One PIM linear layer against the
//! plain f32 layer at roberta-base shapes (4096 tokens, 768→3072 and 3072→768), and whole-model evaluation
//! and training throughput with every linear layer on the technology, against pimsweep's own digital path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use candle_core::{Device, Tensor};

use super::linear::Technology;
use super::noise::NoiseKey;
use super::simulator::TileCall;
use crate::bench::{eval_throughput, shape_config, train_throughput};
use crate::model::{Digital, random_model};

/// Tokens per layer call: 32 sequences of 128 tokens, roberta-base's evaluation batch.
const LAYER_TOKENS: usize = 4096;
const LAYER_SHAPES: [(usize, usize); 2] = [(768, 3072), (3072, 768)];

/// Calls per second of `f` (after one warm-up call), over at least `min_time`.
fn calls_per_s(min_time: Duration, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let start = Instant::now();
    let mut n = 0usize;
    while n < 2 || start.elapsed() < min_time {
        f()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// One layer call on 4096 tokens: plain `x·Wᵀ` and each technology, in tokens per second.
pub fn layer_table(technologies: &[(String, Technology)], min_time: Duration, device: &Device) -> Result<String> {
    let mut out = String::from("| layer (4096 tokens) | technology | tokens/s | × digital time |\n|---|---|---|---|\n");
    for (k, n) in LAYER_SHAPES {
        let x = Tensor::randn(0f32, 1.0, (LAYER_TOKENS, k), device)?;
        let w = Tensor::randn(0f32, 0.02, (n, k), device)?;
        // Waiting for the device, not reading a result back: a reduction over the output would cost as much
        // as the product on a GPU.
        let digital = calls_per_s(min_time, || {
            x.matmul(&w.t()?)?;
            Ok(device.synchronize()?)
        })?;
        let mut line = |name: &str, rate: f64| {
            let row = format!("| {k}→{n} | {name} | {:.0} | {:.2} |\n", rate * LAYER_TOKENS as f64, digital / rate);
            eprint!("{row}");
            out.push_str(&row);
        };
        line("digital f32", digital);
        for (name, technology) in technologies {
            let mut draw = 0;
            let rate = calls_per_s(min_time, || {
                draw += 1;
                let call = TileCall {
                    layer: "bench",
                    rows_per_sequence: 128,
                    training: false,
                    drift_s: 0.0,
                    noise: NoiseKey::new(0, "bench", 0, draw),
                };
                technology.simulator.matmul(&x, &w, &call)?;
                Ok(device.synchronize()?)
            })?;
            line(name, rate);
        }
    }
    Ok(out)
}

/// Whole models with every linear layer on each technology, against the digital path.
pub fn model_table(
    shapes: &[String],
    technologies: &[(String, Technology)],
    eval_batch: usize,
    train_batch: usize,
    seq: usize,
    min_time: Duration,
    device: &Device,
) -> Result<String> {
    let mut out = String::from(
        "| model | technology | eval samples/s | × digital time | train samples/s | × digital time |\n|---|---|---|---|---|---|\n",
    );
    for shape in shapes {
        let mut model = random_model(&shape_config(shape)?, 2, 0, device)?;
        let mut digital = None;
        let rows = std::iter::once(("digital f32".to_string(), None)).chain(technologies.iter().map(|(n, t)| (n.clone(), Some(t))));
        for (name, technology) in rows {
            match technology {
                Some(t) => model.set_linear_forward(t.linear(0, 0, 0.0, 0)),
                None => model.set_linear_forward(Arc::new(Digital)),
            }
            let eval = eval_throughput(&model, eval_batch, seq, min_time)?.samples_per_s;
            let train = train_throughput(&model, train_batch, seq, min_time)?.samples_per_s;
            let (e0, t0) = *digital.get_or_insert((eval, train));
            let row = format!("| {shape} | {name} | {eval:.1} | {:.2} | {train:.1} | {:.2} |\n", e0 / eval, t0 / train);
            eprint!("{row}");
            out.push_str(&row);
        }
    }
    Ok(out)
}
