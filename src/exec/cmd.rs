//! `pimsweep run`: load the sweep (with diagnostics, as `check` shows them), select with `--only`, take the
//! worker, execute, print the summary. Exits non-zero if anything selected is failed at the end.

use std::path::PathBuf;
use std::process::ExitCode;

use super::budget::{Budget, available_cores};
use super::execute::{Options, execute};
use super::progress::Output;
use crate::sweep::{self, Clause};

/// Arguments of `pimsweep run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The sweep file (KDL).
    pub sweep: PathBuf,
    /// Jobs (stage trainings, run evaluations) at once [default: jobs × threads = cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Threads of each job [default: jobs × threads = cores].
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads_per_job: Option<u32>,
    /// Only the runs matching `axis=value[,value…]` (several clauses space-separated; repeat the flag: all
    /// must hold); the stages they need come with them.
    #[arg(long, value_name = "AXIS=VALUES")]
    pub only: Vec<String>,
    /// The results root.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// Rerun the stages and runs that failed in an earlier invocation.
    #[arg(long)]
    pub retry_failed: bool,
    /// Recompute every selected stage and run, even those done.
    #[arg(long)]
    pub force: bool,
}

/// Runs `pimsweep run`.
pub fn run(args: RunArgs) -> ExitCode {
    let Some((sweep, plan)) = crate::cli::load_plan(&args.sweep) else { return ExitCode::FAILURE };
    let mut only: Vec<Vec<Clause>> = Vec::new();
    for text in &args.only {
        match sweep::parse_cli_filter(&sweep, "--only", text) {
            Ok(clauses) => only.push(clauses),
            Err(diags) => {
                crate::cli::report(&diags);
                return ExitCode::FAILURE;
            }
        }
    }
    // Before the worker loads: a filter that selects nothing is the user's mistake to hear about first.
    if let Err(e) = super::select::select(&plan, &only) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let worker = match super::default_worker() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let budget = Budget::resolve(args.jobs.map(|j| j as usize), args.threads_per_job.map(|t| t as usize), available_cores());
    if let Some(warning) = budget.oversubscription() {
        eprintln!("warning: {warning}");
    }
    let options = Options {
        budget,
        only,
        force: args.force,
        retry_failed: args.retry_failed,
        reports: crate::plan::reports_json(&sweep),
        output: Output::Auto,
        ..Options::new(&args.results)
    };
    match execute(&plan, worker.as_ref(), &options) {
        Ok(summary) => {
            print!("{}", summary.render());
            // Tables and plots from every finished run, also when some failed: partial results are results.
            let reported = crate::report::cmd::report(&args.results.join(&plan.sweep));
            if let Err(e) = &reported {
                eprintln!("error: writing the reports: {e:#}");
            }
            if summary.success() && reported.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
