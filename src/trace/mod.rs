//! The trace: the wire-level event stream, what the sockets sent and received, stamped with
//! the time since the run started. The checker, the reports and the captures read only this.

use crate::codec::sip::{SipMessage, Transport};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One thing that crossed a socket.
#[derive(Debug, Clone)]
pub enum WireEvent {
    /// A SIP message, with its raw bytes.
    Sip {
        transport: Transport,
        from: SocketAddr,
        to: SocketAddr,
        raw: Bytes,
    },
    /// A TCP connection was established; `opener` sent the SYN.
    TcpOpen {
        conn: (SocketAddr, SocketAddr),
        opener: SocketAddr,
    },
    /// Bytes on a TCP connection (MSRP).
    TcpData {
        from: SocketAddr,
        to: SocketAddr,
        data: Bytes,
    },
    /// `from` closed its side of the connection.
    TcpClose { from: SocketAddr, to: SocketAddr },
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
}

/// A stamped event, as the log and a tap carry it.
pub type Stamped = (Duration, WireEvent);

struct Log {
    events: Vec<Stamped>,
    /// A live copy of the stream (the capture writer), in the log's order.
    tap: Option<std::sync::mpsc::Sender<Stamped>>,
    /// False for a long-running tap (load mode): events go to the tap only.
    keep: bool,
}

/// A shared, append-only log of [`WireEvent`]s.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    log: Arc<Mutex<Log>>,
}

impl Recorder {
    pub fn new(start: Instant) -> Recorder {
        Recorder {
            start,
            log: Arc::new(Mutex::new(Log {
                events: Vec::new(),
                tap: None,
                keep: true,
            })),
        }
    }

    /// A recorder that also sends every event, as it happens, to `tap`.
    pub fn with_tap(start: Instant, tap: std::sync::mpsc::Sender<Stamped>) -> Recorder {
        let r = Recorder::new(start);
        if let Ok(mut l) = r.log.lock() {
            l.tap = Some(tap);
        }
        r
    }

    /// A recorder that only feeds `tap` and keeps no log, so its memory does not grow with
    /// a long run.
    pub fn tap_only(start: Instant, tap: std::sync::mpsc::Sender<Stamped>) -> Recorder {
        let r = Recorder::with_tap(start, tap);
        if let Ok(mut l) = r.log.lock() {
            l.keep = false;
        }
        r
    }

    /// Stops feeding the tap (its receiver then sees the end of the stream).
    pub fn close_tap(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.tap = None;
        }
    }

    pub fn record(&self, ev: WireEvent) {
        let t = self.start.elapsed();
        if let Ok(mut l) = self.log.lock() {
            if let Some(tap) = &l.tap {
                if tap.send((t, ev.clone())).is_err() {
                    l.tap = None;
                }
            }
            if l.keep {
                l.events.push((t, ev));
            }
        }
    }

    /// How many events were recorded so far.
    pub fn len(&self) -> usize {
        self.log.lock().map(|l| l.events.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<(Duration, WireEvent)> {
        self.log
            .lock()
            .map(|l| l.events.clone())
            .unwrap_or_default()
    }
}
