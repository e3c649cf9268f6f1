//! Vectorisable building blocks of the fused ops: reductions over slices with eight independent
//! accumulators (so they vectorise without fast-math), and polynomial `exp` / `erfc` (a few ulp) with the
//! normal CDF and GELU built on them; libm's versions would keep the loops scalar.

const LANES: usize = 8;

#[inline(always)]
pub(super) fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] += c[k];
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// `Σ (v − c)²`.
#[inline(always)]
pub(super) fn sum_sq_dev(v: &[f32], c: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for ch in chunks {
        for k in 0..LANES {
            let d = ch[k] - c;
            acc[k] += d * d;
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&x| (x - c) * (x - c)).sum::<f32>()
}

#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
}

#[inline(always)]
pub(super) fn max(v: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] = if c[k] > acc[k] { c[k] } else { acc[k] };
        }
    }
    acc.iter().chain(rest).fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// `eˣ` in f32 (Cephes `expf`: range reduction by ln 2 and a degree-6 polynomial, ~1 ulp), written
/// without calls or branches so that loops over it vectorise; `libm::expf` does not. Below −87 the
/// result is 0 (where f32 becomes subnormal), above 88 it saturates near `f32::MAX`; NaN stays NaN.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // Adding 1.5·2²³ rounds to an integer without `round` (a libcall before SSE4.1); the low mantissa bits
    // then hold that integer.
    const ROUNDER: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.0, 88.0);
    let shifted = xc * LOG2E + ROUNDER;
    let n = shifted - ROUNDER;
    let n_int = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i32;
    let r = xc - n * LN2_HI;
    let r = r - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes writes 5.0000001e-1, which is 0.5 in f32
    let e_r = p * r * r + r + 1.0;
    // Wrapping: an overflow check (on in dev builds) would keep the loop from vectorising; n is in [−126, 127].
    let scale = f32::from_bits((n_int.wrapping_add(127) as u32) << 23);
    if x < -87.0 { 0.0 } else { e_r * scale }
}

/// `erfc(|z|)` for the magnitude `a = |z|` (Numerical Recipes' `erfcc`: relative error below 1.2e-7
/// over the whole range, so the tail of GELU keeps its precision; `1 + erf` would cancel).
#[inline(always)]
pub(super) fn erfc_abs(a: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * a);
    let mut p = 0.170_872_77;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t - 1.265_512_2;
    t * exp(p - a * a)
}

/// `Φ(x) = erfc(−x/√2) / 2`, the standard normal CDF.
#[inline(always)]
pub(super) fn normal_cdf(x: f32) -> f32 {
    let z = x * -std::f32::consts::FRAC_1_SQRT_2;
    let half_tail = 0.5 * erfc_abs(z.abs());
    if z >= 0.0 { half_tail } else { 1.0 - half_tail }
}

#[inline(always)]
pub(super) fn gelu(x: f32) -> f32 {
    x * normal_cdf(x)
}

/// `d gelu / dx = Φ(x) + x · φ(x)`.
#[inline(always)]
pub(super) fn gelu_grad(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    normal_cdf(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x)
}
