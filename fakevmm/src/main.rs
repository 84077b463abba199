//! A fake VM monitor for tests. Installed as a monitor's `path` in the urunc config, it
//! receives the planned argv, finds its "kernel" (a script starting with `#fakevmm`) among
//! the files named there, and runs the script:
//!
//!   report             print `FAKEVMM-REPORT <json>`: argv, ids, caps, seccomp, ns, cgroup, fds
//!   print TEXT         print TEXT on the console (stdout)
//!   cmdline            print `FAKEVMM-CMDLINE <guest command line>`
//!   read PATH          print `FAKEVMM-READ PATH ok|<error>` (Landlock probes)
//!   write PATH         print `FAKEVMM-WRITE PATH ok|<error>`
//!   syscall NAME       try a syscall (`mount`, `ptrace`, `bpf`, `kexec_load`, `getpid`,
//!                      `unshare` of a user namespace) and print `FAKEVMM-SYSCALL NAME ok|<errno>`
//!   sleep SECS         sleep
//!   wait-term CODE     wait for SIGTERM, print `FAKEVMM-TERM`, exit CODE
//!   tick MS            print `FAKEVMM-TICK n` every MS ms until SIGTERM (then exit 0)
//!   exit CODE          exit with CODE; with urunit's channel in argv (`-chardev
//!                      socket,id=urunit,fd=N`) act as a urunit guest whose program exited
//!                      CODE: write HELLO and EXIT CODE frames there, then exit 0 as QEMU does
//!                      after the guest's power-off
//!   monitor-exit CODE  exit with CODE, whatever the guest (a monitor failing, a silent guest)
//!   alloc MIB          touch MIB MiB of memory (cgroup limit probes)
//!   fork N             fork N sleeping children (pids limit probes), print `FAKEVMM-FORK ok|<error>`
//!   tap-echo IP SECS   on the inherited tap fd (`-netdev tap,...,fd=N`), answer ARP and ICMP echo
//!                      for IP with the MAC from argv (`mac=`) for SECS seconds or until SIGTERM,
//!                      then print `FAKEVMM-TAPECHO arp=N icmp=M`
//!   escape KIND ARG    an escaped monitor's attempt (see escape.rs), `FAKEVMM-ESCAPE KIND ARG ok|<error>`

mod escape;

mod solo5;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static TERM: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    TERM.store(true, Ordering::SeqCst);
}

fn find_script(argv: &[String]) -> Option<String> {
    let mut candidates = Vec::new();
    for a in argv {
        candidates.push(a.clone());
        for part in a.split([',', '=']) {
            candidates.push(part.to_string());
        }
    }
    for c in candidates {
        let Ok(data) = std::fs::read(&c) else {
            continue;
        };
        if data.starts_with(b"#fakevmm") {
            return Some(String::from_utf8_lossy(&data).into_owned());
        }
        // Firecracker's config file names the kernel.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) {
            if let Some(k) = v
                .pointer("/boot-source/kernel_image_path")
                .and_then(|k| k.as_str())
            {
                if let Ok(d) = std::fs::read(k) {
                    if d.starts_with(b"#fakevmm") {
                        return Some(String::from_utf8_lossy(&d).into_owned());
                    }
                }
            }
        }
    }
    None
}

fn guest_cmdline(argv: &[String]) -> String {
    for (i, a) in argv.iter().enumerate() {
        if matches!(a.as_str(), "-append" | "--cmdline") {
            return argv.get(i + 1).cloned().unwrap_or_default();
        }
        if a == "--config-file" {
            if let Some(v) = argv
                .get(i + 1)
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
            {
                return v
                    .pointer("/boot-source/boot_args")
                    .and_then(|b| b.as_str())
                    .unwrap_or("")
                    .to_string();
            }
        }
    }
    String::new()
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn report(argv: &[String]) -> serde_json::Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut ns = serde_json::Map::new();
    for n in [
        "cgroup",
        "ipc",
        "mnt",
        "net",
        "pid",
        "pid_for_children",
        "time",
        "user",
        "uts",
    ] {
        if let Ok(l) = std::fs::read_link(format!("/proc/self/ns/{n}")) {
            ns.insert(n.into(), l.display().to_string().into());
        }
    }
    let mut fds = serde_json::Map::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
        for e in rd.flatten() {
            let target = std::fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            fds.insert(e.file_name().to_string_lossy().into_owned(), target.into());
        }
    }
    serde_json::json!({
        "argv": argv,
        "pid": std::process::id(),
        "ppid": unsafe_free_ppid(),
        "uid": status_field(&status, "Uid"),
        "gid": status_field(&status, "Gid"),
        "groups": status_field(&status, "Groups"),
        "cap_eff": status_field(&status, "CapEff"),
        "cap_prm": status_field(&status, "CapPrm"),
        "cap_inh": status_field(&status, "CapInh"),
        "cap_bnd": status_field(&status, "CapBnd"),
        "cap_amb": status_field(&status, "CapAmb"),
        "no_new_privs": status_field(&status, "NoNewPrivs"),
        "seccomp": status_field(&status, "Seccomp"),
        "cgroup": std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        "ns": ns,
        "fds": fds,
        "env": std::env::vars().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
    })
}

fn unsafe_free_ppid() -> u32 {
    std::os::unix::process::parent_id()
}

fn errno_str(r: i64) -> String {
    if r >= 0 {
        "ok".into()
    } else {
        std::io::Error::last_os_error().to_string()
    }
}

fn try_syscall(name: &str) -> String {
    // SAFETY: (test helper) each call passes null or invalid arguments that the kernel checks;
    // what matters is whether seccomp lets the syscall reach the kernel (EPERM vs other errors).
    let r = unsafe {
        match name {
            "mount" => libc::syscall(libc::SYS_mount, 0usize, 0usize, 0usize, 0usize, 0usize),
            "ptrace" => libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0),
            "bpf" => libc::syscall(libc::SYS_bpf, 0, 0usize, 0),
            "kexec_load" => libc::syscall(libc::SYS_kexec_load, 0, 0, 0usize, 0),
            "getpid" => libc::syscall(libc::SYS_getpid),
            // allowed to an unprivileged process: only a seccomp filter refuses it
            "unshare" => libc::unshare(libc::CLONE_NEWUSER) as i64,
            _ => return "unknown".into(),
        }
    };
    errno_str(r)
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--fakevmm-child-sleep") {
        std::thread::sleep(std::time::Duration::from_secs(60));
        return;
    }
    let out = std::io::stdout();
    let Some(script) = find_script(&argv) else {
        eprintln!("fakevmm: no #fakevmm script among the files in argv: {argv:?}");
        std::process::exit(2);
    };
    // SAFETY: (test helper) the handler only stores to an atomic.
    unsafe { libc::signal(libc::SIGTERM, on_term as *const () as usize) };
    let mut keep = Vec::new();
    for line in script.lines().skip(1) {
        let line = line.trim();
        let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
        let mut o = out.lock();
        let _ = o.flush();
        match cmd {
            "report" => {
                let _ = writeln!(o, "FAKEVMM-REPORT {}", report(&argv));
            }
            "print" => {
                let _ = writeln!(o, "{arg}");
            }
            "cmdline" => {
                let _ = writeln!(o, "FAKEVMM-CMDLINE {}", guest_cmdline(&argv));
            }
            "read" => {
                let r = std::fs::read(arg)
                    .map(|_| "ok".to_string())
                    .unwrap_or_else(|e| e.to_string());
                let _ = writeln!(o, "FAKEVMM-READ {arg} {r}");
            }
            "write" => {
                let r = std::fs::OpenOptions::new()
                    .append(true)
                    .open(arg)
                    .map(|_| "ok".to_string())
                    .unwrap_or_else(|e| e.to_string());
                let _ = writeln!(o, "FAKEVMM-WRITE {arg} {r}");
            }
            "escape" => {
                let _ = writeln!(o, "FAKEVMM-ESCAPE {arg} {}", escape::probe(arg));
            }
            "syscall" => {
                let _ = writeln!(o, "FAKEVMM-SYSCALL {arg} {}", try_syscall(arg));
            }
            "sleep" => {
                let _ = o.flush();
                drop(o);
                std::thread::sleep(std::time::Duration::from_secs_f64(
                    arg.parse().unwrap_or(1.0),
                ));
            }
            "wait-term" => {
                let _ = o.flush();
                drop(o);
                while !TERM.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                println!("FAKEVMM-TERM");
                std::process::exit(arg.parse().unwrap_or(0));
            }
            "tick" => {
                let _ = o.flush();
                drop(o);
                let ms: u64 = arg.parse().unwrap_or(50);
                let mut n = 0u64;
                while !TERM.load(Ordering::SeqCst) {
                    println!("FAKEVMM-TICK {n}");
                    n += 1;
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                println!("FAKEVMM-TERM");
                std::process::exit(0);
            }
            "exit" | "monitor-exit" => {
                let _ = o.flush();
                drop(o);
                let code = arg.parse().unwrap_or(0);
                match urunit_fd(&argv).filter(|_| cmd == "exit") {
                    Some(fd) => {
                        guest_exit(fd, code);
                        std::process::exit(0)
                    }
                    None => std::process::exit(code),
                }
            }
            "alloc" => {
                let mib: usize = arg.parse().unwrap_or(1);
                let mut v = vec![0u8; mib << 20];
                for i in (0..v.len()).step_by(4096) {
                    v[i] = 1;
                }
                keep.push(v);
                let _ = writeln!(o, "FAKEVMM-ALLOC {mib} ok");
            }
            "fork" => {
                let n: usize = arg.parse().unwrap_or(1);
                let mut res = "ok".to_string();
                for _ in 0..n {
                    match std::process::Command::new("/proc/self/exe")
                        .arg("--fakevmm-child-sleep")
                        .spawn()
                    {
                        Ok(c) => keep.push(vec![c.id() as u8]),
                        Err(e) => {
                            res = e.to_string();
                            break;
                        }
                    }
                }
                let _ = writeln!(o, "FAKEVMM-FORK {res}");
            }
            "tap-echo" => {
                let _ = o.flush();
                drop(o);
                let (ip, secs) = arg.split_once(' ').unwrap_or((arg, "10"));
                let r = tap_echo(&argv, ip, secs.parse().unwrap_or(10.0));
                println!("FAKEVMM-TAPECHO {r}");
            }
            _ => {}
        }
    }
}

/// The tap fd named in argv (`fd=N` in a `-netdev tap,...` argument).
/// The fd of urunit's channel chardev, when the plan gave one.
fn urunit_fd(argv: &[String]) -> Option<i32> {
    argv.iter()
        .find_map(|a| a.strip_prefix("socket,id=urunit,fd="))
        .and_then(|n| n.parse().ok())
}

/// What urunit writes when its program ended with `code` (urunit-proto frames).
fn guest_exit(fd: i32, code: i32) {
    use std::os::fd::FromRawFd;
    use urunit_proto::frame::{Message, MAX_ENCODED, VERSION};
    // SAFETY: (test helper) fd is the inherited channel socket, used only here, before exit.
    let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    for m in [
        Message::Hello {
            version: VERSION.into(),
        },
        Message::Exit(code),
    ] {
        let mut buf = [0u8; MAX_ENCODED];
        let n = m.encode(&mut buf);
        let _ = f.write_all(&buf[..n]);
    }
}

fn tap_fd(argv: &[String]) -> Option<i32> {
    argv.iter()
        .filter(|a| a.starts_with("tap,"))
        .flat_map(|a| a.split(','))
        .find_map(|kv| kv.strip_prefix("fd=")?.parse().ok())
}

fn argv_mac(argv: &[String]) -> [u8; 6] {
    let mut mac = [0x02, 0, 0, 0, 0, 1];
    if let Some(m) = argv
        .iter()
        .flat_map(|a| a.split(','))
        .find_map(|kv| kv.strip_prefix("mac="))
    {
        for (i, b) in m.split(':').take(6).enumerate() {
            mac[i] = u8::from_str_radix(b, 16).unwrap_or(0);
        }
    }
    mac
}

fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Answers ARP requests and ICMP echo requests for `ip` on the tap: a guest in miniature.
fn tap_echo(argv: &[String], ip: &str, secs: f64) -> String {
    let Some(fd) = tap_fd(argv) else {
        return "error=no tap fd in argv".into();
    };
    let Ok(ip) = ip.parse::<std::net::Ipv4Addr>() else {
        return "error=bad ip".into();
    };
    let ip = ip.octets();
    let mac = argv_mac(argv);
    // TUNGETIFF: is there a virtio-net header in front of each frame?
    let mut ifr = [0u8; 40];
    // SAFETY: (test helper) TUNGETIFF fills a struct ifreq (40 bytes).
    let r = unsafe { libc::ioctl(fd, 0x800454d2u32 as _, ifr.as_mut_ptr()) };
    if r < 0 {
        return format!("error=TUNGETIFF {}", std::io::Error::last_os_error());
    }
    let flags = i16::from_ne_bytes([ifr[16], ifr[17]]);
    let mut hdr = 0usize;
    if flags & 0x4000 != 0 {
        let mut sz: libc::c_int = 10;
        // SAFETY: (test helper) TUNGETVNETHDRSZ writes an int.
        unsafe { libc::ioctl(fd, 0x800454d7u32 as _, &mut sz as *mut libc::c_int) };
        hdr = sz as usize;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    let (mut arps, mut icmps) = (0, 0);
    let mut buf = vec![0u8; 65536];
    while std::time::Instant::now() < deadline && !TERM.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: (test helper) one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
            continue;
        }
        // SAFETY: (test helper) reads into a buffer we own, of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            continue;
        }
        let frame = &buf[hdr.min(n as usize)..n as usize];
        if frame.len() < 42 {
            continue;
        }
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let mut reply = vec![0u8; hdr];
        if ethertype == 0x0806 && frame[20..22] == [0, 1] && frame[38..42] == ip {
            reply.extend_from_slice(&frame[6..12]);
            reply.extend_from_slice(&mac);
            reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
            reply.extend_from_slice(&mac);
            reply.extend_from_slice(&ip);
            reply.extend_from_slice(&frame[22..32]);
            arps += 1;
        } else if ethertype == 0x0800 && frame[23] == 1 && frame[30..34] == ip {
            let ihl = ((frame[14] & 0x0f) as usize) * 4;
            let total = u16::from_be_bytes([frame[16], frame[17]]) as usize;
            if frame.len() < 14 + total || frame[14 + ihl] != 8 {
                continue;
            }
            let mut pkt = frame[14..14 + total].to_vec();
            let (src, dst) = (pkt[12..16].to_vec(), pkt[16..20].to_vec());
            pkt[12..16].copy_from_slice(&dst);
            pkt[16..20].copy_from_slice(&src);
            pkt[10] = 0;
            pkt[11] = 0;
            let c = csum(&pkt[..ihl]);
            pkt[10..12].copy_from_slice(&c.to_be_bytes());
            pkt[ihl] = 0;
            pkt[ihl + 2] = 0;
            pkt[ihl + 3] = 0;
            let c = csum(&pkt[ihl..]);
            pkt[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
            reply.extend_from_slice(&frame[6..12]);
            reply.extend_from_slice(&mac);
            reply.extend_from_slice(&[0x08, 0x00]);
            reply.extend_from_slice(&pkt);
            icmps += 1;
        } else {
            continue;
        }
        // SAFETY: (test helper) writes a buffer we own.
        unsafe { libc::write(fd, reply.as_ptr().cast(), reply.len()) };
    }
    format!("arp={arps} icmp={icmps}")
}
