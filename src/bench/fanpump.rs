//! Row (b)'s anchor: the same group's bytes as a plain TCP fan-out — no SIP, no MSRP.
//!
//! x's address opens one connection per member to that member's pf-b (L3) and writes the
//! 1 MiB message on it, at most [`WINDOW`] members at once (x's default `fanout-window` of
//! 64 MiB holds 64 such messages); the pf-b opens one connection to the member (L4) and
//! forwards what it reads with one [`BUF`] buffer; the member reads and drops. Same
//! addresses, same split over processes and the same two connections per member as the row,
//! run in the row's process right after it. What the row takes beyond it is its SIP dialogs
//! and MSRP framing in user space.

use crate::chain::pattern;
use crate::limits::Limits;
use crate::topology::Topology;
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// Members x writes to at once: x's default fan-out window over the 1 MiB message.
pub const WINDOW: usize = 64;
/// Read buffer of a forwarding pf-b and of a member: the relay's largest read.
const BUF: usize = 256 * 1024;
/// Read buffers given back by finished connections: only the members being served (about
/// [`WINDOW`] per hop) hold one, so the pump touches a few MiB of buffers over and over,
/// as the relay's pooled read slabs do, not fresh pages per member.
static BUFS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// A read buffer of [`BUF`] octets from [`BUFS`], given back when dropped.
struct Buf(Vec<u8>);

impl Buf {
    fn take() -> Buf {
        let pooled = BUFS.lock().ok().and_then(|mut b| b.pop());
        Buf(pooled.unwrap_or_else(|| vec![0u8; BUF]))
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if let Ok(mut b) = BUFS.lock() {
            b.push(std::mem::take(&mut self.0));
        }
    }
}

/// No part of the pump waits longer than this.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// A connection from `from`'s address as the row's nodes open theirs: `TCP_NODELAY`, the
/// port chosen at connect time, the socket buffers of [`Limits::many_sessions`].
async fn connect(from: SocketAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    crate::driver::connect_from(from.ip(), to, Limits::many_sessions().msrp_socket_buffer).await
}

/// A listener with the socket buffers of the row's MSRP listeners.
fn listen(at: SocketAddr) -> std::io::Result<TcpListener> {
    crate::driver::listen_with(at, Limits::many_sessions().msrp_socket_buffer)
}

/// Binds the listeners of pf-b instances `first .. first + count` (at their MSRP addresses)
/// and of their members (their MSRP address, any port), then serves them: each pf-b accepts
/// one connection per member it serves, reads the member's index (4 octets) and forwards the
/// rest to that member. Returns the members served and a receiver of each member's
/// (message length, time of its last byte) as it completes.
pub async fn serve(
    t: &Topology,
    first: usize,
    count: usize,
) -> anyhow::Result<(usize, mpsc::UnboundedReceiver<(u64, SystemTime)>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let member_addr: HashMap<&str, SocketAddr> = t
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.msrp))
        .collect();
    let mut served = 0;
    for p in t.pf_b.iter().skip(first).take(count) {
        let mut sinks = Vec::new();
        for name in &p.serves {
            let at = *member_addr
                .get(name.as_str())
                .with_context(|| format!("{} serves an unknown member {name}", p.name))?;
            let l = listen(SocketAddr::new(at.ip(), 0))
                .with_context(|| format!("fan-out pump: binding {name}'s listener"))?;
            sinks.push(l.local_addr()?);
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let mut buf = Buf::take();
                let mut n = 0u64;
                while let Ok(r) = s.read(&mut buf.0).await {
                    if r == 0 {
                        break;
                    }
                    n += r as u64;
                }
                let _ = tx.send((n, crate::clock::wall()));
            });
        }
        let l = listen(p.msrp)
            .with_context(|| format!("fan-out pump: binding {}'s listener {}", p.name, p.msrp))?;
        let (from, sinks) = (p.msrp, Arc::new(sinks));
        let (name, n) = (p.name.clone(), p.serves.len());
        tokio::spawn(async move {
            for _ in 0..n {
                let Ok((mut up, _)) = l.accept().await else {
                    return;
                };
                let _ = up.set_nodelay(true);
                let sinks = sinks.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    if let Err(e) = forward(&mut up, from, &sinks).await {
                        eprintln!("fan-out pump: {name}: {e}");
                    }
                });
            }
        });
        served += n;
    }
    Ok((served, rx))
}

/// A pf-b's forwarding of one member's message: index, then every byte to the member.
async fn forward(up: &mut TcpStream, from: SocketAddr, sinks: &[SocketAddr]) -> anyhow::Result<()> {
    let k = up.read_u32().await.context("reading the member index")? as usize;
    let to = *sinks
        .get(k)
        .with_context(|| format!("member index {k} out of range"))?;
    let mut down = connect(from, to).await?;
    let mut buf = Buf::take();
    loop {
        match up.read(&mut buf.0).await? {
            0 => break,
            r => down.write_all(&buf.0[..r]).await?,
        }
    }
    down.shutdown().await?;
    Ok(())
}

/// x's side: the message to every member through its pf-b, [`WINDOW`] members at once.
pub async fn send_all(t: &Topology, message: usize) -> anyhow::Result<()> {
    let msg = pattern(message);
    let window = Arc::new(Semaphore::new(WINDOW));
    let mut tasks = tokio::task::JoinSet::new();
    let from = t.x.msrp;
    for p in &t.pf_b {
        for k in 0..p.serves.len() {
            let permit = window.clone().acquire_owned().await?;
            let (to, msg) = (p.msrp, msg.clone());
            tasks.spawn(async move {
                let mut s = connect(from, to).await?;
                s.write_u32(k as u32).await?;
                s.write_all(&msg).await?;
                s.shutdown().await?;
                drop(permit);
                anyhow::Ok(())
            });
        }
        // Failures surface as they come, not after every member was tried.
        while let Some(r) = tasks.try_join_next() {
            r??;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// Waits for `n` members' completions on `rx`: the time of the last byte, or an error
/// naming a member that got a different length.
pub async fn collect(
    n: usize,
    rx: &mut mpsc::UnboundedReceiver<(u64, SystemTime)>,
    message: usize,
    deadline: tokio::time::Instant,
) -> anyhow::Result<SystemTime> {
    let mut last = UNIX_EPOCH;
    for i in 0..n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((len, at))) if len == message as u64 => last = last.max(at),
            Ok(Some((len, _))) => bail!("fan-out pump: a member got {len} of {message} octets"),
            Ok(None) => bail!("fan-out pump: the members' tasks ended after {i} of {n}"),
            Err(_) => bail!("fan-out pump: {i} of {n} members complete within {TIMEOUT:?}"),
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every member gets the whole message through its pf-b, across several pf-b.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_member_gets_the_whole_message() {
        let t = Topology::generate(92, 130, 3, 5060, 2855);
        let (n, mut rx) = serve(&t, 0, t.pf_b.len()).await.unwrap();
        assert_eq!(n, 130);
        let deadline = crate::clock::tokio_now() + Duration::from_secs(60);
        let sender = send_all(&t, 100_000);
        let (sent, got) = tokio::join!(sender, collect(n, &mut rx, 100_000, deadline));
        sent.unwrap();
        got.unwrap();
        // A wrong length is an error, not a time.
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send((99_999, crate::clock::wall())).unwrap();
        let e = collect(1, &mut rx, 100_000, deadline).await.unwrap_err();
        assert!(e.to_string().contains("99999 of 100000"), "{e}");
    }
}
