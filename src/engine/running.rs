//! A running SUT: started (or found) once for the whole run, on the run's one topology
//! ([`Profile::run_topology`]: the SUT's roles at its addresses, the harness's at its own),
//! its split fixed for the run. The runner gives it one case at a time
//! ([`super::runner::execute`]); between cases it checks that the previous case is over on
//! the wire ([`still_open`]) and whether the SUT process is still alive ([`RunningSut::died`]).

use super::case::RunSettings;
use super::profile::{case_vars, expand_line, Profile, Ready, RunVars};
use super::spec::{split_name, Case};
use super::sutproc::{Readiness, SutProcess};
use crate::model::Observation;
use crate::topology::{Role, Topology};
use anyhow::{anyhow, Context};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How many of the SUT's last output lines a death report quotes.
const LAST_LINES: usize = 10;

/// The SUT of a run that starts it (or finds it) once.
pub struct RunningSut {
    /// The roles it plays, the same for every case of the run.
    pub split: Vec<Role>,
    /// The run's topology, written to `topology_path` (`{topology}`) before the launch.
    pub topology: Arc<Topology>,
    pub topology_path: PathBuf,
    /// Where the SUT writes what its client-b instances received (`{out-dir}`).
    pub out_dir: PathBuf,
    /// The launched process; none for a SUT found at `addresses`.
    process: Option<Mutex<SutProcess>>,
    /// Output lines already attached to a case.
    seen: Mutex<usize>,
}

/// The one split the cases of a run against a running SUT share; an error naming the splits
/// otherwise (a running SUT plays one set of roles).
pub fn run_split(profile: &Profile, cases: &[Case]) -> Result<Vec<Role>, String> {
    let mut splits: Vec<Vec<Role>> = Vec::new();
    for c in cases {
        if !splits.contains(&c.sut) {
            splits.push(c.sut.clone());
        }
    }
    splits.sort();
    match splits.as_slice() {
        [one] if !one.is_empty() => Ok(one.clone()),
        [] => Err(format!("{}: no case to run", profile.origin)),
        _ => Err(format!(
            "{}: the SUT is started once for the run and plays one split, but the selected \
             cases need {}: {}; select one split with --filter (e.g. --filter /{}/) or list \
             one entry in the profile's `splits:`",
            profile.origin,
            splits.len(),
            splits
                .iter()
                .map(|s| split_name(s))
                .collect::<Vec<_>>()
                .join(", "),
            splits
                .iter()
                .find(|s| !s.is_empty())
                .map(|s| split_name(s))
                .unwrap_or_else(|| "x".into())
        )),
    }
}

impl RunningSut {
    /// Writes the run's topology and launches the SUT (when the profile launches it), waiting
    /// for its readiness. An address of the SUT already taken is an error naming it (fixed
    /// addresses are never swapped for others).
    pub async fn start(
        profile: &Profile,
        split: &[Role],
        first: &Case,
        s: &RunSettings,
    ) -> anyhow::Result<RunningSut> {
        let mut topology = profile.run_topology(split).map_err(|e| anyhow!(e))?;
        if s.core.is_some() {
            topology.core = s.core_for(topology.family())?;
        }
        let dir = s.work_dir.join("running-sut");
        let out_dir = dir.join("out");
        std::fs::create_dir_all(&out_dir)
            .with_context(|| format!("creating {}", out_dir.display()))?;
        let topology_path = dir.join("topology.yaml");
        crate::files::write_atomic(&topology_path, topology.to_yaml().as_bytes())
            .with_context(|| format!("writing {}", topology_path.display()))?;
        let mut process = None;
        if let Some(l) = &profile.launch {
            let run = RunVars {
                exe: &s.exe,
                topology_path: &topology_path,
                out_dir: &out_dir,
                size: s.size as u64,
                faults: &s.faults,
            };
            // The profile allows only run-wide placeholders with `per: run`: any case gives
            // the same values.
            let argv = profile
                .launch_argv(first, &run, &topology)
                .map_err(|e| anyhow!("{}: {e}", profile.origin))?
                .unwrap_or_default();
            let ready = match &l.ready {
                Ready::StdoutLine(p) => Readiness::StdoutLine(p.clone()),
                Ready::Port(t) => {
                    let a = expand_line(t, &case_vars(first, &run), &topology)
                        .map_err(|e| anyhow!("{}: ready port: {e}", profile.origin))?;
                    Readiness::Port(a.parse().map_err(|_| {
                        anyhow!("{}: ready port {a:?} is not host:port", profile.origin)
                    })?)
                }
            };
            super::case::probe_addresses(&topology, split)?;
            let p = SutProcess::launch(&argv, &ready, l.ready_timeout).await?;
            process = Some(Mutex::new(p));
        }
        Ok(RunningSut {
            split: split.to_vec(),
            topology: Arc::new(topology),
            topology_path,
            out_dir,
            process,
            seen: Mutex::new(0),
        })
    }

    /// Whether the harness launched it (and so can write to its stdin and watch it).
    pub fn launched(&self) -> bool {
        self.process.is_some()
    }

    /// Writes a line to the SUT's stdin (the trigger of its client-a).
    pub async fn send_line(&self, line: &str) -> anyhow::Result<()> {
        match &self.process {
            Some(p) => p.lock().await.send_line(line).await,
            None => Err(anyhow!(
                "a stdin trigger needs a SUT the harness launched (`launch`)"
            )),
        }
    }

    /// The SUT's output lines since the last call (for the case that just ran).
    pub async fn new_output(&self) -> Vec<String> {
        let Some(p) = &self.process else {
            return Vec::new();
        };
        let mut p = p.lock().await;
        let log = p.drain_log();
        let mut seen = self.seen.lock().await;
        let new = log[(*seen).min(log.len())..].to_vec();
        *seen = log.len();
        new
    }

    /// When the launched SUT has exited: its exit status and its last output lines.
    pub async fn died(&self) -> Option<String> {
        let p = self.process.as_ref()?;
        let mut p = p.lock().await;
        let status = p.exit_status()?;
        // Let the output readers deliver the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let command = p.command_line();
        let log = p.drain_log();
        let last: Vec<&str> = log
            .iter()
            .rev()
            .take(LAST_LINES)
            .rev()
            .map(String::as_str)
            .collect();
        Some(format!(
            "the SUT process ({}) exited: {status}; its last output:{}",
            command,
            if last.is_empty() {
                " (none)".to_string()
            } else {
                format!("\n  {}", last.join("\n  "))
            }
        ))
    }

    /// Stops a launched SUT (SIGTERM to its group, SIGKILL after `grace`).
    pub async fn stop(&self, grace: Duration) {
        if let Some(p) = &self.process {
            p.lock().await.stop(grace).await;
        }
    }

    /// Removes what the SUT's client-b instances wrote for the previous case.
    pub fn clear_out_dir(&self) {
        for m in &self.topology.members {
            let _ = std::fs::remove_file(self.out_dir.join(crate::chain::sanitize(&m.name)));
        }
    }
}

/// What of a case is not over on the wire, from its model: a dialog with a SUT entity that
/// did not end (no final response to its INVITE, a 2xx without a BYE answered), a link with
/// a SUT entity that is still open (open and idle is over when the case declared `reuse`).
/// Empty when it is all over.
pub fn still_open(
    obs: &Observation,
    topology: &Topology,
    sut: &[Role],
    reuse: bool,
) -> Vec<String> {
    let is_sut = |name: &str| {
        topology
            .instance(name)
            .is_some_and(|i| sut.contains(&i.role))
    };
    let mut out = Vec::new();
    for l in &obs.legs {
        if !(is_sut(&l.uac.name) || is_sut(&l.uas.name)) {
            continue;
        }
        // A harness member that never answered at all (member-never-answers): the SUT's
        // INVITE transaction ends by its own timer with nothing on the wire (RFC 3261
        // §17.1.1.2); whether it gave up in time is SIG-NO-ANSWER's to judge.
        let unanswered = l.final_response.is_none()
            && !is_sut(&l.uas.name)
            && !l
                .messages
                .iter()
                .any(|&i| obs.sip.get(i).and_then(|s| s.sender.as_ref()) == Some(&l.uas));
        if unanswered {
            continue;
        }
        let what = match (l.final_response, l.ok, l.bye, l.bye_ok) {
            (None, _, _, _) => "its INVITE has no final response",
            (Some(_), None, _, _) => continue, // Rejected: over.
            (Some(_), Some(_), None, _) => "no BYE",
            (Some(_), Some(_), Some(_), None) => "its BYE is not answered",
            (Some(_), Some(_), Some(_), Some(_)) => continue,
        };
        out.push(format!(
            "dialog {} → {} (Call-ID {}): {what}",
            l.uac.name, l.uas.name, l.call_id
        ));
    }
    for c in obs.conns.iter().filter(|c| c.is_link()) {
        let names = [&c.opener_party, &c.target_party];
        if !names
            .iter()
            .any(|p| p.as_ref().is_some_and(|p| is_sut(&p.name)))
        {
            continue;
        }
        if c.dirs.iter().any(|d| d.closed_at.is_some()) {
            continue;
        }
        let idle = c.dirs.iter().all(|d| d.trailing == 0);
        if reuse && idle {
            continue;
        }
        let name = |p: &Option<crate::model::Party>| {
            p.as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_else(|| "?".into())
        };
        out.push(format!(
            "connection {} ({}) → {} ({}) is still open{}",
            name(&c.opener_party),
            c.opener,
            name(&c.target_party),
            c.target,
            if idle {
                ""
            } else {
                " in the middle of a message"
            }
        ));
    }
    out
}
