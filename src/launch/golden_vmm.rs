//! Golden Firecracker and Cloud Hypervisor plans, written by hand from the reference
//! (sections 5.5, 5.6 and worked example C) with our documented differences.

use super::build;
use crate::plan::fixture::{block, input, net, strs, MIB};
use crate::plan::{Accel, PlanError};
use std::path::PathBuf;

#[test]
fn firecracker_unikraft_initrd_net() {
    let mut i = input("unikraft", "firecracker");
    i.net = Some(net());
    i.initrd = Some("/b/rootfs/unikernel/initrd".into());
    i.process.args = strs(&["nginx", "-c", "/nginx/conf/nginx.conf"]);
    i.seccomp = true;
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/local/bin/firecracker",
            "--no-api",
            "--config-file",
            "/run/urunc/c1/work/fc.json",
        ])
    );
    assert_eq!(p.files.len(), 1);
    assert_eq!(p.files[0].path, PathBuf::from("/run/urunc/c1/work/fc.json"));
    assert_eq!(
        String::from_utf8(p.files[0].contents.clone()).unwrap(),
        concat!(
            r#"{"boot-source":{"kernel_image_path":"/b/rootfs/unikernel/kernel","#,
            r#""boot_args":"Unikraft netdev.ip=10.4.0.5/24:10.4.0.1:10.96.0.10 vfs.fstab=[ \"initrd0:/:extract:::\" ] -- nginx -c /nginx/conf/nginx.conf","#,
            r#""initrd_path":"/b/rootfs/unikernel/initrd"},"#,
            r#""machine-config":{"vcpu_count":1,"mem_size_mib":256,"smt":false,"track_dirty_pages":false},"#,
            r#""drives":[],"#,
            r#""network-interfaces":[{"iface_id":"net1","guest_mac":"aa:bb:cc:dd:ee:ff","host_dev_name":"tap0_c1"}]}"#
        )
    );
    // Firecracker opens the tap by name: no inherited fd, /dev/net/tun allowed.
    assert!(p.keep_fds.is_empty());
    assert_eq!(
        p.devices,
        vec![PathBuf::from("/dev/net/tun"), PathBuf::from("/dev/kvm")]
    );
    assert!(p
        .read_paths
        .contains(&PathBuf::from("/run/urunc/c1/work/fc.json")));
}

#[test]
fn firecracker_linux_block_volume_no_seccomp_memory_limit() {
    let mut i = input("linux", "firecracker");
    i.blocks = vec![
        block("rootfs", "/dev/loop3", "/"),
        block("vol3", "/dev/loop4", "/mnt/data/mp"),
    ];
    i.process.args = strs(&["/urunit", "/bin/cat", "/proc/self/mountinfo"]);
    i.memory_limit = Some(512 * MIB);
    i.vcpus = 2;
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/local/bin/firecracker",
            "--no-api",
            "--config-file",
            "/run/urunc/c1/work/fc.json",
            "--no-seccomp",
        ])
    );
    let fc = p
        .files
        .iter()
        .find(|f| f.path.ends_with("fc.json"))
        .unwrap();
    assert_eq!(
        String::from_utf8(fc.contents.clone()).unwrap(),
        concat!(
            r#"{"boot-source":{"kernel_image_path":"/b/rootfs/unikernel/kernel","#,
            r#""boot_args":"panic=-1 console=ttyS0 quiet loglevel=2 root=/dev/vda rw retain_initrd URUNIT_CONFIG=/sys/firmware/initrd init=/urunit -- /bin/cat /proc/self/mountinfo","#,
            r#""initrd_path":"/run/urunc/c1/work/urunit.conf"},"#,
            r#""machine-config":{"vcpu_count":2,"mem_size_mib":496,"smt":false,"track_dirty_pages":false},"#,
            r#""drives":[{"drive_id":"FCrootfs","is_read_only":false,"is_root_device":false,"path_on_host":"/dev/loop3"},"#,
            r#"{"drive_id":"FCvol3","is_read_only":false,"is_root_device":false,"path_on_host":"/dev/loop4"}]}"#
        )
    );
    let conf = p
        .files
        .iter()
        .find(|f| f.path.ends_with("urunit.conf"))
        .unwrap();
    // reference 4.6 (legacy sections, firecracker's `FC` id prefix), then the v1 encoding
    assert!(conf.contents.starts_with(
        b"UES\nUEE\nUCS\nUID:0\nGID:0\nWD:/\nUCE\nUBS\nID:FCvol3\nMP:/mnt/data/mp\nUBE\n\0"
    ));
    let c = urunit_proto::Config::decode_file(&conf.contents).unwrap();
    assert_eq!(c.blocks[0].id, "FCvol3");
}

#[test]
fn firecracker_osv_and_nanos_kernel_boot() {
    let mut i = input("osv", "firecracker");
    i.blocks = vec![block("rootfs", "/b/rootfs/usr.img", "/")];
    i.process.args = strs(&["/hello"]);
    let p = build(&i).unwrap();
    let fc = String::from_utf8(p.files[0].contents.clone()).unwrap();
    assert!(fc.contains(r#""boot_args":"/hello""#), "{fc}");
    assert!(fc.contains(r#""drives":[{"drive_id":"rootfs","is_read_only":false,"is_root_device":false,"path_on_host":"/b/rootfs/usr.img"}]"#), "{fc}");

    // nanos on Firecracker needs the kernel + image form
    let i = input("nanos", "firecracker");
    let e = build(&i).unwrap_err();
    assert!(e.to_string().contains("ops image as block device"), "{e}");
}

#[test]
fn kvm_only_monitors_refuse_tcg() {
    for (g, m) in [
        ("unikraft", "firecracker"),
        ("linux", "cloud-hypervisor"),
        ("mirage", "hvt"),
    ] {
        let mut i = input(g, m);
        i.process.args = strs(&["/urunit"]);
        i.accel = Accel::Tcg;
        let e = build(&i).unwrap_err();
        assert!(e.to_string().contains(&format!("{m} needs KVM")), "{e}");
    }
}

#[test]
fn cloud_hypervisor_linux_net_fd_disk_initrd() {
    let mut i = input("linux", "cloud-hypervisor");
    i.net = Some(net());
    i.blocks = vec![block("rootfs", "/dev/loop3", "/")];
    i.process.args = strs(&["/urunit", "/bin/busybox", "tail", "-f", "/dev/null"]);
    i.seccomp = true;
    i.memory_limit = Some(512 * MIB);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/local/bin/cloud-hypervisor",
            "--memory", "size=480M",
            "--cpus", "boot=1",
            "--kernel", "/b/rootfs/unikernel/kernel",
            "--console", "off", "--serial", "tty",
            "--seccomp", "true",
            "--net", "fd=3,mac=aa:bb:cc:dd:ee:ff,mtu=1500",
            "--disk", "path=/dev/loop3,id=rootfs,serial=rootfs",
            "--initramfs", "/run/urunc/c1/work/urunit.conf",
            "--cmdline",
            "panic=-1 console=ttyS0 quiet loglevel=2 root=/dev/vda rw ip=10.4.0.5::10.4.0.1:255.255.255.0:urunc:eth0:off retain_initrd URUNIT_CONFIG=/sys/firmware/initrd init=/urunit -- /bin/busybox tail -f /dev/null",
        ])
    );
    assert_eq!(p.keep_fds, vec![3]);
    assert_eq!(p.devices, vec![PathBuf::from("/dev/kvm")]);
    assert_eq!(p.write_paths, vec![PathBuf::from("/dev/loop3")]);
}

#[test]
fn bad_input_is_a_clear_error() {
    let e = build(&input("ukl", "qemu")).unwrap_err();
    assert!(matches!(e, PlanError::UnknownGuest(..)), "{e}");
    assert!(e.to_string().contains("unikraft, rumprun"), "{e}");
    let e = build(&input("unikraft", "hedge")).unwrap_err();
    assert!(matches!(e, PlanError::UnknownMonitor(..)), "{e}");
    let e = build(&input("rumprun", "qemu")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unikernel type rumprun cannot run on vmm qemu (it runs on: hvt, spt)"
    );
    let e = build(&input("linux", "qemu")).unwrap_err();
    assert_eq!(e.to_string(), "no init was specified");
    let mut i = input("unikraft", "qemu");
    i.memory_limit = Some(64 * MIB);
    let e = build(&i).unwrap_err();
    assert_eq!(
        e.to_string(),
        "memory limit of 64 MiB is too small: qemu needs 64 MiB for itself and the guest at least 16 MiB"
    );
    let mut i = input("unikraft", "qemu");
    i.machine = "virt".into();
    assert!(build(&i)
        .unwrap_err()
        .to_string()
        .contains("machine \"virt\""));
    let mut i = input("unikraft", "qemu");
    i.unikernel.initrd.clear();
    i.unikernel.blk_mnt_point.clear();
    let e =
        crate::plan::annotation_blocks(&i.unikernel, Some("/b/rootfs/x.img".into())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "annotation for block device was set without a mountpoint"
    );
}
