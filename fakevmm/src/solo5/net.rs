//! The fake tender's host side: `tap_attach` as solo5 v0.12.1 does it
//! (`tenders/common/tap_attach.c`), block attach, the KVM probe, a status report, and the
//! guest: test_net's ARP/ICMP echo responder (`tests/test_net/test_net.c`).

use std::sync::atomic::{AtomicI32, Ordering};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_SGRO: u32 = 0x2c;
const KVM_GET_API_VERSION: libc::c_ulong = 0xae00;

fn last() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// strerror(3)'s text: Rust's message without its ` (os error N)` suffix.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn errno(n: i32) -> String {
    strerror(&std::io::Error::from_raw_os_error(n))
}

fn cstr(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap_or_default()
}

/// An `ifreq` with the name set.
fn ifreq(name: &str) -> [u8; 40] {
    let mut r = [0u8; 40];
    let n = name.len().min(15);
    r[..n].copy_from_slice(&name.as_bytes()[..n]);
    r
}

/// Is `name` an interface that is up or running (getifaddrs)? `None`: not found.
fn if_up(name: &str) -> std::io::Result<Option<bool>> {
    let mut ifa: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below.
    if unsafe { libc::getifaddrs(&mut ifa) } == -1 {
        return Err(last());
    }
    let mut found = None;
    let mut p = ifa;
    while !p.is_null() {
        // SAFETY: p walks the list getifaddrs returned; names are NUL-terminated.
        let (n, flags, next) = unsafe {
            (
                std::ffi::CStr::from_ptr((*p).ifa_name),
                (*p).ifa_flags,
                (*p).ifa_next,
            )
        };
        if n.to_bytes() == name.as_bytes() {
            found = Some(flags & (libc::IFF_UP | libc::IFF_RUNNING) as u32 != 0);
            break;
        }
        p = next;
    }
    // SAFETY: frees the list getifaddrs allocated.
    unsafe { libc::freeifaddrs(ifa) };
    Ok(found)
}

/// Attaches to the tap `ifname` (or takes `@FD`), returning (fd, MTU); the error is what
/// the tender prints after `Could not attach interface: IFNAME: `.
pub fn tap_attach(ifname: &str) -> Result<(i32, i32), String> {
    if let Some(n) = ifname.strip_prefix('@') {
        let fd: i32 = n.parse().map_err(|_| "Invalid argument".to_string())?;
        // SAFETY: fcntl on a number the caller named; it fails cleanly if not an fd.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) } == -1 {
            return Err(strerror(&last()));
        }
        // Since v0.10.0 the fd form never reads the MTU: the net module sees mtu < 0 and
        // fails with whatever errno holds, which is 0 here.
        return Err("Success".into());
    }
    if ifname.len() >= 16 {
        return Err(errno(libc::ENAMETOOLONG));
    }
    match if_up(ifname).map_err(|e| strerror(&e))? {
        None => return Err(errno(libc::ENOENT)),
        Some(false) => return Err(errno(libc::ENETDOWN)),
        Some(true) => {}
    }
    // SAFETY: opens a NUL-terminated path.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK) };
    if fd == -1 {
        return Err(strerror(&last()));
    }
    let mut r = ifreq(ifname);
    r[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes an ifreq (40 bytes) we own.
    if unsafe { libc::ioctl(fd, TUNSETIFF as _, r.as_mut_ptr()) } == -1 {
        let e = last();
        // SAFETY: closes the fd opened above.
        unsafe { libc::close(fd) };
        return Err(strerror(&e));
    }
    if r[..16] != ifreq(ifname)[..16] {
        // SAFETY: closes the fd opened above.
        unsafe { libc::close(fd) };
        return Err(errno(libc::EINVAL));
    }
    // SAFETY: socket with scalar arguments; ioctls on ifreq/ethtool buffers we own.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let mut r = ifreq(ifname);
        if sock < 0 || libc::ioctl(sock, libc::SIOCGIFMTU as _, r.as_mut_ptr()) == -1 {
            let e = last();
            libc::close(fd);
            libc::close(sock);
            return Err(strerror(&e));
        }
        let mtu = i32::from_ne_bytes([r[16], r[17], r[18], r[19]]);
        for cmd in [ETHTOOL_SGRO, ETHTOOL_SGSO] {
            let mut eval = [0u32; 2];
            eval[0] = cmd;
            let mut r = ifreq(ifname);
            r[16..24].copy_from_slice(&(eval.as_mut_ptr() as usize).to_ne_bytes());
            libc::ioctl(sock, SIOCETHTOOL as _, r.as_mut_ptr());
        }
        libc::close(sock);
        Ok((fd, mtu))
    }
}

/// `block_attach`: open read-write, capacity from lseek(SEEK_END).
pub fn block_attach(path: &str) -> std::io::Result<i64> {
    // SAFETY: opens a NUL-terminated path; lseek on the fd just opened.
    unsafe {
        let fd = libc::open(cstr(path).as_ptr(), libc::O_RDWR);
        if fd == -1 {
            return Err(last());
        }
        let cap = libc::lseek(fd, 0, libc::SEEK_END);
        if cap == -1 {
            return Err(last());
        }
        Ok(cap)
    }
}

/// What `hvt_init` does first: open /dev/kvm and check its API version (12).
pub fn kvm_api_version() -> Result<(), String> {
    // SAFETY: opens a NUL-terminated path; an ioctl without argument.
    let v = unsafe {
        let fd = libc::open(c"/dev/kvm".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd == -1 {
            return Err(format!("Could not open: /dev/kvm: {}", strerror(&last())));
        }
        libc::ioctl(fd, KVM_GET_API_VERSION as _, 0)
    };
    if v != 12 {
        return Err(format!(
            "KVM: API version is {v}, solo5-hvt requires version 12"
        ));
    }
    super::out("FAKESOLO5-KVM api=12 (no VM created: the fake needs no working KVM)\n");
    Ok(())
}

/// The identity and confinement this process runs under (`/proc/self/status`), as JSON.
pub fn status_report() -> String {
    let mut text = Vec::new();
    // SAFETY: reads /proc/self/status into buffers we own, then closes the fd.
    unsafe {
        let fd = libc::open(
            c"/proc/self/status".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            text.extend_from_slice(&buf[..n as usize]);
        }
        libc::close(fd);
    }
    let text = String::from_utf8_lossy(&text);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:")))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let keys = [
        "Uid",
        "Gid",
        "Groups",
        "CapEff",
        "CapPrm",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
    ];
    let mut m: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.to_string(), field(k).into()))
        .collect();
    // the root of the monitor's view: a directory no Landlock rule names, so it opens unless
    // Landlock confines this process (host files such as /etc/passwd are simply absent there)
    // SAFETY: opens a NUL-terminated path read-only and closes it.
    let root = unsafe {
        let fd = libc::open(
            c"/".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            libc::close(fd);
            "ok".to_string()
        } else {
            strerror(&last())
        }
    };
    m.insert("open_root".into(), root.into());
    serde_json::Value::Object(m).to_string()
}

/// `tap_attach_genmac`: six bytes of /dev/urandom, locally administered unicast.
pub fn genmac() -> std::io::Result<[u8; 6]> {
    let mut m = [0u8; 6];
    // SAFETY: opens a NUL-terminated path and reads 6 bytes into `m`.
    unsafe {
        let fd = libc::open(c"/dev/urandom".as_ptr(), libc::O_RDONLY);
        if fd == -1 {
            return Err(last());
        }
        libc::read(fd, m.as_mut_ptr().cast(), 6);
        libc::close(fd);
    }
    m[0] = (m[0] & 0xfe) | 0x02;
    Ok(m)
}

/// The guest's address: `--ipv4=A.B.C.D/N` (MirageOS), rumprun's `"addr":"A.B.C.D"`, else
/// test_net's fixed 10.0.0.2.
pub fn guest_ip(cmdline: &str) -> [u8; 4] {
    let after = |k: &str| cmdline.split_once(k).map(|(_, r)| r);
    after("--ipv4=")
        .or_else(|| after("\"addr\":\""))
        .and_then(|r| r.split(['/', '"', ' ']).next())
        .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .map(|a| a.octets())
        .unwrap_or([10, 0, 0, 2])
}

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(s: libc::c_int) {
    SIGNAL.store(s, Ordering::SeqCst);
}

fn send(fd: i32, frame: &[u8]) {
    // SAFETY: writes a buffer we own, of its length.
    unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
}

/// Answers ARP and ICMP echo for `ip` on the tap until SIGTERM/SIGINT; returns the signal.
pub fn serve(fd: i32, ip: [u8; 4], mac: [u8; 6]) -> i32 {
    // SAFETY: installs a handler that only stores to an atomic; epoll on fds we own.
    let ep = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        let ep = libc::epoll_create1(0);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 1,
        };
        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
        ep
    };
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    let ips = std::net::Ipv4Addr::from(ip);
    super::out(&format!("FAKESOLO5-SERVING {ips} mac {hex}\n"));
    send(fd, &super::net_echo::garp(mac, ip));
    let (mut arps, mut icmps) = (0, 0);
    let mut buf = vec![0u8; 65536];
    while SIGNAL.load(Ordering::SeqCst) == 0 {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: one event slot we own; reads into a buffer we own.
        let n = unsafe { libc::epoll_pwait(ep, &mut ev, 1, 1000, std::ptr::null()) };
        if n <= 0 {
            continue;
        }
        loop {
            // SAFETY: reads into a buffer we own, of its length.
            let len = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if len <= 0 {
                break;
            }
            let frame = &mut buf[..len as usize];
            match super::net_echo::answer(frame, mac, ip) {
                Some(super::net_echo::Kind::Arp) => arps += 1,
                Some(super::net_echo::Kind::Icmp) => icmps += 1,
                None => continue,
            }
            send(fd, frame);
        }
    }
    super::out(&format!("FAKESOLO5-ECHO arp={arps} icmp={icmps}\n"));
    SIGNAL.load(Ordering::SeqCst)
}
