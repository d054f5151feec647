//! Offline analysis of captures (`analyze`, `show`, `diff`) against live runs of the
//! conformance engine: cases run once (all at once, on loopback nets 180..=197) with their
//! captures written, then each capture is analysed, drawn and compared.
//!
//! - every capture analyses to the same verdict per check as its live run, with the entity
//!   map inferred and with `--map` (the case's topology file);
//! - a faulty SUT's capture fails the same check;
//! - each figure's self-check ladder is an insta snapshot (`tests/snapshots/`);
//! - `diff` finds two runs of one case equal and names what a fault or another figure changed;
//! - bad input exits 2 with a message naming the file;
//! - a kernel capture (dumpcap on lo, when available) analyses the same as the live run.

#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;

use cpm_harness::capture::analyze::{analyze_file, load_map, Options, Report};
use cpm_harness::capture::diff::diff_files;
use cpm_harness::capture::ladder::Ladder;
use cpm_harness::chain::sanitize;
use cpm_harness::codec::sip::Transport;
use cpm_harness::config::Variant;
use cpm_harness::engine::case::{run_case, RunSettings};
use cpm_harness::engine::outcome::CaseOutcome;
use cpm_harness::engine::profile::Profile;
use cpm_harness::engine::spec::{split_name, Case};
use cpm_harness::engine::{CheckId, Class, FindingKind, Verdict};
use cpm_harness::entity::{Fault, Holds};
use cpm_harness::topology::Role;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

/// One live case and where its capture and topology went.
struct Live {
    case: Case,
    outcome: CaseOutcome,
    pcap: PathBuf,
    topology: PathBuf,
}

/// What a run should be.
struct Spec {
    name: &'static str,
    figure: u8,
    sut: Vec<Role>,
    transport: Transport,
    faults: Vec<Fault>,
    holds: Holds,
    net: u8,
}

fn spec(name: &'static str, figure: u8, sut: &[Role], net: u8) -> Spec {
    Spec {
        name,
        figure,
        sut: sut.to_vec(),
        transport: Transport::Udp,
        faults: Vec::new(),
        holds: Holds::default(),
        net,
    }
}

/// Members (and the pf-b serving them) answer 100 ms late: in the figures where x answers at
/// once, x's 200-2 then always goes out before any 200-3 comes back, however loaded the
/// machine (see `ladder.rs` on why that edge is read from the capture).
fn members_late() -> Holds {
    Holds {
        answer_delay_ms_per_member: ["b1", "b2", "b3"]
            .iter()
            .map(|m| (m.to_string(), 100))
            .collect(),
        ..Holds::default()
    }
}

fn case_of(s: &Spec) -> Case {
    let mut variant = Variant::new(s.figure);
    variant.transport = s.transport;
    let knobs = variant.id();
    let knobs = knobs.split_once('/').map(|(_, r)| r).unwrap_or("");
    let ordering = if s.holds == Holds::default() {
        "in-order"
    } else {
        "members-late"
    };
    Case {
        id: format!(
            "F{}/{}/{knobs}/{ordering}/{}",
            s.figure,
            split_name(&s.sut),
            s.name
        ),
        figure: s.figure,
        variant,
        sut: s.sut.clone(),
        ordering: ordering.into(),
        holds: s.holds.clone(),
    }
}

/// Scratch space for all runs, in cargo's test scratch directory (emptied at the start, so
/// the last run's captures stay there to look at).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze-tests");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    })
}

fn settings(faults: Vec<Fault>) -> RunSettings {
    RunSettings {
        case_timeout: Duration::from_secs(if faults.is_empty() { 20 } else { 6 }),
        faults,
        capture_dir: Some(scratch().join("captures")),
        ..RunSettings::new(PathBuf::from(BIN), scratch().join("work"))
    }
}

fn file_of(case: &Case) -> String {
    sanitize(&case.id.replace('/', "_"))
}

/// Every live run the tests use, run once, four at a time.
fn runs() -> &'static BTreeMap<&'static str, Live> {
    static RUNS: OnceLock<BTreeMap<&'static str, Live>> = OnceLock::new();
    RUNS.get_or_init(|| {
        use Role::*;
        let mut specs: Vec<Spec> = (1..=7)
            .map(|f| Spec {
                holds: members_late(),
                ..spec(FIGS[f as usize - 1], f, &[], 179 + f)
            })
            .collect();
        specs.extend([
            Spec {
                holds: members_late(),
                ..spec("fig1-again", 1, &[], 187)
            },
            spec("f1-pf-a", 1, &[PfA], 188),
            spec("f2-x", 2, &[X], 189),
            spec("f4-pf-b", 4, &[PfB], 190),
            spec("f5-client-a", 5, &[ClientA], 191),
            Spec {
                transport: Transport::Tcp,
                ..spec("f6-client-b-tcp", 6, &[ClientB], 192)
            },
            spec("f7-network", 7, &[PfA, X, PfB], 193),
            spec("f3-pf-b-client-b", 3, &[PfB, ClientB], 194),
            Spec {
                faults: vec![Fault::MissingAcceptTypes],
                ..spec("f1-pf-a-missing-accept-types", 1, &[PfA], 195)
            },
            Spec {
                faults: vec![Fault::CpimAltered],
                ..spec("f2-x-cpim-altered", 2, &[X], 196)
            },
            // reports-success (issue 16): REPORTs on the wire, analyzed as live.
            Spec {
                holds: Holds {
                    success_report: true,
                    ..Holds::default()
                },
                ..spec("f1-pf-b-reports", 1, &[PfB], 197)
            },
            // member-never-answers (issue 16): an INVITE4 with nothing back, pf-b's 408.
            Spec {
                holds: Holds {
                    no_answer: ["b1".to_string()].into(),
                    ..Holds::default()
                },
                ..spec("f2-pf-b-never-answers", 2, &[PfB], 198)
            },
        ]);
        let profile = Profile::load(Path::new("profiles/reference.yaml")).expect("profile");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let started = Instant::now();
        let out = rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            let mut out = BTreeMap::new();
            let mut pending = specs.into_iter();
            loop {
                while set.len() < 4 {
                    let Some(s) = pending.next() else { break };
                    let case = case_of(&s);
                    let (profile, st) = (profile.clone(), settings(s.faults.clone()));
                    let (name, net) = (s.name, s.net);
                    set.spawn(async move {
                        let o = run_retrying(&case, &profile, net, &st).await;
                        (name, case, o)
                    });
                }
                let Some(done) = set.join_next().await else {
                    break;
                };
                let (name, case, outcome) = done.expect("case task");
                let f = file_of(&case);
                out.insert(
                    name,
                    Live {
                        pcap: scratch().join("captures").join(format!("{f}.pcap")),
                        topology: scratch().join("work").join(&f).join("topology.yaml"),
                        case,
                        outcome,
                    },
                );
            }
            out
        });
        eprintln!("live runs: {:?}", started.elapsed());
        out
    })
}

/// Runs a case, again (up to 4 times) when its addresses were busy: another `cpm-harness
/// run` on this machine uses every net from 100 to 199.
async fn run_retrying(case: &Case, profile: &Profile, net: u8, st: &RunSettings) -> CaseOutcome {
    let mut o = run_case(case, profile, net, st).await;
    for _ in 0..3 {
        let busy = o.verdict == Verdict::Error
            && o.notes.iter().any(|n| n.contains("Address already in use"));
        if !busy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        o = run_case(case, profile, net, st).await;
    }
    o
}

const FIGS: [&str; 7] = ["fig1", "fig2", "fig3", "fig4", "fig5", "fig6", "fig7"];

fn live(name: &str) -> &'static Live {
    runs().get(name).unwrap_or_else(|| panic!("no run {name}"))
}

fn options(l: &Live, with_map: bool) -> Options {
    let mut o = Options::new(l.case.variant.clone());
    o.sut = l.case.sut.clone();
    o.pause = l.case.pause();
    if with_map {
        o.map = Some((
            l.topology.clone(),
            load_map(&l.topology).expect("case topology"),
        ));
    }
    o
}

fn analyze(l: &Live, with_map: bool) -> Report {
    analyze_file(&l.pcap, &options(l, with_map)).unwrap_or_else(|e| panic!("{}: {e}", l.case.id))
}

fn verdicts(checks: &[cpm_harness::engine::CheckResult]) -> BTreeMap<CheckId, Verdict> {
    checks.iter().map(|c| (c.id, c.verdict)).collect()
}

/// Per check that differs: `ID live=… capture=…` with the capture's evidence.
fn differences(l: &Live, r: &Report) -> Vec<(CheckId, String)> {
    let live = verdicts(&l.outcome.checks);
    let got = verdicts(&r.outcome.checks);
    live.iter()
        .filter(|(id, v)| got.get(*id) != Some(v))
        .map(|(id, v)| {
            let ev = r
                .outcome
                .checks
                .iter()
                .find(|c| c.id == *id)
                .map(|c| c.evidence().join(" | "))
                .unwrap_or_default();
            let text = format!(
                "{id}: live {} capture {:?}: {ev}",
                v.as_str(),
                got.get(id).map(|v| v.as_str())
            );
            (*id, text)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// analyze

/// The documented difference: with pf-b and client-b both SUT, no member's hop is in the
/// capture, so MEDIA-DELIVERY (which the live run judges from the SUT's output files) is
/// not observable from the capture.
fn expected_difference(l: &Live, check: CheckId) -> Option<Verdict> {
    let hidden = l.case.sut.contains(&Role::PfB) && l.case.sut.contains(&Role::ClientB);
    (hidden && check == CheckId::MediaDelivery).then_some(Verdict::NotObservable)
}

#[test]
fn captures_analyze_to_the_live_verdicts_with_inferred_and_given_maps() {
    let mut bad = Vec::new();
    for (name, l) in runs() {
        assert!(
            l.outcome.verdict != Verdict::Error,
            "{name}: live run errored: {:?}",
            l.outcome.notes
        );
        for with_map in [false, true] {
            let r = analyze(l, with_map);
            for (id, d) in differences(l, &r) {
                let got = verdicts(&r.outcome.checks).get(&id).copied();
                if got.is_some() && got == expected_difference(l, id) {
                    continue;
                }
                bad.push(format!(
                    "{name} ({}): {d}",
                    if with_map { "--map" } else { "inferred" }
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn inferred_map_names_the_entities_like_the_topology() {
    for name in ["fig1", "f2-x", "f7-network", "f6-client-b-tcp"] {
        let l = live(name);
        let inferred = analyze(l, false);
        let given = load_map(&l.topology).unwrap();
        let topo = &inferred.map.topology;
        for i in given.instances() {
            if inferred.map.unseen.contains(&i.name) {
                continue;
            }
            let got = topo
                .instance(&i.name)
                .unwrap_or_else(|| panic!("{name}: {} not inferred", i.name));
            assert_eq!((got.sip, got.msrp), (i.sip, i.msrp), "{name}: {}", i.name);
        }
        // Only hops between SUT roles can hide an entity: x in the network split.
        let unseen: Vec<&str> = inferred.map.unseen.iter().map(String::as_str).collect();
        match name {
            "f7-network" => assert_eq!(unseen, ["x"], "{name}"),
            _ => assert!(unseen.is_empty(), "{name}: {unseen:?}"),
        }
        assert_eq!(topo.group, given.group, "{name}");
        for m in &given.members {
            assert_eq!(
                topo.pf_b_serving(&m.name).map(|p| p.sip),
                given.pf_b_serving(&m.name).map(|p| p.sip),
                "{name}: {}",
                m.name
            );
        }
    }
}

#[test]
fn a_faulty_sut_capture_fails_the_same_check() {
    for (name, check) in [
        ("f1-pf-a-missing-accept-types", CheckId::SdpAccept),
        ("f2-x-cpim-altered", CheckId::MediaCpim),
    ] {
        let l = live(name);
        let live_v = verdicts(&l.outcome.checks);
        assert_eq!(live_v[&check], Verdict::Fail, "{name}: the live run");
        for with_map in [false, true] {
            let r = analyze(l, with_map);
            assert_eq!(
                verdicts(&r.outcome.checks)[&check],
                Verdict::Fail,
                "{name}: {:#?}",
                r.outcome.checks
            );
            assert!(
                differences(l, &r).is_empty(),
                "{name}: {:?}",
                differences(l, &r)
            );
            assert_eq!(r.exit_code(), 1);
        }
    }
}

#[test]
fn delivery_is_reconstructed_from_l4_and_says_so() {
    let l = live("f5-client-a");
    let r = analyze(l, false);
    let md = r
        .outcome
        .checks
        .iter()
        .find(|c| c.id == CheckId::MediaDelivery)
        .unwrap();
    assert_eq!(md.verdict, Verdict::Pass, "{md:?}");
    assert!(
        md.findings.iter().any(|f| matches!(&f.kind,
            FindingKind::Delivered { member, bytes: 20000, .. } if member == "b3")),
        "{md:?}"
    );
    assert!(
        md.findings
            .iter()
            .any(|f| f.class == Class::Note
                && matches!(f.kind, FindingKind::DeliveryFromWire { .. })),
        "{md:?}"
    );
    // The network split hides no member hop; pf-b + client-b hides all of them.
    let hidden = analyze(live("f3-pf-b-client-b"), false);
    let md = hidden
        .outcome
        .checks
        .iter()
        .find(|c| c.id == CheckId::MediaDelivery)
        .unwrap();
    assert_eq!(md.verdict, Verdict::NotObservable, "{md:?}");
    assert!(matches!(
        md.findings[0].kind,
        FindingKind::DeliveryHiddenInCapture
    ));
}

#[test]
fn analyze_cli_prints_the_summary_case_object_and_exits_by_verdict() {
    let l = live("f2-x");
    let out = Command::new(BIN)
        .arg("analyze")
        .arg(&l.pcap)
        .args(["--figure", "2", "--sut", "x", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["figure"], 2);
    assert_eq!(v["split"], "x");
    assert_eq!(v["verdict"], "pass");
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), l.outcome.checks.len());
    for (c, want) in checks.iter().zip(&l.outcome.checks) {
        assert_eq!(c["id"], want.id.as_str());
        assert_eq!(c["verdict"], serde_json::to_value(want.verdict).unwrap());
        assert!(c["evidence"].is_array());
        assert_eq!(c["reference"], want.id.reference().as_str());
        assert!(c["findings"].is_array());
    }
    // Text, and exit 1 when a check fails.
    let bad = live("f1-pf-a-missing-accept-types");
    let out = Command::new(BIN)
        .arg("analyze")
        .arg(&bad.pcap)
        .args(["--figure", "1", "--sut", "pf-a"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("entities inferred from the capture"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("fail") && l.contains("SDP-ACCEPT")),
        "{text}"
    );
    assert!(text.contains("verdict: fail"), "{text}");
}

// ---------------------------------------------------------------------------------------
// show

#[test]
fn ladders_of_the_figures_match_their_snapshots() {
    for (f, name) in FIGS.iter().enumerate() {
        let l = live(name);
        let ladder = Ladder::from_file(&l.pcap, None).unwrap();
        let text = ladder.render();
        // The same ladder with the case's topology given.
        let map = (l.topology.clone(), load_map(&l.topology).unwrap());
        let given = Ladder::from_file(&l.pcap, Some(&map)).unwrap().render();
        assert_eq!(
            given.lines().skip(1).collect::<Vec<_>>(),
            text.lines().skip(1).collect::<Vec<_>>(),
            "figure {}: --map and inferred ladders differ",
            f + 1
        );
        insta::assert_snapshot!(format!("ladder_{name}"), text);
    }
}

/// The ladder shows each REPORT of a reports-success case with the range it reports and its
/// status, as clearly as the SENDs it answers.
#[test]
fn ladder_shows_reports_with_range_and_status() {
    let l = live("f1-pf-b-reports");
    let text = Ladder::from_file(&l.pcap, None).unwrap().render();
    let reports: Vec<&str> = text.lines().filter(|l| l.contains("REPORT")).collect();
    // pf-b1 and pf-b2 report to x for each of their members, and each member to its pf-b.
    assert!(reports.len() >= 6, "{text}");
    assert!(
        reports
            .iter()
            .all(|l| l.contains("(bytes 1-") && l.contains("000 200 OK")),
        "{text}"
    );
}

#[test]
fn two_runs_of_a_case_draw_the_same_ladder() {
    let a = Ladder::from_file(&live("fig1").pcap, None)
        .unwrap()
        .render();
    let b = Ladder::from_file(&live("fig1-again").pcap, None)
        .unwrap()
        .render();
    assert_eq!(a, b);
    // The command prints the file, then the same ladder.
    let out = Command::new(BIN)
        .arg("show")
        .arg(&live("fig1").pcap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let (first, rest) = text.split_once('\n').unwrap();
    assert_eq!(first, live("fig1").pcap.display().to_string());
    assert_eq!(rest.trim_end(), a.trim_end());
}

// ---------------------------------------------------------------------------------------
// diff

fn diff_cli(a: &Path, b: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("diff")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn diff_of_two_runs_of_one_case_is_empty() {
    let (a, b) = (&live("fig1").pcap, &live("fig1-again").pcap);
    let d = diff_files(a, b, None).unwrap();
    assert!(d.is_equal(), "{}", d.render());
    let (code, text) = diff_cli(a, b);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no differences"), "{text}");
}

#[test]
fn diff_names_the_attribute_a_fault_changed() {
    let (a, b) = (
        &live("f1-pf-a").pcap,
        &live("f1-pf-a-missing-accept-types").pcap,
    );
    let d = diff_files(a, b, None).unwrap();
    let changed = d
        .changed
        .iter()
        .find(|c| c.fields.iter().any(|f| f.name == "sdp a=accept-types"))
        .unwrap_or_else(|| panic!("{}", d.render()));
    assert!(changed.key.starts_with("pf-a → "), "{}", d.render());
    let f = changed
        .fields
        .iter()
        .find(|f| f.name == "sdp a=accept-types")
        .unwrap();
    // The fault leaves the attribute empty.
    assert_eq!(f.a.as_deref(), Some("message/cpim"));
    assert_eq!(f.b.as_deref(), Some(""));
    assert_eq!(
        changed.key,
        "pf-a → x INVITE [sip:friends@cf.example.com]",
        "{}",
        d.render()
    );
    // x refuses the offer: the rest of the flow is missing.
    assert!(
        d.missing
            .iter()
            .any(|o| o.key == "x → pf-a 200 (INVITE) [sip:friends@cf.example.com]"),
        "{}",
        d.render()
    );
    assert!(
        d.added
            .iter()
            .any(|o| o.key == "x → pf-a 488 (INVITE) [sip:friends@cf.example.com]"),
        "{}",
        d.render()
    );
    let (code, text) = diff_cli(a, b);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("sdp a=accept-types: `message/cpim` → ``"),
        "{text}"
    );
}

#[test]
fn diff_of_two_figures_shows_moved_and_missing_messages() {
    // FIG 2: x answers only after the first member; FIG 1: at once.
    let d = diff_files(&live("fig1").pcap, &live("fig2").pcap, None).unwrap();
    assert!(
        d.reordered
            .iter()
            .any(|m| m.key == "x → pf-a 200 (INVITE) [sip:friends@cf.example.com]"),
        "{}",
        d.render()
    );
    // FIG 3: every link opened by the INVITE receiver instead of the sender.
    let d = diff_files(&live("fig1").pcap, &live("fig3").pcap, None).unwrap();
    let keys = |v: &[cpm_harness::capture::diff::Only]| {
        v.iter().map(|o| o.key.clone()).collect::<Vec<_>>()
    };
    let (missing, added) = (keys(&d.missing), keys(&d.added));
    assert!(
        missing.contains(&"pf-a → x SYN [sip:friends@cf.example.com]".to_string()),
        "{}",
        d.render()
    );
    assert!(
        added.contains(&"x → pf-a SYN [sip:friends@cf.example.com]".to_string()),
        "{}",
        d.render()
    );
    let (code, _) = diff_cli(&live("fig1").pcap, &live("fig3").pcap);
    assert_eq!(code, 1);
}

// ---------------------------------------------------------------------------------------
// Bad input

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let good = live("fig1").pcap.display().to_string();

    // Unreadable and non-capture files.
    let missing = p("missing.pcap");
    let (code, err) = cli(&["analyze", &missing, "--figure", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&missing), "{err}");
    std::fs::write(p("junk.pcap"), b"this is not a capture").unwrap();
    for cmd in [
        vec!["analyze", "JUNK", "--figure", "1"],
        vec!["show", "JUNK"],
        vec!["diff", "JUNK", "GOOD"],
    ] {
        let args: Vec<String> = cmd
            .iter()
            .map(|a| match *a {
                "JUNK" => p("junk.pcap"),
                "GOOD" => good.clone(),
                a => a.to_string(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = cli(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("junk.pcap") && err.contains("not a pcap or pcapng file"),
            "{err}"
        );
    }

    // A capture without INVITE.
    cpm_harness::capture::write_pcap(
        Path::new(&p("empty.pcap")),
        std::time::SystemTime::now(),
        &[],
    )
    .unwrap();
    for cmd in [&["analyze", "X", "--figure", "1"][..], &["show", "X"][..]] {
        let args: Vec<String> = cmd
            .iter()
            .map(|a| {
                if *a == "X" {
                    p("empty.pcap")
                } else {
                    a.to_string()
                }
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = cli(&args);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("empty.pcap") && err.contains("no SIP INVITE"),
            "{err}"
        );
    }

    // Unknown roles.
    let (code, err) = cli(&["analyze", &good, "--figure", "1", "--sut", "pf-a,pfb"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--sut") && err.contains("unknown role \"pfb\""),
        "{err}"
    );

    // A bad map: YAML errors with a location, and a map of another topology.
    std::fs::write(p("bad.yaml"), "group: [\n").unwrap();
    let (code, err) = cli(&["analyze", &good, "--figure", "1", "--map", &p("bad.yaml")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.yaml:") && err.contains("expected a topology YAML"),
        "{err}"
    );
    let other = cpm_harness::topology::Topology::generate(9, 3, 2, 5060, 2855);
    std::fs::write(p("other.yaml"), other.to_yaml()).unwrap();
    for cmd in [
        vec!["analyze", "G", "--figure", "1", "--map", "M"],
        vec!["show", "G", "--map", "M"],
    ] {
        let args: Vec<String> = cmd
            .iter()
            .map(|a| match *a {
                "G" => good.clone(),
                "M" => p("other.yaml"),
                a => a.to_string(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = cli(&args);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("other.yaml") && err.contains("does not describe"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// A kernel capture

/// A live self-check captured by dumpcap or tcpdump on lo analyses to the live verdicts.
/// Skipped (with a message) when neither tool can capture on lo.
#[test]
fn a_kernel_capture_of_a_live_run_analyzes_the_same() {
    use std::io::{BufRead, BufReader};
    let net = 197u8;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lo.pcapng");
    let filter = format!("net 127.{net}.0.0/16");
    let tools: [(&str, Vec<String>); 2] = [
        (
            "dumpcap",
            vec![
                "-i".into(),
                "lo".into(),
                "-q".into(),
                "-f".into(),
                filter.clone(),
                "-w".into(),
                file.display().to_string(),
            ],
        ),
        (
            "tcpdump",
            vec![
                "-i".into(),
                "lo".into(),
                "-U".into(),
                "-w".into(),
                file.display().to_string(),
                filter.clone(),
            ],
        ),
    ];
    let mut child = None;
    for (tool, args) in tools {
        let Ok(mut c) = Command::new(tool)
            .args(&args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
        else {
            continue;
        };
        // Both say so on stderr once they capture ("Capturing on", "listening on").
        let mut err = BufReader::new(c.stderr.take().unwrap());
        let mut said = String::new();
        let mut line = String::new();
        while err.read_line(&mut line).unwrap_or(0) > 0 {
            said.push_str(&line);
            if line.contains("Capturing on") || line.contains("listening on") {
                break;
            }
            line.clear();
        }
        if said.contains("Capturing on") || said.contains("listening on") {
            // Keep reading its stderr open: it reports on exit, and a closed pipe kills it
            // before it flushes the file.
            child = Some((c, err));
            break;
        }
        let _ = c.kill();
        let _ = c.wait();
        eprintln!("{tool} cannot capture on lo: {}", said.trim());
    }
    let Some((mut child, _stderr)) = child else {
        common::not_run("needs dumpcap or tcpdump capturing on lo");
        return;
    };
    std::thread::sleep(Duration::from_millis(300));
    let s = spec("kernel", 2, &[Role::X], net);
    let case = case_of(&s);
    let profile = Profile::load(Path::new("profiles/reference.yaml")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut st = settings(Vec::new());
    st.capture_dir = Some(dir.path().join("harness"));
    st.work_dir = dir.path().join("work");
    let outcome = rt.block_on(run_retrying(&case, &profile, net, &st));
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the id of a child this test spawned and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    assert_eq!(outcome.verdict, Verdict::Pass, "{:?}", outcome.notes);
    let l = Live {
        pcap: file,
        topology: dir
            .path()
            .join("work")
            .join(file_of(&case))
            .join("topology.yaml"),
        case,
        outcome,
    };
    for with_map in [false, true] {
        let r = analyze(&l, with_map);
        assert!(
            differences(&l, &r).is_empty(),
            "kernel capture ({}): {:#?}",
            if with_map { "--map" } else { "inferred" },
            differences(&l, &r)
        );
        assert!(r.packets > 0);
    }
    // The kernel's view and the harness's own capture draw the same ladder.
    let harness = dir
        .path()
        .join("harness")
        .join(format!("{}.pcap", file_of(&l.case)));
    let d = diff_files(&harness, &l.pcap, None).unwrap();
    assert!(d.is_equal(), "{}", d.render());
}
