//! pimsweep: declarative sweeps of processing-in-memory (PIM) simulations of transformer encoders.
//!
//! A KDL sweep file ([`sweep`]) is expanded by the planner ([`plan`]) into runs and shared stages.

pub mod data;
pub mod task;
