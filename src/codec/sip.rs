//! SIP (RFC 3261): this project's own parser and builders.
//!
//! The parser reads a message head: the start line (any token as a method, any `scheme:`
//! Request-URI — IPv6 references and user parameters included —, SIP/2.0, a status code
//! 100–699), header lines as `token ":" value` with folded lines unfolded and compact names
//! (`v`, `i`, `f`, `t`, `m`, `l`, `c`, `k`, `s`, `e`) expanded, CRLF or bare LF, UTF-8, and
//! Content-Length (digits, one value, no more than the bytes that follow); it keeps the raw
//! bytes and gives header values as text, with accessors for what the harness reads (Call-ID,
//! CSeq, Via branch and sent-by, tags, Contact, routes). Errors are typed and name an
//! excerpt. It also frames SIP over TCP by Content-Length ([`SipFramer`]) and builds the
//! requests and responses of this flow, including the RFC 5366 multipart body with a
//! resource list for ad-hoc groups.
//!
//! Until issue 19 every parsed head was re-read by the `rsip` crate as a yes/no check; with
//! stand-ins for what rsip cannot read (extension methods, IPv6 and parameter URIs) it
//! rejected nothing this parser accepts over the codec tests (RFC 4475 torture messages,
//! property tests), the malformed-input corpus and the simulator, and its typed headers have
//! the narrower grammar that a conformance harness must not impose on a SUT, so it is gone.

use bytes::{Bytes, BytesMut};
use rand::Rng;
use std::fmt;

pub mod host;
mod refuse;
pub use refuse::{refusal_of_unparsed, refusal_response, Refusal};

/// A SIP error with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SIP: {msg} (near {excerpt:?})")]
pub struct SipError {
    pub msg: String,
    pub excerpt: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over TLS over TCP (RFC 3261 §26, Via `SIP/2.0/TLS`, `sips:` URIs).
    Tls,
}

impl Transport {
    /// A stream transport (TCP or TLS over TCP): framed by Content-Length on a connection.
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_message: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 256 * 1024,
            max_headers: 128,
        }
    }
}

impl SipMessage {
    /// Parses one message from a datagram (or a complete framed TCP message). The body is cut
    /// at Content-Length when present (RFC 4475 `dblreq`: trailing bytes ignored); without
    /// Content-Length the body is the rest of the datagram.
    ///
    /// Leading CRLFs (keep-alives) are skipped and are not part of `raw`. The head may use
    /// CRLF or bare LF line ends; folded header lines are unfolded and compact header names
    /// expanded. A Content-Length larger than the bytes available is an error ("truncated
    /// body").
    pub fn parse(bytes: &[u8]) -> Result<SipMessage, SipError> {
        let start = bytes.iter().position(|&b| b != b'\r' && b != b'\n');
        let Some(start) = start else {
            return Err(SipError::new("empty message", bytes));
        };
        let data = &bytes[start..];
        let mut scan = HeadScan::default();
        let head_end = match scan.advance(data, None)? {
            Some(end) => end,
            None => {
                return Err(SipError::new(
                    "incomplete head: no empty line after the headers",
                    data,
                ))
            }
        };
        let head = parse_head(&data[..head_end])?;
        let total = match head.content_length {
            Some(cl) => {
                let avail = data.len() - head_end;
                if cl > avail {
                    return Err(SipError::new(
                        format!(
                            "truncated body: Content-Length {cl} but only {avail} octets follow the head"
                        ),
                        head.content_length_line(),
                    ));
                }
                head_end + cl
            }
            None => data.len(),
        };
        let raw = Bytes::copy_from_slice(&data[..total]);
        finish(head, raw, head_end)
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }
    /// First header with this canonical or compact name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let canon = canonical_name(name);
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(canon))
            .map(|(_, v)| v.as_str())
    }
    /// All values of a header, in order (comma-separated values are not split).
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let canon = canonical_name(name);
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(canon))
            .map(|(_, v)| v.as_str())
    }
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }
    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, Method)> {
        let v = self.header("CSeq")?;
        let mut it = v.split_ascii_whitespace();
        let num = it.next()?;
        let method = it.next()?;
        if it.next().is_some() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((num.parse().ok()?, Method::parse(method)))
    }
    pub fn from_tag(&self) -> Option<String> {
        self.addr_param("From", "tag")
    }
    pub fn to_tag(&self) -> Option<String> {
        self.addr_param("To", "tag")
    }
    /// The URI inside From / To / Contact (without display name, brackets or parameters).
    pub fn from_uri(&self) -> Option<String> {
        self.addr_uri("From")
    }
    pub fn to_uri(&self) -> Option<String> {
        self.addr_uri("To")
    }
    /// The URI of the first Contact value (`None` for `Contact: *`).
    pub fn contact_uri(&self) -> Option<String> {
        self.addr_uri("Contact")
    }
    /// Top Via `branch` parameter.
    pub fn via_branch(&self) -> Option<String> {
        let via = parse_via(self.top_via()?)?;
        find_param(via.params, "branch").filter(|b| !b.is_empty())
    }
    /// Top Via sent-by (`host[:port]`) and transport. `None` when the transport is neither
    /// UDP nor TCP (e.g. TLS), or the Via is malformed.
    pub fn via_sent_by(&self) -> Option<(Transport, String)> {
        let via = parse_via(self.top_via()?)?;
        let transport = if via.transport.eq_ignore_ascii_case("UDP") {
            Transport::Udp
        } else if via.transport.eq_ignore_ascii_case("TCP") {
            Transport::Tcp
        } else if via.transport.eq_ignore_ascii_case("TLS") {
            Transport::Tls
        } else {
            return None;
        };
        if via.sent_by.is_empty() {
            return None;
        }
        Some((transport, via.sent_by))
    }
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }
    /// The SDP part: the body when it is application/sdp, or the application/sdp part of a
    /// multipart/mixed body.
    pub fn sdp_body(&self) -> Option<Bytes> {
        let ct = self.content_type()?;
        let mt = media_type(ct);
        if mt == "application/sdp" {
            return Some(self.body.clone());
        }
        if mt.starts_with("multipart/") {
            let parts = parse_multipart(&self.body, ct).ok()?;
            return parts
                .into_iter()
                .find(|p| p.media_type().as_deref() == Some("application/sdp"))
                .map(|p| p.body);
        }
        None
    }
    /// The member URIs of an RFC 5366 recipient-list part, when the body has one.
    ///
    /// Looks at the body itself when it is `application/resource-lists+xml`, or at the first
    /// part of that type in a multipart body. `Ok(None)` when there is no such part; an error
    /// when the multipart body or the XML document is malformed, or an `<entry>` lacks `uri`.
    pub fn resource_list(&self) -> Result<Option<Vec<String>>, SipError> {
        let Some(ct) = self.content_type() else {
            return Ok(None);
        };
        let mt = media_type(ct);
        if mt == RESOURCE_LISTS {
            return parse_resource_list(&self.body).map(Some);
        }
        if mt.starts_with("multipart/") {
            let parts = parse_multipart(&self.body, ct)?;
            return match parts
                .iter()
                .find(|p| p.media_type().as_deref() == Some(RESOURCE_LISTS))
            {
                Some(p) => parse_resource_list(&p.body).map(Some),
                None => Ok(None),
            };
        }
        Ok(None)
    }
    /// A one-line summary for logs and errors: the start line.
    pub fn summary(&self) -> String {
        match &self.start {
            StartLine::Request { method, uri } => format!("{method} {uri} SIP/2.0"),
            StartLine::Response { code, reason } => format!("SIP/2.0 {code} {reason}"),
        }
    }

    /// First value of the first Via header.
    /// The URIs of every value of a name-addr list header (Route, Record-Route), in order,
    /// across repeated headers and comma-separated values; unreadable values are skipped.
    pub fn uri_list(&self, name: &str) -> Vec<String> {
        self.header_all(name)
            .flat_map(|v| split_outside(v, b','))
            .filter_map(name_addr)
            .map(|(uri, _)| uri.to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }
    /// Every Via value, top first (comma-separated values split).
    pub fn vias(&self) -> Vec<&str> {
        self.header_all("Via")
            .flat_map(|v| split_outside(v, b','))
            .collect()
    }
    /// Sent-by and branch of the bottom Via: the originating UA of a request (and of the
    /// request a response answers), whatever proxies added on top.
    pub fn origin_via(&self) -> Option<(String, String)> {
        let v = parse_via(self.vias().pop()?)?;
        let branch = find_param(v.params, "branch").unwrap_or_default();
        Some((v.sent_by, branch))
    }
    fn top_via(&self) -> Option<&str> {
        let v = self.header("Via")?;
        split_outside(v, b',').into_iter().next()
    }
    /// First value of a name-addr header (From, To, Contact), split into URI and params.
    fn addr(&self, name: &str) -> Option<(&str, &str)> {
        let v = self.header(name)?;
        let first = split_outside(v, b',').into_iter().next()?;
        name_addr(first)
    }
    fn addr_uri(&self, name: &str) -> Option<String> {
        let (uri, _) = self.addr(name)?;
        if uri.is_empty() || uri == "*" {
            return None;
        }
        Some(uri.to_string())
    }
    fn addr_param(&self, name: &str, param: &str) -> Option<String> {
        let (_, params) = self.addr(name)?;
        find_param(params, param).filter(|t| !t.is_empty())
    }
}

impl SipError {
    fn new(msg: impl Into<String>, near: impl AsRef<[u8]>) -> SipError {
        SipError {
            msg: msg.into(),
            excerpt: excerpt(near.as_ref()),
        }
    }
}

/// The first line of `bytes`, lossily decoded and cut to 80 characters.
fn excerpt(bytes: &[u8]) -> String {
    let line = match memchr::memchr(b'\n', bytes) {
        Some(p) => &bytes[..p],
        None => bytes,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    if text.chars().count() > 80 {
        let mut s: String = text.chars().take(80).collect();
        s.push('…');
        s
    } else {
        text.into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Head scanning and parsing
// ---------------------------------------------------------------------------------------------

/// Incremental search for the empty line that ends a head. Remembers where it stopped so a
/// stream is scanned once in total.
#[derive(Debug, Default, Clone)]
struct HeadScan {
    /// Next byte to look at.
    scan: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// Header lines seen so far (continuation lines not counted, start line not counted).
    header_lines: usize,
}

impl HeadScan {
    /// Scans `buf` from where the last call stopped; returns the end of the head (just past
    /// the empty line) once found.
    fn advance(
        &mut self,
        buf: &[u8],
        max_headers: Option<usize>,
    ) -> Result<Option<usize>, SipError> {
        while let Some(off) = memchr::memchr(b'\n', &buf[self.scan..]) {
            let nl = self.scan + off;
            let line = &buf[self.line_start..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.scan = nl + 1;
            if line.is_empty() {
                return Ok(Some(nl + 1));
            }
            if self.line_start > 0 && line[0] != b' ' && line[0] != b'\t' {
                self.header_lines += 1;
                if let Some(max) = max_headers {
                    if self.header_lines > max {
                        return Err(SipError::new(
                            format!("too many headers (more than {max})"),
                            line,
                        ));
                    }
                }
            }
            self.line_start = nl + 1;
        }
        self.scan = buf.len();
        Ok(None)
    }
}

/// A head split into start line and canonical, unfolded headers.
#[derive(Debug, Clone)]
struct ParsedHead {
    start: StartLine,
    /// The start line as received (for excerpts).
    start_line: String,
    headers: Vec<(String, String)>,
    content_length: Option<usize>,
}

impl ParsedHead {
    fn content_length_line(&self) -> String {
        match self.headers.iter().find(|(n, _)| n == "Content-Length") {
            Some((n, v)) => format!("{n}: {v}"),
            None => self.start_line.clone(),
        }
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Parses a head (start line, headers, and the terminating empty line).
fn parse_head(head: &[u8]) -> Result<ParsedHead, SipError> {
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => {
            let bad = e.valid_up_to();
            let line_start = head[..bad]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            return Err(SipError::new(
                "head is not valid UTF-8",
                &head[line_start..],
            ));
        }
    };
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or("");
    let start = parse_start_line(start_line)?;

    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            match headers.last_mut() {
                Some((_, value)) => {
                    let more = line.trim_matches([' ', '\t']);
                    if !more.is_empty() {
                        if !value.is_empty() {
                            value.push(' ');
                        }
                        value.push_str(more);
                    }
                }
                None => {
                    return Err(SipError::new("continuation line without a header", line));
                }
            }
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(SipError::new("header line without a colon", line));
        };
        let name = line[..colon].trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(SipError::new(format!("invalid header name {name:?}"), line));
        }
        let value = line[colon + 1..].trim_matches([' ', '\t']);
        headers.push((canonical_name(name).to_string(), value.to_string()));
    }
    if headers.is_empty() {
        return Err(SipError::new("message has no headers", start_line));
    }

    let mut content_length: Option<usize> = None;
    for (name, value) in &headers {
        if name != "Content-Length" {
            continue;
        }
        let near = format!("{name}: {value}");
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SipError::new(
                format!("invalid Content-Length {value:?}"),
                near,
            ));
        }
        let Ok(n) = value.parse::<usize>() else {
            return Err(SipError::new("Content-Length too large", near));
        };
        match content_length {
            Some(prev) if prev != n => {
                return Err(SipError::new("conflicting Content-Length headers", near));
            }
            _ => content_length = Some(n),
        }
    }

    Ok(ParsedHead {
        start,
        start_line: start_line.to_string(),
        headers,
        content_length,
    })
}

/// RFC 3261 §7.1 / §7.2 start line: any token as a method (extension methods included), any
/// `scheme:` URI of printable characters (IPv6 references, user parameters), SIP/2.0.
fn parse_start_line(line: &str) -> Result<StartLine, SipError> {
    if line.is_empty() {
        return Err(SipError::new("missing start line", line));
    }
    if let Some(colon) = line.find(':') {
        if is_token(line[..colon].trim_end_matches([' ', '\t'])) {
            return Err(SipError::new(
                "missing start line (message begins with a header)",
                line,
            ));
        }
    }
    if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let mut it = line.splitn(3, ' ');
        let version = it.next().unwrap_or("");
        let code = it.next().unwrap_or("");
        let reason = it.next().unwrap_or("");
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(SipError::new(
                format!("unsupported SIP version {version:?}"),
                line,
            ));
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SipError::new(format!("invalid status code {code:?}"), line));
        }
        let code: u16 = code.parse().unwrap_or(0);
        if !(100..=699).contains(&code) {
            return Err(SipError::new(
                format!("status code {code} out of range"),
                line,
            ));
        }
        if reason.chars().any(|c| c.is_control() && c != '\t') {
            return Err(SipError::new("control character in reason phrase", line));
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 {
        return Err(SipError::new(
            "malformed request line (expected `Method SP Request-URI SP SIP-Version`)",
            line,
        ));
    }
    let (method, uri, version) = (parts[0], parts[1], parts[2]);
    if !is_token(method) {
        return Err(SipError::new(format!("invalid method {method:?}"), line));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(SipError::new(
            format!("unsupported SIP version {version:?}"),
            line,
        ));
    }
    if !valid_request_uri(uri) {
        return Err(SipError::new(format!("invalid Request-URI {uri:?}"), line));
    }
    Ok(StartLine::Request {
        method: Method::parse(method),
        uri: uri.to_string(),
    })
}

/// `scheme ":" rest`, scheme = ALPHA *(ALPHA / DIGIT / "+" / "-" / "."), rest printable ASCII.
fn valid_request_uri(uri: &str) -> bool {
    let Some(colon) = uri.find(':') else {
        return false;
    };
    let scheme = &uri[..colon];
    let rest = &uri[colon + 1..];
    let mut sb = scheme.bytes();
    matches!(sb.next(), Some(b) if b.is_ascii_alphabetic())
        && sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_graphic())
}

/// Assembles the message from its checked head; `raw` is head + body.
fn finish(head: ParsedHead, raw: Bytes, head_len: usize) -> Result<SipMessage, SipError> {
    let body = raw.slice(head_len..);
    Ok(SipMessage {
        start: head.start,
        headers: head.headers,
        body,
        raw,
    })
}

/// Canonical spelling of a header name: compact forms expanded, well-known names in their
/// RFC spelling; other names returned as given.
fn canonical_name(name: &str) -> &str {
    if name.len() == 1 {
        let c = name.as_bytes()[0].to_ascii_lowercase();
        let long = match c {
            b'v' => Some("Via"),
            b'i' => Some("Call-ID"),
            b'f' => Some("From"),
            b't' => Some("To"),
            b'm' => Some("Contact"),
            b'l' => Some("Content-Length"),
            b'c' => Some("Content-Type"),
            b'k' => Some("Supported"),
            b's' => Some("Subject"),
            b'e' => Some("Content-Encoding"),
            b'a' => Some("Accept-Contact"),      // RFC 3841
            b'j' => Some("Reject-Contact"),      // RFC 3841
            b'd' => Some("Request-Disposition"), // RFC 3841
            b'o' => Some("Event"),               // RFC 6665
            b'u' => Some("Allow-Events"),        // RFC 6665
            b'r' => Some("Refer-To"),            // RFC 3515
            b'b' => Some("Referred-By"),         // RFC 3892
            b'x' => Some("Session-Expires"),     // RFC 4028
            _ => None,
        };
        if let Some(l) = long {
            return l;
        }
    }
    KNOWN_HEADERS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
}

const KNOWN_HEADERS: &[&str] = &[
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "Contribution-ID",
    "Conversation-ID",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Asserted-Service",
    "P-Preferred-Identity",
    "P-Preferred-Service",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Session-Expires",
    "Subject",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

// ---------------------------------------------------------------------------------------------
// Header value helpers
// ---------------------------------------------------------------------------------------------

/// Splits at `sep` outside double quotes and angle brackets; pieces trimmed.
fn split_outside(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut in_q, mut in_a) = (false, false);
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_q => i += 1,
            b'"' if !in_a => in_q = !in_q,
            b'<' if !in_q => in_a = true,
            b'>' if !in_q => in_a = false,
            c if c == sep && !in_q && !in_a => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(s[start..].trim());
    out
}

/// Splits a name-addr / addr-spec value into the URI and the header parameters (starting at
/// the first `;` after the URI, or empty).
fn name_addr(v: &str) -> Option<(&str, &str)> {
    let b = v.as_bytes();
    let mut in_q = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_q => i += 1,
            b'"' => in_q = !in_q,
            b'<' if !in_q => {
                let end = v[i + 1..].find('>')?;
                return Some((v[i + 1..i + 1 + end].trim(), &v[i + 2 + end..]));
            }
            _ => {}
        }
        i += 1;
    }
    if in_q {
        return None;
    }
    // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
    Some(match v.find(';') {
        Some(p) => (v[..p].trim(), &v[p..]),
        None => (v.trim(), ""),
    })
}

/// The value of parameter `name` in a `;a=b;c` list (case-insensitive name, quotes removed);
/// `Some("")` for a parameter without value.
fn find_param(params: &str, name: &str) -> Option<String> {
    split_outside(params, b';').into_iter().find_map(|p| {
        let (n, v) = match p.find('=') {
            Some(eq) => (p[..eq].trim(), p[eq + 1..].trim()),
            None => (p.trim(), ""),
        };
        n.eq_ignore_ascii_case(name).then(|| unquote(v))
    })
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

struct Via<'a> {
    transport: &'a str,
    sent_by: String,
    params: &'a str,
}

/// `SIP / 2.0 / UDP host:port ;params` (LWS allowed around the slashes, RFC 3261 §25.1).
fn parse_via(v: &str) -> Option<Via<'_>> {
    let b = v.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && is_token_byte(b[*i]) {
            *i += 1;
        }
        (s < *i).then(|| &v[s..*i])
    };
    let slash = |i: &mut usize| {
        skip_ws(i);
        if b.get(*i) != Some(&b'/') {
            return None;
        }
        *i += 1;
        skip_ws(i);
        Some(())
    };
    skip_ws(&mut i);
    let _protocol = token(&mut i)?;
    slash(&mut i)?;
    let _version = token(&mut i)?;
    slash(&mut i)?;
    let transport = token(&mut i)?;
    let rest = &v[i..];
    let (sent_by, params) = match rest.find(';') {
        Some(p) => (&rest[..p], &rest[p..]),
        None => (rest, ""),
    };
    let sent_by: String = sent_by.chars().filter(|c| !c.is_whitespace()).collect();
    Some(Via {
        transport,
        sent_by,
        params,
    })
}

// ---------------------------------------------------------------------------------------------
// Bodies: multipart and resource lists
// ---------------------------------------------------------------------------------------------

const RESOURCE_LISTS: &str = "application/resource-lists+xml";

/// Lower-cased `type/subtype` of a Content-Type value.
fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

struct Part {
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Part {
    fn media_type(&self) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == "Content-Type")
            .map(|(_, v)| media_type(v))
    }
}

/// Splits a multipart body (RFC 2046 §5.1) using the `boundary` parameter of `content_type`.
fn parse_multipart(body: &Bytes, content_type: &str) -> Result<Vec<Part>, SipError> {
    let params = content_type.find(';').map_or("", |p| &content_type[p..]);
    let boundary = match find_param(params, "boundary") {
        Some(b) if !b.is_empty() && b.len() <= 70 => b,
        _ => {
            return Err(SipError::new(
                "multipart body without a valid boundary",
                content_type,
            ))
        }
    };
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let line_delim = format!("\n--{boundary}");
    let finder = memchr::memmem::Finder::new(line_delim.as_bytes());

    // First delimiter: at the start of the body or at the start of a line (after a preamble).
    let mut pos = if body.starts_with(delim) {
        0
    } else {
        match finder.find(body) {
            Some(p) => p + 1,
            None => {
                return Err(SipError::new(
                    "multipart body without a boundary delimiter",
                    &body[..],
                ))
            }
        }
    };
    let mut parts = Vec::new();
    loop {
        let after = pos + delim.len();
        let rest = &body[after..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return Err(SipError::new(
                "multipart delimiter line not terminated",
                &body[pos..],
            ));
        };
        if !rest[..nl]
            .iter()
            .all(|&c| c == b' ' || c == b'\t' || c == b'\r')
        {
            return Err(SipError::new(
                "junk after multipart delimiter",
                &body[pos..],
            ));
        }
        let content_start = after + nl + 1;
        let Some(q) = finder
            .find(&body[content_start - 1..])
            .map(|q| q + content_start - 1)
        else {
            return Err(SipError::new(
                "multipart body without a close delimiter",
                &body[pos..],
            ));
        };
        let mut end = q;
        if end > content_start && body[end - 1] == b'\r' {
            end -= 1;
        }
        let end = end.max(content_start);
        parts.push(parse_part(body.slice(content_start..end))?);
        pos = q + 1;
    }
}

fn parse_part(content: Bytes) -> Result<Part, SipError> {
    // Headers up to the first empty line; a part may have no headers at all.
    let mut scan = 0;
    let mut line_start = 0;
    let mut head_end = None;
    while let Some(off) = memchr::memchr(b'\n', &content[scan..]) {
        let nl = scan + off;
        let line = &content[line_start..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        scan = nl + 1;
        if line.is_empty() {
            head_end = Some((line_start, nl + 1));
            break;
        }
        line_start = nl + 1;
    }
    let (head_len, body_start) = head_end.unwrap_or((content.len(), content.len()));
    let head = std::str::from_utf8(&content[..head_len])
        .map_err(|_| SipError::new("multipart part headers are not valid UTF-8", &content[..]))?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = headers.last_mut() else {
                return Err(SipError::new(
                    "multipart continuation line without a header",
                    line,
                ));
            };
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(SipError::new("multipart header line without a colon", line));
        };
        let name = line[..colon].trim();
        if !is_token(name) {
            return Err(SipError::new("invalid multipart header name", line));
        }
        headers.push((
            canonical_name(name).to_string(),
            line[colon + 1..].trim().to_string(),
        ));
    }
    Ok(Part {
        headers,
        body: content.slice(body_start..),
    })
}

/// The `uri` attributes of the `<entry>` elements of an RFC 4826 resource-lists document.
fn parse_resource_list(xml: &[u8]) -> Result<Vec<String>, SipError> {
    let text = std::str::from_utf8(xml)
        .map_err(|_| SipError::new("resource list is not valid UTF-8", xml))?;
    let b = text.as_bytes();
    let mut uris = Vec::new();
    let mut seen_root = false;
    let mut i = 0;
    let unterminated = |at: usize| SipError::new("resource list: unterminated markup", &b[at..]);
    while let Some(off) = memchr::memchr(b'<', &b[i..]) {
        let lt = i + off;
        let rest = &text[lt..];
        let skip_to = |end: &str| rest.find(end).map(|p| lt + p + end.len());
        if rest.starts_with("<!--") {
            i = skip_to("-->").ok_or_else(|| unterminated(lt))?;
            continue;
        }
        if rest.starts_with("<![CDATA[") {
            i = skip_to("]]>").ok_or_else(|| unterminated(lt))?;
            continue;
        }
        if rest.starts_with("<?") {
            i = skip_to("?>").ok_or_else(|| unterminated(lt))?;
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("</") {
            i = skip_to(">").ok_or_else(|| unterminated(lt))?;
            continue;
        }
        // Start tag: name, attributes, `>` or `/>`.
        let mut j = lt + 1;
        while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'/' && b[j] != b'>' {
            j += 1;
        }
        let name = &text[lt + 1..j];
        if name.is_empty() {
            return Err(SipError::new("resource list: empty element name", &b[lt..]));
        }
        let local = name.rsplit(':').next().unwrap_or(name);
        let mut attrs: Vec<(&str, String)> = Vec::new();
        loop {
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            match b.get(j) {
                None => return Err(unterminated(lt)),
                Some(b'>') => {
                    j += 1;
                    break;
                }
                Some(b'/') => {
                    if b.get(j + 1) != Some(&b'>') {
                        return Err(SipError::new("resource list: stray `/` in tag", &b[lt..]));
                    }
                    j += 2;
                    break;
                }
                Some(_) => {}
            }
            let an_start = j;
            while j < b.len() && !b[j].is_ascii_whitespace() && !b"=/>".contains(&b[j]) {
                j += 1;
            }
            let an = &text[an_start..j];
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if an.is_empty() || b.get(j) != Some(&b'=') {
                return Err(SipError::new(
                    "resource list: attribute without value",
                    &b[lt..],
                ));
            }
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let q = match b.get(j) {
                Some(&q @ (b'"' | b'\'')) => q,
                None => return Err(unterminated(lt)),
                Some(_) => {
                    return Err(SipError::new(
                        "resource list: unquoted attribute value",
                        &b[lt..],
                    ))
                }
            };
            let v_start = j + 1;
            let Some(v_len) = memchr::memchr(q, &b[v_start..]) else {
                return Err(unterminated(lt));
            };
            let raw_value = &text[v_start..v_start + v_len];
            if raw_value.contains('<') {
                return Err(SipError::new(
                    "resource list: `<` in attribute value",
                    &b[lt..],
                ));
            }
            attrs.push((
                an,
                xml_unescape(raw_value).ok_or_else(|| {
                    SipError::new("resource list: bad entity reference", raw_value)
                })?,
            ));
            j = v_start + v_len + 1;
        }
        if local == "resource-lists" {
            seen_root = true;
        } else if local == "entry" {
            match attrs.into_iter().find(|(n, _)| *n == "uri") {
                Some((_, uri)) if !uri.trim().is_empty() => uris.push(uri.trim().to_string()),
                _ => {
                    return Err(SipError::new(
                        "resource list: <entry> without a uri",
                        &b[lt..],
                    ))
                }
            }
        }
        i = j;
    }
    if !seen_root {
        return Err(SipError::new(
            "resource list: no <resource-lists> element",
            xml,
        ));
    }
    Ok(uris)
}

fn xml_unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';')? + amp;
        let ent = &rest[amp + 1..semi];
        let c = match ent {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let n = if let Some(hex) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok()?
                } else if let Some(dec) = ent.strip_prefix('#') {
                    dec.parse().ok()?
                } else {
                    return None;
                };
                char::from_u32(n)?
            }
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Stream framing
// ---------------------------------------------------------------------------------------------

/// Frames SIP over a byte stream by Content-Length (RFC 3261 §18.3). Leading CRLF keep-alives
/// are skipped. A missing Content-Length on a stream is an error.
///
/// Errors are sticky: once [`SipFramer::next`] has returned an error the stream is out of
/// sync and every later call returns the same error (close the connection).
pub struct SipFramer {
    limits: Limits,
    buf: BytesMut,
    scan: HeadScan,
    /// The parsed head of the message in progress (or why it does not parse, when its
    /// Content-Length still frames it), its length and the body's, once the head is complete.
    head: Option<(Result<ParsedHead, SipError>, usize, usize)>,
    failed: Option<SipError>,
}

/// What [`SipFramer::next_framed`] gives: a message, or the bytes of one that its
/// Content-Length frames but that does not parse (the stream stays in step: the receiver may
/// answer it, RFC 4475, and read on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    Message(SipMessage),
    Invalid { raw: Bytes, error: SipError },
}

/// The one Content-Length of a head that does not parse, read leniently (compact `l`
/// included): `None` when there is none, several or an unreadable one.
fn lenient_content_length(head: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(head);
    let mut found: Option<usize> = None;
    for line in text.split('\n').skip(1) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some(c) = line.find(':') else { continue };
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if canonical_name(line[..c].trim()) != "Content-Length" {
            continue;
        }
        let v = line[c + 1..].trim();
        let n = v
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| v.parse::<usize>().ok())
            .flatten()?;
        if found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

impl SipFramer {
    pub fn new(limits: Limits) -> SipFramer {
        SipFramer {
            limits,
            buf: BytesMut::new(),
            scan: HeadScan::default(),
            head: None,
            failed: None,
        }
    }
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }
    /// Bytes buffered and not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
    /// The next complete message, `Ok(None)` when more bytes are needed. A message that does
    /// not parse is an error (sticky, as every error here); [`SipFramer::next_framed`] hands
    /// it over and reads on.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<SipMessage>, SipError> {
        match self.next_framed() {
            Ok(Some(Framed::Message(m))) => Ok(Some(m)),
            Ok(Some(Framed::Invalid { error, .. })) => {
                self.fail(&error);
                Err(error)
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next complete message, or the bytes of one its Content-Length frames that does
    /// not parse; `Ok(None)` when more bytes are needed. An error means the stream cannot be
    /// framed any more (sticky: close the connection).
    pub fn next_framed(&mut self) -> Result<Option<Framed>, SipError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.next_inner();
        if let Err(e) = &r {
            self.fail(e);
        }
        r
    }

    fn fail(&mut self, e: &SipError) {
        self.failed = Some(e.clone());
        self.buf.clear();
        self.head = None;
    }

    fn next_inner(&mut self) -> Result<Option<Framed>, SipError> {
        if self.head.is_none() {
            if self.scan.scan == 0 {
                // Between messages: drop CRLF keep-alives (RFC 3261 §7.5, RFC 5626 §4.4.1).
                let skip = self
                    .buf
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                let _ = self.buf.split_to(skip);
                if self.buf.is_empty() {
                    return Ok(None);
                }
            }
            match self
                .scan
                .advance(&self.buf, Some(self.limits.max_headers))?
            {
                Some(head_end) => {
                    if head_end > self.limits.max_message {
                        return Err(SipError::new(
                            format!("head larger than max_message ({})", self.limits.max_message),
                            &self.buf[..],
                        ));
                    }
                    let head = parse_head(&self.buf[..head_end]);
                    let cl = match &head {
                        Ok(h) => h.content_length,
                        Err(_) => lenient_content_length(&self.buf[..head_end]),
                    };
                    let Some(cl) = cl else {
                        return Err(match head {
                            Ok(h) => SipError::new(
                                "missing Content-Length on a stream transport (RFC 3261 §18.3)",
                                h.start_line.as_bytes(),
                            ),
                            Err(e) => e,
                        });
                    };
                    let cl_line = match &head {
                        Ok(h) => h.content_length_line(),
                        Err(e) => e.excerpt.clone(),
                    };
                    if cl > self.limits.max_message || head_end + cl > self.limits.max_message {
                        return Err(SipError::new(
                            format!(
                                "message of {} octets exceeds max_message ({})",
                                head_end.saturating_add(cl),
                                self.limits.max_message
                            ),
                            cl_line,
                        ));
                    }
                    self.head = Some((head, head_end, cl));
                }
                None => {
                    if self.buf.len() > self.limits.max_message {
                        return Err(SipError::new(
                            format!(
                                "head not complete within max_message ({})",
                                self.limits.max_message
                            ),
                            &self.buf[..],
                        ));
                    }
                    return Ok(None);
                }
            }
        }
        let Some((_, head_end, cl)) = &self.head else {
            return Ok(None);
        };
        let total = head_end + cl;
        if self.buf.len() < total {
            return Ok(None);
        }
        let Some((head, head_end, _)) = self.head.take() else {
            return Ok(None);
        };
        self.scan = HeadScan::default();
        let raw = self.buf.split_to(total).freeze();
        let parsed = match head {
            Ok(h) => finish(h, raw.clone(), head_end),
            Err(e) => Err(e),
        };
        Ok(Some(match parsed {
            Ok(m) => Framed::Message(m),
            Err(error) => Framed::Invalid { raw, error },
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

/// A body to attach to a request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub content_type: String,
    pub bytes: Bytes,
}

impl Body {
    pub fn sdp(sdp: impl Into<Bytes>) -> Body {
        Body {
            content_type: "application/sdp".into(),
            bytes: sdp.into(),
        }
    }
    /// multipart/mixed with the SDP and an RFC 5366 resource list
    /// (`Content-Disposition: recipient-list`) of `members`.
    ///
    /// The INVITE carrying this body must also carry `Require: recipient-list-invite`
    /// (RFC 5366 §3); add it through [`RequestSpec::extra`]. The MIME boundary is drawn from
    /// `rng`.
    pub fn sdp_with_resource_list(
        sdp: &[u8],
        members: &[String],
        rng: &mut (impl Rng + ?Sized),
    ) -> Body {
        let boundary = format!("cpm-{}", random_alnum(rng, 24));
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
             <resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>",
        );
        for m in members {
            xml.push_str("<entry uri=\"");
            xml.push_str(&crate::text::escape_markup(m));
            xml.push_str("\"/>");
        }
        xml.push_str("</list></resource-lists>\r\n");

        let mut out = Vec::with_capacity(sdp.len() + xml.len() + 256);
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/sdp\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(sdp);
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: {RESOURCE_LISTS}\r\n\
                 Content-Disposition: recipient-list\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(xml.as_bytes());
        out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Body {
            content_type: format!("multipart/mixed;boundary={boundary}"),
            bytes: Bytes::from(out),
        }
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
    /// Contact URI (INVITE and 2xx need one). Written as `<uri>`; a value that already holds
    /// `<` is written verbatim, so header parameters (feature tags) can follow the `>`.
    pub contact: Option<String>,
    /// Extra headers in order, e.g. Require, Accept-Contact.
    pub extra: Vec<(String, String)>,
    pub body: Option<Body>,
}

/// Replaces CR and LF so a value cannot break the framing.
fn clean(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

fn contact_value(c: &str) -> String {
    if c.contains('<') {
        clean(c)
    } else {
        format!("<{}>", clean(c))
    }
}

/// Serialises start line, headers (+ Content-Type and Content-Length) and body, then reads the
/// result back through [`SipMessage::parse`] so that `raw` and the fields agree.
/// Inputs that do not survive parsing (e.g. a malformed URI in the spec) still give a message
/// whose fields are those given.
fn assemble(
    start: StartLine,
    mut headers: Vec<(String, String)>,
    body: Option<Body>,
) -> SipMessage {
    let body_bytes = match &body {
        Some(b) => {
            headers.push(("Content-Type".into(), clean(&b.content_type)));
            b.bytes.clone()
        }
        None => Bytes::new(),
    };
    headers.push(("Content-Length".into(), body_bytes.len().to_string()));
    let start_text = match &start {
        StartLine::Request { method, uri } => format!("{method} {uri} SIP/2.0\r\n"),
        StartLine::Response { code, reason } => format!("SIP/2.0 {code} {reason}\r\n"),
    };
    let mut raw = Vec::with_capacity(start_text.len() + headers.len() * 48 + 2 + body_bytes.len());
    raw.extend_from_slice(start_text.as_bytes());
    for (n, v) in &headers {
        raw.extend_from_slice(n.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(v.as_bytes());
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    let head_len = raw.len();
    raw.extend_from_slice(&body_bytes);
    match SipMessage::parse(&raw) {
        Ok(m) if m.raw.len() == raw.len() => m,
        _ => {
            let raw = Bytes::from(raw);
            SipMessage {
                start,
                headers,
                body: raw.slice(head_len..),
                raw,
            }
        }
    }
}

/// Builds a request and serialises it; the result is read back through the parser.
///
/// Header order: Via, Max-Forwards, From, To, Call-ID, CSeq, Contact (if any), `extra` in
/// order, Content-Type (if a body), Content-Length (always).
pub fn build_request(spec: &RequestSpec) -> SipMessage {
    let method = match &spec.method {
        Method::Other(s) => Method::Other(clean(s)),
        m => m.clone(),
    };
    let uri = clean(&spec.request_uri).replace(' ', "%20");
    let mut h: Vec<(String, String)> = Vec::with_capacity(10 + spec.extra.len());
    h.push((
        "Via".into(),
        format!(
            "SIP/2.0/{} {};branch={}",
            spec.transport,
            clean(&spec.sent_by),
            clean(&spec.branch)
        ),
    ));
    h.push(("Max-Forwards".into(), "70".into()));
    h.push((
        "From".into(),
        format!("<{}>;tag={}", clean(&spec.from_uri), clean(&spec.from_tag)),
    ));
    let mut to = format!("<{}>", clean(&spec.to_uri));
    if let Some(t) = &spec.to_tag {
        to.push_str(";tag=");
        to.push_str(&clean(t));
    }
    h.push(("To".into(), to));
    h.push(("Call-ID".into(), clean(&spec.call_id)));
    h.push(("CSeq".into(), format!("{} {}", spec.cseq, method)));
    if let Some(c) = &spec.contact {
        h.push(("Contact".into(), contact_value(c)));
    }
    for (n, v) in &spec.extra {
        h.push((clean(n), clean(v)));
    }
    assemble(StartLine::Request { method, uri }, h, spec.body.clone())
}

/// Builds a response to `req`: copies Via (all), From, To (adding `to_tag` if given and none
/// present), Call-ID and CSeq; for 101–299 also Record-Route (RFC 3261 §12.1.1). Then Contact
/// (if given; same rule as [`RequestSpec::contact`]), Content-Type (if a body) and
/// Content-Length.
pub fn build_response(
    req: &SipMessage,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    contact: Option<&str>,
    body: Option<Body>,
) -> SipMessage {
    let mut h: Vec<(String, String)> = Vec::new();
    for v in req.header_all("Via") {
        h.push(("Via".into(), v.to_string()));
    }
    if (101..300).contains(&code) {
        for v in req.header_all("Record-Route") {
            h.push(("Record-Route".into(), v.to_string()));
        }
    }
    if let Some(f) = req.header("From") {
        h.push(("From".into(), f.to_string()));
    }
    if let Some(t) = req.header("To") {
        let mut to = t.to_string();
        if let Some(tag) = to_tag {
            if req.to_tag().is_none() {
                to.push_str(";tag=");
                to.push_str(&clean(tag));
            }
        }
        h.push(("To".into(), to));
    }
    if let Some(c) = req.call_id() {
        h.push(("Call-ID".into(), c.to_string()));
    }
    if let Some(c) = req.header("CSeq") {
        h.push(("CSeq".into(), c.to_string()));
    }
    if let Some(c) = contact {
        h.push(("Contact".into(), contact_value(c)));
    }
    assemble(
        StartLine::Response {
            code,
            reason: clean(reason),
        },
        h,
        body,
    )
}

/// `n` alphanumerics drawn from `rng`: the codec holds no randomness of its own, so a caller
/// with a seeded generator gets the same identifiers for the same seed.
fn random_alnum(rng: &mut (impl Rng + ?Sized), n: usize) -> String {
    (0..n)
        .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
        .collect()
}

/// A fresh Via branch (`z9hG4bK` + random), tag or Call-ID, drawn from `rng`.
pub fn new_branch(rng: &mut (impl Rng + ?Sized)) -> String {
    format!("z9hG4bK{}", random_alnum(rng, 16))
}
pub fn new_tag(rng: &mut (impl Rng + ?Sized)) -> String {
    random_alnum(rng, 12)
}
pub fn new_call_id(rng: &mut (impl Rng + ?Sized), host: &str) -> String {
    format!("{}@{}", random_alnum(rng, 20), host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Protocol notes T1 / T2 are written with plain newlines; on the wire they are CRLF.
    fn crlf(s: &str) -> Vec<u8> {
        s.replace('\n', "\r\n").into_bytes()
    }

    const T1: &str = "INVITE sip:friends@cf.example.com SIP/2.0
Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-a1-7f3c9e01
Max-Forwards: 70
From: \"Alice\" <sip:alice@example.com>;tag=a-52f1c0
To: <sip:friends@cf.example.com>
Call-ID: a1c0ffee-0001@client-a.example.com
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.1:5060;transport=tcp>;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg\"
Accept-Contact: *;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg\"
P-Preferred-Service: urn:urn-7:3gpp-service.ims.icsi.oma.cpm.largemsg
Conversation-ID: 2b7c3d9e6a1f4e0b8c5d
Contribution-ID: 8f2e4a6c1b3d5f7e9a0c
Supported: timer
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS
Content-Type: application/sdp
Content-Length: 291

v=0
o=alice 3724394400 3724394400 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=message 20001 TCP/MSRP *
a=sendonly
a=accept-types:message/cpim
a=accept-wrapped-types:text/plain message/imdn+xml
a=max-size:1048576
a=path:msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp
a=setup:actpass
";

    const T2: &str = "SIP/2.0 200 OK
Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-a1-7f3c9e01;received=127.0.0.1
From: \"Alice\" <sip:alice@example.com>;tag=a-52f1c0
To: <sip:friends@cf.example.com>;tag=pfa-90d1e4
Call-ID: a1c0ffee-0001@client-a.example.com
CSeq: 1 INVITE
Contact: <sip:pf-a@127.0.0.2:5060;transport=tcp>
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS
Content-Type: application/sdp
Content-Length: 270

v=0
o=pf-a 3724394401 3724394401 IN IP4 127.0.0.2
s=-
c=IN IP4 127.0.0.2
t=0 0
m=message 20002 TCP/MSRP *
a=recvonly
a=accept-types:message/cpim
a=accept-wrapped-types:text/plain message/imdn+xml
a=path:msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp
a=setup:passive
";

    fn err_of(bytes: &[u8]) -> SipError {
        match SipMessage::parse(bytes) {
            Ok(m) => panic!("expected an error, parsed {}", m.summary()),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_t1_invite() {
        let bytes = crlf(T1);
        assert_eq!(bytes.len(), 1036);
        let m = SipMessage::parse(&bytes).unwrap();
        assert!(m.is_request());
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.code(), None);
        assert_eq!(m.request_uri(), Some("sip:friends@cf.example.com"));
        assert_eq!(m.summary(), "INVITE sip:friends@cf.example.com SIP/2.0");
        assert_eq!(m.headers.len(), 15);
        assert_eq!(m.headers[0].0, "Via");
        assert_eq!(
            m.headers[14],
            ("Content-Length".to_string(), "291".to_string())
        );
        assert_eq!(m.body.len(), 291);
        assert_eq!(&m.raw[..], &bytes[..]);
        assert_eq!(m.call_id(), Some("a1c0ffee-0001@client-a.example.com"));
        assert_eq!(m.header("call-id"), m.call_id());
        assert_eq!(m.header("i"), m.call_id());
        assert_eq!(m.header("I"), m.call_id());
        assert_eq!(m.cseq(), Some((1, Method::Invite)));
        assert_eq!(m.from_tag().as_deref(), Some("a-52f1c0"));
        assert_eq!(m.to_tag(), None);
        assert_eq!(m.from_uri().as_deref(), Some("sip:alice@example.com"));
        assert_eq!(m.to_uri().as_deref(), Some("sip:friends@cf.example.com"));
        assert_eq!(
            m.contact_uri().as_deref(),
            Some("sip:alice@127.0.0.1:5060;transport=tcp")
        );
        assert_eq!(m.via_branch().as_deref(), Some("z9hG4bK-a1-7f3c9e01"));
        assert_eq!(
            m.via_sent_by(),
            Some((Transport::Tcp, "127.0.0.1:5060".to_string()))
        );
        assert_eq!(m.content_type(), Some("application/sdp"));
        assert_eq!(m.sdp_body().unwrap(), m.body);
        assert!(m.body.starts_with(b"v=0\r\n"));
        assert_eq!(m.resource_list(), Ok(None));
        assert_eq!(m.header("Supported"), Some("timer"));
        assert_eq!(m.header("k"), Some("timer"));
        assert_eq!(m.header_all("Allow").count(), 1);
        assert_eq!(m.header("X-Absent"), None);
    }

    #[test]
    fn parses_t2_response() {
        let bytes = crlf(T2);
        assert_eq!(bytes.len(), 673);
        let m = SipMessage::parse(&bytes).unwrap();
        assert!(!m.is_request());
        assert_eq!(m.code(), Some(200));
        assert_eq!(m.method(), None);
        assert_eq!(m.request_uri(), None);
        assert_eq!(
            m.start,
            StartLine::Response {
                code: 200,
                reason: "OK".into()
            }
        );
        assert_eq!(m.summary(), "SIP/2.0 200 OK");
        assert_eq!(m.body.len(), 270);
        assert_eq!(&m.raw[..], &bytes[..]);
        assert_eq!(m.to_tag().as_deref(), Some("pfa-90d1e4"));
        assert_eq!(m.from_tag().as_deref(), Some("a-52f1c0"));
        assert_eq!(m.cseq(), Some((1, Method::Invite)));
        assert_eq!(m.via_branch().as_deref(), Some("z9hG4bK-a1-7f3c9e01"));
        assert_eq!(
            m.contact_uri().as_deref(),
            Some("sip:pf-a@127.0.0.2:5060;transport=tcp")
        );
        assert!(m.sdp_body().unwrap().ends_with(b"a=setup:passive\r\n"));
    }

    #[test]
    fn compact_header_names_are_expanded() {
        let body = "v=0\r\n";
        let text = format!(
            "MESSAGE sip:bob@example.com SIP/2.0\r\n\
             v: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKcompact\r\n\
             i: compact-1@example.com\r\n\
             f: sip:alice@example.com;tag=ftag\r\n\
             t: Bob <sip:bob@example.com>\r\n\
             m: <sip:alice@192.0.2.1:5070>\r\n\
             k: timer\r\n\
             s: hello\r\n\
             e: identity\r\n\
             CSeq: 7 MESSAGE\r\n\
             c: application/sdp\r\n\
             l: {}\r\n\r\n{body}",
            body.len()
        );
        let m = SipMessage::parse(text.as_bytes()).unwrap();
        let names: Vec<&str> = m.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Via",
                "Call-ID",
                "From",
                "To",
                "Contact",
                "Supported",
                "Subject",
                "Content-Encoding",
                "CSeq",
                "Content-Type",
                "Content-Length"
            ]
        );
        assert_eq!(m.method(), Some(&Method::Message));
        assert_eq!(m.call_id(), Some("compact-1@example.com"));
        assert_eq!(m.header("Subject"), Some("hello"));
        assert_eq!(m.header("s"), Some("hello"));
        assert_eq!(m.from_tag().as_deref(), Some("ftag"));
        // addr-spec without brackets: `;tag` is a header parameter, not part of the URI.
        assert_eq!(m.from_uri().as_deref(), Some("sip:alice@example.com"));
        assert_eq!(m.to_uri().as_deref(), Some("sip:bob@example.com"));
        assert_eq!(m.contact_uri().as_deref(), Some("sip:alice@192.0.2.1:5070"));
        assert_eq!(
            m.via_sent_by(),
            Some((Transport::Udp, "192.0.2.1:5070".to_string()))
        );
        assert_eq!(m.via_branch().as_deref(), Some("z9hG4bKcompact"));
        assert_eq!(m.cseq(), Some((7, Method::Message)));
        assert_eq!(&m.body[..], body.as_bytes());
        // Lower-case long names are canonicalised too.
        let m = SipMessage::parse(
            b"OPTIONS sip:a@b SIP/2.0\r\ncall-id: x\r\nVIA: SIP/2.0/UDP h\r\ncontent-length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.headers[0].0, "Call-ID");
        assert_eq!(m.headers[1].0, "Via");
        assert_eq!(m.headers[2].0, "Content-Length");
    }

    #[test]
    fn folded_lines_and_whitespace_are_normalised() {
        let text = b"INVITE sip:bob@example.com SIP/2.0\r\n\
            Via  : SIP / 2.0\r\n  / UDP\r\n\t192.0.2.2 : 5060 ;branch=z9hG4bKfold ;rport,\r\n SIP/2.0/TCP second.example.com;branch=z9hG4bKsecond\r\n\
            Subject: first part\r\n   second part  \r\n\
            From: \"J \\\"Rosenberg\\\\\\\" <sip:x@y>\" <sip:jdrosen@example.com> ; tag = 98asjd8\r\n\
            To: sip:bob@example.com\r\n\
            Call-ID: fold@example.com\r\n\
            CSeq:   3   INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        let m = SipMessage::parse(text).unwrap();
        assert_eq!(m.header("Subject"), Some("first part second part"));
        assert_eq!(m.headers[0].0, "Via");
        assert_eq!(m.header_all("Via").count(), 1);
        assert_eq!(
            m.via_sent_by(),
            Some((Transport::Udp, "192.0.2.2:5060".to_string()))
        );
        assert_eq!(m.via_branch().as_deref(), Some("z9hG4bKfold"));
        assert_eq!(m.from_uri().as_deref(), Some("sip:jdrosen@example.com"));
        assert_eq!(m.from_tag().as_deref(), Some("98asjd8"));
        assert_eq!(m.cseq(), Some((3, Method::Invite)));
        assert_eq!(&m.raw[..], &text[..]);
    }

    #[test]
    fn bare_lf_line_ends_are_accepted() {
        let text = b"BYE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP h:1;branch=z9hG4bKlf\nCall-ID: lf\nContent-Length: 3\n\nabcEXTRA";
        let m = SipMessage::parse(text).unwrap();
        assert_eq!(m.method(), Some(&Method::Bye));
        assert_eq!(&m.body[..], b"abc");
        assert_eq!(m.raw.len(), text.len() - 5);
    }

    #[test]
    fn dblreq_trailing_bytes_are_ignored() {
        // RFC 4475 §3.1.1.8 in spirit: a datagram holding a request plus a second one.
        let first = b"REGISTER sip:example.com SIP/2.0\r\n\
            To: sip:j.user@example.com\r\n\
            From: sip:j.user@example.com;tag=43251j3j324\r\n\
            Max-Forwards: 8\r\n\
            I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\r\n\
            Contact: sip:j.user@host.example.com\r\n\
            CSeq: 8 REGISTER\r\n\
            Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\r\n\
            Content-Length: 0\r\n\r\n";
        let second = b"INVITE sip:joe@example.com SIP/2.0\r\n\
            t: sip:joe@example.com\r\n\
            From: sip:caller@example.net;tag=141334\r\n\
            Max-Forwards: 8\r\n\
            Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15\r\n\
            CSeq: 8 INVITE\r\n\
            Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234\r\n\
            Content-Type: application/sdp\r\n\
            Content-Length: 4\r\n\r\nv=0\r\n";
        let mut dgram = first.to_vec();
        dgram.extend_from_slice(second);
        let m = SipMessage::parse(&dgram).unwrap();
        assert_eq!(m.method(), Some(&Method::Other("REGISTER".into())));
        assert_eq!(&m.raw[..], &first[..]);
        assert!(m.body.is_empty());
        assert_eq!(m.call_id(), Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412"));
        assert_eq!(
            m.contact_uri().as_deref(),
            Some("sip:j.user@host.example.com")
        );
    }

    #[test]
    fn without_content_length_the_body_is_the_rest() {
        let m = SipMessage::parse(b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\nhello").unwrap();
        assert_eq!(&m.body[..], b"hello");
    }

    #[test]
    fn leading_crlf_is_skipped() {
        let mut bytes = b"\r\n\r\n".to_vec();
        bytes.extend_from_slice(&crlf(T2));
        let m = SipMessage::parse(&bytes).unwrap();
        assert_eq!(&m.raw[..], &crlf(T2)[..]);
    }

    #[test]
    fn extension_methods_ipv6_references_and_user_parameters_parse() {
        // RFC 4475 intmeth-style method, IPv6 reference and user parameters in the R-URI.
        let m = SipMessage::parse(
            b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n\
              Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n\
              Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n\
              Content-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            m.method(),
            Some(&Method::Other(
                "!interesting-Method0123456789_*+`.%indeed'~".into()
            ))
        );
        assert_eq!(m.via_branch().as_deref(), Some("z9hG4bK-.!%66*_+`'~"));
        let m = SipMessage::parse(
            b"OPTIONS sip:[2001:db8::10]:5070 SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKas3\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.request_uri(), Some("sip:[2001:db8::10]:5070"));
        assert_eq!(
            m.via_sent_by(),
            Some((Transport::Udp, "[2001:db8::9:1]:5060".into()))
        );
        let m = SipMessage::parse(
            b"INVITE sip:user;par=u%40example.net@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            m.request_uri(),
            Some("sip:user;par=u%40example.net@example.com")
        );
        assert_eq!(m.via_branch(), None);
        // Response without a reason phrase (RFC 4475 noreason-style) and with an odd one.
        let m =
            SipMessage::parse(b"SIP/2.0 100 \r\nVia: SIP/2.0/UDP h\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        assert_eq!(
            m.start,
            StartLine::Response {
                code: 100,
                reason: String::new()
            }
        );
        let m = SipMessage::parse(
            "SIP/2.0 200 = 2**3 * 5**2 \u{43d}\u{43e}\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 0\r\n\r\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(m.code(), Some(200));
        assert_eq!(m.summary(), "SIP/2.0 200 = 2**3 * 5**2 \u{43d}\u{43e}");
    }

    #[test]
    fn error_paths() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty message"),
            (b"\r\n\r\n", "empty message"),
            (b"\x00\x01\x02garbage\xff", "incomplete head"),
            (b"garbage\r\n\r\n", "malformed request line"),
            (b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n", "incomplete head"),
            (
                b"INVITE sip:a@b SIP/2.0\r\nVia: \xff\xfe\r\n\r\n",
                "not valid UTF-8",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
                "too large",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
                "truncated body",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\nx",
                "truncated body",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -5\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\nContent-Length: five\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\nContent-Length:\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab",
                "conflicting",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\nNoColonHere\r\n\r\n",
                "without a colon",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n",
                "invalid header name",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\n: x\r\n\r\n",
                "invalid header name",
            ),
            (
                b"INVITE sip:a@b SIP/2.0\r\n continued\r\n\r\n",
                "continuation line",
            ),
            (
                b"Via: SIP/2.0/UDP h\r\nCall-ID: x\r\n\r\n",
                "missing start line",
            ),
            (b"INVITE sip:a@b SIP/2.0\r\n\r\n", "no headers"),
            (
                b"INVITE sip:a@b SIP/7.0\r\nVia: x\r\n\r\n",
                "unsupported SIP version",
            ),
            (
                b"SIP/7.0 200 OK\r\nVia: x\r\n\r\n",
                "unsupported SIP version",
            ),
            (
                b"SIP/2.0 4294967301 better not break the receiver\r\nVia: x\r\n\r\n",
                "invalid status code",
            ),
            (b"SIP/2.0 2x0 OK\r\nVia: x\r\n\r\n", "invalid status code"),
            (b"SIP/2.0 099 Low\r\nVia: x\r\n\r\n", "out of range"),
            (b"SIP/2.0 700 High\r\nVia: x\r\n\r\n", "out of range"),
            (
                b" INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n",
                "malformed request line",
            ),
            (
                b"INVITE sip:a@b SIP/2.0  \r\nVia: x\r\n\r\n",
                "malformed request line",
            ),
            (
                b"INVITE <sip:a@b> SIP/2.0\r\nVia: x\r\n\r\n",
                "invalid Request-URI",
            ),
            (
                b"INVITE a@b SIP/2.0\r\nVia: x\r\n\r\n",
                "invalid Request-URI",
            ),
            (
                b"INV\"ITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n",
                "invalid method",
            ),
        ];
        for (input, want) in cases {
            let e = err_of(input);
            assert!(
                e.msg.contains(want),
                "input {:?}: got {:?}, want {want:?}",
                String::from_utf8_lossy(input),
                e.msg
            );
            // Display is usable in logs.
            assert!(e.to_string().starts_with("SIP: "));
        }
        let e = err_of(b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nNoColonHere\r\n\r\n");
        assert_eq!(e.excerpt, "NoColonHere");
        let e = err_of(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nshort");
        assert_eq!(e.excerpt, "Content-Length: 10");
        let long = format!("INVITE sip:a@b SIP/2.0\r\n{}\r\n\r\n", "x".repeat(500));
        assert!(err_of(long.as_bytes()).excerpt.chars().count() <= 81);
    }

    #[test]
    fn never_panics_on_prefixes_and_mutations() {
        let t1 = crlf(T1);
        for i in 0..t1.len() {
            let _ = SipMessage::parse(&t1[..i]);
        }
        let mut rng = StdRng::seed_from_u64(3261);
        for _ in 0..2000 {
            let mut m = t1.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..m.len());
                m[i] = rng.random();
            }
            if let Ok(msg) = SipMessage::parse(&m) {
                let _ = (
                    msg.sdp_body(),
                    msg.resource_list(),
                    msg.via_sent_by(),
                    msg.cseq(),
                );
                let _ = (
                    msg.from_tag(),
                    msg.to_uri(),
                    msg.contact_uri(),
                    msg.via_branch(),
                );
            }
            let mut f = SipFramer::new(Limits::default());
            f.push(&m);
            let _ = f.next();
        }
        for _ in 0..500 {
            let len = rng.random_range(0..300);
            let junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let _ = SipMessage::parse(&junk);
        }
    }

    fn invite_spec() -> RequestSpec {
        RequestSpec {
            method: Method::Invite,
            request_uri: "sip:friends@cf.example.com".into(),
            transport: Transport::Tcp,
            sent_by: "127.0.0.1:5060".into(),
            branch: "z9hG4bK-test-1".into(),
            from_uri: "sip:alice@example.com".into(),
            from_tag: "a-52f1c0".into(),
            to_uri: "sip:friends@cf.example.com".into(),
            to_tag: None,
            call_id: "callid-1@client-a.example.com".into(),
            cseq: 1,
            contact: Some("sip:alice@127.0.0.1:5060;transport=tcp".into()),
            extra: vec![("Supported".into(), "timer".into())],
            body: Some(Body::sdp(crlf(T1)[745..].to_vec())),
        }
    }

    fn names(m: &SipMessage) -> Vec<&str> {
        m.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// SIP over TLS (RFC 3261 §26.2): a `sips:` Request-URI and Contact, Via TLS, survive
    /// building and parsing; the hosts and ports read back (IPv4 and IPv6).
    #[test]
    fn sips_invite_round_trip() {
        for (host, sent_by) in [
            ("127.0.0.1:5061", "127.0.0.1:5061"),
            ("[::1]:5061", "[::1]:5061"),
        ] {
            let spec = RequestSpec {
                request_uri: "sips:friends@cf.example.com".into(),
                transport: Transport::Tls,
                sent_by: sent_by.into(),
                contact: Some(format!("sips:alice@{host}")),
                ..invite_spec()
            };
            let m = build_request(&spec);
            let text = String::from_utf8(m.raw.to_vec()).unwrap();
            assert!(
                text.starts_with(&format!(
                    "INVITE sips:friends@cf.example.com SIP/2.0\r\nVia: SIP/2.0/TLS {sent_by};"
                )),
                "{text}"
            );
            assert!(text.contains(&format!("\r\nContact: <sips:alice@{host}>\r\n")));
            let back = SipMessage::parse(&m.raw).unwrap();
            assert_eq!(back, m);
            assert_eq!(back.request_uri(), Some("sips:friends@cf.example.com"));
            assert_eq!(back.via_sent_by(), Some((Transport::Tls, sent_by.into())));
            let contact = back.contact_uri().unwrap();
            assert!(host::is_sips(&contact) && !host::is_sips("sip:a@b"));
            let (h, port) = host::sip_uri_hostport(&contact).unwrap().unwrap();
            assert_eq!(port, Some(5061));
            assert!(h.ip().is_some());
            assert!(back.host_errors().is_empty(), "{:?}", back.host_errors());
        }
    }

    #[test]
    fn build_invite_round_trip() {
        let spec = invite_spec();
        let m = build_request(&spec);
        assert_eq!(
            names(&m),
            [
                "Via",
                "Max-Forwards",
                "From",
                "To",
                "Call-ID",
                "CSeq",
                "Contact",
                "Supported",
                "Content-Type",
                "Content-Length"
            ]
        );
        let text = String::from_utf8(m.raw.to_vec()).unwrap();
        assert!(text.starts_with(
            "INVITE sip:friends@cf.example.com SIP/2.0\r\n\
             Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-test-1\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@example.com>;tag=a-52f1c0\r\n\
             To: <sip:friends@cf.example.com>\r\n\
             Call-ID: callid-1@client-a.example.com\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:alice@127.0.0.1:5060;transport=tcp>\r\n\
             Supported: timer\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: 291\r\n\r\nv=0\r\n"
        ));
        let back = SipMessage::parse(&m.raw).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.body.len(), 291);
        assert_eq!(m.via_branch().as_deref(), Some("z9hG4bK-test-1"));
        assert_eq!(
            m.via_sent_by(),
            Some((Transport::Tcp, "127.0.0.1:5060".into()))
        );
        assert_eq!(m.from_tag().as_deref(), Some("a-52f1c0"));
        assert_eq!(
            m.contact_uri().as_deref(),
            Some("sip:alice@127.0.0.1:5060;transport=tcp")
        );
        assert_eq!(m.sdp_body().unwrap(), m.body);
    }

    #[test]
    fn build_responses_round_trip() {
        let inv = SipMessage::parse(&crlf(T1)).unwrap();
        let trying = build_response(&inv, 100, "Trying", None, None, None);
        assert_eq!(trying.summary(), "SIP/2.0 100 Trying");
        assert_eq!(
            names(&trying),
            ["Via", "From", "To", "Call-ID", "CSeq", "Content-Length"]
        );
        assert_eq!(trying.to_tag(), None);
        assert_eq!(trying.header("Content-Length"), Some("0"));
        assert_eq!(SipMessage::parse(&trying.raw).unwrap(), trying);

        let sdp = crlf(T2)[403..].to_vec();
        assert_eq!(sdp.len(), 270);
        let ok = build_response(
            &inv,
            200,
            "OK",
            Some("pfa-90d1e4"),
            Some("sip:pf-a@127.0.0.2:5060;transport=tcp"),
            Some(Body::sdp(sdp.clone())),
        );
        assert_eq!(
            names(&ok),
            [
                "Via",
                "From",
                "To",
                "Call-ID",
                "CSeq",
                "Contact",
                "Content-Type",
                "Content-Length"
            ]
        );
        assert_eq!(SipMessage::parse(&ok.raw).unwrap(), ok);
        assert_eq!(ok.code(), Some(200));
        assert_eq!(ok.to_tag().as_deref(), Some("pfa-90d1e4"));
        assert_eq!(
            ok.header("To"),
            Some("<sip:friends@cf.example.com>;tag=pfa-90d1e4")
        );
        assert_eq!(ok.header("From"), inv.header("From"));
        assert_eq!(ok.via_branch(), inv.via_branch());
        assert_eq!(ok.cseq(), Some((1, Method::Invite)));
        assert_eq!(&ok.sdp_body().unwrap()[..], &sdp[..]);
        assert_eq!(
            ok.contact_uri().as_deref(),
            Some("sip:pf-a@127.0.0.2:5060;transport=tcp")
        );

        // A To that already has a tag keeps it; all Vias are copied in order.
        let req = SipMessage::parse(
            b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP p2;branch=z9hG4bK2, SIP/2.0/UDP p3\r\nFrom: <sip:x@y>;tag=f\r\nTo: <sip:a@b>;tag=t\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let r = build_response(&req, 200, "OK", Some("other"), None, None);
        assert_eq!(r.to_tag().as_deref(), Some("t"));
        let vias: Vec<&str> = r.header_all("v").collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP p1;branch=z9hG4bK1",
                "SIP/2.0/UDP p2;branch=z9hG4bK2, SIP/2.0/UDP p3"
            ]
        );
        assert_eq!(r.cseq(), Some((2, Method::Bye)));
    }

    #[test]
    fn build_ack_and_bye_round_trip() {
        for (method, cseq) in [(Method::Ack, 1), (Method::Bye, 2)] {
            let spec = RequestSpec {
                method: method.clone(),
                request_uri: "sip:pf-a@127.0.0.2:5060;transport=tcp".into(),
                branch: new_branch(&mut StdRng::seed_from_u64(1)),
                to_tag: Some("pfa-90d1e4".into()),
                cseq,
                contact: None,
                extra: vec![],
                body: None,
                ..invite_spec()
            };
            let m = build_request(&spec);
            assert_eq!(
                names(&m),
                [
                    "Via",
                    "Max-Forwards",
                    "From",
                    "To",
                    "Call-ID",
                    "CSeq",
                    "Content-Length"
                ]
            );
            assert_eq!(SipMessage::parse(&m.raw).unwrap(), m);
            assert_eq!(m.method(), Some(&method));
            assert_eq!(m.cseq(), Some((cseq, method.clone())));
            assert_eq!(m.to_tag().as_deref(), Some("pfa-90d1e4"));
            assert_eq!(m.via_branch(), Some(spec.branch.clone()));
            assert!(m.body.is_empty());
            assert!(m.raw.ends_with(b"Content-Length: 0\r\n\r\n"));
        }
    }

    #[test]
    fn build_with_contact_feature_tags_and_extension_method() {
        let spec = RequestSpec {
            method: Method::Other("PUBLISH".into()),
            contact: Some("<sip:a@127.0.0.1>;+g.oma.sip-im.large-message".into()),
            body: None,
            ..invite_spec()
        };
        let m = build_request(&spec);
        assert_eq!(
            m.header("Contact"),
            Some("<sip:a@127.0.0.1>;+g.oma.sip-im.large-message")
        );
        assert_eq!(m.contact_uri().as_deref(), Some("sip:a@127.0.0.1"));
        assert_eq!(m.cseq(), Some((1, Method::Other("PUBLISH".into()))));
        // CR/LF in caller values cannot break the framing.
        let spec = RequestSpec {
            extra: vec![("Subject".into(), "a\r\nInjected: yes".into())],
            ..invite_spec()
        };
        let m = build_request(&spec);
        assert_eq!(m.header("Injected"), None);
        assert_eq!(SipMessage::parse(&m.raw).unwrap(), m);
    }

    #[test]
    fn multipart_resource_list_round_trip() {
        let sdp = crlf(T1)[745..].to_vec();
        let members: Vec<String> = vec![
            "sip:bob@example.com".into(),
            "sip:carol@example.com;transport=tcp".into(),
            "tel:+1-555-0100".into(),
            "sip:odd&\"<name>'@example.com".into(),
        ];
        let mut rng = StdRng::seed_from_u64(5366);
        let body = Body::sdp_with_resource_list(&sdp, &members, &mut rng);
        assert!(body.content_type.starts_with("multipart/mixed;boundary="));
        let spec = RequestSpec {
            extra: vec![("Require".into(), "recipient-list-invite".into())],
            body: Some(body.clone()),
            ..invite_spec()
        };
        let m = build_request(&spec);
        let back = SipMessage::parse(&m.raw).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.header("Require"), Some("recipient-list-invite"));
        assert_eq!(&back.sdp_body().unwrap()[..], &sdp[..]);
        assert_eq!(back.resource_list().unwrap(), Some(members.clone()));
        let text = String::from_utf8(body.bytes.to_vec()).unwrap();
        assert!(text.contains("Content-Disposition: recipient-list\r\n"));
        assert!(
            text.contains("<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>")
        );
        assert!(text.contains("<entry uri=\"sip:odd&amp;&quot;&lt;name&gt;&#39;@example.com\"/>"));
        // Boundaries are random, and reproducible from the seed.
        assert_ne!(
            Body::sdp_with_resource_list(&sdp, &members, &mut rng).content_type,
            body.content_type
        );
        assert_eq!(
            Body::sdp_with_resource_list(&sdp, &members, &mut StdRng::seed_from_u64(5366))
                .content_type,
            body.content_type
        );
        // Over the framer too.
        let mut f = SipFramer::new(Limits::default());
        f.push(&m.raw);
        assert_eq!(f.next().unwrap().unwrap(), m);
    }

    fn with_body(ct: &str, body: &str) -> SipMessage {
        let text = format!(
            "INVITE sip:conf-factory@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKm\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        SipMessage::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn resource_list_variants() {
        // RFC 5366 §3 style example: quoted boundary, preamble, single quotes, namespace
        // prefix, comments, entry-ref and an unrelated copyControl attribute.
        let body = "preamble\r\n--boundary1\r\n\
            Content-Type: application/sdp\r\n\r\nv=0\r\n\r\n\
            --boundary1\r\n\
            Content-Type: application/resource-lists+xml\r\n\
            Content-Disposition: recipient-list\r\n\r\n\
            <?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
            <rl:resource-lists xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"\r\n\
              xmlns:cp=\"urn:ietf:params:xml:ns:copyControl\">\r\n\
              <rl:list>\r\n\
                <!-- <entry uri=\"sip:commented@example.com\"/> -->\r\n\
                <rl:entry uri=\"sip:bill@example.com\" cp:copyControl=\"to\" />\r\n\
                <rl:entry uri='sip:randy@example.net' cp:copyControl='to'/>\r\n\
                <rl:entry-ref ref=\"x\"/>\r\n\
                <rl:entry  uri = \"sip:joe@example.org\"><rl:display-name>Joe</rl:display-name></rl:entry>\r\n\
              </rl:list>\r\n\
            </rl:resource-lists>\r\n\
            --boundary1--\r\nepilogue";
        let m = with_body("multipart/mixed; boundary=\"boundary1\"", body);
        assert_eq!(
            m.resource_list().unwrap(),
            Some(vec![
                "sip:bill@example.com".to_string(),
                "sip:randy@example.net".to_string(),
                "sip:joe@example.org".to_string()
            ])
        );
        assert_eq!(&m.sdp_body().unwrap()[..], b"v=0\r\n");

        // A bare resource-lists body.
        let m = with_body(
            "application/resource-lists+xml",
            "<resource-lists><list><entry uri=\"sip:a@b\"/></list></resource-lists>",
        );
        assert_eq!(
            m.resource_list().unwrap(),
            Some(vec!["sip:a@b".to_string()])
        );
        assert_eq!(m.sdp_body(), None);

        // Multipart without a list part.
        let m = with_body(
            "multipart/mixed;boundary=b",
            "--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b--\r\n",
        );
        assert_eq!(m.resource_list().unwrap(), None);
        assert_eq!(&m.sdp_body().unwrap()[..], b"v=0");
    }

    #[test]
    fn resource_list_errors() {
        let list = |xml: &str| {
            with_body("application/resource-lists+xml", xml)
                .resource_list()
                .unwrap_err()
                .msg
        };
        assert!(
            list("<resource-lists><list><entry name=\"x\"/></list></resource-lists>")
                .contains("without a uri")
        );
        assert!(
            list("<resource-lists><list><entry uri=sip:a@b/></list></resource-lists>")
                .contains("unquoted")
        );
        assert!(list("<resource-lists><list><entry uri=\"sip:a@b").contains("unterminated"));
        assert!(list("<resource-lists><list><entry uri=\"sip:a@b\"").contains("unterminated"));
        assert!(list("<resource-lists><!-- open").contains("unterminated"));
        assert!(
            list("<resource-lists><entry uri=\"a&bogus;\"/></resource-lists>").contains("entity")
        );
        assert!(list("<resource-lists><entry uri/></resource-lists>").contains("without value"));
        assert!(list("<list><entry uri=\"sip:a@b\"/></list>").contains("no <resource-lists>"));
        assert!(list("< >").contains("empty element name"));
        let m = SipMessage::parse(
            b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nContent-Type: application/resource-lists+xml\r\nContent-Length: 2\r\n\r\n\xff\xfe",
        )
        .unwrap();
        assert!(m.resource_list().unwrap_err().msg.contains("UTF-8"));

        let multi = |ct: &str, body: &str| with_body(ct, body).resource_list().unwrap_err().msg;
        assert!(multi("multipart/mixed", "--b\r\n\r\nx\r\n--b--").contains("boundary"));
        assert!(multi("multipart/mixed;boundary=b", "no delimiter here")
            .contains("without a boundary delimiter"));
        assert!(multi(
            "multipart/mixed;boundary=b",
            "--b\r\nContent-Type: text/plain\r\n\r\nx"
        )
        .contains("close delimiter"));
        assert!(multi("multipart/mixed;boundary=b", "--b").contains("not terminated"));
        assert!(multi("multipart/mixed;boundary=b", "--bjunk\r\n\r\nx\r\n--b--").contains("junk"));
        assert!(multi(
            "multipart/mixed;boundary=b",
            "--b\r\nNoColon\r\n\r\nx\r\n--b--"
        )
        .contains("colon"));
        // sdp_body gives None rather than an error.
        assert_eq!(with_body("multipart/mixed", "x").sdp_body(), None);
    }

    fn pipelined() -> Vec<u8> {
        let mut v = crlf(T1);
        v.extend_from_slice(&crlf(T2));
        v
    }

    #[test]
    fn framer_every_split_point() {
        let msg = crlf(T1);
        let want = SipMessage::parse(&msg).unwrap();
        for split in 0..=msg.len() {
            let mut f = SipFramer::new(Limits::default());
            f.push(&msg[..split]);
            let first = f.next().unwrap();
            if split < msg.len() {
                assert!(first.is_none(), "split {split}");
                f.push(&msg[split..]);
                assert_eq!(f.next().unwrap().as_ref(), Some(&want), "split {split}");
            } else {
                assert_eq!(first.as_ref(), Some(&want));
            }
            assert_eq!(f.next().unwrap(), None);
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn framer_byte_by_byte_with_keepalives() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(&crlf(T1));
        stream.extend_from_slice(b"\r\n\r\n\r\n");
        stream.extend_from_slice(&crlf(T2));
        let mut f = SipFramer::new(Limits::default());
        let mut got = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            while let Some(m) = f.next().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0].raw[..], &crlf(T1)[..]);
        assert_eq!(&got[1].raw[..], &crlf(T2)[..]);
        assert_eq!(got[1].to_tag().as_deref(), Some("pfa-90d1e4"));
    }

    #[test]
    fn framer_pipelined_in_one_push() {
        let mut f = SipFramer::new(Limits::default());
        f.push(&pipelined());
        let a = f.next().unwrap().unwrap();
        let b = f.next().unwrap().unwrap();
        assert_eq!(a.method(), Some(&Method::Invite));
        assert_eq!(b.code(), Some(200));
        assert_eq!(f.next().unwrap(), None);
        // Two pieces at every split of the pair.
        let all = pipelined();
        for split in (0..=all.len()).step_by(7) {
            let mut f = SipFramer::new(Limits::default());
            let mut got = 0;
            for piece in [&all[..split], &all[split..]] {
                f.push(piece);
                while f.next().unwrap().is_some() {
                    got += 1;
                }
            }
            assert_eq!(got, 2, "split {split}");
        }
    }

    #[test]
    fn framer_errors() {
        // No Content-Length on a stream.
        let mut f = SipFramer::new(Limits::default());
        f.push(b"MESSAGE sip:a@b SIP/2.0\r\nVia: x\r\n\r\nhello");
        let e = f.next().unwrap_err();
        assert!(e.msg.contains("missing Content-Length"), "{e}");
        // Sticky.
        f.push(&crlf(T1));
        assert_eq!(f.next().unwrap_err(), e);

        // Head never completes within max_message.
        let limits = Limits {
            max_message: 200,
            max_headers: 128,
        };
        let mut f = SipFramer::new(limits);
        f.push(b"INVITE sip:a@b SIP/2.0\r\n");
        assert_eq!(f.next().unwrap(), None);
        let mut err = None;
        for _ in 0..20 {
            f.push(b"X-Filler: 0123456789\r\n");
            match f.next() {
                Ok(None) => {}
                Ok(Some(_)) => panic!("no message expected"),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(err.unwrap().msg.contains("max_message"));

        // Content-Length beyond max_message.
        let mut f = SipFramer::new(Limits {
            max_message: 1000,
            max_headers: 128,
        });
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n");
        assert!(f.next().unwrap_err().msg.contains("exceeds max_message"));
        let mut f = SipFramer::new(Limits {
            max_message: 1000,
            max_headers: 128,
        });
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\n");
        assert!(f.next().unwrap_err().msg.contains("exceeds max_message"));

        // Too many headers, detected before the head completes.
        let mut f = SipFramer::new(Limits {
            max_message: 100_000,
            max_headers: 5,
        });
        f.push(b"INVITE sip:a@b SIP/2.0\r\n");
        for i in 0..6 {
            f.push(format!("X-H{i}: v\r\n").as_bytes());
        }
        assert!(f.next().unwrap_err().msg.contains("too many headers"));
        // Continuation lines do not count.
        let mut f = SipFramer::new(Limits {
            max_message: 100_000,
            max_headers: 2,
        });
        f.push(b"INVITE sip:a@b SIP/2.0\r\nVia: a\r\n b\r\n c\r\nContent-Length: 0\r\n\r\n");
        assert!(f.next().unwrap().is_some());

        // Bad head and bad Content-Length.
        let mut f = SipFramer::new(Limits::default());
        f.push(b"garbage\r\n\r\n");
        assert!(f.next().is_err());
        let mut f = SipFramer::new(Limits::default());
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(f.next().unwrap_err().msg.contains("invalid Content-Length"));
    }

    #[test]
    fn framer_scans_linearly() {
        // A large head pushed a byte at a time must not be rescanned from the start each time.
        let mut head = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
        for i in 0..100 {
            head.extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(500)).as_bytes());
        }
        head.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        let mut f = SipFramer::new(Limits {
            max_message: 1 << 20,
            max_headers: 200,
        });
        // A time bound on the framer: tests may read the clock.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        for b in &head {
            f.push(std::slice::from_ref(b));
            if let Some(m) = f.next().unwrap() {
                assert_eq!(m.raw.len(), head.len());
            }
        }
        assert_eq!(f.buffered(), 0);
        #[allow(clippy::disallowed_methods)]
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(5));
        assert_eq!(f.scan.scan, 0);
    }

    #[test]
    fn identifiers() {
        let rng = &mut StdRng::seed_from_u64(1);
        let b = new_branch(rng);
        assert!(b.starts_with("z9hG4bK"));
        assert_eq!(b.len(), 7 + 16);
        assert!(b[7..].bytes().all(|c| c.is_ascii_alphanumeric()));
        let t = new_tag(rng);
        assert_eq!(t.len(), 12);
        assert!(t.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(new_tag(rng), new_tag(rng));
        let c = new_call_id(rng, "client-a.example.com");
        let (r, h) = c.split_once('@').unwrap();
        assert_eq!(r.len(), 20);
        assert_eq!(h, "client-a.example.com");
        assert_ne!(new_branch(rng), new_branch(rng));
        // One seed, one sequence.
        assert_eq!(b, new_branch(&mut StdRng::seed_from_u64(1)));
    }

    #[test]
    fn method_and_transport_text() {
        for m in [
            "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "UPDATE",
        ] {
            assert_eq!(Method::parse(m).as_str(), m);
        }
        assert_eq!(Transport::Udp.to_string(), "UDP");
        assert_eq!(Transport::Tcp.to_string(), "TCP");
    }
}
