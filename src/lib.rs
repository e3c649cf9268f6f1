//! pimsweep: declarative sweeps of processing-in-memory (PIM) simulations of transformer encoders.
//!
//! A KDL sweep file is read by [`sweep`] into a typed, validated sweep; [`plan`] expands it into runs
//! (evaluations) and stages (trainings they share), each with a content-hash id; [`exec`] executes them into
//! a results folder through [`work`], which trains ([`train`]) and evaluates the encoders ([`model`]) on GLUE
//! ([`data`]); [`report`] aggregates results into tables and plots; [`cli`] is the command line.

pub mod bench;
pub mod blas;
pub mod cli;
pub mod data;
pub mod device;
pub mod exec;
pub mod model;
pub mod pim;
pub mod plan;
pub mod report;
pub mod slurm;
pub mod sweep;
pub mod task;
pub mod train;
pub mod work;
