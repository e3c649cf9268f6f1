//! Loading a model by Hugging Face hub id or from a local directory: `config.json`,
//! `model.safetensors` and `tokenizer.json`.
//!
//! Tensor names may carry the `bert.`/`roberta.` prefix of `*ForSequenceClassification` checkpoints
//! or none (bare `BertModel` checkpoints such as all-MiniLM-L6-v2); old-style LayerNorm `gamma`/`beta`
//! names are accepted; language-model heads (`lm_head.*`, `cls.*`) are ignored. A missing
//! classification head (pooler, classifier) is initialised from the seed as Hugging Face does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;

use super::ModelError;
use super::config::EncoderConfig;
use super::encoder::SequenceClassifier;
use super::init::initialize_matching;
use crate::task::Task;

/// How hub ids are resolved: an `HF_HOME`-style cache, and whether the network may be used.
#[derive(Debug, Clone)]
pub struct HubAccess {
    cache: hf_hub::Cache,
    offline: bool,
}

impl HubAccess {
    /// `HF_HOME` (default `~/.cache/huggingface`) and `HF_HUB_OFFLINE`, as the Python libraries read them.
    pub fn from_env() -> Self {
        let offline = std::env::var("HF_HUB_OFFLINE")
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
            .unwrap_or(false);
        Self { cache: hf_hub::Cache::from_env(), offline }
    }

    /// Only the cache under `hf_home` (the directory holding `hub/`), never the network.
    pub fn offline(hf_home: &Path) -> Self {
        Self { cache: hf_hub::Cache::new(hf_home.join("hub")), offline: true }
    }

    /// The path of `file` in hub repository `model_id`, downloading it unless offline.
    fn get(&self, model_id: &str, file: &str) -> Result<PathBuf, ModelError> {
        let missing =
            |reason: String| ModelError::MissingFile { file: file.to_owned(), source_name: format!("hub model {model_id}"), reason };
        if self.offline {
            return self
                .cache
                .model(model_id.to_owned())
                .get(file)
                .ok_or_else(|| missing(format!("not in the offline cache {} (HF_HUB_OFFLINE is set)", self.cache.path().display())));
        }
        let api = hf_hub::api::sync::ApiBuilder::from_cache(self.cache.clone()).build().map_err(|e| missing(e.to_string()))?;
        api.model(model_id.to_owned()).get(file).map_err(|e| missing(e.to_string()))
    }
}

/// Where a model comes from: a local directory (a saved checkpoint) or a hub id.
#[derive(Debug, Clone)]
enum ModelSource {
    Directory(PathBuf),
    Hub(String),
}

impl ModelSource {
    /// An existing directory wins over a hub id of the same spelling, as in Hugging Face.
    fn parse(source: &str) -> Self {
        let path = Path::new(source);
        if path.is_dir() { Self::Directory(path.to_owned()) } else { Self::Hub(source.to_owned()) }
    }

    fn file(&self, file: &str, hub: &HubAccess) -> Result<PathBuf, ModelError> {
        match self {
            Self::Directory(dir) => {
                let path = dir.join(file);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(ModelError::MissingFile {
                        file: file.to_owned(),
                        source_name: format!("directory {}", dir.display()),
                        reason: "no such file".into(),
                    })
                }
            }
            Self::Hub(id) => hub.get(id, file),
        }
    }
}

/// A loaded model with its tokenizer.
pub struct LoadedModel {
    pub model: SequenceClassifier,
    /// The model's tokenizer with any fixed padding removed (batches are padded dynamically); its
    /// truncation settings are kept as the file has them.
    pub tokenizer: Tokenizer,
    pub report: LoadReport,
}

/// What loading did besides copying tensors.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Parameters absent from the checkpoint and initialised from the seed (the head).
    pub initialised: Vec<String>,
    /// Checkpoint tensors the model does not use (besides language-model heads and buffers).
    pub unused: Vec<String>,
}

/// Loads the model for `task` (its number of labels); see [`load_model`].
pub fn load_for_task(source: &str, task: Task, seed: u64, device: &Device, hub: &HubAccess) -> Result<LoadedModel, ModelError> {
    load_model(source, task.num_labels(), seed, device, hub)
}

/// Loads `config.json`, `model.safetensors` and `tokenizer.json` from a local directory or hub id.
/// A missing head is initialised from `seed`, which also seeds dropout.
pub fn load_model(source: &str, num_labels: usize, seed: u64, device: &Device, hub: &HubAccess) -> Result<LoadedModel, ModelError> {
    let source = ModelSource::parse(source);
    let config = EncoderConfig::from_file(&source.file("config.json", hub)?)?;
    let weights_path = source.file("model.safetensors", hub).map_err(|e| match (&source, e) {
        // Say why a PyTorch-only checkpoint directory is rejected.
        (ModelSource::Directory(dir), ModelError::MissingFile { file, source_name, .. }) if dir.join("pytorch_model.bin").is_file() => {
            ModelError::MissingFile {
                file,
                source_name,
                reason: "only safetensors weights are supported; convert pytorch_model.bin".into(),
            }
        }
        (_, e) => e,
    })?;
    let tokenizer = load_tokenizer(&source.file("tokenizer.json", hub)?)?;
    let model = SequenceClassifier::zeroed(&config, num_labels, device)?;
    let report = load_weights(&model, &weights_path, seed)?;
    model.reseed_dropout(seed);
    Ok(LoadedModel { model, tokenizer, report })
}

/// The config and tokenizer of a model without its weights (the `random` technology draws them).
pub fn load_model_config(source: &str, hub: &HubAccess) -> Result<(EncoderConfig, Tokenizer), ModelError> {
    let source = ModelSource::parse(source);
    let config = EncoderConfig::from_file(&source.file("config.json", hub)?)?;
    let tokenizer = load_tokenizer(&source.file("tokenizer.json", hub)?)?;
    Ok((config, tokenizer))
}

/// Reads `tokenizer.json` and removes fixed padding.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer, ModelError> {
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer { path: path.to_owned(), reason: e.to_string() })?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// Copies the tensors of a safetensors file into `model`'s parameters, checking names and shapes,
/// and initialises missing head parameters from `seed`.
pub fn load_weights(model: &SequenceClassifier, path: &Path, seed: u64) -> Result<LoadReport, ModelError> {
    let read_error = |e: candle_core::Error| ModelError::Read { path: path.to_owned(), reason: e.to_string() };
    let raw = candle_core::safetensors::load(path, model.device()).map_err(read_error)?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut unused = Vec::new();
    for (file_name, tensor) in raw {
        match model_name(&file_name) {
            Some(name) => {
                tensors.insert(name, tensor);
            }
            None if is_ignored(&file_name) => {}
            None => unused.push(file_name),
        }
    }
    let mut missing_head = Vec::new();
    for (name, var) in model.vars() {
        let Some(tensor) = tensors.remove(&name) else {
            if is_head_parameter(&name) {
                missing_head.push(name);
                continue;
            }
            return Err(ModelError::MissingTensor { name, path: path.to_owned() });
        };
        if tensor.dims() != var.dims() {
            return Err(ModelError::ShapeMismatch {
                name,
                path: path.to_owned(),
                expected: var.dims().to_vec(),
                found: tensor.dims().to_vec(),
            });
        }
        var.set(&tensor.to_dtype(DType::F32)?)?;
    }
    unused.extend(tensors.into_keys().filter(|n| !is_ignored(n)));
    unused.sort();
    let initialised = initialize_matching(model, seed, |n| missing_head.iter().any(|m| m == n))?;
    Ok(LoadReport { initialised, unused })
}

/// The model's parameter name for a checkpoint tensor name: prefix stripped, `gamma`/`beta` renamed.
/// `None` for tensors that can never be parameters (language-model heads).
fn model_name(file_name: &str) -> Option<String> {
    if file_name.starts_with("lm_head.") || file_name.starts_with("cls.") {
        return None;
    }
    let name = file_name.strip_prefix("bert.").or_else(|| file_name.strip_prefix("roberta.")).unwrap_or(file_name);
    let name = if let Some(stem) = name.strip_suffix("LayerNorm.gamma") {
        format!("{stem}LayerNorm.weight")
    } else if let Some(stem) = name.strip_suffix("LayerNorm.beta") {
        format!("{stem}LayerNorm.bias")
    } else {
        name.to_owned()
    };
    Some(name)
}

/// Tensors a checkpoint may carry that the classifier never uses: language-model heads and the
/// `position_ids` buffer.
fn is_ignored(file_name: &str) -> bool {
    file_name.starts_with("lm_head.") || file_name.starts_with("cls.") || file_name.ends_with("embeddings.position_ids")
}

/// Parameters Hugging Face initialises when a checkpoint lacks them (the task head).
fn is_head_parameter(name: &str) -> bool {
    name.starts_with("classifier.") || name.starts_with("pooler.")
}
