//! SDP (RFC 8866 / RFC 3264) for an MSRP media stream (RFC 4975 §8; RFC 6135 `a=setup`).
//!
//! [`Sdp`] is a generic, line-preserving parse of a session description (enough for the
//! checker to count m-lines and read any attribute); [`MsrpSdp`] is the typed view of the one
//! `m=message … TCP/MSRP *` stream that this flow negotiates, and builds the SDP an entity sends.
//! Every parse error names the 1-based line number and the offending line.

use crate::codec::msrp::MsrpUri;
use std::net::IpAddr;

/// A parse error, naming the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {msg} (in {excerpt:?})")]
pub struct SdpError {
    /// 1-based line number (0 when the error is about the whole description).
    pub line: usize,
    /// The offending line, possibly shortened.
    pub excerpt: String,
    pub msg: String,
}

/// `c=` line: `IN IP4 127.0.0.1` / `IN IP6 ::1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub net_type: String,
    pub addr_type: String,
    /// The address exactly as written (may be a host name).
    pub address: String,
}

impl Connection {
    /// The address as an IP, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

/// One media section (`m=` and the lines under it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// 1-based line number of the `m=` line.
    pub line: usize,
    pub media: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    /// Attributes in order: (name, value); value is `None` for a flag attribute like `a=sendonly`.
    pub attributes: Vec<(String, Option<String>)>,
}

/// A whole session description, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `o=` line fields: username, sess-id, sess-version, nettype, addrtype, address.
    pub origin: Vec<String>,
    pub session_name: String,
    pub connection: Option<Connection>,
    pub attributes: Vec<(String, Option<String>)>,
    pub media: Vec<Media>,
}

/// RFC 4145 / RFC 6135 `a=setup` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Setup {
    Active,
    Passive,
    Actpass,
    Holdconn,
}

/// The typed view of an MSRP stream: what an entity advertises for one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrpSdp {
    /// `o=` username.
    pub origin_user: String,
    pub session_id: u64,
    pub session_version: u64,
    /// The `c=` address (media level if present, else session level).
    pub c_addr: IpAddr,
    /// The `m=` port.
    pub port: u16,
    /// `TCP/MSRP` or `TCP/TLS/MSRP`.
    pub proto: String,
    /// `a=path` URIs, leftmost first.
    pub path: Vec<MsrpUri>,
    pub accept_types: Vec<String>,
    pub accept_wrapped_types: Vec<String>,
    pub setup: Option<Setup>,
    pub max_size: Option<u64>,
    /// `sendonly` / `recvonly` / `sendrecv` / `inactive`, when present.
    pub direction: Option<String>,
}

impl Sdp {
    /// Parses a session description. Accepts CRLF and bare LF line ends.
    pub fn parse(_text: &[u8]) -> Result<Sdp, SdpError> {
        todo!()
    }
}

impl MsrpSdp {
    /// Parses bytes and extracts the first `m=message` stream (see [`MsrpSdp::from_sdp`]).
    pub fn parse(_text: &[u8]) -> Result<MsrpSdp, SdpError> {
        todo!()
    }

    /// Extracts the MSRP stream: the first `m=message` section; requires a `c=`, an `a=path`
    /// whose URIs all parse, and `accept-types`.
    pub fn from_sdp(_sdp: &Sdp) -> Result<MsrpSdp, SdpError> {
        todo!()
    }

    /// The rightmost path URI: the SDP sender's own URI for this session (RFC 4975 §8.2).
    pub fn own_uri(&self) -> &MsrpUri {
        self.path.last().expect("path is never empty after parse")
    }

    /// The leftmost path URI: where the peer connects (RFC 4975 §8.3).
    pub fn next_hop(&self) -> &MsrpUri {
        self.path.first().expect("path is never empty after parse")
    }

    /// Serialises with CRLF line ends in RFC 8866 order.
    pub fn encode(&self) -> String {
        todo!()
    }
}
