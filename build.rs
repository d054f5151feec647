//! Embeds the harness's git commit for the conformance test report (`CPM_GIT_COMMIT`, the
//! short hash, and `CPM_GIT_DIRTY`, `true` when tracked files had uncommitted changes at build
//! time). Without git or outside a checkout (a crate tarball) both are `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git").args(args).output().ok()?;
    if !o.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    // Only a checkout whose top is this crate: a crate unpacked inside some other repository
    // is not that repository's commit.
    let top = git(&["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    let ours = match (&top, manifest.canonicalize()) {
        (Some(t), Ok(m)) => t.canonicalize().is_ok_and(|t| t == m),
        _ => false,
    };
    let commit = if ours {
        git(&["rev-parse", "--short", "HEAD"])
    } else {
        None
    };
    let (commit, dirty) = match commit {
        Some(c) if !c.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .map(|s| if s.is_empty() { "false" } else { "true" })
                .unwrap_or("unknown");
            (c, dirty.to_string())
        }
        _ => ("unknown".to_string(), "unknown".to_string()),
    };
    println!("cargo:rustc-env=CPM_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=CPM_GIT_DIRTY={dirty}");
    if ours {
        // Rerun when HEAD moves, the branch gets a commit, the index changes, or a source
        // file is edited (which may make the tree dirty). Only paths that exist: cargo reruns
        // on every build for a path it cannot find.
        let mut watch: Vec<PathBuf> = Vec::new();
        if let Some(d) = git(&["rev-parse", "--git-dir"]) {
            let d = manifest.join(d);
            watch.push(d.join("HEAD"));
            watch.push(d.join("index"));
        }
        if let (Some(r), Some(c)) = (
            git(&["symbolic-ref", "-q", "HEAD"]),
            git(&["rev-parse", "--git-common-dir"]),
        ) {
            let c = manifest.join(c);
            watch.push(c.join(&r));
            watch.push(c.join("packed-refs"));
        }
        for d in ["src", "suites", "profiles", "Cargo.toml", "Cargo.lock"] {
            watch.push(manifest.join(d));
        }
        for p in watch.iter().filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}
