//! cpm-harness: a conformance and interoperability test harness for OMA CPM large-message
//! group delivery over a hop-by-hop MSRP media path.
//!
//! # Layout
//! - [`codec`]: sans-IO codecs (SIP, SDP, MSRP, CPIM).
//! - [`config`], [`topology`]: the variant knobs and the entities' addresses, as data.
//! - [`entity`]: the sans-IO state machine of one entity instance (all five roles), with the
//!   harness's holds and the reference SUT's faults.
//! - [`trace`]: the wire-event stream: events, who recorded them, the recorder, one copy of
//!   what both ends recorded, the JSON form.
//! - [`driver`]: the tokio driver around a node; [`sim`]: a deterministic simulated network
//!   for many nodes; [`chain`]: run a set of instances in this process. All record the trace.
//! - [`model`]: the one interpretation of a trace (SIP, connections, MSRP, contents, who is
//!   who by address and port, dialogs, delivery) that everything below reads.
//! - [`engine`]: suites, profiles, plans, the case runner, the checks and their catalogue.
//! - [`capture`]: the trace as pcap and back, offline analysis, ladders and diffs.
//! - [`report`]: console, `summary.json`, JUnit and HTML reports from the run's event stream;
//!   merging CI shards. [`selftest`]: the mutant table.
//! - [`limits`]: what a peer may make the harness buffer or hold open (sizes, counts).
//! - [`bench`](mod@bench), [`load`]: the bench table and the load mode against a SUT.
//! - [`builtin`]: the default suites and the reference profile embedded in the binary, and
//!   where a run's inputs come from (the files given, the current folder's, or the embedded).
//! - [`files`]: atomic writes; [`suggest`]: did-you-mean suggestions; [`text`]: plurals and
//!   the one HTML/SVG/XML escaper.
//! - [`kamailio`]: the SIP/IP core (a Kamailio proxy) started for a run.
//! - [`clock`], [`entropy`]: the only readers of the machine's clocks and OS randomness
//!   (`clippy.toml` disallows them elsewhere); `codec` and `entity` are handed time and seeds.
//!
//! # Data flow
//! ```text
//! suite + profile → plan → case → SUT process + harness nodes (drivers) → trace records
//! records → one copy → model (interpret, attribute, dialogs) → checks → run events → reports
//! records → one copy → pcap writer → pcap → pcap reader → model → the same checks (analyze)
//! simulator → trace records → the same model and checks
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
pub mod text;
pub mod topology;
// The recorder stamps live events with the time since the run started.
#[allow(clippy::disallowed_methods)]
pub mod trace;
