//! `cpm-harness load` against the reference SUT (launched from profiles/reference.yaml, as
//! x) at a small rate: every session succeeds with the correct SUT, and a faulty SUT's
//! failures are counted by reason; three `--shard k/3` workers merged by `load-merge` account
//! for the same sessions as one run, with the percentiles of all their samples. Nets 81–86.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

fn load(net: u8, extra: &[&str]) -> (i32, serde_json::Value, String) {
    load_at(net, "5", extra)
}

fn load_at(net: u8, rate: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("load.json");
    let o = Command::new(BIN)
        .args(["load", "--profile", "profiles/reference.yaml"])
        .args(["--rate", rate, "--duration", "2", "--members", "3"])
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

#[test]
fn three_workers_merge_into_the_single_runs_counts_with_exact_percentiles() {
    use cpm_harness::load::{decode_histogram, LoadResult};
    // One run of the whole schedule (6/s for 2 s: 12 sessions), then three workers at once,
    // each a process with its own SUT on nets 82, 83 and 84, taking every third start.
    let (code, single, text) = load_at(81, "6", &[]);
    assert_eq!(code, 0, "{text}");
    let single: LoadResult = serde_json::from_value(single).unwrap();
    assert_eq!(single.attempted, 12, "{text}");
    assert_eq!(single.succeeded, 12, "{text}");
    let workers: Vec<_> = (1..=3)
        .map(|k| std::thread::spawn(move || load_at(82, "6", &["--shard", &format!("{k}/3")])))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut shards: Vec<LoadResult> = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        let (code, v, text) = w.join().unwrap();
        assert_eq!(code, 0, "worker {}: {text}", i + 1);
        assert_eq!(v["shard"], format!("{}/3", i + 1));
        let f = dir.path().join(format!("shard-{}.json", i + 1));
        std::fs::write(&f, v.to_string()).unwrap();
        files.push(f);
        shards.push(serde_json::from_value(v).unwrap());
    }
    for s in &shards {
        assert_eq!(s.attempted, 4, "every third of the 12 starts: {s:?}");
    }
    let merged_path = dir.path().join("merged.json");
    let o = Command::new(BIN)
        .arg("load-merge")
        .args(&files)
        .arg("--out")
        .arg(&merged_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("3 workers merged"), "{text}");
    let merged: LoadResult =
        serde_json::from_str(&std::fs::read_to_string(&merged_path).unwrap()).unwrap();

    // Counts: exactly the single run's.
    assert_eq!(merged.workers, 3);
    assert_eq!(merged.attempted, single.attempted);
    assert_eq!(merged.succeeded, single.succeeded);
    assert_eq!(merged.failed, 0);
    assert_eq!(merged.skipped_at_limit, single.skipped_at_limit);
    for (m, s) in [
        (&merged.setup_latency_ms, &single.setup_latency_ms),
        (&merged.delivery_latency_ms, &single.delivery_latency_ms),
    ] {
        assert_eq!(m.count, s.count);
        assert!(
            0.0 < m.p50 && m.p50 <= m.p90 && m.p90 <= m.p99 && m.p99 <= m.max,
            "{m:?}"
        );
    }
    // Percentiles: those of the three workers' samples together, exactly.
    let setup = |r: &LoadResult| r.setup_histogram.clone();
    let delivery = |r: &LoadResult| r.delivery_histogram.clone();
    for of in [&setup as &dyn Fn(&LoadResult) -> String, &delivery] {
        let merged_h = decode_histogram(&of(&merged)).unwrap();
        let parts: Vec<_> = shards
            .iter()
            .map(|r| decode_histogram(&of(r)).unwrap())
            .collect();
        let mut all = parts[0].clone();
        // A decoded histogram keeps the range it was written with: let the sum grow.
        all.auto(true);
        for p in &parts[1..] {
            all.add(p).unwrap();
        }
        assert_eq!(merged_h, all);
        assert_eq!(merged_h.len(), single.succeeded);
        for q in [0.5, 0.9, 0.99, 1.0] {
            let v = merged_h.value_at_quantile(q);
            assert_eq!(v, all.value_at_quantile(q));
            // A quantile of the mixture lies between the parts' quantiles.
            let lo = parts.iter().map(|p| p.value_at_quantile(q)).min().unwrap();
            let hi = parts.iter().map(|p| p.value_at_quantile(q)).max().unwrap();
            assert!(
                lo <= v && v <= hi,
                "q {q}: {v} outside the workers' {lo}..{hi}"
            );
        }
        assert_eq!(merged_h.max(), parts.iter().map(|p| p.max()).max().unwrap());
    }
}
