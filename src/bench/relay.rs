//! Row (c) and (e): the four-hop streaming relay of one large message to one member against
//! a raw single-stream loopback TCP transfer measured in the same process, and the relay's
//! peak memory.

use super::{cpu_seconds, fd_count, peak_rss_kib, Row};
use crate::chain::{pattern, Chain, ChainOptions};
use crate::clock;
use crate::codec::sip::Transport;
use crate::config::Variant;
use crate::entity::{Input, NodeEvent, Repeat};
use crate::topology::Topology;
use anyhow::{anyhow, bail};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Loopback net of the relay rows (benchmarks use 127.93–99).
const NET: u8 = 97;

/// Bytes per second of a single raw TCP stream over loopback.
pub async fn raw_tcp(bytes: u64) -> anyhow::Result<f64> {
    let listener =
        tokio::net::TcpListener::bind((std::net::Ipv4Addr::new(127, NET, 200, 1), 0)).await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0u64;
        loop {
            let r = s.read(&mut buf).await?;
            if r == 0 {
                break;
            }
            n += r as u64;
        }
        Ok::<u64, std::io::Error>(n)
    });
    let block = pattern(256 * 1024);
    let start = clock::now();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        s.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    s.shutdown().await?;
    let got = reader.await??;
    let secs = clock::since(start).as_secs_f64();
    if got != bytes {
        bail!("raw TCP baseline received {got} of {bytes} bytes");
    }
    Ok(bytes as f64 / secs)
}

/// What one relay run measured.
pub struct RelayRun {
    /// Bytes per second from client-a's send to the member's last byte.
    pub rate: f64,
    /// CPU seconds (user + system, all threads) per wall second during the transfer.
    pub cpu_share: f64,
    pub fds: usize,
}

/// Four-hop relay of one `bytes` message to one member (harness playing all roles; SIP over
/// TCP). The content is generated piece by piece, so nothing holds the whole message.
pub async fn chain_relay(bytes: u64, chunk_size: u64) -> anyhow::Result<RelayRun> {
    let topology = Arc::new(Topology::generate(NET, 1, 1, 5060, 2855));
    let mut variant = Variant::new(1);
    variant.transport = Transport::Tcp;
    variant.chunk_size = chunk_size;
    let mut chain = Chain::start(ChainOptions::for_load(topology, variant)).await?;
    let member = chain
        .nodes
        .iter_mut()
        .find(|n| n.name == "b1")
        .ok_or_else(|| anyhow!("no member b1"))?;
    let mut events =
        std::mem::replace(&mut member.events, tokio::sync::mpsc::unbounded_channel().1);
    let source = Repeat {
        block: pattern(1 << 20),
        len: bytes,
    };
    let cpu0 = cpu_seconds();
    let start = clock::now();
    chain.input(
        "client-a",
        Input::SendSource {
            source: Arc::new(source),
        },
    )?;
    let mut got = 0u64;
    let mut fds = 0;
    let deadline = clock::tokio_now() + Duration::from_secs(1200);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(NodeEvent::Data { data, .. })) => {
                got += data.len() as u64;
                if fds == 0 && got >= bytes / 2 {
                    fds = fd_count();
                }
            }
            Ok(Some(NodeEvent::Delivered { .. })) => break,
            Ok(Some(_)) => {}
            Ok(None) => bail!("member stopped after {got} bytes"),
            Err(_) => bail!("relay timed out after {got} of {bytes} bytes"),
        }
    }
    let secs = clock::since(start).as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    chain.stop().await?;
    if got != bytes {
        bail!("member received {got} of {bytes} bytes");
    }
    Ok(RelayRun {
        rate: bytes as f64 / secs,
        cpu_share: cpu / secs,
        fds,
    })
}

const MIB: f64 = 1024.0 * 1024.0;

/// Row (c): the relay and the raw TCP baseline, measured one after the other in this process.
pub async fn ratio_row(bytes: u64, chunk_size: u64) -> anyhow::Result<Row> {
    let raw = raw_tcp(bytes).await?;
    let relay = chain_relay(bytes, chunk_size).await?;
    let pct = 100.0 * relay.rate / raw;
    Ok(Row::new(
        "c.relay",
        format!(
            "(c) four-hop relay of {} to one member vs raw loopback TCP",
            size_name(bytes)
        ),
        pct,
        "%",
    )
    .target(">= 40 %", pct >= 40.0)
    .of(
        ("four-hop relay", relay.rate / MIB, "MiB/s"),
        ("raw loopback TCP, one stream", raw / MIB, "MiB/s"),
    )
    .note(format!(
        "MSRP chunks of {chunk_size} B; relay used {:.2} CPUs of 2",
        relay.cpu_share
    )))
}

/// Row (e): peak RSS of this process while relaying `bytes` to one member.
pub async fn rss_row(bytes: u64, chunk_size: u64) -> anyhow::Result<Row> {
    let run = chain_relay(bytes, chunk_size).await?;
    let rss = peak_rss_kib() as f64 / 1024.0;
    Ok(Row::new(
        format!("e.rss.{}", bytes >> 20),
        format!(
            "(e) peak RSS relaying {} (all five roles in one process)",
            size_name(bytes)
        ),
        rss,
        "MiB",
    )
    .target("< 64 MiB", rss < 64.0)
    .note(format!(
        "{:.0} MiB/s; {} fds open mid-transfer",
        run.rate / MIB,
        run.fds
    )))
}

fn size_name(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes % (1 << 30) == 0 {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// `cpm-harness bench relay`: prints both throughputs and their ratio.
pub async fn relay(bytes: u64, chunk_size: u64) -> anyhow::Result<()> {
    let raw = raw_tcp(bytes).await?;
    let relay = chain_relay(bytes, chunk_size).await?;
    println!(
        "message            {} MiB, MSRP chunk {} bytes",
        bytes >> 20,
        chunk_size
    );
    println!("raw loopback TCP   {:>10.1} MiB/s (one stream)", raw / MIB);
    println!(
        "four-hop relay     {:>10.1} MiB/s (client-a → pf-a → x → pf-b → client-b)",
        relay.rate / MIB
    );
    println!("ratio              {:>10.1} %", 100.0 * relay.rate / raw);
    println!(
        "relay CPU          {:>10.2} CPUs busy during the transfer",
        relay.cpu_share
    );
    Ok(())
}
