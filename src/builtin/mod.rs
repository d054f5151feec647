//! The default suites (`suites/*.yaml`, `suites/topology.yaml`) and the reference profile
//! (`profiles/reference.yaml`), embedded in the binary so that an installed `cpm-harness`
//! works from any folder; and where a run's inputs come from.
//!
//! A run reads `--suite`/`--profile` when given. Otherwise it reads `suites/default.yaml`
//! (with the `fig*.yaml` beside it) and `profiles/reference.yaml` relative to the current
//! folder when they exist there, and the embedded copies when they do not. Every [`Input`]
//! says which it was (its `origin`: the path, or `built-in <path>`), and so do the errors.
//! `cpm-harness suites write DIR` writes the embedded files out; `cpm-harness init` writes
//! [`PROFILE_TEMPLATE`].

use crate::engine::plan::DefaultSuite;
use crate::engine::suite::Suite;
use anyhow::{anyhow, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An embedded file: its path relative to the repository root, and its text.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! embed {
    ($p:literal) => {
        Embedded {
            path: $p,
            text: include_str!(concat!("../../", $p)),
        }
    };
}

/// The default run matrix.
pub const DEFAULT_SUITE: Embedded = embed!("suites/default.yaml");

/// The seven figure suites.
pub const FIGURES: [Embedded; 7] = [
    embed!("suites/fig1.yaml"),
    embed!("suites/fig2.yaml"),
    embed!("suites/fig3.yaml"),
    embed!("suites/fig4.yaml"),
    embed!("suites/fig5.yaml"),
    embed!("suites/fig6.yaml"),
    embed!("suites/fig7.yaml"),
];

/// The default topology (3 members on 2 pf-b, each entity on its own 127.0.0.x).
pub const TOPOLOGY: Embedded = embed!("suites/topology.yaml");

/// The built-in reference SUT's profile.
pub const REFERENCE_PROFILE: Embedded = embed!("profiles/reference.yaml");

/// Every embedded file `suites write` writes out.
pub fn all() -> Vec<Embedded> {
    let mut v = vec![DEFAULT_SUITE];
    v.extend(FIGURES);
    v.push(TOPOLOGY);
    v.push(REFERENCE_PROFILE);
    v
}

/// The commented profile template `cpm-harness init` writes for a vendor's SUT.
pub const PROFILE_TEMPLATE: &str = include_str!("profile-template.yaml");

/// The placeholders of [`PROFILE_TEMPLATE`] a vendor must replace before it loads.
pub const TEMPLATE_PLACEHOLDERS: [&str; 2] = ["<SUT-NAME>", "<SUT-COMMAND>"];

/// The default suite's path relative to the current folder.
pub const DEFAULT_SUITE_PATH: &str = "suites/default.yaml";
/// The default profile's path relative to the current folder.
pub const DEFAULT_PROFILE_PATH: &str = "profiles/reference.yaml";

/// A file a run was planned from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub text: String,
    /// The path as read, or `built-in <path>` for an embedded file.
    pub origin: String,
    /// The file, or none when embedded.
    pub path: Option<PathBuf>,
}

impl Input {
    fn embedded(e: Embedded) -> Input {
        Input {
            text: e.text.to_string(),
            origin: format!("built-in {}", e.path),
            path: None,
        }
    }

    fn read(path: &Path, what: &str) -> anyhow::Result<Input> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("{}: cannot read the {what}: {e}", path.display()))?;
        Ok(Input {
            text,
            origin: path.display().to_string(),
            path: Some(path.to_path_buf()),
        })
    }

    pub fn is_builtin(&self) -> bool {
        self.path.is_none()
    }

    /// The folder a relative path inside the file resolves against (the current folder for
    /// an embedded file).
    pub fn base_dir(&self) -> &Path {
        self.path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
    }
}

/// The suite inputs of a run: the matrix and the figure suites, read and parsed.
#[derive(Debug, Clone)]
pub struct Suites {
    pub default: DefaultSuite,
    pub figures: BTreeMap<u8, Suite>,
    /// The matrix file, then the figure files in file-name order.
    pub inputs: Vec<Input>,
}

impl Suites {
    /// Where the suites come from, in words: `suites/default.yaml (+ 7 figure files)` or
    /// `built-in suites/default.yaml (+ 7 figure files)`.
    pub fn source(&self) -> String {
        format!(
            "{} (+ {} figure files{})",
            self.inputs[0].origin,
            self.inputs.len() - 1,
            if self.inputs[0].is_builtin() {
                ", built-in"
            } else {
                ""
            }
        )
    }
}

/// The suites of a run: `--suite` (with the `fig*.yaml` of its folder) when given, else
/// `suites/default.yaml` in the current folder if it exists, else the embedded suites.
pub fn suites(arg: Option<&Path>) -> anyhow::Result<Suites> {
    let disk = arg.map(Path::to_path_buf).or_else(|| {
        let p = PathBuf::from(DEFAULT_SUITE_PATH);
        p.is_file().then_some(p)
    });
    let mut inputs = Vec::new();
    let mut default = None;
    match &disk {
        Some(p) => {
            inputs.push(Input::read(p, "suite")?);
            // The matrix's own errors first, before its folder is looked at.
            default = Some(DefaultSuite::parse(&inputs[0].text, &inputs[0].origin)?);
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            let dir = dir.unwrap_or(Path::new("."));
            let rd = std::fs::read_dir(dir)
                .map_err(|e| anyhow!("{}: cannot read the suite folder: {e}", dir.display()))?;
            let mut paths: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.starts_with("fig") && (name.ends_with(".yaml") || name.ends_with(".yml"))
                })
                .collect();
            paths.sort();
            for f in paths {
                inputs.push(Input::read(&f, "figure suite")?);
            }
            if inputs.len() == 1 {
                bail!(
                    "{}: no fig*.yaml suite files beside {}",
                    dir.display(),
                    p.display()
                );
            }
        }
        None => {
            inputs.push(Input::embedded(DEFAULT_SUITE));
            inputs.extend(FIGURES.iter().map(|f| Input::embedded(*f)));
        }
    }
    let default = match default {
        Some(d) => d,
        None => DefaultSuite::parse(&inputs[0].text, &inputs[0].origin)?,
    };
    let mut figures: BTreeMap<u8, Suite> = BTreeMap::new();
    for i in &inputs[1..] {
        let s = Suite::parse(&i.text, &i.origin)?;
        let n = s.figure().n();
        if let Some(prev) = figures.get(&n) {
            bail!(
                "{}: figure {n} is already defined by {}",
                i.origin,
                prev.origin()
            );
        }
        figures.insert(n, s);
    }
    Ok(Suites {
        default,
        figures,
        inputs,
    })
}

/// The profile of a run: `--profile` when given, else `profiles/reference.yaml` in the current
/// folder if it exists, else the embedded reference profile.
pub fn profile_input(arg: Option<&Path>) -> anyhow::Result<Input> {
    match arg {
        Some(p) => Input::read(p, "profile"),
        None => {
            let p = Path::new(DEFAULT_PROFILE_PATH);
            if p.is_file() {
                Input::read(p, "profile")
            } else {
                Ok(Input::embedded(REFERENCE_PROFILE))
            }
        }
    }
}

/// The default topology: `suites/topology.yaml` in the current folder if it exists, else the
/// embedded one.
pub fn topology_input() -> anyhow::Result<Input> {
    let p = Path::new(TOPOLOGY.path);
    if p.is_file() {
        Input::read(p, "topology")
    } else {
        Ok(Input::embedded(TOPOLOGY))
    }
}

/// Writes every embedded file under `dir` (`dir/suites/…`, `dir/profiles/…`). Refuses, before
/// writing anything, when a file exists and `force` is false. Returns the paths written.
pub fn write_all(dir: &Path, force: bool) -> anyhow::Result<Vec<PathBuf>> {
    let files: Vec<(PathBuf, Embedded)> =
        all().into_iter().map(|e| (dir.join(e.path), e)).collect();
    if !force {
        let existing: Vec<String> = files
            .iter()
            .filter(|(p, _)| p.exists())
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            bail!(
                "{} already exist{} (--force overwrites)",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            );
        }
    }
    for (p, e) in &files {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|err| anyhow!("{}: {err}", d.display()))?;
        }
        crate::files::write_atomic(p, e.text.as_bytes())
            .map_err(|err| anyhow!("{}: {err}", p.display()))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// Writes [`PROFILE_TEMPLATE`] to `path`, refusing to overwrite a file unless `force`.
pub fn write_template(path: &Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!("{} already exists (--force overwrites)", path.display());
    }
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| anyhow!("{}: {e}", d.display()))?;
    }
    crate::files::write_atomic(path, PROFILE_TEMPLATE.as_bytes())
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_files_are_the_repository_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for e in all() {
            let disk = std::fs::read_to_string(root.join(e.path)).unwrap();
            assert_eq!(disk, e.text, "{}", e.path);
        }
        // Every fig*.yaml of suites/ is embedded.
        let figs = std::fs::read_dir(root.join("suites"))
            .unwrap()
            .flatten()
            .filter(|f| f.file_name().to_string_lossy().starts_with("fig"))
            .count();
        assert_eq!(figs, FIGURES.len());
    }

    #[test]
    fn the_embedded_suites_parse() {
        let mut inputs = vec![Input::embedded(DEFAULT_SUITE)];
        inputs.extend(FIGURES.iter().map(|f| Input::embedded(*f)));
        DefaultSuite::parse(&inputs[0].text, &inputs[0].origin).unwrap();
        for i in &inputs[1..] {
            Suite::parse(&i.text, &i.origin).unwrap();
        }
        crate::topology::Topology::parse(TOPOLOGY.text, "t").unwrap();
        assert_eq!(inputs[1].origin, "built-in suites/fig1.yaml");
    }
}
