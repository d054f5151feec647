//! The check catalogue (`shared/docs/checks.md`) over an [`Observation`].
//!
//! This module owns the rules: which messages, links and timings the SUT owes in a case
//! (from the topology, the variant and the split), and the verdict of each check with its
//! evidence. It reads only the observation and the case context, never a node's state.
//!
//! Conventions every check follows:
//! - **Subjects**: a check judges only what the SUT's roles send or do. In the self-check
//!   split (`ctx.sut` empty) the harness stands in for the SUT and every role is judged.
//! - **Visibility**: a hop between two SUT roles is never recorded; an item that needs it is
//!   not observable. A check with no observable item is [`Verdict::NotObservable`].
//! - **Inconc**: an item the SUT never reached (an earlier message is missing, which another
//!   check reports) is [`Verdict::Inconc`]; a check is `fail` if any item fails, else `inconc`
//!   if any item is, else `pass`.
//! - **Evidence**: one line per finding, naming the message (start line), the instances with
//!   their addresses, and the time in ms since the run started.

use crate::codec::cpim::Cpim;
use crate::codec::msrp::{ByteRange, MsrpUri, Scheme};
use crate::codec::sdp::{Media, Sdp, Setup};
use crate::config::{AckTiming, GroupKind, Link, Opener, SetupMode, Solution, Trigger, XAnswer};
use crate::engine::{CaseContext, CheckResult, Verdict};
use crate::model::{
    member_of, ms, ConnObs, ContentObs, LegObs, MsrpObs, Observation, Party, SdpObs,
};
use crate::topology::{strip_uri, Role, Topology};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Every check id, in catalogue order (the order [`run_checks`] returns them in).
pub const CHECK_IDS: [&str; 26] = [
    "SDP-MEDIA",
    "SDP-C",
    "SDP-PORT",
    "SDP-PATH",
    "SDP-OWN",
    "SDP-UNIQUE",
    "SDP-ACCEPT",
    "SDP-SETUP",
    "SDP-PLACE",
    "LINK-DIR",
    "LINK-TARGET",
    "LINK-TRIGGER",
    "LINK-BIND",
    "LINK-REUSE",
    "SIG-SEQ",
    "SIG-CF-ANSWER",
    "SIG-ACK",
    "SIG-FANOUT",
    "SIG-B2BUA",
    "SIG-TEARDOWN",
    "SIG-ROUTE",
    "MEDIA-DELIVERY",
    "MEDIA-PATHS",
    "MEDIA-FRAMING",
    "MEDIA-RESPONSE",
    "MEDIA-CPIM",
];

/// The reference a check cites (figure steps, claims, protocol-notes rules).
pub fn reference(id: &str) -> &'static str {
    match id {
        "SDP-MEDIA" => "C3, C11",
        "SDP-C" => "C2, C9, D7",
        "SDP-PORT" => "C9, D6, S2",
        "SDP-PATH" => "C4, E1–E3",
        "SDP-OWN" => "A2, C5, L5",
        "SDP-UNIQUE" => "C5, E8",
        "SDP-ACCEPT" => "C6",
        "SDP-SETUP" => "D1–D5, D13",
        "SDP-PLACE" => "claims of the flow (S101–S112, S201–S204, S301–S304)",
        "LINK-DIR" => "figures; D13",
        "LINK-TARGET" => "D8, D9",
        "LINK-TRIGGER" => "S106, S110, S201–S204, S302–S303",
        "LINK-BIND" => "I2, I3",
        "LINK-REUSE" => "K1, claims 9/13/14",
        "SIG-SEQ" => "figures",
        "SIG-CF-ANSWER" => "S103, FIG 1 vs 2",
        "SIG-ACK" => "FIG 5 vs 6",
        "SIG-FANOUT" => "S103, M1–M5",
        "SIG-B2BUA" => "A1, B1–B3",
        "SIG-TEARDOWN" => "P1–P3",
        "SIG-ROUTE" => "RFC 3261 §§12.1.1, 12.2.1.1, 16.12",
        "MEDIA-DELIVERY" => "J5–J7",
        "MEDIA-PATHS" => "A3, A4, H2, I1",
        "MEDIA-FRAMING" => "F1–F10, G3, H2",
        "MEDIA-RESPONSE" => "H1, H2",
        "MEDIA-CPIM" => "O1–O4",
        _ => "",
    }
}

/// Runs every check of the catalogue; one result per id of [`CHECK_IDS`], in that order.
pub fn run_checks(ctx: &CaseContext, obs: &Observation) -> Vec<CheckResult> {
    let a = Analysis::new(ctx, obs);
    vec![
        finish("SDP-MEDIA", sdp_media(&a)),
        finish("SDP-C", sdp_c(&a)),
        finish("SDP-PORT", sdp_port(&a)),
        finish("SDP-PATH", sdp_path(&a)),
        finish("SDP-OWN", sdp_own(&a)),
        finish("SDP-UNIQUE", sdp_unique(&a)),
        finish("SDP-ACCEPT", sdp_accept(&a)),
        finish("SDP-SETUP", sdp_setup(&a)),
        finish("SDP-PLACE", sdp_place(&a)),
        finish("LINK-DIR", link_dir(&a)),
        finish("LINK-TARGET", link_target(&a)),
        finish("LINK-TRIGGER", link_trigger(&a)),
        finish("LINK-BIND", link_bind(&a)),
        finish("LINK-REUSE", link_reuse(&a)),
        finish("SIG-SEQ", sig_seq(&a)),
        finish("SIG-CF-ANSWER", sig_cf_answer(&a)),
        finish("SIG-ACK", sig_ack(&a)),
        finish("SIG-FANOUT", sig_fanout(&a)),
        finish("SIG-B2BUA", sig_b2bua(&a)),
        finish("SIG-TEARDOWN", sig_teardown(&a)),
        finish("SIG-ROUTE", sig_route(&a)),
        finish("MEDIA-DELIVERY", media_delivery(&a)),
        finish("MEDIA-PATHS", media_paths(&a)),
        finish("MEDIA-FRAMING", media_framing(&a)),
        finish("MEDIA-RESPONSE", media_response(&a)),
        finish("MEDIA-CPIM", media_cpim(&a)),
    ]
}

// ---------------------------------------------------------------------------- verdicts

/// The outcome of one thing a check looked at.
enum Item {
    Pass(String),
    Fail(String),
    Inconc(String),
    NotObs(String),
}

/// Most evidence lines kept per verdict class.
const MAX_LINES: usize = 40;
/// Most pass lines kept (a pass needs only a summary).
const MAX_PASS_LINES: usize = 6;

fn finish(id: &str, items: Vec<Item>) -> CheckResult {
    let mut fail = Vec::new();
    let mut inconc = Vec::new();
    let mut pass = Vec::new();
    let mut notobs = Vec::new();
    for it in items {
        let (v, s) = match it {
            Item::Fail(s) => (&mut fail, s),
            Item::Inconc(s) => (&mut inconc, s),
            Item::Pass(s) => (&mut pass, s),
            Item::NotObs(s) => (&mut notobs, s),
        };
        if !v.contains(&s) {
            v.push(s);
        }
    }
    let cap = |mut v: Vec<String>, max: usize, prefix: &str| -> Vec<String> {
        let n = v.len();
        v.truncate(max);
        let mut v: Vec<String> = v.into_iter().map(|s| format!("{prefix}{s}")).collect();
        if n > max {
            v.push(format!("… and {} more", n - max));
        }
        v
    };
    let (verdict, evidence) = if !fail.is_empty() {
        let mut e = cap(fail, MAX_LINES, "");
        e.extend(cap(inconc, 5, "inconc: "));
        (Verdict::Fail, e)
    } else if !inconc.is_empty() {
        (Verdict::Inconc, cap(inconc, MAX_LINES, ""))
    } else if !pass.is_empty() {
        (Verdict::Pass, cap(pass, MAX_PASS_LINES, ""))
    } else {
        if notobs.is_empty() {
            notobs.push("nothing in this split to check".into());
        }
        (Verdict::NotObservable, cap(notobs, 5, ""))
    };
    CheckResult {
        id: id.to_string(),
        reference: reference(id).to_string(),
        verdict,
        evidence,
    }
}

// ---------------------------------------------------------------------------- the case model

/// A hop of the chain the case should have: an SDP offer/answer, a dialog and a link.
#[derive(Debug, Clone)]
struct ExpLeg {
    link: Link,
    uac: Party,
    uas: Party,
    /// The member an L3/L4 leg serves.
    member: Option<String>,
    /// The matching dialog of the observation.
    obs: Option<usize>,
}

/// The case as the checks see it: the expected legs matched to what was observed.
struct Analysis<'a> {
    ctx: &'a CaseContext,
    obs: &'a Observation,
    topo: &'a Topology,
    /// The harness judges itself (no SUT role).
    self_check: bool,
    legs: Vec<ExpLeg>,
    members: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Invite,
    Ok,
    Ack,
    Bye,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::Invite => "INVITE",
            Slot::Ok => "200 OK",
            Slot::Ack => "ACK",
            Slot::Bye => "BYE",
        }
    }
}

/// The instance `name` (with the role it is expected to have, should the topology lack it).
fn party(topo: &Topology, name: &str, role: Role) -> Party {
    topo.instance(name)
        .map(|i| Party {
            name: i.name,
            role: i.role,
        })
        .unwrap_or(Party {
            name: name.to_string(),
            role,
        })
}

impl<'a> Analysis<'a> {
    fn new(ctx: &'a CaseContext, obs: &'a Observation) -> Analysis<'a> {
        let topo: &Topology = &ctx.topology;
        let mut a = Analysis {
            ctx,
            obs,
            topo,
            self_check: ctx.sut.is_empty(),
            legs: Vec::new(),
            members: Vec::new(),
        };
        a.members = a.expected_members();
        let ca = party(topo, "client-a", Role::ClientA);
        let pfa = party(topo, "pf-a", Role::PfA);
        let x = party(topo, "x", Role::X);
        a.legs.push(ExpLeg {
            link: Link::L1,
            uac: ca,
            uas: pfa.clone(),
            member: None,
            obs: None,
        });
        a.legs.push(ExpLeg {
            link: Link::L2,
            uac: pfa,
            uas: x.clone(),
            member: None,
            obs: None,
        });
        for m in a.members.clone() {
            let Some(pfb) = topo.pf_b_serving(&m) else {
                continue;
            };
            let pfb = party(topo, &pfb.name, Role::PfB);
            a.legs.push(ExpLeg {
                link: Link::L3,
                uac: x.clone(),
                uas: pfb.clone(),
                member: Some(m.clone()),
                obs: None,
            });
            a.legs.push(ExpLeg {
                link: Link::L4,
                uac: pfb,
                uas: party(topo, &m, Role::ClientB),
                member: Some(m),
                obs: None,
            });
        }
        for el in a.legs.iter_mut() {
            el.obs = obs
                .legs
                .iter()
                .find(|l| {
                    l.uac.name == el.uac.name
                        && l.uas.name == el.uas.name
                        && (el.member.is_none() || member_of(topo, l) == el.member)
                })
                .map(|l| l.index);
        }
        a
    }

    /// The group: the topology's members, or the ad-hoc list the INVITEs carried.
    fn expected_members(&self) -> Vec<String> {
        let all: Vec<String> = self.topo.members.iter().map(|m| m.name.clone()).collect();
        if self.ctx.variant.group != GroupKind::Adhoc {
            return all;
        }
        for role in [Role::PfA, Role::ClientA] {
            let list = self.obs.sip.iter().find_map(|s| {
                let m = s.msg.as_ref()?;
                if s.is_request("INVITE") && s.sender.as_ref()?.role == role {
                    m.resource_list().ok().flatten()
                } else {
                    None
                }
            });
            if let Some(list) = list {
                let names: Vec<String> = list
                    .iter()
                    .filter_map(|u| self.topo.member_by_uri(u).map(|m| m.name.clone()))
                    .collect();
                return names;
            }
        }
        all
    }

    fn subject(&self, p: &Party) -> bool {
        self.self_check || self.ctx.is_sut(p.role)
    }

    fn subject_opt(&self, p: &Option<Party>) -> bool {
        p.as_ref().map(|p| self.subject(p)).unwrap_or(false)
    }

    /// A hop the harness records: at least one end is the harness's (always in self-check).
    fn visible(&self, el: &ExpLeg) -> bool {
        self.self_check || !(self.ctx.is_sut(el.uac.role) && self.ctx.is_sut(el.uas.role))
    }

    fn sleg(&self, el: &ExpLeg) -> Option<&'a LegObs> {
        el.obs.and_then(|i| self.obs.legs.get(i))
    }

    fn label(&self, el: &ExpLeg) -> String {
        match &el.member {
            Some(m) => format!("{:?} {}→{} ({m})", el.link, el.uac, el.uas),
            None => format!("{:?} {}→{}", el.link, el.uac, el.uas),
        }
    }

    /// The expected leg upstream of `i`'s uac (the leg whose INVITE made it send its own).
    fn up_of(&self, i: usize) -> Option<usize> {
        let el = &self.legs[i];
        let want = match el.link {
            Link::L1 => return None,
            Link::L2 => Link::L1,
            Link::L3 => Link::L2,
            Link::L4 => Link::L3,
        };
        self.legs.iter().position(|u| {
            u.link == want
                && u.uas.name == el.uac.name
                && (want != Link::L3 || u.member == el.member)
        })
    }

    fn downs_of(&self, i: usize) -> Vec<usize> {
        (0..self.legs.len())
            .filter(|&d| self.up_of(d) == Some(i))
            .collect()
    }

    fn slot_msg(&self, i: usize, slot: Slot) -> Option<usize> {
        let l = self.sleg(&self.legs[i])?;
        match slot {
            Slot::Invite => Some(l.invite),
            Slot::Ok => l.ok,
            Slot::Ack => l.ack,
            Slot::Bye => l
                .bye
                .filter(|&b| self.obs.sip.get(b).and_then(|s| s.sender.as_ref()) == Some(&l.uac)),
        }
    }

    fn slot_sender(&self, i: usize, slot: Slot) -> &Party {
        let el = &self.legs[i];
        match slot {
            Slot::Ok => &el.uas,
            _ => &el.uac,
        }
    }

    /// What must have happened before `slot` on leg `i` (the figure's order).
    fn cause(&self, i: usize, slot: Slot) -> Option<(usize, Slot)> {
        let el = &self.legs[i];
        match slot {
            Slot::Invite => self.up_of(i).map(|u| (u, Slot::Invite)),
            Slot::Ok => match el.uas.role {
                Role::X | Role::ClientB => Some((i, Slot::Invite)),
                _ => self.downs_of(i).first().map(|&d| (d, Slot::Ok)),
            },
            // A middle entity that waits for the upstream ACK owes its own only after it.
            Slot::Ack
                if matches!(el.uac.role, Role::PfA | Role::X | Role::PfB)
                    && self.ctx.variant.ack_timing() == AckTiming::AfterUpstreamAck =>
            {
                self.up_of(i)
                    .map(|u| (u, Slot::Ack))
                    .or(Some((i, Slot::Ok)))
            }
            Slot::Ack => Some((i, Slot::Ok)),
            Slot::Bye => match self.up_of(i) {
                Some(u) => Some((u, Slot::Bye)),
                None => Some((i, Slot::Ack)),
            },
        }
    }

    /// The nearest cause of `(i, slot)` on a visible leg.
    fn observable_cause(&self, i: usize, slot: Slot) -> Option<(usize, Slot)> {
        let mut c = self.cause(i, slot);
        let mut guard = 0;
        while let Some((ci, cs)) = c {
            if self.visible(&self.legs[ci]) || guard > 16 {
                break;
            }
            c = self.cause(ci, cs);
            guard += 1;
        }
        c
    }

    /// MSRP links and attempts at one (not SIP-over-TCP connections).
    fn links(&self) -> impl Iterator<Item = &'a ConnObs> {
        self.obs.conns.iter().filter(|c| c.is_link())
    }

    fn t(&self, sip: usize) -> Duration {
        self.obs.sip.get(sip).map(|s| s.t).unwrap_or_default()
    }

    /// `12.3ms `SIP/2.0 200 OK` pf-a (127.0.0.12:5060) → client-a (127.0.0.11:5060)`.
    fn sip_ev(&self, i: usize) -> String {
        match self.obs.sip.get(i) {
            Some(s) => format!(
                "{} `{}` {} → {}",
                ms(s.t),
                s.start_line,
                who(&s.sender, s.from),
                who(&s.receiver, s.to)
            ),
            None => "(no message)".into(),
        }
    }

    fn msrp_ev(&self, c: &ConnObs, d: usize, m: &MsrpObs) -> String {
        let dir = &c.dirs[d];
        let (snd, rcv) = if d == 0 {
            (&c.opener_party, &c.target_party)
        } else {
            (&c.target_party, &c.opener_party)
        };
        format!(
            "{} `{}` {} → {}",
            ms(m.t),
            m.start_line(),
            who(snd, dir.from),
            who(rcv, dir.to)
        )
    }

    fn conn_ev(&self, c: &ConnObs) -> String {
        format!(
            "{} TCP {} → {}",
            ms(c.opened_at),
            who(&c.opener_party, c.opener),
            who(&c.target_party, c.target)
        )
    }

    /// The instance's MSRP listener, and every IP it was seen using for MSRP.
    fn msrp_addrs(&self, name: &str) -> (Option<SocketAddr>, BTreeSet<IpAddr>) {
        let listener = self.topo.instance(name).map(|i| i.msrp);
        let mut ips: BTreeSet<IpAddr> = listener.map(|a| a.ip()).into_iter().collect();
        for c in self.links() {
            if c.opener_party.as_ref().map(|p| p.name.as_str()) == Some(name) {
                ips.insert(c.opener.ip());
            }
            if c.target_party.as_ref().map(|p| p.name.as_str()) == Some(name) {
                ips.insert(c.target.ip());
            }
        }
        (listener, ips)
    }

    /// Who opens the link of `el` in this variant.
    fn figure_opener<'b>(&self, el: &'b ExpLeg) -> &'b Party {
        match self.ctx.variant.opener(el.link) {
            Opener::Offerer => &el.uac,
            Opener::Answerer => &el.uas,
        }
    }

    fn figure_text(&self) -> String {
        let v = &self.ctx.variant;
        if v.solution() == Solution::ClientsOpen {
            format!("figure {} (l23-opener {:?})", v.figure, v.l23_opener)
        } else {
            format!("figure {}", v.figure)
        }
    }

    /// Why nothing of a kind was observable, for a not-observable verdict.
    fn hidden(&self, what: &str) -> Item {
        Item::NotObs(format!(
            "{what}: none in this split ({})",
            if self.self_check {
                "self-check".to_string()
            } else {
                let r: Vec<&str> = self.ctx.sut.iter().map(|r| r.as_str()).collect();
                format!(
                    "SUT plays {}; hops between SUT roles are not recorded",
                    r.join(", ")
                )
            }
        ))
    }

    /// Connections carrying leg `l` opened by `name` (or, without messages naming a
    /// session, every connection from `name` to the leg's peer).
    fn conns_for_leg(&self, l: &LegObs, name: &str) -> Vec<&'a ConnObs> {
        let peer = l.peer_of(name).map(|p| p.name.clone()).unwrap_or_default();
        self.links()
            .filter(|c| {
                c.opener_party.as_ref().map(|p| p.name.as_str()) == Some(name)
                    && !c.to_sip_port
                    && (c.legs.contains(&l.index)
                        || (c.legs.is_empty()
                            && c.target_party.as_ref().map(|p| p.name.as_str())
                                == Some(peer.as_str())))
            })
            .collect()
    }

    /// When `name` made leg `l`'s link available: the connection's opening, or (a reused
    /// connection) its first request naming the leg.
    fn link_open_time(&self, l: &LegObs, name: &str) -> Option<(Duration, &'a ConnObs)> {
        let c = self.conns_for_leg(l, name).into_iter().next()?;
        let first_leg = c.legs.first().copied();
        if first_leg.is_none() || first_leg == Some(l.index) {
            return Some((c.opened_at, c));
        }
        let d = c.dir_from(name)?;
        let t = c.dirs[d]
            .msgs
            .iter()
            .find(|m| m.is_request() && m.leg == Some(l.index))
            .map(|m| m.t)
            .unwrap_or(c.opened_at);
        Some((t, c))
    }

    /// The first SEND `to` received for leg `leg` (any connection).
    fn first_send_to(&self, to: &str, leg: usize) -> Option<Duration> {
        let mut best: Option<Duration> = None;
        for c in self.links() {
            for d in 0..2 {
                let receiver = c.sender(1 - d);
                if receiver.map(|p| p.name.as_str()) != Some(to) {
                    continue;
                }
                for m in &c.dirs[d].msgs {
                    if m.head.method() == Some("SEND") && m.leg == Some(leg) {
                        best = Some(best.map_or(m.t, |b| b.min(m.t)));
                    }
                }
            }
        }
        best
    }

    /// When `sender`'s content on leg `l` was delivered: the response to its final chunk
    /// (or the final chunk itself when unanswered).
    fn delivered_on(&self, l: &LegObs, sender: &str) -> Option<Duration> {
        let mut best: Option<Duration> = None;
        for c in self.links() {
            let Some(d) = c.dir_from(sender) else {
                continue;
            };
            if !c.legs.contains(&l.index) {
                continue;
            }
            for m in &c.dirs[d].msgs {
                if m.head.method() == Some("SEND")
                    && m.head.has_body
                    && m.leg == Some(l.index)
                    && m.flag == Some(crate::codec::msrp::Flag::End)
                {
                    let resp = c.dirs[1 - d]
                        .msgs
                        .iter()
                        .find(|r| !r.is_request() && r.head.tid == m.head.tid)
                        .map(|r| r.t)
                        .or(m.t_end);
                    if let Some(t) = resp {
                        best = Some(best.map_or(t, |b| b.max(t)));
                    }
                }
            }
        }
        best
    }
}

/// The first 16 characters of a digest, for evidence (char-safe: a digest read from a
/// SUT's files may be anything).
fn short(s: &str) -> &str {
    s.char_indices().nth(16).map(|(i, _)| &s[..i]).unwrap_or(s)
}

fn who(p: &Option<Party>, a: SocketAddr) -> String {
    match p {
        Some(p) => format!("{} ({a})", p.name),
        None => format!("{a} (unknown)"),
    }
}

fn opener_role(ctx: &CaseContext, link: Link) -> Role {
    let (offerer, answerer) = match link {
        Link::L1 => (Role::ClientA, Role::PfA),
        Link::L2 => (Role::PfA, Role::X),
        Link::L3 => (Role::X, Role::PfB),
        Link::L4 => (Role::PfB, Role::ClientB),
    };
    match ctx.variant.opener(link) {
        Opener::Offerer => offerer,
        Opener::Answerer => answerer,
    }
}

// ---------------------------------------------------------------------------- SDP

/// One SDP the SUT owed: its INVITE's offer or its 200's answer on a visible hop.
struct SdpItem<'a> {
    leg: &'a LegObs,
    sender: Party,
    sip: usize,
    offer: bool,
}

impl<'a> Analysis<'a> {
    /// The SDP-carrying messages the SUT sent, and items for those it never sent.
    fn sdp_items(&self) -> (Vec<SdpItem<'a>>, Vec<Item>) {
        let mut items = Vec::new();
        let mut other = Vec::new();
        for el in &self.legs {
            if !self.visible(el) {
                continue;
            }
            for (p, offer) in [(&el.uac, true), (&el.uas, false)] {
                if !self.subject(p) {
                    continue;
                }
                match (self.sleg(el), offer) {
                    (None, true) => other.push(Item::Inconc(format!(
                        "{p} never sent its INVITE on {}",
                        self.label(el)
                    ))),
                    (None, false) => other.push(Item::Inconc(format!(
                        "no INVITE on {}: {p} had nothing to answer",
                        self.label(el)
                    ))),
                    (Some(l), true) => items.push(SdpItem {
                        leg: l,
                        sender: p.clone(),
                        sip: l.invite,
                        offer,
                    }),
                    (Some(l), false) => match l.ok {
                        Some(ok) => items.push(SdpItem {
                            leg: l,
                            sender: p.clone(),
                            sip: ok,
                            offer,
                        }),
                        None => other.push(Item::Inconc(format!(
                            "{p} never answered 200 on {}",
                            self.label(el)
                        ))),
                    },
                }
            }
        }
        if items.is_empty() && other.is_empty() {
            other.push(self.hidden("SDP offers/answers sent by the SUT"));
        }
        (items, other)
    }

    fn sdp(&self, sip: usize) -> Option<&'a SdpObs> {
        self.obs.sip.get(sip).and_then(|s| s.sdp.as_ref())
    }
}

/// The generic SDP of an item with its m=message section, or the item explaining why not.
fn media_of<'s>(a: &'s Analysis, it: &SdpItem, line: &str) -> Result<(&'s Sdp, &'s Media), Item> {
    let ev = a.sip_ev(it.sip);
    let Some(sdp) = a.sdp(it.sip) else {
        return Err(Item::Inconc(format!(
            "{ev}: carries no SDP (see SDP-PLACE)"
        )));
    };
    let s = match &sdp.sdp {
        Ok(s) => s,
        Err(e) if !line.is_empty() && e.excerpt.starts_with(line) => {
            return Err(Item::Fail(format!("{ev}: {e}")))
        }
        Err(e) => {
            return Err(Item::Inconc(format!(
                "{ev}: SDP does not parse (see SDP-MEDIA): {e}"
            )))
        }
    };
    match s.media.iter().find(|m| m.media == "message") {
        Some(m) => Ok((s, m)),
        None => Err(Item::Inconc(format!(
            "{ev}: no m=message section (see SDP-MEDIA)"
        ))),
    }
}

fn mline(m: &Media) -> String {
    format!(
        "m={} {} {} {}",
        m.media,
        m.port,
        m.proto,
        m.formats.join(" ")
    )
}

fn sdp_media(a: &Analysis) -> Vec<Item> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let Some(sdp) = a.sdp(it.sip) else {
            out.push(Item::Inconc(format!(
                "{ev}: carries no SDP (see SDP-PLACE)"
            )));
            continue;
        };
        let s = match &sdp.sdp {
            Ok(s) => s,
            Err(e) => {
                out.push(Item::Fail(format!("{ev}: SDP does not parse: {e}")));
                continue;
            }
        };
        let mut bad = Vec::new();
        let msgs: Vec<&Media> = s.media.iter().filter(|m| m.media == "message").collect();
        if msgs.len() != 1 {
            bad.push(format!(
                "{} m=message lines (exactly one needed)",
                msgs.len()
            ));
        }
        if let Some(m) = msgs.first() {
            if m.proto != "TCP/MSRP" && m.proto != "TCP/TLS/MSRP" {
                bad.push(format!(
                    "`{}`: proto must be TCP/MSRP or TCP/TLS/MSRP",
                    mline(m)
                ));
            }
            if m.formats != ["*"] {
                bad.push(format!("`{}`: the format list must be `*`", mline(m)));
            }
            if !it.offer && m.port == 0 {
                bad.push(format!("`{}`: port 0 rejects the stream", mline(m)));
            }
        }
        if !it.offer {
            if let Some(Ok(offer)) = a.sdp(it.leg.invite).map(|o| &o.sdp) {
                let kinds = |s: &Sdp| s.media.iter().map(|m| m.media.clone()).collect::<Vec<_>>();
                if kinds(offer) != kinds(s) {
                    bad.push(format!(
                        "answer m-lines {:?} differ from the offer's {:?} (C11)",
                        kinds(s),
                        kinds(offer)
                    ));
                }
            }
        }
        if bad.is_empty() {
            out.push(Item::Pass(format!("{ev}: one m=message TCP/MSRP *")));
        } else {
            out.push(Item::Fail(format!("{ev}: {}", bad.join("; "))));
        }
    }
    out
}

fn sdp_c(a: &Analysis) -> Vec<Item> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (s, m) = match media_of(a, &it, "c=") {
            Ok(x) => x,
            Err(i) => {
                out.push(i);
                continue;
            }
        };
        let Some(c) = m.connection.as_ref().or(s.connection.as_ref()) else {
            out.push(Item::Fail(format!(
                "{ev}: no c= line at session or media level (C2)"
            )));
            continue;
        };
        let line = format!("c={} {} {}", c.net_type, c.addr_type, c.address);
        let Some(ip) = c.ip() else {
            out.push(Item::Fail(format!("{ev}: `{line}`: not an IP address")));
            continue;
        };
        if (c.addr_type == "IP4") != ip.is_ipv4() {
            out.push(Item::Fail(format!(
                "{ev}: `{line}`: address type does not match the address"
            )));
            continue;
        }
        let (listener, ips) = a.msrp_addrs(&it.sender.name);
        if ips.contains(&ip) {
            out.push(Item::Pass(format!("{ev}: `{line}` is {}'s", it.sender)));
        } else {
            out.push(Item::Fail(format!(
                "{ev}: `{line}` is not an address {} uses for MSRP (it listens at {})",
                it.sender,
                listener
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "?".into())
            )));
        }
    }
    out
}

fn setup_of(s: &Sdp, m: &Media) -> Option<String> {
    m.attribute("setup")
        .or_else(|| s.attribute("setup"))
        .map(|v| v.trim().to_string())
}

fn sdp_port(a: &Analysis) -> Vec<Item> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (s, m) = match media_of(a, &it, "m=") {
            Ok(x) => x,
            Err(i) => {
                out.push(i);
                continue;
            }
        };
        let Some(path) = m
            .attribute("path")
            .and_then(|v| MsrpUri::parse_list(v).ok())
        else {
            out.push(Item::Inconc(format!(
                "{ev}: no readable a=path (see SDP-PATH)"
            )));
            continue;
        };
        let Some(own) = path.last() else { continue };
        let active = setup_of(s, m).as_deref() == Some("active");
        if m.port == own.port {
            out.push(Item::Pass(format!(
                "{ev}: m= port {} = a=path port",
                m.port
            )));
        } else if active && m.port == 9 {
            out.push(Item::Pass(format!(
                "{ev}: m= port 9 with a=setup:active (D6, S2)"
            )));
        } else {
            out.push(Item::Fail(format!(
                "{ev}: `{}` but a=path {own} has port {} (C9)",
                mline(m),
                own.port
            )));
        }
    }
    out
}

fn sdp_path(a: &Analysis) -> Vec<Item> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (_, m) = match media_of(a, &it, "a=path") {
            Ok(x) => x,
            Err(i) => {
                out.push(i);
                continue;
            }
        };
        let Some(v) = m.attribute("path") else {
            out.push(Item::Fail(format!("{ev}: no a=path (C4)")));
            continue;
        };
        let list = match MsrpUri::parse_list(v) {
            Ok(l) => l,
            Err(e) => {
                out.push(Item::Fail(format!("{ev}: `a=path:{v}`: {}", e.msg)));
                continue;
            }
        };
        let mut bad = Vec::new();
        for u in &list {
            if !u.transport.eq_ignore_ascii_case("tcp") {
                bad.push(format!(
                    "{u}: transport `;{}` (need `;tcp`, E2)",
                    u.transport
                ));
            }
            let tls = m.proto == "TCP/TLS/MSRP";
            if (u.scheme == Scheme::Msrps) != tls {
                bad.push(format!("{u}: scheme does not match `{}`", m.proto));
            }
        }
        if bad.is_empty() {
            out.push(Item::Pass(format!("{ev}: `a=path:{v}`")));
        } else {
            out.push(Item::Fail(format!("{ev}: {}", bad.join("; "))));
        }
    }
    out
}

fn sdp_own(a: &Analysis) -> Vec<Item> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (s, m) = match media_of(a, &it, "") {
            Ok(x) => x,
            Err(i) => {
                out.push(i);
                continue;
            }
        };
        let Some(path) = m
            .attribute("path")
            .and_then(|v| MsrpUri::parse_list(v).ok())
        else {
            out.push(Item::Inconc(format!(
                "{ev}: no readable a=path (see SDP-PATH)"
            )));
            continue;
        };
        let mut bad = Vec::new();
        // Copied from an SDP the sender received (A2, L5)?
        for u in &path {
            let copied = a.obs.sip.iter().find(|r| {
                r.receiver.as_ref() == Some(&it.sender)
                    && r.sdp.as_ref().and_then(|d| d.path()).is_some_and(|p| {
                        p.iter().any(|v| {
                            v.matches(u) || (v.session_id.is_some() && v.session_id == u.session_id)
                        })
                    })
            });
            if let Some(r) = copied {
                bad.push(format!(
                    "a=path {u} repeats a URI or session-id {} received in {}",
                    it.sender,
                    a.sip_ev(r.index)
                ));
            }
        }
        if let Some(own) = path.last() {
            let (listener, ips) = a.msrp_addrs(&it.sender.name);
            let active = setup_of(s, m).as_deref() == Some("active");
            match own.host.parse::<IpAddr>() {
                Ok(ip) if ips.contains(&ip) => {}
                _ => bad.push(format!(
                    "own URI {own} is not {}'s address ({})",
                    it.sender,
                    listener.map(|l| l.ip().to_string()).unwrap_or_default()
                )),
            }
            let port_ok =
                listener.map(|l| l.port() == own.port).unwrap_or(true) || (active && own.port == 9);
            if !port_ok {
                bad.push(format!(
                    "own URI {own} is not {}'s MSRP port ({})",
                    it.sender,
                    listener.map(|l| l.port()).unwrap_or_default()
                ));
            }
            if own.session_id.as_deref().unwrap_or("").is_empty() {
                bad.push(format!("own URI {own} has no session-id"));
            }
        }
        if bad.is_empty() {
            out.push(Item::Pass(format!("{ev}: a=path is {}'s own", it.sender)));
        } else {
            out.push(Item::Fail(format!("{ev}: {}", bad.join("; "))));
        }
    }
    out
}

/// Rough randomness of an identifier: its length times the bits of the smallest usual
/// alphabet it fits in.
fn entropy_bits(s: &str) -> f64 {
    let b = s.as_bytes();
    let alphabet: f64 = if b.iter().all(u8::is_ascii_digit) {
        10.0
    } else if b
        .iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        || b.iter()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
    {
        16.0
    } else if b
        .iter()
        .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        || b.iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        36.0
    } else if b.iter().all(u8::is_ascii_alphanumeric) {
        62.0
    } else {
        64.0
    };
    b.len() as f64 * alphabet.log2()
}

fn sdp_unique(a: &Analysis) -> Vec<Item> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let Some(own) = a
            .sdp(it.sip)
            .and_then(|d| d.path())
            .and_then(|p| p.last().cloned())
        else {
            out.push(Item::Inconc(format!(
                "{ev}: no readable a=path (see SDP-PATH)"
            )));
            continue;
        };
        let Some(sid) = own.session_id.clone().filter(|s| !s.is_empty()) else {
            out.push(Item::Fail(format!("{ev}: {own} has no session-id")));
            continue;
        };
        let mut bad = Vec::new();
        // Any other SDP (another hop, or the other side of this one) with the same id.
        let clash = a.obs.sip.iter().find(|s| {
            let same_origin = s.leg == Some(it.leg.index) && s.sender.as_ref() == Some(&it.sender);
            !same_origin
                && s.sdp.as_ref().and_then(|d| d.path()).is_some_and(|p| {
                    p.iter()
                        .any(|u| u.session_id.as_deref() == Some(sid.as_str()))
                })
        });
        if let Some(c) = clash {
            bad.push(format!(
                "session-id `{sid}` also appears in {}",
                a.sip_ev(c.index)
            ));
        }
        let bits = entropy_bits(&sid);
        if bits < 64.0 {
            bad.push(format!(
                "session-id `{sid}` holds about {bits:.0} bits (≥ 64 needed, E8)"
            ));
        }
        if bad.is_empty() {
            out.push(Item::Pass(format!("{ev}: session-id `{sid}` unique")));
        } else {
            out.push(Item::Fail(format!("{ev}: {}", bad.join("; "))));
        }
    }
    out
}

fn sdp_accept(a: &Analysis) -> Vec<Item> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (s, m) = match media_of(a, &it, "a=accept-types") {
            Ok(x) => x,
            Err(i) => {
                out.push(i);
                continue;
            }
        };
        let val = m
            .attributes
            .iter()
            .chain(&s.attributes)
            .find(|(n, _)| n == "accept-types")
            .map(|(_, v)| v.clone().unwrap_or_default());
        let Some(val) = val else {
            out.push(Item::Fail(format!("{ev}: no a=accept-types (C6)")));
            continue;
        };
        let ok = val.split_ascii_whitespace().any(|t| {
            let t = t.to_ascii_lowercase();
            t == "message/cpim" || t == "message/*" || t == "*"
        });
        if ok {
            out.push(Item::Pass(format!("{ev}: `a=accept-types:{val}`")));
        } else if val.trim().is_empty() {
            out.push(Item::Fail(format!("{ev}: `a=accept-types:` is empty (C6)")));
        } else {
            out.push(Item::Fail(format!(
                "{ev}: `a=accept-types:{val}` does not admit message/cpim"
            )));
        }
    }
    out
}

/// Who connects for an (offer, answer) pair of `a=setup` values (RFC 4145 §4.1, RFC 4975 §8.1).
fn rfc4145_opener(offer: Option<Setup>, answer: Option<Setup>) -> Result<Opener, &'static str> {
    let norm = |s: Option<Setup>| if s == Some(Setup::Holdconn) { None } else { s };
    match (norm(offer), norm(answer)) {
        (None | Some(Setup::Active), None | Some(Setup::Passive)) => Ok(Opener::Offerer),
        (Some(Setup::Actpass), None | Some(Setup::Passive)) => Ok(Opener::Offerer),
        (Some(Setup::Actpass), Some(Setup::Active)) => Ok(Opener::Answerer),
        (Some(Setup::Active), Some(Setup::Active)) => Err("active/active: nobody listens"),
        (None, Some(Setup::Active)) => {
            Err("an answer to an implicitly active offer must be passive")
        }
        (Some(Setup::Passive), Some(Setup::Active)) => {
            Err("a passive offer is off-spec (RFC 6135 §4.2.2)")
        }
        (Some(Setup::Passive), _) => Err("passive offer and passive answer: nobody connects"),
        (_, Some(Setup::Actpass)) => Err("actpass is not allowed in an answer"),
        _ => Err("not a valid pair"),
    }
}

fn sdp_setup(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    let sdp_mode = a.ctx.variant.setup == SetupMode::Sdp;
    // (value as written, parsed) of a message's a=setup; Err(item) when unreadable.
    let setup = |sip: usize| -> Option<(Option<String>, Option<Setup>)> {
        let d = a.sdp(sip)?;
        let s = d.sdp.as_ref().ok()?;
        let m = s.media.iter().find(|m| m.media == "message")?;
        let v = setup_of(s, m);
        let p = v.as_deref().and_then(Setup::from_token);
        Some((v, p))
    };
    let (items, other) = a.sdp_items();
    out.extend(other);
    for it in items {
        let ev = a.sip_ev(it.sip);
        let Some((val, own)) = setup(it.sip) else {
            out.push(Item::Inconc(format!(
                "{ev}: no readable SDP (see SDP-MEDIA, SDP-PLACE)"
            )));
            continue;
        };
        let l = it.leg;
        let Some(link) = l.link else { continue };
        let want = a.ctx.variant.opener(link);
        let want_party = match want {
            Opener::Offerer => &l.uac,
            Opener::Answerer => &l.uas,
        };
        if let (Some(v), None) = (&val, own) {
            out.push(Item::Fail(format!(
                "{ev}: `a=setup:{v}` is not active/passive/actpass/holdconn"
            )));
            continue;
        }
        let mut bad = Vec::new();
        let shown = |v: &Option<String>| {
            v.as_ref()
                .map(|v| format!("a=setup:{v}"))
                .unwrap_or_else(|| "no a=setup".into())
        };
        if sdp_mode {
            match (it.offer, own) {
                (_, None) => bad.push(format!(
                    "{} in setup: sdp mode (RFC 6135 requires an explicit value, D3)",
                    shown(&val)
                )),
                (true, Some(Setup::Passive | Setup::Holdconn)) => {
                    bad.push(format!("offer says {} (D3, D4)", shown(&val)))
                }
                (true, Some(s)) if want == Opener::Answerer && s != Setup::Actpass => {
                    bad.push(format!(
                        "offer says {}: only actpass lets the answerer {} open {link:?} (D13)",
                        shown(&val),
                        l.uas
                    ))
                }
                (false, Some(Setup::Actpass | Setup::Holdconn)) => {
                    bad.push(format!("answer says {} (D4)", shown(&val)))
                }
                _ => {}
            }
        } else if let Some(s) = own {
            let me_opener = want_party.name == it.sender.name;
            let agrees = match (s, it.offer) {
                (Setup::Actpass, true) => true,
                (Setup::Active, _) => me_opener,
                (Setup::Passive, _) => !me_opener,
                _ => false,
            };
            if !agrees {
                bad.push(format!(
                    "{} disagrees with the preset: {} opens {link:?}",
                    shown(&val),
                    want_party
                ));
            }
        }
        // The pair, when the other side's SDP is at hand.
        let other = if it.offer { l.ok } else { Some(l.invite) };
        if let Some((oval, oset)) = other.and_then(setup) {
            let (offer, answer) = if it.offer { (own, oset) } else { (oset, own) };
            let (ov, av) = if it.offer {
                (shown(&val), shown(&oval))
            } else {
                (shown(&oval), shown(&val))
            };
            if sdp_mode || val.is_some() {
                match rfc4145_opener(offer, answer) {
                    Err(why) => bad.push(format!("offer {ov}, answer {av}: {why} (D5)")),
                    Ok(who) if who != want => {
                        let opener = if who == Opener::Offerer {
                            &l.uac
                        } else {
                            &l.uas
                        };
                        bad.push(format!(
                            "offer {ov}, answer {av} make {opener} open {link:?}; {} gives it to {want_party}",
                            a.figure_text()
                        ))
                    }
                    Ok(_) => {}
                }
            }
        }
        if bad.is_empty() {
            out.push(Item::Pass(format!("{ev}: {}", shown(&val))));
        } else {
            out.push(Item::Fail(format!("{ev}: {}", bad.join("; "))));
        }
    }
    out
}

fn sdp_place(a: &Analysis) -> Vec<Item> {
    let (items, mut out) = a.sdp_items();
    let sol = a.ctx.variant.solution();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let has = a.sdp(it.sip).is_some_and(|d| match &d.sdp {
            Ok(s) => s.media.iter().any(|m| m.media == "message"),
            Err(_) => memchr::memmem::find(&d.text, b"m=message").is_some(),
        });
        let why = match (sol, it.offer) {
            (Solution::SenderOpens, false) => {
                "solution 1: the INVITE sender connects with the 200 OK's parameters"
            }
            (Solution::ReceiverOpens, true) => {
                "solution 2: the INVITE receiver connects with the INVITE's parameters"
            }
            (_, true) => "the INVITE carries the offer in this flow",
            (_, false) => "the 200 OK carries the answer in this flow",
        };
        if has {
            out.push(Item::Pass(format!(
                "{ev}: carries {}'s MSRP parameters",
                it.sender
            )));
        } else {
            out.push(Item::Fail(format!(
                "{ev}: carries no MSRP parameters (no SDP with m=message); {why}"
            )));
        }
    }
    out
}

// ---------------------------------------------------------------------------- links

fn link_dir(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    for c in a.links() {
        let Some(op) = &c.opener_party else { continue };
        if !a.subject(op) || !c.open_seen {
            continue;
        }
        match c.link {
            None => out.push(Item::Fail(format!(
                "{}: opened by {op} towards an entity on no link of the chain",
                a.conn_ev(c)
            ))),
            Some(link) => {
                let want = opener_role(a.ctx, link);
                if op.role == want {
                    out.push(Item::Pass(format!(
                        "{}: {link:?} opened by {op}",
                        a.conn_ev(c)
                    )));
                } else {
                    out.push(Item::Fail(format!(
                        "{}: {op} opened {link:?}; {} gives {link:?} to {want}",
                        a.conn_ev(c),
                        a.figure_text()
                    )));
                }
            }
        }
    }
    for el in &a.legs {
        if !a.visible(el) {
            continue;
        }
        let s = a.figure_opener(el);
        if !a.subject(s) {
            continue;
        }
        let p = if s.name == el.uac.name {
            &el.uas
        } else {
            &el.uac
        };
        let between = |o: &Party, t: &Party| {
            a.links()
                .find(|c| c.opener_party.as_ref() == Some(o) && c.target_party.as_ref() == Some(t))
        };
        if between(s, p).is_some() {
            continue;
        }
        if let Some(c) = between(p, s) {
            out.push(Item::Fail(format!(
                "{}: {} was opened by {p}; {} gives it to {s}, which never opened it",
                a.conn_ev(c),
                a.label(el),
                a.figure_text()
            )));
        } else if let Some(ack) = a.sleg(el).and_then(|l| l.ack) {
            out.push(Item::Fail(format!(
                "{s} never opened {} although the dialog was confirmed by {}",
                a.label(el),
                a.sip_ev(ack)
            )));
        } else {
            out.push(Item::Inconc(format!(
                "{}: the dialog was never confirmed, so {s} had no link to open",
                a.label(el)
            )));
        }
    }
    if out.is_empty() {
        out.push(a.hidden("links the SUT opens or should open"));
    }
    out
}

fn link_target(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    for c in a.links() {
        let Some(s) = &c.opener_party else { continue };
        if !a.subject(s) || !c.open_seen {
            continue;
        }
        let legs: Vec<&LegObs> = c
            .legs
            .iter()
            .filter_map(|&i| a.obs.legs.get(i))
            .filter(|l| l.peer_of(&s.name).is_some())
            .collect();
        if legs.is_empty() {
            let Some(t) = &c.target_party else {
                out.push(Item::Fail(format!(
                    "{}: {s} connected to an address no entity advertised",
                    a.conn_ev(c)
                )));
                continue;
            };
            let advertised: Vec<SocketAddr> = a
                .obs
                .legs_between(&s.name, &t.name)
                .filter_map(|l| l.path_of(&t.name).first().and_then(|u| u.socket_addr()))
                .collect();
            if advertised.contains(&c.target) {
                out.push(Item::Pass(format!("{}: advertised by {t}", a.conn_ev(c))));
            } else if advertised.is_empty() {
                out.push(Item::Inconc(format!(
                    "{}: no a=path of {t} towards {s} was observed",
                    a.conn_ev(c)
                )));
            } else {
                out.push(Item::Fail(format!(
                    "{}{}: {t} advertised {} (leftmost a=path, D9)",
                    a.conn_ev(c),
                    if c.to_sip_port {
                        " (a SIP port; no SIP went over it)"
                    } else {
                        ""
                    },
                    advertised
                        .iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            continue;
        }
        for l in legs {
            let Some(p) = l.peer_of(&s.name) else {
                continue;
            };
            let Some(u) = l.path_of(&p.name).first() else {
                out.push(Item::Inconc(format!(
                    "{}: {p} advertised no readable a=path on its dialog",
                    a.conn_ev(c)
                )));
                continue;
            };
            if u.socket_addr() == Some(c.target) {
                out.push(Item::Pass(format!("{}: {p} advertised {u}", a.conn_ev(c))));
            } else {
                let msg = if l.uac.name == p.name {
                    Some(l.invite)
                } else {
                    l.ok
                };
                out.push(Item::Fail(format!(
                    "{}: {p} advertised {u} (leftmost a=path in {}, D9)",
                    a.conn_ev(c),
                    msg.map(|m| a.sip_ev(m)).unwrap_or_default()
                )));
            }
        }
    }
    // The SUT must reach the advertised address on every hop the figure gives it.
    for el in &a.legs {
        if !a.visible(el) {
            continue;
        }
        let s = a.figure_opener(el);
        if !a.subject(s) {
            continue;
        }
        let Some(l) = a.sleg(el) else { continue };
        let p = if s.name == el.uac.name {
            &el.uas
        } else {
            &el.uac
        };
        let Some(adv) = l.path_of(&p.name).first().and_then(|u| u.socket_addr()) else {
            continue;
        };
        let reached = a
            .links()
            .any(|c| c.opener_party.as_ref() == Some(s) && c.target == adv);
        if reached {
            continue;
        }
        if let Some(ack) = l.ack {
            out.push(Item::Fail(format!(
                "{s} never connected to {adv}, which {p} advertised on {} (dialog confirmed {})",
                a.label(el),
                a.sip_ev(ack)
            )));
        } else {
            out.push(Item::Inconc(format!(
                "{}: the dialog was never confirmed",
                a.label(el)
            )));
        }
    }
    if out.is_empty() {
        out.push(a.hidden("connections the SUT opens"));
    }
    out
}

fn link_trigger(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    let window = a.ctx.trigger_window;
    for (i, el) in a.legs.iter().enumerate() {
        if !a.visible(el) {
            continue;
        }
        let s = a.figure_opener(el);
        if !a.subject(s) {
            continue;
        }
        let label = a.label(el);
        let Some(l) = a.sleg(el) else {
            out.push(Item::Inconc(format!("{label}: no dialog")));
            continue;
        };
        // The trigger: (what, when) and the earliest allowed opening.
        let (what, earliest): (String, Option<Duration>) = if s.name == el.uac.name {
            let Some(ok) = l.ok else {
                out.push(Item::Inconc(format!("{label}: no 200 OK reached {s}")));
                continue;
            };
            let t_ok = a.t(ok);
            let trig = match s.role {
                Role::ClientA => None,
                Role::X => Some(a.ctx.variant.x_trigger()),
                _ => Some(a.ctx.variant.trigger),
            };
            match trig {
                None | Some(Trigger::On200) => (format!("the 200 OK {}", a.sip_ev(ok)), Some(t_ok)),
                Some(Trigger::OnAck) => {
                    let Some(u) = a.up_of(i) else { continue };
                    if !a.visible(&a.legs[u]) {
                        out.push(Item::NotObs(format!(
                            "{label}: {s}'s trigger (the upstream ACK) went between SUT roles"
                        )));
                        continue;
                    }
                    match a.sleg(&a.legs[u]).and_then(|ul| ul.ack) {
                        Some(ack) => (
                            format!("the upstream ACK {}", a.sip_ev(ack)),
                            Some(t_ok.max(a.t(ack))),
                        ),
                        None => ("the upstream ACK (never sent)".into(), None),
                    }
                }
                Some(Trigger::OnSend) => {
                    let Some(u) = a.up_of(i) else { continue };
                    if !a.visible(&a.legs[u]) {
                        out.push(Item::NotObs(format!(
                            "{label}: {s}'s trigger (the first upstream SEND) went between SUT roles"
                        )));
                        continue;
                    }
                    match a
                        .sleg(&a.legs[u])
                        .and_then(|ul| a.first_send_to(&s.name, ul.index))
                    {
                        Some(t) => (
                            format!("the first upstream SEND at {}", ms(t)),
                            Some(t_ok.max(t)),
                        ),
                        None => ("the first upstream SEND (never sent)".into(), None),
                    }
                }
            }
        } else {
            match l.ack {
                Some(ack) => (format!("the ACK {}", a.sip_ev(ack)), Some(a.t(ack))),
                None => ("the ACK of its dialog (never sent)".into(), None),
            }
        };
        let Some((t_open, c)) = a.link_open_time(l, &s.name) else {
            match earliest {
                // Watched long enough after the trigger: the opening is late.
                Some(e) if a.obs.end > e.saturating_add(window) => out.push(Item::Fail(format!(
                    "{s} did not open {label}'s link within {} of its trigger ({what}); watched until {}",
                    ms(window),
                    ms(a.obs.end)
                ))),
                _ => out.push(Item::Inconc(format!(
                    "{label}: {s} never opened its link (see LINK-DIR)"
                ))),
            }
            continue;
        };
        let opened = format!(
            "{s} made {label}'s link available at {} ({})",
            ms(t_open),
            a.conn_ev(c)
        );
        match earliest {
            None => out.push(Item::Fail(format!("{opened} without its trigger: {what}"))),
            Some(e) if t_open < e => out.push(Item::Fail(format!(
                "{opened}, {} before its trigger: {what}",
                ms(e - t_open)
            ))),
            Some(e) if t_open > e.saturating_add(window) => out.push(Item::Fail(format!(
                "{opened}, {} after its trigger ({what}); allowed {}",
                ms(t_open - e),
                ms(window)
            ))),
            Some(e) => out.push(Item::Pass(format!(
                "{opened}, {} after its trigger ({what})",
                ms(t_open - e)
            ))),
        }
    }
    if out.is_empty() {
        out.push(a.hidden("links the SUT opens"));
    }
    out
}

/// Whether two URI lists are equal by RFC 4975 §6.1.
fn same_uris(a: &[MsrpUri], b: &[MsrpUri]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.matches(y))
}

fn uris(v: &[MsrpUri]) -> String {
    v.iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn link_bind(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    let window = a.ctx.trigger_window;
    for c in a.links() {
        // The active side: its first request on a connection it opened binds it (I3).
        let active = c
            .opener_party
            .as_ref()
            .filter(|s| a.subject(s) && c.open_seen);
        // A link misdirected to a SIP port is LINK-TARGET's; nothing there can bind.
        if let Some(s) = active.filter(|_| !c.to_sip_port) {
            let first = c.dirs[0].msgs.iter().find(|m| m.is_request());
            match first {
                None if a.obs.end > c.opened_at.saturating_add(window) => out.push(Item::Fail(format!(
                    "{}: {s} sent no request on the connection it opened (watched until {}; I3: at once)",
                    a.conn_ev(c),
                    ms(a.obs.end)
                ))),
                None => out.push(Item::Inconc(format!(
                    "{}: the recording ends before a binding SEND was due",
                    a.conn_ev(c)
                ))),
                Some(m) => {
                    let ev = a.msrp_ev(c, 0, m);
                    let mut bad = Vec::new();
                    if m.t > c.opened_at.saturating_add(window) {
                        bad.push(format!(
                            "{} after the opening (I3: at once; allowed {})",
                            ms(m.t - c.opened_at),
                            ms(window)
                        ));
                    }
                    if m.head.method() != Some("SEND") {
                        bad.push("the first request is not a SEND".into());
                    }
                    match m.leg.and_then(|l| a.obs.legs.get(l)) {
                        None => {
                            bad.push("its To-Path names no session negotiated with the peer".into())
                        }
                        Some(l) => {
                            let peer = l
                                .peer_of(&s.name)
                                .map(|p| p.name.clone())
                                .unwrap_or_default();
                            let to = m.head.to_path().unwrap_or_default();
                            let from = m.head.from_path().unwrap_or_default();
                            if !same_uris(&to, l.path_of(&peer)) {
                                bad.push(format!(
                                    "To-Path `{}` is not {peer}'s a=path `{}`",
                                    uris(&to),
                                    uris(l.path_of(&peer))
                                ));
                            }
                            if !same_uris(&from, l.path_of(&s.name)) {
                                bad.push(format!(
                                    "From-Path `{}` is not {s}'s a=path `{}`",
                                    uris(&from),
                                    uris(l.path_of(&s.name))
                                ));
                            }
                        }
                    }
                    if bad.is_empty() {
                        out.push(Item::Pass(format!("{ev}: binds {}", a.conn_ev(c))));
                    } else {
                        out.push(Item::Fail(format!(
                            "{ev} ({}): {}",
                            a.conn_ev(c),
                            bad.join("; ")
                        )));
                    }
                }
            }
        }
        // The passive side sends no request before the connection is bound (I3).
        if let Some(s) = c.target_party.as_ref().filter(|s| a.subject(s)) {
            let bound_at = c.dirs[0]
                .msgs
                .iter()
                .find(|m| m.is_request())
                .map(|m| m.offset);
            if let Some(m) = c.dirs[1].msgs.iter().find(|m| m.is_request()) {
                let peer_first = c.dirs[0].msgs.iter().find(|m| m.is_request()).map(|m| m.t);
                if bound_at.is_none() || peer_first.is_some_and(|t| m.t < t) {
                    out.push(Item::Fail(format!(
                        "{}: {s} sent a request on a connection its peer opened before the peer bound it",
                        a.msrp_ev(c, 1, m)
                    )));
                }
            }
        }
    }
    if out.is_empty() {
        out.push(a.hidden("connections the SUT opens"));
    }
    out
}

fn link_reuse(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    let reuse = a.ctx.variant.reuse;
    // Per opener: target (host, port, scheme) → the connections carrying each session.
    type Key = (String, String, u16, bool);
    let mut groups: BTreeMap<Key, Vec<(usize, Vec<usize>)>> = BTreeMap::new();
    for l in &a.obs.legs {
        for p in [&l.uac, &l.uas] {
            if !a.subject(p) {
                continue;
            }
            let Some(peer) = l.peer_of(&p.name) else {
                continue;
            };
            let conns: Vec<usize> = l
                .conns
                .iter()
                .copied()
                .filter(|&ci| {
                    a.obs
                        .conns
                        .get(ci)
                        .is_some_and(|c| c.opener_party.as_ref() == Some(p) && c.open_seen)
                })
                .collect();
            if conns.is_empty() {
                continue;
            }
            let Some(u) = l.path_of(&peer.name).first() else {
                continue;
            };
            let key = (
                p.name.clone(),
                u.host.to_ascii_lowercase(),
                u.port,
                u.scheme == Scheme::Msrps,
            );
            groups.entry(key).or_default().push((l.index, conns));
        }
    }
    for ((who, host, port, _), sessions) in groups {
        if sessions.len() < 2 {
            continue;
        }
        let all: BTreeSet<usize> = sessions
            .iter()
            .flat_map(|(_, c)| c.iter().copied())
            .collect();
        let names: Vec<String> = sessions
            .iter()
            .map(|(l, _)| {
                a.obs
                    .legs
                    .get(*l)
                    .and_then(|l| member_of(a.topo, l))
                    .unwrap_or_else(|| format!("dialog {l}"))
            })
            .collect();
        let conn_list: Vec<String> = all
            .iter()
            .filter_map(|&ci| a.obs.conns.get(ci))
            .map(|c| a.conn_ev(c))
            .collect();
        if reuse {
            // K1 reuses an *open* connection: a new one is a fault only while an earlier one
            // towards the same place was still open (closes are recorded by the harness end).
            let mut conns: Vec<&ConnObs> =
                all.iter().filter_map(|&ci| a.obs.conns.get(ci)).collect();
            conns.sort_by_key(|c| c.opened_at);
            let closed_at = |c: &ConnObs| c.dirs.iter().filter_map(|d| d.closed_at).min();
            let mut bad = Vec::new();
            for (k, c) in conns.iter().enumerate() {
                if let Some(open) = conns[..k]
                    .iter()
                    .find(|e| closed_at(e).is_none_or(|t| t > c.opened_at))
                {
                    bad.push(format!(
                        "{} while {} was still open",
                        a.conn_ev(c),
                        a.conn_ev(open)
                    ));
                }
            }
            if bad.is_empty() {
                out.push(Item::Pass(format!(
                    "{who}: sessions {} towards {host}:{port} over {}",
                    names.join(", "),
                    conn_list.join("; ")
                )));
            } else {
                out.push(Item::Fail(format!(
                    "{who}: sessions {} towards {host}:{port} with reuse declared (K1): {}",
                    names.join(", "),
                    bad.join("; ")
                )));
            }
        } else if all.len() == sessions.len() && sessions.iter().all(|(_, c)| c.len() == 1) {
            out.push(Item::Pass(format!(
                "{who}: one connection per session towards {host}:{port}"
            )));
        } else {
            out.push(Item::Fail(format!(
                "{who}: sessions {} towards {host}:{port} share connections without reuse declared: {}",
                names.join(", "),
                conn_list.join("; ")
            )));
        }
    }
    if out.is_empty() {
        out.push(Item::NotObs(
            "no two sessions opened by the SUT towards one host:port were observed".into(),
        ));
    }
    out
}

// ---------------------------------------------------------------------------- signalling

fn sig_seq(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    for (i, el) in a.legs.iter().enumerate() {
        if !a.visible(el) {
            continue;
        }
        let mut slots = Vec::new();
        if a.subject(&el.uac) {
            slots.extend([(Slot::Invite, true), (Slot::Ack, true), (Slot::Bye, false)]);
        }
        if a.subject(&el.uas) {
            slots.push((Slot::Ok, true));
        }
        for (slot, required) in slots {
            let sender = a.slot_sender(i, slot);
            let what = format!("{sender}'s {} on {}", slot.name(), a.label(el));
            let msg = a.slot_msg(i, slot);
            let cause = a.observable_cause(i, slot);
            let cause_msg = cause.and_then(|(ci, cs)| a.slot_msg(ci, cs));
            let cause_what = cause
                .map(|(ci, cs)| format!("{} on {}", cs.name(), a.label(&a.legs[ci])))
                .unwrap_or_default();
            match (msg, cause, cause_msg) {
                (Some(m), Some(_), Some(cm)) if a.t(m) <= a.t(cm) => out.push(Item::Fail(format!(
                    "{} was sent before {cause_what} {} arrived",
                    a.sip_ev(m),
                    a.sip_ev(cm)
                ))),
                (Some(m), _, _) => out.push(Item::Pass(a.sip_ev(m))),
                (None, _, _) if !required => {}
                (None, Some(_), Some(cm)) => out.push(Item::Fail(format!(
                    "{what} was never sent although {cause_what} came: {}",
                    a.sip_ev(cm)
                ))),
                (None, Some(_), None) => out.push(Item::Inconc(format!(
                    "{what}: never sent, but {cause_what} never came either"
                ))),
                (None, None, _) => out.push(Item::Fail(format!("{what} was never sent"))),
            }
        }
    }
    if out.is_empty() {
        out.push(a.hidden("SIP messages the SUT sends"));
    }
    out
}

fn sig_cf_answer(a: &Analysis) -> Vec<Item> {
    let x = party(a.topo, "x", Role::X);
    if !a.subject(&x) {
        return vec![Item::NotObs("x is not played by the SUT".into())];
    }
    let Some(l2) = a.legs.iter().find(|el| el.link == Link::L2) else {
        return vec![];
    };
    if !a.visible(l2) {
        return vec![a.hidden("200-2 (pf-a is the SUT's too)")];
    }
    let l3: Vec<&ExpLeg> = a
        .legs
        .iter()
        .filter(|el| el.link == Link::L3 && a.visible(el))
        .collect();
    if l3.is_empty() {
        return vec![a.hidden("200-3 arriving at x (pf-b is the SUT's too)")];
    }
    let Some(ok2) = a.sleg(l2).and_then(|l| l.ok) else {
        return vec![Item::Inconc("x never sent 200-2 (see SIG-SEQ)".into())];
    };
    let first3 = l3
        .iter()
        .filter_map(|el| a.sleg(el).and_then(|l| l.ok))
        .min_by_key(|&i| a.t(i));
    let fig = a.ctx.variant.figure;
    // Without a pause the first 200-3 may reach x while x is still writing its INVITE3s and
    // 200-2: only a 200-3 that came well after INVITE2 discriminates "at once".
    let inv2 = a.sleg(l2).map(|l| a.t(l.invite));
    let discriminating = |f: usize| match inv2 {
        Some(t2) => a.t(f).saturating_sub(t2) > race_margin(a),
        None => true,
    };
    match (a.ctx.variant.x_answer(), first3) {
        (XAnswer::AtOnce, Some(f)) if a.t(f) < a.t(ok2) && discriminating(f) => {
            vec![Item::Fail(format!(
                "figure {fig}: x must answer at once, but {} came after the first 200-3 {}",
                a.sip_ev(ok2),
                a.sip_ev(f)
            ))]
        }
        (XAnswer::AtOnce, _) => vec![Item::Pass(format!(
            "figure {fig}: {} before any 200-3{}",
            a.sip_ev(ok2),
            first3
                .map(|f| format!(" (first {})", a.sip_ev(f)))
                .unwrap_or_default()
        ))],
        (XAnswer::AfterFirstMember, None) => vec![Item::Fail(format!(
            "figure {fig}: x must wait for a member, but {} came with no 200-3 at all",
            a.sip_ev(ok2)
        ))],
        (XAnswer::AfterFirstMember, Some(f)) if a.t(ok2) < a.t(f) => vec![Item::Fail(format!(
            "figure {fig}: x must wait for the first 200-3, but {} came before {}",
            a.sip_ev(ok2),
            a.sip_ev(f)
        ))],
        (XAnswer::AfterFirstMember, Some(f)) => vec![Item::Pass(format!(
            "figure {fig}: {} after the first 200-3 {}",
            a.sip_ev(ok2),
            a.sip_ev(f)
        ))],
    }
}

/// How far apart two events must be before their order says something about the SUT's
/// intent rather than about scheduling: half the discriminating pause, at least 50 ms.
fn race_margin(a: &Analysis) -> Duration {
    (a.ctx.pause / 2).max(Duration::from_millis(50))
}

fn sig_ack(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    let timing = a.ctx.variant.ack_timing();
    for (i, el) in a.legs.iter().enumerate() {
        let s = &el.uac;
        if !matches!(s.role, Role::PfA | Role::X | Role::PfB) || !a.subject(s) || !a.visible(el) {
            continue;
        }
        let label = a.label(el);
        let Some(l) = a.sleg(el) else {
            out.push(Item::Inconc(format!("{label}: no dialog")));
            continue;
        };
        let Some(ok) = l.ok else {
            out.push(Item::Inconc(format!("{label}: no 200 OK reached {s}")));
            continue;
        };
        let Some(ack) = l.ack else {
            out.push(Item::Fail(format!(
                "{s} never ACKed {} on {label}",
                a.sip_ev(ok)
            )));
            continue;
        };
        let up = a.up_of(i).filter(|&u| a.visible(&a.legs[u]));
        let up_ack = up.and_then(|u| a.sleg(&a.legs[u])).and_then(|ul| ul.ack);
        let (t_ok, t_ack) = (a.t(ok), a.t(ack));
        match (timing, up, up_ack) {
            (_, None, _) => out.push(Item::Pass(format!(
                "{} ACKs {} (the upstream ACK is not observable)",
                a.sip_ev(ack),
                a.sip_ev(ok)
            ))),
            (AckTiming::On200, _, Some(u))
                if a.t(u) > t_ok.saturating_add(race_margin(a)) && t_ack > a.t(u) =>
            {
                out.push(Item::Fail(format!(
                    "ACK timing on-200: {} waited for the upstream ACK {} instead of answering {}",
                    a.sip_ev(ack),
                    a.sip_ev(u),
                    a.sip_ev(ok)
                )))
            }
            (AckTiming::On200, _, _) => out.push(Item::Pass(format!(
                "{} on the 200 {}",
                a.sip_ev(ack),
                a.sip_ev(ok)
            ))),
            (AckTiming::AfterUpstreamAck, _, Some(u)) if t_ack < a.t(u) => {
                out.push(Item::Fail(format!(
                    "ACK timing after-ack: {} came before the upstream ACK {}",
                    a.sip_ev(ack),
                    a.sip_ev(u)
                )))
            }
            (AckTiming::AfterUpstreamAck, _, Some(u)) => out.push(Item::Pass(format!(
                "{} after the upstream ACK {}",
                a.sip_ev(ack),
                a.sip_ev(u)
            ))),
            (AckTiming::AfterUpstreamAck, _, None) => out.push(Item::Fail(format!(
                "ACK timing after-ack: {} although no upstream ACK came",
                a.sip_ev(ack)
            ))),
        }
    }
    if out.is_empty() {
        out.push(a.hidden("downstream ACKs of a SUT middle entity"));
    }
    out
}

fn sig_fanout(a: &Analysis) -> Vec<Item> {
    let x = party(a.topo, "x", Role::X);
    if !a.subject(&x) {
        return vec![Item::NotObs("x is not played by the SUT".into())];
    }
    if !a.self_check && a.ctx.is_sut(Role::PfB) {
        return vec![a.hidden("INVITE3 (pf-b is the SUT's too)")];
    }
    let mut out = Vec::new();
    let l2 = a.legs.iter().find(|el| el.link == Link::L2);
    let mut cause = format!("watched until {}", ms(a.obs.end));
    if let Some(l2) = l2 {
        if a.visible(l2) {
            match a.sleg(l2) {
                None => return vec![Item::Inconc("x never received INVITE2".into())],
                Some(l) => cause = format!("after INVITE2 {}", a.sip_ev(l.invite)),
            }
        }
    }
    let from_x: Vec<&LegObs> = a.obs.legs.iter().filter(|l| l.uac == x).collect();
    for m in &a.members {
        let Some(member) = a.topo.members.iter().find(|mm| &mm.name == m) else {
            continue;
        };
        let mine: Vec<&&LegObs> = from_x
            .iter()
            .filter(|l| strip_uri(&l.request_uri) == strip_uri(&member.uri))
            .collect();
        let serving = a
            .topo
            .pf_b_serving(m)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        match mine.as_slice() {
            [] => out.push(Item::Fail(format!(
                "x sent no INVITE for member {m} ({}) to {serving} ({cause})",
                member.uri
            ))),
            [l] if l.uas.name != serving => out.push(Item::Fail(format!(
                "{}: the INVITE for {m} went to {} but {serving} serves {m}",
                a.sip_ev(l.invite),
                l.uas
            ))),
            [l] => out.push(Item::Pass(a.sip_ev(l.invite))),
            more => out.push(Item::Fail(format!(
                "x sent {} INVITE dialogs for member {m}: {}",
                more.len(),
                more.iter()
                    .map(|l| a.sip_ev(l.invite))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    }
    for l in &from_x {
        let r = strip_uri(&l.request_uri);
        let listed = a.members.iter().any(|m| {
            a.topo
                .members
                .iter()
                .any(|mm| &mm.name == m && strip_uri(&mm.uri) == r)
        });
        if !listed {
            out.push(Item::Fail(format!(
                "{}: {} is not a member of the group",
                a.sip_ev(l.invite),
                l.request_uri
            )));
        }
    }
    if out.is_empty() {
        out.push(Item::NotObs("the group has no members".into()));
    }
    out
}

fn sig_b2bua(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    let mut checked = 0usize;
    for s in &a.obs.sip {
        if !a.subject_opt(&s.sender) {
            continue;
        }
        let ev = a.sip_ev(s.index);
        let Some(m) = &s.msg else {
            out.push(Item::Fail(format!(
                "{ev}: does not parse: {}",
                s.parse_error.clone().unwrap_or_default()
            )));
            continue;
        };
        checked += 1;
        let mut bad = Vec::new();
        match m.via_branch() {
            None => bad.push("no Via branch (B2)".to_string()),
            Some(b) if !b.starts_with("z9hG4bK") => {
                bad.push(format!("Via branch `{b}` does not start with z9hG4bK (B2)"))
            }
            _ => {}
        }
        for h in ["From", "To", "Call-ID", "CSeq"] {
            if m.header(h).is_none() {
                bad.push(format!("no {h} header (B2)"));
            }
        }
        if let Some(method) = m.method() {
            if m.header("Max-Forwards").is_none() {
                bad.push("no Max-Forwards (B2)".into());
            }
            if m.from_tag().is_none() {
                bad.push("From has no tag (B2)".into());
            }
            match m.cseq() {
                None => bad.push("CSeq unreadable".into()),
                Some((_, cm)) if cm != *method => {
                    bad.push(format!("CSeq method {cm} ≠ request method {method}"))
                }
                _ => {}
            }
            if s.is_request("INVITE") && m.header("Contact").is_none() {
                bad.push("INVITE without Contact (B2)".into());
            }
        } else if s.is_response("INVITE", 200..=299) && m.to_tag().is_none() {
            bad.push("2xx without a To tag (B1)".into());
        }
        let cl = m.header("Content-Length").map(str::trim);
        match cl {
            None if s.transport == crate::codec::sip::Transport::Tcp => {
                bad.push("no Content-Length over TCP (B3)".into())
            }
            Some(v) if v.parse::<usize>().ok() != Some(m.body.len()) => bad.push(format!(
                "Content-Length {v} but the body has {} octets (B3)",
                m.body.len()
            )),
            _ => {}
        }
        // In-dialog requests of a dialog the sender started: own CSeq space, new branch.
        if let Some(l) = s.leg.and_then(|i| a.obs.legs.get(i)) {
            let inv = a.obs.sip.get(l.invite).and_then(|i| i.msg.as_ref());
            if s.sender.as_ref() == Some(&l.uac) && s.index != l.invite {
                if let (Some(inv), Some((n, _))) = (inv, m.cseq()) {
                    let inv_n = inv.cseq().map(|(n, _)| n).unwrap_or(0);
                    if s.is_request("ACK") && Some(s.index) == l.ack {
                        if n != inv_n {
                            bad.push(format!("ACK CSeq {n} ≠ INVITE CSeq {inv_n} (B7)"));
                        }
                        if m.via_branch().is_some() && m.via_branch() == inv.via_branch() {
                            bad.push("the ACK of a 2xx reuses the INVITE's branch (B7)".into());
                        }
                    }
                    if s.is_request("BYE") && n <= inv_n {
                        bad.push(format!("BYE CSeq {n} not above the INVITE's {inv_n}"));
                    }
                }
            }
        }
        if !bad.is_empty() {
            out.push(Item::Fail(format!("{ev}: {}", bad.join("; "))));
        }
    }
    // Each leg its own dialog (A1): no two dialogs share a Call-ID, and a B2BUA's tag and
    // branch on its downstream leg are not those of its upstream leg.
    let legs = &a.obs.legs;
    let sut_end = |x: &LegObs| a.subject(&x.uac) || a.subject(&x.uas);
    for (i, l) in legs.iter().enumerate() {
        for m in &legs[i + 1..] {
            if !(sut_end(l) || sut_end(m)) {
                continue;
            }
            if l.call_id == m.call_id {
                out.push(Item::Fail(format!(
                    "Call-ID `{}` of {} is reused by {} (each leg is its own dialog, A1)",
                    l.call_id,
                    a.sip_ev(l.invite),
                    a.sip_ev(m.invite)
                )));
            }
            // The B2BUA between them: the upstream leg's uas and the downstream leg's uac.
            let (up, down) = if l.uas == m.uac {
                (l, m)
            } else if m.uas == l.uac {
                (m, l)
            } else {
                continue;
            };
            let b2bua = &down.uac;
            if !a.subject(b2bua) {
                continue;
            }
            if down.uac_tag.is_some() && (down.uac_tag == up.uac_tag || down.uac_tag == up.uas_tag)
            {
                out.push(Item::Fail(format!(
                    "{b2bua} reuses tag `{}` of its upstream dialog in {}",
                    down.uac_tag.clone().unwrap_or_default(),
                    a.sip_ev(down.invite)
                )));
            }
            if down.branch.is_some() && down.branch == up.branch {
                out.push(Item::Fail(format!(
                    "{b2bua} reuses the upstream Via branch in {}",
                    a.sip_ev(down.invite)
                )));
            }
        }
    }
    if checked > 0 && out.is_empty() {
        out.push(Item::Pass(format!(
            "{checked} SIP messages of the SUT: own dialog per leg, headers valid"
        )));
    }
    if out.is_empty() {
        out.push(a.hidden("SIP messages the SUT sends"));
    }
    out
}

/// Behind a SIP/IP core (`run --core`): every SIP message an entity sends goes to the core;
/// its 2xx to an INVITE echoes the Record-Route the core added; its ACK and BYE carry the
/// dialog's route set (the 2xx's Record-Route, reversed for the UAC) as Route headers.
fn sig_route(a: &Analysis) -> Vec<Item> {
    let Some(core) = a.topo.core else {
        return vec![Item::NotObs(
            "no SIP/IP core in this run (`run --core kamailio` puts one between the entities)"
                .into(),
        )];
    };
    let mut out = Vec::new();
    let mut checked = 0usize;
    for s in &a.obs.sip {
        if !a.subject_opt(&s.sender) {
            continue;
        }
        let Some(m) = &s.msg else { continue };
        let ev = a.sip_ev(s.index);
        checked += 1;
        // Recorded where it was sent (to the core) or where it arrived (from the core).
        let sent_to_core = s.to.ip() == core.ip();
        if !sent_to_core && s.from.ip() != core.ip() {
            out.push(Item::Fail(format!(
                "{ev}: sent straight to {}, bypassing the SIP/IP core at {core}",
                s.to
            )));
            continue;
        }
        let leg = s.leg.and_then(|l| a.obs.legs.get(l));
        let recorded = |i: usize| -> Vec<String> {
            a.obs.sip[i]
                .msg
                .as_ref()
                .map(|m| m.uri_list("Record-Route"))
                .unwrap_or_default()
        };
        if s.is_response("INVITE", 200..=299) && m.uri_list("Record-Route").is_empty() {
            out.push(Item::Fail(format!(
                "{ev}: the 2xx does not echo the Record-Route the core added to the INVITE \
                 (RFC 3261 §12.1.1)"
            )));
            continue;
        }
        // The core consumes its own Route entry, so the route set shows only as sent.
        let in_dialog =
            sent_to_core && (s.is_request("ACK") || s.is_request("BYE")) && m.to_tag().is_some();
        if let (true, Some(leg), Some(sender)) = (in_dialog, leg, &s.sender) {
            let Some(ok) = leg.ok else { continue };
            let mut want = recorded(ok);
            if leg.uac.name == sender.name {
                want.reverse();
            }
            let got = m.uri_list("Route");
            if got != want {
                out.push(Item::Fail(format!(
                    "{ev}: Route {} but the dialog's route set is {} (RFC 3261 §12.2.1.1)",
                    list_or_none(&got),
                    list_or_none(&want)
                )));
            }
        }
    }
    if out.is_empty() {
        out.push(Item::Pass(format!(
            "{checked} SIP messages sent via the core at {core}; ACK and BYE on the recorded route set"
        )));
    }
    out
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.iter()
            .map(|u| format!("<{u}>"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn sig_teardown(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    for (i, el) in a.legs.iter().enumerate() {
        if !a.visible(el) {
            continue;
        }
        let label = a.label(el);
        let l = a.sleg(el);
        // The BYE the uac owes.
        if a.subject(&el.uac) {
            let s = &el.uac;
            match l {
                None => out.push(Item::Inconc(format!("{label}: no dialog"))),
                Some(l) => {
                    let done = a.delivered_on(l, &s.name);
                    let up_bye = a
                        .observable_cause(i, Slot::Bye)
                        .filter(|(ci, cs)| *cs == Slot::Bye && *ci != i)
                        .map(|(ci, _)| (ci, a.slot_msg(ci, Slot::Bye)));
                    match (a.slot_msg(i, Slot::Bye), s.role) {
                        (Some(b), _) if done.is_some_and(|d| a.t(b) < d) => {
                            out.push(Item::Fail(format!(
                                "{} came before the content was acknowledged on {label} at {}",
                                a.sip_ev(b),
                                ms(done.unwrap_or_default())
                            )))
                        }
                        (Some(b), _) => out.push(Item::Pass(a.sip_ev(b))),
                        (None, Role::ClientA) => match done {
                            Some(d) => out.push(Item::Fail(format!(
                                "{s} never sent BYE on {label} after its content was acknowledged at {}",
                                ms(d)
                            ))),
                            None => out.push(Item::Inconc(format!(
                                "{label}: the content was never acknowledged, so no BYE was due"
                            ))),
                        },
                        (None, _) => match up_bye {
                            Some((ci, Some(ub))) => out.push(Item::Fail(format!(
                                "{s} never sent BYE on {label} although BYE came on {}: {}",
                                a.label(&a.legs[ci]),
                                a.sip_ev(ub)
                            ))),
                            Some((ci, None)) => out.push(Item::Inconc(format!(
                                "{label}: no BYE, but none came on {} either",
                                a.label(&a.legs[ci])
                            ))),
                            None => out.push(Item::Fail(format!(
                                "{s} never sent BYE on {label}"
                            ))),
                        },
                    }
                }
            }
        }
        // Each BYE the SUT receives is answered.
        let Some(l) = l else { continue };
        if let Some(b) = l.bye {
            let bye = &a.obs.sip[b];
            let receiver = bye.receiver.clone();
            if a.subject_opt(&receiver) {
                match l.bye_ok {
                    Some(ok) if a.obs.sip[ok].sender == receiver => out.push(Item::Pass(format!(
                        "{} answers {}",
                        a.sip_ev(ok),
                        a.sip_ev(b)
                    ))),
                    _ => out.push(Item::Fail(format!(
                        "{} was never answered 200",
                        a.sip_ev(b)
                    ))),
                }
            }
        }
        // Links released after the session ended (P3: either side may close). Closes are
        // recorded a moment after the teardown, so only a recording that goes on well past
        // it can tell a link that stayed open.
        let ended = l.bye_ok.map(|b| a.t(b));
        if ended.is_some_and(|t| a.obs.end > t.saturating_add(a.ctx.trigger_window)) {
            for &ci in &l.conns {
                let Some(c) = a.obs.conns.get(ci) else {
                    continue;
                };
                let sut = a.subject_opt(&c.opener_party) || a.subject_opt(&c.target_party);
                if sut && c.dirs.iter().all(|d| d.closed_at.is_none()) {
                    let others_open = c
                        .legs
                        .iter()
                        .any(|&o| a.obs.legs.get(o).is_some_and(|ol| ol.bye_ok.is_none()));
                    if !others_open {
                        out.push(Item::Fail(format!(
                            "{}: never closed after {label} ended",
                            a.conn_ev(c)
                        )));
                    }
                }
            }
        }
    }
    if out.is_empty() {
        out.push(a.hidden("teardown by the SUT"));
    }
    out
}

// ---------------------------------------------------------------------------- media

/// What reached a member on the wire (CPIM object, before unwrapping), for evidence.
fn wire_delivery(a: &Analysis, member: &str) -> String {
    let mut seen = Vec::new();
    for c in a.links() {
        for d in 0..2 {
            if c.sender(1 - d).map(|p| p.name.as_str()) != Some(member) {
                continue;
            }
            for k in &c.dirs[d].contents {
                seen.push(format!("on the wire: {}", content_ev(c, d, k)));
            }
        }
    }
    let hidden = a
        .legs
        .iter()
        .any(|el| el.link == Link::L4 && el.uas.name == member && !a.visible(el));
    if seen.is_empty() && hidden {
        format!(
            "{member}'s hop is between SUT roles, so not recorded (watched until {})",
            ms(a.obs.end)
        )
    } else if seen.is_empty() {
        format!(
            "no content reached {member} on the recorded links (watched until {})",
            ms(a.obs.end)
        )
    } else {
        seen.join("; ")
    }
}

fn media_delivery(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    for m in &a.members {
        let fail = |what: String| Item::Fail(format!("{what}; {}", wire_delivery(a, m)));
        match a.ctx.delivered.get(m) {
            None => out.push(fail(format!("member {m} received nothing"))),
            Some(d) if !d.complete => out.push(fail(format!(
                "member {m}: incomplete, {} of {} bytes",
                d.bytes, a.ctx.content_len
            ))),
            Some(d) if d.bytes != a.ctx.content_len => out.push(fail(format!(
                "member {m}: {} bytes, {} sent",
                d.bytes, a.ctx.content_len
            ))),
            Some(d) if d.sha256 != a.ctx.content_sha256 => out.push(fail(format!(
                "member {m}: sha256 {} ≠ sent {}",
                d.sha256, a.ctx.content_sha256
            ))),
            Some(d) => out.push(Item::Pass(format!(
                "member {m}: {} bytes, sha256 {}",
                d.bytes,
                short(&d.sha256)
            ))),
        }
    }
    if out.is_empty() {
        out.push(Item::NotObs("the group has no members".into()));
    }
    out
}

/// The leg an MSRP message sent by `s` on `c` belongs to.
fn msg_leg<'a>(a: &Analysis<'a>, c: &ConnObs, s: &str, m: &MsrpObs) -> Option<&'a LegObs> {
    if let Some(l) = m.leg.and_then(|i| a.obs.legs.get(i)) {
        return Some(l);
    }
    let mine: Vec<&LegObs> = c
        .legs
        .iter()
        .filter_map(|&i| a.obs.legs.get(i))
        .filter(|l| l.peer_of(s).is_some())
        .collect();
    if mine.len() == 1 {
        return Some(mine[0]);
    }
    None
}

fn media_paths(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    let mut ok = 0usize;
    for c in a.links() {
        for d in 0..2 {
            let Some(s) = c.sender(d).filter(|s| a.subject(s)) else {
                continue;
            };
            for m in &c.dirs[d].msgs {
                let ev = a.msrp_ev(c, d, m);
                let (to, from) = match (m.head.to_path(), m.head.from_path()) {
                    (Ok(t), Ok(f)) => (t, f),
                    (Err(e), _) | (_, Err(e)) => {
                        out.push(Item::Fail(format!("{ev}: {}", e.msg)));
                        continue;
                    }
                };
                let mut bad = Vec::new();
                if to.len() != 1 || from.len() != 1 {
                    bad.push(format!(
                        "To-Path/From-Path hold {}/{} URIs (one each on a B2BUA hop, A3)",
                        to.len(),
                        from.len()
                    ));
                }
                match msg_leg(a, c, &s.name, m) {
                    None => bad.push(format!(
                        "To-Path `{}` / From-Path `{}` name no session negotiated on this link",
                        uris(&to),
                        uris(&from)
                    )),
                    Some(l) => {
                        let peer = l
                            .peer_of(&s.name)
                            .map(|p| p.name.clone())
                            .unwrap_or_default();
                        let want_to = l.path_of(&peer);
                        let want_from = l.path_of(&s.name);
                        if !m.is_request() {
                            // H2: To-Path is the request's first From-Path URI.
                            let req = c.dirs[1 - d]
                                .msgs
                                .iter()
                                .find(|r| r.is_request() && r.head.tid == m.head.tid);
                            if let Some(first) = req
                                .and_then(|r| r.head.from_path().ok())
                                .and_then(|v| v.into_iter().next())
                            {
                                if !to.first().is_some_and(|u| u.matches(&first)) {
                                    bad.push(format!(
                                        "To-Path `{}` is not the request's From-Path `{first}` (H2)",
                                        uris(&to)
                                    ));
                                }
                            }
                        } else if !same_uris(&to, want_to) {
                            bad.push(format!(
                                "To-Path `{}` is not {peer}'s a=path `{}` on {:?}",
                                uris(&to),
                                uris(want_to),
                                l.link.unwrap_or(Link::L1)
                            ));
                        }
                        if !same_uris(&from, want_from) {
                            bad.push(format!(
                                "From-Path `{}` is not {s}'s a=path `{}`",
                                uris(&from),
                                uris(want_from)
                            ));
                        }
                    }
                }
                if bad.is_empty() {
                    ok += 1;
                } else {
                    out.push(Item::Fail(format!("{ev}: {}", bad.join("; "))));
                }
            }
        }
    }
    if ok > 0 {
        out.push(Item::Pass(format!(
            "{ok} MSRP messages of the SUT carry the negotiated paths"
        )));
    }
    if out.is_empty() {
        out.push(a.hidden("MSRP messages the SUT sends"));
    }
    out
}

fn media_framing(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    let mut ok = 0usize;
    for c in a.links() {
        for d in 0..2 {
            let Some(s) = c.sender(d).filter(|s| a.subject(s)) else {
                continue;
            };
            let dir = &c.dirs[d];
            if let Some(e) = &dir.error {
                out.push(Item::Fail(format!(
                    "{} MSRP from {} does not parse: {}",
                    ms(e.t),
                    who(&Some(s.clone()), dir.from),
                    e.error
                )));
            }
            // Per session (To-Path) and Message-ID: (next expected start, total).
            let mut ranges: BTreeMap<(String, String), (u64, Option<u64>)> = BTreeMap::new();
            let requests: BTreeSet<&str> = c.dirs[1 - d]
                .msgs
                .iter()
                .filter(|r| r.is_request())
                .map(|r| r.head.tid.as_str())
                .collect();
            // Request transaction ids already used in this direction (F3: never reused).
            let mut tids: BTreeSet<&str> = BTreeSet::new();
            for m in &dir.msgs {
                let ev = a.msrp_ev(c, d, m);
                let h = &m.head;
                let mut bad = Vec::new();
                let name = |i: usize| h.headers.get(i).map(|(n, _)| n.to_ascii_lowercase());
                if name(0).as_deref() != Some("to-path") || name(1).as_deref() != Some("from-path")
                {
                    bad.push(
                        "To-Path and From-Path must be the first two headers (F4)".to_string(),
                    );
                }
                let ct = h
                    .headers
                    .iter()
                    .position(|(n, _)| n.eq_ignore_ascii_case("Content-Type"));
                if h.has_body && ct != Some(h.headers.len().saturating_sub(1)) {
                    bad.push("with a body, Content-Type must be the last header (F4)".into());
                }
                if !h.has_body && ct.is_some() {
                    bad.push("Content-Type without a body (F6)".into());
                }
                if m.is_request() {
                    if !tids.insert(h.tid.as_str()) {
                        bad.push(format!(
                            "transaction id `{}` reused on this connection (F3)",
                            h.tid
                        ));
                    }
                    if h.tid.len() < 11 {
                        bad.push(format!(
                            "transaction id `{}` is too short for 64 random bits (F3)",
                            h.tid
                        ));
                    }
                    if h.method() != Some("SEND") && m.body_len > 10240 {
                        bad.push(format!(
                            "{} body of {} octets (F10)",
                            h.method().unwrap_or(""),
                            m.body_len
                        ));
                    }
                } else if !requests.contains(h.tid.as_str()) {
                    bad.push("response to no request received on this connection (H2)".into());
                }
                if h.method() == Some("SEND") {
                    let id = h.message_id().unwrap_or("");
                    if id.is_empty() {
                        bad.push("SEND without Message-ID (G1)".into());
                    }
                    let key = (
                        h.header("To-Path").unwrap_or("").to_string(),
                        id.to_string(),
                    );
                    let seen = ranges.get(&key).copied();
                    match h.byte_range() {
                        None if seen.is_some() => {
                            bad.push("a later chunk without Byte-Range (G3)".into())
                        }
                        None => {
                            ranges.insert(key, (m.body_len.saturating_add(1), None));
                        }
                        Some(Err(e)) => bad.push(format!(
                            "`Byte-Range: {}`: {} (G3)",
                            h.header("Byte-Range").unwrap_or(""),
                            e.msg
                        )),
                        Some(Ok(r)) => {
                            bad.extend(range_faults(&r, m, seen));
                            let total = r.total.or(seen.and_then(|s| s.1));
                            ranges.insert(key, (r.start.saturating_add(m.body_len), total));
                        }
                    }
                }
                if bad.is_empty() {
                    ok += 1;
                } else {
                    out.push(Item::Fail(format!("{ev}: {}", bad.join("; "))));
                }
            }
        }
    }
    if ok > 0 {
        out.push(Item::Pass(format!(
            "{ok} MSRP messages of the SUT well-formed"
        )));
    }
    if out.is_empty() {
        out.push(a.hidden("MSRP messages the SUT sends"));
    }
    out
}

/// Byte-Range arithmetic of one chunk given what came before for its Message-ID.
fn range_faults(r: &ByteRange, m: &MsrpObs, seen: Option<(u64, Option<u64>)>) -> Vec<String> {
    let mut bad = Vec::new();
    let shown = format!("Byte-Range {r}");
    match seen {
        None if r.start != 1 => bad.push(format!(
            "{shown}: the first chunk of a message starts at 1 (G3, J5)"
        )),
        Some((next, _)) if r.start != next => bad.push(format!(
            "{shown}: not contiguous with the previous chunk (next octet is {next})"
        )),
        _ => {}
    }
    if let Some((_, Some(t))) = seen {
        if r.total.is_some_and(|rt| rt != t) {
            bad.push(format!(
                "{shown}: total differs from the earlier chunks' {t}"
            ));
        }
    }
    if let Some(e) = r.end {
        if m.flag.is_some() && e.saturating_add(1) != r.start.saturating_add(m.body_len) {
            bad.push(format!(
                "{shown} but the chunk carries {} octets",
                m.body_len
            ));
        }
        if m.body_len > 2048 {
            bad.push(format!(
                "{shown}: a {}-octet chunk must be interruptible (range-end `*`, J1)",
                m.body_len
            ));
        }
    }
    if let Some(t) = r.total {
        let end = r.start.saturating_add(m.body_len);
        if end > t.saturating_add(1) {
            bad.push(format!("{shown}: the chunk runs past the total"));
        }
        if m.flag == Some(crate::codec::msrp::Flag::End)
            && m.head.has_body
            && end != t.saturating_add(1)
        {
            bad.push(format!(
                "{shown}: the final chunk (`$`) ends at {} not at the total",
                end - 1
            ));
        }
    }
    bad
}

fn media_response(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    let mut ok = 0usize;
    for c in a.links() {
        for d in 0..2 {
            // Requests towards the SUT, from the harness.
            let Some(s) = c.sender(1 - d).filter(|s| a.subject(s)) else {
                continue;
            };
            if a.subject_opt(&c.sender(d).cloned()) && !a.self_check {
                continue;
            }
            for m in &c.dirs[d].msgs {
                if m.head.method() != Some("SEND") || m.flag.is_none() {
                    continue;
                }
                let fr = m
                    .head
                    .header("Failure-Report")
                    .map(|v| v.trim().to_ascii_lowercase());
                if matches!(fr.as_deref(), Some("no") | Some("partial")) {
                    continue;
                }
                let resp = c.dirs[1 - d]
                    .msgs
                    .iter()
                    .find(|r| !r.is_request() && r.head.tid == m.head.tid);
                match resp {
                    Some(r) if r.head.code() == Some(200) => ok += 1,
                    Some(r) => out.push(Item::Fail(format!(
                        "{s} answered {} with {}",
                        a.msrp_ev(c, d, m),
                        a.msrp_ev(c, 1 - d, r)
                    ))),
                    None => out.push(Item::Fail(format!(
                        "{s} never answered {} on this connection",
                        a.msrp_ev(c, d, m)
                    ))),
                }
            }
        }
    }
    if ok > 0 {
        out.push(Item::Pass(format!("{ok} SENDs to the SUT answered 200")));
    }
    if out.is_empty() {
        out.push(a.hidden("SENDs the SUT receives"));
    }
    out
}

fn content_ev(c: &ConnObs, d: usize, k: &ContentObs) -> String {
    let dir = &c.dirs[d];
    format!(
        "{} message {} ({} octets, sha256 {}) {} → {}",
        ms(k.first_t),
        k.message_id,
        k.total.unwrap_or(k.received),
        k.sha256.as_deref().map(short).unwrap_or("?"),
        who(&c.sender(d).cloned(), dir.from),
        who(&c.sender(1 - d).cloned(), dir.to)
    )
}

fn cpim_faults(k: &ContentObs) -> Vec<String> {
    let mut bad = Vec::new();
    let ct = k.content_type.as_deref().map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if ct.as_deref() != Some("message/cpim") {
        bad.push(format!(
            "Content-Type {} is not message/cpim",
            k.content_type.as_deref().unwrap_or("(none)")
        ));
        return bad;
    }
    match Cpim::parse_head(&k.prefix) {
        Ok(Some((cpim, _))) => {
            for h in ["From", "To"] {
                if cpim.header(h).is_none() {
                    bad.push(format!("the CPIM object has no {h} header (O3)"));
                }
            }
            if cpim.content_type().is_none() {
                bad.push("the CPIM object has no inner Content-Type (O1)".into());
            }
        }
        Ok(None) => bad.push("the CPIM header part never ends (O1)".into()),
        Err(e) => bad.push(format!("not a CPIM object: {e}")),
    }
    bad
}

/// The CPIM headers that differ between two objects, for evidence.
fn cpim_diff(input: &Cpim, output: &Cpim) -> String {
    let show = |h: Option<&(String, String)>| {
        h.map(|(n, v)| format!("`{n}: {v}`"))
            .unwrap_or_else(|| "nothing".into())
    };
    let n = input.headers.len().max(output.headers.len());
    let changed: Vec<String> = (0..n)
        .filter(|&k| input.headers.get(k) != output.headers.get(k))
        .map(|k| {
            format!(
                "{} became {}",
                show(input.headers.get(k)),
                show(output.headers.get(k))
            )
        })
        .collect();
    if changed.is_empty() {
        String::new()
    } else {
        format!("; CPIM header {}", changed.join(", "))
    }
}

fn media_cpim(a: &Analysis) -> Vec<Item> {
    let mut out = Vec::new();
    // Contents each instance received and sent.
    let mut received: BTreeMap<String, Vec<(&ConnObs, usize, &ContentObs)>> = BTreeMap::new();
    let mut sent: Vec<(&Party, &ConnObs, usize, &ContentObs)> = Vec::new();
    for c in a.links() {
        for d in 0..2 {
            for k in &c.dirs[d].contents {
                if let Some(r) = c.sender(1 - d) {
                    received.entry(r.name.clone()).or_default().push((c, d, k));
                }
                if let Some(s) = c.sender(d) {
                    sent.push((s, c, d, k));
                }
            }
        }
    }
    // The reference: what the harness handed to the SUT (nearest upstream).
    let from_harness: Vec<&ContentObs> = a
        .links()
        .flat_map(|c| (0..2).map(move |d| (c, d)))
        .filter(|(c, d)| {
            !a.subject_opt(&c.sender(*d).cloned()) && a.subject_opt(&c.sender(1 - *d).cloned())
        })
        .flat_map(|(c, d)| c.dirs[d].contents.iter())
        .collect();
    for (s, c, d, k) in sent {
        if !a.subject(s) {
            continue;
        }
        let ev = content_ev(c, d, k);
        if s.role == Role::ClientA || (from_harness.is_empty() && !a.self_check) {
            // The content's origin is the SUT: it must be a well-formed message/cpim.
            let bad = cpim_faults(k);
            if bad.is_empty() {
                out.push(Item::Pass(format!("{ev}: message/cpim")));
            } else {
                out.push(Item::Fail(format!("{ev}: {}", bad.join("; "))));
            }
            continue;
        }
        // A relay: compare with what it received (or, upstream hidden, what entered the SUT).
        let inputs: Vec<&ContentObs> = match received.get(&s.name) {
            Some(v) if !v.is_empty() => v.iter().map(|(_, _, k)| *k).collect(),
            _ => from_harness.clone(),
        };
        let refs: Vec<&str> = inputs.iter().filter_map(|k| k.sha256.as_deref()).collect();
        let Some(sha) = k.sha256.as_deref() else {
            out.push(Item::Inconc(format!(
                "{ev}: incomplete ({}), cannot compare (see MEDIA-DELIVERY, MEDIA-FRAMING)",
                k.note
                    .clone()
                    .unwrap_or_else(|| format!("{} octets", k.received))
            )));
            continue;
        };
        if refs.is_empty() {
            out.push(Item::Inconc(format!(
                "{ev}: no complete upstream copy to compare with"
            )));
        } else if refs.contains(&sha) {
            let ct_same = inputs.iter().any(|i| i.content_type == k.content_type);
            if ct_same {
                out.push(Item::Pass(format!("{ev}: relayed unchanged")));
            } else {
                out.push(Item::Fail(format!(
                    "{ev}: Content-Type {:?} changed while relaying",
                    k.content_type
                )));
            }
        } else {
            let detail = match (
                inputs
                    .first()
                    .and_then(|i| Cpim::parse_head(&i.prefix).ok().flatten()),
                Cpim::parse_head(&k.prefix).ok().flatten(),
            ) {
                (Some((i, _)), Some((o, _))) => cpim_diff(&i, &o),
                _ => String::new(),
            };
            out.push(Item::Fail(format!(
                "{ev}: differs from what {s} received (sha256 {}){detail} (O2: relays keep the CPIM object octet for octet)",
                refs.first().map(|r| short(r)).unwrap_or("?")
            )));
        }
    }
    if out.is_empty() {
        out.push(a.hidden("content the SUT sends"));
    }
    out
}
