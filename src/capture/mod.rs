//! Packet captures of a run. A recorded wire-event stream is written as a classic pcap that
//! Wireshark and tshark dissect as real SIP, SDP and MSRP traffic, and pcap/pcapng files (ours
//! or tcpdump's) are read back into the same events, so a live run and a capture go through
//! the same checks.
//!
//! - [`write`](mod@write): one-copy events ([`crate::trace::OneCopy`]) → Ethernet/IP/UDP|TCP frames (handshake from the opener,
//!   consistent sequence numbers, ACKs, FIN/RST, valid checksums), flushed per event.
//! - [`read`]: pcap/pcapng → wire events: link layers, IP defragmentation, TCP reassembly,
//!   SIP framing over TCP; errors name the file and the packet.
//! - [`analyze`]: a capture → entity map (given or inferred) → the same observation and checks
//!   as a live case (`cpm-harness analyze`).
//! - [`ladder`]: a capture → normalized messages in a canonical causal order, drawn as a
//!   ladder diagram (`cpm-harness show`).
//! - [`diff`]: two captures compared message by message after that normalization
//!   (`cpm-harness diff`).
//!
//! Why the harness parses MSRP out of each reassembled TCP stream itself rather than reading
//! tshark's fields: TShark 4.0 dissects only the first MSRP message of a TCP segment, puts the
//! end-line in `msrp.data`, and maps only the SDP token `msrp/tcp` (not `TCP/MSRP`) to an MSRP
//! conversation; its dissector output is a cross-check, never the source.

pub mod analyze;
pub mod diff;
pub mod ladder;
pub mod read;
mod tcp;
pub mod tls;
pub mod write;

pub use read::{read_capture, read_capture_from, read_capture_full, Capture, CaptureError};
pub use write::{write_pcap, PcapWriter, WriteStats};
