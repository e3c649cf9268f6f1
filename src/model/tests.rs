//! Unit tests of the model: gradients reach every parameter, seeded initialisation, dropout modes,
//! config defaults, the linear seam, loading errors and checkpoint round trips. Numerics against the
//! Hugging Face reference are in `tests/model_golden.rs`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};

use super::*;

pub(super) fn tiny_config(architecture: Architecture) -> EncoderConfig {
    let json = match architecture {
        Architecture::Bert => {
            r#"{"model_type": "bert", "vocab_size": 100, "hidden_size": 16, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32}"#
        }
        Architecture::Roberta => {
            r#"{"model_type": "roberta", "vocab_size": 100, "hidden_size": 16, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 34}"#
        }
    };
    EncoderConfig::from_json_str(json, Path::new("tiny/config.json")).unwrap()
}

/// Two sequences, the second padded, with both token types used (BERT).
pub(super) fn tiny_inputs(config: &EncoderConfig) -> EncoderInputs {
    let pad = config.pad_token_id;
    let dev = Device::Cpu;
    let ids = Tensor::new(&[[5u32, 17, 42, 8, 9, 3], [5, 23, 61, 7, pad, pad]], &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], &dev).unwrap();
    let types = match config.type_vocab_size {
        1 => None,
        _ => Some(Tensor::new(&[[0u32, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0]], &dev).unwrap()),
    };
    EncoderInputs { input_ids: ids, attention_mask: mask, token_type_ids: types }
}

fn logits_vec(model: &SequenceClassifier, mode: Mode) -> Vec<Vec<f32>> {
    let inputs = tiny_inputs(model.config());
    model.forward(&inputs, mode).unwrap().to_vec2().unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

fn golden_tokenizer_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/tiny-roberta/tokenizer.json")
}

const ARCHITECTURES: [Architecture; 2] = [Architecture::Bert, Architecture::Roberta];

#[test]
fn every_parameter_receives_a_finite_nonzero_gradient() {
    for architecture in ARCHITECTURES {
        let config = tiny_config(architecture);
        let model = random_model(&config, 3, 7, &Device::Cpu).unwrap();
        let logits = model.forward(&tiny_inputs(&config), Mode::Train).unwrap();
        let labels = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
        let grads = loss.backward().unwrap();
        let mut failures = Vec::new();
        for (name, var) in model.vars() {
            let Some(grad) = grads.get(var.as_tensor()) else {
                failures.push(format!("{name}: no gradient"));
                continue;
            };
            let values: Vec<f32> = grad.flatten_all().unwrap().to_vec1().unwrap();
            let max_abs = values.iter().fold(0f32, |m, v| m.max(v.abs()));
            if values.iter().any(|v| !v.is_finite()) {
                failures.push(format!("{name}: non-finite gradient"));
            } else if max_abs == 0.0 && !name.ends_with("attention.self.key.bias") {
                // The key bias adds the same q·b to every score of a softmax row, so its exact
                // gradient is zero (as in PyTorch); only finiteness is required of it.
                failures.push(format!("{name}: zero gradient"));
            }
        }
        assert!(failures.is_empty(), "{architecture:?}: {failures:#?}");
        assert_eq!(model.vars().len(), 5 + 16 * config.num_hidden_layers + 4);
    }
}

#[test]
fn models_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SequenceClassifier>();
    assert_send_sync::<Arc<dyn LinearForward>>();
}

#[test]
fn seeded_initialisation_is_deterministic() {
    for architecture in ARCHITECTURES {
        let config = tiny_config(architecture);
        let a = random_model(&config, 2, 11, &Device::Cpu).unwrap();
        let b = random_model(&config, 2, 11, &Device::Cpu).unwrap();
        let c = random_model(&config, 2, 12, &Device::Cpu).unwrap();
        assert_eq!(logits_vec(&a, Mode::Eval), logits_vec(&b, Mode::Eval));
        assert_ne!(logits_vec(&a, Mode::Eval), logits_vec(&c, Mode::Eval));
    }
}

#[test]
fn initialisation_follows_hugging_face() {
    let config = tiny_config(Architecture::Roberta);
    let model = random_model(&config, 2, 3, &Device::Cpu).unwrap();
    let vars: std::collections::HashMap<String, candle_core::Var> = model.vars().into_iter().collect();
    let values = |name: &str| -> Vec<f32> { vars[name].flatten_all().unwrap().to_vec1().unwrap() };
    assert!(values("embeddings.LayerNorm.weight").iter().all(|&v| v == 1.0));
    assert!(values("encoder.layer.1.output.dense.bias").iter().all(|&v| v == 0.0));
    let pad = config.pad_token_id as usize;
    for table in ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"] {
        let row = vars[table].get(pad).unwrap().to_vec1::<f32>().unwrap();
        assert!(row.iter().all(|&v| v == 0.0), "{table} padding row is not zero");
    }
    let weights = values("encoder.layer.0.intermediate.dense.weight");
    let n = weights.len() as f32;
    let std = (weights.iter().map(|v| v * v).sum::<f32>() / n).sqrt();
    assert!((std - 0.02).abs() < 0.005, "weight std {std}");
}

#[test]
fn dropout_only_in_training() {
    for architecture in ARCHITECTURES {
        let model = random_model(&tiny_config(architecture), 2, 5, &Device::Cpu).unwrap();
        assert_eq!(logits_vec(&model, Mode::Eval), logits_vec(&model, Mode::Eval));
        assert_ne!(logits_vec(&model, Mode::Train), logits_vec(&model, Mode::Train));
        // Reseeding replays the same masks.
        model.reseed_dropout(99);
        let first = logits_vec(&model, Mode::Train);
        model.reseed_dropout(99);
        assert_eq!(first, logits_vec(&model, Mode::Train));
    }
}

#[test]
fn roberta_config_defaults_missing_fields() {
    let json = r#"{"model_type": "roberta", "hidden_size": 64, "num_attention_heads": 4,
                   "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 1000}"#;
    let c = EncoderConfig::from_json_str(json, Path::new("config.json")).unwrap();
    assert_eq!(c.architecture, Architecture::Roberta);
    assert_eq!(c.type_vocab_size, 1);
    assert_eq!(c.pad_token_id, 1);
    assert_eq!(c.position_offset(), 2);
    assert_eq!(c.max_position_embeddings, 514);
    assert_eq!(c.max_sequence_length(), 512);
    assert_eq!(c.layer_norm_eps, 1e-5);
    assert_eq!(c.hidden_dropout_prob, 0.1);
    assert_eq!(c.attention_probs_dropout_prob, 0.1);
    assert_eq!(c.classifier_dropout_prob(), 0.1);
    assert_eq!(c.initializer_range, 0.02);
    assert_eq!(c.hidden_act, "gelu");
    assert_eq!(c.num_labels, None);

    let xlm = r#"{"model_type": "xlm-roberta", "id2label": {"0": "a", "1": "b", "2": "c"}}"#;
    let c = EncoderConfig::from_json_str(xlm, Path::new("config.json")).unwrap();
    assert_eq!((c.architecture, c.vocab_size, c.num_labels), (Architecture::Roberta, 250002, Some(3)));
}

#[test]
fn config_errors_name_the_file_and_value() {
    let err = EncoderConfig::from_json_str(r#"{"model_type": "gpt2"}"#, Path::new("/x/config.json")).unwrap_err().to_string();
    assert!(err.contains("/x/config.json") && err.contains("gpt2"), "{err}");
    let err = EncoderConfig::from_json_str(r#"{"model_type": "bert", "hidden_size": 10, "num_attention_heads": 4}"#, Path::new("c.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("c.json") && err.contains("multiple"), "{err}");
    let err = EncoderConfig::from_json_str("{", Path::new("c.json")).unwrap_err().to_string();
    assert!(err.contains("c.json"), "{err}");
}

/// Records every call and scales the digital result, to show the hook replaces every layer.
struct Recording {
    calls: Mutex<Vec<String>>,
}

impl LinearForward for Recording {
    fn forward(&self, layer: &LinearLayer, x: &Tensor, _mode: Mode) -> candle_core::Result<Tensor> {
        self.calls.lock().unwrap().push(layer.name().to_owned());
        layer.digital_forward(x)? * 0.5
    }
}

#[test]
fn linear_hook_sees_every_named_layer() {
    for architecture in ARCHITECTURES {
        let config = tiny_config(architecture);
        let mut model = random_model(&config, 2, 1, &Device::Cpu).unwrap();
        let names: Vec<String> = model.linear_layer_names().map(str::to_owned).collect();
        assert_eq!(names.len(), 6 * config.num_hidden_layers + 2);
        assert_eq!(names[0], "encoder.layer.0.attention.self.query");
        assert_eq!(names[9], "encoder.layer.1.attention.output.dense");
        let head: &[&str] = match architecture {
            Architecture::Bert => &["pooler.dense", "classifier"],
            Architecture::Roberta => &["classifier.dense", "classifier.out_proj"],
        };
        assert_eq!(&names[names.len() - 2..], head);
        for layer in model.linear_layers() {
            assert_eq!(layer.weight().dims(), [layer.out_features(), layer.in_features()]);
            assert_eq!(layer.bias().dims(), [layer.out_features()]);
        }

        let digital = logits_vec(&model, Mode::Eval);
        let recording = Arc::new(Recording { calls: Mutex::new(Vec::new()) });
        model.set_linear_forward(recording.clone());
        let halved = logits_vec(&model, Mode::Eval);
        assert_eq!(*recording.calls.lock().unwrap(), names);
        assert_ne!(digital, halved);
    }
}

#[test]
fn digital_forward_matches_candle_linear() {
    let model = random_model(&tiny_config(Architecture::Bert), 2, 1, &Device::Cpu).unwrap();
    let layer = model.linear_layers().nth(4).unwrap();
    let linear = candle_nn::Linear::new(layer.weight().clone(), Some(layer.bias().clone()));
    let x3 = Tensor::randn(0f32, 1.0, (2, 5, layer.in_features()), &Device::Cpu).unwrap();
    let x2 = x3.get(0).unwrap();
    use candle_core::Module;
    for x in [&x3, &x2] {
        let diff = max_abs_diff(&layer.digital_forward(x).unwrap(), &linear.forward(x).unwrap());
        assert!(diff < 1e-5, "{diff}");
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let config = tiny_config(Architecture::Bert);
    let model = random_model(&config, 2, 1, &Device::Cpu).unwrap();
    let dev = Device::Cpu;
    let mut inputs = tiny_inputs(&config);
    inputs.input_ids = Tensor::new(&[[5u32, 100, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], &dev).unwrap();
    assert!(model.forward(&inputs, Mode::Eval).is_err(), "token id outside the vocabulary");
    let mut inputs = tiny_inputs(&config);
    inputs.attention_mask = Tensor::ones((2, 5), DType::U32, &dev).unwrap();
    assert!(model.forward(&inputs, Mode::Eval).is_err(), "mask shape");
    let inputs = EncoderInputs {
        input_ids: Tensor::ones((1, 33), DType::U32, &dev).unwrap(),
        attention_mask: Tensor::ones((1, 33), DType::U32, &dev).unwrap(),
        token_type_ids: None,
    };
    assert!(model.forward(&inputs, Mode::Eval).is_err(), "longer than the position table");
}

/// Saves a seeded tiny model with the golden tokenizer into a fresh directory.
fn saved_tiny_model(architecture: Architecture) -> (SequenceClassifier, tempfile::TempDir) {
    let model = random_model(&tiny_config(architecture), 3, 21, &Device::Cpu).unwrap();
    let tokenizer = load::load_tokenizer(&golden_tokenizer_path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_checkpoint(&model, &tokenizer, dir.path()).unwrap();
    (model, dir)
}

fn load_dir(dir: &Path, num_labels: usize) -> Result<LoadedModel, ModelError> {
    let hub = HubAccess::offline(&dir.join("no-hub"));
    load_model(dir.to_str().unwrap(), num_labels, 0, &Device::Cpu, &hub)
}

#[test]
fn checkpoint_round_trip_gives_identical_logits() {
    for architecture in ARCHITECTURES {
        let (model, dir) = saved_tiny_model(architecture);
        let loaded = load_dir(dir.path(), 3).unwrap();
        assert!(loaded.report.initialised.is_empty() && loaded.report.unused.is_empty());
        assert_eq!(logits_vec(&model, Mode::Eval), logits_vec(&loaded.model, Mode::Eval));
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(config["id2label"].as_object().unwrap().len(), 3);
    }
}

/// Rewrites `model.safetensors` in `dir` through `edit` (name → tensor map).
fn edit_weights(dir: &Path, edit: impl FnOnce(&mut std::collections::HashMap<String, Tensor>)) {
    let path = dir.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &path).unwrap();
}

#[test]
fn missing_head_is_initialised_from_the_seed() {
    let (_, dir) = saved_tiny_model(Architecture::Roberta);
    edit_weights(dir.path(), |t| t.retain(|name, _| !name.starts_with("classifier.")));
    let loaded = load_dir(dir.path(), 3).unwrap();
    let mut expected = vec!["classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias", "classifier.out_proj.weight"];
    expected.sort();
    assert_eq!(loaded.report.initialised, expected);
    // Same values as the head of a fully random model with that seed (seed 0 in load_dir).
    let reference = random_model(loaded.model.config(), 3, 0, &Device::Cpu).unwrap();
    let head = |m: &SequenceClassifier| m.linear_layers().last().unwrap().weight().to_vec2::<f32>().unwrap();
    assert_eq!(head(&loaded.model), head(&reference));
}

#[test]
fn prefixless_and_gamma_beta_names_load() {
    let (model, dir) = saved_tiny_model(Architecture::Bert);
    edit_weights(dir.path(), |tensors| {
        let renamed = std::mem::take(tensors).into_iter().map(|(name, t)| {
            let name = name.strip_prefix("bert.").unwrap_or(&name).to_owned();
            let name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta");
            (name, t)
        });
        tensors.extend(renamed);
        tensors.insert("cls.predictions.bias".into(), Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap());
    });
    let loaded = load_dir(dir.path(), 3).unwrap();
    assert!(loaded.report.unused.is_empty(), "{:?}", loaded.report.unused);
    assert_eq!(logits_vec(&model, Mode::Eval), logits_vec(&loaded.model, Mode::Eval));
}

#[test]
fn shape_mismatch_names_the_tensor_and_both_shapes() {
    let (_, dir) = saved_tiny_model(Architecture::Bert);
    let config_path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, text.replace("\"intermediate_size\": 32", "\"intermediate_size\": 48")).unwrap();
    let err = load_dir(dir.path(), 3).err().unwrap().to_string();
    assert!(err.contains("encoder.layer.0.intermediate.dense.bias") || err.contains("encoder.layer.0.intermediate.dense.weight"), "{err}");
    assert!(err.contains("[48") && err.contains("[32"), "{err}");

    // A head saved with 3 labels does not fit a 2-label model.
    let (_, dir) = saved_tiny_model(Architecture::Roberta);
    let err = load_dir(dir.path(), 2).err().unwrap().to_string();
    assert!(err.contains("classifier.out_proj") && err.contains("[2") && err.contains("[3"), "{err}");
}

#[test]
fn missing_tensor_and_missing_file_are_named() {
    let (_, dir) = saved_tiny_model(Architecture::Roberta);
    edit_weights(dir.path(), |t| {
        t.remove("roberta.encoder.layer.1.attention.self.value.weight");
    });
    let err = load_dir(dir.path(), 3).err().unwrap().to_string();
    assert!(err.contains("encoder.layer.1.attention.self.value.weight"), "{err}");

    for file in ["model.safetensors", "config.json", "tokenizer.json"] {
        let (_, dir) = saved_tiny_model(Architecture::Bert);
        std::fs::remove_file(dir.path().join(file)).unwrap();
        let err = load_dir(dir.path(), 3).err().unwrap().to_string();
        assert!(err.contains(file), "{err}");
    }

    let (_, dir) = saved_tiny_model(Architecture::Bert);
    std::fs::rename(dir.path().join("model.safetensors"), dir.path().join("pytorch_model.bin")).unwrap();
    let err = load_dir(dir.path(), 3).err().unwrap().to_string();
    assert!(err.contains("model.safetensors") && err.contains("pytorch_model.bin"), "{err}");

    let hub = HubAccess::offline(Path::new("/nonexistent-hf-home"));
    let err = load_model("nobody/no-such-model", 2, 0, &Device::Cpu, &hub).err().unwrap().to_string();
    assert!(err.contains("config.json") && err.contains("nobody/no-such-model"), "{err}");
}
