//! The check catalogue lives in the repository: `docs/checks.md` is generated from
//! `src/engine/catalogue.rs` and kept in sync, every check has an entry and a fault that
//! proves it, every reference a report prints is the catalogue's, and nothing in the product
//! points at files outside the repository or at rule numbers defined elsewhere.
//!
//! `UPDATE_CATALOGUE=1 cargo test --test catalogue` rewrites `docs/checks.md` (as does
//! `cpm-harness checks --markdown > docs/checks.md`).

use cpm_harness::engine::catalogue::{markdown, Family, CATALOGUE};
use cpm_harness::engine::{CheckId, CheckResult, Verdict};
use cpm_harness::entity::Fault;
use cpm_harness::report::model::Summary;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn docs_checks_md_is_the_generated_catalogue() {
    let path = root().join("docs/checks.md");
    let want = markdown();
    if std::env::var("UPDATE_CATALOGUE").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "docs/checks.md differs from the catalogue in src/engine/catalogue.rs; regenerate it with \
         `UPDATE_CATALOGUE=1 cargo test --test catalogue` (or `cpm-harness checks --markdown > \
         docs/checks.md`) and commit it"
    );
}

#[test]
fn every_check_has_an_entry_sources_and_a_fault_that_proves_it() {
    for &id in CheckId::EVERY {
        let n = CATALOGUE.iter().filter(|e| e.id == id).count();
        assert_eq!(n, 1, "{id}: {n} catalogue entries");
        let e = id.entry();
        assert!(!e.what.trim().is_empty() && !e.title.is_empty(), "{id}");
    }
    assert_eq!(CATALOGUE.len(), CheckId::EVERY.len());
    for id in CheckId::ALL {
        let e = id.entry();
        assert_ne!(id.family(), Family::Harness, "{id}");
        assert!(
            !e.rfc.is_empty() || !e.patent.is_empty(),
            "{id}: no normative source"
        );
        for r in e.rfc {
            assert!(
                r.starts_with("RFC ") && r.contains(" §"),
                "{id}: `{r}` is not an RFC section"
            );
        }
        for p in e.patent {
            assert!(
                p.starts_with("FIG ") || p.starts_with('S'),
                "{id}: `{p}` is not a patent figure or step"
            );
        }
        assert!(
            !id.faults().is_empty(),
            "{id}: no reference-SUT fault makes it fail (add one to src/entity/fault.rs and to \
             the mutant table)"
        );
    }
    // And every conformance fault targets a check of the catalogue.
    for f in Fault::ALL {
        let id = CheckId::parse(f.target_check());
        assert!(
            id.is_some_and(|id| CheckId::ALL.contains(&id)),
            "fault {} targets {:?}, not a check",
            f.name(),
            f.target_check()
        );
    }
}

#[test]
fn every_reference_a_report_prints_resolves_to_the_catalogue() {
    let doc = std::fs::read_to_string(root().join("docs/checks.md")).unwrap();
    for &id in CheckId::EVERY {
        let r = CheckResult::new(id, Verdict::Pass, Vec::new());
        assert_eq!(r.reference, id.entry().reference());
        assert!(doc.contains(&format!("\n### {id}\n")), "{id}: no section");
        assert!(
            doc.contains(&format!("Reference printed in reports: `{}`", r.reference)),
            "{id}: reference not in docs/checks.md"
        );
        // The JSON a reader gets carries the same reference.
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["reference"], r.reference.as_str());
        assert_eq!(v["id"], id.as_str());
    }
    // The report fixture (what the report tests render) uses the catalogue's references.
    let text = std::fs::read_to_string(root().join("tests/fixtures/summary.json")).unwrap();
    let s: Summary = serde_json::from_str(&text).unwrap();
    for c in s.cases.iter().flat_map(|c| &c.checks) {
        assert_eq!(c.reference, c.id.reference(), "{}", c.id);
    }
}

/// Files of the product: sources, docs, the README, the suites and profiles, the interop
/// scenarios, scripts, CI and fuzz targets.
fn product_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name()
                    .is_some_and(|n| n == "target" || n == "corpus")
                {
                    continue;
                }
                walk(&p, out);
            } else if p.extension().is_some_and(|x| {
                ["rs", "md", "yaml", "yml", "sh", "xml", "cfg"].contains(&x.to_str().unwrap_or(""))
            }) || p.file_name().is_some_and(|n| n == "run")
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for d in [
        "src", "docs", "suites", "profiles", "interop", "scripts", ".ci", "fuzz",
    ] {
        walk(&root().join(d), &mut out);
    }
    for f in ["README.md", "ARCHITECTURE.md"] {
        out.push(root().join(f));
    }
    out
}

/// Where a token that looks like a rule id is something else: (file, token, why).
const NOT_RULE_IDS: &[(&str, &str, &str)] = &[
    (
        "src/report/svg.rs",
        "M0",
        "SVG path data (`M0,0 L10,5 L0,10 z`)",
    ),
    ("src/report/svg.rs", "L0", "SVG path data"),
    ("src/report/svg.rs", "L10", "SVG path data"),
];

/// A token shaped like rule ids defined outside this repository (`A1`, `D13`, `J5`, `S2`): a capital A–P or S
/// and one or two digits. The links L1–L4 are the repository's own names, and `F<n>` followed
/// by `/` or `-` is a case or suite-step id of figure n.
fn rule_like(tok: &str, next: Option<char>) -> bool {
    let b = tok.as_bytes();
    let shaped = (2..=3).contains(&b.len())
        && (b[0].is_ascii_uppercase() && (b[0] <= b'P' || b[0] == b'S'))
        && b[1..].iter().all(u8::is_ascii_digit);
    if !shaped {
        return false;
    }
    let n: u32 = tok[1..].parse().unwrap_or(0);
    let link = b[0] == b'L' && (1..=4).contains(&n);
    let figure_id = b[0] == b'F' && (1..=7).contains(&n) && matches!(next, Some('/' | '-'));
    !(link || figure_id)
}

/// Names of planning material kept outside this repository (a user's checkout has none of
/// it), assembled from parts so this file does not itself contain what it forbids.
fn outside_names() -> Vec<String> {
    [
        ["protocol", "-notes"],
        ["shared", "/docs"],
        ["/work", "/shared"],
        ["found", "ers"],
        ["claims of ", "the flow"],
        ["claims", " 9"],
    ]
    .iter()
    .map(|p| p.concat())
    .collect()
}

#[test]
fn nothing_points_outside_the_repository_or_at_rule_ids_defined_elsewhere() {
    let mut bad = Vec::new();
    for path in product_files() {
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_ascii_lowercase();
            for needle in outside_names() {
                if lower.contains(needle.as_str()) {
                    bad.push(format!("{rel}:{}: `{needle}`: {line}", n + 1));
                }
            }
            let chars: Vec<char> = line.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                if !chars[i].is_ascii_alphanumeric() {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let tok: String = chars[start..i].iter().collect();
                let before_ok = start == 0 || !chars[start - 1].is_ascii_alphanumeric();
                if before_ok && rule_like(&tok, chars.get(i).copied()) {
                    let allowed = NOT_RULE_IDS.iter().any(|(f, t, _)| *f == rel && *t == tok);
                    if !allowed {
                        bad.push(format!("{rel}:{}: `{tok}`: {line}", n + 1));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "references to files outside the repository or to rule ids defined elsewhere (cite an \
         RFC section, a patent figure or step, or docs/checks.md instead):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scan_tells_rule_ids_from_the_repositorys_own_names() {
    for id in ["A1", "D13", "J5", "S2", "C11", "F3"] {
        assert!(rule_like(id, Some(')')), "{id}");
    }
    for (tok, next) in [
        ("L2", None),
        ("F3", Some('/')),
        ("F6", Some('-')),
        ("S106", None),
        ("B2BUA", None),
        ("RFC", None),
        ("X1", None),
    ] {
        assert!(!rule_like(tok, next), "{tok}");
    }
}
