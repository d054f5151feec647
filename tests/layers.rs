//! The module graph has no cycle: every `crate::…` path in a module's code (comments aside)
//! is an edge from that module to the one it names, at the granularity of the top-level
//! modules and of `engine`'s, `capture`'s and `model`'s own modules. A cycle (say
//! `engine::case` → `capture::analyze` → `engine::case`) fails with the files that make it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules whose children are nodes of their own.
const SPLIT: [&str; 3] = ["engine", "capture", "model"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/engine/case.rs` → `engine::case`; `src/model/wire.rs` → `model::wire`;
/// `src/entity/node/relay.rs` → `entity`.
fn node_of(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let top = parts[0].clone();
    if SPLIT.contains(&top.as_str()) && parts.len() > 1 && parts[1] != "mod" {
        format!("{top}::{}", parts[1])
    } else {
        top
    }
}

/// The node a `crate::a::b::…` path names.
fn target(path: &str) -> Option<String> {
    let mut it = path.split("::").filter(|s| !s.is_empty());
    let top = it.next()?.to_string();
    let top_ok = top.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if !top_ok {
        return None;
    }
    if SPLIT.contains(&top.as_str()) {
        if let Some(sub) = it.next() {
            if sub.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Some(format!("{top}::{sub}"));
            }
        }
    }
    Some(top)
}

#[test]
fn the_module_graph_has_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in &all {
        let rel = f.strip_prefix(&src).unwrap();
        if rel == Path::new("main.rs") || rel == Path::new("lib.rs") {
            continue;
        }
        let from = node_of(rel);
        let text = std::fs::read_to_string(f).unwrap();
        let mut in_tests = false;
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("#[cfg(test)]") {
                in_tests = true;
            }
            if in_tests || code.starts_with("//") {
                continue;
            }
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                if let Some(t) = target(&rest[..end]) {
                    // A module's children are part of it; `engine` (its mod.rs) is the parent.
                    if t != from && !t.starts_with(&format!("{from}::")) {
                        edges
                            .entry(from.clone())
                            .or_default()
                            .entry(t)
                            .or_default()
                            .insert(rel.display().to_string());
                    }
                }
            }
        }
    }
    // A parent module and its children count as one for `use super::…`-free cross edges:
    // only edges between distinct nodes are checked. Find every cycle through DFS.
    let nodes: Vec<String> = edges.keys().cloned().collect();
    let mut cycles = Vec::new();
    for start in &nodes {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((n, path)) = stack.pop() {
            for next in edges
                .get(&n)
                .map(|m| m.keys().cloned().collect::<Vec<String>>())
                .unwrap_or_default()
            {
                // The parent of a split module (its mod.rs) and its children are one module.
                let parent_child = next.split("::").next() == Some(start.as_str())
                    || start.split("::").next() == Some(next.as_str());
                if next == *start && path.len() > 1 {
                    cycles.push(path.clone());
                } else if !path.contains(&next) && !parent_child && path.len() < 8 {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next, p));
                }
            }
        }
    }
    let shown: Vec<String> = cycles
        .iter()
        .map(|c| {
            let mut s = c.join(" → ");
            s.push_str(&format!(" → {}", c[0]));
            for w in c.windows(2) {
                s.push_str(&format!(
                    "\n    {} → {} in {:?}",
                    w[0], w[1], edges[&w[0]][&w[1]]
                ));
            }
            s
        })
        .collect();
    assert!(shown.is_empty(), "module cycles:\n{}", shown.join("\n"));
}
