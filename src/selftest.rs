//! `cpm-harness selftest --mutants`: each fault of the reference SUT is run against the cases
//! that can show it, and the table says whether the check it targets failed (a mutant killed)
//! — the measure that every check can fail. Runs through the engine and writes the reports
//! like `run`.

use crate::engine::case::RunSettings;
use crate::engine::outcome::CaseOutcome;
use crate::engine::plan::Plan;
use crate::engine::profile::Profile;
use crate::engine::runner::run_case_retrying;
use crate::engine::spec::Case;
use crate::engine::{CheckId, Verdict};
use crate::entity::Fault;
use crate::report::run_cases;
use crate::topology::Role;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

// ------------------------------------------------------------------------------ mutants

/// The roles whose behaviour a fault changes, and whether a case can show it.
pub fn fault_applies(f: Fault, case: &Case) -> bool {
    use crate::config::{AckTiming, SetupMode, Trigger, XAnswer};
    let v = &case.variant;
    let single = case.sut.len() == 1;
    let sut = |r: Role| case.sut.contains(&r);
    let middle = sut(Role::PfA) || sut(Role::X) || sut(Role::PfB);
    if !single {
        return false;
    }
    match f {
        Fault::MlineProto
        | Fault::SdpWrongC
        | Fault::SdpPortMismatch
        | Fault::PathUdp
        | Fault::SessionIdReuse
        | Fault::MissingAcceptTypes => true,
        // Only a TLS session shows them.
        Fault::PathSchemeMsrp => v.msrp_transport == crate::config::MsrpTransport::Tls,
        // SIP over TLS, where the SUT sends a request (client-b only answers).
        Fault::PlainSipOverTls => {
            v.transport == crate::codec::sip::Transport::Tls && !sut(Role::ClientB)
        }
        // Where the SUT opens a link of a TLS session.
        Fault::PlainOverTls => {
            use crate::config::{Link, Opener};
            let opens = |l: Link| {
                let (offerer, answerer) = match l {
                    Link::L1 => (Role::ClientA, Role::PfA),
                    Link::L2 => (Role::PfA, Role::X),
                    Link::L3 => (Role::X, Role::PfB),
                    Link::L4 => (Role::PfB, Role::ClientB),
                };
                sut(match v.opener(l) {
                    Opener::Offerer => offerer,
                    Opener::Answerer => answerer,
                })
            };
            v.msrp_transport == crate::config::MsrpTransport::Tls
                && Link::all().into_iter().any(opens)
        }
        Fault::SdpCopyUpstreamPath
        | Fault::ReuseCallId
        | Fault::Skip200Upstream
        | Fault::NoByeDownstream => middle,
        Fault::WrongSetup => v.setup == SetupMode::Sdp && (middle || sut(Role::ClientB)),
        Fault::ParamsInWrongMessage => middle || sut(Role::ClientB),
        Fault::WrongDirection | Fault::ConnectWrongTarget | Fault::LateTrigger => true,
        // Visible where the SUT opens a link with nothing queued to send on it yet: an
        // INVITE receiver (solution 2) opening towards its upstream.
        Fault::NoBindSend => {
            v.solution() == crate::config::Solution::ReceiverOpens && (middle || sut(Role::ClientB))
        }
        Fault::EarlyTrigger => {
            middle && v.trigger != Trigger::On200 && !case.holds.ack_delay.is_zero()
        }
        Fault::NoReuse => v.reuse && sut(Role::X),
        // One case shows it where the role has several sessions (a B2BUA: its up and down
        // legs); a client's single session shows it only against the run's other cases
        // (tests/engine.rs), which `--per-fault 1` would not run.
        Fault::ConstantSessionId => middle,
        // Visible where client-a opens L1 (solutions 1 and 3) and pf-a withholds 200-1.
        Fault::ConnectBefore200 => {
            sut(Role::ClientA)
                && v.opener(crate::config::Link::L1) == crate::config::Opener::Offerer
                && !case.holds.answer_delay.is_zero()
        }
        Fault::CfAnswerEarly => {
            sut(Role::X)
                && v.x_answer() == XAnswer::AfterFirstMember
                && !case.holds.answer_delay.is_zero()
        }
        Fault::CfAnswerLate => {
            sut(Role::X) && v.x_answer() == XAnswer::AtOnce && !case.holds.answer_delay.is_zero()
        }
        Fault::AckTooEarly => {
            middle
                && v.ack_timing() == AckTiming::AfterUpstreamAck
                && !case.holds.ack_delay.is_zero()
        }
        Fault::NoAckDownstream => middle,
        // Exception scenarios (issue 16): where a harness member declines.
        Fault::NoAckNon2xx => (sut(Role::X) || sut(Role::PfB)) && !case.holds.decline.is_empty(),
        Fault::NoByeUpstream => {
            sut(Role::X) && v.x_answer() == XAnswer::AtOnce && case.holds.decline.len() >= 3
        }
        Fault::AbortAsEnd => middle && case.holds.abort_after_chunks.is_some(),
        Fault::NoReleaseOnClose => {
            sut(Role::PfB)
                && case
                    .holds
                    .leave
                    .values()
                    .any(|l| *l == crate::entity::Leave::Close)
        }
        Fault::ContinueAfterReject => sut(Role::PfB) && !case.holds.reject_content.is_empty(),
        // reports: where client-a asks for a success REPORT (a receiver of the SUT; a relay
        // of the SUT with a harness hop downstream to ask and to report first), or for no
        // responses.
        Fault::NoSuccessReport | Fault::ReportPartialRange => {
            case.holds.success_report && (middle || sut(Role::ClientB))
        }
        Fault::ReportNotPropagated | Fault::ReportBeforeDelivery => {
            case.holds.success_report && sut(Role::PfB) && !sut(Role::ClientB)
        }
        Fault::RespondsDespiteFailureReportNo => {
            case.holds.failure_report_no && (middle || sut(Role::ClientB))
        }
        // Where a harness member never answers and the SUT's pf-b must give up on it.
        Fault::WaitForeverForMember => sut(Role::PfB) && !case.holds.no_answer.is_empty(),
        Fault::DeclineAnswersCf => {
            sut(Role::X)
                && v.x_answer() == XAnswer::AfterFirstMember
                && !case.holds.decline.is_empty()
        }
        Fault::FanoutFirstOnly => sut(Role::X),
        Fault::AdhocToGroupUri => sut(Role::ClientA) && v.group == crate::config::GroupKind::Adhoc,
        Fault::RelayTruncate | Fault::WrongToPath | Fault::BadByteRange | Fault::CpimAltered => {
            middle
        }
        Fault::NoMsrp200 => !sut(Role::ClientA),
        // Sent before each INVITE: every role but client-b sends one.
        Fault::MalformedSip => !sut(Role::ClientB),
        // IPv6 cases only: the From of the INVITEs a B2BUA sends (client-a's is its public
        // URI, client-b sends none), and every SDP.
        Fault::UnbracketedIpv6 => middle && v.ip == crate::config::IpFamily::V6,
        Fault::CIp4OnIpv6 => v.ip == crate::config::IpFamily::V6,
        // ACK and BYE: sent by client-a and the middle entities (client-b sends neither).
        Fault::IgnoreRouteSet => !sut(Role::ClientB),
        // Hostile faults (Fault::HOSTILE: tests/hostile.rs) and cosmetic ones (reports'
        // tests) trip no particular check: not mutants.
        _ => false,
    }
}

/// One row of the mutant table.
#[derive(Debug, Clone, Serialize)]
pub struct MutantRow {
    pub fault: &'static str,
    pub target: &'static str,
    pub cases: Vec<String>,
    /// Checks that failed in at least one case.
    pub caught_by: Vec<CheckId>,
    pub caught: bool,
}

/// Runs every fault against up to `per_fault` cases where it applies. Returns the table and
/// the outcomes of the same cases against the correct reference SUT.
pub async fn mutants(
    plan: &Plan,
    profile: &Profile,
    settings: &RunSettings,
    per_fault: usize,
    dir: &Path,
    jobs: usize,
) -> anyhow::Result<(Vec<MutantRow>, Vec<CaseOutcome>)> {
    // Every (fault, case) pair goes into one pool of `jobs` workers.
    let mut clean_ids = BTreeSet::new();
    let mut work: Vec<(Fault, Case)> = Vec::new();
    let faults: Vec<Fault> = Fault::ALL
        .iter()
        .copied()
        .filter(|f| settings.core.is_some() || !f.needs_core())
        .collect();
    for &f in &faults {
        for c in plan
            .cases
            .iter()
            .filter(|c| fault_applies(f, c))
            .take(per_fault)
        {
            clean_ids.insert(c.id.clone());
            work.push((f, c.clone()));
        }
    }
    // Each fault's cases share the run's session-ids (SDP-UNIQUE across cases), apart from the
    // other faults' and the correct SUT's.
    let registries: std::collections::BTreeMap<
        Fault,
        std::sync::Arc<crate::engine::case::RunSessionIds>,
    > = faults.iter().map(|&f| (f, Default::default())).collect();
    let mut caught: std::collections::BTreeMap<Fault, BTreeSet<CheckId>> = Default::default();
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0usize;
    let nets = crate::engine::runner::Nets::new();
    loop {
        while set.len() < jobs.clamp(1, crate::engine::runner::Nets::COUNT) && next < work.len() {
            let (f, c) = work[next].clone();
            let mut s = settings.clone();
            s.faults = vec![f];
            s.work_dir = settings.work_dir.join(f.name());
            s.session_ids = registries[&f].clone();
            let profile = profile.clone();
            let nets = nets.clone();
            set.spawn(async move { (f, run_case_retrying(&c, &profile, &nets, &s).await) });
            next += 1;
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let (f, o) = done.map_err(|e| anyhow::anyhow!("a case task failed: {e}"))?;
        let entry = caught.entry(f).or_default();
        for chk in o.checks.iter().filter(|x| x.verdict == Verdict::Fail) {
            entry.insert(chk.id);
        }
    }
    let mut rows = Vec::new();
    for &f in &faults {
        let caught_by = caught.remove(&f).unwrap_or_default();
        let hit = CheckId::parse(f.target_check()).is_some_and(|id| caught_by.contains(&id));
        println!(
            "{:<24} {:<15} {:<6} {}",
            f.name(),
            f.target_check(),
            if hit { "yes" } else { "NO" },
            caught_by
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        rows.push(MutantRow {
            fault: f.name(),
            target: f.target_check(),
            cases: work
                .iter()
                .filter(|(g, _)| *g == f)
                .map(|(_, c)| c.id.clone())
                .collect(),
            caught_by: caught_by.into_iter().collect(),
            caught: hit,
        });
    }
    // The same cases against the correct SUT: zero failures expected.
    let mut s = settings.clone();
    s.faults = Vec::new();
    let clean: Vec<Case> = plan
        .cases
        .iter()
        .filter(|c| clean_ids.contains(&c.id))
        .cloned()
        .collect();
    let outcomes = run_cases(
        &clean,
        &[],
        profile,
        &s,
        &dir.join("reference"),
        "selftest-reference",
        true,
        jobs,
    )
    .await?;
    Ok((rows, outcomes))
}
