//! OS randomness, read at the I/O edge only.
//!
//! The protocol core draws every identifier (tags, branches, Call-IDs, MSRP session ids,
//! transaction ids, Message-IDs, MIME boundaries) from a generator seeded per node
//! ([`crate::entity::Start::seed`]). A live node's seed comes from here; the simulator's
//! from its own seed, so one simulator seed reproduces every identifier. `clippy.toml`
//! disallows `rand::random`, `rand::rng` and OS seeding everywhere else.
#![allow(clippy::disallowed_methods)] // This module is the one place that reads OS entropy.

/// A fresh seed from the operating system's randomness.
pub fn seed() -> u64 {
    rand::random()
}
