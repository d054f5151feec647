//! What a check found, as data: a [`Finding`] is a verdict class, the named situation
//! ([`FindingKind`], one variant per thing a check can find, carrying its values) and the
//! message, connection or content it is about ([`Cite`]: an index into the observation plus
//! the excerpt, the addresses and the time, so that it stands alone when serialised).
//!
//! Text is made here and only here: [`fmt::Display`] for the kinds and cites, and
//! [`evidence_lines`] for a check's evidence. The console, `summary.json` (`evidence`), JUnit
//! and HTML all print these lines; tests assert on the data.

use super::catalogue::CheckId;
use super::Verdict;
use crate::config::{Link, MiddleOpener};
use crate::topology::Role;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A time since the case started, or a span: serialised as integer microseconds, shown in
/// milliseconds (`123.4ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub Duration);

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0.as_micros().min(u64::MAX as u128) as u64)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Time(Duration::from_micros(u64::deserialize(d)?)))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}ms", self.0.as_secs_f64() * 1000.0)
    }
}

impl From<Duration> for Time {
    fn from(d: Duration) -> Time {
        Time(d)
    }
}

/// One end of a message or connection: the entity instance (none when the address belongs to
/// no entity of the topology) and the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: Option<String>,
    pub addr: SocketAddr,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} ({})", self.addr),
            None => write!(f, "{} (unknown)", self.addr),
        }
    }
}

/// Something a finding refers to, with an index into the case's observation
/// ([`crate::model::Observation`]) and enough of it to stand alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cite", rename_all = "kebab-case")]
pub enum Cite {
    /// A SIP message (`Observation::sip[index]`).
    Sip {
        index: usize,
        t: Time,
        /// Its start line (at most 100 characters).
        start_line: String,
        from: Endpoint,
        to: Endpoint,
    },
    /// An MSRP message: `Observation::conns[conn].dirs[dir].msgs[index]` (`dir` 0 is from
    /// the connection's opener).
    Msrp {
        conn: usize,
        dir: usize,
        index: usize,
        t: Time,
        start_line: String,
        from: Endpoint,
        to: Endpoint,
    },
    /// A TCP connection (`Observation::conns[index]`): when it opened, opener and target.
    Conn {
        index: usize,
        t: Time,
        opener: Endpoint,
        target: Endpoint,
    },
    /// A message's content reassembled on one direction of a connection
    /// (`Observation::conns[conn].dirs[dir].contents[index]`).
    Content {
        conn: usize,
        dir: usize,
        index: usize,
        t: Time,
        message_id: String,
        /// Its total length (or what arrived of it).
        octets: u64,
        sha256: Option<String>,
        from: Endpoint,
        to: Endpoint,
    },
}

impl Cite {
    /// When it happened (the first record of a message, a connection's opening).
    pub fn t(&self) -> Time {
        match self {
            Cite::Sip { t, .. }
            | Cite::Msrp { t, .. }
            | Cite::Conn { t, .. }
            | Cite::Content { t, .. } => *t,
        }
    }

    /// Sender and receiver (opener and target of a connection).
    pub fn ends(&self) -> (&Endpoint, &Endpoint) {
        match self {
            Cite::Sip { from, to, .. }
            | Cite::Msrp { from, to, .. }
            | Cite::Content { from, to, .. } => (from, to),
            Cite::Conn { opener, target, .. } => (opener, target),
        }
    }
}

impl fmt::Display for Cite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cite::Sip {
                t,
                start_line,
                from,
                to,
                ..
            }
            | Cite::Msrp {
                t,
                start_line,
                from,
                to,
                ..
            } => write!(f, "{t} `{start_line}` {from} → {to}"),
            Cite::Conn {
                t, opener, target, ..
            } => write!(f, "{t} TCP {opener} → {target}"),
            Cite::Content {
                t,
                message_id,
                octets,
                sha256,
                from,
                to,
                ..
            } => write!(
                f,
                "{t} message {message_id} ({octets} octets, sha256 {}) {from} → {to}",
                sha256.as_deref().map(short).unwrap_or("?")
            ),
        }
    }
}

/// The first 16 characters of a digest (char-safe: a digest read from a SUT's files may be
/// anything).
pub fn short(s: &str) -> &str {
    s.char_indices().nth(16).map(|(i, _)| &s[..i]).unwrap_or(s)
}

/// A hop of the chain the case expects: `L3 x→pf-b1 (b1)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegRef {
    pub link: Link,
    /// The INVITE sender and receiver.
    pub uac: String,
    pub uas: String,
    /// The member an L3/L4 hop serves.
    pub member: Option<String>,
}

impl fmt::Display for LegRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}→{}", self.link, self.uac, self.uas)?;
        if let Some(m) = &self.member {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

/// The figure a case follows (with solution 3's choice of L2/L3 opener).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FigureRef {
    pub n: u8,
    pub l23_opener: Option<MiddleOpener>,
}

impl fmt::Display for FigureRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.l23_opener {
            Some(o) => write!(f, "figure {} (l23-opener {o:?})", self.n),
            None => write!(f, "figure {}", self.n),
        }
    }
}

/// An `a=setup` attribute as written (none when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SetupAttr(pub Option<String>);

impl fmt::Display for SetupAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => write!(f, "a=setup:{v}"),
            None => f.write_str("no a=setup"),
        }
    }
}

/// A SIP message of a dialog, by its place in the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SipStep {
    Invite,
    Ok,
    Ack,
    Bye,
}

impl fmt::Display for SipStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SipStep::Invite => "INVITE",
            SipStep::Ok => "200 OK",
            SipStep::Ack => "ACK",
            SipStep::Bye => "BYE",
        })
    }
}

/// Why an (offer, answer) pair of `a=setup` values is invalid (RFC 4145 §4.1, RFC 6135 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetupConflict {
    ActiveActive,
    ImplicitActiveAnswered,
    PassiveOffer,
    PassivePassive,
    ActpassAnswer,
    Invalid,
}

impl fmt::Display for SetupConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetupConflict::ActiveActive => "active/active: nobody listens",
            SetupConflict::ImplicitActiveAnswered => {
                "an answer to an implicitly active offer must be passive"
            }
            SetupConflict::PassiveOffer => "a passive offer is off-spec (RFC 6135 §4.2.2)",
            SetupConflict::PassivePassive => "passive offer and passive answer: nobody connects",
            SetupConflict::ActpassAnswer => "actpass is not allowed in an answer",
            SetupConflict::Invalid => "not a valid pair",
        })
    }
}

/// Which message the flow puts a SUT's MSRP parameters in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamsRule {
    /// Solution 1: the INVITE sender connects with the 200 OK's parameters.
    Solution1Answer,
    /// Solution 2: the INVITE receiver connects with the INVITE's parameters.
    Solution2Offer,
    Offer,
    Answer,
}

impl fmt::Display for ParamsRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamsRule::Solution1Answer => {
                "solution 1: the INVITE sender connects with the 200 OK's parameters"
            }
            ParamsRule::Solution2Offer => {
                "solution 2: the INVITE receiver connects with the INVITE's parameters"
            }
            ParamsRule::Offer => "the INVITE carries the offer in this flow",
            ParamsRule::Answer => "the 200 OK carries the answer in this flow",
        })
    }
}

/// What makes an entity open a link, and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerSeen {
    /// The 200 OK it received.
    Ok(Cite),
    /// The ACK on its upstream leg (none: never sent).
    UpstreamAck(Option<Cite>),
    /// The first SEND on its upstream leg (none: never sent).
    FirstUpstreamSend(Option<Time>),
    /// The ACK of its own dialog, for an answerer (none: never sent).
    Ack(Option<Cite>),
}

impl fmt::Display for TriggerSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TriggerSeen::Ok(c) => write!(f, "the 200 OK {c}"),
            TriggerSeen::UpstreamAck(Some(c)) => write!(f, "the upstream ACK {c}"),
            TriggerSeen::UpstreamAck(None) => f.write_str("the upstream ACK (never sent)"),
            TriggerSeen::FirstUpstreamSend(Some(t)) => {
                write!(f, "the first upstream SEND at {t}")
            }
            TriggerSeen::FirstUpstreamSend(None) => {
                f.write_str("the first upstream SEND (never sent)")
            }
            TriggerSeen::Ack(Some(c)) => write!(f, "the ACK {c}"),
            TriggerSeen::Ack(None) => f.write_str("the ACK of its dialog (never sent)"),
        }
    }
}

/// A trigger that went between two SUT roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HiddenTrigger {
    UpstreamAck,
    FirstUpstreamSend,
}

/// What reached a member on the recorded links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireDelivery {
    /// The contents that crossed the member's hop.
    Seen(Vec<Cite>),
    /// The member's hop is between SUT roles.
    Hidden { member: String, watched: Time },
    /// Nothing reached the member.
    Nothing { member: String, watched: Time },
}

/// Until when x was watched for its INVITEs, or after which INVITE2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FanoutCause {
    WatchedUntil(Time),
    AfterInvite2(Cite),
}

/// Two connections towards one place, the second opened while the first was open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlap {
    pub opened: Cite,
    pub still_open: Cite,
}

/// A verdict class of one finding (a check's verdict is the worst class among its findings;
/// a [`Class::Note`] is context and judges nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    Pass,
    Fail,
    Inconc,
    NotObservable,
    Note,
}

/// One thing a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub class: Class,
    /// What the finding is about: the message, connection or content it judges. None when it
    /// is about something that never happened (`x never opened L3 …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Cite>,
    #[serde(flatten)]
    pub kind: FindingKind,
    /// When: the subject's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
}

impl Finding {
    pub fn new(class: Class, kind: FindingKind) -> Finding {
        Finding {
            class,
            subject: None,
            kind,
            at: None,
        }
    }

    /// A finding about `subject`.
    pub fn about(class: Class, subject: Cite, kind: FindingKind) -> Finding {
        Finding {
            class,
            at: Some(subject.t()),
            subject: Some(subject),
            kind,
        }
    }

    pub fn pass(kind: FindingKind) -> Finding {
        Finding::new(Class::Pass, kind)
    }
    pub fn fail(kind: FindingKind) -> Finding {
        Finding::new(Class::Fail, kind)
    }
    pub fn inconc(kind: FindingKind) -> Finding {
        Finding::new(Class::Inconc, kind)
    }
    pub fn not_observable(kind: FindingKind) -> Finding {
        Finding::new(Class::NotObservable, kind)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.to_string();
        match (&self.subject, kind.is_empty()) {
            (Some(s), true) => write!(f, "{s}"),
            (Some(s), false) => write!(f, "{s}: {kind}"),
            (None, _) => f.write_str(&kind),
        }
    }
}

/// A check's evidence as text, one line per finding; consecutive findings about one subject
/// share a line (`<subject>: <kind>; <kind>`), and inconclusive findings of a failing check are
/// marked `inconc: `.
pub fn evidence_lines(verdict: Verdict, findings: &[Finding]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut last: Option<(Class, &Cite)> = None;
    for fd in findings {
        let prefix = if verdict == Verdict::Fail && fd.class == Class::Inconc {
            "inconc: "
        } else {
            ""
        };
        if let FindingKind::More { .. } = fd.kind {
            out.push(fd.kind.to_string());
            last = None;
            continue;
        }
        match (&fd.subject, last) {
            (Some(s), Some((c, ls))) if c == fd.class && ls == s => {
                let kind = fd.kind.to_string();
                if let Some(line) = out.last_mut() {
                    if !kind.is_empty() {
                        line.push_str("; ");
                        line.push_str(&kind);
                    }
                }
            }
            _ => out.push(format!("{prefix}{fd}")),
        }
        last = fd.subject.as_ref().map(|s| (fd.class, s));
    }
    out
}

/// The named situations a check reports. Each carries the values its text shows; the text is
/// its [`fmt::Display`]. References in parentheses are RFC sections (see `docs/checks.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum FindingKind {
    // ------------------------------------------------------------ any check
    /// Nothing of what the check judges is visible in this split.
    NoneInSplit {
        what: String,
        /// The roles the SUT plays (empty: the self-check).
        sut: Vec<Role>,
    },
    /// A check with no item at all.
    NothingToCheck,
    /// `count` more findings of the class, not listed.
    More {
        count: usize,
    },
    /// The subject was observed as the flow requires (the cite says it all).
    Seen,
    /// An entity the check needs is not played by the SUT.
    NotPlayedBySut {
        entity: String,
    },
    /// The leg has no dialog at all.
    NoDialog {
        leg: LegRef,
    },
    /// No 200 OK reached the INVITE sender of the leg.
    No200 {
        leg: LegRef,
        entity: String,
    },
    /// The group has no members.
    NoMembers,

    // ------------------------------------------------------------ SDP
    NeverSentInvite {
        entity: String,
        leg: LegRef,
    },
    NothingToAnswer {
        entity: String,
        leg: LegRef,
    },
    NeverAnswered {
        entity: String,
        leg: LegRef,
    },
    /// The message carries no SDP.
    NoSdp,
    /// The SDP does not parse (judged by another check).
    SdpUnparsedElsewhere {
        error: String,
    },
    /// The SDP does not parse at the line this check judges.
    SdpLineInvalid {
        error: String,
    },
    /// The SDP does not parse.
    SdpUnparsable {
        error: String,
    },
    NoMessageMedia,
    /// The SDP is unreadable or lacks an m=message section (judged by other checks).
    NoReadableSdp,
    MessageMediaCount {
        count: usize,
    },
    WrongProto {
        mline: String,
    },
    WrongFormats {
        mline: String,
    },
    PortZero {
        mline: String,
    },
    MediaMismatch {
        answer: Vec<String>,
        offer: Vec<String>,
    },
    OneMsrpMedia,
    NoConnectionLine,
    ConnectionNotIp {
        line: String,
    },
    ConnectionTypeMismatch {
        line: String,
    },
    ConnectionOwn {
        line: String,
        entity: String,
    },
    ConnectionNotOwn {
        line: String,
        entity: String,
        listener: Option<SocketAddr>,
    },
    /// No `a=path` that parses (judged by SDP-PATH).
    NoReadablePath,
    PortMatchesPath {
        port: u16,
    },
    ActivePort9,
    PortMismatch {
        mline: String,
        uri: String,
        port: u16,
    },
    /// A required attribute is absent (`path`, `accept-types`).
    MissingAttribute {
        attr: String,
    },
    PathUnparsable {
        value: String,
        error: String,
    },
    PathTransport {
        uri: String,
        transport: String,
    },
    PathSchemeMismatch {
        uri: String,
        proto: String,
    },
    PathValid {
        value: String,
    },
    PathCopied {
        uri: String,
        entity: String,
        received_in: Cite,
    },
    PathNotOwnAddress {
        uri: String,
        entity: String,
        ip: Option<std::net::IpAddr>,
    },
    PathNotOwnPort {
        uri: String,
        entity: String,
        port: Option<u16>,
    },
    NoSessionId {
        uri: String,
    },
    PathOwn {
        entity: String,
    },
    SessionIdClash {
        session_id: String,
        also_in: Cite,
    },
    /// The SUT used this session-id in an earlier case of the run as well.
    SessionIdInEarlierCase {
        session_id: String,
        case: String,
    },
    SessionIdWeak {
        session_id: String,
        bits: u32,
    },
    SessionIdUnique {
        session_id: String,
    },
    AcceptTypes {
        value: String,
    },
    AcceptTypesEmpty,
    AcceptTypesNoCpim {
        value: String,
    },
    SetupUnknown {
        value: String,
    },
    SetupImplicit {
        setup: SetupAttr,
    },
    SetupPassiveOffer {
        setup: SetupAttr,
    },
    SetupOfferBlocksAnswerer {
        setup: SetupAttr,
        answerer: String,
        link: Link,
    },
    SetupActpassAnswer {
        setup: SetupAttr,
    },
    SetupDisagreesWithPreset {
        setup: SetupAttr,
        opener: String,
        link: Link,
    },
    SetupInvalidPair {
        offer: SetupAttr,
        answer: SetupAttr,
        why: SetupConflict,
    },
    SetupWrongOpener {
        offer: SetupAttr,
        answer: SetupAttr,
        opener: String,
        link: Link,
        figure: FigureRef,
        expected: String,
    },
    SetupValid {
        setup: SetupAttr,
    },
    CarriesParams {
        entity: String,
    },
    NoParams {
        rule: ParamsRule,
    },

    // ------------------------------------------------------------ links
    LinkOffChain {
        opener: String,
    },
    LinkOpenedBy {
        link: Link,
        opener: String,
    },
    /// The SUT opened a link the figure gives its peer.
    LinkOpenedByWrongSide {
        link: Link,
        opener: String,
        figure: FigureRef,
        expected: Role,
    },
    /// The peer opened the link the figure gives the SUT, which never opened it.
    LinkOpenedByPeer {
        leg: LegRef,
        opener: String,
        figure: FigureRef,
        expected: String,
    },
    NeverOpened {
        entity: String,
        leg: LegRef,
        confirmed_by: Cite,
    },
    NeverConfirmedNoLink {
        leg: LegRef,
        entity: String,
    },
    ConnectedToUnadvertised {
        entity: String,
    },
    TargetAdvertised {
        by: String,
    },
    NoPathObserved {
        peer: String,
        entity: String,
    },
    WrongTarget {
        peer: String,
        advertised: Vec<SocketAddr>,
        /// The target is the peer's SIP port, over which no SIP went.
        sip_port: bool,
    },
    PeerNoPath {
        peer: String,
    },
    TargetIsPath {
        peer: String,
        uri: String,
    },
    /// LINK-TLS: the link of a TCP/TLS/MSRP session carries TLS, started by its opener.
    TlsLink {
        opener: String,
        version: String,
    },
    /// LINK-TLS: plain TCP on a link whose session negotiated TLS (`msrps:`, TCP/TLS/MSRP).
    PlainWhereTls {
        opener: String,
        uri: String,
    },
    /// LINK-TLS: a plain TCP/MSRP session's link is plain TCP.
    PlainAsNegotiated {
        opener: String,
    },
    /// LINK-TLS: TLS on the link of a session that negotiated plain TCP/MSRP.
    TlsWherePlain {
        opener: String,
        version: String,
    },
    /// LINK-TLS: the TLS handshake of a link failed (the reason names the peer and alert).
    TlsHandshakeFailed {
        opener: String,
        target: String,
        /// On a connection to the target's SIP port (SIP over TLS), not an MSRP link.
        sip: bool,
        reason: String,
    },
    /// LINK-TLS: the TLS handshake was started by the side that did not open the link.
    TlsStartedByTarget {
        opener: String,
        client: String,
    },
    /// SIG-TLS: the SUT's SIP messages of a SIP-over-TLS case went over TLS.
    SipOverTls {
        entity: String,
        count: usize,
    },
    /// SIG-TLS: a SIP message sent over plain TCP or UDP where SIP over TLS was configured.
    SipPlainWhereTls {
        entity: String,
        /// `UDP` or `TCP`.
        transport: String,
    },
    /// SIG-TLS: a request to a `sips:` Request-URI sent over a transport other than TLS.
    SipsOverPlain {
        entity: String,
        uri: String,
        transport: String,
    },
    /// SIG-TLS: an INVITE to a `sips:` Request-URI whose Contact is not a `sips:` URI.
    ContactNotSips {
        entity: String,
        contact: String,
    },
    TargetNotPath {
        peer: String,
        uri: String,
        advertised_in: Option<Cite>,
    },
    NeverConnected {
        entity: String,
        target: SocketAddr,
        peer: String,
        leg: LegRef,
        confirmed_by: Cite,
    },
    NeverConfirmed {
        leg: LegRef,
    },
    TriggerHidden {
        leg: LegRef,
        entity: String,
        trigger: HiddenTrigger,
    },
    /// Watched long enough after the trigger, and no link.
    LinkLate {
        entity: String,
        leg: LegRef,
        window: Time,
        trigger: TriggerSeen,
        watched: Time,
    },
    NeverOpenedLink {
        leg: LegRef,
        entity: String,
    },
    LinkWithoutTrigger {
        entity: String,
        leg: LegRef,
        available: Time,
        conn: Cite,
        trigger: TriggerSeen,
    },
    LinkBeforeTrigger {
        entity: String,
        leg: LegRef,
        available: Time,
        conn: Cite,
        early: Time,
        trigger: TriggerSeen,
    },
    LinkAfterWindow {
        entity: String,
        leg: LegRef,
        available: Time,
        conn: Cite,
        late: Time,
        window: Time,
        trigger: TriggerSeen,
    },
    LinkOnTrigger {
        entity: String,
        leg: LegRef,
        available: Time,
        conn: Cite,
        after: Time,
        trigger: TriggerSeen,
    },
    NoBindingRequest {
        entity: String,
        watched: Time,
    },
    RecordingEndsBeforeBind,
    BindLate {
        after: Time,
        allowed: Time,
    },
    BindNotSend,
    BindNoSession,
    ToPathNotPeers {
        to_path: String,
        peer: String,
        path: String,
        /// The link, when the check names it.
        link: Option<Link>,
    },
    FromPathNotOwn {
        from_path: String,
        entity: String,
        path: String,
    },
    Binds {
        conn: Cite,
    },
    RequestBeforeBind {
        entity: String,
    },
    ReuseShared {
        entity: String,
        sessions: Vec<String>,
        target: String,
        conns: Vec<Cite>,
    },
    NewConnectionWhileOpen {
        entity: String,
        sessions: Vec<String>,
        target: String,
        overlaps: Vec<Overlap>,
    },
    ConnectionPerSession {
        entity: String,
        target: String,
    },
    SharedWithoutReuse {
        entity: String,
        sessions: Vec<String>,
        target: String,
        conns: Vec<Cite>,
    },
    NoSessionsToCompare,

    // ------------------------------------------------------------ signalling
    SentBeforeCause {
        cause: SipStep,
        cause_leg: LegRef,
        cause_msg: Cite,
    },
    NeverSentDespiteCause {
        sender: String,
        step: SipStep,
        leg: LegRef,
        cause: SipStep,
        cause_leg: LegRef,
        cause_msg: Cite,
    },
    NeverSentNoCause {
        sender: String,
        step: SipStep,
        leg: LegRef,
        cause: SipStep,
        cause_leg: LegRef,
    },
    NeverSent {
        sender: String,
        step: SipStep,
        leg: LegRef,
    },
    NeverSent200Upstream,
    CfAnswerLate {
        figure: u8,
        first_200_3: Cite,
    },
    CfAnsweredAtOnce {
        figure: u8,
        first_200_3: Option<Cite>,
    },
    /// The first 200-3 reached x shortly before its 200-2, but too soon after INVITE2 for
    /// the order to say anything (within the race margin).
    CfOrderNotJudged {
        figure: u8,
        first_200_3: Cite,
        /// How long before the 200-2 the 200-3 came.
        gap: Time,
        /// How long after INVITE2 it came.
        after_invite2: Time,
        margin: Time,
    },
    CfAnswerWithoutMember {
        figure: u8,
    },
    CfAnswerEarly {
        figure: u8,
        first_200_3: Cite,
    },
    CfAnsweredAfterMember {
        figure: u8,
        first_200_3: Cite,
    },
    NeverAcked {
        entity: String,
        ok: Cite,
        leg: LegRef,
    },
    AckUpstreamHidden {
        ok: Cite,
    },
    AckWaitedForUpstream {
        ack: Cite,
        upstream_ack: Cite,
        ok: Cite,
    },
    AckOn200 {
        ok: Cite,
    },
    /// The ACK came after both the 200 and the upstream ACK, which came within the race
    /// margin of the 200 (or of `read`, the entity's first message after the 200, when it
    /// was read late): whether it waited for the upstream ACK cannot be told.
    AckOrderNotJudged {
        ok: Cite,
        upstream_ack: Cite,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read: Option<Cite>,
        gap: Time,
        margin: Time,
    },
    AckBeforeUpstream {
        ack: Cite,
        upstream_ack: Cite,
    },
    AckAfterUpstream {
        upstream_ack: Cite,
    },
    AckWithoutUpstream {
        ack: Cite,
    },
    NoInvite2,
    // ------------------------------------------------------------ SIG-NON2XX-ACK, SIG-DECLINE
    /// The INVITE sender ACKed the final non-2xx `response` hop by hop, as required.
    Non2xxAcked {
        response: Cite,
        ack: Cite,
    },
    /// No ACK with the INVITE's branch answered the final non-2xx `response` (RFC 3261
    /// §17.1.1.3).
    Non2xxNotAcked {
        response: Cite,
        entity: String,
    },
    /// The ACK of a non-2xx has another CSeq number than the INVITE, or another To tag than
    /// the response.
    Non2xxAckWrong {
        ack: Cite,
        what: String,
    },
    /// No final non-2xx to any INVITE the SUT sent: nothing for the hop-by-hop ACK.
    NoNon2xx,
    /// pf-b relayed the member's decline upstream: its final response to x's INVITE for the
    /// member is a non-2xx.
    DeclineRelayed {
        member: String,
        code: u16,
        response: Cite,
    },
    /// pf-b accepted x's INVITE for a member that declined (`response` is its 2xx).
    DeclineAccepted {
        member: String,
        decline: Cite,
        response: Cite,
    },
    /// pf-b gave x's INVITE for a member that declined no final response at all.
    DeclineNotRelayed {
        member: String,
        decline: Cite,
        watched: Time,
    },
    /// x answered 200-2 after a member's decline and before any member accepted, in a figure
    /// where it waits for the first 200-3 (FIG 2, 4, 5, 6).
    AnsweredOnDecline {
        answer: Cite,
        decline: Cite,
    },
    /// x waited for an accepting member before 200-2, whatever the decline.
    WaitedPastDecline {
        answer: Cite,
    },
    /// x ended a remaining member's leg (BYE or CANCEL) before the upstream BYE came.
    RemainingMemberEnded {
        member: String,
        request: Cite,
    },
    /// x kept every remaining member's leg until the upstream BYE.
    RemainingMembersKept {
        members: Vec<String>,
    },
    /// A link was opened for a leg whose member declined (no session exists).
    LinkForDeclinedLeg {
        member: String,
        conn: Cite,
    },
    /// No link was opened for the declined session of `member` by the SUT's pf-b serving it.
    NoLinkForDeclined {
        member: String,
        entity: String,
    },
    /// No member declined: nothing for SIG-DECLINE.
    NoDecline,
    /// pf-b gave up on a member that never answered: its final non-2xx to x's INVITE3.
    GaveUpOnMember {
        member: String,
        code: u16,
        response: Cite,
        after_ms: u64,
    },
    /// pf-b gave up, but only after the profile's `no-answer-wait-ms`.
    GaveUpLate {
        member: String,
        response: Cite,
        after_ms: u64,
        wait_ms: u64,
    },
    /// pf-b accepted x's INVITE3 for a member that never answered.
    UnansweredAccepted {
        member: String,
        invite: Cite,
        response: Cite,
    },
    /// pf-b never gave up on a member that never answered.
    NeverGaveUp {
        member: String,
        invite: Cite,
        watched: Time,
    },
    /// A client-b of the SUT's answered nothing at all to its INVITE.
    MemberNeverAnswered {
        member: String,
        invite: Cite,
    },
    /// No member left its INVITE unanswered: nothing for SIG-NO-ANSWER.
    NoUnanswered,
    /// Not every member declined: nothing for SIG-ALL-DECLINE.
    NotAllDeclined,
    /// `entity` took the refusal of its INVITE: no BYE in that dialog, no link after it.
    RefusalTaken {
        entity: String,
        response: Cite,
    },
    /// `entity` acted as if its refused INVITE had been accepted (`after`: its BYE or link).
    RefusalIgnored {
        entity: String,
        response: Cite,
        after: Cite,
    },
    // ------------------------------------------------------------ SIG-LEAVE
    /// No member left mid-transfer: nothing for SIG-LEAVE.
    NoLeave,
    /// `entity` released the leg of `member`, who left (`by`: its 200 to the member's BYE,
    /// or its own BYE once the member's link closed).
    LeftMemberReleased {
        member: String,
        entity: String,
        by: Cite,
    },
    /// `entity` never released the leg of `member`, who left (`cause`).
    LeftMemberNotReleased {
        member: String,
        entity: String,
        cause: Cite,
        watched: Time,
    },
    /// `entity` ended its leg from x for `member`, who left.
    LeavePropagated {
        member: String,
        entity: String,
        bye: Cite,
    },
    /// `entity` kept its leg from x for `member`, who left.
    LeaveNotPropagated {
        member: String,
        entity: String,
        watched: Time,
    },
    // ------------------------------------------------------------ MEDIA-REJECT
    /// No member refused the message: nothing for MEDIA-REJECT.
    NoRefusal,
    /// `entity` started no further chunk of the message `member` refused.
    RefusalHonoured {
        entity: String,
        member: String,
        refusal: Cite,
    },
    /// `entity` started another chunk of the message `member` refused.
    ContinuedAfterRefusal {
        entity: String,
        member: String,
        refusal: Cite,
        send: Cite,
    },
    /// `entity` released the leg of `member`, who refused the message.
    RefusingMemberReleased {
        entity: String,
        member: String,
        bye: Cite,
    },
    /// `entity` kept the leg of `member`, who refused the message, until the call ended.
    RefusingMemberKept {
        entity: String,
        member: String,
        watched: Time,
    },
    // ------------------------------------------------------------ MEDIA-REPORT
    /// The sender asked for no success REPORT: nothing for MEDIA-REPORT.
    NoReportAsked,
    /// `entity` asked downstream for the success REPORT its upstream asked for.
    ReportAskedDownstream {
        entity: String,
        chunk: Cite,
    },
    /// `entity` relayed a message whose upstream asked for a success REPORT without asking
    /// downstream for one.
    ReportNotAskedDownstream {
        entity: String,
        chunk: Cite,
    },
    /// `entity` received the whole message with `Success-Report: yes` and sent no success
    /// REPORT for it.
    ReportMissing {
        entity: String,
        content: Cite,
    },
    /// `entity`'s success REPORTs cover `covered` of the message's `total` octets.
    ReportPartial {
        entity: String,
        report: Cite,
        covered: u64,
        total: u64,
    },
    /// `entity`'s success REPORTs cover the whole message.
    ReportCovers {
        entity: String,
        report: Cite,
    },
    /// `entity` (reporting after delivery) sent its REPORT before the downstream one.
    ReportBeforeDelivery {
        entity: String,
        report: Cite,
        downstream: Cite,
    },
    /// `entity` (reporting after delivery) sent its REPORT although the downstream hop it
    /// relayed the whole message to never reported it.
    ReportWithoutDelivery {
        entity: String,
        report: Cite,
        downstream: Cite,
    },
    // ------------------------------------------------------------ MEDIA-NO-RESPONSE
    /// The sender asked for responses as usual: nothing for MEDIA-NO-RESPONSE.
    NoFailureReportNo,
    /// `entity` relayed the message with `Failure-Report: no`, as its upstream asked.
    FailureReportNoAskedDownstream {
        entity: String,
        chunk: Cite,
    },
    /// `entity` relayed the message without the `Failure-Report: no` its upstream asked.
    FailureReportNoNotAsked {
        entity: String,
        chunk: Cite,
    },
    /// `entity` answered a SEND that carried `Failure-Report: no`.
    ResponseDespiteFailureReportNo {
        entity: String,
        response: Cite,
    },
    /// `entity` answered none of the SENDs that carried `Failure-Report: no`.
    NoResponseAsAsked {
        entity: String,
        content: Cite,
    },
    // ------------------------------------------------------------ MEDIA-ABORT
    /// The sender aborted nothing: nothing for MEDIA-ABORT.
    NoAbort,
    /// `entity` ended its copy of the aborted message with `#`.
    AbortForwarded {
        entity: String,
        chunk: Cite,
    },
    /// `entity` ended its copy of the aborted message with `$`, as if it were complete.
    AbortForwardedAsEnd {
        entity: String,
        chunk: Cite,
    },
    /// `entity` left its copy of the aborted message unended (no `#`).
    AbortNotForwarded {
        entity: String,
        content: Cite,
    },
    /// The aborted message did not reach `member` whole.
    AbortedNotDelivered {
        member: String,
        bytes: u64,
    },
    /// The aborted message reached `member` as if it were whole.
    AbortedDelivered {
        member: String,
        bytes: u64,
    },

    /// `entity` refused its up leg with a final non-2xx once every member declined.
    UpstreamRefused {
        entity: String,
        response: Cite,
    },
    /// `entity`, which had answered its up leg, ended it with a BYE of its own.
    UpstreamEndedWithBye {
        entity: String,
        bye: Cite,
    },
    /// `entity` left its up leg open although nobody downstream was left.
    UpstreamLeftOpen {
        entity: String,
        /// Its answer (a 2xx) or the INVITE it never answered.
        answer: Cite,
        watched: Time,
    },
    NoInviteForMember {
        member: String,
        uri: String,
        serving: String,
        cause: FanoutCause,
    },
    InviteToWrongPfB {
        member: String,
        sent_to: String,
        serving: String,
    },
    DuplicateInvites {
        member: String,
        invites: Vec<Cite>,
    },
    /// client-a's INVITE1 or pf-a's INVITE2 is addressed as the group kind requires: the
    /// group URI (pre-defined) or the conference-factory URI with a resource list (ad-hoc).
    GroupRequestUri {
        uri: String,
        adhoc: bool,
    },
    /// It is addressed to `uri` instead of `want`.
    GroupRequestUriWrong {
        uri: String,
        want: String,
        adhoc: bool,
    },
    /// An ad-hoc request without a resource list (RFC 5366 §4).
    AdhocWithoutList {
        uri: String,
    },
    NotAMember {
        uri: String,
    },
    SipUnparsable {
        error: String,
    },
    /// A host the SUT wrote in a SIP URI or a Via sent-by that the RFC 3261 §25.1 grammar
    /// does not take (an IPv6 address without brackets, an unpaired bracket).
    SipHost {
        header: String,
        value: String,
        error: String,
    },
    NoViaBranch,
    BadViaBranch {
        branch: String,
    },
    MissingHeader {
        header: String,
    },
    FromNoTag,
    CseqUnreadable,
    CseqMethodMismatch {
        cseq: String,
        method: String,
    },
    InviteNoContact,
    OkNoToTag,
    NoContentLength,
    ContentLengthWrong {
        value: String,
        body: usize,
    },
    AckCseq {
        ack: u32,
        invite: u32,
    },
    AckReusesBranch,
    ByeCseq {
        bye: u32,
        invite: u32,
    },
    CallIdReused {
        call_id: String,
        first: Cite,
        again: Cite,
    },
    TagReused {
        entity: String,
        tag: String,
        invite: Cite,
    },
    BranchReused {
        entity: String,
        invite: Cite,
    },
    SipValid {
        count: usize,
    },
    NoCore,
    BypassedCore {
        to: SocketAddr,
        core: SocketAddr,
    },
    NoRecordRouteEcho,
    WrongRouteSet {
        got: Vec<String>,
        want: Vec<String>,
    },
    RoutedViaCore {
        count: usize,
        core: SocketAddr,
    },
    ByeBeforeDelivery {
        leg: LegRef,
        acknowledged: Time,
    },
    NoByeAfterDelivery {
        entity: String,
        leg: LegRef,
        acknowledged: Time,
    },
    ContentNeverAcknowledged {
        leg: LegRef,
    },
    ByeNotPropagated {
        entity: String,
        leg: LegRef,
        upstream: LegRef,
        bye: Cite,
    },
    NoUpstreamBye {
        leg: LegRef,
        upstream: LegRef,
    },
    NeverSentBye {
        entity: String,
        leg: LegRef,
    },
    ByeAnswered {
        bye: Cite,
    },
    ByeUnanswered,
    LinkNotClosed {
        leg: LegRef,
    },

    // ------------------------------------------------------------ media
    /// client-a sent other content than the file the profile pinned.
    SentOtherThanPinned {
        bytes: u64,
        sha256: String,
        pinned_bytes: u64,
        pinned_sha256: String,
    },
    NothingReceived {
        member: String,
        wire: WireDelivery,
    },
    DeliveryIncomplete {
        member: String,
        bytes: u64,
        sent: u64,
        wire: WireDelivery,
    },
    DeliveryLength {
        member: String,
        bytes: u64,
        sent: u64,
        wire: WireDelivery,
    },
    DeliveryDigest {
        member: String,
        sha256: String,
        sent: String,
        wire: WireDelivery,
    },
    Delivered {
        member: String,
        bytes: u64,
        sha256: String,
    },
    /// `analyze`: no member's hop is in the capture.
    DeliveryHiddenInCapture,
    /// `analyze`: how delivery was judged from the wire.
    DeliveryFromWire {
        sent: String,
    },
    PathHeaderUnparsable {
        error: String,
    },
    PathCount {
        to: usize,
        from: usize,
    },
    PathsNoSession {
        to_path: String,
        from_path: String,
    },
    ResponseToPath {
        to_path: String,
        request_from: String,
    },
    PathsNegotiated {
        count: usize,
    },
    /// An MSRP stream of the SUT that stops parsing at `offset` (WIRE-SYNTAX).
    MsrpSyntax {
        t: Time,
        sender: Endpoint,
        receiver: Endpoint,
        offset: u64,
        error: String,
    },
    /// Every SIP message and MSRP stream of the SUT parses.
    WireParses {
        sip: usize,
        msrp: usize,
    },
    HeaderOrder,
    ContentTypeNotLast,
    ContentTypeWithoutBody,
    TidReused {
        tid: String,
    },
    TidShort {
        tid: String,
    },
    BodyTooLarge {
        method: String,
        octets: u64,
    },
    ResponseWithoutRequest,
    NoMessageId,
    NoByteRange,
    ByteRangeUnparsable {
        value: String,
        error: String,
    },
    RangeStart {
        range: String,
    },
    RangeGap {
        range: String,
        next: u64,
    },
    RangeTotalChanged {
        range: String,
        total: u64,
    },
    RangeLength {
        range: String,
        octets: u64,
    },
    RangeNotInterruptible {
        range: String,
        octets: u64,
    },
    RangePastTotal {
        range: String,
    },
    RangeFinalShort {
        range: String,
        end: u64,
    },
    MsrpWellFormed {
        count: usize,
    },
    SendAnsweredNon200 {
        entity: String,
        send: Cite,
        response: Cite,
    },
    SendUnanswered {
        entity: String,
        send: Cite,
    },
    SendsAnswered {
        count: usize,
    },
    CpimValid,
    NotCpim {
        content_type: Option<String>,
    },
    CpimMissingHeader {
        header: String,
    },
    CpimNoInnerType,
    CpimHeadNeverEnds,
    CpimUnparsable {
        error: String,
    },
    ContentIncomplete {
        note: String,
    },
    NoUpstreamCopy,
    RelayedUnchanged,
    ContentTypeChanged {
        content_type: Option<String>,
    },
    ContentAltered {
        entity: String,
        upstream_sha256: String,
        /// CPIM headers that differ, as (before, after), `None` for no header.
        changed: Vec<(Option<String>, Option<String>)>,
    },
    /// `analyze --signalling-only`: links and media are not judged.
    SignallingOnly,

    // ------------------------------------------------------------ harness results
    CaptureVerdictDiffers {
        check: CheckId,
        live: Verdict,
        capture: Verdict,
    },
    CaptureMissingCheck {
        check: CheckId,
    },
    CaptureUnreadable {
        path: String,
        error: String,
    },
    AnalysisFailed {
        path: String,
        error: String,
    },
    HarnessError {
        error: String,
    },
    /// No check judged anything the SUT sent: the case cannot pass.
    NothingOfSutJudged {
        sut: Vec<Role>,
    },
    /// Against a running SUT: the previous case was not over on the wire.
    PreviousCaseNotOver {
        case: String,
        what: Vec<String>,
    },
    /// Against a running SUT: its process exited.
    SutExited {
        detail: String,
    },
}

fn join<T: fmt::Display>(v: &[T], sep: &str) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.iter()
            .map(|u| format!("<{u}>"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for WireDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireDelivery::Seen(v) => {
                let parts: Vec<String> = v.iter().map(|c| format!("on the wire: {c}")).collect();
                f.write_str(&parts.join("; "))
            }
            WireDelivery::Hidden { member, watched } => write!(
                f,
                "{member}'s hop is between SUT roles, so not recorded (watched until {watched})"
            ),
            WireDelivery::Nothing { member, watched } => write!(
                f,
                "no content reached {member} on the recorded links (watched until {watched})"
            ),
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FindingKind as K;
        match self {
            K::NoneInSplit { what, sut } => {
                if sut.is_empty() {
                    write!(f, "{what}: none in this split (self-check)")
                } else {
                    write!(
                        f,
                        "{what}: none in this split (SUT plays {}; hops between SUT roles are not recorded)",
                        sut.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                    )
                }
            }
            K::NothingToCheck => f.write_str("nothing in this split to check"),
            K::More { count } => write!(f, "… and {count} more"),
            K::Seen => Ok(()),
            K::NotPlayedBySut { entity } => write!(f, "{entity} is not played by the SUT"),
            K::NoDialog { leg } => write!(f, "{leg}: no dialog"),
            K::No200 { leg, entity } => write!(f, "{leg}: no 200 OK reached {entity}"),
            K::NoMembers => f.write_str("the group has no members"),

            K::NeverSentInvite { entity, leg } => {
                write!(f, "{entity} never sent its INVITE on {leg}")
            }
            K::NothingToAnswer { entity, leg } => {
                write!(f, "no INVITE on {leg}: {entity} had nothing to answer")
            }
            K::NeverAnswered { entity, leg } => write!(f, "{entity} never answered 200 on {leg}"),
            K::NoSdp => f.write_str("carries no SDP (see SDP-PLACE)"),
            K::SdpUnparsedElsewhere { error } => {
                write!(f, "SDP does not parse (see SDP-MEDIA): {error}")
            }
            K::SdpLineInvalid { error } => f.write_str(error),
            K::SdpUnparsable { error } => write!(f, "SDP does not parse: {error}"),
            K::NoMessageMedia => f.write_str("no m=message section (see SDP-MEDIA)"),
            K::NoReadableSdp => f.write_str("no readable SDP (see SDP-MEDIA, SDP-PLACE)"),
            K::MessageMediaCount { count } => {
                write!(f, "{count} m=message lines (exactly one needed)")
            }
            K::WrongProto { mline } => {
                write!(f, "`{mline}`: proto must be TCP/MSRP or TCP/TLS/MSRP")
            }
            K::WrongFormats { mline } => write!(f, "`{mline}`: the format list must be `*`"),
            K::PortZero { mline } => write!(f, "`{mline}`: port 0 rejects the stream"),
            K::MediaMismatch { answer, offer } => write!(
                f,
                "answer m-lines {answer:?} differ from the offer's {offer:?} (RFC 3264 §6)"
            ),
            K::OneMsrpMedia => f.write_str("one m=message TCP/MSRP *"),
            K::NoConnectionLine => {
                f.write_str("no c= line at session or media level (RFC 8866 §5.7)")
            }
            K::ConnectionNotIp { line } => write!(f, "`{line}`: not an IP address"),
            K::ConnectionTypeMismatch { line } => {
                write!(f, "`{line}`: address type does not match the address")
            }
            K::ConnectionOwn { line, entity } => write!(f, "`{line}` is {entity}'s"),
            K::ConnectionNotOwn {
                line,
                entity,
                listener,
            } => write!(
                f,
                "`{line}` is not an address {entity} uses for MSRP (it listens at {})",
                listener
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
            K::NoReadablePath => f.write_str("no readable a=path (see SDP-PATH)"),
            K::PortMatchesPath { port } => write!(f, "m= port {port} = a=path port"),
            K::ActivePort9 => {
                f.write_str("m= port 9 with a=setup:active (RFC 4145 §4.1, RFC 6135 §4.2.2)")
            }
            K::PortMismatch { mline, uri, port } => write!(
                f,
                "`{mline}` but a=path {uri} has port {port} (RFC 4975 §8.1)"
            ),
            K::MissingAttribute { attr } => {
                let rfc = match attr.as_str() {
                    "path" => "RFC 4975 §8.2",
                    "accept-types" => "RFC 4975 §8.6",
                    _ => "RFC 4975 §8",
                };
                write!(f, "no a={attr} ({rfc})")
            }
            K::PathUnparsable { value, error } => write!(f, "`a=path:{value}`: {error}"),
            K::PathTransport { uri, transport } => write!(
                f,
                "{uri}: transport `;{transport}` (need `;tcp`, RFC 4975 §6)"
            ),
            K::PathSchemeMismatch { uri, proto } => {
                write!(f, "{uri}: scheme does not match `{proto}`")
            }
            K::PathValid { value } => write!(f, "`a=path:{value}`"),
            K::PathCopied {
                uri,
                entity,
                received_in,
            } => write!(
                f,
                "a=path {uri} repeats a URI or session-id {entity} received in {received_in}"
            ),
            K::PathNotOwnAddress { uri, entity, ip } => write!(
                f,
                "own URI {uri} is not {entity}'s address ({})",
                ip.map(|i| i.to_string()).unwrap_or_default()
            ),
            K::PathNotOwnPort { uri, entity, port } => write!(
                f,
                "own URI {uri} is not {entity}'s MSRP port ({})",
                port.unwrap_or_default()
            ),
            K::NoSessionId { uri } => write!(f, "own URI {uri} has no session-id"),
            K::PathOwn { entity } => write!(f, "a=path is {entity}'s own"),
            K::SessionIdClash {
                session_id,
                also_in,
            } => write!(f, "session-id `{session_id}` also appears in {also_in}"),
            K::SessionIdInEarlierCase { session_id, case } => write!(
                f,
                "session-id `{session_id}` was the SUT's in an earlier case of the run too ({case})"
            ),
            K::SessionIdWeak { session_id, bits } => write!(
                f,
                "session-id `{session_id}` holds about {bits} bits (≥ 64 needed, RFC 4975 §14.1)"
            ),
            K::SessionIdUnique { session_id } => write!(f, "session-id `{session_id}` unique"),
            K::AcceptTypes { value } => write!(f, "`a=accept-types:{value}`"),
            K::AcceptTypesEmpty => f.write_str("`a=accept-types:` is empty (RFC 4975 §8.6)"),
            K::AcceptTypesNoCpim { value } => {
                write!(f, "`a=accept-types:{value}` does not admit message/cpim")
            }
            K::SetupUnknown { value } => write!(
                f,
                "`a=setup:{value}` is not active/passive/actpass/holdconn"
            ),
            K::SetupImplicit { setup } => write!(
                f,
                "{setup} in setup: sdp mode (RFC 6135 §4.2.1 requires an explicit value)"
            ),
            K::SetupPassiveOffer { setup } => {
                write!(f, "offer says {setup} (RFC 6135 §4.2.1, §4.2.2)")
            }
            K::SetupOfferBlocksAnswerer {
                setup,
                answerer,
                link,
            } => write!(
                f,
                "offer says {setup}: only actpass lets the answerer {answerer} open {link:?} (RFC 4145 §4.1)"
            ),
            K::SetupActpassAnswer { setup } => {
                write!(f, "answer says {setup} (RFC 4145 §4.1, RFC 6135 §4.2.2)")
            }
            K::SetupDisagreesWithPreset {
                setup,
                opener,
                link,
            } => write!(
                f,
                "{setup} disagrees with the preset: {opener} opens {link:?}"
            ),
            K::SetupInvalidPair { offer, answer, why } => write!(
                f,
                "offer {offer}, answer {answer}: {why} (RFC 4145 §4.1)"
            ),
            K::SetupWrongOpener {
                offer,
                answer,
                opener,
                link,
                figure,
                expected,
            } => write!(
                f,
                "offer {offer}, answer {answer} make {opener} open {link:?}; {figure} gives it to {expected}"
            ),
            K::SetupValid { setup } => write!(f, "{setup}"),
            K::CarriesParams { entity } => write!(f, "carries {entity}'s MSRP parameters"),
            K::NoParams { rule } => write!(
                f,
                "carries no MSRP parameters (no SDP with m=message); {rule}"
            ),

            K::LinkOffChain { opener } => write!(
                f,
                "opened by {opener} towards an entity on no link of the chain"
            ),
            K::LinkOpenedBy { link, opener } => write!(f, "{link:?} opened by {opener}"),
            K::LinkOpenedByWrongSide {
                link,
                opener,
                figure,
                expected,
            } => write!(
                f,
                "{opener} opened {link:?}; {figure} gives {link:?} to {expected}"
            ),
            K::LinkOpenedByPeer {
                leg,
                opener,
                figure,
                expected,
            } => write!(
                f,
                "{leg} was opened by {opener}; {figure} gives it to {expected}, which never opened it"
            ),
            K::NeverOpened {
                entity,
                leg,
                confirmed_by,
            } => write!(
                f,
                "{entity} never opened {leg} although the dialog was confirmed by {confirmed_by}"
            ),
            K::NeverConfirmedNoLink { leg, entity } => write!(
                f,
                "{leg}: the dialog was never confirmed, so {entity} had no link to open"
            ),
            K::ConnectedToUnadvertised { entity } => {
                write!(f, "{entity} connected to an address no entity advertised")
            }
            K::TargetAdvertised { by } => write!(f, "advertised by {by}"),
            K::NoPathObserved { peer, entity } => {
                write!(f, "no a=path of {peer} towards {entity} was observed")
            }
            K::WrongTarget {
                peer,
                advertised,
                sip_port,
            } => {
                write!(
                    f,
                    "{peer} advertised {} (leftmost a=path, RFC 4975 §5.4)",
                    join(advertised, ", ")
                )?;
                if *sip_port {
                    f.write_str("; the target is a SIP port and no SIP went over it")?;
                }
                Ok(())
            }
            K::PeerNoPath { peer } => write!(f, "{peer} advertised no readable a=path on its dialog"),
            K::TargetIsPath { peer, uri } => write!(f, "{peer} advertised {uri}"),
            K::TlsLink { opener, version } => {
                write!(f, "{opener} opened the link and started its {version} session")
            }
            K::PlainWhereTls { opener, uri } => write!(
                f,
                "{opener} connected over plain TCP where TLS was negotiated ({uri}, TCP/TLS/MSRP; \
                 RFC 4975 §14)"
            ),
            K::PlainAsNegotiated { opener } => write!(
                f,
                "{opener} opened the link over plain TCP, as its TCP/MSRP session negotiated"
            ),
            K::TlsWherePlain { opener, version } => write!(
                f,
                "{opener} started {version} on the link of a plain TCP/MSRP session (msrp: URIs)"
            ),
            K::TlsHandshakeFailed {
                opener,
                target,
                sip,
                reason,
            } => write!(
                f,
                "the TLS handshake of {opener}'s {} to {target} failed, no {} could flow: \
                 {reason}",
                if *sip { "SIP connection" } else { "link" },
                if *sip { "SIP" } else { "MSRP" },
            ),
            K::SipOverTls { entity, count } => write!(
                f,
                "{entity} sent its {count} SIP {} over TLS, as configured",
                if *count == 1 { "message" } else { "messages" }
            ),
            K::SipPlainWhereTls { entity, transport } => write!(
                f,
                "{entity} sent SIP over plain {transport} where SIP over TLS was configured \
                 (RFC 3261 §26.2)"
            ),
            K::SipsOverPlain {
                entity,
                uri,
                transport,
            } => write!(
                f,
                "{entity} sent a request to the SIPS URI {uri} over {transport}; a SIPS URI is \
                 reached over TLS only (RFC 3261 §26.2.2)"
            ),
            K::ContactNotSips { entity, contact } => write!(
                f,
                "{entity} sent an INVITE to a SIPS URI with the Contact {contact}, not a SIPS URI \
                 (RFC 3261 §8.1.1.8)"
            ),
            K::TlsStartedByTarget { opener, client } => write!(
                f,
                "{opener} opened the link but {client} started the TLS handshake (the opener is \
                 the TLS client, RFC 4975 §14)"
            ),
            K::TargetNotPath {
                peer,
                uri,
                advertised_in,
            } => write!(
                f,
                "{peer} advertised {uri} (leftmost a=path in {}, RFC 4975 §5.4)",
                advertised_in
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default()
            ),
            K::NeverConnected {
                entity,
                target,
                peer,
                leg,
                confirmed_by,
            } => write!(
                f,
                "{entity} never connected to {target}, which {peer} advertised on {leg} (dialog confirmed {confirmed_by})"
            ),
            K::NeverConfirmed { leg } => write!(f, "{leg}: the dialog was never confirmed"),
            K::TriggerHidden {
                leg,
                entity,
                trigger,
            } => write!(
                f,
                "{leg}: {entity}'s trigger ({}) went between SUT roles",
                match trigger {
                    HiddenTrigger::UpstreamAck => "the upstream ACK",
                    HiddenTrigger::FirstUpstreamSend => "the first upstream SEND",
                }
            ),
            K::LinkLate {
                entity,
                leg,
                window,
                trigger,
                watched,
            } => write!(
                f,
                "{entity} did not open {leg}'s link within {window} of its trigger ({trigger}); watched until {watched}"
            ),
            K::NeverOpenedLink { leg, entity } => {
                write!(f, "{leg}: {entity} never opened its link (see LINK-DIR)")
            }
            K::LinkWithoutTrigger {
                entity,
                leg,
                available,
                conn,
                trigger,
            } => write!(
                f,
                "{entity} made {leg}'s link available at {available} ({conn}) without its trigger: {trigger}"
            ),
            K::LinkBeforeTrigger {
                entity,
                leg,
                available,
                conn,
                early,
                trigger,
            } => write!(
                f,
                "{entity} made {leg}'s link available at {available} ({conn}), {early} before its trigger: {trigger}"
            ),
            K::LinkAfterWindow {
                entity,
                leg,
                available,
                conn,
                late,
                window,
                trigger,
            } => write!(
                f,
                "{entity} made {leg}'s link available at {available} ({conn}), {late} after its trigger ({trigger}); allowed {window}"
            ),
            K::LinkOnTrigger {
                entity,
                leg,
                available,
                conn,
                after,
                trigger,
            } => write!(
                f,
                "{entity} made {leg}'s link available at {available} ({conn}), {after} after its trigger ({trigger})"
            ),
            K::NoBindingRequest { entity, watched } => write!(
                f,
                "{entity} sent no request on the connection it opened (watched until {watched}; RFC 4975 §5.4: at once)"
            ),
            K::RecordingEndsBeforeBind => {
                f.write_str("the recording ends before a binding SEND was due")
            }
            K::BindLate { after, allowed } => write!(
                f,
                "{after} after the opening (RFC 4975 §5.4: at once; allowed {allowed})"
            ),
            K::BindNotSend => f.write_str("the first request is not a SEND"),
            K::BindNoSession => {
                f.write_str("its To-Path names no session negotiated with the peer")
            }
            K::ToPathNotPeers {
                to_path,
                peer,
                path,
                link,
            } => {
                write!(f, "To-Path `{to_path}` is not {peer}'s a=path `{path}`")?;
                if let Some(l) = link {
                    write!(f, " on {l:?}")?;
                }
                Ok(())
            }
            K::FromPathNotOwn {
                from_path,
                entity,
                path,
            } => write!(f, "From-Path `{from_path}` is not {entity}'s a=path `{path}`"),
            K::Binds { conn } => write!(f, "binds {conn}"),
            K::RequestBeforeBind { entity } => write!(
                f,
                "{entity} sent a request on a connection its peer opened before the peer bound it"
            ),
            K::ReuseShared {
                entity,
                sessions,
                target,
                conns,
            } => write!(
                f,
                "{entity}: sessions {} towards {target} over {}",
                sessions.join(", "),
                join(conns, "; ")
            ),
            K::NewConnectionWhileOpen {
                entity,
                sessions,
                target,
                overlaps,
            } => write!(
                f,
                "{entity}: sessions {} towards {target} with reuse declared (RFC 4975 §5.4): {}",
                sessions.join(", "),
                overlaps
                    .iter()
                    .map(|o| format!("{} while {} was still open", o.opened, o.still_open))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            K::ConnectionPerSession { entity, target } => {
                write!(f, "{entity}: one connection per session towards {target}")
            }
            K::SharedWithoutReuse {
                entity,
                sessions,
                target,
                conns,
            } => write!(
                f,
                "{entity}: sessions {} towards {target} share connections without reuse declared: {}",
                sessions.join(", "),
                join(conns, "; ")
            ),
            K::NoSessionsToCompare => f.write_str(
                "no two sessions opened by the SUT towards one host:port were observed",
            ),

            K::SentBeforeCause {
                cause,
                cause_leg,
                cause_msg,
            } => write!(f, "sent before {cause} on {cause_leg} {cause_msg} arrived"),
            K::NeverSentDespiteCause {
                sender,
                step,
                leg,
                cause,
                cause_leg,
                cause_msg,
            } => write!(
                f,
                "{sender}'s {step} on {leg} was never sent although {cause} on {cause_leg} came: {cause_msg}"
            ),
            K::NeverSentNoCause {
                sender,
                step,
                leg,
                cause,
                cause_leg,
            } => write!(
                f,
                "{sender}'s {step} on {leg}: never sent, but {cause} on {cause_leg} never came either"
            ),
            K::NeverSent { sender, step, leg } => {
                write!(f, "{sender}'s {step} on {leg} was never sent")
            }
            K::NeverSent200Upstream => f.write_str("x never sent 200-2 (see SIG-SEQ)"),
            K::CfAnswerLate {
                figure,
                first_200_3,
            } => write!(
                f,
                "figure {figure}: x must answer at once, but answered after the first 200-3 {first_200_3}"
            ),
            K::CfAnsweredAtOnce {
                figure,
                first_200_3,
            } => {
                write!(f, "figure {figure}: before any 200-3")?;
                if let Some(c) = first_200_3 {
                    write!(f, " (first {c})")?;
                }
                Ok(())
            }
            K::CfOrderNotJudged {
                figure,
                first_200_3,
                gap,
                after_invite2,
                margin,
            } => write!(
                f,
                "figure {figure}: the first 200-3 {first_200_3} came {gap} before this 200-2 and {after_invite2} after INVITE2, within the {margin} race margin: order not judged"
            ),
            K::CfAnswerWithoutMember { figure } => write!(
                f,
                "figure {figure}: x must wait for a member, but answered with no 200-3 at all"
            ),
            K::CfAnswerEarly {
                figure,
                first_200_3,
            } => write!(
                f,
                "figure {figure}: x must wait for the first 200-3, but answered before {first_200_3}"
            ),
            K::CfAnsweredAfterMember {
                figure,
                first_200_3,
            } => write!(f, "figure {figure}: after the first 200-3 {first_200_3}"),
            K::NeverAcked { entity, ok, leg } => {
                write!(f, "{entity} never ACKed {ok} on {leg}")
            }
            K::AckUpstreamHidden { ok } => {
                write!(f, "ACKs {ok} (the upstream ACK is not observable)")
            }
            K::AckWaitedForUpstream {
                ack,
                upstream_ack,
                ok,
            } => write!(
                f,
                "ACK timing on-200: {ack} waited for the upstream ACK {upstream_ack} instead of answering {ok}"
            ),
            K::AckOn200 { ok } => write!(f, "on the 200 {ok}"),
            K::AckOrderNotJudged {
                ok,
                upstream_ack,
                read: None,
                gap,
                margin,
            } => write!(
                f,
                "after the 200 {ok} and the upstream ACK {upstream_ack}, which came {gap} after the 200, within the {margin} race margin: whether it waited is not judged"
            ),
            K::AckOrderNotJudged {
                ok,
                upstream_ack,
                read: Some(read),
                gap,
                margin,
            } => write!(
                f,
                "after the 200 {ok}, read late (the entity's first message after it: {read}), and the upstream ACK {upstream_ack}, which came {gap} after that, within the {margin} race margin: whether it waited is not judged"
            ),
            K::AckBeforeUpstream { ack, upstream_ack } => write!(
                f,
                "ACK timing after-ack: {ack} came before the upstream ACK {upstream_ack}"
            ),
            K::AckAfterUpstream { upstream_ack } => {
                write!(f, "after the upstream ACK {upstream_ack}")
            }
            K::AckWithoutUpstream { ack } => write!(
                f,
                "ACK timing after-ack: {ack} although no upstream ACK came"
            ),
            K::NoInvite2 => f.write_str("x never received INVITE2"),
            K::NoInviteForMember {
                member,
                uri,
                serving,
                cause,
            } => {
                write!(
                    f,
                    "x sent no INVITE for member {member} ({uri}) to {serving} ("
                )?;
                match cause {
                    FanoutCause::WatchedUntil(t) => write!(f, "watched until {t}")?,
                    FanoutCause::AfterInvite2(c) => write!(f, "after INVITE2 {c}")?,
                }
                f.write_str(")")
            }
            K::InviteToWrongPfB {
                member,
                sent_to,
                serving,
            } => write!(
                f,
                "the INVITE for {member} went to {sent_to} but {serving} serves {member}"
            ),
            K::Non2xxAcked { response, ack } => {
                write!(f, "{response} ACKed hop by hop with the INVITE's branch: {ack}")
            }
            K::Non2xxNotAcked { response, entity } => write!(
                f,
                "{entity} never ACKed the final non-2xx {response} (RFC 3261 §17.1.1.3: an ACK \
                 with the INVITE's branch)"
            ),
            K::Non2xxAckWrong { ack, what } => {
                write!(f, "the ACK of a non-2xx {ack}: {what} (RFC 3261 §17.1.1.3)")
            }
            K::NoNon2xx => f.write_str("no INVITE of the SUT was answered with a final non-2xx"),
            K::DeclineRelayed {
                member,
                code,
                response,
            } => write!(f, "{member}'s decline relayed upstream as {code}: {response}"),
            K::DeclineAccepted {
                member,
                decline,
                response,
            } => write!(
                f,
                "member {member} declined ({decline}), yet its pf-b accepted x's INVITE for it: \
                 {response}"
            ),
            K::DeclineNotRelayed {
                member,
                decline,
                watched,
            } => write!(
                f,
                "member {member} declined ({decline}), and its pf-b sent no final response to \
                 x's INVITE for it (watched until {watched})"
            ),
            K::AnsweredOnDecline { answer, decline } => write!(
                f,
                "x answered 200-2 {answer} on a member's decline {decline}, before any member \
                 accepted (it answers on the first 200-3)"
            ),
            K::WaitedPastDecline { answer } => {
                write!(f, "x answered 200-2 only once a member accepted: {answer}")
            }
            K::RemainingMemberEnded { member, request } => write!(
                f,
                "x ended the leg of remaining member {member} before the upstream BYE: {request}"
            ),
            K::RemainingMembersKept { members } => write!(
                f,
                "x kept the legs of the remaining members ({}) until the upstream BYE",
                members.join(", ")
            ),
            K::LinkForDeclinedLeg { member, conn } => write!(
                f,
                "a link was opened for the session of member {member}, who declined it: {conn}"
            ),
            K::NoLinkForDeclined { member, entity } => write!(
                f,
                "{entity} opened no link for the session member {member} declined"
            ),
            K::NoDecline => f.write_str("no member declined"),
            K::GaveUpOnMember {
                member,
                code,
                response,
                after_ms,
            } => write!(
                f,
                "{member} never answered; its pf-b gave up after {after_ms} ms with {code}: \
                 {response}"
            ),
            K::GaveUpLate {
                member,
                response,
                after_ms,
                wait_ms,
            } => write!(
                f,
                "{member} never answered; its pf-b gave up only after {after_ms} ms, past \
                 no-answer-wait-ms ({wait_ms} ms): {response} (RFC 3261 §17.1.1.2)"
            ),
            K::UnansweredAccepted {
                member,
                invite,
                response,
            } => write!(
                f,
                "{member} never answered {invite}, yet its pf-b accepted x's INVITE for it: \
                 {response}"
            ),
            K::NeverGaveUp {
                member,
                invite,
                watched,
            } => write!(
                f,
                "{member} never answered {invite}, and its pf-b never gave up on it: no final \
                 response to x's INVITE for it (watched until {watched}; RFC 3261 §17.1.1.2 \
                 Timer B)"
            ),
            K::MemberNeverAnswered { member, invite } => write!(
                f,
                "{member} (the SUT's client-b) sent nothing at all to {invite}: a UAS answers \
                 every INVITE (RFC 3261 §13.3.1)"
            ),
            K::NoUnanswered => f.write_str("every member answered its INVITE"),
            K::NotAllDeclined => f.write_str("not every member declined"),
            K::RefusalTaken { entity, response } => write!(
                f,
                "{entity} took the refusal {response}: no BYE, no link in a call that never was"
            ),
            K::RefusalIgnored {
                entity,
                response,
                after,
            } => write!(
                f,
                "{entity} went on after the refusal {response} as if accepted: {after}"
            ),
            K::NoAbort => f.write_str("the sender aborted no message"),
            K::NoReportAsked => f.write_str("the sender asked for no success REPORT"),
            K::ReportAskedDownstream { entity, chunk } => write!(
                f,
                "{entity} asked downstream for the success REPORT its upstream asked for: {chunk}"
            ),
            K::ReportNotAskedDownstream { entity, chunk } => write!(
                f,
                "{entity} relayed the message without the `Success-Report: yes` its upstream \
                 sent: {chunk} (RFC 4975 §7.1.2)"
            ),
            K::ReportMissing { entity, content } => write!(
                f,
                "{entity} received the whole message with `Success-Report: yes` and sent no \
                 success REPORT for it: {content} (RFC 4975 §7.1.2)"
            ),
            K::ReportPartial {
                entity,
                report,
                covered,
                total,
            } => write!(
                f,
                "{entity}'s success REPORTs cover {covered} of the message's {total} octets: \
                 {report} (RFC 4975 §7.1.2)"
            ),
            K::ReportCovers { entity, report } => write!(
                f,
                "{entity} reported the whole message delivered: {report}"
            ),
            K::ReportBeforeDelivery {
                entity,
                report,
                downstream,
            } => write!(
                f,
                "{entity} reported delivery before its downstream did, where the profile \
                 declares report-timing: after-delivery: {report}; downstream {downstream}"
            ),
            K::ReportWithoutDelivery {
                entity,
                report,
                downstream,
            } => write!(
                f,
                "{entity} reported delivery that its downstream never reported, where the \
                 profile declares report-timing: after-delivery: {report}; relayed {downstream}"
            ),
            K::NoFailureReportNo => f.write_str("the sender did not send `Failure-Report: no`"),
            K::FailureReportNoAskedDownstream { entity, chunk } => write!(
                f,
                "{entity} relayed the message with `Failure-Report: no`: {chunk}"
            ),
            K::FailureReportNoNotAsked { entity, chunk } => write!(
                f,
                "{entity} relayed the message without the `Failure-Report: no` its upstream \
                 sent: {chunk} (RFC 4975 §7.1.2)"
            ),
            K::ResponseDespiteFailureReportNo { entity, response } => write!(
                f,
                "{entity} answered a SEND that carried `Failure-Report: no`: {response} \
                 (RFC 4975 §7.1.1, §7.1.2)"
            ),
            K::NoResponseAsAsked { entity, content } => write!(
                f,
                "{entity} sent no response to the SENDs with `Failure-Report: no`: {content}"
            ),
            K::NoRefusal => f.write_str("no member refused the message"),
            K::RefusalHonoured {
                entity,
                member,
                refusal,
            } => write!(
                f,
                "{entity} sent no further chunk of the message {member} refused: {refusal}"
            ),
            K::ContinuedAfterRefusal {
                entity,
                member,
                refusal,
                send,
            } => write!(
                f,
                "{entity} went on sending the message {member} refused ({refusal}): {send} \
                 (RFC 4975 §7.1.2)"
            ),
            K::RefusingMemberReleased {
                entity,
                member,
                bye,
            } => write!(
                f,
                "{entity} released the leg of {member}, who refused the message: {bye}"
            ),
            K::RefusingMemberKept {
                entity,
                member,
                watched,
            } => write!(
                f,
                "{member} refused the message, yet {entity} kept its leg until the call ended \
                 (watched until {watched})"
            ),
            K::NoLeave => f.write_str("no member left mid-transfer"),
            K::LeftMemberReleased { member, entity, by } => {
                write!(f, "{entity} released the leg of {member}, who left: {by}")
            }
            K::LeftMemberNotReleased {
                member,
                entity,
                cause,
                watched,
            } => write!(
                f,
                "member {member} left ({cause}), yet {entity} never released its leg (no BYE \
                 answered or sent; watched until {watched})"
            ),
            K::LeavePropagated {
                member,
                entity,
                bye,
            } => write!(f, "{entity} ended its leg from x for {member}, who left: {bye}"),
            K::LeaveNotPropagated {
                member,
                entity,
                watched,
            } => write!(
                f,
                "member {member} left, yet {entity} kept its leg from x for it (no BYE to x; \
                 watched until {watched})"
            ),
            K::AbortForwarded { entity, chunk } => {
                write!(f, "{entity} forwarded the abort: {chunk} ends with `#`")
            }
            K::AbortForwardedAsEnd { entity, chunk } => write!(
                f,
                "{entity} ended its copy of an aborted message with `$`, as if it were complete: \
                 {chunk} (RFC 4975 §7.1.1)"
            ),
            K::AbortNotForwarded { entity, content } => write!(
                f,
                "{entity} never ended its copy of the aborted message with `#`: {content}"
            ),
            K::AbortedNotDelivered { member, bytes } => write!(
                f,
                "member {member} was not given the aborted message as delivered ({bytes} octets)"
            ),
            K::AbortedDelivered { member, bytes } => write!(
                f,
                "member {member} was given the aborted message as delivered ({bytes} octets)"
            ),

            K::UpstreamRefused { entity, response } => write!(
                f,
                "{entity} refused its upstream INVITE once every member declined: {response}"
            ),
            K::UpstreamEndedWithBye { entity, bye } => write!(
                f,
                "{entity} ended its answered upstream leg with a BYE of its own once every \
                 member declined: {bye}"
            ),
            K::UpstreamLeftOpen {
                entity,
                answer,
                watched,
            } => write!(
                f,
                "every member declined, yet {entity} neither refused nor ended its upstream leg \
                 ({answer}; watched until {watched})"
            ),
            K::DuplicateInvites { member, invites } => write!(
                f,
                "x sent {} INVITE dialogs for member {member}: {}",
                invites.len(),
                join(invites, "; ")
            ),
            K::GroupRequestUri { uri, adhoc: true } => write!(
                f,
                "ad-hoc request to the conference-factory URI {uri} with a resource list"
            ),
            K::GroupRequestUri { uri, adhoc: false } => {
                write!(f, "pre-defined group request to the group URI {uri}")
            }
            K::GroupRequestUriWrong {
                uri,
                want,
                adhoc: true,
            } => write!(
                f,
                "ad-hoc request to {uri} instead of the conference-factory URI {want} (RFC 5366 §4)"
            ),
            K::GroupRequestUriWrong {
                uri,
                want,
                adhoc: false,
            } => write!(
                f,
                "pre-defined group request to {uri} instead of the group URI {want}"
            ),
            K::AdhocWithoutList { uri } => write!(
                f,
                "ad-hoc request to {uri} without a resource list (RFC 5366 §4)"
            ),
            K::NotAMember { uri } => write!(f, "{uri} is not a member of the group"),
            K::SipUnparsable { error } => write!(f, "does not parse: {error}"),
            K::SipHost {
                header,
                value,
                error,
            } => write!(
                f,
                "{header} `{value}`: {error} (RFC 3261 §25.1, RFC 5118 §4.2)"
            ),
            K::NoViaBranch => f.write_str("no Via branch (RFC 3261 §8.1.1.7)"),
            K::BadViaBranch { branch } => write!(
                f,
                "Via branch `{branch}` does not start with z9hG4bK (RFC 3261 §8.1.1.7)"
            ),
            K::MissingHeader { header } => {
                write!(f, "no {header} header (RFC 3261 §8.1.1)")
            }
            K::FromNoTag => f.write_str("From has no tag (RFC 3261 §8.1.1.3)"),
            K::CseqUnreadable => f.write_str("CSeq unreadable"),
            K::CseqMethodMismatch { cseq, method } => {
                write!(f, "CSeq method {cseq} ≠ request method {method}")
            }
            K::InviteNoContact => f.write_str("INVITE without Contact (RFC 3261 §8.1.1.8)"),
            K::OkNoToTag => f.write_str("2xx without a To tag (RFC 3261 §12.1.1)"),
            K::NoContentLength => f.write_str("no Content-Length over TCP (RFC 3261 §18.3)"),
            K::ContentLengthWrong { value, body } => write!(
                f,
                "Content-Length {value} but the body has {body} octets (RFC 3261 §18.3)"
            ),
            K::AckCseq { ack, invite } => write!(
                f,
                "ACK CSeq {ack} ≠ INVITE CSeq {invite} (RFC 3261 §13.2.2.4)"
            ),
            K::AckReusesBranch => f.write_str(
                "the ACK of a 2xx reuses the INVITE's branch (RFC 3261 §13.2.2.4)",
            ),
            K::ByeCseq { bye, invite } => write!(
                f,
                "BYE CSeq {bye} not above the INVITE's {invite} (RFC 3261 §12.2.1.1)"
            ),
            K::CallIdReused {
                call_id,
                first,
                again,
            } => write!(
                f,
                "Call-ID `{call_id}` of {first} is reused by {again} (each leg is its own dialog, RFC 3261 §12)"
            ),
            K::TagReused {
                entity,
                tag,
                invite,
            } => write!(
                f,
                "{entity} reuses tag `{tag}` of its upstream dialog in {invite}"
            ),
            K::BranchReused { entity, invite } => {
                write!(f, "{entity} reuses the upstream Via branch in {invite}")
            }
            K::SipValid { count } => write!(
                f,
                "{count} SIP messages of the SUT: own dialog per leg, headers valid"
            ),
            K::NoCore => f.write_str(
                "no SIP/IP core in this run (`run --core kamailio` puts one between the entities)",
            ),
            K::BypassedCore { to, core } => write!(
                f,
                "sent straight to {to}, bypassing the SIP/IP core at {core}"
            ),
            K::NoRecordRouteEcho => f.write_str(
                "the 2xx does not echo the Record-Route the core added to the INVITE (RFC 3261 §12.1.1)",
            ),
            K::WrongRouteSet { got, want } => write!(
                f,
                "Route {} but the dialog's route set is {} (RFC 3261 §12.2.1.1)",
                list_or_none(got),
                list_or_none(want)
            ),
            K::RoutedViaCore { count, core } => write!(
                f,
                "{count} SIP messages sent via the core at {core}; ACK and BYE on the recorded route set"
            ),
            K::ByeBeforeDelivery { leg, acknowledged } => write!(
                f,
                "came before the content was acknowledged on {leg} at {acknowledged}"
            ),
            K::NoByeAfterDelivery {
                entity,
                leg,
                acknowledged,
            } => write!(
                f,
                "{entity} never sent BYE on {leg} after its content was acknowledged at {acknowledged}"
            ),
            K::ContentNeverAcknowledged { leg } => write!(
                f,
                "{leg}: the content was never acknowledged, so no BYE was due"
            ),
            K::ByeNotPropagated {
                entity,
                leg,
                upstream,
                bye,
            } => write!(
                f,
                "{entity} never sent BYE on {leg} although BYE came on {upstream}: {bye}"
            ),
            K::NoUpstreamBye { leg, upstream } => {
                write!(f, "{leg}: no BYE, but none came on {upstream} either")
            }
            K::NeverSentBye { entity, leg } => write!(f, "{entity} never sent BYE on {leg}"),
            K::ByeAnswered { bye } => write!(f, "answers {bye}"),
            K::ByeUnanswered => f.write_str("was never answered 200"),
            K::LinkNotClosed { leg } => write!(f, "never closed after {leg} ended"),

            K::SentOtherThanPinned {
                bytes,
                sha256,
                pinned_bytes,
                pinned_sha256,
            } => write!(
                f,
                "client-a sent {bytes} bytes (sha256 {}) instead of the {pinned_bytes}-byte content it was given (sha256 {})",
                short(sha256),
                short(pinned_sha256)
            ),
            K::NothingReceived { member, wire } => {
                write!(f, "member {member} received nothing; {wire}")
            }
            K::DeliveryIncomplete {
                member,
                bytes,
                sent,
                wire,
            } => write!(
                f,
                "member {member}: incomplete, {bytes} of {sent} bytes; {wire}"
            ),
            K::DeliveryLength {
                member,
                bytes,
                sent,
                wire,
            } => write!(f, "member {member}: {bytes} bytes, {sent} sent; {wire}"),
            K::DeliveryDigest {
                member,
                sha256,
                sent,
                wire,
            } => write!(f, "member {member}: sha256 {sha256} ≠ sent {sent}; {wire}"),
            K::Delivered {
                member,
                bytes,
                sha256,
            } => write!(f, "member {member}: {bytes} bytes, sha256 {}", short(sha256)),
            K::DeliveryHiddenInCapture => f.write_str(
                "analyze: every member's hop (L4) is between SUT roles, so no delivered bytes are \
                 in the capture (a live run reads the SUT's output files)",
            ),
            K::DeliveryFromWire { sent } => write!(
                f,
                "analyze: delivery judged from the wire: the members' content reassembled from \
                 their links' SENDs (Byte-Range, Message-ID) and unwrapped from CPIM; sent = {sent}"
            ),
            K::PathHeaderUnparsable { error } => f.write_str(error),
            K::PathCount { to, from } => write!(
                f,
                "To-Path/From-Path hold {to}/{from} URIs (one each on a B2BUA hop, RFC 4975 §5.2)"
            ),
            K::PathsNoSession { to_path, from_path } => write!(
                f,
                "To-Path `{to_path}` / From-Path `{from_path}` name no session negotiated on this link"
            ),
            K::ResponseToPath {
                to_path,
                request_from,
            } => write!(
                f,
                "To-Path `{to_path}` is not the request's From-Path `{request_from}` (RFC 4975 §7.2)"
            ),
            K::PathsNegotiated { count } => write!(
                f,
                "{count} MSRP messages of the SUT carry the negotiated paths"
            ),
            K::MsrpSyntax {
                t,
                sender,
                receiver,
                offset,
                error,
            } => write!(
                f,
                "{t} MSRP from {sender} to {receiver} stops parsing at stream offset {offset}: {error}"
            ),
            K::WireParses { sip, msrp } => write!(
                f,
                "{sip} SIP messages and {msrp} MSRP streams of the SUT parse"
            ),
            K::HeaderOrder => f.write_str(
                "To-Path and From-Path must be the first two headers (RFC 4975 §7.1)",
            ),
            K::ContentTypeNotLast => f.write_str(
                "with a body, Content-Type must be the last header (RFC 4975 §7.1)",
            ),
            K::ContentTypeWithoutBody => {
                f.write_str("Content-Type without a body (RFC 4975 §7.1)")
            }
            K::TidReused { tid } => write!(
                f,
                "transaction id `{tid}` reused on this connection (RFC 4975 §7.1)"
            ),
            K::TidShort { tid } => write!(
                f,
                "transaction id `{tid}` is too short for 64 random bits (RFC 4975 §7.1)"
            ),
            K::BodyTooLarge { method, octets } => {
                write!(f, "{method} body of {octets} octets (RFC 4975 §7.1)")
            }
            K::ResponseWithoutRequest => f.write_str(
                "response to no request received on this connection (RFC 4975 §7.2)",
            ),
            K::NoMessageId => f.write_str("SEND without Message-ID (RFC 4975 §7.1.1)"),
            K::NoByteRange => {
                f.write_str("a later chunk without Byte-Range (RFC 4975 §7.1.1)")
            }
            K::ByteRangeUnparsable { value, error } => {
                write!(f, "`Byte-Range: {value}`: {error} (RFC 4975 §7.1.1)")
            }
            K::RangeStart { range } => write!(
                f,
                "Byte-Range {range}: the first chunk of a message starts at 1 (RFC 4975 §7.1.1)"
            ),
            K::RangeGap { range, next } => write!(
                f,
                "Byte-Range {range}: not contiguous with the previous chunk (next octet is {next})"
            ),
            K::RangeTotalChanged { range, total } => write!(
                f,
                "Byte-Range {range}: total differs from the earlier chunks' {total}"
            ),
            K::RangeLength { range, octets } => write!(
                f,
                "Byte-Range {range} but the chunk carries {octets} octets"
            ),
            K::RangeNotInterruptible { range, octets } => write!(
                f,
                "Byte-Range {range}: a {octets}-octet chunk must be interruptible (range-end `*`, RFC 4975 §7.1.1)"
            ),
            K::RangePastTotal { range } => {
                write!(f, "Byte-Range {range}: the chunk runs past the total")
            }
            K::RangeFinalShort { range, end } => write!(
                f,
                "Byte-Range {range}: the final chunk (`$`) ends at {end} not at the total"
            ),
            K::MsrpWellFormed { count } => {
                write!(f, "{count} MSRP messages of the SUT well-formed")
            }
            K::SendAnsweredNon200 {
                entity,
                send,
                response,
            } => write!(f, "{entity} answered {send} with {response}"),
            K::SendUnanswered { entity, send } => {
                write!(f, "{entity} never answered {send} on this connection")
            }
            K::SendsAnswered { count } => write!(f, "{count} SENDs to the SUT answered 200"),
            K::CpimValid => f.write_str("message/cpim"),
            K::NotCpim { content_type } => write!(
                f,
                "Content-Type {} is not message/cpim",
                content_type.as_deref().unwrap_or("(none)")
            ),
            K::CpimMissingHeader { header } => {
                write!(f, "the CPIM object has no {header} header (RFC 3862 §3)")
            }
            K::CpimNoInnerType => {
                f.write_str("the CPIM object has no inner Content-Type (RFC 3862 §2)")
            }
            K::CpimHeadNeverEnds => f.write_str("the CPIM header part never ends (RFC 3862 §2)"),
            K::CpimUnparsable { error } => write!(f, "not a CPIM object: {error}"),
            K::ContentIncomplete { note } => write!(
                f,
                "incomplete ({note}), cannot compare (see MEDIA-DELIVERY, MEDIA-FRAMING)"
            ),
            K::NoUpstreamCopy => f.write_str("no complete upstream copy to compare with"),
            K::RelayedUnchanged => f.write_str("relayed unchanged"),
            K::ContentTypeChanged { content_type } => {
                write!(f, "Content-Type {content_type:?} changed while relaying")
            }
            K::ContentAltered {
                entity,
                upstream_sha256,
                changed,
            } => {
                write!(
                    f,
                    "differs from what {entity} received (sha256 {})",
                    short(upstream_sha256)
                )?;
                if !changed.is_empty() {
                    let show = |h: &Option<String>| {
                        h.as_ref()
                            .map(|h| format!("`{h}`"))
                            .unwrap_or_else(|| "nothing".into())
                    };
                    let parts: Vec<String> = changed
                        .iter()
                        .map(|(a, b)| format!("{} became {}", show(a), show(b)))
                        .collect();
                    write!(f, "; CPIM header {}", parts.join(", "))?;
                }
                f.write_str(" (RFC 3862 §2: relays keep the CPIM object octet for octet)")
            }
            K::SignallingOnly => f.write_str(
                "analyze --signalling-only: the peers of this capture speak no MSRP (e.g. SIPp), \
                 so links and media are not judged",
            ),

            K::CaptureVerdictDiffers {
                check,
                live,
                capture,
            } => write!(
                f,
                "{check}: live {}, from the capture {}",
                live.as_str(),
                capture.as_str()
            ),
            K::CaptureMissingCheck { check } => {
                write!(f, "{check}: missing from the capture's analysis")
            }
            K::CaptureUnreadable { path, error } => write!(f, "{path}: {error}"),
            K::AnalysisFailed { path, error } => {
                write!(f, "{path}: the analysis failed: {error}")
            }
            K::HarnessError { error } => f.write_str(error),
            K::NothingOfSutJudged { sut } => write!(
                f,
                "no check judged anything the SUT ({}) sent: nothing of it was tested",
                crate::engine::spec::split_name(sut)
            ),
            K::PreviousCaseNotOver { case, what } => write!(
                f,
                "the previous case {case} was not over on the wire (settle-ms): {}",
                what.join("; ")
            ),
            K::SutExited { detail } => f.write_str(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str, addr: &str) -> Endpoint {
        Endpoint {
            name: Some(name.into()),
            addr: addr.parse().unwrap(),
        }
    }

    fn ok200() -> Cite {
        Cite::Sip {
            index: 3,
            t: Time(Duration::from_micros(8_900)),
            start_line: "SIP/2.0 200 OK".into(),
            from: ep("x", "127.0.0.13:5060"),
            to: ep("pf-a", "127.0.0.12:5060"),
        }
    }

    #[test]
    fn a_finding_reads_as_its_subject_then_its_kind() {
        let f = Finding::about(
            Class::Fail,
            ok200(),
            FindingKind::MissingAttribute {
                attr: "accept-types".into(),
            },
        );
        assert_eq!(f.at, Some(Time(Duration::from_micros(8_900))));
        assert_eq!(
            f.to_string(),
            "8.9ms `SIP/2.0 200 OK` x (127.0.0.13:5060) → pf-a (127.0.0.12:5060): no a=accept-types (RFC 4975 §8.6)"
        );
        let unknown = Endpoint {
            name: None,
            addr: "10.0.0.1:9".parse().unwrap(),
        };
        assert_eq!(unknown.to_string(), "10.0.0.1:9 (unknown)");
    }

    #[test]
    fn problems_of_one_message_share_a_line_and_inconc_is_marked_in_a_failure() {
        let v = vec![
            Finding::about(Class::Fail, ok200(), FindingKind::NoViaBranch),
            Finding::about(Class::Fail, ok200(), FindingKind::FromNoTag),
            Finding::fail(FindingKind::NoInvite2),
            Finding::inconc(FindingKind::NoMembers),
            Finding::new(Class::Fail, FindingKind::More { count: 3 }),
        ];
        let lines = evidence_lines(Verdict::Fail, &v);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0]
            .ends_with(": no Via branch (RFC 3261 §8.1.1.7); From has no tag (RFC 3261 §8.1.1.3)"));
        assert_eq!(lines[1], "x never received INVITE2");
        assert_eq!(lines[2], "inconc: the group has no members");
        assert_eq!(lines[3], "… and 3 more");
        // Not marked when the check itself is inconclusive.
        assert_eq!(
            evidence_lines(Verdict::Inconc, &v[3..4]),
            ["the group has no members"]
        );
    }

    #[test]
    fn findings_round_trip_through_json_with_times_in_microseconds() {
        let f = Finding::about(
            Class::Fail,
            ok200(),
            FindingKind::SetupWrongOpener {
                offer: SetupAttr(Some("actpass".into())),
                answer: SetupAttr(None),
                opener: "x".into(),
                link: Link::L2,
                figure: FigureRef {
                    n: 1,
                    l23_opener: None,
                },
                expected: "pf-a".into(),
            },
        );
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["class"], "fail");
        assert_eq!(v["kind"], "setup-wrong-opener");
        assert_eq!(v["subject"]["cite"], "sip");
        assert_eq!(v["subject"]["t"], 8900);
        assert_eq!(v["at"], 8900);
        let back: Finding = serde_json::from_value(v).unwrap();
        assert_eq!(back, f);
    }
}
