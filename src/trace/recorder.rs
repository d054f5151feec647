//! The recorder: a shared, append-only log of [`Record`]s that every driver of a case (and
//! the simulator) writes to, with an optional live tap of the one-copy stream (the capture
//! writer reads it as the case runs).

use super::{one_copy, OneCopy, Record, Seen, Stamped, WireEvent};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Log {
    records: Vec<Record>,
    /// A live copy of the one-copy stream (the capture writer), in the log's order.
    tap: Option<(Sender<Stamped>, OneCopy)>,
    /// False for a long-running tap (load mode): events go to the tap only.
    keep: bool,
    scratch: Vec<Stamped>,
}

/// A shared, append-only log of wire events (see the module docs). Cloning shares the log.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    log: Arc<Mutex<Log>>,
}

impl Recorder {
    /// A recorder whose times count from `start`.
    pub fn new(start: Instant) -> Recorder {
        Recorder {
            start,
            log: Arc::new(Mutex::new(Log {
                records: Vec::new(),
                tap: None,
                keep: true,
                scratch: Vec::new(),
            })),
        }
    }

    /// A recorder that also sends the one-copy stream, as it happens, to `tap`.
    pub fn with_tap(start: Instant, tap: Sender<Stamped>) -> Recorder {
        let r = Recorder::new(start);
        if let Ok(mut l) = r.log.lock() {
            l.tap = Some((tap, OneCopy::new()));
        }
        r
    }

    /// A recorder that only feeds `tap` and keeps no log, so its memory does not grow with
    /// a long run.
    pub fn tap_only(start: Instant, tap: Sender<Stamped>) -> Recorder {
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

    /// Records what this end is about to send.
    pub fn sent(&self, ev: WireEvent) {
        self.record(Seen::Sent, ev);
    }

    /// Records what this end has just received.
    pub fn received(&self, ev: WireEvent) {
        self.record(Seen::Received, ev);
    }

    /// Records `ev` now.
    pub fn record(&self, seen: Seen, ev: WireEvent) {
        self.record_at(self.start.elapsed(), seen, ev);
    }

    /// Records `ev` at `t` since the start (the simulator's virtual time).
    pub fn record_at(&self, t: Duration, seen: Seen, ev: WireEvent) {
        let Ok(mut l) = self.log.lock() else { return };
        let r = Record { t, seen, ev };
        let l = &mut *l;
        if let Some((tap, one)) = &mut l.tap {
            one.push(&r, &mut l.scratch);
            let mut gone = false;
            for s in l.scratch.drain(..) {
                gone |= tap.send(s).is_err();
            }
            if gone {
                l.tap = None;
            }
        }
        if l.keep {
            l.records.push(r);
        }
    }

    /// How many records were made so far.
    pub fn len(&self) -> usize {
        self.log.lock().map(|l| l.records.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every record so far, both ends' copies included.
    pub fn records(&self) -> Vec<Record> {
        self.log
            .lock()
            .map(|l| l.records.clone())
            .unwrap_or_default()
    }

    /// The one-copy stream so far: what a capture of the same traffic shows.
    pub fn snapshot(&self) -> Vec<Stamped> {
        one_copy(&self.records())
    }
}
