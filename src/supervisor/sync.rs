//! The create <-> container process sync socket (a SOCK_SEQPACKET pair): one typed message per
//! datagram, in text (a container process and a `create` of the same binary talk, so only
//! readability matters: the log of a failed create quotes them). What each side learns from
//! the other travels here, never through `state.json`: `create` tells the container process
//! its pid as the host sees it (`Go`), the container process tells `create` what it made
//! (`Ready`), and `create` writes the state file once, from these.

use std::os::unix::net::UnixDatagram;

/// Datagrams longer than this are cut (an error message is a line or two).
const MAX: usize = 65536;
const ERROR: &[u8] = b"error:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    /// The container process made its user namespace: `create` writes the maps, then answers
    /// `Mapped` (`sandbox::userns`).
    UserNs,
    Mapped,
    /// The container process is in its namespaces, its mounts made.
    NsReady,
    /// `create` ran its hooks: go on. The container process's pid and its start time as the
    /// host sees them (in a PID namespace of its own it is pid 1), for the hooks' state and
    /// as the owner marked on the network wiring.
    Go {
        pid: i32,
        start: u64,
    },
    /// The monitor is set up; the container waits for `start`. `tap`: the tap the container
    /// process made (none: the guest has no network).
    Ready {
        tap: Option<String>,
    },
    /// The container process failed, and why.
    Error(String),
}

impl Sync {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Sync::UserNs => b"userns".to_vec(),
            Sync::Mapped => b"mapped".to_vec(),
            Sync::NsReady => b"ns-ready".to_vec(),
            Sync::Go { pid, start } => format!("go {pid} {start}").into_bytes(),
            Sync::Ready { tap: None } => b"ready".to_vec(),
            Sync::Ready { tap: Some(t) } => format!("ready {t}").into_bytes(),
            Sync::Error(e) => [ERROR, e.as_bytes()].concat(),
        }
    }

    /// `None`: not a message (an empty datagram is the peer's end).
    pub fn decode(b: &[u8]) -> Option<Sync> {
        if let Some(e) = b.strip_prefix(ERROR) {
            return Some(Sync::Error(String::from_utf8_lossy(e).into_owned()));
        }
        let text = std::str::from_utf8(b).ok()?;
        let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
        match (word, rest) {
            ("userns", "") => Some(Sync::UserNs),
            ("mapped", "") => Some(Sync::Mapped),
            ("ns-ready", "") => Some(Sync::NsReady),
            ("go", r) => {
                let (pid, start) = r.split_once(' ')?;
                Some(Sync::Go {
                    pid: pid.parse().ok()?,
                    start: start.parse().ok()?,
                })
            }
            ("ready", "") => Some(Sync::Ready { tap: None }),
            // a tap name is one word (`net::tap_name`)
            ("ready", t) if !t.contains(' ') => Some(Sync::Ready {
                tap: Some(t.to_string()),
            }),
            _ => None,
        }
    }
}

pub fn send(sock: &UnixDatagram, msg: &Sync) -> std::io::Result<()> {
    sock.send(&msg.encode()).map(|_| ())
}

/// The next message; `None` when the peer closed its end or sent something else.
pub fn recv(sock: &UnixDatagram) -> std::io::Result<Option<Sync>> {
    let mut buf = vec![0u8; MAX];
    let n = match sock.recv(&mut buf) {
        // the peer exited with a message of ours unread (create's `Go` sent up front, before
        // the container process failed): Linux reports ECONNRESET once, then the datagrams
        // the peer sent before it exited (its error) are still there to read
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => sock.recv(&mut buf)?,
        r => r?,
    };
    Ok(Sync::decode(&buf[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_noise_is_none() {
        let all = [
            Sync::UserNs,
            Sync::Mapped,
            Sync::NsReady,
            Sync::Go {
                pid: 4242,
                start: 987654321,
            },
            Sync::Ready { tap: None },
            Sync::Ready {
                tap: Some("tap1a2b3c4d_urunc".into()),
            },
            Sync::Error("cannot open /dev/kvm: no such file".into()),
            Sync::Error(String::new()),
        ];
        let (a, b) = UnixDatagram::pair().unwrap();
        for m in all {
            send(&a, &m).unwrap();
            assert_eq!(recv(&b).unwrap(), Some(m));
        }
        assert_eq!(Sync::decode(b""), None);
        assert_eq!(Sync::decode(b"gone"), None);
        assert_eq!(Sync::decode(b"go"), None, "go without its pid");
        assert_eq!(Sync::decode(b"go 12 x"), None);
        assert_eq!(Sync::decode(b"ready a b"), None);
        assert_eq!(Sync::decode(b"userns x"), None);
        assert_eq!(Sync::Error("x".into()).encode(), b"error:x");
    }

    /// A peer that exits with a message of ours unread still gets its error through.
    #[test]
    fn an_error_sent_before_closing_with_unread_data_is_read() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        // the pair `create` makes (a datagram pair would not see the peer's end)
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (a, b) = (UnixDatagram::from(a), UnixDatagram::from(b));
        send(&a, &Sync::Go { pid: 1, start: 2 }).unwrap();
        send(&b, &Sync::Error("boom".into())).unwrap();
        drop(b);
        assert_eq!(recv(&a).unwrap(), Some(Sync::Error("boom".into())));
        assert_eq!(recv(&a).unwrap(), None, "then the end");
    }
}
