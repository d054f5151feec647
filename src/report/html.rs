//! The HTML report: `index.html` (every case with its verdict, failing checks, skipped cases)
//! and `cases/<case>.html` per case (the observed ladder beside the figure's expected one,
//! the check table, notes, the text ladder). Self-contained: inline CSS, inline SVG, no
//! script, no external asset; a Content-Security-Policy forbids scripts outright, and every
//! string is escaped (what the SUT sent is text, never markup).

use super::model::{CaseReport, Summary};
use super::svg::{self, esc};
use crate::engine::Verdict;
use std::fmt::Write as _;

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:20px 28px;color:#1b1b1b;background:#fff}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:22px 0 8px}
a{color:#0b57d0;text-decoration:none}a:hover{text-decoration:underline}
code,pre,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:12px}
.meta{color:#555;margin:0 0 12px}
.v{display:inline-block;min-width:52px;text-align:center;border-radius:4px;padding:1px 6px;font-weight:600;font-size:12px;color:#fff}
.v.pass{background:#2e7d32}.v.fail{background:#c62828}.v.inconc{background:#b26a00}.v.error{background:#6a1b9a}
.v.not-observable,.v.skipped{background:#9e9e9e}
table{border-collapse:collapse;margin:6px 0}th,td{border-bottom:1px solid #e3e3e3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:600}
tr.fail td,tr.error td{background:#fff5f5}
.counts span{margin-right:14px}
.failures{border-left:4px solid #c62828;background:#fff5f5;padding:6px 12px;margin:8px 0}
.failures p{margin:4px 0}
.ladders{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}
figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}
.legend{color:#555;font-size:12px}
.ev{margin:0;padding-left:16px}.ev li{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:12px;word-break:break-all}
svg.ladder{font:11px ui-monospace,"DejaVu Sans Mono",Menlo,monospace;background:#fcfcfc;border:1px solid #e3e3e3}
svg .col rect{fill:#eef2f7;stroke:#9aa7b8}svg .col.sut rect{fill:#fff3cd;stroke:#c9a227}
svg .col .name{text-anchor:middle;font-weight:700;font-size:12px}svg .col .sub{text-anchor:middle;fill:#555;font-size:10px}
svg .life{stroke:#bbb;stroke-width:1}
svg .row .hit{fill:transparent}svg .row:hover .hit{fill:#e8f0fe}
svg .arrow{stroke:#222;stroke-width:1.4;fill:none}
svg .open .arrow{stroke-width:2.2;stroke-dasharray:8 4}
svg .msrp .arrow{stroke-dasharray:4 3}
svg .close .arrow{stroke:#999;stroke-dasharray:1 3}
svg .label{text-anchor:middle;fill:#222}svg .t{fill:#888;font-size:10px}
svg .failed .arrow{stroke:#c62828;stroke-width:2.4}svg .failed .label{fill:#c62828;font-weight:700}
svg .missing .arrow{stroke:#999;stroke-dasharray:2 4}svg .missing .label{fill:#999}
svg .missing.failed .arrow{stroke:#c62828;stroke-dasharray:2 4;stroke-width:1.6}svg .missing.failed .label{fill:#c62828;font-weight:400}
svg .hidden .arrow{stroke:#ccc}svg .hidden .label{fill:#aaa}
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        esc(title)
    )
}

fn verdict_badge(v: Verdict) -> String {
    format!(
        "<span class=\"v {}\">{}</span>",
        v.as_str().replace(' ', "-"),
        v.as_str()
    )
}

fn counts(s: &Summary) -> String {
    let c = &s.counts;
    format!(
        "<p class=\"counts\"><span>{} passed</span><span>{} failed</span><span>{} inconc</span><span>{} error</span><span>{} skipped</span></p>\n",
        c.passed, c.failed, c.inconc, c.error, c.skipped
    )
}

/// `index.html`: every case, its verdict and failing checks, and the skipped ones.
pub fn index(s: &Summary) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "<h1>cpm-harness report: {}</h1>", esc(&s.run));
    let mut meta = format!("profile {}", esc(&s.profile));
    if let Some(p) = &s.partition {
        let _ = write!(meta, " · partition {}", esc(p));
    }
    if !s.merged_from.is_empty() {
        let _ = write!(meta, " · merged from {}", esc(&s.merged_from.join(", ")));
    }
    let _ = writeln!(
        b,
        "<p class=\"meta\">{meta} · summary.json schema {}</p>",
        s.schema_version
    );
    for n in &s.run_notes {
        let _ = writeln!(
            b,
            "<p class=\"run-note fail\"><strong>Run:</strong> {}</p>",
            esc(n)
        );
    }
    b.push_str(&counts(s));
    b.push_str("<table class=\"cases\">\n<tr><th>verdict</th><th>case</th><th>figure</th><th>SUT plays</th><th>ordering</th><th>time</th><th>failing checks</th></tr>\n");
    for c in &s.cases {
        let failing: Vec<String> = c
            .failing_checks()
            .map(|k| format!("<code>{}</code>", esc(k.id.as_str())))
            .collect();
        let _ = writeln!(
            b,
            "<tr class=\"{}\"><td>{}</td><td><a href=\"cases/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{:.2} s</td><td>{}</td></tr>",
            c.verdict.as_str().replace(' ', "-"),
            verdict_badge(c.verdict),
            esc(&c.page_name()),
            esc(&c.id),
            c.figure,
            esc(&c.split),
            esc(&c.ordering),
            c.duration_ms as f64 / 1000.0,
            failing.join(" ")
        );
    }
    b.push_str("</table>\n");
    if !s.skipped.is_empty() {
        b.push_str(
            "<h2>Skipped</h2>\n<table class=\"skipped\">\n<tr><th>case</th><th>reason</th></tr>\n",
        );
        for k in &s.skipped {
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&k.id),
                esc(&k.reason)
            );
        }
        b.push_str("</table>\n");
    }
    page(&format!("cpm-harness {}", s.run), &b)
}

/// `cases/<case>.html`: one case.
pub fn case_page(s: &Summary, c: &CaseReport) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<p><a href=\"../index.html\">← all cases of {}</a></p>",
        esc(&s.run)
    );
    let _ = writeln!(b, "<h1>{} {}</h1>", esc(&c.id), verdict_badge(c.verdict));
    let title = c
        .expected
        .as_ref()
        .map(|e| e.title.clone())
        .unwrap_or_else(|| format!("FIG {}", c.figure));
    let _ = writeln!(
        b,
        "<p class=\"meta\">{} · SUT plays {} · ordering {} · {:.2} s · profile {}</p>",
        esc(&title),
        esc(&c.split),
        esc(&c.ordering),
        c.duration_ms as f64 / 1000.0,
        esc(&s.profile)
    );
    let failing: Vec<_> = c.failing_checks().collect();
    if !failing.is_empty() {
        b.push_str("<div class=\"failures\">\n");
        for k in &failing {
            let _ = writeln!(
                b,
                "<p>{} <b>{}</b> [{}] <span class=\"mono\">{}</span></p>",
                verdict_badge(k.verdict),
                esc(k.id.as_str()),
                esc(&k.reference),
                esc(k.evidence().first().map(String::as_str).unwrap_or(""))
            );
        }
        b.push_str("</div>\n");
    }
    b.push_str("<div class=\"ladders\">\n");
    match &c.ladder {
        Some(l) => {
            let _ = writeln!(
                b,
                "<figure><figcaption>Observed ({} rows; hover an arrow for its message)</figcaption>\n{}\n</figure>",
                l.rows.len(),
                svg::observed(l)
            );
        }
        None => b.push_str(
            "<figure><figcaption>Observed</figcaption><p>Nothing was recorded to draw.</p></figure>\n",
        ),
    }
    if let Some(e) = &c.expected {
        let sut: Vec<String> = if c.split == "none" {
            Vec::new()
        } else {
            c.split.split('+').map(str::to_string).collect()
        };
        let _ = writeln!(
            b,
            "<figure><figcaption>Expected: {}</figcaption>\n{}\n</figure>",
            esc(&e.title),
            svg::expected(e, &sut, c.verdict != Verdict::Pass)
        );
    }
    b.push_str("</div>\n");
    b.push_str("<p class=\"legend\">Solid: SIP. Thick dashed: an MSRP link opened (TCP), pointing away from the side that opened it. Thin dashed: MSRP requests and responses (chunks of one message are one row). Dotted: a link closed. Red: cited by a failing check, or a step of the figure that never happened. Yellow columns: the SUT. Times in ms since the case started.</p>\n");
    b.push_str("<h2>Checks</h2>\n<table class=\"checks\">\n<tr><th>check</th><th>verdict</th><th>reference</th><th>evidence</th></tr>\n");
    for k in &c.checks {
        let ev: String = k
            .evidence()
            .iter()
            .map(|e| format!("<li>{}</li>", esc(e)))
            .collect();
        // The id names its section of docs/checks.md; hovering it shows what it verifies.
        let _ = writeln!(
            b,
            "<tr class=\"{}\"><td><code title=\"{} (docs/checks.md#{})\">{}</code></td><td>{}</td><td>{}</td><td><ul class=\"ev\">{ev}</ul></td></tr>",
            k.verdict.as_str().replace(' ', "-"),
            esc(k.id.entry().what),
            esc(&k.id.anchor()),
            esc(k.id.as_str()),
            verdict_badge(k.verdict),
            esc(&k.reference)
        );
    }
    b.push_str("</table>\n");
    if !c.notes.is_empty() {
        b.push_str("<h2>Notes</h2>\n<ul class=\"ev\">\n");
        for n in &c.notes {
            let _ = writeln!(b, "<li>{}</li>", esc(n));
        }
        b.push_str("</ul>\n");
    }
    if let Some(l) = &c.ladder {
        let _ = writeln!(
            b,
            "<details><summary>The ladder as text (as <code>cpm-harness show</code> draws it)</summary>\n<pre>{}</pre>\n</details>",
            esc(&l.text)
        );
    }
    page(&c.id, &b)
}
