//! The thin tokio driver: real sockets and real time around one sans-IO [`Node`].
//!
//! It binds the node's SIP (UDP and TCP) and MSRP (TCP) addresses, feeds what arrives to the
//! node as [`Input`]s, carries out the node's [`Output`]s, and sleeps until the node's next
//! timer. Every socket read and write runs in its own small task that talks to the node's loop
//! over channels, so the node itself is driven from one task and never blocks.
//!
//! Backpressure: the node counts bytes handed to a connection's writer until the writer reports
//! them flushed ([`Input::MsrpFlushed`]) and pauses reading upstream links when a downstream
//! queue is over its high-water mark; a paused reader task simply stops calling `read`, so TCP
//! flow control pushes back to the sender.
//!
//! Limits ([`Limits`]): SIP over TCP is framed with the configured sizes, MSRP is parsed by the
//! node with its own, and each listener accepts at most `conns_per_peer` open connections from
//! one peer IP address (more are closed at once, with a warning naming the peer).

pub mod hostile;
pub mod queue;
mod slab;
pub mod tls;

use crate::codec::sip::{Framed, Limits as SipLimits, SipFramer, SipMessage, Transport};
use crate::entity::{ConnId, Input, Node, NodeConfig, NodeEvent, Output, Start};
use crate::limits::Limits;
use crate::trace::{Recorder, WireEvent};
use anyhow::Context;
use bytes::Bytes;
use hostile::{Hostile, MsrpPlan, SipPlan};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

/// An MSRP connection: plain TCP, or a TLS session over it (either end of the handshake).
enum MsrpStream {
    Tcp(TcpStream),
    TlsClient(Box<tls::ClientStream>),
    TlsServer(Box<tls::ServerStream>),
}

impl MsrpStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            MsrpStream::Tcp(s) => s,
            MsrpStream::TlsClient(s) => &s.get_ref().0.tcp,
            MsrpStream::TlsServer(s) => &s.get_ref().0.tcp,
        }
    }

    /// The TLS version, when it is a TLS session.
    fn tls_version(&self) -> Option<String> {
        let v = match self {
            MsrpStream::Tcp(_) => return None,
            MsrpStream::TlsClient(s) => s.get_ref().1.protocol_version(),
            MsrpStream::TlsServer(s) => s.get_ref().1.protocol_version(),
        };
        Some(match v {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
            Some(other) => format!("{other:?}"),
            None => "TLS".into(),
        })
    }
}

/// How a node's MSRP listener takes connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListenTls {
    /// Plain TCP (MSRP over TLS is not configured).
    Plain,
    /// TLS only: plain text on the port is a failed handshake, named with the peer.
    Tls,
    /// Either, by the first byte (a TLS handshake record is 0x16): the reference SUT's
    /// per-call mode, where one listener serves plain and TLS calls.
    Sniff,
}

/// What the I/O tasks report to the node's loop.
enum Ev {
    /// Boxed, as is `error` below: the channel allocates room for 32 events at once, per node.
    Sip {
        transport: Transport,
        from: SocketAddr,
        msg: Box<SipMessage>,
    },
    SipBad {
        from: SocketAddr,
        err: String,
    },
    /// A framed SIP message over TCP that does not parse (the node may refuse it).
    SipInvalid {
        from: SocketAddr,
        raw: Bytes,
        error: Box<crate::codec::sip::SipError>,
    },
    SipConn {
        peer: SocketAddr,
        tx: mpsc::UnboundedSender<Bytes>,
    },
    SipConnGone {
        peer: SocketAddr,
    },
    MsrpAccepted {
        stream: MsrpStream,
        peer: SocketAddr,
        slot: Slot,
    },
    /// A connection whose TLS handshake failed (the reason names the peer and the alert).
    TlsFailed {
        peer: SocketAddr,
        reason: String,
    },
    /// A connection refused by the per-peer limit.
    Refused {
        peer: SocketAddr,
        what: &'static str,
        open: usize,
    },
    Connected {
        conn: ConnId,
        result: Result<MsrpStream, String>,
    },
    MsrpData {
        conn: ConnId,
        data: Bytes,
        /// The reader took this many bytes of the node's read budget for it (none while
        /// draining a closed connection): the loop gives them back once the node has them.
        budgeted: usize,
    },
    Flushed {
        conn: ConnId,
        bytes: usize,
    },
    Closed {
        conn: ConnId,
        reason: String,
    },
}

enum WriteCmd {
    Data(Bytes),
    Close,
    /// Hostile faults: filler bytes until the peer gives up; data one byte per second.
    Endless,
    Drip(Bytes),
}

/// Counts repeated warnings of one kind from one peer, so a flood of garbage datagrams or
/// connections makes a few lines (the first three, then the 10th, 100th, …), not one each.
#[derive(Default)]
struct Noisy(HashMap<(&'static str, IpAddr), u64>);

impl Noisy {
    /// `Some(suffix)` when this occurrence is to be reported; the suffix tells how many so far.
    fn admit(&mut self, kind: &'static str, ip: IpAddr) -> Option<String> {
        let n = self.0.entry((kind, ip)).or_default();
        *n += 1;
        let n = *n;
        if n <= 3 {
            Some(String::new())
        } else if is_power_of_ten(n) {
            Some(format!(" (the {n}th time)"))
        } else {
            None
        }
    }
}

fn is_power_of_ten(n: u64) -> bool {
    let s = n.to_string();
    s.len() > 1 && s.starts_with('1') && s[1..].bytes().all(|b| b == b'0')
}

/// Open accepted connections per peer IP, shared by a node's listeners.
#[derive(Clone)]
struct PeerSlots {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One accepted connection's place in [`PeerSlots`], given back when dropped (when the
/// connection's reader ends).
struct Slot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PeerSlots {
    fn new(max: usize) -> PeerSlots {
        PeerSlots {
            max,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for a new connection from `ip`, or `Err(open)` when `max` are open.
    fn take(&self, ip: IpAddr) -> Result<Slot, usize> {
        let Ok(mut m) = self.open.lock() else {
            return Err(0);
        };
        let n = m.entry(ip).or_default();
        if *n >= self.max {
            return Err(*n);
        }
        *n += 1;
        Ok(Slot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.open.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

struct MsrpConn {
    tx: queue::Sender<WriteCmd>,
    /// `true` pauses the reader (backpressure); dropping it (the connection is closed) lets
    /// the reader drain what the peer still sends for a moment, then end.
    pause: watch::Sender<bool>,
}

/// How far the readers of all MSRP connections of the process together may run ahead of
/// their nodes (and of the limits the nodes check). A node's high-water mark only counts what
/// it has handled, so without this a reader faster than its node queues without bound. One
/// budget for the process, not one per connection or node: thousands of members in a process
/// would otherwise each hold a read-ahead (README, "The bench table"). A reader takes budget
/// only once its socket is readable and reads no more than it took, so what waits for budget
/// waits in the kernel and no idle connection holds any; a node never waits for budget, so
/// every taken byte comes back.
const READ_AHEAD: usize = 4 * 1024 * 1024;
static READ_BUDGET: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(READ_AHEAD)));
/// The most one read takes (big reads keep the four-hop relay's syscalls few).
const READ_MAX: usize = 256 * 1024;

/// After the node closed a connection, its reader still takes what the peer sends (a late
/// response is evidence) for this long and up to this many bytes, then drops the socket: a
/// peer that never stops sending cannot keep it reading.
const CLOSE_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(1);
const CLOSE_DRAIN_BYTES: usize = 256 * 1024;

/// A running node: send it inputs (e.g. [`Input::Send`]), read its events, stop it.
pub struct NodeHandle {
    pub name: String,
    pub inputs: queue::Sender<Input>,
    pub events: queue::Receiver<NodeEvent>,
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl NodeHandle {
    /// Asks the loop to stop and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.join.await.context("node task panicked")?
    }
}

/// Binds the node's addresses (errors name the address) and starts its loop.
pub async fn spawn_node(cfg: NodeConfig, recorder: Option<Recorder>) -> anyhow::Result<NodeHandle> {
    let name = cfg.name.clone();
    let udp = UdpSocket::bind(cfg.sip)
        .await
        .with_context(|| format!("{name}: cannot bind SIP/UDP {}", cfg.sip))?;
    grow_udp_receive_buffer(&udp);
    let sip_tcp = TcpListener::bind(cfg.sip)
        .await
        .with_context(|| format!("{name}: cannot bind SIP/TCP {}", cfg.sip))?;
    let msrp = listen_with(cfg.msrp, cfg.limits.msrp_socket_buffer)
        .with_context(|| format!("{name}: cannot bind MSRP {}", cfg.msrp))?;
    let (in_tx, in_rx) = queue::unbounded();
    let (ev_tx, ev_rx) = queue::unbounded();
    let (stop_tx, stop_rx) = watch::channel(false);
    // A live node: the real clocks, and identifiers seeded from the OS.
    let start = Start {
        now: crate::clock::now(),
        wall: crate::clock::wall(),
        seed: crate::entropy::seed(),
    };
    let tls_mode = if cfg.per_call_variant {
        ListenTls::Sniff
    } else if cfg.variant.msrp_transport == crate::config::MsrpTransport::Tls {
        ListenTls::Tls
    } else {
        ListenTls::Plain
    };
    let acceptor = match tls_mode {
        ListenTls::Plain => None,
        _ => Some((
            tls::context()
                .and_then(|c| c.acceptor(&name, cfg.msrp.ip()))
                .with_context(|| format!("{name}: TLS for MSRP {}", cfg.msrp))?,
            tls_mode == ListenTls::Sniff,
        )),
    };
    // SIP over TLS: the SIP/TCP listener tells a TLS handshake by its first byte.
    let sip_acceptor = if cfg.per_call_variant || cfg.variant.transport == Transport::Tls {
        Some(
            tls::context()
                .and_then(|c| c.acceptor(&name, cfg.sip.ip()))
                .with_context(|| format!("{name}: TLS for SIP {}", cfg.sip))?,
        )
    } else {
        None
    };
    let node = Node::new(cfg, start);
    let join = tokio::spawn(run(
        node,
        udp,
        (sip_tcp, sip_acceptor),
        (msrp, acceptor),
        in_rx,
        ev_tx,
        stop_rx,
        recorder,
    ));
    Ok(NodeHandle {
        name,
        inputs: in_tx,
        events: ev_rx,
        stop: stop_tx,
        join,
    })
}

/// Asks for a 4 MiB receive buffer (the kernel caps it at `net.core.rmem_max`): x fans an
/// INVITE out to every member at once, and a pf-b serving hundreds of members would
/// otherwise drop most of that burst and wait for retransmissions (T1 = 500 ms, doubling).
fn grow_udp_receive_buffer(udp: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4 << 20;
    // SAFETY: setsockopt reads `size` for the given length; the fd is open for the call.
    unsafe {
        libc::setsockopt(
            udp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    mut node: Node,
    udp: UdpSocket,
    (sip_tcp, sip_acceptor): (TcpListener, Option<tokio_rustls::TlsAcceptor>),
    (msrp, acceptor): (TcpListener, Option<(tokio_rustls::TlsAcceptor, bool)>),
    mut inputs: queue::Receiver<Input>,
    events: queue::Sender<NodeEvent>,
    mut stop: watch::Receiver<bool>,
    rec: Option<Recorder>,
) -> anyhow::Result<()> {
    let udp = std::sync::Arc::new(udp);
    let (tx, mut rx) = queue::unbounded::<Ev>();
    let sip_ip = node.config().sip.ip();
    let local_sip = node.config().sip;
    let local_msrp = node.config().msrp;
    let mut sip_conns: HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>> = HashMap::new();
    let mut conns: HashMap<ConnId, MsrpConn> = HashMap::new();
    let limits: Limits = node.config().limits;
    let mut hostile = Hostile::new(&node.config().faults);
    let slots = PeerSlots::new(limits.conns_per_peer);
    let mut noisy = Noisy::default();
    let read_budget = READ_BUDGET.clone();
    // Accept loops run as tasks so the select below stays simple.
    // Every writer task holds a clone: on stop the loop waits until they have written out
    // what was queued (a 200 to a BYE must not die with the process).
    let live = Arc::new(());
    let sip_accept = {
        let tx = tx.clone();
        let rec = rec.clone();
        let slots = slots.clone();
        // Weak: the accept loop itself must not count as a writer still at work.
        let live = Arc::downgrade(&live);
        tokio::spawn(async move {
            loop {
                match sip_tcp.accept().await {
                    Ok((s, peer)) => {
                        // No Nagle: a 100 Trying and a 200 written back to back (more so as TLS
                        // records) would otherwise wait for the peer's delayed ACK.
                        let _ = s.set_nodelay(true);
                        // Recorded so a peer that connects to a SIP port for MSRP is visible.
                        if let Some(r) = &rec {
                            r.received(WireEvent::TcpOpen {
                                conn: (peer, local_sip),
                                opener: peer,
                            });
                        }
                        let slot = match slots.take(peer.ip()) {
                            Ok(slot) => slot,
                            Err(open) => {
                                if let Some(r) = &rec {
                                    r.sent(WireEvent::TcpClose {
                                        from: local_sip,
                                        to: peer,
                                    });
                                }
                                drop(s);
                                let what = "SIP/TCP";
                                if tx.send(Ev::Refused { peer, what, open }).is_err() {
                                    return;
                                }
                                continue;
                            }
                        };
                        let (wtx, wrx) = mpsc::unbounded_channel();
                        if tx.send(Ev::SipConn { peer, tx: wtx }).is_err() {
                            return;
                        }
                        let Some(live) = live.upgrade() else { return };
                        let sip_limits = limits.sip();
                        let how = match &sip_acceptor {
                            Some(a) => SipTls::Sniff(a.clone()),
                            None => SipTls::Plain,
                        };
                        tokio::spawn(sip_tcp_conn(
                            (s, how),
                            peer,
                            wrx,
                            tx.clone(),
                            rec.clone(),
                            live,
                            sip_limits,
                            Some(slot),
                        ));
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        })
    };
    let msrp_accept = {
        let tx = tx.clone();
        let rec = rec.clone();
        let slots = slots.clone();
        tokio::spawn(async move {
            loop {
                match msrp.accept().await {
                    Ok((stream, peer)) => {
                        let ev = match slots.take(peer.ip()) {
                            Ok(slot) if acceptor.is_some() => {
                                // The handshake runs beside the accept loop (bounded).
                                let Some(acceptor) = acceptor.clone() else {
                                    continue;
                                };
                                let tx = tx.clone();
                                let rec = rec.clone();
                                tokio::spawn(async move {
                                    let ev =
                                        match tls_accept(acceptor, stream, peer, local_msrp, rec)
                                            .await
                                        {
                                            Ok(stream) => Ev::MsrpAccepted { stream, peer, slot },
                                            Err(reason) => Ev::TlsFailed { peer, reason },
                                        };
                                    let _ = tx.send(ev);
                                });
                                continue;
                            }
                            Ok(slot) => Ev::MsrpAccepted {
                                stream: MsrpStream::Tcp(stream),
                                peer,
                                slot,
                            },
                            Err(open) => {
                                // Recorded, so the refused connection is evidence in the capture.
                                if let Some(r) = &rec {
                                    r.received(WireEvent::TcpOpen {
                                        conn: (peer, local_msrp),
                                        opener: peer,
                                    });
                                    r.sent(WireEvent::TcpClose {
                                        from: local_msrp,
                                        to: peer,
                                    });
                                }
                                drop(stream);
                                Ev::Refused {
                                    peer,
                                    what: "MSRP",
                                    open,
                                }
                            }
                        };
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        })
    };
    // The UDP socket is dropped when this function returns; the listeners with their tasks.
    let _guard = AbortOnDrop(vec![sip_accept.abort_handle(), msrp_accept.abort_handle()]);
    loop {
        // Drain outputs (the drain rule), then wait for the next thing to happen.
        while let Some(out) = node.poll_output() {
            match out {
                Output::Sip { transport, to, msg } => {
                    let raws = match hostile.sip(transport, &msg.raw) {
                        SipPlan::Send(_, raws) => raws,
                        SipPlan::Drop => continue,
                        SipPlan::Special(how, raw) => {
                            tokio::spawn(hostile::special_tcp(sip_ip, to, how, raw));
                            continue;
                        }
                    };
                    if let Some((after, raw)) = hostile.late_copy(&msg.raw) {
                        let udp = udp.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(after).await;
                            let _ = udp.send_to(&raw, to).await;
                        });
                    }
                    for raw in raws {
                        match transport {
                            Transport::Udp => {
                                // Recorded as sent (SIP over TCP is recorded by the
                                // connection's writer, which knows its 4-tuple).
                                if let Some(r) = &rec {
                                    r.sent(WireEvent::Sip {
                                        transport,
                                        from: local_sip,
                                        to,
                                        raw: raw.clone(),
                                    });
                                }
                                if let Err(e) = udp.send_to(&raw, to).await {
                                    let _ = events.send(NodeEvent::Warning(format!(
                                        "SIP/UDP send to {to} failed: {e}"
                                    )));
                                }
                            }
                            Transport::Tcp | Transport::Tls => {
                                let w = sip_conns.entry(to).or_insert_with(|| {
                                    let (wtx, wrx) = mpsc::unbounded_channel();
                                    let tls = (transport == Transport::Tls)
                                        .then(|| node.config().name.clone());
                                    tokio::spawn(sip_tcp_connect(
                                        sip_ip,
                                        (to, tls),
                                        wrx,
                                        tx.clone(),
                                        rec.clone(),
                                        live.clone(),
                                        limits.sip(),
                                    ));
                                    wtx
                                });
                                if w.send(raw).is_err() {
                                    sip_conns.remove(&to);
                                }
                            }
                        }
                    }
                }
                Output::Connect {
                    conn,
                    local_ip,
                    to,
                    tls,
                } => {
                    let Some((to, flood)) = hostile.connect(to) else {
                        continue;
                    };
                    let tx = tx.clone();
                    let name = node.config().name.clone();
                    let rec = rec.clone();
                    let buffer = limits.msrp_socket_buffer;
                    tokio::spawn(async move {
                        let held = hostile::flood(local_ip, to, flood).await;
                        let r = match connect_from(local_ip, to, buffer).await {
                            Err(e) => Err(e.to_string()),
                            Ok(s) if !tls => Ok(MsrpStream::Tcp(s)),
                            Ok(s) => tls_connect(&name, s, to, rec).await,
                        };
                        let _ = tx.send(Ev::Connected { conn, result: r });
                        if !held.is_empty() {
                            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                        }
                    });
                }
                Output::MsrpWrite { conn, data } => {
                    if let Some(c) = conns.get(&conn) {
                        if !hostile.is_active() {
                            let _ = c.tx.send(WriteCmd::Data(data));
                            continue;
                        }
                        let cmds = match hostile.msrp(conn, data) {
                            MsrpPlan::Write(v) => v.into_iter().map(WriteCmd::Data).collect(),
                            MsrpPlan::Endless(head) => {
                                vec![WriteCmd::Data(head), WriteCmd::Endless]
                            }
                            MsrpPlan::Drip(d) => vec![WriteCmd::Drip(d)],
                            MsrpPlan::WriteClose(d) => vec![WriteCmd::Data(d), WriteCmd::Close],
                            MsrpPlan::Drop => vec![],
                        };
                        for cmd in cmds {
                            let _ = c.tx.send(cmd);
                        }
                    }
                }
                Output::PauseRead { conn } => {
                    if let Some(c) = conns.get(&conn) {
                        let _ = c.pause.send(true);
                    }
                }
                Output::ResumeRead { conn } => {
                    if let Some(c) = conns.get(&conn) {
                        let _ = c.pause.send(false);
                    }
                }
                Output::Close { conn } => {
                    if let Some(c) = conns.remove(&conn) {
                        let _ = c.tx.send(WriteCmd::Close);
                    }
                }
                Output::Event(e) => {
                    let _ = events.send(e);
                }
            }
        }
        let deadline = node.poll_timeout();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => {
                for (_, c) in conns.drain() {
                    let _ = c.tx.send(WriteCmd::Close);
                }
                drop(sip_conns);
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
                while Arc::strong_count(&live) > 1 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                return Ok(());
            }
            _ = sleep => node.handle_timeout(Instant::now()),
            Some(input) = inputs.recv() => node.handle_input(Instant::now(), input),
            r = udp.readable() => {
                // What has arrived, a bounded batch per wake so the other arms get their turn.
                for _ in 0..if r.is_ok() { UDP_BATCH } else { 0 } {
                    let Some((from, parsed)) = udp_recv_now(&udp) else { break };
                    match parsed {
                        Ok(msg) => {
                            if let Some(r) = &rec { r.received(WireEvent::sip(Transport::Udp, from, local_sip, &msg)); }
                            node.handle_input(Instant::now(), Input::Sip { transport: Transport::Udp, from, msg: Box::new(msg) });
                        }
                        Err((e, raw)) => {
                            // Recorded as it arrived: a SUT's malformed message is judged too.
                            if let Some(r) = &rec { r.received(WireEvent::Sip { transport: Transport::Udp, from, to: local_sip, raw: raw.clone() }); }
                            if let Some(n) = noisy.admit("udp", from.ip()) {
                                let _ = events.send(NodeEvent::Warning(format!("unparseable SIP/UDP datagram from {from}{n}: {e}")));
                            }
                            // Answered as RFC 4475 expects when it is a request (400, 505).
                            node.handle_input(Instant::now(), Input::SipInvalid { transport: Transport::Udp, from, raw, error: Box::new(e) });
                        }
                    }
                }
            }
            Some(ev) = rx.recv() => match ev {
                Ev::Sip { transport, from, msg } => {
                    node.handle_input(Instant::now(), Input::Sip { transport, from, msg });
                }
                Ev::SipBad { from, err } => {
                    if let Some(n) = noisy.admit("tcp", from.ip()) {
                        let _ = events.send(NodeEvent::Warning(format!("bad SIP/TCP from {from}{n}: {err}")));
                    }
                }
                Ev::SipInvalid { from, raw, error } => {
                    if let Some(n) = noisy.admit("tcp", from.ip()) {
                        let _ = events.send(NodeEvent::Warning(format!("unparseable SIP/TCP message from {from}{n}: {error}")));
                    }
                    node.handle_input(Instant::now(), Input::SipInvalid { transport: Transport::Tcp, from, raw, error });
                }
                Ev::Refused { peer, what, open } => {
                    if let Some(n) = noisy.admit(what, peer.ip()) {
                        let _ = events.send(NodeEvent::Warning(format!(
                            "{}: refused a {what} connection from {peer}{n}: {open} already open from {} (max-conns-per-peer {})",
                            node.config().name, peer.ip(), limits.conns_per_peer
                        )));
                    }
                }
                Ev::SipConn { peer, tx } => { sip_conns.insert(peer, tx); }
                Ev::SipConnGone { peer } => { sip_conns.remove(&peer); }
                Ev::TlsFailed { peer, reason } => {
                    if let Some(n) = noisy.admit("TLS", peer.ip()) {
                        let _ = events.send(NodeEvent::Warning(format!("{}: MSRP {reason}{n}", node.config().name)));
                    }
                }
                Ev::MsrpAccepted { stream, peer, slot } => {
                    let conn = node.new_conn_id();
                    if let Some(r) = &rec {
                        // A TLS opening was recorded before its handshake.
                        if stream.tls_version().is_none() {
                            r.received(WireEvent::TcpOpen { conn: (peer, local_msrp), opener: peer });
                        }
                        if let Some(version) = stream.tls_version() {
                            r.received(WireEvent::Tls { from: peer, to: local_msrp, version, failed: None });
                        }
                    }
                    conns.insert(conn, start_msrp_conn(conn, stream, peer, local_msrp, tx.clone(), rec.clone(), live.clone(), Some(slot), read_budget.clone()));
                    node.handle_input(Instant::now(), Input::Accepted { conn, peer });
                }
                Ev::Connected { conn, result } => match result {
                    Ok(stream) => {
                        let local = stream.tcp().local_addr().unwrap_or(local_msrp);
                        let peer = stream.tcp().peer_addr().unwrap_or(local_msrp);
                        if let Some(r) = &rec {
                            // A TLS opening was recorded before its handshake.
                            match stream.tls_version() {
                                None => r.sent(WireEvent::TcpOpen { conn: (local, peer), opener: local }),
                                Some(version) => r.sent(WireEvent::Tls { from: local, to: peer, version, failed: None }),
                            }
                        }
                        conns.insert(conn, start_msrp_conn(conn, stream, local, peer, tx.clone(), rec.clone(), live.clone(), None, read_budget.clone()));
                        node.handle_input(Instant::now(), Input::Connected { conn, local });
                    }
                    Err(reason) => node.handle_input(Instant::now(), Input::ConnectFailed { conn, reason }),
                },
                Ev::MsrpData { conn, data, budgeted } => {
                    node.handle_input(Instant::now(), Input::MsrpData { conn, data });
                    read_budget.add_permits(budgeted);
                }
                Ev::Flushed { conn, bytes } => node.handle_input(Instant::now(), Input::MsrpFlushed { conn, bytes }),
                Ev::Closed { conn, reason } => {
                    conns.remove(&conn);
                    node.handle_input(Instant::now(), Input::Closed { conn, reason });
                }
            },
        }
    }
}

/// Aborts the accept loops when the node's loop ends (stop, error or panic), so the
/// listening addresses are free at once for the next case.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Asks for `buffer` octets of send and receive buffer (none when 0: the kernel's
/// autotuning), before `connect` or `listen` so the window is scaled for it; an accepted
/// socket inherits its listener's.
fn set_buffers(sock: &TcpSocket, buffer: u64) -> std::io::Result<()> {
    if buffer > 0 {
        let b = u32::try_from(buffer).unwrap_or(u32::MAX);
        sock.set_send_buffer_size(b)?;
        sock.set_recv_buffer_size(b)?;
    }
    Ok(())
}

/// A TCP listener on `at` (`SO_REUSEADDR`, as tokio's `bind`) with `buffer` as
/// [`set_buffers`] for the connections it accepts.
pub(crate) fn listen_with(at: SocketAddr, buffer: u64) -> std::io::Result<TcpListener> {
    let sock = if at.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    set_buffers(&sock, buffer)?;
    sock.bind(at)?;
    sock.listen(1024)
}

/// Opens a TCP connection from the node's own IP (so captures and peers see the entity's
/// address, and nothing leaves the configured loopback addresses).
/// `buffer` > 0: the socket's send and receive buffers ([`Limits::msrp_socket_buffer`]).
pub(crate) async fn connect_from(
    local_ip: std::net::IpAddr,
    to: SocketAddr,
    buffer: u64,
) -> std::io::Result<TcpStream> {
    let sock = if local_ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // The port is chosen at connect time, with the 4-tuple known: binding port 0 first makes
    // the kernel search the bind table for a port no other socket on this address holds,
    // which grows with every open connection (large fan-outs: README, "The bench table").
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads `on` for the given length; the fd is the socket's own.
        // Best effort: without it the bind below still works, only slower.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &on as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    sock.bind(SocketAddr::new(local_ip, 0))?;
    set_buffers(&sock, buffer)?;
    match tokio::time::timeout(std::time::Duration::from_secs(5), sock.connect(to)).await {
        Ok(r) => {
            let s = r?;
            s.set_nodelay(true)?;
            Ok(s)
        }
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connect to {to} timed out"),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn start_msrp_conn(
    conn: ConnId,
    stream: MsrpStream,
    a: SocketAddr,
    b: SocketAddr,
    tx: queue::Sender<Ev>,
    rec: Option<Recorder>,
    live: Arc<()>,
    slot: Option<Slot>,
    budget: Arc<tokio::sync::Semaphore>,
) -> MsrpConn {
    let _ = stream.tcp().set_nodelay(true);
    let local = stream.tcp().local_addr().unwrap_or(a);
    let peer = stream.tcp().peer_addr().unwrap_or(b);
    let (wtx, wrx) = queue::unbounded::<WriteCmd>();
    let (ptx, prx) = watch::channel(false);
    let rtx = tx.clone();
    let rrec = rec.clone();
    let ends = Ends { conn, local, peer };
    match stream {
        MsrpStream::Tcp(s) => {
            let (rd, wr) = s.into_split();
            tokio::spawn(tcp_reader(rd, ends, rtx, rrec, slot, budget, prx));
            tokio::spawn(msrp_writer(wr, false, ends, wrx, tx, rec, live));
        }
        MsrpStream::TlsClient(s) => {
            let (rd, wr) = tokio::io::split(*s);
            tokio::spawn(stream_reader(rd, ends, rtx, rrec, slot, budget, prx));
            tokio::spawn(msrp_writer(wr, true, ends, wrx, tx, rec, live));
        }
        MsrpStream::TlsServer(s) => {
            let (rd, wr) = tokio::io::split(*s);
            tokio::spawn(stream_reader(rd, ends, rtx, rrec, slot, budget, prx));
            tokio::spawn(msrp_writer(wr, true, ends, wrx, tx, rec, live));
        }
    }
    MsrpConn {
        tx: wtx,
        pause: ptx,
    }
}

/// A connection's id and its two ends.
#[derive(Clone, Copy)]
struct Ends {
    conn: ConnId,
    local: SocketAddr,
    peer: SocketAddr,
}

/// The pause and close control both MSRP readers follow: no read while the node asks for a
/// pause (backpressure); once the node let go of the connection (its pause sender is gone),
/// at most [`CLOSE_DRAIN_BYTES`] more are read for [`CLOSE_DRAIN_TIME`], then the reader ends.
struct ReadGate {
    prx: watch::Receiver<bool>,
    /// Set once the node let go: until when to drain, and what was drained.
    closing: Option<(tokio::time::Instant, usize)>,
}

/// What a reader does next, by [`ReadGate::before_read`].
enum Gate {
    Open,
    /// A pause ended or the node let go: look again.
    Again,
    End,
}

impl ReadGate {
    fn new(prx: watch::Receiver<bool>) -> ReadGate {
        ReadGate { prx, closing: None }
    }

    async fn before_read(&mut self) -> Gate {
        if let Some((until, drained)) = self.closing {
            if drained > CLOSE_DRAIN_BYTES || tokio::time::Instant::now() >= until {
                return Gate::End;
            }
        } else if *self.prx.borrow() {
            if self.prx.changed().await.is_err() {
                self.let_go();
            }
            return Gate::Again;
        }
        Gate::Open
    }

    /// Resolves when the control changes while a read waits: a pause asked or lifted, the
    /// node letting go, or the end of the drain time.
    async fn changed(&mut self) {
        match self.closing {
            Some((until, _)) => tokio::time::sleep_until(until).await,
            None => {
                if self.prx.changed().await.is_err() {
                    self.let_go();
                }
            }
        }
    }

    fn let_go(&mut self) {
        self.closing = Some((tokio::time::Instant::now() + CLOSE_DRAIN_TIME, 0));
    }

    fn draining(&self) -> bool {
        self.closing.is_some()
    }

    /// Counts `n` bytes read against the drain; false when not draining.
    fn drained(&mut self, n: usize) -> bool {
        match self.closing.as_mut() {
            Some((_, drained)) => {
                *drained += n;
                true
            }
            None => false,
        }
    }
}

/// The peer closed the connection: recorded, then told to the node. Recorded first, so the
/// trace has the peer's close before anything the node does about it (its own close, a BYE).
fn peer_closed(
    Ends { conn, local, peer }: Ends,
    rrec: &Option<Recorder>,
    rtx: &queue::Sender<Ev>,
    reason: &str,
) {
    if let Some(r) = rrec {
        r.received(WireEvent::TcpClose {
            from: peer,
            to: local,
        });
    }
    let _ = rtx.send(Ev::Closed {
        conn,
        reason: reason.into(),
    });
}

/// Reads a plain-TCP MSRP connection as its socket becomes readable, within the read budget
/// (see [`READ_BUDGET`]), pausing for backpressure and draining for a moment after the node
/// let go of it.
async fn tcp_reader(
    rd: tokio::net::tcp::OwnedReadHalf,
    ends: Ends,
    rtx: queue::Sender<Ev>,
    rrec: Option<Recorder>,
    slot: Option<Slot>,
    budget: Arc<tokio::sync::Semaphore>,
    prx: watch::Receiver<bool>,
) {
    // The per-peer slot is given back when the reader ends.
    let _slot = slot;
    let Ends { conn, local, peer } = ends;
    let mut gate = ReadGate::new(prx);
    loop {
        match gate.before_read().await {
            Gate::End => return,
            Gate::Again => continue,
            Gate::Open => {}
        }
        tokio::select! {
            () = gate.changed() => {}
            r = rd.readable() => {
                if let Err(e) = r {
                    let _ = rtx.send(Ev::Closed { conn, reason: e.to_string() });
                    return;
                }
                // Budget first (the bytes wait in the kernel meanwhile), unless draining.
                let permit = if gate.draining() {
                    None
                } else {
                    tokio::select! {
                        p = budget.clone().acquire_many_owned(READ_MAX as u32) => p.ok(),
                        // A pause, or the node let go of the connection (drain, then end).
                        () = gate.changed() => continue,
                    }
                };
                let max = if permit.is_some() { READ_MAX } else { CLOSE_DRAIN_BYTES };
                match read_now(&rd, max) {
                    Ok(None) => {}
                    Ok(Some(data)) if data.is_empty() => {
                        return peer_closed(ends, &rrec, &rtx, "closed by peer");
                    }
                    Ok(Some(data)) => {
                        let n = data.len();
                        let budgeted = match permit {
                            Some(mut p) => {
                                // Keep what was read; the rest goes back at once.
                                if let Some(kept) = p.split(n) {
                                    kept.forget();
                                }
                                n
                            }
                            None => {
                                gate.drained(n);
                                0
                            }
                        };
                        if let Some(r) = &rrec { r.received(WireEvent::TcpData { from: peer, to: local, data: data.clone() }); }
                        if rtx.send(Ev::MsrpData { conn, data, budgeted }).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = rtx.send(Ev::Closed { conn, reason: e.to_string() });
                        return;
                    }
                }
            }
        }
    }
}

/// Writes what the node queues on a connection (any stream: a TCP half, a TLS session),
/// gathering queued buffers into vectored writes, and reports what was flushed.
async fn msrp_writer<W: tokio::io::AsyncWrite + Unpin>(
    mut wr: W,
    tls: bool,
    Ends { conn, local, peer }: Ends,
    mut wrx: queue::Receiver<WriteCmd>,
    tx: queue::Sender<Ev>,
    rec: Option<Recorder>,
    live: Arc<()>,
) {
    let _live = live;
    let mut flushed = 0usize;
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let cmd = match wrx.try_recv() {
            Ok(c) => c,
            Err(queue::TryRecvError::Empty) => {
                if flushed > 0 {
                    let _ = tx.send(Ev::Flushed {
                        conn,
                        bytes: flushed,
                    });
                    flushed = 0;
                }
                match wrx.recv().await {
                    Some(c) => c,
                    // The node let go of the connection: end it (over TLS, close_notify).
                    None => {
                        let _ = wr.shutdown().await;
                        return;
                    }
                }
            }
            Err(queue::TryRecvError::Disconnected) => return,
        };
        // Gather what is already queued (a relayed chunk is a head, body pieces and an
        // end-line) into one vectored write: fewer syscalls and fuller segments.
        let mut special = None;
        let mut next = Some(cmd);
        let mut queued = 0usize;
        while let Some(cmd) = next.take() {
            match cmd {
                WriteCmd::Data(d) => {
                    if let Some(r) = &rec {
                        r.sent(WireEvent::TcpData {
                            from: local,
                            to: peer,
                            data: d.clone(),
                        });
                    }
                    queued += d.len();
                    batch.push(d);
                }
                other => {
                    special = Some(other);
                    break;
                }
            }
            if batch.len() < MAX_IOV && queued < MAX_BATCH {
                next = wrx.try_recv().ok();
            }
        }
        if let Err(e) = write_all_vectored(&mut wr, &mut batch).await {
            let _ = tx.send(Ev::Closed {
                conn,
                reason: format!("write failed: {e}"),
            });
            return;
        }
        flushed += queued;
        match special {
            None | Some(WriteCmd::Data(_)) => {}
            Some(WriteCmd::Endless) => {
                let filler = Bytes::from(vec![b'x'; 64 * 1024]);
                while wr.write_all(&filler).await.is_ok() {}
                return;
            }
            Some(WriteCmd::Drip(d)) => {
                for b in d.iter() {
                    if wr.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                flushed += d.len();
            }
            Some(WriteCmd::Close) => {
                let record = || {
                    if let Some(r) = &rec {
                        r.sent(WireEvent::TcpClose {
                            from: local,
                            to: peer,
                        });
                    }
                };
                // Over plain TCP the close is recorded before the FIN goes: recorded after,
                // a busy task could record it after the peer's reaction to it (its own close,
                // a BYE), and the trace would say the peer went first. Over TLS the shutdown
                // writes a close_notify record first, so the close is recorded after it (a
                // capture shows no bytes after the FIN).
                if tls {
                    let _ = wr.shutdown().await;
                    record();
                } else {
                    record();
                    let _ = wr.shutdown().await;
                }
                return;
            }
        }
    }
}

/// Reads a TLS session (any stream whose readiness is not the socket's) within the read
/// budget: the same pause and drain rules as [`tcp_reader`], but a read waits in the stream
/// (TLS records are decrypted in it) and takes budget for what it got.
async fn stream_reader<R: tokio::io::AsyncRead + Unpin>(
    mut rd: R,
    ends: Ends,
    rtx: queue::Sender<Ev>,
    rrec: Option<Recorder>,
    slot: Option<Slot>,
    budget: Arc<tokio::sync::Semaphore>,
    prx: watch::Receiver<bool>,
) {
    let _slot = slot;
    let Ends { conn, local, peer } = ends;
    let mut gate = ReadGate::new(prx);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match gate.before_read().await {
            Gate::End => return,
            Gate::Again => continue,
            Gate::Open => {}
        }
        tokio::select! {
            () = gate.changed() => {}
            r = rd.read(&mut buf) => match r {
                // The end of the session (close_notify), or a TCP close without it.
                Ok(0) => return peer_closed(ends, &rrec, &rtx, "closed by peer"),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return peer_closed(ends, &rrec, &rtx, "closed by peer (no TLS close_notify)");
                }
                Ok(n) => {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    let budgeted = if gate.drained(n) {
                        0
                    } else {
                        match budget.clone().acquire_many_owned(n as u32).await {
                            Ok(p) => {
                                p.forget();
                                n
                            }
                            Err(_) => 0,
                        }
                    };
                    if let Some(r) = &rrec { r.received(WireEvent::TcpData { from: peer, to: local, data: data.clone() }); }
                    if rtx.send(Ev::MsrpData { conn, data, budgeted }).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = rtx.send(Ev::Closed { conn, reason: format!("TLS: {}", tls::describe(&e)) });
                    return;
                }
            }
        }
    }
}

/// The client side of a TLS link: the opening is recorded before the handshake, and a failed
/// handshake with its reason (the peer, the alert) and the close after it.
async fn tls_connect(
    name: &str,
    s: TcpStream,
    to: SocketAddr,
    rec: Option<Recorder>,
) -> Result<MsrpStream, String> {
    let local = s.local_addr().unwrap_or(to);
    if let Some(r) = &rec {
        r.sent(WireEvent::TcpOpen {
            conn: (local, to),
            opener: local,
        });
    }
    let result = match tls::context() {
        Err(e) => Err(format!("TLS to {to}: {e}")),
        Ok(ctx) => tls::connect(&ctx, name, s, to, rec.clone()).await,
    };
    match result {
        Ok(s) => Ok(MsrpStream::TlsClient(Box::new(s))),
        Err(reason) => {
            if let Some(r) = &rec {
                r.sent(WireEvent::Tls {
                    from: local,
                    to,
                    version: String::new(),
                    failed: Some(reason.clone()),
                });
                r.sent(WireEvent::TcpClose { from: local, to });
            }
            Err(reason)
        }
    }
}

/// The server side of an accepted MSRP connection: the TLS handshake (with `sniff`, only when
/// the first byte is a TLS handshake record; plain TCP otherwise). Plain text on a TLS-only
/// port is refused, and recorded (the opening, the bytes, the close) so the checks see a plain
/// connection where TLS was negotiated; the reason names the peer and what it sent.
async fn tls_accept(
    acceptor: (tokio_rustls::TlsAcceptor, bool),
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    rec: Option<Recorder>,
) -> Result<MsrpStream, String> {
    let (acceptor, sniff) = acceptor;
    let mut first = [0u8; 2048];
    let peeked = tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(n)) if n > 0 && first[0] != 0x16 => {
            if sniff {
                return Ok(MsrpStream::Tcp(stream));
            }
            let data = Bytes::copy_from_slice(&first[..n]);
            if let Some(r) = &rec {
                r.received(WireEvent::TcpOpen {
                    conn: (peer, local),
                    opener: peer,
                });
                r.received(WireEvent::TcpData {
                    from: peer,
                    to: local,
                    data: data.clone(),
                });
                r.sent(WireEvent::TcpClose {
                    from: local,
                    to: peer,
                });
            }
            let line = String::from_utf8_lossy(&data[..data.len().min(40)])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            return Err(format!(
                "TLS handshake from {peer} failed: plain text on a TLS port ({line:?}…), not a \
                 ClientHello; the connection is closed"
            ));
        }
        Err(_) if sniff => return Ok(MsrpStream::Tcp(stream)),
        _ => {}
    }
    if let Some(r) = &rec {
        r.received(WireEvent::TcpOpen {
            conn: (peer, local),
            opener: peer,
        });
    }
    let result = match peeked {
        Ok(Ok(0)) => Err(format!(
            "TLS handshake from {peer} failed: it closed before its ClientHello"
        )),
        _ => tls::accept(&acceptor, stream, peer, rec.clone()).await,
    };
    match result {
        Ok(s) => Ok(MsrpStream::TlsServer(Box::new(s))),
        Err(reason) => {
            if let Some(r) = &rec {
                r.received(WireEvent::Tls {
                    from: peer,
                    to: local,
                    version: String::new(),
                    failed: Some(reason.clone()),
                });
                r.sent(WireEvent::TcpClose {
                    from: local,
                    to: peer,
                });
            }
            Err(reason)
        }
    }
}

/// Datagrams taken per wake of a node's loop.
const UDP_BATCH: usize = 64;

thread_local! {
    /// The datagram buffer of every node served by this thread (a buffer per node would cost
    /// 64 KiB per client-b instance in a 10,000-member chain).
    static UDP_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 65536]);
}

/// A datagram that does not parse: why, and its bytes.
type Unparsed = (crate::codec::sip::SipError, Bytes);

/// One datagram if one is waiting, parsed (`None` when it would block or on an error the
/// socket reports, such as an ICMP port unreachable for an earlier send).
fn udp_recv_now(udp: &UdpSocket) -> Option<(SocketAddr, Result<SipMessage, Unparsed>)> {
    UDP_BUF.with(|b| {
        let mut b = b.borrow_mut();
        let (n, from) = udp.try_recv_from(&mut b).ok()?;
        let parsed = SipMessage::parse(&b[..n]).map_err(|e| (e, Bytes::copy_from_slice(&b[..n])));
        Some((from, parsed))
    })
}

/// Reads what the socket has: `Ok(None)` when it would block, an empty `Bytes` at EOF.
/// Large reads are handed on as slices of a pooled slab (no copy), small ones copied out
/// ([`slab::read_with`]).
fn read_now(rd: &tokio::net::tcp::OwnedReadHalf, max: usize) -> std::io::Result<Option<Bytes>> {
    slab::read_with(max, |buf| rd.try_read(buf))
}

/// At most this many buffers, and about this many bytes, go into one vectored write.
const MAX_IOV: usize = 64;
const MAX_BATCH: usize = 256 * 1024;

/// Writes every buffer of `batch` in order (emptying it), with as few syscalls as the stream
/// allows (any stream: a TCP half, a TLS session).
async fn write_all_vectored<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    batch: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    use bytes::Buf;
    let mut first = 0;
    while first < batch.len() {
        let slices: Vec<std::io::IoSlice<'_>> = batch[first..]
            .iter()
            .map(|b| std::io::IoSlice::new(b))
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let b = &mut batch[first];
            if n >= b.len() {
                n -= b.len();
                first += 1;
            } else {
                b.advance(n);
                n = 0;
            }
        }
    }
    batch.clear();
    Ok(())
}

async fn sip_tcp_connect(
    local_ip: std::net::IpAddr,
    (to, tls): (SocketAddr, Option<String>),
    wrx: mpsc::UnboundedReceiver<Bytes>,
    tx: queue::Sender<Ev>,
    rec: Option<Recorder>,
    live: Arc<()>,
    limits: SipLimits,
) {
    match connect_from(local_ip, to, 0).await {
        Ok(s) => {
            if let (Some(r), Ok(local)) = (&rec, s.local_addr()) {
                r.sent(WireEvent::TcpOpen {
                    conn: (local, to),
                    opener: local,
                });
            }
            let how = match tls {
                Some(name) => SipTls::Connect(name),
                None => SipTls::Plain,
            };
            sip_tcp_conn((s, how), to, wrx, tx, rec, live, limits, None).await
        }
        Err(e) => {
            let _ = tx.send(Ev::SipBad {
                from: to,
                err: format!("cannot connect: {e}"),
            });
            let _ = tx.send(Ev::SipConnGone { peer: to });
        }
    }
}

/// How a SIP connection runs: plain TCP, TLS as the client (SIP over TLS to a peer), or, on
/// an accepted connection, TLS when its first byte is a TLS handshake record.
enum SipTls {
    Plain,
    Connect(String),
    Sniff(tokio_rustls::TlsAcceptor),
}

/// The TLS handshake of a SIP connection, if any: the stream to use and its transport; a
/// failure is recorded and reported with the peer and the alert.
async fn sip_handshake(
    (s, how): (TcpStream, SipTls),
    peer: SocketAddr,
    tx: &queue::Sender<Ev>,
    rec: &Option<Recorder>,
) -> Option<(MsrpStream, Transport)> {
    let local = s.local_addr().unwrap_or(peer);
    let (result, client) = match how {
        SipTls::Plain => return Some((MsrpStream::Tcp(s), Transport::Tcp)),
        SipTls::Connect(name) => {
            let r = match tls::context() {
                Err(e) => Err(format!("TLS to {peer}: {e}")),
                Ok(ctx) => tls::connect(&ctx, &name, s, peer, rec.clone())
                    .await
                    .map(|s| MsrpStream::TlsClient(Box::new(s))),
            };
            (r, local)
        }
        SipTls::Sniff(acceptor) => {
            let mut first = [0u8; 1];
            let peeked = tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, s.peek(&mut first)).await;
            if !matches!(peeked, Ok(Ok(1))) || first[0] != 0x16 {
                return Some((MsrpStream::Tcp(s), Transport::Tcp));
            }
            let r = tls::accept(&acceptor, s, peer, rec.clone())
                .await
                .map(|s| MsrpStream::TlsServer(Box::new(s)));
            (r, peer)
        }
    };
    let server = if client == local { peer } else { local };
    match result {
        Ok(s) => {
            if let Some(r) = rec {
                let ev = WireEvent::Tls {
                    from: client,
                    to: server,
                    version: s.tls_version().unwrap_or_default(),
                    failed: None,
                };
                if client == local {
                    r.sent(ev)
                } else {
                    r.received(ev)
                }
            }
            Some((s, Transport::Tls))
        }
        Err(reason) => {
            if let Some(r) = rec {
                let ev = WireEvent::Tls {
                    from: client,
                    to: server,
                    version: String::new(),
                    failed: Some(reason.clone()),
                };
                if client == local {
                    r.sent(ev)
                } else {
                    r.received(ev)
                }
                r.sent(WireEvent::TcpClose {
                    from: local,
                    to: peer,
                });
            }
            let _ = tx.send(Ev::SipBad {
                from: peer,
                err: format!("SIP/{reason}"),
            });
            None
        }
    }
}

/// Reads SIP messages framed by Content-Length and writes queued ones, on one TCP connection
/// (or a TLS session over it); both are recorded with the connection's 4-tuple.
#[allow(clippy::too_many_arguments)]
async fn sip_tcp_conn(
    s: (TcpStream, SipTls),
    peer: SocketAddr,
    mut wrx: mpsc::UnboundedReceiver<Bytes>,
    tx: queue::Sender<Ev>,
    rec: Option<Recorder>,
    live: Arc<()>,
    limits: SipLimits,
    _slot: Option<Slot>,
) {
    let local = s.0.local_addr().unwrap_or(peer);
    let Some((s, transport)) = sip_handshake(s, peer, &tx, &rec).await else {
        let _ = tx.send(Ev::SipConnGone { peer });
        return;
    };
    let (mut rd, mut wr): (
        Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    ) = match s {
        MsrpStream::Tcp(s) => {
            let (r, w) = s.into_split();
            (Box::new(r), Box::new(w))
        }
        MsrpStream::TlsClient(s) => {
            let (r, w) = tokio::io::split(*s);
            (Box::new(r), Box::new(w))
        }
        MsrpStream::TlsServer(s) => {
            let (r, w) = tokio::io::split(*s);
            (Box::new(r), Box::new(w))
        }
    };
    let wrec = rec.clone();
    let writer = tokio::spawn(async move {
        let _live = live;
        while let Some(b) = wrx.recv().await {
            if let Some(r) = &wrec {
                r.sent(WireEvent::Sip {
                    transport,
                    from: local,
                    to: peer,
                    raw: b.clone(),
                });
            }
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
        // Everything queued is out: end the stream (over TLS a close_notify, then FIN; a
        // TLS write half dropped alone would leave the connection open to the peer).
        let _ = wr.shutdown().await;
    });
    let mut framer = SipFramer::new(limits);
    let mut buf = vec![0u8; 65536];
    'read: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        loop {
            let ev = match framer.next_framed() {
                Ok(Some(Framed::Message(msg))) => {
                    if let Some(r) = &rec {
                        r.received(WireEvent::sip(transport, peer, local, &msg));
                    }
                    Ev::Sip {
                        transport,
                        from: peer,
                        msg: Box::new(msg),
                    }
                }
                Ok(Some(Framed::Invalid { raw, error })) => {
                    if let Some(r) = &rec {
                        r.received(WireEvent::Sip {
                            transport,
                            from: peer,
                            to: local,
                            raw: raw.clone(),
                        });
                    }
                    Ev::SipInvalid {
                        from: peer,
                        raw,
                        error: Box::new(error),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Ev::SipBad {
                        from: peer,
                        err: e.to_string(),
                    });
                    break 'read;
                }
            };
            if tx.send(ev).is_err() {
                writer.abort();
                return;
            }
        }
    }
    // Reading stops (end of stream, or bytes that cannot be framed): the replies to what was
    // read are still written before the connection closes. The node drops its sender on
    // SipConnGone, after the messages sent before it, so the writer ends once they are out.
    drop(rd);
    let _ = tx.send(Ev::SipConnGone { peer });
    let abort = writer.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_warnings_are_thinned_and_slots_are_given_back() {
        let mut n = Noisy::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let shown: Vec<u64> = (1..=1000)
            .filter(|_| n.admit("udp", ip).is_some())
            .collect::<Vec<_>>();
        assert_eq!(shown.len(), 6); // 1, 2, 3, 10, 100, 1000
        assert!(n.admit("tcp", ip).is_some(), "kinds are counted apart");

        let slots = PeerSlots::new(2);
        let a = slots.take(ip).unwrap();
        let _b = slots.take(ip).unwrap();
        assert_eq!(slots.take(ip).err(), Some(2));
        assert!(slots.take("127.0.0.2".parse().unwrap()).is_ok());
        drop(a);
        assert!(slots.take(ip).is_ok());
    }

    /// `msrp-socket-buffer`: both ends of a connection get the buffers asked for (the kernel
    /// doubles the figure), the accepted end through its listener; 0 leaves the kernel's
    /// starting receive buffer, as a socket nobody set anything on has.
    #[tokio::test]
    async fn socket_buffers_are_asked_for_on_both_ends() {
        use std::os::fd::AsRawFd;
        let opt = |s: &TcpStream, name: libc::c_int| -> usize {
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: getsockopt writes at most `len` bytes into `v`; the fd is open.
            let r = unsafe {
                libc::getsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    name,
                    &mut v as *mut libc::c_int as *mut libc::c_void,
                    &mut len,
                )
            };
            assert_eq!(r, 0);
            v as usize
        };
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // What this kernel gives a socket nobody asked anything of (net.ipv4.tcp_rmem).
        let plain = {
            let l = TcpListener::bind((ip, 0)).await.unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            opt(&c, libc::SO_RCVBUF)
        };
        for buffer in [1u64 << 20, 0] {
            let l = listen_with(SocketAddr::new(ip, 0), buffer).unwrap();
            let c = connect_from(ip, l.local_addr().unwrap(), buffer)
                .await
                .unwrap();
            let (a, _) = l.accept().await.unwrap();
            for s in [&c, &a] {
                let (rcv, snd) = (opt(s, libc::SO_RCVBUF), opt(s, libc::SO_SNDBUF));
                if buffer > 0 {
                    assert!(
                        rcv >= 2 << 20 && snd >= 2 << 20,
                        "SO_RCVBUF {rcv} SO_SNDBUF {snd}"
                    );
                } else {
                    assert_eq!(rcv, plain, "0 asks nothing: SO_RCVBUF as a plain socket's");
                }
            }
        }
    }
}
