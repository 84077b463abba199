//! The create <-> container process sync socket (a SOCK_SEQPACKET pair): one typed message per
//! datagram. The bytes are those of earlier releases (a container process and a `create` of
//! the same binary talk, so only readability matters, but the log of a failed create quotes
//! them).

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
    /// `create` recorded the state and ran its hooks: go on.
    Go,
    /// The monitor is set up; the container waits for `start`.
    Ready,
    /// The container process failed, and why.
    Error(String),
}

impl Sync {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Sync::UserNs => b"userns".to_vec(),
            Sync::Mapped => b"mapped".to_vec(),
            Sync::NsReady => b"ns-ready".to_vec(),
            Sync::Go => b"go".to_vec(),
            Sync::Ready => b"ready".to_vec(),
            Sync::Error(e) => [ERROR, e.as_bytes()].concat(),
        }
    }

    /// `None`: not a message (an empty datagram is the peer's end).
    pub fn decode(b: &[u8]) -> Option<Sync> {
        if let Some(e) = b.strip_prefix(ERROR) {
            return Some(Sync::Error(String::from_utf8_lossy(e).into_owned()));
        }
        [
            Sync::UserNs,
            Sync::Mapped,
            Sync::NsReady,
            Sync::Go,
            Sync::Ready,
        ]
        .into_iter()
        .find(|m| m.encode() == b)
    }
}

pub fn send(sock: &UnixDatagram, msg: &Sync) -> std::io::Result<()> {
    sock.send(&msg.encode()).map(|_| ())
}

/// The next message; `None` when the peer closed its end or sent something else.
pub fn recv(sock: &UnixDatagram) -> std::io::Result<Option<Sync>> {
    let mut buf = vec![0u8; MAX];
    let n = sock.recv(&mut buf)?;
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
            Sync::Go,
            Sync::Ready,
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
        assert_eq!(Sync::Error("x".into()).encode(), b"error:x");
    }
}
