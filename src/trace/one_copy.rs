//! One copy of everything that crossed the wire.
//!
//! When both ends of a socket belong to the harness (two of its entities, in one process),
//! both record the traffic: the sender before handing the bytes to the socket
//! ([`Seen::Sent`]), the receiver after reading them ([`Seen::Received`]). A sender's record
//! therefore always comes before the receiver's in the log, which makes pairing exact:
//!
//! - **SIP** (UDP or TCP, exact 4-tuples): a received message is the copy of the earliest
//!   unpaired sent message with the same transport, addresses and bytes; with none it is the
//!   only copy (the SUT sent it). A retransmission is a new sent record, so it is kept.
//! - **TCP openings**: the connector and the acceptor record the same 4-tuple; the second
//!   record of a 4-tuple from the other end is dropped. Once both directions are closed the
//!   4-tuple may be opened anew.
//! - **TCP bytes**: per direction, the sender's writes are kept once any was recorded and the
//!   receiver's reads (with other boundaries) dropped; a direction whose sender never
//!   recorded (the SUT) keeps the reads.
//! - **TCP closes**: the first close of a direction is kept (the closer's or the peer's end
//!   of file), later ones dropped.
//!
//! Records seen on the wire ([`Seen::Wire`], read from a capture) are one copy already and
//! pass through unchanged.

use super::{Record, Seen, Stamped, WireEvent};
use crate::codec::sip::Transport;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// Unpaired sent SIP messages kept per (transport, from, to): the receiver's copy follows
/// within milliseconds, and a peer that never records (the SUT) must not grow memory.
const PENDING_MAX: usize = 256;
/// An unpaired sent SIP message older than this is no longer waited for.
const PENDING_AGE: Duration = Duration::from_secs(30);

/// What [`OneCopy`] dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OneCopyStats {
    /// Receivers' copies of SIP messages.
    pub sip_pairs: u64,
    /// Connections both ends recorded.
    pub both_end_conns: u64,
    /// Bytes of receivers' reads dropped (their sender's writes were kept).
    pub read_bytes_dropped: u64,
    /// Second records of a close.
    pub closes_dropped: u64,
}

#[derive(Default)]
struct Conn {
    /// Who recorded the opening (`None`: first seen through data or a close).
    opened_by: Option<Seen>,
    both: bool,
    /// Per direction (index 0: from the lower address): a sender's write was recorded.
    sent: [bool; 2],
    closed: [bool; 2],
    /// A TLS session on it was kept.
    tls: bool,
    /// Per direction: a sender's TLS records were recorded.
    tls_sent: [bool; 2],
}

impl Conn {
    fn done(&self) -> bool {
        self.closed[0] && self.closed[1]
    }
}

/// The streaming de-duplicator (see the module docs): feed records in log order.
#[derive(Default)]
pub struct OneCopy {
    pending: HashMap<(Transport, SocketAddr, SocketAddr), VecDeque<(Duration, Bytes)>>,
    conns: HashMap<(SocketAddr, SocketAddr), Conn>,
    stats: OneCopyStats,
}

/// A connection's key (the lower address first) and the index of the direction `from → to`.
fn key(from: SocketAddr, to: SocketAddr) -> ((SocketAddr, SocketAddr), usize) {
    if from <= to {
        ((from, to), 0)
    } else {
        ((to, from), 1)
    }
}

impl OneCopy {
    pub fn new() -> OneCopy {
        OneCopy::default()
    }

    pub fn stats(&self) -> OneCopyStats {
        self.stats
    }

    /// Appends to `out` what `r` adds to the one-copy stream (nothing for a second copy).
    pub fn push(&mut self, r: &Record, out: &mut Vec<Stamped>) {
        if r.seen == Seen::Wire {
            out.push((r.t, r.ev.clone()));
            return;
        }
        let keep = match &r.ev {
            WireEvent::Sip {
                transport,
                from,
                to,
                raw,
            } => self.sip(r.t, r.seen, *transport, *from, *to, raw),
            WireEvent::TcpOpen { conn, opener } => {
                let target = if conn.0 == *opener { conn.1 } else { conn.0 };
                let (k, _) = key(*opener, target);
                let c = self.conns.entry(k).or_default();
                match c.opened_by {
                    Some(s) if s != r.seen && !c.both && !c.done() => {
                        c.both = true;
                        self.stats.both_end_conns += 1;
                        false
                    }
                    None => {
                        c.opened_by = Some(r.seen);
                        true
                    }
                    Some(_) => {
                        // A new connection on this 4-tuple.
                        *c = Conn {
                            opened_by: Some(r.seen),
                            ..Conn::default()
                        };
                        true
                    }
                }
            }
            WireEvent::TcpData { from, to, data } => {
                let (k, d) = key(*from, *to);
                let c = self.conns.entry(k).or_default();
                match r.seen {
                    Seen::Sent => {
                        c.sent[d] = true;
                        true
                    }
                    _ if c.sent[d] => {
                        self.stats.read_bytes_dropped += data.len() as u64;
                        false
                    }
                    _ => true,
                }
            }
            WireEvent::TlsRecords { from, to, .. } => {
                let (k, d) = key(*from, *to);
                let c = self.conns.entry(k).or_default();
                match r.seen {
                    Seen::Sent => {
                        c.tls_sent[d] = true;
                        true
                    }
                    _ => !c.tls_sent[d],
                }
            }
            WireEvent::Tls { from, to, .. } => {
                // Both ends record the session: one copy.
                let (k, _) = key(*from, *to);
                let c = self.conns.entry(k).or_default();
                !std::mem::replace(&mut c.tls, true)
            }
            WireEvent::TcpClose { from, to } => {
                let (k, d) = key(*from, *to);
                let c = self.conns.entry(k).or_default();
                if c.closed[d] {
                    self.stats.closes_dropped += 1;
                    false
                } else {
                    c.closed[d] = true;
                    true
                }
            }
        };
        if keep {
            out.push((r.t, r.ev.clone()));
        }
    }

    fn sip(
        &mut self,
        t: Duration,
        seen: Seen,
        transport: Transport,
        from: SocketAddr,
        to: SocketAddr,
        raw: &Bytes,
    ) -> bool {
        let q = self.pending.entry((transport, from, to)).or_default();
        while q
            .front()
            .is_some_and(|(t0, _)| t.saturating_sub(*t0) > PENDING_AGE)
            || q.len() > PENDING_MAX
        {
            q.pop_front();
        }
        if seen == Seen::Sent {
            q.push_back((t, raw.clone()));
            return true;
        }
        match q.iter().position(|(_, b)| b == raw) {
            Some(i) => {
                q.remove(i);
                self.stats.sip_pairs += 1;
                false
            }
            None => true,
        }
    }
}

/// The one-copy stream of a whole recording.
pub fn one_copy(records: &[Record]) -> Vec<Stamped> {
    let mut one = OneCopy::new();
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        one.push(r, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: u64, seen: Seen, ev: WireEvent) -> Record {
        Record {
            t: Duration::from_millis(t),
            seen,
            ev,
        }
    }

    #[test]
    fn both_ends_become_one_copy_and_retransmissions_stay() {
        let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5062".parse().unwrap();
        let (ea, mb): (SocketAddr, SocketAddr) = (
            "127.0.0.1:40001".parse().unwrap(),
            "127.0.0.1:2856".parse().unwrap(),
        );
        let sip = |raw: &'static [u8], from, to| WireEvent::Sip {
            transport: Transport::Udp,
            from,
            to,
            raw: Bytes::from_static(raw),
        };
        let data = |from, to, d: &'static [u8]| WireEvent::TcpData {
            from,
            to,
            data: Bytes::from_static(d),
        };
        let records = vec![
            rec(0, Seen::Sent, sip(b"INVITE", a, b)),
            rec(1, Seen::Received, sip(b"INVITE", a, b)),
            // A retransmission of the same bytes, sent again: a second datagram.
            rec(500, Seen::Sent, sip(b"INVITE", a, b)),
            rec(501, Seen::Received, sip(b"INVITE", a, b)),
            // The SUT's message: only its receiver recorded it.
            rec(600, Seen::Received, sip(b"200", b, a)),
            rec(
                700,
                Seen::Sent,
                WireEvent::TcpOpen {
                    conn: (ea, mb),
                    opener: ea,
                },
            ),
            rec(
                700,
                Seen::Received,
                WireEvent::TcpOpen {
                    conn: (ea, mb),
                    opener: ea,
                },
            ),
            rec(701, Seen::Sent, data(ea, mb, b"MSRP a SEND\r\n")),
            rec(702, Seen::Received, data(ea, mb, b"MSRP a ")),
            rec(702, Seen::Received, data(ea, mb, b"SEND\r\n")),
            // The other direction's sender (the SUT) did not record: its reads stay.
            rec(703, Seen::Received, data(mb, ea, b"MSRP a 200 OK\r\n")),
            rec(800, Seen::Sent, WireEvent::TcpClose { from: ea, to: mb }),
            rec(
                801,
                Seen::Received,
                WireEvent::TcpClose { from: ea, to: mb },
            ),
            rec(
                802,
                Seen::Received,
                WireEvent::TcpClose { from: mb, to: ea },
            ),
            // The 4-tuple opened again after both sides closed: a new connection.
            rec(
                900,
                Seen::Sent,
                WireEvent::TcpOpen {
                    conn: (ea, mb),
                    opener: ea,
                },
            ),
        ];
        let one = one_copy(&records);
        let kinds: Vec<String> = one
            .iter()
            .map(|(t, e)| match e {
                WireEvent::Sip { raw, .. } => {
                    format!("{}:{}", t.as_millis(), String::from_utf8_lossy(raw))
                }
                WireEvent::TcpOpen { .. } => format!("{}:open", t.as_millis()),
                WireEvent::TcpData { data, .. } => {
                    format!("{}:{}", t.as_millis(), String::from_utf8_lossy(data).trim())
                }
                WireEvent::TcpClose { from, .. } => {
                    format!("{}:close {}", t.as_millis(), from.port())
                }
                WireEvent::Tls { .. } | WireEvent::TlsRecords { .. } => {
                    format!("{}:tls", t.as_millis())
                }
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "0:INVITE",
                "500:INVITE",
                "600:200",
                "700:open",
                "701:MSRP a SEND",
                "703:MSRP a 200 OK",
                "800:close 40001",
                "802:close 2856",
                "900:open"
            ]
        );
        // A capture passes through.
        let wire: Vec<Record> = records
            .iter()
            .map(|r| Record {
                seen: Seen::Wire,
                ..r.clone()
            })
            .collect();
        assert_eq!(one_copy(&wire).len(), records.len());
    }
}
