//! MSRP (RFC 4975): URIs with the §6.1 comparison rules, an incremental streaming parser that
//! yields the same events however the bytes are split across TCP reads, a writer, and chunking
//! and reassembly by Byte-Range.
//!
//! The parser is streaming so a relay can forward a chunk's body as it arrives: it yields a
//! [`MsrpEvent::Head`], then zero or more [`MsrpEvent::Body`] pieces, then [`MsrpEvent::End`].
//! It finds the end of a body by searching for the end-line (`CRLF -------<tid>[$+#] CRLF`),
//! never by length (§7.3.1), and holds back only the few bytes that could begin an end-line.
//! A stated range-end is no shortcut: only a chunk of at most 2048 octets may state one (a
//! larger chunk MUST be interruptible, range-end `*`, RFC 4975 §7.1.1), and a body shorter
//! than its stated range must still end at its end-line (MEDIA-FRAMING judges the length).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use memchr::memmem;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Parser or URI error. Carries the byte offset in the stream and an excerpt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MSRP: {msg} at stream offset {offset} (near {excerpt:?})")]
pub struct MsrpError {
    pub offset: u64,
    pub excerpt: String,
    pub msg: String,
}

/// Longest excerpt carried in an error, in bytes of input.
const EXCERPT_LEN: usize = 48;

fn excerpt_bytes(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(EXCERPT_LEN)]).into_owned()
}

/// An error about a standalone string (URI, Byte-Range, header value): offset 0.
fn str_err(s: &str, msg: impl Into<String>) -> MsrpError {
    MsrpError {
        offset: 0,
        excerpt: s.chars().take(EXCERPT_LEN).collect(),
        msg: msg.into(),
    }
}

/// `ident = ALPHANUM 3*31ident-char` (§9): transaction ids and Message-IDs, 4 to 32 characters.
pub fn is_ident(s: &str) -> bool {
    is_ident_bytes(s.as_bytes())
}

fn is_ident_bytes(b: &[u8]) -> bool {
    (4..=32).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'%' | b'='))
}

/// `token` of RFC 3261, used by header names and URI parameters.
fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// ASCII digits only (`u64::from_str` would also take a leading `+`).
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
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
    pub fn parse(s: &str) -> Result<MsrpUri, MsrpError> {
        let err = |msg: &str| str_err(s, msg);
        let (scheme_s, rest) = s.split_once("://").ok_or_else(|| err("missing `://`"))?;
        let scheme = if scheme_s.eq_ignore_ascii_case("msrp") {
            Scheme::Msrp
        } else if scheme_s.eq_ignore_ascii_case("msrps") {
            Scheme::Msrps
        } else {
            return Err(err("scheme is not msrp or msrps"));
        };
        // No other part of an MSRP URI may hold `@` (session-id and parameters are tokens),
        // so the first `@` always ends the userinfo.
        let (userinfo, rest) = match rest.split_once('@') {
            Some((u, r)) => {
                if u.is_empty()
                    || u.bytes()
                        .any(|c| matches!(c, b'/' | b'[' | b']') || c <= b' ' || c >= 0x7f)
                {
                    return Err(err("bad userinfo"));
                }
                (Some(u.to_string()), r)
            }
            None => (None, rest),
        };
        let (host, rest) = if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or_else(|| err("unclosed `[` in host"))?;
            let h = &r[..close];
            if h.parse::<Ipv6Addr>().is_err() {
                return Err(err("bad IPv6 address"));
            }
            (h, &r[close + 1..])
        } else {
            let end = rest.find([':', '/', ';']).unwrap_or(rest.len());
            let h = &rest[..end];
            if h.is_empty() {
                return Err(err("empty host"));
            }
            if !h
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'%'))
            {
                return Err(err("bad host"));
            }
            (h, &rest[end..])
        };
        let rest = rest.strip_prefix(':').ok_or_else(|| err("missing port"))?;
        let end = rest.find(['/', ';']).unwrap_or(rest.len());
        let port = parse_digits(&rest[..end])
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| err("bad port"))?;
        let mut rest = &rest[end..];
        let mut session_id = None;
        if let Some(r) = rest.strip_prefix('/') {
            let end = r.find(';').unwrap_or(r.len());
            let sid = &r[..end];
            if sid.is_empty()
                || !sid.bytes().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'=' | b'/')
                })
            {
                return Err(err("bad session-id"));
            }
            session_id = Some(sid.to_string());
            rest = &r[end..];
        }
        let rest = rest
            .strip_prefix(';')
            .ok_or_else(|| err("missing transport parameter"))?;
        let mut parts = rest.split(';');
        let transport = parts.next().unwrap_or("");
        if transport.is_empty() || !transport.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(err("bad transport parameter"));
        }
        let mut params = Vec::new();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            let ok = |t: &str| !t.is_empty() && t.bytes().all(is_token_char);
            if !ok(name) || value.is_some_and(|v| !ok(v)) {
                return Err(err("bad URI parameter"));
            }
            params.push(p.to_string());
        }
        Ok(MsrpUri {
            scheme,
            userinfo,
            host: host.to_string(),
            port,
            session_id,
            transport: transport.to_string(),
            params,
        })
    }

    /// Parses a space-separated URI list (a=path, To-Path, From-Path).
    pub fn parse_list(s: &str) -> Result<Vec<MsrpUri>, MsrpError> {
        let list = s
            .split_ascii_whitespace()
            .map(MsrpUri::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if list.is_empty() {
            return Err(str_err(s, "empty URI list"));
        }
        Ok(list)
    }

    /// RFC 4975 §6.1 equality: scheme and transport case-insensitive, host as address or
    /// case-insensitive name, port exact, session-id case-sensitive, userinfo ignored.
    pub fn matches(&self, other: &MsrpUri) -> bool {
        let host_eq = match (self.host.parse::<IpAddr>(), other.host.parse::<IpAddr>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => self.host.eq_ignore_ascii_case(&other.host),
        };
        self.scheme == other.scheme
            && host_eq
            && self.port == other.port
            && self.session_id == other.session_id
            && self.transport.eq_ignore_ascii_case(&other.transport)
    }

    /// Appends the URI as [`fmt::Display`] writes it, without the formatting machinery (the
    /// relay writes two per chunk).
    pub fn encode_into(&self, out: &mut BytesMut) {
        out.put_slice(match self.scheme {
            Scheme::Msrp => b"msrp://",
            Scheme::Msrps => b"msrps://",
        });
        if let Some(u) = &self.userinfo {
            out.put_slice(u.as_bytes());
            out.put_u8(b'@');
        }
        if self.host.contains(':') {
            out.put_u8(b'[');
            out.put_slice(self.host.as_bytes());
            out.put_u8(b']');
        } else {
            out.put_slice(self.host.as_bytes());
        }
        out.put_u8(b':');
        put_decimal(out, u64::from(self.port));
        if let Some(s) = &self.session_id {
            out.put_u8(b'/');
            out.put_slice(s.as_bytes());
        }
        out.put_u8(b';');
        out.put_slice(self.transport.as_bytes());
        for p in &self.params {
            out.put_u8(b';');
            out.put_slice(p.as_bytes());
        }
    }

    /// The connect target when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Msrp => "msrp",
            Scheme::Msrps => "msrps",
        };
        write!(f, "{scheme}://")?;
        if let Some(u) = &self.userinfo {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if let Some(s) = &self.session_id {
            write!(f, "/{s}")?;
        }
        write!(f, ";{}", self.transport)?;
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

/// Appends `n` in decimal.
fn put_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

/// Formats a URI list space-separated.
pub fn format_uri_list(uris: &[MsrpUri]) -> String {
    uris.iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(" ")
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

    /// The flag for an end-line byte, `None` if it is not one of `$+#`.
    pub fn from_byte(b: u8) -> Option<Flag> {
        match b {
            b'$' => Some(Flag::End),
            b'+' => Some(Flag::More),
            b'#' => Some(Flag::Abort),
            _ => None,
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
    /// Parses `start-end/total` (§9), checking `start >= 1`, `end <= total` and
    /// `start <= end + 1` (so the empty range `1-0/0` is valid).
    pub fn parse(s: &str) -> Result<ByteRange, MsrpError> {
        let err = |msg: &str| str_err(s, msg);
        let t = s.trim();
        let (start_s, rest) = t
            .split_once('-')
            .ok_or_else(|| err("Byte-Range lacks `-`"))?;
        let (end_s, total_s) = rest
            .split_once('/')
            .ok_or_else(|| err("Byte-Range lacks `/`"))?;
        let start = parse_digits(start_s).ok_or_else(|| err("bad Byte-Range start"))?;
        let star_or = |v: &str, what: &str| -> Result<Option<u64>, MsrpError> {
            if v == "*" {
                Ok(None)
            } else {
                parse_digits(v).map(Some).ok_or_else(|| err(what))
            }
        };
        let end = star_or(end_s, "bad Byte-Range end")?;
        let total = star_or(total_s, "bad Byte-Range total")?;
        if start == 0 {
            return Err(err("Byte-Range start must be at least 1"));
        }
        if let (Some(e), Some(t)) = (end, total) {
            if e > t {
                return Err(err("Byte-Range end beyond total"));
            }
        }
        if let Some(e) = end {
            if start > e.saturating_add(1) {
                return Err(err("Byte-Range start after end"));
            }
        }
        if let Some(t) = total {
            if start > t.saturating_add(1) {
                return Err(err("Byte-Range start beyond total"));
            }
        }
        Ok(ByteRange { start, end, total })
    }
}

impl ByteRange {
    /// Appends the range as [`fmt::Display`] writes it.
    pub fn encode_into(&self, out: &mut BytesMut) {
        put_decimal(out, self.start);
        out.put_u8(b'-');
        match self.end {
            Some(e) => put_decimal(out, e),
            None => out.put_u8(b'*'),
        }
        out.put_u8(b'/');
        match self.total {
            Some(t) => put_decimal(out, t),
            None => out.put_u8(b'*'),
        }
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.start)?;
        match self.end {
            Some(e) => write!(f, "{e}")?,
            None => f.write_str("*")?,
        }
        match self.total {
            Some(t) => write!(f, "/{t}"),
            None => f.write_str("/*"),
        }
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
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }
    pub fn to_path(&self) -> Result<Vec<MsrpUri>, MsrpError> {
        self.path_header("To-Path")
    }
    pub fn from_path(&self) -> Result<Vec<MsrpUri>, MsrpError> {
        self.path_header("From-Path")
    }
    fn path_header(&self, name: &str) -> Result<Vec<MsrpUri>, MsrpError> {
        let v = self
            .header(name)
            .ok_or_else(|| str_err(&self.tid, format!("missing {name} header")))?;
        MsrpUri::parse_list(v)
    }
    pub fn message_id(&self) -> Option<&str> {
        self.header("Message-ID")
    }
    pub fn byte_range(&self) -> Option<Result<ByteRange, MsrpError>> {
        self.header("Byte-Range").map(ByteRange::parse)
    }
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// Writes start line and headers (and the blank line when `has_body`) to `out`.
    /// The caller orders headers: To-Path, From-Path first, Content-Type last (§7.1).
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(b"MSRP ");
        out.put_slice(self.tid.as_bytes());
        match &self.start {
            StartLine::Request { method } => {
                out.put_u8(b' ');
                out.put_slice(method.as_bytes());
            }
            StartLine::Response { code, comment } => {
                out.put_slice(format!(" {code:03}").as_bytes());
                if let Some(c) = comment {
                    out.put_u8(b' ');
                    out.put_slice(c.as_bytes());
                }
            }
        }
        out.put_slice(b"\r\n");
        for (n, v) in &self.headers {
            out.put_slice(n.as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_slice(b"\r\n");
        }
        if self.has_body {
            out.put_slice(b"\r\n");
        }
    }
}

/// Writes an end-line: for a message with a body, the framing CRLF first (§7.1).
pub fn encode_end(out: &mut BytesMut, tid: &str, flag: Flag, had_body: bool) {
    if had_body {
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"-------");
    out.put_slice(tid.as_bytes());
    out.put_u8(flag.as_char() as u8);
    out.put_slice(b"\r\n");
}

/// Builds a SEND head. `content_type` `None` makes a bodiless SEND.
pub fn send_head(
    tid: &str,
    to: &MsrpUri,
    from: &MsrpUri,
    message_id: &str,
    range: ByteRange,
    content_type: Option<&str>,
) -> MsrpHead {
    let mut headers = vec![
        ("To-Path".to_string(), to.to_string()),
        ("From-Path".to_string(), from.to_string()),
        ("Message-ID".to_string(), message_id.to_string()),
        ("Byte-Range".to_string(), range.to_string()),
    ];
    if let Some(ct) = content_type {
        headers.push(("Content-Type".to_string(), ct.to_string()));
    }
    MsrpHead {
        tid: tid.to_string(),
        start: StartLine::Request {
            method: "SEND".to_string(),
        },
        headers,
        has_body: content_type.is_some(),
    }
}

/// What a SEND asks of its receiver about reports (RFC 4975 §7.1.1, §7.1.2): a success
/// REPORT (`Success-Report: yes`), and no transaction responses nor failure REPORTs
/// (`Failure-Report: no`). The default (neither header) is RFC 4975's default: failure
/// reports and responses, no success report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportRequest {
    pub success: bool,
    pub failure_no: bool,
}

impl ReportRequest {
    /// What a request's headers ask.
    pub fn of(h: &MsrpHead) -> ReportRequest {
        let is = |name: &str, v: &str| {
            h.header(name)
                .is_some_and(|x| x.trim().eq_ignore_ascii_case(v))
        };
        ReportRequest {
            success: is("Success-Report", "yes"),
            failure_no: is("Failure-Report", "no"),
        }
    }
}

/// Encodes a SEND head straight into `out`: the bytes of
/// `send_head(…).encode(out)`, without building the head (the relay's hot path).
pub fn encode_send_head(
    out: &mut BytesMut,
    tid: &str,
    to: &MsrpUri,
    from: &MsrpUri,
    message_id: &str,
    range: ByteRange,
    content_type: Option<&str>,
) {
    encode_send_head_with(
        out,
        tid,
        to,
        from,
        message_id,
        range,
        content_type,
        ReportRequest::default(),
    );
}

/// [`encode_send_head`] with the report headers `reports` asks for (written only when they
/// differ from the default).
#[allow(clippy::too_many_arguments)]
pub fn encode_send_head_with(
    out: &mut BytesMut,
    tid: &str,
    to: &MsrpUri,
    from: &MsrpUri,
    message_id: &str,
    range: ByteRange,
    content_type: Option<&str>,
    reports: ReportRequest,
) {
    out.reserve(160 + tid.len() + message_id.len() + to.host.len() + from.host.len());
    encode_request_start(out, tid, "SEND", to, from, message_id, range);
    if reports.success {
        out.put_slice(b"Success-Report: yes\r\n");
    }
    if reports.failure_no {
        out.put_slice(b"Failure-Report: no\r\n");
    }
    if let Some(ct) = content_type {
        out.put_slice(b"Content-Type: ");
        out.put_slice(ct.as_bytes());
        out.put_slice(b"\r\n\r\n");
    }
}

/// Encodes a whole response to a request (§7.2): same tid, To-Path = the request's first
/// From-Path URI, From-Path = `own`.
pub fn encode_response(
    out: &mut BytesMut,
    tid: &str,
    code: u16,
    comment: &str,
    to: &MsrpUri,
    own: &MsrpUri,
) {
    out.reserve(96 + 2 * tid.len() + comment.len() + to.host.len() + own.host.len());
    out.put_slice(b"MSRP ");
    out.put_slice(tid.as_bytes());
    out.put_u8(b' ');
    // Three digits, as `{code:03}` writes a status code (§9: 100–999).
    if code < 100 {
        out.put_u8(b'0');
        if code < 10 {
            out.put_u8(b'0');
        }
    }
    put_decimal(out, u64::from(code));
    if !comment.is_empty() {
        out.put_u8(b' ');
        out.put_slice(comment.as_bytes());
    }
    out.put_slice(b"\r\nTo-Path: ");
    to.encode_into(out);
    out.put_slice(b"\r\nFrom-Path: ");
    own.encode_into(out);
    out.put_slice(b"\r\n");
    encode_end(out, tid, Flag::End, false);
}

/// The start line and the headers a SEND and a REPORT share, in RFC 4975 §6's order
/// (To-Path, From-Path, Message-ID, Byte-Range), each line ended.
fn encode_request_start(
    out: &mut BytesMut,
    tid: &str,
    method: &str,
    to: &MsrpUri,
    from: &MsrpUri,
    message_id: &str,
    range: ByteRange,
) {
    out.put_slice(b"MSRP ");
    out.put_slice(tid.as_bytes());
    out.put_slice(b" ");
    out.put_slice(method.as_bytes());
    out.put_slice(b"\r\nTo-Path: ");
    to.encode_into(out);
    out.put_slice(b"\r\nFrom-Path: ");
    from.encode_into(out);
    out.put_slice(b"\r\nMessage-ID: ");
    out.put_slice(message_id.as_bytes());
    out.put_slice(b"\r\nByte-Range: ");
    range.encode_into(out);
    out.put_slice(b"\r\n");
}

/// Encodes a whole REPORT (RFC 4975 §7.1.2): To-Path = the SEND's sender, From-Path = `own`,
/// the SEND's Message-ID, the Byte-Range it covers and its Status (`000 200 OK` for success).
#[allow(clippy::too_many_arguments)]
pub fn encode_report(
    out: &mut BytesMut,
    tid: &str,
    to: &MsrpUri,
    own: &MsrpUri,
    message_id: &str,
    range: ByteRange,
    code: u16,
    comment: &str,
) {
    encode_request_start(out, tid, "REPORT", to, own, message_id, range);
    out.put_slice(format!("Status: 000 {code:03} {comment}\r\n").as_bytes());
    encode_end(out, tid, Flag::End, false);
}

/// A fresh transaction id / Message-ID: 16 random alphanumerics (≥ 64 bits, §7.1) drawn from
/// `rng` (the caller's seeded generator: the codec holds no randomness of its own).
pub fn new_ident(rng: &mut (impl rand::Rng + ?Sized)) -> String {
    (0..16)
        .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
        .collect()
}

/// One event of the streaming parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsrpEvent {
    Head(MsrpHead),
    /// A piece of the body of the message whose head came last; never includes the framing
    /// CRLF before the end-line.
    Body(Bytes),
    /// The end-line of the current message.
    End {
        tid: String,
        flag: Flag,
    },
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
        Limits {
            max_head: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Where the parser is inside the current message.
enum State {
    Head(HeadScan),
    Body(BodyScan),
}

/// Finds `CRLF -------`, the part of every end-line before its transaction id: built once, so
/// a message costs no searcher of its own (the id is compared at each match).
static END_LINE_START: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(b"\r\n-------"));

/// Progress through a head. The head stays in the buffer until complete (it is bounded by
/// `max_head`); lines already parsed are kept here so no byte is examined twice.
#[derive(Default)]
struct HeadScan {
    /// Buffer index of the first byte of the line being assembled.
    line_start: usize,
    /// Buffer index from which to look for the next LF (earlier bytes hold none).
    search_from: usize,
    start: Option<(String, StartLine)>,
    headers: Vec<(String, String)>,
}

/// Progress through a body. The buffer starts at the first body byte not yet handed out.
struct BodyScan {
    tid: String,
    is_response: bool,
    /// `CRLF -------<tid>`; the flag and CRLF after it are checked by hand.
    pat: Vec<u8>,
    /// Buffer index from which to search: no end-line starts before it.
    scan: usize,
}

impl BodyScan {
    fn new(head: &MsrpHead) -> BodyScan {
        let mut pat = Vec::with_capacity(9 + head.tid.len());
        pat.extend_from_slice(b"\r\n-------");
        pat.extend_from_slice(head.tid.as_bytes());
        BodyScan {
            tid: head.tid.clone(),
            is_response: matches!(head.start, StartLine::Response { .. }),
            pat,
            scan: 0,
        }
    }
}

/// A head that has been fully read: `consumed` bytes of buffer, and for a bodiless message
/// the flag of the end-line that closed it.
struct HeadDone {
    head: MsrpHead,
    consumed: usize,
    end_flag: Option<Flag>,
}

enum BodyStep {
    NeedMore,
    /// The first `n` buffered bytes are certainly body.
    Body(usize),
    /// The buffer starts with a valid end-line of `n` bytes.
    End(Flag, usize),
}

/// Bytes of the next pushed input joined to a leftover (a partial head, a possible end-line)
/// per step: enough to finish any end-line, and a head in a few steps, without copying a
/// whole large read behind a few leftover bytes.
const JOIN: usize = 4096;

/// The incremental parser. Feed with [`MsrpParser::push`], drain with [`MsrpParser::next`]
/// until it returns `Ok(None)`. After an `Err` the stream is unusable.
pub struct MsrpParser {
    limits: Limits,
    /// The unconsumed input being parsed. A `Bytes` so that a read handed over whole
    /// ([`MsrpParser::push_bytes`]) is adopted without a copy and body events are slices of it.
    buf: Bytes,
    /// Pushed input behind `buf`, moved into it when `buf` has no complete event left: adopted
    /// whole when `buf` is empty, else joined to `buf`'s leftover [`JOIN`] bytes at a time.
    rest: std::collections::VecDeque<Bytes>,
    /// Stream offset of `buf[0]`.
    offset: u64,
    state: State,
    /// The end-line of a bodiless message, delivered right after its head.
    pending: Option<MsrpEvent>,
    error: Option<MsrpError>,
}

impl MsrpParser {
    pub fn new(limits: Limits) -> MsrpParser {
        MsrpParser {
            limits,
            buf: Bytes::new(),
            rest: std::collections::VecDeque::new(),
            offset: 0,
            state: State::Head(HeadScan::default()),
            pending: None,
            error: None,
        }
    }

    /// Appends stream bytes. Ignored once the parser has failed, so a broken peer cannot make
    /// it buffer without bound.
    pub fn push(&mut self, data: &[u8]) {
        self.push_bytes(Bytes::copy_from_slice(data));
    }

    /// Appends stream bytes without copying them: body events are slices of them. Only where
    /// a leftover — a partial head, or an end-line look-alike at most `len(tid) + 11` bytes
    /// long — meets them are a few of them ([`JOIN`] at a time) copied behind it.
    pub fn push_bytes(&mut self, data: Bytes) {
        if self.error.is_some() || data.is_empty() {
            return;
        }
        if self.buf.is_empty() && self.rest.is_empty() {
            self.buf = data;
        } else {
            self.rest.push_back(data);
        }
    }

    /// Moves pushed input into `buf`; false when there is none.
    fn refill(&mut self) -> bool {
        let Some(front) = self.rest.front_mut() else {
            return false;
        };
        if self.buf.is_empty() {
            self.buf = self.rest.pop_front().unwrap_or_default();
            return true;
        }
        let k = front.len().min(JOIN);
        let mut joined = BytesMut::with_capacity(self.buf.len() + k);
        joined.extend_from_slice(&self.buf);
        joined.extend_from_slice(&front[..k]);
        front.advance(k);
        if front.is_empty() {
            self.rest.pop_front();
        }
        self.buf = joined.freeze();
        true
    }

    /// The next event, `Ok(None)` when more input is needed. Not an `Iterator`: the caller
    /// must tell "need more" from end of stream and see errors.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<MsrpEvent>, MsrpError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if let Some(ev) = self.pending.take() {
            return Ok(Some(ev));
        }
        let res = loop {
            match self.step() {
                Ok(None) if self.refill() => continue,
                res => break res,
            }
        };
        if let Err(e) = &res {
            self.error = Some(e.clone());
            self.buf = Bytes::new();
            self.rest.clear();
        }
        res
    }

    /// Bytes consumed from the stream so far (offset for errors).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes pushed but not yet handed out: a partial head, or at most `len(tid) + 11` bytes
    /// of a body that may begin its end-line.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.rest.iter().map(Bytes::len).sum::<usize>()
    }

    /// True between messages (no partial message consumed or buffered).
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
            && self.buf.is_empty()
            && self.rest.is_empty()
            && matches!(self.state, State::Head(_))
    }

    fn step(&mut self) -> Result<Option<MsrpEvent>, MsrpError> {
        match &mut self.state {
            State::Head(hs) => {
                let Some(done) = scan_head(hs, &self.buf, self.offset, &self.limits)? else {
                    return Ok(None);
                };
                self.buf.advance(done.consumed);
                self.offset += done.consumed as u64;
                match done.end_flag {
                    Some(flag) => {
                        self.pending = Some(MsrpEvent::End {
                            tid: done.head.tid.clone(),
                            flag,
                        });
                        self.state = State::Head(HeadScan::default());
                    }
                    None => self.state = State::Body(BodyScan::new(&done.head)),
                }
                Ok(Some(MsrpEvent::Head(done.head)))
            }
            State::Body(bs) => match scan_body(bs, &self.buf, self.offset)? {
                BodyStep::NeedMore => Ok(None),
                BodyStep::Body(n) => {
                    self.offset += n as u64;
                    Ok(Some(MsrpEvent::Body(self.buf.split_to(n))))
                }
                BodyStep::End(flag, n) => {
                    let tid = std::mem::take(&mut bs.tid);
                    self.buf.advance(n);
                    self.offset += n as u64;
                    self.state = State::Head(HeadScan::default());
                    Ok(Some(MsrpEvent::End { tid, flag }))
                }
            },
        }
    }
}

/// Reads head lines from `buf` (which starts at the message's first byte, stream offset
/// `offset`). Errors depend only on the message bytes, never on how they were split: the head
/// limit is checked per complete line and, for an incomplete line, on the bytes buffered.
fn scan_head(
    hs: &mut HeadScan,
    buf: &[u8],
    offset: u64,
    limits: &Limits,
) -> Result<Option<HeadDone>, MsrpError> {
    let too_long = || MsrpError {
        offset,
        excerpt: excerpt_bytes(&buf[..buf.len().min(limits.max_head.saturating_add(1))]),
        msg: format!("head longer than {} bytes", limits.max_head),
    };
    loop {
        let Some(j) = memchr::memchr(b'\n', &buf[hs.search_from..]) else {
            hs.search_from = buf.len();
            if buf.len() > limits.max_head {
                return Err(too_long());
            }
            return Ok(None);
        };
        let nl = hs.search_from + j;
        let line_end = nl + 1;
        hs.search_from = line_end;
        if line_end > limits.max_head {
            return Err(too_long());
        }
        let line_start = hs.line_start;
        hs.line_start = line_end;
        let err = |msg: String| MsrpError {
            offset: offset + line_start as u64,
            excerpt: excerpt_bytes(&buf[line_start..line_end]),
            msg,
        };
        if nl == line_start || buf[nl - 1] != b'\r' {
            return Err(err("line not terminated by CRLF".into()));
        }
        let line = &buf[line_start..nl - 1];
        if memchr::memchr(b'\r', line).is_some() {
            return Err(err("stray CR in line".into()));
        }
        let Some((tid, start)) = &hs.start else {
            hs.start = Some(parse_start_line(line).map_err(err)?);
            continue;
        };
        let end_flag = if line.is_empty() {
            None
        } else if let Some(rest) = line.strip_prefix(b"-------") {
            let is_response = matches!(start, StartLine::Response { .. });
            Some(parse_bodiless_end(rest, tid, is_response).map_err(err)?)
        } else {
            if hs.headers.len() >= limits.max_headers {
                return Err(err(format!("more than {} headers", limits.max_headers)));
            }
            hs.headers.push(parse_header(line).map_err(err)?);
            continue;
        };
        let head = MsrpHead {
            tid: tid.clone(),
            start: start.clone(),
            headers: std::mem::take(&mut hs.headers),
            has_body: end_flag.is_none(),
        };
        return Ok(Some(HeadDone {
            head,
            consumed: line_end,
            end_flag,
        }));
    }
}

/// `MSRP SP transact-id SP (method | status-code [SP comment])` (§9).
fn parse_start_line(line: &[u8]) -> Result<(String, StartLine), String> {
    let rest = line
        .strip_prefix(b"MSRP ")
        .ok_or("start line does not begin with `MSRP `")?;
    let sp = memchr::memchr(b' ', rest).ok_or("start line lacks a method or status code")?;
    let (tid, what) = (&rest[..sp], &rest[sp + 1..]);
    if !is_ident_bytes(tid) {
        return Err("bad transaction id (need 4 to 32 ident characters)".into());
    }
    let tid = String::from_utf8_lossy(tid).into_owned();
    if what.len() >= 3
        && what[..3].iter().all(u8::is_ascii_digit)
        && (what.len() == 3 || what[3] == b' ')
    {
        let code = u16::from(what[0] - b'0') * 100
            + u16::from(what[1] - b'0') * 10
            + u16::from(what[2] - b'0');
        let comment = match what.get(4..) {
            None | Some([]) => None,
            Some(c) => {
                Some(String::from_utf8(c.to_vec()).map_err(|_| "status comment is not UTF-8")?)
            }
        };
        return Ok((tid, StartLine::Response { code, comment }));
    }
    if !what.is_empty() && what.iter().all(u8::is_ascii_uppercase) {
        let method = String::from_utf8_lossy(what).into_owned();
        return Ok((tid, StartLine::Request { method }));
    }
    if !what.is_empty() && what.iter().all(u8::is_ascii_alphabetic) {
        return Err("method must be upper case".into());
    }
    Err("bad method or status code".into())
}

/// The part of a bodiless end-line after the seven dashes: `<tid><flag>`.
fn parse_bodiless_end(rest: &[u8], tid: &str, is_response: bool) -> Result<Flag, String> {
    let Some((&f, t)) = rest.split_last() else {
        return Err("end-line without transaction id".into());
    };
    if t != tid.as_bytes() {
        return Err(format!("end-line transaction id does not match `{tid}`"));
    }
    let flag = Flag::from_byte(f).ok_or("bad continuation flag (need `$`, `+` or `#`)")?;
    if is_response && flag != Flag::End {
        return Err("response end-line flag must be `$`".into());
    }
    Ok(flag)
}

/// `hname ":" SP hval` with `hname = ALPHA *token` and a UTF-8 value (§9).
fn parse_header(line: &[u8]) -> Result<(String, String), String> {
    let colon = memmem::find(line, b": ").ok_or("header line without `: `")?;
    let name = &line[..colon];
    if name.is_empty() || !name[0].is_ascii_alphabetic() || !name.iter().all(|&c| is_token_char(c))
    {
        return Err("bad header name".into());
    }
    let value =
        String::from_utf8(line[colon + 2..].to_vec()).map_err(|_| "header value is not UTF-8")?;
    Ok((String::from_utf8_lossy(name).into_owned(), value))
}

/// Decides how much of `buf` (stream offset `offset`) is body. Only a match of
/// `CRLF -------<tid>` can end a body, so everything before the first (possible) match is
/// body; a match not followed by a flag and CRLF is body too. Positions before `bs.scan` were
/// already ruled out, so each byte is searched a bounded number of times.
fn scan_body(bs: &mut BodyScan, buf: &[u8], offset: u64) -> Result<BodyStep, MsrpError> {
    let pat = &bs.pat[..];
    let p = pat.len();
    while let Some(j) = END_LINE_START.find(&buf[bs.scan..]) {
        let i = bs.scan + j;
        if buf.len() - i < p {
            // Too close to the end to hold the id: held back below if it may begin the end-line.
            break;
        }
        if &buf[i..i + p] != pat {
            bs.scan = i + 1;
            continue;
        }
        if i > 0 {
            bs.scan = 0;
            return Ok(BodyStep::Body(i));
        }
        if buf.len() < p + 3 {
            return Ok(BodyStep::NeedMore);
        }
        if &buf[p + 1..p + 3] == b"\r\n" {
            if let Some(flag) = Flag::from_byte(buf[p]) {
                if bs.is_response && flag != Flag::End {
                    return Err(MsrpError {
                        offset: offset + 2,
                        excerpt: excerpt_bytes(&buf[2..p + 3]),
                        msg: "response end-line flag must be `$`".into(),
                    });
                }
                return Ok(BodyStep::End(flag, p + 3));
            }
        }
        bs.scan = 1;
    }
    // Hold back the longest tail that is a prefix of the pattern.
    let from = bs.scan.max(buf.len().saturating_sub(p - 1));
    let keep = memchr::memchr_iter(b'\r', &buf[from..])
        .map(|x| from + x)
        .find(|&s| pat.starts_with(&buf[s..]))
        .unwrap_or(buf.len());
    bs.scan = 0;
    if keep > 0 {
        return Ok(BodyStep::Body(keep));
    }
    Ok(BodyStep::NeedMore)
}

/// A complete message, for tests, the checker and small control messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrpMessage {
    pub head: MsrpHead,
    pub body: Bytes,
    pub flag: Flag,
}

impl MsrpMessage {
    /// Head, body (only when `head.has_body`) and end-line.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = BytesMut::with_capacity(256 + self.body.len());
        self.head.encode(&mut out);
        if self.head.has_body {
            out.put_slice(&self.body);
        }
        encode_end(&mut out, &self.head.tid, self.flag, self.head.has_body);
        out.to_vec()
    }
}

/// Collects [`MsrpEvent`]s into whole [`MsrpMessage`]s (bounded by `max_body`).
pub struct MessageCollector {
    max_body: usize,
    current: Option<(MsrpHead, BytesMut)>,
}

impl MessageCollector {
    pub fn new(max_body: usize) -> Self {
        MessageCollector {
            max_body,
            current: None,
        }
    }

    /// Errors (offset 0: the collector does not see the stream) on events out of order, an
    /// end-line for another tid, or a body over `max_body`.
    pub fn feed(&mut self, ev: MsrpEvent) -> Result<Option<MsrpMessage>, MsrpError> {
        let err = |excerpt: &str, msg: &str| Err(str_err(excerpt, msg));
        match ev {
            MsrpEvent::Head(head) => {
                if let Some((cur, _)) = &self.current {
                    return err(&cur.tid, "head before the end of the previous message");
                }
                self.current = Some((head, BytesMut::new()));
                Ok(None)
            }
            MsrpEvent::Body(b) => {
                let Some((head, body)) = &mut self.current else {
                    return err("", "body outside a message");
                };
                if !head.has_body {
                    return err(&head.tid, "body in a bodiless message");
                }
                if body.len().saturating_add(b.len()) > self.max_body {
                    return err(
                        &head.tid,
                        &format!("body longer than {} bytes", self.max_body),
                    );
                }
                body.extend_from_slice(&b);
                Ok(None)
            }
            MsrpEvent::End { tid, flag } => {
                let Some((head, body)) = self.current.take() else {
                    return err(&tid, "end-line outside a message");
                };
                if head.tid != tid {
                    return err(&tid, "end-line transaction id does not match the head");
                }
                Ok(Some(MsrpMessage {
                    head,
                    body: body.freeze(),
                    flag,
                }))
            }
        }
    }
}

/// Splits a message of `total` bytes into chunk ranges of at most `chunk` bytes. Chunks
/// larger than 2048 bytes are sent interruptible, with range-end `*` (RFC 4975 §7.1.1).
///
/// Each item is `(range, flag, offset0, len)` with `offset0` the 0-based content offset.
/// `chunk == 0` means "no limit" (one chunk). An empty message is one `1-0/0` chunk.
pub fn chunk_ranges(total: u64, chunk: u64) -> Vec<(ByteRange, Flag, u64, u64)> {
    if total == 0 {
        return vec![(
            ByteRange {
                start: 1,
                end: Some(0),
                total: Some(0),
            },
            Flag::End,
            0,
            0,
        )];
    }
    let chunk = if chunk == 0 { total } else { chunk };
    let star = chunk > 2048;
    let mut out = Vec::with_capacity(total.div_ceil(chunk).min(1 << 20) as usize);
    let mut off = 0;
    while off < total {
        let len = chunk.min(total - off);
        let end = (!star).then_some(off + len);
        let flag = if off + len == total {
            Flag::End
        } else {
            Flag::More
        };
        out.push((
            ByteRange {
                start: off + 1,
                end,
                total: Some(total),
            },
            flag,
            off,
            len,
        ));
        off += len;
    }
    out
}

/// Tracks which bytes of a message arrived (any order, overlaps allowed) without holding them.
#[derive(Debug, Default, Clone)]
pub struct RangeTracker {
    /// Sorted, disjoint, non-adjacent inclusive intervals of 1-based positions.
    intervals: Vec<(u64, u64)>,
    total: Option<u64>,
}

impl RangeTracker {
    /// Records `len` bytes starting at 1-based `start`.
    pub fn add(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let mut s = start;
        let mut e = start.saturating_add(len - 1);
        // First interval that ends at or after s-1 (could merge), last that starts <= e+1.
        let lo = self
            .intervals
            .partition_point(|&(_, ie)| ie.saturating_add(1) < s);
        let hi = self
            .intervals
            .partition_point(|&(is, _)| is <= e.saturating_add(1));
        if lo < hi {
            s = s.min(self.intervals[lo].0);
            e = e.max(self.intervals[hi - 1].1);
        }
        self.intervals.splice(lo..hi, std::iter::once((s, e)));
    }
    /// Sets the total once known (from a `$` chunk or a numeric total).
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }
    pub fn total(&self) -> Option<u64> {
        self.total
    }
    /// Distinct bytes received.
    pub fn received(&self) -> u64 {
        self.intervals.iter().map(|&(s, e)| e - s + 1).sum()
    }
    pub fn is_complete(&self) -> bool {
        match self.total {
            None => false,
            Some(0) => true,
            Some(t) => self
                .intervals
                .first()
                .is_some_and(|&(s, e)| s <= 1 && e >= t),
        }
    }
    /// The received intervals, 1-based inclusive, in order.
    pub fn intervals(&self) -> &[(u64, u64)] {
        &self.intervals
    }
}

/// Reassembles a message in memory from chunks in any order (later chunk wins on overlap).
#[derive(Debug, Default)]
pub struct Reassembler {
    max: u64,
    data: Vec<u8>,
    tracker: RangeTracker,
}

impl Reassembler {
    pub fn new(max: u64) -> Self {
        Reassembler {
            max,
            data: Vec::new(),
            tracker: RangeTracker::default(),
        }
    }

    /// Adds a chunk given its Byte-Range, its bytes and its flag. The chunk's length is the
    /// data length (an interrupted chunk may be shorter than its range-end says); a `$` chunk
    /// fixes the total when the range's total is `*` (RFC 4975 §7.3.1). Errors on a chunk past
    /// `max`, past a known total, or totals that disagree.
    pub fn add(&mut self, range: ByteRange, data: &[u8], flag: Flag) -> Result<(), MsrpError> {
        let err = |msg: &str| Err(str_err(&range.to_string(), msg));
        if range.start == 0 {
            return err("Byte-Range start must be at least 1");
        }
        let len = data.len() as u64;
        let last = range.start - 1 + len; // last 1-based position (start - 1 when empty)
        if last > self.max || range.total.is_some_and(|t| t > self.max) {
            return err(&format!(
                "message larger than the limit of {} bytes",
                self.max
            ));
        }
        let total = match (range.total, flag) {
            (Some(t), _) => Some(t),
            (None, Flag::End) => Some(last),
            (None, _) => None,
        };
        if let Some(t) = total {
            match self.tracker.total() {
                Some(old) if old != t => {
                    return err(&format!("total {t} disagrees with earlier total {old}"))
                }
                _ => {}
            }
            if self.data.len() as u64 > t {
                return err("total is smaller than bytes already received");
            }
            self.tracker.set_total(t);
        }
        if self.tracker.total().is_some_and(|t| last > t) {
            return err("chunk extends past the total");
        }
        let (s, e) = ((range.start - 1) as usize, last as usize);
        if self.data.len() < e {
            self.data.resize(e, 0);
        }
        self.data[s..e].copy_from_slice(data);
        self.tracker.add(range.start, len);
        Ok(())
    }
    pub fn is_complete(&self) -> bool {
        self.tracker.is_complete()
    }
    /// The tracker of received positions, for progress and REPORT ranges.
    pub fn tracker(&self) -> &RangeTracker {
        &self.tracker
    }
    pub fn into_bytes(mut self) -> Option<Bytes> {
        let total = self.tracker.total()?;
        if !self.tracker.is_complete() {
            return None;
        }
        self.data.truncate(total as usize);
        Some(Bytes::from(self.data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Joins lines with CRLF, each line terminated.
    fn crlf(lines: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in lines {
            v.extend_from_slice(l.as_bytes());
            v.extend_from_slice(b"\r\n");
        }
        v
    }

    const T3_BODY: [&str; 5] = [
        "ager size..",
        "part 029 of a long test message, padded to exceed pager size..",
        "part 030 of a long test message, padded to exceed pager size..",
        "part 031 of a long test message, padded to exceed pager size..",
        "part 032 of a long test message, padded to exce",
    ];

    fn t3() -> Vec<u8> {
        let mut lines = vec![
            "MSRP u7Yq2Lk9FaW3 SEND",
            "To-Path: msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp",
            "From-Path: msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp",
            "Message-ID: Mq4Zr8Tn2Vb6",
            "Byte-Range: 2049-2300/2300",
            "Failure-Report: yes",
            "Success-Report: no",
            "Content-Type: message/cpim",
            "",
        ];
        lines.extend(T3_BODY);
        lines.push("-------u7Yq2Lk9FaW3$");
        crlf(&lines)
    }

    fn t3_body() -> Vec<u8> {
        T3_BODY.join("\r\n").into_bytes()
    }

    fn t4() -> Vec<u8> {
        crlf(&[
            "MSRP u7Yq2Lk9FaW3 200 OK",
            "To-Path: msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp",
            "From-Path: msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp",
            "-------u7Yq2Lk9FaW3$",
        ])
    }

    fn g6() -> Vec<u8> {
        crlf(&[
            "MSRP r8Nd2Kq5ZxT1 REPORT",
            "To-Path: msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp",
            "From-Path: msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp",
            "Message-ID: Mq4Zr8Tn2Vb6",
            "Byte-Range: 1-2300/2300",
            "Status: 000 200 OK",
            "-------r8Nd2Kq5ZxT1$",
        ])
    }

    fn i3() -> Vec<u8> {
        crlf(&[
            "MSRP b1Nd0Qx7LmP4 SEND",
            "To-Path: msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp",
            "From-Path: msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp",
            "Message-ID: e0Bind4Zq8Rt",
            "Byte-Range: 1-0/0",
            "-------b1Nd0Qx7LmP4$",
        ])
    }

    fn uri(s: &str) -> MsrpUri {
        MsrpUri::parse(s).unwrap()
    }

    /// What a parser produced: events with adjacent Body pieces merged, and the error if any.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        events: Vec<MsrpEvent>,
        error: Option<MsrpError>,
        offset: u64,
    }

    /// Drains the parser, checking invariants that must hold after every drain.
    fn drain(p: &mut MsrpParser, out: &mut Outcome) {
        if out.error.is_some() {
            return;
        }
        loop {
            match p.next() {
                Ok(Some(MsrpEvent::Body(b))) => {
                    assert!(!b.is_empty(), "empty Body event");
                    out.events.push(MsrpEvent::Body(b));
                }
                Ok(Some(ev)) => out.events.push(ev),
                Ok(None) => {
                    if let State::Body(bs) = &p.state {
                        assert!(
                            p.buf.len() <= bs.tid.len() + 11,
                            "held back {} bytes",
                            p.buf.len()
                        );
                    }
                    break;
                }
                Err(e) => {
                    assert_eq!(p.next(), Err(e.clone()), "error must repeat");
                    out.error = Some(e);
                    break;
                }
            }
        }
        out.offset = p.offset();
    }

    /// Merges adjacent Body pieces (linear, so byte-by-byte runs over big bodies stay fast).
    fn merge_bodies(events: Vec<MsrpEvent>) -> Vec<MsrpEvent> {
        let mut out = Vec::new();
        let mut acc: Option<Vec<u8>> = None;
        for ev in events {
            match ev {
                MsrpEvent::Body(b) => acc.get_or_insert_with(Vec::new).extend_from_slice(&b),
                other => {
                    if let Some(a) = acc.take() {
                        out.push(MsrpEvent::Body(a.into()));
                    }
                    out.push(other);
                }
            }
        }
        if let Some(a) = acc {
            out.push(MsrpEvent::Body(a.into()));
        }
        out
    }

    fn run_pieces<'a>(limits: Limits, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
        let mut p = MsrpParser::new(limits);
        let mut out = Outcome {
            events: vec![],
            error: None,
            offset: 0,
        };
        for piece in pieces {
            p.push(piece);
            drain(&mut p, &mut out);
        }
        out.events = merge_bodies(out.events);
        out
    }

    fn run(data: &[u8]) -> Outcome {
        run_pieces(Limits::default(), [data])
    }

    /// Every two-piece split and byte-by-byte feeding give the same outcome as one push.
    fn assert_split_invariant(limits: Limits, data: &[u8]) -> Outcome {
        let whole = run_pieces(limits, [data]);
        for i in 0..=data.len() {
            let (a, b) = data.split_at(i);
            assert_eq!(run_pieces(limits, [a, b]), whole, "split at {i}");
        }
        assert_eq!(run_pieces(limits, data.chunks(1)), whole, "byte by byte");
        assert_eq!(run_pieces(limits, data.chunks(7)), whole, "7-byte reads");
        whole
    }

    fn head_of(ev: &MsrpEvent) -> &MsrpHead {
        match ev {
            MsrpEvent::Head(h) => h,
            other => panic!("expected head, got {other:?}"),
        }
    }

    fn end(tid: &str, flag: Flag) -> MsrpEvent {
        MsrpEvent::End {
            tid: tid.into(),
            flag,
        }
    }

    fn body(b: &[u8]) -> MsrpEvent {
        MsrpEvent::Body(Bytes::copy_from_slice(b))
    }

    // ---------- URIs ----------

    #[test]
    fn uri_parse_and_display() {
        let u = uri("msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp");
        assert_eq!(u.scheme, Scheme::Msrp);
        assert_eq!(u.host, "127.0.0.2");
        assert_eq!(u.port, 20002);
        assert_eq!(u.session_id.as_deref(), Some("pfa-Q3v9Lx2W"));
        assert_eq!(u.transport, "tcp");
        assert_eq!(u.to_string(), "msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp");
        assert_eq!(u.socket_addr(), Some("127.0.0.2:20002".parse().unwrap()));

        let v6 = uri("msrp://[::1]:2855/s;tcp");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "msrp://[::1]:2855/s;tcp");
        assert_eq!(v6.socket_addr(), Some("[::1]:2855".parse().unwrap()));

        let full = uri("MSRPS://bob@relay.example.com:9000/a+b=c/d;TCP;foo;x=y");
        assert_eq!(full.scheme, Scheme::Msrps);
        assert_eq!(full.userinfo.as_deref(), Some("bob"));
        assert_eq!(full.host, "relay.example.com");
        assert_eq!(full.session_id.as_deref(), Some("a+b=c/d"));
        assert_eq!(full.transport, "TCP");
        assert_eq!(full.params, vec!["foo".to_string(), "x=y".to_string()]);
        assert_eq!(full.socket_addr(), None);
        assert_eq!(
            full.to_string(),
            "msrps://bob@relay.example.com:9000/a+b=c/d;TCP;foo;x=y"
        );

        let no_sid = uri("msrp://h:1;tcp");
        assert_eq!(no_sid.session_id, None);
        assert_eq!(no_sid.to_string(), "msrp://h:1;tcp");
        assert_eq!(uri("msrp://[2001:db8::5]:2855/s1;tcp").host, "2001:db8::5");
    }

    #[test]
    fn uri_errors() {
        for bad in [
            "msrp://127.0.0.1/s;tcp",    // no port
            "msrp://127.0.0.1:/s;tcp",   // empty port
            "msrp://127.0.0.1:+5/s;tcp", // sign
            "msrp://127.0.0.1:70000/s;tcp",
            "msrp://127.0.0.1:2855/s",  // no transport
            "msrp://127.0.0.1:2855/s;", // empty transport
            "msrp://127.0.0.1:2855;",
            "msrp://127.0.0.1:2855/s;t-c",
            "sip://127.0.0.1:2855/s;tcp",
            "msrp:127.0.0.1:2855/s;tcp",
            "msrp://:2855/s;tcp",
            "msrp://[::1/s;tcp",
            "msrp://[zz::1]:2855/s;tcp",
            "msrp://[::1]/s;tcp",
            "msrp://::1:2855/s;tcp",
            "msrp://h:1/;tcp",
            "msrp://h:1/a b;tcp",
            "msrp://h:1/s;tcp;",
            "msrp://h:1/s;tcp;=x",
            "msrp://@h:1/s;tcp",
            "msrp://h st:1/s;tcp",
            "",
        ] {
            let e = MsrpUri::parse(bad).expect_err(bad);
            assert_eq!(e.offset, 0);
            assert!(!e.msg.is_empty());
        }
        assert!(MsrpUri::parse("msrp://1.2.3.4/s;tcp")
            .unwrap_err()
            .msg
            .contains("port"));
        assert!(MsrpUri::parse("msrp://1.2.3.4:1/s")
            .unwrap_err()
            .msg
            .contains("transport"));
    }

    #[test]
    fn uri_list() {
        let l = MsrpUri::parse_list(" msrp://a:1/x;tcp  msrp://b:2/y;tcp ").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(format_uri_list(&l), "msrp://a:1/x;tcp msrp://b:2/y;tcp");
        assert!(MsrpUri::parse_list("").is_err());
        assert!(MsrpUri::parse_list("   ").is_err());
        assert!(MsrpUri::parse_list("msrp://a:1/x;tcp msrp://b/y;tcp").is_err());
    }

    #[test]
    fn uri_matching() {
        let a = uri("msrp://alice@127.0.0.1:2855/abc;tcp");
        assert!(a.matches(&uri("MSRP://127.0.0.1:2855/abc;TCP")));
        assert!(a.matches(&uri("msrp://bob@127.0.0.1:2855/abc;tcp;x=1")));
        assert!(!a.matches(&uri("msrp://127.0.0.1:2856/abc;tcp")));
        assert!(!a.matches(&uri("msrp://127.0.0.1:2855/ABC;tcp")));
        assert!(!a.matches(&uri("msrp://127.0.0.1:2855;tcp")));
        assert!(!a.matches(&uri("msrps://127.0.0.1:2855/abc;tcp")));
        assert!(!a.matches(&uri("msrp://127.0.0.1:2855/abc;udp")));
        assert!(!a.matches(&uri("msrp://127.0.0.2:2855/abc;tcp")));
        assert!(uri("msrp://Host.Example:1/s;tcp").matches(&uri("msrp://host.example:1/s;tcp")));
        // Addresses compare as addresses, not strings.
        assert!(uri("msrp://[::1]:1/s;tcp").matches(&uri("msrp://[0:0:0:0:0:0:0:1]:1/s;tcp")));
        assert!(uri("msrp://[2001:DB8::5]:1/s;tcp").matches(&uri("msrp://[2001:db8::5]:1/s;tcp")));
        assert!(!uri("msrp://localhost:1/s;tcp").matches(&uri("msrp://127.0.0.1:1/s;tcp")));
    }

    // ---------- Byte-Range ----------

    #[test]
    fn byte_range_parse_display() {
        for (s, r) in [
            (
                "1-2048/2300",
                ByteRange {
                    start: 1,
                    end: Some(2048),
                    total: Some(2300),
                },
            ),
            (
                "2049-*/2300",
                ByteRange {
                    start: 2049,
                    end: None,
                    total: Some(2300),
                },
            ),
            (
                "1-*/*",
                ByteRange {
                    start: 1,
                    end: None,
                    total: None,
                },
            ),
            (
                "5-10/*",
                ByteRange {
                    start: 5,
                    end: Some(10),
                    total: None,
                },
            ),
            (
                "1-0/0",
                ByteRange {
                    start: 1,
                    end: Some(0),
                    total: Some(0),
                },
            ),
            (
                "2301-2300/2300",
                ByteRange {
                    start: 2301,
                    end: Some(2300),
                    total: Some(2300),
                },
            ),
        ] {
            assert_eq!(ByteRange::parse(s).unwrap(), r, "{s}");
            assert_eq!(r.to_string(), s);
        }
        assert_eq!(ByteRange::parse(" 1-2/3 ").unwrap().to_string(), "1-2/3");
    }

    #[test]
    fn byte_range_errors() {
        for bad in [
            "0-10/10", "1-11/10", "5-3/10", "1-2", "1/2", "-2/3", "a-2/3", "1-b/3", "1-2/c",
            "+1-2/3", "1-2/3/4", "*-2/3", "", "12-*/10", "1-2/ 3",
        ] {
            assert!(ByteRange::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    // ---------- writer ----------

    #[test]
    fn t4_response_byte_exact() {
        let mut out = BytesMut::new();
        encode_response(
            &mut out,
            "u7Yq2Lk9FaW3",
            200,
            "OK",
            &uri("msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp"),
            &uri("msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp"),
        );
        assert_eq!(&out[..], &t4()[..]);
        assert_eq!(out.len(), 150);

        let mut out = BytesMut::new();
        encode_response(
            &mut out,
            "abcd",
            481,
            "",
            &uri("msrp://a:1;tcp"),
            &uri("msrp://b:2;tcp"),
        );
        assert!(out.starts_with(b"MSRP abcd 481\r\n"));
    }

    #[test]
    fn i3_send_head_byte_exact() {
        let head = send_head(
            "b1Nd0Qx7LmP4",
            &uri("msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp"),
            &uri("msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp"),
            "e0Bind4Zq8Rt",
            ByteRange {
                start: 1,
                end: Some(0),
                total: Some(0),
            },
            None,
        );
        assert!(!head.has_body);
        let msg = MsrpMessage {
            head,
            body: Bytes::new(),
            flag: Flag::End,
        };
        assert_eq!(msg.encode(), i3());
        assert_eq!(i3().len(), 193);
    }

    #[test]
    fn send_head_with_body_orders_headers() {
        let head = send_head(
            "tid1",
            &uri("msrp://a:1/x;tcp"),
            &uri("msrp://b:2/y;tcp"),
            "mid1",
            ByteRange {
                start: 1,
                end: None,
                total: Some(5),
            },
            Some("text/plain"),
        );
        let names: Vec<_> = head.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "To-Path",
                "From-Path",
                "Message-ID",
                "Byte-Range",
                "Content-Type"
            ]
        );
        assert!(head.has_body);
        let msg = MsrpMessage {
            head,
            body: Bytes::from_static(b"hello"),
            flag: Flag::End,
        };
        let enc = msg.encode();
        assert!(enc.ends_with(b"Content-Type: text/plain\r\n\r\nhello\r\n-------tid1$\r\n"));
        let out = run(&enc);
        assert_eq!(
            out.events,
            vec![
                MsrpEvent::Head(msg.head.clone()),
                body(b"hello"),
                end("tid1", Flag::End)
            ]
        );
    }

    #[test]
    fn encode_end_forms() {
        let mut out = BytesMut::new();
        encode_end(&mut out, "abcd", Flag::More, true);
        encode_end(&mut out, "abcd", Flag::Abort, false);
        assert_eq!(&out[..], b"\r\n-------abcd+\r\n-------abcd#\r\n");
    }

    #[test]
    fn idents() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = new_ident(&mut rng);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(is_ident(&a));
        assert_ne!(a, new_ident(&mut rng));
        // One seed, one sequence: identifiers are reproducible.
        assert_eq!(a, new_ident(&mut StdRng::seed_from_u64(1)));
        assert!(is_ident("a1.-+%="));
        assert!(!is_ident("abc"));
        assert!(!is_ident(&"a".repeat(33)));
        assert!(is_ident(&"a".repeat(32)));
        assert!(!is_ident(".abc"));
        assert!(!is_ident("ab_c"));
    }

    // ---------- parser on worked examples (a final chunk, its 200, a binding SEND, a REPORT) ----------

    #[test]
    fn t3_parses() {
        let data = t3();
        assert_eq!(data.len(), 527);
        let out = assert_split_invariant(Limits::default(), &data);
        assert_eq!(out.error, None);
        assert_eq!(out.events.len(), 3);
        let h = head_of(&out.events[0]);
        assert_eq!(h.tid, "u7Yq2Lk9FaW3");
        assert_eq!(h.method(), Some("SEND"));
        assert_eq!(h.code(), None);
        assert!(h.has_body);
        assert_eq!(
            h.to_path().unwrap(),
            vec![uri("msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp")]
        );
        assert_eq!(
            h.from_path().unwrap(),
            vec![uri("msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp")]
        );
        assert_eq!(h.message_id(), Some("Mq4Zr8Tn2Vb6"));
        assert_eq!(h.header("failure-report"), Some("yes"));
        assert_eq!(h.header("X-Nope"), None);
        assert_eq!(
            h.byte_range().unwrap().unwrap(),
            ByteRange {
                start: 2049,
                end: Some(2300),
                total: Some(2300)
            }
        );
        assert_eq!(h.content_type(), Some("message/cpim"));
        assert_eq!(out.events[1], body(&t3_body()));
        assert_eq!(t3_body().len(), 252);
        assert_eq!(out.events[2], end("u7Yq2Lk9FaW3", Flag::End));
        assert_eq!(out.offset, 527);

        // Re-encoding the collected message reproduces the bytes.
        let mut c = MessageCollector::new(1 << 20);
        let mut msgs: Vec<_> = out
            .events
            .into_iter()
            .filter_map(|e| c.feed(e).unwrap())
            .collect();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs.pop().unwrap().encode(), data);
    }

    #[test]
    fn t4_g6_i3_parse() {
        let out = assert_split_invariant(Limits::default(), &t4());
        assert_eq!(out.error, None);
        let h = head_of(&out.events[0]);
        assert_eq!(h.code(), Some(200));
        assert_eq!(h.method(), None);
        assert_eq!(
            h.start,
            StartLine::Response {
                code: 200,
                comment: Some("OK".into())
            }
        );
        assert!(!h.has_body);
        assert_eq!(h.headers.len(), 2);
        assert_eq!(out.events[1..], [end("u7Yq2Lk9FaW3", Flag::End)]);

        let g6_data = g6();
        assert_eq!(g6_data.len(), 221);
        let out = assert_split_invariant(Limits::default(), &g6_data);
        assert_eq!(out.error, None);
        let h = head_of(&out.events[0]);
        assert_eq!(h.method(), Some("REPORT"));
        assert_eq!(h.header("status"), Some("000 200 OK"));
        assert_eq!(out.events[1..], [end("r8Nd2Kq5ZxT1", Flag::End)]);
        // encode_report writes the worked example byte for byte.
        let mut enc = BytesMut::new();
        encode_report(
            &mut enc,
            "r8Nd2Kq5ZxT1",
            &MsrpUri::parse("msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp").unwrap(),
            &MsrpUri::parse("msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp").unwrap(),
            "Mq4Zr8Tn2Vb6",
            ByteRange::parse("1-2300/2300").unwrap(),
            200,
            "OK",
        );
        assert_eq!(&enc[..], &g6_data[..]);

        let out = assert_split_invariant(Limits::default(), &i3());
        assert_eq!(out.error, None);
        let h = head_of(&out.events[0]);
        assert!(!h.has_body);
        assert_eq!(h.byte_range().unwrap().unwrap().to_string(), "1-0/0");
        assert_eq!(out.events[1..], [end("b1Nd0Qx7LmP4", Flag::End)]);
        assert_eq!(out.offset, 193);

        // Every example, encoded back from its parsed form, is byte-identical.
        for data in [t4(), g6(), i3()] {
            let out = run(&data);
            let mut c = MessageCollector::new(0);
            let msg = out
                .events
                .into_iter()
                .find_map(|e| c.feed(e).unwrap())
                .unwrap();
            assert_eq!(msg.encode(), data);
        }
    }

    #[test]
    fn stream_of_examples() {
        let mut data = i3();
        data.extend(t4());
        data.extend(t3());
        data.extend(t4());
        data.extend(g6());
        let out = assert_split_invariant(Limits::default(), &data);
        assert_eq!(out.error, None);
        assert_eq!(out.events.len(), 11);
        assert_eq!(out.offset, data.len() as u64);
    }

    // ---------- generated messages ----------

    /// Builds a SEND with `body` and returns the wire bytes and expected events.
    fn gen_message(tid: &str, body_bytes: &[u8], flag: Flag) -> (Vec<u8>, Vec<MsrpEvent>) {
        let head = send_head(
            tid,
            &uri("msrp://127.0.0.1:1/a;tcp"),
            &uri("msrp://127.0.0.1:2/b;tcp"),
            "mid0",
            ByteRange {
                start: 1,
                end: None,
                total: None,
            },
            Some("application/octet-stream"),
        );
        let msg = MsrpMessage {
            head: head.clone(),
            body: Bytes::copy_from_slice(body_bytes),
            flag,
        };
        let mut ev = vec![MsrpEvent::Head(head)];
        if !body_bytes.is_empty() {
            ev.push(body(body_bytes));
        }
        ev.push(end(tid, flag));
        (msg.encode(), ev)
    }

    /// Random body made of fragments that look like end-lines without being one for `tid`.
    fn tricky_body(rng: &mut StdRng, tid: &str, len_hint: usize) -> Vec<u8> {
        let mut b = Vec::new();
        while b.len() < len_hint {
            match rng.random_range(0..10) {
                0 => b.extend_from_slice(b"-------"),
                1 => b.extend_from_slice(b"\r\n-------other9tid$\r\n"),
                2 => {
                    // The real tid followed by a non-flag, or a flag without CRLF.
                    let x = [b'X', b'\r', b'\n', b'-', b'*'][rng.random_range(0..5)];
                    b.extend_from_slice(b"\r\n-------");
                    b.extend_from_slice(tid.as_bytes());
                    b.push(x);
                    if rng.random_bool(0.5) {
                        b.extend_from_slice(b"\r\n");
                    }
                }
                3 => {
                    b.extend_from_slice(b"\r\n-------");
                    b.extend_from_slice(tid.as_bytes());
                    b.push(b"$+#"[rng.random_range(0..3)]);
                    b.extend_from_slice([&b"X"[..], b"\r", b"\rX", b"\n"][rng.random_range(0..4)]);
                }
                4 => {
                    // A prefix of the tid (not the full tid), then CRLF.
                    b.extend_from_slice(b"\r\n-------");
                    b.extend_from_slice(&tid.as_bytes()[..rng.random_range(0..tid.len())]);
                    b.extend_from_slice(b"$\r\n");
                }
                5 => b.extend_from_slice(b"\r\n"),
                6 => b.extend_from_slice(b"\r\r\n\n-"),
                _ => {
                    let n = rng.random_range(1..20);
                    b.extend((0..n).map(|_| rng.random::<u8>()));
                }
            }
        }
        // A body ending in CR, or in the dashes, is legal too.
        if rng.random_bool(0.2) {
            b.extend_from_slice(
                [&b"\r"[..], b"\r\n", b"-------", b"\r\n-------"][rng.random_range(0..4)],
            );
        }
        b
    }

    #[test]
    fn generated_messages_all_splits() {
        let mut rng = StdRng::seed_from_u64(4975);
        let flags = [Flag::End, Flag::More, Flag::Abort];
        for round in 0..40 {
            let tid = if round % 3 == 0 {
                "abcd".to_string()
            } else {
                new_ident(&mut rng)
            };
            let body_bytes = if round % 10 == 0 {
                Vec::new()
            } else {
                {
                    let n = rng.random_range(1..120);
                    tricky_body(&mut rng, &tid, n)
                }
            };
            let (data, expected) = gen_message(&tid, &body_bytes, flags[round % 3]);
            let out = assert_split_invariant(Limits::default(), &data);
            assert_eq!(out.error, None, "round {round}");
            assert_eq!(out.events, expected, "round {round}");
        }
    }

    #[test]
    fn generated_streams_random_splits() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..30 {
            let mut data = Vec::new();
            let mut expected = Vec::new();
            for _ in 0..rng.random_range(1..6) {
                let tid = new_ident(&mut rng);
                let (d, e) = if rng.random_bool(0.3) {
                    let d = if rng.random_bool(0.5) { i3() } else { t4() };
                    let e = run(&d).events;
                    (d, e)
                } else {
                    let n = rng.random_range(0..3000);
                    let b = tricky_body(&mut rng, &tid, n);
                    gen_message(&tid, &b, Flag::More)
                };
                data.extend(d);
                expected.extend(e);
            }
            let whole = run(&data);
            assert_eq!(whole.events, expected);
            for _ in 0..20 {
                let mut cuts: Vec<usize> = (0..rng.random_range(1..40))
                    .map(|_| rng.random_range(0..=data.len()))
                    .collect();
                cuts.push(0);
                cuts.push(data.len());
                cuts.sort_unstable();
                let pieces = cuts.windows(2).map(|w| &data[w[0]..w[1]]);
                assert_eq!(run_pieces(Limits::default(), pieces), whole);
            }
            assert_eq!(run_pieces(Limits::default(), data.chunks(1)), whole);
        }
    }

    #[test]
    fn non_flag_after_tid_is_body() {
        let tid = "abcd";
        for tail in [&b"X\r\n"[..], b"$X\r\n", b"$\rX", b"\r\n", b"$$\r\n"] {
            let mut b = b"x\r\n-------abcd".to_vec();
            b.extend_from_slice(tail);
            b.extend_from_slice(b"y");
            let (data, expected) = gen_message(tid, &b, Flag::End);
            assert_eq!(
                assert_split_invariant(Limits::default(), &data).events,
                expected
            );
        }
    }

    /// The search finds the part common to every end-line (`CRLF -------`) and compares the id
    /// after it: another transaction's end-line, a prefix of the id, or a dash run that begins
    /// again right after its own start stays body.
    #[test]
    fn end_lines_of_other_ids_are_body() {
        let tid = "abcd";
        for b in [
            &b"x\r\n-------wxyz$\r\ny"[..],
            b"x\r\n-------abc$\r\ny",
            b"x\r\n-------bcd$\r\ny",
            b"\r\n-------\r\n-------ab",
            b"x\r\n-------",
        ] {
            let (data, expected) = gen_message(tid, b, Flag::End);
            assert_eq!(
                assert_split_invariant(Limits::default(), &data).events,
                expected,
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
    }

    #[test]
    fn empty_body_yields_no_body_event() {
        let head = b"MSRP abcd SEND\r\nTo-Path: msrp://a:1;tcp\r\nFrom-Path: msrp://b:1;tcp\r\nContent-Type: t/p\r\n\r\n";
        let mut data = head.to_vec();
        data.extend_from_slice(b"\r\n-------abcd$\r\n");
        let out = assert_split_invariant(Limits::default(), &data);
        assert_eq!(out.error, None);
        assert!(head_of(&out.events[0]).has_body);
        assert_eq!(out.events[1..], [end("abcd", Flag::End)]);

        // Without the framing CRLF the end-line is body, so the message is still open.
        let mut data = head.to_vec();
        data.extend_from_slice(b"-------abcd$\r\n");
        let out = run(&data);
        assert_eq!(out.error, None);
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[1], body(b"-------abcd$"));
    }

    #[test]
    fn holds_back_only_possible_end_line() {
        let mut p = MsrpParser::new(Limits::default());
        p.push(b"MSRP abcd SEND\r\nContent-Type: t/p\r\n\r\nhello");
        assert!(matches!(p.next(), Ok(Some(MsrpEvent::Head(_)))));
        assert_eq!(p.next(), Ok(Some(body(b"hello"))));
        assert_eq!(p.next(), Ok(None));
        assert_eq!(p.buffered(), 0);
        p.push(b"\r\n-----");
        assert_eq!(p.next(), Ok(None));
        assert_eq!(p.buffered(), 7);
        p.push(b"--abcd$\r");
        assert_eq!(p.next(), Ok(None));
        assert_eq!(p.buffered(), 4 + 11);
        p.push(b"X");
        assert_eq!(p.next(), Ok(Some(body(b"\r\n-------abcd$\rX"))));
        p.push(b"\r\n-------abcd+\r\n");
        assert_eq!(p.next(), Ok(Some(end("abcd", Flag::More))));
        assert!(p.is_idle());
        assert_eq!(p.offset(), 74);
    }

    #[test]
    fn direct_encoders_write_the_bytes_of_the_built_heads() {
        let uris = [
            uri("msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp"),
            uri("MSRPS://bob@relay.example.com:9000/a+b=c/d;TCP;foo;x=y"),
            uri("msrp://[2001:db8::5]:2855/s1;tcp"),
            uri("msrp://h:1;tcp"),
            uri("msrp://h:0/s;tcp"),
        ];
        let ranges = [
            ByteRange {
                start: 1,
                end: None,
                total: None,
            },
            ByteRange {
                start: 65537,
                end: Some(131072),
                total: Some(1 << 40),
            },
            ByteRange {
                start: 1,
                end: Some(0),
                total: Some(0),
            },
        ];
        for u in &uris {
            let mut b = BytesMut::new();
            u.encode_into(&mut b);
            assert_eq!(&b[..], u.to_string().as_bytes());
            for (i, v) in uris.iter().enumerate() {
                for r in &ranges {
                    for ct in [None, Some("message/cpim")] {
                        let mut want = BytesMut::new();
                        send_head("tid0", u, v, "mid1", *r, ct).encode(&mut want);
                        let mut got = BytesMut::new();
                        encode_send_head(&mut got, "tid0", u, v, "mid1", *r, ct);
                        assert_eq!(got, want, "send head {u} {v} {r} {ct:?}");
                    }
                }
                for (code, comment) in [(200, "OK"), (481, "No Such Session"), (200, ""), (7, "x")]
                {
                    let tid = format!("t{i}abc");
                    let mut want = BytesMut::new();
                    MsrpHead {
                        tid: tid.clone(),
                        start: StartLine::Response {
                            code,
                            comment: (!comment.is_empty()).then(|| comment.to_string()),
                        },
                        headers: vec![
                            ("To-Path".to_string(), u.to_string()),
                            ("From-Path".to_string(), v.to_string()),
                        ],
                        has_body: false,
                    }
                    .encode(&mut want);
                    encode_end(&mut want, &tid, Flag::End, false);
                    let mut got = BytesMut::new();
                    encode_response(&mut got, &tid, code, comment, u, v);
                    assert_eq!(got, want, "response {code} {comment:?}");
                }
            }
        }
        for r in &ranges {
            let mut b = BytesMut::new();
            r.encode_into(&mut b);
            assert_eq!(&b[..], r.to_string().as_bytes());
        }
    }

    #[test]
    fn a_read_behind_a_leftover_is_handed_out_as_slices_of_itself() {
        let tid = "Zq8Rt0Bind4";
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (data, _) = gen_message(tid, &content, Flag::End);
        // The first read ends inside the head; the second brings the rest.
        let cut = 40;
        let mut p = MsrpParser::new(Limits::default());
        p.push_bytes(Bytes::copy_from_slice(&data[..cut]));
        assert_eq!(p.next(), Ok(None));
        let second = Bytes::copy_from_slice(&data[cut..]);
        let range = second.as_ptr() as usize..second.as_ptr() as usize + second.len();
        p.push_bytes(second);
        let mut body = Vec::new();
        let mut copied = 0;
        while let Some(ev) = p.next().unwrap() {
            if let MsrpEvent::Body(b) = ev {
                if !range.contains(&(b.as_ptr() as usize)) {
                    copied += b.len();
                }
                body.extend_from_slice(&b);
            }
        }
        assert_eq!(body, content);
        assert!(copied <= JOIN, "{copied} body bytes copied");
    }

    #[test]
    fn large_body_in_64k_reads_is_linear() {
        let tid = "Zq8Rt0Bind4";
        let mut rng = StdRng::seed_from_u64(1);
        let mut content = vec![0u8; 16 << 20];
        rng.fill(&mut content[..]);
        // Near-misses every 4 KiB, including some that straddle reads.
        for k in (100..content.len() - 64).step_by(4093) {
            content[k..k + 9].copy_from_slice(b"\r\n-------");
        }
        let (data, _) = gen_message(tid, &content, Flag::End);
        let mut p = MsrpParser::new(Limits::default());
        let mut got = 0usize;
        let mut body_events = 0usize;
        let mut ended = false;
        let reads = data.chunks(64 * 1024);
        let n_reads = reads.len();
        for r in reads {
            p.push(r);
            while let Some(ev) = p.next().unwrap() {
                match ev {
                    MsrpEvent::Body(b) => {
                        assert_eq!(&b[..], &content[got..got + b.len()]);
                        got += b.len();
                        body_events += 1;
                    }
                    MsrpEvent::End { flag, .. } => {
                        assert_eq!(flag, Flag::End);
                        ended = true;
                    }
                    MsrpEvent::Head(_) => {}
                }
            }
            assert!(p.buffered() <= tid.len() + 11);
        }
        assert!(ended);
        assert_eq!(got, content.len());
        // A read that meets a held-back tail gives two pieces: the tail joined to the read's
        // first bytes, then the rest of the read as a slice of it.
        assert!(
            body_events <= 2 * n_reads + 1,
            "{body_events} pieces for {n_reads} reads"
        );

        // Byte-by-byte over 1 MiB would take far too long if held bytes were rescanned from
        // the start of the body.
        let content = vec![b'-'; 1 << 20];
        let (data, expected) = gen_message(tid, &content, Flag::End);
        assert_eq!(
            run_pieces(Limits::default(), data.chunks(1)).events,
            expected
        );
    }

    // ---------- parser errors ----------

    /// Parses `data` whole and byte by byte; both must fail with the same error.
    fn parse_err(limits: Limits, data: &[u8]) -> MsrpError {
        let whole = run_pieces(limits, [data]);
        assert_eq!(run_pieces(limits, data.chunks(1)), whole);
        let mut p = MsrpParser::new(limits);
        p.push(data);
        drain(
            &mut p,
            &mut Outcome {
                events: vec![],
                error: None,
                offset: 0,
            },
        );
        p.push(b"MSRP abcd SEND\r\n-------abcd$\r\n");
        let e = whole.error.expect("expected an error");
        assert_eq!(p.next(), Err(e.clone()), "error is sticky after more input");
        e
    }

    fn perr(data: &[u8]) -> MsrpError {
        parse_err(Limits::default(), data)
    }

    #[test]
    fn start_line_errors() {
        let cases: [(&[u8], &str); 10] = [
            (b"HTTP/1.1 200 OK\r\n", "MSRP"),
            (b"msrp abcd SEND\r\n", "MSRP"),
            (b"MSRP abcd send\r\n-------abcd$\r\n", "upper case"),
            (b"MSRP abcd Send\r\n", "upper case"),
            (b"MSRP abc SEND\r\n", "transaction id"),
            (
                b"MSRP aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa SEND\r\n",
                "transaction id",
            ),
            (b"MSRP -abc SEND\r\n", "transaction id"),
            (b"MSRP abcd\r\n", "method"),
            (b"MSRP abcd 20 OK\r\n", "method"),
            (b"MSRP abcd SEND\n", "CRLF"),
        ];
        for (data, want) in cases {
            let e = perr(data);
            assert!(
                e.msg.contains(want),
                "{:?}: {e}",
                String::from_utf8_lossy(data)
            );
            assert_eq!(e.offset, 0);
            assert!(!e.excerpt.is_empty());
        }
        // 32 characters is fine, 33 is not.
        let ok = format!(
            "MSRP {} SEND\r\n-------{}$\r\n",
            "a".repeat(32),
            "a".repeat(32)
        );
        assert_eq!(run(ok.as_bytes()).error, None);
        let e = perr(b"MSRP abcd 2000 OK\r\n");
        assert!(e.msg.contains("method or status"));
        // Error offset points at the bad message in the stream.
        let mut data = t4();
        data.extend_from_slice(b"MSRP abcd send\r\n");
        let e = perr(&data);
        assert_eq!(e.offset, 150);
        assert!(e.excerpt.starts_with("MSRP abcd send"));
    }

    #[test]
    fn header_errors() {
        let e = perr(b"MSRP abcd SEND\r\nTo-Path:msrp://a:1;tcp\r\n");
        assert!(e.msg.contains(": "), "{e}");
        assert_eq!(e.offset, 16);
        let e = perr(b"MSRP abcd SEND\r\nTo Path: x\r\n");
        assert!(e.msg.contains("header name"));
        let e = perr(b"MSRP abcd SEND\r\n: x\r\n");
        assert!(e.msg.contains("header name"));
        let e = perr(b"MSRP abcd SEND\r\nA: x\ry\r\n");
        assert!(e.msg.contains("CR"));
        let e = perr(b"MSRP abcd SEND\r\nA: \xff\r\n");
        assert!(e.msg.contains("UTF-8"));
        let e = perr(b"MSRP abcd SEND\r\nA: x\n");
        assert!(e.msg.contains("CRLF"));
    }

    #[test]
    fn too_many_headers() {
        let limits = Limits {
            max_head: 16 * 1024,
            max_headers: 3,
        };
        let ok = b"MSRP abcd SEND\r\nA: 1\r\nB: 2\r\nC: 3\r\n-------abcd$\r\n";
        assert_eq!(run_pieces(limits, [&ok[..]]).error, None);
        let e = parse_err(
            limits,
            b"MSRP abcd SEND\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n-------abcd$\r\n",
        );
        assert!(e.msg.contains("more than 3 headers"), "{e}");
    }

    #[test]
    fn head_too_long() {
        let msg = b"MSRP abcd SEND\r\nA: 1\r\n-------abcd$\r\n"; // 36 bytes
        assert_eq!(msg.len(), 36);
        for max_head in [0, 5, 15, 16, 20, 22, 35] {
            let limits = Limits {
                max_head,
                max_headers: 64,
            };
            let e = parse_err(limits, msg);
            assert!(e.msg.contains("head longer than"), "{max_head}: {e}");
            assert_eq!(e.offset, 0);
        }
        assert_eq!(
            run_pieces(
                Limits {
                    max_head: 36,
                    max_headers: 64
                },
                [&msg[..]]
            )
            .error,
            None
        );
        // A stream with no line end fails once the limit is passed, without more input.
        let limits = Limits {
            max_head: 100,
            max_headers: 64,
        };
        let mut p = MsrpParser::new(limits);
        p.push(&[b'M'; 100]);
        assert_eq!(p.next(), Ok(None));
        p.push(b"M");
        assert!(p.next().unwrap_err().msg.contains("head longer"));
        // Split-invariant even when the limit falls around the CRLF of a bad line.
        let bad = b"MSRP abcd SEND\r\nbogus\r\n";
        for max_head in 18..26 {
            assert_split_invariant(
                Limits {
                    max_head,
                    max_headers: 64,
                },
                bad,
            );
        }
    }

    #[test]
    fn bodiless_end_line_errors() {
        let e = perr(b"MSRP abcd SEND\r\nA: 1\r\n-------abce$\r\n");
        assert!(e.msg.contains("does not match"), "{e}");
        assert_eq!(e.offset, 22);
        let e = perr(b"MSRP abcd SEND\r\n-------abcd\r\n");
        assert!(e.msg.contains("does not match"), "{e}");
        let e = perr(b"MSRP abcd SEND\r\n-------\r\n");
        assert!(e.msg.contains("transaction id"), "{e}");
        let e = perr(b"MSRP abcd SEND\r\n-------abcd!\r\n");
        assert!(e.msg.contains("flag"), "{e}");
        let e = perr(b"MSRP abcd SEND\r\n-------abcd$$\r\n");
        assert!(e.msg.contains("does not match"), "{e}");
        for f in [b'+', b'#'] {
            let mut d = b"MSRP abcd 200 OK\r\n-------abcd".to_vec();
            d.push(f);
            d.extend_from_slice(b"\r\n");
            let e = perr(&d);
            assert!(e.msg.contains("response end-line"), "{e}");
        }
        // Requests may end with any flag.
        for f in ["$", "+", "#"] {
            let d = format!("MSRP abcd SEND\r\n-------abcd{f}\r\n");
            assert_eq!(run(d.as_bytes()).error, None);
        }
        // A line starting with dashes that is not an end-line is an error, not a header.
        let e = perr(b"MSRP abcd SEND\r\n--- x\r\n");
        assert!(e.msg.contains(": "), "{e}");
    }

    #[test]
    fn response_with_body_flag_error() {
        let d = b"MSRP abcd 200 OK\r\nContent-Type: t/p\r\n\r\nbody\r\n-------abcd+\r\n";
        let out = assert_split_invariant(Limits::default(), d);
        assert_eq!(out.events[1], body(b"body"));
        let e = out.error.unwrap();
        assert!(e.msg.contains("response end-line"));
        assert_eq!(e.offset, 45);
        assert_eq!(e.excerpt, "-------abcd+\r\n");
    }

    // ---------- collector ----------

    #[test]
    fn collector_errors() {
        let head = head_of(&run(&t3()).events[0]).clone();
        let bodiless = head_of(&run(&i3()).events[0]).clone();
        let mut c = MessageCollector::new(10);
        assert!(c.feed(body(b"x")).is_err());
        let mut c = MessageCollector::new(10);
        assert!(c.feed(end("abcd", Flag::End)).is_err());
        let mut c = MessageCollector::new(10);
        c.feed(MsrpEvent::Head(head.clone())).unwrap();
        assert!(c.feed(MsrpEvent::Head(head.clone())).is_err());
        let mut c = MessageCollector::new(10);
        c.feed(MsrpEvent::Head(head.clone())).unwrap();
        c.feed(body(b"0123456789")).unwrap();
        assert!(c
            .feed(body(b"a"))
            .unwrap_err()
            .msg
            .contains("longer than 10"));
        let mut c = MessageCollector::new(10);
        c.feed(MsrpEvent::Head(head.clone())).unwrap();
        assert!(c.feed(end("other1", Flag::End)).is_err());
        let mut c = MessageCollector::new(10);
        c.feed(MsrpEvent::Head(bodiless)).unwrap();
        assert!(c.feed(body(b"x")).is_err());

        let mut c = MessageCollector::new(10);
        c.feed(MsrpEvent::Head(head.clone())).unwrap();
        c.feed(body(b"01234")).unwrap();
        c.feed(body(b"56789")).unwrap();
        let m = c.feed(end(&head.tid, Flag::More)).unwrap().unwrap();
        assert_eq!(&m.body[..], b"0123456789");
        assert_eq!(m.flag, Flag::More);
        // Ready for the next message.
        c.feed(MsrpEvent::Head(head.clone())).unwrap();
    }

    // ---------- chunking and reassembly ----------

    #[test]
    fn chunk_ranges_small_and_large() {
        let c = chunk_ranges(5000, 2048);
        assert_eq!(
            c,
            vec![
                (
                    ByteRange {
                        start: 1,
                        end: Some(2048),
                        total: Some(5000)
                    },
                    Flag::More,
                    0,
                    2048
                ),
                (
                    ByteRange {
                        start: 2049,
                        end: Some(4096),
                        total: Some(5000)
                    },
                    Flag::More,
                    2048,
                    2048
                ),
                (
                    ByteRange {
                        start: 4097,
                        end: Some(5000),
                        total: Some(5000)
                    },
                    Flag::End,
                    4096,
                    904
                ),
            ]
        );
        let c = chunk_ranges(10000, 4096);
        assert_eq!(c.len(), 3);
        assert!(c
            .iter()
            .all(|(r, ..)| r.end.is_none() && r.total == Some(10000)));
        assert_eq!(
            c[2],
            (
                ByteRange {
                    start: 8193,
                    end: None,
                    total: Some(10000)
                },
                Flag::End,
                8192,
                1808
            )
        );
        assert_eq!(
            chunk_ranges(0, 2048),
            vec![(ByteRange::parse("1-0/0").unwrap(), Flag::End, 0, 0)]
        );
        assert_eq!(chunk_ranges(0, 1 << 20)[0].0.to_string(), "1-0/0");
        assert_eq!(chunk_ranges(2300, 2048)[1].0.to_string(), "2049-2300/2300");
        assert_eq!(
            chunk_ranges(100, 0),
            vec![(ByteRange::parse("1-100/100").unwrap(), Flag::End, 0, 100)]
        );
        assert_eq!(chunk_ranges(2048, 2048).len(), 1);
    }

    #[test]
    fn range_tracker() {
        let mut t = RangeTracker::default();
        assert!(!t.is_complete());
        t.add(11, 10);
        t.add(1, 5);
        assert_eq!(t.intervals(), &[(1, 5), (11, 20)]);
        t.add(6, 5); // adjacent on both sides
        assert_eq!(t.intervals(), &[(1, 20)]);
        assert_eq!(t.received(), 20);
        assert!(!t.is_complete());
        t.set_total(25);
        assert_eq!(t.total(), Some(25));
        assert!(!t.is_complete());
        t.add(30, 2);
        t.add(23, 0);
        t.add(22, 3);
        assert_eq!(t.intervals(), &[(1, 20), (22, 24), (30, 31)]);
        t.add(18, 10); // overlaps two intervals
        assert_eq!(t.intervals(), &[(1, 27), (30, 31)]);
        assert_eq!(t.received(), 29);
        assert!(t.is_complete());
        let mut e = RangeTracker::default();
        e.set_total(0);
        assert!(e.is_complete());
        let mut o = RangeTracker::default();
        o.add(5, 1);
        o.add(1, 100);
        assert_eq!(o.intervals(), &[(1, 100)]);
    }

    #[test]
    fn reassembler_any_order_later_wins() {
        let content: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut chunks = chunk_ranges(5000, 3000);
        chunks.reverse();
        let mut r = Reassembler::new(5000);
        for (range, flag, off, len) in chunks {
            assert!(!r.is_complete());
            r.add(range, &content[off as usize..(off + len) as usize], flag)
                .unwrap();
        }
        assert!(r.is_complete());
        assert_eq!(&r.into_bytes().unwrap()[..], &content[..]);

        // Interrupted chunk, total unknown until the `$` chunk; overlap lets later data win.
        let mut r = Reassembler::new(100);
        r.add(ByteRange::parse("1-*/*").unwrap(), b"abcdef", Flag::More)
            .unwrap();
        assert!(!r.is_complete());
        r.add(ByteRange::parse("4-*/*").unwrap(), b"XYZgh", Flag::End)
            .unwrap();
        assert!(r.is_complete());
        assert_eq!(r.tracker().total(), Some(8));
        assert_eq!(&r.into_bytes().unwrap()[..], b"abcXYZgh");

        // A numeric range-end longer than the data: the data length counts.
        let mut r = Reassembler::new(100);
        r.add(ByteRange::parse("1-10/10").unwrap(), b"abc", Flag::More)
            .unwrap();
        assert!(!r.is_complete());
        assert_eq!(r.tracker().received(), 3);
        assert!(r.into_bytes().is_none());

        // Empty message.
        let mut r = Reassembler::new(0);
        r.add(ByteRange::parse("1-0/0").unwrap(), b"", Flag::End)
            .unwrap();
        assert_eq!(r.into_bytes().unwrap().len(), 0);
    }

    #[test]
    fn reassembler_errors() {
        let mut r = Reassembler::new(10);
        assert!(r
            .add(ByteRange::parse("1-*/*").unwrap(), &[0; 11], Flag::More)
            .is_err());
        assert!(r
            .add(ByteRange::parse("1-*/11").unwrap(), b"a", Flag::More)
            .is_err());
        assert!(r
            .add(
                ByteRange {
                    start: 0,
                    end: None,
                    total: None
                },
                b"a",
                Flag::More
            )
            .is_err());
        r.add(ByteRange::parse("1-*/5").unwrap(), b"ab", Flag::More)
            .unwrap();
        assert!(r
            .add(ByteRange::parse("3-*/6").unwrap(), b"cd", Flag::More)
            .is_err());
        assert!(r
            .add(ByteRange::parse("4-*/5").unwrap(), b"def", Flag::More)
            .is_err());
        assert!(r
            .add(ByteRange::parse("3-*/*").unwrap(), b"cdef", Flag::End)
            .is_err());
        r.add(ByteRange::parse("3-*/*").unwrap(), b"cde", Flag::End)
            .unwrap();
        assert_eq!(&r.into_bytes().unwrap()[..], b"abcde");

        let mut r = Reassembler::new(10);
        r.add(ByteRange::parse("1-*/*").unwrap(), b"abcdef", Flag::More)
            .unwrap();
        assert!(r
            .add(ByteRange::parse("1-*/*").unwrap(), b"abc", Flag::End)
            .is_err());
    }

    /// A read handed over whole is not copied: the body events are slices of it. A
    /// leftover (an end-line look-alike at the end of a read) is joined with the next read
    /// and the body still comes out whole.
    #[test]
    fn push_bytes_hands_out_slices_of_the_read() {
        let msg = Bytes::from(t3());
        let mut p = MsrpParser::new(Limits::default());
        p.push_bytes(msg.clone());
        let range = msg.as_ptr() as usize..msg.as_ptr() as usize + msg.len();
        let mut body = Vec::new();
        while let Some(ev) = p.next().unwrap() {
            if let MsrpEvent::Body(b) = ev {
                assert!(range.contains(&(b.as_ptr() as usize)), "body was copied");
                body.extend_from_slice(&b);
            }
        }
        assert_eq!(body, t3_body());
        assert!(p.is_idle());
        // Split right after a CR inside the closing CRLF: the tail is held back and joined.
        let cut = msg.len() - "\r\n-------u7Yq2Lk9FaW3$\r\n".len() + 1;
        let mut p = MsrpParser::new(Limits::default());
        p.push_bytes(msg.slice(..cut));
        let mut body = Vec::new();
        let mut ended = false;
        for part in [None, Some(msg.slice(cut..))] {
            if let Some(b) = part {
                p.push_bytes(b);
            }
            while let Some(ev) = p.next().unwrap() {
                match ev {
                    MsrpEvent::Body(b) => body.extend_from_slice(&b),
                    MsrpEvent::End { flag, .. } => ended = flag == Flag::End,
                    MsrpEvent::Head(_) => {}
                }
            }
        }
        assert!(ended);
        assert_eq!(body, t3_body());
    }
}
