//! `/etc/urunc/config.toml` text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = urunc::config::Config::parse(text) {
        // every monitor a parsed config names is one urunc knows
        for name in c.monitors.keys() {
            assert!(urunc::config::MONITORS.contains(&name.as_str()));
        }
    }
});
