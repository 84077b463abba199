//! Pod mode: the pod's network namespace keeps its interface, its address and its own stack
//! (sidecars keep their ports); the guest sits on a private /30 behind its tap, and the
//! kernel forwards the guest's ports of the pod IP to it.
//!
//! Addresses: slot `k` (0..64) of 198.18.0.0/24 (RFC 2544's benchmarking range, which pod
//! networks do not use): the tap is 198.18.0.(4k+1), the guest 198.18.0.(4k+2), its gateway
//! the tap. Each guest in the namespace takes the lowest free slot.
//!
//! nf_tables, one `ip` table per guest, named like its tap, whose user data names its owner
//! (the container process, by pid and start time) and its ports:
//! - `pre` (nat, prerouting, dstnat): traffic to the pod IP from anywhere but this guest,
//!   on a listed port, is DNATed to the guest; with no list, every TCP/UDP port that no local
//!   socket is bound to (`socket transparent` finds listeners of sidecars: those packets are
//!   accepted untouched);
//! - `out` (nat, output, dstnat): connections made inside the namespace to a local address
//!   (`localhost:PORT`, the pod IP: what containerd's port-forward and sidecars do) on a
//!   listed port go to the guest; `route_localnet` on the tap lets 127.0.0.1 leave;
//! - `post` (nat, postrouting, srcnat): those are masqueraded to the tap's address so the
//!   guest's replies come back, and the guest's own traffic leaving the namespace is
//!   masqueraded to the pod IP.
//!
//! Teardown deletes the table (its chains and rules go with it) and the tap (its address and
//! sysctls go with it).

use super::discover::{self, Iface};
use super::mode::Ports;
use super::nft::{Batch, Nft, NftError, FAMILY_IP};
use super::nl::{Nl, NlError};
use super::pod_rules::batch;
pub use super::pod_rules::masquerade_only;
use super::tap::Owner;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr};

pub const PREFIX: u8 = 30;
const SLOTS: u8 = 64;

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error(transparent)]
    Netlink(#[from] NlError),
    #[error("pod network: {0}")]
    Nft(#[from] NftError),
    #[error("pod network: {port} already forwarded to the guest of container {id} in this pod: give each guest its own ports (annotation com.urunc.network.ports)")]
    PortTaken { port: String, id: String },
    #[error("pod network: all {SLOTS} guest subnets of 198.18.0.0/24 are in use in this network namespace")]
    NoSlot,
    #[error(transparent)]
    Fault(#[from] crate::fault::FaultError),
    #[error(
        "pod network: cannot set {path}: {source} (the pod's network namespace must allow it)"
    )]
    Sysctl {
        path: String,
        source: std::io::Error,
    },
}

/// The guest's link: its address, and the tap's (the guest's gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(pub u8);

impl Slot {
    pub fn tap_ip(self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, self.0 * 4 + 1)
    }
    pub fn guest_ip(self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, self.0 * 4 + 2)
    }
    fn of(ip: Ipv4Addr) -> Option<Slot> {
        let o = ip.octets();
        (o[..3] == [198, 18, 0] && o[3] % 4 == 1 && o[3] / 4 < SLOTS).then_some(Slot(o[3] / 4))
    }
}

/// A locally administered, unicast MAC for the guest, stable for the container id.
pub fn guest_mac(id: &str) -> String {
    let h = super::tap::fnv1a(id).to_le_bytes();
    discover::mac_string(&[0x02, 0x75, 0x72, h[0], h[1], h[2]])
}

/// What the table's user data says: `urunc <pid> <start> <ports> <id>`.
pub(super) fn userdata(me: Owner, ports: &Ports, id: &str) -> Vec<u8> {
    let mut s = format!("urunc {} {} {} {id}", me.pid, me.start, ports.encode());
    let mut cut = s.len().min(super::nft::USERDATA_MAX - 1);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.into_bytes()
}

/// A guest's table as found in the namespace.
struct Claim {
    table: String,
    handle: u64,
    owner: Owner,
    ports: Ports,
    id: String,
}

fn claims(nft: &mut Nft) -> Result<Vec<Claim>, NftError> {
    let mut out = Vec::new();
    for t in nft.tables(FAMILY_IP)? {
        let text = String::from_utf8_lossy(&t.userdata).into_owned();
        let f: Vec<&str> = text.splitn(5, ' ').collect();
        if f.len() < 4 || f[0] != "urunc" {
            continue;
        }
        let (Ok(pid), Ok(start), Some(ports)) = (f[1].parse(), f[2].parse(), Ports::decode(f[3]))
        else {
            continue;
        };
        out.push(Claim {
            table: t.name,
            handle: t.handle,
            owner: Owner { pid, start },
            ports,
            id: f.get(4).unwrap_or(&"").to_string(),
        });
    }
    Ok(out)
}

/// Deletes the tables whose owner is gone.
pub(super) fn remove_stale(nft: &mut Nft) -> Result<(), NftError> {
    for c in claims(nft)?.into_iter().filter(|c| !c.owner.alive()) {
        log::info!(
            "removing the stale pod-network table {} of a container that is gone",
            c.table
        );
        delete_table(nft, &c.table)?;
    }
    Ok(())
}

fn delete_table(nft: &mut Nft, name: &str) -> Result<(), NftError> {
    let mut b = Batch::new(FAMILY_IP);
    b.del_table(name);
    match nft.commit(&b, "delete a pod-network table") {
        Err(e) if e.errno() != Some(libc::ENOENT) => Err(e),
        _ => Ok(()),
    }
}

/// Removes `me`'s table, if it has one. Best effort: a namespace without nf_tables, or
/// without tables, has nothing of ours (logged at debug level); a failing delete is a warning.
pub fn teardown(me: Owner) {
    let found = Nft::open().and_then(|mut n| Ok((claims(&mut n)?, n)));
    let (claims, mut nft) = match found {
        Ok(x) => x,
        Err(e) => {
            log::debug!("network cleanup: no pod-network tables: {e}");
            return;
        }
    };
    for c in claims.into_iter().filter(|c| c.owner == me) {
        if let Err(e) = delete_table(&mut nft, &c.table) {
            log::warn!("network cleanup: pod-network table {}: {e}", c.table);
        }
    }
}

/// The first live claim other than `me` (and older than `before`, a table handle) sharing a
/// port with `ports`.
fn conflict(
    nft: &mut Nft,
    me: Owner,
    ports: &Ports,
    before: u64,
) -> Result<Option<PodError>, NftError> {
    for c in claims(nft)? {
        if c.owner == me || !c.owner.alive() || c.handle >= before {
            continue;
        }
        if let Some(port) = ports.overlap(&c.ports) {
            return Ok(Some(PodError::PortTaken { port, id: c.id }));
        }
    }
    Ok(None)
}

/// Sets up the guest's link on `tap` and the forwarding of its ports. On error, what was made
/// here goes with the tap and `teardown`.
pub fn wire(
    nl: &mut Nl,
    me: Owner,
    id: &str,
    iface: &Iface,
    tap: (u32, &str),
    ports: &Ports,
) -> Result<Slot, PodError> {
    let mut nft = Nft::open()?;
    remove_stale(&mut nft)?;
    if let Some(e) = conflict(&mut nft, me, ports, u64::MAX)? {
        return Err(e);
    }
    let slot = take_slot(nl, tap.0)?;
    sysctl("/proc/sys/net/ipv4/ip_forward")?;
    sysctl(&format!("/proc/sys/net/ipv4/conf/{}/route_localnet", tap.1))?;
    let lo = discover::links(nl)?
        .into_iter()
        .find(|l| l.loopback)
        .map_or(1, |l| l.index);
    let b = batch(tap, iface, lo, slot, ports, userdata(me, ports, id));
    crate::fault::point("net:nft")?;
    nft.commit(&b, "add the pod-network table")?;
    // Two guests set up at once: each sees the other's table now; the younger one yields.
    let mine = claims(&mut nft)?
        .into_iter()
        .find(|c| c.owner == me)
        .map_or(u64::MAX, |c| c.handle);
    if let Some(e) = conflict(&mut nft, me, ports, mine)? {
        return Err(e);
    }
    Ok(slot)
}

fn sysctl(path: &str) -> Result<(), PodError> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1").map_err(|source| PodError::Sysctl {
        path: path.into(),
        source,
    })
}

/// Gives the tap the lowest free slot's address. Two guests racing for one slot both see the
/// other's address afterwards; the tap with the higher index moves on.
fn take_slot(nl: &mut Nl, tap: u32) -> Result<Slot, PodError> {
    let mut skip = Vec::new();
    loop {
        let used: Vec<(u32, Slot)> = discover::all_addresses(nl)?
            .into_iter()
            .filter_map(|(i, ip, ..)| match ip {
                IpAddr::V4(v4) => Slot::of(v4).map(|s| (i, s)),
                IpAddr::V6(_) => None,
            })
            .collect();
        let slot = (0..SLOTS)
            .map(Slot)
            .find(|s| !skip.contains(s) && !used.iter().any(|(_, u)| u == s))
            .ok_or(PodError::NoSlot)?;
        address(nl, tap, slot.tap_ip(), true)?;
        let rival = discover::all_addresses(nl)?
            .into_iter()
            .any(|(i, ip, ..)| i != tap && i < tap && ip == IpAddr::V4(slot.tap_ip()));
        if !rival {
            return Ok(slot);
        }
        address(nl, tap, slot.tap_ip(), false)?;
        skip.push(slot);
    }
}

fn address(nl: &mut Nl, index: u32, ip: Ipv4Addr, add: bool) -> Result<(), NlError> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = PREFIX;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
    m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
    if add {
        nl.create(
            RouteNetlinkMessage::NewAddress(m),
            "add the guest link's address to the tap",
        )
    } else {
        nl.ack(
            RouteNetlinkMessage::DelAddress(m),
            "remove an address from the tap",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_distinct_slash_30s() {
        assert_eq!(Slot(0).tap_ip(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(Slot(0).guest_ip(), Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(Slot(63).guest_ip(), Ipv4Addr::new(198, 18, 0, 254));
        assert_eq!(Slot::of(Slot(5).tap_ip()), Some(Slot(5)));
        assert_eq!(
            Slot::of(Slot(5).guest_ip()),
            None,
            "only tap addresses count"
        );
        assert_eq!(Slot::of(Ipv4Addr::new(10, 0, 0, 1)), None);
    }

    #[test]
    fn guest_macs_are_local_unicast() {
        let m = guest_mac("a");
        assert!(m.starts_with("02:"), "{m}");
        assert_ne!(m, guest_mac("b"));
    }

    #[test]
    fn userdata_fits_and_names_the_owner() {
        let me = Owner { pid: 7, start: 9 };
        let u = userdata(me, &Ports::Unbound, &"é".repeat(300));
        assert!(u.len() < super::super::nft::USERDATA_MAX);
        assert!(
            String::from_utf8(u.clone()).is_ok(),
            "cut on a char boundary"
        );
        assert!(u.starts_with(b"urunc 7 9 * "));
    }
}
