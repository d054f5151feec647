//! Captures of real chain runs (all five roles in this process, over loopback sockets, SIP
//! over UDP and over TCP): written as pcap, checked with tshark against the harness's own
//! parsers, and read back by the capture reader — also after conversion to pcapng and other
//! link types, with reordered and duplicated TCP segments, fragmented UDP, and broken files.
//!
//! A test whose tshark (or dumpcap, editcap) checks cannot run because the tool is missing
//! says so and is listed as not run by `scripts/test`; CI installs the tools and requires them.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;

use bytes::Bytes;
use cpm_harness::capture::read::read_capture_full;
use cpm_harness::capture::write::MAX_SEGMENT;
use cpm_harness::capture::{read_capture, read_capture_from, write_pcap, CaptureError, PcapWriter};
use cpm_harness::chain::{pattern, run_once, ChainOptions};
use cpm_harness::codec::sip::{SipMessage, Transport};
use cpm_harness::config::Variant;
use cpm_harness::topology::Topology;
use cpm_harness::trace::{one_copy, Record, Recorder, Seen, WireEvent};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter as RawPcapWriter};
use pcap_file::DataLink;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

type Events = Vec<(Duration, WireEvent)>;

/// One recorded chain run and its capture.
struct Run {
    /// The one-copy stream.
    events: Events,
    /// Every record, both ends' copies included.
    records: Vec<Record>,
    /// In cargo's test scratch directory, so the last run's captures stay there to look at.
    pcap: PathBuf,
}

/// Printable content without `;`. tshark 4.0's MSRP dissector looks for the `;` of
/// Content-Type parameters past the end of the Content-Type line: a `;` in the first bytes
/// of a body makes it throw ("Malformed Packet"), whatever the capture. Binary content has
/// one in about one chunk in twenty.
fn text_content(len: usize) -> Bytes {
    let printable = |b: &u8| match b' ' + b % 95 {
        b';' => b'.',
        c => c,
    };
    pattern(len)
        .iter()
        .map(printable)
        .collect::<Vec<u8>>()
        .into()
}

fn record(net: u8, transport: Transport) -> Run {
    let (records, start) = chain_run(net, transport);
    let events = one_copy(&records);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capture-tests");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let pcap = dir.join(format!("chain-sip-{transport}.pcap"));
    write_pcap(&pcap, start, &events).expect("write pcap");
    Run {
        events,
        records,
        pcap,
    }
}

/// Runs the whole chain once on loopback net `127.<net>.0.0/16`; the recorded events and the
/// wall-clock start.
fn chain_run(net: u8, transport: Transport) -> (Vec<Record>, SystemTime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rec = Recorder::new(Instant::now());
    let start = SystemTime::now();
    let mut variant = Variant::new(1);
    variant.transport = transport;
    let opts = ChainOptions {
        recorder: Some(rec.clone()),
        ..ChainOptions::new(Arc::new(Topology::generate(net, 3, 2, 5060, 2855)), variant)
    };
    rt.block_on(run_once(
        opts,
        text_content(200_000),
        Duration::from_secs(20),
    ))
    .unwrap_or_else(|e| panic!("chain run on net {net}: {e:#}"));
    (rec.records(), start)
}

/// The run with SIP over `t`, recorded once for all tests (nets 230 and 231).
fn run(t: Transport) -> &'static Run {
    static UDP: OnceLock<Run> = OnceLock::new();
    static TCP: OnceLock<Run> = OnceLock::new();
    match t {
        Transport::Udp => UDP.get_or_init(|| record(230, t)),
        Transport::Tcp => TCP.get_or_init(|| record(231, t)),
        Transport::Tls => unreachable!("captures of SIP over TLS: tests/tls.rs"),
    }
}

const BOTH: [Transport; 2] = [Transport::Udp, Transport::Tcp];

/// Whether `tool` (tshark, dumpcap, editcap) is installed; when it is not, the test (or the
/// part of it that needs the tool) does not run: recorded for `scripts/test`, a failure
/// under CI.
fn have(tool: &str) -> bool {
    common::require_tool(tool).is_some()
}

fn sip_events(events: &[(Duration, WireEvent)]) -> Vec<(Transport, SocketAddr, SocketAddr, Bytes)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            WireEvent::Sip {
                transport,
                from,
                to,
                raw,
            } => Some((*transport, *from, *to, raw.clone())),
            _ => None,
        })
        .collect()
}

fn opens(events: &[(Duration, WireEvent)]) -> Vec<(SocketAddr, SocketAddr)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            WireEvent::TcpOpen { conn, opener } => {
                Some((*opener, if *opener == conn.0 { conn.1 } else { conn.0 }))
            }
            _ => None,
        })
        .collect()
}

/// Per direction: the concatenated TCP data, and the size of each data event.
fn streams(events: &[(Duration, WireEvent)]) -> BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> {
    let mut m: BTreeMap<_, Vec<u8>> = BTreeMap::new();
    for (_, e) in events {
        if let WireEvent::TcpData { from, to, data } = e {
            m.entry((*from, *to)).or_default().extend_from_slice(data);
        }
    }
    m
}

fn closes(events: &[(Duration, WireEvent)]) -> BTreeSet<(SocketAddr, SocketAddr)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            WireEvent::TcpClose { from, to } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

/// Asserts two event streams carry the same SIP messages (in the same order per direction;
/// overall too when `strict`), openings, TCP bytes and closes.
fn assert_same_traffic(what: &str, want: &[(Duration, WireEvent)], got: &[(Duration, WireEvent)]) {
    assert_traffic(what, want, got, true)
}

fn assert_traffic(
    what: &str,
    want: &[(Duration, WireEvent)],
    got: &[(Duration, WireEvent)],
    strict: bool,
) {
    let (ws, gs) = (sip_events(want), sip_events(got));
    assert_eq!(ws.len(), gs.len(), "{what}: number of SIP messages");
    if strict {
        for (i, (w, g)) in ws.iter().zip(&gs).enumerate() {
            assert_eq!(w, g, "{what}: SIP message {i}");
        }
    }
    let per_dir = |v: &[(Transport, SocketAddr, SocketAddr, Bytes)]| {
        let mut m: BTreeMap<_, Vec<Bytes>> = BTreeMap::new();
        for (t, f, d, raw) in v {
            m.entry((*t == Transport::Tcp, *f, *d))
                .or_default()
                .push(raw.clone());
        }
        m
    };
    assert!(
        per_dir(&ws) == per_dir(&gs),
        "{what}: SIP messages per direction"
    );
    if strict {
        assert_eq!(
            opens(want),
            opens(got),
            "{what}: TCP openings (opener, target)"
        );
    } else {
        let set = |v: Vec<_>| v.into_iter().collect::<BTreeSet<_>>();
        assert_eq!(
            set(opens(want)),
            set(opens(got)),
            "{what}: TCP openings (opener, target)"
        );
    }
    let (wd, gd) = (streams(want), streams(got));
    assert_eq!(
        wd.keys().collect::<Vec<_>>(),
        gd.keys().collect::<Vec<_>>(),
        "{what}: TCP directions with data"
    );
    for (k, w) in &wd {
        assert!(gd[k] == *w, "{what}: TCP bytes {} -> {} differ", k.0, k.1);
    }
    if strict {
        assert_eq!(closes(want), closes(got), "{what}: TCP closes");
    } else {
        let (w, g) = (closes(want), closes(got));
        assert!(w.is_subset(&g), "{what}: TCP closes {w:?} not all in {g:?}");
    }
}

// ---------------------------------------------------------------------------------------
// tshark

/// (a) no malformed frames; (d) no TCP analysis flags, every checksum verified good.
#[test]
fn tshark_sees_no_malformed_frames_bad_checksums_or_tcp_analysis_flags() {
    if !have("tshark") {
        return;
    }
    for t in BOTH {
        let r = run(t);
        let checks = [
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
        ];
        let mut args = checks.to_vec();
        args.extend([
            "-Y",
            "_ws.malformed || _ws.expert.severity >= 0x00600000 || tcp.analysis.flags \
             || ip.checksum.status != 1 || tcp.checksum.status != 1 || udp.checksum.status != 1",
            "-e",
            "frame.number",
            "-e",
            "_ws.col.Info",
        ]);
        let bad = common::tshark_fields(&r.pcap, &args);
        assert!(
            bad.is_empty(),
            "SIP/{t}: {} bad frames: {:?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
        // The checksum checks ran: every frame carries a verified IP checksum.
        let mut args = checks.to_vec();
        args.extend(["-e", "ip.checksum.status"]);
        let rows = common::tshark_fields(&r.pcap, &args);
        assert!(rows.len() > 1000, "SIP/{t}: only {} frames", rows.len());
        assert!(
            rows.iter().all(|r| r[0] == "1"),
            "SIP/{t}: unverified IP checksums"
        );
    }
}

/// (b) SIP, SDP and MSRP fields as tshark dissects them equal the harness's own parse of
/// the same messages. For MSRP, tshark 4.0 shows only the first message that starts a
/// segment (a known TShark limit): every message it shows must match the harness's, and every
/// message that starts a segment must be shown.
#[test]
fn tshark_sip_sdp_and_msrp_fields_match_the_harness_parsers() {
    if !have("tshark") {
        return;
    }
    for t in BOTH {
        let r = run(t);
        let canon = r.events.clone();
        let msgs: Vec<SipMessage> = sip_events(&canon)
            .iter()
            .map(|(_, _, _, raw)| SipMessage::parse(raw).expect("recorded SIP parses"))
            .collect();

        // SIP: one message per frame, in frame order.
        let rows = common::tshark_fields(
            &r.pcap,
            &[
                "-Y",
                "sip",
                "-E",
                "occurrence=f",
                "-e",
                "sip.Method",
                "-e",
                "sip.Status-Code",
                "-e",
                "sip.Call-ID",
            ],
        );
        let want: Vec<Vec<String>> = msgs
            .iter()
            .map(|m| {
                vec![
                    m.method()
                        .map(|x| x.as_str().to_owned())
                        .unwrap_or_default(),
                    m.code().map(|c| c.to_string()).unwrap_or_default(),
                    m.call_id().unwrap_or_default().to_owned(),
                ]
            })
            .collect();
        assert_eq!(
            rows, want,
            "SIP/{t}: sip.Method, sip.Status-Code, sip.Call-ID"
        );

        // SDP: c= address, m= port and every media attribute (a=path among them, R3).
        let rows = common::tshark_fields(
            &r.pcap,
            &[
                "-Y",
                "sdp",
                "-E",
                "occurrence=a",
                "-E",
                "aggregator=|",
                "-e",
                "sdp.connection_info.address",
                "-e",
                "sdp.media.port",
                "-e",
                "sdp.media_attr",
            ],
        );
        let want: Vec<Vec<String>> = common::sdp_fields(&msgs)
            .into_iter()
            .map(|[_, address, port, attrs]| vec![address, port, attrs])
            .collect();
        assert!(want.len() >= 10, "SIP/{t}: only {} SDP bodies", want.len());
        assert_eq!(rows, want, "SIP/{t}: SDP c=, m= port, a= attributes");
        assert!(
            rows.iter().all(|r| r[2].contains("path:msrp://")),
            "SIP/{t}: a=path"
        );

        // MSRP, by transaction id: (tcp.stream is not needed, ids are unique per run).
        let rows = common::tshark_fields(
            &r.pcap,
            &[
                "-Y",
                "msrp",
                "-E",
                "occurrence=f",
                "-e",
                "msrp.transaction.id",
                "-e",
                "msrp.method",
                "-e",
                "msrp.status.code",
                "-e",
                "msrp.to.path",
                "-e",
                "msrp.from.path",
                "-e",
                "msrp.byte.range",
            ],
        );
        let shown: BTreeMap<String, Vec<String>> =
            rows.into_iter().map(|r| (r[0].clone(), r)).collect();
        let (all, at_segment_start) = common::msrp_heads(&canon);
        assert!(
            at_segment_start.len() > 100,
            "SIP/{t}: {} MSRP heads",
            at_segment_start.len()
        );
        assert!(
            shown.len() >= at_segment_start.len(),
            "SIP/{t}: {} shown",
            shown.len()
        );
        for (tid, row) in &shown {
            assert_eq!(
                all.get(tid),
                Some(row),
                "SIP/{t}: MSRP message {tid} as tshark shows it"
            );
        }
        for tid in &at_segment_start {
            assert!(
                shown.contains_key(tid),
                "SIP/{t}: MSRP message {tid} starts a segment but tshark does not show it"
            );
        }
    }
}

/// (c) The SYN of every TCP stream comes from the side the recorder saw open it.
#[test]
fn syn_direction_of_every_stream_is_the_recorded_opener() {
    if !have("tshark") {
        return;
    }
    for t in BOTH {
        let r = run(t);
        let rows = common::tshark_fields(
            &r.pcap,
            &[
                "-Y",
                "tcp.flags.syn==1 && tcp.flags.ack==0",
                "-e",
                "tcp.stream",
                "-e",
                "ip.src",
                "-e",
                "tcp.srcport",
                "-e",
                "ip.dst",
                "-e",
                "tcp.dstport",
            ],
        );
        let streams: BTreeSet<&String> = rows.iter().map(|r| &r[0]).collect();
        assert_eq!(streams.len(), rows.len(), "SIP/{t}: one SYN per stream");
        let syns: BTreeSet<(SocketAddr, SocketAddr)> = rows
            .iter()
            .map(|r| {
                let a = |ip: &str, port: &str| format!("{ip}:{port}").parse().expect("address");
                (a(&r[1], &r[2]), a(&r[3], &r[4]))
            })
            .collect();
        let recorded: BTreeSet<(SocketAddr, SocketAddr)> = opens(&r.events).into_iter().collect();
        assert_eq!(syns, recorded, "SIP/{t}: SYN directions");
        // SIP over TCP: 1 + 1 + 2 (x to each pf-b) + 3 (pf-b to members) = 7 connections.
        let msrp = recorded.iter().filter(|(_, to)| to.port() == 2855).count();
        assert_eq!(msrp, 8, "SIP/{t}: MSRP links");
        assert_eq!(
            recorded.len() - msrp,
            if t == Transport::Tcp { 7 } else { 0 }
        );
    }
}

// ---------------------------------------------------------------------------------------
// Round trip

/// (e) Reading the written capture gives back the canonical events: the same SIP messages
/// (raw bytes, addresses), TCP openings (opener, target), per-direction byte streams, closes.
#[test]
fn read_back_gives_the_recorded_traffic() {
    for t in BOTH {
        let r = run(t);
        let canon = r.events.clone();
        let cap = read_capture_full(&r.pcap).expect("read back");
        assert!(cap.warnings.is_empty(), "SIP/{t}: {:?}", cap.warnings);
        assert_same_traffic(&format!("SIP/{t}"), &canon, &cap.events);
        // Both ends recorded every byte: the capture holds exactly one copy.
        let sent: Events = r
            .records
            .iter()
            .filter(|x| x.seen == Seen::Sent)
            .chain(r.records.iter().filter(|x| x.seen == Seen::Received))
            .map(|x| (x.t, x.ev.clone()))
            .collect();
        let recorded: usize = streams(&sent).values().map(Vec::len).sum();
        let read: usize = streams(&cap.events).values().map(Vec::len).sum();
        assert_eq!(
            recorded,
            2 * read,
            "SIP/{t}: TCP bytes recorded twice, written once"
        );
        let recorded_sip = sip_events(&sent).len();
        assert_eq!(
            recorded_sip,
            2 * sip_events(&cap.events).len(),
            "SIP/{t}: SIP messages"
        );
    }
}

/// The recorded stream's peculiarities, one by one: both ends' copies are written once;
/// SIP/TCP sent before the connection was up lands on it; a UDP retransmission is kept.
#[test]
fn both_ends_records_are_written_once() {
    let a: SocketAddr = "127.232.0.1:5060".parse().unwrap();
    let a_eph: SocketAddr = "127.232.0.1:40001".parse().unwrap();
    let b: SocketAddr = "127.232.0.2:5060".parse().unwrap();
    let m1: SocketAddr = "127.232.0.1:40002".parse().unwrap();
    let m2: SocketAddr = "127.232.0.2:2855".parse().unwrap();
    let ms = |n: u64| Duration::from_millis(n);
    let inv = Bytes::from_static(b"INVITE sip:b@x SIP/2.0\r\nContent-Length: 0\r\n\r\n");
    let ok = Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    let sip = |tr, from, to, raw: &Bytes| WireEvent::Sip {
        transport: tr,
        from,
        to,
        raw: raw.clone(),
    };
    let data = |from, to, d: &'static [u8]| WireEvent::TcpData {
        from,
        to,
        data: Bytes::from_static(d),
    };
    let open = |o, t| WireEvent::TcpOpen {
        conn: (o, t),
        opener: o,
    };
    let r = |t: u64, seen: Seen, ev: WireEvent| Record { t: ms(t), seen, ev };
    use Seen::{Received as R, Sent as S};
    let records: Vec<Record> = vec![
        // UDP: sender's and receiver's copies, then a retransmission 600 ms later (both ends).
        r(0, S, sip(Transport::Udp, a, b, &inv)),
        r(1, R, sip(Transport::Udp, a, b, &inv)),
        r(600, S, sip(Transport::Udp, a, b, &inv)),
        r(601, R, sip(Transport::Udp, a, b, &inv)),
        // SIP/TCP on its 4-tuple, recorded by both ends.
        r(701, S, open(a_eph, b)),
        r(702, R, open(a_eph, b)),
        r(703, S, sip(Transport::Tcp, a_eph, b, &inv)),
        r(703, R, sip(Transport::Tcp, a_eph, b, &inv)),
        r(704, S, sip(Transport::Tcp, b, a_eph, &ok)),
        r(705, R, sip(Transport::Tcp, b, a_eph, &ok)),
        // A retransmitted 200 (same bytes) is a new message.
        r(1200, S, sip(Transport::Tcp, b, a_eph, &ok)),
        r(1201, R, sip(Transport::Tcp, b, a_eph, &ok)),
        // MSRP: written as 3 pieces, read as 2; FIN recorded by both ends.
        r(800, S, open(m1, m2)),
        r(800, S, data(m1, m2, b"MSRP t1 SEND\r\n")),
        r(800, R, open(m1, m2)),
        r(801, S, data(m1, m2, b"To-Path: x\r\n")),
        r(801, R, data(m1, m2, b"MSRP t1 SEND\r\nTo-")),
        r(802, S, data(m1, m2, b"-------t1$\r\n")),
        r(802, R, data(m1, m2, b"Path: x\r\n-------t1$\r\n")),
        r(803, S, WireEvent::TcpClose { from: m1, to: m2 }),
        r(804, R, WireEvent::TcpClose { from: m1, to: m2 }),
    ];
    let canon = one_copy(&records);
    let s = sip_events(&canon);
    assert_eq!(s.len(), 5, "{s:?}");
    assert_eq!(s[2], (Transport::Tcp, a_eph, b, inv.clone()));
    assert_eq!(s[3], (Transport::Tcp, b, a_eph, ok.clone()));
    assert_eq!(
        s[4],
        (Transport::Tcp, b, a_eph, ok.clone()),
        "retransmitted 200 kept"
    );
    assert_eq!(opens(&canon), vec![(a_eph, b), (m1, m2)]);
    assert_eq!(
        streams(&canon)[&(m1, m2)],
        b"MSRP t1 SEND\r\nTo-Path: x\r\n-------t1$\r\n".to_vec()
    );
    assert_eq!(closes(&canon).len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("unit.pcap");
    write_pcap(
        &p,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        &canon,
    )
    .unwrap();
    let cap = read_capture_full(&p).unwrap();
    assert!(cap.warnings.is_empty(), "{:?}", cap.warnings);
    assert_same_traffic("unit", &canon, &cap.events);
    assert_eq!(cap.start, Some(Duration::from_secs(1_700_000_000)));
}

/// Writes larger than a segment are cut into full-size segments, each acknowledged; the
/// capture is readable while it is being written (each event is flushed).
#[test]
fn large_writes_become_full_size_segments_and_each_event_is_flushed() {
    let c: SocketAddr = "[fd00::1]:40000".parse().unwrap();
    let s: SocketAddr = "[fd00::2]:2855".parse().unwrap();
    let big = Bytes::from(pattern(200_000).to_vec());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.pcap");
    let mut w = PcapWriter::create(&p, SystemTime::now()).unwrap();
    w.write_event(
        Duration::ZERO,
        &WireEvent::TcpOpen {
            conn: (c, s),
            opener: c,
        },
    )
    .unwrap();
    w.write_event(
        Duration::from_millis(1),
        &WireEvent::TcpData {
            from: c,
            to: s,
            data: big.clone(),
        },
    )
    .unwrap();
    // Not finished, not dropped: what is on disk already reads back.
    let partial = read_capture(&p).expect("capture readable mid-write");
    assert_eq!(streams(&partial)[&(c, s)], big.to_vec());
    w.write_event(
        Duration::from_millis(2),
        &WireEvent::TcpData {
            from: s,
            to: c,
            data: big.slice(..70_000),
        },
    )
    .unwrap();
    w.write_event(
        Duration::from_millis(3),
        &WireEvent::TcpClose { from: c, to: s },
    )
    .unwrap();
    w.write_event(
        Duration::from_millis(3),
        &WireEvent::TcpClose { from: s, to: c },
    )
    .unwrap();
    let stats = w.stats();
    w.finish().unwrap();
    // A writer can live in a recorder shared across tasks.
    fn is_send<T: Send>() {}
    is_send::<PcapWriter>();
    // 3 handshake + (4 + 2) segments each with its ACK + 2 × (FIN + ACK).
    assert_eq!(stats.frames, 3 + 12 + 4);
    let sizes = tcp_payload_sizes(&p);
    assert_eq!(sizes.iter().filter(|&&n| n > 0).count(), 6);
    assert!(sizes.iter().all(|&n| n <= MAX_SEGMENT), "{sizes:?}");
    assert_eq!(sizes.iter().filter(|&&n| n == MAX_SEGMENT).count(), 4);
    let back = read_capture(&p).unwrap();
    assert_eq!(streams(&back)[&(s, c)], big[..70_000].to_vec());
    assert_eq!(closes(&back).len(), 2);
    if have("tshark") {
        let bad = common::tshark_fields(
            &p,
            &[
                "-Y",
                "_ws.malformed || tcp.analysis.flags",
                "-e",
                "frame.number",
            ],
        );
        assert!(bad.is_empty(), "{bad:?}");
    }
}

/// The same chain captured by the kernel (dumpcap on lo) reads back as the canonical view of
/// what the harness recorded: this checks the reader against real TCP/IP stacks and the
/// deduplication of both ends' records against the wire. Skipped without dumpcap or without
/// the right to capture.
#[test]
fn kernel_capture_of_a_run_matches_the_recorded_events() {
    use std::io::{BufRead, BufReader};
    if !have("dumpcap") {
        return;
    }
    for (net, t) in [(233, Transport::Tcp), (234, Transport::Udp)] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lo.pcapng");
        let mut child = Command::new("dumpcap")
            .args(["-i", "lo", "-q", "-f"])
            .arg(format!("net 127.{net}.0.0/16"))
            .arg("-w")
            .arg(&file)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start dumpcap");
        // dumpcap says "Capturing on ..." once the capture runs (or why it cannot).
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut said = String::new();
        let mut line = String::new();
        while err.read_line(&mut line).unwrap_or(0) > 0 {
            said.push_str(&line);
            if line.contains("Capturing on") {
                break;
            }
            line.clear();
        }
        if !said.contains("Capturing on") {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("dumpcap cannot capture on lo: {said}");
            common::not_run("needs the right to capture on lo (dumpcap)");
            return;
        }
        // "Capturing on" comes a moment before packets are seen.
        std::thread::sleep(Duration::from_millis(300));
        let events = one_copy(&chain_run(net, t).0);
        // Let the last segments reach the capture, then stop dumpcap cleanly (SIGTERM).
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on the id of a child this test spawned and has not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        let got = read_capture_full(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(got.warnings.is_empty(), "SIP/{t}: {:?}", got.warnings);
        assert_traffic(&format!("kernel SIP/{t}"), &events, &got.events, false);
    }
}

// ---------------------------------------------------------------------------------------
// Reader robustness

/// The frames of a pcap: (timestamp, data).
fn frames(pcap: &Path) -> (PcapHeader, Vec<(Duration, Vec<u8>)>) {
    let mut r = PcapReader::new(std::fs::File::open(pcap).unwrap()).unwrap();
    let h = r.header();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        v.push((p.timestamp, p.data.into_owned()));
    }
    (h, v)
}

fn write_frames(path: &Path, link: DataLink, frames: &[(Duration, Vec<u8>)]) {
    let header = PcapHeader {
        datalink: link,
        snaplen: 262_144,
        ..Default::default()
    };
    let mut w = RawPcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for (ts, d) in frames {
        w.write_packet(&PcapPacket::new(*ts, d.len() as u32, d))
            .unwrap();
    }
}

fn tcp_payload_sizes(pcap: &Path) -> Vec<usize> {
    frames(pcap)
        .1
        .iter()
        .filter_map(
            |(_, f)| match SlicedPacket::from_ethernet(f).ok()?.transport? {
                TransportSlice::Tcp(t) => Some(t.payload().len()),
                _ => None,
            },
        )
        .collect()
}

/// (f) The same capture as pcapng (ours, with nanosecond timestamps, and editcap's), Linux
/// cooked SLL and SLL2, raw IP and BSD null framing reads back to the same events.
#[test]
fn reader_handles_pcapng_cooked_raw_and_null_link_types() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(Transport::Tcp);
    let want = read_capture(&r.pcap).unwrap();
    let (_, eth) = frames(&r.pcap);
    let variants: [(&str, DataLink, Reframe); 4] = [
        ("sll", DataLink::LINUX_SLL, to_sll),
        ("sll2", DataLink::LINUX_SLL2, to_sll2),
        ("raw", DataLink::RAW, |f| f[14..].to_vec()),
        ("null", DataLink::NULL, to_null),
    ];
    for (name, link, conv) in &variants {
        let p = tmp.path().join(format!("conv-{name}.pcap"));
        let conv_frames: Vec<_> = eth.iter().map(|(ts, f)| (*ts, conv(f))).collect();
        write_frames(&p, *link, &conv_frames);
        let got = read_capture(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_same_traffic(name, &want, &got);
    }

    // pcapng written here, nanosecond resolution (if_tsresol = 9).
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    let png = tmp.path().join("ours.pcapng");
    let mut w = PcapNgWriter::new(std::fs::File::create(&png).unwrap()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 262_144,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    })
    .unwrap();
    for (ts, f) in &eth {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: *ts,
            original_len: f.len() as u32,
            data: f.as_slice().into(),
            options: vec![],
        })
        .unwrap();
    }
    drop(w);
    let got = read_capture_full(&png).unwrap();
    assert_same_traffic("pcapng", &want, &got.events);
    assert_eq!(got.start, Some(eth[0].0), "if_tsresol applied");
    assert_eq!(got.events.last().map(|e| e.0), want.last().map(|e| e.0));

    if have("editcap") {
        let png = tmp.path().join("editcap.pcapng");
        let ok = Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(&r.pcap)
            .arg(&png)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "editcap -F pcapng failed");
        let got = read_capture_full(&png).unwrap();
        assert_same_traffic("editcap pcapng", &want, &got.events);
        assert_eq!(
            got.start,
            Some(Duration::from_micros(eth[0].0.as_micros() as u64))
        );
    }
}

// Ethernet II is dst MAC, src MAC, ethertype, then the IP packet.

/// Turns an Ethernet frame into another link type's frame.
type Reframe = fn(&[u8]) -> Vec<u8>;

/// Linux cooked v1 as `tcpdump -i any` writes it for lo: packet type, ARPHRD_LOOPBACK,
/// address length, address (8), protocol.
fn to_sll(f: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x03, 0x04, 0, 6];
    v.extend_from_slice(&f[6..12]);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&f[12..]);
    v
}

/// Linux cooked v2: protocol, reserved, interface index, ARPHRD_ETHER, packet type,
/// address length, address (8).
fn to_sll2(f: &[u8]) -> Vec<u8> {
    let mut v = f[12..14].to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6]);
    v.extend_from_slice(&f[6..12]);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&f[14..]);
    v
}

/// BSD loopback: the address family in host order (AF_INET = 2), then the IP packet.
fn to_null(f: &[u8]) -> Vec<u8> {
    let mut v = 2u32.to_ne_bytes().to_vec();
    v.extend_from_slice(&f[14..]);
    v
}

/// (f) Swapped, duplicated and partly overlapping TCP segments give the same streams.
#[test]
fn reader_reorders_and_deduplicates_tcp_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(Transport::Tcp);
    let want = read_capture(&r.pcap).unwrap();
    let (_, mut f) = frames(&r.pcap);
    // Data frames, by direction.
    let mut by_dir: BTreeMap<(SocketAddr, SocketAddr), Vec<usize>> = BTreeMap::new();
    for (i, (_, d)) in f.iter().enumerate() {
        if let Some(seg) = tcp_seg(d) {
            if !seg.payload.is_empty() {
                by_dir.entry((seg.from, seg.to)).or_default().push(i);
            }
        }
    }
    // Insertions (position, frame), applied from the back so positions stay valid.
    let mut extra = Vec::new();
    let mut swapped = 0;
    for idx in by_dir.values() {
        for (k, w) in idx.windows(2).enumerate() {
            // A segment covering the second half of one and the first half of the next,
            // sent before both.
            if k % 7 == 3 {
                if let Some(o) = overlap(&f[w[0]].1, &f[w[1]].1) {
                    extra.push((w[0], (f[w[0]].0, o)));
                }
            }
            // The same segment again, a little later.
            if k % 5 == 2 {
                extra.push((w[1] + 2, f[w[0]].clone()));
            }
        }
        // Swap every other pair of consecutive data frames of a direction.
        for pair in idx.chunks(4) {
            if let [a, b, ..] = pair {
                f.swap(*a, *b);
                swapped += 1;
            }
        }
    }
    assert!(
        swapped > 50 && extra.len() > 50,
        "{swapped} swaps, {} extra",
        extra.len()
    );
    extra.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    for (at, fr) in extra {
        f.insert(at.min(f.len()), fr);
    }
    let p = tmp.path().join("shuffled.pcap");
    write_frames(&p, DataLink::ETHERNET, &f);
    let got = read_capture_full(&p).unwrap();
    assert!(got.warnings.is_empty(), "{:?}", got.warnings);
    // Events come when the segment filling a hole arrives: same traffic, another order.
    assert_traffic("shuffled", &want, &got.events, false);
    if have("tshark") {
        let flagged = common::tshark_fields(
            &p,
            &[
                "-Y",
                "tcp.analysis.out_of_order || tcp.analysis.retransmission",
                "-e",
                "frame.number",
            ],
        );
        assert!(
            flagged.len() > 50,
            "the capture is really shuffled ({} flagged)",
            flagged.len()
        );
    }
}

/// A TCP segment as sliced from an Ethernet frame.
struct Seg {
    macs: ([u8; 6], [u8; 6]),
    from: SocketAddr,
    to: SocketAddr,
    seq: u32,
    ack: u32,
    payload: Vec<u8>,
}

fn tcp_seg(frame: &[u8]) -> Option<Seg> {
    let s = SlicedPacket::from_ethernet(frame).ok()?;
    let macs = match s.link? {
        etherparse::LinkSlice::Ethernet2(e) => (e.source(), e.destination()),
        _ => return None,
    };
    let (src, dst) = match s.net? {
        NetSlice::Ipv4(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Ipv6(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        _ => return None,
    };
    match s.transport? {
        TransportSlice::Tcp(t) => Some(Seg {
            macs,
            from: SocketAddr::new(src, t.source_port()),
            to: SocketAddr::new(dst, t.destination_port()),
            seq: t.sequence_number(),
            ack: t.acknowledgment_number(),
            payload: t.payload().to_vec(),
        }),
        _ => None,
    }
}

/// A frame carrying the second half of `a`'s payload and the first half of `b`'s, when `b`
/// follows `a` directly in sequence space.
fn overlap(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let (a, b) = (tcp_seg(a)?, tcp_seg(b)?);
    if a.seq.wrapping_add(a.payload.len() as u32) != b.seq || a.payload.len() < 2 {
        return None;
    }
    let half = a.payload.len() / 2;
    let mut payload = a.payload[half..].to_vec();
    payload.extend_from_slice(&b.payload[..b.payload.len() / 2]);
    let (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) = (a.from.ip(), a.to.ip()) else {
        return None;
    };
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(a.macs.0, a.macs.1)
        .ipv4(s.octets(), d.octets(), 64)
        .tcp(
            a.from.port(),
            a.to.port(),
            a.seq.wrapping_add(half as u32),
            65535,
        )
        .ack(a.ack)
        .write(&mut out, &payload)
        .ok()?;
    Some(out)
}

/// (f) A SIP datagram fragmented by IPv4 (fragments out of order) reads as one message.
#[test]
fn reader_reassembles_a_fragmented_sip_datagram() {
    use etherparse::{
        EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, PacketBuilder,
    };
    let body = "x".repeat(3000);
    let sip = format!(
        "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
         From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: frag@test\r\n\
         CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut whole = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(5060, 5060)
        .write(&mut whole, sip.as_bytes())
        .unwrap();
    let ip_payload = &whole[20..];
    let eth = Ethernet2Header {
        source: [2, 0, 0, 0, 0, 1],
        destination: [2, 0, 0, 0, 0, 2],
        ether_type: EtherType::IPV4,
    };
    let mut frags = Vec::new();
    for (k, chunk) in ip_payload.chunks(1480).enumerate() {
        let mut h = Ipv4Header::new(chunk.len() as u16, 64, IpNumber::UDP, src, dst).unwrap();
        h.identification = 0x4242;
        h.more_fragments = (k + 1) * 1480 < ip_payload.len();
        h.fragment_offset = IpFragOffset::try_new((k * 1480 / 8) as u16).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut f = eth.to_bytes().to_vec();
        f.extend_from_slice(&h.to_bytes());
        f.extend_from_slice(chunk);
        frags.push(f);
    }
    assert_eq!(frags.len(), 3);
    let t0 = Duration::from_secs(1_700_000_000);
    let order = [2, 0, 1];
    let frames: Vec<_> = order
        .iter()
        .enumerate()
        .map(|(i, &k)| (t0 + Duration::from_millis(i as u64), frags[k].clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("frag.pcap");
    write_frames(&p, DataLink::ETHERNET, &frames);
    let got = read_capture(&p).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let (
        t,
        WireEvent::Sip {
            transport,
            from,
            to,
            raw,
        },
    ) = &got[0]
    else {
        panic!("{got:?}");
    };
    assert_eq!(
        *t,
        Duration::from_millis(2),
        "stamped when the last fragment arrived"
    );
    assert_eq!(*transport, Transport::Udp);
    assert_eq!(
        (*from, *to),
        (
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.0.2:5060".parse().unwrap()
        )
    );
    assert_eq!(raw.as_ref(), sip.as_bytes());
    SipMessage::parse(raw).expect("reassembled SIP parses");
}

/// (g) A capture stopped mid-write (its last record cut short, pcap and pcapng) is read up to
/// its last complete packet with a warning naming the cut record, as tshark does; garbage and
/// empty files are errors that name the file.
#[test]
fn bad_files_are_errors_naming_the_file_and_packet() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(Transport::Udp);
    let bytes = std::fs::read(&r.pcap).unwrap();
    let n_frames = frames(&r.pcap).1.len() as u64;
    let whole = read_capture_full(&r.pcap).expect("whole capture");
    let p = tmp.path().join("truncated.pcap");
    std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
    let cut = read_capture_full(&p).expect("a cut capture is read up to its last packet");
    assert_eq!(cut.packets, n_frames - 1);
    assert!(
        cut.warnings
            .iter()
            .any(|w| w.contains(&format!("packet {n_frames}: truncated"))),
        "{:?}",
        cut.warnings
    );
    assert!(!cut.events.is_empty() && cut.events.len() <= whole.events.len());
    assert_eq!(
        cut.events[..cut.events.len() - 1],
        whole.events[..cut.events.len() - 1]
    );
    // The same for pcapng.
    let (_, eth) = frames(&r.pcap);
    let png = {
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
        let mut w = pcap_file::pcapng::PcapNgWriter::new(Vec::new()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![],
        })
        .unwrap();
        for (ts, f) in &eth {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: *ts,
                original_len: f.len() as u32,
                data: f.as_slice().into(),
                options: vec![],
            })
            .unwrap();
        }
        w.into_inner()
    };
    let cut = read_capture_from(Path::new("cut.pcapng"), &png[..png.len() - 7])
        .expect("a cut pcapng is read up to its last block");
    assert_eq!(cut.packets, eth.len() as u64 - 1);
    assert!(
        cut.warnings.iter().any(|w| w.contains("truncated")),
        "{:?}",
        cut.warnings
    );
    let cases: [(&str, &[u8]); 4] = [
        ("garbage.pcap", b"this is not a capture at all, just text\n"),
        ("empty.pcap", b""),
        ("short.pcap", &bytes[..20]),
        ("header-only.pcapng", &[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0]),
    ];
    for (name, content) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, content).unwrap();
        let e = read_capture(&p).expect_err(name);
        assert!(e.to_string().contains(name), "{name}: {e}");
        assert_eq!(e.path(), p);
    }
    let e = read_capture(&tmp.path().join("missing.pcap")).unwrap_err();
    assert!(
        matches!(e, CaptureError::Io { .. }) && e.to_string().contains("missing.pcap"),
        "{e}"
    );
}

/// (g) Thousands of corrupted captures (pcap and pcapng; flipped bytes, cut files) give an
/// event list or an error, never a panic.
#[test]
fn corrupted_captures_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(Transport::Tcp);
    let (_, eth) = frames(&r.pcap);
    let small: Vec<_> = eth.iter().take(120).cloned().collect();
    let p = tmp.path().join("small.pcap");
    write_frames(&p, DataLink::ETHERNET, &small);
    let pcap = std::fs::read(&p).unwrap();
    let png = {
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
        let mut w = pcap_file::pcapng::PcapNgWriter::new(Vec::new()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![],
        })
        .unwrap();
        for (ts, f) in &small {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: *ts,
                original_len: f.len() as u32,
                data: f.as_slice().into(),
                options: vec![],
            })
            .unwrap();
        }
        w.into_inner()
    };
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut ok, mut err) = (0, 0);
    for base in [&pcap, &png] {
        for round in 0..400 {
            let mut b = base.to_vec();
            for _ in 0..(1 + rnd() % 8) {
                // Mostly in headers (the first bytes of records) where lengths live.
                let i = if round % 2 == 0 {
                    rnd() as usize % 200
                } else {
                    rnd() as usize % b.len()
                };
                b[i] ^= 1 << (rnd() % 8);
            }
            if round % 3 == 0 {
                b.truncate(rnd() as usize % b.len());
            }
            match read_capture_from(Path::new("fuzz.pcap"), b.as_slice()) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(e.to_string().starts_with("fuzz.pcap: "), "{e}");
                    err += 1
                }
            }
        }
    }
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

/// A run keeps each finished capture gzip-compressed (`<case>.pcap.gz`; a quarter of the size
/// for the default run's cases): it reads back to the same events, tshark reads it as it is, and a compressed file
/// inside a compressed file is refused rather than unwrapped again.
#[test]
fn a_compressed_capture_reads_back_the_same() {
    use cpm_harness::capture::write::gzip_in_place;
    let r = run(Transport::Tcp);
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("case.pcap");
    std::fs::copy(&r.pcap, &p).unwrap();
    let size = std::fs::metadata(&p).unwrap().len();
    let gz = gzip_in_place(&p).unwrap().expect("compressed");
    assert_eq!(gz, tmp.path().join("case.pcap.gz"));
    assert!(!p.exists(), "the uncompressed file is removed");
    let small = std::fs::metadata(&gz).unwrap().len();
    assert!(small < size, "{small} of {size} bytes");
    assert_eq!(read_capture(&gz).unwrap(), read_capture(&r.pcap).unwrap());
    assert_eq!(gzip_in_place(&p).unwrap(), None, "nothing to compress");
    // Twice compressed: not a capture.
    let twice = tmp.path().join("twice.pcap");
    std::fs::copy(&gz, &twice).unwrap();
    let twice = gzip_in_place(&twice).unwrap().unwrap();
    let e = read_capture(&twice).unwrap_err().to_string();
    assert!(e.contains("a gzip stream inside a gzip stream"), "{e}");
    if have("tshark") {
        let rows = common::tshark_fields(&gz, &["-e", "frame.number"]);
        let plain = common::tshark_fields(&r.pcap, &["-e", "frame.number"]);
        assert_eq!(rows, plain);
    }
}
