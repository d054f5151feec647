//! The trace: what crossed the wire in a case, as one stream of events stamped with the time
//! since the case started. Everything that reads a case reads this stream: the model
//! ([`crate::model`]) that the checks, ladders and reports read, the pcap writer, and the pcap
//! reader, which turns a capture back into the same stream.
//!
//! - [`WireEvent`]: a SIP message, a TCP opening (with the side that sent the SYN), bytes on
//!   a TCP connection, a TCP close. Addresses are the exact 4-tuple of the socket.
//! - [`Record`]: an event as one end of a socket recorded it ([`Seen::Sent`] /
//!   [`Seen::Received`]), or as a capture saw it on the wire ([`Seen::Wire`]).
//! - [`Recorder`]: the shared, append-only log the drivers and the simulator write to.
//! - [`OneCopy`]: when both ends of a socket belong to the harness, both record it; this
//!   keeps one copy of everything, so a live trace reads like a capture of the same traffic.
//! - The JSON form ([`Record`]'s serde, one record per line in `*.trace.jsonl`) carries the
//!   whole event: SIP and MSRP bytes as text (or hex when not UTF-8), times in nanoseconds.

mod one_copy;
mod recorder;

pub use one_copy::{one_copy, OneCopy, OneCopyStats};
pub use recorder::Recorder;

use crate::codec::sip::{SipMessage, Transport};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// One thing that crossed a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WireEvent {
    /// A SIP message, with its raw bytes. Over TCP, `from`/`to` are the connection's
    /// 4-tuple (an ephemeral port on the side that connected).
    Sip {
        transport: Transport,
        from: SocketAddr,
        to: SocketAddr,
        #[serde(with = "text_bytes")]
        raw: Bytes,
    },
    /// A TCP connection was established; `opener` sent the SYN.
    TcpOpen {
        conn: (SocketAddr, SocketAddr),
        opener: SocketAddr,
    },
    /// Bytes on a TCP connection (MSRP, or anything that is not SIP).
    TcpData {
        from: SocketAddr,
        to: SocketAddr,
        #[serde(with = "text_bytes")]
        data: Bytes,
    },
    /// `from` closed its side of the connection.
    TcpClose { from: SocketAddr, to: SocketAddr },
    /// TLS records as they crossed the TCP connection (the ciphertext under a session whose
    /// plaintext is the connection's `TcpData` or `Sip`): what the capture writes on the wire.
    /// The model does not read them.
    TlsRecords {
        from: SocketAddr,
        to: SocketAddr,
        #[serde(with = "text_bytes")]
        data: Bytes,
    },
    /// A TLS handshake ended on the TCP connection (with `failed`: no session); otherwise a
    /// TLS session is up on the TCP connection `from`–`to`; `from` started the handshake
    /// (the TLS client). The connection's `TcpData` after it is the session's plaintext; the
    /// capture writer puts the real TLS records on the wire instead (README, "TLS").
    Tls {
        from: SocketAddr,
        to: SocketAddr,
        /// `TLSv1.3` or `TLSv1.2` (empty when the handshake failed).
        version: String,
        /// The handshake failed: why, naming the peer and the TLS alert (then no session).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed: Option<String>,
    },
}

impl WireEvent {
    pub fn sip(
        transport: Transport,
        from: SocketAddr,
        to: SocketAddr,
        msg: &SipMessage,
    ) -> WireEvent {
        WireEvent::Sip {
            transport,
            from,
            to,
            raw: msg.raw.clone(),
        }
    }

    /// The side that sent it (the opener for a TCP opening).
    pub fn source(&self) -> SocketAddr {
        match self {
            WireEvent::Sip { from, .. }
            | WireEvent::TcpData { from, .. }
            | WireEvent::TcpClose { from, .. }
            | WireEvent::Tls { from, .. }
            | WireEvent::TlsRecords { from, .. } => *from,
            WireEvent::TcpOpen { opener, .. } => *opener,
        }
    }

    /// The other end.
    pub fn destination(&self) -> SocketAddr {
        match self {
            WireEvent::Sip { to, .. }
            | WireEvent::TcpData { to, .. }
            | WireEvent::TcpClose { to, .. }
            | WireEvent::Tls { to, .. }
            | WireEvent::TlsRecords { to, .. } => *to,
            WireEvent::TcpOpen { conn, opener } => {
                if conn.0 == *opener {
                    conn.1
                } else {
                    conn.0
                }
            }
        }
    }
}

/// Who recorded an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Seen {
    /// The sending end (recorded before the bytes were handed to the socket).
    Sent,
    /// The receiving end (recorded after the bytes were read).
    Received,
    /// A capture of the wire: one copy by nature.
    Wire,
}

/// An event with its time and who recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Since the case (or the capture) started.
    #[serde(rename = "t_ns", with = "nanos")]
    pub t: Duration,
    pub seen: Seen,
    #[serde(flatten)]
    pub ev: WireEvent,
}

/// An event of a one-copy stream (a capture, or a recording after [`OneCopy`]).
pub type Stamped = (Duration, WireEvent);

/// Writes records as JSON Lines (one record per line).
pub fn to_jsonl(records: impl IntoIterator<Item = Record>) -> String {
    let mut s = String::new();
    for r in records {
        // A record always serialises (its fields are plain data).
        if let Ok(line) = serde_json::to_string(&r) {
            s.push_str(&line);
            s.push('\n');
        }
    }
    s
}

/// Reads JSON Lines written by [`to_jsonl`]; errors name the line and column.
pub fn from_jsonl(text: &str) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(line).map_err(|e| {
            format!(
                "line {}:{}: {e} (expected a trace record like {{\"t_ns\":…,\"seen\":\"sent\",\"kind\":\"sip\",…}})",
                n + 1,
                e.column()
            )
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Bytes as a JSON string when they are UTF-8 (SIP and MSRP heads are), else `{"hex": …}`.
mod text_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        Hex { hex: String },
    }

    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(b) {
            Ok(t) => Form::Text(t.to_string()),
            Err(_) => Form::Hex {
                hex: hex::encode(b),
            },
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        match Form::deserialize(d)? {
            Form::Text(t) => Ok(Bytes::from(t)),
            Form::Hex { hex } => hex::decode(hex)
                .map(Bytes::from)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A duration as whole nanoseconds.
mod nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(t: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json_lines() {
        let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let b: SocketAddr = "[::1]:40000".parse().unwrap();
        let recs = vec![
            Record {
                t: Duration::from_nanos(1_234_567),
                seen: Seen::Sent,
                ev: WireEvent::Sip {
                    transport: Transport::Udp,
                    from: a,
                    to: b,
                    raw: Bytes::from_static(b"OPTIONS sip:x SIP/2.0\r\n\r\n"),
                },
            },
            Record {
                t: Duration::from_secs(2),
                seen: Seen::Received,
                ev: WireEvent::TcpData {
                    from: b,
                    to: a,
                    data: Bytes::from_static(&[0xff, 0x00, b'M']),
                },
            },
            Record {
                t: Duration::ZERO,
                seen: Seen::Wire,
                ev: WireEvent::TcpOpen {
                    conn: (b, a),
                    opener: b,
                },
            },
            Record {
                t: Duration::ZERO,
                seen: Seen::Wire,
                ev: WireEvent::TcpClose { from: a, to: b },
            },
        ];
        let text = to_jsonl(recs.clone());
        assert!(text.contains("\"kind\":\"sip\""), "{text}");
        assert!(text.contains("\"hex\":\"ff004d\""), "{text}");
        assert_eq!(from_jsonl(&text).unwrap(), recs);
        let e = from_jsonl("{\"t_ns\":1}\n").unwrap_err();
        assert!(e.starts_with("line 1:"), "{e}");
    }
}
