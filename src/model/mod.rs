//! Transformer encoder models (BERT and RoBERTa) for GLUE sequence classification.
//!
//! The encoder is written from differentiable candle ops, and its own fused CPU ops with a backward for
//! LayerNorm, softmax and GELU (candle's fused LayerNorm and softmax have none), so that every parameter
//! trains. Every `Linear` of the encoder and of the
//! classification head is a [`LinearLayer`] whose forward goes through a pluggable [`LinearForward`]
//! hook: the digital default computes `x·Wᵀ + b`; a PIM technology replaces it for all layers and may
//! filter by the layer's stable name (e.g. `encoder.layer.3.attention.self.query`).
//!
//! - [`config`]: `EncoderConfig` read from a Hugging Face `config.json`.
//! - [`linear`]: the linear-layer seam.
//! - [`layers`]: differentiable LayerNorm, softmax, embedding lookup, seeded dropout.
//! - [`fused`]: fused CPU kernels with a backward for LayerNorm, softmax and GELU.
//! - [`inputs`]: a padded batch of token ids.
//! - [`encoder`]: the model itself.
//! - [`init`]: Hugging Face style seeded random initialisation.
//! - [`load`]: loading from the hub or a local directory.
//! - [`checkpoint`]: saving a fine-tuned model in the Hugging Face layout.
//! - [`lora`]: LoRA adapters on the linear seam (the `lora` mode).

pub mod checkpoint;
pub mod config;
pub mod encoder;
mod error;
pub mod fused;
pub mod init;
pub mod inputs;
pub mod layers;
pub mod linear;
pub mod load;
pub mod lora;

#[cfg(test)]
mod tests;

pub use checkpoint::save_checkpoint;
pub use config::{Architecture, EncoderConfig};
pub use encoder::{EncoderOutput, Mode, SequenceClassifier};
pub use error::ModelError;
pub use init::random_model;
pub use inputs::EncoderInputs;
pub use linear::{Digital, LinearForward, LinearLayer};
pub use load::{HubAccess, LoadReport, LoadedModel, load_for_task, load_model, load_model_config};
