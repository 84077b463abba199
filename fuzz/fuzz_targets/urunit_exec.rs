//! Exec frames and specs from an untrusted peer (the host reads what the guest writes; urunit
//! reads the specs the host sends): decoding never panics, and what decodes re-encodes to a
//! frame that decodes to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use urunit_proto::exec::{ExecMsg, Spec};
use urunit_proto::frame::{Decoder, MAX_ENCODED};

fuzz_target!(|data: &[u8]| {
    let _ = Spec::decode(data);
    let mut d = Decoder::default();
    d.feed(data, |f| {
        let Ok(f) = f else { return };
        let Ok(m) = ExecMsg::from_frame(&f) else { return };
        let mut buf = [0u8; MAX_ENCODED];
        let n = m.encode(f.stream, &mut buf).expect("a decoded message re-encodes");
        let mut again = Decoder::default();
        let mut seen = 0;
        again.feed(&buf[..n], |g| {
            let g = g.expect("our own encoding decodes");
            assert_eq!(ExecMsg::from_frame(&g), Ok(m));
            seen += 1;
        });
        assert_eq!(seen, 1);
    });
});
