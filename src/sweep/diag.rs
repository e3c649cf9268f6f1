//! Diagnostics for sweep files: every problem a user can make in a sweep points at the span in their file,
//! says what is wrong, and, where we can guess, how to fix it. Rendered by miette.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceSpan};

/// Where something was written: a file of the [`SourceMap`](super::source::SourceMap) and a byte span in it.
#[derive(Debug, Clone)]
pub struct Loc {
    pub src: NamedSource<Arc<String>>,
    pub text: Arc<String>,
    pub span: SourceSpan,
}

impl Loc {
    /// 1-based line of the span's start, for messages and tests.
    pub fn line(&self) -> usize {
        let end = self.span.offset().min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// The file name as the user gave it (relative to the sweep, or as typed on the command line).
    pub fn file(&self) -> &str {
        self.src.name()
    }

    /// The source text under the span.
    pub fn snippet(&self) -> &str {
        let start = self.span.offset().min(self.text.len());
        let end = (start + self.span.len()).min(self.text.len());
        self.text.get(start..end).unwrap_or("")
    }
}

/// One problem (or warning) in a sweep file.
#[derive(Debug, Clone)]
pub struct SweepDiagnostic {
    pub severity: Severity,
    pub message: String,
    pub loc: Option<Loc>,
    pub label: String,
    pub help: Option<String>,
    /// Secondary places ("first defined here"), possibly in other files.
    pub related: Vec<SweepDiagnostic>,
}

impl SweepDiagnostic {
    pub fn error(loc: &Loc, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, Some(loc.clone()), message)
    }

    pub fn warning(loc: &Loc, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, Some(loc.clone()), message)
    }

    /// An error with no place in a file (e.g. the sweep file itself cannot be read).
    pub fn bare(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, None, message)
    }

    fn new(severity: Severity, loc: Option<Loc>, message: impl Into<String>) -> Self {
        SweepDiagnostic { severity, message: message.into(), loc, label: "here".into(), help: None, related: Vec::new() }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    pub fn related(mut self, loc: &Loc, label: impl Into<String>) -> Self {
        let label = label.into();
        let mut note = SweepDiagnostic::new(Severity::Advice, Some(loc.clone()), label.clone());
        note.label = label;
        self.related.push(note);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// 1-based line of the primary span (0 when the diagnostic has no place).
    pub fn line(&self) -> usize {
        self.loc.as_ref().map_or(0, Loc::line)
    }

    /// Renders the diagnostic as the terminal shows it (colours off when `color` is false).
    pub fn render(&self, color: bool) -> String {
        let theme = if color { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = format!("{self}");
        }
        out
    }
}

impl fmt::Display for SweepDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SweepDiagnostic {}

impl Diagnostic for SweepDiagnostic {
    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.loc.as_ref().map(|l| &l.src as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let loc = self.loc.as_ref()?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(Some(self.label.clone()), loc.span))))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(self.related.iter().map(|d| d as &dyn Diagnostic)))
    }
}

/// Collects diagnostics while a sweep is read, so independent problems are all reported at once.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<SweepDiagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: SweepDiagnostic) {
        self.items.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(SweepDiagnostic::is_error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &SweepDiagnostic> {
        self.items.iter().filter(|d| !d.is_error())
    }
}

/// The closest candidate to a misspelt name, if one is close enough to be a likely typo: few edits
/// (transpositions count as one, so `pmc` finds `pcm`) or a high Jaro-Winkler similarity (shared prefixes).
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .filter_map(|c| {
            let edits = strsim::damerau_levenshtein(name, c);
            let similarity = strsim::jaro_winkler(name, c);
            let close = edits <= (c.chars().count() / 3).max(1) || similarity > 0.8;
            close.then_some((edits, -similarity, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, c)| format!("did you mean `{c}`?"))
}
