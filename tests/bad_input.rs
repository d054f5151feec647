//! Bad suite, profile, topology and command-line input through the binary: a clear message
//! (file:line:col where there is a file, what was expected, a did-you-mean for a near miss)
//! and exit code 2 — never a panic. Runs no case (no network).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

/// Runs the binary; returns (exit code, stderr).
fn run(args: &[&str]) -> (i32, String) {
    let o = Command::new(BIN).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    (o.status.code().unwrap_or(-1), err)
}

fn expect(args: &[&str], code: i32, parts: &[&str]) {
    let (c, err) = run(args);
    assert_eq!(c, code, "{args:?}: {err}");
    for p in parts {
        assert!(err.contains(p), "{args:?}: {p:?} not in:\n{err}");
    }
}

#[test]
fn bad_files_and_flags_are_located_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    // Suite: an unknown key, with its line and column and the near miss.
    let suite = w(
        "suite.yaml",
        "about: x\nbase: {}\norderings:\n  in-order:\n    about: y\nsections:\n  - name: s\n    about: z\n    figures: [1]\n    splits: [x]\n    orderngs: [in-order]\n",
    );
    expect(
        &["list", "--suite", &suite],
        2,
        &["suite.yaml:11:5", "orderngs", "did you mean \"orderings\""],
    );
    // Suite: a role name off by one letter.
    let suite2 = w(
        "suite2.yaml",
        "about: x\nbase: {}\norderings:\n  in-order:\n    about: y\nsections:\n  - name: s\n    about: z\n    figures: [1]\n    splits: [pf-c]\n",
    );
    expect(
        &["list", "--suite", &suite2],
        2,
        &["suite2.yaml:", "pf-c", "did you mean"],
    );
    // Profile: a role that does not exist.
    let profile = std::fs::read_to_string("profiles/reference.yaml")
        .unwrap()
        .replace("roles: [client-a, pf-a,", "roles: [client-a, pfa,");
    let profile = w("profile.yaml", &profile);
    expect(
        &["list", "--profile", &profile],
        2,
        &["profile.yaml:", "pfa", "did you mean \"pf-a\""],
    );
    // Profile: a figure out of range in a list is pointed at itself (the `8` on the
    // `figures:` line, column 17), and the location is given once, in front.
    let text = std::fs::read_to_string("profiles/reference.yaml")
        .unwrap()
        .replace("figures: [1, 2, 3, 4, 5, 6, 7]", "figures: [1, 2, 8]");
    let line = 1 + text
        .lines()
        .position(|l| l == "figures: [1, 2, 8]")
        .expect("profiles/reference.yaml has a top-level `figures:` list");
    let profile = w("figures.yaml", &text);
    let (c, err) = run(&["list", "--profile", &profile]);
    assert_eq!(c, 2, "{err}");
    let want = format!("figures.yaml:{line}:17: figures[2]: figure must be 1..7, got 8");
    assert!(err.trim_end().ends_with(&want), "{err}");
    // A misspelt key: its location once.
    let text = std::fs::read_to_string("profiles/reference.yaml")
        .unwrap()
        .replace("\nroles:", "\nrolez:");
    let line = 1 + text.lines().position(|l| l.starts_with("rolez:")).unwrap();
    let profile = w("typo.yaml", &text);
    let (c, err) = run(&["list", "--profile", &profile]);
    assert_eq!(c, 2, "{err}");
    let want = format!("typo.yaml:{line}:1: unknown field `rolez`");
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains(" at line "), "the location twice: {err}");
    // Topology: a misspelt key, and a file that is not YAML.
    let topo = w(
        "topo.yaml",
        "group: sip:g@x\nfactory: sip:f@x\nsender: sip:a@x\nclient-a: { sip: 127.0.0.11:5060, msrp: 127.0.0.11:2855 }\npf-a: { sip: 127.0.0.12:5060, msrp: 127.0.0.12:2855 }\nx: { sip: 127.0.0.13:5060, msrp: 127.0.0.13:2855 }\npf-b: []\nmembres: []\n",
    );
    let (c, err) = run(&[
        "sut",
        "--figure",
        "1",
        "--topology",
        &topo,
        "--timeout",
        "1",
    ]);
    assert_ne!(c, 0);
    assert!(
        err.contains("topo.yaml:8:1") && err.contains("membres"),
        "{err}"
    );
    let junk = w("junk.yaml", "\u{0}\u{1}{{{{[[[: :");
    let (c, err) = run(&[
        "sut",
        "--figure",
        "1",
        "--topology",
        &junk,
        "--timeout",
        "1",
    ]);
    assert_ne!(c, 0);
    assert!(err.contains("junk.yaml"), "{err}");
    // Flags: a role, a fault and a limit off by a letter or two.
    expect(
        &["sut", "--figure", "1", "--roles", "pf-c"],
        1,
        &["pf-c", "did you mean"],
    );
    expect(
        &["sut", "--figure", "1", "--fault", "no-reus"],
        2,
        &["no-reus", "did you mean \"no-reuse\""],
    );
    expect(
        &[
            "run",
            "--filter",
            "nothing-matches",
            "--limit",
            "max-msrp-chunks=5",
        ],
        2,
        &["max-msrp-chunks", "did you mean \"max-msrp-chunk\""],
    );
    expect(
        &["run", "--limit", "max-sip-message=lots"],
        2,
        &["not a positive size"],
    );
    expect(&["sut", "--figure", "9"], 2, &["9"]);
    // A capture that is not one, and one that does not exist.
    let notpcap = w("x.pcap", "this is not a capture at all");
    expect(
        &["analyze", &notpcap, "--figure", "1"],
        2,
        &["x.pcap", "not a pcap or pcapng file"],
    );
    expect(
        &["analyze", "/nonexistent/y.pcap", "--figure", "1"],
        2,
        &["y.pcap"],
    );
}
