//! The checks of the catalogue ([`crate::engine::catalogue`], `docs/checks.md`) over an
//! [`Observation`].
//!
//! This module owns the rules: which messages, links and timings the SUT owes in a case
//! (from the topology, the variant and the split), and the verdict of each check with its
//! findings. It reads only the observation and the case context, never a node's state.
//!
//! Conventions every check follows:
//! - **Subjects**: a check judges only what the SUT's roles send or do. In the self-check
//!   split (`ctx.sut` empty) the harness stands in for the SUT and every role is judged.
//! - **Visibility**: a hop between two SUT roles is never recorded; an item that needs it is
//!   not observable. A check with no observable item is [`Verdict::NotObservable`].
//! - **Inconc**: an item the SUT never reached (an earlier message is missing, which another
//!   check reports) is [`Verdict::Inconc`]; a check is `fail` if any item fails, else `inconc`
//!   if any item is, else `pass`.
//! - **Findings**: each is a [`crate::engine::FindingKind`] with its values and the message, connection or
//!   content it is about ([`Cite`]: the start line, the instances with their addresses, the
//!   time since the run started); [`crate::engine::finding`] turns them into text.

use crate::codec::cpim::Cpim;
use crate::codec::msrp::{ByteRange, Flag, MsrpUri, Scheme};
use crate::codec::sdp::{Media, Sdp, Setup};
use crate::config::{
    AckTiming, GroupKind, Link, Opener, ReportTiming, SetupMode, Solution, Trigger, XAnswer,
};
use crate::engine::catalogue::CheckId;
use crate::engine::finding::{
    Class, Endpoint, FanoutCause, FigureRef, HiddenTrigger, LegRef, Overlap, ParamsRule, SetupAttr,
    SetupConflict, SipStep, Time, TriggerSeen, WireDelivery,
};
use crate::engine::{CaseContext, CheckResult, Cite, Finding, FindingKind as K, Verdict};
use crate::model::{member_of, ConnObs, ContentObs, LegObs, MsrpObs, Observation, Party, SdpObs};
use crate::topology::{strip_uri, Role, Topology};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Runs every check of the catalogue; one result per id of [`CheckId::ALL`], in that order.
pub fn run_checks(ctx: &CaseContext, obs: &Observation) -> Vec<CheckResult> {
    let a = Analysis::new(ctx, obs);
    CheckId::ALL
        .iter()
        .map(|&id| {
            let items = match id {
                CheckId::SdpMedia => sdp_media(&a),
                CheckId::SdpC => sdp_c(&a),
                CheckId::SdpPort => sdp_port(&a),
                CheckId::SdpPath => sdp_path(&a),
                CheckId::SdpOwn => sdp_own(&a),
                CheckId::SdpUnique => sdp_unique(&a),
                CheckId::SdpAccept => sdp_accept(&a),
                CheckId::SdpSetup => sdp_setup(&a),
                CheckId::SdpPlace => sdp_place(&a),
                CheckId::LinkDir => link_dir(&a),
                CheckId::LinkTarget => link_target(&a),
                CheckId::LinkTrigger => link_trigger(&a),
                CheckId::LinkBind => link_bind(&a),
                CheckId::LinkReuse => link_reuse(&a),
                CheckId::LinkTls => link_tls(&a),
                CheckId::SigSeq => sig_seq(&a),
                CheckId::SigCfAnswer => sig_cf_answer(&a),
                CheckId::SigAck => sig_ack(&a),
                CheckId::SigFanout => sig_fanout(&a),
                CheckId::SigB2bua => sig_b2bua(&a),
                CheckId::SigTeardown => sig_teardown(&a),
                CheckId::SigRoute => sig_route(&a),
                CheckId::SigNon2xxAck => sig_non2xx_ack(&a),
                CheckId::SigDecline => sig_decline(&a),
                CheckId::SigAllDecline => sig_all_decline(&a),
                CheckId::SigNoAnswer => sig_no_answer(&a),
                CheckId::SigLeave => sig_leave(&a),
                CheckId::SigTls => sig_tls(&a),
                CheckId::MediaDelivery => media_delivery(&a),
                CheckId::MediaPaths => media_paths(&a),
                CheckId::MediaFraming => media_framing(&a),
                CheckId::MediaResponse => media_response(&a),
                CheckId::MediaCpim => media_cpim(&a),
                CheckId::MediaAbort => media_abort(&a),
                CheckId::MediaReject => media_reject(&a),
                CheckId::MediaReport => media_report(&a),
                CheckId::MediaNoResponse => media_no_response(&a),
                CheckId::WireSyntax => wire_syntax(&a),
                CheckId::Capture | CheckId::Harness => Vec::new(),
            };
            finish(id, items)
        })
        .collect()
}

// ---------------------------------------------------------------------------- verdicts

/// Most evidence lines kept per verdict class.
const MAX_LINES: usize = 40;
/// Most pass lines kept (a pass needs only a summary).
const MAX_PASS_LINES: usize = 6;

/// A check's findings, grouped into lines: consecutive findings of one class about one
/// subject (the problems of one message) make one line.
fn lines(v: Vec<Finding>) -> Vec<Vec<Finding>> {
    let mut out: Vec<Vec<Finding>> = Vec::new();
    for f in v {
        match out.last_mut() {
            Some(line)
                if f.subject.is_some() && line.last().is_some_and(|l| l.subject == f.subject) =>
            {
                if !line.contains(&f) {
                    line.push(f)
                }
            }
            _ => out.push(vec![f]),
        }
    }
    // The same line twice (the same message judged twice) is kept once.
    let mut kept: Vec<Vec<Finding>> = Vec::new();
    for l in out {
        if !kept.contains(&l) {
            kept.push(l);
        }
    }
    kept
}

fn finish(id: CheckId, items: Vec<Finding>) -> CheckResult {
    let of =
        |c: Class| -> Vec<Finding> { items.iter().filter(|f| f.class == c).cloned().collect() };
    let (fail, inconc, pass, mut notobs) = (
        lines(of(Class::Fail)),
        lines(of(Class::Inconc)),
        lines(of(Class::Pass)),
        lines(of(Class::NotObservable)),
    );
    let cap = |mut v: Vec<Vec<Finding>>, max: usize, class: Class| -> Vec<Finding> {
        let n = v.len();
        v.truncate(max);
        let mut v: Vec<Finding> = v.into_iter().flatten().collect();
        if n > max {
            v.push(Finding::new(class, K::More { count: n - max }));
        }
        v
    };
    let (verdict, findings) = if !fail.is_empty() {
        let mut e = cap(fail, MAX_LINES, Class::Fail);
        e.extend(cap(inconc, 5, Class::Inconc));
        (Verdict::Fail, e)
    } else if !inconc.is_empty() {
        (Verdict::Inconc, cap(inconc, MAX_LINES, Class::Inconc))
    } else if !pass.is_empty() {
        (Verdict::Pass, cap(pass, MAX_PASS_LINES, Class::Pass))
    } else {
        if notobs.is_empty() {
            notobs.push(vec![Finding::not_observable(K::NothingToCheck)]);
        }
        (Verdict::NotObservable, cap(notobs, 5, Class::NotObservable))
    };
    CheckResult::new(id, verdict, findings)
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

type Slot = SipStep;

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
        // Every member declined: no session is owed on any hop. SIG-ALL-DECLINE judges how
        // the call ended; the checks of the flow have no leg to expect.
        if a.obs.scenario.all_declined(&a.members) {
            return a;
        }
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
        // A member that declined (the wire's scenario) has no session: its legs end with the
        // non-2xx and SIG-DECLINE judges them; every other check expects the rest of the group.
        for m in a.accepting() {
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

    /// The members that neither declined nor left (all of the group on the happy path).
    fn accepting(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| {
                let sc = &self.obs.scenario;
                !sc.declined(m) && !sc.left(m) && !sc.refused.contains_key(*m)
            })
            .cloned()
            .collect()
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

    fn label(&self, el: &ExpLeg) -> LegRef {
        LegRef {
            link: el.link,
            uac: el.uac.name.clone(),
            uas: el.uas.name.clone(),
            member: el.member.clone(),
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

    /// The SIP message `i` (`12.3ms `SIP/2.0 200 OK` pf-a (127.0.0.12:5060) → client-a
    /// (127.0.0.11:5060)` as text).
    fn sip_ev(&self, i: usize) -> Cite {
        match self.obs.sip.get(i) {
            Some(s) => Cite::Sip {
                index: i,
                t: Time(s.t),
                start_line: s.start_line.clone(),
                from: who(&s.sender, s.from),
                to: who(&s.receiver, s.to),
            },
            None => Cite::Sip {
                index: i,
                t: Time::default(),
                start_line: "(no message)".into(),
                from: who(&None, SocketAddr::from(([0, 0, 0, 0], 0))),
                to: who(&None, SocketAddr::from(([0, 0, 0, 0], 0))),
            },
        }
    }

    /// The MSRP message `m` of direction `d` of `c`.
    fn msrp_ev(&self, c: &ConnObs, d: usize, m: &MsrpObs) -> Cite {
        let dir = &c.dirs[d];
        let index = dir
            .msgs
            .iter()
            .position(|x| std::ptr::eq(x, m))
            .unwrap_or(usize::MAX);
        Cite::Msrp {
            conn: c.index,
            dir: d,
            index,
            t: Time(m.t),
            start_line: m.start_line(),
            from: who(&c.sender(d).cloned(), dir.from),
            to: who(&c.sender(1 - d).cloned(), dir.to),
        }
    }

    fn conn_ev(&self, c: &ConnObs) -> Cite {
        Cite::Conn {
            index: c.index,
            t: Time(c.opened_at),
            opener: who(&c.opener_party, c.opener),
            target: who(&c.target_party, c.target),
        }
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

    fn figure_text(&self) -> FigureRef {
        let v = &self.ctx.variant;
        FigureRef {
            n: v.figure.n(),
            l23_opener: (v.solution() == Solution::ClientsOpen).then_some(v.l23_opener),
        }
    }

    /// Why nothing of a kind was observable, for a not-observable verdict.
    fn hidden(&self, what: &str) -> Finding {
        Finding::not_observable(K::NoneInSplit {
            what: what.to_string(),
            sut: if self.self_check {
                Vec::new()
            } else {
                self.ctx.sut.clone()
            },
        })
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

fn who(p: &Option<Party>, a: SocketAddr) -> Endpoint {
    Endpoint {
        name: p.as_ref().map(|p| p.name.clone()),
        addr: a,
    }
}

/// A finding about `subject`.
fn about(class: Class, subject: Cite, kind: K) -> Finding {
    Finding::about(class, subject, kind)
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
    fn sdp_items(&self) -> (Vec<SdpItem<'a>>, Vec<Finding>) {
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
                let (entity, leg) = (p.name.clone(), self.label(el));
                match (self.sleg(el), offer) {
                    (None, true) => other.push(Finding::inconc(K::NeverSentInvite { entity, leg })),
                    (None, false) => {
                        other.push(Finding::inconc(K::NothingToAnswer { entity, leg }))
                    }
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
                        None => other.push(Finding::inconc(K::NeverAnswered { entity, leg })),
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

/// The generic SDP of an item with its m=message section, or the finding explaining why not.
fn media_of<'s>(
    a: &'s Analysis,
    it: &SdpItem,
    line: &str,
) -> Result<(&'s Sdp, &'s Media), Box<Finding>> {
    let ev = a.sip_ev(it.sip);
    let Some(sdp) = a.sdp(it.sip) else {
        return Err(Box::new(about(Class::Inconc, ev, K::NoSdp)));
    };
    let s = match &sdp.sdp {
        Ok(s) => s,
        Err(e) if !line.is_empty() && e.excerpt.starts_with(line) => {
            return Err(Box::new(about(
                Class::Fail,
                ev,
                K::SdpLineInvalid {
                    error: e.to_string(),
                },
            )))
        }
        Err(e) => {
            return Err(Box::new(about(
                Class::Inconc,
                ev,
                K::SdpUnparsedElsewhere {
                    error: e.to_string(),
                },
            )))
        }
    };
    match s.media.iter().find(|m| m.media == "message") {
        Some(m) => Ok((s, m)),
        None => Err(Box::new(about(Class::Inconc, ev, K::NoMessageMedia))),
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

/// A pass finding about `ev` when `bad` is empty, else a fail finding per problem.
fn judged(out: &mut Vec<Finding>, ev: Cite, bad: Vec<K>, pass: K) {
    if bad.is_empty() {
        out.push(about(Class::Pass, ev, pass));
    } else {
        out.extend(bad.into_iter().map(|k| about(Class::Fail, ev.clone(), k)));
    }
}

fn sdp_media(a: &Analysis) -> Vec<Finding> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let Some(sdp) = a.sdp(it.sip) else {
            out.push(about(Class::Inconc, ev, K::NoSdp));
            continue;
        };
        let s = match &sdp.sdp {
            Ok(s) => s,
            Err(e) => {
                out.push(about(
                    Class::Fail,
                    ev,
                    K::SdpUnparsable {
                        error: e.to_string(),
                    },
                ));
                continue;
            }
        };
        let mut bad = Vec::new();
        let msgs: Vec<&Media> = s.media.iter().filter(|m| m.media == "message").collect();
        if msgs.len() != 1 {
            bad.push(K::MessageMediaCount { count: msgs.len() });
        }
        if let Some(m) = msgs.first() {
            if m.proto != "TCP/MSRP" && m.proto != "TCP/TLS/MSRP" {
                bad.push(K::WrongProto { mline: mline(m) });
            }
            if m.formats != ["*"] {
                bad.push(K::WrongFormats { mline: mline(m) });
            }
            if !it.offer && m.port == 0 {
                bad.push(K::PortZero { mline: mline(m) });
            }
        }
        if !it.offer {
            if let Some(Ok(offer)) = a.sdp(it.leg.invite).map(|o| &o.sdp) {
                let kinds = |s: &Sdp| s.media.iter().map(|m| m.media.clone()).collect::<Vec<_>>();
                if kinds(offer) != kinds(s) {
                    bad.push(K::MediaMismatch {
                        answer: kinds(s),
                        offer: kinds(offer),
                    });
                }
            }
        }
        judged(&mut out, ev, bad, K::OneMsrpMedia);
    }
    out
}

fn sdp_c(a: &Analysis) -> Vec<Finding> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (s, m) = match media_of(a, &it, "c=") {
            Ok(x) => x,
            Err(i) => {
                out.push(*i);
                continue;
            }
        };
        let Some(c) = m.connection.as_ref().or(s.connection.as_ref()) else {
            out.push(about(Class::Fail, ev, K::NoConnectionLine));
            continue;
        };
        let line = format!("c={} {} {}", c.net_type, c.addr_type, c.address);
        let Some(ip) = c.ip() else {
            out.push(about(Class::Fail, ev, K::ConnectionNotIp { line }));
            continue;
        };
        if (c.addr_type == "IP4") != ip.is_ipv4() {
            out.push(about(Class::Fail, ev, K::ConnectionTypeMismatch { line }));
            continue;
        }
        let (listener, ips) = a.msrp_addrs(&it.sender.name);
        let entity = it.sender.name.clone();
        if ips.contains(&ip) {
            out.push(about(Class::Pass, ev, K::ConnectionOwn { line, entity }));
        } else {
            out.push(about(
                Class::Fail,
                ev,
                K::ConnectionNotOwn {
                    line,
                    entity,
                    listener,
                },
            ));
        }
    }
    out
}

fn setup_of(s: &Sdp, m: &Media) -> Option<String> {
    m.attribute("setup")
        .or_else(|| s.attribute("setup"))
        .map(|v| v.trim().to_string())
}

fn sdp_port(a: &Analysis) -> Vec<Finding> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (s, m) = match media_of(a, &it, "m=") {
            Ok(x) => x,
            Err(i) => {
                out.push(*i);
                continue;
            }
        };
        let Some(path) = m
            .attribute("path")
            .and_then(|v| MsrpUri::parse_list(v).ok())
        else {
            out.push(about(Class::Inconc, ev, K::NoReadablePath));
            continue;
        };
        let Some(own) = path.last() else { continue };
        let active = setup_of(s, m).as_deref() == Some("active");
        if m.port == own.port {
            out.push(about(Class::Pass, ev, K::PortMatchesPath { port: m.port }));
        } else if active && m.port == 9 {
            out.push(about(Class::Pass, ev, K::ActivePort9));
        } else {
            out.push(about(
                Class::Fail,
                ev,
                K::PortMismatch {
                    mline: mline(m),
                    uri: own.to_string(),
                    port: own.port,
                },
            ));
        }
    }
    out
}

fn sdp_path(a: &Analysis) -> Vec<Finding> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (_, m) = match media_of(a, &it, "a=path") {
            Ok(x) => x,
            Err(i) => {
                out.push(*i);
                continue;
            }
        };
        let Some(v) = m.attribute("path") else {
            out.push(about(
                Class::Fail,
                ev,
                K::MissingAttribute {
                    attr: "path".into(),
                },
            ));
            continue;
        };
        let list = match MsrpUri::parse_list(v) {
            Ok(l) => l,
            Err(e) => {
                out.push(about(
                    Class::Fail,
                    ev,
                    K::PathUnparsable {
                        value: v.to_string(),
                        error: e.msg.to_string(),
                    },
                ));
                continue;
            }
        };
        let mut bad = Vec::new();
        for u in &list {
            if !u.transport.eq_ignore_ascii_case("tcp") {
                bad.push(K::PathTransport {
                    uri: u.to_string(),
                    transport: u.transport.to_string(),
                });
            }
            let tls = m.proto == "TCP/TLS/MSRP";
            if (u.scheme == Scheme::Msrps) != tls {
                bad.push(K::PathSchemeMismatch {
                    uri: u.to_string(),
                    proto: m.proto.clone(),
                });
            }
        }
        judged(
            &mut out,
            ev,
            bad,
            K::PathValid {
                value: v.to_string(),
            },
        );
    }
    out
}

fn sdp_own(a: &Analysis) -> Vec<Finding> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (s, m) = match media_of(a, &it, "") {
            Ok(x) => x,
            Err(i) => {
                out.push(*i);
                continue;
            }
        };
        let Some(path) = m
            .attribute("path")
            .and_then(|v| MsrpUri::parse_list(v).ok())
        else {
            out.push(about(Class::Inconc, ev, K::NoReadablePath));
            continue;
        };
        let entity = it.sender.name.clone();
        let mut bad = Vec::new();
        // Copied from an SDP the sender received (each leg is its own MSRP session)?
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
                bad.push(K::PathCopied {
                    uri: u.to_string(),
                    entity: entity.clone(),
                    received_in: a.sip_ev(r.index),
                });
            }
        }
        if let Some(own) = path.last() {
            let (listener, ips) = a.msrp_addrs(&it.sender.name);
            let active = setup_of(s, m).as_deref() == Some("active");
            match own.host.parse::<IpAddr>() {
                Ok(ip) if ips.contains(&ip) => {}
                _ => bad.push(K::PathNotOwnAddress {
                    uri: own.to_string(),
                    entity: entity.clone(),
                    ip: listener.map(|l| l.ip()),
                }),
            }
            let port_ok =
                listener.map(|l| l.port() == own.port).unwrap_or(true) || (active && own.port == 9);
            if !port_ok {
                bad.push(K::PathNotOwnPort {
                    uri: own.to_string(),
                    entity: entity.clone(),
                    port: listener.map(|l| l.port()),
                });
            }
            if own.session_id.as_deref().unwrap_or("").is_empty() {
                bad.push(K::NoSessionId {
                    uri: own.to_string(),
                });
            }
        }
        judged(&mut out, ev, bad, K::PathOwn { entity });
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

fn sdp_unique(a: &Analysis) -> Vec<Finding> {
    sdp_unique_with(a, &BTreeMap::new())
}

/// The session-ids of the SDPs the SUT sent in this case (its own, rightmost `a=path` URI).
pub fn sut_session_ids(ctx: &CaseContext, obs: &Observation) -> Vec<String> {
    let a = Analysis::new(ctx, obs);
    let (items, _) = a.sdp_items();
    let mut ids: Vec<String> = items
        .iter()
        .filter_map(|it| {
            a.sdp(it.sip)
                .and_then(|d| d.path())
                .and_then(|p| p.last().and_then(|u| u.session_id.clone()))
        })
        .filter(|s| !s.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// SDP-UNIQUE across the cases of a run: as in the case, and each session-id the SUT used in
/// an earlier case (`earlier`: session-id → that case's id) fails.
pub fn sdp_unique_across_cases(
    ctx: &CaseContext,
    obs: &Observation,
    earlier: &BTreeMap<String, String>,
) -> CheckResult {
    finish(
        CheckId::SdpUnique,
        sdp_unique_with(&Analysis::new(ctx, obs), earlier),
    )
}

fn sdp_unique_with(a: &Analysis, earlier: &BTreeMap<String, String>) -> Vec<Finding> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let Some(own) = a
            .sdp(it.sip)
            .and_then(|d| d.path())
            .and_then(|p| p.last().cloned())
        else {
            out.push(about(Class::Inconc, ev, K::NoReadablePath));
            continue;
        };
        let Some(sid) = own.session_id.clone().filter(|s| !s.is_empty()) else {
            out.push(about(
                Class::Fail,
                ev,
                K::NoSessionId {
                    uri: own.to_string(),
                },
            ));
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
            bad.push(K::SessionIdClash {
                session_id: sid.clone(),
                also_in: a.sip_ev(c.index),
            });
        }
        if let Some(case) = earlier.get(&sid) {
            bad.push(K::SessionIdInEarlierCase {
                session_id: sid.clone(),
                case: case.clone(),
            });
        }
        let bits = entropy_bits(&sid);
        if bits < 64.0 {
            bad.push(K::SessionIdWeak {
                session_id: sid.clone(),
                bits: format!("{bits:.0}").parse().unwrap_or(0),
            });
        }
        judged(&mut out, ev, bad, K::SessionIdUnique { session_id: sid });
    }
    out
}

fn sdp_accept(a: &Analysis) -> Vec<Finding> {
    let (items, mut out) = a.sdp_items();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let (s, m) = match media_of(a, &it, "a=accept-types") {
            Ok(x) => x,
            Err(i) => {
                out.push(*i);
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
            out.push(about(
                Class::Fail,
                ev,
                K::MissingAttribute {
                    attr: "accept-types".into(),
                },
            ));
            continue;
        };
        let ok = val.split_ascii_whitespace().any(|t| {
            let t = t.to_ascii_lowercase();
            t == "message/cpim" || t == "message/*" || t == "*"
        });
        if ok {
            out.push(about(Class::Pass, ev, K::AcceptTypes { value: val }));
        } else if val.trim().is_empty() {
            out.push(about(Class::Fail, ev, K::AcceptTypesEmpty));
        } else {
            out.push(about(Class::Fail, ev, K::AcceptTypesNoCpim { value: val }));
        }
    }
    out
}

/// Who connects for an (offer, answer) pair of `a=setup` values (RFC 4145 §4.1, RFC 4975 §8.1).
fn rfc4145_opener(offer: Option<Setup>, answer: Option<Setup>) -> Result<Opener, SetupConflict> {
    let norm = |s: Option<Setup>| if s == Some(Setup::Holdconn) { None } else { s };
    match (norm(offer), norm(answer)) {
        (None | Some(Setup::Active), None | Some(Setup::Passive)) => Ok(Opener::Offerer),
        (Some(Setup::Actpass), None | Some(Setup::Passive)) => Ok(Opener::Offerer),
        (Some(Setup::Actpass), Some(Setup::Active)) => Ok(Opener::Answerer),
        (Some(Setup::Active), Some(Setup::Active)) => Err(SetupConflict::ActiveActive),
        (None, Some(Setup::Active)) => Err(SetupConflict::ImplicitActiveAnswered),
        (Some(Setup::Passive), Some(Setup::Active)) => Err(SetupConflict::PassiveOffer),
        (Some(Setup::Passive), _) => Err(SetupConflict::PassivePassive),
        (_, Some(Setup::Actpass)) => Err(SetupConflict::ActpassAnswer),
        _ => Err(SetupConflict::Invalid),
    }
}

fn sdp_setup(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    let sdp_mode = a.ctx.variant.setup == SetupMode::Sdp;
    // (value as written, parsed) of a message's a=setup; none when unreadable.
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
            out.push(about(Class::Inconc, ev, K::NoReadableSdp));
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
            out.push(about(Class::Fail, ev, K::SetupUnknown { value: v.clone() }));
            continue;
        }
        let mut bad = Vec::new();
        let shown = SetupAttr(val.clone());
        if sdp_mode {
            match (it.offer, own) {
                (_, None) => bad.push(K::SetupImplicit {
                    setup: shown.clone(),
                }),
                (true, Some(Setup::Passive | Setup::Holdconn)) => bad.push(K::SetupPassiveOffer {
                    setup: shown.clone(),
                }),
                (true, Some(s)) if want == Opener::Answerer && s != Setup::Actpass => {
                    bad.push(K::SetupOfferBlocksAnswerer {
                        setup: shown.clone(),
                        answerer: l.uas.name.clone(),
                        link,
                    })
                }
                (false, Some(Setup::Actpass | Setup::Holdconn)) => {
                    bad.push(K::SetupActpassAnswer {
                        setup: shown.clone(),
                    })
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
                bad.push(K::SetupDisagreesWithPreset {
                    setup: shown.clone(),
                    opener: want_party.name.clone(),
                    link,
                });
            }
        }
        // The pair, when the other side's SDP is at hand.
        let other = if it.offer { l.ok } else { Some(l.invite) };
        if let Some((oval, oset)) = other.and_then(setup) {
            let both = val.is_some() && oval.is_some();
            let (offer, answer) = if it.offer { (own, oset) } else { (oset, own) };
            let (ov, av) = if it.offer {
                (shown.clone(), SetupAttr(oval))
            } else {
                (SetupAttr(oval), shown.clone())
            };
            // Preset: a missing a=setup means "as preset", not RFC 4145's default, so the pair
            // is judged only when both sides sent one.
            if sdp_mode || both {
                match rfc4145_opener(offer, answer) {
                    Err(why) => bad.push(K::SetupInvalidPair {
                        offer: ov,
                        answer: av,
                        why,
                    }),
                    Ok(who) if who != want => {
                        let opener = if who == Opener::Offerer {
                            &l.uac
                        } else {
                            &l.uas
                        };
                        bad.push(K::SetupWrongOpener {
                            offer: ov,
                            answer: av,
                            opener: opener.name.clone(),
                            link,
                            figure: a.figure_text(),
                            expected: want_party.name.clone(),
                        })
                    }
                    Ok(_) => {}
                }
            }
        }
        judged(&mut out, ev, bad, K::SetupValid { setup: shown });
    }
    out
}

fn sdp_place(a: &Analysis) -> Vec<Finding> {
    let (items, mut out) = a.sdp_items();
    let sol = a.ctx.variant.solution();
    for it in items {
        let ev = a.sip_ev(it.sip);
        let has = a.sdp(it.sip).is_some_and(|d| match &d.sdp {
            Ok(s) => s.media.iter().any(|m| m.media == "message"),
            Err(_) => memchr::memmem::find(&d.text, b"m=message").is_some(),
        });
        let rule = match (sol, it.offer) {
            (Solution::SenderOpens, false) => ParamsRule::Solution1Answer,
            (Solution::ReceiverOpens, true) => ParamsRule::Solution2Offer,
            (_, true) => ParamsRule::Offer,
            (_, false) => ParamsRule::Answer,
        };
        if has {
            out.push(about(
                Class::Pass,
                ev,
                K::CarriesParams {
                    entity: it.sender.name.clone(),
                },
            ));
        } else {
            out.push(about(Class::Fail, ev, K::NoParams { rule }));
        }
    }
    out
}

// ---------------------------------------------------------------------------- links

fn link_dir(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in a.links() {
        let Some(op) = &c.opener_party else { continue };
        if !a.subject(op) || !c.open_seen {
            continue;
        }
        let opener = op.name.clone();
        match c.link {
            None => out.push(about(Class::Fail, a.conn_ev(c), K::LinkOffChain { opener })),
            Some(link) => {
                let want = opener_role(a.ctx, link);
                if op.role == want {
                    out.push(about(
                        Class::Pass,
                        a.conn_ev(c),
                        K::LinkOpenedBy { link, opener },
                    ));
                } else {
                    out.push(about(
                        Class::Fail,
                        a.conn_ev(c),
                        K::LinkOpenedByWrongSide {
                            link,
                            opener,
                            figure: a.figure_text(),
                            expected: want,
                        },
                    ));
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
            out.push(about(
                Class::Fail,
                a.conn_ev(c),
                K::LinkOpenedByPeer {
                    leg: a.label(el),
                    opener: p.name.clone(),
                    figure: a.figure_text(),
                    expected: s.name.clone(),
                },
            ));
        } else if let Some(ack) = a.sleg(el).and_then(|l| l.ack) {
            out.push(Finding::fail(K::NeverOpened {
                entity: s.name.clone(),
                leg: a.label(el),
                confirmed_by: a.sip_ev(ack),
            }));
        } else {
            out.push(Finding::inconc(K::NeverConfirmedNoLink {
                leg: a.label(el),
                entity: s.name.clone(),
            }));
        }
    }
    if out.is_empty() {
        out.push(a.hidden("links the SUT opens or should open"));
    }
    out
}

/// LINK-TLS: a link of a session that negotiated TLS carries TLS, started by its opener.
fn link_tls(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in a.links() {
        let Some(s) = &c.opener_party else { continue };
        let target_is_subject = a.subject_opt(&c.target_party);
        if !a.subject(s) && !target_is_subject {
            continue;
        }
        let target_name = || {
            c.target_party
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_else(|| c.target.to_string())
        };
        // A failed handshake (SIP or MSRP): either side may be the one at fault (an
        // untrusted CA, a wrong name); the reason says which rejected which.
        if let Some(reason) = c.tls.as_ref().and_then(|t| t.failed.clone()) {
            out.push(about(
                Class::Fail,
                a.conn_ev(c),
                K::TlsHandshakeFailed {
                    opener: s.name.clone(),
                    target: target_name(),
                    sip: c.to_sip_port,
                    reason,
                },
            ));
            continue;
        }
        // The legs whose session it carries, else every leg between its two parties.
        let mut legs: Vec<&LegObs> = c.legs.iter().filter_map(|&i| a.obs.legs.get(i)).collect();
        if legs.is_empty() {
            if let Some(t) = &c.target_party {
                legs = a.obs.legs_between(&s.name, &t.name).collect();
            }
        }
        // TLS negotiated: the URI the opener connects to is msrps:, or an m= says
        // TCP/TLS/MSRP.
        let tls_uri = legs.iter().find_map(|l| {
            let t = l.peer_of(&s.name)?;
            l.path_of(&t.name)
                .first()
                .filter(|u| u.scheme == Scheme::Msrps)
                .map(|u| u.to_string())
        });
        let tls_proto = legs.iter().any(|l| {
            [Some(l.invite), l.ok].iter().flatten().any(|&i| {
                a.obs
                    .sip
                    .get(i)
                    .and_then(|m| m.sdp.as_ref())
                    .and_then(|d| d.message_media())
                    .is_some_and(|m| m.proto == "TCP/TLS/MSRP")
            })
        });
        if tls_uri.is_none() && !tls_proto {
            // A plain TCP/MSRP session: plain TCP, as negotiated (only a session the model
            // can name is judged).
            if legs.is_empty() {
                continue;
            }
            out.push(match &c.tls {
                Some(t) if t.failed.is_none() => about(
                    Class::Fail,
                    a.conn_ev(c),
                    K::TlsWherePlain {
                        opener: s.name.clone(),
                        version: t.version.clone(),
                    },
                ),
                _ => about(
                    Class::Pass,
                    a.conn_ev(c),
                    K::PlainAsNegotiated {
                        opener: s.name.clone(),
                    },
                ),
            });
            continue;
        }
        match &c.tls {
            None if a.subject(s) => out.push(about(
                Class::Fail,
                a.conn_ev(c),
                K::PlainWhereTls {
                    opener: s.name.clone(),
                    uri: tls_uri.unwrap_or_else(|| "TCP/TLS/MSRP".into()),
                },
            )),
            // The harness opened it plain: not the SUT's doing.
            None => {}
            Some(t) if t.client != c.opener => out.push(about(
                Class::Fail,
                a.conn_ev(c),
                K::TlsStartedByTarget {
                    opener: s.name.clone(),
                    client: c
                        .target_party
                        .as_ref()
                        .map(|p| p.name.clone())
                        .unwrap_or_else(|| t.client.to_string()),
                },
            )),
            Some(t) => out.push(about(
                Class::Pass,
                a.conn_ev(c),
                K::TlsLink {
                    opener: s.name.clone(),
                    version: t.version.clone(),
                },
            )),
        }
    }
    out
}

fn link_target(a: &Analysis) -> Vec<Finding> {
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
                out.push(about(
                    Class::Fail,
                    a.conn_ev(c),
                    K::ConnectedToUnadvertised {
                        entity: s.name.clone(),
                    },
                ));
                continue;
            };
            let advertised: Vec<SocketAddr> = a
                .obs
                .legs_between(&s.name, &t.name)
                .filter_map(|l| l.path_of(&t.name).first().and_then(|u| u.socket_addr()))
                .collect();
            if advertised.contains(&c.target) {
                out.push(about(
                    Class::Pass,
                    a.conn_ev(c),
                    K::TargetAdvertised { by: t.name.clone() },
                ));
            } else if advertised.is_empty() {
                out.push(about(
                    Class::Inconc,
                    a.conn_ev(c),
                    K::NoPathObserved {
                        peer: t.name.clone(),
                        entity: s.name.clone(),
                    },
                ));
            } else {
                out.push(about(
                    Class::Fail,
                    a.conn_ev(c),
                    K::WrongTarget {
                        peer: t.name.clone(),
                        advertised,
                        sip_port: c.to_sip_port,
                    },
                ));
            }
            continue;
        }
        for l in legs {
            let Some(p) = l.peer_of(&s.name) else {
                continue;
            };
            let Some(u) = l.path_of(&p.name).first() else {
                out.push(about(
                    Class::Inconc,
                    a.conn_ev(c),
                    K::PeerNoPath {
                        peer: p.name.clone(),
                    },
                ));
                continue;
            };
            if u.socket_addr() == Some(c.target) {
                out.push(about(
                    Class::Pass,
                    a.conn_ev(c),
                    K::TargetIsPath {
                        peer: p.name.clone(),
                        uri: u.to_string(),
                    },
                ));
            } else {
                let msg = if l.uac.name == p.name {
                    Some(l.invite)
                } else {
                    l.ok
                };
                out.push(about(
                    Class::Fail,
                    a.conn_ev(c),
                    K::TargetNotPath {
                        peer: p.name.clone(),
                        uri: u.to_string(),
                        advertised_in: msg.map(|m| a.sip_ev(m)),
                    },
                ));
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
            out.push(Finding::fail(K::NeverConnected {
                entity: s.name.clone(),
                target: adv,
                peer: p.name.clone(),
                leg: a.label(el),
                confirmed_by: a.sip_ev(ack),
            }));
        } else {
            out.push(Finding::inconc(K::NeverConfirmed { leg: a.label(el) }));
        }
    }
    if out.is_empty() {
        out.push(a.hidden("connections the SUT opens"));
    }
    out
}

fn link_trigger(a: &Analysis) -> Vec<Finding> {
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
        let entity = s.name.clone();
        let Some(l) = a.sleg(el) else {
            out.push(Finding::inconc(K::NoDialog { leg: label }));
            continue;
        };
        // The trigger: what (and when) and the earliest allowed opening.
        let (what, earliest): (TriggerSeen, Option<Duration>) = if s.name == el.uac.name {
            let Some(ok) = l.ok else {
                out.push(Finding::inconc(K::No200 { leg: label, entity }));
                continue;
            };
            let t_ok = a.t(ok);
            let trig = match s.role {
                Role::ClientA => None,
                Role::X => Some(a.ctx.variant.x_trigger()),
                _ => Some(a.ctx.variant.trigger),
            };
            match trig {
                None | Some(Trigger::On200) => (TriggerSeen::Ok(a.sip_ev(ok)), Some(t_ok)),
                Some(Trigger::OnAck) => {
                    let Some(u) = a.up_of(i) else { continue };
                    if !a.visible(&a.legs[u]) {
                        out.push(Finding::not_observable(K::TriggerHidden {
                            leg: label,
                            entity,
                            trigger: HiddenTrigger::UpstreamAck,
                        }));
                        continue;
                    }
                    match a.sleg(&a.legs[u]).and_then(|ul| ul.ack) {
                        Some(ack) => (
                            TriggerSeen::UpstreamAck(Some(a.sip_ev(ack))),
                            Some(t_ok.max(a.t(ack))),
                        ),
                        None => (TriggerSeen::UpstreamAck(None), None),
                    }
                }
                Some(Trigger::OnSend) => {
                    let Some(u) = a.up_of(i) else { continue };
                    if !a.visible(&a.legs[u]) {
                        out.push(Finding::not_observable(K::TriggerHidden {
                            leg: label,
                            entity,
                            trigger: HiddenTrigger::FirstUpstreamSend,
                        }));
                        continue;
                    }
                    match a
                        .sleg(&a.legs[u])
                        .and_then(|ul| a.first_send_to(&s.name, ul.index))
                    {
                        Some(t) => (
                            TriggerSeen::FirstUpstreamSend(Some(Time(t))),
                            Some(t_ok.max(t)),
                        ),
                        None => (TriggerSeen::FirstUpstreamSend(None), None),
                    }
                }
            }
        } else {
            match l.ack {
                Some(ack) => (TriggerSeen::Ack(Some(a.sip_ev(ack))), Some(a.t(ack))),
                None => (TriggerSeen::Ack(None), None),
            }
        };
        let Some((t_open, c)) = a.link_open_time(l, &s.name) else {
            match earliest {
                // Watched long enough after the trigger: the opening is late.
                Some(e) if a.obs.end > e.saturating_add(window) => {
                    out.push(Finding::fail(K::LinkLate {
                        entity,
                        leg: label,
                        window: Time(window),
                        trigger: what,
                        watched: Time(a.obs.end),
                    }))
                }
                _ => out.push(Finding::inconc(K::NeverOpenedLink { leg: label, entity })),
            }
            continue;
        };
        let (available, conn) = (Time(t_open), a.conn_ev(c));
        match earliest {
            None => out.push(Finding::fail(K::LinkWithoutTrigger {
                entity,
                leg: label,
                available,
                conn,
                trigger: what,
            })),
            Some(e) if t_open < e => out.push(Finding::fail(K::LinkBeforeTrigger {
                entity,
                leg: label,
                available,
                conn,
                early: Time(e - t_open),
                trigger: what,
            })),
            Some(e) if t_open > e.saturating_add(window) => {
                out.push(Finding::fail(K::LinkAfterWindow {
                    entity,
                    leg: label,
                    available,
                    conn,
                    late: Time(t_open - e),
                    window: Time(window),
                    trigger: what,
                }))
            }
            Some(e) => out.push(Finding::pass(K::LinkOnTrigger {
                entity,
                leg: label,
                available,
                conn,
                after: Time(t_open - e),
                trigger: what,
            })),
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

fn link_bind(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    let window = a.ctx.trigger_window;
    for c in a.links() {
        // The active side: its first request on a connection it opened binds it.
        let active = c
            .opener_party
            .as_ref()
            .filter(|s| a.subject(s) && c.open_seen);
        // A link misdirected to a SIP port is LINK-TARGET's; nothing there can bind.
        if let Some(s) = active.filter(|_| !c.to_sip_port) {
            let first = c.dirs[0].msgs.iter().find(|m| m.is_request());
            match first {
                None if a.obs.end > c.opened_at.saturating_add(window) => out.push(about(
                    Class::Fail,
                    a.conn_ev(c),
                    K::NoBindingRequest {
                        entity: s.name.clone(),
                        watched: Time(a.obs.end),
                    },
                )),
                // Every member declined: the call's end may overtake a link just opened.
                None if a.obs.scenario.all_declined(&a.members)
                    || !a.obs.scenario.left.is_empty()
                    || !a.obs.scenario.refused.is_empty() => {}
                None => out.push(about(
                    Class::Inconc,
                    a.conn_ev(c),
                    K::RecordingEndsBeforeBind,
                )),
                Some(m) => {
                    let ev = a.msrp_ev(c, 0, m);
                    let mut bad = Vec::new();
                    if m.t > c.opened_at.saturating_add(window) {
                        bad.push(K::BindLate {
                            after: Time(m.t - c.opened_at),
                            allowed: Time(window),
                        });
                    }
                    if m.head.method() != Some("SEND") {
                        bad.push(K::BindNotSend);
                    }
                    match m.leg.and_then(|l| a.obs.legs.get(l)) {
                        None => bad.push(K::BindNoSession),
                        Some(l) => {
                            let peer = l
                                .peer_of(&s.name)
                                .map(|p| p.name.clone())
                                .unwrap_or_default();
                            let to = m.head.to_path().unwrap_or_default();
                            let from = m.head.from_path().unwrap_or_default();
                            if !same_uris(&to, l.path_of(&peer)) {
                                bad.push(K::ToPathNotPeers {
                                    to_path: uris(&to),
                                    path: uris(l.path_of(&peer)),
                                    peer,
                                    link: None,
                                });
                            }
                            if !same_uris(&from, l.path_of(&s.name)) {
                                bad.push(K::FromPathNotOwn {
                                    from_path: uris(&from),
                                    entity: s.name.clone(),
                                    path: uris(l.path_of(&s.name)),
                                });
                            }
                        }
                    }
                    judged(&mut out, ev, bad, K::Binds { conn: a.conn_ev(c) });
                }
            }
        }
        // The passive side sends no request before the connection is bound.
        if let Some(s) = c.target_party.as_ref().filter(|s| a.subject(s)) {
            let bound_at = c.dirs[0]
                .msgs
                .iter()
                .find(|m| m.is_request())
                .map(|m| m.offset);
            if let Some(m) = c.dirs[1].msgs.iter().find(|m| m.is_request()) {
                let peer_first = c.dirs[0].msgs.iter().find(|m| m.is_request()).map(|m| m.t);
                if bound_at.is_none() || peer_first.is_some_and(|t| m.t < t) {
                    out.push(about(
                        Class::Fail,
                        a.msrp_ev(c, 1, m),
                        K::RequestBeforeBind {
                            entity: s.name.clone(),
                        },
                    ));
                }
            }
        }
    }
    if out.is_empty() {
        out.push(a.hidden("connections the SUT opens"));
    }
    out
}

fn link_reuse(a: &Analysis) -> Vec<Finding> {
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
        let target = format!("{host}:{port}");
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
        let conn_list: Vec<Cite> = all
            .iter()
            .filter_map(|&ci| a.obs.conns.get(ci))
            .map(|c| a.conn_ev(c))
            .collect();
        if reuse {
            // Reuse applies to an *open* connection: a new one is a fault only while an
            // earlier one towards the same place was still open (closes are recorded by the
            // harness end).
            let mut conns: Vec<&ConnObs> =
                all.iter().filter_map(|&ci| a.obs.conns.get(ci)).collect();
            conns.sort_by_key(|c| c.opened_at);
            let closed_at = |c: &ConnObs| c.dirs.iter().filter_map(|d| d.closed_at).min();
            let mut overlaps = Vec::new();
            for (k, c) in conns.iter().enumerate() {
                if let Some(open) = conns[..k]
                    .iter()
                    .find(|e| closed_at(e).is_none_or(|t| t > c.opened_at))
                {
                    overlaps.push(Overlap {
                        opened: a.conn_ev(c),
                        still_open: a.conn_ev(open),
                    });
                }
            }
            if overlaps.is_empty() {
                out.push(Finding::pass(K::ReuseShared {
                    entity: who,
                    sessions: names,
                    target,
                    conns: conn_list,
                }));
            } else {
                out.push(Finding::fail(K::NewConnectionWhileOpen {
                    entity: who,
                    sessions: names,
                    target,
                    overlaps,
                }));
            }
        } else if all.len() == sessions.len() && sessions.iter().all(|(_, c)| c.len() == 1) {
            out.push(Finding::pass(K::ConnectionPerSession {
                entity: who,
                target,
            }));
        } else {
            out.push(Finding::fail(K::SharedWithoutReuse {
                entity: who,
                sessions: names,
                target,
                conns: conn_list,
            }));
        }
    }
    if out.is_empty() {
        out.push(Finding::not_observable(K::NoSessionsToCompare));
    }
    out
}

// ---------------------------------------------------------------------------- signalling

fn sig_seq(a: &Analysis) -> Vec<Finding> {
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
            let sender = a.slot_sender(i, slot).name.clone();
            let leg = a.label(el);
            let msg = a.slot_msg(i, slot);
            let cause = a.observable_cause(i, slot);
            let cause_msg = cause.and_then(|(ci, cs)| a.slot_msg(ci, cs));
            match (msg, cause, cause_msg) {
                (Some(m), Some((ci, cs)), Some(cm)) if a.t(m) <= a.t(cm) => out.push(about(
                    Class::Fail,
                    a.sip_ev(m),
                    K::SentBeforeCause {
                        cause: cs,
                        cause_leg: a.label(&a.legs[ci]),
                        cause_msg: a.sip_ev(cm),
                    },
                )),
                (Some(m), _, _) => out.push(about(Class::Pass, a.sip_ev(m), K::Seen)),
                (None, _, _) if !required => {}
                (None, Some((ci, cs)), Some(cm)) => {
                    out.push(Finding::fail(K::NeverSentDespiteCause {
                        sender,
                        step: slot,
                        leg,
                        cause: cs,
                        cause_leg: a.label(&a.legs[ci]),
                        cause_msg: a.sip_ev(cm),
                    }))
                }
                (None, Some((ci, cs)), None) => out.push(Finding::inconc(K::NeverSentNoCause {
                    sender,
                    step: slot,
                    leg,
                    cause: cs,
                    cause_leg: a.label(&a.legs[ci]),
                })),
                (None, None, _) => out.push(Finding::fail(K::NeverSent {
                    sender,
                    step: slot,
                    leg,
                })),
            }
        }
    }
    if out.is_empty() {
        out.push(a.hidden("SIP messages the SUT sends"));
    }
    out
}

fn sig_cf_answer(a: &Analysis) -> Vec<Finding> {
    let x = party(a.topo, "x", Role::X);
    if !a.subject(&x) {
        return vec![Finding::not_observable(K::NotPlayedBySut {
            entity: "x".into(),
        })];
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
        return vec![Finding::inconc(K::NeverSent200Upstream)];
    };
    let first3 = l3
        .iter()
        .filter_map(|el| a.sleg(el).and_then(|l| l.ok))
        .min_by_key(|&i| a.t(i));
    let figure = a.ctx.variant.figure.n();
    // Without a pause the first 200-3 may reach x while x is still writing its INVITE3s and
    // 200-2: only a 200-3 that came well after INVITE2 discriminates "at once".
    let inv2 = a.sleg(l2).map(|l| a.t(l.invite));
    let discriminating = |f: usize| match inv2 {
        Some(t2) => a.t(f).saturating_sub(t2) > race_margin(a),
        None => true,
    };
    let ev = a.sip_ev(ok2);
    let finding = match (a.ctx.variant.x_answer(), first3) {
        (XAnswer::AtOnce, Some(f)) if a.t(f) < a.t(ok2) && discriminating(f) => about(
            Class::Fail,
            ev,
            K::CfAnswerLate {
                figure,
                first_200_3: a.sip_ev(f),
            },
        ),
        // The 200-3 came first, but too soon after INVITE2 to tell: say so, never "before".
        (XAnswer::AtOnce, Some(f)) if a.t(f) < a.t(ok2) => about(
            Class::Pass,
            ev,
            K::CfOrderNotJudged {
                figure,
                first_200_3: a.sip_ev(f),
                gap: Time(a.t(ok2) - a.t(f)),
                after_invite2: Time(inv2.map_or(Duration::ZERO, |t2| a.t(f).saturating_sub(t2))),
                margin: Time(race_margin(a)),
            },
        ),
        (XAnswer::AtOnce, _) => about(
            Class::Pass,
            ev,
            K::CfAnsweredAtOnce {
                figure,
                first_200_3: first3.map(|f| a.sip_ev(f)),
            },
        ),
        (XAnswer::AfterFirstMember, None) => {
            about(Class::Fail, ev, K::CfAnswerWithoutMember { figure })
        }
        (XAnswer::AfterFirstMember, Some(f)) if a.t(ok2) < a.t(f) => about(
            Class::Fail,
            ev,
            K::CfAnswerEarly {
                figure,
                first_200_3: a.sip_ev(f),
            },
        ),
        (XAnswer::AfterFirstMember, Some(f)) => about(
            Class::Pass,
            ev,
            K::CfAnsweredAfterMember {
                figure,
                first_200_3: a.sip_ev(f),
            },
        ),
    };
    vec![finding]
}

/// How far apart two events must be before their order says something about the SUT's
/// intent rather than about scheduling: half the discriminating pause, at least
/// [`MIN_MARGIN`]. A SUT process that is not scheduled for a while reads what queued up
/// meanwhile all at once: under a loaded run (32 cases on two cores, builds beside it) a
/// reference SUT read a 200 OK 92 ms late, together with the upstream ACK that came in
/// between, and its at-once ACK looked as if it had waited for the upstream one. Through a
/// SIP/IP core every message also takes an unrecorded hop whose queueing moves it by tens of
/// milliseconds (a 200 OK held 66 ms in the core).
fn race_margin(a: &Analysis) -> Duration {
    (a.ctx.pause / 2).max(MIN_MARGIN)
}

/// The least race margin (the discriminating pause cases have theirs: half of 200 ms).
const MIN_MARGIN: Duration = Duration::from_millis(100);

fn sig_ack(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    let timing = a.ctx.variant.ack_timing();
    for (i, el) in a.legs.iter().enumerate() {
        let s = &el.uac;
        if !matches!(s.role, Role::PfA | Role::X | Role::PfB) || !a.subject(s) || !a.visible(el) {
            continue;
        }
        let label = a.label(el);
        let Some(l) = a.sleg(el) else {
            out.push(Finding::inconc(K::NoDialog { leg: label }));
            continue;
        };
        let Some(ok) = l.ok else {
            out.push(Finding::inconc(K::No200 {
                leg: label,
                entity: s.name.clone(),
            }));
            continue;
        };
        let Some(ack) = l.ack else {
            out.push(Finding::fail(K::NeverAcked {
                entity: s.name.clone(),
                ok: a.sip_ev(ok),
                leg: label,
            }));
            continue;
        };
        let up = a.up_of(i).filter(|&u| a.visible(&a.legs[u]));
        let up_ack = up.and_then(|u| a.sleg(&a.legs[u])).and_then(|ul| ul.ack);
        let (t_ok, t_ack) = (a.t(ok), a.t(ack));
        let (ack_ev, ok_ev) = (a.sip_ev(ack), a.sip_ev(ok));
        // When the entity is known to have read the 200: not before it arrived, and not
        // before the first message the entity sent after it and before the upstream ACK (its
        // 200 upstream, say). A SUT process that was not scheduled for a while reads the 200
        // late, answers upstream, gets the upstream ACK at once and then ACKs: that order says
        // nothing about waiting for the upstream ACK.
        let read = up_ack.and_then(|u| {
            a.obs
                .sip
                .iter()
                .enumerate()
                .filter(|(_, m)| m.t > t_ok && m.t < a.t(u) && m.sender.as_ref() == Some(s))
                .min_by_key(|(_, m)| m.t)
                .map(|(i, _)| i)
        });
        let t_read = read.map_or(t_ok, |i| a.t(i));
        match (timing, up, up_ack) {
            (_, None, _) => out.push(about(
                Class::Pass,
                ack_ev,
                K::AckUpstreamHidden { ok: ok_ev },
            )),
            (AckTiming::On200, _, Some(u))
                if a.t(u) > t_read.saturating_add(race_margin(a)) && t_ack > a.t(u) =>
            {
                out.push(Finding::fail(K::AckWaitedForUpstream {
                    ack: ack_ev,
                    upstream_ack: a.sip_ev(u),
                    ok: ok_ev,
                }))
            }
            // After an upstream ACK that came within the margin of the 200: not "on the 200".
            (AckTiming::On200, _, Some(u)) if t_ack > a.t(u) => out.push(about(
                Class::Pass,
                ack_ev,
                K::AckOrderNotJudged {
                    ok: ok_ev,
                    upstream_ack: a.sip_ev(u),
                    read: read.map(|i| a.sip_ev(i)),
                    gap: Time(a.t(u).saturating_sub(t_read)),
                    margin: Time(race_margin(a)),
                },
            )),
            (AckTiming::On200, _, _) => {
                out.push(about(Class::Pass, ack_ev, K::AckOn200 { ok: ok_ev }))
            }
            (AckTiming::AfterUpstreamAck, _, Some(u)) if t_ack < a.t(u) => {
                out.push(Finding::fail(K::AckBeforeUpstream {
                    ack: ack_ev,
                    upstream_ack: a.sip_ev(u),
                }))
            }
            (AckTiming::AfterUpstreamAck, _, Some(u)) => out.push(about(
                Class::Pass,
                ack_ev,
                K::AckAfterUpstream {
                    upstream_ack: a.sip_ev(u),
                },
            )),
            (AckTiming::AfterUpstreamAck, _, None) => {
                out.push(Finding::fail(K::AckWithoutUpstream { ack: ack_ev }))
            }
        }
    }
    if out.is_empty() {
        out.push(a.hidden("downstream ACKs of a SUT middle entity"));
    }
    out
}

/// The Request-URI of the INVITEs towards x (client-a's INVITE1, pf-a's INVITE2): the group
/// URI for a pre-defined group, the conference-factory URI with a resource list for an ad-hoc
/// one (RFC 5366 §4).
fn group_request_uris(a: &Analysis) -> Vec<Finding> {
    let adhoc = a.ctx.variant.group == GroupKind::Adhoc;
    let want = if adhoc {
        &a.topo.factory
    } else {
        &a.topo.group
    };
    let mut out = Vec::new();
    for el in a
        .legs
        .iter()
        .filter(|el| matches!(el.link, Link::L1 | Link::L2))
    {
        if !a.visible(el) || !a.subject(&el.uac) {
            continue;
        }
        let Some(l) = a.sleg(el) else { continue };
        let ev = a.sip_ev(l.invite);
        let uri = l.request_uri.clone();
        if strip_uri(&uri) != strip_uri(want) {
            out.push(about(
                Class::Fail,
                ev,
                K::GroupRequestUriWrong {
                    uri,
                    want: want.clone(),
                    adhoc,
                },
            ));
            continue;
        }
        let listed = a
            .obs
            .sip
            .get(l.invite)
            .and_then(|s| s.msg.as_ref())
            .and_then(|m| m.resource_list().ok().flatten())
            .is_some();
        if adhoc && !listed {
            out.push(about(Class::Fail, ev, K::AdhocWithoutList { uri }));
        } else {
            out.push(about(Class::Pass, ev, K::GroupRequestUri { uri, adhoc }));
        }
    }
    out
}

fn sig_fanout(a: &Analysis) -> Vec<Finding> {
    let mut out = group_request_uris(a);
    let x = party(a.topo, "x", Role::X);
    if !a.subject(&x) {
        if out.is_empty() {
            out.push(Finding::not_observable(K::NotPlayedBySut {
                entity: "x".into(),
            }));
        }
        return out;
    }
    if !a.self_check && a.ctx.is_sut(Role::PfB) {
        out.push(a.hidden("INVITE3 (pf-b is the SUT's too)"));
        return out;
    }
    let l2 = a.legs.iter().find(|el| el.link == Link::L2);
    let mut cause = FanoutCause::WatchedUntil(Time(a.obs.end));
    if let Some(l2) = l2 {
        if a.visible(l2) {
            match a.sleg(l2) {
                None => {
                    out.push(Finding::inconc(K::NoInvite2));
                    return out;
                }
                Some(l) => cause = FanoutCause::AfterInvite2(a.sip_ev(l.invite)),
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
            [] => out.push(Finding::fail(K::NoInviteForMember {
                member: m.clone(),
                uri: member.uri.clone(),
                serving,
                cause: cause.clone(),
            })),
            [l] if l.uas.name != serving => out.push(about(
                Class::Fail,
                a.sip_ev(l.invite),
                K::InviteToWrongPfB {
                    member: m.clone(),
                    sent_to: l.uas.name.clone(),
                    serving,
                },
            )),
            [l] => out.push(about(Class::Pass, a.sip_ev(l.invite), K::Seen)),
            more => out.push(Finding::fail(K::DuplicateInvites {
                member: m.clone(),
                invites: more.iter().map(|l| a.sip_ev(l.invite)).collect(),
            })),
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
            out.push(about(
                Class::Fail,
                a.sip_ev(l.invite),
                K::NotAMember {
                    uri: l.request_uri.clone(),
                },
            ));
        }
    }
    if out.is_empty() {
        out.push(Finding::not_observable(K::NoMembers));
    }
    out
}

fn sig_b2bua(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut checked = 0usize;
    for s in &a.obs.sip {
        if !a.subject_opt(&s.sender) {
            continue;
        }
        let ev = a.sip_ev(s.index);
        // A message that does not parse is WIRE-SYNTAX's.
        let Some(m) = &s.msg else { continue };
        checked += 1;
        let mut bad = Vec::new();
        match m.via_branch() {
            None => bad.push(K::NoViaBranch),
            Some(b) if !b.starts_with("z9hG4bK") => bad.push(K::BadViaBranch {
                branch: b.to_string(),
            }),
            _ => {}
        }
        for h in ["From", "To", "Call-ID", "CSeq"] {
            if m.header(h).is_none() {
                bad.push(K::MissingHeader { header: h.into() });
            }
        }
        if let Some(method) = m.method() {
            if m.header("Max-Forwards").is_none() {
                bad.push(K::MissingHeader {
                    header: "Max-Forwards".into(),
                });
            }
            if m.from_tag().is_none() {
                bad.push(K::FromNoTag);
            }
            match m.cseq() {
                None => bad.push(K::CseqUnreadable),
                Some((_, cm)) if cm != *method => bad.push(K::CseqMethodMismatch {
                    cseq: cm.to_string(),
                    method: method.to_string(),
                }),
                _ => {}
            }
            if s.is_request("INVITE") && m.header("Contact").is_none() {
                bad.push(K::InviteNoContact);
            }
        } else if s.is_response("INVITE", 200..=299) && m.to_tag().is_none() {
            bad.push(K::OkNoToTag);
        }
        let cl = m.header("Content-Length").map(str::trim);
        match cl {
            None if s.transport.is_stream() => bad.push(K::NoContentLength),
            Some(v) if v.parse::<usize>().ok() != Some(m.body.len()) => {
                bad.push(K::ContentLengthWrong {
                    value: v.to_string(),
                    body: m.body.len(),
                })
            }
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
                            bad.push(K::AckCseq {
                                ack: n,
                                invite: inv_n,
                            });
                        }
                        if m.via_branch().is_some() && m.via_branch() == inv.via_branch() {
                            bad.push(K::AckReusesBranch);
                        }
                    }
                    if s.is_request("BYE") && n <= inv_n {
                        bad.push(K::ByeCseq {
                            bye: n,
                            invite: inv_n,
                        });
                    }
                }
            }
        }
        out.extend(bad.into_iter().map(|k| about(Class::Fail, ev.clone(), k)));
    }
    // Each leg its own dialog: no two dialogs share a Call-ID, and a B2BUA's tag and branch on
    // its downstream leg are not those of its upstream leg.
    let legs = &a.obs.legs;
    let sut_end = |x: &LegObs| a.subject(&x.uac) || a.subject(&x.uas);
    for (i, l) in legs.iter().enumerate() {
        for m in &legs[i + 1..] {
            if !(sut_end(l) || sut_end(m)) {
                continue;
            }
            if l.call_id == m.call_id {
                out.push(Finding::fail(K::CallIdReused {
                    call_id: l.call_id.clone(),
                    first: a.sip_ev(l.invite),
                    again: a.sip_ev(m.invite),
                }));
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
                out.push(Finding::fail(K::TagReused {
                    entity: b2bua.name.clone(),
                    tag: down.uac_tag.clone().unwrap_or_default(),
                    invite: a.sip_ev(down.invite),
                }));
            }
            if down.branch.is_some() && down.branch == up.branch {
                out.push(Finding::fail(K::BranchReused {
                    entity: b2bua.name.clone(),
                    invite: a.sip_ev(down.invite),
                }));
            }
        }
    }
    if checked > 0 && out.is_empty() {
        out.push(Finding::pass(K::SipValid { count: checked }));
    }
    if out.is_empty() {
        out.push(a.hidden("SIP messages the SUT sends"));
    }
    out
}

/// Behind a SIP/IP core (`run --core`): every SIP message an entity sends goes to the core;
/// its 2xx to an INVITE echoes the Record-Route the core added; its ACK and BYE carry the
/// dialog's route set (the 2xx's Record-Route, reversed for the UAC) as Route headers.
/// SIG-TLS: SIP over TLS where the case configured it; a `sips:` Request-URI only over TLS,
/// with a `sips:` Contact.
fn sig_tls(a: &Analysis) -> Vec<Finding> {
    use crate::codec::sip::Transport;
    let tls_case = a.ctx.variant.transport == Transport::Tls;
    let mut out = Vec::new();
    // Messages over TLS, per sending entity (one pass line each).
    let mut over_tls: BTreeMap<String, usize> = BTreeMap::new();
    for s in &a.obs.sip {
        let Some(sender) = s.sender.as_ref().filter(|p| a.subject(p)) else {
            continue;
        };
        let ev = a.sip_ev(s.index);
        let entity = sender.name.clone();
        let transport = s.transport.to_string();
        let mut failed = false;
        if tls_case && s.transport != Transport::Tls {
            failed = true;
            out.push(about(
                Class::Fail,
                ev.clone(),
                K::SipPlainWhereTls {
                    entity: entity.clone(),
                    transport: transport.clone(),
                },
            ));
        }
        if let Some(m) = &s.msg {
            let ruri = m.request_uri().unwrap_or_default();
            if crate::codec::sip::host::is_sips(ruri) {
                if s.transport != Transport::Tls && !tls_case {
                    failed = true;
                    out.push(about(
                        Class::Fail,
                        ev.clone(),
                        K::SipsOverPlain {
                            entity: entity.clone(),
                            uri: ruri.to_string(),
                            transport,
                        },
                    ));
                }
                // A request that opens a dialog names where it is reached (RFC 3261
                // §8.1.1.8); ACK, BYE and CANCEL need not carry a Contact.
                if let Some(c) = m
                    .contact_uri()
                    .filter(|c| !crate::codec::sip::host::is_sips(c))
                {
                    failed = true;
                    out.push(about(
                        Class::Fail,
                        ev.clone(),
                        K::ContactNotSips {
                            entity: entity.clone(),
                            contact: c,
                        },
                    ));
                }
            }
        }
        if !failed && s.transport == Transport::Tls {
            *over_tls.entry(entity).or_default() += 1;
        }
    }
    if tls_case {
        for (entity, count) in over_tls {
            out.push(Finding::pass(K::SipOverTls { entity, count }));
        }
    }
    out
}

fn sig_route(a: &Analysis) -> Vec<Finding> {
    let Some(core) = a.topo.core else {
        return vec![Finding::not_observable(K::NoCore)];
    };
    let mut out = Vec::new();
    let mut checked = 0usize;
    // The core's addresses (its own IP, or on an IP shared with the entities, e.g. ::1, its
    // listener and its connections to them), as the model tells them.
    let ls = crate::model::who::Listeners::new(a.topo);
    let ca = crate::model::who::CoreAddr::new(a.topo, &ls);
    for s in &a.obs.sip {
        if !a.subject_opt(&s.sender) {
            continue;
        }
        let Some(m) = &s.msg else { continue };
        let ev = a.sip_ev(s.index);
        checked += 1;
        // Recorded where it was sent (to the core) or where it arrived (from the core).
        let sent_to_core = ca.is(s.to, Some(s.from));
        if !sent_to_core && !ca.is(s.from, Some(s.to)) {
            out.push(about(Class::Fail, ev, K::BypassedCore { to: s.to, core }));
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
            out.push(about(Class::Fail, ev, K::NoRecordRouteEcho));
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
                out.push(about(Class::Fail, ev, K::WrongRouteSet { got, want }));
            }
        }
    }
    if out.is_empty() {
        out.push(Finding::pass(K::RoutedViaCore {
            count: checked,
            core,
        }));
    }
    out
}

fn sig_teardown(a: &Analysis) -> Vec<Finding> {
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
            let entity = s.name.clone();
            match l {
                None => out.push(Finding::inconc(K::NoDialog { leg: label.clone() })),
                Some(l) => {
                    let done = a.delivered_on(l, &s.name);
                    let up_bye = a
                        .observable_cause(i, Slot::Bye)
                        .filter(|(ci, cs)| *cs == Slot::Bye && *ci != i)
                        .map(|(ci, _)| (ci, a.slot_msg(ci, Slot::Bye)));
                    match (a.slot_msg(i, Slot::Bye), s.role) {
                        (Some(b), _) if done.is_some_and(|d| a.t(b) < d) => out.push(about(
                            Class::Fail,
                            a.sip_ev(b),
                            K::ByeBeforeDelivery {
                                leg: label.clone(),
                                acknowledged: Time(done.unwrap_or_default()),
                            },
                        )),
                        (Some(b), _) => out.push(about(Class::Pass, a.sip_ev(b), K::Seen)),
                        (None, Role::ClientA) => match done {
                            Some(d) => out.push(Finding::fail(K::NoByeAfterDelivery {
                                entity,
                                leg: label.clone(),
                                acknowledged: Time(d),
                            })),
                            None => out.push(Finding::inconc(K::ContentNeverAcknowledged {
                                leg: label.clone(),
                            })),
                        },
                        (None, _) => match up_bye {
                            Some((ci, Some(ub))) => out.push(Finding::fail(K::ByeNotPropagated {
                                entity,
                                leg: label.clone(),
                                upstream: a.label(&a.legs[ci]),
                                bye: a.sip_ev(ub),
                            })),
                            Some((ci, None)) => out.push(Finding::inconc(K::NoUpstreamBye {
                                leg: label.clone(),
                                upstream: a.label(&a.legs[ci]),
                            })),
                            None => out.push(Finding::fail(K::NeverSentBye {
                                entity,
                                leg: label.clone(),
                            })),
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
                    Some(ok) if a.obs.sip[ok].sender == receiver => out.push(about(
                        Class::Pass,
                        a.sip_ev(ok),
                        K::ByeAnswered { bye: a.sip_ev(b) },
                    )),
                    _ => out.push(about(Class::Fail, a.sip_ev(b), K::ByeUnanswered)),
                }
            }
        }
        // Links released after the session ended (either side may close). Closes are
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
                        out.push(about(
                            Class::Fail,
                            a.conn_ev(c),
                            K::LinkNotClosed { leg: label.clone() },
                        ));
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

// ---------------------------------------------------------------------------- exceptions

/// The status code of SIP message `i`, when it is a response.
fn code_of(a: &Analysis, i: usize) -> Option<u16> {
    match a.obs.sip.get(i).and_then(|s| s.kind.as_ref()) {
        Some(crate::model::SipKind::Response { code, .. }) => Some(*code),
        _ => None,
    }
}

/// SIG-NON2XX-ACK: every final non-2xx to an INVITE the SUT sent is ACKed by it on that hop,
/// with the INVITE's branch (found by the model) and CSeq number and the response's To tag.
fn sig_non2xx_ack(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    for l in &a.obs.legs {
        if !a.subject(&l.uac) {
            continue;
        }
        let Some(fi) = l.final_response else { continue };
        if code_of(a, fi).is_none_or(|c| c < 300) || l.ok.is_some() {
            continue;
        }
        let response = a.sip_ev(fi);
        // Behind a stateful SIP/IP core the ACK ends at the core (which ACKs downstream
        // itself): the SUT's ACK is on no hop the harness records.
        if l.failure_ack.is_none() && a.topo.core.is_some() && !a.self_check {
            out.push(a.hidden("the SUT's ACK of a final non-2xx (it ends at the SIP/IP core)"));
            continue;
        }
        let Some(ai) = l.failure_ack else {
            out.push(about(
                Class::Fail,
                response.clone(),
                K::Non2xxNotAcked {
                    response,
                    entity: l.uac.name.clone(),
                },
            ));
            continue;
        };
        let msg = |i: usize| a.obs.sip.get(i).and_then(|s| s.msg.as_ref());
        let mut wrong = Vec::new();
        let inv_cseq = msg(l.invite).and_then(|m| m.cseq()).map(|(n, _)| n);
        let ack_cseq = msg(ai).and_then(|m| m.cseq()).map(|(n, _)| n);
        if inv_cseq != ack_cseq {
            wrong.push(format!(
                "CSeq {} instead of the INVITE's {}",
                ack_cseq.map_or("(none)".into(), |n| n.to_string()),
                inv_cseq.map_or("(none)".into(), |n| n.to_string())
            ));
        }
        let resp_tag = msg(fi).and_then(|m| m.to_tag());
        let ack_tag = msg(ai).and_then(|m| m.to_tag());
        if resp_tag != ack_tag {
            wrong.push(format!(
                "To tag {} instead of the response's {}",
                ack_tag.as_deref().unwrap_or("(none)"),
                resp_tag.as_deref().unwrap_or("(none)")
            ));
        }
        let ack = a.sip_ev(ai);
        if wrong.is_empty() {
            out.push(about(
                Class::Pass,
                ack.clone(),
                K::Non2xxAcked { response, ack },
            ));
        } else {
            out.push(about(
                Class::Fail,
                ack.clone(),
                K::Non2xxAckWrong {
                    ack,
                    what: wrong.join("; "),
                },
            ));
        }
    }
    if out.is_empty() {
        out.push(Finding::not_observable(K::NoNon2xx));
    }
    out
}

/// SIG-DECLINE: a member's decline (the model's [`crate::model::scenario::Scenario`]) is
/// relayed by its pf-b, and x goes on with the others.
fn sig_decline(a: &Analysis) -> Vec<Finding> {
    let sc = &a.obs.scenario;
    if sc.declined.is_empty() {
        return vec![Finding::not_observable(K::NoDecline)];
    }
    let mut out = Vec::new();
    let x = party(a.topo, "x", Role::X);
    let x_legs = |m: &str| -> Vec<&LegObs> {
        a.obs
            .legs
            .iter()
            .filter(|l| l.uac.role == Role::X && l.uas.role == Role::PfB)
            .filter(|l| member_of(a.topo, l).as_deref() == Some(m))
            .collect()
    };
    // pf-b answers x's INVITE for a declining member with a final non-2xx.
    // A member that never answered: SIG-NO-ANSWER judges its pf-b.
    for (m, d) in sc.declined.iter().filter(|(_, d)| !d.no_answer) {
        let own = a.obs.legs.get(d.leg);
        if own.is_none_or(|l| l.uas.role != Role::ClientB) {
            continue; // Read off x's leg: the member's own answer is not on the wire.
        }
        let Some(pfb) = a.topo.pf_b_serving(m) else {
            continue;
        };
        let pfb = party(a.topo, &pfb.name, Role::PfB);
        if !a.subject(&pfb) {
            continue;
        }
        let decline = a.sip_ev(d.response);
        let legs = x_legs(m);
        let Some(l3) = legs.first() else {
            if !a.self_check && a.ctx.is_sut(Role::X) {
                out.push(a.hidden("x's INVITE3 for a declined member (x is the SUT's too)"));
            }
            continue;
        };
        match (l3.ok, l3.final_response) {
            (Some(ok), _) => out.push(about(
                Class::Fail,
                a.sip_ev(ok),
                K::DeclineAccepted {
                    member: m.clone(),
                    decline,
                    response: a.sip_ev(ok),
                },
            )),
            (None, Some(f)) => out.push(about(
                Class::Pass,
                a.sip_ev(f),
                K::DeclineRelayed {
                    member: m.clone(),
                    code: code_of(a, f).unwrap_or(0),
                    response: a.sip_ev(f),
                },
            )),
            (None, None) => out.push(Finding::fail(K::DeclineNotRelayed {
                member: m.clone(),
                decline,
                watched: Time(a.obs.end),
            })),
        }
    }
    // x: no 200-2 on a decline, the remaining members kept until the upstream BYE.
    let l2 = a
        .legs
        .iter()
        .find(|el| el.link == Link::L2)
        .filter(|el| a.visible(el))
        .and_then(|el| a.sleg(el));
    if a.subject(&x) {
        let mine: Vec<&LegObs> = a.obs.legs.iter().filter(|l| l.uac == x).collect();
        let first = |ok: bool| {
            mine.iter()
                .filter_map(|l| {
                    if ok {
                        l.ok
                    } else {
                        l.final_response
                            .filter(|&f| code_of(a, f).is_some_and(|c| c >= 300))
                    }
                })
                .min_by_key(|&i| a.t(i))
        };
        let (first_ok, first_decline) = (first(true), first(false));
        if let (Some(ok2), Some(dec)) = (l2.and_then(|l| l.ok), first_decline) {
            if a.ctx.variant.x_answer() == XAnswer::AfterFirstMember && !mine.is_empty() {
                let early = first_ok.is_none_or(|f| a.t(ok2) < a.t(f));
                if early && a.t(ok2) >= a.t(dec) {
                    out.push(about(
                        Class::Fail,
                        a.sip_ev(ok2),
                        K::AnsweredOnDecline {
                            answer: a.sip_ev(ok2),
                            decline: a.sip_ev(dec),
                        },
                    ));
                } else if !early {
                    out.push(about(
                        Class::Pass,
                        a.sip_ev(ok2),
                        K::WaitedPastDecline {
                            answer: a.sip_ev(ok2),
                        },
                    ));
                }
            }
        }
        if let Some(l2) = l2 {
            let upstream_bye = l2
                .bye
                .filter(|&b| a.obs.sip.get(b).and_then(|s| s.sender.as_ref()) == Some(&l2.uac))
                .map(|b| a.t(b));
            remaining_members_kept(a, &x, upstream_bye, &mut out);
        } else if !a.self_check {
            out.push(a.hidden("x's upstream leg (pf-a is the SUT's too)"));
        }
    }
    // No link for a declined session.
    for m in sc.declined.keys() {
        let before = out.len();
        let legs = a.obs.legs.iter().filter(|l| {
            l.ok.is_none()
                && (l.uas.name == *m
                    || (l.link == Some(Link::L3)
                        && member_of(a.topo, l).as_deref() == Some(m.as_str())))
        });
        for l in legs {
            for &ci in &l.conns {
                let Some(c) = a.obs.conns.get(ci) else {
                    continue;
                };
                if a.subject_opt(&c.opener_party) {
                    out.push(about(
                        Class::Fail,
                        a.conn_ev(c),
                        K::LinkForDeclinedLeg {
                            member: m.clone(),
                            conn: a.conn_ev(c),
                        },
                    ));
                }
            }
        }
        for c in a.links() {
            if c.target_party.as_ref().is_some_and(|p| p.name == *m)
                && a.subject_opt(&c.opener_party)
            {
                out.push(about(
                    Class::Fail,
                    a.conn_ev(c),
                    K::LinkForDeclinedLeg {
                        member: m.clone(),
                        conn: a.conn_ev(c),
                    },
                ));
            }
        }
        // The member's own hop is on the wire: its pf-b, when the SUT's, was free to open.
        let own_visible = sc
            .declined
            .get(m)
            .and_then(|d| a.obs.legs.get(d.leg))
            .is_some_and(|l| l.uas.role == Role::ClientB);
        if let Some(pfb) = a.topo.pf_b_serving(m) {
            let pfb = party(a.topo, &pfb.name, Role::PfB);
            if out.len() == before && own_visible && a.subject(&pfb) {
                out.push(Finding::pass(K::NoLinkForDeclined {
                    member: m.clone(),
                    entity: pfb.name.clone(),
                }));
            }
        }
    }
    if out.is_empty() {
        out.push(Finding::not_observable(K::NotPlayedBySut {
            entity: "x or the declining member's pf-b".into(),
        }));
    }
    out
}

/// SIG-NO-ANSWER: the SUT's pf-b gives up on a member that never answered its INVITE4, with
/// a final non-2xx to x's INVITE3 within the profile's `no-answer-wait-ms`.
fn sig_no_answer(a: &Analysis) -> Vec<Finding> {
    let sc = &a.obs.scenario;
    let silent: Vec<_> = sc.declined.iter().filter(|(_, d)| d.no_answer).collect();
    if silent.is_empty() {
        return vec![Finding::not_observable(K::NoUnanswered)];
    }
    let wait = a.ctx.holds.no_answer_wait_ms.map_or(
        crate::entity::holds::DEFAULT_NO_ANSWER_WAIT,
        Duration::from_millis,
    );
    let mut out = Vec::new();
    for (m, d) in silent {
        // The scenario is the harness's member going silent; a client-b of the SUT's that
        // answers nothing breaks RFC 3261 §13.3.1 (a UAS answers every INVITE) and fails.
        if !a.self_check && a.ctx.is_sut(Role::ClientB) {
            out.push(about(
                Class::Fail,
                a.sip_ev(d.response),
                K::MemberNeverAnswered {
                    member: m.clone(),
                    invite: a.sip_ev(d.response),
                },
            ));
            continue;
        }
        let Some(pfb) = a.topo.pf_b_serving(m) else {
            continue;
        };
        let pfb = party(a.topo, &pfb.name, Role::PfB);
        if !a.subject(&pfb) {
            continue;
        }
        let invite = a.sip_ev(d.response);
        let l3 = a
            .obs
            .legs
            .iter()
            .filter(|l| l.uac.role == Role::X && l.uas.role == Role::PfB)
            .find(|l| member_of(a.topo, l).as_deref() == Some(m.as_str()));
        let Some(l3) = l3 else {
            if !a.self_check && a.ctx.is_sut(Role::X) {
                out.push(a.hidden("x's INVITE3 for the silent member (x is the SUT's too)"));
            }
            continue;
        };
        match (l3.ok, l3.final_response) {
            (Some(ok), _) => out.push(about(
                Class::Fail,
                a.sip_ev(ok),
                K::UnansweredAccepted {
                    member: m.clone(),
                    invite,
                    response: a.sip_ev(ok),
                },
            )),
            (None, Some(f)) => {
                let after = a.t(f).saturating_sub(a.t(d.response));
                let after_ms = after.as_millis() as u64;
                let k = if after <= wait {
                    K::GaveUpOnMember {
                        member: m.clone(),
                        code: code_of(a, f).unwrap_or(0),
                        response: a.sip_ev(f),
                        after_ms,
                    }
                } else {
                    K::GaveUpLate {
                        member: m.clone(),
                        response: a.sip_ev(f),
                        after_ms,
                        wait_ms: wait.as_millis() as u64,
                    }
                };
                let class = if after <= wait {
                    Class::Pass
                } else {
                    Class::Fail
                };
                out.push(about(class, a.sip_ev(f), k));
            }
            (None, None) => out.push(about(
                Class::Fail,
                invite.clone(),
                K::NeverGaveUp {
                    member: m.clone(),
                    invite,
                    watched: Time(a.obs.end),
                },
            )),
        }
    }
    if out.is_empty() {
        out.push(Finding::not_observable(K::NotPlayedBySut {
            entity: "the silent member's pf-b".into(),
        }));
    }
    out
}

/// SIG-ALL-DECLINE: once every member declined, each middle entity of the SUT ends its up leg
/// (a final non-2xx where it had not answered, else a BYE of its own).
fn sig_all_decline(a: &Analysis) -> Vec<Finding> {
    if !a.obs.scenario.all_declined(&a.members) {
        return vec![Finding::not_observable(K::NotAllDeclined)];
    }
    let mut out = Vec::new();
    for (role, name, up_role) in [
        (Role::X, "x", Role::PfA),
        (Role::PfA, "pf-a", Role::ClientA),
    ] {
        let me = party(a.topo, name, role);
        if !a.subject(&me) {
            continue;
        }
        if !a.self_check && a.ctx.is_sut(up_role) {
            out.push(a.hidden(&format!("{name}'s upstream leg")));
            continue;
        }
        let Some(up) = a
            .obs
            .legs
            .iter()
            .find(|l| l.uas == me && l.uac.role == up_role)
        else {
            continue; // No INVITE reached it: nothing to end.
        };
        let Some(ok) = up.ok else {
            match up.final_response {
                Some(f) => out.push(about(
                    Class::Pass,
                    a.sip_ev(f),
                    K::UpstreamRefused {
                        entity: name.into(),
                        response: a.sip_ev(f),
                    },
                )),
                None => out.push(about(
                    Class::Fail,
                    a.sip_ev(up.invite),
                    K::UpstreamLeftOpen {
                        entity: name.into(),
                        answer: a.sip_ev(up.invite),
                        watched: Time(a.obs.end),
                    },
                )),
            }
            continue;
        };
        let bye_from = |p: &Party| {
            up.messages.iter().copied().find(|&i| {
                let s = &a.obs.sip[i];
                s.is_request("BYE") && s.sender.as_ref() == Some(p)
            })
        };
        match (bye_from(&me), bye_from(&up.uac)) {
            (Some(b), _) => out.push(about(
                Class::Pass,
                a.sip_ev(b),
                K::UpstreamEndedWithBye {
                    entity: name.into(),
                    bye: a.sip_ev(b),
                },
            )),
            // Its upstream ended the call first: a race with its own BYE unless that came
            // well after the last of its downstream ended (and its 2xx was ACKed).
            (None, Some(b)) => {
                let downs_ended = a
                    .obs
                    .legs
                    .iter()
                    .filter(|l| l.uac == me)
                    .filter_map(|l| {
                        l.messages.iter().copied().find(|&i| {
                            let s = &a.obs.sip[i];
                            (s.is_response("INVITE", 300..=699) || s.is_request("BYE"))
                                && s.sender.as_ref() == Some(&l.uas)
                        })
                    })
                    .map(|i| a.t(i))
                    .chain(a.obs.scenario.declined.values().map(|d| a.t(d.response)))
                    .chain(up.ack.map(|i| a.t(i)))
                    .max()
                    .unwrap_or_default();
                if a.t(b) > downs_ended + race_margin(a) {
                    out.push(about(
                        Class::Fail,
                        a.sip_ev(ok),
                        K::UpstreamLeftOpen {
                            entity: name.into(),
                            answer: a.sip_ev(ok),
                            watched: Time(a.t(b)),
                        },
                    ));
                }
            }
            (None, None) => out.push(about(
                Class::Fail,
                a.sip_ev(ok),
                K::UpstreamLeftOpen {
                    entity: name.into(),
                    answer: a.sip_ev(ok),
                    watched: Time(a.obs.end),
                },
            )),
        }
    }
    // client-a, when its call is ended for it, answers the BYE (RFC 3261 §15.1.2); when it is
    // refused, it takes the refusal: no BYE in the dialog that never was, no link.
    let ca = party(a.topo, "client-a", Role::ClientA);
    if a.subject(&ca) {
        for l in a.obs.legs.iter().filter(|l| l.uac == ca && l.ok.is_none()) {
            let Some(f) = l
                .final_response
                .filter(|&f| code_of(a, f).is_some_and(|c| c >= 300))
            else {
                continue;
            };
            let bye = l.messages.iter().copied().find(|&i| {
                let s = &a.obs.sip[i];
                s.is_request("BYE") && s.sender.as_ref() == Some(&ca)
            });
            let link = a
                .links()
                .find(|c| c.opener_party.as_ref() == Some(&ca) && c.opened_at > a.t(f));
            match (bye, link) {
                (Some(b), _) => out.push(about(
                    Class::Fail,
                    a.sip_ev(b),
                    K::RefusalIgnored {
                        entity: "client-a".into(),
                        response: a.sip_ev(f),
                        after: a.sip_ev(b),
                    },
                )),
                (None, Some(c)) => out.push(about(
                    Class::Fail,
                    a.conn_ev(c),
                    K::RefusalIgnored {
                        entity: "client-a".into(),
                        response: a.sip_ev(f),
                        after: a.conn_ev(c),
                    },
                )),
                // About its INVITE: what the SUT sent and what was refused.
                (None, None) => out.push(about(
                    Class::Pass,
                    a.sip_ev(l.invite),
                    K::RefusalTaken {
                        entity: "client-a".into(),
                        response: a.sip_ev(f),
                    },
                )),
            }
        }
        for l in a.obs.legs.iter().filter(|l| l.uac == ca) {
            let Some(b) = l.messages.iter().copied().find(|&i| {
                let s = &a.obs.sip[i];
                s.is_request("BYE") && s.sender.as_ref() == Some(&l.uas)
            }) else {
                continue;
            };
            let answered = l.messages.iter().copied().find(|&i| {
                let s = &a.obs.sip[i];
                s.is_response("BYE", 200..=299) && s.sender.as_ref() == Some(&ca)
            });
            out.push(match answered {
                Some(r) => about(
                    Class::Pass,
                    a.sip_ev(b),
                    K::ByeAnswered { bye: a.sip_ev(r) },
                ),
                None => about(Class::Fail, a.sip_ev(b), K::ByeUnanswered),
            });
        }
    }
    if out.is_empty() {
        out.push(Finding::not_observable(K::NotPlayedBySut {
            entity: "client-a, pf-a or x".into(),
        }));
    }
    out
}

/// MEDIA-ABORT: once the sender aborted its message, every relay of the SUT ends its copy
/// with `#` on each visible downstream link, and none ends it with `$`.
fn media_abort(a: &Analysis) -> Vec<Finding> {
    if a.obs.scenario.aborted.is_none() {
        return vec![Finding::not_observable(K::NoAbort)];
    }
    let mut out = Vec::new();
    for m in down_msgs(a.obs).filter(|m| a.subject(m.snd) && middle(m.snd)) {
        let (c, d, entity) = (m.c, m.d, m.snd.name.clone());
        let ended = |f: Flag| m.chunks.iter().rev().find(|x| x.flag == Some(f));
        out.push(if let Some(x) = ended(Flag::End) {
            let chunk = a.msrp_ev(c, d, x);
            about(
                Class::Fail,
                chunk.clone(),
                K::AbortForwardedAsEnd { entity, chunk },
            )
        } else if let Some(x) = ended(Flag::Abort) {
            let chunk = a.msrp_ev(c, d, x);
            about(
                Class::Pass,
                chunk.clone(),
                K::AbortForwarded { entity, chunk },
            )
        } else {
            let content = content_ev(c, d, m.k);
            about(
                Class::Fail,
                content.clone(),
                K::AbortNotForwarded { entity, content },
            )
        });
    }
    if out.is_empty() {
        out.push(a.hidden("content a relay of the SUT sends downstream"));
    }
    out
}

/// The downstream direction of a link: (the content's sender, its receiver), when the
/// receiver is further down the chain.
fn downstream(c: &ConnObs, d: usize) -> Option<(&Party, &Party)> {
    let (s, r) = (c.sender(d)?, c.sender(1 - d)?);
    (r.role > s.role).then_some((s, r))
}

/// A relaying entity: pf-a, x or pf-b.
fn middle(p: &Party) -> bool {
    matches!(p.role, Role::PfA | Role::X | Role::PfB)
}

/// One message a link carries downstream, as the per-message checks walk them (MEDIA-ABORT,
/// MEDIA-REPORT, MEDIA-NO-RESPONSE): the link and direction, the hop's sender and receiver,
/// the content and its chunks in order.
struct DownMsg<'o> {
    c: &'o ConnObs,
    d: usize,
    snd: &'o Party,
    rcv: &'o Party,
    k: &'o ContentObs,
    chunks: Vec<&'o MsrpObs>,
}

/// Every message carried downstream on the links on the wire, link by link.
fn down_msgs(obs: &Observation) -> impl Iterator<Item = DownMsg<'_>> {
    obs.conns.iter().filter(|c| c.is_link()).flat_map(|c| {
        (0..2).flat_map(move |d| {
            let hop = downstream(c, d);
            let contents = hop.map_or(&[][..], |_| &c.dirs[d].contents[..]);
            contents.iter().filter_map(move |k| {
                let (snd, rcv) = hop?;
                let chunks = k.chunks.iter().filter_map(|&i| c.dirs[d].msgs.get(i));
                Some(DownMsg {
                    c,
                    d,
                    snd,
                    rcv,
                    k,
                    chunks: chunks.collect(),
                })
            })
        })
    })
}

/// The success REPORTs for `message_id` in direction `d` of `c`, in order.
fn success_reports<'c>(c: &'c ConnObs, d: usize, message_id: &str) -> Vec<&'c MsrpObs> {
    c.dirs[d]
        .msgs
        .iter()
        .filter(|r| r.head.method() == Some("REPORT") && r.head.message_id() == Some(message_id))
        .filter(|r| {
            r.head
                .header("Status")
                .is_some_and(|v| v.trim().starts_with("000 200"))
        })
        .collect()
}

/// Octets of `1..=total` that the REPORTs' Byte-Ranges cover together.
fn covered(reports: &[&MsrpObs], total: u64) -> u64 {
    let mut ranges: Vec<(u64, u64)> = reports
        .iter()
        .filter_map(|r| r.head.byte_range().and_then(|b| b.ok()))
        .map(|b| (b.start.max(1), b.end.unwrap_or(total).min(total)))
        .filter(|(s, e)| s <= e)
        .collect();
    ranges.sort_unstable();
    let (mut n, mut upto) = (0u64, 0u64);
    for (s, e) in ranges {
        let s = s.max(upto + 1);
        if s <= e {
            n += e - s + 1;
            upto = e;
        }
    }
    n
}

/// MEDIA-REPORT: where the sender asked for success REPORTs (the model's `reports`), every
/// receiver of the SUT reports the whole message delivered (RFC 4975 §7.1.2), a middle entity
/// of the SUT asks downstream what its upstream asked, and, with `report-timing:
/// after-delivery`, reports only after each visible downstream hop did.
fn media_report(a: &Analysis) -> Vec<Finding> {
    use crate::codec::msrp::ReportRequest;
    if !a.obs.scenario.reports.success {
        return vec![Finding::not_observable(K::NoReportAsked)];
    }
    let mut out = Vec::new();
    for m in down_msgs(a.obs).filter(|m| m.k.complete) {
        let (c, d, k, snd, rcv) = (m.c, m.d, m.k, m.snd, m.rcv);
        let Some(&first) = m.chunks.first() else {
            continue;
        };
        let asked = ReportRequest::of(&first.head).success;
        if a.subject(snd) && middle(snd) {
            let (entity, chunk) = (snd.name.clone(), a.msrp_ev(c, d, first));
            out.push(if asked {
                about(
                    Class::Pass,
                    chunk.clone(),
                    K::ReportAskedDownstream { entity, chunk },
                )
            } else {
                about(
                    Class::Fail,
                    chunk.clone(),
                    K::ReportNotAskedDownstream { entity, chunk },
                )
            });
        }
        if !asked || !a.subject(rcv) {
            continue;
        }
        let total = k.total.unwrap_or(k.received);
        let reports = success_reports(c, 1 - d, &k.message_id);
        let Some(&last) = reports.last() else {
            let content = content_ev(c, d, k);
            out.push(about(
                Class::Fail,
                content.clone(),
                K::ReportMissing {
                    entity: rcv.name.clone(),
                    content,
                },
            ));
            continue;
        };
        let report = a.msrp_ev(c, 1 - d, last);
        let n = covered(&reports, total);
        if n < total {
            out.push(about(
                Class::Fail,
                report.clone(),
                K::ReportPartial {
                    entity: rcv.name.clone(),
                    report,
                    covered: n,
                    total,
                },
            ));
            continue;
        }
        out.push(about(
            Class::Pass,
            report.clone(),
            K::ReportCovers {
                entity: rcv.name.clone(),
                report: report.clone(),
            },
        ));
        // After delivery: no earlier than each visible downstream hop's report of the message
        // this entity relayed.
        if !middle(rcv) || a.ctx.report_timing != ReportTiming::AfterDelivery {
            continue;
        }
        // The downstream hops of the same session: a pf-b's call is one member's.
        let member = |m: &MsrpObs| {
            m.leg
                .and_then(|l| a.obs.legs.get(l))
                .and_then(|l| member_of(a.topo, l))
        };
        let up_member = member(first);
        for dm in down_msgs(a.obs).filter(|dm| dm.snd.name == rcv.name) {
            if up_member.is_some() && dm.chunks.first().and_then(|&f| member(f)) != up_member {
                continue;
            }
            let kind = match success_reports(dm.c, 1 - dm.d, &dm.k.message_id).last() {
                Some(&down) if last.t < down.t => K::ReportBeforeDelivery {
                    entity: rcv.name.clone(),
                    report: report.clone(),
                    downstream: a.msrp_ev(dm.c, 1 - dm.d, down),
                },
                // Relayed whole and never reported: an upstream that ends its session on the
                // REPORT (client-a does) tears the downstream hop down before it could report.
                None if dm.k.complete => K::ReportWithoutDelivery {
                    entity: rcv.name.clone(),
                    report: report.clone(),
                    downstream: content_ev(dm.c, dm.d, dm.k),
                },
                _ => continue,
            };
            out.push(about(Class::Fail, report.clone(), kind));
        }
    }
    if out.is_empty() {
        out.push(a.hidden("content with Success-Report: yes that the SUT receives or relays"));
    }
    out
}

/// MEDIA-NO-RESPONSE: where the sender asked for no responses (`Failure-Report: no`), no
/// receiver of the SUT answers those SENDs, and a middle entity of the SUT asks the same
/// downstream (RFC 4975 §7.1.1, §7.1.2).
fn media_no_response(a: &Analysis) -> Vec<Finding> {
    use crate::codec::msrp::ReportRequest;
    if !a.obs.scenario.reports.failure_no {
        return vec![Finding::not_observable(K::NoFailureReportNo)];
    }
    let mut out = Vec::new();
    for m in down_msgs(a.obs) {
        let (c, d, snd, rcv) = (m.c, m.d, m.snd, m.rcv);
        let Some(&first) = m.chunks.first() else {
            continue;
        };
        let asked = ReportRequest::of(&first.head).failure_no;
        if a.subject(snd) && middle(snd) {
            let (entity, chunk) = (snd.name.clone(), a.msrp_ev(c, d, first));
            out.push(if asked {
                let kind = K::FailureReportNoAskedDownstream {
                    entity,
                    chunk: chunk.clone(),
                };
                about(Class::Pass, chunk, kind)
            } else {
                let kind = K::FailureReportNoNotAsked {
                    entity,
                    chunk: chunk.clone(),
                };
                about(Class::Fail, chunk, kind)
            });
        }
        if !a.subject(rcv) {
            continue;
        }
        let mut answered = false;
        for x in m
            .chunks
            .iter()
            .filter(|x| ReportRequest::of(&x.head).failure_no)
        {
            if let Some(r) = c.dirs[1 - d]
                .msgs
                .iter()
                .find(|r| !r.is_request() && r.head.tid == x.head.tid)
            {
                answered = true;
                let response = a.msrp_ev(c, 1 - d, r);
                out.push(about(
                    Class::Fail,
                    response.clone(),
                    K::ResponseDespiteFailureReportNo {
                        entity: rcv.name.clone(),
                        response,
                    },
                ));
            }
        }
        if asked && !answered {
            let content = content_ev(c, d, m.k);
            out.push(about(
                Class::Pass,
                content.clone(),
                K::NoResponseAsAsked {
                    entity: rcv.name.clone(),
                    content,
                },
            ));
        }
    }
    if out.is_empty() {
        out.push(a.hidden("content with Failure-Report: no that the SUT receives or relays"));
    }
    out
}

/// SIG-LEAVE: a member that left mid-transfer (the model's `left`) is released by its pf-b —
/// its BYE answered, or, after its link closed without one, a BYE sent to it — and the
/// release goes on up to x (pf-b's leg for that member ends with pf-b's BYE); x keeps the
/// other members until the upstream BYE.
fn sig_leave(a: &Analysis) -> Vec<Finding> {
    use crate::model::scenario::LeftBy;
    let sc = &a.obs.scenario;
    if sc.left.is_empty() {
        return vec![Finding::not_observable(K::NoLeave)];
    }
    let mut out = Vec::new();
    let first_from = |l: &LegObs, p: &Party, after: Duration, bye: bool| {
        l.messages.iter().copied().find(|&i| {
            let s = &a.obs.sip[i];
            let what = if bye {
                s.is_request("BYE")
            } else {
                s.is_response("BYE", 200..=299)
            };
            what && s.sender.as_ref() == Some(p) && s.t >= after
        })
    };
    for (m, left) in &sc.left {
        let Some(l4) = a.obs.legs.get(left.leg) else {
            continue;
        };
        let pfb = l4.uac.clone();
        if !a.subject(&pfb) {
            continue;
        }
        // Released: the member's BYE answered, or a BYE sent to it once its link closed —
        // before the call's end reached pf-b (x's BYE for the member), not as part of it.
        let l3 = a.obs.legs.iter().find(|l| {
            l.uas == pfb
                && l.uac.role == Role::X
                && member_of(a.topo, l).as_deref() == Some(m.as_str())
        });
        let call_end = l3
            .and_then(|l| first_from(l, &l.uac, Duration::ZERO, true))
            .map(|b| a.t(b));
        let released = match left.by {
            LeftBy::Bye(b) => first_from(l4, &pfb, a.t(b), false).map(|r| (b, r)),
            LeftBy::Close(_) => first_from(l4, &pfb, left.t, true).map(|r| (r, r)),
        }
        .filter(|&(_, r)| call_end.is_none_or(|t| a.t(r) < t));
        let cause = match left.by {
            LeftBy::Bye(b) => a.sip_ev(b),
            LeftBy::Close(c) => a.conn_ev(&a.obs.conns[c]),
        };
        let Some((_, r)) = released else {
            out.push(about(
                Class::Fail,
                cause.clone(),
                K::LeftMemberNotReleased {
                    member: m.clone(),
                    entity: pfb.name.clone(),
                    cause,
                    watched: Time(a.obs.end),
                },
            ));
            continue;
        };
        out.push(about(
            Class::Pass,
            a.sip_ev(r),
            K::LeftMemberReleased {
                member: m.clone(),
                entity: pfb.name.clone(),
                by: a.sip_ev(r),
            },
        ));
        // On up to x: pf-b ends its leg for the member.
        match l3 {
            None if !a.self_check && a.ctx.is_sut(Role::X) => {
                out.push(a.hidden("pf-b's leg from x (x is the SUT's too)"));
            }
            None => {}
            Some(l3) => match first_from(l3, &pfb, Duration::ZERO, true) {
                Some(b) => out.push(about(
                    Class::Pass,
                    a.sip_ev(b),
                    K::LeavePropagated {
                        member: m.clone(),
                        entity: pfb.name.clone(),
                        bye: a.sip_ev(b),
                    },
                )),
                None => out.push(about(
                    Class::Fail,
                    a.sip_ev(l3.invite),
                    K::LeaveNotPropagated {
                        member: m.clone(),
                        entity: pfb.name.clone(),
                        watched: Time(a.obs.end),
                    },
                )),
            },
        }
    }
    // x keeps the others until the upstream BYE.
    let x = party(a.topo, "x", Role::X);
    let l2 = a
        .obs
        .legs
        .iter()
        .find(|l| l.uas == x && l.uac.role == Role::PfA);
    if a.subject(&x) && (a.self_check || !a.ctx.is_sut(Role::PfA)) {
        let upstream_bye = l2
            .and_then(|l| first_from(l, &l.uac, Duration::ZERO, true))
            .map(|b| a.t(b));
        remaining_members_kept(a, &x, upstream_bye, &mut out);
    }
    if out.is_empty() {
        out.push(Finding::not_observable(K::NotPlayedBySut {
            entity: "x or the leaving member's pf-b".into(),
        }));
    }
    out
}

/// x keeps the members still in the call (SIG-DECLINE, SIG-LEAVE): a BYE or CANCEL of x's
/// toward one of them before the upstream BYE `upstream_bye` (which ends them all) fails; the
/// members whose leg x answered and did not end pass together.
fn remaining_members_kept(
    a: &Analysis,
    x: &Party,
    upstream_bye: Option<Duration>,
    out: &mut Vec<Finding>,
) {
    let mut kept = Vec::new();
    for m in a.accepting() {
        let legs = a
            .obs
            .legs
            .iter()
            .filter(|l| l.uac == *x && member_of(a.topo, l).as_deref() == Some(m.as_str()));
        for l in legs {
            let ended = l.messages.iter().copied().find(|&i| {
                let s = &a.obs.sip[i];
                (s.is_request("BYE") || s.is_request("CANCEL"))
                    && s.sender.as_ref() == Some(x)
                    && upstream_bye.is_none_or(|t| s.t < t)
            });
            match ended {
                Some(i) => out.push(about(
                    Class::Fail,
                    a.sip_ev(i),
                    K::RemainingMemberEnded {
                        member: m.clone(),
                        request: a.sip_ev(i),
                    },
                )),
                None if l.ok.is_some() => kept.push(m.clone()),
                None => {}
            }
        }
    }
    if !kept.is_empty() {
        out.push(Finding::pass(K::RemainingMembersKept { members: kept }));
    }
}

/// MEDIA-REJECT: once a member refused the message (413, 415), the SUT's pf-b starts no
/// further chunk of it toward that member and releases the member's leg with a BYE.
fn media_reject(a: &Analysis) -> Vec<Finding> {
    let sc = &a.obs.scenario;
    if sc.refused.is_empty() {
        return vec![Finding::not_observable(K::NoRefusal)];
    }
    let mut out = Vec::new();
    for (m, r) in &sc.refused {
        let Some(c) = a.obs.conns.get(r.conn) else {
            continue;
        };
        let Some(pfb) = c.sender(1 - r.dir).cloned() else {
            continue;
        };
        if !a.subject(&pfb) {
            continue;
        }
        let resp = &c.dirs[r.dir].msgs[r.msg];
        let after = r.t + race_margin(a);
        let more = c.dirs[1 - r.dir].msgs.iter().find(|s| {
            s.is_request()
                && s.head.method() == Some("SEND")
                && s.head.message_id() == Some(r.message_id.as_str())
                && s.t > after
        });
        match more {
            Some(s) => out.push(about(
                Class::Fail,
                a.msrp_ev(c, 1 - r.dir, s),
                K::ContinuedAfterRefusal {
                    entity: pfb.name.clone(),
                    member: m.clone(),
                    refusal: a.msrp_ev(c, r.dir, resp),
                    send: a.msrp_ev(c, 1 - r.dir, s),
                },
            )),
            None => out.push(about(
                Class::Pass,
                a.msrp_ev(c, r.dir, resp),
                K::RefusalHonoured {
                    entity: pfb.name.clone(),
                    member: m.clone(),
                    refusal: a.msrp_ev(c, r.dir, resp),
                },
            )),
        }
        // The member's leg released by pf-b (before the call's end reached it).
        let Some(l4) = a
            .obs
            .legs
            .iter()
            .find(|l| l.uac == pfb && l.uas.name == *m && l.ok.is_some())
        else {
            continue;
        };
        let l3_end = a
            .obs
            .legs
            .iter()
            .find(|l| {
                l.uas == pfb
                    && l.uac.role == Role::X
                    && member_of(a.topo, l).as_deref() == Some(m.as_str())
            })
            .and_then(|l| {
                l.messages.iter().copied().find(|&i| {
                    let s = &a.obs.sip[i];
                    s.is_request("BYE") && s.sender.as_ref() == Some(&l.uac)
                })
            })
            .map(|i| a.t(i));
        let bye = l4.messages.iter().copied().find(|&i| {
            let s = &a.obs.sip[i];
            s.is_request("BYE")
                && s.sender.as_ref() == Some(&pfb)
                && s.t >= r.t
                && l3_end.is_none_or(|t| s.t < t)
        });
        match bye {
            Some(b) => out.push(about(
                Class::Pass,
                a.sip_ev(b),
                K::RefusingMemberReleased {
                    entity: pfb.name.clone(),
                    member: m.clone(),
                    bye: a.sip_ev(b),
                },
            )),
            None => out.push(about(
                Class::Fail,
                a.msrp_ev(c, r.dir, resp),
                K::RefusingMemberKept {
                    entity: pfb.name.clone(),
                    member: m.clone(),
                    watched: Time(a.obs.end),
                },
            )),
        }
    }
    if out.is_empty() {
        out.push(Finding::not_observable(K::NotPlayedBySut {
            entity: "the refusing member's pf-b".into(),
        }));
    }
    out
}

/// What reached a member on the wire (CPIM object, before unwrapping), for evidence.
fn wire_delivery(a: &Analysis, member: &str) -> WireDelivery {
    let mut seen = Vec::new();
    for c in a.links() {
        for d in 0..2 {
            if c.sender(1 - d).map(|p| p.name.as_str()) != Some(member) {
                continue;
            }
            for k in &c.dirs[d].contents {
                seen.push(content_ev(c, d, k));
            }
        }
    }
    let hidden = a
        .legs
        .iter()
        .any(|el| el.link == Link::L4 && el.uas.name == member && !a.visible(el));
    let watched = Time(a.obs.end);
    let member = member.to_string();
    if seen.is_empty() && hidden {
        WireDelivery::Hidden { member, watched }
    } else if seen.is_empty() {
        WireDelivery::Nothing { member, watched }
    } else {
        WireDelivery::Seen(seen)
    }
}

fn media_delivery(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    // Content pinned by the profile: client-a must send exactly what it was given.
    if let Some((len, sha)) = &a.ctx.pinned {
        if *sha != a.ctx.content_sha256 {
            out.push(Finding::fail(K::SentOtherThanPinned {
                bytes: a.ctx.content_len,
                sha256: a.ctx.content_sha256.clone(),
                pinned_bytes: *len,
                pinned_sha256: sha.clone(),
            }));
        }
    }
    // The sender aborted its message: nobody may be given it as delivered.
    if a.obs.scenario.aborted.is_some() {
        for m in &a.accepting() {
            let member = m.clone();
            match a.ctx.delivered.get(m) {
                Some(d) if d.complete && d.bytes == a.ctx.content_len => {
                    out.push(Finding::fail(K::AbortedDelivered {
                        member,
                        bytes: d.bytes,
                    }))
                }
                d => out.push(Finding::pass(K::AbortedNotDelivered {
                    member,
                    bytes: d.map_or(0, |d| d.bytes),
                })),
            }
        }
        return out;
    }
    for m in &a.accepting() {
        let wire = || wire_delivery(a, m);
        let member = m.clone();
        let sent = a.ctx.content_len;
        match a.ctx.delivered.get(m) {
            None => out.push(Finding::fail(K::NothingReceived {
                member,
                wire: wire(),
            })),
            Some(d) if !d.complete => out.push(Finding::fail(K::DeliveryIncomplete {
                member,
                bytes: d.bytes,
                sent,
                wire: wire(),
            })),
            Some(d) if d.bytes != sent => out.push(Finding::fail(K::DeliveryLength {
                member,
                bytes: d.bytes,
                sent,
                wire: wire(),
            })),
            Some(d) if d.sha256 != a.ctx.content_sha256 => {
                out.push(Finding::fail(K::DeliveryDigest {
                    member,
                    sha256: d.sha256.clone(),
                    sent: a.ctx.content_sha256.clone(),
                    wire: wire(),
                }))
            }
            Some(d) => out.push(Finding::pass(K::Delivered {
                member,
                bytes: d.bytes,
                sha256: d.sha256.clone(),
            })),
        }
    }
    if out.is_empty() {
        out.push(Finding::not_observable(K::NoMembers));
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

fn media_paths(a: &Analysis) -> Vec<Finding> {
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
                        out.push(about(
                            Class::Fail,
                            ev,
                            K::PathHeaderUnparsable {
                                error: e.msg.to_string(),
                            },
                        ));
                        continue;
                    }
                };
                let mut bad = Vec::new();
                if to.len() != 1 || from.len() != 1 {
                    bad.push(K::PathCount {
                        to: to.len(),
                        from: from.len(),
                    });
                }
                match msg_leg(a, c, &s.name, m) {
                    None => bad.push(K::PathsNoSession {
                        to_path: uris(&to),
                        from_path: uris(&from),
                    }),
                    Some(l) => {
                        let peer = l
                            .peer_of(&s.name)
                            .map(|p| p.name.clone())
                            .unwrap_or_default();
                        let want_to = l.path_of(&peer);
                        let want_from = l.path_of(&s.name);
                        if !m.is_request() {
                            // A response's To-Path is the request's first From-Path URI.
                            let req = c.dirs[1 - d]
                                .msgs
                                .iter()
                                .find(|r| r.is_request() && r.head.tid == m.head.tid);
                            if let Some(first) = req
                                .and_then(|r| r.head.from_path().ok())
                                .and_then(|v| v.into_iter().next())
                            {
                                if !to.first().is_some_and(|u| u.matches(&first)) {
                                    bad.push(K::ResponseToPath {
                                        to_path: uris(&to),
                                        request_from: first.to_string(),
                                    });
                                }
                            }
                        } else if !same_uris(&to, want_to) {
                            bad.push(K::ToPathNotPeers {
                                to_path: uris(&to),
                                path: uris(want_to),
                                peer,
                                link: Some(l.link.unwrap_or(Link::L1)),
                            });
                        }
                        if !same_uris(&from, want_from) {
                            bad.push(K::FromPathNotOwn {
                                from_path: uris(&from),
                                entity: s.name.clone(),
                                path: uris(want_from),
                            });
                        }
                    }
                }
                if bad.is_empty() {
                    ok += 1;
                } else {
                    out.extend(bad.into_iter().map(|k| about(Class::Fail, ev.clone(), k)));
                }
            }
        }
    }
    if ok > 0 {
        out.push(Finding::pass(K::PathsNegotiated { count: ok }));
    }
    if out.is_empty() {
        out.push(a.hidden("MSRP messages the SUT sends"));
    }
    out
}

fn media_framing(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut ok = 0usize;
    for c in a.links() {
        for d in 0..2 {
            if !c.sender(d).is_some_and(|s| a.subject(s)) {
                continue;
            }
            // Where the stream stops parsing is WIRE-SYNTAX's; what parsed is judged here.
            let dir = &c.dirs[d];
            // Per session (To-Path) and Message-ID: (next expected start, total).
            let mut ranges: BTreeMap<(String, String), (u64, Option<u64>)> = BTreeMap::new();
            let requests: BTreeSet<&str> = c.dirs[1 - d]
                .msgs
                .iter()
                .filter(|r| r.is_request())
                .map(|r| r.head.tid.as_str())
                .collect();
            // Request transaction ids already used in this direction (never reused).
            let mut tids: BTreeSet<&str> = BTreeSet::new();
            for m in &dir.msgs {
                let ev = a.msrp_ev(c, d, m);
                let h = &m.head;
                let mut bad = Vec::new();
                let name = |i: usize| h.headers.get(i).map(|(n, _)| n.to_ascii_lowercase());
                if name(0).as_deref() != Some("to-path") || name(1).as_deref() != Some("from-path")
                {
                    bad.push(K::HeaderOrder);
                }
                let ct = h
                    .headers
                    .iter()
                    .position(|(n, _)| n.eq_ignore_ascii_case("Content-Type"));
                if h.has_body && ct != Some(h.headers.len().saturating_sub(1)) {
                    bad.push(K::ContentTypeNotLast);
                }
                if !h.has_body && ct.is_some() {
                    bad.push(K::ContentTypeWithoutBody);
                }
                if m.is_request() {
                    if !tids.insert(h.tid.as_str()) {
                        bad.push(K::TidReused { tid: h.tid.clone() });
                    }
                    if h.tid.len() < 11 {
                        bad.push(K::TidShort { tid: h.tid.clone() });
                    }
                    if h.method() != Some("SEND") && m.body_len > 10240 {
                        bad.push(K::BodyTooLarge {
                            method: h.method().unwrap_or("").to_string(),
                            octets: m.body_len,
                        });
                    }
                } else if !requests.contains(h.tid.as_str()) {
                    bad.push(K::ResponseWithoutRequest);
                }
                if h.method() == Some("SEND") {
                    let id = h.message_id().unwrap_or("");
                    if id.is_empty() {
                        bad.push(K::NoMessageId);
                    }
                    let key = (
                        h.header("To-Path").unwrap_or("").to_string(),
                        id.to_string(),
                    );
                    let seen = ranges.get(&key).copied();
                    match h.byte_range() {
                        None if seen.is_some() => bad.push(K::NoByteRange),
                        None => {
                            ranges.insert(key, (m.body_len.saturating_add(1), None));
                        }
                        Some(Err(e)) => bad.push(K::ByteRangeUnparsable {
                            value: h.header("Byte-Range").unwrap_or("").to_string(),
                            error: e.msg.to_string(),
                        }),
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
                    out.extend(bad.into_iter().map(|k| about(Class::Fail, ev.clone(), k)));
                }
            }
        }
    }
    if ok > 0 {
        out.push(Finding::pass(K::MsrpWellFormed { count: ok }));
    }
    if out.is_empty() {
        out.push(a.hidden("MSRP messages the SUT sends"));
    }
    out
}

/// Byte-Range arithmetic of one chunk given what came before for its Message-ID.
fn range_faults(r: &ByteRange, m: &MsrpObs, seen: Option<(u64, Option<u64>)>) -> Vec<K> {
    let mut bad = Vec::new();
    let range = r.to_string();
    match seen {
        None if r.start != 1 => bad.push(K::RangeStart {
            range: range.clone(),
        }),
        Some((next, _)) if r.start != next => bad.push(K::RangeGap {
            range: range.clone(),
            next,
        }),
        _ => {}
    }
    if let Some((_, Some(t))) = seen {
        if r.total.is_some_and(|rt| rt != t) {
            bad.push(K::RangeTotalChanged {
                range: range.clone(),
                total: t,
            });
        }
    }
    if let Some(e) = r.end {
        if m.flag.is_some() && e.saturating_add(1) != r.start.saturating_add(m.body_len) {
            bad.push(K::RangeLength {
                range: range.clone(),
                octets: m.body_len,
            });
        }
        if m.body_len > 2048 {
            bad.push(K::RangeNotInterruptible {
                range: range.clone(),
                octets: m.body_len,
            });
        }
    }
    if let Some(t) = r.total {
        let end = r.start.saturating_add(m.body_len);
        if end > t.saturating_add(1) {
            bad.push(K::RangePastTotal {
                range: range.clone(),
            });
        }
        if m.flag == Some(crate::codec::msrp::Flag::End)
            && m.head.has_body
            && end != t.saturating_add(1)
        {
            bad.push(K::RangeFinalShort {
                range: range.clone(),
                end: end - 1,
            });
        }
    }
    bad
}

fn media_response(a: &Analysis) -> Vec<Finding> {
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
                // The SUT ended the session with a BYE of its own (every member declined or
                // left) before it answered: the SEND may be refused (481, RFC 4975 §7.3) or
                // left unanswered.
                let legs: Vec<usize> = match m.leg {
                    Some(l) => vec![l],
                    None => c.legs.clone(),
                };
                let answered_at = resp.map_or(a.obs.end, |r| r.t);
                let ended_before = legs.iter().filter_map(|&l| a.obs.legs.get(l)).any(|l| {
                    l.messages.iter().any(|&i| {
                        let b = &a.obs.sip[i];
                        b.is_request("BYE") && b.sender.as_ref() == Some(s) && b.t <= answered_at
                    })
                });
                if ended_before && resp.is_none_or(|r| r.head.code() != Some(200)) {
                    continue;
                }
                // A member's refusal of the message (member-rejects-content): MEDIA-REJECT's.
                let refusal = resp.is_some_and(|r| matches!(r.head.code(), Some(413 | 415)))
                    && a.obs.scenario.refused.contains_key(&s.name);
                if refusal {
                    continue;
                }
                match resp {
                    Some(r) if r.head.code() == Some(200) => ok += 1,
                    Some(r) => out.push(Finding::fail(K::SendAnsweredNon200 {
                        entity: s.name.clone(),
                        send: a.msrp_ev(c, d, m),
                        response: a.msrp_ev(c, 1 - d, r),
                    })),
                    None => out.push(Finding::fail(K::SendUnanswered {
                        entity: s.name.clone(),
                        send: a.msrp_ev(c, d, m),
                    })),
                }
            }
        }
    }
    if ok > 0 {
        out.push(Finding::pass(K::SendsAnswered { count: ok }));
    }
    if out.is_empty() {
        out.push(a.hidden("SENDs the SUT receives"));
    }
    out
}

fn content_ev(c: &ConnObs, d: usize, k: &ContentObs) -> Cite {
    let dir = &c.dirs[d];
    let index = dir
        .contents
        .iter()
        .position(|x| std::ptr::eq(x, k))
        .unwrap_or(usize::MAX);
    Cite::Content {
        conn: c.index,
        dir: d,
        index,
        t: Time(k.first_t),
        message_id: k.message_id.clone(),
        octets: k.total.unwrap_or(k.received),
        sha256: k.sha256.clone(),
        from: who(&c.sender(d).cloned(), dir.from),
        to: who(&c.sender(1 - d).cloned(), dir.to),
    }
}

fn cpim_faults(k: &ContentObs) -> Vec<K> {
    let mut bad = Vec::new();
    let ct = k.content_type.as_deref().map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if ct.as_deref() != Some("message/cpim") {
        bad.push(K::NotCpim {
            content_type: k.content_type.clone(),
        });
        return bad;
    }
    match Cpim::parse_head(&k.prefix) {
        Ok(Some((cpim, _))) => {
            for h in ["From", "To"] {
                if cpim.header(h).is_none() {
                    bad.push(K::CpimMissingHeader { header: h.into() });
                }
            }
            if cpim.content_type().is_none() {
                bad.push(K::CpimNoInnerType);
            }
        }
        Ok(None) => bad.push(K::CpimHeadNeverEnds),
        Err(e) => bad.push(K::CpimUnparsable {
            error: e.to_string(),
        }),
    }
    bad
}

/// The CPIM headers that differ between two objects, as (before, after).
fn cpim_diff(input: &Cpim, output: &Cpim) -> Vec<(Option<String>, Option<String>)> {
    let show = |h: Option<&(String, String)>| h.map(|(n, v)| format!("{n}: {v}"));
    let n = input.headers.len().max(output.headers.len());
    (0..n)
        .filter(|&k| input.headers.get(k) != output.headers.get(k))
        .map(|k| (show(input.headers.get(k)), show(output.headers.get(k))))
        .collect()
}

fn media_cpim(a: &Analysis) -> Vec<Finding> {
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
            judged(&mut out, ev, cpim_faults(k), K::CpimValid);
            continue;
        }
        // A relay: compare with what it received (or, upstream hidden, what entered the SUT).
        let inputs: Vec<&ContentObs> = match received.get(&s.name) {
            Some(v) if !v.is_empty() => v.iter().map(|(_, _, k)| *k).collect(),
            _ => from_harness.clone(),
        };
        let refs: Vec<&str> = inputs.iter().filter_map(|k| k.sha256.as_deref()).collect();
        // A message its sender aborted (`#`), or cut short because every member declined and
        // the call ended under it, has no whole to compare.
        let sc = &a.obs.scenario;
        let cut_short =
            sc.all_declined(&a.members) || !sc.left.is_empty() || !sc.refused.is_empty();
        if k.sha256.is_none() && (k.aborted || cut_short) {
            continue;
        }
        let Some(sha) = k.sha256.as_deref() else {
            out.push(about(
                Class::Inconc,
                ev,
                K::ContentIncomplete {
                    note: k
                        .note
                        .clone()
                        .unwrap_or_else(|| format!("{} octets", k.received)),
                },
            ));
            continue;
        };
        if refs.is_empty() {
            out.push(about(Class::Inconc, ev, K::NoUpstreamCopy));
        } else if refs.contains(&sha) {
            let ct_same = inputs.iter().any(|i| i.content_type == k.content_type);
            if ct_same {
                out.push(about(Class::Pass, ev, K::RelayedUnchanged));
            } else {
                out.push(about(
                    Class::Fail,
                    ev,
                    K::ContentTypeChanged {
                        content_type: k.content_type.clone(),
                    },
                ));
            }
        } else {
            let changed = match (
                inputs
                    .first()
                    .and_then(|i| Cpim::parse_head(&i.prefix).ok().flatten()),
                Cpim::parse_head(&k.prefix).ok().flatten(),
            ) {
                (Some((i, _)), Some((o, _))) => cpim_diff(&i, &o),
                _ => Vec::new(),
            };
            out.push(about(
                Class::Fail,
                ev,
                K::ContentAltered {
                    entity: s.name.clone(),
                    upstream_sha256: refs.first().map(|r| r.to_string()).unwrap_or_default(),
                    changed,
                },
            ));
        }
    }
    if out.is_empty() {
        out.push(a.hidden("content the SUT sends"));
    }
    out
}

// ---------------------------------------------------------------------------- wire syntax

/// Every SIP message and MSRP stream the SUT sends parses; each that does not is a failure
/// with its excerpt, peer and position.
fn wire_syntax(a: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    let (mut sip, mut msrp) = (0usize, 0usize);
    for s in &a.obs.sip {
        if !a.subject_opt(&s.sender) {
            continue;
        }
        match (&s.msg, &s.parse_error) {
            (None, err) => out.push(about(
                Class::Fail,
                a.sip_ev(s.index),
                K::SipUnparsable {
                    error: err.clone().unwrap_or_default(),
                },
            )),
            (Some(m), _) => {
                let bad = m.host_errors();
                if bad.is_empty() {
                    sip += 1;
                }
                for (header, value, error) in bad {
                    out.push(about(
                        Class::Fail,
                        a.sip_ev(s.index),
                        K::SipHost {
                            header,
                            value,
                            error,
                        },
                    ));
                }
            }
        }
    }
    for c in a.links() {
        for d in 0..2 {
            let Some(s) = c.sender(d).filter(|s| a.subject(s)) else {
                continue;
            };
            let dir = &c.dirs[d];
            match &dir.error {
                Some(e) => out.push(Finding::fail(K::MsrpSyntax {
                    t: Time(e.t),
                    sender: who(&Some(s.clone()), dir.from),
                    receiver: who(&c.sender(1 - d).cloned(), dir.to),
                    offset: e.offset,
                    error: e.error.clone(),
                })),
                None if dir.bytes > 0 => msrp += 1,
                None => {}
            }
        }
    }
    if out.is_empty() && sip + msrp > 0 {
        out.push(Finding::pass(K::WireParses { sip, msrp }));
    }
    if out.is_empty() {
        out.push(a.hidden("SIP and MSRP messages the SUT sends"));
    }
    out
}
