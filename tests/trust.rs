//! No leaks of trust (issue 8, item 5): names that come from suite files or a SUT's topology
//! never steer a write outside the output folders, and the harness binds only the addresses
//! its topology configures. Net 249 (one test at a time: the tests share it).

use cpm_harness::chain::{sanitize, Chain, ChainOptions};
use cpm_harness::config::Variant;
use cpm_harness::engine::case::{run_case, RunSettings};
use cpm_harness::engine::plan::{plan, DefaultSuite};
use cpm_harness::engine::profile::Profile;
use cpm_harness::topology::Topology;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

/// Every file under `dir`, relative.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

#[test]
fn sanitize_never_yields_a_path() {
    for name in [
        "../../etc/passwd",
        "..",
        ".",
        "",
        "/abs",
        "a/../../b",
        "x\0y",
        "..\\..\\win",
        "ü/é",
    ] {
        let s = sanitize(name);
        assert!(!s.is_empty() && !s.starts_with('.'), "{name:?} -> {s:?}");
        assert!(
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{name:?} -> {s:?}"
        );
        assert_eq!(Path::new(&s).components().count(), 1, "{name:?} -> {s:?}");
    }
}

/// The bound local addresses of this process's sockets: (TCP listeners, UDP sockets).
fn own_bound_addrs() -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let inodes: BTreeSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect();
    let parse = |file: &str, listen_only: bool| -> Vec<SocketAddr> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
                if !inodes.contains(*inode) || (listen_only && *state != "0A") {
                    return None;
                }
                let (ip, port) = local.split_once(':')?;
                let port = u16::from_str_radix(port, 16).ok()?;
                let ip = match ip.len() {
                    8 => IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        u32::from_str_radix(ip, 16).ok()?,
                    ))),
                    _ => "::".parse().ok()?, // any IPv6 socket is reported as unexpected
                };
                Some(SocketAddr::new(ip, port))
            })
            .collect()
    };
    let mut tcp = parse("/proc/self/net/tcp", true);
    tcp.extend(parse("/proc/self/net/tcp6", true));
    let mut udp = parse("/proc/self/net/udp", false);
    udp.extend(parse("/proc/self/net/udp6", false));
    (tcp, udp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listens_only_on_configured_addresses_and_names_stay_inside_outputs() {
    // 1. A chain of every role binds exactly the topology's SIP (UDP+TCP) and MSRP addresses.
    let topology = Arc::new(Topology::generate(249, 3, 2, 5060, 2855));
    let chain = Chain::start(ChainOptions {
        digest: false,
        ..ChainOptions::new(topology.clone(), Variant::new(1))
    })
    .await
    .unwrap();
    let mut want_tcp: BTreeSet<SocketAddr> = BTreeSet::new();
    let mut want_udp: BTreeSet<SocketAddr> = BTreeSet::new();
    for i in topology.instances() {
        want_tcp.insert(i.sip);
        want_tcp.insert(i.msrp);
        want_udp.insert(i.sip);
    }
    let (tcp, udp) = own_bound_addrs();
    chain.stop().await.unwrap();
    let tcp: BTreeSet<SocketAddr> = tcp.into_iter().collect();
    let udp: BTreeSet<SocketAddr> = udp.into_iter().collect();
    assert_eq!(tcp, want_tcp, "TCP listeners");
    assert_eq!(udp, want_udp, "UDP sockets");

    // 2. A suite whose ordering name climbs directories: the case's capture and scratch
    //    folder stay inside their folders.
    let yaml = "about: hostile names\nbase: {}\norderings:\n  ../../../escape:\n    about: a name with slashes\nsections:\n  - name: s\n    about: one case\n    figures: [1]\n    splits: [client-b]\n    orderings: [\"../../../escape\"]\n";
    let d = DefaultSuite::parse(yaml, "inline").expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let p = plan(Path::new("suites"), &d, &profile).expect("plan");
    let case = p.cases.first().expect("a case");
    assert!(case.id.contains("../"), "{}", case.id);
    let root = tempfile::tempdir().unwrap();
    let inner = root.path().join("a/b/c");
    let s = RunSettings {
        size: 5_000,
        capture_dir: Some(inner.join("captures")),
        ..RunSettings::new(PathBuf::from(BIN), inner.join("work"))
    };
    let o = run_case(case, &profile, 249, &s).await;
    assert_eq!(o.verdict.as_str(), "pass", "{:?}", o.notes);
    let files = tree(root.path());
    for f in &files {
        assert!(
            f.starts_with("a/b/c/work")
                || f.starts_with("a/b/c/captures")
                || inner.starts_with(root.path().join(f)),
            "written outside the output folders: {}",
            f.display()
        );
    }
    assert!(files
        .iter()
        .any(|f| f.starts_with("a/b/c/captures") && f.extension().is_some_and(|x| x == "pcap")));

    // 3. A SUT topology whose member names climb directories: `sut --out-dir` writes each
    //    member's content inside the folder.
    let out = inner.join("received");
    let mut hostile = (*topology).clone();
    let evil = "../../../b1-escape".to_string();
    hostile.members[0].name = evil.clone();
    for p in &mut hostile.pf_b {
        for m in &mut p.serves {
            if m == "b1" {
                *m = evil.clone();
            }
        }
    }
    let topo = hostile.to_yaml();
    assert!(topo.contains("../../../b1-escape"), "{topo}");
    let topo_path = root.path().join("topology.yaml");
    std::fs::write(&topo_path, topo).unwrap();
    let st = Command::new(BIN)
        .args([
            "sut",
            "--figure",
            "1",
            "--send-bytes",
            "3000",
            "--timeout",
            "20",
        ])
        .arg("--topology")
        .arg(&topo_path)
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let got = tree(&out);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got.iter()
            .any(|f| f.to_string_lossy().contains("b1-escape")),
        "{got:?}"
    );
    for f in tree(root.path()) {
        assert!(
            !f.to_string_lossy().contains("escape") || f.starts_with("a/b/c"),
            "written outside: {}",
            f.display()
        );
    }
}
