//! Embedding lookup with a parallel, deterministic backward.
//!
//! candle's `index_select` backward adds the gradient rows into a fresh zero table with `index_add`: a
//! memset and a copy of the whole table, then a kernel with one thread per column that walks all the ids in
//! turn (on an H100 about 1.2 ms per table per roberta-base training step). Here the backward reads the ids
//! back (a few kilobytes), groups each id's positions in order, and sums them in segments of fixed length,
//! then each id's segments in order: the same sums whatever the launch shape, so a run repeats bit for bit.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, bail};

use super::{f32_slice, fusable, output};

/// Rows of one segment of an id's gradient sum (the heavy ids, e.g. the one token type, take many).
const SEGMENT: usize = 32;

/// `table` `[vocab, dim]` looked up by the u32 `ids` of any shape: `ids.shape + [dim]`.
pub fn embedding(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let mut out_dims = ids.dims().to_vec();
    out_dims.push(table.dim(1)?);
    let flat = ids.flatten_all()?;
    if !fusable(&[table]) || flat.dtype() != DType::U32 {
        return table.index_select(&flat, 0)?.reshape(out_dims);
    }
    table.contiguous()?.apply_op2(&flat.contiguous()?, Lookup)?.reshape(out_dims)
}

/// The u32 ids of a contiguous argument.
fn ids_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [u32]> {
    let CpuStorage::U32(values) = storage else { bail!("{op}: the ids have to be u32") };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => bail!("{op}: the ids have to be contiguous"),
    }
}

fn check_ids(op: &str, ids: &[u32], vocab: usize) -> Result<()> {
    match ids.iter().find(|&&id| id as usize >= vocab) {
        Some(id) => bail!("{op}: id {id} is outside the table of {vocab} rows"),
        None => Ok(()),
    }
}

/// Arguments `(table, ids)`; the rows of the ids.
struct Lookup;

impl CustomOp2 for Lookup {
    fn name(&self) -> &'static str {
        "fused-embedding"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (table, ids) = (f32_slice(s1, l1, self.name())?, ids_slice(s2, l2, self.name())?);
        let (vocab, dim) = l1.shape().dims2()?;
        check_ids(self.name(), ids, vocab)?;
        let out: Vec<f32> = ids.iter().flat_map(|&id| &table[id as usize * dim..][..dim]).copied().collect();
        output(out, &Shape::from((ids.len(), dim)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (_, dim) = l1.shape().dims2()?;
        let count = l2.shape().elem_count();
        Ok((super::cuda::embedding((s1, l1), (s2, l2))?, Shape::from((count, dim))))
    }

    fn bwd(&self, table: &Tensor, ids: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let vocab = table.dim(0)?;
        Ok((Some(grad.contiguous()?.apply_op2_no_bwd(ids, &LookupGrad { vocab })?), None))
    }
}

/// Arguments `(grad [count, dim], ids [count])`; the table's gradient `[vocab, dim]`.
struct LookupGrad {
    vocab: usize,
}

/// Each id's positions in order, cut into segments of at most [`SEGMENT`]: the positions grouped by id
/// (`positions`), where each segment starts in them (`segment_starts`, one more than segments), the ids
/// that occur (`ids`), and where each id's segments start (`id_segments`, one more than ids).
#[derive(Debug, PartialEq)]
pub(super) struct Segments {
    pub positions: Vec<u32>,
    pub segment_starts: Vec<u32>,
    pub ids: Vec<u32>,
    pub id_segments: Vec<u32>,
}

pub(super) fn segments(ids: &[u32]) -> Segments {
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    order.sort_by_key(|&p| (ids[p as usize], p));
    let mut s = Segments { positions: order, segment_starts: Vec::new(), ids: Vec::new(), id_segments: Vec::new() };
    let mut start = 0;
    while start < s.positions.len() {
        let id = ids[s.positions[start] as usize];
        let end = start + s.positions[start..].iter().take_while(|&&p| ids[p as usize] == id).count();
        s.ids.push(id);
        s.id_segments.push(s.segment_starts.len() as u32);
        s.segment_starts.extend((start..end).step_by(SEGMENT).map(|p| p as u32));
        start = end;
    }
    s.segment_starts.push(s.positions.len() as u32);
    s.id_segments.push((s.segment_starts.len() - 1) as u32);
    s
}

impl CustomOp2 for LookupGrad {
    fn name(&self) -> &'static str {
        "fused-embedding-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (grad, ids) = (f32_slice(s1, l1, self.name())?, ids_slice(s2, l2, self.name())?);
        let (_, dim) = l1.shape().dims2()?;
        check_ids(self.name(), ids, self.vocab)?;
        // The GPU's order of additions: segments of an id's positions, then the segments.
        let s = segments(ids);
        let mut out = vec![0f32; self.vocab * dim];
        let mut partial = vec![0f32; dim];
        for (u, &id) in s.ids.iter().enumerate() {
            let row = &mut out[id as usize * dim..][..dim];
            for seg in s.id_segments[u] as usize..s.id_segments[u + 1] as usize {
                partial.fill(0.0);
                for &p in &s.positions[s.segment_starts[seg] as usize..s.segment_starts[seg + 1] as usize] {
                    partial.iter_mut().zip(&grad[p as usize * dim..][..dim]).for_each(|(a, &g)| *a += g);
                }
                row.iter_mut().zip(&partial).for_each(|(r, &v)| *r += v);
            }
        }
        output(out, &Shape::from((self.vocab, dim)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (_, dim) = l1.shape().dims2()?;
        Ok((super::cuda::embedding_grad((s1, l1), (s2, l2), self.vocab, self.name())?, Shape::from((self.vocab, dim))))
    }
}
