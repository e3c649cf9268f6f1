//! The command line: `pimsweep check`, `plan`, `report` and `status`. Commands print diagnostics to stderr with the
//! user's file as the thing pointed at, and exit non-zero when the sweep has errors.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::sweep::TechnologyKind;
use clap::{Parser, Subcommand};

use crate::plan::{self, Plan};
use crate::sweep::{self, SweepDiagnostic};

#[derive(Parser)]
#[command(name = "pimsweep", version, about = "Declarative sweeps of processing-in-memory simulations of transformer encoders")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a sweep file and print a one-line summary.
    Check {
        /// The sweep file (KDL).
        sweep: PathBuf,
    },
    /// Show the runs and stages a sweep expands to.
    Plan {
        /// The sweep file (KDL).
        sweep: PathBuf,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Show the resolved parameters behind a run's id (an id, an id prefix or a run name).
        #[arg(long, value_name = "RUN")]
        why: Option<String>,
    },
    /// Re-collect a results folder's finished runs and re-render its tables, plots and report.md.
    Report {
        /// The sweep's results folder (results/<sweep>).
        dir: PathBuf,
    },
    /// Count a results folder's done, failed, running and pending runs, and show each failure.
    Status {
        /// The sweep's results folder (results/<sweep>).
        dir: PathBuf,
    },
    /// Measure evaluation and training throughput (samples/s) of encoder shapes on random weights.
    Bench {
        /// Model shapes: minilm-l6, roberta-base.
        #[arg(long = "model", default_values = ["minilm-l6", "roberta-base"])]
        models: Vec<String>,
        #[arg(long, default_value_t = 32)]
        eval_batch: usize,
        #[arg(long, default_value_t = 16)]
        train_batch: usize,
        /// Tokens per sequence (every sequence is full length).
        #[arg(long, default_value_t = 128)]
        seq: usize,
        /// Minimum measuring time per figure, in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Also measure the PIM technologies defined in these files (presets or sweeps): one layer at
        /// roberta-base shapes, and whole models, each against the digital path.
        #[arg(long = "technology", value_name = "FILE.kdl")]
        technologies: Vec<PathBuf>,
        /// cpu, or cuda[:N] (a binary built with the `cuda` feature).
        #[arg(long, default_value = "cpu")]
        device: crate::device::DeviceSpec,
    },
    /// Train and evaluate a sweep's runs, resuming what an earlier invocation left.
    Run(crate::exec::cmd::RunArgs),
    /// Compute one stage or run of a Slurm submission's manifest (what each array task runs).
    Exec {
        /// The submission's manifest.json.
        #[arg(long, value_name = "M")]
        manifest: PathBuf,
        /// The index in the manifest (array task id + the array's offset).
        #[arg(long, value_name = "I")]
        index: usize,
        /// Threads [default: $SLURM_CPUS_PER_TASK, else the submission's --cpus-per-run].
        #[arg(long, value_name = "T")]
        threads: Option<usize>,
        /// cpu, cuda (the GPUs Slurm allocated) or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: crate::device::DeviceSpec,
    },
    /// Apply one PIM linear layer to your own tensors: y = x·Wᵀ + b through a technology's tiles.
    Layer {
        /// A file defining the technology (a preset such as configs/reram.kdl, or a sweep).
        #[arg(long, value_name = "FILE.kdl")]
        technology: PathBuf,
        /// Which technology of the file (needed when it defines several).
        #[arg(long, value_name = "T")]
        name: Option<String>,
        /// The input x, [rows, in] or [batch, seq, in] (a safetensors file holding one tensor).
        #[arg(long, value_name = "x.safetensors")]
        input: PathBuf,
        /// The weight W in the PyTorch Linear layout [out, in] (one tensor).
        #[arg(long, value_name = "w.safetensors")]
        weight: PathBuf,
        /// The bias b, [out] (one tensor), added digitally.
        #[arg(long, value_name = "b.safetensors")]
        bias: Option<PathBuf>,
        /// Time since programming, for drifting technologies (e.g. 1h, 1d, 10y).
        #[arg(long, default_value = "0s")]
        drift: String,
        /// Seed of the noise draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where to write y (a safetensors file with one tensor named `y`).
        #[arg(long, value_name = "y.safetensors")]
        out: PathBuf,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { sweep } => check(&sweep),
        Command::Plan { sweep, json, why } => plan_cmd(&sweep, json, why.as_deref()),
        Command::Report { dir } => exit_code(crate::report::cmd::report(&dir)),
        Command::Status { dir } => exit_code(crate::report::cmd::status(&dir)),
        Command::Exec { manifest, index, threads, device } => crate::slurm::exec(&manifest, index, threads, device),
        Command::Bench { models, eval_batch, train_batch, seq, seconds, technologies, device } => {
            let time = std::time::Duration::from_secs_f64(seconds);
            let device = match device.open_one() {
                Ok(d) => d,
                Err(e) => return exit_code(Err(e)),
            };
            if !device.is_cpu() {
                // As `run` does for a GPU job: one host thread, which only launches kernels (more slow it down).
                let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
            }
            if technologies.is_empty() {
                return exit_code(crate::bench::run(&models, eval_batch, train_batch, seq, time, &device).map(|table| print!("{table}")));
            }
            let mut built = Vec::new();
            for path in &technologies {
                let Some(techs) = load_technologies(path) else { return ExitCode::FAILURE };
                for t in techs {
                    let TechnologyKind::Pim { kind, params } = &t.kind else { continue };
                    match crate::pim::Technology::new(*kind, params) {
                        Ok(technology) => built.push((format!("{} ({})", t.name, path.display()), technology)),
                        Err(e) => {
                            eprintln!("error: technology {} in {}: {e:#}", t.name, path.display());
                            return ExitCode::FAILURE;
                        }
                    }
                }
            }
            exit_code(crate::pim::bench::layer_table(&built, time, &device).and_then(|layers| {
                println!("{layers}");
                crate::pim::bench::model_table(&models, &built, eval_batch, train_batch, seq, time, &device).map(|table| print!("{table}"))
            }))
        }
        Command::Run(args) => crate::exec::cmd::run(args),
        Command::Layer { technology, name, input, weight, bias, drift, seed, out } => layer_cmd(
            &technology,
            name.as_deref(),
            &drift,
            crate::pim::layer_cmd::LayerRequest { input, weight, bias, drift_s: 0.0, seed, out },
        ),
    }
}

fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub(crate) fn report(diags: &[SweepDiagnostic]) {
    let color = color();
    for d in diags {
        eprint!("{}", d.render(color));
    }
}

/// Loads and expands a sweep, printing its diagnostics; None when it has errors.
pub(crate) fn load_plan(path: &std::path::Path) -> Option<(sweep::Sweep, Plan)> {
    let loaded = match sweep::load(path) {
        Ok(l) => l,
        Err(diags) => {
            report(&diags);
            let n = diags.iter().filter(|d| d.is_error()).count();
            eprintln!("error: {} has {n} error{}", path.display(), if n == 1 { "" } else { "s" });
            return None;
        }
    };
    report(&loaded.warnings);
    match plan::expand(&loaded.sweep) {
        Ok(plan) => {
            report(&plan.warnings);
            Some((loaded.sweep, plan))
        }
        Err(diags) => {
            report(&diags);
            None
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let start = Instant::now();
    let is_sweep = std::fs::read_to_string(path).map_or(true, |t| sweep::is_sweep_file(&t));
    if !is_sweep {
        return check_preset(path);
    }
    let Some((sweep, plan)) = load_plan(path) else { return ExitCode::FAILURE };
    let count = |f: &dyn Fn(&plan::Run) -> String| {
        let mut v: Vec<String> = plan.runs.iter().map(f).collect();
        v.sort();
        v.dedup();
        v.len()
    };
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    println!(
        "ok: {} ({}): {}, {}; {}, {}, {} [{:.0} ms]",
        sweep.name,
        path.display(),
        plural(plan.runs.len(), "run", "runs"),
        plural(plan.stages.len(), "stage", "stages"),
        plural(count(&|r| r.task.name().to_string()), "task", "tasks"),
        plural(count(&|r| r.technology.clone()), "technology", "technologies"),
        plural(count(&|r| r.mode.name().to_string()), "mode", "modes"),
        start.elapsed().as_secs_f64() * 1e3
    );
    ExitCode::SUCCESS
}

/// The PIM technologies a preset or a sweep file defines; None (diagnostics printed) when it does not read.
fn load_technologies(path: &std::path::Path) -> Option<Vec<sweep::Technology>> {
    if std::fs::read_to_string(path).is_ok_and(|t| sweep::is_sweep_file(&t)) {
        let (loaded, _) = load_plan(path)?;
        return Some(loaded.technologies.into_values().filter(|t| t.kind.pim_kind().is_some()).collect());
    }
    match sweep::load_preset(path) {
        Ok((techs, warnings)) => {
            report(&warnings);
            Some(techs)
        }
        Err(diags) => {
            report(&diags);
            None
        }
    }
}

/// `layer`: finds the technology in its file, then applies it.
fn layer_cmd(path: &std::path::Path, name: Option<&str>, drift: &str, mut request: crate::pim::layer_cmd::LayerRequest) -> ExitCode {
    request.drift_s = match sweep::duration::parse_duration(drift) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --drift {drift}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(technologies) = load_technologies(path) else { return ExitCode::FAILURE };
    let names = || technologies.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
    let chosen = match (name, technologies.as_slice()) {
        (Some(n), _) => technologies.iter().find(|t| t.name == n),
        (None, [only]) => Some(only),
        (None, []) => {
            eprintln!("error: {} defines no PIM technology", path.display());
            return ExitCode::FAILURE;
        }
        (None, _) => {
            eprintln!("error: {} defines several technologies ({}): choose one with --name", path.display(), names());
            return ExitCode::FAILURE;
        }
    };
    let Some(technology) = chosen else {
        eprintln!("error: {} defines no technology {:?}; it defines: {}", path.display(), name.unwrap_or_default(), names());
        return ExitCode::FAILURE;
    };
    match crate::pim::layer_cmd::run(&technology.name, &technology.kind, &request) {
        Ok(y) => {
            println!("wrote y {:?} to {} ({})", y.dims(), request.out.display(), technology.name);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `check` on a preset (a file of technology definitions such as configs/reram.kdl).
fn check_preset(path: &std::path::Path) -> ExitCode {
    match sweep::load_preset(path) {
        Ok((techs, warnings)) => {
            report(&warnings);
            let list: Vec<String> = techs
                .iter()
                .map(|t| {
                    let kind = t.kind.pim_kind().expect("presets define PIM technologies");
                    let model = kind.model_name().map(|m| format!(" model={m}")).unwrap_or_default();
                    format!("{} (kind={}{model})", t.name, kind.kind_name())
                })
                .collect();
            println!(
                "ok: {} is a preset defining {}",
                path.display(),
                if list.is_empty() { "nothing".to_string() } else { list.join(", ") }
            );
            ExitCode::SUCCESS
        }
        Err(diags) => {
            report(&diags);
            ExitCode::FAILURE
        }
    }
}

fn plan_cmd(path: &std::path::Path, json: bool, why: Option<&str>) -> ExitCode {
    let Some((_, plan)) = load_plan(path) else { return ExitCode::FAILURE };
    if let Some(key) = why {
        return match plan::print_why(&plan, key) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&plan::plan_json(&plan)).unwrap_or_default());
    } else {
        print!("{}", plan::print_plan(&plan));
    }
    ExitCode::SUCCESS
}
