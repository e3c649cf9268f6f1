//! PIM technologies: the simulated tiles that replace the encoder's linear layers (PIM_MODELS.md).
//!
//! A technology is a [`Simulator`]: given a layer's input rows and its f32 master weight it returns the
//! simulated `x·Wᵀ` (the bias is added digitally by the caller). [`simulator::build`] makes one from a
//! sweep's technology parameters. Randomness comes from [`noise`], seeded per (run seed, layer, chip, draw),
//! so a run is reproducible bit for bit whatever the thread count.

pub mod bench;
pub mod gpu;
mod gradient;
pub mod layer_cmd;
pub mod linear;
pub mod noise;
pub mod pcm_aihwkit;
pub mod pcm_ncb;
pub mod quant;
pub mod reram;
pub mod simulator;
pub mod sram;
pub mod tiling;

#[cfg(test)]
mod test_support;

pub use linear::{LayerFilter, PimLinear, Technology};
pub use noise::NoiseKey;
pub use simulator::{Simulator, TileCall};
