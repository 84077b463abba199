//! The channel between the supervisor and urunit: versioned frames on a byte stream.
//!
//! ```text
//! wire   = 0x00 cobs(frame) 0x00        (COBS: the frame's bytes with every zero removed)
//! frame  = version:u8 type:u8 stream:u16 length:u16 payload[length] crc32:u32   (LE)
//! ```
//! - `version` is [`VERSION`]; a frame of another version is rejected ([`FrameError::Version`]).
//! - `stream` 0 is the control stream; other ids belong to exec sessions (`crate::exec`).
//! - `crc32` (IEEE, as zlib's) covers everything before it.
//! - `length` is at most [`MAX_PAYLOAD`]; a run of more than [`MAX_WIRE`] bytes without a zero
//!   is dropped up to the next zero.
//!
//! A sender writes a zero before and after each frame, so whatever precedes a frame (noise,
//! a torn frame) ends at that zero: a reader resyncs there, deterministically, with a fixed
//! buffer and no backtracking. Garbage between zeros is rejected by length/version/CRC checks
//! and reported, never taken for a message.
//!
//! Types (control stream): 0x01 HELLO {version:u16} (both ways, first), 0x02 READY (guest:
//! urunit listens, the program is starting), 0x03 EXIT {code:i32, 0..=255} (guest: the
//! program's status), 0x04 TERM (host: graceful stop), 0x05 SIG {signal:u8, 1..=64} (host:
//! deliver a signal). 0x20..=0x3f are exec sessions on streams other than 0 (`crate::exec`); other
//! types are skipped by readers of this version.

use std::fmt;

pub const VERSION: u8 = 1;
pub const MAX_PAYLOAD: usize = 1024;
const HEADER: usize = 6;
const TRAILER: usize = 4;
/// A frame before COBS.
pub const MAX_FRAME: usize = HEADER + MAX_PAYLOAD + TRAILER;
/// A COBS-encoded frame without its delimiters (one overhead byte per 254 bytes, plus one).
pub const MAX_WIRE: usize = MAX_FRAME + MAX_FRAME / 254 + 1;
/// A frame on the wire with both delimiters: the size of an encoding buffer.
pub const MAX_ENCODED: usize = MAX_WIRE + 2;

pub mod kind {
    pub const HELLO: u8 = 0x01;
    pub const READY: u8 = 0x02;
    pub const EXIT: u8 = 0x03;
    pub const TERM: u8 = 0x04;
    pub const SIG: u8 = 0x05;
    /// First and last type reserved for exec sessions.
    pub const EXEC_FIRST: u8 = 0x20;
    pub const EXEC_LAST: u8 = 0x3f;
}

/// A decoded frame, held in a fixed buffer.
#[derive(Clone)]
pub struct Frame {
    pub kind: u8,
    pub stream: u16,
    len: u16,
    payload: [u8; MAX_PAYLOAD],
}

impl Frame {
    pub fn payload(&self) -> &[u8] {
        &self.payload[..self.len as usize]
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("kind", &self.kind)
            .field("stream", &self.stream)
            .field("payload", &self.payload())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// More than MAX_WIRE bytes without a zero: dropped up to the next zero.
    Oversize,
    /// Bytes between zeros that do not decode to a frame (COBS, size, CRC).
    Garbage,
    Version(u8),
    /// A frame of a known type whose payload does not fit it.
    BadPayload(u8),
    /// A type this reader does not act on (exec, or newer than this version).
    Unsupported(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Oversize => {
                write!(f, "more than {MAX_WIRE} bytes without a frame boundary")
            }
            FrameError::Garbage => write!(f, "bytes that are not a frame"),
            FrameError::Version(v) => write!(f, "frame version {v} (this side speaks {VERSION})"),
            FrameError::BadPayload(k) => write!(f, "frame of type {k} with a malformed payload"),
            FrameError::Unsupported(k) => write!(f, "frame of type {k} is not supported"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The control messages of this version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Hello { version: u16 },
    Ready,
    Exit(i32),
    Term,
    Signal(u8),
}

impl Message {
    pub fn from_frame(f: &Frame) -> Result<Message, FrameError> {
        let p = f.payload();
        let bad = FrameError::BadPayload(f.kind);
        if f.stream != 0 {
            return Err(FrameError::Unsupported(f.kind));
        }
        match (f.kind, p.len()) {
            (kind::HELLO, 2) => Ok(Message::Hello {
                version: u16::from_le_bytes([p[0], p[1]]),
            }),
            (kind::READY, 0) => Ok(Message::Ready),
            (kind::EXIT, 4) => {
                let c = i32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                (0..=255)
                    .contains(&c)
                    .then_some(Message::Exit(c))
                    .ok_or(bad)
            }
            (kind::TERM, 0) => Ok(Message::Term),
            (kind::SIG, 1) if (1..=64).contains(&p[0]) => Ok(Message::Signal(p[0])),
            (kind::HELLO | kind::READY | kind::EXIT | kind::TERM | kind::SIG, _) => Err(bad),
            (k, _) => Err(FrameError::Unsupported(k)),
        }
    }

    /// Writes the message's wire form into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8; MAX_ENCODED]) -> usize {
        let mut p = [0u8; 4];
        let (k, n) = match *self {
            Message::Hello { version } => {
                p[..2].copy_from_slice(&version.to_le_bytes());
                (kind::HELLO, 2)
            }
            Message::Ready => (kind::READY, 0),
            Message::Exit(c) => {
                p.copy_from_slice(&c.to_le_bytes());
                (kind::EXIT, 4)
            }
            Message::Term => (kind::TERM, 0),
            Message::Signal(s) => {
                p[0] = s;
                (kind::SIG, 1)
            }
        };
        encode(k, 0, &p[..n], out).unwrap_or(0)
    }
}

/// IEEE CRC-32 (reflected, polynomial 0xEDB88320), bitwise: frames are small.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c ^= *b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Writes a frame's wire form into `out`; None when the payload is above MAX_PAYLOAD.
pub fn encode(k: u8, stream: u16, payload: &[u8], out: &mut [u8; MAX_ENCODED]) -> Option<usize> {
    if payload.len() > MAX_PAYLOAD {
        return None;
    }
    let mut raw = [0u8; MAX_FRAME];
    raw[0] = VERSION;
    raw[1] = k;
    raw[2..4].copy_from_slice(&stream.to_le_bytes());
    raw[4..6].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    raw[HEADER..HEADER + payload.len()].copy_from_slice(payload);
    let body = HEADER + payload.len();
    let crc = crc32(&raw[..body]);
    raw[body..body + TRAILER].copy_from_slice(&crc.to_le_bytes());
    let raw = &raw[..body + TRAILER];
    // COBS: each block is a code byte (distance to the next zero, 0xff for 254 data bytes
    // with no zero) and its data bytes.
    out[0] = 0;
    let mut w = 2;
    let mut code_at = 1;
    let mut code = 1u8;
    for &b in raw {
        if b == 0 {
            out[code_at] = code;
            code_at = w;
            w += 1;
            code = 1;
            continue;
        }
        out[w] = b;
        w += 1;
        code += 1;
        if code == 0xff {
            out[code_at] = code;
            code_at = w;
            w += 1;
            code = 1;
        }
    }
    out[code_at] = code;
    out[w] = 0;
    Some(w + 1)
}

/// Undoes COBS into `out`; None when the input is not valid COBS or does not fit.
fn uncobs(inp: &[u8], out: &mut [u8; MAX_FRAME]) -> Option<usize> {
    let (mut r, mut w) = (0, 0);
    while r < inp.len() {
        let code = inp[r] as usize;
        if code == 0 {
            return None;
        }
        let data = inp.get(r + 1..r + code)?;
        out.get_mut(w..w + data.len())?.copy_from_slice(data);
        w += data.len();
        r += code;
        if code != 0xff && r < inp.len() {
            *out.get_mut(w)? = 0;
            w += 1;
        }
    }
    Some(w)
}

/// A streaming reader: feed it whatever arrives; it allocates nothing.
pub struct Decoder {
    buf: [u8; MAX_WIRE],
    len: usize,
    /// Dropping bytes up to the next zero after an oversize run.
    skipping: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            buf: [0; MAX_WIRE],
            len: 0,
            skipping: false,
        }
    }
}

impl Decoder {
    /// Feeds bytes; calls `on` for every frame or error, in order.
    pub fn feed(&mut self, data: &[u8], mut on: impl FnMut(Result<Frame, FrameError>)) {
        for &b in data {
            if b != 0 {
                if self.skipping {
                    continue;
                }
                if self.len == MAX_WIRE {
                    self.skipping = true;
                    self.len = 0;
                    on(Err(FrameError::Oversize));
                    continue;
                }
                self.buf[self.len] = b;
                self.len += 1;
                continue;
            }
            self.skipping = false;
            if self.len > 0 {
                let r = self.finish();
                self.len = 0;
                on(r);
            }
        }
    }

    fn finish(&self) -> Result<Frame, FrameError> {
        let mut raw = [0u8; MAX_FRAME];
        let n = uncobs(&self.buf[..self.len], &mut raw).ok_or(FrameError::Garbage)?;
        if n < HEADER + TRAILER {
            return Err(FrameError::Garbage);
        }
        let len = u16::from_le_bytes([raw[4], raw[5]]) as usize;
        if len > MAX_PAYLOAD || n != HEADER + len + TRAILER {
            return Err(FrameError::Garbage);
        }
        let body = HEADER + len;
        let crc = u32::from_le_bytes([raw[body], raw[body + 1], raw[body + 2], raw[body + 3]]);
        if crc != crc32(&raw[..body]) {
            return Err(FrameError::Garbage);
        }
        if raw[0] != VERSION {
            return Err(FrameError::Version(raw[0]));
        }
        let mut f = Frame {
            kind: raw[1],
            stream: u16::from_le_bytes([raw[2], raw[3]]),
            len: len as u16,
            payload: [0; MAX_PAYLOAD],
        };
        f.payload[..len].copy_from_slice(&raw[HEADER..body]);
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_published_check_value() {
        // the CRC-32/ISO-HDLC check value of "123456789" is 0xCBF43926 (Rocksoft catalogue)
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn cobs_of_a_frame_has_no_zero_inside() {
        let mut out = [0u8; MAX_ENCODED];
        let n = encode(kind::EXIT, 0, &[0, 0, 0, 0], &mut out).unwrap();
        assert_eq!((out[0], out[n - 1]), (0, 0));
        assert!(!out[1..n - 1].contains(&0));
    }
}
