//! Tiny guests of our own (sources beside this file, built here with binutils) booted through
//! `urunc run` in real QEMU under TCG, one per QEMU machine type urunc generates: `pc` and `q35`
//! (multiboot ELF), `microvm` (PVH ELF), aarch64 `virt` (arm64 Image). Each prints the command
//! line it received and stops; the x86 ones write an exit value to isa-debug-exit, which the
//! plan attaches for the guest types that declare it (mewz, nanos). The nanos runs stand in for
//! a real Nanos: the microvm kernel form (`kernel.img` + a disk at `/`) and the pc disk form.
//!
//! Without root, QEMU or binutils the tests are SKIPPED, or fail when `CI` is set.

#[path = "../assets/mod.rs"]
mod assets;
mod make;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const URUNC: &str = env!("CARGO_BIN_EXE_urunc");
/// Only guards against hangs: a tiny guest stops in well under a second of TCG time.
const HANG: Duration = Duration::from_secs(180);

/// A bundle in a private temp dir and its own `--root`; deletes its container when dropped.
struct Bundle {
    dir: tempfile::TempDir,
    id: String,
}

struct Ran {
    out: String,
    status: i32,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("tiny-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(
            dir.path().join("urunc.toml"),
            assets::config_toml(dir.path(), "accel = \"tcg\"\ndefault_memory_mb = 64\n"),
        )
        .unwrap();
        let id = format!("tiny-{name}-{}", std::process::id());
        Bundle { dir, id }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn urunc(&self, args: &[&str]) -> Command {
        let mut c = Command::new(URUNC);
        c.env("URUNC_CONFIG", self.dir.path().join("urunc.toml"))
            .arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Writes config.json (`annotations` beside the guest type and QEMU) and runs it.
    fn run(&self, guest: &str, args: &[&str], annotations: &[(&str, &str)]) -> Ran {
        let mut ann = serde_json::json!({
            "com.urunc.unikernel.unikernelType": guest,
            "com.urunc.unikernel.hypervisor": "qemu",
        });
        for (k, v) in annotations {
            ann[format!("com.urunc.unikernel.{k}")] = (*v).into();
        }
        let spec = serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": args,
                        "env": [], "cwd": "/"},
            "root": {"path": "rootfs"},
            "annotations": ann,
            "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]},
        });
        std::fs::write(self.dir.path().join("config.json"), spec.to_string()).unwrap();
        let out = self.dir.path().join("out");
        let mut child = self
            .urunc(&[
                "run",
                "--bundle",
                &self.dir.path().display().to_string(),
                &self.id,
            ])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + HANG;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{}: the guest did not stop within {HANG:?}; output:\n{}",
                    self.id,
                    std::fs::read_to_string(&out).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        let out = std::fs::read_to_string(&out).unwrap_or_default();
        eprintln!(
            "--- {} (status {status:?}):\n{out}\n--- stderr:\n{err}",
            self.id
        );
        Ran {
            out,
            status: status.code().expect("urunc run exits, it is not killed"),
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.urunc(&["delete", "--force", &self.id]).output();
    }
}

/// QEMU, root and the tools for `arch`, else SKIPPED (or a failure under `CI`).
fn ready(qemu: &str, arch: &str) -> bool {
    if assets::guest_assets_for(qemu, &[]).is_none() {
        return false;
    }
    if make::have_tools(arch) {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    assert!(
        !ci,
        "tiny guests need binutils for {arch} (scripts/deps.sh)"
    );
    eprintln!("SKIPPED: tiny guests need binutils for {arch} (scripts/deps.sh)");
    false
}

/// The guest's printed command line (between the brackets of its one line).
fn cmdline(out: &str) -> &str {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("TINY-CMDLINE ["))
        .unwrap_or_else(|| panic!("the guest printed no command line:\n{out}"));
    line.trim_end_matches('\r')
        .strip_suffix(']')
        .unwrap_or_else(|| panic!("unterminated command line: {line:?}"))
}

/// The status of a guest that wrote `v` to isa-debug-exit: QEMU exits with `(v << 1) | 1`
/// (QEMU hw/misc/debugexit.c) and the supervisor maps it back to `v` (`LaunchPlan::debug_exit`,
/// `supervisor/status.rs`): the container's status is the program's.
fn assert_debug_exit_status(status: i32, v: i32) {
    assert_eq!(status, v, "QEMU's raw status would be {}", (v << 1) | 1);
}

#[test]
fn multiboot_on_pc_and_q35_prints_the_unikraft_command_line() {
    if !ready("qemu-system-x86_64", "x86") {
        return;
    }
    for machine in ["pc", "q35"] {
        let b = Bundle::new(&format!("mb-{machine}"));
        make::x86(&b.rootfs(), "kernel", false, 0);
        let r = b.run(
            "unikraft",
            &["hello", "two  words"],
            &[("binary", "/kernel"), ("machine", machine)],
        );
        // QEMU's multiboot loader puts the -kernel file name first (hw/i386/multiboot.c);
        // the rest is exactly the Unikraft command line of the plan (guest/unikraft.rs)
        let c = cmdline(&r.out);
        let (first, rest) = c.split_once(' ').unwrap();
        assert!(first.ends_with("/kernel"), "{c}");
        assert_eq!(rest, "Unikraft -- hello \"two  words\"", "{machine}");
        // Unikraft attaches no exit device: the guest powers off through ACPI and the status is
        // the supervisor's reading of a silent power-off (branch proto decides it): not asserted
    }
}

#[test]
fn multiboot_mewz_on_pc_and_q35_stops_through_debug_exit() {
    if !ready("qemu-system-x86_64", "x86") {
        return;
    }
    for (machine, v) in [("pc", 3), ("q35", 0)] {
        let b = Bundle::new(&format!("mewz-{machine}"));
        make::x86(&b.rootfs(), "kernel", false, v);
        let r = b.run(
            "mewz",
            &["ignored"],
            &[("binary", "/kernel"), ("machine", machine)],
        );
        // mewz gets no command line without a network (reference 4.4): the file name only
        let c = cmdline(&r.out);
        assert!(
            c.trim_end().ends_with("/kernel") && !c.contains("ignored"),
            "{c}"
        );
        assert_debug_exit_status(r.status, i32::from(v));
    }
}

/// The Nanos kernel form: the kernel as binary, a disk image as block at `/`, on microvm.
fn nanos_kernel_form(v: u8) -> Ran {
    let b = Bundle::new(&format!("nanos-kernel-{v}"));
    make::x86(&b.rootfs(), "kernel.img", true, v);
    let disk = b.rootfs().join("disk.img");
    std::fs::write(&disk, b"").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let r = b.run(
        "nanos",
        &["/program"],
        &[
            ("binary", "/kernel.img"),
            ("block", "/disk.img"),
            ("blkMntPoint", "/"),
        ],
    );
    // PVH hands the guest QEMU's -append, and the plan has none (nanos ignores a PVH command
    // line, guest/nanos.rs); microvm adds no virtio_mmio.device= words while it has ACPI
    assert_eq!(cmdline(&r.out), "");
    r
}

#[test]
fn nanos_kernel_form_on_microvm_gives_the_program_status() {
    if !ready("qemu-system-x86_64", "x86") {
        return;
    }
    for v in [0, 3] {
        assert_debug_exit_status(nanos_kernel_form(v).status, i32::from(v));
    }
}

/// The Nanos disk form: the disk image as binary, booted by SeaBIOS from virtio-blk on `machine`.
fn nanos_disk_form(machine: &str, v: u8) -> Ran {
    let b = Bundle::new(&format!("nanos-disk-{machine}-{v}"));
    make::disk(&b.rootfs(), "image", v);
    let r = b.run(
        "nanos",
        &["/program"],
        &[("binary", "/image"), ("machine", machine)],
    );
    assert!(
        r.out.contains("TINY-DISK booted by the firmware"),
        "{}",
        r.out
    );
    r
}

#[test]
fn nanos_disk_form_on_pc_and_q35_gives_the_program_status() {
    if !ready("qemu-system-x86_64", "x86") {
        return;
    }
    assert_debug_exit_status(nanos_disk_form("pc", 0).status, 0);
    assert_debug_exit_status(nanos_disk_form("pc", 3).status, 3);
    assert_debug_exit_status(nanos_disk_form("q35", 3).status, 3);
}

#[test]
fn arm64_image_on_virt_prints_the_unikraft_command_line() {
    if !ready("qemu-system-aarch64", "arm64") {
        return;
    }
    let b = Bundle::new("arm64");
    make::arm64(&b.rootfs(), "kernel");
    let r = b.run(
        "unikraft",
        &["hello", "two  words"],
        &[("binary", "/kernel"), ("arch", "aarch64")],
    );
    // the device tree's /chosen bootargs, exactly the plan's command line (guest/unikraft.rs)
    assert_eq!(
        cmdline(&r.out),
        "Unikraft console=ttyS0 -- hello \"two  words\""
    );
    // PSCI SYSTEM_OFF carries no value (see arm64.s): the status is not the guest's to give
}
