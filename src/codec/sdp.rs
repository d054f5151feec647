//! SDP (RFC 8866 / RFC 3264) for an MSRP media stream (RFC 4975 §8; RFC 6135 `a=setup`).
//!
//! [`Sdp`] is a generic, line-preserving parse of a session description (enough for the
//! checker to count m-lines and read any attribute); [`MsrpSdp`] is the typed view of the one
//! `m=message … TCP/MSRP *` stream that this flow negotiates, and builds the SDP an entity sends.
//! Every parse error names the 1-based line number and the offending line.

use crate::codec::msrp::{format_uri_list, MsrpUri};
use std::fmt;
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
    ///
    /// Strict where RFC 8866 §5 is strict (line syntax, `v=0` first, the §5 line order, one
    /// `o=`/`s=`) so that a malformed SUT description surfaces as a named error; the line types
    /// an MSRP stream does not use (`i u e p b t r z k`) are checked for order only.
    pub fn parse(text: &[u8]) -> Result<Sdp, SdpError> {
        parse_with_lines(text).map(|(sdp, _)| sdp)
    }

    /// The value of the first session-level `a=<name>:<value>` attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attr(&self.attributes, name)
    }
}

impl MsrpSdp {
    /// Parses bytes and extracts the first `m=message` stream (see [`MsrpSdp::from_sdp`]).
    /// Errors name the exact line, as the whole text is at hand.
    pub fn parse(text: &[u8]) -> Result<MsrpSdp, SdpError> {
        let (sdp, table) = parse_with_lines(text)?;
        extract(&sdp).map_err(|(loc, msg)| SdpError {
            line: loc_line_exact(&sdp, &table, &loc),
            excerpt: excerpt(&loc_text(&sdp, &loc)),
            msg,
        })
    }

    /// Extracts the MSRP stream: the first `m=message` section; requires a `c=`, an `a=path`
    /// whose URIs all parse, and `accept-types`.
    ///
    /// An [`Sdp`] keeps no line table, so the line number in an error about a `c=` or `a=`
    /// line is counted (from the `m=` line, or from `s=` for a session-level `c=`): exact
    /// unless optional `i=`/`u=`/`e=`/`p=`/`b=`/`k=` lines sit in between. Use
    /// [`MsrpSdp::parse`] on the raw text when the exact number matters.
    pub fn from_sdp(sdp: &Sdp) -> Result<MsrpSdp, SdpError> {
        extract(sdp).map_err(|(loc, msg)| SdpError {
            line: loc_line_estimate(sdp, &loc),
            excerpt: excerpt(&loc_text(sdp, &loc)),
            msg,
        })
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
        let at = addr_type(&self.c_addr);
        let mut lines = vec![
            "v=0".to_string(),
            format!(
                "o={} {} {} IN {at} {}",
                self.origin_user, self.session_id, self.session_version, self.c_addr
            ),
            "s=-".to_string(),
            format!("c=IN {at} {}", self.c_addr),
            "t=0 0".to_string(),
            format!("m=message {} {} *", self.port, self.proto),
        ];
        if let Some(d) = &self.direction {
            lines.push(format!("a={d}"));
        }
        lines.push(format!("a=accept-types:{}", self.accept_types.join(" ")));
        if !self.accept_wrapped_types.is_empty() {
            lines.push(format!(
                "a=accept-wrapped-types:{}",
                self.accept_wrapped_types.join(" ")
            ));
        }
        if let Some(n) = self.max_size {
            lines.push(format!("a=max-size:{n}"));
        }
        lines.push(format!("a=path:{}", format_uri_list(&self.path)));
        if let Some(s) = self.setup {
            lines.push(format!("a=setup:{s}"));
        }
        let mut out = lines.join("\r\n");
        out.push_str("\r\n");
        out
    }
}

impl Media {
    /// The value of the first `a=<name>:<value>` attribute of this media section.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attr(&self.attributes, name)
    }

    /// Whether the flag attribute `a=<name>` (no value) is present.
    pub fn has_flag(&self, name: &str) -> bool {
        self.attributes
            .iter()
            .any(|(n, v)| n == name && v.is_none())
    }
}

impl Setup {
    /// The SDP token (`active`, `passive`, `actpass`, `holdconn`).
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::Actpass => "actpass",
            Setup::Holdconn => "holdconn",
        }
    }

    /// Parses the SDP token; `None` for anything RFC 4145 does not define.
    pub fn from_token(s: &str) -> Option<Setup> {
        match s {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::Actpass),
            "holdconn" => Some(Setup::Holdconn),
            _ => None,
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn find_attr<'a>(attrs: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, v)| n == name && v.is_some())
        .and_then(|(_, v)| v.as_deref())
}

/// Longest excerpt kept in an [`SdpError`], in characters.
const EXCERPT_MAX: usize = 80;

fn excerpt(line: &str) -> String {
    if line.chars().count() <= EXCERPT_MAX {
        line.to_string()
    } else {
        let mut e: String = line.chars().take(EXCERPT_MAX - 1).collect();
        e.push('…');
        e
    }
}

fn err(line: usize, text: &str, msg: impl Into<String>) -> SdpError {
    SdpError {
        line,
        excerpt: excerpt(text),
        msg: msg.into(),
    }
}

/// RFC 8866 §5 order within the session part; lines may repeat only where noted in
/// [`repeatable`]. `t=`/`r=` share a rank because they alternate.
fn session_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'v' => 0,
        b'o' => 1,
        b's' => 2,
        b'i' => 3,
        b'u' => 4,
        b'e' => 5,
        b'p' => 6,
        b'c' => 7,
        b'b' => 8,
        b't' | b'r' => 9,
        b'z' => 10,
        b'k' => 11,
        b'a' => 12,
        _ => return None,
    })
}

/// RFC 8866 §5 order within a media section (`m=` itself has rank 0).
fn media_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'm' => 0,
        b'i' => 1,
        b'c' => 2,
        b'b' => 3,
        b'k' => 4,
        b'a' => 5,
        _ => return None,
    })
}

/// Line types that may appear more than once in a section. `c=` may repeat in a media section
/// per RFC 8866 (multicast layering), but MSRP never does that and [`Media`] holds one, so a
/// repeat is reported rather than silently dropped.
fn repeatable(t: u8) -> bool {
    matches!(t, b'e' | b'p' | b'b' | b't' | b'r' | b'a')
}

/// Splits on single spaces; `None` if any field is empty (double, leading or trailing space).
fn fields(v: &str) -> Option<Vec<&str>> {
    let f: Vec<&str> = v.split(' ').collect();
    if f.iter().any(|s| s.is_empty()) {
        None
    } else {
        Some(f)
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`{|}~".contains(c)
}

fn parse_connection(v: &str) -> Option<Connection> {
    match fields(v)?.as_slice() {
        [nt @ "IN", at @ ("IP4" | "IP6"), addr] => Some(Connection {
            net_type: nt.to_string(),
            addr_type: at.to_string(),
            address: addr.to_string(),
        }),
        _ => None,
    }
}

/// Where each element of an [`Sdp`] came from, so [`MsrpSdp::parse`] can name exact lines.
#[derive(Default)]
struct LineTable {
    session_c: Option<usize>,
    media: Vec<MediaLines>,
}

#[derive(Default)]
struct MediaLines {
    c: Option<usize>,
    attrs: Vec<usize>,
}

/// The element of an [`Sdp`] an extraction error is about.
enum Loc {
    Whole,
    Origin,
    Media(usize),
    MediaConn(usize),
    SessionConn,
    MediaAttr(usize, usize),
}

fn parse_with_lines(text: &[u8]) -> Result<(Sdp, LineTable), SdpError> {
    let mut lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    // A final line end leaves an empty piece; trailing blank lines are tolerated the same way.
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return Err(err(0, "", "empty session description"));
    }

    let mut table = LineTable::default();
    let mut origin: Option<Vec<String>> = None;
    let mut session_name: Option<String> = None;
    let mut connection: Option<Connection> = None;
    let mut attributes = Vec::new();
    let mut media: Vec<Media> = Vec::new();
    let mut last_rank = 0u8;
    let mut seen: Vec<u8> = Vec::new();

    for (idx, raw) in lines.iter().enumerate() {
        let n = idx + 1;
        let line = match std::str::from_utf8(raw) {
            Ok(l) => l,
            Err(_) => {
                return Err(err(
                    n,
                    &String::from_utf8_lossy(raw),
                    "line is not valid UTF-8",
                ))
            }
        };
        if line.is_empty() {
            return Err(err(n, line, "empty line inside the description"));
        }
        if line.contains(['\r', '\0']) {
            return Err(err(n, line, "stray CR or NUL inside the line"));
        }
        let b = line.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_lowercase() || b[1] != b'=' {
            return Err(err(
                n,
                line,
                "expected `<type>=<value>` with a lower-case type letter and no space",
            ));
        }
        let t = b[0];
        let value = &line[2..];

        if n == 1 && t != b'v' {
            return Err(err(n, line, "the first line must be `v=0`"));
        }
        if n == 2 && t != b'o' {
            return Err(err(
                n,
                line,
                "expected the `o=` line as line 2 (RFC 8866 §5 order)",
            ));
        }
        if n == 3 && t != b's' {
            return Err(err(
                n,
                line,
                "expected the `s=` line as line 3 (RFC 8866 §5 order)",
            ));
        }

        if t == b'm' {
            media.push(parse_media(n, line, value)?);
            table.media.push(MediaLines::default());
            last_rank = 0;
            seen.clear();
            continue;
        }
        let in_media = !media.is_empty();
        let rank = if in_media {
            media_rank(t)
        } else {
            session_rank(t)
        };
        let Some(rank) = rank else {
            let msg = if session_rank(t).is_some() {
                format!("`{}=` is not allowed in a media section", t as char)
            } else {
                format!("unknown line type `{}=`", t as char)
            };
            return Err(err(n, line, msg));
        };
        if rank < last_rank {
            return Err(err(
                n,
                line,
                format!(
                    "`{}=` line out of order (RFC 8866 §5: v o s i u e p c b t r z k a, then m i c b k a)",
                    t as char
                ),
            ));
        }
        if !repeatable(t) && seen.contains(&t) {
            return Err(err(
                n,
                line,
                format!("more than one `{}=` line in this section", t as char),
            ));
        }
        last_rank = rank;
        seen.push(t);

        match t {
            b'v' if value != "0" => return Err(err(n, line, "expected `v=0`")),
            b'o' => {
                let Some(f) = fields(value).filter(|f| f.len() == 6) else {
                    return Err(err(
                        n,
                        line,
                        "expected `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`",
                    ));
                };
                if !f[1..3]
                    .iter()
                    .all(|s| s.bytes().all(|c| c.is_ascii_digit()))
                {
                    return Err(err(n, line, "o= sess-id and sess-version must be digits"));
                }
                origin = Some(f.iter().map(|s| s.to_string()).collect());
            }
            b's' => {
                if value.is_empty() {
                    return Err(err(n, line, "s= must not be empty (use `s=-`)"));
                }
                session_name = Some(value.to_string());
            }
            b'c' => {
                let Some(c) = parse_connection(value) else {
                    return Err(err(
                        n,
                        line,
                        "expected `c=IN IP4 <address>` or `c=IN IP6 <address>`",
                    ));
                };
                if let (Some(m), Some(ml)) = (media.last_mut(), table.media.last_mut()) {
                    m.connection = Some(c);
                    ml.c = Some(n);
                } else {
                    connection = Some(c);
                    table.session_c = Some(n);
                }
            }
            b'a' => {
                let (name, val) = match value.split_once(':') {
                    Some((name, val)) => (name, Some(val.to_string())),
                    None => (value, None),
                };
                if name.is_empty() || !name.chars().all(is_token_char) {
                    return Err(err(
                        n,
                        line,
                        "expected `a=<name>` or `a=<name>:<value>` with a token name",
                    ));
                }
                let attr = (name.to_string(), val);
                if let (Some(m), Some(ml)) = (media.last_mut(), table.media.last_mut()) {
                    m.attributes.push(attr);
                    ml.attrs.push(n);
                } else {
                    attributes.push(attr);
                }
            }
            // i u e p b t r z k: carried by SDP but irrelevant to an MSRP stream.
            _ => {}
        }
    }

    let (Some(origin), Some(session_name)) = (origin, session_name) else {
        return Err(err(0, "", "missing `o=` or `s=` line"));
    };
    Ok((
        Sdp {
            origin,
            session_name,
            connection,
            attributes,
            media,
        },
        table,
    ))
}

fn parse_media(n: usize, line: &str, value: &str) -> Result<Media, SdpError> {
    let Some(f) = fields(value).filter(|f| f.len() >= 4) else {
        return Err(err(
            n,
            line,
            "expected `m=<media> <port> <proto> <fmt> ...`",
        ));
    };
    let port = f[1];
    if port.contains('/') {
        return Err(err(
            n,
            line,
            "m= port count (`<port>/<count>`) is not supported",
        ));
    }
    if !port.bytes().all(|c| c.is_ascii_digit()) {
        return Err(err(n, line, "m= port is not a number"));
    }
    let Ok(port) = port.parse::<u16>() else {
        return Err(err(n, line, "m= port is out of range (0-65535)"));
    };
    Ok(Media {
        line: n,
        media: f[0].to_string(),
        port,
        proto: f[2].to_string(),
        formats: f[3..].iter().map(|s| s.to_string()).collect(),
        connection: None,
        attributes: Vec::new(),
    })
}

fn connection_line(c: &Connection) -> String {
    format!("c={} {} {}", c.net_type, c.addr_type, c.address)
}

fn attribute_line((name, value): &(String, Option<String>)) -> String {
    match value {
        Some(v) => format!("a={name}:{v}"),
        None => format!("a={name}"),
    }
}

/// Rebuilds the text of the line `loc` points at; exact, because parsing keeps every octet
/// of the fields it stores.
fn loc_text(sdp: &Sdp, loc: &Loc) -> String {
    match *loc {
        Loc::Whole => String::new(),
        Loc::Origin => format!("o={}", sdp.origin.join(" ")),
        Loc::Media(i) => {
            let m = &sdp.media[i];
            format!(
                "m={} {} {} {}",
                m.media,
                m.port,
                m.proto,
                m.formats.join(" ")
            )
        }
        Loc::MediaConn(i) => sdp.media[i]
            .connection
            .as_ref()
            .map(connection_line)
            .unwrap_or_default(),
        Loc::SessionConn => sdp
            .connection
            .as_ref()
            .map(connection_line)
            .unwrap_or_default(),
        Loc::MediaAttr(i, j) => attribute_line(&sdp.media[i].attributes[j]),
    }
}

/// Line number of `loc` from the table recorded while parsing.
fn loc_line_exact(sdp: &Sdp, table: &LineTable, loc: &Loc) -> usize {
    match *loc {
        Loc::MediaConn(i) => table.media.get(i).and_then(|m| m.c).unwrap_or(0),
        Loc::SessionConn => table.session_c.unwrap_or(0),
        Loc::MediaAttr(i, j) => table
            .media
            .get(i)
            .and_then(|m| m.attrs.get(j).copied())
            .unwrap_or(0),
        _ => loc_line_estimate(sdp, loc),
    }
}

/// Line number of `loc` without a line table: exact for `o=` and `m=` (the parser enforces
/// RFC 8866 order), and for `c=`/`a=` when no `i=`/`u=`/`e=`/`p=`/`b=`/`k=` lines precede them.
fn loc_line_estimate(sdp: &Sdp, loc: &Loc) -> usize {
    match *loc {
        Loc::Whole => 0,
        Loc::Origin => 2,
        Loc::Media(i) => sdp.media[i].line,
        Loc::MediaConn(i) => sdp.media[i].line + 1,
        Loc::SessionConn => 4,
        Loc::MediaAttr(i, j) => {
            let m = &sdp.media[i];
            m.line + usize::from(m.connection.is_some()) + j + 1
        }
    }
}

const DIRECTIONS: [&str; 4] = ["sendonly", "recvonly", "sendrecv", "inactive"];

fn direction_of(attrs: &[(String, Option<String>)]) -> Option<String> {
    attrs
        .iter()
        .find(|(n, v)| v.is_none() && DIRECTIONS.contains(&n.as_str()))
        .map(|(n, _)| n.clone())
}

fn extract(sdp: &Sdp) -> Result<MsrpSdp, (Loc, String)> {
    let Some(mi) = sdp.media.iter().position(|m| m.media == "message") else {
        return Err((Loc::Whole, "no `m=message` media section".into()));
    };
    let m = &sdp.media[mi];
    if m.proto != "TCP/MSRP" && m.proto != "TCP/TLS/MSRP" {
        return Err((
            Loc::Media(mi),
            format!("m= proto `{}` is not TCP/MSRP or TCP/TLS/MSRP", m.proto),
        ));
    }

    let (conn, conn_loc) = match (&m.connection, &sdp.connection) {
        (Some(c), _) => (c, Loc::MediaConn(mi)),
        (None, Some(c)) => (c, Loc::SessionConn),
        (None, None) => {
            return Err((
                Loc::Media(mi),
                "no `c=` line at media or session level (RFC 8866 §5.7)".into(),
            ));
        }
    };
    let c_addr: IpAddr = match conn.address.parse() {
        Ok(ip) => ip,
        Err(_) if conn.address.starts_with('[') => {
            return Err((
                conn_loc,
                "c= IPv6 address must be written without brackets (RFC 5118 §4.6)".into(),
            ));
        }
        Err(_) => return Err((conn_loc, "c= address is not an IP literal".into())),
    };
    if (conn.addr_type == "IP4") != c_addr.is_ipv4() {
        return Err((
            conn_loc,
            format!(
                "c= address type {} does not match the address",
                conn.addr_type
            ),
        ));
    }

    let attr = |name: &str| m.attributes.iter().position(|(n, _)| n == name);
    let value = |j: usize, name: &str| -> Result<&str, (Loc, String)> {
        m.attributes[j]
            .1
            .as_deref()
            .ok_or_else(|| (Loc::MediaAttr(mi, j), format!("a={name} needs a value")))
    };

    let Some(pj) = attr("path") else {
        return Err((Loc::Media(mi), "missing `a=path` (RFC 4975 §8.2)".into()));
    };
    let path = MsrpUri::parse_list(value(pj, "path")?)
        .map_err(|e| (Loc::MediaAttr(mi, pj), format!("a=path: {}", e.msg)))?;
    if path.is_empty() {
        return Err((Loc::MediaAttr(mi, pj), "a=path holds no URI".into()));
    }

    let Some(aj) = attr("accept-types") else {
        return Err((
            Loc::Media(mi),
            "missing `a=accept-types` (RFC 4975 §8.6)".into(),
        ));
    };
    let accept_types: Vec<String> = value(aj, "accept-types")?
        .split_whitespace()
        .map(String::from)
        .collect();
    if accept_types.is_empty() {
        return Err((Loc::MediaAttr(mi, aj), "a=accept-types is empty".into()));
    }
    let accept_wrapped_types = match attr("accept-wrapped-types") {
        Some(j) => value(j, "accept-wrapped-types")?
            .split_whitespace()
            .map(String::from)
            .collect(),
        None => Vec::new(),
    };

    let setup = match attr("setup") {
        Some(j) => {
            let v = value(j, "setup")?;
            Some(Setup::from_token(v).ok_or_else(|| {
                (
                    Loc::MediaAttr(mi, j),
                    format!("a=setup value `{v}` is not active/passive/actpass/holdconn"),
                )
            })?)
        }
        None => None,
    };
    let max_size = match attr("max-size") {
        Some(j) => Some(value(j, "max-size")?.parse::<u64>().map_err(|_| {
            (
                Loc::MediaAttr(mi, j),
                "a=max-size is not a number of octets".into(),
            )
        })?),
        None => None,
    };
    // RFC 3264 §5.1: a session-level direction applies to media that give none.
    let direction = direction_of(&m.attributes).or_else(|| direction_of(&sdp.attributes));

    let num = |i: usize, what: &str| -> Result<u64, (Loc, String)> {
        sdp.origin
            .get(i)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| (Loc::Origin, format!("o= {what} does not fit in 64 bits")))
    };
    Ok(MsrpSdp {
        origin_user: sdp.origin.first().cloned().unwrap_or_default(),
        session_id: num(1, "sess-id")?,
        session_version: num(2, "sess-version")?,
        c_addr,
        port: m.port,
        proto: m.proto.clone(),
        path,
        accept_types,
        accept_wrapped_types,
        setup,
        max_size,
        direction,
    })
}

fn addr_type(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worked example: client-a's offer on L1 (291 octets).
    const T1: &str = "v=0\r\n\
o=alice 3724394400 3724394400 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=message 20001 TCP/MSRP *\r\n\
a=sendonly\r\n\
a=accept-types:message/cpim\r\n\
a=accept-wrapped-types:text/plain message/imdn+xml\r\n\
a=max-size:1048576\r\n\
a=path:msrp://127.0.0.1:20001/kd8Fj3mQ7zpa;tcp\r\n\
a=setup:actpass\r\n";

    /// A worked example: pf-a's answer on L1 (270 octets).
    const T2: &str = "v=0\r\n\
o=pf-a 3724394401 3724394401 IN IP4 127.0.0.2\r\n\
s=-\r\n\
c=IN IP4 127.0.0.2\r\n\
t=0 0\r\n\
m=message 20002 TCP/MSRP *\r\n\
a=recvonly\r\n\
a=accept-types:message/cpim\r\n\
a=accept-wrapped-types:text/plain message/imdn+xml\r\n\
a=path:msrp://127.0.0.2:20002/pfa-Q3v9Lx2W;tcp\r\n\
a=setup:passive\r\n";

    fn sdp_err(text: &str) -> SdpError {
        Sdp::parse(text.as_bytes()).expect_err(text)
    }

    /// Parses `text` both ways and checks that both name the same line.
    fn msrp_err(text: &str) -> SdpError {
        let exact = MsrpSdp::parse(text.as_bytes()).expect_err(text);
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        let counted = MsrpSdp::from_sdp(&sdp).expect_err(text);
        assert_eq!(exact, counted, "parse and from_sdp disagree for {text:?}");
        exact
    }

    /// T1 with line `n` (1-based) replaced by `with`, or removed when `with` is empty.
    fn t1_with(n: usize, with: &str) -> String {
        let mut lines: Vec<&str> = T1.split("\r\n").filter(|l| !l.is_empty()).collect();
        if with.is_empty() {
            lines.remove(n - 1);
        } else {
            lines[n - 1] = with;
        }
        lines.join("\r\n") + "\r\n"
    }

    #[test]
    fn examples_have_the_documented_sizes() {
        assert_eq!(T1.len(), 291);
        assert_eq!(T2.len(), 270);
    }

    #[test]
    fn t1_generic_parse() {
        let sdp = Sdp::parse(T1.as_bytes()).unwrap();
        assert_eq!(
            sdp.origin,
            [
                "alice",
                "3724394400",
                "3724394400",
                "IN",
                "IP4",
                "127.0.0.1"
            ]
        );
        assert_eq!(sdp.session_name, "-");
        let c = sdp.connection.as_ref().unwrap();
        assert_eq!(
            (
                c.net_type.as_str(),
                c.addr_type.as_str(),
                c.address.as_str()
            ),
            ("IN", "IP4", "127.0.0.1")
        );
        assert_eq!(c.ip(), Some("127.0.0.1".parse().unwrap()));
        assert!(sdp.attributes.is_empty());
        assert_eq!(sdp.media.len(), 1);
        let m = &sdp.media[0];
        assert_eq!(m.line, 6);
        assert_eq!(
            (m.media.as_str(), m.port, m.proto.as_str()),
            ("message", 20001, "TCP/MSRP")
        );
        assert_eq!(m.formats, ["*"]);
        assert_eq!(m.connection, None);
        assert_eq!(m.attributes.len(), 6);
        assert_eq!(m.attributes[0], ("sendonly".to_string(), None));
        assert!(m.has_flag("sendonly"));
        assert_eq!(m.attribute("setup"), Some("actpass"));
        assert_eq!(m.attribute("sendonly"), None);
        assert_eq!(sdp.attribute("setup"), None);
    }

    #[test]
    fn t1_msrp_view() {
        let s = MsrpSdp::parse(T1.as_bytes()).unwrap();
        assert_eq!(s.origin_user, "alice");
        assert_eq!(s.session_id, 3724394400);
        assert_eq!(s.session_version, 3724394400);
        assert_eq!(s.c_addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(s.port, 20001);
        assert_eq!(s.proto, "TCP/MSRP");
        assert_eq!(s.path.len(), 1);
        assert_eq!(s.own_uri().host, "127.0.0.1");
        assert_eq!(s.own_uri().port, 20001);
        assert_eq!(s.own_uri().session_id.as_deref(), Some("kd8Fj3mQ7zpa"));
        assert_eq!(s.next_hop(), s.own_uri());
        assert_eq!(s.accept_types, ["message/cpim"]);
        assert_eq!(s.accept_wrapped_types, ["text/plain", "message/imdn+xml"]);
        assert_eq!(s.max_size, Some(1048576));
        assert_eq!(s.setup, Some(Setup::Actpass));
        assert_eq!(s.direction.as_deref(), Some("sendonly"));
        assert_eq!(
            MsrpSdp::from_sdp(&Sdp::parse(T1.as_bytes()).unwrap()).unwrap(),
            s
        );
    }

    #[test]
    fn t2_msrp_view() {
        let s = MsrpSdp::parse(T2.as_bytes()).unwrap();
        assert_eq!(s.origin_user, "pf-a");
        assert_eq!(s.session_id, 3724394401);
        assert_eq!(s.c_addr, "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(s.port, 20002);
        assert_eq!(s.next_hop().port, 20002);
        assert_eq!(s.next_hop().session_id.as_deref(), Some("pfa-Q3v9Lx2W"));
        assert_eq!(s.max_size, None);
        assert_eq!(s.setup, Some(Setup::Passive));
        assert_eq!(s.direction.as_deref(), Some("recvonly"));
    }

    #[test]
    fn bare_lf_and_missing_final_newline_are_accepted() {
        let lf = T1.replace("\r\n", "\n");
        assert_eq!(
            MsrpSdp::parse(lf.as_bytes()).unwrap(),
            MsrpSdp::parse(T1.as_bytes()).unwrap()
        );
        let unterminated = T1.trim_end();
        assert_eq!(
            Sdp::parse(unterminated.as_bytes()).unwrap(),
            Sdp::parse(T1.as_bytes()).unwrap()
        );
        let trailing_blank = format!("{T1}\r\n");
        assert!(Sdp::parse(trailing_blank.as_bytes()).is_ok());
    }

    #[test]
    fn ipv6_connection() {
        let text = "v=0\r\no=b 1 2 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n\
m=message 2855 TCP/MSRP *\r\na=accept-types:*\r\na=path:msrp://[::1]:2855/s1;tcp\r\n";
        let s = MsrpSdp::parse(text.as_bytes()).unwrap();
        assert_eq!(s.c_addr, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(s.own_uri().host, "::1");
        assert!(s.encode().contains("c=IN IP6 ::1\r\n"));
        assert_eq!(MsrpSdp::parse(s.encode().as_bytes()).unwrap(), s);
    }

    #[test]
    fn media_level_connection_wins_and_session_direction_applies() {
        let text =
            "v=0\r\no=u 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=inactive\r\n\
m=audio 4000 RTP/AVP 0\r\n\
m=message 7000 TCP/TLS/MSRP *\r\nc=IN IP4 10.0.0.2\r\na=accept-types:text/plain\r\n\
a=path:msrps://10.0.0.2:7000/x;tcp\r\n";
        let s = MsrpSdp::parse(text.as_bytes()).unwrap();
        assert_eq!(s.c_addr, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(s.proto, "TCP/TLS/MSRP");
        assert_eq!(s.direction.as_deref(), Some("inactive"));
        assert_eq!(s.setup, None);
        assert!(s.accept_wrapped_types.is_empty());
    }

    #[test]
    fn ignored_line_types_are_accepted() {
        let text =
            "v=0\r\no=u 1 1 IN IP4 10.0.0.1\r\ns=-\r\ni=info\r\nu=http://x/\r\ne=a@b\r\np=+1\r\n\
c=IN IP4 10.0.0.1\r\nb=AS:64\r\nt=0 0\r\nr=7d 1h 0 25h\r\nz=0 0\r\nk=prompt\r\na=tool:x\r\n\
m=message 7000 TCP/MSRP *\r\ni=m\r\nb=AS:1\r\nk=prompt\r\na=accept-types:*\r\n\
a=path:msrp://10.0.0.1:7000/x;tcp\r\n";
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.attribute("tool"), Some("x"));
        assert_eq!(sdp.media[0].line, 15);
        assert!(MsrpSdp::from_sdp(&sdp).is_ok());
    }

    #[test]
    fn round_trip() {
        let t1 = MsrpSdp::parse(T1.as_bytes()).unwrap();
        let enc = t1.encode();
        assert_eq!(enc, T1, "T1 is already in encode's canonical form");
        assert_eq!(MsrpSdp::parse(enc.as_bytes()).unwrap(), t1);

        let mut bare = t1.clone();
        bare.direction = None;
        bare.accept_wrapped_types.clear();
        bare.max_size = None;
        bare.setup = None;
        bare.session_version = u64::MAX;
        let enc = bare.encode();
        assert!(
            !enc.contains("a=setup") && !enc.contains("a=max-size") && !enc.contains("wrapped")
        );
        assert_eq!(MsrpSdp::parse(enc.as_bytes()).unwrap(), bare);

        for setup in [
            Setup::Active,
            Setup::Passive,
            Setup::Actpass,
            Setup::Holdconn,
        ] {
            let mut s = t1.clone();
            s.setup = Some(setup);
            s.path =
                MsrpUri::parse_list("msrp://10.1.1.1:9/relay;tcp msrp://127.0.0.1:20001/own;tcp")
                    .unwrap();
            assert_eq!(MsrpSdp::parse(s.encode().as_bytes()).unwrap(), s);
            assert_eq!(s.next_hop().host, "10.1.1.1");
            assert_eq!(s.own_uri().session_id.as_deref(), Some("own"));
        }
    }

    #[test]
    fn whole_description_errors() {
        for empty in ["", "\r\n", "\n\n"] {
            let e = sdp_err(empty);
            assert_eq!((e.line, e.excerpt.as_str()), (0, ""));
        }
        assert_eq!(sdp_err("v=0\r\n").line, 0);
        let e = sdp_err("v=0\r\no=a 1 1 IN IP4 1.1.1.1\r\n");
        assert_eq!(e.line, 0);
        assert!(e.msg.contains("s="));
    }

    #[test]
    fn line_syntax_errors() {
        // (T1 line to replace, replacement, line the error names, expected message part)
        let cases: &[(usize, &str, usize, &str)] = &[
            (1, "v=1", 1, "v=0"),
            (1, "o=a 1 1 IN IP4 1.1.1.1", 1, "first line"),
            (2, "V=0", 2, "lower-case"),
            (2, "v =0", 2, "lower-case"),
            (2, "x", 2, "lower-case"),
            (2, "s=-", 2, "line 2"),
            (3, "c=IN IP4 127.0.0.1", 3, "line 3"),
            (2, "o=alice 1 1 IN IP4", 2, "o=<username>"),
            (2, "o=alice  1 1 IN IP4 1.1.1.1", 2, "o=<username>"),
            (2, "o=alice x 1 IN IP4 1.1.1.1", 2, "digits"),
            (3, "s=", 3, "s="),
            (4, "c=IN IP4", 4, "c=IN IP4 <address>"),
            (4, "c=IN IPX 1.2.3.4", 4, "c=IN IP4 <address>"),
            (4, "c=ATM IP4 1.2.3.4", 4, "c=IN IP4 <address>"),
            (6, "m=message x TCP/MSRP *", 6, "port is not a number"),
            (6, "m=message 70000 TCP/MSRP *", 6, "out of range"),
            (6, "m=message 20001/2 TCP/MSRP *", 6, "port count"),
            (6, "m=message 20001 TCP/MSRP", 6, "m=<media>"),
            (7, "a=", 7, "a=<name>"),
            (7, "a=:x", 7, "a=<name>"),
            (7, "a=a b", 7, "a=<name>"),
            (7, "x=1", 7, "unknown line type"),
            (7, "s=again", 7, "not allowed in a media section"),
            (7, "a=x\ry", 7, "stray CR"),
            (7, "a=x\0", 7, "NUL"),
            (
                7,
                "c=IN IP4 1.1.1.1\r\nc=IN IP4 1.1.1.1",
                8,
                "more than one",
            ),
            (5, "a=foo\r\nc=IN IP4 1.1.1.1", 6, "out of order"),
            (7, "a=x\r\n\r\na=y", 8, "empty line"),
        ];
        for &(at, with, line, want) in cases {
            let e = sdp_err(&t1_with(at, with));
            assert_eq!(e.line, line, "{with:?}: {e}");
            assert!(e.msg.contains(want), "{with:?}: {e}");
        }
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let mut text = T1.as_bytes().to_vec();
        let at = T1.find("s=-").unwrap() + 2;
        text[at] = 0xff;
        let e = Sdp::parse(&text).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.msg.contains("UTF-8"));
        assert!(e.excerpt.starts_with("s="));
    }

    #[test]
    fn excerpt_is_shortened() {
        let e = sdp_err(&format!("v=0\r\ns={}\r\n", "z".repeat(200)));
        assert_eq!(e.line, 2);
        assert_eq!(e.excerpt.chars().count(), 80);
        assert!(e.excerpt.starts_with("s=zzz") && e.excerpt.ends_with('…'));
    }

    #[test]
    fn msrp_view_errors() {
        let e = msrp_err(&T1.replace("m=message", "m=audio"));
        assert_eq!(e.line, 0);
        assert!(e.msg.contains("m=message"));

        let e = msrp_err(&T1.replace("TCP/MSRP", "TCP/RTP"));
        assert_eq!(
            (e.line, e.excerpt.as_str()),
            (6, "m=message 20001 TCP/RTP *")
        );

        let e = msrp_err(&t1_with(4, ""));
        assert_eq!(e.line, 5);
        assert!(e.msg.contains("c="));

        let e = msrp_err(&t1_with(4, "c=IN IP4 host.example.com"));
        assert_eq!(
            (e.line, e.excerpt.as_str()),
            (4, "c=IN IP4 host.example.com")
        );
        assert!(e.msg.contains("IP literal"));

        let e = msrp_err(&t1_with(4, "c=IN IP6 [::1]"));
        assert_eq!(e.line, 4);
        assert!(e.msg.contains("brackets"));

        let e = msrp_err(&t1_with(4, "c=IN IP4 ::1"));
        assert_eq!(e.line, 4);
        assert!(e.msg.contains("does not match"));

        let e = msrp_err(&T1.replace(
            "t=0 0\r\nm=message 20001 TCP/MSRP *\r\n",
            "t=0 0\r\nm=message 20001 TCP/MSRP *\r\nc=IN IP4 nowhere\r\n",
        ));
        assert_eq!((e.line, e.excerpt.as_str()), (7, "c=IN IP4 nowhere"));

        let e = msrp_err(&t1_with(11, ""));
        assert_eq!(e.line, 6);
        assert!(e.msg.contains("a=path"));

        let e = msrp_err(&t1_with(11, "a=path:http://127.0.0.1:20001/x;tcp"));
        assert_eq!(
            (e.line, e.excerpt.as_str()),
            (11, "a=path:http://127.0.0.1:20001/x;tcp")
        );
        assert!(e.msg.starts_with("a=path: "));

        let e = msrp_err(&t1_with(11, "a=path"));
        assert_eq!(e.line, 11);
        assert!(e.msg.contains("needs a value"));

        let e = msrp_err(&t1_with(8, ""));
        assert_eq!(e.line, 6);
        assert!(e.msg.contains("accept-types"));

        let e = msrp_err(&t1_with(8, "a=accept-types:"));
        assert_eq!(e.line, 8);

        let e = msrp_err(&t1_with(12, "a=setup:both"));
        assert_eq!((e.line, e.excerpt.as_str()), (12, "a=setup:both"));
        assert!(e.msg.contains("both"));

        let e = msrp_err(&t1_with(10, "a=max-size:lots"));
        assert_eq!(e.line, 10);
        assert!(e.msg.contains("max-size"));

        let e = msrp_err(&t1_with(
            2,
            "o=alice 99999999999999999999 1 IN IP4 127.0.0.1",
        ));
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("sess-id"));
    }

    #[test]
    fn exact_and_counted_lines_differ_only_with_extra_media_lines() {
        let text = T1
            .replace("a=sendonly\r\n", "b=AS:10\r\na=sendonly\r\n")
            .replace("setup:actpass", "setup:nope");
        assert_eq!(MsrpSdp::parse(text.as_bytes()).unwrap_err().line, 13);
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(MsrpSdp::from_sdp(&sdp).unwrap_err().line, 12);
    }

    #[test]
    fn setup_tokens() {
        for s in [
            Setup::Active,
            Setup::Passive,
            Setup::Actpass,
            Setup::Holdconn,
        ] {
            assert_eq!(Setup::from_token(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(Setup::from_token("Active"), None);
    }
}
