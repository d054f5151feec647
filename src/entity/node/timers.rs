//! The node's timers, one heap for all legs: SIP Timer A/B (INVITE retransmission and
//! timeout), the UAS's 2xx retransmission and its wait for the ACK (RFC 3261 §13.3.1.4),
//! Timer E/F for BYE, the 30 s MSRP response timer (RFC 4975 §7.1.1) and held actions.

use super::state::{DialogState, Hold, LegIdx, Side};
use super::Node;
use crate::entity::Fault;
use std::cmp::Reverse;
use std::time::{Duration, Instant};

/// How long a SEND may wait for its response (RFC 4975 §7.1.1).
pub(super) const MSRP_TIMEOUT: Duration = Duration::from_secs(30);

/// The harness's pf-b gives up on its silent member this soon: well within the reference
/// SUT's `--invite-timeout-ms 1000`, so x (the SUT) sees the 408 rather than its own timeout.
const HARNESS_PF_B_GIVE_UP: Duration = Duration::from_millis(150);

/// (due, sequence, leg, kind, the interval it was armed with: the next one doubles it).
pub(super) type TimerEntry = (Instant, u64, LegIdx, TimerKind, Duration);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKind {
    InviteRetx,
    InviteTimeout,
    OkRetx,
    OkTimeout,
    ByeRetx,
    ByeTimeout,
    /// A SEND got no response within 30 s (RFC 4975 §7.1.1).
    MsrpTimeout,
    /// Held actions (ordering choices, pauses, the late-trigger fault).
    HoldAnswer,
    HoldAck,
    HoldBind,
    HoldOpen,
    /// client-a's gap between two content chunks (exception scenarios).
    ChunkGap,
    /// client-a's wait for the success REPORT it asked for, or its linger after a last
    /// chunk sent with `Failure-Report: no` (PIXIT `report-wait-ms`, `no-response-wait-ms`).
    ReportWait,
    /// client-b's delay before its success REPORT ([`crate::entity::Holds::report_delay`]).
    ReportDelay,
}

impl Node {
    /// This node's Timer B: the configured INVITE timeout. For the harness in a scenario with
    /// a member that never answers: as that member's pf-b, [`HARNESS_PF_B_GIVE_UP`] (so that a
    /// SUT x hears the 408 before its own INVITE timeout); otherwise the profile's
    /// `no-answer-wait-ms` (the time the SUT has to give up first).
    pub(super) fn timer_b(&self) -> Duration {
        if self.cfg.holds.no_answer.is_empty() {
            return self.cfg.timers.timer_b();
        }
        if self.cfg.role == crate::topology::Role::PfB {
            return HARNESS_PF_B_GIVE_UP;
        }
        self.cfg.holds.no_answer_wait_ms.map_or(
            crate::entity::holds::DEFAULT_NO_ANSWER_WAIT,
            Duration::from_millis,
        )
    }

    pub(super) fn arm(&mut self, leg: LegIdx, kind: TimerKind, after: Duration) {
        self.timer_seq += 1;
        self.timers.push(Reverse((
            self.now + after,
            self.timer_seq,
            leg,
            kind,
            after,
        )));
    }

    /// A timer fired: each kind re-checks the leg's state, so a timer whose work was done
    /// meanwhile does nothing.
    pub(super) fn on_timer(&mut self, leg: LegIdx, kind: TimerKind, iv: Duration) {
        let t2 = self.cfg.timers.t2;
        let state = self.legs[leg].state;
        match kind {
            TimerKind::InviteRetx => {
                if state == DialogState::AwaitOk && self.legs[leg].last_response.is_none() {
                    if let Some(inv) = self.legs[leg].invite.clone() {
                        let to = self.legs[leg].invite_dest;
                        self.send_sip(Some(leg), to, *inv);
                        self.arm(leg, TimerKind::InviteRetx, iv * 2);
                    }
                }
            }
            TimerKind::InviteTimeout => {
                if state == DialogState::AwaitOk
                    && self.legs[leg].side == Side::Down
                    && !self.fault(Fault::WaitForeverForMember)
                {
                    self.legs[leg].state = DialogState::Failed;
                    self.bp_legs.push(leg);
                    self.warn(format!(
                        "INVITE to {} timed out (Timer B)",
                        self.legs[leg].remote_uri
                    ));
                    self.on_down_failed(leg, 408);
                }
            }
            TimerKind::OkRetx => {
                if state == DialogState::AwaitAck {
                    if let Some(ok) = self.legs[leg].last_response.clone() {
                        let peer = self.legs[leg].peer;
                        self.send_sip(Some(leg), peer, *ok);
                        self.arm(leg, TimerKind::OkRetx, (iv * 2).min(t2));
                    }
                }
            }
            TimerKind::OkTimeout => {
                if state == DialogState::AwaitAck {
                    self.warn(format!(
                        "no ACK for the 200 to {} (64*T1)",
                        self.legs[leg].remote_uri
                    ));
                    self.legs[leg].state = DialogState::Failed;
                    self.bp_legs.push(leg);
                    let call = self.legs[leg].call;
                    self.calls[call].bye_from_up = true;
                    for d in self.calls[call].downs.clone() {
                        self.legs[d].media_failed = true;
                        self.bp_legs.push(d);
                        self.maybe_bye(d);
                    }
                    self.end_call_if_done(call);
                }
            }
            TimerKind::ByeRetx => {
                if state == DialogState::AwaitByeOk {
                    if let Some(bye) = self.legs[leg].bye.clone() {
                        self.send_in_dialog(leg, *bye);
                        self.arm(leg, TimerKind::ByeRetx, (iv * 2).min(t2));
                    }
                }
            }
            TimerKind::HoldAnswer => {
                self.legs[leg].held.answer = Hold::Due;
                self.answer_up(leg);
            }
            TimerKind::HoldAck => {
                if self.legs[leg].state == DialogState::AwaitAck {
                    self.send_ack(leg);
                }
            }
            TimerKind::HoldBind => self.bind(leg),
            TimerKind::ChunkGap => {
                self.legs[leg].held.chunk = Hold::Free;
                let call = self.legs[leg].call;
                self.pump(call);
            }
            TimerKind::ReportWait => {
                if self.legs[leg].report_due {
                    self.legs[leg].report_due = false;
                    if self.cfg.holds.success_report {
                        self.warn(format!(
                            "no success REPORT from {} within {} ms (report-wait-ms)",
                            self.legs[leg].remote_uri,
                            iv.as_millis()
                        ));
                    }
                    self.maybe_bye(leg);
                }
            }
            TimerKind::ReportDelay => {
                if let (Some(o), Some(conn)) =
                    (self.legs[leg].report_owed.take(), self.legs[leg].conn)
                {
                    self.send_report(leg, conn, o);
                }
            }
            TimerKind::HoldOpen => {
                self.legs[leg].held.open = Hold::Due;
                self.maybe_open(leg);
            }
            TimerKind::MsrpTimeout => {
                let l = &self.legs[leg];
                if l.session_closed || l.media_failed {
                    return;
                }
                let since = l
                    .msrp_progress
                    .map(|t| self.now.saturating_duration_since(t))
                    .unwrap_or_default();
                if l.outstanding > 0 && since >= MSRP_TIMEOUT {
                    let uri = l.remote_uri.clone();
                    self.warn(format!(
                        "no MSRP response from {uri} for {}s",
                        since.as_secs()
                    ));
                    self.legs[leg].media_failed = true;
                    self.bp_legs.push(leg);
                    self.maybe_bye(leg);
                } else {
                    let left = MSRP_TIMEOUT.saturating_sub(if l.outstanding > 0 {
                        since
                    } else {
                        Duration::ZERO
                    });
                    if l.outstanding == 0 {
                        self.legs[leg].msrp_progress = Some(self.now);
                    }
                    self.arm(
                        leg,
                        TimerKind::MsrpTimeout,
                        left.max(Duration::from_millis(1)),
                    );
                }
            }
            TimerKind::ByeTimeout => {
                if state == DialogState::AwaitByeOk {
                    self.warn(format!(
                        "BYE to {} got no answer (Timer F)",
                        self.legs[leg].remote_uri
                    ));
                    self.legs[leg].state = DialogState::Terminated;
                    self.bp_legs.push(leg);
                    self.legs[leg].media_failed = true;
                    self.bp_legs.push(leg);
                    self.close_session(leg);
                    let call = self.legs[leg].call;
                    self.end_call_if_done(call);
                }
            }
        }
    }

    /// Starts the 30 s SEND-response watchdog of a leg once its link carries requests.
    pub(super) fn watch_msrp(&mut self, leg: LegIdx) {
        if self.legs[leg].msrp_progress.is_none() {
            self.legs[leg].msrp_progress = Some(self.now);
            self.arm(leg, TimerKind::MsrpTimeout, MSRP_TIMEOUT);
        }
    }
}
