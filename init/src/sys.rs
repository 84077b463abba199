//! Thin wrappers over the system calls urunit makes; every `unsafe` lives here.

use std::ffi::CString;
use std::io::{Error, Result};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

pub fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(std::io::ErrorKind::InvalidInput, "NUL in string"))
}

fn check(r: libc::c_int) -> Result<libc::c_int> {
    if r < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn mount(
    src: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<()> {
    let (s, t, f, d) = (cstr(src)?, cstr(target)?, cstr(fstype)?, cstr(data)?);
    let dp = if data.is_empty() {
        std::ptr::null()
    } else {
        d.as_ptr()
    };
    // SAFETY: all pointers are valid NUL-terminated strings (or null for data) for the call.
    check(unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, dp.cast()) }).map(drop)
}

pub fn umount(target: &str) -> Result<()> {
    let t = cstr(target)?;
    // SAFETY: valid C string.
    check(unsafe { libc::umount2(t.as_ptr(), 0) }).map(drop)
}

pub fn finit_module(fd: RawFd) -> Result<()> {
    let empty = c"";
    // SAFETY: fd is an open module file, params an empty C string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, fd, empty.as_ptr(), 0) };
    check(r as libc::c_int).map(drop)
}

pub fn sethostname(name: &str) -> Result<()> {
    // SAFETY: pointer and length describe `name`.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

/// sync(2) then reboot(RB_POWER_OFF); returns only if the kernel refused.
pub fn power_off() -> Error {
    // SAFETY: plain system calls without pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    Error::last_os_error()
}

/// Ctrl-Alt-Del then sends SIGINT to PID 1 instead of rebooting.
pub fn disable_cad() {
    // SAFETY: plain system call without pointers.
    unsafe { libc::reboot(libc::RB_DISABLE_CAD) };
}

pub fn uname_release() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    // SAFETY: the kernel NUL-terminates release.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Blocks `sigs` and returns a signalfd for them.
pub fn signalfd(sigs: &[libc::c_int]) -> Result<OwnedFd> {
    // SAFETY: set is plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        check(libc::sigprocmask(
            libc::SIG_BLOCK,
            &set,
            std::ptr::null_mut(),
        ))?;
        let fd = check(libc::signalfd(
            -1,
            &set,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads one pending signal number from a signalfd, if any.
pub fn read_signal(fd: RawFd) -> Option<i32> {
    // SAFETY: info is plain data, read fills at most its size.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: the buffer is `size` bytes of writable memory.
    let n = unsafe { libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
    (n == size as isize).then_some(info.ssi_signo as i32)
}

/// Unblocks every signal and restores default dispositions (in the forked child).
pub fn reset_signals() {
    // SAFETY: plain data and plain system calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        for s in 1..32 {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                libc::signal(s, libc::SIG_DFL);
            }
        }
    }
}

pub fn fork() -> Result<libc::pid_t> {
    // SAFETY: urunit is single-threaded, so the child's address space is consistent.
    check(unsafe { libc::fork() })
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: plain system call.
    unsafe { libc::kill(pid, sig) };
}

pub enum Reaped {
    None,
    /// pid and shell-style status (code, or 128 + signal)
    Exited(libc::pid_t, i32),
}

pub fn reap() -> Reaped {
    let mut st = 0;
    // SAFETY: st is a valid int to write the status to.
    let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
    if pid <= 0 {
        return Reaped::None;
    }
    let code = if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        return Reaped::Exited(0, 0);
    };
    Reaped::Exited(pid, code)
}

/// waitpid(-1, WNOHANG) ignoring the status: >0 reaped, 0 none ready, <0 no children left.
pub fn wait_any_nohang() -> libc::pid_t {
    // SAFETY: waitpid with a null status pointer.
    unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) }
}

/// In the child: new session, identity, cwd; returns only on failure (with the step).
pub fn become_user(
    uid: u32,
    gid: u32,
    groups: &[u32],
    cwd: &str,
) -> std::result::Result<(), (&'static str, Error)> {
    let groups: Vec<libc::gid_t> = groups.to_vec();
    // SAFETY: plain system calls; groups points to groups.len() gids.
    unsafe {
        libc::setsid();
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(("setgroups", Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 {
            return Err(("setgid", Error::last_os_error()));
        }
        if libc::setuid(uid) != 0 {
            return Err(("setuid", Error::last_os_error()));
        }
    }
    std::env::set_current_dir(cwd).map_err(|e| ("chdir", e))
}

pub fn execve(path: &CString, argv: &[CString], env: &[CString]) -> Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = env.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    Error::last_os_error()
}

pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit in a forked child.
    unsafe { libc::_exit(code) }
}

/// Lazily detaches a mount (old mounts of the boot initrd).
pub fn detach(target: &str) -> Result<()> {
    let t = cstr(target)?;
    // SAFETY: valid C string.
    check(unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

/// Whether `/` is the initramfs (ramfs or tmpfs).
pub fn root_is_initramfs() -> bool {
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    // SAFETY: statfs fills the zeroed struct; the path is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable statfs; "/" is a NUL-terminated string.
    let r = unsafe { libc::statfs(c"/".as_ptr(), &mut st) };
    r == 0 && matches!(st.f_type as i64, RAMFS_MAGIC | TMPFS_MAGIC)
}
