//! Deliberate deviations of the reference SUT (`cpm-harness sut --fault NAME`): each is one
//! named departure from the rules, so each check of the harness can be shown to fail.

use serde::{Deserialize, Serialize};

macro_rules! faults {
    (
        conformance { $($variant:ident = $name:literal, $check:literal, $what:literal;)* }
        hostile { $($hvariant:ident = $hname:literal, $hwhat:literal;)* }
        cosmetic { $($cvariant:ident = $cname:literal, $cwhat:literal;)* }
    ) => {
        /// A single deliberate deviation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
        pub enum Fault {
            $(#[serde(rename = $name)] #[doc = $what] $variant,)*
            $(#[serde(rename = $hname)] #[doc = $hwhat] $hvariant,)*
            $(#[serde(rename = $cname)] #[doc = $cwhat] $cvariant,)*
        }

        impl Fault {
            /// The conformance faults: each trips one check (`selftest --mutants`).
            pub const ALL: &'static [Fault] = &[$(Fault::$variant,)*];
            /// The hostile-SUT faults (issue 8): broken or hostile wire behaviour the harness
            /// must survive with a fail or inconc verdict in bounded time and memory.
            pub const HOSTILE: &'static [Fault] = &[$(Fault::$hvariant,)*];
            /// Every fault: [`Fault::ALL`], [`Fault::HOSTILE`] and the cosmetic ones, which
            /// break no rule (target check `none`) and serve the reports' tests.
            pub const EVERY: &'static [Fault] =
                &[$(Fault::$variant,)* $(Fault::$hvariant,)* $(Fault::$cvariant,)*];
            pub fn name(self) -> &'static str {
                match self {
                    $(Fault::$variant => $name,)*
                    $(Fault::$hvariant => $hname,)*
                    $(Fault::$cvariant => $cname,)*
                }
            }
            /// The check this fault is meant to trip (`any` for a hostile fault).
            pub fn target_check(self) -> &'static str {
                match self {
                    $(Fault::$variant => $check,)*
                    $(Fault::$hvariant => "any",)*
                    $(Fault::$cvariant => "none",)*
                }
            }
            pub fn describe(self) -> &'static str {
                match self {
                    $(Fault::$variant => $what,)*
                    $(Fault::$hvariant => $hwhat,)*
                    $(Fault::$cvariant => $cwhat,)*
                }
            }
            pub fn is_hostile(self) -> bool {
                Fault::HOSTILE.contains(&self)
            }
            pub fn parse(s: &str) -> Result<Fault, String> {
                match s {
                    $($name => Ok(Fault::$variant),)*
                    $($hname => Ok(Fault::$hvariant),)*
                    $($cname => Ok(Fault::$cvariant),)*
                    _ => {
                        let names: Vec<&str> = Fault::EVERY.iter().map(|f| f.name()).collect();
                        let hint = crate::suggest::did_you_mean(s, &names);
                        Err(format!("unknown fault {s:?}{hint}; known: {}", names.join(", ")))
                    }
                }
            }
        }
    };
}

faults! {
    conformance {
    MlineProto = "m-line-proto", "SDP-MEDIA", "the m= line says TCP/RTP/AVP instead of TCP/MSRP";
    SdpWrongC = "sdp-wrong-c", "SDP-C", "c= carries an address the entity does not listen on";
    SdpPortMismatch = "sdp-port-mismatch", "SDP-PORT", "m= port differs from the a=path port";
    PathUdp = "path-udp", "SDP-PATH", "a=path URI says ;udp instead of ;tcp";
    PathSchemeMsrp = "path-scheme-msrp", "SDP-PATH", "a=path says msrp: in a TCP/TLS/MSRP session (msrps: expected)";
    PlainOverTls = "plain-over-tls", "LINK-TLS", "opens its links over plain TCP where TLS (TCP/TLS/MSRP) was negotiated";
    PlainSipOverTls = "plain-sip-over-tls", "SIG-TLS", "sends its SIP over plain TCP where SIP over TLS was configured (the messages unchanged: Via TLS, sips: URIs)";
    SdpCopyUpstreamPath = "sdp-copy-upstream-path", "SDP-OWN", "a B2BUA copies the upstream a=path into its downstream offer";
    SessionIdReuse = "session-id-reuse", "SDP-UNIQUE", "every leg uses the same short session-id";
    ConstantSessionId = "constant-session-id", "SDP-UNIQUE", "uses one long random-looking session-id in every session of every case";
    MissingAcceptTypes = "missing-accept-types", "SDP-ACCEPT", "no a=accept-types line";
    WrongSetup = "wrong-setup", "SDP-SETUP", "answers a=setup:active to an actpass offer when it should be passive (and vice versa)";
    ParamsInWrongMessage = "params-in-wrong-message", "SDP-PLACE", "sends its 200 OK without an SDP body";
    WrongDirection = "wrong-direction", "LINK-DIR", "opens the links the figure gives its peer";
    ConnectWrongTarget = "connect-wrong-target", "LINK-TARGET", "connects to the peer's SIP port instead of its a=path";
    EarlyTrigger = "early-trigger", "LINK-TRIGGER", "opens its links on the downstream 200 whatever the declared trigger";
    LateTrigger = "late-trigger", "LINK-TRIGGER", "opens its links 3 s after the trigger";
    ConnectBefore200 = "connect-before-200", "LINK-TRIGGER", "client-a connects L1 to pf-a's MSRP address from its configuration as it sends INVITE1, before 200-1 (and binds once 200-1 came)";
    NoBindSend = "no-bind-send", "LINK-BIND", "sends no binding SEND after opening a link";
    NoReuse = "no-reuse", "LINK-REUSE", "opens a new connection per session even with reuse declared";
    Skip200Upstream = "skip-200-upstream", "SIG-SEQ", "never answers its upstream INVITE";
    CfAnswerEarly = "cf-answer-early", "SIG-CF-ANSWER", "x answers 200-2 at once in figures where it must wait for a member";
    CfAnswerLate = "cf-answer-late", "SIG-CF-ANSWER", "x waits for the first 200-3 in figures where it must answer at once";
    AckTooEarly = "ack-too-early", "SIG-ACK", "sends the downstream ACK on the 200 when it must wait for the upstream ACK";
    NoAckDownstream = "no-ack-downstream", "SIG-ACK", "never ACKs the downstream 200";
    FanoutFirstOnly = "fanout-first-only", "SIG-FANOUT", "x invites only the first member";
    AdhocToGroupUri = "adhoc-to-group-uri", "SIG-FANOUT", "client-a sends its ad-hoc request (with the resource list) to the group URI instead of the conference-factory URI";
    ReuseCallId = "reuse-call-id", "SIG-B2BUA", "a B2BUA reuses the upstream Call-ID on its downstream leg";
    NoByeDownstream = "no-bye-downstream", "SIG-TEARDOWN", "answers the upstream BYE but never sends BYE downstream";
    IgnoreRouteSet = "ignore-route-set", "SIG-ROUTE", "sends ACK and BYE straight to the peer's Contact, without the route set the SIP/IP core recorded";
    NoAckNon2xx = "no-ack-non2xx", "SIG-NON2XX-ACK", "a middle entity never ACKs a final non-2xx to its INVITE";
    NoByeUpstream = "no-bye-upstream", "SIG-ALL-DECLINE", "a middle entity that answered its upstream INVITE never ends its up leg once every down leg ended (every member declined or left)";
    AbortAsEnd = "abort-as-end", "MEDIA-ABORT", "a relay forwards the last chunk of an aborted message (`#`) with `$`, as if the message were complete";
    NoReleaseOnClose = "no-release-on-close", "SIG-LEAVE", "pf-b keeps the dialog of a member that closed its link without BYE until the call ends (no BYE to it, none upstream)";
    ContinueAfterReject = "continue-after-reject", "MEDIA-REJECT", "pf-b goes on sending a message its member refused with 413 or 415, and keeps the member's leg";
    NoSuccessReport = "no-success-report", "MEDIA-REPORT", "sends no success REPORT where a SEND asked for one (Success-Report: yes)";
    ReportPartialRange = "report-partial-range", "MEDIA-REPORT", "its success REPORT covers the last chunk's Byte-Range only, not the whole message";
    ReportNotPropagated = "report-not-propagated", "MEDIA-REPORT", "a middle entity relays SENDs without the Success-Report/Failure-Report its upstream asked for";
    ReportBeforeDelivery = "report-before-delivery", "MEDIA-REPORT", "a middle entity sends its success REPORT on receipt of the whole message, before delivery downstream was reported (where the profile declares after-delivery)";
    RespondsDespiteFailureReportNo = "responds-despite-failure-report-no", "MEDIA-NO-RESPONSE", "answers SENDs with 200 although they carry Failure-Report: no";
    WaitForeverForMember = "wait-forever-for-member", "SIG-NO-ANSWER", "never gives up on an INVITE nobody answers (no Timer B): a member that never answers gets no final response upstream";
    DeclineAnswersCf = "decline-answers-cf", "SIG-DECLINE", "x answers 200-2 on a member's decline, before any member accepted, in figures where it waits for the first 200-3";
    RelayTruncate = "relay-truncate", "MEDIA-DELIVERY", "drops the last 10 bytes of every relayed message";
    WrongToPath = "wrong-to-path", "MEDIA-PATHS", "relayed SENDs carry the upstream To-Path";
    BadByteRange = "bad-byte-range", "MEDIA-FRAMING", "relayed chunks start their Byte-Range at 0";
    NoMsrp200 = "no-msrp-200", "MEDIA-RESPONSE", "never answers a SEND";
    CpimAltered = "cpim-altered", "MEDIA-CPIM", "rewrites the CPIM From header while relaying";
    MalformedSip = "malformed-sip", "WIRE-SYNTAX", "before each INVITE it sends, sends the same peer an OPTIONS with a header line that has no colon";
    UnbracketedIpv6 = "unbracketed-ipv6", "WIRE-SYNTAX", "writes its IPv6 address without brackets as the host of the From URI of the INVITEs it sends (`sip:x@::1`)";
    CIp4OnIpv6 = "c-ip4-on-ipv6", "SDP-C", "labels its c= line IN IP4 whatever the address family (`c=IN IP4 ::1` on IPv6)";
    }
    hostile {
    Silent = "silent", "never sends anything: no SIP, no connection, no MSRP";
    CloseMidChunk = "close-mid-chunk", "closes an MSRP connection in the middle of its first chunk with a body";
    GarbageSip = "garbage-sip", "sends binary garbage instead of each SIP message";
    GarbageMsrp = "garbage-msrp", "sends binary garbage instead of each MSRP write";
    HugeSipHeader = "huge-sip-header", "sends each SIP message over TCP with a 100 MB header";
    EndlessChunk = "endless-chunk", "its first MSRP chunk with a body never ends (filler bytes until the peer closes)";
    SlowDrip = "slow-drip", "sends SIP (over TCP) and MSRP one byte per second";
    ContentLengthShort = "content-length-short", "SIP Content-Length 10 smaller than the body";
    ContentLengthLong = "content-length-long", "SIP Content-Length 100 larger than the body";
    InvalidUtf8 = "invalid-utf8", "a SIP header with invalid UTF-8 in every message";
    DupRetransmit = "dup-retransmit", "sends every SIP message and every complete MSRP message twice at once";
    LateRetransmit = "late-retransmit", "sends every SIP message again 200 ms later, after its transaction ended";
    UnknownTransaction = "unknown-transaction", "answers with responses whose Via branch and Call-ID match no transaction";
    UnknownSessionSend = "unknown-session-send", "its MSRP requests carry a To-Path session-id the peer never offered";
    WrongPort = "wrong-port", "connects its MSRP links to the peer's port + 1000";
    ConnectionFlood = "connection-flood", "opens 200 extra TCP connections to each MSRP peer before its link, and holds them";
    }
    cosmetic {
    OwnContent = "own-content", "client-a sends bytes of its own (the pattern with every byte inverted) of the size it is asked to send (allowed, unless the profile pins the content)";
    SetupInPreset = "setup-in-preset", "in setup: preset mode still sends a=setup: actpass in its offers, active or passive in its answers as the preset says (allowed)";
    ScriptInjection = "script-injection", "puts <script> markup in an X-Note SIP header and an a=x-note SDP line, otherwise correct";
    }
}

/// The markup [`Fault::ScriptInjection`] sends: reports must show it as text, never run it.
pub const INJECTED_MARKUP: &str =
    "<script>document.title='injected'</script><img src=x onerror=\"alert(1)\">";

/// [`Fault::ScriptInjection`]: the message with an `X-Note` header and, when its body is SDP,
/// an `a=x-note` line holding [`INJECTED_MARKUP`]; re-framed (Content-Length) and re-parsed.
/// The message is returned unchanged should the result not parse.
pub fn inject_script(msg: crate::codec::sip::SipMessage) -> crate::codec::sip::SipMessage {
    let raw = &msg.raw[..];
    let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return msg;
    };
    let sdp = msg
        .content_type()
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/sdp"));
    let mut body = msg.body.to_vec();
    if sdp {
        body.extend_from_slice(format!("a=x-note:{INJECTED_MARKUP}\r\n").as_bytes());
    }
    let mut out = Vec::with_capacity(raw.len() + 200);
    for line in raw[..head_end].split(|&b| b == b'\n') {
        let l = line.strip_suffix(b"\r").unwrap_or(line);
        let name = l.split(|&b| b == b':').next().unwrap_or(b"");
        let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
        if name == "content-length" || name == "l" {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        } else {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("X-Note: {INJECTED_MARKUP}\r\n\r\n").as_bytes());
    out.extend_from_slice(&body);
    crate::codec::sip::SipMessage::parse(&out).unwrap_or(msg)
}

impl Fault {
    /// Faults that only show behind a SIP/IP core (`run --core`): without one there is no
    /// route set to ignore.
    pub fn needs_core(self) -> bool {
        matches!(self, Fault::IgnoreRouteSet)
    }
}
