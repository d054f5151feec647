//! CPIM: the whole-object parse and the streaming head parse agree (a prefix of a valid
//! object never errors; a complete head gives the same headers and body offset).
#![no_main]
use cpm_harness::codec::cpim::Cpim;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let full = Cpim::parse(data);
    let streamed = Cpim::parse_head(data);
    if let Ok(m) = &full {
        let _ = (m.content_type(), m.header("From"), m.encode());
        let cut = data.len() / 2;
        assert!(Cpim::parse_head(&data[..cut]).is_ok(), "a prefix of a valid object errs");
        match streamed {
            Ok(Some((h, len))) => {
                assert_eq!(h.headers, m.headers);
                assert_eq!(&data[len..], &m.body[..]);
            }
            Ok(None) => panic!("complete object, streaming parse wants more"),
            Err(e) => assert!(data.len() > cpm_harness::codec::cpim::MAX_HEAD, "{e}"),
        }
    }
});
