//! Shared inputs of the golden tests: a container as `create` would describe it.

use super::{
    Accel, Arch, BlockDev, MonitorConfig, NetParams, PlanInput, ProcessParams, UnikernelConfig,
};
use std::path::PathBuf;

pub const MIB: u64 = 1024 * 1024;

pub fn input(guest: &str, monitor: &str) -> PlanInput {
    let path = match monitor {
        "qemu" => "/usr/bin/qemu-system-x86_64",
        "firecracker" => "/usr/local/bin/firecracker",
        "cloud-hypervisor" => "/usr/local/bin/cloud-hypervisor",
        "hvt" => "/usr/local/bin/solo5-hvt",
        "spt" => "/usr/local/bin/solo5-spt",
        _ => "/usr/bin/false",
    };
    PlanInput {
        id: "c1".into(),
        arch: Arch::X86_64,
        unikernel: UnikernelConfig {
            unikernel_type: guest.into(),
            hypervisor: monitor.into(),
            binary: "/unikernel/kernel".into(),
            ..Default::default()
        },
        monitor_cfg: MonitorConfig::default(),
        monitor_path: PathBuf::from(path),
        kernel: PathBuf::from("/b/rootfs/unikernel/kernel"),
        initrd: None,
        blocks: Vec::new(),
        rootfs: PathBuf::from("/b/rootfs"),
        process: ProcessParams {
            cwd: "/".into(),
            ..Default::default()
        },
        net: None,
        memory_bytes: 256 * MIB,
        vcpus: 1,
        seccomp: false,
        accel: Accel::Kvm,
        work_dir: PathBuf::from("/run/urunc/c1/work"),
        guest_channel_fd: None,
        qmp_fd: None,
        memory_limit: None,
        machine: String::new(),
        shared_fs: None,
        initrd_files: Vec::new(),
        boot_initrd: None,
        dhcp_requested: false,
    }
}

/// The container's network: 10.4.0.5/24 via 10.4.0.1, tap fd 3.
pub fn net() -> NetParams {
    NetParams {
        tap: "tap0_c1".into(),
        tap_fd: Some(3),
        ip: "10.4.0.5".parse().unwrap(),
        prefix: 24,
        gateway: Some("10.4.0.1".parse().unwrap()),
        mac: "aa:bb:cc:dd:ee:ff".into(),
        mtu: 1500,
        dns: vec!["10.96.0.10".parse().unwrap()],
        dns_search: Vec::new(),
        dns_options: Vec::new(),
        ipv6: Vec::new(),
        ipv6_gateway: None,
    }
}

pub fn block(id: &str, source: &str, mount_point: &str) -> BlockDev {
    BlockDev {
        id: id.into(),
        source: PathBuf::from(source),
        mount_point: mount_point.into(),
        fstype: String::new(),
        read_only: false,
        fd: None,
    }
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
