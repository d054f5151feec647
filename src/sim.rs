//! A deterministic simulated network for the sans-IO entity state machines: every instance
//! of a topology runs in one thread on a virtual clock, and a seeded random generator decides
//! every delay, split, read size and (optionally) lost datagram, so one seed is one exact
//! interleaving that can be replayed.
//!
//! # What the simulator owns
//! - **The clock.** One base [`Instant`] captured at the start plus a virtual [`Duration`]
//!   offset; nodes only ever see `base + offset`. Nothing sleeps: the run loop jumps to the
//!   earliest of the next in-flight delivery and the earliest node timer.
//! - **The wire.** A priority queue of in-flight deliveries keyed by (virtual time, sequence
//!   number), so equal times keep the order in which they were scheduled.
//! - **SIP/UDP.** Each datagram gets its own random delay in `[min_delay, max_delay]`, so
//!   datagrams are reordered even between the same pair; a fraction `udp_loss` is dropped, so
//!   the nodes' retransmission timers have to recover. The receiver sees `from` = the sender's
//!   SIP address, as with a real UDP socket bound to it.
//! - **SIP on the wire.** Every SIP message travels as its bytes (`raw`) and is parsed again
//!   on arrival, as the real driver does, so what a node sends is what its peer reads.
//! - **SIP/TCP (simplified).** Modelled as one ordered, lossless stream per (sender, receiver)
//!   pair of nodes, with `from` = the sender's SIP address. The real driver opens a connection
//!   from an ephemeral port and sends responses back on it; here responses simply go to the
//!   sender's SIP address as their own ordered stream. Messages are never lost or split, and
//!   both directions between two nodes are independent streams.
//! - **MSRP/TCP connections.** [`Output::Connect`] reaches the node whose MSRP address is
//!   `to` after a delay ([`Input::Accepted`], with an id from [`Node::new_conn_id`] and an
//!   ephemeral peer port), and the opener gets [`Input::Connected`] a delay later; an address
//!   no node listens on gives [`Input::ConnectFailed`]. Bytes of one direction keep their
//!   order (each piece is due at `max(previous piece of that direction, now + delay)`);
//!   with `split_writes` a write is cut into random pieces and every read takes a random
//!   amount of what has arrived, so MSRP messages are split and coalesced across reads.
//!   [`Output::Close`] sends a FIN after everything written before it; the peer gets
//!   [`Input::Closed`] once it has read all earlier data, and (like the real driver, which
//!   drops its writer when the reader sees EOF) closes its own direction in turn.
//! - **Backpressure.** [`Output::PauseRead`] keeps arriving bytes queued until
//!   [`Output::ResumeRead`]. Each direction has a socket buffer of `socket_buffer` bytes: a
//!   write is reported flushed ([`Input::MsrpFlushed`]) as soon as the bytes written but not
//!   yet read by the peer node fit in it, otherwise when the peer reads. With 0 a paused
//!   reader stalls its writer at once, so backpressure propagates hop by hop.
//!
//! # What it does not model
//! Bandwidth (a write's size does not change its delay), connection resets, SIP over TCP
//! connection management, IP fragmentation, and real time spent computing. Node timers fire
//! exactly at their deadline; a timer due at the same virtual time as a delivery fires first.
//!
//! # Determinism
//! The network's randomness comes from one SplitMix64 stream seeded with
//! [`SimOptions::seed`], and no decision depends on wall time or on hash-map iteration order.
//! Each node draws its identifiers (tags, branches, Call-IDs, MSRP session and transaction
//! ids, Message-IDs) from its own generator, seeded with [`SimOptions::seed`] xor a hash of
//! its name, and stamps CPIM `DateTime` from [`SIM_EPOCH_SECS`] plus virtual time. So the same seed
//! gives the same bytes on the wire ([`SimOptions::record_wire`]), the same
//! [`SimOutcome::trace_hash`] and the same [`SimOutcome::trace`].
//!
//! # The run
//! [`run_sim`] builds every instance of the topology, gives client-a [`Input::Send`] and runs
//! until each instance has ended the sessions it should
//! ([`crate::chain::sessions_per_instance`]), then lets the deliveries still in flight land
//! (without firing timers) so late warnings and connection closes are seen. It never hangs:
//! a virtual-time limit, a step limit and "nothing left to happen" end the run with an error
//! naming the instances that did not finish. Every output a node produces is folded into
//! [`SimOutcome::trace_hash`] together with its virtual time and node, so two runs with the same
//! seed can be compared.

use crate::chain::{sessions_per_instance, sha256_hex, Received};
use crate::codec::sip::{SipMessage, Transport};
use crate::config::Variant;
use crate::entity::{ConnId, Input, Node, NodeConfig, NodeEvent, Output, SipTimers, Start};
use crate::topology::Topology;
use crate::trace::{Record, Recorder, Seen, WireEvent};
use anyhow::anyhow;
use bytes::Bytes;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The wall-clock time every simulated run starts at, in seconds since the Unix epoch
/// (2026-01-01T00:00:00Z): CPIM `DateTime` depends on the virtual time only.
pub const SIM_EPOCH_SECS: u64 = 1_767_225_600;

/// Settings of one simulated run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Seeds every random decision of the network.
    pub seed: u64,
    /// Each delivery (datagram, TCP piece, connection step) takes a delay in
    /// `[min_delay, max_delay]`.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Fraction of SIP/UDP datagrams dropped (0.0..1.0).
    pub udp_loss: f64,
    /// Cut MSRP writes into random pieces and read random amounts.
    pub split_writes: bool,
    /// The run fails when it has not finished by this virtual time.
    pub virtual_timeout: Duration,
    /// The run fails after this many steps (events plus timer firings).
    pub max_steps: u64,
    /// SIP timer base values of every node.
    pub timers: SipTimers,
    /// Overrides every node's high-water mark (small values exercise backpressure).
    pub high_water: Option<usize>,
    /// Bytes per connection direction the "kernel" accepts beyond what the reader has read:
    /// a write is reported flushed ([`Input::MsrpFlushed`]) as soon as it fits. 0 models a
    /// socket without buffer, so a paused reader stalls its writer at once.
    pub socket_buffer: usize,
    /// Keep the readable trace in [`SimOutcome::trace`] (the hash is always computed).
    pub keep_trace: bool,
    /// Record the wire ([`SimOutcome::records`]) through a [`Recorder`] as the tokio driver
    /// does, at virtual times: the same event stream as a live run, which the model and the
    /// checks read.
    pub record_wire: bool,
    /// An exception scenario's behaviours ([`crate::entity::Holds::scenario`]), applied by
    /// every node they name (a member that refuses the content, …).
    pub holds: crate::entity::Holds,
    /// SIP messages held back on purpose: how a test makes one deterministic interleaving
    /// that random delays would rarely give (a member that answers long after the others).
    pub sip_holds: Vec<SipHold>,
}

/// Delays the first SIP message `node` sends whose summary ([`SipMessage::summary`], e.g.
/// `SIP/2.0 200 OK` or `INVITE sip:…`) starts with `starts_with` by `by` on top of the
/// network's own delay; later messages of the same SIP/TCP stream stay behind it.
#[derive(Debug, Clone)]
pub struct SipHold {
    pub node: String,
    pub starts_with: String,
    pub by: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 0,
            min_delay: Duration::ZERO,
            max_delay: Duration::from_millis(5),
            udp_loss: 0.0,
            split_writes: true,
            virtual_timeout: Duration::from_secs(120),
            max_steps: 2_000_000,
            timers: SipTimers::default(),
            high_water: None,
            socket_buffer: 64 * 1024,
            keep_trace: false,
            record_wire: false,
            sip_holds: Vec::new(),
            holds: crate::entity::Holds::default(),
        }
    }
}

impl SimOptions {
    /// The defaults with `seed`.
    pub fn seeded(seed: u64) -> SimOptions {
        SimOptions {
            seed,
            ..SimOptions::default()
        }
    }
}

/// One output of one node, as kept in [`SimOutcome::trace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    pub at: Duration,
    pub node: String,
    /// Outputs: `sip`, `connect`, `write`, `pause`, `resume`, `close` or `event`; and, only in
    /// the kept trace (not in the hash), `input` for what a node was given and `drop` for a
    /// lost datagram.
    pub kind: &'static str,
    /// A short description (method or status, bytes, connection id).
    pub detail: String,
}

/// Counters of what crossed the simulated network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    pub sip_sent: u64,
    pub sip_dropped: u64,
    pub connections: u64,
    pub msrp_bytes: u64,
    /// Pieces the MSRP writes were cut into.
    pub msrp_pieces: u64,
    /// [`Input::MsrpData`] inputs (reads) given to nodes.
    pub msrp_reads: u64,
    pub pauses: u64,
}

/// What a simulated run produced.
#[derive(Debug, Clone, Default)]
pub struct SimOutcome {
    /// Per member: bytes delivered and the SHA-256 of the content reassembled in offset order.
    pub received: BTreeMap<String, Received>,
    /// Per instance: sessions that ended cleanly / not.
    pub ended_ok: BTreeMap<String, usize>,
    pub ended_bad: BTreeMap<String, usize>,
    /// The nodes' warnings, and the simulator's own (prefixed `sim:`).
    pub warnings: Vec<String>,
    /// MSRP connections not closed in both directions when the run ended.
    pub open_links: Vec<String>,
    pub virtual_elapsed: Duration,
    pub steps: u64,
    /// FNV-1a over (virtual time, node, output kind and size) of every output, in order.
    pub trace_hash: u64,
    pub trace: Vec<TraceEntry>,
    pub stats: SimStats,
    /// What crossed the simulated wire, as the drivers record it (with
    /// [`SimOptions::record_wire`]).
    pub records: Vec<Record>,
}

/// Runs `variant` over `topology` for one message of `content` and checks that every instance
/// ended its sessions. Errors name the instances that did not finish, with the warnings.
pub fn run_sim(
    topology: Arc<Topology>,
    variant: Variant,
    content: Bytes,
    opts: &SimOptions,
) -> anyhow::Result<SimOutcome> {
    let (outcome, result) = simulate(topology, variant, content, opts)?;
    result.map(|()| outcome)
}

/// Like [`run_sim`] but returns the outcome even when the run did not finish; the outer error
/// is for a run that could not start (bad variant, unknown instance).
pub fn simulate(
    topology: Arc<Topology>,
    variant: Variant,
    content: Bytes,
    opts: &SimOptions,
) -> anyhow::Result<(SimOutcome, anyhow::Result<()>)> {
    variant.validate().map_err(|e| anyhow!(e))?;
    let mut sim = Sim::new(topology, variant, opts)?;
    let client_a = sim
        .index_of("client-a")
        .ok_or_else(|| anyhow!("the topology has no client-a"))?;
    sim.feed(client_a, Input::Send { content });
    let result = sim.run();
    Ok(sim.finish(result))
}

// ---------------------------------------------------------------------------- randomness

/// SplitMix64: tiny, fast, and stable forever (unlike a library generator whose stream may
/// change between versions), so a seed names the same run tomorrow.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(n) => lo + self.below(n),
            None => self.next_u64(),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The seed of node `name`'s identifiers in a run seeded with `seed`: distinct per node, and
/// the same in every run with that seed.
fn node_seed(seed: u64, name: &str) -> u64 {
    let mut h = Fnv::new();
    h.bytes(name.as_bytes());
    seed ^ h.0
}

/// FNV-1a, 64 bits: a stable hash for the trace (std's hasher is seeded per process).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= x as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------- the network

/// A piece of one direction of an MSRP connection.
#[derive(Debug)]
enum Piece {
    Data(Bytes),
    Fin,
}

/// One side of a simulated MSRP connection.
#[derive(Debug)]
struct End {
    node: usize,
    /// The node's id for the connection (`None` at the accepting side until accepted).
    conn: Option<ConnId>,
    /// This side's socket address (the opener's is an ephemeral port).
    addr: SocketAddr,
    /// The node may write: it got Connected / Accepted.
    connected: bool,
    /// The node asked to close before the connection was up.
    close_pending: bool,
    /// A FIN is scheduled from this side; later writes are dropped.
    write_closed: bool,
    /// This side's node got Closed.
    read_closed: bool,
    paused: bool,
    /// Arrived, not yet read.
    inbox: VecDeque<Piece>,
    read_scheduled: bool,
}

impl End {
    fn new(node: usize, conn: Option<ConnId>, addr: SocketAddr) -> End {
        End {
            node,
            conn,
            addr,
            connected: false,
            close_pending: false,
            write_closed: false,
            read_closed: false,
            paused: false,
            inbox: VecDeque::new(),
            read_scheduled: false,
        }
    }
}

/// A simulated MSRP connection: side 0 opened it, side 1 accepted it.
#[derive(Debug)]
struct Link {
    ends: [End; 2],
    /// Per direction (by the writing side): when its last piece is due.
    last: [Duration; 2],
    /// Per direction: bytes written, read by the peer node, and reported flushed.
    written: [u64; 2],
    read: [u64; 2],
    credited: [u64; 2],
}

#[derive(Debug)]
enum Event {
    Sip {
        to: usize,
        transport: Transport,
        from: SocketAddr,
        raw: Bytes,
    },
    /// The connection reaches the accepting node.
    Accept { link: usize },
    /// The opener learns the connection is up.
    Connected { link: usize },
    ConnectFailed {
        node: usize,
        conn: ConnId,
        reason: String,
    },
    /// A piece lands in the inbox of side `to` of `link`.
    Arrive {
        link: usize,
        to: usize,
        piece: Piece,
    },
    /// Side `side` of `link` reads what has arrived.
    Read { link: usize, side: usize },
    /// The writer at `side` of `link` learns that bytes left its socket buffer.
    Credit { link: usize, side: usize },
}

struct Scheduled {
    at: Duration,
    seq: u64,
    ev: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct SimNode {
    name: String,
    node: Node,
    sip: SocketAddr,
    expected: usize,
    ended: usize,
    /// The node's connection id → (link, side).
    ends: HashMap<ConnId, (usize, usize)>,
}

/// A member's content as delivered: bytes at their offsets.
#[derive(Default)]
struct Assembly {
    data: Vec<u8>,
    /// Covered ranges `[start, end)`, merged when checked.
    covered: Vec<(u64, u64)>,
    delivered: Option<u64>,
}

struct Sim {
    opts: SimOptions,
    base: Instant,
    now: Duration,
    rng: SplitMix64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<SimNode>,
    by_sip: HashMap<SocketAddr, usize>,
    by_msrp: HashMap<SocketAddr, usize>,
    links: Vec<Link>,
    /// SIP/TCP: when the last message of each (sender, receiver) stream is due.
    sip_tcp_last: HashMap<(usize, usize), Duration>,
    assembly: BTreeMap<String, Assembly>,
    outcome: SimOutcome,
    trace: Fnv,
    wire: Option<Recorder>,
    /// The next ephemeral port per local IP.
    next_port: HashMap<std::net::IpAddr, u16>,
    /// [`SimOptions::sip_holds`] not used yet.
    sip_holds: Vec<SipHold>,
}

/// Steps allowed after every instance finished, to let in-flight deliveries land.
const DRAIN_STEPS: u64 = 100_000;

impl Sim {
    fn new(topology: Arc<Topology>, variant: Variant, opts: &SimOptions) -> anyhow::Result<Sim> {
        // Any instant will do: nodes see only `base` plus virtual time.
        let base = crate::clock::now();
        let mut nodes = Vec::new();
        let mut by_sip = HashMap::new();
        let mut by_msrp = HashMap::new();
        for inst in topology.instances() {
            let mut cfg = NodeConfig::new(topology.clone(), &inst.name, variant.clone())
                .ok_or_else(|| anyhow!("instance {} not in topology", inst.name))?;
            cfg.timers = opts.timers;
            cfg.holds = opts.holds.scenario();
            if let Some(h) = opts.high_water {
                cfg.high_water = h;
            }
            let idx = nodes.len();
            if by_sip.insert(inst.sip, idx).is_some() || by_msrp.insert(inst.msrp, idx).is_some() {
                return Err(anyhow!("address of {} used twice", inst.name));
            }
            let seed = node_seed(opts.seed, &inst.name);
            nodes.push(SimNode {
                expected: sessions_per_instance(&topology, &inst.name),
                name: inst.name,
                node: Node::new(
                    cfg,
                    Start {
                        now: base,
                        wall: SystemTime::UNIX_EPOCH + Duration::from_secs(SIM_EPOCH_SECS),
                        seed,
                    },
                ),
                sip: inst.sip,
                ended: 0,
                ends: HashMap::new(),
            });
        }
        Ok(Sim {
            sip_holds: opts.sip_holds.clone(),
            opts: opts.clone(),
            base,
            now: Duration::ZERO,
            rng: SplitMix64(opts.seed),
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            by_sip,
            by_msrp,
            links: Vec::new(),
            sip_tcp_last: HashMap::new(),
            assembly: BTreeMap::new(),
            outcome: SimOutcome::default(),
            trace: Fnv::new(),
            wire: opts.record_wire.then(|| Recorder::new(base)),
            next_port: HashMap::new(),
        })
    }

    /// Records `ev` at the current virtual time, as seen by one end.
    fn wire(&self, seen: Seen, ev: WireEvent) {
        if let Some(w) = &self.wire {
            w.record_at(self.now, seen, ev);
        }
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    fn delay(&mut self) -> Duration {
        let lo = self.opts.min_delay.as_nanos().min(u64::MAX as u128) as u64;
        let hi = self.opts.max_delay.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(self.rng.between(lo, hi.max(lo)))
    }

    fn schedule(&mut self, at: Duration, ev: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn sim_warn(&mut self, s: String) {
        self.outcome.warnings.push(format!("sim: {s}"));
    }

    fn all_done(&self) -> bool {
        self.nodes.iter().all(|n| n.ended >= n.expected)
    }

    /// The earliest node timer (ties: the lowest node index).
    fn next_timer(&self) -> Option<(Duration, usize)> {
        let mut best: Option<(Duration, usize)> = None;
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(t) = n.node.poll_timeout() {
                let at = t.saturating_duration_since(self.base);
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, i));
                }
            }
        }
        best
    }

    fn run(&mut self) -> anyhow::Result<()> {
        loop {
            if self.all_done() {
                self.drain();
                return Ok(());
            }
            if self.outcome.steps >= self.opts.max_steps {
                return Err(self.stuck(format!("step limit {} reached", self.opts.max_steps)));
            }
            let timer = self.next_timer();
            let event_at = self.queue.peek().map(|Reverse(s)| s.at);
            let (at, timer_node) = match (timer, event_at) {
                (None, None) => {
                    return Err(
                        self.stuck("nothing left to happen (no deliveries, no timers)".into())
                    )
                }
                (Some((t, n)), Some(e)) if t <= e => (t, Some(n)),
                (Some((t, n)), None) => (t, Some(n)),
                (_, Some(e)) => (e, None),
            };
            if at > self.opts.virtual_timeout {
                return Err(self.stuck(format!(
                    "virtual time limit {:?} reached",
                    self.opts.virtual_timeout
                )));
            }
            self.now = self.now.max(at);
            self.outcome.steps += 1;
            match timer_node {
                Some(n) => {
                    let now = self.instant();
                    self.nodes[n].node.handle_timeout(now);
                    self.drain_outputs(n);
                }
                None => {
                    let Reverse(s) = self.queue.pop().expect("peeked");
                    self.handle(s.ev);
                }
            }
        }
    }

    /// After everyone finished: let what is in flight land, firing no timers.
    fn drain(&mut self) {
        let limit = self.outcome.steps + DRAIN_STEPS;
        while let Some(Reverse(s)) = self.queue.pop() {
            if self.outcome.steps >= limit {
                self.sim_warn(format!(
                    "deliveries still in flight after {DRAIN_STEPS} drain steps"
                ));
                return;
            }
            self.now = self.now.max(s.at);
            self.outcome.steps += 1;
            self.handle(s.ev);
        }
    }

    fn stuck(&self, why: String) -> anyhow::Error {
        let missing: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.ended < n.expected)
            .map(|n| {
                format!(
                    "{} ({}/{} sessions ended, {} active)",
                    n.name,
                    n.ended,
                    n.expected,
                    n.node.active_sessions()
                )
            })
            .collect();
        let mut s = format!(
            "seed {}: {why} at virtual {:?} after {} steps; sessions not ended at: {}",
            self.opts.seed,
            self.now,
            self.outcome.steps,
            missing.join(", ")
        );
        if !self.outcome.warnings.is_empty() {
            s.push_str("\nwarnings:");
            for w in self.outcome.warnings.iter().take(30) {
                let _ = write!(s, "\n  {w}");
            }
        }
        let open = self.open_links();
        if !open.is_empty() {
            let _ = write!(s, "\nopen MSRP connections: {}", open.join("; "));
        }
        anyhow!(s)
    }

    fn open_links(&self) -> Vec<String> {
        self.links
            .iter()
            .filter(|l| !(l.ends[0].read_closed && l.ends[1].read_closed))
            .map(|l| {
                let side = |e: &End| {
                    let mut s = format!(
                        "{}#{}",
                        self.nodes[e.node].name,
                        e.conn.map(|c| c.to_string()).unwrap_or("-".into())
                    );
                    if e.write_closed {
                        s.push_str(" (FIN sent)");
                    }
                    if e.paused {
                        s.push_str(" (paused)");
                    }
                    if !e.inbox.is_empty() {
                        let _ = write!(s, " ({} unread pieces)", e.inbox.len());
                    }
                    s
                };
                format!("{} -> {}", side(&l.ends[0]), side(&l.ends[1]))
            })
            .collect()
    }

    fn finish(mut self, result: anyhow::Result<()>) -> (SimOutcome, anyhow::Result<()>) {
        let mut warnings = Vec::new();
        for (member, a) in std::mem::take(&mut self.assembly) {
            let mut cov = a.covered.clone();
            cov.sort_unstable();
            let mut contiguous_to = 0u64;
            for (s, e) in cov {
                if s > contiguous_to {
                    break;
                }
                contiguous_to = contiguous_to.max(e);
            }
            let bytes = a.delivered.unwrap_or(contiguous_to);
            let complete =
                a.delivered.is_some() && contiguous_to >= bytes && a.data.len() as u64 >= bytes;
            if a.delivered.is_some() && !complete {
                warnings.push(format!("sim: {member} reported Delivered {bytes} bytes but only 0..{contiguous_to} arrived"));
            }
            let upto = (bytes as usize).min(a.data.len());
            let sha256 = sha256_hex(&a.data[..upto]);
            self.outcome.received.insert(
                member,
                Received {
                    bytes,
                    sha256,
                    complete,
                },
            );
        }
        self.outcome.warnings.extend(warnings);
        self.outcome.open_links = self.open_links();
        self.outcome.virtual_elapsed = self.now;
        self.outcome.trace_hash = self.trace.0;
        if let Some(w) = &self.wire {
            self.outcome.records = w.records();
        }
        (self.outcome, result)
    }

    // ------------------------------------------------------------------------ feeding nodes

    fn feed(&mut self, n: usize, input: Input) {
        if self.opts.keep_trace {
            let detail = match &input {
                Input::Sip { from, msg, .. } => format!("{} from {from}", msg.summary()),
                Input::MsrpData { conn, data } => format!("#{conn} data {} bytes", data.len()),
                Input::MsrpFlushed { conn, bytes } => format!("#{conn} flushed {bytes}"),
                Input::Send { content } => format!("send {} bytes", content.len()),
                other => format!("{other:?}"),
            };
            let node = self.nodes[n].name.clone();
            self.outcome.trace.push(TraceEntry {
                at: self.now,
                node,
                kind: "input",
                detail,
            });
        }
        let now = self.instant();
        self.nodes[n].node.handle_input(now, input);
        self.drain_outputs(n);
    }

    /// The drain rule: every output, in order, until there are none.
    fn drain_outputs(&mut self, n: usize) {
        while let Some(out) = self.nodes[n].node.poll_output() {
            self.record(n, &out);
            self.carry_out(n, out);
        }
    }

    fn record(&mut self, n: usize, out: &Output) {
        let (kind, code, size): (&'static str, u64, u64) = match out {
            Output::Sip { msg, .. } => {
                let code = match (msg.method(), msg.code()) {
                    (Some(m), _) => m
                        .as_str()
                        .bytes()
                        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64)),
                    (None, Some(c)) => c as u64,
                    _ => 0,
                };
                ("sip", code, 0)
            }
            Output::Connect { conn, .. } => ("connect", *conn, 0),
            Output::MsrpWrite { conn, data } => ("write", *conn, data.len() as u64),
            Output::PauseRead { conn } => ("pause", *conn, 0),
            Output::ResumeRead { conn } => ("resume", *conn, 0),
            Output::Close { conn } => ("close", *conn, 0),
            Output::Event(e) => {
                let (c, s) = match e {
                    NodeEvent::Data { offset, data, .. } => {
                        (1, offset ^ ((data.len() as u64) << 40))
                    }
                    NodeEvent::Delivered { bytes, .. } => (2, *bytes),
                    NodeEvent::SessionEnded { ok, .. } => (3, *ok as u64),
                    NodeEvent::Warning(_) => (4, 0),
                };
                ("event", c, s)
            }
        };
        self.trace.u64(self.now.as_nanos() as u64);
        self.trace.u64(n as u64);
        self.trace.bytes(kind.as_bytes());
        self.trace.u64(code);
        self.trace.u64(size);
        if self.opts.keep_trace {
            let detail = match out {
                Output::Sip { to, msg, .. } => format!("{} -> {to}", msg.summary()),
                Output::Connect { conn, to, .. } => format!("#{conn} -> {to}"),
                Output::MsrpWrite { conn, data } => format!("#{conn} {} bytes", data.len()),
                Output::PauseRead { conn }
                | Output::ResumeRead { conn }
                | Output::Close { conn } => format!("#{conn}"),
                Output::Event(NodeEvent::Data { offset, data, .. }) => {
                    format!("data {offset}+{}", data.len())
                }
                Output::Event(e) => format!("{e:?}"),
            };
            let node = self.nodes[n].name.clone();
            self.outcome.trace.push(TraceEntry {
                at: self.now,
                node,
                kind,
                detail,
            });
        }
    }

    fn carry_out(&mut self, n: usize, out: Output) {
        match out {
            Output::Sip { transport, to, msg } => self.send_sip(n, transport, to, msg),
            Output::Connect {
                conn, local_ip, to, ..
            } => self.connect(n, conn, local_ip, to),
            Output::MsrpWrite { conn, data } => self.write(n, conn, data),
            Output::PauseRead { conn } => {
                if let Some(&(link, side)) = self.nodes[n].ends.get(&conn) {
                    self.links[link].ends[side].paused = true;
                    self.outcome.stats.pauses += 1;
                }
            }
            Output::ResumeRead { conn } => {
                if let Some(&(link, side)) = self.nodes[n].ends.get(&conn) {
                    self.links[link].ends[side].paused = false;
                    self.schedule_read(link, side);
                }
            }
            Output::Close { conn } => self.close(n, conn),
            Output::Event(e) => self.on_event(n, e),
        }
    }

    fn on_event(&mut self, n: usize, e: NodeEvent) {
        match e {
            NodeEvent::Data {
                member,
                offset,
                data,
                ..
            } => {
                let a = self.assembly.entry(member.clone()).or_default();
                let start = offset as usize;
                let end = start + data.len();
                if a.data.len() < end {
                    a.data.resize(end, 0);
                }
                // Bytes given twice must be the same bytes.
                let overlap = a
                    .covered
                    .iter()
                    .any(|&(s, e)| (s as usize) < end && start < e as usize);
                let conflict = overlap && a.data[start..end] != data[..];
                a.data[start..end].copy_from_slice(&data);
                a.covered.push((offset, end as u64));
                if conflict {
                    self.sim_warn(format!(
                        "{member} got different bytes twice for {start}..{end}"
                    ));
                }
            }
            NodeEvent::Delivered { member, bytes, .. } => {
                let a = self.assembly.entry(member.clone()).or_default();
                if a.delivered.replace(bytes).is_some() {
                    self.sim_warn(format!("{member}: content delivered twice"));
                }
            }
            NodeEvent::SessionEnded { ok, detail, .. } => {
                let name = self.nodes[n].name.clone();
                self.nodes[n].ended += 1;
                if ok {
                    *self.outcome.ended_ok.entry(name).or_default() += 1;
                } else {
                    self.outcome.warnings.push(format!("{name}: {detail}"));
                    *self.outcome.ended_bad.entry(name).or_default() += 1;
                }
            }
            NodeEvent::Warning(w) => self.outcome.warnings.push(w),
        }
    }

    // ------------------------------------------------------------------------ SIP

    fn send_sip(&mut self, n: usize, transport: Transport, to: SocketAddr, msg: SipMessage) {
        self.outcome.stats.sip_sent += 1;
        let Some(&dest) = self.by_sip.get(&to) else {
            let s = format!(
                "{} sent {} to {to}, where no node listens; dropped",
                self.nodes[n].name,
                msg.summary()
            );
            self.sim_warn(s);
            return;
        };
        let from = self.nodes[n].sip;
        self.wire(
            Seen::Sent,
            WireEvent::Sip {
                transport,
                from,
                to,
                raw: msg.raw.clone(),
            },
        );
        let mut delay = self.delay();
        let name = &self.nodes[n].name;
        let summary = msg.summary();
        if let Some(i) = self
            .sip_holds
            .iter()
            .position(|h| &h.node == name && summary.starts_with(&h.starts_with))
        {
            delay += self.sip_holds.remove(i).by;
        }
        let at = match transport {
            Transport::Udp => {
                if self.rng.chance(self.opts.udp_loss) {
                    self.outcome.stats.sip_dropped += 1;
                    if self.opts.keep_trace {
                        let node = self.nodes[n].name.clone();
                        let detail = format!("{} -> {to} lost", msg.summary());
                        self.outcome.trace.push(TraceEntry {
                            at: self.now,
                            node,
                            kind: "drop",
                            detail,
                        });
                    }
                    return;
                }
                self.now + delay
            }
            // The simulator has no TLS: a TLS hop is simulated as the TCP it runs over.
            Transport::Tcp | Transport::Tls => {
                let last = self.sip_tcp_last.entry((n, dest)).or_default();
                let at = (*last).max(self.now + delay);
                *last = at;
                at
            }
        };
        self.schedule(
            at,
            Event::Sip {
                to: dest,
                transport,
                from,
                raw: msg.raw,
            },
        );
    }

    // ------------------------------------------------------------------------ MSRP

    fn connect(&mut self, n: usize, conn: ConnId, local_ip: std::net::IpAddr, to: SocketAddr) {
        let delay = self.delay();
        let Some(&target) = self.by_msrp.get(&to) else {
            self.schedule(
                self.now + delay,
                Event::ConnectFailed {
                    node: n,
                    conn,
                    reason: format!("connection refused by {to}"),
                },
            );
            return;
        };
        // Ephemeral ports are per IP, as a kernel hands them out: entities may share an IP.
        let next = self.next_port.entry(local_ip).or_insert(49152);
        let port = *next;
        *next = port.checked_add(1).unwrap_or(49152);
        let local = SocketAddr::new(local_ip, port);
        let link = self.links.len();
        self.links.push(Link {
            ends: [End::new(n, Some(conn), local), End::new(target, None, to)],
            last: [Duration::ZERO; 2],
            written: [0; 2],
            read: [0; 2],
            credited: [0; 2],
        });
        if self.nodes[n].ends.insert(conn, (link, 0)).is_some() {
            let s = format!(
                "{} reused connection id {conn} for a new connection",
                self.nodes[n].name
            );
            self.sim_warn(s);
        }
        self.outcome.stats.connections += 1;
        self.schedule(self.now + delay, Event::Accept { link });
    }

    fn write(&mut self, n: usize, conn: ConnId, data: Bytes) {
        let Some(&(link, side)) = self.nodes[n].ends.get(&conn) else {
            let s = format!(
                "{} wrote {} bytes on unknown connection {conn}; dropped",
                self.nodes[n].name,
                data.len()
            );
            self.sim_warn(s);
            return;
        };
        let e = &self.links[link].ends[side];
        if !e.connected || e.write_closed || e.close_pending {
            let why = if e.connected {
                "after closing it"
            } else {
                "before it was connected"
            };
            let s = format!(
                "{} wrote {} bytes on connection {conn} {why}; dropped",
                self.nodes[n].name,
                data.len()
            );
            self.sim_warn(s);
            return;
        }
        if data.is_empty() {
            return;
        }
        self.outcome.stats.msrp_bytes += data.len() as u64;
        let (from, to) = (
            self.links[link].ends[side].addr,
            self.links[link].ends[1 - side].addr,
        );
        self.wire(
            Seen::Sent,
            WireEvent::TcpData {
                from,
                to,
                data: data.clone(),
            },
        );
        let pieces = if self.opts.split_writes && data.len() > 1 {
            1 + self.rng.below(4) as usize
        } else {
            1
        };
        let mut cuts: Vec<usize> = (1..pieces)
            .map(|_| self.rng.between(1, data.len() as u64 - 1) as usize)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut start = 0;
        for end in cuts.into_iter().chain(std::iter::once(data.len())) {
            let piece = data.slice(start..end);
            start = end;
            self.send_piece(link, side, Piece::Data(piece));
        }
        self.links[link].written[side] += data.len() as u64;
        self.schedule_credit(link, side);
    }

    /// Reports bytes written at `side` as flushed once they fit in the socket buffer; an
    /// event of its own, as the writer may be in the middle of draining its outputs.
    fn schedule_credit(&mut self, link: usize, side: usize) {
        let l = &self.links[link];
        let target = l.written[side].min(l.read[side] + self.opts.socket_buffer as u64);
        if target > l.credited[side] {
            self.schedule(self.now, Event::Credit { link, side });
        }
    }

    /// Schedules a piece from `side` to the other side, after the earlier pieces.
    fn send_piece(&mut self, link: usize, side: usize, piece: Piece) {
        let delay = self.delay();
        let at = self.links[link].last[side].max(self.now + delay);
        self.links[link].last[side] = at;
        if matches!(piece, Piece::Data(_)) {
            self.outcome.stats.msrp_pieces += 1;
        }
        self.schedule(
            at,
            Event::Arrive {
                link,
                to: 1 - side,
                piece,
            },
        );
    }

    fn close(&mut self, n: usize, conn: ConnId) {
        let Some(&(link, side)) = self.nodes[n].ends.get(&conn) else {
            // Like the real driver: closing a connection it does not know is a no-op.
            return;
        };
        let e = &mut self.links[link].ends[side];
        if e.write_closed {
            return;
        }
        if !e.connected {
            e.close_pending = true;
            return;
        }
        e.write_closed = true;
        // The real driver forgets a connection it closed: it no longer pauses it.
        e.paused = false;
        let (from, to) = (
            self.links[link].ends[side].addr,
            self.links[link].ends[1 - side].addr,
        );
        self.wire(Seen::Sent, WireEvent::TcpClose { from, to });
        self.send_piece(link, side, Piece::Fin);
        self.schedule_read(link, side);
    }

    fn schedule_read(&mut self, link: usize, side: usize) {
        let e = &self.links[link].ends[side];
        if e.paused || e.read_scheduled || e.inbox.is_empty() || e.read_closed {
            return;
        }
        let latency = self
            .rng
            .below(self.opts.max_delay.as_nanos().min(u64::MAX as u128) as u64 / 4 + 1);
        self.links[link].ends[side].read_scheduled = true;
        self.schedule(
            self.now + Duration::from_nanos(latency),
            Event::Read { link, side },
        );
    }

    // ------------------------------------------------------------------------ events

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Sip {
                to,
                transport,
                from,
                raw,
            } => match SipMessage::parse(&raw) {
                Ok(msg) => {
                    self.wire(
                        Seen::Received,
                        WireEvent::Sip {
                            transport,
                            from,
                            to: self.nodes[to].sip,
                            raw: raw.clone(),
                        },
                    );
                    self.feed(
                        to,
                        Input::Sip {
                            transport,
                            from,
                            msg: Box::new(msg),
                        },
                    )
                }
                Err(e) => {
                    let s = format!(
                        "{} got an unparseable SIP message from {from}: {e}",
                        self.nodes[to].name
                    );
                    self.sim_warn(s);
                }
            },
            Event::Accept { link } => {
                let target = self.links[link].ends[1].node;
                let conn = self.nodes[target].node.new_conn_id();
                if self.nodes[target].ends.insert(conn, (link, 1)).is_some() {
                    let s = format!(
                        "{} handed out connection id {conn} twice",
                        self.nodes[target].name
                    );
                    self.sim_warn(s);
                }
                let peer = self.links[link].ends[0].addr;
                let local = self.links[link].ends[1].addr;
                self.wire(
                    Seen::Received,
                    WireEvent::TcpOpen {
                        conn: (peer, local),
                        opener: peer,
                    },
                );
                {
                    let l = &mut self.links[link];
                    l.ends[1].conn = Some(conn);
                    l.ends[1].connected = true;
                }
                let delay = self.delay();
                let connected_at = self.now + delay;
                // Nothing from the acceptor reaches the opener before the opener is connected.
                self.links[link].last = [self.now, connected_at];
                self.schedule(connected_at, Event::Connected { link });
                self.feed(target, Input::Accepted { conn, peer });
            }
            Event::Connected { link } => {
                let (n, conn, local, close) = {
                    let e = &mut self.links[link].ends[0];
                    e.connected = true;
                    (
                        e.node,
                        e.conn.expect("opener has its id"),
                        e.addr,
                        e.close_pending,
                    )
                };
                let peer = self.links[link].ends[1].addr;
                self.wire(
                    Seen::Sent,
                    WireEvent::TcpOpen {
                        conn: (local, peer),
                        opener: local,
                    },
                );
                if close {
                    self.close(n, conn);
                }
                self.feed(n, Input::Connected { conn, local });
            }
            Event::ConnectFailed { node, conn, reason } => {
                self.feed(node, Input::ConnectFailed { conn, reason })
            }
            Event::Arrive { link, to, piece } => {
                self.links[link].ends[to].inbox.push_back(piece);
                self.schedule_read(link, to);
            }
            Event::Read { link, side } => self.read(link, side),
            Event::Credit { link, side } => {
                let l = &mut self.links[link];
                let target = l.written[side].min(l.read[side] + self.opts.socket_buffer as u64);
                if target > l.credited[side] {
                    let bytes = (target - l.credited[side]) as usize;
                    l.credited[side] = target;
                    let e = &l.ends[side];
                    if let Some(conn) = e.conn {
                        let n = e.node;
                        self.feed(n, Input::MsrpFlushed { conn, bytes });
                    }
                }
            }
        }
    }

    /// The node at `side` reads a random amount of what has arrived (then the FIN, if next).
    fn read(&mut self, link: usize, side: usize) {
        self.links[link].ends[side].read_scheduled = false;
        if self.links[link].ends[side].paused || self.links[link].ends[side].read_closed {
            return;
        }
        let cap = if self.opts.split_writes {
            match self.rng.below(4) {
                0 => 1 + self.rng.below(16) as usize,
                1 => 1 + self.rng.below(512) as usize,
                2 => 1 + self.rng.below(8192) as usize,
                _ => usize::MAX,
            }
        } else {
            usize::MAX
        };
        let mut parts: Vec<Bytes> = Vec::new();
        let mut got = 0usize;
        {
            let e = &mut self.links[link].ends[side];
            while got < cap {
                match e.inbox.front_mut() {
                    Some(Piece::Data(d)) => {
                        let take = d.len().min(cap - got);
                        parts.push(d.split_to(take));
                        got += take;
                        if d.is_empty() {
                            e.inbox.pop_front();
                        }
                    }
                    _ => break,
                }
            }
        }
        let (n, conn) = {
            let e = &self.links[link].ends[side];
            (e.node, e.conn.expect("a side that reads has its id"))
        };
        if got > 0 {
            let data = if parts.len() == 1 {
                parts.pop().expect("one part")
            } else {
                let mut v = Vec::with_capacity(got);
                for p in &parts {
                    v.extend_from_slice(p);
                }
                Bytes::from(v)
            };
            self.outcome.stats.msrp_reads += 1;
            let (from, to) = (
                self.links[link].ends[1 - side].addr,
                self.links[link].ends[side].addr,
            );
            self.wire(
                Seen::Received,
                WireEvent::TcpData {
                    from,
                    to,
                    data: data.clone(),
                },
            );
            self.feed(n, Input::MsrpData { conn, data });
            // Room in the writer's socket buffer.
            self.links[link].read[1 - side] += got as u64;
            self.schedule_credit(link, 1 - side);
        }
        let e = &self.links[link].ends[side];
        if !e.paused && matches!(e.inbox.front(), Some(Piece::Fin)) {
            self.links[link].ends[side].inbox.pop_front();
            self.links[link].ends[side].read_closed = true;
            let (from, to) = (
                self.links[link].ends[1 - side].addr,
                self.links[link].ends[side].addr,
            );
            self.wire(Seen::Received, WireEvent::TcpClose { from, to });
            self.feed(
                n,
                Input::Closed {
                    conn,
                    reason: "closed by peer".into(),
                },
            );
            // The real driver drops its writer on EOF, which sends our FIN in turn.
            let e = &mut self.links[link].ends[side];
            if !e.write_closed && e.connected {
                e.write_closed = true;
                let (from, to) = (
                    self.links[link].ends[side].addr,
                    self.links[link].ends[1 - side].addr,
                );
                self.wire(Seen::Sent, WireEvent::TcpClose { from, to });
                self.send_piece(link, side, Piece::Fin);
            }
            return;
        }
        self.schedule_read(link, side);
    }
}
