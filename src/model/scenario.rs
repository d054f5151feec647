//! The exception conditions a case shows on the wire (issue 16), read once for the checks,
//! `analyze`, the ladders and the reports: which members declined their session, what the
//! sender asked about reports. A capture
//! carries no harness settings, so everything here comes from the messages alone.

use super::{member_of, Observation};
use crate::codec::msrp::ReportRequest;
use crate::topology::{Role, Topology};
use std::collections::BTreeMap;

/// A member's decline: the final response its client-b refused its INVITE (INVITE4) with
/// ([`is_decline`]: 480, 486, 600, 603).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declined {
    /// The status code (486 Busy Here, 603 Decline, …).
    pub code: u16,
    /// The response ([`Observation::sip`] index).
    pub response: usize,
    /// The dialog it ended ([`Observation::legs`] index): the member's L4 leg, or its L3
    /// leg when no L4 leg of the member is on the wire.
    pub leg: usize,
    /// The member never answered at all (scenario `member-never-answers`): no response of
    /// its own on its L4 leg; `code` is 0 and `response` is its INVITE (INVITE4). Its pf-b
    /// must give up on it (SIG-NO-ANSWER); otherwise it stands as a decline.
    pub no_answer: bool,
}

/// The exception scenario of a case, as its wire shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scenario {
    /// Per member: its decline. Read from the member's own leg (L4: the member is the
    /// sender of the final non-2xx); where no L4 leg of the member was recorded (pf-b and
    /// client-b both the SUT's), from x's leg for it (L3).
    pub declined: BTreeMap<String, Declined>,
    /// The message the sender aborted: a content object of the most upstream visible hop
    /// (client-a's own link, L1, when it is on the wire) with a chunk ending in `#`
    /// (RFC 4975 §7.1.1).
    pub aborted: Option<Aborted>,
    /// Per member: how it left its session mid-transfer (a BYE of its own on its L4 leg, or
    /// its side of the L4 link closed while its message was still incomplete and before any
    /// BYE on the leg).
    pub left: BTreeMap<String, Left>,
    /// Per member: its refusal of the message (a 413 or 415 it answered a SEND with on its
    /// own link, RFC 4975 §7.1.2, §7.2).
    pub refused: BTreeMap<String, Refused>,
    /// What the sender asked of the receivers about reports, as the most upstream visible
    /// hop's first content SEND says (RFC 4975 §7.1.2): `Success-Report: yes`,
    /// `Failure-Report: no`.
    pub reports: ReportRequest,
}

/// A member's refusal of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: u16,
    /// The connection ([`Observation::conns`] index), the direction of the member's
    /// response, and the response's index in it.
    pub conn: usize,
    pub dir: usize,
    pub msg: usize,
    /// The Message-ID of the SEND it refused.
    pub message_id: String,
    pub t: std::time::Duration,
}

/// How a member left its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftBy {
    /// Its BYE ([`Observation::sip`] index).
    Bye(usize),
    /// Its side of this connection ([`Observation::conns`] index) closed without a BYE.
    Close(usize),
}

/// A member that left its session mid-transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub by: LeftBy,
    /// When (the BYE, or the close).
    pub t: std::time::Duration,
    /// Its L4 leg ([`Observation::legs`] index).
    pub leg: usize,
}

/// A message its sender aborted, as the most upstream visible hop shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aborted {
    /// Its Message-ID on that hop.
    pub message_id: String,
    /// The hop's sender (client-a, or the first visible relay).
    pub sender: String,
    /// Octets of the object that crossed that hop before the abort.
    pub received: u64,
}

impl Scenario {
    /// Whether `member` declined.
    pub fn declined(&self, member: &str) -> bool {
        self.declined.contains_key(member)
    }

    /// Whether `member` left its session mid-transfer.
    pub fn left(&self, member: &str) -> bool {
        self.left.contains_key(member)
    }

    /// Whether every one of `members` declined (and there is one).
    pub fn all_declined(&self, members: &[String]) -> bool {
        !members.is_empty() && members.iter().all(|m| self.declined(m))
    }
}

/// A member's own refusal of a session (RFC 3261 §21.4.18, §21.6): busy, unavailable or
/// declined. Other failures (488 for an offer it cannot accept, 400, …) answer what the
/// INVITE sender did wrong and stay ordinary failures of the flow.
pub fn is_decline(code: u16) -> bool {
    matches!(code, 480 | 486 | 600 | 603)
}

/// Reads the [`Scenario`] off an attributed observation with its legs built.
pub(super) fn read(obs: &Observation, topo: &Topology) -> Scenario {
    let mut out = Scenario::default();
    let final_code = |li: usize| -> Option<(u16, usize)> {
        let l = obs.legs.get(li)?;
        let i = l.final_response?;
        let s = obs.sip.get(i)?;
        match &s.kind {
            Some(super::SipKind::Response { code, .. }) if is_decline(*code) => Some((*code, i)),
            _ => None,
        }
    };
    // The content as the most upstream visible hop carried it.
    'hops: for role in [Role::ClientA, Role::PfA, Role::X, Role::PfB] {
        for c in obs.conns.iter().filter(|c| c.is_link()) {
            for d in 0..2 {
                let Some(s) = c.sender(d).filter(|p| p.role == role) else {
                    continue;
                };
                let downstream = c.sender(1 - d).is_some_and(|r| r.role > role);
                let Some(k) = c.dirs[d].contents.first().filter(|_| downstream) else {
                    continue;
                };
                if let Some(m) = k.chunks.first().and_then(|&i| c.dirs[d].msgs.get(i)) {
                    out.reports = ReportRequest::of(&m.head);
                }
                if k.aborted {
                    out.aborted = Some(Aborted {
                        message_id: k.message_id.clone(),
                        sender: s.name.clone(),
                        received: k.received,
                    });
                }
                break 'hops;
            }
        }
    }
    // Members that refused the message: the member's own 413 or 415 to a SEND on its link.
    for m in &topo.members {
        'conns: for c in obs.conns.iter().filter(|c| c.is_link()) {
            let Some(d) = (0..2).find(|&d| c.sender(d).is_some_and(|p| p.name == m.name)) else {
                continue;
            };
            for (i, r) in c.dirs[d].msgs.iter().enumerate() {
                let Some(code) = r.head.code().filter(|c| matches!(c, 413 | 415)) else {
                    continue;
                };
                let message_id = c.dirs[1 - d]
                    .msgs
                    .iter()
                    .find(|s| s.is_request() && s.head.tid == r.head.tid)
                    .and_then(|s| s.head.message_id().map(String::from))
                    .unwrap_or_default();
                out.refused.insert(
                    m.name.clone(),
                    Refused {
                        code,
                        conn: c.index,
                        dir: d,
                        msg: i,
                        message_id,
                        t: r.t,
                    },
                );
                break 'conns;
            }
        }
    }
    // Members that left: a BYE from the member (the flow has pf-b end L4), or the member's
    // side of its link closed under an incomplete message before any BYE on its leg.
    for m in &topo.members {
        let Some(l) = obs
            .legs
            .iter()
            .find(|l| l.uas.name == m.name && l.uas.role == Role::ClientB && l.ok.is_some())
        else {
            continue;
        };
        let bye = l.messages.iter().copied().find(|&i| {
            let s = &obs.sip[i];
            s.is_request("BYE") && s.sender.as_ref() == Some(&l.uas)
        });
        let first_bye = l
            .messages
            .iter()
            .copied()
            .find(|&i| obs.sip[i].is_request("BYE"))
            .map(|i| obs.sip[i].t);
        if let Some(b) = bye.filter(|&b| first_bye == Some(obs.sip[b].t)) {
            out.left.insert(
                m.name.clone(),
                Left {
                    by: LeftBy::Bye(b),
                    t: obs.sip[b].t,
                    leg: l.index,
                },
            );
            continue;
        }
        for c in obs.conns.iter().filter(|c| c.is_link()) {
            let Some(d) = (0..2).find(|&d| c.sender(d).is_some_and(|p| p.name == m.name)) else {
                continue;
            };
            let Some(tc) = c.dirs[d].closed_at else {
                continue;
            };
            let first = c.dirs[1 - d].closed_at.is_none_or(|o| tc < o);
            let unfinished = !c.dirs[1 - d].contents.is_empty()
                && c.dirs[1 - d].contents.iter().all(|k| !k.complete);
            if first && unfinished && first_bye.is_none_or(|b| tc < b) {
                out.left.insert(
                    m.name.clone(),
                    Left {
                        by: LeftBy::Close(c.index),
                        t: tc,
                        leg: l.index,
                    },
                );
                break;
            }
        }
    }
    for m in &topo.members {
        let l4: Vec<usize> = obs
            .legs
            .iter()
            .filter(|l| l.uas.name == m.name && l.uas.role == Role::ClientB)
            .map(|l| l.index)
            .collect();
        let candidates: Vec<usize> = if l4.is_empty() {
            obs.legs
                .iter()
                .filter(|l| l.uac.role == Role::X && l.uas.role == Role::PfB)
                .filter(|l| member_of(topo, l).as_deref() == Some(m.name.as_str()))
                .map(|l| l.index)
                .collect()
        } else {
            l4
        };
        // The member declined when no leg of it was accepted and one was refused.
        if candidates.iter().any(|&li| obs.legs[li].ok.is_some()) {
            continue;
        }
        if let Some((li, (code, response))) = candidates
            .iter()
            .find_map(|&li| final_code(li).map(|c| (li, c)))
        {
            out.declined.insert(
                m.name.clone(),
                Declined {
                    code,
                    response,
                    leg: li,
                    no_answer: false,
                },
            );
            continue;
        }
        // The member never answered: L4 legs of it on the wire, and not one response of its
        // own on any of them (a 100 would be one).
        let silent = candidates.iter().all(|&li| {
            let l = &obs.legs[li];
            l.uas.role == Role::ClientB
                && !l
                    .messages
                    .iter()
                    .any(|&i| obs.sip[i].sender.as_ref() == Some(&l.uas))
        });
        if let Some(&li) = candidates.first().filter(|_| silent) {
            out.declined.insert(
                m.name.clone(),
                Declined {
                    code: 0,
                    response: obs.legs[li].invite,
                    leg: li,
                    no_answer: true,
                },
            );
        }
    }
    out
}
