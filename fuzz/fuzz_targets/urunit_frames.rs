//! The channel's streaming decoder (the host reads what an untrusted guest writes, the guest
//! what the host writes): never panics, and a valid EXIT after any bytes is always read.
#![no_main]
use libfuzzer_sys::fuzz_target;
use urunit_proto::frame::{Decoder, Message, MAX_ENCODED};

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::default();
    // split at a data-chosen point, so chunk boundaries are exercised too
    let cut = data.first().map_or(0, |b| *b as usize).min(data.len());
    for part in [&data[..cut], &data[cut..]] {
        d.feed(part, |f| {
            if let Ok(f) = f {
                let _ = Message::from_frame(&f);
            }
        });
    }
    let mut buf = [0u8; MAX_ENCODED];
    let n = Message::Exit(42).encode(&mut buf);
    let mut last = None;
    d.feed(&buf[..n], |f| last = f.ok().and_then(|f| Message::from_frame(&f).ok()));
    assert_eq!(last, Some(Message::Exit(42)));
});
