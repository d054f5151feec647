//! The variant knobs: one point of the option space a case runs (figure, triggers, reuse,
//! setup mode, group kind, transport, chunking). Plain data, deserialised from YAML with unknown
//! keys rejected, validated once when loaded; the entity state machines read it, never copy it.

use crate::codec::sip::Transport;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// The patent's seven figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(into = "u8")]
pub struct Figure(u8);

/// Read as a number 1..7, rejected inside the YAML parser's visit of the number itself, so
/// that the error names the number's own line and column (`figures: [1, 2, 8]` points at the
/// 8; a `try_from` conversion after the fact would point at the list).
impl<'de> Deserialize<'de> for Figure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Figure, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Figure;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a figure number 1..7")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Figure, E> {
                u8::try_from(n)
                    .map_err(|_| format!("figure must be 1..7, got {n}"))
                    .and_then(Figure::try_from)
                    .map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Figure, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("figure must be 1..7, got {n}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl TryFrom<u8> for Figure {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        if (1..=7).contains(&n) {
            Ok(Figure(n))
        } else {
            Err(format!("figure must be 1..7, got {n}"))
        }
    }
}

impl From<Figure> for u8 {
    fn from(f: Figure) -> u8 {
        f.0
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The three solutions of the patent: who opens each MSRP link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solution {
    /// The INVITE sender opens every link, with the peer's parameters from the 200 OK (FIG 1, 2).
    SenderOpens,
    /// The INVITE receiver opens every link, with the parameters from the INVITE (FIG 3, 4).
    ReceiverOpens,
    /// The clients open L1/L4; L2/L3 by the participating functions or by x (FIG 5, 6, 7).
    ClientsOpen,
}

/// When x sends 200-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XAnswer {
    /// On INVITE2, before any member answered (FIG 1, 3, 7).
    AtOnce,
    /// Only after the first 200-3 (FIG 2, 4, 5, 6).
    AfterFirstMember,
}

/// When a middle entity sends its downstream ACK.
/// The CLI's `--ack` spells them `on-200` and `after-ack` (clap `ValueEnum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AckTiming {
    /// At once on the downstream 200 (FIG 5).
    #[serde(rename = "on-200")]
    #[value(name = "on-200")]
    On200,
    /// Only after the upstream ACK arrived (FIG 6; the main text of FIG 1–4).
    #[value(name = "after-ack", alias = "after-upstream-ack")]
    AfterUpstreamAck,
}

/// When a middle entity sends the success REPORT its upstream asked for (RFC 4975 §7.1.2
/// leaves it to the entity): a profile's PICS choice (`report-timing`), which MEDIA-REPORT
/// follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportTiming {
    /// Once the whole message arrived from upstream.
    OnReceipt,
    /// Only once every downstream hop it relayed the message to reported delivery (the
    /// reference SUT).
    #[default]
    AfterDelivery,
}

impl ReportTiming {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportTiming::OnReceipt => "on-receipt",
            ReportTiming::AfterDelivery => "after-delivery",
        }
    }
}

impl Figure {
    pub fn n(self) -> u8 {
        self.0
    }
    pub fn all() -> impl Iterator<Item = Figure> {
        (1..=7).map(Figure)
    }
    pub fn solution(self) -> Solution {
        match self.0 {
            1 | 2 => Solution::SenderOpens,
            3 | 4 => Solution::ReceiverOpens,
            _ => Solution::ClientsOpen,
        }
    }
    pub fn x_answer(self) -> XAnswer {
        match self.0 {
            1 | 3 | 7 => XAnswer::AtOnce,
            _ => XAnswer::AfterFirstMember,
        }
    }
    /// The ACK timing the figure draws (FIG 5: on the 200; otherwise after the upstream ACK,
    /// which the text allows to change in every figure).
    pub fn default_ack(self) -> AckTiming {
        if self.0 == 5 {
            AckTiming::On200
        } else {
            AckTiming::AfterUpstreamAck
        }
    }
}

/// What makes a middle entity open a link it opens as the INVITE sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum Trigger {
    /// The 200 OK from downstream.
    #[serde(rename = "on-200")]
    #[value(name = "on-200")]
    On200,
    /// The ACK from upstream.
    #[serde(rename = "on-ack")]
    #[value(name = "on-ack")]
    OnAck,
    /// The first MSRP SEND from upstream.
    #[serde(rename = "on-send")]
    #[value(name = "on-send")]
    OnSend,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::On200 => "on-200",
            Trigger::OnAck => "on-ack",
            Trigger::OnSend => "on-send",
        }
    }

    /// The trigger a variant id names (`on-200`, `on-ack`, `on-send`).
    pub fn parse(s: &str) -> Option<Trigger> {
        <Trigger as clap::ValueEnum>::from_str(s, false).ok()
    }
}

/// In solution 3, who opens L2 and L3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MiddleOpener {
    /// pf-a opens L2 (as INVITE sender), pf-b opens L3 (as INVITE receiver).
    Pf,
    /// x opens L2 (as INVITE receiver) and L3 (as INVITE sender).
    X,
}

/// How the link opener is agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SetupMode {
    /// RFC 6135 `a=setup` negotiated in SDP: offers say `actpass`, answers `passive` or `active`.
    Sdp,
    /// No `a=setup`; both sides know the opener from configuration.
    Preset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GroupKind {
    /// The group URI is the Request-URI; x expands its membership (OMA CPM).
    Predefined,
    /// A conference-factory URI with an RFC 5366 resource list.
    Adhoc,
}

/// The IP family every entity of a case listens on and writes in its addresses.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum IpFamily {
    /// IPv4: in lab mode one loopback address `127.<net>.x.x` per entity.
    #[default]
    V4,
    /// IPv6: in lab mode every entity on `::1`, told apart by port; `c=IN IP6`, bracketed
    /// hosts in SIP and MSRP URIs (RFC 5118, RFC 4975 §9).
    V6,
}

impl IpFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::V4 => "v4",
            IpFamily::V6 => "v6",
        }
    }

    /// The family of an address.
    pub fn of(ip: std::net::IpAddr) -> IpFamily {
        if ip.is_ipv4() {
            IpFamily::V4
        } else {
            IpFamily::V6
        }
    }
}

/// One point of the option space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Variant {
    pub figure: Figure,
    /// Trigger of the participating functions' links (pf-a and pf-b use the same one).
    #[serde(default = "default_trigger")]
    pub trigger: Trigger,
    /// Trigger of x's links; x may use another than the participating functions.
    #[serde(default)]
    pub x_trigger: Option<Trigger>,
    #[serde(default = "default_middle")]
    pub l23_opener: MiddleOpener,
    /// Overrides the figure's ACK timing.
    #[serde(default)]
    pub ack: Option<AckTiming>,
    #[serde(default)]
    pub reuse: bool,
    #[serde(default = "default_setup")]
    pub setup: SetupMode,
    #[serde(default = "default_group")]
    pub group: GroupKind,
    #[serde(default = "default_transport")]
    pub transport: Transport,
    /// MSRP chunk size in bytes.
    #[serde(default = "default_chunk")]
    pub chunk_size: u64,
    /// The IP family of the case's addresses (`ip: v6`: every entity on IPv6).
    #[serde(default, skip_serializing_if = "is_v4")]
    pub ip: IpFamily,
    /// MSRP over TCP (`msrp:`, `TCP/MSRP`) or over TLS (`msrps:`, `TCP/TLS/MSRP`, RFC 4975
    /// §14, RFC 6135); the link's opener starts both the TCP and the TLS handshake.
    #[serde(default)]
    pub msrp_transport: MsrpTransport,
    /// The figure's rules as a suite file states them (set by the engine's plan); when absent
    /// the built-in table of the seven figures applies. Entities and checks both read the
    /// rules through this variant, so a suite file decides what is expected.
    #[serde(skip)]
    pub rules: Option<FigureRules>,
}

/// How MSRP is carried: plain TCP or TLS over TCP (RFC 4975 §14).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum MsrpTransport {
    #[default]
    Tcp,
    Tls,
}

impl MsrpTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            MsrpTransport::Tcp => "tcp",
            MsrpTransport::Tls => "tls",
        }
    }

    /// The `m=` protocol of an MSRP stream carried this way.
    pub fn proto(self) -> &'static str {
        match self {
            MsrpTransport::Tcp => "TCP/MSRP",
            MsrpTransport::Tls => "TCP/TLS/MSRP",
        }
    }
}

/// What a figure fixes: who opens each link, when x answers, the ACK timing it draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureRules {
    pub solution: Solution,
    /// Openers of L1..L4 under the variant's L2/L3 choice.
    pub openers: [Opener; 4],
    pub x_answer: XAnswer,
    pub default_ack: AckTiming,
}

fn default_trigger() -> Trigger {
    Trigger::OnAck
}
fn default_middle() -> MiddleOpener {
    MiddleOpener::Pf
}
fn default_setup() -> SetupMode {
    SetupMode::Sdp
}
fn default_group() -> GroupKind {
    GroupKind::Predefined
}
fn default_transport() -> Transport {
    Transport::Udp
}
fn default_chunk() -> u64 {
    2048
}
fn is_v4(f: &IpFamily) -> bool {
    *f == IpFamily::V4
}

/// A link of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Link {
    L1,
    L2,
    L3,
    L4,
}

/// Which side of a leg's INVITE opens the leg's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// The INVITE sender (SDP offerer), with the answer's parameters.
    Offerer,
    /// The INVITE receiver (SDP answerer), with the offer's parameters.
    Answerer,
}

impl Variant {
    pub fn new(figure: u8) -> Variant {
        Variant {
            figure: Figure::try_from(figure).expect("figure 1..7"),
            trigger: default_trigger(),
            x_trigger: None,
            l23_opener: default_middle(),
            ack: None,
            reuse: false,
            setup: default_setup(),
            group: default_group(),
            transport: default_transport(),
            chunk_size: default_chunk(),
            ip: IpFamily::V4,
            msrp_transport: MsrpTransport::Tcp,
            rules: None,
        }
    }

    /// The solution (from the suite's rules when set).
    pub fn solution(&self) -> Solution {
        self.rules
            .as_ref()
            .map(|r| r.solution)
            .unwrap_or_else(|| self.figure.solution())
    }

    /// When x answers 200-2 (from the suite's rules when set).
    pub fn x_answer(&self) -> XAnswer {
        self.rules
            .as_ref()
            .map(|r| r.x_answer)
            .unwrap_or_else(|| self.figure.x_answer())
    }

    pub fn x_trigger(&self) -> Trigger {
        self.x_trigger.unwrap_or(self.trigger)
    }

    pub fn ack_timing(&self) -> AckTiming {
        let default = self
            .rules
            .as_ref()
            .map(|r| r.default_ack)
            .unwrap_or_else(|| self.figure.default_ack());
        self.ack.unwrap_or(default)
    }

    /// Who opens `link` in this variant (from the suite's rules when set).
    pub fn opener(&self, link: Link) -> Opener {
        if let Some(r) = &self.rules {
            return r.openers[link as usize];
        }
        match (self.figure.solution(), link) {
            (Solution::SenderOpens, _) => Opener::Offerer,
            (Solution::ReceiverOpens, _) => Opener::Answerer,
            (Solution::ClientsOpen, Link::L1) => Opener::Offerer,
            (Solution::ClientsOpen, Link::L4) => Opener::Answerer,
            (Solution::ClientsOpen, Link::L2) => match self.l23_opener {
                MiddleOpener::Pf => Opener::Offerer,
                MiddleOpener::X => Opener::Answerer,
            },
            (Solution::ClientsOpen, Link::L3) => match self.l23_opener {
                MiddleOpener::Pf => Opener::Answerer,
                MiddleOpener::X => Opener::Offerer,
            },
        }
    }

    /// Checks combinations the knobs cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_size == 0 {
            return Err("chunk-size must be at least 1".into());
        }
        Ok(())
    }

    /// A compact id fragment, e.g. `F2/on-ack/udp/reuse/sdp/predefined`.
    pub fn id(&self) -> String {
        let mut s = format!("F{}/{}", self.figure, self.trigger.as_str());
        if let Some(x) = self.x_trigger {
            s.push_str(&format!("/x-{}", x.as_str()));
        }
        if self.figure.solution() == Solution::ClientsOpen && self.l23_opener == MiddleOpener::X {
            s.push_str("/l23-x");
        }
        if let Some(a) = self.ack {
            s.push_str(match a {
                AckTiming::On200 => "/ack-on-200",
                AckTiming::AfterUpstreamAck => "/ack-after-ack",
            });
        }
        s.push_str(match self.transport {
            Transport::Udp => "/udp",
            Transport::Tcp => "/tcp",
            Transport::Tls => "/tls",
        });
        s.push_str(if self.reuse { "/reuse" } else { "/new" });
        s.push_str(match self.setup {
            SetupMode::Sdp => "/sdp",
            SetupMode::Preset => "/preset",
        });
        s.push_str(match self.group {
            GroupKind::Predefined => "/predefined",
            GroupKind::Adhoc => "/adhoc",
        });
        // Only TLS is named, so the ids of plain-TCP cases stay as they were.
        if self.msrp_transport == MsrpTransport::Tls {
            s.push_str("/msrps");
        }
        if self.ip == IpFamily::V6 {
            s.push_str("/ipv6");
        }
        s
    }
}

impl Variant {
    /// The variant as the `X-Cpm-Variant` test-control header carries it (the reference
    /// SUT's per-call mode): [`Variant::id`], then `/chunk-N` when the chunk size is not the
    /// default. [`Variant::from_id`] reads it back.
    pub fn header_value(&self) -> String {
        let mut s = self.id();
        if self.chunk_size != default_chunk() {
            s.push_str(&format!("/chunk-{}", self.chunk_size));
        }
        s
    }

    /// Parses [`Variant::id`] (or [`Variant::header_value`]): `F2/on-ack[/x-on-200][/l23-x]
    /// [/ack-on-200|/ack-after-ack]/udp|tcp|tls/reuse|new/sdp|preset/predefined|adhoc[/msrps]
    /// [/ipv6][/chunk-N]`.
    /// The figure's rules are the built-in table (`rules: None`).
    pub fn from_id(id: &str) -> Result<Variant, String> {
        let bad = |why: &str| format!("variant id {id:?}: {why}");
        let mut parts = id.trim().split('/');
        let fig = parts
            .next()
            .and_then(|f| f.strip_prefix('F'))
            .and_then(|n| n.parse::<u8>().ok())
            .ok_or_else(|| bad("expected the figure first: `F` and its number, 1 to 7"))?;
        let mut v = Variant::new(Figure::try_from(fig).map_err(|e| bad(&e))?.n());
        v.trigger = parts
            .next()
            .and_then(Trigger::parse)
            .ok_or_else(|| bad("expected the trigger (on-200, on-ack, on-send) second"))?;
        let rest: Vec<&str> = parts.collect();
        let mut i = 0;
        let next = |i: &mut usize| {
            let p = rest.get(*i).copied();
            *i += 1;
            p
        };
        let mut p = next(&mut i);
        if let Some(t) = p
            .and_then(|p| p.strip_prefix("x-"))
            .and_then(Trigger::parse)
        {
            v.x_trigger = Some(t);
            p = next(&mut i);
        }
        if p == Some("l23-x") {
            v.l23_opener = MiddleOpener::X;
            p = next(&mut i);
        }
        match p {
            Some("ack-on-200") => {
                v.ack = Some(AckTiming::On200);
                p = next(&mut i);
            }
            Some("ack-after-ack") => {
                v.ack = Some(AckTiming::AfterUpstreamAck);
                p = next(&mut i);
            }
            _ => {}
        }
        v.transport = match p {
            Some("udp") => Transport::Udp,
            Some("tcp") => Transport::Tcp,
            Some("tls") => Transport::Tls,
            _ => return Err(bad("expected udp, tcp or tls")),
        };
        v.reuse = match next(&mut i) {
            Some("reuse") => true,
            Some("new") => false,
            _ => return Err(bad("expected reuse or new")),
        };
        v.setup = match next(&mut i) {
            Some("sdp") => SetupMode::Sdp,
            Some("preset") => SetupMode::Preset,
            _ => return Err(bad("expected sdp or preset")),
        };
        v.group = match next(&mut i) {
            Some("predefined") => GroupKind::Predefined,
            Some("adhoc") => GroupKind::Adhoc,
            _ => return Err(bad("expected predefined or adhoc")),
        };
        let mut p = next(&mut i);
        if p == Some("msrps") {
            v.msrp_transport = MsrpTransport::Tls;
            p = next(&mut i);
        }
        if p == Some("ipv6") {
            v.ip = IpFamily::V6;
            p = next(&mut i);
        }
        if let Some(p) = p {
            v.chunk_size = p
                .strip_prefix("chunk-")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad(&format!("unexpected {p:?} after the group")))?;
        }
        if let Some(p) = next(&mut i) {
            return Err(bad(&format!("unexpected {p:?} at the end")));
        }
        v.validate().map_err(|e| bad(&e))?;
        Ok(v)
    }
}

/// Loads YAML from `path`, naming `file:line:col` and what was expected on error.
pub fn load_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    parse_yaml(&text, &path.display().to_string())
}

/// Parses YAML text; `origin` names it in errors.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, origin: &str) -> anyhow::Result<T> {
    serde_norway::from_str(text).map_err(|e| match e.location() {
        // The parser's message ends with ` at line L column C`: said once, in front.
        Some(l) => {
            let msg = e.to_string();
            let tail = format!(" at line {} column {}", l.line(), l.column());
            let msg = msg.strip_suffix(&tail).unwrap_or(&msg);
            anyhow::anyhow!("{origin}:{}:{}: {msg}", l.line(), l.column())
        }
        None => anyhow::anyhow!("{origin}: {e}"),
    })
}

impl Link {
    pub fn all() -> [Link; 4] {
        [Link::L1, Link::L2, Link::L3, Link::L4]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openers_follow_the_figures() {
        let v1 = Variant::new(1);
        assert!(Link::all().iter().all(|l| v1.opener(*l) == Opener::Offerer));
        let v3 = Variant::new(3);
        assert!(Link::all()
            .iter()
            .all(|l| v3.opener(*l) == Opener::Answerer));
        let mut v5 = Variant::new(5);
        assert_eq!(v5.opener(Link::L1), Opener::Offerer);
        assert_eq!(v5.opener(Link::L2), Opener::Offerer);
        assert_eq!(v5.opener(Link::L3), Opener::Answerer);
        assert_eq!(v5.opener(Link::L4), Opener::Answerer);
        v5.l23_opener = MiddleOpener::X;
        assert_eq!(v5.opener(Link::L2), Opener::Answerer);
        assert_eq!(v5.opener(Link::L3), Opener::Offerer);
    }

    #[test]
    fn unknown_keys_are_rejected_with_a_location() {
        let err = parse_yaml::<Variant>("figure: 2\ntriger: on-ack\n", "v.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("v.yaml:2:1"), "{msg}");
        assert!(msg.contains("triger"), "{msg}");
    }

    #[test]
    fn yaml_errors_give_the_location_once() {
        let msg = parse_yaml::<Variant>("figure: 2\ntriger: on-ack\n", "v.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("v.yaml:2:1: unknown field `triger`"),
            "{msg}"
        );
        assert!(!msg.contains("at line"), "{msg}");
    }

    #[test]
    fn a_bad_figure_in_a_list_is_pointed_at_itself() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct P {
            figures: Vec<Figure>,
        }
        let msg = parse_yaml::<P>("figures: [1, 2, 8]\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "p.yaml:1:17: figures[2]: figure must be 1..7, got 8");
        let msg = parse_yaml::<P>("figures:\n  - 1\n  - 9\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("p.yaml:3:5: figures[1]: "), "{msg}");
        let msg = parse_yaml::<P>("figures: [-1]\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("figure must be 1..7, got -1"), "{msg}");
        let v: P = parse_yaml("figures: [1, 7]\n", "p.yaml").unwrap();
        assert_eq!(v.figures, [Figure(1), Figure(7)]);
    }

    #[test]
    fn figure_out_of_range_is_rejected() {
        let err = parse_yaml::<Variant>("figure: 9\n", "v.yaml").unwrap_err();
        assert!(err.to_string().contains("figure must be 1..7"), "{err}");
    }

    #[test]
    fn variant_ids_round_trip() {
        let mut v = Variant::new(5);
        assert_eq!(Variant::from_id(&v.header_value()).unwrap(), v);
        v.trigger = Trigger::OnSend;
        v.x_trigger = Some(Trigger::On200);
        v.l23_opener = MiddleOpener::X;
        v.ack = Some(AckTiming::On200);
        v.transport = Transport::Tcp;
        v.reuse = true;
        v.setup = SetupMode::Preset;
        v.group = GroupKind::Adhoc;
        v.chunk_size = 999;
        v.msrp_transport = MsrpTransport::Tls;
        let h = v.header_value();
        assert_eq!(
            h,
            "F5/on-send/x-on-200/l23-x/ack-on-200/tcp/reuse/preset/adhoc/msrps/chunk-999"
        );
        assert_eq!(Variant::from_id(&h).unwrap(), v);
        assert_eq!(Variant::from_id(&v.id()).unwrap().chunk_size, 2048);
        for bad in [
            "",
            "Fx/on-ack/udp/new/sdp/predefined",
            "8/on-ack/udp/new/sdp/predefined",
            "F1/on-ack/udp/new/sdp",
            "F1/on-ack/udp/new/sdp/predefined/x",
        ] {
            assert!(Variant::from_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn figure_timings() {
        assert_eq!(Figure::try_from(1).unwrap().x_answer(), XAnswer::AtOnce);
        assert_eq!(
            Figure::try_from(2).unwrap().x_answer(),
            XAnswer::AfterFirstMember
        );
        assert_eq!(Figure::try_from(7).unwrap().x_answer(), XAnswer::AtOnce);
        assert_eq!(Figure::try_from(5).unwrap().default_ack(), AckTiming::On200);
        assert_eq!(
            Figure::try_from(6).unwrap().default_ack(),
            AckTiming::AfterUpstreamAck
        );
    }
}
