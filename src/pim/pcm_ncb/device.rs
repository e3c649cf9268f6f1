//! NewComputeBench's PCM tile composed of device ops (gpu/ncb.rs): how a GPU computes `PcmNcb::matmul`.
//! The same steps as the host path: DAC with per-group norms (one pass for a layer's query, key and value),
//! programming with fresh Philox noise per call, one batched cuBLAS product for all K-chunks' tiles (on the
//! row-major operands, no chunked copies), then noise terms, ADC and de-scale per (row, N-tile) in one kernel.

use candle_core::{Result, Tensor};

use super::{IR_GAMMA, PcmNcb, STREAM_OUT, STREAM_PROG, STREAM_READ};
use crate::pim::gpu::PhiloxKey;
use crate::pim::gpu::ncb::{self, Groups, Scales, Terms};
use crate::pim::simulator::TileCall;
use crate::pim::tiling::{Geometry, InputScale};

impl PcmNcb {
    pub(super) fn matmul_on_device(&self, x: &Tensor, weight: &Tensor, call: &TileCall) -> Result<Tensor> {
        let (rows, k) = x.dims2()?;
        let (n, _) = weight.dims2()?;
        let geom = Geometry::new(rows, k, n, self.core_size, call.rows_per_sequence);
        let cs = geom.cs;
        let groups = match self.input_scale {
            InputScale::Token => Groups { cs, group_rows: 1, sequence_rows: 1 },
            InputScale::Block => Groups { cs, group_rows: cs, sequence_rows: geom.rows_per_sequence.max(1) },
        };
        let (xq, norms) = self.dacs.get(x, groups, self.dac_bits)?;
        let noise = (self.programming_noise && self.prog_noise_scale > 0.0)
            .then(|| (self.prog_noise_scale, PhiloxKey::new(call.noise, STREAM_PROG)));
        let (wp, w_scales) = ncb::program(weight, cs, self.g_max, noise)?;
        // Every chunk's tile products straight from the row-major operands, [chunks, rows, n].
        let r = ncb::chunk_products(&xq, &wp, cs)?;
        let abs_w = if self.read_noise || self.ir_drop { Some(wp.abs()?) } else { None };
        let read_var = match &abs_w {
            Some(aw) if self.read_noise => Some(ncb::chunk_products(&xq.sqr()?, aw, cs)?),
            _ => None,
        };
        let ir = match &abs_w {
            Some(aw) if self.ir_drop => {
                // The position weight of each column within its chunk.
                let within = super::ir_position_weights(cs, cs);
                let s = Tensor::from_vec((0..k).map(|j| within[j % cs]).collect::<Vec<_>>(), (1, k), x.device())?;
                Some((ncb::chunk_products(&xq.abs()?, aw, cs)?, ncb::chunk_products(&xq.broadcast_mul(&s)?, &wp, cs)?))
            }
            _ => None,
        };
        let terms = Terms {
            read: read_var.as_ref().map(|v| (v, PhiloxKey::new(call.noise, STREAM_READ))),
            ir: ir.as_ref().map(|(a, xs)| (a, xs, IR_GAMMA * cs as f32)),
            out: self.out_noise.then(|| PhiloxKey::new(call.noise, STREAM_OUT)),
        };
        let scales = Scales { groups, norms: &norms, weights: &w_scales };
        ncb::output(&r, &scales, &terms, self.adc_bits.map(|b| (b, 10.0 * self.g_max)))
    }
}
