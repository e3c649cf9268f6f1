//! Helpers shared by the integration tests: sweeps held in memory, and lookups of diagnostics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pimsweep::plan::{self, Plan};
use pimsweep::sweep::{self, Loaded, MemoryFiles, SweepDiagnostic};

pub const MAIN: &str = "sweeps/main.kdl";

/// A minimal valid sweep body to build test sweeps from.
pub const PRESETS: &[(&str, &str)] = &[
    ("configs/sram.kdl", "technology \"sram\" kind=digital {\n    format \"e4m3\"\n}\n"),
    ("configs/reram.kdl", "technology \"reram\" kind=reram {\n    weight-bits 4\n    noise-magnitude 0.05\n}\n"),
    ("configs/pcm.kdl", "technology \"pcm\" kind=pcm model=\"aihwkit\" {\n    out-noise 0.04\n}\n"),
];

/// Loads `text` as sweeps/main.kdl, beside the small presets above.
pub fn load(text: &str) -> Result<Loaded, Vec<SweepDiagnostic>> {
    load_files(&[(MAIN, text)])
}

pub fn load_files(files: &[(&str, &str)]) -> Result<Loaded, Vec<SweepDiagnostic>> {
    let mut mem = MemoryFiles::default();
    for (p, t) in PRESETS.iter().chain(files) {
        mem = mem.with(p, *t);
    }
    sweep::load_with(&mem, Path::new(files[0].0))
}

/// Loads and expands; panics with the rendered diagnostics if either fails.
pub fn plan_of(text: &str) -> Plan {
    let loaded = load(text).unwrap_or_else(|d| panic!("load failed:\n{}", render(&d)));
    plan::expand(&loaded.sweep).unwrap_or_else(|d| panic!("expand failed:\n{}", render(&d)))
}

/// The errors of a sweep that must not load.
pub fn errors(text: &str) -> Vec<SweepDiagnostic> {
    match load(text) {
        Ok(l) => match plan::expand(&l.sweep) {
            Ok(_) => panic!("expected errors, but the sweep loaded and expanded"),
            Err(d) => d,
        },
        Err(d) => d.into_iter().filter(|d| d.is_error()).collect(),
    }
}

/// The one diagnostic whose message contains `needle`, with its rendering on failure.
pub fn find<'a>(diags: &'a [SweepDiagnostic], needle: &str) -> &'a SweepDiagnostic {
    diags
        .iter()
        .find(|d| d.message.contains(needle))
        .unwrap_or_else(|| panic!("no diagnostic contains {needle:?}; got:\n{}", render(diags)))
}

pub fn render(diags: &[SweepDiagnostic]) -> String {
    diags.iter().map(|d| d.render(false)).collect::<Vec<_>>().join("\n")
}

/// A sweep around `body` with the three presets included.
pub fn sweep(body: &str) -> String {
    format!(
        "sweep \"t\" {{\n    include \"../configs/sram.kdl\" \"../configs/reram.kdl\" \"../configs/pcm.kdl\"\n    model \"sentence-transformers/all-MiniLM-L6-v2\"\n{body}\n}}\n"
    )
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The offline Hugging Face cache: `HF_HOME` (as CI sets it), else `../shared/hf` beside the repository.
pub fn hf_home() -> PathBuf {
    match std::env::var_os("HF_HOME") {
        Some(home) => PathBuf::from(home),
        None => repo_root().join("../shared/hf").canonicalize().expect("set HF_HOME or provide ../shared/hf"),
    }
}

/// A 2-layer BERT with MiniLM's vocabulary and tokenizer, random weights, saved as a local checkpoint.
pub fn tiny_model(dir: &Path) -> PathBuf {
    let json = r#"{"model_type": "bert", "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                   "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2}"#;
    let config = pimsweep::model::EncoderConfig::from_json_str(json, Path::new("tiny.json")).unwrap();
    let model = pimsweep::model::random_model(&config, 2, 3, &candle_core::Device::Cpu).unwrap();
    let tokenizer_json =
        hf_hub::Cache::new(hf_home().join("hub")).model("sentence-transformers/all-MiniLM-L6-v2".into()).get("tokenizer.json").unwrap();
    let tokenizer = pimsweep::model::load::load_tokenizer(&tokenizer_json).unwrap();
    let out = dir.join("tiny-bert");
    pimsweep::model::save_checkpoint(&model, &tokenizer, &out).unwrap();
    out
}

/// A Parquet file as a DataFrame.
pub fn read_parquet(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::SerReader;
    polars::prelude::ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

/// The logits of one (repeat, drift) evaluation in a predictions.parquet, in example order.
pub fn logits_at(df: &polars::prelude::DataFrame, repeat_index: u32, drift_s: f64) -> Vec<Vec<f32>> {
    use polars::prelude::*;
    let picked = df
        .clone()
        .lazy()
        .filter(col("repeat").eq(lit(repeat_index)).and(col("drift_s").eq(lit(drift_s))))
        .sort(["idx"], Default::default())
        .collect()
        .unwrap();
    let lists = picked.column("outputs").unwrap().list().unwrap().clone();
    lists.amortized_iter().map(|s| s.unwrap().as_ref().f32().unwrap().into_no_null_iter().collect()).collect()
}
