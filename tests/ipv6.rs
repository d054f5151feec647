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
//! - A whole chain run on ::1 written as pcap (IPv6 headers): tshark finds no malformed
//!   frame, no expert error, no TCP analysis flag, every UDP/TCP checksum good, every frame
//!   IPv6, and dissects the SIP, SDP and MSRP fields the harness's own parsers read.
//! - Through the binary: `cpm-harness run` runs the default suite's IPv6 sections in lab mode
//!   (every entity on ::1) and against the reference SUT started once on ::1
//!   (profiles/reference-running-ipv6.yaml); `analyze` and `show` read the IPv6 captures.
//!
//! Ports on ::1: 16000–19199 for the in-process cases (19860–19999 for those over TLS),
//! 19200–19299 for the chain runs,
//! 10000–15119 for the lab topologies of `run`, 20000–20999 and 30000–30999 for the running
//! profile.
#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;
mod common_inproc;

use common_inproc::*;
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
        // `IN IP4` (SDP's address type), not any `IP4`: random tokens (a branch, a tag) may
        // hold those three letters.
        if is_sip && (text.contains("127.") || text.contains("IN IP4")) {
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
                    let bracketed =
                        |u: &str| u.starts_with("msrp://[::1]:") || u.starts_with("msrps://[::1]:");
                    if !p.split(' ').all(bracketed) {
                        bad.push(format!("a=path {p:?} not msrp(s)://[::1]:port"));
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

// ---------------------------------------------------------------------------------------
// Captures of IPv6 traffic, as tshark reads them.

use bytes::Bytes;
use cpm_harness::chain::{pattern, run_once, ChainOptions};
use cpm_harness::codec::sip::SipMessage;
use cpm_harness::trace::{one_copy, Recorder};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// Printable content without `;` (tshark's MSRP dissector reads a `;` at the start of a body
/// as Content-Type parameters and calls the frame malformed; see tests/capture.rs).
fn text_content(len: usize) -> Bytes {
    let printable = |b: &u8| match b' ' + b % 95 {
        b';' => b'.',
        c => c,
    };
    pattern(len)
        .iter()
        .map(printable)
        .collect::<Vec<u8>>()
        .into()
}

/// A whole chain run (every role in this process) on ::1 with SIP over `t`, written as pcap.
async fn chain_pcap(t: Transport, dir: &Path) -> (Vec<(Duration, WireEvent)>, PathBuf) {
    let rec = Recorder::new(Instant::now());
    let start = SystemTime::now();
    let mut variant = Variant::new(1);
    variant.transport = t;
    variant.ip = IpFamily::V6;
    let base = 19200 + if t == Transport::Tcp { 40 } else { 0 };
    let topo = Topology::generate_shared(IpAddr::V6(Ipv6Addr::LOCALHOST), 3, 2, base);
    let opts = ChainOptions {
        recorder: Some(rec.clone()),
        ..ChainOptions::new(Arc::new(topo), variant)
    };
    run_once(opts, text_content(100_000), Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("chain run on ::1 over {t}: {e:#}"));
    let events = one_copy(&rec.records());
    let pcap = dir.join(format!("chain-ipv6-{t}.pcap"));
    write_pcap(&pcap, start, &events).expect("write pcap");
    (events, pcap)
}

/// The capture of an IPv6 chain run: IPv6 headers, good checksums, nothing malformed, and the
/// SIP, SDP and MSRP tshark decodes equal to what the harness's parsers read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tshark_reads_ipv6_captures_as_the_harness_does() {
    if common::require_tool("tshark").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for t in [Transport::Udp, Transport::Tcp] {
        let (events, pcap) = chain_pcap(t, dir.path()).await;
        // Read back by the harness: the same SIP messages, on the same IPv6 4-tuples.
        let sip = |ev: &[(Duration, WireEvent)]| -> Vec<(SocketAddr, SocketAddr, Bytes)> {
            ev.iter()
                .filter_map(|(_, e)| match e {
                    WireEvent::Sip { from, to, raw, .. } => Some((*from, *to, raw.clone())),
                    _ => None,
                })
                .collect()
        };
        let back = read_capture_full(&pcap).expect("read the IPv6 pcap");
        assert!(
            sip(&back.events) == sip(&events),
            "{t}: the SIP messages read back differ"
        );

        let checks = [
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
        ];
        let mut args = checks.to_vec();
        args.extend([
            "-Y",
            "_ws.malformed || _ws.expert.severity >= 0x00600000 || tcp.analysis.flags \
             || tcp.checksum.status != 1 || udp.checksum.status != 1 || !ipv6 || ip",
            "-e",
            "frame.number",
            "-e",
            "_ws.col.Info",
        ]);
        let bad = common::tshark_fields(&pcap, &args);
        assert!(
            bad.is_empty(),
            "{t}: {} bad frames: {:?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
        // The checksum checks ran: every frame is IPv6 with a verified TCP or UDP checksum.
        let mut args = checks.to_vec();
        args.extend([
            "-e",
            "ipv6.src",
            "-e",
            "tcp.checksum.status",
            "-e",
            "udp.checksum.status",
        ]);
        let rows = common::tshark_fields(&pcap, &args);
        assert!(rows.len() > 100, "{t}: only {} frames", rows.len());
        for r in &rows {
            assert_eq!(r[0], "::1", "{t}: frame {r:?}");
            assert!(r[1] == "1" || r[2] == "1", "{t}: unverified checksum {r:?}");
        }

        let msgs: Vec<SipMessage> = events
            .iter()
            .filter_map(|(_, e)| match e {
                WireEvent::Sip { raw, .. } => Some(SipMessage::parse(raw).expect("SIP parses")),
                _ => None,
            })
            .collect();
        // SIP: method, status, Call-ID, top Via and Contact, one message per frame.
        let rows = common::tshark_fields(
            &pcap,
            &[
                "-Y",
                "sip",
                "-E",
                "occurrence=f",
                "-e",
                "sip.Method",
                "-e",
                "sip.Status-Code",
                "-e",
                "sip.Call-ID",
                "-e",
                "sip.Via.sent-by.address",
                "-e",
                "sip.r-uri.host",
            ],
        );
        let want: Vec<Vec<String>> = msgs
            .iter()
            .map(|m| {
                let via_host = m
                    .via_sent_by()
                    .and_then(|(_, sb)| cpm_harness::codec::sip::host::parse_hostport(&sb).ok())
                    .and_then(|(h, _)| h.ip())
                    .map(|ip| ip.to_string())
                    .unwrap_or_default();
                let ruri_host = m
                    .request_uri()
                    .and_then(cpm_harness::codec::sip::host::sip_uri_hostport)
                    .and_then(Result::ok)
                    .map(|(h, _)| h.to_string())
                    .unwrap_or_default();
                vec![
                    m.method()
                        .map(|x| x.as_str().to_owned())
                        .unwrap_or_default(),
                    m.code().map(|c| c.to_string()).unwrap_or_default(),
                    m.call_id().unwrap_or_default().to_owned(),
                    via_host,
                    ruri_host,
                ]
            })
            .collect();
        assert!(want.len() >= 20, "{t}: only {} SIP messages", want.len());
        assert_eq!(
            rows, want,
            "{t}: sip.Method, Status-Code, Call-ID, Via host, R-URI host"
        );
        assert!(rows.iter().all(|r| r[3] == "::1"), "{t}: Via sent-by ::1");

        // SDP: c= address (IP6), m= port and every media attribute (a=path among them).
        let rows = common::tshark_fields(
            &pcap,
            &[
                "-Y",
                "sdp",
                "-E",
                "occurrence=a",
                "-E",
                "aggregator=|",
                "-e",
                "sdp.connection_info.address_type",
                "-e",
                "sdp.connection_info.address",
                "-e",
                "sdp.media.port",
                "-e",
                "sdp.media_attr",
            ],
        );
        let want: Vec<Vec<String>> = common::sdp_fields(&msgs)
            .into_iter()
            .map(Vec::from)
            .collect();
        assert!(want.len() >= 10, "{t}: only {} SDP bodies", want.len());
        assert_eq!(rows, want, "{t}: SDP c=, m= port, a= attributes");
        assert!(
            rows.iter()
                .all(|r| r[0] == "IP6" && r[1] == "::1" && r[3].contains("path:msrp://[::1]:")),
            "{t}: c=IN IP6 ::1 and a=path msrp://[::1]:port"
        );

        // MSRP, by transaction id.
        let rows = common::tshark_fields(
            &pcap,
            &[
                "-Y",
                "msrp",
                "-E",
                "occurrence=f",
                "-e",
                "msrp.transaction.id",
                "-e",
                "msrp.method",
                "-e",
                "msrp.status.code",
                "-e",
                "msrp.to.path",
                "-e",
                "msrp.from.path",
                "-e",
                "msrp.byte.range",
            ],
        );
        let shown: BTreeMap<String, Vec<String>> =
            rows.into_iter().map(|r| (r[0].clone(), r)).collect();
        let (all, at_segment_start) = common::msrp_heads(&events);
        assert!(
            at_segment_start.len() > 20,
            "{t}: {} MSRP heads",
            at_segment_start.len()
        );
        for (tid, row) in &shown {
            assert_eq!(
                all.get(tid),
                Some(row),
                "{t}: MSRP message {tid} as tshark shows it"
            );
            assert!(row[3].starts_with("msrp://[::1]:"), "{t}: To-Path {row:?}");
        }
        for tid in &at_segment_start {
            assert!(
                shown.contains_key(tid),
                "{t}: MSRP {tid} starts a segment, not shown"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Through the binary.

use std::path::PathBuf;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `cpm-harness <args>` in the repository root; (exit code, stdout + stderr).
fn harness(args: &[&str]) -> (i32, String) {
    let o = Command::new(BIN)
        .current_dir(root())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run cpm-harness");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

/// The one run folder under `dir`.
fn run_folder(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no run folder in {}", dir.display()))
}

/// The default suite's IPv6 sections through the binary: one case per figure, on ::1 (lab
/// mode, the SUT launched per case) and against the reference SUT started once on ::1 (one
/// split per run); the captures are IPv6 and `analyze` and `show` read them.
/// The running profile's fixed addresses take one run at a time.
static RUNNING_SUT: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn binary_runs_the_ipv6_sections_in_lab_mode_and_against_a_running_sut() {
    let _one = RUNNING_SUT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    const NETWORK: &str = "/pf-a+x+pf-b/on-ack/udp/new/sdp/predefined/ipv6/";
    const X: &str = "/x/on-ack/tcp/new/sdp/predefined/ipv6/";
    for (name, profile, filters, figures) in [
        (
            "lab",
            "profiles/reference.yaml",
            &[NETWORK, X][..],
            &[1, 2, 3, 4, 5, 6, 7][..],
        ),
        (
            "running-network",
            "profiles/reference-running-ipv6.yaml",
            &[NETWORK][..],
            &[1, 3, 5, 7][..],
        ),
        (
            "running-x",
            "profiles/reference-running-ipv6.yaml",
            &[X][..],
            &[2, 4, 6][..],
        ),
    ] {
        let out = dir.path().join(name);
        let (reports, captures) = (out.join("reports"), out.join("captures"));
        let mut args = vec![
            "run",
            "--profile",
            profile,
            "--out",
            reports.to_str().unwrap(),
            "--captures",
            captures.to_str().unwrap(),
        ];
        for f in filters {
            args.extend(["--filter", f]);
        }
        let (code, text) = harness(&args);
        assert_eq!(code, 0, "{name}: {text}");
        assert!(
            text.contains(&format!("{} passed, 0 failed", figures.len())),
            "{name}: {text}"
        );
        for fig in figures {
            let split = if fig % 2 == 1 { "pf-a+x+pf-b" } else { "x" };
            assert!(
                text.contains(&format!("pass   F{fig}/{split}/")),
                "{name}: F{fig}: {text}"
            );
        }
        // The captures: IPv6, judged again offline, drawn.
        let caps = run_folder(&captures);
        let mut n = 0;
        for e in std::fs::read_dir(&caps).unwrap() {
            let gz = e.unwrap().path();
            let Some(stem) = gz
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .strip_suffix(".pcap.gz")
            else {
                continue;
            };
            n += 1;
            let pcap = out.join(format!("{stem}.pcap"));
            let mut d = flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap());
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut d, &mut bytes).unwrap();
            std::fs::write(&pcap, &bytes).unwrap();
            let cap = read_capture_full(&pcap).expect("read the capture");
            assert!(
                cap.events.iter().all(|(_, e)| e.source().is_ipv6()),
                "{stem}: not every packet is IPv6"
            );
            let fig = &stem[1..2];
            let (transport, sut) = if stem.contains("_tcp_") {
                ("tcp", "x")
            } else {
                ("udp", "pf-a,x,pf-b")
            };
            let (code, text) = harness(&[
                "analyze",
                pcap.to_str().unwrap(),
                "--figure",
                fig,
                "--transport",
                transport,
                "--sut",
                sut,
            ]);
            assert_eq!(code, 0, "{name} analyze {stem}: {text}");
            assert!(
                text.contains("verdict: pass"),
                "{name} analyze {stem}: {text}"
            );
            let (code, text) = harness(&["show", pcap.to_str().unwrap()]);
            assert_eq!(code, 0, "{name} show {stem}: {text}");
            assert!(
                text.contains("path:msrp://[::1]:"),
                "{name} show {stem}: {text}"
            );
        }
        assert_eq!(n, figures.len(), "{name}: captures in {}", caps.display());
    }
}

/// The default suite's `ipv6-tls` section through the binary, in lab mode and against the
/// reference SUT started once on ::1: every figure passes over SIP/TLS and `msrps:` on IPv6,
/// and each capture, read back with its key log (`run --reanalyze`), gives the live
/// verdicts; `show` draws the decrypted `msrps://[::1]` paths.
#[test]
fn binary_runs_the_ipv6_tls_section_in_lab_mode_and_against_a_running_sut() {
    let _one = RUNNING_SUT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    const TLS6: &str = "/x/on-ack/tls/new/sdp/predefined/msrps/ipv6/";
    for (name, profile) in [
        ("lab", "profiles/reference.yaml"),
        ("running", "profiles/reference-running-ipv6.yaml"),
    ] {
        let out = dir.path().join(name);
        let (reports, captures) = (out.join("reports"), out.join("captures"));
        let (code, text) = harness(&[
            "run",
            "--reanalyze",
            "--keep",
            "all",
            "--profile",
            profile,
            "--filter",
            TLS6,
            "--out",
            reports.to_str().unwrap(),
            "--captures",
            captures.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{name}: {text}");
        assert!(text.contains("7 passed, 0 failed"), "{name}: {text}");
        for fig in 1..=7 {
            assert!(
                text.contains(&format!("pass   F{fig}{TLS6}in-order")),
                "{name}: F{fig}: {text}"
            );
        }
        let caps = run_folder(&captures);
        let gz = caps.join("F1_x_on-ack_tls_new_sdp_predefined_msrps_ipv6_in-order.pcap.gz");
        let pcap = out.join("f1.pcap");
        let mut d = flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap());
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut bytes).unwrap();
        std::fs::write(&pcap, &bytes).unwrap();
        std::fs::copy(
            caps.join("F1_x_on-ack_tls_new_sdp_predefined_msrps_ipv6_in-order.keys"),
            out.join("f1.keys"),
        )
        .unwrap();
        let cap = read_capture_full(&pcap).expect("read the capture");
        assert!(cap.warnings.is_empty(), "{name}: {:?}", cap.warnings);
        assert!(
            cap.events.iter().all(|(_, e)| e.source().is_ipv6()),
            "{name}: not every packet is IPv6"
        );
        let (code, text) = harness(&["show", pcap.to_str().unwrap()]);
        assert_eq!(code, 0, "{name} show: {text}");
        assert!(text.contains("path:msrps://[::1]:"), "{name} show: {text}");
    }
}

// ---------------------------------------------------------------------------------------
// RFC 5118 (SIP torture test messages for IPv6), one test per message, on the files of
// tests/corpus/sip (which tests/corpus.rs also sends to a running node): what codec::sip
// reads of each, or why it refuses it.

mod rfc5118 {
    use cpm_harness::codec::sdp::Sdp;
    use cpm_harness::codec::sip::host::{parse_hostport, parse_received, sip_uri_hostport, Host};
    use cpm_harness::codec::sip::SipMessage;
    use std::net::IpAddr;

    /// A corpus file's message: directives dropped, CRLF line ends, `{CL}` the body length.
    fn load(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus/sip")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let msg: String = text
            .lines()
            .filter(|l| !l.starts_with("#!"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        match msg.find("\r\n\r\n") {
            Some(i) if msg.contains("{CL}") => {
                let body_len = msg.len() - (i + 4);
                msg.replace("{CL}", &body_len.to_string()).into_bytes()
            }
            _ => msg.into_bytes(),
        }
    }

    fn v6(s: &str) -> Host {
        Host::V6(s.parse().unwrap())
    }

    /// The message parses and passes the checks a UAS makes before processing it.
    fn accepted(name: &str) -> SipMessage {
        let m = SipMessage::parse(&load(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        m.check_request()
            .unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        m
    }

    /// The message is refused (by the parser or by the UAS checks) with 400, saying `why`.
    fn refused(name: &str, why: &str) {
        let raw = load(name);
        let e = match SipMessage::parse(&raw) {
            Err(e) => e.to_string(),
            Ok(m) => {
                let r = m.check_request().expect_err(name);
                assert_eq!(r.code, 400, "{name}: {r}");
                r.to_string()
            }
        };
        assert!(e.contains(why), "{name}: {e}");
    }

    fn ruri(m: &SipMessage) -> (Host, Option<u16>) {
        sip_uri_hostport(m.request_uri().unwrap()).unwrap().unwrap()
    }

    /// Every Via's sent-by, top first.
    fn sent_bys(m: &SipMessage) -> Vec<(Host, Option<u16>)> {
        m.vias()
            .iter()
            .map(|v| {
                let sb = v
                    .split(';')
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .last()
                    .unwrap();
                parse_hostport(sb).unwrap()
            })
            .collect()
    }

    fn received(m: &SipMessage) -> Option<IpAddr> {
        let top = m.vias()[0].to_string();
        let r = top
            .split(';')
            .find_map(|p| p.trim().strip_prefix("received="))?;
        parse_received(r)
    }

    fn contact_host(m: &SipMessage) -> Host {
        sip_uri_hostport(&m.contact_uri().unwrap())
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn s4_1_ipv6_good() {
        let m = accepted("rfc5118-ipv6-good.txt");
        assert_eq!(ruri(&m), (v6("2001:db8::10"), None));
        assert_eq!(sent_bys(&m), [(v6("2001:db8::9:1"), None)]);
        assert_eq!(contact_host(&m), v6("2001:db8::1"));
    }

    #[test]
    fn s4_2_ipv6_bad_is_refused() {
        refused("rfc5118-ipv6-bad.txt", "invalid host in the Request-URI");
        let e = sip_uri_hostport("sip:2001:db8::10").unwrap().unwrap_err();
        assert!(e.contains("brackets"), "{e}");
    }

    #[test]
    fn s4_3_port_ambiguous_is_an_address_without_port() {
        let m = accepted("rfc5118-port-ambiguous.txt");
        assert_eq!(ruri(&m), (v6("2001:db8::10:5070"), None));
    }

    #[test]
    fn s4_4_port_unambiguous() {
        let m = accepted("rfc5118-port-unambiguous.txt");
        assert_eq!(ruri(&m), (v6("2001:db8::10"), Some(5070)));
    }

    #[test]
    fn s4_5_via_received_with_delimiters() {
        let m = accepted("rfc5118-via-received-param-with-delim.txt");
        assert_eq!(received(&m), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(sent_bys(&m), [(v6("2001:db8::9:1"), None)]);
        assert_eq!(m.via_branch().as_deref(), Some("z9hG4bKas3-111"));
    }

    #[test]
    fn s4_5_via_received_without_delimiters() {
        let m = accepted("rfc5118-via-received-param-no-delim.txt");
        assert_eq!(received(&m), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(m.via_branch().as_deref(), Some("z9hG4bKas3"));
    }

    #[test]
    fn s4_6_ipv6_in_sdp() {
        let m = accepted("rfc5118-ipv6-in-sdp.txt");
        assert_eq!(ruri(&m).0, v6("2001:db8::10"));
        let sdp = Sdp::parse(&m.sdp_body().unwrap()).unwrap();
        let c = sdp.connection.as_ref().unwrap();
        assert_eq!(
            (c.addr_type.as_str(), c.address.as_str()),
            ("IP6", "2001:db8::20")
        );
        assert_eq!(c.ip(), Some("2001:db8::20".parse().unwrap()));
    }

    #[test]
    fn s4_7_multiple_addresses_in_headers() {
        let m = accepted("rfc5118-mult-ip-in-header.txt");
        assert_eq!(
            sent_bys(&m),
            [
                (v6("2001:db8::9:1"), Some(6050)),
                (Host::V4("192.0.2.1".parse().unwrap()), None),
                (v6("2001:db8::9:255"), None),
            ]
        );
    }

    #[test]
    fn s4_8_multiple_addresses_in_sdp() {
        let m = accepted("rfc5118-mult-ip-in-sdp.txt");
        // The message's `s=` is empty, which RFC 8866 §5.3 does not allow (`s= ` or `s=-`):
        // the SDP parser says so, naming the line; with `s=-` the two c= lines read.
        let body = m.sdp_body().unwrap();
        let e = Sdp::parse(&body).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let text = String::from_utf8_lossy(&body).replace("\r\ns=\r\n", "\r\ns=-\r\n");
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        let cs: Vec<(String, String)> = sdp
            .media
            .iter()
            .map(|md| {
                let c = md.connection.as_ref().unwrap();
                (c.addr_type.clone(), c.address.clone())
            })
            .collect();
        assert_eq!(
            cs,
            [
                ("IP4".to_string(), "192.0.2.1".to_string()),
                ("IP6".to_string(), "2001:db8::1".to_string())
            ]
        );
    }

    #[test]
    fn s4_9_ipv4_mapped_ipv6() {
        let m = accepted("rfc5118-ipv4-mapped-ipv6.txt");
        assert_eq!(
            sent_bys(&m),
            [
                (v6("::ffff:192.0.2.10"), Some(19823)),
                (v6("::ffff:192.0.2.2"), None)
            ]
        );
        assert_eq!(contact_host(&m), v6("::ffff:192.0.2.2"));
        let sdp = Sdp::parse(&m.sdp_body().unwrap()).unwrap();
        assert_eq!(
            sdp.connection.as_ref().unwrap().ip(),
            Some("::ffff:192.0.2.2".parse().unwrap())
        );
    }

    #[test]
    fn s4_10_three_colons_read_robustly() {
        let m = accepted("rfc5118-ipv6-bug-abnf-3-colons.txt");
        assert_eq!(ruri(&m), (v6("2001:db8::192.0.2.1"), None));
        let to = sip_uri_hostport(&m.to_uri().unwrap()).unwrap().unwrap();
        assert_eq!(to.0, v6("2001:db8::192.0.2.1"));
    }

    #[test]
    fn s4_10_two_colons() {
        let m = accepted("rfc5118-ipv6-correct-abnf-2-colons.txt");
        assert_eq!(ruri(&m), (v6("2001:db8::192.0.2.1"), None));
        assert_eq!(
            sent_bys(&m),
            [(Host::Name("lab1.east.example.com".into()), None)]
        );
    }

    #[test]
    fn mismatched_brackets_in_the_request_uri_are_refused() {
        refused(
            "ipv6-unclosed-bracket-ruri.txt",
            "invalid host in the Request-URI",
        );
        refused(
            "ipv6-unopened-bracket-ruri.txt",
            "invalid host in the Request-URI",
        );
    }

    #[test]
    fn an_unbracketed_or_unclosed_via_sent_by_is_refused() {
        refused("ipv6-unbracketed-via.txt", "must be in brackets");
        refused("ipv6-unclosed-bracket-via.txt", "without its `]`");
    }
}

// ---------------------------------------------------------------------------------------
// IPv6 and TLS together.

/// Every figure with SIP over TLS and MSRP over TLS on ::1, x the SUT: every check passes
/// (LINK-TLS and SIG-TLS judge something), the wire is IPv6 as above, requests go to
/// `sips:` URIs with `sips:[::1]:port` Contacts, and the links are `msrps://[::1]:port` TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_over_tls_on_ipv6() {
    use cpm_harness::config::MsrpTransport;
    use cpm_harness::engine::CheckId;
    let runs = futures_join((1..=7u8).map(|fig| {
        let mut v = Variant::new(fig);
        v.transport = Transport::Tls;
        v.msrp_transport = MsrpTransport::Tls;
        v.ip = IpFamily::V6;
        let case = Case::new(v, &[Role::X]);
        let base = 19860 + u16::from(fig - 1) * 20;
        let topo = Arc::new(Topology::generate_shared(
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            3,
            2,
            base,
        ));
        async move { (fig, run_case_on(topo, &case).await) }
    }))
    .await;
    let mut bad = String::new();
    for (fig, run) in &runs {
        let r = judge(run);
        let vs = verdicts(&r);
        if vs
            .values()
            .any(|v| !matches!(v, Verdict::Pass | Verdict::NotObservable))
            || verdict_of(&r, CheckId::LinkTls).verdict != Verdict::Pass
            || verdict_of(&r, CheckId::SigTls).verdict != Verdict::Pass
        {
            bad.push_str(&format!("F{fig}: not every check passed\n{}", show(&r)));
        }
        for p in ipv6_wire_problems(run) {
            bad.push_str(&format!("F{fig}: {p}\n"));
        }
        let (mut invites, mut tls, mut plain_sip) = (0, 0, 0);
        for (_, e) in &run.events {
            match e {
                WireEvent::Sip { transport, raw, .. } => {
                    if *transport != Transport::Tls {
                        plain_sip += 1;
                    }
                    let text = String::from_utf8_lossy(raw);
                    if text.starts_with("INVITE ") {
                        invites += 1;
                        if !text.starts_with("INVITE sips:")
                            || !text.contains("\r\nContact: <sips:")
                            || !text.contains("@[::1]:")
                        {
                            bad.push_str(&format!("F{fig}: INVITE not sips: on ::1:\n{text}\n"));
                        }
                    }
                }
                WireEvent::Tls {
                    from, failed: None, ..
                } if from.is_ipv6() => tls += 1,
                _ => {}
            }
        }
        if invites == 0 || tls == 0 || plain_sip > 0 {
            bad.push_str(&format!(
                "F{fig}: {invites} INVITEs, {tls} TLS sessions on IPv6, {plain_sip} SIP messages not over TLS\n"
            ));
        }
    }
    assert!(bad.is_empty(), "{bad}");
}

// ---------------------------------------------------------------------------------------
// The IPv6 faults of the reference SUT, each failing its check on ::1.

/// One case of figure 2 over TCP on ::1 with x as the SUT, with `faults`.
async fn x_on_ipv6_with(
    faults: &[cpm_harness::entity::Fault],
    base: u16,
) -> (Run, Vec<CheckResult>) {
    let mut v = Variant::new(2);
    v.transport = Transport::Tcp;
    v.ip = IpFamily::V6;
    let mut case = Case::new(v, &[Role::X]);
    case.faults = faults.to_vec();
    let topo = Arc::new(Topology::generate_shared(
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        3,
        2,
        base,
    ));
    let run = run_case_on(topo, &case).await;
    let r = judge(&run);
    (run, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbracketed_ipv6_host_fails_wire_syntax() {
    use cpm_harness::engine::{CheckId, FindingKind};
    let (run, r) = x_on_ipv6_with(&[cpm_harness::entity::Fault::UnbracketedIpv6], 19300).await;
    // The wire scan of the every-figure tests sees it too.
    let problems = ipv6_wire_problems(&run);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("unbracketed ::1 in \"From: <sip:x@::1>")),
        "{problems:?}"
    );
    let ws = verdict_of(&r, CheckId::WireSyntax);
    assert!(
        fails_with(ws, |f| matches!(
            &f.kind,
            FindingKind::SipHost { header, value, .. } if header == "From" && value.ends_with("@::1")
        )),
        "{}",
        show(&r)
    );
    // Nothing else suffers: the From URI routes nothing.
    for c in &r {
        if c.id != CheckId::WireSyntax {
            assert!(
                matches!(c.verdict, Verdict::Pass | Verdict::NotObservable),
                "{}",
                show(&r)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_in_ip4_on_an_ipv6_session_fails_sdp_c() {
    use cpm_harness::engine::{CheckId, FindingKind};
    let (run, r) = x_on_ipv6_with(&[cpm_harness::entity::Fault::CIp4OnIpv6], 19340).await;
    let problems = ipv6_wire_problems(&run);
    assert!(
        problems.iter().any(|p| p.contains("\"c=IN IP4 ::1\"")),
        "{problems:?}"
    );
    let c = verdict_of(&r, CheckId::SdpC);
    assert!(
        fails_with(c, |f| matches!(
            &f.kind,
            FindingKind::ConnectionTypeMismatch { line } if line == "c=IN IP4 ::1"
        )),
        "{}",
        show(&r)
    );
}

// ---------------------------------------------------------------------------------------
// Through a real SIP/IP core on IPv6: Kamailio listening on 127.252.0.250 and on [::1]:19500.

/// Every figure, SIP over UDP and TCP, x as the SUT, every entity on ::1 routing through
/// Kamailio's IPv6 listener: every check passes (SIG-ROUTE among them), every SIP message
/// goes to or comes from the proxy, and the route it records is an IPv6 reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_through_kamailio_on_ipv6() {
    use cpm_harness::kamailio::CoreProxy;
    if cpm_harness::kamailio::kamailio_binary().is_none() {
        common::not_run("needs kamailio");
        return;
    }
    let core6: SocketAddr = "[::1]:19500".parse().unwrap();
    let mut core = CoreProxy::start_kamailio_dual(
        "127.252.0.250:5060".parse().unwrap(),
        Some(core6),
        None,
        Duration::from_secs(10),
    )
    .await
    .expect("kamailio starts on IPv4 and IPv6");
    assert_eq!(core.addr_for(IpFamily::V6), Some(core6));
    let mut bad = String::new();
    for fig in 1..=7u8 {
        for (k, t) in [Transport::Udp, Transport::Tcp].into_iter().enumerate() {
            let mut v = Variant::new(fig);
            v.transport = t;
            v.ip = IpFamily::V6;
            let case = Case::new(v.clone(), &[Role::X]);
            // Own ports per case: the proxy keeps its TCP connections to earlier listeners.
            let base = 19520 + (u16::from(fig - 1) * 2 + k as u16) * 20;
            let mut topo = Topology::generate_shared(IpAddr::V6(Ipv6Addr::LOCALHOST), 3, 2, base);
            topo.core = Some(core6);
            let run = run_case_on(Arc::new(topo), &case).await;
            let r = judge(&run);
            if r.iter()
                .any(|c| !matches!(c.verdict, Verdict::Pass | Verdict::NotObservable))
            {
                let sips: Vec<String> = run
                    .events
                    .iter()
                    .filter_map(|(_, e)| match e {
                        WireEvent::Sip { from, to, raw, .. } => Some(format!(
                            "{from} -> {to} {}",
                            String::from_utf8_lossy(raw).lines().next().unwrap_or("")
                        )),
                        _ => None,
                    })
                    .collect();
                bad.push_str(&format!(
                    "{}: {}\n{:?}\n{}\n",
                    v.id(),
                    show(&r),
                    core.log(),
                    sips.join("\n")
                ));
            }
            let mut rr = 0;
            for (_, e) in &run.events {
                if let WireEvent::Sip { from, to, raw, .. } = e {
                    if *from != core6 && *to != core6 && from.port() != core6.port() {
                        // Over TCP the proxy's side may be an ephemeral port of ::1.
                        if t == Transport::Udp {
                            bad.push_str(&format!(
                                "{}: SIP {from} -> {to} bypassed the core\n",
                                v.id()
                            ));
                        }
                    }
                    let m = SipMessage::parse(raw).unwrap();
                    for r in m.uri_list("Record-Route") {
                        rr += 1;
                        if !r.contains("[::1]") {
                            bad.push_str(&format!("{}: Record-Route {r}\n", v.id()));
                        }
                    }
                }
            }
            if rr == 0 {
                bad.push_str(&format!("{}: no Record-Route seen\n", v.id()));
            }
        }
    }
    core.stop().await;
    assert!(bad.is_empty(), "{bad}");
}

/// A SIP URI's address as the entities read it (route sets, Contact): an IPv6 reference with
/// or without a port (`sip:[::1];lr` is port 5060, as Kamailio writes its Record-Route on the
/// default port).
#[test]
fn sip_uri_addresses_with_ipv6_references() {
    use cpm_harness::entity::sip_uri_addr;
    let a = |s: &str| sip_uri_addr(s).map(|a| a.to_string());
    assert_eq!(a("sip:[::1];lr").as_deref(), Some("[::1]:5060"));
    assert_eq!(
        a("<sip:[::1]:5062;transport=tcp;lr>").as_deref(),
        Some("[::1]:5062")
    );
    assert_eq!(
        a("sip:b1@[2001:db8::1]:5070").as_deref(),
        Some("[2001:db8::1]:5070")
    );
    assert_eq!(a("sip:b1@127.0.0.1").as_deref(), Some("127.0.0.1:5060"));
    assert_eq!(a("sip:b1@::1:5060"), None);
    assert_eq!(a("sip:b1@example.com"), None);
}

/// `run --core kamailio` through the binary: the IPv6 cases of the default suite route
/// through Kamailio's IPv6 listener (on ::1, port 5060 + 2k, written without a port in its
/// Record-Route when it is 5060) and pass.
#[test]
fn binary_runs_the_ipv6_sections_through_kamailio() {
    if cpm_harness::kamailio::kamailio_binary().is_none() {
        common::not_run("needs kamailio");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = harness(&[
        "run",
        "--core",
        "kamailio",
        "--filter",
        "/ipv6/",
        "--out",
        dir.path().join("r").to_str().unwrap(),
        "--captures",
        dir.path().join("c").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    // The 7 over SIP/TLS too when Kamailio's tls module is there (else skipped, said why).
    let want = if cpm_harness::kamailio::kamailio_tls_module().is_some() {
        "14 passed, 0 failed"
    } else {
        "7 passed, 0 failed"
    };
    assert!(text.contains(want), "{text}");
    assert!(
        text.contains("SIP/IP core: kamailio at 127.250.0."),
        "{text}"
    );
    assert!(text.contains(" and [::1]:50"), "{text}");
}
