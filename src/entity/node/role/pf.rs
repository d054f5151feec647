//! The participating functions, pf-a and pf-b: B2BUAs at the ends of the group's path.
//!
//! pf-a takes client-a's INVITE (L1) and forwards it to x (L2), with the resource list of an
//! ad-hoc group. pf-b takes x's INVITE for one member (L3) — only for a member it serves —
//! and forwards it to that member (L4). Both answer 100 Trying, answer upstream on the
//! downstream 200, open their down link on the variant's trigger and relay MSRP.

use super::super::state::LegIdx;
use super::super::Node;
use super::{b2bua_ack_now, b2bua_down_done, b2bua_trigger, Invited, Rules};
use crate::codec::sip::SipMessage;
use crate::config::{GroupKind, Link};
use std::net::SocketAddr;

pub(in crate::entity::node) struct PfA;

impl Rules for PfA {
    fn links(&self) -> (Link, Link) {
        (Link::L1, Link::L2)
    }
    fn middle(&self) -> bool {
        true
    }
    /// 100 Trying, then the INVITE to x (To: the group or factory URI it was sent to).
    fn invited(&self, node: &mut Node, inv: Invited<'_>) {
        node.trying(inv.leg, inv.from, inv.msg);
        let list = match node.variant(inv.call).group {
            GroupKind::Adhoc => inv.msg.resource_list().ok().flatten(),
            GroupKind::Predefined => None,
        };
        let to = inv.msg.to_uri().unwrap_or_else(|| inv.ruri.to_string());
        let x = node.cfg.topology.x.sip;
        node.invite_down(inv.call, inv.ruri.to_string(), to, x, list);
    }
    fn ack_now(&self, node: &Node, leg: LegIdx) -> bool {
        b2bua_ack_now(node, leg)
    }
    fn down_trigger(&self, node: &Node, leg: LegIdx) -> bool {
        b2bua_trigger(node, leg, node.leg_variant(leg).trigger)
    }
    fn down_done(&self, node: &Node, leg: LegIdx) -> bool {
        b2bua_down_done(node, leg)
    }
}

pub(in crate::entity::node) struct PfB;

impl Rules for PfB {
    fn links(&self) -> (Link, Link) {
        (Link::L3, Link::L4)
    }
    fn middle(&self) -> bool {
        true
    }
    /// The member the Request-URI names, if this pf-b serves it (else 404).
    fn members(
        &self,
        node: &mut Node,
        from: SocketAddr,
        msg: &SipMessage,
        ruri: &str,
    ) -> Option<Vec<String>> {
        let topo = node.cfg.topology.clone();
        let Some(m) = topo.member_by_uri(ruri) else {
            node.respond_plain(from, msg, 404, "Not Found");
            return None;
        };
        let served = topo
            .pf_b_serving(&m.name)
            .map(|p| p.name == node.cfg.name)
            .unwrap_or(false);
        if !served {
            node.respond_plain(from, msg, 404, "Not Found");
            return None;
        }
        Some(vec![m.name.clone()])
    }
    /// 100 Trying, then the INVITE to the member.
    fn invited(&self, node: &mut Node, inv: Invited<'_>) {
        node.trying(inv.leg, inv.from, inv.msg);
        let topo = node.cfg.topology.clone();
        if let Some(m) = inv
            .members
            .first()
            .and_then(|n| topo.members.iter().find(|m| &m.name == n))
        {
            node.invite_down(inv.call, m.uri.clone(), m.uri.clone(), m.sip, None);
        }
    }
    fn ack_now(&self, node: &Node, leg: LegIdx) -> bool {
        b2bua_ack_now(node, leg)
    }
    fn down_trigger(&self, node: &Node, leg: LegIdx) -> bool {
        b2bua_trigger(node, leg, node.leg_variant(leg).trigger)
    }
    fn down_done(&self, node: &Node, leg: LegIdx) -> bool {
        b2bua_down_done(node, leg)
    }
}
