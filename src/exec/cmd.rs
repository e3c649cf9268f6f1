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
    /// Jobs (stage trainings, run evaluations) at once [default: jobs × threads = cores; on GPUs one per GPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Threads of each job [default: jobs × threads = cores; on GPUs 1].
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
    /// Where to compute: cpu, cuda (every visible GPU, one job on each) or cuda:N (needs a binary built with
    /// the `cuda` feature: scripts/build-cuda.sh).
    #[arg(long, default_value = "cpu")]
    pub device: crate::device::DeviceSpec,
    /// Where to compute: here, or as Slurm job arrays (returns at once; see README "Running on a Slurm cluster").
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    pub executor: Executor,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// Where `run` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Executor {
    Local,
    Slurm,
}

/// Options of `--executor slurm`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Slurm (with --executor slurm)")]
pub struct SlurmArgs {
    /// Partition to submit to [default: the cluster's default].
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// GPUs per run (`--gres=gpu:G`).
    #[arg(long, value_name = "G")]
    pub gpus_per_run: Option<usize>,
    /// CPU cores per run (`--cpus-per-task`); also the run's threads.
    #[arg(long, value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub cpus_per_run: u32,
    /// Time limit of each run, in Slurm's syntax (`2:00:00`, `1-00:00:00`).
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// At most N tasks of one array at once (`--array=…%N`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub array_parallelism: Option<u32>,
    /// Any other sbatch option, passed through as an `#SBATCH` line (repeatable), e.g. `--sbatch-arg=--account=pim`.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
}

impl SlurmArgs {
    fn resources(&self) -> crate::slurm::Resources {
        crate::slurm::Resources {
            partition: self.partition.clone(),
            cpus_per_run: self.cpus_per_run as usize,
            gpus_per_run: self.gpus_per_run,
            time: self.time.clone(),
            array_parallelism: self.array_parallelism.map(|n| n as usize),
            extra: self.sbatch_args.clone(),
        }
    }
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
    if args.executor == Executor::Slurm {
        return submit_to_slurm(&args, &sweep, &plan, only);
    }
    let worker = match crate::work::LocalWorker::from_env(args.device) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // On GPUs, by default one job per GPU with one thread: a job's host thread only launches kernels, and
    // on an H100 a MiniLM epoch took 13 s on one thread against 26 s with 16, while three jobs sharing one GPU
    // each ran six times slower than one alone (docs/BENCHMARKS.md). On the CPU, jobs share out the cores.
    let on_gpu = args.device != crate::device::DeviceSpec::Cpu;
    let jobs = args.jobs.map(|j| j as usize).or(on_gpu.then(|| worker.devices()));
    let threads = args.threads_per_job.map(|t| t as usize).or(on_gpu.then_some(1));
    let budget = Budget::resolve(jobs, threads, available_cores());
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
    match execute(&plan, &worker, &options) {
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

/// `run --executor slurm`: submit and return; the arrays report their own results.
fn submit_to_slurm(args: &RunArgs, sweep: &crate::sweep::Sweep, plan: &crate::plan::Plan, only: Vec<Vec<Clause>>) -> ExitCode {
    let options = Options {
        only,
        force: args.force,
        retry_failed: args.retry_failed,
        reports: crate::plan::reports_json(sweep),
        output: Output::Lines,
        ..Options::new(&args.results)
    };
    match crate::slurm::submit(&args.sweep, plan, &options, &args.slurm.resources()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
