//! What a monitor can do, as data: whether it needs KVM or can emulate, how its KVM is probed
//! (`accel`), what it costs in memory, which control channel it speaks, where its own data
//! lies. Each monitor declares its own (`Monitor::caps`, in its file); code outside `monitor/`
//! asks these (`declaration`) instead of comparing monitor names.

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
    /// What it can do without KVM.
    pub support: Support,
    /// How its KVM is probed.
    pub probe: ProbeKind,
    /// MiB the monitor process needs beside the guest's RAM, and the smallest guest RAM (MiB)
    /// it is started with (`overhead_mib`): urunc's own allowances (`monitor::memory_mib`).
    pub overhead_mib: u64,
    pub min_guest_mib: u64,
    /// Software emulation adds a translation cache (QEMU's `tb-size`).
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

impl Declaration {
    /// A monitor with these basics and nothing more (no QMP, fds, shared filesystems, data).
    pub const fn new(
        support: Support,
        probe: ProbeKind,
        (overhead, min_guest): (u64, u64),
    ) -> Self {
        Declaration {
            support,
            probe,
            overhead_mib: overhead,
            min_guest_mib: min_guest,
            tcg_extra_mib: 0,
            qmp: false,
            block_fd: false,
            shared_fs: &[],
            data_dirs: &[],
            data_path_dirs: &[],
        }
    }
}

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

/// What the monitor named `monitor` declares; an unknown name gets the strictest answer
/// (KVM only), though create refuses it before anything asks.
pub fn declaration(monitor: &str) -> Declaration {
    crate::plan::MonitorKind::from_name(monitor)
        .map(|k| super::monitor(k).caps())
        .unwrap_or(Declaration::new(
            Support::KvmOnly,
            ProbeKind::DevKvm,
            (8, 4),
        ))
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
