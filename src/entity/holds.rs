//! What the harness, as impersonator, does with time and order: ordering choices (where a
//! figure leaves the order free) and the discriminating pauses that make trigger timing
//! visible. Plain data on a [`super::NodeConfig`]; the reference SUT leaves it empty.

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
}

impl Holds {
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
