//! The SIP/IP core: a real SIP proxy (Kamailio) between every pair of entities.
//!
//! This module owns starting and stopping the proxy. The configuration is
//! `interop/kamailio/kamailio.cfg`, compiled into the binary so that an installed harness
//! needs no checkout; it is written into a scratch folder and Kamailio is started in its own
//! process group (stopped with the group on drop, like a SUT), listening on UDP and TCP at one
//! loopback address given on its command line. The entities learn the address through
//! [`Topology::core`](crate::topology::Topology::core) and route through it.

use crate::engine::sutproc::{Readiness, SutProcess};
use anyhow::{anyhow, bail, Context};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Kamailio configuration kept in the repository.
pub const KAMAILIO_CFG: &str = include_str!("../interop/kamailio/kamailio.cfg");

/// Which SIP/IP core sits between the entities.
/// Which SIP/IP core sits between the entities (`--core none|kamailio`, clap `ValueEnum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CoreKind {
    /// None: entities send to each other directly.
    #[value(name = "none", alias = "direct")]
    Direct,
    /// Kamailio, a stateful record-routing proxy.
    Kamailio,
}

/// The Kamailio binary: `$CPM_KAMAILIO`, else `kamailio` on PATH, else `/usr/sbin/kamailio`
/// (root's PATH has /usr/sbin, a user's often not).
pub fn kamailio_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CPM_KAMAILIO") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("kamailio"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from("/usr/sbin/kamailio");
        p.is_file().then_some(p)
    })
}

/// A running proxy; stopped (its whole process group) when dropped.
pub struct CoreProxy {
    proc: SutProcess,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl CoreProxy {
    /// Starts Kamailio listening on UDP and TCP at `addr`, and waits until it accepts TCP
    /// connections (at most `timeout`). `config` overrides the built-in configuration.
    pub async fn start_kamailio(
        addr: SocketAddr,
        config: Option<&Path>,
        timeout: Duration,
    ) -> anyhow::Result<CoreProxy> {
        if !addr.ip().is_loopback() {
            bail!("the SIP/IP core must listen on a loopback address, not {addr}");
        }
        let bin = kamailio_binary().ok_or_else(|| {
            anyhow!("kamailio not found (set CPM_KAMAILIO or install the Debian package kamailio)")
        })?;
        let dir = tempfile::Builder::new()
            .prefix("cpm-core-")
            .tempdir()
            .context("creating the proxy's scratch folder")?;
        let cfg = match config {
            Some(p) => p.to_path_buf(),
            None => {
                let p = dir.path().join("kamailio.cfg");
                std::fs::write(&p, KAMAILIO_CFG).context("writing kamailio.cfg")?;
                p
            }
        };
        let d = dir.path().display().to_string();
        let argv: Vec<String> = vec![
            bin.display().to_string(),
            "-f".into(),
            cfg.display().to_string(),
            // Foreground, logging to stderr (kept as evidence), small memory pools.
            "-DD".into(),
            "-E".into(),
            "-m".into(),
            "64".into(),
            "-M".into(),
            "8".into(),
            "-Y".into(),
            d.clone(),
            "-w".into(),
            d,
            "-A".into(),
            format!("CORE_IP={}", addr.ip()),
            "-l".into(),
            format!("udp:{addr}"),
            "-l".into(),
            format!("tcp:{addr}"),
        ];
        let proc = SutProcess::launch(&argv, &Readiness::Port(addr), timeout)
            .await
            .with_context(|| format!("starting kamailio at {addr}"))?;
        Ok(CoreProxy {
            proc,
            addr,
            _dir: dir,
        })
    }

    /// Starts Kamailio on the first free address of `candidates` (another run may hold one).
    pub async fn start_kamailio_any(
        candidates: &[SocketAddr],
        config: Option<&Path>,
        timeout: Duration,
    ) -> anyhow::Result<CoreProxy> {
        let mut errors = Vec::new();
        for &a in candidates {
            // A listener already there belongs to someone else: skip without starting.
            if std::net::TcpStream::connect_timeout(&a, Duration::from_millis(100)).is_ok() {
                errors.push(format!("{a}: in use"));
                continue;
            }
            match CoreProxy::start_kamailio(a, config, timeout).await {
                Ok(p) => return Ok(p),
                Err(e) => errors.push(format!("{a}: {e:#}")),
            }
        }
        bail!("could not start kamailio:\n{}", errors.join("\n"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the proxy printed so far (its warnings name malformed requests it dropped).
    pub fn log(&mut self) -> Vec<String> {
        self.proc.drain_log().to_vec()
    }

    pub async fn stop(mut self) {
        self.proc.stop(Duration::from_secs(2)).await;
    }
}
