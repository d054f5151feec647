//! The HTML report: `index.html` (every case with its verdict, failing checks, skipped cases)
//! and `cases/<case>.html` per case (the observed ladder beside the figure's expected one,
//! the check table, notes, the text ladder). Self-contained: inline CSS, inline SVG, no
//! script, no external asset; a Content-Security-Policy forbids scripts outright, and every
//! string is escaped (what the SUT sent is text, never markup).

use super::model::{file_stem, CaseReport, Summary};
use super::pctr::{split_order, Pctr, Results};
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
.ev{margin:0;padding-left:16px}.ev li{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:12px;overflow-wrap:anywhere;white-space:pre-wrap}
.mono{overflow-wrap:anywhere}
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

/// The index's own styles (the conformance test report's sections).
const INDEX_CSS: &str = r#"nav.toc{margin:6px 0 10px}nav.toc a{margin-right:12px}
section{margin:0 0 6px}table.kv th{width:150px}
.tag{display:inline-block;border-radius:4px;padding:0 5px;font-size:11px;background:#e8eaed;color:#333;margin-left:4px}
td.none{color:#999}td.cell{white-space:nowrap}.n{display:inline-block;margin-right:6px}
.n.pass{color:#2e7d32}.n.fail{color:#c62828;font-weight:600}.n.inconc{color:#b26a00}.n.error{color:#6a1b9a;font-weight:600}.n.skipped{color:#777}
.bad{color:#c62828}details.ids summary{cursor:pointer}details.ids code{display:block}
"#;

fn page(title: &str, body: &str) -> String {
    page_with(title, body, "")
}

fn page_with(title: &str, body: &str, css: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}{css}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
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

/// `index.html`: the conformance test report of the run (identification, PICS, results by
/// figure × SUT role, failed checks with evidence and reference, skipped cases by reason),
/// then every case with its verdict and failing checks.
pub fn index(s: &Summary) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "<h1>Conformance test report: {}</h1>", esc(&s.profile));
    let mut meta = format!("run {} · profile {}", esc(&s.run), esc(&s.profile));
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
    b.push_str("<nav class=\"toc\"><a href=\"#identification\">Identification</a><a href=\"#pics\">PICS</a><a href=\"#results\">Results by figure and SUT role</a><a href=\"#failures\">Failed checks</a><a href=\"#skipped\">Skipped cases</a><a href=\"#cases\">Cases</a></nav>\n");
    let results = Results::of(&s.cases, &s.skipped);
    identification(&mut b, s.pctr.as_ref());
    pics_section(&mut b, s.pctr.as_ref());
    results_table(&mut b, &results);
    failures(&mut b, &results);
    skipped_groups(&mut b, &results);
    b.push_str("<section id=\"cases\">\n<h2>6. Cases</h2>\n");
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
            split_label(&c.split),
            esc(&c.ordering),
            c.duration_ms as f64 / 1000.0,
            failing.join(" ")
        );
    }
    b.push_str("</table>\n</section>\n");
    page_with(
        &format!("cpm-harness {} — {}", s.run, s.profile),
        &b,
        INDEX_CSS,
    )
}

/// A split, with the self-check labelled as such.
fn split_label(split: &str) -> String {
    if split == "none" {
        "none <span class=\"tag\" title=\"the harness played every role; the SUT took no part\">self-check</span>".into()
    } else {
        esc(split)
    }
}

fn kv(b: &mut String, k: &str, v: &str) {
    let _ = writeln!(b, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
}

fn identification(b: &mut String, p: Option<&Pctr>) {
    b.push_str("<section id=\"identification\">\n<h2>1. Identification</h2>\n");
    let Some(p) = p else {
        b.push_str("<p>This summary carries no identification (it was not written by <code>cpm-harness run</code> or <code>merge</code>).</p>\n</section>\n");
        return;
    };
    b.push_str("<table class=\"kv sut\">\n");
    kv(b, "SUT profile", &format!("<b>{}</b>", esc(&p.sut.profile)));
    if let Some(a) = &p.sut.about {
        kv(b, "about", &esc(a));
    }
    kv(
        b,
        "profile file",
        &format!("<code>{}</code>", esc(&p.sut.origin)),
    );
    kv(b, "access", &format!("<code>{}</code>", esc(&p.sut.access)));
    match &p.sut.version {
        None => kv(
            b,
            "SUT version",
            "<span class=\"none\">no version-command in the profile</span>",
        ),
        Some(v) => {
            let cmd = format!("<code>{}</code>", esc(&v.command.join(" ")));
            let val = match (&v.output, &v.error) {
                (Some(o), _) => format!("<pre>{}</pre>{cmd}", esc(o)),
                (None, Some(e)) => format!(
                    "<span class=\"bad\">the version command failed: {}</span><br>{cmd}",
                    esc(e)
                ),
                (None, None) => cmd,
            };
            kv(b, "SUT version", &val);
        }
    }
    kv(
        b,
        "harness",
        &format!(
            "cpm-harness {} · commit <code>{}</code>{}",
            esc(&p.harness.version),
            esc(&p.harness.commit),
            match p.harness.dirty.as_str() {
                "true" => " <span class=\"bad\">(with uncommitted changes)</span>".to_string(),
                "false" => String::new(),
                d => format!(" (uncommitted changes: {})", esc(d)),
            }
        ),
    );
    kv(
        b,
        "date (UTC)",
        &format!("<span class=\"date\">{}</span>", esc(&p.date)),
    );
    kv(
        b,
        "machine",
        &format!(
            "{} · {} · {} CPUs",
            esc(&p.machine.hostname),
            esc(&p.machine.os),
            p.machine.cpus
        ),
    );
    if !p.shards.is_empty() {
        let list: Vec<String> = p
            .shards
            .iter()
            .map(|sh| {
                format!(
                    "{}{} · {} · {}",
                    esc(&sh.run),
                    sh.partition
                        .as_deref()
                        .map(|x| format!(" (partition {})", esc(x)))
                        .unwrap_or_default(),
                    esc(&sh.date),
                    esc(&sh.machine.hostname)
                )
            })
            .collect();
        kv(b, "shards", &list.join("<br>"));
    }
    b.push_str("</table>\n<h3>Inputs</h3>\n<table class=\"inputs\">\n<tr><th>file</th><th>what</th><th>SHA-256</th></tr>\n");
    for i in &p.inputs {
        let _ = writeln!(
            b,
            "<tr><td><code>{}</code></td><td>{}</td><td><code class=\"digest\">{}</code></td></tr>",
            esc(&i.origin),
            esc(&i.kind),
            esc(&i.sha256)
        );
    }
    b.push_str("</table>\n</section>\n");
}

fn pics_section(b: &mut String, p: Option<&Pctr>) {
    b.push_str("<section id=\"pics\">\n<h2>2. PICS as declared</h2>\n");
    let Some(p) = p else {
        b.push_str("<p class=\"none\">not recorded</p>\n</section>\n");
        return;
    };
    b.push_str("<table class=\"pics\">\n<tr><th>item</th><th>declared</th></tr>\n");
    for i in &p.pics {
        let v = match &i.values {
            Some(v) => format!("<code>{}</code>", esc(&v.join(", "))),
            None => "<span class=\"none\">every value (not listed)</span>".into(),
        };
        let _ = writeln!(
            b,
            "<tr><td><code>{}</code></td><td>{v}</td></tr>",
            esc(&i.item)
        );
    }
    b.push_str("</table>\n</section>\n");
}

fn results_table(b: &mut String, r: &Results) {
    b.push_str("<section id=\"results\">\n<h2>3. Results by figure and SUT role</h2>\n");
    if r.verdicts.is_empty() {
        b.push_str("<p class=\"none\">No case.</p>\n</section>\n");
        return;
    }
    let mut splits: Vec<&str> = r.verdicts.iter().map(|c| c.split.as_str()).collect();
    splits.sort_by_key(|s| split_order(s));
    splits.dedup();
    let mut figures: Vec<u8> = r.verdicts.iter().map(|c| c.figure).collect();
    figures.sort();
    figures.dedup();
    b.push_str("<table class=\"matrix\">\n<tr><th>figure</th>");
    for sp in &splits {
        let _ = write!(b, "<th>{}</th>", split_label(sp));
    }
    b.push_str("</tr>\n");
    for f in figures {
        let _ = write!(b, "<tr><th>FIG {f}</th>");
        for sp in &splits {
            match r.verdicts.iter().find(|c| c.figure == f && c.split == *sp) {
                None => b.push_str("<td class=\"none\">—</td>"),
                Some(c) => {
                    let mut cell = String::new();
                    for (n, class, word) in [
                        (c.passed, "pass", "pass"),
                        (c.failed, "fail", "fail"),
                        (c.inconc, "inconc", "inconc"),
                        (c.error, "error", "error"),
                        (c.skipped, "skipped", "skipped"),
                    ] {
                        if n > 0 {
                            let _ = write!(cell, "<span class=\"n {class}\">{n} {word}</span>");
                        }
                    }
                    let _ = write!(b, "<td class=\"cell\">{cell}</td>");
                }
            }
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</table>\n<p class=\"legend\">Columns: the roles the SUT played (joined by +). <i>self-check</i>: the harness played every role and the SUT took no part; those cases check the harness, not the SUT.</p>\n</section>\n");
}

fn failures(b: &mut String, r: &Results) {
    b.push_str("<section id=\"failures\">\n<h2>4. Failed checks</h2>\n");
    if r.failures.is_empty() {
        b.push_str("<p>No check failed.</p>\n</section>\n");
        return;
    }
    b.push_str("<table class=\"failed\">\n<tr><th>case</th><th>check</th><th>verdict</th><th>reference</th><th>evidence</th></tr>\n");
    for f in &r.failures {
        let ev: String = f
            .evidence
            .iter()
            .map(|e| format!("<li>{}</li>", esc(e)))
            .collect();
        let link = esc(&format!("docs/checks.md#{}", f.anchor));
        let _ = writeln!(
            b,
            "<tr class=\"{}\"><td><a href=\"cases/{}.html\">{}</a></td><td><a href=\"{link}\" title=\"{}\"><code>{}</code></a></td><td>{}</td><td>{}<a class=\"ref\" href=\"{link}\">{link}</a></td><td><ul class=\"ev\">{ev}</ul></td></tr>",
            f.verdict.as_str().replace(' ', "-"),
            esc(&file_stem(&f.case)),
            esc(&f.case),
            esc(f.check.entry().what),
            esc(f.check.as_str()),
            verdict_badge(f.verdict),
            // A check whose reference is its catalogue entry (HARNESS) shows the link once.
            if f.reference == link {
                String::new()
            } else {
                format!("{}<br>", esc(&f.reference))
            },
        );
    }
    b.push_str("</table>\n</section>\n");
}

fn skipped_groups(b: &mut String, r: &Results) {
    b.push_str("<section id=\"skipped\">\n<h2>5. Skipped cases</h2>\n");
    if r.skipped.is_empty() {
        b.push_str("<p>No case was skipped.</p>\n</section>\n");
        return;
    }
    b.push_str("<table class=\"skipped\">\n<tr><th>reason</th><th>cases</th></tr>\n");
    for g in &r.skipped {
        let ids: String = g
            .cases
            .iter()
            .map(|id| format!("<code>{}</code>", esc(id)))
            .collect();
        let _ = writeln!(
            b,
            "<tr><td>{}{}</td><td><details class=\"ids\"><summary>{} case{}</summary>{ids}</details></td></tr>",
            esc(&g.reason),
            if g.not_run { " <span class=\"tag\">not run</span>" } else { "" },
            g.cases.len(),
            if g.cases.len() == 1 { "" } else { "s" },
        );
    }
    b.push_str("</table>\n</section>\n");
}

/// `cases/<case>.html`: one case. It names the run the case ran in, and links to the index
/// beside it: `merge` copies it into the merged report as it is.
pub fn case_page(s: &Summary, c: &CaseReport) -> String {
    let mut b = String::new();
    b.push_str("<p><a href=\"../index.html\">← all cases</a></p>\n");
    let _ = writeln!(b, "<h1>{} {}</h1>", esc(&c.id), verdict_badge(c.verdict));
    let title = c
        .expected
        .as_ref()
        .map(|e| e.title.clone())
        .unwrap_or_else(|| format!("FIG {}", c.figure));
    let _ = writeln!(
        b,
        "<p class=\"meta\">{} · SUT plays {} · ordering {} · {:.2} s · profile {} · run {}</p>",
        esc(&title),
        esc(&c.split),
        esc(&c.ordering),
        c.duration_ms as f64 / 1000.0,
        esc(&s.profile),
        esc(&s.run)
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
                "<figure><figcaption>Observed ({}; hover an arrow for its message)</figcaption>\n{}\n</figure>",
                crate::text::plural(l.rows.len(), "row"),
                svg::observed(l)
            );
        }
        None if c.verdict == Verdict::Pass => b.push_str(
            "<figure><figcaption>Observed</figcaption><p>A passing case's ladder is drawn on the page its run wrote, not kept in summary.json.</p></figure>\n",
        ),
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
    b.push_str("<p class=\"legend\">Solid: SIP. Thick dashed: an MSRP link opened (TCP), pointing away from the side that opened it. Thin dashed: MSRP requests and responses (chunks of one message are one row). Dotted: a link closed. Red: cited by a failing check, or a step of the figure that never happened. Yellow columns: the SUT. Observed rows run down the page in the order they were captured, the time on the left in ms since the case started (the text ladder below draws the causal order of <code>cpm-harness show</code>, without times).</p>\n");
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
