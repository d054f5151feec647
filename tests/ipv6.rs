//! IPv6 (issue 17): every figure with every entity on the one IPv6 loopback address `::1`,
//! told apart by port.
//!
//! - Every figure × SIP over UDP and TCP × every single-role split, the network split and the
//!   self-check, against the in-process reference SUT: every check passes; the wire carries
//!   `c=IN IP6 ::1` and bracketed hosts in SIP (Via, Contact, Request-URI, RFC 5118 / RFC 3261
//!   §25.1) and in MSRP URIs (RFC 4975 §9, `msrp://[::1]:port/id;tcp`); the run's pcap (IPv6
//!   headers) read back gives the same verdicts, with the topology and with the entities
//!   inferred from the signalling.
//!
//! Ports on ::1: 16000–19199 (the lab topologies of `run` use 10000–15119).
#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common_inproc;

use common_inproc::*;
use cpm_harness::capture::analyze::{analyze_events, Options};
use cpm_harness::capture::{read_capture_full, write_pcap};
use cpm_harness::codec::sip::Transport;
use cpm_harness::config::{IpFamily, Trigger, Variant};
use cpm_harness::engine::{CheckResult, Verdict};
use cpm_harness::topology::{Role, Topology};
use cpm_harness::trace::WireEvent;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

fn verdicts(results: &[CheckResult]) -> BTreeMap<String, Verdict> {
    results
        .iter()
        .map(|r| (r.id.as_str().to_string(), r.verdict))
        .collect()
}

/// The pcap of a run, read back and analyzed (with the topology, or inferring it).
fn offline(
    run: &Run,
    sut: &[Role],
    map: Option<&Topology>,
    dir: &Path,
    name: &str,
) -> Vec<CheckResult> {
    let path = dir.join(format!("{name}.pcap"));
    write_pcap(&path, SystemTime::now(), &run.events).expect("write pcap");
    let cap = read_capture_full(&path).expect("read pcap");
    assert_eq!(
        cap.events.len(),
        run.events.len(),
        "{name}: events read back"
    );
    let mut opts = Options::new(run.ctx.variant.clone());
    opts.sut = sut.to_vec();
    opts.map = map.map(|t| (dir.join("topology.yaml"), t.clone()));
    opts.pause = PAUSE;
    opts.trigger_window = WINDOW;
    analyze_events(&path, &cap.events, &opts)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .outcome
        .checks
}

/// What the IPv6 wire must show, for every SIP message and MSRP head recorded: no IPv4
/// address anywhere, `c=`/`o=` as `IN IP6 ::1`, and `::1` only in brackets in SIP header and
/// start lines and in MSRP URIs. Returns the problems found.
fn ipv6_wire_problems(run: &Run) -> Vec<String> {
    let mut bad = Vec::new();
    let (mut sdp_seen, mut path_seen, mut via_seen) = (0, 0, 0);
    for (_, ev) in &run.events {
        let (text, is_sip) = match ev {
            WireEvent::Sip { raw, from, to, .. } => {
                if !from.is_ipv6() || !to.is_ipv6() {
                    bad.push(format!("SIP between {from} and {to}"));
                }
                (String::from_utf8_lossy(raw).into_owned(), true)
            }
            WireEvent::TcpData { data, .. } => (String::from_utf8_lossy(data).into_owned(), false),
            _ => continue,
        };
        if is_sip && (text.contains("127.") || text.contains("IP4")) {
            bad.push(format!("an IPv4 address or IP4 in {text:?}"));
        }
        let mut in_body = false;
        for line in text.split("\r\n") {
            // Of MSRP, only the paths: the rest is content.
            let msrp_path = line.starts_with("To-Path:") || line.starts_with("From-Path:");
            if !is_sip && !msrp_path {
                continue;
            }
            if !is_sip && line.contains("127.") {
                bad.push(format!("an IPv4 address in {line:?}"));
            }
            if line.is_empty() {
                in_body = is_sip;
                continue;
            }
            if in_body {
                if line.starts_with("c=") || line.starts_with("o=") {
                    sdp_seen += 1;
                    if !line.ends_with("IN IP6 ::1") {
                        bad.push(format!("SDP {line:?}: expected IN IP6 ::1"));
                    }
                }
                if let Some(p) = line.strip_prefix("a=path:") {
                    path_seen += 1;
                    if !p.split(' ').all(|u| u.starts_with("msrp://[::1]:")) {
                        bad.push(format!("a=path {p:?} not msrp://[::1]:port"));
                    }
                }
                continue;
            }
            if line.starts_with("Via:") {
                via_seen += 1;
            }
            if line.starts_with("To-Path:") || line.starts_with("From-Path:") {
                path_seen += 1;
            }
            // Outside brackets, ::1 never appears in a SIP start or header line (the Call-ID
            // `word@word` may hold it: RFC 3261 §25.1 allows ':' in a word) nor in MSRP paths.
            if line.starts_with("Call-ID:") {
                continue;
            }
            let unbracketed = line.replace("[::1]", "");
            if unbracketed.contains("::1") {
                bad.push(format!("unbracketed ::1 in {line:?}"));
            }
        }
    }
    if sdp_seen == 0 || path_seen == 0 || via_seen == 0 {
        bad.push(format!(
            "too little seen: {sdp_seen} c=/o= lines, {path_seen} paths, {via_seen} Vias"
        ));
    }
    bad
}

/// Figure `fig` over `t`: every split on ::1.
async fn every_split_on_ipv6(fig: u8, t: Transport) {
    let mut v = Variant::new(fig);
    v.transport = t;
    v.ip = IpFamily::V6;
    if fig == 1 {
        v.reuse = true;
        v.trigger = Trigger::On200;
    }
    let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let dir = tempfile::tempdir().unwrap();
    let runs = futures_join(SPLITS.iter().enumerate().map(|(i, sut)| {
        let case = Case::new(v.clone(), sut);
        // 20 ports per case, apart per figure and transport (SIP over TCP on other ports: a
        // socket of the UDP run may still be closing).
        let base = 16000
            + u16::from(fig - 1) * 400
            + if t == Transport::Tcp { 200 } else { 0 }
            + (i as u16) * 20;
        let topo = Arc::new(Topology::generate_shared(ip, 3, 2, base));
        assert_eq!(topo.family(), IpFamily::V6);
        async move {
            let run = run_case_on(topo, &case).await;
            (case.sut.clone(), run)
        }
    }))
    .await;
    let mut bad = String::new();
    for (sut, run) in &runs {
        let id = format!("{} split {}", v.id(), split_name(sut));
        let live = judge(run);
        let vs = verdicts(&live);
        if vs
            .values()
            .any(|v| !matches!(v, Verdict::Pass | Verdict::NotObservable))
        {
            bad.push_str(&format!("{id}: not every check passed\n{}", show(&live)));
        }
        for p in ipv6_wire_problems(run) {
            bad.push_str(&format!("{id}: {p}\n"));
        }
        let name = split_name(sut);
        let with_map = offline(run, sut, Some(&run.ctx.topology), dir.path(), &name);
        if verdicts(&with_map) != vs {
            bad.push_str(&format!(
                "{id}: the capture (with its topology) gives\n{}",
                show(&with_map)
            ));
        }
        // Without the topology, the entities are inferred from the signalling by SIP address.
        let inferred = offline(run, sut, None, dir.path(), &format!("{name}-inferred"));
        if sut.is_empty() && verdicts(&inferred) != vs {
            bad.push_str(&format!(
                "{id}: the capture (entities inferred) gives\n{}",
                show(&inferred)
            ));
        }
    }
    assert!(bad.is_empty(), "{bad}");
}

/// One test per figure (they run in parallel), each over SIP/UDP then SIP/TCP.
macro_rules! on_ipv6 {
    ($($name:ident: $fig:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            every_split_on_ipv6($fig, Transport::Udp).await;
            every_split_on_ipv6($fig, Transport::Tcp).await;
        }
    )*};
}

on_ipv6! {
    figure1_on_ipv6: 1;
    figure2_on_ipv6: 2;
    figure3_on_ipv6: 3;
    figure4_on_ipv6: 4;
    figure5_on_ipv6: 5;
    figure6_on_ipv6: 6;
    figure7_on_ipv6: 7;
}
