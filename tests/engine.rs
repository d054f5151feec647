//! The conformance engine against the reference SUT launched as a separate process per case,
//! over real loopback sockets: all 30 proper non-empty splits for FIG 1 and FIG 4 pass.

use cpm_harness::engine::case::{run_case, RunSettings};
use cpm_harness::engine::outcome::CaseOutcome;
use cpm_harness::engine::plan::{plan, DefaultSuite};
use cpm_harness::engine::profile::Profile;
use cpm_harness::engine::{CheckId, Verdict};
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

fn settings(work: &Path) -> RunSettings {
    RunSettings::new(PathBuf::from(BIN), work.to_path_buf())
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
            c.evidence().join(" | ")
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

/// The figure suite file, not a table in the code, decides what is expected: a copy of the
/// suites where FIG 1's x must wait for a member makes the reference SUT's x (which answers at
/// once, as the real FIG 1 says) fail SIG-CF-ANSWER, and only that case's verdict changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_file_decides_what_the_checks_expect() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir("suites").unwrap().flatten() {
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    let fig1 = std::fs::read_to_string("suites/fig1.yaml").unwrap();
    assert!(fig1.contains("x-answer: at-once"));
    let changed = fig1
        .replace("x-answer: at-once", "x-answer: after-first-member")
        .replace(
            "message: 200-2, from: x, to: pf-a, after: [S102]",
            "message: 200-2, from: x, to: pf-a, after: [S102, S109]",
        );
    assert_ne!(changed, fig1);
    std::fs::write(dir.path().join("fig1.yaml"), changed).unwrap();
    let yaml = "about: x alone\nbase: {}\norderings:\n  pause:\n    about: withhold\n    holds: { ack-delay: 200, answer-delay: 200, send-delay: 200 }\nsections:\n  - name: x\n    about: x alone\n    figures: [1, 2]\n    splits: [x]\n    orderings: [pause]\n";
    let d = DefaultSuite::parse(yaml, "inline").expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let work = tempfile::tempdir().unwrap();
    let s = settings(work.path());
    for (suite_dir, fig1_fails) in [(Path::new("suites"), false), (dir.path(), true)] {
        let p = plan(suite_dir, &d, &profile).expect("plan");
        assert_eq!(p.cases.len(), 2);
        for (i, c) in p.cases.iter().enumerate() {
            let o = run_case(c, &profile, 240 + i as u8, &s).await;
            let cf = o
                .checks
                .iter()
                .find(|k| k.id == CheckId::SigCfAnswer)
                .unwrap();
            let want_fail = fig1_fails && c.figure == 1;
            assert_eq!(cf.verdict == Verdict::Fail, want_fail, "{}", describe(&o));
            if !want_fail {
                assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
            }
        }
    }
}

/// `selftest --mutants`: every fault of the reference SUT is caught by its check (100 %), and
/// the correct SUT passes the same cases.
#[test]
fn selftest_mutant_score_is_100_percent() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "selftest",
            "--mutants",
            "--per-fault",
            "1",
            "--jobs",
            "4",
            "--out",
        ])
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Without --core, the faults that need a SIP/IP core are left out of the table.
    let n = cpm_harness::entity::Fault::ALL
        .iter()
        .filter(|f| !f.needs_core())
        .count();
    assert!(
        stdout.contains(&format!(
            "score: {n}/{n} faults caught by their check (100 %)"
        )),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": 0 not passing"), "{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}");
}

/// SDP-UNIQUE judges the session-ids of the whole run (issue 15): a SUT client-a that uses the
/// same (long, random-looking) session-id in every session passes each case alone but fails
/// the later case of a run; the correct SUT passes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_id_used_in_an_earlier_case_fails_sdp_unique() {
    use cpm_harness::engine::FindingKind;
    use cpm_harness::entity::Fault;
    let yaml = "about: client-a alone\nbase: {}\norderings:\n  in-order:\n    about: no holds\nsections:\n  - name: a\n    about: client-a\n    figures: [1, 2]\n    splits: [client-a]\n";
    let d = DefaultSuite::parse(yaml, "inline").expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let p = plan(Path::new("suites"), &d, &profile).expect("plan");
    assert_eq!(p.cases.len(), 2);
    for faulty in [false, true] {
        let work = tempfile::tempdir().unwrap();
        let mut s = settings(work.path());
        if faulty {
            s.faults = vec![Fault::ConstantSessionId];
        }
        let mut verdicts = Vec::new();
        for (i, c) in p.cases.iter().enumerate() {
            let o = run_case(c, &profile, 252 + i as u8, &s).await;
            let u = o
                .checks
                .iter()
                .find(|k| k.id == CheckId::SdpUnique)
                .unwrap_or_else(|| panic!("no SDP-UNIQUE verdict: {}", describe(&o)));
            verdicts.push((u.verdict, u.clone(), describe(&o)));
        }
        if faulty {
            assert_eq!(verdicts[0].0, Verdict::Pass, "{}", verdicts[0].2);
            assert_eq!(verdicts[1].0, Verdict::Fail, "{}", verdicts[1].2);
            assert!(verdicts[1].1.findings.iter().any(|f| matches!(
                &f.kind,
                FindingKind::SessionIdInEarlierCase { case, .. } if *case == p.cases[0].id
            )));
        } else {
            for (v, _, d) in &verdicts {
                assert_eq!(*v, Verdict::Pass, "{d}");
            }
        }
    }
}

/// MEDIA-DELIVERY judges delivery against what a SUT client-a sent on the wire, not the
/// harness's pattern (issue 15): a client-a that sends bytes of its own passes when every
/// member got them, and fails when a relay of the SUT cut them. A profile whose trigger names
/// `{content}` pins the content: client-a must then send exactly the file it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_is_judged_against_what_client_a_sent_or_was_pinned_to() {
    use cpm_harness::engine::FindingKind as K;
    use cpm_harness::entity::Fault;
    use cpm_harness::topology::Role;
    let yaml = "about: client-a\nbase: {}\norderings:\n  in-order:\n    about: no holds\nsections:\n  - name: a\n    about: client-a, alone and with pf-b\n    figures: [1]\n    splits: [client-a, client-a+pf-b, client-a+pf-a]\n";
    let d = DefaultSuite::parse(yaml, "inline").expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let dir = tempfile::tempdir().unwrap();
    let pinned_path = dir.path().join("pinned.yaml");
    let text = std::fs::read_to_string("profiles/reference.yaml").unwrap();
    assert!(text.contains("trigger: { stdin-line: \"send {size}\" }"));
    std::fs::write(
        &pinned_path,
        text.replace(
            "trigger: { stdin-line: \"send {size}\" }",
            "trigger: { stdin-line: \"send-file {content}\" }",
        ),
    )
    .unwrap();
    let pinned = Profile::load(&pinned_path).expect("pinned profile");
    assert!(pinned.pins_content() && !profile.pins_content());
    let p = plan(Path::new("suites"), &d, &profile).expect("plan");
    let alone = p
        .cases
        .iter()
        .find(|c| c.sut.len() == 1)
        .expect("client-a alone");
    let with = |r: Role| {
        p.cases
            .iter()
            .find(|c| c.sut.len() == 2 && c.sut.contains(&r))
            .expect("a two-role split")
    };
    let (with_pfb, with_pfa) = (with(Role::PfB), with(Role::PfA));
    let work = tempfile::tempdir().unwrap();
    // (profile, case, faults, expected MEDIA-DELIVERY verdict, the failure expected)
    type Expect = fn(&K) -> bool;
    let none: Expect = |_| true;
    let runs: Vec<(&Profile, _, Vec<Fault>, Verdict, Expect)> = vec![
        (
            &profile,
            alone,
            vec![Fault::OwnContent],
            Verdict::Pass,
            none,
        ),
        // client-a's link hidden (pf-a is the SUT's too): judged from the first visible hop.
        (
            &profile,
            with_pfa,
            vec![Fault::OwnContent],
            Verdict::Pass,
            none,
        ),
        (
            &profile,
            with_pfb,
            vec![Fault::OwnContent, Fault::RelayTruncate],
            Verdict::Fail,
            |k| {
                matches!(
                    k,
                    K::DeliveryIncomplete { .. }
                        | K::DeliveryLength { .. }
                        | K::DeliveryDigest { .. }
                )
            },
        ),
        (&pinned, alone, vec![], Verdict::Pass, none),
        (
            &pinned,
            alone,
            vec![Fault::OwnContent],
            Verdict::Fail,
            |k| matches!(k, K::SentOtherThanPinned { .. }),
        ),
    ];
    let mut problems = String::new();
    for (i, (prof, case, faults, want, expect)) in runs.into_iter().enumerate() {
        let mut s = settings(&work.path().join(i.to_string()));
        s.faults = faults.clone();
        let o = run_case(case, prof, 254, &s).await;
        let md = o
            .checks
            .iter()
            .find(|c| c.id == CheckId::MediaDelivery)
            .unwrap();
        let reason_ok = want == Verdict::Pass
            || md
                .findings
                .iter()
                .any(|f| f.class == cpm_harness::engine::Class::Fail && expect(&f.kind));
        if md.verdict != want || !reason_ok {
            problems.push_str(&format!(
                "{} {:?} (pinned: {}): MEDIA-DELIVERY {} instead of {}\n{}",
                case.id,
                faults,
                prof.pins_content(),
                md.verdict.as_str(),
                want.as_str(),
                describe(&o)
            ));
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

/// The reports-success cases of the default suite (FIG 1 × pf-a, x, pf-b, client-b, network)
/// against the SUT of `profile_path`, judged with `judged_as` declared, each case on its own
/// net (130–134: no other test uses them).
async fn reports_success_cases(
    profile_path: &str,
    judged_as: cpm_harness::config::ReportTiming,
) -> Vec<CaseOutcome> {
    let d = DefaultSuite::load(Path::new("suites/default.yaml")).expect("default suite");
    let mut profile = Profile::load(Path::new(profile_path)).expect("profile");
    profile.report_timing = judged_as;
    let p = plan(Path::new("suites"), &d, &profile).expect("plan");
    let cases: Vec<_> = p
        .cases
        .into_iter()
        .filter(|c| c.id.ends_with("/reports-success"))
        .collect();
    assert_eq!(
        cases.len(),
        5,
        "{:?}",
        cases.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    let work = tempfile::tempdir().unwrap();
    let s = settings(work.path());
    let runs = cases.into_iter().enumerate().map(|(i, c)| {
        let (s, profile) = (s.clone(), profile.clone());
        tokio::spawn(async move { run_case(&c, &profile, 130 + i as u8, &s).await })
    });
    futures_join(runs.collect()).await
}

/// MEDIA-REPORT's finding kinds in `o`, with its verdict.
fn media_report(o: &CaseOutcome) -> (Verdict, Vec<String>) {
    let r = o
        .checks
        .iter()
        .find(|k| k.id == CheckId::MediaReport)
        .expect("MEDIA-REPORT judged");
    (
        r.verdict,
        r.findings.iter().map(|f| f.kind.to_string()).collect(),
    )
}

/// `report-timing` is a real mode of the reference SUT (`sut --report-timing on-receipt`,
/// profiles/reference-on-receipt.yaml), not only a re-judged fault. (a) Declared as it
/// behaves, it passes every reports-success case. (b) The same SUT declared `after-delivery`
/// fails MEDIA-REPORT where a middle entity of it plays alone (its REPORT precedes its
/// downstream's, being sent before the last chunk is relayed on, so the order is causal; pf-a's
/// downstream never reports at all, since client-a ends the call on pf-a's REPORT). client-b
/// has no middle entity, and in the network split every hop below pf-a is between the SUT's
/// own roles and not on the harness's wire: both pass. (c) `on-receipt` permits a REPORT as soon
/// as the whole message arrived and does not oblige one that early, so the after-delivery
/// reference SUT declared `on-receipt` passes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_timing_on_receipt_is_a_mode_of_the_reference_sut() {
    use cpm_harness::config::ReportTiming::{AfterDelivery, OnReceipt};
    let mut failures = String::new();
    for o in reports_success_cases("profiles/reference-on-receipt.yaml", OnReceipt).await {
        if o.verdict != Verdict::Pass {
            failures.push_str(&format!("(a) {}", describe(&o)));
        }
    }
    for o in reports_success_cases("profiles/reference-on-receipt.yaml", AfterDelivery).await {
        let (v, kinds) = media_report(&o);
        let early = kinds.iter().any(|k| {
            k.contains("reported delivery before its downstream did")
                || k.contains("reported delivery that its downstream never reported")
        });
        let judged = ["pf-a", "x", "pf-b"].contains(&o.split.as_str());
        if (v == Verdict::Fail) != judged || early != judged {
            failures.push_str(&format!("(b) {}: {v:?} {kinds:#?}\n", o.id));
        }
    }
    for o in reports_success_cases("profiles/reference.yaml", OnReceipt).await {
        if o.verdict != Verdict::Pass {
            failures.push_str(&format!("(c) {}", describe(&o)));
        }
    }
    assert!(failures.is_empty(), "{failures}");
}
