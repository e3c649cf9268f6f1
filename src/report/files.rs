//! File plumbing shared by the report writers: atomic writes (temporary file in the same folder, fsync,
//! rename, as docs/RESULTS.md requires), JSON reads whose errors name the file, and unique slugs.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;

/// Writes `bytes` to `path` so that a reader sees either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Reads and parses a JSON file; the error names the file and, from serde, the field and position.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))
}

/// Removes the files in `dir` with one of `extensions` whose name is not in `keep`: outputs of a table or
/// plot since removed or renamed in the sweep, or a PNG left by a render that had a font (it would show a
/// plot older than its SVG). Other files are left alone. Returns the files removed.
pub fn prune(dir: &Path, keep: &HashSet<String>, extensions: &[&str]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e));
        let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if ours && path.is_file() && !keep.contains(&name) {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove stale {}", path.display()))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// File-name-safe slugs, unique within one folder (`post-training-transform`, then `…-2`).
#[derive(Default)]
pub struct Slugs {
    taken: HashSet<String>,
}

impl Slugs {
    /// A slug of `title` not handed out before; `fallback` when the title has no letters or digits.
    pub fn unique(&mut self, title: &str, fallback: &str) -> String {
        let base = slug(title);
        let base = if base.is_empty() { fallback.to_string() } else { base };
        let mut candidate = base.clone();
        let mut n = 2;
        while !self.taken.insert(candidate.clone()) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        candidate
    }
}

/// Lower-case ASCII letters and digits, every other run of characters one `-`.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_readable() {
        let mut s = Slugs::default();
        assert_eq!(s.unique("Post-training transform", "table"), "post-training-transform");
        assert_eq!(s.unique("SST-2 accuracy, ReRAM noise × bits", "table"), "sst-2-accuracy-reram-noise-bits");
        assert_eq!(s.unique("post training  transform!", "table"), "post-training-transform-2");
        assert_eq!(s.unique("××", "table"), "table");
        assert_eq!(s.unique("", "table"), "table-2");
    }

    #[test]
    fn prune_removes_only_stale_outputs() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["kept.md", "kept.csv", "old.md", "old.parquet", "notes.txt", "old.png"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let keep = HashSet::from(["kept.md".to_string(), "kept.csv".to_string()]);
        let removed = prune(dir.path(), &keep, &["md", "tex", "csv", "parquet"]).unwrap();
        assert_eq!(removed, vec![dir.path().join("old.md"), dir.path().join("old.parquet")]);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["kept.csv", "kept.md", "notes.txt", "old.png"]);
        assert!(prune(&dir.path().join("missing"), &keep, &["md"]).unwrap().is_empty());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }
}
