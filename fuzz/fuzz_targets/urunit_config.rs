//! urunit's configuration decoder (what the guest reads from the host): never panics, and
//! whatever it accepts encodes back to a blob that decodes to the same configuration.
#![no_main]
use libfuzzer_sys::fuzz_target;
use urunit_proto::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Config::decode_file(data) {
        let blob = c.encode().expect("a decoded configuration fits the limit");
        assert_eq!(Config::decode(&blob).as_ref(), Ok(&c));
        // the legacy writer must refuse or write text, never panic
        let _ = urunit_proto::encode_file(&c);
    }
});
