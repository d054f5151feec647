//! message/cpim (RFC 3862) wrap and unwrap: CPIM headers, a blank line, the inner MIME
//! headers, a blank line, the inner content.

use bytes::Bytes;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a CPIM object is malformed; `offset` counts octets from the object's first byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CPIM: {msg} (at byte {offset})")]
pub struct CpimError {
    pub offset: usize,
    pub msg: String,
}

/// A CPIM message, headers kept in order and octet for octet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpim {
    /// CPIM headers (`From`, `To`, `DateTime`, `NS`, `imdn.Message-ID`, …) in order.
    pub headers: Vec<(String, String)>,
    /// Inner MIME headers (at least `Content-Type`).
    pub content_headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Cpim {
    /// Builds the usual large-message wrapper around `content`, with `DateTime` = `now`.
    ///
    /// The codec reads no clock: the caller says what time it is (the node computes it from
    /// the wall-clock time it was given at its start).
    ///
    /// `from` and `to` may be bare URIs (wrapped in `<…>`, as RFC 3862 §3.1/§3.2 require) or
    /// already `[Formal-name] <URI>` (kept as given).
    pub fn wrap(
        from: &str,
        to: &str,
        message_id: &str,
        content_type: &str,
        content: Bytes,
        now: SystemTime,
    ) -> Cpim {
        let h = |n: &str, v: String| (n.to_string(), v);
        Cpim {
            headers: vec![
                h("From", angle(from)),
                h("To", angle(to)),
                h("DateTime", rfc3339_utc(now)),
                h("NS", "imdn <urn:ietf:params:imdn>".to_string()),
                h("imdn.Message-ID", message_id.to_string()),
            ],
            content_headers: vec![h("Content-Type", content_type.to_string())],
            body: content,
        }
    }

    /// The CPIM object's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_head();
        out.extend_from_slice(&self.body);
        out
    }

    /// Just the header part (everything before the inner body), for streaming senders.
    ///
    /// A CPIM header value starting with `;` carries RFC 3862 header parameters
    /// (`Subject:;lang=fr …`) and is written straight after the colon, as parsed.
    pub fn encode_head(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            if !value.starts_with(';') {
                out.push(b' ');
            }
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.content_headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Parses a complete CPIM object. CPIM header lines follow RFC 3862 §2.2 strictly (CRLF,
    /// exactly one space after the colon, no surrounding whitespace); the inner MIME headers
    /// follow RFC 5322 (any whitespace after the colon) but must not be folded. The body is
    /// kept octet for octet.
    pub fn parse(bytes: &[u8]) -> Result<Cpim, CpimError> {
        match scan(bytes)? {
            Some((mut cpim, head_len)) => {
                cpim.body = Bytes::copy_from_slice(&bytes[head_len..]);
                Ok(cpim)
            }
            None => Err(CpimError {
                offset: bytes.len(),
                msg: "object ends before the blank line that closes its headers".into(),
            }),
        }
    }

    /// Streaming receivers: if `prefix` holds the complete header part, returns the parsed
    /// headers (body left empty) and the header part's length, i.e. the offset of the inner
    /// body; `Ok(None)` when more bytes are needed.
    ///
    /// Fails as soon as the bytes seen are invalid, so a receiver need not buffer a broken
    /// object, and once [`MAX_HEAD`] bytes have arrived without completing the headers.
    pub fn parse_head(prefix: &[u8]) -> Result<Option<(Cpim, usize)>, CpimError> {
        let window = &prefix[..prefix.len().min(MAX_HEAD)];
        match scan(window)? {
            Some(found) => Ok(Some(found)),
            None if prefix.len() > MAX_HEAD => Err(CpimError {
                offset: MAX_HEAD,
                msg: format!("header part is longer than {MAX_HEAD} octets"),
            }),
            None => Ok(None),
        }
    }

    /// The first CPIM header named exactly `name` (names are case-sensitive, RFC 3862 §2.2).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The inner `Content-Type` (MIME header names are case-insensitive).
    pub fn content_type(&self) -> Option<&str> {
        self.content_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
            .map(|(_, v)| v.as_str())
    }
}

/// Largest CPIM header part (CPIM plus inner MIME headers) [`Cpim::parse_head`] waits for.
pub const MAX_HEAD: usize = 64 * 1024;

/// Formats `t` as an RFC 3339 UTC timestamp with whole seconds (`2026-11-26T13:21:24Z`);
/// times before 1970 are clamped to the epoch.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn angle(addr: &str) -> String {
    if addr.contains('<') {
        addr.to_string()
    } else {
        format!("<{addr}>")
    }
}

fn fail<T>(offset: usize, msg: impl Into<String>) -> Result<T, CpimError> {
    Err(CpimError {
        offset,
        msg: msg.into(),
    })
}

/// Which header block a line belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Cpim,
    Mime,
}

/// Walks the header part line by line. The input may stop anywhere: an unfinished last line is
/// checked as far as it goes and `Ok(None)` asks for more bytes. Returns the headers (body
/// empty) and the offset of the body.
fn scan(bytes: &[u8]) -> Result<Option<(Cpim, usize)>, CpimError> {
    let mut cpim = Cpim {
        headers: Vec::new(),
        content_headers: Vec::new(),
        body: Bytes::new(),
    };
    let mut section = Section::Cpim;
    let mut pos = 0;
    loop {
        let Some(lf) = memchr::memchr(b'\n', &bytes[pos..]).map(|i| pos + i) else {
            // Even unfinished, the last line may already be wrong.
            check_line(section, &bytes[pos..], pos, false)?;
            return Ok(None);
        };
        if lf == pos || bytes[lf - 1] != b'\r' {
            return fail(lf, "bare LF: CPIM lines end in CRLF (RFC 3862 §2.2)");
        }
        let line = &bytes[pos..lf - 1];
        if line.is_empty() {
            match section {
                Section::Cpim => section = Section::Mime,
                Section::Mime => {
                    if cpim.content_type().is_none() {
                        return fail(pos, "inner MIME headers lack Content-Type (RFC 3862 §2)");
                    }
                    return Ok(Some((cpim, lf + 1)));
                }
            }
        } else {
            let Some(header) = check_line(section, line, pos, true)? else {
                return fail(pos, "incomplete header line");
            };
            match section {
                Section::Cpim => cpim.headers.push(header),
                Section::Mime => cpim.content_headers.push(header),
            }
        }
        pos = lf + 1;
    }
}

/// RFC 3862 NAMECHAR.
fn is_namechar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, 0x21 | 0x23..=0x27 | 0x2a | 0x2b | 0x2d | 0x5e..=0x60 | 0x7c | 0x7e)
}

/// Checks one header line (without its CRLF) starting at stream offset `base`. When
/// `complete` is false the line may be cut anywhere and only what is present is checked;
/// then the result is `None`.
fn check_line(
    section: Section,
    line: &[u8],
    base: usize,
    complete: bool,
) -> Result<Option<(String, String)>, CpimError> {
    // A cut line may end in the CR of its CRLF.
    let body = if complete {
        line
    } else {
        line.strip_suffix(b"\r").unwrap_or(line)
    };
    if matches!(body.first(), Some(b' ' | b'\t')) {
        return fail(
            base,
            "line starts with whitespace: folded header lines are not allowed",
        );
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) if !complete && e.error_len().is_none() => {
            // Cut inside a multi-byte character: check the part before it.
            std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(e) => return fail(base + e.valid_up_to(), "header line is not valid UTF-8"),
    };
    let tab_ok = section == Section::Mime;
    if let Some(i) = text
        .bytes()
        .position(|b| (b < 0x20 && !(tab_ok && b == b'\t')) || b == 0x7f)
    {
        return fail(base + i, "control character in header line");
    }
    match section {
        Section::Cpim => check_cpim(text, base, complete),
        Section::Mime => check_mime(text, base, complete),
    }
}

/// RFC 3862 §2.2: `[Name-prefix "."] Name ":" *(";" Parameter) SP Header-value`.
fn check_cpim(
    text: &str,
    base: usize,
    complete: bool,
) -> Result<Option<(String, String)>, CpimError> {
    let b = text.as_bytes();
    let colon = b.iter().position(|&c| c == b':');
    let name = &b[..colon.unwrap_or(b.len())];
    if let Some(i) = name.iter().position(|&c| !is_namechar(c) && c != b'.') {
        return fail(base + i, "invalid character in CPIM header name");
    }
    let mut dots = name
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == b'.')
        .map(|(i, _)| i);
    let (first_dot, second_dot) = (dots.next(), dots.next());
    if let Some(at) = second_dot.or(first_dot.filter(|&d| d == 0)) {
        return fail(base + at, "CPIM header name must be `[prefix.]Name`");
    }
    let Some(colon) = colon else {
        return if complete {
            fail(base + b.len(), "CPIM header line has no colon")
        } else {
            Ok(None)
        };
    };
    if colon == 0 {
        return fail(base, "empty CPIM header name");
    }
    if first_dot == Some(colon - 1) {
        return fail(base + colon - 1, "CPIM header name must be `[prefix.]Name`");
    }

    // `*(";" Parameter) SP`: parameters run to the next unquoted `;` or SP.
    let mut i = colon + 1;
    while b.get(i) == Some(&b';') {
        i += 1;
        let start = i;
        let (mut quoted, mut escaped) = (false, false);
        while let Some(&c) = b.get(i) {
            if quoted {
                if escaped {
                    escaped = false;
                } else if c == b'\\' {
                    escaped = true;
                } else if c == b'"' {
                    quoted = false;
                }
            } else if c == b'"' {
                quoted = true;
            } else if c == b' ' || c == b';' {
                break;
            }
            i += 1;
        }
        if i == start && i < b.len() {
            return fail(base + i, "empty CPIM header parameter");
        }
    }
    match b.get(i) {
        Some(b' ') => {}
        None if !complete => return Ok(None),
        _ => {
            return fail(
                base + i,
                "expected exactly one space after the colon (RFC 3862 §2.2)",
            )
        }
    }
    if b.get(i + 1) == Some(&b' ') {
        return fail(
            base + i + 1,
            "more than one space after the colon (RFC 3862 §2.2)",
        );
    }
    if !complete {
        return Ok(None);
    }
    if i + 1 < b.len() && b[b.len() - 1] == b' ' {
        return fail(
            base + b.len() - 1,
            "trailing whitespace in CPIM header value",
        );
    }
    let value = if i == colon + 1 {
        &text[i + 1..]
    } else {
        &text[colon + 1..]
    };
    Ok(Some((text[..colon].to_string(), value.to_string())))
}

/// RFC 5322 field: `field-name ":" value`, whitespace around the value dropped.
fn check_mime(
    text: &str,
    base: usize,
    complete: bool,
) -> Result<Option<(String, String)>, CpimError> {
    let b = text.as_bytes();
    let colon = b.iter().position(|&c| c == b':');
    let name = &b[..colon.unwrap_or(b.len())];
    if let Some(i) = name.iter().position(|&c| !(0x21..=0x7e).contains(&c)) {
        return fail(base + i, "invalid character in MIME header name");
    }
    let Some(colon) = colon else {
        return if complete {
            fail(base + b.len(), "MIME header line has no colon")
        } else {
            Ok(None)
        };
    };
    if colon == 0 {
        return fail(base, "empty MIME header name");
    }
    if !complete {
        return Ok(None);
    }
    let value = text[colon + 1..].trim_matches([' ', '\t']);
    if value.is_empty() {
        return fail(base + colon + 1, "empty MIME header value");
    }
    Ok(Some((text[..colon].to_string(), value.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn sample(body: &[u8]) -> Cpim {
        Cpim::wrap(
            "sip:alice@example.com",
            "\"Friends\" <sip:friends@cf.example.com>",
            "Mq4Zr8Tn2Vb6",
            "text/plain;charset=UTF-8",
            Bytes::copy_from_slice(body),
            at(1_795_699_284),
        )
    }

    const SAMPLE_HEAD: &str = "From: <sip:alice@example.com>\r\n\
To: \"Friends\" <sip:friends@cf.example.com>\r\n\
DateTime: 2026-11-26T13:21:24Z\r\n\
NS: imdn <urn:ietf:params:imdn>\r\n\
imdn.Message-ID: Mq4Zr8Tn2Vb6\r\n\
\r\n\
Content-Type: text/plain;charset=UTF-8\r\n\
\r\n";

    fn err(bytes: &[u8]) -> CpimError {
        Cpim::parse(bytes).expect_err(&String::from_utf8_lossy(bytes))
    }

    /// `SAMPLE_HEAD` with `line` (no CRLF) swapped in for the `DateTime` line.
    fn with_line(line: &str) -> Vec<u8> {
        SAMPLE_HEAD
            .replace("DateTime: 2026-11-26T13:21:24Z", line)
            .into_bytes()
    }

    const DATETIME_AT: usize = 75;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(at(1_700_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(at(1_795_699_284)), "2026-11-26T13:21:24Z");
        assert_eq!(rfc3339_utc(at(4_107_542_399)), "2100-02-28T23:59:59Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn wrap_builds_the_large_message_headers() {
        let c = sample(b"hello");
        assert_eq!(String::from_utf8(c.encode_head()).unwrap(), SAMPLE_HEAD);
        assert_eq!(c.encode(), [SAMPLE_HEAD.as_bytes(), b"hello"].concat());
        assert_eq!(c.header("From"), Some("<sip:alice@example.com>"));
        assert_eq!(c.header("from"), None, "CPIM names are case-sensitive");
        assert_eq!(c.header("imdn.Message-ID"), Some("Mq4Zr8Tn2Vb6"));
        assert_eq!(c.content_type(), Some("text/plain;charset=UTF-8"));

        let live = Cpim::wrap(
            "sip:a@x",
            "sip:b@y",
            "id1",
            "text/plain",
            Bytes::new(),
            at(4_107_542_399),
        );
        let names: Vec<&str> = live.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["From", "To", "DateTime", "NS", "imdn.Message-ID"]);
        assert_eq!(live.header("DateTime").unwrap().len(), 20);
        assert_eq!(live.header("NS"), Some("imdn <urn:ietf:params:imdn>"));
    }

    #[test]
    fn round_trip() {
        let c = sample("grüße\r\n".as_bytes());
        let parsed = Cpim::parse(&c.encode()).unwrap();
        assert_eq!(parsed, c);
        assert_eq!(parsed.encode(), c.encode());
    }

    #[test]
    fn binary_body_is_kept_octet_exact() {
        let mut body: Vec<u8> = (0..=255u8).collect();
        body.extend_from_slice(b"\r\n\r\nContent-Type: x/y\r\n\r\n\n\r\r\n");
        let c = sample(&body);
        let parsed = Cpim::parse(&c.encode()).unwrap();
        assert_eq!(&parsed.body[..], &body[..]);
        let empty = sample(b"");
        assert_eq!(Cpim::parse(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn header_parameters_and_mime_whitespace() {
        let text = "From: <im:a@x>\r\nSubject:;lang=fr;x=\"a b;c\" Bonjour\r\n\r\n\
content-type:\ttext/plain \r\nContent-ID: <1@x>\r\n\r\nbody";
        let c = Cpim::parse(text.as_bytes()).unwrap();
        assert_eq!(c.header("Subject"), Some(";lang=fr;x=\"a b;c\" Bonjour"));
        assert_eq!(c.content_type(), Some("text/plain"));
        assert_eq!(c.content_headers[1], ("Content-ID".into(), "<1@x>".into()));
        assert_eq!(&c.body[..], b"body");
        assert_eq!(Cpim::parse(&c.encode()).unwrap(), c);
        assert!(c
            .encode()
            .starts_with(b"From: <im:a@x>\r\nSubject:;lang=fr;"));
        // Header-value may be empty (RFC 3862 ABNF `*HEADERCHAR`).
        let empty = Cpim::parse(&with_line("Subject: ")).unwrap();
        assert_eq!(empty.header("Subject"), Some(""));
    }

    #[test]
    fn parse_head_at_every_split() {
        let c = sample(b"0123456789\r\n\r\nabc");
        let bytes = c.encode();
        let head_len = SAMPLE_HEAD.len();
        let mut head = c.clone();
        head.body = Bytes::new();
        for n in 0..=bytes.len() {
            let got = Cpim::parse_head(&bytes[..n]).unwrap();
            if n < head_len {
                assert_eq!(got, None, "prefix {n}");
            } else {
                assert_eq!(got, Some((head.clone(), head_len)), "prefix {n}");
            }
        }
    }

    #[test]
    fn parse_head_splits_inside_multibyte_characters() {
        let text = "From: <im:ü@x>\r\n\r\nContent-Type: a/b\r\n\r\n".as_bytes();
        for n in 0..text.len() {
            assert_eq!(Cpim::parse_head(&text[..n]).unwrap(), None, "prefix {n}");
        }
        assert!(Cpim::parse_head(text).unwrap().is_some());
    }

    #[test]
    fn cpim_header_errors() {
        let cases: &[(&str, usize, &str)] = &[
            ("DateTime:2026", DATETIME_AT + 9, "exactly one space"),
            ("DateTime:  2026", DATETIME_AT + 10, "more than one space"),
            ("DateTime: 2026 ", DATETIME_AT + 14, "trailing whitespace"),
            ("DateTime 2026", DATETIME_AT + 8, "invalid character"),
            ("DateTime", DATETIME_AT + 8, "no colon"),
            (": 2026", DATETIME_AT, "empty CPIM header name"),
            (" DateTime: 2026", DATETIME_AT, "folded"),
            ("\tDateTime: 2026", DATETIME_AT, "folded"),
            ("Date\u{7f}Time: 2026", DATETIME_AT + 4, "control character"),
            ("DateTime: 20\t26", DATETIME_AT + 12, "control character"),
            ("DateTime: 20\r26", DATETIME_AT + 12, "control character"),
            ("a.b.c: 1", DATETIME_AT + 3, "[prefix.]Name"),
            (".b: 1", DATETIME_AT, "[prefix.]Name"),
            ("a.: 1", DATETIME_AT + 1, "[prefix.]Name"),
            ("Sub(ject): 1", DATETIME_AT + 3, "invalid character"),
            (
                "Subject:; x",
                DATETIME_AT + 9,
                "empty CPIM header parameter",
            ),
            (
                "Subject:;a;;b x",
                DATETIME_AT + 11,
                "empty CPIM header parameter",
            ),
            ("Subject:;lang=fr", DATETIME_AT + 16, "exactly one space"),
            ("Subject:;x=\"a b", DATETIME_AT + 15, "exactly one space"),
        ];
        for &(line, offset, want) in cases {
            let e = err(&with_line(line));
            assert_eq!(e.offset, offset, "{line:?}: {e}");
            assert!(e.msg.contains(want), "{line:?}: {e}");
        }
    }

    #[test]
    fn framing_and_mime_errors() {
        let lf = SAMPLE_HEAD.replacen("\r\nTo:", "\nTo:", 1);
        let e = err(lf.as_bytes());
        assert_eq!(e.offset, SAMPLE_HEAD.find("\r\nTo:").unwrap());
        assert!(e.msg.contains("bare LF"));

        let e = err(SAMPLE_HEAD
            .replace("\r\n\r\nContent", "\r\n\nContent")
            .as_bytes());
        assert!(e.msg.contains("bare LF"));

        let e = err(&SAMPLE_HEAD.as_bytes()[..SAMPLE_HEAD.len() - 2]);
        assert_eq!(e.offset, SAMPLE_HEAD.len() - 2);
        assert!(e.msg.contains("ends before"));
        assert!(err(b"").msg.contains("ends before"));

        let no_ct = SAMPLE_HEAD.replace("Content-Type: text/plain;charset=UTF-8", "Content-ID: x");
        let e = err(no_ct.as_bytes());
        assert_eq!(e.offset, no_ct.len() - 2);
        assert!(e.msg.contains("Content-Type"));

        let no_headers = "From: <a>\r\n\r\n\r\nbody";
        assert!(err(no_headers.as_bytes()).msg.contains("Content-Type"));

        let mime_at = SAMPLE_HEAD.find("Content-Type").unwrap();
        for (bad, off, want) in [
            ("Content-Type text/plain", 12, "invalid character in MIME"),
            ("Content-Type", 12, "no colon"),
            (": text/plain", 0, "empty MIME header name"),
            ("Content-Type:  ", 13, "empty MIME header value"),
            (" Content-Type: text/plain", 0, "folded"),
            ("Content-Type: text/\u{1}plain", 19, "control character"),
        ] {
            let text = SAMPLE_HEAD.replace("Content-Type: text/plain;charset=UTF-8", bad);
            let e = err(text.as_bytes());
            assert_eq!(e.offset, mime_at + off, "{bad:?}: {e}");
            assert!(e.msg.contains(want), "{bad:?}: {e}");
        }
    }

    #[test]
    fn invalid_utf8_in_headers() {
        let mut bytes = SAMPLE_HEAD.as_bytes().to_vec();
        bytes[DATETIME_AT + 11] = 0xff;
        let e = err(&bytes);
        assert_eq!(e.offset, DATETIME_AT + 11);
        assert!(e.msg.contains("UTF-8"));
        // Also caught before the line is complete.
        let e = Cpim::parse_head(&bytes[..DATETIME_AT + 13]).unwrap_err();
        assert_eq!(e.offset, DATETIME_AT + 11);
        // ... but a body need not be UTF-8.
        let mut ok = SAMPLE_HEAD.as_bytes().to_vec();
        ok.extend_from_slice(&[0xff, 0xfe]);
        assert!(Cpim::parse(&ok).is_ok());
    }

    #[test]
    fn parse_head_fails_early() {
        assert_eq!(Cpim::parse_head(b"From:").unwrap(), None);
        assert_eq!(Cpim::parse_head(b"From:x").unwrap_err().offset, 5);
        assert_eq!(Cpim::parse_head(b"From: <a>\n").unwrap_err().offset, 9);
        assert_eq!(Cpim::parse_head(b"Fr om").unwrap_err().offset, 2);
        assert_eq!(Cpim::parse_head(b"From: a\rb").unwrap_err().offset, 7);
        assert_eq!(Cpim::parse_head(b"From: a\r").unwrap(), None);
    }

    #[test]
    fn parse_head_size_limit() {
        let big = format!("Subject: {}", "x".repeat(MAX_HEAD));
        assert_eq!(Cpim::parse_head(&big.as_bytes()[..MAX_HEAD]).unwrap(), None);
        let e = Cpim::parse_head(&big.as_bytes()[..MAX_HEAD + 1]).unwrap_err();
        assert_eq!(e.offset, MAX_HEAD);

        // A header part of exactly MAX_HEAD octets still fits.
        let mut exact = sample(b"body");
        let pad = MAX_HEAD - exact.encode_head().len() - "X: \r\n".len();
        exact.headers.push(("X".into(), "y".repeat(pad)));
        let bytes = exact.encode();
        let (_, len) = Cpim::parse_head(&bytes).unwrap().unwrap();
        assert_eq!(len, MAX_HEAD);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_prefixes_agree(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let whole = Cpim::parse(&data);
            let mut failed = false;
            for n in 0..=data.len() {
                match Cpim::parse_head(&data[..n]) {
                    Err(_) => failed = true,
                    // Bytes found invalid stay invalid however many follow.
                    Ok(_) => proptest::prop_assert!(!failed, "error, then Ok at prefix {}", n),
                }
            }
            if whole.is_ok() {
                proptest::prop_assert!(!failed);
            }
        }

        #[test]
        fn mutated_objects_never_panic(pos in 0usize..200, byte in proptest::prelude::any::<u8>()) {
            let mut bytes = sample(b"payload\r\n").encode();
            let i = pos % bytes.len();
            bytes[i] = byte;
            let whole = Cpim::parse(&bytes);
            let head = Cpim::parse_head(&bytes);
            match (&whole, &head) {
                (Ok(c), Ok(Some((h, len)))) => {
                    proptest::prop_assert_eq!(&c.headers, &h.headers);
                    proptest::prop_assert_eq!(&c.body[..], &bytes[*len..]);
                }
                (Ok(_), other) => proptest::prop_assert!(false, "parse Ok but parse_head {:?}", other),
                (Err(a), Err(b)) => proptest::prop_assert_eq!(a, b),
                // parse fails on an object cut short where parse_head waits for more.
                (Err(_), Ok(r)) => proptest::prop_assert!(r.is_none()),
            }
        }
    }
}
