//! Helpers shared by the tests that drive third-party programs (Kamailio, SIPp, dumpcap,
//! tshark, xmllint, Chromium), and the record of the tests that could not run in full.
#![allow(dead_code)]

use cpm_harness::capture::write::MAX_SEGMENT;
use cpm_harness::codec::msrp::{Limits as MsrpLimits, MsrpEvent, MsrpParser};
use cpm_harness::trace::WireEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Whether this is CI (`CI` set, not empty and not `false`): `.ci/run` installs every tool
/// the tests use, so there a missing tool fails the test instead of skipping it.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// Where tests that could not run in full record themselves: `$CPM_NOT_RUN_DIR` (set by
/// `scripts/test`), else `target/not-run/`.
pub fn not_run_dir() -> PathBuf {
    match std::env::var_os("CPM_NOT_RUN_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap_or(Path::new("target"))
            .join("not-run"),
    }
}

/// The running test's name, `<test file>::<test>` (libtest names each test's thread after
/// the test).
pub fn current_test() -> String {
    let t = std::thread::current();
    format!(
        "{}::{}",
        env!("CARGO_CRATE_NAME"),
        t.name().unwrap_or("unknown test")
    )
}

/// Records in `dir` that `test` did not run in full because it `needs` something missing
/// (one file per test and need; `scripts/test` lists them in its closing summary).
pub fn record_not_run_in(dir: &Path, test: &str, needs: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let file = dir.join(format!("{}--{}", safe(test), safe(needs)));
    std::fs::write(&file, format!("{test}\t{needs}\n"))?;
    Ok(file)
}

/// The running test cannot run (in full) because it `needs` something missing, such as
/// `needs chromium`: under CI a failure; elsewhere it says so on stderr and records itself
/// for `scripts/test`'s summary, and the caller returns (or skips the part).
pub fn not_run(needs: &str) {
    let test = current_test();
    // Recorded first, so that under CI the summary names it too.
    if let Err(e) = record_not_run_in(&not_run_dir(), &test, needs) {
        eprintln!("cannot record it in {}: {e}", not_run_dir().display());
    }
    assert!(
        !ci(),
        "{test} {needs}, and CI requires it (.ci/run installs it)"
    );
    eprintln!("NOT RUN: {test} {needs}");
}

/// A program on PATH or in /usr/sbin (root's tools). When it is missing, the test does not
/// run (in full): see [`not_run`] (a failure under CI, where `.ci/run` installs it).
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = find_tool(name);
    if found.is_none() {
        not_run(&format!("needs {name}"));
    }
    found
}

/// A real packet capture of loopback traffic (dumpcap, else tcpdump) into a pcap file.
pub struct RealCapture {
    child: Child,
    pub path: PathBuf,
    pub tool: String,
}

impl RealCapture {
    /// Starts capturing `lo` with a BPF filter; returns once the tool says it is capturing.
    /// `None` (not run, or a failure under CI) when neither tool is installed.
    pub async fn start(path: &Path, filter: &str) -> Option<RealCapture> {
        let (tool, args): (PathBuf, Vec<String>) = if let Some(d) = find_tool("dumpcap") {
            (
                d,
                vec![
                    "-i".into(),
                    "lo".into(),
                    "-P".into(),
                    "-f".into(),
                    filter.into(),
                    "-w".into(),
                    path.display().to_string(),
                ],
            )
        } else {
            let Some(t) = find_tool("tcpdump") else {
                not_run("needs dumpcap or tcpdump");
                return None;
            };
            (
                t,
                vec![
                    "-i".into(),
                    "lo".into(),
                    "-U".into(),
                    "-s".into(),
                    "0".into(),
                    "-w".into(),
                    path.display().to_string(),
                    filter.into(),
                ],
            )
        };
        let mut child = Command::new(&tool)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
        // Both print a line to stderr once the capture is open.
        let err = child.stderr.take().unwrap();
        let mut lines = BufReader::new(err).lines();
        let mut seen = Vec::new();
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(l)) = lines.next_line().await {
                let hit = l.contains("Capturing on") || l.contains("listening on");
                seen.push(l);
                if hit {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "{} did not start capturing: {seen:?}",
            tool.display()
        );
        // Keep draining stderr so the tool never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // The filter is compiled and attached before the message; a moment for the ring.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some(RealCapture {
            child,
            path: path.to_path_buf(),
            tool: tool.display().to_string(),
        })
    }

    /// Stops the capture (SIGINT, so the tool flushes and closes the file).
    pub async fn stop(mut self) {
        // Let the last packets reach the capture buffer.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) sends a signal to our own child; no memory is touched.
            unsafe {
                libc::kill(pid as i32, libc::SIGINT);
            }
        }
        let done = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        assert!(done.is_ok(), "{} did not stop", self.tool);
    }
}

/// A program on PATH or in /usr/sbin, without recording anything when it is missing.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .or_else(|| {
            let p = Path::new("/usr/sbin").join(name);
            p.is_file().then_some(p)
        })
}

/// Every MSRP head in the canonical TCP streams as a tshark row (tid, method, status,
/// To-Path, From-Path, Byte-Range), and the tids of the heads that start a segment.
pub fn msrp_heads(
    canon: &[(Duration, WireEvent)],
) -> (BTreeMap<String, Vec<String>>, BTreeSet<String>) {
    let mut parsers: BTreeMap<(SocketAddr, SocketAddr), MsrpParser> = BTreeMap::new();
    let (mut all, mut starts) = (BTreeMap::new(), BTreeSet::new());
    for (_, e) in canon {
        let WireEvent::TcpData { from, to, data } = e else {
            continue;
        };
        let p = parsers
            .entry((*from, *to))
            .or_insert_with(|| MsrpParser::new(MsrpLimits::default()));
        // The writer cuts each data event into segments of at most MAX_SEGMENT bytes.
        for seg in data.chunks(MAX_SEGMENT) {
            let fresh = p.is_idle();
            p.push(seg);
            let mut first = true;
            while let Some(ev) = p.next().expect("recorded MSRP parses") {
                if let MsrpEvent::Head(h) = ev {
                    let h_ = |n: &str| h.header(n).unwrap_or_default().to_owned();
                    let row = vec![
                        h.tid.clone(),
                        h.method().unwrap_or_default().to_owned(),
                        h.code().map(|c| c.to_string()).unwrap_or_default(),
                        h_("To-Path"),
                        h_("From-Path"),
                        h_("Byte-Range"),
                    ];
                    if fresh && first {
                        starts.insert(h.tid.clone());
                    }
                    all.insert(h.tid.clone(), row);
                    first = false;
                }
            }
        }
    }
    (all, starts)
}

/// The times of the observed ladder's rows, top to bottom, as drawn on the page.
pub fn drawn_times(page: &str) -> Vec<f64> {
    let from = page
        .find("<svg class=\"ladder observed\"")
        .expect("an observed ladder");
    let svg = &page[from..from + page[from..].find("</svg>").unwrap()];
    svg.split("<text class=\"t\" x=\"4\" y=\"")
        .skip(1)
        .map(|t| {
            let t = &t[t.find('>').unwrap() + 1..];
            t[..t.find('<').unwrap()].parse().unwrap()
        })
        .collect()
}

/// tshark's `-T fields` output, one row per frame, fields split on tabs.
pub fn tshark_fields(pcap: &Path, args: &[&str]) -> Vec<Vec<String>> {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-T", "fields"])
        // Heuristics first: MSRP has no port of its own, and a kernel-chosen port of the
        // harness (57000 is IRC's) would otherwise pick another port-based dissector.
        .args(["-o", "tcp.try_heuristic_first:TRUE"])
        .args(args)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Per SDP body of `msgs`, in order, what tshark's `sdp` dissector shows of it (`-E
/// occurrence=a -E aggregator=|`): the c= address type and address (the media's, else the
/// session's), the m= port, and every media attribute (a=path among them) joined by `|`.
pub fn sdp_fields(msgs: &[cpm_harness::codec::sip::SipMessage]) -> Vec<[String; 4]> {
    msgs.iter()
        .filter_map(|m| m.sdp_body())
        .map(|body| {
            let sdp = cpm_harness::codec::sdp::Sdp::parse(&body).expect("recorded SDP parses");
            let m = &sdp.media[0];
            let c = m
                .connection
                .as_ref()
                .or(sdp.connection.as_ref())
                .expect("c=");
            let attrs: Vec<String> = m
                .attributes
                .iter()
                .map(|(n, v)| match v {
                    Some(v) => format!("{n}:{v}"),
                    None => n.clone(),
                })
                .collect();
            [
                c.addr_type.clone(),
                c.address.clone(),
                m.port.to_string(),
                attrs.join("|"),
            ]
        })
        .collect()
}
