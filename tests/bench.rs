//! `bench` row (b) and its anchors over real loopback sockets: the chain split over worker
//! processes, the set-up anchor (the same sessions with a small message) and the plain TCP
//! fan-out pump (the same bytes with no sessions) over the same split, and the CPU floor
//! computed from what the two anchors measured.

use std::os::unix::process::CommandExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cpm-harness");

fn row<'a>(rows: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row {id} in {rows:#?}"))
}

/// 600 members under a hard limit of 4,000 open files (500 members a process): two worker
/// processes hold the pf-b and members, for the chain and for the pump alike.
#[test]
fn row_b_measures_its_anchors_over_the_same_split() {
    let mut cmd = Command::new(BIN);
    cmd.args(["bench", "--json", "--rows", "b", "--members", "600"]);
    // SAFETY: setrlimit only reads the struct; called in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let r = libc::rlimit {
                rlim_cur: 4000,
                rlim_max: 4000,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let time = row(&rows, "b.600.time");
    let note = time["note"].as_str().unwrap();
    assert!(note.contains("3 processes"), "{note}");
    assert!(!note.contains("NOT DELIVERED"), "{note}");
    let secs = time["value"].as_f64().unwrap();
    let setup = row(&rows, "b.600.setup");
    let setup_note = setup["note"].as_str().unwrap();
    assert!(!setup_note.contains("NOT DELIVERED"), "{setup_note}");
    let pump = row(&rows, "b.600.pump");
    assert!(pump["note"].as_str().unwrap().contains("3 processes"));
    let (setup_s, pump_s) = (
        setup["value"].as_f64().unwrap(),
        pump["value"].as_f64().unwrap(),
    );
    assert!(setup_s > 0.0 && pump_s > 0.0, "{setup} {pump}");
    // The speed ratio is computed from the two times it shows.
    let vs = row(&rows, "b.600.vs-pump");
    assert_eq!(vs["of"][0]["value"].as_f64().unwrap(), secs);
    assert_eq!(vs["of"][1]["value"].as_f64().unwrap(), pump_s);
    assert!((vs["value"].as_f64().unwrap() - pump_s / secs).abs() < 1e-9);
    // The floor is the two anchors' CPU over this machine's CPUs.
    let floor = row(&rows, "b.600.floor");
    let cpu = |i: usize| floor["of"][i]["value"].as_f64().unwrap();
    assert!(cpu(0) > 0.0 && cpu(1) > 0.0, "{floor}");
    let n = std::thread::available_parallelism().unwrap().get() as f64;
    assert!(
        (floor["value"].as_f64().unwrap() - (cpu(0) + cpu(1)) / n).abs() < 1e-9,
        "{floor}"
    );
}
