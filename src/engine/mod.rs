//! The conformance engine: suites and profiles (what to run), the case runner, and the checks
//! with their verdicts over the case's model.
//!
//! - [`observe`]: a case's wire events → its [`crate::model::Observation`] over the case's
//!   topology (the same for a live run, a simulation and a capture); [`CaseContext`] is what
//!   the checks know besides it, and takes delivery from the wire.
//! - [`spec`]: what one case is (variant, split, ordering, id); [`outcome`]: its result.
//! - [`catalogue`]: the check ids, what each verifies and its normative sources
//!   (`docs/checks.md` is generated from it).
//! - [`checks`]: the checks of the catalogue over an observation, each giving typed
//!   [`finding::Finding`]s.
//! - [`finding`]: what a check found, as data, and the one place it becomes text.
//! - [`suite`], [`profile`], [`plan`]: suites and profiles as data, and the cases they make.
//! - [`shard`]: `--filter` and `--partition k/n`, the cases a run executes.

pub mod case;
pub mod catalogue;
pub mod checks;
pub mod finding;
pub mod outcome;
pub mod plan;
pub mod profile;
pub mod runner;
pub mod running;
pub mod shard;
pub mod spec;
pub mod suite;
pub mod sutproc;

pub use catalogue::CheckId;
pub use finding::{Cite, Class, Finding, FindingKind};

use crate::config::Variant;
use crate::entity::Holds;
use crate::model::delivery::WireDelivery;
use crate::model::Observation;
use crate::topology::{Role, Topology};
use crate::trace::WireEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A verdict, per check and per case. Ordered from best to worst, so a case takes the max of
/// its checks (`NotObservable` counts as neutral).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The check does not apply to this split (e.g. a link between two SUT roles).
    NotObservable,
    Pass,
    /// Could not be decided: the SUT never reached the point the check needs.
    Inconc,
    Fail,
    /// The harness or the environment failed.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotObservable => "not observable",
            Verdict::Pass => "pass",
            Verdict::Inconc => "inconc",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
        }
    }
}

/// One check's result. Serialised with `evidence` as well: the findings rendered as text
/// ([`CheckResult::evidence`]), for readers of `summary.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckResult {
    /// Stable id, e.g. `LINK-DIR`.
    pub id: CheckId,
    /// The catalogue's reference for the check (RFC sections, the patent's figures and
    /// steps; see `docs/checks.md`).
    pub reference: String,
    pub verdict: Verdict,
    /// What the check found: the failures (and inconclusive items) of a failing check, the
    /// passes of a passing one, each with the messages and addresses it cites.
    pub findings: Vec<Finding>,
}

impl CheckResult {
    /// A result with the catalogue's reference for `id`.
    pub fn new(id: CheckId, verdict: Verdict, findings: Vec<Finding>) -> CheckResult {
        CheckResult {
            id,
            reference: id.reference(),
            verdict,
            findings,
        }
    }

    /// The findings as text, one line each (see [`finding::evidence_lines`]).
    pub fn evidence(&self) -> Vec<String> {
        finding::evidence_lines(self.verdict, &self.findings)
    }

    /// The findings of a class.
    pub fn of_class(&self, class: Class) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.class == class)
    }
}

impl Serialize for CheckResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("CheckResult", 5)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("reference", &self.reference)?;
        st.serialize_field("verdict", &self.verdict)?;
        st.serialize_field("evidence", &self.evidence())?;
        st.serialize_field("findings", &self.findings)?;
        st.end()
    }
}

pub use crate::model::delivery::Delivered;

/// Everything the checks need to know about a case besides its wire events.
#[derive(Debug, Clone)]
pub struct CaseContext {
    pub topology: Arc<Topology>,
    pub variant: Variant,
    /// The roles the SUT plays; the harness played the rest.
    pub sut: Vec<Role>,
    /// The ordering choices and pauses the harness applied to its own entities.
    pub holds: Holds,
    /// The discriminating pause the harness inserted before a trigger (e.g. between 200 and
    /// ACK): a SUT link opened within it came before its trigger.
    pub pause: Duration,
    /// How long after its trigger a link may open.
    pub trigger_window: Duration,
    /// The content client-a sent (before CPIM wrapping): as client-a's link (L1) shows it;
    /// with L1 hidden, the digest of the first visible hop and the length the harness asked
    /// for (when known); the pinned content when there is one and L1 is hidden.
    pub content_len: u64,
    pub content_sha256: String,
    /// The content the harness gave a SUT client-a to send (a trigger naming `{content}`):
    /// octets and SHA-256. MEDIA-DELIVERY then requires client-a to send exactly it.
    pub pinned: Option<(u64, String)>,
    /// Per member: what arrived.
    pub delivered: BTreeMap<String, Delivered>,
    /// The profile's PICS choice of when a middle entity sends its success REPORT
    /// (`report-timing`; the default where no profile says, as in `analyze`).
    pub report_timing: crate::config::ReportTiming,
}

impl CaseContext {
    pub fn is_sut(&self, role: Role) -> bool {
        self.sut.contains(&role)
    }

    /// Takes delivery from the wire ([`crate::model::delivery`]): the content client-a sent
    /// (when a link shows it) and, for every member whose own link is visible, what that link
    /// carried. A member whose link is between two SUT roles keeps what the context had (the
    /// SUT's output files); one whose link is visible but carried nothing gets nothing.
    pub fn take_delivery(&mut self, obs: &Observation) -> WireDelivery {
        let w = crate::model::delivery::from_wire(obs, &self.topology);
        match (&w.sent, w.sent_link, &self.pinned) {
            // What client-a sent on its own link (compared with any pinned content by the check).
            (Some((len, sha)), Some(crate::config::Link::L1), _) => {
                self.content_len = *len;
                self.content_sha256 = sha.clone();
            }
            // client-a's link is hidden: the content it was given, when pinned.
            (_, _, Some((len, sha))) => {
                self.content_len = *len;
                self.content_sha256 = sha.clone();
            }
            // Else the first visible hop's content, at the length asked for when known (a relay
            // between two SUT roles that cut the message still fails on its length).
            (Some((len, sha)), _, None) => {
                if self.content_len == 0 {
                    self.content_len = *len;
                }
                self.content_sha256 = sha.clone();
            }
            (None, _, _) => {}
        }
        let l4_visible = !(self.is_sut(Role::PfB) && self.is_sut(Role::ClientB));
        if l4_visible {
            self.delivered.clear();
            for (name, (d, _)) in &w.members {
                self.delivered.insert(name.clone(), d.clone());
            }
        }
        w
    }
}

/// The model of a case ([`crate::model`]) from its one-copy wire events, attributed to the
/// context's topology, with the views of the harness's instances.
pub fn observe(ctx: &CaseContext, events: &[(Duration, WireEvent)]) -> Observation {
    model_of(&ctx.topology, &ctx.sut, events)
}

/// The model of one-copy wire `events` attributed to `topology` with `sut` playing its
/// roles: what [`observe`] reads, also before the case's context exists (the quiet wait).
pub fn model_of(
    topology: &Topology,
    sut: &[Role],
    events: &[(Duration, WireEvent)],
) -> Observation {
    crate::model::resolve(topology, sut, crate::model::interpret(events))
}

/// The verdict of a case whose SUT played `sut` (empty: the self-check): the worst of its
/// checks ([`case_verdict`]), except that a case where no check judged anything the SUT sent
/// ([`sut_judged`]) is not a pass: a HARNESS result says so and the case is inconc.
pub fn judge_case(checks: &mut Vec<CheckResult>, topology: &Topology, sut: &[Role]) -> Verdict {
    let v = case_verdict(checks);
    if v != Verdict::Pass || sut.is_empty() || sut_judged(checks, topology, sut) {
        return v;
    }
    checks.push(CheckResult::new(
        CheckId::Harness,
        Verdict::Inconc,
        vec![Finding::new(
            Class::Inconc,
            FindingKind::NothingOfSutJudged { sut: sut.to_vec() },
        )],
    ));
    Verdict::Inconc
}

/// Whether a passing finding of a passing check is about something a SUT entity sent (a
/// message, a content, a connection it opened).
pub fn sut_judged(checks: &[CheckResult], topology: &Topology, sut: &[Role]) -> bool {
    checks
        .iter()
        .filter(|c| c.verdict == Verdict::Pass)
        .flat_map(|c| c.of_class(Class::Pass))
        .filter_map(|f| f.subject.as_ref())
        .any(|cite| {
            cite.ends()
                .0
                .name
                .as_deref()
                .and_then(|n| topology.instance(n))
                .is_some_and(|i| sut.contains(&i.role))
        })
}

/// The worst verdict of a case's checks; a case with only not-observable checks is inconc.
pub fn case_verdict(checks: &[CheckResult]) -> Verdict {
    let worst = checks
        .iter()
        .map(|c| c.verdict)
        .max()
        .unwrap_or(Verdict::Inconc);
    if worst == Verdict::NotObservable {
        Verdict::Inconc
    } else {
        worst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::finding::{Endpoint, Time};

    fn sip_from(name: &str, topo: &Topology) -> Cite {
        let i = topo.instance(name).unwrap();
        Cite::Sip {
            index: 0,
            t: Time::default(),
            start_line: "SIP/2.0 200 OK".into(),
            from: Endpoint {
                name: Some(name.into()),
                addr: i.sip,
            },
            to: Endpoint {
                name: Some("pf-a".into()),
                addr: topo.pf_a.sip,
            },
        }
    }

    /// A case whose checks all pass but judged only what the harness sent (a SUT that sent
    /// nothing judged) is inconc, with a HARNESS result saying why; one that judged a message
    /// of the SUT passes; the self-check is not concerned.
    #[test]
    fn a_case_that_judged_nothing_the_sut_sent_is_inconc() {
        let topo = Topology::default_chain();
        let check = |cite: Cite| {
            vec![CheckResult::new(
                CheckId::SigCfAnswer,
                Verdict::Pass,
                vec![Finding::about(
                    Class::Pass,
                    cite,
                    FindingKind::NothingToCheck,
                )],
            )]
        };
        let mut only_harness = check(sip_from("pf-b1", &topo));
        assert_eq!(
            judge_case(&mut only_harness, &topo, &[Role::X]),
            Verdict::Inconc
        );
        let h = only_harness.last().unwrap();
        assert_eq!((h.id, h.verdict), (CheckId::Harness, Verdict::Inconc));
        assert!(matches!(
            h.findings[0].kind,
            FindingKind::NothingOfSutJudged { .. }
        ));
        assert!(
            h.evidence()[0].contains("nothing of it was tested"),
            "{:?}",
            h.evidence()
        );
        let mut sut_sent = check(sip_from("x", &topo));
        assert_eq!(judge_case(&mut sut_sent, &topo, &[Role::X]), Verdict::Pass);
        assert_eq!(sut_sent.len(), 1);
        let mut self_check = check(sip_from("pf-b1", &topo));
        assert_eq!(judge_case(&mut self_check, &topo, &[]), Verdict::Pass);
        // Nothing but not-observable checks stays inconc, as before.
        let mut none = vec![CheckResult::new(
            CheckId::SigCfAnswer,
            Verdict::NotObservable,
            vec![],
        )];
        assert_eq!(judge_case(&mut none, &topo, &[Role::X]), Verdict::Inconc);
    }
}
