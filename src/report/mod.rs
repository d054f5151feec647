//! Reports for people and pipelines, all fed by the run's one event stream
//! ([`crate::engine::runner::RunEvent`]) and all rendered from one model
//! ([`model::Summary`], written as `summary.json`), so a shard's or a merged summary renders
//! the same reports.
//!
//! - [`model`]: the summary schema; a case's outcome → its report (ladder, expected steps).
//! - [`console`]: a line per case, inline evidence, progress bar, the closing counts line.
//! - [`junit`]: `junit.xml` (quick-junit), one testsuite per figure.
//! - [`html`], [`svg`]: `index.html` and a page per case with the observed and the expected
//!   ladder as SVG.
//! - [`merge`]: joins shard summaries (`cpm-harness merge`).
//!
//! - [`pctr`]: the conformance test report (ISO/IEC 9646-5 PCTR): identification, PICS,
//!   results by figure × SUT role, failed checks, skipped cases by reason.
//!
//! Files of a run folder: `cases/<case>.html` as each case finishes, `summary.json`
//! (rewritten as cases finish), `<case>.trace.jsonl` for a case that did not pass, then at the
//! end `junit.xml`, `index.html` and `docs/checks.md`.
//!
//! What a run keeps is sized for use: a passing case's ladder is drawn on its page and not
//! repeated in `summary.json` or JUnit (a case that did not pass keeps it everywhere), and
//! `--keep failed` drops the captures of passing cases ([`Keep`]). `merge` copies the shards'
//! case pages rather than redrawing them.

pub mod console;
pub mod html;
pub mod junit;
pub mod merge;
pub mod model;
pub mod pctr;
pub mod svg;

use crate::engine::case::RunSettings;
use crate::engine::outcome::CaseOutcome;
use crate::engine::profile::Profile;
use crate::engine::runner::{execute, RunEvent, RunSink, Schedule};
use crate::engine::spec::Case;
use crate::engine::suite::Suite;
use crate::engine::Verdict;
use crate::files::write_atomic;
use model::{case_report, Counts, Skipped, Summary, SCHEMA_VERSION};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Exit code: every case passed.
pub const EXIT_PASSED: u8 = 0;
/// Exit code: a case failed or was inconclusive.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: a usage or configuration error (bad flag, suite, profile, summary file).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a harness error (a case's verdict is `error`, or the reports cannot be written).
pub const EXIT_HARNESS: u8 = 3;
/// Exit code: no case ran (the filter or partition selected none).
pub const EXIT_NO_CASE: u8 = 4;

/// The exit code a summary stands for: 4 when no case ran, 1 when a case failed or was
/// inconclusive, else 3 when a case ended in a harness error, else 0.
pub fn exit_code(s: &Summary) -> u8 {
    let c = &s.counts;
    if s.cases.is_empty() {
        EXIT_NO_CASE
    } else if c.failed > 0 || c.inconc > 0 {
        EXIT_FAILED
    } else if c.error > 0 {
        EXIT_HARNESS
    } else {
        EXIT_PASSED
    }
}

/// An error with the exit code it stands for (the CLI exits with it).
#[derive(Debug)]
pub struct CodedError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl std::fmt::Display for CodedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for CodedError {}

/// Wraps `e` so the CLI exits with `code`.
pub fn coded(code: u8, e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(CodedError { code, error: e })
}

/// The exit code an error carries, if it was made with [`coded`].
pub fn code_of(e: &anyhow::Error) -> Option<u8> {
    e.downcast_ref::<CodedError>().map(|c| c.code)
}

/// Writes `summary.json` atomically (compact JSON: a full run's ladders make it large).
pub fn write_summary(dir: &Path, s: &Summary) -> anyhow::Result<()> {
    write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string(s)?.as_bytes(),
    )?;
    Ok(())
}

/// How often a running run rewrites `summary.json` (also at the end and on interrupt).
const SUMMARY_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Which captures a run keeps (`run --keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Keep {
    /// Every case's capture and topology map (evidence a third party can re-judge).
    #[default]
    All,
    /// Only those of cases that did not pass.
    Failed,
}

/// Writes every report rendered from the summary: [`write_reports`] and a page per case.
pub fn write_all(dir: &Path, s: &Summary) -> anyhow::Result<()> {
    write_reports(dir, s)?;
    for c in &s.cases {
        write_case_page(dir, s, c)?;
    }
    Ok(())
}

/// Writes `cases/<case>.html`.
pub fn write_case_page(dir: &Path, s: &Summary, c: &model::CaseReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("cases"))?;
    write_atomic(
        &dir.join("cases").join(c.page_name()),
        html::case_page(s, c).as_bytes(),
    )?;
    Ok(())
}

/// Writes the reports of the whole run rendered from the summary: `summary.json`,
/// `junit.xml`, `index.html` (the conformance test report), and `docs/checks.md` (the check
/// catalogue the report's references link to); not the case pages.
pub fn write_reports(dir: &Path, s: &Summary) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_summary(dir, s)?;
    write_atomic(&dir.join("junit.xml"), junit::render(s)?.as_bytes())?;
    write_atomic(&dir.join("index.html"), html::index(s).as_bytes())?;
    // The check catalogue the report's references link to, so the run folder stands alone.
    std::fs::create_dir_all(dir.join("docs"))?;
    write_atomic(
        &dir.join("docs").join("checks.md"),
        crate::engine::catalogue::markdown().as_bytes(),
    )?;
    Ok(())
}

/// Report settings of a run.
#[derive(Default)]
pub struct ReportOptions {
    pub console: console::ConsoleOptions,
    /// `k/n` when the run is a shard.
    pub partition: Option<String>,
    /// The figure suites (for the expected ladders), by figure number.
    pub suites: BTreeMap<u8, Suite>,
    /// Where case lines go; stdout when none.
    pub out: Option<Box<dyn std::io::Write + Send>>,
    /// Each run case's index in the plan (see [`crate::engine::shard::Selection`]); the
    /// position in the run's case list when empty.
    pub case_index: Vec<usize>,
    /// The conformance test report's identification part (the CLI's runs give one).
    pub pctr: Option<pctr::Pctr>,
    /// Where the cases' captures go (`<dir>/<case>.pcap` and `.topology.yaml`), and which of
    /// them to keep.
    pub captures: Option<PathBuf>,
    pub keep: Keep,
}

/// The reporters of a live run: console, `summary.json` and event logs as each case ends,
/// JUnit and HTML at the end.
pub struct RunReporter {
    dir: PathBuf,
    summary: Summary,
    suites: BTreeMap<u8, Suite>,
    case_index: Vec<usize>,
    console: console::Console,
    last_write: Option<std::time::Instant>,
    captures: Option<PathBuf>,
    keep: Keep,
}

impl RunReporter {
    /// Reporters writing under `dir` (created). `skipped`: the plan's skipped cases (index
    /// in the plan's skipped list, id, reason).
    pub fn new(
        dir: &Path,
        run_id: &str,
        profile: &str,
        skipped: &[(usize, String, String)],
        mut opts: ReportOptions,
    ) -> anyhow::Result<RunReporter> {
        std::fs::create_dir_all(dir.join("cases")).map_err(|e| {
            coded(
                EXIT_HARNESS,
                anyhow::anyhow!("cannot create the report folder {}: {e}", dir.display()),
            )
        })?;
        let out = opts
            .out
            .take()
            .unwrap_or_else(|| Box::new(std::io::stdout()));
        let skipped: Vec<Skipped> = skipped
            .iter()
            .map(|(i, id, why)| Skipped::new(id, why, false, *i))
            .collect();
        let mut summary = Summary {
            schema_version: SCHEMA_VERSION,
            run: run_id.to_string(),
            profile: profile.to_string(),
            partition: opts.partition.clone(),
            merged_from: Vec::new(),
            counts: Counts::of(&[], &skipped),
            run_notes: Vec::new(),
            cases: Vec::new(),
            skipped,
            pctr: opts.pctr.take(),
        };
        summary.recount();
        Ok(RunReporter {
            dir: dir.to_path_buf(),
            summary,
            suites: std::mem::take(&mut opts.suites),
            case_index: std::mem::take(&mut opts.case_index),
            console: console::Console::new(opts.console, out),
            last_write: None,
            captures: opts.captures.take(),
            keep: opts.keep,
        })
    }

    /// The summary so far (complete after the run).
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn plan_index(&self, i: usize) -> usize {
        self.case_index.get(i).copied().unwrap_or(i)
    }

    fn harness(&self, what: &str, e: anyhow::Error) -> anyhow::Error {
        coded(
            EXIT_HARNESS,
            anyhow::anyhow!("{what} in {}: {e:#}", self.dir.display()),
        )
    }
}

impl RunSink for RunReporter {
    fn event(&mut self, e: &RunEvent<'_>) -> anyhow::Result<()> {
        match e {
            RunEvent::Started { cases } => self.console.started(cases.len()),
            RunEvent::CaseStarted { index, case } => self.console.case_started(*index, &case.id),
            RunEvent::CaseFinished {
                index,
                case,
                outcome,
            } => {
                let at = self.plan_index(*index);
                let mut report = case_report(at, case, outcome, self.suites.get(&case.figure));
                self.console.case_finished(*index, &report);
                write_trace(&self.dir, outcome)
                    .map_err(|e| self.harness("cannot write the trace", e))?;
                // The page now, with the ladder; a passing case's ladder stays on its page
                // only (summary.json and JUnit keep the ladders of cases that did not pass).
                write_case_page(&self.dir, &self.summary, &report)
                    .map_err(|e| self.harness("cannot write the case page", e))?;
                let pass = report.verdict == Verdict::Pass;
                if pass {
                    report.ladder = None;
                }
                // The capture, finished: dropped (a passing case under --keep failed) or
                // compressed to a quarter of its size.
                if let Some(caps) = &self.captures {
                    let stem = model::file_stem(&report.id);
                    let pcap = caps.join(format!("{stem}.pcap"));
                    if pass && self.keep == Keep::Failed {
                        for f in [
                            pcap,
                            caps.join(format!("{stem}.topology.yaml")),
                            caps.join(format!("{stem}.keys")),
                        ] {
                            let _ = std::fs::remove_file(f);
                        }
                    } else if let Err(e) = crate::capture::write::gzip_in_place(&pcap) {
                        report
                            .notes
                            .push(format!("{}: not compressed: {e}", pcap.display()));
                    }
                }
                let at = self
                    .summary
                    .cases
                    .partition_point(|c| c.index < report.index);
                self.summary.cases.insert(at, report);
                self.summary.recount();
                // Rewritten as cases finish (a crashed run keeps what it finished), but not
                // after every case: with every case's ladder the file grows to megabytes.
                if self.last_write.is_none_or(|t| t.elapsed() >= SUMMARY_EVERY) {
                    write_summary(&self.dir, &self.summary)
                        .map_err(|e| self.harness("cannot write summary.json", e))?;
                    self.last_write = Some(std::time::Instant::now());
                }
            }
            RunEvent::NotRun {
                index,
                case,
                reason,
            } => {
                let k = Skipped::new(&case.id, reason, true, self.plan_index(*index));
                self.console.not_run(&k);
                self.summary.skipped.push(k);
                self.summary.recount();
            }
            RunEvent::RunNote { note } => {
                self.console.run_note(note);
                self.summary.run_notes.push(note.to_string());
                write_summary(&self.dir, &self.summary)
                    .map_err(|e| self.harness("cannot write summary.json", e))?;
            }
            RunEvent::Finished => {
                self.summary.recount();
                write_reports(&self.dir, &self.summary)
                    .map_err(|e| self.harness("cannot write the reports", e))?;
                self.console.finished(&self.summary);
            }
        }
        Ok(())
    }

    fn tick(&mut self) {
        self.console.tick();
    }
}

/// Writes the trace of a case that did not pass as JSON lines (`<dir>/<case>.trace.jsonl`:
/// every record with who recorded it, [`crate::trace::Record`]), for debugging beside its
/// capture; a passing case has only its capture. Returns whether a file was written.
pub fn write_trace(dir: &Path, o: &CaseOutcome) -> anyhow::Result<bool> {
    if o.verdict == Verdict::Pass || o.records.is_empty() {
        return Ok(false);
    }
    let text = crate::trace::to_jsonl(o.records.iter().cloned());
    let name = format!(
        "{}.trace.jsonl",
        crate::chain::sanitize(&o.id.replace('/', "_"))
    );
    crate::files::write_atomic(&dir.join(name), text.as_bytes())?;
    Ok(true)
}

/// Runs `cases`, `jobs` at a time, and writes the reports (`summary.json`, event logs,
/// JUnit, HTML) under `dir` as each case finishes (so an interrupted run keeps what it
/// finished); prints a line per case unless `quiet`. Returns the outcomes in plan order.
#[allow(clippy::too_many_arguments)]
pub async fn run_cases(
    cases: &[Case],
    skipped: &[(String, String)],
    profile: &Profile,
    settings: &RunSettings,
    dir: &Path,
    run_id: &str,
    quiet: bool,
    jobs: usize,
) -> anyhow::Result<Vec<CaseOutcome>> {
    let skipped: Vec<(usize, String, String)> = skipped
        .iter()
        .enumerate()
        .map(|(i, (id, why))| (i, id.clone(), why.clone()))
        .collect();
    let mut reporter = RunReporter::new(
        dir,
        run_id,
        &profile.name,
        &skipped,
        ReportOptions {
            console: console::ConsoleOptions {
                verbosity: if quiet {
                    console::Verbosity::Quiet
                } else {
                    console::Verbosity::Normal
                },
                ..Default::default()
            },
            ..Default::default()
        },
    )?;
    execute(
        cases,
        profile,
        settings,
        Schedule {
            jobs,
            fail_fast: false,
        },
        &mut reporter,
    )
    .await
}
