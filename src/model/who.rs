//! Who is who: the parties at the two ends of every SIP message and TCP connection of the
//! wire layer, decided by address and port first, then by what the wire proves.
//!
//! Several entities — of the harness or of the SUT — may share one IP address (a vendor's
//! SUT plays all its roles on one address), so an IP alone names nobody:
//!
//! - **Listeners.** A SIP or MSRP listener is an exact `address:port` of the topology.
//! - **SIP from an ephemeral port** (the side that opened a SIP-over-TCP connection): a
//!   request names its sender in its top Via sent-by (RFC 3261 §18.1.1 — the address the
//!   sender listens on; port 5060 when absent); that connection's ephemeral end then belongs
//!   to the same party for every other message on it. Only on that connection: a kernel hands
//!   the same ephemeral port to another socket towards another peer once it is free. A response comes from whoever received the
//!   request it answers (same Call-ID, CSeq and branch, the reverse 4-tuple, RFC 3261
//!   §18.2.2) and goes to whoever sent it.
//! - **MSRP from an ephemeral port** (either end of a link that is not a listener): the first URI of the
//!   From-Path of what the opener sent, or of the To-Path of what it received, is the
//!   opener's own session URI (RFC 4975 §7.1, §8.1), which the opener advertised in the
//!   `a=path` of its SDP; the party that advertised it first (a copy by another party comes
//!   later) and whose address has the same IP is the opener. A connection that carried no
//!   MSRP belongs to the one SIP peer of its target with that IP, else to the one entity of
//!   the topology with that IP; otherwise it stays unattributed (a note says so).
//! - **Through a SIP/IP core** (a proxy such as Kamailio, RFC 3261 §16): a request's
//!   originator is its bottom Via, its target the next entry of its route set or its
//!   Request-URI; the proxy's own 100 Trying is nobody's. The two wire records of one message
//!   (entity → proxy, proxy → entity) are one message of the model.

use super::{first_line, link_between, Observation, Party, SipObs};
use crate::codec::msrp::MsrpUri;
use crate::codec::sip::SipMessage;
use crate::topology::Topology;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

/// The two wire records of a message relayed by the SIP/IP core are at most this far apart:
/// a transaction's lifetime (64·T1, RFC 3261 §17.1.1.2). The pairing is by identity (Call-ID,
/// CSeq, start line, the originator's branch, sender and receiver) and in order, so copies
/// of retransmissions pair one by one; the window only keeps a copy from pairing with a
/// message of another transaction. A loaded core took 255 ms once, past the 250 ms this
/// was, and its copies read as second INVITEs of their senders (`tests/core.rs`).
const CORE_PAIR_WINDOW: Duration = Duration::from_secs(32);

/// The exact listener addresses of a topology.
pub struct Listeners {
    by_addr: HashMap<SocketAddr, Party>,
    sip: BTreeSet<SocketAddr>,
}

impl Listeners {
    pub fn new(topo: &Topology) -> Listeners {
        let mut by_addr = HashMap::new();
        let mut sip = BTreeSet::new();
        for i in topo.instances() {
            let p = Party {
                name: i.name.clone(),
                role: i.role,
            };
            by_addr.insert(i.sip, p.clone());
            by_addr.entry(i.msrp).or_insert(p);
            sip.insert(i.sip);
        }
        Listeners { by_addr, sip }
    }

    /// The party listening at exactly `addr`.
    pub fn at(&self, addr: SocketAddr) -> Option<Party> {
        self.by_addr.get(&addr).cloned()
    }

    pub fn is_sip(&self, addr: SocketAddr) -> bool {
        self.sip.contains(&addr)
    }
}

/// The party whose SIP or MSRP listener is exactly `addr`.
pub fn listener(topology: &Topology, addr: SocketAddr) -> Option<Party> {
    topology
        .instances()
        .into_iter()
        .find(|i| i.sip == addr || i.msrp == addr)
        .map(|i| Party {
            name: i.name,
            role: i.role,
        })
}

/// Which addresses are the SIP/IP core's. On an address of its own (`127.250.0.1`), every
/// port of that address (its TCP connections leave from ephemeral ports). On an address it
/// shares with the entities (IPv6 loopback `::1`, where everything lives on one address), its
/// listening address exactly, and an ephemeral port of that address talking SIP to an
/// entity's listener (with a core, entities never send SIP to one another directly: that is
/// the core's connection to the entity).
#[derive(Clone, Copy)]
pub struct CoreAddr<'a> {
    core: Option<SocketAddr>,
    shared: bool,
    ls: &'a Listeners,
}

impl<'a> CoreAddr<'a> {
    pub fn new(topo: &Topology, ls: &'a Listeners) -> CoreAddr<'a> {
        let core = topo.core;
        let shared = core.is_some_and(|c| ls.by_addr.keys().any(|a| a.ip() == c.ip()));
        CoreAddr { core, shared, ls }
    }

    /// Whether `a`, talking to `other` (when known), is the core.
    pub fn is(&self, a: SocketAddr, other: Option<SocketAddr>) -> bool {
        let Some(c) = self.core else { return false };
        if a == c {
            return true;
        }
        if a.ip() != c.ip() {
            return false;
        }
        if !self.shared {
            return true;
        }
        self.ls.at(a).is_none() && other.is_some_and(|o| o != c && self.ls.is_sip(o))
    }
}

/// Names the parties of every SIP message and connection of `obs` (see the module docs).
pub fn attribute(obs: &mut Observation, topo: &Topology) {
    let ls = Listeners::new(topo);
    let core = topo.core;
    let ca = CoreAddr::new(topo, &ls);
    let is_core = |a: SocketAddr, other: SocketAddr| ca.is(a, Some(other));

    // Ephemeral addresses learnt from what was sent from them.
    // (ephemeral end, other end) of a connection → the party at the ephemeral end.
    let mut eph: HashMap<(SocketAddr, SocketAddr), Party> = HashMap::new();
    let via_party = |m: &SipMessage| {
        m.via_sent_by()
            .and_then(|(_, v)| sent_by_addr(&v))
            .and_then(|a| ls.at(a))
    };

    // 1. By address, and requests from ephemeral ports by their top Via (a request an
    // entity sends to the core carries its own Via on top too).
    for s in obs.sip.iter_mut() {
        if is_core(s.from, s.to) {
            continue;
        }
        let sender = ls.at(s.from).or_else(|| {
            let p = s
                .msg
                .as_ref()
                .filter(|m| m.is_request())
                .and_then(via_party)?;
            eph.entry((s.from, s.to)).or_insert_with(|| p.clone());
            Some(p)
        });
        if !is_core(s.to, s.from) {
            s.sender = sender;
            s.receiver = ls.at(s.to);
        }
    }
    // 2. Ephemeral ends by what they sent, then responses by the request they answer.
    for i in 0..obs.sip.len() {
        let s = &obs.sip[i];
        if is_core(s.from, s.to) || is_core(s.to, s.from) {
            continue;
        }
        let mut sender = s
            .sender
            .clone()
            .or_else(|| eph.get(&(s.from, s.to)).cloned());
        let mut receiver = s
            .receiver
            .clone()
            .or_else(|| eph.get(&(s.to, s.from)).cloned());
        if let Some(m) = s.msg.as_ref().filter(|m| !m.is_request()) {
            if sender.is_none() || receiver.is_none() {
                if let Some(req) = answered(&obs.sip[..i], m, s.from, s.to) {
                    sender = sender.or_else(|| req.receiver.clone());
                    receiver = receiver.or_else(|| req.sender.clone());
                }
            }
        }
        let s = &mut obs.sip[i];
        s.sender = sender;
        s.receiver = receiver;
    }
    // 3. Through the core.
    if core.is_some() {
        for i in 0..obs.sip.len() {
            let s = &obs.sip[i];
            if !(is_core(s.from, s.to) || is_core(s.to, s.from)) {
                continue;
            }
            let (snd, rcv) = core_parties(ca, &ls, &eph, s.from, s.to, &s.raw, &obs.sip[..i]);
            let s = &mut obs.sip[i];
            s.sender = snd;
            s.receiver = rcv;
        }
        pair_core_records(obs, ca);
    }
    for s in obs.sip.iter_mut() {
        s.link = match (&s.sender, &s.receiver) {
            (Some(a), Some(b)) => link_between(a.role, b.role),
            _ => None,
        };
    }

    // Connections.
    let paths = advertised_paths(&obs.sip);
    let mut sip_peers: HashMap<String, Vec<Party>> = HashMap::new();
    for s in &obs.sip {
        if let (Some(a), Some(b)) = (&s.sender, &s.receiver) {
            for (x, y) in [(a, b), (b, a)] {
                let v = sip_peers.entry(x.name.clone()).or_default();
                if !v.contains(y) {
                    v.push(y.clone());
                }
            }
        }
    }
    for c in obs.conns.iter_mut() {
        // A guessed opener that is a listener talking to a non-listener was the target.
        if !c.open_seen && ls.at(c.opener).is_some() && ls.at(c.target).is_none() {
            std::mem::swap(&mut c.opener, &mut c.target);
            c.dirs.swap(0, 1);
        }
        c.to_sip_port = ls.is_sip(c.target) || core == Some(c.target);
        // Each end by its exact listener, else by what the wire proves (see the module docs).
        let end = |e: usize, peer: &Option<Party>| -> Option<Party> {
            let (me, other) = if e == 0 {
                (c.opener, c.target)
            } else {
                (c.target, c.opener)
            };
            if let Some(p) = ls.at(me).or_else(|| eph.get(&(me, other)).cloned()) {
                return Some(p);
            }
            // The first URI of the From-Path it sent, or of the To-Path it received.
            let uri = c.dirs[e]
                .msgs
                .iter()
                .find_map(|m| first_uri(m.head.from_path()))
                .or_else(|| {
                    c.dirs[1 - e]
                        .msgs
                        .iter()
                        .find_map(|m| first_uri(m.head.to_path()))
                });
            let by_path = uri.and_then(|uri| {
                paths
                    .iter()
                    .find(|(u, p)| u.matches(&uri) && ip_of(topo, p) == Some(me.ip()))
                    .map(|(_, p)| p.clone())
            });
            let one = |mut it: std::vec::IntoIter<Party>| match (it.next(), it.next()) {
                (Some(p), None) => Some(p),
                _ => None,
            };
            let by_peer = || {
                let peer = peer.as_ref()?;
                let cands: Vec<Party> = sip_peers
                    .get(&peer.name)?
                    .iter()
                    .filter(|p| ip_of(topo, p) == Some(me.ip()))
                    .cloned()
                    .collect();
                one(cands.into_iter())
            };
            let by_ip = || {
                let cands: Vec<Party> = topo
                    .instances()
                    .into_iter()
                    .filter(|i| i.sip.ip() == me.ip() || i.msrp.ip() == me.ip())
                    .map(|i| Party {
                        name: i.name,
                        role: i.role,
                    })
                    .collect();
                one(cands.into_iter())
            };
            by_path.or_else(by_peer).or_else(by_ip)
        };
        let target = ls.at(c.target);
        c.opener_party = end(0, &target);
        c.target_party = target.or_else(|| end(1, &c.opener_party));
        c.link = match (&c.opener_party, &c.target_party) {
            (Some(a), Some(b)) => link_between(a.role, b.role),
            _ => None,
        };
    }

    // What stayed unknown.
    let mut unknown = BTreeSet::new();
    for s in &obs.sip {
        for (a, o, p) in [(s.from, s.to, &s.sender), (s.to, s.from, &s.receiver)] {
            if p.is_none() && !is_core(a, o) {
                unknown.insert(a);
            }
        }
    }
    for c in &obs.conns {
        for (a, o, p) in [
            (c.opener, c.target, &c.opener_party),
            (c.target, c.opener, &c.target_party),
        ] {
            if p.is_none() && !is_core(a, o) {
                unknown.insert(a);
            }
        }
    }
    for a in unknown {
        obs.notes.push(format!(
            "{a}: no listener of the topology, and nothing on the wire names its entity; its \
             traffic is unattributed"
        ));
    }
}

/// `host:port` of a Via sent-by (port 5060 when absent; IPv6 in brackets).
fn sent_by_addr(v: &str) -> Option<SocketAddr> {
    let v = v.trim();
    v.parse::<SocketAddr>().ok().or_else(|| {
        let host = v.trim_start_matches('[').trim_end_matches(']');
        host.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 5060))
    })
}

/// The request `resp` answers: the latest one before it with the same Call-ID, CSeq and top
/// Via branch that travelled the reverse way.
fn answered<'a>(
    earlier: &'a [SipObs],
    resp: &SipMessage,
    from: SocketAddr,
    to: SocketAddr,
) -> Option<&'a SipObs> {
    let (call, cseq, branch) = (resp.call_id(), resp.cseq(), resp.via_branch());
    earlier.iter().rev().find(|r| {
        r.from == to
            && r.to == from
            && r.msg.as_ref().is_some_and(|m| {
                m.is_request()
                    && m.call_id() == call
                    && m.cseq() == cseq
                    && m.via_branch() == branch
            })
    })
}

/// Every `a=path` session URI a party advertised (the last URI of its path: its own), first
/// advertiser first.
fn advertised_paths(sip: &[SipObs]) -> Vec<(MsrpUri, Party)> {
    let mut out: Vec<(MsrpUri, Party)> = Vec::new();
    for s in sip {
        let (Some(p), Some(path)) = (&s.sender, s.sdp.as_ref().and_then(|d| d.path())) else {
            continue;
        };
        if let Some(u) = path.last() {
            if !out.iter().any(|(v, q)| v.matches(u) && q == p) {
                out.push((u.clone(), p.clone()));
            }
        }
    }
    out
}

fn first_uri(h: Result<Vec<MsrpUri>, impl std::fmt::Debug>) -> Option<MsrpUri> {
    h.ok().and_then(|v| v.into_iter().next())
}

fn ip_of(topo: &Topology, p: &Party) -> Option<std::net::IpAddr> {
    topo.instance(&p.name).map(|i| i.msrp.ip())
}

/// The entities at the two ends of a SIP message that one end sent to, or received from,
/// the SIP/IP core: a request's originator is its bottom Via, its target the next entry of
/// its route set (or its Request-URI in a dialog); a response goes to the bottom Via and
/// comes from whoever received the request it answers. A 100 Trying from the core is the
/// proxy's own (RFC 3261 §16.2): no entity sent it.
fn core_parties(
    ca: CoreAddr<'_>,
    ls: &Listeners,
    eph: &HashMap<(SocketAddr, SocketAddr), Party>,
    from: SocketAddr,
    to: SocketAddr,
    raw: &Bytes,
    earlier: &[SipObs],
) -> (Option<Party>, Option<Party>) {
    let is_core = |a: SocketAddr, other: SocketAddr| ca.is(a, Some(other));
    // `a`, talking to `other`.
    let at = |a: SocketAddr, other: SocketAddr| ls.at(a).or_else(|| eph.get(&(a, other)).cloned());
    let Ok(msg) = SipMessage::parse(raw) else {
        return (at(from, to), at(to, from));
    };
    let origin = || {
        msg.origin_via()
            .and_then(|(sent_by, _)| sent_by_addr(&sent_by))
            .and_then(|a| ls.at(a))
    };
    let uri_party = |u: &str| {
        crate::entity::sip_uri_addr(u)
            .filter(|a| !ca.is(*a, None))
            .and_then(|a| ls.at(a))
    };
    if msg.is_request() {
        let sender = if is_core(from, to) {
            origin()
        } else {
            at(from, to)
        };
        let receiver = if is_core(to, from) {
            let routed = msg.uri_list("Route").iter().find_map(|r| uri_party(r));
            routed.or_else(|| msg.request_uri().and_then(uri_party))
        } else {
            at(to, from)
        };
        return (sender, receiver);
    }
    let receiver = if is_core(to, from) {
        origin()
    } else {
        at(to, from)
    };
    let sender = if !is_core(from, to) {
        at(from, to)
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

/// Merges the two wire records of each message the core relayed (entity → core, then core →
/// entity) into the first; the merged message counts `recorded == 2`.
fn pair_core_records(obs: &mut Observation, ca: CoreAddr<'_>) {
    if ca.core.is_none() {
        return;
    }
    let mut drop = vec![false; obs.sip.len()];
    for i in 0..obs.sip.len() {
        if drop[i] || !ca.is(obs.sip[i].to, Some(obs.sip[i].from)) {
            continue;
        }
        let Some(id) = relay_identity(&obs.sip[i].raw) else {
            continue;
        };
        let (t, snd, rcv) = (
            obs.sip[i].t,
            obs.sip[i].sender.clone(),
            obs.sip[i].receiver.clone(),
        );
        let pair = (i + 1..obs.sip.len()).find(|&j| {
            let s = &obs.sip[j];
            !drop[j]
                && ca.is(s.from, Some(s.to))
                && s.t.saturating_sub(t) <= CORE_PAIR_WINDOW
                && s.sender == snd
                && s.receiver == rcv
                && relay_identity(&s.raw).as_ref() == Some(&id)
        });
        if let Some(j) = pair {
            drop[j] = true;
            obs.sip[i].recorded = 2;
        }
    }
    if drop.iter().any(|d| *d) {
        let mut k = 0;
        obs.sip.retain(|_| {
            k += 1;
            !drop[k - 1]
        });
        for (i, s) in obs.sip.iter_mut().enumerate() {
            s.index = i;
        }
    }
}
