//! Landlock: the monitor reaches only its own files. Best effort to the running kernel's ABI
//! (full on ABI 6+: files, `IoctlDev` from ABI 5, TCP from ABI 4, signal and abstract-socket
//! scoping from ABI 6); a kernel without Landlock leaves the other layers in place.
//!
//! Allowed to the monitor: execute and read its binary, its ELF interpreter's directory and the
//! standard library directories (only when the binary is dynamic), `/etc/ld.so.cache`, QEMU's
//! firmware and data; read the plan's `read_paths` (kernel, initrd, read-only images); read and
//! write its `write_paths`; open and ioctl its `devices` (`/dev/kvm` when it needs KVM);
//! `/dev/null`, `/dev/urandom`; its own `/proc/<pid>`. Everything else, including the rest of
//! the container's rootfs, is denied. No TCP bind or connect: monitors get their network as
//! an inherited tap fd.
//!
//! The same allowances define the monitor's filesystem view (`view`): the view holds only
//! them, and the ruleset is built inside the view, on their view paths. Landlock then still
//! guards what the view holds but no rule names (the view's own directories, `/proc`).

use crate::plan::LaunchPlan;
use landlock::{
    Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use std::path::{Path, PathBuf};

/// The ABI whose rights we ask for; older kernels get the subset they know.
const TARGET: ABI = ABI::V7;

#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("landlock: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    #[error("landlock: cannot open {path} for a rule: {msg}")]
    Path { path: String, msg: String },
}

fn read() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::ReadDir
}

fn exec() -> BitFlags<AccessFs> {
    read() | AccessFs::Execute
}

fn write() -> BitFlags<AccessFs> {
    read()
        | AccessFs::WriteFile
        | AccessFs::Truncate
        | AccessFs::MakeReg
        | AccessFs::MakeSock
        | AccessFs::MakeFifo
        | AccessFs::MakeDir
        | AccessFs::RemoveFile
        | AccessFs::RemoveDir
}

fn device() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev
}

/// One allowance: a file or a directory and what may be done beneath it.
#[derive(Debug, Clone, PartialEq)]
pub struct Allow {
    pub path: PathBuf,
    pub access: BitFlags<AccessFs>,
    /// A missing required path is an error; a missing optional one is skipped.
    pub required: bool,
}

fn allow(path: impl Into<PathBuf>, access: BitFlags<AccessFs>, required: bool) -> Allow {
    Allow {
        path: path.into(),
        access,
        required,
    }
}

/// The ELF interpreter (`PT_INTERP`) of a 64-bit little-endian binary; `None` when static.
pub fn elf_interpreter(bin: &Path) -> Option<PathBuf> {
    let data = std::fs::read(bin).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?));
    if data.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let typ = u32::from_le_bytes(data.get(ph..ph + 4)?.try_into().ok()?);
        if typ == 3 {
            let off = usize::try_from(u64_at(ph + 8)?).ok()?;
            let size = usize::try_from(u64_at(ph + 32)?).ok()?;
            let raw = data.get(off..off + size)?;
            let s = raw.split(|b| *b == 0).next()?;
            return Some(PathBuf::from(String::from_utf8_lossy(s).into_owned()));
        }
    }
    None
}

fn triplet() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64-linux-gnu"
    } else {
        "x86_64-linux-gnu"
    }
}

/// Library directories a dynamic binary loads from.
fn lib_dirs(program: &Path) -> Vec<Allow> {
    let Some(interp) = elf_interpreter(program) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    if let Some(dir) = std::fs::canonicalize(&interp)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        v.push(allow(dir, exec(), false));
    }
    let t = triplet();
    let multiarch = [format!("/lib/{t}"), format!("/usr/lib/{t}")];
    if multiarch.iter().any(|d| Path::new(d).is_dir()) {
        for d in multiarch {
            v.push(allow(d, exec(), false));
        }
    } else {
        // Distributions without multiarch directories (Alpine, Arch).
        for d in ["/lib", "/usr/lib"] {
            v.push(allow(d, exec(), false));
        }
    }
    for d in ["/lib64", "/usr/lib64", "/usr/local/lib"] {
        v.push(allow(d, exec(), false));
    }
    v.push(allow("/etc/ld.so.cache", read(), false));
    v
}

/// Every allowance of the monitor, before its own `/proc/<pid>` (added by [`prepare`]).
pub fn monitor_rules(plan: &LaunchPlan) -> Vec<Allow> {
    let mut v = vec![allow(&plan.program, exec(), true)];
    v.extend(plan.exec_paths.iter().map(|p| allow(p, exec(), true)));
    v.extend(lib_dirs(&plan.program));
    // what the monitor declares as its own data (firmware): read where present
    v.extend(plan.data_dirs.iter().map(|d| allow(d, read(), false)));
    v.extend(
        plan.read_paths
            .iter()
            .map(|p| allow(p, read() | AccessFs::IoctlDev, true)),
    );
    v.extend(
        plan.write_paths
            .iter()
            .map(|p| allow(p, write() | AccessFs::IoctlDev, true)),
    );
    v.extend(plan.devices.iter().map(|p| allow(p, device(), true)));
    if plan.needs_kvm && !plan.devices.iter().any(|d| d == Path::new("/dev/kvm")) {
        v.push(allow("/dev/kvm", device(), true));
    }
    v.push(allow(
        "/dev/null",
        AccessFs::ReadFile | AccessFs::WriteFile,
        false,
    ));
    v.push(allow("/dev/urandom", AccessFs::ReadFile.into(), false));
    v.push(allow("/dev/random", AccessFs::ReadFile.into(), false));
    v
}

fn ruleset(signal_scope: bool) -> Result<RulesetCreated, LandlockError> {
    let mut scope: BitFlags<Scope> = Scope::AbstractUnixSocket.into();
    if signal_scope {
        scope |= Scope::Signal;
    }
    Ok(Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET))?
        .handle_access(AccessNet::from_all(TARGET))?
        .scope(scope & Scope::from_all(TARGET))?
        .create()?)
}

/// Opens every allowed path (as the caller, before any identity change) and builds the ruleset
/// for the monitor: the process's own `/proc/<pid>` is added here, which execve keeps.
pub fn prepare(rules: &[Allow]) -> Result<RulesetCreated, LandlockError> {
    let mut rs = ruleset(true)?;
    let own_proc = std::fs::canonicalize("/proc/self").unwrap_or_else(|_| "/proc/self".into());
    let all = rules
        .iter()
        .cloned()
        .chain([allow(own_proc, read(), false)]);
    for a in all {
        let fd = match PathFd::new(&a.path) {
            Ok(fd) => fd,
            Err(e) if a.required => {
                return Err(LandlockError::Path {
                    path: a.path.display().to_string(),
                    msg: e.to_string(),
                })
            }
            Err(_) => continue,
        };
        let access = if std::fs::metadata(&a.path).is_ok_and(|m| !m.is_dir()) {
            a.access & AccessFs::from_file(TARGET)
        } else {
            a.access
        };
        rs = rs.add_rule(PathBeneath::new(fd, access))?;
    }
    Ok(rs)
}

/// The kernel's Landlock ABI version; 0 without Landlock.
pub fn abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    // SAFETY: a NULL attribute with size 0 and the VERSION flag only queries the ABI.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0)
}

/// Enforces a prepared ruleset on the calling process (and what it executes).
pub fn enforce(rs: RulesetCreated) -> Result<RulesetStatus, LandlockError> {
    let st = rs.restrict_self()?;
    if st.ruleset != RulesetStatus::FullyEnforced {
        log::warn!(
            "landlock is {:?} on this kernel: the monitor's file access is confined only partly",
            st.ruleset
        );
    }
    Ok(st.ruleset)
}

/// The supervisor after the monitor started: no file, no TCP, no abstract socket at all. No
/// signal scoping: it must still signal the monitor, whose domain is not nested in its own.
pub fn confine_supervisor() -> Result<RulesetStatus, LandlockError> {
    enforce(ruleset(false)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The monitor's declared data directories are readable where present, and never required
    /// (a host without SeaBIOS still starts a guest that needs none).
    #[test]
    fn declared_data_dirs_are_optional_read_rules() {
        let plan: LaunchPlan = serde_json::from_value(serde_json::json!({
            "program": "/usr/bin/m", "argv": ["m"], "env": [], "read_paths": [],
            "data_dirs": ["/usr/share/seabios", "/opt/q/qemu"], "exec_paths": [],
            "write_paths": [], "devices": [], "files": [], "keep_fds": [],
            "shutdown": "Signal", "needs_kvm": false, "guest_cmdline": "",
            "initrd_build": null
        }))
        .unwrap();
        let rules = monitor_rules(&plan);
        for d in ["/usr/share/seabios", "/opt/q/qemu"] {
            let r = rules.iter().find(|a| a.path == Path::new(d)).expect(d);
            assert!(!r.required && r.access == read(), "{d}: {r:?}");
        }
    }

    #[test]
    fn finds_the_interpreter_of_dynamic_binaries_only() {
        let me = std::env::current_exe().unwrap();
        let interp = elf_interpreter(&me).expect("test binaries are dynamic");
        assert!(interp.to_string_lossy().contains("ld-"), "{interp:?}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("notelf");
        std::fs::write(&f, b"#!/bin/sh\n").unwrap();
        assert_eq!(elf_interpreter(&f), None);
        assert!(lib_dirs(&f).is_empty());
        assert!(lib_dirs(&me)
            .iter()
            .any(|a| a.path == Path::new("/etc/ld.so.cache")));
    }
}
