//! Row (d): SIP sessions per second through the chain (client-a → pf-a → x → pf-b → one
//! member, the harness playing every role): each session is INVITE … 200 … ACK on every
//! hop, a 100-byte message over the four MSRP hops, and BYE leg by leg; [`WINDOW`] sessions
//! are in flight at once.

use super::Row;
use crate::chain::{pattern, Chain, ChainOptions};
use crate::clock;
use crate::config::Variant;
use crate::entity::{Input, NodeEvent};
use crate::topology::Topology;
use anyhow::{anyhow, bail};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const NET: u8 = 98;
/// Sessions in flight at once.
pub const WINDOW: usize = 32;
/// Sessions measured.
pub const SESSIONS: usize = 2000;

/// Row (d).
pub async fn row() -> anyhow::Result<Row> {
    let rate = measure().await?;
    Ok(Row::new(
        "d.sessions",
        "(d) sessions per second through the chain (INVITE…ACK, 100 B, BYE; 4 hops)",
        rate,
        "sessions/s",
    )
    .note(format!(
        "{SESSIONS} sessions, {WINDOW} in flight, SIP/UDP, 1 member"
    )))
}

/// Complete sessions per second: [`SESSIONS`] sessions, [`WINDOW`] in flight.
pub async fn measure() -> anyhow::Result<f64> {
    let t = Arc::new(Topology::generate(NET, 1, 1, 5060, 2855));
    let mut chain = Chain::start(ChainOptions::for_load(t, Variant::new(1))).await?;
    // client-a's session ends; every other node's events are drained and dropped.
    let (tx, mut ended) = mpsc::unbounded_channel::<Result<(), String>>();
    let mut client_a = None;
    for n in chain.nodes.iter_mut() {
        let mut ev = std::mem::replace(&mut n.events, crate::driver::queue::unbounded().1);
        let is_a = n.name == "client-a";
        if is_a {
            client_a = Some(n.inputs.clone());
        }
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(e) = ev.recv().await {
                if let (true, NodeEvent::SessionEnded { ok, detail, .. }) = (is_a, e) {
                    let _ = tx.send(if ok { Ok(()) } else { Err(detail) });
                }
            }
        });
    }
    let client_a = client_a.ok_or_else(|| anyhow!("no client-a"))?;
    let content = pattern(100);
    let send = || {
        client_a
            .send(Input::Send {
                content: content.clone(),
            })
            .map_err(|_| anyhow!("client-a stopped"))
    };
    let start = clock::now();
    let mut sent = 0;
    while sent < WINDOW.min(SESSIONS) {
        send()?;
        sent += 1;
    }
    let mut done = 0;
    let deadline = clock::tokio_now() + Duration::from_secs(300);
    while done < SESSIONS {
        match tokio::time::timeout_at(deadline, ended.recv()).await {
            Ok(Some(Ok(()))) => {
                done += 1;
                if sent < SESSIONS {
                    send()?;
                    sent += 1;
                }
            }
            Ok(Some(Err(e))) => bail!("a session failed after {done}: {e}"),
            Ok(None) => bail!("the chain stopped after {done} sessions"),
            Err(_) => bail!("{done} of {SESSIONS} sessions ended within 300 s"),
        }
    }
    let secs = clock::since(start).as_secs_f64();
    chain.stop().await?;
    Ok(SESSIONS as f64 / secs)
}
