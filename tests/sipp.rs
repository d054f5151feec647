//! SIPp as an independent SIP peer: the project's own scenarios (interop/sipp/*.xml) play
//! client-a and every client-b for the signalling part of a figure against the reference SUT
//! playing pf-a, x and pf-b as a separate process. The traffic is captured for real on the
//! loopback interface (dumpcap or tcpdump) and judged offline with `analyze
//! --signalling-only`; what SIPp logged it sent and received must be exactly what the
//! harness parsed from the capture, message by message.

mod common;

use common::{require_tool, RealCapture};
use cpm_harness::capture::analyze::{analyze_file, Options};
use cpm_harness::capture::read::read_capture;
use cpm_harness::codec::sdp::MsrpSdp;
use cpm_harness::codec::sip::SipMessage;
use cpm_harness::config::Variant;
use cpm_harness::engine::catalogue::Family;
use cpm_harness::engine::sutproc::{Readiness, SutProcess};
use cpm_harness::engine::{CheckId, Class, Verdict};
use cpm_harness::topology::{Role, Topology};
use cpm_harness::trace::WireEvent;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

/// One SIP message as a peer saw it: sent or received, start line, Call-ID, CSeq.
type Seen = (bool, String, String, String);

/// The messages of a SIPp `-trace_msg` file.
fn sipp_messages(path: &Path) -> Vec<Seen> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for block in text.split("----------------------------------------------- ") {
        let sent = if block.contains("message sent") {
            true
        } else if block.contains("message received") {
            false
        } else {
            continue;
        };
        // The message follows the first empty line after the header line.
        let Some((_, msg)) = block.split_once("\n\n") else {
            continue;
        };
        let msg = msg.trim_start();
        let start = msg.lines().next().unwrap_or_default().trim().to_string();
        let header = |name: &str| {
            msg.lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        out.push((sent, start, header("Call-ID"), header("CSeq")));
    }
    out
}

/// The messages the harness parsed from the capture to and from `peer`.
fn captured_messages(events: &[(Duration, WireEvent)], peer: SocketAddr) -> Vec<Seen> {
    let mut out = Vec::new();
    for (_, e) in events {
        let WireEvent::Sip { from, to, raw, .. } = e else {
            continue;
        };
        if *from != peer && *to != peer {
            continue;
        }
        let m = SipMessage::parse(raw).expect("captured SIP parses");
        let start = String::from_utf8_lossy(raw.split(|&b| b == b'\r').next().unwrap())
            .trim()
            .to_string();
        out.push((
            *from == peer,
            start,
            m.call_id().unwrap_or_default().to_string(),
            m.header("CSeq").unwrap_or_default().to_string(),
        ));
    }
    out
}

fn sorted(mut v: Vec<Seen>) -> Vec<Seen> {
    v.sort();
    v
}

async fn sipp(args: Vec<String>) -> tokio::process::Child {
    let bin = require_tool("sipp").expect("checked");
    tokio::process::Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp starts")
}

async fn finish(name: &str, child: tokio::process::Child) {
    let out = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{name}: SIPp did not finish"))
        .expect("sipp output");
    assert!(
        out.status.success(),
        "{name}: SIPp failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs SIPp against the reference SUT (with `fault`, if any) and returns the analysis of
/// the real capture, after checking SIPp's view equals the harness's.
async fn sipp_against_reference_sut(fig: u8, net: u8) {
    sipp_against_reference_sut_on(fig, net, false).await
}

/// The same, with every entity on `::1` when `v6` (SIPp with `-i ::1`).
async fn sipp_against_reference_sut_on(fig: u8, net: u8, v6: bool) {
    let Some(report) = sipp_session_on(fig, net, None, v6).await else {
        return;
    };
    let mut bad = String::new();
    for c in &report.outcome.checks {
        let media = matches!(c.id.family(), Family::Link | Family::Media);
        // x's own hops are between SUT roles here, which the checks leave unjudged.
        // SIG-ROUTE: no SIP/IP core in these sessions; the exception checks: no scenario;
        // SIG-TLS: no SIP over TLS.
        let x_only = [
            CheckId::SigTls,
            CheckId::SigCfAnswer,
            CheckId::SigFanout,
            CheckId::SigRoute,
            CheckId::SigNon2xxAck,
            CheckId::SigDecline,
            CheckId::SigAllDecline,
            CheckId::SigNoAnswer,
            CheckId::SigLeave,
        ]
        .contains(&c.id);
        let ok = if media || x_only {
            c.verdict == Verdict::NotObservable
        } else {
            c.verdict == Verdict::Pass
        };
        if !ok {
            bad.push_str(&format!(
                "{} {}: {:?}\n",
                c.verdict.as_str(),
                c.id,
                c.evidence()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "F{fig}: {bad}notes: {:?}",
        report.outcome.notes
    );
    assert_eq!(report.outcome.verdict, Verdict::Pass);
}

async fn sipp_session(
    fig: u8,
    net: u8,
    fault: Option<&str>,
) -> Option<cpm_harness::capture::analyze::Report> {
    sipp_session_on(fig, net, fault, false).await
}

/// IPv6 (`v6`): every entity on `::1`, ports 19900–19911; SIPp binds `-i ::1` and writes its
/// hosts in brackets (`[local_ip]`) and its SDP as `IN IP6 ::1` (`[media_ip_type]`,
/// `[media_ip]`).
async fn sipp_session_on(
    fig: u8,
    net: u8,
    fault: Option<&str>,
    v6: bool,
) -> Option<cpm_harness::capture::analyze::Report> {
    require_tool("sipp")?;
    let dir = tempfile::Builder::new()
        .prefix("cpm-sipp-")
        .tempdir()
        .unwrap();
    // CPM_TEST_KEEP=1 keeps the logs and the capture for a look after a failure.
    let d = if std::env::var_os("CPM_TEST_KEEP").is_some() {
        let p = dir.keep();
        eprintln!("keeping {}", p.display());
        p
    } else {
        dir.path().to_path_buf()
    };
    let d = d.as_path();
    let (topo, filter) = if v6 {
        (
            Topology::generate_shared(std::net::Ipv6Addr::LOCALHOST.into(), 2, 1, 19900),
            "ip6 and portrange 19900-19911".to_string(),
        )
    } else {
        (
            Topology::generate(net, 2, 1, 5060, 2855),
            format!("net 127.{net}.0.0/16"),
        )
    };
    let topo_path = d.join("topology.yaml");
    std::fs::write(&topo_path, topo.to_yaml()).unwrap();
    let pcap = d.join("real.pcap");
    let cap = RealCapture::start(&pcap, &filter).await?;
    let mut argv: Vec<String> = [
        BIN,
        "sut",
        "--topology",
        topo_path.to_str().unwrap(),
        "--roles",
        "pf-a,x,pf-b",
        "--figure",
        &fig.to_string(),
        "--timeout",
        "60",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(f) = fault {
        argv.extend(["--fault".to_string(), f.to_string()]);
    }
    let mut sut = SutProcess::launch(
        &argv,
        &Readiness::StdoutLine("ready".into()),
        Duration::from_secs(10),
    )
    .await
    .expect("reference SUT starts");

    let scen = |f: &str| PathBuf::from("interop/sipp").join(f).display().to_string();
    let common = |addr: SocketAddr, log: &str| -> Vec<String> {
        vec![
            "-i".into(),
            addr.ip().to_string(),
            "-p".into(),
            addr.port().to_string(),
            "-m".into(),
            "1".into(),
            "-nostdin".into(),
            "-timeout".into(),
            "30s".into(),
            "-timeout_error".into(),
            "-trace_msg".into(),
            "-message_file".into(),
            d.join(format!("{log}.msg")).display().to_string(),
            "-trace_logs".into(),
            "-log_file".into(),
            d.join(format!("{log}.log")).display().to_string(),
        ]
    };
    let mut members = Vec::new();
    for m in &topo.members {
        let mut a = vec!["-sf".into(), scen("client-b.xml")];
        a.extend(common(m.sip, &m.name));
        a.extend(
            [
                "-key",
                "msrp_port",
                &m.msrp.port().to_string(),
                "-key",
                "member",
                &m.name,
            ]
            .map(String::from),
        );
        members.push((m.name.clone(), m.sip, sipp(a).await));
    }
    // SIPp has no readiness signal: give the UAS instances a moment to bind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut a = vec!["-sf".into(), scen("client-a.xml")];
    a.extend(common(topo.client_a.sip, "client-a"));
    a.extend(
        [
            "-key",
            "group",
            &topo.group,
            "-key",
            "sender",
            &topo.sender,
            "-key",
            "msrp_port",
            &topo.client_a.msrp.port().to_string(),
            &topo.pf_a.sip.to_string(),
        ]
        .map(String::from),
    );
    let client_a = sipp(a).await;
    finish("client-a", client_a).await;
    for (name, _, child) in members {
        finish(&name, child).await;
    }
    sut.stop(Duration::from_secs(2)).await;
    cap.stop().await;

    // The harness's verdict on the SUT's signalling, from the real capture.
    let mut opts = Options::new(Variant::new(fig));
    opts.sut = vec![Role::PfA, Role::X, Role::PfB];
    opts.map = Some((topo_path.clone(), topo.clone()));
    opts.signalling_only = true;
    let report = analyze_file(&pcap, &opts).expect("the real capture analyzes");

    // SIPp's view of the wire equals the harness's, message by message.
    let events = read_capture(&pcap).expect("the real capture reads");
    let mut peers: BTreeMap<String, SocketAddr> = BTreeMap::new();
    peers.insert("client-a".into(), topo.client_a.sip);
    for m in &topo.members {
        peers.insert(m.name.clone(), m.sip);
    }
    for (name, addr) in &peers {
        let by_sipp = sipp_messages(&d.join(format!("{name}.msg")));
        let by_harness = captured_messages(&events, *addr);
        assert!(by_sipp.len() >= 5, "{name}: SIPp logged {by_sipp:?}");
        assert_eq!(
            sorted(by_sipp),
            sorted(by_harness),
            "F{fig} {name}: SIPp's messages differ from the capture's"
        );
    }
    // The SDP answer SIPp extracted (pf-a's own a=path) is the one the harness parsed.
    let log = std::fs::read_to_string(d.join("client-a.log")).unwrap();
    let sipp_path = log
        .lines()
        .find_map(|l| l.split_once("path=").map(|(_, p)| p.trim().to_string()))
        .unwrap_or_else(|| panic!("no answer path in SIPp's log:\n{log}"));
    let harness_path = events
        .iter()
        .find_map(|(_, e)| match e {
            WireEvent::Sip { from, to, raw, .. }
                if *from == topo.pf_a.sip && *to == topo.client_a.sip =>
            {
                let m = SipMessage::parse(raw).ok()?;
                let sdp = MsrpSdp::parse(&m.sdp_body()?).ok()?;
                Some(
                    sdp.path
                        .iter()
                        .map(|u| u.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            }
            _ => None,
        })
        .expect("200-1 with SDP in the capture");
    assert_eq!(sipp_path, harness_path);
    Some(report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_clients_fig1_and_faulty_suts() {
    sipp_against_reference_sut(1, 9).await;
    sipp_clients_catch_a_faulty_sut().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_clients_fig2() {
    sipp_against_reference_sut(2, 10).await;
}

/// SIPp on IPv6 (`-i ::1`), the reference SUT and every member on ::1 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_clients_fig1_on_ipv6() {
    sipp_against_reference_sut_on(1, 0, true).await;
}

/// The same sessions with a faulty SUT: the verdict from the real capture fails on the
/// check the fault breaks, with evidence.
/// (On FIG 1's net, after the passing session.)
async fn sipp_clients_catch_a_faulty_sut() {
    for (fault, check) in [
        ("sdp-wrong-c", CheckId::SdpC),
        ("wrong-setup", CheckId::SdpSetup),
    ] {
        let Some(report) = sipp_session(1, 9, Some(fault)).await else {
            return;
        };
        let c = report
            .outcome
            .checks
            .iter()
            .find(|c| c.id == check)
            .unwrap();
        assert_eq!(
            c.verdict,
            Verdict::Fail,
            "{fault}: {check} {:?}",
            c.evidence()
        );
        assert!(c.of_class(Class::Fail).next().is_some());
        assert_eq!(report.outcome.verdict, Verdict::Fail);
    }
}
