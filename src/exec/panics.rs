//! Panics inside a job. The executor reports them as the job's error, with where they happened, instead of
//! letting the default hook print over the progress bars. Each job's rayon threads are named after the job
//! (`pimsweep-job<serial>-<i>`); a process-wide hook, installed once, records a panic on such a thread under
//! its job's serial, and passes every other panic to the hook that was there before.

use std::collections::BTreeMap;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, PoisonError};

const PREFIX: &str = "pimsweep-job";

static RECORDED: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());

/// A serial number for a new job.
pub(crate) fn next_job() -> u64 {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// The name of the `i`th thread of job `job`'s pool.
pub(crate) fn thread_name(job: u64, i: usize) -> String {
    format!("{PREFIX}{job}-{i}")
}

/// Installs the hook (once per process).
pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| match std::thread::current().name().and_then(job_of) {
            Some(job) => {
                let mut recorded = RECORDED.lock().unwrap_or_else(PoisonError::into_inner);
                recorded.entry(job).or_insert_with(|| describe(info));
            }
            None => previous(info),
        }));
    });
}

/// What the hook recorded for `job` (the first panic of its threads), removing it.
pub(crate) fn take(job: u64) -> Option<String> {
    RECORDED.lock().unwrap_or_else(PoisonError::into_inner).remove(&job)
}

fn job_of(thread: &str) -> Option<u64> {
    thread.strip_prefix(PREFIX)?.split_once('-')?.0.parse().ok()
}

/// `index out of bounds at src/pim/tile.rs:42:9`.
fn describe(info: &PanicHookInfo) -> String {
    let message = message(info.payload());
    match info.location() {
        Some(at) => format!("{message} at {}:{}:{}", at.file(), at.line(), at.column()),
        None => message,
    }
}

/// A panic payload's text.
pub(crate) fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-text panic payload)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_threads_are_recognised_by_name() {
        assert_eq!(job_of(&thread_name(17, 3)), Some(17));
        assert_eq!(job_of("pimsweep-slot-1"), None);
        assert_eq!(job_of("main"), None);
    }
}
