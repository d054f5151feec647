//! The console reporter: a line per case with its verdict (coloured when the output is a
//! terminal, plain under `NO_COLOR` or `--color never`), the failing checks' evidence inline,
//! a progress bar with the running cases and an ETA once a run has taken a second (on a
//! terminal, not with `-q`), and the closing `N passed, N failed, N inconc, N error, N
//! skipped` line.

use super::model::{CaseReport, Skipped, Summary};
use crate::engine::Verdict;
use colored::Colorize;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// How much the console says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// The closing summary line only (`-q`).
    Quiet,
    /// A line per case; a line per failing check with its first evidence line.
    #[default]
    Normal,
    /// Also every evidence line of failing checks, inconclusive checks, notes, cases not run.
    Verbose,
}

/// `--color auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Colour always (overrides `NO_COLOR`).
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether to colour, given whether stdout is a terminal and the value of `NO_COLOR`
    /// (<https://no-color.org>: set and not empty disables colour).
    pub fn resolve(self, stdout_is_tty: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_is_tty && no_color.is_none_or(|v| v.is_empty()),
        }
    }

    /// [`ColorChoice::resolve`] for this process.
    pub fn resolve_here(self) -> bool {
        use std::io::IsTerminal;
        self.resolve(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        )
    }
}

/// Console settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleOptions {
    pub verbosity: Verbosity,
    /// Colour the verdicts.
    pub color: bool,
    /// Draw a progress bar on stderr (only when it is a terminal; see [`progress_wanted`]).
    pub progress: bool,
}

/// Whether a progress bar makes sense here: stderr is a terminal and the run is not quiet.
pub fn progress_wanted(v: Verbosity) -> bool {
    use std::io::IsTerminal;
    v != Verbosity::Quiet && std::io::stderr().is_terminal()
}

/// Colours in one place: plain text unless colour is on.
#[derive(Debug, Clone, Copy)]
pub struct Styles {
    pub color: bool,
}

impl Styles {
    /// The verdict word, padded to 6 columns, coloured by verdict.
    pub fn verdict(&self, v: Verdict) -> String {
        let word = format!("{:<6}", v.as_str());
        if !self.color {
            return word;
        }
        match v {
            Verdict::Pass => word.green().to_string(),
            Verdict::Fail => word.red().bold().to_string(),
            Verdict::Inconc => word.yellow().to_string(),
            Verdict::Error => word.magenta().bold().to_string(),
            Verdict::NotObservable => word.dimmed().to_string(),
        }
    }

    fn check_id(&self, id: &str, v: Verdict) -> String {
        if !self.color {
            return id.to_string();
        }
        match v {
            Verdict::Fail => id.red().to_string(),
            Verdict::Error => id.magenta().to_string(),
            _ => id.yellow().to_string(),
        }
    }

    fn dim(&self, s: &str) -> String {
        if self.color {
            s.dimmed().to_string()
        } else {
            s.to_string()
        }
    }
}

/// Longest evidence excerpt printed inline (characters).
const EXCERPT: usize = 240;

/// Continuation lines of a failing check's first evidence line printed without `-v`.
const CONTINUED: usize = 12;

fn excerpt(s: &str) -> String {
    if s.chars().count() <= EXCERPT {
        return s.to_string();
    }
    let mut e: String = s.chars().take(EXCERPT - 1).collect();
    e.push('…');
    e
}

/// The lines printed for a finished case.
pub fn case_lines(c: &CaseReport, styles: Styles, v: Verbosity) -> Vec<String> {
    if v == Verbosity::Quiet {
        return Vec::new();
    }
    let mut out = vec![format!(
        "{} {} {}",
        styles.verdict(c.verdict),
        c.id,
        styles.dim(&format!("({:.2} s)", c.duration_ms as f64 / 1000.0))
    )];
    for chk in c.failing_checks() {
        let evidence = chk.evidence();
        let mut ev = evidence.iter();
        // An evidence line may carry more lines (a launch failure: its cause, the SUT's last
        // output, the command): shown indented, at most CONTINUED of them without -v.
        let mut first = ev.next().map(String::as_str).unwrap_or("").lines();
        out.push(format!(
            "         {} [{}] {}",
            styles.check_id(chk.id.as_str(), chk.verdict),
            chk.reference,
            excerpt(first.next().unwrap_or(""))
        ));
        let more: Vec<&str> = first.collect();
        let cap = if v == Verbosity::Verbose {
            usize::MAX
        } else {
            CONTINUED
        };
        for l in more.iter().take(cap) {
            out.push(format!("           {}", excerpt(l)));
        }
        if more.len() > cap {
            out.push(format!(
                "           … {} more (-v shows them)",
                crate::text::plural(more.len() - cap, "line")
            ));
        }
        if v == Verbosity::Verbose {
            for e in ev {
                for l in e.lines() {
                    out.push(format!("           {}", excerpt(l)));
                }
            }
        }
    }
    if v == Verbosity::Verbose {
        for n in &c.notes {
            out.push(format!("         note: {}", excerpt(n)));
        }
    }
    out
}

/// The line for a case that did not run (verbose only).
pub fn skipped_line(s: &Skipped, styles: Styles) -> String {
    format!("{} {}: {}", styles.dim("skip  "), s.id, s.reason)
}

/// The console reporter of one run.
pub struct Console {
    opts: ConsoleOptions,
    styles: Styles,
    out: Box<dyn Write + Send>,
    bar: Option<ProgressBar>,
    shown: bool,
    started: Instant,
    running: BTreeMap<usize, String>,
}

/// After how long a run shows its progress bar.
const BAR_AFTER: Duration = Duration::from_secs(1);

impl Console {
    /// A console writing case lines to `out` (stdout in the CLI).
    pub fn new(opts: ConsoleOptions, out: Box<dyn Write + Send>) -> Console {
        Console {
            opts,
            styles: Styles { color: opts.color },
            out,
            bar: None,
            shown: false,
            started: Instant::now(),
            running: BTreeMap::new(),
        }
    }

    pub fn styles(&self) -> Styles {
        self.styles
    }

    /// Writes lines, above the progress bar when it is drawn.
    fn print(&mut self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let out = &mut self.out;
        let mut write = || {
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            let _ = out.flush();
        };
        match (&self.bar, self.shown) {
            (Some(b), true) => b.suspend(write),
            _ => write(),
        }
    }

    pub fn started(&mut self, total: usize) {
        self.started = Instant::now();
        if self.opts.progress && self.opts.verbosity != Verbosity::Quiet && total > 0 {
            // Hidden until the run has taken a second: short runs print no bar at all.
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::hidden());
            let template = if self.opts.color {
                "{spinner:.cyan} [{elapsed_precise}] [{bar:30.cyan/blue}] {pos}/{len} ETA {eta} {wide_msg}"
            } else {
                "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} ETA {eta} {wide_msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            self.bar = Some(bar);
        }
    }

    fn update_message(&mut self) {
        if let Some(b) = &self.bar {
            let mut ids = self.running.values();
            let msg = match (ids.next(), self.running.len()) {
                (Some(first), 1) => format!("running {first}"),
                (Some(first), n) => format!("running {first} (+{})", n - 1),
                _ => String::new(),
            };
            b.set_message(msg);
        }
    }

    pub fn case_started(&mut self, index: usize, id: &str) {
        self.running.insert(index, id.to_string());
        self.update_message();
    }

    pub fn case_finished(&mut self, index: usize, c: &CaseReport) {
        self.running.remove(&index);
        let lines = case_lines(c, self.styles, self.opts.verbosity);
        self.print(&lines);
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        self.update_message();
    }

    pub fn not_run(&mut self, s: &Skipped) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        if self.opts.verbosity == Verbosity::Verbose {
            let l = skipped_line(s, self.styles);
            self.print(&[l]);
        }
    }

    /// Called periodically: shows the bar once the run has taken a second, refreshes the ETA.
    pub fn tick(&mut self) {
        if let Some(b) = &self.bar {
            if !self.shown && self.started.elapsed() >= BAR_AFTER {
                b.set_draw_target(ProgressDrawTarget::stderr());
                self.shown = true;
            }
            if self.shown {
                b.tick();
            }
        }
    }

    /// Clears the bar and prints the closing line.
    /// A note about the whole run (the running SUT died), printed at once, whatever the
    /// verbosity.
    pub fn run_note(&mut self, note: &str) {
        let lines: Vec<String> = note.lines().map(|l| format!("RUN: {l}")).collect();
        self.print(&lines);
    }

    pub fn finished(&mut self, s: &Summary) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        self.shown = false;
        let mut lines = Vec::new();
        // What the whole run must say first (a SUT that died) comes before everything else.
        for n in &s.run_notes {
            lines.extend(n.lines().map(|l| format!("RUN: {l}")));
        }
        if self.opts.verbosity == Verbosity::Verbose {
            lines.extend(
                s.skipped
                    .iter()
                    .filter(|k| !k.not_run)
                    .map(|k| skipped_line(k, self.styles)),
            );
        }
        lines.push(s.counts.line());
        self.print(&lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_choice_honours_no_color_and_the_terminal() {
        use std::ffi::OsStr;
        assert!(ColorChoice::Auto.resolve(true, None));
        assert!(ColorChoice::Auto.resolve(true, Some(OsStr::new(""))));
        assert!(!ColorChoice::Auto.resolve(true, Some(OsStr::new("1"))));
        assert!(!ColorChoice::Auto.resolve(false, None));
        assert!(ColorChoice::Always.resolve(false, Some(OsStr::new("1"))));
        assert!(!ColorChoice::Never.resolve(true, None));
    }
}
