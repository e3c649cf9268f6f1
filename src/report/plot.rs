//! A plot spec as data: one series per value of `series`, each point the mean (± population std) of the
//! selected records at one value of `x`. Numeric axes (noise, bits, drift in seconds, numeric parameters)
//! are placed by value, others one slot per value; [`super::plot_draw`] renders the result.

use std::collections::HashMap;

use super::collect::Record;
use super::plan_file::{PlanFile, PlotSpec};
use super::select::{Stat, label, metrics_used, numeric, ordered_values, select};

/// A plot ready to draw.
#[derive(Debug, Clone)]
pub struct Plot {
    pub title: String,
    pub slug: String,
    pub x_label: String,
    pub y_label: String,
    /// Tick positions (in drawing coordinates: log10 of the value on a log axis) and their labels.
    pub ticks: Vec<(f64, String)>,
    pub series: Vec<Line>,
    pub notes: Vec<String>,
}

/// One series.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    /// (x position, statistic), ascending in x.
    pub points: Vec<(f64, Stat)>,
}

impl Plot {
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.points.is_empty())
    }
}

/// Builds the plot of `spec` from the collected records.
pub fn build_plot(spec: &PlotSpec, slug: &str, records: &[Record], plan: &PlanFile) -> Plot {
    let mut shown = vec![spec.x.as_str()];
    shown.extend(spec.series.as_deref());
    let selection = select(records, &spec.filter, &shown, spec.metric.as_deref());
    let mut notes = selection.notes;
    // Records without an x value cannot be placed.
    let placed: Vec<&Record> = selection.records.iter().copied().filter(|r| r.axis(&spec.x).is_some()).collect();
    let xs: Vec<String> = ordered_values(&spec.x, &placed, plan).into_iter().flatten().collect();
    let (positions, log_note) = positions(&spec.x, &xs, spec.log_x);
    let log_refused = log_note.is_some();
    notes.extend(log_note);
    let ticks: Vec<(f64, String)> = xs.iter().zip(&positions).map(|(x, p)| (*p, label(&spec.x, &Some(x.clone())))).collect();
    let position: HashMap<&str, f64> = xs.iter().map(String::as_str).zip(positions.iter().copied()).collect();

    let series_values = match &spec.series {
        Some(axis) => ordered_values(axis, &placed, plan),
        None => vec![None],
    };
    let series = series_values
        .iter()
        .map(|sv| {
            let in_series: Vec<&Record> =
                placed.iter().copied().filter(|r| spec.series.as_ref().is_none_or(|axis| r.axis(axis) == *sv)).collect();
            let points = xs
                .iter()
                .filter_map(|x| {
                    let values: Vec<f64> = in_series.iter().filter(|r| r.axis(&spec.x).as_deref() == Some(x)).map(|r| r.value).collect();
                    Stat::of(&values).map(|s| (position[x.as_str()], s))
                })
                .collect();
            let name = match &spec.series {
                Some(axis) => format!("{axis}={}", label(axis, sv)),
                None => spec.metric.clone().unwrap_or_else(|| "table metric".into()),
            };
            Line { name, points }
        })
        .collect();
    let x_label = match spec.x.as_str() {
        "drift" => "drift: time after programming".to_string(),
        other => other.to_string(),
    };
    let x_label = if spec.log_x && !log_refused { format!("{x_label} (log scale)") } else { x_label };
    // Without a metric in the spec, name the table metrics actually drawn (several when tasks are pooled).
    let used = metrics_used(&placed);
    let y_label = spec.metric.clone().unwrap_or_else(|| if used.is_empty() { "table metric".into() } else { used.join(" / ") });
    Plot { title: spec.title.clone(), slug: slug.to_string(), x_label, y_label, ticks, series, notes }
}

/// Drawing positions of the x values (in display order), and a note when a log axis had to give way.
/// On a log axis, 0 (e.g. drift right after programming) is drawn one decade below the smallest positive
/// value, labelled with its own value, since log 0 does not exist.
fn positions(axis: &str, xs: &[String], log: bool) -> (Vec<f64>, Option<String>) {
    let numbers: Option<Vec<f64>> = xs.iter().map(|x| numeric(axis, x)).collect();
    let Some(numbers) = numbers else {
        let note = log.then(|| format!("{axis} is not numeric: drawn on a categorical axis, not a log one."));
        return ((0..xs.len()).map(|i| i as f64).collect(), note);
    };
    if !log {
        return (numbers, None);
    }
    let Some(min_pos) = numbers.iter().copied().filter(|x| *x > 0.0).reduce(f64::min) else {
        return (numbers, Some(format!("{axis} has no positive value: drawn on a linear axis, not a log one.")));
    };
    if numbers.iter().any(|x| *x < 0.0) {
        return (numbers, Some(format!("{axis} has negative values: drawn on a linear axis, not a log one.")));
    }
    let zero_at = min_pos.log10() - 1.0;
    (numbers.iter().map(|&x| if x == 0.0 { zero_at } else { x.log10() }).collect(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn log_axis_places_zero_a_decade_below_the_smallest_time() {
        let (p, note) = positions("drift", &strings(&["0s", "1h", "1d"]), true);
        assert_eq!(note, None);
        assert!((p[0] - (3600f64.log10() - 1.0)).abs() < 1e-12);
        assert!((p[1] - 3600f64.log10()).abs() < 1e-12);
        assert!((p[2] - 86_400f64.log10()).abs() < 1e-12);
    }

    #[test]
    fn axes_that_cannot_be_logarithmic_say_so() {
        let (p, note) = positions("technology", &strings(&["sram", "reram"]), true);
        assert_eq!(p, vec![0.0, 1.0]);
        assert!(note.unwrap().contains("categorical"));
        let (p, note) = positions("noise", &strings(&["0", "0.1"]), false);
        assert_eq!((p, note), (vec![0.0, 0.1], None));
        assert!(positions("noise", &strings(&["0"]), true).1.unwrap().contains("no positive value"));
    }
}
