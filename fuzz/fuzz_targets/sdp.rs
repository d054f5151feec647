//! SDP: the generic parse and the typed MSRP view; what parses re-encodes and parses again
//! to the same path.
#![no_main]
use cpm_harness::codec::sdp::{MsrpSdp, Sdp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Sdp::parse(data) {
        let _ = s.attribute("path");
        for m in &s.media {
            let _ = (m.attribute("setup"), m.has_flag("sendonly"));
        }
        let _ = MsrpSdp::from_sdp(&s);
    }
    if let Ok(m) = MsrpSdp::parse(data) {
        let _ = (m.own_uri(), m.next_hop());
        let again = MsrpSdp::parse(m.encode().as_bytes()).expect("our own encoding parses");
        assert_eq!(again.path, m.path);
    }
});
