//! Benchmarks run by `cpm-harness bench`: measured in one run against a baseline measured in
//! the same run, since the machine is shared and noisy.

use crate::chain::{pattern, Chain, ChainOptions};
use crate::codec::sip::Transport;
use crate::config::Variant;
use crate::entity::{NodeEvent, SipTimers};
use crate::topology::{Role, Topology};
use anyhow::{anyhow, bail};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes per second of a single raw TCP stream over loopback.
pub async fn raw_tcp(bytes: u64) -> anyhow::Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.250.200:0").await?;
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
    let start = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        s.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    s.shutdown().await?;
    let got = reader.await??;
    let secs = start.elapsed().as_secs_f64();
    if got != bytes {
        bail!("raw TCP baseline received {got} of {bytes} bytes");
    }
    Ok(bytes as f64 / secs)
}

/// Four-hop relay of one `bytes` message to one member (harness playing all roles), in bytes
/// per second from client-a's send to the member's last byte.
pub async fn chain_relay(bytes: u64, chunk_size: u64) -> anyhow::Result<f64> {
    let topology = Arc::new(Topology::generate(251, 1, 1, 5060, 2855));
    let mut variant = Variant::new(1);
    variant.transport = Transport::Tcp;
    variant.chunk_size = chunk_size;
    let mut chain = Chain::start(ChainOptions {
        topology,
        variant,
        roles: Role::ALL.to_vec(),
        timers: SipTimers::default(),
        recorder: None,
        out_dir: None,
        digest: false,
        holds: Default::default(),
        hold_roles: None,
        faults: Default::default(),
        limits: Default::default(),
    })
    .await?;
    let content = pattern(bytes as usize);
    let member = chain
        .nodes
        .iter_mut()
        .find(|n| n.name == "b1")
        .ok_or_else(|| anyhow!("no member b1"))?;
    let mut events =
        std::mem::replace(&mut member.events, tokio::sync::mpsc::unbounded_channel().1);
    let start = Instant::now();
    chain.send(content)?;
    let mut got = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(NodeEvent::Data { data, .. })) => got += data.len() as u64,
            Ok(Some(NodeEvent::Delivered { .. })) => break,
            Ok(Some(_)) => {}
            Ok(None) => bail!("member stopped after {got} bytes"),
            Err(_) => bail!("relay timed out after {got} of {bytes} bytes"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    chain.stop().await?;
    if got != bytes {
        bail!("member received {got} of {bytes} bytes");
    }
    Ok(bytes as f64 / secs)
}

/// `cpm-harness bench relay`: prints both throughputs and their ratio.
pub async fn relay(bytes: u64, chunk_size: u64) -> anyhow::Result<()> {
    let raw = raw_tcp(bytes).await?;
    let relay = chain_relay(bytes, chunk_size).await?;
    let mib = |b: f64| b / (1024.0 * 1024.0);
    println!(
        "message            {} MiB, MSRP chunk {} bytes",
        bytes >> 20,
        chunk_size
    );
    println!("raw loopback TCP   {:>10.1} MiB/s (one stream)", mib(raw));
    println!(
        "four-hop relay     {:>10.1} MiB/s (client-a → pf-a → x → pf-b → client-b)",
        mib(relay)
    );
    println!("ratio              {:>10.1} %", 100.0 * relay / raw);
    Ok(())
}
