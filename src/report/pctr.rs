//! The conformance test report, in the spirit of ISO/IEC 9646-5's PCTR (protocol conformance
//! test report): who was tested (the SUT's profile, its description and the output of its
//! version command), what it declared (the PICS), by what (the harness's version and commit,
//! the digests of the suite files and the profile), when and where (UTC date, machine), and
//! the results (verdicts by figure × SUT role, every failed check with its evidence and its
//! reference, the skipped cases grouped by reason).
//!
//! The identification part ([`Pctr`]) is collected once per run by the CLI and handed to the
//! reporters ([`super::ReportOptions::pctr`]); the results part ([`Results`]) is derived from
//! the cases and refreshed whenever the summary's counts are ([`super::model::Summary::recount`]).
//! Both go into `summary.json` (`pctr`) and the run's `index.html`.

use super::model::{CaseReport, Skipped};
use crate::engine::profile::{group_name, l23_name, setup_name, transport_name, Profile};
use crate::engine::spec::{ack_name, split_name};
use crate::engine::{CheckId, Verdict};
use crate::topology::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// The harness's version (`Cargo.toml`), git commit and whether the tree was dirty, as built.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CPM_GIT_COMMIT"),
    ", dirty: ",
    env!("CPM_GIT_DIRTY"),
    ")"
);

/// The conformance test report of a run (`summary.json` `pctr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pctr {
    pub sut: SutIdentity,
    /// The PICS as the profile declares it, one entry per item, in the profile's order.
    pub pics: Vec<PicsItem>,
    pub harness: HarnessBuild,
    /// The files the run was planned from: the suite files, then the profile (and the
    /// topology it names), each with its SHA-256.
    pub inputs: Vec<InputDigest>,
    /// When the run started, UTC (`2026-11-26T13:21:24Z`); for `merge`, the earliest shard's.
    pub date: String,
    pub machine: Machine,
    /// For `merge`: each shard's run, date and machine, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<Shard>,
    /// Derived from the cases: verdicts by figure × SUT role, failures, skipped by reason.
    #[serde(default)]
    pub results: Results,
}

/// Who was tested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SutIdentity {
    /// The profile's `name`.
    pub profile: String,
    /// The profile's `about`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    /// Where the profile came from: its path, or `built-in profiles/reference.yaml`.
    pub origin: String,
    /// How the harness reached the SUT: `launched per case: <command>`, `launched once per
    /// run: <command>`, or `already running at the addresses of <topology>`.
    pub access: String,
    /// The profile's `version-command` and what it printed; none when the profile has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<VersionOutput>,
}

/// What the SUT's version command printed, or why it gave nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionOutput {
    /// The argv run (no shell).
    pub command: Vec<String>,
    /// Its standard output, trimmed (at most 2,000 characters); none when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why there is no output: it could not start, exited non-zero (with its last stderr
    /// lines) or timed out. A failure is reported, never fatal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One PICS item: a profile key and the values declared, or none when the key was omitted
/// (which declares every value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PicsItem {
    pub item: String,
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

/// The harness that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarnessBuild {
    /// `Cargo.toml`'s version.
    pub version: String,
    /// `git rev-parse --short HEAD` at build time, or `unknown` (built outside a checkout).
    pub commit: String,
    /// `true` when tracked files had uncommitted changes at build time; `unknown` without git.
    pub dirty: String,
}

impl HarnessBuild {
    /// This binary's.
    pub fn current() -> HarnessBuild {
        HarnessBuild {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: env!("CPM_GIT_COMMIT").to_string(),
            dirty: env!("CPM_GIT_DIRTY").to_string(),
        }
    }
}

/// An input file and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDigest {
    /// What it is: `suite`, `figure suite`, `profile`, `topology`.
    pub kind: String,
    /// Its path as given, or `built-in suites/fig1.yaml` for a file embedded in the binary.
    pub origin: String,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

impl InputDigest {
    pub fn of(kind: &str, origin: &str, bytes: &[u8]) -> InputDigest {
        InputDigest {
            kind: kind.to_string(),
            origin: origin.to_string(),
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }
}

/// The machine the harness ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    /// `uname`: system, release, machine (`Linux 6.1.0-18-amd64 x86_64`).
    pub os: String,
    /// CPUs available to the harness.
    pub cpus: usize,
}

impl Machine {
    /// This machine.
    pub fn current() -> Machine {
        Machine {
            hostname: hostname().unwrap_or_else(|| "unknown".into()),
            os: uname()
                .unwrap_or_else(|| format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

fn c_field(f: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = f
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hostname() -> Option<String> {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: gethostname(2) writes at most `len` bytes into the buffer we own.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr(), buf.len() - 1) };
    (r == 0).then(|| c_field(&buf)).filter(|h| !h.is_empty())
}

fn uname() -> Option<String> {
    // SAFETY: uname(2) fills the struct we own; all-zero is a valid utsname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    Some(format!(
        "{} {} {}",
        c_field(&u.sysname),
        c_field(&u.release),
        c_field(&u.machine)
    ))
}

/// One shard of a merged report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub run: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    pub date: String,
    pub machine: Machine,
}

// ------------------------------------------------------------------------------- results

/// The results part of the report, derived from the cases and the skipped ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Verdict counts per (figure, split), figures ascending, splits in [`split_order`].
    pub verdicts: Vec<Cell>,
    /// Every failing check of every case that did not pass, in case order.
    pub failures: Vec<Failure>,
    /// Skipped cases grouped by reason, the largest group first.
    pub skipped: Vec<SkipGroup>,
}

/// Verdict counts of one figure × SUT role (split).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub figure: u8,
    /// The roles the SUT played (`x`, `pf-a+x+pf-b`), or `none`.
    pub split: String,
    /// True for `none`: the harness played every role and the SUT took no part.
    #[serde(default)]
    pub self_check: bool,
    pub passed: usize,
    pub failed: usize,
    pub inconc: usize,
    pub error: usize,
    pub skipped: usize,
}

/// A failing check of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub case: String,
    pub check: CheckId,
    pub verdict: Verdict,
    /// The catalogue's reference (`RFC 4975 §5.4; FIG 1–7, S106`).
    pub reference: String,
    /// The check's section in `docs/checks.md` (`link-dir`).
    pub anchor: String,
    pub evidence: Vec<String>,
}

/// Skipped cases sharing a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipGroup {
    pub reason: String,
    /// True when `--fail-fast` kept these planned cases from running.
    #[serde(default)]
    pub not_run: bool,
    pub cases: Vec<String>,
}

/// Sort key of a split: single roles in chain order, then larger sets, the self-check last.
pub fn split_order(split: &str) -> (u8, usize, Vec<usize>) {
    if split == "none" {
        return (2, 0, Vec::new());
    }
    let idx: Vec<usize> = split
        .split('+')
        .map(|r| {
            Role::ALL
                .iter()
                .position(|x| x.as_str() == r)
                .unwrap_or(Role::ALL.len())
        })
        .collect();
    (u8::from(idx.len() > 1), idx.len(), idx)
}

/// The split of a case id (`F1/x/on-ack/…` → `x`).
fn split_of(id: &str) -> String {
    id.split('/').nth(1).unwrap_or("?").to_string()
}

impl Results {
    pub fn of(cases: &[CaseReport], skipped: &[Skipped]) -> Results {
        type Key = (u8, (u8, usize, Vec<usize>), String);
        fn cell(cells: &mut BTreeMap<Key, Cell>, figure: u8, split: String) -> &mut Cell {
            cells
                .entry((figure, split_order(&split), split.clone()))
                .or_insert_with(|| Cell {
                    figure,
                    self_check: split == "none",
                    split,
                    ..Cell::default()
                })
        }
        let mut cells: BTreeMap<Key, Cell> = BTreeMap::new();
        for c in cases {
            let k = cell(&mut cells, c.figure, c.split.clone());
            match c.verdict {
                Verdict::Pass => k.passed += 1,
                Verdict::Fail => k.failed += 1,
                Verdict::Inconc | Verdict::NotObservable => k.inconc += 1,
                Verdict::Error => k.error += 1,
            }
        }
        for s in skipped {
            cell(&mut cells, s.figure, split_of(&s.id)).skipped += 1;
        }
        let failures = cases
            .iter()
            .filter(|c| c.verdict != Verdict::Pass)
            .flat_map(|c| {
                c.failing_checks().map(|k| Failure {
                    case: c.id.clone(),
                    check: k.id,
                    verdict: k.verdict,
                    reference: k.reference.clone(),
                    anchor: k.id.anchor(),
                    evidence: k.evidence(),
                })
            })
            .collect();
        let mut groups: Vec<SkipGroup> = Vec::new();
        for s in skipped {
            match groups
                .iter_mut()
                .find(|g| g.reason == s.reason && g.not_run == s.not_run)
            {
                Some(g) => g.cases.push(s.id.clone()),
                None => groups.push(SkipGroup {
                    reason: s.reason.clone(),
                    not_run: s.not_run,
                    cases: vec![s.id.clone()],
                }),
            }
        }
        // Largest first; ties keep their first appearance.
        groups.sort_by_key(|g| std::cmp::Reverse(g.cases.len()));
        Results {
            verdicts: cells.into_values().collect(),
            failures,
            skipped: groups,
        }
    }
}

// ------------------------------------------------------------------------------ collecting

/// The PICS items of a profile, in the order of `profiles/reference.yaml`.
pub fn pics(p: &Profile) -> Vec<PicsItem> {
    fn item<T>(name: &str, v: &Option<Vec<T>>, f: impl Fn(&T) -> String) -> PicsItem {
        PicsItem {
            item: name.to_string(),
            values: v.as_ref().map(|l| l.iter().map(f).collect()),
        }
    }
    vec![
        PicsItem {
            item: "roles".into(),
            values: Some(p.roles.iter().map(|r| r.as_str().to_string()).collect()),
        },
        item("splits", &p.splits, |s| split_name(s)),
        item("figures", &p.figures, |f| f.n().to_string()),
        item("triggers", &p.triggers, |t| t.as_str().to_string()),
        item("x-triggers", &p.x_triggers, |t| t.as_str().to_string()),
        item("reuse", &p.reuse, |b| b.to_string()),
        item("setup", &p.setup, |s| setup_name(*s).to_string()),
        item("transports", &p.transports, |t| {
            transport_name(*t).to_string()
        }),
        item("groups", &p.groups, |g| group_name(*g).to_string()),
        item("l23-openers", &p.l23_openers, |o| l23_name(*o).to_string()),
        item("acks", &p.acks, |a| ack_name(*a).to_string()),
        item("ip-families", &p.ip_families, |f| f.as_str().to_string()),
        // One declared value (a choice, not a list of supported ones).
        PicsItem {
            item: "report-timing".into(),
            values: Some(vec![p.report_timing.as_str().to_string()]),
        },
    ]
}

/// How the harness reaches the profile's SUT, in words.
pub fn access(p: &Profile) -> String {
    use crate::engine::profile::Per;
    match (&p.launch, &p.addresses) {
        (Some(l), _) => format!(
            "launched {} (no shell): {}",
            match l.per {
                Per::Case => "per case",
                Per::Run => "once per run",
            },
            l.command
        ),
        (None, Some((path, _))) => {
            format!("already running at the addresses of {}", path.display())
        }
        (None, None) => "not launched (the harness plays every role)".into(),
    }
}

/// Longest version output kept (characters).
const VERSION_MAX: usize = 2000;

/// Runs a SUT's version command once, without a shell, for at most `timeout`. A failure
/// (cannot start, non-zero exit, timeout) is described in [`VersionOutput::error`].
pub async fn run_version_command(argv: Vec<String>, timeout: Duration) -> VersionOutput {
    let fail = |error: String| VersionOutput {
        command: argv.clone(),
        output: None,
        error: Some(error),
    };
    let Some((prog, args)) = argv.split_first() else {
        return fail("empty command".into());
    };
    let child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start {prog:?}: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => fail(format!(
            "no answer within {} s (stopped)",
            timeout.as_secs()
        )),
        Ok(Err(e)) => fail(format!("{prog:?}: {e}")),
        Ok(Ok(o)) if !o.status.success() => {
            let err = String::from_utf8_lossy(&o.stderr);
            let last: Vec<&str> = err.lines().rev().take(3).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            fail(if last.is_empty() {
                format!("{}", o.status)
            } else {
                format!("{}; stderr: {}", o.status, last.join(" / "))
            })
        }
        Ok(Ok(o)) => {
            let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let text: String = if text.chars().count() > VERSION_MAX {
                text.chars().take(VERSION_MAX).chain(['…']).collect()
            } else {
                text
            };
            VersionOutput {
                command: argv.clone(),
                output: Some(text),
                error: None,
            }
        }
    }
}

/// The UTC date of a wall-clock time (`2026-11-26T13:21:24Z`).
pub fn utc(t: std::time::SystemTime) -> String {
    crate::codec::cpim::rfc3339_utc(t)
}

/// The identification part of a run's report. `inputs`: the suite files and the profile
/// (see [`InputDigest`]); `version`: the version command's result, if the profile has one.
pub fn identify(
    profile: &Profile,
    inputs: Vec<InputDigest>,
    version: Option<VersionOutput>,
    started: std::time::SystemTime,
) -> Pctr {
    Pctr {
        sut: SutIdentity {
            profile: profile.name.clone(),
            about: profile.about.clone(),
            origin: profile.origin.clone(),
            access: access(profile),
            version,
        },
        pics: pics(profile),
        harness: HarnessBuild::current(),
        inputs,
        date: utc(started),
        machine: Machine::current(),
        shards: Vec::new(),
        results: Results::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sort_singles_in_chain_order_then_sets_then_the_self_check() {
        let mut s = vec!["none", "pf-a+x+pf-b", "client-b", "x", "client-a", "pf-a+x"];
        s.sort_by_key(|x| split_order(x));
        assert_eq!(
            s,
            vec!["client-a", "x", "client-b", "pf-a+x", "pf-a+x+pf-b", "none"]
        );
    }

    #[test]
    fn machine_and_build_are_filled() {
        let m = Machine::current();
        assert!(!m.hostname.is_empty() && !m.os.is_empty() && m.cpus >= 1);
        let b = HarnessBuild::current();
        assert_eq!(b.version, env!("CARGO_PKG_VERSION"));
        assert!(!b.commit.is_empty());
        assert!(["true", "false", "unknown"].contains(&b.dirty.as_str()));
    }

    #[tokio::test]
    async fn a_version_command_that_fails_is_described_not_fatal() {
        let d = Duration::from_secs(5);
        let o = run_version_command(vec!["/no/such/sut".into(), "-V".into()], d).await;
        assert!(o.output.is_none());
        let e = o.error.unwrap();
        assert!(e.contains("No such file or directory"), "{e}");
        let o = run_version_command(
            vec!["sh".into(), "-c".into(), "echo bad flag >&2; exit 2".into()],
            d,
        )
        .await;
        assert_eq!(o.error.as_deref(), Some("exit status: 2; stderr: bad flag"));
        let o =
            run_version_command(vec!["sleep".into(), "5".into()], Duration::from_millis(200)).await;
        assert!(o.error.unwrap().contains("no answer within"));
        let o = run_version_command(vec!["echo".into(), " v1.2 ".into()], d).await;
        assert_eq!(o.output.as_deref(), Some("v1.2"));
    }
}
