//! TLS for the tokio drivers (never the sans-IO core): MSRP over TLS (`msrps:`,
//! `TCP/TLS/MSRP`, RFC 4975 §14, RFC 6135) with rustls and its `ring` provider, TLS 1.2 and
//! 1.3 only (RFC 8996).
//!
//! Certificates: a [`TlsContext`] holds the CA that the run trusts and, when it has the CA's
//! key, mints a leaf per entity (its name and its IP address as subject alternative names)
//! as the entity's listener starts. The harness makes a fresh CA per run and hands it to the
//! reference SUT (`sut --tls-dir DIR`: `ca.pem`, `ca.key`), so both sides trust one another;
//! a vendor's PIXIT names the CA bundle to trust, the certificate and key the harness presents
//! and whether (and against which name) the SUT's certificate is verified ([`Verify`]).
//!
//! The opener of a link starts the TCP and the TLS handshake (it is the TLS client); the
//! client verifies the server against the address of the peer's `msrps:` URI. Every session's
//! secrets go to the process's key log ([`keylog_lines`]), which the capture writer puts in
//! the pcapng (a Decryption Secrets Block), so Wireshark decodes what crossed the wire.

use crate::trace::{Recorder, WireEvent};
use anyhow::{anyhow, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A TLS handshake that takes longer than this fails (a peer that never answers the
/// ClientHello, or plain text that waits for a reply, cannot hang a case).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The subject of the per-run CA (also used to rebuild its issuer from its key).
const CA_NAME: &str = "cpm-harness per-run test CA";

/// Whether, and against which name, a TLS client verifies its peer's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Verify {
    /// No verification at all (a vendor's PIXIT may say so; never the default).
    Off,
    /// Against the IP address the client connects to (the host of the peer's URI).
    #[default]
    Address,
    /// Against this DNS name (a vendor's certificate names its host, not an address).
    Name(String),
}

/// The run's TLS material.
pub struct TlsContext {
    ca_pem: String,
    /// The CA's key (PKCS#8 PEM) when leaves are minted here; `None` with a given leaf.
    ca_key_pem: Option<String>,
    issuer: Option<rcgen::Issuer<'static, rcgen::KeyPair>>,
    roots: Arc<RootCertStore>,
    /// The certificate chain and key every entity presents instead of a minted leaf.
    fixed: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    verify: Verify,
    /// The protocol versions offered and accepted ([`VERSIONS`] unless restricted).
    versions: &'static [&'static rustls::SupportedProtocolVersion],
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("mints", &self.issuer.is_some())
            .field("fixed", &self.fixed.is_some())
            .field("verify", &self.verify)
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.2 and 1.3; never 1.0 or 1.1 (RFC 8996).
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// [`TlsContext::tls12_only`].
const TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// A leaf certificate for `name` naming `sans`, signed by the run's CA: server and client
/// authentication both, since every hop is between two servers that may open it either way.
fn leaf(
    name: &str,
    sans: Vec<String>,
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
) -> anyhow::Result<(rcgen::Certificate, rcgen::KeyPair)> {
    let mut params = rcgen::CertificateParams::new(sans)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert, key))
}

/// The CA's parameters; its name carries a digest of its key, so two runs' CAs (or the
/// harness's and a SUT's own) never share a name and an untrusted one reads as such.
fn ca_params(key: &rcgen::KeyPair) -> anyhow::Result<rcgen::CertificateParams> {
    use sha2::Digest;
    let id = hex::encode(&sha2::Sha256::digest(key.public_key_pem().as_bytes())[..6]);
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{CA_NAME} {id}"));
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn parse_certs(pem: &str, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{what}: not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(anyhow!("{what}: no certificate in it"));
    }
    Ok(certs)
}

impl TlsContext {
    /// A fresh CA (ECDSA P-256) that mints every entity's leaf; peers are verified by address.
    pub fn generate() -> anyhow::Result<TlsContext> {
        let key = rcgen::KeyPair::generate().context("generating the CA key")?;
        let params = ca_params(&key)?;
        let cert = params.self_signed(&key).context("signing the CA")?;
        TlsContext::from_ca(&cert.pem(), &key.serialize_pem(), Verify::Address)
    }

    /// A context from a CA certificate and its key (the harness's per-run CA handed to the
    /// reference SUT): leaves are minted from it.
    pub fn from_ca(ca_pem: &str, ca_key_pem: &str, verify: Verify) -> anyhow::Result<TlsContext> {
        let key = rcgen::KeyPair::from_pem(ca_key_pem).context("the CA key")?;
        let issuer = rcgen::Issuer::new(ca_params(&key)?, key);
        let mut ctx = TlsContext::trusting(ca_pem, verify)?;
        ctx.ca_key_pem = Some(ca_key_pem.to_string());
        ctx.issuer = Some(issuer);
        Ok(ctx)
    }

    /// A context that trusts the CAs of `bundle_pem` and presents no certificate of its own
    /// until [`TlsContext::present`] gives one (or it can mint one).
    pub fn trusting(bundle_pem: &str, verify: Verify) -> anyhow::Result<TlsContext> {
        let mut roots = RootCertStore::empty();
        for c in parse_certs(bundle_pem, "CA bundle")? {
            roots
                .add(c)
                .map_err(|e| anyhow!("CA bundle: a certificate is not usable: {e}"))?;
        }
        Ok(TlsContext {
            ca_pem: bundle_pem.to_string(),
            ca_key_pem: None,
            issuer: None,
            roots: Arc::new(roots),
            fixed: None,
            verify,
            versions: VERSIONS,
        })
    }

    /// Trusts the CAs of `bundle_pem` too.
    pub fn also_trust(mut self, bundle_pem: &str) -> anyhow::Result<TlsContext> {
        let mut roots = (*self.roots).clone();
        for c in parse_certs(bundle_pem, "CA bundle")? {
            roots
                .add(c)
                .map_err(|e| anyhow!("CA bundle: a certificate is not usable: {e}"))?;
        }
        self.roots = Arc::new(roots);
        Ok(self)
    }

    /// Presents this certificate chain and key (PEM) instead of minted leaves.
    pub fn present(mut self, cert_pem: &str, key_pem: &str) -> anyhow::Result<TlsContext> {
        use rustls::pki_types::pem::PemObject;
        let chain = parse_certs(cert_pem, "certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| anyhow!("key: not a PEM private key: {e}"))?;
        self.fixed = Some((chain, Arc::new(key)));
        Ok(self)
    }

    /// Reads `DIR/ca.pem` and `DIR/ca.key` (as [`TlsContext::write_dir`] writes them).
    pub fn from_dir(dir: &Path) -> anyhow::Result<TlsContext> {
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .with_context(|| format!("{}: cannot read", dir.join(f).display()))
        };
        TlsContext::from_ca(&read("ca.pem")?, &read("ca.key")?, Verify::Address)
    }

    /// Writes `DIR/ca.pem` (the CA to trust) and, when this context mints, `DIR/ca.key`.
    pub fn write_dir(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        std::fs::write(dir.join("ca.pem"), &self.ca_pem)?;
        if let Some(k) = &self.ca_key_pem {
            std::fs::write(dir.join("ca.key"), k)?;
        }
        Ok(())
    }

    /// Offers and accepts TLS 1.2 only (a peer that supports no more, and the tests that
    /// prove the capture reader's TLS 1.2 decoding).
    pub fn tls12_only(mut self) -> TlsContext {
        self.versions = TLS12_ONLY;
        self
    }

    pub fn with_verify(mut self, verify: Verify) -> TlsContext {
        self.verify = verify;
        self
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The chain and key entity `name` on `ip` presents: the given one, or a leaf minted now.
    fn identity(
        &self,
        name: &str,
        ip: IpAddr,
    ) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        if let Some((chain, key)) = &self.fixed {
            return Ok((chain.clone(), key.clone_key()));
        }
        let issuer = self
            .issuer
            .as_ref()
            .ok_or_else(|| anyhow!("TLS: no certificate to present (give cert and key)"))?;
        let mut sans = vec![ip.to_string()];
        let dns: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        if !dns.is_empty() {
            sans.push(dns);
        }
        let (cert, key) = leaf(name, sans, issuer)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert.der().clone()], key))
    }

    /// Whether [`TlsContext::issue_pem`] can mint (the CA's key is at hand).
    pub fn can_issue(&self) -> bool {
        self.issuer.is_some()
    }

    /// A leaf for a peer outside this process (the SIP/IP core): its certificate and its
    /// key (PKCS#8), both PEM, naming every address in `ips` (RFC 5922 §7.1: the peer is
    /// reached by IP address), minted from the run's CA. An error when this context cannot
    /// mint (a given certificate, no CA key).
    pub fn issue_pem(&self, name: &str, ips: &[IpAddr]) -> anyhow::Result<(String, String)> {
        let issuer = self.issuer.as_ref().ok_or_else(|| {
            anyhow!("TLS: the run's CA key is not at hand to issue a certificate")
        })?;
        let (cert, key) = leaf(name, ips.iter().map(|i| i.to_string()).collect(), issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The TLS server side of entity `name` listening on `ip`.
    pub fn acceptor(&self, name: &str, ip: IpAddr) -> anyhow::Result<TlsAcceptor> {
        let (chain, key) = self.identity(name, ip)?;
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("TLS server certificate")?;
        cfg.key_log = keylog();
        Ok(TlsAcceptor::from(Arc::new(cfg)))
    }

    /// The TLS client side of entity `name` on `ip` (it presents its certificate when the
    /// server asks for one).
    pub fn connector(&self, name: &str, ip: IpAddr) -> anyhow::Result<TlsConnector> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions)?;
        let builder = if self.verify == Verify::Off {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                self.roots.clone(),
                provider(),
            )
            .build()?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(inner)))
        } else {
            builder.with_root_certificates(self.roots.clone())
        };
        let mut cfg = match self.identity(name, ip) {
            Ok((chain, key)) => builder.with_client_auth_cert(chain, key)?,
            Err(_) => builder.with_no_client_auth(),
        };
        cfg.key_log = keylog();
        Ok(TlsConnector::from(Arc::new(cfg)))
    }

    /// The name the client checks the server's certificate against, connecting to `to`.
    pub fn server_name(&self, to: SocketAddr) -> ServerName<'static> {
        match &self.verify {
            Verify::Name(n) => ServerName::try_from(n.clone())
                .unwrap_or_else(|_| ServerName::IpAddress(to.ip().into())),
            _ => ServerName::IpAddress(to.ip().into()),
        }
    }
}

/// [`Verify::Off`]: any certificate is taken; the handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

// ------------------------------------------------------------------ the process's context

static CONTEXT: RwLock<Option<Arc<TlsContext>>> = RwLock::new(None);

/// Makes `ctx` the TLS material of every node this process starts from now on.
pub fn install(ctx: TlsContext) {
    if let Ok(mut c) = CONTEXT.write() {
        *c = Some(Arc::new(ctx));
    }
}

/// The installed context, or a fresh per-process CA installed now (harness and SUT nodes of
/// one process then trust each other).
pub fn context() -> anyhow::Result<Arc<TlsContext>> {
    if let Some(c) = CONTEXT.read().ok().and_then(|c| c.clone()) {
        return Ok(c);
    }
    let mut w = CONTEXT
        .write()
        .map_err(|_| anyhow!("TLS context lock poisoned"))?;
    if let Some(c) = w.clone() {
        return Ok(c);
    }
    let c = Arc::new(TlsContext::generate()?);
    *w = Some(c.clone());
    Ok(c)
}

/// A folder holding this process's context as [`TlsContext::write_dir`] writes it (`ca.pem`,
/// `ca.key`), written once: what the SUT is given as `{tls-dir}` (`sut --tls-dir`).
pub fn shared_dir() -> anyhow::Result<std::path::PathBuf> {
    static DIR: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cpm-harness-tls-{}", std::process::id()));
        context()
            .and_then(|c| c.write_dir(&dir))
            .map(|_| dir)
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|e| anyhow!("TLS material: {e}"))
}

// ------------------------------------------------------------------ key log

/// NSS key log lines (`LABEL client_random secret`, hex) of every TLS session of the process.
#[derive(Debug, Default)]
struct KeyLogBuf(Mutex<Vec<String>>);

static KEYLOG: std::sync::LazyLock<Arc<KeyLogBuf>> =
    std::sync::LazyLock::new(|| Arc::new(KeyLogBuf::default()));

impl rustls::KeyLog for KeyLogBuf {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!(
                "{label} {} {}",
                hex::encode(client_random),
                hex::encode(secret)
            ));
        }
    }
}

fn keylog() -> Arc<dyn rustls::KeyLog> {
    KEYLOG.clone()
}

/// The key log lines whose client random is one of `randoms` (hex), or all with `None`.
pub fn keylog_lines(randoms: Option<&[String]>) -> Vec<String> {
    let Ok(v) = KEYLOG.0.lock() else {
        return vec![];
    };
    v.iter()
        .filter(|l| match randoms {
            None => true,
            Some(r) => l
                .split(' ')
                .nth(1)
                .is_some_and(|cr| r.iter().any(|x| x.eq_ignore_ascii_case(cr))),
        })
        .cloned()
        .collect()
}

// ------------------------------------------------------------------ handshakes and errors

pub type ClientStream = tokio_rustls::client::TlsStream<Tap>;
pub type ServerStream = tokio_rustls::server::TlsStream<Tap>;

/// The TCP stream under a TLS session, recording the TLS records that cross it
/// ([`WireEvent::TlsRecords`]): the capture writes them on the wire, the model reads the
/// session's plaintext the driver records above TLS.
pub struct Tap {
    pub tcp: TcpStream,
    rec: Option<(Recorder, SocketAddr, SocketAddr)>,
    /// Bytes at the front of the next write that were recorded but not yet written: a write
    /// is recorded before it is made (the one-copy rule: the sender records first, so the
    /// peer's reply is never recorded before it), and the TLS layer offers an unwritten tail
    /// again.
    recorded_ahead: usize,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap").field("tcp", &self.tcp).finish()
    }
}

impl Tap {
    pub fn new(tcp: TcpStream, rec: Option<Recorder>) -> Tap {
        let ends = tcp.local_addr().ok().zip(tcp.peer_addr().ok());
        Tap {
            rec: rec.zip(ends).map(|(r, (l, p))| (r, l, p)),
            tcp,
            recorded_ahead: 0,
        }
    }
}

impl tokio::io::AsyncRead for Tap {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf);
        if let (std::task::Poll::Ready(Ok(())), Some((rec, local, peer))) = (&r, &self.rec) {
            let got = &buf.filled()[before..];
            if !got.is_empty() {
                rec.received(WireEvent::TlsRecords {
                    from: *peer,
                    to: *local,
                    data: bytes::Bytes::copy_from_slice(got),
                });
            }
        }
        r
    }
}

impl tokio::io::AsyncWrite for Tap {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Some((rec, local, peer)) = &self.rec {
            if data.len() > self.recorded_ahead {
                rec.sent(WireEvent::TlsRecords {
                    from: *local,
                    to: *peer,
                    data: bytes::Bytes::copy_from_slice(&data[self.recorded_ahead..]),
                });
                self.recorded_ahead = data.len();
            }
        }
        let r = std::pin::Pin::new(&mut self.tcp).poll_write(cx, data);
        match &r {
            std::task::Poll::Ready(Ok(n)) => {
                self.recorded_ahead = self.recorded_ahead.saturating_sub(*n)
            }
            std::task::Poll::Ready(Err(_)) => self.recorded_ahead = 0,
            std::task::Poll::Pending => {}
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The client handshake over `tcp` to `to` (bounded by [`HANDSHAKE_TIMEOUT`]); the error
/// names the peer and the TLS alert.
pub async fn connect(
    ctx: &TlsContext,
    name: &str,
    tcp: TcpStream,
    to: SocketAddr,
    rec: Option<Recorder>,
) -> Result<ClientStream, String> {
    let connector = ctx
        .connector(name, tcp.local_addr().map(|a| a.ip()).unwrap_or(to.ip()))
        .map_err(|e| format!("TLS to {to}: {e}"))?;
    let sn = ctx.server_name(to);
    let tcp = Tap::new(tcp, rec);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(sn, tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("TLS handshake with {to} failed: {}", describe(&e))),
        Err(_) => Err(format!(
            "TLS handshake with {to} failed: no answer to the ClientHello within {} s \
             (is the peer's port plain TCP?)",
            HANDSHAKE_TIMEOUT.as_secs()
        )),
    }
}

/// The server handshake of a connection from `peer` (bounded by [`HANDSHAKE_TIMEOUT`]).
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    rec: Option<Recorder>,
) -> Result<ServerStream, String> {
    let tcp = Tap::new(tcp, rec);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!(
            "TLS handshake from {peer} failed: {}",
            describe(&e)
        )),
        Err(_) => Err(format!(
            "TLS handshake from {peer} failed: no ClientHello within {} s",
            HANDSHAKE_TIMEOUT.as_secs()
        )),
    }
}

/// A handshake error in words, with the TLS alert it sent or received (RFC 8446 §6 names).
pub fn describe(e: &std::io::Error) -> String {
    let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return "the peer closed the connection during the handshake (it rejected this \
                    side before its alert reached us, or does not speak TLS)"
                .into();
        }
        return e.to_string();
    };
    match err {
        rustls::Error::AlertReceived(a) => {
            format!(
                "the peer sent TLS alert {} (it rejected this side)",
                alert_name(*a)
            )
        }
        rustls::Error::InvalidCertificate(ce) => {
            let alert = AlertDescription::from(ce.clone());
            let why = match ce {
                rustls::CertificateError::UnknownIssuer => {
                    "its certificate is not signed by a trusted CA".to_string()
                }
                rustls::CertificateError::BadSignature => {
                    "its certificate's signature does not verify against the trusted CA".to_string()
                }
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "its certificate does not name the address or name connected to".to_string()
                }
                other => format!("its certificate is invalid ({other:?})"),
            };
            format!("{why}; sent TLS alert {}", alert_name(alert))
        }
        rustls::Error::InvalidMessage(m) => format!(
            "the peer's bytes are not TLS (plain text on a TLS port?): {m:?}; sent TLS alert {}",
            alert_name(AlertDescription::DecodeError)
        ),
        rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => format!(
            "{err}; sent TLS alert {}",
            alert_name(AlertDescription::UnexpectedMessage)
        ),
        rustls::Error::PeerIncompatible(p) => format!(
            "incompatible peer ({p:?}); sent TLS alert {}",
            alert_name(AlertDescription::HandshakeFailure)
        ),
        other => other.to_string(),
    }
}

/// The RFC 8446 §6 spelling of an alert (`unknown_ca`, `bad_certificate`).
pub fn alert_name(a: AlertDescription) -> String {
    let debug = format!("{a:?}");
    match a {
        AlertDescription::UnknownCA => "unknown_ca".into(),
        AlertDescription::BadCertificate => "bad_certificate".into(),
        AlertDescription::DecodeError => "decode_error".into(),
        AlertDescription::UnexpectedMessage => "unexpected_message".into(),
        AlertDescription::HandshakeFailure => "handshake_failure".into(),
        AlertDescription::ProtocolVersion => "protocol_version".into(),
        AlertDescription::CertificateUnknown => "certificate_unknown".into(),
        AlertDescription::CertificateExpired => "certificate_expired".into(),
        _ => {
            // CamelCase to snake_case.
            let mut s = String::new();
            for (i, c) in debug.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    s.push('_');
                }
                s.push(c.to_ascii_lowercase());
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_leaves_verify_by_address_and_keys_are_logged() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let ctx = TlsContext::generate().unwrap();
            let ip: IpAddr = "127.0.0.1".parse().unwrap();
            let l = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
            let addr = l.local_addr().unwrap();
            let acc = ctx.acceptor("pf-a", ip).unwrap();
            let server = tokio::spawn(async move {
                let (s, peer) = l.accept().await.unwrap();
                accept(&acc, s, peer, None).await.map(|_| ())
            });
            let tcp = TcpStream::connect(addr).await.unwrap();
            let s = connect(&ctx, "client-a", tcp, addr, None).await.unwrap();
            let (_, conn) = s.get_ref();
            assert!(conn.protocol_version().is_some());
            server.await.unwrap().unwrap();
            assert!(!keylog_lines(None).is_empty());
        });
    }
}
