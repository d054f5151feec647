//! Backpressure in a middle entity: when a down leg's writable backlog (queued relay data
//! plus bytes written but not yet flushed) passes the high-water mark, the node asks the
//! driver to stop reading the upstream link that feeds it, so TCP flow control pushes back to
//! the sender; it reads again once no leg it feeds is over. Decided incrementally from the
//! legs and connections each input touched; debug builds check it against a full recount.

use super::role::x::Admit;
use super::state::{DialogState, LegIdx, Side};
use super::Node;
use crate::entity::{ConnId, Output};

impl Node {
    /// Whether down leg `d` has more writable bytes queued than the high-water mark.
    fn leg_over(&self, d: LegIdx) -> bool {
        let l = &self.legs[d];
        if l.side != Side::Down
            || l.media_failed
            || matches!(l.state, DialogState::Failed | DialogState::Terminated)
        {
            return false;
        }
        let conn = l.conn.and_then(|c| self.conns.get(&c));
        let unflushed = conn.map(|c| c.unflushed).unwrap_or(0);
        // Bytes waiting behind another leg's message on a shared connection cannot drain
        // until that message ends, which needs more upstream bytes: pausing for them would
        // deadlock, so only the writable backlog counts.
        let blocked = conn
            .map(|c| c.busy.is_some() && c.busy != Some(d))
            .unwrap_or(false)
            // Likewise a fan-out leg waiting for its turn: it drains only after others end.
            || matches!(l.admit, Admit::Waiting);
        let queued = if blocked { 0 } else { l.pending_bytes };
        queued + unflushed > self.cfg.high_water
    }

    /// Whether the link `conn` must not be read: a call whose up leg it carries has a down
    /// leg over the high-water mark. (A link that carries no up leg any more is read: the
    /// peer's close must be seen.)
    fn up_conn_paused(&self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        c.legs.iter().any(|&l| {
            let call = &self.calls[self.legs[l].call];
            call.up == Some(l) && call.over_downs > 0
        })
    }

    /// Stops reading an upstream link while any leg it feeds is over the high-water mark,
    /// and reads it again once none is. Incremental: only the legs and connections touched
    /// since the last input are looked at (x gets an MSRP response and a flush report per
    /// member and chunk: a full scan on every input would be quadratic in the group's size).
    pub(super) fn update_backpressure(&mut self) {
        if !self.rules.middle() {
            self.bp_legs.clear();
            self.bp_conns.clear();
            return;
        }
        let mut legs = std::mem::take(&mut self.bp_legs);
        let conns = std::mem::take(&mut self.bp_conns);
        let mut ups: Vec<ConnId> = Vec::new();
        for &conn in &conns {
            if let Some(c) = self.conns.get(&conn) {
                legs.extend(c.legs.iter().copied());
                ups.push(conn);
            }
        }
        for &leg in &legs {
            let over = self.leg_over(leg);
            if over == self.legs[leg].over {
                continue;
            }
            self.legs[leg].over = over;
            let call = self.legs[leg].call;
            let c = &mut self.calls[call];
            if over {
                c.over_downs += 1;
            } else {
                c.over_downs -= 1;
            }
            if let Some(uc) = c.up.and_then(|u| self.legs[u].conn) {
                ups.push(uc);
            }
        }
        ups.sort_unstable();
        ups.dedup();
        for conn in ups {
            let pause = self.up_conn_paused(conn);
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.paused != pause && !c.closed {
                c.paused = pause;
                self.out.push_back(if pause {
                    Output::PauseRead { conn }
                } else {
                    Output::ResumeRead { conn }
                });
            }
        }
        // Keep the buffers (no allocation per input).
        legs.clear();
        self.bp_legs = legs;
        let mut conns = conns;
        conns.clear();
        self.bp_conns = conns;
        #[cfg(debug_assertions)]
        self.check_backpressure();
    }

    /// Debug builds: the incremental state equals a full recomputation (small nodes only).
    #[cfg(debug_assertions)]
    fn check_backpressure(&self) {
        if self.legs.len() > 400 {
            return;
        }
        let mut counts = vec![0usize; self.calls.len()];
        for (i, l) in self.legs.iter().enumerate() {
            let over = self.leg_over(i);
            assert_eq!(l.over, over, "{}: leg {i} over flag stale", self.cfg.name);
            if over {
                counts[l.call] += 1;
            }
        }
        for (i, c) in self.calls.iter().enumerate() {
            assert_eq!(c.over_downs, counts[i], "{}: call {i} count", self.cfg.name);
        }
        for (&id, c) in &self.conns {
            if !c.closed {
                let want = self.up_conn_paused(id);
                assert_eq!(c.paused, want, "{}: link {id} paused", self.cfg.name);
            }
        }
    }
}
