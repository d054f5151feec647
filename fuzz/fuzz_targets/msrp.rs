//! MSRP streaming parser: split invariance (the whole stream, two pieces at a fuzzer-chosen
//! cut, and one-byte reads give the same events and the same error), bounded buffering, and
//! the head accessors of every message.
#![no_main]
use bytes::Bytes;
use cpm_harness::codec::msrp::{Limits, MessageCollector, MsrpEvent, MsrpParser};
use libfuzzer_sys::fuzz_target;

type Outcome = (Vec<MsrpEvent>, Option<String>);

fn run(limits: Limits, pieces: &[&[u8]]) -> Outcome {
    let mut p = MsrpParser::new(limits);
    let mut evs: Vec<MsrpEvent> = Vec::new();
    for piece in pieces {
        p.push(piece);
        loop {
            match p.next() {
                Ok(Some(MsrpEvent::Body(b))) => {
                    // Merge adjacent pieces: their boundaries depend on the reads.
                    if let Some(MsrpEvent::Body(prev)) = evs.last_mut() {
                        let mut v = prev.to_vec();
                        v.extend_from_slice(&b);
                        *prev = Bytes::from(v);
                    } else {
                        evs.push(MsrpEvent::Body(b));
                    }
                }
                Ok(Some(ev)) => evs.push(ev),
                Ok(None) => break,
                Err(e) => return (evs, Some(e.to_string())),
            }
            // A partial head, or a body's possible end-line prefix: never more.
            assert!(p.buffered() <= limits.max_head.max(64) + piece.len());
        }
    }
    (evs, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let limits = if ctl & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_head: 200,
            max_headers: 4,
        }
    };
    let whole = run(limits, &[stream]);
    let cut = (ctl as usize >> 1) * stream.len() / 127;
    let cut = cut.min(stream.len());
    assert_eq!(run(limits, &[&stream[..cut], &stream[cut..]]), whole, "cut {cut}");
    if stream.len() <= 2048 {
        let ones: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(limits, &ones), whole, "one-byte reads");
    }
    let mut c = MessageCollector::new(10240);
    for ev in whole.0 {
        if let MsrpEvent::Head(h) = &ev {
            let _ = (h.to_path(), h.from_path(), h.byte_range(), h.message_id());
            let _ = (h.content_type(), h.method(), h.code());
        }
        if let Ok(Some(m)) = c.feed(ev) {
            let _ = m.encode();
        }
    }
});
