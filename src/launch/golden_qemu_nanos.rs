//! Golden QEMU plans for Nanos and the guests that stop through isa-debug-exit. The facts:
//! shared/reference/real-guests.md (Nanos section: disk image on `pc` as virtio-blk; kernel.img
//! only on microvm with `rtc=on,ioapic2=off` and `virtio-mmio.force-legacy=false`; no exit
//! without isa-debug-exit), nanovms/nanos platform/pc/Makefile (the same microvm options, the
//! device at its default port, `exit $(($? >> 1))`), nanovms/nanos src/kernel/kvm_platform.h
//! (`out8(0x501, code)`), QEMU hw/misc/debugexit.c (`exit((val << 1) | 1)`, default iobase
//! 0x501, iosize 2).

use super::build;
use crate::plan::fixture::{block, input, net, strs};
use crate::plan::Arch;

const DEBUG_EXIT: &[&str] = &["-device", "isa-debug-exit,iobase=0x501,iosize=2"];

#[test]
fn nanos_disk_image_boots_on_pc_from_virtio_blk_and_stops_through_debug_exit() {
    let mut i = input("nanos", "qemu");
    i.kernel = "/b/rootfs/image".into();
    i.net = Some(net());
    i.process.env = strs(&["A=1"]);
    let p = build(&i).unwrap();
    assert_eq!(p.argv[1..3], strs(&["-M", "pc"]));
    let mut want = strs(&[
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-netdev",
        "tap,id=net0,fd=3",
        "-device",
        "virtio-net-pci,netdev=net0,host_mtu=1500,mac=aa:bb:cc:dd:ee:ff,romfile=",
        "-device",
        "virtio-blk-pci,serial=rootfs,drive=rootfs",
        "-drive",
        "format=raw,if=none,id=rootfs,file=/b/rootfs/image",
        "-no-reboot",
    ]);
    want.extend(strs(DEBUG_EXIT));
    assert_eq!(p.argv[11..], want);
    assert!(p.debug_exit);
    // no -kernel, no -append: the firmware boots the disk, which has no command line
    assert_eq!(p.guest_cmdline, "");
    assert!(p.write_paths.contains(&"/b/rootfs/image".into()));

    // q35 is accepted (nanos's own default machine), microvm is refused (no firmware disk boot)
    i.machine = "q35".into();
    assert_eq!(build(&i).unwrap().argv[1..3], strs(&["-M", "q35"]));
    i.machine = "microvm".into();
    let e = build(&i).unwrap_err().to_string();
    assert!(e.contains("only on the qemu machine pc or q35"), "{e}");
}

#[test]
fn nanos_kernel_boots_on_microvm_with_modern_mmio_and_debug_exit() {
    let mut i = input("nanos", "qemu");
    i.kernel = "/b/rootfs/kernel.img".into();
    i.blocks = vec![block("rootfs", "/b/rootfs/image", "/")];
    i.net = Some(net());
    let p = build(&i).unwrap();
    assert_eq!(p.argv[1..3], strs(&["-M", "microvm,rtc=on,ioapic2=off"]));
    let mut want = strs(&[
        "-kernel",
        "/b/rootfs/kernel.img",
        "-netdev",
        "tap,id=net0,fd=3",
        "-device",
        "virtio-net-device,netdev=net0,host_mtu=1500,mac=aa:bb:cc:dd:ee:ff",
        "-device",
        "virtio-blk-device,serial=rootfs,drive=rootfs",
        "-drive",
        "format=raw,if=none,id=rootfs,file=/b/rootfs/image",
        "-global",
        "virtio-mmio.force-legacy=false",
        "-no-reboot",
    ]);
    want.extend(strs(DEBUG_EXIT));
    assert_eq!(p.argv[17..], want);
    assert!(p.debug_exit);
    // nanos ignores a PVH command line: nothing is appended (see guest/nanos.rs)
    assert!(!p.argv.contains(&"-append".to_string()));

    // the kernel prints nothing on pc (real-guests.md): asking for it is an error
    i.machine = "pc".into();
    let e = build(&i).unwrap_err().to_string();
    assert!(e.contains("only on the qemu machine microvm"), "{e}");
}

#[test]
fn nanos_on_firecracker_keeps_its_command_line_and_arm_has_no_debug_exit() {
    let mut i = input("nanos", "firecracker");
    i.blocks = vec![block("rootfs", "/b/rootfs/image", "/")];
    i.net = Some(net());
    i.process.env = strs(&["A=1", "B=x y"]);
    let p = build(&i).unwrap();
    // nanos src/net/net.c reads ipaddr/netmask/gateway of the tuple `en1`
    assert_eq!(
        p.guest_cmdline,
        "en1.ipaddr=10.4.0.5 en1.netmask=255.255.255.0 en1.gateway=10.4.0.1 environment.A=1"
    );
    assert!(!p.debug_exit);

    // nanos on aarch64 powers off through PSCI (platform/virt/service.c): no ISA device there
    let mut i = input("nanos", "qemu");
    i.arch = Arch::Aarch64;
    i.monitor_path = "/usr/bin/qemu-system-aarch64".into();
    i.blocks = vec![block("rootfs", "/b/rootfs/image", "/")];
    let p = build(&i).unwrap();
    assert!(!p.debug_exit);
    assert!(!p.argv.iter().any(|a| a.starts_with("isa-debug-exit")));
}

#[test]
fn mewz_declares_the_debug_exit_too() {
    let p = build(&input("mewz", "qemu")).unwrap();
    assert!(p.debug_exit);
    assert!(p
        .argv
        .ends_with(&strs(&["-no-reboot", DEBUG_EXIT[0], DEBUG_EXIT[1]])));
    assert!(!build(&input("unikraft", "qemu")).unwrap().debug_exit);
}

/// Which plans ask the supervisor to answer DHCP: nanos on QEMU with a network (it reads
/// no command line there, see the module comment), any guest whose bundle asks for it with
/// the annotation, and never a plan without a network.
#[test]
fn dhcp_is_answered_for_nanos_on_qemu_and_on_request_only() {
    let mut i = input("nanos", "qemu");
    i.kernel = "/b/rootfs/image".into();
    assert!(!build(&i).unwrap().dhcp, "no network, nothing to answer");
    i.net = Some(net());
    assert!(build(&i).unwrap().dhcp, "nanos disk boot on qemu");

    let mut k = input("nanos", "qemu");
    k.kernel = "/b/rootfs/kernel.img".into();
    k.blocks = vec![block("rootfs", "/b/rootfs/image", "/")];
    k.net = Some(net());
    assert!(build(&k).unwrap().dhcp, "nanos kernel boot on qemu (PVH)");

    // Firecracker's zero-page boot hands nanos the en1.* words instead
    let mut f = input("nanos", "firecracker");
    f.kernel = "/b/rootfs/kernel.img".into();
    f.blocks = vec![block("rootfs", "/b/rootfs/image", "/")];
    f.net = Some(net());
    let p = build(&f).unwrap();
    assert!(!p.dhcp && p.guest_cmdline.contains("en1.ipaddr=10.4.0.5"));

    let mut l = input("linux", "qemu");
    l.process.args = vec!["/urunit".into(), "/app".into()];
    l.net = Some(net());
    assert!(
        !build(&l).unwrap().dhcp,
        "linux takes ip= on its command line"
    );
    l.dhcp_requested = true;
    assert!(build(&l).unwrap().dhcp, "the annotation asks for it");
    l.net = None;
    assert!(!build(&l).unwrap().dhcp, "no network, nothing to answer");
}
