//! The observation of one case: the wire events of a run turned into plain data the checks,
//! the reports and (later) the pcap analysis read.
//!
//! This module owns everything between raw [`WireEvent`]s and meaning:
//! - **deduplication**: when both ends of a socket pair are harness entities in one process,
//!   both record the same traffic; each SIP message, TCP opening, byte stream and close is
//!   kept once (the SUT's traffic is never deduplicated: a duplicate there is its own doing);
//! - **who is who**: socket addresses mapped to topology instances (exact listener address
//!   first, else the one instance with that IP), their role, and the link between two roles;
//! - **SIP**: every message parsed and classified, its SDP parsed twice (the generic
//!   [`Sdp`] view and the typed [`MsrpSdp`] one, parse errors kept as data), and grouped into
//!   dialogs ([`LegObs`]: INVITE, 200, ACK, BYE and the SDP offer and answer of one hop);
//! - **MSRP**: every TCP connection with its opener and target, per direction the MSRP
//!   messages ([`MsrpObs`]: head, body length and digest, flag, times), parse errors, and the
//!   content reassembled per session and Message-ID over Byte-Range ([`ContentObs`]).
//!   Connections to a SIP listener that carried SIP are marked ([`ConnObs::is_link`] is
//!   false); one to a SIP port that carried no SIP is a link sent to the wrong place;
//! - **views**: what each harness instance could see.
//!
//! It never judges: a malformed message is recorded as such, and the checks decide.
//! Nothing here panics on hostile input; every index it hands out is valid in the same
//! [`Observation`].

use crate::codec::msrp::{ByteRange, Flag, Limits, MsrpEvent, MsrpHead, MsrpParser, MsrpUri};
use crate::codec::sdp::{MsrpSdp, Sdp, SdpError};
use crate::codec::sip::{SipMessage, Transport};
use crate::config::Link;
use crate::engine::CaseContext;
use crate::topology::{strip_uri, Role, Topology};
use crate::trace::WireEvent;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Two records of the same SIP message (sender and receiver) are at most this far apart.
const SIP_DUP_WINDOW: Duration = Duration::from_millis(250);
/// Two records of the same TCP opening (connector and acceptor) are at most this far apart.
const OPEN_DUP_WINDOW: Duration = Duration::from_secs(1);
/// How much of each reassembled content object is kept (enough for a CPIM header part).
const CONTENT_PREFIX: usize = 64 * 1024;
/// Out-of-order chunks buffered per content object before giving up on its digest.
const MAX_OUT_OF_ORDER: u64 = 256 * 1024 * 1024;

/// An entity instance of the topology.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Party {
    /// `client-a`, `pf-a`, `x`, a pf-b name or a member name.
    pub name: String,
    pub role: Role,
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// What a SIP message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipKind {
    Request {
        method: String,
    },
    /// `method` is the CSeq method (empty when the CSeq is unreadable).
    Response {
        code: u16,
        method: String,
    },
}

/// The SDP a SIP message carries.
#[derive(Debug, Clone)]
pub struct SdpObs {
    pub text: Bytes,
    /// Generic parse: every m-line and attribute as written.
    pub sdp: Result<Sdp, SdpError>,
    /// The typed MSRP stream (fails on a missing `a=path`, `accept-types`, bad proto, …).
    pub msrp: Result<MsrpSdp, SdpError>,
}

impl SdpObs {
    /// The first `m=message` section of the generic parse.
    pub fn message_media(&self) -> Option<&crate::codec::sdp::Media> {
        self.sdp
            .as_ref()
            .ok()
            .and_then(|s| s.media.iter().find(|m| m.media == "message"))
    }

    /// The `a=path` URIs of the first `m=message` section, when present and parseable.
    pub fn path(&self) -> Option<Vec<MsrpUri>> {
        let v = self.message_media()?.attribute("path")?;
        MsrpUri::parse_list(v).ok()
    }
}

/// One SIP message on the wire (deduplicated), in time order.
#[derive(Debug, Clone)]
pub struct SipObs {
    pub index: usize,
    /// When it was recorded (the first record when both ends recorded it).
    pub t: Duration,
    pub transport: Transport,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub sender: Option<Party>,
    pub receiver: Option<Party>,
    /// The link between sender and receiver, when they are neighbours in the chain.
    pub link: Option<Link>,
    /// How many times it was recorded (2 when both ends are harness entities).
    pub recorded: u8,
    pub raw: Bytes,
    /// The start line, lossily decoded and cut to 100 characters.
    pub start_line: String,
    pub kind: Option<SipKind>,
    pub msg: Option<SipMessage>,
    pub parse_error: Option<String>,
    pub sdp: Option<SdpObs>,
    /// The dialog ([`Observation::legs`]) it belongs to.
    pub leg: Option<usize>,
}

impl SipObs {
    pub fn is_request(&self, method: &str) -> bool {
        matches!(&self.kind, Some(SipKind::Request { method: m }) if m == method)
    }
    /// A response to a request of `method` with a code in `codes`.
    pub fn is_response(&self, method: &str, codes: std::ops::RangeInclusive<u16>) -> bool {
        matches!(&self.kind, Some(SipKind::Response { code, method: m })
            if m == method && codes.contains(code))
    }
}

/// One SIP dialog (a hop of the chain): the INVITE sender (`uac`) and receiver (`uas`).
#[derive(Debug, Clone)]
pub struct LegObs {
    pub index: usize,
    pub link: Option<Link>,
    pub uac: Party,
    pub uas: Party,
    pub call_id: String,
    pub uac_tag: Option<String>,
    /// The To tag of the first 2xx (the dialog's remote tag for the uac).
    pub uas_tag: Option<String>,
    pub request_uri: String,
    pub branch: Option<String>,
    /// Indices into [`Observation::sip`].
    pub invite: usize,
    pub final_response: Option<usize>,
    pub ok: Option<usize>,
    /// The first ACK of the 2xx (not the hop-by-hop ACK of a failure response).
    pub ack: Option<usize>,
    pub bye: Option<usize>,
    /// The first 2xx to the BYE.
    pub bye_ok: Option<usize>,
    /// Every message of the dialog, in time order.
    pub messages: Vec<usize>,
    /// The `a=path` URIs of the offer (the uac's) and of the answer (the uas's).
    pub uac_path: Vec<MsrpUri>,
    pub uas_path: Vec<MsrpUri>,
    /// Connections ([`Observation::conns`]) that carried this leg's MSRP session.
    pub conns: Vec<usize>,
}

impl LegObs {
    /// The party at the other end from `name`.
    pub fn peer_of(&self, name: &str) -> Option<&Party> {
        if self.uac.name == name {
            Some(&self.uas)
        } else if self.uas.name == name {
            Some(&self.uac)
        } else {
            None
        }
    }
    /// The `a=path` a party advertised on this leg.
    pub fn path_of(&self, name: &str) -> &[MsrpUri] {
        if self.uac.name == name {
            &self.uac_path
        } else if self.uas.name == name {
            &self.uas_path
        } else {
            &[]
        }
    }
}

/// One MSRP message in one direction of a connection.
#[derive(Debug, Clone)]
pub struct MsrpObs {
    /// When the data event in which its head started was recorded.
    pub t: Duration,
    /// When its end-line was recorded (`None` if it never ended).
    pub t_end: Option<Duration>,
    /// Stream offset of its first byte in this direction.
    pub offset: u64,
    pub head: MsrpHead,
    pub body_len: u64,
    /// SHA-256 (hex) of this message's body octets.
    pub body_sha256: String,
    /// The end-line's continuation flag (`None` if it never ended).
    pub flag: Option<Flag>,
    /// The leg whose session it names (To-Path, else From-Path), among the dialogs between
    /// the connection's two ends.
    pub leg: Option<usize>,
}

impl MsrpObs {
    pub fn is_request(&self) -> bool {
        self.head.method().is_some()
    }
    /// `MSRP <tid> SEND` / `MSRP <tid> 200 OK`.
    pub fn start_line(&self) -> String {
        match &self.head.start {
            crate::codec::msrp::StartLine::Request { method } => {
                format!("MSRP {} {method}", self.head.tid)
            }
            crate::codec::msrp::StartLine::Response { code, comment } => match comment {
                Some(c) => format!("MSRP {} {code:03} {c}", self.head.tid),
                None => format!("MSRP {} {code:03}", self.head.tid),
            },
        }
    }
}

/// The MSRP parser gave up on a direction of a connection.
#[derive(Debug, Clone)]
pub struct MsrpParseError {
    pub t: Duration,
    pub offset: u64,
    pub error: String,
}

/// One message (Message-ID, within one session: a relay keeps the Message-ID on every
/// downstream session, and with reuse several share a connection) reassembled from its
/// chunks in one direction.
#[derive(Debug, Clone)]
pub struct ContentObs {
    pub message_id: String,
    /// The To-Path of its chunks, as written.
    pub to_path: String,
    pub content_type: Option<String>,
    /// From Byte-Range (or the final chunk).
    pub total: Option<u64>,
    /// Distinct octets received.
    pub received: u64,
    /// The final chunk came and every octet up to it arrived.
    pub complete: bool,
    /// SHA-256 (hex) of the reassembled object, when complete and unambiguous.
    pub sha256: Option<String>,
    /// The first octets of the object (up to 64 KiB).
    pub prefix: Bytes,
    pub first_t: Duration,
    pub last_t: Duration,
    /// Indices into the direction's [`DirObs::msgs`].
    pub chunks: Vec<usize>,
    pub leg: Option<usize>,
    /// Why the digest is missing (overlapping chunks, too much out of order).
    pub note: Option<String>,
}

/// One direction of a TCP connection.
#[derive(Debug, Clone)]
pub struct DirObs {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: u64,
    pub first_data: Option<Duration>,
    pub closed_at: Option<Duration>,
    pub msgs: Vec<MsrpObs>,
    pub error: Option<MsrpParseError>,
    /// Octets of a message still incomplete when the recording ended.
    pub trailing: u64,
    pub contents: Vec<ContentObs>,
}

/// One TCP connection (MSRP link).
#[derive(Debug, Clone)]
pub struct ConnObs {
    pub index: usize,
    /// The side that sent the SYN (guessed from the listener addresses when no opening
    /// was recorded: see `open_seen`).
    pub opener: SocketAddr,
    pub target: SocketAddr,
    pub opener_party: Option<Party>,
    pub target_party: Option<Party>,
    pub link: Option<Link>,
    pub opened_at: Duration,
    pub open_seen: bool,
    /// Both ends recorded it (its streams were deduplicated).
    pub recorded_twice: bool,
    /// Its target is an entity's SIP listener (SIP over TCP, or a link misdirected there).
    pub to_sip_port: bool,
    /// SIP messages were seen on it (by its exact address pair, or sent by its opener's
    /// SIP listener to its target: how a harness connector records them).
    pub carried_sip: bool,
    /// `[opener → target, target → opener]`.
    pub dirs: [DirObs; 2],
    /// Legs whose sessions its messages name.
    pub legs: Vec<usize>,
}

impl ConnObs {
    /// An MSRP link, or an attempt at one: anything but a connection that carried SIP.
    pub fn is_link(&self) -> bool {
        !(self.to_sip_port && self.carried_sip)
    }

    /// The direction sent by `name` (0: opener's, 1: target's).
    pub fn dir_from(&self, name: &str) -> Option<usize> {
        if self.opener_party.as_ref().map(|p| p.name.as_str()) == Some(name) {
            Some(0)
        } else if self.target_party.as_ref().map(|p| p.name.as_str()) == Some(name) {
            Some(1)
        } else {
            None
        }
    }
    /// The party that sends direction `d`.
    pub fn sender(&self, d: usize) -> Option<&Party> {
        if d == 0 {
            self.opener_party.as_ref()
        } else {
            self.target_party.as_ref()
        }
    }
}

/// What one harness instance could see: the SIP messages it sent or received and the
/// connections it was an end of.
#[derive(Debug, Clone, Default)]
pub struct HarnessView {
    pub sip: Vec<usize>,
    pub conns: Vec<usize>,
}

/// Everything observed in one case.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub sip: Vec<SipObs>,
    pub legs: Vec<LegObs>,
    pub conns: Vec<ConnObs>,
    /// Per harness instance name.
    pub views: BTreeMap<String, HarnessView>,
    /// Things worth knowing that are not SUT behaviour (unknown addresses, duplicates).
    pub notes: Vec<String>,
    /// The time of the last event: how long the case was watched.
    pub end: Duration,
}

impl Observation {
    /// Legs between two instances, either direction.
    pub fn legs_between<'a>(&'a self, a: &'a str, b: &'a str) -> impl Iterator<Item = &'a LegObs> {
        self.legs.iter().filter(move |l| {
            (l.uac.name == a && l.uas.name == b) || (l.uac.name == b && l.uas.name == a)
        })
    }
}

/// Which instance uses `addr`: the exact SIP or MSRP listener, else the only instance with
/// that IP (a connection from an ephemeral port).
pub fn locate(topology: &Topology, addr: SocketAddr) -> Option<Party> {
    let inst = topology.instances();
    if let Some(i) = inst.iter().find(|i| i.sip == addr || i.msrp == addr) {
        return Some(Party {
            name: i.name.clone(),
            role: i.role,
        });
    }
    let mut same_ip = inst
        .iter()
        .filter(|i| i.sip.ip() == addr.ip() || i.msrp.ip() == addr.ip());
    match (same_ip.next(), same_ip.next()) {
        (Some(i), None) => Some(Party {
            name: i.name.clone(),
            role: i.role,
        }),
        _ => None,
    }
}

/// The link between two neighbouring roles.
pub fn link_between(a: Role, b: Role) -> Option<Link> {
    match (a.min(b), a.max(b)) {
        (Role::ClientA, Role::PfA) => Some(Link::L1),
        (Role::PfA, Role::X) => Some(Link::L2),
        (Role::X, Role::PfB) => Some(Link::L3),
        (Role::PfB, Role::ClientB) => Some(Link::L4),
        _ => None,
    }
}

/// Milliseconds since the start, for evidence lines: `123.4ms`.
pub fn ms(t: Duration) -> String {
    format!("{:.1}ms", t.as_secs_f64() * 1000.0)
}

/// The first line of `b`, lossily decoded and cut to `max` characters.
pub fn first_line(b: &[u8], max: usize) -> String {
    let end = b
        .iter()
        .position(|&c| c == b'\r' || c == b'\n')
        .unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]);
    if s.chars().count() > max {
        let mut e: String = s.chars().take(max.saturating_sub(1)).collect();
        e.push('…');
        e
    } else {
        s.into_owned()
    }
}

/// Builds the observation of a case from its wire events (any order; sorted by time here).
pub fn observe(ctx: &CaseContext, events: &[(Duration, WireEvent)]) -> Observation {
    let topo = &ctx.topology;
    // An instance is harness when its role is not the SUT's (all of them in the self-check).
    let is_harness = |p: &Option<Party>| p.as_ref().map(|p| !ctx.is_sut(p.role)).unwrap_or(false);
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].0);

    let mut obs = Observation {
        end: events.iter().map(|(t, _)| *t).max().unwrap_or_default(),
        ..Observation::default()
    };
    let mut raw_conns: Vec<RawConn> = Vec::new();
    let mut unknown = std::collections::BTreeSet::new();
    // Address pairs of SIP over TCP as recorded (before deduplication, which keeps only
    // the sender's record), to tell SIP connections from misdirected links.
    let mut sip_tcp_pairs = std::collections::HashSet::new();

    for &i in &order {
        let (t, ev) = &events[i];
        match ev {
            WireEvent::Sip {
                transport,
                from,
                to,
                raw,
            } => {
                if *transport == Transport::Tcp {
                    sip_tcp_pairs.insert((*from, *to));
                }
                let via_core = topo
                    .core
                    .is_some_and(|c| c.ip() == from.ip() || c.ip() == to.ip());
                let (sender, receiver) = if via_core {
                    core_parties(topo, *from, *to, raw, &obs.sip)
                } else {
                    (locate(topo, *from), locate(topo, *to))
                };
                for (a, p) in [(from, &sender), (to, &receiver)] {
                    let is_core = topo.core.is_some_and(|c| c.ip() == a.ip());
                    if p.is_none() && !is_core {
                        unknown.insert(*a);
                    }
                }
                if is_harness(&sender) && is_harness(&receiver) {
                    // Both ends recorded it: pair with an unpaired earlier record. Through
                    // the core the two records differ (the proxy's Via, Record-Route,
                    // Max-Forwards): pair them by transaction identity instead of bytes.
                    let id = via_core.then(|| relay_identity(raw)).flatten();
                    let dup = obs.sip.iter_mut().rev().find(|s| {
                        s.recorded == 1
                            && *t - s.t.min(*t) <= SIP_DUP_WINDOW
                            && match &id {
                                Some(id) => relay_identity(&s.raw).as_ref() == Some(id),
                                None => s.raw == *raw,
                            }
                            && s.sender == sender
                            && s.receiver == receiver
                    });
                    if let Some(d) = dup {
                        d.recorded = 2;
                        continue;
                    }
                }
                let index = obs.sip.len();
                obs.sip.push(sip_obs(
                    index, *t, *transport, *from, *to, raw, sender, receiver,
                ));
            }
            WireEvent::TcpOpen { conn, opener } => {
                let target = if conn.0 == *opener { conn.1 } else { conn.0 };
                let existing = raw_conns.iter_mut().rev().find(|c| {
                    c.opener == *opener
                        && c.target == target
                        && c.opens == 1
                        && *t - c.opened_at.min(*t) <= OPEN_DUP_WINDOW
                });
                match existing {
                    Some(c) => c.opens += 1,
                    None => raw_conns.push(RawConn::new(*opener, target, *t, true)),
                }
            }
            WireEvent::TcpData { from, to, data } => {
                let idx = find_or_guess(&mut raw_conns, topo, *from, *to, *t);
                let c = &mut raw_conns[idx];
                let d = usize::from(c.opener != *from);
                c.chunks[d].push((*t, data.clone()));
            }
            WireEvent::TcpClose { from, to } => {
                let idx = find_or_guess(&mut raw_conns, topo, *from, *to, *t);
                let c = &mut raw_conns[idx];
                let d = usize::from(c.opener != *from);
                if c.closed[d].is_none() {
                    c.closed[d] = Some(*t);
                }
            }
        }
    }
    for a in unknown {
        obs.notes.push(format!(
            "{a} is no address of the topology; its traffic is unattributed"
        ));
    }

    for rc in raw_conns {
        let index = obs.conns.len();
        let mut c = build_conn(index, rc, topo);
        let opener_sip = c
            .opener_party
            .as_ref()
            .and_then(|p| topo.instance(&p.name))
            .map(|i| i.sip);
        c.carried_sip = sip_tcp_pairs.contains(&(c.opener, c.target))
            || sip_tcp_pairs.contains(&(c.target, c.opener))
            || opener_sip.is_some_and(|o| sip_tcp_pairs.contains(&(o, c.target)));
        obs.conns.push(c);
    }
    build_legs(&mut obs);
    attribute_msrp(&mut obs);

    // What each harness instance saw.
    for (i, s) in obs.sip.iter().enumerate() {
        for p in [&s.sender, &s.receiver].into_iter().flatten() {
            if !ctx.is_sut(p.role) {
                obs.views.entry(p.name.clone()).or_default().sip.push(i);
            }
        }
    }
    for (i, c) in obs.conns.iter().enumerate() {
        for p in [&c.opener_party, &c.target_party].into_iter().flatten() {
            if !ctx.is_sut(p.role) {
                obs.views.entry(p.name.clone()).or_default().conns.push(i);
            }
        }
    }
    obs
}

/// The entities at the two ends of a SIP message that one end sent to, or received from,
/// the SIP/IP core: a request's originator is its bottom Via, its target the next entry of
/// its route set (or its Request-URI in a dialog); a response goes to the bottom Via and
/// comes from whoever received the request it answers. A 100 Trying from the core is the
/// proxy's own (RFC 3261 §16.2): no entity sent it.
fn core_parties(
    topo: &Topology,
    from: SocketAddr,
    to: SocketAddr,
    raw: &Bytes,
    earlier: &[SipObs],
) -> (Option<Party>, Option<Party>) {
    let core_ip = topo.core.map(|c| c.ip());
    let is_core = |a: SocketAddr| Some(a.ip()) == core_ip;
    let Ok(msg) = SipMessage::parse(raw) else {
        return (locate(topo, from), locate(topo, to));
    };
    let origin = || {
        msg.origin_via()
            .and_then(|(sent_by, _)| sent_by.parse::<SocketAddr>().ok())
            .and_then(|a| locate(topo, a))
    };
    let uri_party = |u: &str| {
        crate::entity::sip_uri_addr(u)
            .filter(|a| !is_core(*a))
            .and_then(|a| locate(topo, a))
    };
    if msg.is_request() {
        let sender = if is_core(from) {
            origin()
        } else {
            locate(topo, from)
        };
        let receiver = if is_core(to) {
            let routed = msg.uri_list("Route").iter().find_map(|r| uri_party(r));
            routed.or_else(|| msg.request_uri().and_then(uri_party))
        } else {
            locate(topo, to)
        };
        return (sender, receiver);
    }
    let receiver = if is_core(to) {
        origin()
    } else {
        locate(topo, to)
    };
    let sender = if !is_core(from) {
        locate(topo, from)
    } else if msg.code() == Some(100) {
        None
    } else {
        let call_id = msg.call_id();
        let cseq = msg.cseq();
        earlier
            .iter()
            .rev()
            .find(|s| {
                s.msg
                    .as_ref()
                    .is_some_and(|m| m.is_request() && m.call_id() == call_id && m.cseq() == cseq)
            })
            .and_then(|s| s.receiver.clone())
            .or_else(|| msg.contact_uri().and_then(|c| uri_party(&c)))
    };
    (sender, receiver)
}

/// What stays the same of a SIP message across a proxy hop: Call-ID, CSeq, start line and
/// the originator's Via branch.
fn relay_identity(raw: &Bytes) -> Option<(String, String, String, String)> {
    let m = SipMessage::parse(raw).ok()?;
    let (_, branch) = m.origin_via()?;
    let cseq = m.header("CSeq")?.to_string();
    Some((m.call_id()?.to_string(), cseq, first_line(raw, 200), branch))
}

#[allow(clippy::too_many_arguments)]
fn sip_obs(
    index: usize,
    t: Duration,
    transport: Transport,
    from: SocketAddr,
    to: SocketAddr,
    raw: &Bytes,
    sender: Option<Party>,
    receiver: Option<Party>,
) -> SipObs {
    let link = match (&sender, &receiver) {
        (Some(a), Some(b)) => link_between(a.role, b.role),
        _ => None,
    };
    let (msg, parse_error) = match SipMessage::parse(raw) {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let kind = msg.as_ref().map(|m| match m.method() {
        Some(method) => SipKind::Request {
            method: method.as_str().to_string(),
        },
        None => SipKind::Response {
            code: m.code().unwrap_or(0),
            method: m
                .cseq()
                .map(|(_, m)| m.as_str().to_string())
                .unwrap_or_default(),
        },
    });
    let sdp = msg.as_ref().and_then(|m| m.sdp_body()).map(|text| SdpObs {
        sdp: Sdp::parse(&text),
        msrp: MsrpSdp::parse(&text),
        text,
    });
    SipObs {
        index,
        t,
        transport,
        from,
        to,
        sender,
        receiver,
        link,
        recorded: 1,
        raw: raw.clone(),
        start_line: first_line(raw, 100),
        kind,
        msg,
        parse_error,
        sdp,
        leg: None,
    }
}

/// A connection as recorded, before its streams are rebuilt and parsed.
struct RawConn {
    opener: SocketAddr,
    target: SocketAddr,
    opened_at: Duration,
    open_seen: bool,
    opens: u32,
    chunks: [Vec<(Duration, Bytes)>; 2],
    closed: [Option<Duration>; 2],
}

impl RawConn {
    fn new(opener: SocketAddr, target: SocketAddr, t: Duration, open_seen: bool) -> RawConn {
        RawConn {
            opener,
            target,
            opened_at: t,
            open_seen,
            opens: u32::from(open_seen),
            chunks: [Vec::new(), Vec::new()],
            closed: [None, None],
        }
    }
}

/// The latest connection between these two addresses; without a recorded opening, a new
/// one whose opener is guessed: the side that is not a listener of the topology.
fn find_or_guess(
    conns: &mut Vec<RawConn>,
    topo: &Topology,
    from: SocketAddr,
    to: SocketAddr,
    t: Duration,
) -> usize {
    if let Some(i) = conns
        .iter()
        .rposition(|c| (c.opener == from && c.target == to) || (c.opener == to && c.target == from))
    {
        return i;
    }
    let listener = |a: SocketAddr| topo.instances().iter().any(|i| i.msrp == a || i.sip == a);
    let (opener, target) = if listener(from) && !listener(to) {
        (to, from)
    } else {
        (from, to)
    };
    conns.push(RawConn::new(opener, target, t, false));
    conns.len() - 1
}

/// Rebuilds one direction's byte stream with the time each part was recorded.
///
/// When both ends recorded the connection, the sender's records (taken before each write)
/// and the receiver's (taken after each read) are interleaved, and the receiver's never run
/// ahead of the sender's: a record that repeats the next unread bytes of the stream is the
/// receiver's copy; anything else extends the stream.
fn rebuild(chunks: &[(Duration, Bytes)], doubled: bool) -> (Vec<u8>, Vec<(u64, Duration)>) {
    let mut stream: Vec<u8> = Vec::new();
    let mut segments = Vec::new();
    let mut read = 0usize;
    for (t, data) in chunks {
        if data.is_empty() {
            continue;
        }
        if doubled
            && read + data.len() <= stream.len()
            && stream[read..read + data.len()] == data[..]
        {
            read += data.len();
            continue;
        }
        segments.push((stream.len() as u64, *t));
        stream.extend_from_slice(data);
    }
    (stream, segments)
}

fn time_at(segments: &[(u64, Duration)], offset: u64) -> Duration {
    let i = segments.partition_point(|(o, _)| *o <= offset);
    segments
        .get(i.saturating_sub(1))
        .map(|(_, t)| *t)
        .unwrap_or_default()
}

fn build_conn(index: usize, rc: RawConn, topo: &Topology) -> ConnObs {
    let opener_party = locate(topo, rc.opener);
    // The target is a listener: prefer the exact MSRP listener match.
    let target_party = locate(topo, rc.target);
    let link = match (&opener_party, &target_party) {
        (Some(a), Some(b)) => link_between(a.role, b.role),
        _ => None,
    };
    let doubled = rc.opens >= 2;
    let to_sip_port =
        topo.instances().iter().any(|i| i.sip == rc.target) || topo.core == Some(rc.target);
    let mut dirs = Vec::with_capacity(2);
    for d in 0..2 {
        let (from, to) = if d == 0 {
            (rc.opener, rc.target)
        } else {
            (rc.target, rc.opener)
        };
        let (stream, segments) = rebuild(&rc.chunks[d], doubled);
        let mut dir = parse_dir(&stream, &segments);
        dir.from = from;
        dir.to = to;
        dir.closed_at = rc.closed[d];
        dirs.push(dir);
    }
    let d1 = dirs.pop().unwrap_or_else(empty_dir);
    let d0 = dirs.pop().unwrap_or_else(empty_dir);
    ConnObs {
        index,
        opener: rc.opener,
        target: rc.target,
        opener_party,
        target_party,
        link,
        opened_at: rc.opened_at,
        open_seen: rc.open_seen,
        recorded_twice: doubled,
        to_sip_port,
        carried_sip: false,
        dirs: [d0, d1],
        legs: Vec::new(),
    }
}

fn empty_dir() -> DirObs {
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    DirObs {
        from: unspecified,
        to: unspecified,
        bytes: 0,
        first_data: None,
        closed_at: None,
        msgs: Vec::new(),
        error: None,
        trailing: 0,
        contents: Vec::new(),
    }
}

/// Per Message-ID reassembly: hashed in order as octets become contiguous.
struct ContentAcc {
    obs: ContentObs,
    next: u64,
    hasher: Sha256,
    ooo: BTreeMap<u64, Bytes>,
    ooo_bytes: u64,
    final_seen: bool,
    broken: bool,
    /// Body offset (0-based, from Byte-Range) of the chunk being read: one chunk of a
    /// direction is read at a time, so one slot suffices.
    chunk_offset: u64,
}

impl ContentAcc {
    fn add(&mut self, offset: u64, data: &Bytes) {
        if self.broken || data.is_empty() {
            return;
        }
        if offset < self.next {
            self.broken = true;
            self.obs.note = Some(format!(
                "octets from {} arrived again (overlapping chunks)",
                offset.saturating_add(1)
            ));
            return;
        }
        if offset > self.next {
            self.ooo_bytes += data.len() as u64;
            if self.ooo_bytes > MAX_OUT_OF_ORDER {
                self.broken = true;
                self.obs.note = Some("too many octets out of order to reassemble".into());
                return;
            }
            self.ooo.insert(offset, data.clone());
            return;
        }
        self.take(data);
        while let Some(e) = self.ooo.first_entry() {
            if *e.key() > self.next {
                break;
            }
            let (off, d) = e.remove_entry();
            self.ooo_bytes -= d.len() as u64;
            if off < self.next {
                self.broken = true;
                self.obs.note = Some("overlapping chunks".into());
                return;
            }
            self.take(&d);
        }
    }

    fn take(&mut self, data: &[u8]) {
        self.hasher.update(data);
        let room = CONTENT_PREFIX.saturating_sub(self.obs.prefix.len());
        if room > 0 {
            let mut p = self.obs.prefix.to_vec();
            p.extend_from_slice(&data[..data.len().min(room)]);
            self.obs.prefix = Bytes::from(p);
        }
        self.next += data.len() as u64;
        self.obs.received = self.next + self.ooo_bytes;
    }

    fn finish(mut self) -> ContentObs {
        self.obs.received = self.next + self.ooo_bytes;
        let total_ok = self.obs.total.map(|t| t == self.next).unwrap_or(true);
        self.obs.complete = !self.broken && self.final_seen && self.ooo.is_empty() && total_ok;
        if self.obs.complete {
            self.obs.sha256 = Some(hex::encode(self.hasher.finalize()));
        }
        self.obs
    }
}

/// Parses one direction's stream into MSRP messages and reassembled contents.
fn parse_dir(stream: &[u8], segments: &[(u64, Duration)]) -> DirObs {
    let mut dir = empty_dir();
    dir.bytes = stream.len() as u64;
    dir.first_data = segments.first().map(|(_, t)| *t);
    let mut parser = MsrpParser::new(Limits::default());
    let mut next_start = 0u64;
    // The message being read: its record, body digest, and content accumulator.
    let mut cur: Option<(MsrpObs, Sha256, Option<usize>)> = None;
    let mut contents: Vec<ContentAcc> = Vec::new();
    let mut by_id: HashMap<(String, String), usize> = HashMap::new();
    let mut failed = false;
    let bounds: Vec<u64> = segments
        .iter()
        .map(|(o, _)| *o)
        .skip(1)
        .chain(std::iter::once(stream.len() as u64))
        .collect();
    for (k, (start, t)) in segments.iter().enumerate() {
        if failed {
            break;
        }
        let (s, e) = (*start as usize, bounds[k] as usize);
        parser.push(&stream[s.min(stream.len())..e.min(stream.len())]);
        loop {
            let ev = match parser.next() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(err) => {
                    dir.error = Some(MsrpParseError {
                        t: *t,
                        offset: err.offset,
                        error: err.to_string(),
                    });
                    failed = true;
                    break;
                }
            };
            match ev {
                MsrpEvent::Head(head) => {
                    let is_send = head.method() == Some("SEND") && head.has_body;
                    let content_start = if is_send {
                        let range = head.byte_range().and_then(|r| r.ok());
                        let id = head.message_id().unwrap_or("").to_string();
                        let to_path = head.header("To-Path").unwrap_or("").to_string();
                        let key = (to_path.clone(), id.clone());
                        let ci = *by_id.entry(key).or_insert_with(|| {
                            contents.push(ContentAcc {
                                obs: ContentObs {
                                    message_id: id,
                                    to_path,
                                    content_type: head.content_type().map(String::from),
                                    total: None,
                                    received: 0,
                                    complete: false,
                                    sha256: None,
                                    prefix: Bytes::new(),
                                    first_t: time_at(segments, next_start),
                                    last_t: time_at(segments, next_start),
                                    chunks: Vec::new(),
                                    leg: None,
                                    note: None,
                                },
                                next: 0,
                                hasher: Sha256::new(),
                                ooo: BTreeMap::new(),
                                ooo_bytes: 0,
                                final_seen: false,
                                broken: false,
                                chunk_offset: 0,
                            });
                            contents.len() - 1
                        });
                        let acc = &mut contents[ci];
                        acc.obs.chunks.push(dir.msgs.len());
                        if let Some(ByteRange {
                            total: Some(tt), ..
                        }) = range
                        {
                            acc.obs.total.get_or_insert(tt);
                        }
                        Some((ci, range.map(|r| r.start.saturating_sub(1)).unwrap_or(0)))
                    } else {
                        None
                    };
                    let m = MsrpObs {
                        t: time_at(segments, next_start),
                        t_end: None,
                        offset: next_start,
                        head,
                        body_len: 0,
                        body_sha256: String::new(),
                        flag: None,
                        leg: None,
                    };
                    cur = Some((m, Sha256::new(), content_start.map(|(ci, _)| ci)));
                    if let Some((ci, off)) = content_start {
                        contents[ci].obs.last_t = time_at(segments, next_start);
                        contents[ci].chunk_offset = off;
                    }
                }
                MsrpEvent::Body(b) => {
                    if let Some((m, h, ci)) = cur.as_mut() {
                        h.update(&b);
                        if let Some(ci) = ci {
                            let acc = &mut contents[*ci];
                            let off = acc.chunk_offset.saturating_add(m.body_len);
                            acc.add(off, &b);
                        }
                        m.body_len += b.len() as u64;
                    }
                }
                MsrpEvent::End { flag, .. } => {
                    next_start = parser.offset();
                    if let Some((mut m, h, ci)) = cur.take() {
                        m.flag = Some(flag);
                        m.t_end = Some(time_at(segments, next_start.saturating_sub(1)));
                        m.body_sha256 = hex::encode(h.finalize());
                        if let Some(ci) = ci {
                            let acc = &mut contents[ci];
                            acc.obs.last_t = m.t_end.unwrap_or(m.t);
                            if flag == Flag::End {
                                acc.final_seen = true;
                                let end = acc.chunk_offset.saturating_add(m.body_len);
                                acc.obs.total.get_or_insert(end);
                            }
                        }
                        dir.msgs.push(m);
                    }
                }
            }
        }
    }
    if let Some((m, h, _)) = cur.take() {
        // A message cut off by the end of the recording: kept, without a flag.
        let mut m = m;
        m.body_sha256 = hex::encode(h.finalize());
        dir.msgs.push(m);
    }
    if !failed {
        dir.trailing = (stream.len() as u64).saturating_sub(next_start);
    }
    dir.contents = contents.into_iter().map(ContentAcc::finish).collect();
    dir
}

/// Groups SIP messages into dialogs.
fn build_legs(obs: &mut Observation) {
    // Initial INVITEs (no To tag) open legs; retransmissions (same branch) join them.
    for i in 0..obs.sip.len() {
        let s = &obs.sip[i];
        let (Some(m), Some(uac), Some(uas)) = (&s.msg, &s.sender, &s.receiver) else {
            continue;
        };
        if !s.is_request("INVITE") || m.to_tag().is_some() {
            continue;
        }
        let call_id = m.call_id().unwrap_or_default().to_string();
        let from_tag = m.from_tag();
        let branch = m.via_branch();
        let existing = obs.legs.iter().position(|l| {
            l.call_id == call_id
                && l.uac_tag == from_tag
                && l.branch == branch
                && l.uac == *uac
                && l.uas == *uas
        });
        let li = match existing {
            Some(li) => li,
            None => {
                let index = obs.legs.len();
                obs.legs.push(LegObs {
                    index,
                    link: link_between(uac.role, uas.role),
                    uac: uac.clone(),
                    uas: uas.clone(),
                    call_id,
                    uac_tag: from_tag,
                    uas_tag: None,
                    request_uri: m.request_uri().unwrap_or_default().to_string(),
                    branch,
                    invite: i,
                    final_response: None,
                    ok: None,
                    ack: None,
                    bye: None,
                    bye_ok: None,
                    messages: Vec::new(),
                    uac_path: s.sdp.as_ref().and_then(|d| d.path()).unwrap_or_default(),
                    uas_path: Vec::new(),
                    conns: Vec::new(),
                });
                index
            }
        };
        obs.legs[li].messages.push(i);
        obs.sip[i].leg = Some(li);
    }
    // Everything else: by Call-ID, tags and branch.
    for i in 0..obs.sip.len() {
        if obs.sip[i].leg.is_some() {
            continue;
        }
        let s = &obs.sip[i];
        let (Some(m), Some(snd), Some(rcv)) = (&s.msg, &s.sender, &s.receiver) else {
            continue;
        };
        let call_id = m.call_id().unwrap_or_default();
        let from_tag = m.from_tag();
        let to_tag = m.to_tag();
        let branch = m.via_branch();
        let is_invite_resp = s.is_response("INVITE", 100..=699);
        let ends =
            |l: &LegObs| (l.uac == *snd && l.uas == *rcv) || (l.uac == *rcv && l.uas == *snd);
        let cands: Vec<usize> = obs
            .legs
            .iter()
            .filter(|l| l.call_id == call_id && ends(l))
            .filter(|l| {
                // The dialog's tags, in either order (a BYE may come from the uas).
                let uac_side = l.uac_tag == from_tag
                    && (to_tag.is_none() || l.uas_tag.is_none() || l.uas_tag == to_tag);
                let uas_side = from_tag.is_some() && l.uas_tag == from_tag && l.uac_tag == to_tag;
                uac_side || uas_side
            })
            .map(|l| l.index)
            .collect();
        let pick = if cands.len() > 1 && is_invite_resp {
            cands
                .iter()
                .copied()
                .find(|&li| obs.legs[li].branch == branch)
        } else if cands.len() > 1 {
            cands
                .iter()
                .copied()
                .find(|&li| to_tag.is_some() && obs.legs[li].uas_tag == to_tag)
                .or_else(|| cands.first().copied())
        } else {
            cands.first().copied()
        };
        let Some(li) = pick else { continue };
        let is_2xx = s.is_response("INVITE", 200..=299);
        let is_final = s.is_response("INVITE", 200..=699);
        let is_ack = s.is_request("ACK");
        let is_bye = s.is_request("BYE");
        let is_bye_ok = s.is_response("BYE", 200..=299);
        let answer_path = if is_2xx {
            s.sdp.as_ref().and_then(|d| d.path())
        } else {
            None
        };
        let l = &mut obs.legs[li];
        if is_final && l.final_response.is_none() {
            l.final_response = Some(i);
        }
        if is_2xx && l.ok.is_none() {
            l.ok = Some(i);
            l.uas_tag = to_tag.clone();
            l.uas_path = answer_path.unwrap_or_default();
        }
        // The ACK of a 2xx has its own branch; a failure's ACK reuses the INVITE's.
        if is_ack && l.ack.is_none() && l.ok.is_some() && (branch != l.branch || l.branch.is_none())
        {
            l.ack = Some(i);
        }
        if is_bye && l.bye.is_none() {
            l.bye = Some(i);
        }
        if is_bye_ok && l.bye_ok.is_none() {
            l.bye_ok = Some(i);
        }
        l.messages.push(i);
        obs.sip[i].leg = Some(li);
    }
    for l in &mut obs.legs {
        l.messages.sort_unstable();
    }
}

/// Ties each MSRP message and content to the leg whose session it names, and each
/// connection to its legs. Only dialogs between the connection's two ends count: a message
/// naming another hop's session (a relay that copied its upstream To-Path) names none.
fn attribute_msrp(obs: &mut Observation) {
    let mut conn_legs: Vec<Vec<usize>> = vec![Vec::new(); obs.conns.len()];
    for (ci, c) in obs.conns.iter_mut().enumerate() {
        let ends = [&c.opener_party, &c.target_party];
        let candidates: Vec<&LegObs> = obs
            .legs
            .iter()
            .filter(|l| match ends {
                [Some(a), Some(b)] => (l.uac == *a && l.uas == *b) || (l.uac == *b && l.uas == *a),
                _ => true,
            })
            .collect();
        let find = |h: Result<Vec<MsrpUri>, _>| -> Option<usize> {
            let uri = h.ok().and_then(|v: Vec<MsrpUri>| v.into_iter().next())?;
            candidates
                .iter()
                .find(|l| {
                    l.uac_path
                        .iter()
                        .chain(&l.uas_path)
                        .any(|u| u.matches(&uri))
                })
                .map(|l| l.index)
        };
        for d in c.dirs.iter_mut() {
            for m in d.msgs.iter_mut() {
                m.leg = find(m.head.to_path()).or_else(|| find(m.head.from_path()));
                if let Some(l) = m.leg {
                    if !conn_legs[ci].contains(&l) {
                        conn_legs[ci].push(l);
                    }
                }
            }
            for content in d.contents.iter_mut() {
                content.leg = content
                    .chunks
                    .first()
                    .and_then(|&k| d.msgs.get(k))
                    .and_then(|m| m.leg);
            }
        }
    }
    for (ci, legs) in conn_legs.into_iter().enumerate() {
        for &l in &legs {
            if let Some(leg) = obs.legs.get_mut(l) {
                leg.conns.push(ci);
            }
        }
        obs.conns[ci].legs = legs;
    }
}

/// The member a leg serves, from its Request-URI (L3/L4 legs).
pub fn member_of(topology: &Topology, leg: &LegObs) -> Option<String> {
    topology
        .member_by_uri(&leg.request_uri)
        .map(|m| m.name.clone())
        .or_else(|| {
            // A Request-URI rewritten to the member's contact: match by host part.
            let r = strip_uri(&leg.request_uri);
            topology
                .members
                .iter()
                .find(|m| r.contains(&m.sip.ip().to_string()))
                .map(|m| m.name.clone())
        })
}
