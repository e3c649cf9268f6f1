//! pimsweep: declarative sweeps of processing-in-memory (PIM) simulations of transformer encoders.
//!
//! A KDL sweep file is read by [`sweep`] into a typed, validated sweep; [`plan`] expands it into runs
//! (evaluations) and stages (trainings they share), each with a content-hash id; [`report`] turns a results folder into tables, plots and
//! report.md; [`cli`] is the command line.

pub mod cli;
pub mod plan;
pub mod report;
pub mod sweep;
pub mod task;
