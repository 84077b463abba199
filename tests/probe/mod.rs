//! Host-side probes shared by the networking tests: shell commands and ICMP echo.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn sh(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn sh_ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// ICMP echo from the host through a raw socket; the round-trip times of the answered ones.
pub fn ping_rtts(dst: Ipv4Addr, count: u16) -> Vec<Duration> {
    // SAFETY: (test) plain socket calls on a socket this function owns and closes.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        assert!(s >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        libc::setsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as u16;
        addr.sin_addr.s_addr = u32::from_ne_bytes(dst.octets());
        let id = (std::process::id() & 0xffff) as u16;
        let mut got = Vec::new();
        for seq in 0..count {
            let sent = Instant::now();
            let mut pkt = vec![8u8, 0, 0, 0];
            pkt.extend_from_slice(&id.to_be_bytes());
            pkt.extend_from_slice(&seq.to_be_bytes());
            pkt.extend_from_slice(b"urunc-net-test-payload");
            let mut sum: u32 = pkt
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
                .sum();
            while sum >> 16 != 0 {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            pkt[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            libc::sendto(
                s,
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            );
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                let mut buf = [0u8; 1500];
                let n = libc::recv(s, buf.as_mut_ptr().cast(), buf.len(), 0);
                if n < 28 {
                    continue;
                }
                let ihl = ((buf[0] & 0x0f) as usize) * 4;
                let icmp = &buf[ihl..n as usize];
                if buf[12..16] == dst.octets()
                    && icmp[0] == 0
                    && icmp[4..6] == id.to_be_bytes()
                    && icmp[6..8] == seq.to_be_bytes()
                {
                    got.push(sent.elapsed());
                    break;
                }
            }
        }
        libc::close(s);
        got
    }
}
