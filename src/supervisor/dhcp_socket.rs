//! The supervisor's DHCP server for one guest (`LaunchPlan::dhcp`): an AF_PACKET socket bound
//! to the container's tap, which sees the DHCP requests the guest sends and transmits the
//! answers `guest::dhcp::reply` builds back on the tap, that is, to the guest.
//!
//! Why a packet socket works although tc redirects everything the guest sends to eth0: the
//! kernel's receive path (net/core/dev.c `__netif_receive_skb_core`) hands each frame to the
//! `ptype_all` taps (packet sockets of protocol ETH_P_ALL, global and per device) before
//! `sch_handle_ingress` runs the tap's ingress filters; sockets of a single protocol
//! (`ptype_base`, ETH_P_IP) are served after it and never see a redirected frame. So the
//! socket listens with ETH_P_ALL, and a classic BPF filter keeps only IPv4 UDP to port 67.
//! The redirect still sends the request on to the pod network too (a DHCP server there, if any,
//! may answer as well; the guest takes the first offer, ours arrives at once).
//!
//! The socket is made while the supervisor is still root in the container's network
//! namespace (`packet_create` checks CAP_NET_RAW there, at creation only: net/packet/af_packet.c)
//! and is kept through the supervisor's confinement: sending and receiving on an open socket
//! needs no capability, Landlock confines paths and TCP ports, not packet sockets, and the
//! seccomp deny-list (`sandbox/seccomp.rs`) denies none of recvfrom, sendto or epoll.
//! Frames the tap transmits towards the guest (the redirect from eth0, our own answers) are
//! PACKET_OUTGOING there and are ignored, so nothing from outside the guest is answered.

use crate::guest::dhcp::{self, Lease};
use crate::plan::NetParams;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Frames longer than this are dropped (`MSG_TRUNC`): a DHCP request is a few hundred bytes
/// (RFC 2131 4.1: clients must accept 576-byte messages; nothing near 2 KiB).
const FRAME_MAX: usize = 2048;
/// Frames read per readable event at most; epoll is level-triggered, the rest come next round.
const BURST: usize = 16;

/// The packet socket on the tap and the lease it hands out.
pub struct DhcpSocket {
    fd: OwnedFd,
    lease: Lease,
    buf: Box<[u8; FRAME_MAX]>,
    /// Answers sent (for the log).
    pub answered: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DhcpSocketError {
    #[error("dhcp: the container's MAC {0:?} is not a MAC address")]
    Mac(String),
    #[error("dhcp: no interface {0:?} in the container's network namespace")]
    NoTap(String),
    #[error("dhcp: {what} on {tap}: {err} (urunc must be root in the container's network namespace to answer the guest's DHCP)")]
    Sys {
        what: &'static str,
        tap: String,
        err: io::Error,
    },
}

impl DhcpSocket {
    /// Opens the socket on `net.tap` and prepares the lease of `net`.
    pub fn open(net: &NetParams) -> Result<DhcpSocket, DhcpSocketError> {
        let tap = net.tap.as_str();
        let sys = |what| {
            move |err| DhcpSocketError::Sys {
                what,
                tap: tap.to_string(),
                err,
            }
        };
        let name = CString::new(tap).map_err(|_| DhcpSocketError::NoTap(tap.into()))?;
        // SAFETY: `name` is a NUL-terminated string that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(DhcpSocketError::NoTap(tap.into()));
        }
        // protocol 0: the socket receives nothing until `bind` names ETH_P_ALL, after the
        // filter is attached, so no unfiltered frame from another interface queues up
        // SAFETY: plain socket(2); the fd is owned at once below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(sys("socket(AF_PACKET)")(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        attach_filter(&fd).map_err(sys("attach the DHCP filter"))?;
        bind(&fd, ifindex).map_err(sys("bind to the tap"))?;
        let server_mac = hw_addr(&fd, &name).map_err(sys("read the tap's MAC"))?;
        let lease = Lease::from_net(net, server_mac)
            .ok_or_else(|| DhcpSocketError::Mac(net.mac.clone()))?;
        log::debug!(
            "dhcp: answering {} on {tap} with {}/{}",
            net.mac,
            lease.ip,
            lease.prefix
        );
        Ok(DhcpSocket {
            fd,
            lease,
            buf: Box::new([0; FRAME_MAX]),
            answered: 0,
        })
    }

    /// Reads the waiting frames (up to `BURST`) and answers the guest's DHCP requests.
    pub fn on_readable(&mut self) {
        for _ in 0..BURST {
            let Some(len) = self.recv_from_guest() else {
                return;
            };
            let Some(answer) = dhcp::reply(&self.buf[..len], &self.lease) else {
                continue;
            };
            // SAFETY: `answer` is a valid buffer of its length; the socket is bound to the
            // tap, so a send without an address goes out there.
            let n = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    answer.as_ptr().cast(),
                    answer.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                log::warn!(
                    "dhcp: cannot answer the guest: {}",
                    io::Error::last_os_error()
                );
            } else {
                self.answered = self.answered.saturating_add(1);
            }
        }
    }

    /// The length of the next frame the guest sent; None when none is waiting. Frames the tap
    /// transmits and oversized frames are skipped.
    fn recv_from_guest(&mut self) -> Option<usize> {
        loop {
            // SAFETY: all-zero is a valid sockaddr_ll.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: the buffer and address are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    FRAME_MAX,
                    libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut from_len,
                )
            };
            let n = usize::try_from(n).ok()?;
            if n <= FRAME_MAX && from.sll_pkttype != libc::PACKET_OUTGOING {
                return Some(n);
            }
        }
    }
}

impl AsFd for DhcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A classic BPF program keeping IPv4 UDP frames to port 67 that are not fragments (offsets
/// from the Ethernet header: type at 12, IP protocol at 23, flags/fragment offset at 20, the
/// UDP destination port at 14 + IHL + 2). Opcodes: linux/bpf_common.h and linux/filter.h.
fn attach_filter(fd: &OwnedFd) -> io::Result<()> {
    const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
    const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const LD_H_IND: u16 = 0x48; // BPF_LD | BPF_H | BPF_IND
    const LDX_B_MSH: u16 = 0xb1; // BPF_LDX | BPF_B | BPF_MSH: X = 4 * (P[k] & 0xf)
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let prog = [
        op(LD_H_ABS, 0, 0, 12),
        op(JEQ_K, 0, 8, 0x0800), // IPv4, else drop
        op(LD_B_ABS, 0, 0, 23),
        op(JEQ_K, 0, 6, 17), // UDP, else drop
        op(LD_H_ABS, 0, 0, 20),
        op(JSET_K, 4, 0, 0x1fff), // a fragment: drop
        op(LDX_B_MSH, 0, 0, 14),
        op(LD_H_IND, 0, 0, 16),
        op(JEQ_K, 0, 1, 67), // to the DHCP server port, else drop
        op(RET_K, 0, 0, FRAME_MAX as u32 + 1),
        op(RET_K, 0, 0, 0),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `prog`, both live across the call; the kernel copies them.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn bind(fd: &OwnedFd, ifindex: u32) -> io::Result<()> {
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex =
        i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `sll` is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The tap's own MAC (SIOCGIFHWADDR), the source of the answers.
fn hw_addr(fd: &OwnedFd, name: &CString) -> io::Result<[u8; 6]> {
    // SAFETY: all-zero is a valid ifreq.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads the name and writes ifru_hwaddr inside `req`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut req) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl filled the hwaddr member of the union.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}
