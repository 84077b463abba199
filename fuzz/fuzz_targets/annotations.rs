//! Spec annotations (untrusted: set by whoever builds the image or the pod) into a
//! UnikernelConfig. Input: a JSON object of strings, as config.json carries them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = serde_json::from_slice::<BTreeMap<String, String>>(data) else {
        return;
    };
    if let Ok(Some(c)) = urunc::unikernel::UnikernelConfig::parse(&m) {
        // what was accepted is bounded and free of control characters where it reaches a
        // command line
        assert!(c.cmdline.len() <= 4096 && !c.cmdline.chars().any(char::is_control));
        assert!(c.binary.len() <= 4096 && !c.binary.split('/').any(|p| p == ".."));
        assert!(!c.unikernel_type.is_empty() && !c.hypervisor.is_empty());
    }
});
