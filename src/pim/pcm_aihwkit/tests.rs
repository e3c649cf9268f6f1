//! Tests of the AIHWKIT PCM simulator as a whole: exactness under perfect settings, GDC, chip semantics,
//! bound management and robustness. The device statistics are tested in `physics`.

use candle_core::{Device, Tensor};

use super::chip::{Chip, Tiling};
use super::io::Io;
use super::physics::Physics;
use super::*;
use crate::pim::NoiseKey;
use crate::sweep::params::PCM_AIHWKIT;
use crate::sweep::{ParamValue, PimKind};

const LAYER: &str = "encoder.layer.0.attention.self.query";
const HOUR: f64 = 3600.0;
const YEAR: f64 = 365.0 * 24.0 * HOUR;

fn params(overrides: &[(&'static str, ParamValue)]) -> ParamSet {
    let mut p = ParamSet::defaults(PCM_AIHWKIT);
    for (k, v) in overrides {
        assert!(p.values.insert(k, v.clone()).is_some(), "unknown parameter {k}");
    }
    p
}

/// Every noise source off and 16-bit converters, GDC off.
fn quiet_16bit(cs: i64) -> ParamSet {
    use ParamValue::*;
    params(&[
        ("core-size", Int(cs)),
        ("prog-noise-scale", Float(0.0)),
        ("read-noise-scale", Float(0.0)),
        ("drift-scale", Float(0.0)),
        ("out-noise", Float(0.0)),
        ("input-bits", Int(16)),
        ("output-bits", Int(16)),
        ("gdc", Bool(false)),
    ])
}

fn quiet_physics() -> Physics {
    Physics { g_max: 25.0, prog_noise_scale: 0.0, read_noise_scale: 0.0, drift_scale: 1.0, fixed_nu: None }
}

/// An ideal IO: no converters, no noise, no saturation.
fn perfect_io() -> Io {
    Io {
        abs_max: true,
        inp_step: 0.0,
        out_step: 0.0,
        out_bound: f32::INFINITY,
        out_noise: 0.0,
        iterative_bm: false,
        w_noise: 0.0,
        ir_drop: 0.0,
    }
}

fn call(chip: u64, draw: u64, drift_s: f64) -> TileCall<'static> {
    TileCall { layer: LAYER, rows_per_sequence: 1, training: false, drift_s, noise: NoiseKey::new(42, LAYER, chip, draw) }
}

fn randn(stream: u64, shape: (usize, usize), scale: f32) -> Tensor {
    let v: Vec<f32> = NoiseKey::new(1, "data", 0, 0).normals(stream, shape.0 * shape.1).iter().map(|x| x * scale).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn vec2(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}

fn exact(x: &Tensor, w: &Tensor) -> Vec<f32> {
    vec2(&x.matmul(&w.t().unwrap()).unwrap())
}

#[test]
fn perfect_settings_reproduce_the_product() {
    let (x, w) = (randn(1, (9, 77), 1.0), randn(2, (45, 77), 0.05));
    let reference = exact(&x, &w);
    for cs in [32usize, 0] {
        for per_row in [true, false] {
            // Ideal converters: only f32 rounding of the scalings remains.
            let sim = PcmAihwkit::new(cs, per_row, false, quiet_physics(), perfect_io());
            let err = rel_err(&vec2(&sim.matmul(&x, &w, &call(0, 0, 0.0)).unwrap()), &reference);
            assert!(err < 1e-6, "cs {cs} row {per_row}: ideal IO error {err}");
        }
        // 16-bit converters: the ADC step 24/65534 rounds each tile output with std step/√12 ≈ 1.1e-4 against
        // normalised outputs of order 1 — a relative error around 1e-4 at most; allow 3e-4.
        let sim = PcmAihwkit::from_params(&quiet_16bit(cs as i64)).unwrap();
        let err = rel_err(&vec2(&sim.matmul(&x, &w, &call(0, 0, 0.0)).unwrap()), &reference);
        eprintln!("16-bit IO, cs {cs}: relative error {err:.2e}");
        assert!(err < 3e-4, "cs {cs}: 16-bit error {err}");
    }
}

#[test]
fn iterative_bound_management_avoids_saturation() {
    // 64 inputs of 1 on weights of 1: the normalised output 64 exceeds the bound 12 until the input is
    // halved three times (64/8 = 8).
    let x = Tensor::ones((2, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::ones((3, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
    let io = Io { out_bound: 12.0, iterative_bm: true, ..perfect_io() };
    let sim = PcmAihwkit::new(0, true, false, quiet_physics(), io);
    assert!(vec2(&sim.matmul(&x, &w, &call(0, 0, 0.0)).unwrap()).iter().all(|&v| (v - 64.0).abs() < 1e-4));
    let sim = PcmAihwkit::new(0, true, false, quiet_physics(), Io { iterative_bm: false, ..io });
    assert!(vec2(&sim.matmul(&x, &w, &call(0, 0, 0.0)).unwrap()).iter().all(|&v| v == 12.0), "saturates at the bound");
}

#[test]
fn gdc_factor_grows_with_drift() {
    let p = params(&[]);
    let sim = PcmAihwkit::from_params(&p).unwrap();
    let w = vec2(&randn(3, (512, 512), 1.0));
    let chip = Chip::program(&w, Tiling::new(512, 512, 512), true, &sim.phys, &sim.io, NoiseKey::new(5, LAYER, 0, 0), true);
    let alphas: Vec<f32> = [0.0, HOUR, 24.0 * HOUR, YEAR, 10.0 * YEAR].iter().map(|&t| chip.gdc_alpha(t, &sim.phys, &sim.io)[0]).collect();
    eprintln!("GDC α at 0, 1 h, 1 d, 1 y, 10 y: {alphas:?}");
    assert_eq!(alphas[0], 1.0, "β(0) is β0 from the same readout draws");
    assert!(alphas.windows(2).all(|a| a[1] > a[0]), "α must grow with t: {alphas:?}");
    // Mean drift of the dominant on-devices gives 1/0.448 ≈ 2.23 at 10 years; the readout's 262 144 noisy
    // entries make α itself nearly deterministic, so ±0.15 covers the model's device mix, not sampling.
    assert!((alphas[4] - 2.2).abs() < 0.15, "α(10 y) = {}", alphas[4]);
}

#[test]
fn gdc_cancels_a_state_independent_drift() {
    let phys = Physics { fixed_nu: Some(0.06), ..quiet_physics() };
    let sim = PcmAihwkit::new(32, true, true, phys, perfect_io());
    let (x, w) = (randn(4, (5, 70), 1.0), randn(5, (40, 70), 0.05));
    let y0 = vec2(&sim.matmul(&x, &w, &call(0, 0, 0.0)).unwrap());
    let yt = vec2(&sim.matmul(&x, &w, &call(0, 1, 10.0 * YEAR)).unwrap());
    // Without GDC the outputs shrink by ((t+20)/20)^(−0.06) ≈ 0.37; with it they match to f32 rounding.
    let err = rel_err(&yt, &y0);
    assert!(err < 1e-6, "GDC left a relative error {err}");
    let no_gdc = PcmAihwkit::new(32, true, false, phys, perfect_io());
    let shrunk = vec2(&no_gdc.matmul(&x, &w, &call(0, 1, 10.0 * YEAR)).unwrap());
    let ratio = (shrunk.iter().map(|v| v * v).sum::<f32>() / y0.iter().map(|v| v * v).sum::<f32>()).sqrt();
    assert!((ratio - (1.0 + 10.0 * YEAR as f32 / 20.0).powf(-0.06)).abs() < 1e-4, "drift without GDC: {ratio}");
}

#[test]
fn chip_semantics() {
    let (x, w) = (randn(6, (6, 100), 1.0), randn(7, (50, 100), 0.05));
    let run = |sim: &PcmAihwkit, c: TileCall| vec2(&sim.matmul(&x, &w, &c).unwrap());
    // Read and output noise off: every call on a chip reads the same programmed devices.
    let quiet = params(&[("read-noise-scale", ParamValue::Float(0.0)), ("out-noise", ParamValue::Float(0.0))]);
    let sim = PcmAihwkit::from_params(&quiet).unwrap();
    let (a, b) = (run(&sim, call(0, 1, HOUR)), run(&sim, call(0, 2, HOUR)));
    assert_eq!(a, b, "same chip, no read/out noise: bit-identical");
    let other = run(&sim, call(1, 1, HOUR));
    assert!(rel_err(&other, &a) > 1e-3, "another chip has other programming noise");
    // A fresh simulator (empty cache) programs the same chip from the same key.
    assert_eq!(run(&PcmAihwkit::from_params(&quiet).unwrap(), call(0, 7, HOUR)), a);
    // Full noise: draws differ, the same key replays bit for bit.
    let sim = PcmAihwkit::from_params(&params(&[])).unwrap();
    let (a, b) = (run(&sim, call(0, 1, HOUR)), run(&sim, call(0, 2, HOUR)));
    assert_ne!(a, b, "read and output noise are re-drawn per call");
    assert_eq!(a, run(&sim, call(0, 1, HOUR)), "same NoiseKey, same output");
    // A changed weight re-programs the chip.
    let w2 = (&w * 0.5).unwrap();
    let half = vec2(&sim.matmul(&x, &w2, &call(0, 1, HOUR)).unwrap());
    assert!(rel_err(&half, &a.iter().map(|v| v * 0.5).collect::<Vec<_>>()) < 1e-6, "row scaling makes W/2 give y/2");
}

#[test]
fn training_draws_fresh_weight_noise_every_call_and_programs_no_chip() {
    let (x, w) = (randn(8, (4, 60), 1.0), randn(9, (30, 60), 0.05));
    let quiet = params(&[("read-noise-scale", ParamValue::Float(0.0)), ("out-noise", ParamValue::Float(0.0))]);
    let sim = PcmAihwkit::from_params(&quiet).unwrap();
    let train = |draw| TileCall { training: true, drift_s: YEAR, ..call(0, draw, 0.0) };
    let (a, b) = (vec2(&sim.matmul(&x, &w, &train(1)).unwrap()), vec2(&sim.matmul(&x, &w, &train(2)).unwrap()));
    assert!(rel_err(&a, &b) > 1e-3, "fresh weight noise per training call");
    assert_eq!(a, vec2(&sim.matmul(&x, &w, &train(1)).unwrap()), "but reproducible");
    assert!(sim.chips.lock().unwrap().is_empty(), "training does not cache chips");
}

#[test]
fn robust_to_extreme_inputs() {
    let sim = PcmAihwkit::from_params(&params(&[("core-size", ParamValue::Int(32)), ("w-noise", ParamValue::Float(0.02))])).unwrap();
    let ir = PcmAihwkit::from_params(&params(&[("ir-drop", ParamValue::Float(1.0))])).unwrap();
    let (rows, k, n) = (6, 70, 40);
    let mut xv = vec2(&randn(10, (rows, k), 1.0));
    xv[..k].fill(0.0); // a zero row
    xv[k..2 * k].fill(3.0); // a constant row
    xv[2 * k..3 * k].iter_mut().for_each(|v| *v *= 1e30);
    xv[3 * k..4 * k].iter_mut().for_each(|v| *v *= 1e-40); // subnormals
    xv[4 * k + 5] = 1e30; // one huge outlier
    let x = Tensor::from_vec(xv, (rows, k), &Device::Cpu).unwrap();
    let mut wv = vec2(&randn(11, (n, k), 0.05));
    for r in 0..32 {
        wv[r * k..r * k + 32].fill(0.0); // an all-zero weight tile (cs 32)
    }
    let w = Tensor::from_vec(wv, (n, k), &Device::Cpu).unwrap();
    for (sim, t) in [(&sim, 0.0), (&sim, 10.0 * YEAR), (&ir, HOUR)] {
        let y = vec2(&sim.matmul(&x, &w, &call(0, 3, t)).unwrap());
        assert!(y.iter().all(|v| v.is_finite()), "non-finite output at t = {t}");
        assert!(y[..n].iter().all(|&v| v == 0.0), "a zero input row gives 0");
        assert!(y[2 * n..3 * n].iter().any(|v| v.abs() > 1e27), "1e30 inputs keep their scale");
    }
    // Inputs near f32::MAX saturate the digital accumulator instead of overflowing.
    let huge = Tensor::full(3.0e38f32, (2, k), &Device::Cpu).unwrap();
    assert!(vec2(&sim.matmul(&huge, &w, &call(0, 3, HOUR)).unwrap()).iter().all(|v| v.is_finite()));
    let zero_w = Tensor::zeros((n, k), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(vec2(&sim.matmul(&x, &zero_w, &call(0, 3, HOUR)).unwrap()).iter().all(|&v| v == 0.0));
    let empty = Tensor::zeros((0, k), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(sim.matmul(&empty, &w, &call(0, 3, HOUR)).unwrap().dims(), &[0, n]);
    assert!(sim.matmul(&x, &randn(12, (n, k + 1), 1.0), &call(0, 3, HOUR)).is_err(), "shape mismatch is an error");
}

#[test]
fn built_from_parameters() {
    assert!(crate::pim::simulator::build(PimKind::PcmAihwkit, &params(&[])).is_ok());
    let err = PcmAihwkit::from_params(&params(&[("input-scale", ParamValue::Str("block".into()))])).unwrap_err();
    assert!(err.to_string().contains("only for NewComputeBench"), "{err}");
    let sim = PcmAihwkit::from_params(&params(&[("input-bits", ParamValue::Int(8))])).unwrap();
    assert!((sim.io.inp_step - 2.0 / 254.0).abs() < 1e-9, "255 DAC levels over [−1, 1]");
    assert!((sim.io.out_step - 24.0 / 254.0).abs() < 1e-7, "255 ADC levels over ±12");
}

#[test]
fn mvm_read_noise_and_ir_drop() {
    // W = ones (1 × 16), x = ones: the ideal normalised output is 16 on every row.
    let (rows, k) = (4000, 16);
    let x = Tensor::ones((rows, k), candle_core::DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::ones((1, k), candle_core::DType::F32, &Device::Cpu).unwrap();
    // PCM_READ noise: w_noise·sqrt(Σ|w|x²)·ξ = 0.1·4·ξ. Its sample std over n = 4000 rows has SE 0.4/sqrt(2n)
    // ≈ 0.0045; allow 5 SE.
    let sim = PcmAihwkit::new(0, true, false, quiet_physics(), Io { w_noise: 0.1, ..perfect_io() });
    let y: Vec<f64> = vec2(&sim.matmul(&x, &w, &call(0, 1, 0.0)).unwrap()).iter().map(|&v| v as f64).collect();
    let mean = y.iter().sum::<f64>() / rows as f64;
    let std = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64).sqrt();
    assert!((std - 0.4).abs() < 5.0 * 0.4 / (2.0 * rows as f64).sqrt(), "w-noise std {std}");
    assert!((mean - 16.0).abs() < 5.0 * 0.4 / (rows as f64).sqrt(), "w-noise mean {mean}");
    // IR drop: a = n/Gw·Σ|w||x| = 16²/5.7e5, c = a(a(0.05a − 0.2) + 0.5), y = 16 − ir·c·Σ_j (1 − (1 − j/16)²).
    let sim = PcmAihwkit::new(0, true, false, quiet_physics(), Io { ir_drop: 2.0, ..perfect_io() });
    let y = vec2(&sim.matmul(&x.narrow(0, 0, 1).unwrap(), &w, &call(0, 1, 0.0)).unwrap())[0];
    let a = 256.0f64 / 5.7e5;
    let c = a * (a * (0.05 * a - 0.2) + 0.5);
    let shaped: f64 = (0..16).map(|j| 1.0 - (1.0 - j as f64 / 16.0).powi(2)).sum();
    let expected = 16.0 - 2.0 * c * shaped;
    assert!(((y as f64) - expected).abs() < 1e-5, "IR drop: {y} vs {expected}");
    assert!(y < 16.0 - 1e-3, "IR drop lowers the output");
}

// ---- Hardware-aware training (hwa.rs, remap.rs) -------------------------------------------------------

fn train_call(draw: u64) -> TileCall<'static> {
    TileCall { training: true, ..call(0, draw, 0.0) }
}

/// The gradients (x, W) of Σ y ⊙ g through a PimLinear of `sim` in training, for a `[rows, k]` → `[rows, n]` layer.
fn training_gradients(sim: PcmAihwkit, x: &Tensor, w: &Tensor, g: &Tensor) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    use crate::model::{LinearForward, Mode};
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &Device::Cpu).pp(LAYER);
    let (n, k) = w.dims2().unwrap();
    let layer = crate::model::LinearLayer::new(vb, k, n).unwrap();
    varmap.data().lock().unwrap()[&format!("{LAYER}.weight")].set(w).unwrap();
    let xv = candle_core::Var::from_tensor(x).unwrap();
    let linear = crate::pim::PimLinear::new(Arc::new(sim), crate::pim::LayerFilter::default(), 42, 0, 0.0, 0);
    let y = linear.forward(&layer, xv.as_tensor(), Mode::Train).unwrap();
    let grads = (&y * g).unwrap().sum_all().unwrap().backward().unwrap();
    let weight = varmap.data().lock().unwrap()[&format!("{LAYER}.weight")].clone();
    (vec2(&y), vec2(grads.get(xv.as_tensor()).unwrap()), vec2(grads.get(weight.as_tensor()).unwrap()))
}

#[test]
fn hardware_aware_training_without_noise_is_the_plain_layer_and_its_gradient() {
    use ParamValue::*;
    let mut p = quiet_16bit(64);
    p.values.insert("train-weight-noise", Float(0.0));
    let (x, w, g) = (randn(1, (6, 150), 1.0), randn(2, (70, 150), 0.05), randn(3, (6, 70), 1.0));
    let (y, gx, gw) = training_gradients(PcmAihwkit::from_params(&p).unwrap(), &x, &w, &g);
    assert!(rel_err(&y, &exact(&x, &w)) < 2e-4, "{}", rel_err(&y, &exact(&x, &w)));
    assert!(rel_err(&gx, &vec2(&g.matmul(&w).unwrap())) < 1e-5);
    assert!(rel_err(&gw, &vec2(&g.t().unwrap().matmul(&x).unwrap())) < 1e-5);
}

#[test]
fn hardware_aware_gradients_go_through_the_perturbed_weights_and_stop_where_clipped() {
    use ParamValue::*;
    // Defaults: weight noise 0.067 of each row's max, 8-bit IO, out-noise 0.04, iterative bound management.
    let p = params(&[("core-size", Int(64))]);
    let sim = PcmAihwkit::from_params(&p).unwrap();
    let (x, w, g) = (randn(4, (5, 100), 1.0), randn(5, (30, 100), 0.05), randn(6, (5, 30), 1.0));
    let hwa = sim.hardware_aware_forward(&x, &w, &train_call(1)).unwrap().expect("training is hardware-aware");
    assert_eq!(hwa.chunks, [(0, 64), (64, 36)]);
    assert_eq!((hwa.weight.dims(), hwa.pass.dims()), (&[30 * 100][..], &[2, 5, 30][..]), "chunk-major weights, a mask per chunk");
    // The perturbation is the configured weight noise: std 0.067 of each tile row's max |w|. 3000 draws: the
    // sample std has a standard error of 0.067/√6000 ≈ 0.0009; ±0.004 is over 4 standard errors.
    let mut rel = Vec::new();
    for (ci, &(k0, kt)) in hwa.chunks.iter().enumerate() {
        let (used, orig) = (vec2(&hwa.chunk_weight(ci).unwrap()), vec2(&w.narrow(1, k0, kt).unwrap()));
        for r in 0..30 {
            let row = &orig[r * kt..(r + 1) * kt];
            let m = row.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            rel.extend(used[r * kt..(r + 1) * kt].iter().zip(row).map(|(u, o)| ((u - o) / m) as f64));
        }
    }
    let std = (rel.iter().map(|v| v * v).sum::<f64>() / rel.len() as f64).sqrt();
    assert!((std - 0.067).abs() < 0.004, "{std}");

    // The backward: dx = Σ_chunks (g ⊙ pass) · W̃_chunk, dW = (g ⊙ pass)ᵀ · x, the value that of the forward.
    let (y, gx, gw) = training_gradients(PcmAihwkit::from_params(&p).unwrap(), &x, &w, &g);
    assert_eq!(y, vec2(&hwa.y), "the same draws: the forward is reproducible");
    let mut want_gx = Tensor::zeros((5, 100), candle_core::DType::F32, &Device::Cpu).unwrap();
    let mut want_gw = Vec::new();
    for (ci, &(k0, kt)) in hwa.chunks.iter().enumerate() {
        let gp = (&g * &hwa.pass.get(ci).unwrap()).unwrap();
        let part = gp.matmul(&hwa.chunk_weight(ci).unwrap()).unwrap();
        want_gx = want_gx.slice_assign(&[0..5, k0..k0 + kt], &part).unwrap();
        want_gw.push(gp.t().unwrap().matmul(&x.narrow(1, k0, kt).unwrap()).unwrap());
    }
    let want_gw = Tensor::cat(&want_gw, 1).unwrap();
    assert!(rel_err(&gx, &vec2(&want_gx)) < 1e-5);
    assert!(rel_err(&gw, &vec2(&want_gw)) < 1e-5);
    assert!(rel_err(&gx, &vec2(&g.matmul(&w).unwrap())) > 0.01, "the noise shows in the input gradient");

    // Without bound management and with a tiny out-bound most outputs clip: their gradient is zero.
    let clipping = params(&[("core-size", Int(64)), ("out-bound", Float(0.05)), ("bound-management", Str("none".into()))]);
    let hwa = PcmAihwkit::from_params(&clipping).unwrap().hardware_aware_forward(&x, &w, &train_call(1)).unwrap().unwrap();
    let passed: f32 = vec2(&hwa.pass).iter().sum();
    assert!(passed < 0.5 * (5 * 30 * 2) as f32, "{passed}");
    let (_, gx, _) = training_gradients(PcmAihwkit::from_params(&clipping).unwrap(), &x, &w, &g);
    let all_clipped = vec2(&hwa.pass).iter().all(|&p| p == 0.0);
    assert!(all_clipped || gx.iter().any(|v| *v != 0.0));
}

#[test]
fn every_training_forward_draws_new_weight_noise_and_evaluation_is_not_hardware_aware() {
    let sim = PcmAihwkit::from_params(&params(&[])).unwrap();
    let (x, w) = (randn(7, (3, 40), 1.0), randn(8, (20, 40), 0.05));
    let a = sim.hardware_aware_forward(&x, &w, &train_call(1)).unwrap().unwrap();
    let b = sim.hardware_aware_forward(&x, &w, &train_call(2)).unwrap().unwrap();
    assert_ne!(vec2(&a.weight), vec2(&b.weight));
    assert!(sim.hardware_aware_forward(&x, &w, &call(0, 1, 0.0)).unwrap().is_none());
    // matmul in training is the hardware-aware forward's value.
    assert_eq!(vec2(&sim.matmul(&x, &w, &train_call(1)).unwrap()), vec2(&a.y));
}

#[test]
fn the_post_update_clips_through_the_simulator() {
    let sim = PcmAihwkit::from_params(&params(&[])).unwrap();
    let mut w = vec2(&randn(9, (4, 600), 0.02));
    w[5] = 3.0;
    let clipped = sim.post_update(&Tensor::from_vec(w.clone(), (4, 600), &Device::Cpu).unwrap()).unwrap().unwrap();
    let c = vec2(&clipped);
    assert!(c[5] < 3.0 && c[5] > 0.0, "the outlier is clipped: {}", c[5]);
    let mut direct = w.clone();
    remap::clip_and_remap(&mut direct, 4, 600, 512, 3.0);
    assert!(c == direct, "the simulator applies clip_and_remap with its core size and clip-sigma");
    assert!(c.iter().zip(&w).all(|(a, b)| a.abs() <= b.abs() && (a == b || a.signum() == b.signum())));
}

#[test]
fn chunk_major_order_puts_each_input_chunk_of_all_tiles_in_one_matrix() {
    // Edge tiles on both axes (n = 5, k = 7, tiles of 3), and the whole layer on one tile.
    for (cs, width) in [(3, 3), (0, 5)] {
        let tiling = Tiling::new(5, 7, cs);
        assert_eq!(tiling.tile_width(), width);
        let weight = |j: usize, col: usize| (j * 100 + col) as f32;
        let tile_order: Vec<f32> =
            tiling.tiles.iter().flat_map(|t| (0..t.nt).flat_map(move |a| (0..t.kt).map(move |b| weight(t.n0 + a, t.k0 + b)))).collect();
        let chunked = tiling.chunk_major(&tile_order);
        for &(k0, kt) in &tiling.chunks {
            for j in 0..5 {
                let row = &chunked[5 * k0 + j * kt..][..kt];
                assert_eq!(row, (k0..k0 + kt).map(|col| weight(j, col)).collect::<Vec<_>>(), "cs {cs}, chunk at {k0}, row {j}");
            }
        }
    }
}
