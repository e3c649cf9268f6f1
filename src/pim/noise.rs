//! Seeded noise streams. Every random draw of a PIM layer comes from a [`NoiseKey`] (run seed, layer name,
//! chip, draw counter) plus a stream number that says what the draw is for (programming noise, read noise…),
//! so two draws never share a stream, and a run replays bit for bit. Large fills are cut into fixed blocks,
//! each with its own sub-seed, so the numbers do not depend on how many threads fill them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;

/// Elements per independently seeded block of a parallel fill.
const BLOCK: usize = 1 << 14;

/// Where a layer's draws come from in one forward call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NoiseKey {
    pub seed: u64,
    /// BLAKE3 of the layer's name (its first 8 bytes).
    pub layer: u64,
    /// The programmed chip (the repeat; 0 when every repeat reuses one chip).
    pub chip: u64,
    /// The layer's forward-call counter: a fresh draw for each call that re-samples.
    pub draw: u64,
}

impl NoiseKey {
    pub fn new(seed: u64, layer_name: &str, chip: u64, draw: u64) -> NoiseKey {
        let hash = blake3::hash(layer_name.as_bytes());
        let layer = u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("blake3 gives 32 bytes"));
        NoiseKey { seed, layer, chip, draw }
    }

    /// The same layer and chip, another draw (e.g. the chip's one-time programming uses draw 0 of a
    /// dedicated stream while per-forward noise counts draws).
    pub fn with_draw(self, draw: u64) -> NoiseKey {
        NoiseKey { draw, ..self }
    }

    /// An RNG for `stream` (what the draw is for) and `block` (which part of a large fill).
    pub fn rng(&self, stream: u64, block: u64) -> StdRng {
        let mut bytes = [0u8; 48];
        for (i, v) in [self.seed, self.layer, self.chip, self.draw, stream, block].into_iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        StdRng::from_seed(*blake3::hash(&bytes).as_bytes())
    }

    /// Fills `out` with N(0, 1) draws of `stream`, in parallel, independent of the thread count.
    pub fn fill_normal(&self, stream: u64, out: &mut [f32]) {
        out.par_chunks_mut(BLOCK).enumerate().for_each(|(block, chunk)| {
            let mut rng = self.rng(stream, block as u64);
            for v in chunk {
                *v = rng.sample(StandardNormal);
            }
        });
    }

    /// `n` N(0, 1) draws of `stream`.
    pub fn normals(&self, stream: u64, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; n];
        self.fill_normal(stream, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_replay_and_differ() {
        let key = NoiseKey::new(42, "encoder.layer.0.attention.self.query", 0, 0);
        let a = key.normals(1, 3 * BLOCK + 7);
        assert_eq!(a, key.normals(1, 3 * BLOCK + 7), "same key, same numbers");
        assert_ne!(a[..8], key.normals(2, 8)[..], "another stream");
        assert_ne!(a[..8], key.with_draw(1).normals(1, 8)[..], "another draw");
        assert_ne!(a[..8], NoiseKey::new(42, "encoder.layer.0.attention.self.key", 0, 0).normals(1, 8)[..]);
        assert_ne!(a[..8], NoiseKey::new(42, "encoder.layer.0.attention.self.query", 1, 0).normals(1, 8)[..]);
        // Standard normal: mean within 5 standard errors (1/sqrt(n)), variance within 5·sqrt(2/n).
        let n = a.len() as f64;
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 5.0 / n.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "variance {var}");
    }
}
