//! SIP signalling of both sides of every leg: the INVITE transaction as UAC (down legs) and
//! UAS (up legs), 100 Trying, the 200 with the node's SDP, ACK (2xx: end to end in the
//! dialog; non-2xx: hop by hop), BYE, dialog matching, route sets and transports (RFC 3261).
//! Whom an INVITE is for and where it goes next is the role's ([`super::role`]).

use super::role::Invited;
use super::state::{Ack, CallIdx, DialogState, Hold, LegIdx, Side};
use super::timers::TimerKind;
use super::Node;
use crate::codec::sdp::{MsrpSdp, Setup};
use crate::codec::sip::host::is_sips;
use crate::codec::sip::{
    build_request, build_response, new_branch, new_call_id, new_tag, refusal_of_unparsed,
    refusal_response, Body, Method, Refusal, RequestSpec, SipError, SipMessage, Transport,
};
use crate::config::SetupMode;
use crate::entity::{Fault, Output};
use std::net::SocketAddr;

impl Node {
    // ------------------------------------------------------------------ sending

    /// Sends an INVITE on a fresh down leg (a B2BUA: its own Call-ID, tags and SDP).
    pub(super) fn invite_down(
        &mut self,
        call: CallIdx,
        request_uri: String,
        to_uri: String,
        target: SocketAddr,
        members: Option<Vec<String>>,
    ) {
        let from_uri = self.rules.invite_from(&self.cfg);
        // Over TLS the request is sent to the AoR's SIPS form (TLS on every hop, RFC 3261
        // §26.2.2); From and To keep the configured AoRs.
        let request_uri = sips_if(request_uri, self.transport(call) == Transport::Tls);
        let upstream_call_id = self.calls[call]
            .up
            .map(|u| self.legs[u].call_id.clone())
            .filter(|_| self.fault(Fault::ReuseCallId));
        let call_id = match upstream_call_id {
            Some(c) => c,
            None => new_call_id(&mut self.rng, &self.cfg.sip.ip().to_string()),
        };
        let local_tag = new_tag(&mut self.rng);
        let leg = self.new_leg(
            call,
            Side::Down,
            call_id,
            local_tag,
            None,
            from_uri,
            to_uri,
            target,
        );
        self.calls[call].downs.push(leg);
        if self.variant(call).setup == SetupMode::Sdp || self.fault(Fault::SetupInPreset) {
            self.legs[leg].local_sdp.setup = Some(Setup::Actpass);
        }
        self.legs[leg].local_sdp.direction = Some("sendonly".into());
        if self.fault(Fault::SdpCopyUpstreamPath) {
            let upstream = self.calls[call]
                .up
                .and_then(|u| self.legs[u].remote_sdp.clone());
            if let Some(up) = upstream {
                self.legs[leg].local_sdp.path = up.path.clone();
            }
        }
        let sdp = c_ip4(
            self.legs[leg].local_sdp.encode(),
            self.fault(Fault::CIp4OnIpv6),
        );
        let mut extra = vec![
            (
                "Accept-Contact".to_string(),
                "*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg\""
                    .to_string(),
            ),
            (
                "P-Preferred-Service".to_string(),
                "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.largemsg".to_string(),
            ),
        ];
        let body = match members {
            Some(m) => {
                extra.push(("Require".into(), "recipient-list-invite".into()));
                Body::sdp_with_resource_list(sdp.as_bytes(), &m, &mut self.rng)
            }
            None => Body::sdp(sdp.into_bytes()),
        };
        // Behind a SIP/IP core the request goes to the proxy with a pre-loaded route: the
        // proxy, then the next entity (RFC 3261 §8.1.2); the proxy records its route.
        let core = self.cfg.topology.core;
        // Over TLS both hops are `sips:` (RFC 3261 §26.2.2, RFC 5630 §3: TLS on every hop,
        // not `transport=tls`), so the proxy reaches the next entity over TLS too.
        let tls = self.transport(call) == Transport::Tls;
        let preloaded = |tcp: bool| -> Vec<(String, String)> {
            let Some(core) = core else { return vec![] };
            let (scheme, t) = match (tls, tcp) {
                (true, _) => ("sips", ""),
                (false, true) => ("sip", ";transport=tcp"),
                (false, false) => ("sip", ""),
            };
            vec![(
                "Route".to_string(),
                format!("<{scheme}:{core}{t};lr>, <{scheme}:{target}{t};lr>"),
            )]
        };
        if self.cfg.variant_header {
            extra.push((
                super::VARIANT_HEADER.to_string(),
                self.variant(call).header_value(),
            ));
        }
        // The pre-loaded route goes last (the TCP fallback below replaces it).
        let tcp0 = self.transport(call).is_stream();
        extra.extend(preloaded(tcp0));
        let l = &self.legs[leg];
        let spec = RequestSpec {
            method: Method::Invite,
            request_uri,
            transport: self.transport(call),
            sent_by: self.cfg.sip.to_string(),
            branch: new_branch(&mut self.rng),
            from_uri: l.local_uri.clone(),
            from_tag: l.local_tag.clone(),
            to_uri: l.remote_uri.clone(),
            to_tag: None,
            call_id: l.call_id.clone(),
            cseq: l.cseq,
            contact: Some(self.contact(call)),
            extra,
            body: Some(body),
        };
        let mut msg = build_request(&spec);
        if spec.transport == Transport::Udp && msg.raw.len() > 1300 {
            // RFC 3261 §18.1.1: a request over 1300 bytes goes over a congestion-controlled
            // transport, with the Via rewritten.
            let mut extra = spec.extra.clone();
            if core.is_some() {
                extra.pop();
                extra.extend(preloaded(true));
            }
            let spec = RequestSpec {
                transport: Transport::Tcp,
                extra,
                ..spec
            };
            msg = build_request(&spec);
            self.legs[leg].transport = Transport::Tcp;
        }
        let dest = core.unwrap_or(target);
        self.legs[leg].invite_dest = dest;
        self.legs[leg].invite = Some(Box::new(msg.clone()));
        if self.fault(Fault::MalformedSip) {
            let bad = self.malformed_options(&msg);
            self.send_sip(Some(leg), dest, bad);
        }
        self.send_sip(Some(leg), dest, msg);
        let t1 = self.cfg.timers.t1;
        if self.legs[leg].transport == Transport::Udp {
            self.arm(leg, TimerKind::InviteRetx, t1);
        }
        let timer_b = self.timer_b();
        self.arm(leg, TimerKind::InviteTimeout, timer_b);
    }

    /// [`Fault::MalformedSip`]: an OPTIONS outside any dialog (its own Call-ID and branch)
    /// with a header line that has no colon (RFC 3261 §7.3), sent as is.
    fn malformed_options(&mut self, invite: &SipMessage) -> SipMessage {
        let via = invite.header("Via").unwrap_or_default().to_string();
        let via = match via.find(";branch=") {
            Some(p) => format!("{};branch={}", &via[..p], new_branch(&mut self.rng)),
            None => via,
        };
        let host = crate::codec::sip::host::uri_host(self.cfg.sip.ip());
        let text = format!(
            "OPTIONS {ruri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: <sip:{name}@{host}>;tag={tag}\r\nTo: <{ruri}>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nThis header line has no colon\r\nContent-Length: 0\r\n\r\n",
            ruri = invite.request_uri().unwrap_or("sip:invalid"),
            name = self.cfg.name,
            tag = new_tag(&mut self.rng),
            cid = new_call_id(&mut self.rng, &host),
        );
        let raw = bytes::Bytes::from(text);
        SipMessage {
            start: crate::codec::sip::StartLine::Request {
                method: Method::Options,
                uri: invite.request_uri().unwrap_or("sip:invalid").to_string(),
            },
            headers: Vec::new(),
            body: bytes::Bytes::new(),
            raw,
        }
    }

    /// In-dialog request (ACK or BYE) on a down leg.
    fn dialog_request(&mut self, leg: LegIdx, method: Method) -> SipMessage {
        let l = &mut self.legs[leg];
        let cseq = match method {
            Method::Ack => l.cseq,
            _ => {
                l.cseq += 1;
                l.cseq
            }
        };
        let request_uri = l.remote_contact.clone().unwrap_or_else(|| {
            let scheme = if l.transport == Transport::Tls {
                "sips"
            } else {
                "sip"
            };
            format!("{scheme}:{}", l.remote_target)
        });
        let spec = RequestSpec {
            method,
            request_uri,
            transport: l.transport,
            sent_by: self.cfg.sip.to_string(),
            branch: new_branch(&mut self.rng),
            from_uri: l.local_uri.clone(),
            from_tag: l.local_tag.clone(),
            to_uri: l.remote_uri.clone(),
            to_tag: l.remote_tag.clone(),
            call_id: l.call_id.clone(),
            cseq,
            contact: None,
            extra: if self.cfg.faults.contains(&Fault::IgnoreRouteSet) {
                vec![]
            } else {
                l.route_set
                    .iter()
                    .map(|r| ("Route".to_string(), format!("<{r}>")))
                    .collect()
            },
            body: None,
        };
        build_request(&spec)
    }

    /// Where an in-dialog request goes and over which transport: the first route of the
    /// route set (loose routing, RFC 3261 §12.2.1.1), else the peer's Contact.
    fn in_dialog_dest(&self, leg: LegIdx) -> (SocketAddr, Transport) {
        let l = &self.legs[leg];
        if self.fault(Fault::IgnoreRouteSet) {
            return (l.remote_target, l.transport);
        }
        let first = l.route_set.first().and_then(|r| {
            let addr = sip_uri_addr(r)?;
            Some((addr, uri_transport(r).unwrap_or(l.transport)))
        });
        first.unwrap_or((l.remote_target, l.transport))
    }

    pub(super) fn send_in_dialog(&mut self, leg: LegIdx, msg: SipMessage) {
        let (to, transport) = self.in_dialog_dest(leg);
        self.out.push_back(Output::Sip { transport, to, msg });
    }

    pub(super) fn send_ack(&mut self, leg: LegIdx) {
        if matches!(self.legs[leg].ack, Ack::Sent(_)) {
            return;
        }
        if self.fault(Fault::NoAckDownstream) && self.rules.middle() {
            return;
        }
        let delay = self.cfg.holds.ack_delay;
        if !delay.is_zero() && self.legs[leg].held.ack == Hold::Free {
            self.legs[leg].held.ack = Hold::Held;
            self.arm(leg, TimerKind::HoldAck, delay);
            return;
        }
        let ack = self.dialog_request(leg, Method::Ack);
        let l = &mut self.legs[leg];
        l.ack = Ack::Sent(Box::new(ack.clone()));
        if l.state == DialogState::AwaitAck {
            l.state = DialogState::Confirmed;
        }
        self.send_in_dialog(leg, ack);
        self.maybe_bye(leg);
    }

    pub(super) fn send_bye(&mut self, leg: LegIdx) {
        let bye = self.dialog_request(leg, Method::Bye);
        let l = &mut self.legs[leg];
        l.state = DialogState::AwaitByeOk;
        l.bye = Some(Box::new(bye.clone()));
        self.send_in_dialog(leg, bye);
        let t1 = self.cfg.timers.t1;
        if self.legs[leg].transport == Transport::Udp {
            self.arm(leg, TimerKind::ByeRetx, t1);
        }
        self.arm(leg, TimerKind::ByeTimeout, t1 * 64);
    }

    /// Answers the up leg's INVITE with 200 and this node's SDP.
    pub(super) fn answer_up(&mut self, leg: LegIdx) {
        let call = self.legs[leg].call;
        if self.calls[call].answered_up {
            return;
        }
        let member = self.rules.answering_for(self, call);
        let delay = self.cfg.holds.answer_delay_for(member.as_deref());
        if !delay.is_zero() && self.legs[leg].held.answer == Hold::Free {
            self.legs[leg].held.answer = Hold::Held;
            self.arm(leg, TimerKind::HoldAnswer, delay);
            return;
        }
        if self.legs[leg].held.answer == Hold::Held {
            return; // A held answer goes out when its timer fires.
        }
        self.calls[call].answered_up = true;
        if self.fault(Fault::Skip200Upstream) && self.rules.middle() {
            return;
        }
        let (answer_setup, opens) = self.answer_setup(leg);
        let no_sdp = self.fault(Fault::ParamsInWrongMessage);
        let ip4 = self.fault(Fault::CIp4OnIpv6);
        let l = &mut self.legs[leg];
        l.opens = opens;
        l.local_sdp.setup = answer_setup;
        l.local_sdp.direction = Some("recvonly".into());
        let sdp = c_ip4(l.local_sdp.encode(), ip4);
        let invite = l.invite.clone().expect("up leg has its INVITE");
        let ok = build_response(
            &invite,
            200,
            "OK",
            Some(&l.local_tag.clone()),
            Some(&self.contact(call)),
            (!no_sdp).then(|| Body::sdp(sdp.into_bytes())),
        );
        let l = &mut self.legs[leg];
        l.last_response = Some(Box::new(ok.clone()));
        l.state = DialogState::AwaitAck;
        let peer = l.peer;
        self.send_sip(Some(leg), peer, ok);
        let t1 = self.cfg.timers.t1;
        self.arm(leg, TimerKind::OkRetx, t1);
        self.arm(leg, TimerKind::OkTimeout, t1 * 64);
        self.maybe_open(leg);
    }

    pub(super) fn reject_up(&mut self, leg: LegIdx, code: u16, reason: &str) {
        self.bp_legs.push(leg);
        let l = &mut self.legs[leg];
        if l.state != DialogState::AwaitOk {
            return;
        }
        l.state = DialogState::Failed;
        let invite = l.invite.clone().expect("up leg has its INVITE");
        let resp = build_response(
            &invite,
            code,
            reason,
            Some(&l.local_tag.clone()),
            None,
            None,
        );
        l.last_response = Some(Box::new(resp.clone()));
        let peer = l.peer;
        self.send_sip(Some(leg), peer, resp);
        let call = self.legs[leg].call;
        self.end_call_if_done(call);
    }

    pub(super) fn respond_plain(
        &mut self,
        to: SocketAddr,
        req: &SipMessage,
        code: u16,
        reason: &str,
    ) {
        let tag = if req.to_tag().is_none() {
            Some(new_tag(&mut self.rng))
        } else {
            None
        };
        let resp = build_response(req, code, reason, tag.as_deref(), None, None);
        self.send_sip(None, to, resp);
    }

    /// A middle entity's 100 Trying on a new up leg, repeated on INVITE retransmissions until
    /// the final response.
    pub(super) fn trying(&mut self, leg: LegIdx, from: SocketAddr, msg: &SipMessage) {
        let trying = build_response(msg, 100, "Trying", None, None, None);
        self.legs[leg].last_response = Some(Box::new(trying.clone()));
        self.send_sip(Some(leg), from, trying);
    }

    // ------------------------------------------------------------------ receiving

    pub(super) fn on_sip(&mut self, transport: Transport, from: SocketAddr, msg: SipMessage) {
        self.cur_transport = transport;
        if msg.is_request() {
            self.on_request(from, msg);
        } else {
            self.on_response(msg);
        }
    }

    /// Bytes that do not parse as SIP: a request is refused as RFC 4475 expects (505 for
    /// another version, else 400) when it names enough to be answered; anything else is
    /// dropped (the driver has warned).
    pub(super) fn on_sip_invalid(
        &mut self,
        transport: Transport,
        from: SocketAddr,
        raw: &[u8],
        error: &SipError,
    ) {
        self.cur_transport = transport;
        if let Some(r) = refusal_of_unparsed(raw, error) {
            self.refuse(from, raw, &r, false);
        }
    }

    /// Answers a request the node will not process with `r` (400, 505), or discards it when
    /// it cannot be answered (no Via, From, To, Call-ID or CSeq; an ACK is never answered).
    fn refuse(&mut self, from: SocketAddr, raw: &[u8], r: &Refusal, warn: bool) {
        let tag = new_tag(&mut self.rng);
        match refusal_response(raw, r, &tag) {
            Some(resp) => {
                if warn {
                    self.warn(format!("refused a request from {from} with {r}"));
                }
                self.send_sip(None, from, resp);
            }
            None => self.warn(format!(
                "discarded a request from {from} that cannot be answered ({r})"
            )),
        }
    }

    fn on_request(&mut self, from: SocketAddr, msg: SipMessage) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        if let Err(r) = msg.check_request() {
            if method == Method::Ack {
                self.warn(format!("discarded an invalid ACK from {from}: {r}"));
            } else {
                self.refuse(from, &msg.raw, &r, true);
            }
            return;
        }
        let call_id = msg.call_id().unwrap_or_default().to_string();
        if let Some(to_tag) = msg.to_tag() {
            let Some(&leg) = self.dialogs.get(&(call_id.clone(), to_tag.clone())) else {
                if method != Method::Ack {
                    self.respond_plain(from, &msg, 481, "Call/Transaction Does Not Exist");
                }
                self.warn(format!("{} for unknown dialog from {from}", msg.summary()));
                return;
            };
            match method {
                Method::Ack => self.on_ack(leg),
                Method::Bye => self.on_bye(leg, from, msg),
                Method::Invite => {
                    // Re-INVITE: not part of this flow.
                    self.respond_plain(from, &msg, 488, "Not Acceptable Here");
                }
                _ => self.respond_plain(from, &msg, 405, "Method Not Allowed"),
            }
            return;
        }
        match method {
            Method::Invite => self.on_invite(from, msg),
            Method::Ack => {} // ACK for a non-2xx: absorbed.
            _ => self.respond_plain(from, &msg, 481, "Call/Transaction Does Not Exist"),
        }
    }

    /// A new INVITE (retransmissions are answered again): the offer must be acceptable, the
    /// role says whom the call is for and how it proceeds.
    fn on_invite(&mut self, from: SocketAddr, msg: SipMessage) {
        let call_id = msg.call_id().unwrap_or_default().to_string();
        let from_tag = msg.from_tag().unwrap_or_default();
        if let Some(&leg) = self.invites_in.get(&(call_id.clone(), from_tag.clone())) {
            // Retransmission: repeat the last response.
            if let Some(r) = self.legs[leg].last_response.clone() {
                let peer = self.legs[leg].peer;
                self.send_sip(Some(leg), peer, *r);
            }
            return;
        }
        let rules = self.rules;
        if !rules.takes_invites() {
            self.respond_plain(from, &msg, 403, "Forbidden");
            return;
        }
        let offer = msg.sdp_body().map(|b| MsrpSdp::parse(&b));
        let offer = match offer {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                self.warn(format!(
                    "bad SDP offer in {} from {from}: {e}",
                    msg.summary()
                ));
                self.respond_plain(from, &msg, 488, "Not Acceptable Here");
                return;
            }
            None => {
                self.respond_plain(from, &msg, 488, "Not Acceptable Here");
                return;
            }
        };
        // Whom the session is for.
        let ruri = msg.request_uri().unwrap_or_default().to_string();
        let Some(members) = rules.members(self, from, &msg, &ruri) else {
            return; // The role's rules rejected it.
        };
        let variant = self.variant_of_invite(&msg);
        let call = self.new_call(variant);
        self.calls[call].members = members.clone();
        let local_tag = new_tag(&mut self.rng);
        let local_uri = msg.to_uri().unwrap_or_default();
        let remote_uri = msg.from_uri().unwrap_or_default();
        let target = msg
            .contact_uri()
            .and_then(|c| sip_uri_addr(&c))
            .unwrap_or(from);
        let leg = self.new_leg(
            call,
            Side::Up,
            call_id.clone(),
            local_tag,
            Some(from_tag.clone()),
            local_uri,
            remote_uri,
            target,
        );
        self.invites_in.insert((call_id, from_tag), leg);
        self.calls[call].up = Some(leg);
        {
            let l = &mut self.legs[leg];
            l.peer = from;
            l.route_set = msg.uri_list("Record-Route");
            l.remote_contact = msg.contact_uri();
            l.remote_sdp = Some(Box::new(offer));
            l.invite = Some(Box::new(msg.clone()));
        }
        rules.invited(
            self,
            Invited {
                call,
                leg,
                from,
                msg: &msg,
                ruri: &ruri,
                members: &members,
            },
        );
    }

    /// Per-call mode: the variant of the call an INVITE starts, from its
    /// [`super::VARIANT_HEADER`] (a warning, and the node's variant, when it has none or an
    /// unreadable one).
    fn variant_of_invite(&mut self, msg: &SipMessage) -> Option<Box<crate::config::Variant>> {
        if !self.cfg.per_call_variant {
            return None;
        }
        match msg.header(super::VARIANT_HEADER) {
            Some(v) => match crate::config::Variant::from_id(v) {
                Ok(v) => Some(Box::new(v)),
                Err(e) => {
                    self.warn(format!(
                        "{}: {e}; the call runs the default variant",
                        super::VARIANT_HEADER
                    ));
                    None
                }
            },
            None => {
                self.warn(format!(
                    "{} has no {} header; the call runs the default variant",
                    msg.summary(),
                    super::VARIANT_HEADER
                ));
                None
            }
        }
    }

    fn on_response(&mut self, msg: SipMessage) {
        let Some(code) = msg.code() else { return };
        let call_id = msg.call_id().unwrap_or_default().to_string();
        let from_tag = msg.from_tag().unwrap_or_default();
        let Some(&leg) = self.dialogs.get(&(call_id, from_tag)) else {
            self.warn(format!(
                "response {} to an unknown transaction",
                msg.summary()
            ));
            return;
        };
        let method = msg.cseq().map(|(_, m)| m);
        match method {
            // Only a down leg sent an INVITE; either side may have sent a BYE.
            Some(Method::Invite) if self.legs[leg].side == Side::Down => {
                self.on_invite_response(leg, code, msg)
            }
            Some(Method::Bye) if code >= 200 && self.legs[leg].state == DialogState::AwaitByeOk => {
                self.legs[leg].state = DialogState::Terminated;
                self.bp_legs.push(leg);
                self.close_session(leg);
                let call = self.legs[leg].call;
                if self.legs[leg].side == Side::Down {
                    // A leg this node released (its member left): nobody left downstream?
                    self.on_down_ended(call);
                }
                self.end_call_if_done(call);
            }
            _ => {}
        }
    }

    fn on_invite_response(&mut self, leg: LegIdx, code: u16, msg: SipMessage) {
        if code < 200 {
            return; // Provisional: stops Timer A (checked through the state at fire time).
        }
        let state = self.legs[leg].state;
        if code >= 300 {
            if state == DialogState::AwaitOk {
                // ACK for a non-2xx is hop-by-hop, same branch (RFC 3261 §17.1.1.3).
                let invite = self.legs[leg]
                    .invite
                    .clone()
                    .expect("down leg has its INVITE");
                let ack = non2xx_ack(&invite, &msg);
                let to = self.legs[leg].invite_dest;
                if !(self.fault(Fault::NoAckNon2xx) && self.rules.middle()) {
                    self.send_sip(Some(leg), to, ack);
                }
                self.legs[leg].state = DialogState::Failed;
                self.bp_legs.push(leg);
                self.warn(format!(
                    "{} answered {}",
                    self.legs[leg].remote_uri,
                    msg.summary()
                ));
                self.on_down_failed(leg, code);
            }
            return;
        }
        // 2xx.
        if state != DialogState::AwaitOk {
            // Retransmitted 2xx: repeat the ACK if we sent one (RFC 3261 §13.2.2.4).
            if let Ack::Sent(ack) = self.legs[leg].ack.clone() {
                self.send_in_dialog(leg, *ack);
            }
            return;
        }
        let answer = match msg.sdp_body().map(|b| MsrpSdp::parse(&b)) {
            Some(Ok(s)) => s,
            other => {
                let why = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "no SDP answer".into(),
                };
                self.warn(format!(
                    "{} from {}: {why}",
                    msg.summary(),
                    self.legs[leg].remote_uri
                ));
                self.legs[leg].state = DialogState::AwaitAck;
                self.legs[leg].remote_tag = msg.to_tag();
                self.send_ack(leg);
                self.legs[leg].media_failed = true;
                self.bp_legs.push(leg);
                self.send_bye(leg);
                self.on_down_failed(leg, 488);
                return;
            }
        };
        let opens = self.offerer_opens(leg, &answer);
        {
            let l = &mut self.legs[leg];
            l.remote_tag = msg.to_tag();
            l.state = DialogState::AwaitAck;
            l.remote_sdp = Some(Box::new(answer));
            l.opens = opens;
            l.route_set = msg.uri_list("Record-Route").into_iter().rev().collect();
            if let Some(c) = msg.contact_uri() {
                if let Some(t) = sip_uri_addr(&c) {
                    l.remote_target = t;
                }
                l.remote_contact = Some(c);
            }
        }
        let call = self.legs[leg].call;
        // ACK now, or when the role's rule allows.
        let ack_now = self.rules.ack_now(self, leg);
        if ack_now {
            self.send_ack(leg);
        } else {
            self.legs[leg].ack = Ack::Owed;
        }
        // Answer upstream on the (first) downstream 200.
        if let Some(up) = self.calls[call].up {
            if !self.calls[call].answered_up {
                self.answer_up(up);
            }
        }
        self.maybe_open(leg);
        self.flush_leg(leg);
    }

    fn on_ack(&mut self, leg: LegIdx) {
        if self.legs[leg].side != Side::Up {
            return;
        }
        if self.legs[leg].state != DialogState::AwaitAck {
            return; // Duplicate ACK.
        }
        self.legs[leg].state = DialogState::Confirmed;
        let call = self.legs[leg].call;
        self.calls[call].upstream_ack = true;
        let downs = self.calls[call].downs.clone();
        for d in downs {
            if matches!(self.legs[d].ack, Ack::Owed) {
                self.send_ack(d);
            }
        }
        self.maybe_open(leg);
        for d in self.calls[call].downs.clone() {
            self.maybe_open(d);
        }
        if self.legs[leg].bye_after_ack {
            self.send_bye(leg);
        }
    }

    fn on_bye(&mut self, leg: LegIdx, from: SocketAddr, msg: SipMessage) {
        if let Some(r) = self.legs[leg].bye_response.clone() {
            self.send_sip(Some(leg), from, *r);
            return;
        }
        // A BYE that overtook a lost ACK confirms the dialog all the same: act on the ACK
        // first, or down legs waiting for it would never be ACKed nor their links opened.
        if self.legs[leg].side == Side::Up && self.legs[leg].state == DialogState::AwaitAck {
            self.on_ack(leg);
        }
        let ok = build_response(&msg, 200, "OK", None, None, None);
        self.legs[leg].bye_response = Some(Box::new(ok.clone()));
        self.send_sip(Some(leg), from, ok);
        let call = self.legs[leg].call;
        if self.legs[leg].side == Side::Up {
            self.calls[call].bye_from_up = true;
        }
        self.legs[leg].state = DialogState::Terminated;
        self.bp_legs.push(leg);
        self.close_session(leg);
        for d in self.calls[call].downs.clone() {
            self.maybe_bye(d);
        }
        if self.legs[leg].side == Side::Down {
            // A member's side left: once nobody is left downstream, the call ends upstream.
            self.on_down_ended(call);
        }
        self.end_call_if_done(call);
    }
}

/// The reason phrase of a final non-2xx this node sends or relays (RFC 3261 §21).
pub(super) fn reason_phrase(code: u16) -> &'static str {
    match code {
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Downstream Failed",
    }
}

/// `sip:name@127.0.0.1:5060;transport=udp` → the socket address, when the host is an IP.
pub fn sip_uri_addr(uri: &str) -> Option<SocketAddr> {
    let u = uri.trim().trim_start_matches('<').trim_end_matches('>');
    // An IP host, IPv6 in brackets (`sip:[::1];lr`: port 5060, as Kamailio writes its
    // Record-Route on the default port; 5061 for sips:, RFC 3261 §19.1.2).
    let (host, port) = crate::codec::sip::host::sip_uri_hostport(u)?.ok()?;
    let default = if is_sips(u) { 5061 } else { 5060 };
    Some(SocketAddr::new(host.ip()?, port.unwrap_or(default)))
}

/// `uri` with its `sip:` scheme made `sips:` when `tls` (other schemes, and a URI already
/// `sips:`, unchanged).
pub fn sips_if(uri: String, tls: bool) -> String {
    match uri.get(..4) {
        Some(s) if tls && s.eq_ignore_ascii_case("sip:") => format!("sips:{}", &uri[4..]),
        _ => uri,
    }
}

/// The transport a SIP URI asks for: its `transport` parameter, else TLS for `sips:` (RFC
/// 3261 §26.2.2: a SIPS URI is reached over TLS only).
fn uri_transport(uri: &str) -> Option<Transport> {
    let u = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let param = uri_transport_param(u);
    if is_sips(u) && param != Some(Transport::Udp) {
        return Some(Transport::Tls);
    }
    param
}

/// The `transport` parameter of a SIP URI, when it names UDP, TCP or TLS.
fn uri_transport_param(u: &str) -> Option<Transport> {
    u.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("transport") {
            return None;
        }
        match v.trim().to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            _ => None,
        }
    })
}

/// The ACK for a non-2xx final response: same branch, To from the response (§17.1.1.3).
fn non2xx_ack(invite: &SipMessage, resp: &SipMessage) -> SipMessage {
    let (transport, sent_by) = invite
        .via_sent_by()
        .unwrap_or((Transport::Udp, String::new()));
    let spec = RequestSpec {
        method: Method::Ack,
        request_uri: invite.request_uri().unwrap_or_default().to_string(),
        transport,
        sent_by,
        branch: invite.via_branch().unwrap_or_default(),
        from_uri: invite.from_uri().unwrap_or_default(),
        from_tag: invite.from_tag().unwrap_or_default(),
        to_uri: resp.to_uri().unwrap_or_default(),
        to_tag: resp.to_tag(),
        call_id: invite.call_id().unwrap_or_default().to_string(),
        cseq: invite.cseq().map(|(n, _)| n).unwrap_or(1),
        contact: None,
        extra: vec![],
        body: None,
    };
    build_request(&spec)
}

/// [`Fault::CIp4OnIpv6`]: the `c=` line labelled `IN IP4` whatever the address (`c=IN IP4 ::1`),
/// as a SUT that hard-codes the address type writes it on IPv6.
fn c_ip4(sdp: String, on: bool) -> String {
    if on {
        sdp.replace("c=IN IP6 ", "c=IN IP4 ")
    } else {
        sdp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `sips:` URI is reached over TLS, on 5061 by default (RFC 3261 §19.1.2, §26.2.2);
    /// the AoR's SIPS form is made only for TLS and only from `sip:`.
    #[test]
    fn sips_uris_mean_tls() {
        assert_eq!(
            uri_transport("<sips:x@127.0.0.1:5070>"),
            Some(Transport::Tls)
        );
        assert_eq!(uri_transport("sips:[::1];lr"), Some(Transport::Tls));
        assert_eq!(
            uri_transport("sip:x@127.0.0.1;transport=tls"),
            Some(Transport::Tls)
        );
        assert_eq!(
            uri_transport("sip:x@127.0.0.1;transport=tcp"),
            Some(Transport::Tcp)
        );
        assert_eq!(uri_transport("sip:x@127.0.0.1"), None);
        assert_eq!(
            sip_uri_addr("sips:x@127.0.0.1"),
            Some("127.0.0.1:5061".parse().unwrap())
        );
        assert_eq!(
            sip_uri_addr("sip:x@[::1]"),
            Some("[::1]:5060".parse().unwrap())
        );
        assert_eq!(sips_if("sip:g@x.example".into(), true), "sips:g@x.example");
        assert_eq!(sips_if("SIP:g@x.example".into(), true), "sips:g@x.example");
        assert_eq!(sips_if("sip:g@x.example".into(), false), "sip:g@x.example");
        assert_eq!(sips_if("sips:g@x.example".into(), true), "sips:g@x.example");
        assert_eq!(sips_if("tel:+1555".into(), true), "tel:+1555");
        assert_eq!(
            crate::topology::strip_uri("<sips:G@X.example;x=1>"),
            crate::topology::strip_uri("sip:g@x.example")
        );
    }
}
