//! Runs one case: a topology of its own, the SUT launched per the profile for the case's
//! split, the harness's entities for the other roles (with the case's ordering choice and
//! pauses, recording every wire event), the message sent, delivery and teardown awaited with a
//! timeout, the SUT stopped (always), then the observation and the checks.

use super::checks::{run_checks, sdp_unique_across_cases, sut_session_ids};
use super::outcome::{CaseOutcome, SetupError};
use super::profile::{case_vars, expand_line, Profile, Ready, RunVars, SendTrigger};
use super::running::RunningSut;
use super::spec::Case;
use super::sutproc::{Readiness, SutProcess};
use super::{
    judge_case, CaseContext, CheckId, CheckResult, Delivered, Finding, FindingKind, Verdict,
};
use crate::chain::{pattern, sanitize, sessions_per_instance, sha256_hex, Chain, ChainOptions};
use crate::clock;
use crate::engine::observe;
use crate::entity::{Fault, Holds, SipTimers};
use crate::model::Observation;
use crate::topology::{Role, Topology};
use crate::trace::Recorder;
use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Judges the case's capture offline, as `cpm-harness analyze` would, and compares each
/// check's verdict with the live one.
async fn reanalyze(
    case: &Case,
    ctx: &CaseContext,
    live: &[CheckResult],
    path: PathBuf,
    s: &RunSettings,
) -> CheckResult {
    use crate::capture::analyze::{analyze_file, Options};
    let opts = Options {
        variant: case.variant.clone(),
        sut: case.sut.clone(),
        map: Some((
            path.with_extension("topology.yaml"),
            (*ctx.topology).clone(),
        )),
        trigger_window: s.trigger_window,
        pause: case.pause(),
        signalling_only: false,
        report_timing: ctx.report_timing,
    };
    let shown = path.display().to_string();
    let result = tokio::task::spawn_blocking(move || analyze_file(&path, &opts)).await;
    let mut findings = Vec::new();
    match result {
        Ok(Ok(report)) => {
            for l in live {
                match report.outcome.checks.iter().find(|c| c.id == l.id) {
                    Some(c) if c.verdict == l.verdict => {}
                    Some(c) => findings.push(Finding::fail(FindingKind::CaptureVerdictDiffers {
                        check: l.id,
                        live: l.verdict,
                        capture: c.verdict,
                    })),
                    None => findings.push(Finding::fail(FindingKind::CaptureMissingCheck {
                        check: l.id,
                    })),
                }
            }
        }
        Ok(Err(e)) => findings.push(Finding::fail(FindingKind::CaptureUnreadable {
            path: shown,
            error: e.to_string(),
        })),
        Err(e) => findings.push(Finding::fail(FindingKind::AnalysisFailed {
            path: shown,
            error: e.to_string(),
        })),
    }
    let verdict = if findings.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Error
    };
    CheckResult::new(CheckId::Capture, verdict, findings)
}

/// The session-ids the SUT used in the cases of a run so far, for SDP-UNIQUE across cases
/// (RFC 4975 §8.2: a session-id is unique; one the SUT used before is not).
#[derive(Debug, Default)]
pub struct RunSessionIds(std::sync::Mutex<BTreeMap<String, String>>);

impl RunSessionIds {
    /// Records the session-ids `ids` the SUT used in case `case`; returns those an earlier case
    /// recorded, each with that case.
    pub fn record(&self, case: &str, ids: &[String]) -> BTreeMap<String, String> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let earlier: BTreeMap<String, String> = ids
            .iter()
            .filter_map(|id| seen.get(id).map(|c| (id.clone(), c.clone())))
            .collect();
        for id in ids {
            seen.entry(id.clone()).or_insert_with(|| case.to_string());
        }
        earlier
    }
}

/// How long the wire must stay silent before a case is judged (late closes, teardown).
const QUIET: Duration = Duration::from_millis(250);

/// How long the wire must stay silent once nothing of the SUT is left open.
const QUIET_WHEN_OVER: Duration = Duration::from_millis(20);

/// Run-wide settings of the case runner.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Message size in bytes.
    pub size: usize,
    /// How long after its trigger a SUT link may open.
    pub trigger_window: Duration,
    /// The longest a case may take before it is judged on what happened.
    pub case_timeout: Duration,
    /// The harness binary, for `{exe}` in launch templates.
    pub exe: PathBuf,
    /// Scratch folder for topology files and the SUT's output.
    pub work_dir: PathBuf,
    /// Faults passed to the reference SUT (`{faults}`).
    pub faults: Vec<Fault>,
    pub timers: SipTimers,
    /// Where each case's capture goes (`<dir>/<case>.pcap`); none when `None`.
    pub capture_dir: Option<PathBuf>,
    /// What the SUT may make the harness buffer or hold open (`run --limit`).
    pub limits: crate::limits::Limits,
    /// After each case, judge its written capture offline (`analyze`) and require the same
    /// verdict per check as the live run (a CAPTURE check records any difference).
    pub reanalyze: bool,
    /// The SIP/IP core every entity routes through (`run --core`), written into each case's
    /// topology so that the SUT learns it too.
    pub core: Option<std::net::SocketAddr>,
    /// The core's IPv6 address, for the cases on IPv6 (`ip: v6`).
    pub core_v6: Option<std::net::SocketAddr>,
    /// The core's SIP-over-TLS addresses (IPv4, IPv6), for the cases over TLS.
    pub core_tls: Option<(std::net::SocketAddr, Option<std::net::SocketAddr>)>,
    /// The SUT's session-ids in the run's cases so far (shared by the clones of these
    /// settings): SDP-UNIQUE fails a session-id an earlier case used.
    pub session_ids: Arc<RunSessionIds>,
}

impl RunSettings {
    /// `run`'s defaults (20,000-byte message, 1 s trigger window, 20 s per case, default
    /// timers and limits; no faults, captures, re-analysis or core) for the harness binary
    /// `exe` working in `work_dir`.
    pub fn new(exe: PathBuf, work_dir: PathBuf) -> RunSettings {
        RunSettings {
            size: 20_000,
            trigger_window: Duration::from_millis(1000),
            case_timeout: Duration::from_secs(20),
            exe,
            work_dir,
            faults: Vec::new(),
            timers: SipTimers::default(),
            capture_dir: None,
            limits: crate::limits::Limits::default(),
            reanalyze: false,
            core: None,
            core_v6: None,
            core_tls: None,
            session_ids: Arc::new(RunSessionIds::default()),
        }
    }
}

impl RunSettings {
    /// The core address for a case of `family`: an error when the core has none of that
    /// family (an IPv4 proxy cannot relay for entities on IPv6).
    pub fn core_for(
        &self,
        family: crate::config::IpFamily,
    ) -> anyhow::Result<Option<std::net::SocketAddr>> {
        match (self.core, family) {
            (None, _) => Ok(None),
            (Some(c), crate::config::IpFamily::V4) => Ok(Some(c)),
            (Some(c), crate::config::IpFamily::V6) => self.core_v6.map(Some).ok_or_else(|| {
                anyhow::anyhow!("the SIP/IP core at {c} has no IPv6 address for this IPv6 case")
            }),
        }
    }
}

impl RunSettings {
    /// The core address for a case over `transport` on `family`: its TLS listener for SIP
    /// over TLS (an error when it serves none), else as [`RunSettings::core_for`].
    pub fn core_for_transport(
        &self,
        family: crate::config::IpFamily,
        transport: crate::codec::sip::Transport,
    ) -> anyhow::Result<Option<std::net::SocketAddr>> {
        if self.core.is_none() || transport != crate::codec::sip::Transport::Tls {
            return self.core_for(family);
        }
        let tls = self.core_tls.ok_or_else(|| {
            anyhow::anyhow!("the SIP/IP core serves no SIP over TLS (started without TLS material)")
        })?;
        match family {
            crate::config::IpFamily::V4 => Ok(Some(tls.0)),
            crate::config::IpFamily::V6 => tls
                .1
                .map(Some)
                .ok_or_else(|| anyhow::anyhow!("the SIP/IP core serves no SIP over TLS on IPv6")),
        }
    }
}

/// Where a case runs.
#[derive(Clone, Copy)]
pub enum Site<'a> {
    /// On its own loopback subnet `127.<net>.x.x` (a generated topology), the SUT launched
    /// for the case.
    Net(u8),
    /// On the run's one topology, against the SUT started (or found) once for the run.
    Running(&'a RunningSut),
}

/// Runs `case` on the loopback subnet `127.<net>.x.x`.
pub async fn run_case(case: &Case, profile: &Profile, net: u8, s: &RunSettings) -> CaseOutcome {
    run_case_at(case, profile, Site::Net(net), s).await
}

/// Runs `case` against a SUT running for the whole run; the outcome's `still_open` says what
/// of it was not over on the wire when the harness stopped waiting (`settle-ms`).
pub async fn run_case_running(
    case: &Case,
    profile: &Profile,
    sut: &RunningSut,
    s: &RunSettings,
) -> CaseOutcome {
    run_case_at(case, profile, Site::Running(sut), s).await
}

async fn run_case_at(
    case: &Case,
    profile: &Profile,
    site: Site<'_>,
    s: &RunSettings,
) -> CaseOutcome {
    let started = clock::now();
    let wall = clock::wall();
    let mut notes = Vec::new();
    // The capture is written as the case runs (each event flushed), so an interrupted run
    // still leaves a readable file; the writer thread drops the copies both ends recorded.
    let (rec, writer) = match &s.capture_dir {
        Some(dir) => {
            let path = dir.join(format!("{}.pcap", sanitize(&case.id.replace('/', "_"))));
            let (tx, rx) = std::sync::mpsc::channel::<crate::trace::Stamped>();
            let keys = crate::capture::tls::keys_path(&path);
            let writer = std::fs::create_dir_all(dir)
                .and_then(|_| crate::capture::PcapWriter::create(&path, wall))
                .map(|mut w| {
                    std::thread::spawn(move || -> std::io::Result<()> {
                        // What came meanwhile, in one flush, then a pause: the events of a
                        // burst wake this thread once, not once each (README, "The bench
                        // table", row (a)), and the file is never more than a pause behind
                        // the wire.
                        while let Ok((t, ev)) = rx.recv() {
                            w.add_event(t, &ev)?;
                            while let Ok((t, ev)) = rx.try_recv() {
                                w.add_event(t, &ev)?;
                            }
                            w.flush()?;
                            std::thread::sleep(CAPTURE_PAUSE);
                        }
                        // A TLS case's key log beside its capture (SSLKEYLOGFILE format):
                        // the secrets of the sessions in it, so Wireshark and `analyze`
                        // decode the records.
                        let randoms: Vec<String> =
                            w.client_randoms().iter().map(hex::encode).collect();
                        w.finish()?;
                        if !randoms.is_empty() {
                            let lines = crate::driver::tls::keylog_lines(Some(&randoms));
                            std::fs::write(&keys, lines.join("\n") + "\n")?;
                        }
                        Ok(())
                    })
                });
            match writer {
                Ok(h) => (Recorder::with_tap(started, tx), Some((h, path))),
                Err(e) => {
                    notes.push(format!("capture {}: {e}", path.display()));
                    (Recorder::new(started), None)
                }
            }
        }
        None => (Recorder::new(started), None),
    };
    let mut look = LastLook::default();
    let result = drive(case, profile, site, s, &rec, &mut notes, &mut look).await;
    let LastLook {
        still_open,
        model: last_model,
    } = look;
    let records = rec.records();
    let events = crate::trace::one_copy(&records);
    rec.close_tap();
    let capture_path = writer.as_ref().map(|(_, p)| p.clone());
    if let Some((h, path)) = writer {
        match tokio::task::spawn_blocking(move || h.join()).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => notes.push(format!("capture {}: {e}", path.display())),
            _ => notes.push(format!("capture {}: the writer failed", path.display())),
        }
    }
    let topology = result.as_ref().ok().map(|ctx| ctx.topology.clone());
    let mut observation = None;
    let setup_error = result.as_ref().err().and_then(SetupError::of);
    let (checks, verdict) = match result {
        Ok(mut ctx) => {
            // The map of the capture's addresses (and the SIP/IP core, if any) beside it, for
            // `analyze --map` and `diff --map` later.
            if let Some(p) = &capture_path {
                let map = p.with_extension("topology.yaml");
                match crate::files::write_atomic(&map, ctx.topology.to_yaml().as_bytes()) {
                    // The SUT's lines name the topology it was given, in the work folder
                    // that is deleted after the run: they name the copy kept instead.
                    Ok(()) => {
                        let work = work_dir(s, case).join("topology.yaml");
                        let (work, kept) = (work.display().to_string(), map.display().to_string());
                        for n in notes.iter_mut().filter(|n| n.contains(&work)) {
                            *n = n.replace(&work, &kept);
                        }
                    }
                    Err(e) => notes.push(format!("{}: {e}", map.display())),
                }
            }
            // The quiet wait's last model, if no record came after it: the same records
            // read the same way (tests build both and compare them).
            let obs = match last_model {
                Some((n, obs)) if n == records.len() => {
                    if cfg!(debug_assertions) {
                        let fresh = observe(&ctx, &events);
                        assert_eq!(format!("{fresh:?}"), format!("{obs:?}"));
                    }
                    obs
                }
                _ => observe(&ctx, &events),
            };
            // Delivery is judged from the wire; the SUT's output files only where no member
            // link can be seen.
            ctx.take_delivery(&obs);
            let mut checks = run_checks(&ctx, &obs);
            if let (true, Some(path)) = (s.reanalyze, capture_path) {
                checks.push(reanalyze(case, &ctx, &checks, path, s).await);
            }
            // Across the run's cases (after the capture's comparison: one capture alone cannot
            // know them): a session-id the SUT used in an earlier case is not unique.
            let earlier = s.session_ids.record(&case.id, &sut_session_ids(&ctx, &obs));
            if !earlier.is_empty() {
                let across = sdp_unique_across_cases(&ctx, &obs, &earlier);
                if let Some(c) = checks.iter_mut().find(|c| c.id == CheckId::SdpUnique) {
                    *c = across;
                }
            }
            observation = Some(Arc::new(obs));
            let v = judge_case(&mut checks, &ctx.topology, &case.sut);
            (checks, v)
        }
        Err(e) => {
            notes.push(format!("{e:#}"));
            (
                vec![CheckResult::new(
                    CheckId::Harness,
                    Verdict::Error,
                    vec![Finding::fail(FindingKind::HarnessError {
                        error: format!("{e:#}"),
                    })],
                )],
                Verdict::Error,
            )
        }
    };
    CaseOutcome {
        id: case.id.clone(),
        figure: case.figure,
        split: case.split(),
        ordering: case.ordering.clone(),
        verdict,
        duration_ms: clock::since(started).as_millis(),
        checks,
        notes,
        setup_error,
        records,
        topology,
        observation,
        still_open,
    }
}

/// The case's scratch folder under the run's work folder (deleted after the run).
fn work_dir(s: &RunSettings, case: &Case) -> PathBuf {
    s.work_dir.join(sanitize(&case.id.replace('/', "_")))
}

/// How long a case's capture writer waits after writing what it was given.
const CAPTURE_PAUSE: Duration = Duration::from_millis(5);

/// What the case's last look at the wire found (the quiet wait, the running-SUT settle loop):
/// what of the SUT was still open, and the model it was read from with the number of
/// records that model covered.
#[derive(Default)]
struct LastLook {
    still_open: Vec<String>,
    model: Option<(usize, Observation)>,
}

async fn drive(
    case: &Case,
    profile: &Profile,
    site: Site<'_>,
    s: &RunSettings,
    rec: &Recorder,
    notes: &mut Vec<String>,
    look: &mut LastLook,
) -> anyhow::Result<CaseContext> {
    let running = match site {
        Site::Running(r) => Some(r),
        Site::Net(_) => None,
    };
    let (topology, out_dir, topology_path) = match site {
        Site::Running(r) => {
            r.clear_out_dir();
            (
                r.topology.clone(),
                r.out_dir.clone(),
                r.topology_path.clone(),
            )
        }
        Site::Net(net) => {
            let mut topology = Topology::generate_lab(net, case.variant.ip);
            if s.core.is_some() {
                topology.core = s.core_for_transport(case.variant.ip, case.variant.transport)?;
            }
            let topology = Arc::new(topology);
            let dir = work_dir(s, case);
            let out_dir = dir.join("out");
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("creating {}", out_dir.display()))?;
            let topology_path = dir.join("topology.yaml");
            std::fs::write(&topology_path, topology.to_yaml())
                .with_context(|| format!("writing {}", topology_path.display()))?;
            (topology, out_dir, topology_path)
        }
    };
    let content = pattern(s.size);
    let run_vars = RunVars {
        exe: &s.exe,
        topology_path: &topology_path,
        out_dir: &out_dir,
        size: s.size as u64,
        faults: &s.faults,
    };

    // The SUT, when it plays any role and is launched by the harness for the case.
    let mut sut: Option<SutProcess> = None;
    if !case.sut.is_empty() && running.is_none() {
        if let (Some(argv), Some(l)) = (
            profile
                .launch_argv(case, &run_vars, &topology)
                .map_err(|e| anyhow!("{}: {e}", profile.origin))?,
            &profile.launch,
        ) {
            let ready = match &l.ready {
                Ready::StdoutLine(p) => Readiness::StdoutLine(p.clone()),
                Ready::Port(t) => {
                    let vars = case_vars(case, &run_vars);
                    let a = expand_line(t, &vars, &topology)
                        .map_err(|e| anyhow!("{}: ready port: {e}", profile.origin))?;
                    Readiness::Port(a.parse().map_err(|_| {
                        anyhow!("{}: ready port {a:?} is not host:port", profile.origin)
                    })?)
                }
            };
            probe_addresses(&topology, &case.sut)?;
            sut = Some(SutProcess::launch(&argv, &ready, l.ready_timeout).await?);
        }
    }

    // The harness plays the complement.
    let harness_roles: Vec<Role> = Role::ALL
        .iter()
        .copied()
        .filter(|r| !case.sut.contains(r))
        .collect();
    let opts = ChainOptions {
        topology: topology.clone(),
        variant: case.variant.clone(),
        roles: harness_roles.clone(),
        timers: s.timers,
        recorder: Some(rec.clone()),
        out_dir: None,
        digest: true,
        // The profile's waits (PIXIT) for peers that do not answer.
        holds: Holds {
            report_wait_ms: profile.report_wait_ms.or(case.holds.report_wait_ms),
            no_response_wait_ms: profile
                .no_response_wait_ms
                .or(case.holds.no_response_wait_ms),
            no_answer_wait_ms: (!case.holds.no_answer.is_empty()).then(|| {
                profile
                    .no_answer_wait_ms
                    .or(case.holds.no_answer_wait_ms)
                    .unwrap_or(crate::entity::holds::DEFAULT_NO_ANSWER_WAIT.as_millis() as u64)
            }),
            ..case.holds.clone()
        },
        hold_roles: hold_roles(&case.sut),
        faults: Vec::new(),
        limits: s.limits,
        variant_header: profile.variant_header,
        per_call_variant: false,
        // The harness's own middle entities report after delivery, as the reference SUT.
        report_timing: Default::default(),
    };
    let no_answer_wait_ms = opts.holds.no_answer_wait_ms;
    let mut chain = match running {
        // The harness's addresses are fixed: the previous case's sockets may take a moment to
        // be released, but another address is never taken instead.
        Some(_) => {
            let mut tries = 0;
            loop {
                match Chain::start(opts.clone()).await {
                    Err(e) if SetupError::of(&e).is_some() && tries < 20 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    r => break r?,
                }
            }
        }
        None => Chain::start(opts).await?,
    };

    // A trigger naming `{content}` pins client-a's content: the harness writes it first.
    let pinned = profile.pins_content() && !harness_roles.contains(&Role::ClientA);
    if pinned {
        let path = out_dir.with_file_name("content");
        std::fs::write(&path, &content).with_context(|| format!("writing {}", path.display()))?;
    }
    // Make client-a send.
    let send_result = if harness_roles.contains(&Role::ClientA) {
        chain.send(content.clone())
    } else {
        match (&profile.trigger, sut.as_mut()) {
            (Some(SendTrigger::StdinLine(t)), p) if p.is_some() || running.is_some() => {
                let line = expand_line(t, &case_vars(case, &run_vars), &topology)
                    .map_err(|e| anyhow!("{}: trigger: {e}", profile.origin))?;
                match (p, running) {
                    (Some(p), _) => p.send_line(&line).await,
                    (None, Some(r)) => r.send_line(&line).await,
                    (None, None) => unreachable!("guarded"),
                }
            }
            (Some(SendTrigger::Command(t)), _) => {
                let argv = super::profile::expand(t, &case_vars(case, &run_vars), &topology)
                    .map_err(|e| anyhow!("{}: trigger: {e}", profile.origin))?;
                let st = tokio::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .status()
                    .await;
                match st {
                    Ok(st) if st.success() => Ok(()),
                    Ok(st) => Err(anyhow!("trigger command {} exited {st}", argv.join(" "))),
                    Err(e) => Err(anyhow!("trigger command {}: {e}", argv.join(" "))),
                }
            }
            _ => Err(anyhow!(
                "{}: no way to make the SUT's client-a send",
                profile.origin
            )),
        }
    };
    send_result?;
    let sent_at = clock::tokio_now();

    // Wait for the harness's instances to end their sessions.
    let topo = topology.clone();
    let (outcome, waited) = chain
        .wait(move |n| sessions_per_instance(&topo, n), s.case_timeout)
        .await;
    if let Err(e) = waited {
        notes.push(format!("{e:#}"));
    }
    notes.extend(outcome.warnings.iter().cloned());
    // The SUT may still be busy where the harness cannot see (between two SUT roles): wait
    // for its members' files when it plays client-b, then for the wire to go quiet.
    let deadline = clock::tokio_now() + s.case_timeout;
    if case.sut.contains(&Role::ClientB) {
        while clock::tokio_now() < deadline {
            let done = topology.members.iter().all(|m| {
                std::fs::metadata(out_dir.join(sanitize(&m.name)))
                    .map(|md| md.len() >= s.size as u64)
                    .unwrap_or(false)
            });
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    // Quiet for QUIET, or for QUIET_WHEN_OVER once everything of the SUT the harness can see
    // is over (its dialogs ended or rejected, its links closed): a SUT with nothing open has no
    // late close or teardown left to send, and waiting the full QUIET on every case was most
    // of the default run's time.
    // What of the SUT is still open on the wire so far, read through the one model.
    // The last model built is kept with the number of records it read: the case's own
    // model when nothing came after it (`run_case_at`), so it is not built twice.
    let mut open_now = || {
        let records = rec.records();
        let events = crate::trace::one_copy(&records);
        let obs = super::model_of(&topology, &case.sut, &events);
        let open = super::running::still_open(&obs, &topology, &case.sut, case.variant.reuse);
        look.model = Some((records.len(), obs));
        open
    };
    let mut seen = rec.len();
    // (events seen, whether the SUT had nothing open then): the model is built once per change.
    let mut judged: Option<(usize, bool)> = None;
    let mut quiet_since = clock::tokio_now();
    loop {
        let quiet = clock::tokio_since(quiet_since);
        if clock::tokio_now() >= deadline || quiet >= QUIET {
            break;
        }
        if quiet >= QUIET_WHEN_OVER {
            let over = match judged {
                Some((n, over)) if n == seen => over,
                _ => {
                    let over = open_now().is_empty();
                    judged = Some((seen, over));
                    over
                }
            };
            if over {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let n = rec.len();
        if n != seen {
            seen = n;
            quiet_since = clock::tokio_now();
        }
    }
    // A running SUT serves the next case: this one must be over on the wire first (its
    // dialogs ended, its links closed), which may take a little longer than the quiet wire.
    if running.is_some() {
        // A member that never answers leaves the SUT's INVITE to it pending until the SUT
        // gives up (its Timer B), where the harness may not see it end (x and pf-b both the
        // SUT's: the 408 goes between them). The silent member stays up, dropping the
        // retransmissions, until the SUT must have given up (`no-answer-wait-ms`): a
        // retransmission reaching the next case's member at the same address would be
        // answered there and open a stale call inside that case.
        if let Some(ms) = no_answer_wait_ms {
            tokio::time::sleep_until((sent_at + Duration::from_millis(ms)).min(deadline)).await;
        }
        let settle_until = clock::tokio_now() + profile.settle;
        loop {
            look.still_open = open_now();
            if look.still_open.is_empty() || clock::tokio_now() >= settle_until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !look.still_open.is_empty() {
            notes.push(format!(
                "not over on the wire after {} ms (settle-ms): {}",
                profile.settle.as_millis(),
                look.still_open.join("; ")
            ));
        }
    }
    chain.stop().await?;
    if let Some(p) = sut.as_mut() {
        p.stop(Duration::from_secs(2)).await;
        let log = p.drain_log();
        notes.extend(log.iter().rev().take(5).rev().map(|l| format!("sut: {l}")));
    }
    if let Some(r) = running {
        let log = r.new_output().await;
        notes.extend(log.iter().rev().take(5).rev().map(|l| format!("sut: {l}")));
    }

    // What every member got: from the harness's client-b, or the SUT's output files.
    let mut delivered = BTreeMap::new();
    for m in &topology.members {
        if case.sut.contains(&Role::ClientB) {
            delivered.insert(
                m.name.clone(),
                read_delivered(&out_dir.join(sanitize(&m.name)), s.size as u64),
            );
        } else if let Some(r) = outcome.received.get(&m.name) {
            delivered.insert(
                m.name.clone(),
                Delivered {
                    bytes: r.bytes,
                    sha256: r.sha256.clone(),
                    complete: r.complete,
                },
            );
        }
    }
    Ok(CaseContext {
        topology,
        variant: case.variant.clone(),
        sut: case.sut.clone(),
        holds: case.holds.clone(),
        pause: case.pause(),
        trigger_window: s.trigger_window,
        content_len: s.size as u64,
        content_sha256: sha256_hex(&content),
        pinned: pinned.then(|| (content.len() as u64, sha256_hex(&content))),
        delivered,
        report_timing: profile.report_timing,
    })
}

/// Binds (and releases at once) the SIP and MSRP addresses of the SUT's instances before the
/// harness launches it, so that an address another process holds is known as such
/// ([`SetupError::AddrInUse`]) rather than read from the SUT's output. Only `AddrInUse` is an
/// error: an address this host cannot bind (a SUT elsewhere) is the SUT's business.
pub(crate) fn probe_addresses(topology: &Topology, sut: &[Role]) -> anyhow::Result<()> {
    let taken = |r: std::io::Result<()>, what: &str, name: &str, a: std::net::SocketAddr| match r {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(anyhow::Error::new(e).context(format!("{name}: {what} {a} of the SUT is taken")))
        }
        _ => Ok(()),
    };
    for i in topology
        .instances()
        .iter()
        .filter(|i| sut.contains(&i.role))
    {
        taken(
            std::net::UdpSocket::bind(i.sip).map(drop),
            "SIP/UDP address",
            &i.name,
            i.sip,
        )?;
        taken(
            std::net::TcpListener::bind(i.sip).map(drop),
            "SIP/TCP address",
            &i.name,
            i.sip,
        )?;
        taken(
            std::net::TcpListener::bind(i.msrp).map(drop),
            "MSRP address",
            &i.name,
            i.msrp,
        )?;
    }
    Ok(())
}

/// The harness entities that apply the case's holds: the SUT's neighbours in the chain (so
/// a pause is inserted right where the SUT must wait, and delays do not stack), or all for the
/// self-check.
fn hold_roles(sut: &[Role]) -> Option<Vec<Role>> {
    if sut.is_empty() {
        return None;
    }
    let chain = Role::ALL;
    let mut out = Vec::new();
    for (i, r) in chain.iter().enumerate() {
        if sut.contains(r) {
            continue;
        }
        let near = (i > 0 && sut.contains(&chain[i - 1]))
            || (i + 1 < chain.len() && sut.contains(&chain[i + 1]));
        if near {
            out.push(*r);
        }
    }
    Some(out)
}

fn read_delivered(path: &Path, expected: u64) -> Delivered {
    match std::fs::read(path) {
        Ok(b) => Delivered {
            bytes: b.len() as u64,
            sha256: sha256_hex(&b),
            complete: b.len() as u64 == expected,
        },
        Err(_) => Delivered {
            bytes: 0,
            sha256: String::new(),
            complete: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_in_use_is_a_typed_setup_error_whatever_the_message() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        // std sets SO_REUSEADDR, which still refuses a second listener on the same port.
        let e = std::net::TcpListener::bind(addr).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        let e = anyhow::Error::new(e).context(format!("pf-a: cannot bind MSRP {addr}"));
        assert_eq!(SetupError::of(&e), Some(SetupError::AddrInUse));
        // The probe of a SUT's addresses reports the same.
        let mut topo = Topology::generate(201, 1, 1, 5060, 2855);
        topo.x.msrp = addr;
        let e = probe_addresses(&topo, &[Role::X]).unwrap_err();
        assert_eq!(SetupError::of(&e), Some(SetupError::AddrInUse));
        assert!(probe_addresses(&topo, &[Role::PfA]).is_ok());
        // Text that merely says so is not one.
        let e = anyhow::anyhow!("sut: bind: Address already in use");
        assert_eq!(SetupError::of(&e), None);
    }
}
