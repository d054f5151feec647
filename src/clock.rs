//! The machine's clocks, read at the I/O edge only.
//!
//! The protocol core (`codec/`, `entity/`) never reads a clock: each call is handed `now`,
//! and a node is given the wall-clock time of its start ([`crate::entity::Start`]).
//! `clippy.toml` disallows `Instant::now`, `SystemTime::now` and their `elapsed` everywhere;
//! the modules that legitimately need the time (driver, runner, case, bench, load, chain, the
//! simulator's base instant) call these functions, the only place allowed to read it.
#![allow(clippy::disallowed_methods)] // This module is the one place that reads the clock.

use std::time::{Duration, Instant, SystemTime};

/// The monotonic time now.
pub fn now() -> Instant {
    Instant::now()
}

/// Monotonic time elapsed since `t`.
pub fn since(t: Instant) -> Duration {
    t.elapsed()
}

/// The wall-clock time now (CPIM `DateTime`, report stamps, file names).
pub fn wall() -> SystemTime {
    SystemTime::now()
}

/// The monotonic time now, as tokio's timers take it.
pub fn tokio_now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// tokio monotonic time elapsed since `t`.
pub fn tokio_since(t: tokio::time::Instant) -> Duration {
    t.elapsed()
}
