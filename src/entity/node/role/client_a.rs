//! client-a, the sender: one down leg per message (L1, to pf-a), no INVITE taken.
//!
//! It ACKs the 200 at once, unless the harness's ordering choice lets the first SEND go
//! first (only when it opens L1); opens L1 as soon as the 200 is in; writes the CPIM object
//! in chunks while the link has room (the content read piece by piece, never whole); and
//! ends the session once the last chunk is answered.

use super::super::state::{Ack, CallIdx, DialogState, Hold, LegIdx, Opens};
use super::super::timers::TimerKind;
use super::super::Node;
use super::super::NodeConfig;
use super::{Invited, Rules};
use crate::codec::cpim::Cpim;
use crate::codec::msrp::{
    chunk_ranges, encode_end, encode_send_head_with, new_ident, Flag, ReportRequest,
};
use crate::config::{GroupKind, Link};
use crate::entity::{ContentSource, Fault};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

pub(in crate::entity::node) struct ClientA;

impl Rules for ClientA {
    fn links(&self) -> (Link, Link) {
        (Link::L1, Link::L1)
    }
    fn middle(&self) -> bool {
        false
    }
    fn sends(&self) -> bool {
        true
    }
    fn takes_invites(&self) -> bool {
        false
    }
    /// The sender's own URI.
    fn invite_from(&self, cfg: &NodeConfig) -> String {
        cfg.topology.sender.clone()
    }
    /// Never asked: client-a takes no INVITE.
    fn invited(&self, _node: &mut Node, _inv: Invited<'_>) {}
    /// Ordering choice: the first SEND may precede the ACK (only when client-a opens L1).
    fn ack_now(&self, node: &Node, leg: LegIdx) -> bool {
        !(node.cfg.holds.ack_after_first_send && node.legs[leg].opens == Opens::We)
    }
    /// L1 opens on the 200 (the early-trigger fault changes nothing here).
    fn down_trigger(&self, node: &Node, leg: LegIdx) -> bool {
        matches!(
            node.legs[leg].state,
            DialogState::AwaitAck | DialogState::Confirmed
        )
    }
    /// Done once the last chunk is written, every SEND answered and the success REPORT in
    /// (or its wait over), or once the media failed.
    fn down_done(&self, node: &Node, leg: LegIdx) -> bool {
        let l = &node.legs[leg];
        (l.content_done && l.outstanding == 0 && l.pending.is_empty() && !l.report_due)
            || l.media_failed
    }
}

impl Node {
    /// A new session for `content`: the CPIM wrapper (its head only; the content is read
    /// piece by piece), the chunk plan, and the INVITE to pf-a.
    pub(in crate::entity::node) fn start_send(
        &mut self,
        content: Arc<dyn ContentSource>,
        variant: Option<Box<crate::config::Variant>>,
    ) {
        if !self.rules.sends() {
            self.warn("only client-a sends".into());
            return;
        }
        let topo = self.cfg.topology.clone();
        let call = self.new_call(variant.filter(|_| self.cfg.per_call_variant));
        let cpim = Cpim::wrap(
            &topo.sender,
            &topo.group,
            &new_ident(&mut self.rng),
            "application/octet-stream",
            Bytes::new(),
            self.wall_now(),
        );
        // The content is never copied into the CPIM object: chunks are cut from the wrapper's
        // head and the content source.
        let head = Bytes::from(cpim.encode_head());
        let total = head.len() as u64 + content.len();
        self.calls[call].chunks = chunk_ranges(total, self.variant(call).chunk_size);
        self.calls[call].content = Some((head, content));
        let (ruri, members) = match self.variant(call).group {
            GroupKind::Predefined => (topo.group.clone(), None),
            GroupKind::Adhoc => (
                if self.fault(Fault::AdhocToGroupUri) {
                    topo.group.clone()
                } else {
                    topo.factory.clone()
                },
                Some(topo.members.iter().map(|m| m.uri.clone()).collect()),
            ),
        };
        self.invite_down(call, ruri.clone(), ruri, topo.pf_a.sip, members);
        if self.fault(Fault::ConnectBefore200) {
            if let Some(&leg) = self.calls[call].downs.first() {
                self.connect_early(leg);
            }
        }
    }

    /// client-a writes content chunks while the link has room.
    pub(in crate::entity::node) fn pump(&mut self, call: CallIdx) {
        let Some(&leg) = self.calls[call].downs.first() else {
            return;
        };
        if !self.legs[leg].ready || self.calls[call].content.is_none() {
            return;
        }
        let Some(conn) = self.legs[leg].conn else {
            return;
        };
        let high = self.cfg.high_water;
        let gap = self.cfg.holds.chunk_gap;
        while self.calls[call].next_chunk < self.calls[call].chunks.len() {
            if self.legs[leg].held.chunk == Hold::Held {
                break; // The chunk gap's timer pumps again.
            }
            if self
                .conns
                .get(&conn)
                .map(|c| c.unflushed >= high)
                .unwrap_or(true)
            {
                break;
            }
            let (range, mut flag, off, len) = self.calls[call].chunks[self.calls[call].next_chunk];
            self.calls[call].next_chunk += 1;
            // sender-aborts: this chunk ends the message with `#` and none follows (RFC 4975
            // §7.1.1).
            let abort = self
                .cfg
                .holds
                .abort_after_chunks
                .is_some_and(|n| self.calls[call].next_chunk as u32 >= n.max(1));
            if abort && flag != Flag::End {
                flag = Flag::Abort;
                let n = self.calls[call].chunks.len();
                self.calls[call].next_chunk = n;
            }
            let body = object_pieces(
                self.calls[call].content.as_ref().expect("content"),
                off,
                len,
            );
            let tid = new_ident(&mut self.rng);
            let l = &self.legs[leg];
            let Some(to) = l.remote_sdp.as_ref().map(|s| s.next_hop().clone()) else {
                return;
            };
            // reports: what the scenario has client-a ask of its receivers.
            let reports = ReportRequest {
                success: self.cfg.holds.success_report,
                failure_no: self.cfg.holds.failure_report_no,
            };
            let mut buf = BytesMut::new();
            encode_send_head_with(
                &mut buf,
                &tid,
                &to,
                &l.local_path,
                &self.calls[call].message_id,
                range,
                Some("message/cpim"),
                reports,
            );
            let mut tail = BytesMut::new();
            encode_end(&mut tail, &tid, flag, true);
            let last = flag != Flag::More;
            if last {
                self.legs[leg].content_done = true;
            }
            // With Failure-Report: no no response comes (RFC 4975 §7.1.1): none is awaited.
            if !reports.failure_no {
                self.legs[leg].outstanding += 1;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.tx.insert(tid, (leg, last));
                }
            }
            // The session ends once the success REPORT came, or after the profile's wait for
            // it (report-wait-ms); with no responses asked for, after a short linger
            // (no-response-wait-ms), since nothing will say the content arrived.
            if last && flag == Flag::End && (reports.success || reports.failure_no) {
                self.legs[leg].report_due = true;
                let wait = if reports.success {
                    self.cfg.holds.report_wait()
                } else {
                    self.cfg.holds.no_response_wait()
                };
                self.arm(leg, TimerKind::ReportWait, wait);
            }
            self.write(conn, buf.freeze());
            for piece in body {
                self.write(conn, piece);
            }
            self.write(conn, tail.freeze());
            // Ordering choice "ACK after the first SEND": the ACK goes now.
            if matches!(self.legs[leg].ack, Ack::Owed) {
                self.send_ack(leg);
            }
            if !gap.is_zero() && !last {
                self.legs[leg].held.chunk = Hold::Held;
                self.arm(leg, TimerKind::ChunkGap, gap);
            }
        }
    }

    /// Every call's content, as far as its link has room (after a flush report).
    pub(in crate::entity::node) fn pump_all(&mut self) {
        if self.rules.sends() {
            for c in 0..self.calls.len() {
                if !self.calls[c].ended {
                    self.pump(c);
                }
            }
        }
    }
}

/// The bytes `[off, off + len)` of a CPIM object made of `head` then the content source.
fn object_pieces(obj: &(Bytes, Arc<dyn ContentSource>), off: u64, len: u64) -> Vec<Bytes> {
    let (head, content) = obj;
    let (mut off, end) = (off, off + len);
    let h = head.len() as u64;
    let mut out = Vec::new();
    if off < h {
        out.push(head.slice(off as usize..end.min(h) as usize));
        off = end.min(h);
    }
    while off < end {
        let piece = content.read(off - h, (end - off).min(usize::MAX as u64) as usize);
        if piece.is_empty() {
            break; // A source shorter than it said: the Byte-Range check will show it.
        }
        off += piece.len() as u64;
        out.push(piece);
    }
    out
}
