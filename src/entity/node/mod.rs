//! One entity instance as a sans-IO state machine: SIP transactions and dialogs (B2BUA legs),
//! SDP offer/answer with the node's own MSRP parameters per leg, MSRP links (open, bind,
//! reuse), streaming relay with fan-out (x serves members in turns that fit the
//! `fanout-window`) and backpressure (per leg, decided incrementally), delivery and BYE
//! teardown.
//!
//! Vocabulary: a *call* is one group session at this node; it has at most one *up* leg (the
//! dialog whose INVITE this node received) and any number of *down* legs (dialogs this node
//! started). client-a has only a down leg, client-b only an up leg, x one down leg per member.
//!
//! # Layout
//! The rules every role shares are split by concern; what differs by role is asked of the
//! node's [`role::Rules`], one file per role.
//!
//! | module | owns |
//! | --- | --- |
//! | this file | [`Node`], [`NodeConfig`], [`Start`]; the public calls; outputs, warnings, faults |
//! | `state` | what is kept per leg, call and connection; a leg's dialog state named after what it awaits |
//! | `sdp` | the node's own MSRP parameters per leg; who opens a link (preset, or `a=setup`) |
//! | `signalling` | SIP: INVITE, 100, 200, ACK, BYE of both sides; dialogs, route sets, transports |
//! | `timers` | SIP timers A/B, 2xx retransmission, BYE E/F, the 30 s MSRP response timer, held actions |
//! | `link` | opening a link when its trigger fires, reusing a connection, the binding SEND |
//! | `relay` | MSRP in (parse, match the session, answer) and out (per-leg queues, one message at a time per connection, streaming relay) |
//! | `backpressure` | pausing an upstream link while a leg it feeds is over the high-water mark |
//! | `teardown` | BYE once a leg is done, the end of a call, closing sessions and idle links, lost links |
//! | `role` | the questions a node asks its role; `client_a` (sending), `pf` (pf-a, pf-b), `x` (members, fan-out, turns), `client_b` (delivery) |

mod backpressure;
mod link;
mod relay;
mod role;
mod sdp;
mod signalling;
mod state;
mod teardown;
mod timers;

pub use signalling::sip_uri_addr;

use super::{ConnId, Fault, Holds, Input, NodeEvent, Output};
use crate::codec::msrp::new_ident;
use crate::codec::sip::{SipMessage, Transport};
use crate::config::{ReportTiming, Variant};
use crate::limits::Limits;
use crate::topology::{Role, Topology};
use rand::rngs::StdRng;
use rand::SeedableRng;
use role::x::Admit;
use state::{Ack, Call, CallIdx, Conn, DialogState, Held, Leg, LegIdx, Opens, Side};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use timers::TimerEntry;

/// RFC 3261 timer base values.
#[derive(Debug, Clone, Copy)]
pub struct SipTimers {
    pub t1: Duration,
    pub t2: Duration,
    /// How long an INVITE client transaction waits for a final response before it gives up
    /// (Timer B, RFC 3261 §17.1.1.2): 64·T1 when unset. The reference SUT's
    /// `--invite-timeout-ms` shortens it so that a member that never answers costs the
    /// default run about a second, not 32 s.
    pub invite_timeout: Option<Duration>,
}

impl SipTimers {
    /// Timer B.
    pub fn timer_b(&self) -> Duration {
        self.invite_timeout.unwrap_or(self.t1 * 64)
    }
}

impl Default for SipTimers {
    fn default() -> Self {
        SipTimers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            invite_timeout: None,
        }
    }
}

/// Everything a node needs to know, fixed for its lifetime.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub role: Role,
    /// Instance name from the topology.
    pub name: String,
    pub sip: SocketAddr,
    pub msrp: SocketAddr,
    pub topology: Arc<Topology>,
    pub variant: Variant,
    pub timers: SipTimers,
    /// Bytes queued towards one leg above which the node stops reading the upstream link.
    pub high_water: usize,
    /// Ordering choices and pauses (the harness as impersonator); empty for the SUT.
    pub holds: Holds,
    /// Deliberate deviations (the reference SUT's `--fault`).
    pub faults: Vec<Fault>,
    /// What a peer may make this node buffer (MSRP head and chunk sizes), and x's fan-out
    /// window.
    pub limits: Limits,
    /// Adds the test-control header [`VARIANT_HEADER`] (the call's variant,
    /// [`Variant::header_value`]) to every INVITE it sends: the harness's entities when the
    /// profile declares `variant-header: true`, and the reference SUT's per-call mode, which
    /// copies it downstream.
    pub variant_header: bool,
    /// The reference SUT's per-call mode (`sut --variant per-call`): a call takes its variant
    /// from the [`VARIANT_HEADER`] of the INVITE that starts it (client-a: from
    /// [`Input::SendAs`]); `variant` applies to calls without one.
    pub per_call_variant: bool,
    /// When a middle entity sends the success REPORT its upstream asked for (RFC 4975
    /// §7.1.2): once downstream reported delivery (default), or as soon as the whole message
    /// arrived (`sut --report-timing on-receipt`).
    pub report_timing: ReportTiming,
}

/// The reference SUT's test hook: the variant of a call, on the INVITEs of the harness's
/// entities (`variant-header: true` in a profile) and of the reference SUT in per-call mode.
/// A vendor's SUT never sees it.
pub const VARIANT_HEADER: &str = "X-Cpm-Variant";

impl NodeConfig {
    pub fn new(topology: Arc<Topology>, name: &str, variant: Variant) -> Option<NodeConfig> {
        let inst = topology.instance(name)?;
        Some(NodeConfig {
            role: inst.role,
            name: inst.name,
            sip: inst.sip,
            msrp: inst.msrp,
            topology,
            variant,
            timers: SipTimers::default(),
            // x's down legs share one copy of the message (the same buffers): a deep queue
            // costs it little. Every leg of a participating function holds its own copy, and a
            // pf-b serves hundreds of members: a shallow one (the kernel's socket buffers do
            // the rest).
            high_water: if inst.role == Role::X {
                std::env::var("XHW")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(4 << 20)
            } else {
                64 << 10
            },
            holds: Holds::default(),
            faults: Vec::new(),
            limits: Limits::default(),
            variant_header: false,
            per_call_variant: false,
            report_timing: ReportTiming::default(),
        })
    }
}

/// What a node is given at its start besides its configuration: apart from the `now` of each
/// call, the only time and randomness it ever sees.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// The monotonic time of the start.
    pub now: Instant,
    /// The wall-clock time at `now`: a message sent at monotonic time `t` is stamped (CPIM
    /// `DateTime`) `wall + (t - now)`.
    pub wall: SystemTime,
    /// Seeds the generator every identifier of the node is drawn from.
    pub seed: u64,
}

/// The state machine of one entity instance. See the module docs of [`crate::entity`] for
/// the order in which to call its methods.
pub struct Node {
    cfg: NodeConfig,
    /// What the node's role decides (one of the files under `role/`).
    rules: &'static dyn role::Rules,
    /// Boxed: x holds thousands, and a vector of them grows by doubling (and copying).
    #[allow(clippy::vec_box)]
    legs: Vec<Box<Leg>>,
    calls: Vec<Call>,
    /// Calls not ended yet, so a scan across calls (an idle connection another call's session
    /// may still reuse) does not grow with every call a long-running node has seen.
    live_calls: BTreeSet<CallIdx>,
    /// (Call-ID, local tag) → leg, for in-dialog requests and responses.
    dialogs: HashMap<(String, String), LegIdx>,
    /// (Call-ID, From tag) of INVITEs received → leg, to absorb retransmissions.
    invites_in: HashMap<(String, String), LegIdx>,
    /// Local MSRP session-id → leg.
    /// Legs by their local session-id (several only under [`Fault::ConstantSessionId`]).
    sessions: HashMap<String, Vec<LegIdx>>,
    /// Boxed: a map allocates room for several entries at once, and a member node has one.
    conns: state::FastMap<ConnId, Box<Conn>>,
    next_conn: ConnId,
    next_session: u64,
    timers: BinaryHeap<Reverse<TimerEntry>>,
    timer_seq: u64,
    out: VecDeque<Output>,
    now: Instant,
    /// The monotonic and wall-clock times of the start (CPIM `DateTime`).
    start: Start,
    /// Every identifier the node makes is drawn from here, seeded by [`Start::seed`].
    rng: StdRng,
    /// Transport of the SIP message being handled (responses outside a dialog use it).
    cur_transport: Transport,
    /// Backpressure work since the last input: legs whose backlog or state changed, and
    /// connections whose unflushed bytes or current message did (every leg on them).
    bp_legs: Vec<LegIdx>,
    bp_conns: Vec<ConnId>,
    /// Fan-out admission: legs being served, the message bytes their turns hold, and legs
    /// waiting for a turn (in order).
    admitted: usize,
    fanout_reserved: u64,
    admit_queue: VecDeque<LegIdx>,
}

impl Node {
    pub fn new(cfg: NodeConfig, start: Start) -> Node {
        Node {
            rules: role::rules(cfg.role),
            cfg,
            legs: Vec::new(),
            calls: Vec::new(),
            live_calls: BTreeSet::new(),
            dialogs: HashMap::new(),
            invites_in: HashMap::new(),
            sessions: HashMap::new(),
            conns: state::FastMap::default(),
            next_conn: 1,
            next_session: 1,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            out: VecDeque::new(),
            now: start.now,
            start,
            rng: StdRng::seed_from_u64(start.seed),
            cur_transport: Transport::Udp,
            bp_legs: Vec::new(),
            bp_conns: Vec::new(),
            admitted: 0,
            fanout_reserved: 0,
            admit_queue: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    /// A fresh id for a connection the driver accepted.
    pub fn new_conn_id(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    /// Sessions that have not ended yet.
    pub fn active_sessions(&self) -> usize {
        self.calls.iter().filter(|c| !c.ended).count()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        let o = self.out.pop_front()?;
        // Fault plain-sip-over-tls: SIP meant for TLS goes over plain TCP, the message as it
        // was (Via TLS, sips: URIs).
        Some(match o {
            Output::Sip {
                transport: Transport::Tls,
                to,
                msg,
            } if self.fault(Fault::PlainSipOverTls) => Output::Sip {
                transport: Transport::Tcp,
                to,
                msg,
            },
            o => o,
        })
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, ..))| *t)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        while let Some(Reverse((t, _, leg, kind, iv))) = self.timers.peek().cloned() {
            if t > now {
                break;
            }
            self.timers.pop();
            self.on_timer(leg, kind, iv);
        }
        self.update_admission();
        self.update_backpressure();
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.now = now;
        match input {
            Input::Sip {
                transport,
                from,
                msg,
            } => self.on_sip(transport, from, *msg),
            Input::SipInvalid {
                transport,
                from,
                raw,
                error,
            } => self.on_sip_invalid(transport, from, &raw, &error),
            Input::Connected { conn, .. } => self.on_connected(conn),
            Input::ConnectFailed { conn, reason } => {
                self.on_conn_lost(conn, &format!("connect failed: {reason}"))
            }
            Input::Accepted { conn, peer } => {
                let mut c = Conn::new(None, true, &self.cfg.limits);
                c.peer = Some(peer);
                self.conns.insert(conn, Box::new(c));
            }
            Input::MsrpData { conn, data } => self.on_msrp_data(conn, data),
            Input::MsrpFlushed { conn, bytes } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.unflushed = c.unflushed.saturating_sub(bytes);
                }
                self.bp_conns.push(conn);
                self.pump_all();
            }
            Input::Closed { conn, reason } => self.on_conn_lost(conn, &reason),
            Input::Send { content } if self.fault(Fault::OwnContent) => {
                let own: bytes::Bytes = content.iter().map(|b| !b).collect();
                self.start_send(Arc::new(own), None)
            }
            Input::Send { content } => self.start_send(Arc::new(content), None),
            Input::SendAs { content, variant } if self.fault(Fault::OwnContent) => {
                let own: bytes::Bytes = content.iter().map(|b| !b).collect();
                self.start_send(Arc::new(own), Some(variant))
            }
            Input::SendAs { content, variant } => self.start_send(Arc::new(content), Some(variant)),
            Input::SendSource { source } => self.start_send(source, None),
        }
        self.update_admission();
        self.update_backpressure();
    }

    // ------------------------------------------------------------------ helpers

    fn warn(&mut self, s: String) {
        self.out.push_back(Output::Event(NodeEvent::Warning(format!(
            "{}: {s}",
            self.cfg.name
        ))));
    }

    /// The wall-clock time at the current monotonic time.
    fn wall_now(&self) -> SystemTime {
        self.start.wall + self.now.saturating_duration_since(self.start.now)
    }

    /// The variant call `call` runs: its own (per-call mode) or the node's. Every knob the
    /// node reads goes through here.
    fn variant(&self, call: CallIdx) -> &Variant {
        self.calls[call]
            .variant
            .as_deref()
            .unwrap_or(&self.cfg.variant)
    }

    /// The variant of the call leg `leg` belongs to.
    fn leg_variant(&self, leg: LegIdx) -> &Variant {
        self.variant(self.legs[leg].call)
    }

    /// The configured SIP transport of a call's down legs.
    fn transport(&self, call: CallIdx) -> Transport {
        self.variant(call).transport
    }

    /// The node's Contact: over TLS a `sips:` URI with no transport parameter (reach this
    /// device over TLS only; RFC 3261 §26.2.2 deprecates `transport=tls`), else
    /// `sip:` with the transport named.
    fn contact(&self, call: CallIdx) -> String {
        let t = match self.transport(call) {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => return format!("sips:{}@{}", self.cfg.name, self.cfg.sip),
        };
        format!("sip:{}@{};transport={t}", self.cfg.name, self.cfg.sip)
    }

    /// Sends on a leg's transport, or on the current message's transport outside a leg.
    fn send_sip(&mut self, leg: Option<LegIdx>, to: SocketAddr, msg: SipMessage) {
        let msg = if self.fault(Fault::ScriptInjection) {
            super::fault::inject_script(msg)
        } else {
            msg
        };
        let transport = leg
            .map(|l| self.legs[l].transport)
            .unwrap_or(self.cur_transport);
        self.out.push_back(Output::Sip { transport, to, msg });
    }

    /// Whether the node was given deviation `f`.
    fn fault(&self, f: Fault) -> bool {
        self.cfg.faults.contains(&f)
    }

    #[allow(clippy::too_many_arguments)]
    fn new_leg(
        &mut self,
        call: CallIdx,
        side: Side,
        call_id: String,
        local_tag: String,
        remote_tag: Option<String>,
        local_uri: String,
        remote_uri: String,
        remote_target: SocketAddr,
    ) -> LegIdx {
        let (up, down) = self.rules.links();
        let link = match side {
            Side::Up => up,
            Side::Down => down,
        };
        let over = self.variant(call).msrp_transport;
        let (sdp, path) = self.new_local_session(over);
        let idx = self.legs.len();
        self.sessions
            .entry(path.session_id.clone().unwrap_or_default())
            .or_default()
            .push(idx);
        self.dialogs
            .insert((call_id.clone(), local_tag.clone()), idx);
        let transport = match side {
            Side::Up => self.cur_transport,
            Side::Down => self.transport(call),
        };
        self.legs.push(Box::new(Leg {
            call,
            side,
            link,
            transport,
            call_id,
            local_tag,
            remote_tag,
            local_uri,
            remote_uri,
            remote_target,
            peer: remote_target,
            cseq: 1,
            state: DialogState::AwaitOk,
            invite: None,
            last_response: None,
            ack: Ack::NotYet,
            held: Held::default(),
            bye: None,
            bye_after_ack: false,
            bye_response: None,
            local_sdp: sdp,
            local_path: path,
            remote_sdp: None,
            opens: Opens::Undecided,
            open_requested: false,
            conn: None,
            ready: false,
            pending: VecDeque::new(),
            pending_tx: Vec::new(),
            remote_contact: None,
            invite_dest: remote_target,
            route_set: Vec::new(),
            pending_bytes: 0,
            outstanding: 0,
            content_done: false,
            msrp_progress: None,
            media_failed: false,
            session_closed: false,
            over: false,
            admit: Admit::No,
            reserved: 0,
            report_due: false,
            reported: false,
            report_owed: None,
        }));
        idx
    }

    fn new_call(&mut self, variant: Option<Box<Variant>>) -> CallIdx {
        let id = self.next_session;
        self.next_session += 1;
        self.calls.push(Call {
            id,
            message_id: new_ident(&mut self.rng),
            up: None,
            downs: vec![],
            answered_up: false,
            upstream_ack: false,
            got_send: false,
            bye_from_up: false,
            ended: false,
            content: None,
            chunks: vec![],
            next_chunk: 0,
            member: None,
            delivery: None,
            members: vec![],
            over_downs: 0,
            msg_total: None,
            variant,
        });
        let call = self.calls.len() - 1;
        self.live_calls.insert(call);
        call
    }
}
