//! Exec sessions (issue #17): processes the host starts in the guest next to the program,
//! one per stream of the channel (protocol in `urunit_proto::exec`). Each runs with exactly
//! the identity of its spec (setgroups, setgid, setuid, chdir, the spec's environment), on
//! pipes or on a pty, and is served by the same poll loop as the program (`process.rs`).
//!
//! Flow control: stdout+stderr are read only while the host granted credit, stdin data is
//! held (at most `WINDOW` bytes per stream, a host sending more loses the stream) until the
//! process takes it, and credit goes back as it does. EXITED is sent once the process was
//! reaped and its output reached end of file.

use crate::channel::Channel;
use crate::fds;
use crate::sys;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use urunit_proto::exec::{Credit, ExecMsg, Spec, MAX_SPEC, MAX_STREAMS, WINDOW};
use urunit_proto::frame::MAX_PAYLOAD;

/// A host message for a stream, owned (the frame buffer is reused).
pub enum Incoming {
    Spec(Vec<u8>),
    Start,
    Stdin(Vec<u8>),
    Eof,
    Resize(u16, u16),
    Signal(i32),
    Credit(u32),
    Close,
}

impl Incoming {
    pub fn from_msg(m: ExecMsg<'_>) -> Option<Incoming> {
        Some(match m {
            ExecMsg::Spec(d) => Incoming::Spec(d.to_vec()),
            ExecMsg::Start => Incoming::Start,
            ExecMsg::Stdin(d) => Incoming::Stdin(d.to_vec()),
            ExecMsg::Eof => Incoming::Eof,
            ExecMsg::Resize { rows, cols } => Incoming::Resize(rows, cols),
            ExecMsg::Signal(s) => Incoming::Signal(s.into()),
            ExecMsg::Credit(n) => Incoming::Credit(n),
            ExecMsg::Close => Incoming::Close,
            // guest-to-host messages from the host: ignored
            _ => return None,
        })
    }
}

pub(crate) struct Session {
    pub(crate) stream: u16,
    pub(crate) pid: libc::pid_t,
    /// The pty master, or the write end of the stdin pipe.
    pub(crate) stdin: Option<OwnedFd>,
    /// Output fds still open: (fd, is stderr). A pty has only its master here.
    pub(crate) outputs: Vec<(OwnedFd, bool)>,
    pub(crate) pty: Option<RawFd>,
    pub(crate) pending_stdin: Vec<u8>,
    pub(crate) stdin_eof: bool,
    pub(crate) credit: Credit,
    pub(crate) exited: Option<(bool, u8)>,
    /// The host closed the stream: the process was killed, nothing more is sent.
    pub(crate) closed: bool,
}

#[derive(Default)]
pub struct Execs {
    /// Specs being received, per stream (at most MAX_STREAMS; a Vec: no hasher in PID 1).
    specs: Vec<(u16, Vec<u8>)>,
    sessions: Vec<Session>,
    debug: bool,
}

impl Execs {
    pub fn new(debug: bool) -> Execs {
        Execs {
            debug,
            ..Default::default()
        }
    }

    /// The fds to poll and their events, in `on_events` order.
    pub fn poll_set(&self) -> Vec<(RawFd, i16)> {
        let mut v = Vec::new();
        for s in &self.sessions {
            let want_out = s.credit.available() > 0 && !s.closed;
            for (fd, _) in &s.outputs {
                v.push((fd.as_raw_fd(), if want_out { libc::POLLIN } else { 0 }));
            }
            let want_in = s.stdin.is_some() && !s.pending_stdin.is_empty();
            let fd = s.stdin.as_ref().map_or(-1, |f| f.as_raw_fd());
            v.push((fd, if want_in { libc::POLLOUT } else { 0 }));
        }
        v
    }

    /// Serves what `poll` reported for `poll_set`'s fds.
    pub fn on_events(&mut self, rev: &[i16], chan: &mut Channel) {
        let mut i = 0;
        for s in &mut self.sessions {
            let outs = s.outputs.len();
            for k in (0..outs).rev() {
                if rev.get(i + k).is_some_and(|r| *r != 0) {
                    s.read_output(k, chan);
                }
            }
            i += outs;
            if rev.get(i).is_some_and(|r| *r != 0) {
                s.write_stdin(chan);
            }
            i += 1;
        }
        self.finish(chan);
    }

    /// A child was reaped; true when it was an exec's process.
    pub fn reaped(&mut self, r: &fds::Reaped, chan: &mut Channel) -> bool {
        let Some(s) = self.sessions.iter_mut().find(|s| s.pid == r.pid) else {
            return false;
        };
        s.exited = Some((r.signaled, r.value));
        self.finish(chan);
        true
    }

    pub fn on_message(&mut self, stream: u16, m: Incoming, chan: &mut Channel) {
        let idx = self.sessions.iter().position(|s| s.stream == stream);
        match (m, idx) {
            (Incoming::Spec(d), None) => {
                let pos = self.specs.iter().position(|(s, _)| *s == stream);
                let i = match pos {
                    Some(i) => i,
                    None if self.specs.len() >= MAX_STREAMS => {
                        fail(chan, stream, 126, "exec spec too large or too many pending");
                        return;
                    }
                    None => {
                        self.specs.push((stream, Vec::new()));
                        self.specs.len() - 1
                    }
                };
                if self.specs[i].1.len() + d.len() > MAX_SPEC {
                    self.specs.swap_remove(i);
                    fail(chan, stream, 126, "exec spec too large or too many pending");
                } else {
                    self.specs[i].1.extend_from_slice(&d);
                }
            }
            (Incoming::Start, None) => {
                let data = match self.specs.iter().position(|(s, _)| *s == stream) {
                    Some(i) => self.specs.swap_remove(i).1,
                    None => Vec::new(),
                };
                self.start(stream, &data, chan);
            }
            (Incoming::Spec(_) | Incoming::Start, Some(_)) => {
                fail(chan, stream, 126, "stream already in use")
            }
            (_, None) => {}
            (m, Some(i)) => self.sessions[i].on_message(m, chan),
        }
        self.finish(chan);
    }

    fn start(&mut self, stream: u16, data: &[u8], chan: &mut Channel) {
        if self.sessions.len() >= MAX_STREAMS {
            return fail(chan, stream, 126, "too many execs at once");
        }
        let spec = match Spec::decode(data) {
            Ok(s) => s,
            Err(e) => return fail(chan, stream, 126, &e.to_string()),
        };
        match crate::exec_spawn::spawn(&spec) {
            Ok(mut s) => {
                s.stream = stream;
                if self.debug {
                    eprintln!(
                        "urunit: exec {:?} as pid {} (stream {stream})",
                        spec.args, s.pid
                    );
                }
                chan.send_exec(stream, ExecMsg::Started { pid: s.pid as u32 });
                self.sessions.push(s);
            }
            Err(e) => fail(chan, stream, 126, &e),
        }
    }

    /// Sends EXITED for sessions whose process ended and whose output is drained.
    fn finish(&mut self, chan: &mut Channel) {
        self.sessions.retain(|s| {
            let Some((signaled, value)) = s.exited else {
                return true;
            };
            if s.closed {
                return false;
            }
            if !s.outputs.is_empty() {
                return true;
            }
            chan.send_exec(s.stream, ExecMsg::Exited { signaled, value });
            false
        });
    }
}

fn fail(chan: &mut Channel, stream: u16, code: u8, reason: &str) {
    chan.send_exec(stream, ExecMsg::Failed { code, reason });
}

impl Session {
    fn on_message(&mut self, m: Incoming, chan: &mut Channel) {
        match m {
            Incoming::Stdin(d) => {
                if self.pending_stdin.len() + d.len() > WINDOW as usize {
                    eprintln!(
                        "urunit: exec stream {}: stdin beyond its credit",
                        self.stream
                    );
                    self.kill_and_close();
                } else if self.stdin.is_none() {
                    // nobody reads it any more: drop it, but give the credit back
                    chan.send_exec(self.stream, ExecMsg::Credit(d.len() as u32));
                } else {
                    self.pending_stdin.extend_from_slice(&d);
                    self.write_stdin(chan);
                }
            }
            Incoming::Eof => {
                self.stdin_eof = true;
                self.write_stdin(chan);
            }
            Incoming::Resize(rows, cols) => {
                if let Some(m) = self.stdin.as_ref().filter(|_| self.pty.is_some()) {
                    let _ = fds::resize(m, rows, cols);
                }
            }
            Incoming::Signal(sig) => sys::kill(self.pid, sig),
            Incoming::Credit(n) => self.credit.grant(n),
            Incoming::Close => self.kill_and_close(),
            Incoming::Spec(_) | Incoming::Start => {}
        }
    }

    fn kill_and_close(&mut self) {
        if self.exited.is_none() {
            sys::kill(-self.pid, libc::SIGKILL);
            sys::kill(self.pid, libc::SIGKILL);
        }
        self.closed = true;
        self.outputs.clear();
        self.stdin = None;
        self.pty = None;
    }

    fn read_output(&mut self, k: usize, chan: &mut Channel) {
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = buf.len().min(self.credit.available());
        if n == 0 {
            return;
        }
        let (fd, is_err) = &self.outputs[k];
        match fds::read(fd, &mut buf[..n]) {
            Ok(0) => drop(self.outputs.remove(k)),
            Ok(n) => {
                self.credit.spend(n);
                let m = if *is_err {
                    ExecMsg::Stderr(&buf[..n])
                } else {
                    ExecMsg::Stdout(&buf[..n])
                };
                chan.send_exec(self.stream, m);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO: a pty whose slave side is closed everywhere; anything else ends it too
            Err(_) => drop(self.outputs.remove(k)),
        }
        if self.pty.is_some() && self.outputs.is_empty() {
            self.stdin = None;
            self.pty = None;
        }
    }

    fn write_stdin(&mut self, chan: &mut Channel) {
        let Some(fd) = self.stdin.as_ref() else {
            return;
        };
        if !self.pending_stdin.is_empty() {
            match fds::write(fd, &self.pending_stdin) {
                Ok(n) => {
                    self.pending_stdin.drain(..n);
                    chan.send_exec(self.stream, ExecMsg::Credit(n as u32));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // EPIPE: the process closed its stdin; what it did not take is dropped
                    let n = self.pending_stdin.len();
                    self.pending_stdin.clear();
                    chan.send_exec(self.stream, ExecMsg::Credit(n as u32));
                    if self.pty.is_none() {
                        self.stdin = None;
                    }
                }
            }
        }
        // a pty has no end of file to give: its master stays open for the output
        if self.stdin_eof && self.pending_stdin.is_empty() && self.pty.is_none() {
            self.stdin = None;
        }
    }
}
