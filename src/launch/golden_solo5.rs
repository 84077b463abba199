//! Golden solo5 plans (reference 4.2, 4.3, 5.7 and worked example A), names from the manifest.
//! The tap is named, `--net:NAME=TAP`: the only form Solo5 v0.10.0 and later accept
//! (`real-guests.md`, Solo5 section; solo5 `tenders/common/tap_attach.c`).

use super::build;
use crate::monitor::solo5_manifest::{test_elf, DevKind};
use crate::plan::fixture::{block, input, net, strs, MIB};
use crate::plan::NetParams;
use std::path::PathBuf;

/// The container network as `net/` sets it up for a tender that opens the tap by name.
fn named_net() -> NetParams {
    NetParams {
        tap_fd: None,
        ..net()
    }
}

#[test]
fn rumprun_hvt_net_block_env() {
    let mut i = input("rumprun", "hvt");
    i.kernel = "/b/rootfs/unikernel/redis.hvt".into();
    i.net = Some(named_net());
    i.blocks = vec![block("annot_vol", "/b/rootfs/unikernel/data.img", "/data")];
    i.unikernel.cmdline = "redis-server /data/conf/redis.conf".into();
    i.process.env = strs(&["PATH=/bin", "X=<a&b>"]);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/local/bin/solo5-hvt",
            "--mem=256",
            "--net:tap=tap0_c1",
            "--net-mac:tap=aa:bb:cc:dd:ee:ff",
            "--block:rootfs=/b/rootfs/unikernel/data.img",
            "/b/rootfs/unikernel/redis.hvt",
            r#"{"cmdline":"redis-server /data/conf/redis.conf","env":"PATH=/bin","env":"X=\u003ca\u0026b\u003e","net":{"if":"ukvmif0","cloner":"True","type":"inet","method":"static","addr":"10.4.0.5","mask":"24","gw":"10.4.0.1"},"blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/data"}}"#,
        ])
    );
    assert!(p.keep_fds.is_empty());
    assert_eq!(
        p.devices,
        vec![PathBuf::from("/dev/net/tun"), PathBuf::from("/dev/kvm")]
    );
    assert_eq!(
        p.write_paths,
        vec![PathBuf::from("/b/rootfs/unikernel/data.img")]
    );
}

#[test]
fn rumprun_spt_root_image_offlink_gateway_no_kvm() {
    let mut i = input("rumprun", "spt");
    let mut n = named_net();
    n.prefix = 32;
    n.gateway = Some("169.254.1.1".parse().unwrap());
    i.net = Some(n);
    i.blocks = vec![block("rootfs", "/b/rootfs/data.img", "/")];
    i.process.args = strs(&["hello"]);
    i.memory_limit = Some(64 * MIB);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/local/bin/solo5-spt",
            "--mem=56",
            "--net:tap=tap0_c1",
            "--net-mac:tap=aa:bb:cc:dd:ee:ff",
            "--block:rootfs=/b/rootfs/data.img",
            "/b/rootfs/unikernel/kernel",
            r#"{"cmdline":"hello","net":{"if":"ukvmif0","cloner":"True","type":"inet","method":"static","addr":"10.4.0.5","mask":"1","gw":"169.254.1.1"},"blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/data"}}"#,
        ])
    );
    assert!(!p.needs_kvm);
    assert_eq!(p.devices, vec![PathBuf::from("/dev/net/tun")]);
}

#[test]
fn mirage_without_network_and_with_a_manifest() {
    let mut i = input("mirage", "spt");
    i.process.args = strs(&["--hello=Holahola"]);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/local/bin/solo5-spt",
            "--mem=256",
            "/b/rootfs/unikernel/kernel",
            "--hello=Holahola",
        ])
    );

    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("net.hvt");
    std::fs::write(
        &k,
        test_elf(&[("service0", DevKind::Net), ("disk0", DevKind::Block)]),
    )
    .unwrap();
    let mut i = input("mirage", "hvt");
    i.kernel = k.clone();
    i.net = Some(named_net());
    i.blocks = vec![block("annot_vol", "/b/rootfs/disk.img", "/data")];
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/local/bin/solo5-hvt",
            "--mem=256",
            "--net:service0=tap0_c1",
            "--net-mac:service0=aa:bb:cc:dd:ee:ff",
            "--block:disk0=/b/rootfs/disk.img",
            &k.display().to_string(),
            "--ipv4=10.4.0.5/24 --ipv4-gateway=10.4.0.1",
        ])
    );

    // a declared device left unattached is refused before the tender would
    i.net = None;
    let e = build(&i).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the unikernel declares network device \"service0\" but the container has no network"
    );
    i.net = Some(named_net());
    i.blocks.clear();
    let e = build(&i).unwrap_err();
    assert!(
        e.to_string()
            .contains("declares 1 block device(s) (disk0) but 0"),
        "{e}"
    );
}

/// `--net:NAME=@N` always fails since Solo5 v0.10.0 (`Could not attach interface: @N:
/// Success`, real-guests.md): no plan may contain it, and a tap handed over as an fd is refused.
#[test]
fn the_fd_form_is_never_generated() {
    for (guest, monitor) in [
        ("rumprun", "hvt"),
        ("rumprun", "spt"),
        ("mirage", "hvt"),
        ("mirage", "spt"),
    ] {
        let mut i = input(guest, monitor);
        i.net = Some(named_net());
        let p = build(&i).unwrap();
        assert!(
            !p.argv.iter().any(|a| a.contains("=@")),
            "{guest}/{monitor}: {:?}",
            p.argv
        );
        assert!(
            p.argv.iter().any(|a| a.ends_with("=tap0_c1")),
            "{:?}",
            p.argv
        );
        assert!(p.keep_fds.is_empty());
        assert!(p.devices.contains(&PathBuf::from("/dev/net/tun")));
        i.net = Some(net()); // tap_fd: Some(3)
        let e = build(&i).unwrap_err().to_string();
        assert!(e.contains("attaches its tap by name"), "{e}");
    }
}

/// The tap's declaration: by name, no virtio-net header (the tender asks for
/// `IFF_TAP|IFF_NO_PI`, `tap_attach.c`); QEMU and Cloud Hypervisor keep the fd form.
#[test]
fn monitors_declare_how_they_take_the_tap() {
    use crate::monitor::{tap_spec, TapAccess};
    for m in ["hvt", "spt"] {
        let t = tap_spec(m).unwrap();
        assert_eq!((t.access, t.vnet_hdr), (TapAccess::Name, false), "{m}");
    }
    let t = tap_spec("firecracker").unwrap();
    assert_eq!((t.access, t.vnet_hdr), (TapAccess::Name, true));
    for m in ["qemu", "cloud-hypervisor"] {
        let t = tap_spec(m).unwrap();
        assert_eq!((t.access, t.vnet_hdr), (TapAccess::Fd, true), "{m}");
    }
}

/// Device names: the solo5NetDev/solo5BlkDev annotations (upstream urunc v0.8), then the
/// manifest, then the guest's defaults; an annotation the manifest contradicts is refused,
/// as the tender would refuse it (`Resource not declared in manifest`).
#[test]
fn annotations_name_the_devices_first() {
    // no manifest: the annotations win over the guest type's names (rumprun: tap, rootfs)
    let mut i = input("rumprun", "spt");
    i.net = Some(named_net());
    i.blocks = vec![block("rootfs", "/b/rootfs/data.img", "/data")];
    i.unikernel.solo5_net_dev = "service0".into();
    i.unikernel.solo5_blk_dev = "disk0, spare".into();
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv[2..5],
        strs(&[
            "--net:service0=tap0_c1",
            "--net-mac:service0=aa:bb:cc:dd:ee:ff",
            "--block:disk0=/b/rootfs/data.img",
        ])
    );
    for (net, blk, want) in [
        (
            "service_0",
            "",
            "solo5NetDev: invalid solo5 device name \"service_0\"",
        ),
        ("", "disk0,", "solo5BlkDev: invalid solo5 device name \"\""),
    ] {
        i.unikernel.solo5_net_dev = net.into();
        i.unikernel.solo5_blk_dev = blk.into();
        let e = build(&i).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }

    // with a manifest: the annotation must name a declared device
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("k.spt");
    std::fs::write(
        &k,
        test_elf(&[("service0", DevKind::Net), ("disk0", DevKind::Block)]),
    )
    .unwrap();
    let mut i = input("mirage", "spt");
    i.kernel = k;
    i.net = Some(named_net());
    i.blocks = vec![block("annot_vol", "/b/rootfs/disk.img", "/data")];
    i.unikernel.solo5_net_dev = "service0".into();
    i.unikernel.solo5_blk_dev = "disk0".into();
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv[2..5],
        strs(&[
            "--net:service0=tap0_c1",
            "--net-mac:service0=aa:bb:cc:dd:ee:ff",
            "--block:disk0=/b/rootfs/disk.img",
        ])
    );
    i.unikernel.solo5_net_dev = "service".into();
    let e = build(&i).unwrap_err().to_string();
    assert!(
        e.contains("solo5NetDev names network device \"service\", which the unikernel's manifest does not declare (it declares: service0)"),
        "{e}"
    );
    i.unikernel.solo5_net_dev = String::new();
    i.unikernel.solo5_blk_dev = "storage".into();
    let e = build(&i).unwrap_err().to_string();
    assert!(
        e.contains("solo5BlkDev names block device \"storage\""),
        "{e}"
    );
}

/// `--block:NAME=%4096s` (solo5 `hvt_module_blk.c`): a path with white space would be cut.
#[test]
fn block_paths_with_white_space_are_refused() {
    let mut i = input("mirage", "spt");
    i.blocks = vec![block("annot_vol", "/b/my rootfs/disk.img", "/data")];
    let e = build(&i).unwrap_err().to_string();
    assert!(e.contains("without white space"), "{e}");
}
