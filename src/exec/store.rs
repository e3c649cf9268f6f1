//! The result store (docs/RESULTS.md): where each file lives under the results root, and writes that a kill
//! at any moment cannot leave half-done. A file is written to a temporary name in its own folder, synced and
//! renamed over the target; a stage's artifact folder is trained under a temporary name and renamed into
//! place. Temporary names carry the writer's pid and a counter, and are only ever cleaned up by a process
//! holding the lock that guards them (the sweep lock for run folders, the stage lock for stage folders).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use polars::prelude::{DataFrame, ParquetWriter};
use serde::Serialize;

/// Paths under one results root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Content-addressed stage artifacts, shared by every sweep under this root.
    pub fn stages_dir(&self) -> PathBuf {
        self.root.join(".store").join("stages")
    }

    pub fn stage_dir(&self, stage_id: &str) -> PathBuf {
        self.stages_dir().join(stage_id)
    }

    /// Guards training (exclusive) and reading (shared) of a stage's artifacts.
    pub fn stage_lock(&self, stage_id: &str) -> PathBuf {
        self.stages_dir().join(format!("{stage_id}.lock"))
    }

    /// `<root>/<sweep>`; refuses names that would leave the root or hide in `.store`.
    pub fn sweep_dir(&self, sweep: &str) -> Result<PathBuf> {
        let plain = !sweep.is_empty()
            && !sweep.starts_with('.')
            && sweep.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            bail!("sweep name {sweep:?} cannot name a results folder (letters, digits, - _ . and no leading dot)");
        }
        Ok(self.root.join(sweep))
    }

    pub fn run_dir(sweep_dir: &Path, run_id: &str) -> PathBuf {
        sweep_dir.join("runs").join(run_id)
    }
}

/// `<pid>-<n>`: a suffix no other writer uses.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes).map_err(Into::into))
}

/// Writes `value` as pretty JSON (with a final newline) to `path` atomically.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).with_context(|| format!("cannot encode {}", path.display()))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Writes a DataFrame as Parquet to `path` atomically.
pub fn write_parquet_atomic(path: &Path, df: &DataFrame) -> Result<()> {
    let mut df = df.clone();
    write_atomic_with(path, |file| {
        ParquetWriter::new(file).finish(&mut df)?;
        Ok(())
    })
}

fn write_atomic_with(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), unique_suffix()));
    let result = (|| -> Result<()> {
        let mut file = File::create(&tmp)?;
        write(&mut file)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Makes a rename in `dir` durable. Best effort: some filesystems refuse to sync a directory, and the
/// rename is atomic either way.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes the temporary files a killed writer left in `dir` (names `.<file>.tmp-<pid>-<n>`). Call only while
/// holding the lock that guards `dir`.
pub fn remove_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A stage's private training folder, `.store/stages/<id>.tmp-<pid>-<n>`, renamed into place when finished.
pub fn new_stage_temp_dir(store: &Store, stage_id: &str) -> Result<PathBuf> {
    let dir = store.stages_dir().join(format!("{stage_id}.tmp-{}", unique_suffix()));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Removes what killed trainings of this stage left behind (`<id>.tmp-*`, `<id>.old-*`). Call only while
/// holding the stage's exclusive lock: then no one else is writing them.
pub fn remove_stage_leftovers(store: &Store, stage_id: &str) {
    let Ok(entries) = fs::read_dir(store.stages_dir()) else { return };
    let (tmp, old) = (format!("{stage_id}.tmp-"), format!("{stage_id}.old-"));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&tmp) || name.starts_with(&old) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Moves a trained folder to `.store/stages/<id>`, replacing an earlier attempt. Between the two renames the
/// stage has no folder (not done), never a mixed one. Call while holding the stage's exclusive lock.
pub fn install_stage_dir(store: &Store, temp: &Path, stage_id: &str) -> Result<PathBuf> {
    let target = store.stage_dir(stage_id);
    let aside = store.stages_dir().join(format!("{stage_id}.old-{}", unique_suffix()));
    let replaced = match fs::rename(&target, &aside) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot move {} aside", target.display())),
    };
    fs::rename(temp, &target).with_context(|| format!("cannot rename {} to {}", temp.display(), target.display()))?;
    sync_dir(&store.stages_dir());
    if replaced {
        let _ = fs::remove_dir_all(&aside);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_json_atomic(&path, &serde_json::json!({"two": 2})).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\n  \"two\": 2\n}\n");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn atomic_write_names_the_file_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("a.json");
        let err = format!("{:#}", write_atomic(&path, b"x").unwrap_err());
        assert!(err.contains("cannot write") && err.contains("a.json"), "{err}");
    }

    #[test]
    fn sweep_names_stay_inside_the_root() {
        let store = Store::new("r");
        assert!(store.sweep_dir("glue-all").is_ok());
        for bad in ["", "..", ".store", "a/b", "../x"] {
            assert!(store.sweep_dir(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn installing_a_stage_replaces_the_earlier_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        for attempt in ["first", "second"] {
            let tmp = new_stage_temp_dir(&store, "s1").unwrap();
            fs::write(tmp.join("f"), attempt).unwrap();
            install_stage_dir(&store, &tmp, "s1").unwrap();
        }
        assert_eq!(fs::read_to_string(store.stage_dir("s1").join("f")).unwrap(), "second");
        let names: Vec<_> = fs::read_dir(store.stages_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("s1")]);
    }
}
