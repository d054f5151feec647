//! x, the controlling function: the group's focus.
//!
//! Who a call is for: every member for the group URI, the resource list for the conference
//! factory URI (ad-hoc), else 404 (480 for nobody). It answers 100 Trying and invites one
//! member per down leg, each through the pf-b serving it; it answers its up leg at once or on
//! the first member's 200 as the figure says; it opens its member links on its own trigger;
//! and it writes the relayed message to members in turns (fan-out admission).

use super::super::state::{CallIdx, DialogState, LegIdx, Side};
use super::super::Node;
use super::{b2bua_ack_now, b2bua_down_done, b2bua_trigger, Invited, Rules};
use crate::codec::sip::SipMessage;
use crate::config::{Link, XAnswer};
use crate::entity::Fault;
use crate::topology::strip_uri;
use std::net::SocketAddr;

/// Fan-out admission of a down leg of x. Members are served in turns, as many at once as
/// their messages (by Byte-Range total) fit in `fanout-window` bytes, and always one: every
/// member streaming at once puts a message-sized backlog in every socket, which drives the
/// kernel into TCP memory pressure with thousands of members; a window counted in members
/// rather than bytes does not fit every message size (README, "The bench table").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::entity::node) enum Admit {
    /// Has not asked yet (no relay data ready to write).
    No,
    /// Ready to write, waiting for a slot.
    Waiting,
    /// Holds a slot: writes as its link allows.
    Active,
    /// Gave its slot back (message answered, or the leg failed).
    Done,
}

pub(in crate::entity::node) struct X;

impl Rules for X {
    fn links(&self) -> (Link, Link) {
        (Link::L2, Link::L3)
    }
    fn middle(&self) -> bool {
        true
    }
    fn takes_turns(&self) -> bool {
        true
    }
    /// Every member for the group URI; the listed members for the factory URI (ad-hoc, with
    /// a resource list, else 400); 404 for any other URI, 480 when nobody is left.
    fn members(
        &self,
        node: &mut Node,
        from: SocketAddr,
        msg: &SipMessage,
        ruri: &str,
    ) -> Option<Vec<String>> {
        let topo = node.cfg.topology.clone();
        let mut members = Vec::new();
        let r = strip_uri(ruri);
        if r == strip_uri(&topo.group) {
            members = topo.members.iter().map(|m| m.name.clone()).collect();
        } else if r == strip_uri(&topo.factory) {
            match msg.resource_list() {
                Ok(Some(list)) => {
                    for u in list {
                        match topo.member_by_uri(&u) {
                            Some(m) => members.push(m.name.clone()),
                            None => node.warn(format!(
                                "ad-hoc list entry {u} is not in the topology; skipped"
                            )),
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    node.respond_plain(from, msg, 400, "Bad Request: no resource list");
                    return None;
                }
            }
        } else {
            node.respond_plain(from, msg, 404, "Not Found");
            return None;
        }
        if members.is_empty() {
            node.respond_plain(from, msg, 480, "Temporarily Unavailable");
            return None;
        }
        Some(members)
    }
    /// 100 Trying; one INVITE per member through its pf-b (only the first with the
    /// fanout-first-only fault); 200-2 before or after them when x answers at once.
    fn invited(&self, node: &mut Node, inv: Invited<'_>) {
        node.trying(inv.leg, inv.from, inv.msg);
        let at_once = node.x_answers_at_once(inv.call);
        if at_once && node.cfg.holds.x_answer_before_invites {
            node.answer_up(inv.leg);
        }
        let topo = node.cfg.topology.clone();
        let fanout = if node.fault(Fault::FanoutFirstOnly) {
            1
        } else {
            inv.members.len()
        };
        for name in inv.members.iter().take(fanout) {
            let Some(m) = topo.members.iter().find(|m| &m.name == name) else {
                continue;
            };
            let Some(pfb) = topo.pf_b_serving(name) else {
                node.warn(format!("no pf-b serves member {name}"));
                continue;
            };
            node.invite_down(inv.call, m.uri.clone(), m.uri.clone(), pfb.sip, None);
        }
        if at_once {
            node.answer_up(inv.leg);
        }
    }
    fn ack_now(&self, node: &Node, leg: LegIdx) -> bool {
        b2bua_ack_now(node, leg)
    }
    /// x's own trigger for the member links (L3).
    fn down_trigger(&self, node: &Node, leg: LegIdx) -> bool {
        b2bua_trigger(node, leg, node.leg_variant(leg).x_trigger())
    }
    fn down_done(&self, node: &Node, leg: LegIdx) -> bool {
        b2bua_down_done(node, leg)
    }
}

impl Node {
    /// Whether x sends 200-2 on INVITE2 (FIG 1, 3, 7) rather than on the first 200-3.
    fn x_answers_at_once(&self, call: CallIdx) -> bool {
        let at_once = self.variant(call).x_answer() == XAnswer::AtOnce;
        (at_once && !self.fault(Fault::CfAnswerLate)) || self.fault(Fault::CfAnswerEarly)
    }

    // ------------------------------------------------------------------ fan-out turns

    /// x: whether down leg `leg` may write relay data now, taking a free slot or joining the
    /// queue for one. Other roles, and groups no larger than the window, always may.
    pub(in crate::entity::node) fn admitted_to_write(&mut self, leg: LegIdx) -> bool {
        if !self.rules.takes_turns() || self.legs[leg].side != Side::Down {
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

    /// `leg` starts its turn: it holds its message's bytes of the window.
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
    pub(in crate::entity::node) fn update_admission(&mut self) {
        if !self.rules.takes_turns() || (self.admitted == 0 && self.admit_queue.is_empty()) {
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
}
