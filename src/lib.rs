//! pimsweep: declarative sweeps of processing-in-memory (PIM) simulations of transformer encoders.
//!
//! A KDL sweep file is read by [`sweep`] into a typed, validated sweep; [`plan`] expands it into runs
//! (evaluations) and stages (trainings they share), each with a content-hash id; [`model`] holds the
//! encoders, [`data`] GLUE and its metrics, [`train`] the training loop; [`report`] aggregates results into
//! tables and plots; [`cli`] is the command line.

pub mod bench;
pub mod cli;
pub mod data;
pub mod model;
pub mod plan;
pub mod report;
pub mod sweep;
pub mod task;
pub mod train;
