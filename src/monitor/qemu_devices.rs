//! QEMU devices: the NIC on the inherited tap fd, virtio-blk drives, the shared rootfs.

use super::opt_escape;
use crate::plan::{GuestBlock, GuestSetup};
use crate::plan::{PlanInput, SharedFsKind};

/// virtio transport: PCI on `pc`/`q35`, MMIO on `microvm` and aarch64 `virt` (as urunc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    Pci,
    Mmio,
}

impl Bus {
    fn device(self, kind: &str) -> String {
        match self {
            Bus::Pci => format!("virtio-{kind}-pci"),
            Bus::Mmio => format!("virtio-{kind}-device"),
        }
    }
}

/// `-netdev tap` on the inherited fd (or by name when the monitor must open it) and the NIC.
pub fn net(input: &PlanInput, guest: &GuestSetup, bus: Bus) -> Vec<String> {
    let Some(n) = &input.net else {
        return Vec::new();
    };
    let mut netdev = match n.tap_fd {
        Some(fd) => format!("tap,id=net0,fd={fd}"),
        None => format!(
            "tap,id=net0,ifname={},script=no,downscript=no",
            opt_escape(&n.tap)
        ),
    };
    if input.monitor_cfg.vhost {
        netdev.push_str(",vhost=on");
    }
    let mut dev = format!("{},netdev=net0", bus.device("net"));
    if guest.nic_options.is_empty() {
        if n.mtu > 0 {
            dev.push_str(&format!(",host_mtu={}", n.mtu));
        }
    } else if bus == Bus::Pci {
        for o in &guest.nic_options {
            dev.push(',');
            dev.push_str(o);
        }
    }
    dev.push_str(&format!(",mac={}", n.mac));
    if bus == Bus::Pci {
        // No option ROM: guests boot from -kernel or disk, never from the network.
        dev.push_str(",romfile=");
    }
    vec!["-netdev".into(), netdev, "-device".into(), dev]
}

/// One virtio-blk device per block, the serial naming it for the guest.
pub fn blocks(blocks: &[GuestBlock], bus: Bus) -> Vec<String> {
    let mut a = Vec::new();
    for b in blocks {
        let id = opt_escape(&b.id);
        a.push("-device".into());
        a.push(format!("{},serial={id},drive={id}", bus.device("blk")));
        let file = match b.fd {
            // an inherited fd, opened by storage with the right access mode (fd set = fd)
            Some(fd) => {
                a.push("-add-fd".into());
                a.push(format!("fd={fd},set={fd}"));
                format!("/dev/fdset/{fd}")
            }
            None => opt_escape(&b.source.display().to_string()),
        };
        let mut drive = format!("format=raw,if=none,id={id},file={file}");
        if b.fd.is_some() && b.source.starts_with("/dev/") {
            // QEMU cannot stat an fd set to tell a device from an image
            drive.push_str(",file.driver=host_device");
        }
        if b.read_only {
            drive.push_str(",readonly=on");
        } else if b.fd.is_some() {
            // -drive opens read-only first and reopens read-write (auto-read-only): the fd
            // set holds only the read-write fd
            drive.push_str(",auto-read-only=off");
        }
        a.push("-drive".into());
        a.push(drive);
    }
    a
}

/// The container rootfs over 9p or virtio-fs, mount tag `fs0` (reference 5.4).
pub fn shared_fs(input: &PlanInput, mib: u64, bus: Bus) -> Vec<String> {
    let Some(s) = &input.shared_fs else {
        return Vec::new();
    };
    let path = opt_escape(&s.path.display().to_string());
    match s.kind {
        SharedFsKind::NineP => vec![
            "-fsdev".into(),
            format!("local,id=rootfs9p,security_model=none,path={path}"),
            "-device".into(),
            format!("{},fsdev=rootfs9p,mount_tag=fs0", bus.device("9p")),
        ],
        SharedFsKind::Virtiofs => {
            let sock = s
                .socket
                .as_ref()
                .map(|p| opt_escape(&p.display().to_string()))
                .unwrap_or_default();
            let fs = match bus {
                Bus::Pci => "vhost-user-fs-pci",
                Bus::Mmio => "vhost-user-fs-device",
            };
            vec![
                "-object".into(),
                format!("memory-backend-memfd,id=mem,size={mib}M,share=on"),
                "-numa".into(),
                "node,memdev=mem".into(),
                "-chardev".into(),
                format!("socket,id=char0,path={sock}"),
                "-device".into(),
                format!("{fs},queue-size=1024,chardev=char0,tag=fs0"),
            ]
        }
    }
}

/// urunit's channel (exit status, graceful stop) on the inherited socket: an ISA serial port
/// (the guest's ttyS1) on x86, a virtio-serial port on aarch64 (`guest/urunit_channel.rs`).
pub fn urunit_channel(input: &PlanInput, bus: Bus) -> Vec<String> {
    use urunit_proto::Channel;
    let (Some(fd), Some(dev)) = (input.guest_channel_fd, crate::plan::channel::device(input))
    else {
        return Vec::new();
    };
    let chardev = format!("socket,id=urunit,fd={fd}");
    match dev {
        Channel::Serial(_) => vec![
            "-chardev".into(),
            chardev,
            "-device".into(),
            "isa-serial,chardev=urunit,index=1".into(),
        ],
        Channel::VirtioPort(name) => vec![
            "-device".into(),
            bus.device("serial"),
            "-chardev".into(),
            chardev,
            "-device".into(),
            format!("virtserialport,chardev=urunit,name={name}"),
        ],
    }
}

/// QEMU paused before the guest runs (`-S`) with QMP on the inherited socket: the supervisor
/// starts the guest with `cont` and so learns that QEMU got that far (`supervisor/qmp.rs`).
pub fn start_gate(fd: i32) -> Vec<String> {
    vec![
        "-S".into(),
        "-chardev".into(),
        format!("socket,id=qmp,fd={fd}"),
        "-mon".into(),
        "chardev=qmp,mode=control".into(),
    ]
}
