//! What a node keeps per leg, per call and per connection.
//!
//! A leg's SIP dialog state is named after what it awaits ([`DialogState`]); actions a hold or
//! a fault delays are [`Hold`]s; the ACK of a 2xx is [`Ack`]; who opens the link is [`Opens`].

use super::role::client_b::Delivery;
use super::role::x::Admit;
use crate::codec::msrp::{ByteRange, Flag, MsrpParser, MsrpUri, ReportRequest};
use crate::codec::sdp::MsrpSdp;
use crate::codec::sip::{SipMessage, Transport};
use crate::config::Link;
use crate::entity::{ConnId, ContentSource};
use crate::limits::Limits;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};

/// A map whose keys the node made itself (connection ids, its own transaction ids) or only
/// looks up: hashed with [`FastHasher`] instead of SipHash, since the relay looks them up
/// several times per chunk and read.
pub(super) type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// A multiply-rotate hasher (FxHash's mixing step), a word at a time.
#[derive(Default, Clone, Copy)]
pub(super) struct FastHasher(u64);

impl FastHasher {
    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub(super) type LegIdx = usize;
pub(super) type CallIdx = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// We received this leg's INVITE (UAS, SDP answerer).
    Up,
    /// We sent this leg's INVITE (UAC, SDP offerer).
    Down,
}

/// Where a leg's INVITE dialog is, named after what it awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DialogState {
    /// The final response to the INVITE: UAC, the INVITE is sent; UAS, it is received and
    /// this node has not answered yet.
    AwaitOk,
    /// The ACK of the 2xx: UAS, the 200 is sent; UAC, the 200 arrived and the ACK waits (on
    /// the upstream ACK, the first SEND or a hold).
    AwaitAck,
    /// Nothing: the dialog is up (ACK sent or received).
    Confirmed,
    /// The response to this node's BYE.
    AwaitByeOk,
    /// Ended by a BYE (either way, or Timer F).
    Terminated,
    /// Rejected, timed out, or never ACKed.
    Failed,
}

/// An action held on a timer (the harness's holds, the late-trigger fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Hold {
    /// Not held yet: the first time the action is due, its timer starts.
    #[default]
    Free,
    /// Its timer runs. A held answer or link opening waits for it; a held ACK or binding
    /// SEND goes with the next attempt (the timer's).
    Held,
    /// Its timer fired: the answer or opening goes ahead.
    Due,
}

/// The held actions of a leg.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Held {
    /// The 200 on the up leg ([`crate::entity::Holds::answer_delay`]).
    pub(super) answer: Hold,
    /// The ACK of a 2xx ([`crate::entity::Holds::ack_delay`]).
    pub(super) ack: Hold,
    /// The first request on a bound link ([`crate::entity::Holds::send_delay`]).
    pub(super) bind: Hold,
    /// The link opening (the late-trigger fault).
    pub(super) open: Hold,
    /// client-a's next content chunk ([`crate::entity::Holds::chunk_gap`]).
    pub(super) chunk: Hold,
}

/// UAC: the ACK of the 2xx on a down leg.
#[derive(Debug, Clone)]
pub(super) enum Ack {
    /// Not asked for yet (no 2xx, or a held ACK).
    NotYet,
    /// Owed, waiting on the upstream ACK or (client-a's ordering choice) the first SEND.
    Owed,
    /// Sent; re-sent when the 2xx is retransmitted.
    Sent(Box<SipMessage>),
}

/// Who opens a leg's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opens {
    /// The SDP exchange has not said yet.
    Undecided,
    /// This node connects.
    We,
    /// The peer connects; this node waits for its first request.
    Peer,
}

impl Opens {
    pub(super) fn from_we_open(we_open: bool) -> Opens {
        if we_open {
            Opens::We
        } else {
            Opens::Peer
        }
    }
}

/// One SIP dialog of a call and the MSRP session negotiated in it.
pub(super) struct Leg {
    pub(super) call: CallIdx,
    pub(super) side: Side,
    pub(super) link: Link,
    /// SIP transport of this dialog: the configured one, or TCP for a request over 1300 bytes
    /// (RFC 3261 §18.1.1); for an up leg, the one its INVITE came on.
    pub(super) transport: Transport,
    // --- SIP dialog ---
    pub(super) call_id: String,
    pub(super) local_tag: String,
    pub(super) remote_tag: Option<String>,
    /// From-URI for our requests in this dialog, To-URI likewise.
    pub(super) local_uri: String,
    pub(super) remote_uri: String,
    /// Where the peer receives requests (Contact / topology).
    pub(super) remote_target: SocketAddr,
    /// Where responses go (the request's source).
    pub(super) peer: SocketAddr,
    pub(super) cseq: u32,
    pub(super) state: DialogState,
    pub(super) invite: Option<Box<SipMessage>>,
    /// UAS: the last response to the INVITE, re-sent on INVITE retransmissions.
    pub(super) last_response: Option<Box<SipMessage>>,
    /// UAC: the ACK of the 2xx.
    pub(super) ack: Ack,
    /// Actions waiting on a timer: the 200, the ACK, the first request, the link opening.
    pub(super) held: Held,
    pub(super) bye: Option<Box<SipMessage>>,
    /// UAS: end the dialog with a BYE of its own once the 2xx is ACKed (every down leg ended
    /// before it was: RFC 3261 §15, no BYE before the ACK).
    pub(super) bye_after_ack: bool,
    /// UAS: the response to the peer's BYE, re-sent on BYE retransmissions.
    pub(super) bye_response: Option<Box<SipMessage>>,
    // --- MSRP session ---
    pub(super) local_sdp: MsrpSdp,
    pub(super) local_path: MsrpUri,
    pub(super) remote_sdp: Option<Box<MsrpSdp>>,
    /// Who opens the link.
    pub(super) opens: Opens,
    pub(super) open_requested: bool,
    pub(super) conn: Option<ConnId>,
    /// The link is bound and may carry requests from us.
    pub(super) ready: bool,
    /// Relay data waiting for the link (heads are built once the peer's path is known).
    pub(super) pending: VecDeque<Pending>,
    /// Relayed SEND transactions written before the link had a connection.
    pub(super) pending_tx: Vec<(String, bool)>,
    /// The peer's Contact URI, the Request-URI of in-dialog requests.
    pub(super) remote_contact: Option<String>,
    /// Where the INVITE (its retransmissions, the ACK of a non-2xx) goes: the SIP/IP core
    /// when there is one, else the peer.
    pub(super) invite_dest: SocketAddr,
    /// The dialog's route set, URIs with their parameters (RFC 3261 §12.1): from the
    /// INVITE's Record-Route in order (UAS), or the 2xx's reversed (UAC).
    pub(super) route_set: Vec<String>,
    pub(super) pending_bytes: usize,
    /// SEND transactions awaiting a response.
    pub(super) outstanding: usize,
    /// The final (`$`) chunk of the content was written on this leg.
    pub(super) content_done: bool,
    /// Last time a SEND was answered (or the first one sent): RFC 4975 §7.1.1's 30 s rule.
    pub(super) msrp_progress: Option<Instant>,
    pub(super) media_failed: bool,
    pub(super) session_closed: bool,
    /// Backpressure: this down leg's writable backlog is over the high-water mark.
    pub(super) over: bool,
    /// Fan-out admission (x): whether this leg may write relay data now, and the message
    /// bytes its turn holds of the window.
    pub(super) admit: Admit,
    pub(super) reserved: u64,
    /// A down leg: this node waits on it for what its last chunk asked (a success REPORT,
    /// or, having asked for no responses, a short linger before the session may end).
    pub(super) report_due: bool,
    /// A down leg: a success REPORT covering the whole message came on it.
    pub(super) reported: bool,
    /// An up leg: the success REPORT this node owes its upstream once delivery downstream
    /// is reported (a middle entity reporting after delivery).
    pub(super) report_owed: Option<OwedReport>,
}

/// A success REPORT owed upstream (RFC 4975 §7.1.2).
pub(super) struct OwedReport {
    pub(super) to: Arc<MsrpUri>,
    pub(super) message_id: String,
    pub(super) range: ByteRange,
}

/// One item of relay data for a leg.
pub(super) enum Pending {
    /// A SEND head whose To-Path is filled in when the leg's peer is known. Boxed: x queues
    /// a whole message's items on each of thousands of legs, so an item's size counts.
    Head(Box<RelayHead>),
    Data(Bytes),
    /// The end-line of a relayed chunk: the connection is free for other messages after it.
    End(Bytes),
}

/// What a relayed SEND head carries besides the paths.
pub(super) struct RelayHead {
    pub(super) tid: String,
    pub(super) message_id: String,
    pub(super) range: ByteRange,
    pub(super) content_type: String,
    /// The report headers its upstream SEND carried, copied downstream.
    pub(super) reports: ReportRequest,
}

pub(super) struct Call {
    pub(super) id: u64,
    pub(super) message_id: String,
    pub(super) up: Option<LegIdx>,
    pub(super) downs: Vec<LegIdx>,
    pub(super) answered_up: bool,
    pub(super) upstream_ack: bool,
    pub(super) got_send: bool,
    pub(super) bye_from_up: bool,
    pub(super) ended: bool,
    /// client-a: the CPIM object (its head, then the content read piece by piece) and the
    /// next chunk to write.
    pub(super) content: Option<(Bytes, Arc<dyn ContentSource>)>,
    pub(super) chunks: Vec<(ByteRange, Flag, u64, u64)>,
    pub(super) next_chunk: usize,
    /// client-b: delivery state.
    pub(super) member: Option<String>,
    pub(super) delivery: Option<Delivery>,
    /// Members (x) this call fans out to.
    pub(super) members: Vec<String>,
    /// Down legs over the high-water mark: while any is, the up leg's link is not read.
    pub(super) over_downs: usize,
    /// x: the relayed message's size (CPIM object) from its Byte-Range, when given.
    pub(super) msg_total: Option<u64>,
    /// The call's own variant (the reference SUT's per-call mode), else the node's.
    pub(super) variant: Option<Box<crate::config::Variant>>,
}

/// The message currently being read on a connection.
pub(super) struct InMsg {
    /// The leg it belongs to (request: by To-Path; response: by transaction).
    pub(super) leg: Option<LegIdx>,
    pub(super) is_request: bool,
    pub(super) method: String,
    pub(super) code: u16,
    pub(super) from_path: Option<Arc<MsrpUri>>,
    pub(super) to_path: Option<Arc<MsrpUri>>,
    pub(super) range: Option<ByteRange>,
    /// Bytes of body seen so far in this chunk.
    pub(super) seen: u64,
    pub(super) has_body: bool,
    /// Fault relay-truncate: the body piece not yet forwarded.
    pub(super) held: Option<Bytes>,
    /// Relay: (down leg, new tid) per downstream copy.
    pub(super) relays: Vec<(LegIdx, String)>,
    pub(super) reject: Option<(u16, &'static str)>,
    /// The request's report headers (RFC 4975 §7.1.2), and its Message-ID when a success
    /// REPORT is asked for.
    pub(super) reports: ReportRequest,
    pub(super) message_id: Option<String>,
}

pub(super) struct Conn {
    /// For links this node opened: the target, for reuse.
    pub(super) target: Option<SocketAddr>,
    /// For links this node opened: over TLS (`msrps:`). Reuse takes a connection of the same
    /// scheme only: an `msrps:` session never rides a plain connection, nor the reverse
    /// (RFC 4975 §14, RFC 6135).
    pub(super) tls: bool,
    /// The peer's address (accepted) or the target (opened), for warnings.
    pub(super) peer: Option<SocketAddr>,
    /// Body bytes of the chunk being read, against `Limits::msrp_chunk`.
    pub(super) chunk_bytes: u64,
    pub(super) connected: bool,
    pub(super) parser: MsrpParser,
    pub(super) cur: Option<InMsg>,
    pub(super) legs: Vec<LegIdx>,
    pub(super) unflushed: usize,
    pub(super) paused: bool,
    pub(super) closed: bool,
    /// Our SEND transactions on this connection: tid → (leg, is the final chunk).
    pub(super) tx: FastMap<String, (LegIdx, bool)>,
    /// A relayed message is being written for this leg: nothing else may go on the wire
    /// until its end-line (MSRP messages never interleave on a connection).
    pub(super) busy: Option<LegIdx>,
    /// Responses and binding SENDs waiting for `busy` to clear.
    pub(super) deferred: VecDeque<Bytes>,
    /// The paths of the last request read here: the chunks of a message carry the same
    /// To-Path and From-Path, parsed once.
    pub(super) paths: Option<PathCache>,
}

/// A request's To-Path and From-Path as written, and their first URIs.
pub(super) struct PathCache {
    pub(super) to_raw: String,
    pub(super) from_raw: String,
    pub(super) to: Option<Arc<MsrpUri>>,
    pub(super) from: Option<Arc<MsrpUri>>,
}

impl Conn {
    pub(super) fn new(target: Option<SocketAddr>, connected: bool, limits: &Limits) -> Conn {
        Conn {
            target,
            tls: false,
            peer: target,
            chunk_bytes: 0,
            connected,
            parser: MsrpParser::new(limits.msrp()),
            cur: None,
            legs: vec![],
            unflushed: 0,
            paused: false,
            closed: false,
            tx: FastMap::default(),
            busy: None,
            deferred: VecDeque::new(),
            paths: None,
        }
    }
}
