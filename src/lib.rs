//! cpm-harness: a conformance and interoperability test harness for OMA CPM large-message
//! group delivery over a hop-by-hop MSRP media path.
//!
//! # Layout
//! - [`codec`]: sans-IO codecs (SIP, SDP, MSRP, CPIM).
//! - [`config`], [`topology`]: the variant knobs and the entities' addresses, as data.
//! - [`entity`]: the sans-IO state machine of one entity instance (all five roles), with the
//!   harness's holds and the reference SUT's faults.
//! - [`driver`]: the tokio driver around a node, and the wire-event recorder.
//! - [`sim`]: a deterministic simulated network for many nodes.
//! - [`chain`]: run a set of instances in this process and wait for delivery and teardown.
//! - [`engine`]: suites, profiles, plans, the case runner, the observation and the checks.
//! - [`capture`]: pcap writing and reading, offline analysis, ladders and diffs.
//! - [`report`]: console, `summary.json`, JUnit and HTML reports from the run's event stream;
//!   merging CI shards.
//! - [`limits`]: what a peer may make the harness buffer or hold open (sizes, counts).
//! - [`bench`](mod@bench), [`load`]: the bench table and the load mode against a SUT.
//! - [`builtin`]: the default suites and the reference profile embedded in the binary, and
//!   where a run's inputs come from (the files given, the current folder's, or the embedded).
//! - [`files`]: atomic writes; [`suggest`]: did-you-mean suggestions.
//! - [`kamailio`]: the SIP/IP core (a Kamailio proxy) started for a run.
//! - [`trace`]: the wire-event stream and its recorder.
//! - [`clock`], [`entropy`]: the only readers of the machine's clocks and OS randomness
//!   (`clippy.toml` disallows them elsewhere); `codec` and `entity` are handed time and seeds.
//!
//! # Data flow
//! ```text
//! suite + profile → plan → case → SUT process + harness nodes (drivers) → wire events
//! wire events → observe → checks → verdicts → run events → reports (console, JSON, JUnit, HTML)
//! wire events → capture writer → pcap → capture reader → wire events (offline, same checks)
//! ```
pub mod bench;
pub mod builtin;
pub mod capture;
pub mod chain;
pub mod clock;
pub mod codec;
pub mod config;
// The I/O edge: its loop stamps every input to its node with the monotonic clock.
#[allow(clippy::disallowed_methods)]
pub mod driver;
pub mod engine;
pub mod entity;
pub mod entropy;
pub mod files;
pub mod kamailio;
pub mod limits;
pub mod load;
pub mod model;
// Progress bar and summary timing read the clock (to call `clock` once report/ is reworked).
#[allow(clippy::disallowed_methods)]
pub mod report;
pub mod selftest;
pub mod sim;
pub mod suggest;
pub mod topology;
// The recorder stamps live events with the time since the run started.
#[allow(clippy::disallowed_methods)]
pub mod trace;
