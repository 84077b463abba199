//! The supervisor's end of exec (issue #17): a listening unix socket, `<state>/exec/sock` in a
//! root-owned 0700 directory, whose peers must be root (`SO_PEERCRED`, as runc's exec is
//! root-only). Each accepted client is one exec stream: its frames (`urunit_proto::exec`,
//! host-to-guest kinds only) go to the guest with the client's stream id, and the guest's
//! frames of that stream come back to it.
//!
//! Bounds: at most `MAX_STREAMS` clients; a client's pending output is capped (the guest can
//! only have `WINDOW` bytes of data in flight per stream; a guest that sends more loses the
//! stream), and clients are not read while the channel's queue is over `CHANNEL_CAP`, nor
//! before urunit said READY.

use crate::guest::outbox::Outbox;
use crate::guest::urunit_channel::HostChannel;
use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use urunit_proto::exec::{Credit, ExecMsg, MAX_STREAMS, WINDOW};
use urunit_proto::frame::{Decoder, Frame, MAX_ENCODED};

/// The directory under the container's state directory, and the socket in it.
pub const DIR: &str = "exec";
pub const SOCKET: &str = "sock";
/// Epoll tokens: the listener, and clients from `CLIENT_BASE` on.
pub const LISTEN: u64 = 8;
pub const CLIENT_BASE: u64 = 16;
const CLIENT_CAP: usize = 4 * WINDOW as usize;
const CHANNEL_CAP: usize = 1 << 20;

struct Client {
    sock: UnixStream,
    stream: u16,
    decoder: Box<Decoder>,
    out: Outbox,
    /// EXITED or FAILED went out: close once `out` is flushed.
    done: bool,
    /// What the guest may still send on this stream (the client's grants, checked here:
    /// a guest that sends beyond them loses the stream).
    guest_credit: Credit,
    interest: EpollFlags,
}

pub struct ExecServer {
    listener: UnixListener,
    clients: Vec<Option<Client>>,
    next_stream: u16,
    /// Streams the guest should forget (their client is gone).
    to_close: Vec<u16>,
}

/// Binds the socket; called while still root, before the supervisor is confined.
pub fn listen(state_dir: &Path) -> std::io::Result<ExecServer> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{fchmod, mkdirat, Mode};
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let state = nix::fcntl::open(state_dir, flags, Mode::empty())?;
    // SAFETY: open returned a fresh fd that nothing else owns.
    let state = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(state) };
    mkdirat(
        Some(state.as_raw_fd()),
        DIR,
        Mode::from_bits_truncate(0o700),
    )?;
    let dir = openat(Some(state.as_raw_fd()), DIR, flags, Mode::empty())?;
    // SAFETY: as above.
    let dir = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dir) };
    fchmod(dir.as_raw_fd(), Mode::from_bits_truncate(0o700))?;
    nix::unistd::fchown(dir.as_raw_fd(), Some(0.into()), Some(0.into()))?;
    // through the directory's fd: the path stays short and no link is followed
    let listener = UnixListener::bind(format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd()))?;
    listener.set_nonblocking(true)?;
    Ok(ExecServer {
        listener,
        clients: Vec::new(),
        next_stream: 1,
        to_close: Vec::new(),
    })
}

fn peer_is_root(s: &UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(s, PeerCredentials).is_ok_and(|c| c.uid() == 0)
}

impl ExecServer {
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.listener.as_fd()
    }

    fn free_stream(&mut self) -> u16 {
        loop {
            let s = self.next_stream;
            self.next_stream = self.next_stream.checked_add(1).unwrap_or(1);
            if !self.clients.iter().flatten().any(|c| c.stream == s) {
                return s;
            }
        }
    }

    pub fn on_accept(&mut self, epoll: &Epoll) {
        while let Ok((sock, _)) = self.listener.accept() {
            if !peer_is_root(&sock) {
                log::warn!("exec: refused a client that is not root");
                continue;
            }
            if self.clients.iter().flatten().count() >= MAX_STREAMS {
                log::warn!("exec: refused a client: {MAX_STREAMS} execs are open");
                continue;
            }
            if sock.set_nonblocking(true).is_err() {
                continue;
            }
            let stream = self.free_stream();
            let slot = match self.clients.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    self.clients.push(None);
                    self.clients.len() - 1
                }
            };
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, CLIENT_BASE + slot as u64);
            if epoll.add(sock.as_fd(), ev).is_err() {
                continue;
            }
            self.clients[slot] = Some(Client {
                sock,
                stream,
                decoder: Box::default(),
                out: Outbox::default(),
                done: false,
                guest_credit: Credit::default(),
                interest: EpollFlags::EPOLLIN,
            });
        }
    }

    /// A client's socket is readable or writable.
    pub fn on_client(&mut self, slot: usize, chan: &mut HostChannel) {
        let Some(c) = self.clients.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let mut gone = c.out.flush(&c.sock).is_err();
        let mut buf = [0u8; 4096];
        while !gone && !c.done && accepts(chan) {
            match (&c.sock).read(&mut buf) {
                Ok(0) => gone = true,
                Ok(n) => {
                    let (stream, credit) = (c.stream, &mut c.guest_credit);
                    c.decoder.feed(&buf[..n], |f| {
                        gone |= !to_guest(f.ok().as_ref(), stream, credit, chan);
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => gone = true,
            }
        }
        if gone || (c.done && c.out.is_empty()) {
            self.drop_client(slot);
        }
    }

    /// A frame of an exec stream from the guest.
    pub fn from_guest(&mut self, f: &Frame) {
        let Ok(m) = ExecMsg::from_frame(f) else {
            return;
        };
        let Some(slot) = self
            .clients
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.stream == f.stream && !c.done))
        else {
            if !matches!(m, ExecMsg::Exited { .. } | ExecMsg::Failed { .. }) {
                self.to_close.push(f.stream);
            }
            return;
        };
        let Some(c) = self.clients[slot].as_mut() else {
            return;
        };
        let guest_kind = matches!(
            m,
            ExecMsg::Started { .. }
                | ExecMsg::Failed { .. }
                | ExecMsg::Stdout(_)
                | ExecMsg::Stderr(_)
                | ExecMsg::Exited { .. }
                | ExecMsg::Credit(_)
        );
        let mut wire = [0u8; MAX_ENCODED];
        let n = m.encode(f.stream, &mut wire).unwrap_or(0);
        let within_credit = match m {
            ExecMsg::Stdout(d) | ExecMsg::Stderr(d) => c.guest_credit.spend(d.len()),
            _ => true,
        };
        if !guest_kind || !within_credit || c.out.queued + n > CLIENT_CAP {
            log::warn!("exec stream {}: the guest broke the protocol", f.stream);
            self.to_close.push(f.stream);
            self.clients[slot] = None;
            return;
        }
        c.done |= matches!(m, ExecMsg::Exited { .. } | ExecMsg::Failed { .. });
        // EXITED stays behind the stream's output; only credit may overtake it
        let control = matches!(m, ExecMsg::Credit(_));
        c.out.push(&wire[..n], control);
        let _ = c.out.flush(&c.sock);
    }

    /// After a round of events: CLOSE for forgotten streams, finished clients dropped,
    /// epoll interests updated (write interest only while output is pending).
    pub fn settle(&mut self, epoll: &Epoll, chan: &mut HostChannel) {
        let mut closes = std::mem::take(&mut self.to_close);
        closes.sort_unstable();
        closes.dedup();
        for stream in closes {
            // a guest flooding frames of unknown streams does not grow the queue without end
            if chan.out.queued >= CHANNEL_CAP {
                break;
            }
            let mut wire = [0u8; MAX_ENCODED];
            if let Some(n) = ExecMsg::Close.encode(stream, &mut wire) {
                chan.queue(&wire[..n], true);
            }
        }
        let reading = accepts(chan);
        for slot in 0..self.clients.len() {
            let Some(c) = self.clients[slot].as_mut() else {
                continue;
            };
            if c.done && c.out.is_empty() {
                self.clients[slot] = None;
                continue;
            }
            let mut want = EpollFlags::empty();
            if reading && !c.done {
                want |= EpollFlags::EPOLLIN;
            }
            if !c.out.is_empty() {
                want |= EpollFlags::EPOLLOUT;
            }
            if want != c.interest {
                let mut ev = EpollEvent::new(want, CLIENT_BASE + slot as u64);
                let _ = epoll.modify(c.sock.as_fd(), &mut ev);
                c.interest = want;
            }
        }
    }

    fn drop_client(&mut self, slot: usize) {
        if let Some(c) = self.clients[slot].take() {
            if !c.done {
                self.to_close.push(c.stream);
            }
        }
    }
}

/// Whether clients' frames may go to the guest now: urunit said READY (before that its tty is
/// not yet raw, and its line discipline would echo and mangle them: an exec issued while the
/// guest boots waits here), and the channel's queue has room.
fn accepts(chan: &HostChannel) -> bool {
    chan.state.ready && !chan.eof && chan.out.queued < CHANNEL_CAP
}

/// Forwards one client frame to the guest under the client's stream; false when the client
/// sent something that is not a host-to-guest exec message (it is then dropped).
fn to_guest(f: Option<&Frame>, stream: u16, credit: &mut Credit, chan: &mut HostChannel) -> bool {
    let Some(m) = f.and_then(|f| ExecMsg::from_frame(f).ok()) else {
        return false;
    };
    if let ExecMsg::Credit(n) = m {
        credit.grant(n);
    }
    // START and EOF keep their place behind the stream's SPEC and STDIN data
    let control = match m {
        ExecMsg::Spec(_) | ExecMsg::Stdin(_) | ExecMsg::Start | ExecMsg::Eof => false,
        ExecMsg::Resize { .. } | ExecMsg::Signal(_) | ExecMsg::Credit(_) | ExecMsg::Close => true,
        _ => return false,
    };
    let mut wire = [0u8; MAX_ENCODED];
    match m.encode(stream, &mut wire) {
        Some(n) => {
            chan.queue(&wire[..n], control);
            true
        }
        None => false,
    }
}

#[cfg(test)]
#[path = "exec_server_tests.rs"]
mod tests;
