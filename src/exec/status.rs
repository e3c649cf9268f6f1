//! `status.json` of a run or a stage: its state, timings and provenance (docs/RESULTS.md). Only `done` is
//! trusted; a missing or unreadable status, and a `running` one (left behind by a killed process, since every
//! live writer holds the lock that guards it), all mean "not done".

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::store::write_json_atomic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Pending,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Status {
    pub state: State,
    /// RFC 3339, UTC, seconds (`2026-11-22T01:40:00Z`).
    pub started: Option<String>,
    pub finished: Option<String>,
    pub wall_s: Option<f64>,
    pub host: String,
    pub pid: u32,
    pub threads: usize,
    pub device: String,
    pub pimsweep: String,
    /// The error's first line when failed.
    pub error: Option<String>,
}

impl Status {
    /// A job that starts now in this process.
    pub fn running(threads: usize, device: &str) -> Status {
        Status {
            state: State::Running,
            started: Some(utc_now()),
            finished: None,
            wall_s: None,
            host: hostname(),
            pid: std::process::id(),
            threads,
            device: device.to_string(),
            pimsweep: env!("CARGO_PKG_VERSION").to_string(),
            error: None,
        }
    }

    /// The same job, finished after `wall_s` seconds: done, or failed with `error`.
    pub fn finished(mut self, wall_s: f64, error: Option<String>) -> Status {
        self.state = if error.is_some() { State::Failed } else { State::Done };
        self.finished = Some(utc_now());
        self.wall_s = Some(wall_s);
        self.error = error;
        self
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

/// The status in `dir/status.json`; None when missing or unreadable (both mean not done).
pub fn read_status(dir: &Path) -> Option<Status> {
    let text = std::fs::read_to_string(dir.join("status.json")).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn write_status(dir: &Path, status: &Status) -> anyhow::Result<()> {
    write_json_atomic(&dir.join("status.json"), status)
}

/// This machine's name, for provenance and lock messages.
pub fn hostname() -> String {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let from_env = || std::env::var("HOSTNAME").ok().or_else(|| std::env::var("COMPUTERNAME").ok());
    from_kernel.or_else(from_env).map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).unwrap_or_else(|| "unknown".into())
}

/// Now as RFC 3339 UTC with whole seconds.
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format_utc(secs)
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar).
pub fn format_utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Howard Hinnant's days → (year, month, day), for days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_311_600), "2026-11-22T01:40:00Z");
    }

    #[test]
    fn unreadable_status_is_not_done() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_status(dir.path()), None);
        std::fs::write(dir.path().join("status.json"), "{\"state\": \"do").unwrap();
        assert_eq!(read_status(dir.path()), None);
        let done = Status::running(2, "cpu").finished(1.5, None);
        write_status(dir.path(), &done).unwrap();
        assert_eq!(read_status(dir.path()), Some(done));
    }
}
