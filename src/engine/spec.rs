//! What one case is, independent of how the plan was made or how the case runs: its variant,
//! the split (the roles the SUT plays), the ordering choice with the harness's holds, and its
//! stable id (`F2/x/on-ack/udp/new/sdp/predefined/in-order`); splits as written in ids and
//! suites; which knobs can change what a split's SUT roles do ([`Relevance`]).

use crate::config::{AckTiming, Link, Variant};
use crate::engine::suite::Suite;
use crate::entity::Holds;
use crate::suggest::did_you_mean;
use crate::topology::Role;
use std::time::Duration;

/// One test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Stable, readable, unique: `F{n}/{split}/{variant knobs}/{ordering}`.
    pub id: String,
    pub figure: u8,
    pub variant: Variant,
    /// The roles the SUT plays (chain order); empty = the self-check (harness plays all).
    pub sut: Vec<Role>,
    /// The ordering choice's name.
    pub ordering: String,
    /// What the harness's own entities do with time and order.
    pub holds: Holds,
}

impl Case {
    /// The split as written in ids: `none`, `x`, `pf-a+x+pf-b`.
    pub fn split(&self) -> String {
        split_name(&self.sut)
    }

    pub fn is_self_check(&self) -> bool {
        self.sut.is_empty()
    }

    pub fn is_sut(&self, role: Role) -> bool {
        self.sut.contains(&role)
    }

    /// The discriminating pause the holds insert (the longest of the ACK, answer and send
    /// delays); zero for ordering choices without one.
    pub fn pause(&self) -> Duration {
        self.holds
            .ack_delay
            .max(self.holds.answer_delay)
            .max(self.holds.send_delay)
    }

    /// A rough guess at how long the case's own waits make it last, for scheduling the long
    /// cases first: a pause is held at several steps, a slow member answers late, a member
    /// that never answers is given up on by a timer (about a second), chunks are spaced.
    pub fn expected_wait(&self) -> Duration {
        let h = &self.holds;
        let slow = h
            .answer_delay_ms_per_member
            .values()
            .max()
            .copied()
            .unwrap_or(0);
        let never = if h.no_answer.is_empty() { 0 } else { 1000 };
        let linger = if h.failure_report_no { 300 } else { 0 };
        self.pause() * 3
            + h.chunk_gap * 10
            + h.report_delay
            + Duration::from_millis(slow + never + linger)
    }
}

// ------------------------------------------------------------------------------------------
// Splits

/// The network split: the three middle entities.
pub const NETWORK: [Role; 3] = [Role::PfA, Role::X, Role::PfB];

/// A split as written in ids: `none` for the self-check, else the roles in chain order joined
/// by `+`.
pub fn split_name(sut: &[Role]) -> String {
    if sut.is_empty() {
        return "none".into();
    }
    let mut v = sut.to_vec();
    v.sort();
    v.iter().map(|r| r.as_str()).collect::<Vec<_>>().join("+")
}

/// All 30 proper non-empty subsets of the five roles: by size, then chain order.
pub fn proper_splits() -> Vec<Vec<Role>> {
    let mut out: Vec<Vec<Role>> = (1u32..31)
        .map(|mask| {
            Role::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, r)| *r)
                .collect()
        })
        .collect();
    out.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    out
}

/// Parses one split entry of `default.yaml` or a profile: `none`, `singles`, `network`,
/// `all-proper`, a role, or roles joined by `,` or `+`. Returns the splits it stands for.
pub fn parse_split(s: &str) -> Result<Vec<Vec<Role>>, String> {
    let s = s.trim();
    match s {
        "none" | "self" => return Ok(vec![vec![]]),
        "singles" => return Ok(Role::ALL.iter().map(|r| vec![*r]).collect()),
        "network" => return Ok(vec![NETWORK.to_vec()]),
        "all-proper" => return Ok(proper_splits()),
        _ => {}
    }
    let mut roles = Vec::new();
    for part in s.split([',', '+']).map(str::trim) {
        if part.is_empty() {
            return Err(format!("split {s:?} has an empty role name"));
        }
        let r = Role::parse(part).map_err(|_| {
            let mut known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            known.extend(["none", "singles", "network", "all-proper"]);
            format!(
                "split {s:?}: unknown role {part:?}{}; expected a role (client-a, pf-a, x, pf-b, \
                 client-b), roles joined by + or ',', or none, singles, network, all-proper",
                did_you_mean(part, &known)
            )
        })?;
        if !roles.contains(&r) {
            roles.push(r);
        }
    }
    roles.sort();
    if roles.len() == Role::ALL.len() {
        return Err(format!(
            "split {s:?}: the SUT cannot play all five roles (the harness must play at least one); \
             use `none` for the self-check"
        ));
    }
    Ok(vec![roles])
}

// ------------------------------------------------------------------------------------------
// default.yaml

/// Which variant knobs can change what the SUT roles of a split do in a figure. For the
/// self-check split every knob is relevant (the harness tests itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relevance {
    /// `trigger`: a SUT pf-a/pf-b opens a link as INVITE sender (the link allows several
    /// triggers).
    pub trigger: bool,
    /// `x-trigger`: a SUT x opens such a link.
    pub x_trigger: bool,
    /// `l23-opener`: the figure has the solution-3 choice and the SUT plays a middle entity.
    pub l23: bool,
    /// `ack`: the SUT plays a middle entity.
    pub ack: bool,
    /// `reuse`: the SUT plays x or pf-b, the ends of L3, the link that carries one session per
    /// member (two members share a pf-b in the default topology).
    pub reuse: bool,
    /// `group`: the SUT plays client-a, pf-a or x (who see the group URI or resource list).
    pub group: bool,
}

impl Relevance {
    pub fn of(suite: &Suite, variant: &Variant, sut: &[Role]) -> Relevance {
        if sut.is_empty() {
            return Relevance {
                trigger: true,
                x_trigger: true,
                l23: suite.has_l23_choice(),
                ack: true,
                reuse: true,
                group: true,
            };
        }
        let opens_with_knob = |roles: &[Role]| {
            Link::all().iter().any(|l| {
                let r = suite.link_for(*l, variant);
                roles.contains(&r.opener) && sut.contains(&r.opener) && r.triggers.len() > 1
            })
        };
        let any = |roles: &[Role]| roles.iter().any(|r| sut.contains(r));
        Relevance {
            trigger: opens_with_knob(&[Role::PfA, Role::PfB]),
            x_trigger: opens_with_knob(&[Role::X]),
            l23: suite.has_l23_choice() && any(&NETWORK),
            ack: any(&NETWORK),
            reuse: any(&[Role::X, Role::PfB]),
            group: any(&[Role::ClientA, Role::PfA, Role::X]),
        }
    }
}

/// `F2/x/on-ack/udp/new/sdp/predefined/in-order` (plus `/chunk-N` when the chunk size is not
/// the default).
pub fn case_id(variant: &Variant, sut: &[Role], ordering: &str) -> String {
    let vid = variant.id();
    let fig = format!("F{}", variant.figure);
    let rest = vid
        .strip_prefix(&format!("{fig}/"))
        .unwrap_or(vid.as_str())
        .to_string();
    let mut id = format!("{fig}/{}/{rest}", split_name(sut));
    if variant.chunk_size != Variant::new(variant.figure.n()).chunk_size {
        id.push_str(&format!("/chunk-{}", variant.chunk_size));
    }
    id.push('/');
    id.push_str(ordering);
    id
}

/// `on-200` / `after-upstream-ack` (the YAML names).
pub fn ack_name(a: AckTiming) -> &'static str {
    match a {
        AckTiming::On200 => "on-200",
        AckTiming::AfterUpstreamAck => "after-upstream-ack",
    }
}

// ------------------------------------------------------------------------------------------
// The plan

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_proper_splits() {
        let s = proper_splits();
        assert_eq!(s.len(), 30);
        assert!(s.iter().all(|r| !r.is_empty() && r.len() < 5));
        let names: std::collections::HashSet<String> = s.iter().map(|r| split_name(r)).collect();
        assert_eq!(names.len(), 30);
        assert_eq!(s[0], vec![Role::ClientA]);
    }

    #[test]
    fn splits_parse() {
        assert_eq!(parse_split("none").unwrap(), vec![Vec::<Role>::new()]);
        assert_eq!(
            parse_split("x + pf-a").unwrap(),
            vec![vec![Role::PfA, Role::X]]
        );
        assert_eq!(parse_split("network").unwrap(), vec![NETWORK.to_vec()]);
        assert_eq!(parse_split("singles").unwrap().len(), 5);
        let e = parse_split("pfa").unwrap_err();
        assert!(e.contains("did you mean \"pf-a\""), "{e}");
        assert!(parse_split("client-a,pf-a,x,pf-b,client-b").is_err());
    }
}
