//! The system calls of exec sessions (`exec.rs`): pipes, ptys, non-blocking reads and writes,
//! poll with per-fd events. Every `unsafe` of exec lives here.

use std::io::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(r: libc::c_int) -> Result<libc::c_int> {
    if r < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a writable array of two ints.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 returned two fresh fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    // SAFETY: fcntl on an fd we own.
    let fl = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(drop)
}

/// A new pty: (master, slave), both close-on-exec, the window set to `rows`x`cols`.
pub fn openpty(rows: u16, cols: u16) -> Result<(OwnedFd, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path.
    let mut m = unsafe { libc::open(c"/dev/ptmx".as_ptr(), flags) };
    if m < 0 {
        // SAFETY: as above (devpts' own multiplexer, when /dev has no ptmx node)
        m = check(unsafe { libc::open(c"/dev/pts/ptmx".as_ptr(), flags) })?;
    }
    // SAFETY: open returned a fresh fd.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int (0: unlock); TIOCGPTN writes the number.
    unsafe {
        check(libc::ioctl(m, libc::TIOCSPTLCK, &n))?;
        check(libc::ioctl(m, libc::TIOCGPTN, &mut n))?;
    }
    let path = std::ffi::CString::new(format!("/dev/pts/{n}")).map_err(Error::other)?;
    // SAFETY: a NUL-terminated path.
    let s = check(unsafe { libc::open(path.as_ptr(), flags) })?;
    // SAFETY: open returned a fresh fd.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    resize(&master, rows, cols)?;
    Ok((master, slave))
}

pub fn resize(master: &OwnedFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// In the forked child: make `tty` the controlling terminal (after setsid) and stdio.
pub fn take_tty(tty: RawFd) -> Result<()> {
    // SAFETY: plain ioctl and dup2 on fds of this process.
    unsafe {
        check(libc::ioctl(tty, libc::TIOCSCTTY, 0))?;
    }
    for target in 0..3 {
        dup_to(tty, target)?;
    }
    Ok(())
}

/// dup2 (the new fd is not close-on-exec).
pub fn dup_to(fd: RawFd, target: RawFd) -> Result<()> {
    // SAFETY: dup2 between fds of this process.
    check(unsafe { libc::dup2(fd, target) }).map(drop)
}

/// read(2) into `buf`: Ok(0) at EOF; WouldBlock when nothing is there.
pub fn read(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub fn write(fd: &OwnedFd, buf: &[u8]) -> Result<usize> {
    // SAFETY: buf is readable for its length.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// poll(2) over (fd, events) pairs; returns the revents (0 for negative fds).
pub fn poll(fds: &[(RawFd, i16)], timeout_ms: i32) -> Vec<i16> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    // SAFETY: p is a valid array of p.len() pollfd.
    unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    p.iter().map(|x| x.revents).collect()
}

/// How a reaped child ended.
pub struct Reaped {
    pub pid: libc::pid_t,
    pub signaled: bool,
    /// The exit code, or the signal number when `signaled`.
    pub value: u8,
}

/// waitpid(-1, WNOHANG): the next exited child, if any.
pub fn reap() -> Option<Reaped> {
    loop {
        let mut st = 0;
        // SAFETY: st is a valid int to write the status to.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid <= 0 {
            return None;
        }
        if libc::WIFEXITED(st) {
            let value = libc::WEXITSTATUS(st) as u8;
            return Some(Reaped {
                pid,
                signaled: false,
                value,
            });
        }
        if libc::WIFSIGNALED(st) {
            let value = libc::WTERMSIG(st) as u8;
            return Some(Reaped {
                pid,
                signaled: true,
                value,
            });
        }
    }
}
