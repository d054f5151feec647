//! Limits on what a peer (a SUT, broken or hostile) can make the harness buffer or hold open,
//! enforced where bytes are framed: the SIP/TCP framer, the MSRP parser and chunk counter of
//! each connection, and the accept loops. Crossing one closes that connection with a warning
//! naming the peer, the limit and an excerpt; the case then ends on its timeout at worst.

use crate::codec::{msrp, sip};

/// The receive limits of one process (`run --limit NAME=VALUE`, `sut --limit …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `max-sip-message`: largest SIP message (head + body) on a stream (UDP datagrams are
    /// bounded by the 64 KiB read buffer anyway).
    pub sip_message: usize,
    /// `max-sip-headers`: header lines in one SIP message on a stream.
    pub sip_headers: usize,
    /// `max-msrp-head`: start line + headers of one MSRP message.
    pub msrp_head: usize,
    /// `max-msrp-headers`: header lines of one MSRP message.
    pub msrp_headers: usize,
    /// `max-msrp-chunk`: body bytes of one MSRP chunk (one SEND); a chunk that never ends is
    /// cut here.
    pub msrp_chunk: u64,
    /// `max-conns-per-peer`: TCP connections (SIP and MSRP) accepted from one peer IP address
    /// and open at once; more are closed at once.
    pub conns_per_peer: usize,
    /// `fanout-window`: bytes of message x relays to members at once: a member's turn starts
    /// while the messages of the members being served (by their Byte-Range totals) fit, and
    /// always when none is (not a receive limit: it bounds what x's own fan-out puts into
    /// sockets at once).
    pub fanout_window: u64,
    /// `msrp-socket-buffer`: send and receive buffer asked of the kernel for each MSRP TCP
    /// socket (it doubles the figure for its bookkeeping); 0, the default, leaves the
    /// kernel's autotuning on. Not a receive limit: a short transfer on a new connection
    /// (a member's message) ends before autotuning grows the buffers, so it moves in small
    /// reads and writes; a fixed buffer lets a whole chunk be in flight from the start.
    pub msrp_socket_buffer: u64,
}

impl Default for Limits {
    fn default() -> Self {
        let s = sip::Limits::default();
        let m = msrp::Limits::default();
        Limits {
            sip_message: s.max_message,
            sip_headers: s.max_headers,
            msrp_head: m.max_head,
            msrp_headers: m.max_headers,
            msrp_chunk: 16 << 20,
            conns_per_peer: 16,
            fanout_window: 64 << 20,
            msrp_socket_buffer: 0,
        }
    }
}

/// `msrp-socket-buffer` of [`Limits::many_sessions`]: room for a 64 KiB chunk many times
/// over from a connection's first byte (its effect is measured in the README's bench notes).
pub const MANY_SESSIONS_SOCKET_BUFFER: u64 = 1 << 20;

/// The names accepted by [`Limits::set`], in the order of the README table.
pub const NAMES: &[&str] = &[
    "max-sip-message",
    "max-sip-headers",
    "max-msrp-head",
    "max-msrp-headers",
    "max-msrp-chunk",
    "max-conns-per-peer",
    "fanout-window",
    "msrp-socket-buffer",
];

impl Limits {
    /// For a server of many sessions (the load and bench commands; the reference SUT takes
    /// its connections per peer): as [`Limits::default`], but any number of connections
    /// from one peer address — a group server sees one per session, or per member, from the
    /// same neighbour — and [`MANY_SESSIONS_SOCKET_BUFFER`] per MSRP socket.
    pub fn many_sessions() -> Limits {
        Limits {
            conns_per_peer: usize::MAX,
            msrp_socket_buffer: MANY_SESSIONS_SOCKET_BUFFER,
            ..Limits::default()
        }
    }
}

impl Limits {
    pub fn sip(&self) -> sip::Limits {
        sip::Limits {
            max_message: self.sip_message,
            max_headers: self.sip_headers,
        }
    }

    pub fn msrp(&self) -> msrp::Limits {
        msrp::Limits {
            max_head: self.msrp_head,
            max_headers: self.msrp_headers,
        }
    }

    /// Applies `NAME=VALUE` (a positive integer; `k`, `M`, `G` suffixes are powers of 1024).
    pub fn set(&mut self, kv: &str) -> Result<(), String> {
        let (name, value) = kv
            .split_once('=')
            .ok_or_else(|| format!("--limit {kv:?}: expected NAME=VALUE"))?;
        let v = parse_size(value.trim())
            .ok_or_else(|| format!("--limit {name}: {value:?} is not a positive size"))?;
        let usize_v = usize::try_from(v).map_err(|_| format!("--limit {name}: too large"))?;
        match name.trim() {
            "max-sip-message" => self.sip_message = usize_v,
            "max-sip-headers" => self.sip_headers = usize_v,
            "max-msrp-head" => self.msrp_head = usize_v,
            "max-msrp-headers" => self.msrp_headers = usize_v,
            "max-msrp-chunk" => self.msrp_chunk = v,
            "max-conns-per-peer" => self.conns_per_peer = usize_v,
            "fanout-window" => self.fanout_window = v,
            "msrp-socket-buffer" => self.msrp_socket_buffer = v,
            other => {
                return Err(format!(
                    "--limit: unknown limit {other:?}{}; known: {}",
                    crate::suggest::did_you_mean(other, NAMES),
                    NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// Limits from `NAME=VALUE` items over the defaults.
    pub fn from_args(items: &[String]) -> Result<Limits, String> {
        let mut l = Limits::default();
        for kv in items {
            l.set(kv)?;
        }
        Ok(l)
    }

    /// The `--limit` arguments that reproduce these limits (for a SUT launched by the harness).
    pub fn to_args(&self) -> Vec<String> {
        let d = Limits::default();
        let mut out = Vec::new();
        let mut push = |n: &str, a: u64, b: u64| {
            if a != b {
                out.push(format!("{n}={a}"));
            }
        };
        push(
            "max-sip-message",
            self.sip_message as u64,
            d.sip_message as u64,
        );
        push(
            "max-sip-headers",
            self.sip_headers as u64,
            d.sip_headers as u64,
        );
        push("max-msrp-head", self.msrp_head as u64, d.msrp_head as u64);
        push(
            "max-msrp-headers",
            self.msrp_headers as u64,
            d.msrp_headers as u64,
        );
        push("max-msrp-chunk", self.msrp_chunk, d.msrp_chunk);
        push(
            "max-conns-per-peer",
            self.conns_per_peer as u64,
            d.conns_per_peer as u64,
        );
        push("fanout-window", self.fanout_window, d.fanout_window);
        push(
            "msrp-socket-buffer",
            self.msrp_socket_buffer,
            d.msrp_socket_buffer,
        );
        out
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()?
        .checked_mul(mult)
        .filter(|&v| v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_codecs_and_set_parses_sizes() {
        let d = Limits::default();
        assert_eq!(d.sip(), sip::Limits::default());
        assert_eq!(d.msrp_head, 16 * 1024);
        let mut l = d;
        l.set("max-msrp-chunk=4M").unwrap();
        l.set("max-conns-per-peer=3").unwrap();
        l.set("fanout-window=2M").unwrap();
        l.set("msrp-socket-buffer=1M").unwrap();
        assert_eq!(l.msrp_socket_buffer, 1 << 20);
        assert_eq!(l.msrp_chunk, 4 << 20);
        assert_eq!(l.conns_per_peer, 3);
        assert_eq!(l.fanout_window, 2 << 20);
        assert_eq!(
            l.to_args(),
            vec![
                "max-msrp-chunk=4194304",
                "max-conns-per-peer=3",
                "fanout-window=2097152",
                "msrp-socket-buffer=1048576"
            ]
        );
        assert_eq!(Limits::from_args(&l.to_args()).unwrap(), l);
    }

    #[test]
    fn bad_limits_are_named() {
        let mut l = Limits::default();
        let e = l.set("max-msrp-chunks=5").unwrap_err();
        assert!(e.contains("did you mean \"max-msrp-chunk\""), "{e}");
        assert!(l
            .set("max-sip-message=0")
            .unwrap_err()
            .contains("not a positive size"));
        assert!(l.set("max-sip-message=-1").is_err());
        assert!(l.set("max-sip-message").unwrap_err().contains("NAME=VALUE"));
        assert!(l.set("max-msrp-chunk=99999999999G").is_err());
    }
}
