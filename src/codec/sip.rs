//! SIP (RFC 3261) behind this project's facade over `rsip`.
//!
//! rsip parses the message; this module adds what rsip lacks: framing SIP over TCP by
//! Content-Length ([`SipFramer`]), compact header names (`v`, `i`, `f`, `t`, `m`, `l`, `c`,
//! `k`, `s`, `e`) expanded before parsing, folded header lines unfolded, the raw bytes kept,
//! typed errors, and builders for the requests and responses of this flow, including the
//! RFC 5366 multipart body with a resource list for ad-hoc groups.

use bytes::{Bytes, BytesMut};
use std::fmt;

/// A SIP error with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SIP: {msg} (near {excerpt:?})")]
pub struct SipError {
    pub msg: String,
    pub excerpt: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Message,
    Other(String),
}

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Message => "MESSAGE",
            Method::Other(s) => s,
        }
    }
    pub fn parse(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "MESSAGE" => Method::Message,
            o => Method::Other(o.to_string()),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

/// A parsed SIP message. Header names are canonical (compact forms expanded, e.g. `i` →
/// `Call-ID`), values unfolded; `raw` holds the bytes exactly as received or as built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    pub start: StartLine,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub raw: Bytes,
}

/// Limits against hostile peers.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_message: 256 * 1024, max_headers: 128 }
    }
}

impl SipMessage {
    /// Parses one message from a datagram (or a complete framed TCP message). The body is cut
    /// at Content-Length when present (RFC 4475 `dblreq`: trailing bytes ignored); without
    /// Content-Length the body is the rest of the datagram.
    pub fn parse(_bytes: &[u8]) -> Result<SipMessage, SipError> {
        todo!()
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    pub fn method(&self) -> Option<&Method> {
        todo!()
    }
    pub fn code(&self) -> Option<u16> {
        todo!()
    }
    pub fn request_uri(&self) -> Option<&str> {
        todo!()
    }
    /// First header with this canonical or compact name (case-insensitive).
    pub fn header(&self, _name: &str) -> Option<&str> {
        todo!()
    }
    /// All values of a header, in order (comma-separated values are not split).
    pub fn header_all<'a>(&'a self, _name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        std::iter::empty()
    }
    pub fn call_id(&self) -> Option<&str> {
        todo!()
    }
    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, Method)> {
        todo!()
    }
    pub fn from_tag(&self) -> Option<String> {
        todo!()
    }
    pub fn to_tag(&self) -> Option<String> {
        todo!()
    }
    /// The URI inside From / To / Contact (without display name, brackets or parameters).
    pub fn from_uri(&self) -> Option<String> {
        todo!()
    }
    pub fn to_uri(&self) -> Option<String> {
        todo!()
    }
    pub fn contact_uri(&self) -> Option<String> {
        todo!()
    }
    /// Top Via `branch` parameter.
    pub fn via_branch(&self) -> Option<String> {
        todo!()
    }
    /// Top Via sent-by (`host[:port]`) and transport.
    pub fn via_sent_by(&self) -> Option<(Transport, String)> {
        todo!()
    }
    pub fn content_type(&self) -> Option<&str> {
        todo!()
    }
    /// The SDP part: the body when it is application/sdp, or the application/sdp part of a
    /// multipart/mixed body.
    pub fn sdp_body(&self) -> Option<Bytes> {
        todo!()
    }
    /// The member URIs of an RFC 5366 recipient-list part, when the body has one.
    pub fn resource_list(&self) -> Result<Option<Vec<String>>, SipError> {
        todo!()
    }
    /// A one-line summary for logs and errors: the start line.
    pub fn summary(&self) -> String {
        todo!()
    }
}

/// Frames SIP over a byte stream by Content-Length (RFC 3261 §18.3). Leading CRLF keep-alives
/// are skipped. A missing Content-Length on a stream is an error.
pub struct SipFramer {
    _limits: Limits,
    _buf: BytesMut,
}

impl SipFramer {
    pub fn new(limits: Limits) -> SipFramer {
        SipFramer { _limits: limits, _buf: BytesMut::new() }
    }
    pub fn push(&mut self, _data: &[u8]) {
        todo!()
    }
    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next(&mut self) -> Result<Option<SipMessage>, SipError> {
        todo!()
    }
}

/// A body to attach to a request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub content_type: String,
    pub bytes: Bytes,
}

impl Body {
    pub fn sdp(sdp: impl Into<Bytes>) -> Body {
        Body { content_type: "application/sdp".into(), bytes: sdp.into() }
    }
    /// multipart/mixed with the SDP and an RFC 5366 resource list
    /// (`Content-Disposition: recipient-list`) of `members`.
    pub fn sdp_with_resource_list(_sdp: &[u8], _members: &[String]) -> Body {
        todo!()
    }
}

/// What a request needs; the builder adds Max-Forwards and Content-Length.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub request_uri: String,
    pub transport: Transport,
    /// Via sent-by, `host:port`.
    pub sent_by: String,
    pub branch: String,
    pub from_uri: String,
    pub from_tag: String,
    pub to_uri: String,
    pub to_tag: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    /// Contact URI (INVITE and 2xx need one).
    pub contact: Option<String>,
    /// Extra headers in order, e.g. Require, Accept-Contact.
    pub extra: Vec<(String, String)>,
    pub body: Option<Body>,
}

/// Builds a request through rsip and serialises it.
pub fn build_request(_spec: &RequestSpec) -> SipMessage {
    todo!()
}

/// Builds a response to `req`: copies Via (all), From, To (adding `to_tag` if given and none
/// present), Call-ID and CSeq.
pub fn build_response(
    _req: &SipMessage,
    _code: u16,
    _reason: &str,
    _to_tag: Option<&str>,
    _contact: Option<&str>,
    _body: Option<Body>,
) -> SipMessage {
    todo!()
}

/// A fresh Via branch (`z9hG4bK` + random), tag or Call-ID.
pub fn new_branch() -> String {
    todo!()
}
pub fn new_tag() -> String {
    todo!()
}
pub fn new_call_id(host: &str) -> String {
    let _ = host;
    todo!()
}
