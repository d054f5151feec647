//! MSRP over TLS (RFC 4975 §14, RFC 6135) through the binary and the driver's TLS edge:
//!
//! - every figure passes over `msrps:` against the reference SUT (the default suite's `tls`
//!   section, real loopback sockets, the SUT a separate process given the run's CA);
//! - a failed handshake is a verdict that names the peer and the TLS alert, in bounded time:
//!   a SUT whose CA the harness does not trust (and that does not trust the harness's), a SUT
//!   certificate that does not carry the name the PIXIT says to verify, plain text where TLS
//!   was negotiated;
//! - at the driver's edge: plain text and silence on a TLS port end the handshake with a
//!   reason, never a hang.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;
mod common_inproc;

use cpm_harness::codec::sip::Transport;
use cpm_harness::config::MsrpTransport;
use cpm_harness::driver::tls::{self, TlsContext, Verify};
use cpm_harness::topology::Role;
use cpm_harness::trace::WireEvent;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

/// Runs `cpm-harness run` with `args` (reports and captures in a temporary folder); returns
/// (exit code, stdout + stderr + summary.json, seconds taken). One at a time: every run uses
/// the default topology's addresses.
fn run(args: &[&str]) -> (i32, String, f64) {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let caps = dir.path().join("captures");
    let t = Instant::now();
    let o = Command::new(BIN)
        .arg("run")
        .args(args)
        .args(["--out", out.to_str().unwrap()])
        .args(["--captures", caps.to_str().unwrap()])
        .args(["--color", "never"])
        .output()
        .unwrap();
    // The console shortens long evidence; the summary holds it whole.
    let summary = std::fs::read_dir(&out)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("summary.json")).ok())
        .collect::<String>();
    let text = format!(
        "{}{}{summary}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!text.contains("panicked"), "{args:?} panicked:\n{text}");
    (
        o.status.code().unwrap_or(-1),
        text,
        t.elapsed().as_secs_f64(),
    )
}

/// The reference profile with `edit` applied, written to a temporary file.
fn profile(dir: &tempfile::TempDir, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string("profiles/reference.yaml").unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    let p = dir.path().join("profile.yaml");
    std::fs::write(&p, edited).unwrap();
    p.display().to_string()
}

const F1_TLS: &str = "F1/x/on-ack/tls/new/sdp/predefined/msrps/in-order";

/// The default suite's `tls` and `ipv6-tls` sections: every figure over SIP/TLS and `msrps:`,
/// on IPv4 and on ::1, against the reference SUT launched per case.
#[test]
fn every_figure_passes_over_msrps_against_the_reference_sut() {
    let (code, out, _) = run(&["--filter", "/msrps/"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("14 passed, 0 failed"), "{out}");
    for f in 1..=7 {
        for tail in ["in-order", "ipv6/in-order"] {
            assert!(
                out.contains(&format!(
                    "pass   F{f}/x/on-ack/tls/new/sdp/predefined/msrps/{tail}"
                )),
                "figure {f} {tail}:\n{out}"
            );
        }
    }
}

#[test]
fn an_untrusted_ca_is_a_verdict_naming_the_peer_and_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    // Without the run's CA the SUT makes its own: neither side trusts the other.
    let p = profile(&dir, |t| t.replace(" --tls-dir {tls-dir}", ""));
    let (code, out, secs) = run(&["--profile", &p, "--filter", F1_TLS, "--case-timeout", "5"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("LINK-TLS"), "{out}");
    // pf-a (the harness) rejects x's certificate on its SIP connection (INVITE2 over TLS).
    assert!(
        out.contains("not signed by a trusted CA; sent TLS alert unkn"),
        "{out}"
    );
    assert!(out.contains("x (127."), "the peer is named: {out}");
    assert!(secs < 60.0, "took {secs} s");
}

#[test]
fn a_certificate_without_the_verified_name_is_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    // The PIXIT says: verify the SUT's certificate against a name it does not carry.
    let p = profile(&dir, |t| {
        t.replace(
            "msrp-transports: [tcp, tls]",
            "msrp-transports: [tcp, tls]\ntls: { verify: sut.example.invalid }",
        )
    });
    let (code, out, secs) = run(&["--profile", &p, "--filter", F1_TLS, "--case-timeout", "5"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("LINK-TLS"), "{out}");
    assert!(
        out.contains("does not name the address or name connected to"),
        "{out}"
    );
    assert!(secs < 60.0, "took {secs} s");
}

#[test]
fn plain_tcp_where_tls_was_negotiated_fails_link_tls() {
    let (code, out, secs) = run(&[
        "--filter",
        F1_TLS,
        "--fault",
        "plain-over-tls",
        "--case-timeout",
        "5",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("x connected over plain TCP where TLS was negotiated (msrps://"),
        "{out}"
    );
    assert!(secs < 60.0, "took {secs} s");
}

/// SIG-TLS through the binary: the reference x sending its SIP over plain TCP where SIP over
/// TLS was configured fails it, naming x and the transport.
#[test]
fn plain_sip_where_tls_was_configured_fails_sig_tls() {
    let (code, out, secs) = run(&[
        "--filter",
        F1_TLS,
        "--fault",
        "plain-sip-over-tls",
        "--case-timeout",
        "5",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("SIG-TLS"), "{out}");
    assert!(
        out.contains("x sent SIP over plain TCP where SIP over TLS was configured"),
        "{out}"
    );
    assert!(secs < 60.0, "took {secs} s");
}

/// SIP over TLS on real loopback sockets, x the reference SUT: every SIP message crosses TLS,
/// every request goes to a `sips:` URI (the group's, a member's, a Contact) and every INVITE
/// and 2xx carries a `sips:` Contact without `transport=tls`; SIG-TLS passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_tls_uses_sips_uris_and_passes_sig_tls() {
    use cpm_harness::engine::{CheckId, Verdict};
    let v = common_inproc::var(2, Transport::Tls);
    let run = common_inproc::run_case(245, 0, &common_inproc::Case::new(v, &[Role::X])).await;
    let (mut requests, mut contacts) = (0, 0);
    for (_, e) in &run.events {
        let WireEvent::Sip { transport, raw, .. } = e else {
            continue;
        };
        let m = cpm_harness::codec::sip::SipMessage::parse(raw).unwrap();
        assert_eq!(*transport, Transport::Tls, "{}", m.summary());
        if let Some(ruri) = m.request_uri() {
            requests += 1;
            assert!(ruri.starts_with("sips:"), "{}", m.summary());
        }
        if let Some(c) = m.contact_uri() {
            contacts += 1;
            assert!(
                c.starts_with("sips:") && !c.contains("transport="),
                "{c} in {}",
                m.summary()
            );
        }
    }
    // INVITE, ACK and BYE on each of 5 legs at least; a Contact in each INVITE and 200.
    assert!(
        requests >= 15 && contacts >= 10,
        "{requests} requests, {contacts} Contacts"
    );
    let r = common_inproc::judge(&run);
    let sig = common_inproc::verdict_of(&r, CheckId::SigTls);
    assert_eq!(sig.verdict, Verdict::Pass, "{}", common_inproc::show(&r));
    for c in &r {
        assert!(
            matches!(c.verdict, Verdict::Pass | Verdict::NotObservable),
            "{}",
            common_inproc::show(&r)
        );
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

#[test]
fn plain_text_and_silence_on_a_tls_port_end_the_handshake_with_a_reason() {
    rt().block_on(async {
        let ctx = TlsContext::generate().unwrap();
        // A client's ClientHello answered with MSRP text: not TLS, named.
        let l = tokio::net::TcpListener::bind((LO, 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 512];
            let _ = s.read(&mut b).await;
            let _ = s
                .write_all(b"MSRP a786hjs2 200 OK\r\n-------a786hjs2$\r\n")
                .await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let e = tls::connect(&ctx, "pf-a", tcp, addr, None)
            .await
            .unwrap_err();
        assert!(e.contains(&addr.to_string()), "{e}");
        assert!(e.contains("not TLS"), "{e}");

        // A peer that never answers: the handshake gives up in bounded time.
        let l = tokio::net::TcpListener::bind((LO, 0)).await.unwrap();
        let addr: SocketAddr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (_s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let t = Instant::now();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let e = tls::connect(&ctx, "pf-a", tcp, addr, None)
            .await
            .unwrap_err();
        assert!(e.contains("no answer to the ClientHello"), "{e}");
        assert!(t.elapsed() < tls::HANDSHAKE_TIMEOUT + Duration::from_secs(2));

        // A server given plain text where its ClientHello should be.
        let l = tokio::net::TcpListener::bind((LO, 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        let acc = ctx.acceptor("x", LO).unwrap();
        let server = tokio::spawn(async move {
            let (s, peer) = l.accept().await.unwrap();
            tls::accept(&acc, s, peer, None).await.map(|_| ())
        });
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"MSRP kd8Fj3mQ SEND\r\nTo-Path: msrps://127.0.0.1:2855/s;tcp\r\n")
            .await
            .unwrap();
        let e = server.await.unwrap().unwrap_err();
        assert!(e.contains(&c.local_addr().unwrap().to_string()), "{e}");
        assert!(e.contains("not TLS") && e.contains("alert"), "{e}");
    });
}

#[test]
fn trust_and_names_decide_the_handshake() {
    rt().block_on(async {
        let a = TlsContext::generate().unwrap();
        let b = TlsContext::generate().unwrap();
        // b's server, a's client: a does not trust b's CA.
        let (client, server) = handshake(&a, &b).await;
        assert!(client.contains("unknown_ca"), "{client}");
        assert!(
            server.contains("the peer sent TLS alert unknown_ca")
                || server.contains("closed the connection during the handshake"),
            "{server}"
        );
        // A name the certificate does not carry.
        let named = TlsContext::generate()
            .unwrap()
            .with_verify(Verify::Name("sut.example.invalid".into()));
        let (client, _) = handshake(&named, &named).await;
        assert!(client.contains("bad_certificate"), "{client}");
        // Verification off: any certificate is taken.
        let off = TlsContext::generate().unwrap().with_verify(Verify::Off);
        let (client, server) = handshake(&off, &b).await;
        assert_eq!((client.as_str(), server.as_str()), ("ok", "ok"));
    });
}

/// One handshake: `client` connects to a server of `server`; each side's outcome.
async fn handshake(client: &TlsContext, server: &TlsContext) -> (String, String) {
    let l = tokio::net::TcpListener::bind((LO, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    let acc = server.acceptor("x", LO).unwrap();
    let s = tokio::spawn(async move {
        let (s, peer) = l.accept().await.unwrap();
        match tls::accept(&acc, s, peer, None).await {
            Ok(mut s) => {
                // Let the client finish reading the server's flight.
                let _ = s.write_all(b"x").await;
                "ok".to_string()
            }
            Err(e) => e,
        }
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let c = match tls::connect(client, "pf-a", tcp, addr, None).await {
        Ok(_) => "ok".to_string(),
        Err(e) => e,
    };
    (c, s.await.unwrap())
}

/// A TLS case's capture holds the real TLS records (no plaintext SIP or MSRP in it), and
/// tshark, given the key log written beside it, decrypts exactly the SIP and MSRP bytes the
/// harness recorded on every TLS connection, direction by direction; the reader's own
/// decoding (what `analyze` and `show` read) gives the same. Once with TLS 1.3 (what rustls
/// negotiates with itself), once with both ends restricted to TLS 1.2 (the master secret and
/// the PRF's key expansion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_captures_decode_in_tshark_as_the_harness_recorded() {
    let Some(tshark) = common::require_tool("tshark") else {
        return;
    };
    // One after the other: each installs the process's TLS context its nodes take.
    tls::install(TlsContext::generate().unwrap());
    capture_decodes_as_recorded(&tshark, "TLSv1.3", 243).await;
    tls::install(TlsContext::generate().unwrap().tls12_only());
    capture_decodes_as_recorded(&tshark, "TLSv1.2", 244).await;
    tls::install(TlsContext::generate().unwrap());
}

async fn capture_decodes_as_recorded(tshark: &std::path::Path, version: &str, net: u8) {
    let mut v = common_inproc::var(1, Transport::Tls);
    v.msrp_transport = MsrpTransport::Tls;
    let run = common_inproc::run_case(net, 0, &common_inproc::Case::new(v, &[Role::X])).await;
    let (sip_port, msrp_port) = (
        run.ctx.topology.x.sip.port(),
        run.ctx.topology.x.msrp.port(),
    );
    let versions: HashSet<&str> = run
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            WireEvent::Tls {
                version,
                failed: None,
                ..
            } => Some(version.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(versions, HashSet::from([version]), "negotiated versions");

    // The harness's plaintext per direction of each TLS connection.
    let tls_pairs: HashSet<(SocketAddr, SocketAddr)> = run
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            WireEvent::Tls {
                from,
                to,
                failed: None,
                ..
            } => Some((*from, *to)),
            _ => None,
        })
        .flat_map(|(a, b)| [(a, b), (b, a)])
        .collect();
    let mut harness: BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> = BTreeMap::new();
    for (_, e) in &run.events {
        let (from, to, data) = match e {
            WireEvent::Sip {
                transport: Transport::Tls,
                from,
                to,
                raw,
            } => (from, to, raw),
            WireEvent::TcpData { from, to, data } => (from, to, data),
            _ => continue,
        };
        if tls_pairs.contains(&(*from, *to)) {
            harness
                .entry((*from, *to))
                .or_default()
                .extend_from_slice(data);
        }
    }
    let all: Vec<u8> = harness.values().flatten().copied().collect();
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.contains("INVITE sips:") && text.contains("MSRP "),
        "SIP and MSRP over TLS"
    );

    // The capture and its key log, as `run` writes them.
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("case.pcap");
    let mut w =
        cpm_harness::capture::PcapWriter::create(&pcap, std::time::SystemTime::now()).unwrap();
    w.write_all(&run.events).unwrap();
    let randoms: Vec<String> = w.client_randoms().iter().map(hex::encode).collect();
    w.finish().unwrap();
    assert!(!randoms.is_empty());
    let keys = cpm_harness::capture::tls::keys_path(&pcap);
    std::fs::write(&keys, tls::keylog_lines(Some(&randoms)).join("\n") + "\n").unwrap();
    let bytes = std::fs::read(&pcap).unwrap();
    for plain in [&b"INVITE sips:"[..], b"MSRP ", b"a=path:msrps://"] {
        assert!(
            !bytes.windows(plain.len()).any(|w| w == plain),
            "plaintext {:?} in the capture",
            String::from_utf8_lossy(plain)
        );
    }

    // tshark: TLS on the SIP and MSRP ports, its plaintext handed on as raw data.
    let o = Command::new(tshark)
        .arg("-r")
        .arg(&pcap)
        .arg("-o")
        .arg(format!("tls.keylog_file:{}", keys.display()))
        .args(["-d", &format!("tcp.port=={sip_port},tls")])
        .args(["-d", &format!("tcp.port=={msrp_port},tls")])
        .args(["-d", &format!("tls.port=={sip_port},data")])
        .args(["-d", &format!("tls.port=={msrp_port},data")])
        .args(["-T", "fields", "-E", "separator=/t"])
        .args([
            "-e",
            "ip.src",
            "-e",
            "tcp.srcport",
            "-e",
            "ip.dst",
            "-e",
            "tcp.dstport",
        ])
        .args(["-e", "data.data", "-Y", "data"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut decoded: BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 5, "{line}");
        let from: SocketAddr = format!("{}:{}", f[0], f[1]).parse().unwrap();
        let to: SocketAddr = format!("{}:{}", f[2], f[3]).parse().unwrap();
        for h in f[4].split(',') {
            decoded
                .entry((from, to))
                .or_default()
                .extend(hex::decode(h.replace(':', "")).unwrap());
        }
    }
    assert_eq!(decoded.len(), harness.len(), "directions decoded by tshark");
    for (k, want) in &harness {
        let got = decoded.get(k).map(Vec::as_slice).unwrap_or_default();
        assert!(
            got == want.as_slice(),
            "{} -> {}: tshark decoded {} bytes, the harness recorded {}",
            k.0,
            k.1,
            got.len(),
            want.len()
        );
    }

    // The reader decodes it too: the same SIP messages and MSRP bytes.
    let read = cpm_harness::capture::read::read_capture_full(&pcap).unwrap();
    let mut ours: BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> = BTreeMap::new();
    for (_, e) in &read.events {
        let (from, to, data) = match e {
            WireEvent::Sip {
                transport: Transport::Tls,
                from,
                to,
                raw,
            } => (from, to, raw),
            WireEvent::TcpData { from, to, data } => (from, to, data),
            _ => continue,
        };
        ours.entry((*from, *to))
            .or_default()
            .extend_from_slice(data);
    }
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    assert_eq!(ours, harness, "the reader's decoding ({version})");
    assert!(
        read.events
            .iter()
            .any(|(_, e)| matches!(e, WireEvent::Tls { version: v, .. } if v.as_str() == version)),
        "the reader names {version}"
    );
}
