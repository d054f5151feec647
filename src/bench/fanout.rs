//! Row (b): session setup and delivery of a 1 MiB message to a group of N members on 10 to
//! 100 pf-b, the harness playing every role. Time from client-a's send to the last member's
//! last byte, peak RSS and open file descriptors; then its anchors over the same split: the
//! same chain with a [`SETUP_MESSAGE`] (its sessions), the plain TCP fan-out of
//! [`super::fanpump`] (its bytes), and the CPU floor the two give on this machine.
//!
//! One process holds as many members as its limit on open files allows
//! ([`members_per_process`]): every member costs about six sockets (SIP/UDP, SIP/TCP and MSRP
//! listeners, both ends of L4, the pf-b end of L3) and no unprivileged process can raise its
//! hard limit. Larger groups are split: client-a, pf-a and x in the row's process, the pf-b
//! instances with their members in worker processes of this binary, as few as the limit
//! allows (each process costs its own runtime, pools and copy of the topology). RSS and fds
//! are then the sums over all processes.

use super::{children_cpu_seconds, cpu_seconds, fanpump, fd_count, peak_rss_kib, relay, Row};
use crate::chain::{pattern, Chain, ChainOptions};
use crate::clock;
use crate::config::Variant;
use crate::entity::NodeEvent;
use crate::topology::Topology;
use anyhow::{bail, Context};
use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// Members one process may hold under a limit of `nofile` open files: seven fds each (six,
/// and one to spare) after 1,000 for everything else, at least [`MIN_PER_PROC`].
pub fn members_per_process(nofile: u64) -> usize {
    (usize::try_from(nofile)
        .unwrap_or(usize::MAX)
        .saturating_sub(1000)
        / 7)
    .max(MIN_PER_PROC)
}
/// Members per process whatever the limit (a limit too low for them fails with its error).
pub const MIN_PER_PROC: usize = 500;
/// Size of the delivered message.
pub const MESSAGE: usize = 1 << 20;
/// The message of the set-up anchor: over the 1,300 octets that make it a large message,
/// next to nothing beside the 1 MiB.
pub const SETUP_MESSAGE: usize = 2000;

/// pf-b instances for a group of `members`: 10 up to 1,000 members, then one per 100, at
/// most 100.
pub fn pfbs_for(members: usize) -> usize {
    (members / 100).clamp(10, 100).min(members.max(1))
}

/// Loopback net of a group size (benchmarks use 127.93–99).
fn net_for(members: usize) -> u8 {
    match members {
        0..=10 => 93,
        11..=100 => 94,
        101..=1000 => 95,
        _ => 96,
    }
}

fn topology(net: u8, members: usize, pfbs: usize) -> Topology {
    Topology::generate(net, members, pfbs, 5060, 2855)
}

fn options(topology: Arc<Topology>, chunk: u64) -> ChainOptions {
    let mut variant = Variant::new(1);
    variant.chunk_size = chunk;
    ChainOptions::for_load(topology, variant)
}

fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Takes every node's event stream and forwards deliveries (member, wall time) and failures;
/// content pieces are dropped as they come.
fn pump(
    chain: &mut Chain,
) -> mpsc::UnboundedReceiver<Result<(String, SystemTime), (String, String)>> {
    let (tx, rx) = mpsc::unbounded_channel();
    for n in chain.nodes.iter_mut() {
        let mut ev = std::mem::replace(&mut n.events, crate::driver::queue::unbounded().1);
        let tx = tx.clone();
        let name = n.name.clone();
        tokio::spawn(async move {
            while let Some(e) = ev.recv().await {
                let m = match e {
                    NodeEvent::Delivered { member, .. } => Ok((member, clock::wall())),
                    NodeEvent::SessionEnded {
                        ok: false, detail, ..
                    } => Err((name.clone(), format!("{name}: session failed: {detail}"))),
                    _ => continue,
                };
                if tx.send(m).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

/// Arguments of a worker process (a range of pf-b instances and the members they serve).
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    #[arg(long)]
    net: u8,
    #[arg(long)]
    members: usize,
    #[arg(long)]
    pfbs: usize,
    #[arg(long)]
    chunk_size: u64,
    /// First pf-b (0-based) of this part.
    #[arg(long)]
    first: usize,
    /// pf-b instances in this part.
    #[arg(long)]
    count: usize,
    /// The row's anchor instead of the chain: the part's pf-b and members as a plain TCP
    /// fan-out ([`super::fanpump`]).
    #[arg(long)]
    pump: bool,
}

/// The instances of pf-b `first .. first + count` and their members.
fn part_instances(t: &Topology, first: usize, count: usize) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut members = 0;
    for p in t.pf_b.iter().skip(first).take(count) {
        names.push(p.name.clone());
        names.extend(p.serves.iter().cloned());
        members += p.serves.len();
    }
    (names, members)
}

/// A worker: prints `ready`, then `delivered <n> <unix µs of the last> <fds>` once its
/// members have the content, and `rss <KiB>` when its stdin closes (then exits).
pub async fn worker(a: WorkerArgs) -> anyhow::Result<()> {
    let t = Arc::new(topology(a.net, a.members, a.pfbs));
    if a.pump {
        let (n, mut rx) = fanpump::serve(&t, a.first, a.count).await?;
        println!("ready");
        let deadline = clock::tokio_now() + fanpump::TIMEOUT;
        let last = fanpump::collect(n, &mut rx, MESSAGE, deadline).await?;
        println!("delivered {n} {} {} 0", unix_us(last), fd_count());
        return Ok(());
    }
    let (names, members) = part_instances(&t, a.first, a.count);
    let mut chain = Chain::start_instances(options(t.clone(), a.chunk_size), &names).await?;
    let mut rx = pump(&mut chain);
    println!("ready");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let own: HashSet<String> = names.iter().cloned().collect();
    let mut got: HashSet<String> = HashSet::new();
    let mut lost: HashSet<String> = HashSet::new();
    let mut last = UNIX_EPOCH;
    let mut reported = false;
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(Ok((member, at))) => {
                    got.insert(member);
                    last = last.max(at);
                }
                Some(Err((name, e))) => {
                    eprintln!("fan-out worker: {e}");
                    if own.contains(&name) && t.members.iter().any(|m| m.name == name) {
                        lost.insert(name);
                    }
                }
                None => break,
            },
            l = stdin.next_line() => match l {
                Ok(Some(_)) => {}
                _ => break,
            },
        }
        // Every member delivered, or failed (a member whose session failed never will be).
        if !reported && got.len() + lost.iter().filter(|m| !got.contains(*m)).count() >= members {
            reported = true;
            println!(
                "delivered {} {} {} {}",
                got.len(),
                unix_us(last),
                fd_count(),
                members - got.len()
            );
        }
    }
    chain.stop().await?;
    println!("rss {}", peak_rss_kib());
    Ok(())
}
/// What a worker reported.
enum Report {
    Ready,
    Delivered {
        n: usize,
        last_us: u64,
        fds: usize,
        lost: usize,
    },
    Rss(u64),
}

fn parse_report(l: &str) -> Option<Report> {
    let mut it = l.split_whitespace();
    match it.next()? {
        "ready" => Some(Report::Ready),
        "delivered" => Some(Report::Delivered {
            n: it.next()?.parse().ok()?,
            last_us: it.next()?.parse().ok()?,
            fds: it.next()?.parse().ok()?,
            lost: it.next()?.parse().ok()?,
        }),
        "rss" => Some(Report::Rss(it.next()?.parse().ok()?)),
        _ => None,
    }
}

/// Starts a worker process per part (`pump`: the anchor's) and waits until each is ready.
/// Returns the children and the receiver of their reports (part index, report).
async fn start_workers(
    parts: &[(usize, usize)],
    net: u8,
    members: usize,
    pfbs: usize,
    chunk: u64,
    pump: bool,
) -> anyhow::Result<(
    Vec<tokio::process::Child>,
    mpsc::UnboundedReceiver<(usize, Report)>,
)> {
    let exe = std::env::current_exe()?;
    let (wtx, mut wrx) = mpsc::unbounded_channel::<(usize, Report)>();
    let mut children = Vec::new();
    for (i, (first, count)) in parts.iter().enumerate() {
        let mut child = tokio::process::Command::new(&exe)
            .args(["bench", "fanout-worker"])
            .args(["--net", &net.to_string(), "--members", &members.to_string()])
            .args([
                "--pfbs",
                &pfbs.to_string(),
                "--chunk-size",
                &chunk.to_string(),
            ])
            .args(["--first", &first.to_string(), "--count", &count.to_string()])
            .args(pump.then_some("--pump"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting a fan-out worker")?;
        let out = child.stdout.take().expect("piped");
        let tx = wtx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(r) = parse_report(&l) {
                    let _ = tx.send((i, r));
                }
            }
        });
        children.push(child);
    }
    drop(wtx);
    let deadline = clock::tokio_now() + Duration::from_secs(300);
    let mut ready = 0;
    while ready < parts.len() {
        match tokio::time::timeout_at(deadline, wrx.recv()).await {
            Ok(Some((_, Report::Ready))) => ready += 1,
            Ok(Some(_)) => {}
            Ok(None) => bail!("a fan-out worker exited before it was ready"),
            Err(_) => bail!("fan-out workers not ready within 300 s"),
        }
    }
    Ok((children, wrx))
}

/// What one run of row (b)'s chain measured.
struct ChainRun {
    /// From client-a's send to the last member's last byte.
    secs: f64,
    /// CPU seconds of this process and the workers over the run.
    cpu: f64,
    /// Members never delivered (their session failed), and sessions that ended badly.
    lost: usize,
    failed: usize,
    /// Open fds at all-delivered, and peak RSS summed over the processes.
    fds: usize,
    rss_kib: u64,
}

/// Row (b)'s chain over `parts` (worker processes; none: all in this process), sending
/// `message` octets from client-a to every member.
async fn chain_run(
    t: &Arc<Topology>,
    parts: &[(usize, usize)],
    (net, members, pfbs, chunk): (u8, usize, usize, u64),
    message: usize,
) -> anyhow::Result<ChainRun> {
    let cpu0 = cpu_seconds() + children_cpu_seconds();
    let (mut children, mut wrx) = start_workers(parts, net, members, pfbs, chunk, false).await?;
    let deadline = clock::tokio_now() + Duration::from_secs(300);
    // This process: client-a, pf-a and x, plus every pf-b and member when not split.
    let own: Vec<String> = if parts.is_empty() {
        t.instances().into_iter().map(|i| i.name).collect()
    } else {
        vec!["client-a".into(), "pf-a".into(), "x".into()]
    };
    let own_members = if parts.is_empty() { members } else { 0 };
    let mut chain = Chain::start_instances(options(t.clone(), chunk), &own).await?;
    let mut rx = pump(&mut chain);
    let t0 = clock::wall();
    chain.send(pattern(message))?;
    let mut got = HashSet::new();
    let mut times = Vec::new();
    let mut last = t0;
    let mut workers_done = 0;
    // Sessions that ended badly here (teardown after delivery); deliveries still decide.
    let mut failed = 0usize;
    let mut worker_fds = 0;
    let mut delivered = 0;
    let mut lost_here: HashSet<String> = HashSet::new();
    let mut lost = 0usize;
    while got.len() + lost_here.iter().filter(|m| !got.contains(*m)).count() < own_members
        || workers_done < parts.len()
    {
        tokio::select! {
            m = rx.recv() => match m {
                Some(Ok((member, at))) => {
                    got.insert(member);
                    last = last.max(at);
                    times.push(at.duration_since(t0).unwrap_or_default().as_secs_f64());
                }
                Some(Err((name, e))) => {
                    failed += 1;
                    eprintln!("fan-out: {e}");
                    if own_members > 0 && t.members.iter().any(|m| m.name == name) {
                        lost_here.insert(name);
                    }
                }
                None => bail!("the nodes stopped"),
            },
            r = wrx.recv(), if workers_done < parts.len() => match r {
                Some((_, Report::Delivered { n, last_us, fds, lost: l })) => {
                    workers_done += 1;
                    lost += l;
                    worker_fds += fds;
                    delivered += n;
                    last = last.max(UNIX_EPOCH + Duration::from_micros(last_us));
                }
                Some(_) => {}
                None => bail!("a fan-out worker exited early"),
            },
            _ = tokio::time::sleep_until(deadline) => {
                bail!("not all delivered within 300 s: {} + {delivered} of {members}", got.len())
            }
        }
    }
    let secs = last.duration_since(t0).unwrap_or_default().as_secs_f64();
    lost += lost_here.iter().filter(|m| !got.contains(*m)).count();
    times.sort_by(f64::total_cmp);
    if std::env::var_os("CPM_BENCH_DEBUG").is_some() && !times.is_empty() {
        let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
        eprintln!(
            "deliveries: first {:.3} p10 {:.3} p50 {:.3} p90 {:.3} last {:.3}",
            q(0.0),
            q(0.1),
            q(0.5),
            q(0.9),
            q(1.0)
        );
    }
    let fds = fd_count() + worker_fds;
    // Let the sessions tear down, then stop everything and collect peak RSS.
    let mut rss = 0u64;
    for c in children.iter_mut() {
        drop(c.stdin.take());
    }
    let mut rss_reports = 0;
    while rss_reports < parts.len() {
        match tokio::time::timeout(Duration::from_secs(60), wrx.recv()).await {
            Ok(Some((i, Report::Rss(k)))) => {
                if std::env::var_os("CPM_BENCH_DEBUG").is_some() {
                    eprintln!("worker {i}: peak RSS {} MiB", k / 1024);
                }
                rss += k;
                rss_reports += 1;
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    for mut c in children {
        let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
    }
    chain.stop().await?;
    // The whole run's CPU: this process and the workers (setup and teardown included).
    let cpu = cpu_seconds() + children_cpu_seconds() - cpu0;
    rss += peak_rss_kib();
    if std::env::var_os("CPM_BENCH_DEBUG").is_some() {
        eprintln!("this process: peak RSS {} MiB", peak_rss_kib() / 1024);
    }
    Ok(ChainRun {
        secs,
        cpu,
        lost,
        failed,
        fds,
        rss_kib: rss,
    })
}

/// Row (b) for one group size: time, RSS, fds, its two anchors, the ratio and the floor.
pub async fn rows(members: usize, chunk: u64) -> anyhow::Result<Vec<Row>> {
    let pfbs = pfbs_for(members);
    let net = net_for(members);
    let t = Arc::new(topology(net, members, pfbs));
    // Parts: consecutive pf-b instances with at most `per_proc` members each.
    let per_proc = members_per_process(super::raise_nofile());
    let mut parts: Vec<(usize, usize)> = Vec::new();
    if members > per_proc {
        let (mut first, mut count, mut n) = (0, 0, 0);
        for (i, p) in t.pf_b.iter().enumerate() {
            if count > 0 && n + p.serves.len() > per_proc {
                parts.push((first, count));
                (first, count, n) = (i, 0, 0);
            }
            count += 1;
            n += p.serves.len();
        }
        parts.push((first, count));
    }
    let shape = (net, members, pfbs, chunk);
    let run = chain_run(&t, &parts, shape, MESSAGE).await?;
    let (secs, cpu, lost, failed, fds) = (run.secs, run.cpu, run.lost, run.failed, run.fds);
    let rss = run.rss_kib;
    let procs = parts.len() + 1;
    let rss_mib = rss as f64 / 1024.0;
    let setting = format!(
        "{members} members on {pfbs} pf-b, {} process{}, SIP/UDP, MSRP chunks of {} KiB; \
         CPU {cpu:.1} s for the whole row",
        procs,
        if procs == 1 { "" } else { "es" },
        chunk / 1024
    );
    let mut time = Row::new(
        format!("b.{members}.time"),
        format!("(b) {members} members: 1 MiB set up and delivered to all"),
        secs,
        "s",
    )
    .note(match (lost, failed) {
        (0, 0) => setting.clone(),
        (0, f) => format!("{setting}; {f} session(s) ended badly after delivery"),
        (l, _) => format!("{setting}; NOT DELIVERED to {l} member(s) whose session failed: time to the last delivered"),
    });
    match members {
        1000 => time = time.target("<= 1 s", secs <= 1.0 && lost == 0),
        10000 => time = time.target("<= 10 s", secs <= 10.0 && lost == 0),
        _ => {}
    }
    let mut rss_row = Row::new(
        format!("b.{members}.rss"),
        format!("(b) {members} members: peak RSS"),
        rss_mib,
        "MiB",
    )
    .note(if procs > 1 {
        "sum of the processes' peaks".to_string()
    } else {
        String::new()
    });
    if members >= 10000 {
        rss_row = rss_row.target("< 1024 MiB", rss_mib < 1024.0);
    }
    let fds_row = Row::new(
        format!("b.{members}.fds"),
        format!("(b) {members} members: open fds at all-delivered"),
        fds as f64,
        "fds",
    );
    // The anchors, after the row (their listeners take the row's addresses, free again):
    // the same sessions with next to no bytes, and the same bytes with no sessions.
    let setup = chain_run(&t, &parts, shape, SETUP_MESSAGE).await?;
    let (pump_secs, pump_cpu) = pump_run(&t, &parts, shape).await?;
    let plural = if procs == 1 { "" } else { "es" };
    let setup_row = Row::new(
        format!("b.{members}.setup"),
        format!("(b) {members} members: the same sessions, {SETUP_MESSAGE}-octet message"),
        setup.secs,
        "s",
    )
    .note(format!(
        "{} SIP dialogs and MSRP connections with next to no bytes; CPU {:.1} s{}",
        2 * members,
        setup.cpu,
        match (setup.lost, setup.failed) {
            (0, 0) => String::new(),
            (l, f) => format!("; NOT DELIVERED to {l} member(s), {f} session(s) ended badly"),
        }
    ));
    let pump_row = Row::new(
        format!("b.{members}.pump"),
        format!("(b) {members} members: the same bytes as a plain TCP fan-out"),
        pump_secs,
        "s",
    )
    .note(format!(
        "x -> pf-b -> member, one connection per member and hop, {} members at once, \
         {procs} process{plural}; CPU {pump_cpu:.1} s",
        fanpump::WINDOW,
    ));
    let vs = Row::new(
        format!("b.{members}.vs-pump"),
        format!("(b) {members} members: the row's speed against the fan-out pump's"),
        pump_secs / secs,
        "x pump",
    )
    .of(
        ("set-up and delivery, SIP and MSRP", secs, "s"),
        ("plain TCP fan-out of the same bytes", pump_secs, "s"),
    )
    .note(format!(
        "CPU {:.2} x the pump's",
        cpu / pump_cpu.max(f64::EPSILON)
    ));
    // The bytes cannot cost less than the pump, the sessions not less than their set-up
    // costs today, and this machine has only so many CPUs: a target below this floor is not
    // met here unless the set-up itself gets cheaper.
    let n = relay::cpus().max(1);
    let floor = (pump_cpu + setup.cpu) / n as f64;
    let floor_row = Row::new(
        format!("b.{members}.floor"),
        format!("(b) {members} members: CPU floor, the pump's bytes + the set-up's sessions"),
        floor,
        "s",
    )
    .of(
        ("fan-out pump CPU", pump_cpu, "CPU-s"),
        ("set-up CPU", setup.cpu, "CPU-s"),
    )
    .note(format!(
        "({pump_cpu:.1} + {:.1}) CPU-s over {n} CPU{}; the row took {cpu:.1} CPU-s",
        setup.cpu,
        if n == 1 { "" } else { "s" }
    ));
    Ok(vec![
        time, rss_row, fds_row, setup_row, pump_row, vs, floor_row,
    ])
}

/// Row (b)'s anchor ([`fanpump`]) over the same split: wall seconds from x's first
/// connection to the last member's last byte, and the CPU seconds of all its processes.
async fn pump_run(
    t: &Topology,
    parts: &[(usize, usize)],
    (net, members, pfbs, chunk): (u8, usize, usize, u64),
) -> anyhow::Result<(f64, f64)> {
    let cpu0 = cpu_seconds() + children_cpu_seconds();
    let (children, mut wrx) = start_workers(parts, net, members, pfbs, chunk, true).await?;
    // Not split: every pf-b and member in this process.
    let (own, mut rx) = if parts.is_empty() {
        fanpump::serve(t, 0, t.pf_b.len()).await?
    } else {
        (0, mpsc::unbounded_channel().1)
    };
    let deadline = clock::tokio_now() + fanpump::TIMEOUT;
    let t0 = clock::wall();
    let send = tokio::time::timeout_at(deadline, fanpump::send_all(t, MESSAGE));
    let (sent, own_last) = tokio::join!(send, fanpump::collect(own, &mut rx, MESSAGE, deadline));
    sent.context("fan-out pump: x's sending timed out")??;
    let mut last = own_last?;
    let mut done = 0;
    while done < parts.len() {
        match tokio::time::timeout_at(deadline, wrx.recv()).await {
            Ok(Some((_, Report::Delivered { last_us, .. }))) => {
                done += 1;
                last = last.max(UNIX_EPOCH + Duration::from_micros(last_us));
            }
            Ok(Some(_)) => {}
            Ok(None) => bail!("a fan-out pump worker exited early"),
            Err(_) => bail!(
                "fan-out pump: workers not done within {:?}",
                fanpump::TIMEOUT
            ),
        }
    }
    for mut c in children {
        drop(c.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
    }
    let secs = last.duration_since(t0).unwrap_or_default().as_secs_f64();
    Ok((secs, cpu_seconds() + children_cpu_seconds() - cpu0))
}
