//! What each monitor can do, as data: whether it needs KVM or can emulate, how its KVM is
//! probed (`accel`), what it costs in memory, which control channel it speaks, where its own
//! data lies. Code outside `monitor/` asks these instead of comparing monitor names.

use crate::plan::SharedFsKind;
use std::path::{Path, PathBuf};

/// What a monitor can do without KVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// KVM when it works, else software emulation (TCG).
    Emulates,
    /// Runs only on KVM: a negative verdict fails `create` with the reason.
    KvmOnly,
    /// Never uses KVM (solo5-spt runs guests as a seccomp-confined process).
    NoKvm,
}

/// How a monitor's KVM is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Boot urunc's probe image with the monitor itself (`-accel kvm`).
    QemuBoot,
    /// Run urunc's own trivial guest on /dev/kvm: these monitors set up little beyond what it
    /// does (solo5-hvt runs on a host where QEMU aborts), and they cannot boot a guest urunc
    /// could write without a firmware or an ELF unikernel.
    DevKvm,
    None,
}

/// One monitor's capabilities, as data.
#[derive(Debug, Clone, Copy)]
pub struct Declaration {
    pub monitor: &'static str,
    /// What it can do without KVM.
    pub support: Support,
    /// How its KVM is probed.
    pub probe: ProbeKind,
    /// MiB the monitor process needs beside the guest's RAM, and the smallest guest RAM (MiB)
    /// it is started with (`overhead_mib`).
    pub overhead_mib: u64,
    pub min_guest_mib: u64,
    /// Software emulation adds a translation cache (`QEMU_TB_MIB` for QEMU's `tb-size`).
    pub tcg_extra_mib: u64,
    /// It speaks QMP on a socket the supervisor hands it (QEMU).
    pub qmp: bool,
    /// It takes block devices as inherited open fds (QEMU `file.fd`), not by path.
    pub block_fd: bool,
    /// The shared filesystems it can give the guest (QEMU: 9p and virtio-fs; Cloud
    /// Hypervisor: virtio-fs through virtiofsd).
    pub shared_fs: &'static [SharedFsKind],
    /// Directories of its own data (firmware, option ROMs) it reads where present; the
    /// sandbox lets it read them (`LaunchPlan::data_dirs`).
    pub data_dirs: &'static [&'static str],
    /// The same, under the config's `data_path` when one is set.
    pub data_path_dirs: &'static [&'static str],
}

/// Firecracker and Cloud Hypervisor are KVM-only VMMs (neither has an emulator); solo5-hvt is
/// the KVM tender of Solo5 and solo5-spt its seccomp tender (Solo5's docs/building.md).
/// The memory figures are urunc's own allowances (`monitor::memory_mib`).
pub const DECLARATIONS: &[Declaration] = &[
    Declaration {
        qmp: true,
        tcg_extra_mib: QEMU_TB_MIB,
        block_fd: true,
        shared_fs: &[SharedFsKind::NineP, SharedFsKind::Virtiofs],
        data_dirs: QEMU_DATA_DIRS,
        data_path_dirs: &["qemu", "seabios"],
        ..decl("qemu", Support::Emulates, ProbeKind::QemuBoot, (64, 16))
    },
    decl("firecracker", Support::KvmOnly, ProbeKind::DevKvm, (16, 16)),
    Declaration {
        shared_fs: &[SharedFsKind::Virtiofs],
        ..decl(
            "cloud-hypervisor",
            Support::KvmOnly,
            ProbeKind::DevKvm,
            (32, 16),
        )
    },
    decl("hvt", Support::KvmOnly, ProbeKind::DevKvm, (8, 4)),
    decl("spt", Support::NoKvm, ProbeKind::None, (8, 4)),
];

/// Where Debian's packages put what QEMU reads: its own data (`qemu-system-data`, or a build
/// installed under /usr/local), SeaBIOS (`seabios`: /usr/share/qemu/bios*.bin link there) and
/// the iPXE option ROMs of its NICs (`ipxe-qemu`).
const QEMU_DATA_DIRS: &[&str] = &[
    "/usr/share/qemu",
    "/usr/share/seabios",
    "/usr/lib/ipxe/qemu",
    "/usr/share/ipxe",
    "/usr/local/share/qemu",
];

/// The data directories of `d`'s monitor, with those under the config's `data_path`.
pub fn data_dirs(d: &Declaration, data_path: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = d.data_dirs.iter().map(PathBuf::from).collect();
    if !data_path.is_empty() {
        v.extend(
            d.data_path_dirs
                .iter()
                .map(|s| Path::new(data_path).join(s)),
        );
    }
    v
}

/// QEMU's TCG translation cache size (MiB); QEMU's default would be 1 GiB of address space.
pub const QEMU_TB_MIB: u64 = 32;

const fn decl(
    monitor: &'static str,
    support: Support,
    probe: ProbeKind,
    (overhead_mib, min_guest_mib): (u64, u64),
) -> Declaration {
    Declaration {
        monitor,
        support,
        probe,
        overhead_mib,
        min_guest_mib,
        tcg_extra_mib: 0,
        qmp: false,
        block_fd: false,
        shared_fs: &[],
        data_dirs: &[],
        data_path_dirs: &[],
    }
}

pub fn declaration(monitor: &str) -> Declaration {
    DECLARATIONS
        .iter()
        .find(|d| d.monitor == monitor)
        .copied()
        .unwrap_or(decl("", Support::KvmOnly, ProbeKind::DevKvm, (8, 4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dirs_are_declared_and_follow_data_path() {
        let qemu = declaration("qemu");
        let d = data_dirs(&qemu, "");
        assert!(d.contains(&PathBuf::from("/usr/share/seabios")), "{d:?}");
        let d = data_dirs(&qemu, "/opt/q");
        assert!(d.contains(&PathBuf::from("/opt/q/seabios")), "{d:?}");
        assert!(d.contains(&PathBuf::from("/usr/share/qemu")), "{d:?}");
        assert!(data_dirs(&declaration("firecracker"), "/opt/q").is_empty());
    }
}
