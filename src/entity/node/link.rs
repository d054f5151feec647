//! MSRP links: opening one when this node is its opener and its trigger fired (the role
//! says when for down legs), reusing a connection to the same target (RFC 4975 §5.4 with
//! `reuse`), and the active side's bodiless binding SEND, after which the leg is ready.

use super::state::{Conn, DialogState, FastMap, Hold, LegIdx, Opens, Side};
use super::timers::TimerKind;
use super::Node;
use crate::codec::msrp::{encode_end, new_ident, send_head, ByteRange, Flag};
use crate::entity::{ConnId, Fault, Output};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::Duration;

/// A connection this node opened to `target` that a new session may share (`reuse`): still
/// open and of the session's scheme, TLS (`msrps:`) or plain (`msrp:`) — never the other
/// (RFC 4975 §14, RFC 6135).
fn reusable(conns: &FastMap<ConnId, Box<Conn>>, target: SocketAddr, tls: bool) -> Option<ConnId> {
    conns
        .iter()
        .filter(|(_, c)| c.target == Some(target) && c.tls == tls && !c.closed)
        .map(|(id, _)| *id)
        .min()
}

impl Node {
    /// Opens (or reuses) the link of `leg` when this node is its opener and the trigger fired.
    pub(super) fn maybe_open(&mut self, leg: LegIdx) {
        let l = &self.legs[leg];
        // Fault::ConnectBefore200: connected before the peer's path was known; bind now.
        if l.open_requested && !l.ready && l.remote_sdp.is_some() && !l.session_closed {
            if let Some(c) = l.conn {
                if self.fault(Fault::ConnectBefore200)
                    && self.conns.get(&c).is_some_and(|c| c.connected)
                {
                    self.bind(leg);
                }
            }
        }
        let l = &self.legs[leg];
        if l.opens != Opens::We || l.open_requested || l.remote_sdp.is_none() || l.session_closed {
            return;
        }
        let fired = match l.side {
            Side::Down => self.rules.down_trigger(self, leg),
            // The INVITE receiver opens on the ACK of its leg (on its 200 with the
            // early-trigger fault).
            Side::Up if self.fault(Fault::EarlyTrigger) => {
                matches!(l.state, DialogState::AwaitAck | DialogState::Confirmed)
            }
            Side::Up => l.state == DialogState::Confirmed,
        };
        if !fired {
            return;
        }
        if self.fault(Fault::LateTrigger) && l.held.open != Hold::Due {
            // Any other event until the timer fires must not open it early either.
            if l.held.open == Hold::Free {
                self.legs[leg].held.open = Hold::Held;
                self.arm(leg, TimerKind::HoldOpen, Duration::from_secs(3));
            }
            return;
        }
        let target_uri = l.remote_sdp.as_ref().expect("checked").next_hop().clone();
        let wrong_target = self
            .fault(Fault::ConnectWrongTarget)
            .then_some(l.remote_target);
        let Some(target) = wrong_target.or_else(|| target_uri.socket_addr()) else {
            self.warn(format!(
                "cannot connect to {target_uri}: host is not an IP address"
            ));
            self.legs[leg].media_failed = true;
            self.bp_legs.push(leg);
            return;
        };
        self.legs[leg].open_requested = true;
        // The peer's scheme says how: msrps: is TLS (the plain-over-tls fault ignores it).
        let tls = target_uri.scheme == crate::codec::msrp::Scheme::Msrps
            && !self.fault(Fault::PlainOverTls);
        if self.leg_variant(leg).reuse && !self.fault(Fault::NoReuse) {
            let existing = reusable(&self.conns, target, tls);
            if let Some(conn) = existing {
                self.attach(leg, conn);
                if self.conns[&conn].connected {
                    self.bind(leg);
                }
                return;
            }
        }
        let conn = self.new_conn_id();
        let mut c = Conn::new(Some(target), false, &self.cfg.limits);
        c.tls = tls;
        self.conns.insert(conn, Box::new(c));
        self.attach(leg, conn);
        self.out.push_back(Output::Connect {
            conn,
            local_ip: self.cfg.msrp.ip(),
            to: target,
            tls,
        });
    }

    /// [`Fault::ConnectBefore200`]: client-a's L1 to pf-a's configured MSRP address, opened
    /// with INVITE1 (a correct client-a waits for 200-1 and its `a=path`).
    pub(super) fn connect_early(&mut self, leg: LegIdx) {
        let target = self.cfg.topology.pf_a.msrp;
        let tls = self.leg_variant(leg).msrp_transport == crate::config::MsrpTransport::Tls
            && !self.fault(Fault::PlainOverTls);
        let conn = self.new_conn_id();
        let mut c = Conn::new(Some(target), false, &self.cfg.limits);
        c.tls = tls;
        self.conns.insert(conn, Box::new(c));
        self.legs[leg].open_requested = true;
        self.attach(leg, conn);
        self.out.push_back(Output::Connect {
            conn,
            local_ip: self.cfg.msrp.ip(),
            to: target,
            tls,
        });
    }

    pub(super) fn attach(&mut self, leg: LegIdx, conn: ConnId) {
        self.legs[leg].conn = Some(conn);
        self.bp_legs.push(leg);
        self.bp_conns.push(conn);
        let txs = std::mem::take(&mut self.legs[leg].pending_tx);
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.legs.contains(&leg) {
                c.legs.push(leg);
            }
            for (tid, last) in txs {
                c.tx.insert(tid, (leg, last));
            }
        }
    }

    pub(super) fn on_connected(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.connected = true;
        // Every session it was opened for ended while it was connecting (a BYE came first):
        // it is idle, and its opener closes it (a close asked for earlier found nothing open).
        if c.legs.is_empty() {
            c.closed = true;
            self.out.push_back(Output::Close { conn });
            return;
        }
        for leg in c.legs.clone() {
            self.bind(leg);
        }
    }

    /// The active side's binding SEND (bodiless), then whatever waited for the link.
    pub(super) fn bind(&mut self, leg: LegIdx) {
        let Some(conn) = self.legs[leg].conn else {
            return;
        };
        let delay = self.cfg.holds.send_delay;
        if !delay.is_zero() && self.legs[leg].held.bind == Hold::Free {
            self.legs[leg].held.bind = Hold::Held;
            self.arm(leg, TimerKind::HoldBind, delay);
            return;
        }
        if self.fault(Fault::NoBindSend) {
            self.legs[leg].ready = true;
            self.flush_leg(leg);
            let call = self.legs[leg].call;
            self.pump(call);
            return;
        }
        let Some(to) = self.legs[leg]
            .remote_sdp
            .as_ref()
            .map(|s| s.next_hop().clone())
        else {
            return;
        };
        let tid = new_ident(&mut self.rng);
        let message_id = new_ident(&mut self.rng);
        let head = send_head(
            &tid,
            &to,
            &self.legs[leg].local_path,
            &message_id,
            ByteRange {
                start: 1,
                end: Some(0),
                total: Some(0),
            },
            None,
        );
        let mut buf = BytesMut::new();
        head.encode(&mut buf);
        encode_end(&mut buf, &tid, Flag::End, false);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.tx.insert(tid, (leg, false));
        }
        self.legs[leg].outstanding += 1;
        self.watch_msrp(leg);
        self.write_ctl(conn, buf.freeze());
        self.legs[leg].ready = true;
        self.flush_leg(leg);
        let call = self.legs[leg].call;
        self.pump(call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An msrps: session never rides a plain connection to the same host and port, nor an
    /// msrp: session a TLS one; a closed connection is never reused.
    #[test]
    fn reuse_keeps_the_scheme() {
        let limits = crate::limits::Limits::default();
        let t: SocketAddr = "127.0.0.1:2855".parse().unwrap();
        let other: SocketAddr = "127.0.0.2:2855".parse().unwrap();
        let conn = |target, tls, closed| {
            let mut c = Conn::new(Some(target), true, &limits);
            c.tls = tls;
            c.closed = closed;
            c
        };
        let mut conns: FastMap<ConnId, Box<Conn>> = FastMap::default();
        conns.insert(1, Box::new(conn(t, false, false)));
        conns.insert(2, Box::new(conn(other, true, false)));
        assert_eq!(reusable(&conns, t, false), Some(1));
        assert_eq!(
            reusable(&conns, t, true),
            None,
            "msrps on a plain connection"
        );
        conns.insert(3, Box::new(conn(t, true, true)));
        assert_eq!(reusable(&conns, t, true), None, "a closed connection");
        conns.insert(4, Box::new(conn(t, true, false)));
        assert_eq!(reusable(&conns, t, true), Some(4));
        assert_eq!(
            reusable(&conns, t, false),
            Some(1),
            "msrp on a TLS connection"
        );
        conns.get_mut(&1).unwrap().closed = true;
        assert_eq!(reusable(&conns, t, false), None);
    }
}
