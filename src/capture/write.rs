//! Writes wire events as a classic pcap (LINKTYPE_ETHERNET, microsecond timestamps) that
//! Wireshark and tshark dissect without complaint: Ethernet II with a made-up, stable MAC per
//! IP, IPv4 or IPv6, UDP for SIP/UDP, and TCP with a three-way handshake from the side that
//! opened the connection, per-direction sequence and acknowledgement numbers, data segments
//! of at most [`MAX_SEGMENT`] bytes each acknowledged by the peer, FIN on close and RST when a
//! 4-tuple is reopened before it was closed. Checksums are computed (etherparse).
//!
//! It takes a one-copy stream ([`crate::trace::OneCopy`]: what a capture of the traffic
//! would show, every SIP-over-TCP message on its 4-tuple). Each event's frames are flushed to
//! the file before [`PcapWriter::write_event`] returns, so a run that aborts still leaves a
//! readable capture.

use crate::trace::WireEvent;
use etherparse::{IpHeaders, Ipv4Header, PacketBuilder, TcpOptionElement};
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, TsResolution};
use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest TCP payload per segment: a full IPv4 datagram (65,535) less 20-byte IP and TCP
/// headers. Fits IPv6 too.
pub const MAX_SEGMENT: usize = 65_495;
/// Largest UDP payload that fits one IPv4 datagram.
const MAX_UDP_V4: usize = 65_507;
const MAX_UDP_V6: usize = 65_527;
/// Room for the largest frame (Ethernet + IPv6 + TCP + a full segment).
const SNAPLEN: u32 = 262_144;
/// Advertised window; every segment is acknowledged at once, so it never fills.
const WINDOW: u16 = 65_535;
const TTL: u8 = 64;

/// What went into the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub frames: u64,
    /// Events that could not be framed: a datagram too large for UDP, addresses of different
    /// IP families, data for a direction already closed.
    pub skipped: u64,
}

/// Sequence state of one direction of a connection.
#[derive(Clone, Copy)]
struct Half {
    /// Next sequence number this side sends.
    nxt: u32,
    fin: bool,
}

struct Tcp {
    /// Index 0 is the opener.
    ends: [SocketAddr; 2],
    half: [Half; 2],
}

/// Incremental pcap writer over wire events (see the module docs).
///
/// Create it with [`PcapWriter::create`] (a file) or [`PcapWriter::new`] (any writer), feed it
/// with [`PcapWriter::write_event`] in recording order, and end with [`PcapWriter::finish`].
/// Times are the events' offsets from `start`, the run's wall-clock start; an event stamped
/// earlier than the one before it (the recorder takes the time before its lock) is written
/// at the earlier event's time, so the file's timestamps never go backwards.
pub struct PcapWriter<W: Write = BufWriter<File>> {
    out: W,
    /// pcap-file serialises into `staged`; each event's bytes then go to `out`, flushed.
    pcap: pcap_file::pcap::PcapWriter<Staging>,
    staged: Staging,
    start: Duration,
    last: Duration,
    /// Live connections by (opener, target); see [`PcapWriter::conn`].
    tcp: HashMap<(SocketAddr, SocketAddr), Tcp>,
    /// Connections (both orders) that carry TLS records: their plaintext is not written.
    tls: std::collections::HashSet<(SocketAddr, SocketAddr)>,
    /// The ClientHello randoms of the TLS sessions written (what the key log is cut to).
    client_randoms: Vec<Vec<u8>>,
    ip_id: u16,
    frame: Vec<u8>,
    stats: WriteStats,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (truncates) `path` and writes the pcap header.
    pub fn create(path: &Path, start: SystemTime) -> io::Result<Self> {
        let f = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        PcapWriter::new(BufWriter::new(f), start)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the pcap header to `out`.
    pub fn new(mut out: W, start: SystemTime) -> io::Result<Self> {
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::Little,
        };
        let staged = Staging::default();
        let pcap =
            pcap_file::pcap::PcapWriter::with_header(staged.clone(), header).map_err(pcap_err)?;
        out.write_all(&staged.take())?;
        out.flush()?;
        Ok(PcapWriter {
            out,
            pcap,
            staged,
            start: start.duration_since(UNIX_EPOCH).unwrap_or_default(),
            last: Duration::ZERO,
            tcp: HashMap::new(),
            tls: Default::default(),
            client_randoms: Vec::new(),
            ip_id: 0,
            frame: Vec::with_capacity(MAX_SEGMENT + 128),
            stats: WriteStats::default(),
        })
    }

    /// Writes the frames of one event of a one-copy stream and flushes them.
    pub fn write_event(&mut self, t: Duration, ev: &WireEvent) -> io::Result<()> {
        self.add_event(t, ev)?;
        self.flush()
    }

    /// Writes the frames of one event without flushing them (a batch ends with
    /// [`PcapWriter::flush`]).
    pub fn add_event(&mut self, t: Duration, ev: &WireEvent) -> io::Result<()> {
        self.last = self.last.max(t);
        self.frames_for(ev)?;
        self.out.write_all(&self.staged.take())
    }

    /// Flushes the frames written so far to the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Writes a whole recorded stream.
    pub fn write_all(&mut self, events: &[(Duration, WireEvent)]) -> io::Result<()> {
        events
            .iter()
            .try_for_each(|(t, ev)| self.write_event(*t, ev))
    }

    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    /// The ClientHello randoms of the TLS sessions in the capture, for its key log.
    pub fn client_randoms(&self) -> &[Vec<u8>] {
        &self.client_randoms
    }

    /// Flushes and returns the underlying writer. Connections still open stay open in the
    /// capture (no FIN is invented).
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn frames_for(&mut self, ev: &WireEvent) -> io::Result<()> {
        match ev {
            WireEvent::Sip {
                transport: crate::codec::sip::Transport::Udp,
                from,
                to,
                raw,
            } => self.udp(*from, *to, raw),
            // On a TLS connection the records are written, not the plaintext under them.
            WireEvent::Sip { from, to, .. } | WireEvent::TcpData { from, to, .. }
                if self.tls.contains(&(*from, *to)) =>
            {
                Ok(())
            }
            WireEvent::Sip { from, to, raw, .. } => self.data(*from, *to, raw),
            WireEvent::TcpData { from, to, data } => self.data(*from, *to, data),
            WireEvent::TlsRecords { from, to, data } => {
                if self.tls.insert((*from, *to)) {
                    self.tls.insert((*to, *from));
                }
                if let Some(cr) = super::tls::client_random(data) {
                    self.client_randoms.push(cr);
                }
                self.data(*from, *to, data)
            }
            WireEvent::TcpOpen { conn, opener } => {
                let target = if *opener == conn.0 { conn.1 } else { conn.0 };
                self.tls.remove(&(conn.0, conn.1));
                self.tls.remove(&(conn.1, conn.0));
                self.open(*opener, target)
            }
            WireEvent::TcpClose { from, to } => self.close(*from, *to),
            // The session's records are written where they crossed the wire (README, "TLS").
            WireEvent::Tls { .. } => Ok(()),
        }
    }

    fn udp(&mut self, from: SocketAddr, to: SocketAddr, payload: &[u8]) -> io::Result<()> {
        let max = if from.is_ipv4() {
            MAX_UDP_V4
        } else {
            MAX_UDP_V6
        };
        if payload.len() > max || from.is_ipv4() != to.is_ipv4() {
            self.stats.skipped += 1;
            return Ok(());
        }
        let b = self.ip(from.ip(), to.ip()).udp(from.port(), to.port());
        self.frame.clear();
        b.write(&mut self.frame, payload)
            .map_err(io::Error::other)?;
        self.emit()
    }

    fn open(&mut self, opener: SocketAddr, target: SocketAddr) -> io::Result<()> {
        if opener.is_ipv4() != target.is_ipv4() {
            self.stats.skipped += 1;
            return Ok(());
        }
        if self.conn(opener, target).is_some() {
            // Reopened before it was closed: the old connection cannot still exist.
            let (from, to) = (opener, target);
            let (s, a) = self.seq_ack(from, to);
            self.segment(from, to, s, Some(a), Flags::RST, &[], &[])?;
            self.forget(from, to);
        }
        let isn = [isn(opener, target), isn(target, opener)];
        let mss = [TcpOptionElement::MaximumSegmentSize(MAX_SEGMENT as u16)];
        self.segment(opener, target, isn[0], None, Flags::SYN, &[], &mss)?;
        let syn_ack = Some(isn[0].wrapping_add(1));
        self.segment(target, opener, isn[1], syn_ack, Flags::SYN, &[], &mss)?;
        let tcp = Tcp {
            ends: [opener, target],
            half: [
                Half {
                    nxt: isn[0].wrapping_add(1),
                    fin: false,
                },
                Half {
                    nxt: isn[1].wrapping_add(1),
                    fin: false,
                },
            ],
        };
        let (s, a) = (tcp.half[0].nxt, tcp.half[1].nxt);
        self.segment(opener, target, s, Some(a), Flags::NONE, &[], &[])?;
        self.tcp.insert((opener, target), tcp);
        Ok(())
    }

    fn data(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) -> io::Result<()> {
        if self.conn(from, to).is_none() {
            // A connection whose opening was not recorded: its first sender opens it.
            self.open(from, to)?;
        }
        let Some(tcp) = self.conn(from, to) else {
            self.stats.skipped += 1;
            return Ok(());
        };
        if tcp.half[side(tcp, from)].fin {
            self.stats.skipped += 1;
            return Ok(());
        }
        for chunk in data.chunks(MAX_SEGMENT) {
            let (s, a) = self.seq_ack(from, to);
            self.segment(from, to, s, Some(a), Flags::PSH, chunk, &[])?;
            self.advance(from, to, chunk.len() as u32);
            let (s, a) = self.seq_ack(to, from);
            self.segment(to, from, s, Some(a), Flags::NONE, &[], &[])?;
        }
        Ok(())
    }

    fn close(&mut self, from: SocketAddr, to: SocketAddr) -> io::Result<()> {
        let Some(tcp) = self.conn(from, to) else {
            return Ok(());
        };
        let i = side(tcp, from);
        if tcp.half[i].fin {
            return Ok(());
        }
        let (s, a) = self.seq_ack(from, to);
        self.segment(from, to, s, Some(a), Flags::FIN, &[], &[])?;
        self.advance(from, to, 1);
        let (s, a) = self.seq_ack(to, from);
        self.segment(to, from, s, Some(a), Flags::NONE, &[], &[])?;
        let done = self.conn_mut(from, to).is_some_and(|tcp| {
            tcp.half[i].fin = true;
            tcp.half[1 - i].fin
        });
        if done {
            self.forget(from, to);
        }
        Ok(())
    }

    /// The live connection between `a` and `b`, whichever opened it.
    fn conn(&self, a: SocketAddr, b: SocketAddr) -> Option<&Tcp> {
        self.tcp.get(&(a, b)).or_else(|| self.tcp.get(&(b, a)))
    }

    fn conn_mut(&mut self, a: SocketAddr, b: SocketAddr) -> Option<&mut Tcp> {
        if self.tcp.contains_key(&(a, b)) {
            self.tcp.get_mut(&(a, b))
        } else {
            self.tcp.get_mut(&(b, a))
        }
    }

    fn forget(&mut self, a: SocketAddr, b: SocketAddr) {
        self.tcp.remove(&(a, b));
        self.tcp.remove(&(b, a));
    }

    /// (seq of `from`, ack = next seq expected from `to`) on a live connection.
    fn seq_ack(&self, from: SocketAddr, to: SocketAddr) -> (u32, u32) {
        match self.conn(from, to) {
            Some(tcp) => {
                let i = side(tcp, from);
                (tcp.half[i].nxt, tcp.half[1 - i].nxt)
            }
            None => (0, 0),
        }
    }

    fn advance(&mut self, from: SocketAddr, to: SocketAddr, n: u32) {
        if let Some(tcp) = self.conn_mut(from, to) {
            let i = side(tcp, from);
            tcp.half[i].nxt = tcp.half[i].nxt.wrapping_add(n);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        seq: u32,
        ack: Option<u32>,
        flags: Flags,
        payload: &[u8],
        opts: &[TcpOptionElement],
    ) -> io::Result<()> {
        let mut b = self
            .ip(from.ip(), to.ip())
            .tcp(from.port(), to.port(), seq, WINDOW);
        if let Some(a) = ack {
            b = b.ack(a);
        }
        if flags.has(Flags::SYN) {
            b = b.syn();
        }
        if flags.has(Flags::FIN) {
            b = b.fin();
        }
        if flags.has(Flags::RST) {
            b = b.rst();
        }
        if flags.has(Flags::PSH) {
            b = b.psh();
        }
        if !opts.is_empty() {
            b = b.options(opts).map_err(io::Error::other)?;
        }
        self.frame.clear();
        b.write(&mut self.frame, payload)
            .map_err(io::Error::other)?;
        self.emit()
    }

    /// Ethernet + IP layers of a frame from `src` to `dst`.
    fn ip(&mut self, src: IpAddr, dst: IpAddr) -> etherparse::PacketBuilderStep<IpHeaders> {
        let eth = PacketBuilder::ethernet2(mac(src), mac(dst));
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.ip_id = self.ip_id.wrapping_add(1);
                let mut h = Ipv4Header {
                    source: s.octets(),
                    destination: d.octets(),
                    time_to_live: TTL,
                    identification: self.ip_id,
                    ..Default::default()
                };
                h.dont_fragment = true;
                eth.ip(IpHeaders::Ipv4(h, Default::default()))
            }
            (s, d) => eth.ipv6(v6(s), v6(d), TTL),
        }
    }

    fn emit(&mut self) -> io::Result<()> {
        let ts = self.start + self.last;
        let pkt = PcapPacket::new(ts, self.frame.len() as u32, &self.frame);
        self.pcap.write_packet(&pkt).map_err(pcap_err)?;
        self.stats.frames += 1;
        Ok(())
    }
}

/// The in-memory sink pcap-file writes to (it offers no way to flush its writer).
#[derive(Clone, Default)]
struct Staging(Arc<Mutex<Vec<u8>>>);

impl Staging {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl Write for Staging {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("pcap staging buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Flags(u8);

impl Flags {
    const NONE: Flags = Flags(0);
    const SYN: Flags = Flags(1);
    const FIN: Flags = Flags(2);
    const RST: Flags = Flags(4);
    const PSH: Flags = Flags(8);

    fn has(self, f: Flags) -> bool {
        self.0 & f.0 != 0
    }
}

fn side(tcp: &Tcp, from: SocketAddr) -> usize {
    usize::from(tcp.ends[0] != from)
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

fn hash64(x: impl Hash) -> u64 {
    // FNV-1a through `Hasher`: stable across runs and platforms, unlike `DefaultHasher`'s
    // keys, so the same run always gives the same MACs and sequence numbers.
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    x.hash(&mut h);
    h.finish()
}

/// A locally administered unicast MAC derived from the IP.
fn mac(ip: IpAddr) -> [u8; 6] {
    let h = hash64(ip).to_be_bytes();
    [0x02, h[0], h[1], h[2], h[3], h[4]]
}

/// A stable initial sequence number per direction of a 4-tuple.
fn isn(from: SocketAddr, to: SocketAddr) -> u32 {
    hash64((from, to)) as u32
}

fn pcap_err(e: pcap_file::PcapError) -> io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        e => io::Error::other(e),
    }
}

/// Writes `events` (a recorded run that started at `start`) to `path` as a pcap.
pub fn write_pcap(
    path: &Path,
    start: SystemTime,
    events: &[(Duration, WireEvent)],
) -> io::Result<()> {
    let mut w = PcapWriter::create(path, start)?;
    w.write_all(events)?;
    w.finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

/// Compresses a finished capture in place: `<name>` becomes `<name>.gz` (gzip; Wireshark,
/// tshark and [`crate::capture::read_capture`] read it as it is), written aside and renamed,
/// then the original removed. Returns the new path; `Ok(None)` when there is no file.
pub fn gzip_in_place(path: &Path) -> io::Result<Option<std::path::PathBuf>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 3),
        // The fastest level: on this harness's captures the default level costs far more
        // CPU for files only a few % smaller (README, "The bench table", row (a)).
        flate2::Compression::fast(),
    );
    gz.write_all(&data)?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".gz");
    let to = path.with_file_name(name);
    crate::files::write_atomic(&to, &gz.finish()?)?;
    std::fs::remove_file(path)?;
    Ok(Some(to))
}
