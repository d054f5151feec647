//! JUnit XML (`junit.xml`) for CI: one `<testsuite>` per figure, one `<testcase>` per case
//! (`classname` `F<n>.<split>`, `name` the case id). A failing or inconclusive case carries a
//! `<failure>` and a harness error an `<error>`, each with the check ids as `type`, the first
//! check's id, reference and evidence as `message`, and every failing check's evidence as
//! text; a skipped or not-run case a `<skipped>` with the reason. `<system-out>` holds the
//! notes, and the normalized text ladder of a case that did not pass (`summary.json` keeps
//! no ladder of a passing case: its page draws it). Jenkins (junit plugin) and GitLab read this shape.

use super::model::{CaseReport, Summary};
use crate::engine::Verdict;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;
use std::time::Duration;

/// Renders the summary as JUnit XML.
pub fn render(s: &Summary) -> anyhow::Result<String> {
    let mut report = Report::new(format!("cpm-harness {}", s.run));
    let mut suites: BTreeMap<u8, TestSuite> = BTreeMap::new();
    let mut total = Duration::ZERO;
    let suite = |suites: &mut BTreeMap<u8, TestSuite>, fig: u8, title: Option<&str>| {
        suites.entry(fig).or_insert_with(|| {
            let name = match (title, fig) {
                (Some(t), _) => t.to_string(),
                (None, 0) => "other".to_string(),
                (None, n) => format!("FIG {n}"),
            };
            TestSuite::new(name)
        });
    };
    for c in &s.cases {
        suite(
            &mut suites,
            c.figure,
            c.expected.as_ref().map(|e| e.title.as_str()),
        );
        let t = Duration::from_millis(c.duration_ms);
        total += t;
        let ts = suites.get_mut(&c.figure).expect("inserted above");
        ts.time = Some(ts.time.unwrap_or_default() + t);
        ts.add_test_case(test_case(c));
    }
    for k in &s.skipped {
        suite(&mut suites, k.figure, None);
        let mut status = TestCaseStatus::skipped();
        status.set_message(k.reason.as_str());
        let mut tc = TestCase::new(k.id.as_str(), status);
        tc.set_classname(classname(k.figure, split_of(&k.id)));
        suites
            .get_mut(&k.figure)
            .expect("inserted above")
            .add_test_case(tc);
    }
    report.set_time(total);
    report.add_test_suites(suites.into_values());
    Ok(report.to_string()?)
}

fn split_of(id: &str) -> &str {
    id.split('/').nth(1).unwrap_or("none")
}

fn classname(fig: u8, split: &str) -> String {
    format!("F{fig}.{split}")
}

fn test_case(c: &CaseReport) -> TestCase {
    let status = match c.verdict {
        Verdict::Pass | Verdict::NotObservable => TestCaseStatus::success(),
        v => {
            let kind = if v == Verdict::Error {
                NonSuccessKind::Error
            } else {
                NonSuccessKind::Failure
            };
            let mut st = TestCaseStatus::non_success(kind);
            let failing: Vec<_> = c.failing_checks().collect();
            let ids: Vec<&str> = failing.iter().map(|k| k.id.as_str()).collect();
            let message = match failing.first() {
                Some(k) => format!(
                    "{} {} [{}]: {}",
                    v.as_str(),
                    k.id,
                    k.reference,
                    k.evidence().first().map(String::as_str).unwrap_or("")
                ),
                None => format!("{}: no check decided the case", v.as_str()),
            };
            let mut text = String::new();
            for k in &failing {
                text.push_str(&format!(
                    "{} {} [{}]\n",
                    k.verdict.as_str(),
                    k.id,
                    k.reference
                ));
                for e in &k.evidence() {
                    text.push_str(&format!("    {e}\n"));
                }
            }
            st.set_message(message);
            st.set_type(if ids.is_empty() {
                v.as_str().to_string()
            } else {
                ids.join(",")
            });
            st.set_description(text);
            st
        }
    };
    let mut tc = TestCase::new(c.id.as_str(), status);
    tc.set_classname(classname(c.figure, &c.split));
    tc.set_time(Duration::from_millis(c.duration_ms));
    let mut out = String::new();
    if let Some(l) = &c.ladder {
        out.push_str(&l.text);
    }
    for n in &c.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    if !out.is_empty() {
        tc.set_system_out(out);
    }
    tc
}
