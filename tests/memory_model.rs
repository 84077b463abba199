//! The memory model (deploy/kubernetes/runtimeclass.yaml): a container's memory limit covers
//! the guest *and* its monitor, so the guest gets the limit minus the monitor's overhead
//! (src/monitor/mod.rs) and a RuntimeClass must not add `overhead.podFixed` on top. Proof: a
//! Linux guest under the tightest limit for its RAM fills (touches) its memory, and the host's
//! memory cgroup never OOM-kills the monitor.

mod assets;
use assets::guest_assets;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const URUNC: &str = env!("CARGO_BIN_EXE_urunc");
/// QEMU's overhead under TCG as the runtime counts it: 64 MiB plus the 32 MiB translation
/// cache (src/monitor/mod.rs `overhead_mib`).
const OVERHEAD_MIB: u64 = 64 + 32;
/// Guest RAM: enough for the Debian cloud kernel and the initrd to boot.
const GUEST_MIB: u64 = 160;

#[test]
fn a_guest_filling_its_ram_under_the_tightest_limit_is_not_oom_killed() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let memcg = std::path::Path::new("/sys/fs/cgroup/memory");
    if !memcg.join("memory.limit_in_bytes").exists() {
        // the v1 memory controller is what these machines have (reference/test-machine.md)
        eprintln!(
            "SKIPPED: no cgroup v1 memory controller at {}",
            memcg.display()
        );
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("mem-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    if std::fs::hard_link(assets.join("vmlinux"), rootfs.join("vmlinux")).is_err() {
        std::fs::copy(assets.join("vmlinux"), rootfs.join("vmlinux")).unwrap();
    }
    std::fs::copy(assets.join("initrd.cpio"), rootfs.join("initrd")).unwrap();
    let id = format!("mem-{}", std::process::id());
    let cgroup = format!("/urunc-memtest-{}", std::process::id());
    let limit = (OVERHEAD_MIB + GUEST_MIB) * 1024 * 1024;
    // fill a tmpfs with all the guest's available memory but 12 MiB: with the kernel and the
    // initrd, all of its RAM is then touched
    let script = "a=$(awk '/MemAvailable/ {print int($2 / 1024) - 12}' /proc/meminfo); \
         mkdir -p /fill && mount -t tmpfs -o size=${a}m tmpfs /fill && \
         dd if=/dev/zero of=/fill/x bs=1M count=$a 2>/dev/null; \
         echo FILLED $(du -m /fill/x | cut -f1) MiB, \
         $(grep -E 'MemTotal|MemAvailable' /proc/meminfo | tr -s ' ' | tr '\\n' ' ')";
    let spec = serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
            "args": ["/urunit", "/bin/sh", "-c", script], "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "annotations": {
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": "/vmlinux",
            "com.urunc.unikernel.initrd": "/initrd",
        },
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}],
            "cgroupsPath": cgroup,
            "resources": {"memory": {"limit": limit}},
        },
    });
    std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
    std::fs::write(
        dir.path().join("urunc.toml"),
        assets::config_toml(dir.path(), "accel = \"tcg\"\n"),
    )
    .unwrap();
    let cmd = |args: &[&str]| {
        let mut c = Command::new(URUNC);
        c.env("URUNC_CONFIG", dir.path().join("urunc.toml"))
            .args(["--root", &dir.path().join("state").display().to_string()])
            .args(args);
        c
    };
    struct Cleanup<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Cleanup<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let cg_dir = memcg.join(cgroup.trim_start_matches('/'));
    let _cleanup = Cleanup(|| {
        let _ = cmd(&["delete", "--force", &id]).output();
    });
    // create + start (not run, which deletes the container and its cgroup when it ends): the
    // cgroup's counters are read once the guest has stopped
    let console = std::fs::File::create(dir.path().join("console")).unwrap();
    let bundle = dir.path().display().to_string();
    let log = dir.path().join("log").display().to_string();
    let o = cmd(&["--log", &log, "create", "--bundle", &bundle, &id])
        .stdin(Stdio::null())
        .stdout(console.try_clone().unwrap())
        .stderr(console)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "create failed: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let o = cmd(&["start", &id]).output().unwrap();
    assert!(
        o.status.success(),
        "start: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let end = Instant::now() + Duration::from_secs(300); // a hang guard only
    let state = || {
        let o = cmd(&["state", &id]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["status"].as_str().unwrap_or("").to_string()
    };
    while state() != "stopped" && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(dir.path().join("console")).unwrap_or_default();
    eprintln!("{text}");
    let filled = text
        .lines()
        .find(|l| l.contains("FILLED"))
        .map(str::to_string);
    let oom = std::fs::read_to_string(cg_dir.join("memory.oom_control")).unwrap_or_default();
    let max_usage: u64 = std::fs::read_to_string(cg_dir.join("memory.max_usage_in_bytes"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    eprintln!(
        "cgroup peak {} MiB of a {} MiB limit",
        max_usage >> 20,
        limit >> 20
    );
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let filled = filled
        .unwrap_or_else(|| panic!("the guest did not report filling its memory: {oom}\n{log}"));
    // "FILLED <n> MiB, MemTotal: <kB> kB MemAvailable: <kB> kB": the guest has (almost) no
    // memory left that it has not touched
    let avail_kb: u64 = filled
        .split("MemAvailable:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        avail_kb < 16 * 1024,
        "the guest left memory untouched: {filled}"
    );
    assert!(
        oom.lines().any(|l| l == "oom_kill 0"),
        "the monitor was OOM-killed: {oom}"
    );
    assert!(
        max_usage > GUEST_MIB / 2 * 1024 * 1024 && max_usage <= limit,
        "cgroup peak {max_usage} for a {limit} limit"
    );
}
