//! The wire layer of the model: a one-copy event stream ([`crate::trace`]) read into SIP
//! messages (parsed, with their SDP), TCP connections (opener, target, per direction the
//! byte stream with the time of each part), the MSRP messages of each direction (RFC 4975
//! §7, the streaming parser of [`crate::codec::msrp`]) and the content objects they carry,
//! reassembled over Byte-Range per Message-ID with their digests (of the whole object, and of
//! the content inside its message/cpim wrapper, RFC 3862).
//!
//! Nothing here knows the topology: who sent what is decided afterwards ([`super::who`]).
//! A capture and a live recording of the same traffic give the same wire layer.

use super::{
    first_line, ConnObs, ContentObs, DirObs, MsrpObs, MsrpParseError, Observation, SdpObs, SipKind,
    SipObs, TlsObs,
};
use crate::codec::cpim::Cpim;
use crate::codec::msrp::{ByteRange, Flag, Limits, MsrpEvent, MsrpParser};
use crate::codec::sdp::{MsrpSdp, Sdp};
use crate::codec::sip::{SipMessage, Transport};
use crate::trace::WireEvent;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

/// How much of each reassembled content object is kept (enough for a CPIM header part).
const CONTENT_PREFIX: usize = 64 * 1024;
/// Out-of-order chunks buffered per content object before giving up on its digest.
const MAX_OUT_OF_ORDER: u64 = 256 * 1024 * 1024;

/// Reads a one-copy event stream (any order; sorted by time here) into the wire layer of an
/// [`Observation`]: no party, leg or link is known yet.
pub fn interpret(events: &[(Duration, WireEvent)]) -> Observation {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].0);
    let mut obs = Observation {
        end: events.iter().map(|(t, _)| *t).max().unwrap_or_default(),
        ..Observation::default()
    };
    let mut raw_conns: Vec<RawConn> = Vec::new();
    // 4-tuples that carried SIP over TCP (a SIP connection, not an MSRP link).
    let mut sip_tcp = HashSet::new();
    for &i in &order {
        let (t, ev) = &events[i];
        match ev {
            WireEvent::Sip {
                transport,
                from,
                to,
                raw,
            } => {
                if transport.is_stream() {
                    sip_tcp.insert((*from, *to));
                    sip_tcp.insert((*to, *from));
                }
                let index = obs.sip.len();
                obs.sip
                    .push(sip_obs(index, *t, *transport, *from, *to, raw));
            }
            WireEvent::TcpOpen { conn, opener } => {
                let target = if conn.0 == *opener { conn.1 } else { conn.0 };
                raw_conns.push(RawConn::new(*opener, target, *t, true));
            }
            WireEvent::TcpData { from, to, data } => {
                let idx = find_or_guess(&mut raw_conns, *from, *to, *t);
                let c = &mut raw_conns[idx];
                let d = usize::from(c.opener != *from);
                if !data.is_empty() {
                    c.chunks[d].push((*t, data.clone()));
                }
            }
            // The ciphertext: the session's plaintext is the connection's data.
            WireEvent::TlsRecords { .. } => {}
            WireEvent::Tls {
                from,
                to,
                version,
                failed,
            } => {
                let idx = find_or_guess(&mut raw_conns, *from, *to, *t);
                raw_conns[idx].tls = Some(TlsObs {
                    client: *from,
                    version: version.clone(),
                    at: *t,
                    failed: failed.clone(),
                });
            }
            WireEvent::TcpClose { from, to } => {
                let idx = find_or_guess(&mut raw_conns, *from, *to, *t);
                let c = &mut raw_conns[idx];
                let d = usize::from(c.opener != *from);
                if c.closed[d].is_none() {
                    c.closed[d] = Some(*t);
                }
            }
        }
    }
    for rc in raw_conns {
        let index = obs.conns.len();
        let mut c = build_conn(index, rc);
        c.carried_sip = sip_tcp.contains(&(c.opener, c.target));
        obs.conns.push(c);
    }
    obs
}

/// One SIP message of the wire layer (no party yet): the model's reading of it, also for
/// streaming readers that cannot keep a whole case (the load mode's latency watch).
pub fn sip_obs(
    index: usize,
    t: Duration,
    transport: Transport,
    from: SocketAddr,
    to: SocketAddr,
    raw: &Bytes,
) -> SipObs {
    let (msg, parse_error) = match SipMessage::parse(raw) {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let kind = msg.as_ref().map(|m| match m.method() {
        Some(method) => SipKind::Request {
            method: method.as_str().to_string(),
        },
        None => SipKind::Response {
            code: m.code().unwrap_or(0),
            method: m
                .cseq()
                .map(|(_, m)| m.as_str().to_string())
                .unwrap_or_default(),
        },
    });
    let sdp = msg.as_ref().and_then(|m| m.sdp_body()).map(|text| SdpObs {
        sdp: Sdp::parse(&text),
        msrp: MsrpSdp::parse(&text),
        text,
    });
    SipObs {
        index,
        t,
        transport,
        from,
        to,
        sender: None,
        receiver: None,
        link: None,
        recorded: 1,
        raw: raw.clone(),
        start_line: first_line(raw, 100),
        kind,
        msg,
        parse_error,
        sdp,
        leg: None,
    }
}

/// A connection as recorded, before its streams are rebuilt and parsed.
struct RawConn {
    opener: SocketAddr,
    target: SocketAddr,
    opened_at: Duration,
    open_seen: bool,
    chunks: [Vec<(Duration, Bytes)>; 2],
    closed: [Option<Duration>; 2],
    tls: Option<TlsObs>,
}

impl RawConn {
    fn new(opener: SocketAddr, target: SocketAddr, t: Duration, open_seen: bool) -> RawConn {
        RawConn {
            opener,
            target,
            opened_at: t,
            open_seen,
            chunks: [Vec::new(), Vec::new()],
            closed: [None, None],
            tls: None,
        }
    }
}

/// The latest connection between these two addresses; without a recorded opening, a new
/// one whose opener is guessed as the side with the higher (ephemeral) port. The attribution
/// corrects the guess when the other side turns out to be nobody's listener.
fn find_or_guess(conns: &mut Vec<RawConn>, from: SocketAddr, to: SocketAddr, t: Duration) -> usize {
    if let Some(i) = conns
        .iter()
        .rposition(|c| (c.opener == from && c.target == to) || (c.opener == to && c.target == from))
    {
        return i;
    }
    let (opener, target) = if to.port() > from.port() {
        (to, from)
    } else {
        (from, to)
    };
    conns.push(RawConn::new(opener, target, t, false));
    conns.len() - 1
}

/// One direction's byte stream with the offset and time of each recorded part.
fn rebuild(chunks: &[(Duration, Bytes)]) -> (Vec<u8>, Vec<(u64, Duration)>) {
    let mut stream: Vec<u8> = Vec::with_capacity(chunks.iter().map(|(_, d)| d.len()).sum());
    let mut segments = Vec::with_capacity(chunks.len());
    for (t, data) in chunks {
        segments.push((stream.len() as u64, *t));
        stream.extend_from_slice(data);
    }
    (stream, segments)
}

fn time_at(segments: &[(u64, Duration)], offset: u64) -> Duration {
    let i = segments.partition_point(|(o, _)| *o <= offset);
    segments
        .get(i.saturating_sub(1))
        .map(|(_, t)| *t)
        .unwrap_or_default()
}

fn build_conn(index: usize, rc: RawConn) -> ConnObs {
    let mut dirs = Vec::with_capacity(2);
    for d in 0..2 {
        let (from, to) = if d == 0 {
            (rc.opener, rc.target)
        } else {
            (rc.target, rc.opener)
        };
        let (stream, segments) = rebuild(&rc.chunks[d]);
        let mut dir = parse_dir(&stream, &segments);
        dir.from = from;
        dir.to = to;
        dir.closed_at = rc.closed[d];
        dirs.push(dir);
    }
    let d1 = dirs.pop().unwrap_or_else(empty_dir);
    let d0 = dirs.pop().unwrap_or_else(empty_dir);
    ConnObs {
        index,
        opener: rc.opener,
        target: rc.target,
        opener_party: None,
        target_party: None,
        link: None,
        opened_at: rc.opened_at,
        open_seen: rc.open_seen,
        to_sip_port: false,
        carried_sip: false,
        tls: rc.tls,
        dirs: [d0, d1],
        legs: Vec::new(),
    }
}

fn empty_dir() -> DirObs {
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    DirObs {
        from: unspecified,
        to: unspecified,
        bytes: 0,
        first_data: None,
        closed_at: None,
        msgs: Vec::new(),
        error: None,
        trailing: 0,
        contents: Vec::new(),
    }
}

/// Per Message-ID reassembly: hashed in order as octets become contiguous.
struct ContentAcc {
    obs: ContentObs,
    next: u64,
    hasher: Sha256,
    ooo: BTreeMap<u64, Bytes>,
    ooo_bytes: u64,
    final_seen: bool,
    broken: bool,
    /// Body offset (0-based, from Byte-Range) of the chunk being read: one chunk of a
    /// direction is read at a time, so one slot suffices.
    chunk_offset: u64,
    /// The digest of what follows the CPIM header part (started once the header part has
    /// arrived; at once when the object is not message/cpim).
    inner: Inner,
    prefix: Vec<u8>,
}

enum Inner {
    /// message/cpim whose header part has not ended yet.
    AwaitHead,
    Hashing {
        head: u64,
        hasher: Sha256,
    },
    /// The header part does not parse (the note says why).
    Broken,
}

impl ContentAcc {
    fn new(obs: ContentObs) -> ContentAcc {
        let cpim = obs
            .content_type
            .as_deref()
            .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("message/cpim"));
        ContentAcc {
            obs,
            next: 0,
            hasher: Sha256::new(),
            ooo: BTreeMap::new(),
            ooo_bytes: 0,
            final_seen: false,
            broken: false,
            chunk_offset: 0,
            inner: if cpim {
                Inner::AwaitHead
            } else {
                Inner::Hashing {
                    head: 0,
                    hasher: Sha256::new(),
                }
            },
            prefix: Vec::new(),
        }
    }
}

impl ContentAcc {
    fn add(&mut self, offset: u64, data: &Bytes) {
        if self.broken || data.is_empty() {
            return;
        }
        if offset < self.next {
            self.broken = true;
            self.obs.note = Some(format!(
                "octets from {} arrived again (overlapping chunks)",
                offset.saturating_add(1)
            ));
            return;
        }
        if offset > self.next {
            self.ooo_bytes += data.len() as u64;
            if self.ooo_bytes > MAX_OUT_OF_ORDER {
                self.broken = true;
                self.obs.note = Some("too many octets out of order to reassemble".into());
                return;
            }
            self.ooo.insert(offset, data.clone());
            return;
        }
        self.take(data);
        while let Some(e) = self.ooo.first_entry() {
            if *e.key() > self.next {
                break;
            }
            let (off, d) = e.remove_entry();
            self.ooo_bytes -= d.len() as u64;
            if off < self.next {
                self.broken = true;
                self.obs.note = Some("overlapping chunks".into());
                return;
            }
            self.take(&d);
        }
    }

    fn take(&mut self, data: &[u8]) {
        self.hasher.update(data);
        let before = self.next;
        let room = CONTENT_PREFIX.saturating_sub(self.prefix.len());
        let kept = data.len().min(room);
        self.prefix.extend_from_slice(&data[..kept]);
        self.next += data.len() as u64;
        self.obs.received = self.next + self.ooo_bytes;
        match &mut self.inner {
            Inner::Hashing { hasher, .. } => hasher.update(data),
            Inner::AwaitHead => match Cpim::parse_head(&self.prefix) {
                Ok(Some((_, n))) => {
                    // Everything so far is in the prefix, but for what did not fit of `data`.
                    let mut hasher = Sha256::new();
                    hasher.update(&self.prefix[n.min(self.prefix.len())..]);
                    if before + (kept as u64) < self.next {
                        hasher.update(&data[kept..]);
                    }
                    self.inner = Inner::Hashing {
                        head: n as u64,
                        hasher,
                    };
                }
                Ok(None) => {}
                Err(e) => {
                    self.obs.note = Some(format!("CPIM header part: {e}"));
                    self.inner = Inner::Broken;
                }
            },
            Inner::Broken => {}
        }
    }

    fn finish(mut self) -> ContentObs {
        self.obs.received = self.next + self.ooo_bytes;
        let total_ok = self.obs.total.map(|t| t == self.next).unwrap_or(true);
        self.obs.complete = !self.broken && self.final_seen && self.ooo.is_empty() && total_ok;
        self.obs.prefix = Bytes::from(self.prefix);
        if self.obs.complete {
            self.obs.sha256 = Some(hex::encode(self.hasher.finalize()));
            match self.inner {
                Inner::Hashing { head, hasher } => {
                    self.obs.cpim_head = Some(head);
                    self.obs.inner = Some((self.next - head, hex::encode(hasher.finalize())));
                }
                Inner::AwaitHead => {
                    self.obs.note = Some("the CPIM header part never ends".into());
                }
                Inner::Broken => {}
            }
        }
        self.obs
    }
}

/// Parses one direction's stream into MSRP messages and reassembled contents.
fn parse_dir(stream: &[u8], segments: &[(u64, Duration)]) -> DirObs {
    let mut dir = empty_dir();
    dir.bytes = stream.len() as u64;
    dir.first_data = segments.first().map(|(_, t)| *t);
    let mut parser = MsrpParser::new(Limits::default());
    let mut next_start = 0u64;
    // The message being read: its record, body digest, and content accumulator.
    let mut cur: Option<(MsrpObs, Sha256, Option<usize>)> = None;
    let mut contents: Vec<ContentAcc> = Vec::new();
    let mut by_id: HashMap<(String, String), usize> = HashMap::new();
    let mut failed = false;
    let bounds: Vec<u64> = segments
        .iter()
        .map(|(o, _)| *o)
        .skip(1)
        .chain(std::iter::once(stream.len() as u64))
        .collect();
    for (k, (start, t)) in segments.iter().enumerate() {
        if failed {
            break;
        }
        let (s, e) = (*start as usize, bounds[k] as usize);
        parser.push(&stream[s.min(stream.len())..e.min(stream.len())]);
        loop {
            let ev = match parser.next() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(err) => {
                    dir.error = Some(MsrpParseError {
                        t: *t,
                        offset: err.offset,
                        error: err.to_string(),
                    });
                    failed = true;
                    break;
                }
            };
            match ev {
                MsrpEvent::Head(head) => {
                    let is_send = head.method() == Some("SEND") && head.has_body;
                    let content_start = if is_send {
                        let range = head.byte_range().and_then(|r| r.ok());
                        let id = head.message_id().unwrap_or("").to_string();
                        let to_path = head.header("To-Path").unwrap_or("").to_string();
                        let key = (to_path.clone(), id.clone());
                        let ci = *by_id.entry(key).or_insert_with(|| {
                            contents.push(ContentAcc::new(ContentObs {
                                message_id: id,
                                to_path,
                                content_type: head.content_type().map(String::from),
                                total: None,
                                received: 0,
                                complete: false,
                                aborted: false,
                                sha256: None,
                                inner: None,
                                cpim_head: None,
                                prefix: Bytes::new(),
                                first_t: time_at(segments, next_start),
                                last_t: time_at(segments, next_start),
                                chunks: Vec::new(),
                                leg: None,
                                note: None,
                            }));
                            contents.len() - 1
                        });
                        let acc = &mut contents[ci];
                        acc.obs.chunks.push(dir.msgs.len());
                        if let Some(ByteRange {
                            total: Some(tt), ..
                        }) = range
                        {
                            acc.obs.total.get_or_insert(tt);
                        }
                        Some((ci, range.map(|r| r.start.saturating_sub(1)).unwrap_or(0)))
                    } else {
                        None
                    };
                    let m = MsrpObs {
                        t: time_at(segments, next_start),
                        t_end: None,
                        offset: next_start,
                        head,
                        body_len: 0,
                        body_sha256: String::new(),
                        flag: None,
                        leg: None,
                    };
                    cur = Some((m, Sha256::new(), content_start.map(|(ci, _)| ci)));
                    if let Some((ci, off)) = content_start {
                        contents[ci].obs.last_t = time_at(segments, next_start);
                        contents[ci].chunk_offset = off;
                    }
                }
                MsrpEvent::Body(b) => {
                    if let Some((m, h, ci)) = cur.as_mut() {
                        h.update(&b);
                        if let Some(ci) = ci {
                            let acc = &mut contents[*ci];
                            let off = acc.chunk_offset.saturating_add(m.body_len);
                            acc.add(off, &b);
                        }
                        m.body_len += b.len() as u64;
                    }
                }
                MsrpEvent::End { flag, .. } => {
                    next_start = parser.offset();
                    if let Some((mut m, h, ci)) = cur.take() {
                        m.flag = Some(flag);
                        m.t_end = Some(time_at(segments, next_start.saturating_sub(1)));
                        m.body_sha256 = hex::encode(h.finalize());
                        if let Some(ci) = ci {
                            let acc = &mut contents[ci];
                            acc.obs.last_t = m.t_end.unwrap_or(m.t);
                            if flag == Flag::Abort {
                                acc.obs.aborted = true;
                            }
                            if flag == Flag::End {
                                acc.final_seen = true;
                                let end = acc.chunk_offset.saturating_add(m.body_len);
                                acc.obs.total.get_or_insert(end);
                            }
                        }
                        dir.msgs.push(m);
                    }
                }
            }
        }
    }
    if let Some((m, h, _)) = cur.take() {
        // A message cut off by the end of the recording: kept, without a flag.
        let mut m = m;
        m.body_sha256 = hex::encode(h.finalize());
        dir.msgs.push(m);
    }
    if !failed {
        dir.trailing = (stream.len() as u64).saturating_sub(next_start);
    }
    dir.contents = contents.into_iter().map(ContentAcc::finish).collect();
    dir
}
