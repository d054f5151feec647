//! Sans-IO codecs: bytes in, typed messages out, and back. No sockets, no clocks, no
//! randomness of their own: builders that need identifiers take the caller's generator
//! (`&mut impl Rng`), and CPIM's `DateTime` is given, never read.
//!
//! - [`sip`]: SIP messages (RFC 3261): the project's own parser and builders, TCP framing.
//! - [`sdp`]: SDP (RFC 8866) as used for an MSRP stream (RFC 4975 §8, RFC 6135 `a=setup`).
//! - [`msrp`]: MSRP (RFC 4975): URIs, an incremental streaming parser, a writer, chunking.
//! - [`cpim`]: message/cpim (RFC 3862) wrap and unwrap.

// Time and randomness are inputs here (clippy.toml lists what reads them).
#![deny(clippy::disallowed_methods)]

pub mod cpim;
pub mod msrp;
pub mod sdp;
pub mod sip;
