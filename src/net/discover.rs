//! Finds the container's interface: the one the IPv4 default route leaves through, with its
//! address, prefix, gateway, MAC, MTU, and its global IPv6 addresses and IPv6 gateway.

use super::nl::{Nl, NlResult};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A network interface of the container's namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Vec<u8>,
    pub mtu: u32,
    pub alias: Option<String>,
    pub up: bool,
    pub loopback: bool,
}

/// What the guest takes over.
#[derive(Debug, Clone, PartialEq)]
pub struct Iface {
    pub link: Link,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub ipv6: Vec<(Ipv6Addr, u8)>,
    pub ipv6_gateway: Option<Ipv6Addr>,
}

/// Why there is no interface to take over (not an error: the guest boots without a network).
#[derive(Debug, Clone, PartialEq)]
pub enum NoNet {
    NoDefaultRoute,
    NoIpv4Address(String),
}

impl std::fmt::Display for NoNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoNet::NoDefaultRoute => write!(
                f,
                "no interface with a default route in the container's network namespace"
            ),
            NoNet::NoIpv4Address(n) => write!(f, "interface {n} has no IPv4 address"),
        }
    }
}

pub fn mac_string(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn links(nl: &mut Nl) -> NlResult<Vec<Link>> {
    let msgs = nl.dump(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        "list network interfaces",
    )?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(link_of(l)),
            _ => None,
        })
        .collect())
}

fn link_of(l: LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        mac: Vec::new(),
        mtu: 0,
        alias: None,
        up: l.header.flags.contains(LinkFlags::Up),
        loopback: l.header.link_layer_type == LinkLayerType::Loopback
            || l.header.flags.contains(LinkFlags::Loopback),
    };
    for a in l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Address(m) => link.mac = m,
            LinkAttribute::Mtu(m) => link.mtu = m,
            LinkAttribute::IfAlias(a) => link.alias = Some(a),
            _ => {}
        }
    }
    link
}

/// The default route of a family in the main table: (output interface, gateway).
fn default_route(nl: &mut Nl, family: AddressFamily) -> NlResult<Option<(u32, Option<IpAddr>)>> {
    let mut req = RouteMessage::default();
    req.header.address_family = family;
    let msgs = nl.dump(RouteNetlinkMessage::GetRoute(req), "list routes")?;
    let mut best: Option<(u32, u32, Option<IpAddr>)> = None;
    for m in msgs {
        let RouteNetlinkMessage::NewRoute(r) = m else {
            continue;
        };
        if r.header.destination_prefix_length != 0 || r.header.kind != RouteType::Unicast {
            continue;
        }
        let mut table = r.header.table as u32;
        let (mut oif, mut gw, mut metric) = (None, None, 0u32);
        for a in &r.attributes {
            match a {
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Gateway(g) => gw = route_ip(g),
                RouteAttribute::Priority(p) => metric = *p,
                RouteAttribute::MultiPath(hops) if oif.is_none() => {
                    if let Some(h) = hops.first() {
                        oif = Some(h.interface_index);
                        gw = h.attributes.iter().find_map(|a| match a {
                            RouteAttribute::Gateway(g) => route_ip(g),
                            _ => None,
                        });
                    }
                }
                _ => {}
            }
        }
        if table != RouteHeader::RT_TABLE_MAIN as u32 {
            continue;
        }
        if let Some(oif) = oif {
            if best.as_ref().is_none_or(|(_, m, _)| metric < *m) {
                best = Some((oif, metric, gw));
            }
        }
    }
    Ok(best.map(|(oif, _, gw)| (oif, gw)))
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Addresses of interface `index`: (address, prefix, secondary).
fn addresses(nl: &mut Nl, index: u32) -> NlResult<Vec<(IpAddr, u8, bool)>> {
    Ok(all_addresses(nl)?
        .into_iter()
        .filter(|(i, ..)| *i == index)
        .map(|(_, ip, p, s)| (ip, p, s))
        .collect())
}

/// Every address of the namespace: (interface index, address, prefix, secondary).
pub fn all_addresses(nl: &mut Nl) -> NlResult<Vec<(u32, IpAddr, u8, bool)>> {
    let msgs = nl.dump(
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        "list addresses",
    )?;
    let mut out = Vec::new();
    for m in msgs {
        let RouteNetlinkMessage::NewAddress(a) = m else {
            continue;
        };
        let index = a.header.index;
        let secondary = a.header.flags.contains(AddressHeaderFlags::Secondary);
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer's on point-to-point.
        let local = a.attributes.iter().find_map(|x| match x {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let addr = local.or_else(|| {
            a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        });
        if let Some(ip) = addr {
            out.push((index, ip, a.header.prefix_len, secondary));
        }
    }
    Ok(out)
}

fn is_global_v6(ip: &Ipv6Addr) -> bool {
    let s = ip.segments()[0];
    !(ip.is_loopback() || ip.is_unspecified() || (s & 0xffc0) == 0xfe80 || (s & 0xff00) == 0xff00)
}

/// The interface the IPv4 default route leaves through, or why there is none.
pub fn container_iface(nl: &mut Nl) -> NlResult<Result<Iface, NoNet>> {
    let Some((oif, gw)) = default_route(nl, AddressFamily::Inet)? else {
        return Ok(Err(NoNet::NoDefaultRoute));
    };
    let Some(link) = links(nl)?
        .into_iter()
        .find(|l| l.index == oif && !l.loopback)
    else {
        return Ok(Err(NoNet::NoDefaultRoute));
    };
    let addrs = addresses(nl, oif)?;
    let v4 = addrs
        .iter()
        .filter_map(|(ip, p, sec)| match ip {
            IpAddr::V4(v4) => Some((*v4, *p, *sec)),
            _ => None,
        })
        .min_by_key(|(_, _, sec)| *sec);
    let Some((ip, prefix, _)) = v4 else {
        return Ok(Err(NoNet::NoIpv4Address(link.name)));
    };
    let ipv6 = addrs
        .iter()
        .filter_map(|(ip, p, _)| match ip {
            IpAddr::V6(v6) if is_global_v6(v6) => Some((*v6, *p)),
            _ => None,
        })
        .collect::<Vec<_>>();
    let ipv6_gateway = if ipv6.is_empty() {
        None
    } else {
        match default_route(nl, AddressFamily::Inet6)? {
            Some((i, Some(IpAddr::V6(g)))) if i == oif => Some(g),
            _ => None,
        }
    };
    let gateway = match gw {
        Some(IpAddr::V4(g)) => Some(g),
        _ => None,
    };
    Ok(Ok(Iface {
        link,
        ip,
        prefix,
        gateway,
        ipv6,
        ipv6_gateway,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_formats_lowercase_colon_separated() {
        assert_eq!(
            mac_string(&[0xaa, 0xbb, 0x0c, 0, 1, 0xff]),
            "aa:bb:0c:00:01:ff"
        );
    }

    #[test]
    fn global_v6_excludes_link_local_and_multicast() {
        assert!(is_global_v6(&"fd00::2".parse().unwrap()));
        assert!(is_global_v6(&"2001:db8::1".parse().unwrap()));
        assert!(!is_global_v6(&"fe80::1".parse().unwrap()));
        assert!(!is_global_v6(&"ff02::1".parse().unwrap()));
        assert!(!is_global_v6(&"::1".parse().unwrap()));
    }
}
