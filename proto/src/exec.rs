//! Exec sessions on the channel (issue #17): frame types 0x20..=0x3f on a stream id other
//! than 0, one stream per exec.
//!
//! ```text
//! host -> guest                          guest -> host
//! 0x20 SPEC    chunk of the spec         0x22 STARTED {pid:u32}
//! 0x21 START   (the spec is complete)    0x23 FAILED  {code:u8, reason:utf8}
//! 0x24 STDIN   data                      0x26 STDOUT  data
//! 0x25 EOF     (stdin closed)            0x27 STDERR  data
//! 0x28 RESIZE  {rows:u16, cols:u16}      0x2a EXITED  {signaled:u8 0|1, value:u8}
//! 0x29 SIGNAL  {sig:u8, 1..=64}          0x2b CREDIT  {bytes:u32}  (both ways)
//! 0x2c CLOSE   (the host gave up the stream: the guest kills the process)
//! ```
//!
//! The spec (`Spec`) is encoded as records `tag:u8 length:u32 body` and sent in SPEC chunks
//! of at most `MAX_PAYLOAD` bytes; a receiver refuses a spec above [`MAX_SPEC`].
//!
//! **Flow control.** Each direction of each stream starts with [`WINDOW`] bytes of credit.
//! A sender sends STDIN (host) or STDOUT+STDERR (guest) data only while it has credit and
//! subtracts what it sent; the receiver returns CREDIT as it hands data on to its consumer
//! (the process's stdin in the guest, the exec client on the host). Control frames (SIGNAL,
//! RESIZE, EOF, EXITED, CLOSE, and the control stream's TERM/EXIT) never need credit, so a
//! stream pushing 100 MiB to a slow reader holds at most `WINDOW` bytes in flight and never
//! delays another stream or the control stream. A receiver that gets data beyond the credit
//! it granted ends that stream (a peer that ignores the protocol).

use crate::config::{MAX_ARGS, MAX_ENV, MAX_GROUPS};
use crate::frame::{self, Frame, FrameError, MAX_ENCODED, MAX_PAYLOAD};
use crate::wire::{Reader, Writer};

pub mod kind {
    pub const SPEC: u8 = 0x20;
    pub const START: u8 = 0x21;
    pub const STARTED: u8 = 0x22;
    pub const FAILED: u8 = 0x23;
    pub const STDIN: u8 = 0x24;
    pub const EOF: u8 = 0x25;
    pub const STDOUT: u8 = 0x26;
    pub const STDERR: u8 = 0x27;
    pub const RESIZE: u8 = 0x28;
    pub const SIGNAL: u8 = 0x29;
    pub const EXITED: u8 = 0x2a;
    pub const CREDIT: u8 = 0x2b;
    pub const CLOSE: u8 = 0x2c;
}

/// Initial credit of each direction of a stream.
pub const WINDOW: u32 = 64 * 1024;
/// The largest encoded spec a receiver accepts.
pub const MAX_SPEC: usize = 256 * 1024;
/// Streams one guest keeps open at once; a START beyond it fails.
pub const MAX_STREAMS: usize = 64;

/// One exec message, borrowing its data from the frame (decoding allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMsg<'a> {
    Spec(&'a [u8]),
    Start,
    Started { pid: u32 },
    Failed { code: u8, reason: &'a str },
    Stdin(&'a [u8]),
    Eof,
    Stdout(&'a [u8]),
    Stderr(&'a [u8]),
    Resize { rows: u16, cols: u16 },
    Signal(u8),
    Exited { signaled: bool, value: u8 },
    Credit(u32),
    Close,
}

impl<'a> ExecMsg<'a> {
    /// The exec message a frame holds: stream 0 or a type outside 0x20..=0x3f is not one.
    pub fn from_frame(f: &'a Frame) -> Result<ExecMsg<'a>, FrameError> {
        let p = f.payload();
        let bad = FrameError::BadPayload(f.kind);
        if f.stream == 0 {
            return Err(FrameError::Unsupported(f.kind));
        }
        let u16_at = |i: usize| u16::from_le_bytes([p[i], p[i + 1]]);
        Ok(match (f.kind, p.len()) {
            (kind::SPEC, _) => ExecMsg::Spec(p),
            (kind::START, 0) => ExecMsg::Start,
            (kind::STARTED, 4) => ExecMsg::Started {
                pid: u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
            },
            (kind::FAILED, 1..) => ExecMsg::Failed {
                code: p[0],
                reason: std::str::from_utf8(&p[1..]).map_err(|_| bad)?,
            },
            (kind::STDIN, _) => ExecMsg::Stdin(p),
            (kind::EOF, 0) => ExecMsg::Eof,
            (kind::STDOUT, _) => ExecMsg::Stdout(p),
            (kind::STDERR, _) => ExecMsg::Stderr(p),
            (kind::RESIZE, 4) => ExecMsg::Resize {
                rows: u16_at(0),
                cols: u16_at(2),
            },
            (kind::SIGNAL, 1) if (1..=64).contains(&p[0]) => ExecMsg::Signal(p[0]),
            (kind::EXITED, 2) if p[0] <= 1 => ExecMsg::Exited {
                signaled: p[0] == 1,
                value: p[1],
            },
            (kind::CREDIT, 4) => {
                ExecMsg::Credit(u32::from_le_bytes([p[0], p[1], p[2], p[3]]).min(MAX_CREDIT))
            }
            (kind::CLOSE, 0) => ExecMsg::Close,
            (kind::SPEC..=kind::CLOSE, _) => return Err(bad),
            (k, _) => return Err(FrameError::Unsupported(k)),
        })
    }

    /// Writes the message's wire form for `stream` into `out`; None when a data payload or
    /// reason is above `MAX_PAYLOAD` (callers chunk data) or `stream` is 0.
    pub fn encode(&self, stream: u16, out: &mut [u8; MAX_ENCODED]) -> Option<usize> {
        if stream == 0 {
            return None;
        }
        let mut small = [0u8; 4];
        let mut reason = [0u8; MAX_PAYLOAD];
        let (k, p): (u8, &[u8]) = match *self {
            ExecMsg::Spec(d) => (kind::SPEC, d),
            ExecMsg::Start => (kind::START, &[]),
            ExecMsg::Started { pid } => {
                small = pid.to_le_bytes();
                (kind::STARTED, &small[..])
            }
            ExecMsg::Failed { code, reason: r } => {
                // a reason too long is cut at a character boundary
                let mut n = r.len().min(MAX_PAYLOAD - 1);
                while !r.is_char_boundary(n) {
                    n -= 1;
                }
                reason[0] = code;
                reason[1..=n].copy_from_slice(&r.as_bytes()[..n]);
                (kind::FAILED, &reason[..=n])
            }
            ExecMsg::Stdin(d) => (kind::STDIN, d),
            ExecMsg::Eof => (kind::EOF, &[]),
            ExecMsg::Stdout(d) => (kind::STDOUT, d),
            ExecMsg::Stderr(d) => (kind::STDERR, d),
            ExecMsg::Resize { rows, cols } => {
                small[..2].copy_from_slice(&rows.to_le_bytes());
                small[2..].copy_from_slice(&cols.to_le_bytes());
                (kind::RESIZE, &small[..])
            }
            ExecMsg::Signal(s) => {
                small[0] = s;
                (kind::SIGNAL, &small[..1])
            }
            ExecMsg::Exited { signaled, value } => {
                small[..2].copy_from_slice(&[signaled as u8, value]);
                (kind::EXITED, &small[..2])
            }
            ExecMsg::Credit(n) => {
                small = n.to_le_bytes();
                (kind::CREDIT, &small[..])
            }
            ExecMsg::Close => (kind::CLOSE, &[]),
        };
        frame::encode(k, stream, p, out)
    }
}

/// The largest single CREDIT grant honoured (larger ones are cut to it).
pub const MAX_CREDIT: u32 = 4 * WINDOW;

/// Credit one direction of a stream has left to send, bounded so no grant can overflow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit(u32);

impl Default for Credit {
    fn default() -> Self {
        Credit(WINDOW)
    }
}

impl Credit {
    pub fn available(&self) -> usize {
        self.0 as usize
    }
    /// Spends `n` bytes; false (and nothing spent) when there is not that much credit.
    pub fn spend(&mut self, n: usize) -> bool {
        match u32::try_from(n).ok().and_then(|n| self.0.checked_sub(n)) {
            Some(left) => {
                self.0 = left;
                true
            }
            None => false,
        }
    }
    /// Adds a grant, never above `MAX_CREDIT` in total.
    pub fn grant(&mut self, n: u32) {
        self.0 = self.0.saturating_add(n).min(MAX_CREDIT);
    }
}

/// What the process is: the exec's runtime-spec `process`, reduced to what the guest needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// A pty in the guest with this initial size (rows, cols), instead of pipes.
    pub terminal: Option<(u16, u16)>,
}

mod tag {
    pub const ARG: u8 = 1;
    pub const ENV: u8 = 2;
    pub const CWD: u8 = 3;
    pub const UID: u8 = 4;
    pub const GID: u8 = 5;
    pub const GROUP: u8 = 6;
    pub const TERMINAL: u8 = 7;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    TooLarge,
    Truncated,
    BadRecord(u8),
    TooMany(&'static str),
    NoArgs,
}

impl std::error::Error for SpecError {}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpecError::TooLarge => write!(f, "exec spec larger than {MAX_SPEC} bytes"),
            SpecError::Truncated => write!(f, "exec spec cut short"),
            SpecError::BadRecord(t) => write!(f, "exec spec record {t} is malformed"),
            SpecError::TooMany(w) => write!(f, "exec spec has too many {w}"),
            SpecError::NoArgs => write!(f, "exec spec has no program to run"),
        }
    }
}

impl Spec {
    /// The encoded records; `TooLarge` when they would exceed `MAX_SPEC`.
    pub fn encode(&self) -> Result<Vec<u8>, SpecError> {
        let mut w = Writer::default();
        for a in &self.args {
            w.record(tag::ARG, a.as_bytes());
        }
        for e in &self.env {
            w.record(tag::ENV, e.as_bytes());
        }
        w.record(tag::CWD, self.cwd.as_bytes());
        w.u32(tag::UID, self.uid);
        w.u32(tag::GID, self.gid);
        for g in &self.groups {
            w.u32(tag::GROUP, *g);
        }
        if let Some((r, c)) = self.terminal {
            let mut b = [0u8; 4];
            b[..2].copy_from_slice(&r.to_le_bytes());
            b[2..].copy_from_slice(&c.to_le_bytes());
            w.record(tag::TERMINAL, &b);
        }
        if w.out.len() > MAX_SPEC {
            return Err(SpecError::TooLarge);
        }
        Ok(w.out)
    }

    /// Decodes records; every length checked, every list bounded, unknown tags skipped.
    pub fn decode(data: &[u8]) -> Result<Spec, SpecError> {
        if data.len() > MAX_SPEC {
            return Err(SpecError::TooLarge);
        }
        let mut s = Spec {
            cwd: "/".into(),
            ..Default::default()
        };
        let mut r = Reader::new(data);
        let text =
            |t: u8, b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SpecError::BadRecord(t));
        let num = |t: u8, b: &[u8]| {
            <[u8; 4]>::try_from(b)
                .map(u32::from_le_bytes)
                .map_err(|_| SpecError::BadRecord(t))
        };
        while !r.is_empty() {
            let t = r.u8().ok_or(SpecError::Truncated)?;
            let len = r.u32().ok_or(SpecError::Truncated)? as usize;
            let b = r.bytes(len).ok_or(SpecError::Truncated)?;
            match t {
                tag::ARG if s.args.len() < MAX_ARGS => s.args.push(text(t, b)?),
                tag::ARG => return Err(SpecError::TooMany("arguments")),
                tag::ENV if s.env.len() < MAX_ENV => s.env.push(text(t, b)?),
                tag::ENV => return Err(SpecError::TooMany("environment entries")),
                tag::CWD => s.cwd = text(t, b)?,
                tag::UID => s.uid = num(t, b)?,
                tag::GID => s.gid = num(t, b)?,
                tag::GROUP if s.groups.len() < MAX_GROUPS => s.groups.push(num(t, b)?),
                tag::GROUP => return Err(SpecError::TooMany("groups")),
                tag::TERMINAL if b.len() == 4 => {
                    let rows = u16::from_le_bytes([b[0], b[1]]);
                    s.terminal = Some((rows, u16::from_le_bytes([b[2], b[3]])));
                }
                tag::TERMINAL => return Err(SpecError::BadRecord(t)),
                _ => {}
            }
        }
        if s.args.is_empty() {
            return Err(SpecError::NoArgs);
        }
        Ok(s)
    }
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
