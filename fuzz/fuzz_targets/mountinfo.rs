//! `/proc/self/mountinfo` lines (mount sources and paths come from whoever mounted them).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for m in urunc::storage::mountinfo::parse(&text) {
        let _ = m.to_entry();
    }
    let _ = urunc::storage::mountinfo::at(&text, std::path::Path::new("/"));
    let _ = urunc::storage::mountinfo::block_mount_at(&text, std::path::Path::new("/a/b"));
});
