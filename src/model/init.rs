//! Seeded random initialisation, as Hugging Face's `_init_weights` does it: Linear and Embedding
//! weights `N(0, initializer_range)`, biases 0, LayerNorm weight 1 and bias 0, and the padding row of
//! padded embeddings zero (word embeddings; RoBERTa's position embeddings too).
//!
//! Each parameter draws from its own generator seeded by `(seed, name)`, so initialising only a
//! missing head gives the same values it would have in a fully random model with that seed, and the
//! values do not depend on iteration order.

use candle_core::{Device, Result, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use super::config::{Architecture, EncoderConfig};
use super::encoder::SequenceClassifier;

/// A model with all parameters drawn from `seed` (the "random" technology's model and tests' models).
pub fn random_model(config: &EncoderConfig, num_labels: usize, seed: u64, device: &Device) -> Result<SequenceClassifier> {
    let model = SequenceClassifier::zeroed(config, num_labels, device)?;
    initialize_matching(&model, seed, |_| true)?;
    model.reseed_dropout(seed);
    Ok(model)
}

/// Re-initialises every parameter whose name satisfies `select`; returns the names initialised.
pub fn initialize_matching(model: &SequenceClassifier, seed: u64, select: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let config = model.config();
    let mut initialised = Vec::new();
    for (name, var) in model.vars() {
        if !select(&name) {
            continue;
        }
        let dims = var.dims().to_vec();
        let values = initial_values(config, &name, &dims, seed)?;
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
        initialised.push(name);
    }
    Ok(initialised)
}

/// The Hugging Face initial values of the parameter `name` with shape `dims`.
fn initial_values(config: &EncoderConfig, name: &str, dims: &[usize], seed: u64) -> Result<Vec<f32>> {
    let count: usize = dims.iter().product();
    if name.ends_with("LayerNorm.weight") {
        return Ok(vec![1.0; count]);
    }
    if name.ends_with(".bias") {
        return Ok(vec![0.0; count]);
    }
    let normal =
        Normal::new(0.0f32, config.initializer_range as f32).map_err(|e| candle_core::Error::Msg(format!("initializer_range: {e}")))?;
    let mut rng = StdRng::seed_from_u64(seed ^ name_hash(name));
    let mut values: Vec<f32> = (0..count).map(|_| normal.sample(&mut rng)).collect();
    let has_padding_row = name == "embeddings.word_embeddings.weight"
        || (name == "embeddings.position_embeddings.weight" && config.architecture == Architecture::Roberta);
    let pad = config.pad_token_id as usize;
    if has_padding_row && dims.len() == 2 && pad < dims[0] {
        let width = dims[1];
        values[pad * width..(pad + 1) * width].fill(0.0);
    }
    Ok(values)
}

/// A stable 64-bit hash of a parameter name (independent of Rust's randomised `Hash`).
fn name_hash(name: &str) -> u64 {
    let digest = blake3::hash(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(bytes)
}
