//! QEMU itself validates every QEMU plan: each guest type x machine type x architecture urunc
//! generates (pc, q35, microvm; aarch64 virt), with and without network, volumes, root block,
//! initrd, 9p and urunit's channel, is started as the real `qemu-system-*` with the plan's argv
//! plus `-S` (no guest code runs) and a QMP monitor on an inherited socket. The test waits for
//! QMP's greeting (sent once the machine is built, so every device and option was accepted),
//! checks the VM is paused in `prelaunch`, sends `quit` and requires a clean exit. No sleeping.
//!
//! The fds a plan names are provided for real: a tap created in a private network namespace
//! (one thread unshares it), an image file for `-add-fd` blocks, a socketpair end for the
//! channel. Kernels are the tiny guests of tests/tiny_guests (built with binutils), so QEMU's
//! loaders (multiboot, PVH, arm64 Image) accept them as they would a real guest. Not covered:
//! virtio-fs (its vhost-user socket needs a running virtiofsd, which is not packaged here).
//!
//! Needs root and QEMU: SKIPPED without them, or a failure when `CI` is set.

#[path = "../../tests/tiny_guests/make.rs"]
#[allow(dead_code)]
mod make;

use super::build;
use crate::plan::fixture::{block, input, net};
use crate::plan::{Arch, LaunchPlan, PlanInput, SharedFs, SharedFsKind};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The fd numbers the fixture's plans name, and the QMP socket's.
const TAP_FD: RawFd = 3;
const BLOCK_FD: RawFd = 4;
const CHANNEL_FD: RawFd = 5;
const QMP_FD: RawFd = 6;
/// Only guards against a hang; QEMU reaches `prelaunch` in well under a second.
const HANG: Duration = Duration::from_secs(120);

/// The files and fds the plans refer to.
struct World {
    dir: tempfile::TempDir,
    tap: OwnedFd,
    block_file: std::fs::File,
}

fn skip_or_fail(why: &str) -> Option<World> {
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    assert!(!ci, "{why}");
    eprintln!("SKIPPED: {why}");
    None
}

fn world() -> Option<World> {
    if !nix::unistd::geteuid().is_root() {
        return skip_or_fail("validating QEMU plans needs root (a tap)");
    }
    for q in ["qemu-system-x86_64", "qemu-system-aarch64"] {
        if Command::new(q).arg("--version").output().is_err() {
            return skip_or_fail(&format!("validating QEMU plans needs {q}"));
        }
    }
    if !make::have_tools("x86") || !make::have_tools("arm64") {
        return skip_or_fail("validating QEMU plans needs binutils (scripts/deps.sh)");
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make::x86(d, "multiboot", false, 0);
    make::x86(d, "pvh", true, 0);
    make::arm64(d, "Image");
    for f in ["initrd", "image", "vol"] {
        std::fs::write(d.join(f), vec![0u8; 1 << 20]).unwrap();
    }
    std::fs::create_dir(d.join("shared")).unwrap();
    // a tap in a network namespace of its own: the host's links stay as they are
    let tap = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare netns");
        tap("vq0")
    })
    .join()
    .unwrap();
    let block_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(d.join("vol"))
        .unwrap();
    Some(World {
        dir,
        tap,
        block_file,
    })
}

/// A non-persistent tap (it goes away with its fd), as QEMU's `-netdev tap,fd=` needs one:
/// QEMU queries it with TUNGETIFF (net/tap-linux.c). Made by the runtime's own tap code.
fn tap(name: &str) -> OwnedFd {
    let o = crate::net::tap::TapOptions {
        vnet_hdr: true,
        persistent: false,
        uid: 0,
        gid: 0,
    };
    crate::net::tap::create(name, &o)
        .expect("create a tap")
        .expect("a non-persistent tap keeps its fd")
}

/// The plan variants of one guest type on one machine.
fn variants(w: &World, guest: &str, arch: Arch, machine: &str) -> Vec<(String, PlanInput)> {
    let d = w.dir.path();
    let mut base = input(guest, "qemu");
    base.arch = arch;
    base.machine = machine.into();
    base.accel = crate::plan::Accel::Tcg;
    base.seccomp = true;
    base.memory_bytes = 64 << 20;
    base.work_dir = d.join("work");
    base.rootfs = d.join("shared");
    base.process.args = ["/urunit", "/bin/app", "an arg"].map(String::from).to_vec();
    (base.kernel, base.monitor_path) = match (arch, machine) {
        (Arch::Aarch64, _) => (d.join("Image"), "/usr/bin/qemu-system-aarch64".into()),
        (_, "microvm") => (d.join("pvh"), "/usr/bin/qemu-system-x86_64".into()),
        _ => (d.join("multiboot"), "/usr/bin/qemu-system-x86_64".into()),
    };
    let path = |p: &str| d.join(p).display().to_string();
    let mut v = vec![("plain".to_string(), base.clone())];
    let mut i = base.clone();
    i.net = Some(net());
    v.push(("net".into(), i));
    let mut i = base.clone();
    i.blocks = vec![block("annot_vol", &path("vol"), "/data")];
    v.push(("volume".into(), i));
    let mut i = base.clone();
    let mut b = block("rootfs", &path("vol"), "/");
    b.fd = Some(BLOCK_FD);
    i.blocks = vec![b];
    v.push(("root block fd".into(), i));
    let mut i = base.clone();
    i.initrd = Some(d.join("initrd"));
    v.push(("initrd".into(), i));
    let mut i = base.clone();
    i.shared_fs = Some(SharedFs {
        kind: SharedFsKind::NineP,
        path: d.join("shared"),
        socket: None,
        binds: Vec::new(),
    });
    v.push(("9p".into(), i));
    let mut i = base.clone();
    i.guest_channel_fd = Some(CHANNEL_FD);
    i.initrd = Some(d.join("initrd"));
    i.net = Some(net());
    v.push(("channel+initrd+net".into(), i));
    let mut i = base;
    i.net = Some(net());
    i.blocks = vec![
        block("rootfs", &path("image"), "/"),
        block("annot_vol", &path("vol"), "/data"),
    ];
    v.push(("net+root+volume".into(), i));
    v
}

/// Files the supervisor would write before the monitor starts (the initrd copy, configs).
fn materialize(plan: &LaunchPlan) {
    if let Some(b) = &plan.initrd_build {
        std::fs::create_dir_all(b.path.parent().unwrap()).unwrap();
        std::fs::copy(&b.base, &b.path).unwrap();
    }
    for f in &plan.files {
        std::fs::create_dir_all(f.path.parent().unwrap()).unwrap();
        std::fs::write(&f.path, &f.contents).unwrap();
    }
}

/// Starts the plan's QEMU paused; Err(why) when QEMU rejects it.
fn validate(w: &World, plan: &LaunchPlan) -> Result<(), String> {
    materialize(plan);
    let (ours, theirs) = UnixStream::pair().unwrap();
    let (_chan, chan) = UnixStream::pair().unwrap();
    let fds: Vec<(RawFd, RawFd)> = vec![
        (w.tap.as_raw_fd(), TAP_FD),
        (w.block_file.as_raw_fd(), BLOCK_FD),
        (chan.as_raw_fd(), CHANNEL_FD),
        (theirs.as_raw_fd(), QMP_FD),
    ];
    let mut cmd = Command::new(&plan.argv[0]);
    cmd.args(&plan.argv[1..])
        .args(["-S", "-chardev"])
        .arg(format!("socket,id=validate,fd={QMP_FD}"))
        .args(["-mon", "chardev=validate,mode=control"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure only calls fcntl and dup2 (async-signal-safe)
    // on fds that stay open in the parent until the child has exec'd; sources are first moved
    // above every target so that no dup2 overwrites a source still to be placed.
    unsafe {
        cmd.pre_exec(move || {
            let mut moved = Vec::with_capacity(fds.len());
            for (src, dst) in &fds {
                let high = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 64);
                if high < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved.push((high, *dst));
            }
            for (src, dst) in moved {
                if libc::dup2(src, dst) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    drop(theirs);
    drop(chan);
    ours.set_read_timeout(Some(HANG)).unwrap();
    let result = qmp_session(&ours);
    if result.is_err() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    result.map_err(|e| format!("{e}; qemu said: {stderr}"))?;
    if !out.status.success() {
        return Err(format!("quit gave {:?}; qemu said: {stderr}", out.status));
    }
    Ok(())
}

/// Greeting (the machine is built), capabilities, `prelaunch`, quit.
fn qmp_session(s: &UnixStream) -> Result<(), String> {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut line = String::new();
    let mut next = |want: &str| -> Result<String, String> {
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) => return Err("qemu exited before its QMP monitor answered".into()),
                Ok(_) if line.contains("\"event\"") => continue,
                Ok(_) if line.contains(want) => return Ok(line.clone()),
                Ok(_) => return Err(format!("unexpected QMP reply {line:?}, wanted {want}")),
                Err(e) => return Err(format!("reading QMP: {e}")),
            }
        }
    };
    next("\"QMP\"")?;
    let mut send = |c: &str| w.write_all(format!("{{\"execute\":\"{c}\"}}\n").as_bytes());
    send("qmp_capabilities").map_err(|e| e.to_string())?;
    next("\"return\"")?;
    send("query-status").map_err(|e| e.to_string())?;
    let status = next("\"return\"")?;
    if !status.contains("\"prelaunch\"") {
        return Err(format!("not paused before launch: {status}"));
    }
    send("quit").map_err(|e| e.to_string())?;
    next("\"return\"").map(|_| ())
}

#[test]
fn qemu_accepts_every_plan_we_generate() {
    let Some(w) = world() else { return };
    let machines = [
        (Arch::X86_64, "pc"),
        (Arch::X86_64, "q35"),
        (Arch::X86_64, "microvm"),
        (Arch::Aarch64, "virt"),
    ];
    let mut failures = Vec::new();
    let mut validated = 0;
    let mut machine_ran = [0; 4];
    for guest in crate::guest::TYPES {
        let qemu_ok = crate::guest::lookup(guest)
            .map(|g| g.monitors().contains(&crate::plan::MonitorKind::Qemu))
            .unwrap_or(false);
        if !qemu_ok {
            continue;
        }
        let mut guest_ran = 0;
        for (n, (arch, machine)) in machines.iter().enumerate() {
            for (what, i) in variants(&w, guest, *arch, machine) {
                let plan = match build(&i) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("not generated: {guest} {machine} {what}: {e}");
                        continue;
                    }
                };
                guest_ran += 1;
                machine_ran[n] += 1;
                if let Err(e) = validate(&w, &plan) {
                    failures.push(format!(
                        "{guest} {machine} {what}: {e}\n  argv: {:?}",
                        plan.argv
                    ));
                }
            }
        }
        assert!(guest_ran > 0, "no qemu plan of {guest} was built");
        validated += guest_ran;
    }
    assert!(
        machine_ran.iter().all(|n| *n > 0),
        "a machine type had no plan: {machine_ran:?}"
    );
    // the check can fail: an ISA device on aarch64 virt (what mewz got before it declared its
    // exit device as data) is refused
    let mut bad = build(&variants(&w, "unikraft", Arch::Aarch64, "virt").remove(0).1).unwrap();
    bad.argv
        .extend(["-device", crate::monitor::qemu::DEBUG_EXIT].map(String::from));
    let e = validate(&w, &bad).expect_err("qemu-system-aarch64 has no isa-debug-exit");
    assert!(e.contains("isa-debug-exit"), "{e}");
    eprintln!(
        "QEMU accepted {} of {validated} plans",
        validated - failures.len()
    );
    assert!(
        failures.is_empty(),
        "QEMU rejected:\n{}",
        failures.join("\n")
    );
}
