//! What the user sees while a sweep executes. On a terminal: one bar for the sweep (done, cached, failed and
//! running counts, ETA) and one bar per running job, driven by the worker's [`JobProgress`]; failures are
//! printed above the bars as they happen. Elsewhere (CI logs, tests): one plain line per job start, finish
//! and failure, never a redraw.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::summary::{JobKind, Outcome, format_wall};
use super::worker::JobProgress;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Bars when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Plain lines on stderr.
    Lines,
    /// Nothing.
    Silent,
}

/// A stage or run as the user reads it.
pub(crate) struct Label<'a> {
    pub kind: JobKind,
    pub id: &'a str,
    pub name: &'a str,
}

impl Label<'_> {
    fn text(&self) -> String {
        format!("{} {} ({})", self.kind.name(), self.name, self.id)
    }
}

#[derive(Default)]
struct Counts {
    done: usize,
    cached: usize,
    failed: usize,
    running: usize,
    /// Jobs this invocation executes and has finished (the sweep bar's position).
    finished: usize,
}

/// Progress of one execution.
pub(crate) struct Progress {
    bars: Option<Bars>,
    lines: bool,
    /// Jobs to execute in this invocation.
    total: usize,
    counts: Mutex<Counts>,
}

struct Bars {
    multi: MultiProgress,
    sweep: ProgressBar,
}

impl Progress {
    /// `total` jobs to execute; `cached` and `failed` already known from the store.
    pub fn new(output: Output, sweep: &str, total: usize, cached: usize, failed: usize) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let (bars, lines) = match output {
            Output::Auto if terminal => (Some(Bars::new(sweep, total)), false),
            Output::Auto | Output::Lines => (None, true),
            Output::Silent => (None, false),
        };
        let progress = Progress { bars, lines, total, counts: Mutex::new(Counts { cached, failed, ..Counts::default() }) };
        progress.refresh(&progress.counts());
        progress
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A line for the user, above the bars or on stderr.
    pub fn note(&self, text: &str) {
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(text);
            }
            None if self.lines => eprintln!("{text}"),
            None => {}
        }
    }

    /// A job starts: its bar (hidden unless bars are drawn).
    pub fn started(&self, label: &Label) -> JobProgress {
        let position = {
            let mut c = self.counts();
            c.running += 1;
            self.refresh(&c);
            c.finished
        };
        if self.lines {
            eprintln!("{} start  {}", self.counter(position), label.text());
        }
        match &self.bars {
            Some(b) => {
                let bar =
                    b.multi.add(ProgressBar::new(0).with_style(job_style()).with_prefix(format!("{} {}", label.kind.name(), label.name)));
                bar.enable_steady_tick(Duration::from_millis(250));
                JobProgress::new(bar)
            }
            None => JobProgress::hidden(),
        }
    }

    /// A job ends (`bar` is None for one that never started: failed because its stage failed).
    pub fn finished(&self, label: &Label, bar: Option<&JobProgress>, outcome: &Outcome, wall_s: f64, log: &Path) {
        if let (Some(b), Some(bar)) = (&self.bars, bar) {
            bar.bar().finish_and_clear();
            b.multi.remove(bar.bar());
        }
        let position = {
            let mut c = self.counts();
            if bar.is_some() {
                c.running = c.running.saturating_sub(1);
            }
            c.finished += 1;
            match outcome {
                Outcome::Done => c.done += 1,
                Outcome::Cached => c.cached += 1,
                Outcome::Failed { .. } => c.failed += 1,
                Outcome::Skipped => {}
            }
            self.refresh(&c);
            c.finished
        };
        let counter = self.counter(position);
        match outcome {
            Outcome::Failed { error, .. } => {
                self.note(&format!("{counter} FAILED {}: {error}\n        log: {}", label.text(), log.display()));
            }
            Outcome::Done if self.lines => eprintln!("{counter} done   {} in {}", label.text(), format_wall(wall_s)),
            Outcome::Cached if self.lines => eprintln!("{counter} cached {} (finished meanwhile by another sweep)", label.text()),
            _ => {}
        }
    }

    /// Clears the bars at the end.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.sweep.finish_and_clear();
            let _ = b.multi.clear();
        }
    }

    fn counter(&self, position: usize) -> String {
        let width = self.total.to_string().len();
        format!("[{position:>width$}/{}]", self.total)
    }

    fn refresh(&self, c: &Counts) {
        if let Some(b) = &self.bars {
            b.sweep.set_position(c.finished as u64);
            b.sweep.set_message(format!("{} done · {} cached · {} failed · {} running", c.done, c.cached, c.failed, c.running));
        }
    }
}

impl Bars {
    fn new(sweep: &str, total: usize) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg} · {elapsed} (ETA {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let sweep = multi.add(ProgressBar::new(total as u64).with_style(style).with_prefix(sweep.to_string()));
        sweep.enable_steady_tick(Duration::from_millis(500));
        Bars { multi, sweep }
    }
}

/// A running job before its worker sets a length: a spinner.
fn job_style() -> ProgressStyle {
    ProgressStyle::with_template("  {spinner} {prefix} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A running job once its worker has set a length (epochs, batches).
pub(crate) fn job_bar_style() -> ProgressStyle {
    ProgressStyle::with_template("  {spinner} {prefix} [{bar:20}] {pos}/{len} {msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
