//! Evaluating a run: the model it starts from (its stage's checkpoint, a model with a task head, or a
//! random initialisation), the technology applied to its linear layers, and the metrics of every repeat
//! and drift time, with per-example predictions.

use std::path::Path;

use anyhow::{Context, Result, bail};
use polars::prelude::*;

use super::LocalWorker;
use super::data::prepare;
use crate::exec::{Evaluation, Job, Record};
use crate::model::{LoadedModel, load_for_task, load_model_config};
use crate::plan::Run;
use crate::sweep::TechnologyKind;
use crate::train::{decide, predict, score};

pub fn evaluate(worker: &LocalWorker, run: &Run, stage: Option<&Path>, job: &mut Job) -> Result<Evaluation> {
    if let TechnologyKind::Pim { kind, .. } = &run.tech {
        bail!("technology kind {} is not simulated by this version of pimsweep", kind.kind_name());
    }
    let loaded = match (stage, &run.tech) {
        (Some(dir), _) => load_for_task(&dir.join("checkpoint").to_string_lossy(), run.task, run.seed, &worker.device, &worker.hub)
            .with_context(|| format!("loading the stage checkpoint in {}", dir.display()))?,
        (None, TechnologyKind::Random) => random_classifier(worker, run)?,
        (None, _) => {
            load_for_task(&run.model, run.task, run.seed, &worker.device, &worker.hub).with_context(|| format!("loading {}", run.model))?
        }
    };
    let batch_size = match run.eval.get("batch-size") {
        Some(crate::sweep::ParamValue::Int(b)) => *b as usize,
        _ => 32,
    };
    let eval = prepare(&run.data, run.task, run.task.eval_split(), run.data.max_eval, &loaded.tokenizer, run.max_seq_len)?;
    job.log(format!("evaluating {} on {} {} ({} examples)", run.name, run.task, eval.split.name, eval.encoded.len()));
    // Digital models are deterministic: one evaluation stands for every repeat and drift time.
    let outputs = predict(&loaded.model, &eval.encoded, batch_size)?;
    let metrics = score(run.task, &outputs, &eval.labels)?;
    job.log(format!("metrics: {:?}", metrics.values));
    let record = Record { repeat: 0, drift_s: 0.0, metrics: metrics.values.iter().map(|(k, v)| (k.to_string(), *v)).collect() };
    let predictions = predictions_frame(run, &eval.split, &outputs, 0, 0.0)?;
    Ok(Evaluation { records: vec![record], predictions: Some(predictions) })
}

/// The `random` technology: the model's architecture with every weight drawn from the run's seed.
fn random_classifier(worker: &LocalWorker, run: &Run) -> Result<LoadedModel> {
    let (config, tokenizer) = load_model_config(&run.model, &worker.hub).with_context(|| format!("loading the config of {}", run.model))?;
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
