//! Memory under hostile input: the SUT sends a 100 MB SIP header, then an MSRP chunk that
//! never ends. The harness (this test process: a binary of its own, so the peak is its own)
//! must reject each at its limit — the SIP framer at `max-sip-message`, the node at
//! `max-msrp-chunk` — instead of buffering, so its peak resident size (VmHWM, reset before
//! each case) stays far below 100 MB. Net 249.

mod common_hostile;

use common_hostile::{describe, run_hostile, run_with, Expect};
use cpm_harness::engine::Verdict;
use cpm_harness::entity::Fault;
use cpm_harness::limits::Limits;

fn status_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}

/// Resets the peak resident size to the current one (Linux `clear_refs` 5).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
}

/// The bound: well under the 100 MB the SUT sends, above what a case needs.
const PEAK_LIMIT_KIB: u64 = 80 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_header_and_endless_chunk_stay_bounded() {
    reset_peak();
    let base = status_kib("VmRSS:");
    let o = run_hostile(
        249,
        Fault::HugeSipHeader,
        "F1/pf-a/on-ack/udp/new/sdp/predefined/in-order",
        Expect::note("head not complete within max_message (262144)"),
    )
    .await;
    let peak = status_kib("VmHWM:");
    eprintln!("huge-sip-header: VmRSS before {base} KiB, peak {peak} KiB");
    assert!(peak < PEAK_LIMIT_KIB, "peak {peak} KiB:\n{}", describe(&o));

    // The default chunk limit (16 MiB) is for real messages. The harness relays a chunk as it
    // comes (here to 3 members over 7 harness links), records it and judges it, so its peak
    // grows with the limit: 1 MiB here keeps the bound tight.
    reset_peak();
    let mut limits = Limits::default();
    limits.set("max-msrp-chunk=1M").unwrap();
    let o = run_with(
        249,
        Fault::EndlessChunk,
        "F1/client-a/on-ack/udp/new/sdp/predefined/in-order",
        limits,
    )
    .await;
    let peak = status_kib("VmHWM:");
    eprintln!("endless-chunk: peak {peak} KiB\n{}", describe(&o));
    assert!(
        matches!(o.verdict, Verdict::Fail | Verdict::Inconc),
        "{}",
        describe(&o)
    );
    assert!(
        o.notes
            .iter()
            .any(|n| n.contains("longer than max-msrp-chunk (1048576 bytes)")),
        "{}",
        describe(&o)
    );
    assert!(peak < PEAK_LIMIT_KIB, "peak {peak} KiB:\n{}", describe(&o));
}
