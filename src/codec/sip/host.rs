//! Hosts in SIP: `hostport` of SIP URIs and Via sent-by (RFC 3261 §19.1.1, §25.1), with the
//! IPv6 rules of RFC 5118: an IPv6 address is written as an IPv6 reference, in brackets, in a
//! URI and a sent-by (§4.2: `sip:2001:db8::10` is invalid; §4.3/§4.4: `[2001:db8::10:5070]`
//! is an address without a port, `[2001:db8::10]:5070` one with); the Via `received`
//! parameter is read with or without brackets (§4.5); an IPv4-mapped address is an IPv6
//! reference like any other (§4.9); and an IPv6 reference with an extra colon before its
//! IPv4 part (`[2001:db8:::192.0.2.1]`, the RFC 3261 ABNF bug of §4.10) is read robustly as
//! the address without it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host as SIP writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A domain name (`example.com`), lower-cased.
    Name(String),
    V4(Ipv4Addr),
    /// An IPv6 reference (written in brackets).
    V6(Ipv6Addr),
}

impl Host {
    /// The address, when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// How an address is written as the host of a SIP URI or a Via sent-by: an IPv6 address in
/// brackets (RFC 3261 §25.1 `IPv6reference`, RFC 5118 §4.2).
pub fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// An IPv6 address as written inside brackets; an extra colon before an embedded IPv4 part
/// (`2001:db8:::192.0.2.1`) is tolerated (RFC 5118 §4.10).
pub fn parse_ipv6_text(s: &str) -> Option<Ipv6Addr> {
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Some(a);
    }
    // Only the one form §4.10 describes: ":::" followed by a dotted IPv4 part.
    let i = s.find(":::")?;
    let tail = &s[i + 3..];
    if tail.contains(':') || tail.parse::<Ipv4Addr>().is_err() {
        return None;
    }
    format!("{}::{tail}", &s[..i]).parse().ok()
}

/// Parses `host[:port]` (RFC 3261 §25.1 `hostport`): a name, an IPv4 address, or an IPv6
/// reference in brackets, then an optional decimal port. The error says what is wrong —
/// an IPv6 address without brackets, a bracket without its pair, a bad port.
pub fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), String> {
    let s = s.trim();
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let close = v6
            .find(']')
            .ok_or_else(|| format!("{s:?}: `[` without its `]`"))?;
        let text = &v6[..close];
        let a = parse_ipv6_text(text)
            .ok_or_else(|| format!("{s:?}: {text:?} in brackets is not an IPv6 address"))?;
        (Host::V6(a), &v6[close + 1..])
    } else {
        if s.contains(']') {
            return Err(format!("{s:?}: `]` without its `[`"));
        }
        if s.matches(':').count() > 1 {
            return Err(format!(
                "{s:?}: an IPv6 address must be in brackets (RFC 3261 §25.1, RFC 5118 §4.2)"
            ));
        }
        let (h, p) = match s.find(':') {
            Some(c) => (&s[..c], &s[c..]),
            None => (s, ""),
        };
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(format!("{s:?}: bad host {h:?}"));
        }
        let host = match h.parse::<Ipv4Addr>() {
            Ok(a) => Host::V4(a),
            Err(_) => Host::Name(h.to_ascii_lowercase()),
        };
        (host, p)
    };
    let port = if port.is_empty() {
        None
    } else {
        let p = port
            .strip_prefix(':')
            .ok_or_else(|| format!("{s:?}: {port:?} after the host"))?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?}: bad port {p:?}"));
        }
        Some(
            p.parse::<u16>()
                .map_err(|_| format!("{s:?}: port {p} out of range"))?,
        )
    };
    Ok((host, port))
}

/// Whether a URI (bare or in angle brackets) has the `sips:` scheme.
pub fn is_sips(uri: &str) -> bool {
    let u = uri.trim().trim_start_matches('<');
    u.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

/// The `hostport` of a `sip:`/`sips:` URI (after any userinfo, before parameters and
/// headers), parsed; `None` for another scheme (its syntax is its own).
pub fn sip_uri_hostport(uri: &str) -> Option<Result<(Host, Option<u16>), String>> {
    let uri = uri.trim();
    let rest = [("sips:", 5), ("sip:", 4)]
        .iter()
        .find(|(p, _)| {
            uri.get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p))
        })
        .map(|(_, n)| &uri[*n..])?;
    // '@' appears only at the end of the userinfo (URI parameters and headers hold none
    // unescaped, RFC 3261 §25.1), which itself may hold ';' (RFC 4475 `semiuri`).
    let after_user = match rest.rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let end = after_user.find([';', '?']).unwrap_or(after_user.len());
    Some(parse_hostport(&after_user[..end]))
}

/// The address of a Via `received` parameter value, with or without brackets (RFC 5118
/// §4.5: robust parsers take both; RFC 3261 §25.1 writes it without).
pub fn parse_received(v: &str) -> Option<IpAddr> {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return parse_ipv6_text(inner).map(IpAddr::V6);
    }
    v.parse::<IpAddr>().ok()
}

impl super::SipMessage {
    /// Every host of the message the RFC 3261 §25.1 grammar does not take, as (where, value,
    /// why): the Request-URI, the URIs of From, To, Contact, Route and Record-Route, and each
    /// Via sent-by — an IPv6 address without brackets, an unpaired bracket, a bad port. URIs
    /// of other schemes (tel:, urn:) are left alone.
    pub fn host_errors(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        if let Some(uri) = self.request_uri() {
            if let Some(Err(e)) = sip_uri_hostport(uri) {
                out.push(("Request-URI".into(), uri.to_string(), e));
            }
        }
        for name in ["From", "To", "Contact", "Route", "Record-Route"] {
            for v in self.header_all(name) {
                for one in super::split_outside(v, b',') {
                    let Some((uri, _)) = super::name_addr(one) else {
                        continue;
                    };
                    if let Some(Err(e)) = sip_uri_hostport(uri) {
                        out.push((name.to_string(), uri.to_string(), e));
                    }
                }
            }
        }
        for v in self.vias() {
            if let Some(p) = super::parse_via(v) {
                if let Err(e) = parse_hostport(&p.sent_by) {
                    out.push(("Via".into(), p.sent_by.clone(), e));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostports() {
        let v6 = |s: &str| Host::V6(s.parse().unwrap());
        assert_eq!(parse_hostport("[::1]:5060"), Ok((v6("::1"), Some(5060))));
        assert_eq!(
            parse_hostport("[2001:db8::10:5070]"),
            Ok((v6("2001:db8::10:5070"), None))
        );
        assert_eq!(
            parse_hostport("[2001:db8:::192.0.2.1]"),
            Ok((v6("2001:db8::192.0.2.1"), None))
        );
        assert_eq!(
            parse_hostport("127.0.0.1:1"),
            Ok((Host::V4(Ipv4Addr::LOCALHOST), Some(1)))
        );
        assert_eq!(
            parse_hostport("Example.COM"),
            Ok((Host::Name("example.com".into()), None))
        );
        for bad in [
            "::1",
            "::1:5060",
            "2001:db8::10",
            "[::1",
            "::1]",
            "[::1]5060",
            "[::1]:",
            "[::1]:70000",
            "[example.com]",
            "[2001:db8::::1]",
            "host:x",
            "",
        ] {
            assert!(parse_hostport(bad).is_err(), "{bad:?}");
        }
        assert!(parse_hostport("::1").unwrap_err().contains("brackets"));
    }

    #[test]
    fn host_errors_of_a_message() {
        let m = super::super::SipMessage::parse(
            b"INVITE sip:b@[::1]:5062 SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1\r\n\
              Via: SIP/2.0/UDP ::1:5070;branch=z9hG4bK0\r\nFrom: <sip:x@::1>;tag=a\r\n\
              To: <sip:b@example.com>\r\nCall-ID: c@::1\r\nCSeq: 1 INVITE\r\n\
              Contact: <sip:x@[::1]:5060>, <tel:+1234>\r\nRoute: <sip:[::1]:5090;lr>\r\n\
              Content-Length: 0\r\n\r\n",
        )
        .unwrap();
        let errs: Vec<(String, String)> = m
            .host_errors()
            .into_iter()
            .map(|(w, v, _)| (w, v))
            .collect();
        assert_eq!(
            errs,
            [
                ("From".to_string(), "sip:x@::1".to_string()),
                ("Via".to_string(), "::1:5070".to_string())
            ]
        );
    }

    #[test]
    fn uris() {
        let hp = |u: &str| sip_uri_hostport(u).unwrap();
        assert_eq!(
            hp("sip:user@[2001:db8::10];transport=tcp").unwrap().0,
            Host::V6("2001:db8::10".parse().unwrap())
        );
        assert_eq!(hp("SIP:[::1]:5062").unwrap().1, Some(5062));
        assert!(hp("sip:x@::1:5060").is_err());
        assert!(hp("sip:2001:db8::10").is_err());
        assert_eq!(
            hp("sips:user;par=u%40example.net@example.com").unwrap().0,
            Host::Name("example.com".into())
        );
        assert!(sip_uri_hostport("tel:+1234").is_none());
        assert_eq!(uri_host("::1".parse().unwrap()), "[::1]");
        assert_eq!(uri_host("127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(
            parse_received("[2001:db8::9:255]"),
            parse_received("2001:db8::9:255")
        );
        assert!(parse_received("[2001:db8::9:255]").is_some());
        assert!(parse_received("[192.0.2.1]").is_none());
    }
}
