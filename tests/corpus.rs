//! The malformed-input corpus (`tests/corpus/{sip,sdp,msrp,cpim}/*.txt`): every file goes
//! through the harness's parser for its protocol and must give what its `#! expect:` line
//! says — `ok`, or `error TEXT` with TEXT in a located error message — and never a panic.
//! The fuzzers' crashes (`fuzz/`) land here too, so each stays fixed.
//!
//! # File format
//! Lines starting with `#!` at the top are directives:
//! - `#! expect: ok` or `#! expect: error TEXT` (required);
//! - `#! via: …` picks the entry point: SIP `datagram` (default), `stream` (the TCP framer with
//!   its limits) or `both`; SDP `msrp-sdp` (default, the typed MSRP view) or `sdp` (syntax only).
//!
//! Every line end of the rest becomes CRLF. Escapes: `{CR}`, `{LF}` (bare), `{xHH}` (a byte),
//! `{FILL:N:C}` (N copies of the character C), `{REPEAT:N}` at a line start (the rest of the
//! line N times), `{CL}` (SIP: the length of the body after the first empty line), `{EOF}` (cut
//! here: no line end after it).

use bytes::Bytes;
use cpm_harness::codec::cpim::Cpim;
use cpm_harness::codec::msrp::{
    ByteRange, Limits as MsrpLimits, MsrpEvent, MsrpHead, MsrpParser, StartLine,
};
use cpm_harness::codec::sdp::{MsrpSdp, Sdp};
use cpm_harness::codec::sip::{Limits as SipLimits, SipFramer, SipMessage};
use std::path::{Path, PathBuf};

#[derive(Debug)]
struct Case {
    expect: Result<(), String>,
    via: Option<String>,
    bytes: Vec<u8>,
}

fn load(path: &Path) -> Case {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (corpus files are UTF-8 text)", path.display()));
    let mut expect = None;
    let mut via = None;
    let mut body_lines = Vec::new();
    let mut in_head = true;
    for line in text.split_inclusive('\n') {
        if in_head {
            if let Some(d) = line.strip_prefix("#!") {
                let d = d.trim();
                if let Some(e) = d.strip_prefix("expect:") {
                    let e = e.trim();
                    expect = Some(if e == "ok" {
                        Ok(())
                    } else if let Some(t) = e.strip_prefix("error") {
                        Err(t.trim().to_string())
                    } else {
                        panic!("{}: bad expect directive {e:?}", path.display())
                    });
                } else if let Some(v) = d.strip_prefix("via:") {
                    via = Some(v.trim().to_string());
                } else if !d.starts_with("note:") {
                    panic!("{}: unknown directive {d:?}", path.display());
                }
                continue;
            }
            in_head = false;
        }
        body_lines.push(line);
    }
    let expect = expect.unwrap_or_else(|| panic!("{}: no `#! expect:` directive", path.display()));
    let mut bytes = Vec::new();
    for line in body_lines {
        let (line, nl) = match line.strip_suffix('\n') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let (line, times) = match line.strip_prefix("{REPEAT:") {
            Some(rest) => {
                let (n, rest) = rest.split_once('}').expect("{REPEAT:N}");
                (rest, n.parse::<usize>().expect("REPEAT count"))
            }
            None => (line, 1),
        };
        for _ in 0..times {
            let cut = decode_line(line, &mut bytes);
            if nl && !cut {
                bytes.extend_from_slice(b"\r\n");
            }
        }
    }
    // `{CL}`: the body length after the first empty line (placeholder of two bytes).
    if let Some(p) = find(&bytes, b"\x00CL\x00") {
        let body = find(&bytes, b"\r\n\r\n")
            .map(|e| bytes.len() - (e + 4))
            .unwrap_or(0);
        let n = body.to_string();
        bytes.splice(p..p + 4, n.bytes());
    }
    Case { expect, via, bytes }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Appends the decoded line; returns true when it ended with `{EOF}`.
fn decode_line(line: &str, out: &mut Vec<u8>) -> bool {
    let mut rest = line;
    while let Some(i) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let Some(j) = rest[i..].find('}') else {
            out.extend_from_slice(&rest.as_bytes()[i..]);
            return false;
        };
        let tok = &rest[i + 1..i + j];
        match tok {
            "CR" => out.push(b'\r'),
            "LF" => out.push(b'\n'),
            "CL" => out.extend_from_slice(b"\x00CL\x00"),
            "EOF" => return true,
            t if t.starts_with('x') && t.len() == 3 => {
                out.push(u8::from_str_radix(&t[1..], 16).expect("{xHH}"));
            }
            t if t.starts_with("FILL:") => {
                let mut it = t[5..].splitn(2, ':');
                let n: usize = it.next().and_then(|n| n.parse().ok()).expect("{FILL:N:C}");
                let c = it.next().expect("{FILL:N:C}");
                for _ in 0..n {
                    out.extend_from_slice(c.as_bytes());
                }
            }
            // Not an escape (a brace in the text).
            _ => {
                out.extend_from_slice(&rest.as_bytes()[i..i + j + 1]);
            }
        }
        rest = &rest[i + j + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    false
}

fn files(proto: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(proto);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    v.sort();
    v
}

/// Runs `parse` on every file of `proto`, catching panics, and checks each expectation.
/// Returns the number of (ok, error) files.
fn run_corpus(proto: &str, parse: impl Fn(&Case) -> Result<(), String>) -> (usize, usize) {
    let mut problems = Vec::new();
    let (mut ok, mut bad) = (0, 0);
    for path in files(proto) {
        let case = load(&path);
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&case)));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match (got, &case.expect) {
            (Err(_), _) => problems.push(format!("{name}: PANIC")),
            (Ok(Ok(())), Ok(())) => ok += 1,
            (Ok(Ok(())), Err(want)) => {
                problems.push(format!("{name}: parsed, expected an error with {want:?}"))
            }
            (Ok(Err(e)), Ok(())) => problems.push(format!("{name}: expected ok, got {e}")),
            (Ok(Err(e)), Err(want)) => {
                if e.contains(want.as_str()) {
                    bad += 1;
                } else {
                    problems.push(format!("{name}: error {e:?} does not contain {want:?}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{proto} corpus:\n{}",
        problems.join("\n")
    );
    (ok, bad)
}

// ------------------------------------------------------------------------------------- SIP

/// Reads every accessor of a parsed message (none may panic on hostile content).
fn touch_sip(m: &SipMessage) -> Result<(), String> {
    let _ = (m.summary(), m.call_id(), m.cseq(), m.from_tag(), m.to_tag());
    let _ = (m.from_uri(), m.to_uri(), m.contact_uri(), m.via_branch());
    let _ = (m.via_sent_by(), m.content_type(), m.request_uri(), m.code());
    if let Some(sdp) = m.sdp_body() {
        let _ = MsrpSdp::parse(&sdp);
    }
    m.resource_list().map_err(|e| e.to_string())?;
    Ok(())
}

fn sip_stream(bytes: &[u8]) -> Result<Vec<SipMessage>, String> {
    let mut f = SipFramer::new(SipLimits::default());
    let mut out = Vec::new();
    // Fed in 1000-byte reads, as a socket would, so the limits act before all is buffered.
    for piece in bytes.chunks(1000) {
        f.push(piece);
        while let Some(m) = f.next().map_err(|e| e.to_string())? {
            out.push(m);
        }
        assert!(
            f.buffered() <= SipLimits::default().max_message + 1000,
            "the framer buffered {} bytes",
            f.buffered()
        );
    }
    if f.buffered() > 0 {
        return Err(format!(
            "stream ends inside a message ({} bytes pending)",
            f.buffered()
        ));
    }
    if out.is_empty() {
        return Err("no message in the stream".into());
    }
    Ok(out)
}

#[test]
fn sip_corpus() {
    let (ok, bad) = run_corpus("sip", |c| {
        let via = c.via.as_deref().unwrap_or("datagram");
        if via == "datagram" || via == "both" {
            let m = SipMessage::parse(&c.bytes).map_err(|e| e.to_string())?;
            touch_sip(&m)?;
        }
        if via == "stream" || via == "both" {
            for m in sip_stream(&c.bytes)? {
                touch_sip(&m)?;
            }
        }
        Ok(())
    });
    assert!(ok >= 4 && bad >= 20, "{ok} valid, {bad} malformed");
}

// ------------------------------------------------------------------------------------- SDP

#[test]
fn sdp_corpus() {
    let (ok, bad) = run_corpus("sdp", |c| match c.via.as_deref().unwrap_or("msrp-sdp") {
        "sdp" => Sdp::parse(&c.bytes).map(|_| ()).map_err(|e| e.to_string()),
        _ => {
            let s = MsrpSdp::parse(&c.bytes).map_err(|e| e.to_string())?;
            // What an entity does with a parsed answer: encode it again and read it back.
            let again = MsrpSdp::parse(s.encode().as_bytes()).map_err(|e| e.to_string())?;
            assert_eq!(again.path, s.path);
            Ok(())
        }
    });
    assert!(ok >= 3 && bad >= 15, "{ok} valid, {bad} malformed");
}

// ------------------------------------------------------------------------------------ MSRP

/// The events of a stream fed in `pieces`, the first error, and whether it ended idle.
fn msrp_events(pieces: &[&[u8]]) -> (Vec<MsrpEvent>, Option<String>, bool) {
    let mut p = MsrpParser::new(MsrpLimits::default());
    let mut evs = Vec::new();
    for piece in pieces {
        p.push(piece);
        loop {
            match p.next() {
                Ok(Some(ev)) => evs.push(ev),
                Ok(None) => break,
                Err(e) => return (merge(evs), Some(e.to_string()), false),
            }
        }
    }
    let idle = p.is_idle();
    (merge(evs), None, idle)
}

/// Adjacent body pieces merged (their boundaries depend on the reads).
fn merge(evs: Vec<MsrpEvent>) -> Vec<MsrpEvent> {
    let mut out: Vec<MsrpEvent> = Vec::new();
    for ev in evs {
        if let (MsrpEvent::Body(b), Some(MsrpEvent::Body(prev))) = (&ev, out.last_mut()) {
            let mut v = prev.to_vec();
            v.extend_from_slice(b);
            *prev = Bytes::from(v);
            continue;
        }
        out.push(ev);
    }
    out
}

/// The rules a receiving endpoint applies to each message beyond framing (RFC 4975 §7, §9;
/// the malformed-MSRP corpus), as errors naming the transaction.
fn validate_msrp(head: &MsrpHead, body_len: usize) -> Result<(), String> {
    let tid = &head.tid;
    let err = |m: &str| Err(format!("MSRP {tid}: {m}"));
    let to = head.to_path().map_err(|e| format!("MSRP {tid}: {e}"))?;
    let from = head.from_path().map_err(|e| format!("MSRP {tid}: {e}"))?;
    if to.is_empty() || from.is_empty() {
        return err("To-Path and From-Path are required");
    }
    if let Some(r) = head.byte_range() {
        let r: ByteRange = r.map_err(|e| format!("MSRP {tid}: {e}"))?;
        if let (Some(end), true) = (r.end, body_len > 0) {
            if end + 1 - r.start != body_len as u64 {
                return err("Byte-Range does not match the body length");
            }
        }
    }
    let StartLine::Request { method } = &head.start else {
        return Ok(());
    };
    if to.len() != 1 {
        return err("To-Path of a request at an endpoint has more than one URI");
    }
    if head.has_body {
        match head.headers.last() {
            Some((n, _)) if n == "Content-Type" => {}
            _ if head.content_type().is_some() => {
                return err("Content-Type is not the last header")
            }
            _ => return err("body without Content-Type"),
        }
    }
    match method.as_str() {
        "SEND" => {
            if head.message_id().is_none() {
                return err("SEND without Message-ID");
            }
        }
        "REPORT" => {
            if head.header("Failure-Report").is_some() || head.header("Success-Report").is_some() {
                return err("REPORT carries a Failure-Report or Success-Report header");
            }
        }
        _ => {
            if body_len > 10240 {
                return err("non-SEND request with a body over 10240 octets");
            }
        }
    }
    Ok(())
}

fn msrp_check(bytes: &[u8]) -> Result<(), String> {
    // Split invariance over every two-piece split (small files) and one-byte reads.
    let (evs, err, idle) = msrp_events(&[bytes]);
    if bytes.len() <= 4096 {
        for cut in 0..=bytes.len() {
            let other = msrp_events(&[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(other, (evs.clone(), err.clone(), idle), "split at {cut}");
        }
        let ones: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(msrp_events(&ones), (evs.clone(), err.clone(), idle));
    }
    if let Some(e) = err {
        return Err(e);
    }
    let mut head: Option<(&MsrpHead, usize)> = None;
    let mut count = 0;
    for ev in &evs {
        match ev {
            MsrpEvent::Head(h) => head = Some((h, 0)),
            MsrpEvent::Body(b) => {
                if let Some((_, n)) = head.as_mut() {
                    *n += b.len();
                }
            }
            MsrpEvent::End { .. } => {
                if let Some((h, n)) = head.take() {
                    validate_msrp(h, n)?;
                    count += 1;
                }
            }
        }
    }
    if !idle {
        return Err(format!(
            "stream ends inside a message (after {count} complete messages)"
        ));
    }
    if count == 0 {
        return Err("no message in the stream".into());
    }
    Ok(())
}

#[test]
fn msrp_corpus() {
    let (ok, bad) = run_corpus("msrp", |c| msrp_check(&c.bytes));
    assert!(ok >= 4 && bad >= 18, "{ok} valid, {bad} malformed");
}

// ------------------------------------------------------------------------------------ CPIM

#[test]
fn cpim_corpus() {
    let (ok, bad) = run_corpus("cpim", |c| {
        let full = Cpim::parse(&c.bytes).map_err(|e| e.to_string());
        // The streaming head parse must agree with the whole-object parse at every prefix:
        // never an error on a prefix of a valid object, and the same error as a whole.
        if c.bytes.len() <= 4096 {
            for cut in 0..c.bytes.len() {
                if let Err(e) = Cpim::parse_head(&c.bytes[..cut]) {
                    if full.is_ok() {
                        panic!("prefix of {cut} bytes of a valid object: {e}");
                    }
                }
            }
        }
        let streamed = Cpim::parse_head(&c.bytes).map_err(|e| e.to_string());
        // A receiver reads the head as it streams in: its error is the one reported.
        let result = match &streamed {
            Err(e) => Err(e.clone()),
            Ok(_) => full.clone().map(|_| ()),
        };
        match (&full, streamed) {
            (Ok(m), Ok(Some((h, len)))) => {
                assert_eq!(h.headers, m.headers);
                assert_eq!(&c.bytes[len..], &m.body[..]);
            }
            // The streaming parse gives up at MAX_HEAD; the whole parse reads on.
            (Err(e), Err(e2)) => assert!(e == &e2 || e2.contains("longer than"), "{e} vs {e2}"),
            (Err(_), Ok(None)) => {}
            (a, b) => panic!("whole {a:?} vs streamed {b:?}"),
        }
        result
    });
    assert!(ok >= 3 && bad >= 8, "{ok} valid, {bad} malformed");
}

/// The corpus format itself: escapes decode as documented.
#[test]
fn corpus_format_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.txt");
    std::fs::write(
        &p,
        "#! expect: ok\nA{CR}B{LF}{x00}{FILL:3:z}\n{REPEAT:2}r\nL: {CL}\n\nbody{EOF}\n",
    )
    .unwrap();
    let c = load(&p);
    assert_eq!(
        c.bytes,
        b"A\rB\n\x00zzz\r\nr\r\nr\r\nL: 4\r\n\r\nbody".to_vec()
    );
}
