//! The `cpm-harness` command line: `sut` (the reference SUT), `run` (the default run),
//! `bench` (benchmarks).

/// mimalloc rather than glibc malloc: the relay's threads contended on glibc's arena locks
/// (what it gains and costs: README, "The bench table", rows (c) and (e)).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "mimalloc")]
extern "C" {
    /// mimalloc's option setter (`mimalloc.h`); the option is an `enum mi_option_e` value.
    fn mi_option_set(option: std::os::raw::c_int, value: std::os::raw::c_long);
    /// The vendored mimalloc's version, `major·10000 + minor·100 + patch`.
    #[cfg(test)]
    fn mi_version() -> std::os::raw::c_int;
}

/// `mi_option_purge_delay` in the vendored mimalloc (v3, which `libmimalloc-sys` builds unless
/// its `v2` feature is on); the enum has no Rust binding, and an index of another version
/// silently sets another option (a test checks the version).
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: std::os::raw::c_int = 15;

/// `lean`: freed pages go back to the system after 1 ms instead of 10 (`mi_option_purge_delay`),
/// which keeps the relay's peak RSS low (bench rows (b), (e)); the processes whose memory is
/// not measured keep the default (the main job's report writer otherwise spends its time
/// giving pages back and faulting them in again). No transparent huge pages (mimalloc built
/// with `no_thp`, and the process flag, which the SUT processes a run launches inherit): a
/// short-lived process that touches a few KiB of a fresh 2 MiB page has the kernel zero all of
/// it, which was a fifth of the default run's CPU time.
fn tune_allocator(lean: bool) {
    #[cfg(feature = "mimalloc")]
    if lean {
        // SAFETY: setting an option is allowed at any time; the index is the vendored
        // header's (see MI_OPTION_PURGE_DELAY).
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 1) };
    }
    #[cfg(not(feature = "mimalloc"))]
    let _ = lean;
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches no memory of ours.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(all(test, feature = "mimalloc"))]
mod allocator_tests {
    /// The option index above is the v3 header's (`mimalloc.h`, `mi_option_e`): another major
    /// version numbers the options otherwise (the previous code set v2's `allow_thp`, 37,
    /// which in v3 is `page_max_candidates`). Re-check the index when this fails.
    #[test]
    fn the_mimalloc_option_index_is_the_vendored_versions() {
        // SAFETY: mi_version takes nothing and returns an int.
        let v = unsafe { super::mi_version() };
        assert!(
            (30000..40000).contains(&v),
            "mimalloc {v}: check MI_OPTION_PURGE_DELAY against its mimalloc.h"
        );
    }
}

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use cpm_harness::bench;
use cpm_harness::chain::{pattern, sessions_per_instance, Chain, ChainOptions};
use cpm_harness::codec::sip::Transport;
use cpm_harness::config::{
    AckTiming, Figure, GroupKind, MiddleOpener, MsrpTransport, SetupMode, Trigger, Variant,
};
use cpm_harness::engine::case::RunSettings;
use cpm_harness::engine::plan::{plan_with, Plan};
use cpm_harness::engine::profile::Profile;
use cpm_harness::engine::runner;
use cpm_harness::engine::shard::{self, Partition, Selection};
use cpm_harness::entity::{Fault, SipTimers};
use cpm_harness::kamailio::{CoreKind, CoreProxy};
use cpm_harness::report::console::{ColorChoice, Verbosity};
use cpm_harness::report::{self, EXIT_HARNESS, EXIT_USAGE};
use cpm_harness::topology::{Role, Topology};
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
    version = cpm_harness::report::pctr::VERSION_LINE,
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
    /// Run the suite against the SUT of a profile (default: every case of suites/default.yaml
    /// against the built-in reference SUT), writing reports/<run>/ (index.html is the
    /// conformance test report). The profile's launch command runs without a shell.
    Run(RunArgs),
    /// Print the ids of the cases a run would execute, one per line (`--skipped`: the cases
    /// the profile skips, with the reason; `--json`: both as JSON).
    List(ListArgs),
    /// Prove the checks: run each reference-SUT fault where it applies (`--mutants`).
    Selftest(SelftestArgs),
    /// Print the check catalogue: each check's id, reference and the faults that prove it
    /// (`--markdown`: the contents of docs/checks.md).
    Checks(ChecksArgs),
    /// Judge a capture offline: map its addresses to the chain's entities (given with --map or
    /// inferred from the SIP signalling) and run the same checks as a live case.
    Analyze(Box<AnalyzeArgs>),
    /// Draw a capture as a ladder diagram, normalized so that runs of one case draw alike.
    Show(ShowArgs),
    /// Compare two captures message by message after normalization; exit 1 when they differ.
    Diff(DiffArgs),
    /// Join the summary.json of CI shards (`run --partition k/n`) and write every report
    /// (summary.json, junit.xml, index.html) as if one run had executed all their cases.
    Merge(MergeArgs),
    /// Benchmarks: the bench table (every row), or `bench relay` alone.
    Bench(bench::BenchArgs),
    /// Load a SUT: concurrent group sessions at a target rate for a duration; reports
    /// attempted/succeeded/failed (by reason), setup and delivery latency percentiles.
    Load(Box<cpm_harness::load::LoadArgs>),
    /// Merge the results of `load --shard k/n` workers into one (counts summed, latency
    /// histograms added: exact percentiles over all sessions).
    LoadMerge(cpm_harness::load::MergeArgs),
    /// Write a commented profile template for your SUT (PICS lists, launch or addresses,
    /// trigger) to PATH; fill in its <SUT-…> placeholders, then `run --profile PATH`. The
    /// launch command runs without a shell; to use one, name it: sh -c '…'.
    #[command(alias = "profile-new")]
    Init(InitArgs),
    /// The suites and the reference profile built into this binary (used when suites/ and
    /// profiles/ are not in the current folder): `suites write DIR` writes them out.
    Suites {
        #[command(subcommand)]
        cmd: SuitesCmd,
    },
}

#[derive(Args)]
struct InitArgs {
    /// Where to write the profile (e.g. my-sut.yaml).
    path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum SuitesCmd {
    /// Write DIR/suites/{default,fig1…fig7,topology}.yaml and DIR/profiles/reference.yaml
    /// (then `run --suite DIR/suites/default.yaml`, or run from DIR, to use edited copies).
    Write {
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Clone)]
struct ChecksArgs {
    /// Print the catalogue as Markdown (what docs/checks.md holds).
    #[arg(long)]
    markdown: bool,
}

#[derive(Args, Clone)]
struct VariantArgs {
    /// Figure 1–7 of the patent (required, except by `sut --variant per-call`).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=7))]
    figure: Option<u8>,
    /// Trigger of the participating functions' links.
    #[arg(long, value_enum, default_value_t = Trigger::OnAck)]
    trigger: Trigger,
    /// Trigger of x's links (defaults to --trigger).
    #[arg(long, value_enum)]
    x_trigger: Option<Trigger>,
    /// Solution 3: who opens L2/L3.
    #[arg(long, value_enum, default_value_t = MiddleOpener::Pf)]
    l23: MiddleOpener,
    /// Middle entities' downstream ACK (default: the figure's).
    #[arg(long, value_enum)]
    ack: Option<AckTiming>,
    /// Reuse an existing connection with matching host/port/scheme.
    #[arg(long)]
    reuse: bool,
    /// Who decides the link opener: RFC 6135 a=setup in SDP, or configuration.
    #[arg(long, value_enum, default_value_t = SetupMode::Sdp)]
    setup: SetupMode,
    /// SIP transport.
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    transport: Transport,
    /// The group: the Request-URI is the group URI, or a conference factory with a list.
    #[arg(long, value_enum, default_value_t = GroupKind::Predefined)]
    group: GroupKind,
    /// MSRP chunk size in bytes.
    #[arg(long, default_value_t = 2048)]
    chunk_size: u64,
    /// MSRP over TCP (msrp:, TCP/MSRP) or over TLS (msrps:, TCP/TLS/MSRP).
    #[arg(long, value_enum, default_value_t = MsrpTransport::Tcp)]
    msrp_transport: MsrpTransport,
}

impl VariantArgs {
    fn variant(&self) -> anyhow::Result<Variant> {
        self.variant_with(None)
    }

    /// The variant, with `figure` when `--figure` is not given.
    fn variant_with(&self, figure: Option<u8>) -> anyhow::Result<Variant> {
        let figure = self
            .figure
            .or(figure)
            .ok_or_else(|| anyhow!("--figure is required"))?;
        let v = Variant {
            figure: Figure::try_from(figure).map_err(|e| anyhow!(e))?,
            trigger: self.trigger,
            x_trigger: self.x_trigger,
            l23_opener: self.l23,
            ack: self.ack,
            reuse: self.reuse,
            setup: self.setup,
            group: self.group,
            transport: self.transport,
            chunk_size: self.chunk_size,
            // The topology (given or generated) decides the addresses; the family only names
            // the case the way the harness's ids do.
            ip: Default::default(),
            msrp_transport: self.msrp_transport,
            rules: None,
        };
        v.validate().map_err(|e| anyhow!(e))?;
        Ok(v)
    }
}

#[derive(Args)]
struct SutArgs {
    /// Topology YAML (default: suites/topology.yaml if it exists here, else the built-in
    /// one: 3 members on 2 pf-b).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Comma-separated roles to play: client-a, pf-a, x, pf-b, client-b.
    #[arg(long, default_value = "client-a,pf-a,x,pf-b,client-b")]
    roles: String,
    #[command(flatten)]
    variant: VariantArgs,
    /// `per-call`: every call runs the variant its INVITE names in the `X-Cpm-Variant`
    /// test-control header (copied downstream), and client-a the one on its stdin line
    /// (`send N VARIANT`): one reference SUT for a whole run of cases that vary figure and
    /// knobs (profiles/reference-running.yaml). The variant flags then only apply to calls
    /// without the header (`--figure` defaults to 1).
    #[arg(long = "variant", id = "per_call", value_parser = ["per-call"])]
    per_call: Option<String>,
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
    /// Timer B (RFC 3261 §17.1.1.2): how long an INVITE waits for a final response before
    /// the entity gives up on it (default 64·T1 = 32 s); a B2BUA then answers its upstream
    /// INVITE with 408.
    #[arg(long, value_name = "MS")]
    invite_timeout_ms: Option<u64>,
    /// When pf-a, x and pf-b send the success REPORT their upstream asked for (RFC 4975
    /// §7.1.2): `after-delivery` (once every downstream hop they relayed the message to
    /// reported it) or `on-receipt` (as soon as the whole message arrived); a profile declares
    /// the same as its `report-timing`.
    #[arg(long, default_value = "after-delivery", value_parser = parse_report_timing)]
    report_timing: cpm_harness::config::ReportTiming,
    /// Deviate deliberately (repeatable); `--fault list` prints the known faults.
    #[arg(long = "fault", value_parser = parse_fault)]
    faults: Vec<FaultArg>,
    /// A receive limit, NAME=VALUE (repeatable; see `run --help`).
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    limits: Vec<String>,
    /// TLS material: DIR/ca.pem and DIR/ca.key, the CA that mints every entity's certificate
    /// and that peers are verified against (the harness writes it per run; without it the
    /// SUT makes its own CA, which the harness does not trust).
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<PathBuf>,
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

#[derive(Args, Clone)]
struct PlanArgs {
    /// The run matrix; the fig*.yaml beside it are the figure suites [default:
    /// suites/default.yaml if it exists here, else the suites built into the binary].
    #[arg(long)]
    suite: Option<PathBuf>,
    /// The SUT's profile (PICS + PIXIT) [default: profiles/reference.yaml if it exists here,
    /// else the built-in reference profile]. Its launch command runs without a shell (split
    /// into words, "…" or '…' keep one word); to use a shell, name it: sh -c '…'.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Only cases whose id contains this text (repeat for OR; a text no case contains is
    /// named on stderr, and when no case is left nothing runs: exit 4).
    #[arg(long)]
    filter: Vec<String>,
    /// Only the k-th of n shards of the (filtered) plan, for CI: `--partition 2/4`.
    #[arg(long, value_name = "K/N")]
    partition: Option<Partition>,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Print the skipped cases instead, `<id>: <reason>` per line.
    #[arg(long, conflicts_with = "json")]
    skipped: bool,
    /// Print {"cases": [ids], "skipped": [{"id", "reason"}], "unmatched_filters": [texts]}.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MergeArgs {
    /// Shard reports: summary.json files, run folders, or --out folders holding run folders.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Folder for the merged reports.
    #[arg(long, default_value = "reports/merged")]
    out: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Output folder for reports (a run folder is created inside).
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Output folder for captures (a run folder is created inside).
    #[arg(long, default_value = "captures")]
    captures: PathBuf,
    /// Which cases keep their capture (`<case>.pcap.gz`, gzip-compressed once the case ends,
    /// and its `.topology.yaml`): all (the evidence a third party re-judges with `analyze`),
    /// or only the failed ones (the cases that did not pass).
    #[arg(long, value_enum, default_value_t = report::Keep::All)]
    keep: report::Keep,
    /// Message size in bytes.
    #[arg(long, default_value_t = 20_000)]
    size: usize,
    /// How long after its trigger a SUT link may open, in ms.
    #[arg(long, default_value_t = 1000)]
    trigger_window_ms: u64,
    /// Per-case timeout in seconds.
    #[arg(long, default_value_t = 20)]
    case_timeout: u64,
    /// Faults to inject into the reference SUT (for trying the checks by hand).
    #[arg(long = "fault", value_parser = |s: &str| Fault::parse(s))]
    faults: Vec<Fault>,
    /// Only the summary line.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Every evidence line of failing checks, notes, and skipped cases.
    #[arg(short, long)]
    verbose: bool,
    /// Colour the verdicts: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Stop scheduling cases after the first one that does not pass.
    #[arg(long)]
    fail_fast: bool,
    /// Cases run in parallel, each on its own loopback subnet (a case mostly waits: on its
    /// SUT process, its pauses and the quiet wire, so many fit on two cores). Default 48; a
    /// running SUT (`addresses`, or launch `per: run`) takes its cases one at a time.
    #[arg(long)]
    jobs: Option<usize>,
    /// Also judge each case's capture offline and require the live verdicts (CAPTURE check).
    #[arg(long)]
    reanalyze: bool,
    /// The SIP/IP core between every pair of entities: `none` (direct) or `kamailio` (a
    /// real record-routing proxy started for the run with interop/kamailio/kamailio.cfg).
    #[arg(long, value_enum, default_value_t = CoreKind::Direct)]
    core: CoreKind,
    /// Another Kamailio configuration (default: the built-in interop/kamailio/kamailio.cfg).
    #[arg(long)]
    core_config: Option<PathBuf>,
    /// What the SUT may make the harness buffer or hold open, NAME=VALUE (repeatable):
    /// max-sip-message (262144), max-sip-headers (128), max-msrp-head (16384),
    /// max-msrp-headers (64), max-msrp-chunk (16M), max-conns-per-peer (16); k/M/G suffixes.
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    limits: Vec<String>,
}

#[derive(Args)]
struct SelftestArgs {
    /// Run every fault of the reference SUT where it applies and print the table.
    #[arg(long)]
    mutants: bool,
    #[command(flatten)]
    plan: PlanArgs,
    /// Cases per fault.
    #[arg(long, default_value_t = 2)]
    per_fault: usize,
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Cases run in parallel.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Per-case timeout in seconds (a faulty SUT often never finishes a case).
    #[arg(long, default_value_t = 6)]
    case_timeout: u64,
    /// The SIP/IP core (`none` or `kamailio`); the faults that only show behind a core
    /// (ignore-route-set) are tried only with one.
    #[arg(long, value_enum, default_value_t = CoreKind::Direct)]
    core: CoreKind,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// The capture (pcap or pcapng), e.g. captures/<run>/<case>.pcap.
    file: PathBuf,
    #[command(flatten)]
    variant: VariantArgs,
    /// The roles the SUT played in the capture (roles joined by , or +), or `none` to judge
    /// every role.
    #[arg(long, default_value = "none")]
    sut: String,
    /// Topology YAML mapping addresses to entities (as suites/topology.yaml); default: inferred
    /// from the capture.
    #[arg(long)]
    map: Option<PathBuf>,
    /// Print the case object of summary.json instead of text.
    #[arg(long)]
    json: bool,
    /// How long after its trigger a link may open, in ms (as `run`).
    #[arg(long, default_value_t = 1000)]
    trigger_window_ms: u64,
    /// The discriminating pause of the captured case in ms (200 for `pause` orderings).
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
    /// Judge SIP and SDP only (LINK-* and MEDIA-* not observable): for captures whose
    /// non-SUT peers speak no MSRP, such as SIPp.
    #[arg(long)]
    signalling_only: bool,
    /// When the SUT's middle entities send a success REPORT (the profile's `report-timing`
    /// PICS): `after-delivery` or `on-receipt`.
    #[arg(long, default_value = "after-delivery", value_parser = parse_report_timing)]
    report_timing: cpm_harness::config::ReportTiming,
}

fn parse_report_timing(s: &str) -> Result<cpm_harness::config::ReportTiming, String> {
    use cpm_harness::config::ReportTiming;
    match s {
        "after-delivery" => Ok(ReportTiming::AfterDelivery),
        "on-receipt" => Ok(ReportTiming::OnReceipt),
        _ => Err(format!("{s:?}: after-delivery or on-receipt")),
    }
}

#[derive(Args)]
struct ShowArgs {
    /// The capture (pcap or pcapng).
    file: PathBuf,
    /// Topology YAML mapping addresses to entities; default: inferred from the capture.
    #[arg(long)]
    map: Option<PathBuf>,
}

#[derive(Args)]
struct DiffArgs {
    /// The reference capture.
    a: PathBuf,
    /// The capture compared with it.
    b: PathBuf,
    /// Topology YAML for both captures; default: inferred from each.
    #[arg(long)]
    map: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tune_allocator(matches!(
        cli.cmd,
        Cmd::Sut(_) | Cmd::Bench(_) | Cmd::Load(_)
    ));
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
            Cmd::Run(a) => run_cmd(a).await,
            Cmd::List(a) => list_cmd(a),
            Cmd::Selftest(a) => selftest_cmd(a).await,
            Cmd::Checks(a) => {
                let text = if a.markdown {
                    cpm_harness::engine::catalogue::markdown()
                } else {
                    cpm_harness::engine::catalogue::text()
                };
                out!("{}", text.trim_end());
                Ok(0)
            }
            Cmd::Analyze(a) => analyze_cmd(*a),
            Cmd::Show(a) => show_cmd(a),
            Cmd::Diff(a) => diff_cmd(a),
            Cmd::Merge(a) => merge_cmd(a),
            Cmd::Bench(a) => bench::main(a).await,
            Cmd::Load(a) => cpm_harness::load::main(*a).await,
            Cmd::LoadMerge(a) => cpm_harness::load::merge_main(a),
            Cmd::Init(a) => init_cmd(a),
            Cmd::Suites {
                cmd: SuitesCmd::Write { dir, force },
            } => suites_write_cmd(&dir, force),
        }
    });
    // A blocking stdin read may still be pending; do not wait for it (the runtime's drop would).
    rt.shutdown_background();
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            // 2: bad suite/profile/topology (like clap's usage errors); 1 otherwise (a SUT
            // session failed, or the harness could not run).
            ExitCode::from(match report::code_of(&e) {
                Some(code) => code,
                None if e.is::<ConfigError>() => EXIT_USAGE,
                None => 1,
            })
        }
    }
}

/// A bad suite, profile or topology: exit code 2, like a usage error.
#[derive(Debug)]
struct ConfigError(anyhow::Error);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A run's plan and where it came from.
struct Planned {
    plan: Plan,
    profile: Profile,
    sel: Selection,
    /// Where the suites came from, in words (a path, or built-in).
    suite_source: String,
    /// The suite files and the profile (and the topology it names) with their digests.
    inputs: Vec<cpm_harness::report::pctr::InputDigest>,
    /// The `--filter` texts no case of the plan (run or skipped) contains.
    unmatched: Vec<String>,
    /// Cases (run and skipped) the filters kept, before `--partition`.
    filtered: usize,
}

impl Planned {
    /// Why no case runs, for stderr: the filters that matched nothing, a filter that kept
    /// only skipped cases, or a partition that selected none; and where to look.
    fn why_no_case(&self, a: &PlanArgs) -> String {
        use cpm_harness::text::plural;
        let mut why = Vec::new();
        for f in &self.unmatched {
            why.push(format!("--filter {f:?} matched no case"));
        }
        let skipped = self.plan.skipped.len();
        if why.is_empty() {
            if let Some(k) = a.partition {
                if self.filtered > 0 && skipped == 0 {
                    why.push(format!(
                        "--partition {k} selects none of the {} the filters keep",
                        plural(self.filtered, "case")
                    ));
                }
            }
        }
        if skipped > 0 {
            let which = if skipped == 1 {
                "the one case selected is".to_string()
            } else {
                format!("all {skipped} cases selected are")
            };
            why.push(format!(
                "{which} skipped by the profile (`cpm-harness list --skipped` says why)"
            ));
        }
        if why.is_empty() {
            why.push("the profile and the suite leave no case to run".into());
        }
        format!(
            "no case to run: {}; `cpm-harness list` prints the case ids",
            why.join("; ")
        )
    }
}

/// The plan with `--filter` and `--partition` applied (and the selection's plan indices).
/// Suites and profile come from `--suite`/`--profile`, else the current folder's
/// `suites/default.yaml` and `profiles/reference.yaml`, else the built-in copies.
fn load_plan(a: &PlanArgs) -> anyhow::Result<Planned> {
    use cpm_harness::builtin;
    use cpm_harness::report::pctr::InputDigest;
    let cfg = |e: anyhow::Error| anyhow::Error::new(ConfigError(e));
    let suites = builtin::suites(a.suite.as_deref()).map_err(cfg)?;
    let pin = builtin::profile_input(a.profile.as_deref()).map_err(cfg)?;
    let profile = Profile::parse(&pin.text, &pin.origin, pin.base_dir()).map_err(cfg)?;
    // The run's TLS material: a fresh CA (with the profile's TLS PIXIT), handed to the SUT.
    cpm_harness::driver::tls::install(
        profile
            .tls
            .context()
            .map_err(|e| cfg(anyhow!("{}: {e:#}", pin.origin)))?,
    );
    let mut inputs: Vec<InputDigest> = suites
        .inputs
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let kind = if i == 0 { "suite" } else { "figure suite" };
            InputDigest::of(kind, &f.origin, f.text.as_bytes())
        })
        .collect();
    inputs.push(InputDigest::of("profile", &pin.origin, pin.text.as_bytes()));
    if let Some((path, _)) = &profile.addresses {
        let bytes = std::fs::read(path)
            .map_err(|e| cfg(anyhow!("{}: cannot read: {e}", path.display())))?;
        inputs.push(InputDigest::of(
            "topology",
            &path.display().to_string(),
            &bytes,
        ));
    }
    let suite_source = suites.source();
    let mut p = plan_with(suites.figures, &suites.default, &profile)
        .map_err(|e| cfg(anyhow!("{}: {e:#}", suite_source)))?;
    let unmatched = a
        .filter
        .iter()
        .filter(|f| {
            !p.cases.iter().any(|c| c.id.contains(f.as_str()))
                && !p.skipped.iter().any(|(id, _)| id.contains(f.as_str()))
        })
        .cloned()
        .collect();
    let filtered = shard::select(&p, &a.filter, None);
    let filtered = filtered.cases.len() + filtered.skipped.len();
    let sel = shard::select(&p, &a.filter, a.partition);
    p.cases = sel.cases.clone();
    p.skipped = sel
        .skipped
        .iter()
        .map(|(_, id, why)| (id.clone(), why.clone()))
        .collect();
    Ok(Planned {
        plan: p,
        profile,
        sel,
        suite_source,
        inputs,
        unmatched,
        filtered,
    })
}

fn init_cmd(a: InitArgs) -> anyhow::Result<u8> {
    cpm_harness::builtin::write_template(&a.path, a.force)
        .map_err(|e| anyhow::Error::new(ConfigError(e)))?;
    out!(
        "wrote {}: replace {} in it, then `cpm-harness list --profile {}`",
        a.path.display(),
        cpm_harness::builtin::TEMPLATE_PLACEHOLDERS.join(" and "),
        a.path.display()
    );
    Ok(0)
}

fn suites_write_cmd(dir: &std::path::Path, force: bool) -> anyhow::Result<u8> {
    let written = cpm_harness::builtin::write_all(dir, force)
        .map_err(|e| anyhow::Error::new(ConfigError(e)))?;
    for p in &written {
        out!("wrote {}", p.display());
    }
    Ok(0)
}

/// `list`: runnable ids on stdout, one per line (the skipped count and how to see them on
/// stderr); `--skipped`: `id: reason` lines; `--json`: both. Exit 4 when no case would run.
fn list_cmd(a: ListArgs) -> anyhow::Result<u8> {
    use cpm_harness::text::plural;
    let planned = load_plan(&a.plan)?;
    warn_unmatched(&planned);
    let p = &planned.plan;
    if a.json {
        let v = serde_json::json!({
            "cases": p.cases.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            "skipped": p.skipped.iter().map(|(id, why)| serde_json::json!({"id": id, "reason": why})).collect::<Vec<_>>(),
            "unmatched_filters": planned.unmatched,
        });
        out!("{}", serde_json::to_string_pretty(&v)?);
    } else if a.skipped {
        for (id, why) in &p.skipped {
            out!("{id}: {why}");
        }
    } else {
        for c in &p.cases {
            out!("{}", c.id);
        }
        if !p.skipped.is_empty() {
            eprintln!(
                "{} not listed: the profile does not declare what {} (`--skipped` lists {} with the reason)",
                plural(p.skipped.len(), "skipped case"),
                if p.skipped.len() == 1 { "it needs" } else { "they need" },
                if p.skipped.len() == 1 { "it" } else { "them" },
            );
        }
    }
    if p.cases.is_empty() {
        eprintln!("{}", planned.why_no_case(&a.plan));
        return Ok(report::EXIT_NO_CASE);
    }
    Ok(0)
}

/// Warns on stderr about each `--filter` that matched no case (when others did).
fn warn_unmatched(p: &Planned) {
    if p.plan.cases.is_empty() {
        return;
    }
    for f in &p.unmatched {
        eprintln!(
            "warning: --filter {f:?} matched no case (`cpm-harness list` prints the case ids)"
        );
    }
}

fn settings(
    out: &std::path::Path,
    size: usize,
    window_ms: u64,
    timeout_s: u64,
    faults: Vec<Fault>,
    capture_dir: Option<PathBuf>,
) -> RunSettings {
    RunSettings {
        size,
        trigger_window: Duration::from_millis(window_ms),
        case_timeout: Duration::from_secs(timeout_s),
        faults,
        capture_dir,
        ..RunSettings::new(runner::current_exe(), out.join("work"))
    }
}

async fn run_cmd(a: RunArgs) -> anyhow::Result<u8> {
    let started = cpm_harness::clock::wall();
    let planned = load_plan(&a.plan)?;
    let limits = cpm_harness::limits::Limits::from_args(&a.limits)
        .map_err(|e| anyhow::Error::new(ConfigError(anyhow!(e))))?;
    if planned.plan.cases.is_empty() {
        // Nothing to run: say why, and write nothing (no report folder, no captures).
        eprintln!("{}", planned.why_no_case(&a.plan));
        return Ok(report::EXIT_NO_CASE);
    }
    warn_unmatched(&planned);
    let Planned {
        plan: p,
        profile,
        sel,
        suite_source,
        inputs,
        ..
    } = planned;
    // A running SUT plays one split and takes one case at a time: say so before anything runs.
    if profile.runs_once() && !p.cases.is_empty() {
        let cfg = |e: String| anyhow::Error::new(ConfigError(anyhow!(e)));
        if let Some(j) = a.jobs.filter(|&j| j > 1) {
            return Err(cfg(format!(
                "{}: the SUT runs once at fixed addresses, so its cases run one at a time: \
                 --jobs {j} is not possible (leave --jobs out, or give 1)",
                profile.origin
            )));
        }
        cpm_harness::engine::running::run_split(&profile, &p.cases).map_err(cfg)?;
    }
    // A core that cannot serve SIP over TLS (no tls module, or a given configuration without
    // it): those cases are skipped, with the reason.
    let mut p = p;
    let no_tls = (a.core == CoreKind::Kamailio)
        .then(|| cpm_harness::kamailio::no_tls_reason(a.core_config.as_deref()))
        .flatten();
    let mut core_skipped = None;
    if let Some(why) = no_tls {
        let (tls, rest): (Vec<_>, Vec<_>) = p
            .cases
            .into_iter()
            .partition(|c| c.variant.transport == Transport::Tls);
        p.cases = rest;
        core_skipped = (!tls.is_empty()).then(|| (tls.len(), why.clone()));
        p.skipped
            .extend(tls.into_iter().map(|c| (c.id, why.clone())));
    }
    let run_id = runner::new_run_id();
    let dir = a.out.join(&run_id);
    let captures = a.captures.join(&run_id);
    let mut s = settings(
        &dir,
        a.size,
        a.trigger_window_ms,
        a.case_timeout,
        a.faults.clone(),
        Some(captures.clone()),
    );
    s.reanalyze = a.reanalyze;
    s.limits = limits;
    let core = start_core(a.core, a.core_config.as_deref(), a.quiet)
        .await
        .map_err(|e| report::coded(EXIT_HARNESS, e))?;
    s.core = core.as_ref().map(|c| c.addr());
    s.core_v6 = core.as_ref().and_then(|c| c.addr_v6());
    s.core_tls = core.as_ref().and_then(|c| c.tls_addrs());
    if !a.quiet {
        out!(
            "{}, {} skipped; profile {} ({}); suite {}",
            cpm_harness::text::plural(p.cases.len(), "case"),
            p.skipped.len(),
            profile.name,
            profile.origin,
            suite_source
        );
        // Said once here: the run's reports list only the cases that ran.
        if let Some((n, why)) = &core_skipped {
            out!(
                "skipped behind the core: {} ({why})",
                cpm_harness::text::plural(*n, "case")
            );
        }
    }
    // The SUT's version, once, for the conformance test report (a failure is shown there).
    let version = match &profile.version_command {
        Some(t) => {
            let argv = cpm_harness::engine::profile::version_argv(t, &s.exe)
                .map_err(|e| anyhow::Error::new(ConfigError(anyhow!("{}: {e}", profile.origin))))?;
            let v =
                cpm_harness::report::pctr::run_version_command(argv, Duration::from_secs(10)).await;
            if let (Some(e), false) = (&v.error, a.quiet) {
                out!("version-command: {e}");
            }
            Some(v)
        }
        None => None,
    };
    let pctr = cpm_harness::report::pctr::identify(&profile, inputs, version, started);
    let verbosity = match (a.quiet, a.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let color = a.color.resolve_here();
    colored::control::set_override(color);
    let mut reporter = report::RunReporter::new(
        &dir,
        &run_id,
        &profile.name,
        &sel.skipped,
        report::ReportOptions {
            console: report::console::ConsoleOptions {
                verbosity,
                color,
                progress: report::console::progress_wanted(verbosity),
            },
            partition: a.plan.partition.map(|p| p.to_string()),
            suites: p.suites.clone(),
            case_index: sel.case_index.clone(),
            out: None,
            pctr: Some(pctr),
            captures: Some(captures.clone()),
            keep: a.keep,
        },
    )?;
    let schedule = runner::Schedule {
        jobs: a.jobs.unwrap_or(if profile.runs_once() { 1 } else { 48 }),
        fail_fast: a.fail_fast,
    };
    let run = runner::execute(&p.cases, &profile, &s, schedule, &mut reporter);
    let stopped_by = tokio::select! {
        r = run => {
            let outcomes = r.map_err(|e| match report::code_of(&e) {
                Some(_) => e,
                None => report::coded(EXIT_HARNESS, e),
            })?;
            // Their reports are written and the process ends soon: freeing every case's
            // records and model one by one would only delay the end of the run.
            std::mem::forget(outcomes);
            None
        }
        sig = interrupted() => Some(sig),
    };
    if let Some(sig) = stopped_by {
        // Dropping the run aborted the running cases; each drops its SUT process, which
        // kills the SUT's process group. Give the runtime a moment to run those drops.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = std::fs::remove_dir_all(dir.join("work"));
        // The finished cases' reports (their pages and summary.json are already on disk).
        let _ = report::write_reports(&dir, reporter.summary());
        eprintln!(
            "interrupted by {sig}: the SUT processes were stopped; finished cases are in {}",
            dir.display()
        );
        return Ok(INTERRUPTED);
    }
    let _ = std::fs::remove_dir_all(dir.join("work"));
    if let Some(c) = core {
        c.stop().await;
    }
    // With --keep failed a run whose cases all passed keeps no capture (nor their folder).
    let kept = std::fs::read_dir(&captures).map_or(0, |d| d.count());
    if kept == 0 {
        let _ = std::fs::remove_dir(&captures);
        let _ = std::fs::remove_dir(&a.captures);
    }
    if !a.quiet {
        out!("reports: {}", dir.display());
        if kept > 0 {
            out!("captures: {}", captures.display());
        } else if a.keep == report::Keep::Failed {
            out!("captures: none kept (--keep failed, and every case passed)");
        } else {
            out!("captures: none written");
        }
    }
    Ok(report::exit_code(reporter.summary()))
}

fn merge_cmd(a: MergeArgs) -> anyhow::Result<u8> {
    let merged = report::merge::merge_command(&a.inputs, &a.out)?;
    out!(
        "merged {}: {}",
        cpm_harness::text::plural_of(merged.merged_from.len(), "summary", "summaries"),
        merged.counts.line()
    );
    out!("reports: {}", a.out.display());
    Ok(report::exit_code(&merged))
}

/// One proxy for the whole run, outside the cases' subnets (127.250.0.1:5060, or the next
/// free address up to .20); stopped when dropped, also on an interrupt or an error.
async fn start_core(
    kind: CoreKind,
    config: Option<&std::path::Path>,
    quiet: bool,
) -> anyhow::Result<Option<CoreProxy>> {
    match kind {
        CoreKind::Direct => Ok(None),
        CoreKind::Kamailio => {
            // With each IPv4 address an IPv6 listener on ::1 (port 5060 + 2 × (i - 1)), for
            // the cases on IPv6.
            let candidates: Vec<(std::net::SocketAddr, Option<std::net::SocketAddr>)> = (1..=20)
                .map(|i| {
                    (
                        std::net::SocketAddr::from(([127, 250, 0, i], 5060)),
                        Some(std::net::SocketAddr::from((
                            std::net::Ipv6Addr::LOCALHOST,
                            5060 + 2 * (u16::from(i) - 1),
                        ))),
                    )
                })
                .collect();
            // SIP over TLS one port above, with a certificate from the run's CA (the entities
            // verify it by address, it verifies theirs); without a CA key at hand, no TLS.
            let ctx = cpm_harness::driver::tls::context()?;
            let tls = ctx.can_issue().then_some(&*ctx);
            let p = CoreProxy::start_kamailio_any_dual(
                &candidates,
                tls,
                config,
                Duration::from_secs(10),
            )
            .await?;
            if !quiet {
                let tls = match p.tls_addrs() {
                    Some((t4, Some(t6))) => format!("; SIP over TLS at {t4} and {t6}"),
                    Some((t4, None)) => format!("; SIP over TLS at {t4}"),
                    None => String::new(),
                };
                match p.addr_v6() {
                    Some(a6) => out!("SIP/IP core: kamailio at {} and {a6}{tls}", p.addr()),
                    None => out!("SIP/IP core: kamailio at {}{tls}", p.addr()),
                }
            }
            Ok(Some(p))
        }
    }
}

/// Exit code of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// Completes on SIGINT (Ctrl-C) or SIGTERM, naming the signal.
async fn interrupted() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        } => "SIGTERM",
    }
}

fn analyze_cmd(a: AnalyzeArgs) -> anyhow::Result<u8> {
    use cpm_harness::capture::analyze::{
        analyze_file, load_map_opt, parse_sut, render_text, Options,
    };
    // Bad flags, an unreadable capture or map: exit 2, like a usage error.
    let cfg = |e: anyhow::Error| anyhow::Error::new(ConfigError(e));
    let variant = a.variant.variant().map_err(cfg)?;
    let sut = parse_sut(&a.sut).map_err(|e| cfg(anyhow!(e)))?;
    let opts = Options {
        variant,
        sut,
        map: load_map_opt(a.map.as_deref()).map_err(|e| cfg(e.into()))?,
        trigger_window: Duration::from_millis(a.trigger_window_ms),
        pause: Duration::from_millis(a.pause_ms),
        signalling_only: a.signalling_only,
        report_timing: a.report_timing,
    };
    let report = analyze_file(&a.file, &opts).map_err(|e| cfg(e.into()))?;
    if a.json {
        out!("{}", serde_json::to_string_pretty(&report.outcome)?);
    } else {
        out!("{}", render_text(&report).trim_end());
    }
    Ok(report.exit_code())
}

fn show_cmd(a: ShowArgs) -> anyhow::Result<u8> {
    use cpm_harness::capture::analyze::load_map_opt;
    use cpm_harness::capture::ladder::Ladder;
    let cfg =
        |e: cpm_harness::capture::analyze::AnalyzeError| anyhow::Error::new(ConfigError(e.into()));
    let map = load_map_opt(a.map.as_deref()).map_err(cfg)?;
    let ladder = Ladder::from_file(&a.file, map.as_ref()).map_err(cfg)?;
    out!("{}", a.file.display());
    out!("{}", ladder.render().trim_end());
    Ok(0)
}

fn diff_cmd(a: DiffArgs) -> anyhow::Result<u8> {
    use cpm_harness::capture::analyze::load_map_opt;
    use cpm_harness::capture::diff::diff_files;
    let cfg =
        |e: cpm_harness::capture::analyze::AnalyzeError| anyhow::Error::new(ConfigError(e.into()));
    let map = load_map_opt(a.map.as_deref()).map_err(cfg)?;
    let d = diff_files(&a.a, &a.b, map.as_ref()).map_err(cfg)?;
    out!("{}", d.render().trim_end());
    Ok(if d.is_equal() { 0 } else { 1 })
}

async fn selftest_cmd(a: SelftestArgs) -> anyhow::Result<u8> {
    if !a.mutants {
        bail!("selftest: say what to test: --mutants");
    }
    let Planned {
        plan: p, profile, ..
    } = load_plan(&a.plan)?;
    let run_id = format!("selftest-{}", runner::new_run_id());
    let dir = a.out.join(&run_id);
    let mut s = settings(&dir, 20_000, 1000, a.case_timeout, Vec::new(), None);
    let core = start_core(a.core, None, false).await?;
    s.core = core.as_ref().map(|c| c.addr());
    s.core_v6 = core.as_ref().and_then(|c| c.addr_v6());
    s.core_tls = core.as_ref().and_then(|c| c.tls_addrs());
    out!(
        "{:<24} {:<15} {:<6} checks that failed",
        "fault",
        "target check",
        "caught"
    );
    let (rows, clean) =
        cpm_harness::selftest::mutants(&p, &profile, &s, a.per_fault, &dir, a.jobs).await?;
    let caught = rows.iter().filter(|r| r.caught).count();
    let clean_bad = clean
        .iter()
        .filter(|o| o.verdict != cpm_harness::engine::Verdict::Pass)
        .count();
    out!(
        "score: {caught}/{} caught by their check ({:.0} %)",
        cpm_harness::text::plural(rows.len(), "fault"),
        100.0 * caught as f64 / rows.len().max(1) as f64
    );
    out!(
        "reference SUT on the same {}: {} not passing",
        cpm_harness::text::plural(clean.len(), "case"),
        clean_bad
    );
    for o in clean
        .iter()
        .filter(|o| o.verdict != cpm_harness::engine::Verdict::Pass)
    {
        out!("  {} {}", o.verdict.as_str(), o.id);
    }
    cpm_harness::files::write_atomic(
        &dir.join("mutants.json"),
        serde_json::to_string_pretty(&rows)?.as_bytes(),
    )?;
    let _ = std::fs::remove_dir_all(dir.join("work"));
    Ok(if caught == rows.len() && clean_bad == 0 {
        0
    } else {
        1
    })
}

async fn sut(a: SutArgs) -> anyhow::Result<u8> {
    if a.faults.iter().any(|f| matches!(f, FaultArg::List)) {
        for f in Fault::EVERY {
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
    if let Some(dir) = &a.tls_dir {
        cpm_harness::driver::tls::install(
            cpm_harness::driver::tls::TlsContext::from_dir(dir).context("--tls-dir")?,
        );
    }
    let (topology, topo_origin) = match &a.topology {
        Some(p) => (Topology::load(p)?, p.display().to_string()),
        None => {
            let t = cpm_harness::builtin::topology_input()?;
            (Topology::parse(&t.text, &t.origin)?, t.origin)
        }
    };
    let roles = Role::parse_list(&a.roles).map_err(|e| anyhow!("--roles: {e}"))?;
    let per_call = a.per_call.is_some();
    let variant = a.variant.variant_with(per_call.then_some(1))?;
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
        timers: SipTimers {
            invite_timeout: a.invite_timeout_ms.map(std::time::Duration::from_millis),
            ..SipTimers::default()
        },
        recorder: None,
        out_dir: a.out_dir.clone(),
        digest: true,
        holds: Default::default(),
        hold_roles: None,
        faults: faults.clone(),
        // The reference SUT serves many sessions: no per-peer connection cap unless given.
        limits: {
            let mut l =
                cpm_harness::limits::Limits::from_args(&a.limits).map_err(|e| anyhow!(e))?;
            if !a.limits.iter().any(|x| x.starts_with("max-conns-per-peer")) {
                l.conns_per_peer = cpm_harness::limits::Limits::many_sessions().conns_per_peer;
            }
            l
        },
        variant_header: per_call,
        per_call_variant: per_call,
        report_timing: a.report_timing,
    })
    .await?;
    // Warnings (a peer's bad input above all) go to stderr when they happen: a SUT process
    // may run for a whole test campaign.
    chain.on_warning(|w| eprintln!("warning: {w}"));
    // Readiness line for launchers (the profile's "stdout line" readiness).
    out!("ready roles={} topology={}", a.roles, topo_origin);
    let messages = a.messages.or(content.as_ref().map(|_| 1));
    if let Some(c) = content {
        chain.send(c)?;
    }
    let Some(messages) = messages else {
        // Serve until told to stop; stdin lines `send N` (a generated message of N bytes) or
        // `send-file PATH` (that file's content) make client-a send. Events are
        // handled meanwhile so members' files are written as content arrives.
        let inputs: Vec<_> = chain
            .nodes
            .iter()
            .filter(|n| n.name == "client-a")
            .map(|n| n.inputs.clone())
            .collect();
        let stop = wait_for_signal_or_stdin(inputs, per_call);
        let (outcome, r) = chain
            .wait_until(
                |_| usize::MAX,
                Duration::from_secs(10 * 365 * 24 * 3600),
                stop,
            )
            .await;
        chain.stop().await?;
        report_outcome(&outcome, r)?;
        eprintln!("stopped");
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
    report_outcome(&outcome, r)?;
    out!("teardown clean");
    Ok(0)
}

/// Prints a `sut` process's deliveries (its warnings were printed as they happened); an error
/// when the wait failed or any session ended badly (the process then exits non-zero).
fn report_outcome(
    outcome: &cpm_harness::chain::Outcome,
    waited: anyhow::Result<()>,
) -> anyhow::Result<()> {
    for (m, rcv) in &outcome.received {
        out!(
            "delivered member={m} bytes={} sha256={} complete={}",
            rcv.bytes,
            rcv.sha256,
            rcv.complete
        );
    }
    waited?;
    let bad: usize = outcome.ended_bad.values().sum();
    if bad > 0 {
        bail!(
            "{} failed: {:?}",
            cpm_harness::text::plural(bad, "session"),
            outcome.ended_bad
        );
    }
    Ok(())
}

/// Serves until SIGINT/SIGTERM; each stdin line `send N` (per-call mode: `send N VARIANT`,
/// a [`Variant::header_value`]) makes client-a send N bytes.
async fn wait_for_signal_or_stdin(
    client_a: Vec<cpm_harness::driver::queue::Sender<cpm_harness::entity::Input>>,
    per_call: bool,
) {
    use cpm_harness::entity::Input;
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
                    let it = line.split_whitespace();
                    let words: Vec<&str> = it.collect();
                    // `send N` (per-call mode: `send N VARIANT`) or `send-file PATH` (the
                    // content a harness pinned in a file, `send-file {content}`; per-call mode:
                    // `send-file PATH VARIANT`).
                    let content = match words.as_slice() {
                        ["send", n, ..] => n.parse::<usize>().map(pattern).map_err(|_| format!("expected `send N`, got {line:?}")),
                        ["send-file", path, ..] => std::fs::read(path).map(bytes::Bytes::from).map_err(|e| format!("send-file {path}: {e}")),
                        [] => continue,
                        _ => Err(format!("expected `send N` or `send-file PATH`, got {line:?}")),
                    };
                    let input = content.and_then(|content| match words.get(2) {
                        None => Ok(Input::Send { content }),
                        Some(v) if per_call => Variant::from_id(v)
                            .map(|v| Input::SendAs { content, variant: Box::new(v) }),
                        Some(_) => Err(format!("a variant after the command needs `sut --variant per-call`, got {line:?}")),
                    });
                    match (input, client_a.first()) {
                        (Ok(i), Some(a)) => {
                            let _ = a.send(i);
                        }
                        (Ok(_), None) => eprintln!("stdin: sending needs client-a in --roles"),
                        (Err(e), _) => eprintln!("stdin: {e}"),
                    }
                }
                _ => stdin_open = false,
            },
        }
    }
}
