//! The pcap/pcapng reader, then what `analyze` and `show` do with the events it returns.
#![no_main]
use cpm_harness::capture::analyze::{analyze_events, Options};
use cpm_harness::capture::ladder::Ladder;
use cpm_harness::capture::read::read_capture_from;
use cpm_harness::config::Variant;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz.pcap");
    let Ok(cap) = read_capture_from(name, data) else {
        return;
    };
    if let Ok(l) = Ladder::from_events(name, &cap.events, None) {
        let _ = l.render();
    }
    let _ = analyze_events(name, &cap.events, &Options::new(Variant::new(1)));
});
