//! Suites, profiles and the plan: every shipped file loads and agrees with the knobs in
//! `config.rs`; bad files fail with a place and a did-you-mean; the default plan has a
//! reasonable size, unique ids and the profile's skip reasons.

use cpm_harness::config::{AckTiming, Figure, Link, MiddleOpener, Trigger, Variant, XAnswer};
use cpm_harness::engine::plan::{plan, plan_with, DefaultSuite};
use cpm_harness::engine::profile::{
    case_vars, expand, expand_line, Per, Profile, Ready, RunVars, SendTrigger, VARS,
};
use cpm_harness::engine::spec::{case_id, parse_split, proper_splits, split_name, Case};
use cpm_harness::engine::suite::{
    load_figures, solution_number, variant_opener_role, Message, Suite,
};
use cpm_harness::entity::Fault;
use cpm_harness::topology::{Role, Topology};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn suites_dir() -> PathBuf {
    root().join("suites")
}

fn default_suite() -> DefaultSuite {
    DefaultSuite::load(&suites_dir().join("default.yaml")).expect("default.yaml loads")
}

fn reference() -> Profile {
    Profile::load(&root().join("profiles/reference.yaml")).expect("reference.yaml loads")
}

fn fig2_text() -> String {
    std::fs::read_to_string(suites_dir().join("fig2.yaml")).unwrap()
}

// ------------------------------------------------------------------------------- suites

#[test]
fn every_figure_file_loads() {
    let s = load_figures(&suites_dir()).unwrap();
    assert_eq!(
        s.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    for (n, suite) in &s {
        assert_eq!(suite.figure().n(), *n);
        assert!(!suite.title().is_empty());
        assert!(suite.origin().ends_with(&format!("fig{n}.yaml")));
    }
}

/// The suites agree with `Variant::new(n).opener(link)`, `Figure::x_answer()`,
/// `Figure::default_ack()` and `Figure::solution()` for the default knobs, and for solution 3
/// with x as the L2/L3 opener.
#[test]
fn suites_agree_with_the_variant_knobs() {
    let s = load_figures(&suites_dir()).unwrap();
    for (n, suite) in &s {
        let fig = Figure::try_from(*n).unwrap();
        let v = Variant::new(*n);
        for l in Link::all() {
            assert_eq!(
                suite.opener(l),
                variant_opener_role(&v, l),
                "figure {n} {l:?}"
            );
            assert_eq!(suite.opener_for(l, &v), suite.opener(l));
        }
        assert_eq!(suite.x_answer(), fig.x_answer(), "figure {n}");
        assert_eq!(suite.default_ack(), fig.default_ack(), "figure {n}");
        assert_eq!(
            suite.solution(),
            solution_number(fig.solution()),
            "figure {n}"
        );
        let mut vx = Variant::new(*n);
        vx.l23_opener = MiddleOpener::X;
        assert_eq!(suite.has_l23_choice(), suite.solution() == 3, "figure {n}");
        for l in Link::all() {
            assert_eq!(
                suite.opener_for(l, &vx),
                variant_opener_role(&vx, l),
                "figure {n} {l:?} with l23 x"
            );
        }
    }
}

#[test]
fn patent_step_ids_are_present() {
    let s = load_figures(&suites_dir()).unwrap();
    let ids = |n: u8| -> HashSet<String> {
        s[&n]
            .steps()
            .iter()
            .flat_map(|st| [Some(st.id.clone()), st.patent.clone()])
            .flatten()
            .collect()
    };
    for n in [1, 2] {
        for k in 101..=112 {
            assert!(ids(n).contains(&format!("S{k}")), "figure {n} lacks S{k}");
        }
    }
    for n in [3, 4] {
        for k in 201..=204 {
            assert!(ids(n).contains(&format!("S{k}")), "figure {n} lacks S{k}");
        }
    }
    for n in [5, 6, 7] {
        for k in 301..=304 {
            assert!(ids(n).contains(&format!("S{k}")), "figure {n} lacks S{k}");
        }
    }
}

#[test]
fn suite_accessors_read_the_figure() {
    let s = load_figures(&suites_dir()).unwrap();
    let f2 = &s[&2];
    let v = Variant::new(2);
    // L2 is opened by pf-a with 200-2's parameters, on ACK1 by default.
    assert_eq!(f2.opener(Link::L2), Role::PfA);
    assert_eq!(
        f2.params_step(Link::L2, &v).unwrap().message,
        Message::Ok(2)
    );
    assert_eq!(f2.trigger_for(Link::L2, &v), Trigger::OnAck);
    assert_eq!(f2.trigger_step(Link::L2, &v).unwrap().id, "S105");
    let mut v200 = v.clone();
    v200.trigger = Trigger::On200;
    assert_eq!(f2.trigger_step(Link::L2, &v200).unwrap().id, "S103-200-2");
    let mut vsend = v.clone();
    vsend.trigger = Trigger::OnSend;
    assert_eq!(f2.trigger_step(Link::L2, &vsend).unwrap().id, "S105-SEND");
    // client-a opens L1 on 200-1 whatever the PF trigger.
    assert_eq!(f2.trigger_for(Link::L1, &vsend), Trigger::On200);
    // 200-2 waits for 200-3 in FIG 2.
    let pre: Vec<&str> = f2
        .predecessors("S103-200-2", &v)
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(pre, vec!["S102", "S109"]);
    // ACK2 waits for ACK1 under after-upstream-ack, not under on-200.
    let pre: Vec<&str> = f2
        .predecessors("S106", &v)
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(pre, vec!["S103-200-2", "S105"]);
    let mut v_on200 = v.clone();
    v_on200.ack = Some(AckTiming::On200);
    assert_eq!(f2.predecessors("S106", &v_on200).len(), 1);
    // What x sends in FIG 2.
    let xs: Vec<String> = f2
        .steps_of(Role::X, &v)
        .iter()
        .map(|s| s.message.to_string())
        .collect();
    assert_eq!(xs, vec!["200-2", "INVITE3", "ACK3", "L3-open", "SEND"]);

    // Solution 3: the l23 alternative swaps steps and rules.
    let f6 = &s[&6];
    let mut vx = Variant::new(6);
    vx.l23_opener = MiddleOpener::X;
    assert_eq!(f6.opener_for(Link::L2, &vx), Role::X);
    assert_eq!(f6.open_step(Link::L2, &vx).unwrap().id, "F6-L2-by-x");
    assert!(f6.steps_for(&vx).iter().all(|s| s.id != "S302"));
    assert_eq!(f6.trigger_step(Link::L2, &vx).unwrap().id, "F6-ACK2");
    assert_eq!(
        f6.params_step(Link::L3, &vx).unwrap().message,
        Message::Ok(3)
    );
    let pre: Vec<&str> = f6
        .predecessors("F6-SEND-L2", &vx)
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(pre, vec!["F6-L2-by-x", "S301-SEND"]);
    assert_eq!(f6.ack_allowed(), &[AckTiming::AfterUpstreamAck]);
    assert_eq!(s[&7].x_answer(), XAnswer::AtOnce);
}

fn suite_err(text: &str) -> String {
    Suite::parse(text, "bad.yaml").unwrap_err().to_string()
}

#[test]
fn unknown_key_names_the_place_and_a_near_name() {
    let t = fig2_text().replacen("x-answer:", "x-anwser:", 1);
    let e = suite_err(&t);
    let line = t.lines().position(|l| l.starts_with("x-anwser")).unwrap() + 1;
    assert!(e.starts_with(&format!("bad.yaml:{line}:1")), "{e}");
    assert!(e.contains("did you mean \"x-answer\""), "{e}");

    // Inside a step.
    let t = fig2_text().replacen("carries-params-of: x", "carries-param-of: x", 1);
    let e = suite_err(&t);
    assert!(e.starts_with("bad.yaml:"), "{e}");
    assert!(e.contains("did you mean \"carries-params-of\""), "{e}");
}

#[test]
fn bad_role_name_is_placed_and_hinted() {
    let t = fig2_text().replacen(
        "from: pf-a, to: x, after: [S101]",
        "from: pfa, to: x, after: [S101]",
        1,
    );
    let e = suite_err(&t);
    let line = t.lines().position(|l| l.contains("from: pfa")).unwrap() + 1;
    assert!(e.starts_with(&format!("bad.yaml:{line}:")), "{e}");
    assert!(e.contains("did you mean \"pf-a\""), "{e}");

    // A role on the wrong side of a message.
    let t = fig2_text().replacen(
        "message: INVITE2, from: pf-a, to: x",
        "message: INVITE2, from: x, to: pf-a",
        1,
    );
    let e = suite_err(&t);
    assert!(e.contains("step S102"), "{e}");
    assert!(e.contains("from pf-a to x"), "{e}");
}

#[test]
fn bad_link_and_message_names() {
    let t = fig2_text().replacen("  L4: {", "  L5: {", 1);
    let e = suite_err(&t);
    assert!(e.starts_with("bad.yaml:"), "{e}");
    assert!(e.contains("L5"), "{e}");

    let t = fig2_text().replacen("message: INVITE2,", "message: INVTE2,", 1);
    let e = suite_err(&t);
    assert!(e.contains("step S102"), "{e}");
    assert!(e.contains("did you mean \"INVITE2\""), "{e}");
}

#[test]
fn dangling_after_names_the_step() {
    let t = fig2_text().replacen("after: [S101]", "after: [S1O1]", 1);
    let e = suite_err(&t);
    let line = t.lines().position(|l| l.contains("id: S102,")).unwrap() + 1;
    assert!(e.starts_with(&format!("bad.yaml:{line}:")), "{e}");
    assert!(e.contains("step S102"), "{e}");
    assert!(e.contains("unknown step \"S1O1\""), "{e}");
    assert!(e.contains("did you mean \"S101\""), "{e}");
}

#[test]
fn a_cycle_is_named() {
    // S101 after S104, which (through S103-200-2 and S102) comes after S101.
    let t = fig2_text().replacen(
        "{ id: S101, message: INVITE1, from: client-a, to: pf-a }",
        "{ id: S101, message: INVITE1, from: client-a, to: pf-a, after: [S104] }",
        1,
    );
    let e = suite_err(&t);
    assert!(e.contains("cycle"), "{e}");
    assert!(e.contains("S101") && e.contains("S104"), "{e}");
    assert!(e.contains(" → "), "{e}");
}

#[test]
fn links_must_match_the_steps() {
    // The opener must be an end of the link.
    let t = fig2_text().replacen("L2: { opener: pf-a", "L2: { opener: pf-b", 1);
    let e = suite_err(&t);
    assert!(e.contains("link L2") && e.contains("not an end"), "{e}");
    // The parameters must come in a message to the opener that carries the peer's.
    let t = fig2_text().replacen("params-from: 200-2", "params-from: 200-1", 1);
    let e = suite_err(&t);
    assert!(
        e.contains("link L2") && e.contains("params-from 200-1"),
        "{e}"
    );
    // x-answer must agree with the steps.
    let t = fig2_text().replacen("x-answer: after-first-member", "x-answer: at-once", 1);
    let e = suite_err(&t);
    assert!(e.contains("x-answer is at-once"), "{e}");
    // A figure number out of range.
    let t = fig2_text().replacen("figure: 2", "figure: 8", 1);
    assert!(suite_err(&t).contains("figure must be 1..7"));
}

#[test]
fn two_files_for_one_figure_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fig2.yaml"), fig2_text()).unwrap();
    std::fs::write(dir.path().join("fig2b.yaml"), fig2_text()).unwrap();
    let e = load_figures(dir.path()).unwrap_err().to_string();
    assert!(e.contains("already defined"), "{e}");
}

// ------------------------------------------------------------------------------- plan

#[test]
fn default_plan_size_and_unique_ids() {
    let p = plan(&suites_dir(), &default_suite(), &reference()).unwrap();
    let n = p.cases.len();
    assert!((100..=400).contains(&n), "{n} cases");
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    let ids: HashSet<&str> = p.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), n, "case ids are unique");
    // Every figure, every single role, the network and the self-check appear.
    for f in 1..=7u8 {
        for split in [
            "client-a",
            "pf-a",
            "x",
            "pf-b",
            "client-b",
            "pf-a+x+pf-b",
            "none",
        ] {
            assert!(
                p.cases.iter().any(|c| c.figure == f && c.split() == split),
                "F{f} {split}"
            );
        }
    }
    // Every ordering choice is used.
    let used: HashSet<&str> = p.cases.iter().map(|c| c.ordering.as_str()).collect();
    for o in default_suite().orderings.keys() {
        assert!(used.contains(o.as_str()), "ordering {o} unused");
    }
    // Ids read as documented.
    assert!(ids.contains("F2/x/on-ack/udp/new/sdp/predefined/in-order"));
    assert!(ids.contains("F2/pf-a+x+pf-b/on-ack/tcp/new/sdp/predefined/in-order"));
    assert!(ids.contains("F6/x/on-ack/x-on-send/l23-x/udp/new/sdp/predefined/pause"));
    // Each case is what its id says.
    for c in &p.cases {
        assert_eq!(c.id, case_id(&c.variant, &c.sut, &c.ordering));
        assert_eq!(c.variant.figure.n(), c.figure);
    }
}

#[test]
fn plan_covers_each_knob_value_per_figure() {
    let p = plan(&suites_dir(), &default_suite(), &reference()).unwrap();
    let any =
        |f: u8, pred: &dyn Fn(&Case) -> bool| p.cases.iter().any(|c| c.figure == f && pred(c));
    for f in 1..=7u8 {
        assert!(any(f, &|c| c.variant.transport
            == cpm_harness::codec::sip::Transport::Tcp));
        assert!(any(f, &|c| c.variant.reuse));
        assert!(any(f, &|c| c.variant.setup
            == cpm_harness::config::SetupMode::Preset));
        assert!(any(f, &|c| c.variant.group
            == cpm_harness::config::GroupKind::Adhoc));
        assert!(any(f, &|c| c.ordering == "pause"));
    }
    for f in [1, 2, 5, 6, 7] {
        for t in [Trigger::On200, Trigger::OnAck, Trigger::OnSend] {
            assert!(
                any(f, &|c| c.variant.trigger == t && c.is_sut(Role::PfA)),
                "F{f} {t:?}"
            );
        }
    }
    for f in [5, 6, 7] {
        assert!(any(f, &|c| c.variant.l23_opener == MiddleOpener::X
            && c.is_sut(Role::X)));
    }
}

#[test]
fn irrelevant_knobs_merge_into_one_case() {
    let p = plan(&suites_dir(), &default_suite(), &reference()).unwrap();
    for c in &p.cases {
        // Solution 2: receivers open on the ACK; the trigger knobs never show in an id.
        if matches!(c.figure, 3 | 4) && !c.is_self_check() {
            assert_eq!(c.variant.trigger, Trigger::OnAck, "{}", c.id);
            assert_eq!(c.variant.x_trigger, None, "{}", c.id);
        }
        // A split without pf-a/pf-b keeps the base PF trigger.
        if !c.is_sut(Role::PfA) && !c.is_sut(Role::PfB) && !c.is_self_check() {
            assert_eq!(c.variant.trigger, Trigger::OnAck, "{}", c.id);
        }
    }
}

#[test]
fn ordering_choices_apply_only_where_they_can_bite() {
    let p = plan(&suites_dir(), &default_suite(), &reference()).unwrap();
    for c in &p.cases {
        match c.ordering.as_str() {
            "ack-after-send" => {
                assert!(!c.is_sut(Role::ClientA));
                assert!(!matches!(c.figure, 3 | 4), "{}", c.id);
                assert!(c.holds.ack_after_first_send);
            }
            "x-answer-before-invites" => {
                assert!(matches!(c.figure, 1 | 3 | 7), "{}", c.id);
                assert!(!c.is_sut(Role::X));
            }
            "pause" => assert!(c.pause().as_millis() >= 200),
            "in-order" => assert_eq!(c.pause().as_millis(), 0),
            _ => {}
        }
    }
}

fn profile_from(yaml: &str) -> Profile {
    Profile::parse(yaml, "p.yaml", Path::new(".")).unwrap()
}

const LAUNCH: &str =
    "launch:\n  command: \"sut --roles {roles}\"\n  ready: { stdout-line: ready }\n";

#[test]
fn profile_filters_with_reasons() {
    let prof = profile_from(&format!(
        "name: limited\nroles: [x, pf-b]\nfigures: [1, 2, 5]\ntriggers: [on-ack]\n\
         x-triggers: [on-ack, on-200]\nreuse: [false]\ntransports: [udp]\n{LAUNCH}"
    ));
    let p = plan(&suites_dir(), &default_suite(), &prof).unwrap();
    let reason = |id: &str| -> Option<String> {
        p.skipped
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, r)| r.clone())
    };
    assert_eq!(
        reason("F2/client-a/on-ack/udp/new/sdp/predefined/in-order").as_deref(),
        Some("profile does not play role client-a")
    );
    assert_eq!(
        reason("F3/x/on-ack/udp/new/sdp/predefined/in-order").as_deref(),
        Some("profile does not implement figure 3")
    );
    assert_eq!(
        reason("F2/pf-b/on-send/udp/new/sdp/predefined/pause").as_deref(),
        Some("profile does not implement trigger on-send")
    );
    assert_eq!(
        reason("F1/x/on-ack/x-on-send/udp/new/sdp/predefined/pause").as_deref(),
        Some("profile does not implement x-trigger on-send")
    );
    assert_eq!(
        reason("F2/x/on-ack/udp/reuse/sdp/predefined/in-order").as_deref(),
        Some("profile does not implement reuse on")
    );
    assert_eq!(
        reason("F2/pf-a+x+pf-b/on-ack/tcp/new/sdp/predefined/in-order").as_deref(),
        Some("profile does not play role pf-a")
    );
    // What remains is runnable by the profile; the self-check is not a SUT's (it belongs to
    // `selftest` and the reference profile, `self-check: true`), not even as skipped.
    let ids: HashSet<&str> = p.cases.iter().map(|c| c.id.as_str()).collect();
    assert!(ids.contains("F2/x/on-ack/udp/new/sdp/predefined/in-order"));
    assert!(ids.contains("F1/x/on-ack/x-on-200/udp/new/sdp/predefined/pause"));
    assert!(!ids.contains("F3/none/on-ack/udp/new/sdp/predefined/in-order"));
    assert!(p.skipped.iter().all(|(id, _)| !id.contains("/none/")));
    for c in &p.cases {
        assert!(
            c.sut.iter().all(|r| matches!(r, Role::X | Role::PfB)),
            "{}",
            c.id
        );
        assert!(
            c.is_self_check() || matches!(c.figure, 1 | 2 | 5),
            "{}",
            c.id
        );
    }
    // Nothing is lost: run + skipped = the reference plan without its self-check.
    let full = plan(&suites_dir(), &default_suite(), &reference()).unwrap();
    let self_check = full.cases.iter().filter(|c| c.is_self_check()).count();
    assert!(self_check > 0);
    assert_eq!(
        p.cases.len() + p.skipped.len(),
        full.cases.len() - self_check
    );
}

#[test]
fn profile_splits_restrict_role_combinations() {
    let prof = profile_from(&format!(
        "name: net\nroles: [pf-a, x, pf-b]\nsplits: [network]\n{LAUNCH}"
    ));
    let p = plan(&suites_dir(), &default_suite(), &prof).unwrap();
    assert!(p
        .cases
        .iter()
        .all(|c| c.is_self_check() || c.split() == "pf-a+x+pf-b"));
    assert!(p
        .skipped
        .iter()
        .any(|(id, r)| id.starts_with("F1/x/") && r == "profile does not run the split x"));
}

#[test]
fn all_proper_splits_enumerate_thirty() {
    let splits = proper_splits();
    assert_eq!(splits.len(), 30);
    let names: HashSet<String> = splits.iter().map(|s| split_name(s)).collect();
    assert_eq!(names.len(), 30);
    assert!(!names.contains("none"));
    assert!(!names.contains("client-a+pf-a+x+pf-b+client-b"));
    assert_eq!(parse_split("all-proper").unwrap(), splits);
    // By size: 5 singles, 10 pairs, 10 triples, 5 quadruples.
    let sizes: Vec<usize> = (1..=4)
        .map(|k| splits.iter().filter(|s| s.len() == k).count())
        .collect();
    assert_eq!(sizes, vec![5, 10, 10, 5]);

    // A matrix over all-proper splits.
    let d = DefaultSuite::parse(
        "orderings: { in-order: {} }\nsections:\n  - name: all\n    figures: [2]\n    splits: [all-proper]\n",
        "d.yaml",
    )
    .unwrap();
    let suites = load_figures(&suites_dir()).unwrap();
    let p = plan_with(suites, &d, &reference()).unwrap();
    assert_eq!(p.cases.len(), 30);
}

#[test]
fn default_suite_errors_are_placed() {
    let e = DefaultSuite::parse(
        "orderings: { in-order: {} }\nsections:\n  - name: a\n    splits: [pfa]\n",
        "d.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("d.yaml:3:"), "{e}");
    assert!(e.contains("did you mean \"pf-a\""), "{e}");
    let e = DefaultSuite::parse(
        "orderings: { in-order: {} }\nsections:\n  - name: a\n    orderings: [in-ordr]\n",
        "d.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("did you mean \"in-order\""), "{e}");
    let e = DefaultSuite::parse(
        "orderings: { in-order: { holds: { ack-dealy: 5 } } }\nsections: []\n",
        "d.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("d.yaml:1:"), "{e}");
    assert!(e.contains("did you mean \"ack-delay\""), "{e}");
    let e = DefaultSuite::parse(
        "orderings: {}\nsections:\n  - name: a\n    variants: [{ triger: on-200 }]\n",
        "d.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("d.yaml:4:"), "{e}");
    assert!(e.contains("did you mean \"trigger\""), "{e}");
}

// ------------------------------------------------------------------------------- profiles

#[test]
fn reference_profile_expands_to_the_sut_command() {
    let prof = reference();
    let launch = prof.launch.as_ref().unwrap();
    assert_eq!(launch.per, Per::Case);
    assert_eq!(launch.ready, Ready::StdoutLine("ready".into()));
    assert_eq!(launch.ready_timeout.as_millis(), 5000);
    assert_eq!(
        prof.trigger,
        Some(SendTrigger::StdinLine("send {size}".into()))
    );

    let p = plan(&suites_dir(), &default_suite(), &prof).unwrap();
    let case = p
        .cases
        .iter()
        .find(|c| c.id == "F1/x/on-ack/udp/reuse/sdp/predefined/in-order")
        .unwrap();
    let topo = Topology::default_chain();
    let faults = [Fault::NoReuse];
    let run = RunVars {
        exe: Path::new("/bin/cpm-harness"),
        topology_path: Path::new("/tmp/t.yaml"),
        out_dir: Path::new("/tmp/out"),
        size: 1000,
        faults: &faults,
    };
    let argv = prof.launch_argv(case, &run, &topo).unwrap().unwrap();
    // The run's TLS material (the per-run CA), written once per process.
    let tls_dir = cpm_harness::driver::tls::shared_dir().unwrap();
    assert!(tls_dir.join("ca.pem").is_file() && tls_dir.join("ca.key").is_file());
    let want = format!(
        "/bin/cpm-harness sut --topology /tmp/t.yaml --roles x --figure 1 \
        --trigger on-ack --x-trigger on-ack --l23 pf --ack after-ack --setup sdp --transport udp \
        --group predefined --chunk-size 2048 --msrp-transport tcp --tls-dir {} --reuse \
        --out-dir /tmp/out --invite-timeout-ms 1000 --fault no-reuse",
        tls_dir.display()
    );
    let want: Vec<&str> = want.split_whitespace().collect();
    assert_eq!(argv, want);
    let vars = case_vars(case, &run);
    for k in VARS {
        assert!(vars.contains_key(*k), "{k}");
    }
    assert_eq!(
        expand_line("send {size}", &vars, &topo).unwrap(),
        "send 1000"
    );

    // No reuse, no faults: the flags vanish.
    let case = p
        .cases
        .iter()
        .find(|c| {
            c.id == "F2/network/on-ack/udp/new/sdp/predefined/in-order"
                .replace("network", "pf-a+x+pf-b")
        })
        .unwrap();
    let run = RunVars { faults: &[], ..run };
    let argv = prof.launch_argv(case, &run, &topo).unwrap().unwrap();
    assert!(!argv
        .iter()
        .any(|a| a == "--reuse" || a == "--fault" || a.is_empty()));
    assert!(argv.windows(2).any(|w| w == ["--roles", "pf-a,x,pf-b"]));
}

#[test]
fn unknown_placeholder_is_named_with_a_hint() {
    let e = Profile::parse(
        "name: a\nroles: [x]\nlaunch:\n  command: \"run {topolgy} {x.sip}\"\n  ready: { port: \"{x.sip}\" }\n",
        "p.yaml",
        Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("p.yaml:4:"), "{e}");
    assert!(e.contains("{topolgy}"), "{e}");
    assert!(e.contains("did you mean \"topology\""), "{e}");

    let e = Profile::parse(
        "name: a\nroles: [x]\nlaunch:\n  command: \"run\"\n  ready: { port: \"{x.sipp}\" }\n",
        "p.yaml",
        Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("did you mean \"x.sip\""), "{e}");

    // At expansion time too.
    let topo = Topology::default_chain();
    let e = expand(
        "a {figrue}",
        &BTreeMap::from([("figure".to_string(), "2".to_string())]),
        &topo,
    )
    .unwrap_err();
    assert!(
        e.contains("{figrue}") && e.contains("did you mean \"figure\""),
        "{e}"
    );
    // Per-run launches cannot use per-case placeholders.
    let e = Profile::parse(
        "name: a\nroles: [x]\nlaunch:\n  command: \"run {figure}\"\n  ready: { stdout-line: ok }\n  per: run\n",
        "p.yaml",
        Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("per: run"), "{e}");
}

#[test]
fn profile_shape_errors() {
    let bad = |y: &str| {
        Profile::parse(y, "p.yaml", Path::new("."))
            .unwrap_err()
            .to_string()
    };
    // Unknown key, with a hint.
    let e = bad(&format!("name: a\nrole: [x]\n{LAUNCH}"));
    assert!(e.starts_with("p.yaml:2:1"), "{e}");
    assert!(e.contains("did you mean \"roles\""), "{e}");
    // Bad role name.
    let e = bad(&format!("name: a\nroles: [pfb]\n{LAUNCH}"));
    assert!(e.starts_with("p.yaml:2:"), "{e}");
    assert!(e.contains("did you mean \"pf-b\""), "{e}");
    // Neither addresses nor launch.
    assert!(bad("name: a\nroles: [x]\n")
        .contains("give `launch` (how to start the SUT) or `addresses`"));
    // client-a without a trigger.
    assert!(bad(&format!("name: a\nroles: [client-a]\n{LAUNCH}")).contains("trigger"));
    // Two readiness conditions.
    let e = bad("name: a\nroles: [x]\nlaunch:\n  command: run\n  ready: { stdout-line: r, port: \"{x.sip}\" }\n");
    assert!(e.contains("exactly one of stdout-line, port"), "{e}");
    // addresses: a fixed topology, loaded relative to the profile.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.yaml"),
        Topology::default_chain().to_yaml(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "name: fixed\nroles: [x]\naddresses: t.yaml\n",
    )
    .unwrap();
    let p = Profile::load(&dir.path().join("p.yaml")).unwrap();
    assert_eq!(p.addresses.as_ref().unwrap().1, Topology::default_chain());
    assert!(p.launch.is_none());
}

#[test]
fn self_check_needs_no_profile() {
    let p = plan(&suites_dir(), &default_suite(), &Profile::harness_only()).unwrap();
    assert!(!p.cases.is_empty());
    assert!(p.cases.iter().all(Case::is_self_check));
    assert!(p
        .skipped
        .iter()
        .all(|(_, r)| r.starts_with("profile does not play role")));
}

#[test]
fn plan_fails_on_a_missing_figure_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fig2.yaml"), fig2_text()).unwrap();
    let d = DefaultSuite::parse(
        "orderings: { in-order: {} }\nsections:\n  - name: a\n    figures: [3]\n",
        "d.yaml",
    )
    .unwrap();
    let e = plan(dir.path(), &d, &reference()).unwrap_err().to_string();
    assert!(e.contains("no suite file for figure 3"), "{e}");
}

/// The run starts the cases with the longest own waits first: a member that never answers
/// (the SUT's give-up timer), then the discriminating pause, then the cases without either.
#[test]
fn expected_waits_order_the_default_suite() {
    let p = plan(&suites_dir(), &default_suite(), &reference()).unwrap();
    let wait = |end: &str| {
        let w: Vec<_> = p
            .cases
            .iter()
            .filter(|c| c.id.ends_with(end))
            .map(|c| c.expected_wait())
            .collect();
        assert!(!w.is_empty(), "no case ending {end}");
        (*w.iter().min().unwrap(), *w.iter().max().unwrap())
    };
    let (never, _) = wait("/member-never-answers");
    let (pause_min, pause_max) = wait("/pause");
    let (_, in_order) = wait("/in-order");
    assert!(never > pause_max, "{never:?} vs {pause_max:?}");
    assert!(pause_min > in_order, "{pause_min:?} vs {in_order:?}");
}
