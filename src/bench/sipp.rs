//! Row (f): the chain's SIP dialogs per second beside SIPp's calls per second, measured in
//! the same run on the same machine.
//!
//! SIPp (`sipp`, Debian package `sip-tester`) plays its built-in `uac` scenario against its
//! built-in `uas` (INVITE, 100, 180, 200, ACK, BYE, 200 over UDP on loopback) at rising rates
//! for [`STEP_SECONDS`] each, after a short warm-up, until a step has a failed call (twice in
//! a row: a step is tried again once, since the machine is shared) or falls behind its rate;
//! its figure is the highest rate it achieved with no failed call. The chain's figure is row
//! (d)'s complete sessions per second (median of three runs: one before the ramp, two after)
//! times four, since each session is a SIP dialog on each of the four hops. Without `sipp` the
//! row is reported as not run.

use super::sessions;
use super::{Row, ScratchDir};
use crate::clock;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Loopback net of the SIPp row (benchmarks use 127.93–99).
const NET: u8 = 99;
/// Call rates tried, in calls per second, in this order.
pub const RATES: &[u32] = &[
    500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000, 15000, 20000,
];
/// Seconds of calls per step.
pub const STEP_SECONDS: u32 = 2;
/// A step that achieves less than this share of its rate ends the ramp.
const KEEP_UP: f64 = 0.9;

/// SIP dialogs per chain session: one per hop.
pub const DIALOGS_PER_SESSION: f64 = 4.0;

/// One step of the ramp.
#[derive(Debug, Clone)]
pub struct Step {
    pub rate: u32,
    /// Calls per second SIPp achieved (its own `CallRate(C)`).
    pub achieved: f64,
    pub successful: u64,
    pub failed: u64,
    /// Why this step ended the ramp, if it did.
    pub stop: Option<String>,
    /// Why the first try of this rate failed, when it was tried again.
    pub retried: Option<String>,
}

/// `sipp` on the PATH (or in /usr/sbin).
pub fn find_sipp() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("sipp"))
                .find(|p| p.is_file())
        })
        .or_else(|| {
            let p = Path::new("/usr/sbin/sipp");
            p.is_file().then(|| p.to_path_buf())
        })
}

/// The `sipp -v` version line, e.g. `SIPp v3.6.1-SCTP-PCAP-RTPSTREAM`.
async fn version(sipp: &Path) -> String {
    let out = tokio::process::Command::new(sipp)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .await;
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.contains("SIPp v"))
                .map(|l| l.trim().trim_end_matches('.').to_string())
        })
        .unwrap_or_else(|| "SIPp".into())
}

/// Runs the ramp: a `uas` for its whole length, one `uac` run per rate.
pub async fn ramp(sipp: &Path) -> anyhow::Result<Vec<Step>> {
    let dir = ScratchDir::new("sipp")?;
    let uas_ip = format!("127.{NET}.0.2");
    let uac_ip = format!("127.{NET}.0.1");
    let mut uas = tokio::process::Command::new(sipp)
        .args(["-sn", "uas", "-i", &uas_ip, "-p", "5060", "-nostdin"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", sipp.display()))?;
    // Ready once its port is bound (ours then cannot be).
    let addr: std::net::SocketAddr = format!("{uas_ip}:5060").parse()?;
    let deadline = clock::now() + Duration::from_secs(10);
    while std::net::UdpSocket::bind(addr).is_ok() {
        if let Ok(Some(st)) = uas.try_wait() {
            bail!("SIPp uas exited at once ({st})");
        }
        if clock::now() > deadline {
            bail!("SIPp uas did not bind {addr} within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Warm-up (not counted): both processes running and paged in.
    let _ = uac(sipp, dir.path(), &uac_ip, &uas_ip, 100, 1).await?;
    let mut steps = Vec::new();
    for &rate in RATES {
        let mut step = uac(sipp, dir.path(), &uac_ip, &uas_ip, rate, STEP_SECONDS).await?;
        if step.stop.is_some() && step.failed > 0 {
            let first = step.stop.clone().unwrap_or_default();
            step = uac(sipp, dir.path(), &uac_ip, &uas_ip, rate, STEP_SECONDS).await?;
            step.retried = Some(first);
        }
        let stop = step.stop.is_some();
        steps.push(step);
        if stop {
            break;
        }
    }
    let _ = uas.kill().await;
    Ok(steps)
}

async fn uac(
    sipp: &Path,
    dir: &Path,
    ip: &str,
    uas: &str,
    rate: u32,
    seconds: u32,
) -> anyhow::Result<Step> {
    let calls = rate * seconds;
    let stat = dir.join(format!("uac-{rate}-{seconds}.csv"));
    let _ = std::fs::remove_file(&stat);
    let start = clock::now();
    let out = tokio::process::Command::new(sipp)
        .args(["-sn", "uac", &format!("{uas}:5060"), "-i", ip, "-p", "5061"])
        .args(["-r", &rate.to_string(), "-m", &calls.to_string()])
        // A call that gets no answer fails after 5 s; the whole step is over after 30 s.
        .args(["-recv_timeout", "5000", "-timeout", "30s", "-nostdin"])
        .args(["-trace_stat", "-fd", "60", "-stf"])
        .arg(&stat)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {} uac", sipp.display()))?;
    let wall = clock::since(start).as_secs_f64();
    let text = std::fs::read_to_string(&stat).unwrap_or_default();
    let (successful, failed, achieved) = parse_stat(&text).unwrap_or((0, 0, 0.0));
    let stop = if !out.status.success() || failed > 0 || successful < u64::from(calls) {
        Some(format!(
            "{failed} failed, {successful} of {calls} successful (exit {})",
            out.status.code().unwrap_or(-1)
        ))
    } else if achieved < KEEP_UP * f64::from(rate) {
        Some(format!(
            "fell behind: {achieved:.0} calls/s of {rate} ({wall:.1} s)"
        ))
    } else {
        None
    };
    Ok(Step {
        rate,
        achieved,
        successful,
        failed,
        stop,
        retried: None,
    })
}

/// `(SuccessfulCall(C), FailedCall(C), CallRate(C))` of the last line of a SIPp statistics
/// file (`-trace_stat`; `;`-separated, header first).
pub fn parse_stat(text: &str) -> Option<(u64, u64, f64)> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let col = |name: &str| -> Option<&str> {
        let i = head.iter().position(|h| h.trim() == name)?;
        last.get(i).map(|v| v.trim())
    };
    Some((
        col("SuccessfulCall(C)")?.parse().ok()?,
        col("FailedCall(C)")?.parse().ok()?,
        col("CallRate(C)")?.parse().ok()?,
    ))
}

/// The highest rate achieved by a step with no failed call.
pub fn best(steps: &[Step]) -> Option<f64> {
    steps
        .iter()
        .filter(|s| s.failed == 0 && s.successful > 0)
        .map(|s| s.achieved)
        .max_by(f64::total_cmp)
}

/// Row (f).
pub async fn row() -> anyhow::Result<Row> {
    const ID: &str = "f.sipp";
    const NAME: &str = "(f) SIP dialogs per second: the chain (4 per session) vs SIPp uac→uas";
    const TARGET: &str = ">= 1.0 x SIPp";
    let Some(sipp) = find_sipp() else {
        return Ok(Row::not_run(
            ID,
            NAME,
            "x SIPp",
            TARGET,
            "sipp is not installed (Debian package sip-tester)",
        ));
    };
    let mut chain = vec![sessions::measure().await?];
    let steps = ramp(&sipp).await?;
    chain.push(sessions::measure().await?);
    chain.push(sessions::measure().await?);
    let mut sorted = chain.clone();
    sorted.sort_by(f64::total_cmp);
    let sessions_per_s = sorted[1];
    let dialogs = DIALOGS_PER_SESSION * sessions_per_s;
    let ver = version(&sipp).await;
    let ladder: Vec<String> = steps
        .iter()
        .map(|s| {
            let again = match &s.retried {
                Some(why) => format!(" [second try; first: {why}]"),
                None => String::new(),
            };
            match &s.stop {
                None => format!("{} ok ({:.0}){again}", s.rate, s.achieved),
                Some(why) => format!("{} STOP: {why}{again}", s.rate),
            }
        })
        .collect();
    let note = format!(
        "{ver}, built-in uac/uas over UDP, {STEP_SECONDS} s per rate: {}; chain {:.0} \
         sessions/s (median of {}), {} sessions each, {} in flight",
        ladder.join(", "),
        sessions_per_s,
        chain
            .iter()
            .map(|c| format!("{c:.0}"))
            .collect::<Vec<_>>()
            .join("/"),
        sessions::SESSIONS,
        sessions::WINDOW
    );
    let Some(sipp_rate) = best(&steps) else {
        return Ok(Row::not_run(
            ID,
            NAME,
            "x SIPp",
            TARGET,
            format!("SIPp completed no step without failed calls: {note}"),
        ));
    };
    let ratio = dialogs / sipp_rate;
    Ok(Row::new(ID, NAME, ratio, "x SIPp")
        .target(TARGET, ratio >= 1.0)
        .of(
            ("chain, SIP dialogs/s", dialogs, "dialogs/s"),
            (
                "SIPp, highest rate with 0 failed calls",
                sipp_rate,
                "calls/s",
            ),
        )
        .note(note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_statistics_line_gives_the_counts_and_the_rate() {
        let csv = "StartTime;CallRate(C);SuccessfulCall(C);FailedCall(C);\n\
                   a;0;0;0;\n\
                   b;1993.02;4000;0;\n";
        assert_eq!(parse_stat(csv), Some((4000, 0, 1993.02)));
        assert_eq!(parse_stat("StartTime;\n"), None);
        let step = |rate, achieved, failed| Step {
            rate,
            achieved,
            successful: 10,
            failed,
            stop: None,
            retried: None,
        };
        let steps = [
            step(1000, 998.0, 0),
            step(2000, 1990.0, 0),
            step(4000, 3000.0, 2),
        ];
        assert_eq!(best(&steps), Some(1990.0));
        assert_eq!(best(&[]), None);
    }
}
