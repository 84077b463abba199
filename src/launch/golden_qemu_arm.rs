//! Golden QEMU plans for aarch64 guests (`-M virt`), native and emulated on x86_64; values
//! written by hand from the reference (sections 4 and 5.4).

use super::build;
use crate::plan::fixture::{input, net, strs};
use crate::plan::{Accel, Arch, SharedFs, SharedFsKind, Shutdown};

#[test]
fn linux_aarch64_virt_without_urunit_env_on_the_cmdline() {
    let mut i = input("linux", "qemu");
    i.arch = Arch::Aarch64;
    i.monitor_path = "/usr/bin/qemu-system-aarch64".into();
    i.net = Some(net());
    i.process.args = strs(&["/sbin/init"]);
    i.process.env = strs(&["A=1", "MSG=two words"]);
    i.shared_fs = Some(SharedFs {
        kind: SharedFsKind::NineP,
        path: "/b/rootfs".into(),
        socket: None,
        binds: Vec::new(),
    });
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/bin/qemu-system-aarch64",
            "-M", "virt",
            "-accel", "kvm", "-cpu", "host",
            "-m", "256M", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-kernel", "/b/rootfs/unikernel/kernel",
            "-netdev", "tap,id=net0,fd=3",
            "-device", "virtio-net-device,netdev=net0,host_mtu=1500,mac=aa:bb:cc:dd:ee:ff",
            "-fsdev", "local,id=rootfs9p,security_model=none,path=/b/rootfs",
            "-device", "virtio-9p-device,fsdev=rootfs9p,mount_tag=fs0",
            "-no-reboot",
            "-append",
            "panic=-1 console=ttyAMA0 quiet loglevel=2 root=fs0 rw rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl ip=10.4.0.5::10.4.0.1:255.255.255.0:urunc:eth0:off A=1 MSG=\"two words\" init=/sbin/init",
        ])
    );
}

/// An aarch64 guest emulated on an x86_64 host (`com.urunc.unikernel.arch=aarch64`): TCG,
/// `virt`, the PL011 console, urunit's channel on `virtio-serial-device`.
#[test]
fn linux_aarch64_tcg_initrd_urunit_channel() {
    let mut i = input("linux", "qemu");
    i.arch = Arch::Aarch64;
    i.accel = Accel::Tcg;
    i.monitor_path = "/usr/bin/qemu-system-aarch64".into();
    i.initrd = Some("/b/rootfs/initrd".into());
    i.guest_channel_fd = Some(5);
    i.process.args = strs(&["/urunit", "/bin/sh", "-c", "exit 5"]);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/bin/qemu-system-aarch64",
            "-M", "virt",
            "-accel", "tcg,tb-size=32", "-cpu", "max",
            "-m", "256M", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-kernel", "/b/rootfs/unikernel/kernel",
            "-device", "virtio-serial-device",
            "-chardev", "socket,id=urunit,fd=5",
            "-device", "virtserialport,chardev=urunit,name=urunc.urunit",
            "-initrd", "/run/urunc/c1/work/initrd.img",
            "-no-reboot",
            "-append",
            "panic=-1 console=ttyAMA0 quiet loglevel=2 root=/dev/ram0 rw URUNIT_CONFIG=/urunit.conf rdinit=/urunit -- /bin/sh -c 'exit 5'",
        ])
    );
    assert_eq!(p.shutdown, Shutdown::GuestChannel);
    assert!(!p.needs_kvm);
}

#[test]
fn foreign_guest_arch_only_on_qemu_without_kvm() {
    use crate::plan::guest_arch;
    let (host, foreign) = match Arch::host() {
        Arch::X86_64 => ("x86_64", "arm64"),
        Arch::Aarch64 => ("aarch64", "amd64"),
    };
    assert_eq!(
        guest_arch(None, ("firecracker", false), "kvm").unwrap(),
        Arch::host()
    );
    assert_eq!(
        guest_arch(Some(host), ("firecracker", false), "").unwrap(),
        Arch::host()
    );
    let other = guest_arch(Some(foreign), ("qemu", true), "").unwrap();
    assert_ne!(other, Arch::host());
    assert_eq!(
        guest_arch(Some(foreign), ("qemu", true), "tcg").unwrap(),
        other
    );
    let e = guest_arch(Some(foreign), ("qemu", true), "kvm")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot use KVM"), "{e}");
    let e = guest_arch(Some(foreign), ("firecracker", false), "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("only the qemu monitor"), "{e}");
    let e = guest_arch(Some("riscv64"), ("qemu", true), "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected x86_64"), "{e}");
}
