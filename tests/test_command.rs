//! The README's test command, `scripts/test`: `cargo test --locked` and then the tests that
//! could not run in full (a tool they need is missing), listed by name with what they need,
//! counted, and a failure under CI. Checked with a stand-in for cargo (`CPM_TEST_CARGO`) that
//! records what a test without chromium records, through the same helper the tests use.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test")
}

/// A stand-in for cargo: records `names` as not run (each needing chromium) in
/// `$CPM_NOT_RUN_DIR`, prints its arguments, exits with `code`.
fn fake_cargo(dir: &Path, names: &[&str], code: i32) -> PathBuf {
    let mut sh = String::from("#!/bin/sh\necho \"fake cargo: $*\"\n");
    for n in names {
        sh.push_str(&format!(
            "printf '%s\\t%s\\n' '{n}' 'needs chromium' > \"$CPM_NOT_RUN_DIR/{}\"\n",
            n.replace("::", "--")
        ));
    }
    sh.push_str(&format!("exit {code}\n"));
    let p = dir.join("fake-cargo");
    std::fs::write(&p, sh).unwrap();
    let mut perm = std::fs::metadata(&p).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&p, perm).unwrap();
    p
}

fn run(dir: &Path, cargo: &Path, ci: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(script());
    c.args(args)
        .env("CPM_TEST_CARGO", cargo)
        .env("CPM_NOT_RUN_DIR", dir.join("not-run"));
    match ci {
        Some(v) => c.env("CI", v),
        None => c.env_remove("CI"),
    };
    c.output().expect("scripts/test runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn tests_that_did_not_run_are_listed_and_counted_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    // A stale record of an earlier run is not reported again.
    std::fs::create_dir_all(dir.path().join("not-run")).unwrap();
    std::fs::write(dir.path().join("not-run/stale"), "old::test\tneeds x\n").unwrap();
    let cargo = fake_cargo(
        dir.path(),
        &["browser::renders", "report::junit_validates"],
        0,
    );
    let o = run(dir.path(), &cargo, None, &["--test", "browser"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    // The arguments reach cargo test, with --locked.
    assert!(
        out.contains("fake cargo: test --locked --test browser"),
        "{out}"
    );
    let tail: Vec<&str> = out.lines().rev().take(4).collect();
    assert_eq!(
        tail,
        [
            "(install the tools to run them: .ci/run lists the packages)",
            "  report::junit_validates (needs chromium)",
            "  browser::renders (needs chromium)",
            "2 tests NOT RUN (in full): a tool they need is missing here",
        ],
        "{out}"
    );
    assert!(!out.contains("old::test"), "{out}");

    // Under CI a test that did not run fails the command; CI=false is not CI.
    let o = run(dir.path(), &cargo, Some("true"), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("CI: every test must run; failing because 2 did not"));
    let o = run(dir.path(), &cargo, Some("false"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // One test: singular.
    let cargo = fake_cargo(dir.path(), &["cli::schema"], 0);
    let o = run(dir.path(), &cargo, None, &[]);
    assert!(
        stdout(&o).contains("\n1 test NOT RUN (in full): a tool they need is missing here\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn every_test_ran_says_so_and_failing_tests_keep_cargo_s_status() {
    let dir = tempfile::tempdir().unwrap();
    let cargo = fake_cargo(dir.path(), &[], 0);
    let o = run(dir.path(), &cargo, Some("true"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o)
            .lines()
            .last()
            .is_some_and(|l| l == "every test ran in full (no tool was missing)"),
        "{}",
        stdout(&o)
    );
    let cargo = fake_cargo(dir.path(), &["browser::renders"], 101);
    let o = run(dir.path(), &cargo, None, &[]);
    assert_eq!(o.status.code(), Some(101), "{}", stdout(&o));
    assert!(stdout(&o).contains("  browser::renders (needs chromium)"));
}

/// What a test records when a tool is missing: its name (test file and test) and the need,
/// in the form the script reads.
#[test]
fn a_test_records_itself_as_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let f =
        common::record_not_run_in(dir.path(), &common::current_test(), "needs chromium").unwrap();
    assert_eq!(
        std::fs::read_to_string(f).unwrap(),
        "test_command::a_test_records_itself_as_not_run\tneeds chromium\n"
    );
    // A tool that is there is found without recording anything.
    assert!(common::find_tool("sh").is_some());
    assert!(common::find_tool("no-such-tool-cpm").is_none());
}

/// The README's two first commands are the main job and this script, and CI runs the same
/// script.
#[test]
fn the_readme_s_test_command_is_what_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).unwrap();
    let block = &block[..block.find("```").unwrap()];
    assert_eq!(
        block.lines().collect::<Vec<_>>(),
        ["cargo run --release -- run", "scripts/test"]
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l == "scripts/test"), "{ci}");
    assert!(!ci.lines().any(|l| l.starts_with("cargo test")), "{ci}");
}
