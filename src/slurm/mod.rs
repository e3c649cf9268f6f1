//! Slurm, the executor beyond one machine: `pimsweep run SWEEP --executor slurm` submits the stages and runs
//! that are not done as job arrays and returns at once; each array task runs `pimsweep exec` on one of them
//! into the shared results folder, with the same atomic status files as the local executor; `pimsweep status`
//! shows Slurm's view beside the status files; a report job renders the tables when every array has ended.
//!
//! Arrays wait for the arrays holding their stages with `afterany`, not `afterok`: `afterok` on an array waits
//! for every task of it, so one failed fine-tune would cancel every run of the next array, those of the stages
//! that succeeded included. Each task checks its own stage instead, as the local scheduler does: a run whose
//! stage failed is recorded as failed (blocked) at once; the others run.
//!
//! ```text
//! manifest.rs  index → stage/run; arrays by dependency level and kind, chunked below MaxArraySize
//! script.rs    the sbatch scripts (array tasks and the report job)
//! cluster.rs   sbatch, scontrol show config, squeue, sacct: calls and parsers
//! submit.rs    run --executor slurm: pending jobs → manifest → scripts → sbatch with dependencies
//! exec_cmd.rs  pimsweep exec --manifest M --index I
//! state.rs     Slurm's view for pimsweep status
//! ```

pub mod cluster;
mod exec_cmd;
pub mod manifest;
pub mod script;
mod state;
pub mod submit;

pub use exec_cmd::exec;
pub use script::Resources;
pub use state::annotate;
pub use submit::{Jobs, Submission, submissions, submit};
