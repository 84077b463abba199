//! Round-trip property tests with a hand-rolled generator (xorshift, fixed seeds: every run
//! checks the same cases). Values favour what broke the old line format: section markers,
//! line breaks, Unicode whitespace, NUL, empty strings, and the decoder's limits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use urunit_proto::config::{MAX_BLOCKS, MAX_ENV};
use urunit_proto::frame::{self, Decoder, Message, MAX_ENCODED};
use urunit_proto::{encode_file, legacy, Block, Channel, Config, Net};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn flip(&mut self) -> bool {
        self.below(2) == 0
    }
}

const NASTY: &[&str] = &[
    "",
    "UEE",
    "UES",
    " UAS",
    "UEE\u{2003}",
    "\u{2003}UCS",
    "UBE\n",
    "A=1\nUEE\nUCS\nUID:0",
    "\n",
    "\r\n",
    "\0",
    "a\0b",
    "\u{85}",
    "\u{2028}",
    "\u{feff}UEE",
    "ID:x",
    "MP:/",
    "\\n",
    "PATH=/bin",
    "\u{10ffff}",
    "URUNIT-CONFIG",
    "\0URUNIT-CONFIG\0",
    "é",
];

fn string(r: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..r.below(4) {
        match r.below(4) {
            0 => s.push_str(NASTY[r.below(NASTY.len() as u64) as usize]),
            1 => s.push(char::from_u32(r.below(0x80) as u32).unwrap_or('x')),
            2 => s.push(char::from_u32(r.below(0x3000) as u32).unwrap_or('y')),
            _ => s.push_str(&"z".repeat(r.below(300) as usize)),
        }
    }
    s
}

fn list(r: &mut Rng, max: u64) -> Vec<String> {
    (0..r.below(max)).map(|_| string(r)).collect()
}

fn net(r: &mut Rng) -> Net {
    let v4 = |r: &mut Rng| Ipv4Addr::from(r.next() as u32);
    let v6 = |r: &mut Rng| Ipv6Addr::from(((r.next() as u128) << 64) | r.next() as u128);
    Net {
        mac: r.flip().then(|| string(r)),
        ip: r.flip().then(|| (v4(r), r.below(33) as u8)),
        gw: r.flip().then(|| v4(r)),
        mtu: r.flip().then(|| r.next() as u32),
        dns: (0..r.below(4))
            .map(|_| {
                if r.flip() {
                    IpAddr::V4(v4(r))
                } else {
                    IpAddr::V6(v6(r))
                }
            })
            .collect(),
        search: list(r, 4),
        options: list(r, 3),
        ip6: (0..r.below(3))
            .map(|_| (v6(r), r.below(129) as u8))
            .collect(),
        gw6: r.flip().then(|| v6(r)),
        iface: r.flip().then(|| string(r)),
    }
}

fn config(r: &mut Rng) -> Config {
    Config {
        env: list(r, 8),
        uid: r.next() as u32,
        gid: r.next() as u32,
        groups: (0..r.below(5)).map(|_| r.next() as u32).collect(),
        cwd: string(r),
        blocks: (0..r.below(3))
            .map(|_| Block {
                id: string(r),
                mount_point: string(r),
            })
            .collect(),
        net: r.flip().then(|| net(r)),
        hostname: r.flip().then(|| string(r)),
        debug: r.flip(),
        grace_secs: r.next() as u32,
        args: r.flip().then(|| list(r, 6)),
        channel: match r.below(3) {
            0 => None,
            1 => Some(Channel::Serial(string(r))),
            _ => Some(Channel::VirtioPort(string(r))),
        },
    }
}

type Legacy = (
    Option<Vec<String>>,
    Option<(u32, u32, String)>,
    Vec<(String, String)>,
);

/// What a line-based reader with upstream urunit's rules (see `legacy`'s docs) gets from the
/// legacy text: env, uid, gid, wd, volumes. Written from those rules, not from our writer.
fn upstream_reader(text: &[u8]) -> Legacy {
    let end = text.iter().position(|b| *b == 0).unwrap_or(text.len());
    let s = String::from_utf8_lossy(&text[..end]).into_owned();
    let mut lines = s.split('\n').filter(|l| !l.is_empty()).peekable();
    let value = |l: &str| l.split_once(':').map(|(_, v)| v.trim_start().to_string());
    let mut env = None;
    if lines.peek().is_some_and(|l| l.starts_with("UES")) {
        lines.next();
        let mut v = Vec::new();
        for l in lines.by_ref() {
            if l.starts_with("UEE") {
                break;
            }
            v.push(l.to_string());
        }
        env = Some(v);
    }
    let mut cred = None;
    if lines.peek().is_some_and(|l| l.starts_with("UCS")) {
        lines.next();
        let (mut u, mut g, mut w) = (0, 0, String::new());
        for l in lines.by_ref() {
            if l.starts_with("UCE") {
                break;
            } else if l.starts_with("UID") {
                u = value(l).and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
            } else if l.starts_with("GID") {
                g = value(l).and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
            } else if l.starts_with("WD") {
                w = value(l).unwrap_or_default();
            }
        }
        cred = Some((u, g, w));
    }
    let mut vols = Vec::new();
    if lines.peek().is_some_and(|l| l.starts_with("UBS")) {
        lines.next();
        let mut id = String::new();
        for l in lines.by_ref() {
            if l.starts_with("UBE") {
                break;
            } else if l.starts_with("ID") {
                id = value(l).unwrap_or_default();
            } else if l.starts_with("MP") {
                vols.push((id.clone(), value(l).unwrap_or_default()));
            }
        }
    }
    (env, cred, vols)
}

#[test]
fn config_round_trips_and_legacy_text_never_misleads() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut with_env, mut refused) = (0, 0);
    for _ in 0..3000 {
        let c = config(&mut r);
        let blob = c.encode().unwrap();
        assert_eq!(Config::decode(&blob).unwrap(), c);
        let file =
            match encode_file(&c) {
                Ok((file, _warnings)) => file,
                Err(_) => {
                    refused += 1;
                    assert!(
                        !legacy::value_safe(&c.cwd)
                            || c.blocks.iter().any(|b| !legacy::value_safe(&b.id)
                                || !legacy::value_safe(&b.mount_point))
                    );
                    continue;
                }
            };
        // our urunit reads the blob only, whatever the legacy text held
        assert_eq!(Config::decode_file(&file).unwrap(), c);
        let (env, cred, vols) = upstream_reader(&file);
        // the legacy reader gets exactly the values, or no environment at all
        match env {
            Some(e) => {
                with_env += 1;
                assert_eq!(e, c.env)
            }
            None => assert!(c.env.iter().any(|e| !legacy::env_line_safe(e))),
        }
        assert_eq!(cred, Some((c.uid, c.gid, c.cwd.clone())));
        let want: Vec<_> = c
            .blocks
            .iter()
            .map(|b| (b.id.clone(), b.mount_point.clone()))
            .collect();
        assert_eq!(vols, want);
    }
    // the generator reached both branches
    assert!(with_env > 100 && refused > 100, "{with_env} {refused}");
}

#[test]
fn old_injections_are_plain_values() {
    let c = Config {
        env: vec![
            "UEE".into(),
            " UAS".into(),
            "UEE\u{2003}".into(),
            "UCS".into(),
            "UID:0".into(),
        ],
        uid: 1000,
        ..Default::default()
    };
    let (file, warnings) = encode_file(&c).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let back = Config::decode_file(&file).unwrap();
    assert_eq!(back.env, c.env);
    assert_eq!((back.uid, back.groups.len(), back.args), (1000, 0, None));
    // the legacy text left the environment out rather than let it be misread
    assert!(file.starts_with(b"UCS\nUID:1000\nGID:0\nWD:/\nUCE\nUBS\nUBE\n\0"));
}

#[test]
fn limits_are_enforced() {
    let c = Config {
        env: vec![String::new(); MAX_ENV],
        blocks: vec![
            Block {
                id: "a".into(),
                mount_point: "/a".into()
            };
            MAX_BLOCKS
        ],
        ..Default::default()
    };
    assert_eq!(Config::decode(&c.encode().unwrap()).unwrap(), c);
    let over = Config {
        env: vec![String::new(); MAX_ENV + 1],
        ..Default::default()
    };
    assert!(Config::decode(&over.encode().unwrap()).is_err());
    let over = Config {
        blocks: vec![
            Block {
                id: "a".into(),
                mount_point: "/a".into()
            };
            MAX_BLOCKS + 1
        ],
        ..Default::default()
    };
    assert!(Config::decode(&over.encode().unwrap()).is_err());
    let huge = Config {
        env: vec!["x".repeat(9 << 20)],
        ..Default::default()
    };
    assert!(huge.encode().is_err());
}

#[test]
fn decoder_rejects_every_truncation_and_survives_flips() {
    let mut r = Rng(7);
    let blob = config(&mut r).encode().unwrap();
    for n in 0..blob.len() {
        assert!(Config::decode(&blob[..n]).is_err(), "prefix {n} accepted");
    }
    for _ in 0..20_000 {
        let mut b = blob.clone();
        let i = r.below(b.len() as u64) as usize;
        b[i] ^= 1 << r.below(8);
        let _ = Config::decode(&b); // must not panic
    }
}

fn message(r: &mut Rng) -> Message {
    match r.below(5) {
        0 => Message::Hello {
            version: r.next() as u16,
        },
        1 => Message::Ready,
        2 => Message::Exit(r.below(256) as i32),
        3 => Message::Term,
        _ => Message::Signal(1 + r.below(64) as u8),
    }
}

#[test]
fn frames_round_trip_through_noise_split_anywhere() {
    let mut r = Rng(0xdead_beef);
    for round in 0..300 {
        let sent: Vec<Message> = (0..1 + r.below(6)).map(|_| message(&mut r)).collect();
        let mut wire = Vec::new();
        for m in &sent {
            for _ in 0..r.below(3) {
                // noise, zeros included, up to 64 KiB
                let n = if round % 50 == 0 {
                    65_536
                } else {
                    r.below(2000) as usize
                };
                wire.extend((0..n).map(|_| r.next() as u8));
            }
            let mut buf = [0u8; MAX_ENCODED];
            let n = m.encode(&mut buf);
            wire.extend_from_slice(&buf[..n]);
        }
        let mut d = Decoder::default();
        let mut got = Vec::new();
        let mut i = 0;
        while i < wire.len() {
            let step = 1 + r.below(700) as usize;
            let end = (i + step).min(wire.len());
            d.feed(&wire[i..end], |f| {
                if let Ok(m) = f.and_then(|f| Message::from_frame(&f)) {
                    got.push(m)
                }
            });
            i = end;
        }
        assert_eq!(got, sent, "round {round}");
    }
}

#[test]
fn noise_before_exit_does_not_change_the_status() {
    let mut r = Rng(3);
    for fill in [0u8, 1, 0xff, b'\n'] {
        let mut wire: Vec<u8> = (0..65_536)
            .map(|i| if i % 3 == 0 { fill } else { r.next() as u8 })
            .collect();
        let mut buf = [0u8; MAX_ENCODED];
        let n = Message::Exit(3).encode(&mut buf);
        wire.extend_from_slice(&buf[..n]);
        let mut d = Decoder::default();
        let mut last = None;
        d.feed(&wire, |f| {
            if let Ok(Message::Exit(c)) = f.and_then(|f| Message::from_frame(&f)) {
                last = Some(c)
            }
        });
        assert_eq!(last, Some(3));
    }
}

#[test]
fn frame_limits_and_reserved_types() {
    let mut buf = [0u8; MAX_ENCODED];
    assert!(frame::encode(0x20, 1, &[0xab; frame::MAX_PAYLOAD + 1], &mut buf).is_none());
    let n = frame::encode(0x20, 7, &[0; frame::MAX_PAYLOAD], &mut buf).unwrap();
    let mut d = Decoder::default();
    let mut out = Vec::new();
    d.feed(&buf[..n], |f| {
        out.push(f.map(|f| (f.kind, f.stream, f.payload().len())))
    });
    assert_eq!(out, vec![Ok((0x20, 7, frame::MAX_PAYLOAD))]);
    // a reserved (exec) frame is not a control message
    d.feed(&buf[..n], |f| {
        assert!(Message::from_frame(&f.unwrap()).is_err())
    });
    // an EXIT out of 0..=255 and a SIG 0 are refused
    for (k, p) in [
        (frame::kind::EXIT, &256i32.to_le_bytes()[..]),
        (frame::kind::SIG, &[0u8][..]),
    ] {
        let n = frame::encode(k, 0, p, &mut buf).unwrap();
        d.feed(&buf[..n], |f| {
            assert!(Message::from_frame(&f.unwrap()).is_err())
        });
    }
    // more than MAX_WIRE bytes without a zero is dropped, then the next frame is read
    let mut wire = vec![0x41u8; 10_000];
    let n = Message::Exit(5).encode(&mut buf);
    wire.extend_from_slice(&buf[..n]);
    let mut errs = 0;
    let mut exit = None;
    d.feed(&wire, |f| match f {
        Err(_) => errs += 1,
        Ok(f) => exit = Message::from_frame(&f).ok(),
    });
    assert_eq!((errs, exit), (1, Some(Message::Exit(5))));
}
