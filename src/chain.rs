//! Runs a set of entity instances in this process over real sockets and waits for a session
//! to be delivered and torn down: the in-process reference chain, and the engine behind the
//! `sut` command (which runs the subset of roles it is given).

use crate::clock;
use crate::config::{ReportTiming, Variant};
use crate::driver::{spawn_node, NodeHandle};
use crate::entity::{Fault, Holds, Input, NodeConfig, NodeEvent, SipTimers};
use crate::limits::Limits;
use crate::topology::{Role, Topology};
use crate::trace::Recorder;
use anyhow::{anyhow, bail};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// What one member received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub bytes: u64,
    /// SHA-256 of the content in offset order (hex).
    pub sha256: String,
    pub complete: bool,
}

/// The outcome of a chain run.
#[derive(Debug, Default)]
pub struct Outcome {
    pub received: BTreeMap<String, Received>,
    /// Per instance: sessions that ended cleanly / not.
    pub ended_ok: BTreeMap<String, usize>,
    pub ended_bad: BTreeMap<String, usize>,
    pub warnings: Vec<String>,
}

/// Settings of a chain run.
#[derive(Clone)]
pub struct ChainOptions {
    pub topology: Arc<Topology>,
    pub variant: Variant,
    pub roles: Vec<Role>,
    pub timers: SipTimers,
    pub recorder: Option<Recorder>,
    /// client-b writes each member's content here when set.
    pub out_dir: Option<PathBuf>,
    /// Hash delivered content (off for throughput benchmarks).
    pub digest: bool,
    /// Ordering choices and pauses applied to the instances of this chain (the harness)
    /// whose role is in `hold_roles` (all when `None`).
    pub holds: Holds,
    pub hold_roles: Option<Vec<Role>>,
    /// Deliberate deviations applied to every instance of this chain (the reference SUT).
    pub faults: Vec<Fault>,
    /// What a peer may make these instances buffer or hold open.
    pub limits: Limits,
    /// The INVITEs these instances send carry `X-Cpm-Variant` ([`NodeConfig::variant_header`]).
    pub variant_header: bool,
    /// Each call takes its variant from `X-Cpm-Variant` (the reference SUT's per-call mode,
    /// [`NodeConfig::per_call_variant`]).
    pub per_call_variant: bool,
    /// When these instances' middle entities send a success REPORT
    /// ([`NodeConfig::report_timing`]).
    pub report_timing: ReportTiming,
}

impl ChainOptions {
    /// Every role, no recorder, no holds or faults, default timers and limits; content
    /// hashed at each member.
    pub fn new(topology: Arc<Topology>, variant: Variant) -> ChainOptions {
        ChainOptions {
            topology,
            variant,
            roles: Role::ALL.to_vec(),
            timers: SipTimers::default(),
            recorder: None,
            out_dir: None,
            digest: true,
            holds: Holds::default(),
            hold_roles: None,
            faults: Vec::new(),
            limits: Limits::default(),
            variant_header: false,
            per_call_variant: false,
            report_timing: ReportTiming::default(),
        }
    }

    /// As [`ChainOptions::new`], for throughput and load (bench, `load`): any number of
    /// connections per peer, no content hashing.
    pub fn for_load(topology: Arc<Topology>, variant: Variant) -> ChainOptions {
        ChainOptions {
            digest: false,
            limits: Limits::many_sessions(),
            ..ChainOptions::new(topology, variant)
        }
    }
}

/// Deterministic test content: a repeating pattern that makes misplaced bytes visible.
pub fn pattern(len: usize) -> Bytes {
    let mut v = Vec::with_capacity(len);
    let mut x: u32 = 0x1234_5678;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The instances of `roles` in the topology.
pub fn instances_for(topology: &Topology, roles: &[Role]) -> Vec<String> {
    topology
        .instances()
        .into_iter()
        .filter(|i| roles.contains(&i.role))
        .map(|i| i.name)
        .collect()
}

/// Told each warning as it happens.
type WarnSink = Box<dyn FnMut(&str) + Send>;

/// Running nodes of one process.
pub struct Chain {
    pub nodes: Vec<NodeHandle>,
    opts: ChainOptions,
    /// Told each warning as it happens (see [`Chain::on_warning`]).
    warn_sink: Option<WarnSink>,
}

impl Chain {
    pub async fn start(opts: ChainOptions) -> anyhow::Result<Chain> {
        let names = instances_for(&opts.topology, &opts.roles);
        Chain::start_instances(opts, &names).await
    }

    /// Starts the named instances only (`opts.roles` is not consulted): a chain split over
    /// several processes, as the fan-out benchmark does past the file-descriptor limit.
    pub async fn start_instances(opts: ChainOptions, names: &[String]) -> anyhow::Result<Chain> {
        opts.variant.validate().map_err(|e| anyhow!(e))?;
        let mut nodes = Vec::new();
        for name in names {
            let mut cfg = NodeConfig::new(opts.topology.clone(), name, opts.variant.clone())
                .ok_or_else(|| anyhow!("instance {name} not in topology"))?;
            cfg.timers = opts.timers;
            if opts
                .hold_roles
                .as_ref()
                .is_none_or(|r| r.contains(&cfg.role))
            {
                cfg.holds = opts.holds.clone();
            } else {
                // The scenario's behaviours (a member that declines, a sender that aborts)
                // wherever the entity is; its timing holds only next to the SUT.
                cfg.holds = opts.holds.scenario();
            }
            cfg.faults = opts.faults.clone();
            cfg.limits = opts.limits;
            cfg.variant_header = opts.variant_header;
            cfg.per_call_variant = opts.per_call_variant;
            cfg.report_timing = opts.report_timing;
            nodes.push(spawn_node(cfg, opts.recorder.clone()).await?);
        }
        Ok(Chain {
            nodes,
            opts,
            warn_sink: None,
        })
    }

    /// Has `sink` told every warning (a peer's bad input, a session that ended badly, a file
    /// that could not be written) the moment [`Chain::wait`] sees it, rather than only in the
    /// outcome at the end: a long-running process logs it when it happens.
    pub fn on_warning(&mut self, sink: impl FnMut(&str) + Send + 'static) {
        self.warn_sink = Some(Box::new(sink));
    }

    /// Makes client-a (which must be in this chain) send `content`.
    pub fn send(&self, content: Bytes) -> anyhow::Result<()> {
        self.input("client-a", Input::Send { content })
    }

    /// Gives `input` to the instance `name` (which must be in this chain).
    pub fn input(&self, name: &str, input: Input) -> anyhow::Result<()> {
        let n = self
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| anyhow!("{name} is not played by this process"))?;
        n.inputs.send(input).map_err(|_| anyhow!("{name} stopped"))
    }

    /// Waits until every node has ended `sessions(name)` sessions (or `timeout`), collecting
    /// deliveries. Returns the outcome even on timeout, with an error naming who is missing.
    pub async fn wait(
        &mut self,
        sessions: impl Fn(&str) -> usize,
        timeout: Duration,
    ) -> (Outcome, anyhow::Result<()>) {
        self.wait_until(sessions, timeout, std::future::pending())
            .await
    }

    /// As [`Chain::wait`], and also ends (cleanly, after handling the events already
    /// queued, so no delivered byte is lost) when `stop` completes.
    pub async fn wait_until(
        &mut self,
        sessions: impl Fn(&str) -> usize,
        timeout: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> (Outcome, anyhow::Result<()>) {
        let mut outcome = Outcome::default();
        let mut deadline = clock::tokio_now() + timeout;
        let mut stopping = false;
        tokio::pin!(stop);
        let mut hashers: BTreeMap<String, (Sha256, u64, bool)> = BTreeMap::new();
        let mut files: BTreeMap<String, tokio::fs::File> = BTreeMap::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, NodeEvent)>();
        // Fan the nodes' event channels into one.
        let mut pumps = Vec::new();
        for n in self.nodes.iter_mut() {
            let name = n.name.clone();
            let tx = tx.clone();
            let mut ev = std::mem::replace(&mut n.events, crate::driver::queue::unbounded().1);
            pumps.push(tokio::spawn(async move {
                while let Some(e) = ev.recv().await {
                    if tx.send((name.clone(), e)).is_err() {
                        break;
                    }
                }
                ev
            }));
        }
        drop(tx);
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let done = |o: &Outcome| {
            names.iter().all(|n| {
                o.ended_ok.get(n).copied().unwrap_or(0) + o.ended_bad.get(n).copied().unwrap_or(0)
                    >= sessions(n)
            })
        };
        let mut result = Ok(());
        let mut told = 0usize;
        while !done(&outcome) {
            let ev = tokio::select! {
                biased;
                ev = tokio::time::timeout_at(deadline, rx.recv()) => ev,
                _ = &mut stop, if !stopping => {
                    // Drain what is queued, then stop: an elapsed deadline still lets a
                    // ready event through.
                    stopping = true;
                    deadline = clock::tokio_now();
                    continue;
                }
            };
            if stopping && ev.is_err() {
                break;
            }
            let (name, ev) = match ev {
                Ok(Some(x)) => x,
                Ok(None) => {
                    result = Err(anyhow!("all nodes stopped"));
                    break;
                }
                Err(_) => {
                    let missing: Vec<String> = names
                        .iter()
                        .filter(|n| {
                            outcome.ended_ok.get(*n).copied().unwrap_or(0)
                                + outcome.ended_bad.get(*n).copied().unwrap_or(0)
                                < sessions(n)
                        })
                        .cloned()
                        .collect();
                    result = Err(anyhow!(
                        "timed out after {timeout:?}; sessions not ended at: {}",
                        missing.join(", ")
                    ));
                    break;
                }
            };
            match ev {
                NodeEvent::Data {
                    member,
                    offset,
                    data,
                    ..
                } => {
                    let h = hashers
                        .entry(member.clone())
                        .or_insert_with(|| (Sha256::new(), 0, true));
                    if offset != h.1 {
                        h.2 = false; // Out of order: the digest is only valid in order.
                    }
                    if self.opts.digest {
                        h.0.update(&data);
                    }
                    h.1 = h.1.max(offset + data.len() as u64);
                    if let Some(dir) = &self.opts.out_dir {
                        if !files.contains_key(&member) {
                            let path = dir.join(sanitize(&member));
                            match tokio::fs::File::create(&path).await {
                                Ok(f) => {
                                    files.insert(member.clone(), f);
                                }
                                Err(e) => outcome.warnings.push(format!("{}: {e}", path.display())),
                            }
                        }
                        if let Some(f) = files.get_mut(&member) {
                            let ok = f.seek(std::io::SeekFrom::Start(offset)).await.is_ok()
                                && f.write_all(&data).await.is_ok();
                            if !ok {
                                outcome
                                    .warnings
                                    .push(format!("writing {member}'s content failed"));
                            }
                        }
                    }
                }
                NodeEvent::Delivered { member, bytes, .. } => {
                    // Closed once delivered: the member's next message (a SUT serving many
                    // sessions) creates the file afresh.
                    if let Some(mut f) = files.remove(&member) {
                        if let Err(e) = f.flush().await {
                            outcome
                                .warnings
                                .push(format!("flushing {member}'s content: {e}"));
                        }
                    }
                    let (hasher, _, in_order) =
                        hashers.remove(&member).unwrap_or((Sha256::new(), 0, true));
                    let sha = if in_order {
                        hex::encode(hasher.finalize())
                    } else {
                        String::new()
                    };
                    outcome.received.insert(
                        member,
                        Received {
                            bytes,
                            sha256: sha,
                            complete: true,
                        },
                    );
                }
                NodeEvent::SessionEnded { ok, detail, .. } => {
                    if ok {
                        *outcome.ended_ok.entry(name).or_default() += 1;
                    } else {
                        outcome.warnings.push(format!("{name}: {detail}"));
                        *outcome.ended_bad.entry(name).or_default() += 1;
                    }
                }
                NodeEvent::Warning(w) => outcome.warnings.push(w),
            }
            if let Some(sink) = self.warn_sink.as_mut() {
                for w in &outcome.warnings[told..] {
                    sink(w);
                }
                told = outcome.warnings.len();
            }
        }
        if let Some(sink) = self.warn_sink.as_mut() {
            for w in &outcome.warnings[told..] {
                sink(w);
            }
        }
        for (_, mut f) in files {
            let _ = f.flush().await;
        }
        for (member, (_, bytes, _)) in hashers {
            outcome.received.entry(member).or_insert(Received {
                bytes,
                sha256: String::new(),
                complete: false,
            });
        }
        for (n, p) in self.nodes.iter_mut().zip(pumps) {
            p.abort();
            let _ = n;
        }
        (outcome, result)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        for n in self.nodes {
            n.stop().await?;
        }
        Ok(())
    }
}

/// How many sessions each instance sees for one group message with all members answering.
pub fn sessions_per_instance(topology: &Topology, name: &str) -> usize {
    match topology.instance(name).map(|i| i.role) {
        Some(Role::PfB) => topology
            .pf_b
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.serves.len())
            .unwrap_or(0),
        Some(_) => 1,
        None => 0,
    }
}

/// A file name for a member: only `[A-Za-z0-9._-]`, never a path.
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// Runs the whole chain in this process for one message; checks delivery and teardown.
pub async fn run_once(
    opts: ChainOptions,
    content: Bytes,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let topo = opts.topology.clone();
    let mut chain = Chain::start(opts).await?;
    chain.send(content)?;
    let (outcome, r) = chain
        .wait(|n| sessions_per_instance(&topo, n), timeout)
        .await;
    chain.stop().await?;
    if let Err(e) = r {
        bail!(
            "{e}\nwarnings: {:#?}\nreceived: {:#?}",
            outcome.warnings,
            outcome.received
        );
    }
    Ok(outcome)
}
