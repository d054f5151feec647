//! The run loop behind `cpm-harness run` and `cpm-harness selftest --mutants`: plans the
//! cases, runs them one by one on their own loopback subnets, prints a line per case, and
//! writes `summary.json` and each case's event log as it goes (so an interrupted run keeps
//! what it finished).

use super::case::{run_case, run_case_running, RunSettings};
use super::outcome::{CaseOutcome, SetupError};
use super::profile::Profile;
use super::running::{self, RunningSut};
use super::spec::Case;
use super::{CheckId, CheckResult, Class, Finding, FindingKind, Verdict};
use crate::clock;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Something about the whole run that a reader must see first (the running SUT could
    /// not be started, or died): shown at the top of the reports (`summary.json`
    /// `run_notes`).
    RunNote { note: &'a str },
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

/// The lab subnets cases run on: 127.100.x.x … 127.199.x.x (never the tests' nets; IPv6: the
/// ports of [`crate::topology::Topology::generate_lab`] on `::1`). A case leases one as it
/// starts and gives it back as it ends, so cases running together never share one however
/// long one of them runs (by start position, `100 + i mod 100`, a case started 100 after a
/// long one could get that one's net while it still ran).
#[derive(Clone)]
pub struct Nets(std::sync::Arc<std::sync::Mutex<NetsInner>>);

struct NetsInner {
    busy: [bool; Nets::COUNT],
    /// When each net was last given back (a counter): the next case gets the free net given
    /// back longest ago, so what a case left behind on its net (sockets in TIME_WAIT, a SIP/IP
    /// core's connections to its addresses) has had the most time to go.
    freed: [u64; Nets::COUNT],
    clock: u64,
}

/// A net held by a running case; given back when dropped (also when the case's task is
/// aborted).
pub struct NetLease {
    nets: Nets,
    pub net: u8,
}

impl Nets {
    /// How many cases can run at once.
    pub const COUNT: usize = 100;
    const FIRST: u8 = 100;

    pub fn new() -> Nets {
        Nets(std::sync::Arc::new(std::sync::Mutex::new(NetsInner {
            busy: [false; Nets::COUNT],
            freed: [0; Nets::COUNT],
            clock: 0,
        })))
    }

    /// The next free net, or `None` when all [`Nets::COUNT`] are held.
    pub fn take(&self) -> Option<NetLease> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let i = (0..Nets::COUNT)
            .filter(|&i| !g.busy[i])
            .min_by_key(|&i| (g.freed[i], i))?;
        g.busy[i] = true;
        Some(NetLease {
            nets: self.clone(),
            net: Nets::FIRST + i as u8,
        })
    }
}

impl Default for Nets {
    fn default() -> Nets {
        Nets::new()
    }
}

impl Drop for NetLease {
    fn drop(&mut self) {
        let mut g = self.nets.0.lock().unwrap_or_else(|e| e.into_inner());
        let i = usize::from(self.net - Nets::FIRST);
        g.clock += 1;
        g.busy[i] = false;
        g.freed[i] = g.clock;
    }
}

/// Runs a case on a net leased from `nets`; if an address there is taken (another run on
/// this machine, a stray process), runs it again on another net rather than reporting a
/// harness error.
pub async fn run_case_retrying(
    case: &Case,
    profile: &Profile,
    nets: &Nets,
    s: &RunSettings,
) -> CaseOutcome {
    // Every net held: the case waits for one (each case is bounded in time, so one ends).
    let mut lease = loop {
        match nets.take() {
            Some(l) => break l,
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let mut o = run_case(case, profile, lease.net, s).await;
    for _ in 1..=3usize {
        if o.setup_error != Some(SetupError::AddrInUse) {
            break;
        }
        // The taken net stays leased while the case runs again, so no other case of the
        // run tries it meanwhile.
        let Some(other) = nets.take() else { break };
        let taken = std::mem::replace(&mut lease, other);
        o = run_case(case, profile, lease.net, s).await;
        drop(taken);
        o.notes.push(format!(
            "ran on lab net {} after an address was in use",
            lease.net
        ));
    }
    o
}

/// Runs `cases`, `schedule.jobs` at a time (each on its own subnet), feeding `sink` the run's
/// events as they happen. Returns the outcomes of the cases that ran, in plan order. Against
/// a running SUT ([`Profile::runs_once`]) the cases run one at a time on the run's topology
/// ([`execute_running`]).
pub async fn execute(
    cases: &[Case],
    profile: &Profile,
    settings: &RunSettings,
    schedule: Schedule,
    sink: &mut dyn RunSink,
) -> anyhow::Result<Vec<CaseOutcome>> {
    if profile.runs_once() {
        return execute_running(cases, profile, settings, schedule, sink).await;
    }
    sink.event(&RunEvent::Started { cases })?;
    let mut outcomes: Vec<(usize, CaseOutcome)> = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0usize;
    let mut stop: Option<String> = None;
    let nets = Nets::new();
    let jobs = schedule.jobs.clamp(1, Nets::COUNT);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Longest first (a member that never answers, a discriminating pause, a slow member), so
    // the run does not end waiting on a few slow cases started last. Reports stay in plan
    // order; the subnet follows the start order so cases running together never share one.
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cases[i].expected_wait()));
    // Fills the free slots. Called before a finished case's reports are written (the sink
    // runs on this thread and takes milliseconds per case), so a slot is not left empty
    // meanwhile.
    let fill = |set: &mut tokio::task::JoinSet<(usize, CaseOutcome)>,
                next: &mut usize,
                stop: &Option<String>,
                sink: &mut dyn RunSink|
     -> anyhow::Result<()> {
        while stop.is_none() && set.len() < jobs && *next < cases.len() {
            let i = order[*next];
            let (case, profile, settings, nets) = (
                cases[i].clone(),
                profile.clone(),
                settings.clone(),
                nets.clone(),
            );
            sink.event(&RunEvent::CaseStarted {
                index: i,
                case: &cases[i],
            })?;
            set.spawn(async move {
                (
                    i,
                    run_case_retrying(&case, &profile, &nets, &settings).await,
                )
            });
            *next += 1;
        }
        Ok(())
    };
    loop {
        fill(&mut set, &mut next, &stop, sink)?;
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
        fill(&mut set, &mut next, &stop, sink)?;
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

/// An outcome for a case that could not run, with a HARNESS result (`error`, or `inconc`).
pub fn outcome_without_run(case: &Case, verdict: Verdict, kind: FindingKind) -> CaseOutcome {
    let f = match verdict {
        Verdict::Inconc => Finding::new(Class::Inconc, kind),
        _ => Finding::fail(kind),
    };
    CaseOutcome {
        id: case.id.clone(),
        figure: case.figure,
        split: case.split(),
        ordering: case.ordering.clone(),
        verdict,
        duration_ms: 0,
        checks: vec![CheckResult::new(CheckId::Harness, verdict, vec![f])],
        notes: Vec::new(),
        setup_error: None,
        records: Vec::new(),
        topology: None,
        observation: None,
        still_open: Vec::new(),
    }
}

/// The cases of a run against a SUT started (or found) once: its one split
/// ([`running::run_split`]), the SUT started on the run's topology, then each case in plan
/// order, one at a time (`--jobs` above 1 is refused: its addresses are fixed). A case after
/// one that was not over on the wire is inconc; once the SUT process has exited, every
/// remaining case is an error and a run note says why; the SUT is stopped at the end.
pub async fn execute_running(
    cases: &[Case],
    profile: &Profile,
    settings: &RunSettings,
    schedule: Schedule,
    sink: &mut dyn RunSink,
) -> anyhow::Result<Vec<CaseOutcome>> {
    if schedule.jobs > 1 {
        anyhow::bail!(
            "{}: the SUT runs once at fixed addresses, so its cases run one at a time: --jobs {} \
             is not possible (use --jobs 1)",
            profile.origin,
            schedule.jobs
        );
    }
    let split = running::run_split(profile, cases).map_err(|e| anyhow::anyhow!(e))?;
    sink.event(&RunEvent::Started { cases })?;
    let mut outcomes = Vec::new();
    let Some(first) = cases.first() else {
        sink.event(&RunEvent::Finished)?;
        return Ok(outcomes);
    };
    let mut dead: Option<String> = None;
    let sut = match RunningSut::start(profile, &split, first, settings).await {
        Ok(s) => Some(s),
        Err(e) => {
            let note = format!("the SUT could not be started: {e:#}");
            sink.event(&RunEvent::RunNote { note: &note })?;
            dead = Some(note);
            None
        }
    };
    let mut previous: Option<(String, Vec<String>)> = None;
    let mut stop: Option<String> = None;
    let mut next = 0;
    while next < cases.len() && stop.is_none() {
        let (i, case) = (next, &cases[next]);
        next += 1;
        sink.event(&RunEvent::CaseStarted { index: i, case })?;
        let o = match (&sut, &dead) {
            (Some(sut), None) => {
                let run = run_case_running(case, profile, sut, settings);
                tokio::pin!(run);
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                let mut o = loop {
                    tokio::select! {
                        o = &mut run => break o,
                        _ = tick.tick() => sink.tick(),
                    }
                };
                if let Some((id, what)) = previous.take() {
                    if matches!(o.verdict, Verdict::Pass | Verdict::Fail | Verdict::Inconc) {
                        o.verdict = Verdict::Inconc;
                    }
                    o.checks.push(CheckResult::new(
                        CheckId::Harness,
                        Verdict::Inconc,
                        vec![Finding::new(
                            Class::Inconc,
                            FindingKind::PreviousCaseNotOver { case: id, what },
                        )],
                    ));
                }
                if !o.still_open.is_empty() {
                    previous = Some((o.id.clone(), o.still_open.clone()));
                }
                if let Some(d) = sut.died().await {
                    o.notes.push(format!("during this case, {d}"));
                    sink.event(&RunEvent::RunNote { note: &d })?;
                    dead = Some(d);
                }
                o
            }
            (_, Some(d)) => outcome_without_run(
                case,
                Verdict::Error,
                FindingKind::SutExited { detail: d.clone() },
            ),
            (None, None) => unreachable!("no SUT without a reason"),
        };
        if schedule.fail_fast && o.verdict != Verdict::Pass {
            stop = Some(format!(
                "not run: --fail-fast stopped the run after {} ({})",
                o.id,
                o.verdict.as_str()
            ));
        }
        sink.event(&RunEvent::CaseFinished {
            index: i,
            case,
            outcome: &o,
        })?;
        outcomes.push(o);
    }
    if let Some(reason) = &stop {
        for (i, case) in cases.iter().enumerate().skip(next) {
            sink.event(&RunEvent::NotRun {
                index: i,
                case,
                reason,
            })?;
        }
    }
    if let Some(sut) = &sut {
        sut.stop(Duration::from_secs(2)).await;
    }
    sink.event(&RunEvent::Finished)?;
    Ok(outcomes)
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

/// The harness binary for `{exe}`.
pub fn current_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cpm-harness"))
}

#[cfg(test)]
mod tests {
    use super::Nets;

    #[test]
    fn a_net_is_never_held_twice_and_comes_back_when_its_case_ends() {
        let nets = Nets::new();
        let held: Vec<_> = (0..Nets::COUNT).map(|_| nets.take().unwrap()).collect();
        let mut got: Vec<u8> = held.iter().map(|l| l.net).collect();
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), Nets::COUNT, "every lease a different net");
        assert_eq!((got[0], got[Nets::COUNT - 1]), (100, 199));
        assert!(nets.take().is_none(), "all held: none to give");
        // A long case keeps its net while the others come and go.
        let mut held = held.into_iter();
        let long = held.next().unwrap();
        drop(held);
        for _ in 0..3 * Nets::COUNT {
            let l = nets.take().unwrap();
            assert_ne!(l.net, long.net);
        }
        // The free net given back longest ago comes first, wherever it lies: with every net
        // held, 150 is given back before 110, so 150 is taken next (a search in net order
        // would take 110).
        drop(long);
        let mut all: Vec<_> = std::iter::from_fn(|| nets.take()).collect();
        assert_eq!(all.len(), Nets::COUNT);
        let at = |all: &Vec<super::NetLease>, net: u8| all.iter().position(|l| l.net == net);
        all.remove(at(&all, 150).unwrap());
        all.remove(at(&all, 110).unwrap());
        assert_eq!(nets.take().map(|l| l.net), Some(150));
        assert_eq!(nets.take().map(|l| l.net), Some(110));
        drop(all);
    }
}
