//! How sessions end: a down leg's BYE once it is done, a call that ends when all its legs
//! did (with a clean or failed verdict), an up leg rejected when every down leg failed,
//! closing a session's MSRP state and idle connections, and a link lost under a session.

use super::state::{CallIdx, DialogState, LegIdx, Opens, Side};
use super::Node;
use crate::entity::{ConnId, Fault, NodeEvent, Output};
use std::net::SocketAddr;

impl Node {
    pub(super) fn on_down_failed(&mut self, leg: LegIdx, code: u16) {
        let call = self.legs[leg].call;
        let all_failed = self.calls[call].downs.iter().all(|&d| {
            matches!(
                self.legs[d].state,
                DialogState::Failed | DialogState::Terminated
            )
        });
        if !all_failed && self.rules.takes_turns() && self.fault(Fault::DeclineAnswersCf) {
            // x takes a member's decline for an answer (a fault).
            if let Some(up) = self.calls[call].up {
                self.answer_up(up);
            }
        }
        if all_failed {
            if let Some(up) = self.calls[call].up {
                if !self.calls[call].answered_up {
                    self.calls[call].answered_up = true;
                    let code = if (300..700).contains(&code) {
                        code
                    } else {
                        480
                    };
                    self.reject_up(up, code, super::signalling::reason_phrase(code));
                } else {
                    // Answered already (x at once, FIG 1, 3, 7): nobody is left to serve.
                    self.on_down_ended(call);
                }
            }
        }
        self.end_call_if_done(call);
    }

    /// A down leg ended from its far side (a BYE from downstream, every member declined): a
    /// middle entity with no down leg left ends its up leg too — with a BYE once its 2xx is
    /// ACKed (its 200 went out already; the final non-2xx case is [`Node::on_down_failed`]'s).
    pub(super) fn on_down_ended(&mut self, call: CallIdx) {
        if !self.rules.middle() || self.calls[call].bye_from_up {
            return;
        }
        let none_left = self.calls[call].downs.iter().all(|&d| {
            matches!(
                self.legs[d].state,
                DialogState::Failed | DialogState::Terminated
            )
        });
        if !none_left || self.fault(Fault::NoByeUpstream) {
            return;
        }
        let Some(up) = self.calls[call].up else {
            return;
        };
        match self.legs[up].state {
            DialogState::Confirmed => self.send_bye(up),
            DialogState::AwaitAck => self.legs[up].bye_after_ack = true,
            _ => {}
        }
    }

    /// Ends a confirmed down leg with BYE once the role says it is done (client-a: its content
    /// is answered; a middle entity: the upstream BYE came and all content went down).
    pub(super) fn maybe_bye(&mut self, leg: LegIdx) {
        let l = &self.legs[leg];
        if l.side != Side::Down || l.state != DialogState::Confirmed {
            return;
        }
        let done = self.rules.down_done(self, leg);
        if done {
            self.send_bye(leg);
        }
    }

    pub(super) fn end_call_if_done(&mut self, call: CallIdx) {
        if self.calls[call].ended {
            return;
        }
        let c = &self.calls[call];
        let legs: Vec<LegIdx> = c.up.into_iter().chain(c.downs.iter().copied()).collect();
        let all_done = !legs.is_empty()
            && legs.iter().all(|&l| {
                matches!(
                    self.legs[l].state,
                    DialogState::Terminated | DialogState::Failed
                )
            });
        if !all_done {
            return;
        }
        let ok = legs
            .iter()
            .all(|&l| self.legs[l].state == DialogState::Terminated && !self.legs[l].media_failed)
            && self.calls[call]
                .delivery
                .as_ref()
                .map(|d| d.delivered)
                .unwrap_or(true);
        for &l in &legs {
            self.close_session(l);
        }
        self.live_calls.remove(&call);
        let c = &mut self.calls[call];
        c.ended = true;
        c.content = None;
        let detail = if ok {
            "clean teardown".to_string()
        } else {
            "session failed".to_string()
        };
        let id = c.id;
        self.out.push_back(Output::Event(NodeEvent::SessionEnded {
            session: id,
            ok,
            detail,
        }));
    }

    /// Ends a leg's MSRP session: no more relay data, its session id forgotten, its
    /// connection closed once idle (by the side that opened it).
    pub(super) fn close_session(&mut self, leg: LegIdx) {
        let l = &mut self.legs[leg];
        if l.session_closed {
            return;
        }
        l.session_closed = true;
        l.ready = false;
        l.pending.clear();
        l.pending_bytes = 0;
        self.bp_legs.push(leg);
        let l = &mut self.legs[leg];
        if let Some(sid) = l.local_path.session_id.clone() {
            if let Some(v) = self.sessions.get_mut(&sid) {
                v.retain(|&x| x != leg);
                if v.is_empty() {
                    self.sessions.remove(&sid);
                }
            }
        }
        let call = l.call;
        let own = l.conn;
        if let Some(conn) = own {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.legs.retain(|&x| x != leg);
            }
            self.bp_conns.push(conn);
        }
        if self.variant(call).reuse && !self.fault(Fault::NoReuse) {
            // Few connections (one per peer): scanning them is cheap.
            self.close_idle_conns(call);
        } else if let Some(conn) = own {
            // Without reuse only this leg's connection can have become idle: no scan of
            // every connection on the fan-out's hot path (one per member).
            if let Some(c) = self.conns.get_mut(&conn) {
                if c.legs.is_empty() && !c.closed && c.target.is_some() {
                    c.closed = true;
                    self.out.push_back(Output::Close { conn });
                }
            }
        }
    }

    /// Only the side that opened a connection closes it when idle: the opener may be about
    /// to reuse it for another session (RFC 4975 §5.4), and the accepting side cannot
    /// know. The accepting side closes when the opener does. With reuse, an idle connection
    /// stays open while a session that reuses may still want it — of this call (a member
    /// that answers late) or of another one (pf-b's members are separate calls: member 1's
    /// BYE may come before member 2's ACK triggers its link to the same x) — so the late
    /// session does not open a second connection to the same peer.
    fn close_idle_conns(&mut self, call: CallIdx) {
        let reuse = self.variant(call).reuse && !self.fault(Fault::NoReuse);
        let waiting: Vec<Option<SocketAddr>> = if reuse {
            let calls = &self.calls;
            self.live_calls
                .iter()
                .filter(|&&c| self.variant(c).reuse)
                .flat_map(|&c| calls[c].downs.iter().chain(calls[c].up.iter()))
                .map(|&l| &self.legs[l])
                .filter(|l| !l.session_closed && l.conn.is_none() && l.opens != Opens::Peer)
                .filter(|l| !matches!(l.state, DialogState::Failed | DialogState::Terminated))
                .map(|l| {
                    l.remote_sdp
                        .as_ref()
                        .and_then(|s| s.next_hop().socket_addr())
                })
                .collect()
        } else {
            Vec::new()
        };
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.legs.is_empty() && !c.closed && c.target.is_some())
            // A session whose peer is not known yet may still go to any target.
            .filter(|(_, c)| !waiting.iter().any(|w| w.is_none() || *w == c.target))
            .map(|(id, _)| *id)
            .collect();
        for conn in idle {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.closed = true;
            }
            self.out.push_back(Output::Close { conn });
        }
    }

    pub(super) fn on_conn_lost(&mut self, conn: ConnId, reason: &str) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let was_closed = c.closed;
        c.closed = true;
        let legs = c.legs.clone();
        let mid_message = c.cur.is_some();
        self.conns.remove(&conn);
        // Every leg it carried is re-judged for backpressure, the finished ones too: the
        // connection's unflushed bytes counted for them and are gone with it.
        self.bp_legs.extend(legs.iter().copied());
        for leg in legs {
            let l = &self.legs[leg];
            // The peer may close as soon as it answered our BYE, before we read that answer.
            let finished = matches!(l.state, DialogState::AwaitByeOk | DialogState::Terminated)
                && l.outstanding == 0
                && l.pending.is_empty();
            if l.session_closed || finished {
                continue;
            }
            if !was_closed || mid_message {
                self.warn(format!(
                    "MSRP link of {} lost: {reason}",
                    self.legs[leg].remote_uri
                ));
            }
            let was_ready = self.legs[leg].ready;
            self.legs[leg].media_failed = true;
            self.bp_legs.push(leg);
            self.legs[leg].conn = None;
            self.bp_legs.push(leg);
            self.legs[leg].ready = false;
            // A middle entity whose member's side closed a working link (bound) under a live
            // session releases that leg at once (the member left) rather than at the call's
            // end; a link that never came up is the call's end's business as before.
            let release = was_ready
                && self.rules.middle()
                && self.legs[leg].side == Side::Down
                && self.legs[leg].state == DialogState::Confirmed
                && !self.calls[self.legs[leg].call].bye_from_up
                && !self.fault(Fault::NoReleaseOnClose);
            if release {
                self.send_bye(leg);
            } else {
                self.maybe_bye(leg);
            }
        }
    }
}
