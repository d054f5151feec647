//! The check catalogue: every check's id, what it verifies, and the normative sources a reader
//! can look up (RFC sections, and the figures and steps of the patent the flow comes from).
//!
//! `docs/checks.md` is generated from this table ([`markdown`], `cpm-harness checks
//! --markdown`); `tests/catalogue.rs` fails when the committed file differs, when a check has
//! no entry, or when a conformance check has no reference-SUT fault that proves it. Every
//! report prints [`CheckId::reference`], which is the catalogue row's reference.

use crate::entity::Fault;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! check_ids {
    ($($variant:ident = $name:literal,)*) => {
        /// A check, by its stable id. Serialised as the id (`LINK-DIR`); ordered as the
        /// catalogue (the order [`crate::engine::checks::run_checks`] returns them in).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum CheckId {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl CheckId {
            /// Every id: the conformance checks in catalogue order, then the harness's own
            /// results ([`CheckId::Capture`], [`CheckId::Harness`]).
            pub const EVERY: &'static [CheckId] = &[$(CheckId::$variant,)*];

            /// The stable id, e.g. `LINK-DIR`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckId::$variant => $name,)*
                }
            }

            /// The id for its text (`LINK-DIR`), if it is one.
            pub fn parse(s: &str) -> Option<CheckId> {
                match s {
                    $($name => Some(CheckId::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

check_ids! {
    SdpMedia = "SDP-MEDIA",
    SdpC = "SDP-C",
    SdpPort = "SDP-PORT",
    SdpPath = "SDP-PATH",
    SdpOwn = "SDP-OWN",
    SdpUnique = "SDP-UNIQUE",
    SdpAccept = "SDP-ACCEPT",
    SdpSetup = "SDP-SETUP",
    SdpPlace = "SDP-PLACE",
    LinkDir = "LINK-DIR",
    LinkTarget = "LINK-TARGET",
    LinkTrigger = "LINK-TRIGGER",
    LinkBind = "LINK-BIND",
    LinkReuse = "LINK-REUSE",
    LinkTls = "LINK-TLS",
    SigSeq = "SIG-SEQ",
    SigCfAnswer = "SIG-CF-ANSWER",
    SigAck = "SIG-ACK",
    SigFanout = "SIG-FANOUT",
    SigB2bua = "SIG-B2BUA",
    SigTeardown = "SIG-TEARDOWN",
    SigRoute = "SIG-ROUTE",
    SigNon2xxAck = "SIG-NON2XX-ACK",
    SigDecline = "SIG-DECLINE",
    SigAllDecline = "SIG-ALL-DECLINE",
    SigNoAnswer = "SIG-NO-ANSWER",
    SigLeave = "SIG-LEAVE",
    SigTls = "SIG-TLS",
    MediaDelivery = "MEDIA-DELIVERY",
    MediaPaths = "MEDIA-PATHS",
    MediaFraming = "MEDIA-FRAMING",
    MediaResponse = "MEDIA-RESPONSE",
    MediaCpim = "MEDIA-CPIM",
    MediaAbort = "MEDIA-ABORT",
    MediaReject = "MEDIA-REJECT",
    MediaReport = "MEDIA-REPORT",
    MediaNoResponse = "MEDIA-NO-RESPONSE",
    WireSyntax = "WIRE-SYNTAX",
    Capture = "CAPTURE",
    Harness = "HARNESS",
}

/// What a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The SDP offers and answers the SUT sends.
    Sdp,
    /// The TCP connections that carry MSRP.
    Link,
    /// SIP signalling.
    Sig,
    /// MSRP content.
    Media,
    /// The syntax of every message on the wire.
    Wire,
    /// The harness's own results (not a conformance check).
    Harness,
}

impl CheckId {
    /// The conformance checks, in catalogue order: the checks [`crate::engine::checks::run_checks`]
    /// returns, one each.
    pub const ALL: [CheckId; 38] = [
        CheckId::SdpMedia,
        CheckId::SdpC,
        CheckId::SdpPort,
        CheckId::SdpPath,
        CheckId::SdpOwn,
        CheckId::SdpUnique,
        CheckId::SdpAccept,
        CheckId::SdpSetup,
        CheckId::SdpPlace,
        CheckId::LinkDir,
        CheckId::LinkTarget,
        CheckId::LinkTrigger,
        CheckId::LinkBind,
        CheckId::LinkReuse,
        CheckId::LinkTls,
        CheckId::SigSeq,
        CheckId::SigCfAnswer,
        CheckId::SigAck,
        CheckId::SigFanout,
        CheckId::SigB2bua,
        CheckId::SigTeardown,
        CheckId::SigRoute,
        CheckId::SigNon2xxAck,
        CheckId::SigDecline,
        CheckId::SigAllDecline,
        CheckId::SigNoAnswer,
        CheckId::SigLeave,
        CheckId::SigTls,
        CheckId::MediaDelivery,
        CheckId::MediaPaths,
        CheckId::MediaFraming,
        CheckId::MediaResponse,
        CheckId::MediaCpim,
        CheckId::MediaAbort,
        CheckId::MediaReject,
        CheckId::MediaReport,
        CheckId::MediaNoResponse,
        CheckId::WireSyntax,
    ];

    pub fn family(self) -> Family {
        let s = self.as_str();
        if s.starts_with("SDP-") {
            Family::Sdp
        } else if s.starts_with("LINK-") {
            Family::Link
        } else if s.starts_with("SIG-") {
            Family::Sig
        } else if s.starts_with("MEDIA-") {
            Family::Media
        } else if s.starts_with("WIRE-") {
            Family::Wire
        } else {
            Family::Harness
        }
    }

    /// The catalogue's row for this check.
    pub fn entry(self) -> &'static Entry {
        CATALOGUE
            .iter()
            .find(|e| e.id == self)
            .expect("every check id has a catalogue entry (tests/catalogue.rs)")
    }

    /// The reference reports print: the row's RFC sections, then its patent figures and
    /// steps (`RFC 4975 §5.4; FIG 1–7, S106`).
    pub fn reference(self) -> String {
        self.entry().reference()
    }

    /// The anchor of the check's section in `docs/checks.md` (`link-dir`).
    pub fn anchor(self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    /// The reference-SUT faults that make this check fail: the rows of the mutant table
    /// (`selftest --mutants`) whose target it is.
    pub fn faults(self) -> Vec<Fault> {
        Fault::ALL
            .iter()
            .copied()
            .filter(|f| f.target_check() == self.as_str())
            .collect()
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the catalogue.
#[derive(Debug)]
pub struct Entry {
    pub id: CheckId,
    /// A short line for tables (Markdown).
    pub title: &'static str,
    /// What the check verifies, in a sentence or two (Markdown).
    pub what: &'static str,
    /// RFC sections, e.g. `RFC 4975 §8.1`.
    pub rfc: &'static [&'static str],
    /// The patent's figures and steps, e.g. `FIG 1–7`, `S106`.
    pub patent: &'static [&'static str],
}

impl Entry {
    /// The reference a report prints: the RFC sections (one RFC's sections together:
    /// `RFC 4975 §5.4, §8.3`), then the patent's figures and steps; a harness result names its
    /// section of `docs/checks.md`.
    pub fn reference(&self) -> String {
        let mut rfcs: Vec<(&str, Vec<&str>)> = Vec::new();
        for r in self.rfc {
            let (doc, sec) = r.split_once(' ').map_or((*r, ""), |(a, b)| {
                // `RFC 4975 §8.1` → (`RFC 4975`, `§8.1`).
                match b.split_once(' ') {
                    Some((n, sec)) => (&r[..a.len() + 1 + n.len()], sec),
                    None => (*r, ""),
                }
            });
            match rfcs.iter_mut().find(|(d, _)| *d == doc) {
                Some((_, secs)) => secs.push(sec),
                None => rfcs.push((doc, vec![sec])),
            }
        }
        let mut parts: Vec<String> = rfcs
            .into_iter()
            .map(|(d, secs)| {
                let secs: Vec<&str> = secs.into_iter().filter(|s| !s.is_empty()).collect();
                if secs.is_empty() {
                    d.to_string()
                } else {
                    format!("{d} {}", secs.join(", "))
                }
            })
            .collect();
        if !self.patent.is_empty() {
            parts.push(self.patent.join(", "));
        }
        if parts.is_empty() {
            format!("docs/checks.md#{}", self.id.anchor())
        } else {
            parts.join("; ")
        }
    }
}

/// Every check's row, in catalogue order.
pub static CATALOGUE: &[Entry] = &[
    Entry {
        id: CheckId::SdpMedia,
        title: "one `m=message … TCP/MSRP *` line; the answer matches the offer",
        what: "Every SDP offer and answer the SUT sends has exactly one `m=message <port> TCP/MSRP *` \
               line (`TCP/TLS/MSRP` for msrps); an answer has the offer's m-lines in the offer's \
               order and does not reject the stream with port 0.",
        rfc: &["RFC 4975 §8.1", "RFC 3264 §6"],
        patent: &["S103", "S104", "S108", "S109"],
    },
    Entry {
        id: CheckId::SdpC,
        title: "`c=` present, an address the SUT uses for MSRP",
        what: "Every SDP the SUT sends has a `c=` line (session or media level), `IN IP4`/`IN IP6` \
               matching the address (`c=IN IP6 ::1` on IPv6, the address without brackets), \
               and the address is one the SUT really uses for MSRP.",
        rfc: &[
            "RFC 8866 §5.7",
            "RFC 4975 §8.1",
            "RFC 6135 §4.2.2",
            "RFC 5118 §4.6",
        ],
        patent: &["S103", "S104", "S108", "S109"],
    },
    Entry {
        id: CheckId::SdpPort,
        title: "`m=` port equals the `a=path` port",
        what: "The `m=` port equals the port of the SUT's own (rightmost) `a=path` URI; port 9 \
               is accepted with `a=setup:active`.",
        rfc: &["RFC 4975 §8.1", "RFC 4145 §4.1", "RFC 6135 §4.2.2"],
        patent: &["S103", "S104", "S108", "S109"],
    },
    Entry {
        id: CheckId::SdpPath,
        title: "`a=path` present: MSRP URIs with `;tcp`",
        what: "`a=path` is present and every URI in it is an MSRP URI with `;tcp` and a scheme \
               that matches the `m=` proto (`msrps` with `TCP/TLS/MSRP`, `msrp` with \
               `TCP/MSRP`).",
        rfc: &["RFC 4975 §6", "RFC 4975 §8.2", "RFC 4975 §9", "RFC 4975 §14", "RFC 6135 §4"],
        patent: &["S103", "S104", "S108", "S109"],
    },
    Entry {
        id: CheckId::SdpOwn,
        title: "the SUT's `a=path` is its own, never a neighbour's",
        what: "The SUT's own `a=path` URI is its own: its address and MSRP port, with a \
               session-id; a back-to-back entity never repeats a URI or session-id it received \
               from a neighbour (each leg is its own MSRP session).",
        rfc: &["RFC 4975 §8.2", "RFC 4975 §8.3", "RFC 6714 §2"],
        patent: &["S102", "S103", "S104", "S107", "S109"],
    },
    Entry {
        id: CheckId::SdpUnique,
        title: "session-ids unique across the run, at least 64 random bits",
        what: "The session-id of every SDP the SUT sends is unique: no other SDP of the case \
               carries it, and the SUT used it in no earlier case of the run (a run's cases \
               share what the SUT sent; `analyze` of one capture judges that capture alone); \
               and it holds at least 64 bits of randomness.",
        rfc: &["RFC 4975 §8.2", "RFC 4975 §14.1"],
        patent: &[],
    },
    Entry {
        id: CheckId::SdpAccept,
        title: "`a=accept-types` admits `message/cpim`",
        what: "`a=accept-types` is present and admits `message/cpim` (explicitly or by a \
               wildcard).",
        rfc: &["RFC 4975 §8.6", "RFC 3862 §1"],
        patent: &[],
    },
    Entry {
        id: CheckId::SdpSetup,
        title: "`a=setup` valid and making the figure's opener active",
        what: "In `setup: sdp` mode every `a=setup` is explicit and valid (no passive or holdconn \
               offer, no actpass answer) and the offer/answer pair makes the figure's opener of \
               the link the active side. In `setup: preset` mode the configuration names the \
               opener and `a=setup` is optional on both sides: one that is sent must agree with \
               the preset (the opener `active`, the other side `passive`, either `actpass` in an \
               offer; never `holdconn` or an `actpass` answer); a missing one means \
               \"as preset\", never RFC 4145's default, so the offer/answer pair is judged only \
               when both sides sent `a=setup`, and then it must make the preset opener active. \
               In both modes only what the SUT sends is judged: the harness's own (or missing) \
               `a=setup` never fails it.",
        rfc: &[
            "RFC 4145 §4.1",
            "RFC 6135 §4.2.1",
            "RFC 6135 §4.2.2",
            "RFC 4975 §5.4",
        ],
        patent: &["FIG 1–7"],
    },
    Entry {
        id: CheckId::SdpPlace,
        title: "MSRP parameters in the message the figure names",
        what: "The message the figure names carries the SUT's MSRP parameters: in solution 1 \
               (FIG 1, 2) its 200 OK, in solution 2 (FIG 3, 4) its INVITE, in solution 3 \
               (FIG 5–7) both.",
        rfc: &["RFC 3264 §5", "RFC 3264 §6"],
        patent: &["FIG 1–7", "S103", "S104", "S108", "S109"],
    },
    Entry {
        id: CheckId::LinkDir,
        title: "the SUT opens exactly the links the figure gives it",
        what: "The SUT opens exactly the MSRP links the figure gives it, and never one the \
               figure gives its peer.",
        rfc: &["RFC 4145 §4.1", "RFC 4975 §5.4"],
        patent: &[
            "FIG 1–7",
            "S105",
            "S106",
            "S110",
            "S111",
            "S201–S204",
            "S301–S304",
        ],
    },
    Entry {
        id: CheckId::LinkTarget,
        title: "the SUT connects where its peer's `a=path` says",
        what: "The SUT connects to the address its peer advertised: the authority of the \
               leftmost URI of the peer's `a=path`.",
        rfc: &["RFC 4975 §5.4", "RFC 4975 §6.2", "RFC 4975 §8.3"],
        patent: &["S106", "S110", "S111", "S201–S204", "S301–S304"],
    },
    Entry {
        id: CheckId::LinkTrigger,
        title: "links opened on their trigger, within the window",
        what: "The SUT opens each link no earlier than its declared trigger (the 200 OK, the \
               ACK, or the first upstream SEND; for client-a's L1, 200-1 with pf-a's `a=path`, \
               even when its configuration already knows pf-a's address) and within the \
               trigger window after it; the harness's discriminating pauses (withheld 200s and \
               ACKs) make both an early and a late opening visible.",
        rfc: &[],
        patent: &["S105", "S106", "S110", "S111", "S201–S204", "S301–S304"],
    },
    Entry {
        id: CheckId::LinkBind,
        title: "a binding SEND first on every link the SUT opens",
        what: "The SUT's first request on a link it opened is a SEND (bodiless allowed), sent at \
               once, whose To-Path and From-Path are the negotiated `a=path` URIs; the passive \
               side sends no request before that binding.",
        rfc: &["RFC 4975 §5.4", "RFC 6135 §4.2.2"],
        patent: &["S105", "S301"],
    },
    Entry {
        id: CheckId::LinkReuse,
        title: "connections reused as declared, and only then",
        what: "With reuse declared, sessions towards one host, port and scheme share an open \
               connection; without it, each session has its own. A session belongs to the \
               connection (its 4-tuple) that carried its binding request and to the messages \
               whose To-Path and From-Path are both its URIs, never to another connection by \
               its session-id alone (a SUT may repeat a session-id, which SDP-UNIQUE judges).",
        rfc: &["RFC 4975 §5.4"],
        patent: &["S105", "S201–S204", "S301–S304"],
    },
    Entry {
        id: CheckId::LinkTls,
        title: "a link is TLS exactly where TLS was negotiated, started by its opener",
        what: "A link of a session that negotiated TLS (`msrps:` URIs, `TCP/TLS/MSRP`) carries \
               a TLS session (1.2 or later) whose handshake the side that opened the TCP \
               connection started; plain TCP there fails. A link of a plain `TCP/MSRP` session is \
               plain TCP. A failed TLS handshake on any connection to or from the SUT (an MSRP \
               link, or SIP over TLS) fails, the evidence naming the peer and the TLS alert.",
        rfc: &["RFC 4975 §14", "RFC 6135 §4", "RFC 8996 §5"],
        patent: &["S105", "S201–S204", "S301–S304"],
    },
    Entry {
        id: CheckId::SigSeq,
        title: "every SIP message the figure gives the SUT, in order",
        what: "Every SIP message the figure gives the SUT is sent, after the messages that must \
               precede it (e.g. 200-1 after 200-2, INVITE4 after INVITE3, ACK after 200).",
        rfc: &["RFC 3261 §13.2.2.4"],
        patent: &["FIG 1–7", "S101–S112", "S201–S204", "S301–S304"],
    },
    Entry {
        id: CheckId::SigCfAnswer,
        title: "x answers 200-2 when the figure says",
        what: "x answers 200-2 at once (FIG 1, 3, 7: while the harness withholds every 200-3) \
               or only after the first 200-3 (FIG 2, 4, 5, 6).",
        rfc: &[],
        patent: &["S103", "FIG 1–7"],
    },
    Entry {
        id: CheckId::SigAck,
        title: "downstream ACK on the 200 or after the upstream ACK, as declared",
        what: "A middle entity sends its downstream ACK on the downstream 200 (FIG 5) or only \
               after the upstream ACK (FIG 6, and FIG 1–4 by default), as declared.",
        rfc: &["RFC 3261 §13.2.2.4"],
        patent: &["FIG 5", "FIG 6", "S106", "S110", "S111"],
    },
    Entry {
        id: CheckId::SigFanout,
        title: "INVITE1/2 to the group or factory URI; one INVITE per member, to its pf-b",
        what: "client-a's INVITE1 and pf-a's INVITE2 are addressed to the group URI (pre-defined \
               group) or to x's conference-factory URI with a resource list (ad-hoc group); x \
               sends one INVITE per member of the group, each to the pf-b serving that member \
               with the member as Request-URI; an ad-hoc recipient list is honoured.",
        rfc: &["RFC 5366 §3", "RFC 5366 §4"],
        patent: &["S103"],
    },
    Entry {
        id: CheckId::SigB2bua,
        title: "each leg its own dialog; valid SIP headers",
        what: "Each leg is its own SIP dialog (own Call-ID, tags and branches; ACK and BYE \
               CSeq), and every SIP message of the SUT has a valid Via branch, From tag, To, \
               Call-ID, CSeq, Max-Forwards, Contact (INVITE) and Content-Length (TCP).",
        rfc: &[
            "RFC 3261 §6",
            "RFC 3261 §8.1.1",
            "RFC 3261 §12.1.1",
            "RFC 3261 §13.2.2.4",
            "RFC 3261 §18.3",
        ],
        patent: &["S102", "S103", "S107", "S109"],
    },
    Entry {
        id: CheckId::SigTeardown,
        title: "BYE leg by leg after delivery, answered; links closed",
        what: "BYE propagates leg by leg once the content was acknowledged, every BYE is \
               answered 200, and the links are closed once their sessions ended (either side \
               may close).",
        rfc: &["RFC 3261 §15", "RFC 4975 §5.4"],
        patent: &[],
    },
    Entry {
        id: CheckId::SigRoute,
        title: "through the SIP/IP core, on the recorded route set",
        what: "Behind a SIP/IP core (`run --core`): every SIP message the SUT sends goes through \
               the core, a 2xx to an INVITE echoes the Record-Route, and ACK and BYE carry the \
               dialog's route set as Route headers.",
        rfc: &["RFC 3261 §12.1.1", "RFC 3261 §12.2.1.1", "RFC 3261 §16.12"],
        patent: &["S101–S111"],
    },
    Entry {
        id: CheckId::SigNon2xxAck,
        title: "a final non-2xx is ACKed hop by hop",
        what: "An entity whose INVITE is answered with a final non-2xx (a member's 486 or 603, \
               relayed hop by hop) ACKs it itself, on that hop: an ACK with the INVITE's Via \
               branch and CSeq number and the response's To tag, never forwarded as an \
               end-to-end ACK (exception scenarios `member-declines`).",
        rfc: &["RFC 3261 §17.1.1.3"],
        patent: &["S103"],
    },
    Entry {
        id: CheckId::SigDecline,
        title: "a member's decline is relayed; the call goes on for the others",
        what: "When a member declines its INVITE4 (486, 603: scenario `member-declines`), its \
               pf-b answers x's INVITE3 for it with a final non-2xx; x keeps the call for the \
               other members (no BYE or CANCEL to them before the upstream BYE) and, where it \
               answers on the first 200-3 (FIG 2, 4, 5, 6), does not answer 200-2 on the \
               decline; no link is opened for the declined session.",
        rfc: &["RFC 3261 §13.2.2.3", "RFC 3261 §15"],
        patent: &["S103", "S104", "FIG 1–7"],
    },
    Entry {
        id: CheckId::SigNoAnswer,
        title: "a member that never answers is given up on, within the declared wait",
        what: "When a member's client-b never answers its INVITE4 (scenario \
               `member-never-answers`: nothing at all, not even 100 Trying), its pf-b gives \
               up on it by its INVITE transaction timeout (Timer B, 64·T1) or an application \
               timer and answers x's INVITE3 for it with a final non-2xx (408 Request Timeout, \
               or 487 after a CANCEL toward the member), within the profile's \
               `no-answer-wait-ms` of INVITE4; it never accepts it. x then treats it as a \
               decline (SIG-DECLINE: the others keep the call, no 200-2 on it where x waits \
               for the first 200-3, FIG 2, 4, 5, 6). A client-b of the SUT's that answers an \
               INVITE with nothing at all fails (a UAS answers every INVITE).",
        rfc: &[
            "RFC 3261 §17.1.1.2",
            "RFC 3261 §9.1",
            "RFC 3261 §16.7",
            "RFC 3261 §13.3.1",
        ],
        patent: &["S103", "S104", "FIG 1–7"],
    },
    Entry {
        id: CheckId::SigAllDecline,
        title: "when every member declines, the call ends upstream",
        what: "When every member declines (scenario `all-decline`), each middle entity of the \
               SUT ends its up leg once its last down leg failed: with a final non-2xx where it \
               has not answered yet (x in FIG 2, 4, 5, 6; pf-a relaying x's refusal), else \
               with a BYE of its own after the ACK (x in FIG 1, 3, 7, which answered 200-2 at \
               once; pf-a relaying x's BYE), so that nothing stays open and client-a learns \
               that nobody takes the message; a client-a whose call is ended that way answers \
               the BYE, and one whose INVITE is refused sends no BYE and opens no link.",
        rfc: &["RFC 3261 §13.3.1.4", "RFC 3261 §15", "RFC 3261 §15.1.1"],
        patent: &["S103", "FIG 1–7"],
    },
    Entry {
        id: CheckId::SigLeave,
        title: "a member that leaves is released up to x, and only it",
        what: "When a member leaves mid-transfer (scenario `member-leaves`: it sends BYE, or \
               closes its link L4 without one), its pf-b releases its leg (answers the BYE, or \
               sends BYE once the link closed) and ends its own leg from x for that member \
               with a BYE; x keeps the other members (no BYE or CANCEL to them before the \
               upstream BYE), who get the whole message (MEDIA-DELIVERY).",
        rfc: &["RFC 3261 §15", "RFC 3261 §15.1.2", "RFC 4975 §5.4"],
        patent: &["S112", "FIG 1–7"],
    },
    Entry {
        id: CheckId::SigTls,
        title: "SIP over TLS where configured; SIPS URIs over TLS only",
        what: "In a case whose SIP transport is TLS, every SIP message the SUT sends goes over \
               TLS (plain TCP or UDP fails). In any case, a request the SUT sends to a `sips:` \
               Request-URI goes over TLS, and an INVITE to one carries a `sips:` Contact. The harness's entities \
               send their requests over TLS to the `sips:` form of the AoR (group, factory, \
               member) and give a `sips:` Contact; AoRs are recognised in either form.",
        rfc: &["RFC 3261 §26.2", "RFC 3261 §26.2.2", "RFC 3261 §8.1.1.8"],
        patent: &["S101–S112", "FIG 1–7"],
    },
    Entry {
        id: CheckId::MediaDelivery,
        title: "every member gets the whole content, byte-exact",
        what: "Every member receives the whole content, byte-exact (SHA-256), whatever the \
               chunking on each hop (a member that declined its session is left out). The content is the message client-a sent, as its link \
               (L1) shows it: a SUT's client-a may send content of its own choosing; with L1 \
               between two SUT roles, the first visible hop's content at the size the trigger \
               asked for. A profile whose trigger names `{content}` pins it: the harness writes \
               the message to that file, and client-a must send exactly it.",
        rfc: &["RFC 4975 §7.1.1", "RFC 4975 §7.3.1"],
        patent: &["S112"],
    },
    Entry {
        id: CheckId::MediaPaths,
        title: "the negotiated To-Path and From-Path on every MSRP message",
        what: "On each link, the To-Path and From-Path of the SUT's SENDs and responses are the \
               URIs negotiated for that leg (one each on a back-to-back hop), and a response's \
               To-Path is its request's From-Path.",
        rfc: &["RFC 4975 §5.2", "RFC 4975 §7.2", "RFC 4975 §7.3"],
        patent: &[],
    },
    Entry {
        id: CheckId::MediaFraming,
        title: "well-formed MSRP: headers, transaction ids, Byte-Range",
        what: "The SUT's MSRP is well-formed: To-Path and From-Path first and Content-Type last, \
               no reused or short transaction ids, non-SEND bodies of at most 10240 octets, \
               responses only to requests, a Message-ID on every SEND, Byte-Range arithmetic, \
               chunks over 2048 octets interruptible.",
        rfc: &[
            "RFC 4975 §7.1",
            "RFC 4975 §7.1.1",
            "RFC 4975 §7.2",
            "RFC 4975 §9",
        ],
        patent: &[],
    },
    Entry {
        id: CheckId::MediaResponse,
        title: "every SEND to the SUT answered 200",
        what: "The SUT answers every SEND it receives with 200 on the same connection (unless \
               the SEND's Failure-Report is `no` or `partial`).",
        rfc: &["RFC 4975 §7.1.4", "RFC 4975 §7.2"],
        patent: &[],
    },
    Entry {
        id: CheckId::MediaCpim,
        title: "content wrapped in `message/cpim` and relayed unchanged",
        what: "A SUT client-a wraps the content in `message/cpim` (From, To, an inner \
               Content-Type); a relaying SUT forwards the CPIM object octet for octet.",
        rfc: &["RFC 3862 §2", "RFC 3862 §3", "RFC 4975 §11.4"],
        patent: &[],
    },
    Entry {
        id: CheckId::MediaAbort,
        title: "an aborted message is forwarded as aborted, never as complete",
        what: "When client-a ends its message part-way with a `#` chunk (scenario \
               `sender-aborts`), every relay of the SUT ends its copy on each downstream link \
               with `#` too, and never ends it with `$` as if it were complete; members are \
               not given the message as delivered (MEDIA-DELIVERY).",
        rfc: &["RFC 4975 §7.1.1", "RFC 4975 §7.1.2"],
        patent: &["S112"],
    },
    Entry {
        id: CheckId::MediaReject,
        title: "a member's 413/415 stops the message toward it and releases its leg",
        what: "When a member answers a chunk with 413 (stop sending this message) or 415 (its \
               media type is not accepted; scenario `member-rejects-content`), its pf-b starts \
               no further chunk of that message toward it (a chunk under way is ended with \
               `#`) and releases the member's leg with a BYE; every other member gets the whole \
               message (MEDIA-DELIVERY) and client-a its 200s (MEDIA-RESPONSE).",
        rfc: &["RFC 4975 §7.1.1", "RFC 4975 §7.1.2", "RFC 4975 §7.2", "RFC 3261 §15"],
        patent: &["S112"],
    },
    Entry {
        id: CheckId::MediaReport,
        title: "success REPORTs cover the whole message, and are asked for downstream",
        what: "When client-a sends with `Success-Report: yes` (scenario `reports-success`), \
               every receiver of the SUT sends the hop's sender REPORT(s) with the message's \
               Message-ID and `Status: 000 200 OK` whose Byte-Ranges together cover the whole \
               message (`1-N/N`); a middle entity of the SUT puts `Success-Report: yes` on the \
               SENDs it relays (it asks downstream what its upstream asked). Where the profile \
               declares `report-timing: after-delivery` (PICS), a middle entity's REPORT comes \
               only after the REPORT of each visible downstream hop it relayed the whole \
               message to (and not at all while such a hop never reported); with `on-receipt` \
               it may come as soon as the whole message arrived, and no order is judged.",
        rfc: &["RFC 4975 §7.1.2", "RFC 4975 §7.1", "RFC 4975 §7.3"],
        patent: &["S112"],
    },
    Entry {
        id: CheckId::MediaNoResponse,
        title: "no transaction responses where `Failure-Report: no` was asked",
        what: "When client-a sends with `Failure-Report: no` (scenario `reports-no-failure`), \
               every receiver of the SUT sends no response to those SENDs, and a middle entity \
               of the SUT puts `Failure-Report: no` on the SENDs it relays (and so expects no \
               response to them: the transfer completes without waiting for one).",
        rfc: &["RFC 4975 §7.1.1", "RFC 4975 §7.1.2", "RFC 4975 §7.2"],
        patent: &["S112"],
    },
    Entry {
        id: CheckId::WireSyntax,
        title: "every SIP and MSRP message the SUT sends parses",
        what: "Every SIP message the SUT sends parses (start line, header lines, Content-Length; \
               over TCP, its framing) and every MSRP byte stream it writes parses (start line, \
               headers, end-line). One that does not fails here, with its excerpt, the peer it \
               was sent to and where the parse stopped (the line, or the stream offset); the \
               other checks leave it unjudged rather than failing as a side effect. The hosts \
               of its SIP URIs (Request-URI, From, To, Contact, Route, Record-Route) and Via \
               sent-by values are well-formed: an IPv6 address in brackets (`sip:x@[::1]`, \
               `[::1]:5060`), every bracket paired; MSRP URIs likewise (`msrp://[::1]:2855/id;tcp`).",
        rfc: &[
            "RFC 3261 §7",
            "RFC 3261 §7.3",
            "RFC 3261 §18.3",
            "RFC 3261 §19.1.1",
            "RFC 3261 §25.1",
            "RFC 5118 §4.2",
            "RFC 4975 §7.1",
            "RFC 4975 §9",
        ],
        patent: &[],
    },
    Entry {
        id: CheckId::Capture,
        title: "the capture gives the live verdicts",
        what: "Not a conformance check: with `run --reanalyze`, the capture of the case judged \
               offline (`cpm-harness analyze`) gives every check the live verdict.",
        rfc: &[],
        patent: &[],
    },
    Entry {
        id: CheckId::Harness,
        title: "the harness failed, or could not judge the SUT",
        what: "Not a conformance check: the harness or the environment failed before the case \
               could be judged, or a running SUT's process exited (verdict `error`); or the \
               case cannot count for the SUT: no check judged anything the SUT sent, or the \
               previous case against a running SUT was not over on the wire (verdict \
               `inconc`).",
        rfc: &[],
        patent: &[],
    },
];

/// The catalogue as Markdown: the contents of `docs/checks.md`.
pub fn markdown() -> String {
    use std::fmt::Write;
    let mut s = String::new();
    s.push_str(
        "# Check catalogue\n\n\
         <!-- Generated from src/engine/catalogue.rs by `cpm-harness checks --markdown`; \
         do not edit. tests/catalogue.rs fails when this file differs from the code; \
         `UPDATE_CATALOGUE=1 cargo test --test catalogue` rewrites it. -->\n\n\
         Every check the harness makes: its stable id, what it verifies, the normative sources \
         it rests on, and the faults of the reference SUT (`cpm-harness sut --fault NAME`) that \
         make it fail — `cpm-harness selftest --mutants` runs each of them and requires its \
         check to fail, and the correct reference SUT to pass. The `reference` a report prints \
         for a check is the one given here.\n\n\
         Sources:\n\n\
         - RFC 3261 (SIP), RFC 3264 (offer/answer), RFC 8866 (SDP), RFC 4975 (MSRP), \
         RFC 4145 (connection-oriented media, `a=setup`), RFC 6135 (MSRP connection \
         establishment), RFC 6714 (MSRP CEMA), RFC 3862 (CPIM), RFC 5366 (ad-hoc recipient \
         lists).\n\
         - The patent the flow comes from: its figures FIG 1–7 (solution 1: FIG 1, 2, the \
         INVITE sender opens each link; solution 2: FIG 3, 4, the INVITE receiver opens; \
         solution 3: FIG 5, 6, 7, the clients open L1 and L4) and its steps S101–S112 \
         (solution 1), S201–S204 (solution 2) and S301–S304 (solution 3). The suites \
         (`suites/fig*.yaml`) name each figure message by its step.\n\n\
         A check judges only what the SUT's roles send or do. Its verdict is `pass`, `fail`, \
         `inconc` (the SUT never reached the point the check needs; another check reports \
         why) or `not observable` (nothing it judges is visible in this split, e.g. a hop \
         between two SUT roles); a case takes the worst of its checks.\n\n",
    );
    s.push_str("| id | verifies | reference | faults |\n| --- | --- | --- | --- |\n");
    for e in CATALOGUE
        .iter()
        .filter(|e| e.id.family() != Family::Harness)
    {
        let faults: Vec<String> =
            e.id.faults()
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect();
        let _ = writeln!(
            s,
            "| [{id}](#{a}) | {what} | {r} | {f} |",
            id = e.id,
            a = e.id.anchor(),
            what = e.title,
            r = e.reference(),
            f = faults.join(", ")
        );
    }
    for (title, fam) in [
        ("SDP (every offer and answer the SUT sends)", Family::Sdp),
        ("Links (TCP connections for MSRP)", Family::Link),
        ("Signalling", Family::Sig),
        ("Media", Family::Media),
        ("Wire syntax", Family::Wire),
        ("Harness results", Family::Harness),
    ] {
        let _ = write!(s, "\n## {title}\n");
        for e in CATALOGUE.iter().filter(|e| e.id.family() == fam) {
            let _ = write!(s, "\n### {}\n\n{}\n\n", e.id, e.what);
            if !e.rfc.is_empty() {
                let _ = writeln!(s, "- RFC: {}", e.rfc.join(", "));
            }
            if !e.patent.is_empty() {
                let _ = writeln!(s, "- Patent: {}", e.patent.join(", "));
            }
            let _ = writeln!(s, "- Reference printed in reports: `{}`", e.reference());
            let faults = e.id.faults();
            if fam != Family::Harness {
                let _ = writeln!(s, "- Faults that make it fail:");
                for f in faults {
                    let _ = writeln!(s, "  - `{}`: {}", f.name(), f.describe());
                }
            }
        }
    }
    s
}

/// The catalogue as plain text (`cpm-harness checks`): id, reference, faults.
pub fn text() -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for e in CATALOGUE {
        let faults: Vec<&str> = e.id.faults().iter().map(|f| f.name()).collect();
        let _ = writeln!(
            s,
            "{:<15} [{}] {}",
            e.id.as_str(),
            e.reference(),
            faults.join(" ")
        );
    }
    s
}
