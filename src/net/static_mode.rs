//! Static mode, for Knative's `user-container` (urunc's section 6.3): the guest lives on a
//! private /24 behind the tap (172.16.1.2, gateway 172.16.1.1 on the tap), the pod's
//! queue-proxy reaches it there, and its own traffic leaves masqueraded through the container
//! interface. No tc redirect: queue-proxy keeps the pod IP.
//!
//! NAT: its own traffic is masqueraded by an nf_tables table of its own (`pod::masquerade_only`,
//! over netlink; Go urunc runs `iptables` here), removed with the container like pod mode's.

use super::nl::Nl;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr};

pub const TAP_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
pub const GUEST_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 2);
pub const PREFIX: u8 = 24;

/// Knative names its user's container `user-container`.
pub fn wanted(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    annotations
        .get("io.kubernetes.cri.container-name")
        .is_some_and(|n| n == "user-container")
}

/// Gives the tap its address, enables forwarding, adds the masquerade table.
pub fn setup(
    nl: &mut Nl,
    tap: (u32, &str),
    out_index: u32,
    owner: (super::tap::Owner, &str),
) -> Result<(), super::nl::NlError> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = PREFIX;
    m.header.index = tap.0;
    m.attributes
        .push(AddressAttribute::Local(IpAddr::V4(TAP_IP)));
    m.attributes
        .push(AddressAttribute::Address(IpAddr::V4(TAP_IP)));
    nl.create(
        RouteNetlinkMessage::NewAddress(m),
        "add the static-mode address to the tap",
    )?;
    if let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1") {
        log::warn!("static network: cannot enable IPv4 forwarding: {e}");
    }
    let subnet = (Ipv4Addr::from(u32::from(TAP_IP) & !0xff), PREFIX);
    // as before (Go urunc's iptables call), the guest stays reachable from the pod without it
    if let Err(e) = super::pod::masquerade_only(tap.1, subnet, out_index, owner) {
        log::warn!("static network: {e}: the guest cannot reach beyond the pod");
    }
    Ok(())
}
