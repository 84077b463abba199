//! Small wrappers around the raw system calls the process model needs; every `unsafe` of the
//! lifecycle lives here.

pub mod tun;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{ForkResult, Pid};
use std::os::fd::AsRawFd;

/// Signals a container can be sent that the supervisor forwards (or, while `created`, dies of).
pub const FORWARDED: [Signal; 8] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// fork(2). Callers are single-threaded (create, run, the supervisor), so the child may use
/// the allocator and anything else.
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: urunc never starts threads before forking (no thread is created anywhere in the
    // lifecycle paths), so the child's copy of the address space is consistent.
    unsafe { nix::unistd::fork() }
}

/// Ask for `sig` when the parent dies; returns whether the parent was already gone.
pub fn set_pdeathsig(sig: Signal, expected_parent: Pid) -> nix::Result<bool> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(nix::Error::last());
    }
    Ok(nix::unistd::getppid() != expected_parent)
}

/// Marks every fd from `from` upwards close-on-exec.
pub fn cloexec_from(from: u32) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags; no memory is passed.
    let r = unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return Ok(());
    }
    // Older kernels: walk /proc/self/fd.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| nix::Error::last())?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= from as i32)
        .collect();
    for fd in fds {
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    Ok(())
}

extern "C" fn exit_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) }
}

/// While `created`, a terminating signal ends the container process at once (with a handler
/// installed so that a PID-namespace init receives it at all).
pub fn exit_on_signals() -> nix::Result<()> {
    let act = SigAction::new(
        SigHandler::Handler(exit_on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in FORWARDED
        .iter()
        .filter(|s| !matches!(s, Signal::SIGWINCH | Signal::SIGCONT))
    {
        // SAFETY: the handler only calls _exit.
        unsafe { sigaction(*s, &act)? };
    }
    // SAFETY: ignoring SIGPIPE installs no handler code.
    unsafe {
        sigaction(
            Signal::SIGPIPE,
            &SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty()),
        )?
    };
    Ok(())
}

/// Restores default dispositions and an empty mask (in the monitor child before exec).
pub fn reset_signals() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in FORWARDED
        .iter()
        .chain([Signal::SIGPIPE, Signal::SIGCHLD].iter())
    {
        // SAFETY: restoring the default disposition installs no handler code.
        let _ = unsafe { sigaction(*s, &dfl) };
    }
    let _ = SigSet::empty().thread_set_mask();
}

/// Sets the controlling terminal of this (session-leading) process.
pub fn set_controlling_tty(fd: i32) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY as _, 0) } != 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// Reads a small file (a /proc or cgroupfs entry) into `buf`: the bytes read, at most
/// `buf.len()` (a longer file is cut short: callers size `buf` for what they look for). One
/// open(2) without musl's extra fcntl (its open adds one for O_CLOEXEC), no fstat, no
/// allocation, and one read(2): such a file is generated whole at the first read (seq_file
/// hands over its one record when the buffer holds it), so a short read is its end; only a
/// full buffer is read on.
pub fn read_small(path: &std::path::Path, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let fd = open_cloexec(&c, libc::O_RDONLY)?;
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: the pointer and length describe the unread tail of `buf`.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        match r {
            0 => break,
            r if r > 0 && (r as usize) < buf.len() - n => return Ok(n + r as usize),
            r if r > 0 => n += r as usize,
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(n)
}

/// open(2) with O_CLOEXEC, as a raw system call (the kernel sets the flag atomically).
pub fn open_cloexec(path: &std::ffi::CStr, flags: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: `path` is a NUL-terminated string that outlives the call; no other memory.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Reads the regular file `path` (at most `cap` bytes): a FIFO or device is refused without
/// blocking (opened non-blocking, checked with fstat before any read), a bigger file is an
/// error rather than a truncated read.
pub fn read_regular_capped(path: &std::path::Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    read_capped(&mut f, cap, "the file")
}

/// Reads at most `cap` bytes from `f`; more is an error (`what` names the file).
pub fn read_capped(f: &mut std::fs::File, cap: u64, what: &str) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    use std::io::Read;
    f.take(cap + 1).read_to_end(&mut data)?;
    if data.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what} is larger than {cap} bytes"),
        ));
    }
    Ok(data)
}
