//! Read buffers for the MSRP readers: reads land in a slab taken from a small pool, are handed
//! on as [`Bytes`] slices of it (no copy), and the slab goes back to the pool once the last
//! slice is dropped — usually when a writer has put the bytes into the next socket. Every
//! reader served by a thread packs its reads into the thread's current slab, and an idle
//! connection holds none, so memory follows the bytes in flight, not the connections.
//!
//! A read into memory the allocator just obtained from the kernel costs a page fault and the
//! zeroing of each page, and its copy from the socket writes to cold cache lines; a slab from
//! the pool was used moments ago and is neither. The pool keeps at most [`POOL_MAX`] idle
//! slabs, so idle memory stays bounded; slabs in use are bounded by the bytes in flight (the
//! driver's read budget and the nodes' queues).

use bytes::Bytes;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// Bytes per slab.
pub const SLAB: usize = 256 * 1024;
/// A slab with less room than this is retired for a fresh one before a read.
const MIN_FREE: usize = 64 * 1024;
/// Idle slabs kept for reuse.
const POOL_MAX: usize = 32;
/// Reads at least this long are handed on as slices of the slab; shorter ones are copied out,
/// so a few small messages on an idle connection do not pin a slab.
const SPLIT: usize = 16 * 1024;

static POOL: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

/// Memory of one slab, written by one reader thread below `written`'s end and read through
/// [`Piece`]s at or before it.
struct Slab {
    mem: *mut u8,
    len: usize,
}

// SAFETY: the memory is owned by the slab; the thread that fills it writes only the bytes past
// every handed-out piece, and pieces only read the bytes they were created over, which are
// never written again (see `read_with`). Handing a piece to another thread goes through a
// channel, which orders the write before the read.
unsafe impl Send for Slab {}
unsafe impl Sync for Slab {}

impl Slab {
    fn take() -> Slab {
        let mem = POOL
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| vec![0u8; SLAB].into_boxed_slice());
        let len = mem.len();
        Slab {
            mem: Box::into_raw(mem) as *mut u8,
            len,
        }
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: `mem`/`len` came from `Box::into_raw` of a boxed slice in `take`, and no
        // piece is left (they hold the `Arc` this is dropped from).
        let mem = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.mem, self.len)) };
        if let Ok(mut p) = POOL.lock() {
            if p.len() < POOL_MAX {
                p.push(mem);
            }
        }
    }
}

/// Bytes `start..start + len` of a slab, the owner of a [`Bytes`].
struct Piece {
    slab: Arc<Slab>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: in bounds (checked when created) and never written again (see `Slab`).
        unsafe { std::slice::from_raw_parts(self.slab.mem.add(self.start), self.len) }
    }
}

/// This thread's current slab and how much of it is taken.
struct Current {
    slab: Arc<Slab>,
    used: usize,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Reads with `read` into this thread's slab, at most `max` bytes: `Ok(Some(bytes))` with
/// what was read (empty at end of stream), `Ok(None)` when the read would block. `read` is
/// given the free part of the slab and returns how much it filled — any stream's
/// non-blocking read (a TCP half's `try_read`, a TLS session's plaintext read).
pub fn read_with(
    max: usize,
    read: impl FnOnce(&mut [u8]) -> std::io::Result<usize>,
) -> std::io::Result<Option<Bytes>> {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|c| c.slab.len - c.used < MIN_FREE) {
            *c = Some(Current {
                slab: Arc::new(Slab::take()),
                used: 0,
            });
        }
        let cur = c.as_mut().expect("a slab was just set");
        let room = (cur.slab.len - cur.used).min(max);
        // SAFETY: `used..used + room` is within the slab and past every piece handed out, so
        // nothing else refers to it while `read` fills it.
        let free = unsafe { std::slice::from_raw_parts_mut(cur.slab.mem.add(cur.used), room) };
        match read(free) {
            Ok(0) => Ok(Some(Bytes::new())),
            Ok(n) if n >= SPLIT => {
                let n = n.min(room);
                let piece = Piece {
                    slab: cur.slab.clone(),
                    start: cur.used,
                    len: n,
                };
                cur.used += n;
                Ok(Some(Bytes::from_owner(piece)))
            }
            Ok(n) => Ok(Some(Bytes::copy_from_slice(&free[..n.min(room)]))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_keep_their_bytes_while_the_slab_fills_and_is_reused() {
        let mut held = Vec::new();
        let mut k = 0u8;
        // Enough reads to retire several slabs while earlier pieces are still held.
        for round in 0..40 {
            let len = if round % 3 == 0 {
                100
            } else {
                40_000 + round * 1000
            };
            let got = read_with(usize::MAX, |buf| {
                let n = len.min(buf.len());
                for b in &mut buf[..n] {
                    *b = k;
                }
                Ok(n)
            })
            .unwrap()
            .unwrap();
            assert!(got.iter().all(|&b| b == k));
            held.push((k, got));
            k = k.wrapping_add(1);
            if held.len() > 8 {
                held.remove(0); // dropped pieces let their slabs go back to the pool
            }
        }
        for (k, b) in &held {
            assert!(b.iter().all(|x| x == k), "a held piece was overwritten");
        }
        let wb = read_with(1000, |_| Err(std::io::ErrorKind::WouldBlock.into())).unwrap();
        assert!(wb.is_none());
        let eof = read_with(1000, |_| Ok(0)).unwrap().unwrap();
        assert!(eof.is_empty());
        let short = read_with(10, |buf| Ok(buf.len())).unwrap().unwrap();
        assert_eq!(short.len(), 10, "no more than `max` is offered");
    }
}
