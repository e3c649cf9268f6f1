//! The digital fine-tune stage: the pretrained model with a fresh task head, trained with the `baseline`
//! recipe, evaluated after every epoch, and saved as a checkpoint that runs and PIM-aware stages start from.

use anyhow::{Context, Result};

use super::LocalWorker;
use super::data::prepare;
use crate::exec::Job;
use crate::model::{load_for_task, save_checkpoint};
use crate::plan::Stage;
use crate::train::{EvalSet, TrainEvent, TrainSettings, finetune};

/// Batch size of the per-epoch evaluations: it affects speed only, never the checkpoint, so stage ids leave it out.
const EPOCH_EVAL_BATCH: usize = 32;

pub fn digital_finetune(worker: &LocalWorker, stage: &Stage, job: &mut Job) -> Result<()> {
    let task = stage.task;
    let loaded =
        load_for_task(&stage.model, task, stage.seed, &worker.device, &worker.hub).with_context(|| format!("loading {}", stage.model))?;
    for name in &loaded.report.initialised {
        job.log(format!("initialised from seed {}: {name}", stage.seed));
    }
    let settings = TrainSettings::from_params(&stage.train, stage.seed)?;
    let train = prepare(&stage.data, task, "train", stage.data.max_train, &loaded.tokenizer, stage.max_seq_len)?;
    let eval = prepare(&stage.data, task, task.eval_split(), stage.data.max_eval, &loaded.tokenizer, stage.max_seq_len)?;
    job.log(format!(
        "fine-tuning {} on {task}: {} training and {} evaluation examples, {settings:?}",
        stage.model,
        train.encoded.len(),
        eval.encoded.len()
    ));
    let eval_set = EvalSet { data: &eval.encoded, labels: &eval.labels, batch_size: EPOCH_EVAL_BATCH };
    let epochs =
        finetune(&loaded.model, &loaded.model.vars(), task, &train.encoded, Some(&eval_set), &settings, &mut |event| match event {
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
