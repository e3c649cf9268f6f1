//! A [`Table`] as Markdown (for report.md and the terminal), LaTeX (booktabs, for papers), and CSV and
//! Parquet (numbers kept numeric: one `_mean`, `_std`, `_n` column per table column, `avg` last).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use polars::prelude::{Column, CsvWriter, DataFrame, PolarsResult, SerWriter};

use super::collect::write_parquet;
use super::files::write_atomic;
use super::select::{fmt_num, fmt_stat, label};
use super::table::Table;

/// `### title`, the table, and its notes.
pub fn markdown(t: &Table) -> String {
    let mut out = format!("### {}\n\n", md_escape(&t.title));
    let mut header = vec![format!("{} \\ {}", t.row_axis, t.column_axis)];
    header.extend(t.columns.iter().map(|c| label(&t.column_axis, c)));
    if t.average.is_some() {
        header.push("Avg".into());
    }
    let _ = writeln!(out, "| {} |", header.iter().map(|h| md_escape(h)).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(header.len() - 1));
    for (i, row) in body(t).iter().enumerate() {
        let _ = writeln!(out, "| {} | {} |", md_escape(&label(&t.row_axis, &t.rows[i])), row.join(" | "));
    }
    // One paragraph per note.
    for note in &t.notes {
        let _ = write!(out, "\n{}\n", md_escape(note));
    }
    out
}

/// The formatted cells of each row (Avg last when asked for).
fn body(t: &Table) -> Vec<Vec<String>> {
    t.cells
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut cells: Vec<String> = row.iter().map(|c| c.as_ref().map(fmt_stat).unwrap_or_default()).collect();
            if let Some(avg) = &t.average {
                cells.push(avg[i].map(fmt_num).unwrap_or_default());
            }
            cells
        })
        .collect()
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A booktabs `table` environment; the notes become LaTeX comments above it.
pub fn latex(t: &Table) -> String {
    let mut out = String::new();
    for note in &t.notes {
        let _ = writeln!(out, "% {}", note.replace('\n', " "));
    }
    let ncols = t.columns.len() + usize::from(t.average.is_some());
    out.push_str("\\begin{table}[t]\n\\centering\n");
    let _ = writeln!(out, "\\caption{{{}}}", tex_escape(&t.title));
    let _ = writeln!(out, "\\begin{{tabular}}{{l{}}}", "r".repeat(ncols));
    out.push_str("\\toprule\n");
    let mut header = vec![format!("{} / {}", tex_escape(&t.row_axis), tex_escape(&t.column_axis))];
    header.extend(t.columns.iter().map(|c| tex_escape(&label(&t.column_axis, c))));
    if t.average.is_some() {
        header.push("Avg".into());
    }
    let _ = writeln!(out, "{} \\\\", header.join(" & "));
    out.push_str("\\midrule\n");
    for (i, row) in body(t).iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| tex_escape(c).replace('±', "$\\pm$")).collect();
        let _ = writeln!(out, "{} & {} \\\\", tex_escape(&label(&t.row_axis, &t.rows[i])), cells.join(" & "));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    out
}

/// Escapes LaTeX's special characters in text.
pub fn tex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            _ => out.push(c),
        }
    }
    out
}

/// The table with numeric columns: the rows axis, then `<column>_mean`, `_std` (null for a single value),
/// `_n` per column, then `avg`.
pub fn dataframe(t: &Table) -> PolarsResult<DataFrame> {
    let height = t.rows.len();
    let mut columns = vec![Column::new(t.row_axis.as_str().into(), t.rows.clone())];
    for (j, col) in t.columns.iter().enumerate() {
        let name = col.clone().unwrap_or_else(|| "n/a".into());
        let cell = |i: usize| t.cells[i][j];
        columns.push(Column::new(format!("{name}_mean").into(), (0..height).map(|i| cell(i).map(|s| s.mean)).collect::<Vec<_>>()));
        let std = (0..height).map(|i| cell(i).filter(|s| s.n > 1).map(|s| s.std)).collect::<Vec<_>>();
        columns.push(Column::new(format!("{name}_std").into(), std));
        columns.push(Column::new(format!("{name}_n").into(), (0..height).map(|i| cell(i).map(|s| s.n as i64)).collect::<Vec<_>>()));
    }
    if let Some(avg) = &t.average {
        columns.push(Column::new("avg".into(), avg.clone()));
    }
    DataFrame::new(height, columns)
}

/// The files written per table.
pub const EXTENSIONS: [&str; 4] = ["md", "tex", "csv", "parquet"];

/// Writes `tables/<slug>.{md,tex,csv,parquet}` under `sweep_dir`; returns the Markdown file's path.
pub fn write_table(sweep_dir: &Path, t: &Table) -> anyhow::Result<PathBuf> {
    let dir = sweep_dir.join("tables");
    let base = dir.join(&t.slug);
    let md = base.with_extension("md");
    write_atomic(&md, markdown(t).as_bytes())?;
    write_atomic(&base.with_extension("tex"), latex(t).as_bytes())?;
    let mut df = dataframe(t).with_context(|| format!("table {:?}", t.title))?;
    let mut csv = Vec::new();
    CsvWriter::new(&mut csv).finish(&mut df).with_context(|| format!("cannot encode table {:?} as CSV", t.title))?;
    write_atomic(&base.with_extension("csv"), &csv)?;
    write_parquet(&df, &base.with_extension("parquet"))?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latex_special_characters_are_escaped() {
        assert_eq!(
            tex_escape(r"a_b & 5% $x #1 {y} ~ ^ \z"),
            r"a\_b \& 5\% \$x \#1 \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{}z"
        );
    }
}
