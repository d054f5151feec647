//! `cpm-harness load`: drives a SUT with many concurrent group sessions at a target rate and
//! reports what happened to them.
//!
//! The SUT is launched once from its profile (as a case would launch it, for the roles given
//! by `--sut`, default `x`) on a generated topology of `--members` members; the harness plays
//! every other role in this process. Each session is a new group message from client-a (its
//! own INVITE, Call-ID, tags and MSRP session ids) of `--size` bytes whose first bytes name
//! the session, so each member's delivery is matched to its session. A session succeeded
//! when client-a's INVITE got a 200, every member received the whole content and client-a's
//! session ended with a clean teardown; otherwise it failed, counted by reason.
//!
//! Setup latency: client-a's INVITE to its 200 (read from client-a's own wire events).
//! Delivery latency: the send to the last member's last byte.
//!
//! Beyond one machine: `--shard k/n` makes this process one of n workers. The schedule of
//! starts is the whole run's (`--rate` for `--duration`), and the worker starts the k-th of
//! every n of them, on the loopback net `--net + k - 1` (so workers can share a host). Its
//! result carries both latency histograms serialized (HdrHistogram V2 + DEFLATE, base64, as
//! in HdrHistogram's own logs), and `load-merge` adds the workers' histograms and counts
//! into one result whose percentiles are those of all the samples together.

use crate::chain::{pattern, Chain, ChainOptions};
use crate::clock;
use crate::codec::sip::Transport;
use crate::config::Variant;
use crate::engine::profile::{case_vars, expand_line, Profile, Ready, RunVars};
use crate::engine::shard::Partition;
use crate::engine::spec::Case;
use crate::engine::sutproc::{Readiness, SutProcess};
use crate::entity::{Fault, Input, NodeEvent};
use crate::topology::{Role, Topology};
use crate::trace::{Recorder, Stamped, WireEvent};
use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// `cpm-harness load …`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// The SUT's profile (how to launch it).
    #[arg(long)]
    pub profile: PathBuf,
    /// Sessions started per second.
    #[arg(long)]
    pub rate: f64,
    /// How long to start sessions, in seconds.
    #[arg(long)]
    pub duration: f64,
    /// Members of the group.
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Sessions in flight at most; a start due while at the limit is skipped and counted.
    #[arg(long, default_value_t = 1000)]
    pub concurrency: usize,
    /// Roles the SUT plays (comma-separated; among pf-a, x, pf-b).
    #[arg(long, default_value = "x")]
    pub sut: String,
    /// Figure 1–7.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub figure: u8,
    /// SIP transport.
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    pub transport: Transport,
    /// Seconds to wait after the last start for sessions still in flight.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Write the JSON result here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Loopback net 127.<net>.0.0/16 of the generated topology.
    #[arg(long, default_value_t = 230)]
    pub net: u8,
    /// Faults to inject into the reference SUT (`{faults}` in the launch command).
    #[arg(long = "fault", value_parser = |s: &str| Fault::parse(s))]
    pub faults: Vec<Fault>,
    /// Be the k-th of n workers (1-based): start every n-th session of the run's schedule,
    /// on net `--net + k - 1`, with `--concurrency` for this worker; merge the workers'
    /// `--out` files with `load-merge`.
    #[arg(long)]
    pub shard: Option<Partition>,
}

/// `cpm-harness load-merge …`.
#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// The workers' results (`load --shard k/n --out FILE`), one per shard.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged JSON result here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// The percentiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Latency {
                count: 0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
        Latency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// The JSON result (`--out`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    pub profile: String,
    pub sut_roles: Vec<String>,
    pub members: usize,
    pub size: usize,
    pub target_rate: f64,
    pub duration_s: f64,
    pub concurrency: usize,
    pub attempted: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Failed sessions by reason.
    pub failures: BTreeMap<String, u64>,
    /// Starts skipped because `concurrency` sessions were in flight.
    pub skipped_at_limit: u64,
    /// Sessions started per second of the run.
    pub achieved_rate: f64,
    pub setup_latency_ms: Latency,
    pub delivery_latency_ms: Latency,
    pub elapsed_s: f64,
    /// The worker's share (`--shard k/n`); absent for a whole run or a merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// How many workers' results a merge added up (1 for a single process).
    #[serde(default = "one")]
    pub workers: usize,
    /// The latency histograms in microseconds (HdrHistogram V2 + DEFLATE, base64), so that
    /// results can be merged with exact percentiles.
    pub setup_histogram: String,
    pub delivery_histogram: String,
}

fn one() -> usize {
    1
}

/// A histogram as HdrHistogram's V2 + DEFLATE encoding in base64 (the form of its log files).
pub fn encode_histogram(h: &Histogram<u64>) -> anyhow::Result<String> {
    use base64::Engine;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| anyhow!("serializing a histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// The inverse of [`encode_histogram`].
pub fn decode_histogram(s: &str) -> anyhow::Result<Histogram<u64>> {
    use base64::Engine;
    use hdrhistogram::serialization::Deserializer;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .context("histogram: not base64")?;
    Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(raw))
        .map_err(|e| anyhow!("histogram: {e:?}"))
}

/// Adds up workers' results: counts and failures summed, histograms added (so percentiles
/// are exact over all samples), rates summed, elapsed the longest. The results must be the
/// shards 1/n … n/n of one run (same profile, roles, members, size, rate, duration).
pub fn merge(results: &[LoadResult]) -> anyhow::Result<LoadResult> {
    let first = results.first().ok_or_else(|| anyhow!("nothing to merge"))?;
    let mut seen: Vec<Partition> = Vec::new();
    for r in results {
        let p: Partition = r
            .shard
            .as_deref()
            .ok_or_else(|| anyhow!("a result without `shard` (not from `load --shard k/n`)"))?
            .parse()
            .map_err(|e: String| anyhow!(e))?;
        if seen.contains(&p) {
            bail!("shard {p} given twice");
        }
        let same = r.profile == first.profile
            && r.sut_roles == first.sut_roles
            && r.members == first.members
            && r.size == first.size
            && r.target_rate == first.target_rate
            && r.duration_s == first.duration_s;
        if !same {
            bail!("shard {p} is from another run (profile, SUT roles, members, size, rate or duration differ)");
        }
        seen.push(p);
    }
    let n = seen[0].n;
    if seen.iter().any(|p| p.n != n) {
        bail!("shards of different splits (not all k/{n})");
    }
    let missing: Vec<String> = (1..=n)
        .filter(|k| !seen.iter().any(|p| p.k == *k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        bail!("shard(s) {} missing", missing.join(", "));
    }
    let mut setup = Histogram::<u64>::new(3)?;
    let mut delivery = Histogram::<u64>::new(3)?;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut m = LoadResult {
        shard: None,
        workers: 0,
        attempted: 0,
        succeeded: 0,
        failed: 0,
        skipped_at_limit: 0,
        achieved_rate: 0.0,
        elapsed_s: 0.0,
        concurrency: 0,
        failures: BTreeMap::new(),
        ..first.clone()
    };
    for r in results {
        setup
            .add(decode_histogram(&r.setup_histogram)?)
            .map_err(|e| anyhow!("adding a setup histogram: {e:?}"))?;
        delivery
            .add(decode_histogram(&r.delivery_histogram)?)
            .map_err(|e| anyhow!("adding a delivery histogram: {e:?}"))?;
        for (k, v) in &r.failures {
            *failures.entry(k.clone()).or_default() += v;
        }
        m.workers += r.workers;
        m.attempted += r.attempted;
        m.succeeded += r.succeeded;
        m.failed += r.failed;
        m.skipped_at_limit += r.skipped_at_limit;
        m.achieved_rate += r.achieved_rate;
        m.concurrency += r.concurrency;
        m.elapsed_s = m.elapsed_s.max(r.elapsed_s);
    }
    m.failures = failures;
    m.setup_latency_ms = Latency::of(&setup);
    m.delivery_latency_ms = Latency::of(&delivery);
    m.setup_histogram = encode_histogram(&setup)?;
    m.delivery_histogram = encode_histogram(&delivery)?;
    Ok(m)
}

/// `cpm-harness load-merge`: prints the merged result (and writes it with `--out`); exit 0
/// when every attempted session succeeded, 1 otherwise.
pub fn merge_main(a: MergeArgs) -> anyhow::Result<u8> {
    let mut results = Vec::new();
    for f in &a.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        results.push(
            serde_json::from_str::<LoadResult>(&text)
                .with_context(|| format!("{}: not a `load --out` result", f.display()))?,
        );
    }
    let m = merge(&results)?;
    if let Some(path) = &a.out {
        crate::files::write_atomic(path, serde_json::to_string_pretty(&m)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", render(&m));
    Ok(if m.failed == 0 && m.attempted > 0 {
        0
    } else {
        1
    })
}

/// One session's progress.
struct Session {
    started: Instant,
    call_id: Option<String>,
    /// INVITE to 200 (or the final error code).
    setup: Option<Duration>,
    final_code: Option<u16>,
    /// client-a's end: clean or not.
    ended: Option<bool>,
    delivered: HashSet<String>,
    short: u64,
    last_delivery: Option<Instant>,
}

/// How long after client-a's clean end a member's delivery may still be reported.
const DELIVERY_GRACE: Duration = Duration::from_secs(2);

/// The first bytes of a session's content: `cpm-load <n>` padded to [`TAG`] bytes.
const TAG: usize = 24;

fn content_for(n: u64, size: usize, filler: &Bytes) -> Bytes {
    let mut b = BytesMut::with_capacity(size.max(TAG));
    let tag = format!("cpm-load {n}");
    b.extend_from_slice(tag.as_bytes());
    b.resize(TAG, b' ');
    while b.len() < size {
        let k = (size - b.len()).min(filler.len());
        b.extend_from_slice(&filler[..k]);
    }
    b.truncate(size.max(TAG));
    b.freeze()
}

fn parse_tag(head: &[u8]) -> Option<u64> {
    let t = std::str::from_utf8(head.get(..TAG)?).ok()?;
    t.strip_prefix("cpm-load ")?.trim_end().parse().ok()
}

/// What the harness's nodes and client-a's wire tell the load loop.
enum Note {
    /// client-a's session `n` (1-based, in send order) ended.
    Ended { session: u64, ok: bool },
    /// A piece of content at a member.
    Data {
        member: String,
        session: u64,
        offset: u64,
        data: Bytes,
    },
    Delivered {
        member: String,
        session: u64,
        bytes: u64,
    },
    /// client-a sent an INVITE with this Call-ID (first transmission).
    Invite { call_id: String, at: Instant },
    /// client-a got a final INVITE response.
    Answer {
        call_id: String,
        code: u16,
        at: Instant,
    },
}

fn pump(chain: &mut Chain, tx: &mpsc::UnboundedSender<Note>) {
    for n in chain.nodes.iter_mut() {
        let mut ev = std::mem::replace(&mut n.events, crate::driver::queue::unbounded().1);
        let tx = tx.clone();
        let is_a = n.name == "client-a";
        tokio::spawn(async move {
            while let Some(e) = ev.recv().await {
                let note = match e {
                    NodeEvent::SessionEnded { session, ok, .. } if is_a => {
                        Note::Ended { session, ok }
                    }
                    NodeEvent::Data {
                        member,
                        session,
                        offset,
                        data,
                    } if offset < TAG as u64 => Note::Data {
                        member,
                        session,
                        offset,
                        data,
                    },
                    NodeEvent::Delivered {
                        member,
                        session,
                        bytes,
                    } => Note::Delivered {
                        member,
                        session,
                        bytes,
                    },
                    _ => continue,
                };
                if tx.send(note).is_err() {
                    return;
                }
            }
        });
    }
}

/// Reads client-a's SIP from its wire tap (a thread: the tap is a std channel).
fn watch_sip(
    rx: std::sync::mpsc::Receiver<Stamped>,
    client_a: std::net::SocketAddr,
    start: Instant,
    tx: mpsc::UnboundedSender<Note>,
) {
    std::thread::spawn(move || {
        let mut seen = HashSet::new();
        while let Ok((t, ev)) = rx.recv() {
            let WireEvent::Sip {
                transport,
                from,
                to,
                raw,
            } = ev
            else {
                continue;
            };
            // The model's reading of the message (this watch streams: it keeps no case).
            let s = crate::model::wire::sip_obs(0, t, transport, from, to, &raw);
            let Some(call_id) = s.msg.as_ref().and_then(|m| m.call_id()).map(str::to_string) else {
                continue;
            };
            let at = start + t;
            let note = if from == client_a && s.is_request("INVITE") {
                if !seen.insert(call_id.clone()) {
                    continue;
                }
                Note::Invite { call_id, at }
            } else if to == client_a && s.is_response("INVITE", 200..=699) {
                let code = match s.kind {
                    Some(crate::model::SipKind::Response { code, .. }) => code,
                    _ => 0,
                };
                Note::Answer { call_id, code, at }
            } else {
                continue;
            };
            if tx.send(note).is_err() {
                return;
            }
        }
    });
}

/// Runs the load and returns its result (also written to `--out`).
pub async fn run(a: &LoadArgs, progress: bool) -> anyhow::Result<LoadResult> {
    if a.rate <= 0.0 || !a.rate.is_finite() {
        bail!("--rate must be a positive number of sessions per second");
    }
    if a.duration <= 0.0 || !a.duration.is_finite() || a.drain < 0.0 {
        bail!("--duration must be positive and --drain not negative");
    }
    if a.members == 0 || a.concurrency == 0 {
        bail!("--members and --concurrency must be at least 1");
    }
    let sut = Role::parse_list(&a.sut).map_err(|e| anyhow!("--sut: {e}"))?;
    if sut.contains(&Role::ClientA) || sut.contains(&Role::ClientB) {
        bail!("--sut: the harness plays client-a (to start sessions) and the members (to see deliveries); give roles among pf-a, x, pf-b");
    }
    let profile = Profile::load(&a.profile)?;
    for r in &sut {
        if !profile.roles.contains(r) {
            bail!("{}: the SUT does not declare the role {r}", profile.origin);
        }
    }
    let launch = profile
        .launch
        .clone()
        .ok_or_else(|| anyhow!("{}: load needs a `launch` section", profile.origin))?;
    let pfbs = a.members.div_ceil(100).clamp(1, 100);
    let net = match a.shard {
        Some(p) => u8::try_from(usize::from(a.net) + p.k - 1)
            .map_err(|_| anyhow!("--shard {p}: net {} + {} is past 255", a.net, p.k - 1))?,
        None => a.net,
    };
    let topology = Arc::new(Topology::generate(net, a.members, pfbs, 5060, 2855));
    let mut variant = Variant::new(a.figure);
    variant.transport = a.transport;
    let case = Case {
        id: "load".into(),
        figure: a.figure,
        variant: variant.clone(),
        sut: sut.clone(),
        ordering: "in-order".into(),
        holds: Default::default(),
    };
    let scratch = crate::bench::ScratchDir::new("load")?;
    let topology_path = scratch.path().join("topology.yaml");
    std::fs::write(&topology_path, topology.to_yaml())
        .with_context(|| format!("writing {}", topology_path.display()))?;
    let out_dir = scratch.path().join("out");
    std::fs::create_dir_all(&out_dir)?;
    let exe = crate::engine::runner::current_exe();
    let vars = RunVars {
        exe: &exe,
        topology_path: &topology_path,
        out_dir: &out_dir,
        size: a.size as u64,
        faults: &a.faults,
    };
    let argv = profile
        .launch_argv(&case, &vars, &topology)
        .map_err(|e| anyhow!("{}: {e}", profile.origin))?
        .ok_or_else(|| anyhow!("{}: no launch command", profile.origin))?;
    let ready =
        match &launch.ready {
            Ready::StdoutLine(p) => Readiness::StdoutLine(p.clone()),
            Ready::Port(t) => {
                let addr = expand_line(t, &case_vars(&case, &vars), &topology)
                    .map_err(|e| anyhow!("{}: ready port: {e}", profile.origin))?;
                Readiness::Port(addr.parse().map_err(|_| {
                    anyhow!("{}: ready port {addr:?} is not host:port", profile.origin)
                })?)
            }
        };
    let mut sut_proc = SutProcess::launch(&argv, &ready, launch.ready_timeout).await?;
    let result = drive(a, &profile, &sut, topology, variant, progress).await;
    sut_proc.stop(Duration::from_secs(2)).await;
    let result = result?;
    if let Some(path) = &a.out {
        crate::files::write_atomic(path, serde_json::to_string_pretty(&result)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(result)
}

async fn drive(
    a: &LoadArgs,
    profile: &Profile,
    sut: &[Role],
    topology: Arc<Topology>,
    variant: Variant,
    progress: bool,
) -> anyhow::Result<LoadResult> {
    let opts = |recorder| ChainOptions {
        recorder,
        ..ChainOptions::for_load(topology.clone(), variant.clone())
    };
    let start = clock::now();
    let (tap_tx, tap_rx) = std::sync::mpsc::channel();
    let (tx, mut rx) = mpsc::unbounded_channel();
    watch_sip(tap_rx, topology.client_a.sip, start, tx.clone());
    let mut sender = Chain::start_instances(
        opts(Some(Recorder::tap_only(start, tap_tx))),
        &["client-a".to_string()],
    )
    .await?;
    let others: Vec<String> = topology
        .instances()
        .into_iter()
        .filter(|i| i.role != Role::ClientA && !sut.contains(&i.role))
        .map(|i| i.name)
        .collect();
    let mut rest = Chain::start_instances(opts(None), &others).await?;
    pump(&mut sender, &tx);
    pump(&mut rest, &tx);
    drop(tx);
    let client_a = sender.nodes[0].inputs.clone();
    let members = topology.members.len();

    let bar = progress_bar(progress);
    let filler = pattern(64 * 1024);
    let mut sessions: Vec<Session> = Vec::new();
    let mut by_call: HashMap<String, usize> = HashMap::new();
    // Invites seen before their session is known (never, in order) and heads in pieces.
    let mut heads: HashMap<(String, u64), Vec<u8>> = HashMap::new();
    let mut member_session: HashMap<(String, u64), usize> = HashMap::new();
    let mut early: HashMap<(String, u64), Vec<Note>> = HashMap::new();
    let mut invites = 0usize;
    let mut skipped = 0u64;
    let mut in_flight = 0usize;
    let mut resolved = 0usize;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut setup_h = Histogram::<u64>::new(3)?;
    let mut delivery_h = Histogram::<u64>::new(3)?;
    let mut succeeded = 0u64;
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut due = 0u64;
    let total_due = (a.rate * a.duration).round().max(1.0) as u64;
    let mut redraw = tokio::time::interval(Duration::from_millis(200));
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut done: Vec<bool> = Vec::new();
    let mut ended_at: std::collections::VecDeque<(Instant, usize)> = Default::default();

    // Judges a session once its outcome is known; returns true when it was judged now.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        s: &Session,
        members: usize,
        size: usize,
        final_now: bool,
        failures: &mut BTreeMap<String, u64>,
        succeeded: &mut u64,
        setup_h: &mut Histogram<u64>,
        delivery_h: &mut Histogram<u64>,
    ) -> bool {
        let all = s.delivered.len() == members;
        // client-a's answer is read from its wire tap, apart from the nodes' events.
        if !final_now && s.final_code.is_none() && s.ended != Some(false) {
            return false;
        }
        let reason = match (s.final_code, s.ended) {
            (Some(c), _) if !(200..300).contains(&c) => Some(format!("INVITE answered {c}")),
            (_, Some(false)) => Some("session failed at client-a (see the SUT's log)".into()),
            (_, Some(true)) if s.short > 0 => Some("content incomplete at a member".into()),
            // Deliveries travel apart from client-a's end: wait a little for them.
            (_, Some(true)) if !all && !final_now => return false,
            (_, Some(true)) if !all => Some(format!(
                "not delivered to every member ({} of {members})",
                s.delivered.len()
            )),
            (_, Some(true)) => None,
            (None, None) if final_now => Some("no answer to the INVITE".into()),
            (_, None) if final_now => Some(format!(
                "no teardown in time (delivered to {} of {members})",
                s.delivered.len()
            )),
            _ => return false,
        };
        if let Some(d) = s.setup.filter(|_| s.final_code == Some(200)) {
            let _ = setup_h.record(d.as_micros().max(1) as u64);
        }
        match reason {
            Some(r) => *failures.entry(r).or_default() += 1,
            None => {
                *succeeded += 1;
                if let Some(t) = s.last_delivery {
                    let _ = delivery_h.record((t - s.started).as_micros().max(1) as u64);
                }
            }
        }
        let _ = size;
        true
    }

    loop {
        if drain_deadline.is_some() && resolved == sessions.len() {
            break;
        }
        tokio::select! {
            _ = ticker.tick(), if drain_deadline.is_none() => {
                // The schedule is `total_due` starts, one per tick (late ticks catch up).
                if due >= total_due {
                    drain_deadline = Some(clock::tokio_now() + Duration::from_secs_f64(a.drain));
                    continue;
                }
                due += 1;
                if a.shard.is_some_and(|p| !p.holds(due as usize - 1)) {
                    continue;
                }
                if in_flight >= a.concurrency {
                    skipped += 1;
                    continue;
                }
                let n = sessions.len() as u64;
                let content = content_for(n, a.size, &filler);
                client_a.send(Input::Send { content }).map_err(|_| anyhow!("client-a stopped"))?;
                sessions.push(Session {
                    started: clock::now(),
                    call_id: None,
                    setup: None,
                    final_code: None,
                    ended: None,
                    delivered: HashSet::new(),
                    short: 0,
                    last_delivery: None,
                });
                done.push(false);
                in_flight += 1;
            }
            _ = async {
                match drain_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                for (i, s) in sessions.iter().enumerate() {
                    if !done[i] {
                        judge(s, members, a.size, true, &mut failures, &mut succeeded, &mut setup_h, &mut delivery_h);
                    }
                }
                break;
            }
            _ = redraw.tick() => {
                // Sessions that ended at client-a a while ago without every delivery.
                while let Some(&(t, i)) = ended_at.front() {
                    if clock::since(t) < DELIVERY_GRACE {
                        break;
                    }
                    ended_at.pop_front();
                    if !done[i] && judge(&sessions[i], members, a.size, true, &mut failures, &mut succeeded, &mut setup_h, &mut delivery_h) {
                        done[i] = true;
                        resolved += 1;
                        in_flight = in_flight.saturating_sub(1);
                    }
                }
                if let Some(b) = &bar {
                    b.set_message(format!(
                        "{:>5.1} s  started {}  ok {}  failed {}  in flight {}",
                        clock::since(start).as_secs_f64(), sessions.len(), succeeded,
                        failures.values().sum::<u64>(), in_flight
                    ));
                }
            }
            note = rx.recv() => {
                let Some(note) = note else { bail!("the harness's nodes stopped") };
                let touched = match note {
                    Note::Invite { call_id, at } => {
                        let i = invites;
                        invites += 1;
                        match sessions.get_mut(i) {
                            Some(s) => {
                                s.call_id = Some(call_id.clone());
                                s.setup = Some(at.saturating_duration_since(s.started));
                                by_call.insert(call_id, i);
                                None
                            }
                            None => None,
                        }
                    }
                    Note::Answer { call_id, code, at } => by_call.get(&call_id).copied().inspect(|&i| {
                        let s = &mut sessions[i];
                        if s.final_code.is_none() {
                            s.final_code = Some(code);
                            // Setup latency: the INVITE leaving client-a to its answer.
                            let invite_at = s.started + s.setup.unwrap_or_default();
                            s.setup = Some(at.saturating_duration_since(invite_at));
                        }
                    }),
                    Note::Ended { session, ok } => {
                        let i = session.saturating_sub(1) as usize;
                        sessions.get_mut(i).map(|s| {
                            s.ended = Some(ok);
                            ended_at.push_back((clock::now(), i));
                            i
                        })
                    }
                    Note::Data { member, session, offset, data } => {
                        let key = (member, session);
                        if member_session.contains_key(&key) {
                            None
                        } else {
                            let h = heads.entry(key.clone()).or_default();
                            if h.len() as u64 == offset {
                                h.extend_from_slice(&data[..data.len().min(TAG - h.len().min(TAG))]);
                            }
                            match parse_tag(h) {
                                Some(n) if (n as usize) < sessions.len() => {
                                    heads.remove(&key);
                                    member_session.insert(key.clone(), n as usize);
                                    // A delivery that came before its tag was complete.
                                    for e in early.remove(&key).unwrap_or_default() {
                                        if let Note::Delivered { member, bytes, .. } = e {
                                            let s = &mut sessions[n as usize];
                                            s.delivered.insert(member);
                                            if bytes != a.size as u64 { s.short += 1; }
                                            s.last_delivery = Some(clock::now());
                                        }
                                    }
                                    Some(n as usize)
                                }
                                _ => None,
                            }
                        }
                    }
                    Note::Delivered { member, session, bytes } => {
                        let key = (member.clone(), session);
                        match member_session.get(&key).copied() {
                            Some(i) => {
                                let s = &mut sessions[i];
                                s.delivered.insert(member);
                                if bytes != a.size as u64 { s.short += 1; }
                                s.last_delivery = Some(clock::now());
                                Some(i)
                            }
                            None => {
                                early.entry(key).or_default().push(Note::Delivered { member, session, bytes });
                                None
                            }
                        }
                    }
                };
                if let Some(i) = touched {
                    if !done[i] && judge(&sessions[i], members, a.size, false, &mut failures, &mut succeeded, &mut setup_h, &mut delivery_h) {
                        done[i] = true;
                        resolved += 1;
                        in_flight = in_flight.saturating_sub(1);
                    }
                }
            }
        }
    }
    let elapsed = clock::since(start).as_secs_f64();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    sender.stop().await?;
    rest.stop().await?;
    let attempted = sessions.len() as u64;
    Ok(LoadResult {
        profile: profile.name.clone(),
        sut_roles: sut.iter().map(|r| r.as_str().to_string()).collect(),
        members,
        size: a.size,
        target_rate: a.rate,
        duration_s: a.duration,
        concurrency: a.concurrency,
        attempted,
        succeeded,
        failed: failures.values().sum(),
        failures,
        skipped_at_limit: skipped,
        achieved_rate: attempted as f64 / a.duration,
        setup_latency_ms: Latency::of(&setup_h),
        delivery_latency_ms: Latency::of(&delivery_h),
        elapsed_s: elapsed,
        shard: a.shard.map(|p| p.to_string()),
        workers: 1,
        setup_histogram: encode_histogram(&setup_h)?,
        delivery_histogram: encode_histogram(&delivery_h)?,
    })
}

/// A one-line live progress display on stderr (indicatif hides it when stderr is not a
/// terminal).
fn progress_bar(on: bool) -> Option<indicatif::ProgressBar> {
    if !on {
        return None;
    }
    let b = indicatif::ProgressBar::with_draw_target(
        None,
        indicatif::ProgressDrawTarget::stderr_with_hz(5),
    );
    b.set_style(indicatif::ProgressStyle::with_template("{spinner} load {msg}").ok()?);
    Some(b)
}

/// Prints the result for a person.
pub fn render(r: &LoadResult) -> String {
    let mut s = String::new();
    let l = |x: &Latency| {
        format!(
            "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1} ms ({})",
            x.p50,
            x.p90,
            x.p99,
            x.max,
            crate::text::plural(x.count as usize, "session")
        )
    };
    let who = match (&r.shard, r.workers) {
        (Some(p), _) => format!(", worker {p}"),
        (None, w) if w > 1 => format!(", {w} workers merged"),
        _ => String::new(),
    };
    s.push_str(&format!(
        "load: {} of {} B to {}, SUT {} ({}){who}\n",
        crate::text::plural(r.attempted as usize, "session"),
        r.size,
        crate::text::plural(r.members, "member"),
        r.sut_roles.join("+"),
        r.profile
    ));
    s.push_str(&format!(
        "attempted {}  succeeded {}  failed {}  skipped at the concurrency limit {}\n",
        r.attempted, r.succeeded, r.failed, r.skipped_at_limit
    ));
    for (reason, n) in &r.failures {
        s.push_str(&format!("  failed {n:>6}  {reason}\n"));
    }
    s.push_str(&format!(
        "rate: target {:.1}/s, achieved {:.1}/s\n",
        r.target_rate, r.achieved_rate
    ));
    s.push_str(&format!("setup latency    {}\n", l(&r.setup_latency_ms)));
    s.push_str(&format!("delivery latency {}\n", l(&r.delivery_latency_ms)));
    s
}

/// `cpm-harness load`: exit 0 when every attempted session succeeded, 1 otherwise.
pub async fn main(a: LoadArgs) -> anyhow::Result<u8> {
    crate::bench::raise_nofile();
    let r = run(&a, true).await?;
    print!("{}", render(&r));
    Ok(if r.failed == 0 && r.attempted > 0 {
        0
    } else {
        1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(shard: &str, samples: &[u64], failed: u64) -> LoadResult {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for &v in samples {
            h.record(v).unwrap();
        }
        let mut failures = BTreeMap::new();
        if failed > 0 {
            failures.insert("no answer to the INVITE".to_string(), failed);
        }
        LoadResult {
            profile: "reference".into(),
            sut_roles: vec!["x".into()],
            members: 3,
            size: 1000,
            target_rate: 6.0,
            duration_s: 2.0,
            concurrency: 10,
            attempted: samples.len() as u64 + failed,
            succeeded: samples.len() as u64,
            failed,
            failures,
            skipped_at_limit: 0,
            achieved_rate: 2.0,
            setup_latency_ms: Latency::of(&h),
            delivery_latency_ms: Latency::of(&h),
            elapsed_s: 3.0,
            shard: Some(shard.into()),
            workers: 1,
            setup_histogram: encode_histogram(&h).unwrap(),
            delivery_histogram: encode_histogram(&h).unwrap(),
        }
    }

    #[test]
    fn merged_percentiles_are_those_of_all_samples_together() {
        // Samples in microseconds, spread over several orders of magnitude.
        let all: Vec<u64> = (1..=3000u64).map(|i| i * i % 977_731 + 50).collect();
        let parts: Vec<&[u64]> = vec![&all[..1000], &all[1000..1700], &all[1700..]];
        let results: Vec<LoadResult> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| result(&format!("{}/3", i + 1), p, i as u64))
            .collect();
        // Through JSON, as the workers' files carry them.
        let results: Vec<LoadResult> = results
            .iter()
            .map(|r| serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap())
            .collect();
        let m = merge(&results).unwrap();
        let mut whole = Histogram::<u64>::new(3).unwrap();
        for &v in &all {
            whole.record(v).unwrap();
        }
        assert_eq!(m.delivery_latency_ms, Latency::of(&whole));
        assert_eq!(m.setup_latency_ms, Latency::of(&whole));
        assert_eq!(decode_histogram(&m.delivery_histogram).unwrap(), whole);
        assert_eq!(m.succeeded, 3000);
        assert_eq!(m.failed, 3);
        assert_eq!(m.attempted, 3003);
        assert_eq!(m.failures["no answer to the INVITE"], 3);
        assert_eq!(m.workers, 3);
        assert_eq!(m.shard, None);
        assert_eq!(m.achieved_rate, 6.0);

        let err = |rs: &[LoadResult]| merge(rs).unwrap_err().to_string();
        assert!(
            err(&results[..2]).contains("3/3 missing"),
            "{}",
            err(&results[..2])
        );
        let twice = [results[0].clone(), results[0].clone(), results[2].clone()];
        assert!(err(&twice).contains("given twice"));
        let mut other = results.clone();
        other[1].size = 5;
        assert!(err(&other).contains("another run"));
    }
}
