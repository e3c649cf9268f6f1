//! `report.md`: the sweep's name and description, how many runs are done, every table, and links to the
//! tables' other formats and to the plots. Nothing in it depends on the time it was written, so
//! re-rendering unchanged results gives the same file.

use std::fmt::Write;

use super::plan_file::PlanFile;
use super::plot::Plot;
use super::progress::Progress;
use super::table::Table;
use super::table_render::markdown;

/// The report, with links relative to the sweep folder. `pngs` says which plots have a PNG beside the SVG.
pub fn report_markdown(plan: &PlanFile, progress: &Progress, tables: &[Table], plots: &[(Plot, bool)]) -> String {
    let mut out = format!("# {}\n\n", plan.sweep);
    if let Some(d) = &plan.description {
        let _ = writeln!(out, "{d}\n");
    }
    let _ = writeln!(out, "Runs: {} planned: {}.", progress.runs.total(), progress.runs.summary());
    if progress.stages.total() > 0 {
        let _ = writeln!(out, "Stages (trainings): {} planned: {}.", progress.stages.total(), progress.stages.summary());
    }
    let _ = writeln!(out, "All results, one row per run × repeat × drift time × metric: [results.parquet](results.parquet).");
    if !tables.is_empty() {
        out.push_str("\n## Tables\n");
        for t in tables {
            let _ = write!(out, "\n{}", markdown(t));
            let s = &t.slug;
            let _ = writeln!(out, "\nAlso as [LaTeX](tables/{s}.tex), [CSV](tables/{s}.csv), [Parquet](tables/{s}.parquet).");
        }
    }
    if !plots.is_empty() {
        out.push_str("\n## Plots\n");
        for (p, png) in plots {
            let _ = writeln!(out, "\n### {}\n", p.title);
            if p.is_empty() {
                let _ = writeln!(out, "No finished run matches this plot yet.");
                continue;
            }
            let _ = writeln!(out, "![{}](plots/{}.svg)", p.title, p.slug);
            if *png {
                let _ = writeln!(out, "\nAlso as [PNG](plots/{}.png).", p.slug);
            }
            for note in &p.notes {
                let _ = write!(out, "\n{note}\n");
            }
        }
    }
    out
}
