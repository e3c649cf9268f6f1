//! Fine-tunes a model on one GLUE task with the reference recipe and prints the validation metrics of every
//! epoch and the wall time. `pimsweep run` does the same inside a sweep; this is the bare loop.
//!
//!     HF_HOME=../shared/hf HF_HUB_OFFLINE=1 cargo run --release --example finetune -- rte
//!     cargo run --release --example finetune -- cola --model sentence-transformers/all-MiniLM-L6-v2 --epochs 3 --lr 2e-5

use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::Device;
use pimsweep::data::{EncodedSplit, GlueHub, TextEncoder};
use pimsweep::model::{HubAccess, load_for_task};
use pimsweep::task::Task;
use pimsweep::train::{Decay, EvalSet, OptimizerKind, TrainEvent, TrainSettings, finetune};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task =
        args.next().context("usage: finetune TASK [--model ID] [--epochs N] [--lr X] [--batch-size N] [--seed N] [--max-seq-len N]")?;
    let task = Task::from_name(&task).with_context(|| format!("unknown task {task}"))?;
    let (mut model_id, mut epochs, mut lr, mut batch_size, mut seed, mut max_len) =
        ("sentence-transformers/all-MiniLM-L6-v2".to_string(), 3, 2e-5, 16, 42u64, 128);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => model_id = value,
            "--epochs" => epochs = value.parse()?,
            "--lr" => lr = value.parse()?,
            "--batch-size" => batch_size = value.parse()?,
            "--seed" => seed = value.parse()?,
            "--max-seq-len" => max_len = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    let start = Instant::now();
    let loaded = load_for_task(&model_id, task, seed, &Device::Cpu, &HubAccess::from_env())?;
    let encoder = TextEncoder::new(loaded.tokenizer.clone(), max_len, &model_id)?;
    let hub = GlueHub::from_env("nyu-mll/glue")?;
    let train_split = hub.load(task, "train")?;
    let eval_split = hub.load(task, task.eval_split())?;
    let train = EncodedSplit::encode(&train_split, &encoder)?;
    let eval = EncodedSplit::encode(&eval_split, &encoder)?;
    let labels = eval_split.labels();
    let settings = TrainSettings {
        epochs,
        lr,
        batch_size,
        weight_decay: 0.0,
        warmup_ratio: 0.0,
        grad_clip: 0.0,
        optimizer: OptimizerKind::AdamW,
        decay: Decay::Linear,
        seed,
    };
    println!("{model_id} on {task}: {} train / {} eval examples, {settings:?}", train.len(), eval.len());
    let eval_set = EvalSet { data: &eval, labels: &labels, batch_size: 32 };
    finetune(&loaded.model, &loaded.model.vars(), task, &train, Some(&eval_set), &settings, &mut |event| {
        if let TrainEvent::Epoch(e) = event {
            println!("epoch {}: loss {:.4}, {:.0} s, {:?}", e.epoch, e.mean_loss, e.seconds, e.eval.as_ref().map(|m| &m.values));
        }
    })?;
    println!("{task}: wall time {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}
