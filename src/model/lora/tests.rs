use candle_core::Device;

use super::*;
use crate::model::tests::{tiny_config, tiny_inputs};
use crate::model::{Architecture, Digital, random_model};

fn settings() -> LoraSettings {
    LoraSettings { rank: 4, alpha: 16.0, dropout: 0.1, targets: DEFAULT_TARGETS.iter().map(|t| t.to_string()).collect() }
}

fn adapted(architecture: Architecture) -> (crate::model::SequenceClassifier, Arc<LoraAdapters>) {
    let config = tiny_config(architecture);
    let mut model = random_model(&config, 3, 7, &Device::Cpu).unwrap();
    let adapters = Arc::new(LoraAdapters::for_model(settings(), &model, 11).unwrap());
    model.set_linear_forward(Arc::new(LoraLinear { base: Arc::new(Digital), adapters: adapters.clone() }));
    (model, adapters)
}

#[test]
fn the_trainable_parameter_count_follows_the_formula() {
    // Per encoder layer: query, key, value and attention.output.dense (H → H), intermediate.dense (H → I),
    // output.dense (I → H): rank · (6·2H + ... ) = rank · (10H + 2I). The pooler and head are not adapted.
    for architecture in [Architecture::Bert, Architecture::Roberta] {
        let (model, adapters) = adapted(architecture);
        let c = model.config();
        let (h, i, l, r) = (c.hidden_size, c.intermediate_size, c.num_hidden_layers, 4);
        assert_eq!(adapters.num_parameters(), l * r * (10 * h + 2 * i));
        assert_eq!(adapters.layers().count(), 6 * l);
        assert!(adapters.layers().all(|n| n.starts_with("encoder.layer.")));
        assert_eq!(adapters.vars().len(), 2 * 6 * l);
    }
}

#[test]
fn fresh_adapters_leave_the_model_unchanged() {
    let config = tiny_config(Architecture::Bert);
    let base = random_model(&config, 3, 7, &Device::Cpu).unwrap();
    let (model, _) = adapted(Architecture::Bert);
    let inputs = tiny_inputs(&config);
    let a = base.forward(&inputs, Mode::Eval).unwrap();
    let b = model.forward(&inputs, Mode::Eval).unwrap();
    assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap(), "B starts at zero");
}

#[test]
fn gradients_reach_the_adapters_and_never_the_frozen_base_weights() {
    let (model, adapters) = adapted(Architecture::Roberta);
    // Make B non-zero, as after a first step, so that A's gradient is non-zero too.
    for (name, var) in adapters.vars() {
        if name.ends_with("lora_B.weight") {
            var.set(&Tensor::randn(0f32, 0.1, var.shape(), &Device::Cpu).unwrap()).unwrap();
        }
    }
    let logits = model.forward(&tiny_inputs(model.config()), Mode::Train).unwrap();
    let grads = logits.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    for (name, var) in adapters.vars() {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name} has no gradient"));
        let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(norm.is_finite() && norm > 0.0, "{name}: {norm}");
    }
    let adapted: Vec<&str> = adapters.layers().collect();
    for (name, var) in model.vars() {
        let layer = name.trim_end_matches(".weight").trim_end_matches(".bias");
        if adapted.contains(&layer) {
            assert!(grads.get(var.as_tensor()).is_none(), "frozen {name} got a gradient");
        }
    }
}

#[test]
fn adapters_round_trip_through_their_file() {
    let (model, adapters) = adapted(Architecture::Bert);
    for (_, var) in adapters.vars() {
        var.set(&Tensor::randn(0f32, 0.1, var.shape(), &Device::Cpu).unwrap()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    adapters.save(dir.path()).unwrap();
    let mut fresh = LoraAdapters::for_model(settings(), &model, 99).unwrap();
    fresh.load(dir.path()).unwrap();
    for ((n1, v1), (n2, v2)) in adapters.vars().iter().zip(fresh.vars()) {
        assert_eq!(n1, &n2);
        assert_eq!(v1.flatten_all().unwrap().to_vec1::<f32>().unwrap(), v2.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
}
