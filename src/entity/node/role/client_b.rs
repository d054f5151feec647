//! client-b, a recipient: one up leg per session (L4, from its pf-b).
//!
//! It answers the INVITE at once (after its answer delay, when the harness holds it), takes
//! the link on the ACK or from the peer, strips the CPIM wrapper from what arrives and reports
//! each piece of the content at its offset ([`crate::entity::NodeEvent::Data`]), then the
//! whole ([`crate::entity::NodeEvent::Delivered`]).

use super::super::state::{CallIdx, DialogState, LegIdx};
use super::super::Node;
use super::{Invited, Rules};
use crate::codec::cpim::Cpim;
use crate::codec::msrp::RangeTracker;
use crate::config::Link;
use crate::entity::{Leave, NodeEvent, Output};
use bytes::Bytes;

/// What client-b has of a call's content: the CPIM head until it is complete, pieces that
/// came before it, and which byte ranges arrived.
#[derive(Default)]
pub(in crate::entity::node) struct Delivery {
    head: Vec<u8>,
    head_len: Option<u64>,
    early: Vec<(u64, Bytes)>,
    pub(in crate::entity::node) tracker: RangeTracker,
    pub(in crate::entity::node) delivered: bool,
    /// It left the session mid-transfer (the member-leaves scenario).
    left: bool,
}

pub(in crate::entity::node) struct ClientB;

impl Rules for ClientB {
    fn links(&self) -> (Link, Link) {
        (Link::L4, Link::L4)
    }
    fn middle(&self) -> bool {
        false
    }
    fn delivers(&self) -> bool {
        true
    }
    /// Answers at once: the call is for this member; or declines it with the final non-2xx
    /// the harness's member-declines scenario gives this member (486 Busy Here, 603 Decline).
    fn invited(&self, node: &mut Node, inv: Invited<'_>) {
        let call = &mut node.calls[inv.call];
        call.member = Some(node.cfg.name.clone());
        if node.cfg.holds.no_answer.contains(&node.cfg.name) {
            // A member that is gone: nothing at all goes back (no 100 either; retransmissions
            // find no last response to repeat), and its session is over at once here.
            node.legs[inv.leg].state = DialogState::Failed;
            node.end_call_if_done(inv.call);
            return;
        }
        if let Some(&code) = node.cfg.holds.decline.get(&node.cfg.name) {
            node.reject_up(inv.leg, code, super::super::signalling::reason_phrase(code));
            return;
        }
        call.delivery = Some(Delivery::default());
        node.answer_up(inv.leg);
    }
    /// Its own answer delay.
    fn answering_for(&self, node: &Node, _call: CallIdx) -> Option<String> {
        Some(node.cfg.name.clone())
    }
    /// Never asked: client-b has no down leg.
    fn ack_now(&self, _node: &Node, _leg: LegIdx) -> bool {
        true
    }
    /// Never asked: client-b has no down leg.
    fn down_trigger(&self, _node: &Node, _leg: LegIdx) -> bool {
        false
    }
    /// Never asked: client-b has no down leg.
    fn down_done(&self, _node: &Node, _leg: LegIdx) -> bool {
        false
    }
}

impl Node {
    /// The member-leaves scenario: once the first chunk of content has arrived, this member
    /// leaves its session — with a BYE (RFC 3261 §15.1), or by closing its link (L4) without
    /// one. Nothing more of the message is taken.
    pub(in crate::entity::node) fn maybe_leave(&mut self, leg: LegIdx) {
        let call = self.legs[leg].call;
        let Some(&how) = self.cfg.holds.leave.get(&self.cfg.name) else {
            return;
        };
        let Some(d) = self.calls[call].delivery.as_mut() else {
            return;
        };
        if d.left {
            return;
        }
        d.left = true;
        match how {
            // Content may come before the ACK (behind a SIP/IP core): the BYE then waits
            // for it (RFC 3261 §15).
            Leave::Bye => match self.legs[leg].state {
                DialogState::Confirmed => self.send_bye(leg),
                DialogState::AwaitAck => self.legs[leg].bye_after_ack = true,
                _ => {}
            },
            Leave::Close => {
                if let Some(conn) = self.legs[leg].conn {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        if !c.closed {
                            c.closed = true;
                            self.out.push_back(Output::Close { conn });
                        }
                    }
                }
            }
        }
        self.close_session(leg);
    }

    /// A piece of a SEND's body at `abs_offset` of the CPIM object: once the CPIM head is
    /// complete, the content after it goes out as [`NodeEvent::Data`].
    pub(in crate::entity::node) fn deliver(&mut self, call: CallIdx, abs_offset: u64, data: Bytes) {
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

    /// [`NodeEvent::Delivered`] once every byte of the object arrived.
    pub(in crate::entity::node) fn check_delivered(&mut self, call: CallIdx) {
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
