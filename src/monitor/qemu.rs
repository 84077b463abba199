//! QEMU (reference 5.4), x86_64 `pc` (default), `q35` or `microvm`, aarch64 `virt`; argv as a
//! list. Devices are in `qemu_devices.rs`.

use super::qemu_devices::{blocks, net, shared_fs, start_gate, urunit_channel, Bus};
use super::{base_plan, memory_mib, Monitor, QEMU_TB_MIB};
use crate::guest::{Boot, GuestSetup};
use crate::plan::{Accel, Arch, LaunchPlan, PlanError, PlanInput, Shutdown};
use std::path::PathBuf;

pub struct Qemu;

pub const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

fn machine(input: &PlanInput) -> Result<&str, PlanError> {
    let m = input.machine.as_str();
    match (input.arch, m) {
        (Arch::X86_64, "") => Ok("pc"),
        (Arch::X86_64, "pc" | "q35" | "microvm") | (Arch::Aarch64, "virt") => Ok(m),
        (Arch::Aarch64, "") => Ok("virt"),
        _ => Err(PlanError::Invalid(format!(
            "qemu machine {m:?} is not supported on {:?} (x86_64: pc, q35, microvm; aarch64: virt)",
            input.arch
        ))),
    }
}

impl Monitor for Qemu {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn binary(&self, arch: Arch) -> &'static str {
        match arch {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    fn plan(&self, input: &PlanInput, guest: &GuestSetup) -> Result<LaunchPlan, PlanError> {
        let machine = machine(input)?;
        let bus = if machine == "microvm" || input.arch == Arch::Aarch64 {
            Bus::Mmio
        } else {
            Bus::Pci
        };
        let mib = memory_mib(input, "qemu")?;
        let mut a: Vec<String> = vec![input.monitor_path.display().to_string()];
        let mut push = |v: &[&str]| a.extend(v.iter().map(|s| s.to_string()));
        push(&["-M", machine]);
        match input.accel {
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => push(&[
                "-accel",
                &format!("tcg,tb-size={QEMU_TB_MIB}"),
                "-cpu",
                "max",
            ]),
        }
        push(&[
            "-m",
            &format!("{mib}M"),
            "-smp",
            &input.vcpus.max(1).to_string(),
        ]);
        let data = &input.monitor_cfg.data_path;
        if !data.is_empty() {
            push(&["-L", &format!("{}/qemu", data.trim_end_matches('/'))]);
        }
        push(&[
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            "stdio",
        ]);
        if input.seccomp {
            push(&["-sandbox", SANDBOX]);
        }
        if guest.boot == Boot::Kernel {
            push(&["-kernel", &input.kernel.display().to_string()]);
        }
        a.extend(urunit_channel(input, bus));
        a.extend(net(input, guest, bus));
        a.extend(blocks(&guest.blocks, bus));
        a.extend(shared_fs(input, mib, bus));
        let (mut plan, initrd) = base_plan(input, guest, Vec::new());
        if let Some(i) = initrd.filter(|_| guest.boot == Boot::Kernel) {
            a.extend(["-initrd".to_string(), i.display().to_string()]);
        }
        a.extend(guest.extra_args.iter().cloned());
        if guest.boot == Boot::Kernel && !guest.cmdline.is_empty() {
            a.extend(["-append".to_string(), guest.cmdline.clone()]);
        }
        plan.argv = a;
        plan.read_paths.extend(firmware_dirs(data));
        if let Some(s) = &input.shared_fs {
            plan.write_paths.push(s.path.clone());
            plan.write_paths.extend(s.socket.clone());
        }
        if input.accel == Accel::Kvm {
            plan.needs_kvm = true;
            plan.devices.push(PathBuf::from("/dev/kvm"));
        }
        if input.monitor_cfg.vhost && input.net.is_some() {
            plan.devices.push(PathBuf::from("/dev/vhost-net"));
        }
        if let Some(fd) = input.guest_channel_fd {
            plan.keep_fds.push(fd);
            plan.shutdown = Shutdown::GuestChannel;
        }
        // isa-debug-exit carries the guest's status in QEMU's; whoever attached it
        plan.debug_exit |= plan.argv.iter().any(|a| a.starts_with("isa-debug-exit"));
        if let Some(fd) = input.qmp_fd.filter(|_| plan.debug_exit) {
            plan.argv.extend(start_gate(fd));
            plan.keep_fds.push(fd);
        }
        Ok(plan)
    }
}

/// Firmware and option ROM directories QEMU reads (Debian's layout, or `data_path`'s).
fn firmware_dirs(data_path: &str) -> Vec<PathBuf> {
    if data_path.is_empty() {
        [
            "/usr/share/qemu",
            "/usr/share/seabios",
            "/usr/lib/ipxe/qemu",
        ]
        .iter()
        .map(PathBuf::from)
        .collect()
    } else {
        let d = data_path.trim_end_matches('/');
        vec![
            PathBuf::from(format!("{d}/qemu")),
            PathBuf::from(format!("{d}/seabios")),
        ]
    }
}
