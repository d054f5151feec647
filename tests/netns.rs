//! The layout a vendor really has: the SUT in its own network namespace (a stand-in for its
//! container or host) behind a veth pair, addresses from the documentation range
//! 198.51.100.0/24 that exist only on that veth pair (created and removed by the test): the
//! SUT 198.51.100.2 inside the namespace, the harness 198.51.100.1 on the root end. The
//! reference SUT (`cpm-harness sut --variant per-call`, launched through `ip netns exec`) is
//! started once; the harness runs a few cases against it; `tcpdump` on the SUT's end of the
//! veth records each case, and `cpm-harness analyze` of that capture (with the run's topology)
//! gives every check the verdict that the analysis of the harness's own capture of the same
//! case gives, and the live run gave.
//!
//! It needs root, `ip` (iproute2) and `tcpdump`: it is `#[ignore]`d, so `cargo test` lists it
//! as ignored (not run); run it with `cargo test --test netns -- --ignored` (`.ci/run` does,
//! as root). Without root or the tools it prints `NOT RUN` and, under CI (`CI` set), fails.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

use cpm_harness::engine::case::RunSettings;
use cpm_harness::engine::outcome::CaseOutcome;
use cpm_harness::engine::plan::{plan, DefaultSuite};
use cpm_harness::engine::profile::{Place, Profile};
use cpm_harness::engine::runner::{execute, RunEvent, RunSink, Schedule};
use cpm_harness::engine::spec::Case;
use cpm_harness::engine::Verdict;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");
const HARNESS_IP: &str = "198.51.100.1";
const SUT_IP: &str = "198.51.100.2";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .or_else(|| {
            ["/usr/sbin", "/sbin", "/usr/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
        })
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespace and the veth pair; removed on drop (also when the test fails).
struct Net {
    ns: String,
    root_end: String,
    sut_end: String,
}

impl Net {
    fn create() -> Result<Net, String> {
        let id = std::process::id();
        let net = Net {
            ns: format!("cpm-sut-{id}"),
            root_end: format!("cpmr{id}"),
            sut_end: format!("cpms{id}"),
        };
        let (ns, r, s) = (net.ns.as_str(), net.root_end.as_str(), net.sut_end.as_str());
        sh(&["ip", "netns", "add", ns])?;
        sh(&["ip", "link", "add", r, "type", "veth", "peer", "name", s])?;
        sh(&["ip", "link", "set", s, "netns", ns])?;
        sh(&["ip", "addr", "add", &format!("{HARNESS_IP}/24"), "dev", r])?;
        sh(&["ip", "link", "set", r, "up"])?;
        let inside = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", ns];
            v.extend_from_slice(args);
            sh(&v)
        };
        inside(&["ip", "addr", "add", &format!("{SUT_IP}/24"), "dev", s])?;
        inside(&["ip", "link", "set", s, "up"])?;
        inside(&["ip", "link", "set", "lo", "up"])?;
        // The pair is up once the root end can reach the SUT's address.
        if tool("ping").is_some() {
            for _ in 0..50 {
                if sh(&["ping", "-c", "1", "-W", "1", SUT_IP]).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        } else {
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(net)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = sh(&["ip", "link", "del", &self.root_end]);
        let _ = sh(&["ip", "netns", "del", &self.ns]);
    }
}

/// Whether this machine can run the test; the reason when not.
fn available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root (network namespaces, veth)".into());
    }
    for t in ["ip", "tcpdump"] {
        if tool(t).is_none() {
            return Err(format!("needs {t}"));
        }
    }
    Ok(())
}

/// A tcpdump of the SUT's end of the veth, inside its namespace.
struct Dump {
    child: Child,
    path: PathBuf,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Dump {
    fn start(ns: &str, dev: &str, path: &Path) -> Dump {
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", ns, "tcpdump", "-Z", "root", "-B", "8192", "-i", dev, "-U", "-s",
                "0", "-n", "-w",
            ])
            .arg(path)
            .arg("ip")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump starts");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(l) if l.contains("listening on") => break,
                Ok(l) => seen.push(l),
                Err(_) => panic!("tcpdump did not start: {seen:?}"),
            }
        }
        Dump {
            child,
            path: path.to_path_buf(),
            lines: rx,
        }
    }

    fn stop(mut self) -> PathBuf {
        // libpcap hands packets over a block at a time (a block timeout of 1 s): wait it out
        // before the interrupt.
        std::thread::sleep(Duration::from_millis(1200));
        // SAFETY: kill(2) signals our own child; no memory is touched.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        let said: Vec<String> = self.lines.try_iter().collect();
        eprintln!("tcpdump {}: {}", self.path.display(), said.join(", "));
        self.path.clone()
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tcpdump per case: started before the case, stopped after it.
struct PerCase {
    ns: String,
    dev: String,
    dir: PathBuf,
    running: Option<Dump>,
    done: BTreeMap<String, PathBuf>,
}

impl RunSink for PerCase {
    fn event(&mut self, e: &RunEvent<'_>) -> anyhow::Result<()> {
        match e {
            RunEvent::CaseStarted { index, .. } => {
                let path = self.dir.join(format!("veth-{index}.pcap"));
                self.running = Some(Dump::start(&self.ns, &self.dev, &path));
            }
            RunEvent::CaseFinished { case, .. } => {
                if let Some(d) = self.running.take() {
                    self.done.insert(case.id.clone(), d.stop());
                }
            }
            RunEvent::RunNote { note } => panic!("run note: {note}"),
            _ => {}
        }
        Ok(())
    }
}

/// `cpm-harness analyze --json` of a capture of `case`: each check's verdict.
fn analyze(capture: &Path, map: &Path, case: &Case) -> BTreeMap<String, String> {
    let v = &case.variant;
    let mut args: Vec<String> = vec![
        "analyze".into(),
        capture.display().to_string(),
        "--json".into(),
        "--map".into(),
        map.display().to_string(),
        "--sut".into(),
        case.split(),
        "--figure".into(),
        v.figure.to_string(),
        "--trigger".into(),
        v.trigger.as_str().into(),
        "--pause-ms".into(),
        case.pause().as_millis().to_string(),
    ];
    if let Some(x) = v.x_trigger {
        args.extend(["--x-trigger".into(), x.as_str().into()]);
    }
    // The knobs as `sut` and `analyze` spell them (the variant id has them all).
    let id = v.id();
    if id.contains("/l23-x") {
        args.extend(["--l23".into(), "x".into()]);
    }
    if id.contains("/ack-on-200") {
        args.extend(["--ack".into(), "on-200".into()]);
    } else if id.contains("/ack-after-ack") {
        args.extend(["--ack".into(), "after-ack".into()]);
    }
    if v.reuse {
        args.push("--reuse".into());
    }
    for (flag, on, value) in [
        ("--transport", id.contains("/tcp/"), "tcp"),
        ("--setup", id.contains("/preset"), "preset"),
        ("--group", id.contains("/adhoc"), "adhoc"),
    ] {
        if on {
            args.extend([flag.into(), value.into()]);
        }
    }
    let out = Command::new(BIN)
        .args(&args)
        .output()
        .expect("analyze runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "analyze {}: {e}\n{}\n{}",
            capture.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn live(o: &CaseOutcome) -> BTreeMap<String, String> {
    o.checks
        .iter()
        .map(|c| {
            let v = serde_json::to_value(c.verdict).unwrap();
            (c.id.as_str().to_string(), v.as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, ip netns and tcpdump: cargo test --test netns -- --ignored (CI runs it)"]
async fn sut_in_its_own_namespace_and_a_veth_capture_agree_with_the_harness() {
    if let Err(why) = available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "NOT RUN under CI: {why}; .ci/run runs as root and installs iproute2 and tcpdump"
        );
        eprintln!("NOT RUN: sut_in_its_own_namespace…: {why}");
        return;
    }
    let net = Net::create().expect("namespace and veth pair");

    // The shipped running profile, moved to the veth's addresses, the SUT launched inside its
    // namespace.
    let mut profile = Profile::load(&root().join("profiles/reference-running.yaml")).unwrap();
    profile.harness = Some(Place {
        ip: HARNESS_IP.parse().unwrap(),
        first: 20000,
        last: 20999,
    });
    profile.sut = Some(Place {
        ip: SUT_IP.parse().unwrap(),
        first: 30000,
        last: 30999,
    });
    let launch = profile.launch.as_mut().unwrap();
    launch.command = format!("ip netns exec {} {}", net.ns, launch.command);

    // A few cases of x: three figures (each solution), one under the discriminating pause.
    let d = DefaultSuite::load(&root().join("suites/default.yaml")).unwrap();
    let p = plan(&root().join("suites"), &d, &profile).unwrap();
    let wanted = [
        "F1/x/on-ack/udp/new/sdp/predefined/in-order",
        "F4/x/on-ack/udp/new/sdp/predefined/in-order",
        "F6/x/on-ack/udp/new/sdp/predefined/pause",
        "F7/x/on-ack/tcp/new/sdp/predefined/in-order",
    ];
    let find = |id: &str| -> Case {
        p.cases
            .iter()
            .find(|c| c.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no case {id}"))
    };
    let mut cases: Vec<Case> = wanted[..3].iter().map(|id| find(id)).collect();
    // x over SIP/TCP (the default suite runs x over UDP only).
    let mut tcp = find("F7/x/on-ack/udp/new/sdp/predefined/in-order");
    tcp.variant.transport = cpm_harness::codec::sip::Transport::Tcp;
    tcp.id = wanted[3].to_string();
    cases.push(tcp);

    let dir = tempfile::tempdir().unwrap();
    let s = RunSettings {
        capture_dir: Some(dir.path().join("ours")),
        ..RunSettings::new(PathBuf::from(BIN), dir.path().join("work"))
    };
    let mut sink = PerCase {
        ns: net.ns.clone(),
        dev: net.sut_end.clone(),
        dir: dir.path().to_path_buf(),
        running: None,
        done: BTreeMap::new(),
    };
    let schedule = Schedule {
        jobs: 1,
        fail_fast: false,
    };
    let outcomes = execute(&cases, &profile, &s, schedule, &mut sink)
        .await
        .expect("run");
    let mut problems = String::new();
    for (case, o) in cases.iter().zip(&outcomes) {
        if o.verdict != Verdict::Pass {
            problems.push_str(&format!("{} {}: {:?}\n", o.verdict.as_str(), o.id, o.notes));
            continue;
        }
        let stem = cpm_harness::chain::sanitize(&case.id.replace('/', "_"));
        let ours = dir.path().join("ours").join(format!("{stem}.pcap"));
        let map = ours.with_extension("topology.yaml");
        let veth = &sink.done[&case.id];
        // The harness's own capture of the same case, cut to what crossed the veth (its
        // entities also talk among themselves, on the harness's side only).
        let crossed = dir.path().join(format!("{stem}.crossed.pcap"));
        let cut = Command::new(tool("tcpdump").unwrap())
            .args(["-Z", "root", "-r"])
            .arg(&ours)
            .arg("-w")
            .arg(&crossed)
            .args(["host", SUT_IP])
            .output()
            .expect("tcpdump -r");
        assert!(
            cut.status.success(),
            "{}",
            String::from_utf8_lossy(&cut.stderr)
        );
        let l = live(o);
        let a = analyze(&ours, &map, case);
        let b = analyze(&crossed, &map, case);
        let c = analyze(veth, &map, case);
        // The harness's capture gives the live verdicts; the veth capture gives the verdicts
        // of the same traffic in the harness's capture; and those are the live ones except
        // where a check needs a link the SUT is not on (the members' links L4, between two
        // harness entities: MEDIA-DELIVERY, judged from what the members received).
        let differ = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| -> Vec<String> {
            x.iter()
                .filter(|(k, v)| y.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}: {v} vs {:?}", y.get(k)))
                .collect()
        };
        let mut bad = differ(&a, &l);
        bad.extend(
            differ(&c, &b)
                .into_iter()
                .map(|d| format!("veth vs cut: {d}")),
        );
        bad.extend(
            differ(&c, &l)
                .into_iter()
                .filter(|d| !d.starts_with("MEDIA-DELIVERY:"))
                .map(|d| format!("veth vs live: {d}")),
        );
        if !bad.is_empty() {
            problems.push_str(&format!("{}: {}\n", case.id, bad.join("; ")));
        }
        // The veth capture holds this case's traffic between the two sides only.
        let veth_bytes = std::fs::metadata(veth).map(|m| m.len()).unwrap_or(0);
        assert!(veth_bytes > 1000, "{}: empty veth capture", case.id);
    }
    assert!(problems.is_empty(), "{problems}");
    drop(net);
}
