//! Shared helpers of the technologies' tests: parameter sets, the reference single-layer case of
//! PIM_MODELS.md §3, relative error, and the robustness inputs.

use candle_core::{Device, Tensor};

use super::noise::NoiseKey;
use super::simulator::{Simulator, TileCall};
use crate::sweep::params::{self, ParamSet, ParamSpec, RawValue};

/// A validated parameter set: the schema's defaults with `values` written over them.
pub fn params(schema: &[ParamSpec], values: &[(&str, RawValue)]) -> ParamSet {
    let mut set = ParamSet::defaults(schema);
    for (name, raw) in values {
        let spec = params::find(schema, name).unwrap_or_else(|| panic!("no parameter {name}"));
        set.set(spec, spec.check(raw).unwrap_or_else(|e| panic!("{name}: {}", e.message)));
    }
    set
}

pub fn int(i: i128) -> RawValue {
    RawValue::Int(i)
}
pub fn float(f: f64) -> RawValue {
    RawValue::Float(f)
}
pub fn string(s: &str) -> RawValue {
    RawValue::Str(s.to_string())
}
pub fn flag(b: bool) -> RawValue {
    RawValue::Bool(b)
}

pub fn call(rows_per_sequence: usize, noise: NoiseKey, training: bool) -> TileCall<'static> {
    TileCall { layer: "test.layer", rows_per_sequence, training, drift_s: 0.0, noise }
}

pub fn key(draw: u64) -> NoiseKey {
    NoiseKey::new(7, "test.layer", 0, draw)
}

pub fn tensor(data: Vec<f32>, rows: usize, cols: usize) -> Tensor {
    Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap()
}

pub fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Plain `x·Wᵀ`.
pub fn exact(x: &Tensor, w: &Tensor) -> Vec<f32> {
    flat(&x.matmul(&w.t().unwrap()).unwrap())
}

/// ‖y − y_ref‖ / ‖y_ref‖ in f64.
pub fn rel_err(y: &[f32], y_ref: &[f32]) -> f64 {
    assert_eq!(y.len(), y_ref.len());
    let num: f64 = y.iter().zip(y_ref).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    let den: f64 = y_ref.iter().map(|&b| (b as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// Random `[rows, cols]` N(0, std²) from a fixed seed.
pub fn normal(seed: u64, rows: usize, cols: usize, std: f32) -> Tensor {
    let v = NoiseKey::new(seed, "test.data", 0, 0).normals(0, rows * cols).into_iter().map(|z| z * std).collect();
    tensor(v, rows, cols)
}

/// The single-layer case of §3: x ~ N(0,1) of 4×50×768 as 200 rows (50 per sequence), W ~ N(0, 0.02²) 3072×768.
pub fn reference_case() -> (Tensor, Tensor) {
    (normal(1, 200, 768, 1.0), normal(2, 3072, 768, 0.02))
}

/// The relative error of `sim` on the reference case.
pub fn reference_error(sim: &dyn Simulator, noise: NoiseKey) -> f64 {
    let (x, w) = reference_case();
    let y = flat(&sim.matmul(&x, &w, &call(50, noise, false)).unwrap());
    rel_err(&y, &exact(&x, &w))
}

/// Settings equivalent to `original` must reproduce `x·Wᵀ` within 1e-5 relative, for odd shapes
/// (K = 77, N = 45 with cs 32), 2-D inputs and rows of 3-D inputs.
pub fn assert_reproduces_linear(sim: &dyn Simulator) {
    let w = normal(3, 45, 77, 0.05);
    for (rows, rps) in [(7, 7), (3 * 37, 37), (2 * 64, 64)] {
        let x = normal(4 + rows as u64, rows, 77, 1.0);
        let y = flat(&sim.matmul(&x, &w, &call(rps, key(0), false)).unwrap());
        let e = rel_err(&y, &exact(&x, &w));
        assert!(e < 1e-5, "{sim:?}: rows {rows} per sequence {rps}: relative error {e}");
    }
}

/// Inputs that must never make a technology return NaN or Inf: (name, x, w).
pub fn hostile_inputs() -> Vec<(&'static str, Tensor, Tensor)> {
    let (rows, k, n) = (6, 70, 40);
    let w = normal(5, n, k, 0.05);
    let x = normal(6, rows, k, 1.0);
    let mut cases = vec![
        ("zeros", tensor(vec![0.0; rows * k], rows, k), w.clone()),
        ("zero weight", x.clone(), tensor(vec![0.0; n * k], n, k)),
        ("constant rows", tensor(vec![0.75; rows * k], rows, k), w.clone()),
        ("constant weight", x.clone(), tensor(vec![-0.3; n * k], n, k)),
        ("1e30 inputs", tensor(vec![1e30; rows * k], rows, k), w.clone()),
        ("subnormal inputs", tensor(vec![f32::from_bits(3); rows * k], rows, k), w.clone()),
        ("subnormal weight", x.clone(), tensor(vec![-f32::from_bits(9); n * k], n, k)),
    ];
    let mut outlier = flat(&x);
    outlier[k + 3] = 3e37;
    cases.push(("huge outlier", tensor(outlier, rows, k), w.clone()));
    let mut w_outlier = flat(&w);
    w_outlier[5] = 1e30;
    cases.push(("huge weight outlier", x, tensor(w_outlier, n, k)));
    cases
}

pub fn assert_finite_on_hostile_inputs(sim: &dyn Simulator) {
    for (name, x, w) in hostile_inputs() {
        for rps in [6, 2] {
            for training in [false, true] {
                let y = flat(&sim.matmul(&x, &w, &call(rps, key(1), training)).unwrap());
                assert!(y.iter().all(|v| v.is_finite()), "{sim:?}: {name}: non-finite output (training {training})");
                let hwa = sim.hardware_aware_forward(&x, &w, &call(rps, key(1), training)).unwrap();
                if let Some(hwa) = hwa {
                    assert!(flat(&hwa.weight).iter().all(|v| v.is_finite()), "{sim:?}: {name}: non-finite training weights");
                }
            }
        }
    }
}
