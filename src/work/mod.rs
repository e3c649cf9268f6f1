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

use crate::device::{DevicePool, DeviceSpec};
use crate::exec::{Evaluation, Job, Worker};
use crate::model::HubAccess;
use crate::plan::{Run, Stage, StageKind};

/// Trains and evaluates on this machine's CPU or GPUs, reading models and data through the Hugging Face cache.
pub struct LocalWorker {
    hub: HubAccess,
    devices: DevicePool,
}

/// What one job computes with: the hub, and the device the pool lent it.
pub(crate) struct Workplace<'a> {
    hub: &'a HubAccess,
    device: Device,
}

impl LocalWorker {
    /// Honours `HF_HOME` and `HF_HUB_OFFLINE` like the Python libraries; opens the requested devices.
    pub fn from_env(device: DeviceSpec) -> Result<LocalWorker> {
        Ok(LocalWorker { hub: HubAccess::from_env(), devices: DevicePool::new(device.open()?) })
    }

    /// How many jobs can each have a device of their own (the GPUs of `--device cuda`; 1 for the CPU, which
    /// the executor shares out by threads instead).
    pub fn devices(&self) -> usize {
        self.devices.len()
    }
}

impl Worker for LocalWorker {
    fn train(&self, stage: &Stage, parent: Option<&Path>, job: &mut Job) -> Result<()> {
        let lease = self.devices.lease();
        let place = Workplace { hub: &self.hub, device: lease.device().clone() };
        match stage.kind {
            StageKind::Finetune | StageKind::PimFinetune | StageKind::Lora => finetune::finetune_stage(&place, stage, parent, job),
        }
    }

    fn evaluate(&self, run: &Run, stage: Option<&Path>, job: &mut Job) -> Result<Evaluation> {
        let lease = self.devices.lease();
        let place = Workplace { hub: &self.hub, device: lease.device().clone() };
        evaluate::evaluate(&place, run, stage, job)
    }

    fn device(&self) -> String {
        self.devices.describe()
    }
}
