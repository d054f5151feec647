//! `cpm-harness merge`: joins the `summary.json` of CI shards (`run --partition k/n`) into
//! one summary and renders every report from it, as if one run had executed them all.
//!
//! Cases are ordered by their plan index (the same in every shard of one plan), skipped
//! cases likewise; a case present in two inputs, inputs of another schema version or of
//! different profiles are errors (exit 2). Each case's page is copied from its shard's
//! `cases/` folder (a passing case's ladder is drawn there only, not in `summary.json`); a
//! page that is not there is drawn from the summary.

use super::model::{Counts, Summary, SCHEMA_VERSION};
use super::pctr::{Pctr, Shard};
use super::{coded, EXIT_USAGE};
use anyhow::anyhow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The summary files an input names: the file itself, `<dir>/summary.json`, or the
/// `summary.json` of every run folder directly inside `<dir>` (a shard's `--out`).
pub fn summary_files(input: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    if !input.is_dir() {
        return Err(anyhow!("{}: no such file or folder", input.display()));
    }
    let direct = input.join("summary.json");
    if direct.is_file() {
        return Ok(vec![direct]);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(input)
        .map_err(|e| anyhow!("{}: {e}", input.display()))?
        .flatten()
        .map(|e| e.path().join("summary.json"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(anyhow!(
            "{}: no summary.json in it or in a run folder inside it",
            input.display()
        ));
    }
    Ok(found)
}

/// Reads one summary, checking its schema version.
pub fn read_summary(path: &Path) -> anyhow::Result<Summary> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
    match v.get("schema_version").and_then(|x| x.as_u64()) {
        Some(n) if n == SCHEMA_VERSION as u64 => {}
        Some(n) => {
            return Err(anyhow!(
                "{}: schema_version {n}; this harness reads version {SCHEMA_VERSION} (rerun the shard with this version)",
                path.display()
            ))
        }
        None => return Err(anyhow!("{}: no schema_version: not a cpm-harness summary", path.display())),
    }
    serde_json::from_value(v).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Joins summaries into one (`run` = `run_name`).
pub fn merge(inputs: &[(PathBuf, Summary)], run_name: &str) -> anyhow::Result<Summary> {
    let Some((_, first)) = inputs.first() else {
        return Err(anyhow!("merge: no summary given"));
    };
    let mut cases = BTreeMap::new();
    let mut skipped = BTreeMap::new();
    let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
    for (path, s) in inputs {
        if s.profile != first.profile {
            return Err(anyhow!(
                "{}: profile {:?}, but {} has {:?}: shards of one run use one profile",
                path.display(),
                s.profile,
                inputs[0].0.display(),
                first.profile
            ));
        }
        for c in &s.cases {
            if let Some(other) = seen.insert(c.id.clone(), path) {
                return Err(anyhow!(
                    "case {} is in both {} and {}: shards must be disjoint",
                    c.id,
                    other.display(),
                    path.display()
                ));
            }
            cases.insert((c.index, c.id.clone()), c.clone());
        }
        for k in &s.skipped {
            // Profile-skipped cases are the same in every shard of one plan only when the
            // shards did not split them; keep one of each.
            skipped
                .entry((k.not_run, k.index, k.id.clone()))
                .or_insert_with(|| k.clone());
        }
    }
    // A case that ran in one shard is not also "not run" in another.
    let skipped: Vec<_> = skipped
        .into_values()
        .filter(|k| !seen.contains_key(&k.id))
        .collect();
    let cases: Vec<_> = cases.into_values().collect();
    let mut merged = Summary {
        schema_version: SCHEMA_VERSION,
        run: run_name.to_string(),
        profile: first.profile.clone(),
        partition: None,
        merged_from: inputs.iter().map(|(_, s)| s.run.clone()).collect(),
        counts: Counts::of(&cases, &skipped),
        run_notes: inputs
            .iter()
            .flat_map(|(_, s)| s.run_notes.iter().map(move |n| format!("{}: {n}", s.run)))
            .collect(),
        cases,
        skipped,
        pctr: merge_pctr(inputs)?,
    };
    merged.recount();
    Ok(merged)
}

/// The merged report's identification: the first shard's, which every other shard must
/// share (the same SUT identity, PICS, harness build and input digests: one run split up),
/// with the earliest date and each shard's run, date and machine.
fn merge_pctr(inputs: &[(PathBuf, Summary)]) -> anyhow::Result<Option<Pctr>> {
    let with: Vec<(&PathBuf, &Summary, &Pctr)> = inputs
        .iter()
        .filter_map(|(p, s)| s.pctr.as_ref().map(|r| (p, s, r)))
        .collect();
    let Some((first_path, _, first)) = with.first() else {
        return Ok(None);
    };
    if with.len() != inputs.len() {
        return Err(anyhow!(
            "{}: has a conformance test report (pctr) but other shards have none",
            first_path.display()
        ));
    }
    let mut out = (*first).clone();
    out.shards.clear();
    for (path, s, p) in &with {
        let differs = if p.sut != first.sut {
            Some("SUT identity (profile, about, access or version output)")
        } else if p.pics != first.pics {
            Some("PICS")
        } else if p.harness != first.harness {
            Some("harness build (version, commit)")
        } else if p.inputs != first.inputs {
            Some("input digests (suite files, profile)")
        } else {
            None
        };
        if let Some(what) = differs {
            return Err(anyhow!(
                "{}: its {what} differs from {}'s: shards of one run use one harness, suite and profile",
                path.display(),
                first_path.display()
            ));
        }
        if p.date < out.date {
            out.date = p.date.clone();
        }
        out.shards.push(Shard {
            run: s.run.clone(),
            partition: s.partition.clone(),
            date: p.date.clone(),
            machine: p.machine.clone(),
        });
    }
    Ok(Some(out))
}

/// `cpm-harness merge`: reads the inputs, writes the merged reports to `out`, returns the
/// merged summary. Unreadable or inconsistent inputs are usage errors (exit 2).
pub fn merge_command(inputs: &[PathBuf], out: &Path) -> anyhow::Result<Summary> {
    let mut read = Vec::new();
    for i in inputs {
        for f in summary_files(i).map_err(|e| coded(EXIT_USAGE, e))? {
            let s = read_summary(&f).map_err(|e| coded(EXIT_USAGE, e))?;
            read.push((f, s));
        }
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "merged".into());
    let merged = merge(&read, &name).map_err(|e| coded(EXIT_USAGE, e))?;
    let cant = |e: anyhow::Error| {
        coded(
            super::EXIT_HARNESS,
            anyhow!(
                "cannot write the merged reports to {}: {e:#}",
                out.display()
            ),
        )
    };
    super::write_reports(out, &merged).map_err(cant)?;
    // Each case's page as its shard drew it, else drawn from the summary.
    let mut pages: BTreeMap<&str, PathBuf> = BTreeMap::new();
    for (path, s) in &read {
        let dir = path.parent().unwrap_or(Path::new(".")).join("cases");
        for c in &s.cases {
            pages.insert(c.id.as_str(), dir.join(c.page_name()));
        }
    }
    std::fs::create_dir_all(out.join("cases")).map_err(|e| cant(e.into()))?;
    for c in &merged.cases {
        let to = out.join("cases").join(c.page_name());
        match pages.get(c.id.as_str()).filter(|p| p.is_file()) {
            Some(from) if *from != to => {
                std::fs::copy(from, &to)
                    .map_err(|e| cant(anyhow!("{} → {}: {e}", from.display(), to.display())))?;
            }
            Some(_) => {}
            None => super::write_case_page(out, &merged, c).map_err(cant)?,
        }
    }
    Ok(merged)
}
