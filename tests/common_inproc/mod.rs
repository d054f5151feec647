//! In-process cases over real loopback sockets, shared by the checker and model tests: the
//! reference SUT plays some roles (its nodes record nothing, like a SUT in its own process),
//! the harness the others (recording, with its discriminating holds); the case ends when
//! every instance ended its sessions or the timeout passed.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // Tests may read the clock.

use cpm_harness::capture::analyze::{analyze_events, Options};
use cpm_harness::capture::{read_capture_full, write_pcap};
use cpm_harness::chain::{pattern, sessions_per_instance, sha256_hex};
use cpm_harness::codec::sip::Transport;
use cpm_harness::config::Variant;
use cpm_harness::driver::{spawn_node, NodeHandle};
use cpm_harness::engine::checks::run_checks;
use cpm_harness::engine::observe;
use cpm_harness::engine::Verdict;
use cpm_harness::engine::{CaseContext, CheckResult, Delivered};
use cpm_harness::entity::{Fault, Holds, Input, NodeConfig, NodeEvent};
use cpm_harness::topology::{Role, Topology};
use cpm_harness::trace::{Recorder, WireEvent};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use std::time::{Duration, Instant};

/// The harness's discriminating pause (withheld ACKs and 200s).
pub const PAUSE: Duration = Duration::from_millis(100);
/// How long after its trigger a link may open, and a binding SEND follow.
pub const WINDOW: Duration = Duration::from_millis(1000);
pub const SIZE: usize = 20_000;

pub type Events = Vec<(Duration, WireEvent)>;

#[derive(Clone)]
pub struct Case {
    pub variant: Variant,
    pub sut: Vec<Role>,
    pub faults: Vec<Fault>,
    pub timeout: Duration,
    /// The exception scenario the harness's entities play (issue 16: a member that
    /// declines, …), wherever they are in the chain.
    pub scenario: Holds,
    /// The PICS choice MEDIA-REPORT follows.
    pub report_timing: cpm_harness::config::ReportTiming,
}

impl Case {
    pub fn new(variant: Variant, sut: &[Role]) -> Case {
        Case {
            variant,
            sut: sut.to_vec(),
            faults: vec![],
            timeout: Duration::from_secs(8),
            scenario: Holds::default(),
            report_timing: Default::default(),
        }
    }
}

pub struct Run {
    pub ctx: CaseContext,
    pub events: Events,
    pub records: Vec<cpm_harness::trace::Record>,
    pub warnings: Vec<String>,
}

/// The holds of a harness entity: withhold what a SUT neighbour's timing is judged on.
pub fn holds_for(role: Role, sut: &[Role]) -> Holds {
    let mut h = Holds::default();
    if sut.is_empty() {
        return h;
    }
    let next = |r: Role| match r {
        Role::ClientA => Some(Role::PfA),
        Role::PfA => Some(Role::X),
        Role::X => Some(Role::PfB),
        Role::PfB => Some(Role::ClientB),
        Role::ClientB => None,
    };
    // The upstream ACK a SUT waits for (trigger on-ack, ACK after-ack) comes late.
    if next(role).is_some_and(|n| sut.contains(&n)) {
        h.ack_delay = PAUSE;
    }
    // 200-3 comes late, so an x that must answer at once is seen doing so.
    if role == Role::PfB && sut.contains(&Role::X) {
        h.answer_delay = PAUSE;
    }
    // 200-1 comes late, so a client-a that connects before it is seen doing so.
    if role == Role::PfA && sut.contains(&Role::ClientA) {
        h.answer_delay = PAUSE;
    }
    h
}

/// Runs one case over loopback on `127.<net>.*` with ports from `slot`; an IPv6 case
/// (`ip: v6`) on `::1`, 20 ports per slot from 21000 + 800 × (net mod 8).
pub async fn run_case(net: u8, slot: u16, case: &Case) -> Run {
    if case.variant.ip == cpm_harness::config::IpFamily::V6 {
        let base = 21000 + 800 * u16::from(net % 8) + 20 * slot;
        let ip = std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
        return run_case_on(Arc::new(Topology::generate_shared(ip, 3, 2, base)), case).await;
    }
    let sip_port = 21000 + slot * 2;
    run_case_on(
        Arc::new(Topology::generate(net, 3, 2, sip_port, sip_port + 1)),
        case,
    )
    .await
}

/// Runs one case on `topo` (three members, two pf-b).
pub async fn run_case_on(topo: Arc<Topology>, case: &Case) -> Run {
    let rec = Recorder::new(Instant::now());
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for inst in topo.instances() {
        let mut cfg = NodeConfig::new(topo.clone(), &inst.name, case.variant.clone())
            .expect("instance of the topology");
        let recorder = if case.sut.contains(&inst.role) {
            cfg.faults = case.faults.clone();
            // A member that never answers: the SUT gives up well within the harness's wait,
            // as the reference profile's `--invite-timeout-ms` makes it.
            if !case.scenario.no_answer.is_empty() {
                cfg.timers.invite_timeout = Some(Duration::from_millis(1000));
            }
            None
        } else {
            cfg.holds = holds_for(inst.role, &case.sut).with_scenario(&case.scenario);
            Some(rec.clone())
        };
        nodes.push(
            spawn_node(cfg, recorder)
                .await
                .unwrap_or_else(|e| panic!("{e:#}")),
        );
    }
    let content = pattern(SIZE);
    let client_a = nodes
        .iter()
        .find(|n| n.name == "client-a")
        .expect("client-a");
    client_a
        .inputs
        .send(Input::Send {
            content: content.clone(),
        })
        .expect("client-a runs");
    let (delivered, warnings) = wait_all(&mut nodes, &topo, case.timeout).await;
    if case.scenario.is_exception() {
        // A session may end before its last message (the ACK of a final non-2xx) is on the
        // wire: let the wire go quiet, as the engine does.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in nodes {
        let _ = n.stop().await;
    }
    let ctx = CaseContext {
        topology: topo,
        variant: case.variant.clone(),
        sut: case.sut.clone(),
        holds: Holds {
            ack_delay: PAUSE,
            answer_delay: PAUSE,
            ..Holds::default()
        },
        pause: PAUSE,
        trigger_window: WINDOW,
        content_len: SIZE as u64,
        content_sha256: sha256_hex(&content),
        pinned: None,
        delivered,
        report_timing: case.report_timing,
    };
    Run {
        ctx,
        events: rec.snapshot(),
        records: rec.records(),
        warnings,
    }
}

/// Waits until every node ended its sessions (or `timeout`); what each member received.
pub async fn wait_all(
    nodes: &mut [NodeHandle],
    topo: &Topology,
    timeout: Duration,
) -> (BTreeMap<String, Delivered>, Vec<String>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, NodeEvent)>();
    let mut pumps = Vec::new();
    for n in nodes.iter_mut() {
        let name = n.name.clone();
        let tx = tx.clone();
        let mut ev = std::mem::replace(&mut n.events, cpm_harness::driver::queue::unbounded().1);
        pumps.push(tokio::spawn(async move {
            while let Some(e) = ev.recv().await {
                if tx.send((name.clone(), e)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut ended: BTreeMap<String, usize> = BTreeMap::new();
    let mut hashers: BTreeMap<String, (Sha256, u64, bool)> = BTreeMap::new();
    let mut delivered = BTreeMap::new();
    let mut warnings = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !names
        .iter()
        .all(|n| ended.get(n).copied().unwrap_or(0) >= sessions_per_instance(topo, n))
    {
        let Ok(Some((name, ev))) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        match ev {
            NodeEvent::Data {
                member,
                offset,
                data,
                ..
            } => {
                let h = hashers
                    .entry(member)
                    .or_insert_with(|| (Sha256::new(), 0, true));
                h.2 &= offset == h.1;
                h.0.update(&data);
                h.1 = h.1.max(offset + data.len() as u64);
            }
            NodeEvent::Delivered { member, bytes, .. } => {
                let (h, _, in_order) = hashers.remove(&member).unwrap_or((Sha256::new(), 0, true));
                let sha = if in_order {
                    hex::encode(h.finalize())
                } else {
                    String::new()
                };
                delivered.insert(
                    member,
                    Delivered {
                        bytes,
                        sha256: sha,
                        complete: true,
                    },
                );
            }
            NodeEvent::SessionEnded { .. } => *ended.entry(name).or_default() += 1,
            NodeEvent::Warning(w) => warnings.push(w),
        }
    }
    for (member, (_, bytes, _)) in hashers {
        delivered.entry(member).or_insert(Delivered {
            bytes,
            sha256: String::new(),
            complete: false,
        });
    }
    for p in pumps {
        p.abort();
    }
    (delivered, warnings)
}

pub fn judge(run: &Run) -> Vec<CheckResult> {
    let obs = observe(&run.ctx, &run.events);
    run_checks(&run.ctx, &obs)
}

pub fn verdict_of(results: &[CheckResult], id: cpm_harness::engine::CheckId) -> &CheckResult {
    results
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

pub fn show(results: &[CheckResult]) -> String {
    let mut s = String::new();
    for r in results {
        s.push_str(&format!("  {:<15} {}\n", r.id.as_str(), r.verdict.as_str()));
        for e in &r.evidence() {
            s.push_str(&format!("      {e}\n"));
        }
    }
    s
}

pub fn split_name(sut: &[Role]) -> String {
    if sut.is_empty() {
        "self".into()
    } else {
        sut.iter().map(|r| r.as_str()).collect::<Vec<_>>().join("+")
    }
}

pub const SPLITS: [&[Role]; 7] = [
    &[Role::ClientA],
    &[Role::PfA],
    &[Role::X],
    &[Role::PfB],
    &[Role::ClientB],
    &[Role::PfA, Role::X, Role::PfB],
    &[],
];

/// Whether a failure of `r` satisfies `f`.
pub fn fails_with(r: &CheckResult, f: impl Fn(&cpm_harness::engine::Finding) -> bool) -> bool {
    r.of_class(cpm_harness::engine::Class::Fail).any(f)
}

/// Runs futures concurrently on the current runtime and collects their outputs in order.
pub async fn futures_join<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("case task"));
    }
    out
}

pub fn var(fig: u8, t: Transport) -> Variant {
    let mut v = Variant::new(fig);
    v.transport = t;
    v
}

/// Check id → verdict.
pub fn verdicts(results: &[CheckResult]) -> BTreeMap<String, Verdict> {
    results
        .iter()
        .map(|r| (r.id.as_str().to_string(), r.verdict))
        .collect()
}

/// The pcap of a run, read back and analyzed (with the topology, or inferring it).
pub fn offline(
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
