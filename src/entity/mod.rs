//! Sans-IO entity state machines for the five roles.
//!
//! A [`Node`] is one entity instance (client-a, pf-a, x, a pf-b, a client-b). It opens no
//! socket and reads no clock: the driver (live, simulated, or a test) feeds it [`Input`]s with
//! the current time and carries out the [`Output`]s it returns.
//!
//! # The drain rule
//! After every call to [`Node::handle_input`] or [`Node::handle_timeout`], call
//! [`Node::poll_output`] until it returns `None`, carry out each output in order, then ask
//! [`Node::poll_timeout`] when to call `handle_timeout` next. Outputs are only ever produced by
//! those two calls, so a driver that follows the rule never misses one.
//!
//! The variant knobs (figure, triggers, ACK timing, reuse, setup mode, group kind, transport)
//! are data in [`NodeConfig`]; every role and every figure runs through the same code.
//!
//! # Time and randomness are inputs
//! A node reads no clock and no OS randomness: the monotonic time comes with every call, and
//! [`Start`] gives it the wall-clock time of its start (CPIM `DateTime` = that time plus the
//! monotonic time since) and the seed of the generator every identifier is drawn from (SIP
//! tags, branches, Call-IDs, SDP session ids, MSRP session ids, transaction ids,
//! Message-IDs, MIME boundaries). The same seed, inputs and times give the same bytes; the
//! simulator relies on it. `clippy.toml` and the lint level below keep it so.

// Time and randomness are inputs here (clippy.toml lists what reads them).
#![deny(clippy::disallowed_methods)]

pub mod fault;
pub mod holds;
mod node;

pub use fault::Fault;
pub use holds::{Holds, Leave};
pub use node::{sip_uri_addr, Node, NodeConfig, SipTimers, Start};

use crate::codec::sip::{SipMessage, Transport};
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A TCP connection carrying MSRP, named by the node that uses it.
pub type ConnId = u64;

/// What the outside world tells a node.
#[derive(Debug)]
pub enum Input {
    /// A SIP message arrived at the node's SIP address from `from`.
    Sip {
        transport: Transport,
        from: SocketAddr,
        /// Boxed, as is `error` below: a node's input channel allocates room for 32 inputs at
        /// once, so the size of the largest variant is paid per node (thousands per process).
        msg: Box<SipMessage>,
    },
    /// Bytes that arrived as a SIP message (a datagram, or framed on a stream) but do not
    /// parse: the node answers a request as RFC 4475 expects (400, 505) when it can.
    SipInvalid {
        transport: Transport,
        from: SocketAddr,
        raw: Bytes,
        error: Box<crate::codec::sip::SipError>,
    },
    /// A connection the node asked for with [`Output::Connect`] is up.
    Connected { conn: ConnId, local: SocketAddr },
    /// A connection the node asked for could not be opened.
    ConnectFailed { conn: ConnId, reason: String },
    /// The node's MSRP listener accepted a connection; `conn` comes from [`Node::new_conn_id`].
    Accepted { conn: ConnId, peer: SocketAddr },
    /// Bytes read from an MSRP connection.
    MsrpData { conn: ConnId, data: Bytes },
    /// `bytes` of earlier [`Output::MsrpWrite`]s reached the socket (backpressure).
    MsrpFlushed { conn: ConnId, bytes: usize },
    /// The peer closed the connection or it failed.
    Closed { conn: ConnId, reason: String },
    /// client-a: send `content` to the group (a new session).
    Send { content: Bytes },
    /// client-a in the reference SUT's per-call mode: send `content` in a session of its own
    /// `variant` (carried downstream in the `X-Cpm-Variant` header).
    SendAs {
        content: Bytes,
        variant: Box<crate::config::Variant>,
    },
    /// client-a: send content read piece by piece from `source` (a message larger than
    /// memory; never held whole).
    SendSource { source: Arc<dyn ContentSource> },
}

/// Content client-a sends, read in pieces as the link has room, so the sender's memory does
/// not grow with the message.
pub trait ContentSource: Send + Sync + std::fmt::Debug {
    /// Total length in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Up to `max` bytes at `offset` (at least one byte while `offset < len`).
    fn read(&self, offset: u64, max: usize) -> Bytes;
}

impl ContentSource for Bytes {
    fn len(&self) -> u64 {
        Bytes::len(self) as u64
    }
    fn read(&self, offset: u64, max: usize) -> Bytes {
        let start = (offset as usize).min(Bytes::len(self));
        let end = start.saturating_add(max).min(Bytes::len(self));
        self.slice(start..end)
    }
}

/// `len` bytes made of `block` repeated: generated content of any size, handed out as
/// slices of one block (no copy, no allocation per piece).
#[derive(Debug, Clone)]
pub struct Repeat {
    pub block: Bytes,
    pub len: u64,
}

impl ContentSource for Repeat {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&self, offset: u64, max: usize) -> Bytes {
        let b = self.block.len() as u64;
        if offset >= self.len || b == 0 {
            return Bytes::new();
        }
        let start = (offset % b) as usize;
        let n = (max as u64).min(b - start as u64).min(self.len - offset) as usize;
        self.block.slice(start..start + n)
    }
}

/// What a node asks the outside world to do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send a SIP message to `to` over `transport` from the node's SIP address.
    Sip {
        transport: Transport,
        to: SocketAddr,
        msg: SipMessage,
    },
    /// Open a TCP connection from `local_ip` to `to` for MSRP; with `tls`, then start a TLS
    /// handshake over it (an `msrps:` peer, RFC 4975 §14), verifying the peer against the
    /// address in its URI.
    Connect {
        conn: ConnId,
        local_ip: IpAddr,
        to: SocketAddr,
        tls: bool,
    },
    /// Write bytes on an MSRP connection, in order.
    MsrpWrite {
        conn: ConnId,
        data: Bytes,
    },
    /// Stop reading from a connection until [`Output::ResumeRead`] (backpressure).
    PauseRead {
        conn: ConnId,
    },
    ResumeRead {
        conn: ConnId,
    },
    /// Close a connection once the writes already given are flushed.
    Close {
        conn: ConnId,
    },
    /// Something happened that the application cares about.
    Event(NodeEvent),
}

/// Application-level happenings, for the SUT command, tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// client-b: a piece of the delivered content (CPIM unwrapped) at 0-based `offset`.
    Data {
        member: String,
        session: u64,
        offset: u64,
        data: Bytes,
    },
    /// client-b: the whole content arrived.
    Delivered {
        member: String,
        session: u64,
        bytes: u64,
    },
    /// A session at this node ended: `ok` after a clean BYE teardown.
    SessionEnded {
        session: u64,
        ok: bool,
        detail: String,
    },
    /// Something a peer did wrong, or a local failure worth a line in the log.
    Warning(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_source_reads_across_block_ends_and_stops_at_its_length() {
        let r = Repeat {
            block: Bytes::from_static(b"abcde"),
            len: 12,
        };
        let mut got = Vec::new();
        let mut off = 0;
        while off < r.len() {
            let piece = r.read(off, 4);
            assert!(!piece.is_empty() && piece.len() <= 4);
            off += piece.len() as u64;
            got.extend_from_slice(&piece);
        }
        assert_eq!(got, b"abcdeabcdeab");
        assert!(r.read(12, 4).is_empty());
        let b = Bytes::from_static(b"hello");
        assert_eq!(ContentSource::read(&b, 3, 10), Bytes::from_static(b"lo"));
        assert!(ContentSource::read(&b, 9, 10).is_empty());
    }
}
