//! `/urunc.json` as an image ships it: the file is written into a scratch rootfs and read the
//! way `create` reads it (inside the rootfs, regular file, bounded, base64 values).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

fn rootfs() -> &'static PathBuf {
    static R: OnceLock<PathBuf> = OnceLock::new();
    R.get_or_init(|| {
        let p = std::env::temp_dir().join(format!("urunc-fuzz-rootfs-{}", std::process::id()));
        std::fs::create_dir_all(&p).expect("scratch rootfs");
        p
    })
}

fuzz_target!(|data: &[u8]| {
    let root = rootfs();
    std::fs::write(root.join("urunc.json"), data).expect("write urunc.json");
    let _ = urunc::unikernel::UnikernelConfig::detect(&BTreeMap::new(), root);
});
