//! The container's address for a guest that asks DHCP for it (Nanos on QEMU: it reads no
//! command line there, see `nanos.rs`, and a pod network has no DHCP server): one DHCP answer
//! built from the container's network, for the guest's MAC only. Pure functions over Ethernet
//! frames, so the side that owns the tap (an AF_PACKET socket on it sees the guest's frames
//! before tc's ingress redirect) only moves bytes.
//!
//! Formats: RFC 2131 (BOOTP fields, OFFER for DISCOVER, ACK for REQUEST), RFC 2132 (options 1
//! subnet mask, 3 router, 6 DNS, 26 MTU, 51 lease time, 53 message type, 54 server identifier),
//! RFC 791/768 (IPv4 header checksum; a zero UDP checksum means none). The lease is infinite
//! (0xffffffff, RFC 2132 9.2) so the guest never renews with a server that is not there.

use crate::plan::NetParams;
use std::net::Ipv4Addr;

/// What one guest is given.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The guest NIC's MAC: requests from any other client are not answered.
    pub client_mac: [u8; 6],
    /// Source MAC of the answers.
    pub server_mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub mtu: u16,
}

impl Lease {
    /// The lease of the container network `n` (None when its MAC does not parse).
    pub fn from_net(n: &NetParams, server_mac: [u8; 6]) -> Option<Lease> {
        Some(Lease {
            client_mac: parse_mac(&n.mac)?,
            server_mac,
            ip: n.ip,
            prefix: n.prefix,
            gateway: n.gateway,
            dns: n
                .dns
                .iter()
                .filter_map(|d| match d {
                    std::net::IpAddr::V4(v4) => Some(*v4),
                    _ => None,
                })
                .take(3)
                .collect(),
            mtu: u16::try_from(n.mtu).unwrap_or(1500),
        })
    }

    /// The server identifier (option 54): the gateway, else the guest's network address + 1.
    fn server_ip(&self) -> Ipv4Addr {
        self.gateway.unwrap_or_else(|| {
            let m = u32::from(super::mask(self.prefix));
            Ipv4Addr::from((u32::from(self.ip) & m).wrapping_add(1))
        })
    }
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

const ETH: usize = 14;
const BOOTP_FIXED: usize = 236;
const COOKIE: [u8; 4] = [99, 130, 83, 99];
const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const ACK: u8 = 5;

/// The answer to `frame` (an Ethernet frame from the tap): an OFFER for a DISCOVER, an ACK for
/// a REQUEST, from the lease's client; None for anything else.
pub fn reply(frame: &[u8], lease: &Lease) -> Option<Vec<u8>> {
    let (bootp, msg_type) = parse_request(frame)?;
    if bootp[28..34] != lease.client_mac {
        return None;
    }
    let answer = match msg_type {
        DISCOVER => OFFER,
        REQUEST => ACK,
        _ => return None,
    };
    Some(build(bootp, answer, lease))
}

/// The BOOTP payload and message type of a DHCP client request in an Ethernet frame.
fn parse_request(frame: &[u8]) -> Option<(&[u8], u8)> {
    if frame.len() < ETH + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETH..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != 17 || ip.len() < ihl + 8 {
        return None;
    }
    let udp = &ip[ihl..];
    if udp[0..2] != 68u16.to_be_bytes() || udp[2..4] != 67u16.to_be_bytes() {
        return None;
    }
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    let bootp = udp.get(8..udp_len.min(udp.len()))?;
    // op BOOTREQUEST, htype Ethernet, hlen 6, the magic cookie
    if bootp.len() < BOOTP_FIXED + 4
        || bootp[0] != 1
        || bootp[1] != 1
        || bootp[2] != 6
        || bootp[BOOTP_FIXED..BOOTP_FIXED + 4] != COOKIE
    {
        return None;
    }
    let mut opts = &bootp[BOOTP_FIXED + 4..];
    while let [code, rest @ ..] = opts {
        match code {
            0 => opts = rest,
            255 => break,
            _ => {
                let (&len, rest) = rest.split_first()?;
                let value = rest.get(..usize::from(len))?;
                if *code == 53 && len == 1 {
                    return Some((bootp, value[0]));
                }
                opts = &rest[usize::from(len)..];
            }
        }
    }
    None
}

fn build(req: &[u8], msg_type: u8, l: &Lease) -> Vec<u8> {
    let server = l.server_ip();
    let mut b = vec![0u8; BOOTP_FIXED];
    b[0] = 2; // BOOTREPLY
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&req[4..8]); // xid
    b[10..12].copy_from_slice(&req[10..12]); // flags
    b[16..20].copy_from_slice(&l.ip.octets()); // yiaddr
    b[24..28].copy_from_slice(&req[24..28]); // giaddr
    b[28..44].copy_from_slice(&req[28..44]); // chaddr
    b.extend_from_slice(&COOKIE);
    let mut opt = |code: u8, v: &[u8]| {
        b.push(code);
        b.push(v.len() as u8);
        b.extend_from_slice(v);
    };
    opt(53, &[msg_type]);
    opt(54, &server.octets());
    opt(51, &u32::MAX.to_be_bytes());
    opt(1, &super::mask(l.prefix).octets());
    if let Some(g) = l.gateway {
        opt(3, &g.octets());
    }
    if !l.dns.is_empty() {
        let v: Vec<u8> = l.dns.iter().flat_map(|d| d.octets()).collect();
        opt(6, &v);
    }
    opt(26, &l.mtu.to_be_bytes());
    b.push(255);
    // BOOTP's minimum message (RFC 1542 2.1: 300 bytes), which some clients expect
    b.resize(b.len().max(300), 0);
    let broadcast = req[10] & 0x80 != 0;
    let (dst_mac, dst_ip) = if broadcast {
        ([0xff; 6], Ipv4Addr::BROADCAST)
    } else {
        (l.client_mac, l.ip)
    };
    frame(&b, l.server_mac, dst_mac, server, dst_ip)
}

/// Ethernet + IPv4 + UDP (67 -> 68) around `payload`.
fn frame(payload: &[u8], src: [u8; 6], dst: [u8; 6], sip: Ipv4Addr, dip: Ipv4Addr) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut f = Vec::with_capacity(ETH + total);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&sip.octets());
    ip[16..20].copy_from_slice(&dip.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&67u16.to_be_bytes());
    f.extend_from_slice(&68u16.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum (RFC 768)
    f.extend_from_slice(payload);
    f
}

/// The Internet checksum (RFC 1071) of an even-length header.
fn checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[cfg(test)]
#[path = "dhcp_tests.rs"]
mod tests;
