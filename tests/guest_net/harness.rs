//! Test network namespaces, guest bundles and host-side probes (ICMP, HTTP) for the real-guest
//! networking tests. Copied and adapted from `tests/net.rs` and `tests/guest_linux.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

#[path = "../assets/mod.rs"]
mod assets;
#[path = "../probe/mod.rs"]
mod probe;

/// The kernel, initrd and QEMU, or why the tests skip (a failure when `CI` is set).
pub fn assets() -> Option<PathBuf> {
    assets::guest_assets(&["vmlinux", "initrd.cpio"])
}
pub use probe::*;

pub const URUNC: &str = env!("CARGO_BIN_EXE_urunc");

/// How the container's interface is addressed.
#[derive(Clone, Copy, PartialEq)]
pub enum Addressing {
    /// A /30 with the host end as gateway, plus an IPv6 /64 with its own default route.
    SubnetDualStack,
    /// Calico style: a /32 whose gateway (the host end) lies outside it, reached on-link.
    OnLinkGateway,
}

/// A private network namespace with `eth0` inside, wired to a veth end on the host.
pub struct TestNet {
    pub ns: String,
    pub host_veth: String,
    pub host_ip: Ipv4Addr,
    pub ip: Ipv4Addr,
    pub host_ip6: Option<Ipv6Addr>,
    pub ip6: Option<Ipv6Addr>,
    pub mac: String,
}

impl TestNet {
    pub fn new(tag: &str, how: Addressing) -> TestNet {
        use std::sync::atomic::{AtomicU8, Ordering};
        static N: AtomicU8 = AtomicU8::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        assert!(n < 63);
        let pid = std::process::id();
        let ns = format!("urunc-gnet-{tag}-{pid}-{n}");
        let host_veth = format!("ug{}x{n}", pid % 100_000);
        let (b, c) = (((pid >> 8) % 256) as u8, (pid % 256) as u8);
        // 10.214/16: apart from tests/net.rs's 10.213/16
        let host_ip = Ipv4Addr::new(10, 214, c, n * 4 + 1);
        let ip = Ipv4Addr::new(10, 214, c, n * 4 + 2);
        let v6 = |last: u16| {
            Ipv6Addr::new(
                0xfd00,
                0x214,
                u16::from_be_bytes([b, c]),
                n.into(),
                0,
                0,
                0,
                last,
            )
        };
        let dual = how == Addressing::SubnetDualStack;
        sh(&["ip", "netns", "add", &ns]);
        let mut t = TestNet {
            ns,
            host_veth,
            host_ip,
            ip,
            host_ip6: dual.then(|| v6(1)),
            ip6: dual.then(|| v6(2)),
            mac: String::new(),
        };
        let (ns, hv) = (t.ns.clone(), t.host_veth.clone());
        let ip_in = |args: &[&str]| {
            let mut v = vec!["ip", "-n", &ns];
            v.extend_from_slice(args);
            sh(&v)
        };
        sh(&[
            "ip", "link", "add", &hv, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip_in(&["link", "set", "lo", "up"]);
        ip_in(&["link", "set", "eth0", "up"]);
        sh(&["ip", "link", "set", &hv, "up"]);
        let (hs, cs) = (host_ip.to_string(), ip.to_string());
        match how {
            Addressing::SubnetDualStack => {
                sh(&["ip", "addr", "add", &format!("{hs}/30"), "dev", &hv]);
                ip_in(&["addr", "add", &format!("{cs}/30"), "dev", "eth0"]);
                ip_in(&["route", "add", "default", "via", &hs]);
                let (h6, c6) = (v6(1).to_string(), v6(2).to_string());
                sh(&[
                    "ip",
                    "addr",
                    "add",
                    &format!("{h6}/64"),
                    "dev",
                    &hv,
                    "nodad",
                ]);
                ip_in(&["addr", "add", &format!("{c6}/64"), "dev", "eth0", "nodad"]);
                ip_in(&["-6", "route", "add", "default", "via", &h6, "dev", "eth0"]);
            }
            Addressing::OnLinkGateway => {
                sh(&["ip", "addr", "add", &format!("{hs}/32"), "dev", &hv]);
                sh(&["ip", "route", "add", &format!("{cs}/32"), "dev", &hv]);
                ip_in(&["addr", "add", &format!("{cs}/32"), "dev", "eth0"]);
                ip_in(&[
                    "route", "add", "default", "via", &hs, "dev", "eth0", "onlink",
                ]);
            }
        }
        let link = ip_in(&["link", "show", "eth0"]);
        t.mac = link
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .expect("eth0 has a MAC")
            .to_string();
        t
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.ns)
    }

    fn run_in(&self, tool: &str, args: &[&str]) -> String {
        let mut v = vec![tool, "-n", &self.ns];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Nothing of ours left: only lo and eth0, no qdisc or filter on eth0's ingress.
    pub fn assert_clean(&self) {
        let mut links: Vec<String> = self
            .run_in("ip", &["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        links.sort();
        assert_eq!(links, ["eth0", "lo"], "links left in {}", self.ns);
        let q = self.run_in("tc", &["qdisc", "show", "dev", "eth0"]);
        assert!(!q.contains("ingress"), "ingress qdisc left on eth0: {q}");
        let f = self.run_in("tc", &["filter", "show", "dev", "eth0", "ingress"]);
        assert_eq!(f.trim(), "", "filters left on eth0");
    }

    /// The redirect is in place: eth0's ingress sends everything to the tap.
    pub fn redirects_to(&self, tap: &str) -> bool {
        self.run_in("tc", &["filter", "show", "dev", "eth0", "ingress"])
            .contains(&format!("Redirect to device {tap}"))
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = sh_ok(&["ip", "netns", "del", &self.ns]);
        let _ = sh_ok(&["ip", "link", "del", &self.host_veth]);
    }
}

/// A Linux guest bundle (kernel + initrd + config.json) in `net`'s namespace, with a private
/// `--root`; deletes its container whatever happens to the test.
pub struct Guest {
    pub dir: tempfile::TempDir,
    pub id: String,
}

pub struct GuestSpec<'a> {
    pub name: &'a str,
    pub script: &'a str,
    pub uid: u32,
    pub hostname: &'a str,
    /// Text of the `/etc/resolv.conf` bind-mounted into the container, as engines do.
    pub resolv_conf: Option<&'a str>,
    pub memory_mb: u32,
}

impl Guest {
    pub fn new(assets: &Path, net: &TestNet, g: &GuestSpec) -> Guest {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("gnet-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        // a non-root monitor must reach the kernel and initrd
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        if std::fs::hard_link(assets.join("vmlinux"), rootfs.join("vmlinux")).is_err() {
            std::fs::copy(assets.join("vmlinux"), rootfs.join("vmlinux")).unwrap();
        }
        std::fs::copy(assets.join("initrd.cpio"), rootfs.join("initrd")).unwrap();
        let mut mounts = vec![];
        if let Some(text) = g.resolv_conf {
            let src = dir.path().join("resolv.conf");
            std::fs::write(&src, text).unwrap();
            mounts.push(serde_json::json!({
                "destination": "/etc/resolv.conf", "type": "bind",
                "source": src, "options": ["rbind", "ro"],
            }));
        }
        let spec = serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": false,
                "user": {"uid": g.uid, "gid": g.uid},
                "args": ["/urunit", "/bin/sh", "-c", g.script],
                "env": ["PATH=/bin"],
                "cwd": "/",
            },
            "root": {"path": "rootfs"},
            "hostname": g.hostname,
            "mounts": mounts,
            "annotations": {
                "com.urunc.unikernel.unikernelType": "linux",
                "com.urunc.unikernel.hypervisor": "qemu",
                "com.urunc.unikernel.binary": "/vmlinux",
                "com.urunc.unikernel.initrd": "/initrd",
            },
            "linux": {"namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "network", "path": net.path()},
            ]},
        });
        std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
        std::fs::write(
            dir.path().join("urunc.toml"),
            assets::config_toml(
                dir.path(),
                &format!("accel = \"tcg\"\ndefault_memory_mb = {}\n", g.memory_mb),
            ),
        )
        .unwrap();
        let id = format!("{}-{}", g.name, std::process::id());
        Guest { dir, id }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(URUNC);
        c.env("URUNC_CONFIG", self.dir.path().join("urunc.toml"))
            .arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args);
        c
    }

    pub fn urunc(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `urunc run` (which deletes the container when it returns) in the background, or
    /// `urunc create` then `start` (`detached`); the guest's stdout lines arrive on the receiver.
    pub fn spawn(&self, detached: bool) -> (Child, Receiver<String>) {
        let bundle = self.dir.path().display().to_string();
        let verb = if detached { "create" } else { "run" };
        let mut child = self
            .cmd(&[verb, "--bundle", &bundle, &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                eprintln!("guest: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        if detached {
            let st = child.wait().unwrap();
            assert!(st.success(), "urunc create failed");
            let o = self.urunc(&["start", &self.id]);
            assert!(
                o.status.success(),
                "start: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        (child, rx)
    }

    fn status(&self) -> String {
        let o = self.urunc(&["state", &self.id]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["status"].as_str().unwrap_or("").to_string()
    }

    /// The tap the runtime recorded for the container.
    pub fn tap(&self) -> String {
        let st = std::fs::read_to_string(
            self.dir
                .path()
                .join("state")
                .join(&self.id)
                .join("state.json"),
        )
        .expect("state.json");
        let v: serde_json::Value = serde_json::from_str(&st).expect("state is JSON");
        v["urunc"]["tap"]
            .as_str()
            .expect("state records the tap")
            .to_string()
    }

    /// SIGKILL; then `run` returns (having deleted the container), or the created container
    /// stops and is deleted here.
    pub fn stop(&self, child: &mut Child, detached: bool) {
        let o = self.urunc(&["kill", &self.id, "KILL"]);
        assert!(
            o.status.success(),
            "kill: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let end = Instant::now() + Duration::from_secs(20);
        let mut done = || {
            if detached {
                self.status() == "stopped"
            } else {
                child.try_wait().unwrap().is_some()
            }
        };
        while !done() {
            assert!(Instant::now() < end, "the container outlived SIGKILL");
            std::thread::sleep(Duration::from_millis(50));
        }
        if detached {
            let o = self.urunc(&["delete", &self.id]);
            assert!(
                o.status.success(),
                "delete: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.urunc(&["delete", "--force", &self.id]);
    }
}

/// Lines up to and including the first containing `want`; panics after `timeout`.
pub fn lines_until(rx: &Receiver<String>, want: &str, timeout: Duration) -> Vec<String> {
    let end = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let done = l.contains(want);
                seen.push(l);
                if done {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no {want:?} from the guest within {timeout:?}; it printed {seen:#?}");
}

/// `GET path` over HTTP/1.0 (one connection): (status line, body length, body head, time).
pub fn http_get(
    ip: IpAddr,
    port: u16,
    path: &str,
) -> std::io::Result<(String, usize, String, Duration)> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: guest\r\n\r\n").as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let elapsed = t.elapsed();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&buf[..split]);
    let status = head.lines().next().unwrap_or("").to_string();
    let body = &buf[split..];
    let body_head = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    Ok((status, body.len(), body_head, elapsed))
}

/// Retries `http_get` until it answers (the server may still be starting).
pub fn http_get_retry(
    ip: IpAddr,
    port: u16,
    path: &str,
    timeout: Duration,
) -> (String, usize, String, Duration) {
    let end = Instant::now() + timeout;
    loop {
        match http_get(ip, port, path) {
            Ok(r) => return r,
            Err(e) => {
                assert!(Instant::now() < end, "GET http://{ip}:{port}{path}: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}
