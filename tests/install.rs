//! Install and go, through the real binary: a run from a folder with no `suites/` or
//! `profiles/` uses the copies built into the binary (and says so), `suites write` writes them
//! out and edited copies are used and named in errors, `init` writes a profile template that
//! loads once its placeholders are filled; a SUT that cannot be launched says why on the
//! console in default verbosity; and the conformance test report of a real run identifies the
//! SUT, the harness build, the inputs by digest, the date and the machine.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");
const CASE: &str = "F1/x/on-ack/udp/new/sdp/predefined/in-order";
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn harness_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("the harness runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn only_run_folder(reports: &Path) -> PathBuf {
    let mut d: Vec<PathBuf> = std::fs::read_dir(reports)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(d.len(), 1, "{d:?}");
    d.pop().unwrap()
}

fn summary(folder: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(folder.join("summary.json")).unwrap()).unwrap()
}

/// `run` in `cwd` with reports and captures under it.
fn run_in(cwd: &Path, extra: &[&str]) -> (Output, PathBuf) {
    let mut args = vec!["run", "--case-timeout", "8", "--jobs", "1"];
    args.extend(extra);
    args.extend(["--out", "reports", "--captures", "captures"]);
    let o = harness_in(cwd, &args);
    let folder = only_run_folder(&cwd.join("reports"));
    (o, folder)
}

#[test]
fn runs_from_a_folder_without_suites_or_profiles() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    assert!(!dir.path().join("suites").exists() && !dir.path().join("profiles").exists());
    let (o, folder) = run_in(dir.path(), &["--filter", CASE]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("profile reference (built-in profiles/reference.yaml)")
            && out.contains("suite built-in suites/default.yaml (+ 7 figure files, built-in)"),
        "{out}"
    );
    assert!(out.contains(&format!("pass   {CASE}")), "{out}");
    let s = summary(&folder);
    let inputs = s["pctr"]["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 9, "default, 7 figures, the profile");
    for i in inputs {
        assert!(
            i["origin"].as_str().unwrap().starts_with("built-in "),
            "{i}"
        );
    }
    // The built-in files are the repository's: the same digests.
    let fig1 = std::fs::read(root().join("suites/fig1.yaml")).unwrap();
    assert_eq!(inputs[1]["sha256"], hex::encode(Sha256::digest(&fig1)));
    // `list` works here too.
    let o = harness_in(dir.path(), &["list", "--filter", "F2/x/"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("F2/x/on-ack/udp/new/sdp/predefined/in-order")
    );
}

#[test]
fn suites_write_then_edited_copies_are_used_and_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = harness_in(d, &["suites", "write", "copy"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in [
        "suites/default.yaml",
        "suites/fig1.yaml",
        "suites/fig7.yaml",
        "suites/topology.yaml",
        "profiles/reference.yaml",
    ] {
        let written = std::fs::read(d.join("copy").join(f)).unwrap();
        assert_eq!(written, std::fs::read(root().join(f)).unwrap(), "{f}");
    }
    // Never over a file without --force.
    let o = harness_in(d, &["suites", "write", "copy"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    let o = harness_in(d, &["suites", "write", "copy", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Run from the copy, an edited figure file is the one read, and the error names it.
    let copy = d.join("copy");
    let fig1 = copy.join("suites/fig1.yaml");
    let t = std::fs::read_to_string(&fig1).unwrap();
    std::fs::write(&fig1, t.replacen("steps:", "stepz:", 1)).unwrap();
    let o = harness_in(&copy, &["list"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("suites/fig1.yaml") && !err.contains("built-in"),
        "{err}"
    );
    // Given explicitly from elsewhere: the same.
    let o = harness_in(
        d,
        &[
            "list",
            "--suite",
            "copy/suites/default.yaml",
            "--filter",
            "F1/x/",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("copy/suites/fig1.yaml"));
    // A missing --profile names the path, not a built-in copy.
    let o = harness_in(d, &["list", "--profile", "nowhere.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nowhere.yaml: cannot read the profile"));
}

#[test]
fn init_writes_a_template_that_loads_once_filled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = harness_in(d, &["init", "my-sut.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let p = d.join("my-sut.yaml");
    let template = std::fs::read_to_string(&p).unwrap();
    assert_eq!(template, cpm_harness::builtin::PROFILE_TEMPLATE);
    // It explains what a vendor needs: the shell rule, the PIXIT keys, the PICS lists.
    for needle in [
        "WITHOUT a shell",
        "sh -c '",
        "harness: {",
        "addresses:",
        "per: run",
        "trigger:",
        "version-command:",
        "settle-ms:",
        "variant-header:",
        "triggers:",
        "transports:",
    ] {
        assert!(template.contains(needle), "the template lacks {needle:?}");
    }
    // Not over an existing file without --force.
    let o = harness_in(d, &["init", "my-sut.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists (--force overwrites)"));
    assert_eq!(
        harness_in(d, &["init", "my-sut.yaml", "--force"])
            .status
            .code(),
        Some(0)
    );
    // Unfilled, it does not load, and says which placeholder to fill.
    let o = harness_in(d, &["list", "--profile", "my-sut.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("replace the template's placeholder <SUT-NAME>"),
        "{}",
        text(&o)
    );
    // Filled, it loads through the profile loader and plans the SUT's cases.
    let filled = template
        .replace("<SUT-NAME>", "acme-cpm")
        .replace("<SUT-COMMAND>", "/opt/acme/bin/cpmd");
    std::fs::write(&p, &filled).unwrap();
    let profile =
        cpm_harness::engine::profile::Profile::load(&p).expect("the filled template loads");
    assert_eq!(profile.name, "acme-cpm");
    assert_eq!(profile.roles, vec![cpm_harness::topology::Role::X]);
    assert!(profile.launch.is_some());
    let o = harness_in(d, &["list", "--profile", "my-sut.yaml", "--filter", "F1/"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l == CASE), "{out}");
    assert!(!out.contains("F1/pf-a/"), "only the runnable ids: {out}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("`--skipped` lists them with the reason"),
        "{}",
        text(&o)
    );
    // Other roles are skipped, and --skipped says why.
    let o = harness_in(
        d,
        &[
            "list",
            "--profile",
            "my-sut.yaml",
            "--filter",
            "F1/",
            "--skipped",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("F1/pf-a/") && l.contains(": ")),
        "{out}"
    );
    // The alternative the template shows for a running SUT loads too.
    let topo = d.join("my-sut-topology.yaml");
    std::fs::write(&topo, cpm_harness::builtin::TOPOLOGY.text).unwrap();
    let running = filled
        .replace("\nlaunch:\n", "\n# launch:\n")
        .replace("\n  command: ", "\n#  command: ")
        .replace("\n  ready: ", "\n#  ready: ")
        .replace("\n  ready-timeout-ms: ", "\n#  ready-timeout-ms: ")
        .replace("\n  per: case", "\n#  per: case")
        .replace(
            "# addresses: my-sut-topology.yaml",
            "addresses: my-sut-topology.yaml",
        );
    std::fs::write(&p, running).unwrap();
    let profile = cpm_harness::engine::profile::Profile::load(&p).expect("addresses variant loads");
    assert!(profile.launch.is_none() && profile.addresses.is_some());
}

/// `run` of the one case [`CASE`] in `dir` with the profile at `p`.
fn run_case_with(dir: &Path, p: &Path) -> (Output, PathBuf) {
    run_in(
        dir,
        &["--filter", CASE, "--profile", &p.display().to_string()],
    )
}

/// A profile for x whose launch command is `command`.
fn profile_with(dir: &Path, command: &str) -> PathBuf {
    let p = dir.join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "name: broken\nroles: [x]\nlaunch:\n  command: >-\n    {command}\n  ready: {{ stdout-line: ready }}\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn a_launch_command_that_does_not_exist_says_why_on_the_console() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    // A long command line: the cause must come before it, not be cut off after it.
    let long = format!(
        "/nonexistent/cpm-sut --topology {{topology}} --roles {{roles}} --figure {{figure}} {}",
        "--some-option value ".repeat(12)
    );
    let p = profile_with(dir.path(), &long);
    let (o, folder) = run_case_with(dir.path(), &p);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("HARNESS"))
        .unwrap_or_else(|| panic!("no HARNESS line: {out}"));
    assert!(
        line.contains(
            "cannot start the SUT \"/nonexistent/cpm-sut\": No such file or directory (os error 2)"
        ),
        "{out}"
    );
    assert!(
        out.contains("command (run without a shell): /nonexistent/cpm-sut --topology "),
        "{out}"
    );
    let s = summary(&folder);
    assert_eq!(s["cases"][0]["verdict"], "error");
    // A program name looked up in PATH: the hint says so.
    let p = profile_with(dir.path(), "no-such-cpm-sut-program --x");
    std::fs::remove_dir_all(dir.path().join("reports")).unwrap();
    let (o, _) = run_case_with(dir.path(), &p);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("No such file or directory (os error 2) (looked up in PATH; the command runs without a shell)"),
        "{out}"
    );
}

#[test]
fn a_sut_that_exits_before_it_is_ready_shows_its_status_and_last_output() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = profile_with(
        dir.path(),
        "sh -c 'echo starting; echo config error: no interface eth7 >&2; exit 7'",
    );
    let (o, _) = run_case_with(dir.path(), &p);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "the SUT exited before it was ready (exit status: 7); its last output:",
        "stderr: config error: no interface eth7",
        "command (run without a shell): sh -c 'echo starting; echo config error: no interface eth7 >&2; exit 7'",
    ] {
        assert!(out.contains(needle), "{needle:?} missing:\n{out}");
    }
}

#[test]
fn a_sut_that_finds_its_address_in_use_is_run_again_on_another_lab_net() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    // The first launch fails as a SUT does whose address another process holds (the probe
    // before it found the address free); the second runs the reference SUT.
    let marker = dir.path().join("launched-once");
    let p = profile_with(
        dir.path(),
        &format!(
            "sh -c 'if [ -e {m} ]; then exec \"$0\" \"$@\"; fi; touch {m}; \
             echo \"error: x: cannot bind SIP/TCP 127.1.0.13:5060: Address already in use (os error 98)\" >&2; \
             exit 1' \
             {{exe}} sut --topology {{topology}} --roles {{roles}} --figure {{figure}} \
             --trigger {{trigger}} --x-trigger {{x-trigger}} --l23 {{l23}} --ack {{ack}} \
             --setup {{setup}} --transport {{transport}} --group {{group}} \
             --chunk-size {{chunk-size}} --msrp-transport {{msrp-transport}} \
             --tls-dir {{tls-dir}} {{reuse-flag}} --out-dir {{out-dir}} {{faults}}",
            m = marker.display()
        ),
    );
    let (o, folder) = run_case_with(dir.path(), &p);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(marker.exists(), "the failing launch ran first");
    let s = summary(&folder);
    assert_eq!(s["cases"][0]["verdict"], "pass");
    let notes = s["cases"][0]["notes"].to_string();
    assert!(
        notes.contains("after an address was in use"),
        "the retry is stated: {notes}"
    );
    // Any other launch failure is the SUT's, not retried.
    std::fs::remove_dir_all(dir.path().join("reports")).unwrap();
    let p = profile_with(
        dir.path(),
        "sh -c 'echo error: cannot bind: Permission denied >&2; exit 1'",
    );
    let (o, folder) = run_case_with(dir.path(), &p);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let notes = summary(&folder)["cases"][0]["notes"].to_string();
    assert!(!notes.contains("after an address was in use"), "{notes}");
}

#[test]
fn the_report_identifies_sut_harness_inputs_date_and_machine() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    let r = root();
    let suite = r.join("suites/default.yaml");
    let profile = r.join("profiles/reference.yaml");
    let (o, folder) = run_in(
        dir.path(),
        &[
            "--filter",
            CASE,
            "--suite",
            &suite.display().to_string(),
            "--profile",
            &profile.display().to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = summary(&folder);
    assert_eq!(s["schema_version"], 4);
    let p = &s["pctr"];
    assert_eq!(p["sut"]["profile"], "reference");
    assert_eq!(p["sut"]["origin"], profile.display().to_string());
    assert!(p["sut"]["access"]
        .as_str()
        .unwrap()
        .starts_with("launched per case (no shell): {exe} sut "));
    // The reference profile's version command is `{exe} --version`.
    let v = p["sut"]["version"]["output"].as_str().unwrap();
    assert!(v.starts_with("cpm-harness 0.1.0 (commit "), "{v}");
    // The harness build: the checkout's commit, or unknown without git.
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(&r)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let commit = p["harness"]["commit"].as_str().unwrap();
    match head {
        Some(h) => assert_eq!(commit, h),
        None => assert_eq!(commit, "unknown"),
    }
    assert_eq!(p["harness"]["version"], env!("CARGO_PKG_VERSION"));
    // Digests of the files read, suite first, profile last.
    let inputs = p["inputs"].as_array().unwrap();
    assert_eq!(inputs[0]["origin"], suite.display().to_string());
    assert_eq!(inputs[0]["kind"], "suite");
    let last = inputs.last().unwrap();
    assert_eq!(last["kind"], "profile");
    assert_eq!(
        last["sha256"],
        hex::encode(Sha256::digest(std::fs::read(&profile).unwrap()))
    );
    // Date (UTC, RFC 3339) and machine.
    let date = p["date"].as_str().unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "{date}"
    );
    assert!(p["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert!(!p["machine"]["hostname"].as_str().unwrap().is_empty());
    // PICS as declared; results of the one case.
    assert_eq!(p["pics"][0]["item"], "roles");
    assert_eq!(p["pics"][1]["item"], "splits");
    assert!(
        p["pics"][1]["values"].is_null(),
        "splits omitted: every value"
    );
    assert_eq!(
        p["results"]["verdicts"],
        serde_json::json!([{"figure": 1, "split": "x", "self_check": false, "passed": 1,
            "failed": 0, "inconc": 0, "error": 0, "skipped": 0}])
    );
    // The catalogue the references link to is in the run folder.
    assert!(std::fs::read_to_string(folder.join("docs/checks.md"))
        .unwrap()
        .contains("LINK-DIR"));

    // A version command that fails is reported, not fatal.
    let text_p = std::fs::read_to_string(&profile).unwrap().replace(
        "version-command: \"{exe} --version\"",
        "version-command: /nonexistent/sut-version",
    );
    let bad = dir.path().join("bad-version.yaml");
    std::fs::write(&bad, text_p).unwrap();
    std::fs::remove_dir_all(dir.path().join("reports")).unwrap();
    let (o, folder) = run_in(
        dir.path(),
        &["--filter", CASE, "--profile", &bad.display().to_string()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("version-command: cannot start"));
    let s = summary(&folder);
    let e = s["pctr"]["sut"]["version"]["error"].as_str().unwrap();
    assert!(e.contains("No such file or directory"), "{e}");
    let index = std::fs::read_to_string(folder.join("index.html")).unwrap();
    assert!(
        index.contains("the version command failed"),
        "not shown in the report"
    );
}
