use super::*;
use crate::frame::{Decoder, MAX_ENCODED};

/// A small deterministic generator (xorshift64*): the property tests need no crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn text(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| char::from_u32(self.below(0x800) as u32).unwrap_or('x'))
            .collect()
    }
}

fn decode_all(wire: &[u8]) -> Vec<Frame> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    d.feed(wire, |f| out.push(f.expect("a frame we encoded decodes")));
    out
}

fn random_msg<'a>(r: &mut Rng, data: &'a [u8], reason: &'a str) -> ExecMsg<'a> {
    match r.below(13) {
        0 => ExecMsg::Spec(data),
        1 => ExecMsg::Start,
        2 => ExecMsg::Started {
            pid: r.next() as u32,
        },
        3 => ExecMsg::Failed {
            code: r.next() as u8,
            reason,
        },
        4 => ExecMsg::Stdin(data),
        5 => ExecMsg::Eof,
        6 => ExecMsg::Stdout(data),
        7 => ExecMsg::Stderr(data),
        8 => ExecMsg::Resize {
            rows: r.next() as u16,
            cols: r.next() as u16,
        },
        9 => ExecMsg::Signal(1 + r.below(64) as u8),
        10 => ExecMsg::Exited {
            signaled: r.below(2) == 1,
            value: r.next() as u8,
        },
        11 => ExecMsg::Credit(r.below(MAX_CREDIT as usize + 1) as u32),
        _ => ExecMsg::Close,
    }
}

#[test]
fn every_message_round_trips_through_the_wire() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..5_000 {
        let data = r.bytes(MAX_PAYLOAD);
        let reason = r.text(200);
        let m = random_msg(&mut r, &data, &reason);
        let stream = 1 + r.below(u16::MAX as usize) as u16;
        let mut buf = [0u8; MAX_ENCODED];
        let n = m
            .encode(stream, &mut buf)
            .expect("payloads within MAX_PAYLOAD encode");
        let frames = decode_all(&buf[..n]);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].stream, stream);
        assert_eq!(ExecMsg::from_frame(&frames[0]), Ok(m));
    }
}

#[test]
fn data_above_a_frame_and_stream_zero_are_refused_by_the_encoder() {
    let mut buf = [0u8; MAX_ENCODED];
    let big = vec![1u8; MAX_PAYLOAD + 1];
    assert_eq!(ExecMsg::Stdout(&big).encode(1, &mut buf), None);
    assert_eq!(ExecMsg::Start.encode(0, &mut buf), None);
}

#[test]
fn a_long_failure_reason_is_cut_at_a_character_boundary() {
    let reason = "é".repeat(MAX_PAYLOAD);
    let mut buf = [0u8; MAX_ENCODED];
    let n = ExecMsg::Failed {
        code: 127,
        reason: &reason,
    }
    .encode(3, &mut buf)
    .unwrap();
    let f = &decode_all(&buf[..n])[0];
    match ExecMsg::from_frame(f) {
        Ok(ExecMsg::Failed {
            code: 127,
            reason: r,
        }) => {
            assert!(r.len() < MAX_PAYLOAD && reason.starts_with(r))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn control_stream_frames_and_malformed_payloads_are_not_exec_messages() {
    let mut buf = [0u8; MAX_ENCODED];
    let n = crate::frame::encode(kind::START, 0, &[], &mut buf).unwrap();
    let f = &decode_all(&buf[..n])[0];
    assert_eq!(
        ExecMsg::from_frame(f),
        Err(FrameError::Unsupported(kind::START))
    );
    for (k, p) in [
        (kind::START, &[1u8][..]),
        (kind::SIGNAL, &[0]),
        (kind::SIGNAL, &[65]),
        (kind::EXITED, &[2, 0]),
        (kind::RESIZE, &[1, 2, 3]),
        (kind::FAILED, &[]),
        (kind::FAILED, &[1, 0xff]),
        (kind::CREDIT, &[1, 2]),
    ] {
        let n = crate::frame::encode(k, 5, p, &mut buf).unwrap();
        let f = &decode_all(&buf[..n])[0];
        assert_eq!(
            ExecMsg::from_frame(f),
            Err(FrameError::BadPayload(k)),
            "{k} {p:?}"
        );
    }
}

#[test]
fn credit_never_overflows_nor_goes_negative() {
    let mut c = Credit::default();
    assert_eq!(c.available(), WINDOW as usize);
    assert!(!c.spend(WINDOW as usize + 1));
    assert!(c.spend(WINDOW as usize));
    assert_eq!(c.available(), 0);
    c.grant(u32::MAX);
    c.grant(u32::MAX);
    assert_eq!(c.available(), MAX_CREDIT as usize);
    assert!(!c.spend(usize::MAX));
}

#[test]
fn specs_round_trip_and_decoding_is_total() {
    let mut r = Rng(42);
    for _ in 0..500 {
        let s = Spec {
            args: (0..1 + r.below(5)).map(|_| r.text(40)).collect(),
            env: (0..r.below(5)).map(|_| r.text(40)).collect(),
            cwd: r.text(20),
            uid: r.next() as u32,
            gid: r.next() as u32,
            groups: (0..r.below(4)).map(|_| r.next() as u32).collect(),
            terminal: (r.below(2) == 1).then(|| (r.next() as u16, r.next() as u16)),
        };
        let enc = s.encode().unwrap();
        assert_eq!(Spec::decode(&enc), Ok(s));
        // every prefix and random corruption decodes to a value or an error, never a panic
        let cut = r.below(enc.len() + 1);
        let _ = Spec::decode(&enc[..cut]);
        let mut bad = enc.clone();
        let i = r.below(bad.len());
        bad[i] = r.next() as u8;
        let _ = Spec::decode(&bad);
    }
}

#[test]
fn a_spec_without_a_program_or_above_the_limit_is_refused() {
    let s = Spec::default();
    assert_eq!(Spec::decode(&s.encode().unwrap()), Err(SpecError::NoArgs));
    let huge = Spec {
        args: vec!["x".repeat(MAX_SPEC)],
        ..Default::default()
    };
    assert_eq!(huge.encode(), Err(SpecError::TooLarge));
    assert_eq!(
        Spec::decode(&vec![0u8; MAX_SPEC + 1]),
        Err(SpecError::TooLarge)
    );
    // a record whose length runs past the end
    assert_eq!(
        Spec::decode(&[1, 9, 0, 0, 0, b'a']),
        Err(SpecError::Truncated)
    );
}
