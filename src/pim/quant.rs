//! Scalar and vector quantizers of PIM_MODELS.md §3–§5b, as small pure functions on f32.
//!
//! A quantizer is split in two: a [`Format`] turns the max |v| of the values that share one scale into a
//! [`Grid`], and [`Grid::apply`] maps each value onto it. This lets the tile code share one scale over a
//! row, a block of rows or a whole tile while the per-element work stays one fused pass. Rounding is
//! always half to even (`round_ties_even`); every division is guarded so that zeros, subnormals and huge
//! values give finite results.

/// Exact `ceil(log2(x))` from the float bits, for finite `x > 0` (`None` for zero, negative or NaN;
/// `Some(128)` for +∞). Unlike `ln(x)/ln(2)` it is exact at powers of two and for subnormals.
pub fn ceil_log2(x: f32) -> Option<i32> {
    if x.is_nan() || x <= 0.0 {
        return None;
    }
    if x.is_infinite() {
        return Some(128);
    }
    let bits = x.to_bits();
    let exp_field = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x7f_ffff;
    if exp_field == 0 {
        // Subnormal: x = mantissa · 2^-149, and ceil(log2(m)) of an integer m ≥ 1 is the bit length of m − 1.
        return Some(-149 + (32 - (mantissa - 1).leading_zeros()) as i32);
    }
    Some(exp_field - 127 + i32::from(mantissa != 0))
}

/// 2^e for a normal exponent e ∈ [-126, 127] (exact, built from the bits).
fn pow2(e: i32) -> f32 {
    debug_assert!((-126..=127).contains(&e), "2^{e} is not a normal f32");
    f32::from_bits(((e.clamp(-126, 127) + 127) as u32) << 23)
}

/// How values that share one scale are quantized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    /// No quantization.
    Exact,
    /// Block floating point e{E}m{M} with one shared exponent (§3).
    Bfp { exponent_bits: u32, mantissa_bits: u32 },
    /// Symmetric integer, `s = 2^(b-1)/max|v|`, `q = clamp(round(v·s), -2^(b-1), 2^(b-1)-1)/s` (§3 int, §4 DAC).
    Int { bits: u32 },
    /// NewComputeBench's DAC (§5b step 1): `x_max = max|x| + 1e-9`, values NORMALISED to
    /// `clamp(round(x·2^(b-1)/x_max), ..)/2^(b-1)`. `bits: None` = an ideal converter (`x/x_max`).
    NcbDac { bits: Option<u32> },
}

impl From<crate::sweep::params::NumberFormat> for Format {
    fn from(f: crate::sweep::params::NumberFormat) -> Format {
        use crate::sweep::params::NumberFormat;
        match f {
            NumberFormat::Block { exponent_bits, mantissa_bits } => Format::Bfp { exponent_bits, mantissa_bits },
            NumberFormat::Int { bits } => Format::Int { bits },
        }
    }
}

/// A quantization grid: one shared scale, ready to apply to each value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Grid {
    Exact,
    /// `clamp(round(v·up), lo, hi)·down` with `up`, `down` exact powers of two.
    Pow2 {
        up: f32,
        down: f32,
        lo: f32,
        hi: f32,
    },
    /// `clamp(round(v·s), lo, hi)/s`.
    Sym {
        s: f32,
        lo: f32,
        hi: f32,
    },
    /// As `Sym` in f64, for a max so small (subnormal) that `s` overflows f32.
    Sym64 {
        s: f64,
        lo: f64,
        hi: f64,
    },
    /// `clamp(round(v·p/norm), lo, hi)/p` (normalised output).
    Ncb {
        p: f32,
        norm: f32,
        lo: f32,
        hi: f32,
    },
    /// `v/norm` (ideal normalising converter).
    Norm {
        norm: f32,
    },
}

impl Format {
    /// The grid of a group of values whose largest magnitude is `max_abs` (finite, ≥ 0).
    pub fn grid(self, max_abs: f32) -> Grid {
        match self {
            Format::Exact => Grid::Exact,
            Format::Bfp { exponent_bits, mantissa_bits } => {
                let emax = bfp_exponent(max_abs, exponent_bits);
                let m = mantissa_bits as i32;
                let lim = (1u32 << mantissa_bits) as f32;
                Grid::Pow2 { up: pow2(m - emax), down: pow2(emax - m), lo: -lim, hi: lim - 1.0 }
            }
            Format::Int { bits } => sym_grid(max_abs, bits),
            Format::NcbDac { bits } => {
                let norm = max_abs + 1e-9;
                match bits {
                    Some(b) => {
                        let p = (1u32 << (b - 1)) as f32;
                        Grid::Ncb { p, norm, lo: -p, hi: p - 1.0 }
                    }
                    None => Grid::Norm { norm },
                }
            }
        }
    }

    /// The factor that turns this format's output back into input units (`x_max` for the NCB DAC, else 1).
    pub fn norm(self, max_abs: f32) -> f32 {
        match self {
            Format::NcbDac { .. } => max_abs + 1e-9,
            _ => 1.0,
        }
    }
}

/// The shared BFP exponent `clamp(ceil(log2(max + 1e-8)), -2^(E-1), 2^(E-1)-1)`, the sum taken in f32.
/// Never below −27 (the 1e-8), so the powers of two of [`Format::grid`] stay normal.
pub fn bfp_exponent(max_abs: f32, exponent_bits: u32) -> i32 {
    let half = 1i32 << (exponent_bits - 1);
    let e = ceil_log2(max_abs + 1e-8).unwrap_or(0);
    e.clamp(-half, half - 1)
}

/// The symmetric `b`-bit grid for values with max |v| = `max_abs`.
pub fn sym_grid(max_abs: f32, bits: u32) -> Grid {
    if max_abs <= 0.0 || !max_abs.is_finite() {
        // All values are zero (or the input is not finite, which callers never pass): nothing to quantize.
        return Grid::Exact;
    }
    let half = (1u32 << (bits - 1)) as f32;
    let s = half / max_abs;
    if s.is_finite() {
        Grid::Sym { s, lo: -half, hi: half - 1.0 }
    } else {
        Grid::Sym64 { s: half as f64 / max_abs as f64, lo: -(half as f64), hi: half as f64 - 1.0 }
    }
}

impl Grid {
    #[inline]
    pub fn apply(&self, v: f32) -> f32 {
        match *self {
            Grid::Exact => v,
            Grid::Pow2 { up, down, lo, hi } => (v * up).round_ties_even().clamp(lo, hi) * down,
            Grid::Sym { s, lo, hi } => (v * s).round_ties_even().clamp(lo, hi) / s,
            Grid::Sym64 { s, lo, hi } => (((v as f64) * s).round_ties_even().clamp(lo, hi) / s) as f32,
            Grid::Ncb { p, norm, lo, hi } => ((v * p) / norm).round_ties_even().clamp(lo, hi) / p,
            Grid::Norm { norm } => v / norm,
        }
    }
}

/// Largest |v| of a slice (0 for an empty one).
#[inline]
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, &x| m.max(x.abs()))
}

/// Quantizes one vector in place with one shared scale (e.g. BFP with one exponent). Returns the norm
/// factor of [`Format::norm`].
pub fn quantize_vector(v: &mut [f32], format: Format) -> f32 {
    let m = max_abs(v);
    let grid = format.grid(m);
    v.iter_mut().for_each(|x| *x = grid.apply(*x));
    format.norm(m)
}

/// NewComputeBench's asymmetric ADC over one output row of a tile (§5b step 5), in place: clamp to
/// ±`clamp`, `b = (max + min)/2` (each + 1e-9), `s = 2^(bits-1)/max(r − b)`,
/// `q = clamp(round((r − b)·s), -2^(bits-1), 2^(bits-1)-1)/s + b`. `include_zero` adds a 0 to the range
/// (the zero-padded outputs of an edge tile). A zero range (constant row), where the reference yields NaN,
/// is treated as exact.
pub fn ncb_adc(r: &mut [f32], bits: u32, clamp: f32, include_zero: bool) {
    let (mut lo, mut hi) = if include_zero { (0.0f32, 0.0f32) } else { (f32::INFINITY, f32::NEG_INFINITY) };
    for x in r.iter_mut() {
        *x = x.clamp(-clamp, clamp);
        lo = lo.min(*x);
        hi = hi.max(*x);
    }
    if r.is_empty() {
        return;
    }
    let b = ((hi + 1e-9) + (lo + 1e-9)) / 2.0;
    let range = hi - b;
    let half = (1u32 << (bits - 1)) as f32;
    let s = half / range;
    if range.is_nan() || range <= 0.0 || !s.is_finite() {
        return;
    }
    for x in r.iter_mut() {
        *x = ((*x - b) * s).round_ties_even().clamp(-half, half - 1.0) / s + b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bfp(v: &[f32], e: u32, m: u32) -> Vec<f32> {
        let mut v = v.to_vec();
        quantize_vector(&mut v, Format::Bfp { exponent_bits: e, mantissa_bits: m });
        v
    }

    #[test]
    fn ceil_log2_is_exact() {
        for e in -126..=127 {
            let x = pow2(e);
            assert_eq!(ceil_log2(x), Some(e), "2^{e}");
            assert_eq!(ceil_log2(f32::from_bits(x.to_bits() + 1)), Some(e + 1), "just above 2^{e}");
            if e > -126 {
                assert_eq!(ceil_log2(f32::from_bits(x.to_bits() - 1)), Some(e), "just below 2^{e}");
            }
        }
        assert_eq!(ceil_log2(f32::from_bits(1)), Some(-149), "smallest subnormal");
        assert_eq!(ceil_log2(f32::from_bits(2)), Some(-148));
        assert_eq!(ceil_log2(f32::from_bits(3)), Some(-147));
        assert_eq!(ceil_log2(f32::from_bits(0x40_0000)), Some(-127), "2^-127");
        assert_eq!(ceil_log2(f32::from_bits(0x40_0001)), Some(-126));
        assert_eq!(ceil_log2(f32::from_bits(0x7f_ffff)), Some(-126), "largest subnormal");
        assert_eq!(ceil_log2(3.0), Some(2));
        assert_eq!(ceil_log2(0.3), Some(-1));
        assert_eq!(ceil_log2(f32::MAX), Some(128));
        assert_eq!(ceil_log2(0.0), None);
        assert_eq!(ceil_log2(-1.0), None);
        assert_eq!(ceil_log2(f32::NAN), None);
    }

    #[test]
    fn bfp_spec_vectors() {
        let v = [1.0, 0.3, 0.07, 0.05, -0.9, 0.6, 1e-3, 0.0];
        assert_eq!(bfp(&v, 4, 3), [0.875, 0.25, 0.125, 0.0, -0.875, 0.625, 0.0, 0.0]);
        assert_eq!(bfp(&v, 5, 2), [0.75, 0.25, 0.0, 0.0, -1.0, 0.5, 0.0, 0.0]);
        assert_eq!(bfp(&[1.0, 0.3, 0.07, 0.05, -0.9, 200.0, 1e-3, 0.0], 4, 3), [0.0, 0.0, 0.0, 0.0, 0.0, 112.0, 0.0, 0.0]);
        assert_eq!(bfp(&[1e-4, -2e-4, 5e-5], 4, 3), [0.0, 0.0, 0.0]);
    }

    #[test]
    fn bfp_edge_cases_are_finite() {
        assert_eq!(bfp(&[0.0; 5], 4, 3), [0.0; 5]);
        let sub = f32::from_bits(5);
        assert_eq!(bfp(&[sub, -sub], 8, 23), [0.0, 0.0], "subnormals flush under the 1e-8 floor");
        let big = bfp(&[1e30, -3e38, 1.0], 8, 7);
        assert!(big.iter().all(|x| x.is_finite()), "{big:?}");
        // e8m23 keeps 23 bits below the shared exponent (Emax = 3 here): error ≤ half a step of 2^(3-23).
        let v = [0.123_456_79f32, -7.5, 3.0e-3, 1.0];
        let q = bfp(&v, 8, 23);
        assert!(q.iter().zip(&v).all(|(a, b)| (a - b).abs() <= 2f32.powi(-21)), "{q:?}");
        assert_eq!(bfp(&[0.75, -0.5, 0.125, 0.875], 8, 23), [0.75, -0.5, 0.125, 0.875]);
    }

    #[test]
    fn rounds_half_to_even() {
        // max 12.5, 8 bits: s = 128/12.5 = 10.24; use scale 1 instead through a grid built directly.
        let g = Grid::Sym { s: 1.0, lo: -128.0, hi: 127.0 };
        let got: Vec<f32> = [0.5, 1.5, 2.5, -0.5, 12.5, -2.5].iter().map(|&v| g.apply(v)).collect();
        assert_eq!(got, [0.0, 2.0, 2.0, -0.0, 12.0, -2.0]);
        // Through a BFP grid: 2^(M-Emax) = 1 when Emax = M.
        assert_eq!(bfp(&[4.5, 2.5, 0.5, -1.5, 12.5], 4, 4), [4.0, 2.0, 0.0, -2.0, 12.0]);
    }

    #[test]
    fn int_quantize() {
        let mut v = vec![1.0, -0.5, 0.26, 0.0];
        quantize_vector(&mut v, Format::Int { bits: 4 });
        // s = 8: 1.0 → 8 clamps to 7 → 0.875; -0.5 → -4 → -0.5; 0.26 → 2.08 → 2 → 0.25.
        assert_eq!(v, [0.875, -0.5, 0.25, 0.0]);
        let mut z = vec![0.0; 4];
        quantize_vector(&mut z, Format::Int { bits: 8 });
        assert_eq!(z, [0.0; 4]);
        let sub = f32::from_bits(3);
        let mut s = vec![sub, -sub, 0.0];
        quantize_vector(&mut s, Format::Int { bits: 16 });
        assert!(s.iter().all(|x| x.is_finite()), "{s:?}");
        assert_eq!(s[1], -sub);
    }

    #[test]
    fn ncb_dac() {
        let mut v = vec![1.0, -1.0, 0.5, 0.0];
        let norm = quantize_vector(&mut v, Format::NcbDac { bits: Some(8) });
        assert_eq!(norm, 1.0 + 1e-9);
        assert_eq!(v, [127.0 / 128.0, -1.0, 0.5, 0.0]);
        let mut z = vec![0.0; 3];
        quantize_vector(&mut z, Format::NcbDac { bits: Some(8) });
        assert_eq!(z, [0.0; 3]);
    }

    #[test]
    fn ncb_adc_spec_vector() {
        let mut r: Vec<f32> = (0..8).map(|i| -1.0 + 4.0 * i as f32 / 7.0).collect();
        ncb_adc(&mut r, 8, 50.0, false);
        assert_eq!(r, [-1.0, -0.421875, 0.140625, 0.71875, 1.28125, 1.859375, 2.421875, 2.984375]);
    }

    #[test]
    fn ncb_adc_never_nan() {
        for row in [vec![3.0f32; 4], vec![0.0; 4], vec![f32::from_bits(7); 3], vec![1e30, -1e30], vec![2.0]] {
            let mut r = row.clone();
            ncb_adc(&mut r, 8, 50.0, false);
            assert!(r.iter().all(|x| x.is_finite()), "{row:?} → {r:?}");
        }
        let mut c = vec![3.0f32; 4];
        ncb_adc(&mut c, 8, 50.0, false);
        assert_eq!(c, [3.0; 4], "a constant row is exact");
        let mut big = vec![1e30f32, -1e30];
        ncb_adc(&mut big, 8, 50.0, false);
        assert!((big[0] - 127.0 / 2.56).abs() < 1e-4 && big[1] == -50.0, "clamped to ±10·g_max, then quantized: {big:?}");
    }
}
