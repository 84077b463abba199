//! A start gate on QEMU's monitor protocol (QMP), for plans whose status comes from
//! isa-debug-exit: QEMU's status 1 means "the guest wrote 0" only if the guest ran, and QEMU
//! also exits 1 when it fails to start. QEMU is started paused (`-S`: run state
//! `prelaunch`, "QEMU was started with -S and guest has not started", qapi/run-state.json)
//! with QMP on an inherited socket; the supervisor reads the greeting (`{"QMP": ...}`), sends
//! `qmp_capabilities`, then `cont`. QEMU answers `cont` only from its main loop, after the
//! machine, devices and kernel were set up: its `{"return": {}}` proves the guest started. So
//! does the `RESUME` event, which QEMU sends from `vm_prepare_start` before it resumes the vCPUs
//! (softmmu/cpus.c: "We are sending this now, but the CPUs will be resumed shortly later"):
//! a guest that writes isa-debug-exit at once makes QEMU exit from its vCPU thread before the
//! main loop writes `cont`'s answer, but never before that event.
//! A `SHUTDOWN` event's `reason` (guest-shutdown, guest-panic, host-signal, ...) is kept for
//! the log. Lines are read into a fixed buffer; a longer line is skipped to its end.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

const LINE_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the greeting.
    Greeting,
    /// qmp_capabilities sent.
    Capabilities,
    /// cont sent.
    Cont,
    /// cont acknowledged: the guest runs.
    Started,
    /// QEMU answered an error, or the stream ended before the guest started.
    Failed,
}

pub struct Qmp {
    ours: UnixStream,
    qemu: Option<OwnedFd>,
    pub phase: Phase,
    /// The reason of the last SHUTDOWN event (fixed buffer: no allocation while running).
    reason: [u8; 32],
    reason_len: usize,
    line: [u8; LINE_MAX],
    len: usize,
    skipping: bool,
    pub eof: bool,
}

/// What one line from QEMU is.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Greeting,
    Return,
    Error,
    Shutdown(&'a [u8]),
    Resume,
    Other,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Classifies a QMP line by its top-level key (QEMU writes `{"key": ...`).
pub fn classify(l: &[u8]) -> Line<'_> {
    let l = l.trim_ascii();
    if l.starts_with(b"{\"QMP\"") {
        Line::Greeting
    } else if l.starts_with(b"{\"return\"") {
        Line::Return
    } else if l.starts_with(b"{\"error\"") {
        Line::Error
    } else if find(l, b"\"event\": \"RESUME\"").is_some() {
        Line::Resume
    } else if find(l, b"\"event\": \"SHUTDOWN\"").is_some() {
        let key = b"\"reason\": \"";
        let reason = find(l, key)
            .map(|i| &l[i + key.len()..])
            .map(|r| &r[..r.iter().position(|b| *b == b'"').unwrap_or(r.len())])
            .unwrap_or_default();
        Line::Shutdown(reason)
    } else {
        Line::Other
    }
}

impl Qmp {
    pub fn new() -> std::io::Result<Qmp> {
        let (ours, qemu) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        Ok(Qmp {
            ours,
            qemu: Some(qemu.into()),
            phase: Phase::Greeting,
            reason: [0; 32],
            reason_len: 0,
            line: [0; LINE_MAX],
            len: 0,
            skipping: false,
            eof: false,
        })
    }

    /// The fd number QEMU inherits.
    pub fn qemu_fd(&self) -> Option<i32> {
        self.qemu.as_ref().map(|f| f.as_raw_fd())
    }

    pub fn close_qemu_end(&mut self) {
        self.qemu = None;
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.ours.as_fd()
    }

    pub fn started(&self) -> bool {
        self.phase == Phase::Started
    }

    /// The last SHUTDOWN reason QEMU gave, if any.
    pub fn shutdown_reason(&self) -> Option<&str> {
        std::str::from_utf8(&self.reason[..self.reason_len])
            .ok()
            .filter(|s| !s.is_empty())
    }

    fn send(&mut self, cmd: &[u8]) {
        if let Err(e) = (&self.ours).write_all(cmd) {
            log::warn!("QEMU monitor: {e}");
            self.phase = Phase::Failed;
        }
    }

    fn on_line(&mut self, n: usize) {
        let line = self.line;
        match (classify(&line[..n]), self.phase) {
            (Line::Greeting, Phase::Greeting) => {
                self.phase = Phase::Capabilities;
                self.send(b"{\"execute\": \"qmp_capabilities\"}\n");
            }
            (Line::Return, Phase::Capabilities) => {
                self.phase = Phase::Cont;
                self.send(b"{\"execute\": \"cont\"}\n");
            }
            (Line::Return | Line::Resume, Phase::Cont) => self.phase = Phase::Started,
            (Line::Error, Phase::Capabilities | Phase::Cont) => {
                log::warn!(
                    "QEMU monitor refused to start the guest: {}",
                    String::from_utf8_lossy(&line[..n.min(200)])
                );
                self.phase = Phase::Failed;
            }
            (Line::Shutdown(r), _) => {
                let k = r.len().min(self.reason.len());
                self.reason[..k].copy_from_slice(&r[..k]);
                self.reason_len = k;
            }
            _ => {}
        }
    }

    /// Reads what QEMU wrote and answers it (non-blocking).
    pub fn on_readable(&mut self) {
        let mut buf = [0u8; 1024];
        loop {
            let n = match (&self.ours).read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    if self.phase != Phase::Started {
                        self.phase = Phase::Failed;
                    }
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            for &b in &buf[..n] {
                if b == b'\n' {
                    if !self.skipping {
                        self.on_line(self.len);
                    }
                    self.len = 0;
                    self.skipping = false;
                } else if self.len == LINE_MAX {
                    self.skipping = true;
                } else if !self.skipping {
                    self.line[self.len] = b;
                    self.len += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    #[test]
    fn classify_lines() {
        // shapes from QEMU's QMP specification (docs/interop/qmp-spec) and qapi/run-state.json
        assert_eq!(
            classify(br#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}"#),
            Line::Greeting
        );
        assert_eq!(classify(b"{\"return\": {}}\r"), Line::Return);
        assert_eq!(
            classify(br#"{"error": {"class": "GenericError", "desc": "x"}}"#),
            Line::Error
        );
        assert_eq!(
            classify(br#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-panic"}}"#),
            Line::Shutdown(b"guest-panic")
        );
    }

    /// A stand-in for QEMU that answers as the specification says, to walk the gate.
    #[test]
    fn greeting_capabilities_cont() {
        let mut q = Qmp::new().unwrap();
        let qemu = UnixStream::from(q.qemu.take().unwrap());
        let mut rd = std::io::BufReader::new(qemu.try_clone().unwrap());
        let mut w = qemu;
        w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
            .unwrap();
        q.on_readable();
        let mut l = String::new();
        rd.read_line(&mut l).unwrap();
        assert_eq!(l, "{\"execute\": \"qmp_capabilities\"}\n");
        w.write_all(b"{\"return\": {}}\r\n").unwrap();
        q.on_readable();
        l.clear();
        rd.read_line(&mut l).unwrap();
        assert_eq!(l, "{\"execute\": \"cont\"}\n");
        assert!(!q.started());
        w.write_all(b"{\"return\": {}}\r\n").unwrap();
        q.on_readable();
        assert!(q.started());
        w.write_all(&[b'x'; 9000]).unwrap();
        w.write_all(b"\n{\"timestamp\": {}, \"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}\r\n").unwrap();
        drop((w, rd));
        q.on_readable();
        assert_eq!(q.shutdown_reason(), Some("guest-shutdown"));
        assert!(q.eof && q.started());
    }

    /// A guest that exits at once: QEMU's `RESUME` event arrives, `cont`'s answer never does.
    #[test]
    fn resume_event_alone_proves_the_start() {
        let mut q = Qmp::new().unwrap();
        let qemu = UnixStream::from(q.qemu.take().unwrap());
        let mut w = qemu.try_clone().unwrap();
        w.write_all(b"{\"QMP\": {}}\r\n{\"return\": {}}\r\n")
            .unwrap();
        q.on_readable();
        assert_eq!(q.phase, Phase::Cont);
        w.write_all(b"{\"timestamp\": {\"seconds\": 1}, \"event\": \"RESUME\"}\r\n")
            .unwrap();
        drop((w, qemu));
        q.on_readable();
        assert!(q.started());
    }
}
