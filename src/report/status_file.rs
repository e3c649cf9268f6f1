//! `status.json` of a run or stage (docs/RESULTS.md): its state, and the provenance results carry.

use std::path::Path;

use serde::Deserialize;

use super::files::read_json;

/// pending | running | done | failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Running,
    Done,
    Failed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusFile {
    pub state: State,
    #[serde(default)]
    pub wall_s: Option<f64>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub threads: Option<i64>,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub pimsweep: Option<String>,
    /// The error's first line when failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// The status in `folder`: Ok(None) when there is no status.json yet (the run is pending).
pub fn read_status(folder: &Path) -> anyhow::Result<Option<StatusFile>> {
    let path = folder.join("status.json");
    if !path.exists() {
        return Ok(None);
    }
    read_json(&path).map(Some)
}
