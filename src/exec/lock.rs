//! Locks that keep two processes from writing the same results. They are OS file locks (`flock` on Unix),
//! so the OS releases them when the holder exits, even on `kill -9`; the lock files themselves stay.
//! Dropping a lock unlocks it explicitly rather than only closing the file: a child process forked at that
//! moment (any thread spawning a command) holds a copy of the descriptor until it execs, and a mere close
//! would leave the lock held through that copy.
//!
//! - `<sweep>/.lock`: one `pimsweep run` per sweep folder; a second one is refused at once, naming the holder.
//! - `.store/stages/<id>.lock`: exclusive while a stage trains, shared while a run or a child stage reads its
//!   artifacts, so two sweeps never train the same stage at once and a retraining never pulls a checkpoint
//!   from under a reader. A job takes its parent's shared lock before its own exclusive one (ancestors first),
//!   so lock waits cannot form a cycle.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::status::{hostname, utc_now};

/// Held for as long as a `run` writes a sweep folder; dropping it releases the lock.
#[derive(Debug)]
pub struct SweepLock {
    file: File,
    path: PathBuf,
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl SweepLock {
    /// Takes `<sweep_dir>/.lock` without waiting, recording this process (pid, host, start) in it.
    pub fn acquire(sweep_dir: &Path) -> Result<SweepLock> {
        let path = sweep_dir.join(".lock");
        // Not truncated on open: until we hold the lock, its content names the current holder.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                bail!(
                    "{} is being written by another `pimsweep run` ({}); wait for it to finish, or stop it (lock file: {})",
                    sweep_dir.display(),
                    describe_holder(&holder),
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {} (does this filesystem support file locks?)", path.display()));
            }
        }
        let me = json!({"pid": std::process::id(), "host": hostname(), "started": utc_now()});
        let record = (|| {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{me}")?;
            file.sync_all()
        })();
        record.with_context(|| format!("cannot write the lock file {}", path.display()))?;
        Ok(SweepLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// "pid 1234 on host h, since 2026-…", from the lock file's content.
fn describe_holder(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text.trim()) else {
        return "holder not recorded yet".to_string();
    };
    let pid = v["pid"].as_u64().map_or_else(|| "?".to_string(), |p| p.to_string());
    let host = v["host"].as_str().unwrap_or("?");
    let since = v["started"].as_str().map(|s| format!(", since {s}")).unwrap_or_default();
    format!("pid {pid} on host {host}{since}")
}

/// A held stage lock; dropping it releases the lock.
#[derive(Debug)]
pub struct StageLock(File);

impl Drop for StageLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl StageLock {
    /// The exclusive lock (training), calling `on_wait` first if another process holds the lock.
    pub fn exclusive(path: &Path, on_wait: impl FnOnce()) -> Result<StageLock> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => return Ok(StageLock(file)),
            Err(TryLockError::WouldBlock) => on_wait(),
            Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
        file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(StageLock(file))
    }

    /// A shared lock (reading the stage's artifacts), calling `on_wait` first if a training holds the lock.
    pub fn shared(path: &Path, on_wait: impl FnOnce()) -> Result<StageLock> {
        let file = open_lock_file(path)?;
        match file.try_lock_shared() {
            Ok(()) => return Ok(StageLock(file)),
            Err(TryLockError::WouldBlock) => on_wait(),
            Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
        file.lock_shared().with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(StageLock(file))
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_sweep_lock_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = SweepLock::acquire(dir.path()).unwrap();
        let err = SweepLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains(&held.path().display().to_string()), "{err}");
        drop(held);
        SweepLock::acquire(dir.path()).unwrap();
    }

    /// A child forked while the lock is held keeps a copy of its descriptor until it execs; the copy here
    /// stands for it. Dropping the lock must release it all the same.
    #[test]
    fn a_dropped_lock_is_released_even_while_a_copy_of_its_descriptor_lives() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = SweepLock::acquire(dir.path()).unwrap();
        let sweep_copy = sweep.file.try_clone().unwrap();
        drop(sweep);
        SweepLock::acquire(dir.path()).expect("the sweep lock was released");

        let path = dir.path().join("s.lock");
        let stage = StageLock::exclusive(&path, || panic!("nothing holds it yet")).unwrap();
        let stage_copy = stage.0.try_clone().unwrap();
        drop(stage);
        StageLock::exclusive(&path, || panic!("the stage lock was not released")).unwrap();
        drop((sweep_copy, stage_copy));
    }

    #[test]
    fn stage_locks_wait_for_a_training_and_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stages").join("s.lock");
        let reader = StageLock::shared(&path, || panic!("nothing holds it yet")).unwrap();
        let second_reader = StageLock::shared(&path, || panic!("readers share")).unwrap();
        let told = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let trainer = s.spawn(|| StageLock::exclusive(&path, || told.store(true, std::sync::atomic::Ordering::SeqCst)));
            while !told.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::yield_now();
            }
            drop((reader, second_reader));
            trainer.join().unwrap().unwrap();
        });
    }
}
