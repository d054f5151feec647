//! The SIP/IP core: a real SIP proxy (Kamailio) between every pair of entities.
//!
//! This module owns starting and stopping the proxy. The configuration is
//! `interop/kamailio/kamailio.cfg`, compiled into the binary so that an installed harness
//! needs no checkout; it is written into a scratch folder and Kamailio is started in its own
//! process group (stopped with the group on drop, like a SUT), listening on UDP and TCP at one
//! loopback address given on its command line. The entities learn the address through
//! [`Topology::core`](crate::topology::Topology::core) and route through it.
//!
//! With the run's TLS material it serves SIP over TLS too, one port above (5061 beside 5060:
//! TCP and TLS cannot share a port), presenting a certificate issued from the run's CA for
//! its addresses; the cases over TLS route through that port.

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

/// Kamailio's tls module (Debian packages it apart: kamailio-tls-modules), looked for where
/// distributions install modules (`/usr/lib/<triplet>/kamailio/modules`, `/usr/lib64/…`,
/// `/usr/local/lib…`); `None` when absent, and then the core serves no SIP over TLS.
pub fn kamailio_tls_module() -> Option<PathBuf> {
    [
        "/usr/lib",
        "/usr/lib64",
        "/usr/local/lib",
        "/usr/local/lib64",
    ]
    .iter()
    .flat_map(|d| {
        let nested = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("kamailio/modules/tls.so"));
        std::iter::once(Path::new(d).join("kamailio/modules/tls.so")).chain(nested)
    })
    .find(|p| p.is_file())
}

/// Why the core cannot serve SIP over TLS with `config` (the built-in one when `None`), or
/// `None` when it can: the tls module is missing, or a configuration given instead of the
/// built-in one has no `WITH_TLS` block (Kamailio then refuses `-l tls:…` and would not start).
pub fn no_tls_reason(config: Option<&Path>) -> Option<String> {
    if kamailio_tls_module().is_none() {
        return Some(
            "SIP over TLS: Kamailio's tls module is not installed (Debian: kamailio-tls-modules)"
                .into(),
        );
    }
    let cfg = config?;
    let text = std::fs::read_to_string(cfg).unwrap_or_default();
    (!text.contains("WITH_TLS")).then(|| {
        format!(
            "SIP over TLS: the Kamailio configuration {} has no WITH_TLS block",
            cfg.display()
        )
    })
}

/// A running proxy; stopped (its whole process group) when dropped.
pub struct CoreProxy {
    proc: SutProcess,
    addr: SocketAddr,
    /// Its IPv6 listener, for the cases on IPv6 (`ip: v6`).
    addr_v6: Option<SocketAddr>,
    /// Its SIP-over-TLS listeners (IPv4, IPv6), when started with TLS material.
    tls: Option<(SocketAddr, Option<SocketAddr>)>,
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
        CoreProxy::start_kamailio_dual(addr, None, config, timeout).await
    }

    /// Like [`CoreProxy::start_kamailio`], listening on UDP and TCP at `addr_v6` too (an IPv6
    /// loopback address and port): one proxy for the run's IPv4 and IPv6 cases.
    pub async fn start_kamailio_dual(
        addr: SocketAddr,
        addr_v6: Option<SocketAddr>,
        config: Option<&Path>,
        timeout: Duration,
    ) -> anyhow::Result<CoreProxy> {
        CoreProxy::start_kamailio_tls(addr, addr_v6, None, config, timeout).await
    }

    /// Like [`CoreProxy::start_kamailio_dual`], serving SIP over TLS too when `tls` is given:
    /// at the port above each address, with a certificate that `tls` issues for them, and
    /// requiring and verifying the entities' certificates against its CA.
    pub async fn start_kamailio_tls(
        addr: SocketAddr,
        addr_v6: Option<SocketAddr>,
        tls: Option<&crate::driver::tls::TlsContext>,
        config: Option<&Path>,
        timeout: Duration,
    ) -> anyhow::Result<CoreProxy> {
        for a in std::iter::once(addr).chain(addr_v6) {
            if !a.ip().is_loopback() {
                bail!("the SIP/IP core must listen on a loopback address, not {a}");
            }
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
        let mut argv: Vec<String> = vec![
            bin.display().to_string(),
            "-f".into(),
            cfg.display().to_string(),
            // Foreground, logging to stderr (kept as evidence). 256 MB of shared memory: the
            // tls module keeps OpenSSL's state there, and with 64 MB a full run (16 cases at a
            // time, each case's TLS connections open for the whole case) had the core refuse
            // TLS handshakes and answer 477 in 2 of 7 runs (none in 10 with 256 MB).
            "-DD".into(),
            "-E".into(),
            "-m".into(),
            "256".into(),
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
        if let Some(a6) = addr_v6 {
            argv.extend([
                "-l".into(),
                format!("udp:{a6}"),
                "-l".into(),
                format!("tcp:{a6}"),
            ]);
        }
        let above = |a: SocketAddr| SocketAddr::new(a.ip(), a.port().wrapping_add(1));
        let tls = tls.filter(|_| no_tls_reason(config).is_none());
        let tls_addrs = tls.map(|_| (above(addr), addr_v6.map(above)));
        if let (Some(ctx), Some((t4, t6))) = (tls, tls_addrs) {
            let ips: Vec<std::net::IpAddr> = std::iter::once(addr.ip())
                .chain(addr_v6.map(|a| a.ip()))
                .collect();
            let (cert, key) = ctx
                .issue_pem("cpm-harness-core", &ips)
                .context("the core's TLS certificate")?;
            let file = |name: &str, text: &str| -> anyhow::Result<String> {
                let p = dir.path().join(name);
                std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
                Ok(p.display().to_string())
            };
            // Quoted: the config's preprocessor substitutes them as string literals.
            let cert = file("core.pem", &cert)?;
            let key = file("core.key", &key)?;
            let ca = file("ca.pem", ctx.ca_pem())?;
            argv.extend([
                "-A".into(),
                "WITH_TLS".into(),
                "-A".into(),
                format!("TLS_CERT=\"{cert}\""),
                "-A".into(),
                format!("TLS_KEY=\"{key}\""),
                "-A".into(),
                format!("TLS_CA=\"{ca}\""),
                "-l".into(),
                format!("tls:{t4}"),
            ]);
            if let Some(t6) = t6 {
                argv.extend(["-l".into(), format!("tls:{t6}")]);
            }
        }
        let mut proc = SutProcess::launch(&argv, &Readiness::Port(addr), timeout)
            .await
            .with_context(|| format!("starting kamailio at {addr}"))?;
        // Ready on IPv4 means its listeners are set up; the others answer too, or the proxy is
        // no use for the IPv6 or TLS cases.
        let others = addr_v6.into_iter().chain(
            tls_addrs
                .into_iter()
                .flat_map(|(t4, t6)| std::iter::once(t4).chain(t6)),
        );
        for a in others {
            let ok = tokio::time::timeout(timeout, async {
                loop {
                    if tokio::net::TcpStream::connect(a).await.is_ok() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .is_ok();
            if !ok {
                let log = proc.drain_log().join("\n");
                proc.stop(Duration::from_secs(2)).await;
                bail!("kamailio does not accept TCP connections at {a}:\n{log}");
            }
        }
        Ok(CoreProxy {
            proc,
            addr,
            addr_v6,
            tls: tls_addrs,
            _dir: dir,
        })
    }

    /// Starts Kamailio on the first free pair of `candidates` (an IPv4 address and, for the
    /// IPv6 cases, an IPv6 one; another run may hold one).
    pub async fn start_kamailio_any_dual(
        candidates: &[(SocketAddr, Option<SocketAddr>)],
        tls: Option<&crate::driver::tls::TlsContext>,
        config: Option<&Path>,
        timeout: Duration,
    ) -> anyhow::Result<CoreProxy> {
        let mut errors = Vec::new();
        for &(a, a6) in candidates {
            // A listener already there belongs to someone else: skip without starting.
            let above = |x: SocketAddr| SocketAddr::new(x.ip(), x.port().wrapping_add(1));
            let tls_ports = tls
                .iter()
                .flat_map(|_| std::iter::once(above(a)).chain(a6.map(above)));
            if let Some(busy) = std::iter::once(a).chain(a6).chain(tls_ports).find(|x| {
                std::net::TcpStream::connect_timeout(x, Duration::from_millis(100)).is_ok()
            }) {
                errors.push(format!("{busy}: in use"));
                continue;
            }
            match CoreProxy::start_kamailio_tls(a, a6, tls, config, timeout).await {
                Ok(p) => return Ok(p),
                Err(e) => errors.push(format!("{a}: {e:#}")),
            }
        }
        bail!("could not start kamailio:\n{}", errors.join("\n"))
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

    /// Its IPv6 address, when it listens on one.
    pub fn addr_v6(&self) -> Option<SocketAddr> {
        self.addr_v6
    }

    /// Its SIP-over-TLS addresses (IPv4, IPv6), when it serves TLS.
    pub fn tls_addrs(&self) -> Option<(SocketAddr, Option<SocketAddr>)> {
        self.tls
    }

    /// The address for the entities of a topology of `family`.
    pub fn addr_for(&self, family: crate::config::IpFamily) -> Option<SocketAddr> {
        match family {
            crate::config::IpFamily::V4 => Some(self.addr),
            crate::config::IpFamily::V6 => self.addr_v6,
        }
    }

    /// What the proxy printed so far (its warnings name malformed requests it dropped).
    pub fn log(&mut self) -> Vec<String> {
        self.proc.drain_log().to_vec()
    }

    pub async fn stop(mut self) {
        self.proc.stop(Duration::from_secs(2)).await;
    }
}
