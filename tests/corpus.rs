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
//! - `#! status: N` or `#! status: none` (SIP requests, e.g. the RFC 4475 / RFC 5118 torture
//!   messages): what a running node answers the message with, over UDP and over TCP
//!   (`torture_messages_are_answered_as_the_rfcs_expect`), `none` when it must be discarded.
//!   Such a file's `expect:` covers the checks a UAS applies before processing a request
//!   (`SipMessage::check_request`) as well as the parser.
//! - `#! note: …` is a comment.
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
    /// The status a running node answers with (`Some(None)`: no answer).
    status: Option<Option<u16>>,
    bytes: Vec<u8>,
}

fn load(path: &Path) -> Case {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (corpus files are UTF-8 text)", path.display()));
    let mut expect = None;
    let mut via = None;
    let mut status = None;
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
                } else if let Some(v) = d.strip_prefix("status:") {
                    let v = v.trim();
                    status = Some(if v == "none" {
                        None
                    } else {
                        Some(v.parse::<u16>().unwrap_or_else(|_| {
                            panic!("{}: bad status directive {v:?}", path.display())
                        }))
                    });
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
    Case {
        expect,
        via,
        status,
        bytes,
    }
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
        // A message a node answers (`status:`) is judged as a UAS judges a request.
        let uas = |m: &SipMessage| -> Result<(), String> {
            if c.status.is_some() {
                m.check_request().map_err(|r| r.to_string())?;
            }
            Ok(())
        };
        if via == "datagram" || via == "both" {
            let m = SipMessage::parse(&c.bytes).map_err(|e| e.to_string())?;
            touch_sip(&m)?;
            uas(&m)?;
        }
        if via == "stream" || via == "both" {
            for m in sip_stream(&c.bytes)? {
                touch_sip(&m)?;
                uas(&m)?;
            }
        }
        Ok(())
    });
    assert!(ok >= 4 && bad >= 20, "{ok} valid, {bad} malformed");
}

/// The SIP torture messages with a `status:` are answered by a running node (the code the
/// harness's entities and the reference SUT share) with that status over UDP and over TCP,
/// or not at all (`none`); every answer parses and echoes no out-of-range value. Issue 15.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)] // Tests may read the clock.
async fn torture_messages_are_answered_as_the_rfcs_expect() {
    use cpm_harness::config::Variant;
    use cpm_harness::driver::spawn_node;
    use cpm_harness::entity::NodeConfig;
    use cpm_harness::topology::Topology;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let topo = Arc::new(Topology::generate(78, 1, 1, 5060, 2855));
    let cfg = NodeConfig::new(topo.clone(), "pf-a", Variant::new(1)).expect("pf-a");
    let node = spawn_node(cfg, None).await.expect("node runs");
    let to = topo.pf_a.sip;
    let wait = Duration::from_millis(700);
    // The status line's code of a reply, after checking the reply is well-formed.
    let status_of = |name: &str, how: &str, reply: &[u8]| -> u16 {
        let m = SipMessage::parse(reply).unwrap_or_else(|e| {
            panic!(
                "{name} over {how}: the reply does not parse ({e}):\n{}",
                String::from_utf8_lossy(reply)
            )
        });
        let (n, _) = m
            .cseq()
            .unwrap_or_else(|| panic!("{name} over {how}: reply without CSeq"));
        assert!(n < 1 << 31, "{name} over {how}: CSeq {n} echoed");
        for h in ["Via", "From", "To", "Call-ID"] {
            assert!(
                m.header(h).is_some(),
                "{name} over {how}: reply without {h}"
            );
        }
        m.code()
            .unwrap_or_else(|| panic!("{name} over {how}: not a response"))
    };
    let mut problems = Vec::new();
    let mut tried = 0;
    for path in files("sip") {
        let c = load(&path);
        let Some(want) = c.status else { continue };
        tried += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // UDP: one datagram, one reply (or none).
        let udp = tokio::net::UdpSocket::bind("127.78.0.200:0").await.unwrap();
        udp.send_to(&c.bytes, to).await.unwrap();
        let mut buf = vec![0u8; 65536];
        let got = match tokio::time::timeout(wait, udp.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => Some(status_of(&name, "UDP", &buf[..n])),
            _ => None,
        };
        if got != want {
            problems.push(format!("{name} over UDP: got {got:?}, expected {want:?}"));
        }
        // TCP: the message on a connection of its own.
        let mut s = tokio::net::TcpStream::connect(to).await.unwrap();
        s.write_all(&c.bytes).await.unwrap();
        let mut reply = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => {
                    reply.extend_from_slice(&buf[..n]);
                    if SipMessage::parse(&reply).is_ok() {
                        break;
                    }
                }
            }
        }
        let got = (!reply.is_empty()).then(|| status_of(&name, "TCP", &reply));
        if got != want {
            problems.push(format!("{name} over TCP: got {got:?}, expected {want:?}"));
        }
    }
    let _ = node.stop().await;
    assert!(tried >= 8, "{tried} torture messages");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// SIP over TCP: a valid message followed in the same segment by bytes that cannot be framed
/// gets its reply before the connection is closed (issue 15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_message_before_garbage_on_tcp_is_answered_before_the_close() {
    use cpm_harness::config::Variant;
    use cpm_harness::driver::spawn_node;
    use cpm_harness::entity::NodeConfig;
    use cpm_harness::topology::Topology;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let topo = Arc::new(Topology::generate(79, 1, 1, 5060, 2855));
    let cfg = NodeConfig::new(topo.clone(), "pf-a", Variant::new(1)).expect("pf-a");
    let node = spawn_node(cfg, None).await.expect("node runs");
    let mut s = tokio::net::TcpStream::connect(topo.pf_a.sip).await.unwrap();
    let mut seg = b"OPTIONS sip:pf-a@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 127.79.0.200:5060;branch=z9hG4bK-then-garbage\r\n\
Max-Forwards: 70\r\n\
From: <sip:tester@example.com>;tag=t1\r\n\
To: <sip:pf-a@example.com>\r\n\
Call-ID: then-garbage@127.79.0.200\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
        .to_vec();
    seg.extend_from_slice(b"\x00\x01\x02 not SIP at all\r\n\r\n");
    s.write_all(&seg).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let _ = node.stop().await;
    let reply = SipMessage::parse(&got).unwrap_or_else(|e| {
        panic!(
            "no reply before the close ({e}): {:?}",
            String::from_utf8_lossy(&got)
        )
    });
    assert!(reply.code().is_some(), "{reply:?}");
    assert_eq!(reply.call_id(), Some("then-garbage@127.79.0.200"));
    assert!(closed, "the connection is closed after the garbage");
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
