//! The default run (`cpm-harness run`): every figure × SIP transport through the reference
//! chain over real sockets, with the harness playing all five roles (the self-check split).
//! Each case is judged from the wire-event stream: delivery and teardown, and which side
//! opened each MSRP link (LINK-DIR). Writes `reports/<run>/summary.json` and each case's event
//! log. The full conformance engine (splits, suites, profiles, the check catalogue) builds on
//! this; see the README's status section.

use crate::chain::{pattern, run_once, sha256_hex, ChainOptions};
use crate::codec::sip::Transport;
use crate::config::{Link, Opener, Variant};
use crate::driver::record::{Recorder, WireEvent};
use crate::entity::SipTimers;
use crate::topology::{Role, Topology};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One link opening seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkOpen {
    pub link: String,
    pub opener: String,
    pub target: String,
}

/// Maps each TCP connection opening among MSRP addresses to (link, opener, target) names.
pub fn link_openings(topology: &Topology, events: &[(Duration, WireEvent)]) -> Vec<LinkOpen> {
    let by_ip = |a: SocketAddr| {
        topology
            .instances()
            .into_iter()
            .find(|i| i.msrp.ip() == a.ip())
    };
    let mut out = Vec::new();
    // Both ends record a connection when both are in this process: count it once.
    let mut seen = std::collections::HashSet::new();
    for (_, ev) in events {
        let WireEvent::TcpOpen {
            conn: (a, b),
            opener,
        } = ev
        else {
            continue;
        };
        let target = if *opener == *a { *b } else { *a };
        if !seen.insert((*opener, target)) {
            continue;
        }
        // Only MSRP links: the target is an MSRP listener.
        if !topology.instances().iter().any(|i| i.msrp == target) {
            continue;
        }
        let (Some(o), Some(t)) = (by_ip(*opener), by_ip(target)) else {
            continue;
        };
        let link = match (o.role.min(t.role), o.role.max(t.role)) {
            (Role::ClientA, Role::PfA) => "L1",
            (Role::PfA, Role::X) => "L2",
            (Role::X, Role::PfB) => "L3",
            (Role::PfB, Role::ClientB) => "L4",
            _ => "?",
        };
        out.push(LinkOpen {
            link: link.into(),
            opener: o.name,
            target: t.name,
        });
    }
    out
}

/// The role that opens `link` in `variant`.
pub fn expected_opener(variant: &Variant, link: Link) -> Role {
    let (offerer, answerer) = match link {
        Link::L1 => (Role::ClientA, Role::PfA),
        Link::L2 => (Role::PfA, Role::X),
        Link::L3 => (Role::X, Role::PfB),
        Link::L4 => (Role::PfB, Role::ClientB),
    };
    match variant.opener(link) {
        Opener::Offerer => offerer,
        Opener::Answerer => answerer,
    }
}

/// LINK-DIR over a recorded case: every opening by the expected role, and every link of the
/// chain opened at least once. Returns the violations.
pub fn check_link_dir(topology: &Topology, variant: &Variant, opens: &[LinkOpen]) -> Vec<String> {
    let mut bad = Vec::new();
    let role_of = |name: &str| topology.instance(name).map(|i| i.role);
    for o in opens {
        let link = match o.link.as_str() {
            "L1" => Link::L1,
            "L2" => Link::L2,
            "L3" => Link::L3,
            "L4" => Link::L4,
            _ => {
                bad.push(format!(
                    "{} opened a connection to {} that is on no link of the chain",
                    o.opener, o.target
                ));
                continue;
            }
        };
        let want = expected_opener(variant, link);
        if role_of(&o.opener) != Some(want) {
            bad.push(format!(
                "{} was opened by {} (towards {}); figure {} gives it to {}",
                o.link, o.opener, o.target, variant.figure, want
            ));
        }
    }
    for l in ["L1", "L2", "L3", "L4"] {
        if !opens.iter().any(|o| o.link == l) {
            bad.push(format!("{l} was never opened"));
        }
    }
    bad
}

#[derive(Debug, Serialize)]
struct CaseReport {
    id: String,
    figure: u8,
    split: String,
    verdict: &'static str,
    duration_ms: u128,
    checks: Vec<CheckReport>,
}

#[derive(Debug, Serialize)]
struct CheckReport {
    id: &'static str,
    verdict: &'static str,
    evidence: Vec<String>,
}

#[derive(Serialize)]
struct EventLine<'a> {
    t_us: u128,
    kind: &'a str,
    from: String,
    to: String,
    len: usize,
    first_line: String,
}

fn event_line(t: Duration, ev: &WireEvent) -> EventLine<'_> {
    let first = |b: &[u8]| {
        String::from_utf8_lossy(
            &b[..b
                .iter()
                .position(|&c| c == b'\r' || c == b'\n')
                .unwrap_or(b.len())
                .min(120)],
        )
        .into_owned()
    };
    match ev {
        WireEvent::Sip {
            transport,
            from,
            to,
            raw,
        } => EventLine {
            t_us: t.as_micros(),
            kind: if *transport == Transport::Udp {
                "sip-udp"
            } else {
                "sip-tcp"
            },
            from: from.to_string(),
            to: to.to_string(),
            len: raw.len(),
            first_line: first(raw),
        },
        WireEvent::TcpOpen { conn, opener } => EventLine {
            t_us: t.as_micros(),
            kind: "tcp-open",
            from: opener.to_string(),
            to: if conn.0 == *opener { conn.1 } else { conn.0 }.to_string(),
            len: 0,
            first_line: String::new(),
        },
        WireEvent::TcpData { from, to, data } => EventLine {
            t_us: t.as_micros(),
            kind: "msrp-data",
            from: from.to_string(),
            to: to.to_string(),
            len: data.len(),
            first_line: first(data),
        },
        WireEvent::TcpClose { from, to } => EventLine {
            t_us: t.as_micros(),
            kind: "tcp-close",
            from: from.to_string(),
            to: to.to_string(),
            len: 0,
            first_line: String::new(),
        },
    }
}

/// Runs the default cases; returns the process exit code (0 all passed, 1 a case failed,
/// 4 no case ran).
pub async fn default_run(out: &Path, size: usize) -> anyhow::Result<u8> {
    let run_id = format!(
        "run-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let dir = out.join(&run_id);
    std::fs::create_dir_all(&dir)?;
    let content = pattern(size);
    let want = sha256_hex(&content);
    let mut cases = Vec::new();
    let mut net = 100u8;
    for fig in 1..=7u8 {
        for transport in [Transport::Udp, Transport::Tcp] {
            let mut variant = Variant::new(fig);
            variant.transport = transport;
            let topology = Arc::new(Topology::generate(net, 3, 2, 5060, 2855));
            net += 1;
            let id = format!(
                "F{fig}/self/{}",
                if transport == Transport::Udp {
                    "udp"
                } else {
                    "tcp"
                }
            );
            let rec = Recorder::new(Instant::now());
            let started = Instant::now();
            let opts = ChainOptions {
                topology: topology.clone(),
                variant: variant.clone(),
                roles: Role::ALL.to_vec(),
                timers: SipTimers::default(),
                recorder: Some(rec.clone()),
                out_dir: None,
                digest: true,
                holds: Default::default(),
                faults: Default::default(),
            };
            let result = run_once(opts, content.clone(), Duration::from_secs(30)).await;
            let events = rec.snapshot();
            let mut checks = Vec::new();
            match &result {
                Ok(o) => {
                    let mut ev = Vec::new();
                    for m in &topology.members {
                        match o.received.get(&m.name) {
                            Some(r) if r.complete && r.sha256 == want => {}
                            Some(r) => ev.push(format!(
                                "{} received {} bytes, sha256 {}",
                                m.name, r.bytes, r.sha256
                            )),
                            None => ev.push(format!("{} received nothing", m.name)),
                        }
                    }
                    checks.push(CheckReport {
                        id: "MEDIA-DELIVERY",
                        verdict: if ev.is_empty() { "pass" } else { "fail" },
                        evidence: ev,
                    });
                    let bad: Vec<String> = o
                        .ended_bad
                        .iter()
                        .map(|(n, c)| format!("{n}: {c} session(s) ended badly"))
                        .collect();
                    checks.push(CheckReport {
                        id: "SIG-TEARDOWN",
                        verdict: if bad.is_empty() { "pass" } else { "fail" },
                        evidence: bad,
                    });
                }
                Err(e) => checks.push(CheckReport {
                    id: "MEDIA-DELIVERY",
                    verdict: "fail",
                    evidence: vec![format!("{e:#}")],
                }),
            }
            let opens = link_openings(&topology, &events);
            let bad = check_link_dir(&topology, &variant, &opens);
            checks.push(CheckReport {
                id: "LINK-DIR",
                verdict: if bad.is_empty() { "pass" } else { "fail" },
                evidence: bad,
            });
            let verdict = if checks.iter().all(|c| c.verdict == "pass") {
                "pass"
            } else {
                "fail"
            };
            let log = dir.join(format!("{}.events.jsonl", id.replace('/', "_")));
            let mut text = String::new();
            for (t, e) in &events {
                text.push_str(&serde_json::to_string(&event_line(*t, e))?);
                text.push('\n');
            }
            write_atomic(&log, text.as_bytes())?;
            println!("{verdict:>4}  {id}");
            for c in checks.iter().filter(|c| c.verdict != "pass") {
                for e in &c.evidence {
                    println!("        {} {}", c.id, e);
                }
            }
            cases.push(CaseReport {
                id,
                figure: fig,
                split: "self".into(),
                verdict,
                duration_ms: started.elapsed().as_millis(),
                checks,
            });
        }
    }
    let passed = cases.iter().filter(|c| c.verdict == "pass").count();
    let failed = cases.len() - passed;
    let mut summary = BTreeMap::new();
    summary.insert("schema_version", serde_json::json!(1));
    summary.insert("run", serde_json::json!(run_id));
    summary.insert("cases", serde_json::to_value(&cases)?);
    write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!("{passed} passed, {failed} failed");
    println!("reports: {}", dir.display());
    Ok(if cases.is_empty() {
        4
    } else if failed > 0 {
        1
    } else {
        0
    })
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}
