//! The control channel to the host: a virtio-serial port named `urunc.urunit`.
//!
//! Host side (QEMU, any machine type, x86_64 and aarch64): a virtio-serial controller, a
//! chardev on a connected stream socket whose other end the supervisor keeps, and a port:
//!
//! ```text
//! -device virtio-serial-device          (microvm / arm virt: virtio-mmio; pc/q35: virtio-serial-pci)
//! -chardev socket,id=urunit,fd=<N>      (N: one end of socketpair(AF_UNIX, SOCK_STREAM), inherited)
//! -device virtserialport,chardev=urunit,name=urunc.urunit
//! ```
//! The guest needs the `virtio_console` module (and `virtio_mmio` or `virtio_pci`).
//!
//! Protocol, ASCII lines ending in `\n`:
//! - guest to host `READY`: urunit listens (sent when it opens the port, before the program
//!   starts). Until then the host cannot ask for a graceful shutdown and should fall back to
//!   stopping the monitor (a guest still booting, or hung before urunit ran).
//! - host to guest `TERM`: graceful shutdown. SIGTERM to the program; SIGKILL to everything
//!   after the grace period (`GRACE:` in the config, 10 s by default); then power off.
//! - host to guest `SIG <n>`: deliver signal `n` to the program (nothing else happens).
//! - guest to host `EXIT <code>`: the program's status (its exit code, or 128 + the signal
//!   that killed it; 127/126 if it could not be started, 1 if the guest setup failed). Written
//!   with a blocking write, so QEMU has taken it before the guest powers off: the supervisor
//!   reads it from its end of the socket after QEMU exits. No `EXIT` line means the guest
//!   died without urunit reporting (kernel panic, VM killed).
//!
//! Lines sent before urunit opens the port wait in the socket; unknown lines are ignored.

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};

pub const PORT_NAME: &str = "urunc.urunit";

pub enum Command {
    Term,
    Signal(i32),
}

pub struct Channel {
    file: std::fs::File,
    buf: Vec<u8>,
    pub open: bool,
}

/// Whether a virtio console device exists at all (class 3 on the virtio bus).
fn has_console_device() -> bool {
    std::fs::read_dir("/sys/bus/virtio/devices")
        .map(|d| {
            d.flatten().any(|e| {
                std::fs::read_to_string(e.path().join("device"))
                    .map(|s| s.trim() == "0x0003")
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

fn find_port() -> Option<String> {
    for e in std::fs::read_dir("/sys/class/virtio-ports").ok()?.flatten() {
        let name = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
        if name.trim_end_matches(['\n', '\0']) == PORT_NAME {
            return Some(format!("/dev/{}", e.file_name().to_string_lossy()));
        }
    }
    None
}

impl Channel {
    /// Opens the port; waits up to 2 s for its name (sent asynchronously by the host) when a
    /// virtio console device exists, returns None at once when none does.
    pub fn open(debug: bool) -> Option<Channel> {
        if !has_console_device() {
            if debug {
                eprintln!("urunit: no virtio console device, no host channel");
            }
            return None;
        }
        for _ in 0..200 {
            if let Some(p) = find_port() {
                let file = std::fs::OpenOptions::new().read(true).write(true).open(&p);
                return match file {
                    Ok(mut file) => {
                        if debug {
                            eprintln!("urunit: host channel on {p}");
                        }
                        let _ = file.write_all(b"READY\n");
                        Some(Channel {
                            file,
                            buf: Vec::new(),
                            open: true,
                        })
                    }
                    Err(e) => {
                        eprintln!("urunit: open {p}: {e}");
                        None
                    }
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        eprintln!("urunit: no virtio port named {PORT_NAME}");
        None
    }

    pub fn fd(&self) -> RawFd {
        if self.open {
            self.file.as_raw_fd()
        } else {
            -1
        }
    }

    /// Reads what is available (call when poll says readable) and returns complete commands.
    pub fn read_commands(&mut self) -> Vec<Command> {
        let mut tmp = [0u8; 256];
        // SAFETY: tmp is writable for its length; the fd is our open port.
        let n = unsafe { libc::read(self.file.as_raw_fd(), tmp.as_mut_ptr().cast(), tmp.len()) };
        if n <= 0 {
            // host side gone (EOF) or error: stop polling it
            self.open = false;
            return Vec::new();
        }
        self.buf.extend_from_slice(&tmp[..n as usize]);
        let mut out = Vec::new();
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            if let Some(c) = parse_command(&String::from_utf8_lossy(&line)) {
                out.push(c);
            }
        }
        if self.buf.len() > 1024 {
            self.buf.clear();
        }
        out
    }

    pub fn report_exit(&mut self, code: i32) {
        let _ = self.file.write_all(format!("EXIT {code}\n").as_bytes());
    }
}

pub fn parse_command(line: &str) -> Option<Command> {
    let line = line.trim();
    if line == "TERM" {
        return Some(Command::Term);
    }
    let n: i32 = line.strip_prefix("SIG ")?.trim().parse().ok()?;
    (1..65).contains(&n).then_some(Command::Signal(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert!(matches!(parse_command("TERM\n"), Some(Command::Term)));
        assert!(matches!(parse_command("SIG 10"), Some(Command::Signal(10))));
        assert!(parse_command("SIG 0").is_none());
        assert!(parse_command("bogus").is_none());
    }
}
