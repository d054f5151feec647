//! Requests a UAS must refuse rather than process, and the response that refuses them
//! (RFC 3261 §8.2, §21.4.1 400 Bad Request, §21.5.6 505 Version Not Supported; the invalid
//! messages of RFC 4475 §3.1.2 and §3.3 and RFC 5118 §4.2).
//!
//! A parsed request is checked by [`SipMessage::check_request`]: one value for each
//! single-value header (`multi01`), a CSeq number below 2^31 whose method is the request's
//! (`scalar02`, `mismatch01`, `mismatch02`), Via values without empty parameters
//! (`badinv01`), a SIP Request-URI whose host is a name, an IPv4 address or a bracketed IPv6
//! reference (RFC 5118 §4.2). Bytes that do not parse get [`refusal_of_unparsed`]: 505 for
//! another SIP version (`badvers`), 400 for any other request, nothing for a response or
//! for what is not even a request line.
//!
//! [`refusal_response`] builds the response from the request's own header lines, read
//! leniently (the request may not parse): Via, From, To (given a tag), Call-ID and CSeq,
//! each cleaned so the reply is itself well-formed — Via values without their empty
//! parameters, a CSeq number out of range replaced by 0 (never echoed back), one value of
//! each single-value header. A request without Via, From, To, Call-ID or CSeq cannot be
//! answered (RFC 4475 `insuf`): it is discarded.

use super::{assemble, canonical_name, clean, parse_via, split_outside, SipMessage, StartLine};
use std::fmt;

/// Why a request is refused, and with which status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
    /// What is wrong, naming the header.
    pub why: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.why)
    }
}

fn bad(why: impl Into<String>) -> Refusal {
    Refusal {
        code: 400,
        reason: "Bad Request",
        why: why.into(),
    }
}

/// Headers that carry one value (RFC 3261 §7.3.1, §20).
const SINGLE: &[&str] = &[
    "Call-ID",
    "From",
    "To",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
    "Content-Length",
];

/// The largest CSeq number (RFC 3261 §8.1.1.5: less than 2^31).
const MAX_CSEQ: u64 = (1 << 31) - 1;

/// `number method` of a CSeq value, the number only when it is in range.
fn cseq_parts(v: &str) -> (Option<u64>, Option<&str>, bool) {
    let mut it = v.split_ascii_whitespace();
    let n = it.next().unwrap_or("");
    let m = it.next();
    let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    let num = if digits {
        n.parse::<u64>().ok().filter(|&x| x <= MAX_CSEQ)
    } else {
        None
    };
    (num, m, digits)
}

/// The values of a Via header without their empty parameters (`;;`) and without the empty
/// or unreadable values (`,,`).
fn clean_via(v: &str) -> Vec<String> {
    split_outside(v, b',')
        .into_iter()
        .filter_map(|one| {
            let mut parts = split_outside(one, b';').into_iter();
            let head = parts.next().unwrap_or("").trim();
            parse_via(head).filter(|p| !p.sent_by.is_empty())?;
            let mut out = head.to_string();
            for p in parts.filter(|p| !p.trim().is_empty()) {
                out.push(';');
                out.push_str(p.trim());
            }
            Some(out)
        })
        .collect()
}

/// Whether a Via value is well-formed: sent-protocol, sent-by, and no empty parameter.
fn via_ok(v: &str) -> bool {
    let values = split_outside(v, b',');
    values.iter().all(|one| {
        let mut parts = split_outside(one, b';').into_iter();
        let head = parts.next().unwrap_or("");
        parse_via(head).is_some_and(|p| !p.sent_by.is_empty())
            && parts.all(|p| !p.trim().is_empty())
    })
}

/// The host and port of a SIP or SIPS URI are well-formed: a name or an IPv4 address, or an
/// IPv6 reference in brackets, then an optional decimal port (RFC 3261 §25.1, RFC 5118 §4.2).
fn sip_uri_host_ok(uri: &str) -> bool {
    super::host::sip_uri_hostport(uri).is_none_or(|r| r.is_ok())
}

impl SipMessage {
    /// The checks a UAS applies to a request before processing it (see the module docs);
    /// `Ok` for a response.
    pub fn check_request(&self) -> Result<(), Refusal> {
        let StartLine::Request { method, uri } = &self.start else {
            return Ok(());
        };
        for name in SINGLE {
            let n = self
                .headers
                .iter()
                .filter(|(h, _)| h.eq_ignore_ascii_case(name))
                .count();
            if n > 1 {
                return Err(bad(format!("{n} {name} headers in a single-value field")));
            }
        }
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if self.header(name).is_none() {
                return Err(bad(format!("no {name} header")));
            }
        }
        let cseq = self.header("CSeq").unwrap_or("");
        match cseq_parts(cseq) {
            (_, _, false) | (_, None, _) => return Err(bad(format!("CSeq {cseq:?} unreadable"))),
            (None, _, true) => {
                return Err(bad(format!(
                    "CSeq number out of range (at most 2^31 - 1): {cseq:?}"
                )))
            }
            (Some(_), Some(m), _) if m != method.as_str() => {
                return Err(bad(format!(
                    "CSeq method {m} differs from the request method {method}"
                )))
            }
            _ => {}
        }
        for v in self.header_all("Via") {
            if !via_ok(v) {
                return Err(bad(format!("invalid Via {v:?}")));
            }
        }
        for v in self.vias() {
            if let Some(Err(e)) = parse_via(v).map(|p| super::host::parse_hostport(&p.sent_by)) {
                return Err(bad(format!("invalid Via sent-by: {e}")));
            }
        }
        if !sip_uri_host_ok(uri) {
            return Err(bad(format!("invalid host in the Request-URI {uri:?}")));
        }
        Ok(())
    }
}

/// The refusal owed to bytes that did not parse as a SIP message: 505 (Version Not
/// Supported) for a request of another SIP version, 400 (Bad Request) for any other request;
/// `None` for a response or anything that is not a request line (never answered).
pub fn refusal_of_unparsed(raw: &[u8], error: &super::SipError) -> Option<Refusal> {
    let start = raw.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let data = &raw[start..];
    let line_end = memchr::memchr(b'\n', data).unwrap_or(data.len());
    let line = String::from_utf8_lossy(&data[..line_end]);
    let line = line.trim_end_matches('\r');
    let parts: Vec<&str> = line.split(' ').collect();
    if parts
        .first()
        .is_some_and(|p| p.len() >= 4 && p[..4].eq_ignore_ascii_case("SIP/"))
    {
        return None; // A response.
    }
    let [method, _uri, version] = parts.as_slice() else {
        return None;
    };
    if method.is_empty() || !method.bytes().all(super::is_token_byte) {
        return None;
    }
    let v = version
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &version[4..])?;
    if v != "2.0" {
        return Some(Refusal {
            code: 505,
            reason: "Version Not Supported",
            why: format!("SIP version {version:?}"),
        });
    }
    Some(bad(error.msg.clone()))
}

/// The header lines of a head read leniently: unfolded, names canonical, values trimmed.
fn lenient_headers(raw: &[u8]) -> Vec<(String, String)> {
    let start = raw
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[start..]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n').skip(1) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some(c) = line.find(':') {
            let name = line[..c].trim();
            out.push((
                canonical_name(name).to_string(),
                line[c + 1..].trim().to_string(),
            ));
        }
    }
    out
}

/// The response refusing the request whose bytes are `raw` (see the module docs), with
/// `to_tag` added to its To; `None` when the request cannot be answered.
pub fn refusal_response(raw: &[u8], r: &Refusal, to_tag: &str) -> Option<SipMessage> {
    let headers = lenient_headers(raw);
    let first = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| clean(v))
            .filter(|v| !v.is_empty())
    };
    let vias: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n == "Via")
        .flat_map(|(_, v)| clean_via(&clean(v)))
        .collect();
    let (from, to, call_id, cseq) = (
        first("From")?,
        first("To")?,
        first("Call-ID")?,
        first("CSeq")?,
    );
    if vias.is_empty() {
        return None;
    }
    // The request's method, from its start line, stands in for a CSeq without one.
    let text = String::from_utf8_lossy(raw);
    let req_method = text
        .trim_start_matches(['\r', '\n'])
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string();
    let (num, method, _) = cseq_parts(&cseq);
    let method = method
        .filter(|m| m.bytes().all(super::is_token_byte))
        .unwrap_or(&req_method);
    let cseq = format!("{} {method}", num.unwrap_or(0));
    let to = if super::find_param(super::name_addr(&to).map_or("", |(_, p)| p), "tag").is_some() {
        to
    } else {
        format!("{to};tag={}", clean(to_tag))
    };
    let mut h: Vec<(String, String)> = vias.into_iter().map(|v| ("Via".into(), v)).collect();
    h.push(("From".into(), from));
    h.push(("To".into(), to));
    h.push(("Call-ID".into(), call_id));
    h.push(("CSeq".into(), cseq));
    Some(assemble(
        StartLine::Response {
            code: r.code,
            reason: r.reason.to_string(),
        },
        h,
        None,
    ))
}
