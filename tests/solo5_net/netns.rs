//! The test's own network namespace (`us5-<pid>-<n>`): `eth0` inside, the other end of its
//! veth on the host, a /30 between them; removed on drop.

use super::probe::{sh, sh_ok};
use std::net::Ipv4Addr;

pub struct Netns {
    pub ns: String,
    host_veth: String,
    pub ip: Ipv4Addr,
}

impl Netns {
    pub fn new(mtu: u32) -> Netns {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let (ns, hv) = (
            format!("us5-{pid}-{n}"),
            format!("us5h{}x{n}", pid % 100_000),
        );
        let base = [10, 214, (pid % 256) as u8, (n * 4) as u8];
        let host_ip = Ipv4Addr::new(base[0], base[1], base[2], base[3] + 1);
        let ip = Ipv4Addr::new(base[0], base[1], base[2], base[3] + 2);
        sh(&["ip", "netns", "add", &ns]);
        let net = Netns {
            ns: ns.clone(),
            host_veth: hv.clone(),
            ip,
        };
        let mtu = mtu.to_string();
        sh(&[
            "ip", "link", "add", &hv, "mtu", &mtu, "type", "veth", "peer", "name", "eth0", "mtu",
            &mtu, "netns", &ns,
        ]);
        sh(&["ip", "addr", "add", &format!("{host_ip}/30"), "dev", &hv]);
        sh(&["ip", "link", "set", &hv, "up"]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip}/30"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        let gw = host_ip.to_string();
        sh(&["ip", "-n", &ns, "route", "add", "default", "via", &gw]);
        net
    }

    pub fn links(&self) -> Vec<String> {
        let mut v: Vec<String> = sh(&["ip", "-n", &self.ns, "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        v.sort();
        v
    }

    pub fn assert_clean(&self) {
        assert_eq!(self.links(), ["eth0", "lo"], "links left in {}", self.ns);
        let q = sh(&["tc", "-n", &self.ns, "qdisc", "show", "dev", "eth0"]);
        assert!(!q.contains("ingress"), "ingress qdisc left on eth0: {q}");
        let f = sh(&[
            "tc", "-n", &self.ns, "filter", "show", "dev", "eth0", "ingress",
        ]);
        assert_eq!(f.trim(), "", "filters left on eth0");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        sh_ok(&["ip", "netns", "del", &self.ns]);
        sh_ok(&["ip", "link", "del", &self.host_veth]);
    }
}
