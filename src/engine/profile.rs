//! The SUT profile (ISO/IEC 9646 PICS + PIXIT), one YAML file per SUT (`profiles/*.yaml`).
//!
//! - PICS, what the SUT implements: the `roles` it can play (and optionally which `splits`),
//!   the `figures`, `triggers` (pf-a/pf-b), `x-triggers`, `reuse`, `setup`, `transports`,
//!   `groups`, `l23-openers` and `acks` it supports. An omitted list declares every value.
//!   [`Profile::admits`] says why a case is not applicable, looking only at the knobs that can
//!   change what the SUT's roles do ([`Relevance`]).
//! - PIXIT, how to reach and drive it: either `addresses` (a topology file; the SUT already
//!   runs there) or `launch` (a command template, a readiness condition, a timeout, per case or
//!   per run), and `trigger`, how to make a SUT client-a send (a stdin line or a command).
//! - A *running SUT* (started or found once for the whole run, [`Profile::runs_once`]): the
//!   SUT's addresses come from `addresses` or a `sut: { ip, ports }` block (with
//!   `launch: { per: run }`), the harness's from a `harness: { ip, ports }` block: the k-th
//!   entity of the chain (client-a, pf-a, x, the pf-b instances, the members) listens for SIP
//!   on port `first + 2k` and for MSRP on `first + 2k + 1` of its side ([`Profile::run_topology`]).
//!   Cases then run one at a time, each after the previous one is over on the wire (waiting
//!   at most `settle-ms`, default 2000). `variant-header: true` makes the harness's entities
//!   put the case's variant in an `X-Cpm-Variant` header on their INVITEs — a test hook of the
//!   reference SUT's per-call mode (`sut --variant per-call`); never for a vendor's SUT.
//!   `self-check: true` (the reference profile only) adds the cases where the harness plays
//!   every role; a SUT's profile never has them (they are `selftest`'s).
//!
//! Templates take `{name}` placeholders ([`VARS`], filled by [`case_vars`]) and
//! `{<instance>.sip}`, `{<instance>.msrp}`, `{<instance>.ip}` from the case's topology;
//! [`expand`] turns a template into argv (split on whitespace after expansion; double quotes
//! keep a word together; `{{`/`}}` are literal braces). Unknown placeholders are rejected when
//! the profile is loaded, with a did-you-mean.
//!
//! ```yaml
//! name: reference
//! roles: [client-a, pf-a, x, pf-b, client-b]
//! triggers: [on-200, on-ack, on-send]
//! launch:
//!   command: "{exe} sut --topology {topology} --roles {roles} --figure {figure} …"
//!   ready: { stdout-line: ready }      # or { port: "{x.sip}" }
//!   ready-timeout-ms: 5000
//!   per: case                          # or run
//! trigger: { stdin-line: "send {size}" }   # or { command: "<template>" }
//! ```
//!
//! A trigger that names `{content}` pins the content: the harness writes the message (the
//! pattern of `{size}` bytes) to that file before it triggers the send, and MEDIA-DELIVERY
//! requires client-a to send exactly it (`trigger: { stdin-line: "send-file {content}" }`).
//! Without it client-a sends content of its own choosing, judged as the wire shows it.
//!
//! A running SUT (profiles/reference-running.yaml):
//!
//! ```yaml
//! harness: { ip: 127.0.0.1, ports: 20000-20999 }
//! sut: { ip: 127.0.0.2, ports: 30000-30999 }     # or addresses: my-sut.yaml
//! launch: { command: "…", ready: { stdout-line: ready }, per: run }
//! settle-ms: 2000
//! variant-header: true                           # the reference SUT only
//! ```

use crate::codec::sip::Transport;
use crate::config::{
    AckTiming, Figure, GroupKind, IpFamily, MiddleOpener, MsrpTransport, SetupMode, Trigger,
    Variant,
};
use crate::engine::spec::{ack_name, parse_split, split_name, Case, Relevance};
use crate::engine::suite::{locate_key, parse_yaml_hinted, Suite};
use crate::entity::Fault;
use crate::suggest::did_you_mean;
use crate::topology::{Role, Topology};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `{name}` placeholders [`case_vars`] fills (besides `{<instance>.sip|msrp|ip}`).
pub const VARS: &[&str] = &[
    "exe",
    "topology",
    "roles",
    "figure",
    "trigger",
    "x-trigger",
    "transport",
    "setup",
    "group",
    "l23",
    "ack",
    "reuse",
    "reuse-flag",
    "chunk-size",
    "size",
    "out-dir",
    "faults",
    "case",
    "content",
    "variant",
    "msrp-transport",
    "tls-dir",
];

/// Placeholders that do not change from case to case (allowed with `per: run`; `{roles}` is
/// the run's one split).
const RUN_VARS: &[&str] = &[
    "exe", "topology", "out-dir", "faults", "size", "roles", "tls-dir",
];

// ------------------------------------------------------------------------------------------
// Raw file format

/// The TLS PIXIT of a profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTls {
    /// PEM bundle of the CAs that sign the SUT's certificates (trusted besides the run's CA).
    #[serde(default)]
    ca: Option<PathBuf>,
    /// The certificate chain (PEM) the harness presents (default: a leaf per entity from the
    /// run's CA, `{tls-dir}/ca.pem`, which the SUT then trusts).
    #[serde(default)]
    cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(default)]
    key: Option<PathBuf>,
    /// `address` (default: the SUT's certificate must name the IP address connected to),
    /// `off`, or a DNS name it must carry.
    #[serde(default)]
    verify: Option<String>,
}

/// The TLS PIXIT, files resolved against the profile's folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPixit {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub verify: crate::driver::tls::Verify,
}

impl TlsPixit {
    /// The run's TLS context: a fresh CA that mints the harness's leaves, also trusting the
    /// PIXIT's CA bundle, presenting its certificate when given, verifying as it says.
    pub fn context(&self) -> anyhow::Result<crate::driver::tls::TlsContext> {
        use anyhow::Context;
        let read = |p: &Path| {
            std::fs::read_to_string(p).with_context(|| format!("tls: {}: cannot read", p.display()))
        };
        let mut ctx = crate::driver::tls::TlsContext::generate()?;
        if let Some(ca) = &self.ca {
            ctx = ctx.also_trust(&read(ca)?)?;
        }
        if let (Some(c), Some(k)) = (&self.cert, &self.key) {
            ctx = ctx.present(&read(c)?, &read(k)?)?;
        }
        Ok(ctx.with_verify(self.verify.clone()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProfile {
    name: String,
    #[serde(default)]
    about: Option<String>,
    roles: Vec<Role>,
    #[serde(default)]
    splits: Option<Vec<String>>,
    #[serde(default)]
    figures: Option<Vec<Figure>>,
    #[serde(default)]
    triggers: Option<Vec<Trigger>>,
    #[serde(default)]
    x_triggers: Option<Vec<Trigger>>,
    #[serde(default)]
    reuse: Option<Vec<bool>>,
    #[serde(default)]
    setup: Option<Vec<SetupMode>>,
    #[serde(default)]
    transports: Option<Vec<Transport>>,
    /// MSRP over TCP and/or TLS (absent: TCP only; TLS needs the `tls` PIXIT or the run's CA).
    #[serde(default)]
    msrp_transports: Option<Vec<MsrpTransport>>,
    /// TLS PIXIT: what the harness trusts and presents, and how it verifies the SUT.
    #[serde(default)]
    tls: Option<RawTls>,
    #[serde(default)]
    groups: Option<Vec<GroupKind>>,
    #[serde(default)]
    l23_openers: Option<Vec<MiddleOpener>>,
    #[serde(
        default,
        deserialize_with = "crate::engine::suite::ack_serde::option_list"
    )]
    acks: Option<Vec<AckTiming>>,
    #[serde(default)]
    ip_families: Option<Vec<IpFamily>>,
    #[serde(default)]
    addresses: Option<PathBuf>,
    #[serde(default)]
    launch: Option<RawLaunch>,
    #[serde(default)]
    trigger: Option<RawTrigger>,
    #[serde(default)]
    version_command: Option<String>,
    #[serde(default)]
    harness: Option<RawSide>,
    #[serde(default)]
    sut: Option<RawSide>,
    #[serde(default)]
    settle_ms: Option<u64>,
    #[serde(default)]
    report_timing: crate::config::ReportTiming,
    #[serde(default)]
    report_wait_ms: Option<u64>,
    #[serde(default)]
    no_response_wait_ms: Option<u64>,
    #[serde(default)]
    no_answer_wait_ms: Option<u64>,
    #[serde(default)]
    variant_header: bool,
    #[serde(default)]
    self_check: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSide {
    ip: String,
    ports: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLaunch {
    command: String,
    ready: RawReady,
    #[serde(default = "default_ready_timeout")]
    ready_timeout_ms: u64,
    #[serde(default)]
    per: Per,
}

fn default_ready_timeout() -> u64 {
    5000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawReady {
    #[serde(default)]
    stdout_line: Option<String>,
    #[serde(default)]
    port: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTrigger {
    #[serde(default)]
    stdin_line: Option<String>,
    #[serde(default)]
    command: Option<String>,
}

// ------------------------------------------------------------------------------------------
// Validated profile

/// How often the SUT is launched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Per {
    /// A fresh SUT per case (the topology and the variant are the case's).
    #[default]
    Case,
    /// One SUT for the whole run (its command may use only run-wide placeholders).
    Run,
}

/// When a launched SUT is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// A stdout line starting with this text.
    StdoutLine(String),
    /// A TCP connect to this address (a template, e.g. `{x.sip}`) succeeds.
    Port(String),
}

/// How to start the SUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Command template (see [`expand`]).
    pub command: String,
    pub ready: Ready,
    pub ready_timeout: Duration,
    pub per: Per,
}

/// How to make a SUT client-a send a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendTrigger {
    /// Write this line (a template, e.g. `send {size}`) to the SUT's stdin.
    StdinLine(String),
    /// Run this command template.
    Command(String),
}

/// Where one side's entities listen: one IP, a port range (`ports: 20000-20999`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub ip: std::net::IpAddr,
    pub first: u16,
    pub last: u16,
}

impl Place {
    fn overlaps(&self, o: &Place) -> bool {
        self.ip == o.ip && self.first <= o.last && o.first <= self.last
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ports {}-{}", self.ip, self.first, self.last)
    }
}

/// `settle-ms` when the profile does not say.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(2000);

/// A validated profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub about: Option<String>,
    /// Where it was loaded from (or `built-in`).
    pub origin: String,
    /// Roles the SUT can play.
    pub roles: Vec<Role>,
    /// Role sets it can play together; `None` = any subset of `roles`.
    pub splits: Option<Vec<Vec<Role>>>,
    pub figures: Option<Vec<Figure>>,
    pub triggers: Option<Vec<Trigger>>,
    pub x_triggers: Option<Vec<Trigger>>,
    pub reuse: Option<Vec<bool>>,
    pub setup: Option<Vec<SetupMode>>,
    pub transports: Option<Vec<Transport>>,
    /// MSRP transports (`None`: TCP only).
    pub msrp_transports: Option<Vec<MsrpTransport>>,
    pub tls: TlsPixit,
    pub groups: Option<Vec<GroupKind>>,
    pub l23_openers: Option<Vec<MiddleOpener>>,
    pub acks: Option<Vec<AckTiming>>,
    /// IP families the SUT speaks (`ip-families: [v4, v6]`); a running SUT's cases are those
    /// of its addresses' family.
    pub ip_families: Option<Vec<IpFamily>>,
    /// A fixed topology (path resolved against the profile's folder, and the loaded file).
    pub addresses: Option<(PathBuf, Topology)>,
    pub launch: Option<Launch>,
    pub trigger: Option<SendTrigger>,
    /// A command that prints the SUT's version (a template: `{exe}` only), run once per run
    /// for the conformance test report, without a shell.
    pub version_command: Option<String>,
    /// Where the harness's entities listen (a running SUT).
    pub harness: Option<Place>,
    /// Where the SUT's entities listen, for a SUT launched once (`per: run`).
    pub sut: Option<Place>,
    /// How long the harness waits for the previous case to be over on the wire (a running
    /// SUT).
    pub settle: Duration,
    /// PICS: when a middle entity of the SUT sends the success REPORT its upstream asked for
    /// (`report-timing: after-delivery` (default) or `on-receipt`).
    pub report_timing: crate::config::ReportTiming,
    /// PIXIT: how long the harness's sender waits for a success REPORT it asked for
    /// (`report-wait-ms`), and lingers after a last chunk sent with `Failure-Report: no`
    /// (`no-response-wait-ms`); `None`: the defaults of [`crate::entity::holds`].
    pub report_wait_ms: Option<u64>,
    pub no_response_wait_ms: Option<u64>,
    /// PIXIT `no-answer-wait-ms`: how long the harness waits for the SUT to give up on a
    /// member that never answers its INVITE (scenario `member-never-answers`) before it gives
    /// up itself; `None`: [`crate::entity::holds::DEFAULT_NO_ANSWER_WAIT`].
    pub no_answer_wait_ms: Option<u64>,
    /// The harness's INVITEs carry `X-Cpm-Variant` (the reference SUT's per-call mode).
    pub variant_header: bool,
    /// The self-check cases (split `none`) belong to this profile's runs (the reference
    /// profile).
    pub self_check: bool,
}

impl Profile {
    pub fn load(path: &Path) -> anyhow::Result<Profile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Profile::parse(&text, &path.display().to_string(), dir)
    }

    /// Parses and validates; `base_dir` resolves a relative `addresses` path.
    pub fn parse(text: &str, origin: &str, base_dir: &Path) -> anyhow::Result<Profile> {
        let raw: RawProfile = parse_yaml_hinted(text, origin)?;
        build(raw, text, origin, base_dir).map_err(|e| anyhow::anyhow!(e))
    }

    /// A profile for the self-check only: plays no role, needs no launch.
    pub fn harness_only() -> Profile {
        Profile {
            name: "harness-only".into(),
            about: Some("the harness plays every role (self-check)".into()),
            origin: "built-in".into(),
            roles: Vec::new(),
            splits: None,
            figures: None,
            triggers: None,
            x_triggers: None,
            reuse: None,
            setup: None,
            transports: None,
            msrp_transports: None,
            tls: TlsPixit::default(),
            groups: None,
            l23_openers: None,
            acks: None,
            ip_families: None,
            addresses: None,
            launch: None,
            trigger: None,
            version_command: None,
            harness: None,
            sut: None,
            settle: DEFAULT_SETTLE,
            report_timing: crate::config::ReportTiming::default(),
            report_wait_ms: None,
            no_response_wait_ms: None,
            no_answer_wait_ms: None,
            variant_header: false,
            self_check: true,
        }
    }

    /// Whether the SUT is started (or found) once for the whole run: `addresses`, or a launch
    /// `per: run`. Its cases then run one at a time on the run's one topology
    /// ([`Profile::run_topology`]).
    pub fn runs_once(&self) -> bool {
        self.addresses.is_some() || self.launch.as_ref().is_some_and(|l| l.per == Per::Run)
    }

    /// The IP family of a running SUT's run (its `sut` block's address, else its
    /// `addresses` topology's); `None` when cases get their own lab topologies.
    pub fn run_family(&self) -> Option<IpFamily> {
        if !self.runs_once() {
            return None;
        }
        match (&self.sut, &self.addresses) {
            (Some(s), _) => Some(IpFamily::of(s.ip)),
            (None, Some((_, t))) => Some(t.family()),
            (None, None) => None,
        }
    }

    /// The topology of a run against a running SUT playing `split`: the shape and the SUT's
    /// addresses of `addresses` (or the default chain, 3 members on 2 pf-b, with the SUT's
    /// entities placed in the `sut` block), the harness's entities placed in the `harness`
    /// block (else where `addresses` puts them). Placing: the k-th entity of the chain
    /// listens for SIP on `first + 2k` and for MSRP on `first + 2k + 1`.
    pub fn run_topology(&self, split: &[Role]) -> Result<Topology, String> {
        let mut t = match &self.addresses {
            Some((_, t)) => t.clone(),
            None => Topology::default_chain(),
        };
        let harness_roles: Vec<Role> = Role::ALL
            .iter()
            .copied()
            .filter(|r| !split.contains(r))
            .collect();
        if let Some(s) = &self.sut {
            t.place_shared(split, s.ip, s.first);
        }
        if let Some(h) = &self.harness {
            t.place_shared(&harness_roles, h.ip, h.first);
        }
        t.validate()
            .map_err(|e| format!("{}: the run's topology: {e}", self.origin))?;
        Ok(t)
    }

    /// Whether the SUT can run this case; the reason when not. The self-check split (`sut`
    /// empty) needs nothing of the profile.
    pub fn admits(&self, suite: &Suite, variant: &Variant, sut: &[Role]) -> Result<(), String> {
        if sut.is_empty() {
            return Ok(());
        }
        for r in sut {
            if !self.roles.contains(r) {
                return Err(format!("profile does not play role {r}"));
            }
        }
        if let Some(splits) = &self.splits {
            if !splits.iter().any(|s| s.as_slice() == sut) {
                return Err(format!(
                    "profile does not run the split {}",
                    split_name(sut)
                ));
            }
        }
        let fig = variant.figure;
        if !declares(&self.figures, &fig) {
            return Err(format!("profile does not implement figure {fig}"));
        }
        if !declares(&self.transports, &variant.transport) {
            return Err(format!(
                "profile does not implement SIP transport {}",
                transport_name(variant.transport)
            ));
        }
        if !declares(&self.ip_families, &variant.ip) {
            return Err(format!(
                "profile does not implement IP family {}",
                variant.ip.as_str()
            ));
        }
        if let Some(f) = self.run_family() {
            if f != variant.ip {
                return Err(format!(
                    "the running SUT's addresses are IP{} (harness/sut blocks or addresses); \
                     the case needs IP{}",
                    f.as_str(),
                    variant.ip.as_str()
                ));
            }
        }
        let msrp_ok = match &self.msrp_transports {
            None => variant.msrp_transport == MsrpTransport::Tcp,
            Some(l) => l.contains(&variant.msrp_transport),
        };
        if !msrp_ok {
            return Err(format!(
                "profile does not implement MSRP transport {} (msrp-transports)",
                variant.msrp_transport.as_str()
            ));
        }
        if !declares(&self.setup, &variant.setup) {
            return Err(format!(
                "profile does not implement setup {}",
                setup_name(variant.setup)
            ));
        }
        let rel = Relevance::of(suite, variant, sut);
        if rel.trigger && !declares(&self.triggers, &variant.trigger) {
            return Err(format!(
                "profile does not implement trigger {}",
                variant.trigger.as_str()
            ));
        }
        if rel.x_trigger && !declares(&self.x_triggers, &variant.x_trigger()) {
            return Err(format!(
                "profile does not implement x-trigger {}",
                variant.x_trigger().as_str()
            ));
        }
        if rel.l23 && !declares(&self.l23_openers, &variant.l23_opener) {
            return Err(format!(
                "profile does not implement l23-opener {}",
                l23_name(variant.l23_opener)
            ));
        }
        if rel.ack && !declares(&self.acks, &variant.ack_timing()) {
            return Err(format!(
                "profile does not implement ack {}",
                ack_name(variant.ack_timing())
            ));
        }
        if rel.reuse && !declares(&self.reuse, &variant.reuse) {
            return Err(format!(
                "profile does not implement reuse {}",
                if variant.reuse { "on" } else { "off" }
            ));
        }
        if rel.group && !declares(&self.groups, &variant.group) {
            return Err(format!(
                "profile does not implement group {}",
                group_name(variant.group)
            ));
        }
        if sut.contains(&Role::ClientA) && self.trigger.is_none() {
            return Err("profile has no trigger to make its client-a send".into());
        }
        Ok(())
    }

    /// The launch argv for a case.
    pub fn launch_argv(
        &self,
        case: &Case,
        run: &RunVars<'_>,
        topology: &Topology,
    ) -> Result<Option<Vec<String>>, String> {
        let Some(l) = &self.launch else {
            return Ok(None);
        };
        expand(&l.command, &case_vars(case, run), topology).map(Some)
    }
}

fn declares<T: PartialEq>(list: &Option<Vec<T>>, v: &T) -> bool {
    list.as_ref().is_none_or(|l| l.contains(v))
}

pub fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}
pub fn setup_name(s: SetupMode) -> &'static str {
    match s {
        SetupMode::Sdp => "sdp",
        SetupMode::Preset => "preset",
    }
}
pub fn group_name(g: GroupKind) -> &'static str {
    match g {
        GroupKind::Predefined => "predefined",
        GroupKind::Adhoc => "adhoc",
    }
}
pub fn l23_name(o: MiddleOpener) -> &'static str {
    match o {
        MiddleOpener::Pf => "pf",
        MiddleOpener::X => "x",
    }
}

fn build(raw: RawProfile, text: &str, origin: &str, base_dir: &Path) -> Result<Profile, String> {
    let at = |key: &str| locate_key(text, origin, key);
    // A template from `cpm-harness init` still holding a placeholder to fill.
    if let Some((n, l)) = text.lines().enumerate().find(|(_, l)| {
        l.split('#')
            .next()
            .is_some_and(|code| code.contains("<SUT-"))
    }) {
        let word = l[l.find("<SUT-").unwrap_or(0)..]
            .split('>')
            .next()
            .unwrap_or("<SUT-");
        return Err(format!(
            "{origin}:{}: replace the template's placeholder {word}> with your SUT's value",
            n + 1
        ));
    }
    if raw.name.trim().is_empty() {
        return Err(format!("{}: name must not be empty", at("name")));
    }
    let mut roles = raw.roles.clone();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(format!(
            "{}: roles must list at least one role",
            at("roles")
        ));
    }
    let splits = match &raw.splits {
        None => None,
        Some(list) => {
            let mut out = Vec::new();
            for s in list {
                for sp in parse_split(s).map_err(|e| format!("{}: splits: {e}", at("splits")))? {
                    if let Some(r) = sp.iter().find(|r| !roles.contains(r)) {
                        return Err(format!(
                            "{}: splits: {} includes {r}, which is not in roles",
                            at("splits"),
                            split_name(&sp)
                        ));
                    }
                    if !sp.is_empty() && !out.contains(&sp) {
                        out.push(sp);
                    }
                }
            }
            Some(out)
        }
    };
    let addresses = match &raw.addresses {
        None => None,
        Some(p) => {
            let path = if p.is_absolute() {
                p.clone()
            } else {
                base_dir.join(p)
            };
            let t = Topology::load(&path)
                .map_err(|e| format!("{}: addresses: {e:#}", at("addresses")))?;
            Some((path, t))
        }
    };
    // Instance names templates may use: the fixed topology's, else the generated ones.
    let topo_for_names = addresses
        .as_ref()
        .map(|(_, t)| t.clone())
        .unwrap_or_else(Topology::default_chain);
    let launch = match raw.launch {
        None => None,
        Some(l) => {
            let ready = match (l.ready.stdout_line, l.ready.port) {
                (Some(s), None) => Ready::StdoutLine(s),
                (None, Some(p)) => Ready::Port(p),
                _ => {
                    return Err(format!(
                        "{}: launch.ready: give exactly one of stdout-line, port",
                        at("ready")
                    ))
                }
            };
            let allowed: &[&str] = match l.per {
                Per::Case => VARS,
                Per::Run => RUN_VARS,
            };
            check_template(&l.command, allowed, &topo_for_names)
                .map_err(|e| format!("{}: launch.command: {e}", at("command")))?;
            if let Ready::Port(p) = &ready {
                check_template(p, allowed, &topo_for_names)
                    .map_err(|e| format!("{}: launch.ready.port: {e}", at("port")))?;
            }
            if l.ready_timeout_ms == 0 {
                return Err(format!(
                    "{}: launch.ready-timeout-ms must be positive",
                    at("ready-timeout-ms")
                ));
            }
            Some(Launch {
                command: l.command,
                ready,
                ready_timeout: Duration::from_millis(l.ready_timeout_ms),
                per: l.per,
            })
        }
    };
    // Where each side lives.
    let shape = topo_for_names.instances().len();
    let place = |key: &str, raw: &Option<RawSide>| -> Result<Option<Place>, String> {
        let Some(r) = raw else { return Ok(None) };
        let at = at(key);
        let ip: std::net::IpAddr =
            r.ip.trim()
                .parse()
                .map_err(|_| format!("{at}: {key}.ip {:?} is not an IP address", r.ip))?;
        let (a, b) = r
            .ports
            .split_once('-')
            .map(|(a, b)| (a.trim().parse::<u16>(), b.trim().parse::<u16>()))
            .and_then(|(a, b)| a.ok().zip(b.ok()))
            .filter(|(a, b)| a <= b && *a > 0)
            .ok_or_else(|| {
                format!(
                    "{at}: {key}.ports {:?}: expected FIRST-LAST, e.g. 20000-20999",
                    r.ports
                )
            })?;
        let have = usize::from(b - a) + 1;
        if have < 2 * shape {
            return Err(format!(
                "{at}: {key}.ports {a}-{b} holds {have} ports; the topology's {shape} entities \
                 need {} (a SIP and an MSRP port each)",
                2 * shape
            ));
        }
        Ok(Some(Place {
            ip,
            first: a,
            last: b,
        }))
    };
    let harness = place("harness", &raw.harness)?;
    let sut = place("sut", &raw.sut)?;
    match (&launch, &addresses, &sut) {
        (None, None, _) => {
            return Err(format!(
            "{origin}: give `launch` (how to start the SUT) or `addresses` (where it already runs)"
        ))
        }
        (_, Some(_), Some(_)) => {
            return Err(format!(
                "{}: give the SUT's addresses once: `sut` or `addresses`, not both",
                at("sut")
            ))
        }
        (Some(l), Some(_), _) if l.per == Per::Case => {
            return Err(format!(
                "{}: with `addresses` the SUT is launched once for the run: `per: run`",
                at("launch")
            ))
        }
        (Some(l), None, Some(_)) if l.per == Per::Case => {
            return Err(format!(
            "{}: a `sut` block places a SUT launched once for the run: add `per: run` to launch",
            at("sut")
        ))
        }
        (Some(l), None, None) if l.per == Per::Run => {
            return Err(format!(
            "{}: per: run needs the SUT's addresses: a `sut: {{ ip, ports }}` block or `addresses`",
            at("per")
        ))
        }
        _ => {}
    }
    if sut.is_some() && harness.is_none() {
        return Err(format!(
            "{}: a `sut` block needs a `harness: {{ ip, ports }}` block (where the harness's entities listen)",
            at("sut")
        ));
    }
    if harness.is_some() && sut.is_none() && addresses.is_none() {
        return Err(format!(
            "{}: `harness` places the harness beside a running SUT: give `sut` (with launch per: run) or `addresses`",
            at("harness")
        ));
    }
    if let (Some(h), Some(s)) = (&harness, &sut) {
        if h.ip.is_ipv4() != s.ip.is_ipv4() {
            return Err(format!(
                "{}: the SUT's address {} and the harness's {} are of different IP families",
                at("sut"),
                s.ip,
                h.ip
            ));
        }
        if h.overlaps(s) {
            return Err(format!(
                "{}: the SUT's addresses ({s}) overlap the harness's ({h})",
                at("sut")
            ));
        }
    }
    if let (Some(h), Some((path, t))) = (&harness, &addresses) {
        // The addresses file's entries inside the harness's range would collide with a
        // harness entity whatever the split.
        if let Some(i) = t.instances().iter().find(|i| {
            [i.sip, i.msrp]
                .iter()
                .any(|a| a.ip() == h.ip && (h.first..=h.last).contains(&a.port()))
        }) {
            return Err(format!(
                "{}: {} of {} ({}) is inside the harness's addresses ({h})",
                at("harness"),
                i.name,
                path.display(),
                i.sip
            ));
        }
    }
    if raw.settle_ms.is_some()
        && launch.as_ref().is_none_or(|l| l.per == Per::Case)
        && addresses.is_none()
    {
        return Err(format!(
            "{}: settle-ms applies to a running SUT (`addresses`, or launch per: run)",
            at("settle-ms")
        ));
    }
    let trigger = match raw.trigger {
        None => None,
        Some(t) => {
            let tr = match (t.stdin_line, t.command) {
                (Some(s), None) => SendTrigger::StdinLine(s),
                (None, Some(c)) => SendTrigger::Command(c),
                _ => {
                    return Err(format!(
                        "{}: trigger: give exactly one of stdin-line, command",
                        at("trigger")
                    ))
                }
            };
            let (SendTrigger::StdinLine(t) | SendTrigger::Command(t)) = &tr;
            check_template(t, VARS, &topo_for_names)
                .map_err(|e| format!("{}: trigger: {e}", at("trigger")))?;
            if matches!(tr, SendTrigger::StdinLine(_)) && launch.is_none() {
                return Err(format!(
                    "{}: trigger: stdin-line needs a launched SUT (`launch`)",
                    at("trigger")
                ));
            }
            Some(tr)
        }
    };
    if roles.contains(&Role::ClientA) && trigger.is_none() {
        return Err(format!(
            "{origin}: roles include client-a, so `trigger` must say how to make it send"
        ));
    }
    let nonempty = |name: &str, empty: bool| -> Result<(), String> {
        if empty {
            Err(format!(
                "{}: {name} is an empty list (omit it to declare every value)",
                at(name)
            ))
        } else {
            Ok(())
        }
    };
    nonempty("figures", raw.figures.as_ref().is_some_and(Vec::is_empty))?;
    nonempty("triggers", raw.triggers.as_ref().is_some_and(Vec::is_empty))?;
    nonempty(
        "x-triggers",
        raw.x_triggers.as_ref().is_some_and(Vec::is_empty),
    )?;
    nonempty("reuse", raw.reuse.as_ref().is_some_and(Vec::is_empty))?;
    nonempty("setup", raw.setup.as_ref().is_some_and(Vec::is_empty))?;
    nonempty(
        "transports",
        raw.transports.as_ref().is_some_and(Vec::is_empty),
    )?;
    nonempty(
        "msrp-transports",
        raw.msrp_transports.as_ref().is_some_and(Vec::is_empty),
    )?;
    nonempty("groups", raw.groups.as_ref().is_some_and(Vec::is_empty))?;
    let tls = match &raw.tls {
        None => TlsPixit::default(),
        Some(t) => {
            if t.cert.is_some() != t.key.is_some() {
                return Err(format!(
                    "{}: tls: give both cert and key, or neither",
                    at("tls")
                ));
            }
            let verify = match t.verify.as_deref() {
                None | Some("address") => crate::driver::tls::Verify::Address,
                Some("off") => crate::driver::tls::Verify::Off,
                Some(n) if !n.trim().is_empty() => {
                    crate::driver::tls::Verify::Name(n.trim().into())
                }
                Some(_) => {
                    return Err(format!(
                        "{}: tls: verify is `address`, `off` or a DNS name",
                        at("tls")
                    ))
                }
            };
            let file = |p: &Option<PathBuf>| p.as_ref().map(|p| base_dir.join(p));
            TlsPixit {
                ca: file(&t.ca),
                cert: file(&t.cert),
                key: file(&t.key),
                verify,
            }
        }
    };
    nonempty(
        "l23-openers",
        raw.l23_openers.as_ref().is_some_and(Vec::is_empty),
    )?;
    nonempty("acks", raw.acks.as_ref().is_some_and(Vec::is_empty))?;
    nonempty(
        "ip-families",
        raw.ip_families.as_ref().is_some_and(Vec::is_empty),
    )?;
    if let Some(v) = &raw.version_command {
        version_argv(v, Path::new("cpm-harness"))
            .map_err(|e| format!("{}: version-command: {e}", at("version-command")))?;
    }
    Ok(Profile {
        name: raw.name,
        about: raw.about,
        origin: origin.to_string(),
        roles,
        splits,
        figures: raw.figures,
        triggers: raw.triggers,
        x_triggers: raw.x_triggers,
        reuse: raw.reuse,
        setup: raw.setup,
        transports: raw.transports,
        msrp_transports: raw.msrp_transports,
        tls,
        groups: raw.groups,
        l23_openers: raw.l23_openers,
        acks: raw.acks,
        ip_families: raw.ip_families,
        addresses,
        launch,
        trigger,
        version_command: raw.version_command,
        harness,
        sut,
        settle: raw
            .settle_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_SETTLE),
        report_timing: raw.report_timing,
        report_wait_ms: raw.report_wait_ms,
        no_response_wait_ms: raw.no_response_wait_ms,
        no_answer_wait_ms: raw.no_answer_wait_ms,
        variant_header: raw.variant_header,
        self_check: raw.self_check,
    })
}

// ------------------------------------------------------------------------------------------
// Templates

/// The argv of a `version-command` template: `{exe}` is the only placeholder.
pub fn version_argv(template: &str, exe: &Path) -> Result<Vec<String>, String> {
    let mut line = String::new();
    for piece in scan(template)? {
        match piece {
            Piece::Text(t) => line.push_str(&t),
            Piece::Var(name) if name == "exe" => line.push_str(&exe.display().to_string()),
            Piece::Var(name) => {
                return Err(format!(
                    "unknown placeholder {{{name}}} (a version command may use only {{exe}})"
                ))
            }
        }
    }
    let words = split_words(&line)?;
    if words.is_empty() {
        return Err(format!("{template:?} expands to an empty command"));
    }
    Ok(words)
}

/// Run-wide values for [`case_vars`].
#[derive(Debug, Clone)]
pub struct RunVars<'a> {
    /// The running harness binary (`std::env::current_exe()`), for `{exe}`.
    pub exe: &'a Path,
    /// The topology file written for the case, for `{topology}`.
    pub topology_path: &'a Path,
    /// Where the SUT writes what its client-b instances received, for `{out-dir}`.
    pub out_dir: &'a Path,
    /// Message size in bytes, for `{size}`.
    pub size: u64,
    /// Faults to inject into the reference SUT, for `{faults}` (`--fault NAME` each).
    pub faults: &'a [Fault],
}

/// The placeholder values of a case: every name of [`VARS`].
pub fn case_vars(case: &Case, run: &RunVars<'_>) -> BTreeMap<String, String> {
    let v = &case.variant;
    let mut m = BTreeMap::new();
    let mut put = |k: &str, val: String| {
        m.insert(k.to_string(), val);
    };
    put("exe", run.exe.display().to_string());
    put("topology", run.topology_path.display().to_string());
    put(
        "roles",
        case.sut
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    put("figure", v.figure.to_string());
    put("trigger", v.trigger.as_str().into());
    put("x-trigger", v.x_trigger().as_str().into());
    put("transport", transport_name(v.transport).into());
    put("setup", setup_name(v.setup).into());
    put("group", group_name(v.group).into());
    put("l23", l23_name(v.l23_opener).into());
    // The `sut --ack` spelling.
    put(
        "ack",
        match v.ack_timing() {
            AckTiming::On200 => "on-200",
            AckTiming::AfterUpstreamAck => "after-ack",
        }
        .into(),
    );
    put("reuse", v.reuse.to_string());
    put(
        "reuse-flag",
        if v.reuse { "--reuse" } else { "" }.to_string(),
    );
    put("chunk-size", v.chunk_size.to_string());
    put("size", run.size.to_string());
    put("out-dir", run.out_dir.display().to_string());
    put(
        "faults",
        run.faults
            .iter()
            .map(|f| format!("--fault {}", f.name()))
            .collect::<Vec<_>>()
            .join(" "),
    );
    put("case", case.id.clone());
    // The content file beside the SUT's output folder (written only for a trigger naming it).
    put(
        "content",
        run.out_dir.with_file_name("content").display().to_string(),
    );
    put("variant", case.variant.header_value());
    put("msrp-transport", v.msrp_transport.as_str().into());
    // The run's TLS material (the per-run CA that mints every entity's certificate).
    put(
        "tls-dir",
        crate::driver::tls::shared_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    );
    m
}

impl Profile {
    /// Whether the trigger pins client-a's content (names `{content}`).
    pub fn pins_content(&self) -> bool {
        matches!(&self.trigger, Some(SendTrigger::StdinLine(t) | SendTrigger::Command(t)) if t.contains("{content}"))
    }
}

/// Expands `template` and splits it into argv on whitespace (after expansion, so an empty value
/// such as `{reuse-flag}` disappears and `{faults}` may give several words); a double-quoted
/// stretch stays one word (quotes removed). `{{` and `}}` are literal braces. An unknown
/// placeholder is an error naming it, with a did-you-mean; so is an empty result (argv always
/// has a program name).
pub fn expand(
    template: &str,
    vars: &BTreeMap<String, String>,
    topology: &Topology,
) -> Result<Vec<String>, String> {
    let line = expand_line(template, vars, topology)?;
    let words = split_words(&line)?;
    if words.is_empty() {
        return Err(format!("{template:?} expands to an empty command"));
    }
    Ok(words)
}

/// Expands `template` into one string (for a stdin line).
pub fn expand_line(
    template: &str,
    vars: &BTreeMap<String, String>,
    topology: &Topology,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    for piece in scan(template)? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Var(name) => {
                if let Some(v) = vars.get(&name) {
                    out.push_str(v);
                } else if let Some(v) = topology.placeholder(&name) {
                    out.push_str(&v);
                } else {
                    let mut known: Vec<String> = vars.keys().cloned().collect();
                    known.extend(topology_placeholders(topology));
                    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
                    return Err(format!(
                        "unknown placeholder {{{name}}}{}",
                        did_you_mean(&name, &refs)
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The `{instance.sip|msrp|ip}` names a topology offers.
pub fn topology_placeholders(topology: &Topology) -> Vec<String> {
    topology
        .instances()
        .iter()
        .flat_map(|i| ["sip", "msrp", "ip"].map(|w| format!("{}.{w}", i.name)))
        .collect()
}

/// Checks a template's placeholders against `allowed` names and the topology's instances.
pub fn check_template(template: &str, allowed: &[&str], topology: &Topology) -> Result<(), String> {
    let topo = topology_placeholders(topology);
    for piece in scan(template)? {
        let Piece::Var(name) = piece else { continue };
        if allowed.contains(&name.as_str()) || topo.contains(&name) {
            continue;
        }
        let mut known: Vec<&str> = allowed.to_vec();
        known.extend(topo.iter().map(String::as_str));
        let extra = if VARS.contains(&name.as_str()) {
            " (it changes per case; not allowed with per: run)".to_string()
        } else {
            did_you_mean(&name, &known)
        };
        return Err(format!("unknown placeholder {{{name}}}{extra}"));
    }
    Ok(())
}

enum Piece {
    Text(String),
    Var(String),
}

fn scan(template: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == '}' {
                        closed = true;
                        break;
                    }
                    name.push(d);
                }
                if !closed {
                    return Err(format!("unclosed placeholder {{{name} in {template:?}"));
                }
                if name.trim().is_empty() {
                    return Err(format!("empty placeholder {{}} in {template:?}"));
                }
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(Piece::Var(name.trim().to_string()));
            }
            '}' => {
                return Err(format!(
                    "stray '}}' in {template:?} (write }}}} for a brace)"
                ))
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// Splits a line into words on whitespace; a stretch in double or single quotes stays one
/// word (the quotes removed; inside one kind of quote the other is an ordinary character), as
/// a shell would split it — but no shell runs: no variables, globs, pipes or redirections.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        let kind = if q == '"' { "double" } else { "single" };
        return Err(format!("unbalanced {kind} quote in {line:?}"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_pics_and_waits_are_read_with_defaults() {
        let dir = Path::new(".");
        let base = "name: t\nroles: [x]\nlaunch: { command: \"{exe} sut\", ready: { stdout-line: ready } }\n";
        let p = Profile::parse(base, "t.yaml", dir).unwrap();
        assert_eq!(p.report_timing, crate::config::ReportTiming::AfterDelivery);
        assert_eq!((p.report_wait_ms, p.no_response_wait_ms), (None, None));
        let p = Profile::parse(
            &format!(
                "{base}report-timing: on-receipt\nreport-wait-ms: 150\nno-response-wait-ms: 40\n"
            ),
            "t.yaml",
            dir,
        )
        .unwrap();
        assert_eq!(p.report_timing, crate::config::ReportTiming::OnReceipt);
        assert_eq!(
            (p.report_wait_ms, p.no_response_wait_ms),
            (Some(150), Some(40))
        );
        let e = Profile::parse(&format!("{base}report-timing: later\n"), "t.yaml", dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("report-timing") || e.contains("later"), "{e}");
    }

    const RUNNING: &str = "name: t\nroles: [x, pf-b]\nharness: { ip: 127.0.0.1, ports: 20000-20999 }\nsut: { ip: 127.0.0.2, ports: 30000-30999 }\nlaunch:\n  command: \"{exe} sut --topology {topology} --roles {roles}\"\n  ready: { stdout-line: ready }\n  per: run\nsettle-ms: 500\n";

    fn parse(text: &str) -> Result<Profile, String> {
        Profile::parse(text, "p.yaml", Path::new(".")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_running_sut_places_each_side_on_its_own_address() {
        let p = parse(RUNNING).unwrap();
        assert!(p.runs_once());
        assert_eq!(p.settle, Duration::from_millis(500));
        assert!(!p.variant_header && !p.self_check);
        let t = p.run_topology(&[Role::X]).unwrap();
        // The k-th entity of the chain: SIP first + 2k, MSRP first + 2k + 1 of its side.
        assert_eq!(t.client_a.sip.to_string(), "127.0.0.1:20000");
        assert_eq!(t.pf_a.msrp.to_string(), "127.0.0.1:20003");
        assert_eq!(t.x.sip.to_string(), "127.0.0.2:30004");
        assert_eq!(t.x.msrp.to_string(), "127.0.0.2:30005");
        assert_eq!(t.pf_b[1].sip.to_string(), "127.0.0.1:20008");
        assert_eq!(t.members[2].msrp.to_string(), "127.0.0.1:20015");
        let t = p.run_topology(&[Role::X, Role::PfB]).unwrap();
        assert_eq!(t.pf_b[0].sip.to_string(), "127.0.0.2:30006");
        // Without the blocks, the per-case generated topologies stay.
        let reference = Profile::load(Path::new("profiles/reference.yaml")).unwrap();
        assert!(!reference.runs_once() && reference.self_check);
        // `{roles}` is run-wide (the run's one split); `{variant}` is per case.
        assert!(parse(&RUNNING.replace("--roles {roles}", "{variant}"))
            .unwrap_err()
            .contains("not allowed with per: run"));
    }

    #[test]
    fn bad_running_sut_blocks_are_located() {
        let cases = [
            (
                RUNNING.replace("20000-20999", "20000-20009"),
                "p.yaml:3:1",
                "holds 10 ports",
            ),
            (
                RUNNING
                    .replace("30000-30999", "20500-21000")
                    .replace("127.0.0.2", "127.0.0.1"),
                "p.yaml:4:1",
                "overlap",
            ),
            (
                RUNNING.replace("ip: 127.0.0.2", "ip: localhost"),
                "p.yaml:4:1",
                "not an IP address",
            ),
            (
                RUNNING.replace("ports: 30000-30999", "ports: 30999-30000"),
                "p.yaml:4:1",
                "FIRST-LAST",
            ),
            (
                RUNNING.replace("  per: run\n", ""),
                "p.yaml:4:1",
                "add `per: run`",
            ),
            (
                RUNNING.replace("sut: { ip: 127.0.0.2, ports: 30000-30999 }\n", ""),
                "p.yaml:7:3",
                "per: run needs",
            ),
            (
                RUNNING.replace("harness: { ip: 127.0.0.1, ports: 20000-20999 }\n", ""),
                "p.yaml:3:1",
                "needs a `harness",
            ),
        ];
        for (text, at, what) in cases {
            let e = parse(&text).unwrap_err();
            assert!(e.starts_with(at) && e.contains(what), "{e}\n---\n{text}");
        }
    }

    #[test]
    fn expansion_splits_after_substitution() {
        let t = Topology::default_chain();
        let mut vars = BTreeMap::new();
        vars.insert("reuse-flag".to_string(), String::new());
        vars.insert("faults".to_string(), "--fault a --fault b".to_string());
        vars.insert("out-dir".to_string(), "/tmp/my dir".to_string());
        let argv = expand(
            "sut {reuse-flag} --x {x.sip} \"{out-dir}\" {faults} {{lit}}",
            &vars,
            &t,
        )
        .unwrap();
        assert_eq!(
            argv,
            vec![
                "sut",
                "--x",
                &t.x.sip.to_string(),
                "/tmp/my dir",
                "--fault",
                "a",
                "--fault",
                "b",
                "{lit}"
            ]
        );
        let e = expand("{x.sipp}", &vars, &t).unwrap_err();
        assert!(e.contains("did you mean \"x.sip\""), "{e}");
        assert!(expand("{oops", &vars, &t).is_err());
        assert!(expand(" {reuse-flag} ", &vars, &t)
            .unwrap_err()
            .contains("empty command"));
    }

    #[test]
    fn a_shell_is_run_by_naming_it_with_the_script_quoted() {
        let t = Topology::default_chain();
        let mut vars = BTreeMap::new();
        vars.insert("topology".to_string(), "/tmp/t.yaml".to_string());
        let argv = expand(
            "sh -c 'exec /opt/sut --topology {topology} 2>\"log file\"' {x.sip}",
            &vars,
            &t,
        )
        .unwrap();
        assert_eq!(
            argv,
            vec![
                "sh",
                "-c",
                "exec /opt/sut --topology /tmp/t.yaml 2>\"log file\"",
                &t.x.sip.to_string(),
            ]
        );
        assert!(expand("sh -c 'oops", &vars, &t)
            .unwrap_err()
            .contains("unbalanced single quote"));
        assert_eq!(
            version_argv("{exe} --version", Path::new("/bin/h")).unwrap(),
            vec!["/bin/h", "--version"]
        );
        assert!(version_argv("{x.sip}", Path::new("/bin/h"))
            .unwrap_err()
            .contains("only {exe}"));
    }
}
