//! `urunc exec` into an aarch64 Linux guest (QEMU `-M virt` under TCG), whose urunit channel
//! is a virtio-serial port rather than x86's ISA serial port: output, stdin, status.
//! Needs `scripts/prepare-assets.sh --arm64` (CI builds them); else SKIPPED (CI: fails).

mod assets;
mod exec_guest;
use exec_guest::*;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn exec_into_an_aarch64_guest_over_virtio_serial() {
    let Some(assets) = assets::guest_assets_for(
        "qemu-system-aarch64",
        &["arm64/vmlinux", "arm64/initrd.cpio"],
    ) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (g, rx) = Guest::start_on(&assets, "arm64x", Some("aarch64"));
    assert!(
        wait_line(&rx, "ready", Duration::from_secs(600)),
        "the guest never got ready"
    );
    let o = g.exec(&[&g.id, "/bin/sh", "-c", "echo ARCH=$(uname -m); exit 7"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("ARCH=aarch64"));
    assert_eq!(o.status.code(), Some(7));
    let mut c = g
        .cmd(&["exec", &g.id, "/bin/sh", "-c", "wc -c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&[b'y'; 100_000]).unwrap();
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(wait_timeout(&mut c, Duration::from_secs(300)), Some(0));
    assert!(out.contains("100000"), "{out}");
}
