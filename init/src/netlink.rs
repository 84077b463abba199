//! A minimal synchronous rtnetlink client: link up/MTU, add address, add default route.

use std::io::{Error, Result};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const F_REQUEST: u16 = 1;
const F_ACK: u16 = 4;
const F_REPLACE: u16 = 0x100;
const F_CREATE: u16 = 0x400;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const IFA_F_PERMANENT: u8 = 0x80;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;
const RTNH_F_ONLINK: u32 = 4;

fn family(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn octets(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// One request: header, fixed payload, attributes.
struct Msg(Vec<u8>);

impl Msg {
    fn new(kind: u16, flags: u16, payload: &[u8]) -> Msg {
        let mut v = vec![0u8; 16];
        v[4..6].copy_from_slice(&kind.to_ne_bytes());
        v[6..8].copy_from_slice(&(flags | F_REQUEST | F_ACK).to_ne_bytes());
        v[8..12].copy_from_slice(&1u32.to_ne_bytes());
        v.extend_from_slice(payload);
        Msg(v)
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Msg {
        self.0
            .extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }

    fn bytes(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

/// RTM_NEWLINK: set IFF_UP (and the MTU).
pub fn link_up_msg(index: u32, mtu: Option<u32>) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    p[8..12].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
    p[12..16].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
    let mut m = Msg::new(RTM_NEWLINK, 0, &p);
    if let Some(mtu) = mtu {
        m = m.attr(IFLA_MTU, &mtu.to_ne_bytes());
    }
    m.bytes()
}

/// RTM_NEWADDR for `addr/prefix` on `index` (IPv6 without duplicate address detection).
pub fn addr_msg(index: u32, addr: &IpAddr, prefix: u8) -> Vec<u8> {
    let mut p = vec![0u8; 8];
    p[0] = family(addr);
    p[1] = prefix;
    if addr.is_ipv6() {
        p[2] = IFA_F_NODAD | IFA_F_PERMANENT;
    }
    p[4..8].copy_from_slice(&index.to_ne_bytes());
    let o = octets(addr);
    Msg::new(RTM_NEWADDR, F_CREATE | F_REPLACE, &p)
        .attr(IFA_LOCAL, &o)
        .attr(IFA_ADDRESS, &o)
        .bytes()
}

/// RTM_NEWROUTE: default route via `gw` out of `index`, on-link (the gateway may lie
/// outside the interface's subnet, urunc's URUNIT_DEFROUTE case).
pub fn default_route_msg(index: u32, gw: &IpAddr) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    p[0] = family(gw);
    p[4] = RT_TABLE_MAIN;
    p[5] = RTPROT_BOOT;
    p[6] = 0; // RT_SCOPE_UNIVERSE
    p[7] = RTN_UNICAST;
    p[8..12].copy_from_slice(&RTNH_F_ONLINK.to_ne_bytes());
    Msg::new(RTM_NEWROUTE, F_CREATE | F_REPLACE, &p)
        .attr(RTA_GATEWAY, &octets(gw))
        .attr(RTA_OIF, &index.to_ne_bytes())
        .bytes()
}

pub struct Socket(OwnedFd);

impl Socket {
    pub fn open() -> Result<Socket> {
        // SAFETY: plain system call; the fd is owned from here on.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(Error::last_os_error());
        }
        // SAFETY: fd was just created and is not owned elsewhere.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends one request and waits for its acknowledgement.
    pub fn request(&self, msg: &[u8]) -> Result<()> {
        let fd = self.0.as_raw_fd();
        // SAFETY: msg is a valid buffer of msg.len() bytes; the kernel is the peer.
        if unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) } < 0 {
            return Err(Error::last_os_error());
        }
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(Error::last_os_error());
            }
            let mut off = 0usize;
            while off + 16 <= n as usize {
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4]));
                let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                if kind == NLMSG_ERROR && off + 20 <= n as usize {
                    let code =
                        i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap_or([0; 4]));
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(Error::from_raw_os_error(-code))
                    };
                }
                if len < 16 {
                    break;
                }
                off += (len as usize + 3) & !3;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_well_formed() {
        let m = link_up_msg(2, Some(1400));
        assert_eq!(m.len(), 16 + 16 + 8);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()),
            m.len() as u32
        );
        assert_eq!(&m[36..40], &1400u32.to_ne_bytes());
        let a = addr_msg(2, &"10.0.0.2".parse().unwrap(), 24);
        assert_eq!(a.len(), 16 + 8 + 8 + 8);
        assert_eq!((a[16], a[17]), (libc::AF_INET as u8, 24));
        let a6 = addr_msg(2, &"fd00::2".parse().unwrap(), 64);
        assert_eq!(a6.len(), 16 + 8 + 20 + 20);
        let r = default_route_msg(2, &"10.0.0.1".parse().unwrap());
        assert_eq!(r.len(), 16 + 12 + 8 + 8);
        assert_eq!(&r[32..36], &[10, 0, 0, 1]);
    }
}
