//! The control channel to the host, framed by `urunit-proto` (`frame`: versioned, COBS between
//! zero bytes, CRC-checked). The configuration names the device (`Channel`):
//!
//! - `Serial(ttyS1)`: x86 QEMU's second ISA serial port (`-device isa-serial,index=1`), which
//!   the 8250 driver built into distribution kernels drives with no module. urunit puts the
//!   tty in raw mode (no echo, no line discipline, 8-bit clean) before the first byte.
//! - `VirtioPort(urunc.urunit)`: a virtio-serial port by name (aarch64 `virt`, whose only
//!   UART is the console); needs `virtio_console` (built in, or a module in the initrd).
//!
//! Messages: urunit sends HELLO and READY once the port is open (before the program starts;
//! until READY the host stops the monitor itself), receives TERM (graceful stop: SIGTERM to
//! the program, SIGKILL to everything after the grace period, power off) and SIG n (deliver
//! n) and exec sessions (`exec.rs`), and sends EXIT code (the program's status; 127/126 if it could not start, 1 if the
//! guest setup failed) with blocking writes before it powers off.

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use urunit_proto::exec::ExecMsg;
use urunit_proto::frame::{Decoder, Message, MAX_ENCODED, VERSION};
use urunit_proto::Channel as Device;

pub enum Command {
    Term,
    Signal(i32),
    /// A message of an exec session (stream id, message).
    Exec(u16, crate::exec::Incoming),
}

pub struct Channel {
    file: std::fs::File,
    decoder: Box<Decoder>,
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

fn find_port(name: &str) -> Option<String> {
    for e in std::fs::read_dir("/sys/class/virtio-ports").ok()?.flatten() {
        let n = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
        if n.trim_end_matches(['\n', '\0']) == name {
            return Some(format!("/dev/{}", e.file_name().to_string_lossy()));
        }
    }
    None
}

/// The device node of the configured channel, or why there is none.
fn locate(dev: &Device) -> Result<String, String> {
    match dev {
        Device::Serial(tty) => {
            if tty.is_empty() || tty.contains('/') || tty.starts_with('.') {
                return Err(format!("bad serial channel name {tty:?}"));
            }
            // the 8250 driver lists the legacy ports it probed; type 0 is "no UART there"
            let ty = std::fs::read_to_string(format!("/sys/class/tty/{tty}/type"));
            match ty.as_deref().map(str::trim) {
                Ok("0") => Err(format!(
                    "{tty} has no UART (the host gave no serial channel)"
                )),
                _ => Ok(format!("/dev/{tty}")),
            }
        }
        Device::VirtioPort(name) => {
            if !has_console_device() {
                return Err(
                    "no virtio console device (virtio_console not built in nor in the initrd)"
                        .into(),
                );
            }
            // the port's name arrives asynchronously from the host: wait up to 2 s
            for _ in 0..200 {
                if let Some(p) = find_port(name) {
                    return Ok(p);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(format!("no virtio port named {name}"))
        }
    }
}

/// Raw mode: no echo, no line editing or translation, 8 data bits, no flow control.
fn make_raw(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: termios is plain data; tcgetattr fills it for our open tty fd.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is an open tty; t is a valid termios.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: t is a valid termios obtained above.
    unsafe {
        libc::cfmakeraw(&mut t);
        libc::cfsetispeed(&mut t, libc::B115200);
        libc::cfsetospeed(&mut t, libc::B115200);
    }
    t.c_cflag |= libc::CLOCAL | libc::CREAD;
    t.c_cflag &= !libc::CRTSCTS;
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
    // SAFETY: fd is an open tty; t is a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Channel {
    /// Opens the configured channel and says HELLO and READY; None (with the reason on the
    /// console) when there is none.
    pub fn open(dev: Option<&Device>, debug: bool) -> Option<Channel> {
        let Some(dev) = dev else {
            if debug {
                eprintln!("urunit: no host channel configured");
            }
            return None;
        };
        let path = match locate(dev) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("urunit: host channel: {e}; the host will not learn the exit status");
                return None;
            }
        };
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&path);
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                eprintln!("urunit: open {path}: {e}");
                return None;
            }
        };
        if matches!(dev, Device::Serial(_)) {
            if let Err(e) = make_raw(file.as_raw_fd()) {
                eprintln!("urunit: raw mode on {path}: {e}");
                return None;
            }
        }
        if debug {
            eprintln!("urunit: host channel on {path}");
        }
        let mut c = Channel {
            file,
            decoder: Box::default(),
            open: true,
        };
        c.send(Message::Hello {
            version: VERSION.into(),
        });
        c.send(Message::Ready);
        Some(c)
    }

    fn send(&mut self, m: Message) {
        let mut buf = [0u8; MAX_ENCODED];
        let n = m.encode(&mut buf);
        self.write(&buf[..n]);
    }

    /// Sends a message of exec session `stream` (blocking: the host always reads).
    pub fn send_exec(&mut self, stream: u16, m: ExecMsg<'_>) {
        let mut buf = [0u8; MAX_ENCODED];
        if let Some(n) = m.encode(stream, &mut buf) {
            self.write(&buf[..n]);
        }
    }

    fn write(&mut self, buf: &[u8]) {
        if let Err(e) = self.file.write_all(buf).and_then(|_| self.file.flush()) {
            eprintln!("urunit: host channel write: {e}");
        }
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
        let mut tmp = [0u8; 4096];
        // SAFETY: tmp is writable for its length; the fd is our open port.
        let n = unsafe { libc::read(self.file.as_raw_fd(), tmp.as_mut_ptr().cast(), tmp.len()) };
        if n <= 0 {
            // host side gone (EOF) or error: stop polling it
            self.open = false;
            return Vec::new();
        }
        let mut out = Vec::new();
        self.decoder.feed(&tmp[..n as usize], |f| {
            let f = match f {
                Ok(f) => f,
                Err(e) => return eprintln!("urunit: host channel: {e}"),
            };
            if f.stream != 0 {
                match ExecMsg::from_frame(&f) {
                    Ok(m) => out.extend(
                        crate::exec::Incoming::from_msg(m).map(|m| Command::Exec(f.stream, m)),
                    ),
                    Err(e) => eprintln!("urunit: host channel: {e}"),
                }
                return;
            }
            match Message::from_frame(&f) {
                Ok(Message::Term) => out.push(Command::Term),
                Ok(Message::Signal(s)) => out.push(Command::Signal(s.into())),
                Ok(_) => {}
                Err(e) => eprintln!("urunit: host channel: {e}"),
            }
        });
        out
    }

    pub fn report_exit(&mut self, code: i32) {
        self.send(Message::Exit(code.clamp(0, 255)));
        if matches!(self.file.metadata(), Ok(m) if !m.is_file()) {
            // a tty: wait until the UART sent everything before the power-off
            // SAFETY: fd is our open file.
            unsafe { libc::tcdrain(self.file.as_raw_fd()) };
        }
    }
}
