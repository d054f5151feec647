//! Helpers shared by the tests that drive third-party programs (Kamailio, SIPp, dumpcap).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A program on PATH or in /usr/sbin (root's tools). Under CI the program is required:
/// `.ci/run` installs it, so its absence is a failure there, not a skip.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = require_tool_quiet(name);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed; .ci/run installs it"
        );
        eprintln!("skipped: {name} is not installed");
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
    /// `None` (a skip, or a failure under CI) when neither tool is installed.
    pub async fn start(path: &Path, filter: &str) -> Option<RealCapture> {
        let (tool, args): (PathBuf, Vec<String>) = if let Some(d) = require_tool_quiet("dumpcap") {
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
            let t = require_tool("tcpdump")?;
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

fn require_tool_quiet(name: &str) -> Option<PathBuf> {
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
