//! MSRP on the node's connections, both ways.
//!
//! In: each connection's streaming parser; a chunk longer than the limit ends the link;
//! requests are matched to their session by To-Path (RFC 4975 §7.3) — the passive side binds
//! the session to the connection on the first one — and answered on the connection they came
//! on; responses settle this node's SEND transactions.
//!
//! Out: a middle entity relays each SEND as it arrives: for every SEND head it queues a new
//! head (new transaction id, its own From-Path, the downstream peer's path as To-Path, built
//! once the peer is known) on every live down leg, then each body piece, then the end-line
//! with the same continuation flag. Queues are per leg; nothing else is written on a
//! connection while a relayed message is in progress (MSRP messages never interleave), so
//! responses and binding SENDs wait for its end-line.

use super::state::{DialogState, InMsg, LegIdx, OwedReport, PathCache, Pending, RelayHead, Side};
use super::timers::TimerKind;
use super::Node;
use crate::codec::msrp::{
    encode_end, encode_report, encode_response, encode_send_head_with, new_ident, ByteRange, Flag,
    MsrpEvent, MsrpHead, MsrpUri, ReportRequest, StartLine,
};
use crate::config::ReportTiming;
use crate::entity::{ConnId, Fault, Output};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

impl Node {
    // ------------------------------------------------------------------ out

    pub(super) fn write(&mut self, conn: ConnId, data: Bytes) {
        if data.is_empty() {
            return;
        }
        match self.conns.get_mut(&conn) {
            Some(c) if !c.closed => c.unflushed += data.len(),
            _ => return, // Closed or lost: nothing may be written any more.
        }
        self.bp_conns.push(conn);
        self.out.push_back(Output::MsrpWrite { conn, data });
    }

    /// Queues relay bytes for a leg, writing at once when its link is ready.
    /// A member refused the message (413, 415): nothing more of it goes to `leg` — a chunk
    /// under way on the wire is ended with `#` (RFC 4975 §7.1.1, §7.1.2), later ones are
    /// dropped — and the leg is released with a BYE.
    fn stop_message(&mut self, leg: LegIdx) {
        let busy = self.legs[leg]
            .conn
            .and_then(|c| self.conns.get(&c))
            .and_then(|c| c.busy)
            == Some(leg);
        let pending = std::mem::take(&mut self.legs[leg].pending);
        self.legs[leg].pending_bytes = 0;
        if busy {
            let queued_end = pending.into_iter().find_map(|p| match p {
                Pending::End(b) => Some(b),
                _ => None,
            });
            let end = match queued_end {
                Some(b) => {
                    let mut v = b.to_vec();
                    let n = v.len();
                    if n >= 3 {
                        v[n - 3] = b'#';
                    }
                    Some(Bytes::from(v))
                }
                // The upstream chunk is still arriving: end this leg's copy now.
                None => {
                    let call = self.legs[leg].call;
                    let up_conn = self.calls[call].up.and_then(|u| self.legs[u].conn);
                    up_conn
                        .and_then(|uc| self.conns.get_mut(&uc))
                        .and_then(|c| c.cur.as_mut())
                        .and_then(|m| {
                            let i = m.relays.iter().position(|(d, _)| *d == leg)?;
                            Some(m.relays.remove(i).1)
                        })
                        .map(|tid| {
                            let mut b = BytesMut::new();
                            encode_end(&mut b, &tid, Flag::Abort, true);
                            b.freeze()
                        })
                }
            };
            if let Some(e) = end {
                self.legs[leg].pending.push_back(Pending::End(e));
            }
        }
        self.flush_leg(leg);
        if self.legs[leg].state == DialogState::Confirmed {
            self.send_bye(leg);
        }
    }

    fn push_leg(&mut self, leg: LegIdx, data: Bytes) {
        self.push_pending(leg, Pending::Data(data));
    }

    fn push_pending(&mut self, leg: LegIdx, item: Pending) {
        let l = &mut self.legs[leg];
        if l.media_failed || l.session_closed {
            return;
        }
        if let Pending::Data(d) = &item {
            l.pending_bytes += d.len();
        }
        l.pending.push_back(item);
        self.bp_legs.push(leg);
        self.flush_leg(leg);
    }

    /// Writes a whole message (response, binding SEND) unless a relayed message is in
    /// progress on the connection, in which case it goes right after that message's end-line.
    pub(super) fn write_ctl(&mut self, conn: ConnId, data: Bytes) {
        match self.conns.get_mut(&conn) {
            Some(c) if c.busy.is_some() => c.deferred.push_back(data),
            Some(_) => self.write(conn, data),
            None => {}
        }
    }

    pub(super) fn flush_leg(&mut self, leg: LegIdx) {
        let Some(conn) = self.legs[leg].conn else {
            return;
        };
        self.flush_conn(conn, Some(leg));
    }

    /// Writes queued relay data of the legs on `conn`, one message at a time, starting with
    /// `first`; deferred control messages go between messages.
    fn flush_conn(&mut self, conn: ConnId, first: Option<LegIdx>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let mut order: Vec<LegIdx> = first.into_iter().collect();
        order.extend(c.legs.iter().copied().filter(|l| Some(*l) != first));
        let mut progress = true;
        while progress {
            progress = false;
            for &leg in &order {
                let busy = self.conns.get(&conn).and_then(|c| c.busy);
                if busy.is_some() && busy != Some(leg) {
                    continue;
                }
                let l = &self.legs[leg];
                if !l.ready || l.pending.is_empty() || l.conn != Some(conn) {
                    continue;
                }
                if !self.admitted_to_write(leg) {
                    continue;
                }
                let l = &self.legs[leg];
                if l.remote_sdp.is_none() {
                    continue;
                }
                // Faults: the upstream To-Path copied; a Byte-Range starting at 0.
                let wrong_to = self.calls[l.call]
                    .up
                    .filter(|_| self.fault(Fault::WrongToPath));
                let zero_range = self.fault(Fault::BadByteRange);
                while let Some(item) = self.legs[leg].pending.pop_front() {
                    let (data, busy) = match item {
                        Pending::Data(d) => {
                            let l = &mut self.legs[leg];
                            l.pending_bytes = l.pending_bytes.saturating_sub(d.len());
                            (d, Some(leg))
                        }
                        Pending::Head(head) => {
                            let RelayHead {
                                tid,
                                message_id,
                                range,
                                content_type,
                                reports,
                            } = *head;
                            let range = if zero_range {
                                ByteRange { start: 0, ..range }
                            } else {
                                range
                            };
                            let l = &self.legs[leg];
                            let to = match (wrong_to, &l.remote_sdp) {
                                (Some(u), _) => &self.legs[u].local_path,
                                (None, Some(sdp)) => sdp.next_hop(),
                                (None, None) => unreachable!("checked before the loop"),
                            };
                            let mut buf = BytesMut::new();
                            encode_send_head_with(
                                &mut buf,
                                &tid,
                                to,
                                &l.local_path,
                                &message_id,
                                range,
                                Some(&content_type),
                                reports,
                            );
                            (buf.freeze(), Some(leg))
                        }
                        Pending::End(d) => (d, None),
                    };
                    self.write(conn, data);
                    progress = true;
                    let c = self.conns.get_mut(&conn).expect("conn");
                    c.busy = busy;
                    self.bp_conns.push(conn);
                    if busy.is_none() {
                        let deferred: Vec<Bytes> = c.deferred.drain(..).collect();
                        for d in deferred {
                            self.write(conn, d);
                        }
                        // Let other legs on a shared connection take their turn.
                        break;
                    }
                }
                self.maybe_bye(leg);
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.busy.is_none() && !c.deferred.is_empty() {
                let deferred: Vec<Bytes> = c.deferred.drain(..).collect();
                for d in deferred {
                    self.write(conn, d);
                }
            }
        }
    }

    // ------------------------------------------------------------------ in

    pub(super) fn on_msrp_data(&mut self, conn: ConnId, data: Bytes) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.parser.push_bytes(data);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            // Formatted only on the error paths (this loop is the relay's hot path).
            let peer = c.peer;
            let peer = move || peer.map_or_else(|| "?".to_string(), |p| p.to_string());
            let ev = match c.parser.next() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    self.warn(format!("MSRP from {} (link {conn}): {e}", peer()));
                    self.out.push_back(Output::Close { conn });
                    self.on_conn_lost(conn, "malformed MSRP");
                    return;
                }
            };
            // A chunk that never ends is cut at the limit (the relay streams it, but the
            // recorder and the peer's queues would grow with it).
            match &ev {
                MsrpEvent::Head(_) | MsrpEvent::End { .. } => c.chunk_bytes = 0,
                MsrpEvent::Body(b) => {
                    c.chunk_bytes += b.len() as u64;
                    let max = self.cfg.limits.msrp_chunk;
                    if c.chunk_bytes > max {
                        let what = c
                            .cur
                            .as_ref()
                            .map(|m| {
                                format!(
                                    "{} {}",
                                    m.method,
                                    m.range.map(|r| r.to_string()).unwrap_or_default()
                                )
                            })
                            .unwrap_or_default();
                        let near = String::from_utf8_lossy(&b[..b.len().min(32)]).into_owned();
                        self.warn(format!(
                            "MSRP from {} (link {conn}): chunk ({what}) longer than \
                             max-msrp-chunk ({max} bytes) (near {near:?})",
                            peer()
                        ));
                        self.out.push_back(Output::Close { conn });
                        self.on_conn_lost(conn, "MSRP chunk over the limit");
                        return;
                    }
                }
            }
            match ev {
                MsrpEvent::Head(h) => self.on_msrp_head(conn, h),
                MsrpEvent::Body(b) => self.on_msrp_body(conn, b),
                MsrpEvent::End { tid, flag } => self.on_msrp_end(conn, tid, flag),
            }
        }
    }

    /// A request's first From-Path and To-Path URIs, parsed once per distinct pair of header
    /// values on a connection.
    fn request_paths(
        &mut self,
        conn: ConnId,
        h: &MsrpHead,
    ) -> (Option<Arc<MsrpUri>>, Option<Arc<MsrpUri>>) {
        let (Some(to_raw), Some(from_raw)) = (h.header("To-Path"), h.header("From-Path")) else {
            let first = |r: Result<Vec<MsrpUri>, _>| r.ok().and_then(|v| v.into_iter().next());
            return (
                first(h.from_path()).map(Arc::new),
                first(h.to_path()).map(Arc::new),
            );
        };
        let c = self.conns.get_mut(&conn);
        if let Some(p) = c.as_ref().and_then(|c| c.paths.as_ref()) {
            if p.to_raw == to_raw && p.from_raw == from_raw {
                return (p.from.clone(), p.to.clone());
            }
        }
        let first = |v: &str| {
            MsrpUri::parse_list(v)
                .ok()
                .and_then(|v| v.into_iter().next())
                .map(Arc::new)
        };
        let (from, to) = (first(from_raw), first(to_raw));
        if let Some(c) = c {
            c.paths = Some(PathCache {
                to_raw: to_raw.to_string(),
                from_raw: from_raw.to_string(),
                to: to.clone(),
                from: from.clone(),
            });
        }
        (from, to)
    }

    fn on_msrp_head(&mut self, conn: ConnId, h: MsrpHead) {
        let is_request = matches!(h.start, StartLine::Request { .. });
        // A response's paths are never used: not parsed.
        let (from_path, to_path) = if is_request {
            self.request_paths(conn, &h)
        } else {
            (None, None)
        };
        let mut m = InMsg {
            leg: None,
            is_request,
            method: h.method().unwrap_or_default().to_string(),
            code: h.code().unwrap_or(0),
            from_path,
            to_path,
            range: h.byte_range().and_then(|r| r.ok()),
            seen: 0,
            has_body: h.has_body,
            relays: vec![],
            held: None,
            reject: None,
            reports: ReportRequest::default(),
            message_id: None,
        };
        if is_request {
            m.reports = ReportRequest::of(&h);
            if m.reports.success {
                m.message_id = h.message_id().map(String::from);
            }
        }
        if !is_request {
            let entry = self.conns.get_mut(&conn).and_then(|c| c.tx.remove(&h.tid));
            if let Some((leg, last)) = entry {
                m.leg = Some(leg);
                let now = self.now;
                self.bp_legs.push(leg);
                let l = &mut self.legs[leg];
                l.outstanding = l.outstanding.saturating_sub(1);
                l.msrp_progress = Some(now);
                // 413 (stop sending this message) and 415 (its type is not accepted) from a
                // member: the message stops on this leg and the leg is released.
                let refused =
                    matches!(m.code, 413 | 415) && self.rules.middle() && l.side == Side::Down;
                let ignore = refused && self.cfg.faults.contains(&Fault::ContinueAfterReject);
                let l = &mut self.legs[leg];
                if m.code != 200 && !ignore {
                    l.media_failed = true;
                    let uri = l.remote_uri.clone();
                    self.warn(format!("MSRP {} for a SEND to {uri}", m.code));
                }
                if refused && !ignore {
                    self.stop_message(leg);
                }
                let _ = last;
                self.maybe_bye(leg);
                if self.rules.sends() {
                    let call = self.legs[leg].call;
                    self.pump(call);
                }
            } else {
                self.warn(format!(
                    "MSRP response {} for unknown transaction {}",
                    m.code, h.tid
                ));
            }
            self.conns.get_mut(&conn).expect("conn").cur = Some(m);
            return;
        }
        // A request: find the session by To-Path (RFC 4975 §7.3).
        // Several sessions with one session-id (a peer's or our own fault): the session this
        // connection is bound to, else an unbound one whose peer path is the From-Path.
        let cands: Vec<LegIdx> = m
            .to_path
            .as_ref()
            .and_then(|u| u.session_id.clone())
            .and_then(|sid| self.sessions.get(&sid).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|&l| {
                m.to_path
                    .as_ref()
                    .map(|u| u.matches(&self.legs[l].local_path))
                    .unwrap_or(false)
            })
            .collect();
        let peer_is = |l: LegIdx| {
            let remote = self.legs[l]
                .remote_sdp
                .as_ref()
                .and_then(|s| s.path.last().cloned());
            matches!((&m.from_path, remote), (Some(f), Some(r)) if f.matches(&r))
        };
        let leg = match cands.as_slice() {
            [] => None,
            [one] => Some(*one),
            many => many
                .iter()
                .copied()
                .find(|&l| self.legs[l].conn == Some(conn))
                .or_else(|| {
                    many.iter()
                        .copied()
                        .find(|&l| self.legs[l].conn.is_none() && peer_is(l))
                })
                .or_else(|| many.iter().copied().find(|&l| self.legs[l].conn.is_none())),
        };
        match leg {
            None => m.reject = Some((481, "No Such Session")),
            Some(l) => {
                match self.legs[l].conn {
                    None => {
                        // The passive side binds the session to the connection (§5.4).
                        self.attach(l, conn);
                        self.legs[l].ready = true;
                        self.watch_msrp(l);
                        self.flush_leg(l);
                        let call = self.legs[l].call;
                        self.pump(call);
                    }
                    Some(c) if c != conn => m.reject = Some((506, "Session Already Bound")),
                    Some(_) => {
                        if !self.legs[l].ready {
                            self.legs[l].ready = true;
                            self.flush_leg(l);
                        }
                    }
                }
                if m.reject.is_none() {
                    m.leg = Some(l);
                }
            }
        }
        if let (Some(l), "REPORT") = (m.leg, m.method.as_str()) {
            self.on_report(l, &h);
        }
        // member-rejects-content: this member refuses the content (413 or 415), chunk by chunk.
        if let (Some(_), "SEND", true) = (m.leg, m.method.as_str(), h.has_body) {
            if self.rules.delivers() {
                if let Some(&code) = self.cfg.holds.reject_content.get(&self.cfg.name) {
                    let phrase = if code == 415 {
                        "Unsupported Media Type"
                    } else {
                        "Request Entity Too Large"
                    };
                    m.reject = Some((code, phrase));
                    m.leg = None;
                }
            }
        }
        if let (Some(l), "SEND") = (m.leg, m.method.as_str()) {
            let call = self.legs[l].call;
            let first_send = !self.calls[call].got_send;
            if self.legs[l].side == Side::Up {
                self.calls[call].got_send = true;
                if first_send {
                    for d in self.calls[call].downs.clone() {
                        self.maybe_open(d);
                    }
                }
                if h.has_body && self.rules.middle() {
                    // Relay: a new SEND on every live down leg, body streamed as it arrives.
                    let msg_id = h.message_id().unwrap_or("").to_string();
                    let ctype = h.content_type().unwrap_or("message/cpim").to_string();
                    let range = m.range.unwrap_or(ByteRange {
                        start: 1,
                        end: None,
                        total: None,
                    });
                    if let Some(t) = range.total {
                        self.calls[call].msg_total.get_or_insert(t);
                    }
                    for d in self.calls[call].downs.clone() {
                        let dl = &self.legs[d];
                        if dl.media_failed
                            || matches!(dl.state, DialogState::Failed | DialogState::Terminated)
                        {
                            continue;
                        }
                        let tid = new_ident(&mut self.rng);
                        let reports = self.relayed_reports(m.reports);
                        if !reports.failure_no {
                            self.legs[d].outstanding += 1;
                        }
                        m.relays.push((d, tid.clone()));
                        let head = Pending::Head(Box::new(RelayHead {
                            tid,
                            message_id: msg_id.clone(),
                            range,
                            content_type: ctype.clone(),
                            reports,
                        }));
                        self.push_pending(d, head);
                    }
                }
            }
        }
        self.conns.get_mut(&conn).expect("conn").cur = Some(m);
    }

    fn on_msrp_body(&mut self, conn: ConnId, b: Bytes) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(m) = c.cur.as_mut() else { return };
        let offset = m.seen;
        m.seen += b.len() as u64;
        let relays: Vec<LegIdx> = m.relays.iter().map(|(d, _)| *d).collect();
        let leg = m.leg;
        let start = m.range.map(|r| r.start).unwrap_or(1);
        let is_send = m.is_request && m.method == "SEND" && m.reject.is_none();
        // Fault relay-truncate: each piece waits for the next, so the last one can be dropped.
        let b_relay = if self.cfg.faults.contains(&Fault::RelayTruncate) && !relays.is_empty() {
            match m.held.replace(b.clone()) {
                Some(prev) => prev,
                None => Bytes::new(),
            }
        } else {
            b.clone()
        };
        let b_relay = if self.fault(Fault::CpimAltered) {
            alter_cpim_from(b_relay)
        } else {
            b_relay
        };
        if !b_relay.is_empty() {
            for d in relays {
                self.push_leg(d, b_relay.clone());
            }
        }
        if is_send && self.rules.delivers() {
            if let Some(leg) = leg {
                let call = self.legs[leg].call;
                self.deliver(call, start - 1 + offset, b);
            }
        }
    }

    fn on_msrp_end(&mut self, conn: ConnId, tid: String, flag: Flag) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(m) = c.cur.take() else { return };
        if !m.is_request {
            return;
        }
        if let Some(held) = m.held.clone() {
            if flag == Flag::More {
                for (d, _) in &m.relays {
                    self.push_leg(*d, held.clone());
                }
            }
        }
        // The whole message arrived with a success REPORT asked for (RFC 4975 §7.1.2): a
        // member reports at once (the harness's after its report-delay hold); a middle entity
        // once its downstream reported delivery, or at once where it reports on receipt
        // (before it relays the last chunk on).
        let whole = flag == Flag::End
            && m.method == "SEND"
            && m.has_body
            && m.reports.success
            && m.reject.is_none();
        if let (Some(leg), true) = (m.leg, whole && !self.fault(Fault::NoSuccessReport)) {
            if self.legs[leg].side == Side::Up {
                let r = m.range.unwrap_or(ByteRange {
                    start: 1,
                    end: None,
                    total: None,
                });
                let total = r.start - 1 + m.seen;
                // report-partial-range: the report covers the last chunk only.
                let start = if self.fault(Fault::ReportPartialRange) {
                    r.start
                } else {
                    1
                };
                let owed = m.from_path.clone().map(|to| OwedReport {
                    to,
                    message_id: m.message_id.clone().unwrap_or_default(),
                    range: ByteRange {
                        start,
                        end: Some(total),
                        total: Some(total),
                    },
                });
                let now =
                    self.rules.delivers() || (self.rules.middle() && self.reports_on_receipt());
                let delay = self.cfg.holds.report_delay;
                if now && self.rules.delivers() && !delay.is_zero() {
                    self.legs[leg].report_owed = owed;
                    self.arm(leg, TimerKind::ReportDelay, delay);
                } else if now {
                    if let Some(o) = owed {
                        self.send_report(leg, conn, o);
                    }
                } else if self.rules.middle() && !m.relays.is_empty() {
                    self.legs[leg].report_owed = owed;
                }
            }
        }
        // Finish relayed copies with the same continuation flag (the abort-as-end fault ends
        // an aborted message with `$` instead of `#`).
        let out_flag = if flag == Flag::Abort && self.fault(Fault::AbortAsEnd) {
            Flag::End
        } else {
            flag
        };
        let down_reports = self.relayed_reports(m.reports);
        for (d, rtid) in &m.relays {
            let mut buf = BytesMut::new();
            encode_end(&mut buf, rtid, out_flag, true);
            let last = flag != Flag::More;
            if last && flag == Flag::End && down_reports.success {
                self.legs[*d].report_due = true;
            }
            if down_reports.failure_no {
                // Failure-Report: no: no response will settle it (RFC 4975 §7.1.1).
            } else if let Some(dc) = self.legs[*d].conn {
                if let Some(c) = self.conns.get_mut(&dc) {
                    c.tx.insert(rtid.clone(), (*d, last));
                }
            } else {
                // No link yet: registered on the connection when the leg attaches.
                self.legs[*d].pending_tx.push((rtid.clone(), last));
            }
            if last {
                self.legs[*d].content_done = true;
            }
            self.push_pending(*d, Pending::End(buf.freeze()));
        }
        // Answer the request on the connection it came in on (RFC 4975 §7.2).
        // Failure-Report: no asks for no response (RFC 4975 §7.1.1, §7.1.2); a REPORT is never
        // answered (§7.1.2).
        let no_response =
            m.reports.failure_no && !self.fault(Fault::RespondsDespiteFailureReportNo);
        let silent = (self.fault(Fault::NoMsrp200) || no_response) && m.reject.is_none();
        if (m.method == "SEND" || m.reject.is_some()) && m.method != "REPORT" && !silent {
            let (code, comment) = m.reject.unwrap_or((200, "OK"));
            if let (Some(to), Some(own)) = (m.from_path.clone(), m.to_path.clone()) {
                let mut buf = BytesMut::new();
                encode_response(&mut buf, &tid, code, comment, &to, &own);
                self.write_ctl(conn, buf.freeze());
            }
        }
        if let (Some(leg), true) = (
            m.leg,
            self.rules.delivers() && flag == Flag::End && m.method == "SEND" && m.has_body,
        ) {
            let call = self.legs[leg].call;
            if let Some(r) = m.range {
                let total = r.start - 1 + m.seen;
                if let Some(d) = self.calls[call].delivery.as_mut() {
                    d.tracker.set_total(total);
                }
            }
            self.check_delivered(call);
        }
        if let (Some(leg), true) = (
            m.leg,
            self.rules.delivers() && m.method == "SEND" && m.has_body,
        ) {
            self.maybe_leave(leg);
        }
    }
}

impl Node {
    /// Whether this middle entity sends its upstream success REPORT as soon as the whole
    /// message arrived: declared (`report-timing: on-receipt`), or the report-before-delivery
    /// fault, which does the same while the SUT declares after-delivery.
    fn reports_on_receipt(&self) -> bool {
        self.cfg.report_timing == ReportTiming::OnReceipt || self.fault(Fault::ReportBeforeDelivery)
    }

    /// The report headers a middle entity puts on the SENDs it relays: what its upstream
    /// asked (RFC 4975 §7.1.2); none with the report-not-propagated fault.
    fn relayed_reports(&self, up: ReportRequest) -> ReportRequest {
        if self.fault(Fault::ReportNotPropagated) {
            ReportRequest::default()
        } else {
            up
        }
    }

    /// Writes a success REPORT (`Status: 000 200 OK`) for `leg`'s peer on `conn`.
    pub(super) fn send_report(&mut self, leg: LegIdx, conn: ConnId, o: OwedReport) {
        let tid = new_ident(&mut self.rng);
        let mut buf = BytesMut::new();
        encode_report(
            &mut buf,
            &tid,
            &o.to,
            &self.legs[leg].local_path,
            &o.message_id,
            o.range,
            200,
            "OK",
        );
        self.write_ctl(conn, buf.freeze());
    }

    /// A REPORT on `leg`: a success covering the whole message settles the leg's wait
    /// (client-a ends its session; a middle entity may now report upstream).
    fn on_report(&mut self, leg: LegIdx, h: &MsrpHead) {
        let ok = h
            .header("Status")
            .is_some_and(|s| s.trim().starts_with("000 200"));
        let whole = matches!(
            h.byte_range().and_then(|r| r.ok()),
            Some(ByteRange { start: 1, end: Some(e), total: Some(t) }) if e == t
        );
        if !(ok && whole) {
            self.warn(format!(
                "REPORT from {} does not report the whole message delivered (Status {:?}, \
                 Byte-Range {:?})",
                self.legs[leg].remote_uri,
                h.header("Status").unwrap_or(""),
                h.header("Byte-Range").unwrap_or("")
            ));
            return;
        }
        self.legs[leg].report_due = false;
        self.legs[leg].reported = true;
        self.maybe_bye(leg);
        let call = self.legs[leg].call;
        let Some(up) = self.calls[call].up.filter(|_| self.rules.middle()) else {
            return;
        };
        let downs = &self.calls[call].downs;
        let done = downs.iter().all(|&d| !self.legs[d].report_due)
            && downs.iter().any(|&d| self.legs[d].reported);
        if !done {
            return;
        }
        if let (Some(o), Some(conn)) = (self.legs[up].report_owed.take(), self.legs[up].conn) {
            self.send_report(up, conn, o);
        }
    }
}

/// Fault cpim-altered: upper-cases the scheme of the CPIM `From: <sip:` (same length, so the
/// Byte-Range arithmetic stays right and only the content changes).
fn alter_cpim_from(b: Bytes) -> Bytes {
    match memchr::memmem::find(&b, b"From: <sip:") {
        Some(i) => {
            let mut v = b.to_vec();
            v[i + 7..i + 10].copy_from_slice(b"SIP");
            Bytes::from(v)
        }
        None => b,
    }
}
