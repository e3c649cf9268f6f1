//! Hardware-aware LoRA through the library (PIM_MODELS.md §6, §7): a few training steps of a tiny BERT whose
//! adapted layers run on AIHWKIT PCM tiles, on real SST-2 examples. Only the adapters and the head train; the
//! frozen analog base weights change only through the post-update clip and remap; embeddings, norms, the
//! pooler stay exactly as they were; and an evaluation with the output and read noise off is deterministic.

mod common;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::Device;
use common::hf_home;
use pimsweep::data::{EncodedSplit, GlueHub, TextEncoder};
use pimsweep::model::lora::{DEFAULT_TARGETS, LoraAdapters, LoraLinear, LoraSettings};
use pimsweep::model::{EncoderConfig, SequenceClassifier, random_model};
use pimsweep::pim::Technology;
use pimsweep::sweep::params::PCM_AIHWKIT;
use pimsweep::sweep::{ParamSet, ParamValue, PimKind};
use pimsweep::task::Task;
use pimsweep::train::{Decay, OptimizerKind, TrainSettings, finetune, predict};

/// Narrow, but with 2048-wide output rows: a Gaussian row that long has its max near 3.4σ, so the 3σ clip bites.
fn tiny_bert() -> SequenceClassifier {
    let json = r#"{"model_type": "bert", "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                   "intermediate_size": 2048, "max_position_embeddings": 64, "type_vocab_size": 2}"#;
    let config = EncoderConfig::from_json_str(json, Path::new("tiny.json")).unwrap();
    random_model(&config, 2, 3, &Device::Cpu).unwrap()
}

fn sst2(n: usize) -> EncodedSplit {
    let glue = GlueHub::offline(hf_hub::Cache::new(hf_home().join("hub")), "nyu-mll/glue");
    let tokenizer_json =
        hf_hub::Cache::new(hf_home().join("hub")).model("sentence-transformers/all-MiniLM-L6-v2".into()).get("tokenizer.json").unwrap();
    let tokenizer = pimsweep::model::load::load_tokenizer(&tokenizer_json).unwrap();
    let encoder = TextEncoder::new(tokenizer, 32, "minilm").unwrap();
    EncodedSplit::encode(&glue.load(Task::Sst2, "train").unwrap().subsample(n, 0), &encoder).unwrap()
}

/// The analog-LoRA reference's PCM (configs/aihwkit-pcm.kdl: whole layers on one tile), with overrides.
fn pcm(overrides: &[(&'static str, ParamValue)]) -> Technology {
    let mut p = ParamSet::defaults(PCM_AIHWKIT);
    p.values.insert("core-size", ParamValue::Int(0));
    for (k, v) in overrides {
        p.values.insert(k, v.clone());
    }
    Technology::new(PimKind::PcmAihwkit, &p).unwrap()
}

fn snapshot(model: &SequenceClassifier) -> BTreeMap<String, Vec<f32>> {
    model.vars().into_iter().map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

fn lora(model: &mut SequenceClassifier, technology: &Technology, seed: u64, chip: u64, drift_s: f64) -> Arc<LoraAdapters> {
    let settings = LoraSettings { rank: 4, alpha: 16.0, dropout: 0.1, targets: DEFAULT_TARGETS.iter().map(|t| t.to_string()).collect() };
    let adapters = Arc::new(LoraAdapters::for_model(settings, model, seed).unwrap());
    model.set_linear_forward(Arc::new(LoraLinear { base: technology.linear(seed, chip, drift_s, 0), adapters: adapters.clone() }));
    adapters
}

#[test]
fn only_adapters_and_head_train_and_the_analog_base_changes_only_by_clip_and_remap() {
    let mut model = tiny_bert();
    let technology = pcm(&[]);
    let adapters = lora(&mut model, &technology, 42, 0, 0.0);
    let before = snapshot(&model);
    let adapters_before: BTreeMap<String, Vec<f32>> =
        adapters.vars().into_iter().map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1().unwrap())).collect();
    let mut vars = adapters.vars();
    vars.extend(model.vars().into_iter().filter(|(n, _)| n.starts_with("classifier.")));
    let settings = TrainSettings {
        epochs: 1,
        lr: 1e-3,
        batch_size: 16,
        weight_decay: 0.0,
        warmup_ratio: 0.0,
        grad_clip: 0.0,
        optimizer: OptimizerKind::Adam,
        decay: Decay::Constant,
        seed: 42,
    };
    let steps = 3;
    finetune(&model, &vars, Task::Sst2, &sst2(16 * steps), None, &settings, &mut |_| {}).unwrap();
    let after = snapshot(&model);

    for (name, var) in adapters.vars() {
        let now: Vec<f32> = var.flatten_all().unwrap().to_vec1().unwrap();
        assert_ne!(now, adapters_before[&name], "{name} did not train");
    }
    let adapted: Vec<&str> = adapters.layers().collect();
    let mut clipped_somewhere = false;
    for (name, old) in &before {
        let new = &after[name];
        let layer = name.trim_end_matches(".weight").trim_end_matches(".bias");
        if name.starts_with("classifier.") {
            assert_ne!(new, old, "{name}: the head trains");
        } else if adapted.contains(&layer) && name.ends_with(".weight") {
            // Frozen on the tile: exactly `steps` post-update steps of the original, nothing from the optimizer.
            let dims = model.vars().into_iter().find(|(n, _)| n == name).unwrap().1.dims().to_vec();
            let mut expected = candle_core::Tensor::from_vec(old.clone(), dims.as_slice(), &Device::Cpu).unwrap();
            for _ in 0..steps {
                expected = technology.simulator.post_update(&expected).unwrap().unwrap();
            }
            assert_eq!(new, &expected.flatten_all().unwrap().to_vec1::<f32>().unwrap(), "{name}");
            clipped_somewhere |= new != old;
        } else {
            assert_eq!(new, old, "{name} must not change (embeddings, norms, biases, the pooler)");
        }
    }
    assert!(clipped_somewhere, "the 2048-wide output rows are clipped by the first post-update steps");
}

#[test]
fn evaluation_without_output_and_read_noise_is_deterministic_and_a_chip_is_one_chip() {
    use ParamValue::*;
    let data = sst2(40);
    let quiet = pcm(&[("out-noise", Float(0.0)), ("read-noise-scale", Float(0.0))]);
    let logits = |technology: &Technology, chip: u64, drift_s: f64| {
        let mut model = tiny_bert();
        lora(&mut model, technology, 42, chip, drift_s);
        predict(&model, &data, 16).unwrap()
    };
    // Same chip, twice (every forward draws its own read and output noise, here both off): identical.
    assert_eq!(logits(&quiet, 0, 0.0), logits(&quiet, 0, 0.0));
    // Another chip has other programming noise; with the noise on, every forward differs.
    assert_ne!(logits(&quiet, 0, 0.0), logits(&quiet, 1, 0.0));
    let noisy = pcm(&[]);
    let mut model = tiny_bert();
    lora(&mut model, &noisy, 42, 0, 0.0);
    assert_ne!(predict(&model, &data, 16).unwrap(), predict(&model, &data, 16).unwrap(), "read and output noise are fresh per forward");
}

mod cli {
    //! The `lora` mode through `pimsweep run`: a LoRA stage shared by two runs that differ only in
    //! `eval.reprogram`, its checkpoint, and what reprogramming means for the chips the runs read.
    use assert_cmd::Command;

    use super::common::{hf_home, logits_at as outputs, read_parquet, repo_root, tiny_model};

    #[test]
    fn a_lora_stage_serves_both_runs_and_reprogram_false_reads_one_chip_throughout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let model = tiny_model(root);
        let text = format!(
            r#"sweep "lora" {{
    include "{pcm}"
    model "{model}" task-head=#false
    data "nyu-mll/glue" max-train=32 max-eval=24
    max-seq-len 32
    train epochs=1 lr=1e-3 batch-size=16 optimizer="adam"
    lora rank=4 alpha=16 dropout=0.1 train-head=#true
    eval batch-size=24 repeats=2
    grid {{
        task sst2
        technology aihwkit-pcm
        mode lora
        drift 0 "1h"
        "aihwkit-pcm.read-noise-scale" 0
        "aihwkit-pcm.drift-scale" 0
        "aihwkit-pcm.out-noise" 0
        eval.reprogram #true #false
    }}
}}
"#,
            pcm = repo_root().join("configs/aihwkit-pcm.kdl").display(),
            model = model.display()
        );
        std::fs::write(root.join("lora.kdl"), text).unwrap();
        let out = Command::cargo_bin("pimsweep")
            .unwrap()
            .current_dir(root)
            .env("HF_HOME", hf_home())
            .env("HF_HUB_OFFLINE", "1")
            .args(["run", "lora.kdl", "--results", "results"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{log}");
        assert!(log.contains("2 runs and 1 stages selected"), "reprogram is an evaluation setting: one training\n{log}");

        let stages: Vec<_> =
            std::fs::read_dir(root.join("results/.store/stages")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
        assert_eq!(stages.len(), 1);
        let checkpoint = stages[0].join("checkpoint");
        assert!(checkpoint.join("adapters.safetensors").is_file() && checkpoint.join("lora.json").is_file());
        let stage_log = std::fs::read_to_string(stages[0].join("log.txt")).unwrap();
        // 2 layers × (query, key, value, attention output, intermediate, output), rank 4, hidden 32, intermediate 64.
        assert!(stage_log.contains("LoRA on 12 layers: 3584 trainable adapter parameters"), "{stage_log}");

        for entry in std::fs::read_dir(root.join("results/lora/runs")).unwrap() {
            let run = entry.unwrap().path();
            let params: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("params.json")).unwrap()).unwrap();
            let reprogram = params["params"]["eval"]["reprogram"].as_bool().expect("eval.reprogram in params.json");
            let df = read_parquet(&run.join("predictions.parquet"));
            let (first, second) = (outputs(&df, 0, 0.0), outputs(&df, 1, 0.0));
            assert!(first.iter().flatten().all(|v| v.is_finite()));
            if reprogram {
                assert_ne!(first, second, "two repeats program two chips");
            } else {
                // Output and read noise off, no drift: one chip read identically at every repeat and time.
                assert_eq!(first, second, "reprogram #false reuses the chip");
                assert_eq!(first, outputs(&df, 1, 3600.0));
            }
        }
    }
}
