//! The checker over real loopback runs: the reference SUT plays some roles (no recorder),
//! the harness the others (with a recorder and its discriminating holds), then
//! `observe` + `run_checks` judge the wire events.
//!
//! - every figure × several splits (each single role, {pf-a, x, pf-b}, and the self-check):
//!   the correct reference passes every check (or it is not observable in that split);
//! - each deliberate fault of the reference SUT makes its target check fail;
//! - synthetic mutations of a correct recording make each check fail, one test per check id,
//!   independent of the faults;
//! - hostile input never makes `observe` or the checks panic.
//!
//! Nets 150..=199 only; each test its own net, each case in it its own ports.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common_inproc;

use bytes::Bytes;
use common_inproc::*;
use cpm_harness::codec::sip::Transport;
use cpm_harness::config::Link;
use cpm_harness::config::{GroupKind, MiddleOpener, SetupMode, Trigger, Variant};
use cpm_harness::engine::checks::run_checks;
use cpm_harness::engine::finding::SipStep;
use cpm_harness::engine::observe;
use cpm_harness::engine::{
    CaseContext, CheckId, CheckResult, Cite, Class, Finding, FindingKind as K, Verdict,
};
use cpm_harness::entity::{Fault, Holds, Leave};
use cpm_harness::topology::{Role, Topology};
use cpm_harness::trace::WireEvent;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The correct reference passes every check of every split of a figure (or the check is
/// not observable there); in the self-check every check judges something.
async fn figure_passes(net: u8, variant: Variant) {
    let runs = futures_join(SPLITS.iter().enumerate().map(|(i, sut)| {
        let case = Case::new(variant.clone(), sut);
        async move { (case.sut.clone(), run_case(net, i as u16, &case).await) }
    }))
    .await;
    let mut failures = String::new();
    for (sut, run) in &runs {
        let results = judge(run);
        assert_eq!(results.len(), CheckId::ALL.len());
        let bad: Vec<&CheckResult> = results
            .iter()
            .filter(|r| !matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
            .collect();
        if !bad.is_empty() {
            failures.push_str(&format!(
                "{} split {}: warnings {:?}\n{}",
                variant.id(),
                split_name(sut),
                run.warnings,
                show(&results)
            ));
        }
        if sut.is_empty() {
            for r in &results {
                // SIG-TLS judges SIP over TLS (mutation_sig_tls).
                let may_hide = (r.id == CheckId::LinkReuse && !variant.reuse)
                    || (r.id == CheckId::SigTls && variant.transport != Transport::Tls)
                    || judged_elsewhere(r.id);
                assert!(
                    r.verdict == Verdict::Pass || may_hide,
                    "{} self-check: {} is {}\n{}",
                    variant.id(),
                    r.id,
                    r.verdict.as_str(),
                    show(&results)
                );
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure1_every_split_passes() {
    let mut v = var(1, Transport::Udp);
    v.trigger = Trigger::On200;
    v.reuse = true;
    figure_passes(150, v).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure2_every_split_passes() {
    let mut v = var(2, Transport::Tcp);
    v.trigger = Trigger::OnSend;
    v.x_trigger = Some(Trigger::OnAck);
    figure_passes(151, v).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure3_every_split_passes() {
    let mut v = var(3, Transport::Udp);
    v.setup = SetupMode::Preset;
    figure_passes(152, v).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure4_every_split_passes() {
    let mut v = var(4, Transport::Tcp);
    v.reuse = true;
    figure_passes(153, v).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure5_every_split_passes() {
    let mut v = var(5, Transport::Udp);
    v.l23_opener = MiddleOpener::X;
    v.x_trigger = Some(Trigger::OnSend);
    v.chunk_size = 5000;
    figure_passes(154, v).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure6_every_split_passes() {
    let mut v = var(6, Transport::Tcp);
    v.group = GroupKind::Adhoc;
    figure_passes(155, v).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure7_every_split_passes() {
    let v = var(7, Transport::Udp);
    figure_passes(156, v).await;
}

/// In the self-check both ends record everything: each message, opening and byte stream
/// is kept once, and the content is the same on every hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_check_recordings_are_deduplicated() {
    let run = run_case(157, 0, &Case::new(var(2, Transport::Tcp), &[])).await;
    let obs = observe(&run.ctx, &run.events);
    assert!(!obs.sip.is_empty());
    // Both ends recorded every SIP message and opening; the one-copy stream keeps each once.
    use cpm_harness::trace::{Seen, WireEvent};
    let count = |seen: Seen, open: bool| {
        run.records
            .iter()
            .filter(|r| r.seen == seen)
            .filter(|r| match r.ev {
                WireEvent::Sip { .. } => !open,
                WireEvent::TcpOpen { .. } => open,
                _ => false,
            })
            .count()
    };
    assert_eq!(count(Seen::Sent, false), obs.sip.len());
    assert_eq!(count(Seen::Received, false), obs.sip.len());
    assert_eq!(count(Seen::Sent, true), obs.conns.len());
    assert_eq!(count(Seen::Received, true), obs.conns.len());
    // One L1, one L2, an L3 and an L4 per member (no reuse), besides SIP over TCP.
    let links: Vec<_> = obs.conns.iter().filter(|c| c.is_link()).collect();
    assert_eq!(links.len(), 2 + 2 * 3, "{links:#?}");
    assert!(obs.conns.iter().all(|c| c.open_seen));
    assert!(obs
        .conns
        .iter()
        .all(|c| c.is_link() != (c.to_sip_port && c.carried_sip)));
    assert!(obs.legs.iter().all(|l| l.ok.is_some() && l.ack.is_some()));
    let mut shas = std::collections::BTreeSet::new();
    for c in &obs.conns {
        for k in c.dirs.iter().flat_map(|d| d.contents.iter()) {
            assert!(k.complete, "{k:?}");
            shas.insert(k.sha256.clone());
        }
        assert!(c.dirs.iter().all(|d| d.error.is_none() && d.trailing == 0));
    }
    assert_eq!(shas.len(), 1, "{shas:?}");
    // Every harness instance saw something.
    assert_eq!(obs.views.len(), run.ctx.topology.instances().len());
}

/// member-declines (issue 16): b1 (on pf-b1 with b2) declines with 486. FIG 2 (x waits for a
/// 200-3, solution 1), FIG 3 (x answers at once, solution 2) and FIG 5 (solution 3): the
/// reference passes every check on every split that can see the decline (or it is not
/// observable), SIG-NON2XX-ACK and SIG-DECLINE pass wherever x or pf-b is the SUT's, b2 and
/// b3 get the whole message and b1 nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_declines_passes() {
    let splits: &[&[Role]] = &[
        &[Role::X],
        &[Role::PfB],
        &[Role::PfA, Role::X, Role::PfB],
        &[],
    ];
    let mut cases = Vec::new();
    for fig in [2u8, 3, 5] {
        for sut in splits {
            let mut case = Case::new(var(fig, Transport::Udp), sut);
            case.scenario = b1_declines();
            cases.push(case);
        }
    }
    let runs = futures_join(cases.into_iter().enumerate().map(|(i, case)| async move {
        let run = run_case(162, i as u16, &case).await;
        (case, run)
    }))
    .await;
    let mut failures = String::new();
    for (case, run) in &runs {
        let results = judge(run);
        let name = format!("{} split {}", case.variant.id(), split_name(&case.sut));
        let bad: Vec<&CheckResult> = results
            .iter()
            .filter(|r| !matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
            .collect();
        if !bad.is_empty() {
            failures.push_str(&format!("{name}: {:?}\n{}", run.warnings, show(&results)));
        }
        for id in [CheckId::SigNon2xxAck, CheckId::SigDecline] {
            let v = verdict_of(&results, id).verdict;
            if v != Verdict::Pass {
                failures.push_str(&format!("{name}: {id} is {}\n", v.as_str()));
            }
        }
        assert!(
            run.ctx.delivered.get("b1").is_none_or(|d| d.bytes == 0),
            "{name}: b1 got content"
        );
        for m in ["b2", "b3"] {
            assert!(
                run.ctx.delivered.get(m).is_some_and(|d| d.complete),
                "{name}: {m} incomplete: {:?}",
                run.ctx.delivered
            );
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// member-never-answers (issue 16 item 7): b1 sends nothing to its INVITE4. The SUT's pf-b
/// gives up on it (Timer B, 1 s here) with a final non-2xx that SIG-NO-ANSWER judges; x
/// goes on as after a decline (SIG-DECLINE); every check passes or cannot see it, b2 and b3
/// get the whole message, b1 nothing. FIG 2 (x waits for a 200-3) and FIG 1 (at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_never_answers_passes() {
    let cases: Vec<Case> = [
        (2u8, &[Role::X][..]),
        (2, &[Role::PfB][..]),
        (2, &[Role::PfA, Role::X, Role::PfB][..]),
        (1, &[Role::PfB][..]),
    ]
    .into_iter()
    .map(|(fig, sut)| {
        let mut case = Case::new(var(fig, Transport::Udp), sut);
        case.scenario = b1_never_answers();
        case
    })
    .collect();
    let runs = futures_join(cases.into_iter().enumerate().map(|(i, case)| async move {
        let run = run_case(177, i as u16, &case).await;
        (case, run)
    }))
    .await;
    let mut failures = String::new();
    for (case, run) in &runs {
        let results = judge(run);
        let name = format!("{} split {}", case.variant.id(), split_name(&case.sut));
        let bad: Vec<&CheckResult> = results
            .iter()
            .filter(|r| !matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
            .collect();
        if !bad.is_empty() {
            failures.push_str(&format!("{name}: {:?}\n{}", run.warnings, show(&results)));
        }
        if case.sut == [Role::PfB] {
            let r = verdict_of(&results, CheckId::SigNoAnswer);
            if !(r.verdict == Verdict::Pass
                && r.findings.iter().any(
                    |f| matches!(&f.kind, K::GaveUpOnMember { member, code, .. } if member == "b1" && *code == 408),
                ))
            {
                failures.push_str(&format!("{name}: SIG-NO-ANSWER\n{}", show(&results)));
            }
        }
        assert!(
            run.ctx.delivered.get("b1").is_none_or(|d| d.bytes == 0),
            "{name}: b1 got content"
        );
        for m in ["b2", "b3"] {
            assert!(
                run.ctx.delivered.get(m).is_some_and(|d| d.complete),
                "{name}: {m} incomplete: {:?}",
                run.ctx.delivered
            );
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// all-decline (issue 16): every member declines. FIG 1 (x answered 200-2 at once: it ends
/// the call with BYE, pf-a relays it) and FIG 2 (x refuses INVITE2, pf-a relays the
/// refusal): the reference passes on every split that sees it, SIG-ALL-DECLINE judges
/// something wherever client-a, pf-a or x is the SUT's, and nobody gets content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_decline_passes() {
    let splits: &[&[Role]] = &[
        &[Role::ClientA],
        &[Role::PfA],
        &[Role::X],
        &[Role::PfA, Role::X, Role::PfB],
        &[],
    ];
    let mut cases = Vec::new();
    for fig in [1u8, 2] {
        for sut in splits {
            // In FIG 1 a SUT client-a may have its content acknowledged before x's BYE.
            if fig == 1 && *sut == [Role::ClientA] {
                continue;
            }
            let mut case = Case::new(var(fig, Transport::Udp), sut);
            case.scenario = all_decline();
            cases.push(case);
        }
    }
    let runs = futures_join(cases.into_iter().enumerate().map(|(i, case)| async move {
        let run = run_case(165, i as u16, &case).await;
        (case, run)
    }))
    .await;
    let mut failures = String::new();
    for (case, run) in &runs {
        let results = judge(run);
        let name = format!("{} split {}", case.variant.id(), split_name(&case.sut));
        let bad: Vec<&CheckResult> = results
            .iter()
            .filter(|r| !matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
            .collect();
        if !bad.is_empty() {
            failures.push_str(&format!("{name}: {:?}\n{}", run.warnings, show(&results)));
        }
        // client-a in FIG 2 only ACKs the refusal: SIG-NON2XX-ACK judges it.
        let judged = if case.sut == [Role::ClientA] && case.variant.figure.n() == 2 {
            CheckId::SigNon2xxAck
        } else {
            CheckId::SigAllDecline
        };
        let v = verdict_of(&results, judged).verdict;
        if v != Verdict::Pass {
            failures.push_str(&format!("{name}: {judged} is {}\n", v.as_str()));
        }
        assert!(
            run.ctx.delivered.values().all(|d| d.bytes == 0),
            "{name}: content delivered: {:?}",
            run.ctx.delivered
        );
    }
    assert!(failures.is_empty(), "{failures}");
}

/// sender-aborts (issue 16): client-a ends its message with `#` after its third chunk (FIG 1;
/// relaying is the same in every figure): the reference forwards the abort on every hop and
/// no member is given the message as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_aborts_passes() {
    let splits: &[&[Role]] = &[
        &[Role::PfA],
        &[Role::X],
        &[Role::PfB],
        &[Role::PfA, Role::X, Role::PfB],
        &[],
    ];
    let runs = futures_join(splits.iter().enumerate().map(|(i, sut)| {
        let mut case = Case::new(var(1, Transport::Udp), sut);
        case.scenario = sender_aborts();
        async move {
            let run = run_case(167, i as u16, &case).await;
            (case, run)
        }
    }))
    .await;
    let mut failures = String::new();
    for (case, run) in &runs {
        let results = judge(run);
        let name = format!("{} split {}", case.variant.id(), split_name(&case.sut));
        if results
            .iter()
            .any(|r| !matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
        {
            failures.push_str(&format!("{name}: {:?}\n{}", run.warnings, show(&results)));
        }
        let v = verdict_of(&results, CheckId::MediaAbort).verdict;
        if v != Verdict::Pass {
            failures.push_str(&format!("{name}: MEDIA-ABORT is {}\n", v.as_str()));
        }
        assert!(
            run.ctx.delivered.values().all(|d| !d.complete),
            "{name}: an aborted message delivered: {:?}",
            run.ctx.delivered
        );
    }
    assert!(failures.is_empty(), "{failures}");
}

/// member-leaves (issue 16): b1 sends BYE mid-transfer (FIG 1), b3 closes its link without
/// one (FIG 3): the reference releases the member up to x and only it; the others get the
/// whole message; SIG-LEAVE judges something wherever x or pf-b is the SUT's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_leaves_passes() {
    let splits: &[&[Role]] = &[
        &[Role::X],
        &[Role::PfB],
        &[Role::PfA, Role::X, Role::PfB],
        &[],
    ];
    let mut cases = Vec::new();
    for (fig, scenario, gone, stay) in [
        (1u8, b1_leaves as fn() -> Holds, "b1", ["b2", "b3"]),
        (3, b3_closes, "b3", ["b1", "b2"]),
    ] {
        for sut in splits {
            let mut case = Case::new(var(fig, Transport::Udp), sut);
            case.scenario = scenario();
            cases.push((case, gone, stay));
        }
    }
    let runs = futures_join(cases.into_iter().enumerate().map(
        |(i, (case, gone, stay))| async move {
            let run = run_case(169, i as u16, &case).await;
            (case, gone, stay, run)
        },
    ))
    .await;
    let mut failures = String::new();
    for (case, gone, stay, run) in &runs {
        let results = judge(run);
        let name = format!("{} split {}", case.variant.id(), split_name(&case.sut));
        if results
            .iter()
            .any(|r| !matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
        {
            failures.push_str(&format!("{name}: {:?}\n{}", run.warnings, show(&results)));
        }
        let v = verdict_of(&results, CheckId::SigLeave).verdict;
        if v != Verdict::Pass {
            failures.push_str(&format!("{name}: SIG-LEAVE is {}\n", v.as_str()));
        }
        assert!(
            run.ctx.delivered.get(*gone).is_none_or(|d| !d.complete),
            "{name}: {gone} left, yet got everything"
        );
        for m in stay {
            assert!(
                run.ctx.delivered.get(*m).is_some_and(|d| d.complete),
                "{name}: {m} incomplete: {:?}",
                run.ctx.delivered
            );
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// member-rejects-content (issue 16): b1 answers the message with 413 (FIG 1): the reference
/// pf-b stops it toward b1 and releases b1; b2 and b3 get it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_rejects_content_passes() {
    let splits: &[&[Role]] = &[
        &[Role::X],
        &[Role::PfB],
        &[Role::PfA, Role::X, Role::PfB],
        &[],
    ];
    let runs = futures_join(splits.iter().enumerate().map(|(i, sut)| {
        let mut case = Case::new(var(1, Transport::Udp), sut);
        case.scenario = b1_refuses();
        async move {
            let run = run_case(171, i as u16, &case).await;
            (case, run)
        }
    }))
    .await;
    let mut failures = String::new();
    for (case, run) in &runs {
        let results = judge(run);
        let name = format!("{} split {}", case.variant.id(), split_name(&case.sut));
        if results
            .iter()
            .any(|r| !matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
        {
            failures.push_str(&format!("{name}: {:?}\n{}", run.warnings, show(&results)));
        }
        if case.sut.is_empty() || case.sut.contains(&Role::PfB) {
            let v = verdict_of(&results, CheckId::MediaReject).verdict;
            if v != Verdict::Pass {
                failures.push_str(&format!("{name}: MEDIA-REJECT is {}\n", v.as_str()));
            }
        }
        for m in ["b2", "b3"] {
            assert!(
                run.ctx.delivered.get(m).is_some_and(|d| d.complete),
                "{name}: {m} incomplete: {:?}",
                run.ctx.delivered
            );
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// reports (issue 16): client-a asks for success REPORTs, or for no responses (FIG 1;
/// relaying is the same in every figure). Every SUT role that receives or relays the message
/// honours it: MEDIA-REPORT / MEDIA-NO-RESPONSE pass (judging something), every member gets
/// the whole message, and nobody waits for a response that never comes (the run ends well
/// inside its timeout, with no warning of a missing report or response).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_pass() {
    // Every split but client-a alone: the harness's client-a asks for the reports.
    let splits = &SPLITS[1..];
    let mut cases = Vec::new();
    for (scenario, id) in [
        (success_report as fn() -> Holds, CheckId::MediaReport),
        (failure_report_no, CheckId::MediaNoResponse),
    ] {
        for sut in splits {
            let mut case = Case::new(var(1, Transport::Udp), sut);
            case.scenario = scenario();
            case.timeout = Duration::from_secs(5);
            cases.push((case, id));
        }
    }
    let runs = futures_join(
        cases
            .into_iter()
            .enumerate()
            .map(|(i, (case, id))| async move {
                let t0 = std::time::Instant::now();
                let run = run_case(174, i as u16, &case).await;
                (case, id, run, t0.elapsed())
            }),
    )
    .await;
    let mut failures = String::new();
    for (case, id, run, took) in &runs {
        let results = judge(run);
        let name = format!("{} split {} {id}", case.variant.id(), split_name(&case.sut));
        if results
            .iter()
            .any(|r| !matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
        {
            failures.push_str(&format!("{name}: {:?}\n{}", run.warnings, show(&results)));
        }
        let v = verdict_of(&results, *id).verdict;
        if v != Verdict::Pass {
            failures.push_str(&format!("{name}: {id} is {}\n", v.as_str()));
        }
        if run
            .warnings
            .iter()
            .any(|w| w.contains("REPORT") || w.contains("MSRP response"))
        {
            failures.push_str(&format!("{name}: warnings {:?}\n", run.warnings));
        }
        if *took >= case.timeout {
            failures.push_str(&format!("{name}: ran into its timeout ({took:?})\n"));
        }
        for m in ["b1", "b2", "b3"] {
            if !run.ctx.delivered.get(m).is_some_and(|d| d.complete) {
                failures.push_str(&format!(
                    "{name}: {m} incomplete: {:?}\n",
                    run.ctx.delivered
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// MEDIA-REPORT follows the profile's PICS choice: a pf-b or a pf-a that reports on receipt
/// of the whole message (before its downstream reported) fails where `after-delivery` is
/// declared and passes where `on-receipt` is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_timing_follows_the_declared_pics() {
    use cpm_harness::config::ReportTiming;
    let mut case = Case::new(var(1, Transport::Udp), &[Role::PfB]);
    case.scenario = success_report();
    case.faults = vec![Fault::ReportBeforeDelivery];
    let mut run = run_case(175, 0, &case).await;
    let after = judge(&run);
    assert!(
        fails_with(verdict_of(&after, CheckId::MediaReport), |f| matches!(
            f.kind,
            K::ReportBeforeDelivery { .. } | K::ReportWithoutDelivery { .. }
        )),
        "{}",
        show(&after)
    );
    run.ctx.report_timing = ReportTiming::OnReceipt;
    let on_receipt = judge(&run);
    assert_eq!(
        verdict_of(&on_receipt, CheckId::MediaReport).verdict,
        Verdict::Pass,
        "{}",
        show(&on_receipt)
    );
    // A pf-a that reports on receipt: client-a ends the call on its REPORT, so x's hop, which
    // carried the whole message, never reports; under after-delivery that fails too.
    let mut case = Case::new(var(1, Transport::Udp), &[Role::PfA]);
    case.scenario = success_report();
    case.faults = vec![Fault::ReportBeforeDelivery];
    let mut run = run_case(175, 1, &case).await;
    let after = judge(&run);
    assert!(
        fails_with(verdict_of(&after, CheckId::MediaReport), |f| matches!(
            &f.kind,
            K::ReportWithoutDelivery { entity, .. } if entity == "pf-a"
        )),
        "{}",
        show(&after)
    );
    run.ctx.report_timing = ReportTiming::OnReceipt;
    let on_receipt = judge(&run);
    assert_eq!(
        verdict_of(&on_receipt, CheckId::MediaReport).verdict,
        Verdict::Pass,
        "{}",
        show(&on_receipt)
    );
}

/// Item 7: the wait for a success REPORT that never comes is the profile's PIXIT value
/// (`report-wait-ms`), not a constant: against a client-b that never reports, client-a ends
/// its session after the wait it was given — a long wait makes the case last that much longer —
/// and neither case runs into its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_wait_is_the_profiles_value() {
    let runs = futures_join([100u64, 1500].into_iter().enumerate().map(|(i, wait)| {
        let mut case = Case::new(var(1, Transport::Udp), &[Role::ClientB]);
        case.scenario = Holds {
            report_wait_ms: Some(wait),
            ..success_report()
        };
        case.faults = vec![Fault::NoSuccessReport];
        case.timeout = Duration::from_secs(6);
        async move {
            let t0 = std::time::Instant::now();
            let run = run_case(176, i as u16, &case).await;
            (wait, run, t0.elapsed())
        }
    }))
    .await;
    for (wait, run, took) in &runs {
        assert!(
            *took < Duration::from_secs(5),
            "wait {wait} ms: ran into the timeout ({took:?})"
        );
        assert!(
            run.warnings
                .iter()
                .any(|w| w.contains("no success REPORT") && w.contains(&format!("{wait} ms"))),
            "wait {wait} ms: {:?}",
            run.warnings
        );
    }
    let (short, long) = (runs[0].2, runs[1].2);
    assert!(
        long >= short + Duration::from_millis(1000),
        "report-wait-ms 1500 took {long:?}, 100 took {short:?}"
    );
}

// ------------------------------------------------------------------------------ faults

struct FaultCase {
    fault: Fault,
    fig: u8,
    sut: &'static [Role],
    tweak: fn(&mut Variant),
    /// The exception scenario the harness plays.
    scenario: fn() -> Holds,
    /// The reason the target check must give: a failure of this kind.
    expect: fn(&K) -> bool,
}

fn no_tweak(_: &mut Variant) {}

fn no_scenario() -> Holds {
    Holds::default()
}

/// all-decline: every member declines.
fn all_decline() -> Holds {
    Holds {
        decline: [
            ("b1".to_string(), 486),
            ("b2".to_string(), 486),
            ("b3".to_string(), 603),
        ]
        .into(),
        chunk_gap: Duration::from_millis(50),
        ..Holds::default()
    }
}

/// sender-aborts: client-a ends its message with `#` after its third chunk.
fn sender_aborts() -> Holds {
    Holds {
        abort_after_chunks: Some(3),
        ..Holds::default()
    }
}

/// reports-success: client-a sends with `Success-Report: yes`; the members report 100 ms late.
fn success_report() -> Holds {
    Holds {
        success_report: true,
        report_delay: Duration::from_millis(100),
        ..Holds::default()
    }
}

/// reports-no-failure: client-a sends with `Failure-Report: no`.
fn failure_report_no() -> Holds {
    Holds {
        failure_report_no: true,
        ..Holds::default()
    }
}

/// member-leaves: b1 sends BYE once its first chunk came; client-a leaves 30 ms between chunks.
fn b1_leaves() -> Holds {
    Holds {
        leave: [("b1".to_string(), Leave::Bye)].into(),
        chunk_gap: Duration::from_millis(30),
        ..Holds::default()
    }
}

/// member-leaves-close: b3 closes its link without BYE once its first chunk came.
fn b3_closes() -> Holds {
    Holds {
        leave: [("b3".to_string(), Leave::Close)].into(),
        chunk_gap: Duration::from_millis(30),
        ..Holds::default()
    }
}

/// member-rejects-content: b1 answers every chunk with 413; client-a leaves 30 ms between
/// chunks.
fn b1_refuses() -> Holds {
    Holds {
        reject_content: [("b1".to_string(), 413)].into(),
        chunk_gap: Duration::from_millis(30),
        ..Holds::default()
    }
}

/// member-declines: b1 (sharing pf-b1 with b2) answers INVITE4 with 486; b2 and b3 answer
/// 300 ms late at pf-b and at client-b, so that x sees the decline well before a 200-3 even
/// on a loaded machine.
fn b1_declines() -> Holds {
    Holds {
        decline: [("b1".to_string(), 486)].into(),
        answer_delay_ms_per_member: [("b2".to_string(), 300), ("b3".to_string(), 300)].into(),
        ..Holds::default()
    }
}

/// member-never-answers: b1 sends nothing at all to its INVITE4.
fn b1_never_answers() -> Holds {
    Holds {
        no_answer: ["b1".to_string()].into(),
        ..Holds::default()
    }
}

const FAULT_CASES: &[FaultCase] = &[
    FaultCase {
        fault: Fault::PathSchemeMsrp,
        fig: 1,
        sut: &[Role::X],
        tweak: msrps,
        scenario: no_scenario,
        expect: |k| matches!(k, K::PathSchemeMismatch { uri, proto } if uri.starts_with("msrp://") && proto == "TCP/TLS/MSRP"),
    },
    FaultCase {
        fault: Fault::PlainOverTls,
        fig: 1,
        sut: &[Role::X],
        tweak: msrps,
        scenario: no_scenario,
        expect: |k| matches!(k, K::PlainWhereTls { opener, uri } if opener == "x" && uri.starts_with("msrps://")),
    },
    FaultCase {
        fault: Fault::PlainSipOverTls,
        fig: 1,
        sut: &[Role::X],
        tweak: sip_tls,
        scenario: no_scenario,
        expect: |k| matches!(k, K::SipPlainWhereTls { entity, transport } if entity == "x" && transport == "TCP"),
    },
    FaultCase {
        fault: Fault::MlineProto,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::WrongProto { mline } if mline.contains("TCP/RTP/AVP")),
    },
    FaultCase {
        fault: Fault::SdpWrongC,
        fig: 1,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::ConnectionNotOwn { line, .. } if line.ends_with("127.254.254.254")),
    },
    FaultCase {
        fault: Fault::SdpPortMismatch,
        fig: 1,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::PortMismatch { .. }),
    },
    FaultCase {
        fault: Fault::PathUdp,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::PathTransport { transport, .. } if transport == "udp"),
    },
    FaultCase {
        fault: Fault::SdpCopyUpstreamPath,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::PathCopied { entity, .. } if entity == "pf-a"),
    },
    FaultCase {
        fault: Fault::SessionIdReuse,
        fig: 1,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::SessionIdWeak { .. } | K::SessionIdClash { .. }),
    },
    FaultCase {
        fault: Fault::ConstantSessionId,
        fig: 1,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::SessionIdClash { session_id, .. } if session_id.len() >= 16),
    },
    FaultCase {
        fault: Fault::MissingAcceptTypes,
        fig: 1,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::AcceptTypesEmpty | K::MissingAttribute { .. }),
    },
    FaultCase {
        fault: Fault::WrongSetup,
        fig: 1,
        sut: &[Role::ClientB],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::SetupWrongOpener { link: Link::L4, expected, .. } if expected.starts_with("pf-b")),
    },
    FaultCase {
        fault: Fault::ParamsInWrongMessage,
        fig: 1,
        sut: &[Role::ClientB],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::NoParams { .. }),
    },
    FaultCase {
        fault: Fault::WrongDirection,
        fig: 1,
        sut: &[Role::ClientB],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| {
            matches!(
                k,
                K::LinkOpenedByWrongSide {
                    link: Link::L4,
                    expected: Role::PfB,
                    ..
                }
            )
        },
    },
    FaultCase {
        fault: Fault::ConnectWrongTarget,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::WrongTarget { sip_port: true, .. }),
    },
    FaultCase {
        fault: Fault::EarlyTrigger,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::LinkBeforeTrigger { entity, .. } if entity == "pf-a"),
    },
    FaultCase {
        fault: Fault::LateTrigger,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::LinkLate { entity, .. } | K::LinkAfterWindow { entity, .. } if entity == "pf-a"),
    },
    FaultCase {
        fault: Fault::ConnectBefore200,
        fig: 1,
        sut: &[Role::ClientA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::LinkBeforeTrigger { entity, .. } if entity == "client-a"),
    },
    FaultCase {
        fault: Fault::NoBindSend,
        fig: 3,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::NoBindingRequest { .. }),
    },
    FaultCase {
        fault: Fault::NoReuse,
        fig: 1,
        sut: &[Role::X],
        tweak: reuse,
        scenario: no_scenario,
        expect: |k| matches!(k, K::NewConnectionWhileOpen { entity, .. } if entity == "x"),
    },
    FaultCase {
        fault: Fault::Skip200Upstream,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::NeverSentDespiteCause { sender, step: SipStep::Ok, .. } if sender == "pf-a"),
    },
    FaultCase {
        fault: Fault::CfAnswerEarly,
        fig: 2,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::CfAnswerEarly { figure: 2, .. }),
    },
    FaultCase {
        fault: Fault::CfAnswerLate,
        fig: 1,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::CfAnswerLate { figure: 1, .. }),
    },
    FaultCase {
        fault: Fault::AckTooEarly,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::AckBeforeUpstream { .. }),
    },
    FaultCase {
        fault: Fault::NoAckDownstream,
        fig: 1,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::NeverAcked { entity, .. } if entity == "x"),
    },
    FaultCase {
        fault: Fault::FanoutFirstOnly,
        fig: 1,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::NoInviteForMember { .. }),
    },
    FaultCase {
        fault: Fault::AdhocToGroupUri,
        fig: 1,
        sut: &[Role::ClientA],
        tweak: adhoc,
        scenario: no_scenario,
        expect: |k| matches!(k, K::GroupRequestUriWrong { adhoc: true, want, .. } if want.contains("factory")),
    },
    FaultCase {
        fault: Fault::ReuseCallId,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::CallIdReused { .. }),
    },
    FaultCase {
        fault: Fault::NoByeDownstream,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::ByeNotPropagated { entity, .. } if entity == "pf-a"),
    },
    FaultCase {
        fault: Fault::RelayTruncate,
        fig: 1,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::DeliveryLength { bytes, sent: 20000, .. } if *bytes < 20000),
    },
    FaultCase {
        fault: Fault::WrongToPath,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::ToPathNotPeers { peer, .. } if peer == "x"),
    },
    FaultCase {
        fault: Fault::BadByteRange,
        fig: 1,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::ByteRangeUnparsable { value, .. } if value.starts_with("0-")),
    },
    FaultCase {
        fault: Fault::NoMsrp200,
        fig: 1,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::SendUnanswered { .. }),
    },
    FaultCase {
        fault: Fault::MalformedSip,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::SipUnparsable { error } if error.contains("without a colon")),
    },
    FaultCase {
        fault: Fault::UnbracketedIpv6,
        fig: 2,
        sut: &[Role::X],
        tweak: ipv6,
        scenario: no_scenario,
        expect: |k| matches!(k, K::SipHost { header, value, .. } if header == "From" && value.ends_with("@::1")),
    },
    FaultCase {
        fault: Fault::CIp4OnIpv6,
        fig: 1,
        sut: &[Role::PfA],
        tweak: ipv6,
        scenario: no_scenario,
        expect: |k| matches!(k, K::ConnectionTypeMismatch { line } if line == "c=IN IP4 ::1"),
    },
    FaultCase {
        fault: Fault::CpimAltered,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: no_scenario,
        expect: |k| matches!(k, K::ContentAltered { changed, .. } if !changed.is_empty()),
    },
    FaultCase {
        fault: Fault::NoAckNon2xx,
        fig: 2,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: b1_declines,
        expect: |k| matches!(k, K::Non2xxNotAcked { entity, .. } if entity == "x"),
    },
    FaultCase {
        fault: Fault::NoByeUpstream,
        fig: 1,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: all_decline,
        expect: |k| matches!(k, K::UpstreamLeftOpen { entity, .. } if entity == "x"),
    },
    FaultCase {
        fault: Fault::AbortAsEnd,
        fig: 1,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: sender_aborts,
        expect: |k| matches!(k, K::AbortForwardedAsEnd { entity, .. } if entity.starts_with("pf-b")),
    },
    FaultCase {
        fault: Fault::NoReleaseOnClose,
        fig: 3,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: b3_closes,
        expect: |k| matches!(k, K::LeftMemberNotReleased { member, .. } if member == "b3"),
    },
    FaultCase {
        fault: Fault::ContinueAfterReject,
        fig: 1,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: b1_refuses,
        expect: |k| matches!(k, K::ContinuedAfterRefusal { member, .. } if member == "b1"),
    },
    FaultCase {
        fault: Fault::NoSuccessReport,
        fig: 1,
        sut: &[Role::ClientB],
        tweak: no_tweak,
        scenario: success_report,
        expect: |k| matches!(k, K::ReportMissing { entity, .. } if entity.starts_with('b')),
    },
    FaultCase {
        fault: Fault::ReportPartialRange,
        fig: 1,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: success_report,
        expect: |k| matches!(k, K::ReportPartial { entity, covered, total, .. } if entity.starts_with("pf-b") && covered < total),
    },
    FaultCase {
        fault: Fault::ReportNotPropagated,
        fig: 1,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: success_report,
        expect: |k| matches!(k, K::ReportNotAskedDownstream { entity, .. } if entity == "x"),
    },
    FaultCase {
        fault: Fault::ReportBeforeDelivery,
        fig: 1,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: success_report,
        // Before the member's REPORT, or with none at all where client-a ended the call on
        // the REPORTs that pf-b's one set off upstream before the member's delayed one.
        expect: |k| matches!(k, K::ReportBeforeDelivery { entity, .. } | K::ReportWithoutDelivery { entity, .. } if entity.starts_with("pf-b")),
    },
    FaultCase {
        fault: Fault::RespondsDespiteFailureReportNo,
        fig: 1,
        sut: &[Role::PfA],
        tweak: no_tweak,
        scenario: failure_report_no,
        expect: |k| matches!(k, K::ResponseDespiteFailureReportNo { entity, .. } if entity == "pf-a"),
    },
    FaultCase {
        fault: Fault::DeclineAnswersCf,
        fig: 2,
        sut: &[Role::X],
        tweak: no_tweak,
        scenario: b1_declines,
        expect: |k| matches!(k, K::AnsweredOnDecline { .. }),
    },
    FaultCase {
        fault: Fault::WaitForeverForMember,
        fig: 2,
        sut: &[Role::PfB],
        tweak: no_tweak,
        scenario: b1_never_answers,
        expect: |k| matches!(k, K::NeverGaveUp { member, .. } if member == "b1"),
    },
];

fn reuse(v: &mut Variant) {
    v.reuse = true;
}

fn msrps(v: &mut Variant) {
    v.msrp_transport = cpm_harness::config::MsrpTransport::Tls;
}

fn sip_tls(v: &mut Variant) {
    v.transport = Transport::Tls;
}

fn adhoc(v: &mut Variant) {
    v.group = GroupKind::Adhoc;
}

fn ipv6(v: &mut Variant) {
    v.ip = cpm_harness::config::IpFamily::V6;
}

/// Each fault of the reference SUT makes the check it targets fail, for the reason named in
/// its case (a finding of the expected kind), all run at once; a faulty session may never
/// end, so each case stops after a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_its_check() {
    // Faults that need a SIP/IP core are tried in tests/core.rs.
    let n = Fault::ALL.iter().filter(|f| !f.needs_core()).count();
    assert_eq!(FAULT_CASES.len(), n, "a case per fault");
    let runs = futures_join(FAULT_CASES.iter().enumerate().map(|(i, fc)| {
        let mut v = var(fc.fig, Transport::Udp);
        (fc.tweak)(&mut v);
        let mut case = Case::new(v, fc.sut);
        case.faults = vec![fc.fault];
        case.scenario = (fc.scenario)();
        case.timeout = Duration::from_millis(2500);
        let fault = fc.fault;
        async move { (fault, run_case(158, i as u16, &case).await) }
    }))
    .await;
    let mut missed = String::new();
    for ((fault, run), fc) in runs.iter().zip(FAULT_CASES) {
        let results = judge(run);
        let id = CheckId::parse(fault.target_check()).expect("a fault targets a check id");
        let r = verdict_of(&results, id);
        if r.verdict != Verdict::Fail || !fails_with(r, |f| (fc.expect)(&f.kind)) {
            missed.push_str(&format!(
                "fault {} did not fail {} for the expected reason:\n{}",
                fault.name(),
                fault.target_check(),
                show(&results)
            ));
        }
    }
    assert!(missed.is_empty(), "{missed}");
}

/// LINK-REUSE binds sessions to connections by the connection, not the session-id (issue 15):
/// a SUT x using one session-id in every session, without reuse, opens one connection per
/// session and is not said to share them (SDP-UNIQUE fails it for the clash instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_id_in_several_sessions_is_no_shared_connection() {
    let mut case = Case::new(var(1, Transport::Udp), &[Role::X]);
    case.faults = vec![Fault::ConstantSessionId];
    let run = run_case(160, 0, &case).await;
    let results = judge(&run);
    let reuse = verdict_of(&results, CheckId::LinkReuse);
    assert_eq!(reuse.verdict, Verdict::Pass, "{}", show(&results));
    assert!(
        reuse
            .findings
            .iter()
            .any(|f| matches!(&f.kind, K::ConnectionPerSession { entity, .. } if entity == "x")),
        "{:#?}",
        reuse.findings
    );
    let unique = verdict_of(&results, CheckId::SdpUnique);
    assert!(
        fails_with(unique, |f| matches!(f.kind, K::SessionIdClash { .. })),
        "{}",
        show(&results)
    );
    // The SUT still works with one id: the links carry each session to its member.
    for id in [
        CheckId::MediaDelivery,
        CheckId::MediaPaths,
        CheckId::LinkBind,
    ] {
        assert_eq!(
            verdict_of(&results, id).verdict,
            Verdict::Pass,
            "{}",
            show(&results)
        );
    }
}

/// `setup: preset` is judged by one rule (issue 15): `a=setup` is optional on both sides, one
/// that is sent must agree with the preset opener, and a missing one means "as preset" (never
/// RFC 4145's default), so the pair is judged only when both sides sent one. A SUT that sends
/// `a=setup` (actpass offers, active/passive answers as preset) passes in every role of
/// figures 1, 3 and 5 against a harness that sends none, as does one that sends none; one
/// whose answer contradicts the preset fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preset_setup_with_and_without_a_setup_line() {
    let mut cases = Vec::new();
    for fig in [1u8, 3, 5] {
        for sut in SPLITS.iter().filter(|s| s.len() == 1) {
            for sends in [true, false] {
                let mut v = var(fig, Transport::Udp);
                v.setup = SetupMode::Preset;
                let mut c = Case::new(v, sut);
                if sends {
                    c.faults = vec![Fault::SetupInPreset];
                }
                cases.push(c);
            }
        }
    }
    // pf-b answering L3 `active` where the preset makes x the opener.
    let mut v = var(1, Transport::Udp);
    v.setup = SetupMode::Preset;
    let mut wrong = Case::new(v, &[Role::PfB]);
    wrong.faults = vec![Fault::SetupInPreset, Fault::WrongSetup];
    cases.push(wrong);
    let n = cases.len();
    let runs = futures_join(
        cases
            .into_iter()
            .enumerate()
            .map(|(i, c)| async move { (c.clone(), run_case(161, i as u16, &c).await) }),
    )
    .await;
    let mut problems = String::new();
    for (i, (c, run)) in runs.iter().enumerate() {
        let results = judge(run);
        let r = verdict_of(&results, CheckId::SdpSetup);
        if i + 1 == n {
            if !fails_with(r, |f| {
                matches!(&f.kind, K::SetupDisagreesWithPreset { link: Link::L3, .. })
            }) {
                problems.push_str(&format!("contrary a=setup not failed:\n{}", show(&results)));
            }
        } else if r.verdict != Verdict::Pass {
            problems.push_str(&format!(
                "F{} {} {:?}: SDP-SETUP {}\n{}",
                c.variant.figure.n(),
                split_name(&c.sut),
                c.faults,
                r.verdict.as_str(),
                show(&results)
            ));
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

// ------------------------------------------------------------------------------ mutations

/// A correct recording to mutate: figure 1 with reuse, x played by the SUT, so both of x's
/// neighbours (pf-a, the pf-b instances) are the harness's and record everything x does.
struct Recording {
    ctx: CaseContext,
    events: Events,
}

/// SIG-ROUTE, which judges only runs behind a SIP/IP core (tests/core.rs), and the exception
/// checks, which judge only their scenarios (member_declines_passes, …, and recordings of
/// their own).
fn judged_elsewhere(id: CheckId) -> bool {
    matches!(
        id,
        CheckId::SigRoute
            | CheckId::SigNon2xxAck
            | CheckId::SigDecline
            | CheckId::SigAllDecline
            | CheckId::SigNoAnswer
            | CheckId::MediaAbort
            | CheckId::SigLeave
            | CheckId::MediaReject
            | CheckId::MediaReport
            | CheckId::MediaNoResponse
    )
}

/// Runs `case` on net `net` in a thread and runtime of its own (the sockets live only as long
/// as that runtime) until `clean` accepts the run and its verdicts: a reference that
/// misbehaved under load is recorded again (and said so), three attempts at most.
fn clean_recording(
    net: u8,
    case: Case,
    what: &'static str,
    clean: impl Fn(&Run, &[CheckResult]) -> bool + Send + 'static,
) -> Recording {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut last = String::new();
            for attempt in 0..3u16 {
                let run = run_case(net, attempt, &case).await;
                let results = judge(&run);
                if clean(&run, &results) {
                    return Recording {
                        ctx: run.ctx,
                        events: run.events,
                    };
                }
                last = show(&results);
                eprintln!("{what} recording attempt {attempt} not clean; again:\n{last}");
            }
            panic!("no clean {what} recording in 3 attempts:\n{last}");
        })
    })
    .join()
    .expect("recording thread")
}

/// One recording per process, made on first use.
macro_rules! recordings {
    ($($(#[$doc:meta])* $name:ident = $make:expr;)*) => {$(
        $(#[$doc])*
        fn $name() -> &'static Recording {
            static REC: OnceLock<Recording> = OnceLock::new();
            REC.get_or_init(|| $make)
        }
    )*};
}

/// A clean self-check recording of an exception scenario on `fig` (net `net`).
fn scenario_recording(fig: u8, net: u8, scenario: Holds) -> Recording {
    let mut case = Case::new(var(fig, Transport::Udp), &[]);
    case.scenario = scenario;
    clean_recording(net, case, "scenario", |_, results| {
        results
            .iter()
            .all(|r| matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
    })
}

recordings! {
    /// FIG 1, x as the SUT, with connection reuse: every check passes but those that need a
    /// SIP/IP core or a scenario of their own.
    recording = {
        let mut v = var(1, Transport::Udp);
        v.reuse = true;
        clean_recording(199, Case::new(v, &[Role::X]), "reference", |run, results| {
            // LINK-REUSE's mutation needs b1 and b2 sharing x's connection to pf-b1
            // (a second one is legitimate once the first has closed).
            let obs = observe(&run.ctx, &run.events);
            let conns_of = |m: &str| -> Vec<usize> {
                obs.legs
                    .iter()
                    .filter(|l| l.uac.name == "x" && l.request_uri.contains(m))
                    .flat_map(|l| l.conns.clone())
                    .collect()
            };
            let shared = conns_of("b1@").iter().any(|c| conns_of("b2@").contains(c));
            // SIG-TLS judges SIP over TLS (its own recording).
            let clean = results.iter().all(|r| {
                r.verdict == Verdict::Pass || r.id == CheckId::SigTls || judged_elsewhere(r.id)
            });
            shared && clean
        })
    };
    /// FIG 1 with SIP over TLS (sips: URIs), self-check.
    tls_recording = clean_recording(
        171,
        Case::new(var(1, Transport::Tls), &[]),
        "TLS",
        |_, results| verdict_of(results, CheckId::SigTls).verdict == Verdict::Pass,
    );
    /// member-declines, FIG 2, b1 declines with 486.
    decline_recording = scenario_recording(2, 163, b1_declines());
    /// member-never-answers, FIG 2, b1 sends nothing to its INVITE4.
    no_answer_recording = scenario_recording(2, 178, b1_never_answers());
    /// member-leaves, FIG 1, b1 sends BYE mid-transfer.
    leave_recording = scenario_recording(1, 168, b1_leaves());
    /// member-rejects-content, FIG 1, b1 answers 413.
    refuse_recording = scenario_recording(1, 170, b1_refuses());
    /// reports-success, FIG 1.
    success_report_recording = scenario_recording(1, 172, success_report());
    /// reports-no-failure, FIG 1.
    no_response_recording = scenario_recording(1, 173, failure_report_no());
    /// sender-aborts, FIG 1.
    abort_recording = scenario_recording(1, 166, sender_aborts());
    /// all-decline, FIG 1 (x answered 200-2 at once, so it ends the call with BYE).
    all_decline_recording = scenario_recording(1, 164, all_decline());
}

fn addr_of(rec: &Recording, name: &str, msrp: bool) -> SocketAddr {
    let i = rec.ctx.topology.instance(name).expect("instance");
    if msrp {
        i.msrp
    } else {
        i.sip
    }
}

/// Judges mutated events (and context), asserting the check passed on the original and
/// fails on the mutation for the reason `expect` accepts (a finding's kind and what it
/// cites), with a time on every finding about a message.
fn assert_mutation_fails(
    id: CheckId,
    expect: impl Fn(&Finding) -> bool,
    mutate_ctx: impl FnOnce(&mut CaseContext),
    mutate: impl FnOnce(&mut Events),
) {
    // The exception checks judge a recording of their scenario.
    let rec = match id {
        CheckId::SigNon2xxAck | CheckId::SigDecline => decline_recording(),
        CheckId::SigAllDecline => all_decline_recording(),
        CheckId::SigNoAnswer => no_answer_recording(),
        CheckId::MediaAbort => abort_recording(),
        CheckId::SigLeave => leave_recording(),
        CheckId::MediaReject => refuse_recording(),
        CheckId::SigTls => tls_recording(),
        CheckId::MediaReport => success_report_recording(),
        CheckId::MediaNoResponse => no_response_recording(),
        _ => recording(),
    };
    let original = run_checks(&rec.ctx, &observe(&rec.ctx, &rec.events));
    let before = verdict_of(&original, id);
    assert_eq!(
        before.verdict,
        Verdict::Pass,
        "{id} must pass on the correct recording:\n{}",
        show(&original)
    );
    let mut ctx = rec.ctx.clone();
    let mut events = rec.events.clone();
    mutate_ctx(&mut ctx);
    mutate(&mut events);
    let results = run_checks(&ctx, &observe(&ctx, &events));
    let r = verdict_of(&results, id);
    assert_eq!(
        r.verdict,
        Verdict::Fail,
        "{id} must fail on the mutation:\n{}",
        show(&results)
    );
    assert!(
        fails_with(r, &expect),
        "{id} fails, but not for the expected reason:\n{:#?}",
        r.findings
    );
    for f in r.of_class(Class::Fail) {
        assert_eq!(f.at, f.subject.as_ref().map(|s| s.t()), "{f:?}");
    }
    // Rendered at the edge: some line names a time.
    assert!(
        r.evidence().iter().any(|e| e.contains("ms")),
        "evidence names times: {:?}",
        r.evidence()
    );
}

/// The finding is about a SIP message whose start line begins with `start`, sent by `from`.
fn about_sip(f: &Finding, start: &str, from: &str) -> bool {
    matches!(&f.subject, Some(Cite::Sip { start_line, from: e, .. })
        if start_line.starts_with(start) && e.name.as_deref() == Some(from))
}

/// Index of the first SIP event sent by `from` to `to` whose start line begins with
/// `start` and whose text contains `has`.
fn find_sip(events: &Events, from: SocketAddr, to_ip: SocketAddr, start: &str, has: &str) -> usize {
    events
        .iter()
        .position(|(_, e)| match e {
            WireEvent::Sip {
                from: f, to, raw, ..
            } => {
                *f == from
                    && to.ip() == to_ip.ip()
                    && raw.starts_with(start.as_bytes())
                    && String::from_utf8_lossy(raw).contains(has)
            }
            _ => false,
        })
        .unwrap_or_else(|| panic!("no `{start}` from {from} to {to_ip} containing {has:?}"))
}

/// Every index of SIP events carrying the same bytes as event `i` (retransmissions).
fn same_sip(events: &Events, i: usize) -> Vec<usize> {
    let WireEvent::Sip { raw, .. } = &events[i].1 else {
        return vec![];
    };
    let raw = raw.clone();
    events
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| matches!(e, WireEvent::Sip { raw: r, .. } if *r == raw))
        .map(|(k, _)| k)
        .collect()
}

/// Rewrites a SIP message's text (every retransmission of it), fixing Content-Length.
fn rewrite_sip(events: &mut Events, i: usize, f: impl Fn(&str) -> String) {
    for k in same_sip(events, i) {
        if let WireEvent::Sip { raw, .. } = &mut events[k].1 {
            let text = f(&String::from_utf8_lossy(raw));
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let head: Vec<String> = head
                .split("\r\n")
                .map(|l| {
                    if l.to_ascii_lowercase().starts_with("content-length:") {
                        format!("Content-Length: {}", body.len())
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            *raw = Bytes::from(format!("{}\r\n\r\n{body}", head.join("\r\n")));
        }
    }
}

fn drop_events(events: &mut Events, idx: Vec<usize>) {
    let mut k = 0;
    events.retain(|_| {
        let keep = !idx.contains(&k);
        k += 1;
        keep
    });
}

/// The bytes of one TCP direction `from_ip → to` (events in order), for same-length
/// mutations that keep the recorded read boundaries.
fn mutate_stream(
    events: &mut Events,
    from_ip: SocketAddr,
    to: SocketAddr,
    f: impl FnOnce(&mut Vec<u8>),
) {
    let idx: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| {
            matches!(e, WireEvent::TcpData { from, to: t, .. } if from.ip() == from_ip.ip() && *t == to)
        })
        .map(|(k, _)| k)
        .collect();
    assert!(!idx.is_empty(), "no data {from_ip} → {to}");
    let mut stream = Vec::new();
    let mut lens = Vec::new();
    for &k in &idx {
        if let WireEvent::TcpData { data, .. } = &events[k].1 {
            stream.extend_from_slice(data);
            lens.push(data.len());
        }
    }
    let n = stream.len();
    f(&mut stream);
    assert_eq!(stream.len(), n, "same-length mutations only");
    let mut off = 0;
    for (&k, len) in idx.iter().zip(lens) {
        if let WireEvent::TcpData { data, .. } = &mut events[k].1 {
            *data = Bytes::copy_from_slice(&stream[off..off + len]);
        }
        off += len;
    }
}

/// Replaces the `nth` occurrence of `pat` in `s` with `with` (same length).
fn replace_nth(s: &mut [u8], pat: &[u8], with: &[u8], nth: usize) {
    assert_eq!(pat.len(), with.len());
    let pos = s
        .windows(pat.len())
        .enumerate()
        .filter(|(_, w)| *w == pat)
        .nth(nth)
        .map(|(p, _)| p)
        .unwrap_or_else(|| panic!("no occurrence {nth} of {:?}", String::from_utf8_lossy(pat)));
    s[pos..pos + pat.len()].copy_from_slice(with);
}

fn x_200_2(events: &Events, rec: &Recording) -> usize {
    find_sip(
        events,
        addr_of(rec, "x", false),
        addr_of(rec, "pf-a", false),
        "SIP/2.0 200",
        "INVITE",
    )
}

fn x_invite3(events: &Events, rec: &Recording, member: &str) -> usize {
    let pfb = rec
        .ctx
        .topology
        .pf_b_serving(member)
        .expect("pf-b")
        .name
        .clone();
    find_sip(
        events,
        addr_of(rec, "x", false),
        addr_of(rec, &pfb, false),
        &format!("INVITE sip:{member}@"),
        "",
    )
}

fn x_ip(rec: &Recording) -> String {
    addr_of(rec, "x", true).ip().to_string()
}

#[test]
fn mutation_sdp_media() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SdpMedia,
        |f| {
            matches!(&f.kind, K::WrongProto { mline } if mline.contains("TCP/RTP/AVP"))
                && about_sip(f, "SIP/2.0 200", "x")
        },
        |_| {},
        |ev| {
            let i = x_200_2(ev, rec);
            rewrite_sip(ev, i, |t| t.replace("TCP/MSRP *", "TCP/RTP/AVP *"));
        },
    );
}

#[test]
fn mutation_sdp_c() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SdpC,
        |f| {
            matches!(&f.kind, K::ConnectionNotOwn { line, entity, .. }
            if line == "c=IN IP4 127.254.254.254" && entity == "x")
                && about_sip(f, "INVITE", "x")
        },
        |_| {},
        |ev| {
            let i = x_invite3(ev, rec, "b1");
            let x = x_ip(rec);
            rewrite_sip(ev, i, |t| {
                t.replace(&format!("c=IN IP4 {x}"), "c=IN IP4 127.254.254.254")
            });
        },
    );
}

#[test]
fn mutation_sdp_port() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SdpPort,
        |f| matches!(f.kind, K::PortMismatch { .. }) && about_sip(f, "SIP/2.0 200", "x"),
        |_| {},
        |ev| {
            let i = x_200_2(ev, rec);
            let p = addr_of(rec, "x", true).port();
            rewrite_sip(ev, i, |t| {
                t.replace(&format!("m=message {p} "), &format!("m=message {} ", p + 7))
            });
        },
    );
}

#[test]
fn mutation_sdp_path() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SdpPath,
        |f| {
            matches!(&f.kind, K::PathTransport { transport, .. } if transport == "udp")
                && about_sip(f, "INVITE", "x")
        },
        |_| {},
        |ev| {
            let i = x_invite3(ev, rec, "b2");
            rewrite_sip(ev, i, |t| {
                let (a, b) = t.split_once("a=path:").expect("a=path");
                format!("{a}a=path:{}", b.replacen(";tcp", ";udp", 1))
            });
        },
    );
}

#[test]
fn mutation_sdp_own() {
    let rec = recording();
    let pfa = addr_of(rec, "pf-a", true).ip().to_string();
    assert_mutation_fails(
        CheckId::SdpOwn,
        |f| matches!(&f.kind, K::PathNotOwnAddress { entity, .. } if entity == "x"),
        |_| {},
        |ev| {
            let i = x_invite3(ev, rec, "b1");
            let x = x_ip(rec);
            rewrite_sip(ev, i, |t| {
                t.replace(
                    &format!("a=path:msrp://{x}:"),
                    &format!("a=path:msrp://{pfa}:"),
                )
            });
        },
    );
}

/// The session-id of the first a=path in a SIP event.
fn session_id(events: &Events, i: usize) -> String {
    let WireEvent::Sip { raw, .. } = &events[i].1 else {
        panic!("not SIP")
    };
    let t = String::from_utf8_lossy(raw).into_owned();
    let p = t.split("a=path:").nth(1).expect("a=path");
    let uri = p.split_whitespace().next().expect("uri");
    let after_host = uri.split("://").nth(1).expect("authority");
    let sid = after_host.split('/').nth(1).expect("session-id");
    sid.split(';').next().expect("sid").to_string()
}

#[test]
fn mutation_sdp_unique() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SdpUnique,
        |f| {
            matches!(&f.kind, K::SessionIdClash { also_in: Cite::Sip { start_line, .. }, .. }
            if start_line.starts_with("INVITE"))
        },
        |_| {},
        |ev| {
            // x's INVITE3 for b2 reuses the session-id of its INVITE3 for b1.
            let i1 = x_invite3(ev, rec, "b1");
            let i2 = x_invite3(ev, rec, "b2");
            let (s1, s2) = (session_id(ev, i1), session_id(ev, i2));
            rewrite_sip(ev, i2, |t| t.replace(&s2, &s1));
        },
    );
}

#[test]
fn mutation_sdp_accept() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SdpAccept,
        |f| matches!(&f.kind, K::AcceptTypesNoCpim { value } if value == "text/plain"),
        |_| {},
        |ev| {
            let i = x_200_2(ev, rec);
            rewrite_sip(ev, i, |t| {
                t.replace("a=accept-types:message/cpim", "a=accept-types:text/plain")
            });
        },
    );
}

#[test]
fn mutation_sdp_setup() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SdpSetup,
        |f| {
            matches!(&f.kind, K::SetupWrongOpener { opener, expected, link: Link::L2, .. }
            if opener == "x" && expected == "pf-a")
        },
        |_| {},
        |ev| {
            // Figure 1 gives L2 to pf-a: x must answer passive.
            let i = x_200_2(ev, rec);
            rewrite_sip(ev, i, |t| t.replace("a=setup:passive", "a=setup:active"));
        },
    );
}

#[test]
fn mutation_sdp_place() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SdpPlace,
        |f| matches!(f.kind, K::NoParams { .. }) && about_sip(f, "SIP/2.0 200", "x"),
        |_| {},
        |ev| {
            let i = x_200_2(ev, rec);
            rewrite_sip(ev, i, |t| {
                let head = t.split("\r\n\r\n").next().unwrap_or("");
                let head: Vec<&str> = head
                    .split("\r\n")
                    .filter(|l| !l.to_ascii_lowercase().starts_with("content-type:"))
                    .collect();
                format!("{}\r\n\r\n", head.join("\r\n"))
            });
        },
    );
}

/// LINK-TLS on the plain recording: x starting TLS on the link of a plain TCP/MSRP session
/// (msrp: URIs) fails it (a plain connect where TLS was negotiated is the `plain-over-tls`
/// fault's case in `each_fault_fails_its_check`).
#[test]
fn mutation_link_tls() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::LinkTls,
        |f| {
            matches!(&f.kind, K::TlsWherePlain { opener, .. } if opener == "x")
                && matches!(&f.subject, Some(Cite::Conn { .. }))
        },
        |_| {},
        |ev| {
            let x = addr_of(rec, "x", true).ip();
            let i = ev
                .iter()
                .position(
                    |(_, e)| matches!(e, WireEvent::TcpOpen { opener, .. } if opener.ip() == x),
                )
                .expect("x opens L3 in figure 1");
            let (t, WireEvent::TcpOpen { conn, opener }) = ev[i].clone() else {
                unreachable!()
            };
            let to = if conn.0 == opener { conn.1 } else { conn.0 };
            ev.insert(
                i + 1,
                (
                    t,
                    WireEvent::Tls {
                        from: opener,
                        to,
                        version: "TLSv1.3".into(),
                        failed: None,
                    },
                ),
            );
        },
    );
}

/// SIG-TLS on a SIP-over-TLS recording: x's INVITE recorded as sent over plain TCP fails
/// it; a `sips:` request over plain TCP in a case configured for TCP fails it too, and so
/// does a `sip:` Contact in a request to a `sips:` Request-URI.
#[test]
fn mutation_sig_tls() {
    let rec = tls_recording();
    let x = addr_of(rec, "x", false);
    let x_invite = |ev: &Events| {
        ev.iter()
            .position(|(_, e)| {
                matches!(e, WireEvent::Sip { from, raw, .. }
                    if from.ip() == x.ip() && raw.starts_with(b"INVITE "))
            })
            .expect("x sends INVITE3 in figure 1")
    };
    assert_mutation_fails(
        CheckId::SigTls,
        |f| matches!(&f.kind, K::SipPlainWhereTls { entity, transport } if entity == "x" && transport == "TCP"),
        |_| {},
        |ev| {
            let i = x_invite(ev);
            if let WireEvent::Sip { transport, .. } = &mut ev[i].1 {
                *transport = Transport::Tcp;
            }
        },
    );
    assert_mutation_fails(
        CheckId::SigTls,
        |f| matches!(&f.kind, K::SipsOverPlain { entity, uri, transport } if entity == "x" && uri.starts_with("sips:") && transport == "TCP"),
        |ctx| ctx.variant.transport = Transport::Tcp,
        |ev| {
            for (_, e) in ev.iter_mut() {
                if let WireEvent::Sip { transport, .. } = e {
                    *transport = Transport::Tcp;
                }
            }
        },
    );
    assert_mutation_fails(
        CheckId::SigTls,
        |f| matches!(&f.kind, K::ContactNotSips { entity, contact } if entity == "x" && contact.starts_with("sip:")),
        |_| {},
        |ev| {
            let i = x_invite(ev);
            if let WireEvent::Sip { raw, .. } = &mut ev[i].1 {
                let text =
                    String::from_utf8_lossy(raw).replace("Contact: <sips:", "Contact: <sip:");
                *raw = text.into_bytes().into();
            }
        },
    );
}

#[test]
fn mutation_link_dir() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::LinkDir,
        |f| {
            matches!(&f.kind, K::LinkOpenedByWrongSide { link: Link::L2, opener, expected: Role::PfA, .. }
            if opener == "x")
                && matches!(&f.subject, Some(Cite::Conn { .. }))
        },
        |_| {},
        |ev| {
            // pf-a opened L2 (figure 1); make it x's opening.
            let x = addr_of(rec, "x", true);
            for (_, e) in ev.iter_mut() {
                if let WireEvent::TcpOpen { conn, opener } = e {
                    if conn.0 == x || conn.1 == x {
                        *opener = x;
                    }
                }
            }
        },
    );
}

#[test]
fn mutation_link_target() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::LinkTarget,
        |f| {
            matches!(&f.kind, K::TargetNotPath { peer, .. } | K::WrongTarget { peer, .. }
            if peer.starts_with("pf-b"))
                || matches!(&f.kind, K::NeverConnected { entity, .. } if entity == "x")
        },
        |_| {},
        |ev| {
            // x's connection to pf-b1 lands on another port of pf-b1's host.
            let t = addr_of(rec, "pf-b1", true);
            let wrong = SocketAddr::new(t.ip(), t.port() + 7);
            let fix = |a: &mut SocketAddr| {
                if *a == t {
                    *a = wrong
                }
            };
            for (_, e) in ev.iter_mut() {
                match e {
                    WireEvent::TcpOpen { conn, opener } => {
                        fix(&mut conn.0);
                        fix(&mut conn.1);
                        fix(opener);
                    }
                    WireEvent::TcpData { from, to, .. }
                    | WireEvent::TcpClose { from, to }
                    | WireEvent::Tls { from, to, .. }
                    | WireEvent::TlsRecords { from, to, .. } => {
                        fix(from);
                        fix(to);
                    }
                    WireEvent::Sip { .. } => {}
                }
            }
        },
    );
}

#[test]
fn mutation_link_trigger() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::LinkTrigger,
        |f| matches!(&f.kind, K::LinkBeforeTrigger { entity, .. } if entity == "x"),
        |_| {},
        |ev| {
            // x's opening towards pf-b1 moved to the very start: before any trigger.
            let t = addr_of(rec, "pf-b1", true);
            for (time, e) in ev.iter_mut() {
                if let WireEvent::TcpOpen { conn, .. } = e {
                    if conn.0 == t || conn.1 == t {
                        *time = Duration::from_micros(1);
                    }
                }
            }
        },
    );
}

#[test]
fn mutation_link_bind() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::LinkBind,
        |f| {
            matches!(
                &f.kind,
                K::BindNoSession | K::ToPathNotPeers { link: None, .. }
            ) && matches!(&f.subject, Some(Cite::Msrp { start_line, .. }) if start_line.ends_with("SEND"))
        },
        |_| {},
        |ev| {
            // The binding SEND on x's link to pf-b1 names a session nobody negotiated.
            let x = addr_of(rec, "x", true);
            let t = addr_of(rec, "pf-b1", true);
            let pfb = t.ip().to_string();
            mutate_stream(ev, x, t, |s| {
                let pat = format!("To-Path: msrp://{pfb}:{}/", t.port());
                let at = s
                    .windows(pat.len())
                    .position(|w| w == pat.as_bytes())
                    .expect("To-Path")
                    + pat.len();
                s[at] = if s[at] == b'Z' { b'Y' } else { b'Z' };
            });
        },
    );
}

#[test]
fn mutation_link_reuse() {
    // Recorded with reuse: judged as declared without, x's shared connection is a fault.
    assert_mutation_fails(
        CheckId::LinkReuse,
        |f| matches!(&f.kind, K::SharedWithoutReuse { entity, .. } if entity == "x"),
        |ctx| ctx.variant.reuse = false,
        |_| {},
    );
}

#[test]
fn mutation_sig_seq() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SigSeq,
        |f| {
            matches!(&f.kind, K::NeverSentDespiteCause { sender, step: SipStep::Ok, .. }
            if sender == "x")
        },
        |_| {},
        |ev| {
            let i = x_200_2(ev, rec);
            let all = same_sip(ev, i);
            drop_events(ev, all);
        },
    );
}

#[test]
fn mutation_sig_cf_answer() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SigCfAnswer,
        |f| matches!(f.kind, K::CfAnswerLate { figure: 1, .. }) && about_sip(f, "SIP/2.0 200", "x"),
        |_| {},
        |ev| {
            // Figure 1: 200-2 moved after the first 200-3.
            let x = addr_of(rec, "x", false);
            let first3 = ev
            .iter()
            .filter(|(_, e)| {
                matches!(e, WireEvent::Sip { to, raw, .. }
                    if to.ip() == x.ip() && raw.starts_with(b"SIP/2.0 200") && String::from_utf8_lossy(raw).contains("INVITE"))
            })
            .map(|(t, _)| *t)
            .min()
            .expect("a 200-3");
            let i = x_200_2(ev, rec);
            for k in same_sip(ev, i) {
                ev[k].0 = first3 + Duration::from_millis(1);
            }
        },
    );
}

/// The first 200 OK to an INVITE that reached `x` (the first 200-3).
fn first_200_3(ev: &Events, x: SocketAddr) -> usize {
    ev.iter()
        .enumerate()
        .filter(|(_, (_, e))| {
            matches!(e, WireEvent::Sip { to, raw, .. }
                if *to == x && raw.starts_with(b"SIP/2.0 200") && String::from_utf8_lossy(raw).contains("INVITE"))
        })
        .min_by_key(|(_, (t, _))| *t)
        .map(|(i, _)| i)
        .expect("a 200-3")
}

/// FIG 1 x's recording with its first 200-3 `first_ms` after INVITE2 and its 200-2
/// `ok2_ms` after INVITE2.
fn cf_answer_moved(rec: &Recording, first_ms: u64, ok2_ms: u64) -> Events {
    let mut ev = rec.events.clone();
    let x = addr_of(rec, "x", false);
    let inv2 = find_sip(&ev, addr_of(rec, "pf-a", false), x, "INVITE ", "");
    let t_inv2 = ev[inv2].0;
    for k in same_sip(&ev, first_200_3(&ev, x)) {
        ev[k].0 = t_inv2 + Duration::from_millis(first_ms);
    }
    let ok2 = x_200_2(&ev, rec);
    for k in same_sip(&ev, ok2) {
        ev[k].0 = t_inv2 + Duration::from_millis(ok2_ms);
    }
    ev.sort_by_key(|(t, _)| *t);
    ev
}

/// A pass never states an order the times contradict (issue 15): a first 200-3 that reached
/// x 7 ms before its 200-2, 20 ms after INVITE2 (inside the 100 ms race margin), is reported
/// as within the margin, order not judged — not as "before any 200-3".
#[test]
fn sig_cf_answer_never_states_an_order_the_times_contradict() {
    let rec = recording();
    let ev = cf_answer_moved(rec, 20, 27);
    let results = run_checks(&rec.ctx, &observe(&rec.ctx, &ev));
    let r = verdict_of(&results, CheckId::SigCfAnswer);
    assert_eq!(r.verdict, Verdict::Pass, "{}", show(&results));
    assert!(
        r.findings.iter().any(|f| matches!(
            &f.kind,
            K::CfOrderNotJudged { figure: 1, gap, .. } if gap.0 == Duration::from_millis(7)
        )),
        "{:#?}",
        r.findings
    );
    for e in r.evidence() {
        assert!(!e.contains("before any 200-3"), "{e}");
        if e.contains("not judged") {
            assert!(e.contains("7.0ms") && e.contains("100.0ms"), "{e}");
        }
    }
}

/// The race margin is at least 100 ms, with or without a SIP/IP core (a SUT process starved
/// for 92 ms under a loaded run; behind a core, each message also takes an unrecorded hop
/// whose queueing moves it by tens of ms). x's first 200-3 75 ms after INVITE2 and its 200-2
/// 7 ms later: FIG 1's "200-2 at once" is inside the margin, stated and not judged, directly
/// and through a core; with the 200-3 130 ms after INVITE2 it is judged and fails.
#[test]
fn the_race_margin_is_at_least_100_ms() {
    let rec = recording();
    assert!(rec.ctx.topology.core.is_none());
    let moved = |first_ms: u64| cf_answer_moved(rec, first_ms, first_ms + 7);
    let mut cored = rec.ctx.clone();
    let mut topo = (*cored.topology).clone();
    topo.core = Some("127.199.0.250:5060".parse().unwrap());
    cored.topology = std::sync::Arc::new(topo);

    let ev = moved(75);
    for ctx in [&rec.ctx, &cored] {
        let results = run_checks(ctx, &observe(ctx, &ev));
        let r = verdict_of(&results, CheckId::SigCfAnswer);
        assert_eq!(r.verdict, Verdict::Pass, "{}", show(&results));
        assert!(
            r.findings.iter().any(|f| matches!(
                &f.kind,
                K::CfOrderNotJudged { figure: 1, gap, after_invite2, margin, .. }
                    if gap.0 == Duration::from_millis(7)
                        && after_invite2.0 == Duration::from_millis(75)
                        && margin.0 == Duration::from_millis(100)
            )),
            "{:#?}",
            r.findings
        );
    }
    let ev = moved(130);
    for ctx in [&rec.ctx, &cored] {
        let results = run_checks(ctx, &observe(ctx, &ev));
        let r = verdict_of(&results, CheckId::SigCfAnswer);
        assert!(
            fails_with(r, |f| matches!(f.kind, K::CfAnswerLate { figure: 1, .. })),
            "{}",
            show(&results)
        );
    }
}

recordings! {
    /// FIG 5 with x the SUT (x answers 200-2 on the first 200-3 and ACKs each 200-3 at once).
    fig5_x_recording = clean_recording(
        172,
        Case::new(var(5, Transport::Udp), &[Role::X]),
        "FIG 5",
        |_, results| verdict_of(results, CheckId::SigAck).verdict == Verdict::Pass,
    );
}

/// A SUT process that is not scheduled for 102 ms reads x's first 200-3 late, then answers
/// 200-2, gets the upstream ACK at once and ACKs the 200-3 after it: SIG-ACK states that
/// order, it does not judge "waited for the upstream ACK" (FIG 5, ACK on the 200). The
/// same times with x's 200-2 sent right after the 200-3 (x was running, answered, and held
/// its ACK 102 ms until the upstream ACK) fail.
#[test]
fn sig_ack_does_not_take_a_late_read_for_waiting() {
    let rec = fig5_x_recording();
    let x = addr_of(rec, "x", false);
    let ev0 = rec.events.clone();
    let first3 = first_200_3(&ev0, x);
    let (t3, pfb, call_id) = match &ev0[first3] {
        (t, WireEvent::Sip { from, raw, .. }) => {
            let text = String::from_utf8_lossy(raw);
            let call_id = text
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("call-id:"))
                .expect("a Call-ID")
                .to_string();
            (*t, *from, call_id)
        }
        _ => unreachable!(),
    };
    assert!(
        x_200_2(&ev0, rec) > 0 && ev0[x_200_2(&ev0, rec)].0 > t3,
        "FIG 5: 200-2 after 200-3"
    );
    let late = Duration::from_millis(102);
    // Everything after the 200-3 moves `shift` later; the upstream ACK comes `ack2_after`
    // after x's 200-2, and x's ACK of the 200-3 0.2 ms after the upstream ACK.
    let timed = |shift: Duration, ack2_after: Duration| {
        let mut ev = ev0.clone();
        for (t, _) in ev.iter_mut() {
            if *t > t3 {
                *t += shift;
            }
        }
        let t_ok2 = ev[x_200_2(&ev, rec)].0;
        let ack2 = find_sip(&ev, addr_of(rec, "pf-a", false), x, "ACK ", "");
        for k in same_sip(&ev, ack2) {
            ev[k].0 = t_ok2 + ack2_after;
        }
        let ack3 = find_sip(&ev, x, pfb, "ACK ", &call_id);
        for k in same_sip(&ev, ack3) {
            ev[k].0 = t_ok2 + ack2_after + Duration::from_micros(200);
        }
        ev.sort_by_key(|(t, _)| *t);
        ev
    };
    let leg_finding = |results: &[CheckResult]| -> Finding {
        let r = verdict_of(results, CheckId::SigAck);
        r.findings
            .iter()
            .find(|f| match &f.kind {
                // That very 200 (it stays at t3 in both timings); pf-b's other 200s are
                // other legs.
                K::AckOrderNotJudged { ok, .. } | K::AckWaitedForUpstream { ok, .. } => {
                    matches!(ok, Cite::Sip { t, .. } if t.0 == t3)
                }
                _ => false,
            })
            .cloned()
            .unwrap_or_else(|| panic!("no finding about the 200 from {pfb}:\n{}", show(results)))
    };

    // Read late: nothing of x between the 200-3 and its 200-2 102 ms later.
    let ev = timed(late, Duration::from_micros(300));
    let results = run_checks(&rec.ctx, &observe(&rec.ctx, &ev));
    let f = leg_finding(&results);
    assert!(
        matches!(&f.kind, K::AckOrderNotJudged { read: Some(read), gap, .. }
            if read.to_string().contains("x (") && gap.0 < Duration::from_millis(100)),
        "{f:#?}"
    );

    // Running all along: x answered 200-2 at once and held the ACK until the upstream ACK.
    let ev = timed(Duration::ZERO, late);
    let results = run_checks(&rec.ctx, &observe(&rec.ctx, &ev));
    let f = leg_finding(&results);
    assert!(
        matches!(&f.kind, K::AckWaitedForUpstream { .. }) && f.class == Class::Fail,
        "{f:#?}"
    );
}

#[test]
fn mutation_sig_ack() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SigAck,
        |f| matches!(&f.kind, K::NeverAcked { entity, .. } if entity == "x"),
        |_| {},
        |ev| {
            let pfb = rec
                .ctx
                .topology
                .pf_b_serving("b1")
                .expect("pf-b")
                .name
                .clone();
            let i = find_sip(
                ev,
                addr_of(rec, "x", false),
                addr_of(rec, &pfb, false),
                "ACK ",
                "",
            );
            let all = same_sip(ev, i);
            drop_events(ev, all);
        },
    );
}

#[test]
fn mutation_sig_fanout() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SigFanout,
        |f| matches!(&f.kind, K::NoInviteForMember { member, .. } if member == "b3"),
        |_| {},
        |ev| {
            let i = x_invite3(ev, rec, "b3");
            let all = same_sip(ev, i);
            drop_events(ev, all);
        },
    );
}

#[test]
fn mutation_sig_b2bua() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SigB2bua,
        |f| matches!(f.kind, K::CallIdReused { .. }),
        |_| {},
        |ev| {
            // x's INVITE3 for b1 carries the Call-ID of INVITE2.
            let inv2 = find_sip(
                ev,
                addr_of(rec, "pf-a", false),
                addr_of(rec, "x", false),
                "INVITE ",
                "",
            );
            let call_id = |e: &WireEvent| match e {
                WireEvent::Sip { raw, .. } => String::from_utf8_lossy(raw)
                    .lines()
                    .find_map(|l| l.strip_prefix("Call-ID: ").map(String::from))
                    .expect("Call-ID"),
                _ => panic!("not SIP"),
            };
            let c2 = call_id(&ev[inv2].1);
            let i = x_invite3(ev, rec, "b1");
            let c3 = call_id(&ev[i].1);
            rewrite_sip(ev, i, |t| t.replace(&c3, &c2));
        },
    );
}

#[test]
fn mutation_sig_teardown() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::SigTeardown,
        |f| {
            matches!(&f.kind,
            K::ByeNotPropagated { entity, .. } | K::NeverSentBye { entity, .. } if entity == "x")
        },
        |_| {},
        |ev| {
            let pfb = rec
                .ctx
                .topology
                .pf_b_serving("b3")
                .expect("pf-b")
                .name
                .clone();
            let i = find_sip(
                ev,
                addr_of(rec, "x", false),
                addr_of(rec, &pfb, false),
                "BYE ",
                "",
            );
            let all = same_sip(ev, i);
            drop_events(ev, all);
        },
    );
}

#[test]
fn mutation_media_delivery() {
    assert_mutation_fails(
        CheckId::MediaDelivery,
        |f| matches!(&f.kind, K::NothingReceived { member, .. } if member == "b2"),
        |ctx| {
            ctx.delivered.remove("b2");
            if let Some(d) = ctx.delivered.get_mut("b3") {
                d.sha256 = "00".repeat(32);
            }
        },
        |_| {},
    );
}

#[test]
fn mutation_media_paths() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::MediaPaths,
        |f| {
            matches!(&f.kind, K::ToPathNotPeers { .. } | K::PathsNoSession { .. })
                && matches!(&f.subject, Some(Cite::Msrp { from, .. }) if from.name.as_deref() == Some("x"))
        },
        |_| {},
        |ev| {
            // A content chunk (not the binding SEND) x sends to pf-b2 names another session.
            let x = addr_of(rec, "x", true);
            let t = addr_of(rec, "pf-b2", true);
            let pat = format!("To-Path: msrp://{}:{}/", t.ip(), t.port());
            mutate_stream(ev, x, t, |s| {
                let at = s
                    .windows(pat.len())
                    .enumerate()
                    .filter(|(_, w)| *w == pat.as_bytes())
                    .nth(2)
                    .map(|(p, _)| p)
                    .expect("a third To-Path")
                    + pat.len();
                s[at] = if s[at] == b'Z' { b'Y' } else { b'Z' };
            });
        },
    );
}

#[test]
fn mutation_media_framing() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::MediaFraming,
        |f| matches!(f.kind, K::RangeGap { next: 2049, .. }),
        |_| {},
        |ev| {
            let x = addr_of(rec, "x", true);
            let t = addr_of(rec, "pf-b1", true);
            mutate_stream(ev, x, t, |s| {
                replace_nth(s, b"Byte-Range: 2049-", b"Byte-Range: 2050-", 0)
            });
        },
    );
}

#[test]
fn mutation_media_response() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::MediaResponse,
        |f| {
            matches!(&f.kind, K::SendAnsweredNon200 { entity, response: Cite::Msrp { start_line, .. }, .. }
            if entity == "x" && start_line.contains(" 481"))
        },
        |_| {},
        |ev| {
            // x answers pf-a's second SEND with 481 instead of 200.
            let x = addr_of(rec, "x", true);
            let pfa = addr_of(rec, "pf-a", true);
            let to = ev
                .iter()
                .find_map(|(_, e)| match e {
                    WireEvent::TcpData { from, to, .. } if *from == x && to.ip() == pfa.ip() => {
                        Some(*to)
                    }
                    _ => None,
                })
                .expect("x → pf-a data");
            mutate_stream(ev, x, to, |s| {
                replace_nth(s, b" 200 OK\r\n", b" 481 OK\r\n", 1)
            });
        },
    );
}

#[test]
fn mutation_media_cpim() {
    let rec = recording();
    assert_mutation_fails(
        CheckId::MediaCpim,
        |f| {
            matches!(&f.kind, K::ContentAltered { changed, .. }
            if changed.iter().any(|(a, b)| a.as_deref().is_some_and(|a| a.contains("alice"))
                && b.as_deref().is_some_and(|b| b.contains("alicf"))))
        },
        |_| {},
        |ev| {
            let x = addr_of(rec, "x", true);
            let t = addr_of(rec, "pf-b1", true);
            mutate_stream(ev, x, t, |s| {
                replace_nth(s, b"From: <sip:alice", b"From: <sip:alicf", 0)
            });
        },
    );
}

/// Every check id has a mutation test in this file.
/// A SIP message or MSRP stream of the SUT that does not parse fails WIRE-SYNTAX, with its
/// excerpt, peer and position, and no other check reports the parse error (issue 15).
#[test]
fn mutation_wire_syntax() {
    let rec = recording();
    let only_wire_syntax = |ev: &Events| {
        let results = run_checks(&rec.ctx, &observe(&rec.ctx, ev));
        for r in results.iter().filter(|r| r.id != CheckId::WireSyntax) {
            assert!(
                !r.findings
                    .iter()
                    .any(|f| matches!(f.kind, K::SipUnparsable { .. } | K::MsrpSyntax { .. })),
                "{} reports a parse error:\n{}",
                r.id,
                show(&results)
            );
        }
    };
    // x's 200-2 with a header line that has no colon.
    let mut sip_ev = Vec::new();
    assert_mutation_fails(
        CheckId::WireSyntax,
        |f| {
            matches!(&f.kind, K::SipUnparsable { error } if error.contains("without a colon") && error.contains("Max-Forwards 70"))
                && about_sip(f, "SIP/2.0 200", "x")
                && matches!(&f.subject, Some(Cite::Sip { to, .. }) if to.name.as_deref() == Some("pf-a"))
        },
        |_| {},
        |ev| {
            let i = x_200_2(ev, rec);
            rewrite_sip(ev, i, |t| {
                t.replacen("CSeq:", "Max-Forwards 70\r\nCSeq:", 1)
            });
            sip_ev = ev.clone();
        },
    );
    only_wire_syntax(&sip_ev);
    // x's MSRP stream towards pf-b1 broken at its first start line.
    let pfb = rec
        .ctx
        .topology
        .pf_b_serving("b1")
        .expect("pf-b")
        .name
        .clone();
    let mut msrp_ev = Vec::new();
    assert_mutation_fails(
        CheckId::WireSyntax,
        |f| {
            matches!(&f.kind, K::MsrpSyntax { sender, receiver, offset: 0, .. }
                if sender.name.as_deref() == Some("x") && receiver.name.as_deref() == Some(pfb.as_str()))
        },
        |_| {},
        |ev| {
            mutate_stream(ev, addr_of(rec, "x", true), addr_of(rec, &pfb, true), |s| {
                replace_nth(s, b"MSRP ", b"MXRP ", 0)
            });
            msrp_ev = ev.clone();
        },
    );
    only_wire_syntax(&msrp_ev);
}

#[test]
fn mutation_sig_non2xx_ack() {
    // x's hop-by-hop ACK of pf-b1's 486 for b1 is gone.
    let rec = decline_recording();
    let (x, pfb1) = (addr_of(rec, "x", false), addr_of(rec, "pf-b1", false));
    assert_mutation_fails(
        CheckId::SigNon2xxAck,
        |f| matches!(&f.kind, K::Non2xxNotAcked { entity, .. } if entity == "x"),
        |_| {},
        |ev| {
            let i = find_sip(ev, x, pfb1, "ACK ", "b1@");
            let all = same_sip(ev, i);
            drop_events(ev, all);
        },
    );
}

#[test]
fn mutation_sig_decline() {
    // pf-b1 never relays b1's 486 to x (nor does x ACK it).
    let rec = decline_recording();
    let (x, pfb1) = (addr_of(rec, "x", false), addr_of(rec, "pf-b1", false));
    assert_mutation_fails(
        CheckId::SigDecline,
        |f| matches!(&f.kind, K::DeclineNotRelayed { member, .. } if member == "b1"),
        |_| {},
        |ev| {
            let r = find_sip(ev, pfb1, x, "SIP/2.0 486", "");
            let mut all = same_sip(ev, r);
            let a = find_sip(ev, x, pfb1, "ACK ", "b1@");
            all.extend(same_sip(ev, a));
            drop_events(ev, all);
        },
    );
}

#[test]
fn mutation_sig_no_answer() {
    // pf-b1 never gives up on b1: its 408 to x (and x's ACK of it) are gone.
    let rec = no_answer_recording();
    let (x, pfb1) = (addr_of(rec, "x", false), addr_of(rec, "pf-b1", false));
    assert_mutation_fails(
        CheckId::SigNoAnswer,
        |f| matches!(&f.kind, K::NeverGaveUp { member, .. } if member == "b1"),
        |_| {},
        |ev| {
            let r = find_sip(ev, pfb1, x, "SIP/2.0 408", "");
            let mut all = same_sip(ev, r);
            let a = find_sip(ev, x, pfb1, "ACK ", "b1@");
            all.extend(same_sip(ev, a));
            drop_events(ev, all);
        },
    );
}

#[test]
fn a_silent_client_b_of_the_sut_fails_sig_no_answer() {
    // The same wire judged with client-b as the SUT's: its silence is its own fault, not a
    // scenario that excuses it from the group.
    assert_mutation_fails(
        CheckId::SigNoAnswer,
        |f| matches!(&f.kind, K::MemberNeverAnswered { member, .. } if member == "b1"),
        |ctx| ctx.sut = vec![Role::ClientB],
        |_| {},
    );
}

#[test]
fn mutation_sig_all_decline() {
    // x never ends its answered upstream leg (its BYE and the answer to it are gone).
    let rec = all_decline_recording();
    let (x, pfa) = (addr_of(rec, "x", false), addr_of(rec, "pf-a", false));
    assert_mutation_fails(
        CheckId::SigAllDecline,
        |f| matches!(&f.kind, K::UpstreamLeftOpen { entity, .. } if entity == "x"),
        |_| {},
        |ev| {
            let b = find_sip(ev, x, pfa, "BYE ", "");
            let mut all = same_sip(ev, b);
            let ok = find_sip(ev, pfa, x, "SIP/2.0 200", "BYE");
            all.extend(same_sip(ev, ok));
            drop_events(ev, all);
        },
    );
}

#[test]
fn mutation_media_abort() {
    // pf-b1 ends b1's copy of the aborted message with `$` instead of `#`.
    let rec = abort_recording();
    let (pfb1, b1) = (addr_of(rec, "pf-b1", true), addr_of(rec, "b1", true));
    assert_mutation_fails(
        CheckId::MediaAbort,
        |f| matches!(&f.kind, K::AbortForwardedAsEnd { entity, .. } if entity == "pf-b1"),
        |_| {},
        |ev| {
            mutate_stream(ev, pfb1, b1, |s| replace_nth(s, b"#\r\n", b"$\r\n", 0));
        },
    );
}

#[test]
fn mutation_media_report() {
    // x relays the message to pf-b1 without the `Success-Report: yes` client-a sent.
    let rec = success_report_recording();
    let (x, pfb1) = (addr_of(rec, "x", true), addr_of(rec, "pf-b1", true));
    assert_mutation_fails(
        CheckId::MediaReport,
        |f| matches!(&f.kind, K::ReportNotAskedDownstream { entity, .. } if entity == "x"),
        |_| {},
        |ev| {
            mutate_stream(ev, x, pfb1, |s| {
                replace_nth(s, b"Success-Report: yes", b"Success-Report: yex", 0)
            });
        },
    );
}

#[test]
fn mutation_media_no_response() {
    // x relays the message to pf-b1 without `Failure-Report: no`.
    let rec = no_response_recording();
    let (x, pfb1) = (addr_of(rec, "x", true), addr_of(rec, "pf-b1", true));
    assert_mutation_fails(
        CheckId::MediaNoResponse,
        |f| matches!(&f.kind, K::FailureReportNoNotAsked { entity, .. } if entity == "x"),
        |_| {},
        |ev| {
            mutate_stream(ev, x, pfb1, |s| {
                replace_nth(s, b"Failure-Report: no", b"Failure-Report: on", 0)
            });
        },
    );
}

#[test]
fn mutation_sig_leave() {
    // pf-b1 never ends its leg from x for b1, who left (its BYE to x and x's 200 are gone).
    let rec = leave_recording();
    let (pfb1, x) = (addr_of(rec, "pf-b1", false), addr_of(rec, "x", false));
    assert_mutation_fails(
        CheckId::SigLeave,
        |f| matches!(&f.kind, K::LeaveNotPropagated { member, .. } if member == "b1"),
        |_| {},
        |ev| {
            let b = find_sip(ev, pfb1, x, "BYE ", "");
            let mut all = same_sip(ev, b);
            let ok = find_sip(ev, x, pfb1, "SIP/2.0 200", "BYE");
            all.extend(same_sip(ev, ok));
            drop_events(ev, all);
        },
    );
}

#[test]
fn mutation_media_reject() {
    // pf-b1 never releases b1 after its 413 (its BYE to b1 and b1's 200 are gone).
    let rec = refuse_recording();
    let (pfb1, b1) = (addr_of(rec, "pf-b1", false), addr_of(rec, "b1", false));
    assert_mutation_fails(
        CheckId::MediaReject,
        |f| matches!(&f.kind, K::RefusingMemberKept { member, .. } if member == "b1"),
        |_| {},
        |ev| {
            let b = find_sip(ev, pfb1, b1, "BYE ", "");
            let mut all = same_sip(ev, b);
            let ok = find_sip(ev, b1, pfb1, "SIP/2.0 200", "BYE");
            all.extend(same_sip(ev, ok));
            drop_events(ev, all);
        },
    );
}

#[test]
fn every_check_has_a_mutation() {
    let src: String = include_str!("checks.rs")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    // SIG-ROUTE only judges runs behind a SIP/IP core: its mutation is in tests/core.rs.
    let core_tests = include_str!("core.rs");
    for id in CheckId::ALL {
        if id == CheckId::SigRoute {
            assert!(core_tests.contains("// SIG-ROUTE mutation:"));
            continue;
        }
        let call = format!("assert_mutation_fails(CheckId::{id:?},");
        assert!(src.contains(&call), "no mutation test for {id}");
    }
}

// ------------------------------------------------------------------------------ hostile input

/// Garbage, truncation, unknown addresses and impossible orders: never a panic, always a
/// verdict per check.
#[test]
fn hostile_events_never_panic() {
    use rand::{Rng, SeedableRng};
    let topo = Arc::new(Topology::generate(198, 3, 2, 5060, 2855));
    let ip = |n: &str| topo.instance(n).expect("instance");
    let (a, p, x) = (ip("client-a"), ip("pf-a"), ip("x"));
    let eph = SocketAddr::new(p.msrp.ip(), 40000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 999.1.1.1\r\nt=0 0\r\nm=message 0 TCP/MSRP x\r\na=path:msrp://[::1:2855/;tcp\r\na=setup:sideways\r\n";
    let invite = format!(
        "INVITE sip:friends@cf.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {}\r\nFrom: <sip:a@b>\r\nTo: <sip:c@d>\r\nCall-ID: 1\r\nCSeq: x INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        a.sip,
        sdp.len()
    );
    let msrp = "MSRP abc SEND\r\nTo-Path: msrp://x\r\nByte-Range: 0-9/3\r\nContent-Type: a\r\n\r\nhello\r\n-------abc$\r\n\
        MSRP abcd SEND\r\nTo-Path: msrp://1.2.3.4:9/s;tcp\r\nFrom-Path: msrp://1.2.3.4:9/t;tcp\r\nMessage-ID: m\r\n\
        Byte-Range: 18446744073709551615-18446744073709551615/18446744073709551615\r\nContent-Type: message/cpim\r\n\r\n\
        From: x\r\n\r\nbody\r\n-------abcd+\r\nMSRP abcdef 200 OK\r\n\r\n-------zz";
    for round in 0..200u64 {
        let mut events: Events = vec![
            (
                Duration::from_millis(5),
                WireEvent::Sip {
                    transport: Transport::Udp,
                    from: a.sip,
                    to: p.sip,
                    raw: Bytes::from(invite.clone()),
                },
            ),
            (
                Duration::from_millis(1),
                WireEvent::TcpData {
                    from: eph,
                    to: x.msrp,
                    data: Bytes::from(msrp),
                },
            ),
            (
                Duration::from_millis(2),
                WireEvent::TcpClose {
                    from: x.msrp,
                    to: eph,
                },
            ),
            (
                Duration::from_millis(3),
                WireEvent::TcpOpen {
                    conn: (eph, x.msrp),
                    opener: eph,
                },
            ),
            (
                Duration::from_millis(3),
                WireEvent::TcpOpen {
                    conn: (eph, x.msrp),
                    opener: eph,
                },
            ),
        ];
        for _ in 0..20 {
            let len = rng.random_range(0..300);
            let mut junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if rng.random_bool(0.5) {
                let base = if rng.random_bool(0.5) {
                    invite.as_bytes()
                } else {
                    msrp.as_bytes()
                };
                let cut = rng.random_range(0..base.len());
                junk = base[..cut].to_vec();
                if let Some(b) = junk.get_mut(rng.random_range(0..cut.max(1))) {
                    *b = rng.random();
                }
            }
            let t = Duration::from_micros(rng.random_range(0..10_000));
            let from = if rng.random_bool(0.5) {
                eph
            } else {
                SocketAddr::from(([10, 0, 0, 1], 9))
            };
            let ev = match rng.random_range(0..3) {
                0 => WireEvent::Sip {
                    transport: Transport::Tcp,
                    from,
                    to: x.sip,
                    raw: Bytes::from(junk),
                },
                1 => WireEvent::TcpData {
                    from,
                    to: x.msrp,
                    data: Bytes::from(junk),
                },
                _ => WireEvent::TcpData {
                    from: x.msrp,
                    to: from,
                    data: Bytes::from(junk),
                },
            };
            events.push((t, ev));
        }
        for sut in [vec![], vec![Role::X], vec![Role::PfA, Role::X]] {
            let ctx = CaseContext {
                topology: topo.clone(),
                variant: Variant::new((round % 7 + 1) as u8),
                sut,
                holds: Holds::default(),
                pause: PAUSE,
                trigger_window: WINDOW,
                content_len: 1,
                content_sha256: String::new(),
                pinned: None,
                delivered: BTreeMap::new(),
                report_timing: Default::default(),
            };
            let obs = observe(&ctx, &events);
            let results = run_checks(&ctx, &obs);
            assert_eq!(
                results.iter().map(|r| r.id).collect::<Vec<_>>(),
                CheckId::ALL.to_vec()
            );
        }
    }
}
