//! MSRP (RFC 4975): URIs with the §6.1 comparison rules, an incremental streaming parser that
//! yields the same events however the bytes are split across TCP reads, a writer, and chunking
//! and reassembly by Byte-Range.
//!
//! The parser is streaming so a relay can forward a chunk's body as it arrives: it yields a
//! [`MsrpEvent::Head`], then zero or more [`MsrpEvent::Body`] pieces, then [`MsrpEvent::End`].
//! It finds the end of a body by searching for the end-line (`CRLF -------<tid>[$+#] CRLF`),
//! never by length (§7.3.1), and holds back only the few bytes that could begin an end-line.

use bytes::{Bytes, BytesMut};
use std::fmt;
use std::net::SocketAddr;

/// Parser or URI error. Carries the byte offset in the stream and an excerpt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MSRP: {msg} at stream offset {offset} (near {excerpt:?})")]
pub struct MsrpError {
    pub offset: u64,
    pub excerpt: String,
    pub msg: String,
}

/// `msrp` or `msrps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Msrp,
    Msrps,
}

/// An MSRP URI: `msrp://host:port/session-id;tcp` (RFC 4975 §6, §9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MsrpUri {
    pub scheme: Scheme,
    pub userinfo: Option<String>,
    /// Host as written (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub session_id: Option<String>,
    /// The transport parameter, e.g. `tcp`.
    pub transport: String,
    /// Further `;name[=value]` parameters in order.
    pub params: Vec<String>,
}

impl MsrpUri {
    /// Parses one URI. Requires an explicit port and a transport parameter.
    pub fn parse(_s: &str) -> Result<MsrpUri, MsrpError> {
        todo!()
    }

    /// Parses a space-separated URI list (a=path, To-Path, From-Path).
    pub fn parse_list(_s: &str) -> Result<Vec<MsrpUri>, MsrpError> {
        todo!()
    }

    /// RFC 4975 §6.1 equality: scheme and transport case-insensitive, host as address or
    /// case-insensitive name, port exact, session-id case-sensitive, userinfo ignored.
    pub fn matches(&self, _other: &MsrpUri) -> bool {
        todo!()
    }

    /// The connect target when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        todo!()
    }
}

impl fmt::Display for MsrpUri {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

/// Formats a URI list space-separated.
pub fn format_uri_list(uris: &[MsrpUri]) -> String {
    uris.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(" ")
}

/// Continuation flag of an end-line (§7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `$`: last chunk of the message.
    End,
    /// `+`: more chunks follow.
    More,
    /// `#`: message aborted.
    Abort,
}

impl Flag {
    pub fn as_char(self) -> char {
        match self {
            Flag::End => '$',
            Flag::More => '+',
            Flag::Abort => '#',
        }
    }
}

/// `Byte-Range: start-end/total`; `end`/`total` are `None` for `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
    pub total: Option<u64>,
}

impl ByteRange {
    pub fn parse(_s: &str) -> Result<ByteRange, MsrpError> {
        todo!()
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

/// Request or response start line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `MSRP <tid> <METHOD>`
    Request { method: String },
    /// `MSRP <tid> <code> [comment]`
    Response { code: u16, comment: Option<String> },
}

/// Start line and headers of one MSRP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrpHead {
    pub tid: String,
    pub start: StartLine,
    /// Headers in wire order, names as written.
    pub headers: Vec<(String, String)>,
    /// True when a body follows (a blank line ended the headers).
    pub has_body: bool,
}

impl MsrpHead {
    /// First header with this name (case-insensitive).
    pub fn header(&self, _name: &str) -> Option<&str> {
        todo!()
    }
    pub fn method(&self) -> Option<&str> {
        todo!()
    }
    pub fn code(&self) -> Option<u16> {
        todo!()
    }
    pub fn to_path(&self) -> Result<Vec<MsrpUri>, MsrpError> {
        todo!()
    }
    pub fn from_path(&self) -> Result<Vec<MsrpUri>, MsrpError> {
        todo!()
    }
    pub fn message_id(&self) -> Option<&str> {
        todo!()
    }
    pub fn byte_range(&self) -> Option<Result<ByteRange, MsrpError>> {
        todo!()
    }
    pub fn content_type(&self) -> Option<&str> {
        todo!()
    }

    /// Writes start line and headers (and the blank line when `has_body`) to `out`.
    /// The caller orders headers: To-Path, From-Path first, Content-Type last (§7.1).
    pub fn encode(&self, _out: &mut BytesMut) {
        todo!()
    }
}

/// Writes an end-line: for a message with a body, the framing CRLF first (§7.1).
pub fn encode_end(_out: &mut BytesMut, _tid: &str, _flag: Flag, _had_body: bool) {
    todo!()
}

/// Builds a SEND head. `content_type` `None` makes a bodiless SEND.
pub fn send_head(
    _tid: &str,
    _to: &MsrpUri,
    _from: &MsrpUri,
    _message_id: &str,
    _range: ByteRange,
    _content_type: Option<&str>,
) -> MsrpHead {
    todo!()
}

/// Encodes a whole response to a request (§7.2): same tid, To-Path = the request's first
/// From-Path URI, From-Path = `own`.
pub fn encode_response(_out: &mut BytesMut, _tid: &str, _code: u16, _comment: &str, _to: &MsrpUri, _own: &MsrpUri) {
    todo!()
}

/// A fresh transaction id / Message-ID: 16 random alphanumerics (≥ 64 bits, §7.1).
pub fn new_ident() -> String {
    todo!()
}

/// One event of the streaming parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsrpEvent {
    Head(MsrpHead),
    /// A piece of the body of the message whose head came last; never includes the framing
    /// CRLF before the end-line.
    Body(Bytes),
    /// The end-line of the current message.
    End { tid: String, flag: Flag },
}

/// Limits that keep a hostile peer from exhausting memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest start line + headers.
    pub max_head: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head: 16 * 1024, max_headers: 64 }
    }
}

/// The incremental parser. Feed with [`MsrpParser::push`], drain with [`MsrpParser::next`]
/// until it returns `Ok(None)`. After an `Err` the stream is unusable.
pub struct MsrpParser {
    _limits: Limits,
}

impl MsrpParser {
    pub fn new(limits: Limits) -> MsrpParser {
        MsrpParser { _limits: limits }
    }
    pub fn push(&mut self, _data: &[u8]) {
        todo!()
    }
    pub fn next(&mut self) -> Result<Option<MsrpEvent>, MsrpError> {
        todo!()
    }
    /// Bytes consumed from the stream so far (offset for errors).
    pub fn offset(&self) -> u64 {
        todo!()
    }
}

/// A complete message, for tests, the checker and small control messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrpMessage {
    pub head: MsrpHead,
    pub body: Bytes,
    pub flag: Flag,
}

impl MsrpMessage {
    pub fn encode(&self) -> Vec<u8> {
        todo!()
    }
}

/// Collects [`MsrpEvent`]s into whole [`MsrpMessage`]s (bounded by `max_body`).
pub struct MessageCollector {
    _max_body: usize,
}

impl MessageCollector {
    pub fn new(max_body: usize) -> Self {
        MessageCollector { _max_body: max_body }
    }
    pub fn feed(&mut self, _ev: MsrpEvent) -> Result<Option<MsrpMessage>, MsrpError> {
        todo!()
    }
}

/// Splits a message of `total` bytes into chunk ranges of at most `chunk` bytes. Chunks
/// larger than 2048 bytes are sent interruptible, with range-end `*` (§7.1.1, J1).
pub fn chunk_ranges(_total: u64, _chunk: u64) -> Vec<(ByteRange, Flag, u64, u64)> {
    todo!()
}

/// Tracks which bytes of a message arrived (any order, overlaps allowed) without holding them.
#[derive(Debug, Default, Clone)]
pub struct RangeTracker {
    _p: (),
}

impl RangeTracker {
    /// Records `len` bytes starting at 1-based `start`.
    pub fn add(&mut self, _start: u64, _len: u64) {
        todo!()
    }
    /// Sets the total once known (from a `$` chunk or a numeric total).
    pub fn set_total(&mut self, _total: u64) {
        todo!()
    }
    pub fn total(&self) -> Option<u64> {
        todo!()
    }
    pub fn received(&self) -> u64 {
        todo!()
    }
    pub fn is_complete(&self) -> bool {
        todo!()
    }
}

/// Reassembles a message in memory from chunks in any order (later chunk wins on overlap).
#[derive(Debug, Default)]
pub struct Reassembler {
    _p: (),
}

impl Reassembler {
    pub fn new(_max: u64) -> Self {
        todo!()
    }
    /// Adds a chunk given its Byte-Range, its bytes and its flag.
    pub fn add(&mut self, _range: ByteRange, _data: &[u8], _flag: Flag) -> Result<(), MsrpError> {
        todo!()
    }
    pub fn is_complete(&self) -> bool {
        todo!()
    }
    pub fn into_bytes(self) -> Option<Bytes> {
        todo!()
    }
}
