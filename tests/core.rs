//! The flow through a real SIP/IP core: Kamailio (interop/kamailio/kamailio.cfg) between
//! every pair of entities, record-routing, so that ACK and BYE follow the route set.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

use cpm_harness::chain::{pattern, run_once, sha256_hex, ChainOptions};
use cpm_harness::codec::sip::{SipMessage, Transport};
use cpm_harness::config::Variant;
use cpm_harness::kamailio::{kamailio_binary, CoreProxy};
use cpm_harness::topology::Topology;
use cpm_harness::trace::{Recorder, WireEvent};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod common;

/// Kamailio is a test dependency: CI installs it, so its absence fails there; elsewhere the
/// test is recorded as not run.
fn have_kamailio() -> bool {
    if kamailio_binary().is_some() {
        return true;
    }
    common::not_run("needs kamailio");
    false
}

/// Starts Kamailio on the net's .0.250 and runs the figure over SIP/UDP, then SIP/TCP.
async fn figure_through_core(net: u8, fig: u8) {
    if !have_kamailio() {
        return;
    }
    let core_addr: SocketAddr = format!("127.{net}.0.250:5060").parse().unwrap();
    let mut core = CoreProxy::start_kamailio(core_addr, None, Duration::from_secs(10))
        .await
        .expect("kamailio starts");
    for t in [Transport::Udp, Transport::Tcp] {
        through_core(&mut core, net, fig, t).await;
    }
    core.stop().await;
}

async fn through_core(core: &mut CoreProxy, net: u8, fig: u8, transport: Transport) {
    let core_addr = core.addr();
    // Own ports per transport: the proxy keeps its TCP connections to the first run's
    // listeners open (tcp_connection_lifetime), so those addresses stay taken.
    let (sip, msrp) = match transport {
        Transport::Udp => (5060, 2855),
        Transport::Tcp => (5070, 2865),
        Transport::Tls => unreachable!("SIP over TLS: tls_cases_pass_through_kamailio_over_tls"),
    };
    let mut topo = Topology::generate(net, 3, 2, sip, msrp);
    topo.core = Some(core.addr());
    let mut variant = Variant::new(fig);
    variant.transport = transport;
    let recorder = Recorder::new(std::time::Instant::now());
    let o = ChainOptions {
        recorder: Some(recorder.clone()),
        ..ChainOptions::new(Arc::new(topo), variant.clone())
    };
    let size = 64 * 1024;
    let content = pattern(size);
    let want = sha256_hex(&content);
    let outcome = run_once(o, content, Duration::from_secs(30)).await;
    let log = core.log();
    let outcome = outcome.unwrap_or_else(|e| panic!("{}: {e:#}\nkamailio: {log:?}", variant.id()));
    assert_eq!(outcome.received.len(), 3, "{:?}", outcome.received);
    for (m, r) in &outcome.received {
        assert!(r.complete && r.sha256 == want, "{m}: {r:?}");
    }
    assert!(
        outcome.ended_bad.is_empty(),
        "{:?} {:?}",
        outcome.ended_bad,
        outcome.warnings
    );
    // Every SIP message went through the proxy, and the in-dialog requests carried the
    // route the proxy recorded.
    let events = recorder.snapshot();
    let mut acks = 0;
    for (_, e) in &events {
        if let WireEvent::Sip { from, to, raw, .. } = e {
            assert!(
                *from == core_addr
                    || *to == core_addr
                    || from.ip() == core_addr.ip()
                    || to.ip() == core_addr.ip(),
                "SIP {from} -> {to} bypassed the core"
            );
            let m = SipMessage::parse(raw).unwrap();
            if m.method().map(|m| m.as_str() == "ACK").unwrap_or(false) && *to == core_addr {
                acks += 1;
                assert!(
                    !m.uri_list("Route").is_empty(),
                    "ACK without Route: {}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
    }
    assert_eq!(
        acks, 8,
        "ACK1, ACK2, 3 x ACK3 and 3 x ACK4 through the core"
    );
}

macro_rules! figures {
    ($($name:ident: $fig:expr, $net:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            figure_through_core($net, $fig).await;
        }
    )*};
}

figures! {
    fig1_through_kamailio: 1, 2;
    fig2_through_kamailio: 2, 3;
    fig3_through_kamailio: 3, 4;
    fig4_through_kamailio: 4, 5;
    fig5_through_kamailio: 5, 6;
    fig6_through_kamailio: 6, 7;
    fig7_through_kamailio: 7, 8;
}

/// Adds a case that did not pass to `failures`: its verdict and id, each check that did not
/// pass with its evidence, and its notes.
fn failed(failures: &mut String, o: &cpm_harness::engine::outcome::CaseOutcome) {
    use cpm_harness::engine::Verdict;
    if o.verdict == Verdict::Pass {
        return;
    }
    failures.push_str(&format!("{} {}\n", o.verdict.as_str(), o.id));
    for c in o.checks.iter().filter(|c| c.verdict != Verdict::Pass) {
        failures.push_str(&format!(
            "    {} {}: {:?}\n",
            c.verdict.as_str(),
            c.id,
            c.evidence()
        ));
    }
    for n in &o.notes {
        failures.push_str(&format!("    note: {n}\n"));
    }
}

/// The conformance engine with the core in the loop: for every figure, the reference SUT
/// as a separate process in the middle (pf-a+x+pf-b), at each end (client-a, client-b), as x
/// alone, and the harness alone, over SIP/UDP and SIP/TCP; every case passes, its capture
/// re-analyzes to the same verdicts, and the capture shows the proxy hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_passes_with_kamailio_between_harness_and_reference_sut() {
    use cpm_harness::engine::case::{run_case, RunSettings};
    use cpm_harness::engine::plan::{plan, DefaultSuite};
    use cpm_harness::engine::profile::Profile;
    use std::path::{Path, PathBuf};
    if !have_kamailio() {
        return;
    }
    // With an IPv6 listener for the default suite's IPv6 cases (every entity on ::1).
    let core = CoreProxy::start_kamailio_dual(
        "127.251.0.1:5060".parse().unwrap(),
        Some("[::1]:19990".parse().unwrap()),
        None,
        Duration::from_secs(10),
    )
    .await
    .expect("kamailio starts");
    let core6 = core.addr_v6().expect("an IPv6 listener");
    let d = DefaultSuite::load(Path::new("suites/default.yaml")).expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let p = plan(Path::new("suites"), &d, &profile).expect("plan");
    let splits = ["none", "client-a", "client-b", "x", "pf-a+x+pf-b"];
    let cases: Vec<_> = p
        .cases
        .iter()
        .filter(|c| {
            c.ordering == "in-order"
                && splits.contains(&c.split().as_str())
                && c.id.contains("/on-ack/")
                && c.id.contains("/new/sdp/predefined/")
                // Over TLS: tls_cases_pass_through_kamailio_over_tls.
                && !c.id.contains("/tls/")
        })
        .cloned()
        .collect();
    for fig in 1..=7 {
        for t in ["/udp/", "/tcp/"] {
            let n = cases
                .iter()
                .filter(|c| c.figure == fig && c.id.contains(t))
                .count();
            assert!(n >= 2, "F{fig}{t}: only {n} cases in the selection");
        }
    }
    let work = tempfile::tempdir().unwrap();
    let captures = tempfile::tempdir().unwrap();
    let s = RunSettings {
        capture_dir: Some(captures.path().to_path_buf()),
        reanalyze: true,
        core: Some(core.addr()),
        core_v6: Some(core6),
        ..RunSettings::new(
            PathBuf::from(env!("CARGO_BIN_EXE_cpm-harness")),
            work.path().to_path_buf(),
        )
    };
    let mut failures = String::new();
    // Two cases at a time on nets 252..=255.
    for (b, batch) in cases.chunks(2).enumerate() {
        let runs: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (c, profile, s) = (c.clone(), profile.clone(), s.clone());
                let net = 252 + ((b * 2 + i) % 4) as u8;
                tokio::spawn(async move { run_case(&c, &profile, net, &s).await })
            })
            .collect();
        for r in runs {
            failed(&mut failures, &r.await.expect("case task"));
        }
    }
    assert!(failures.is_empty(), "{failures}");
    // The captures show the hop: SIP to and from the proxy's address, never entity to entity.
    let mut with_core = 0;
    for f in std::fs::read_dir(captures.path()).unwrap().flatten() {
        // Beside each pcap: its topology file (the map for analyze).
        if f.path().extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        let events = cpm_harness::capture::read::read_capture(&f.path()).expect("capture reads");
        let sip: Vec<_> = events
            .iter()
            .filter_map(|(_, e)| match e {
                WireEvent::Sip { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect();
        assert!(!sip.is_empty(), "{}: no SIP", f.path().display());
        for (from, to) in &sip {
            // On ::1 the core shares the address: its listener, or its own TCP connection
            // (an ephemeral port) to an entity.
            let ephemeral = |a: &SocketAddr| a.port() >= 32768;
            assert!(
                *from == core.addr()
                    || *to == core.addr()
                    || from.ip() == core.addr().ip()
                    || to.ip() == core.addr().ip()
                    || *from == core6
                    || *to == core6
                    || (from.is_ipv6() && (ephemeral(from) || ephemeral(to))),
                "{}: SIP {from} -> {to} bypassed the core",
                f.path().display()
            );
        }
        with_core += 1;
    }
    assert_eq!(with_core, cases.len());
    core.stop().await;
}

/// SIG-ROUTE: a reference SUT with `ignore-route-set` (pf-a sends ACK2 and BYE straight to
/// x's Contact) fails it through the core; the same case passes without the fault; and a
/// capture whose ACK from the SUT lost its Route headers (SIG-ROUTE mutation) fails it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sig_route_catches_an_entity_that_ignores_the_route_set() {
    use cpm_harness::capture::analyze::{analyze_file, Options};
    use cpm_harness::capture::read::read_capture;
    use cpm_harness::capture::write::write_pcap;
    use cpm_harness::engine::case::{run_case, RunSettings};
    use cpm_harness::engine::plan::{plan, DefaultSuite};
    use cpm_harness::engine::profile::Profile;
    use cpm_harness::engine::{CheckId, Cite, FindingKind, Verdict};
    use cpm_harness::entity::Fault;
    use std::path::{Path, PathBuf};
    if !have_kamailio() {
        return;
    }
    let core = CoreProxy::start_kamailio(
        "127.251.0.2:5060".parse().unwrap(),
        None,
        Duration::from_secs(10),
    )
    .await
    .expect("kamailio starts");
    let d = DefaultSuite::load(Path::new("suites/default.yaml")).expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let p = plan(Path::new("suites"), &d, &profile).expect("plan");
    let case = p
        .cases
        .iter()
        .find(|c| c.id == "F1/pf-a/on-ack/udp/new/sdp/predefined/in-order")
        .expect("case")
        .clone();
    let work = tempfile::tempdir().unwrap();
    let mut s = RunSettings {
        case_timeout: Duration::from_secs(5),
        capture_dir: Some(work.path().join("good")),
        core: Some(core.addr()),
        ..RunSettings::new(
            PathBuf::from(env!("CARGO_BIN_EXE_cpm-harness")),
            work.path().join("work"),
        )
    };
    let good = run_case(&case, &profile, 9, &s).await;
    let route = |o: &cpm_harness::engine::outcome::CaseOutcome| {
        o.checks
            .iter()
            .find(|c| c.id == CheckId::SigRoute)
            .unwrap()
            .clone()
    };
    assert_eq!(good.verdict, Verdict::Pass, "{:?}", good.checks);
    assert_eq!(route(&good).verdict, Verdict::Pass);

    s.faults = vec![Fault::IgnoreRouteSet];
    s.capture_dir = None;
    let bad = run_case(&case, &profile, 10, &s).await;
    let r = route(&bad);
    assert_eq!(r.verdict, Verdict::Fail, "{:?}", r.evidence());
    assert!(
        r.findings
            .iter()
            .any(|f| matches!(f.kind, FindingKind::BypassedCore { .. })),
        "{:?}",
        r.findings
    );

    // SIG-ROUTE mutation: the SUT's ACK2 arrives at x straight from pf-a instead of from the
    // core (what an entity that ignores the route set does).
    let pcap = std::fs::read_dir(work.path().join("good"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pcap"))
        .expect("capture");
    let mut topo = Topology::generate(9, 3, 2, 5060, 2855);
    topo.core = Some(core.addr());
    let pfa = topo.pf_a.sip;
    let mut events = read_capture(&pcap).expect("reads");
    let mut stripped = 0;
    for (_, e) in events.iter_mut() {
        if let WireEvent::Sip { from, to, raw, .. } = e {
            if from.ip() == core.addr().ip() && *to == topo.x.sip && raw.starts_with(b"ACK ") {
                *from = pfa;
                stripped += 1;
            }
        }
    }
    assert_eq!(stripped, 1, "one ACK2 from the SUT's pf-a via the core");
    let mutated = work.path().join("mutated.pcap");
    write_pcap(&mutated, std::time::SystemTime::now(), &events).unwrap();
    let mut opts = Options::new(case.variant.clone());
    opts.sut = case.sut.clone();
    opts.map = Some((work.path().join("t.yaml"), topo.clone()));
    let before = analyze_file(&pcap, &opts).unwrap();
    let after = analyze_file(&mutated, &opts).unwrap();
    let r0 = route(&before.outcome);
    let r1 = route(&after.outcome);
    assert_eq!(r0.verdict, Verdict::Pass, "{:?}", r0.evidence());
    assert_eq!(r1.verdict, Verdict::Fail, "{:?}", r1.evidence());
    // The ACK2 that came straight from pf-a is the finding's subject.
    assert!(
        r1.findings
            .iter()
            .any(|f| matches!(f.kind, FindingKind::BypassedCore { .. })
                && matches!(&f.subject, Some(Cite::Sip { start_line, from, .. })
                if start_line.starts_with("ACK ") && from.addr == pfa)),
        "{:?}",
        r1.findings
    );

    // And as sent: client-a's ACK1 to the core without its Route headers, judged with every
    // role as the subject, fails on the route set.
    let ca = Topology::generate(9, 3, 2, 5060, 2855).client_a.sip;
    let mut events = read_capture(&pcap).expect("reads");
    let mut stripped = 0;
    for (_, e) in events.iter_mut() {
        if let WireEvent::Sip { from, to, raw, .. } = e {
            if *from == ca && to.ip() == core.addr().ip() && raw.starts_with(b"ACK ") {
                let text = String::from_utf8_lossy(raw).to_string();
                let kept: Vec<&str> = text
                    .split("\r\n")
                    .filter(|l| !l.starts_with("Route:"))
                    .collect();
                *raw = bytes::Bytes::from(kept.join("\r\n"));
                stripped += 1;
            }
        }
    }
    assert_eq!(stripped, 1, "client-a's ACK1");
    write_pcap(&mutated, std::time::SystemTime::now(), &events).unwrap();
    opts.sut = vec![];
    let before = analyze_file(&pcap, &opts).unwrap();
    let after = analyze_file(&mutated, &opts).unwrap();
    assert_eq!(
        route(&before.outcome).verdict,
        Verdict::Pass,
        "{:?}",
        route(&before.outcome).evidence()
    );
    let r2 = route(&after.outcome);
    assert_eq!(r2.verdict, Verdict::Fail, "{:?}", r2.evidence());
    assert!(
        r2.findings.iter().any(|f| matches!(&f.kind,
            FindingKind::WrongRouteSet { got, want }
                if got.is_empty() && want.first().is_some_and(|u| u.starts_with("sip:127.251.0.2")))),
        "{:?}",
        r2.findings
    );

    // A slow core hop: every record from the core's copy of x's first INVITE3 onwards comes
    // 400 ms later (CI's loaded run saw Kamailio take 255 ms). x and pf-b1 are the harness's,
    // so both records of that INVITE are in the capture; judged with every role as the
    // subject, the copy is still the one message relayed, not a second INVITE of x.
    let mut events = read_capture(&pcap).expect("reads");
    let from_core = events
        .iter()
        .position(|(_, e)| {
            matches!(e, WireEvent::Sip { from, to, raw, .. }
                if from.ip() == core.addr().ip() && *to == topo.pf_b[0].sip
                    && raw.starts_with(b"INVITE "))
        })
        .expect("the core's copy of an INVITE3");
    for (t, _) in events.iter_mut().skip(from_core) {
        *t += Duration::from_millis(400);
    }
    write_pcap(&mutated, std::time::SystemTime::now(), &events).unwrap();
    let not_passing = |o: &cpm_harness::engine::outcome::CaseOutcome| -> Vec<String> {
        o.checks
            .iter()
            .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::NotObservable))
            .map(|c| format!("{} {}: {:?}", c.id, c.verdict.as_str(), c.evidence()))
            .collect()
    };
    let on_time = analyze_file(&pcap, &opts).unwrap();
    assert!(
        not_passing(&on_time.outcome).is_empty(),
        "{:#?}",
        not_passing(&on_time.outcome)
    );
    let slow = analyze_file(&mutated, &opts).unwrap();
    let bad = not_passing(&slow.outcome);
    assert!(bad.is_empty(), "a slow core hop changed verdicts: {bad:#?}");
    core.stop().await;
}

/// Whether Kamailio's tls module (Debian: kamailio-tls-modules) is installed beside it.
fn have_kamailio_tls() -> bool {
    if !have_kamailio() {
        return false;
    }
    let found = cpm_harness::kamailio::kamailio_tls_module().is_some();
    if !found {
        common::not_run("needs kamailio's tls module (kamailio-tls-modules)");
    }
    found
}

/// SIP over TLS through the core: every TLS case of the default suite (x the reference SUT
/// as its own process, IPv4 and IPv6) passes with Kamailio serving TLS with a certificate of
/// the run's CA. On the wire, every connection to or from the core's TLS port carries TLS
/// records, never plain SIP; with the key log the same capture reads as SIP through the core,
/// in-dialog ACKs included (the Record-Route kept TLS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cases_pass_through_kamailio_over_tls() {
    use cpm_harness::capture::read::{read_capture_from, read_capture_full};
    use cpm_harness::engine::case::{run_case, RunSettings};
    use cpm_harness::engine::plan::{plan, DefaultSuite};
    use cpm_harness::engine::profile::Profile;
    use std::path::{Path, PathBuf};
    if !have_kamailio_tls() {
        return;
    }
    // The process's TLS context: the reference SUT gets it as its {tls-dir}, the core a leaf.
    let ctx = cpm_harness::driver::tls::context().expect("TLS context");
    let core = CoreProxy::start_kamailio_tls(
        "127.251.0.3:5060".parse().unwrap(),
        Some("[::1]:19996".parse().unwrap()),
        Some(&ctx),
        None,
        Duration::from_secs(10),
    )
    .await
    .expect("kamailio starts with TLS");
    let (tls4, tls6) = core.tls_addrs().expect("TLS listeners");
    let tls6 = tls6.expect("an IPv6 TLS listener");
    assert_eq!(tls4, "127.251.0.3:5061".parse().unwrap());
    let d = DefaultSuite::load(Path::new("suites/default.yaml")).expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let p = plan(Path::new("suites"), &d, &profile).expect("plan");
    let cases: Vec<_> = p
        .cases
        .iter()
        .filter(|c| c.variant.transport == Transport::Tls)
        .cloned()
        .collect();
    assert!(cases.len() >= 14, "only {} TLS cases", cases.len());
    let work = tempfile::tempdir().unwrap();
    let captures = tempfile::tempdir().unwrap();
    let s = RunSettings {
        capture_dir: Some(captures.path().to_path_buf()),
        core: Some(core.addr()),
        core_v6: core.addr_v6(),
        core_tls: core.tls_addrs(),
        ..RunSettings::new(
            PathBuf::from(env!("CARGO_BIN_EXE_cpm-harness")),
            work.path().to_path_buf(),
        )
    };
    let mut failures = String::new();
    // One case at a time, on net 11 (no other test here uses it): through the proxy's single
    // TLS worker a hop takes tens of ms, and SIG-ACK judges x's ACK timing (README, "Known
    // gaps").
    for c in &cases {
        failed(&mut failures, &run_case(c, &profile, 11, &s).await);
    }
    let mut core = core;
    assert!(
        failures.is_empty(),
        "{failures}\nkamailio: {:?}",
        core.log()
    );
    let at_core = |a: &SocketAddr| *a == tls4 || *a == tls6 || a.ip() == tls4.ip();
    let mut pcaps = 0;
    for f in std::fs::read_dir(captures.path()).unwrap().flatten() {
        let path = f.path();
        if path.extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        pcaps += 1;
        let name = path.display().to_string();
        // The wire alone (no key log): TLS records to and from the core, no SIP there. Over
        // ::1 the core's own connections to the entities come from an ephemeral port of ::1,
        // so the IPv6 check counts the connections to its TLS listener.
        let raw =
            read_capture_from(&path, std::fs::File::open(&path).unwrap()).expect("capture reads");
        let mut records = 0;
        for (_, e) in &raw.events {
            match e {
                WireEvent::Sip { from, to, .. } => {
                    panic!("{name}: plain SIP {from} -> {to} on the wire of a TLS case")
                }
                WireEvent::TcpData { from, to, data } if at_core(from) || at_core(to) => {
                    // A TLS record header: content type (handshake 22, alert 21, change
                    // cipher spec 20, application data 23), then version 3.x.
                    assert!(
                        data.len() >= 5 && (20..=23).contains(&data[0]) && data[1] == 3,
                        "{name}: {from} -> {to} is not TLS: {:?}",
                        String::from_utf8_lossy(&data[..data.len().min(40)])
                    );
                    records += 1;
                }
                _ => {}
            }
        }
        assert!(records > 0, "{name}: no TLS records with the core");
        // With the key log beside it: the SIP through the core, the ACKs to its TLS port.
        let decoded = read_capture_full(&path).expect("capture decodes").events;
        let mut acks = 0;
        let mut via_core = 0;
        for (_, e) in &decoded {
            if let WireEvent::Sip { from, to, raw, .. } = e {
                if at_core(from) || at_core(to) {
                    via_core += 1;
                }
                let m = SipMessage::parse(raw).unwrap();
                if m.method().is_some_and(|m| m.as_str() == "ACK") && (*to == tls4 || *to == tls6) {
                    acks += 1;
                }
            }
        }
        assert!(
            via_core > 0 && acks > 0,
            "{name}: {via_core} SIP via the core, {acks} ACKs"
        );
    }
    assert_eq!(pcaps, cases.len(), "a capture per case");
    core.stop().await;
}

/// A `--core-config` without the `WITH_TLS` block: Kamailio starts (no `-l tls:` it would
/// refuse), the plain case runs through it and the TLS case is skipped, not failed.
#[test]
fn a_core_config_without_tls_skips_the_tls_cases() {
    if !have_kamailio() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("no-tls.cfg");
    std::fs::write(
        &cfg,
        cpm_harness::kamailio::KAMAILIO_CFG.replace("WITH_TLS", "NO_TLS_HERE"),
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_cpm-harness"))
        .args(["run", "--core", "kamailio", "--core-config"])
        .arg(&cfg)
        .args([
            "--filter",
            "F1/x/on-ack/tls/new/sdp/predefined/msrps/in-order",
            "--filter",
            "F1/x/on-ack/udp/new/sdp/predefined/in-order",
            "--out",
        ])
        .arg(dir.path().join("r"))
        .arg("--captures")
        .arg(dir.path().join("c"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run cpm-harness");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("1 case, 1 skipped"), "{text}");
    assert!(
        text.contains("skipped behind the core: 1 case (SIP over TLS: the Kamailio configuration")
            && text.contains("has no WITH_TLS block)"),
        "{text}"
    );
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    assert!(!text.contains("SIP over TLS at"), "{text}");
    assert!(!text.contains("/tls/"), "the TLS case ran: {text}");
}
