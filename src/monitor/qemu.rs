//! QEMU (reference 5.4), x86_64 `pc` (default), `q35` or `microvm`, aarch64 `virt`; argv as a
//! list. Devices are in `qemu_devices.rs`.

use super::caps::{Declaration, ProbeKind, Support};
use super::qemu_devices::{blocks, net, shared_fs, start_gate, urunit_channel, Bus};
use super::{base_plan, memory_mib, Monitor};
use crate::plan::MonitorKind;
use crate::plan::SharedFsKind;
use crate::plan::{Accel, Arch, LaunchPlan, PlanError, PlanInput, Shutdown, MACHINE_ANNOTATION};
use crate::plan::{Boot, GuestSetup};
use std::path::PathBuf;

pub struct Qemu;

pub const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// The machine type and the properties the guest needs on it: the annotation's choice, else the
/// guest's default, else `pc` (x86_64) or `virt` (aarch64). A guest that boots only on some x86
/// machines (`GuestSetup::x86_machines`) refuses the others.
fn machine(input: &PlanInput, guest: &GuestSetup) -> Result<(String, &'static str), PlanError> {
    let m = input.machine.as_str();
    match (input.arch, m) {
        (Arch::X86_64, "" | "pc" | "q35" | "microvm") => {}
        (Arch::Aarch64, "" | "virt") => return Ok(("virt".into(), "")),
        _ => {
            return Err(PlanError::Invalid(format!(
            "qemu machine {m:?} is not supported on {:?} (x86_64: pc, q35, microvm; aarch64: virt)",
            input.arch
        )))
        }
    }
    let wanted = guest.x86_machines;
    if wanted.is_empty() {
        return Ok((if m.is_empty() { "pc" } else { m }.into(), ""));
    }
    let found = if m.is_empty() {
        wanted.first()
    } else {
        wanted.iter().find(|(name, _)| *name == m)
    };
    match found {
        Some((name, props)) => Ok(((*name).into(), props)),
        None => {
            let names: Vec<&str> = wanted.iter().map(|(n, _)| *n).collect();
            Err(PlanError::Invalid(format!(
                "this {} guest boots only on the qemu machine {}, not {m:?}: remove the {MACHINE_ANNOTATION} annotation or choose one of those",
                input.unikernel.unikernel_type,
                names.join(" or ")
            )))
        }
    }
}

/// QEMU's isa-debug-exit at its default port (0x501, two bytes), as the guests that declare
/// `GuestSetup::debug_exit` write it (nanos: src/kernel/kvm_platform.h, `out8(0x501, code)`;
/// Mewz: the device upstream urunc attaches, reference 4.4).
pub const DEBUG_EXIT: &str = "isa-debug-exit,iobase=0x501,iosize=2";

/// QEMU's TCG translation cache size (MiB); QEMU's default would be 1 GiB of address space.
pub const QEMU_TB_MIB: u64 = 32;

/// Where Debian's packages put what QEMU reads: its own data (`qemu-system-data`, or a build
/// installed under /usr/local), SeaBIOS (`seabios`: /usr/share/qemu/bios*.bin link there) and
/// the iPXE option ROMs of its NICs (`ipxe-qemu`).
const DATA_DIRS: &[&str] = &[
    "/usr/share/qemu",
    "/usr/share/seabios",
    "/usr/lib/ipxe/qemu",
    "/usr/share/ipxe",
    "/usr/local/share/qemu",
];

impl Monitor for Qemu {
    fn kind(&self) -> MonitorKind {
        MonitorKind::Qemu
    }

    /// KVM when it works, else TCG (probed by booting urunc's probe image); 64 MiB for itself
    /// plus the translation cache under TCG; QMP; block devices as fds; 9p and virtio-fs.
    fn caps(&self) -> Declaration {
        Declaration {
            qmp: true,
            tcg_extra_mib: QEMU_TB_MIB,
            block_fd: true,
            shared_fs: &[SharedFsKind::NineP, SharedFsKind::Virtiofs],
            data_dirs: DATA_DIRS,
            data_path_dirs: &["qemu", "seabios"],
            ..Declaration::new(Support::Emulates, ProbeKind::QemuBoot, (64, 16))
        }
    }

    fn binary(&self, arch: Arch) -> &'static str {
        match arch {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    fn plan(&self, input: &PlanInput, guest: &GuestSetup) -> Result<LaunchPlan, PlanError> {
        let (machine, props) = machine(input, guest)?;
        if guest.debug_exit && input.arch != Arch::X86_64 {
            return Err(PlanError::Invalid(format!(
                "the {} guest reports its status through isa-debug-exit, which only x86 qemu machines have",
                input.unikernel.unikernel_type
            )));
        }
        let bus = if machine == "microvm" || input.arch == Arch::Aarch64 {
            Bus::Mmio
        } else {
            Bus::Pci
        };
        let mib = memory_mib(input, "qemu")?;
        let mut a = head(input, &machine, props, mib);
        let mut push = |v: &[&str]| a.extend(v.iter().map(|s| s.to_string()));
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
        if bus == Bus::Mmio && guest.virtio_mmio_modern {
            a.extend(["-global".into(), "virtio-mmio.force-legacy=false".into()]);
        }
        a.extend(guest.extra_args.iter().cloned());
        if guest.debug_exit {
            a.extend(["-device".into(), DEBUG_EXIT.into()]);
        }
        if guest.boot == Boot::Kernel && !guest.cmdline.is_empty() {
            a.extend(["-append".to_string(), guest.cmdline.clone()]);
        }
        plan.argv = a;
        plan.debug_exit = guest.debug_exit;
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

/// The program, machine, accelerator, memory, firmware directory, console and sandbox.
fn head(input: &PlanInput, machine: &str, props: &str, mib: u64) -> Vec<String> {
    let mut a: Vec<String> = vec![input.monitor_path.display().to_string()];
    let mut push = |v: &[&str]| a.extend(v.iter().map(|s| s.to_string()));
    if props.is_empty() {
        push(&["-M", machine]);
    } else {
        push(&["-M", &format!("{machine},{props}")]);
    }
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
    a
}
