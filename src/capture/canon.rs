//! The recorded event stream → one copy of everything that crossed the wire, each TCP byte
//! placed on the connection (4-tuple) that carried it. The pcap writer draws its frames from
//! this view, and a capture read back gives the same view, so the two can be compared.
//!
//! Why this is needed: when both ends of a socket live in the harness process, both record
//! it. The [`Recorder`](crate::trace::Recorder) does not say which end recorded an
//! event, so the copies are told apart from how the driver records (`src/driver/mod.rs`):
//!
//! - **TcpOpen**: both ends record the same `(conn, opener)`. The second record of a live
//!   4-tuple is dropped and marks the connection as recorded by both ends.
//! - **SIP over UDP**: sender and receiver record identical `(from, to, raw)`. A second
//!   identical record within [`UDP_PAIR_WINDOW`] (half the default T1, so a retransmission is
//!   never taken for a copy) is the receiver's copy and is dropped.
//! - **SIP over TCP**: no TcpData is recorded; each message is a `Sip` event whose addresses
//!   are not the 4-tuple: the side that *opened* the connection records its listening SIP
//!   address (`A:5060 → B:5060` when sending, `B:5060 → A:5060` when receiving) while the
//!   side that *accepted* records the exact 4-tuple (`A:eph → B:5060`, `B:5060 → A:eph`).
//!   An exact event belongs to its 4-tuple; an inexact one to the connection opened from
//!   that IP to that address. The two copies of one message therefore always differ in
//!   shape (one exact, one not), which is how they pair up; a retransmitted 2xx (same shape,
//!   same bytes) is kept. The sender records a message before it connects, so a message
//!   with no connection yet waits (up to [`HOLD_MAX`]) for the TcpOpen from its source IP
//!   to its destination and follows it.
//! - **TCP data (MSRP)**: the sender records each write before writing it, the receiver
//!   each read after reading it, with the same `(from, to)`; read boundaries differ from
//!   write boundaries. On a connection recorded by both ends, each direction keeps the bytes
//!   emitted but not yet seen by the receiver ("ahead"): an event whose bytes are a prefix of
//!   them is the receiver's copy and is dropped; anything else is new data from the sender.
//!   The receiver's copy can never come first, as it is recorded after the sender's. Until
//!   the second TcpOpen arrives a connection is undecided (only the opener's writes can come
//!   that early); after [`DECIDE_AFTER`] or [`AHEAD_LIMIT`] bytes it is taken as recorded by
//!   one end only, and every data event is new.
//!
//!   Limit: an event does not say which end recorded it, so a *new* write whose bytes equal
//!   the start of the bytes still in flight is taken for the receiver's copy. With distinct
//!   content that cannot happen (the chain's capture matches a kernel capture of it byte
//!   for byte); with long runs of identical content (an all-zero file) it does, and that
//!   direction's stream comes out wrong. The fix belongs in the recorder: mark each TcpData
//!   as sent or received; then keep a direction's sent records once any exist, else its
//!   received ones (a received record always follows its sent one).
//! - **TcpClose**: the closer and the peer (on end of file) record the same `(from, to)`;
//!   the first closes that direction, later ones are dropped.

use crate::codec::sip::Transport;
use crate::trace::WireEvent;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// Two identical SIP/UDP records closer than this are one datagram seen by both ends.
pub const UDP_PAIR_WINDOW: Duration = Duration::from_millis(250);
/// A connection with one TcpOpen record this long after opening is recorded by one end.
pub const DECIDE_AFTER: Duration = Duration::from_secs(1);
/// Unconfirmed bytes kept per direction while undecided; beyond it, one end records.
pub const AHEAD_LIMIT: usize = 16 * 1024 * 1024;
/// How long a SIP/TCP message recorded before its connection's TcpOpen waits for it: longer
/// than the driver's 5-second connect timeout.
pub const HOLD_MAX: Duration = Duration::from_secs(6);
/// Unpaired SIP/TCP records kept per direction (pairs arrive within milliseconds).
const SIP_PENDING_MAX: usize = 64;

/// What the canonicaliser did, for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CanonStats {
    /// Second copies dropped (opens, datagrams, SIP/TCP messages, data events, closes).
    pub duplicates: u64,
    /// Connections synthesised because data arrived without a TcpOpen.
    pub synthesised_opens: u64,
    /// Data for a direction already closed that matched nothing in flight (dropped).
    pub data_after_close: u64,
    /// TcpClose for an unknown connection (dropped).
    pub unknown_closes: u64,
    /// SIP/TCP messages whose connection never opened within [`HOLD_MAX`] (dropped).
    pub never_sent: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recording {
    Undecided,
    BothEnds,
    OneEnd,
}

#[derive(Default)]
struct Dir {
    /// Bytes emitted that the receiver has not recorded yet (both-ends connections).
    ahead: VecDeque<Bytes>,
    /// Bytes of `ahead[0]` already confirmed.
    ahead_skip: usize,
    ahead_len: usize,
    /// Recent SIP messages emitted on this direction, with whether their record was exact.
    sip: VecDeque<(Bytes, bool)>,
    closed: bool,
}

impl Dir {
    fn push_ahead(&mut self, data: &Bytes) {
        self.ahead_len += data.len();
        self.ahead.push_back(data.clone());
    }

    fn clear_ahead(&mut self) {
        self.ahead.clear();
        self.ahead_skip = 0;
        self.ahead_len = 0;
    }

    /// True when `data` is the start of the bytes in flight.
    fn ahead_starts_with(&self, data: &[u8]) -> bool {
        if data.len() > self.ahead_len {
            return false;
        }
        let mut rest = data;
        let mut skip = self.ahead_skip;
        for b in &self.ahead {
            let avail = &b[skip..];
            skip = 0;
            let n = avail.len().min(rest.len());
            if avail[..n] != rest[..n] {
                return false;
            }
            rest = &rest[n..];
            if rest.is_empty() {
                return true;
            }
        }
        rest.is_empty()
    }

    fn consume_ahead(&mut self, mut n: usize) {
        self.ahead_len -= n;
        while n > 0 {
            let Some(front) = self.ahead.front() else {
                break;
            };
            let avail = front.len() - self.ahead_skip;
            if n < avail {
                self.ahead_skip += n;
                return;
            }
            n -= avail;
            self.ahead.pop_front();
            self.ahead_skip = 0;
        }
    }
}

struct Conn {
    opener: SocketAddr,
    target: SocketAddr,
    opened: Duration,
    recording: Recording,
    /// Index 0: opener → target; 1: target → opener.
    dirs: [Dir; 2],
    /// Exact-shape SIP records seen: the accepting end records.
    acceptor_records: bool,
}

impl Conn {
    fn new(opener: SocketAddr, target: SocketAddr, t: Duration, recording: Recording) -> Conn {
        Conn {
            opener,
            target,
            opened: t,
            recording,
            dirs: [Dir::default(), Dir::default()],
            acceptor_records: false,
        }
    }

    fn live(&self) -> bool {
        !(self.dirs[0].closed && self.dirs[1].closed)
    }

    fn ends(&self, dir: usize) -> (SocketAddr, SocketAddr) {
        if dir == 0 {
            (self.opener, self.target)
        } else {
            (self.target, self.opener)
        }
    }

    fn one_end(&mut self) {
        self.recording = Recording::OneEnd;
        for d in &mut self.dirs {
            d.clear_ahead();
        }
    }
}

/// Turns recorded events into canonical ones, one at a time (see the module docs).
///
/// Output events: `Sip{Udp}` as recorded; `TcpOpen{conn: (opener, target), opener}`;
/// `Sip{Tcp}` and `TcpData` with `from`/`to` equal to the connection's 4-tuple; `TcpClose`
/// once per direction. A TcpOpen for a 4-tuple that is still live (and not its other end's
/// copy) is passed on as a new connection: the writer resets the old one.
#[derive(Default)]
pub struct Canon {
    conns: Vec<Conn>,
    /// (opener, target) → index of the newest connection on that 4-tuple.
    by_tuple: HashMap<(SocketAddr, SocketAddr), usize>,
    udp_recent: VecDeque<(Duration, SocketAddr, SocketAddr, Bytes)>,
    /// SIP/TCP messages recorded before their connection's TcpOpen.
    held: VecDeque<(Duration, SocketAddr, SocketAddr, Bytes)>,
    stats: CanonStats,
}

impl Canon {
    pub fn new() -> Canon {
        Canon::default()
    }

    pub fn stats(&self) -> CanonStats {
        self.stats
    }

    /// Feeds one recorded event; appends the canonical events it yields to `out`.
    pub fn push(&mut self, t: Duration, ev: &WireEvent, out: &mut Vec<WireEvent>) {
        self.expire_held(t);
        match ev {
            WireEvent::Sip {
                transport: Transport::Udp,
                from,
                to,
                raw,
            } => self.udp(t, canon_addr(*from), canon_addr(*to), raw, out),
            WireEvent::Sip {
                transport: Transport::Tcp,
                from,
                to,
                raw,
            } => self.sip_tcp(t, canon_addr(*from), canon_addr(*to), raw, out),
            WireEvent::TcpOpen { conn, opener } => {
                let opener = canon_addr(*opener);
                let (a, b) = (canon_addr(conn.0), canon_addr(conn.1));
                let target = if opener == a { b } else { a };
                self.open(t, opener, target, out);
            }
            WireEvent::TcpData { from, to, data } => {
                self.data(t, canon_addr(*from), canon_addr(*to), data, out)
            }
            WireEvent::TcpClose { from, to } => self.close(canon_addr(*from), canon_addr(*to), out),
        }
    }

    fn udp(
        &mut self,
        t: Duration,
        from: SocketAddr,
        to: SocketAddr,
        raw: &Bytes,
        out: &mut Vec<WireEvent>,
    ) {
        while self
            .udp_recent
            .front()
            .is_some_and(|(t0, ..)| t.saturating_sub(*t0) > UDP_PAIR_WINDOW)
        {
            self.udp_recent.pop_front();
        }
        if let Some(i) = self
            .udp_recent
            .iter()
            .position(|(_, f, d, r)| *f == from && *d == to && r == raw)
        {
            self.udp_recent.remove(i);
            self.stats.duplicates += 1;
            return;
        }
        self.udp_recent.push_back((t, from, to, raw.clone()));
        out.push(WireEvent::Sip {
            transport: Transport::Udp,
            from,
            to,
            raw: raw.clone(),
        });
    }

    fn open(
        &mut self,
        t: Duration,
        opener: SocketAddr,
        target: SocketAddr,
        out: &mut Vec<WireEvent>,
    ) {
        if let Some(&i) = self.by_tuple.get(&(opener, target)) {
            let c = &mut self.conns[i];
            if c.live() && c.recording == Recording::Undecided {
                c.recording = Recording::BothEnds;
                self.stats.duplicates += 1;
                return;
            }
        }
        self.new_conn(t, opener, target, Recording::Undecided, out);
    }

    fn new_conn(
        &mut self,
        t: Duration,
        opener: SocketAddr,
        target: SocketAddr,
        recording: Recording,
        out: &mut Vec<WireEvent>,
    ) -> usize {
        let i = self.conns.len();
        self.conns.push(Conn::new(opener, target, t, recording));
        // The reverse tuple is the same connection: both keys lead to the newest one.
        self.by_tuple.insert((opener, target), i);
        self.by_tuple.insert((target, opener), i);
        out.push(WireEvent::TcpOpen {
            conn: (opener, target),
            opener,
        });
        self.place_held(i, out);
        i
    }

    /// The live connection carrying `from → to` exactly, and the direction index.
    fn find(&self, from: SocketAddr, to: SocketAddr) -> Option<(usize, usize)> {
        let &i = self.by_tuple.get(&(from, to))?;
        let c = &self.conns[i];
        if !c.live() {
            return None;
        }
        Some((i, if c.opener == from { 0 } else { 1 }))
    }

    fn data(
        &mut self,
        t: Duration,
        from: SocketAddr,
        to: SocketAddr,
        data: &Bytes,
        out: &mut Vec<WireEvent>,
    ) {
        if data.is_empty() {
            return;
        }
        let (i, d) = match self.find(from, to) {
            Some(x) => x,
            None => {
                self.stats.synthesised_opens += 1;
                (self.new_conn(t, from, to, Recording::OneEnd, out), 0)
            }
        };
        let c = &mut self.conns[i];
        if c.recording == Recording::Undecided
            && (t.saturating_sub(c.opened) > DECIDE_AFTER || c.dirs[d].ahead_len > AHEAD_LIMIT)
        {
            c.one_end();
        }
        let dir = &mut c.dirs[d];
        let both = c.recording == Recording::BothEnds;
        if both && dir.ahead_starts_with(data) {
            dir.consume_ahead(data.len());
            self.stats.duplicates += 1;
            return;
        }
        if dir.closed {
            self.stats.data_after_close += 1;
            return;
        }
        if c.recording != Recording::OneEnd {
            dir.push_ahead(data);
        }
        out.push(WireEvent::TcpData {
            from,
            to,
            data: data.clone(),
        });
    }

    fn close(&mut self, from: SocketAddr, to: SocketAddr, out: &mut Vec<WireEvent>) {
        let Some((i, d)) = self.find(from, to) else {
            self.stats.unknown_closes += 1;
            return;
        };
        let dir = &mut self.conns[i].dirs[d];
        if dir.closed {
            self.stats.duplicates += 1;
            return;
        }
        dir.closed = true;
        out.push(WireEvent::TcpClose { from, to });
    }

    /// Places held SIP/TCP messages sent towards a connection that has just opened.
    fn place_held(&mut self, i: usize, out: &mut Vec<WireEvent>) {
        let (o, tg) = (self.conns[i].opener, self.conns[i].target);
        let mut rest = VecDeque::new();
        while let Some((t, from, to, raw)) = self.held.pop_front() {
            if from.ip() == o.ip() && to == tg {
                self.emit_sip(i, 0, from == o, &raw, out);
            } else {
                rest.push_back((t, from, to, raw));
            }
        }
        self.held = rest;
    }

    /// Forgets held messages whose connection never came (the connect failed).
    fn expire_held(&mut self, t: Duration) {
        while self
            .held
            .front()
            .is_some_and(|(t0, ..)| t.saturating_sub(*t0) > HOLD_MAX)
        {
            self.held.pop_front();
            self.stats.never_sent += 1;
        }
    }

    fn sip_tcp(
        &mut self,
        t: Duration,
        from: SocketAddr,
        to: SocketAddr,
        raw: &Bytes,
        out: &mut Vec<WireEvent>,
    ) {
        let (i, d, exact) = match self.place_sip(from, to, raw) {
            Placed::Duplicate => {
                self.stats.duplicates += 1;
                return;
            }
            Placed::On(i, d, exact) => (i, d, exact),
            Placed::Nowhere => {
                // Sent before its connection was up: wait for the TcpOpen.
                self.held.push_back((t, from, to, raw.clone()));
                return;
            }
        };
        self.emit_sip(i, d, exact, raw, out);
    }

    fn emit_sip(&mut self, i: usize, d: usize, exact: bool, raw: &Bytes, out: &mut Vec<WireEvent>) {
        let c = &mut self.conns[i];
        c.acceptor_records |= exact;
        let (f, tt) = c.ends(d);
        let dir = &mut c.dirs[d];
        if dir.sip.len() >= SIP_PENDING_MAX {
            dir.sip.pop_front();
        }
        dir.sip.push_back((raw.clone(), exact));
        out.push(WireEvent::Sip {
            transport: Transport::Tcp,
            from: f,
            to: tt,
            raw: raw.clone(),
        });
    }

    /// Which connection and direction a SIP/TCP record belongs to (see the module docs).
    fn place_sip(&mut self, from: SocketAddr, to: SocketAddr, raw: &Bytes) -> Placed {
        // (conn, dir, exact) candidates among live connections, newest first.
        let mut cands: Vec<(usize, usize, bool)> = Vec::new();
        if let Some((i, d)) = self.find(from, to) {
            cands.push((i, d, true));
        } else {
            for (i, c) in self.conns.iter().enumerate().rev() {
                if !c.live() {
                    continue;
                }
                if from.ip() == c.opener.ip() && to == c.target && from != c.opener {
                    cands.push((i, 0, false));
                }
                if from == c.target && to.ip() == c.opener.ip() && to != c.opener {
                    cands.push((i, 1, false));
                }
            }
        }
        // The other end's copy of a message already emitted: same bytes, the other shape.
        for &(i, d, exact) in &cands {
            let dir = &mut self.conns[i].dirs[d];
            if let Some(k) = dir.sip.iter().position(|(r, e)| *e != exact && r == raw) {
                dir.sip.remove(k);
                return Placed::Duplicate;
            }
        }
        // A first copy. An inexact one was recorded by the opener: skip connections known
        // to be recorded by their acceptor only; prefer the opener sending over receiving.
        let pick = cands
            .iter()
            .filter(|(i, _, exact)| {
                let c = &self.conns[*i];
                *exact || !(c.recording == Recording::OneEnd && c.acceptor_records)
            })
            .min_by_key(|(_, d, _)| *d)
            .or(cands.first());
        match pick {
            Some(&(i, d, exact)) => Placed::On(i, d, exact),
            None => Placed::Nowhere,
        }
    }
}

enum Placed {
    Duplicate,
    On(usize, usize, bool),
    Nowhere,
}

/// IPv4-mapped IPv6 addresses as IPv4, so both ends of a dual-stack socket agree.
pub fn canon_addr(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// The whole recorded stream, canonicalised (see the module docs), with the times kept.
pub fn canonical(events: &[(Duration, WireEvent)]) -> Vec<(Duration, WireEvent)> {
    let mut canon = Canon::new();
    let mut out = Vec::new();
    let mut res = Vec::with_capacity(events.len());
    for (t, ev) in events {
        canon.push(*t, ev, &mut out);
        res.extend(out.drain(..).map(|e| (*t, e)));
    }
    res
}
