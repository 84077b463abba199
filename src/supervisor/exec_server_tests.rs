use super::*;
use nix::sys::epoll::EpollCreateFlags;
use std::io::Write;
use std::os::fd::BorrowedFd;
use urunit_proto::frame::MAX_PAYLOAD;

/// A server in a temporary state directory, one connected client (stream 1), and a channel
/// whose guest end the test reads.
fn setup() -> (
    tempfile::TempDir,
    ExecServer,
    UnixStream,
    HostChannel,
    UnixStream,
    Epoll,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = listen(dir.path()).unwrap();
    let m = std::fs::metadata(dir.path().join(DIR)).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(m.mode() & 0o777, 0o700);
    let client = UnixStream::connect(dir.path().join(DIR).join(SOCKET)).unwrap();
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).unwrap();
    server.on_accept(&epoll);
    assert_eq!(
        server.clients.iter().flatten().count(),
        1,
        "a root peer is served"
    );
    let mut chan = HostChannel::new().unwrap();
    chan.state.ready = true;
    // SAFETY: the fd belongs to `chan`, which outlives this borrow; we take a duplicate.
    let guest = unsafe { BorrowedFd::borrow_raw(chan.guest_fd().unwrap()) };
    let guest = UnixStream::from(guest.try_clone_to_owned().unwrap());
    guest.set_nonblocking(true).unwrap();
    (dir, server, client, chan, guest, epoll)
}

fn frame_of(m: ExecMsg<'_>, stream: u16) -> Frame {
    let mut wire = [0u8; MAX_ENCODED];
    let n = m.encode(stream, &mut wire).unwrap();
    let mut out = None;
    Decoder::default().feed(&wire[..n], |f| out = f.ok());
    out.unwrap()
}

/// Whether the peer's close reaches `s` (EOF). A test running in parallel may fork while the
/// server's end is open, and its child holds a copy until it execs or exits (slow under
/// qemu-user): so wait for the EOF, with a bound that only guards against a hang.
fn sees_the_end(s: &UnixStream) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if drain(s).1 {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Everything readable on a non-blocking socket, decoded.
fn drain(s: &UnixStream) -> (Vec<(u8, u16, usize)>, bool) {
    let mut d = Decoder::default();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let mut eof = false;
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => d.feed(&buf[..n], |f| {
                let f = f.unwrap();
                got.push((f.kind, f.stream, f.payload().len()))
            }),
            Err(_) => break,
        }
    }
    (got, eof)
}

#[test]
fn a_guest_sending_beyond_its_credit_loses_the_stream() {
    let (_dir, mut server, client, mut chan, guest, epoll) = setup();
    client.set_nonblocking(true).unwrap();
    let data = [7u8; MAX_PAYLOAD];
    let frames = WINDOW as usize / MAX_PAYLOAD;
    for _ in 0..frames {
        server.from_guest(&frame_of(ExecMsg::Stdout(&data), 1));
    }
    let (got, eof) = drain(&client);
    assert_eq!(
        got.len(),
        frames,
        "output within the window reaches the client"
    );
    assert!(!eof);
    // one byte more than granted: the client is dropped and the guest told to close
    server.from_guest(&frame_of(ExecMsg::Stdout(&data[..1]), 1));
    server.settle(&epoll, &mut chan);
    assert_eq!(server.clients.iter().flatten().count(), 0);
    assert!(sees_the_end(&client), "the client sees the end");
    let (to_guest, _) = drain(&guest);
    assert_eq!(to_guest, [(urunit_proto::exec::kind::CLOSE, 1, 0)]);
}

#[test]
fn credit_from_the_client_lets_the_guest_send_more() {
    let (_dir, mut server, mut client, mut chan, guest, epoll) = setup();
    let data = [1u8; MAX_PAYLOAD];
    for _ in 0..WINDOW as usize / MAX_PAYLOAD {
        server.from_guest(&frame_of(ExecMsg::Stdout(&data), 1));
    }
    let mut wire = [0u8; MAX_ENCODED];
    let n = ExecMsg::Credit(MAX_PAYLOAD as u32)
        .encode(9, &mut wire)
        .unwrap();
    client.write_all(&wire[..n]).unwrap();
    server.on_client(0, &mut chan);
    server.from_guest(&frame_of(ExecMsg::Stdout(&data), 1));
    server.settle(&epoll, &mut chan);
    assert_eq!(
        server.clients.iter().flatten().count(),
        1,
        "still within credit"
    );
    // the credit went to the guest under the client's stream id, not the one it wrote
    let (to_guest, _) = drain(&guest);
    assert_eq!(to_guest, [(urunit_proto::exec::kind::CREDIT, 1, 4)]);
}

#[test]
fn a_client_sending_guest_messages_is_dropped() {
    let (_dir, mut server, mut client, mut chan, guest, epoll) = setup();
    let mut wire = [0u8; MAX_ENCODED];
    let n = ExecMsg::Exited {
        signaled: false,
        value: 0,
    }
    .encode(1, &mut wire)
    .unwrap();
    client.write_all(&wire[..n]).unwrap();
    server.on_client(0, &mut chan);
    server.settle(&epoll, &mut chan);
    assert_eq!(server.clients.iter().flatten().count(), 0);
    let (to_guest, _) = drain(&guest);
    assert_eq!(to_guest, [(urunit_proto::exec::kind::CLOSE, 1, 0)]);
}
