//! PNG plots without system libraries: plotters' pure-Rust bitmap backend for shapes, glyphs rasterised
//! with `ab_glyph` from a TrueType font found at run time, and the `png` crate to encode. No font is
//! compiled in: `PIMSWEEP_FONT` names one, else common system locations are tried; without a font the
//! PNG is skipped (the SVG, whose text the viewer draws, is always written).

use std::path::PathBuf;
use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use plotters::prelude::*;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
    text_anchor::{HPos, VPos},
};
use plotters_bitmap::BitMapBackendError;

use super::plot::Plot;
use super::plot_draw::{HEIGHT, WIDTH, draw};

/// Fonts tried in order when `PIMSWEEP_FONT` is not set (Debian/Ubuntu, Fedora, Arch, macOS, Windows).
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// The font PNGs are drawn with, loaded once; None when no usable font exists.
pub fn font() -> Option<&'static (PathBuf, FontVec)> {
    static FONT: OnceLock<Option<(PathBuf, FontVec)>> = OnceLock::new();
    FONT.get_or_init(|| {
        let from_env = std::env::var_os("PIMSWEEP_FONT").map(PathBuf::from);
        from_env.into_iter().chain(FONT_CANDIDATES.iter().map(PathBuf::from)).find_map(|path| {
            let bytes = std::fs::read(&path).ok()?;
            FontVec::try_from_vec(bytes).ok().map(|f| (path, f))
        })
    })
    .as_ref()
}

/// The plot as PNG bytes; Ok(None) when no font is available.
pub fn render(plot: &Plot) -> anyhow::Result<Option<Vec<u8>>> {
    let Some((_, font)) = font() else { return Ok(None) };
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let backend = GlyphBitmap { inner: BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)), font };
        let root = backend.into_drawing_area();
        draw(&root, plot).map_err(|e| anyhow::anyhow!("cannot draw plot {:?} as PNG: {e}", plot.title))?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(Some(out))
}

/// plotters' bitmap backend, with text drawn and measured by a real font (its own text drawing needs the
/// `ttf` feature, which links the system's fontconfig and freetype).
struct GlyphBitmap<'a> {
    inner: BitMapBackend<'a>,
    font: &'a FontVec,
}

/// A line of text laid out at the origin: (glyph, x of its pen position); the width; ascent and descent.
struct Layout {
    glyphs: Vec<(ab_glyph::GlyphId, f32)>,
    width: f32,
    ascent: f32,
    descent: f32,
}

impl GlyphBitmap<'_> {
    /// plotters gives the text size in pixels for the whole line height; fonts scale by em height.
    fn layout(&self, text: &str, size: f64) -> Layout {
        let scaled = self.font.as_scaled(PxScale::from(size as f32));
        let mut x = 0.0;
        let mut prev = None;
        let mut glyphs = Vec::new();
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                x += scaled.kern(p, id);
            }
            glyphs.push((id, x));
            x += scaled.h_advance(id);
            prev = Some(id);
        }
        Layout { glyphs, width: x, ascent: scaled.ascent(), descent: scaled.descent() }
    }
}

impl DrawingBackend for GlyphBitmap<'_> {
    type ErrorType = BitMapBackendError;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let l = self.layout(text, style.size());
        Ok((l.width.ceil() as u32, (l.ascent - l.descent).ceil() as u32))
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size();
        let l = self.layout(text, size);
        let height = l.ascent - l.descent;
        // Offsets of the text's top-left corner from the anchor, before rotation.
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => -l.width / 2.0,
            HPos::Right => -l.width,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.get_size();
        let scale = PxScale::from(size as f32);
        for (id, x) in l.glyphs {
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(dx + x, dy + l.ascent));
            let Some(outline) = self.font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            let mut result = Ok(());
            outline.draw(|gx, gy, coverage| {
                if coverage <= 0.0 || result.is_err() {
                    return;
                }
                let (tx, ty) = transform.transform(bounds.min.x as i32 + gx as i32, bounds.min.y as i32 + gy as i32);
                let (px, py) = (pos.0 + tx, pos.1 + ty);
                if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                    let c = BackendColor { alpha: color.alpha * f64::from(coverage.min(1.0)), rgb: color.rgb };
                    result = self.inner.draw_pixel((px, py), c);
                }
            });
            result?;
        }
        Ok(())
    }
}
