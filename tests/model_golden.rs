//! Numerics of the encoder against Hugging Face `transformers` (golden files written by
//! `tests/golden/make_golden.py`): token ids must match exactly, outputs within 1e-4 relative
//! (max abs difference / max abs reference).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use pimsweep::model::{EncoderInputs, HubAccess, Mode, load_model};

const TOLERANCE: f32 = 1e-4;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// `HF_HOME` if set (CI), else the shared offline cache next to the repository.
fn hf_home() -> PathBuf {
    match std::env::var_os("HF_HOME") {
        Some(home) => PathBuf::from(home),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/hf")
            .canonicalize()
            .expect("no HF_HOME and no ../shared/hf offline hub cache"),
    }
}

struct Golden {
    pairs: Vec<(String, String)>,
    tensors: std::collections::HashMap<String, Tensor>,
}

fn read_golden(stem: &str) -> Golden {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden_dir().join(format!("{stem}.json"))).unwrap()).unwrap();
    let pairs =
        json["pairs"].as_array().unwrap().iter().map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned())).collect();
    let tensors = candle_core::safetensors::load(golden_dir().join(format!("{stem}.safetensors")), &Device::Cpu).unwrap();
    Golden { pairs, tensors }
}

/// Tokenizes the golden pairs and checks ids, types and mask against the reference exactly.
fn golden_inputs(tokenizer: &tokenizers::Tokenizer, golden: &Golden, pad_id: u32) -> EncoderInputs {
    let encodings = tokenizer.encode_batch(golden.pairs.clone(), true).unwrap();
    let inputs = EncoderInputs::from_encodings(&encodings, pad_id, &Device::Cpu).unwrap();
    let as_u32 = |t: &Tensor| t.to_dtype(DType::U32).unwrap().to_vec2::<u32>().unwrap();
    assert_eq!(inputs.input_ids.to_vec2::<u32>().unwrap(), as_u32(&golden.tensors["input_ids"]));
    assert_eq!(inputs.attention_mask.to_vec2::<u32>().unwrap(), as_u32(&golden.tensors["attention_mask"]));
    if let Some(types) = golden.tensors.get("token_type_ids") {
        assert_eq!(inputs.token_type_ids.as_ref().unwrap().to_vec2::<u32>().unwrap(), as_u32(types));
    }
    inputs
}

fn relative_error(actual: &Tensor, expected: &Tensor) -> f32 {
    assert_eq!(actual.dims(), expected.dims());
    let max_abs = |t: Tensor| t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    max_abs((actual - expected).unwrap()) / max_abs(expected.clone())
}

#[test]
fn minilm_matches_transformers() {
    let golden = read_golden("minilm");
    let hub = HubAccess::offline(&hf_home());
    let loaded = load_model("sentence-transformers/all-MiniLM-L6-v2", 2, 0, &Device::Cpu, &hub).unwrap();
    // The checkpoint has a pooler but no classifier: only the classifier is initialised.
    assert_eq!(loaded.report.initialised, ["classifier.bias", "classifier.weight"]);
    let inputs = golden_inputs(&loaded.tokenizer, &golden, 0);
    let out = loaded.model.encode(&inputs, Mode::Eval).unwrap();
    let hidden = relative_error(&out.last_hidden_state, &golden.tensors["last_hidden_state"]);
    let pooled = relative_error(&out.pooler_output.unwrap(), &golden.tensors["pooler_output"]);
    eprintln!("MiniLM relative error: last hidden {hidden:.2e}, pooler {pooled:.2e}");
    assert!(hidden < TOLERANCE && pooled < TOLERANCE, "hidden {hidden}, pooler {pooled}");
}

#[test]
fn tiny_roberta_classifier_matches_transformers() {
    let golden = read_golden("tiny_roberta");
    let dir = golden_dir().join("tiny-roberta");
    let hub = HubAccess::offline(&dir.join("no-hub"));
    let loaded = load_model(dir.to_str().unwrap(), 3, 0, &Device::Cpu, &hub).unwrap();
    assert!(loaded.report.initialised.is_empty(), "{:?}", loaded.report.initialised);
    let inputs = golden_inputs(&loaded.tokenizer, &golden, loaded.model.config().pad_token_id);
    let out = loaded.model.encode(&inputs, Mode::Eval).unwrap();
    let logits = loaded.model.forward(&inputs, Mode::Eval).unwrap();
    let hidden = relative_error(&out.last_hidden_state, &golden.tensors["last_hidden_state"]);
    let logits = relative_error(&logits, &golden.tensors["logits"]);
    eprintln!("tiny RoBERTa relative error: last hidden {hidden:.2e}, logits {logits:.2e}");
    assert!(hidden < TOLERANCE && logits < TOLERANCE, "hidden {hidden}, logits {logits}");
}
