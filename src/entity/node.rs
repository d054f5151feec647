//! One entity instance as a sans-IO state machine: SIP transactions and dialogs (B2BUA legs),
//! SDP offer/answer with the node's own MSRP parameters per leg, MSRP links (open, bind,
//! reuse), streaming relay with fan-out (x serves members in turns that fit the
//! `fanout-window`) and backpressure (per leg, decided incrementally), delivery and BYE
//! teardown.
//!
//! Vocabulary: a *call* is one group session at this node; it has at most one *up* leg (the
//! dialog whose INVITE this node received) and any number of *down* legs (dialogs this node
//! started). client-a has only a down leg, client-b only an up leg, x one down leg per member.

use super::{ConnId, ContentSource, Fault, Holds, Input, NodeEvent, Output};
use crate::codec::cpim::Cpim;
use crate::codec::msrp::{
    chunk_ranges, encode_end, encode_response, new_ident, send_head, ByteRange, Flag, MsrpEvent,
    MsrpHead, MsrpParser, MsrpUri, RangeTracker, Scheme, StartLine,
};
use crate::codec::sdp::{MsrpSdp, Setup};
use crate::codec::sip::{
    build_request, build_response, new_branch, new_call_id, new_tag, Body, Method, RequestSpec,
    SipMessage, Transport,
};
use crate::config::{AckTiming, GroupKind, Link, Opener, SetupMode, Trigger, Variant, XAnswer};
use crate::limits::Limits;
use crate::topology::{strip_uri, Role, Topology};
use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// RFC 3261 timer base values.
#[derive(Debug, Clone, Copy)]
pub struct SipTimers {
    pub t1: Duration,
    pub t2: Duration,
}

impl Default for SipTimers {
    fn default() -> Self {
        SipTimers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
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
}

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
                4 << 20
            } else {
                64 << 10
            },
            holds: Holds::default(),
            faults: Vec::new(),
            limits: Limits::default(),
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

type LegIdx = usize;

/// How long a SEND may wait for its response (RFC 4975 §7.1.1).
const MSRP_TIMEOUT: Duration = Duration::from_secs(30);
type CallIdx = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// We received this leg's INVITE (UAS, SDP answerer).
    Up,
    /// We sent this leg's INVITE (UAC, SDP offerer).
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialogState {
    /// UAC: INVITE sent, no final response. UAS: INVITE received, no final response sent.
    Inviting,
    /// 2xx sent or received; ACK outstanding.
    Answered,
    /// ACK sent or received.
    Confirmed,
    /// BYE sent, awaiting its response.
    Closing,
    Terminated,
    Failed,
}

struct Leg {
    call: CallIdx,
    side: Side,
    link: Link,
    /// SIP transport of this dialog: the configured one, or TCP for a request over 1300 bytes
    /// (RFC 3261 §18.1.1); for an up leg, the one its INVITE came on.
    transport: Transport,
    // --- SIP dialog ---
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// From-URI for our requests in this dialog, To-URI likewise.
    local_uri: String,
    remote_uri: String,
    /// Where the peer receives requests (Contact / topology).
    remote_target: SocketAddr,
    /// Where responses go (the request's source).
    peer: SocketAddr,
    cseq: u32,
    state: DialogState,
    invite: Option<SipMessage>,
    /// UAS: the last response to the INVITE, re-sent on INVITE retransmissions.
    last_response: Option<SipMessage>,
    /// UAC: the ACK for the 2xx, re-sent when the 2xx is retransmitted.
    ack: Option<SipMessage>,
    ack_pending: bool,
    /// Holds: the ACK / the 200 / the first request / the link opening is waiting on a timer.
    ack_held: bool,
    answer_held: bool,
    answer_due: bool,
    bind_held: bool,
    open_held: bool,
    /// The held opening's timer fired: open now.
    open_due: bool,
    bye: Option<SipMessage>,
    /// UAS: the response to the peer's BYE, re-sent on BYE retransmissions.
    bye_response: Option<SipMessage>,
    // --- MSRP session ---
    local_sdp: MsrpSdp,
    local_path: MsrpUri,
    remote_sdp: Option<MsrpSdp>,
    /// Whether this node opens the link; `None` until the SDP exchange says.
    we_open: Option<bool>,
    open_requested: bool,
    conn: Option<ConnId>,
    /// The link is bound and may carry requests from us.
    ready: bool,
    /// Relay data waiting for the link (heads are built once the peer's path is known).
    pending: VecDeque<Pending>,
    /// Relayed SEND transactions written before the link had a connection.
    pending_tx: Vec<(String, bool)>,
    /// The peer's Contact URI, the Request-URI of in-dialog requests.
    remote_contact: Option<String>,
    /// Where the INVITE (its retransmissions, the ACK of a non-2xx) goes: the SIP/IP core
    /// when there is one, else the peer.
    invite_dest: SocketAddr,
    /// The dialog's route set, URIs with their parameters (RFC 3261 §12.1): from the
    /// INVITE's Record-Route in order (UAS), or the 2xx's reversed (UAC).
    route_set: Vec<String>,
    pending_bytes: usize,
    /// SEND transactions awaiting a response.
    outstanding: usize,
    /// The final (`$`) chunk of the content was written on this leg.
    content_done: bool,
    /// Last time a SEND was answered (or the first one sent): RFC 4975 §7.1.1's 30 s rule.
    msrp_progress: Option<Instant>,
    media_failed: bool,
    session_closed: bool,
    /// Backpressure: this down leg's writable backlog is over the high-water mark.
    over: bool,
    /// Fan-out admission (x): whether this leg may write relay data now, and the message
    /// bytes its turn holds of the window.
    admit: Admit,
    reserved: u64,
}

/// Fan-out admission of a down leg of x: members are served in turns, as many at once as
/// their messages fit in `fanout-window` bytes (64 MiB: 64 members of a 1 MiB message, 640 of
/// 100 KB). Every member streaming at once puts a message-sized backlog in every socket
/// (10,000 members drove the kernel into TCP memory pressure: dropped segments and 200 ms
/// retransmission timeouts, 22-33 s to the last delivery; in turns, 13 s). A fixed count of
/// members does not fit all sizes: 64 at once starved `load` with 100 KB messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admit {
    /// Has not asked yet (no relay data ready to write).
    No,
    /// Ready to write, waiting for a slot.
    Waiting,
    /// Holds a slot: writes as its link allows.
    Active,
    /// Gave its slot back (message answered, or the leg failed).
    Done,
}

/// One item of relay data for a leg.
enum Pending {
    /// A SEND head whose To-Path is filled in when the leg's peer is known.
    Head {
        tid: String,
        message_id: String,
        range: ByteRange,
        content_type: String,
    },
    Data(Bytes),
    /// The end-line of a relayed chunk: the connection is free for other messages after it.
    End(Bytes),
}

struct Call {
    id: u64,
    message_id: String,
    up: Option<LegIdx>,
    downs: Vec<LegIdx>,
    answered_up: bool,
    upstream_ack: bool,
    got_send: bool,
    bye_from_up: bool,
    ended: bool,
    /// client-a: the CPIM object (its head, then the content read piece by piece) and the
    /// next chunk to write.
    content: Option<(Bytes, Arc<dyn ContentSource>)>,
    chunks: Vec<(ByteRange, Flag, u64, u64)>,
    next_chunk: usize,
    /// client-b: delivery state.
    member: Option<String>,
    delivery: Option<Delivery>,
    /// Members (x) this call fans out to.
    members: Vec<String>,
    /// Down legs over the high-water mark: while any is, the up leg's link is not read.
    over_downs: usize,
    /// x: the relayed message's size (CPIM object) from its Byte-Range, when given.
    msg_total: Option<u64>,
}

#[derive(Default)]
struct Delivery {
    head: Vec<u8>,
    head_len: Option<u64>,
    early: Vec<(u64, Bytes)>,
    tracker: RangeTracker,
    delivered: bool,
}

/// The message currently being read on a connection.
struct InMsg {
    /// The leg it belongs to (request: by To-Path; response: by transaction).
    leg: Option<LegIdx>,
    is_request: bool,
    method: String,
    code: u16,
    from_path: Option<MsrpUri>,
    to_path: Option<MsrpUri>,
    range: Option<ByteRange>,
    /// Bytes of body seen so far in this chunk.
    seen: u64,
    has_body: bool,
    /// Fault relay-truncate: the body piece not yet forwarded.
    held: Option<Bytes>,
    /// Relay: (down leg, new tid) per downstream copy.
    relays: Vec<(LegIdx, String)>,
    reject: Option<(u16, &'static str)>,
}

struct Conn {
    /// For links this node opened: the target, for reuse.
    target: Option<SocketAddr>,
    /// The peer's address (accepted) or the target (opened), for warnings.
    peer: Option<SocketAddr>,
    /// Body bytes of the chunk being read, against `Limits::msrp_chunk`.
    chunk_bytes: u64,
    connected: bool,
    parser: MsrpParser,
    cur: Option<InMsg>,
    legs: Vec<LegIdx>,
    unflushed: usize,
    paused: bool,
    closed: bool,
    /// Our SEND transactions on this connection: tid → (leg, is the final chunk).
    tx: HashMap<String, (LegIdx, bool)>,
    /// A relayed message is being written for this leg: nothing else may go on the wire
    /// until its end-line (MSRP messages never interleave on a connection).
    busy: Option<LegIdx>,
    /// Responses and binding SENDs waiting for `busy` to clear.
    deferred: VecDeque<Bytes>,
}

/// (due, sequence, leg, kind, the interval it was armed with: the next one doubles it).
type TimerEntry = (Instant, u64, LegIdx, TimerKind, Duration);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    InviteRetx,
    InviteTimeout,
    OkRetx,
    OkTimeout,
    ByeRetx,
    ByeTimeout,
    /// A SEND got no response within 30 s (RFC 4975 §7.1.1, G4).
    MsrpTimeout,
    /// Held actions (ordering choices, pauses, the late-trigger fault).
    HoldAnswer,
    HoldAck,
    HoldBind,
    HoldOpen,
}

/// The state machine of one entity instance. See the module docs of [`crate::entity`] for
/// the order in which to call its methods.
pub struct Node {
    cfg: NodeConfig,
    legs: Vec<Leg>,
    calls: Vec<Call>,
    /// (Call-ID, local tag) → leg, for in-dialog requests and responses.
    dialogs: HashMap<(String, String), LegIdx>,
    /// (Call-ID, From tag) of INVITEs received → leg, to absorb retransmissions.
    invites_in: HashMap<(String, String), LegIdx>,
    /// Local MSRP session-id → leg.
    sessions: HashMap<String, LegIdx>,
    conns: HashMap<ConnId, Conn>,
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
            cfg,
            legs: Vec::new(),
            calls: Vec::new(),
            dialogs: HashMap::new(),
            invites_in: HashMap::new(),
            sessions: HashMap::new(),
            conns: HashMap::new(),
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
        self.out.pop_front()
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
            } => self.on_sip(transport, from, msg),
            Input::Connected { conn, .. } => self.on_connected(conn),
            Input::ConnectFailed { conn, reason } => {
                self.on_conn_lost(conn, &format!("connect failed: {reason}"))
            }
            Input::Accepted { conn, peer } => {
                let mut c = Conn::new(None, true, &self.cfg.limits);
                c.peer = Some(peer);
                self.conns.insert(conn, c);
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
            Input::Send { content } => self.start_send(Arc::new(content)),
            Input::SendSource { source } => self.start_send(source),
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

    fn transport(&self) -> Transport {
        self.cfg.variant.transport
    }

    fn contact(&self) -> String {
        let t = match self.transport() {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        format!("sip:{}@{};transport={t}", self.cfg.name, self.cfg.sip)
    }

    fn arm(&mut self, leg: LegIdx, kind: TimerKind, after: Duration) {
        self.timer_seq += 1;
        self.timers.push(Reverse((
            self.now + after,
            self.timer_seq,
            leg,
            kind,
            after,
        )));
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

    /// Which link this node's leg is on.
    fn link_for(&self, side: Side) -> Link {
        match (self.cfg.role, side) {
            (Role::ClientA, _) | (Role::PfA, Side::Up) => Link::L1,
            (Role::PfA, Side::Down) | (Role::X, Side::Up) => Link::L2,
            (Role::X, Side::Down) | (Role::PfB, Side::Up) => Link::L3,
            (Role::PfB, Side::Down) | (Role::ClientB, _) => Link::L4,
        }
    }

    /// Whether the configuration makes this node the opener of a leg's link.
    fn fault(&self, f: Fault) -> bool {
        self.cfg.faults.contains(&f)
    }

    fn configured_to_open(&self, side: Side, link: Link) -> bool {
        let mine = match self.cfg.variant.opener(link) {
            Opener::Offerer => side == Side::Down,
            Opener::Answerer => side == Side::Up,
        };
        mine != self.fault(Fault::WrongDirection)
    }

    fn new_local_session(&mut self) -> (MsrpSdp, MsrpUri) {
        let sid = if self.fault(Fault::SessionIdReuse) {
            format!("s{}", self.legs.len())
        } else {
            format!("{}{}", new_ident(&mut self.rng), new_ident(&mut self.rng))
        };
        let path = MsrpUri {
            scheme: Scheme::Msrp,
            userinfo: None,
            host: self.cfg.msrp.ip().to_string(),
            port: self.cfg.msrp.port(),
            session_id: Some(sid),
            transport: if self.fault(Fault::PathUdp) {
                "udp"
            } else {
                "tcp"
            }
            .into(),
            params: vec![],
        };
        let sdp = MsrpSdp {
            origin_user: self
                .cfg
                .name
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
            session_id: self.rng.random::<u32>() as u64,
            session_version: 1,
            c_addr: if self.fault(Fault::SdpWrongC) {
                std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 254, 254, 254))
            } else {
                self.cfg.msrp.ip()
            },
            port: self.cfg.msrp.port() + u16::from(self.fault(Fault::SdpPortMismatch)),
            proto: if self.fault(Fault::MlineProto) {
                "TCP/RTP/AVP"
            } else {
                "TCP/MSRP"
            }
            .into(),
            path: vec![path.clone()],
            accept_types: if self.fault(Fault::MissingAcceptTypes) {
                vec![]
            } else {
                vec!["message/cpim".into()]
            },
            accept_wrapped_types: vec!["text/plain".into(), "application/octet-stream".into()],
            setup: None,
            max_size: None,
            direction: None,
        };
        (sdp, path)
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
        let link = self.link_for(side);
        let (sdp, path) = self.new_local_session();
        let idx = self.legs.len();
        self.sessions
            .insert(path.session_id.clone().unwrap_or_default(), idx);
        self.dialogs
            .insert((call_id.clone(), local_tag.clone()), idx);
        let transport = match side {
            Side::Up => self.cur_transport,
            Side::Down => self.cfg.variant.transport,
        };
        self.legs.push(Leg {
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
            state: DialogState::Inviting,
            invite: None,
            last_response: None,
            ack: None,
            ack_pending: false,
            ack_held: false,
            answer_held: false,
            answer_due: false,
            bind_held: false,
            open_held: false,
            open_due: false,
            bye: None,
            bye_response: None,
            local_sdp: sdp,
            local_path: path,
            remote_sdp: None,
            we_open: None,
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
        });
        idx
    }

    fn new_call(&mut self) -> CallIdx {
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
        });
        self.calls.len() - 1
    }

    // ------------------------------------------------------------------ SIP: sending

    /// Sends an INVITE on a fresh down leg.
    fn invite_down(
        &mut self,
        call: CallIdx,
        request_uri: String,
        to_uri: String,
        target: SocketAddr,
        members: Option<Vec<String>>,
    ) {
        let from_uri = match self.cfg.role {
            Role::ClientA => self.cfg.topology.sender.clone(),
            _ => format!("sip:{}@{}", self.cfg.name, self.cfg.sip.ip()),
        };
        let upstream_call_id = self.calls[call]
            .up
            .map(|u| self.legs[u].call_id.clone())
            .filter(|_| self.fault(Fault::ReuseCallId));
        let call_id = match upstream_call_id {
            Some(c) => c,
            None => new_call_id(&mut self.rng, &self.cfg.sip.ip().to_string()),
        };
        let local_tag = new_tag(&mut self.rng);
        let leg = self.new_leg(
            call,
            Side::Down,
            call_id,
            local_tag,
            None,
            from_uri,
            to_uri,
            target,
        );
        self.calls[call].downs.push(leg);
        if self.cfg.variant.setup == SetupMode::Sdp {
            self.legs[leg].local_sdp.setup = Some(Setup::Actpass);
        }
        self.legs[leg].local_sdp.direction = Some("sendonly".into());
        if self.fault(Fault::SdpCopyUpstreamPath) {
            let upstream = self.calls[call]
                .up
                .and_then(|u| self.legs[u].remote_sdp.clone());
            if let Some(up) = upstream {
                self.legs[leg].local_sdp.path = up.path.clone();
            }
        }
        let sdp = self.legs[leg].local_sdp.encode();
        let mut extra = vec![
            (
                "Accept-Contact".to_string(),
                "*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg\""
                    .to_string(),
            ),
            (
                "P-Preferred-Service".to_string(),
                "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.largemsg".to_string(),
            ),
        ];
        let body = match members {
            Some(m) => {
                extra.push(("Require".into(), "recipient-list-invite".into()));
                Body::sdp_with_resource_list(sdp.as_bytes(), &m, &mut self.rng)
            }
            None => Body::sdp(sdp.into_bytes()),
        };
        // Behind a SIP/IP core the request goes to the proxy with a pre-loaded route: the
        // proxy, then the next entity (RFC 3261 §8.1.2); the proxy records its route.
        let core = self.cfg.topology.core;
        let preloaded = |tcp: bool| -> Vec<(String, String)> {
            let Some(core) = core else { return vec![] };
            let t = if tcp { ";transport=tcp" } else { "" };
            vec![(
                "Route".to_string(),
                format!("<sip:{core}{t};lr>, <sip:{target}{t};lr>"),
            )]
        };
        let tcp0 = self.transport() == Transport::Tcp;
        extra.extend(preloaded(tcp0));
        let l = &self.legs[leg];
        let spec = RequestSpec {
            method: Method::Invite,
            request_uri,
            transport: self.transport(),
            sent_by: self.cfg.sip.to_string(),
            branch: new_branch(&mut self.rng),
            from_uri: l.local_uri.clone(),
            from_tag: l.local_tag.clone(),
            to_uri: l.remote_uri.clone(),
            to_tag: None,
            call_id: l.call_id.clone(),
            cseq: l.cseq,
            contact: Some(self.contact()),
            extra,
            body: Some(body),
        };
        let mut msg = build_request(&spec);
        if spec.transport == Transport::Udp && msg.raw.len() > 1300 {
            // RFC 3261 §18.1.1: a request over 1300 bytes goes over a congestion-controlled
            // transport, with the Via rewritten.
            let mut extra = spec.extra.clone();
            if core.is_some() {
                extra.pop();
                extra.extend(preloaded(true));
            }
            let spec = RequestSpec {
                transport: Transport::Tcp,
                extra,
                ..spec
            };
            msg = build_request(&spec);
            self.legs[leg].transport = Transport::Tcp;
        }
        let dest = core.unwrap_or(target);
        self.legs[leg].invite_dest = dest;
        self.legs[leg].invite = Some(msg.clone());
        self.send_sip(Some(leg), dest, msg);
        let t1 = self.cfg.timers.t1;
        if self.legs[leg].transport == Transport::Udp {
            self.arm(leg, TimerKind::InviteRetx, t1);
        }
        self.arm(leg, TimerKind::InviteTimeout, t1 * 64);
    }

    /// In-dialog request (ACK or BYE) on a down leg.
    fn dialog_request(&mut self, leg: LegIdx, method: Method) -> SipMessage {
        let l = &mut self.legs[leg];
        let cseq = match method {
            Method::Ack => l.cseq,
            _ => {
                l.cseq += 1;
                l.cseq
            }
        };
        let request_uri = l
            .remote_contact
            .clone()
            .unwrap_or_else(|| format!("sip:{}", l.remote_target));
        let spec = RequestSpec {
            method,
            request_uri,
            transport: l.transport,
            sent_by: self.cfg.sip.to_string(),
            branch: new_branch(&mut self.rng),
            from_uri: l.local_uri.clone(),
            from_tag: l.local_tag.clone(),
            to_uri: l.remote_uri.clone(),
            to_tag: l.remote_tag.clone(),
            call_id: l.call_id.clone(),
            cseq,
            contact: None,
            extra: if self.cfg.faults.contains(&Fault::IgnoreRouteSet) {
                vec![]
            } else {
                l.route_set
                    .iter()
                    .map(|r| ("Route".to_string(), format!("<{r}>")))
                    .collect()
            },
            body: None,
        };
        build_request(&spec)
    }

    /// Where an in-dialog request goes and over which transport: the first route of the
    /// route set (loose routing, RFC 3261 §12.2.1.1), else the peer's Contact.
    fn in_dialog_dest(&self, leg: LegIdx) -> (SocketAddr, Transport) {
        let l = &self.legs[leg];
        if self.fault(Fault::IgnoreRouteSet) {
            return (l.remote_target, l.transport);
        }
        let first = l.route_set.first().and_then(|r| {
            let addr = sip_uri_addr(r)?;
            Some((addr, uri_transport(r).unwrap_or(l.transport)))
        });
        first.unwrap_or((l.remote_target, l.transport))
    }

    fn send_in_dialog(&mut self, leg: LegIdx, msg: SipMessage) {
        let (to, transport) = self.in_dialog_dest(leg);
        self.out.push_back(Output::Sip { transport, to, msg });
    }

    fn send_ack(&mut self, leg: LegIdx) {
        if self.legs[leg].ack.is_some() {
            return;
        }
        if self.fault(Fault::NoAckDownstream) && self.cfg.role != Role::ClientA {
            return;
        }
        let delay = self.cfg.holds.ack_delay;
        if !delay.is_zero() && !self.legs[leg].ack_held {
            self.legs[leg].ack_held = true;
            self.arm(leg, TimerKind::HoldAck, delay);
            return;
        }
        let ack = self.dialog_request(leg, Method::Ack);
        let l = &mut self.legs[leg];
        l.ack = Some(ack.clone());
        l.ack_pending = false;
        if l.state == DialogState::Answered {
            l.state = DialogState::Confirmed;
        }
        self.send_in_dialog(leg, ack);
        self.maybe_bye(leg);
    }

    fn send_bye(&mut self, leg: LegIdx) {
        let bye = self.dialog_request(leg, Method::Bye);
        let l = &mut self.legs[leg];
        l.state = DialogState::Closing;
        l.bye = Some(bye.clone());
        self.send_in_dialog(leg, bye);
        let t1 = self.cfg.timers.t1;
        if self.legs[leg].transport == Transport::Udp {
            self.arm(leg, TimerKind::ByeRetx, t1);
        }
        self.arm(leg, TimerKind::ByeTimeout, t1 * 64);
    }

    /// Answers the up leg's INVITE with 200 and this node's SDP.
    fn answer_up(&mut self, leg: LegIdx) {
        let call = self.legs[leg].call;
        if self.calls[call].answered_up {
            return;
        }
        let member = match self.cfg.role {
            Role::ClientB => Some(self.cfg.name.clone()),
            _ => self.calls[call].members.first().cloned(),
        };
        let delay = self.cfg.holds.answer_delay_for(member.as_deref());
        if !delay.is_zero() && !self.legs[leg].answer_held {
            self.legs[leg].answer_held = true;
            self.arm(leg, TimerKind::HoldAnswer, delay);
            return;
        }
        if self.legs[leg].answer_held && !self.legs[leg].answer_due {
            return; // A held answer goes out when its timer fires.
        }
        self.calls[call].answered_up = true;
        if self.fault(Fault::Skip200Upstream) && self.cfg.role != Role::ClientB {
            return;
        }
        let link = self.legs[leg].link;
        let configured = self.configured_to_open(Side::Up, link);
        let offer_setup = self.legs[leg].remote_sdp.as_ref().and_then(|s| s.setup);
        let (mut answer_setup, we_open) = match self.cfg.variant.setup {
            SetupMode::Preset => (None, configured),
            SetupMode::Sdp => match offer_setup {
                Some(Setup::Actpass) => {
                    if configured {
                        (Some(Setup::Active), true)
                    } else {
                        (Some(Setup::Passive), false)
                    }
                }
                Some(Setup::Passive) => (Some(Setup::Active), true),
                // An offerer that is active (explicitly or by default) opens.
                _ => (Some(Setup::Passive), false),
            },
        };
        if self.fault(Fault::WrongSetup) {
            answer_setup = match answer_setup {
                Some(Setup::Active) => Some(Setup::Passive),
                Some(Setup::Passive) => Some(Setup::Active),
                other => other,
            };
        }
        let no_sdp = self.fault(Fault::ParamsInWrongMessage);
        let l = &mut self.legs[leg];
        l.we_open = Some(we_open);
        l.local_sdp.setup = answer_setup;
        l.local_sdp.direction = Some("recvonly".into());
        let sdp = l.local_sdp.encode();
        let invite = l.invite.clone().expect("up leg has its INVITE");
        let ok = build_response(
            &invite,
            200,
            "OK",
            Some(&l.local_tag.clone()),
            Some(&self.contact()),
            (!no_sdp).then(|| Body::sdp(sdp.into_bytes())),
        );
        let l = &mut self.legs[leg];
        l.last_response = Some(ok.clone());
        l.state = DialogState::Answered;
        let peer = l.peer;
        self.send_sip(Some(leg), peer, ok);
        let t1 = self.cfg.timers.t1;
        self.arm(leg, TimerKind::OkRetx, t1);
        self.arm(leg, TimerKind::OkTimeout, t1 * 64);
        self.maybe_open(leg);
    }

    fn reject_up(&mut self, leg: LegIdx, code: u16, reason: &str) {
        self.bp_legs.push(leg);
        let l = &mut self.legs[leg];
        if l.state != DialogState::Inviting {
            return;
        }
        l.state = DialogState::Failed;
        let invite = l.invite.clone().expect("up leg has its INVITE");
        let resp = build_response(
            &invite,
            code,
            reason,
            Some(&l.local_tag.clone()),
            None,
            None,
        );
        l.last_response = Some(resp.clone());
        let peer = l.peer;
        self.send_sip(Some(leg), peer, resp);
        let call = self.legs[leg].call;
        self.end_call_if_done(call);
    }

    // ------------------------------------------------------------------ SIP: receiving

    fn on_sip(&mut self, transport: Transport, from: SocketAddr, msg: SipMessage) {
        self.cur_transport = transport;
        if msg.is_request() {
            self.on_request(from, msg);
        } else {
            self.on_response(msg);
        }
    }

    fn respond_plain(&mut self, to: SocketAddr, req: &SipMessage, code: u16, reason: &str) {
        let tag = if req.to_tag().is_none() {
            Some(new_tag(&mut self.rng))
        } else {
            None
        };
        let resp = build_response(req, code, reason, tag.as_deref(), None, None);
        self.send_sip(None, to, resp);
    }

    fn on_request(&mut self, from: SocketAddr, msg: SipMessage) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let call_id = msg.call_id().unwrap_or_default().to_string();
        if let Some(to_tag) = msg.to_tag() {
            let Some(&leg) = self.dialogs.get(&(call_id.clone(), to_tag.clone())) else {
                if method != Method::Ack {
                    self.respond_plain(from, &msg, 481, "Call/Transaction Does Not Exist");
                }
                self.warn(format!("{} for unknown dialog from {from}", msg.summary()));
                return;
            };
            match method {
                Method::Ack => self.on_ack(leg),
                Method::Bye => self.on_bye(leg, from, msg),
                Method::Invite => {
                    // Re-INVITE: not part of this flow.
                    self.respond_plain(from, &msg, 488, "Not Acceptable Here");
                }
                _ => self.respond_plain(from, &msg, 405, "Method Not Allowed"),
            }
            return;
        }
        match method {
            Method::Invite => self.on_invite(from, msg),
            Method::Ack => {} // ACK for a non-2xx: absorbed.
            _ => self.respond_plain(from, &msg, 481, "Call/Transaction Does Not Exist"),
        }
    }

    fn on_invite(&mut self, from: SocketAddr, msg: SipMessage) {
        let call_id = msg.call_id().unwrap_or_default().to_string();
        let from_tag = msg.from_tag().unwrap_or_default();
        if let Some(&leg) = self.invites_in.get(&(call_id.clone(), from_tag.clone())) {
            // Retransmission: repeat the last response.
            if let Some(r) = self.legs[leg].last_response.clone() {
                let peer = self.legs[leg].peer;
                self.send_sip(Some(leg), peer, r);
            }
            return;
        }
        if self.cfg.role == Role::ClientA {
            self.respond_plain(from, &msg, 403, "Forbidden");
            return;
        }
        let offer = msg.sdp_body().map(|b| MsrpSdp::parse(&b));
        let offer = match offer {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                self.warn(format!(
                    "bad SDP offer in {} from {from}: {e}",
                    msg.summary()
                ));
                self.respond_plain(from, &msg, 488, "Not Acceptable Here");
                return;
            }
            None => {
                self.respond_plain(from, &msg, 488, "Not Acceptable Here");
                return;
            }
        };
        // Whom the session is for.
        let ruri = msg.request_uri().unwrap_or_default().to_string();
        let topo = self.cfg.topology.clone();
        let mut members: Vec<String> = Vec::new();
        match self.cfg.role {
            Role::X => {
                let r = strip_uri(&ruri);
                if r == strip_uri(&topo.group) {
                    members = topo.members.iter().map(|m| m.name.clone()).collect();
                } else if r == strip_uri(&topo.factory) {
                    match msg.resource_list() {
                        Ok(Some(list)) => {
                            for u in list {
                                match topo.member_by_uri(&u) {
                                    Some(m) => members.push(m.name.clone()),
                                    None => self.warn(format!(
                                        "ad-hoc list entry {u} is not in the topology; skipped"
                                    )),
                                }
                            }
                        }
                        Ok(None) | Err(_) => {
                            self.respond_plain(from, &msg, 400, "Bad Request: no resource list");
                            return;
                        }
                    }
                } else {
                    self.respond_plain(from, &msg, 404, "Not Found");
                    return;
                }
                if members.is_empty() {
                    self.respond_plain(from, &msg, 480, "Temporarily Unavailable");
                    return;
                }
            }
            Role::PfB => {
                let Some(m) = topo.member_by_uri(&ruri) else {
                    self.respond_plain(from, &msg, 404, "Not Found");
                    return;
                };
                let served = topo
                    .pf_b_serving(&m.name)
                    .map(|p| p.name == self.cfg.name)
                    .unwrap_or(false);
                if !served {
                    self.respond_plain(from, &msg, 404, "Not Found");
                    return;
                }
                members.push(m.name.clone());
            }
            Role::ClientB => {}
            Role::PfA | Role::ClientA => {}
        }
        let call = self.new_call();
        self.calls[call].members = members.clone();
        if self.cfg.role == Role::ClientB {
            self.calls[call].member = Some(self.cfg.name.clone());
            self.calls[call].delivery = Some(Delivery::default());
        }
        let local_tag = new_tag(&mut self.rng);
        let local_uri = msg.to_uri().unwrap_or_default();
        let remote_uri = msg.from_uri().unwrap_or_default();
        let target = msg
            .contact_uri()
            .and_then(|c| sip_uri_addr(&c))
            .unwrap_or(from);
        let leg = self.new_leg(
            call,
            Side::Up,
            call_id.clone(),
            local_tag,
            Some(from_tag.clone()),
            local_uri,
            remote_uri,
            target,
        );
        self.invites_in.insert((call_id, from_tag), leg);
        self.calls[call].up = Some(leg);
        {
            let l = &mut self.legs[leg];
            l.peer = from;
            l.route_set = msg.uri_list("Record-Route");
            l.remote_sdp = Some(offer);
            l.invite = Some(msg.clone());
        }
        match self.cfg.role {
            Role::ClientB => self.answer_up(leg),
            _ => {
                let trying = build_response(&msg, 100, "Trying", None, None, None);
                self.legs[leg].last_response = Some(trying.clone());
                self.send_sip(Some(leg), from, trying);
                let at_once = self.cfg.role == Role::X && self.x_answers_at_once();
                if at_once && self.cfg.holds.x_answer_before_invites {
                    self.answer_up(leg);
                }
                self.forward_invite(call, &msg, &ruri, &members);
                if at_once {
                    self.answer_up(leg);
                }
            }
        }
    }

    /// Whether x sends 200-2 on INVITE2 (FIG 1, 3, 7) rather than on the first 200-3.
    fn x_answers_at_once(&self) -> bool {
        let at_once = self.cfg.variant.x_answer() == XAnswer::AtOnce;
        (at_once && !self.fault(Fault::CfAnswerLate)) || self.fault(Fault::CfAnswerEarly)
    }

    /// A middle entity's downstream INVITE(s).
    fn forward_invite(&mut self, call: CallIdx, msg: &SipMessage, ruri: &str, members: &[String]) {
        let topo = self.cfg.topology.clone();
        match self.cfg.role {
            Role::PfA => {
                let list = match self.cfg.variant.group {
                    GroupKind::Adhoc => msg.resource_list().ok().flatten(),
                    GroupKind::Predefined => None,
                };
                let to = msg.to_uri().unwrap_or_else(|| ruri.to_string());
                self.invite_down(call, ruri.to_string(), to, topo.x.sip, list);
            }
            Role::X => {
                let fanout = if self.fault(Fault::FanoutFirstOnly) {
                    1
                } else {
                    members.len()
                };
                for name in members.iter().take(fanout) {
                    let Some(m) = topo.members.iter().find(|m| &m.name == name) else {
                        continue;
                    };
                    let Some(pfb) = topo.pf_b_serving(name) else {
                        self.warn(format!("no pf-b serves member {name}"));
                        continue;
                    };
                    self.invite_down(call, m.uri.clone(), m.uri.clone(), pfb.sip, None);
                }
            }
            Role::PfB => {
                if let Some(m) = members
                    .first()
                    .and_then(|n| topo.members.iter().find(|m| &m.name == n))
                {
                    self.invite_down(call, m.uri.clone(), m.uri.clone(), m.sip, None);
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, msg: SipMessage) {
        let Some(code) = msg.code() else { return };
        let call_id = msg.call_id().unwrap_or_default().to_string();
        let from_tag = msg.from_tag().unwrap_or_default();
        let Some(&leg) = self.dialogs.get(&(call_id, from_tag)) else {
            self.warn(format!(
                "response {} to an unknown transaction",
                msg.summary()
            ));
            return;
        };
        if self.legs[leg].side != Side::Down {
            return;
        }
        let method = msg.cseq().map(|(_, m)| m);
        match method {
            Some(Method::Invite) => self.on_invite_response(leg, code, msg),
            Some(Method::Bye) if code >= 200 && self.legs[leg].state == DialogState::Closing => {
                self.legs[leg].state = DialogState::Terminated;
                self.bp_legs.push(leg);
                self.close_session(leg);
                let call = self.legs[leg].call;
                self.end_call_if_done(call);
            }
            _ => {}
        }
    }

    fn on_invite_response(&mut self, leg: LegIdx, code: u16, msg: SipMessage) {
        if code < 200 {
            return; // Provisional: stops Timer A (checked through the state at fire time).
        }
        let state = self.legs[leg].state;
        if code >= 300 {
            if state == DialogState::Inviting {
                // ACK for a non-2xx is hop-by-hop, same branch (RFC 3261 §17.1.1.3).
                let invite = self.legs[leg]
                    .invite
                    .clone()
                    .expect("down leg has its INVITE");
                let ack = non2xx_ack(&invite, &msg);
                let to = self.legs[leg].invite_dest;
                self.send_sip(Some(leg), to, ack);
                self.legs[leg].state = DialogState::Failed;
                self.bp_legs.push(leg);
                self.warn(format!(
                    "{} answered {}",
                    self.legs[leg].remote_uri,
                    msg.summary()
                ));
                self.on_down_failed(leg, code);
            }
            return;
        }
        // 2xx.
        if state != DialogState::Inviting {
            // Retransmitted 2xx: repeat the ACK if we sent one (RFC 3261 §13.2.2.4).
            if let Some(ack) = self.legs[leg].ack.clone() {
                self.send_in_dialog(leg, ack);
            }
            return;
        }
        let answer = match msg.sdp_body().map(|b| MsrpSdp::parse(&b)) {
            Some(Ok(s)) => s,
            other => {
                let why = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "no SDP answer".into(),
                };
                self.warn(format!(
                    "{} from {}: {why}",
                    msg.summary(),
                    self.legs[leg].remote_uri
                ));
                self.legs[leg].state = DialogState::Answered;
                self.legs[leg].remote_tag = msg.to_tag();
                self.send_ack(leg);
                self.legs[leg].media_failed = true;
                self.bp_legs.push(leg);
                self.send_bye(leg);
                self.on_down_failed(leg, 488);
                return;
            }
        };
        let link = self.legs[leg].link;
        let configured = self.configured_to_open(Side::Down, link);
        let we_open = match self.cfg.variant.setup {
            SetupMode::Preset => configured,
            // The answer decides; the wrong-direction fault goes against it.
            SetupMode::Sdp => {
                !matches!(answer.setup, Some(Setup::Active)) != self.fault(Fault::WrongDirection)
            }
        };
        {
            let l = &mut self.legs[leg];
            l.remote_tag = msg.to_tag();
            l.state = DialogState::Answered;
            l.remote_sdp = Some(answer);
            l.we_open = Some(we_open);
            l.route_set = msg.uri_list("Record-Route").into_iter().rev().collect();
            if let Some(c) = msg.contact_uri() {
                if let Some(t) = sip_uri_addr(&c) {
                    l.remote_target = t;
                }
                l.remote_contact = Some(c);
            }
        }
        let call = self.legs[leg].call;
        // ACK now, or after the upstream ACK.
        let ack_now = match self.cfg.role {
            // Ordering choice: the first SEND may precede the ACK (only when client-a opens L1).
            Role::ClientA => {
                !(self.cfg.holds.ack_after_first_send && self.legs[leg].we_open == Some(true))
            }
            _ => {
                self.cfg.variant.ack_timing() == AckTiming::On200
                    || self.calls[call].upstream_ack
                    || self.fault(Fault::AckTooEarly)
            }
        };
        if ack_now {
            self.send_ack(leg);
        } else {
            self.legs[leg].ack_pending = true;
        }
        // Answer upstream on the (first) downstream 200.
        if let Some(up) = self.calls[call].up {
            if !self.calls[call].answered_up {
                self.answer_up(up);
            }
        }
        self.maybe_open(leg);
        self.flush_leg(leg);
    }

    fn on_down_failed(&mut self, leg: LegIdx, code: u16) {
        let call = self.legs[leg].call;
        let all_failed = self.calls[call].downs.iter().all(|&d| {
            matches!(
                self.legs[d].state,
                DialogState::Failed | DialogState::Terminated
            )
        });
        if all_failed {
            if let Some(up) = self.calls[call].up {
                if !self.calls[call].answered_up {
                    self.calls[call].answered_up = true;
                    let code = if (300..700).contains(&code) {
                        code
                    } else {
                        480
                    };
                    self.reject_up(up, code, "Downstream Failed");
                }
            }
        }
        self.end_call_if_done(call);
    }

    fn on_ack(&mut self, leg: LegIdx) {
        if self.legs[leg].side != Side::Up {
            return;
        }
        if self.legs[leg].state != DialogState::Answered {
            return; // Duplicate ACK.
        }
        self.legs[leg].state = DialogState::Confirmed;
        let call = self.legs[leg].call;
        self.calls[call].upstream_ack = true;
        let downs = self.calls[call].downs.clone();
        for d in downs {
            if self.legs[d].ack_pending {
                self.send_ack(d);
            }
        }
        self.maybe_open(leg);
        for d in self.calls[call].downs.clone() {
            self.maybe_open(d);
        }
    }

    fn on_bye(&mut self, leg: LegIdx, from: SocketAddr, msg: SipMessage) {
        if let Some(r) = self.legs[leg].bye_response.clone() {
            self.send_sip(Some(leg), from, r);
            return;
        }
        // A BYE that overtook a lost ACK confirms the dialog all the same: act on the ACK
        // first, or down legs waiting for it would never be ACKed nor their links opened.
        if self.legs[leg].side == Side::Up && self.legs[leg].state == DialogState::Answered {
            self.on_ack(leg);
        }
        let ok = build_response(&msg, 200, "OK", None, None, None);
        self.legs[leg].bye_response = Some(ok.clone());
        self.send_sip(Some(leg), from, ok);
        let call = self.legs[leg].call;
        if self.legs[leg].side == Side::Up {
            self.calls[call].bye_from_up = true;
        }
        self.legs[leg].state = DialogState::Terminated;
        self.bp_legs.push(leg);
        self.close_session(leg);
        for d in self.calls[call].downs.clone() {
            self.maybe_bye(d);
        }
        self.end_call_if_done(call);
    }

    /// A middle entity ends a down leg once the upstream BYE came and all content went down.
    fn maybe_bye(&mut self, leg: LegIdx) {
        let l = &self.legs[leg];
        if l.side != Side::Down || l.state != DialogState::Confirmed {
            return;
        }
        let call = l.call;
        let done = match self.cfg.role {
            Role::ClientA => {
                (l.content_done && l.outstanding == 0 && l.pending.is_empty()) || l.media_failed
            }
            _ => {
                self.calls[call].bye_from_up
                    && ((l.pending.is_empty() && l.outstanding == 0) || l.media_failed)
                    && !self.fault(Fault::NoByeDownstream)
            }
        };
        if done {
            self.send_bye(leg);
        }
    }

    fn end_call_if_done(&mut self, call: CallIdx) {
        if self.calls[call].ended {
            return;
        }
        let c = &self.calls[call];
        let legs: Vec<LegIdx> = c.up.into_iter().chain(c.downs.iter().copied()).collect();
        let all_done = !legs.is_empty()
            && legs.iter().all(|&l| {
                matches!(
                    self.legs[l].state,
                    DialogState::Terminated | DialogState::Failed
                )
            });
        if !all_done {
            return;
        }
        let ok = legs
            .iter()
            .all(|&l| self.legs[l].state == DialogState::Terminated && !self.legs[l].media_failed)
            && self.calls[call]
                .delivery
                .as_ref()
                .map(|d| d.delivered)
                .unwrap_or(true);
        for &l in &legs {
            self.close_session(l);
        }
        let c = &mut self.calls[call];
        c.ended = true;
        c.content = None;
        let detail = if ok {
            "clean teardown".to_string()
        } else {
            "session failed".to_string()
        };
        let id = c.id;
        self.out.push_back(Output::Event(NodeEvent::SessionEnded {
            session: id,
            ok,
            detail,
        }));
    }

    fn on_timer(&mut self, leg: LegIdx, kind: TimerKind, iv: Duration) {
        let t2 = self.cfg.timers.t2;
        let state = self.legs[leg].state;
        match kind {
            TimerKind::InviteRetx => {
                if state == DialogState::Inviting && self.legs[leg].last_response.is_none() {
                    if let Some(inv) = self.legs[leg].invite.clone() {
                        let to = self.legs[leg].invite_dest;
                        self.send_sip(Some(leg), to, inv);
                        self.arm(leg, TimerKind::InviteRetx, iv * 2);
                    }
                }
            }
            TimerKind::InviteTimeout => {
                if state == DialogState::Inviting && self.legs[leg].side == Side::Down {
                    self.legs[leg].state = DialogState::Failed;
                    self.bp_legs.push(leg);
                    self.warn(format!(
                        "INVITE to {} timed out (Timer B)",
                        self.legs[leg].remote_uri
                    ));
                    self.on_down_failed(leg, 408);
                }
            }
            TimerKind::OkRetx => {
                if state == DialogState::Answered {
                    if let Some(ok) = self.legs[leg].last_response.clone() {
                        let peer = self.legs[leg].peer;
                        self.send_sip(Some(leg), peer, ok);
                        self.arm(leg, TimerKind::OkRetx, (iv * 2).min(t2));
                    }
                }
            }
            TimerKind::OkTimeout => {
                if state == DialogState::Answered {
                    self.warn(format!(
                        "no ACK for the 200 to {} (64*T1)",
                        self.legs[leg].remote_uri
                    ));
                    self.legs[leg].state = DialogState::Failed;
                    self.bp_legs.push(leg);
                    let call = self.legs[leg].call;
                    self.calls[call].bye_from_up = true;
                    for d in self.calls[call].downs.clone() {
                        self.legs[d].media_failed = true;
                        self.bp_legs.push(d);
                        self.maybe_bye(d);
                    }
                    self.end_call_if_done(call);
                }
            }
            TimerKind::ByeRetx => {
                if state == DialogState::Closing {
                    if let Some(bye) = self.legs[leg].bye.clone() {
                        self.send_in_dialog(leg, bye);
                        self.arm(leg, TimerKind::ByeRetx, (iv * 2).min(t2));
                    }
                }
            }
            TimerKind::HoldAnswer => {
                self.legs[leg].answer_due = true;
                self.answer_up(leg);
            }
            TimerKind::HoldAck => {
                if self.legs[leg].state == DialogState::Answered {
                    self.send_ack(leg);
                }
            }
            TimerKind::HoldBind => self.bind(leg),
            TimerKind::HoldOpen => {
                self.legs[leg].open_due = true;
                self.maybe_open(leg);
            }
            TimerKind::MsrpTimeout => {
                let l = &self.legs[leg];
                if l.session_closed || l.media_failed {
                    return;
                }
                let since = l
                    .msrp_progress
                    .map(|t| self.now.saturating_duration_since(t))
                    .unwrap_or_default();
                if l.outstanding > 0 && since >= MSRP_TIMEOUT {
                    let uri = l.remote_uri.clone();
                    self.warn(format!(
                        "no MSRP response from {uri} for {}s",
                        since.as_secs()
                    ));
                    self.legs[leg].media_failed = true;
                    self.bp_legs.push(leg);
                    self.maybe_bye(leg);
                } else {
                    let left = MSRP_TIMEOUT.saturating_sub(if l.outstanding > 0 {
                        since
                    } else {
                        Duration::ZERO
                    });
                    if l.outstanding == 0 {
                        self.legs[leg].msrp_progress = Some(self.now);
                    }
                    self.arm(
                        leg,
                        TimerKind::MsrpTimeout,
                        left.max(Duration::from_millis(1)),
                    );
                }
            }
            TimerKind::ByeTimeout => {
                if state == DialogState::Closing {
                    self.warn(format!(
                        "BYE to {} got no answer (Timer F)",
                        self.legs[leg].remote_uri
                    ));
                    self.legs[leg].state = DialogState::Terminated;
                    self.bp_legs.push(leg);
                    self.legs[leg].media_failed = true;
                    self.bp_legs.push(leg);
                    self.close_session(leg);
                    let call = self.legs[leg].call;
                    self.end_call_if_done(call);
                }
            }
        }
    }

    // ------------------------------------------------------------------ client-a

    fn start_send(&mut self, content: Arc<dyn ContentSource>) {
        if self.cfg.role != Role::ClientA {
            self.warn("only client-a sends".into());
            return;
        }
        let topo = self.cfg.topology.clone();
        let call = self.new_call();
        let cpim = Cpim::wrap(
            &topo.sender,
            &topo.group,
            &new_ident(&mut self.rng),
            "application/octet-stream",
            Bytes::new(),
            self.wall_now(),
        );
        // The content is never copied into the CPIM object: chunks are cut from the wrapper's
        // head and the content source.
        let head = Bytes::from(cpim.encode_head());
        let total = head.len() as u64 + content.len();
        self.calls[call].chunks = chunk_ranges(total, self.cfg.variant.chunk_size);
        self.calls[call].content = Some((head, content));
        let (ruri, members) = match self.cfg.variant.group {
            GroupKind::Predefined => (topo.group.clone(), None),
            GroupKind::Adhoc => (
                topo.factory.clone(),
                Some(topo.members.iter().map(|m| m.uri.clone()).collect()),
            ),
        };
        self.invite_down(call, ruri.clone(), ruri, topo.pf_a.sip, members);
    }

    /// client-a writes content chunks while the link has room.
    fn pump(&mut self, call: CallIdx) {
        let Some(&leg) = self.calls[call].downs.first() else {
            return;
        };
        if !self.legs[leg].ready || self.calls[call].content.is_none() {
            return;
        }
        let Some(conn) = self.legs[leg].conn else {
            return;
        };
        let high = self.cfg.high_water;
        while self.calls[call].next_chunk < self.calls[call].chunks.len() {
            if self
                .conns
                .get(&conn)
                .map(|c| c.unflushed >= high)
                .unwrap_or(true)
            {
                break;
            }
            let (range, flag, off, len) = self.calls[call].chunks[self.calls[call].next_chunk];
            self.calls[call].next_chunk += 1;
            let body = object_pieces(
                self.calls[call].content.as_ref().expect("content"),
                off,
                len,
            );
            let tid = new_ident(&mut self.rng);
            let l = &self.legs[leg];
            let Some(to) = l.remote_sdp.as_ref().map(|s| s.next_hop().clone()) else {
                return;
            };
            let head = send_head(
                &tid,
                &to,
                &l.local_path,
                &self.calls[call].message_id,
                range,
                Some("message/cpim"),
            );
            let mut buf = BytesMut::new();
            head.encode(&mut buf);
            let mut tail = BytesMut::new();
            encode_end(&mut tail, &tid, flag, true);
            let last = flag == Flag::End;
            self.legs[leg].outstanding += 1;
            if last {
                self.legs[leg].content_done = true;
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.tx.insert(tid, (leg, last));
            }
            self.write(conn, buf.freeze());
            for piece in body {
                self.write(conn, piece);
            }
            self.write(conn, tail.freeze());
            // Ordering choice "ACK after the first SEND": the ACK goes now.
            if self.legs[leg].ack_pending {
                self.send_ack(leg);
            }
        }
    }

    fn pump_all(&mut self) {
        if self.cfg.role == Role::ClientA {
            for c in 0..self.calls.len() {
                if !self.calls[c].ended {
                    self.pump(c);
                }
            }
        }
    }

    // ------------------------------------------------------------------ MSRP links

    /// Opens (or reuses) the link of `leg` when this node is its opener and the trigger fired.
    fn maybe_open(&mut self, leg: LegIdx) {
        let l = &self.legs[leg];
        if l.we_open != Some(true) || l.open_requested || l.remote_sdp.is_none() || l.session_closed
        {
            return;
        }
        let call = l.call;
        let early = self.fault(Fault::EarlyTrigger);
        let fired = match (l.side, self.cfg.role) {
            (Side::Down, role) if early && role != Role::ClientA => true,
            (Side::Up, _) if early => {
                matches!(l.state, DialogState::Answered | DialogState::Confirmed)
            }
            (Side::Down, Role::ClientA) => {
                matches!(l.state, DialogState::Answered | DialogState::Confirmed)
            }
            (Side::Down, role) => {
                let trig = if role == Role::X {
                    self.cfg.variant.x_trigger()
                } else {
                    self.cfg.variant.trigger
                };
                match trig {
                    Trigger::On200 => true, // The 200 arrived: remote_sdp is set.
                    Trigger::OnAck => self.calls[call].upstream_ack,
                    Trigger::OnSend => self.calls[call].got_send,
                }
            }
            // The INVITE receiver opens on the ACK of its leg.
            (Side::Up, _) => l.state == DialogState::Confirmed,
        };
        if !fired {
            return;
        }
        if self.fault(Fault::LateTrigger) && !l.open_due {
            // Any other event until the timer fires must not open it early either.
            if !l.open_held {
                self.legs[leg].open_held = true;
                self.arm(leg, TimerKind::HoldOpen, Duration::from_secs(3));
            }
            return;
        }
        let target_uri = l.remote_sdp.as_ref().expect("checked").next_hop().clone();
        let wrong_target = self
            .fault(Fault::ConnectWrongTarget)
            .then_some(l.remote_target);
        let Some(target) = wrong_target.or_else(|| target_uri.socket_addr()) else {
            self.warn(format!(
                "cannot connect to {target_uri}: host is not an IP address"
            ));
            self.legs[leg].media_failed = true;
            self.bp_legs.push(leg);
            return;
        };
        self.legs[leg].open_requested = true;
        if self.cfg.variant.reuse && !self.fault(Fault::NoReuse) {
            let existing = self
                .conns
                .iter()
                .find(|(_, c)| c.target == Some(target) && !c.closed)
                .map(|(id, _)| *id);
            if let Some(conn) = existing {
                self.attach(leg, conn);
                if self.conns[&conn].connected {
                    self.bind(leg);
                }
                return;
            }
        }
        let conn = self.new_conn_id();
        self.conns
            .insert(conn, Conn::new(Some(target), false, &self.cfg.limits));
        self.attach(leg, conn);
        self.out.push_back(Output::Connect {
            conn,
            local_ip: self.cfg.msrp.ip(),
            to: target,
        });
    }

    fn attach(&mut self, leg: LegIdx, conn: ConnId) {
        self.legs[leg].conn = Some(conn);
        self.bp_legs.push(leg);
        self.bp_conns.push(conn);
        let txs = std::mem::take(&mut self.legs[leg].pending_tx);
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.legs.contains(&leg) {
                c.legs.push(leg);
            }
            for (tid, last) in txs {
                c.tx.insert(tid, (leg, last));
            }
        }
    }

    fn on_connected(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.connected = true;
        for leg in c.legs.clone() {
            self.bind(leg);
        }
    }

    /// The active side's binding SEND (bodiless), then whatever waited for the link.
    fn bind(&mut self, leg: LegIdx) {
        let Some(conn) = self.legs[leg].conn else {
            return;
        };
        let delay = self.cfg.holds.send_delay;
        if !delay.is_zero() && !self.legs[leg].bind_held {
            self.legs[leg].bind_held = true;
            self.arm(leg, TimerKind::HoldBind, delay);
            return;
        }
        if self.fault(Fault::NoBindSend) {
            self.legs[leg].ready = true;
            self.flush_leg(leg);
            let call = self.legs[leg].call;
            self.pump(call);
            return;
        }
        let Some(to) = self.legs[leg]
            .remote_sdp
            .as_ref()
            .map(|s| s.next_hop().clone())
        else {
            return;
        };
        let tid = new_ident(&mut self.rng);
        let message_id = new_ident(&mut self.rng);
        let head = send_head(
            &tid,
            &to,
            &self.legs[leg].local_path,
            &message_id,
            ByteRange {
                start: 1,
                end: Some(0),
                total: Some(0),
            },
            None,
        );
        let mut buf = BytesMut::new();
        head.encode(&mut buf);
        encode_end(&mut buf, &tid, Flag::End, false);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.tx.insert(tid, (leg, false));
        }
        self.legs[leg].outstanding += 1;
        self.watch_msrp(leg);
        self.write_ctl(conn, buf.freeze());
        self.legs[leg].ready = true;
        self.flush_leg(leg);
        let call = self.legs[leg].call;
        self.pump(call);
    }

    /// Starts the 30 s SEND-response watchdog of a leg once its link carries requests.
    fn watch_msrp(&mut self, leg: LegIdx) {
        if self.legs[leg].msrp_progress.is_none() {
            self.legs[leg].msrp_progress = Some(self.now);
            self.arm(leg, TimerKind::MsrpTimeout, MSRP_TIMEOUT);
        }
    }

    fn write(&mut self, conn: ConnId, data: Bytes) {
        if data.is_empty() {
            return;
        }
        match self.conns.get_mut(&conn) {
            Some(c) if !c.closed => c.unflushed += data.len(),
            _ => return, // Closed or lost: nothing may be written any more.
        }
        self.bp_conns.push(conn);
        self.out.push_back(Output::MsrpWrite { conn, data });
    }

    /// Queues relay bytes for a leg, writing at once when its link is ready.
    fn push_leg(&mut self, leg: LegIdx, data: Bytes) {
        self.push_pending(leg, Pending::Data(data));
    }

    fn push_pending(&mut self, leg: LegIdx, item: Pending) {
        let l = &mut self.legs[leg];
        if l.media_failed || l.session_closed {
            return;
        }
        if let Pending::Data(d) = &item {
            l.pending_bytes += d.len();
        }
        l.pending.push_back(item);
        self.bp_legs.push(leg);
        self.flush_leg(leg);
    }

    /// Writes a whole message (response, binding SEND) unless a relayed message is in
    /// progress on the connection, in which case it goes right after that message's end-line.
    fn write_ctl(&mut self, conn: ConnId, data: Bytes) {
        match self.conns.get_mut(&conn) {
            Some(c) if c.busy.is_some() => c.deferred.push_back(data),
            Some(_) => self.write(conn, data),
            None => {}
        }
    }

    fn flush_leg(&mut self, leg: LegIdx) {
        let Some(conn) = self.legs[leg].conn else {
            return;
        };
        self.flush_conn(conn, Some(leg));
    }

    /// Writes queued relay data of the legs on `conn`, one message at a time, starting with
    /// `first`; deferred control messages go between messages.
    fn flush_conn(&mut self, conn: ConnId, first: Option<LegIdx>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let mut order: Vec<LegIdx> = first.into_iter().collect();
        order.extend(c.legs.iter().copied().filter(|l| Some(*l) != first));
        let mut progress = true;
        while progress {
            progress = false;
            for &leg in &order {
                let busy = self.conns.get(&conn).and_then(|c| c.busy);
                if busy.is_some() && busy != Some(leg) {
                    continue;
                }
                let l = &self.legs[leg];
                if !l.ready || l.pending.is_empty() || l.conn != Some(conn) {
                    continue;
                }
                if !self.admitted_to_write(leg) {
                    continue;
                }
                let l = &self.legs[leg];
                let Some(to) = l.remote_sdp.as_ref().map(|s| s.next_hop().clone()) else {
                    continue;
                };
                let from = l.local_path.clone();
                // Faults: the upstream To-Path copied; a Byte-Range starting at 0.
                let up = self.calls[l.call].up;
                let to = match up {
                    Some(u) if self.fault(Fault::WrongToPath) => self.legs[u].local_path.clone(),
                    _ => to,
                };
                let zero_range = self.fault(Fault::BadByteRange);
                while let Some(item) = self.legs[leg].pending.pop_front() {
                    let (data, busy) = match item {
                        Pending::Data(d) => {
                            let l = &mut self.legs[leg];
                            l.pending_bytes = l.pending_bytes.saturating_sub(d.len());
                            (d, Some(leg))
                        }
                        Pending::Head {
                            tid,
                            message_id,
                            range,
                            content_type,
                        } => {
                            let range = if zero_range {
                                ByteRange { start: 0, ..range }
                            } else {
                                range
                            };
                            let head = send_head(
                                &tid,
                                &to,
                                &from,
                                &message_id,
                                range,
                                Some(&content_type),
                            );
                            let mut buf = BytesMut::new();
                            head.encode(&mut buf);
                            (buf.freeze(), Some(leg))
                        }
                        Pending::End(d) => (d, None),
                    };
                    self.write(conn, data);
                    progress = true;
                    let c = self.conns.get_mut(&conn).expect("conn");
                    c.busy = busy;
                    self.bp_conns.push(conn);
                    if busy.is_none() {
                        let deferred: Vec<Bytes> = c.deferred.drain(..).collect();
                        for d in deferred {
                            self.write(conn, d);
                        }
                        // Let other legs on a shared connection take their turn.
                        break;
                    }
                }
                self.maybe_bye(leg);
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.busy.is_none() && !c.deferred.is_empty() {
                let deferred: Vec<Bytes> = c.deferred.drain(..).collect();
                for d in deferred {
                    self.write(conn, d);
                }
            }
        }
    }

    /// x: whether down leg `leg` may write relay data now, taking a free slot or joining the
    /// queue for one. Other roles, and groups no larger than the window, always may.
    fn admitted_to_write(&mut self, leg: LegIdx) -> bool {
        if self.cfg.role != Role::X || self.legs[leg].side != Side::Down {
            return true;
        }
        match self.legs[leg].admit {
            Admit::Active | Admit::Done => true,
            Admit::Waiting => false,
            Admit::No => {
                self.bp_legs.push(leg);
                if self.admit_queue.is_empty() && self.fits(leg) {
                    self.start_turn(leg);
                    true
                } else {
                    self.legs[leg].admit = Admit::Waiting;
                    self.admit_queue.push_back(leg);
                    false
                }
            }
        }
    }

    /// The message bytes a turn of `leg` holds (1 MiB when the sender gave no total).
    fn turn_size(&self, leg: LegIdx) -> u64 {
        self.calls[self.legs[leg].call].msg_total.unwrap_or(1 << 20)
    }

    /// Whether a turn of `leg` fits in the window now (always when nobody is being served).
    fn fits(&self, leg: LegIdx) -> bool {
        self.admitted == 0
            || self.fanout_reserved + self.turn_size(leg) <= self.cfg.limits.fanout_window
    }

    fn start_turn(&mut self, leg: LegIdx) {
        let size = self.turn_size(leg);
        self.admitted += 1;
        self.fanout_reserved += size;
        let l = &mut self.legs[leg];
        l.admit = Admit::Active;
        l.reserved = size;
    }

    /// x: a leg gives its slot back once its message is answered (the member's pf-b has all
    /// of it) or the leg can no longer carry it; the next waiting legs start.
    fn update_admission(&mut self) {
        if self.cfg.role != Role::X || (self.admitted == 0 && self.admit_queue.is_empty()) {
            return;
        }
        let mut i = 0;
        while i < self.bp_legs.len() {
            let leg = self.bp_legs[i];
            i += 1;
            let l = &self.legs[leg];
            let finished = (l.content_done && l.outstanding == 0 && l.pending.is_empty())
                || l.media_failed
                || l.session_closed
                || matches!(l.state, DialogState::Failed | DialogState::Terminated);
            if !finished {
                continue;
            }
            match l.admit {
                Admit::Active => {
                    self.admitted -= 1;
                    self.fanout_reserved -= l.reserved;
                }
                // Dropped from the queue when its turn comes.
                Admit::Waiting => {}
                _ => continue,
            }
            let l = &mut self.legs[leg];
            l.admit = Admit::Done;
            l.reserved = 0;
        }
        while let Some(&leg) = self.admit_queue.front() {
            if self.legs[leg].admit != Admit::Waiting {
                self.admit_queue.pop_front();
                continue;
            }
            if !self.fits(leg) {
                break;
            }
            self.admit_queue.pop_front();
            self.start_turn(leg);
            self.bp_legs.push(leg);
            self.flush_leg(leg);
        }
    }

    /// Whether down leg `d` has more writable bytes queued than the high-water mark.
    fn leg_over(&self, d: LegIdx) -> bool {
        let l = &self.legs[d];
        if l.side != Side::Down
            || l.media_failed
            || matches!(l.state, DialogState::Failed | DialogState::Terminated)
        {
            return false;
        }
        let conn = l.conn.and_then(|c| self.conns.get(&c));
        let unflushed = conn.map(|c| c.unflushed).unwrap_or(0);
        // Bytes waiting behind another leg's message on a shared connection cannot drain
        // until that message ends, which needs more upstream bytes: pausing for them would
        // deadlock, so only the writable backlog counts.
        let blocked = conn
            .map(|c| c.busy.is_some() && c.busy != Some(d))
            .unwrap_or(false)
            // Likewise a fan-out leg waiting for its turn: it drains only after others end.
            || matches!(l.admit, Admit::Waiting);
        let queued = if blocked { 0 } else { l.pending_bytes };
        queued + unflushed > self.cfg.high_water
    }

    /// Whether the link `conn` must not be read: a call whose up leg it carries has a down
    /// leg over the high-water mark. (A link that carries no up leg any more is read: the
    /// peer's close must be seen.)
    fn up_conn_paused(&self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        c.legs.iter().any(|&l| {
            let call = &self.calls[self.legs[l].call];
            call.up == Some(l) && call.over_downs > 0
        })
    }

    /// Stops reading an upstream link while any leg it feeds is over the high-water mark,
    /// and reads it again once none is. Incremental: only the legs and connections touched
    /// since the last input are looked at (x with 10,000 down legs gets an MSRP response or
    /// a flush report per member and chunk; a full scan each time was quadratic).
    fn update_backpressure(&mut self) {
        if !matches!(self.cfg.role, Role::PfA | Role::X | Role::PfB) {
            self.bp_legs.clear();
            self.bp_conns.clear();
            return;
        }
        let mut legs = std::mem::take(&mut self.bp_legs);
        let conns = std::mem::take(&mut self.bp_conns);
        let mut ups: Vec<ConnId> = Vec::new();
        for &conn in &conns {
            if let Some(c) = self.conns.get(&conn) {
                legs.extend(c.legs.iter().copied());
                ups.push(conn);
            }
        }
        for &leg in &legs {
            let over = self.leg_over(leg);
            if over == self.legs[leg].over {
                continue;
            }
            self.legs[leg].over = over;
            let call = self.legs[leg].call;
            let c = &mut self.calls[call];
            if over {
                c.over_downs += 1;
            } else {
                c.over_downs -= 1;
            }
            if let Some(uc) = c.up.and_then(|u| self.legs[u].conn) {
                ups.push(uc);
            }
        }
        ups.sort_unstable();
        ups.dedup();
        for conn in ups {
            let pause = self.up_conn_paused(conn);
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.paused != pause && !c.closed {
                c.paused = pause;
                self.out.push_back(if pause {
                    Output::PauseRead { conn }
                } else {
                    Output::ResumeRead { conn }
                });
            }
        }
        // Keep the buffers (no allocation per input).
        legs.clear();
        self.bp_legs = legs;
        let mut conns = conns;
        conns.clear();
        self.bp_conns = conns;
        #[cfg(debug_assertions)]
        self.check_backpressure();
    }

    /// Debug builds: the incremental state equals a full recomputation (small nodes only).
    #[cfg(debug_assertions)]
    fn check_backpressure(&self) {
        if self.legs.len() > 400 {
            return;
        }
        let mut counts = vec![0usize; self.calls.len()];
        for (i, l) in self.legs.iter().enumerate() {
            let over = self.leg_over(i);
            assert_eq!(l.over, over, "{}: leg {i} over flag stale", self.cfg.name);
            if over {
                counts[l.call] += 1;
            }
        }
        for (i, c) in self.calls.iter().enumerate() {
            assert_eq!(c.over_downs, counts[i], "{}: call {i} count", self.cfg.name);
        }
        for (&id, c) in &self.conns {
            if !c.closed {
                let want = self.up_conn_paused(id);
                assert_eq!(c.paused, want, "{}: link {id} paused", self.cfg.name);
            }
        }
    }

    fn close_session(&mut self, leg: LegIdx) {
        let l = &mut self.legs[leg];
        if l.session_closed {
            return;
        }
        l.session_closed = true;
        l.ready = false;
        l.pending.clear();
        l.pending_bytes = 0;
        self.bp_legs.push(leg);
        let l = &mut self.legs[leg];
        if let Some(sid) = l.local_path.session_id.clone() {
            self.sessions.remove(&sid);
        }
        let call = l.call;
        let own = l.conn;
        if let Some(conn) = own {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.legs.retain(|&x| x != leg);
            }
            self.bp_conns.push(conn);
        }
        if self.cfg.variant.reuse && !self.fault(Fault::NoReuse) {
            // Few connections (one per peer): scanning them is cheap.
            self.close_idle_conns(call);
        } else if let Some(conn) = own {
            // Without reuse only this leg's connection can have become idle: no scan of
            // every connection on the fan-out's hot path (10,000 members).
            if let Some(c) = self.conns.get_mut(&conn) {
                if c.legs.is_empty() && !c.closed && c.target.is_some() {
                    c.closed = true;
                    self.out.push_back(Output::Close { conn });
                }
            }
        }
    }

    /// Only the side that opened a connection closes it when idle: the opener may be about
    /// to reuse it for another session (RFC 4975 §5.4, K3), and the accepting side cannot
    /// know. The accepting side closes when the opener does. With reuse, an idle connection
    /// stays open while a session of the same call may still want it (a member that answers
    /// late), so the late session does not open a second connection to the same peer.
    fn close_idle_conns(&mut self, call: CallIdx) {
        let reuse = self.cfg.variant.reuse && !self.fault(Fault::NoReuse);
        let waiting: Vec<Option<SocketAddr>> = if reuse {
            let c = &self.calls[call];
            c.downs
                .iter()
                .chain(c.up.iter())
                .map(|&l| &self.legs[l])
                .filter(|l| !l.session_closed && l.conn.is_none() && l.we_open != Some(false))
                .filter(|l| !matches!(l.state, DialogState::Failed | DialogState::Terminated))
                .map(|l| {
                    l.remote_sdp
                        .as_ref()
                        .and_then(|s| s.next_hop().socket_addr())
                })
                .collect()
        } else {
            Vec::new()
        };
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.legs.is_empty() && !c.closed && c.target.is_some())
            // A session whose peer is not known yet may still go to any target.
            .filter(|(_, c)| !waiting.iter().any(|w| w.is_none() || *w == c.target))
            .map(|(id, _)| *id)
            .collect();
        for conn in idle {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.closed = true;
            }
            self.out.push_back(Output::Close { conn });
        }
    }

    fn on_conn_lost(&mut self, conn: ConnId, reason: &str) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let was_closed = c.closed;
        c.closed = true;
        let legs = c.legs.clone();
        let mid_message = c.cur.is_some();
        self.conns.remove(&conn);
        for leg in legs {
            let l = &self.legs[leg];
            // The peer may close as soon as it answered our BYE, before we read that answer.
            let finished = matches!(l.state, DialogState::Closing | DialogState::Terminated)
                && l.outstanding == 0
                && l.pending.is_empty();
            if l.session_closed || finished {
                continue;
            }
            if !was_closed || mid_message {
                self.warn(format!(
                    "MSRP link of {} lost: {reason}",
                    self.legs[leg].remote_uri
                ));
            }
            self.legs[leg].media_failed = true;
            self.bp_legs.push(leg);
            self.legs[leg].conn = None;
            self.bp_legs.push(leg);
            self.legs[leg].ready = false;
            self.maybe_bye(leg);
        }
    }

    fn on_msrp_data(&mut self, conn: ConnId, data: Bytes) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.parser.push_bytes(data);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            // Formatted only on the error paths (this loop is the relay's hot path).
            let peer = c.peer;
            let peer = move || peer.map_or_else(|| "?".to_string(), |p| p.to_string());
            let ev = match c.parser.next() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    self.warn(format!("MSRP from {} (link {conn}): {e}", peer()));
                    self.out.push_back(Output::Close { conn });
                    self.on_conn_lost(conn, "malformed MSRP");
                    return;
                }
            };
            // A chunk that never ends is cut at the limit (the relay streams it, but the
            // recorder and the peer's queues would grow with it).
            match &ev {
                MsrpEvent::Head(_) | MsrpEvent::End { .. } => c.chunk_bytes = 0,
                MsrpEvent::Body(b) => {
                    c.chunk_bytes += b.len() as u64;
                    let max = self.cfg.limits.msrp_chunk;
                    if c.chunk_bytes > max {
                        let what = c
                            .cur
                            .as_ref()
                            .map(|m| {
                                format!(
                                    "{} {}",
                                    m.method,
                                    m.range.map(|r| r.to_string()).unwrap_or_default()
                                )
                            })
                            .unwrap_or_default();
                        let near = String::from_utf8_lossy(&b[..b.len().min(32)]).into_owned();
                        self.warn(format!(
                            "MSRP from {} (link {conn}): chunk ({what}) longer than \
                             max-msrp-chunk ({max} bytes) (near {near:?})",
                            peer()
                        ));
                        self.out.push_back(Output::Close { conn });
                        self.on_conn_lost(conn, "MSRP chunk over the limit");
                        return;
                    }
                }
            }
            match ev {
                MsrpEvent::Head(h) => self.on_msrp_head(conn, h),
                MsrpEvent::Body(b) => self.on_msrp_body(conn, b),
                MsrpEvent::End { tid, flag } => self.on_msrp_end(conn, tid, flag),
            }
        }
    }

    fn on_msrp_head(&mut self, conn: ConnId, h: MsrpHead) {
        let is_request = matches!(h.start, StartLine::Request { .. });
        let mut m = InMsg {
            leg: None,
            is_request,
            method: h.method().unwrap_or_default().to_string(),
            code: h.code().unwrap_or(0),
            from_path: h.from_path().ok().and_then(|v| v.into_iter().next()),
            to_path: h.to_path().ok().and_then(|v| v.into_iter().next()),
            range: h.byte_range().and_then(|r| r.ok()),
            seen: 0,
            has_body: h.has_body,
            relays: vec![],
            held: None,
            reject: None,
        };
        if !is_request {
            let entry = self.conns.get_mut(&conn).and_then(|c| c.tx.remove(&h.tid));
            if let Some((leg, last)) = entry {
                m.leg = Some(leg);
                let now = self.now;
                self.bp_legs.push(leg);
                let l = &mut self.legs[leg];
                l.outstanding = l.outstanding.saturating_sub(1);
                l.msrp_progress = Some(now);
                if m.code != 200 {
                    l.media_failed = true;
                    let uri = l.remote_uri.clone();
                    self.warn(format!("MSRP {} for a SEND to {uri}", m.code));
                }
                let _ = last;
                self.maybe_bye(leg);
                if self.cfg.role == Role::ClientA {
                    let call = self.legs[leg].call;
                    self.pump(call);
                }
            } else {
                self.warn(format!(
                    "MSRP response {} for unknown transaction {}",
                    m.code, h.tid
                ));
            }
            self.conns.get_mut(&conn).expect("conn").cur = Some(m);
            return;
        }
        // A request: find the session by To-Path (RFC 4975 §7.3).
        let leg = m
            .to_path
            .as_ref()
            .and_then(|u| u.session_id.clone())
            .and_then(|sid| self.sessions.get(&sid).copied())
            .filter(|&l| {
                m.to_path
                    .as_ref()
                    .map(|u| u.matches(&self.legs[l].local_path))
                    .unwrap_or(false)
            });
        match leg {
            None => m.reject = Some((481, "No Such Session")),
            Some(l) => {
                match self.legs[l].conn {
                    None => {
                        // The passive side binds the session to the connection (§5.4).
                        self.attach(l, conn);
                        self.legs[l].ready = true;
                        self.watch_msrp(l);
                        self.flush_leg(l);
                        let call = self.legs[l].call;
                        self.pump(call);
                    }
                    Some(c) if c != conn => m.reject = Some((506, "Session Already Bound")),
                    Some(_) => {
                        if !self.legs[l].ready {
                            self.legs[l].ready = true;
                            self.flush_leg(l);
                        }
                    }
                }
                if m.reject.is_none() {
                    m.leg = Some(l);
                }
            }
        }
        if let (Some(l), "SEND") = (m.leg, m.method.as_str()) {
            let call = self.legs[l].call;
            let first_send = !self.calls[call].got_send;
            if self.legs[l].side == Side::Up {
                self.calls[call].got_send = true;
                if first_send {
                    for d in self.calls[call].downs.clone() {
                        self.maybe_open(d);
                    }
                }
                if h.has_body && matches!(self.cfg.role, Role::PfA | Role::X | Role::PfB) {
                    // Relay: a new SEND on every live down leg, body streamed as it arrives.
                    let msg_id = h.message_id().unwrap_or("").to_string();
                    let ctype = h.content_type().unwrap_or("message/cpim").to_string();
                    let range = m.range.unwrap_or(ByteRange {
                        start: 1,
                        end: None,
                        total: None,
                    });
                    if let Some(t) = range.total {
                        self.calls[call].msg_total.get_or_insert(t);
                    }
                    for d in self.calls[call].downs.clone() {
                        let dl = &self.legs[d];
                        if dl.media_failed
                            || matches!(dl.state, DialogState::Failed | DialogState::Terminated)
                        {
                            continue;
                        }
                        let tid = new_ident(&mut self.rng);
                        self.legs[d].outstanding += 1;
                        m.relays.push((d, tid.clone()));
                        let head = Pending::Head {
                            tid,
                            message_id: msg_id.clone(),
                            range,
                            content_type: ctype.clone(),
                        };
                        self.push_pending(d, head);
                    }
                }
            }
        }
        self.conns.get_mut(&conn).expect("conn").cur = Some(m);
    }

    fn on_msrp_body(&mut self, conn: ConnId, b: Bytes) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(m) = c.cur.as_mut() else { return };
        let offset = m.seen;
        m.seen += b.len() as u64;
        let relays: Vec<LegIdx> = m.relays.iter().map(|(d, _)| *d).collect();
        let leg = m.leg;
        let start = m.range.map(|r| r.start).unwrap_or(1);
        let is_send = m.is_request && m.method == "SEND" && m.reject.is_none();
        // Fault relay-truncate: each piece waits for the next, so the last one can be dropped.
        let b_relay = if self.cfg.faults.contains(&Fault::RelayTruncate) && !relays.is_empty() {
            match m.held.replace(b.clone()) {
                Some(prev) => prev,
                None => Bytes::new(),
            }
        } else {
            b.clone()
        };
        let b_relay = if self.fault(Fault::CpimAltered) {
            alter_cpim_from(b_relay)
        } else {
            b_relay
        };
        if !b_relay.is_empty() {
            for d in relays {
                self.push_leg(d, b_relay.clone());
            }
        }
        if is_send && self.cfg.role == Role::ClientB {
            if let Some(leg) = leg {
                let call = self.legs[leg].call;
                self.deliver(call, start - 1 + offset, b);
            }
        }
    }

    fn on_msrp_end(&mut self, conn: ConnId, tid: String, flag: Flag) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(m) = c.cur.take() else { return };
        if !m.is_request {
            return;
        }
        if let Some(held) = m.held.clone() {
            if flag == Flag::More {
                for (d, _) in &m.relays {
                    self.push_leg(*d, held.clone());
                }
            }
        }
        // Finish relayed copies with the same continuation flag.
        for (d, rtid) in &m.relays {
            let mut buf = BytesMut::new();
            encode_end(&mut buf, rtid, flag, true);
            let last = flag != Flag::More;
            if let Some(dc) = self.legs[*d].conn {
                if let Some(c) = self.conns.get_mut(&dc) {
                    c.tx.insert(rtid.clone(), (*d, last));
                }
            } else {
                // No link yet: registered on the connection when the leg attaches.
                self.legs[*d].pending_tx.push((rtid.clone(), last));
            }
            if last {
                self.legs[*d].content_done = true;
            }
            self.push_pending(*d, Pending::End(buf.freeze()));
        }
        // Answer the request on the connection it came in on (RFC 4975 §7.2).
        let silent = self.fault(Fault::NoMsrp200) && m.reject.is_none();
        if (m.method == "SEND" || m.reject.is_some()) && !silent {
            let (code, comment) = m.reject.unwrap_or((200, "OK"));
            if let (Some(to), Some(own)) = (m.from_path.clone(), m.to_path.clone()) {
                let mut buf = BytesMut::new();
                encode_response(&mut buf, &tid, code, comment, &to, &own);
                self.write_ctl(conn, buf.freeze());
            }
        }
        if let (Some(leg), true) = (
            m.leg,
            self.cfg.role == Role::ClientB && flag == Flag::End && m.method == "SEND" && m.has_body,
        ) {
            let call = self.legs[leg].call;
            if let Some(r) = m.range {
                let total = r.start - 1 + m.seen;
                if let Some(d) = self.calls[call].delivery.as_mut() {
                    d.tracker.set_total(total);
                }
            }
            self.check_delivered(call);
        }
    }

    // ------------------------------------------------------------------ client-b

    fn deliver(&mut self, call: CallIdx, abs_offset: u64, data: Bytes) {
        let member = self.calls[call].member.clone().unwrap_or_default();
        let session = self.calls[call].id;
        let Some(d) = self.calls[call].delivery.as_mut() else {
            return;
        };
        d.tracker.add(abs_offset + 1, data.len() as u64);
        let mut outs = Vec::new();
        match d.head_len {
            Some(_) => outs.push((abs_offset, data)),
            None => {
                if abs_offset as usize == d.head.len() {
                    d.head.extend_from_slice(&data);
                    match Cpim::parse_head(&d.head) {
                        Ok(Some((_, len))) => {
                            d.head_len = Some(len as u64);
                            // Not kept: a member's first piece is up to a chunk long.
                            let rest = Bytes::from(std::mem::take(&mut d.head)).slice(len..);
                            outs.push((len as u64, rest));
                            outs.append(&mut d.early);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let msg = format!("CPIM wrapper unreadable: {e}");
                            self.warn(msg);
                            return;
                        }
                    }
                } else {
                    d.early.push((abs_offset, data));
                }
            }
        }
        let Some(h) = self.calls[call].delivery.as_ref().and_then(|d| d.head_len) else {
            return;
        };
        for (off, data) in outs {
            if data.is_empty() {
                continue;
            }
            let (off, data) = if off < h {
                let skip = (h - off) as usize;
                if skip >= data.len() {
                    continue;
                }
                (h, data.slice(skip..))
            } else {
                (off, data)
            };
            self.out.push_back(Output::Event(NodeEvent::Data {
                member: member.clone(),
                session,
                offset: off - h,
                data,
            }));
        }
    }

    fn check_delivered(&mut self, call: CallIdx) {
        let member = self.calls[call].member.clone().unwrap_or_default();
        let session = self.calls[call].id;
        let Some(d) = self.calls[call].delivery.as_mut() else {
            return;
        };
        if d.delivered || !d.tracker.is_complete() {
            return;
        }
        d.delivered = true;
        let bytes = d
            .tracker
            .total()
            .unwrap_or(0)
            .saturating_sub(d.head_len.unwrap_or(0));
        self.out.push_back(Output::Event(NodeEvent::Delivered {
            member,
            session,
            bytes,
        }));
    }
}

/// The bytes `[off, off + len)` of a CPIM object made of `head` then the content source.
fn object_pieces(obj: &(Bytes, Arc<dyn ContentSource>), off: u64, len: u64) -> Vec<Bytes> {
    let (head, content) = obj;
    let (mut off, end) = (off, off + len);
    let h = head.len() as u64;
    let mut out = Vec::new();
    if off < h {
        out.push(head.slice(off as usize..end.min(h) as usize));
        off = end.min(h);
    }
    while off < end {
        let piece = content.read(off - h, (end - off).min(usize::MAX as u64) as usize);
        if piece.is_empty() {
            break; // A source shorter than it said: the Byte-Range check will show it.
        }
        off += piece.len() as u64;
        out.push(piece);
    }
    out
}

impl Conn {
    fn new(target: Option<SocketAddr>, connected: bool, limits: &Limits) -> Conn {
        Conn {
            target,
            peer: target,
            chunk_bytes: 0,
            connected,
            parser: MsrpParser::new(limits.msrp()),
            cur: None,
            legs: vec![],
            unflushed: 0,
            paused: false,
            closed: false,
            tx: HashMap::new(),
            busy: None,
            deferred: VecDeque::new(),
        }
    }
}

/// Fault cpim-altered: upper-cases the scheme of the CPIM `From: <sip:` (same length, so the
/// Byte-Range arithmetic stays right and only the content changes).
fn alter_cpim_from(b: Bytes) -> Bytes {
    match memchr::memmem::find(&b, b"From: <sip:") {
        Some(i) => {
            let mut v = b.to_vec();
            v[i + 7..i + 10].copy_from_slice(b"SIP");
            Bytes::from(v)
        }
        None => b,
    }
}

/// `sip:name@127.0.0.1:5060;transport=udp` → the socket address, when the host is an IP.
pub fn sip_uri_addr(uri: &str) -> Option<SocketAddr> {
    let u = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let u = u.strip_prefix("sip:").or_else(|| u.strip_prefix("sips:"))?;
    let hostport = u.rsplit_once('@').map(|(_, h)| h).unwrap_or(u);
    let hostport = hostport.split(';').next()?;
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        return Some(a);
    }
    hostport
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 5060))
}

/// The `transport` parameter of a SIP URI, when it names UDP or TCP.
fn uri_transport(uri: &str) -> Option<Transport> {
    let u = uri.trim().trim_start_matches('<').trim_end_matches('>');
    u.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("transport") {
            return None;
        }
        match v.trim().to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            _ => None,
        }
    })
}

/// The ACK for a non-2xx final response: same branch, To from the response (§17.1.1.3).
fn non2xx_ack(invite: &SipMessage, resp: &SipMessage) -> SipMessage {
    let (transport, sent_by) = invite
        .via_sent_by()
        .unwrap_or((Transport::Udp, String::new()));
    let spec = RequestSpec {
        method: Method::Ack,
        request_uri: invite.request_uri().unwrap_or_default().to_string(),
        transport,
        sent_by,
        branch: invite.via_branch().unwrap_or_default(),
        from_uri: invite.from_uri().unwrap_or_default(),
        from_tag: invite.from_tag().unwrap_or_default(),
        to_uri: resp.to_uri().unwrap_or_default(),
        to_tag: resp.to_tag(),
        call_id: invite.call_id().unwrap_or_default().to_string(),
        cseq: invite.cseq().map(|(n, _)| n).unwrap_or(1),
        contact: None,
        extra: vec![],
        body: None,
    };
    build_request(&spec)
}
