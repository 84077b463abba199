//! This container's tap: its name (derived from the container id), its owner marker (the
//! interface alias names the supervisor by pid and start time, so a tap can be judged stale
//! or live without reading any state file), the TUN/TAP ioctls and the link settings.

use super::nl::{Nl, NlResult};
use crate::sys::tun;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use std::os::fd::OwnedFd;

/// Prefix of the alias of every tap this runtime creates.
pub const ALIAS_PREFIX: &str = "urunc";

/// Who owns a tap: the container process (its host pid and start time) of the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub start: u64,
}

impl Owner {
    pub fn alive(&self) -> bool {
        crate::container::process_start_time(self.pid) == Some(self.start)
    }

    /// The interface alias: `urunc <pid> <start> <id>` (at most 255 bytes, the id is cut).
    pub fn alias(&self, id: &str) -> String {
        let mut s = format!("{ALIAS_PREFIX} {} {} {id}", self.pid, self.start);
        s.truncate(255);
        s
    }

    pub fn from_alias(alias: &str) -> Option<Owner> {
        let mut it = alias.split(' ');
        if it.next()? != ALIAS_PREFIX {
            return None;
        }
        Some(Owner {
            pid: it.next()?.parse().ok()?,
            start: it.next()?.parse().ok()?,
        })
    }

    /// The 16-byte tc action cookie marking this owner's redirect filters.
    pub fn cookie(&self) -> Vec<u8> {
        let mut c = COOKIE_MAGIC.to_vec();
        c.extend_from_slice(&(self.pid as u32).to_le_bytes());
        c.extend_from_slice(&self.start.to_le_bytes());
        c
    }

    pub fn from_cookie(c: &[u8]) -> Option<Owner> {
        if c.len() != 16 || &c[..4] != COOKIE_MAGIC {
            return None;
        }
        Some(Owner {
            pid: u32::from_le_bytes(c[4..8].try_into().ok()?) as i32,
            start: u64::from_le_bytes(c[8..16].try_into().ok()?),
        })
    }
}

const COOKIE_MAGIC: &[u8; 4] = b"urnc";

pub(super) fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The tap name of container `id`: `tap` + 6 characters of a hash of the id + `_urunc`
/// (15 bytes, IFNAMSIZ - 1). The first hashed character is a letter, so the name never
/// matches Go urunc's `^tap\d+_urunc$` and neither runtime mistakes the other's tap for its own.
pub fn name_for(id: &str) -> String {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut h = fnv1a(id);
    let mut s = String::from("tap");
    s.push(ALPHA[(h % 26) as usize] as char);
    h /= 26;
    for _ in 0..5 {
        s.push(ALPHA[(h % 32) as usize] as char);
        h /= 32;
    }
    s.push_str("_urunc");
    s
}

/// The tc priority of this container's redirect filter on the container interface.
pub fn prio_for(id: &str) -> u16 {
    0x4000 | (fnv1a(id) >> 50) as u16 & 0x3fff
}

/// How the monitor takes the tap (from its `monitor::TapSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapOptions {
    /// Frames carry a virtio-net header (QEMU, Cloud Hypervisor, Firecracker; not Solo5, whose
    /// tender attaches with `IFF_TAP|IFF_NO_PI`, solo5 `tenders/common/tap_attach.c`).
    pub vnet_hdr: bool,
    /// The monitor opens the tap by name (Firecracker, Solo5): the tap is persistent, our fd
    /// is closed, and `uid`/`gid` (TUNSETOWNER/TUNSETGROUP) let the unprivileged monitor's
    /// TUNSETIFF attach to it. It is removed by `delete` (or with its network namespace).
    pub persistent: bool,
    pub uid: u32,
    pub gid: u32,
}

/// Creates the tap `name`. Returns the open queue (`None` when persistent: it is closed so that
/// the monitor can attach by name).
pub fn create(name: &str, o: &TapOptions) -> std::io::Result<Option<OwnedFd>> {
    let fd = tun::attach(name, o.vnet_hdr)?;
    tun::own(&fd, o.uid, o.gid)?;
    if o.persistent {
        tun::persist(&fd)?;
        return Ok(None);
    }
    Ok(Some(fd))
}

/// Sets MTU and alias and brings the link up.
pub fn configure(nl: &mut Nl, index: u32, mtu: u32, alias: &str) -> NlResult<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::Mtu(mtu));
    m.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
    nl.ack(RouteNetlinkMessage::SetLink(m), "configure the tap")?;
    set_up(nl, index)
}

pub fn set_up(nl: &mut Nl, index: u32) -> NlResult<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    nl.ack(RouteNetlinkMessage::SetLink(m), "set the link up")
}

pub fn delete(nl: &mut Nl, index: u32) -> NlResult<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    nl.ack(RouteNetlinkMessage::DelLink(m), "delete the tap")
}

/// The netns's own stack must not talk through the tap (IPv6 router solicitations, MLD):
/// everything on it belongs to the guest.
pub fn disable_ipv6(name: &str) {
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_differ() {
        let a = name_for("abc");
        let b = name_for("abd");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("tap") && a.ends_with("_urunc"));
        assert_ne!(a, b);
        assert_eq!(a, name_for("abc"));
        assert!(a.as_bytes()[3].is_ascii_lowercase());
        let long = "x".repeat(1024);
        assert_eq!(name_for(&long).len(), 15);
    }

    #[test]
    fn alias_and_cookie_round_trip() {
        let o = Owner {
            pid: 4242,
            start: 987654321,
        };
        assert_eq!(Owner::from_alias(&o.alias("my-ctr")), Some(o));
        assert!(o.alias(&"y".repeat(1024)).len() <= 255);
        assert_eq!(Owner::from_alias("something else"), None);
        assert_eq!(Owner::from_cookie(&o.cookie()), Some(o));
        assert_eq!(o.cookie().len(), 16);
        assert_eq!(Owner::from_cookie(b"0123456789abcdef"), None);
    }

    #[test]
    fn prio_is_in_its_range() {
        for id in ["a", "b", "some-long-container-id"] {
            let p = prio_for(id);
            assert!((0x4000..0x8000).contains(&p));
        }
    }
}
