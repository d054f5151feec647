//! Benchmarks run by `cpm-harness bench`: every row in a child process of this binary (so
//! each row's peak RSS is its own), printed as a table or as JSON objects. Ratios are
//! measured against a baseline taken in the same run, since the machine is shared and noisy.
//!
//! Rows: (a) wall time of the full default run; (b) fan-out of a 1 MiB message to 10 … 10,000
//! members (time to all delivered, peak RSS, open fds) against its anchors, the same sessions
//! with next to no bytes and the same bytes as a plain TCP fan-out; (c) four-hop relay vs a four-hop TCP
//! byte pump; (d) sessions per second through the chain; (e) peak RSS relaying 1 GiB and
//! 4 GiB; (f) the chain's SIP dialogs per second vs SIPp's calls per second.

pub mod fanout;
pub mod fanpump;
pub mod relay;
pub mod sessions;
pub mod sipp;

pub use relay::relay;

use crate::clock;
use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::Stdio;

/// `cpm-harness bench [ROW-OPTIONS] [relay|…]`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: Option<BenchCmd>,
    /// One JSON object per row (name, value, unit; ratios with both measured values).
    #[arg(long)]
    pub json: bool,
    /// Rows to run: any of a, b, c, d, e, f (comma-separated).
    #[arg(long, default_value = "a,b,c,d,e,f", value_delimiter = ',')]
    pub rows: Vec<String>,
    /// Group sizes of row (b).
    #[arg(long, default_value = "10,100,1000,10000", value_delimiter = ',')]
    pub members: Vec<usize>,
    /// Message size of row (c) in MiB.
    #[arg(long, default_value_t = 1024)]
    pub relay_mib: u64,
    /// Message sizes of row (e) in MiB (peak RSS must not grow with them).
    #[arg(long, default_value = "1024,4096", value_delimiter = ',')]
    pub rss_mib: Vec<u64>,
    /// MSRP chunk size of rows (b), (c) and (e).
    #[arg(long, default_value_t = 65536)]
    pub chunk_size: u64,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCmd {
    /// Row (c) alone: four-hop streaming relay of one message to one member vs raw loopback
    /// TCP, measured in the same run.
    Relay {
        /// Message size in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        /// MSRP chunk size in bytes.
        #[arg(long, default_value_t = 65536)]
        chunk_size: u64,
    },
    /// One row in this process, printed as JSON lines (used by `bench` for each row).
    #[command(hide = true)]
    Row {
        /// a, b:<members>, c:<MiB>, d, e:<MiB>, f; relay-only:<MiB>, pump-only:<MiB> to profile.
        spec: String,
        #[arg(long, default_value_t = 65536)]
        chunk_size: u64,
    },
    /// A part of row (b)'s chain in its own process (past the file-descriptor limit).
    #[command(hide = true)]
    FanoutWorker(fanout::WorkerArgs),
}

/// One measured figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
    /// For a ratio: the two values it was computed from, measured in the same run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub of: Vec<Measure>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The row could not be measured (a tool is missing): never counted as met.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measure {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

impl Row {
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
    ) -> Row {
        Row {
            id: id.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            target: None,
            met: None,
            of: Vec::new(),
            note: String::new(),
            not_run: false,
        }
    }

    /// A row that could not be measured, with its target and why.
    pub fn not_run(
        id: impl Into<String>,
        name: impl Into<String>,
        unit: impl Into<String>,
        target: &str,
        why: impl Into<String>,
    ) -> Row {
        let mut r = Row::new(id, name, 0.0, unit).note(why);
        r.target = Some(target.into());
        r.not_run = true;
        r
    }

    pub fn target(mut self, t: &str, met: bool) -> Row {
        self.target = Some(t.into());
        self.met = Some(met);
        self
    }

    pub fn of(mut self, a: (&str, f64, &str), b: (&str, f64, &str)) -> Row {
        self.of = [a, b]
            .into_iter()
            .map(|(n, v, u)| Measure {
                name: n.into(),
                value: v,
                unit: u.into(),
            })
            .collect();
        self
    }

    pub fn note(mut self, n: impl Into<String>) -> Row {
        self.note = n.into();
        self
    }

    fn value_text(&self) -> String {
        if self.not_run {
            return "not run".into();
        }
        let v = if self.value >= 100.0 || self.value.fract() == 0.0 {
            format!("{:.0}", self.value)
        } else if self.value >= 10.0 {
            format!("{:.1}", self.value)
        } else {
            format!("{:.2}", self.value)
        };
        format!("{v} {}", self.unit)
    }
}

/// CPU seconds (user + system) this process used so far.
pub fn cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_SELF)
}

/// CPU seconds (user + system) of this process's children that have ended and been waited
/// for (and of their waited-for descendants).
pub fn children_cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_CHILDREN)
}

fn rusage_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut u) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// This process's peak resident set (`VmHWM` of /proc/self/status), in KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Raises the soft limit on open files to the hard limit (a 10,000-member chain needs
/// thousands of sockets). Returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    // SAFETY: get/setrlimit only read and write the struct they are given.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        r.rlim_cur
    }
}

/// `cpm-harness bench …`.
pub async fn main(a: BenchArgs) -> anyhow::Result<u8> {
    raise_nofile();
    match a.what {
        Some(BenchCmd::Relay { mib, chunk_size }) => {
            relay(mib << 20, chunk_size).await?;
            Ok(0)
        }
        Some(BenchCmd::Row { spec, chunk_size }) => {
            for row in run_row(&spec, chunk_size).await? {
                println!("{}", serde_json::to_string(&row)?);
            }
            Ok(0)
        }
        Some(BenchCmd::FanoutWorker(w)) => fanout::worker(w).await.map(|_| 0),
        None => all(&a).await,
    }
}

/// Runs one row spec in this process.
async fn run_row(spec: &str, chunk: u64) -> anyhow::Result<Vec<Row>> {
    let (what, arg) = spec.split_once(':').unwrap_or((spec, ""));
    let num = || -> anyhow::Result<u64> {
        arg.parse()
            .map_err(|_| anyhow!("bench row {spec:?}: expected a number after `:`"))
    };
    match what {
        "a" => Ok(vec![default_run_row().await?]),
        "b" => fanout::rows(num()? as usize, chunk).await,
        "c" => Ok(vec![relay::ratio_row(num()? << 20, chunk).await?]),
        "d" => Ok(vec![sessions::row().await?]),
        "f" => Ok(vec![sipp::row().await?]),
        "e" => Ok(vec![relay::rss_row(num()? << 20, chunk).await?]),
        // One relay or one byte-pump run alone (to profile either).
        "relay-only" => {
            let r = relay::chain_relay(num()? << 20, chunk).await?;
            Ok(vec![Row::new(
                "relay",
                "four-hop relay",
                r.rate / 1048576.0,
                "MiB/s",
            )
            .note(format!("{:.2} CPUs", r.cpu_share))])
        }
        "pump-only" => {
            let p = relay::pump(num()? << 20).await?;
            Ok(vec![Row::new(
                "pump",
                "four-hop byte pump",
                p.rate / 1048576.0,
                "MiB/s",
            )
            .note(format!("{:.2} CPUs", p.cpu_share))])
        }
        _ => bail!("unknown bench row {spec:?}"),
    }
}

/// Row (a): the full default run (`run -q`), as a child process writing into a scratch folder.
async fn default_run_row() -> anyhow::Result<Row> {
    // In the current folder, where the main job writes its reports and captures: on this
    // project's machine the same run into the system's temp folder spent a third more system
    // CPU creating and removing its files there.
    let tmp = ScratchDir::new_in(std::path::Path::new("target"), "default-run")?;
    let exe = std::env::current_exe()?;
    let cpu0 = children_cpu_seconds();
    let start = clock::now();
    let out = tokio::process::Command::new(&exe)
        .arg("run")
        .arg("-q")
        .arg("--out")
        .arg(tmp.path().join("reports"))
        .arg("--captures")
        .arg(tmp.path().join("captures"))
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("starting {} run", exe.display()))?;
    let secs = clock::since(start).as_secs_f64();
    let cpu = children_cpu_seconds() - cpu0;
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.contains(" passed, "))
        .unwrap_or("")
        .to_string();
    if !out.status.success() {
        bail!(
            "the default run exited {}: {summary}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Row::new(
        "a.default-run",
        "(a) full default run (`run -q`)",
        secs,
        "s",
    )
    .target("<= 5 s", secs <= 5.0)
    .note(format!(
        "{summary}; CPU {cpu:.1} s (the run and its SUT processes) on {} CPUs; {}",
        relay::cpus(),
        case_time(&tmp.path().join("reports"))
            .map(|(n, s)| format!(
                "the cases' own durations add up to {s:.1} s ({n} cases, mean {:.2} s)",
                s / n.max(1) as f64
            ))
            .unwrap_or_else(|| "no summary.json".into())
    )))
}

/// (cases, seconds) summed over the cases of the run's `summary.json` under `reports`.
fn case_time(reports: &std::path::Path) -> Option<(usize, f64)> {
    let run = std::fs::read_dir(reports)
        .ok()?
        .flatten()
        .find(|e| e.path().is_dir())?;
    let text = std::fs::read_to_string(run.path().join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let cases = v["cases"].as_array()?;
    let ms: f64 = cases.iter().filter_map(|c| c["duration_ms"].as_f64()).sum();
    Some((cases.len(), ms / 1000.0))
}

/// A folder under the system's temp folder, removed when dropped.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(what: &str) -> anyhow::Result<ScratchDir> {
        let p = std::env::temp_dir().join(format!("cpm-harness-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(ScratchDir(p))
    }

    /// A folder under `dir` (the system's temp folder when `dir` does not exist).
    pub fn new_in(dir: &std::path::Path, what: &str) -> anyhow::Result<ScratchDir> {
        if !dir.is_dir() {
            return ScratchDir::new(what);
        }
        let p = dir.join(format!("cpm-harness-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(ScratchDir(p))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every requested row, each in its own child process; prints the table or JSON lines.
async fn all(a: &BenchArgs) -> anyhow::Result<u8> {
    let mut specs = Vec::new();
    for r in &a.rows {
        match r.as_str() {
            "a" => specs.push("a".to_string()),
            "b" => specs.extend(a.members.iter().map(|m| format!("b:{m}"))),
            "c" => specs.push(format!("c:{}", a.relay_mib)),
            "d" => specs.push("d".into()),
            "e" => specs.extend(a.rss_mib.iter().map(|m| format!("e:{m}"))),
            "f" => specs.push("f".into()),
            other => bail!("--rows: unknown row {other:?} (expected a, b, c, d, e or f)"),
        }
    }
    let exe: PathBuf = std::env::current_exe()?;
    let mut rows = Vec::new();
    let mut failed = false;
    for spec in specs {
        eprintln!("bench: running row {spec} …");
        let out = tokio::process::Command::new(&exe)
            .args(["bench", "row", &spec, "--chunk-size"])
            .arg(a.chunk_size.to_string())
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("starting bench row {spec}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        for l in err
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            eprintln!("bench: row {spec}: {l}");
        }
        let mut got = 0;
        for l in text.lines().filter(|l| l.starts_with('{')) {
            let row: Row = serde_json::from_str(l)
                .with_context(|| format!("bench row {spec}: bad output line {l:?}"))?;
            if a.json {
                println!("{l}");
            }
            rows.push(row);
            got += 1;
        }
        if !out.status.success() || got == 0 {
            failed = true;
            eprintln!("bench: row {spec} failed ({})", out.status);
        }
    }
    if !a.json {
        print!("{}", render_table(&rows));
    }
    Ok(if failed { 1 } else { 0 })
}

/// The rows as an aligned text table.
pub fn render_table(rows: &[Row]) -> String {
    let mut lines = vec![[
        "row".to_string(),
        "value".to_string(),
        "target".to_string(),
        "measured from / notes".to_string(),
    ]];
    for r in rows {
        let target = match (&r.target, r.met) {
            (Some(t), _) if r.not_run => format!("{t} NOT RUN"),
            (Some(t), Some(true)) => format!("{t} met"),
            (Some(t), Some(false)) => format!("{t} MISSED"),
            (Some(t), None) => t.clone(),
            _ => String::new(),
        };
        let mut notes: Vec<String> =
            r.of.iter()
                .map(|m| format!("{} {:.1} {}", m.name, m.value, m.unit))
                .collect();
        if !r.note.is_empty() {
            notes.push(r.note.clone());
        }
        lines.push([r.name.clone(), r.value_text(), target, notes.join("; ")]);
    }
    let w: Vec<usize> = (0..3)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n - s.chars().count()));
        out.push_str(
            format!(
                "{}  {}  {}  {}",
                pad(&l[0], w[0]),
                pad(&l[1], w[1]),
                pad(&l[2], w[2]),
                l[3]
            )
            .trim_end(),
        );
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_row_carries_both_measured_values_in_json_and_in_the_table() {
        let r = Row::new("c.relay", "(c) relay vs raw", 42.5, "%")
            .target(">= 40 %", true)
            .of(("relay", 850.0, "MiB/s"), ("raw", 2000.0, "MiB/s"));
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["name"], "(c) relay vs raw");
        assert_eq!(v["value"], 42.5);
        assert_eq!(v["unit"], "%");
        assert_eq!(v["of"][0]["value"], 850.0);
        assert_eq!(v["of"][1]["unit"], "MiB/s");
        let back: Row = serde_json::from_value(v).unwrap();
        let t = render_table(&[back, Row::new("d", "(d) sessions", 390.2, "sessions/s")]);
        assert!(t.contains("42.5 %"), "{t}");
        assert!(t.contains(">= 40 % met"), "{t}");
        assert!(t.contains("relay 850.0 MiB/s; raw 2000.0 MiB/s"), "{t}");
        assert!(t.contains("390 sessions/s"), "{t}");
    }

    #[test]
    fn a_row_not_run_is_never_met() {
        let r = Row::not_run(
            "f",
            "(f) vs SIPp",
            "x SIPp",
            ">= 1.0 x SIPp",
            "sipp is not installed",
        );
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["not_run"], true);
        assert!(v.get("met").is_none());
        let back: Row = serde_json::from_value(v).unwrap();
        let t = render_table(&[back]);
        assert!(t.contains(">= 1.0 x SIPp NOT RUN"), "{t}");
        assert!(t.contains("not run"), "{t}");
        assert!(!t.contains(" met"), "{t}");
    }

    #[test]
    fn own_process_figures_are_read() {
        assert!(peak_rss_kib() > 0);
        assert!(fd_count() >= 3);
        assert!(cpu_seconds() >= 0.0);
    }
}
