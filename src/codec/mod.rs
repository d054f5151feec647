//! Sans-IO codecs: bytes in, typed messages out, and back. No sockets, no clocks.
//!
//! - [`sip`]: SIP messages (RFC 3261) over rsip, behind this project's facade, with TCP framing.
//! - [`sdp`]: SDP (RFC 8866) as used for an MSRP stream (RFC 4975 §8, RFC 6135 `a=setup`).
//! - [`msrp`]: MSRP (RFC 4975): URIs, an incremental streaming parser, a writer, chunking.
//! - [`cpim`]: message/cpim (RFC 3862) wrap and unwrap.

pub mod cpim;
pub mod msrp;
pub mod sdp;
pub mod sip;
