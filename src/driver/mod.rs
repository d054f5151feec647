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

pub mod record;

use crate::codec::sip::{Limits as SipLimits, SipFramer, SipMessage, Transport};
use crate::entity::{ConnId, Input, Node, NodeConfig, NodeEvent, Output};
use anyhow::Context;
use bytes::{Bytes, BytesMut};
use record::{Recorder, WireEvent};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

/// What the I/O tasks report to the node's loop.
enum Ev {
    Sip {
        transport: Transport,
        from: SocketAddr,
        msg: SipMessage,
    },
    SipBad {
        from: SocketAddr,
        err: String,
    },
    SipConn {
        peer: SocketAddr,
        tx: mpsc::UnboundedSender<Bytes>,
    },
    SipConnGone {
        peer: SocketAddr,
    },
    MsrpAccepted {
        stream: TcpStream,
        peer: SocketAddr,
    },
    Connected {
        conn: ConnId,
        result: Result<TcpStream, String>,
    },
    MsrpData {
        conn: ConnId,
        data: Bytes,
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
}

struct MsrpConn {
    tx: mpsc::UnboundedSender<WriteCmd>,
    pause: watch::Sender<bool>,
    credit: Arc<ReadCredit>,
}

/// Bytes a connection's reader has handed to the node's loop that the node has not handled
/// yet. The reader stops at [`READ_AHEAD`]: the node's own high-water mark only counts what it
/// has handled, so without this a reader faster than its node would queue without bound.
#[derive(Default)]
struct ReadCredit {
    used: std::sync::atomic::AtomicUsize,
    freed: tokio::sync::Notify,
}

const READ_AHEAD: usize = 512 * 1024;

impl ReadCredit {
    async fn wait(&self) {
        use std::sync::atomic::Ordering;
        while self.used.load(Ordering::Acquire) >= READ_AHEAD {
            self.freed.notified().await;
        }
    }

    fn take(&self, n: usize) {
        self.used.fetch_add(n, std::sync::atomic::Ordering::AcqRel);
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
        self.freed.notify_one();
    }
}

/// A running node: send it inputs (e.g. [`Input::Send`]), read its events, stop it.
pub struct NodeHandle {
    pub name: String,
    pub inputs: mpsc::UnboundedSender<Input>,
    pub events: mpsc::UnboundedReceiver<NodeEvent>,
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
    let msrp = TcpListener::bind(cfg.msrp)
        .await
        .with_context(|| format!("{name}: cannot bind MSRP {}", cfg.msrp))?;
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let node = Node::new(cfg, Instant::now());
    let join = tokio::spawn(run(
        node, udp, sip_tcp, msrp, in_rx, ev_tx, stop_rx, recorder,
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
    sip_tcp: TcpListener,
    msrp: TcpListener,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    events: mpsc::UnboundedSender<NodeEvent>,
    mut stop: watch::Receiver<bool>,
    rec: Option<Recorder>,
) -> anyhow::Result<()> {
    let udp = std::sync::Arc::new(udp);
    let (tx, mut rx) = mpsc::unbounded_channel::<Ev>();
    let sip_ip = node.config().sip.ip();
    let local_sip = node.config().sip;
    let local_msrp = node.config().msrp;
    let mut sip_conns: HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>> = HashMap::new();
    let mut conns: HashMap<ConnId, MsrpConn> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    // Accept loops run as tasks so the select below stays simple.
    // Every writer task holds a clone: on stop the loop waits until they have written out
    // what was queued (a 200 to a BYE must not die with the process).
    let live = Arc::new(());
    let sip_accept = {
        let tx = tx.clone();
        let rec = rec.clone();
        // Weak: the accept loop itself must not count as a writer still at work.
        let live = Arc::downgrade(&live);
        tokio::spawn(async move {
            loop {
                match sip_tcp.accept().await {
                    Ok((s, peer)) => {
                        // Recorded so a peer that connects to a SIP port for MSRP is visible.
                        if let Some(r) = &rec {
                            r.record(WireEvent::TcpOpen {
                                conn: (peer, local_sip),
                                opener: peer,
                            });
                        }
                        let (wtx, wrx) = mpsc::unbounded_channel();
                        if tx.send(Ev::SipConn { peer, tx: wtx }).is_err() {
                            return;
                        }
                        let Some(live) = live.upgrade() else { return };
                        tokio::spawn(sip_tcp_conn(s, peer, wrx, tx.clone(), live));
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        })
    };
    let msrp_accept = {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match msrp.accept().await {
                    Ok((stream, peer)) => {
                        if tx.send(Ev::MsrpAccepted { stream, peer }).is_err() {
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
                    if let Some(r) = &rec {
                        r.record(WireEvent::sip(transport, local_sip, to, &msg));
                    }
                    match transport {
                        Transport::Udp => {
                            if let Err(e) = udp.send_to(&msg.raw, to).await {
                                let _ = events.send(NodeEvent::Warning(format!(
                                    "SIP/UDP send to {to} failed: {e}"
                                )));
                            }
                        }
                        Transport::Tcp => {
                            let w = sip_conns.entry(to).or_insert_with(|| {
                                let (wtx, wrx) = mpsc::unbounded_channel();
                                tokio::spawn(sip_tcp_connect(
                                    sip_ip,
                                    to,
                                    wrx,
                                    tx.clone(),
                                    rec.clone(),
                                    live.clone(),
                                ));
                                wtx
                            });
                            if w.send(msg.raw.clone()).is_err() {
                                sip_conns.remove(&to);
                            }
                        }
                    }
                }
                Output::Connect { conn, local_ip, to } => {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let r = connect_from(local_ip, to).await.map_err(|e| e.to_string());
                        let _ = tx.send(Ev::Connected { conn, result: r });
                    });
                }
                Output::MsrpWrite { conn, data } => {
                    if let Some(c) = conns.get(&conn) {
                        let _ = c.tx.send(WriteCmd::Data(data));
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
            r = udp.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    match SipMessage::parse(&buf[..n]) {
                        Ok(msg) => {
                            if let Some(r) = &rec { r.record(WireEvent::sip(Transport::Udp, from, local_sip, &msg)); }
                            node.handle_input(Instant::now(), Input::Sip { transport: Transport::Udp, from, msg });
                        }
                        Err(e) => {
                            let _ = events.send(NodeEvent::Warning(format!("unparseable SIP/UDP datagram from {from}: {e}")));
                        }
                    }
                }
            }
            Some(ev) = rx.recv() => match ev {
                Ev::Sip { transport, from, msg } => {
                    if let Some(r) = &rec { r.record(WireEvent::sip(transport, from, local_sip, &msg)); }
                    node.handle_input(Instant::now(), Input::Sip { transport, from, msg });
                }
                Ev::SipBad { from, err } => {
                    let _ = events.send(NodeEvent::Warning(format!("bad SIP/TCP from {from}: {err}")));
                }
                Ev::SipConn { peer, tx } => { sip_conns.insert(peer, tx); }
                Ev::SipConnGone { peer } => { sip_conns.remove(&peer); }
                Ev::MsrpAccepted { stream, peer } => {
                    let conn = node.new_conn_id();
                    if let Some(r) = &rec { r.record(WireEvent::TcpOpen { conn: (peer, local_msrp), opener: peer }); }
                    conns.insert(conn, start_msrp_conn(conn, stream, peer, local_msrp, tx.clone(), rec.clone(), live.clone()));
                    node.handle_input(Instant::now(), Input::Accepted { conn, peer });
                }
                Ev::Connected { conn, result } => match result {
                    Ok(stream) => {
                        let local = stream.local_addr().unwrap_or(local_msrp);
                        let peer = stream.peer_addr().unwrap_or(local_msrp);
                        if let Some(r) = &rec { r.record(WireEvent::TcpOpen { conn: (local, peer), opener: local }); }
                        conns.insert(conn, start_msrp_conn(conn, stream, local, peer, tx.clone(), rec.clone(), live.clone()));
                        node.handle_input(Instant::now(), Input::Connected { conn, local });
                    }
                    Err(reason) => node.handle_input(Instant::now(), Input::ConnectFailed { conn, reason }),
                },
                Ev::MsrpData { conn, data } => {
                    let n = data.len();
                    node.handle_input(Instant::now(), Input::MsrpData { conn, data });
                    if let Some(c) = conns.get(&conn) { c.credit.give(n); }
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

/// Opens a TCP connection from the node's own IP (so captures and peers see the entity's
/// address, and nothing leaves the configured loopback addresses).
async fn connect_from(local_ip: std::net::IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = if local_ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(local_ip, 0))?;
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

fn start_msrp_conn(
    conn: ConnId,
    stream: TcpStream,
    a: SocketAddr,
    b: SocketAddr,
    tx: mpsc::UnboundedSender<Ev>,
    rec: Option<Recorder>,
    live: Arc<()>,
) -> MsrpConn {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(a);
    let peer = stream.peer_addr().unwrap_or(b);
    let (rd, mut wr) = stream.into_split();
    let (wtx, mut wrx) = mpsc::unbounded_channel::<WriteCmd>();
    let (ptx, mut prx) = watch::channel(false);
    let rtx = tx.clone();
    let rrec = rec.clone();
    let credit = Arc::new(ReadCredit::default());
    let rcredit = credit.clone();
    tokio::spawn(async move {
        loop {
            while *prx.borrow() {
                if prx.changed().await.is_err() {
                    return;
                }
            }
            rcredit.wait().await;
            tokio::select! {
                r = rd.readable() => {
                    let r = match r {
                        Ok(()) => read_now(&rd),
                        Err(e) => Err(e),
                    };
                    match r {
                        Ok(None) => {}
                        Ok(Some(data)) if data.is_empty() => {
                            if let Some(r) = &rrec { r.record(WireEvent::TcpClose { from: peer, to: local }); }
                            let _ = rtx.send(Ev::Closed { conn, reason: "closed by peer".into() });
                            return;
                        }
                        Ok(Some(data)) => {
                            if let Some(r) = &rrec { r.record(WireEvent::TcpData { from: peer, to: local, data: data.clone() }); }
                            rcredit.take(data.len());
                            if rtx.send(Ev::MsrpData { conn, data }).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = rtx.send(Ev::Closed { conn, reason: e.to_string() });
                            return;
                        }
                    }
                }
                _ = prx.changed() => {}
            }
        }
    });
    tokio::spawn(async move {
        let _live = live;
        let mut flushed = 0usize;
        let mut batch: Vec<Bytes> = Vec::new();
        loop {
            let cmd = match wrx.try_recv() {
                Ok(c) => c,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if flushed > 0 {
                        let _ = tx.send(Ev::Flushed {
                            conn,
                            bytes: flushed,
                        });
                        flushed = 0;
                    }
                    match wrx.recv().await {
                        Some(c) => c,
                        None => return,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            };
            // Gather what is already queued (a relayed chunk is a head, body pieces and an
            // end-line) into one vectored write: fewer syscalls and fuller segments.
            let mut close = false;
            let mut next = Some(cmd);
            let mut queued = 0usize;
            while let Some(cmd) = next.take() {
                match cmd {
                    WriteCmd::Data(d) => {
                        if let Some(r) = &rec {
                            r.record(WireEvent::TcpData {
                                from: local,
                                to: peer,
                                data: d.clone(),
                            });
                        }
                        queued += d.len();
                        batch.push(d);
                    }
                    WriteCmd::Close => {
                        close = true;
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
            if close {
                if let Some(r) = &rec {
                    r.record(WireEvent::TcpClose {
                        from: local,
                        to: peer,
                    });
                }
                let _ = wr.shutdown().await;
                return;
            }
        }
    });
    MsrpConn {
        tx: wtx,
        pause: ptx,
        credit,
    }
}

thread_local! {
    /// The read buffer of every MSRP connection served by this thread. Large reads are handed
    /// on as slices of it (no copy); small ones are copied out so the buffer is reused. An
    /// idle connection holds no buffer, and reads are packed densely, so memory follows the
    /// bytes in flight, not the number of connections.
    static READ_BUF: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// Reads what the socket has: `Ok(None)` when it would block, an empty `Bytes` at EOF.
fn read_now(rd: &tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Option<Bytes>> {
    const BUF: usize = 256 * 1024;
    const MIN_FREE: usize = 64 * 1024;
    /// Reads at least this long are handed on without a copy.
    const SPLIT: usize = 16 * 1024;
    READ_BUF.with(|b| {
        let mut b = b.borrow_mut();
        if b.capacity() - b.len() < MIN_FREE {
            b.reserve(BUF);
        }
        match rd.try_read_buf(&mut *b) {
            Ok(0) => Ok(Some(Bytes::new())),
            Ok(n) if n >= SPLIT => Ok(Some(b.split().freeze())),
            Ok(_) => {
                let data = Bytes::copy_from_slice(&b);
                b.clear();
                Ok(Some(data))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                b.clear();
                Ok(None)
            }
            Err(e) => {
                b.clear();
                Err(e)
            }
        }
    })
}

/// At most this many buffers, and about this many bytes, go into one vectored write.
const MAX_IOV: usize = 64;
const MAX_BATCH: usize = 256 * 1024;

/// Writes every buffer of `batch` in order (emptying it), with as few syscalls as the socket
/// allows.
async fn write_all_vectored(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
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
    to: SocketAddr,
    wrx: mpsc::UnboundedReceiver<Bytes>,
    tx: mpsc::UnboundedSender<Ev>,
    rec: Option<Recorder>,
    live: Arc<()>,
) {
    match connect_from(local_ip, to).await {
        Ok(s) => {
            if let (Some(r), Ok(local)) = (&rec, s.local_addr()) {
                r.record(WireEvent::TcpOpen {
                    conn: (local, to),
                    opener: local,
                });
            }
            sip_tcp_conn(s, to, wrx, tx, live).await
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

/// Reads SIP messages framed by Content-Length and writes queued ones, on one TCP connection.
async fn sip_tcp_conn(
    s: TcpStream,
    peer: SocketAddr,
    mut wrx: mpsc::UnboundedReceiver<Bytes>,
    tx: mpsc::UnboundedSender<Ev>,
    live: Arc<()>,
) {
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let _live = live;
        while let Some(b) = wrx.recv().await {
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
    });
    let mut framer = SipFramer::new(SipLimits::default());
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next() {
                Ok(Some(msg)) => {
                    if tx
                        .send(Ev::Sip {
                            transport: Transport::Tcp,
                            from: peer,
                            msg,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Ev::SipBad {
                        from: peer,
                        err: e.to_string(),
                    });
                    let _ = tx.send(Ev::SipConnGone { peer });
                    writer.abort();
                    return;
                }
            }
        }
    }
    let _ = tx.send(Ev::SipConnGone { peer });
    writer.abort();
}
