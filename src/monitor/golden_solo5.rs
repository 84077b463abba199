//! Golden solo5 plans (reference 4.2, 4.3, 5.7 and worked example A), names from the manifest.

use super::golden_fixture::{block, input, net, strs, MIB};
use super::solo5_manifest::{test_elf, DevKind};
use crate::plan::build;
use std::path::PathBuf;

#[test]
fn rumprun_hvt_net_block_env() {
    let mut i = input("rumprun", "hvt");
    i.kernel = "/b/rootfs/unikernel/redis.hvt".into();
    i.net = Some(net());
    i.blocks = vec![block("annot_vol", "/b/rootfs/unikernel/data.img", "/data")];
    i.unikernel.cmdline = "redis-server /data/conf/redis.conf".into();
    i.process.env = strs(&["PATH=/bin", "X=<a&b>"]);
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/local/bin/solo5-hvt",
            "--mem=256",
            "--net:tap=@3",
            "--net-mac:tap=aa:bb:cc:dd:ee:ff",
            "--block:rootfs=/b/rootfs/unikernel/data.img",
            "/b/rootfs/unikernel/redis.hvt",
            r#"{"cmdline":"redis-server /data/conf/redis.conf","env":"PATH=/bin","env":"X=\u003ca\u0026b\u003e","net":{"if":"ukvmif0","cloner":"True","type":"inet","method":"static","addr":"10.4.0.5","mask":"24","gw":"10.4.0.1"},"blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/data"}}"#,
        ])
    );
    assert_eq!(p.keep_fds, vec![3]);
    assert_eq!(p.devices, vec![PathBuf::from("/dev/kvm")]);
    assert_eq!(
        p.write_paths,
        vec![PathBuf::from("/b/rootfs/unikernel/data.img")]
    );
}

#[test]
fn rumprun_spt_root_image_offlink_gateway_no_kvm() {
    let mut i = input("rumprun", "spt");
    let mut n = net();
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
            "--net:tap=@3",
            "--net-mac:tap=aa:bb:cc:dd:ee:ff",
            "--block:rootfs=/b/rootfs/data.img",
            "/b/rootfs/unikernel/kernel",
            r#"{"cmdline":"hello","net":{"if":"ukvmif0","cloner":"True","type":"inet","method":"static","addr":"10.4.0.5","mask":"1","gw":"169.254.1.1"},"blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/data"}}"#,
        ])
    );
    assert!(!p.needs_kvm);
    assert!(p.devices.is_empty());
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
    i.net = Some(net());
    i.blocks = vec![block("annot_vol", "/b/rootfs/disk.img", "/data")];
    let p = build(&i).unwrap();
    assert_eq!(
        p.argv,
        strs(&[
            "/usr/local/bin/solo5-hvt",
            "--mem=256",
            "--net:service0=@3",
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
    i.net = Some(net());
    i.blocks.clear();
    let e = build(&i).unwrap_err();
    assert!(
        e.to_string()
            .contains("declares 1 block device(s) (disk0) but 0"),
        "{e}"
    );
}
