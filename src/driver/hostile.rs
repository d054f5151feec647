//! The reference SUT's hostile faults at the byte level ([`Fault::HOSTILE`]): what the driver
//! does to the node's outputs before they reach a socket. A node without these faults goes
//! through [`Hostile::none`], which changes nothing.

use crate::codec::sip::Transport;
use crate::entity::Fault;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How much later the `late-retransmit` fault sends each SIP message again: after its
/// transaction ended (the flow's transactions complete within milliseconds on loopback), yet
/// before the harness judges the case (it waits for 250 ms of quiet).
pub const LATE: Duration = Duration::from_millis(200);

/// Size of the header the `huge-sip-header` fault sends.
pub const HUGE_HEADER: usize = 100 << 20;

/// How one SIP message goes out.
pub enum SipPlan {
    /// As usual, on `transport`, each of these (several for duplicates).
    Send(Transport, Vec<Bytes>),
    /// On a connection of its own, written by [`special_tcp`].
    Special(Special, Bytes),
    Drop,
}

#[derive(Clone, Copy, Debug)]
pub enum Special {
    /// One byte per second.
    Drip,
    /// The start line, a 100 MB header, then the rest.
    Huge,
}

/// Per-connection state of the MSRP faults.
#[derive(Default)]
struct ConnState {
    /// close-mid-chunk / endless-chunk: the chunk was cut, nothing more goes on this connection.
    cut: bool,
}

/// What to write for one MSRP write.
pub enum MsrpPlan {
    Write(Vec<Bytes>),
    /// Write these, then filler bytes until the peer gives up.
    Endless(Bytes),
    /// Write these one byte per second.
    Drip(Bytes),
    /// Write these, then close.
    WriteClose(Bytes),
    Drop,
}

/// The hostile faults of one node and their state.
#[derive(Default)]
pub struct Hostile {
    faults: Vec<Fault>,
    conns: HashMap<u64, ConnState>,
}

impl Hostile {
    pub fn new(faults: &[Fault]) -> Hostile {
        Hostile {
            faults: faults.iter().copied().filter(|f| f.is_hostile()).collect(),
            conns: HashMap::new(),
        }
    }

    pub fn none() -> Hostile {
        Hostile::default()
    }

    pub fn has(&self, f: Fault) -> bool {
        self.faults.contains(&f)
    }

    pub fn is_active(&self) -> bool {
        !self.faults.is_empty()
    }

    /// Nothing at all leaves the node.
    pub fn silent(&self) -> bool {
        self.has(Fault::Silent)
    }

    pub fn sip(&self, transport: Transport, raw: &Bytes) -> SipPlan {
        if self.silent() {
            return SipPlan::Drop;
        }
        if self.has(Fault::HugeSipHeader) {
            return SipPlan::Special(Special::Huge, raw.clone());
        }
        if self.has(Fault::SlowDrip) {
            return SipPlan::Special(Special::Drip, raw.clone());
        }
        let mut b = raw.clone();
        if self.has(Fault::GarbageSip) {
            b = garbage(raw.len().clamp(64, 1200));
        }
        if self.has(Fault::ContentLengthShort) {
            b = adjust_content_length(&b, -10);
        }
        if self.has(Fault::ContentLengthLong) {
            b = adjust_content_length(&b, 100);
        }
        if self.has(Fault::InvalidUtf8) {
            b = insert_header(&b, b"Subject: caf\xc3\x28 \xff\xfe");
        }
        if self.has(Fault::UnknownTransaction) && b.starts_with(b"SIP/2.0 ") {
            b = unknown_transaction(&b);
        }
        let mut out = vec![b.clone()];
        if self.has(Fault::DupRetransmit) {
            out.push(b);
        }
        SipPlan::Send(transport, out)
    }

    /// A SIP message to send again later (late-retransmit).
    pub fn late_copy(&self, raw: &Bytes) -> Option<(Duration, Bytes)> {
        self.has(Fault::LateRetransmit).then(|| (LATE, raw.clone()))
    }

    /// Where to connect an MSRP link, and how many flood connections to open first.
    pub fn connect(&self, to: SocketAddr) -> Option<(SocketAddr, usize)> {
        if self.silent() {
            return None;
        }
        let mut to = to;
        if self.has(Fault::WrongPort) {
            to.set_port(to.port().wrapping_add(1000));
        }
        let flood = if self.has(Fault::ConnectionFlood) {
            200
        } else {
            0
        };
        Some((to, flood))
    }

    pub fn msrp(&mut self, conn: u64, data: Bytes) -> MsrpPlan {
        if self.silent() {
            return MsrpPlan::Drop;
        }
        let st = self.conns.entry(conn).or_default();
        if st.cut {
            return MsrpPlan::Drop;
        }
        let mut data = data;
        if self.faults.contains(&Fault::GarbageMsrp) {
            data = garbage(data.len().max(64));
        }
        if self.faults.contains(&Fault::UnknownSessionSend) {
            data = unknown_session(&data);
        }
        let cut_fault = self.faults.contains(&Fault::CloseMidChunk)
            || self.faults.contains(&Fault::EndlessChunk);
        if cut_fault {
            if let Some(body_at) = body_start(&data) {
                st.cut = true;
                if self.faults.contains(&Fault::EndlessChunk) {
                    return MsrpPlan::Endless(data.slice(..body_at));
                }
                let keep = body_at + (data.len() - body_at) / 2;
                return MsrpPlan::WriteClose(data.slice(..keep));
            }
        }
        if self.faults.contains(&Fault::SlowDrip) {
            return MsrpPlan::Drip(data);
        }
        if self.faults.contains(&Fault::DupRetransmit) && is_whole_message(&data) {
            return MsrpPlan::Write(vec![data.clone(), data]);
        }
        MsrpPlan::Write(vec![data])
    }
}

/// Deterministic binary garbage: NULs, high bytes, CR/LF, and text that looks like a start.
pub fn garbage(len: usize) -> Bytes {
    let mut v = Vec::with_capacity(len);
    let mut x: u32 = 0x9e37_79b9;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.extend_from_slice(&x.to_le_bytes());
        if v.len() % 64 == 0 {
            v.extend_from_slice(b"\r\n\x00\xff");
        }
    }
    v.truncate(len);
    Bytes::from(v)
}

/// The index just past the blank line of an MSRP SEND head that has a body, if `data` holds
/// one.
fn body_start(data: &[u8]) -> Option<usize> {
    if !data.starts_with(b"MSRP ") {
        return None;
    }
    let line_end = memchr::memmem::find(data, b"\r\n")?;
    if !data[..line_end].ends_with(b" SEND") {
        return None;
    }
    let end = memchr::memmem::find(data, b"\r\n\r\n")? + 4;
    memchr::memmem::find(&data[..end], b"\r\nContent-Type: ").map(|_| end)
}

/// A whole MSRP message (head and end-line) in one write.
fn is_whole_message(data: &[u8]) -> bool {
    data.starts_with(b"MSRP ")
        && (data.ends_with(b"$\r\n") || data.ends_with(b"+\r\n") || data.ends_with(b"#\r\n"))
}

/// Replaces the session-id of a request's To-Path with `X`s (same length).
fn unknown_session(data: &Bytes) -> Bytes {
    let Some(p) = memchr::memmem::find(data, b"\r\nTo-Path: msrp://") else {
        return data.clone();
    };
    let start = p + b"\r\nTo-Path: msrp://".len();
    let mut v = data.to_vec();
    let Some(slash) = v[start..].iter().position(|&c| c == b'/') else {
        return data.clone();
    };
    let mut i = start + slash + 1;
    while i < v.len() && v[i] != b';' && v[i] != b'\r' && v[i] != b' ' {
        v[i] = b'X';
        i += 1;
    }
    Bytes::from(v)
}

/// Rewrites `Content-Length: N` to `N + delta` (not below 0).
fn adjust_content_length(raw: &Bytes, delta: i64) -> Bytes {
    let Some(p) = memchr::memmem::find(raw, b"\r\nContent-Length: ") else {
        return raw.clone();
    };
    let start = p + b"\r\nContent-Length: ".len();
    let end = start
        + raw[start..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(0);
    let n: i64 = std::str::from_utf8(&raw[start..end])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut v = BytesMut::new();
    v.extend_from_slice(&raw[..start]);
    v.extend_from_slice((n + delta).max(0).to_string().as_bytes());
    v.extend_from_slice(&raw[end..]);
    v.freeze()
}

/// Inserts a header line after the start line.
fn insert_header(raw: &Bytes, line: &[u8]) -> Bytes {
    let Some(p) = memchr::memmem::find(raw, b"\r\n") else {
        return raw.clone();
    };
    let mut v = BytesMut::new();
    v.extend_from_slice(&raw[..p + 2]);
    v.extend_from_slice(line);
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(&raw[p + 2..]);
    v.freeze()
}

/// A response whose Via branch and Call-ID belong to no transaction of the peer.
fn unknown_transaction(raw: &Bytes) -> Bytes {
    let mut v = raw.to_vec();
    for key in [&b"branch=z9hG4bK"[..], b"\r\nCall-ID: "] {
        if let Some(p) = memchr::memmem::find(&v, key) {
            let mut i = p + key.len();
            while i < v.len() && v[i].is_ascii_alphanumeric() {
                v[i] = b'Z';
                i += 1;
            }
        }
    }
    Bytes::from(v)
}

/// Sends one SIP message on a connection of its own, dripping or with a huge header; gives up
/// as soon as the peer closes.
pub async fn special_tcp(local_ip: IpAddr, to: SocketAddr, how: Special, raw: Bytes) {
    let Ok(mut s) = super::connect_from(local_ip, to, 0).await else {
        return;
    };
    match how {
        Special::Drip => {
            for b in raw.iter() {
                if s.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Special::Huge => {
            let split = memchr::memmem::find(&raw, b"\r\n").map_or(0, |p| p + 2);
            if s.write_all(&raw[..split]).await.is_err() {
                return;
            }
            if s.write_all(b"X-Huge: ").await.is_err() {
                return;
            }
            let filler = vec![b'A'; 64 * 1024];
            let mut sent = 0;
            while sent < HUGE_HEADER {
                if s.write_all(&filler).await.is_err() {
                    return;
                }
                sent += filler.len();
            }
            let _ = s.write_all(b"\r\n").await;
            let _ = s.write_all(&raw[split..]).await;
        }
    }
    // Keep the connection until the peer closes it (or a minute passes).
    let _ = tokio::time::timeout(Duration::from_secs(60), s.readable()).await;
}

/// Opens `n` connections to `to` and holds them for a minute (connection-flood).
pub async fn flood(local_ip: IpAddr, to: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(1), super::connect_from(local_ip, to, 0))
            .await
        {
            Ok(Ok(s)) => held.push(s),
            _ => break,
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites() {
        let raw = Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKabc1\r\nCall-ID: xyz9@h\r\nContent-Length: 20\r\n\r\n01234567890123456789",
        );
        let short = adjust_content_length(&raw, -10);
        assert!(memchr::memmem::find(&short, b"Content-Length: 10\r\n").is_some());
        let long = adjust_content_length(&raw, 100);
        assert!(memchr::memmem::find(&long, b"Content-Length: 120\r\n").is_some());
        let u = unknown_transaction(&raw);
        assert!(memchr::memmem::find(&u, b"branch=z9hG4bKZZZZ\r\n").is_some());
        assert!(memchr::memmem::find(&u, b"Call-ID: ZZZZ@h").is_some());
        let i = insert_header(&raw, b"Subject: \xff");
        assert!(i.starts_with(b"SIP/2.0 200 OK\r\nSubject: \xff\r\nVia"));
        let send = Bytes::from_static(b"MSRP t1 SEND\r\nTo-Path: msrp://1.2.3.4:5/abc;tcp\r\nContent-Type: text/plain\r\n\r\nhello world");
        assert_eq!(body_start(&send), Some(send.len() - 11));
        let us = unknown_session(&send);
        assert!(memchr::memmem::find(&us, b"/XXX;tcp").is_some());
        assert_eq!(us.len(), send.len());
        assert_eq!(garbage(100).len(), 100);
        let mut h = Hostile::new(&[Fault::CloseMidChunk]);
        assert!(
            matches!(h.msrp(1, send.clone()), MsrpPlan::WriteClose(b) if b.len() == send.len() - 6)
        );
        assert!(matches!(h.msrp(1, send), MsrpPlan::Drop));
        assert!(!Hostile::new(&[Fault::NoReuse]).is_active());
    }
}
