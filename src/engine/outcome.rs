//! The result of one case, as the runner, the reports and `analyze` read it.

use super::{CheckResult, Verdict};
use crate::topology::Topology;
use serde::Serialize;
use std::sync::Arc;

/// Why a case could not be set up, when the cause is one the runner acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetupError {
    /// An address of the case was taken (`io::ErrorKind::AddrInUse` from a bind of the
    /// harness, or from the probe of the SUT's addresses before it is launched): another
    /// run or a stray process holds the subnet.
    AddrInUse,
}

impl SetupError {
    /// The setup error an error chain carries, if any.
    pub fn of(e: &anyhow::Error) -> Option<SetupError> {
        e.chain()
            .filter_map(|c| c.downcast_ref::<std::io::Error>())
            .any(|io| io.kind() == std::io::ErrorKind::AddrInUse)
            .then_some(SetupError::AddrInUse)
    }
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseOutcome {
    pub id: String,
    pub figure: u8,
    pub split: String,
    pub ordering: String,
    pub verdict: Verdict,
    pub duration_ms: u128,
    pub checks: Vec<CheckResult>,
    /// Harness-level problems (launch, timeout) and the SUT's last lines.
    pub notes: Vec<String>,
    /// The case could not be set up for a reason the runner acts on (it retries on another
    /// subnet when an address was taken).
    #[serde(skip)]
    pub setup_error: Option<SetupError>,
    /// Everything the harness's sockets recorded, both ends' copies included.
    #[serde(skip)]
    pub records: Vec<crate::trace::Record>,
    /// The case's entities and addresses (reports name the ladder's columns from it); none
    /// when the case failed before it had one.
    #[serde(skip)]
    pub topology: Option<Arc<Topology>>,
    /// The case's model, which its checks judged (reports draw its ladder from it).
    #[serde(skip)]
    pub observation: Option<Arc<crate::model::Observation>>,
    /// Against a running SUT: what of the case was still not over on the wire (dialogs, links)
    /// when the harness stopped waiting (`settle-ms`); the next case is then inconclusive.
    #[serde(skip)]
    pub still_open: Vec<String>,
}
