//! The whole chain in one process over real loopback sockets: every figure × SIP over UDP
//! and TCP delivers a 1 MiB message byte-exact to 3 members on 2 pf-b and tears down.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

use cpm_harness::chain::{pattern, run_once, sha256_hex, ChainOptions};
use cpm_harness::codec::sip::Transport;
use cpm_harness::config::{GroupKind, MiddleOpener, SetupMode, Trigger, Variant};
use cpm_harness::topology::{Role, Topology};
use std::sync::Arc;
use std::time::Duration;

fn opts(net: u8, variant: Variant) -> ChainOptions {
    ChainOptions::new(Arc::new(Topology::generate(net, 3, 2, 5060, 2855)), variant)
}

async fn deliver(net: u8, variant: Variant, size: usize) {
    let content = pattern(size);
    let want = sha256_hex(&content);
    let o = opts(net, variant.clone());
    let members = o.topology.members.len();
    let outcome = run_once(o, content, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", variant.id()));
    assert_eq!(
        outcome.received.len(),
        members,
        "{}: {:?}",
        variant.id(),
        outcome.received
    );
    for (m, r) in &outcome.received {
        assert!(r.complete, "{}: {m} incomplete", variant.id());
        assert_eq!(r.bytes, size as u64, "{}: {m}", variant.id());
        assert_eq!(r.sha256, want, "{}: {m} content differs", variant.id());
    }
    assert!(
        outcome.ended_bad.is_empty(),
        "{}: {:?} {:?}",
        variant.id(),
        outcome.ended_bad,
        outcome.warnings
    );
}

fn v(fig: u8, t: Transport) -> Variant {
    let mut v = Variant::new(fig);
    v.transport = t;
    v
}

macro_rules! figure_tests {
    ($($name:ident: $fig:expr, $t:expr, $net:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            deliver($net, v($fig, $t), 1 << 20).await;
        }
    )*};
}

figure_tests! {
    fig1_udp: 1, Transport::Udp, 11;
    fig1_tcp: 1, Transport::Tcp, 12;
    fig2_udp: 2, Transport::Udp, 13;
    fig2_tcp: 2, Transport::Tcp, 14;
    fig3_udp: 3, Transport::Udp, 15;
    fig3_tcp: 3, Transport::Tcp, 16;
    fig4_udp: 4, Transport::Udp, 17;
    fig4_tcp: 4, Transport::Tcp, 18;
    fig5_udp: 5, Transport::Udp, 19;
    fig5_tcp: 5, Transport::Tcp, 20;
    fig6_udp: 6, Transport::Udp, 21;
    fig6_tcp: 6, Transport::Tcp, 22;
    fig7_udp: 7, Transport::Udp, 23;
    fig7_tcp: 7, Transport::Tcp, 24;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adhoc_group() {
    let mut var = v(2, Transport::Tcp);
    var.group = GroupKind::Adhoc;
    deliver(30, var, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_on_and_off() {
    for (i, reuse) in [true, false].into_iter().enumerate() {
        let mut var = v(1, Transport::Udp);
        var.reuse = reuse;
        deliver(31 + i as u8, var, 100_000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trigger() {
    let mut net = 33;
    for fig in [1, 5] {
        for t in [Trigger::On200, Trigger::OnAck, Trigger::OnSend] {
            let mut var = v(fig, Transport::Udp);
            var.trigger = t;
            var.x_trigger = Some(t);
            if fig == 5 {
                var.l23_opener = MiddleOpener::X;
            }
            deliver(net, var, 50_000).await;
            net += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_preset_and_sdp() {
    for (i, fig) in [1u8, 3, 6].into_iter().enumerate() {
        for (j, s) in [SetupMode::Preset, SetupMode::Sdp].into_iter().enumerate() {
            let mut var = v(fig, Transport::Tcp);
            var.setup = s;
            deliver(40 + (i * 2 + j) as u8, var, 50_000).await;
        }
    }
}

async fn recorded(
    net: u8,
    variant: Variant,
    members: usize,
) -> (
    Arc<Topology>,
    Vec<(Duration, cpm_harness::trace::WireEvent)>,
) {
    let rec = cpm_harness::trace::Recorder::new(std::time::Instant::now());
    let mut o = opts(net, variant.clone());
    o.topology = Arc::new(Topology::generate(net, members, 2, 5060, 2855));
    o.recorder = Some(rec.clone());
    let topo = o.topology.clone();
    run_once(o, pattern(20_000), Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", variant.id()));
    (topo, rec.snapshot())
}

/// The model of a recorded run (the self-check: every role judged).
fn model(
    topo: &Arc<Topology>,
    variant: &Variant,
    events: &[(Duration, cpm_harness::trace::WireEvent)],
) -> (
    cpm_harness::engine::CaseContext,
    cpm_harness::model::Observation,
) {
    let ctx = cpm_harness::engine::CaseContext {
        topology: topo.clone(),
        variant: variant.clone(),
        sut: Vec::new(),
        holds: Default::default(),
        pause: Duration::ZERO,
        trigger_window: Duration::from_secs(1),
        content_len: 0,
        content_sha256: String::new(),
        pinned: None,
        delivered: Default::default(),
        report_timing: Default::default(),
    };
    let obs = cpm_harness::engine::observe(&ctx, events);
    (ctx, obs)
}

/// The MSRP links opened, as (link, opener, target) names.
fn link_openings(
    topo: &Arc<Topology>,
    events: &[(Duration, cpm_harness::trace::WireEvent)],
) -> Vec<(String, String, String)> {
    let (_, obs) = model(topo, &Variant::new(1), events);
    obs.conns
        .iter()
        .filter(|c| c.is_link())
        .map(|c| {
            let name = |p: &Option<cpm_harness::model::Party>| {
                p.as_ref().map(|p| p.name.clone()).unwrap_or_default()
            };
            (
                c.link.map(|l| format!("{l:?}")).unwrap_or_default(),
                name(&c.opener_party),
                name(&c.target_party),
            )
        })
        .collect()
}

/// LINK-DIR's verdict on a recorded run judged against `variant`'s figure.
fn link_dir(
    topo: &Arc<Topology>,
    variant: &Variant,
    events: &[(Duration, cpm_harness::trace::WireEvent)],
) -> cpm_harness::engine::CheckResult {
    let (ctx, obs) = model(topo, variant, events);
    cpm_harness::engine::checks::run_checks(&ctx, &obs)
        .into_iter()
        .find(|c| c.id == cpm_harness::engine::CheckId::LinkDir)
        .expect("LINK-DIR is a check")
}

/// Who opens each link, read from the TCP openings on the wire, is the figure's opener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_openers_follow_each_figure() {
    use cpm_harness::engine::Verdict;
    let mut net = 50;
    for fig in 1..=7u8 {
        for l23 in [MiddleOpener::Pf, MiddleOpener::X] {
            if fig < 5 && l23 == MiddleOpener::X {
                continue;
            }
            let mut var = v(fig, Transport::Tcp);
            var.l23_opener = l23;
            let (topo, events) = recorded(net, var.clone(), 3).await;
            net += 1;
            let opens = link_openings(&topo, &events);
            // One L1, one L2, an L3 per member (no reuse), an L4 per member.
            assert_eq!(
                opens.len(),
                2 + 2 * topo.members.len(),
                "{}: {opens:?}",
                var.id()
            );
            let r = link_dir(&topo, &var, &events);
            assert_eq!(r.verdict, Verdict::Pass, "{}: {:?}", var.id(), r.evidence());
            // The same openings judged against another solution's figure must fail.
            let mut other = var.clone();
            other.figure = Variant::new(if fig <= 2 { 3 } else { 1 }).figure;
            let r = link_dir(&topo, &other, &events);
            assert_eq!(r.verdict, Verdict::Fail, "{}: {:?}", var.id(), r.evidence());
        }
    }
}

/// With reuse, x's links towards one pf-b share a connection; without, one per member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_shares_connections_towards_one_pf_b() {
    for (i, reuse) in [false, true].into_iter().enumerate() {
        let mut var = v(1, Transport::Udp);
        var.reuse = reuse;
        let (topo, events) = recorded(58 + i as u8, var, 4).await;
        let l3 = link_openings(&topo, &events)
            .into_iter()
            .filter(|o| o.0 == "L3")
            .count();
        assert_eq!(
            l3,
            if reuse {
                topo.pf_b.len()
            } else {
                topo.members.len()
            },
            "reuse={reuse}"
        );
    }
}

/// With reuse, a member that answers late (after the other member on its pf-b finished)
/// still gets the connection x already has towards that pf-b: x keeps an idle connection
/// while a session of the same call may want it, instead of closing it and opening another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_keeps_the_connection_for_a_late_member() {
    let mut var = v(1, Transport::Udp);
    var.reuse = true;
    let rec = cpm_harness::trace::Recorder::new(std::time::Instant::now());
    let mut o = opts(61, var.clone());
    // b1, b2 on pf-b1; b3, b4 on pf-b2; b2 answers 300 ms late.
    o.topology = Arc::new(Topology::generate(61, 4, 2, 5060, 2855));
    o.recorder = Some(rec.clone());
    o.holds.answer_delay_ms_per_member.insert("b2".into(), 300);
    o.hold_roles = Some(vec![Role::ClientB]);
    let topo = o.topology.clone();
    let outcome = run_once(o, pattern(20_000), Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", var.id()));
    assert_eq!(outcome.received.len(), 4, "{:?}", outcome.received);
    let l3: Vec<_> = link_openings(&topo, &rec.snapshot())
        .into_iter()
        .filter(|o| o.0 == "L3")
        .collect();
    assert_eq!(l3.len(), topo.pf_b.len(), "{l3:?}");
}

/// RFC 3261 §18.1.1: an INVITE over 1300 bytes (a long ad-hoc list) goes over TCP even
/// when UDP is configured; small ones stay on UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_invites_switch_to_tcp() {
    use cpm_harness::trace::WireEvent;
    let mut var = v(1, Transport::Udp);
    var.group = GroupKind::Adhoc;
    let (_, events) = recorded(60, var, 12).await;
    let mut big = 0;
    let mut small = 0;
    for (_, e) in &events {
        if let WireEvent::Sip { transport, raw, .. } = e {
            if raw.starts_with(b"INVITE ") {
                if raw.len() > 1300 {
                    assert_eq!(*transport, Transport::Tcp, "{} bytes over UDP", raw.len());
                    assert!(String::from_utf8_lossy(raw).contains("SIP/2.0/TCP"));
                    big += 1;
                } else {
                    assert_eq!(*transport, Transport::Udp);
                    small += 1;
                }
            }
        }
    }
    assert!(big >= 2 && small >= 12, "big={big} small={small}");
}

/// client-a streams its content from a source read piece by piece (the 4 GiB benchmark's
/// way of sending): delivered byte-exact, with the CPIM head and the content cut into chunks
/// at every boundary, including chunks that straddle the head and the source's block ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_source_is_delivered_byte_exact() {
    use cpm_harness::chain::{sessions_per_instance, Chain};
    use cpm_harness::entity::{Input, Repeat};
    for (i, chunk) in [2048u64, 65536].into_iter().enumerate() {
        let block = pattern(1000);
        let len = 300_001u64;
        let whole: Vec<u8> = block.iter().copied().cycle().take(len as usize).collect();
        let mut variant = v(1, Transport::Tcp);
        variant.chunk_size = chunk;
        let o = opts(87 + i as u8, variant);
        let topo = o.topology.clone();
        let mut chain = Chain::start(o).await.unwrap();
        let a = chain.nodes.iter().find(|n| n.name == "client-a").unwrap();
        a.inputs
            .send(Input::SendSource {
                source: Arc::new(Repeat { block, len }),
            })
            .unwrap();
        let (outcome, r) = chain
            .wait(|n| sessions_per_instance(&topo, n), Duration::from_secs(30))
            .await;
        chain.stop().await.unwrap();
        r.unwrap_or_else(|e| panic!("chunk {chunk}: {e:#} {:?}", outcome.warnings));
        assert_eq!(outcome.received.len(), 3);
        for (m, r) in &outcome.received {
            assert_eq!(r.bytes, len, "chunk {chunk}: {m}");
            assert_eq!(r.sha256, sha256_hex(&whole), "chunk {chunk}: {m} differs");
        }
        assert!(outcome.ended_bad.is_empty(), "{:?}", outcome.warnings);
    }
}

/// A chain split over two sets of instances (as the fan-out benchmark splits it over
/// processes past the file-descriptor limit) delivers like one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_split_into_instance_sets_delivers() {
    use cpm_harness::chain::{sessions_per_instance, Chain};
    let o = opts(89, v(1, Transport::Udp));
    let topo = o.topology.clone();
    let front: Vec<String> = ["client-a", "pf-a", "x"].map(String::from).to_vec();
    let back: Vec<String> = topo
        .instances()
        .into_iter()
        .map(|i| i.name)
        .filter(|n| !front.contains(n))
        .collect();
    let mut b = Chain::start_instances(o.clone(), &back).await.unwrap();
    let mut a = Chain::start_instances(o, &front).await.unwrap();
    let content = pattern(100_000);
    a.send(content.clone()).unwrap();
    let t = topo.clone();
    let (ob, rb) = b
        .wait(|n| sessions_per_instance(&t, n), Duration::from_secs(30))
        .await;
    let (_, ra) = a
        .wait(|n| sessions_per_instance(&topo, n), Duration::from_secs(30))
        .await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    rb.unwrap();
    ra.unwrap();
    assert_eq!(ob.received.len(), 3);
    for r in ob.received.values() {
        assert_eq!(r.sha256, sha256_hex(&content));
    }
}

/// x serves members in turns whose messages fit in `fanout-window` bytes: with a 1-byte window
/// each member's message on L3 (first relayed chunk from x to the last MSRP response from its
/// pf-b) ends before the next member's starts; with room for three messages, never more than
/// three overlap. Every member still gets the content byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_window_bounds_the_members_served_at_once() {
    // 1 byte: one member at a time; 1,000,000 bytes: three 300,000-byte messages (plus their
    // CPIM heads) fit, a fourth does not.
    for (net, window, most_at_once) in [(90u8, 1u64, 1usize), (91, 1_000_000, 3)] {
        let mut var = v(1, Transport::Udp);
        var.chunk_size = 16 * 1024;
        let rec = cpm_harness::trace::Recorder::new(std::time::Instant::now());
        let mut o = opts(net, var.clone());
        o.topology = Arc::new(Topology::generate(net, 6, 2, 5060, 2855));
        o.recorder = Some(rec.clone());
        o.limits.fanout_window = window;
        let x = o.topology.x.msrp;
        let content = pattern(300_000);
        let want = sha256_hex(&content);
        let outcome = run_once(o, content, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("window {window}: {e:#}"));
        assert_eq!(outcome.received.len(), 6, "{:?}", outcome.received);
        for (m, r) in &outcome.received {
            assert_eq!(r.sha256, want, "window {window}: {m}");
        }
        // Per L3 connection (keyed by x's end: x opens L3 in FIG 1): when x's relayed data started, and the
        // last response from the pf-b.
        use cpm_harness::trace::WireEvent;
        let mut spans: std::collections::HashMap<std::net::SocketAddr, (Duration, Duration)> =
            Default::default();
        for (t, e) in rec.snapshot() {
            let WireEvent::TcpData { from, to, data } = e else {
                continue;
            };
            if from.ip() == x.ip() && data.windows(11).any(|w| w == b"message/cpi") {
                spans.entry(from).or_insert((t, t));
            } else if to.ip() == x.ip() && from.ip() != x.ip() {
                if let Some(s) = spans.get_mut(&to) {
                    s.1 = t;
                }
            }
        }
        assert_eq!(spans.len(), 6, "window {window}: {spans:?}");
        let most = spans
            .values()
            .map(|&(a, _)| spans.values().filter(|&&(b, c)| b <= a && a < c).count())
            .max()
            .unwrap_or(0);
        assert!(
            most >= 1 && most <= most_at_once,
            "window {window}: {most} members served at once: {spans:?}"
        );
    }
}
