//! Monitors: each turns the guest setup into an argv (or a config file) for its binary.
//!
//! Memory: when the container has no memory limit the guest gets the monitor's
//! `default_memory_mb`. When it has one, the limit covers the guest *and* the monitor process
//! (both live in the container's cgroup), so the guest gets the limit minus the monitor's
//! overhead (`overhead_mib`), and a limit that leaves less than the monitor's floor is a
//! `create` error instead of an OOM kill later. Every monitor receives MiB.

use crate::plan::GuestSetup;
use crate::plan::{
    Accel, Arch, GeneratedFile, InitrdBuild, LaunchPlan, MonitorKind, PlanError, PlanInput,
    SeccompPolicy, Shutdown,
};
use std::path::PathBuf;

pub mod caps;
mod cloud_hypervisor;
mod firecracker;
pub(crate) mod qemu;
mod qemu_devices;
mod solo5;
mod solo5_devices;
pub mod solo5_manifest;

pub trait Monitor {
    fn kind(&self) -> MonitorKind;
    fn name(&self) -> &'static str {
        self.kind().name()
    }
    /// The binary looked up in `$PATH` when the config gives no `path`.
    fn binary(&self, arch: Arch) -> &'static str;
    /// What it can do, as data (`caps`): asked instead of its name.
    fn caps(&self) -> caps::Declaration;
    fn plan(&self, input: &PlanInput, guest: &GuestSetup) -> Result<LaunchPlan, PlanError>;
    /// How it takes the container's tap; `net/` creates the tap to match.
    fn tap(&self) -> TapSpec {
        TapSpec {
            access: TapAccess::Fd,
            vnet_hdr: true,
        }
    }
}

/// How a monitor reaches the tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapAccess {
    /// It inherits an open queue of the tap (QEMU `-netdev tap,fd=N`, Cloud Hypervisor
    /// `--net fd=N`): it needs neither `/dev/net/tun` nor a persistent tap.
    Fd,
    /// It opens `/dev/net/tun` itself and attaches to the tap by name (TUNSETIFF): the tap
    /// must be persistent, up, and owned by the monitor's uid/gid (Firecracker, Solo5).
    Name,
}

/// A monitor's declaration of how it takes the tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapSpec {
    pub access: TapAccess,
    /// Frames carry a virtio-net header (`IFF_VNET_HDR`); Solo5 asks for `IFF_TAP|IFF_NO_PI`.
    pub vnet_hdr: bool,
}

/// The tap declaration of the monitor `name`.
pub fn tap_spec(name: &str) -> Result<TapSpec, PlanError> {
    Ok(lookup(name)?.tap())
}

pub const NAMES: &[&str] = &MonitorKind::NAMES;

/// The registry: one line per monitor.
pub fn monitor(kind: MonitorKind) -> Box<dyn Monitor> {
    match kind {
        MonitorKind::Qemu => Box::new(qemu::Qemu),
        MonitorKind::Firecracker => Box::new(firecracker::Firecracker),
        MonitorKind::CloudHypervisor => Box::new(cloud_hypervisor::CloudHypervisor),
        MonitorKind::Hvt => Box::new(solo5::Solo5::Hvt),
        MonitorKind::Spt => Box::new(solo5::Solo5::Spt),
    }
}

pub fn lookup(name: &str) -> Result<Box<dyn Monitor>, PlanError> {
    MonitorKind::from_name(name)
        .map(monitor)
        .ok_or_else(|| PlanError::UnknownMonitor(name.into(), NAMES.join(", ")))
}

pub use caps::declaration;
pub use qemu::QEMU_TB_MIB;

/// What the monitor process itself needs beside the guest's RAM (MiB), and the smallest guest
/// RAM it is started with (MiB). QEMU under TCG adds its translation cache (`tb-size=32`).
pub fn overhead_mib(monitor: &str, accel: Accel) -> (u64, u64) {
    let d = declaration(monitor);
    let extra = if accel == Accel::Tcg {
        d.tcg_extra_mib
    } else {
        0
    };
    (d.overhead_mib + extra, d.min_guest_mib)
}

const MIB: u64 = 1024 * 1024;

/// Guest RAM in MiB (see the module documentation).
pub fn memory_mib(input: &PlanInput, monitor: &str) -> Result<u64, PlanError> {
    let Some(limit) = input.memory_limit.filter(|l| *l > 0) else {
        return Ok((input.memory_bytes / MIB).max(1));
    };
    let (overhead, floor) = overhead_mib(monitor, input.accel);
    let limit_mib = limit / MIB;
    match limit_mib.checked_sub(overhead) {
        Some(guest) if guest >= floor => Ok(guest),
        _ => Err(PlanError::Invalid(format!(
            "memory limit of {limit_mib} MiB is too small: {monitor} needs {overhead} MiB for itself and the guest at least {floor} MiB"
        ))),
    }
}

/// The monitor binary: the config's `path`, else `$PATH`.
pub fn find_binary(
    name: &str,
    cfg: &crate::plan::MonitorConfig,
    arch: Arch,
) -> Result<PathBuf, PlanError> {
    let m = lookup(name)?;
    if !cfg.path.is_empty() {
        let p = PathBuf::from(&cfg.path);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(PlanError::MonitorNotFound(format!(
                "{} (configured path for {name}) is not an executable file",
                cfg.path
            )))
        };
    }
    let bin = m.binary(arch);
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(bin))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            PlanError::MonitorNotFound(format!(
                "{bin} is not in $PATH; install it or set [monitors.{name}] path in the urunc config"
            ))
        })
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Monitors that only run on KVM refuse TCG with a clear error.
fn require_kvm(input: &PlanInput, monitor: &str) -> Result<(), PlanError> {
    if input.accel == Accel::Tcg {
        return Err(PlanError::Invalid(format!(
            "{monitor} needs KVM, but TCG was chosen (/dev/kvm is not usable, or accel = \"tcg\" is configured)"
        )));
    }
    Ok(())
}

/// The initrd the monitor gets, and the copy to assemble when the guest appends records to it.
fn initrd(input: &PlanInput, guest: &GuestSetup) -> (Option<PathBuf>, Option<InitrdBuild>) {
    let base = input.initrd.as_ref().or(input.boot_initrd.as_ref());
    let copy = !guest.initrd_records.is_empty() || !input.initrd_files.is_empty();
    match (base, !copy) {
        (Some(base), false) => {
            let path = input.work_dir.join("initrd.img");
            let build = InitrdBuild {
                base: base.clone(),
                path: path.clone(),
                records: guest.initrd_records.clone(),
                files: input.initrd_files.clone(),
            };
            (Some(path), Some(build))
        }
        (Some(i), true) => (Some(i.clone()), None),
        (None, _) => (guest.extra_initrd.clone(), None),
    }
}

/// The fields every monitor fills the same way; the caller sets argv, files, devices.
/// Also returns the initrd the monitor must be given.
fn base_plan(
    input: &PlanInput,
    guest: &GuestSetup,
    argv: Vec<String>,
) -> (LaunchPlan, Option<PathBuf>) {
    let (initrd, initrd_build) = initrd(input, guest);
    let mut read_paths = vec![input.kernel.clone()];
    if let Some(b) = &initrd_build {
        read_paths.push(b.base.clone());
    }
    read_paths.extend(initrd.clone());
    let mut write_paths = Vec::new();
    // a block the monitor inherits as an fd needs no Landlock rule
    for b in guest.blocks.iter().filter(|b| b.fd.is_none()) {
        if b.read_only {
            read_paths.push(b.source.clone());
        } else {
            write_paths.push(b.source.clone());
        }
    }
    read_paths.dedup();
    write_paths.dedup();
    let mut keep_fds: Vec<i32> = input.net.iter().filter_map(|n| n.tap_fd).collect();
    keep_fds.extend(guest.blocks.iter().filter_map(|b| b.fd));
    let mut devices = Vec::new();
    if input.net.as_ref().is_some_and(|n| n.tap_fd.is_none()) {
        devices.push(PathBuf::from("/dev/net/tun"));
    }
    let plan = LaunchPlan {
        program: input.monitor_path.clone(),
        argv,
        env: Vec::new(),
        read_paths,
        data_dirs: caps::data_dirs(
            &declaration(&input.unikernel.hypervisor),
            &input.monitor_cfg.data_path,
        ),
        exec_paths: vec![input.monitor_path.clone()],
        write_paths,
        devices,
        files: guest.files.clone(),
        keep_fds,
        shutdown: Shutdown::Signal,
        needs_kvm: false,
        // `linux.seccomp` absent (seccomp=unconfined) turns our filter off, as urunc does
        seccomp: if input.seccomp {
            SeccompPolicy::DenyList
        } else {
            SeccompPolicy::Off
        },
        guest_cmdline: guest.cmdline.clone(),
        initrd_build,
        debug_exit: false,
        dhcp: input.net.is_some() && (guest.dhcp || input.dhcp_requested),
    };
    (plan, initrd)
}

/// Adds a generated file to the plan and to the paths the monitor may read.
fn add_file(plan: &mut LaunchPlan, path: PathBuf, contents: Vec<u8>) {
    plan.read_paths.push(path.clone());
    plan.files.push(GeneratedFile { path, contents });
}

/// Escapes a value for QEMU's and Cloud Hypervisor's `key=value,...` option syntax.
pub fn opt_escape(v: &str) -> String {
    v.replace(',', ",,")
}

#[cfg(test)]
mod registry_tests {
    use super::{declaration, monitor, MonitorKind};

    /// Every kind has its monitor and its declared capabilities (not the unknown fallback).
    #[test]
    fn each_kind_has_its_monitor_and_capabilities() {
        for k in MonitorKind::ALL {
            assert_eq!(monitor(k).kind(), k);
            // its declaration, not the unknown name's fallback
            let d = declaration(k.name());
            assert_eq!(d.overhead_mib, monitor(k).caps().overhead_mib);
            assert!(d.overhead_mib > 0);
        }
    }
}
