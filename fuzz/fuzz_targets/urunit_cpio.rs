//! urunit's newc cpio reader (`init/src/cpio.rs`, included as is), which finds its
//! configuration in a retained initrd.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../init/src/cpio.rs"]
mod cpio;

fuzz_target!(|data: &[u8]| {
    if let Some(body) = cpio::find(data, "urunit.conf") {
        assert!(body.len() <= data.len());
    }
});
