//! Reads a pcap or pcapng file (ours, tcpdump's, Wireshark's), gzip-compressed or not (as
//! `run` keeps them: `<case>.pcap.gz`), back into wire events.
//!
//! Link types: Ethernet (1, with VLAN tags), Linux cooked SLL (113) and SLL2 (276), raw IP
//! (101, 12, 14, 228, 229), BSD null/loopback (0, 108). IPv4 and IPv6; fragmented datagrams
//! are reassembled. UDP datagrams that start like SIP become `Sip{Udp}`; TCP is reassembled
//! per direction (`tcp.rs`) into `TcpOpen`, `TcpData` (MSRP and anything not SIP) or
//! `Sip{Tcp}` (connections whose payload starts like SIP, split with the crate's
//! [`SipFramer`](crate::codec::sip::SipFramer)), and `TcpClose`. Times are relative to the
//! first packet (a packet stamped earlier than the first counts as time zero).
//!
//! What is not understood (ARP, other protocols, non-SIP UDP) is skipped. A packet that cannot
//! be decoded, a lost segment, a broken SIP stream become warnings in [`Capture::warnings`];
//! so does a file that ends inside its last record (a capture stopped mid-write): it is read
//! up to its last complete packet, as tshark does. Only a file that cannot be read as a
//! capture (bad header, a broken record before the end, unsupported link type) is an error,
//! naming the file and the 1-based packet number (Wireshark's frame number). Hostile input never panics: lengths are checked before slicing, buffers are
//! bounded (the TCP reassembly buffer, `MAX_BUFFERED` in `tcp.rs`, and [`MAX_FRAGMENTED`]).

use super::tcp::{is_sip_datagram, Segment, Tracker};
use crate::codec::sip::Transport;
use crate::trace::WireEvent;
use bytes::Bytes;
use etherparse::defrag::IpDefragPool;
use etherparse::{EtherType, IpNumber, NetSlice, SlicedPacket, TcpSlice, UdpSlice};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::PcapError;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Fragmented datagrams awaiting their other fragments: after this many packets without a
/// new fragment, a datagram is dropped.
pub const MAX_FRAGMENTED: u64 = 1_000;

/// Why a file could not be read as a capture. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a pcap or pcapng file ({reason})", path.display())]
    NotACapture { path: PathBuf, reason: String },
    #[error("{}: packet {packet}: {reason}", path.display())]
    Packet {
        path: PathBuf,
        packet: u64,
        reason: String,
    },
    #[error("{}: packet {packet}: unsupported link type {linktype}", path.display())]
    LinkType {
        path: PathBuf,
        packet: u64,
        linktype: u32,
    },
}

impl CaptureError {
    pub fn path(&self) -> &Path {
        match self {
            CaptureError::Io { path, .. }
            | CaptureError::NotACapture { path, .. }
            | CaptureError::Packet { path, .. }
            | CaptureError::LinkType { path, .. } => path,
        }
    }
}

/// A capture read back.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub events: Vec<(Duration, WireEvent)>,
    /// Things skipped or repaired, one line each, naming the packet or connection.
    pub warnings: Vec<String>,
    pub packets: u64,
    /// Wall-clock time of the first packet, since the Unix epoch.
    pub start: Option<Duration>,
}

/// Reads the events of a pcap or pcapng file (see the module docs).
pub fn read_capture(path: &Path) -> Result<Vec<(Duration, WireEvent)>, CaptureError> {
    Ok(read_capture_full(path)?.events)
}

/// As [`read_capture`], with warnings and counts.
pub fn read_capture_full(path: &Path) -> Result<Capture, CaptureError> {
    let f = File::open(path).map_err(|source| CaptureError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut cap = read_capture_from(path, BufReader::new(f))?;
    // A TLS case's key log beside it: its sessions are read as their plaintext.
    if let Ok(text) = std::fs::read_to_string(super::tls::keys_path(path)) {
        let keys = super::tls::KeyLog::parse(&text);
        if !keys.is_empty() {
            let w = super::tls::decrypt_events(&mut cap.events, &keys);
            cap.warnings.extend(w);
        }
    }
    Ok(cap)
}

/// Reads a capture from any reader, gzip-compressed or not; `name` is used in errors.
pub fn read_capture_from(name: &Path, mut input: impl Read) -> Result<Capture, CaptureError> {
    read_from(name, &mut input, true)
}

/// [`read_capture_from`]; `gzip`: whether a gzip stream may still be unwrapped (once: a
/// compressed capture inside a compressed capture is not one).
fn read_from(name: &Path, input: &mut dyn Read, gzip: bool) -> Result<Capture, CaptureError> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(CaptureError::Io {
                    path: name.to_owned(),
                    source,
                })
            }
        }
    }
    let not = |reason: String| CaptureError::NotACapture {
        path: name.to_owned(),
        reason,
    };
    if got < 4 {
        return Err(not(format!("{got} bytes long")));
    }
    let input = io::Cursor::new(magic).chain(input);
    // A gzip-compressed capture (`run` keeps `<case>.pcap.gz`; Wireshark and tshark read
    // them as they are): the same, decompressed as it is read.
    if magic[..2] == [0x1f, 0x8b] {
        if !gzip {
            return Err(not("a gzip stream inside a gzip stream".into()));
        }
        return read_from(name, &mut flate2::read::MultiGzDecoder::new(input), false);
    }
    let mut dec = Decoder::new(name);
    match u32::from_be_bytes(magic) {
        0x0a0d_0d0a => {
            let mut r = PcapNgReader::new(input).map_err(|e| not(describe(&e)))?;
            // (link type, if_tsresol, if_tsoffset) of the current section's interfaces.
            let mut ifaces: Vec<(u32, u8, u64)> = Vec::new();
            while let Some(block) = r.next_block() {
                let block = match block {
                    Ok(b) => b,
                    Err(e) if cut_short(&e) => {
                        dec.cut_short();
                        break;
                    }
                    Err(e) => return Err(dec.error(&e)),
                };
                let (iface, ts, data) = match block {
                    Block::SectionHeader(_) => {
                        ifaces.clear();
                        continue;
                    }
                    Block::InterfaceDescription(idb) => {
                        ifaces.push(interface(&idb));
                        continue;
                    }
                    Block::EnhancedPacket(p) => (p.interface_id, Some(p.timestamp), p.data),
                    Block::Packet(p) => (
                        u32::from(p.interface_id),
                        Some(Duration::from_nanos(p.timestamp)),
                        p.data,
                    ),
                    Block::SimplePacket(p) => (0, None, p.data),
                    _ => continue,
                };
                dec.packets += 1;
                let Some(&(linktype, resol, offset)) = ifaces.get(iface as usize) else {
                    return Err(dec.packet_error(format!("no interface {iface} described")));
                };
                // pcap-file 2 hands over the raw timestamp count as nanoseconds; scale it
                // by the interface's if_tsresol and add if_tsoffset here.
                let ts = match ts {
                    Some(raw) => scale_ts(raw.as_nanos(), resol, offset),
                    None => dec.last_ts,
                };
                dec.packet(linktype, ts, &data)?;
            }
        }
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => {
            let mut r = PcapReader::new(input).map_err(|e| not(describe(&e)))?;
            let h = r.header();
            let nanos = h.ts_resolution == pcap_file::TsResolution::NanoSecond;
            let linktype = u32::from(h.datalink);
            // Raw records: pcap-file's checked ones reject orig_len > snaplen, which any
            // capture taken with a short snaplen has.
            while let Some(pkt) = r.next_raw_packet() {
                let pkt = match pkt {
                    Ok(p) => p,
                    Err(e) if cut_short(&e) => {
                        dec.cut_short();
                        break;
                    }
                    Err(e) => return Err(dec.error(&e)),
                };
                dec.packets += 1;
                let frac = if nanos {
                    u64::from(pkt.ts_frac)
                } else {
                    u64::from(pkt.ts_frac).saturating_mul(1000)
                };
                let ts = Duration::from_secs(u64::from(pkt.ts_sec)) + Duration::from_nanos(frac);
                dec.packet(linktype, ts, &pkt.data)?;
            }
        }
        m => return Err(not(format!("magic {m:08x}"))),
    }
    Ok(dec.finish())
}

/// Link type, timestamp resolution (microseconds when absent) and offset of an interface.
fn interface(idb: &InterfaceDescriptionBlock) -> (u32, u8, u64) {
    let mut resol = 6u8;
    let mut offset = 0u64;
    for o in &idb.options {
        match o {
            InterfaceDescriptionOption::IfTsResol(r) => resol = *r,
            InterfaceDescriptionOption::IfTsOffset(s) => offset = *s,
            _ => {}
        }
    }
    (u32::from(idb.linktype), resol, offset)
}

/// A raw pcapng timestamp count in units of the interface's `if_tsresol`, plus its offset.
fn scale_ts(count: u128, resol: u8, offset: u64) -> Duration {
    let nanos = if resol & 0x80 == 0 {
        let e = u32::from(resol);
        if e <= 9 {
            count.saturating_mul(10u128.pow(9 - e))
        } else {
            count / 10u128.pow(e.min(38) - 9)
        }
    } else {
        let e = u32::from(resol & 0x7f).min(127);
        (count.saturating_mul(1_000_000_000)) >> e
    };
    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
    Duration::from_nanos(nanos).saturating_add(Duration::from_secs(offset))
}

/// The packet after a Linux cooked header of `len` bytes whose protocol (an EtherType)
/// is at `proto`.
fn cooked(data: &[u8], len: usize, proto: usize) -> Result<SlicedPacket<'_>, String> {
    let (Some(p), Some(rest)) = (data.get(proto..proto + 2), data.get(len..)) else {
        return Err("cooked (SLL) header truncated".into());
    };
    SlicedPacket::from_ether_type(EtherType(u16::from_be_bytes([p[0], p[1]])), rest)
        .map_err(|e| e.to_string())
}

/// The file ends inside a record: a capture stopped mid-write.
fn cut_short(e: &PcapError) -> bool {
    matches!(e, PcapError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof)
}

fn describe(e: &PcapError) -> String {
    match e {
        PcapError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "truncated (file ends inside a record)".into()
        }
        e => e.to_string(),
    }
}

/// Packets → IP datagrams → UDP datagrams and TCP segments → events.
struct Decoder {
    path: PathBuf,
    packets: u64,
    first_ts: Option<Duration>,
    last_ts: Duration,
    defrag: IpDefragPool<u64, ()>,
    tcp: Tracker,
    events: Vec<(Duration, WireEvent)>,
    warnings: Vec<String>,
}

impl Decoder {
    fn new(path: &Path) -> Decoder {
        Decoder {
            path: path.to_owned(),
            packets: 0,
            first_ts: None,
            last_ts: Duration::ZERO,
            defrag: IpDefragPool::new(),
            tcp: Tracker::default(),
            events: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// An error reading the record after the last packet.
    fn error(&self, e: &PcapError) -> CaptureError {
        self.packet_error_at(self.packets + 1, describe(e))
    }

    /// The record after the last packet is cut short: a warning, and the file read so far.
    fn cut_short(&mut self) {
        self.warnings.push(format!(
            "packet {}: truncated (file ends inside a record); read up to packet {}",
            self.packets + 1,
            self.packets
        ));
    }

    fn packet_error(&self, reason: String) -> CaptureError {
        self.packet_error_at(self.packets, reason)
    }

    fn packet_error_at(&self, packet: u64, reason: String) -> CaptureError {
        CaptureError::Packet {
            path: self.path.clone(),
            packet,
            reason,
        }
    }

    fn packet(&mut self, linktype: u32, ts: Duration, data: &[u8]) -> Result<(), CaptureError> {
        let first = *self.first_ts.get_or_insert(ts);
        let t = ts.saturating_sub(first);
        self.last_ts = ts;
        let n = self.packets;
        let sliced = match linktype {
            1 => SlicedPacket::from_ethernet(data).map_err(|e| e.to_string()),
            // Linux cooked v1 (16 bytes, protocol last) and v2 (20 bytes, protocol first).
            // Read by hand: etherparse rejects ARPHRD_LOOPBACK, which is what
            // `tcpdump -i any` records for traffic on lo.
            113 => cooked(data, 16, 14),
            276 => cooked(data, 20, 0),
            101 | 12 | 14 | 228 | 229 => SlicedPacket::from_ip(data).map_err(|e| e.to_string()),
            // Null/loopback: a 4-byte address family (host or network order); the IP
            // version nibble says the rest.
            0 | 108 => match data.get(4..) {
                Some(ip) => SlicedPacket::from_ip(ip).map_err(|e| e.to_string()),
                None => Err("loopback header truncated".into()),
            },
            _ => {
                return Err(CaptureError::LinkType {
                    path: self.path.clone(),
                    packet: n,
                    linktype,
                })
            }
        };
        let sliced = match sliced {
            Ok(s) => s,
            Err(e) => {
                self.warnings.push(format!("packet {n}: not decoded: {e}"));
                return Ok(());
            }
        };
        let (src, dst, payload) = match &sliced.net {
            Some(NetSlice::Ipv4(ip)) => (
                IpAddr::V4(ip.header().source_addr()),
                IpAddr::V4(ip.header().destination_addr()),
                ip.payload(),
            ),
            Some(NetSlice::Ipv6(ip)) => (
                IpAddr::V6(ip.header().source_addr()),
                IpAddr::V6(ip.header().destination_addr()),
                ip.payload(),
            ),
            _ => return Ok(()),
        };
        let (proto, owned);
        let body: &[u8] = if payload.fragmented {
            if n % 100 == 0 {
                self.defrag
                    .retain(|&seen| n.saturating_sub(seen) < MAX_FRAGMENTED);
            }
            match self.defrag.process_sliced_packet(&sliced, n, ()) {
                Ok(Some(whole)) => {
                    proto = whole.ip_number;
                    owned = whole.payload;
                    &owned
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.warnings
                        .push(format!("packet {n}: fragment not reassembled: {e}"));
                    return Ok(());
                }
            }
        } else {
            proto = payload.ip_number;
            payload.payload
        };
        match proto {
            IpNumber::UDP => match UdpSlice::from_slice(body) {
                Ok(udp) => {
                    let p = udp.payload();
                    if is_sip_datagram(p) {
                        self.events.push((
                            t,
                            WireEvent::Sip {
                                transport: Transport::Udp,
                                from: SocketAddr::new(src, udp.source_port()),
                                to: SocketAddr::new(dst, udp.destination_port()),
                                raw: Bytes::copy_from_slice(p),
                            },
                        ));
                    }
                }
                Err(e) => self.warnings.push(format!("packet {n}: bad UDP: {e}")),
            },
            IpNumber::TCP => match TcpSlice::from_slice(body) {
                Ok(tcp) => {
                    self.flush_tcp();
                    self.tcp.segment(
                        t,
                        &Segment {
                            from: SocketAddr::new(src, tcp.source_port()),
                            to: SocketAddr::new(dst, tcp.destination_port()),
                            seq: tcp.sequence_number(),
                            syn: tcp.syn(),
                            ack: tcp.ack(),
                            fin: tcp.fin(),
                            rst: tcp.rst(),
                            payload: tcp.payload(),
                        },
                    );
                    self.flush_tcp();
                }
                Err(e) => self.warnings.push(format!("packet {n}: bad TCP: {e}")),
            },
            _ => {}
        }
        Ok(())
    }

    /// Moves the tracker's events and warnings into packet order with the UDP ones.
    fn flush_tcp(&mut self) {
        self.events.append(&mut self.tcp.events);
        self.warnings.append(&mut self.tcp.warnings);
    }

    fn finish(mut self) -> Capture {
        let end = self
            .last_ts
            .saturating_sub(self.first_ts.unwrap_or_default());
        self.tcp.finish(end);
        self.flush_tcp();
        Capture {
            events: self.events,
            warnings: self.warnings,
            packets: self.packets,
            start: self.first_ts,
        }
    }
}
