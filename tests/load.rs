//! `cpm-harness load` against the reference SUT (launched from profiles/reference.yaml, as
//! x) at a small rate: every session succeeds with the correct SUT, and a faulty SUT's
//! failures are counted by reason. Nets 85 and 86.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

fn load(net: u8, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("load.json");
    let o = Command::new(BIN)
        .args(["load", "--profile", "profiles/reference.yaml"])
        .args(["--rate", "5", "--duration", "2", "--members", "3"])
        .args(["--size", "3000", "--drain", "5", "--net", &net.to_string()])
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .expect("run cpm-harness load");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let json = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("no JSON result ({e}); output:\n{text}"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    (o.status.code().unwrap_or(-1), v, text)
}

#[test]
fn load_against_the_reference_sut_succeeds_every_session() {
    let (code, v, text) = load(85, &[]);
    let attempted = v["attempted"].as_u64().unwrap();
    assert!(attempted > 0, "{text}");
    assert_eq!(v["succeeded"].as_u64(), Some(attempted), "{text}");
    assert_eq!(v["failed"].as_u64(), Some(0), "{text}");
    assert_eq!(code, 0, "{text}");
    for k in [
        "target_rate",
        "achieved_rate",
        "skipped_at_limit",
        "failures",
        "elapsed_s",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    for lat in ["setup_latency_ms", "delivery_latency_ms"] {
        for k in ["p50", "p90", "p99", "max"] {
            let x = v[lat][k].as_f64().unwrap_or(-1.0);
            assert!(x > 0.0, "{lat}.{k} = {x}: {v}");
        }
        assert_eq!(v[lat]["count"].as_u64(), Some(attempted), "{lat}: {v}");
        assert!(v[lat]["p50"].as_f64() <= v[lat]["max"].as_f64());
    }
    assert!(text.contains("succeeded"), "{text}");
    assert_eq!(v["sut_roles"], serde_json::json!(["x"]));
}

#[test]
fn load_counts_a_faulty_suts_failures_by_reason() {
    // x invites only the first member: every session reaches 1 of the 3 members.
    let (code, v, text) = load(86, &["--fault", "fanout-first-only"]);
    let attempted = v["attempted"].as_u64().unwrap();
    assert!(attempted > 0, "{text}");
    assert_eq!(v["succeeded"].as_u64(), Some(0), "{text}");
    assert_eq!(v["failed"].as_u64(), Some(attempted), "{text}");
    let failures = v["failures"].as_object().unwrap();
    assert_eq!(
        failures
            .get("not delivered to every member (1 of 3)")
            .and_then(|n| n.as_u64()),
        Some(attempted),
        "{failures:?}"
    );
    assert_eq!(code, 1, "{text}");
}

#[test]
fn load_rejects_bad_arguments_clearly() {
    let o = Command::new(BIN)
        .args(["load", "--profile", "profiles/reference.yaml"])
        .args(["--rate", "0", "--duration", "1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--rate"));
    let o = Command::new(BIN)
        .args(["load", "--profile", "profiles/reference.yaml"])
        .args(["--rate", "1", "--duration", "1", "--sut", "client-b"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--sut"));
}
