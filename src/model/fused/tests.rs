//! The fused ops against the composed ones of [`crate::model::layers::composed`] (and candle's `gelu_erf`):
//! forward values and the gradients of every input, on random inputs of odd sizes and of large and small
//! magnitudes, with fully masked attention rows.

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::*;

/// Normal samples `offset + scale · N(0, 1)` of the given shape.
fn randn(rng: &mut StdRng, dims: &[usize], scale: f32, offset: f32) -> Tensor {
    let n = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|_| offset + scale * rng.sample::<f32, _>(StandardNormal)).collect();
    Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
}

/// `max |got − want| ≤ rtol · max |want|`, everything finite.
fn assert_close(what: &str, got: &Tensor, want: &Tensor, rtol: f32) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    assert!(got.iter().all(|v| v.is_finite()), "{what}: non-finite result");
    assert!(want.iter().all(|v| v.is_finite()), "{what}: non-finite reference");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (i, err) = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).enumerate().fold((0, 0f32), |a, b| if b.1 > a.1 { b } else { a });
    assert!(err <= rtol * scale, "{what}: max error {err:e} at {i} (got {}, want {}), scale {scale:e}", got[i], want[i]);
}

/// `f(inputs)` and the gradients of `Σ f(inputs) ⊙ dy` with respect to every input.
fn value_and_grads(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[&Tensor], dy: &Tensor) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&tensors).unwrap();
    let grads = (&y * dy).unwrap().sum_all().unwrap().backward().unwrap();
    let grads = vars.iter().map(|v| grads.get(v.as_tensor()).expect("every input gets a gradient").clone()).collect();
    (y, grads)
}

const RTOL: f32 = 1e-5;

#[test]
fn layer_norm_matches_composed() {
    let mut rng = StdRng::seed_from_u64(1);
    // (shape, eps, scale, offset): odd row lengths, one element per row, large offsets and magnitudes.
    let cases: [(&[usize], f64, f32, f32); 6] = [
        (&[2, 3, 37], 1e-12, 1.0, 0.0),
        (&[5, 384], 1e-5, 1.0, 0.3),
        (&[3, 7, 768], 1e-12, 1e3, 0.0),
        (&[4, 13], 1e-12, 1e-3, 0.0),
        (&[6, 129], 1e-5, 1.0, 100.0),
        (&[3, 1], 1e-5, 1.0, 0.0),
    ];
    for (dims, eps, scale, offset) in cases {
        let h = *dims.last().unwrap();
        let x = randn(&mut rng, dims, scale, offset);
        let (w, b) = (randn(&mut rng, &[h], 0.5, 1.0), randn(&mut rng, &[h], 0.5, 0.0));
        let dy = randn(&mut rng, dims, 1.0, 0.0);
        let fused = |t: &[Tensor]| t[0].apply_op3(&t[1], &t[2], LayerNorm { eps: eps as f32 });
        let composed = |t: &[Tensor]| composed::layer_norm(&t[0], &t[1], &t[2], eps);
        let (y, g) = value_and_grads(fused, &[&x, &w, &b], &dy);
        let (y_ref, g_ref) = value_and_grads(composed, &[&x, &w, &b], &dy);
        let case = format!("{dims:?} scale {scale} offset {offset}");
        assert_close(&format!("y {case}"), &y, &y_ref, RTOL);
        for (name, (g, g_ref)) in ["dx", "dweight", "dbias"].iter().zip(g.iter().zip(&g_ref)) {
            assert_close(&format!("{name} {case}"), g, g_ref, RTOL);
        }
    }
}

#[test]
fn softmax_matches_composed() {
    let mut rng = StdRng::seed_from_u64(2);
    let cases: [(&[usize], f32); 5] = [(&[4, 129], 1.0), (&[2, 3, 5, 17], 1.0), (&[7, 1], 1.0), (&[3, 64], 30.0), (&[5, 9], 1e-3)];
    for (dims, scale) in cases {
        let x = randn(&mut rng, dims, scale, 0.0);
        let dy = randn(&mut rng, dims, 1.0, 0.0);
        let (y, g) = value_and_grads(|t| t[0].apply_op1(Softmax), &[&x], &dy);
        let (y_ref, g_ref) = value_and_grads(|t| composed::softmax_last_dim(&t[0]), &[&x], &dy);
        assert_close(&format!("y {dims:?} × {scale}"), &y, &y_ref, RTOL);
        assert_close(&format!("dx {dims:?} × {scale}"), &g[0], &g_ref[0], RTOL);
    }
}

#[test]
fn attention_softmax_matches_composed_with_padding_and_fully_masked_rows() {
    let mut rng = StdRng::seed_from_u64(3);
    let (batch, heads, queries, keys) = (3, 2, 5, 11);
    let scores = randn(&mut rng, &[batch, heads, queries, keys], 3.0, 0.0);
    // Batch 0 attends to everything, batch 1 to its first 6 keys, batch 2 to nothing (the model's f32::MIN bias).
    let mask: Vec<f32> = (0..batch * keys)
        .map(|i| {
            let (b, k) = (i / keys, i % keys);
            if b == 2 || (b == 1 && k >= 6) { f32::MIN } else { 0.0 }
        })
        .collect();
    let mask = Tensor::from_vec(mask, (batch, 1, 1, keys), &Device::Cpu).unwrap();
    let dy = randn(&mut rng, scores.dims(), 1.0, 0.0);
    let (y, g) = value_and_grads(|t| t[0].apply_op2(&mask, MaskedSoftmax), &[&scores], &dy);
    let (y_ref, g_ref) = value_and_grads(|t| composed::softmax_last_dim(&t[0].broadcast_add(&mask)?), &[&scores], &dy);
    assert_close("y", &y, &y_ref, RTOL);
    assert_close("dscores", &g[0], &g_ref[0], RTOL);
    // Padding keys get exactly nothing; the fully masked rows stay finite (uniform, as in PyTorch).
    let probs: Vec<f32> = y.get(1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(probs.chunks(keys).all(|row| row[6..].iter().all(|&p| p == 0.0)));
    let probs: Vec<f32> = y.get(2).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(probs.iter().all(|&p| (p - 1.0 / keys as f32).abs() < 1e-6), "{probs:?}");

    // The public function takes the fused path and agrees too.
    assert_close("attention_softmax", &attention_softmax(&scores, &mask).unwrap(), &y_ref, RTOL);
}

#[test]
fn the_bias_add_is_candles_broadcast_add_with_its_gradients() {
    let mut rng = StdRng::seed_from_u64(5);
    // 2-D and 3-D, a width that is not a multiple of a warp or of the GPU's 256 threads, and a single row.
    let cases: [&[usize]; 4] = [&[4, 7], &[3, 5, 300], &[1, 1], &[2, 33, 64]];
    for dims in cases {
        let y = randn(&mut rng, dims, 2.0, 0.5);
        let bias = randn(&mut rng, &dims[dims.len() - 1..], 1.0, 0.0);
        let dy = randn(&mut rng, dims, 1.0, 0.0);
        let (out, g) = value_and_grads(|t| t[0].apply_op2(&t[1], AddBias), &[&y, &bias], &dy);
        let (out_ref, g_ref) = value_and_grads(|t| t[0].broadcast_add(&t[1]), &[&y, &bias], &dy);
        // The sum is the same f32 addition: exact. The bias gradient sums the rows in another order.
        assert_eq!(out.flatten_all().unwrap().to_vec1::<f32>().unwrap(), out_ref.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert_close(&format!("dy {dims:?}"), &g[0], &g_ref[0], 0.0);
        assert_close(&format!("dbias {dims:?}"), &g[1], &g_ref[1], RTOL);
    }
    // A bias of the wrong width is an error, not a silent broadcast.
    let y = randn(&mut rng, &[3, 4], 1.0, 0.0);
    let err = y.apply_op2(&randn(&mut rng, &[5], 1.0, 0.0), AddBias).unwrap_err().to_string();
    assert!(err.contains("do not match"), "{err}");
}

#[test]
fn head_split_and_merge_are_candles_transposes_with_their_gradients() {
    let mut rng = StdRng::seed_from_u64(6);
    for (batch, seq, heads, d, scale) in [(2, 5, 3, 4, 0.5f32), (1, 1, 1, 7, 1.0), (3, 17, 12, 64, 0.125)] {
        let x = randn(&mut rng, &[batch, seq, heads * d], 1.0, 0.0);
        let dy = randn(&mut rng, &[batch, heads, seq, d], 1.0, 0.0);
        let (y, g) = value_and_grads(|t| split_heads(&t[0], heads, scale), &[&x], &dy);
        let composed = |t: &[Tensor]| t[0].reshape((batch, seq, heads, d))?.transpose(1, 2)?.contiguous()? * scale as f64;
        let (y_ref, g_ref) = value_and_grads(composed, &[&x], &dy);
        // A copy times a scale: the same f32 products, exactly.
        assert_close(&format!("split {batch}×{seq}×{heads}×{d}"), &y, &y_ref, 0.0);
        assert_close(&format!("split grad {batch}×{seq}×{heads}×{d}"), &g[0], &g_ref[0], 0.0);

        let z = randn(&mut rng, &[batch, heads, seq, d], 1.0, 0.0);
        let dz = randn(&mut rng, &[batch, seq, heads * d], 1.0, 0.0);
        let (m, gm) = value_and_grads(|t| merge_heads(&t[0]), &[&z], &dz);
        let (m_ref, gm_ref) = value_and_grads(|t| t[0].transpose(1, 2)?.reshape((batch, seq, heads * d)), &[&z], &dz);
        assert_close(&format!("merge {batch}×{seq}×{heads}×{d}"), &m, &m_ref, 0.0);
        assert_close(&format!("merge grad {batch}×{seq}×{heads}×{d}"), &gm[0], &gm_ref[0], 0.0);
    }
    let err = split_heads(&randn(&mut rng, &[1, 2, 10], 1.0, 0.0), 3, 1.0).unwrap_err().to_string();
    assert!(err.contains("not a multiple of 3 heads"), "{err}");
}

#[test]
fn the_embedding_lookup_is_candles_index_select_with_its_gradient() {
    let mut rng = StdRng::seed_from_u64(8);
    let (vocab, dim) = (50, 9);
    let table = Var::from_tensor(&randn(&mut rng, &[vocab, dim], 1.0, 0.0)).unwrap();
    // Id 7 occurs 70 times (three segments of at most 32 positions); some ids never occur.
    let ids: Vec<u32> = (0..120u32).map(|i| if i % 12 < 7 { 7 } else { rng.random_range(0..vocab as u32) }).collect();
    let ids = Tensor::from_vec(ids, (4, 30), &Device::Cpu).unwrap();
    let dy = randn(&mut rng, &[4, 30, dim], 1.0, 0.0);
    let lookup = |f: &dyn Fn(&Tensor) -> Result<Tensor>| {
        let y = f(table.as_tensor()).unwrap();
        let grads = (&y * &dy).unwrap().sum_all().unwrap().backward().unwrap();
        (y, grads.get(table.as_tensor()).expect("the table gets a gradient").clone())
    };
    let (y, g) = lookup(&|t| embedding(t, &ids));
    let (y_ref, g_ref) = lookup(&|t| t.index_select(&ids.flatten_all()?, 0)?.reshape((4, 30, dim)));
    assert_close("lookup", &y, &y_ref, 0.0);
    // The same sums in another order (segments of 32): equal to f32 rounding.
    assert_close("lookup gradient", &g, &g_ref, 1e-5);

    let s = embedding::segments(&[5, 2, 5, 5]);
    assert_eq!((s.positions, s.segment_starts, s.ids, s.id_segments), (vec![1, 0, 2, 3], vec![0, 1, 4], vec![2, 5], vec![0, 1, 2]));
    let heavy = embedding::segments(&[0; 70]);
    assert_eq!((heavy.segment_starts, heavy.id_segments), (vec![0, 32, 64, 70], vec![0, 3]));

    let err = embedding(table.as_tensor(), &Tensor::new(&[3u32, 50], &Device::Cpu).unwrap()).unwrap_err().to_string();
    assert!(err.contains("id 50 is outside the table of 50 rows"), "{err}");
}

#[test]
fn softmax_of_an_all_negative_infinity_row_is_zero_not_nan() {
    let x = Tensor::new(&[[f32::NEG_INFINITY; 5], [0.0, 1.0, f32::NEG_INFINITY, 2.0, 3.0]], &Device::Cpu).unwrap();
    let y: Vec<Vec<f32>> = softmax_last_dim(&x).unwrap().to_vec2().unwrap();
    assert_eq!(y[0], [0.0; 5]);
    assert_eq!(y[1][2], 0.0);
    assert!((y[1].iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn gelu_matches_candle() {
    let mut rng = StdRng::seed_from_u64(4);
    let cases: [(&[usize], f32); 4] = [(&[3, 7, 1531], 3.0), (&[2, 5], 1.0), (&[1001], 1e3), (&[17, 3], 1e-3)];
    for (dims, scale) in cases {
        let x = randn(&mut rng, dims, scale, 0.0);
        let dy = randn(&mut rng, dims, 1.0, 0.0);
        let (y, g) = value_and_grads(|t| t[0].apply_op1(Gelu), &[&x], &dy);
        let (y_ref, g_ref) = value_and_grads(|t| t[0].gelu_erf(), &[&x], &dy);
        assert_close(&format!("y {dims:?} × {scale}"), &y, &y_ref, RTOL);
        assert_close(&format!("dx {dims:?} × {scale}"), &g[0], &g_ref[0], RTOL);
    }
}

/// Elementwise against f64, including the negative tail down to −6, where `1 + erf` in f32 loses most digits
/// (the f64 reference itself, computed as `1 + erf`, would lose them further out).
#[test]
fn gelu_and_its_gradient_are_accurate_elementwise() {
    let xs: Vec<f32> = (-600..=1200).map(|i| i as f32 / 100.0).collect();
    let x64: Vec<f64> = xs.iter().map(|&x| x as f64).collect();
    let reference = Tensor::new(x64.as_slice(), &Device::Cpu).unwrap();
    let gelu64: Vec<f64> = reference.gelu_erf().unwrap().to_vec1().unwrap();
    for ((&x, &x64), &want) in xs.iter().zip(&x64).zip(&gelu64) {
        let got = gelu(x) as f64;
        assert!((got - want).abs() <= 1e-5 * want.abs() + 1e-37, "gelu({x}) = {got:e}, want {want:e}");
        // gelu'(x) = Φ(x) + x·φ(x), with Φ(x) = gelu(x) / x. The two terms cancel near x = −0.75, so the
        // error is measured against their size.
        let phi = (-0.5 * x64 * x64).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let cdf = if x64 == 0.0 { 0.5 } else { want / x64 };
        let want_grad = cdf + x64 * phi;
        let got_grad = gelu_grad(x) as f64;
        let tol = 1e-5 * want_grad.abs() + 1e-6 * (cdf + (x64 * phi).abs());
        assert!((got_grad - want_grad).abs() <= tol, "gelu'({x}) = {got_grad:e}, want {want_grad:e}");
    }
}

#[test]
fn exp_is_accurate_over_the_f32_range() {
    for i in -8700..8800 {
        let x = i as f32 / 100.0 + 0.003;
        let (got, want) = (exp(x) as f64, (x as f64).exp());
        assert!((got - want).abs() <= 3e-7 * want, "exp({x}) = {got:e}, want {want:e}");
    }
    assert_eq!(exp(-100.0), 0.0);
    assert_eq!(exp(f32::MIN), 0.0);
    assert!(exp(f32::NAN).is_nan());
}

#[test]
fn non_contiguous_inputs_and_other_dtypes() {
    let mut rng = StdRng::seed_from_u64(5);
    let x = randn(&mut rng, &[6, 10], 1.0, 0.0).t().unwrap();
    let (w, b) = (randn(&mut rng, &[6], 1.0, 1.0), randn(&mut rng, &[6], 1.0, 0.0));
    assert_close(
        "layer_norm of a transpose",
        &layer_norm(&x, &w, &b, 1e-5).unwrap(),
        &composed::layer_norm(&x, &w, &b, 1e-5).unwrap(),
        RTOL,
    );
    assert_close("softmax of a transpose", &softmax_last_dim(&x).unwrap(), &composed::softmax_last_dim(&x).unwrap(), RTOL);
    assert_close("gelu of a transpose", &gelu_erf(&x).unwrap(), &x.gelu_erf().unwrap(), RTOL);
    // f64 takes the composed path.
    let (x64, w64, b64) = (x.to_dtype(DType::F64).unwrap(), w.to_dtype(DType::F64).unwrap(), b.to_dtype(DType::F64).unwrap());
    let y64 = layer_norm(&x64, &w64, &b64, 1e-5).unwrap();
    assert_eq!(y64.dtype(), DType::F64);
    assert_close("f64 layer_norm", &y64.to_dtype(DType::F32).unwrap(), &composed::layer_norm(&x, &w, &b, 1e-5).unwrap(), RTOL);
}

/// Dropout masks: each element is 0 with probability p (within 5 standard errors over 400 000 draws) or
/// 1/(1−p); a seed gives one mask, another seed another.
#[test]
fn dropout_masks_drop_p_and_scale_the_rest() {
    let (n, p) = (400_000usize, 0.1f32);
    let shape = candle_core::Shape::from(n);
    let mask = super::dropout_mask(&shape, p, 5, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap();
    let zeros = mask.iter().filter(|&&v| v == 0.0).count() as f64;
    let se = (n as f64 * f64::from(p) * (1.0 - f64::from(p))).sqrt();
    assert!((zeros - n as f64 * f64::from(p)).abs() < 5.0 * se, "{zeros} zeros");
    assert!(mask.iter().all(|&v| v == 0.0 || v == 1.0 / (1.0 - p)));
    assert_eq!(mask, super::dropout_mask(&shape, p, 5, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap());
    assert_ne!(mask, super::dropout_mask(&shape, p, 6, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap());
    assert!(super::dropout_mask(&shape, 1.0, 5, &Device::Cpu).is_err());
}
