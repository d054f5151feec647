//! Delivery as the wire shows it: the message client-a sent (its SEND chunks on L1,
//! reassembled over Byte-Range per Message-ID and unwrapped from message/cpim, RFC 4975 §7.1.1
//! and RFC 3862) and what each member's own link (L4) carried to it, for the sessions that
//! member negotiated. Live runs, simulated runs and captures are judged from this alike; what
//! a SUT's client-b wrote to its output files is used only where no link of that member can
//! be seen (pf-b and client-b both played by the SUT).

use super::{ContentObs, Observation};
use crate::codec::msrp::MsrpUri;
use crate::config::Link;
use crate::topology::{Role, Topology};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a member got, as the wire shows it, or as a SUT's client-b wrote it to its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub bytes: u64,
    pub sha256: String,
    pub complete: bool,
}

/// What the wire says was sent and delivered.
#[derive(Debug, Clone, Default)]
pub struct WireDelivery {
    /// The content client-a sent: octets and SHA-256 of what is inside the CPIM wrapper.
    pub sent: Option<(u64, String)>,
    /// Where it was taken from (`client-a → pf-a (L1), Message-ID …`), or why nothing was.
    pub sent_from: String,
    /// The link it was taken from: L1 when client-a's own link is visible, else the first
    /// visible link downstream.
    pub sent_link: Option<Link>,
    /// Per member whose link was seen: what it carried, and a line saying so.
    pub members: BTreeMap<String, (Delivered, String)>,
}

/// Reads [`WireDelivery`] off an attributed observation.
pub fn from_wire(obs: &Observation, topo: &Topology) -> WireDelivery {
    let mut out = WireDelivery::default();
    // (sender role, receiver role, content) of every content object.
    let mut all: Vec<(Option<String>, Option<String>, &ContentObs)> = Vec::new();
    for c in obs.conns.iter().filter(|c| c.is_link()) {
        for (d, dir) in c.dirs.iter().enumerate() {
            let snd = c.sender(d).map(|p| p.name.clone());
            let rcv = c.sender(1 - d).map(|p| p.name.clone());
            all.extend(dir.contents.iter().map(|w| (snd.clone(), rcv.clone(), w)));
        }
    }
    let role = |n: &Option<String>| n.as_deref().and_then(|n| topo.instance(n)).map(|i| i.role);
    let chain = [
        (Role::ClientA, Role::PfA, Link::L1),
        (Role::PfA, Role::X, Link::L2),
        (Role::X, Role::PfB, Link::L3),
        (Role::PfB, Role::ClientB, Link::L4),
    ];
    for (a, b, link) in chain {
        let found = all.iter().find(|(s, r, w)| {
            role(s) == Some(a) && role(r) == Some(b) && w.complete && w.inner.is_some()
        });
        if let Some((s, r, w)) = found {
            out.sent = w.inner.clone();
            out.sent_link = Some(link);
            out.sent_from = format!(
                "{} → {} ({link:?}), Message-ID {}",
                s.as_deref().unwrap_or("?"),
                r.as_deref().unwrap_or("?"),
                w.message_id
            );
            break;
        }
    }
    if out.sent.is_none() {
        out.sent_from = "no complete content object on any visible link".into();
    }
    // A member takes content only for a session it negotiated (To-Path its own a=path).
    for m in &topo.members {
        let own: Vec<MsrpUri> = obs
            .sip
            .iter()
            .filter(|s| s.sender.as_ref().is_some_and(|p| p.name == m.name))
            .filter_map(|s| s.sdp.as_ref().and_then(|d| d.path()))
            .filter_map(|mut p| p.pop())
            .collect();
        let for_me = |w: &ContentObs| {
            own.is_empty()
                || MsrpUri::parse_list(&w.to_path)
                    .ok()
                    .and_then(|mut v| v.pop())
                    .is_some_and(|u| own.iter().any(|p| p.matches(&u)))
        };
        let mine: Vec<&(Option<String>, Option<String>, &ContentObs)> = all
            .iter()
            .filter(|(_, r, w)| r.as_deref() == Some(m.name.as_str()) && for_me(w))
            .collect();
        let pick = mine
            .iter()
            .rev()
            .find(|(_, _, w)| w.complete)
            .or_else(|| mine.iter().max_by_key(|(_, _, w)| w.received));
        let Some((s, _, w)) = pick else { continue };
        let d = match (&w.inner, w.complete) {
            (Some((n, h)), true) => Delivered {
                bytes: *n,
                sha256: h.clone(),
                complete: true,
            },
            _ => Delivered {
                bytes: w.received.saturating_sub(w.cpim_head.unwrap_or(0)),
                sha256: String::new(),
                complete: false,
            },
        };
        let line = format!(
            "{}: {} bytes{} from {} on its link{}",
            m.name,
            d.bytes,
            if d.complete { "" } else { " (incomplete)" },
            s.as_deref().unwrap_or("?"),
            w.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        out.members.insert(m.name.clone(), (d, line));
    }
    out
}
