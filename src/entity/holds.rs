//! What the harness, as impersonator, does with time and order: ordering choices (where a
//! figure leaves the order free) and the discriminating pauses that make trigger timing
//! visible; and the exception scenarios (issue 16), in which its members decline, reject the
//! content or leave, and its sender aborts. Plain data on a [`super::NodeConfig`]; the
//! reference SUT leaves it empty.
//!
//! The timing holds apply to the SUT's neighbours only (so that delays do not stack); the
//! scenario's behaviours ([`Holds::scenario`]) to every harness entity of the role they name,
//! wherever it is in the chain. The waits for a peer that does not answer (a success REPORT
//! that never comes) are the profile's PIXIT values, set here by the case.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Holds {
    /// Delay before this node answers its up leg with 200 (client-b, pf-b, x as impersonator).
    #[serde(default, with = "ms")]
    pub answer_delay: Duration,
    /// Per-member answer delay (client-b instances by name; pf-b by the member it serves).
    #[serde(default)]
    pub answer_delay_ms_per_member: BTreeMap<String, u64>,
    /// Delay before this node sends the ACK for a 2xx it received.
    #[serde(default, with = "ms")]
    pub ack_delay: Duration,
    /// Send the ACK only after the first content SEND went out on the leg (client-a).
    #[serde(default)]
    pub ack_after_first_send: bool,
    /// Delay between a link coming up (or binding) and the first request this node writes.
    #[serde(default, with = "ms")]
    pub send_delay: Duration,
    /// x as impersonator: send 200-2 before the INVITE3s (default after).
    #[serde(default)]
    pub x_answer_before_invites: bool,

    // --- exception scenarios (issue 16): behaviours, not timing ---
    /// client-b instances (by name) that answer their INVITE with this final non-2xx status
    /// (486 Busy Here, 603 Decline) instead of 200.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub decline: BTreeMap<String, u16>,
    /// client-b instances (by name) that never answer their INVITE: no 100 Trying, no final
    /// response, nothing on retransmissions (a client that is gone sends nothing; a UAS's
    /// 100 is for a proxy hop, RFC 3261 §8.2.6.1, §17.2.1). Their pf-b must give up.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub no_answer: std::collections::BTreeSet<String>,
    /// client-b instances (by name) that answer every chunk of the content with this MSRP
    /// status (413: stop sending the message; 415: its media type is not accepted) instead of
    /// 200, and take none of it (RFC 4975 §7.1.2, §7.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reject_content: BTreeMap<String, u16>,
    /// client-a ends the message part-way: this chunk (1-based) ends with the `#` flag and no
    /// chunk follows (RFC 4975 §7.1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_after_chunks: Option<u32>,
    /// client-b instances (by name) that leave mid-transfer, once the first chunk of the
    /// content arrived: with a BYE, or by closing their link without one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub leave: BTreeMap<String, Leave>,
    /// client-a waits this long between two content chunks (so that a member's leaving or
    /// rejecting happens while the message is still in transfer).
    #[serde(default, with = "ms", skip_serializing_if = "Duration::is_zero")]
    pub chunk_gap: Duration,
    /// client-b waits this long before it sends a success REPORT it was asked for (RFC 4975
    /// §7.1.2): a middle entity of the SUT that reports before delivery downstream is then
    /// seen to, whatever the scheduling between the harness's sockets (the REPORT it sent
    /// first may be read after the member's next one was written).
    #[serde(default, with = "ms", skip_serializing_if = "Duration::is_zero")]
    pub report_delay: Duration,
    /// client-a asks every receiver for a success REPORT (`Success-Report: yes`, RFC 4975
    /// §7.1.2) on its content SENDs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub success_report: bool,
    /// client-a asks for no transaction responses and no failure REPORTs (`Failure-Report:
    /// no`, RFC 4975 §7.1.1, §7.1.2) on its content SENDs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failure_report_no: bool,

    // --- waits (PIXIT: the profile's `report-wait-ms`, `no-response-wait-ms`) ---
    /// How long a harness sender waits for a success REPORT it asked for before it gives up
    /// on it and ends the session ([`DEFAULT_REPORT_WAIT`] when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_wait_ms: Option<u64>,
    /// How long a harness sender that asked for no responses (`Failure-Report: no`) waits
    /// after its last chunk before it ends the session: nothing will tell it the content
    /// arrived ([`DEFAULT_NO_RESPONSE_WAIT`] when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_response_wait_ms: Option<u64>,
    /// How long a harness entity waits for a final response to an INVITE in a scenario with
    /// a member that never answers (its Timer B there): where the harness plays x, how long
    /// the SUT's pf-b has to give up (PIXIT `no-answer-wait-ms`, [`DEFAULT_NO_ANSWER_WAIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_answer_wait_ms: Option<u64>,
}

/// `report-wait-ms` when the profile does not say: far above a loopback chain's delivery
/// and REPORT round trip, short enough that a SUT that never reports costs one second.
pub const DEFAULT_REPORT_WAIT: Duration = Duration::from_millis(1000);
/// `no-response-wait-ms` when the profile does not say.
pub const DEFAULT_NO_RESPONSE_WAIT: Duration = Duration::from_millis(300);

/// `no-answer-wait-ms` when the profile does not say: above the reference SUT's give-up time
/// in the default run (`--invite-timeout-ms 1000`, profiles/reference.yaml) by a margin a loaded
/// machine keeps.
pub const DEFAULT_NO_ANSWER_WAIT: Duration = Duration::from_millis(2000);

/// How a member leaves mid-transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Leave {
    /// It sends BYE on its leg (RFC 3261 §15.1).
    Bye,
    /// It closes its MSRP connection (L4) without a BYE.
    Close,
}

impl Holds {
    /// The scenario's behaviours alone (no timing): what every harness entity applies,
    /// whether or not it is next to the SUT.
    pub fn scenario(&self) -> Holds {
        Holds {
            decline: self.decline.clone(),
            no_answer: self.no_answer.clone(),
            reject_content: self.reject_content.clone(),
            abort_after_chunks: self.abort_after_chunks,
            leave: self.leave.clone(),
            chunk_gap: self.chunk_gap,
            report_delay: self.report_delay,
            success_report: self.success_report,
            failure_report_no: self.failure_report_no,
            report_wait_ms: self.report_wait_ms,
            no_response_wait_ms: self.no_response_wait_ms,
            no_answer_wait_ms: self.no_answer_wait_ms,
            ..Holds::default()
        }
    }

    /// The wait for a success REPORT (PIXIT `report-wait-ms`).
    pub fn report_wait(&self) -> Duration {
        self.report_wait_ms
            .map_or(DEFAULT_REPORT_WAIT, Duration::from_millis)
    }

    /// The linger after a last chunk sent with `Failure-Report: no` (PIXIT
    /// `no-response-wait-ms`).
    pub fn no_response_wait(&self) -> Duration {
        self.no_response_wait_ms
            .map_or(DEFAULT_NO_RESPONSE_WAIT, Duration::from_millis)
    }

    /// Whether the holds make an exception scenario (anything but the happy path).
    pub fn is_exception(&self) -> bool {
        !self.decline.is_empty()
            || !self.no_answer.is_empty()
            || !self.reject_content.is_empty()
            || self.abort_after_chunks.is_some()
            || !self.leave.is_empty()
            || self.success_report
            || self.failure_report_no
    }

    /// Merges the scenario's behaviours of `other` into these holds, and its per-member
    /// answer delays when it has any (a scenario that needs the other members late).
    pub fn with_scenario(mut self, other: &Holds) -> Holds {
        if !other.answer_delay_ms_per_member.is_empty() {
            self.answer_delay_ms_per_member = other.answer_delay_ms_per_member.clone();
        }
        let s = other.scenario();
        self.decline = s.decline;
        self.no_answer = s.no_answer;
        self.reject_content = s.reject_content;
        self.abort_after_chunks = s.abort_after_chunks;
        self.leave = s.leave;
        self.chunk_gap = s.chunk_gap;
        self.report_delay = s.report_delay;
        self.success_report = s.success_report;
        self.failure_report_no = s.failure_report_no;
        self.report_wait_ms = s.report_wait_ms.or(self.report_wait_ms);
        self.no_response_wait_ms = s.no_response_wait_ms.or(self.no_response_wait_ms);
        self.no_answer_wait_ms = s.no_answer_wait_ms.or(self.no_answer_wait_ms);
        self
    }

    pub fn answer_delay_for(&self, member: Option<&str>) -> Duration {
        member
            .and_then(|m| self.answer_delay_ms_per_member.get(m))
            .map(|ms| Duration::from_millis(*ms))
            .unwrap_or(self.answer_delay)
    }
}

mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
