//! The GPU path against the CPU path (a `cuda` build on a machine with an NVIDIA GPU; built here with
//! `cargo test --features cuda --test cuda --no-run` and run on the GPU machine, see docs/BENCHMARKS.md).
//! Exact where both sides compute the same arithmetic (quantizers, ADC, fingerprints); within f32 GEMM
//! rounding where cuBLAS sums in another order; in distribution where the noise streams differ.
#![cfg(feature = "cuda")]

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use pimsweep::model::{Digital, EncoderConfig, EncoderInputs, Mode, SequenceClassifier, random_model};
use pimsweep::pim::gpu;
use pimsweep::pim::noise::NoiseKey;
use pimsweep::pim::quant::Format;
use pimsweep::pim::{Technology, TileCall};
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
    // 777 columns take the scalar kernels, 776 the 16-byte ones.
    for k in [777, 776] {
        let (rows, cs) = (300, 64);
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
                assert_eq!(cpu, dev, "{format:?}, {k} columns, groups of {group_rows} rows in sequences of {rps}");
            }
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

    // ReRAM's training programming: the same levels and Philox draws per weight, edge tiles included.
    let (w, keys) = (randn(300, 200, 6, 0.05), [gpu::PhiloxKey::new(key, 1), gpu::PhiloxKey::new(key, 2)]);
    let on_cpu = flat(&gpu::reram_program(&w, 128, Some(7.0), 0.05, 0.01, keys).unwrap());
    let on_gpu = flat(&gpu::reram_program(&w.to_device(&gpu).unwrap(), 128, Some(7.0), 0.05, 0.01, keys).unwrap());
    assert!(rel_max_diff(&on_gpu, &on_cpu) < 1e-5, "ReRAM programming differs");

    let w = randn(3072, 768, 4, 0.02);
    let expected = gpu::weight_fingerprint(&w).unwrap();
    let (w_gpu, v_gpu) = (w.to_device(&gpu).unwrap(), randn(768, 768, 5, 0.02).to_device(&gpu).unwrap());
    assert_eq!(gpu::weight_fingerprint(&w_gpu).unwrap(), expected);
    // Prefetched for a forward: the same values, each used once.
    let prefetch = gpu::Fingerprints::default();
    prefetch.prefetch(&[("a", &w_gpu), ("b", &v_gpu)]).unwrap();
    assert_eq!(prefetch.of("a", &w_gpu).unwrap(), expected);
    assert_eq!(prefetch.of("b", &v_gpu).unwrap(), gpu::weight_fingerprint(&v_gpu).unwrap());
    assert_eq!(prefetch.of("a", &v_gpu).unwrap(), gpu::weight_fingerprint(&v_gpu).unwrap(), "a used value is measured anew");

    // More weights than one launch takes (64), of sizes around a block's 8192 elements, an empty one and a
    // transposed view among them.
    let mut weights: Vec<Tensor> = (0..70).map(|i| randn(1 + (i * 37) % 300, 1 + (i * 53) % 97, 100 + i as u64, 0.1)).collect();
    weights[3] = randn(0, 16, 7, 1.0);
    weights[65] = randn(96, 128, 8, 1.0).t().unwrap();
    let on_cpu = gpu::weight_fingerprints(&weights.iter().collect::<Vec<_>>()).unwrap();
    let weights: Vec<Tensor> = weights.iter().map(|w| w.to_device(&gpu).unwrap()).collect();
    assert_eq!(gpu::weight_fingerprints(&weights.iter().collect::<Vec<_>>()).unwrap(), on_cpu);
}

fn tech(kind: PimKind, specs: &'static [pimsweep::sweep::params::ParamSpec], overrides: &[(&'static str, ParamValue)]) -> Technology {
    let mut p = ParamSet::defaults(specs);
    for (k, v) in overrides {
        p.values.insert(k, v.clone());
    }
    Technology::new(kind, &p).unwrap()
}

/// The strided cuBLAS products the PCM tiles and their training backward use, against candle's matmul at odd
/// sizes: every K-chunk's product (the last chunk narrower), and a·b and aᵀ·b written into columns of a wider
/// output.
#[test]
fn strided_products_are_candles_matmul() {
    use gpu::gemm::{Product, Strided, chunk_products, products};
    let gpu = gpu_device();
    let (m, n, k) = (37, 29, 70);
    let on_gpu = |t: Tensor| t.to_device(&gpu).unwrap();
    let (a, b) = (on_gpu(randn(m, k, 31, 1.0)), on_gpu(randn(n, k, 32, 1.0)));
    let chunks = Tensor::zeros((3, m, n), DType::F32, &gpu).unwrap();
    chunk_products(&a, &b, false, 32, &chunks).unwrap();
    for (c, (k0, kt)) in [(0, 32), (32, 32), (64, 6)].into_iter().enumerate() {
        let part = |t: &Tensor| t.narrow(1, k0, kt).unwrap().contiguous().unwrap();
        let expected = flat(&part(&a).matmul(&part(&b).t().unwrap()).unwrap());
        let diff = rel_max_diff(&flat(&chunks.get(c).unwrap()), &expected);
        assert!(diff < 1e-5, "chunk {c}: {diff}");
    }
    let (bt, at) = (on_gpu(randn(k, n, 33, 1.0)), on_gpu(randn(k, m, 34, 1.0)));
    let wide = n + 5;
    let cases = [(Product::AB, &a, &bt, a.matmul(&bt).unwrap()), (Product::AtB, &at, &bt, at.t().unwrap().matmul(&bt).unwrap())];
    for (product, x, y, expected) in cases {
        let out = Tensor::zeros((m, wide), DType::F32, &gpu).unwrap();
        let (xs, ys) = (Strided { data: x, offset: 0, ld: x.dim(1).unwrap(), stride: 0 }, Strided { data: y, offset: 0, ld: n, stride: 0 });
        products(product, xs, ys, Strided { data: &out, offset: 3, ld: wide, stride: 0 }, (m, n, k), 1).unwrap();
        let diff = rel_max_diff(&flat(&out.narrow(1, 3, n).unwrap()), &flat(&expected));
        assert!(diff < 1e-5, "{product:?}: {diff}");
        let outside = flat(&Tensor::cat(&[out.narrow(1, 0, 3).unwrap(), out.narrow(1, 3 + n, 2).unwrap()], 1).unwrap());
        assert!(outside.iter().all(|&v| v == 0.0), "{product:?} wrote outside its columns");
    }
    let too_wide = Strided { data: &a, offset: 0, ld: k, stride: 0 };
    assert!(products(Product::ABt, too_wide, too_wide, Strided { data: &chunks, offset: 0, ld: n, stride: 0 }, (m, n + 1, k), 1).is_err());
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
            // A low ADC bound: most rows saturate, so bound management runs several rounds.
            "pcm aihwkit saturating",
            pcm(&[PCM_NOISE_OFF, &[("out-bound", ParamValue::Float(0.5)), ("core-size", ParamValue::Int(32))]].concat()),
            2e-2,
        ),
        ("pcm aihwkit", pcm(PCM_NOISE_OFF), 2e-2),
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

/// One training-mode forward and backward of `model` on a fixed batch of 4 × 16 tokens: the logits, and the
/// gradient of the variable whose name ends with `var`.
fn training_step(model: &SequenceClassifier, var: &str, device: &Device) -> (Vec<f32>, Vec<f32>) {
    let ids = Tensor::from_vec((0..4 * 16).map(|i| (i * 13 % 300) as u32).collect::<Vec<_>>(), (4, 16), device).unwrap();
    let inputs = EncoderInputs { input_ids: ids, attention_mask: Tensor::ones((4, 16), DType::U32, device).unwrap(), token_type_ids: None };
    let labels = Tensor::new(&[0u32, 1, 1, 0], device).unwrap();
    let logits = model.forward(&inputs, Mode::Train).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
    let grads = loss.backward().unwrap();
    let (_, v) = model.vars().into_iter().find(|(n, _)| n.ends_with(var)).unwrap();
    (flat(&logits), flat(grads.get(v.as_tensor()).unwrap()))
}

/// Digital training on the GPU: the gradients of one step are the CPU's, to f32 rounding.
#[test]
fn a_digital_training_step_matches_the_cpu() {
    let gpu = gpu_device();
    let config = config(64, 4, 2);
    let step = |device: &Device| -> Vec<f32> {
        let mut model: SequenceClassifier = random_model(&config, 2, 5, device).unwrap();
        model.set_linear_forward(Arc::new(Digital));
        training_step(&model, "layer.0.attention.self.query.weight", device).1
    };
    let (a, b) = (step(&Device::Cpu), step(&gpu));
    let diff = rel_max_diff(&b, &a);
    assert!(diff < 1e-3, "query gradients differ by {diff} relative to their largest");
}

/// AIHWKIT PCM with no programming, read or output noise.
const PCM_NOISE_OFF: &[(&str, ParamValue)] =
    &[("prog-noise-scale", ParamValue::Float(0.0)), ("read-noise-scale", ParamValue::Float(0.0)), ("out-noise", ParamValue::Float(0.0))];

fn pcm(overrides: &[(&'static str, ParamValue)]) -> Technology {
    tech(PimKind::PcmAihwkit, PCM_AIHWKIT, overrides)
}

fn call(layer: &str, drift_s: f64, training: bool) -> TileCall<'_> {
    TileCall { layer, rows_per_sequence: 0, training, drift_s, noise: NoiseKey::new(11, layer, 0, 1) }
}

/// RMS of `a − b`.
fn rms_diff(a: &[f32], b: &[f32]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

/// A noisy technology's error RMS against the exact product, on the CPU and on the GPU, and the exact
/// product's RMS, for x `[128, 700]` and w `[512, 700]` from the `seeds`. Every GPU output must be finite.
fn error_levels(technology: &Technology, seeds: (u64, u64), c: &TileCall, gpu: &Device) -> (f64, f64, f64) {
    let (x, w) = (randn(128, 700, seeds.0, 1.0), randn(512, 700, seeds.1, 0.05));
    let exact = flat(&x.matmul(&w.t().unwrap()).unwrap());
    let on_cpu = flat(&technology.simulator.matmul(&x, &w, c).unwrap());
    let on_gpu = flat(&technology.simulator.matmul(&x.to_device(gpu).unwrap(), &w.to_device(gpu).unwrap(), c).unwrap());
    assert!(on_gpu.iter().all(|v| v.is_finite()), "a GPU output is not finite");
    (rms_diff(&on_cpu, &exact), rms_diff(&on_gpu, &exact), rms_diff(&exact, &vec![0.0; exact.len()]))
}

/// PCM with all its noise, a day after programming: the GPU's error against the exact product is the CPU's
/// within sampling error. Both read the same programmed chip (programming is on the host from one key);
/// the read and output noise are other streams. 65 536 outputs estimate each RMS to about 0.3%; 4% allows
/// for that and for the GDC readout, which the two paths share.
#[test]
fn pcm_noise_on_the_gpu_has_the_cpu_error_level() {
    let gpu = gpu_device();
    let technology = pcm(&[]);
    let c = call("encoder.layer.0.output.dense", 86_400.0, false);
    let (e_cpu, e_gpu, signal) = error_levels(&technology, (21, 22), &c, &gpu);
    assert!(e_cpu > 0.01 * signal, "the noise is on: {e_cpu} against a signal of {signal}");
    assert!((e_gpu / e_cpu - 1.0).abs() < 0.04, "error RMS: GPU {e_gpu}, CPU {e_cpu}");
}

/// AIHWKIT PCM's presets' tiles of 512 (the widest vector converter), noise off, against the CPU: with a
/// low ADC bound, so that bound management retries many (row, tile)s over several rounds, and with rows
/// scaled to near f32's largest value, whose outputs overflow before they saturate (the converter's second,
/// saturating pass).
#[test]
fn pcm_tiles_of_512_retry_and_saturate_as_on_the_cpu() {
    let gpu = gpu_device();
    let technology = pcm(&[PCM_NOISE_OFF, &[("out-bound", ParamValue::Float(3.0)), ("core-size", ParamValue::Int(512))]].concat());
    // 1100 outputs: tiles of 512, 512 and 76; 700 inputs: chunks of 512 and 188.
    let (mut x, w) = (flat(&randn(64, 700, 41, 1.0)), randn(1100, 700, 42, 0.05));
    for row in [3, 40] {
        x[row * 700..(row + 1) * 700].iter_mut().for_each(|v| *v *= 5e37); // |x| up to about 2e38: finite
    }
    let x = Tensor::from_vec(x, (64, 700), &Device::Cpu).unwrap();
    let c = call("encoder.layer.0.intermediate.dense", 0.0, false);
    let on_cpu = flat(&technology.simulator.matmul(&x, &w, &c).unwrap());
    assert!(on_cpu.iter().all(|v| v.is_finite()), "a CPU output is not finite");
    let (xg, wg) = (x.to_device(&gpu).unwrap(), w.to_device(&gpu).unwrap());
    let on_gpu = flat(&technology.simulator.matmul(&xg, &wg, &c).unwrap());
    assert!(on_gpu.iter().all(|v| v.is_finite()), "a GPU output is not finite");
    let huge = on_cpu[3 * 1100..4 * 1100].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(huge > 1e37, "the scaled rows' outputs reach {huge}: the overflow path is not exercised");
    for (name, rows) in [("ordinary rows", (0..64).filter(|r| ![3, 40].contains(r)).collect::<Vec<_>>()), ("scaled rows", vec![3, 40])] {
        let pick = |v: &[f32]| rows.iter().flat_map(|&r| v[r * 1100..(r + 1) * 1100].to_vec()).collect::<Vec<_>>();
        let diff = rel_max_diff(&pick(&on_gpu), &pick(&on_cpu));
        assert!(diff < 2e-2, "{name}: outputs differ by {diff} relative to their largest");
    }
}

/// AIHWKIT PCM's converter with output noise and the step on (the presets) has its own vector kernel
/// (`pim_pcm_finalize_vec4_full`); with the factors one float off 16-byte alignment, the same call takes the
/// general kernel. Same draws and arithmetic: the outputs and pass masks are bit for bit equal. Tile outputs
/// with a standard deviation of about 2 against a bound of 3 saturate often, so bound management runs: without
/// it the outputs differ.
#[test]
fn the_presets_vector_converter_is_the_general_one() {
    use gpu::pcm::{Dac, Io, Tiles, tiles_forward};
    let gpu = gpu_device();
    let io = Io { abs_max: true, inp_step: 1.0 / 127.0, out_noise: 0.04, out_step: 6.0 / 255.0, out_bound: 3.0, iterative_bm: true };
    let tiles = Tiles { tc: 512, tw: 512 };
    let x = randn(96, 700, 51, 1.0).to_device(&gpu).unwrap();
    let wc = randn(1100 * 700, 1, 52, 0.3).flatten_all().unwrap().to_device(&gpu).unwrap();
    let factors = randn(1 + 2 * 1100, 1, 53, 0.1).flatten_all().unwrap().abs().unwrap().affine(1.0, 1.0).unwrap().to_device(&gpu).unwrap();
    let unaligned = factors.narrow(0, 1, 2 * 1100).unwrap().reshape((2, 1100)).unwrap();
    assert_eq!(unaligned.layout().start_offset(), 1);
    let aligned = unaligned.affine(1.0, 0.0).unwrap(); // the same values in a fresh storage
    assert_eq!(aligned.layout().start_offset(), 0);
    let key = gpu::PhiloxKey::new(NoiseKey::new(5, "layer", 0, 1), 9);
    let dac = Dac::new(&x, tiles.tc, io).unwrap();
    let (vector, vector_pass) = tiles_forward(&x, &dac, &wc, &aligned, tiles, io, key, true).unwrap();
    let (general, general_pass) = tiles_forward(&x, &dac, &wc, &unaligned, tiles, io, key, true).unwrap();
    let (vector, general) = (flat(&vector), flat(&general));
    assert!(vector.iter().all(|v| v.is_finite()), "a vector converter output is not finite");
    assert!(vector.iter().zip(&general).all(|(a, b)| a.to_bits() == b.to_bits()), "the converters' outputs differ");
    let mask = |p: Option<Tensor>| p.unwrap().flatten_all().unwrap().to_vec1::<u8>().unwrap();
    assert_eq!(mask(vector_pass), mask(general_pass), "the pass masks differ");
    let clipped = Io { iterative_bm: false, ..io };
    let (once, _) = tiles_forward(&x, &Dac::new(&x, tiles.tc, clipped).unwrap(), &wc, &aligned, tiles, clipped, key, false).unwrap();
    assert_ne!(flat(&once), vector, "no tile saturated: bound management is not exercised");
}

/// NewComputeBench's PCM tile on the GPU: without noise, the CPU's outputs for block and token input scales
/// at odd shapes with short sequences (to GEMM rounding, plus one 8-bit ADC step where a rounding boundary
/// falls between the two sums); with programming, read, IR-drop and output noise on, the CPU's error RMS
/// within 4% (65 536 outputs, other streams: equal in distribution only).
#[test]
fn pcm_ncb_on_the_gpu_is_the_cpu_tile() {
    let gpu = gpu_device();
    let noise_off = |scale: &str| {
        tech(PimKind::PcmNcb, PCM_NCB, &[("programming-noise", ParamValue::Bool(false)), ("input-scale", ParamValue::Str(scale.into()))])
    };
    // 300 outputs take the vector output kernel (rows of a multiple of 4), 299 the general one.
    for (scale, n) in [("block", 300), ("token", 300), ("block", 299)] {
        let (x, w) = (randn(111, 700, 23, 1.0), randn(n, 700, 24, 0.05));
        let (xg, wg) = (x.to_device(&gpu).unwrap(), w.to_device(&gpu).unwrap());
        let technology = noise_off(scale);
        let c = TileCall { rows_per_sequence: 37, ..call("encoder.layer.0.intermediate.dense", 0.0, false) };
        let on_cpu = flat(&technology.simulator.matmul(&x, &w, &c).unwrap());
        let on_gpu = flat(&technology.simulator.matmul(&xg, &wg, &c).unwrap());
        let diff = rel_max_diff(&on_gpu, &on_cpu);
        assert!(diff < 1e-2, "{scale}, {n} outputs: outputs differ by {diff} relative to their largest");
        let close = on_gpu.iter().zip(&on_cpu).filter(|(a, b)| (*a - *b).abs() <= 1e-4 * b.abs().max(1.0)).count();
        assert!(close as f64 > 0.99 * on_cpu.len() as f64, "{scale}, {n} outputs: only {close} of {} agree", on_cpu.len());
        // The same input again (a layer's key after its query) reuses the DAC pass; another input does not.
        // Either way the outputs are a fresh tile's.
        let w2 = randn(n, 700, 27, 0.05).to_device(&gpu).unwrap();
        let other = randn(111, 700, 28, 1.0).to_device(&gpu).unwrap();
        for (what, x) in [("the same input", &xg), ("another input", &other)] {
            let reused = flat(&technology.simulator.matmul(x, &w2, &c).unwrap());
            let fresh = flat(&noise_off(scale).simulator.matmul(x, &w2, &c).unwrap());
            assert_eq!(reused, fresh, "{scale}, {n} outputs, {what}: the DAC cache changed the outputs");
        }
    }
    let on = |name| (name, ParamValue::Bool(true));
    let noisy = tech(PimKind::PcmNcb, PCM_NCB, &[on("programming-noise"), on("read-noise"), on("ir-drop"), on("out-noise")]);
    let c = call("encoder.layer.0.output.dense", 0.0, false);
    let (e_cpu, e_gpu, signal) = error_levels(&noisy, (25, 26), &c, &gpu);
    assert!(e_cpu > 0.1 * signal, "the noise is on: {e_cpu}");
    assert!((e_gpu / e_cpu - 1.0).abs() < 0.04, "error RMS: GPU {e_gpu}, CPU {e_cpu}");
}

/// Hardware-aware PCM training, noise off: forward and the gradient through the perturbed weights and the
/// ADC's pass mask match the CPU's; the post-update clip is the CPU's.
#[test]
fn pcm_hardware_aware_training_matches_the_cpu() {
    let gpu = gpu_device();
    // Tiles of 48 take the general DAC and converter kernels, tiles of 128 their vector forms.
    for core_size in [48, 128] {
        let technology = pcm(&[
            ("train-weight-noise", ParamValue::Float(0.0)),
            ("out-noise", ParamValue::Float(0.0)),
            ("out-bound", ParamValue::Float(2.0)),
            ("core-size", ParamValue::Int(core_size)),
        ]);
        let config = config(64, 4, 2);
        let step = |device: &Device| -> (Vec<f32>, Vec<f32>) {
            let mut model: SequenceClassifier = random_model(&config, 2, 5, device).unwrap();
            model.set_linear_forward(technology.linear(3, 0, 0.0, 0));
            training_step(&model, "layer.0.intermediate.dense.weight", device)
        };
        let ((logits_cpu, grad_cpu), (logits_gpu, grad_gpu)) = (step(&Device::Cpu), step(&gpu));
        let diff = rel_max_diff(&logits_gpu, &logits_cpu);
        assert!(diff < 2e-2, "tiles of {core_size}: logits differ by {diff}");
        let diff = rel_max_diff(&grad_gpu, &grad_cpu);
        assert!(diff < 2e-2, "tiles of {core_size}: intermediate gradients differ by {diff} relative to their largest");
    }

    let (n, k) = (300, 200);
    let mut w = flat(&randn(n, k, 23, 0.02));
    w[5] = 0.5; // an outlier: its row keeps it as the max, its tile's σ clips other weights
    let on_gpu = flat(&gpu::pcm::clip_and_remap(&Tensor::from_slice(&w, (n, k), &gpu).unwrap(), 64, 2.0).unwrap());
    pimsweep::pim::pcm_aihwkit::remap::clip_and_remap(&mut w, n, k, 64, 2.0);
    assert_eq!(on_gpu, w, "the clipped weights");
}

/// The fused LayerNorm, softmaxes, GELU, bias add and head split/merge and their gradients, and the dropout masks, on the GPU.
#[test]
fn fused_model_ops_and_gradients_match_the_cpu() {
    use candle_core::Var;
    use pimsweep::model::fused;
    let gpu = gpu_device();
    let x = randn(96, 384, 31, 2.0);
    let (w, b) = (randn(1, 384, 32, 1.0).flatten_all().unwrap(), randn(1, 384, 33, 0.1).flatten_all().unwrap());
    let mask =
        Tensor::from_vec((0..2 * 48).map(|i| if i % 7 == 0 { -1e4f32 } else { 0.0 }).collect::<Vec<_>>(), (2, 1, 1, 48), &Device::Cpu)
            .unwrap();
    let scores = randn(2 * 2 * 48, 48, 34, 3.0).reshape((2, 2, 48, 48)).unwrap();
    let up = randn(96, 384, 35, 1.0);
    // f(x) and d(Σ f(x)·up)/d(x, w, b) on a device.
    let run = |device: &Device| -> Vec<Vec<f32>> {
        let (xv, wv, bv) = (
            Var::from_tensor(&x.to_device(device).unwrap()).unwrap(),
            Var::from_tensor(&w.to_device(device).unwrap()).unwrap(),
            Var::from_tensor(&b.to_device(device).unwrap()).unwrap(),
        );
        let up = up.to_device(device).unwrap();
        let ln = fused::layer_norm(&xv, &wv, &bv, 1e-12).unwrap();
        let gelu = fused::gelu_erf(&xv).unwrap();
        let soft = fused::softmax_last_dim(&xv).unwrap();
        let sv = Var::from_tensor(&scores.to_device(device).unwrap()).unwrap();
        let attn = fused::attention_softmax(&sv, &mask.to_device(device).unwrap()).unwrap();
        let attn_up = attn.sqr().unwrap().sum_all().unwrap();
        let biased = fused::add_bias(&xv, &bv).unwrap();
        // 6 heads of 64 over [2, 48, 384], scaled on the way in, squared and merged back.
        let split = fused::split_heads(&xv.reshape((2, 48, 384)).unwrap(), 6, 0.125).unwrap();
        let merged = fused::merge_heads(&split.sqr().unwrap()).unwrap();
        let loss = (ln.mul(&up).unwrap().sum_all().unwrap()
            + gelu.mul(&up).unwrap().sum_all().unwrap()
            + soft.mul(&up).unwrap().sum_all().unwrap()
            + biased.sqr().unwrap().sum_all().unwrap()
            + merged.reshape((96, 384)).unwrap().mul(&up).unwrap().sum_all().unwrap()
            + attn_up)
            .unwrap();
        let grads = loss.backward().unwrap();
        let mut out = vec![flat(&ln), flat(&gelu), flat(&soft), flat(&attn), flat(&biased), flat(&merged)];
        for v in [&xv, &wv, &bv, &sv] {
            out.push(flat(grads.get(v.as_tensor()).unwrap()));
        }
        out
    };
    let (cpu, dev) = (run(&Device::Cpu), run(&gpu));
    let names = ["layer norm", "gelu", "softmax", "attention softmax", "bias add", "heads", "dx", "dweight", "dbias", "dscores"];
    for ((name, a), b) in names.iter().zip(&cpu).zip(&dev) {
        let diff = rel_max_diff(b, a);
        assert!(diff < 1e-5, "{name}: GPU and CPU differ by {diff}");
    }

    let shape = candle_core::Shape::from((3, 1001));
    let on_cpu = flat(&fused::dropout_mask(&shape, 0.1, 77, &Device::Cpu).unwrap());
    let on_gpu = flat(&fused::dropout_mask(&shape, 0.1, 77, &gpu).unwrap());
    assert_eq!(on_cpu, on_gpu, "dropout masks");

    // The embedding lookup and its backward: the same f32 additions in the same order on both.
    let table = randn(300, 40, 36, 1.0);
    let ids: Vec<u32> = (0..512u32).map(|i| if i % 3 == 0 { 5 } else { (i * 37) % 300 }).collect();
    let ids = Tensor::from_vec(ids, (8, 64), &Device::Cpu).unwrap();
    let grad_up = randn(512, 40, 37, 1.0).reshape((8, 64, 40)).unwrap();
    let lookup = |device: &Device| -> (Vec<f32>, Vec<f32>) {
        let tv = Var::from_tensor(&table.to_device(device).unwrap()).unwrap();
        let y = fused::embedding(&tv, &ids.to_device(device).unwrap()).unwrap();
        let grads = y.mul(&grad_up.to_device(device).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
        (flat(&y), flat(grads.get(tv.as_tensor()).unwrap()))
    };
    assert_eq!(lookup(&Device::Cpu), lookup(&gpu), "embedding lookup and gradient");
}

/// The fused Adam step on the GPU is the CPU's: same f32 operations in the same order, so three steps agree
/// to the last bit or so (sqrt and division are IEEE-rounded on both).
#[test]
fn the_fused_adam_step_is_the_cpus() {
    use pimsweep::train::{Optimizer, OptimizerKind};
    let gpu = gpu_device();
    let run = |device: &Device| -> Vec<f32> {
        let w = candle_core::Var::from_tensor(&randn(300, 77, 31, 0.1).to_device(device).unwrap()).unwrap();
        let b = candle_core::Var::from_tensor(&randn(1, 77, 32, 0.1).to_device(device).unwrap()).unwrap();
        let vars = vec![("layer.weight".to_string(), w.clone()), ("layer.bias".to_string(), b.clone())];
        let mut opt = Optimizer::new(OptimizerKind::AdamW, &vars, 1e-2, 0.1).unwrap();
        for step in 0..3u64 {
            let target = randn(300, 77, 40 + step, 1.0).to_device(device).unwrap();
            let loss = (w.as_tensor().broadcast_add(b.as_tensor()).unwrap() - target).unwrap().sqr().unwrap().sum_all().unwrap();
            opt.step(&mut loss.backward().unwrap()).unwrap();
        }
        [flat(w.as_tensor()), flat(b.as_tensor())].concat()
    };
    let (a, b) = (run(&Device::Cpu), run(&gpu));
    let diff = rel_max_diff(&b, &a);
    assert!(diff < 1e-6, "parameters differ by {diff} relative to their largest");
}
