//! urunit's kernel command line reader (`init/src/cmdline.rs`, included as is).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../init/src/cmdline.rs"]
mod cmdline;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let c = cmdline::parse(s);
        let _ = cmdline::split_args(s);
        assert!(c.args.len() <= s.len() + 1);
    }
});
