//! The reference chain with each role in its own `cpm-harness sut` process, over real
//! loopback sockets: every figure × SIP over UDP and TCP delivers 1 MiB byte-exact to 3
//! members on 2 pf-b and every process exits 0 after a clean teardown.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

use cpm_harness::chain::{pattern, sha256_hex};
use cpm_harness::topology::Topology;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

/// Kills the child on drop so a failing test never leaves processes behind.
struct Proc(Child, String);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[String], role: &str) -> (Proc, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cpm-harness");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining after the receiver is gone so the child never sees a broken pipe.
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Proc(child, role.to_string()), rx)
}

fn wait_exit(p: &mut Proc, timeout: Duration) -> (i32, String) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(st) = p.0.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = p.0.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (st.code().unwrap_or(-1), err);
        }
        if std::time::Instant::now() > deadline {
            panic!("{} did not exit within {timeout:?}", p.1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_split(net: u8, figure: u8, transport: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let topo = Topology::generate(net, 3, 2, 5060, 2855);
    let topo_path = dir.path().join("topology.yaml");
    std::fs::write(&topo_path, topo.to_yaml()).unwrap();
    let out_dir = dir.path().join("out");
    let size = 1 << 20;
    let common = |roles: &str| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "sut".into(),
            "--topology".into(),
            topo_path.display().to_string(),
            "--roles".into(),
            roles.into(),
            "--figure".into(),
            figure.to_string(),
            "--transport".into(),
            transport.into(),
            "--messages".into(),
            "1".into(),
            "--timeout".into(),
            "30".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let mut procs = Vec::new();
    for role in ["client-b", "pf-b", "x", "pf-a"] {
        let mut args = common(role);
        if role == "client-b" {
            args.extend(["--out-dir".into(), out_dir.display().to_string()]);
        }
        let (p, rx) = spawn(&args, role);
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{role} never became ready"));
        assert!(line.starts_with("ready"), "{role}: {line}");
        procs.push(p);
    }
    let mut args = common("client-a");
    args.extend(["--send-bytes".into(), size.to_string()]);
    let (p, _rx) = spawn(&args, "client-a");
    procs.push(p);
    for p in procs.iter_mut().rev() {
        let (code, err) = wait_exit(p, Duration::from_secs(40));
        assert_eq!(
            code, 0,
            "F{figure}/{transport}: {} exited {code}: {err}",
            p.1
        );
    }
    let want = sha256_hex(&pattern(size));
    for m in &topo.members {
        let got =
            std::fs::read(out_dir.join(&m.name)).unwrap_or_else(|e| panic!("{}: {e}", m.name));
        assert_eq!(
            sha256_hex(&got),
            want,
            "F{figure}/{transport}: {} content differs",
            m.name
        );
    }
}

macro_rules! split_tests {
    ($($name:ident: $fig:expr, $t:expr, $net:expr;)*) => {$(
        #[test]
        fn $name() {
            run_split($net, $fig, $t, &[]);
        }
    )*};
}

split_tests! {
    fig1_udp: 1, "udp", 61;
    fig1_tcp: 1, "tcp", 62;
    fig2_udp: 2, "udp", 63;
    fig2_tcp: 2, "tcp", 64;
    fig3_udp: 3, "udp", 65;
    fig3_tcp: 3, "tcp", 66;
    fig4_udp: 4, "udp", 67;
    fig4_tcp: 4, "tcp", 68;
    fig5_udp: 5, "udp", 69;
    fig5_tcp: 5, "tcp", 70;
    fig6_udp: 6, "udp", 71;
    fig6_tcp: 6, "tcp", 72;
    fig7_udp: 7, "udp", 73;
    fig7_tcp: 7, "tcp", 74;
}

#[test]
fn adhoc_reuse_preset_across_processes() {
    run_split(
        75,
        2,
        "tcp",
        &["--group", "adhoc", "--reuse", "--setup", "preset"],
    );
}

#[test]
fn bad_role_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["sut", "--figure", "1", "--roles", "pfa"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown role \"pfa\""), "{err}");
}

/// A sut whose session cannot complete (no peers at all) exits non-zero with the reason,
/// within its --timeout, instead of hanging or claiming success.
#[test]
fn a_failed_session_is_a_non_zero_exit_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let topo = Topology::generate(76, 1, 1, 5060, 2855);
    let path = dir.path().join("topology.yaml");
    std::fs::write(&path, topo.to_yaml()).unwrap();
    let start = std::time::Instant::now();
    let out = Command::new(BIN)
        .args([
            "sut",
            "--figure",
            "1",
            "--roles",
            "client-a",
            "--send-bytes",
            "5000",
            "--timeout",
            "2",
            "--topology",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timed out") || err.contains("failed"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
}

/// A long-running sut writes a warning about a peer's bad input when it happens, not at exit
/// (issue 15): garbage sent to its SIP port shows on stderr while it keeps serving.
#[test]
fn warnings_are_written_when_they_happen() {
    let dir = tempfile::tempdir().unwrap();
    let topo = Topology::generate(77, 1, 1, 5060, 2855);
    let path = dir.path().join("topology.yaml");
    std::fs::write(&path, topo.to_yaml()).unwrap();
    let mut child = Command::new(BIN)
        .args(["sut", "--figure", "1", "--roles", "pf-a", "--topology"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cpm-harness");
    let _stdin = child.stdin.take();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let mut p = Proc(child, "pf-a".into());
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(format!("out: {line}"));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(format!("err: {line}"));
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(10)).expect("ready");
    assert!(ready.starts_with("out: ready"), "{ready}");
    let sock = std::net::UdpSocket::bind("127.77.0.200:0").unwrap();
    sock.send_to(b"\x00\x01 this is not SIP\r\n\r\n", topo.pf_a.sip)
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with("err: warning:") && l.contains("unparseable") => break,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no warning on stderr while running; saw {seen:?}"),
        }
    }
    // Still running: the warning did not wait for the exit.
    assert!(p.0.try_wait().unwrap().is_none());
    let _ = p.0.kill();
}
