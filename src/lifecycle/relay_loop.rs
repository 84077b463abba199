//! The relay's poll loop (`relay.rs`): the supervisor's socket, a signalfd, the exec's stdin
//! while the guest granted credit, and the output fd while guest output waits for it.
//!
//! Output is written only when poll says the fd takes it, at most one frame's data (1 KiB,
//! under PIPE_BUF) per write, so the loop never blocks on a slow reader: it keeps seeing the
//! socket's end (the supervisor or the guest is gone: 137, as a process killed with its
//! container) and signals. Credit goes back to the guest only once the data was written, so
//! a reader that does not read holds the guest process, never the relay.

use super::relay::{window_size, Reader, Writer};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use urunit_proto::exec::{Credit, ExecMsg};
use urunit_proto::frame::MAX_PAYLOAD;

/// The status when the container ended under a running exec (its process was SIGKILLed).
const CONTAINER_ENDED: i32 = 137;

pub struct Loop<'a> {
    sock: &'a UnixStream,
    credit: Credit,
    stdin_open: bool,
    /// stdin, stdout, stderr
    fds: [RawFd; 3],
    winch_fd: RawFd,
    /// Guest output not yet written: (fd, data, bytes of it already written).
    pending: VecDeque<(RawFd, Vec<u8>, usize)>,
    done: Option<i32>,
}

// SAFETY (for the borrows below): the stdio fds stay open for the whole loop.
fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: see above; the loop never closes them.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

impl<'a> Loop<'a> {
    pub fn new(sock: &'a UnixStream, fds: [RawFd; 3], winch_fd: RawFd) -> Self {
        Loop {
            sock,
            credit: Credit::default(),
            stdin_open: true,
            fds,
            winch_fd,
            pending: VecDeque::new(),
            done: None,
        }
    }

    pub fn serve(mut self, sfd: &SignalFd, mut reader: Reader) -> std::io::Result<i32> {
        let mut sock_open = true;
        loop {
            if let Some(code) = self.done.filter(|_| self.pending.is_empty()) {
                return Ok(code);
            }
            let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            let sock_at = sock_open.then(|| {
                fds.push(PollFd::new(self.sock.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let in_at = (self.stdin_open && self.credit.available() > 0 && self.done.is_none())
                .then(|| {
                    fds.push(PollFd::new(borrow(self.fds[0]), PollFlags::POLLIN));
                    fds.len() - 1
                });
            let out_at = self.pending.front().map(|(fd, ..)| {
                fds.push(PollFd::new(borrow(*fd), PollFlags::POLLOUT));
                fds.len() - 1
            });
            let wait = if reader.pending.is_empty() {
                PollTimeout::NONE
            } else {
                PollTimeout::ZERO
            };
            match poll(&mut fds, wait) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => r?,
            };
            let rev = |i: Option<usize>| {
                i.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (sig, sock, inp, out) = (rev(Some(0)), rev(sock_at), rev(in_at), rev(out_at));
            if sig {
                self.on_signals(sfd)?;
            }
            if out {
                self.write_output()?;
            }
            if inp {
                self.on_stdin()?;
            }
            if sock || (sock_open && !reader.pending.is_empty()) {
                let mut failed = Ok(());
                sock_open = reader.next(&mut |m| {
                    if failed.is_ok() {
                        failed = self.on_message(m);
                    }
                })?;
                failed?;
                if !sock_open && self.done.is_none() {
                    return Ok(CONTAINER_ENDED);
                }
            }
        }
    }

    /// Best effort: the supervisor closes the stream once the process exited, maybe before
    /// this relay read that; the end (EXITED, or the socket's end) comes from reading.
    fn send(&self, m: ExecMsg<'_>) -> std::io::Result<()> {
        if let Err(e) = Writer::new(self.sock).send(m) {
            log::debug!("exec relay: send to the supervisor: {e}");
        }
        Ok(())
    }

    fn on_message(&mut self, m: ExecMsg<'_>) -> std::io::Result<()> {
        match m {
            ExecMsg::Stdout(d) => self.pending.push_back((self.fds[1], d.to_vec(), 0)),
            ExecMsg::Stderr(d) => self.pending.push_back((self.fds[2], d.to_vec(), 0)),
            ExecMsg::Credit(n) => self.credit.grant(n),
            ExecMsg::Exited { signaled, value } => {
                self.done = Some(if signaled {
                    128 + i32::from(value)
                } else {
                    value.into()
                })
            }
            ExecMsg::Failed { code, reason } => {
                log::error!("exec: {reason}");
                self.done = Some(code.into());
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes (part of) the oldest pending output; its credit goes back once all of it is
    /// written, or dropped when the reader went away.
    fn write_output(&mut self) -> std::io::Result<()> {
        let Some((fd, data, off)) = self.pending.front_mut() else {
            return Ok(());
        };
        match nix::unistd::write(borrow(*fd), &data[*off..]) {
            Ok(n) => *off += n,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => return Ok(()),
            Err(e) => {
                log::debug!("exec: output dropped, its reader is gone: {e}");
                *off = data.len();
            }
        }
        if *off == data.len() {
            let n = data.len() as u32;
            self.pending.pop_front();
            if self.done.is_none() {
                self.send(ExecMsg::Credit(n))?;
            }
        }
        Ok(())
    }

    fn on_stdin(&mut self) -> std::io::Result<()> {
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = buf.len().min(self.credit.available());
        match nix::unistd::read(self.fds[0], &mut buf[..n]) {
            Ok(0) | Err(nix::errno::Errno::EIO) => {
                self.stdin_open = false;
                self.send(ExecMsg::Eof)
            }
            Ok(k) => {
                self.credit.spend(k);
                self.send(ExecMsg::Stdin(&buf[..k]))
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => Ok(()),
            Err(e) => {
                self.stdin_open = false;
                log::warn!("exec: reading stdin: {e}");
                self.send(ExecMsg::Eof)
            }
        }
    }

    fn on_signals(&mut self, sfd: &SignalFd) -> std::io::Result<()> {
        while let Ok(Some(info)) = sfd.read_signal() {
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGWINCH {
                if let Some((rows, cols)) = window_size(self.winch_fd) {
                    self.send(ExecMsg::Resize { rows, cols })?;
                }
            } else if (1..=64).contains(&sig) {
                self.send(ExecMsg::Signal(sig as u8))?;
            }
        }
        Ok(())
    }
}
