//! A non-blocking writer of whole frames with two queues: control frames (signals, TERM,
//! CLOSE, credit) go before data frames, at the next frame boundary, so a busy exec stream
//! never delays a stop or another stream's control.

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};

#[derive(Default)]
pub struct Outbox {
    cur: Vec<u8>,
    off: usize,
    control: VecDeque<Vec<u8>>,
    data: VecDeque<Vec<u8>>,
    /// Bytes queued (both queues and the frame being written).
    pub queued: usize,
}

impl Outbox {
    pub fn push(&mut self, frame: &[u8], control: bool) {
        self.queued += frame.len();
        let q = if control {
            &mut self.control
        } else {
            &mut self.data
        };
        q.push_back(frame.to_vec());
    }

    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Writes what the writer takes without blocking; Err when the peer is gone.
    pub fn flush(&mut self, mut w: impl Write) -> std::io::Result<()> {
        loop {
            if self.off == self.cur.len() {
                match self.control.pop_front().or_else(|| self.data.pop_front()) {
                    Some(f) => (self.cur, self.off) = (f, 0),
                    None => {
                        self.cur.clear();
                        self.off = 0;
                        return Ok(());
                    }
                }
            }
            match w.write(&self.cur[self.off..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.off += n;
                    self.queued -= n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes `room` bytes, then would block.
    struct Slow {
        got: Vec<u8>,
        room: usize,
    }
    impl Write for Slow {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = b.len().min(self.room);
            if n == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn control_overtakes_queued_data_at_a_frame_boundary() {
        let mut o = Outbox::default();
        o.push(b"DDDD", false);
        o.push(b"dddd", false);
        let mut w = Slow {
            got: Vec::new(),
            room: 2,
        };
        o.flush(&mut w).unwrap();
        o.push(b"CC", true);
        w.room = 100;
        o.flush(&mut w).unwrap();
        // the torn data frame is finished first, then control, then the rest of the data
        assert_eq!(w.got, b"DDDDCCdddd");
        assert!(o.is_empty());
    }
}
