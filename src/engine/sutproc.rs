//! A SUT launched as a separate process: started in its own process group, waited on for
//! readiness (a stdout line or an open port) with a timeout, driven through stdin, and always
//! stopped — the whole group, with SIGTERM then SIGKILL — when dropped, on failure and on
//! Ctrl-C alike.

use crate::clock;
use anyhow::{anyhow, bail};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How the OS words EADDRINUSE in a SUT's error output (Rust's `io::Error`, glibc's strerror).
const ADDR_IN_USE: &str = "Address already in use";

/// How to tell the SUT is ready.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// A stdout line starting with this text.
    StdoutLine(String),
    /// A TCP port accepting connections (or, for UDP-only SUTs, just a delay).
    Port(SocketAddr),
    /// Nothing to wait for.
    None,
}

/// A running SUT process (group).
pub struct SutProcess {
    child: Child,
    pgid: Option<i32>,
    stdin: Option<ChildStdin>,
    /// Lines the SUT printed (stdout and stderr), for evidence.
    lines: mpsc::UnboundedReceiver<String>,
    pub log: Vec<String>,
    argv: Vec<String>,
}

impl SutProcess {
    /// Starts `argv` in a new process group and waits for readiness.
    pub async fn launch(
        argv: &[String],
        ready: &Readiness,
        timeout: Duration,
    ) -> anyhow::Result<SutProcess> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| anyhow!("empty launch command"))?;
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            // The cause first: a long command line must not push it out of sight.
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound if !prog.contains('/') => {
                    " (looked up in PATH; the command runs without a shell)"
                }
                std::io::ErrorKind::PermissionDenied => " (is it executable?)",
                _ => "",
            };
            anyhow!(
                "cannot start the SUT {prog:?}: {e}{hint}\n{}",
                command_line(argv)
            )
        })?;
        let pgid = child.id().map(|p| p as i32);
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let _ = tx.send(l);
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let _ = tx.send(format!("stderr: {l}"));
                }
            });
        }
        let stdin = child.stdin.take();
        let mut p = SutProcess {
            child,
            pgid,
            stdin,
            lines: rx,
            log: Vec::new(),
            argv: argv.to_vec(),
        };
        let deadline = clock::tokio_now() + timeout;
        match ready {
            Readiness::None => {}
            Readiness::StdoutLine(prefix) => loop {
                match tokio::time::timeout_at(deadline, p.lines.recv()).await {
                    Ok(Some(l)) => {
                        let hit = l.starts_with(prefix.as_str());
                        p.log.push(l);
                        if hit {
                            break;
                        }
                    }
                    Ok(None) => {
                        let status = p.child.wait().await.ok();
                        let e = anyhow!(
                            "the SUT exited before it was ready ({}){}\n{}",
                            status
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "exit status unknown".into()),
                            last_output(&p.log),
                            command_line(argv)
                        );
                        // A SUT that could not bind an address of its case says so in the
                        // OS's words: an address in use, as the harness's own probe would
                        // have found had it been taken a moment earlier (the runner then
                        // runs the case on another lab net).
                        if p.log.iter().any(|l| l.contains(ADDR_IN_USE)) {
                            return Err(anyhow::Error::new(std::io::Error::from(
                                std::io::ErrorKind::AddrInUse,
                            ))
                            .context(e));
                        }
                        return Err(e);
                    }
                    Err(_) => bail!(
                        "the SUT printed no line starting with {prefix:?} within {timeout:?}{}\n{}",
                        last_output(&p.log),
                        command_line(argv)
                    ),
                }
            },
            Readiness::Port(addr) => {
                loop {
                    if tokio::net::TcpStream::connect(addr).await.is_ok() {
                        break;
                    }
                    if let Ok(Some(status)) = p.child.try_wait() {
                        // Give the output readers a moment to deliver the last lines.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let log = last_output(p.drain_log());
                        bail!(
                            "the process exited before it opened {addr} ({status}){log}\n{}",
                            command_line(argv)
                        );
                    }
                    if clock::tokio_now() >= deadline {
                        let log = last_output(p.drain_log());
                        bail!(
                            "the SUT did not open {addr} within {timeout:?}{log}\n{}",
                            command_line(argv)
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        Ok(p)
    }

    /// Writes one line to the SUT's stdin (the reference SUT's `send N`).
    pub async fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("the SUT's stdin is closed"))?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Waits for the process to exit by itself; returns its exit code (`None` on timeout or
    /// a signal).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(st)) => st.code(),
            _ => None,
        }
    }

    /// The exit status, once the process has exited (a SUT that dies mid-run).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Collects what the SUT printed so far.
    pub fn drain_log(&mut self) -> &[String] {
        while let Ok(l) = self.lines.try_recv() {
            self.log.push(l);
        }
        &self.log
    }

    pub fn command_line(&self) -> String {
        self.argv.join(" ")
    }

    /// SIGTERM to the group, then SIGKILL after a grace period.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(pg) = self.pgid {
            signal_group(pg, libc_sig::SIGTERM);
            if tokio::time::timeout(grace, self.child.wait())
                .await
                .is_err()
            {
                signal_group(pg, libc_sig::SIGKILL);
                let _ = self.child.wait().await;
            }
            self.pgid = None;
        }
    }
}

impl Drop for SutProcess {
    fn drop(&mut self) {
        if let Some(pg) = self.pgid.take() {
            signal_group(pg, libc_sig::SIGKILL);
        }
    }
}

/// Lines of output kept in a launch error.
const TAIL: usize = 10;

/// `; its last output:` and the last [`TAIL`] lines the SUT printed (stderr lines marked), or
/// `; it printed nothing`.
fn last_output(log: &[String]) -> String {
    if log.is_empty() {
        return "; it printed nothing".into();
    }
    let skip = log.len().saturating_sub(TAIL);
    let mut s = format!(
        "; its last output{}:",
        if skip > 0 {
            format!(" ({} of {} lines)", TAIL, log.len())
        } else {
            String::new()
        }
    );
    for l in &log[skip..] {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}

/// The launch command as run, for the error's last line (a word with spaces quoted as the
/// profile would write it).
fn command_line(argv: &[String]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|w| {
            if w.is_empty() || w.chars().any(char::is_whitespace) {
                if w.contains('\'') {
                    format!("\"{w}\"")
                } else {
                    format!("'{w}'")
                }
            } else {
                w.clone()
            }
        })
        .collect();
    format!("command (run without a shell): {}", words.join(" "))
}

mod libc_sig {
    pub const SIGTERM: i32 = libc::SIGTERM;
    pub const SIGKILL: i32 = libc::SIGKILL;
}

/// Signals a whole process group (the SUT and anything it started).
fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid only sends a signal; no memory is touched.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}
