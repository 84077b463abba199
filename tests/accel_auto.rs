//! The automatic acceleration choice end to end: with no accel configured anywhere, a Linux
//! guest boots and prints, `create` logs which accelerator it chose and why, and the second
//! container reuses the cached verdict. On these machines /dev/kvm opens but QEMU crawls (or
//! aborts) on it (reference/test-machine.md), so the choice must be TCG here; on a host with a
//! healthy KVM the same test passes with KVM.

mod assets;
use assets::guest_assets;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const URUNC: &str = env!("CARGO_BIN_EXE_urunc");

/// Runs a guest that prints `marker` with no accel configured; returns the log's lines.
fn run_guest(assets: &Path, dir: &Path, id: &str, marker: &str) -> Vec<serde_json::Value> {
    let bundle = dir.join(id);
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    if std::fs::hard_link(assets.join("vmlinux"), rootfs.join("vmlinux")).is_err() {
        std::fs::copy(assets.join("vmlinux"), rootfs.join("vmlinux")).unwrap();
    }
    std::fs::copy(assets.join("initrd.cpio"), rootfs.join("initrd")).unwrap();
    let spec = serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
            "args": ["/urunit", "/bin/sh", "-c", format!("echo {marker}")],
            "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "annotations": {
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": "/vmlinux",
            "com.urunc.unikernel.initrd": "/initrd",
        },
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    });
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let log = dir.join(format!("{id}.log"));
    let cmd = |args: &[&str]| {
        let mut c = Command::new(URUNC);
        // a config that leaves accel empty: the automatic choice
        c.env("URUNC_CONFIG", dir.join("urunc.toml"))
            .args(["--root", &dir.join("state").display().to_string()])
            .args(["--log", &log.display().to_string(), "--log-format", "json"])
            .arg("--debug")
            .args(args);
        c
    };
    let mut child = cmd(&["run", "--bundle", &bundle.display().to_string(), id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    // a hang guard only: a TCG boot takes seconds, the first one also probes KVM
    let end = Instant::now() + Duration::from_secs(300);
    let mut seen = false;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(marker) => {
                seen = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = cmd(&["delete", "--force", id]).output();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(seen, "the guest did not print {marker}; log: {lines:#?}");
    lines
}

fn accel_line(lines: &[serde_json::Value]) -> String {
    lines
        .iter()
        .filter_map(|l| l["msg"].as_str())
        .find(|m| m.starts_with("accel for qemu: "))
        .unwrap_or_else(|| panic!("no accel line in {lines:#?}"))
        .to_string()
}

#[test]
fn a_guest_boots_with_the_automatic_choice_and_the_verdict_is_cached() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("accel-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::write(
        dir.path().join("urunc.toml"),
        assets::config_toml(dir.path(), "default_memory_mb = 256\n"),
    )
    .unwrap();
    let id = format!("accel-a-{}", std::process::id());
    let first = run_guest(&assets, dir.path(), &id, "AUTO-ACCEL-ONE");
    let choice = accel_line(&first);
    // "accel for qemu: tcg: KVM cannot run this monitor's guests here (...)" or "...: kvm: ..."
    let (accel, why) = choice["accel for qemu: ".len()..]
        .split_once(": ")
        .unwrap_or_else(|| panic!("{choice}"));
    assert!(accel == "kvm" || accel == "tcg", "{choice}");
    assert!(
        why.contains("probe guest"),
        "the reason names the probe: {choice}"
    );
    let cache = dir.path().join("state/.accel");
    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one verdict file for the QEMU binary");
    let id2 = format!("accel-b-{}", std::process::id());
    let second = run_guest(&assets, dir.path(), &id2, "AUTO-ACCEL-TWO");
    assert_eq!(accel_line(&second), choice, "the same verdict");
    assert!(
        second
            .iter()
            .filter_map(|l| l["msg"].as_str())
            .any(|m| m.starts_with("accel: cached KVM verdict")),
        "the second create used the cache: {second:#?}"
    );
}
