//! The training loop: the optimizer's parameter groups and clipping, divergence detection, and a short real
//! fine-tune of all-MiniLM-L6-v2 on an SST-2 subset whose loss must fall and whose accuracy must beat chance.

mod common;
use std::path::Path;

use common::hf_home;

use candle_core::{Device, Tensor};
use pimsweep::data::{EncodedSplit, GlueHub, TextEncoder};
use pimsweep::model::{EncoderConfig, HubAccess, load_for_task, random_model};
use pimsweep::task::Task;
use pimsweep::train::{Decay, EvalSet, Optimizer, OptimizerKind, TrainEvent, TrainSettings, finetune};

fn tiny_model() -> pimsweep::model::SequenceClassifier {
    let json = r#"{"model_type": "bert", "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                   "intermediate_size": 32, "max_position_embeddings": 32, "type_vocab_size": 2}"#;
    let config = EncoderConfig::from_json_str(json, Path::new("tiny.json")).unwrap();
    random_model(&config, 2, 7, &Device::Cpu).unwrap()
}

#[test]
fn adamw_decays_weights_but_not_biases_or_layernorm() {
    let model = tiny_model();
    let vars = model.vars();
    let before: Vec<Tensor> = vars.iter().map(|(_, v)| v.as_tensor().copy().unwrap()).collect();
    // A loss with a negligible gradient (candle prunes an exact ×0): only the decoupled decay moves parameters.
    let zero = vars.iter().map(|(_, v)| (v.as_tensor().sum_all().unwrap() * 1e-20).unwrap()).reduce(|a, b| (a + b).unwrap()).unwrap();
    let mut grads = zero.backward().unwrap();
    let (lr, wd) = (0.1, 0.5);
    let mut opt = Optimizer::new(OptimizerKind::AdamW, &vars, lr, wd).unwrap();
    opt.step(&mut grads).unwrap();
    let mut decayed = 0;
    for ((name, var), old) in vars.iter().zip(&before) {
        let ratio =
            (var.as_tensor() - &(old * (1.0 - lr * wd)).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let unchanged = (var.as_tensor() - old).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        if pimsweep::train::exempt_from_decay(name) {
            // Only the negligible Adam step of a 1e-20 gradient (~lr·1e-12) moves it.
            assert!(unchanged < 1e-9, "{name} must not decay: moved {unchanged}");
        } else {
            assert!(ratio < 1e-6, "{name} must be scaled by 1 - lr·wd");
            decayed += 1;
        }
    }
    assert!(decayed > 0 && decayed < vars.len());
}

#[test]
fn clipping_scales_gradients_to_the_max_norm() {
    let model = tiny_model();
    let vars = model.vars();
    let loss = vars.iter().map(|(_, v)| (v.as_tensor().sum_all().unwrap() * 3.0).unwrap()).reduce(|a, b| (a + b).unwrap()).unwrap();
    let mut grads = loss.backward().unwrap();
    let n: usize = vars.iter().map(|(_, v)| v.elem_count()).sum();
    let opt = Optimizer::new(OptimizerKind::AdamW, &vars, 1e-3, 0.0).unwrap();
    // Every gradient element is 3, so the global norm is 3·sqrt(n).
    let norm = opt.clip_grad_norm(&mut grads, 1.0).unwrap();
    assert!((norm - 3.0 * (n as f64).sqrt()).abs() < 1e-3 * norm);
    let after: f64 = vars
        .iter()
        .map(|(_, v)| grads.get(v.as_tensor()).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64)
        .sum();
    assert!((after.sqrt() - 1.0).abs() < 1e-4, "{}", after.sqrt());
}

struct Sst2 {
    loaded: pimsweep::model::LoadedModel,
    train: EncodedSplit,
    eval: EncodedSplit,
    labels: Vec<pimsweep::data::Label>,
}

/// all-MiniLM-L6-v2 with a fresh head, and seeded SST-2 subsets tokenised to at most 64 tokens.
fn sst2_subset(n_train: usize, n_eval: usize) -> Sst2 {
    let hub = HubAccess::offline(&hf_home());
    let loaded = load_for_task("sentence-transformers/all-MiniLM-L6-v2", Task::Sst2, 42, &Device::Cpu, &hub).unwrap();
    let glue = GlueHub::offline(hf_hub::Cache::new(hf_home().join("hub")), "nyu-mll/glue");
    let train = glue.load(Task::Sst2, "train").unwrap().subsample(n_train, 0);
    let eval = glue.load(Task::Sst2, "validation").unwrap().subsample(n_eval, 0);
    let encoder = TextEncoder::new(loaded.tokenizer.clone(), 64, "minilm").unwrap();
    Sst2 {
        train: EncodedSplit::encode(&train, &encoder).unwrap(),
        eval: EncodedSplit::encode(&eval, &encoder).unwrap(),
        labels: eval.labels(),
        loaded,
    }
}

fn settings(epochs: usize, lr: f64, grad_clip: f64) -> TrainSettings {
    TrainSettings {
        epochs,
        lr,
        batch_size: 16,
        weight_decay: 0.0,
        warmup_ratio: 0.0,
        grad_clip,
        optimizer: OptimizerKind::AdamW,
        decay: Decay::Linear,
        seed: 42,
    }
}

#[test]
fn a_short_real_finetune_learns() {
    let data = sst2_subset(320, 200);
    let model = &data.loaded.model;
    let eval_set = EvalSet { data: &data.eval, labels: &data.labels, batch_size: 50 };
    let mut losses = Vec::new();
    let epochs = finetune(model, &model.vars(), Task::Sst2, &data.train, Some(&eval_set), &settings(3, 1e-4, 1.0), &mut |e| {
        if let TrainEvent::Step { loss, .. } = e {
            losses.push(loss);
        }
    })
    .unwrap();
    assert_eq!(losses.len(), 3 * 20);
    let (first, last) = (epochs[0].mean_loss, epochs[2].mean_loss);
    assert!(last < first * 0.8, "the loss must fall: epoch 1 {first:.3}, epoch 3 {last:.3}");
    // Chance is 0.5; with 200 examples its standard error is sqrt(0.25/200) = 0.035: demand 4 of them.
    let accuracy = epochs.last().unwrap().eval.as_ref().unwrap().get("accuracy").unwrap();
    eprintln!("loss {first:.3} → {last:.3}, accuracy {accuracy:.3}");
    assert!(accuracy > 0.5 + 4.0 * 0.035, "accuracy {accuracy}");
}

#[test]
fn a_diverging_loss_fails_the_training_with_a_clear_message() {
    let data = sst2_subset(32, 1);
    let model = &data.loaded.model;
    let (_, head) = model.vars().into_iter().find(|(n, _)| n == "classifier.weight").expect("BERT head");
    head.set(&(head.as_tensor().ones_like().unwrap() * f64::NAN).unwrap()).unwrap();
    let err = finetune(model, &model.vars(), Task::Sst2, &data.train, None, &settings(1, 1e-4, 0.0), &mut |_| {}).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("the training loss is NaN at epoch 1, step 1") && message.contains("training diverged"), "{message}");
}
