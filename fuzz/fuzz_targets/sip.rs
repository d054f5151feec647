//! SIP: the datagram parser, the TCP framer (fed in two pieces, with its limits) and every
//! accessor of what parses. Must never panic; the framer must never buffer past its limit.
#![no_main]
use cpm_harness::codec::sdp::MsrpSdp;
use cpm_harness::codec::sip::{Limits, SipFramer, SipMessage};
use libfuzzer_sys::fuzz_target;

fn touch(m: &SipMessage) {
    let _ = (m.summary(), m.call_id(), m.cseq(), m.from_tag(), m.to_tag());
    let _ = (m.from_uri(), m.to_uri(), m.contact_uri(), m.via_branch());
    let _ = (m.via_sent_by(), m.content_type(), m.request_uri(), m.code());
    if let Some(sdp) = m.sdp_body() {
        let _ = MsrpSdp::parse(&sdp);
    }
    let _ = m.resource_list();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SipMessage::parse(data) {
        touch(&m);
    }
    // Small limits so the fuzzer reaches them.
    let limits = Limits {
        max_message: 4096,
        max_headers: 16,
    };
    let cut = data.first().map(|&b| b as usize % (data.len() + 1)).unwrap_or(0);
    let mut f = SipFramer::new(limits);
    for piece in [&data[..cut], &data[cut..]] {
        f.push(piece);
        loop {
            match f.next() {
                Ok(Some(m)) => touch(&m),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(f.buffered() <= limits.max_message + data.len());
    }
});
