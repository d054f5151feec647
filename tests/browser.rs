//! The HTML report in a real browser: the conformance test report of a run (every section in
//! the DOM, an insta snapshot of its sections with run-specific values redacted), and escaping.
//! A reference SUT with the `script-injection` fault puts
//! `<script>` markup in a SIP header (`X-Note`) and an SDP line (`a=x-note:`); the case page
//! must show it as text only: escaped in the file, no `<script>` or `<img>` element in the
//! DOM headless Chromium builds from it, the page title untouched, and no console error
//! while it loads. Chromium is required under CI (.ci/run installs it); elsewhere a test
//! that cannot run it says so and is listed as not run by `scripts/test`.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;

use cpm_harness::entity::fault::INJECTED_MARKUP;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");
const CASE: &str = "F1/x/on-ack/udp/new/sdp/predefined/in-order";

/// The tests of this file take turns: two runs at once share the runner's subnets, and a SUT
/// process that loses the race for an address exits before it is ready (a harness error).
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Chromium under one of its names; when none is installed the test does not run in full
/// (a failure under CI).
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|c| common::find_tool(c));
    if found.is_none() {
        common::not_run("needs chromium");
    }
    found
}

/// Runs headless Chromium on `page` with `mode` (`--dump-dom`, `--screenshot=…`), killed
/// after 90 s.
pub fn headless(chrome: &Path, page: &Path, mode: &str) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1500,1100",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let pid = child.id();
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    loop {
        if let Ok(o) = rx.try_recv() {
            return o.expect("chromium ran");
        }
        if start.elapsed() > Duration::from_secs(90) {
            // SAFETY: kill(2) on our own child.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("chromium did not finish within 90 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Console errors and script failures Chromium logged while loading the page.
fn page_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("Uncaught")
                || l.contains("CONSOLE")
                || l.contains("Refused to")
                || l.contains("Content Security Policy")
                || l.contains("ERR_FILE_NOT_FOUND")
                || l.contains("Page load failed")
        })
        .collect()
}

fn run_case(dir: &Path, faults: &[&str]) -> (Output, PathBuf) {
    let mut c = Command::new(BIN);
    c.args(["run", "-q", "--case-timeout", "8", "--filter", CASE]);
    for f in faults {
        c.args(["--fault", f]);
    }
    let o = c
        .arg("--out")
        .arg(dir.join("reports"))
        .arg("--captures")
        .arg(dir.join("captures"))
        .output()
        .unwrap();
    let folder = std::fs::read_dir(dir.join("reports"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (o, folder)
}

#[test]
fn script_injection_is_inert_in_the_html_report() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    // The fault breaks no rule: alone, the case passes.
    let (o, _) = run_case(&dir.path().join("clean"), &["script-injection"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // With a real fault beside it the page has red rows too.
    let (o, folder) = run_case(
        &dir.path().join("bad"),
        &["script-injection", "sdp-wrong-c"],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let page = folder
        .join("cases")
        .join("F1_x_on-ack_udp_new_sdp_predefined_in-order.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let escaped = cpm_harness::report::svg::esc(INJECTED_MARKUP);
    // The markup reached the report from both places, only escaped.
    assert!(
        html.contains(&format!("X-Note: {escaped}")),
        "header not shown"
    );
    assert!(
        html.contains(&format!("sdp a=x-note: {escaped}")),
        "SDP line not shown"
    );
    assert!(!html.contains("<script"), "unescaped <script> in the file");
    assert!(!html.contains("<img"), "unescaped <img> in the file");
    assert!(
        html.contains("<g class=\"row sip failed\" data-row"),
        "no red row"
    );

    let Some(chrome) = chromium() else { return };
    let o = headless(&chrome, &page, "--dump-dom");
    let dom = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(dom.contains("</svg>"), "no DOM dumped: {stderr}");
    assert!(!dom.contains("<script"), "a <script> element in the DOM");
    assert!(!dom.contains("<img"), "an <img> element in the DOM");
    assert!(
        dom.contains(&format!("<title>{CASE}</title>")),
        "the title changed"
    );
    assert_eq!(dom.matches("<svg class=\"ladder").count(), 2, "two ladders");
    assert!(dom.contains("X-Note: &lt;script&gt;"), "the header as text");
    let errors = page_errors(&stderr);
    assert!(errors.is_empty(), "errors while loading: {errors:#?}");
    // The index loads cleanly too.
    let o = headless(&chrome, &folder.join("index.html"), "--dump-dom");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(dom.contains(CASE), "index without the case");
    let errors = page_errors(&String::from_utf8_lossy(&o.stderr)).len();
    assert_eq!(errors, 0, "{}", String::from_utf8_lossy(&o.stderr));
    // And it renders: a screenshot of the page is a real image.
    let shot = dir.path().join("page.png");
    let o = headless(&chrome, &page, &format!("--screenshot={}", shot.display()));
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {o:?}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

/// `text` with every value that changes from run to run or machine to machine replaced:
/// the summary's identification values, times (`8.9ms`, `0.45 s`) and loopback addresses.
fn redact(text: &str, s: &serde_json::Value) -> String {
    let p = &s["pctr"];
    let mut t = text.to_string();
    let mut known: Vec<(String, &str)> = vec![
        (s["run"].as_str().unwrap().to_string(), "<run>"),
        (p["date"].as_str().unwrap().to_string(), "<date>"),
        (
            p["sut"]["origin"].as_str().unwrap().to_string(),
            "<profile>",
        ),
        (
            p["machine"]["hostname"].as_str().unwrap().to_string(),
            "<host>",
        ),
        (p["machine"]["os"].as_str().unwrap().to_string(), "<os>"),
        (
            format!("{} CPUs", p["machine"]["cpus"].as_u64().unwrap()),
            "<n> CPUs",
        ),
        (
            cpm_harness::report::svg::esc(p["sut"]["version"]["output"].as_str().unwrap()),
            "<version output>",
        ),
        (BIN.to_string(), "<exe>"),
        (
            format!("<code>{}</code>", p["harness"]["commit"].as_str().unwrap()),
            "<code><commit></code>",
        ),
        (
            " <span class=\"bad\">(with uncommitted changes)</span>".to_string(),
            "",
        ),
    ];
    for i in p["inputs"].as_array().unwrap() {
        known.push((i["sha256"].as_str().unwrap().to_string(), "<sha256>"));
    }
    known.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in known {
        t = t.replace(&k, v);
    }
    // Times: digits[.digits] followed by `ms` or ` s`; addresses 127.a.b.c:port.
    let mut out = String::with_capacity(t.len());
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_alphanumeric())) {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.' || b[j] == b':') {
                j += 1;
            }
            let word = &t[start..j];
            let rest = &t[j..];
            if word.starts_with("127.") && word.matches('.').count() == 3 {
                out.push_str(if word.contains(':') { "<addr>" } else { "<ip>" });
                i = j;
                continue;
            }
            if word.contains('.') && (rest.starts_with("ms") || rest.starts_with(" s<")) {
                out.push_str("<t>");
                i = j;
                continue;
            }
        }
        let c = t[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The conformance test report of a real run (a failing SUT role, the self-check, cases the
/// profile does not declare): every section in the DOM headless Chromium builds, the
/// self-check labelled, the failed check with its evidence and reference link, skipped cases
/// grouped by reason; and the report's sections as an insta snapshot, with what changes from
/// run to run redacted.
#[test]
fn the_conformance_test_report_renders_in_a_browser() {
    let _t = turn();
    let dir = tempfile::tempdir().unwrap();
    let profile = std::fs::read_to_string("profiles/reference.yaml")
        .unwrap()
        .replace("reuse: [true, false]", "reuse: [false]")
        .replace(
            "x-triggers: [on-200, on-ack, on-send]",
            "x-triggers: [on-ack]",
        );
    let p = dir.path().join("udp-only.yaml");
    std::fs::write(&p, profile).unwrap();
    let o = Command::new(BIN)
        .args(["run", "-q", "--jobs", "2", "--case-timeout", "8"])
        .args(["--fault", "sdp-wrong-c", "--profile"])
        .arg(&p)
        .args(["--filter", CASE])
        .args(["--filter", "F1/none/on-ack/udp/new/sdp/predefined/in-order"])
        .args(["--filter", "F1/x/on-ack/udp/reuse/"])
        .args(["--filter", "F1/x/on-ack/x-on-"])
        .arg("--out")
        .arg(dir.path().join("reports"))
        .arg("--captures")
        .arg(dir.path().join("captures"))
        .output()
        .unwrap();
    let folder = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{o:?}\n{:#}",
        serde_json::json!(s["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| serde_json::json!([c["id"], c["verdict"], c["notes"]]))
            .collect::<Vec<_>>())
    );
    let index = folder.join("index.html");
    let html = std::fs::read_to_string(&index).unwrap();
    // The report's sections, before the case list.
    let from = html.find("<h1>").unwrap();
    let to = html.find("<section id=\"cases\">").unwrap();
    insta::assert_snapshot!("pctr", redact(&html[from..to], &s));

    let Some(chrome) = chromium() else { return };
    let o = headless(&chrome, &index, "--dump-dom");
    let dom = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    for (id, title) in [
        ("identification", "1. Identification"),
        ("pics", "2. PICS as declared"),
        ("results", "3. Results by figure and SUT role"),
        ("failures", "4. Failed checks"),
        ("skipped", "5. Skipped cases"),
        ("cases", "6. Cases"),
    ] {
        assert!(
            dom.contains(&format!("<section id=\"{id}\">\n<h2>{title}</h2>")),
            "section {id} missing: {stderr}"
        );
    }
    assert!(dom.contains("<h1>Conformance test report: reference</h1>"));
    assert!(dom.contains("cpm-harness 0.1.0 · commit <code>"));
    assert!(dom.contains("<th>SUT version</th><td><pre>cpm-harness 0.1.0 (commit "));
    assert!(dom.contains("<td><code>reuse</code></td><td><code>false</code></td>"));
    assert!(
        dom.contains(">self-check</span>"),
        "the self-check labelled"
    );
    assert!(dom.contains("<a class=\"ref\" href=\"docs/checks.md#sdp-c\">docs/checks.md#sdp-c</a>"));
    assert!(dom.contains("profile does not implement reuse on"));
    assert!(dom.contains("profile does not implement x-trigger on-200"));
    let errors = page_errors(&stderr);
    assert!(errors.is_empty(), "errors while loading: {errors:#?}");
    let shot = dir.path().join("index.png");
    let o = headless(&chrome, &index, &format!("--screenshot={}", shot.display()));
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {o:?}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}
