//! What an execution did: one report per stage and run of the selection, the counts the user sees, and the
//! summary `pimsweep run` prints at the end.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::budget::Budget;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Stage,
    Run,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Stage => "stage",
            JobKind::Run => "run",
        }
    }
}

/// How one stage or run ended in this invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Computed now.
    Done,
    /// Already done: by an earlier invocation, or (a stage) by another sweep sharing the store.
    Cached,
    /// Failed now, or (`earlier`) in an earlier invocation and not retried. `error` is the first line.
    Failed { error: String, earlier: bool },
    /// A stage that is not done but that no selected run needs now (their results are done).
    Skipped,
}

impl Outcome {
    pub fn failed(error: impl Into<String>) -> Outcome {
        Outcome::Failed { error: error.into(), earlier: false }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }

    /// Done or cached: its results can be trusted.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Done | Outcome::Cached)
    }
}

/// One stage or run of the selection.
#[derive(Debug, Clone)]
pub struct JobReport {
    pub kind: JobKind,
    pub id: String,
    pub name: String,
    pub outcome: Outcome,
    /// Failed without running, because a stage it starts from failed.
    pub blocked: bool,
    /// Its log.txt (which exists once it has run or failed).
    pub log: PathBuf,
    /// How long this invocation spent on it (None when it did not run now).
    pub wall_s: Option<f64>,
}

/// The result of [`execute`](super::execute).
#[derive(Debug, Clone)]
pub struct Summary {
    pub sweep: String,
    /// `<results>/<sweep>`.
    pub dir: PathBuf,
    /// Stages (parents first), then runs, in plan order.
    pub jobs: Vec<JobReport>,
    pub budget: Budget,
    pub wall: Duration,
}

impl Summary {
    pub fn count(&self, kind: JobKind, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.jobs.iter().filter(|j| j.kind == kind && pred(&j.outcome)).count()
    }

    pub fn failures(&self) -> impl Iterator<Item = &JobReport> {
        self.jobs.iter().filter(|j| j.outcome.is_failed())
    }

    /// True when no stage or run of the selection is failed.
    pub fn success(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The text `pimsweep run` prints at the end.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let runs = self.jobs.iter().filter(|j| j.kind == JobKind::Run).count();
        let stages = self.jobs.iter().filter(|j| j.kind == JobKind::Stage).count();
        let _ = write!(out, "{}: {}", self.sweep, self.counts(JobKind::Run, runs, "run", "done"));
        if stages > 0 {
            let _ = write!(out, "; {}", self.counts(JobKind::Stage, stages, "stage", "trained"));
        }
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let _ = writeln!(
            out,
            "; {} × {}; {}",
            plural(self.budget.jobs, "job"),
            plural(self.budget.threads_per_job, "thread"),
            format_wall(self.wall.as_secs_f64())
        );
        if self.failures().next().is_some() {
            let _ = writeln!(out, "failed:");
            for j in self.failures().filter(|j| !j.blocked) {
                let Outcome::Failed { error, earlier } = &j.outcome else { continue };
                let when = if *earlier { " (in an earlier invocation)" } else { "" };
                let _ = writeln!(out, "  {} {} {}{when}: {error}\n      log: {}", j.kind.name(), j.id, j.name, j.log.display());
            }
            let blocked = |kind| self.failures().filter(|j| j.blocked && j.kind == kind).count();
            let (runs, stages) = (blocked(JobKind::Run), blocked(JobKind::Stage));
            if runs + stages > 0 {
                let what = match (runs, stages) {
                    (r, 0) => plural(r, "run"),
                    (0, s) => plural(s, "stage"),
                    (r, s) => format!("{} and {}", plural(r, "run"), plural(s, "stage")),
                };
                let _ = writeln!(out, "  {what} not run because a stage they start from failed");
            }
            if self.failures().any(|j| matches!(j.outcome, Outcome::Failed { earlier: true, .. })) {
                let _ = writeln!(out, "failures of an earlier invocation are not rerun unless you add --retry-failed");
            }
        }
        let _ = writeln!(out, "results: {}", self.dir.display());
        out
    }

    /// "24 runs: 20 done, 3 cached, 1 failed".
    fn counts(&self, kind: JobKind, total: usize, noun: &str, done_word: &str) -> String {
        let parts = [
            (self.count(kind, |o| *o == Outcome::Done), done_word),
            (self.count(kind, |o| *o == Outcome::Cached), "cached"),
            (self.count(kind, Outcome::is_failed), "failed"),
            (self.count(kind, |o| *o == Outcome::Skipped), "not needed"),
        ];
        let listed: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, w)| format!("{n} {w}")).collect();
        format!("{total} {noun}{}: {}", if total == 1 { "" } else { "s" }, listed.join(", "))
    }
}

/// `0.4s`, `12.3s`, `2m 05s`, `1h 02m`.
pub fn format_wall(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m {:02}s", (s / 60.0) as u64, s as u64 % 60)
    } else {
        format!("{}h {:02}m", (s / 3600.0) as u64, (s as u64 / 60) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_read_naturally() {
        assert_eq!(format_wall(0.42), "0.4s");
        assert_eq!(format_wall(125.0), "2m 05s");
        assert_eq!(format_wall(3720.0), "1h 02m");
    }
}
