//! The reporters rendered from one fixture summary (`tests/fixtures/summary.json`: a passing
//! case, a failing case whose SUT sent `<script>` in a header and an SDP line, a harness
//! error, a skipped and a not-run case), snapshot-tested with insta; the JUnit XML checked
//! against the structure Jenkins and GitLab read (`tests/fixtures/junit.xsd`, xmllint).

mod common;

use cpm_harness::report::console::{case_lines, Styles, Verbosity};
use cpm_harness::report::model::Summary;
use cpm_harness::report::{html, junit};
use std::path::Path;

fn fixture() -> Summary {
    let text = std::fs::read_to_string("tests/fixtures/summary.json").unwrap();
    serde_json::from_str(&text).expect("the fixture follows the schema")
}

fn console(s: &Summary, styles: Styles, v: Verbosity) -> String {
    let mut out = String::new();
    for c in &s.cases {
        for l in case_lines(c, styles, v) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out.push_str(&s.counts.line());
    out.push('\n');
    out
}

#[test]
fn console_plain() {
    let s = fixture();
    insta::assert_snapshot!(console(&s, Styles { color: false }, Verbosity::Normal));
}

#[test]
fn console_verbose() {
    let s = fixture();
    insta::assert_snapshot!(console(&s, Styles { color: false }, Verbosity::Verbose));
}

#[test]
fn console_quiet_is_the_summary_line_only() {
    let s = fixture();
    assert_eq!(
        console(&s, Styles { color: false }, Verbosity::Quiet),
        "1 passed, 1 failed, 0 inconc, 1 error, 2 skipped\n"
    );
}

#[test]
fn console_colored() {
    colored::control::set_override(true);
    let s = fixture();
    let out = console(&s, Styles { color: true }, Verbosity::Normal);
    // Verdicts coloured: green pass, bold red fail, bold magenta error.
    assert!(out.contains("\u{1b}[32mpass  \u{1b}[0m"), "{out:?}");
    assert!(out.contains("\u{1b}[1;31mfail  \u{1b}[0m"), "{out:?}");
    assert!(out.contains("\u{1b}[1;35merror \u{1b}[0m"), "{out:?}");
    insta::assert_snapshot!(out.replace('\u{1b}', "␛"));
}

#[test]
fn plain_console_has_no_escape_sequences() {
    let s = fixture();
    let out = console(&s, Styles { color: false }, Verbosity::Verbose);
    assert!(!out.contains('\u{1b}'));
}

#[test]
fn junit_xml() {
    let s = fixture();
    insta::assert_snapshot!(junit::render(&s).unwrap());
}

#[test]
fn html_index() {
    let s = fixture();
    insta::assert_snapshot!(html::index(&s));
}

#[test]
fn html_case_page_with_failures() {
    let s = fixture();
    insta::assert_snapshot!(html::case_page(&s, &s.cases[1]));
}

#[test]
fn html_escapes_everything_the_sut_sent() {
    let s = fixture();
    let page = html::case_page(&s, &s.cases[1]);
    // The SUT's markup (a header, an SDP line, a note, evidence) only ever appears escaped.
    assert!(!page.contains("<script"), "unescaped script in the page");
    assert!(!page.contains("<b>bold</b>"));
    assert!(page.contains("X-Note: &lt;script&gt;document.title=&#39;injected&#39;&lt;/script&gt;"));
    assert!(page.contains("a=x-note: &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("sut: stderr: &lt;script&gt;alert(&#39;note&#39;)&lt;/script&gt;"));
    // Scripts are forbidden outright as well.
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    let index = html::index(&s);
    assert!(!index.contains("<script"));
}

#[test]
fn html_draws_failed_rows_and_steps_red_and_missing_steps() {
    let s = fixture();
    let page = html::case_page(&s, &s.cases[1]);
    // Two observed rows cited by failing checks (the 200-2 and x's opening of L2).
    assert_eq!(
        page.matches("<g class=\"row sip failed\" data-row").count(),
        1
    );
    assert_eq!(
        page.matches("<g class=\"row open failed\" data-row")
            .count(),
        1
    );
    // The expected ladder: 200-2 failed, L2-open and L3-open never observed.
    assert_eq!(
        page.matches("class=\"row sip failed\" data-step").count(),
        1
    );
    assert_eq!(page.matches("class=\"row open missing failed\"").count(), 2);
    // Links dashed in their opening direction: x (col 2) → pf-a (col 1) leaves x's lifeline.
    assert!(page.contains("FAILED: LINK-DIR"));
    // No external asset.
    for needle in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!page.contains(needle), "{needle}");
    }
}

/// The findings become text in one place: every evidence line of a failing check reads the
/// same in `summary.json`, on the console, in JUnit and in HTML.
#[test]
fn every_reporter_prints_the_same_evidence_lines() {
    use cpm_harness::engine::Verdict;
    let s = fixture();
    let c = &s.cases[1];
    let console = case_lines(c, Styles { color: false }, Verbosity::Verbose).join("\n");
    let junit = junit::render(&s).unwrap();
    let page = html::case_page(&s, c);
    let json = serde_json::to_value(c).unwrap();
    let html_esc = |t: &str| cpm_harness::report::svg::esc(t);
    let xml_esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    for (k, chk) in c.checks.iter().enumerate() {
        let lines = chk.evidence();
        assert_eq!(json["checks"][k]["evidence"], serde_json::json!(lines));
        if chk.verdict != Verdict::Fail {
            continue;
        }
        assert!(!lines.is_empty());
        for l in &lines {
            assert!(console.contains(l.as_str()), "console lacks {l}");
            assert!(junit.contains(&xml_esc(l)), "junit lacks {l}");
            assert!(page.contains(&html_esc(l)), "html lacks {l}");
        }
    }
}

#[test]
fn summary_round_trips() {
    let s = fixture();
    let back: Summary = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}

/// xmllint; when it is missing the test does not run (a failure under CI).
pub fn xmllint() -> Option<std::path::PathBuf> {
    common::require_tool("xmllint")
}

#[test]
fn junit_xml_validates_against_the_jenkins_and_gitlab_structure() {
    let Some(tool) = xmllint() else { return };
    let s = fixture();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("junit.xml");
    std::fs::write(&f, junit::render(&s).unwrap()).unwrap();
    let out = std::process::Command::new(&tool)
        .args(["--noout", "--schema"])
        .arg(schema())
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And a document that lacks what CI reads is rejected (the schema is not vacuous).
    let bad = dir.path().join("bad.xml");
    std::fs::write(
        &bad,
        "<testsuites><testsuite><testcase classname=\"c\"/></testsuite></testsuites>",
    )
    .unwrap();
    let out = std::process::Command::new(tool)
        .args(["--noout", "--schema"])
        .arg(schema())
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

fn schema() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit.xsd")
}

/// Time runs down the observed ladder: its rows are drawn in the order they were captured
/// (the fixture's model keeps them in causal order, where a 200 at 412 ms comes before one at
/// 9 ms).
#[test]
fn observed_rows_are_drawn_in_time_order() {
    let s = fixture();
    let c = &s.cases[1];
    let model: Vec<f64> = c
        .ladder
        .as_ref()
        .unwrap()
        .rows
        .iter()
        .map(|r| r.t_ms)
        .collect();
    assert!(
        model.windows(2).any(|w| w[1] < w[0]),
        "the fixture keeps a causal order that goes back in time"
    );
    let page = html::case_page(&s, c);
    let drawn = common::drawn_times(&page);
    assert_eq!(drawn.len(), model.len());
    assert!(
        drawn.windows(2).all(|w| w[0] <= w[1]),
        "times go back: {drawn:?}"
    );
    assert!(page.contains("in the order they were captured"));
}

/// Evidence wraps where a line has no room, inside a long token if it must, but never splits
/// a word that fits (`word-break: break-all` drew "po rt" and "LINK- TARGET").
#[test]
fn evidence_text_does_not_break_words() {
    let s = fixture();
    for page in [html::case_page(&s, &s.cases[1]), html::index(&s)] {
        assert!(!page.contains("break-all"), "break-all in the CSS");
        assert!(!page.contains("hyphens:auto"));
        assert!(page.contains(".ev li{font-family:ui-monospace,\"DejaVu Sans Mono\",Menlo,monospace;font-size:12px;overflow-wrap:anywhere;white-space:pre-wrap}"));
    }
}
