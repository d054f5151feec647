//! A capture as a ladder diagram (`cpm-harness show`), and the normalized message sequence
//! that `diff` compares.
//!
//! This module owns three things:
//!
//! - **Rows**: what crossed the wire, one row per SIP message (exact retransmissions of a
//!   datagram dropped and counted), per MSRP link opening (`==SYN==>`, from the side that
//!   sent the SYN) and closing (`<==FIN==>`: both sides close at teardown, in either order,
//!   so no side is named), per bodiless binding SEND and its response, and per *group* of
//!   content chunks: all SEND chunks of one Message-ID in one session on one connection are
//!   one row (`SEND ×10 (bytes 1-20209/20209, last $)`: the first chunk's start, the last
//!   chunk's end and flag), and their responses one row per status code (`200 ×10`). SIP
//!   connections (SIP over TCP) are not drawn.
//!
//! - **A canonical order.** Concurrent messages between independent pairs come in a
//!   different order every run (x's INVITEs to two pf-b, three members answering, chunks
//!   relayed while the next ones arrive), so rows are not drawn in capture order. Each row
//!   gets a *causal depth*, one more than the deepest of its causes; the causes are the
//!   relations the protocol fixes, looked up among what the row's sender had received
//!   before it sent the row:
//!   - SIP: the previous message of the same dialog (a dialog reads INVITE, 100, 200, ACK,
//!     BYE, 200); for a B2BUA, the upstream INVITE it relays (same Request-URI preferred);
//!     for a final response to an INVITE, the *first* final response its sender had received
//!     downstream (same Request-URI preferred), if any; for an ACK, the upstream ACK when
//!     its sender waits for upstream ACKs (it sent no ACK before receiving one); for a BYE,
//!     the upstream BYE and the MSRP messages its sender had received from that peer;
//!   - a link opening: every trigger its opener had received on the dialogs with that peer
//!     (the 200 OK and the upstream ACK as INVITE sender, the dialog's ACK as INVITE
//!     receiver), else the first content it had received;
//!   - MSRP: a request follows the link's opening, the previous request of its session in
//!     the same direction, the opener's first request (for the side that accepted) and, for
//!     a relay, the content group with the same Message-ID it had received; a response
//!     follows its request; a closing follows everything its connection carried and the
//!     BYEs between its two ends.
//!
//!   Rows are sorted by (depth, sender column, receiver column, kind, member, time). A cause
//!   an entity waits for in any case (an INVITE before its relay, a 200 *and* an ACK before
//!   an opening) arrives before in every run, so depths do not depend on scheduling, and
//!   symmetric branches (each member's chain) get equal depths: concurrent rows at one depth
//!   are drawn together in chain order, while every causal chain reads top to bottom as in
//!   the figures. One edge depends on timing by nature: x's 200-2 follows the first 200-3
//!   when x sent it after one arrived. Where x answers at once (FIG 1, 3, 7) that does not
//!   happen unless a loaded machine delays x's answer past a member's, and the ladder then
//!   draws what the capture shows (the snapshot tests make members answer 100 ms late).
//!   Rows whose causes are hidden (hops between SUT roles are not captured) start at depth 0.
//!
//! - **Normalization** ([`Normalizer`]): entity addresses become entity names (`pf-a`,
//!   `x:msrp`, `pf-a:sip`), ephemeral ports `eph-N`, and Call-IDs, tags, Via branches, MSRP
//!   session ids, transaction ids and Message-IDs become `call-N`, `tag-N`, `branch-N`,
//!   `sess-N`, `tid-N`, `msg-N`, numbered in order of first appearance in the canonical
//!   order. No time is printed. Two runs of one case therefore draw the same ladder.

use crate::capture::analyze::{entity_map, AnalyzeError, EntityMap};
use crate::capture::read::read_capture_full;
use crate::codec::msrp::{MsrpHead, MsrpUri};
use crate::codec::sdp::Sdp;
use crate::codec::sip::SipMessage;
use crate::model::{interpret, link_between, ConnObs, MsrpObs, Observation, Party};
use crate::topology::{strip_uri, Topology};
use crate::trace::WireEvent;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Width of one entity column.
const COL: usize = 11;

/// How a row's arrow is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Style {
    /// `--INVITE->`
    Sip,
    /// `==SYN==>`: a link opened, by the side the arrow leaves.
    Tcp,
    /// `<==FIN==>`: a link closed (by either side: both close at teardown).
    Closed,
    /// `~~SEND~~>`
    Msrp,
}

/// One row of the ladder (one message, or one group of MSRP chunks or responses).
#[derive(Debug, Clone)]
pub struct Row {
    /// Column indices of sender and receiver.
    pub from: usize,
    pub to: usize,
    pub style: Style,
    /// Drawn on the arrow: `INVITE`, `200`, `SYN`, `SEND ×10`.
    pub label: String,
    /// Normalized annotation right of the diagram.
    pub detail: String,
    /// Identity for `diff`: `x → pf-b1 INVITE [sip:b1@example.com]` (occurrence-numbered
    /// when repeated).
    pub key: String,
    /// Normalized headers and SDP lines (SIP), headers and counts (MSRP), for `diff`.
    pub fields: Vec<(String, String)>,
    /// Causal depth (see the module docs).
    pub depth: u32,
    /// When each message of the row was captured (one for SIP and link rows, one per chunk
    /// or response of an MSRP group): reports find the rows a check's evidence cites by them.
    pub times: Vec<Duration>,
}

/// A capture drawn as a ladder.
#[derive(Debug, Clone)]
pub struct Ladder {
    /// Entity names in chain order (then any address no entity has).
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub map: EntityMap,
    /// Exact repeats of a SIP datagram (retransmissions), not drawn.
    pub retransmissions: usize,
}

// ------------------------------------------------------------------------------------------
// Normalization

/// Replaces entity addresses, ephemeral ports and random identifiers by stable names,
/// numbered per class in order of first use.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    /// IP → the one entity with that IP (`None` when several share it).
    ips: HashMap<IpAddr, Option<String>>,
    /// Ephemeral address → the entity the model attributed it to.
    owners: HashMap<SocketAddr, String>,
    /// Listener address → `name:sip` / `name:msrp`.
    listeners: HashMap<SocketAddr, String>,
    /// Raw identifier → its class (`call`, `tag`, …).
    classes: HashMap<String, &'static str>,
    names: HashMap<(String, &'static str), String>,
    counters: HashMap<&'static str, usize>,
}

impl Normalizer {
    pub fn new(topo: &Topology) -> Normalizer {
        let mut n = Normalizer::default();
        for i in topo.instances() {
            for ip in [i.sip.ip(), i.msrp.ip()] {
                n.ips
                    .entry(ip)
                    .and_modify(|o| {
                        if o.as_deref() != Some(i.name.as_str()) {
                            *o = None
                        }
                    })
                    .or_insert(Some(i.name.clone()));
            }
            n.listeners.insert(i.sip, format!("{}:sip", i.name));
            n.listeners
                .entry(i.msrp)
                .or_insert(format!("{}:msrp", i.name));
        }
        n
    }

    /// Learns whose each ephemeral address of the model is (the model's attribution), so
    /// that entities sharing an IP keep their own names.
    /// (An ephemeral port a kernel gave to two entities in turn names neither.)
    pub fn learn_owners(&mut self, obs: &Observation) {
        let mut seen: HashMap<SocketAddr, Option<String>> = HashMap::new();
        let mut own = |a: SocketAddr, p: &Option<Party>| {
            if let Some(p) = p {
                if !self.listeners.contains_key(&a) {
                    seen.entry(a)
                        .and_modify(|o| {
                            if o.as_deref() != Some(p.name.as_str()) {
                                *o = None
                            }
                        })
                        .or_insert(Some(p.name.clone()));
                }
            }
        };
        for s in &obs.sip {
            own(s.from, &s.sender);
            own(s.to, &s.receiver);
        }
        for c in &obs.conns {
            own(c.opener, &c.opener_party);
        }
        self.owners
            .extend(seen.into_iter().filter_map(|(a, o)| o.map(|n| (a, n))));
    }

    /// Declares `raw` an identifier of `class`.
    pub fn learn(&mut self, raw: &str, class: &'static str) {
        if raw.len() >= 4 {
            self.classes.entry(raw.to_string()).or_insert(class);
        }
    }

    fn name(&mut self, raw: &str, class: &'static str) -> String {
        if let Some(n) = self.names.get(&(raw.to_string(), class)) {
            return n.clone();
        }
        let c = self.counters.entry(class).or_insert(0);
        *c += 1;
        let n = format!("{class}-{c}");
        self.names.insert((raw.to_string(), class), n.clone());
        n
    }

    /// A socket address: `x:msrp`, `pf-a:eph-1`, or as is when no entity has the IP.
    pub fn addr(&mut self, a: SocketAddr) -> String {
        if let Some(l) = self.listeners.get(&a) {
            return l.clone();
        }
        let owner = self
            .owners
            .get(&a)
            .cloned()
            .or_else(|| self.ips.get(&a.ip()).cloned().flatten());
        match owner {
            Some(n) => {
                let e = self.name(&a.to_string(), "eph");
                format!("{n}:{e}")
            }
            None => a.to_string(),
        }
    }

    /// Normalizes free text (a header value, an SDP line).
    pub fn text(&mut self, s: &str) -> String {
        let word = |c: char| c.is_ascii_alphanumeric() || "._~+-".contains(c);
        let chars: Vec<char> = s.chars().collect();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < chars.len() {
            if !word(chars[i]) {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && word(chars[i]) {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            if let Ok(ip) = run.parse::<IpAddr>() {
                // An address, with its port when one follows.
                let mut j = i;
                if j + 1 < chars.len() && chars[j] == ':' && chars[j + 1].is_ascii_digit() {
                    j += 1;
                    let ps = j;
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    let port: String = chars[ps..j].iter().collect();
                    if let Ok(p) = port.parse::<u16>() {
                        out.push_str(&self.addr(SocketAddr::new(ip, p)));
                        i = j;
                        continue;
                    }
                }
                match self.ips.get(&ip) {
                    Some(Some(n)) => out.push_str(n),
                    // Several entities share it: numbered, like other identifiers.
                    Some(None) => {
                        let n = self.name(&run, "ip");
                        out.push_str(&n);
                    }
                    None => out.push_str(&run),
                }
                continue;
            }
            match self.classes.get(&run).copied() {
                Some(class) => {
                    let n = self.name(&run, class);
                    out.push_str(&n);
                }
                None => out.push_str(&run),
            }
        }
        out
    }
}

/// The local part of a Call-ID (`abc@host` → `abc`).
fn call_local(c: &str) -> &str {
    c.split('@').next().unwrap_or(c)
}

fn learn_sip(n: &mut Normalizer, m: &SipMessage, sdp: Option<&Sdp>) {
    if let Some(c) = m.call_id() {
        n.learn(call_local(c.trim()), "call");
    }
    for t in [m.from_tag(), m.to_tag()].into_iter().flatten() {
        n.learn(&t, "tag");
    }
    if let Some(b) = m.via_branch() {
        n.learn(&b, "branch");
    }
    if let Some(sdp) = sdp {
        for md in &sdp.media {
            if let Some(list) = md
                .attribute("path")
                .and_then(|p| MsrpUri::parse_list(p).ok())
            {
                for u in list {
                    if let Some(s) = &u.session_id {
                        n.learn(s, "sess");
                    }
                }
            }
        }
    }
}

fn learn_msrp(n: &mut Normalizer, h: &MsrpHead) {
    n.learn(&h.tid, "tid");
    if let Some(id) = h.message_id() {
        n.learn(id.trim(), "msg");
    }
    for p in [h.to_path(), h.from_path()].into_iter().flatten() {
        for u in p {
            if let Some(s) = &u.session_id {
                n.learn(s, "sess");
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Items before ordering

#[derive(Debug, Clone)]
enum Kind {
    Sip {
        leg: usize,
        msg: Box<SipMessage>,
        /// The model's parse of its SDP body, if it has one.
        sdp: Option<Result<Sdp, String>>,
    },
    Open {
        conn: usize,
    },
    Close {
        conn: usize,
    },
    Msrp {
        conn: usize,
        request: bool,
        /// Content chunks (a group), not a bodiless or other request.
        content: bool,
        /// For a response group: the request item it answers.
        answers: Option<usize>,
        msgs: Vec<MsrpObs>,
        /// The session (To-Path's last session id, else the raw To-Path).
        session: String,
    },
}

#[derive(Debug, Clone)]
struct Item {
    t: Duration,
    from: usize,
    to: usize,
    kind: Kind,
}

#[derive(Debug, Clone, Default)]
struct Leg {
    uac: Option<usize>,
    ruri: Option<String>,
    up: Option<usize>,
    /// The member column the leg serves (by Request-URI), for ordering.
    member: usize,
}

struct Builder {
    columns: Vec<String>,
    col_of_name: HashMap<String, usize>,
    topo: Topology,
}

impl Builder {
    /// The column of `party` (the model's attribution), else of the SIP/IP core, else of the
    /// bare address.
    fn col(&mut self, party: &Option<Party>, a: SocketAddr) -> usize {
        let core = self.topo.core.is_some_and(|c| c.ip() == a.ip());
        let name = party.as_ref().map(|p| p.name.clone()).unwrap_or_else(|| {
            if core {
                "core".to_string()
            } else {
                a.to_string()
            }
        });
        if let Some(&c) = self.col_of_name.get(&name) {
            return c;
        }
        self.columns.push(name.clone());
        self.col_of_name.insert(name, self.columns.len() - 1);
        self.columns.len() - 1
    }
}

impl Ladder {
    /// Reads `path` and draws it; `map` is `--map` (path, topology), else inferred.
    pub fn from_file(
        path: &Path,
        map: Option<&(PathBuf, Topology)>,
    ) -> Result<Ladder, AnalyzeError> {
        let cap = read_capture_full(path)?;
        Ladder::from_events(path, &cap.events, map).map_err(|e| match e {
            AnalyzeError::NoInvite { path, sip, .. } => AnalyzeError::NoInvite {
                path,
                packets: cap.packets,
                sip,
            },
            e => e,
        })
    }

    /// Draws events read from `path` (named in errors).
    pub fn from_events(
        path: &Path,
        events: &[(Duration, WireEvent)],
        map: Option<&(PathBuf, Topology)>,
    ) -> Result<Ladder, AnalyzeError> {
        let wire = interpret(events);
        if !wire.sip.iter().any(|s| s.is_request("INVITE")) {
            return Err(AnalyzeError::NoInvite {
                path: path.to_owned(),
                packets: 0,
                sip: wire.sip.len(),
            });
        }
        let map = entity_map(path, &wire, map.map(|(p, t)| (p.as_path(), t)), &[])?;
        let obs = crate::model::resolve(&map.topology, &[], wire);
        Ok(Ladder::from_observation(&obs, map))
    }

    /// Draws a case's model (attributed over `map`'s topology).
    pub fn from_observation(obs: &Observation, map: EntityMap) -> Ladder {
        build(obs, map)
    }

    /// The diagram: a header naming the entities, then one line per row.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}, {} ({}){}",
            crate::text::plural(self.rows.len(), "row"),
            crate::text::plural_of(self.columns.len(), "entity", "entities"),
            match &self.map.source {
                Some(_) => "from --map",
                None => "inferred from the capture",
            },
            if self.retransmissions > 0 {
                format!("; {} SIP retransmissions not drawn", self.retransmissions)
            } else {
                String::new()
            }
        );
        let unseen: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| self.map.unseen.contains(c))
            .map(String::as_str)
            .collect();
        if !unseen.is_empty() {
            let _ = writeln!(s, "not in the capture: {}", unseen.join(", "));
        }
        let width = COL * self.columns.len();
        let mut head: Vec<char> = vec![' '; width];
        for (i, name) in self.columns.iter().enumerate() {
            let center = COL * i + COL / 2;
            let n: Vec<char> = name.chars().take(COL - 1).collect();
            let start = center.saturating_sub(n.len() / 2);
            for (k, ch) in n.iter().enumerate() {
                if let Some(slot) = head.get_mut(start + k) {
                    *slot = *ch;
                }
            }
        }
        let _ = writeln!(s, "{}", head.iter().collect::<String>().trim_end());
        let _ = writeln!(s, "{}", self.blank().trim_end());
        for r in &self.rows {
            let line = self.arrow(r);
            let _ = writeln!(s, "{}  {}", line, r.detail);
        }
        s
    }

    fn blank(&self) -> String {
        let mut l: Vec<char> = vec![' '; COL * self.columns.len()];
        for i in 0..self.columns.len() {
            l[COL * i + COL / 2] = '|';
        }
        l.into_iter().collect()
    }

    fn arrow(&self, r: &Row) -> String {
        let mut l: Vec<char> = self.blank().chars().collect();
        let (a, b) = (COL * r.from + COL / 2, COL * r.to + COL / 2);
        if a == b {
            return l.into_iter().collect();
        }
        let (lo, hi) = (a.min(b), a.max(b));
        let fill = match r.style {
            Style::Sip => '-',
            Style::Tcp | Style::Closed => '=',
            Style::Msrp => '~',
        };
        for slot in &mut l[lo + 1..hi] {
            *slot = fill;
        }
        if a < b || r.style == Style::Closed {
            l[hi - 1] = '>';
        }
        if a > b || r.style == Style::Closed {
            l[lo + 1] = '<';
        }
        let inner = hi - lo - 1;
        let label: Vec<char> = r.label.chars().collect();
        let label = if label.len() + 2 <= inner {
            label
        } else {
            r.label
                .split(' ')
                .next()
                .unwrap_or("")
                .chars()
                .take(inner.saturating_sub(3))
                .collect()
        };
        // Centered, leaving the arrowhead and at least one fill character.
        let (min, max) = if r.style == Style::Closed {
            (lo + 2, (hi - 2).saturating_sub(label.len()))
        } else if a < b {
            (lo + 2, (hi - 1).saturating_sub(label.len()))
        } else {
            (lo + 2, hi.saturating_sub(label.len() + 1))
        };
        let start = (lo + 1 + (inner - label.len()) / 2).clamp(min, max.max(min));
        for (k, ch) in label.iter().enumerate() {
            l[start + k] = *ch;
        }
        l.into_iter().collect()
    }
}

fn build(obs: &Observation, map: EntityMap) -> Ladder {
    let topo = map.topology.clone();
    let mut b = Builder {
        columns: Vec::new(),
        col_of_name: HashMap::new(),
        topo: topo.clone(),
    };
    for i in topo.instances() {
        b.columns.push(i.name.clone());
        let n = b.columns.len() - 1;
        b.col_of_name.insert(i.name, n);
    }
    let member_col = |ruri: &str, b: &Builder| -> usize {
        topo.member_by_uri(ruri)
            .and_then(|m| b.col_of_name.get(&m.name).copied())
            .unwrap_or(0)
    };
    let mut norm = Normalizer::new(&topo);
    norm.learn_owners(obs);
    let mut items: Vec<Item> = Vec::new();
    let mut legs: Vec<Leg> = Vec::new();
    let mut leg_of: HashMap<(String, usize, usize), usize> = HashMap::new();
    let mut sess_leg: HashMap<String, usize> = HashMap::new();
    let mut retransmissions = 0;

    // SIP.
    let mut seen: BTreeSet<(SocketAddr, SocketAddr, Vec<u8>)> = BTreeSet::new();
    for s in &obs.sip {
        let Some(msg) = s.msg.clone() else { continue };
        let (t, from, to) = (s.t, s.from, s.to);
        if !seen.insert((from, to, msg.raw.to_vec())) {
            retransmissions += 1;
            continue;
        }
        let sdp: Option<Result<Sdp, String>> = s
            .sdp
            .as_ref()
            .map(|d| d.sdp.clone().map_err(|e| e.to_string()));
        let parsed = sdp.as_ref().and_then(|r| r.as_ref().ok());
        learn_sip(&mut norm, &msg, parsed);
        let (fc, tc) = (b.col(&s.sender, from), b.col(&s.receiver, to));
        let call = msg.call_id().unwrap_or_default().trim().to_string();
        let key = (call, fc.min(tc), fc.max(tc));
        let li = *leg_of.entry(key).or_insert_with(|| {
            legs.push(Leg::default());
            legs.len() - 1
        });
        let is_invite = msg.method().map(|m| m.as_str()) == Some("INVITE");
        if is_invite && msg.to_tag().is_none() && legs[li].uac.is_none() {
            let ruri = strip_uri(msg.request_uri().unwrap_or_default());
            legs[li].member = member_col(&ruri, &b);
            legs[li].uac = Some(fc);
            legs[li].ruri = Some(ruri);
        }
        if let Some(sdp) = parsed {
            for md in &sdp.media {
                for u in md
                    .attribute("path")
                    .and_then(|p| MsrpUri::parse_list(p).ok())
                    .unwrap_or_default()
                {
                    if let Some(sid) = u.session_id {
                        sess_leg.entry(sid).or_insert(li);
                    }
                }
            }
        }
        items.push(Item {
            t,
            from: fc,
            to: tc,
            kind: Kind::Sip {
                sdp: sdp.clone(),
                leg: li,
                msg: Box::new(msg),
            },
        });
    }

    // MSRP links: every connection that carried no SIP (one sent to a SIP port by mistake
    // included).
    let conns = &obs.conns;
    for (ci, c) in conns.iter().enumerate() {
        if c.carried_sip {
            continue;
        }
        let (oc, tc) = (
            b.col(&c.opener_party, c.opener),
            b.col(&c.target_party, c.target),
        );
        if c.open_seen {
            items.push(Item {
                t: c.opened_at,
                from: oc,
                to: tc,
                kind: Kind::Open { conn: ci },
            });
        }
        // Requests first (per direction), then responses grouped by what they answer.
        let parsed: Vec<&Vec<MsrpObs>> = c.dirs.iter().map(|d| &d.msgs).collect();
        let mut req_item: [HashMap<String, usize>; 2] = [HashMap::new(), HashMap::new()];
        for (d, msgs) in parsed.iter().enumerate() {
            let (fc, tcc) = if d == 0 { (oc, tc) } else { (tc, oc) };
            let mut groups: HashMap<(String, String), usize> = HashMap::new();
            for m in msgs.iter().filter(|m| m.head.method().is_some()) {
                learn_msrp(&mut norm, &m.head);
                let session = session_of(&m.head);
                let content = m.is_content();
                let idx = if content {
                    let k = (
                        session.clone(),
                        m.head.message_id().unwrap_or("").to_string(),
                    );
                    match groups.get(&k) {
                        Some(&g) => {
                            if let Kind::Msrp { msgs, .. } = &mut items[g].kind {
                                msgs.push(m.clone());
                            }
                            g
                        }
                        None => {
                            items.push(Item {
                                t: m.t,
                                from: fc,
                                to: tcc,
                                kind: Kind::Msrp {
                                    conn: ci,
                                    request: true,
                                    content: true,
                                    answers: None,
                                    msgs: vec![m.clone()],
                                    session,
                                },
                            });
                            groups.insert(k, items.len() - 1);
                            items.len() - 1
                        }
                    }
                } else {
                    items.push(Item {
                        t: m.t,
                        from: fc,
                        to: tcc,
                        kind: Kind::Msrp {
                            conn: ci,
                            request: true,
                            content: false,
                            answers: None,
                            msgs: vec![m.clone()],
                            session,
                        },
                    });
                    items.len() - 1
                };
                req_item[d].insert(m.head.tid.clone(), idx);
            }
        }
        for (d, msgs) in parsed.iter().enumerate() {
            let (fc, tcc) = if d == 0 { (oc, tc) } else { (tc, oc) };
            let mut groups: HashMap<(Option<usize>, u16), usize> = HashMap::new();
            for m in msgs.iter().filter(|m| m.head.method().is_none()) {
                learn_msrp(&mut norm, &m.head);
                let answers = req_item[1 - d].get(&m.head.tid).copied();
                let code = m.head.code().unwrap_or(0);
                let grouped = answers
                    .is_some_and(|a| matches!(items[a].kind, Kind::Msrp { content: true, .. }));
                if grouped {
                    if let Some(&g) = groups.get(&(answers, code)) {
                        if let Kind::Msrp { msgs, .. } = &mut items[g].kind {
                            msgs.push(m.clone());
                        }
                        continue;
                    }
                }
                items.push(Item {
                    t: m.t,
                    from: fc,
                    to: tcc,
                    kind: Kind::Msrp {
                        conn: ci,
                        request: false,
                        content: grouped,
                        answers,
                        msgs: vec![m.clone()],
                        session: session_of(&m.head),
                    },
                });
                if grouped {
                    groups.insert((answers, code), items.len() - 1);
                }
            }
        }
        // Closed (by either side: both close at teardown, in either order).
        let first_close = c.dirs.iter().filter_map(|x| x.closed_at).min();
        if let Some(t) = first_close {
            items.push(Item {
                t,
                from: oc,
                to: tc,
                kind: Kind::Close { conn: ci },
            });
        }
    }

    let depth = depths(&items, &mut legs);
    // Member of each item, for ordering.
    let member_of = |it: &Item| -> usize {
        match &it.kind {
            Kind::Sip { leg, .. } => legs[*leg].member,
            Kind::Msrp { session, .. } => {
                sess_leg.get(session).map(|&l| legs[l].member).unwrap_or(0)
            }
            Kind::Open { conn } | Kind::Close { conn } => items
                .iter()
                .filter_map(|o| match &o.kind {
                    Kind::Msrp {
                        conn: c, session, ..
                    } if c == conn => sess_leg.get(session).map(|&l| legs[l].member),
                    _ => None,
                })
                .min()
                .unwrap_or(0),
        }
    };
    let rank = |it: &Item| -> u8 {
        match &it.kind {
            Kind::Sip { msg, .. } if msg.is_request() => 0,
            Kind::Sip { .. } => 1,
            Kind::Open { .. } => 2,
            Kind::Msrp { request: true, .. } => 3,
            Kind::Msrp { .. } => 4,
            Kind::Close { .. } => 5,
        }
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| {
        let it = &items[i];
        (depth[i], it.from, it.to, rank(it), member_of(it), it.t, i)
    });

    // Rows, normalized in the canonical order.
    let mut rows = Vec::with_capacity(items.len());
    let mut key_count: HashMap<String, usize> = HashMap::new();
    for &i in &order {
        let it = &items[i];
        let mut row = describe(it, &items, &legs, &sess_leg, conns, &b, &mut norm);
        row.depth = depth[i];
        let n = key_count.entry(row.key.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            row.key = format!("{} #{}", row.key, n);
        }
        rows.push(row);
    }
    Ladder {
        columns: b.columns,
        rows,
        map,
        retransmissions,
    }
}

/// The session an MSRP message names: its To-Path's last session id (else the raw header).
fn session_of(h: &MsrpHead) -> String {
    h.to_path()
        .ok()
        .and_then(|p| p.last().and_then(|u| u.session_id.clone()))
        .unwrap_or_else(|| h.header("To-Path").unwrap_or("").to_string())
}

fn sip_method(it: &Item) -> Option<(&SipMessage, usize)> {
    match &it.kind {
        Kind::Sip { msg, leg, .. } => Some((msg, *leg)),
        _ => None,
    }
}

fn is_final_invite(m: &SipMessage) -> bool {
    m.code().is_some_and(|c| c >= 200) && m.cseq().is_some_and(|(_, x)| x.as_str() == "INVITE")
}

fn is_2xx_invite(m: &SipMessage) -> bool {
    m.code().is_some_and(|c| (200..300).contains(&c))
        && m.cseq().is_some_and(|(_, x)| x.as_str() == "INVITE")
}

fn is_req(m: &SipMessage, method: &str) -> bool {
    m.method().is_some_and(|x| x.as_str() == method)
}

/// Causal depth of every item (see the module docs).
fn depths(items: &[Item], legs: &mut [Leg]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].t, i));
    let pos: Vec<usize> = {
        let mut p = vec![0; items.len()];
        for (k, &i) in order.iter().enumerate() {
            p[i] = k;
        }
        p
    };
    // Whether an entity waited for an upstream ACK before ACKing downstream.
    let mut first_ack_sent: HashMap<usize, usize> = HashMap::new();
    let mut first_ack_recv: HashMap<usize, usize> = HashMap::new();
    for &i in &order {
        if let Some((m, _)) = sip_method(&items[i]) {
            if is_req(m, "ACK") {
                first_ack_sent.entry(items[i].from).or_insert(pos[i]);
                first_ack_recv.entry(items[i].to).or_insert(pos[i]);
            }
        }
    }
    let waits = |e: usize| match (first_ack_recv.get(&e), first_ack_sent.get(&e)) {
        (Some(r), Some(s)) => r < s,
        _ => false,
    };
    let mut depth = vec![0u32; items.len()];
    let mut last_of_leg: HashMap<usize, usize> = HashMap::new();
    let mut last_req_of_session: HashMap<(usize, usize, String), usize> = HashMap::new();
    let mut first_req_recv_on_conn: HashMap<(usize, usize), usize> = HashMap::new();
    let mut open_of_conn: HashMap<usize, usize> = HashMap::new();
    for (k, &i) in order.iter().enumerate() {
        let it = &items[i];
        let before = &order[..k];
        let recv = |pred: &dyn Fn(&Item) -> bool| -> Vec<usize> {
            before
                .iter()
                .copied()
                .filter(|&j| items[j].to == it.from && pred(&items[j]))
                .collect()
        };
        let mut causes: Vec<usize> = Vec::new();
        match &it.kind {
            Kind::Sip { leg, msg, .. } => {
                let leg = *leg;
                if let Some(&p) = last_of_leg.get(&leg) {
                    causes.push(p);
                }
                let ruri = legs[leg].ruri.clone();
                if is_req(msg, "INVITE") && msg.to_tag().is_none() {
                    let ups = recv(&|o: &Item| {
                        sip_method(o).is_some_and(|(m, l)| {
                            is_req(m, "INVITE") && m.to_tag().is_none() && l != leg
                        })
                    });
                    let same = ups.iter().rev().find(|&&j| {
                        sip_method(&items[j]).is_some_and(|(_, l)| legs[l].ruri == ruri)
                    });
                    if let Some(&u) = same.or(ups.last()) {
                        causes.push(u);
                        if let Some((_, ul)) = sip_method(&items[u]) {
                            legs[leg].up = Some(ul);
                        }
                    }
                } else if is_final_invite(msg) {
                    let downs = recv(&|o: &Item| {
                        sip_method(o).is_some_and(|(m, l)| {
                            is_final_invite(m) && l != leg && legs[l].uac == Some(it.from)
                        })
                    });
                    let same = downs.iter().find(|&&j| {
                        sip_method(&items[j]).is_some_and(|(_, l)| legs[l].ruri == ruri)
                    });
                    if let Some(&d) = same.or(downs.first()) {
                        causes.push(d);
                    }
                } else if is_req(msg, "ACK") && waits(it.from) {
                    if let Some(up) = legs[leg].up {
                        let acks = recv(&|o: &Item| {
                            sip_method(o).is_some_and(|(m, l)| is_req(m, "ACK") && l == up)
                        });
                        causes.extend(acks.last());
                    }
                } else if is_req(msg, "BYE") {
                    let up = legs[leg].up;
                    let byes = recv(&|o: &Item| {
                        sip_method(o).is_some_and(|(m, l)| {
                            is_req(m, "BYE") && l != leg && (up.is_none() || Some(l) == up)
                        })
                    });
                    causes.extend(byes.last());
                    let peer = it.to;
                    causes.extend(recv(&|o: &Item| {
                        o.from == peer && matches!(o.kind, Kind::Msrp { .. })
                    }));
                }
                last_of_leg.insert(leg, i);
            }
            Kind::Open { conn } => {
                open_of_conn.insert(*conn, i);
                let (e, p) = (it.from, it.to);
                let mut trig = Vec::new();
                for (li, l) in legs.iter().enumerate() {
                    let between = before.iter().any(|&j| {
                        sip_method(&items[j]).is_some_and(|(_, lj)| lj == li)
                            && ((items[j].from == e && items[j].to == p)
                                || (items[j].from == p && items[j].to == e))
                    });
                    if !between {
                        continue;
                    }
                    if l.uac == Some(e) {
                        trig.extend(recv(&|o: &Item| {
                            sip_method(o).is_some_and(|(m, lj)| lj == li && is_2xx_invite(m))
                        }));
                        if let Some(up) = l.up {
                            trig.extend(recv(&|o: &Item| {
                                sip_method(o).is_some_and(|(m, lj)| lj == up && is_req(m, "ACK"))
                            }));
                        }
                    } else {
                        trig.extend(recv(&|o: &Item| {
                            sip_method(o).is_some_and(|(m, lj)| lj == li && is_req(m, "ACK"))
                        }));
                    }
                }
                if trig.is_empty() {
                    let content = recv(&|o: &Item| {
                        matches!(
                            o.kind,
                            Kind::Msrp {
                                request: true,
                                content: true,
                                ..
                            }
                        )
                    });
                    trig.extend(content.first());
                }
                if trig.is_empty() {
                    trig.extend(recv(&|o: &Item| matches!(o.kind, Kind::Sip { .. })).last());
                }
                causes.extend(trig);
            }
            Kind::Msrp {
                conn,
                request,
                content,
                answers,
                msgs,
                session,
            } => {
                if let Some(&o) = open_of_conn.get(conn) {
                    causes.push(o);
                }
                if *request {
                    let key = (*conn, it.from, session.clone());
                    if let Some(&p) = last_req_of_session.get(&key) {
                        causes.push(p);
                    }
                    last_req_of_session.insert(key, i);
                    if let Some(&f) = first_req_recv_on_conn.get(&(*conn, it.from)) {
                        causes.push(f);
                    }
                    first_req_recv_on_conn.entry((*conn, it.to)).or_insert(i);
                    if *content {
                        let id = msgs
                            .first()
                            .and_then(|m| m.head.message_id())
                            .unwrap_or("")
                            .to_string();
                        let relayed = recv(&|o: &Item| match &o.kind {
                            Kind::Msrp {
                                request: true,
                                content: true,
                                msgs,
                                ..
                            } => msgs.first().and_then(|m| m.head.message_id()) == Some(&id),
                            _ => false,
                        });
                        causes.extend(relayed.first());
                    }
                } else if let Some(a) = answers {
                    causes.push(*a);
                }
            }
            // Later, once everything else has its depth.
            Kind::Close { .. } => continue,
        }
        // A cause is always earlier in time; anything else is ignored.
        depth[i] = causes
            .iter()
            .filter(|&&c| pos[c] < k)
            .map(|&c| depth[c] + 1)
            .max()
            .unwrap_or(0);
    }
    // A closing follows everything its connection carried and the BYEs between its ends,
    // whenever the capture shows it (either side may close first).
    for (i, it) in items.iter().enumerate() {
        let Kind::Close { conn } = &it.kind else {
            continue;
        };
        let (e, p) = (it.from, it.to);
        depth[i] = items
            .iter()
            .enumerate()
            .filter(|(_, o)| match &o.kind {
                Kind::Msrp { conn: c, .. } | Kind::Open { conn: c } => c == conn,
                Kind::Sip { msg, .. } => {
                    ((o.from == e && o.to == p) || (o.from == p && o.to == e)) && is_req(msg, "BYE")
                }
                Kind::Close { .. } => false,
            })
            .map(|(j, _)| depth[j] + 1)
            .max()
            .unwrap_or(0);
    }
    depth
}

/// A row's arrow, annotation, diff identity and fields, normalized.
fn describe(
    it: &Item,
    items: &[Item],
    legs: &[Leg],
    sess_leg: &HashMap<String, usize>,
    conns: &[ConnObs],
    b: &Builder,
    norm: &mut Normalizer,
) -> Row {
    let (fname, tname) = (b.columns[it.from].clone(), b.columns[it.to].clone());
    let mut fields: Vec<(String, String)> = Vec::new();
    let qualifier = |leg: Option<usize>| -> String {
        leg.and_then(|l| legs[l].ruri.clone())
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default()
    };
    let (style, label, detail, what, q) = match &it.kind {
        Kind::Sip { leg, msg, sdp } => {
            let call = msg
                .call_id()
                .map(|c| norm.text(call_local(c.trim())))
                .unwrap_or_else(|| "no Call-ID".into());
            let (label, mut detail, what) = match &msg.start {
                crate::codec::sip::StartLine::Request { method, uri } => {
                    let m = method.as_str().to_string();
                    let mut d = format!("{m} {}", norm.text(uri));
                    if let Some(b) = msg.via_branch() {
                        let _ = write!(d, " {call} {}", norm.text(&b));
                    } else {
                        let _ = write!(d, " {call}");
                    }
                    (m.clone(), d, m)
                }
                crate::codec::sip::StartLine::Response { code, reason } => {
                    let cm = msg
                        .cseq()
                        .map(|(_, m)| m.as_str().to_string())
                        .unwrap_or_default();
                    (
                        code.to_string(),
                        format!("{code} {reason} ({cm}) {call}"),
                        format!("{code} ({cm})"),
                    )
                }
            };
            if is_req(msg, "INVITE") {
                if let Some(t) = msg.from_tag() {
                    let _ = write!(detail, " from {}", norm.text(&t));
                }
            } else if is_2xx_invite(msg) {
                if let Some(t) = msg.to_tag() {
                    let _ = write!(detail, " to {}", norm.text(&t));
                }
            }
            if let Some(sdp) = sdp {
                let _ = write!(detail, " · sdp {}", sdp_summary(sdp, norm));
            }
            // Fields for diff.
            fields.push(("start-line".into(), norm.text(&msg.summary())));
            let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut names: Vec<String> = Vec::new();
            for (n, v) in &msg.headers {
                if n.eq_ignore_ascii_case("Content-Length") {
                    continue;
                }
                let v = norm.text(v.trim());
                if !by_name.contains_key(n) {
                    names.push(n.clone());
                }
                by_name.entry(n.clone()).or_default().push(v);
            }
            for n in names {
                let v = by_name.remove(&n).unwrap_or_default().join(" | ");
                fields.push((n, v));
            }
            if let Some(sdp) = sdp {
                let own = b.topo.instance(&fname).map(|i| i.msrp.port());
                fields.extend(sdp_fields(sdp, own, &fname, norm));
            }
            if let Ok(Some(list)) = msg.resource_list() {
                fields.push((
                    "resource-list".into(),
                    list.iter()
                        .map(|u| norm.text(u))
                        .collect::<Vec<_>>()
                        .join(" "),
                ));
            }
            (Style::Sip, label, detail, what, qualifier(Some(*leg)))
        }
        Kind::Open { conn } => {
            let c = &conns[*conn];
            let link = link_name(b, it.from, it.to);
            let detail = format!(
                "[{link} opened by {fname}] {} → {}",
                norm.addr(c.opener),
                norm.addr(c.target)
            );
            let leg = first_session_leg(items, *conn, sess_leg);
            (
                Style::Tcp,
                "SYN".to_string(),
                detail,
                "SYN".to_string(),
                qualifier(leg),
            )
        }
        Kind::Close { conn } => {
            let link = link_name(b, it.from, it.to);
            let leg = first_session_leg(items, *conn, sess_leg);
            (
                Style::Closed,
                "FIN".to_string(),
                format!("[{link} closed]"),
                "FIN".to_string(),
                qualifier(leg),
            )
        }
        Kind::Msrp {
            request,
            content,
            msgs,
            session,
            ..
        } => {
            let first = &msgs[0];
            let last = &msgs[msgs.len() - 1];
            let n = msgs.len();
            let leg = sess_leg.get(session).copied();
            let word = match first.head.method() {
                Some(m) => m.to_string(),
                None => first.head.code().unwrap_or(0).to_string(),
            };
            let label = if n > 1 {
                format!("{word} ×{n}")
            } else {
                word.clone()
            };
            let to_sess = first
                .head
                .to_path()
                .ok()
                .and_then(|p| p.last().and_then(|u| u.session_id.clone()))
                .map(|s| norm.text(&s))
                .unwrap_or_else(|| "?".into());
            let (detail, what) = if *request && *content {
                let fr = first.head.byte_range().and_then(|r| r.ok());
                let lr = last.head.byte_range().and_then(|r| r.ok());
                let range = match (fr, lr) {
                    (Some(f), Some(l)) => format!(
                        "bytes {}-{}/{}",
                        f.start,
                        l.start.saturating_sub(1) + last.body_len,
                        l.total.map(|t| t.to_string()).unwrap_or_else(|| "*".into())
                    ),
                    _ => "no Byte-Range".into(),
                };
                let flag = last.flag.map(|f| f.as_char()).unwrap_or('?');
                let msg = first
                    .head
                    .message_id()
                    .map(|m| norm.text(m.trim()))
                    .unwrap_or_else(|| "no Message-ID".into());
                let tids = if n > 1 {
                    format!(
                        "{}…{}",
                        norm.text(&first.head.tid),
                        norm.text(&last.head.tid)
                    )
                } else {
                    norm.text(&first.head.tid)
                };
                (
                    format!(
                        "SEND{} ({range}, last {flag}) {msg} {tids} to {to_sess}",
                        if n > 1 {
                            format!(" ×{n}")
                        } else {
                            String::new()
                        }
                    ),
                    "SEND (content)".to_string(),
                )
            } else if *request {
                let bind = !first.head.has_body || first.body_len == 0;
                let tid = norm.text(&first.head.tid);
                if bind && first.head.method() == Some("SEND") {
                    (
                        format!("SEND (bind) {tid} to {to_sess}"),
                        "SEND (bind)".to_string(),
                    )
                } else if first.head.method() == Some("REPORT") {
                    // What a REPORT reports, on the arrow's line: the range and the status.
                    let range = first.head.header("Byte-Range").unwrap_or("no Byte-Range");
                    let status = first.head.header("Status").unwrap_or("no Status");
                    (
                        format!(
                            "{label} (bytes {}, {}) {tid} to {to_sess}",
                            range.trim(),
                            status.trim()
                        ),
                        "REPORT".to_string(),
                    )
                } else {
                    (format!("{word} {tid} to {to_sess}"), word.clone())
                }
            } else {
                let comment = match &first.head.start {
                    crate::codec::msrp::StartLine::Response {
                        comment: Some(c), ..
                    } => format!(" {c}"),
                    _ => String::new(),
                };
                let tids = if n > 1 {
                    format!(
                        " ×{n} {}…{}",
                        norm.text(&first.head.tid),
                        norm.text(&last.head.tid)
                    )
                } else {
                    format!(" {}", norm.text(&first.head.tid))
                };
                (
                    format!("{word}{comment}{tids} to {to_sess}"),
                    format!(
                        "{word} to SEND ({})",
                        if *content { "content" } else { "other" }
                    ),
                )
            };
            // Fields: the first message's headers (Byte-Range summarised), count, flag.
            fields.push(("count".into(), n.to_string()));
            for (name, v) in &first.head.headers {
                if name.eq_ignore_ascii_case("Byte-Range") && *content {
                    continue;
                }
                fields.push((name.clone(), norm.text(v.trim())));
            }
            if *request && *content {
                let ranges: Vec<String> = msgs
                    .iter()
                    .filter_map(|m| m.head.header("Byte-Range").map(str::to_string))
                    .collect();
                fields.push((
                    "Byte-Range".into(),
                    format!(
                        "{} … {}",
                        ranges.first().cloned().unwrap_or_default(),
                        ranges.last().cloned().unwrap_or_default()
                    ),
                ));
                fields.push((
                    "last flag".into(),
                    last.flag
                        .map(|f| f.as_char().to_string())
                        .unwrap_or_else(|| "(cut off)".into()),
                ));
                let body: u64 = msgs.iter().map(|m| m.body_len).sum();
                fields.push(("body bytes".into(), body.to_string()));
            } else if let Some(br) = first.head.header("Byte-Range") {
                fields.push(("Byte-Range".into(), br.to_string()));
            }
            (Style::Msrp, label, detail, what, qualifier(leg))
        }
    };
    Row {
        from: it.from,
        to: it.to,
        style,
        label,
        detail,
        key: if style == Style::Closed {
            format!("{fname} ↔ {tname} {what}{q}")
        } else {
            format!("{fname} → {tname} {what}{q}")
        },
        fields,
        depth: 0,
        times: match &it.kind {
            Kind::Msrp { msgs, .. } => msgs.iter().map(|m| m.t).collect(),
            _ => vec![it.t],
        },
    }
}

fn link_name(b: &Builder, a: usize, c: usize) -> String {
    let role = |i: usize| b.topo.instance(&b.columns[i]).map(|x| x.role);
    match (role(a), role(c)) {
        (Some(x), Some(y)) => link_between(x, y)
            .map(|l| format!("{l:?}"))
            .unwrap_or_else(|| "link".into()),
        _ => "link".into(),
    }
}

fn first_session_leg(
    items: &[Item],
    conn: usize,
    sess_leg: &HashMap<String, usize>,
) -> Option<usize> {
    items
        .iter()
        .filter_map(|o| match &o.kind {
            Kind::Msrp {
                conn: c, session, ..
            } if *c == conn => sess_leg.get(session).copied(),
            _ => None,
        })
        .min()
}

/// `setup:actpass path:pf-a:msrp/sess-1` — what decides the link, normalized.
fn sdp_summary(sdp: &Result<Sdp, String>, norm: &mut Normalizer) -> String {
    let Ok(sdp) = sdp else {
        return "(unparseable)".into();
    };
    let Some(m) = sdp.media.iter().find(|m| m.media == "message") else {
        return "(no m=message)".into();
    };
    let mut parts = Vec::new();
    if let Some(s) = m.attribute("setup").or_else(|| sdp.attribute("setup")) {
        parts.push(format!("setup:{}", s.trim()));
    }
    if let Some(p) = m.attribute("path") {
        parts.push(format!("path:{}", norm.text(p.trim())));
    }
    if parts.is_empty() {
        "(no setup, no path)".into()
    } else {
        parts.join(" ")
    }
}

/// Every SDP line but `v= o= s= t=`, normalized, keyed `sdp c=`, `sdp m=`, `sdp a=<name>`.
/// An m= port equal to the sender's MSRP listener port reads `<sender>:msrp`.
fn sdp_fields(
    sdp: &Result<Sdp, String>,
    own_port: Option<u16>,
    sender: &str,
    norm: &mut Normalizer,
) -> Vec<(String, String)> {
    let sdp = match sdp {
        Ok(s) => s,
        Err(e) => return vec![("sdp".into(), format!("unparseable: {e}"))],
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |k: String, v: String| match out.iter_mut().find(|(n, _)| *n == k) {
        Some((_, old)) => {
            old.push_str(" | ");
            old.push_str(&v);
        }
        None => out.push((k, v)),
    };
    if let Some(c) = &sdp.connection {
        push(
            "sdp c=".into(),
            norm.text(&format!("{} {} {}", c.net_type, c.addr_type, c.address)),
        );
    }
    for (n, v) in &sdp.attributes {
        push(
            format!("sdp a={n}"),
            norm.text(v.as_deref().unwrap_or("(flag)")),
        );
    }
    for m in &sdp.media {
        push(
            "sdp m=".into(),
            format!(
                "{} {} {} {}",
                m.media,
                if Some(m.port) == own_port {
                    format!("{sender}:msrp")
                } else {
                    m.port.to_string()
                },
                m.proto,
                m.formats.join(" ")
            ),
        );
        if let Some(c) = &m.connection {
            push(
                "sdp c=".into(),
                norm.text(&format!("{} {} {}", c.net_type, c.addr_type, c.address)),
            );
        }
        for (n, v) in &m.attributes {
            push(
                format!("sdp a={n}"),
                norm.text(v.as_deref().unwrap_or("(flag)")),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizer_names_addresses_ports_and_identifiers_in_order_of_use() {
        let topo = Topology::generate(7, 3, 2, 5060, 2855);
        let mut n = Normalizer::new(&topo);
        n.learn("XABi9XFnsXIdQFb9MX23", "call");
        n.learn("z9hG4bKnYhgVdkzm9FfBxdF", "branch");
        n.learn("pX80gH0K3njbtg6Jfkg9QEYbeSvyp3UL", "sess");
        n.learn("UTf871yXFYx2tS4NqTJe5FH6LN3cY83B", "sess");
        assert_eq!(
            n.text("SIP/2.0/UDP 127.7.0.11:5060;branch=z9hG4bKnYhgVdkzm9FfBxdF"),
            "SIP/2.0/UDP client-a:sip;branch=branch-1"
        );
        assert_eq!(n.text("XABi9XFnsXIdQFb9MX23@127.7.0.11"), "call-1@client-a");
        // Numbered by first use, not by learning order.
        assert_eq!(
            n.text("msrp://127.7.0.12:2855/UTf871yXFYx2tS4NqTJe5FH6LN3cY83B;tcp"),
            "msrp://pf-a:msrp/sess-1;tcp"
        );
        assert_eq!(n.text("pX80gH0K3njbtg6Jfkg9QEYbeSvyp3UL"), "sess-2");
        assert_eq!(n.addr("127.7.0.13:40001".parse().unwrap()), "x:eph-1");
        assert_eq!(n.addr("127.7.0.13:40001".parse().unwrap()), "x:eph-1");
        assert_eq!(n.text("c=IN IP4 127.7.0.13"), "c=IN IP4 x");
        // Unknown addresses and short tokens stay as they are.
        assert_eq!(n.text("10.1.2.3:5060 70"), "10.1.2.3:5060 70");
    }
}
