//! Link openings read from wire events (who opened which MSRP link), and atomic file writes.
//! Used by the tests of the reference chain; the engine's checker has its own, fuller view.

use crate::config::{Link, Opener, Variant};
use crate::topology::{Role, Topology};
use crate::trace::WireEvent;
use serde::Serialize;
use std::net::SocketAddr;

use std::time::Duration;

/// One link opening seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkOpen {
    pub link: String,
    pub opener: String,
    pub target: String,
}

/// Maps each TCP connection opening among MSRP addresses to (link, opener, target) names.
pub fn link_openings(topology: &Topology, events: &[(Duration, WireEvent)]) -> Vec<LinkOpen> {
    let by_ip = |a: SocketAddr| {
        topology
            .instances()
            .into_iter()
            .find(|i| i.msrp.ip() == a.ip())
    };
    let mut out = Vec::new();
    // Both ends record a connection when both are in this process: count it once.
    let mut seen = std::collections::HashSet::new();
    for (_, ev) in events {
        let WireEvent::TcpOpen {
            conn: (a, b),
            opener,
        } = ev
        else {
            continue;
        };
        let target = if *opener == *a { *b } else { *a };
        if !seen.insert((*opener, target)) {
            continue;
        }
        // Only MSRP links: the target is an MSRP listener.
        if !topology.instances().iter().any(|i| i.msrp == target) {
            continue;
        }
        let (Some(o), Some(t)) = (by_ip(*opener), by_ip(target)) else {
            continue;
        };
        let link = match (o.role.min(t.role), o.role.max(t.role)) {
            (Role::ClientA, Role::PfA) => "L1",
            (Role::PfA, Role::X) => "L2",
            (Role::X, Role::PfB) => "L3",
            (Role::PfB, Role::ClientB) => "L4",
            _ => "?",
        };
        out.push(LinkOpen {
            link: link.into(),
            opener: o.name,
            target: t.name,
        });
    }
    out
}

/// The role that opens `link` in `variant`.
pub fn expected_opener(variant: &Variant, link: Link) -> Role {
    let (offerer, answerer) = match link {
        Link::L1 => (Role::ClientA, Role::PfA),
        Link::L2 => (Role::PfA, Role::X),
        Link::L3 => (Role::X, Role::PfB),
        Link::L4 => (Role::PfB, Role::ClientB),
    };
    match variant.opener(link) {
        Opener::Offerer => offerer,
        Opener::Answerer => answerer,
    }
}

/// LINK-DIR over a recorded case: every opening by the expected role, and every link of the
/// chain opened at least once. Returns the violations.
pub fn check_link_dir(topology: &Topology, variant: &Variant, opens: &[LinkOpen]) -> Vec<String> {
    let mut bad = Vec::new();
    let role_of = |name: &str| topology.instance(name).map(|i| i.role);
    for o in opens {
        let link = match o.link.as_str() {
            "L1" => Link::L1,
            "L2" => Link::L2,
            "L3" => Link::L3,
            "L4" => Link::L4,
            _ => {
                bad.push(format!(
                    "{} opened a connection to {} that is on no link of the chain",
                    o.opener, o.target
                ));
                continue;
            }
        };
        let want = expected_opener(variant, link);
        if role_of(&o.opener) != Some(want) {
            bad.push(format!(
                "{} was opened by {} (towards {}); figure {} gives it to {}",
                o.link, o.opener, o.target, variant.figure, want
            ));
        }
    }
    for l in ["L1", "L2", "L3", "L4"] {
        if !opens.iter().any(|o| o.link == l) {
            bad.push(format!("{l} was never opened"));
        }
    }
    bad
}
