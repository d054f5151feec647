//! A real capture next to the harness's own: while a case runs (harness and reference SUT
//! process over loopback), dumpcap (or tcpdump) records the same traffic from the kernel.
//! `analyze` of the real capture gives the same verdict per check as the harness's pcap,
//! and `diff` of the two, after normalization, shows no message-level difference.

mod common;

use common::RealCapture;
use cpm_harness::capture::analyze::{analyze_file, Options};
use cpm_harness::capture::diff::diff_files;
use cpm_harness::engine::case::{run_case, RunSettings};
use cpm_harness::engine::plan::{plan, DefaultSuite};
use cpm_harness::engine::profile::Profile;
use cpm_harness::engine::Verdict;
use cpm_harness::topology::Topology;
use std::path::{Path, PathBuf};

async fn real_next_to_ours(case_id: &str, net: u8) {
    let d = DefaultSuite::load(Path::new("suites/default.yaml")).expect("suite");
    let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
    let p = plan(Path::new("suites"), &d, &profile).expect("plan");
    let case = p
        .cases
        .iter()
        .find(|c| c.id == case_id)
        .unwrap_or_else(|| panic!("no case {case_id}"))
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.pcap");
    let Some(cap) = RealCapture::start(&real, &format!("net 127.{net}.0.0/16")).await else {
        return;
    };
    let s = RunSettings {
        capture_dir: Some(dir.path().join("ours")),
        ..RunSettings::new(
            PathBuf::from(env!("CARGO_BIN_EXE_cpm-harness")),
            dir.path().join("work"),
        )
    };
    let live = run_case(&case, &profile, net, &s).await;
    cap.stop().await;
    assert_eq!(live.verdict, Verdict::Pass, "{case_id}: {:?}", live.notes);
    let ours = std::fs::read_dir(dir.path().join("ours"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pcap"))
        .expect("the harness's capture");

    let topo = Topology::generate(net, 3, 2, 5060, 2855);
    let map = (dir.path().join("topology.yaml"), topo);
    let mut opts = Options::new(case.variant.clone());
    opts.sut = case.sut.clone();
    opts.map = Some(map.clone());
    opts.pause = case.pause();
    let a = analyze_file(&ours, &opts).expect("ours analyzes");
    let b = analyze_file(&real, &opts).expect("the real capture analyzes");
    let verdicts = |r: &cpm_harness::capture::analyze::Report| {
        r.outcome
            .checks
            .iter()
            .map(|c| (c.id, c.verdict))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        verdicts(&a),
        verdicts(&b),
        "{case_id}: per-check verdicts differ\nours: {:?}\nreal: {:?}",
        a.outcome.checks,
        b.outcome.checks
    );
    assert_eq!(a.outcome.verdict, Verdict::Pass);
    let packets = cpm_harness::capture::read::read_capture(&real).expect("reads");
    assert!(
        packets.len() > 20,
        "the real capture caught {} events",
        packets.len()
    );
    let diff = diff_files(&ours, &real, Some(&map)).expect("diff");
    assert!(diff.is_equal(), "{case_id}:\n{}", diff.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_capture_of_a_sut_x_case_agrees_with_ours() {
    real_next_to_ours("F2/x/on-ack/udp/new/sdp/predefined/in-order", 251).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_capture_of_a_sut_client_b_case_over_sip_tcp_agrees_with_ours() {
    real_next_to_ours("F5/client-b/on-ack/tcp/new/sdp/predefined/in-order", 250).await;
}
