//! urunit's channel with a stock kernel and no modules, and the exit-status rules, end to end:
//! the `urunc` binary boots the Debian cloud kernel (`assets/vmlinux`) with an initrd built
//! here holding only urunit and busybox. That kernel builds virtio-console as a module and
//! the 8250 UART in (real-guests.md), so the status can only come over the ISA serial port.
//!
//! Skips (printing why) without the assets, QEMU, busybox or root, unless `CI` is set.

mod assets;
use assets::guest_assets;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

const URUNC: &str = env!("CARGO_BIN_EXE_urunc");
const BUSYBOX: &str = "/bin/busybox";
/// TCG guests are CPU-heavy on two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// One newc cpio record (root-owned); directories and symlinks have their target as body.
fn record(out: &mut Vec<u8>, name: &str, mode: u32, body: &[u8]) {
    let hdr = format!(
        "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
        out.len(),
        mode,
        0,
        0,
        1,
        0,
        body.len(),
        0,
        0,
        0,
        0,
        name.len() + 1,
        0
    );
    out.extend_from_slice(hdr.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(body);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// urunit as /urunit, busybox as /bin/busybox (and /bin/sh), the mount points: no modules.
fn module_less_initrd(assets: &Path) -> Vec<u8> {
    let mut a = Vec::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "run", "etc", "root"] {
        record(&mut a, d, 0o040755, b"");
    }
    record(
        &mut a,
        "urunit",
        0o100755,
        &std::fs::read(assets.join("urunit")).unwrap(),
    );
    record(
        &mut a,
        "bin/busybox",
        0o100755,
        &std::fs::read(BUSYBOX).unwrap(),
    );
    record(&mut a, "bin/sh", 0o120777, b"busybox");
    record(
        &mut a,
        "etc/passwd",
        0o100644,
        b"root:x:0:0:root:/root:/bin/sh\n",
    );
    record(&mut a, "TRAILER!!!", 0, b"");
    a
}

fn busybox_ok() -> bool {
    let ok = Command::new(BUSYBOX)
        .arg("true")
        .output()
        .is_ok_and(|o| o.status.success());
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    assert!(ok || !ci, "these tests need a static {BUSYBOX}");
    if !ok {
        eprintln!("SKIPPED: these tests need a static {BUSYBOX}");
    }
    ok
}

/// `urunc run` of `args` (after /urunit) on `machine`; returns its output and the log.
fn run(assets: &Path, machine: &str, args: &[&str], kernel: Option<&[u8]>) -> (Output, String) {
    run_as(assets, machine, args, kernel, &["PATH=/bin"], 0)
}

fn run_as(
    assets: &Path,
    machine: &str,
    args: &[&str],
    kernel: Option<&[u8]>,
    env: &[&str],
    uid: u32,
) -> (Output, String) {
    let dir = tempfile::Builder::new()
        .prefix("chan-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    match kernel {
        Some(k) => std::fs::write(rootfs.join("vmlinux"), k).unwrap(),
        None => std::fs::copy(assets.join("vmlinux"), rootfs.join("vmlinux"))
            .map(|_| ())
            .unwrap(),
    }
    std::fs::write(rootfs.join("initrd"), module_less_initrd(assets)).unwrap();
    let mut argv = vec!["/urunit"];
    argv.extend_from_slice(args);
    let spec = serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {"terminal": false, "user": {"uid": uid, "gid": uid}, "args": argv,
                    "env": env, "cwd": "/"},
        "root": {"path": "rootfs"},
        "annotations": {
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": "/vmlinux",
            "com.urunc.unikernel.initrd": "/initrd",
            "com.urunc.unikernel.machine": machine,
        },
        "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}]},
    });
    std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
    std::fs::write(
        dir.path().join("urunc.toml"),
        assets::config_toml(dir.path(), "accel = \"tcg\"\ndefault_memory_mb = 256\n"),
    )
    .unwrap();
    let log = dir.path().join("urunc.log");
    let id = format!("chan-{}-{machine}", std::process::id());
    let state = dir.path().join("state");
    let o = Command::new(URUNC)
        .env("URUNC_CONFIG", dir.path().join("urunc.toml"))
        .arg("--root")
        .arg(&state)
        .arg("--log")
        .arg(&log)
        .args(["run", "--bundle"])
        .arg(dir.path())
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new(URUNC)
        .arg("--root")
        .arg(&state)
        .args(["delete", "--force", &id])
        .output();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "--- {machine} {args:?}: {:?}\n{}\n--- stderr:\n{}\n--- log:\n{log}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o, log)
}

#[test]
fn a_stock_kernel_without_modules_reports_the_program_status_on_every_x86_machine() {
    let Some(assets) = guest_assets(&["vmlinux", "urunit"]) else {
        return;
    };
    if !busybox_ok() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for machine in ["pc", "q35", "microvm"] {
        let (o, _) = run(
            &assets,
            machine,
            &["/bin/sh", "-c", "echo ran-on-it; exit 3"],
            None,
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("ran-on-it"));
        assert_eq!(o.status.code(), Some(3), "{machine}");
    }
}

#[test]
fn guest_noise_on_the_channel_does_not_change_the_status() {
    let Some(assets) = guest_assets(&["vmlinux", "urunit"]) else {
        return;
    };
    if !busybox_ok() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // the program (root in the guest) writes 64 KiB of random bytes into the channel itself
    let script = "busybox head -c 65536 /dev/urandom > /dev/ttyS1; exit 4";
    let (o, _) = run(&assets, "pc", &["/bin/sh", "-c", script], None);
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn panic_power_off_and_a_failed_start_are_never_success() {
    let Some(assets) = guest_assets(&["vmlinux", "urunit"]) else {
        return;
    };
    if !busybox_ok() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // a kernel panic (sysrq 'c'): panic=-1 reboots, -no-reboot makes QEMU exit 0
    let (o, log) = run(
        &assets,
        "pc",
        &["/bin/sh", "-c", "echo c > /proc/sysrq-trigger"],
        None,
    );
    assert_eq!(o.status.code(), Some(255));
    assert!(log.contains("without reporting a status"), "{log}");
    // a power-off behind urunit's back: QEMU exits 0, nobody reported a status
    let (o, log) = run(&assets, "pc", &["/bin/busybox", "poweroff", "-f"], None);
    assert_eq!(o.status.code(), Some(255));
    assert!(log.contains("without reporting a status"), "{log}");
    // QEMU cannot load the kernel and exits 1 before any guest runs
    let junk = vec![0x5au8; 1 << 16];
    let (o, log) = run(&assets, "pc", &["/bin/sh", "-c", "exit 0"], Some(&junk));
    assert_ne!(o.status.code(), Some(0));
    assert!(log.contains("monitor failed"), "{log}");
}

/// QEMU facts the supervisor's start gate and status mapping rely on (`supervisor/qmp.rs`,
/// `supervisor/status.rs`), checked on the real QEMU with the same options urunc passes
/// (`monitor/qemu_devices.rs::start_gate`): paused with `-S`, QEMU greets on QMP, answers
/// `cont` only once the guest can run, and exits `(v << 1) | 1` when the guest writes v to
/// isa-debug-exit; with a kernel it cannot load, `cont` is never answered and it exits 1.
#[test]
fn qmp_start_gate_and_isa_debug_exit_on_real_qemu() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    // the generic kernel: the cloud one has no /dev/port (CONFIG_DEVPORT is not set)
    let Some(assets) = guest_assets(&["generic/vmlinux", "urunit"]) else {
        return;
    };
    if !busybox_ok() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::Builder::new()
        .prefix("qmp-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::write(dir.path().join("initrd"), module_less_initrd(&assets)).unwrap();
    std::fs::write(dir.path().join("junk"), vec![0x5au8; 1 << 16]).unwrap();
    // the program writes 3 to port 0xf4 (byte 244 of /dev/port)
    let script = "printf \\\\003 | busybox dd of=/dev/port bs=1 seek=244 ; busybox sleep 60";
    let boot = |kernel: &Path| {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let fd = theirs.as_raw_fd();
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .unwrap();
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-M",
                "pc",
                "-accel",
                "tcg",
                "-m",
                "256M",
                "-nodefaults",
                "-no-user-config",
            ])
            .args(["-display", "none", "-serial", "stdio", "-no-reboot"])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
            .args(["-S", "-chardev", &format!("socket,id=qmp,fd={fd}")])
            .args(["-mon", "chardev=qmp,mode=control", "-kernel"])
            .arg(kernel)
            .arg("-initrd")
            .arg(dir.path().join("initrd"))
            .arg("-append")
            .arg(format!(
                "console=ttyS0 quiet panic=-1 rdinit=/urunit -- /bin/sh -c '{script}'"
            ))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        drop(theirs);
        (ours, child)
    };
    // walks the gate; returns whether `cont` was acknowledged
    let gate = |ours: &UnixStream| {
        let mut rd = BufReader::new(ours.try_clone().unwrap());
        let mut w = ours.try_clone().unwrap();
        let mut line = String::new();
        // the next line that is not an event (QEMU may emit RESUME before answering cont)
        let mut next = |line: &mut String| loop {
            line.clear();
            if rd.read_line(line).unwrap_or(0) == 0 {
                return false;
            }
            eprintln!("qmp: {}", line.trim_end());
            if !line.contains("\"event\"") {
                return true;
            }
        };
        if !next(&mut line) || !line.starts_with("{\"QMP\"") {
            return false;
        }
        // QEMU may already have exited (a kernel it cannot load): the write then fails and the
        // next read sees the end of the stream
        let _ = w.write_all(b"{\"execute\": \"qmp_capabilities\"}\n");
        if !next(&mut line) || !line.starts_with("{\"return\"") {
            return false;
        }
        let _ = w.write_all(b"{\"execute\": \"cont\"}\n");
        next(&mut line) && line.starts_with("{\"return\"")
    };
    let (ours, mut child) = boot(&assets.join("generic/vmlinux"));
    assert!(gate(&ours), "QEMU did not acknowledge cont");
    assert_eq!(child.wait().unwrap().code(), Some((3 << 1) | 1));
    let (ours, mut child) = boot(&dir.path().join("junk"));
    assert!(
        !gate(&ours),
        "cont acknowledged for a kernel QEMU cannot load"
    );
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

/// The old injection (issue #12): environment entries equal to section markers, with blanks,
/// or holding line breaks reach the program as plain variables, and the identity stays.
#[test]
fn marker_lookalikes_in_the_environment_are_plain_variables_in_the_guest() {
    let Some(assets) = guest_assets(&["vmlinux", "urunit"]) else {
        return;
    };
    if !busybox_ok() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = [
        "PATH=/bin",
        "UEE",
        " UAS",
        "UEE\u{2003}",
        "INJ=x\nUEE\nUCS\nUID:0\nGID:0\nUCE",
    ];
    // busybox env as the program prints its environment as given (a shell would drop the
    // entries without `=` from its variables)
    let (o, log) = run_as(&assets, "pc", &["/bin/busybox", "env"], None, &env, 1000);
    let out = String::from_utf8_lossy(&o.stdout).replace('\r', "");
    assert_eq!(o.status.code(), Some(0), "{out}");
    for line in ["UEE", " UAS", "UEE\u{2003}", "INJ=x", "UID:0"] {
        assert!(out.lines().any(|l| l == line), "{line:?} missing: {out}");
    }
    let script = "echo \"uid=$(busybox id -u) gid=$(busybox id -g)\"";
    let (o, _) = run_as(&assets, "pc", &["/bin/sh", "-c", script], None, &env, 1000);
    let out = String::from_utf8_lossy(&o.stdout).replace('\r', "");
    assert!(out.contains("uid=1000 gid=1000"), "{out}");
    // the host said why upstream's urunit would get no environment
    assert!(log.contains("legacy UES format"), "{log}");
}
