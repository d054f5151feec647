//! Deliberate deviations of the reference SUT (`cpm-harness sut --fault NAME`): each is one
//! named departure from the rules, so each check of the harness can be shown to fail.

use serde::{Deserialize, Serialize};

macro_rules! faults {
    ($($variant:ident = $name:literal, $check:literal, $what:literal;)*) => {
        /// A single deliberate deviation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
        pub enum Fault {
            $(#[serde(rename = $name)] #[doc = $what] $variant,)*
        }

        impl Fault {
            pub const ALL: &'static [Fault] = &[$(Fault::$variant,)*];
            pub fn name(self) -> &'static str {
                match self { $(Fault::$variant => $name,)* }
            }
            /// The check this fault is meant to trip.
            pub fn target_check(self) -> &'static str {
                match self { $(Fault::$variant => $check,)* }
            }
            pub fn describe(self) -> &'static str {
                match self { $(Fault::$variant => $what,)* }
            }
            pub fn parse(s: &str) -> Result<Fault, String> {
                match s {
                    $($name => Ok(Fault::$variant),)*
                    _ => {
                        let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                        let hint = crate::util::did_you_mean(s, &names);
                        Err(format!("unknown fault {s:?}{hint}; known: {}", names.join(", ")))
                    }
                }
            }
        }
    };
}

faults! {
    MlineProto = "m-line-proto", "SDP-MEDIA", "the m= line says TCP/RTP/AVP instead of TCP/MSRP";
    SdpWrongC = "sdp-wrong-c", "SDP-C", "c= carries an address the entity does not listen on";
    SdpPortMismatch = "sdp-port-mismatch", "SDP-PORT", "m= port differs from the a=path port";
    PathUdp = "path-udp", "SDP-PATH", "a=path URI says ;udp instead of ;tcp";
    SdpCopyUpstreamPath = "sdp-copy-upstream-path", "SDP-OWN", "a B2BUA copies the upstream a=path into its downstream offer";
    SessionIdReuse = "session-id-reuse", "SDP-UNIQUE", "every leg uses the same short session-id";
    MissingAcceptTypes = "missing-accept-types", "SDP-ACCEPT", "no a=accept-types line";
    WrongSetup = "wrong-setup", "SDP-SETUP", "answers a=setup:active to an actpass offer when it should be passive (and vice versa)";
    ParamsInWrongMessage = "params-in-wrong-message", "SDP-PLACE", "sends its 200 OK without an SDP body";
    WrongDirection = "wrong-direction", "LINK-DIR", "opens the links the figure gives its peer";
    ConnectWrongTarget = "connect-wrong-target", "LINK-TARGET", "connects to the peer's SIP port instead of its a=path";
    EarlyTrigger = "early-trigger", "LINK-TRIGGER", "opens its links on the downstream 200 whatever the declared trigger";
    LateTrigger = "late-trigger", "LINK-TRIGGER", "opens its links 3 s after the trigger";
    NoBindSend = "no-bind-send", "LINK-BIND", "sends no binding SEND after opening a link";
    NoReuse = "no-reuse", "LINK-REUSE", "opens a new connection per session even with reuse declared";
    Skip200Upstream = "skip-200-upstream", "SIG-SEQ", "never answers its upstream INVITE";
    CfAnswerEarly = "cf-answer-early", "SIG-CF-ANSWER", "x answers 200-2 at once in figures where it must wait for a member";
    CfAnswerLate = "cf-answer-late", "SIG-CF-ANSWER", "x waits for the first 200-3 in figures where it must answer at once";
    AckTooEarly = "ack-too-early", "SIG-ACK", "sends the downstream ACK on the 200 when it must wait for the upstream ACK";
    NoAckDownstream = "no-ack-downstream", "SIG-ACK", "never ACKs the downstream 200";
    FanoutFirstOnly = "fanout-first-only", "SIG-FANOUT", "x invites only the first member";
    ReuseCallId = "reuse-call-id", "SIG-B2BUA", "a B2BUA reuses the upstream Call-ID on its downstream leg";
    NoByeDownstream = "no-bye-downstream", "SIG-TEARDOWN", "answers the upstream BYE but never sends BYE downstream";
    IgnoreRouteSet = "ignore-route-set", "SIG-ROUTE", "sends ACK and BYE straight to the peer's Contact, without the route set the SIP/IP core recorded";
    RelayTruncate = "relay-truncate", "MEDIA-DELIVERY", "drops the last 10 bytes of every relayed message";
    WrongToPath = "wrong-to-path", "MEDIA-PATHS", "relayed SENDs carry the upstream To-Path";
    BadByteRange = "bad-byte-range", "MEDIA-FRAMING", "relayed chunks start their Byte-Range at 0";
    NoMsrp200 = "no-msrp-200", "MEDIA-RESPONSE", "never answers a SEND";
    CpimAltered = "cpim-altered", "MEDIA-CPIM", "rewrites the CPIM From header while relaying";
}

impl Fault {
    /// Faults that only show behind a SIP/IP core (`run --core`): without one there is no
    /// route set to ignore.
    pub fn needs_core(self) -> bool {
        matches!(self, Fault::IgnoreRouteSet)
    }
}
