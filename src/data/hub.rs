//! Finds GLUE Parquet splits in a Hugging Face hub dataset (`nyu-mll/glue` or any dataset with the same
//! `<task>/<split>-00000-of-00001.parquet` layout): from the local cache when offline, downloading through
//! the cache otherwise.

use std::path::PathBuf;

use hf_hub::Cache;
use hf_hub::api::sync::{Api, ApiBuilder};

use super::error::{DataError, Result, check_split};
use super::parquet::read_parquet_split;
use super::split::Split;
use crate::task::Task;

/// The canonical GLUE dataset on the hub.
pub const GLUE_DATASET: &str = "nyu-mll/glue";

/// Where split files come from.
#[derive(Debug)]
enum Access {
    /// Cache only; a missing file is an error.
    Offline(Cache),
    /// Cache first, then download into it.
    Online(Api),
}

/// A hub dataset with the GLUE layout.
#[derive(Debug)]
pub struct GlueHub {
    dataset: String,
    access: Access,
}

impl GlueHub {
    /// Uses the environment like the Python `huggingface_hub`: `HF_HOME` locates the cache (default
    /// `~/.cache/huggingface`), `HF_HUB_OFFLINE=1` forbids the network, `HF_ENDPOINT` changes the server.
    pub fn from_env(dataset: &str) -> Result<GlueHub> {
        if offline_from_env() {
            return Ok(GlueHub::offline(Cache::from_env(), dataset));
        }
        let api = ApiBuilder::from_env().with_progress(false).build().map_err(|cause| DataError::Hub {
            dataset: dataset.to_string(),
            action: "cannot set up the download client".into(),
            cause: cause.to_string(),
        })?;
        Ok(GlueHub { dataset: dataset.to_string(), access: Access::Online(api) })
    }

    /// Reads only from `cache` (a `HF_HOME/hub` directory), never the network.
    pub fn offline(cache: Cache, dataset: &str) -> GlueHub {
        GlueHub { dataset: dataset.to_string(), access: Access::Offline(cache) }
    }

    /// The dataset id, e.g. `nyu-mll/glue`.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// Local path of a split's Parquet file, downloading it first when online and not cached.
    pub fn split_path(&self, task: Task, split: &str) -> Result<PathBuf> {
        check_split(task, split)?;
        let file = split_file(task, split);
        match &self.access {
            Access::Offline(cache) => cache.dataset(self.dataset.clone()).get(&file).ok_or_else(|| DataError::NotCached {
                dataset: self.dataset.clone(),
                task,
                split: split.to_string(),
                file: file.clone(),
                cache: cache.path().clone(),
            }),
            Access::Online(api) => api.dataset(self.dataset.clone()).get(&file).map_err(|cause| DataError::Hub {
                dataset: self.dataset.clone(),
                action: format!("cannot fetch `{file}`"),
                cause: cause.to_string(),
            }),
        }
    }

    /// Loads a split (see [`read_parquet_split`] for the schema it checks).
    pub fn load(&self, task: Task, split: &str) -> Result<Split> {
        let path = self.split_path(task, split)?;
        read_parquet_split(&path, task, split)
    }
}

/// The file of a split inside the dataset repository.
pub fn split_file(task: Task, split: &str) -> String {
    format!("{}/{split}-00000-of-00001.parquet", task.name())
}

fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|value| is_truthy(&value))
}

/// Boolean environment values as `huggingface_hub` reads them: 1/true/yes/on, any case.
fn is_truthy(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::split::{Example, Label};
    use crate::data::test_support::offline_glue;

    #[test]
    fn validation_row_counts_match_glue() {
        let glue = offline_glue();
        for (task, rows) in
            [(Task::Cola, 1043), (Task::Sst2, 872), (Task::Mrpc, 408), (Task::Stsb, 1500), (Task::Rte, 277), (Task::Qnli, 5463)]
        {
            let split = glue.load(task, "validation").unwrap();
            assert_eq!(split.len(), rows, "{task}");
            assert!(split.has_labels(), "{task}");
            assert!(split.origin.ends_with(&split_file(task, "validation")), "{}", split.origin);
        }
    }

    #[test]
    fn first_rows_read_back_exactly() {
        // Values read once with pyarrow from the same files.
        let glue = offline_glue();
        let first = |task, split| glue.load(task, split).unwrap().examples.swap_remove(0);
        assert_eq!(
            first(Task::Cola, "validation"),
            Example { idx: 0, text_a: "The sailors rode the breeze clear of the rocks.".into(), text_b: None, label: Label::Class(1) }
        );
        assert_eq!(
            first(Task::Sst2, "train"),
            Example { idx: 0, text_a: "hide new secretions from the parental units ".into(), text_b: None, label: Label::Class(0) }
        );
        // MRPC validation keeps the idx of msr_paraphrase_train.txt and an unbalanced leading quote.
        assert_eq!(
            first(Task::Mrpc, "validation"),
            Example {
                idx: 9,
                text_a: "He said the foodservice pie business doesn't fit the company's long-term growth strategy.".into(),
                text_b: Some("\"The foodservice pie business does not fit our long-term growth strategy.".into()),
                label: Label::Class(1),
            }
        );
        assert_eq!(
            first(Task::Stsb, "validation"),
            Example {
                idx: 0,
                text_a: "A man with a hard hat is dancing.".into(),
                text_b: Some("A man wearing a hard hat is dancing.".into()),
                label: Label::Score(5.0),
            }
        );
        assert_eq!(
            first(Task::Qnli, "validation"),
            Example {
                idx: 0,
                text_a: "What came into force after the new constitution was herald?".into(),
                text_b: Some("As of that day, the new constitution heralding the Second Republic came into force.".into()),
                label: Label::Class(0),
            }
        );
        let rte = first(Task::Rte, "validation");
        assert_eq!(rte.text_b.as_deref(), Some("Christopher Reeve had an accident."));
        assert_eq!(rte.label, Label::Class(1)); // not_entailment
    }

    #[test]
    fn test_splits_hide_labels_except_mrpc() {
        let glue = offline_glue();
        let cola = glue.load(Task::Cola, "test").unwrap();
        assert_eq!(cola.len(), 1063);
        assert!(cola.examples.iter().all(|e| e.label == Label::Class(-1)));
        let stsb = glue.load(Task::Stsb, "test").unwrap();
        assert!(stsb.examples.iter().all(|e| e.label.is_hidden()));
        assert!(glue.load(Task::Mrpc, "test").unwrap().has_labels());
    }

    #[test]
    fn split_missing_offline_is_a_clear_error() {
        let err = offline_glue().load(Task::Mnli, "validation_matched").unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, DataError::NotCached { .. }), "{message}");
        for part in ["nyu-mll/glue", "`mnli`", "`validation_matched`", "not cached", "HF_HUB_OFFLINE"] {
            assert!(message.contains(part), "{part} missing from: {message}");
        }
        let err = offline_glue().load(Task::Qnli, "train").unwrap_err().to_string();
        assert!(err.contains("qnli/train-00000-of-00001.parquet"), "{err}");
    }

    #[test]
    fn offline_flag_values() {
        for on in ["1", "true", "ON", " yes "] {
            assert!(is_truthy(on), "{on}");
        }
        for off in ["0", "", "false", "off", "no"] {
            assert!(!is_truthy(off), "{off}");
        }
    }

    #[test]
    fn unknown_split_is_rejected_before_any_lookup() {
        let err = offline_glue().load(Task::Rte, "dev").unwrap_err();
        assert_eq!(err.to_string(), "task `rte` has no split `dev` (known: train, validation, test)");
        assert!(offline_glue().split_path(Task::Mnli, "validation").is_err());
    }
}
