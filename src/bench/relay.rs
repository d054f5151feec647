//! Row (c) and (e): the four-hop streaming relay of one large message to one member against
//! its anchor, a four-hop plain TCP byte pump over the same hops measured in the same process
//! (and, for reference, one raw loopback TCP stream), and the relay's peak memory.

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

/// Read and write buffer of the byte pump: the relay's largest read (`READ_MAX` of the
/// driver) and its largest vectored write.
const PUMP_BUF: usize = 256 * 1024;

/// What one byte-pump run measured.
pub struct PumpRun {
    /// Bytes per second from the source's first write to the sink's last byte.
    pub rate: f64,
    /// CPU seconds (user + system, all threads) per wall second during the transfer.
    pub cpu_share: f64,
}

/// The relay's anchor: the same four hops (client-a → pf-a → x → pf-b → client-b, on the
/// entities' loopback addresses) as plain TCP forwarding — no MSRP, no SIP. A source writes
/// `bytes`, three forwarding threads each read and write with one [`PUMP_BUF`] buffer in
/// blocking calls, a sink reads and drops; `TCP_NODELAY` like the relay's connections. What
/// it moves per second is what the kernel's four connections allow on this machine; the
/// relay cannot do better, and what it does worse is user space.
pub async fn pump(bytes: u64) -> anyhow::Result<PumpRun> {
    let t = Topology::generate(NET, 1, 1, 5060, 2855);
    let hops = [
        t.client_a.msrp.ip(),
        t.pf_a.msrp.ip(),
        t.x.msrp.ip(),
        t.pf_b[0].msrp.ip(),
        t.members[0].msrp.ip(),
    ];
    let mut listeners = Vec::new();
    for ip in &hops[1..] {
        listeners.push(std::net::TcpListener::bind((*ip, 0))?);
    }
    // Each hop but the last connects from its own address to the next one's listener.
    let mut conns = Vec::new();
    for (k, l) in listeners.iter().enumerate() {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(std::net::SocketAddr::new(hops[k], 0))?;
        let s = sock.connect(l.local_addr()?).await?.into_std()?;
        s.set_nonblocking(false)?;
        s.set_nodelay(true)?;
        let (a, _) = l.accept()?;
        a.set_nonblocking(false)?;
        a.set_nodelay(true)?;
        conns.push((s, a));
    }
    tokio::task::spawn_blocking(move || pump_blocking(bytes, conns)).await?
}

fn pump_blocking(
    bytes: u64,
    conns: Vec<(std::net::TcpStream, std::net::TcpStream)>,
) -> anyhow::Result<PumpRun> {
    use std::io::{Read, Write};
    // conns[k] = (hop k's end, hop k+1's end). Hops 1–3 forward; hop 4 is the sink.
    let mut outs = Vec::new();
    let mut ins = Vec::new();
    for (o, i) in conns {
        outs.push(o);
        ins.push(i);
    }
    let mut source = outs.remove(0);
    let mut sink_in = ins.pop().ok_or_else(|| anyhow!("no hops"))?;
    let cpu0 = cpu_seconds();
    let start = clock::now();
    let sink = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut buf = vec![0u8; PUMP_BUF];
        let mut n = 0u64;
        loop {
            match sink_in.read(&mut buf)? {
                0 => return Ok(n),
                r => n += r as u64,
            }
        }
    });
    let mut forwarders = Vec::new();
    for (mut i, mut o) in ins.into_iter().zip(outs) {
        forwarders.push(std::thread::spawn(move || -> std::io::Result<()> {
            let mut buf = vec![0u8; PUMP_BUF];
            loop {
                match i.read(&mut buf)? {
                    0 => return o.shutdown(std::net::Shutdown::Write),
                    r => o.write_all(&buf[..r])?,
                }
            }
        }));
    }
    let block = pattern(PUMP_BUF);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        source.write_all(&block[..n])?;
        left -= n as u64;
    }
    source.shutdown(std::net::Shutdown::Write)?;
    let got = sink.join().map_err(|_| anyhow!("pump sink panicked"))??;
    let secs = clock::since(start).as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    for f in forwarders {
        f.join().map_err(|_| anyhow!("pump forwarder panicked"))??;
    }
    if got != bytes {
        bail!("byte pump delivered {got} of {bytes} bytes");
    }
    Ok(PumpRun {
        rate: bytes as f64 / secs,
        cpu_share: cpu / secs,
    })
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
    let mut events = std::mem::replace(&mut member.events, crate::driver::queue::unbounded().1);
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

/// Pairs of (pump, relay) runs of row (c) and `bench relay`; the row's ratio is their median.
pub const PAIRS: usize = 3;

/// The runs of row (c): a raw single stream for reference, then [`PAIRS`] pairs of byte
/// pump and relay, alternating which goes first (pump–relay, relay–pump, …) so that a drift in
/// the shared machine's load weighs on both alike.
pub struct RatioRuns {
    pub raw: f64,
    pub pairs: Vec<(PumpRun, RelayRun)>,
}

impl RatioRuns {
    pub async fn measure(bytes: u64, chunk_size: u64) -> anyhow::Result<RatioRuns> {
        let raw = raw_tcp(bytes).await?;
        let mut pairs = Vec::new();
        for i in 0..PAIRS {
            let (p, r) = if i % 2 == 0 {
                let p = pump(bytes).await?;
                (p, chain_relay(bytes, chunk_size).await?)
            } else {
                let r = chain_relay(bytes, chunk_size).await?;
                (pump(bytes).await?, r)
            };
            pairs.push((p, r));
        }
        Ok(RatioRuns { raw, pairs })
    }

    /// relay / pump of each pair.
    pub fn ratios(&self) -> Vec<f64> {
        self.pairs.iter().map(|(p, r)| r.rate / p.rate).collect()
    }

    /// The pair whose ratio is the median.
    pub fn median(&self) -> &(PumpRun, RelayRun) {
        let mut idx: Vec<usize> = (0..self.pairs.len()).collect();
        let ratios = self.ratios();
        idx.sort_by(|&a, &b| ratios[a].total_cmp(&ratios[b]));
        &self.pairs[idx[idx.len() / 2]]
    }
}

/// Row (c): the relay against the byte pump (median of [`PAIRS`] alternating pairs).
pub async fn ratio_row(bytes: u64, chunk_size: u64) -> anyhow::Result<Row> {
    let runs = RatioRuns::measure(bytes, chunk_size).await?;
    let (pump, relay) = runs.median();
    let ratio = relay.rate / pump.rate;
    let all: Vec<String> = runs
        .pairs
        .iter()
        .map(|(p, r)| format!("{:.0}/{:.0}", r.rate / MIB, p.rate / MIB))
        .collect();
    // CPU seconds per GiB moved: what each costs, less sensitive than throughput to how
    // much of the shared machine each got.
    let per_gib = |rate: f64, share: f64| share * (1u64 << 30) as f64 / rate;
    Ok(Row::new(
        "c.relay",
        format!(
            "(c) four-hop relay of {} to one member vs four-hop TCP byte pump",
            size_name(bytes)
        ),
        ratio,
        "x pump",
    )
    .target(">= 0.9 x pump", ratio >= 0.9)
    .of(
        ("four-hop relay", relay.rate / MIB, "MiB/s"),
        ("four-hop byte pump", pump.rate / MIB, "MiB/s"),
    )
    .note(format!(
        "median of {PAIRS} alternating pairs, relay/pump MiB/s {}; relay used {:.2} CPUs \
         ({:.2} CPU-s per GiB), pump {:.2} ({:.2} CPU-s per GiB), of {}; raw loopback TCP, \
         one stream {:.0} MiB/s (relay {:.1} % of it); MSRP chunks of {chunk_size} B",
        all.join(", "),
        relay.cpu_share,
        per_gib(relay.rate, relay.cpu_share),
        pump.cpu_share,
        per_gib(pump.rate, pump.cpu_share),
        cpus(),
        runs.raw / MIB,
        100.0 * relay.rate / runs.raw,
    )))
}

/// CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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

/// `cpm-harness bench relay`: every run of row (c), then the median ratio.
pub async fn relay(bytes: u64, chunk_size: u64) -> anyhow::Result<()> {
    println!(
        "message            {} MiB, MSRP chunk {} bytes",
        bytes >> 20,
        chunk_size
    );
    let runs = RatioRuns::measure(bytes, chunk_size).await?;
    println!(
        "raw loopback TCP   {:>10.1} MiB/s (one stream)",
        runs.raw / MIB
    );
    for (i, (p, r)) in runs.pairs.iter().enumerate() {
        println!(
            "pair {}: byte pump {:>8.1} MiB/s ({:.2} CPUs), relay {:>8.1} MiB/s ({:.2} CPUs), relay/pump {:.3}",
            i + 1,
            p.rate / MIB,
            p.cpu_share,
            r.rate / MIB,
            r.cpu_share,
            r.rate / p.rate
        );
    }
    let (p, r) = runs.median();
    println!(
        "median relay/pump  {:>10.3} (relay {:.1} MiB/s, pump {:.1} MiB/s; four hops: client-a → pf-a → x → pf-b → client-b)",
        r.rate / p.rate,
        r.rate / MIB,
        p.rate / MIB
    );
    Ok(())
}
