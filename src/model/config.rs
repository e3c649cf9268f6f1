//! `EncoderConfig`: the hyper-parameters of a BERT or RoBERTa encoder, read from a Hugging Face
//! `config.json`. RoBERTa-family configs often omit fields that only BERT needs (or that the fairseq
//! conversion fixed), so missing fields default per architecture.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::ModelError;

/// The encoder family. It decides the tensor-name prefix, the position ids and the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Bert,
    /// RoBERTa and XLM-RoBERTa (same graph, different vocabulary).
    Roberta,
}

impl Architecture {
    /// The prefix of the encoder's tensors in Hugging Face `*ForSequenceClassification` checkpoints.
    pub fn hf_prefix(self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::Roberta => "roberta",
        }
    }

    /// The `architectures` entry Hugging Face writes for a sequence classifier.
    pub fn hf_classifier_class(self, model_type: &str) -> &'static str {
        match (self, model_type) {
            (Architecture::Bert, _) => "BertForSequenceClassification",
            (Architecture::Roberta, "xlm-roberta") => "XLMRobertaForSequenceClassification",
            (Architecture::Roberta, _) => "RobertaForSequenceClassification",
        }
    }
}

/// Encoder hyper-parameters. Field names and meanings follow Hugging Face's `BertConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    pub architecture: Architecture,
    /// The `model_type` string as read ("bert", "roberta", "xlm-roberta"); written back on save.
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub hidden_dropout_prob: f32,
    pub attention_probs_dropout_prob: f32,
    /// Dropout before the classifier; `None` means `hidden_dropout_prob` (as in Hugging Face).
    pub classifier_dropout: Option<f32>,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub initializer_range: f64,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    /// Number of labels of a saved classification head (from `id2label`), if the file has one.
    pub num_labels: Option<usize>,
}

/// `config.json` as written by Hugging Face; every field optional so defaults can depend on the
/// architecture.
#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    hidden_act: Option<String>,
    hidden_dropout_prob: Option<f32>,
    attention_probs_dropout_prob: Option<f32>,
    classifier_dropout: Option<f32>,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    initializer_range: Option<f64>,
    layer_norm_eps: Option<f64>,
    pad_token_id: Option<u32>,
    position_embedding_type: Option<String>,
    id2label: Option<BTreeMap<String, String>>,
    num_labels: Option<usize>,
}

impl EncoderConfig {
    /// Reads and validates a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Read { path: path.to_owned(), reason: e.to_string() })?;
        Self::from_json_str(&text, path)
    }

    /// Parses a `config.json` text; `path` is only used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self, ModelError> {
        let config_error = |reason: String| ModelError::Config { path: path.to_owned(), reason };
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| config_error(e.to_string()))?;
        let model_type = raw.model_type.ok_or_else(|| config_error("no \"model_type\" field".into()))?;
        let architecture = match model_type.as_str() {
            "bert" => Architecture::Bert,
            "roberta" | "xlm-roberta" => Architecture::Roberta,
            _ => {
                return Err(ModelError::UnknownArchitecture { path: path.to_owned(), value: model_type });
            }
        };
        if let Some(kind) = raw.position_embedding_type.as_deref()
            && kind != "absolute"
        {
            return Err(config_error(format!("position_embedding_type {kind:?} is not supported (only \"absolute\")")));
        }
        // Defaults: Hugging Face's BertConfig for BERT; for RoBERTa the values every released
        // checkpoint uses (fairseq conversion), which HF's RobertaConfig defaults do not all match.
        let (vocab, max_pos, type_vocab, eps, pad) = match (architecture, model_type.as_str()) {
            (Architecture::Bert, _) => (30522, 512, 2, 1e-12, 0),
            (Architecture::Roberta, "xlm-roberta") => (250002, 514, 1, 1e-5, 1),
            (Architecture::Roberta, _) => (50265, 514, 1, 1e-5, 1),
        };
        let config = EncoderConfig {
            architecture,
            vocab_size: raw.vocab_size.unwrap_or(vocab),
            hidden_size: raw.hidden_size.unwrap_or(768),
            num_hidden_layers: raw.num_hidden_layers.unwrap_or(12),
            num_attention_heads: raw.num_attention_heads.unwrap_or(12),
            intermediate_size: raw.intermediate_size.unwrap_or(3072),
            hidden_act: raw.hidden_act.unwrap_or_else(|| "gelu".into()),
            hidden_dropout_prob: raw.hidden_dropout_prob.unwrap_or(0.1),
            attention_probs_dropout_prob: raw.attention_probs_dropout_prob.unwrap_or(0.1),
            classifier_dropout: raw.classifier_dropout,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(max_pos),
            type_vocab_size: raw.type_vocab_size.unwrap_or(type_vocab),
            initializer_range: raw.initializer_range.unwrap_or(0.02),
            layer_norm_eps: raw.layer_norm_eps.unwrap_or(eps),
            pad_token_id: raw.pad_token_id.unwrap_or(pad),
            num_labels: raw.id2label.map(|m| m.len()).or(raw.num_labels),
            model_type,
        };
        config.validate().map_err(config_error)?;
        Ok(config)
    }

    /// Checks the invariants the encoder relies on.
    fn validate(&self) -> Result<(), String> {
        if self.hidden_size == 0 || self.num_attention_heads == 0 {
            return Err("hidden_size and num_attention_heads must be positive".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!("hidden_size {} is not a multiple of num_attention_heads {}", self.hidden_size, self.num_attention_heads));
        }
        if !matches!(self.hidden_act.as_str(), "gelu" | "gelu_python") {
            return Err(format!("hidden_act {:?} is not supported (only the erf GELU, \"gelu\")", self.hidden_act));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
            ("classifier_dropout", self.classifier_dropout.unwrap_or(0.0)),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{name} {p} is not in [0, 1)"));
            }
        }
        if self.type_vocab_size == 0 {
            return Err("type_vocab_size must be at least 1".into());
        }
        if self.pad_token_id as usize >= self.vocab_size {
            return Err(format!("pad_token_id {} is outside the vocabulary ({})", self.pad_token_id, self.vocab_size));
        }
        Ok(())
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Dropout applied before the classifier (`classifier_dropout`, else `hidden_dropout_prob`).
    pub fn classifier_dropout_prob(&self) -> f32 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    /// The first position id: RoBERTa numbers positions from `pad_token_id + 1` (fairseq legacy).
    pub fn position_offset(&self) -> usize {
        match self.architecture {
            Architecture::Bert => 0,
            Architecture::Roberta => self.pad_token_id as usize + 1,
        }
    }

    /// The longest sequence the position table can hold.
    pub fn max_sequence_length(&self) -> usize {
        self.max_position_embeddings.saturating_sub(self.position_offset())
    }

    /// The Hugging Face `config.json` of a sequence classifier with `num_labels` outputs.
    pub fn to_hf_json(&self, num_labels: usize) -> serde_json::Value {
        let id2label: BTreeMap<String, String> = (0..num_labels).map(|i| (i.to_string(), format!("LABEL_{i}"))).collect();
        let label2id: BTreeMap<String, usize> = (0..num_labels).map(|i| (format!("LABEL_{i}"), i)).collect();
        let mut json = serde_json::json!({
            "architectures": [self.architecture.hf_classifier_class(&self.model_type)],
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "classifier_dropout": self.classifier_dropout,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "initializer_range": self.initializer_range,
            "layer_norm_eps": self.layer_norm_eps,
            "pad_token_id": self.pad_token_id,
            "position_embedding_type": "absolute",
            "id2label": id2label,
            "label2id": label2id,
        });
        if num_labels == 1 {
            json["problem_type"] = "regression".into();
        }
        json
    }
}
