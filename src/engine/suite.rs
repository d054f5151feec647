//! Figure suites as data: one YAML file per figure of the patent (`suites/fig1.yaml` …
//! `fig7.yaml`) states everything figure-specific the engine needs: the solution, x's answer
//! timing, the downstream ACK timing (default and allowed), each MSRP link's opener, the message
//! whose parameters it uses and the triggers allowed, and the figure's steps in order (patent
//! step ids S101–S112, S201–S204, S301–S304; unnumbered messages get ids like `F3-INVITE3`)
//! with their happens-before constraints.
//!
//! This module owns the file format, its validation (every `after` id exists, no cycles, roles,
//! messages and link names valid, links consistent with the steps) and the accessors the engine
//! reads. A vendor can add or change a suite file without touching code. Errors name
//! `file:line:col` where the YAML parser gives it, and otherwise the file, the nearest line found
//! for the step or link, and the step id; unknown keys and names get a did-you-mean.
//!
//! # File format
//!
//! ```yaml
//! figure: 2                      # 1..7
//! solution: 1                    # 1 INVITE sender opens, 2 INVITE receiver opens, 3 clients open
//! title: "…"
//! x-answer: after-first-member   # at-once | after-first-member
//! ack: after-upstream-ack        # default downstream ACK of the middle entities
//! ack-allowed: [after-upstream-ack, on-200]
//! links:
//!   L2: { opener: pf-a, params-from: 200-2, trigger: [on-ack, on-200, on-send], step: S106-L2 }
//!   # solution 3 only: the alternative when x opens L2/L3 (variant knob l23-opener: x)
//!   # L3: { …, if-l23-x: { opener: x, params-from: 200-3, trigger: [...], step: F5-L3-by-x } }
//! steps:
//!   - { id: S101, message: INVITE1, from: client-a, to: pf-a }
//!   - { id: S103-200-2, patent: S103, message: 200-2, from: x, to: pf-a,
//!       after: [S102, S109], carries-params-of: x }
//!   - { id: S106, message: ACK2, from: pf-a, to: x, after: [S103-200-2], upstream-ack: S105 }
//! ```
//!
//! Messages: `INVITEn`, `200-n`, `ACKn`, `BYEn` on leg n (leg n is the SIP hop of link Ln:
//! 1 client-a–pf-a, 2 pf-a–x, 3 x–pf-b, 4 pf-b–client-b), `Ln-open` (a TCP connection for
//! MSRP, or reuse of one) and `SEND` (MSRP content, downstream on a link). `after` lists the
//! steps that must come first whatever the knobs; `upstream-ack` names the upstream ACK an ACK
//! also waits for when the ACK timing is `after-upstream-ack`; `l23: pf|x` marks a step that
//! happens only with that solution-3 opener (references to steps that do not happen in a
//! variant are dropped from `after`).

use crate::config::{
    parse_yaml, AckTiming, Figure, Link, MiddleOpener, Opener, Solution, Trigger, Variant, XAnswer,
};
use crate::suggest::did_you_mean;
use crate::topology::Role;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

// ------------------------------------------------------------------------------------------
// YAML helpers shared by the engine's data files

/// Parses YAML like [`parse_yaml`] (errors name `origin:line:col`) and adds a did-you-mean to
/// serde's "unknown field" / "unknown variant" messages.
pub fn parse_yaml_hinted<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> anyhow::Result<T> {
    parse_yaml(text, origin).map_err(|e| anyhow::anyhow!("{}", hint_unknown(&e.to_string())))
}

/// Reads `path` and parses it with [`parse_yaml_hinted`]; returns the text too, so later
/// validation errors can point at a line.
pub fn load_yaml_hinted<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> anyhow::Result<(T, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let v = parse_yaml_hinted(&text, &path.display().to_string())?;
    Ok((v, text))
}

/// Adds `(did you mean "x"?)` after the offending name of serde's `unknown field `…`` and
/// `unknown variant `…`` messages, using the names serde says it expected.
pub fn hint_unknown(msg: &str) -> String {
    for kind in ["unknown field `", "unknown variant `"] {
        let Some(i) = msg.find(kind) else { continue };
        let rest = &msg[i + kind.len()..];
        let Some(j) = rest.find('`') else { continue };
        let got = &rest[..j];
        let tail = &rest[j + 1..];
        let expected = tail
            .find("expected ")
            .map(|k| &tail[k + "expected ".len()..])
            .unwrap_or("");
        let expected = expected.split(" at line ").next().unwrap_or(expected);
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let hint = did_you_mean(got, &known);
        if hint.is_empty() {
            return msg.to_string();
        }
        let pos = i + kind.len() + j + 1;
        return format!(
            "{} ({}){}",
            &msg[..pos],
            hint.trim_start_matches(", "),
            &msg[pos..]
        );
    }
    msg.to_string()
}

/// `origin:line:col` of the first line holding `key: value` (value as a whole token), or
/// `origin` alone; for errors found after parsing.
pub fn locate(text: &str, origin: &str, key: &str, value: &str) -> String {
    let pat = format!("{key}: {value}");
    for (n, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(p) = line[from..].find(&pat) {
            let at = from + p;
            let before_ok = at == 0 || !is_name_char(line[..at].chars().last().unwrap_or(' '));
            let after = line[at + pat.len()..].chars().next();
            let after_ok = after.is_none_or(|c| !is_name_char(c));
            if before_ok && after_ok {
                return format!("{origin}:{}:{}", n + 1, at + 1);
            }
            from = at + pat.len();
        }
    }
    origin.to_string()
}

/// `origin:line:col` of the first line whose content starts with `key:`.
pub fn locate_key(text: &str, origin: &str, key: &str) -> String {
    let pat = format!("{key}:");
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let t2 = t.trim_start_matches("- ");
        if t.starts_with(&pat) || t2.starts_with(&pat) {
            let col = line.len() - t2.len() + 1;
            return format!("{origin}:{}:{col}", n + 1);
        }
    }
    origin.to_string()
}

/// `AckTiming` as the data files spell it: `on-200` (also `on200`) or `after-upstream-ack`.
/// (`config::AckTiming`'s own serde name for `On200` is `on200`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AckName {
    #[serde(rename = "on-200", alias = "on200")]
    On200,
    #[serde(rename = "after-upstream-ack")]
    AfterUpstreamAck,
}

impl From<AckName> for AckTiming {
    fn from(a: AckName) -> AckTiming {
        match a {
            AckName::On200 => AckTiming::On200,
            AckName::AfterUpstreamAck => AckTiming::AfterUpstreamAck,
        }
    }
}

/// serde helpers reading [`AckTiming`] through [`AckName`].
pub mod ack_serde {
    use super::AckName;
    use crate::config::AckTiming;
    use serde::{Deserialize, Deserializer};

    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AckTiming>, D::Error> {
        Ok(Option::<AckName>::deserialize(d)?.map(Into::into))
    }
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AckTiming>, D::Error> {
        Ok(Vec::<AckName>::deserialize(d)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
    pub fn option_list<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<AckTiming>>, D::Error> {
        Ok(
            Option::<Vec<AckName>>::deserialize(d)?
                .map(|v| v.into_iter().map(Into::into).collect()),
        )
    }
    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<AckTiming, D::Error> {
        Ok(AckName::deserialize(d)?.into())
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

// ------------------------------------------------------------------------------------------
// Messages and links

/// A message or action of a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Message {
    /// INVITEn on leg n.
    Invite(u8),
    /// 200-n: the 200 OK answering INVITEn.
    Ok(u8),
    /// ACKn.
    Ack(u8),
    /// BYEn.
    Bye(u8),
    /// Ln-open: a TCP connection opened (or an existing one reused) for MSRP on link Ln.
    Open(Link),
    /// MSRP SEND with content, downstream on the link between `from` and `to`.
    Send,
}

impl Message {
    /// Every name the suite files may use.
    pub fn all_names() -> Vec<String> {
        let mut v = Vec::new();
        for n in 1..=4 {
            v.push(format!("INVITE{n}"));
            v.push(format!("200-{n}"));
            v.push(format!("ACK{n}"));
            v.push(format!("BYE{n}"));
            v.push(format!("L{n}-open"));
        }
        v.push("SEND".into());
        v
    }

    pub fn parse(s: &str) -> Result<Message, String> {
        let leg = |d: &str| -> Option<u8> {
            match d {
                "1" => Some(1),
                "2" => Some(2),
                "3" => Some(3),
                "4" => Some(4),
                _ => None,
            }
        };
        let m = if s == "SEND" {
            Some(Message::Send)
        } else if let Some(d) = s.strip_prefix("INVITE") {
            leg(d).map(Message::Invite)
        } else if let Some(d) = s.strip_prefix("200-") {
            leg(d).map(Message::Ok)
        } else if let Some(d) = s.strip_prefix("ACK") {
            leg(d).map(Message::Ack)
        } else if let Some(d) = s.strip_prefix("BYE") {
            leg(d).map(Message::Bye)
        } else if let Some(d) = s.strip_prefix('L').and_then(|r| r.strip_suffix("-open")) {
            leg(d).map(|n| Message::Open(link_of_leg(n)))
        } else {
            None
        };
        m.ok_or_else(|| {
            let names = Message::all_names();
            let known: Vec<&str> = names.iter().map(String::as_str).collect();
            format!(
                "unknown message {s:?}{}; expected INVITEn, 200-n, ACKn, BYEn, Ln-open (n = 1..4) or SEND",
                did_you_mean(s, &known)
            )
        })
    }

    /// The link (= SIP leg) the message belongs to; `None` for SEND (see [`Step::link`]).
    pub fn leg(self) -> Option<Link> {
        match self {
            Message::Invite(n) | Message::Ok(n) | Message::Ack(n) | Message::Bye(n) => {
                Some(link_of_leg(n))
            }
            Message::Open(l) => Some(l),
            Message::Send => None,
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Invite(n) => write!(f, "INVITE{n}"),
            Message::Ok(n) => write!(f, "200-{n}"),
            Message::Ack(n) => write!(f, "ACK{n}"),
            Message::Bye(n) => write!(f, "BYE{n}"),
            Message::Open(l) => write!(f, "{}-open", link_name(*l)),
            Message::Send => f.write_str("SEND"),
        }
    }
}

fn link_of_leg(n: u8) -> Link {
    match n {
        1 => Link::L1,
        2 => Link::L2,
        3 => Link::L3,
        _ => Link::L4,
    }
}

/// `L1` … `L4`.
pub fn link_name(l: Link) -> &'static str {
    match l {
        Link::L1 => "L1",
        Link::L2 => "L2",
        Link::L3 => "L3",
        Link::L4 => "L4",
    }
}

/// The (upstream, downstream) roles of a link, which are also the (INVITE sender, INVITE
/// receiver) of its SIP leg.
pub fn endpoints(l: Link) -> (Role, Role) {
    match l {
        Link::L1 => (Role::ClientA, Role::PfA),
        Link::L2 => (Role::PfA, Role::X),
        Link::L3 => (Role::X, Role::PfB),
        Link::L4 => (Role::PfB, Role::ClientB),
    }
}

/// The link between two roles, if they are neighbours.
pub fn link_between(a: Role, b: Role) -> Option<Link> {
    Link::all().into_iter().find(|l| {
        let (u, d) = endpoints(*l);
        (u, d) == (a, b) || (u, d) == (b, a)
    })
}

/// The role that opens `link` under `variant` according to [`Variant::opener`] (the knobs in
/// `config.rs`); suites must agree with it for the default knobs.
pub fn variant_opener_role(variant: &Variant, link: Link) -> Role {
    let (up, down) = endpoints(link);
    match variant.opener(link) {
        Opener::Offerer => up,
        Opener::Answerer => down,
    }
}

// ------------------------------------------------------------------------------------------
// Raw file format (serde)

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSuite {
    figure: Figure,
    solution: u8,
    #[serde(default)]
    title: String,
    x_answer: XAnswer,
    #[serde(deserialize_with = "ack_serde::one")]
    ack: AckTiming,
    #[serde(default, deserialize_with = "ack_serde::list")]
    ack_allowed: Vec<AckTiming>,
    links: BTreeMap<Link, RawLink>,
    steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLink {
    opener: Role,
    params_from: String,
    trigger: Vec<Trigger>,
    step: String,
    #[serde(default)]
    if_l23_x: Option<RawLinkAlt>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLinkAlt {
    opener: Role,
    params_from: String,
    trigger: Vec<Trigger>,
    step: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum ParamsOf {
    #[serde(rename = "none")]
    Nobody,
    #[serde(rename = "client-a")]
    ClientA,
    #[serde(rename = "pf-a")]
    PfA,
    #[serde(rename = "x")]
    X,
    #[serde(rename = "pf-b")]
    PfB,
    #[serde(rename = "client-b")]
    ClientB,
}

impl ParamsOf {
    fn role(self) -> Option<Role> {
        match self {
            ParamsOf::Nobody => None,
            ParamsOf::ClientA => Some(Role::ClientA),
            ParamsOf::PfA => Some(Role::PfA),
            ParamsOf::X => Some(Role::X),
            ParamsOf::PfB => Some(Role::PfB),
            ParamsOf::ClientB => Some(Role::ClientB),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStep {
    id: String,
    #[serde(default)]
    patent: Option<String>,
    message: String,
    from: Role,
    to: Role,
    #[serde(default)]
    after: Vec<String>,
    #[serde(default)]
    carries_params_of: Option<ParamsOf>,
    #[serde(default)]
    upstream_ack: Option<String>,
    #[serde(default)]
    l23: Option<MiddleOpener>,
    #[serde(default)]
    note: Option<String>,
}

// ------------------------------------------------------------------------------------------
// Validated suite

/// One step of a figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Unique within the suite, e.g. `S106`, `S103-200-2`, `F3-INVITE3`.
    pub id: String,
    /// The patent's step this message belongs to (`S103`), if it is numbered there.
    pub patent: Option<String>,
    pub message: Message,
    pub from: Role,
    pub to: Role,
    /// Steps that must come first, whatever the knobs.
    pub after: Vec<String>,
    /// The entity whose MSRP parameters the figure says this message carries.
    pub carries_params_of: Option<Role>,
    /// For an ACK of a middle entity: the upstream ACK it waits for under `after-upstream-ack`.
    pub upstream_ack: Option<String>,
    /// Solution 3: the step happens only with this L2/L3 opener.
    pub l23: Option<MiddleOpener>,
    pub note: Option<String>,
}

impl Step {
    /// The link (SIP leg or MSRP link) the step is on.
    pub fn link(&self) -> Option<Link> {
        self.message
            .leg()
            .or_else(|| link_between(self.from, self.to))
    }

    /// The reference for reports: the patent step, else the id.
    pub fn reference(&self) -> &str {
        self.patent.as_deref().unwrap_or(&self.id)
    }

    /// Whether the step happens under `variant` (its `l23` condition).
    pub fn happens_in(&self, variant: &Variant) -> bool {
        self.l23.is_none_or(|o| o == variant.l23_opener)
    }
}

/// How one link is opened (for one L2/L3 opener choice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRule {
    /// The role that opens the link (initiates TCP or reuses a matching connection).
    pub opener: Role,
    /// The message whose SDP gives the opener the peer's parameters.
    pub params_from: Message,
    /// Triggers allowed; the first is used when the variant's knob does not apply.
    pub triggers: Vec<Trigger>,
    /// The id of the `Ln-open` step.
    pub step: String,
}

/// One link of a suite: the default rule and, in solution 3, the rule when x opens L2/L3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    pub rule: LinkRule,
    pub if_l23_x: Option<LinkRule>,
}

/// A validated figure suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    figure: Figure,
    solution: u8,
    title: String,
    x_answer: XAnswer,
    ack: AckTiming,
    ack_allowed: Vec<AckTiming>,
    links: BTreeMap<Link, LinkSpec>,
    steps: Vec<Step>,
    origin: String,
}

impl Suite {
    /// Loads and validates a suite file.
    pub fn load(path: &Path) -> anyhow::Result<Suite> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        Suite::parse(&text, &path.display().to_string())
    }

    /// Parses and validates suite text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Suite> {
        let raw: RawSuite = parse_yaml_hinted(text, origin)?;
        build(raw, text, origin).map_err(|e| anyhow::anyhow!(e))
    }

    pub fn figure(&self) -> Figure {
        self.figure
    }
    /// 1, 2 or 3.
    pub fn solution(&self) -> u8 {
        self.solution
    }
    pub fn title(&self) -> &str {
        &self.title
    }
    /// Where the suite came from (file path).
    pub fn origin(&self) -> &str {
        &self.origin
    }
    /// When x sends 200-2.
    pub fn x_answer(&self) -> XAnswer {
        self.x_answer
    }
    /// The downstream ACK timing the figure draws.
    pub fn default_ack(&self) -> AckTiming {
        self.ack
    }
    /// The ACK timings the figure allows (a variant's `ack` must be one of them).
    pub fn ack_allowed(&self) -> &[AckTiming] {
        &self.ack_allowed
    }
    /// All steps in the figure's order (including solution-3 alternatives).
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// The steps that happen under `variant`, in order.
    pub fn steps_for(&self, variant: &Variant) -> Vec<&Step> {
        self.steps
            .iter()
            .filter(|s| s.happens_in(variant))
            .collect()
    }
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
    /// Whether the suite has solution-3 alternatives (the `l23-opener` knob matters).
    pub fn has_l23_choice(&self) -> bool {
        self.links.values().any(|l| l.if_l23_x.is_some())
    }
    /// The link's spec (both alternatives).
    pub fn link_spec(&self, link: Link) -> &LinkSpec {
        // Validation guarantees all four links.
        &self.links[&link]
    }
    /// The link's rule for an L2/L3 opener choice.
    pub fn link(&self, link: Link, l23: MiddleOpener) -> &LinkRule {
        let spec = self.link_spec(link);
        match (l23, &spec.if_l23_x) {
            (MiddleOpener::X, Some(alt)) => alt,
            _ => &spec.rule,
        }
    }
    /// The link's rule under `variant`.
    pub fn link_for(&self, link: Link, variant: &Variant) -> &LinkRule {
        self.link(link, variant.l23_opener)
    }
    /// Who opens `link` with the default knobs (in solution 3: L2 by pf-a, L3 by pf-b).
    pub fn opener(&self, link: Link) -> Role {
        self.link(link, MiddleOpener::Pf).opener
    }
    /// Who opens `link` under `variant`.
    pub fn opener_for(&self, link: Link, variant: &Variant) -> Role {
        self.link_for(link, variant).opener
    }
    /// The figure's rules under `variant`, for [`Variant::rules`]: what the entities do and the
    /// checks expect then comes from this file.
    pub fn rules(&self, variant: &Variant) -> crate::config::FigureRules {
        use crate::config::{FigureRules, Opener, Solution};
        let opener = |link: Link| {
            let (offerer, _) = endpoints(link);
            if self.opener_for(link, variant) == offerer {
                Opener::Offerer
            } else {
                Opener::Answerer
            }
        };
        FigureRules {
            solution: match self.solution {
                1 => Solution::SenderOpens,
                2 => Solution::ReceiverOpens,
                _ => Solution::ClientsOpen,
            },
            openers: [
                opener(Link::L1),
                opener(Link::L2),
                opener(Link::L3),
                opener(Link::L4),
            ],
            x_answer: self.x_answer(),
            default_ack: self.default_ack(),
        }
    }
    /// The trigger the opener of `link` uses under `variant`: the variant's knob (`trigger`
    /// for pf-a/pf-b, `x-trigger` for x) when the link allows it, else the link's first allowed
    /// trigger (clients and INVITE receivers have a fixed one).
    pub fn trigger_for(&self, link: Link, variant: &Variant) -> Trigger {
        let rule = self.link_for(link, variant);
        let knob = match rule.opener {
            Role::PfA | Role::PfB => Some(variant.trigger),
            Role::X => Some(variant.x_trigger()),
            _ => None,
        };
        match knob {
            Some(t) if rule.triggers.contains(&t) => t,
            _ => rule.triggers[0],
        }
    }
    /// Whether the variant's trigger knob for the opener of `link` is one the link allows
    /// (always true when the link has a single fixed trigger or a client opens it).
    pub fn trigger_allowed(&self, link: Link, variant: &Variant) -> Result<(), String> {
        let rule = self.link_for(link, variant);
        if rule.triggers.len() < 2 {
            return Ok(());
        }
        let (knob, name) = match rule.opener {
            Role::PfA | Role::PfB => (variant.trigger, "trigger"),
            Role::X => (variant.x_trigger(), "x-trigger"),
            _ => return Ok(()),
        };
        if rule.triggers.contains(&knob) {
            Ok(())
        } else {
            Err(format!(
                "figure {} does not allow {name} {} for {} (opened by {})",
                self.figure,
                knob.as_str(),
                link_name(link),
                rule.opener
            ))
        }
    }
    /// The step whose message gives the opener of `link` the peer's parameters.
    pub fn params_step(&self, link: Link, variant: &Variant) -> Option<&Step> {
        let rule = self.link_for(link, variant);
        self.steps_for(variant)
            .into_iter()
            .find(|s| s.message == rule.params_from && s.to == rule.opener)
    }
    /// The step that fires the opener's trigger for `link` under `variant`: the 200 of the
    /// link's leg (`on-200`), the ACK the opener receives (`on-ack`), or the SEND it receives
    /// (`on-send`).
    pub fn trigger_step(&self, link: Link, variant: &Variant) -> Option<&Step> {
        let rule = self.link_for(link, variant);
        let trig = self.trigger_for(link, variant);
        self.steps_for(variant).into_iter().find(|s| {
            s.to == rule.opener
                && match trig {
                    Trigger::On200 => matches!(s.message, Message::Ok(_)) && s.link() == Some(link),
                    Trigger::OnAck => matches!(s.message, Message::Ack(_)),
                    Trigger::OnSend => s.message == Message::Send,
                }
        })
    }
    /// The `Ln-open` step of `link` under `variant`.
    pub fn open_step(&self, link: Link, variant: &Variant) -> Option<&Step> {
        self.step(&self.link_for(link, variant).step)
    }
    /// The steps that must precede `id` under `variant`: its `after` list (minus steps that do
    /// not happen) and, under `after-upstream-ack` timing, its upstream ACK.
    pub fn predecessors(&self, id: &str, variant: &Variant) -> Vec<&Step> {
        let Some(step) = self.step(id) else {
            return Vec::new();
        };
        let mut ids: Vec<&str> = step.after.iter().map(String::as_str).collect();
        if variant.ack_timing() == AckTiming::AfterUpstreamAck {
            if let Some(u) = &step.upstream_ack {
                ids.push(u);
            }
        }
        ids.into_iter()
            .filter_map(|i| self.step(i))
            .filter(|s| s.happens_in(variant))
            .collect()
    }
    /// The steps a role sends under `variant` (what the checks expect of a SUT in that role).
    pub fn steps_of(&self, role: Role, variant: &Variant) -> Vec<&Step> {
        self.steps_for(variant)
            .into_iter()
            .filter(|s| s.from == role)
            .collect()
    }
}

/// Loads every `fig*.yaml` of `dir`, keyed by figure number; two files for one figure is an
/// error.
pub fn load_figures(dir: &Path) -> anyhow::Result<BTreeMap<u8, Suite>> {
    let mut out: BTreeMap<u8, Suite> = BTreeMap::new();
    let rd = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the suite folder: {e}", dir.display()))?;
    let mut paths: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("fig") && (name.ends_with(".yaml") || name.ends_with(".yml"))
        })
        .collect();
    paths.sort();
    for p in paths {
        let s = Suite::load(&p)?;
        let n = s.figure().n();
        if let Some(prev) = out.get(&n) {
            anyhow::bail!(
                "{}: figure {n} is already defined by {}",
                p.display(),
                prev.origin()
            );
        }
        out.insert(n, s);
    }
    if out.is_empty() {
        anyhow::bail!("{}: no fig*.yaml suite files", dir.display());
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// Validation

fn build(raw: RawSuite, text: &str, origin: &str) -> Result<Suite, String> {
    let at_top = |key: &str| locate_key(text, origin, key);
    if !(1..=3).contains(&raw.solution) {
        return Err(format!(
            "{}: solution must be 1, 2 or 3, got {}",
            at_top("solution"),
            raw.solution
        ));
    }
    let ack_allowed = if raw.ack_allowed.is_empty() {
        vec![raw.ack]
    } else {
        raw.ack_allowed.clone()
    };
    if !ack_allowed.contains(&raw.ack) {
        return Err(format!(
            "{}: ack-allowed must contain the default ack",
            at_top("ack-allowed")
        ));
    }

    // Steps: ids unique, messages known, directions consistent with the chain.
    let mut steps: Vec<Step> = Vec::with_capacity(raw.steps.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for rs in &raw.steps {
        let at = locate(text, origin, "id", &rs.id);
        let step_err = |m: String| format!("{at}: step {}: {m}", rs.id);
        if rs.id.trim().is_empty() {
            return Err(format!("{at}: a step has an empty id"));
        }
        if index.contains_key(&rs.id) {
            return Err(step_err("duplicate step id".into()));
        }
        let message = Message::parse(&rs.message).map_err(&step_err)?;
        check_direction(message, rs.from, rs.to).map_err(&step_err)?;
        index.insert(rs.id.clone(), steps.len());
        steps.push(Step {
            id: rs.id.clone(),
            patent: rs
                .patent
                .clone()
                .or_else(|| is_patent_step(&rs.id).then(|| rs.id.clone())),
            message,
            from: rs.from,
            to: rs.to,
            after: rs.after.clone(),
            carries_params_of: rs.carries_params_of.and_then(ParamsOf::role),
            upstream_ack: rs.upstream_ack.clone(),
            l23: rs.l23,
            note: rs.note.clone(),
        });
    }
    if steps.is_empty() {
        return Err(format!("{}: the suite has no steps", at_top("steps")));
    }
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    for s in &steps {
        let at = locate(text, origin, "id", &s.id);
        for a in s.after.iter().chain(s.upstream_ack.iter()) {
            if !index.contains_key(a) {
                return Err(format!(
                    "{at}: step {}: unknown step {a:?}{}",
                    s.id,
                    did_you_mean(a, &ids)
                ));
            }
            if a == &s.id {
                return Err(format!(
                    "{at}: step {}: a step cannot come after itself",
                    s.id
                ));
            }
        }
        if let Some(p) = &s.carries_params_of {
            if *p != s.from {
                return Err(format!(
                    "{at}: step {}: carries-params-of {p} but the message is sent by {} (a B2BUA \
                     only ever advertises its own parameters)",
                    s.id, s.from
                ));
            }
        }
        if let Some(u) = &s.upstream_ack {
            let us = &steps[index[u]];
            if !matches!(s.message, Message::Ack(_)) || !matches!(us.message, Message::Ack(_)) {
                return Err(format!(
                    "{at}: step {}: upstream-ack links an ACK to the upstream ACK it waits for; \
                     {} and {} are not both ACKs",
                    s.id, s.message, us.message
                ));
            }
            if us.to != s.from {
                return Err(format!(
                    "{at}: step {}: upstream-ack {u} is received by {}, not by {}",
                    s.id, us.to, s.from
                ));
            }
        }
    }
    check_cycles(&steps, &index, text, origin)?;

    // Links: all four, consistent with the steps.
    let mut links = BTreeMap::new();
    for l in Link::all() {
        let name = link_name(l);
        let Some(rl) = raw.links.get(&l) else {
            return Err(format!("{}: links: {name} is missing", at_top("links")));
        };
        let at = locate_key(text, origin, name);
        let rule = link_rule(
            l,
            rl.opener,
            &rl.params_from,
            &rl.trigger,
            &rl.step,
            None,
            &steps,
            &index,
        )
        .map_err(|e| format!("{at}: link {name}: {e}"))?;
        let alt = match &rl.if_l23_x {
            None => None,
            Some(a) => {
                if raw.solution != 3 || !matches!(l, Link::L2 | Link::L3) {
                    return Err(format!(
                        "{at}: link {name}: if-l23-x applies to L2 and L3 in solution 3 only"
                    ));
                }
                Some(
                    link_rule(
                        l,
                        a.opener,
                        &a.params_from,
                        &a.trigger,
                        &a.step,
                        Some(MiddleOpener::X),
                        &steps,
                        &index,
                    )
                    .map_err(|e| format!("{at}: link {name} (if-l23-x): {e}"))?,
                )
            }
        };
        links.insert(
            l,
            LinkSpec {
                rule,
                if_l23_x: alt,
            },
        );
    }

    let suite = Suite {
        figure: raw.figure,
        solution: raw.solution,
        title: raw.title,
        x_answer: raw.x_answer,
        ack: raw.ack,
        ack_allowed,
        links,
        steps,
        origin: origin.to_string(),
    };
    check_x_answer(&suite, text, origin)?;
    Ok(suite)
}

fn is_patent_step(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 4 && b[0] == b'S' && b[1..].iter().all(u8::is_ascii_digit)
}

/// INVITE/ACK/BYE go downstream on their leg, 200 upstream, Ln-open between the link's
/// endpoints, SEND downstream on a link.
fn check_direction(m: Message, from: Role, to: Role) -> Result<(), String> {
    let ok = match m {
        Message::Invite(_) | Message::Ack(_) | Message::Bye(_) => {
            m.leg().map(endpoints) == Some((from, to))
        }
        Message::Ok(_) => m.leg().map(endpoints) == Some((to, from)),
        Message::Open(l) => link_between(from, to) == Some(l),
        Message::Send => link_between(from, to).map(endpoints) == Some((from, to)),
    };
    if ok {
        return Ok(());
    }
    let want = match m {
        Message::Invite(_) | Message::Ack(_) | Message::Bye(_) => m
            .leg()
            .map(endpoints)
            .map(|(u, d)| format!("from {u} to {d}")),
        Message::Ok(_) => m
            .leg()
            .map(endpoints)
            .map(|(u, d)| format!("from {d} to {u}")),
        Message::Open(l) => {
            let (u, d) = endpoints(l);
            Some(format!("between {u} and {d}"))
        }
        Message::Send => Some("downstream between neighbours".into()),
    };
    Err(format!(
        "{m} cannot go from {from} to {to}; it goes {}",
        want.unwrap_or_default()
    ))
}

#[allow(clippy::too_many_arguments)]
fn link_rule(
    link: Link,
    opener: Role,
    params_from: &str,
    triggers: &[Trigger],
    step: &str,
    l23: Option<MiddleOpener>,
    steps: &[Step],
    index: &HashMap<String, usize>,
) -> Result<LinkRule, String> {
    let (up, down) = endpoints(link);
    if opener != up && opener != down {
        return Err(format!(
            "opener {opener} is not an end of the link (ends: {up}, {down})"
        ));
    }
    let peer = if opener == up { down } else { up };
    if triggers.is_empty() {
        return Err("trigger lists no trigger".into());
    }
    for (i, t) in triggers.iter().enumerate() {
        if triggers[..i].contains(t) {
            return Err(format!("trigger {} listed twice", t.as_str()));
        }
    }
    let msg = Message::parse(params_from).map_err(|e| format!("params-from: {e}"))?;
    let applies = |s: &Step| match (s.l23, l23) {
        (None, _) => true,
        (Some(a), Some(b)) => a == b,
        (Some(a), None) => a == MiddleOpener::Pf,
    };
    let carrier = steps
        .iter()
        .filter(|s| applies(s))
        .find(|s| s.message == msg && s.to == opener);
    match carrier {
        None => {
            return Err(format!(
                "params-from {msg}: no step sends {msg} to the opener {opener}"
            ))
        }
        Some(s) if s.carries_params_of != Some(peer) => {
            return Err(format!(
                "params-from {msg}: step {} must declare carries-params-of: {peer}",
                s.id
            ))
        }
        Some(_) => {}
    }
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    let Some(&i) = index.get(step) else {
        return Err(format!(
            "step: unknown step {step:?}{}",
            did_you_mean(step, &ids)
        ));
    };
    let s = &steps[i];
    if s.message != Message::Open(link) || s.from != opener {
        return Err(format!(
            "step {step} must be {}-open from {opener}, it is {} from {}",
            link_name(link),
            s.message,
            s.from
        ));
    }
    if !applies(s) {
        return Err(format!(
            "step {step} is marked for another l23 opener than this rule"
        ));
    }
    Ok(LinkRule {
        opener,
        params_from: msg,
        triggers: triggers.to_vec(),
        step: step.to_string(),
    })
}

/// Depth-first search over `after` (and `upstream-ack`) edges; names the cycle.
fn check_cycles(
    steps: &[Step],
    index: &HashMap<String, usize>,
    text: &str,
    origin: &str,
) -> Result<(), String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let edges: Vec<Vec<usize>> = steps
        .iter()
        .map(|s| {
            s.after
                .iter()
                .chain(s.upstream_ack.iter())
                .filter_map(|a| index.get(a).copied())
                .collect()
        })
        .collect();
    let mut mark = vec![Mark::New; steps.len()];
    for start in 0..steps.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next edge index); `path` is the open chain.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Open;
        while let Some(&mut (n, ref mut e)) = stack.last_mut() {
            if *e < edges[n].len() {
                let m = edges[n][*e];
                *e += 1;
                match mark[m] {
                    Mark::New => {
                        mark[m] = Mark::Open;
                        stack.push((m, 0));
                    }
                    Mark::Open => {
                        let pos = stack.iter().position(|(k, _)| *k == m).unwrap_or(0);
                        let mut names: Vec<&str> = stack[pos..]
                            .iter()
                            .map(|(k, _)| steps[*k].id.as_str())
                            .collect();
                        names.push(steps[m].id.as_str());
                        let at = locate(text, origin, "id", &steps[m].id);
                        return Err(format!(
                            "{at}: step {}: the `after` constraints form a cycle: {}",
                            steps[m].id,
                            names.join(" → ")
                        ));
                    }
                    Mark::Done => {}
                }
            } else {
                mark[n] = Mark::Done;
                stack.pop();
            }
        }
    }
    Ok(())
}

/// Every 200-2 comes after a 200-3 exactly when x answers after the first member.
fn check_x_answer(suite: &Suite, text: &str, origin: &str) -> Result<(), String> {
    for s in suite.steps.iter().filter(|s| s.message == Message::Ok(2)) {
        let waits = reaches(suite, &s.id, &|t: &Step| t.message == Message::Ok(3));
        let want = suite.x_answer == XAnswer::AfterFirstMember;
        if waits != want {
            let at = locate(text, origin, "id", &s.id);
            return Err(format!(
                "{at}: step {}: x-answer is {} but 200-2 {} after a 200-3",
                s.id,
                match suite.x_answer {
                    XAnswer::AtOnce => "at-once",
                    XAnswer::AfterFirstMember => "after-first-member",
                },
                if waits { "comes" } else { "does not come" }
            ));
        }
    }
    Ok(())
}

/// Whether a step satisfying `pred` precedes `id` through `after` edges.
fn reaches(suite: &Suite, id: &str, pred: &dyn Fn(&Step) -> bool) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![id.to_string()];
    while let Some(i) = todo.pop() {
        let Some(s) = suite.step(&i) else { continue };
        for a in &s.after {
            if seen.insert(a.clone()) {
                if let Some(t) = suite.step(a) {
                    if pred(t) {
                        return true;
                    }
                }
                todo.push(a.clone());
            }
        }
    }
    false
}

/// The solution number a figure implies (for consistency checks).
pub fn solution_number(s: Solution) -> u8 {
    match s {
        Solution::SenderOpens => 1,
        Solution::ReceiverOpens => 2,
        Solution::ClientsOpen => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_unknown_fields_and_variants() {
        let m = "f.yaml:2:1: unknown field `triger`, expected one of `figure`, `trigger` at line 2 column 1";
        let h = hint_unknown(m);
        assert!(h.contains("`triger` (did you mean \"trigger\"?)"), "{h}");
        let m = "unknown variant `pfa`, expected one of `client-a`, `pf-a`, `x`";
        assert!(hint_unknown(m).contains("did you mean \"pf-a\""));
        assert_eq!(hint_unknown("something else"), "something else");
    }

    #[test]
    fn messages_parse_and_print() {
        for n in Message::all_names() {
            assert_eq!(Message::parse(&n).unwrap().to_string(), n);
        }
        assert!(Message::parse("INVITE5").is_err());
        assert!(Message::parse("INVTE2").unwrap_err().contains("INVITE2"));
    }

    #[test]
    fn locate_finds_whole_tokens() {
        let t = "steps:\n  - { id: S1011 }\n  - { id: S101, x: 1 }\n";
        assert_eq!(locate(t, "f", "id", "S101"), "f:3:7");
        assert_eq!(locate_key("a: 1\n  L2: {}\n", "f", "L2"), "f:2:3");
    }
}
