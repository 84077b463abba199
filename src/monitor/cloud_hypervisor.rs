//! Cloud Hypervisor (reference 5.6): argv as a list, the tap as an inherited fd
//! (`--net fd=N`), block devices for every guest type that has them (urunc passed none for
//! Linux guests), the serial console on stdio.

use super::caps::{Declaration, ProbeKind, Support};
use super::{base_plan, memory_mib, require_kvm, Monitor};
use crate::plan::MonitorKind;
use crate::plan::{Arch, LaunchPlan, PlanError, PlanInput, SharedFsKind};
use crate::plan::{Boot, GuestSetup};
use std::path::PathBuf;

pub struct CloudHypervisor;

impl Monitor for CloudHypervisor {
    fn kind(&self) -> MonitorKind {
        MonitorKind::CloudHypervisor
    }

    /// A KVM-only VMM (it has no emulator), probed on /dev/kvm; 32 MiB for itself; virtio-fs
    /// through virtiofsd.
    fn caps(&self) -> Declaration {
        Declaration {
            shared_fs: &[SharedFsKind::Virtiofs],
            ..Declaration::new(Support::KvmOnly, ProbeKind::DevKvm, (32, 16))
        }
    }

    fn binary(&self, _arch: Arch) -> &'static str {
        "cloud-hypervisor"
    }

    fn plan(&self, input: &PlanInput, guest: &GuestSetup) -> Result<LaunchPlan, PlanError> {
        require_kvm(input, "cloud-hypervisor")?;
        if guest.boot != Boot::Kernel {
            return Err(PlanError::Invalid(
                "cloud-hypervisor cannot boot a disk image; give it a kernel".into(),
            ));
        }
        let mib = memory_mib(input, "cloud-hypervisor")?;
        let virtiofs = input
            .shared_fs
            .as_ref()
            .filter(|s| s.kind == SharedFsKind::Virtiofs);
        if input
            .shared_fs
            .as_ref()
            .is_some_and(|s| s.kind == SharedFsKind::NineP)
        {
            return Err(PlanError::Invalid(
                "cloud-hypervisor has no 9p; share the rootfs over virtio-fs".into(),
            ));
        }
        let (mut plan, initrd) = base_plan(input, guest, Vec::new());
        let mut a = vec![input.monitor_path.display().to_string()];
        let mut memory = format!("size={mib}M");
        if virtiofs.is_some() {
            memory.push_str(",shared=on");
        }
        a.extend(["--memory".into(), memory]);
        a.extend(["--cpus".into(), format!("boot={}", input.vcpus.max(1))]);
        a.extend(["--kernel".into(), input.kernel.display().to_string()]);
        a.extend(["--console", "off", "--serial", "tty", "--seccomp"].map(String::from));
        a.push(input.seccomp.to_string());
        if let Some(n) = &input.net {
            let mut net = match n.tap_fd {
                Some(fd) => format!("fd={fd}"),
                None => format!("tap={}", n.tap),
            };
            net.push_str(&format!(",mac={}", n.mac));
            if n.mtu > 0 {
                net.push_str(&format!(",mtu={}", n.mtu));
            }
            a.extend(["--net".into(), net]);
        }
        for b in &guest.blocks {
            let mut d = format!("path={},id={},serial={}", b.source.display(), b.id, b.id);
            if b.read_only {
                d.push_str(",readonly=on");
            }
            a.extend(["--disk".into(), d]);
        }
        if let Some(i) = initrd {
            a.extend(["--initramfs".into(), i.display().to_string()]);
        }
        if let Some(s) = virtiofs {
            let sock = s.socket.as_ref().map(|p| p.display().to_string());
            a.extend([
                "--fs".into(),
                format!("tag=fs0,socket={}", sock.unwrap_or_default()),
            ]);
            plan.write_paths.extend(s.socket.clone());
        }
        a.extend(guest.extra_args.iter().cloned());
        if !guest.cmdline.is_empty() {
            a.extend(["--cmdline".into(), guest.cmdline.clone()]);
        }
        plan.argv = a;
        plan.devices.push(PathBuf::from("/dev/kvm"));
        plan.needs_kvm = true;
        Ok(plan)
    }
}
