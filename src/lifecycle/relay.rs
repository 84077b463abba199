//! The host-side relay of one exec (`exec.rs`): one poll loop over the supervisor's socket,
//! the exec's stdin and a signalfd. Guest output is written to stdout/stderr before its
//! credit goes back (back-pressure all the way to the guest), stdin is read only while the
//! guest granted credit, EOF on stdin is passed on, signals are forwarded (SIGWINCH becomes a
//! resize), and the relay ends with the guest process: its code, or 128+N for signal N. The
//! socket's end (the supervisor or the guest is gone) ends it with 137, as a process killed
//! with its container.

use super::exec::encode;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use urunit_proto::exec::ExecMsg;
use urunit_proto::frame::{Decoder, Frame, MAX_ENCODED};

/// Writes exec messages to the supervisor (blocking).
pub struct Writer<'a>(&'a UnixStream);

impl<'a> Writer<'a> {
    pub fn new(s: &'a UnixStream) -> Self {
        Writer(s)
    }
    pub fn send(&mut self, m: ExecMsg<'_>) -> std::io::Result<()> {
        let mut buf = [0u8; MAX_ENCODED];
        let n = encode(m, &mut buf);
        (&*self.0).write_all(&buf[..n])
    }
}

/// Reads frames from the supervisor, keeping those decoded but not yet used.
pub struct Reader {
    sock: UnixStream,
    dec: Box<Decoder>,
    pub(super) pending: VecDeque<Frame>,
}

impl Reader {
    pub fn new(sock: &UnixStream) -> std::io::Result<Self> {
        Ok(Reader {
            sock: sock.try_clone()?,
            dec: Box::default(),
            pending: VecDeque::new(),
        })
    }

    /// Reads once (blocking) if nothing is pending, then hands every pending message to
    /// `on`; false once the socket reached its end.
    pub fn next(&mut self, on: &mut dyn FnMut(ExecMsg<'_>)) -> std::io::Result<bool> {
        let mut open = true;
        if self.pending.is_empty() {
            let mut buf = [0u8; 8192];
            let n = loop {
                match (&self.sock).read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // a peer that closes with our frames unread in its queue (a supervisor
                    // killed with the container) shows as a reset, not EOF: the same end
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break 0,
                    r => break r?,
                }
            };
            open = n > 0;
            let pending = &mut self.pending;
            self.dec.feed(&buf[..n], |f| pending.extend(f.ok()));
        }
        while let Some(f) = self.pending.pop_front() {
            if let Ok(m) = ExecMsg::from_frame(&f) {
                let last = matches!(m, ExecMsg::Started { .. });
                on(m);
                if last {
                    // what follows STARTED belongs to the relay's loop
                    break;
                }
            }
        }
        Ok(open || !self.pending.is_empty())
    }
}

/// The exec's side of the streams: the caller's stdio, or the slave of a console pty.
pub struct Io {
    tty: Option<OwnedFd>,
    terminal: bool,
}

impl Io {
    pub fn new(tty: Option<OwnedFd>, terminal: bool) -> Io {
        Io { tty, terminal }
    }
    fn fds(&self) -> (RawFd, RawFd, RawFd) {
        match &self.tty {
            Some(t) => (t.as_raw_fd(), t.as_raw_fd(), t.as_raw_fd()),
            None => (0, 1, 2),
        }
    }
}

/// A pty whose master goes to the console socket; returns the slave, in raw mode (the
/// guest's pty does the line discipline), of the process's `consoleSize` when it has one.
pub fn console_pty(sock: &Path, size: Option<(u16, u16)>) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let ws = size.map(|(rows, cols)| nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    let pty = nix::pty::openpty(ws.as_ref(), None)?;
    raw_mode(pty.slave.as_fd())?;
    let stream = UnixStream::connect(sock)?;
    let fds = [pty.master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
    Ok(pty.slave)
}

fn raw_mode(fd: BorrowedFd<'_>) -> nix::Result<nix::sys::termios::Termios> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let old = tcgetattr(fd)?;
    let mut t = old.clone();
    cfmakeraw(&mut t);
    tcsetattr(fd, SetArg::TCSANOW, &t)?;
    Ok(old)
}

/// The window size of a terminal fd, (rows, cols).
pub fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into `ws`.
    unsafe { get_winsize(fd, &mut ws) }.ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Every signal the relay passes on (all catchable ones but SIGCHLD and SIGPIPE).
fn relayed() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGCHLD,
        Signal::SIGPIPE,
    ] {
        set.remove(s);
    }
    for s in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGFPE,
        Signal::SIGILL,
    ] {
        set.remove(s);
    }
    set
}

/// Forks the detached relay; returns its pid. The child makes the console slave its
/// controlling terminal, confines itself and runs the relay until the guest process ends.
pub fn spawn_detached(sock: UnixStream, reader: Reader, io: Io) -> std::io::Result<i32> {
    use nix::unistd::ForkResult;
    match crate::sys::fork()? {
        ForkResult::Parent { child } => Ok(child.as_raw()),
        ForkResult::Child => {
            crate::proctitle::set(&["urunc", "exec-relay"]);
            let code = detached_main(sock, reader, io);
            // SAFETY: _exit in the forked child: no atexit handlers of the parent's state.
            unsafe { libc::_exit(code) }
        }
    }
}

fn detached_main(sock: UnixStream, reader: Reader, io: Io) -> i32 {
    if let Some(t) = &io.tty {
        let _ = nix::unistd::setsid();
        let _ = crate::sys::set_controlling_tty(t.as_raw_fd());
        // the exec's streams are the console's: the caller's stdio is not ours to keep (the
        // shim reads urunc's output until its end, which must not wait for this relay)
        if let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            for fd in 0..3 {
                let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
            }
        }
    }
    if let Err(e) = confine() {
        log::error!("exec relay: cannot confine itself: {e}");
        return 255;
    }
    run(sock, reader, io).unwrap_or_else(|e| {
        log::error!("exec relay: {e}");
        255
    })
}

/// The supervisor's confinement, minus the identity change: no capabilities, no new
/// privileges, not dumpable, the supervisor's Landlock ruleset and seccomp filter.
fn confine() -> Result<(), String> {
    use crate::sandbox::{caps, landlock};
    let dropped = caps::drop_bounding_and_ambient().map_err(|e| e.to_string())?;
    caps::clear_all(dropped).map_err(|e| e.to_string())?;
    for (opt, v) in [(libc::PR_SET_DUMPABLE, 0), (libc::PR_SET_NO_NEW_PRIVS, 1)] {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(opt, v, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
    }
    landlock::confine_supervisor().map_err(|e| e.to_string())?;
    let f = crate::sandbox::supervisor_filters().map_err(|e| e.to_string())?;
    f.apply().map_err(|e| e.to_string())
}

/// The relay's loop; returns the exit status.
pub fn run(sock: UnixStream, reader: Reader, io: Io) -> std::io::Result<i32> {
    let set = relayed();
    set.thread_block()?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let (inp, out, err) = io.fds();
    // an attached terminal: the caller's terminal goes raw while the guest's pty drives it
    let restore = (io.terminal && io.tty.is_none())
        .then(|| {
            // SAFETY: fd 0 stays open for the whole relay.
            let fd = unsafe { BorrowedFd::borrow_raw(0) };
            raw_mode(fd).ok().map(|t| (fd, t))
        })
        .flatten();
    let r = super::relay_loop::Loop::new(
        &sock,
        [inp, out, if io.terminal { out } else { err }],
        if io.tty.is_some() { inp } else { 0 },
    )
    .serve(&sfd, reader);
    if let Some((fd, t)) = restore {
        let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &t);
    }
    r
}
