//! A run interrupted by SIGTERM or SIGINT stops every SUT process it launched, keeps the
//! reports of the cases that finished (summary and event logs), leaves captures that read
//! back and that tshark reads without error, and exits with its own code (130).

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

/// Processes whose command line mentions `needle` (the run's scratch folder).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && !cmd.contains("cargo") {
            out.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
        }
    }
    out
}

fn interrupt_with(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let caps = dir.path().join("captures");
    let mut child = Command::new(BIN)
        .args(["run", "--filter", "/pause", "--jobs", "2", "-q"])
        .arg("--out")
        .arg(&out)
        .arg("--captures")
        .arg(&caps)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until SUT processes of this run exist, so the signal lands mid-case.
    let needle = out.display().to_string();
    let start = Instant::now();
    while processes_mentioning(&needle).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no SUT process appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // And until at least one case finished (its report must survive), then signal while
    // later cases run.
    let finished = |out: &std::path::Path| -> usize {
        std::fs::read_dir(out)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|r| std::fs::read(r.path().join("summary.json")).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|v| v["cases"].as_array().map_or(0, |a| a.len()))
            .max()
            .unwrap_or(0)
    };
    while finished(&out) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no case finished within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = finished(&out);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not stop after the signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "exit status {status:?}");
    // No SUT process of this run survives (give the group kill a moment to land).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_mentioning(&needle);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SUT processes left behind: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every capture, finished or cut off by the signal, reads back.
    let mut pcaps = 0;
    for run in std::fs::read_dir(&caps).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(run.path()).unwrap().flatten() {
            // Finished cases' captures are compressed (`.pcap.gz`), those the signal cut off
            // are not; beside each: its topology file.
            if f.path()
                .extension()
                .is_none_or(|e| e != "pcap" && e != "gz")
            {
                continue;
            }
            pcaps += 1;
            cpm_harness::capture::read_capture(&f.path()).unwrap_or_else(|e| {
                panic!("{} unreadable after the interrupt: {e}", f.path().display())
            });
        }
    }
    assert!(pcaps > 0, "no capture written before the signal");
    // tshark reads every one of them without an error (not run without tshark).
    if common::require_tool("tshark").is_some() {
        for run in std::fs::read_dir(&caps).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(run.path()).unwrap().flatten() {
                if f.path()
                    .extension()
                    .is_none_or(|e| e != "pcap" && e != "gz")
                {
                    continue;
                }
                let o = Command::new("tshark")
                    .arg("-r")
                    .arg(f.path())
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "tshark on {}: {}",
                    f.path().display(),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
    // The finished cases' summary is valid JSON.
    let runs: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1);
    let summary = runs[0].path().join("summary.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 4);
    let cases = v["cases"].as_array().unwrap();
    assert!(
        cases.len() >= before,
        "{} cases in the summary, {before} had finished before the signal",
        cases.len()
    );
    // Each finished case keeps its capture; one that did not pass keeps its trace too.
    let cap_run: Vec<_> = std::fs::read_dir(&caps).unwrap().flatten().collect();
    for c in cases {
        let id = c["id"].as_str().unwrap().replace('/', "_");
        let pcap = cap_run[0].path().join(format!("{id}.pcap.gz"));
        assert!(pcap.exists(), "{} missing", pcap.display());
        if c["verdict"] != "pass" {
            let trace = runs[0].path().join(format!("{id}.trace.jsonl"));
            let text = std::fs::read_to_string(&trace)
                .unwrap_or_else(|e| panic!("{}: {e}", trace.display()));
            cpm_harness::trace::from_jsonl(&text).expect("the trace reads back");
        }
    }
}

/// One test, signals in turn: two runs at once would share the runner's subnets.
#[test]
fn sigterm_and_sigint_stop_the_sut_processes_and_keep_finished_reports() {
    interrupt_with(libc::SIGTERM);
    interrupt_with(libc::SIGINT);
}
