//! A SUT started once for the whole run, as a vendor's runs: the reference SUT in its per-call
//! mode (`sut --variant per-call`) with all its roles on 127.0.0.2, the harness's on
//! 127.0.0.1 (profiles/reference-running.yaml), over real sockets, through the engine's run
//! loop (`runner::execute`, one case at a time):
//!
//! - every single-role split and the network split pass the whole default suite, with SIP
//!   over UDP and again with SIP over TCP;
//! - every fault of the reference SUT's mutant table still fails its target check;
//! - a case left unfinished on the wire makes the next one inconc, with the reason;
//! - a SUT that exits mid-run turns the remaining cases into errors, and the run says so
//!   first (console, summary.json `run_notes`);
//! - a taken fixed address is an error naming it (never a run elsewhere); `--jobs` above 1
//!   and cases of several splits are refused;
//! - self-check cases are not in a SUT profile's run.
//!
//! Each test has its own port ranges (`slot`, 1–14), so the tests of this file may run together.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

use cpm_harness::codec::sip::Transport;
use cpm_harness::engine::case::RunSettings;
use cpm_harness::engine::outcome::CaseOutcome;
use cpm_harness::engine::plan::{plan, DefaultSuite};
use cpm_harness::engine::profile::{Place, Profile};
use cpm_harness::engine::runner::{execute, RunEvent, RunSink, Schedule};
use cpm_harness::engine::spec::Case;
use cpm_harness::engine::{CheckId, FindingKind, Verdict};
use cpm_harness::entity::Fault;
use cpm_harness::selftest::fault_applies;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// profiles/reference-running.yaml with the port ranges of `slot`: 20000 + 500 × slot on
/// both sides (127.0.0.1 and 127.0.0.2), below the kernel's ephemeral ports (32768 up), which
/// the SUT's own outgoing connections take.
fn profile(slot: u16) -> Profile {
    let mut p = Profile::load(&root().join("profiles/reference-running.yaml"))
        .expect("reference-running.yaml loads");
    let place = |ip: &str, first: u16| Place {
        ip: ip.parse::<IpAddr>().unwrap(),
        first,
        last: first + 499,
    };
    p.harness = Some(place("127.0.0.1", 20000 + 500 * slot));
    p.sut = Some(place("127.0.0.2", 20000 + 500 * slot));
    p
}

fn settings(work: &Path) -> RunSettings {
    RunSettings::new(PathBuf::from(BIN), work.to_path_buf())
}

/// The default suite's cases for `split` (`x`, `pf-a+x+pf-b`, …), with every case's SIP
/// over `transport`.
fn cases(profile: &Profile, split: &str, transport: Transport) -> Vec<Case> {
    let mut d = DefaultSuite::load(&root().join("suites/default.yaml")).unwrap();
    d.base.transport = Some(transport);
    let p = plan(&root().join("suites"), &d, profile).expect("plan");
    let cases: Vec<Case> = p.cases.into_iter().filter(|c| c.split() == split).collect();
    assert!(!cases.is_empty(), "no case for split {split}");
    cases
}

/// Keeps the run notes; the cases come back from `execute`.
#[derive(Default)]
struct Notes(Vec<String>);

impl RunSink for Notes {
    fn event(&mut self, e: &RunEvent<'_>) -> anyhow::Result<()> {
        if let RunEvent::RunNote { note } = e {
            self.0.push(note.to_string());
        }
        Ok(())
    }
}

async fn run(
    cases: &[Case],
    profile: &Profile,
    s: &RunSettings,
) -> anyhow::Result<(Vec<CaseOutcome>, Vec<String>)> {
    let mut notes = Notes::default();
    let schedule = Schedule {
        jobs: 1,
        fail_fast: false,
    };
    let outcomes = execute(cases, profile, s, schedule, &mut notes).await?;
    Ok((outcomes, notes.0))
}

fn describe(o: &CaseOutcome) -> String {
    let mut s = format!("{} {}\n", o.verdict.as_str(), o.id);
    for c in o
        .checks
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::NotObservable))
    {
        s.push_str(&format!(
            "    {} {}: {}\n",
            c.verdict.as_str(),
            c.id,
            c.evidence().join(" | ")
        ));
    }
    for n in &o.notes {
        s.push_str(&format!("    note: {n}\n"));
    }
    s
}

/// The whole default suite of `split` passes against the reference SUT started once, with
/// SIP over each of `transports` in turn.
async fn suite_passes(split: &str, slot: u16) {
    suite_passes_over(split, slot, &[Transport::Udp, Transport::Tcp]).await;
}

async fn suite_passes_over(split: &str, slot: u16, transports: &[Transport]) {
    let profile = profile(slot);
    for &transport in transports {
        let cases = cases(&profile, split, transport);
        let work = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let (outcomes, notes) = run(&cases, &profile, &settings(work.path()))
            .await
            .expect("run");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(outcomes.len(), cases.len());
        let bad: String = outcomes
            .iter()
            .filter(|o| o.verdict != Verdict::Pass)
            .map(describe)
            .collect();
        assert!(
            bad.is_empty(),
            "{split} over {transport:?}, against the SUT started once:\n{bad}"
        );
        // The harness told the SUT each case's variant (the profile's test hook).
        let invite = outcomes[0]
            .records
            .iter()
            .find(|r| format!("{:?}", r).contains("INVITE sip:"))
            .map(|r| format!("{r:?}"))
            .unwrap_or_default();
        assert!(invite.contains("X-Cpm-Variant"), "{invite}");
        eprintln!(
            "{split} over {transport:?}: {} cases passed in {:.1} s",
            outcomes.len(),
            started.elapsed().as_secs_f64()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_suite_passes_client_a_running() {
    suite_passes("client-a", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_suite_passes_pf_a_running() {
    suite_passes("pf-a", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_suite_passes_x_running() {
    suite_passes("x", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_suite_passes_pf_b_running() {
    suite_passes_over("pf-b", 4, &[Transport::Udp]).await;
}

/// Over SIP/TCP, on its own port range (the two transports of pf-b run in parallel). It
/// once failed about one run in three: pf-b's members are separate calls, and member 1's BYE
/// closed the idle L3 connection to x just before member 2's ACK wanted it with reuse
/// declared (LINK-REUSE: a second connection to x). The reference SUT now keeps an idle
/// connection open while a session of any live call that reuses may still take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_suite_passes_pf_b_running_tcp() {
    suite_passes_over("pf-b", 13, &[Transport::Tcp]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_suite_passes_client_b_running() {
    suite_passes("client-b", 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_suite_passes_network_running() {
    suite_passes("pf-a+x+pf-b", 6).await;
}

/// Every fault of the mutant table (`selftest --mutants`, those that need no SIP/IP core),
/// injected into the SUT started once for a run of one case (the first the fault applies
/// to, as `selftest --mutants --per-fault 1` picks it), fails its target check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_fails_its_target_check_against_a_running_sut() {
    let mut profile = profile(7);
    profile.settle = Duration::from_millis(300);
    let mut all = Vec::new();
    for split in ["client-a", "pf-a", "x", "pf-b", "client-b"] {
        all.extend(cases(&profile, split, Transport::Udp));
    }
    // In plan order, as selftest picks them.
    let order = cases_in_plan_order(&profile);
    all.sort_by_key(|c| order.iter().position(|id| id == &c.id));
    // The IPv6 faults show only in IPv6 cases: against the SUT started on ::1 (the harness
    // there too, on other ports), x alone as in the default suite's ipv6-tcp section.
    let mut profile6 = profile.clone();
    let place6 = |first: u16| Place {
        ip: "::1".parse::<IpAddr>().unwrap(),
        first,
        last: first + 249,
    };
    profile6.harness = Some(place6(24000));
    profile6.sut = Some(place6(24250));
    let mut all6 = cases(&profile6, "x", Transport::Udp);
    let order6 = cases_in_plan_order(&profile6);
    all6.sort_by_key(|c| order6.iter().position(|id| id == &c.id));
    let mut missed = String::new();
    let mut n = 0;
    for &f in Fault::ALL.iter().filter(|f| !f.needs_core()) {
        let (case, p) = all
            .iter()
            .find(|c| fault_applies(f, c))
            .map(|c| (c, &profile))
            .or_else(|| {
                all6.iter()
                    .find(|c| fault_applies(f, c))
                    .map(|c| (c, &profile6))
            })
            .unwrap_or_else(|| panic!("no case for {}", f.name()));
        let work = tempfile::tempdir().unwrap();
        let mut s = settings(work.path());
        s.faults = vec![f];
        s.case_timeout = Duration::from_secs(6);
        let (outcomes, _) = run(std::slice::from_ref(case), p, &s).await.expect("run");
        let target = CheckId::parse(f.target_check()).expect("target check");
        let o = &outcomes[0];
        if !o
            .checks
            .iter()
            .any(|c| c.id == target && c.verdict == Verdict::Fail)
        {
            missed.push_str(&format!(
                "{} (target {target}) not caught:\n{}",
                f.name(),
                describe(o)
            ));
        }
        n += 1;
    }
    assert!(n > 20, "only {n} faults tried");
    assert!(missed.is_empty(), "{missed}");
}

fn cases_in_plan_order(profile: &Profile) -> Vec<String> {
    let d = DefaultSuite::load(&root().join("suites/default.yaml")).unwrap();
    plan(&root().join("suites"), &d, profile)
        .unwrap()
        .cases
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// x never sends its BYEs downstream (fault `no-bye-downstream`): its member dialogs are still
/// up when the case ends, so the next case is inconc and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_not_over_on_the_wire_makes_the_next_inconc() {
    let mut profile = profile(8);
    profile.settle = Duration::from_millis(300);
    let cases: Vec<Case> = cases(&profile, "x", Transport::Udp)
        .into_iter()
        .take(2)
        .collect();
    let work = tempfile::tempdir().unwrap();
    let mut s = settings(work.path());
    s.faults = vec![Fault::NoByeDownstream];
    s.case_timeout = Duration::from_secs(4);
    let (outcomes, _) = run(&cases, &profile, &s).await.expect("run");
    assert!(
        !outcomes[0].still_open.is_empty(),
        "{}",
        describe(&outcomes[0])
    );
    assert!(
        outcomes[0].still_open.iter().any(|w| w.contains("no BYE")),
        "{:?}",
        outcomes[0].still_open
    );
    let second = &outcomes[1];
    assert_eq!(second.verdict, Verdict::Inconc, "{}", describe(second));
    let reason = second
        .checks
        .iter()
        .filter(|c| c.id == CheckId::Harness)
        .flat_map(|c| &c.findings)
        .find_map(|f| match &f.kind {
            FindingKind::PreviousCaseNotOver { case, what } => Some((case.clone(), what.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reason given: {}", describe(second)));
    assert_eq!(reason.0, outcomes[0].id);
    assert!(!reason.1.is_empty());
}

/// A SUT that exits after its first message (`sut --messages 1`): the first case passes, the
/// run notes that the SUT exited (status and last output), and every later case is an error
/// naming it; the console prints it first in the closing lines and summary.json has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sut_that_dies_mid_run_errors_the_rest_and_the_run_says_so() {
    let mut profile = profile(9);
    if let Some(l) = profile.launch.as_mut() {
        l.command.push_str(" --messages 1");
    }
    let cases: Vec<Case> = cases(&profile, "x", Transport::Udp)
        .into_iter()
        .take(3)
        .collect();
    let work = tempfile::tempdir().unwrap();
    let s = settings(work.path());
    let out = SharedBuf::default();
    let dir = work.path().join("reports");
    let mut reporter = cpm_harness::report::RunReporter::new(
        &dir,
        "run-test",
        &profile.name,
        &[],
        cpm_harness::report::ReportOptions {
            out: Some(Box::new(out.clone())),
            ..Default::default()
        },
    )
    .unwrap();
    let schedule = Schedule {
        jobs: 1,
        fail_fast: false,
    };
    let outcomes = execute(&cases, &profile, &s, schedule, &mut reporter)
        .await
        .expect("run");
    assert_eq!(
        outcomes[0].verdict,
        Verdict::Pass,
        "{}",
        describe(&outcomes[0])
    );
    for o in &outcomes[1..] {
        assert_eq!(o.verdict, Verdict::Error, "{}", describe(o));
        let detail = o
            .checks
            .iter()
            .flat_map(|c| &c.findings)
            .find_map(|f| match &f.kind {
                FindingKind::SutExited { detail } => Some(detail.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{}", describe(o)));
        assert!(detail.contains("exited: exit status: 0"), "{detail}");
        assert!(detail.contains("teardown clean"), "{detail}");
    }
    let summary = reporter.summary();
    assert_eq!(summary.run_notes.len(), 1, "{:?}", summary.run_notes);
    assert!(summary.run_notes[0].contains("exited"));
    let json = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert!(json.contains("\"run_notes\""), "{json}");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let note_at = html.find("run-note").expect("the index shows the run note");
    assert!(note_at < html.find("<table").unwrap());
    let console = out.text();
    let closing = console.rsplit("RUN: ").next().unwrap_or("");
    assert!(console.contains("RUN: the SUT process"), "{console}");
    assert!(
        closing.contains("1 passed, 0 failed, 0 inconc, 2 error"),
        "{console}"
    );
}

/// An address of the running SUT already taken: every case is an error naming the address,
/// and no case ran on other addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_fixed_address_is_an_error_naming_it() {
    let profile = profile(10);
    let cases: Vec<Case> = cases(&profile, "x", Transport::Udp)
        .into_iter()
        .take(2)
        .collect();
    let topo = profile.run_topology(&cases[0].sut).unwrap();
    let _taken = std::net::TcpListener::bind(topo.x.msrp).unwrap();
    let work = tempfile::tempdir().unwrap();
    let (outcomes, notes) = run(&cases, &profile, &settings(work.path()))
        .await
        .expect("run");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains(&topo.x.msrp.to_string()), "{notes:?}");
    assert!(notes[0].contains("taken"), "{notes:?}");
    for o in &outcomes {
        assert_eq!(o.verdict, Verdict::Error, "{}", describe(o));
        assert!(o.records.is_empty());
    }
}

/// A running SUT takes one case at a time and plays one split per run.
#[tokio::test]
async fn parallel_jobs_and_several_splits_are_refused() {
    let profile = profile(11);
    let work = tempfile::tempdir().unwrap();
    let s = settings(work.path());
    let x = cases(&profile, "x", Transport::Udp);
    let mut notes = Notes::default();
    let e = execute(
        &x[..2],
        &profile,
        &s,
        Schedule {
            jobs: 4,
            fail_fast: false,
        },
        &mut notes,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("--jobs 4") && e.contains("one at a time"), "{e}");
    let mut two = x[..1].to_vec();
    two.extend(cases(&profile, "pf-a", Transport::Udp).into_iter().take(1));
    let e = run(&two, &profile, &s).await.unwrap_err().to_string();
    assert!(e.contains("one split") && e.contains("pf-a, x"), "{e}");
    assert!(e.contains("--filter"), "{e}");
}

/// The self-check (the harness plays every role) is the reference profile's and selftest's,
/// never in a SUT profile's run, not even as skipped.
#[test]
fn self_check_cases_are_not_in_a_sut_profile_run() {
    let d = DefaultSuite::load(&root().join("suites/default.yaml")).unwrap();
    let running = plan(&root().join("suites"), &d, &profile(12)).unwrap();
    assert!(running.cases.iter().all(|c| !c.is_self_check()));
    assert!(running.skipped.iter().all(|(id, _)| !id.contains("/none/")));
    let reference = Profile::load(&root().join("profiles/reference.yaml")).unwrap();
    assert!(!reference.variant_header);
    let p = plan(&root().join("suites"), &d, &reference).unwrap();
    assert!(p.cases.iter().any(|c| c.is_self_check()));
    // The running profile's SUT is on IPv4: the IPv6 cases are skipped there, saying why.
    let v6 = |c: &Case| c.variant.ip == cpm_harness::config::IpFamily::V6;
    let ipv6 = p.cases.iter().filter(|c| v6(c)).count();
    assert!(ipv6 > 0);
    assert!(running.cases.iter().all(|c| !v6(c)));
    assert!(running
        .skipped
        .iter()
        .any(|(id, why)| id.contains("/ipv6/") && why.contains("IPv4")));
    assert_eq!(
        p.cases.len() - running.cases.len(),
        p.cases.iter().filter(|c| c.is_self_check()).count() + ipv6
    );
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A member that never answers leaves the running SUT's INVITE to it pending until its Timer
/// B fires; with x and pf-b both the SUT's the harness does not see that end (the 408 goes
/// between them), so the case keeps its silent member until `no-answer-wait-ms` has passed.
/// Before, the case ended after about 0.4 s and a retransmission of that INVITE reached the
/// next cases' b1 at the same address, which answered it: the SUT then delivered the old
/// call's complete message inside a `sender-aborts` case (MEDIA-ABORT, MEDIA-DELIVERY failed
/// in CI; this order fails 3 of 3 without the wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_members_pending_invite_does_not_reach_the_next_case() {
    let profile = profile(14);
    let all = cases(&profile, "pf-a+x+pf-b", Transport::Udp);
    let pick = |ending: &str, fig: &str| {
        all.iter()
            .find(|c| c.id.ends_with(ending) && c.id.starts_with(fig))
            .unwrap_or_else(|| panic!("no case {fig}…{ending}"))
            .clone()
    };
    let cases = vec![
        pick("/member-never-answers", "F2/"),
        pick("/all-decline", "F1/"),
        pick("/sender-aborts", "F1/"),
    ];
    let work = tempfile::tempdir().unwrap();
    let (outcomes, notes) = run(&cases, &profile, &settings(work.path()))
        .await
        .expect("run");
    assert!(notes.is_empty(), "{notes:?}");
    let bad: String = outcomes
        .iter()
        .filter(|o| o.verdict != Verdict::Pass)
        .map(describe)
        .collect();
    assert!(bad.is_empty(), "{bad}");
    // The silent member's case lasted the wait it keeps its silent member for.
    let wait = profile
        .no_answer_wait_ms
        .unwrap_or(cpm_harness::entity::holds::DEFAULT_NO_ANSWER_WAIT.as_millis() as u64);
    assert!(
        outcomes[0].duration_ms >= u128::from(wait),
        "{} ms, the wait {wait} ms",
        outcomes[0].duration_ms
    );
}
