//! The CLI a CI pipeline drives, through the real binary: exit codes (0 all passed, 1 a case
//! failed, 2 usage or configuration error, 3 harness error, 4 no case ran), `--partition`
//! (disjoint shards that cover the plan), `merge` (shards merged = one run), `--fail-fast`,
//! `--color`/`NO_COLOR`, the closing line, and the files a run writes (JUnit checked with
//! xmllint against `tests/fixtures/junit.xsd`).
//!
//! Cases run on the runner's own subnets (127.100–199, re-run elsewhere on a clash); the
//! tests of this file take turns so their runs do not compete for them.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Four quick cases of FIG 1, the SUT playing one middle role each.
const FOUR: [&str; 4] = [
    "F1/pf-a/on-ack/udp/new/sdp/predefined/in-order",
    "F1/x/on-ack/udp/new/sdp/predefined/in-order",
    "F1/pf-b/on-ack/udp/new/sdp/predefined/in-order",
    "F1/client-b/on-ack/udp/new/sdp/predefined/in-order",
];

fn harness(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("NO_COLOR");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("the harness runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `run` with `--out`/`--captures` under `dir`; returns the output and the run folder.
fn run(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> (Output, Option<PathBuf>) {
    let out = dir.join("reports");
    let caps = dir.join("captures");
    let mut args: Vec<String> = vec!["run".into(), "--case-timeout".into(), "8".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        "--out".into(),
        out.display().to_string(),
        "--captures".into(),
        caps.display().to_string(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = harness(&a, envs);
    let folder = std::fs::read_dir(&out)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path());
    (o, folder)
}

fn filters(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .flat_map(|id| ["--filter".to_string(), id.to_string()])
        .collect()
}

fn summary(folder: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(folder.join("summary.json")).unwrap()).unwrap()
}

/// The schema check of `file` (not run when xmllint is missing: a failure under CI).
fn xmllint_ok(file: &Path) {
    if common::require_tool("xmllint").is_none() {
        return;
    }
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit.xsd");
    let o = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn exit_0_when_every_case_passes_with_every_report_written() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    let (o, folder) = run(dir.path(), &["--filter", FOUR[1]], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Not a terminal: plain text, no progress bar, the exact closing line.
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\r'),
        "{stdout:?}"
    );
    assert!(o.stderr.is_empty(), "{}", text(&o));
    assert!(
        stdout
            .lines()
            .any(|l| l == "1 passed, 0 failed, 0 inconc, 0 error, 0 skipped"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("pass   {}", FOUR[1])), "{stdout}");
    // One case, in the singular.
    assert!(
        stdout.starts_with("1 case, 0 skipped; profile reference"),
        "{stdout}"
    );
    let folder = folder.unwrap();
    for f in ["summary.json", "junit.xml", "index.html"] {
        assert!(folder.join(f).is_file(), "{f} missing");
    }
    let page = folder
        .join("cases")
        .join("F1_x_on-ack_udp_new_sdp_predefined_in-order.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg class=\"ladder observed\""));
    assert!(html.contains("<svg class=\"ladder expected\""));
    // A passing case: no row red, every step of the figure observed.
    assert!(
        !html.contains(" failed\" data-"),
        "a red row in a passing case"
    );
    let s = summary(&folder);
    let steps = s["cases"][0]["expected"]["steps"].as_array().unwrap();
    assert!(steps.len() >= 20);
    for st in steps {
        assert_eq!(st["status"], "seen", "{st}");
    }
    assert_eq!(s["schema_version"], 4);
    assert_eq!(s["counts"]["passed"], 1);
    // A passing case's ladder is on its page, not repeated in summary.json.
    assert!(s["cases"][0].get("ladder").is_none());
    assert!(html.matches("<g class=\"row ").count() > 40);
    // The SUT's readiness line names its topology: the copy kept beside the capture, not
    // the work folder's, which is gone after the run.
    let kept = dir
        .path()
        .join("captures")
        .join(folder.file_name().unwrap())
        .join("F1_x_on-ack_udp_new_sdp_predefined_in-order.topology.yaml");
    let notes = s["cases"][0]["notes"].to_string();
    assert!(
        notes.contains(&format!("topology={}", kept.display())),
        "{notes}"
    );
    assert!(kept.is_file() && !notes.contains("/work/"), "{notes}");
    assert!(!folder.join("work").exists());
    xmllint_ok(&folder.join("junit.xml"));
    let junit = std::fs::read_to_string(folder.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"FIG 1: "), "{junit}");
    assert!(junit.contains("classname=\"F1.x\""), "{junit}");
    assert!(
        junit.contains("<system-out>note: sut: ready"),
        "the notes in system-out"
    );
}

#[test]
fn color_is_plain_off_a_terminal_and_always_means_always() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    let (o, _) = run(
        dir.path(),
        &["--filter", FOUR[0], "--color", "always"],
        &[("NO_COLOR", "1")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("\u{1b}[32mpass  \u{1b}[0m"), "{stdout:?}");
    let dir = tempfile::tempdir().unwrap();
    let (o, _) = run(dir.path(), &["--filter", FOUR[0], "--color", "never"], &[]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains('\u{1b}'));
}

#[test]
fn exit_1_when_a_case_fails_and_fail_fast_stops_scheduling() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut args = filters(&FOUR);
    args.extend(["--jobs", "1", "--fail-fast", "--fault", "sdp-wrong-c"].map(String::from));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (o, folder) = run(dir.path(), &a, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The first case fails with its evidence inline; the other three never start.
    assert!(stdout.contains(&format!("fail   {}", FOUR[0])), "{stdout}");
    // With the catalogue's reference (docs/checks.md).
    let reference = cpm_harness::engine::CheckId::SdpC.reference();
    assert!(
        stdout.contains(&format!("         SDP-C [{reference}] ")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l == "0 passed, 1 failed, 0 inconc, 0 error, 3 skipped"),
        "{stdout}"
    );
    let s = summary(&folder.unwrap());
    assert_eq!(s["cases"].as_array().unwrap().len(), 1);
    // The rows SDP-C cites are pf-a's SDP-bearing messages (INVITE2, 200-1), and only those:
    // not the 100 Trying pf-a sent within the same 0.1 ms, nor the harness's messages.
    let rows = s["cases"][0]["ladder"]["rows"].as_array().unwrap();
    let red: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r["failed"].as_array().is_some_and(|f| !f.is_empty()))
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_string(),
                r["failed"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        red,
        vec![
            ("INVITE".to_string(), "[\"SDP-C\"]".to_string()),
            ("200".to_string(), "[\"SDP-C\"]".to_string())
        ],
        "{red:?}"
    );
    let failed_steps: Vec<&str> = s["cases"][0]["expected"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["status"] == "failed")
        .map(|st| st["message"].as_str().unwrap())
        .collect();
    assert_eq!(failed_steps, ["INVITE2", "200-1"]);
    let skipped = s["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 3);
    for (k, id) in skipped.iter().zip(&FOUR[1..]) {
        assert_eq!(k["id"], *id);
        assert_eq!(k["not_run"], true);
        assert!(k["reason"].as_str().unwrap().contains("--fail-fast"));
    }
    // Without --fail-fast every case runs (and fails).
    let dir = tempfile::tempdir().unwrap();
    let mut args = filters(&FOUR[..2]);
    args.extend(["--jobs", "2", "--fault", "sdp-wrong-c"].map(String::from));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (o, _) = run(dir.path(), &a, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout)
        .lines()
        .any(|l| l == "0 passed, 2 failed, 0 inconc, 0 error, 0 skipped"));
}

#[test]
fn exit_2_for_usage_and_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    for args in [
        vec!["run", "--partition", "3/2"],
        vec!["run", "--partition", "x"],
        vec!["run", "--no-such-flag"],
        vec!["run", "--color", "sometimes"],
        vec!["run", "-q", "-v"],
        vec!["run", "--profile", "/nonexistent/profile.yaml"],
        vec!["list", "--suite", "/nonexistent/default.yaml"],
        vec!["merge", "--out", &d, "/nonexistent/summary.json"],
        vec!["merge", "--out", &d],
    ] {
        let o = harness(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
    // A file that is no summary.
    let bad = dir.path().join("summary.json");
    std::fs::write(&bad, "{\"hello\": 1}").unwrap();
    let o = harness(&["merge", "--out", &d, &bad.display().to_string()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no schema_version"));
}

#[test]
fn exit_3_for_a_harness_error() {
    let _t = turn();
    // A SUT that cannot be launched: the case's verdict is `error`.
    let dir = tempfile::tempdir().unwrap();
    let profile = std::fs::read_to_string("profiles/reference.yaml")
        .unwrap()
        .replace("{exe} sut ", "/nonexistent/cpm-sut ");
    let p = dir.path().join("broken.yaml");
    std::fs::write(&p, profile).unwrap();
    let (o, folder) = run(
        dir.path(),
        &["--filter", FOUR[1], "--profile", &p.display().to_string()],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout)
        .lines()
        .any(|l| l == "0 passed, 0 failed, 0 inconc, 1 error, 0 skipped"));
    assert_eq!(summary(&folder.unwrap())["cases"][0]["verdict"], "error");
    // Reports that cannot be written.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let o = harness(
        &[
            "run",
            "--filter",
            FOUR[1],
            "--out",
            &file.join("reports").display().to_string(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

/// A filter that matches nothing: exit 4, which filter matched nothing and where to look on
/// stderr, and nothing created (no report folder, no captures path).
#[test]
fn exit_4_when_no_case_runs_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let (o, folder) = run(dir.path(), &["--filter", "no-such-case"], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim_end(),
        "no case to run: --filter \"no-such-case\" matched no case; `cpm-harness list` prints the case ids",
        "{}",
        text(&o)
    );
    assert!(folder.is_none(), "a report folder was created");
    assert!(!dir.path().join("reports").exists() && !dir.path().join("captures").exists());
    let o = harness(&["list", "--filter", "no-such-case"], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--filter \"no-such-case\" matched no case")
    );
    // One filter of two matching nothing: a warning naming it; the other's cases are listed.
    let o = harness(
        &["list", "--filter", "no-such-case", "--filter", FOUR[1]],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{}\n", FOUR[1]));
    assert!(String::from_utf8_lossy(&o.stderr).contains(
        "warning: --filter \"no-such-case\" matched no case (`cpm-harness list` prints the case ids)"
    ));
    // A partition that selects none of the filtered cases.
    let (o, folder) = run(
        dir.path(),
        &["--filter", FOUR[1], "--partition", "2/2"],
        &[],
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(folder.is_none());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--partition 2/2 selects none of the 1 case the filters keep"),
        "{}",
        text(&o)
    );
}

/// `list`: the runnable ids on stdout, one per line; the skipped cases counted on stderr and
/// listed with their reasons behind `--skipped`; both in `--json`.
#[test]
fn list_prints_runnable_ids_and_skipped_cases_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let profile = std::fs::read_to_string("profiles/reference.yaml")
        .unwrap()
        .replace("reuse: [true, false]", "reuse: [false]");
    let p = dir.path().join("no-reuse.yaml");
    std::fs::write(&p, profile).unwrap();
    let p = p.display().to_string();
    let args = ["list", "--profile", &p, "--filter", "F1/x/"];
    let o = harness(&args, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!ids.is_empty());
    for id in &ids {
        assert!(
            id.starts_with("F1/x/") && !id.contains(' ') && !id.contains("/reuse/"),
            "not a runnable id: {id:?}"
        );
    }
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 skipped case not listed: the profile does not declare what it needs"),
        "{}",
        text(&o)
    );

    let mut a = args.to_vec();
    a.push("--skipped");
    let o = harness(&a, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let skipped: Vec<(String, String)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let (id, why) = l.split_once(": ").expect("id: reason");
            (id.to_string(), why.to_string())
        })
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    for (id, why) in &skipped {
        assert!(id.contains("/reuse/"), "{id}");
        assert!(why.contains("reuse"), "{why}");
    }

    let mut a = args.to_vec();
    a.push("--json");
    let o = harness(&a, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["cases"], serde_json::json!(ids));
    let js: Vec<(String, String)> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(js, skipped);
    assert_eq!(v["unmatched_filters"], serde_json::json!([]));
}

fn list(args: &[&str]) -> Vec<String> {
    let mut a = vec!["list"];
    a.extend(args);
    let o = harness(&a, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn partitions_are_disjoint_cover_the_plan_and_are_stable() {
    let all = list(&[]);
    assert!(all.len() > 100, "the default plan: {} cases", all.len());
    let mut union = BTreeSet::new();
    let mut sizes = Vec::new();
    for k in 1..=4 {
        let p = format!("{k}/4");
        let shard = list(&["--partition", &p]);
        assert_eq!(
            shard,
            list(&["--partition", &p]),
            "shard {p} is deterministic"
        );
        sizes.push(shard.len());
        for id in shard {
            assert!(union.insert(id.clone()), "{id} in two shards");
        }
    }
    assert_eq!(union, all.iter().cloned().collect::<BTreeSet<_>>());
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );
    // With a filter, the partition splits the filtered plan.
    let f = list(&["--filter", "F3/"]);
    let a = list(&["--filter", "F3/", "--partition", "1/2"]);
    let b = list(&["--filter", "F3/", "--partition", "2/2"]);
    assert_eq!(a.len() + b.len(), f.len());
    assert!(a.iter().all(|id| id.starts_with("F3/") && !b.contains(id)));
}

/// What must agree between one run and its merged shards (times and evidence times differ).
fn essence(s: &serde_json::Value) -> serde_json::Value {
    let cases: Vec<serde_json::Value> = s["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let checks: Vec<serde_json::Value> = c["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| serde_json::json!([k["id"], k["verdict"]]))
                .collect();
            serde_json::json!({
                "id": c["id"], "index": c["index"], "figure": c["figure"], "split": c["split"],
                "verdict": c["verdict"], "checks": checks,
                "steps": c["expected"]["steps"],
                "columns": c["ladder"]["columns"],
            })
        })
        .collect();
    serde_json::json!({
        "schema_version": s["schema_version"], "profile": s["profile"],
        "counts": s["counts"], "cases": cases, "skipped": s["skipped"],
        // The conformance test report: the same SUT, PICS, build, inputs and results.
        "sut": s["pctr"]["sut"], "pics": s["pctr"]["pics"], "harness": s["pctr"]["harness"],
        "inputs": s["pctr"]["inputs"], "results": s["pctr"]["results"],
    })
}

#[test]
fn merged_shards_give_the_summary_of_one_run() {
    let _t = turn();
    let base = tempfile::tempdir().unwrap();
    let fl = filters(&FOUR);
    let one = {
        let mut a: Vec<&str> = fl.iter().map(String::as_str).collect();
        a.extend(["--jobs", "2", "-q"]);
        let (o, folder) = run(&base.path().join("one"), &a, &[]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        summary(&folder.unwrap())
    };
    let mut shard_dirs = Vec::new();
    for k in ["1/2", "2/2"] {
        let mut a: Vec<&str> = fl.iter().map(String::as_str).collect();
        a.extend(["--jobs", "2", "-q", "--partition", k]);
        let d = base.path().join(format!("shard-{}", &k[..1]));
        let (o, folder) = run(&d, &a, &[]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let s = summary(folder.as_ref().unwrap());
        assert_eq!(s["partition"], k);
        assert_eq!(s["cases"].as_array().unwrap().len(), 2);
        // The shard's --out folder (holding its run folder), as CI artifacts are.
        shard_dirs.push(d.join("reports"));
    }
    let merged = base.path().join("merged");
    let o = harness(
        &[
            "merge",
            "--out",
            &merged.display().to_string(),
            &shard_dirs[1].display().to_string(),
            &shard_dirs[0].display().to_string(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("4 passed, 0 failed, 0 inconc, 0 error, 0 skipped"));
    let m = summary(&merged);
    assert_eq!(essence(&m), essence(&one));
    assert_eq!(m["merged_from"].as_array().unwrap().len(), 2);
    assert!(m["pctr"]["sut"]["version"]["output"].is_string());
    let shards = m["pctr"]["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    assert_eq!(shards[0]["partition"], "2/2", "in the order given");
    assert!(m["pctr"]["date"].as_str() <= shards[0]["date"].as_str());
    for f in ["junit.xml", "index.html"] {
        assert!(merged.join(f).is_file(), "{f}");
    }
    assert_eq!(std::fs::read_dir(merged.join("cases")).unwrap().count(), 4);
    xmllint_ok(&merged.join("junit.xml"));
    // Merging a shard twice is refused: shards must be disjoint.
    let o = harness(
        &[
            "merge",
            "--out",
            &base.path().join("twice").display().to_string(),
            &shard_dirs[0].display().to_string(),
            &shard_dirs[0].display().to_string(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("shards must be disjoint"));
}

/// On a terminal (a pty from util-linux `script`), a run that takes over a second draws the
/// progress bar with its ETA and colours the verdicts; `-q` draws neither.
#[test]
fn progress_bar_and_colour_on_a_terminal_only() {
    let _t = turn();
    // util-linux `script` gives the run a pty.
    if common::require_tool("script").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = format!(
        "{BIN} run --jobs 1 --out {} --captures {}",
        dir.path().join("r").display(),
        dir.path().join("c").display()
    );
    // The bar shows once a run has taken a second: two pause cases make sure it does.
    for id in FOUR.iter().chain(&[
        "F2/x/on-ack/udp/new/sdp/predefined/pause",
        "F4/x/on-ack/udp/new/sdp/predefined/pause",
    ]) {
        cmd.push_str(&format!(" --filter {id}"));
    }
    let tty = |extra: &str| -> String {
        let o = Command::new("script")
            .args(["-qec", &format!("{cmd} {extra}"), "/dev/null"])
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .env("COLUMNS", "160")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let screen = tty("");
    assert!(screen.contains("ETA"), "no progress bar: {screen:?}");
    assert!(
        screen.contains("running F1/"),
        "no running case: {screen:?}"
    );
    assert!(screen.contains("\u{1b}[32mpass"), "no colour: {screen:?}");
    assert!(screen.contains("6 passed, 0 failed, 0 inconc, 0 error, 0 skipped"));
    let quiet = tty("-q");
    assert!(
        !quiet.contains("ETA") && !quiet.contains("pass "),
        "{quiet:?}"
    );
    let no_color = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&no_color.stdout);
    assert!(!s.contains("\u{1b}[32m"), "NO_COLOR ignored: {s:?}");
}

/// Through a SIP/IP core (`--core kamailio`) each SIP message is two rows (entity → proxy →
/// entity); the rows a failing check cites and the figure's steps are still found.
#[test]
fn failed_rows_and_steps_through_the_sip_core() {
    let _t = turn();
    if common::require_tool("kamailio").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (o, folder) = run(
        dir.path(),
        &[
            "--core",
            "kamailio",
            "--filter",
            FOUR[0],
            "--fault",
            "sdp-wrong-c",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s = summary(&folder.unwrap());
    let c = &s["cases"][0];
    let cols = c["ladder"]["columns"].as_array().unwrap();
    assert!(cols.iter().any(|col| col["core"] == true), "no core column");
    let red: Vec<&str> = c["ladder"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["failed"].as_array().is_some_and(|f| !f.is_empty()))
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(red, ["INVITE", "200"]);
    let not_seen: Vec<(&str, &str)> = c["expected"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["status"] != "seen")
        .map(|st| {
            (
                st["message"].as_str().unwrap(),
                st["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(not_seen, [("INVITE2", "failed"), ("200-1", "failed")]);
}

/// Time runs down the observed ladder of a real case page (one with a slow member, where the
/// causal order went back in time on about half of the rows).
#[test]
fn time_runs_down_a_case_page() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    let case = "F3/x/on-ack/udp/new/sdp/predefined/one-slow";
    let (o, folder) = run(dir.path(), &["--filter", case], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let page = std::fs::read_to_string(
        folder
            .unwrap()
            .join("cases")
            .join("F3_x_on-ack_udp_new_sdp_predefined_one-slow.html"),
    )
    .unwrap();
    let times = common::drawn_times(&page);
    assert!(times.len() > 40, "{times:?}");
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time goes back: {times:?}"
    );
}

/// What a run keeps: a passing case's ladder is on its page only (not in summary.json or
/// JUnit), a failing case's everywhere; `--keep failed` keeps the captures of the failing
/// case only; `merge` copies the case pages as the run drew them.
#[test]
fn a_passing_case_keeps_its_ladder_on_its_page_and_keep_failed_drops_its_capture() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    let pass = "F1/none/on-ack/udp/new/sdp/predefined/in-order";
    let fail = FOUR[1];
    let (o, folder) = run(
        dir.path(),
        &[
            "--filter",
            pass,
            "--filter",
            fail,
            "--fault",
            "sdp-wrong-c",
            "--keep",
            "failed",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let folder = folder.unwrap();
    let s = summary(&folder);
    assert_eq!(s["schema_version"], 4);
    let case = |id: &str| {
        s["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(case(pass)["verdict"], "pass");
    assert!(
        case(pass).get("ladder").is_none(),
        "a passing ladder in summary.json"
    );
    assert!(case(pass)["expected"]["steps"].as_array().unwrap().len() > 10);
    assert!(case(fail)["ladder"]["rows"].as_array().unwrap().len() > 10);
    let stem = |id: &str| id.replace('/', "_");
    for id in [pass, fail] {
        let page = std::fs::read_to_string(folder.join("cases").join(format!("{}.html", stem(id))))
            .unwrap();
        assert!(page.contains("<svg class=\"ladder observed\""), "{id}");
    }
    let junit = std::fs::read_to_string(folder.join("junit.xml")).unwrap();
    assert_eq!(
        junit.matches(" entities (").count(),
        1,
        "one text ladder: {junit}"
    );
    // The failing case's capture and map are kept, the passing case's are not.
    let caps = dir
        .path()
        .join("captures")
        .join(folder.file_name().unwrap());
    let mut kept: Vec<String> = std::fs::read_dir(&caps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            format!("{}.pcap.gz", stem(fail)),
            format!("{}.topology.yaml", stem(fail))
        ]
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("captures: {}", caps.display())));
    // The kept capture is compressed, and the harness reads it as it is.
    let gz = caps.join(format!("{}.pcap.gz", stem(fail)));
    let o = harness(&["show", &gz.display().to_string()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(" entities ("));
    // merge copies the pages, the passing ladder included.
    let merged = dir.path().join("merged");
    let o = harness(
        &[
            "merge",
            "--out",
            &merged.display().to_string(),
            &folder.display().to_string(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    for id in [pass, fail] {
        let name = format!("{}.html", stem(id));
        assert_eq!(
            std::fs::read(merged.join("cases").join(&name)).unwrap(),
            std::fs::read(folder.join("cases").join(&name)).unwrap(),
            "{name}"
        );
    }
}
