//! An aarch64 Linux guest emulated on the host (QEMU `-M virt` under TCG), through the real
//! `urunc` binary: the arm64 Debian cloud kernel with an initrd holding an aarch64 urunit and
//! busybox, from `scripts/prepare-assets.sh --arm64`. The annotation
//! `com.urunc.unikernel.arch=aarch64` asks for the foreign architecture.
//!
//! `scripts/test.sh` (and so CI) builds the arm64 assets; a plain `prepare-assets.sh` does not.
//! Missing assets, `qemu-system-aarch64` or root: SKIPPED, or a failure under `CI`
//! (`tests/assets/mod.rs`).

mod assets;
use std::process::{Command, Stdio};
use std::time::Instant;

const URUNC: &str = env!("CARGO_BIN_EXE_urunc");

#[test]
fn aarch64_guest_output_and_exit_status_through_urunit() {
    let Some(assets) = assets::guest_assets_for(
        "qemu-system-aarch64",
        &["arm64/vmlinux", "arm64/initrd.cpio"],
    ) else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("guest-arm64-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    if std::fs::hard_link(assets.join("arm64/vmlinux"), rootfs.join("vmlinux")).is_err() {
        std::fs::copy(assets.join("arm64/vmlinux"), rootfs.join("vmlinux")).unwrap();
    }
    // copied: the runtime appends urunit.conf to it
    std::fs::copy(assets.join("arm64/initrd.cpio"), rootfs.join("initrd")).unwrap();
    let script = "echo \"ARCH=$(uname -m) MSG=[$MSG] ARG=[$1]\"; exit 5";
    let spec = serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/urunit", "/bin/sh", "-c", script, "sh", "two  words"],
            "env": ["PATH=/bin", "MSG=hello arm64"],
            "cwd": "/",
        },
        "root": {"path": "rootfs"},
        "hostname": "guest",
        "annotations": {
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": "/vmlinux",
            "com.urunc.unikernel.initrd": "/initrd",
            "com.urunc.unikernel.arch": "aarch64",
        },
        "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]},
    });
    std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
    std::fs::write(
        dir.path().join("urunc.toml"),
        assets::config_toml(dir.path(), "accel = \"tcg\"\ndefault_memory_mb = 256\n"),
    )
    .unwrap();
    let id = format!("arm64-{}", std::process::id());
    let urunc = |args: &[&str]| {
        let mut c = Command::new(URUNC);
        c.env("URUNC_CONFIG", dir.path().join("urunc.toml"))
            .arg("--root")
            .arg(dir.path().join("state"))
            .args(args)
            .stdin(Stdio::null());
        c
    };
    let t = Instant::now();
    let o = urunc(&["run", "--bundle", &dir.path().display().to_string(), &id])
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    let _ = urunc(&["delete", "--force", &id]).output();
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!(
        "--- aarch64 guest output ({elapsed:?}):\n{out}\n--- stderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("ARCH=aarch64 MSG=[hello arm64] ARG=[two  words]"),
        "{out}"
    );
    assert_eq!(
        o.status.code(),
        Some(5),
        "urunc run must return the program's status (urunit's EXIT over urunc.urunit)"
    );
}
