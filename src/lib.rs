//! pimsweep: declarative sweeps of processing-in-memory (PIM) simulations of transformer encoders.
//!
//! A KDL sweep file is read by [`sweep`] into a typed, validated sweep; [`plan`] expands it into runs
//! (evaluations) and stages (trainings they share), each with a content-hash id; [`exec`] trains and evaluates
//! them into a results folder; [`cli`] is the command line.

pub mod cli;
pub mod exec;
pub mod plan;
pub mod sweep;
pub mod task;
