//! Firecracker (reference 5.5): `--no-api --config-file <work dir>/fc.json`; the JSON in urunc's
//! field order, without its always-empty `vsock` object. Firecracker opens the tap by name
//! (the tap is owned by the container's uid/gid), so it needs `/dev/net/tun` and no tap fd.

use super::caps::{Declaration, ProbeKind, Support};
use super::{add_file, base_plan, memory_mib, require_kvm, Monitor, TapAccess, TapSpec};
use crate::plan::MonitorKind;
use crate::plan::{Arch, LaunchPlan, PlanError, PlanInput};
use crate::plan::{Boot, GuestSetup};
use serde::Serialize;
use std::path::PathBuf;

pub struct Firecracker;

#[derive(Serialize)]
struct Config {
    #[serde(rename = "boot-source")]
    boot_source: BootSource,
    #[serde(rename = "machine-config")]
    machine_config: MachineConfig,
    drives: Vec<Drive>,
    #[serde(rename = "network-interfaces", skip_serializing_if = "Vec::is_empty")]
    network_interfaces: Vec<NetIface>,
}

#[derive(Serialize)]
struct BootSource {
    kernel_image_path: String,
    boot_args: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    initrd_path: Option<String>,
}

#[derive(Serialize)]
struct MachineConfig {
    vcpu_count: u32,
    mem_size_mib: u64,
    smt: bool,
    track_dirty_pages: bool,
}

#[derive(Serialize)]
struct Drive {
    drive_id: String,
    is_read_only: bool,
    is_root_device: bool,
    path_on_host: String,
}

#[derive(Serialize)]
struct NetIface {
    iface_id: String,
    guest_mac: String,
    host_dev_name: String,
}

impl Monitor for Firecracker {
    fn kind(&self) -> MonitorKind {
        MonitorKind::Firecracker
    }

    /// A KVM-only VMM (it has no emulator), probed on /dev/kvm; 16 MiB for itself.
    fn caps(&self) -> Declaration {
        Declaration::new(Support::KvmOnly, ProbeKind::DevKvm, (16, 16))
    }

    fn binary(&self, _arch: Arch) -> &'static str {
        "firecracker"
    }

    /// Firecracker opens the tap named by `host_dev_name` itself (`IFF_TAP|IFF_NO_PI|IFF_VNET_HDR`).
    fn tap(&self) -> TapSpec {
        TapSpec {
            access: TapAccess::Name,
            vnet_hdr: true,
        }
    }

    fn plan(&self, input: &PlanInput, guest: &GuestSetup) -> Result<LaunchPlan, PlanError> {
        require_kvm(input, "firecracker")?;
        if guest.boot != Boot::Kernel {
            return Err(PlanError::Invalid(
                "firecracker cannot boot a disk image; give it a kernel".into(),
            ));
        }
        let mib = memory_mib(input, "firecracker")?;
        let (mut plan, initrd) = base_plan(input, guest, Vec::new());
        let cfg = Config {
            boot_source: BootSource {
                kernel_image_path: input.kernel.display().to_string(),
                boot_args: guest.cmdline.clone(),
                initrd_path: initrd.map(|i| i.display().to_string()),
            },
            machine_config: MachineConfig {
                vcpu_count: input.vcpus.max(1),
                mem_size_mib: mib,
                smt: false,
                track_dirty_pages: false,
            },
            drives: guest
                .blocks
                .iter()
                .map(|b| Drive {
                    drive_id: b.id.clone(),
                    is_read_only: b.read_only,
                    is_root_device: b.root,
                    path_on_host: b.source.display().to_string(),
                })
                .collect(),
            network_interfaces: input
                .net
                .iter()
                .map(|n| NetIface {
                    iface_id: "net1".into(),
                    guest_mac: n.mac.clone(),
                    host_dev_name: n.tap.clone(),
                })
                .collect(),
        };
        let json = serde_json::to_vec(&cfg)
            .map_err(|e| PlanError::Invalid(format!("firecracker config: {e}")))?;
        let path = input.work_dir.join("fc.json");
        plan.argv = vec![
            input.monitor_path.display().to_string(),
            "--no-api".into(),
            "--config-file".into(),
            path.display().to_string(),
        ];
        if !input.seccomp {
            plan.argv.push("--no-seccomp".into());
        }
        add_file(&mut plan, path, json);
        // Firecracker opens the tap itself, by name.
        plan.keep_fds = Vec::new();
        if input.net.is_some() && !plan.devices.iter().any(|d| d == "/dev/net/tun") {
            plan.devices.push(PathBuf::from("/dev/net/tun"));
        }
        plan.devices.push(PathBuf::from("/dev/kvm"));
        plan.needs_kvm = true;
        Ok(plan)
    }
}
