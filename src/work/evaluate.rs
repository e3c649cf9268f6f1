//! Evaluating a run: the model it starts from (its stage's checkpoint, a model with a task head, or a
//! random initialisation), the technology applied to its linear layers, and the metrics of every repeat
//! and drift time, with per-example predictions.

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::*;

use super::Workplace;
use super::data::prepare;
use crate::exec::{Evaluation, Job, Record};
use crate::model::{LoadedModel, load_for_task, load_model_config};
use crate::pim::Technology;
use crate::plan::Run;
use crate::sweep::TechnologyKind;
use crate::train::{decide, predict, score};

pub fn evaluate(worker: &Workplace<'_>, run: &Run, stage: Option<&Path>, job: &mut Job) -> Result<Evaluation> {
    // Built before the model loads, so an unsupported setting fails at once.
    let technology = match &run.tech {
        TechnologyKind::Pim { kind, params } => {
            Some(Technology::new(*kind, params).with_context(|| format!("technology {}", run.technology))?)
        }
        _ => None,
    };
    let mut loaded = match (stage, &run.tech) {
        (Some(dir), _) => load_for_task(&dir.join("checkpoint").to_string_lossy(), run.task, run.seed, &worker.device, worker.hub)
            .with_context(|| format!("loading the stage checkpoint in {}", dir.display()))?,
        (None, TechnologyKind::Random) => random_classifier(worker, run)?,
        (None, _) => {
            load_for_task(&run.model, run.task, run.seed, &worker.device, worker.hub).with_context(|| format!("loading {}", run.model))?
        }
    };
    // A LoRA stage's adapters run digitally on top of every evaluation's linear forward.
    let adapters = match stage {
        Some(dir) => super::lora::load(&dir.join("checkpoint"), &loaded.model)?,
        None => None,
    };
    let with_adapters = |base: std::sync::Arc<dyn crate::model::LinearForward>| match &adapters {
        Some(a) => super::lora::with_adapters(base, a),
        None => base,
    };
    if adapters.is_some() {
        loaded.model.set_linear_forward(with_adapters(std::sync::Arc::new(crate::model::Digital)));
    }
    let batch_size = run.eval.int("batch-size") as usize;
    let eval = prepare(&run.data, run.task, run.task.eval_split(), run.data.max_eval, &loaded.tokenizer, run.max_seq_len)?;
    job.log(format!("evaluating {} on {} {} ({} examples)", run.name, run.task, eval.split.name, eval.encoded.len()));
    let Some(technology) = technology else {
        // Digital models are deterministic: one evaluation stands for every repeat and drift time.
        let outputs = predict(&loaded.model, &eval.encoded, batch_size)?;
        let metrics = score(run.task, &outputs, &eval.labels)?;
        job.log(format!("metrics: {:?}", metrics.values));
        let record = Record { repeat: 0, drift_s: 0.0, metrics: metrics.values.iter().map(|(k, v)| (k.to_string(), *v)).collect() };
        let predictions = predictions_frame(run, &eval.split, &outputs, 0, 0.0)?;
        return Ok(Evaluation { records: vec![record], predictions: Some(predictions) });
    };

    // One chip per repeat (or one for all when `reprogram` is off), read at every drift time in order.
    let repeats = run.eval.int("repeats") as u32;
    let reprogram = run.eval.flag("reprogram");
    let drifts: &[f64] = if run.drift_s.is_empty() { &[0.0] } else { &run.drift_s };
    job.progress.set_length((repeats as usize * drifts.len()) as u64);
    let (mut records, mut frames) = (Vec::new(), Vec::new());
    for repeat in 0..repeats {
        let chip = if reprogram { repeat as u64 } else { 0 };
        for (i, &drift_s) in drifts.iter().enumerate() {
            let evaluation = repeat as u64 * drifts.len() as u64 + i as u64;
            loaded.model.set_linear_forward(with_adapters(technology.linear(run.seed, chip, drift_s, evaluation)));
            let outputs = predict(&loaded.model, &eval.encoded, batch_size)?;
            let metrics = score(run.task, &outputs, &eval.labels)?;
            job.log(format!("repeat {repeat} (chip {chip}), drift {drift_s} s: {:?}", metrics.values));
            records.push(Record { repeat, drift_s, metrics: metrics.values.iter().map(|(k, v)| (k.to_string(), *v)).collect() });
            frames.push(predictions_frame(run, &eval.split, &outputs, repeat, drift_s)?);
            job.progress.inc(1);
        }
    }
    let mut predictions = frames.remove(0);
    for frame in &frames {
        predictions.vstack_mut(frame)?;
    }
    Ok(Evaluation { records, predictions: Some(predictions) })
}

/// The `random` technology: the model's architecture with every weight drawn from the run's seed.
fn random_classifier(worker: &Workplace<'_>, run: &Run) -> Result<LoadedModel> {
    let (config, tokenizer) = load_model_config(&run.model, worker.hub).with_context(|| format!("loading the config of {}", run.model))?;
    let model = crate::model::random_model(&config, run.task.num_labels(), run.seed, &worker.device)?;
    Ok(LoadedModel { model, tokenizer, report: Default::default() })
}

/// `idx`, `label`, `prediction`, `outputs`, `repeat`, `drift_s` per example (docs/RESULTS.md).
fn predictions_frame(run: &Run, split: &crate::data::Split, outputs: &[Vec<f32>], repeat: u32, drift_s: f64) -> Result<DataFrame> {
    let n = outputs.len();
    let idx: Vec<i64> = split.examples.iter().map(|e| e.idx).collect();
    let label: Vec<f64> = split
        .examples
        .iter()
        .map(|e| match e.label {
            crate::data::Label::Class(c) => c as f64,
            crate::data::Label::Score(s) => s as f64,
        })
        .collect();
    let prediction: Vec<f64> = outputs.iter().map(|o| decide(run.task, o)).collect();
    let lists: Vec<Series> = outputs.iter().map(|o| Series::new("".into(), o.as_slice())).collect();
    let df = DataFrame::new(
        n,
        vec![
            Column::new("idx".into(), idx),
            Column::new("label".into(), label),
            Column::new("prediction".into(), prediction),
            Column::new("outputs".into(), lists),
            Column::new("repeat".into(), vec![repeat; n]),
            Column::new("drift_s".into(), vec![drift_s; n]),
        ],
    )?;
    Ok(df)
}
