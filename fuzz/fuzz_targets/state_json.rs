//! `<root>/<id>/state.json` (written by urunc, but readable and, in a user namespace,
//! writable by the container's root).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = urunc::container::State::parse(data);
});
