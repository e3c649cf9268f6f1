use super::*;
use crate::pim::test_support::*;
use crate::sweep::params::{RERAM, RawValue};

fn reram(values: &[(&str, RawValue)]) -> Reram {
    Reram::from_params(&params(RERAM, values)).unwrap()
}

#[test]
fn no_bits_no_noise_reproduces_linear() {
    for scale in ["token", "block"] {
        let r = reram(&[("core-size", int(32)), ("input-scale", string(scale)), ("input-bits", RawValue::Null)]);
        assert_reproduces_linear(&r);
    }
}

#[test]
fn ncb_preset_error_level() {
    // configs/ncb/reram.kdl: 3-bit inputs per token row, nothing else.
    let r = reram(&[("core-size", int(256)), ("input-scale", string("token")), ("input-bits", int(3))]);
    let e = reference_error(&r, key(0));
    eprintln!("reram ncb preset: relative error {e:.4} (reference 0.227)");
    assert!((e - 0.227).abs() <= 0.01, "{e}");
}

#[test]
fn hostile_inputs_stay_finite() {
    for bits in [1, 3, 8, 16] {
        let r = reram(&[
            ("core-size", int(32)),
            ("input-bits", int(bits)),
            ("weight-bits", int(4)),
            ("noise-magnitude", float(0.05)),
            ("weight-noise", float(0.01)),
            ("adc-bits", int(bits)),
        ]);
        assert_finite_on_hostile_inputs(&r);
    }
}

#[test]
fn one_bit_cells_are_rejected() {
    assert!(Reram::from_params(&params(RERAM, &[("weight-bits", int(1))])).unwrap_err().to_string().contains("weight-bits"));
}

#[test]
fn weight_levels_and_adc() {
    // One tile, w_max = 1, 2-bit cells: levels round(w·1) ∈ {-1, 0, 1}.
    let r = reram(&[("core-size", int(4)), ("input-bits", RawValue::Null), ("weight-bits", int(2))]);
    let w = tensor(vec![1.0, 0.6, 0.4, -0.5], 1, 4);
    let x = tensor(vec![1.0, 1.0, 1.0, 1.0], 1, 4);
    let y = flat(&r.matmul(&x, &w, &call(1, key(0), false)).unwrap());
    assert_eq!(y, [1.0 + 1.0 + 0.0 - 0.0]);
    // A 2-bit symmetric ADC on the row [3, 1]: s = 2/3, round(2) clamps to 1, round(2/3) = 1 → [1.5, 1.5].
    let r = reram(&[("core-size", int(4)), ("input-bits", RawValue::Null), ("adc-bits", int(2))]);
    let w = tensor(vec![3.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], 2, 4);
    let y = flat(&r.matmul(&tensor(vec![1.0, 0.0, 0.0, 0.0], 1, 4), &w, &call(1, key(0), false)).unwrap());
    assert_eq!(y, [1.5, 1.5]);
}

#[test]
fn device_variation_is_the_chips() {
    let r = reram(&[("core-size", int(32)), ("noise-magnitude", float(0.05))]);
    let (x, w) = (normal(12, 9, 77, 1.0), normal(13, 45, 77, 0.05));
    let run = |k, training| flat(&r.matmul(&x, &w, &call(9, k, training)).unwrap());
    // Evaluation: every forward of one chip sees the same programmed weights, whatever the draw counter.
    assert_eq!(run(key(1), false), run(key(5), false));
    let other_chip = NoiseKeyExt::chip(key(1), 1);
    assert_ne!(run(key(1), false), run(other_chip, false));
    // Training: re-drawn every call, replayable.
    assert_eq!(run(key(2), true), run(key(2), true));
    assert_ne!(run(key(2), true), run(key(3), true));
    let e = rel_err(&run(key(1), false), &exact(&x, &w));
    assert!(e > 0.01, "device variation should perturb the output ({e})");
}

#[test]
fn a_cached_chip_is_reprogrammed_when_the_weight_changes() {
    let cfg = [("core-size", int(32)), ("noise-magnitude", float(0.05)), ("weight-bits", int(4))];
    let (x, w, w2) = (normal(12, 9, 77, 1.0), normal(13, 45, 77, 0.05), normal(14, 45, 77, 0.05));
    let cached = reram(&cfg);
    let first = flat(&cached.matmul(&x, &w, &call(9, key(1), false)).unwrap());
    // Same chip, new master weight (e.g. after a training step): programmed from w2, as a fresh simulator would.
    let second = flat(&cached.matmul(&x, &w2, &call(9, key(2), false)).unwrap());
    assert_ne!(first, second);
    assert_eq!(second, flat(&reram(&cfg).matmul(&x, &w2, &call(9, key(2), false)).unwrap()));
    // Back to w: the same chip programs w to the same weights again.
    assert_eq!(first, flat(&cached.matmul(&x, &w, &call(9, key(3), false)).unwrap()));
}

#[test]
fn weight_noise_is_additive_raw_units() {
    let r = reram(&[("core-size", int(32)), ("input-bits", RawValue::Null), ("weight-noise", float(0.01))]);
    let (x, w) = (normal(14, 50, 77, 1.0), tensor(vec![0.0; 45 * 77], 45, 77));
    let y = flat(&r.matmul(&x, &w, &call(50, key(1), false)).unwrap());
    // y = x·ξᵀ·0.01: its std is 0.01·sqrt(77) ≈ 0.088 although the weight is zero.
    let std = (y.iter().map(|v| v * v).sum::<f32>() / y.len() as f32).sqrt();
    assert!((std - 0.01 * 77f32.sqrt()).abs() < 0.02, "std {std}");
}

struct NoiseKeyExt;
impl NoiseKeyExt {
    fn chip(k: crate::pim::NoiseKey, chip: u64) -> crate::pim::NoiseKey {
        crate::pim::NoiseKey { chip, ..k }
    }
}

/// The GPU's composition run on the CPU is the CPU tiles bit for bit, with device variation (programmed on
/// the CPU either way) and a per-tile ADC.
#[test]
fn the_device_composition_is_the_cpu_tiles() {
    let (x, w) = (normal(5, 30, 600, 1.0), normal(6, 90, 600, 0.02));
    for (scale, adc) in [("token", None), ("block", Some(8)), ("token", Some(4))] {
        let mut values =
            vec![("core-size", int(256)), ("input-scale", string(scale)), ("weight-bits", int(4)), ("noise-magnitude", float(0.05))];
        if let Some(bits) = adc {
            values.push(("adc-bits", int(bits)));
        }
        let r = reram(&values);
        let call = call(10, key(2), false);
        assert_eq!(flat(&r.matmul(&x, &w, &call).unwrap()), flat(&r.matmul_on_device(&x, &w, &call).unwrap()), "{scale} adc {adc:?}");
    }
}

/// Training programs the weights where they are (gpu.rs `reram_program`): the same per-tile levels as the
/// host's `program` bit for bit, and device variation of σ·max|w| per tile (within 5 standard errors).
#[test]
fn training_programming_on_the_device_is_the_host_programming() {
    let w = normal(7, 90, 600, 0.02);
    let r = reram(&[("core-size", int(256)), ("weight-bits", int(4)), ("noise-magnitude", float(0.0))]);
    let geom = Geometry::new(1, 600, 90, 256, 0);
    let keys = [gpu::PhiloxKey::new(key(3), STREAM_DEVICE), gpu::PhiloxKey::new(key(3), STREAM_WEIGHT_NOISE)];
    let host = r.program(flat(&w), &geom, key(3));
    assert_eq!(flat(&gpu::reram_program(&w, 256, Some(7.0), 0.0, 0.0, keys).unwrap()), host);

    let sigma = 0.05f32;
    let noisy = flat(&gpu::reram_program(&w, 256, None, sigma, 0.0, keys).unwrap());
    let w = flat(&w);
    // Relative deviations (v − w)/max|w of the tile|; the whole layer is one row tile of 90 rows.
    let mut devs = Vec::new();
    for c in 0..geom.k_chunks() {
        let cols = geom.chunk(c);
        let m = (0..90).fold(0.0f32, |m, r| m.max(w[r * 600 + cols.start..r * 600 + cols.end].iter().fold(0.0f32, |a, v| a.max(v.abs()))));
        for r in 0..90 {
            devs.extend(cols.clone().map(|j| f64::from((noisy[r * 600 + j] - w[r * 600 + j]) / m)));
        }
    }
    let n = devs.len() as f64;
    let std = (devs.iter().map(|d| d * d).sum::<f64>() / n).sqrt();
    // The standard error of a sample std is σ/sqrt(2n).
    assert!((std - f64::from(sigma)).abs() < 5.0 * f64::from(sigma) / (2.0 * n).sqrt(), "std {std}");
}
