//! The conformance engine against the reference SUT launched as a separate process per case,
//! over real loopback sockets: all 30 proper non-empty splits for FIG 1 and FIG 4 pass.

use cpm_harness::engine::case::{run_case, CaseOutcome, RunSettings};
use cpm_harness::engine::plan::{plan, DefaultSuite};
use cpm_harness::engine::profile::Profile;
use cpm_harness::engine::Verdict;
use cpm_harness::entity::SipTimers;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

fn settings(work: &Path) -> RunSettings {
    RunSettings {
        size: 20_000,
        trigger_window: Duration::from_millis(1000),
        case_timeout: Duration::from_secs(20),
        exe: PathBuf::from(BIN),
        work_dir: work.to_path_buf(),
        faults: vec![],
        timers: SipTimers::default(),
        capture_dir: None,
    }
}

fn describe(o: &CaseOutcome) -> String {
    let mut s = format!("{} {}\n", o.verdict.as_str(), o.id);
    for c in o
        .checks
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::NotObservable))
    {
        s.push_str(&format!(
            "    {} {} [{}]: {}\n",
            c.verdict.as_str(),
            c.id,
            c.reference,
            c.evidence.join(" | ")
        ));
    }
    for n in &o.notes {
        s.push_str(&format!("    note: {n}\n"));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_proper_splits_of_fig1_and_fig4_pass() {
    let yaml = "about: the 30 proper splits\nbase: {}\norderings:\n  in-order:\n    about: no holds\nsections:\n  - name: splits\n    about: every proper split\n    figures: [1, 4]\n    splits: [all-proper]\n";
    let d = DefaultSuite::parse(yaml, "inline").expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let p = plan(Path::new("suites"), &d, &profile).expect("plan");
    assert_eq!(
        p.cases.len(),
        60,
        "{:?}",
        p.cases.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    let work = tempfile::tempdir().unwrap();
    let s = settings(work.path());
    let mut failures = String::new();
    // Four cases at a time, each on its own subnet (200..=239; other tests use other nets).
    for (batch_no, batch) in p.cases.chunks(4).enumerate() {
        let runs = batch.iter().enumerate().map(|(i, c)| {
            let s = s.clone();
            let profile = profile.clone();
            let c = c.clone();
            let net = 200 + ((batch_no * 4 + i) % 40) as u8;
            tokio::spawn(async move { run_case(&c, &profile, net, &s).await })
        });
        for r in futures_join(runs.collect()).await {
            if r.verdict != Verdict::Pass {
                failures.push_str(&describe(&r));
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<CaseOutcome>>) -> Vec<CaseOutcome> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("case task"));
    }
    out
}
