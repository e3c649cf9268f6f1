//! The fine-tuning stages. The digital fine-tune: the pretrained model with a fresh task head, trained with
//! the `baseline` recipe. The PIM-aware fine-tune (PIM_MODELS.md §6): the digital fine-tune's checkpoint (or
//! a model that has a task head) trained with the `train` recipe through the technology's noisy forward and
//! a straight-through backward, every parameter training. The LoRA stage (§7): the pretrained model with a
//! fresh head, frozen, its mapped layers on the technology, adapters (and the head) training. All evaluate
//! after every epoch and save a checkpoint that runs (and PIM-aware stages) start from.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::Workplace;
use super::data::prepare;
use super::lora;
use crate::exec::Job;
use crate::model::lora::LoraAdapters;
use crate::model::{load_for_task, save_checkpoint};
use crate::pim::Technology;
use crate::plan::{Stage, StageKind};
use crate::sweep::TechnologyKind;
use crate::train::{EvalSet, TrainEvent, TrainSettings, finetune};

/// Batch size of the per-epoch evaluations: it affects speed only, never the checkpoint, so stage ids leave it out.
const EPOCH_EVAL_BATCH: usize = 32;

/// Trains `stage`; `parent` is the finished stage it starts from (a PIM-aware fine-tune of a model without
/// a task head starts from the digital fine-tune).
pub fn finetune_stage(worker: &Workplace<'_>, stage: &Stage, parent: Option<&Path>, job: &mut Job) -> Result<()> {
    let task = stage.task;
    let technology = match &stage.tech {
        None => None,
        Some(TechnologyKind::Pim { kind, params }) => {
            Some(Technology::new(*kind, params).with_context(|| format!("technology {}", stage.technology.as_deref().unwrap_or("?")))?)
        }
        Some(other) => bail!("stage {} trains on {other:?}, which is not a PIM technology", stage.name),
    };
    let source = match parent {
        Some(dir) => dir.join("checkpoint").to_string_lossy().into_owned(),
        None => stage.model.clone(),
    };
    let mut loaded = load_for_task(&source, task, stage.seed, &worker.device, worker.hub).with_context(|| format!("loading {source}"))?;
    for name in &loaded.report.initialised {
        job.log(format!("initialised from seed {}: {name}", stage.seed));
    }
    // LoRA: adapters on the frozen pretrained model; only they (and the head with `train-head`) train.
    let lora = match (&stage.lora, stage.kind) {
        (Some(params), StageKind::Lora) => {
            let adapters = Arc::new(LoraAdapters::for_model(lora::settings(params), &loaded.model, stage.seed)?);
            job.log(format!("LoRA on {} layers: {} trainable adapter parameters", adapters.layers().count(), adapters.num_parameters()));
            Some((adapters, params.flag("train-head")))
        }
        _ => None,
    };
    if let Some(technology) = &technology {
        // One training: a fresh draw on every forward, training and per-epoch evaluation alike (§6).
        let base = technology.linear(stage.seed, 0, 0.0, 0);
        let linear = match &lora {
            Some((adapters, _)) => lora::with_adapters(base, adapters),
            None => base,
        };
        loaded.model.set_linear_forward(linear);
        job.log(format!("training through {} ({:?})", stage.technology.as_deref().unwrap_or("?"), technology.simulator));
    }
    let vars = match &lora {
        Some((adapters, train_head)) => lora::trainable(adapters, &loaded.model, *train_head),
        None => loaded.model.vars(),
    };
    let settings = TrainSettings::from_params(&stage.train, stage.seed)?;
    let train = prepare(&stage.data, task, "train", stage.data.max_train, &loaded.tokenizer, stage.max_seq_len)?;
    let eval = prepare(&stage.data, task, task.eval_split(), stage.data.max_eval, &loaded.tokenizer, stage.max_seq_len)?;
    job.log(format!(
        "fine-tuning {source} on {task}: {} training and {} evaluation examples, {settings:?}",
        train.encoded.len(),
        eval.encoded.len()
    ));
    let eval_set = EvalSet { data: &eval.encoded, labels: &eval.labels, batch_size: EPOCH_EVAL_BATCH };
    let epochs = finetune(&loaded.model, &vars, task, &train.encoded, Some(&eval_set), &settings, &mut |event| match event {
        TrainEvent::Step { step, total_steps, loss, .. } => {
            job.progress.set_length(total_steps as u64);
            job.progress.set_position(step as u64);
            job.progress.set_message(format!("loss {loss:.4}"));
        }
        TrainEvent::Epoch(summary) => {
            let metrics = summary.eval.as_ref().map(|m| format!("{:?}", m.values)).unwrap_or_default();
            job.log(format!("epoch {}: mean loss {:.4}, {:.1} s, eval {metrics}", summary.epoch, summary.mean_loss, summary.seconds));
        }
    })?;
    save_checkpoint(&loaded.model, &loaded.tokenizer, &job.dir.join("checkpoint"))?;
    if let Some((adapters, _)) = &lora {
        lora::save(adapters, &job.dir.join("checkpoint"))?;
    }
    let history: Vec<serde_json::Value> = epochs
        .iter()
        .map(|e| {
            serde_json::json!({
                "epoch": e.epoch, "steps": e.steps, "mean_loss": e.mean_loss, "seconds": e.seconds,
                "eval": e.eval.as_ref().map(|m| m.values.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>()),
            })
        })
        .collect();
    std::fs::write(job.dir.join("metrics.json"), serde_json::to_string_pretty(&serde_json::json!({ "epochs": history }))?)?;
    Ok(())
}
