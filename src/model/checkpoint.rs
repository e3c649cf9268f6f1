//! Saving a (fine-tuned) model as a Hugging Face `*ForSequenceClassification` directory:
//! `model.safetensors` with Hugging Face tensor names (`bert.`/`roberta.` prefix on the encoder, bare
//! `classifier.*`), `config.json` with the label count, and `tokenizer.json`. The directory loads back
//! with [`super::load_model`] (a local path works wherever a hub id does) and in Python `transformers`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use tokenizers::Tokenizer;

use super::ModelError;
use super::encoder::SequenceClassifier;

/// Writes `model`, its config and `tokenizer` into `dir` (created if needed; files overwritten).
pub fn save_checkpoint(model: &SequenceClassifier, tokenizer: &Tokenizer, dir: &Path) -> Result<(), ModelError> {
    let write_error = |path: &Path, reason: String| ModelError::Write { path: path.to_owned(), reason };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e.to_string()))?;

    let prefix = model.config().architecture.hf_prefix();
    let tensors: HashMap<String, Tensor> = model
        .vars()
        .into_iter()
        .map(|(name, var)| {
            let hf_name = if name.starts_with("classifier.") { name } else { format!("{prefix}.{name}") };
            (hf_name, var.as_tensor().clone())
        })
        .collect();
    let weights_path = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &weights_path).map_err(|e| write_error(&weights_path, e.to_string()))?;

    let config_path = dir.join("config.json");
    let config_json = model.config().to_hf_json(model.num_labels());
    let text = serde_json::to_string_pretty(&config_json).map_err(|e| write_error(&config_path, e.to_string()))?;
    std::fs::write(&config_path, text + "\n").map_err(|e| write_error(&config_path, e.to_string()))?;

    let tokenizer_path = dir.join("tokenizer.json");
    tokenizer.save(&tokenizer_path, false).map_err(|e| write_error(&tokenizer_path, e.to_string()))?;
    Ok(())
}
