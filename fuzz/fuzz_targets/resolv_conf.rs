//! resolv.conf text (the engine's, or one an image's bind mount names).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = urunc::net::dns::parse(&text);
    let _ = urunc::net::dns::search_and_options(&text);
});
