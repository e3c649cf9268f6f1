//! Results aggregation and reports: [`collect`] reads the finished runs of a results folder into
//! `results.parquet` (docs/RESULTS.md), [`table`] and [`plot`] lay out the sweep's `table` and `plot` specs
//! (stored in plan.json), [`table_render`] and [`plot_draw`] write them as Markdown, LaTeX, CSV, Parquet,
//! SVG and PNG, [`report_md`] writes report.md, and [`cmd`] holds the `report` and `status` commands.
//!
//! [`render_all`] does all of it from the folder alone, without re-running anything; the executor calls
//! it at the end of `run`.

pub mod cmd;
pub mod collect;
pub mod files;
pub mod plan_file;
pub mod plot;
pub mod plot_draw;
pub mod png;
pub mod progress;
pub mod report_md;
pub mod select;
pub mod status_file;
pub mod table;
pub mod table_render;

use std::path::{Path, PathBuf};

pub use collect::{Record, Results, collect, to_dataframe, write_results};
pub use plan_file::PlanFile;
pub use plot::{Plot, build_plot};
pub use progress::{Counts, Progress, progress};
pub use table::{Table, build_table};

/// What [`render_all`] did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub sweep: String,
    pub progress: Progress,
    /// Rows written to results.parquet, and the runs they came from.
    pub records: usize,
    pub runs_collected: usize,
    pub tables: Vec<Table>,
    /// Files written under plots/.
    pub plot_files: Vec<PathBuf>,
    pub report: PathBuf,
    /// Runs skipped or files left unread, each naming the file; PNGs skipped for want of a font.
    pub warnings: Vec<String>,
}

impl Summary {
    /// Every table as Markdown, as report.md shows them.
    pub fn tables_markdown(&self) -> String {
        self.tables.iter().map(table_render::markdown).collect::<Vec<_>>().join("\n")
    }
}

/// Re-collects `results.parquet` from the run folders of `sweep_dir` (results/<sweep>) and re-renders every
/// table, plot and report.md. Errors only when plan.json is unreadable or a file cannot be written; a bad
/// run is a warning.
pub fn render_all(sweep_dir: &Path) -> anyhow::Result<Summary> {
    let plan = PlanFile::read(sweep_dir)?;
    let results = collect(sweep_dir, &plan);
    write_results(sweep_dir, &results)?;
    let progress = progress(sweep_dir, &plan);
    let mut warnings = results.warnings.clone();
    warnings.extend(progress.warnings.iter().cloned());

    let mut slugs = files::Slugs::default();
    let mut tables = Vec::new();
    for spec in &plan.reports.tables {
        let table = build_table(spec, &slugs.unique(&spec.title, "table"), &results.records, &plan);
        table_render::write_table(sweep_dir, &table)?;
        tables.push(table);
    }
    let table_files = tables.iter().flat_map(|t| table_render::EXTENSIONS.map(|e| format!("{}.{e}", t.slug))).collect();
    files::prune(&sweep_dir.join("tables"), &table_files, &table_render::EXTENSIONS)?;
    let mut slugs = files::Slugs::default();
    let mut plots = Vec::new();
    let mut plot_files = Vec::new();
    for spec in &plan.reports.plots {
        let plot = build_plot(spec, &slugs.unique(&spec.title, "plot"), &results.records, &plan);
        let written = plot_draw::write_plot(sweep_dir, &plot)?;
        let has_png = written.len() > 1;
        plot_files.extend(written);
        plots.push((plot, has_png));
    }
    let drawn = plot_files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    files::prune(&sweep_dir.join("plots"), &drawn, &["svg", "png"])?;
    if !plots.is_empty() && png::font().is_none() {
        warnings.push("no TrueType font found (set PIMSWEEP_FONT to a .ttf file): plots written as SVG only, without PNG".into());
    }
    let report = sweep_dir.join("report.md");
    files::write_atomic(&report, report_md::report_markdown(&plan, &progress, &tables, &plots).as_bytes())?;
    Ok(Summary {
        sweep: plan.sweep.clone(),
        progress,
        records: results.records.len(),
        runs_collected: results.runs,
        tables,
        plot_files,
        report,
        warnings,
    })
}
