//! Network configuration of the guest: lo up, then the container's interface (chosen by MAC,
//! by name, or `eth0`) with its address, MTU and default routes; `/etc/resolv.conf`.

use crate::config::Net;
use crate::netlink::{addr_msg, default_route_msg, link_up_msg, Socket};
use std::net::IpAddr;

fn index_of(name: &str) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()?;
    s.trim().parse().ok()
}

/// The interface to configure: by MAC, else by name, else `eth0`, else the first non-lo.
fn pick(net: &Net) -> Option<String> {
    let names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    if let Some(mac) = &net.mac {
        return names.into_iter().find(|n| {
            std::fs::read_to_string(format!("/sys/class/net/{n}/address"))
                .map(|a| a.trim().eq_ignore_ascii_case(mac))
                .unwrap_or(false)
        });
    }
    let want = net.iface.clone().unwrap_or_else(|| "eth0".into());
    if names.contains(&want) {
        return Some(want);
    }
    if net.iface.is_some() {
        return None;
    }
    let mut names = names;
    names.sort();
    names.into_iter().next()
}

/// Brings lo up and configures the interface; errors are returned as text.
pub fn configure(net: Option<&Net>, debug: bool) -> Result<(), String> {
    let sock = Socket::open().map_err(|e| format!("netlink socket: {e}"))?;
    if let Some(lo) = index_of("lo") {
        sock.request(&link_up_msg(lo, None))
            .map_err(|e| format!("bring lo up: {e}"))?;
    }
    let Some(net) = net else { return Ok(()) };
    if net.ip.is_none() && net.ip6.is_empty() {
        return Ok(());
    }
    // virtio-net probes when its module loads, but give a slow device a moment.
    let mut name = None;
    for _ in 0..50 {
        name = pick(net);
        if name.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let name = name.ok_or("no network interface found (is virtio_net in the initrd?)")?;
    let idx = index_of(&name).ok_or_else(|| format!("no index for {name}"))?;
    let ctx = |what: &str| {
        let name = name.clone();
        let what = what.to_string();
        move |e: std::io::Error| format!("{what} on {name}: {e}")
    };
    sock.request(&link_up_msg(idx, net.mtu))
        .map_err(ctx("bring the link up / set the MTU"))?;
    if let Some((ip, p)) = net.ip {
        sock.request(&addr_msg(idx, &IpAddr::V4(ip), p))
            .map_err(ctx(&format!("add address {ip}/{p}")))?;
    }
    for (ip, p) in &net.ip6 {
        sock.request(&addr_msg(idx, &IpAddr::V6(*ip), *p))
            .map_err(ctx(&format!("add address {ip}/{p}")))?;
    }
    if let Some(gw) = net.gw {
        sock.request(&default_route_msg(idx, &IpAddr::V4(gw)))
            .map_err(ctx(&format!("add default route via {gw}")))?;
    }
    if let Some(gw) = net.gw6 {
        sock.request(&default_route_msg(idx, &IpAddr::V6(gw)))
            .map_err(ctx(&format!("add default route via {gw}")))?;
    }
    if debug {
        eprintln!(
            "urunit: configured {name}: {:?} {:?} gw {:?}",
            net.ip, net.ip6, net.gw
        );
    }
    Ok(())
}

/// The resolv.conf text for `net`, None when it names no server and no search domain.
pub fn resolv_conf(net: &Net) -> Option<String> {
    if net.dns.is_empty() && net.search.is_empty() {
        return None;
    }
    let mut text = String::new();
    if !net.search.is_empty() {
        text.push_str(&format!("search {}\n", net.search.join(" ")));
    }
    for d in &net.dns {
        text.push_str(&format!("nameserver {d}\n"));
    }
    if !net.options.is_empty() {
        text.push_str(&format!("options {}\n", net.options.join(" ")));
    }
    Some(text)
}

/// Writes /etc/resolv.conf when DNS servers or search domains are given.
pub fn write_resolv_conf(net: Option<&Net>) -> Result<(), String> {
    let Some(text) = net.and_then(resolv_conf) else {
        return Ok(());
    };
    let _ = std::fs::create_dir_all("/etc");
    std::fs::write("/etc/resolv.conf", text).map_err(|e| format!("write /etc/resolv.conf: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_text() {
        let mut n = Net {
            dns: vec!["10.96.0.10".parse().unwrap()],
            ..Default::default()
        };
        assert_eq!(resolv_conf(&n).unwrap(), "nameserver 10.96.0.10\n");
        n.search = vec!["ns.svc.cluster.local".into(), "cluster.local".into()];
        n.options = vec!["ndots:5".into()];
        assert_eq!(
            resolv_conf(&n).unwrap(),
            "search ns.svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
        assert_eq!(resolv_conf(&Net::default()), None);
    }
}
