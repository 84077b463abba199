//! Static mode, for Knative's `user-container` (urunc's section 6.3): the guest lives on a
//! private /24 behind the tap (172.16.1.2, gateway 172.16.1.1 on the tap), the pod's
//! queue-proxy reaches it there, and its own traffic leaves masqueraded through the container
//! interface. No tc redirect: queue-proxy keeps the pod IP.
//!
//! NAT: there is no netlink-only way to add a masquerade rule without speaking nf_tables'
//! netlink protocol by hand, so, as Go urunc does, this mode runs `iptables` from `$PATH`
//! (only here; without it the guest is still reachable from the pod, but cannot reach out).

use super::nl::{Nl, NlResult};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr};

pub const TAP_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
pub const GUEST_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 2);
pub const PREFIX: u8 = 24;
const SUBNET: &str = "172.16.1.0/24";

/// Knative names its user's container `user-container`.
pub fn wanted(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    annotations
        .get("io.kubernetes.cri.container-name")
        .is_some_and(|n| n == "user-container")
}

/// Gives the tap its address, enables forwarding, adds the masquerade rule.
pub fn setup(nl: &mut Nl, tap_index: u32, out_iface: &str) -> NlResult<()> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = PREFIX;
    m.header.index = tap_index;
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
    iptables("-A", out_iface);
    Ok(())
}

/// Removes the masquerade rule (the tap's address goes with the tap).
pub fn teardown(out_iface: &str) {
    iptables("-D", out_iface);
}

fn iptables(op: &str, out_iface: &str) {
    let r = std::process::Command::new("iptables")
        .args([
            "-t",
            "nat",
            op,
            "POSTROUTING",
            "-s",
            SUBNET,
            "-o",
            out_iface,
        ])
        .args(["-j", "MASQUERADE", "--wait", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    match r {
        Ok(o) if o.status.success() => {}
        Ok(o) => log::warn!(
            "static network: iptables {op} masquerade failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => log::warn!(
            "static network: cannot run iptables ({e}); the guest cannot reach beyond the pod"
        ),
    }
}
