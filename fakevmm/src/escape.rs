//! The "escaped monitor": what a compromised VMM would try once it runs its own code. Each
//! probe does the real thing (no dry run) and reports `ok` or the error, so a test can run the
//! same script as real root outside the sandbox (every probe succeeds there) and inside it
//! (every probe must fail):
//!
//!   escape read PATH          read a file
//!   escape write PATH         open a file for appending (writes nothing)
//!   escape create PATH        create a new file
//!   escape connect PATH       connect to a unix stream socket
//!   escape signal PID         send SIGCONT (harmless, permission-checked like any signal)
//!   escape open-dev PATH      open a device read-write
//!   escape mknod PATH         make a character device node (1:3, like /dev/null), then remove it
//!   escape mount PATH         mount a tmpfs on the directory PATH, then unmount it
//!   escape chmod PATH         chmod a file 0666 (then back to its mode)
//!   escape tap NAME           make a (non-persistent) tap NAME, dropped on close
//!   escape setuid UID         become another user

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn last() -> String {
    std::io::Error::last_os_error().to_string()
}

fn cpath(p: &str) -> Option<CString> {
    CString::new(Path::new(p).as_os_str().as_bytes()).ok()
}

/// Runs one probe (`KIND ARG`) and returns `ok` or the error.
pub fn probe(line: &str) -> String {
    let (kind, arg) = line.split_once(' ').unwrap_or((line, ""));
    let io = |r: std::io::Result<()>| {
        r.map(|_| "ok".to_string())
            .unwrap_or_else(|e| e.to_string())
    };
    match kind {
        "read" => io(std::fs::read(arg).map(drop)),
        "write" => io(std::fs::OpenOptions::new().append(true).open(arg).map(drop)),
        "create" => io(std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(arg)
            .map(drop)),
        "connect" => io(std::os::unix::net::UnixStream::connect(arg).map(drop)),
        "signal" => match arg.parse::<i32>() {
            // SAFETY: (test helper) kill with a pid and a signal number only.
            Ok(pid) if unsafe { libc::kill(pid, libc::SIGCONT) } == 0 => "ok".into(),
            Ok(_) => last(),
            Err(_) => "bad pid".into(),
        },
        "open-dev" => io(std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(arg)
            .map(drop)),
        "mknod" => {
            let Some(c) = cpath(arg) else {
                return "bad path".into();
            };
            // SAFETY: (test helper) a NUL-terminated path and integer arguments.
            if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } != 0 {
                return last();
            }
            let _ = std::fs::remove_file(arg);
            "ok".into()
        }
        "mount" => {
            let (Some(c), Some(t)) = (cpath(arg), cpath("tmpfs")) else {
                return "bad path".into();
            };
            // SAFETY: (test helper) NUL-terminated strings and no data argument.
            let r = unsafe { libc::mount(t.as_ptr(), c.as_ptr(), t.as_ptr(), 0, std::ptr::null()) };
            if r != 0 {
                return last();
            }
            // SAFETY: (test helper) unmounts what was just mounted.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            "ok".into()
        }
        "chmod" => {
            let Ok(m) = std::fs::metadata(arg) else {
                return last();
            };
            let old = m.permissions().mode();
            match std::fs::set_permissions(arg, std::fs::Permissions::from_mode(0o666)) {
                Ok(()) => {
                    let _ = std::fs::set_permissions(arg, std::fs::Permissions::from_mode(old));
                    "ok".into()
                }
                Err(e) => e.to_string(),
            }
        }
        "tap" => tap(arg),
        "setuid" => match arg.parse::<u32>() {
            // SAFETY: (test helper) setresuid with integer arguments.
            Ok(u) if unsafe { libc::setresuid(u, u, u) } == 0 => "ok".into(),
            Ok(_) => last(),
            Err(_) => "bad uid".into(),
        },
        _ => "unknown probe".into(),
    }
}

/// Makes the tap `name` in the caller's network namespace (TUNSETIFF `IFF_TAP|IFF_NO_PI`,
/// `linux/if_tun.h`), and drops it again by closing the fd (it is not persistent). Creating a
/// tap takes CAP_NET_ADMIN over the namespace (`tun_set_iff`, drivers/net/tun.c).
fn tap(name: &str) -> String {
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(f) => f,
        Err(e) => return e.to_string(),
    };
    // struct ifreq: the name (IFNAMSIZ 16), then the flags (short), 40 bytes in all
    let mut req = [0u8; 40];
    if name.is_empty() || name.len() >= 16 {
        return "bad name".into();
    }
    req[..name.len()].copy_from_slice(name.as_bytes());
    req[16..18].copy_from_slice(&0x1002i16.to_ne_bytes());
    use std::os::fd::AsRawFd;
    // SAFETY: (test helper) TUNSETIFF reads and writes a 40-byte struct ifreq.
    if unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF as _, req.as_mut_ptr()) } != 0 {
        return last();
    }
    "ok".into()
}
