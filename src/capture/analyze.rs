//! Offline analysis of a capture (`cpm-harness analyze`): a pcap/pcapng read back into wire
//! events, its addresses mapped to the chain's entities, and the *same* observation
//! ([`crate::model`]) and checks ([`run_checks`]) a live case runs, with a [`CaseContext`] rebuilt
//! from the capture and the command line (figure and knobs, SUT roles, trigger window, pause;
//! the figure's rules are the built-in table of the seven figures).
//!
//! This module owns:
//! - **the entity map** ([`EntityMap`]): a topology YAML given with `--map` (checked to
//!   describe the capture), or one inferred from the SIP signalling chain ([`infer_map`]):
//!   INVITE1 (Request-URI the group, or the conference factory with
//!   `Require: recipient-list-invite`) from client-a to pf-a, pf-a's INVITE2 to x, x's
//!   INVITE3 per member (Request-URI the member) to the pf-b instances, their INVITE4 to the
//!   members, named by the Request-URI's user part. Entities are told apart by their SIP
//!   address (IP and port: several may share one IP, as a vendor's SUT does): where INVITEs
//!   were sent, and the sender's Via sent-by (RFC 3261 §18.1.1); MSRP listeners are the
//!   entity's own SDP `a=path` URI (the TCP targets that match it first).
//!   Which INVITE a lone one is, when its neighbours are hidden, follows from the SUT roles
//!   (a hop between two SUT roles is never captured). Entities the capture never shows get
//!   placeholder addresses in 192.0.2.0/24, which match no traffic. Limits: a pre-defined
//!   group's members are those x invited (an ad-hoc group adds its resource list); with no
//!   member INVITE at all, one unseen `member-unseen` stands for the group. Give `--map` to
//!   judge fan-out against the real group;
//! - **content**: what client-a sent and what each member got come from the model's
//!   delivery view ([`crate::model::delivery`]): client-a's L1 SENDs reassembled and
//!   unwrapped from CPIM (the first visible link downstream when L1 is not in the capture),
//!   each member's own link likewise — the same judgement as a live run. With pf-b and
//!   client-b both SUT no member link is captured and MEDIA-DELIVERY is not observable (a live
//!   run reads the SUT's output files);
//! - **the report** ([`Report`]): one verdict per check with evidence, as text
//!   ([`render_text`]) or as the summary's case object ([`CaseOutcome`]).
//!
//! Nothing here panics on hostile input: a capture with no INVITE, a map that matches none of
//! the capture's addresses, two roles at one SIP address are [`AnalyzeError`]s naming the
//! file.

use crate::capture::read::{read_capture_full, CaptureError};
use crate::codec::msrp::MsrpUri;
use crate::config::Variant;
use crate::engine::catalogue::Family;
use crate::engine::checks::run_checks;
use crate::engine::outcome::CaseOutcome;
use crate::engine::spec::split_name;
use crate::engine::{CaseContext, CheckId, CheckResult, Finding, FindingKind, Verdict};
use crate::entity::Holds;
use crate::model::{interpret, listener, Observation};
use crate::topology::{strip_uri, Endpoint, Member, PfB, Role, Topology};
use crate::trace::WireEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why a capture could not be analysed. Every variant names the file; all are usage or input
/// errors (exit code 2 on the command line).
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(
        "{}: no SIP INVITE in the capture ({packets} packets, {sip} SIP messages); expected a \
         capture of the CPM group flow (INVITE from client-a to pf-a, …), e.g. one written by \
         `cpm-harness run` under captures/<run>/",
        path.display()
    )]
    NoInvite {
        path: PathBuf,
        packets: u64,
        sip: usize,
    },
    #[error("{}: {msg}", path.display())]
    Map { path: PathBuf, msg: String },
    #[error("{}: {msg}", path.display())]
    Infer { path: PathBuf, msg: String },
}

// ------------------------------------------------------------------------------------------
// The entity map

/// How the capture's addresses map to the chain's entities.
#[derive(Debug, Clone)]
pub struct EntityMap {
    pub topology: Topology,
    /// The `--map` file, or `None` when inferred from the capture.
    pub source: Option<PathBuf>,
    /// Entities the capture never shows (placeholder addresses in 192.0.2.0/24).
    pub unseen: Vec<String>,
    /// How the inference decided, one line each.
    pub notes: Vec<String>,
}

impl EntityMap {
    /// One line per entity: `pf-a 127.0.0.12 (sip :5060, msrp :2855)`.
    pub fn describe(&self) -> Vec<String> {
        self.topology
            .instances()
            .into_iter()
            .map(|i| {
                if self.unseen.contains(&i.name) {
                    format!("{:<9} not in the capture", i.name)
                } else if i.sip.ip() == i.msrp.ip() {
                    format!(
                        "{:<9} {} (sip :{}, msrp :{})",
                        i.name,
                        i.sip.ip(),
                        i.sip.port(),
                        i.msrp.port()
                    )
                } else {
                    format!("{:<9} sip {} msrp {}", i.name, i.sip, i.msrp)
                }
            })
            .collect()
    }
}

/// Loads a `--map` topology file; errors name the file (and line:column for YAML errors).
pub fn load_map(path: &Path) -> Result<Topology, AnalyzeError> {
    Topology::load(path).map_err(|e| AnalyzeError::Map {
        path: path.to_owned(),
        msg: format!(
            "{}; expected a topology YAML like suites/topology.yaml",
            strip_prefix(&format!("{e:#}"), &path.display().to_string())
        ),
    })
}

/// [`load_map`] for an optional `--map`: the path with its topology.
pub fn load_map_opt(path: Option<&Path>) -> Result<Option<(PathBuf, Topology)>, AnalyzeError> {
    path.map(|p| load_map(p).map(|t| (p.to_owned(), t)))
        .transpose()
}

fn strip_prefix(msg: &str, prefix: &str) -> String {
    msg.strip_prefix(prefix)
        .map(|r| r.trim_start_matches(':').trim_start().to_string())
        .unwrap_or_else(|| msg.to_string())
}

/// The entity map of a capture: `map` (from `map_path`) when given, checked to describe at
/// least one of the capture's SIP addresses; otherwise inferred ([`infer_map`]).
pub fn entity_map(
    capture: &Path,
    wire: &Observation,
    map: Option<(&Path, &Topology)>,
    sut: &[Role],
) -> Result<EntityMap, AnalyzeError> {
    match map {
        Some((path, topo)) => {
            let ips: BTreeSet<IpAddr> = topo
                .instances()
                .iter()
                .flat_map(|i| [i.sip.ip(), i.msrp.ip()])
                .collect();
            let known = wire.sip.iter().any(|s| {
                listener(topo, s.from).is_some()
                    || listener(topo, s.to).is_some()
                    || ips.contains(&s.from.ip())
            });
            if !known {
                let sample: BTreeSet<String> = wire
                    .sip
                    .iter()
                    .flat_map(|s| [s.from.to_string(), s.to.to_string()])
                    .take(4)
                    .collect();
                let what = if sample.is_empty() {
                    "the capture has no SIP messages".to_string()
                } else {
                    format!(
                        "none of the capture's SIP addresses ({}…) is an entity of the map",
                        sample.into_iter().collect::<Vec<_>>().join(", ")
                    )
                };
                return Err(AnalyzeError::Map {
                    path: path.to_owned(),
                    msg: format!(
                        "does not describe {}: {what}; expected the topology the capture was \
                         taken with",
                        capture.display()
                    ),
                });
            }
            Ok(EntityMap {
                topology: topo.clone(),
                source: Some(path.to_owned()),
                unseen: Vec::new(),
                notes: Vec::new(),
            })
        }
        None => infer_map(wire, sut).map_err(|msg| AnalyzeError::Infer {
            path: capture.to_owned(),
            msg,
        }),
    }
}

/// An initial INVITE (no To tag), first copy only; `from` and `to` are the SIP addresses of
/// its sender (the top Via sent-by, else the source) and receiver.
#[derive(Debug, Clone)]
struct Inv {
    t: Duration,
    from: SocketAddr,
    to: SocketAddr,
    /// Request-URI, stripped of parameters and brackets, lower-cased.
    uri: String,
    raw_uri: String,
    adhoc: bool,
    list: Vec<String>,
    from_uri: Option<String>,
    to_uri: Option<String>,
}

/// The SIP address a message's sender listens on: a request's top Via sent-by (RFC 3261
/// §18.1.1) when it names an address, else where it came from.
fn sender_addr(s: &crate::model::SipObs) -> SocketAddr {
    s.msg
        .as_ref()
        .filter(|m| m.is_request())
        .and_then(|m| m.via_sent_by())
        .and_then(|(_, v)| {
            v.parse::<SocketAddr>().ok().or_else(|| {
                v.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, 5060))
            })
        })
        .unwrap_or(s.from)
}

fn initial_invites(wire: &Observation) -> Vec<Inv> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for s in &wire.sip {
        let Some(m) = &s.msg else { continue };
        if !s.is_request("INVITE") || m.to_tag().is_some() {
            continue;
        }
        let from = sender_addr(s);
        let key = (
            m.call_id().unwrap_or_default().to_string(),
            m.via_branch().unwrap_or_default(),
            from,
            s.to,
        );
        if !seen.insert(key) {
            continue;
        }
        let raw_uri = m.request_uri().unwrap_or_default().to_string();
        let list = m.resource_list().ok().flatten().unwrap_or_default();
        let require = m
            .header_all("Require")
            .any(|r| r.to_ascii_lowercase().contains("recipient-list-invite"));
        out.push(Inv {
            t: s.t,
            from,
            to: s.to,
            uri: strip_uri(&raw_uri),
            raw_uri,
            adhoc: require || !list.is_empty(),
            list,
            from_uri: m.from_uri(),
            to_uri: m.to_uri(),
        });
    }
    out.sort_by_key(|i| i.t);
    out
}

/// The placeholder address of the `n`-th unseen entity.
fn placeholder(n: u8) -> Endpoint {
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, n.max(1)));
    Endpoint {
        sip: SocketAddr::new(ip, 5060),
        msrp: SocketAddr::new(ip, 2855),
    }
}

/// A member name from its URI: the user part (`sip:b1@example.com` → `b1`).
fn member_name(uri: &str) -> String {
    let u = uri.split_once(':').map(|(_, r)| r).unwrap_or(uri);
    let user = u.split('@').next().unwrap_or(u);
    let clean: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.+".contains(*c))
        .collect();
    if clean.is_empty() {
        "member".into()
    } else {
        clean
    }
}

/// Infers the entity map from the SIP signalling chain of the capture's wire layer (see the
/// module docs). `sut` says which hops cannot be in the capture (between two SUT roles), which
/// settles which INVITE a lone one is when its neighbours are hidden.
pub fn infer_map(wire: &Observation, sut: &[Role]) -> Result<EntityMap, String> {
    let invites = initial_invites(wire);
    if invites.is_empty() {
        return Err("no SIP INVITE in the capture".into());
    }
    let visible = |a: Role, b: Role| !(sut.contains(&a) && sut.contains(&b));
    let (l1, l3, l4) = (
        visible(Role::ClientA, Role::PfA),
        visible(Role::X, Role::PfB),
        visible(Role::PfB, Role::ClientB),
    );
    let l2 = visible(Role::PfA, Role::X);
    let mut notes = Vec::new();
    let sends =
        |a: SocketAddr, pred: &dyn Fn(&Inv) -> bool| invites.iter().any(|i| i.from == a && pred(i));
    let receives =
        |a: SocketAddr, pred: &dyn Fn(&Inv) -> bool| invites.iter().any(|i| i.to == a && pred(i));

    // The group (or factory) URI: INVITE1/INVITE2's Request-URI.
    let group_uri: Option<String> = invites
        .iter()
        .find(|i| i.adhoc)
        .or_else(|| {
            invites
                .iter()
                .find(|i| sends(i.to, &|o: &Inv| o.uri != i.uri))
        })
        .or_else(|| if l1 || l2 { invites.first() } else { None })
        .map(|i| i.uri.clone());
    let is_group = |i: &Inv| Some(&i.uri) == group_uri.as_ref();

    type Slot = Option<SocketAddr>;
    let (mut client_a, mut pf_a, mut x): (Slot, Slot, Slot) = (None, None, None);
    let set = |slot: &mut Slot, a: SocketAddr, what: &str, notes: &mut Vec<String>| match slot {
        None => *slot = Some(a),
        Some(old) if *old != a => notes.push(format!(
            "{what} seen at {a} as well as {old}; {old} is used"
        )),
        _ => {}
    };
    let mut invite1: Option<&Inv> = None;
    for g in invites.iter().filter(|i| is_group(i)) {
        let is_invite2 = if receives(g.from, &|o| is_group(o)) {
            true
        } else if sends(g.to, &|o| is_group(o)) {
            false
        } else if sends(g.to, &|o| !is_group(o)) {
            true
        } else {
            !l1
        };
        if is_invite2 {
            set(&mut pf_a, g.from, "pf-a", &mut notes);
            set(&mut x, g.to, "x", &mut notes);
        } else {
            set(&mut client_a, g.from, "client-a", &mut notes);
            set(&mut pf_a, g.to, "pf-a", &mut notes);
            invite1.get_or_insert(g);
        }
    }
    // Member INVITEs: INVITE3 from x to a pf-b, INVITE4 from a pf-b to the member.
    let mut pfb_addrs: BTreeSet<SocketAddr> = BTreeSet::new();
    // member URI → (raw URI, pf-b address, member address)
    type MemberSlot = (String, Option<SocketAddr>, Option<SocketAddr>);
    let mut members: BTreeMap<String, MemberSlot> = BTreeMap::new();
    let mut member_order: Vec<String> = Vec::new();
    for m in invites.iter().filter(|i| !is_group(i)) {
        let same = |o: &Inv| o.uri == m.uri;
        let is_invite3 = if x == Some(m.from) {
            true
        } else if receives(m.from, &same) {
            false
        } else if sends(m.to, &same) {
            true
        } else if !l3 {
            false
        } else if !l4 {
            true
        } else {
            x.is_none() && receives(m.from, &|o| is_group(o))
        };
        let e = members.entry(m.uri.clone()).or_insert_with(|| {
            member_order.push(m.uri.clone());
            (m.raw_uri.clone(), None, None)
        });
        if is_invite3 {
            set(&mut x, m.from, "x", &mut notes);
            e.1.get_or_insert(m.to);
            pfb_addrs.insert(m.to);
        } else {
            e.1.get_or_insert(m.from);
            e.2.get_or_insert(m.to);
            pfb_addrs.insert(m.from);
        }
    }
    // Ad hoc: members of the resource list x never invited are still expected.
    let adhoc = invites.iter().find(|i| i.adhoc);
    if let Some(a) = adhoc {
        for u in &a.list {
            let key = strip_uri(u);
            if let std::collections::btree_map::Entry::Vacant(e) = members.entry(key.clone()) {
                notes.push(format!(
                    "{u}: in the resource list but never invited in the capture"
                ));
                member_order.push(key);
                e.insert((u.clone(), None, None));
            }
        }
    }

    // One SIP address per entity (several entities may share an IP).
    let mut owners: BTreeMap<SocketAddr, Vec<String>> = BTreeMap::new();
    for (name, a) in [("client-a", client_a), ("pf-a", pf_a), ("x", x)] {
        if let Some(a) = a {
            owners.entry(a).or_default().push(name.into());
        }
    }
    for a in &pfb_addrs {
        owners.entry(*a).or_default().push("a pf-b".into());
    }
    for (uri, (_, _, a)) in &members {
        if let Some(a) = a {
            owners.entry(*a).or_default().push(format!("member {uri}"));
        }
    }
    if let Some((a, who)) = owners.iter().find(|(_, v)| v.len() > 1) {
        return Err(format!(
            "{} share the SIP address {a}: the signalling does not tell them apart; give \
             --map with the topology instead",
            who.join(" and ")
        ));
    }

    // MSRP listeners: the entity's own a=path URI (the last of its path), from the SDP it
    // sent; the TCP targets that match it first.
    let targets: Vec<SocketAddr> = wire
        .conns
        .iter()
        .filter(|c| !c.carried_sip)
        .map(|c| c.target)
        .collect();
    let msrp_addr = |sip: SocketAddr| -> Option<SocketAddr> {
        let own: Vec<SocketAddr> = wire
            .sip
            .iter()
            .filter(|s| sender_addr(s) == sip)
            .filter_map(|s| s.sdp.as_ref().and_then(|d| d.path()))
            .filter_map(|p| p.last().and_then(MsrpUri::socket_addr))
            .collect();
        own.iter()
            .find(|a| targets.contains(a))
            .or(own.first())
            .copied()
    };
    let mut unseen = Vec::new();
    let mut next_placeholder = 1u8;
    let mut endpoint = |name: &str, a: Option<SocketAddr>, unseen: &mut Vec<String>| match a {
        Some(sip) => {
            let msrp = msrp_addr(sip).unwrap_or(SocketAddr::new(sip.ip(), 0));
            Endpoint { sip, msrp }
        }
        None => {
            unseen.push(name.to_string());
            let e = placeholder(next_placeholder);
            next_placeholder = next_placeholder.saturating_add(1);
            e
        }
    };
    let ep_a = endpoint("client-a", client_a, &mut unseen);
    let ep_pfa = endpoint("pf-a", pf_a, &mut unseen);
    let ep_x = endpoint("x", x, &mut unseen);
    let mut pf_b: Vec<PfB> = Vec::new();
    for (k, a) in pfb_addrs.iter().enumerate() {
        let name = format!("pf-b{}", k + 1);
        let e = endpoint(&name, Some(*a), &mut unseen);
        pf_b.push(PfB {
            name,
            sip: e.sip,
            msrp: e.msrp,
            serves: Vec::new(),
        });
    }
    // Members in address order (the harness numbers them that way), unseen ones last.
    member_order.sort_by_key(|u| (members[u].2.is_none(), members[u].2, u.clone()));
    let mut taken: BTreeSet<String> = ["client-a", "pf-a", "x"].map(String::from).into();
    taken.extend(pf_b.iter().map(|p| p.name.clone()));
    let mut member_list = Vec::new();
    for uri in &member_order {
        let (raw, pfb_addr, a) = members[uri].clone();
        let mut name = member_name(&strip_uri(&raw));
        if taken.contains(&name) {
            let base = name.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
        }
        taken.insert(name.clone());
        let e = endpoint(&name, a, &mut unseen);
        let server = pfb_addr.and_then(|pa| pfb_addrs.iter().position(|p| *p == pa));
        match server {
            Some(k) => pf_b[k].serves.push(name.clone()),
            None => {
                // Never invited (ad hoc list): served by a placeholder pf-b.
                if !pf_b.iter().any(|p| p.name == "pf-b-unseen") {
                    let e = endpoint("pf-b-unseen", None, &mut unseen);
                    pf_b.push(PfB {
                        name: "pf-b-unseen".into(),
                        sip: e.sip,
                        msrp: e.msrp,
                        serves: Vec::new(),
                    });
                }
                if let Some(p) = pf_b.iter_mut().find(|p| p.name == "pf-b-unseen") {
                    p.serves.push(name.clone());
                }
            }
        }
        member_list.push(Member {
            name,
            uri: strip_uri(&raw),
            sip: e.sip,
            msrp: e.msrp,
        });
    }
    if member_list.is_empty() {
        // A group has members: judge the missing fan-out rather than an empty group.
        notes.push(
            "no member INVITE in the capture: the group is taken to have one member, \
             `member-unseen`, whom nothing reached (give --map for the real group)"
                .into(),
        );
        let e = endpoint("pf-b-unseen", None, &mut unseen);
        let m = endpoint("member-unseen", None, &mut unseen);
        pf_b.push(PfB {
            name: "pf-b-unseen".into(),
            sip: e.sip,
            msrp: e.msrp,
            serves: vec!["member-unseen".into()],
        });
        member_list.push(Member {
            name: "member-unseen".into(),
            uri: "sip:member-unseen@unknown.invalid".into(),
            sip: m.sip,
            msrp: m.msrp,
        });
    }
    let (group, factory) = match (adhoc, &group_uri) {
        (Some(a), _) => (
            a.to_uri
                .as_deref()
                .map(strip_uri)
                .filter(|t| *t != a.uri)
                .unwrap_or_else(|| "sip:group@unknown.invalid".into()),
            a.uri.clone(),
        ),
        (None, Some(g)) => (g.clone(), "sip:factory@unknown.invalid".into()),
        (None, None) => (
            "sip:group@unknown.invalid".into(),
            "sip:factory@unknown.invalid".into(),
        ),
    };
    for n in &unseen {
        notes.push(format!(
            "{n}: not in the capture (hops between SUT roles are not recorded)"
        ));
    }
    Ok(EntityMap {
        topology: Topology {
            group,
            factory,
            sender: invite1
                .and_then(|i| i.from_uri.clone())
                .unwrap_or_else(|| "sip:sender@unknown.invalid".into()),
            client_a: ep_a,
            pf_a: ep_pfa,
            x: ep_x,
            pf_b,
            members: member_list,
            core: None,
            index: Default::default(),
        },
        source: None,
        unseen,
        notes,
    })
}

// ------------------------------------------------------------------------------------------
// Content

/// Where the context's content and delivery came from, for the report.
#[derive(Debug, Clone, Default)]
pub struct ContentSource {
    /// e.g. `client-a → pf-a (L1)`, or why nothing was found.
    pub sent: String,
    /// One line per member.
    pub delivered: Vec<String>,
}

// ------------------------------------------------------------------------------------------
// Analysis

/// What `analyze` needs besides the capture.
#[derive(Debug, Clone)]
pub struct Options {
    pub variant: Variant,
    /// The roles the SUT plays in the capture; empty judges every role (the self-check).
    pub sut: Vec<Role>,
    /// `--map`: the topology file and its content.
    pub map: Option<(PathBuf, Topology)>,
    /// How long after its trigger a link may open (the run's `--trigger-window-ms`).
    pub trigger_window: Duration,
    /// The discriminating pause the harness inserted in the captured case (0 for in-order).
    pub pause: Duration,
    /// Judge SIP and SDP only: LINK-* and MEDIA-* checks are not observable (the capture's
    /// non-SUT peers, e.g. SIPp, speak no MSRP).
    pub signalling_only: bool,
    /// The PICS choice MEDIA-REPORT follows (`--report-timing`, a profile's `report-timing`).
    pub report_timing: crate::config::ReportTiming,
}

impl Options {
    pub fn new(variant: Variant) -> Options {
        Options {
            variant,
            sut: Vec::new(),
            map: None,
            trigger_window: Duration::from_millis(1000),
            pause: Duration::ZERO,
            signalling_only: false,
            report_timing: crate::config::ReportTiming::default(),
        }
    }
}

/// The result of analysing one capture.
#[derive(Debug, Clone)]
pub struct Report {
    pub capture: PathBuf,
    /// The summary's case object: id, figure, split, verdict, checks with evidence, notes.
    pub outcome: CaseOutcome,
    pub map: EntityMap,
    pub content: ContentSource,
    pub packets: u64,
    pub events: usize,
    /// Reader warnings (skipped or repaired packets).
    pub warnings: Vec<String>,
}

impl Report {
    /// 0 when the case passes, 1 otherwise (as `cpm-harness run`: fail or inconc).
    pub fn exit_code(&self) -> u8 {
        match self.outcome.verdict {
            Verdict::Pass => 0,
            _ => 1,
        }
    }
}

/// Reads and analyses a capture file.
pub fn analyze_file(path: &Path, opts: &Options) -> Result<Report, AnalyzeError> {
    let cap = read_capture_full(path)?;
    let mut r = analyze_events(path, &cap.events, opts).map_err(|e| match e {
        AnalyzeError::NoInvite { path, sip, .. } => AnalyzeError::NoInvite {
            path,
            packets: cap.packets,
            sip,
        },
        e => e,
    })?;
    r.packets = cap.packets;
    r.warnings = cap.warnings;
    Ok(r)
}

/// Analyses events read from `path` (named in errors and the report).
pub fn analyze_events(
    path: &Path,
    events: &[(Duration, WireEvent)],
    opts: &Options,
) -> Result<Report, AnalyzeError> {
    let wire = interpret(events);
    if wire.sip.iter().all(|s| !s.is_request("INVITE")) {
        return Err(AnalyzeError::NoInvite {
            path: path.to_owned(),
            packets: 0,
            sip: wire.sip.len(),
        });
    }
    let map = entity_map(
        path,
        &wire,
        opts.map.as_ref().map(|(p, t)| (p.as_path(), t)),
        &opts.sut,
    )?;
    let mut ctx = CaseContext {
        topology: Arc::new(map.topology.clone()),
        variant: opts.variant.clone(),
        sut: opts.sut.clone(),
        holds: Holds::default(),
        pause: opts.pause,
        trigger_window: opts.trigger_window,
        content_len: 0,
        content_sha256: String::new(),
        pinned: None,
        delivered: BTreeMap::new(),
        report_timing: opts.report_timing,
    };
    let obs = crate::model::resolve(&ctx.topology, &ctx.sut, wire);
    let w = ctx.take_delivery(&obs);
    let content = ContentSource {
        sent: w.sent_from.clone(),
        delivered: w.members.values().map(|(_, l)| l.clone()).collect(),
    };
    let mut checks = run_checks(&ctx, &obs);
    annotate_delivery(&mut checks, &opts.sut, &content);
    if opts.signalling_only {
        for c in checks
            .iter_mut()
            .filter(|c| matches!(c.id.family(), Family::Link | Family::Media))
        {
            c.verdict = Verdict::NotObservable;
            c.findings = vec![Finding::not_observable(FindingKind::SignallingOnly)];
        }
    }
    let verdict = crate::engine::judge_case(&mut checks, &ctx.topology, &opts.sut);
    let split = split_name(&opts.sut);
    let v = opts.variant.id();
    let knobs = v.split_once('/').map(|(_, r)| r).unwrap_or("");
    let mut notes = map.notes.clone();
    notes.extend(obs.notes.iter().cloned());
    let outcome = CaseOutcome {
        id: format!("F{}/{split}/{knobs}/capture", opts.variant.figure),
        figure: opts.variant.figure.n(),
        split,
        ordering: "capture".into(),
        verdict,
        duration_ms: obs.end.as_millis(),
        checks,
        notes,
        setup_error: None,
        records: Vec::new(),
        topology: Some(ctx.topology.clone()),
        observation: None,
        still_open: Vec::new(),
    };
    Ok(Report {
        capture: path.to_owned(),
        outcome,
        map,
        content,
        packets: 0,
        events: events.len(),
        warnings: Vec::new(),
    })
}

/// MEDIA-DELIVERY reads the members' received bytes, which a capture shows as what crossed
/// each member's link: say so in its evidence, and make it not observable when no member link
/// can be in the capture (pf-b and client-b both SUT; a live run reads the SUT's output files).
fn annotate_delivery(checks: &mut [CheckResult], sut: &[Role], src: &ContentSource) {
    let Some(c) = checks.iter_mut().find(|c| c.id == CheckId::MediaDelivery) else {
        return;
    };
    if sut.contains(&Role::PfB) && sut.contains(&Role::ClientB) {
        c.verdict = Verdict::NotObservable;
        c.findings = vec![Finding::not_observable(
            FindingKind::DeliveryHiddenInCapture,
        )];
        return;
    }
    c.findings.push(Finding::new(
        crate::engine::Class::Note,
        FindingKind::DeliveryFromWire {
            sent: src.sent.to_string(),
        },
    ));
}

/// The report as text: the entity map, where the content came from, then one block per check.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let o = &r.outcome;
    let _ = writeln!(
        s,
        "capture {}: {} packets, {} events",
        r.capture.display(),
        r.packets,
        r.events
    );
    match &r.map.source {
        Some(p) => {
            let _ = writeln!(s, "entities from --map {}:", p.display());
        }
        None => {
            let _ = writeln!(s, "entities inferred from the capture:");
        }
    }
    for l in r.map.describe() {
        let _ = writeln!(s, "  {l}");
    }
    let _ = writeln!(
        s,
        "case {} (SUT: {})",
        o.id,
        if o.split == "none" {
            "none, every role judged".to_string()
        } else {
            o.split.clone()
        }
    );
    let _ = writeln!(s, "content sent: {}", r.content.sent);
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    for n in &o.notes {
        let _ = writeln!(s, "note: {n}");
    }
    for c in &o.checks {
        let _ = writeln!(
            s,
            "{:<14} {:<15} [{}]",
            c.verdict.as_str(),
            c.id,
            c.reference
        );
        for e in &c.evidence() {
            let _ = writeln!(s, "    {e}");
        }
    }
    let count = |v: Verdict| o.checks.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        s,
        "verdict: {} ({} checks: {} pass, {} fail, {} inconc, {} not observable, {} error)",
        o.verdict.as_str(),
        o.checks.len(),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Inconc),
        count(Verdict::NotObservable),
        count(Verdict::Error)
    );
    s
}

/// Parses `--sut`: `none` (every role judged) or roles joined by `,` or `+`.
pub fn parse_sut(s: &str) -> Result<Vec<Role>, String> {
    let s = s.trim();
    if s == "none" || s.is_empty() {
        return Ok(Vec::new());
    }
    let roles = Role::parse_list(&s.replace('+', ",")).map_err(|e| format!("--sut {s:?}: {e}"))?;
    if roles.len() == Role::ALL.len() {
        return Err(format!(
            "--sut {s:?}: all five roles leaves nothing the harness played; use `none` to \
             judge every role"
        ));
    }
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_come_from_the_user_part() {
        assert_eq!(member_name("sip:b1@example.com"), "b1");
        assert_eq!(member_name("sip:@example.com"), "member");
        assert_eq!(member_name("tel:+123"), "+123");
    }

    #[test]
    fn sut_lists_parse_and_reject_unknown_roles() {
        assert_eq!(parse_sut("none").unwrap(), Vec::<Role>::new());
        assert_eq!(parse_sut("x+pf-a").unwrap(), vec![Role::PfA, Role::X]);
        assert!(parse_sut("pfa").unwrap_err().contains("unknown role"));
        assert!(parse_sut("client-a,pf-a,x,pf-b,client-b")
            .unwrap_err()
            .contains("none"));
    }

    #[test]
    fn no_invite_is_an_error_naming_the_file() {
        let e = analyze_events(Path::new("empty.pcap"), &[], &Options::new(Variant::new(1)))
            .unwrap_err();
        assert!(
            e.to_string().starts_with("empty.pcap: no SIP INVITE"),
            "{e}"
        );
    }
}
