//! A network namespace of the test's own with `eth0` inside, wired to a veth end on the host
//! (10.217.<pid % 256>.<4n+1>/30 on the host, .<4n+2> inside, default route via the host),
//! removed in Drop.

use std::net::Ipv4Addr;

pub use super::probe::{sh, sh_ok};

pub struct TestNet {
    pub ns: String,
    host_veth: String,
    pub ip: Ipv4Addr,
}

impl TestNet {
    pub fn new() -> TestNet {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        assert!(n < 63);
        let pid = std::process::id();
        let ns = format!("urunc-left-{pid}-{n}");
        let host_veth = format!("ul{}x{n}", pid % 100_000);
        let base = [10, 217, (pid % 256) as u8, (n * 4) as u8];
        let host_ip = Ipv4Addr::new(base[0], base[1], base[2], base[3] + 1);
        let ip = Ipv4Addr::new(base[0], base[1], base[2], base[3] + 2);
        sh(&["ip", "netns", "add", &ns]);
        let t = TestNet { ns, host_veth, ip };
        let (ns, hv) = (t.ns.as_str(), t.host_veth.as_str());
        sh(&[
            "ip", "link", "add", hv, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        sh(&["ip", "addr", "add", &format!("{host_ip}/30"), "dev", hv]);
        sh(&["ip", "link", "set", hv, "up"]);
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        sh(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ip}/30"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
        sh(&[
            "ip",
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &host_ip.to_string(),
        ]);
        t
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.ns)
    }

    /// Whether the namespace's own eth0 answers ICMP echo from the host within `timeout`
    /// (a redirect left on eth0 sends every echo to a tap that is gone).
    pub fn answers_ping(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if !crate::probe::ping_rtts(self.ip, 2).is_empty() {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = sh_ok(&["ip", "netns", "del", &self.ns]);
        let _ = sh_ok(&["ip", "link", "del", &self.host_veth]);
    }
}
