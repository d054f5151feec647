//! SDP offer/answer as the node takes part in it: its own MSRP parameters per leg (a fresh
//! session id, its own `a=path`, never the peer's), and who opens each link — the
//! configuration (preset) or RFC 4145 `a=setup` as RFC 6135 uses it.

use super::state::{LegIdx, Opens, Side};
use super::Node;
use crate::codec::msrp::{new_ident, MsrpUri, Scheme};
use crate::codec::sdp::{MsrpSdp, Setup};
use crate::config::{Link, MsrpTransport, Opener, SetupMode};
use crate::entity::Fault;
use rand::Rng;

/// The session-id of [`Fault::ConstantSessionId`].
const CONSTANT_SESSION_ID: &str = "q8RTnV2xLw4ZkP9aHc7Ms3Yd";

impl Node {
    /// Whether the configuration makes this node the opener of a leg's link.
    fn configured_to_open(&self, leg: LegIdx, side: Side, link: Link) -> bool {
        let mine = match self.leg_variant(leg).opener(link) {
            Opener::Offerer => side == Side::Down,
            Opener::Answerer => side == Side::Up,
        };
        mine != self.fault(Fault::WrongDirection)
    }

    /// A fresh local MSRP session (`a=path`, `m=`) carried over `over` (TCP or TLS).
    pub(super) fn new_local_session(&mut self, over: MsrpTransport) -> (MsrpSdp, MsrpUri) {
        let tls = over == MsrpTransport::Tls;
        let sid = if self.fault(Fault::SessionIdReuse) {
            format!("s{}", self.legs.len())
        } else if self.fault(Fault::ConstantSessionId) {
            // Long and random-looking, but the same in every session of every run.
            CONSTANT_SESSION_ID.to_string()
        } else {
            format!("{}{}", new_ident(&mut self.rng), new_ident(&mut self.rng))
        };
        let path = MsrpUri {
            // RFC 4975 §6: msrps: names a TLS session; the scheme fault keeps msrp: under
            // TCP/TLS/MSRP.
            scheme: if tls && !self.fault(Fault::PathSchemeMsrp) {
                Scheme::Msrps
            } else {
                Scheme::Msrp
            },
            userinfo: None,
            host: self.cfg.msrp.ip().to_string(),
            port: self.cfg.msrp.port(),
            session_id: Some(sid),
            transport: if self.fault(Fault::PathUdp) {
                "udp"
            } else {
                "tcp"
            }
            .into(),
            params: vec![],
        };
        let sdp = MsrpSdp {
            origin_user: self
                .cfg
                .name
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
            session_id: self.rng.random::<u32>() as u64,
            session_version: 1,
            c_addr: if self.fault(Fault::SdpWrongC) {
                std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 254, 254, 254))
            } else {
                self.cfg.msrp.ip()
            },
            port: self.cfg.msrp.port() + u16::from(self.fault(Fault::SdpPortMismatch)),
            proto: if self.fault(Fault::MlineProto) {
                "TCP/RTP/AVP"
            } else {
                over.proto()
            }
            .into(),
            path: vec![path.clone()],
            accept_types: if self.fault(Fault::MissingAcceptTypes) {
                vec![]
            } else {
                vec!["message/cpim".into()]
            },
            accept_wrapped_types: vec!["text/plain".into(), "application/octet-stream".into()],
            setup: None,
            max_size: None,
            direction: None,
        };
        (sdp, path)
    }

    /// The answerer's `a=setup` on up leg `leg` and who opens its link (the wrong-setup fault
    /// flips the attribute, not the decision).
    pub(super) fn answer_setup(&self, leg: LegIdx) -> (Option<Setup>, Opens) {
        let link = self.legs[leg].link;
        let configured = self.configured_to_open(leg, Side::Up, link);
        let offer_setup = self.legs[leg].remote_sdp.as_ref().and_then(|s| s.setup);
        let (mut answer_setup, we_open) = match self.leg_variant(leg).setup {
            SetupMode::Preset if self.fault(Fault::SetupInPreset) => (
                Some(if configured {
                    Setup::Active
                } else {
                    Setup::Passive
                }),
                configured,
            ),
            SetupMode::Preset => (None, configured),
            SetupMode::Sdp => match offer_setup {
                Some(Setup::Actpass) => {
                    if configured {
                        (Some(Setup::Active), true)
                    } else {
                        (Some(Setup::Passive), false)
                    }
                }
                Some(Setup::Passive) => (Some(Setup::Active), true),
                // An offerer that is active (explicitly or by default) opens.
                _ => (Some(Setup::Passive), false),
            },
        };
        if self.fault(Fault::WrongSetup) {
            answer_setup = match answer_setup {
                Some(Setup::Active) => Some(Setup::Passive),
                Some(Setup::Passive) => Some(Setup::Active),
                other => other,
            };
        }
        (answer_setup, Opens::from_we_open(we_open))
    }

    /// The offerer's side: who opens down leg `leg`'s link, given the peer's `answer`.
    pub(super) fn offerer_opens(&self, leg: LegIdx, answer: &MsrpSdp) -> Opens {
        let link = self.legs[leg].link;
        let configured = self.configured_to_open(leg, Side::Down, link);
        let we_open = match self.leg_variant(leg).setup {
            SetupMode::Preset => configured,
            // The answer decides; the wrong-direction fault goes against it.
            SetupMode::Sdp => {
                !matches!(answer.setup, Some(Setup::Active)) != self.fault(Fault::WrongDirection)
            }
        };
        Opens::from_we_open(we_open)
    }
}
