//! One model of a case, whoever reads it and however it was recorded.
//!
//! - Entities sharing one IP address (a vendor's SUT plays its roles on one address, distinct
//!   ports) are told apart: every figure × SIP over UDP and TCP, each single-role split, the
//!   network split {pf-a, x, pf-b} and the self-check, with all entities on ONE loopback
//!   address, give the verdicts of the one-address-per-entity topology — live, and from the
//!   run's pcap read back (`analyze` with the topology, and inferring it).
//! - A simulated run records the same event stream as a live one: the checks judge it.
//!
//! Nets 140–147 (one address per entity) and the single address 127.148.0.1.
#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common_inproc;

use common_inproc::*;
use cpm_harness::chain::{pattern, sha256_hex};
use cpm_harness::codec::sip::Transport;
use cpm_harness::config::{Trigger, Variant};
use cpm_harness::engine::checks::run_checks;
use cpm_harness::engine::observe;
use cpm_harness::engine::{CaseContext, CheckResult, Verdict};
use cpm_harness::entity::Holds;
use cpm_harness::sim::{run_sim, SimOptions};
use cpm_harness::topology::Topology;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

/// Figure `fig` over `t`: every split on one shared address and on one address per entity.
async fn shared_address_gives_the_same_verdicts(fig: u8, t: Transport, net: u8) {
    let mut v = Variant::new(fig);
    v.transport = t;
    if fig == 1 {
        v.reuse = true;
        v.trigger = Trigger::On200;
    }
    let ip = IpAddr::V4(Ipv4Addr::new(127, 148, 0, 1));
    let dir = tempfile::tempdir().unwrap();
    let runs = futures_join(SPLITS.iter().enumerate().map(|(i, sut)| {
        let case = Case::new(v.clone(), sut);
        // Ports of the shared address: 20 per case, apart per figure and transport.
        // (SIP over TCP on other ports: a socket of the UDP run may still be closing.)
        let base = 30000
            + u16::from(net - 140) * 400
            + if t == Transport::Tcp { 200 } else { 0 }
            + (i as u16) * 20;
        let shared = Arc::new(Topology::generate_shared(ip, 3, 2, base));
        let port = 23000 + if t == Transport::Tcp { 100 } else { 0 } + i as u16 * 2;
        let own = Arc::new(Topology::generate(net, 3, 2, port, port + 1));
        async move {
            let a = run_case_on(shared, &case).await;
            let b = run_case_on(own, &case).await;
            (case.sut.clone(), a, b)
        }
    }))
    .await;
    let mut bad = String::new();
    for (sut, shared, own) in &runs {
        let id = format!("{} split {}", v.id(), split_name(sut));
        let live = judge(shared);
        let (vs, vo) = (verdicts(&live), verdicts(&judge(own)));
        if vs != vo {
            bad.push_str(&format!(
                "{id}: one address {vs:?}\n  one address per entity {vo:?}\n{}",
                show(&live)
            ));
        }
        if vs
            .values()
            .any(|v| !matches!(v, Verdict::Pass | Verdict::NotObservable))
        {
            bad.push_str(&format!("{id}: not every check passed\n{}", show(&live)));
        }
        let name = split_name(sut);
        let with_map = offline(shared, sut, Some(&shared.ctx.topology), dir.path(), &name);
        if verdicts(&with_map) != vs {
            bad.push_str(&format!(
                "{id}: the capture (with its topology) gives\n{}",
                show(&with_map)
            ));
        }
        // Without the topology, the entities are inferred from the signalling by SIP address.
        let inferred = offline(shared, sut, None, dir.path(), &format!("{name}-inferred"));
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
macro_rules! on_one_address {
    ($($name:ident: $fig:expr, $net:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            shared_address_gives_the_same_verdicts($fig, Transport::Udp, $net).await;
            shared_address_gives_the_same_verdicts($fig, Transport::Tcp, $net).await;
        }
    )*};
}

on_one_address! {
    figure1_on_one_address: 1, 140;
    figure2_on_one_address: 2, 141;
    figure3_on_one_address: 3, 142;
    figure4_on_one_address: 4, 143;
    figure5_on_one_address: 5, 144;
    figure6_on_one_address: 6, 145;
    figure7_on_one_address: 7, 146;
}

/// The simulator records through the same recorder as the tokio driver: the checks judge a
/// simulated run (the self-check: every check judges something) and pass it, for every
/// figure, on one address per entity and on one shared address.
#[test]
fn simulated_runs_are_judged_by_the_checks() {
    let content = pattern(SIZE);
    for fig in 1..=7u8 {
        for (k, topo) in [
            Topology::generate(200, 3, 2, 5060, 2855),
            Topology::generate_shared(IpAddr::V4(Ipv4Addr::new(127, 201, 0, 1)), 3, 2, 40000),
        ]
        .into_iter()
        .enumerate()
        {
            let topo = Arc::new(topo);
            let mut v = Variant::new(fig);
            v.transport = if k == 0 {
                Transport::Udp
            } else {
                Transport::Tcp
            };
            let opts = SimOptions {
                record_wire: true,
                ..SimOptions::seeded(fig as u64 * 7 + k as u64)
            };
            let o = run_sim(topo.clone(), v.clone(), content.clone(), &opts)
                .unwrap_or_else(|e| panic!("{}: {e:#}", v.id()));
            let events = cpm_harness::trace::one_copy(&o.records);
            assert!(!events.is_empty());
            let mut ctx = CaseContext {
                topology: topo,
                variant: v.clone(),
                sut: Vec::new(),
                holds: Holds::default(),
                pause: Duration::ZERO,
                trigger_window: WINDOW,
                content_len: 0,
                content_sha256: String::new(),
                pinned: None,
                delivered: BTreeMap::new(),
                report_timing: Default::default(),
            };
            let obs = observe(&ctx, &events);
            ctx.take_delivery(&obs);
            assert_eq!(ctx.content_sha256, sha256_hex(&content), "{}", v.id());
            let results = run_checks(&ctx, &obs);
            let bad: Vec<&CheckResult> = results
                .iter()
                .filter(|r| !matches!(r.verdict, Verdict::Pass | Verdict::NotObservable))
                .collect();
            assert!(
                bad.is_empty(),
                "{} (topology {k}):\n{}",
                v.id(),
                show(&results)
            );
            let judged = results
                .iter()
                .filter(|r| r.verdict == Verdict::Pass)
                .count();
            assert!(judged >= 20, "{}: only {judged} checks judged", v.id());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Live and offline paths give the same model.

mod same_model {
    use bytes::Bytes;
    use cpm_harness::capture::{read_capture_from, PcapWriter};
    use cpm_harness::codec::sip::Transport;
    use cpm_harness::model::{interpret, Observation};
    use cpm_harness::trace::{one_copy, Record, Seen, Stamped, WireEvent};
    use proptest::prelude::*;
    use std::net::SocketAddr;
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    /// RFC 4475 §3.1.2 requests a parser must take (any token a method, any scheme a URI),
    /// and ordinary ones.
    const SIP: [&[u8]; 7] = [
        b"RE%47IST%45R sip:registrar.example.com SIP/2.0\r\nTo: sip:j.user@example.com\r\nFrom: sip:j.user@example.com;tag=87654321\r\nMax-Forwards: 70\r\nCall-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\r\nCSeq: 29 REGISTER\r\nContact: <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\r\nVia: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\r\nL: 0\r\n\r\n",
        b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\nVia: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\nTo: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7F\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\r\nFrom: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\xD1\x80\xD0\xB0\xD0\xB1\xD0\xBE\xD1\x82\xD0\xB0\xD1\x8E\xD1\x89\xD0\xB8\xD0\xB9\";tag=_token~1'+`*%!-.\r\nCall-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\nCSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\nMax-Forwards: 255\r\nextensionHeader-!.%*+_`'~:\xEF\xBB\xBF\xE5\xA4\xA7\xE5\x81\x9C\xE9\x9B\xBB\r\nContent-Length: 0\r\n\r\n",
        b"OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\r\nTo: sip:user@example.com\r\nFrom: sip:caller@example.net;tag=384\r\nMax-Forwards: 3\r\nCall-ID: novelsc.asdfasser0q239nwsdfasdkl34\r\nCSeq: 3923423 OPTIONS\r\nVia: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\r\nContent-Length: 0\r\n\r\n",
        b"OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0\r\nTo: sip:user@example.com\r\nFrom: sip:caller@example.net;tag=384\r\nMax-Forwards: 3\r\nCall-ID: unkscm.nasdfasser0q239nwsdfasdkl34\r\nCSeq: 3923423 OPTIONS\r\nVia: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\r\nContent-Length: 0\r\n\r\n",
        b"INVITE sip:friends@cf.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.9.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:friends@cf.example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 145\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.9.0.1\r\ns=-\r\nc=IN IP4 127.9.0.1\r\nt=0 0\r\nm=message 2855 TCP/MSRP *\r\na=path:msrp://127.9.0.1:2855/s1;tcp\r\na=accept-types:*\r\n",
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.9.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:friends@cf.example.com>;tag=b\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        b"BYE sip:x@127.9.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 127.9.0.1:5060;branch=z9hG4bK2\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:friends@cf.example.com>;tag=b\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
    ];

    /// Hosts 1–3 are 127.9.0.x; 101–103 the IPv6 fd00::1–3 (an act keeps to one family).
    fn addr(ip: u8, port: u16) -> SocketAddr {
        if ip > 100 {
            let v6 = std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(ip - 100));
            SocketAddr::from((v6, port))
        } else {
            SocketAddr::from(([127, 9, 0, ip], port))
        }
    }

    /// One thing on the wire, and which of its ends record it (both, the sender, the
    /// receiver: the other end is the SUT).
    #[derive(Debug, Clone)]
    enum Act {
        Udp {
            from: u8,
            to: u8,
            msg: usize,
            ends: u8,
        },
        Tcp {
            ip: u8,
            eph: u16,
            to: u8,
            sip: bool,
            pieces: Vec<(bool, Vec<u8>)>,
            close: bool,
            ends: u8,
        },
    }

    fn act() -> impl Strategy<Value = Act> {
        // IPv4 or IPv6 (hosts + 100), both ends of one act alike.
        let fam = |v6: bool, h: u8| if v6 { h + 100 } else { h };
        let udp = (1u8..4, 1u8..4, 0..SIP.len(), 0u8..3, any::<bool>()).prop_map(
            move |(from, to, msg, ends, v6)| Act::Udp {
                from: fam(v6, from),
                to: fam(v6, to),
                msg,
                ends,
            },
        );
        // MSRP bytes (after `MSRP `, as every MSRP stream starts) or SIP messages in TCP.
        let piece = (any::<bool>(), prop::collection::vec(any::<u8>(), 1..300));
        let tcp = (
            1u8..4,
            40000u16..40100,
            1u8..4,
            any::<bool>(),
            prop::collection::vec(piece, 1..6),
            any::<bool>(),
            (0u8..3, any::<bool>()),
        )
            .prop_map(
                move |(ip, eph, to, sip, pieces, close, (ends, v6))| Act::Tcp {
                    ip: fam(v6, ip),
                    eph,
                    to: fam(v6, to),
                    sip,
                    pieces,
                    close,
                    ends,
                },
            );
        prop_oneof![udp, tcp]
    }

    /// What the harness's drivers would record of `acts` (times in whole microseconds, as a
    /// pcap keeps them).
    fn record(acts: &[Act]) -> Vec<Record> {
        let mut out = Vec::new();
        let mut t = 0u64;
        let mut push = |out: &mut Vec<Record>, ends: u8, sent: WireEvent, received: WireEvent| {
            // The first event at 0: a capture's times count from its first packet.
            let at = Duration::from_micros(t);
            t += 10;
            if ends != 2 {
                out.push(Record {
                    t: at,
                    seen: Seen::Sent,
                    ev: sent,
                });
            }
            if ends != 1 {
                out.push(Record {
                    t: at,
                    seen: Seen::Received,
                    ev: received,
                });
            }
        };
        let mut used = std::collections::HashSet::new();
        for a in acts {
            match a {
                Act::Udp {
                    from,
                    to,
                    msg,
                    ends,
                } => {
                    let ev = WireEvent::Sip {
                        transport: Transport::Udp,
                        from: addr(*from, 5060),
                        to: addr(*to, 5062),
                        raw: Bytes::from_static(SIP[*msg]),
                    };
                    push(&mut out, *ends, ev.clone(), ev);
                }
                Act::Tcp {
                    ip,
                    eph,
                    to,
                    sip,
                    pieces,
                    close,
                    ends,
                } => {
                    let (o, tg) = (addr(*ip, *eph), addr(*to, if *sip { 5062 } else { 2855 }));
                    // One connection per 4-tuple in a trace.
                    if !used.insert((o, tg)) {
                        continue;
                    }
                    let open = WireEvent::TcpOpen {
                        conn: (o, tg),
                        opener: o,
                    };
                    push(&mut out, *ends, open.clone(), open);
                    for (k, (back, bytes)) in pieces.iter().enumerate() {
                        let (f, d) = if *back { (tg, o) } else { (o, tg) };
                        let ev = if *sip {
                            WireEvent::Sip {
                                transport: Transport::Tcp,
                                from: f,
                                to: d,
                                raw: Bytes::from_static(SIP[bytes.len() % SIP.len()]),
                            }
                        } else {
                            let mut data = if k == 0 || pieces[..k].iter().all(|p| p.0 != *back) {
                                b"MSRP ".to_vec()
                            } else {
                                Vec::new()
                            };
                            data.extend_from_slice(bytes);
                            WireEvent::TcpData {
                                from: f,
                                to: d,
                                data: Bytes::from(data),
                            }
                        };
                        push(&mut out, *ends, ev.clone(), ev);
                    }
                    if *close {
                        let ev = WireEvent::TcpClose { from: o, to: tg };
                        push(&mut out, *ends, ev.clone(), ev);
                    }
                }
            }
        }
        out
    }

    /// The model as comparable text: every SIP message, connection, MSRP message and content.
    fn summary(o: &Observation) -> Vec<String> {
        let mut v = Vec::new();
        for s in &o.sip {
            v.push(format!(
                "sip {:?} {} {}->{} {:?} err={:?}",
                s.t, s.transport, s.from, s.to, s.raw, s.parse_error
            ));
        }
        for c in &o.conns {
            v.push(format!(
                "conn {}->{} open={} at={:?} sip={}",
                c.opener, c.target, c.open_seen, c.opened_at, c.carried_sip
            ));
            for d in &c.dirs {
                v.push(format!(
                    "  dir {}->{} {} bytes closed={:?} err={:?} trailing={}",
                    d.from,
                    d.to,
                    d.bytes,
                    d.closed_at,
                    d.error.as_ref().map(|e| &e.error),
                    d.trailing
                ));
                for m in &d.msgs {
                    v.push(format!(
                        "    {} {:?} {} {:?}",
                        m.start_line(),
                        m.t,
                        m.body_sha256,
                        m.flag
                    ));
                }
                for w in &d.contents {
                    v.push(format!(
                        "    content {} {:?} {:?}",
                        w.message_id, w.sha256, w.inner
                    ));
                }
            }
        }
        v
    }

    fn through_pcap(events: &[Stamped]) -> Vec<Stamped> {
        let mut w = PcapWriter::new(Vec::new(), SystemTime::UNIX_EPOCH).expect("pcap header");
        w.write_all(events).expect("frames");
        let bytes = w.finish().expect("finish");
        read_capture_from(Path::new("prop.pcap"), &bytes[..])
            .expect("read back")
            .events
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        /// The same random traffic (RFC 4475 torture requests over UDP and TCP, MSRP streams
        /// of random bytes cut anywhere, recorded by one end or both) gives the same model
        /// live (the recording, made one copy) and offline (written as a pcap, read back), on
        /// IPv4 and IPv6 addresses.
        #[test]
        fn live_and_offline_models_are_identical(acts in prop::collection::vec(act(), 1..12)) {
            let live = one_copy(&record(&acts));
            let offline = through_pcap(&live);
            prop_assert_eq!(summary(&interpret(&live)), summary(&interpret(&offline)));
        }
    }
}
