//! The `cpm-harness` command line: `sut` (the reference SUT), `run` (the default run),
//! `bench` (benchmarks).

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use cpm_harness::chain::{pattern, sessions_per_instance, Chain, ChainOptions};
use cpm_harness::codec::sip::Transport;
use cpm_harness::config::{
    AckTiming, Figure, GroupKind, MiddleOpener, SetupMode, Trigger, Variant,
};
use cpm_harness::entity::{Fault, SipTimers};
use cpm_harness::topology::{Role, Topology};
use cpm_harness::{bench, run};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Prints a line to stdout, ignoring a closed pipe (a launcher may stop reading).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, $($t)*);
        let _ = o.flush();
    }};
}

#[derive(Parser)]
#[command(
    name = "cpm-harness",
    version,
    about = "Conformance harness for OMA CPM large-message group delivery over hop-by-hop MSRP"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the reference SUT: any subset of the five roles at the topology's addresses.
    Sut(Box<SutArgs>),
    /// The default run: every figure × SIP transport through the reference chain, with
    /// a summary and event logs under reports/<run>/.
    Run(RunArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Four-hop streaming relay of one message to one member vs raw loopback TCP.
    Relay {
        /// Message size in MiB.
        #[arg(long, default_value_t = 256)]
        mib: u64,
        /// MSRP chunk size in bytes.
        #[arg(long, default_value_t = 65536)]
        chunk_size: u64,
    },
}

#[derive(Args, Clone)]
struct VariantArgs {
    /// Figure 1–7 of the patent.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=7))]
    figure: u8,
    /// Trigger of the participating functions' links: on-200, on-ack, on-send.
    #[arg(long, default_value = "on-ack", value_parser = parse_trigger)]
    trigger: Trigger,
    /// Trigger of x's links (defaults to --trigger).
    #[arg(long, value_parser = parse_trigger)]
    x_trigger: Option<Trigger>,
    /// Solution 3: who opens L2/L3.
    #[arg(long, default_value = "pf", value_parser = ["pf", "x"])]
    l23: String,
    /// Middle entities' downstream ACK: on-200 or after-ack (default: the figure's).
    #[arg(long, value_parser = ["on-200", "after-ack"])]
    ack: Option<String>,
    /// Reuse an existing connection with matching host/port/scheme.
    #[arg(long)]
    reuse: bool,
    #[arg(long, default_value = "sdp", value_parser = ["sdp", "preset"])]
    setup: String,
    #[arg(long, default_value = "udp", value_parser = ["udp", "tcp"])]
    transport: String,
    #[arg(long, default_value = "predefined", value_parser = ["predefined", "adhoc"])]
    group: String,
    /// MSRP chunk size in bytes.
    #[arg(long, default_value_t = 2048)]
    chunk_size: u64,
}

fn parse_trigger(s: &str) -> Result<Trigger, String> {
    Trigger::parse(s)
        .ok_or_else(|| format!("unknown trigger {s:?}; expected on-200, on-ack or on-send"))
}

impl VariantArgs {
    fn variant(&self) -> anyhow::Result<Variant> {
        let v = Variant {
            figure: Figure::try_from(self.figure).map_err(|e| anyhow!(e))?,
            trigger: self.trigger,
            x_trigger: self.x_trigger,
            l23_opener: if self.l23 == "x" {
                MiddleOpener::X
            } else {
                MiddleOpener::Pf
            },
            ack: self.ack.as_deref().map(|a| {
                if a == "on-200" {
                    AckTiming::On200
                } else {
                    AckTiming::AfterUpstreamAck
                }
            }),
            reuse: self.reuse,
            setup: if self.setup == "preset" {
                SetupMode::Preset
            } else {
                SetupMode::Sdp
            },
            group: if self.group == "adhoc" {
                GroupKind::Adhoc
            } else {
                GroupKind::Predefined
            },
            transport: if self.transport == "tcp" {
                Transport::Tcp
            } else {
                Transport::Udp
            },
            chunk_size: self.chunk_size,
        };
        v.validate().map_err(|e| anyhow!(e))?;
        Ok(v)
    }
}

#[derive(Args)]
struct SutArgs {
    /// Topology YAML (default: suites/topology.yaml, 3 members on 2 pf-b).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Comma-separated roles to play: client-a, pf-a, x, pf-b, client-b.
    #[arg(long, default_value = "client-a,pf-a,x,pf-b,client-b")]
    roles: String,
    #[command(flatten)]
    variant: VariantArgs,
    /// client-a: send a generated message of this many bytes.
    #[arg(long, conflicts_with = "send_file")]
    send_bytes: Option<usize>,
    /// client-a: send this file's content.
    #[arg(long)]
    send_file: Option<PathBuf>,
    /// client-b: write each member's received content to DIR/<member>.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Exit after this many group messages were handled (default: 1 when sending, else run
    /// until SIGTERM/SIGINT or end of stdin commands).
    #[arg(long)]
    messages: Option<usize>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Deviate deliberately (repeatable); `--fault list` prints the known faults.
    #[arg(long = "fault", value_parser = parse_fault)]
    faults: Vec<FaultArg>,
}

#[derive(Clone)]
enum FaultArg {
    List,
    Fault(Fault),
}

fn parse_fault(s: &str) -> Result<FaultArg, String> {
    if s == "list" {
        return Ok(FaultArg::List);
    }
    Fault::parse(s).map(FaultArg::Fault)
}

#[derive(Args)]
struct RunArgs {
    /// Output folder for reports (a run folder is created inside).
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100_000)]
    size: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let r = rt.block_on(async {
        match cli.cmd {
            Cmd::Sut(a) => sut(*a).await,
            Cmd::Run(a) => run::default_run(&a.out, a.size).await,
            Cmd::Bench {
                what: BenchCmd::Relay { mib, chunk_size },
            } => bench::relay(mib << 20, chunk_size).await.map(|_| 0),
        }
    });
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn sut(a: SutArgs) -> anyhow::Result<u8> {
    if a.faults.iter().any(|f| matches!(f, FaultArg::List)) {
        for f in Fault::ALL {
            out!("{:<24} {:<15} {}", f.name(), f.target_check(), f.describe());
        }
        return Ok(0);
    }
    let faults: Vec<Fault> = a
        .faults
        .iter()
        .filter_map(|f| match f {
            FaultArg::Fault(f) => Some(*f),
            FaultArg::List => None,
        })
        .collect();
    let topo_path = a
        .topology
        .clone()
        .unwrap_or_else(|| PathBuf::from("suites/topology.yaml"));
    let topology = if a.topology.is_none() && !topo_path.exists() {
        Topology::default_chain()
    } else {
        Topology::load(&topo_path)?
    };
    let roles = Role::parse_list(&a.roles).map_err(|e| anyhow!("--roles: {e}"))?;
    let variant = a.variant.variant()?;
    let content = match (&a.send_bytes, &a.send_file) {
        (Some(n), _) => Some(pattern(*n)),
        (_, Some(p)) => Some(bytes::Bytes::from(
            std::fs::read(p).with_context(|| format!("--send-file {}", p.display()))?,
        )),
        _ => None,
    };
    if content.is_some() && !roles.contains(&Role::ClientA) {
        bail!("--send-bytes/--send-file need client-a in --roles");
    }
    if let Some(dir) = &a.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("--out-dir {}", dir.display()))?;
    }
    let topology = Arc::new(topology);
    let mut chain = Chain::start(ChainOptions {
        topology: topology.clone(),
        variant,
        roles: roles.clone(),
        timers: SipTimers::default(),
        recorder: None,
        out_dir: a.out_dir.clone(),
        digest: true,
        holds: Default::default(),
        faults: faults.clone(),
    })
    .await?;
    // Readiness line for launchers (the profile's "stdout line" readiness).
    out!("ready roles={} topology={}", a.roles, topo_path.display());
    let messages = a.messages.or(content.as_ref().map(|_| 1));
    if let Some(c) = content {
        chain.send(c)?;
    }
    let Some(messages) = messages else {
        // Serve until told to stop; stdin lines `send N` make client-a send.
        let stop = wait_for_signal_or_stdin(&chain);
        stop.await;
        let active = chain.nodes.len();
        chain.stop().await?;
        eprintln!("stopped ({active} instances)");
        return Ok(0);
    };
    let topo = topology.clone();
    let (outcome, r) = chain
        .wait(
            move |n| sessions_per_instance(&topo, n) * messages,
            Duration::from_secs(a.timeout),
        )
        .await;
    chain.stop().await?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    for (m, rcv) in &outcome.received {
        out!(
            "delivered member={m} bytes={} sha256={} complete={}",
            rcv.bytes,
            rcv.sha256,
            rcv.complete
        );
    }
    r?;
    if !outcome.ended_bad.is_empty() {
        bail!("sessions failed at: {:?}", outcome.ended_bad);
    }
    out!("teardown clean");
    Ok(0)
}

async fn wait_for_signal_or_stdin(chain: &Chain) {
    use tokio::io::AsyncBufReadExt;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => return,
            l = lines.next_line(), if stdin_open => match l {
                Ok(Some(line)) => {
                    let mut it = line.split_whitespace();
                    match (it.next(), it.next().map(str::parse::<usize>)) {
                        (Some("send"), Some(Ok(n))) => {
                            if let Err(e) = chain.send(pattern(n)) {
                                eprintln!("stdin: {e}");
                            }
                        }
                        (None, _) => {}
                        _ => eprintln!("stdin: expected `send N`, got {line:?}"),
                    }
                }
                _ => stdin_open = false,
            },
        }
    }
}
