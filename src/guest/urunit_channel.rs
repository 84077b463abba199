//! Supervisor side of urunit's control channel. The framing is `urunit-proto::frame`; this
//! file picks the device and keeps the supervisor's end of the stream socketpair whose other
//! end QEMU gets as `-chardev socket,id=urunit,fd=N`.
//!
//! The device (`device`):
//! - x86_64 (pc, q35, microvm): a second ISA serial port, `-device isa-serial,chardev=urunit,
//!   index=1` (I/O 0x2f8, IRQ 3: the guest's ttyS1). Distribution kernels build the 8250
//!   driver in (`CONFIG_SERIAL_8250=y` with 4 UARTs on the Debian cloud kernel, reference
//!   real-guests.md), so the channel works with no module in the initrd. virtio-serial is
//!   not used on x86: it needs `virtio_console` and `virtio_pci`/`virtio_mmio`, which stock
//!   kernels ship as modules, and it adds nothing the UART lacks at these message sizes.
//! - aarch64 `virt`: a virtio-serial port named `urunc.urunit` (the machine has a single
//!   PL011, which is the console). It works when the guest has `virtio_console` (built in,
//!   or a module urunit loads from the initrd); otherwise urunit never says HELLO and the
//!   supervisor reports the status as unknown (see `supervisor::status`).

use crate::plan::{MonitorKind, PlanInput};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use urunit_proto::frame::{Decoder, FrameError, Message, MAX_ENCODED};

pub use crate::plan::channel::{device, PORT_NAME, SERIAL_TTY};

/// Only guests whose init is urunit speak the protocol.
pub fn wanted(input: &PlanInput) -> bool {
    input.unikernel.unikernel_type == "linux"
        && MonitorKind::from_name(&input.unikernel.hypervisor) == Some(MonitorKind::Qemu)
        && input
            .process
            .args
            .first()
            .is_some_and(|a| a.contains("urunit"))
}

/// What the guest said so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GuestState {
    /// urunit's HELLO arrived (with its version).
    pub hello: Option<u16>,
    /// urunit listens for TERM/SIG.
    pub ready: bool,
    /// The program's status, as urunit reported it.
    pub exit: Option<i32>,
    /// Frames rejected (noise, bad checksum, unknown types).
    pub rejected: u32,
}

pub struct HostChannel {
    ours: UnixStream,
    /// Frames waiting for the socket (control before exec data).
    pub out: crate::guest::outbox::Outbox,
    guest: Option<OwnedFd>,
    decoder: Box<Decoder>,
    pub state: GuestState,
    /// The guest end of the stream was closed (QEMU exited).
    pub eof: bool,
}

impl HostChannel {
    pub fn new() -> std::io::Result<HostChannel> {
        let (ours, guest) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        Ok(HostChannel {
            ours,
            out: Default::default(),
            guest: Some(guest.into()),
            decoder: Box::default(),
            state: GuestState::default(),
            eof: false,
        })
    }

    /// The fd number the monitor inherits (CLOEXEC until the monitor's exec clears it).
    pub fn guest_fd(&self) -> Option<i32> {
        self.guest.as_ref().map(|f| f.as_raw_fd())
    }

    /// Our end, for the supervisor's poll set.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.ours.as_fd()
    }

    /// Once the monitor runs, the supervisor no longer needs the guest end.
    pub fn close_guest_end(&mut self) {
        self.guest = None;
    }

    /// Forwards a signal to the program: TERM for SIGTERM, else SIG n.
    pub fn send_signal(&mut self, sig: i32) {
        let m = match sig {
            libc::SIGTERM => Message::Term,
            s => Message::Signal(u8::try_from(s).unwrap_or(0)),
        };
        let mut buf = [0u8; MAX_ENCODED];
        let n = m.encode(&mut buf);
        self.queue(&buf[..n], true);
        if !self.out.is_empty() {
            log::debug!(
                "signal {sig} queued for the guest behind {} bytes",
                self.out.queued
            );
        }
    }

    /// Queues a wire frame for the guest and writes what the socket takes now.
    pub fn queue(&mut self, wire: &[u8], control: bool) {
        self.out.push(wire, control);
        self.flush();
    }

    /// Writes queued frames without blocking (call when the socket is writable).
    pub fn flush(&mut self) {
        if let Err(e) = self.out.flush(&self.ours) {
            // QEMU is gone: nothing queued can be delivered any more
            log::warn!("guest channel write: {e}");
            self.out = Default::default();
        }
    }

    /// Reads everything available without blocking (a fixed buffer, no allocation) and
    /// updates `state`; frames of exec streams go to `exec`.
    pub fn on_readable(&mut self, exec: &mut dyn FnMut(&urunit_proto::Frame)) {
        let mut buf = [0u8; 4096];
        loop {
            match (&self.ours).read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    let st = &mut self.state;
                    self.decoder.feed(&buf[..n], |f| match f {
                        Ok(f) if f.stream != 0 => exec(&f),
                        f => apply(st, f),
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("guest channel: {e}");
                    self.eof = true;
                    return;
                }
            }
        }
    }
}

/// One frame's effect on what the supervisor knows.
fn apply(st: &mut GuestState, f: Result<urunit_proto::Frame, FrameError>) {
    match f.and_then(|f| Message::from_frame(&f)) {
        Ok(Message::Hello { version }) => st.hello = Some(version),
        Ok(Message::Ready) => st.ready = true,
        Ok(Message::Exit(c)) => st.exit = Some(c),
        // host-to-guest messages from the guest: ignored
        Ok(Message::Term | Message::Signal(_)) => st.rejected = st.rejected.saturating_add(1),
        Err(_) => st.rejected = st.rejected.saturating_add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn wire(m: Message) -> Vec<u8> {
        let mut b = [0u8; MAX_ENCODED];
        let n = m.encode(&mut b);
        b[..n].to_vec()
    }

    /// The guest end as QEMU would drive it: bytes in, and the supervisor's reading.
    #[test]
    fn noise_then_exit_over_the_socketpair() {
        let mut c = HostChannel::new().unwrap();
        let mut guest = UnixStream::from(c.guest.take().unwrap());
        guest
            .write_all(&wire(Message::Hello { version: 1 }))
            .unwrap();
        let noise: Vec<u8> = (0..65_536u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        // written from another thread: the socket buffer is smaller than the noise
        let t = std::thread::spawn(move || {
            guest.write_all(&noise).unwrap();
            guest.write_all(&wire(Message::Ready)).unwrap();
            guest.write_all(&wire(Message::Exit(3))).unwrap();
        });
        while !c.eof {
            c.on_readable(&mut |_| {});
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        t.join().unwrap();
        assert_eq!(
            (c.state.hello, c.state.ready, c.state.exit),
            (Some(1), true, Some(3))
        );
        assert!(c.state.rejected > 0);
    }

    #[test]
    fn signals_become_term_and_sig_frames() {
        let mut c = HostChannel::new().unwrap();
        let mut guest = UnixStream::from(c.guest.take().unwrap());
        c.send_signal(libc::SIGTERM);
        c.send_signal(libc::SIGUSR1);
        drop(c);
        let mut got = Vec::new();
        guest.read_to_end(&mut got).unwrap();
        let mut d = Decoder::default();
        let mut msgs = Vec::new();
        d.feed(&got, |f| {
            msgs.push(Message::from_frame(&f.unwrap()).unwrap())
        });
        assert_eq!(msgs, [Message::Term, Message::Signal(libc::SIGUSR1 as u8)]);
    }
}
