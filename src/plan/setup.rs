//! What a guest type hands the monitor: its command line, block devices, boot mode and the
//! few guest-specific device choices (`GuestSetup`), and where urunit's control channel
//! appears to the guest (`channel`).

use super::GeneratedFile;
use std::path::PathBuf;

/// A block device as the guest takes it: `id` is the device's name for the guest (the QEMU
/// serial and drive id, the Firecracker drive id, the solo5 device name).
#[derive(Debug, Clone, PartialEq)]
pub struct GuestBlock {
    pub id: String,
    pub source: PathBuf,
    pub read_only: bool,
    /// Firecracker's `is_root_device`.
    pub root: bool,
    /// The open device or image the monitor inherits (QEMU), instead of opening `source`.
    pub fd: Option<i32>,
}

/// How the monitor starts the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Boot {
    /// The kernel is loaded by the monitor (`-kernel`, `kernel_image_path`, solo5 argument).
    #[default]
    Kernel,
    /// The kernel file is a bootable disk image started by the firmware (nanos, QEMU only).
    Disk,
}

/// What a guest type contributes to the plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestSetup {
    /// The guest's command line (kernel args, or the unikernel's own format).
    pub cmdline: String,
    /// Extra initrd (urunit's configuration) to pass beside the image's.
    pub extra_initrd: Option<PathBuf>,
    /// Monitor-specific extra arguments (e.g. QEMU's `-no-reboot`).
    pub extra_args: Vec<String>,
    /// Files the supervisor writes before starting the monitor (urunit's configuration).
    pub files: Vec<GeneratedFile>,
    /// Block devices the guest takes, in order.
    pub blocks: Vec<GuestBlock>,
    /// Extra options of QEMU's virtio-net PCI device (`disable-legacy=on`); empty: urunc's
    /// default device with `host_mtu`.
    pub nic_options: Vec<&'static str>,
    /// The solo5 network device name used when the unikernel has no manifest.
    pub solo5_net: &'static str,
    pub boot: Boot,
    /// Records to append to a copy of the image's initrd (urunit's configuration when the
    /// initrd is the guest's root filesystem).
    pub initrd_records: Vec<super::CpioRecord>,
    /// The guest powers off by writing its exit status v to QEMU's isa-debug-exit device at
    /// port 0x501 (QEMU's default), and QEMU then exits with `(v << 1) | 1` (x86 only).
    pub debug_exit: bool,
    /// The x86 QEMU machine types the guest boots on, each with the machine properties it
    /// needs there, the default first; empty: any (`pc` by default).
    pub x86_machines: &'static [(&'static str, &'static str)],
    /// virtio-mmio transports in virtio 1.0 mode only (QEMU's microvm offers legacy ones by
    /// default, which some guests do not drive).
    pub virtio_mmio_modern: bool,
    /// The guest asks DHCP for its address (`LaunchPlan::dhcp`).
    pub dhcp: bool,
}
