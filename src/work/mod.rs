//! The work itself: what a stage trains and what a run evaluates, with the encoders ([`crate::model`]),
//! GLUE ([`crate::data`]) and the training loop ([`crate::train`]). The executor ([`crate::exec`]) calls it
//! through its [`Worker`] trait and knows nothing of models.

mod data;
mod evaluate;
mod finetune;
mod lora;

use std::path::Path;

use anyhow::Result;
use candle_core::Device;

use crate::exec::{Evaluation, Job, Worker};
use crate::model::HubAccess;
use crate::plan::{Run, Stage, StageKind};

/// Trains and evaluates on this machine's CPU, reading models and data through the Hugging Face cache.
pub struct LocalWorker {
    hub: HubAccess,
    device: Device,
}

impl LocalWorker {
    /// Honours `HF_HOME` and `HF_HUB_OFFLINE` like the Python libraries.
    pub fn from_env() -> LocalWorker {
        LocalWorker { hub: HubAccess::from_env(), device: Device::Cpu }
    }
}

impl Worker for LocalWorker {
    fn train(&self, stage: &Stage, parent: Option<&Path>, job: &mut Job) -> Result<()> {
        match stage.kind {
            StageKind::Finetune | StageKind::PimFinetune | StageKind::Lora => finetune::finetune_stage(self, stage, parent, job),
        }
    }

    fn evaluate(&self, run: &Run, stage: Option<&Path>, job: &mut Job) -> Result<Evaluation> {
        evaluate::evaluate(self, run, stage, job)
    }
}
