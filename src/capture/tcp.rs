//! TCP reassembly for the capture reader: per connection and direction, segments are put in
//! sequence order (out-of-order ones buffered up to [`MAX_BUFFERED`] bytes, retransmitted and
//! overlapping bytes delivered once), then the stream is either framed as SIP (when it starts
//! like a SIP message) or passed on as raw bytes (MSRP and anything else). A hole that never
//! fills (a segment the capture lost) is skipped, with a warning, when the buffer is full, on
//! RST and at the end of the capture; a SIP stream stops at a hole.
//!
//! Connection events: `TcpOpen` when the SYN-ACK (or, without a handshake in the capture, the
//! first segment) is seen; `TcpClose` from a side once the stream has reached its FIN, or at
//! once on RST. Who opened: the sender of the SYN; with no SYN in the capture, the side whose
//! port is not a SIP/MSRP service port (5060, 5061, 2855, 2856) or below 1024, else the side
//! with the higher (more likely ephemeral) port, else the sender of the first segment seen.
//! Without a SYN a direction starts at its first segment in the capture.

use crate::codec::sip::{Limits as SipLimits, SipFramer, Transport};
use crate::trace::WireEvent;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

/// Out-of-order bytes buffered per direction before the gap in front of them is given up.
pub const MAX_BUFFERED: usize = 32 * 1024 * 1024;
/// Out-of-order segments buffered per direction (bounds the bookkeeping for tiny segments).
pub const MAX_SEGMENTS_BUFFERED: usize = 65_536;
/// Bytes looked at to tell SIP from anything else.
const SNIFF: usize = 64;

/// One TCP segment as the reader decoded it.
pub struct Segment<'a> {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Undecided,
    Sip,
    Other,
}

#[derive(Default)]
struct Half {
    /// Sequence number of the next in-order byte, once known.
    next: Option<u32>,
    /// Stream offset of the next in-order byte.
    off: u64,
    /// Out-of-order segments by stream offset.
    ooo: BTreeMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    /// Stream offset of the FIN, once seen.
    fin_at: Option<u64>,
    closed: bool,
    /// Delivered bytes held while the connection's kind is undecided.
    sniff: Vec<u8>,
    framer: Option<SipFramer>,
    /// The SIP framer failed: the rest of this direction is dropped.
    broken: bool,
}

struct Conn {
    /// Index 0 and 1 of `half`.
    ends: [SocketAddr; 2],
    opener: SocketAddr,
    opened: bool,
    /// The SYN's sequence number, to tell a retransmitted SYN from a new connection.
    syn_seq: Option<u32>,
    kind: Kind,
    half: [Half; 2],
    reset: bool,
}

impl Conn {
    fn side(&self, from: SocketAddr) -> usize {
        usize::from(self.ends[0] != from)
    }
    fn done(&self) -> bool {
        self.reset || (self.half[0].closed && self.half[1].closed)
    }
}

/// All TCP connections of a capture.
#[derive(Default)]
pub struct Tracker {
    conns: HashMap<(SocketAddr, SocketAddr), Conn>,
    pub events: Vec<(Duration, WireEvent)>,
    pub warnings: Vec<String>,
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

fn service_port(p: u16) -> bool {
    p < 1024 || matches!(p, 5060 | 5061 | 2855 | 2856)
}

/// The opener of a connection whose SYN is not in the capture (see the module docs).
fn guess_opener(from: SocketAddr, to: SocketAddr) -> SocketAddr {
    match (service_port(from.port()), service_port(to.port())) {
        (true, false) => to,
        (false, true) => from,
        _ if from.port() > to.port() => from,
        _ if to.port() > from.port() => to,
        _ => from,
    }
}

impl Tracker {
    pub fn segment(&mut self, t: Duration, s: &Segment) {
        let k = key(s.from, s.to);
        if s.syn && !s.ack {
            if let Some(c) = self.conns.get(&k) {
                let again = c.syn_seq == Some(s.seq) && c.opener == s.from && !c.done();
                if again {
                    return; // A retransmitted SYN.
                }
                self.finish_conn(t, k);
            }
            let mut c = new_conn(s.from, s.to, s.from);
            c.syn_seq = Some(s.seq);
            let i = c.side(s.from);
            c.half[i].next = Some(s.seq.wrapping_add(1));
            self.conns.insert(k, c);
            return;
        }
        let c = self.conns.entry(k).or_insert_with(|| {
            let opener = if s.syn {
                s.to
            } else {
                guess_opener(s.from, s.to)
            };
            new_conn(s.from, s.to, opener)
        });
        if c.done() {
            return; // Retransmissions, late ACKs and resets of a finished connection.
        }
        if s.rst && !c.opened {
            c.reset = true; // Refused: it never was a connection.
            return;
        }
        let i = c.side(s.from);
        if s.syn {
            // SYN-ACK: the responder's initial sequence number; the connection is up.
            c.half[i].next.get_or_insert(s.seq.wrapping_add(1));
            open(&mut self.events, t, c);
            return;
        }
        open(&mut self.events, t, c);
        let half = &mut c.half[i];
        let next = *half.next.get_or_insert(s.seq);
        // Offset of this segment relative to the next expected byte, modulo 2^32.
        let start = half.off as i64 + i64::from(s.seq.wrapping_sub(next) as i32);
        let end = start + s.payload.len() as i64;
        // A bare ACK carries no bytes: after this side's FIN its sequence number is one past
        // the stream (the FIN's), which is no hole (a peer's close_notify after our FIN).
        if !s.payload.is_empty() && end > half.off as i64 {
            let skip = (half.off as i64 - start).max(0) as usize;
            let at = start.max(half.off as i64) as u64;
            let data = &s.payload[skip..];
            if at == half.off {
                self.deliver_in_order(t, k, i, data.to_vec());
            } else if half.ooo.get(&at).is_none_or(|v| v.len() < data.len()) {
                let old = half.ooo.insert(at, data.to_vec()).map_or(0, |v| v.len());
                half.ooo_bytes = half.ooo_bytes + data.len() - old;
                if half.ooo_bytes > MAX_BUFFERED || half.ooo.len() > MAX_SEGMENTS_BUFFERED {
                    self.skip_gap(t, k, i);
                }
            }
        }
        if s.fin {
            if let Some(c) = self.conns.get_mut(&k) {
                c.half[i].fin_at.get_or_insert(end.max(0) as u64);
            }
            self.maybe_close(t, k, i);
        }
        if s.rst {
            // Nothing more will come on this connection: deliver what can be, then close.
            self.flush_half(t, k, 0);
            self.flush_half(t, k, 1);
            let c = conn(&mut self.conns, k);
            c.reset = true;
            if !c.half[i].closed {
                c.half[i].closed = true;
                let (from, to) = (c.ends[i], c.ends[1 - i]);
                self.end_of_stream(t, k, i);
                self.events.push((t, WireEvent::TcpClose { from, to }));
            }
        }
    }

    /// Delivers in-order bytes at the current offset, then the buffered bytes that follow.
    fn deliver_in_order(
        &mut self,
        t: Duration,
        k: (SocketAddr, SocketAddr),
        i: usize,
        first: Vec<u8>,
    ) {
        let mut data = first;
        loop {
            if !data.is_empty() {
                let half = &mut conn(&mut self.conns, k).half[i];
                half.off += data.len() as u64;
                half.next = half.next.map(|n| n.wrapping_add(data.len() as u32));
                self.stream(t, k, i, data);
            }
            let half = &mut conn(&mut self.conns, k).half[i];
            let Some((&at, _)) = half.ooo.first_key_value() else {
                break;
            };
            if at > half.off {
                break;
            }
            let mut seg = half.ooo.remove(&at).unwrap_or_default();
            half.ooo_bytes -= seg.len();
            let skip = ((half.off - at) as usize).min(seg.len());
            seg.drain(..skip);
            data = seg;
        }
        self.maybe_close(t, k, i);
    }

    /// Gives up the hole in front of the first buffered segment (a lost segment, or too much
    /// buffered behind one) and carries on from there.
    fn skip_gap(&mut self, t: Duration, k: (SocketAddr, SocketAddr), i: usize) {
        let c = conn(&mut self.conns, k);
        let (from, to) = (c.ends[i], c.ends[1 - i]);
        let half = &mut c.half[i];
        let Some((&at, _)) = half.ooo.first_key_value() else {
            return;
        };
        let lost = at.saturating_sub(half.off);
        self.warnings.push(format!(
            "TCP {from} -> {to}: {lost} bytes missing at stream offset {}",
            half.off
        ));
        let half = &mut conn(&mut self.conns, k).half[i];
        half.next = half.next.map(|n| n.wrapping_add(lost as u32));
        half.off = at;
        let seg = half.ooo.remove(&at).unwrap_or_default();
        half.ooo_bytes -= seg.len();
        // A gap breaks SIP framing: the framer would read a message body as a head.
        if self.conns[&k].kind == Kind::Sip {
            conn(&mut self.conns, k).half[i].broken = true;
        }
        self.deliver_in_order(t, k, i, seg);
    }

    /// Emits everything buffered in one direction, skipping holes.
    fn flush_half(&mut self, t: Duration, k: (SocketAddr, SocketAddr), i: usize) {
        while !self.conns[&k].half[i].ooo.is_empty() {
            self.skip_gap(t, k, i);
        }
    }

    fn maybe_close(&mut self, t: Duration, k: (SocketAddr, SocketAddr), i: usize) {
        let c = conn(&mut self.conns, k);
        let half = &mut c.half[i];
        if half.closed || half.fin_at.is_none_or(|f| half.off < f) {
            return;
        }
        half.closed = true;
        let (from, to) = (c.ends[i], c.ends[1 - i]);
        self.end_of_stream(t, k, i);
        self.events.push((t, WireEvent::TcpClose { from, to }));
    }

    /// In-order stream bytes of direction `i`: classified, then framed as SIP or passed on.
    fn stream(&mut self, t: Duration, k: (SocketAddr, SocketAddr), i: usize, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let c = conn(&mut self.conns, k);
        if c.kind == Kind::Undecided {
            c.half[i].sniff.extend_from_slice(&data);
            match classify(&c.half[i].sniff) {
                Some(kind) => c.kind = kind,
                None if c.half[i].sniff.len() >= SNIFF => c.kind = Kind::Other,
                None => return,
            }
            // Decided: replay what both directions held back.
            for j in [i, 1 - i] {
                let held = std::mem::take(&mut conn(&mut self.conns, k).half[j].sniff);
                self.emit(t, k, j, held);
            }
            return;
        }
        self.emit(t, k, i, data);
    }

    fn emit(&mut self, t: Duration, k: (SocketAddr, SocketAddr), i: usize, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let c = conn(&mut self.conns, k);
        let (from, to) = (c.ends[i], c.ends[1 - i]);
        match c.kind {
            Kind::Undecided => c.half[i].sniff.extend_from_slice(&data),
            Kind::Other => self.events.push((
                t,
                WireEvent::TcpData {
                    from,
                    to,
                    data: Bytes::from(data),
                },
            )),
            Kind::Sip => {
                let half = &mut c.half[i];
                if half.broken {
                    return;
                }
                let framer = half
                    .framer
                    .get_or_insert_with(|| SipFramer::new(SipLimits::default()));
                framer.push(&data);
                loop {
                    match framer.next() {
                        Ok(Some(msg)) => self.events.push((
                            t,
                            WireEvent::Sip {
                                transport: Transport::Tcp,
                                from,
                                to,
                                raw: msg.raw,
                            },
                        )),
                        Ok(None) => break,
                        Err(e) => {
                            half.broken = true;
                            self.warnings.push(format!(
                                "SIP/TCP {from} -> {to}: {e}; rest of this direction dropped"
                            ));
                            break;
                        }
                    }
                }
            }
        }
    }

    /// The direction will carry nothing more: flush undecided bytes, note partial messages.
    fn end_of_stream(&mut self, t: Duration, k: (SocketAddr, SocketAddr), i: usize) {
        let c = conn(&mut self.conns, k);
        let (from, to) = (c.ends[i], c.ends[1 - i]);
        if c.kind == Kind::Undecided && c.half.iter().any(|h| !h.sniff.is_empty()) {
            let only_crlf = c
                .half
                .iter()
                .all(|h| h.sniff.iter().all(|&b| b == b'\r' || b == b'\n'));
            c.kind = if only_crlf { Kind::Sip } else { Kind::Other };
            for j in [i, 1 - i] {
                let held = std::mem::take(&mut conn(&mut self.conns, k).half[j].sniff);
                self.emit(t, k, j, held);
            }
        }
        let half = &self.conns[&k].half[i];
        if let Some(n) = half
            .framer
            .as_ref()
            .map(|f| f.buffered())
            .filter(|&n| n > 0)
        {
            if !half.broken {
                self.warnings.push(format!(
                    "SIP/TCP {from} -> {to}: stream ends inside a message ({n} bytes)"
                ));
            }
        }
    }

    fn finish_conn(&mut self, t: Duration, k: (SocketAddr, SocketAddr)) {
        for i in 0..2 {
            if self.conns.contains_key(&k) {
                self.flush_half(t, k, i);
                self.end_of_stream(t, k, i);
            }
        }
        self.conns.remove(&k);
    }

    /// End of the capture: deliver what is buffered behind holes, flush undecided bytes.
    pub fn finish(&mut self, t: Duration) {
        let mut keys: Vec<_> = self.conns.keys().copied().collect();
        keys.sort();
        for k in keys {
            self.finish_conn(t, k);
        }
    }
}

/// Callers only pass keys of connections they have just looked up or inserted.
fn conn(
    conns: &mut HashMap<(SocketAddr, SocketAddr), Conn>,
    k: (SocketAddr, SocketAddr),
) -> &mut Conn {
    conns.get_mut(&k).expect("connection present")
}

fn new_conn(a: SocketAddr, b: SocketAddr, opener: SocketAddr) -> Conn {
    Conn {
        ends: [a, b],
        opener,
        opened: false,
        syn_seq: None,
        kind: Kind::Undecided,
        half: [Half::default(), Half::default()],
        reset: false,
    }
}

fn open(events: &mut Vec<(Duration, WireEvent)>, t: Duration, c: &mut Conn) {
    if c.opened {
        return;
    }
    c.opened = true;
    let target = if c.ends[0] == c.opener {
        c.ends[1]
    } else {
        c.ends[0]
    };
    events.push((
        t,
        WireEvent::TcpOpen {
            conn: (c.opener, target),
            opener: c.opener,
        },
    ));
}

/// `Some(Sip)` when `data` starts (after CRLF keep-alives) like a SIP message: a status line
/// `SIP/2.0 …`, or a request line `Method SP Request-URI SP SIP/2.0` with any token as the
/// method and any URI scheme (RFC 3261 §7.1, §25.1: `RE%47IST%45R`, `!interesting-Method…`,
/// `soap.beep://…` and opaque URIs are SIP too, RFC 4475 §3.1.2); `Some(Other)` when it
/// cannot be; `None` when more bytes are needed to tell.
fn classify(data: &[u8]) -> Option<Kind> {
    /// A request line longer than this without its end is not SIP.
    const MAX_LINE: usize = 8192;
    let d = &data[data
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()..];
    if d.is_empty() {
        return None;
    }
    let status = b"SIP/2.0 ";
    let n = d.len().min(status.len());
    if d[..n].eq_ignore_ascii_case(&status[..n]) {
        return if n == status.len() {
            Some(Kind::Sip)
        } else {
            None
        };
    }
    // RFC 3261 §25.1 token characters.
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(b);
    let method_len = d.iter().take_while(|b| token(b)).count();
    if method_len == 0
        || d[..method_len].eq_ignore_ascii_case(b"MSRP") && d.get(method_len) == Some(&b' ')
    {
        return Some(Kind::Other);
    }
    let end = memchr::memchr(b'\n', d);
    let line = &d[..end.unwrap_or(d.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if method_len == line.len() {
        return match end {
            None if line.len() < MAX_LINE => None,
            _ => Some(Kind::Other),
        };
    }
    if line[method_len] != b' ' {
        return Some(Kind::Other);
    }
    let rest = &line[method_len + 1..];
    let version = b"SIP/2.0";
    match rest.iter().position(|&b| b == b' ') {
        Some(0) => Some(Kind::Other),
        Some(sp) => {
            let v = &rest[sp + 1..];
            let k = v.len().min(version.len());
            if !v[..k].eq_ignore_ascii_case(&version[..k]) {
                Some(Kind::Other)
            } else if end.is_some() {
                // The whole line is there: exactly the version must follow the URI.
                if v.eq_ignore_ascii_case(version) {
                    Some(Kind::Sip)
                } else {
                    Some(Kind::Other)
                }
            } else if v.len() >= version.len() {
                Some(Kind::Sip)
            } else {
                None
            }
        }
        None if end.is_some() || line.len() >= MAX_LINE => Some(Kind::Other),
        None => None,
    }
}

/// True when a UDP payload is a SIP message (not a keep-alive, not another protocol).
pub fn is_sip_datagram(payload: &[u8]) -> bool {
    classify(payload) == Some(Kind::Sip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_stream_starts() {
        assert_eq!(classify(b"INVITE sip:a@b SIP/2.0\r\n"), Some(Kind::Sip));
        assert_eq!(classify(b"\r\n\r\nSIP/2.0 200 OK\r\n"), Some(Kind::Sip));
        assert_eq!(classify(b"SIP/2"), None);
        assert_eq!(classify(b"INVITE si"), None);
        assert_eq!(classify(b"MSRP a786hjs2 SEND\r\n"), Some(Kind::Other));
        assert_eq!(classify(b"MSRP sipx SEND"), Some(Kind::Other));
        assert_eq!(classify(b"GET / HTTP/1.1"), Some(Kind::Other));
        // RFC 4475 §3.1.2: any token is a method, any scheme a Request-URI.
        for line in [
            &b"RE%47IST%45R sip:registrar.example.com SIP/2.0\r\n"[..],
            b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n",
            b"OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\r\n",
            b"OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0\r\n",
        ] {
            assert_eq!(classify(line), Some(Kind::Sip), "{}", String::from_utf8_lossy(line));
            assert_eq!(classify(&line[..line.len() / 2]), None);
        }
        assert_eq!(classify(b"OPTIONS sip:x SIP/2.1\r\n"), Some(Kind::Other));
        assert_eq!(classify(b"OPTIONS  sip:x SIP/2.0\r\n"), Some(Kind::Other));
        assert_eq!(classify(b"\x00\x01"), Some(Kind::Other));
        assert_eq!(classify(b""), None);
    }

    #[test]
    fn opener_heuristic_prefers_the_ephemeral_side() {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2855".parse().unwrap();
        assert_eq!(guess_opener(b, a), a);
        assert_eq!(guess_opener(a, b), a);
        let c: SocketAddr = "10.0.0.3:7000".parse().unwrap();
        assert_eq!(guess_opener(c, a), a);
    }
}
