//! What differs by role. A node asks its [`Rules`] wherever the five roles part ways; each
//! role answers every question in its own file:
//!
//! - `client_a`: the sender — sends no INVITE it did not start, ACKs and opens on the 200,
//!   writes the content in chunks as the link has room, ends its leg once the content is
//!   answered.
//! - `pf`: pf-a (forwards to x, with the resource list of an ad-hoc group) and pf-b (serves
//!   its members: forwards to the one an INVITE is for).
//! - `x`: the controlling function — resolves the group or the ad-hoc list to members, invites
//!   one per member, answers at once or on the first member's 200, serves members in fan-out
//!   turns.
//! - `client_b`: the recipient — answers at once, unwraps CPIM and reports the content.
//!
//! The middle entities (pf-a, x, pf-b) share the B2BUA rules below: ACK timing, link triggers,
//! when a down leg ends.

pub(super) mod client_a;
pub(super) mod client_b;
pub(super) mod pf;
pub(super) mod x;

use super::state::{CallIdx, LegIdx};
use super::{Node, NodeConfig};
use crate::codec::sip::SipMessage;
use crate::config::{AckTiming, Link, Trigger};
use crate::entity::Fault;
use crate::topology::Role;
use std::net::SocketAddr;

/// The rules of `role`.
pub(super) fn rules(role: Role) -> &'static dyn Rules {
    match role {
        Role::ClientA => &client_a::ClientA,
        Role::PfA => &pf::PfA,
        Role::X => &x::X,
        Role::PfB => &pf::PfB,
        Role::ClientB => &client_b::ClientB,
    }
}

/// An INVITE that started a call at this node, as its role proceeds with it.
pub(super) struct Invited<'a> {
    pub(super) call: CallIdx,
    /// The new up leg.
    pub(super) leg: LegIdx,
    pub(super) from: SocketAddr,
    pub(super) msg: &'a SipMessage,
    pub(super) ruri: &'a str,
    /// Whom the call is for ([`Rules::members`]).
    pub(super) members: &'a [String],
}

/// The questions a node asks of its role.
pub(super) trait Rules: Sync {
    /// The links of the role's (up, down) legs: L1 client-a–pf-a, L2 pf-a–x, L3 x–pf-b, L4
    /// pf-b–client-b.
    fn links(&self) -> (Link, Link);
    /// A middle entity (pf-a, x, pf-b): a B2BUA that forwards the INVITE, relays MSRP and
    /// stops reading its upstream link under backpressure. The SUT's B2BUA faults (no 200
    /// upstream, no ACK downstream) apply to it only.
    fn middle(&self) -> bool;
    /// client-a: sends content ([`crate::entity::Input::Send`]).
    fn sends(&self) -> bool {
        false
    }
    /// client-b: content is delivered to it ([`crate::entity::NodeEvent::Data`]).
    fn delivers(&self) -> bool {
        false
    }
    /// x: writes to its down legs in fan-out turns (`fanout-window`).
    fn takes_turns(&self) -> bool {
        false
    }
    /// Whether it takes INVITEs at all (client-a answers 403).
    fn takes_invites(&self) -> bool {
        true
    }
    /// The From URI of the INVITEs it sends.
    fn invite_from(&self, cfg: &NodeConfig) -> String {
        let host = if cfg.faults.contains(&crate::entity::Fault::UnbracketedIpv6) {
            cfg.sip.ip().to_string()
        } else {
            crate::codec::sip::host::uri_host(cfg.sip.ip())
        };
        format!("sip:{}@{host}", cfg.name)
    }
    /// Whom an INVITE with an acceptable offer is for: the new call's members (none for a
    /// role that serves nobody in particular), or `None` once the rules have rejected it.
    fn members(
        &self,
        _node: &mut Node,
        _from: SocketAddr,
        _msg: &SipMessage,
        _ruri: &str,
    ) -> Option<Vec<String>> {
        Some(Vec::new())
    }
    /// A new call's up leg exists: answer it, forward it, or both.
    fn invited(&self, node: &mut Node, inv: Invited<'_>);
    /// The member whose answer delay ([`crate::entity::Holds`]) holds the 200 of the call's
    /// up leg.
    fn answering_for(&self, node: &Node, call: CallIdx) -> Option<String> {
        node.calls[call].members.first().cloned()
    }
    /// A 2xx arrived on down leg `leg` (its SDP applied): whether to ACK it now; otherwise
    /// the ACK is owed until the upstream ACK (or client-a's first SEND).
    fn ack_now(&self, node: &Node, leg: LegIdx) -> bool;
    /// Whether the trigger of down leg `leg`'s link fired (asked only when this node opens
    /// it, once the 200 brought the peer's path).
    fn down_trigger(&self, node: &Node, leg: LegIdx) -> bool;
    /// Whether confirmed down leg `leg` is done and gets its BYE.
    fn down_done(&self, node: &Node, leg: LegIdx) -> bool;
}

/// A middle entity ACKs a downstream 2xx at once when the variant says so (`on-200`), else
/// after the upstream ACK (the ack-too-early fault: at once).
fn b2bua_ack_now(node: &Node, leg: LegIdx) -> bool {
    let call = node.legs[leg].call;
    node.leg_variant(leg).ack_timing() == AckTiming::On200
        || node.calls[call].upstream_ack
        || node.fault(Fault::AckTooEarly)
}

/// A middle entity opens a down leg's link on its trigger: the 200 (the peer's path is
/// known), the upstream ACK, or the first SEND from upstream; with the early-trigger fault,
/// on the 200 whatever the trigger.
fn b2bua_trigger(node: &Node, leg: LegIdx, trigger: Trigger) -> bool {
    if node.fault(Fault::EarlyTrigger) {
        return true;
    }
    let call = &node.calls[node.legs[leg].call];
    match trigger {
        Trigger::On200 => true,
        Trigger::OnAck => call.upstream_ack,
        Trigger::OnSend => call.got_send,
    }
}

/// A middle entity ends a down leg once the upstream BYE came and all content went down (or
/// the leg's media failed); the no-bye-downstream fault never does.
fn b2bua_down_done(node: &Node, leg: LegIdx) -> bool {
    let l = &node.legs[leg];
    node.calls[l.call].bye_from_up
        && ((l.pending.is_empty() && l.outstanding == 0) || l.media_failed)
        && !node.fault(Fault::NoByeDownstream)
}
