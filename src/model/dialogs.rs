//! Dialogs and sessions: SIP messages grouped into the dialogs of each hop ([`LegObs`]), and
//! MSRP messages, contents and connections tied to the leg whose session they name (the
//! To-Path or From-Path against the `a=path` URIs the leg's offer and answer advertised,
//! RFC 4975 §5.4 and §6.1).

use super::{link_between, LegObs, Observation};
use crate::codec::msrp::MsrpUri;

/// Groups SIP messages into dialogs.
pub(super) fn build_legs(obs: &mut Observation) {
    // Initial INVITEs (no To tag) open legs; retransmissions (same branch) join them.
    for i in 0..obs.sip.len() {
        let s = &obs.sip[i];
        let (Some(m), Some(uac), Some(uas)) = (&s.msg, &s.sender, &s.receiver) else {
            continue;
        };
        if !s.is_request("INVITE") || m.to_tag().is_some() {
            continue;
        }
        let call_id = m.call_id().unwrap_or_default().to_string();
        let from_tag = m.from_tag();
        let branch = m.via_branch();
        let existing = obs.legs.iter().position(|l| {
            l.call_id == call_id
                && l.uac_tag == from_tag
                && l.branch == branch
                && l.uac == *uac
                && l.uas == *uas
        });
        let li = match existing {
            Some(li) => li,
            None => {
                let index = obs.legs.len();
                obs.legs.push(LegObs {
                    index,
                    link: link_between(uac.role, uas.role),
                    uac: uac.clone(),
                    uas: uas.clone(),
                    call_id,
                    uac_tag: from_tag,
                    uas_tag: None,
                    request_uri: m.request_uri().unwrap_or_default().to_string(),
                    branch,
                    invite: i,
                    final_response: None,
                    ok: None,
                    ack: None,
                    failure_ack: None,
                    bye: None,
                    bye_ok: None,
                    messages: Vec::new(),
                    uac_path: s.sdp.as_ref().and_then(|d| d.path()).unwrap_or_default(),
                    uas_path: Vec::new(),
                    conns: Vec::new(),
                });
                index
            }
        };
        obs.legs[li].messages.push(i);
        obs.sip[i].leg = Some(li);
    }
    // Everything else: by Call-ID, tags and branch.
    for i in 0..obs.sip.len() {
        if obs.sip[i].leg.is_some() {
            continue;
        }
        let s = &obs.sip[i];
        let (Some(m), Some(snd), Some(rcv)) = (&s.msg, &s.sender, &s.receiver) else {
            continue;
        };
        let call_id = m.call_id().unwrap_or_default();
        let from_tag = m.from_tag();
        let to_tag = m.to_tag();
        let branch = m.via_branch();
        let is_invite_resp = s.is_response("INVITE", 100..=699);
        let ends =
            |l: &LegObs| (l.uac == *snd && l.uas == *rcv) || (l.uac == *rcv && l.uas == *snd);
        let cands: Vec<usize> = obs
            .legs
            .iter()
            .filter(|l| l.call_id == call_id && ends(l))
            .filter(|l| {
                // The dialog's tags, in either order (a BYE may come from the uas).
                let uac_side = l.uac_tag == from_tag
                    && (to_tag.is_none() || l.uas_tag.is_none() || l.uas_tag == to_tag);
                let uas_side = from_tag.is_some() && l.uas_tag == from_tag && l.uac_tag == to_tag;
                uac_side || uas_side
            })
            .map(|l| l.index)
            .collect();
        let pick = if cands.len() > 1 && is_invite_resp {
            cands
                .iter()
                .copied()
                .find(|&li| obs.legs[li].branch == branch)
        } else if cands.len() > 1 {
            cands
                .iter()
                .copied()
                .find(|&li| to_tag.is_some() && obs.legs[li].uas_tag == to_tag)
                .or_else(|| cands.first().copied())
        } else {
            cands.first().copied()
        };
        let Some(li) = pick else { continue };
        let is_2xx = s.is_response("INVITE", 200..=299);
        let is_final = s.is_response("INVITE", 200..=699);
        let is_ack = s.is_request("ACK");
        let is_bye = s.is_request("BYE");
        let is_bye_ok = s.is_response("BYE", 200..=299);
        let answer_path = if is_2xx {
            s.sdp.as_ref().and_then(|d| d.path())
        } else {
            None
        };
        let l = &mut obs.legs[li];
        if is_final && l.final_response.is_none() {
            l.final_response = Some(i);
        }
        if is_2xx && l.ok.is_none() {
            l.ok = Some(i);
            l.uas_tag = to_tag.clone();
            l.uas_path = answer_path.unwrap_or_default();
        }
        // The ACK of a 2xx has its own branch; a failure's ACK reuses the INVITE's.
        if is_ack && l.ack.is_none() && l.ok.is_some() && (branch != l.branch || l.branch.is_none())
        {
            l.ack = Some(i);
        }
        if is_ack
            && l.failure_ack.is_none()
            && l.ok.is_none()
            && l.final_response.is_some()
            && l.branch.is_some()
            && branch == l.branch
        {
            l.failure_ack = Some(i);
        }
        if is_bye && l.bye.is_none() {
            l.bye = Some(i);
        }
        if is_bye_ok && l.bye_ok.is_none() {
            l.bye_ok = Some(i);
        }
        l.messages.push(i);
        obs.sip[i].leg = Some(li);
    }
    // The ACK of a final non-2xx ends at the next hop (RFC 3261 §17.1.1.3): behind a stateful
    // SIP/IP core it goes to the core, which ACKs downstream itself, so its receiver is no
    // entity. It is the INVITE sender's all the same: same sender, Call-ID and branch.
    for i in 0..obs.sip.len() {
        let s = &obs.sip[i];
        if s.leg.is_some() || s.receiver.is_some() || !s.is_request("ACK") {
            continue;
        }
        let (Some(m), Some(snd)) = (&s.msg, &s.sender) else {
            continue;
        };
        let call_id = m.call_id().unwrap_or_default();
        let branch = m.via_branch();
        let Some(l) = obs.legs.iter_mut().find(|l| {
            l.uac == *snd
                && l.call_id == call_id
                && l.branch.is_some()
                && l.branch == branch
                && l.ok.is_none()
                && l.final_response.is_some()
        }) else {
            continue;
        };
        if l.failure_ack.is_none() {
            l.failure_ack = Some(i);
        }
        l.messages.push(i);
        let li = l.index;
        obs.sip[i].leg = Some(li);
    }
    for l in &mut obs.legs {
        l.messages.sort_unstable();
    }
}

/// Ties each MSRP message and content to the leg whose session it names, and each
/// connection to its legs. Only dialogs between the connection's two ends count: a message
/// naming another hop's session (a relay that copied its upstream To-Path) names none.
pub(super) fn attribute_msrp(obs: &mut Observation) {
    let mut conn_legs: Vec<Vec<usize>> = vec![Vec::new(); obs.conns.len()];
    // Legs already bound to a connection, in the order connections opened: a session is bound
    // to the connection its binding request came on (RFC 4975 §5.4), not to whichever
    // connection carries the same session-id.
    let mut claimed: Vec<usize> = Vec::new();
    let mut order: Vec<usize> = (0..obs.conns.len()).collect();
    order.sort_by_key(|&ci| obs.conns[ci].opened_at);
    for ci in order {
        let c = &mut obs.conns[ci];
        let ends = [&c.opener_party, &c.target_party];
        let candidates: Vec<&LegObs> = obs
            .legs
            .iter()
            .filter(|l| match ends {
                [Some(a), Some(b)] => (l.uac == *a && l.uas == *b) || (l.uac == *b && l.uas == *a),
                _ => true,
            })
            .collect();
        let has =
            |l: &LegObs, u: &MsrpUri| l.uac_path.iter().chain(&l.uas_path).any(|p| p.matches(u));
        let first =
            |h: Result<Vec<MsrpUri>, _>| h.ok().and_then(|v: Vec<MsrpUri>| v.into_iter().next());
        for d in c.dirs.iter_mut() {
            for m in d.msgs.iter_mut() {
                let (to, from) = (first(m.head.to_path()), first(m.head.from_path()));
                // The sessions both paths name, else those the To-Path names, else the From-Path.
                let pick = |pred: &dyn Fn(&LegObs) -> bool| -> Option<usize> {
                    let set: Vec<usize> = candidates
                        .iter()
                        .filter(|l| pred(l))
                        .map(|l| l.index)
                        .collect();
                    match set.as_slice() {
                        [] => None,
                        [one] => Some(*one),
                        // One session-id in several sessions: the session this connection
                        // bound, else one no connection bound yet.
                        many => many
                            .iter()
                            .find(|l| conn_legs[ci].contains(l))
                            .or_else(|| many.iter().find(|l| !claimed.contains(l)))
                            .or(many.first())
                            .copied(),
                    }
                };
                m.leg = match (&to, &from) {
                    (Some(t), Some(f)) => pick(&|l| has(l, t) && has(l, f)),
                    _ => None,
                }
                .or_else(|| to.as_ref().and_then(|t| pick(&|l| has(l, t))))
                .or_else(|| from.as_ref().and_then(|f| pick(&|l| has(l, f))));
                if let Some(l) = m.leg {
                    if !conn_legs[ci].contains(&l) {
                        conn_legs[ci].push(l);
                        claimed.push(l);
                    }
                }
            }
            for content in d.contents.iter_mut() {
                content.leg = content
                    .chunks
                    .first()
                    .and_then(|&k| d.msgs.get(k))
                    .and_then(|m| m.leg);
            }
        }
    }
    for (ci, legs) in conn_legs.into_iter().enumerate() {
        for &l in &legs {
            if let Some(leg) = obs.legs.get_mut(l) {
                leg.conns.push(ci);
            }
        }
        obs.conns[ci].legs = legs;
    }
}
