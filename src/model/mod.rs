//! The model of a case: ONE interpretation of its wire events, which the checks, `analyze`,
//! `show`, `diff`, the HTML/SVG ladders and the reports all read. A live run, a simulated
//! run and a capture read back from a pcap give the same model for the same traffic.
//!
//! It is built in three steps, each a module with one job:
//! - [`wire`]: the one-copy event stream ([`crate::trace`]) read into SIP messages (parsed,
//!   with their SDP — the generic [`Sdp`] view and the typed [`MsrpSdp`] one, parse errors
//!   kept as data), TCP connections with their opener and per-direction MSRP messages
//!   ([`MsrpObs`]: head, body length and digest, flag, times), parse errors, and the content
//!   objects reassembled per session and Message-ID over Byte-Range ([`ContentObs`], with the
//!   digest of what is inside the CPIM wrapper). No topology is needed: `analyze` infers its
//!   entity map from this layer.
//! - [`who`]: the parties at the ends of every message and connection, by exact listener
//!   address and port first, then by what the wire proves (Via sent-by, the transaction a
//!   response answers, the MSRP From-Path/To-Path against the `a=path` each side advertised);
//!   several entities may share one IP. Connections to a SIP listener that carried SIP are
//!   marked ([`ConnObs::is_link`] is false); one to a SIP port that carried no SIP is a link
//!   sent to the wrong place.
//! - `dialogs`: SIP messages grouped into the dialogs of each hop ([`LegObs`]: INVITE, 200,
//!   ACK, BYE and the offer and answer of one hop), MSRP messages and connections tied to the
//!   leg whose session they name.
//!
//! [`delivery`] reads what client-a sent and what each member received off the model;
//! [`scenario`] the exception conditions the wire shows (issue 16: a member that declined).
//!
//! It never judges: a malformed message is recorded as such, and the checks decide.
//! Nothing here panics on hostile input; every index it hands out is valid in the same
//! [`Observation`].

pub mod delivery;
mod dialogs;
pub mod scenario;
pub mod who;
pub mod wire;

pub use who::listener;
pub use wire::interpret;

use crate::codec::msrp::{Flag, MsrpHead, MsrpUri};
use crate::codec::sdp::{MsrpSdp, Sdp, SdpError};
use crate::codec::sip::{SipMessage, Transport};
use crate::config::Link;
use crate::topology::{strip_uri, Role, Topology};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

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
    /// When it was recorded (the first record when it crossed the SIP/IP core).
    pub t: Duration,
    pub transport: Transport,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub sender: Option<Party>,
    pub receiver: Option<Party>,
    /// The link between sender and receiver, when they are neighbours in the chain.
    pub link: Option<Link>,
    /// How many wire records it stands for (2 when both hops through the SIP/IP core were
    /// recorded: entity → core and core → entity).
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
    /// The first hop-by-hop ACK of a final non-2xx: the INVITE's branch (RFC 3261 §17.1.1.3).
    pub failure_ack: Option<usize>,
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
    /// A SEND carrying content (not the bodiless binding SEND).
    pub fn is_content(&self) -> bool {
        self.head.method() == Some("SEND") && self.head.has_body && self.body_len > 0
    }
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
    /// A chunk of it ended with `#`: its sender aborted it (RFC 4975 §7.1.1).
    pub aborted: bool,
    /// SHA-256 (hex) of the reassembled object, when complete and unambiguous.
    pub sha256: Option<String>,
    /// Octets and SHA-256 (hex) of what is inside the message/cpim wrapper (the whole object
    /// when it is not message/cpim), when complete and the CPIM header part parsed.
    pub inner: Option<(u64, String)>,
    /// Octets of the CPIM header part, when it parsed.
    pub cpim_head: Option<u64>,
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
    /// Its target is an entity's SIP listener (SIP over TCP, or a link misdirected there).
    pub to_sip_port: bool,
    /// SIP messages were seen on it (by its exact address pair, or sent by its opener's
    /// SIP listener to its target: how a harness connector records them).
    pub carried_sip: bool,
    /// The TLS session on it (`None`: plain TCP); its data are the session's plaintext.
    pub tls: Option<TlsObs>,
    /// `[opener → target, target → opener]`.
    pub dirs: [DirObs; 2],
    /// Legs whose sessions its messages name.
    pub legs: Vec<usize>,
}

/// A TLS session on a connection (RFC 4975 §14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsObs {
    /// The side that started the handshake (the TLS client).
    pub client: SocketAddr,
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    pub at: Duration,
    /// The handshake failed (no session): why, with the peer and the TLS alert.
    pub failed: Option<String>,
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
    /// The exception scenario the wire shows (members that declined, …), read by
    /// [`resolve`].
    pub scenario: scenario::Scenario,
}

impl Observation {
    /// Legs between two instances, either direction.
    pub fn legs_between<'a>(&'a self, a: &'a str, b: &'a str) -> impl Iterator<Item = &'a LegObs> {
        self.legs.iter().filter(move |l| {
            (l.uac.name == a && l.uas.name == b) || (l.uac.name == b && l.uas.name == a)
        })
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

/// The model of a case from its wire layer ([`interpret`]): attributed to `topology`'s
/// entities, grouped into dialogs, with the views of the harness's instances (`sut` are the
/// roles the SUT played).
pub fn resolve(topology: &Topology, sut: &[Role], mut obs: Observation) -> Observation {
    who::attribute(&mut obs, topology);
    dialogs::build_legs(&mut obs);
    dialogs::attribute_msrp(&mut obs);
    obs.scenario = scenario::read(&obs, topology);
    // What each harness instance saw.
    for (i, s) in obs.sip.iter().enumerate() {
        for p in [&s.sender, &s.receiver].into_iter().flatten() {
            if !sut.contains(&p.role) {
                obs.views.entry(p.name.clone()).or_default().sip.push(i);
            }
        }
    }
    for (i, c) in obs.conns.iter().enumerate() {
        for p in [&c.opener_party, &c.target_party].into_iter().flatten() {
            if !sut.contains(&p.role) {
                obs.views.entry(p.name.clone()).or_default().conns.push(i);
            }
        }
    }
    obs
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
