//! The probes behind a KVM verdict. Each boots a guest of a few bytes that urunc writes itself
//! and checks what the guest did; a deadline only guards against a hang (a verdict that only
//! timed out is not cached). QEMU's KVM boot is also compared with its TCG boot (see
//! `SLOWER_THAN_TCG`).
//!
//! QEMU, x86: a multiboot image (QEMU loads flat multiboot kernels through the header's
//! address fields, flag bit 16, "a.out kludge") whose code writes 0x21 to an `isa-debug-exit`
//! device: QEMU then exits with status (0x21 << 1) | 1 = 67 (hw/misc/debugexit.c). QEMU,
//! aarch64: a raw image that calls PSCI SYSTEM_OFF (function id 0x84000008) through `hvc`, the
//! conduit of `-M virt` without EL2/EL3; QEMU then exits 0.

use super::Verdict;
use crate::plan::{Accel, Arch};
use std::io::{Read, Seek};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// A hang guard only: a guest of a few instructions finishes in well under a second even
/// under TCG on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);

const MB_MAGIC: u32 = 0x1bad_b002;
const MB_FLAGS: u32 = 0x0001_0000;
const MB_LOAD: u32 = 0x0010_0000;
/// Multiboot header (8 words), then `mov al, 0x21; out 0xf4, al; cli; hlt; jmp $-1`.
const X86_CODE: [u8; 8] = [0xb0, 0x21, 0xe6, 0xf4, 0xfa, 0xf4, 0xeb, 0xfd];
pub const X86_EXIT_STATUS: i32 = (0x21 << 1) | 1;

/// `movz x0, #8; movk x0, #0x8400, lsl #16; hvc #0; b .` (little endian).
const ARM64_CODE: [u32; 4] = [0xd280_0100, 0xf2b0_8000, 0xd400_0002, 0x1400_0000];

/// The probe image for `arch`.
pub fn image(arch: Arch) -> Vec<u8> {
    match arch {
        Arch::X86_64 => {
            let checksum = 0u32.wrapping_sub(MB_MAGIC).wrapping_sub(MB_FLAGS);
            let words = [
                MB_MAGIC,
                MB_FLAGS,
                checksum,
                MB_LOAD,      // header_addr: the header is at the start of the load
                MB_LOAD,      // load_addr
                0,            // load_end_addr: the whole file
                0,            // bss_end_addr: none
                MB_LOAD + 32, // entry_addr: right after the header
            ];
            let mut v: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            v.extend_from_slice(&X86_CODE);
            v
        }
        Arch::Aarch64 => ARM64_CODE.iter().flat_map(|w| w.to_le_bytes()).collect(),
    }
}

/// QEMU's arguments to boot the probe image at `kernel`; the status it exits with on success.
pub fn qemu_args(arch: Arch, accel: Accel, kernel: &str) -> (Vec<String>, i32) {
    let cpu = match accel {
        Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
        Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
    };
    let mut a: Vec<String> = cpu.iter().map(|s| s.to_string()).collect();
    let common = [
        "-m",
        "16",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "none",
        "-no-reboot",
        "-kernel",
        kernel,
    ];
    a.extend(common.iter().map(|s| s.to_string()));
    let (machine, status) = match arch {
        Arch::X86_64 => {
            a.extend(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"].map(String::from));
            ("pc", X86_EXIT_STATUS)
        }
        Arch::Aarch64 => ("virt", 0),
    };
    a.extend(["-M", machine].map(String::from));
    (a, status)
}

/// KVM is not worth it when booting the probe guest (firmware included) takes longer than
/// this many times the same boot under TCG, measured back to back on the same host, so that
/// load slows both alike. Healthy KVM boots it faster than TCG; nested KVM that crawls (these
/// machines: 6.3 s against 0.29 s) is 20 times slower.
pub const SLOWER_THAN_TCG: u32 = 3;

/// QEMU's KVM verdict: the probe guest must boot under `-accel kvm` (QEMU aborting or the
/// guest misbehaving is a deterministic "no"), and not crawl compared with TCG. Returns the
/// verdict and whether it may be cached (not after a timeout or a failure to start QEMU).
pub fn qemu_kvm(qemu: &Path, arch: Arch) -> (Verdict, bool) {
    let (kvm, t_kvm) = match run_qemu(qemu, arch, Accel::Kvm) {
        Ok(v) => v,
        Err(reason) => return (Verdict { kvm: false, reason }, false),
    };
    if !kvm.kvm {
        return (kvm, true);
    }
    match run_qemu(qemu, arch, Accel::Tcg) {
        Ok((tcg, t_tcg)) if tcg.reason.contains("booted") && t_kvm > t_tcg * SLOWER_THAN_TCG => (
            Verdict {
                kvm: false,
                reason: format!(
                    "the probe guest took {} ms under KVM, {} ms under TCG: KVM crawls (nested virtualisation?)",
                    t_kvm.as_millis(),
                    t_tcg.as_millis()
                ),
            },
            true,
        ),
        _ => (kvm, true),
    }
}

/// Boots the probe image with `qemu` under `accel`. Returns the verdict and whether it may be
/// cached (not after a timeout or a failure to even start the probe).
#[cfg(test)]
pub fn qemu(qemu: &Path, arch: Arch, accel: Accel) -> (Verdict, bool) {
    match run_qemu(qemu, arch, accel) {
        Ok((v, _)) => (v, true),
        Err(reason) => (Verdict { kvm: false, reason }, false),
    }
}

fn run_qemu(qemu: &Path, arch: Arch, accel: Accel) -> Result<(Verdict, Duration), String> {
    let no = |reason: String, t| Ok((Verdict { kvm: false, reason }, t));
    let started = Instant::now();
    let img = memfd("urunc-accel-probe", &image(arch))?;
    let mut err = memfd("urunc-accel-probe-stderr", b"")?;
    // the image reaches QEMU as /proc/self/fd/N: the fd is inherited at the same number
    let kernel = format!("/proc/self/fd/{}", img.as_raw_fd());
    let (args, want) = qemu_args(arch, accel, &kernel);
    let mut child = std::process::Command::new(qemu)
        .args(&args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err.try_clone().map_err(|e| format!("dup: {e}"))?)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", qemu.display()))?;
    drop(img);
    let end = started + DEADLINE;
    let (status, took) = loop {
        match child.try_wait() {
            Ok(Some(s)) => break (s, started.elapsed()),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the probe guest did not finish within {} s",
                    DEADLINE.as_secs()
                ));
            }
            Err(e) => return Err(format!("wait for {}: {e}", qemu.display())),
        }
    };
    let mut text = String::new();
    let _ = err.rewind();
    let _ = (&mut err).take(4096).read_to_string(&mut text);
    let name = qemu.file_name().unwrap_or_default().to_string_lossy();
    let first = text
        .lines()
        .map(|l| {
            l.trim_start_matches(&format!("{name}: "))
                .trim()
                .to_string()
        })
        .find(|l| !l.is_empty());
    use std::os::unix::process::ExitStatusExt;
    let what = match (status.code(), status.signal()) {
        (Some(c), _) if c == want => {
            let reason = format!(
                "{} booted urunc's probe guest with -accel {} in {} ms",
                qemu.display(),
                accel_name(accel),
                took.as_millis()
            );
            let kvm = accel == Accel::Kvm;
            return Ok((Verdict { kvm, reason }, took));
        }
        (Some(c), _) => format!("exited with status {c}"),
        (_, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended".to_string(),
    };
    let reason = format!(
        "{} -accel {} {what} on urunc's probe guest{}",
        qemu.display(),
        accel_name(accel),
        first.map(|l| format!(": {l}")).unwrap_or_default()
    );
    no(reason, took)
}

fn accel_name(a: Accel) -> &'static str {
    match a {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg",
    }
}

/// An anonymous file holding `data`, without close-on-exec (the probe's child inherits it).
fn memfd(name: &str, data: &[u8]) -> Result<std::fs::File, String> {
    let name = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    let fd = nix::sys::memfd::memfd_create(&name, nix::sys::memfd::MemFdCreateFlag::empty())
        .map_err(|e| format!("memfd_create: {e}"))?;
    let mut f = std::fs::File::from(fd);
    std::io::Write::write_all(&mut f, data).map_err(|e| format!("write probe image: {e}"))?;
    Ok(f)
}

/// urunc's trivial guest on /dev/kvm (see `devkvm`), in a child with a deadline.
pub fn dev_kvm() -> (Verdict, bool) {
    let r = super::child::in_child(DEADLINE, || {
        super::devkvm::run_guest().map(|(w, _)| w.to_string())
    });
    match r {
        Ok(w) if w == super::devkvm::WRITES.to_string() => (
            Verdict {
                kvm: true,
                reason: format!("/dev/kvm ran urunc's probe guest ({w} port writes, then halt)"),
            },
            true,
        ),
        Ok(w) => (
            Verdict {
                kvm: false,
                reason: format!("/dev/kvm ran urunc's probe guest wrongly ({w} port writes)"),
            },
            true,
        ),
        Err(e) if e.starts_with("did not finish") => (
            Verdict {
                kvm: false,
                reason: format!("urunc's probe guest on /dev/kvm {e}"),
            },
            false,
        ),
        Err(e) => {
            // a /dev/kvm this user cannot open may be fixed without a reboot: not cached
            let keep = !e.starts_with("cannot open");
            (
                Verdict {
                    kvm: false,
                    reason: format!("urunc's probe guest on /dev/kvm failed: {e}"),
                },
                keep,
            )
        }
    }
}
