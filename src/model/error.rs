//! The error type of model construction, loading and saving.

use std::path::PathBuf;

/// Everything that can go wrong when building, loading or saving a model. Messages name the file or
/// tensor concerned so that a user can fix the input.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {file:?} not found in {source_name}: {reason}")]
    MissingFile { file: String, source_name: String, reason: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("invalid model config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("unsupported model_type {value:?} in {path} (supported: \"bert\", \"roberta\", \"xlm-roberta\")")]
    UnknownArchitecture { path: PathBuf, value: String },
    #[error("tensor {name:?} missing from {path}")]
    MissingTensor { name: String, path: PathBuf },
    #[error("tensor {name:?} in {path} has shape {found:?}, the model expects {expected:?}")]
    ShapeMismatch { name: String, path: PathBuf, expected: Vec<usize>, found: Vec<usize> },
    #[error("invalid tokenizer {path}: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    #[error("invalid model inputs: {0}")]
    Inputs(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
