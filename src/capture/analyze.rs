//! Offline analysis of a capture (`cpm-harness analyze`): a pcap/pcapng read back into wire
//! events, its addresses mapped to the chain's entities, and the *same* observation
//! ([`observe`]) and checks ([`run_checks`]) a live case runs, with a [`CaseContext`] rebuilt
//! from the capture and the command line (figure and knobs, SUT roles, trigger window, pause;
//! the figure's rules are the built-in table of the seven figures).
//!
//! This module owns:
//! - **the entity map** ([`EntityMap`]): a topology YAML given with `--map` (checked to
//!   describe the capture), or one inferred from the SIP signalling chain ([`infer_map`]):
//!   INVITE1 (Request-URI the group, or the conference factory with
//!   `Require: recipient-list-invite`) from client-a to pf-a, pf-a's INVITE2 to x, x's
//!   INVITE3 per member (Request-URI the member) to the pf-b instances, their INVITE4 to the
//!   members, named by the Request-URI's user part. Entities are told apart by IP address (one
//!   IP per entity, as in the harness's topologies; two roles on one IP is an error asking for
//!   `--map`). SIP listeners are where INVITEs were sent (else the sender's Via sent-by), MSRP
//!   listeners the TCP targets that match the entity's own SDP `a=path` URI (else either).
//!   Which INVITE a lone one is, when its neighbours are hidden, follows from the SUT roles
//!   (a hop between two SUT roles is never captured). Entities the capture never shows get
//!   placeholder addresses in 192.0.2.0/24, which match no traffic. Limits: a pre-defined
//!   group's members are those x invited (an ad-hoc group adds its resource list); with no
//!   member INVITE at all, one unseen `member-unseen` stands for the group. Give `--map` to
//!   judge fan-out against the real group;
//! - **the wire plumbing** shared with the ladder: parsed SIP messages ([`sip_messages`]),
//!   TCP connections with their per-direction byte streams ([`tcp_conns`]) and the MSRP
//!   messages in them ([`parse_msrp`]);
//! - **content** ([`contents`]): what client-a sent (its L1 SENDs reassembled over
//!   Byte-Range per Message-ID and unwrapped from CPIM; the first visible link downstream when
//!   L1 is not in the capture) and what each member received (the same on its L4), standing
//!   in for the harness client-b's delivery record that a live case has. MEDIA-DELIVERY's
//!   evidence says so; with pf-b and client-b both SUT no L4 is captured and MEDIA-DELIVERY
//!   is not observable (a live run reads the SUT's output files). Objects over
//!   [`MAX_REASSEMBLED`] are compared by the digests of their CPIM objects instead;
//! - **the report** ([`Report`]): one verdict per check with evidence, as text
//!   ([`render_text`]) or as the summary's case object ([`CaseOutcome`]).
//!
//! Nothing here panics on hostile input: a capture with no INVITE, a map that matches none of
//! the capture's addresses, two roles on one IP are [`AnalyzeError`]s naming the file.

use crate::capture::read::{read_capture_full, CaptureError};
use crate::codec::cpim::Cpim;
use crate::codec::msrp::{Flag, Limits, MsrpEvent, MsrpHead, MsrpParser, MsrpUri, Reassembler};
use crate::codec::sdp::Sdp;
use crate::codec::sip::{SipMessage, Transport};
use crate::config::{Link, Variant};
use crate::engine::case::CaseOutcome;
use crate::engine::catalogue::Family;
use crate::engine::checks::run_checks;
use crate::engine::observe::{locate, observe};
use crate::engine::plan::split_name;
use crate::engine::{
    case_verdict, CaseContext, CheckId, CheckResult, Delivered, Finding, FindingKind, Verdict,
};
use crate::entity::Holds;
use crate::topology::{strip_uri, Endpoint, Member, PfB, Role, Topology};
use crate::trace::WireEvent;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest content object reassembled in memory; beyond it, delivery is judged by comparing
/// the digests of the CPIM objects on the wire.
pub const MAX_REASSEMBLED: u64 = 64 * 1024 * 1024;

/// Why a capture could not be analysed. Every variant names the file; all are usage or input
/// errors (exit code 2 on the command line).
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(
        "{}: no SIP INVITE in the capture ({packets} packets, {sip} SIP messages); expected a \
         capture of the CPM group flow (INVITE from client-a to pf-a, …), e.g. one written by \
         `cpm-harness run` under captures/<run>/",
        path.display()
    )]
    NoInvite {
        path: PathBuf,
        packets: u64,
        sip: usize,
    },
    #[error("{}: {msg}", path.display())]
    Map { path: PathBuf, msg: String },
    #[error("{}: {msg}", path.display())]
    Infer { path: PathBuf, msg: String },
}

// ------------------------------------------------------------------------------------------
// Wire plumbing

/// A parsed SIP message of the capture.
#[derive(Debug, Clone)]
pub struct SipEv {
    /// Index into the event list.
    pub index: usize,
    pub t: Duration,
    pub transport: Transport,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub msg: SipMessage,
}

/// Every SIP message that parses, in capture order (unparseable ones are skipped).
pub fn sip_messages(events: &[(Duration, WireEvent)]) -> Vec<SipEv> {
    events
        .iter()
        .enumerate()
        .filter_map(|(index, (t, e))| match e {
            WireEvent::Sip {
                transport,
                from,
                to,
                raw,
            } => SipMessage::parse(raw).ok().map(|msg| SipEv {
                index,
                t: *t,
                transport: *transport,
                from: *from,
                to: *to,
                msg,
            }),
            _ => None,
        })
        .collect()
}

/// One direction of a TCP connection: its bytes and when each part was seen.
#[derive(Debug, Clone)]
pub struct TcpDir {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub data: Vec<u8>,
    /// (stream offset, time) of each data event.
    pub segs: Vec<(u64, Duration)>,
    pub closed_at: Option<Duration>,
}

impl TcpDir {
    fn new(from: SocketAddr, to: SocketAddr) -> TcpDir {
        TcpDir {
            from,
            to,
            data: Vec::new(),
            segs: Vec::new(),
            closed_at: None,
        }
    }

    /// When the byte at `offset` was seen.
    pub fn time_at(&self, offset: u64) -> Duration {
        let i = self.segs.partition_point(|(o, _)| *o <= offset);
        self.segs
            .get(i.saturating_sub(1))
            .map(|(_, t)| *t)
            .unwrap_or_default()
    }
}

/// One TCP connection of the capture.
#[derive(Debug, Clone)]
pub struct TcpConn {
    /// The side that sent the SYN (the first data's sender when no opening was captured).
    pub opener: SocketAddr,
    pub target: SocketAddr,
    pub opened_at: Option<Duration>,
    /// `[opener → target, target → opener]`.
    pub dirs: [TcpDir; 2],
    /// SIP messages travelled on it (a SIP-over-TCP connection, not an MSRP link).
    pub carried_sip: bool,
}

/// The TCP connections of a (canonical) event stream, in order of opening.
pub fn tcp_conns(events: &[(Duration, WireEvent)]) -> Vec<TcpConn> {
    let mut conns: Vec<TcpConn> = Vec::new();
    let mut by_pair: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    fn add(
        conns: &mut Vec<TcpConn>,
        by_pair: &mut HashMap<(SocketAddr, SocketAddr), usize>,
        opener: SocketAddr,
        target: SocketAddr,
        opened_at: Option<Duration>,
    ) -> usize {
        conns.push(TcpConn {
            opener,
            target,
            opened_at,
            dirs: [TcpDir::new(opener, target), TcpDir::new(target, opener)],
            carried_sip: false,
        });
        let i = conns.len() - 1;
        by_pair.insert((opener, target), i);
        by_pair.insert((target, opener), i);
        i
    }
    for (t, e) in events {
        match e {
            WireEvent::TcpOpen { conn, opener } => {
                let target = if conn.0 == *opener { conn.1 } else { conn.0 };
                add(&mut conns, &mut by_pair, *opener, target, Some(*t));
            }
            WireEvent::TcpData { from, to, data } => {
                let i = match by_pair.get(&(*from, *to)) {
                    Some(&i) => i,
                    None => add(&mut conns, &mut by_pair, *from, *to, None),
                };
                let c = &mut conns[i];
                let d = usize::from(c.opener != *from);
                let dir = &mut c.dirs[d];
                dir.segs.push((dir.data.len() as u64, *t));
                dir.data.extend_from_slice(data);
            }
            WireEvent::TcpClose { from, to } => {
                if let Some(&i) = by_pair.get(&(*from, *to)) {
                    let c = &mut conns[i];
                    let d = usize::from(c.opener != *from);
                    c.dirs[d].closed_at.get_or_insert(*t);
                }
            }
            WireEvent::Sip {
                transport: Transport::Tcp,
                from,
                to,
                ..
            } => {
                if let Some(&i) = by_pair.get(&(*from, *to)) {
                    conns[i].carried_sip = true;
                }
            }
            WireEvent::Sip { .. } => {}
        }
    }
    conns
}

/// One MSRP message in one direction of a connection.
#[derive(Debug, Clone)]
pub struct MsrpMsg {
    /// When its first byte was seen.
    pub t: Duration,
    /// When its end-line was seen (`None`: cut off by the end of the capture).
    pub t_end: Option<Duration>,
    pub head: MsrpHead,
    pub body_len: u64,
    pub flag: Option<Flag>,
    /// The body, when asked for.
    pub body: Option<Vec<u8>>,
}

impl MsrpMsg {
    /// A SEND carrying content (not the bodiless binding SEND).
    pub fn is_content(&self) -> bool {
        self.head.method() == Some("SEND") && self.head.has_body && self.body_len > 0
    }
}

/// The MSRP messages of one direction; the parse error (with its offset) if it gave up.
pub fn parse_msrp(dir: &TcpDir, keep_bodies: bool) -> (Vec<MsrpMsg>, Option<String>) {
    let mut out = Vec::new();
    let mut parser = MsrpParser::new(Limits::default());
    let mut cur: Option<MsrpMsg> = None;
    let mut start = 0u64;
    let mut fed = 0usize;
    // Feed per data event so times stay per message.
    let bounds: Vec<usize> = dir
        .segs
        .iter()
        .skip(1)
        .map(|(o, _)| *o as usize)
        .chain(std::iter::once(dir.data.len()))
        .collect();
    for end in bounds {
        let end = end.min(dir.data.len());
        if end <= fed {
            continue;
        }
        parser.push(&dir.data[fed..end]);
        fed = end;
        loop {
            match parser.next() {
                Ok(Some(MsrpEvent::Head(head))) => {
                    cur = Some(MsrpMsg {
                        t: dir.time_at(start),
                        t_end: None,
                        head,
                        body_len: 0,
                        flag: None,
                        body: keep_bodies.then(Vec::new),
                    });
                }
                Ok(Some(MsrpEvent::Body(b))) => {
                    if let Some(m) = cur.as_mut() {
                        m.body_len += b.len() as u64;
                        if let Some(v) = m.body.as_mut() {
                            v.extend_from_slice(&b);
                        }
                    }
                }
                Ok(Some(MsrpEvent::End { flag, .. })) => {
                    let next = parser.offset();
                    if let Some(mut m) = cur.take() {
                        m.flag = Some(flag);
                        m.t_end = Some(dir.time_at(next.saturating_sub(1)));
                        out.push(m);
                    }
                    start = next;
                }
                Ok(None) => break,
                Err(e) => {
                    if let Some(m) = cur.take() {
                        out.push(m);
                    }
                    return (out, Some(format!("byte {}: {e}", e.offset)));
                }
            }
        }
    }
    if let Some(m) = cur.take() {
        out.push(m);
    }
    (out, None)
}

// ------------------------------------------------------------------------------------------
// The entity map

/// How the capture's addresses map to the chain's entities.
#[derive(Debug, Clone)]
pub struct EntityMap {
    pub topology: Topology,
    /// The `--map` file, or `None` when inferred from the capture.
    pub source: Option<PathBuf>,
    /// Entities the capture never shows (placeholder addresses in 192.0.2.0/24).
    pub unseen: Vec<String>,
    /// How the inference decided, one line each.
    pub notes: Vec<String>,
}

impl EntityMap {
    /// One line per entity: `pf-a 127.0.0.12 (sip :5060, msrp :2855)`.
    pub fn describe(&self) -> Vec<String> {
        self.topology
            .instances()
            .into_iter()
            .map(|i| {
                if self.unseen.contains(&i.name) {
                    format!("{:<9} not in the capture", i.name)
                } else if i.sip.ip() == i.msrp.ip() {
                    format!(
                        "{:<9} {} (sip :{}, msrp :{})",
                        i.name,
                        i.sip.ip(),
                        i.sip.port(),
                        i.msrp.port()
                    )
                } else {
                    format!("{:<9} sip {} msrp {}", i.name, i.sip, i.msrp)
                }
            })
            .collect()
    }
}

/// Loads a `--map` topology file; errors name the file (and line:column for YAML errors).
pub fn load_map(path: &Path) -> Result<Topology, AnalyzeError> {
    Topology::load(path).map_err(|e| AnalyzeError::Map {
        path: path.to_owned(),
        msg: format!(
            "{}; expected a topology YAML like suites/topology.yaml",
            strip_prefix(&format!("{e:#}"), &path.display().to_string())
        ),
    })
}

/// [`load_map`] for an optional `--map`: the path with its topology.
pub fn load_map_opt(path: Option<&Path>) -> Result<Option<(PathBuf, Topology)>, AnalyzeError> {
    path.map(|p| load_map(p).map(|t| (p.to_owned(), t)))
        .transpose()
}

fn strip_prefix(msg: &str, prefix: &str) -> String {
    msg.strip_prefix(prefix)
        .map(|r| r.trim_start_matches(':').trim_start().to_string())
        .unwrap_or_else(|| msg.to_string())
}

/// The entity map of a capture: `map` (from `map_path`) when given, checked to describe at
/// least one of the capture's SIP addresses; otherwise inferred ([`infer_map`]).
pub fn entity_map(
    capture: &Path,
    events: &[(Duration, WireEvent)],
    map: Option<(&Path, &Topology)>,
    sut: &[Role],
) -> Result<EntityMap, AnalyzeError> {
    let sips = sip_messages(events);
    match map {
        Some((path, topo)) => {
            let known = sips
                .iter()
                .any(|s| locate(topo, s.from).is_some() || locate(topo, s.to).is_some());
            if !known {
                let sample: BTreeSet<String> = sips
                    .iter()
                    .flat_map(|s| [s.from.ip().to_string(), s.to.ip().to_string()])
                    .take(4)
                    .collect();
                let what = if sample.is_empty() {
                    "the capture has no SIP messages".to_string()
                } else {
                    format!(
                        "none of the capture's SIP addresses ({}…) is an entity of the map",
                        sample.into_iter().collect::<Vec<_>>().join(", ")
                    )
                };
                return Err(AnalyzeError::Map {
                    path: path.to_owned(),
                    msg: format!(
                        "does not describe {}: {what}; expected the topology the capture was \
                         taken with",
                        capture.display()
                    ),
                });
            }
            Ok(EntityMap {
                topology: topo.clone(),
                source: Some(path.to_owned()),
                unseen: Vec::new(),
                notes: Vec::new(),
            })
        }
        None => infer_map(events, sut).map_err(|msg| AnalyzeError::Infer {
            path: capture.to_owned(),
            msg,
        }),
    }
}

/// An initial INVITE (no To tag), first copy only.
#[derive(Debug, Clone)]
struct Inv {
    t: Duration,
    from: SocketAddr,
    to: SocketAddr,
    /// Request-URI, stripped of parameters and brackets, lower-cased.
    uri: String,
    raw_uri: String,
    adhoc: bool,
    list: Vec<String>,
    via: Option<String>,
    from_uri: Option<String>,
    to_uri: Option<String>,
}

fn initial_invites(sips: &[SipEv]) -> Vec<Inv> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for s in sips {
        let m = &s.msg;
        if m.method().map(|x| x.as_str()) != Some("INVITE") || m.to_tag().is_some() {
            continue;
        }
        let key = (
            m.call_id().unwrap_or_default().to_string(),
            m.via_branch().unwrap_or_default(),
            s.from.ip(),
            s.to.ip(),
        );
        if !seen.insert(key) {
            continue;
        }
        let raw_uri = m.request_uri().unwrap_or_default().to_string();
        let list = m.resource_list().ok().flatten().unwrap_or_default();
        let require = m
            .header_all("Require")
            .any(|r| r.to_ascii_lowercase().contains("recipient-list-invite"));
        out.push(Inv {
            t: s.t,
            from: s.from,
            to: s.to,
            uri: strip_uri(&raw_uri),
            raw_uri,
            adhoc: require || !list.is_empty(),
            list,
            via: m.via_sent_by().map(|(_, v)| v),
            from_uri: m.from_uri(),
            to_uri: m.to_uri(),
        });
    }
    out.sort_by_key(|i| i.t);
    out
}

/// The placeholder address of the `n`-th unseen entity.
fn placeholder(n: u8) -> Endpoint {
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, n.max(1)));
    Endpoint {
        sip: SocketAddr::new(ip, 5060),
        msrp: SocketAddr::new(ip, 2855),
    }
}

/// A member name from its URI: the user part (`sip:b1@example.com` → `b1`).
fn member_name(uri: &str) -> String {
    let u = uri.split_once(':').map(|(_, r)| r).unwrap_or(uri);
    let user = u.split('@').next().unwrap_or(u);
    let clean: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.+".contains(*c))
        .collect();
    if clean.is_empty() {
        "member".into()
    } else {
        clean
    }
}

/// Infers the entity map from the SIP signalling chain (see the module docs). `sut` says
/// which hops cannot be in the capture (between two SUT roles), which settles which INVITE a
/// lone one is when its neighbours are hidden.
pub fn infer_map(events: &[(Duration, WireEvent)], sut: &[Role]) -> Result<EntityMap, String> {
    let sips = sip_messages(events);
    let invites = initial_invites(&sips);
    if invites.is_empty() {
        return Err("no SIP INVITE in the capture".into());
    }
    let visible = |a: Role, b: Role| !(sut.contains(&a) && sut.contains(&b));
    let (l1, l2, l3, l4) = (
        visible(Role::ClientA, Role::PfA),
        visible(Role::PfA, Role::X),
        visible(Role::X, Role::PfB),
        visible(Role::PfB, Role::ClientB),
    );
    let mut notes = Vec::new();
    let sends = |ip: IpAddr, pred: &dyn Fn(&Inv) -> bool| {
        invites.iter().any(|i| i.from.ip() == ip && pred(i))
    };
    let receives = |ip: IpAddr, pred: &dyn Fn(&Inv) -> bool| {
        invites.iter().any(|i| i.to.ip() == ip && pred(i))
    };

    // The group (or factory) URI: INVITE1/INVITE2's Request-URI.
    let group_uri: Option<String> = invites
        .iter()
        .find(|i| i.adhoc)
        .or_else(|| {
            invites
                .iter()
                .find(|i| sends(i.to.ip(), &|o: &Inv| o.uri != i.uri))
        })
        .or_else(|| if l1 || l2 { invites.first() } else { None })
        .map(|i| i.uri.clone());
    let is_group = |i: &Inv| Some(&i.uri) == group_uri.as_ref();

    let (mut client_a, mut pf_a, mut x): (Option<IpAddr>, Option<IpAddr>, Option<IpAddr>) =
        (None, None, None);
    let set =
        |slot: &mut Option<IpAddr>, ip: IpAddr, what: &str, notes: &mut Vec<String>| match slot {
            None => *slot = Some(ip),
            Some(old) if *old != ip => notes.push(format!(
                "{what} seen at {ip} as well as {old}; {old} is used"
            )),
            _ => {}
        };
    let mut invite1: Option<&Inv> = None;
    for g in invites.iter().filter(|i| is_group(i)) {
        let is_invite2 = if receives(g.from.ip(), &|o| is_group(o)) {
            true
        } else if sends(g.to.ip(), &|o| is_group(o)) {
            false
        } else if sends(g.to.ip(), &|o| !is_group(o)) {
            true
        } else {
            !l1
        };
        if is_invite2 {
            set(&mut pf_a, g.from.ip(), "pf-a", &mut notes);
            set(&mut x, g.to.ip(), "x", &mut notes);
        } else {
            set(&mut client_a, g.from.ip(), "client-a", &mut notes);
            set(&mut pf_a, g.to.ip(), "pf-a", &mut notes);
            invite1.get_or_insert(g);
        }
    }
    // Member INVITEs: INVITE3 from x to a pf-b, INVITE4 from a pf-b to the member.
    let mut pfb_ips: BTreeSet<IpAddr> = BTreeSet::new();
    // member URI → (raw URI, pf-b IP, member IP)
    let mut members: BTreeMap<String, (String, Option<IpAddr>, Option<IpAddr>)> = BTreeMap::new();
    let mut member_order: Vec<String> = Vec::new();
    for m in invites.iter().filter(|i| !is_group(i)) {
        let same = |o: &Inv| o.uri == m.uri;
        let is_invite3 = if x == Some(m.from.ip()) {
            true
        } else if receives(m.from.ip(), &same) {
            false
        } else if sends(m.to.ip(), &same) {
            true
        } else if !l3 {
            false
        } else if !l4 {
            true
        } else {
            x.is_none() && receives(m.from.ip(), &|o| is_group(o))
        };
        let e = members.entry(m.uri.clone()).or_insert_with(|| {
            member_order.push(m.uri.clone());
            (m.raw_uri.clone(), None, None)
        });
        if is_invite3 {
            set(&mut x, m.from.ip(), "x", &mut notes);
            e.1.get_or_insert(m.to.ip());
            pfb_ips.insert(m.to.ip());
        } else {
            e.1.get_or_insert(m.from.ip());
            e.2.get_or_insert(m.to.ip());
            pfb_ips.insert(m.from.ip());
        }
    }
    // Ad hoc: members of the resource list x never invited are still expected.
    let adhoc = invites.iter().find(|i| i.adhoc);
    if let Some(a) = adhoc {
        for u in &a.list {
            let key = strip_uri(u);
            if let std::collections::btree_map::Entry::Vacant(e) = members.entry(key.clone()) {
                notes.push(format!(
                    "{u}: in the resource list but never invited in the capture"
                ));
                member_order.push(key);
                e.insert((u.clone(), None, None));
            }
        }
    }

    // One IP per entity.
    let mut owners: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
    for (name, ip) in [("client-a", client_a), ("pf-a", pf_a), ("x", x)] {
        if let Some(ip) = ip {
            owners.entry(ip).or_default().push(name.into());
        }
    }
    for ip in &pfb_ips {
        owners.entry(*ip).or_default().push("a pf-b".into());
    }
    for (uri, (_, _, ip)) in &members {
        if let Some(ip) = ip {
            owners.entry(*ip).or_default().push(format!("member {uri}"));
        }
    }
    if let Some((ip, who)) = owners.iter().find(|(_, v)| v.len() > 1) {
        return Err(format!(
            "{} share the address {ip}: inferring entities needs one IP per entity; give \
             --map with the topology instead",
            who.join(" and ")
        ));
    }

    // Listener addresses.
    let sip_addr = |ip: IpAddr| -> SocketAddr {
        if let Some(i) = invites.iter().find(|i| i.to.ip() == ip) {
            return i.to;
        }
        for i in invites.iter().filter(|i| i.from.ip() == ip) {
            if let Some(sa) = i.via.as_deref().and_then(|v| v.parse::<SocketAddr>().ok()) {
                if sa.ip() == ip {
                    return sa;
                }
            }
            if let Some(h) = i.via.as_deref() {
                if h.parse::<IpAddr>().ok() == Some(ip) {
                    return SocketAddr::new(ip, 5060);
                }
            }
        }
        invites
            .iter()
            .find(|i| i.from.ip() == ip)
            .map(|i| i.from)
            .unwrap_or(SocketAddr::new(ip, 5060))
    };
    let conns = tcp_conns(events);
    let sip_listeners: BTreeSet<SocketAddr> = invites.iter().map(|i| i.to).collect();
    let msrp_addr = |ip: IpAddr, sip: SocketAddr| -> Option<SocketAddr> {
        // The entity's own a=path URIs, from the SDP it sent.
        let own: Vec<SocketAddr> = sips
            .iter()
            .filter(|s| s.from.ip() == ip)
            .filter_map(|s| s.msg.sdp_body())
            .filter_map(|b| Sdp::parse(&b).ok())
            .filter_map(|sdp| {
                let m = sdp.media.iter().find(|m| m.media == "message")?;
                let list = MsrpUri::parse_list(m.attribute("path")?).ok()?;
                list.last()?.socket_addr()
            })
            .filter(|a| a.ip() == ip)
            .collect();
        // Where MSRP connections to it went.
        let targets: Vec<SocketAddr> = conns
            .iter()
            .filter(|c| !c.carried_sip && c.target.ip() == ip)
            .map(|c| c.target)
            .filter(|a| *a != sip && !sip_listeners.contains(a))
            .collect();
        own.iter()
            .find(|a| targets.contains(a))
            .or(targets.first())
            .or(own.first())
            .copied()
    };
    let mut unseen = Vec::new();
    let mut next_placeholder = 1u8;
    let mut endpoint = |name: &str, ip: Option<IpAddr>, unseen: &mut Vec<String>| match ip {
        Some(ip) => {
            let sip = sip_addr(ip);
            let msrp = msrp_addr(ip, sip).unwrap_or(SocketAddr::new(ip, 0));
            Endpoint { sip, msrp }
        }
        None => {
            unseen.push(name.to_string());
            let e = placeholder(next_placeholder);
            next_placeholder = next_placeholder.saturating_add(1);
            e
        }
    };
    let ep_a = endpoint("client-a", client_a, &mut unseen);
    let ep_pfa = endpoint("pf-a", pf_a, &mut unseen);
    let ep_x = endpoint("x", x, &mut unseen);
    let mut pf_b: Vec<PfB> = Vec::new();
    for (k, ip) in pfb_ips.iter().enumerate() {
        let name = format!("pf-b{}", k + 1);
        let e = endpoint(&name, Some(*ip), &mut unseen);
        pf_b.push(PfB {
            name,
            sip: e.sip,
            msrp: e.msrp,
            serves: Vec::new(),
        });
    }
    // Members in address order (the harness numbers them that way), unseen ones last.
    member_order.sort_by_key(|u| (members[u].2.is_none(), members[u].2, u.clone()));
    let mut taken: BTreeSet<String> = ["client-a", "pf-a", "x"].map(String::from).into();
    taken.extend(pf_b.iter().map(|p| p.name.clone()));
    let mut member_list = Vec::new();
    for uri in &member_order {
        let (raw, pfb_ip, ip) = members[uri].clone();
        let mut name = member_name(&strip_uri(&raw));
        if taken.contains(&name) {
            let base = name.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
        }
        taken.insert(name.clone());
        let e = endpoint(&name, ip, &mut unseen);
        let server = pfb_ip.and_then(|pip| pfb_ips.iter().position(|p| *p == pip));
        match server {
            Some(k) => pf_b[k].serves.push(name.clone()),
            None => {
                // Never invited (ad hoc list): served by a placeholder pf-b.
                if !pf_b.iter().any(|p| p.name == "pf-b-unseen") {
                    let e = endpoint("pf-b-unseen", None, &mut unseen);
                    pf_b.push(PfB {
                        name: "pf-b-unseen".into(),
                        sip: e.sip,
                        msrp: e.msrp,
                        serves: Vec::new(),
                    });
                }
                if let Some(p) = pf_b.iter_mut().find(|p| p.name == "pf-b-unseen") {
                    p.serves.push(name.clone());
                }
            }
        }
        member_list.push(Member {
            name,
            uri: strip_uri(&raw),
            sip: e.sip,
            msrp: e.msrp,
        });
    }
    if member_list.is_empty() {
        // A group has members: judge the missing fan-out rather than an empty group.
        notes.push(
            "no member INVITE in the capture: the group is taken to have one member, \
             `member-unseen`, whom nothing reached (give --map for the real group)"
                .into(),
        );
        let e = endpoint("pf-b-unseen", None, &mut unseen);
        let m = endpoint("member-unseen", None, &mut unseen);
        pf_b.push(PfB {
            name: "pf-b-unseen".into(),
            sip: e.sip,
            msrp: e.msrp,
            serves: vec!["member-unseen".into()],
        });
        member_list.push(Member {
            name: "member-unseen".into(),
            uri: "sip:member-unseen@unknown.invalid".into(),
            sip: m.sip,
            msrp: m.msrp,
        });
    }
    let (group, factory) = match (adhoc, &group_uri) {
        (Some(a), _) => (
            a.to_uri
                .as_deref()
                .map(strip_uri)
                .filter(|t| *t != a.uri)
                .unwrap_or_else(|| "sip:group@unknown.invalid".into()),
            a.uri.clone(),
        ),
        (None, Some(g)) => (g.clone(), "sip:factory@unknown.invalid".into()),
        (None, None) => (
            "sip:group@unknown.invalid".into(),
            "sip:factory@unknown.invalid".into(),
        ),
    };
    for n in &unseen {
        notes.push(format!(
            "{n}: not in the capture (hops between SUT roles are not recorded)"
        ));
    }
    Ok(EntityMap {
        topology: Topology {
            group,
            factory,
            sender: invite1
                .and_then(|i| i.from_uri.clone())
                .unwrap_or_else(|| "sip:sender@unknown.invalid".into()),
            client_a: ep_a,
            pf_a: ep_pfa,
            x: ep_x,
            pf_b,
            members: member_list,
            core: None,
            index: Default::default(),
        },
        source: None,
        unseen,
        notes,
    })
}

// ------------------------------------------------------------------------------------------
// Content

/// One content object (Message-ID within a session) reassembled from one direction.
#[derive(Debug, Clone)]
pub struct WireContent {
    pub from: Option<String>,
    pub to: Option<String>,
    pub message_id: String,
    /// The To-Path of its chunks, as written.
    pub to_path: String,
    pub content_type: Option<String>,
    pub t: Duration,
    /// Every octet up to the total arrived.
    pub complete: bool,
    /// Octets received (of the whole object, CPIM header included).
    pub received: u64,
    /// Octets and SHA-256 of the content once unwrapped from CPIM (the whole object when it
    /// is not message/cpim); `None` when incomplete, unreadable or too large.
    pub inner: Option<(u64, String)>,
    /// SHA-256 of the whole object (CPIM included), when complete.
    pub object_sha256: Option<String>,
    /// Octets of the CPIM header part, when it parsed.
    pub cpim_head: Option<u64>,
    pub note: Option<String>,
}

struct Acc {
    from: Option<String>,
    to: Option<String>,
    message_id: String,
    to_path: String,
    content_type: Option<String>,
    t: Duration,
    re: Option<Reassembler>,
    note: Option<String>,
    received: u64,
    /// For objects too large to keep: hash in order while the chunks come in order.
    hasher: Option<(Sha256, u64, Vec<u8>)>,
    final_seen: bool,
}

/// Every content object the capture's MSRP links carried, reassembled per direction.
pub fn contents(events: &[(Duration, WireEvent)], topo: &Topology) -> Vec<WireContent> {
    let mut out = Vec::new();
    for c in tcp_conns(events).iter().filter(|c| !c.carried_sip) {
        for dir in &c.dirs {
            let (msgs, _) = parse_msrp(dir, true);
            let from = locate(topo, dir.from).map(|p| p.name);
            let to = locate(topo, dir.to).map(|p| p.name);
            let mut accs: Vec<Acc> = Vec::new();
            let mut by_key: HashMap<(String, String), usize> = HashMap::new();
            for m in msgs.iter().filter(|m| m.is_content()) {
                let id = m.head.message_id().unwrap_or("").to_string();
                let to_path = m.head.header("To-Path").unwrap_or("").to_string();
                let k = *by_key
                    .entry((to_path.clone(), id.clone()))
                    .or_insert_with(|| {
                        accs.push(Acc {
                            from: from.clone(),
                            to: to.clone(),
                            message_id: id,
                            to_path,
                            content_type: m.head.content_type().map(String::from),
                            t: m.t,
                            re: Some(Reassembler::new(MAX_REASSEMBLED)),
                            note: None,
                            received: 0,
                            hasher: Some((Sha256::new(), 0, Vec::new())),
                            final_seen: false,
                        });
                        accs.len() - 1
                    });
                let acc = &mut accs[k];
                let body = m.body.as_deref().unwrap_or_default();
                acc.received += body.len() as u64;
                let flag = m.flag.unwrap_or(Flag::More);
                acc.final_seen |= flag == Flag::End;
                let range = match m.head.byte_range() {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        acc.note = Some(format!("bad Byte-Range: {e}"));
                        acc.re = None;
                        acc.hasher = None;
                        continue;
                    }
                    None => {
                        acc.note = Some("a chunk without Byte-Range".into());
                        acc.re = None;
                        acc.hasher = None;
                        continue;
                    }
                };
                if let Some((h, next, prefix)) = acc.hasher.as_mut() {
                    if range.start.saturating_sub(1) == *next {
                        h.update(body);
                        *next += body.len() as u64;
                        let room = crate::codec::cpim::MAX_HEAD.saturating_sub(prefix.len());
                        prefix.extend_from_slice(&body[..body.len().min(room)]);
                    } else {
                        acc.hasher = None;
                    }
                }
                if let Some(re) = acc.re.as_mut() {
                    if let Err(e) = re.add(range, body, flag) {
                        acc.note = Some(e.to_string());
                        acc.re = None;
                    }
                }
            }
            out.extend(accs.into_iter().map(finish_content));
        }
    }
    out
}

fn finish_content(a: Acc) -> WireContent {
    let is_cpim = a
        .content_type
        .as_deref()
        .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("message/cpim"));
    let mut w = WireContent {
        from: a.from,
        to: a.to,
        message_id: a.message_id,
        to_path: a.to_path,
        content_type: a.content_type,
        t: a.t,
        complete: false,
        received: a.received,
        inner: None,
        object_sha256: None,
        cpim_head: None,
        note: a.note,
    };
    if let Some(re) = a.re {
        w.complete = re.is_complete();
        if let Some(bytes) = re.into_bytes() {
            w.object_sha256 = Some(hex::encode(Sha256::digest(&bytes)));
            let head = if is_cpim {
                match Cpim::parse_head(&bytes) {
                    Ok(Some((_, n))) => Some(n),
                    Ok(None) => {
                        w.note = Some("CPIM header part never ends".into());
                        None
                    }
                    Err(e) => {
                        w.note = Some(e.to_string());
                        None
                    }
                }
            } else {
                Some(0)
            };
            if let Some(n) = head {
                w.cpim_head = Some(n as u64);
                let inner = &bytes[n..];
                w.inner = Some((inner.len() as u64, hex::encode(Sha256::digest(inner))));
            }
        }
        return w;
    }
    // Too large or broken for memory: the in-order digest of the whole object.
    if let Some((h, next, prefix)) = a.hasher {
        if a.final_seen {
            w.complete = true;
            w.object_sha256 = Some(hex::encode(h.finalize()));
            w.cpim_head = if is_cpim {
                Cpim::parse_head(&prefix)
                    .ok()
                    .flatten()
                    .map(|(_, n)| n as u64)
            } else {
                Some(0)
            };
            w.received = next;
        }
    }
    w
}

/// Where the context's content and delivery came from, for the report.
#[derive(Debug, Clone, Default)]
pub struct ContentSource {
    /// e.g. `client-a → pf-a (L1)`, or why nothing was found.
    pub sent: String,
    /// One line per member.
    pub delivered: Vec<String>,
    /// Digests are of whole CPIM objects (content too large to reassemble).
    pub object_digests: bool,
}

/// What client-a sent and what each member got, from the wire (see the module docs).
fn content_context(
    events: &[(Duration, WireEvent)],
    topo: &Topology,
) -> (u64, String, BTreeMap<String, Delivered>, ContentSource) {
    let all = contents(events, topo);
    let role_of = |n: &Option<String>| n.as_deref().and_then(|n| topo.instance(n)).map(|i| i.role);
    let mut src = ContentSource::default();
    // Sent: the first complete object on the first visible link, L1 first.
    let chain = [
        (Role::ClientA, Role::PfA, Link::L1),
        (Role::PfA, Role::X, Link::L2),
        (Role::X, Role::PfB, Link::L3),
        (Role::PfB, Role::ClientB, Link::L4),
    ];
    let mut sent: Option<&WireContent> = None;
    for (a, b, link) in chain {
        let on_link: Vec<&WireContent> = all
            .iter()
            .filter(|w| role_of(&w.from) == Some(a) && role_of(&w.to) == Some(b))
            .collect();
        if let Some(w) = on_link
            .iter()
            .find(|w| w.complete && (w.inner.is_some() || w.object_sha256.is_some()))
        {
            src.sent = format!(
                "{} → {} ({link:?}), Message-ID {}",
                w.from.as_deref().unwrap_or("?"),
                w.to.as_deref().unwrap_or("?"),
                w.message_id
            );
            sent = Some(w);
            break;
        }
    }
    let large = sent.is_some_and(|w| w.inner.is_none());
    src.object_digests = large;
    let (len, sha) = match sent {
        Some(w) => match &w.inner {
            Some((n, h)) => (*n, h.clone()),
            None => (
                w.received.saturating_sub(w.cpim_head.unwrap_or(0)),
                format!("cpim:{}", w.object_sha256.clone().unwrap_or_default()),
            ),
        },
        None => {
            src.sent = "no complete content object on any link of the capture".into();
            (0, String::new())
        }
    };
    // A member takes content only for a session it negotiated (To-Path its own a=path URI),
    // as the harness's client-b does.
    let sips = sip_messages(events);
    let own_paths = |name: &str| -> Vec<MsrpUri> {
        sips.iter()
            .filter(|s| locate(topo, s.from).is_some_and(|p| p.name == name))
            .filter_map(|s| s.msg.sdp_body())
            .filter_map(|b| Sdp::parse(&b).ok())
            .filter_map(|sdp| {
                let m = sdp.media.iter().find(|m| m.media == "message")?;
                MsrpUri::parse_list(m.attribute("path")?).ok()?.pop()
            })
            .collect()
    };
    let mut delivered = BTreeMap::new();
    for m in &topo.members {
        let paths = own_paths(&m.name);
        let for_me = |w: &WireContent| {
            paths.is_empty()
                || MsrpUri::parse_list(&w.to_path)
                    .ok()
                    .and_then(|mut v| v.pop())
                    .is_some_and(|u| paths.iter().any(|p| p.matches(&u)))
        };
        let mine: Vec<&WireContent> = all
            .iter()
            .filter(|w| w.to.as_deref() == Some(m.name.as_str()) && for_me(w))
            .collect();
        let pick = mine
            .iter()
            .rev()
            .find(|w| w.complete)
            .or_else(|| mine.iter().max_by_key(|w| w.received));
        let Some(w) = pick else { continue };
        let d = if !w.complete {
            Delivered {
                bytes: w.received.saturating_sub(w.cpim_head.unwrap_or(0)),
                sha256: String::new(),
                complete: false,
            }
        } else if let (false, Some((n, h))) = (large, &w.inner) {
            Delivered {
                bytes: *n,
                sha256: h.clone(),
                complete: true,
            }
        } else {
            Delivered {
                bytes: w.received.saturating_sub(w.cpim_head.unwrap_or(0)),
                sha256: format!("cpim:{}", w.object_sha256.clone().unwrap_or_default()),
                complete: true,
            }
        };
        src.delivered.push(format!(
            "{}: {} bytes{} from {} on L4{}",
            m.name,
            d.bytes,
            if d.complete { "" } else { " (incomplete)" },
            w.from.as_deref().unwrap_or("?"),
            w.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
        delivered.insert(m.name.clone(), d);
    }
    (len, sha, delivered, src)
}

// ------------------------------------------------------------------------------------------
// Analysis

/// What `analyze` needs besides the capture.
#[derive(Debug, Clone)]
pub struct Options {
    pub variant: Variant,
    /// The roles the SUT plays in the capture; empty judges every role (the self-check).
    pub sut: Vec<Role>,
    /// `--map`: the topology file and its content.
    pub map: Option<(PathBuf, Topology)>,
    /// How long after its trigger a link may open (the run's `--trigger-window-ms`).
    pub trigger_window: Duration,
    /// The discriminating pause the harness inserted in the captured case (0 for in-order).
    pub pause: Duration,
    /// Judge SIP and SDP only: LINK-* and MEDIA-* checks are not observable (the capture's
    /// non-SUT peers, e.g. SIPp, speak no MSRP).
    pub signalling_only: bool,
}

impl Options {
    pub fn new(variant: Variant) -> Options {
        Options {
            variant,
            sut: Vec::new(),
            map: None,
            trigger_window: Duration::from_millis(1000),
            pause: Duration::ZERO,
            signalling_only: false,
        }
    }
}

/// The result of analysing one capture.
#[derive(Debug, Clone)]
pub struct Report {
    pub capture: PathBuf,
    /// The summary's case object: id, figure, split, verdict, checks with evidence, notes.
    pub outcome: CaseOutcome,
    pub map: EntityMap,
    pub content: ContentSource,
    pub packets: u64,
    pub events: usize,
    /// Reader warnings (skipped or repaired packets).
    pub warnings: Vec<String>,
}

impl Report {
    /// 0 when the case passes, 1 otherwise (as `cpm-harness run`: fail or inconc).
    pub fn exit_code(&self) -> u8 {
        match self.outcome.verdict {
            Verdict::Pass => 0,
            _ => 1,
        }
    }
}

/// Reads and analyses a capture file.
pub fn analyze_file(path: &Path, opts: &Options) -> Result<Report, AnalyzeError> {
    let cap = read_capture_full(path)?;
    let mut r = analyze_events(path, &cap.events, opts).map_err(|e| match e {
        AnalyzeError::NoInvite { path, sip, .. } => AnalyzeError::NoInvite {
            path,
            packets: cap.packets,
            sip,
        },
        e => e,
    })?;
    r.packets = cap.packets;
    r.warnings = cap.warnings;
    Ok(r)
}

/// Analyses events read from `path` (named in errors and the report).
pub fn analyze_events(
    path: &Path,
    events: &[(Duration, WireEvent)],
    opts: &Options,
) -> Result<Report, AnalyzeError> {
    let sips = sip_messages(events);
    if initial_invites(&sips).is_empty() {
        return Err(AnalyzeError::NoInvite {
            path: path.to_owned(),
            packets: 0,
            sip: sips.len(),
        });
    }
    let map = entity_map(
        path,
        events,
        opts.map.as_ref().map(|(p, t)| (p.as_path(), t)),
        &opts.sut,
    )?;
    let topo = &map.topology;
    let (content_len, content_sha256, delivered, content) = content_context(events, topo);
    let ctx = CaseContext {
        topology: Arc::new(topo.clone()),
        variant: opts.variant.clone(),
        sut: opts.sut.clone(),
        holds: Holds::default(),
        pause: opts.pause,
        trigger_window: opts.trigger_window,
        content_len,
        content_sha256,
        delivered,
    };
    let obs = observe(&ctx, events);
    let mut checks = run_checks(&ctx, &obs);
    annotate_delivery(&mut checks, &opts.sut, &content);
    if opts.signalling_only {
        for c in checks
            .iter_mut()
            .filter(|c| matches!(c.id.family(), Family::Link | Family::Media))
        {
            c.verdict = Verdict::NotObservable;
            c.findings = vec![Finding::not_observable(FindingKind::SignallingOnly)];
        }
    }
    let verdict = case_verdict(&checks);
    let split = split_name(&opts.sut);
    let v = opts.variant.id();
    let knobs = v.split_once('/').map(|(_, r)| r).unwrap_or("");
    let mut notes = map.notes.clone();
    notes.extend(obs.notes.iter().cloned());
    let outcome = CaseOutcome {
        id: format!("F{}/{split}/{knobs}/capture", opts.variant.figure),
        figure: opts.variant.figure.n(),
        split,
        ordering: "capture".into(),
        verdict,
        duration_ms: obs.end.as_millis(),
        checks,
        notes,
        setup_error: None,
        events: Vec::new(),
        topology: Some(ctx.topology.clone()),
    };
    Ok(Report {
        capture: path.to_owned(),
        outcome,
        map,
        content,
        packets: 0,
        events: events.len(),
        warnings: Vec::new(),
    })
}

/// MEDIA-DELIVERY reads the members' received bytes, which a capture only shows as what
/// crossed L4: say so in its evidence, and make it not observable when no L4 can be in the
/// capture (pf-b and client-b both SUT; a live run reads the SUT's output files instead).
fn annotate_delivery(checks: &mut [CheckResult], sut: &[Role], src: &ContentSource) {
    let Some(c) = checks.iter_mut().find(|c| c.id == CheckId::MediaDelivery) else {
        return;
    };
    if sut.contains(&Role::PfB) && sut.contains(&Role::ClientB) {
        c.verdict = Verdict::NotObservable;
        c.findings = vec![Finding::not_observable(
            FindingKind::DeliveryHiddenInCapture,
        )];
        return;
    }
    c.findings.push(Finding::new(
        crate::engine::Class::Note,
        FindingKind::DeliveryFromWire {
            whole_objects: src.object_digests,
            sent: src.sent.to_string(),
        },
    ));
}

/// The report as text: the entity map, where the content came from, then one block per check.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let o = &r.outcome;
    let _ = writeln!(
        s,
        "capture {}: {} packets, {} events",
        r.capture.display(),
        r.packets,
        r.events
    );
    match &r.map.source {
        Some(p) => {
            let _ = writeln!(s, "entities from --map {}:", p.display());
        }
        None => {
            let _ = writeln!(s, "entities inferred from the capture:");
        }
    }
    for l in r.map.describe() {
        let _ = writeln!(s, "  {l}");
    }
    let _ = writeln!(
        s,
        "case {} (SUT: {})",
        o.id,
        if o.split == "none" {
            "none, every role judged".to_string()
        } else {
            o.split.clone()
        }
    );
    let _ = writeln!(s, "content sent: {}", r.content.sent);
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    for n in &o.notes {
        let _ = writeln!(s, "note: {n}");
    }
    for c in &o.checks {
        let _ = writeln!(
            s,
            "{:<14} {:<15} [{}]",
            c.verdict.as_str(),
            c.id,
            c.reference
        );
        for e in &c.evidence() {
            let _ = writeln!(s, "    {e}");
        }
    }
    let count = |v: Verdict| o.checks.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        s,
        "verdict: {} ({} checks: {} pass, {} fail, {} inconc, {} not observable, {} error)",
        o.verdict.as_str(),
        o.checks.len(),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Inconc),
        count(Verdict::NotObservable),
        count(Verdict::Error)
    );
    s
}

/// Parses `--sut`: `none` (every role judged) or roles joined by `,` or `+`.
pub fn parse_sut(s: &str) -> Result<Vec<Role>, String> {
    let s = s.trim();
    if s == "none" || s.is_empty() {
        return Ok(Vec::new());
    }
    let roles = Role::parse_list(&s.replace('+', ",")).map_err(|e| format!("--sut {s:?}: {e}"))?;
    if roles.len() == Role::ALL.len() {
        return Err(format!(
            "--sut {s:?}: all five roles leaves nothing the harness played; use `none` to \
             judge every role"
        ));
    }
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_come_from_the_user_part() {
        assert_eq!(member_name("sip:b1@example.com"), "b1");
        assert_eq!(member_name("sip:@example.com"), "member");
        assert_eq!(member_name("tel:+123"), "+123");
    }

    #[test]
    fn sut_lists_parse_and_reject_unknown_roles() {
        assert_eq!(parse_sut("none").unwrap(), Vec::<Role>::new());
        assert_eq!(parse_sut("x+pf-a").unwrap(), vec![Role::PfA, Role::X]);
        assert!(parse_sut("pfa").unwrap_err().contains("unknown role"));
        assert!(parse_sut("client-a,pf-a,x,pf-b,client-b")
            .unwrap_err()
            .contains("none"));
    }

    #[test]
    fn no_invite_is_an_error_naming_the_file() {
        let e = analyze_events(Path::new("empty.pcap"), &[], &Options::new(Variant::new(1)))
            .unwrap_err();
        assert!(
            e.to_string().starts_with("empty.pcap: no SIP INVITE"),
            "{e}"
        );
    }
}
