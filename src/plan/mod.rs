//! The launch plan: everything needed to start the monitor, as data. Guest types produce the
//! kernel command line and guest-side devices (`guest/`), monitors turn them into an argv or a
//! config file (`monitor/`), the sandbox turns the path lists into the Landlock ruleset.

mod arch;
pub mod channel;
#[cfg(test)]
pub mod fixture;
mod given;
mod kinds;
mod setup;

pub use arch::{guest_arch, Arch, ARCH_ANNOTATION};
pub use given::{
    BindMount, InitrdFile, MonitorConfig, UnikernelConfig, SOLO5_BLK_DEV, SOLO5_NET_DEV,
};
pub use kinds::{GuestKind, MonitorKind, StorageCaps};
use serde::{Deserialize, Serialize};
pub use setup::{Boot, GuestBlock, GuestSetup};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// The container's network as the guest must take it over (see `net/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetParams {
    /// Tap device name in the container's network namespace.
    pub tap: String,
    /// The tap's fd number as the monitor inherits it, when the monitor takes an fd.
    pub tap_fd: Option<i32>,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mac: String,
    pub mtu: u32,
    pub dns: Vec<IpAddr>,
    /// resolv.conf `search` domains and `options` (guests that write a resolv.conf).
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// Extra IPv6 addresses with prefix (guests that accept them).
    pub ipv6: Vec<(std::net::Ipv6Addr, u8)>,
    pub ipv6_gateway: Option<std::net::Ipv6Addr>,
}

/// The container's `process`, as the guest receives it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessParams {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub cwd: String,
    pub terminal: bool,
    /// The container's hostname (`spec.hostname`), which guests that can set one take over.
    #[serde(default)]
    pub hostname: String,
}

/// A block device given to the guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDev {
    pub id: String,
    /// Host path of the image or device.
    pub source: PathBuf,
    /// Guest mount point (`/` for the root filesystem).
    pub mount_point: String,
    pub fstype: String,
    pub read_only: bool,
    /// An open fd of the device or image, inherited by the monitor (QEMU `-add-fd`), when
    /// storage opened it for the monitor (`storage::prepare`).
    #[serde(default)]
    pub fd: Option<i32>,
}

/// Everything a plan is built from.
#[derive(Debug, Clone)]
#[allow(dead_code)] // read by the guest types and monitors as they fill in
pub struct PlanInput {
    pub id: String,
    pub arch: Arch,
    pub unikernel: UnikernelConfig,
    pub monitor_cfg: MonitorConfig,
    /// Resolved absolute monitor binary.
    pub monitor_path: PathBuf,
    /// Host paths, already resolved inside the rootfs.
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub blocks: Vec<BlockDev>,
    pub rootfs: PathBuf,
    pub process: ProcessParams,
    pub net: Option<NetParams>,
    pub memory_bytes: u64,
    pub vcpus: u32,
    pub seccomp: bool,
    pub accel: Accel,
    /// Private directory (mode 0700, owned by the monitor's user) for generated files.
    pub work_dir: PathBuf,
    /// The container's memory limit (`linux.resources.memory.limit`), when it has one: the
    /// guest then gets this minus the monitor's overhead (see `monitor::memory_mib`), so the
    /// cgroup limit covers guest and monitor together.
    pub memory_limit: Option<u64>,
    /// QEMU machine type from the `com.urunc.unikernel.machine` annotation (`pc`, `microvm`,
    /// `q35`, `virt`); empty: `pc` on x86_64, `virt` on aarch64.
    pub machine: String,
    /// The container's rootfs shared with the guest over 9p or virtio-fs (storage issue).
    pub shared_fs: Option<SharedFs>,
    /// fd number of urunit's channel (exit status, graceful shutdown) as the monitor inherits
    /// it, for Linux guests whose init is urunit.
    pub guest_channel_fd: Option<i32>,
    /// fd number of QEMU's monitor (QMP) socket as QEMU inherits it; used (with `-S`) only by
    /// plans with `debug_exit`, to learn that the guest started (`supervisor/qmp.rs`).
    pub qmp_fd: Option<i32>,
    /// Bind-mounted files and directories to append to the initrd copy (initrd rootfs).
    pub initrd_files: Vec<InitrdFile>,
    /// urunit and the image's modules as a boot initrd, for a Linux guest whose root is a disk
    /// or a shared directory (`storage::bootfs`); urunit's configuration is appended to a copy.
    pub boot_initrd: Option<PathBuf>,
    /// The `com.urunc.unikernel.dhcp` annotation is `true`: answer the guest's DHCP requests
    /// with the container's address, whatever the guest type (`GuestSetup::dhcp` is the
    /// guest type's own declaration).
    pub dhcp_requested: bool,
}

/// Annotation asking urunc to answer the guest's DHCP requests (ours; `true` or `false`).
pub const DHCP_ANNOTATION: &str = "com.urunc.unikernel.dhcp";

/// Annotation choosing the QEMU machine type for one container (ours).
pub const MACHINE_ANNOTATION: &str = "com.urunc.unikernel.machine";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SharedFsKind {
    NineP,
    Virtiofs,
}

/// A host directory given to the guest as its root filesystem, with mount tag `fs0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedFs {
    pub kind: SharedFsKind,
    /// The shared directory (9p), or the directory virtiofsd serves.
    pub path: PathBuf,
    /// virtiofsd's vhost-user socket (virtio-fs only).
    pub socket: Option<PathBuf>,
    /// The container's bind mounts, mounted into `path` (in the container's mount namespace)
    /// before the monitor starts.
    #[serde(default)]
    pub binds: Vec<BindMount>,
}

/// How the guest gets its root filesystem, derived from the input in urunc's priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsKind {
    Initrd,
    Block,
    NineP,
    Virtiofs,
    None,
}

impl PlanInput {
    pub fn rootfs_kind(&self) -> RootfsKind {
        if self.initrd.is_some() {
            RootfsKind::Initrd
        } else if self.blocks.iter().any(|b| b.mount_point == "/") {
            RootfsKind::Block
        } else {
            match self.shared_fs.as_ref().map(|s| s.kind) {
                Some(SharedFsKind::NineP) => RootfsKind::NineP,
                Some(SharedFsKind::Virtiofs) => RootfsKind::Virtiofs,
                None => RootfsKind::None,
            }
        }
    }

    /// The application's argv: `process.args`, else the cmdline annotation split on whitespace.
    pub fn app_args(&self) -> Vec<String> {
        if !self.process.args.is_empty() {
            return self.process.args.clone();
        }
        self.unikernel
            .cmdline
            .split_whitespace()
            .map(String::from)
            .collect()
    }
}

/// The block devices named by the `block`/`blkMntPoint` annotations (urunc's rules): an image at
/// `/` is the guest's root device (`rootfs`), elsewhere it is a volume (`annot_vol`); an image
/// without a mount point is an error. Ignored when the guest boots from an initrd.
pub fn annotation_blocks(
    uk: &UnikernelConfig,
    image: Option<PathBuf>,
) -> Result<Vec<BlockDev>, PlanError> {
    let Some(source) = image else {
        return Ok(Vec::new());
    };
    if !uk.initrd.is_empty() {
        return Ok(Vec::new());
    }
    let mp = uk.blk_mnt_point.trim();
    if mp.is_empty() {
        return Err(PlanError::Invalid(
            "annotation for block device was set without a mountpoint".into(),
        ));
    }
    let id = if mp == "/" { "rootfs" } else { "annot_vol" };
    Ok(vec![BlockDev {
        id: id.into(),
        source,
        mount_point: mp.into(),
        fstype: String::new(),
        read_only: false,
        fd: None,
    }])
}

/// How the supervisor asks the guest to shut down gracefully when the container gets SIGTERM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shutdown {
    /// Forward the signal as is.
    Signal,
    /// `TERM` / `SIG n` over urunit's channel (see `guest/urunit_channel.rs`).
    GuestChannel,
}

/// A file the monitor needs, written before it starts (Firecracker's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// The seccomp filter urunc installs in the monitor right before execve (`sandbox::seccomp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompPolicy {
    /// `linux.seccomp` absent from the spec: no filter (and no `-sandbox` for QEMU).
    Off,
    /// The deny-list every monitor gets.
    #[default]
    DenyList,
    /// urunc's allow-list for solo5-hvt.
    Solo5Hvt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchPlan {
    pub program: PathBuf,
    /// Full argv, argv[0] included; never a string split on spaces.
    pub argv: Vec<String>,
    pub env: Vec<String>,
    /// Files the monitor may read (and map): kernel, initrd, read-only images.
    pub read_paths: Vec<PathBuf>,
    /// The monitor's own data it may read where present (firmware, option ROMs): what it
    /// declares (`monitor::caps::Declaration::data_dirs`), with the config's `data_path`.
    #[serde(default)]
    pub data_dirs: Vec<PathBuf>,
    /// Files and directories the monitor may execute from (its binary and libraries).
    pub exec_paths: Vec<PathBuf>,
    /// Files the monitor may write (writable block images, its work dir).
    pub write_paths: Vec<PathBuf>,
    /// Device nodes it opens (with ioctl rights): /dev/kvm, /dev/net/tun, ...
    pub devices: Vec<PathBuf>,
    pub files: Vec<GeneratedFile>,
    /// fds the monitor inherits (the tap, the control channel), by their number.
    pub keep_fds: Vec<i32>,
    pub shutdown: Shutdown,
    pub needs_kvm: bool,
    #[serde(default)]
    pub seccomp: SeccompPolicy,
    /// The guest's command line, for logs and tests.
    pub guest_cmdline: String,
    /// An initrd to assemble before the monitor starts (the argv already names its `path`).
    pub initrd_build: Option<InitrdBuild>,
    /// QEMU has isa-debug-exit: its status (v << 1) | 1 carries the value v the guest wrote
    #[serde(default)]
    pub debug_exit: bool,
    /// The guest asks DHCP for its address: the supervisor answers on the tap with the
    /// container's own (`supervisor/dhcp_socket.rs`). Only plans with a network.
    #[serde(default)]
    pub dhcp: bool,
}

/// A copy of the image's initrd with newc cpio records appended (urunit's configuration, and
/// later the container's bind-mounted files): the image's file is never modified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitrdBuild {
    /// The image's initrd.
    pub base: PathBuf,
    /// Where the assembled copy goes (in the work dir).
    pub path: PathBuf,
    pub records: Vec<CpioRecord>,
    /// Host files and directories (bind mounts) appended after the records, read when the
    /// copy is assembled.
    #[serde(default)]
    pub files: Vec<InitrdFile>,
}

/// One entry of a newc cpio archive (a file, a directory, a symlink whose contents are its
/// target, or a device node).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpioRecord {
    /// Path inside the archive, without the leading `/`.
    pub name: String,
    /// File type and permission bits (`0o100644`).
    pub mode: u32,
    pub contents: Vec<u8>,
    /// uid, gid (root when absent).
    #[serde(default)]
    pub owner: (u32, u32),
    /// Device major and minor (device nodes only).
    #[serde(default)]
    pub rdev: (u32, u32),
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unikernel type {0:?} is not supported (supported: {1})")]
    UnknownGuest(String, String),
    #[error("vmm {0:?} is not supported (supported: {1})")]
    UnknownMonitor(String, String),
    #[error("unikernel type {guest} cannot run on vmm {monitor} (it runs on: {supported})")]
    Unsupported {
        guest: String,
        monitor: String,
        supported: String,
    },
    #[error("vmm not found: {0}")]
    MonitorNotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read the unikernel {path}: {source}")]
    Kernel {
        path: String,
        source: std::io::Error,
    },
}
