//! The GPU path against the CPU path (a `cuda` build on a machine with an NVIDIA GPU; built here with
//! `cargo test --features cuda --test cuda --no-run` and run on the GPU machine, see docs/BENCHMARKS.md).
//! Exact where both sides compute the same arithmetic (quantizers, ADC, fingerprints); within f32 GEMM
//! rounding where cuBLAS sums in another order; in distribution where the noise streams differ.
#![cfg(feature = "cuda")]

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use pimsweep::model::{Digital, EncoderConfig, EncoderInputs, Mode, SequenceClassifier, random_model};
use pimsweep::pim::Technology;
use pimsweep::pim::gpu;
use pimsweep::pim::noise::NoiseKey;
use pimsweep::pim::quant::Format;
use pimsweep::sweep::params::{DIGITAL, PCM_AIHWKIT, PCM_NCB, RERAM};
use pimsweep::sweep::{ParamSet, ParamValue, PimKind};

/// A small BERT: `hidden` wide, 4·hidden intermediate, `layers` deep.
fn config(hidden: usize, heads: usize, layers: usize) -> EncoderConfig {
    let json = format!(
        r#"{{"model_type": "bert", "vocab_size": 300, "hidden_size": {hidden}, "num_hidden_layers": {layers}, "num_attention_heads": {heads},
           "intermediate_size": {}, "max_position_embeddings": 64, "type_vocab_size": 2}}"#,
        4 * hidden
    );
    EncoderConfig::from_json_str(&json, Path::new("tiny.json")).unwrap()
}

fn gpu_device() -> Device {
    Device::new_cuda(0).expect("tests/cuda.rs needs a GPU")
}

fn randn(rows: usize, k: usize, seed: u64, scale: f32) -> Tensor {
    let v: Vec<f32> = NoiseKey::new(seed, "cuda-test", 0, 0).normals(1, rows * k).into_iter().map(|x| x * scale).collect();
    Tensor::from_vec(v, (rows, k), &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.to_device(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Largest |a − b| relative to the largest |b|.
fn rel_max_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn quantizers_are_bit_identical_on_the_gpu() {
    let gpu = gpu_device();
    let (rows, k, cs) = (300, 777, 64);
    let x = randn(rows, k, 1, 1.0);
    let xg = x.to_device(&gpu).unwrap();
    for format in [
        Format::Bfp { exponent_bits: 4, mantissa_bits: 3 },
        Format::Bfp { exponent_bits: 5, mantissa_bits: 2 },
        Format::Bfp { exponent_bits: 8, mantissa_bits: 7 },
        Format::Int { bits: 8 },
        Format::Int { bits: 3 },
        Format::NcbDac { bits: Some(8) },
        Format::NcbDac { bits: None },
    ] {
        for (group_rows, rps) in [(1, 1), (cs, 128), (cs, rows)] {
            let cpu = flat(&gpu::quantize_groups(&x, cs, group_rows, rps, format).unwrap());
            let dev = flat(&gpu::quantize_groups(&xg, cs, group_rows, rps, format).unwrap());
            assert_eq!(cpu, dev, "{format:?}, groups of {group_rows} rows in sequences of {rps}");
        }
    }
    // Hostile values: zeros, constants, huge, subnormal.
    let hostile = Tensor::from_vec(vec![0.0f32, 0.0, 3.0, 3.0, 1e30, -1e30, 1e-40, -2e-42], (2, 4), &Device::Cpu).unwrap();
    for format in [Format::Bfp { exponent_bits: 4, mantissa_bits: 3 }, Format::Int { bits: 8 }, Format::NcbDac { bits: Some(8) }] {
        let cpu = flat(&gpu::quantize_groups(&hostile, 2, 1, 1, format).unwrap());
        let dev = flat(&gpu::quantize_groups(&hostile.to_device(&gpu).unwrap(), 2, 1, 1, format).unwrap());
        assert_eq!(cpu, dev, "{format:?}");
        assert!(dev.iter().all(|v| v.is_finite()), "{dev:?}");
    }
}

#[test]
fn adc_noise_and_fingerprints_agree_with_the_cpu() {
    let gpu = gpu_device();
    let p = randn(64, 300, 2, 3.0);
    let acc_cpu = Tensor::zeros((64, 300), DType::F32, &Device::Cpu).unwrap();
    let acc_gpu = Tensor::zeros((64, 300), DType::F32, &gpu).unwrap();
    gpu::accumulate_sym_adc(&acc_cpu, &p, 128, 6).unwrap();
    gpu::accumulate_sym_adc(&acc_gpu, &p.to_device(&gpu).unwrap(), 128, 6).unwrap();
    assert_eq!(flat(&acc_cpu), flat(&acc_gpu));

    let key = NoiseKey::new(3, "layer", 1, 7);
    let n = 1 << 20;
    let cpu = flat(&gpu::normals(n, &Device::Cpu, key, 5).unwrap());
    let dev = flat(&gpu::normals(n, &gpu, key, 5).unwrap());
    // Same Philox bits; logf/cospif of the GPU differ from the CPU's in the last ulps.
    assert!(cpu.iter().zip(&dev).all(|(a, b)| (a - b).abs() <= 1e-5 * a.abs().max(1.0)), "Philox draws differ");

    let w = randn(3072, 768, 4, 0.02);
    assert_eq!(gpu::weight_fingerprint(&w).unwrap(), gpu::weight_fingerprint(&w.to_device(&gpu).unwrap()).unwrap());
}

fn tech(kind: PimKind, specs: &'static [pimsweep::sweep::params::ParamSpec], overrides: &[(&'static str, ParamValue)]) -> Technology {
    let mut p = ParamSet::defaults(specs);
    for (k, v) in overrides {
        p.values.insert(k, v.clone());
    }
    Technology::new(kind, &p).unwrap()
}

/// Every technology, noise off: one layer at odd shapes, 3-D input, CPU and GPU within GEMM rounding (and
/// converter steps where a rounding boundary falls between the two sums).
#[test]
fn every_technology_gives_the_cpu_layer_output_without_noise() {
    let gpu = gpu_device();
    let technologies = [
        ("sram e4m3", tech(PimKind::Digital, DIGITAL, &[]), 1e-5),
        (
            "sram matrix block",
            tech(
                PimKind::Digital,
                DIGITAL,
                &[("rescale", ParamValue::Str("matrix".into())), ("input-scale", ParamValue::Str("block".into()))],
            ),
            1e-5,
        ),
        (
            "reram ncb",
            tech(PimKind::Reram, RERAM, &[("input-scale", ParamValue::Str("block".into())), ("input-bits", ParamValue::Int(3))]),
            1e-5,
        ),
        ("reram adc", tech(PimKind::Reram, RERAM, &[("weight-bits", ParamValue::Int(4)), ("adc-bits", ParamValue::Int(8))]), 2e-2),
        ("pcm ncb", tech(PimKind::PcmNcb, PCM_NCB, &[("programming-noise", ParamValue::Bool(false))]), 2e-2),
        (
            "pcm aihwkit",
            tech(
                PimKind::PcmAihwkit,
                PCM_AIHWKIT,
                &[
                    ("prog-noise-scale", ParamValue::Float(0.0)),
                    ("read-noise-scale", ParamValue::Float(0.0)),
                    ("out-noise", ParamValue::Float(0.0)),
                ],
            ),
            2e-2,
        ),
    ];
    let config = config(84, 7, 2); // hidden 84 and intermediate 336: not multiples of the tiles
    for (name, technology, tolerance) in technologies {
        let mut cpu_model = random_model(&config, 2, 5, &Device::Cpu).unwrap();
        let mut gpu_model = random_model(&config, 2, 5, &gpu).unwrap();
        cpu_model.set_linear_forward(technology.linear(9, 0, 0.0, 0));
        gpu_model.set_linear_forward(technology.linear(9, 0, 0.0, 0));
        let inputs = |device: &Device| EncoderInputs {
            input_ids: Tensor::from_vec((0..3 * 20).map(|i| (i * 7 % 300) as u32).collect::<Vec<_>>(), (3, 20), device).unwrap(),
            attention_mask: Tensor::ones((3, 20), DType::U32, device).unwrap(),
            token_type_ids: None,
        };
        let a = flat(&cpu_model.forward(&inputs(&Device::Cpu), Mode::Eval).unwrap());
        let b = flat(&gpu_model.forward(&inputs(&gpu), Mode::Eval).unwrap());
        let diff = rel_max_diff(&b, &a);
        assert!(diff <= tolerance, "{name}: logits differ by {diff} (relative), {a:?} vs {b:?}");
    }
}

/// Digital training on the GPU: the gradients of one step are the CPU's, to f32 rounding.
#[test]
fn a_digital_training_step_matches_the_cpu() {
    let gpu = gpu_device();
    let config = config(64, 4, 2);
    let step = |device: &Device| -> Vec<f32> {
        let mut model: SequenceClassifier = random_model(&config, 2, 5, device).unwrap();
        model.set_linear_forward(Arc::new(Digital));
        let ids = Tensor::from_vec((0..4 * 16).map(|i| (i * 13 % 300) as u32).collect::<Vec<_>>(), (4, 16), device).unwrap();
        let inputs =
            EncoderInputs { input_ids: ids, attention_mask: Tensor::ones((4, 16), DType::U32, device).unwrap(), token_type_ids: None };
        let labels = Tensor::new(&[0u32, 1, 1, 0], device).unwrap();
        let logits = model.forward(&inputs, Mode::Train).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
        let grads = loss.backward().unwrap();
        let (_, var) = model.vars().into_iter().find(|(n, _)| n.ends_with("layer.0.attention.self.query.weight")).unwrap();
        flat(grads.get(var.as_tensor()).unwrap())
    };
    let (a, b) = (step(&Device::Cpu), step(&gpu));
    let diff = rel_max_diff(&b, &a);
    assert!(diff < 1e-3, "query gradients differ by {diff} relative to their largest");
}
