//! The DHCP answer: header facts from the RFCs, then a real client (busybox udhcpc) taking
//! the lease over a veth pair in a network namespace of the test's own.

use super::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

const GUEST_MAC: [u8; 6] = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01];

fn lease() -> Lease {
    Lease {
        client_mac: GUEST_MAC,
        server_mac: [0x02, 0, 0, 0, 0, 0x67],
        ip: Ipv4Addr::new(10, 4, 0, 5),
        prefix: 24,
        gateway: Some(Ipv4Addr::new(10, 4, 0, 1)),
        dns: vec![Ipv4Addr::new(10, 96, 0, 10)],
        mtu: 1450,
    }
}

/// A client request as RFC 2131 section 4.4.1 describes it (broadcast, ciaddr 0).
fn request(mac: [u8; 6], msg_type: u8) -> Vec<u8> {
    let mut b = vec![0u8; BOOTP_FIXED];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&[1, 2, 3, 4]);
    b[10] = 0x80;
    b[28..34].copy_from_slice(&mac);
    b.extend_from_slice(&COOKIE);
    b.extend_from_slice(&[53, 1, msg_type, 255]);
    let mut f = frame(
        &b,
        mac,
        [0xff; 6],
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
    );
    // a client sends 68 -> 67
    f[ETH + 20..ETH + 24].copy_from_slice(&[0, 68, 0, 67]);
    f
}

fn options(reply: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut o = Vec::new();
    let mut p = &reply[ETH + 28 + BOOTP_FIXED + 4..];
    while let [code, len, rest @ ..] = p {
        if *code == 255 {
            break;
        }
        o.push((*code, rest[..usize::from(*len)].to_vec()));
        p = &rest[usize::from(*len)..];
    }
    o
}

#[test]
fn header_checksum_and_answers() {
    // the worked example of the IPv4 header checksum (Wikipedia "Internet checksum"):
    // 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7
    let h = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00, 0x01,
        0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert_eq!(checksum(&h), 0xb861);

    let l = lease();
    let offer = reply(&request(GUEST_MAC, DISCOVER), &l).expect("an offer");
    let ack = reply(&request(GUEST_MAC, REQUEST), &l).expect("an ack");
    for (r, t) in [(&offer, OFFER), (&ack, ACK)] {
        let bootp = &r[ETH + 28..];
        assert_eq!(bootp[0], 2, "BOOTREPLY");
        assert_eq!(bootp[4..8], [1, 2, 3, 4], "xid echoed");
        assert_eq!(bootp[16..20], [10, 4, 0, 5], "yiaddr");
        assert_eq!(r[..6], [0xff; 6], "broadcast flag set: broadcast answer");
        assert_eq!(
            checksum(&r[ETH..ETH + 20]),
            0,
            "IPv4 header checksum verifies"
        );
        let o = options(r);
        assert!(o.contains(&(53, vec![t])));
        assert!(o.contains(&(1, vec![255, 255, 255, 0])));
        assert!(o.contains(&(3, vec![10, 4, 0, 1])));
        assert!(o.contains(&(6, vec![10, 96, 0, 10])));
        assert!(o.contains(&(26, 1450u16.to_be_bytes().to_vec())));
        assert!(o.contains(&(51, vec![0xff; 4])));
    }
    // another client, another message type, and every truncation: no answer, no panic
    assert!(reply(&request([2, 2, 2, 2, 2, 2], DISCOVER), &l).is_none());
    assert!(reply(&request(GUEST_MAC, 7), &l).is_none());
    let req = request(GUEST_MAC, DISCOVER);
    for n in 0..req.len() - 4 {
        assert!(reply(&req[..n], &l).is_none(), "truncated at {n}");
    }
    assert_eq!(parse_mac("aa:bb:cc:dd:ee:01"), Some(GUEST_MAC));
    assert_eq!(parse_mac("aa:bb:cc:dd:ee"), None);
    assert_eq!(parse_mac("aa:bb:cc:dd:ee:01:02"), None);
}

/// An AF_PACKET socket bound to `ifname` in the calling thread's network namespace.
fn packet_socket(ifname: &str) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh, valid descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert!(index > 0, "no interface {ifname}");
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value before the fields are set.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = proto;
    sa.sll_ifindex = index as i32;
    // SAFETY: `sa` is a sockaddr_ll and the length given is its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
    let tv = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: SO_RCVTIMEO takes a timeval of the size given.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    fd
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?}");
}

#[test]
fn busybox_udhcpc_takes_the_container_address() {
    let ready = nix::unistd::geteuid().is_root()
        && std::path::Path::new("/bin/busybox").exists()
        && Command::new("ip").arg("-V").output().is_ok();
    if !ready {
        let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
        assert!(!ci, "the DHCP test needs root, busybox-static and iproute2");
        eprintln!("SKIPPED: the DHCP test needs root, busybox-static and iproute2");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script");
    let out = dir.path().join("bound");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && echo \"ip=$ip subnet=$subnet router=$router dns=$dns mtu=$mtu lease=$lease serverid=$serverid\" > {}\nexit 0\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let l = lease();
    // a thread in a network namespace of its own: the veth pair dies with it
    let answered = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        ip(&["link", "add", "dh0", "type", "veth", "peer", "name", "dh1"]);
        ip(&["link", "set", "dh1", "address", "aa:bb:cc:dd:ee:01"]);
        ip(&["link", "set", "dh0", "up"]);
        ip(&["link", "set", "dh1", "up"]);
        let sock = packet_socket("dh0");
        // -q: quit once bound; -n: fail (instead of backgrounding) when nothing answers
        let mut client = Command::new("/bin/busybox")
            .args([
                "udhcpc", "-i", "dh1", "-f", "-q", "-n", "-t", "5", "-T", "2", "-s",
            ])
            .arg(&script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut answered = 0;
        let mut buf = vec![0u8; 2048];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while client.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            // SAFETY: `buf` is writable for its length.
            let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let Ok(n) = usize::try_from(n) else { continue };
            if let Some(r) = reply(&buf[..n], &l) {
                // SAFETY: `r` is readable for its length.
                let s = unsafe { libc::send(sock.as_raw_fd(), r.as_ptr().cast(), r.len(), 0) };
                assert_eq!(s, r.len() as isize);
                answered += 1;
            }
        }
        let _ = client.kill();
        client.wait().unwrap();
        answered
    })
    .join()
    .unwrap();
    let bound = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(answered >= 2, "an offer and an ack: {answered}");
    assert_eq!(
        bound.trim(),
        "ip=10.4.0.5 subnet=255.255.255.0 router=10.4.0.1 dns=10.96.0.10 mtu=1450 lease=4294967295 serverid=10.4.0.1"
    );
}
