//! Nanos (NanoVMs, images built by `ops`), two ways:
//!
//! - disk boot (QEMU only, what `ops run` does): `binary` is the ops disk image itself, started
//!   by the firmware on `pc` (or `q35`) from a virtio-blk disk;
//! - kernel boot: `binary` is the nanos kernel (`kernel.img`) and the `block` annotation at `/`
//!   is the ops image. On QEMU only the `microvm` machine runs it (on `pc` it prints nothing,
//!   shared/reference/real-guests.md), with `rtc=on,ioapic2=off` and modern virtio-mmio, as
//!   nanos's own `make run MICROVM=1` does (nanovms/nanos platform/pc/Makefile).
//!
//! On x86 QEMU nanos powers off by writing the program's exit status to isa-debug-exit at port
//! 0x501 (src/kernel/kvm_platform.h); without that device the VM never stops.
//!
//! The program, its arguments, environment and network settings come from the image's
//! manifest. Nanos merges `key=value` words of the kernel command line into it (`en1.ipaddr=`,
//! `environment.K=V`: src/kernel/init.c `cmdline_apply`, src/net/net.c), but only when it is
//! started through the Linux boot protocol's zero page (platform/pc/service.c `init_service`).
//! QEMU's `-kernel` takes nanos's PVH entry instead (the kernel carries the
//! XEN_ELFNOTE_PHYS32_ENTRY note), whose `cmdline_paddr` nanos ignores (`pvh_start`), and a disk
//! boot has no command line. So on QEMU a networked nanos asks DHCP for its address unless its
//! manifest pins one; the plan says so (`GuestSetup::dhcp`) and the supervisor answers on the
//! tap with the container's own address (`supervisor/dhcp_socket.rs`). Firecracker gets the words (the zero-page
//! boot); Firecracker releases with PVH boot (its docs/pvh.md) take the PVH entry too, and then
//! nanos ignores them there as well.

use super::{all_blocks, mask, Boot, Guest, GuestBlock, GuestSetup};
use crate::plan::MonitorKind;
use crate::plan::{Arch, PlanError, PlanInput, RootfsKind};
use crate::plan::{GuestKind, StorageCaps};

pub struct Nanos;

/// The machines the ops disk image boots on (firmware + virtio-blk on PCI), the default first.
const DISK_MACHINES: &[(&str, &str)] = &[("pc", ""), ("q35", "")];
/// The machine the nanos kernel boots on under QEMU, with its properties.
const KERNEL_MACHINES: &[(&str, &str)] = &[("microvm", "rtc=on,ioapic2=off")];

impl Guest for Nanos {
    fn kind(&self) -> GuestKind {
        GuestKind::Nanos
    }

    fn storage(&self) -> StorageCaps {
        StorageCaps {
            block: true,
            fs: &[],
        }
    }

    fn monitors(&self) -> &'static [MonitorKind] {
        &[MonitorKind::Qemu, MonitorKind::Firecracker]
    }

    fn prepare(&self, input: &PlanInput, monitor: MonitorKind) -> Result<GuestSetup, PlanError> {
        let disk = input.rootfs_kind() != RootfsKind::Block;
        if disk && monitor != MonitorKind::Qemu {
            return Err(PlanError::Invalid(format!(
                "nanos on {monitor} needs the nanos kernel as binary and the ops image as block device at /"
            )));
        }
        if monitor != MonitorKind::Qemu {
            return Ok(GuestSetup {
                cmdline: cmdline(input).join(" "),
                blocks: all_blocks(input, ""),
                ..Default::default()
            });
        }
        if let Some(n) = &input.net {
            log::info!(
                "nanos on qemu takes no command line: its DHCP request is answered with the container address {}/{} (a manifest that pins another address wins)",
                n.ip,
                n.prefix
            );
        }
        let x86 = input.arch == Arch::X86_64;
        let mut setup = GuestSetup {
            // a guest that resets instead of powering off stops too
            extra_args: vec!["-no-reboot".into()],
            debug_exit: x86,
            dhcp: input.net.is_some(),
            ..Default::default()
        };
        if disk {
            setup.boot = Boot::Disk;
            setup.x86_machines = DISK_MACHINES;
            setup.blocks = vec![GuestBlock {
                id: "rootfs".into(),
                source: input.kernel.clone(),
                read_only: false,
                root: true,
                fd: None,
            }];
        } else {
            setup.x86_machines = KERNEL_MACHINES;
            setup.virtio_mmio_modern = true;
            setup.blocks = all_blocks(input, "");
        }
        Ok(setup)
    }
}

/// The network and environment as nanos's command-line words (Firecracker's kernel boot).
fn cmdline(input: &PlanInput) -> Vec<String> {
    let mut p = Vec::new();
    if let Some(n) = &input.net {
        p.push(format!("en1.ipaddr={}", n.ip));
        p.push(format!("en1.netmask={}", mask(n.prefix)));
        if let Some(g) = n.gateway {
            p.push(format!("en1.gateway={g}"));
        }
    }
    for e in &input.process.env {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() && !e.contains(char::is_whitespace) => {
                p.push(format!("environment.{k}={v}"))
            }
            _ => log::warn!("nanos: environment entry {e:?} cannot go on the command line"),
        }
    }
    p
}
