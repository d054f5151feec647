//! The run loop behind `cpm-harness run` and `cpm-harness selftest --mutants`: plans the
//! cases, runs them one by one on their own loopback subnets, prints a line per case, and
//! writes `summary.json` and each case's event log as it goes (so an interrupted run keeps
//! what it finished).

use super::case::{run_case, CaseOutcome, RunSettings, SetupError};
use super::plan::{Case, Plan};
use super::profile::Profile;
use super::{CheckId, Verdict};
use crate::clock;
use crate::entity::Fault;
use crate::topology::Role;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The summary file's format version (see `docs/summary-schema.md`); owned by
/// [`crate::report::model`].
pub const SCHEMA_VERSION: u32 = crate::report::model::SCHEMA_VERSION;

/// What happens during a run, in order: the one stream every reporter reads (console,
/// `summary.json`, event logs, JUnit, HTML; see [`crate::report`]).
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// The run starts with `cases` to run.
    Started { cases: &'a [Case] },
    /// Case `index` (its position in `cases`) was scheduled.
    CaseStarted { index: usize, case: &'a Case },
    /// Case `index` finished.
    CaseFinished {
        index: usize,
        case: &'a Case,
        outcome: &'a CaseOutcome,
    },
    /// Case `index` was not run (`--fail-fast` stopped the scheduling), with the reason.
    NotRun {
        index: usize,
        case: &'a Case,
        reason: &'a str,
    },
    /// Every scheduled case finished.
    Finished,
}

/// A consumer of [`RunEvent`]s. An error aborts the run (a harness error: the reports
/// cannot be written).
pub trait RunSink {
    fn event(&mut self, e: &RunEvent<'_>) -> anyhow::Result<()>;
    /// Called about four times a second while cases run (progress display).
    fn tick(&mut self) {}
}

/// How cases are scheduled.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Cases run in parallel, each on its own loopback subnet.
    pub jobs: usize,
    /// Stop scheduling after the first case that does not pass; the rest are reported as not
    /// run.
    pub fail_fast: bool,
}

#[derive(Serialize, Default, Clone, Copy)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub inconc: usize,
    pub error: usize,
    pub skipped: usize,
}

impl Counts {
    fn of<'a>(cases: impl Iterator<Item = &'a CaseOutcome> + Clone, skipped: usize) -> Counts {
        let n = |v: Verdict| cases.clone().filter(|c| c.verdict == v).count();
        Counts {
            passed: n(Verdict::Pass),
            failed: n(Verdict::Fail),
            inconc: n(Verdict::Inconc),
            error: n(Verdict::Error),
            skipped,
        }
    }
}

/// Picks the subnet of the i-th case: 127.100.x.x … 127.199.x.x, never the tests' nets.
pub fn case_net(i: usize) -> u8 {
    100 + (i % 100) as u8
}

/// Runs a case on its subnet; if an address there is taken (another run on this machine, a
/// stray process), runs it again on another subnet rather than reporting a harness error.
pub async fn run_case_retrying(
    case: &Case,
    profile: &Profile,
    i: usize,
    s: &RunSettings,
) -> CaseOutcome {
    let mut o = run_case(case, profile, case_net(i), s).await;
    for attempt in 1..=3usize {
        if o.setup_error != Some(SetupError::AddrInUse) {
            break;
        }
        let net = case_net(i + attempt * 37);
        o = run_case(case, profile, net, s).await;
        o.notes.push(format!(
            "ran on 127.{net}.0.0/16 after an address was in use"
        ));
    }
    o
}

/// Runs `cases`, `schedule.jobs` at a time (each on its own subnet), feeding `sink` the run's
/// events as they happen. Returns the outcomes of the cases that ran, in plan order.
pub async fn execute(
    cases: &[Case],
    profile: &Profile,
    settings: &RunSettings,
    schedule: Schedule,
    sink: &mut dyn RunSink,
) -> anyhow::Result<Vec<CaseOutcome>> {
    sink.event(&RunEvent::Started { cases })?;
    let mut outcomes: Vec<(usize, CaseOutcome)> = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0usize;
    let mut stop: Option<String> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Longest first (cases with a discriminating pause take about three times as long), so
    // the run does not end waiting on a few slow cases started last. Reports stay in plan
    // order; the subnet follows the start order so cases running together never share one.
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cases[i].pause()));
    loop {
        while stop.is_none() && set.len() < schedule.jobs.max(1) && next < cases.len() {
            let i = order[next];
            let (case, profile, settings) = (cases[i].clone(), profile.clone(), settings.clone());
            sink.event(&RunEvent::CaseStarted {
                index: i,
                case: &cases[i],
            })?;
            let slot = next;
            set.spawn(
                async move { (i, run_case_retrying(&case, &profile, slot, &settings).await) },
            );
            next += 1;
        }
        let done = tokio::select! {
            d = set.join_next() => d,
            _ = tick.tick() => {
                sink.tick();
                continue;
            }
        };
        let Some(done) = done else {
            break;
        };
        let (i, o) = done.map_err(|e| anyhow::anyhow!("a case task failed: {e}"))?;
        if schedule.fail_fast && stop.is_none() && o.verdict != Verdict::Pass {
            stop = Some(format!(
                "not run: --fail-fast stopped the run after {} ({})",
                o.id,
                o.verdict.as_str()
            ));
        }
        sink.event(&RunEvent::CaseFinished {
            index: i,
            case: &cases[i],
            outcome: &o,
        })?;
        outcomes.push((i, o));
    }
    if let Some(reason) = &stop {
        for &i in &order[next..] {
            sink.event(&RunEvent::NotRun {
                index: i,
                case: &cases[i],
                reason,
            })?;
        }
    }
    sink.event(&RunEvent::Finished)?;
    outcomes.sort_by_key(|(i, _)| *i);
    Ok(outcomes.into_iter().map(|(_, o)| o).collect())
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
    let mut reporter = crate::report::RunReporter::new(
        dir,
        run_id,
        &profile.name,
        &skipped,
        crate::report::ReportOptions {
            console: crate::report::console::ConsoleOptions {
                verbosity: if quiet {
                    crate::report::console::Verbosity::Quiet
                } else {
                    crate::report::console::Verbosity::Normal
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

/// Exit code of a run: 0 all passed, 1 a case failed (or was inconclusive), 3 a harness
/// error, 4 no case ran.
pub fn exit_code(outcomes: &[CaseOutcome]) -> u8 {
    if outcomes.is_empty() {
        4
    } else if outcomes
        .iter()
        .any(|o| matches!(o.verdict, Verdict::Fail | Verdict::Inconc))
    {
        1
    } else if outcomes.iter().any(|o| o.verdict == Verdict::Error) {
        3
    } else {
        0
    }
}

pub fn print_summary(outcomes: &[CaseOutcome], skipped: &[(String, String)]) {
    let c = Counts::of(outcomes.iter(), skipped.len());
    println!(
        "{} passed, {} failed, {} inconc, {} error, {} skipped",
        c.passed, c.failed, c.inconc, c.error, c.skipped
    );
}

/// A run folder name: `run-<unix seconds>-<pid>`.
pub fn new_run_id() -> String {
    let secs = clock::wall()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("run-{secs}-{}", std::process::id())
}

// ------------------------------------------------------------------------------ mutants

/// The roles whose behaviour a fault changes, and whether a case can show it.
pub fn fault_applies(f: Fault, case: &Case) -> bool {
    use crate::config::{AckTiming, SetupMode, Trigger, XAnswer};
    let v = &case.variant;
    let single = case.sut.len() == 1;
    let sut = |r: Role| case.sut.contains(&r);
    let middle = sut(Role::PfA) || sut(Role::X) || sut(Role::PfB);
    if !single {
        return false;
    }
    match f {
        Fault::MlineProto
        | Fault::SdpWrongC
        | Fault::SdpPortMismatch
        | Fault::PathUdp
        | Fault::SessionIdReuse
        | Fault::MissingAcceptTypes => true,
        Fault::SdpCopyUpstreamPath
        | Fault::ReuseCallId
        | Fault::Skip200Upstream
        | Fault::NoByeDownstream => middle,
        Fault::WrongSetup => v.setup == SetupMode::Sdp && (middle || sut(Role::ClientB)),
        Fault::ParamsInWrongMessage => middle || sut(Role::ClientB),
        Fault::WrongDirection | Fault::ConnectWrongTarget | Fault::LateTrigger => true,
        // Visible where the SUT opens a link with nothing queued to send on it yet: an
        // INVITE receiver (solution 2) opening towards its upstream.
        Fault::NoBindSend => {
            v.solution() == crate::config::Solution::ReceiverOpens && (middle || sut(Role::ClientB))
        }
        Fault::EarlyTrigger => {
            middle && v.trigger != Trigger::On200 && !case.holds.ack_delay.is_zero()
        }
        Fault::NoReuse => v.reuse && sut(Role::X),
        Fault::CfAnswerEarly => {
            sut(Role::X)
                && v.x_answer() == XAnswer::AfterFirstMember
                && !case.holds.answer_delay.is_zero()
        }
        Fault::CfAnswerLate => {
            sut(Role::X) && v.x_answer() == XAnswer::AtOnce && !case.holds.answer_delay.is_zero()
        }
        Fault::AckTooEarly => {
            middle
                && v.ack_timing() == AckTiming::AfterUpstreamAck
                && !case.holds.ack_delay.is_zero()
        }
        Fault::NoAckDownstream => middle,
        Fault::FanoutFirstOnly => sut(Role::X),
        Fault::RelayTruncate | Fault::WrongToPath | Fault::BadByteRange | Fault::CpimAltered => {
            middle
        }
        Fault::NoMsrp200 => !sut(Role::ClientA),
        // ACK and BYE: sent by client-a and the middle entities (client-b sends neither).
        Fault::IgnoreRouteSet => !sut(Role::ClientB),
        // Hostile faults (Fault::HOSTILE: tests/hostile.rs) and cosmetic ones (reports'
        // tests) trip no particular check: not mutants.
        _ => false,
    }
}

/// One row of the mutant table.
#[derive(Debug, Clone, Serialize)]
pub struct MutantRow {
    pub fault: &'static str,
    pub target: &'static str,
    pub cases: Vec<String>,
    /// Checks that failed in at least one case.
    pub caught_by: Vec<CheckId>,
    pub caught: bool,
}

/// Runs every fault against up to `per_fault` cases where it applies. Returns the table and
/// the outcomes of the same cases against the correct reference SUT.
pub async fn mutants(
    plan: &Plan,
    profile: &Profile,
    settings: &RunSettings,
    per_fault: usize,
    dir: &Path,
    jobs: usize,
) -> anyhow::Result<(Vec<MutantRow>, Vec<CaseOutcome>)> {
    // Every (fault, case) pair goes into one pool of `jobs` workers.
    let mut clean_ids = BTreeSet::new();
    let mut work: Vec<(Fault, Case)> = Vec::new();
    let faults: Vec<Fault> = Fault::ALL
        .iter()
        .copied()
        .filter(|f| settings.core.is_some() || !f.needs_core())
        .collect();
    for &f in &faults {
        for c in plan
            .cases
            .iter()
            .filter(|c| fault_applies(f, c))
            .take(per_fault)
        {
            clean_ids.insert(c.id.clone());
            work.push((f, c.clone()));
        }
    }
    let mut caught: std::collections::BTreeMap<Fault, BTreeSet<CheckId>> = Default::default();
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0usize;
    loop {
        while set.len() < jobs.max(1) && next < work.len() {
            let (f, c) = work[next].clone();
            let mut s = settings.clone();
            s.faults = vec![f];
            s.work_dir = settings.work_dir.join(f.name());
            let profile = profile.clone();
            let i = next;
            set.spawn(async move { (f, run_case_retrying(&c, &profile, i, &s).await) });
            next += 1;
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let (f, o) = done.map_err(|e| anyhow::anyhow!("a case task failed: {e}"))?;
        let entry = caught.entry(f).or_default();
        for chk in o.checks.iter().filter(|x| x.verdict == Verdict::Fail) {
            entry.insert(chk.id);
        }
    }
    let mut rows = Vec::new();
    for &f in &faults {
        let caught_by = caught.remove(&f).unwrap_or_default();
        let hit = CheckId::parse(f.target_check()).is_some_and(|id| caught_by.contains(&id));
        println!(
            "{:<24} {:<15} {:<6} {}",
            f.name(),
            f.target_check(),
            if hit { "yes" } else { "NO" },
            caught_by
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        rows.push(MutantRow {
            fault: f.name(),
            target: f.target_check(),
            cases: work
                .iter()
                .filter(|(g, _)| *g == f)
                .map(|(_, c)| c.id.clone())
                .collect(),
            caught_by: caught_by.into_iter().collect(),
            caught: hit,
        });
    }
    // The same cases against the correct SUT: zero failures expected.
    let mut s = settings.clone();
    s.faults = Vec::new();
    let clean: Vec<Case> = plan
        .cases
        .iter()
        .filter(|c| clean_ids.contains(&c.id))
        .cloned()
        .collect();
    let outcomes = run_cases(
        &clean,
        &[],
        profile,
        &s,
        &dir.join("reference"),
        "selftest-reference",
        true,
        jobs,
    )
    .await?;
    Ok((rows, outcomes))
}

/// The harness binary for `{exe}`.
pub fn current_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cpm-harness"))
}
