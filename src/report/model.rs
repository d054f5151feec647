//! The run summary (`summary.json`, schema in `docs/summary-schema.md`): the one model every
//! report is rendered from, so `merge` can rebuild JUnit and HTML from shard summaries alone.
//!
//! This module owns the schema and how a case's outcome becomes a [`CaseReport`]: the
//! observed ladder (from [`crate::capture::ladder`]) with the rows that failing checks cite
//! marked, and the figure's expected steps with what became of each in this case.

use crate::capture::ladder::{Ladder, Style};
use crate::engine::finding::{Cite, Class, Endpoint};
use crate::engine::outcome::CaseOutcome;
use crate::engine::spec::Case;
use crate::engine::suite::{link_between, link_name, Suite};
use crate::engine::{CheckId, CheckResult, Verdict};
use crate::topology::{Role, Topology};
use serde::{Deserialize, Serialize};

use std::time::Duration;

/// The summary's format version. Bumped whenever a field is removed, renamed or changes
/// meaning; new fields keep it (readers ignore fields they do not know, and a reader of this
/// version gives fields an older file lacks their documented default).
pub const SCHEMA_VERSION: u32 = 4;

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    /// The run folder's name (`run-<unix seconds>-<pid>`), or `merged` for `merge`'s output.
    pub run: String,
    /// The profile's name.
    pub profile: String,
    /// `k/n` when the run was one shard of `--partition k/n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// For `merge`: the runs it joined, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    pub counts: Counts,
    /// What a reader must know of the whole run first: the running SUT could not be started,
    /// or its process died (the cases after it are errors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_notes: Vec<String>,
    /// The cases that ran, in plan order.
    pub cases: Vec<CaseReport>,
    /// Cases the profile does not declare, and cases `--fail-fast` kept from running.
    pub skipped: Vec<Skipped>,
    /// The conformance test report (`cpm-harness run` and `merge` write it; none for runs
    /// driven as a library without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pctr: Option<super::pctr::Pctr>,
}

impl Summary {
    /// Recomputes what is derived from the cases and the skipped ones: the counts and the
    /// report's results.
    pub fn recount(&mut self) {
        self.counts = Counts::of(&self.cases, &self.skipped);
        if let Some(p) = &mut self.pctr {
            p.results = super::pctr::Results::of(&self.cases, &self.skipped);
        }
    }
}

/// Cases by verdict; `skipped` counts both kinds of [`Skipped`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub inconc: usize,
    pub error: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn of(cases: &[CaseReport], skipped: &[Skipped]) -> Counts {
        let n = |v: Verdict| cases.iter().filter(|c| c.verdict == v).count();
        Counts {
            passed: n(Verdict::Pass),
            failed: n(Verdict::Fail),
            inconc: n(Verdict::Inconc),
            error: n(Verdict::Error),
            skipped: skipped.len(),
        }
    }

    /// The closing line: `N passed, N failed, N inconc, N error, N skipped`.
    pub fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} inconc, {} error, {} skipped",
            self.passed, self.failed, self.inconc, self.error, self.skipped
        )
    }
}

/// A case that did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub id: String,
    /// The figure (from the id's `F<n>/` prefix), for grouping.
    pub figure: u8,
    pub reason: String,
    /// True when `--fail-fast` kept the case from running (it was in the plan); false when the
    /// profile does not declare what the case needs.
    #[serde(default)]
    pub not_run: bool,
    /// Position in the plan's case list (`not_run`) or its skipped list; orders merged shards.
    #[serde(default)]
    pub index: usize,
}

impl Skipped {
    pub fn new(id: &str, reason: &str, not_run: bool, index: usize) -> Skipped {
        Skipped {
            id: id.to_string(),
            figure: figure_of(id),
            reason: reason.to_string(),
            not_run,
            index,
        }
    }
}

/// `F3/x/…` → 3 (0 when the id has no figure prefix).
pub fn figure_of(id: &str) -> u8 {
    id.strip_prefix('F')
        .and_then(|r| r.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// One case that ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: String,
    /// Position in the plan's case list (after `--filter`, before `--partition`).
    pub index: usize,
    pub figure: u8,
    /// `none`, `x`, `pf-a+x+pf-b`: the roles the SUT played.
    pub split: String,
    pub ordering: String,
    pub verdict: Verdict,
    pub duration_ms: u64,
    /// Every check, in catalogue order, with its verdict and evidence.
    pub checks: Vec<CheckResult>,
    /// Harness-level notes (timeouts, the SUT's last lines).
    pub notes: Vec<String>,
    /// What crossed the wire, as a normalized ladder; none when nothing could be drawn, and
    /// none in `summary.json` for a passing case (its page draws it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<LadderView>,
    /// The figure's steps and what became of each; none without the figure's suite.
    #[serde(default)]
    pub expected: Option<ExpectedView>,
}

impl CaseReport {
    /// The checks that make the case not pass (fail and error, or inconc for an inconc case).
    pub fn failing_checks(&self) -> impl Iterator<Item = &CheckResult> {
        let v = self.verdict;
        self.checks.iter().filter(move |c| match c.verdict {
            Verdict::Fail | Verdict::Error => true,
            Verdict::Inconc => v == Verdict::Inconc,
            _ => false,
        })
    }

    /// File name of the case's HTML page (inside `cases/`).
    pub fn page_name(&self) -> String {
        format!("{}.html", file_stem(&self.id))
    }
}

/// A case id as a file name (`F1/x/…` → `F1_x_…`), as the event logs and captures name it.
pub fn file_stem(id: &str) -> String {
    crate::chain::sanitize(&id.replace('/', "_"))
}

/// An entity column of a ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `client-a`, `pf-a`, `x`, `pf-b`, `client-b`; none for an address no entity has.
    pub role: Option<String>,
    /// True when the SUT played this entity.
    #[serde(default)]
    pub sut: bool,
    /// True for the SIP/IP core (`run --core`): SIP rows to or from it are half of a message
    /// between the entity at the row's other end and the one at the message's far end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub core: bool,
}

/// How a row is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowStyle {
    /// A SIP message: solid arrow.
    Sip,
    /// An MSRP link opened (TCP SYN) by the side the arrow leaves: dashed arrow.
    LinkOpen,
    /// An MSRP link closed: dotted, both ways.
    LinkClose,
    /// MSRP requests or responses (a group of chunks is one row): thin dashed arrow.
    Msrp,
}

/// One row of the observed ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowView {
    /// Column indices.
    pub from: usize,
    pub to: usize,
    pub style: RowStyle,
    /// Drawn on the arrow: `INVITE`, `200`, `SYN`, `SEND ×10`.
    pub label: String,
    /// One-line normalized annotation.
    pub detail: String,
    /// The message, normalized: start line, headers, SDP lines (shown on hover).
    pub message: Vec<String>,
    /// When the row's first message was captured, in ms since the case started.
    pub t_ms: f64,
    /// The figure message this row is an instance of (`INVITE2`, `200-3`, `L2-open`, `SEND`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Checks whose failure evidence cites this row (drawn red).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<CheckId>,
}

/// The observed ladder of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LadderView {
    pub columns: Vec<Column>,
    pub rows: Vec<RowView>,
    /// The same ladder as `cpm-harness show` draws it (normalized text).
    pub text: String,
}

/// What became of a figure step in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// Observed, and no failing check cites it.
    Seen,
    /// Observed, and a failing check cites it.
    Failed,
    /// Observable in this split but never observed.
    Missing,
    /// Between two SUT roles: the harness cannot see it.
    Hidden,
}

/// One step of the figure as the case expected it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    /// Suite step id (`S106-L2`).
    pub id: String,
    /// Patent step (`S106`).
    pub reference: String,
    /// `INVITE1`, `200-2`, `ACK2`, `L2-open`, `SEND`.
    pub message: String,
    /// Role columns (indices into [`ExpectedView::columns`]).
    pub from: usize,
    pub to: usize,
    pub status: StepStatus,
    /// Checks whose failures cite an observed instance of this step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<CheckId>,
}

/// The figure's expected ladder for a case's variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedView {
    /// `FIG 1: INVITE sender opens; x answers at once`.
    pub title: String,
    /// The five roles, in chain order.
    pub columns: Vec<String>,
    pub steps: Vec<StepView>,
}

// ------------------------------------------------------------------------------ building

/// A case's report from its outcome: the ladder drawn from its wire events, failing rows and
/// steps marked. `suite` is the case's figure suite (for the expected ladder).
pub fn case_report(
    index: usize,
    case: &Case,
    outcome: &CaseOutcome,
    suite: Option<&Suite>,
) -> CaseReport {
    let mut notes = outcome.notes.clone();
    let judged = |r: Option<Role>| case.sut.is_empty() || r.is_some_and(|r| case.sut.contains(&r));
    let ladder = match (&outcome.topology, &outcome.observation) {
        (Some(topo), Some(obs)) => {
            match build_ladder(topo, obs, &outcome.checks, &case.sut, &judged) {
                Ok(l) => Some(l),
                Err(e) => {
                    notes.push(format!("no ladder: {e}"));
                    None
                }
            }
        }
        _ => None,
    };
    let expected = suite.map(|s| expected_view(s, case, ladder.as_ref()));
    CaseReport {
        id: outcome.id.clone(),
        index,
        figure: outcome.figure,
        split: outcome.split.clone(),
        ordering: outcome.ordering.clone(),
        verdict: outcome.verdict,
        duration_ms: outcome.duration_ms as u64,
        checks: outcome.checks.clone(),
        notes,
        ladder,
        expected,
    }
}

fn build_ladder(
    topo: &Topology,
    obs: &crate::model::Observation,
    checks: &[CheckResult],
    sut: &[Role],
    judged: &dyn Fn(Option<Role>) -> bool,
) -> Result<LadderView, String> {
    if obs.sip.is_empty() {
        return Err("nothing was recorded".into());
    }
    let map = crate::capture::analyze::EntityMap {
        topology: topo.clone(),
        source: Some("case".into()),
        unseen: Vec::new(),
        notes: Vec::new(),
    };
    // The case's own model: the ladder shows what the checks judged.
    let ladder = Ladder::from_observation(obs, map);
    let role_of = |name: &str| topo.instance(name).map(|i| i.role);
    // The ladder names the SIP/IP core's column `core`.
    let is_core = |name: &str| topo.core.is_some() && name == "core";
    let columns: Vec<Column> = ladder
        .columns
        .iter()
        .map(|n| {
            let role = role_of(n);
            Column {
                name: n.clone(),
                role: role.map(|r| r.as_str().to_string()),
                sut: role.is_some_and(|r| sut.contains(&r)),
                core: is_core(n),
            }
        })
        .collect();
    let cited = cited_messages(checks);
    let rows = ladder
        .rows
        .iter()
        .map(|r| {
            let (fname, tname) = (&ladder.columns[r.from], &ladder.columns[r.to]);
            let mut failed: Vec<CheckId> = Vec::new();
            // Through the core, a row has the proxy at one end and the evidence names the
            // entities at both ends of the message.
            let (fcore, tcore) = (is_core(fname), is_core(tname));
            for c in &cited {
                let sender = if fcore {
                    c.from.as_str()
                } else {
                    fname.as_str()
                };
                let hit = judged(role_of(sender))
                    && (c.from == *fname || fcore)
                    && (c.to == *tname || tcore)
                    && !(fcore && tcore)
                    && r.label.split(' ').next() == Some(c.what.as_str())
                    && r.times.iter().any(|t| (ms(*t) - c.t_ms).abs() < 0.06);
                if hit && !failed.contains(&c.check) {
                    failed.push(c.check);
                }
            }
            let mut message = vec![r.detail.clone()];
            message.extend(r.fields.iter().map(|(k, v)| format!("{k}: {v}")));
            RowView {
                from: r.from,
                to: r.to,
                style: match r.style {
                    Style::Sip => RowStyle::Sip,
                    Style::Tcp => RowStyle::LinkOpen,
                    Style::Closed => RowStyle::LinkClose,
                    Style::Msrp => RowStyle::Msrp,
                },
                label: r.label.clone(),
                detail: r.detail.clone(),
                message,
                t_ms: r.times.first().map(|t| ms(*t)).unwrap_or(0.0),
                step: match (fcore, tcore) {
                    (false, false) => step_message(r, role_of(fname), role_of(tname)),
                    (true, false) => proxied_step(r, role_of(tname), false),
                    (false, true) => proxied_step(r, role_of(fname), true),
                    (true, true) => None,
                },
                failed,
            }
        })
        .collect();
    Ok(LadderView {
        columns,
        rows,
        text: ladder.render(),
    })
}

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1000.0
}

/// The figure message a SIP row between an entity of role `end` and the core is half of:
/// requests (INVITE, ACK, BYE) go downstream and 200 OKs to INVITEs upstream, so the
/// direction and the entity's role give the leg.
fn proxied_step(r: &crate::capture::ladder::Row, end: Option<Role>, sent: bool) -> Option<String> {
    let end = end?;
    let i = Role::ALL.iter().position(|x| *x == end)?;
    let response = r.label.starts_with('2');
    // Sent requests and received responses are on the entity's downstream leg.
    let downstream = sent != response;
    let peer = if downstream {
        Role::ALL.get(i + 1)
    } else {
        i.checked_sub(1).and_then(|j| Role::ALL.get(j))
    }?;
    let (from, to) = if sent { (end, *peer) } else { (*peer, end) };
    if r.style != Style::Sip {
        return None;
    }
    step_message(r, Some(from), Some(to))
}

/// The figure message an observed row is an instance of.
fn step_message(
    r: &crate::capture::ladder::Row,
    from: Option<Role>,
    to: Option<Role>,
) -> Option<String> {
    let link = link_between(from?, to?)?;
    let n = link_name(link).trim_start_matches('L').to_string();
    match r.style {
        Style::Tcp => Some(format!("{}-open", link_name(link))),
        Style::Closed => None,
        Style::Msrp => (r.label.starts_with("SEND") && r.detail.contains("(bytes "))
            .then(|| "SEND".to_string()),
        Style::Sip => {
            let cseq = r
                .fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("CSeq"))
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            match r.label.as_str() {
                "INVITE" => Some(format!("INVITE{n}")),
                "ACK" => Some(format!("ACK{n}")),
                "BYE" => Some(format!("BYE{n}")),
                l if l.starts_with('2') && cseq.ends_with("INVITE") => Some(format!("200-{n}")),
                _ => None,
            }
        }
    }
}

/// A message a failing check's finding is about (its subject).
#[derive(Debug, Clone, PartialEq)]
pub struct Cited {
    pub check: CheckId,
    pub t_ms: f64,
    pub from: String,
    pub to: String,
    /// What the subject is: a SIP method or status code, an MSRP method or status code, or
    /// `SYN` for a link opening (compared with the row's label, so a 100 Trying stamped in
    /// the same 0.1 ms as the cited 200 OK stays black).
    pub what: String,
}

/// The messages and link openings the failures of failing checks are about. Other messages a
/// finding names are context (a trigger, a cause), and a finding with no subject is about
/// something that never happened (`x never opened L3 …`), which the expected ladder shows as
/// missing. Rows are marked only when a judged role sent them.
pub fn cited_messages(checks: &[CheckResult]) -> Vec<Cited> {
    let name = |e: &Endpoint| e.name.clone().unwrap_or_else(|| e.addr.to_string());
    let mut out = Vec::new();
    for c in checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
    {
        for f in c.of_class(Class::Fail) {
            let (what, from, to) = match &f.subject {
                Some(Cite::Sip {
                    start_line,
                    from,
                    to,
                    ..
                })
                | Some(Cite::Msrp {
                    start_line,
                    from,
                    to,
                    ..
                }) => (start_word(start_line), from, to),
                Some(Cite::Conn { opener, target, .. }) => ("SYN".to_string(), opener, target),
                Some(Cite::Content { .. }) | None => continue,
            };
            out.push(Cited {
                check: c.id,
                t_ms: f.subject.as_ref().map(|s| ms(s.t().0)).unwrap_or(0.0),
                from: name(from),
                to: name(to),
                what,
            });
        }
    }
    out
}

/// The word of a start line a ladder row's label begins with: `SIP/2.0 200 OK` → `200`,
/// `INVITE sip:…` → `INVITE`, `MSRP tid SEND` → `SEND`, `MSRP tid 200 OK` → `200`.
fn start_word(start: &str) -> String {
    let w: Vec<&str> = start.split_whitespace().collect();
    match w.as_slice() {
        ["MSRP", _, x, ..] => x.to_string(),
        [v, code, ..] if v.starts_with("SIP/") => code.to_string(),
        [m, ..] => m.to_string(),
        [] => String::new(),
    }
}

/// The figure's steps for the case's variant, each matched to the observed rows.
fn expected_view(suite: &Suite, case: &Case, ladder: Option<&LadderView>) -> ExpectedView {
    let col = |r: Role| Role::ALL.iter().position(|x| *x == r).unwrap_or(0);
    let steps = suite
        .steps_for(&case.variant)
        .into_iter()
        .map(|st| {
            let message = st.message.to_string();
            let hidden =
                !case.sut.is_empty() && case.sut.contains(&st.from) && case.sut.contains(&st.to);
            let rows: Vec<&RowView> = ladder
                .map(|l| {
                    l.rows
                        .iter()
                        .filter(|r| {
                            let (f, t) = (&l.columns[r.from], &l.columns[r.to]);
                            r.step.as_deref() == Some(message.as_str())
                                && (f.core || f.role.as_deref() == Some(st.from.as_str()))
                                && (t.core || t.role.as_deref() == Some(st.to.as_str()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut failed: Vec<CheckId> = Vec::new();
            for r in &rows {
                for c in &r.failed {
                    if !failed.contains(c) {
                        failed.push(*c);
                    }
                }
            }
            let status = if hidden {
                StepStatus::Hidden
            } else if rows.is_empty() {
                StepStatus::Missing
            } else if !failed.is_empty() {
                StepStatus::Failed
            } else {
                StepStatus::Seen
            };
            StepView {
                id: st.id.clone(),
                reference: st.reference().to_string(),
                message,
                from: col(st.from),
                to: col(st.to),
                status,
                failed,
            }
        })
        .collect();
    ExpectedView {
        title: format!("FIG {}: {}", suite.figure().n(), suite.title()),
        columns: Role::ALL.iter().map(|r| r.as_str().to_string()).collect(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_about_a_message_or_an_opening_cite_it_and_others_do_not() {
        use crate::engine::finding::Time;
        use crate::engine::{Finding, FindingKind};
        let ep = |n: &str, a: &str| Endpoint {
            name: Some(n.into()),
            addr: a.parse().unwrap(),
        };
        let ok = Cite::Sip {
            index: 4,
            t: Time(Duration::from_micros(8_900)),
            start_line: "SIP/2.0 200 OK".into(),
            from: ep("x", "127.0.0.13:5060"),
            to: ep("pf-a", "127.0.0.12:5060"),
        };
        let syn = Cite::Conn {
            index: 0,
            t: Time(Duration::from_micros(415_000)),
            opener: ep("x", "127.0.0.13:43837"),
            target: ep("pf-a", "127.0.0.12:2855"),
        };
        let checks = vec![
            CheckResult::new(
                CheckId::SdpSetup,
                Verdict::Fail,
                vec![
                    Finding::about(
                        Class::Fail,
                        ok.clone(),
                        FindingKind::SetupActpassAnswer {
                            setup: crate::engine::finding::SetupAttr(Some("actpass".into())),
                        },
                    ),
                    // Context only: something that never happened, and an inconclusive item.
                    Finding::fail(FindingKind::NoInvite2),
                    Finding::about(
                        Class::Inconc,
                        syn.clone(),
                        FindingKind::RecordingEndsBeforeBind,
                    ),
                ],
            ),
            CheckResult::new(
                CheckId::LinkDir,
                Verdict::Fail,
                vec![Finding::about(
                    Class::Fail,
                    syn,
                    FindingKind::LinkOffChain { opener: "x".into() },
                )],
            ),
            // A passing check cites nothing.
            CheckResult::new(
                CheckId::SdpMedia,
                Verdict::Pass,
                vec![Finding::about(Class::Pass, ok, FindingKind::OneMsrpMedia)],
            ),
        ];
        let cited = cited_messages(&checks);
        assert_eq!(cited.len(), 2, "{cited:?}");
        assert_eq!(
            (
                cited[0].check,
                cited[0].what.as_str(),
                cited[0].from.as_str()
            ),
            (CheckId::SdpSetup, "200", "x")
        );
        assert!((cited[0].t_ms - 8.9).abs() < 1e-9);
        assert_eq!(
            (cited[1].check, cited[1].what.as_str(), cited[1].to.as_str()),
            (CheckId::LinkDir, "SYN", "pf-a")
        );
    }

    #[test]
    fn figure_of_reads_the_id_prefix() {
        assert_eq!(figure_of("F7/x/on-ack"), 7);
        assert_eq!(figure_of("capture"), 0);
    }
}
