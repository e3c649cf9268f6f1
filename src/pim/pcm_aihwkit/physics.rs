//! The device physics of AIHWKIT's statistical PCM model (PIM_MODELS.md §5a): programming noise, drift
//! exponents, conductance drift and 1/f read noise, per device, in µS. Pure functions of a conductance and
//! standard-normal draws, so the statistics tests can sample them directly.

/// Reference time of the drift law (s).
const T0: f64 = 20.0;
/// Duration of one read pulse (s), the low end of the 1/f noise band.
const T_READ: f64 = 250e-9;
/// Below this relative conductance the drift statistics use the floor (AIHWKIT clamps `G/g_max` at 1e-7).
const G_REL_FLOOR: f32 = 1e-7;

/// The knobs of the device model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Physics {
    /// Maximum conductance (µS).
    pub g_max: f32,
    pub prog_noise_scale: f32,
    pub read_noise_scale: f32,
    pub drift_scale: f32,
    /// Test hook: every device drifts with this exponent (a state-independent drift GDC must cancel).
    pub fixed_nu: Option<f32>,
}

impl Physics {
    /// Standard deviation of the programming noise at target conductance `g` (µS): AIHWKIT's fitted
    /// polynomial in `g/g_max`, rescaled to `g_max`.
    pub fn prog_sigma(&self, g: f32) -> f32 {
        let u = g / self.g_max;
        (0.26348 + 1.9650 * u - 1.1731 * u * u) * self.g_max / 25.0
    }

    /// Programmed conductance: the target plus programming noise, clamped at 0 (a device cannot go negative).
    pub fn program(&self, g: f32, xi: f32) -> f32 {
        (g + self.prog_noise_scale * self.prog_sigma(g) * xi).max(0.0)
    }

    /// Mean and standard deviation of the drift exponent for target conductance `g`.
    pub fn nu_params(&self, g: f32) -> (f32, f32) {
        let ln_g = (g / self.g_max).max(G_REL_FLOOR).ln();
        let mu = (-0.0155 * ln_g + 0.0244).clamp(0.049, 0.1);
        let sigma = (-0.0125 * ln_g - 0.0059).clamp(0.008, 0.045);
        (mu, sigma)
    }

    /// A device's drift exponent (drawn once per chip), already multiplied by `drift-scale`.
    pub fn sample_nu(&self, g: f32, xi: f32) -> f32 {
        if let Some(nu) = self.fixed_nu {
            return nu * self.drift_scale;
        }
        let (mu, sigma) = self.nu_params(g);
        (mu + sigma * xi).abs().max(0.0) * self.drift_scale
    }

    /// Per-call constants of a drift time `t` (seconds since programming).
    pub fn at(&self, t: f64) -> TimeFactors {
        let t = if t.is_finite() { t.max(0.0) } else { 0.0 };
        // G_d = G_p·((t+t0)/t0)^(−ν) = G_p·exp(−ν·ln((t+t0)/t0)); no drift at t = 0.
        let log_drift = if t > 0.0 { ((t + T0) / T0).ln() as f32 } else { 0.0 };
        // The 1/f noise integrated from one read pulse to the time since programming.
        let read_band = (((t + T0 + T_READ) / (2.0 * T_READ)).ln().max(0.0)).sqrt() as f32;
        TimeFactors { log_drift, read_sigma_factor: read_band * self.read_noise_scale }
    }

    /// Relative read-noise amplitude `Q_s` of a device programmed to `g_p`.
    pub fn q_s(&self, g_p: f32) -> f32 {
        let rel = (g_p / self.g_max).max(0.0);
        (0.0088 / rel.powf(0.65).max(1e-3)).min(0.2)
    }

    /// The conductance a read at time `t` sees: drift, then read noise with draw `xi`.
    pub fn read(&self, g_p: f32, nu: f32, tf: &TimeFactors, xi: f32) -> f32 {
        let g_d = if tf.log_drift > 0.0 { g_p * (-nu * tf.log_drift).exp() } else { g_p };
        if tf.read_sigma_factor == 0.0 {
            return g_d;
        }
        let sigma = self.q_s(g_p) * tf.read_sigma_factor;
        (g_d + g_d.abs() * sigma * xi).max(0.0)
    }
}

/// What a drift time contributes to every device's read, computed once per call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeFactors {
    /// `ln((t + t0)/t0)`, 0 at t = 0.
    pub log_drift: f32,
    /// `sqrt(ln((t + t0 + t_read)/(2·t_read)))` times `read-noise-scale`.
    pub read_sigma_factor: f32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pim::NoiseKey;

    const N: usize = 200_000;

    fn physics() -> Physics {
        Physics { g_max: 25.0, prog_noise_scale: 1.0, read_noise_scale: 1.0, drift_scale: 1.0, fixed_nu: None }
    }

    fn mean_std(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        (mean, (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt())
    }

    fn draws(stream: u64) -> Vec<f32> {
        NoiseKey::new(7, "physics-test", 0, 0).normals(stream, N)
    }

    #[test]
    fn programming_noise_polynomial_and_samples() {
        let p = physics();
        // The references are given to 3 decimals: allow half a unit of the last digit.
        for (g, reference) in [(2.5f32, 0.448f64), (12.5, 0.953), (25.0, 1.055)] {
            let sigma = p.prog_sigma(g) as f64;
            assert!((sigma - reference).abs() <= 0.0005 + 1e-6, "σ_p({g}) = {sigma}, reference {reference}");
            // Empirical std of G_p − G over n = 2·10⁵ draws; SE of a std ≈ σ/sqrt(2n) (0.16 % of σ): allow
            // 5 SE. The clamp at 0 is > 5σ away for these targets, so it does not bias the std.
            let xi = draws(1);
            let dev: Vec<f64> = xi.iter().map(|&x| (p.program(g, x) - g) as f64).collect();
            let (_, std) = mean_std(&dev);
            eprintln!("σ_p at {g} µS: polynomial {sigma:.4}, sampled {std:.4} (reference {reference})");
            let se = sigma / (2.0 * N as f64).sqrt();
            assert!((std - sigma).abs() < 5.0 * se, "sampled σ_p({g}) = {std}, polynomial {sigma}, SE {se}");
        }
        // The off device of a pair (target 0) is half-normal after the clamp.
        assert_eq!(p.program(0.0, -1.0), 0.0);
        assert!((p.program(0.0, 1.0) - 0.26348).abs() < 1e-6);
    }

    #[test]
    fn drift_exponent_statistics() {
        let p = physics();
        let xi = draws(2);
        for (g, ref_mean, ref_std) in [(12.5f32, 0.049f64, 0.008f64), (2.5, 0.060, 0.023)] {
            let nu: Vec<f64> = xi.iter().map(|&x| p.sample_nu(g, x) as f64).collect();
            let (mean, std) = mean_std(&nu);
            // SE of the mean σ/sqrt(n), of the std σ/sqrt(2n); 5 SE plus the references' rounding (0.0005).
            let n = N as f64;
            let tol_mean = 5.0 * ref_std / n.sqrt() + 0.0005;
            let tol_std = 5.0 * ref_std / (2.0 * n).sqrt() + 0.0005;
            assert!((mean - ref_mean).abs() < tol_mean, "ν mean at {g} µS: {mean} vs {ref_mean} (tol {tol_mean})");
            assert!((std - ref_std).abs() < tol_std, "ν std at {g} µS: {std} vs {ref_std} (tol {tol_std})");
            eprintln!("ν at {g} µS: mean {mean:.5} std {std:.5} (reference {ref_mean}/{ref_std})");
        }
    }

    #[test]
    fn mean_drift_at_full_conductance() {
        let p = Physics { read_noise_scale: 0.0, ..physics() };
        let xi = draws(3);
        let nu: Vec<f32> = xi.iter().map(|&x| p.sample_nu(25.0, x)).collect();
        let hour = 3600.0;
        let day = 24.0 * hour;
        let year = 365.0 * day;
        for (t, reference) in [(hour, 0.776), (day, 0.665), (7.0 * day, 0.605), (year, 0.500), (10.0 * year, 0.448)] {
            let tf = p.at(t);
            let ratio: Vec<f64> = nu.iter().map(|&v| (p.read(25.0, v, &tf, 0.0) / 25.0) as f64).collect();
            let (mean, std) = mean_std(&ratio);
            // 5 SE of the sample mean plus the references' rounding to 3 decimals.
            let tol = 5.0 * std / (N as f64).sqrt() + 0.0005;
            assert!((mean - reference).abs() < tol, "G({t} s)/G0 = {mean}, reference {reference}, tol {tol}");
            eprintln!("G(t)/G0 at t = {t} s: {mean:.4} (reference {reference})");
        }
        // No drift and no read noise at t = 0.
        assert_eq!(p.read(25.0, 0.1, &p.at(0.0), 1.0), 25.0);
    }

    #[test]
    fn read_noise_is_finite_at_the_edges() {
        let p = physics();
        for t in [0.0, 1.0, 3.15e8, f64::INFINITY, f64::NAN, -5.0] {
            let tf = p.at(t);
            for g in [0.0f32, 1e-30, 1e-3, 25.0, 40.0] {
                for xi in [-8.0f32, 0.0, 8.0] {
                    let v = p.read(g, 0.1, &tf, xi);
                    assert!(v.is_finite() && v >= 0.0, "read({g}, t={t}, ξ={xi}) = {v}");
                }
            }
        }
        assert!((p.q_s(0.0) - 0.2).abs() < 1e-7, "Q_s saturates at 0.2 for an off device");
    }
}
