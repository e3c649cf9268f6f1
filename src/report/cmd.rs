//! The `pimsweep report DIR` and `pimsweep status DIR` commands (DIR = results/<sweep>). Warnings go to
//! stderr, results to stdout.

use std::path::Path;

use super::plan_file::PlanFile;
use super::progress::progress;
use super::render_all;

/// Re-collects results.parquet, re-renders every table, plot and report.md, and prints the tables.
pub fn report(dir: &Path) -> anyhow::Result<()> {
    let summary = render_all(dir)?;
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    print!("{}", summary.tables_markdown());
    eprintln!(
        "{}: {} rows from {} finished runs; {} tables, {} plot files; {}",
        summary.sweep,
        summary.records,
        summary.runs_collected,
        summary.tables.len(),
        summary.plot_files.len(),
        summary.report.display()
    );
    Ok(())
}

/// Prints how many runs and stages are done, failed, running and pending, and each failure's error and log.
pub fn status(dir: &Path) -> anyhow::Result<()> {
    let plan = PlanFile::read(dir)?;
    let mut p = progress(dir, &plan);
    let slurm = crate::slurm::annotate(dir, &mut p);
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    println!("sweep {}", plan.sweep);
    println!("  runs:   {} planned: {}", p.runs.total(), p.runs.summary());
    println!("  stages: {} planned: {}", p.stages.total(), p.stages.summary());
    for line in &slurm {
        println!("  {line}");
    }
    if p.runs.running + p.stages.running > 0 && slurm.is_empty() {
        println!("  (running: a status left by a process that was killed also reads running; `run` starts it again)");
    }
    for f in &p.failures {
        println!("\nfailed {} {} ({})", f.kind, f.id, f.name);
        println!("  error: {}", f.error.as_deref().unwrap_or("(no error recorded)"));
        println!("  log:   {}", f.log.display());
    }
    Ok(())
}
