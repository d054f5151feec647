//! cpm-harness: a conformance and interoperability test harness for OMA CPM large-message
//! group delivery over a hop-by-hop MSRP media path.
//!
//! # Layout
//! - [`codec`]: sans-IO codecs (SIP, SDP, MSRP, CPIM).
pub mod bench;
pub mod capture;
pub mod chain;
pub mod codec;
pub mod config;
pub mod driver;
pub mod engine;
pub mod entity;
pub mod run;
pub mod sim;
pub mod topology;
pub mod util;
