//! Reading sweep files: the file system seam (real or in-memory, for tests and fuzzing), KDL parsing with
//! KDL-1 fallback, and the hints for KDL-1 habits that KDL 2 rejects.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use kdl::KdlDocument;
use miette::{NamedSource, SourceSpan};

use super::diag::{Loc, SweepDiagnostic};

/// Where sweep files come from. The real file system in the CLI; a map in tests and the fuzzer.
pub trait FileSource {
    /// Reads a file as UTF-8 text.
    fn read(&self, path: &Path) -> Result<String, String>;
    /// A canonical identity for a path, used to detect include cycles and repeated includes.
    fn canonical(&self, path: &Path) -> PathBuf;
}

/// The real file system.
pub struct DiskFiles;

impl FileSource for DiskFiles {
    fn read(&self, path: &Path) -> Result<String, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| normalize(path))
    }
}

/// Files held in memory, keyed by normalised path.
#[derive(Default, Clone)]
pub struct MemoryFiles {
    files: BTreeMap<PathBuf, String>,
}

impl MemoryFiles {
    pub fn with(mut self, path: impl AsRef<Path>, text: impl Into<String>) -> Self {
        self.files.insert(normalize(path.as_ref()), text.into());
        self
    }
}

impl FileSource for MemoryFiles {
    fn read(&self, path: &Path) -> Result<String, String> {
        self.files.get(&normalize(path)).cloned().ok_or_else(|| "No such file or directory".to_string())
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        normalize(path)
    }
}

/// Lexically resolves `.` and `..` (no file system access).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// One parsed file: its text (for spans) and its KDL document.
pub struct ParsedFile {
    pub path: PathBuf,
    pub text: Arc<String>,
    pub src: NamedSource<Arc<String>>,
    pub doc: KdlDocument,
}

impl ParsedFile {
    pub fn loc(&self, span: SourceSpan) -> Loc {
        Loc { src: self.src.clone(), text: self.text.clone(), span }
    }
}

/// Parses KDL 2; a file that only parses as KDL 1 is accepted with a warning (returned alongside).
/// Only the first syntax error is reported, never a cascade.
#[allow(clippy::result_large_err)] // once per file, off any hot path
pub fn parse_kdl(path: &Path, display_name: &str, text: String) -> Result<(ParsedFile, Option<SweepDiagnostic>), SweepDiagnostic> {
    let text = Arc::new(text);
    let src = NamedSource::new(display_name, text.clone()).with_language("kdl");
    let file_loc = |span: SourceSpan| Loc { src: src.clone(), text: text.clone(), span };
    let v2_err = match KdlDocument::parse_v2(&text) {
        Ok(doc) => return Ok((ParsedFile { path: path.to_path_buf(), text: text.clone(), src: src.clone(), doc }, None)),
        Err(e) => e,
    };
    // kdl-rs recovers and reports follow-on errors; the unclosed blocks around a failure are consequences,
    // so the earliest other diagnostic is where the file actually went wrong.
    let is_consequence = |d: &&kdl::KdlDiagnostic| d.label.as_deref() == Some("not closed");
    let first = v2_err
        .diagnostics
        .iter()
        .filter(|d| !is_consequence(d))
        .min_by_key(|d| d.span.offset())
        .or_else(|| v2_err.diagnostics.iter().min_by_key(|d| d.span.offset()));
    let (span, message, kdl_help) = match first {
        Some(d) => (d.span, d.message.clone().unwrap_or_else(|| "invalid KDL".into()), d.help.clone()),
        None => (SourceSpan::from(0..0), "invalid KDL".to_string(), None),
    };
    let habit = kdl1_habit_hint(&text, span.offset());
    if let Ok(converted) = KdlDocument::v1_to_v2(&text) {
        // Valid KDL 1: read the converted KDL 2 text so later diagnostics have exact spans.
        if let Ok(doc) = KdlDocument::parse_v2(&converted) {
            let warning =
                SweepDiagnostic::warning(&file_loc(span), "this file is KDL 1; pimsweep reads it, but KDL 2 is the sweep language")
                    .label("KDL 1 syntax")
                    .help(habit.unwrap_or_else(|| "convert it to KDL 2 (see https://kdl.dev)".into()));
            let converted = Arc::new(converted);
            let name = format!("{display_name} (read as KDL 1, shown converted to KDL 2)");
            let csrc = NamedSource::new(name, converted.clone()).with_language("kdl");
            return Ok((ParsedFile { path: path.to_path_buf(), text: converted, src: csrc, doc }, Some(warning)));
        }
    }
    let help = habit.or(kdl_help);
    Err(SweepDiagnostic::error(&file_loc(span), format!("KDL syntax error: {}", message.trim_end_matches('.'))).maybe_help(help))
}

/// A hint for the KDL-1 (and common) habits that KDL 2 rejects, judged from the token at `offset`.
fn kdl1_habit_hint(text: &str, offset: usize) -> Option<String> {
    let token = token_around(text, offset);
    match token {
        "true" | "false" => Some(format!("KDL 2 writes booleans as #{token}")),
        "null" => Some("KDL 2 writes null as #null".into()),
        "inf" | "-inf" | "nan" => Some(format!("KDL 2 writes special floats as #{token}")),
        _ => {
            let t = token.trim_start_matches(['+', '-']);
            if t.starts_with('.') && t[1..].starts_with(|c: char| c.is_ascii_digit()) {
                Some(format!("KDL 2 needs a digit before the decimal point: write `{}`", token.replacen('.', "0.", 1)))
            } else if t.ends_with('.') && t.len() > 1 && t[..t.len() - 1].chars().all(|c| c.is_ascii_digit()) {
                Some(format!("KDL 2 needs a digit after the decimal point: write `{token}0`"))
            } else if t.starts_with(|c: char| c.is_ascii_digit()) && t.chars().any(|c| c.is_ascii_alphabetic()) {
                // Numbers with letters that KDL accepts (1e5, 0x1f) never get here: they parse.
                Some(format!("a value with a unit is a string in KDL: write \"{token}\""))
            } else {
                None
            }
        }
    }
}

/// The bare word containing byte `offset` (identifier-ish characters, dots and signs included).
fn token_around(text: &str, offset: usize) -> &str {
    let offset = offset.min(text.len());
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '.' | '-' | '+' | '_' | '#');
    let bytes_before = &text[..floor_char_boundary(text, offset)];
    let start = bytes_before.char_indices().rev().take_while(|(_, c)| is_word(*c)).last().map_or(bytes_before.len(), |(i, _)| i);
    let rest = &text[start..];
    let len = rest.char_indices().find(|(_, c)| !is_word(*c)).map_or(rest.len(), |(i, _)| i);
    &rest[..len]
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_for_kdl1_habits() {
        assert_eq!(kdl1_habit_hint("a x=true", 4).unwrap(), "KDL 2 writes booleans as #true");
        assert_eq!(kdl1_habit_hint("a null", 3).unwrap(), "KDL 2 writes null as #null");
        assert!(kdl1_habit_hint("noise .5", 6).unwrap().contains("`0.5`"));
        assert!(kdl1_habit_hint("drift 1h", 6).unwrap().contains("\"1h\""));
        assert_eq!(kdl1_habit_hint("foo bar", 4), None);
    }

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(normalize(Path::new("sweeps/../configs/./a.kdl")), PathBuf::from("configs/a.kdl"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }
}
