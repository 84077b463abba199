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
use crate::process::resolve;
use crate::sys;
use std::collections::HashMap;
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

struct Session {
    stream: u16,
    pid: libc::pid_t,
    /// The pty master, or the write end of the stdin pipe.
    stdin: Option<OwnedFd>,
    /// Output fds still open: (fd, is stderr). A pty has only its master here.
    outputs: Vec<(OwnedFd, bool)>,
    pty: Option<RawFd>,
    pending_stdin: Vec<u8>,
    stdin_eof: bool,
    credit: Credit,
    exited: Option<(bool, u8)>,
    /// The host closed the stream: the process was killed, nothing more is sent.
    closed: bool,
}

#[derive(Default)]
pub struct Execs {
    specs: HashMap<u16, Vec<u8>>,
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
                let many = self.specs.len() >= MAX_STREAMS && !self.specs.contains_key(&stream);
                let buf = self.specs.entry(stream).or_default();
                if many || buf.len() + d.len() > MAX_SPEC {
                    self.specs.remove(&stream);
                    fail(chan, stream, 126, "exec spec too large or too many pending");
                } else {
                    buf.extend_from_slice(&d);
                }
            }
            (Incoming::Start, None) => {
                let data = self.specs.remove(&stream).unwrap_or_default();
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
        match spawn(&spec) {
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

/// Forks the process of `spec` on pipes or a pty.
fn spawn(spec: &Spec) -> Result<Session, String> {
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={}", crate::process::DEFAULT_PATH));
    }
    let path = resolve(&spec.args[0], &env);
    let c = |s: &str| sys::cstr(s).map_err(|e| format!("{s:?}: {e}"));
    let cpath = c(&path)?;
    let argv = spec
        .args
        .iter()
        .map(|a| c(a))
        .collect::<Result<Vec<_>, _>>()?;
    let cenv = env.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
    let io = |e: std::io::Error| format!("cannot set up the exec's stdio: {e}");
    // child ends first, parent ends second
    let (child, parent_in, outputs, pty) = match spec.terminal {
        Some((rows, cols)) => {
            let (master, slave) = fds::openpty(rows, cols).map_err(io)?;
            let m2 = master.try_clone().map_err(io)?;
            let raw = master.as_raw_fd();
            (vec![slave], master, vec![(m2, false)], Some(raw))
        }
        None => {
            let (in_r, in_w) = fds::pipe().map_err(io)?;
            let (out_r, out_w) = fds::pipe().map_err(io)?;
            let (err_r, err_w) = fds::pipe().map_err(io)?;
            (
                vec![in_r, out_w, err_w],
                in_w,
                vec![(out_r, false), (err_r, true)],
                None,
            )
        }
    };
    let pid = sys::fork().map_err(|e| format!("fork: {e}"))?;
    if pid == 0 {
        child_exec(spec, &child, &cpath, &argv, &cenv, &path);
    }
    drop(child);
    fds::set_nonblocking(&parent_in).map_err(io)?;
    for (fd, _) in &outputs {
        fds::set_nonblocking(fd).map_err(io)?;
    }
    Ok(Session {
        stream: 0,
        pid,
        stdin: Some(parent_in),
        outputs,
        pty,
        pending_stdin: Vec::new(),
        stdin_eof: false,
        credit: Credit::default(),
        exited: None,
        closed: false,
    })
}

/// In the forked child: stdio, identity, execve. Never returns.
fn child_exec(
    spec: &Spec,
    child: &[OwnedFd],
    cpath: &std::ffi::CStr,
    argv: &[std::ffi::CString],
    cenv: &[std::ffi::CString],
    path: &str,
) -> ! {
    sys::reset_signals();
    // identity first (become_user starts a new session, which a pty needs before TIOCSCTTY)
    let who = sys::become_user(spec.uid, spec.gid, &spec.groups, &spec.cwd);
    let stdio = if let [tty] = child {
        fds::take_tty(tty.as_raw_fd())
    } else {
        (0..3).try_for_each(|i| fds::dup_to(child[i as usize].as_raw_fd(), i))
    };
    if let Err(e) = stdio {
        eprintln!("urunit: exec stdio: {e}");
        sys::exit_now(126);
    }
    if let Err((step, e)) = who {
        let what = if step == "chdir" {
            format!("chdir {}", spec.cwd)
        } else {
            step.into()
        };
        eprintln!("urunit: exec: {what}: {e}");
        sys::exit_now(126);
    }
    let e = sys::execve(&cpath.to_owned(), argv, cenv);
    eprintln!("urunit: exec {path}: {e}");
    sys::exit_now(if e.raw_os_error() == Some(libc::ENOENT) {
        127
    } else {
        126
    })
}
