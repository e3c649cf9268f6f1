//! Draws a [`Plot`] with plotters: SVG always (text is left to the viewer's fonts), PNG when a TrueType
//! font is found at run time (see [`super::png`]): the same drawing code runs on both backends.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

use super::files::write_atomic;
use super::plot::Plot;
use super::select::fmt_num;

pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 500;

/// Series colours: distinguishable, and readable in greyscale print by their order.
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The plot as an SVG document.
pub fn svg(plot: &Plot) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, plot).map_err(|e| anyhow::anyhow!("cannot draw plot {:?}: {e}", plot.title))?;
    }
    Ok(out)
}

/// Writes `plots/<slug>.svg` and, when a font is available, `plots/<slug>.png`; returns the paths written.
pub fn write_plot(sweep_dir: &Path, plot: &Plot) -> anyhow::Result<Vec<PathBuf>> {
    let base = sweep_dir.join("plots").join(&plot.slug);
    let svg_path = base.with_extension("svg");
    write_atomic(&svg_path, svg(plot)?.as_bytes())?;
    let mut written = vec![svg_path];
    if let Some(png) = super::png::render(plot)? {
        let png_path = base.with_extension("png");
        write_atomic(&png_path, &png)?;
        written.push(png_path);
    }
    Ok(written)
}

/// The chart: title, axes with labels, one line per series with ±std error bars where n > 1, a legend.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, plot: &Plot) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (x_lo, x_hi) = padded(plot.ticks.iter().map(|t| t.0), 0.05, 0.5);
    let (y_lo, y_hi) =
        padded(plot.series.iter().flat_map(|s| s.points.iter().flat_map(|(_, p)| [p.mean - p.std, p.mean + p.std])), 0.08, 0.05);
    let key_points: Vec<f64> = plot.ticks.iter().map(|t| t.0).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(&plot.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(TickAxis { lo: x_lo, hi: x_hi, ticks: key_points }, y_lo..y_hi)?;
    let tick_label =
        |x: &f64| plot.ticks.iter().find(|t| (t.0 - x).abs() <= 1e-9 * (1.0 + x.abs())).map(|t| t.1.clone()).unwrap_or_default();
    chart
        .configure_mesh()
        .x_desc(&plot.x_label)
        .y_desc(&plot.y_label)
        .x_label_formatter(&tick_label)
        .y_label_formatter(&|y| fmt_num(*y))
        .x_max_light_lines(0)
        .y_max_light_lines(0)
        .draw()?;
    let cap = (x_hi - x_lo) * 0.006;
    for (i, line) in plot.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(line.points.iter().map(|(x, s)| (*x, s.mean)), style))?
            .label(line.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart.draw_series(line.points.iter().map(|(x, s)| Circle::new((*x, s.mean), 3, color.filled())))?;
        for (x, s) in line.points.iter().filter(|(_, s)| s.n > 1) {
            let (lo, hi) = (s.mean - s.std, s.mean + s.std);
            let bar = vec![(*x - cap, lo), (*x + cap, lo), (*x, lo), (*x, hi), (*x - cap, hi), (*x + cap, hi)];
            chart.draw_series(std::iter::once(PathElement::new(bar, color.stroke_width(1))))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()
}

/// A linear x axis whose ticks are exactly the plotted x values (noise levels, bit widths, drift times),
/// thinned evenly when there are more than fit.
struct TickAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for TickAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let frac = if self.hi > self.lo { (value - self.lo) / (self.hi - self.lo) } else { 0.5 };
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let max = hint.max_num_points().max(1);
        let step = self.ticks.len().div_ceil(max).max(1);
        self.ticks.iter().copied().step_by(step).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The range of some values widened by `frac` of its span on both sides (or by `flat` when it has none).
fn padded(values: impl Iterator<Item = f64>, frac: f64, flat: f64) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * frac } else { flat };
    (lo - pad, hi + pad)
}
