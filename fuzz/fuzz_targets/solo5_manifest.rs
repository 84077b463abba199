//! The Solo5 manifest ELF note of an image's kernel: the note parser on the raw bytes, and the
//! whole ELF reader on the bytes as a file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| std::env::temp_dir().join(format!("urunc-fuzz-elf-{}", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    use urunc::monitor::solo5_manifest::{parse_note, read};
    if let Some(devs) = parse_note(data) {
        assert!(devs.len() <= 64);
    }
    std::fs::write(scratch(), data).expect("write the scratch ELF");
    let _ = read(scratch());
});
