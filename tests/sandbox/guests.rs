//! The real QEMU under the full sandbox: a multiboot guest and a Debian Linux kernel.

use super::common::{self, stderr, unique, Env};
use super::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A tiny Multiboot kernel: prints `msg` on the serial port, then powers the machine off
/// (ACPI PM1a_CNT at SeaBIOS's 0x604, SLP_EN with type 0 = soft off) or halts forever.
pub fn multiboot_kernel(msg: &str, poweroff: bool) -> Vec<u8> {
    const BASE: u32 = 0x0010_0000;
    let mut code: Vec<u8> = vec![0x66, 0xBA, 0xF8, 0x03, 0xBE, 0, 0, 0, 0]; // mov dx,0x3f8; mov esi,msg
    code.extend([0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8]); // lodsb; test; jz; out; jmp
    if poweroff {
        code.extend([0x66, 0xBA, 0x04, 0x06, 0x66, 0xB8, 0x00, 0x20, 0x66, 0xEF]);
    }
    code.extend([0xF4, 0xEB, 0xFD]); // hlt; jmp hlt
    let entry = BASE + 32;
    let msg_addr = entry + code.len() as u32;
    code[5..9].copy_from_slice(&msg_addr.to_le_bytes());
    let (magic, flags) = (0x1BAD_B002u32, 0x0001_0000u32);
    let mut k = Vec::new();
    for v in [
        magic,
        flags,
        0u32.wrapping_sub(magic.wrapping_add(flags)),
        BASE,
        BASE,
        0,
        0,
        entry,
    ] {
        k.extend(v.to_le_bytes());
    }
    k.extend(code);
    k.extend(msg.as_bytes());
    k.push(0);
    k
}

/// A Multiboot kernel that prints `URUNC-CMDLINE=` and the command line the loader gave it
/// (the Multiboot information's `cmdline`, at offset 16 of the structure EBX points to), then
/// powers off. QEMU's Multiboot loader (hw/i386/multiboot.c) builds that command line as the
/// `-kernel` path, a space, and `-append`: the path is what the guest sees of the host.
fn multiboot_cmdline_kernel() -> Vec<u8> {
    let mut k = multiboot_kernel("URUNC-CMDLINE=", true);
    // after the first print loop (code bytes 9..17), print [ebx+16] and a newline
    let header = 32;
    let at = header + 17;
    let mut extra = vec![0x8B, 0x73, 0x10]; // mov esi,[ebx+16]
    extra.extend([0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8]); // the same print loop
    extra.extend([0xB0, 0x0A, 0xEE]); // mov al,10; out dx,al
    let n = extra.len() as u32;
    k.splice(at..at, extra);
    // the message moved by n bytes: fix `mov esi, msg` (code bytes 5..9)
    let imm = header + 5;
    let msg = u32::from_le_bytes(k[imm..imm + 4].try_into().unwrap()) + n;
    k[imm..imm + 4].copy_from_slice(&msg.to_le_bytes());
    k
}

/// An env whose qemu monitor is the real QEMU (under TCG); `None` when it is not installed.
fn qemu_env() -> Option<Env> {
    let qemu = Path::new("/usr/bin/qemu-system-x86_64");
    if !qemu.exists() {
        eprintln!("skipped: {} is not installed", qemu.display());
        return None;
    }
    let env = Env::new();
    let cfg = std::fs::read_to_string(&env.config).unwrap();
    let fake = common::fakevmm_bin().display().to_string();
    std::fs::write(
        &env.config,
        cfg.replacen(&fake, &qemu.display().to_string(), 1),
    )
    .unwrap();
    open_up(&env);
    Some(env)
}

fn qemu_bundle(env: &Env, id: &str, kernel: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let b = env.bundle_with(id, "", |s| set_user(s, 65534, 65534, &[]));
    let k = b.join("rootfs/kernel");
    std::fs::write(&k, kernel).unwrap();
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
    b
}

#[test]
fn qemu_runs_a_guest_under_the_full_sandbox() {
    let Some(env) = qemu_env() else { return };
    let id = unique("sb-qemu");
    let b = qemu_bundle(&env, &id, &multiboot_kernel("URUNC-GUEST-UP\n", false));
    run(&env, &b, &id);
    env.wait_console(&id, "URUNC-GUEST-UP", Duration::from_secs(60));
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).unwrap();
    let qemu: i64 = children.split_whitespace().next().unwrap().parse().unwrap();
    let st = proc_status(qemu);
    assert!(field(&st, "Name").starts_with("qemu-system"), "{st}");
    assert_eq!(
        field(&st, "Uid").split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4]
    );
    for k in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(field(&st, k), "0000000000000000", "{k}");
    }
    assert_eq!(field(&st, "NoNewPrivs"), "1");
    assert_eq!(field(&st, "Seccomp"), "2");
    // urunc's two filters, and QEMU's own `-sandbox on` stacked on top
    let filters: u32 = field(&st, "Seccomp_filters").parse().unwrap();
    assert!(
        filters > 2,
        "Seccomp_filters {filters}: QEMU's -sandbox did not stack"
    );
    let o = env.urunc(&["kill", &id, "KILL"]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.wait_status(&id, "stopped", T);
}

/// The guest sees no host path: the kernel is at its image path inside the monitor's view,
/// so QEMU's Multiboot command line starts with `/kernel`, not the bundle's host directory.
#[test]
fn a_multiboot_guest_sees_the_image_path_not_the_host_path() {
    let Some(env) = qemu_env() else { return };
    let id = unique("sb-qemu-cmdline");
    let b = qemu_bundle(&env, &id, &multiboot_cmdline_kernel());
    run(&env, &b, &id);
    env.wait_status(&id, "stopped", Duration::from_secs(60));
    let c = env.console_text(&id);
    let line = line_with(&c, "URUNC-CMDLINE=");
    assert!(line.starts_with("URUNC-CMDLINE=/kernel panic=-1"), "{c}");
    assert!(!c.contains(&b.display().to_string()), "{c}");
}

#[test]
fn qemu_guest_powers_off_cleanly_under_the_sandbox() {
    let Some(env) = qemu_env() else { return };
    let id = unique("sb-qemu-off");
    let b = qemu_bundle(&env, &id, &multiboot_kernel("URUNC-GUEST-BYE\n", true));
    run(&env, &b, &id);
    env.wait_status(&id, "stopped", Duration::from_secs(60));
    let c = env.console_text(&id);
    assert!(c.contains("URUNC-GUEST-BYE"), "{c}");
    assert!(!c.contains("qemu-system"), "QEMU complained:\n{c}");
}

/// A static x86-64 ELF that writes `msg` to stdout and powers the machine off (it runs as the
/// guest's PID 1, which may call reboot(2)).
fn poweroff_init(msg: &str) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let mut code: Vec<u8> = vec![0xB8, 1, 0, 0, 0, 0xBF, 1, 0, 0, 0]; // write(1,
    code.extend([0x48, 0x8D, 0x35, 31, 0, 0, 0]); // lea rsi, [rip + 31] (msg after the code)
    code.extend([0xBA]); // mov edx, len
    code.extend((msg.len() as u32).to_le_bytes());
    code.extend([0x0F, 0x05]); // syscall
    code.extend([0xB8, 169, 0, 0, 0]); // reboot(MAGIC1, MAGIC2, POWER_OFF)
    code.extend([0xBF, 0xAD, 0xDE, 0xE1, 0xFE, 0xBE, 0x69, 0x19, 0x12, 0x28]);
    code.extend([0xBA, 0xDC, 0xFE, 0x21, 0x43, 0x0F, 0x05, 0xEB, 0xFE]);
    assert_eq!(code.len(), 48);
    code.extend(msg.as_bytes());
    let total = (64 + 56 + code.len()) as u64;
    let mut e = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    e.extend(2u16.to_le_bytes()); // ET_EXEC
    e.extend(0x3eu16.to_le_bytes()); // x86-64
    e.extend(1u32.to_le_bytes());
    e.extend((BASE + 120).to_le_bytes()); // entry
    e.extend(64u64.to_le_bytes()); // phoff
    e.extend(0u64.to_le_bytes()); // shoff
    e.extend(0u32.to_le_bytes());
    for v in [64u16, 56, 1, 0, 0, 0] {
        e.extend(v.to_le_bytes());
    }
    e.extend(1u32.to_le_bytes()); // PT_LOAD
    e.extend(5u32.to_le_bytes()); // R+X
    for v in [0, BASE, BASE, total, total, 0x1000] {
        e.extend(v.to_le_bytes());
    }
    e.extend(code);
    e
}

/// A newc cpio archive: `/dev/console` (5:1) and `/init`.
fn initrd(init: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]| {
        let hdr = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0, 0, 1, 0, data.len(), 0, 0, rdev.0, rdev.1, name.len() + 1, 0
        );
        out.extend(hdr.as_bytes());
        out.extend(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    entry(1, "dev", 0o040755, (0, 0), b"");
    entry(2, "dev/console", 0o020600, (5, 1), b"");
    entry(3, "init", 0o100755, (0, 0), init);
    entry(4, "TRAILER!!!", 0, (0, 0), b"");
    out
}

/// A Debian kernel for the Linux boot test: `$URUNC_TEST_KERNEL`, else where the test-asset
/// preparation puts it (`apt-get download linux-image-<abi>-cloud-amd64`, `dpkg-deb -x`).
fn test_kernel() -> Option<PathBuf> {
    let p = std::env::var_os("URUNC_TEST_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // scripts/prepare-assets.sh puts the Debian cloud kernel here
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/vmlinux")
        });
    if !p.exists() && std::env::var_os("CI").is_some() {
        panic!(
            "no test kernel at {} (run scripts/prepare-assets.sh)",
            p.display()
        );
    }
    p.exists().then_some(p)
}

#[test]
fn qemu_boots_a_linux_guest_under_the_full_sandbox() {
    let Some(kernel) = test_kernel() else {
        eprintln!("skipped: no test kernel (set URUNC_TEST_KERNEL)");
        return;
    };
    let Some(env) = qemu_env() else { return };
    let id = unique("sb-linux");
    let b = qemu_bundle(&env, &id, &std::fs::read(&kernel).unwrap());
    std::fs::write(
        b.join("rootfs/initrd"),
        initrd(&poweroff_init("URUNC-LINUX-INIT\n")),
    )
    .unwrap();
    let mut spec: Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    spec["annotations"]["com.urunc.unikernel.initrd"] = json!("/initrd");
    // its own tiny init, not urunit: rdinit=/init
    spec["process"]["args"] = json!(["/init"]);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    run(&env, &b, &id);
    env.wait_status(&id, "stopped", Duration::from_secs(120));
    let c = env.console_text(&id);
    // the kernel is quiet (loglevel=2); the init's line and a clean power-off show the boot
    assert!(c.contains("URUNC-LINUX-INIT"), "{c}");
    assert!(!c.contains("Kernel panic"), "{c}");
}
