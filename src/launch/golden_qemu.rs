//! Golden QEMU plans, every value written by hand from the reference (sections 4 and 5.4) with
//! our documented differences (README "Differences from the Go urunc").

use super::build;
use crate::plan::fixture::{block, input, net, strs, MIB};
use crate::plan::{Accel, CpioRecord, InitrdBuild, Shutdown};
use std::path::PathBuf;

const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

#[test]
fn unikraft_pc_kvm_net_initrd_env_args_with_spaces() {
    let mut i = input("unikraft", "qemu");
    i.net = Some(net());
    i.initrd = Some("/b/rootfs/unikernel/initrd".into());
    i.process.env = strs(&["PATH=/bin", "GREETING=hello world"]);
    i.process.args = strs(&["nginx", "-c", "/etc/nginx/my conf"]);
    i.seccomp = true;
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/bin/qemu-system-x86_64",
            "-M", "pc",
            "-accel", "kvm", "-cpu", "host",
            "-m", "256M", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-sandbox", SANDBOX,
            "-kernel", "/b/rootfs/unikernel/kernel",
            "-netdev", "tap,id=net0,fd=3",
            "-device", "virtio-net-pci,netdev=net0,host_mtu=1500,mac=aa:bb:cc:dd:ee:ff,romfile=",
            "-initrd", "/b/rootfs/unikernel/initrd",
            "-append",
            "Unikraft env.vars=[ PATH=/bin \"GREETING=hello world\" ] netdev.ip=10.4.0.5/24:10.4.0.1:10.96.0.10 vfs.fstab=[ \"initrd0:/:extract:::\" ] -- nginx -c \"/etc/nginx/my conf\"",
        ])
    );
    assert_eq!(p.keep_fds, vec![3]);
    assert!(p.needs_kvm);
    assert_eq!(p.devices, vec![PathBuf::from("/dev/kvm")]);
    assert_eq!(p.shutdown, Shutdown::Signal);
    assert!(p
        .read_paths
        .contains(&PathBuf::from("/b/rootfs/unikernel/initrd")));
    assert!(p.data_dirs.contains(&PathBuf::from("/usr/share/qemu")));
}

#[test]
fn unikraft_legacy_tcg_no_net_memory_limit_vcpus() {
    let mut i = input("unikraft", "qemu");
    i.unikernel.version = "0.15.0".into();
    i.unikernel.cmdline = "hello  Unikraft Qemu".into();
    i.accel = Accel::Tcg;
    i.memory_limit = Some(512 * MIB);
    i.vcpus = 2;
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/bin/qemu-system-x86_64",
            "-M",
            "pc",
            "-accel",
            "tcg,tb-size=32",
            "-cpu",
            "max",
            // 512 MiB limit - 64 MiB QEMU - 32 MiB translation cache
            "-m",
            "416M",
            "-smp",
            "2",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-kernel",
            "/b/rootfs/unikernel/kernel",
            "-append",
            "Unikraft -- hello Unikraft Qemu",
        ])
    );
    assert!(p.keep_fds.is_empty());
    assert!(!p.needs_kvm);
    assert!(p.devices.is_empty());
    // no urunit: SIGTERM goes to QEMU itself
    assert_eq!(p.shutdown, Shutdown::Signal);
}

#[test]
fn linux_microvm_block_root_volume_urunit_offlink_gateway() {
    let mut i = input("linux", "qemu");
    i.machine = "microvm".into();
    i.accel = Accel::Tcg;
    let mut n = net();
    n.prefix = 32;
    n.gateway = Some("169.254.1.1".parse().unwrap());
    n.tap_fd = Some(4);
    i.net = Some(n);
    i.blocks = vec![
        block("rootfs", "/dev/loop7", "/"),
        block("vol3", "/var/lib/data,1.img", "/mnt/data"),
    ];
    i.monitor_cfg.data_path = "/opt/urunc/share".into();
    i.monitor_cfg.vhost = true;
    i.process.args = strs(&["/urunit", "/usr/sbin/nginx", "-g", "daemon off;"]);
    i.process.env = strs(&["PATH=/usr/bin"]);
    i.process.uid = 101;
    i.process.gid = 101;
    i.process.cwd = "/srv".into();
    let p = build(&i).unwrap();
    let cmdline = "panic=-1 console=ttyS0 quiet loglevel=2 root=/dev/vda rw ip=10.4.0.5::169.254.1.1:255.255.255.255:urunc:eth0:off retain_initrd URUNIT_CONFIG=/sys/firmware/initrd URUNIT_DEFROUTE=1 tsc_early_khz=2000000 init=/urunit -- /usr/sbin/nginx -g 'daemon off;'";
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/bin/qemu-system-x86_64",
            "-M",
            "microvm",
            "-accel",
            "tcg,tb-size=32",
            "-cpu",
            "max",
            "-m",
            "256M",
            "-smp",
            "1",
            "-L",
            "/opt/urunc/share/qemu",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-kernel",
            "/b/rootfs/unikernel/kernel",
            "-netdev",
            "tap,id=net0,fd=4,vhost=on",
            "-device",
            "virtio-net-device,netdev=net0,host_mtu=1500,mac=aa:bb:cc:dd:ee:ff",
            "-device",
            "virtio-blk-device,serial=rootfs,drive=rootfs",
            "-drive",
            "format=raw,if=none,id=rootfs,file=/dev/loop7",
            "-device",
            "virtio-blk-device,serial=vol3,drive=vol3",
            "-drive",
            "format=raw,if=none,id=vol3,file=/var/lib/data,,1.img",
            "-initrd",
            "/run/urunc/c1/work/urunit.conf",
            "-no-reboot",
            "-append",
            cmdline,
        ])
    );
    assert_eq!(p.guest_cmdline, cmdline);
    assert_eq!(p.files.len(), 1);
    assert_eq!(
        p.files[0].path,
        PathBuf::from("/run/urunc/c1/work/urunit.conf")
    );
    // reference 4.6: the legacy sections for upstream's urunit, then the v1 encoding ours reads
    let conf = &p.files[0].contents;
    assert!(conf.starts_with(
        b"UES\nPATH=/usr/bin\nUEE\nUCS\nUID:101\nGID:101\nWD:/srv\nUCE\nUBS\nID:vol3\nMP:/mnt/data\nUBE\n\0"
    ));
    let c = urunit_proto::Config::decode_file(conf).unwrap();
    let n = c.net.unwrap();
    assert_eq!(
        (n.ip, n.gw, n.mtu),
        (
            Some(("10.4.0.5".parse().unwrap(), 32)),
            Some("169.254.1.1".parse().unwrap()),
            Some(1500)
        )
    );
    assert_eq!(
        p.write_paths,
        vec![
            PathBuf::from("/dev/loop7"),
            PathBuf::from("/var/lib/data,1.img")
        ]
    );
    assert!(p
        .data_dirs
        .contains(&PathBuf::from("/opt/urunc/share/seabios")));
    assert_eq!(p.devices, vec![PathBuf::from("/dev/vhost-net")]);
}

#[test]
fn linux_initrd_rootfs_appends_urunit_config_to_a_copy() {
    let mut i = input("linux", "qemu");
    i.initrd = Some("/b/rootfs/boot/initrd".into());
    i.process.args = strs(&["/urunit", "/clis", "Linux", "Qemu urunc"]);
    i.process.gid = 17;
    let p = build(&i).unwrap();
    let n = p.argv.len();
    assert_eq!(
        p.argv[n - 5..],
        strs(&[
            "-initrd", "/run/urunc/c1/work/initrd.img",
            "-no-reboot",
            "-append",
            "panic=-1 console=ttyS0 quiet loglevel=2 root=/dev/ram0 rw URUNIT_CONFIG=/urunit.conf rdinit=/urunit -- /clis Linux 'Qemu urunc'",
        ])
    );
    let mut build = p.initrd_build.unwrap();
    let conf = std::mem::take(&mut build.records[0].contents);
    assert_eq!(
        build,
        InitrdBuild {
            base: "/b/rootfs/boot/initrd".into(),
            path: "/run/urunc/c1/work/initrd.img".into(),
            records: vec![CpioRecord {
                name: "urunit.conf".into(),
                mode: 0o100400,
                ..Default::default()
            }],
            files: Vec::new(),
        }
    );
    // reference 4.6 (legacy sections), then the v1 encoding
    assert!(conf.starts_with(b"UES\nUEE\nUCS\nUID:0\nGID:17\nWD:/\nUCE\nUBS\nUBE\n\0"));
    assert_eq!(urunit_proto::Config::decode_file(&conf).unwrap().gid, 17);
    assert!(p.files.is_empty());
}

#[test]
fn mewz_and_hermit_nics() {
    let mut i = input("mewz", "qemu");
    i.net = Some(net());
    i.process.args = strs(&["ignored"]);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv[19..],
        strs(&[
            "-netdev", "tap,id=net0,fd=3",
            "-device", "virtio-net-pci,netdev=net0,disable-legacy=on,disable-modern=off,mac=aa:bb:cc:dd:ee:ff,romfile=",
            "-no-reboot", "-device", "isa-debug-exit,iobase=0x501,iosize=2",
            "-append", "ip=10.4.0.5/24 gateway=10.4.0.1",
        ])
    );
    // without a network mewz gets no command line at all
    i.net = None;
    let p = build(&i).unwrap();
    assert!(!p.argv.contains(&"-append".to_string()));

    let mut i = input("hermit", "qemu");
    i.net = Some(net());
    i.initrd = Some("/b/rootfs/hello".into());
    i.process.args = strs(&["hello", "big world"]);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv[19..],
        strs(&[
            "-netdev",
            "tap,id=net0,fd=3",
            "-device",
            "virtio-net-pci,netdev=net0,disable-legacy=on,mac=aa:bb:cc:dd:ee:ff,romfile=",
            "-initrd",
            "/b/rootfs/hello",
            "-no-reboot",
            "-append",
            "ip=10.4.0.5/24 gateway=10.4.0.1 -- hello 'big world'",
        ])
    );
}

#[test]
fn mirage_on_qemu_gets_the_default_nic_and_no_block() {
    let mut i = input("mirage", "qemu");
    i.net = Some(net());
    i.blocks = vec![block("annot_vol", "/b/rootfs/data.img", "/data")];
    i.process.args = strs(&["--hello=holaHola"]);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv[19..],
        strs(&[
            "-netdev",
            "tap,id=net0,fd=3",
            "-device",
            "virtio-net-pci,netdev=net0,host_mtu=1500,mac=aa:bb:cc:dd:ee:ff,romfile=",
            "-append",
            "--ipv4=10.4.0.5/24 --ipv4-gateway=10.4.0.1 --hello=holaHola",
        ])
    );
}

#[test]
fn osv_on_qemu() {
    let mut i = input("osv", "qemu");
    i.net = Some(net());
    i.blocks = vec![block("rootfs", "/b/rootfs/usr.img", "/")];
    i.process.env = strs(&["PORT=8000"]);
    i.process.args = strs(&["/hello", "a b"]);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv[23..],
        strs(&[
            "-device", "virtio-blk-pci,serial=rootfs,drive=rootfs",
            "-drive", "format=raw,if=none,id=rootfs,file=/b/rootfs/usr.img",
            "-append",
            "--ip=eth0,10.4.0.5,255.255.255.0 --defaultgw=10.4.0.1 --nameserver=10.96.0.10 --env=PORT=8000 /hello \"a b\"",
        ])
    );
}

/// isa-debug-exit (mewz attaches it) makes the plan a `debug_exit` one; with a QMP socket
/// from the supervisor QEMU then starts paused behind the start gate (`supervisor/qmp.rs`).
#[test]
fn debug_exit_plans_start_behind_the_qmp_gate() {
    let mut i = input("mewz", "qemu");
    let p = build(&i).unwrap();
    assert!(p.debug_exit);
    assert!(!p.argv.contains(&"-S".to_string()));
    i.qmp_fd = Some(9);
    let p = build(&i).unwrap();
    let n = p.argv.len();
    assert_eq!(
        p.argv[n - 5..],
        strs(&[
            "-S",
            "-chardev",
            "socket,id=qmp,fd=9",
            "-mon",
            "chardev=qmp,mode=control"
        ])
    );
    assert!(p.keep_fds.contains(&9));
    // no isa-debug-exit, no gate: the supervisor then drops its QMP socket
    let mut l = input("unikraft", "qemu");
    l.qmp_fd = Some(9);
    let p = build(&l).unwrap();
    assert!(!p.debug_exit && !p.keep_fds.contains(&9));
}
