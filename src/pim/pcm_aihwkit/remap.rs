//! AIHWKIT's post-update step for analog tiles (PIM_MODELS.md §6): after every optimizer step each tile's
//! stored weights are clipped at `clip-sigma` standard deviations of that tile (LAYER_GAUSSIAN) and re-mapped
//! so that every row's max |w| is 1 again (CHANNELWISE_SYMMETRIC), the row's scale moving into its digital
//! per-row output scale. It runs on frozen tiles too.
//!
//! pimsweep keeps a layer's effective weights `W = scale ⊙ Wn` (what the model and the checkpoint hold) and
//! normalises per row when a chip is programmed. Re-mapping leaves `W` unchanged, so the step is, on `W`:
//! `Wn = W / rowmax|W|`, clip `Wn` at `±clip·σ(Wn of the tile)`, `W ← rowmax · Wn`. Repeated, it converges to
//! tiles whose normalised weights have std 1/clip and row max 1 (a fixed point: nothing is clipped any more).

use super::chip::Tiling;

/// One post-update step on a layer's effective weights `w` (`[n, k]` row-major), tiles of `core_size`
/// (0: the whole layer). Returns how many weights were clipped.
pub fn clip_and_remap(w: &mut [f32], n: usize, k: usize, core_size: usize, clip_sigma: f32) -> usize {
    let tiling = Tiling::new(n, k, core_size);
    let mut clipped = 0;
    for tile in &tiling.tiles {
        let rows = tile.n0..tile.n0 + tile.nt;
        // Row `r` of the tile, as a range of `w` (no copies: this runs after every optimizer step).
        let span = |r: usize| r * k + tile.k0..r * k + tile.k0 + tile.kt;
        let scales: Vec<f32> = rows.clone().map(|r| w[span(r)].iter().fold(0.0f32, |m, v| m.max(v.abs()))).collect();
        // σ of the tile's normalised weights (all-zero rows are left out: they hold nothing to clip).
        let (mut sum, mut sum_sq, mut count) = (0.0f64, 0.0f64, 0usize);
        for (r, &s) in rows.clone().zip(&scales).filter(|(_, s)| **s > 0.0) {
            for &v in &w[span(r)] {
                let x = f64::from(v / s);
                sum += x;
                sum_sq += x * x;
                count += 1;
            }
        }
        if count < 2 {
            continue;
        }
        let mean = sum / count as f64;
        let sigma = ((sum_sq / count as f64 - mean * mean).max(0.0)).sqrt() as f32;
        let bound = clip_sigma * sigma;
        if !(bound.is_finite() && bound > 0.0) || bound >= 1.0 {
            continue; // every |Wn| ≤ 1 already lies within the bound
        }
        for (r, &s) in rows.zip(&scales).filter(|(_, s)| **s > 0.0) {
            for v in &mut w[span(r)] {
                let x = *v / s;
                if x.abs() > bound {
                    *v = x.clamp(-bound, bound) * s;
                    clipped += 1;
                }
            }
        }
    }
    clipped
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    fn gaussian(n: usize, k: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n * k).map(|_| StandardNormal.sample(&mut rng)).map(|v: f32| 0.02 * v).collect()
    }

    /// The std of the row-normalised weights (each row divided by its max |w|, so each row's max is 1).
    fn normalised_std(w: &[f32], n: usize, k: usize) -> f64 {
        let mut all = Vec::new();
        for r in 0..n {
            let row = &w[r * k..(r + 1) * k];
            let s = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            all.extend(row.iter().map(|v| f64::from(v / s)));
        }
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        let var = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / all.len() as f64;
        var.sqrt()
    }

    #[test]
    fn repeated_steps_reach_the_fixed_point_std_one_third_row_max_one() {
        let (n, k) = (256, 512);
        let mut w = gaussian(n, k, 1);
        let std0 = normalised_std(&w, n, k);
        assert!(std0 < 0.32, "a Gaussian row's max is ~3.5σ, so its normalised std starts near 0.29: {std0}");
        let mut clipped = Vec::new();
        for _ in 0..60 {
            clipped.push(clip_and_remap(&mut w, n, k, 0, 3.0));
        }
        let std = normalised_std(&w, n, k);
        // At the fixed point 3σ = 1: nothing is clipped and the normalised std is 1/3 (to the few
        // remaining weights on the bound: tolerance 0.005).
        assert!((std - 1.0 / 3.0).abs() < 0.005, "std {std}");
        // "Converges in a few steps": here the bound reaches the row max after 5.
        assert!(clipped[0] > 0 && clipped[10..].iter().all(|&c| c == 0), "{clipped:?}");
    }

    #[test]
    fn a_step_keeps_each_row_max_and_only_clips_outliers() {
        let (n, k) = (4, 1000);
        let mut w = gaussian(n, k, 2);
        w[3] = 1.0; // one huge outlier in row 0
        let before = w.clone();
        let clipped = clip_and_remap(&mut w, n, k, 0, 3.0);
        assert!(clipped >= 1);
        // The outlier row's scale was the outlier: its normalised weights are tiny, only the outlier is clipped.
        assert!(w[3] < 1.0 && w[3] > 0.0, "{}", w[3]);
        let unchanged = w.iter().zip(&before).filter(|(a, b)| a == b).count();
        assert!(unchanged >= n * k - clipped);
        assert!(w.iter().zip(&before).all(|(a, b)| a.abs() <= b.abs() && a.signum() == b.signum()));
    }

    #[test]
    fn tiles_are_clipped_on_their_own_statistics() {
        // Two 2×4 tiles side by side (core size 4): the right one is constant, nothing in it is clipped.
        let (n, k) = (2, 8);
        let mut w = vec![0.1, -0.1, 0.1, 2.0, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1, -0.1, 0.1, 0.5, 0.5, 0.5, 0.5];
        let right_before: Vec<f32> = [&w[4..8], &w[12..16]].concat();
        clip_and_remap(&mut w, n, k, 4, 1.0);
        assert_eq!([&w[4..8], &w[12..16]].concat(), right_before);
        assert!(w[3] < 2.0, "the left tile's outlier is clipped: {}", w[3]);
        assert!(w.iter().all(|v| v.is_finite()));
        // All-zero weights and an empty layer are left alone.
        let mut zeros = vec![0.0f32; 6];
        assert_eq!(clip_and_remap(&mut zeros, 2, 3, 0, 3.0), 0);
        assert_eq!(clip_and_remap(&mut [], 0, 0, 0, 3.0), 0);
    }
}
