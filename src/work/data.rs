//! The GLUE splits a stage or run reads: from the hub or a TSV folder, subsampled with a fixed seed so that
//! every run of a sweep (whatever its own seed) sees the same examples, and tokenised for the model.

use anyhow::{Context, Result};
use tokenizers::Tokenizer;

use crate::data::{EncodedSplit, GlueHub, Label, Split, TextEncoder, load_tsv_split};
use crate::sweep::{DataSource, DataSpec};
use crate::task::Task;

/// Seed of the `max-train`/`max-eval` subsamples: fixed, so seeds vary the model, not the data.
pub const SUBSAMPLE_SEED: u64 = 0;

/// A split ready for the model: its encoded ids and its gold labels.
pub struct Prepared {
    pub split: Split,
    pub encoded: EncodedSplit,
    pub labels: Vec<Label>,
}

/// Loads `split` of `task` from `data`, keeps at most `limit` examples, and tokenises it.
pub fn prepare(data: &DataSpec, task: Task, split: &str, limit: Option<u64>, tokenizer: &Tokenizer, max_len: u32) -> Result<Prepared> {
    let loaded = match &data.source {
        DataSource::Hub(id) => GlueHub::from_env(id)?.load(task, split)?,
        DataSource::Folder { resolved, .. } => load_tsv_split(resolved, task, split)?,
    };
    let split = match limit {
        Some(n) => loaded.subsample(n as usize, SUBSAMPLE_SEED),
        None => loaded,
    };
    let encoder = TextEncoder::new(tokenizer.clone(), max_len as usize, "model tokenizer")?;
    let encoded = EncodedSplit::encode(&split, &encoder).with_context(|| format!("tokenising {task} {}", split.name))?;
    let labels = split.labels();
    Ok(Prepared { split, encoded, labels })
}
