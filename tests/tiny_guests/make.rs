//! Builds the tiny guests from the sources beside this file with binutils (`as`, `ld`; for
//! aarch64 Debian's `binutils-aarch64-linux-gnu`, installed by scripts/deps.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

fn src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tiny_guests")
        .join(name)
}

fn run(cmd: &mut Command) {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Whether the tools for `arch` ("x86" or "arm64") are installed.
pub fn have_tools(arch: &str) -> bool {
    let tools: &[&str] = match arch {
        "arm64" => &[
            "aarch64-linux-gnu-as",
            "aarch64-linux-gnu-ld",
            "aarch64-linux-gnu-objcopy",
        ],
        _ => &["as", "ld"],
    };
    tools
        .iter()
        .all(|t| Command::new(t).arg("--version").output().is_ok())
}

/// The x86 guest as an ELF: multiboot (pc, q35) or with a PVH entry note (microvm), writing
/// `exit` to the isa-debug-exit port.
pub fn x86(dir: &Path, name: &str, pvh: bool, exit: u8) -> PathBuf {
    let obj = dir.join(format!("{name}.o"));
    let out = dir.join(name);
    run(Command::new("as")
        .args(["--32", "--defsym"])
        .arg(format!("PVH={}", u8::from(pvh)))
        .arg("--defsym")
        .arg(format!("EXIT={exit}"))
        .arg("-o")
        .arg(&obj)
        .arg(src("x86.s")));
    run(Command::new("ld")
        .args(["-m", "elf_i386", "--no-warn-rwx-segments", "-T"])
        .arg(src("x86.ld"))
        .arg("-o")
        .arg(&out)
        .arg(&obj));
    out
}

/// A bootable raw disk (boot sector, padded to 2 MiB: SeaBIOS derives a disk geometry from the
/// size and cannot read a disk of under one cylinder, 16 heads x 63 sectors).
pub fn disk(dir: &Path, name: &str, exit: u8) -> PathBuf {
    let obj = dir.join(format!("{name}.o"));
    let out = dir.join(name);
    run(Command::new("as")
        .args(["--32", "--defsym"])
        .arg(format!("EXIT={exit}"))
        .arg("-o")
        .arg(&obj)
        .arg(src("boot.s")));
    run(Command::new("ld")
        .args([
            "-m",
            "elf_i386",
            "-Ttext",
            "0x7c00",
            "--oformat",
            "binary",
            "-o",
        ])
        .arg(&out)
        .arg(&obj));
    let f = std::fs::OpenOptions::new().write(true).open(&out).unwrap();
    f.set_len(2 << 20).unwrap();
    out
}

/// The aarch64 guest as an arm64 Image.
pub fn arm64(dir: &Path, name: &str) -> PathBuf {
    let obj = dir.join(format!("{name}.o"));
    let elf = dir.join(format!("{name}.elf"));
    let out = dir.join(name);
    run(Command::new("aarch64-linux-gnu-as")
        .arg("-o")
        .arg(&obj)
        .arg(src("arm64.s")));
    run(Command::new("aarch64-linux-gnu-ld")
        .args(["-Ttext", "0", "-o"])
        .arg(&elf)
        .arg(&obj));
    run(Command::new("aarch64-linux-gnu-objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&out));
    out
}
