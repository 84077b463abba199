//! What the plan is given, as the rest of urunc reads it: the unikernel's annotations
//! (parsed and checked in `unikernel`), the monitor's section of config.toml (`config`), and
//! the bind mounts and initrd files of the spec (`storage`). Only the data lives here, so that
//! the plan's vocabulary depends on no other part of urunc.

use serde::{Deserialize, Serialize};

/// The annotation naming the solo5 network device (`UnikernelConfig::solo5_net_dev`).
pub const SOLO5_NET_DEV: &str = "com.urunc.unikernel.solo5NetDev";
/// The annotation naming the solo5 block devices (`UnikernelConfig::solo5_blk_dev`).
pub const SOLO5_BLK_DEV: &str = "com.urunc.unikernel.solo5BlkDev";
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnikernelConfig {
    pub unikernel_type: String,
    pub hypervisor: String,
    pub binary: String,
    pub cmdline: String,
    pub version: String,
    pub initrd: String,
    pub block: String,
    pub blk_mnt_point: String,
    pub mount_rootfs: bool,
    pub accel: String,
    /// `SOLO5_NET_DEV`, checked by `values` and where it is used (`monitor/solo5_devices.rs`).
    #[serde(default)]
    pub solo5_net_dev: String,
    /// `SOLO5_BLK_DEV` (a comma-separated list), checked likewise.
    #[serde(default)]
    pub solo5_blk_dev: String,
    /// Read from `/urunc.json` rather than the spec's annotations (for error messages).
    #[serde(default)]
    pub from_urunc_json: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    pub default_memory_mb: u64,
    pub default_vcpus: u32,
    /// Absolute path of the monitor binary; empty means look it up in `$PATH`.
    pub path: String,
    /// QEMU: directory holding `qemu/` and `seabios/` data.
    pub data_path: String,
    pub vhost: bool,
    /// `kvm` (default where /dev/kvm works) or `tcg` (software emulation).
    pub accel: String,
    /// Group added to the monitor's groups when it needs /dev/kvm; empty: the owner of /dev/kvm.
    pub kvm_group: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindMount {
    /// Host path (absolute).
    pub source: PathBuf,
    /// Absolute path in the container.
    pub destination: String,
    pub read_only: bool,
    pub recursive: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

/// A host file or directory to copy into the guest's initrd at `destination`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitrdFile {
    pub source: PathBuf,
    pub destination: String,
}
