//! The GLUE data layer: loading splits (hub Parquet or the classic TSV release), seeded subsampling,
//! tokenisation and dynamically padded batches, and the GLUE metrics.
//!
//! Typical use: [`GlueHub::from_env`] → [`GlueHub::load`] → [`Split::subsample`] →
//! [`EncodedSplit::encode`] with a [`TextEncoder`] → [`EncodedSplit::batches`]; after inference,
//! [`task_metrics`] scores the predictions against [`Split::labels`].

#![warn(missing_docs)]

mod batch;
mod encode;
mod error;
mod hub;
mod metrics;
mod parquet;
mod split;
mod tsv;

#[cfg(test)]
mod test_support;

pub use batch::{Batch, BatchLabels, Batches, EncodedSplit, Order};
pub use encode::{Encoded, TextEncoder};
pub use error::{DataError, Result};
pub use hub::{GLUE_DATASET, GlueHub, split_file};
pub use metrics::{Predictions, TaskMetrics, accuracy, f1_binary, matthews, pearson, spearman, task_metrics};
pub use parquet::read_parquet_split;
pub use split::{Example, HIDDEN_CLASS, HIDDEN_SCORE, Label, Split};
pub use tsv::{load_tsv_split, read_tsv_split, task_dir, tsv_path};
