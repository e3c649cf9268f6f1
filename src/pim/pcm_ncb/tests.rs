use super::*;
use crate::pim::test_support::*;
use crate::sweep::params::{PCM_NCB, RawValue};

fn ncb(values: &[(&str, RawValue)]) -> PcmNcb {
    PcmNcb::from_params(&params(PCM_NCB, values)).unwrap()
}

/// configs/ncb/pcm.kdl with programming noise on or off.
fn preset(noise: bool) -> PcmNcb {
    ncb(&[("core-size", int(256)), ("input-scale", string("block")), ("g-max", float(5.0)), ("programming-noise", flag(noise))])
}

#[test]
fn ideal_converters_reproduce_linear() {
    for scale in ["token", "block"] {
        let p = ncb(&[
            ("core-size", int(32)),
            ("input-scale", string(scale)),
            ("dac-bits", RawValue::Null),
            ("adc-bits", RawValue::Null),
            ("programming-noise", flag(false)),
        ]);
        assert_reproduces_linear(&p);
    }
}

#[test]
fn reference_error_levels() {
    let e = reference_error(&preset(false), key(0));
    eprintln!("pcm ncb converters only: relative error {e:.4} (reference 0.0116)");
    assert!((e - 0.0116).abs() <= 0.01, "converters only: {e}");
    let e = reference_error(&preset(true), key(0));
    eprintln!("pcm ncb with programming noise: relative error {e:.4} (reference 0.44)");
    assert!((e - 0.44).abs() <= 0.01, "programming noise: {e}");
}

#[test]
fn hostile_inputs_stay_finite() {
    for (read, ir, out) in [(false, false, false), (true, true, true)] {
        let p = ncb(&[("core-size", int(32)), ("read-noise", flag(read)), ("ir-drop", flag(ir)), ("out-noise", flag(out))]);
        assert_finite_on_hostile_inputs(&p);
    }
    let folded = ncb(&[("core-size", int(32)), ("adc-bits", RawValue::Null)]);
    assert_finite_on_hostile_inputs(&folded);
}

#[test]
fn programming_noise_is_fresh_every_call() {
    let p = preset(true);
    let (x, w) = (normal(20, 9, 300, 1.0), normal(21, 45, 300, 0.05));
    let run = |k, training| flat(&p.matmul(&x, &w, &call(9, k, training)).unwrap());
    assert_eq!(run(key(1), false), run(key(1), false));
    assert_ne!(run(key(1), false), run(key(2), false), "re-drawn per forward, also in evaluation");
    assert_ne!(run(key(1), true), run(key(2), true));
}

#[test]
fn optional_terms_change_the_output() {
    let (x, w) = (normal(22, 9, 300, 1.0), normal(23, 45, 300, 0.05));
    let base = ncb(&[("programming-noise", flag(false))]);
    let y0 = flat(&base.matmul(&x, &w, &call(9, key(1), false)).unwrap());
    for term in ["read-noise", "ir-drop", "out-noise"] {
        let p = ncb(&[("programming-noise", flag(false)), (term, flag(true))]);
        let y = flat(&p.matmul(&x, &w, &call(9, key(1), false)).unwrap());
        let e = rel_err(&y, &y0);
        assert!(e > 1e-4 && e < 0.5, "{term}: deviation {e}");
        assert_eq!(y, flat(&p.matmul(&x, &w, &call(9, key(1), false)).unwrap()), "{term} replays");
    }
}

#[test]
fn prog_sigma_polynomial() {
    assert_eq!(prog_sigma(0.0), 0.2635);
    assert!((prog_sigma(1.0) - (-1.1731 + 1.9650 + 0.2635)).abs() < 1e-6);
    // Signed and not clamped: negative weights get a smaller, even negative, σ.
    assert!(prog_sigma(-1.0) < 0.0);
}
