//! test_net's packet handling (solo5 v0.12.1 `tests/test_net/test_net.c`): frames for our MAC
//! or broadcast; an ARP request for our address becomes the reply in place; an ICMP echo
//! request (IPv4 without options, TOS 0) to our address or 255.255.255.255 becomes the echo
//! reply in place, with id and fragment fields cleared and both checksums recomputed.

pub enum Kind {
    Arp,
    Icmp,
}

const BROADCAST: [u8; 6] = [0xff; 6];

fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Turns a request in `f` into its answer; `None`: not for us, leave it.
pub fn answer(f: &mut [u8], mac: [u8; 6], ip: [u8; 4]) -> Option<Kind> {
    if f.len() < 14 || (f[..6] != mac && f[..6] != BROADCAST) {
        return None;
    }
    let kind = match u16::from_be_bytes([f[12], f[13]]) {
        0x0806 => arp(f, mac, ip)?,
        0x0800 => icmp(f, ip)?,
        _ => return None,
    };
    f.copy_within(6..12, 0);
    f[6..12].copy_from_slice(&mac);
    Some(kind)
}

fn arp(f: &mut [u8], mac: [u8; 6], ip: [u8; 4]) -> Option<Kind> {
    let a = f.get_mut(14..42)?;
    if a[..8] != [0, 1, 0x08, 0, 6, 4, 0, 1] || a[24..28] != ip {
        return None;
    }
    a[7] = 2; // reply
    a.copy_within(8..18, 18); // sender -> target
    a[8..14].copy_from_slice(&mac);
    a[14..18].copy_from_slice(&ip);
    Some(Kind::Arp)
}

fn icmp(f: &mut [u8], ip: [u8; 4]) -> Option<Kind> {
    let p = f.get_mut(14..)?;
    if p.len() < 28 || p[0] != 0x45 || p[1] != 0 || p[9] != 1 {
        return None;
    }
    if p[16..20] != ip && p[16..20] != [255; 4] {
        return None;
    }
    let total = u16::from_be_bytes([p[2], p[3]]) as usize;
    if total < 28 || total > p.len() || p[20] != 8 || p[21] != 0 {
        return None;
    }
    p[4..8].fill(0); // id, flags and fragment offset
    p.copy_within(12..16, 16);
    p[12..16].copy_from_slice(&ip);
    p[10..12].fill(0);
    let c = csum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 0; // echo reply
    p[22..24].fill(0);
    let c = csum(&p[20..total]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    Some(Kind::Icmp)
}

/// The gratuitous ARP test_net sends when it starts.
pub fn garp(mac: [u8; 6], ip: [u8; 4]) -> Vec<u8> {
    let mut f = BROADCAST.to_vec();
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&ip);
    f
}
