//! Shared by the hostile-SUT tests: run one default-plan case against the reference SUT with a
//! hostile fault and check the harness's answer.
#![allow(dead_code)]

use cpm_harness::engine::case::{run_case, RunSettings};
use cpm_harness::engine::outcome::CaseOutcome;
use cpm_harness::engine::plan::{plan, DefaultSuite};
use cpm_harness::engine::profile::Profile;
use cpm_harness::engine::Verdict;
use cpm_harness::entity::Fault;
use cpm_harness::limits::Limits;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

/// Per-case timeout: a hostile SUT usually never finishes, so every case runs into it.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(6);

/// What the case's notes (the harness's warnings) must mention, besides the verdict.
pub struct Expect {
    pub note: Option<&'static str>,
}

impl Expect {
    pub fn any() -> Expect {
        Expect { note: None }
    }
    pub fn note(s: &'static str) -> Expect {
        Expect { note: Some(s) }
    }
}

pub fn describe(o: &CaseOutcome) -> String {
    let mut s = format!("{} {} ({} ms)\n", o.verdict.as_str(), o.id, o.duration_ms);
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

pub async fn run_with(net: u8, fault: Fault, case_id: &str, limits: Limits) -> CaseOutcome {
    let suite = DefaultSuite::load(Path::new("suites/default.yaml")).expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let p = plan(Path::new("suites"), &suite, &profile).expect("plan");
    let case = p
        .cases
        .iter()
        .find(|c| c.id == case_id)
        .unwrap_or_else(|| panic!("no case {case_id}"));
    let work = tempfile::tempdir().expect("tempdir");
    let s = RunSettings {
        case_timeout: CASE_TIMEOUT,
        faults: vec![fault],
        capture_dir: Some(work.path().join("captures")),
        limits,
        ..RunSettings::new(PathBuf::from(BIN), work.path().to_path_buf())
    };
    let o = run_case(case, &profile, net, &s).await;
    // The capture of a hostile case reads back too.
    let pcap = work
        .path()
        .join("captures")
        .join(format!("{}.pcap", case_id.replace('/', "_")));
    cpm_harness::capture::read_capture(&pcap)
        .unwrap_or_else(|e| panic!("{}: capture unreadable: {e}", fault.name()));
    o
}

/// Runs `case_id` with `fault` on `127.<net>.0.0/16` and checks: fail or inconc, evidence in
/// a check, the expected note, and an end within the case timeout (plus the SUT's stop and
/// the judging, far below three timeouts).
pub async fn run_hostile(net: u8, fault: Fault, case_id: &str, expect: Expect) -> CaseOutcome {
    assert!(fault.is_hostile());
    let o = run_with(net, fault, case_id, Limits::default()).await;
    let d = describe(&o);
    assert!(
        matches!(o.verdict, Verdict::Fail | Verdict::Inconc),
        "{}: expected fail or inconc:\n{d}",
        fault.name()
    );
    assert!(
        o.checks.iter().any(|c| matches!(c.verdict, Verdict::Fail | Verdict::Inconc)
            && !c.findings.is_empty()),
        "{}: no evidence:\n{d}",
        fault.name()
    );
    if let Some(n) = expect.note {
        assert!(
            o.notes.iter().any(|x| x.contains(n)),
            "{}: no note with {n:?}:\n{d}",
            fault.name()
        );
    }
    assert!(
        o.duration_ms < 3 * CASE_TIMEOUT.as_millis(),
        "{}: not bounded by the case timeout:\n{d}",
        fault.name()
    );
    eprintln!("{}: {d}", fault.name());
    o
}
