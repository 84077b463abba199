//! urunit's own features that the runtime does not drive yet (network, block volumes), tested
//! by booting QEMU directly with the assets of `scripts/prepare-assets.sh`: the config goes
//! into the initrd, the host channel is a socketpair, the network is QEMU's user networking
//! (the guest fetches a page from a listener of this test), the volume an ext2 image.
//!
//! Skips (printing why) without assets, QEMU or mke2fs, unless `CI` is set.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use urunit_proto::frame::{Decoder, Message};
use urunit_proto::{Block, Channel, Config, Net};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

fn assets() -> Option<PathBuf> {
    let dir = std::env::var_os("URUNC_TEST_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"));
    let mut missing: Vec<String> = ["vmlinux", "initrd.cpio"]
        .iter()
        .filter(|f| !dir.join(f).is_file())
        .map(|f| dir.join(f).display().to_string())
        .collect();
    for tool in ["qemu-system-x86_64", "mke2fs", "debugfs"] {
        if Command::new(tool).arg("-V").output().is_err() {
            missing.push(tool.into());
        }
    }
    if missing.is_empty() {
        return Some(dir);
    }
    let msg = format!(
        "urunit guest test needs {} (run scripts/prepare-assets.sh as root)",
        missing.join(", ")
    );
    assert!(!ci(), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

/// Appends a newc record `name` holding `body` (what urunc does with urunit.conf).
fn append_cpio(archive: &Path, name: &str, body: &[u8]) {
    let mut rec = format!(
        "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{name}\0",
        0, 0o100400, 0, 0, 1, 0, body.len(), 0, 0, 0, 0, name.len() + 1, 0
    )
    .into_bytes();
    while rec.len() % 4 != 0 {
        rec.push(0);
    }
    rec.extend_from_slice(body);
    while rec.len() % 4 != 0 {
        rec.push(0);
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(archive)
        .unwrap();
    f.write_all(&rec).unwrap();
}

#[test]
fn network_dns_hostname_volume_and_exit_status() {
    let Some(assets) = assets() else { return };
    let dir = tempfile::Builder::new()
        .prefix("urunit-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let d = dir.path();
    // the volume: ext2 with one file
    std::fs::create_dir(d.join("vol")).unwrap();
    std::fs::write(d.join("vol/hello.txt"), "hello from the volume\n").unwrap();
    let mk = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(d.join("vol"))
        .arg(d.join("vol.ext2"))
        .arg("8M")
        .output()
        .unwrap();
    assert!(
        mk.status.success(),
        "{}",
        String::from_utf8_lossy(&mk.stderr)
    );
    // a web server on the host side of QEMU's user network (the guest sees it at 10.0.2.2)
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nfrom-the-net");
        }
    });
    std::fs::copy(assets.join("initrd.cpio"), d.join("initrd")).unwrap();
    let script = format!(
        "ip -o addr show eth0; ip link show eth0; ip route; ip -6 route; cat /etc/resolv.conf; echo \"host=$(hostname)\"; \
         cat hello.txt; echo \"$GREETING\"; echo \"uid=$(id -u) inj=$INJ\" | tr \"\\n\" \"|\"; echo; echo written > out.txt; \
         echo \"net=$(wget -q -O - http://10.0.2.2:{port}/)\"; exit 5"
    );
    let conf = Config {
        // an old injection attempt ("UEE" then lines) must arrive as one plain variable
        env: vec![
            "GREETING=hi there".into(),
            "INJ=UEE\nUCS\nUID:1234\nUCE".into(),
            "UEE".into(),
        ],
        cwd: "/data".into(),
        blocks: vec![Block {
            id: "vol0".into(),
            mount_point: "/data".into(),
        }],
        net: Some(Net {
            mac: Some("52:54:00:aa:bb:cc".into()),
            ip: Some(("10.0.2.15".parse().unwrap(), 24)),
            gw: Some("10.0.2.2".parse().unwrap()),
            mtu: Some(1400),
            dns: vec!["10.0.2.3".parse().unwrap()],
            ip6: vec![("fd00::5".parse().unwrap(), 64)],
            gw6: Some("fd00::1".parse().unwrap()),
            ..Default::default()
        }),
        hostname: Some("tester".into()),
        channel: Some(Channel::Serial("ttyS1".into())),
        // too many words for the kernel command line: the argv travels in the configuration
        args: Some(vec!["/bin/sh".into(), "-c".into(), script]),
        ..Default::default()
    };
    let (body, _) = urunit_proto::encode_file(&conf).unwrap();
    append_cpio(&d.join("initrd"), "urunit.conf", &body);
    let (ours, guest) = UnixStream::pair().unwrap();
    let gfd = guest.as_raw_fd();
    nix::fcntl::fcntl(
        gfd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
    let t = std::time::Instant::now();
    let out = Command::new("qemu-system-x86_64")
        .args(["-M", "microvm", "-accel", "tcg", "-cpu", "max", "-m", "256M", "-nodefaults"])
        .args(["-no-reboot", "-display", "none", "-serial", "stdio", "-monitor", "none"])
        .arg("-kernel")
        .arg(assets.join("vmlinux"))
        .arg("-initrd")
        .arg(d.join("initrd"))
        .args(["-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0,mac=52:54:00:aa:bb:cc"])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=none,id=vol0", d.join("vol.ext2").display()))
        .args(["-device", "virtio-blk-device,drive=vol0,serial=vol0"])
        // the channel on the guest's ttyS1, as urunc gives it on x86 (guest/urunit_channel.rs)
        .arg("-chardev")
        .arg(format!("socket,id=urunit,fd={gfd}"))
        .args(["-device", "isa-serial,chardev=urunit,index=1", "-append"])
        .arg(
            "panic=-1 console=ttyS0 quiet loglevel=2 quiet loglevel=2 cryptomgr.notests no_timer_check \
             tsc_early_khz=2000000 URUNIT_CONFIG=/urunit.conf rdinit=/urunit --",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    drop(guest);
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "--- guest ({:?}):\n{text}\n--- stderr: {}",
        t.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "QEMU must exit 0 on the guest's power off"
    );
    assert!(text.contains("inet 10.0.2.15/24"), "{text}");
    assert!(text.contains("inet6 fd00::5/64"), "{text}");
    assert!(text.contains("mtu 1400"), "{text}");
    assert!(text.contains("default via 10.0.2.2 dev eth0"), "{text}");
    assert!(text.contains("default via fd00::1 dev eth0"), "{text}");
    assert!(text.contains("nameserver 10.0.2.3"), "{text}");
    assert!(text.contains("host=tester"), "{text}");
    assert!(text.contains("hello from the volume"), "{text}");
    assert!(text.contains("hi there"), "{text}");
    assert!(text.contains("uid=0 inj=UEE|UCS|UID:1234|UCE|"), "{text}");
    assert!(text.contains("net=from-the-net"), "{text}");
    assert!(
        !text.contains("urunit:"),
        "urunit must be silent without debug: {text}"
    );
    // the status on the channel, and the volume cleanly unmounted with our file in it
    ours.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut wire = Vec::new();
    let _ = (&ours).read_to_end(&mut wire);
    let mut got = Vec::new();
    Decoder::default().feed(&wire, |f| got.push(f.and_then(|f| Message::from_frame(&f))));
    assert_eq!(
        got,
        [
            Ok(Message::Hello { version: 1 }),
            Ok(Message::Ready),
            Ok(Message::Exit(5))
        ]
    );
    let cat = Command::new("debugfs")
        .args(["-R", "cat /out.txt"])
        .arg(d.join("vol.ext2"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "written\n");
}
