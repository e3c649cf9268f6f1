//! A table spec laid out like the published tables: the selected records pivoted `rows` × `columns`, each
//! cell the mean (± population std and count) of its values, and an optional `Avg` column.

use std::collections::HashMap;

use super::collect::Record;
use super::plan_file::{PlanFile, TableSpec};
use super::select::{Stat, ordered_values, select};

/// A laid-out table, ready to render.
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub slug: String,
    pub row_axis: String,
    pub column_axis: String,
    /// Canonical values (None: the axis does not apply), in display order.
    pub rows: Vec<Option<String>>,
    pub columns: Vec<Option<String>>,
    /// `cells[row][column]`; None where no record falls.
    pub cells: Vec<Vec<Option<Stat>>>,
    /// Present when the spec asks for an average: per row, the mean of its cells' means, None unless the row
    /// has every column (a partial mean would not compare with the other rows).
    pub average: Option<Vec<Option<f64>>>,
    /// How cells were computed (metric, drift, pooled axes), for the reader.
    pub notes: Vec<String>,
}

/// Builds the table of `spec` from the collected records.
pub fn build_table(spec: &TableSpec, slug: &str, records: &[Record], plan: &PlanFile) -> Table {
    let selection = select(records, &spec.filter, &[&spec.rows, &spec.columns], spec.metric.as_deref());
    let rows = ordered_values(&spec.rows, &selection.records, plan);
    let columns = ordered_values(&spec.columns, &selection.records, plan);
    let mut values: HashMap<(Option<String>, Option<String>), Vec<f64>> = HashMap::new();
    for r in &selection.records {
        values.entry((r.axis(&spec.rows), r.axis(&spec.columns))).or_default().push(r.value);
    }
    let cells: Vec<Vec<Option<Stat>>> = rows
        .iter()
        .map(|row| columns.iter().map(|col| values.get(&(row.clone(), col.clone())).and_then(|v| Stat::of(v))).collect())
        .collect();
    let average = spec.average.then(|| {
        cells
            .iter()
            .map(|row| {
                let means: Option<Vec<f64>> = row.iter().map(|c| c.map(|s| s.mean)).collect();
                means.filter(|m| !m.is_empty()).map(|m| m.iter().sum::<f64>() / m.len() as f64)
            })
            .collect()
    });
    let mut notes = selection.notes;
    if selection.records.is_empty() {
        notes.insert(0, "No finished run matches this table yet.".into());
    }
    if cells.iter().flatten().flatten().any(|s| s.n > 1) {
        notes.push("Cells: mean ± population standard deviation (n values); a plain mean where n = 1.".into());
    }
    if spec.average {
        notes.push("Avg: plain mean of the row's cells; blank where the row misses a column.".into());
    }
    Table {
        title: spec.title.clone(),
        slug: slug.to_string(),
        row_axis: spec.rows.clone(),
        column_axis: spec.columns.clone(),
        rows,
        columns,
        cells,
        average,
        notes,
    }
}
