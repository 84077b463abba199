//! Supervisor side of urunit's control channel (protocol in `init/src/channel.rs`): a stream
//! socketpair; QEMU gets one end as `-chardev socket,fd=N` behind a virtio-serial port named
//! `urunc.urunit`, the supervisor keeps the other. Once the guest said `READY` it writes
//! `TERM` / `SIG <n>` (before that, signals go to the monitor); once the monitor has exited,
//! it reads the guest's `EXIT <code>`.
//! (Placeholder wiring by the urunit branch; the supervisor's owner decides the final shape.)

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

pub struct HostChannel {
    ours: UnixStream,
    guest: Option<OwnedFd>,
    /// What the guest wrote so far.
    received: RefCell<Vec<u8>>,
}

impl HostChannel {
    /// Only guests whose init is urunit speak the protocol.
    pub fn wanted(input: &crate::plan::PlanInput) -> bool {
        input.unikernel.unikernel_type == "linux"
            && input.unikernel.hypervisor == "qemu"
            && input
                .process
                .args
                .first()
                .is_some_and(|a| a.contains("urunit"))
    }

    pub fn new() -> std::io::Result<HostChannel> {
        let (ours, guest) = UnixStream::pair()?;
        Ok(HostChannel {
            ours,
            guest: Some(guest.into()),
            received: RefCell::new(Vec::new()),
        })
    }

    /// The fd number the monitor inherits (CLOEXEC until the monitor's exec clears it).
    pub fn guest_fd(&self) -> Option<i32> {
        self.guest.as_ref().map(|f| f.as_raw_fd())
    }

    /// Once the monitor runs, the supervisor no longer needs the guest end.
    pub fn close_guest_end(&mut self) {
        self.guest = None;
    }

    pub fn send_signal(&self, sig: i32) {
        let line = if sig == libc::SIGTERM {
            "TERM\n".to_string()
        } else {
            format!("SIG {sig}\n")
        };
        let _ = (&self.ours).write_all(line.as_bytes());
    }

    /// Reads what the guest wrote, without blocking.
    fn drain(&self) -> String {
        let _ = self.ours.set_nonblocking(true);
        let mut buf = self.received.borrow_mut();
        let mut tmp = [0u8; 512];
        while let Ok(n) = (&self.ours).read(&mut tmp) {
            if n == 0 || buf.len() > 65536 {
                break;
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Whether urunit listens (it said `READY`).
    pub fn guest_ready(&self) -> bool {
        self.drain().lines().any(|l| l.trim() == "READY")
    }

    /// The guest's `EXIT <code>`, read after the monitor exited.
    pub fn exit_code(&self) -> Option<i32> {
        self.drain()
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("EXIT ")?.trim().parse().ok())
    }
}
