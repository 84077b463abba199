//! Pod network mode with real Linux guests (urunit + busybox, QEMU under TCG) in a private
//! network namespace that plays the pod: its `eth0` is a veth to the host (which plays "another
//! pod"), a busybox httpd started in the namespace plays the runc sidecar. The namespace keeps
//! its address and stack; the guests' ports of the pod IP reach the guests, the sidecar keeps
//! its own; `localhost:PORT` inside the namespace (containerd's port-forward) reaches a guest;
//! two guests share the pod with their own ports and a third claiming a taken port is refused
//! at create; after delete, nothing is left (links, tc, nf_tables). Needs root,
//! `scripts/prepare-assets.sh` and QEMU (else SKIPPED, or a failure with `CI` set).

mod bench;
#[path = "../guest_net/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::*;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// TCG guests are CPU-heavy on two cores: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());
const BOOT: Duration = Duration::from_secs(180);
const HTTP: Duration = Duration::from_secs(30);

/// The pod-side address of the first guest's tap (`net::pod`: slot 0 of 198.18.0.0/24).
const FIRST_TAP_IP: &str = "198.18.0.1";

/// A busybox httpd in the pod's namespace, serving `body` on `port` (the runc sidecar).
struct Sidecar {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sidecar {
    fn start(net: &TestNet, port: u16, body: &str) -> Sidecar {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), body).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &net.ns, "busybox", "httpd", "-f"])
            .arg("-p")
            .arg(format!("0.0.0.0:{port}"))
            .arg("-h")
            .arg(dir.path())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let s = Sidecar { child, _dir: dir };
        // listening once a connection from inside the namespace is answered
        let end = Instant::now() + Duration::from_secs(10);
        while !in_pod(net, &format!("http://127.0.0.1:{port}/")).contains(body) {
            assert!(Instant::now() < end, "the sidecar did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET from inside the pod's namespace (a sidecar, or containerd's port-forward dialing
/// `localhost:PORT`), made by a thread that enters it: the body, or "" on failure.
fn in_pod(net: &TestNet, url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = hostport.split_once(':').expect("host:port");
    let (ip, port): (IpAddr, u16) = (host.parse().unwrap(), port.parse().unwrap());
    let path = if path.is_empty() { "/" } else { path };
    let ns = std::fs::File::open(net.path()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the pod");
            match http_get(ip, port, path) {
                Ok((status, _, body, _)) if status.contains("200") => body,
                _ => String::new(),
            }
        })
        .join()
        .unwrap()
    })
}

fn in_pod_retry(net: &TestNet, url: &str, want: &str) -> String {
    let end = Instant::now() + HTTP;
    loop {
        let got = in_pod(net, url);
        if got.contains(want) || Instant::now() > end {
            return got;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// GET from the host (another network namespace) on the pod IP.
fn from_outside(net: &TestNet, port: u16) -> String {
    let (status, _, body, _) = http_get_retry(IpAddr::V4(net.ip), port, "/", HTTP);
    assert!(status.contains("200"), "pod IP port {port}: {status}");
    body
}

/// Adds annotations to the guest's config.json.
fn annotate(g: &Guest, pairs: &[(&str, &str)]) {
    let path = g.dir.path().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (k, v) in pairs {
        spec["annotations"][*k] = serde_json::Value::String(v.to_string());
    }
    std::fs::write(&path, spec.to_string()).unwrap();
}

fn serving(name: &str, port: u16, extra: &str) -> String {
    format!(
        "mkdir -p /tmp/www; echo hello-from-{name} > /tmp/www/index.html; \
         httpd -p {port} -h /tmp/www; {extra} echo READY; sleep 1000 & wait"
    )
}

fn spec<'a>(name: &'a str, script: &'a str) -> GuestSpec<'a> {
    GuestSpec {
        name,
        script,
        uid: 0,
        hostname: "",
        resolv_conf: None,
        memory_mb: 192,
    }
}

/// No nf_tables table left in the pod's namespace.
fn assert_no_tables(net: &TestNet) {
    let t = sh(&["ip", "netns", "exec", &net.ns, "nft", "list", "tables"]);
    assert_eq!(t.trim(), "", "nf_tables tables left in {}", net.ns);
}

#[test]
fn guest_and_runc_sidecar_share_the_pod() {
    let Some(assets) = assets() else { return };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = TestNet::new("pod", Addressing::SubnetDualStack);
    let sidecar = Sidecar::start(&net, 8081, "hello-from-the-sidecar");
    // the guest fetches from the sidecar through its gateway (the tap, a pod address) and on
    // the pod IP (busybox wget crashes in this busybox build; nc speaks HTTP), and reaches
    // beyond the pod (the host end of the veth), masqueraded to the pod IP
    let extra = format!(
        "ip addr show dev eth0; ip route; \
         printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 {FIRST_TAP_IP} 8081 \
           | grep -q hello-from-the-sidecar && echo GUEST-TO-SIDECAR-OK; \
         printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 {} 8081 \
           | grep -q hello-from-the-sidecar && echo GUEST-TO-POD-IP-OK; \
         ping -c 1 -W 5 {} > /dev/null && echo GUEST-TO-OUTSIDE-OK;",
        net.ip, net.host_ip
    );
    let script = serving("the-guest", 8080, &extra);
    let g = Guest::new(&assets, &net, &spec("pod-web", &script));
    annotate(
        &g,
        &[
            ("com.urunc.network.mode", "pod"),
            ("com.urunc.network.ports", "8080/tcp"),
        ],
    );
    let (mut child, rx) = g.spawn(true);
    let out = lines_until(&rx, "READY", BOOT).join("\n");
    assert!(
        out.contains("inet 198.18.0.2/30"),
        "the guest is on its private link: {out}"
    );
    assert!(out.contains("default via 198.18.0.1"), "route: {out}");
    assert!(
        !net.redirects_to(&g.tap()),
        "pod mode must not redirect eth0"
    );
    for want in [
        "GUEST-TO-SIDECAR-OK",
        "GUEST-TO-POD-IP-OK",
        "GUEST-TO-OUTSIDE-OK",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    // from another namespace, both the guest's and the sidecar's ports answer on the pod IP
    assert!(from_outside(&net, 8080).contains("hello-from-the-guest"));
    assert!(from_outside(&net, 8081).contains("hello-from-the-sidecar"));
    // inside the pod: localhost and the pod IP reach the guest (port-forward, sidecars)
    for url in [
        "http://127.0.0.1:8080/".to_string(),
        format!("http://{}:8080/", net.ip),
    ] {
        let got = in_pod_retry(&net, &url, "hello-from-the-guest");
        assert!(got.contains("hello-from-the-guest"), "{url}: {got:?}");
    }
    // and the sidecar keeps its own localhost port
    assert!(in_pod(&net, "http://127.0.0.1:8081/").contains("hello-from-the-sidecar"));

    g.stop(&mut child, true);
    drop(sidecar);
    net.assert_clean();
    assert_no_tables(&net);
}

#[test]
fn two_guests_in_one_pod_and_a_taken_port_is_refused() {
    let Some(assets) = assets() else { return };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = TestNet::new("two", Addressing::OnLinkGateway);
    let (sa, sb) = (serving("guest-a", 8080, ""), serving("guest-b", 8090, ""));
    let a = Guest::new(&assets, &net, &spec("pod-a", &sa));
    annotate(
        &a,
        &[
            ("com.urunc.network.mode", "pod"),
            ("com.urunc.network.ports", "8080"),
        ],
    );
    let b = Guest::new(&assets, &net, &spec("pod-b", &sb));
    annotate(
        &b,
        &[
            ("com.urunc.network.mode", "pod"),
            ("com.urunc.network.ports", "8090"),
        ],
    );
    let (mut ca, ra) = a.spawn(true);
    let (mut cb, rb) = b.spawn(true);
    lines_until(&ra, "READY", BOOT);
    lines_until(&rb, "READY", BOOT);
    assert!(from_outside(&net, 8080).contains("hello-from-guest-a"));
    assert!(from_outside(&net, 8090).contains("hello-from-guest-b"));
    let local_b = in_pod_retry(&net, "http://127.0.0.1:8090/", "hello-from-guest-b");
    assert!(local_b.contains("hello-from-guest-b"), "{local_b:?}");

    // a third guest claiming 8080 fails at create, naming the port and its owner, and
    // leaves nothing behind
    let c = Guest::new(&assets, &net, &spec("pod-c", &sa));
    annotate(
        &c,
        &[
            ("com.urunc.network.mode", "pod"),
            ("com.urunc.network.ports", "9000,8080"),
        ],
    );
    let bundle = c.dir.path().display().to_string();
    let o = c.urunc(&["create", "--bundle", &bundle, &c.id]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a taken port must fail create");
    assert!(
        err.contains("port 8080/tcp is already forwarded") && err.contains(&a.id),
        "{err}"
    );
    let links = sh(&["ip", "-n", &net.ns, "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 4, "lo, eth0 and two taps: {links}");
    let tables = sh(&["ip", "netns", "exec", &net.ns, "nft", "list", "tables"]);
    assert_eq!(tables.lines().count(), 2, "two guests' tables: {tables}");

    a.stop(&mut ca, true);
    // guest b is untouched by a's teardown
    assert!(from_outside(&net, 8090).contains("hello-from-guest-b"));
    b.stop(&mut cb, true);
    net.assert_clean();
    assert_no_tables(&net);
}

#[test]
fn config_default_pod_mode_forwards_every_port_no_sidecar_holds() {
    let Some(assets) = assets() else { return };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = TestNet::new("all", Addressing::SubnetDualStack);
    let sidecar = Sidecar::start(&net, 8081, "hello-from-the-sidecar");
    let script = serving("the-guest", 8080, "");
    let g = Guest::new(&assets, &net, &spec("pod-all", &script));
    // no annotation: the config file's default mode, no port list
    let cfg = g.dir.path().join("urunc.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("[network]\nmode = \"pod\"\n");
    std::fs::write(&cfg, text).unwrap();
    let (mut child, rx) = g.spawn(true);
    lines_until(&rx, "READY", BOOT);
    assert!(from_outside(&net, 8080).contains("hello-from-the-guest"));
    assert!(
        from_outside(&net, 8081).contains("hello-from-the-sidecar"),
        "a port with a local listener stays the sidecar's"
    );
    g.stop(&mut child, true);
    drop(sidecar);
    net.assert_clean();
    assert_no_tables(&net);
}

#[test]
fn bad_mode_or_ports_fail_at_create_and_leave_nothing() {
    let Some(assets) = assets() else { return };
    let net = TestNet::new("bad", Addressing::SubnetDualStack);
    for (pairs, want) in [
        (
            vec![("com.urunc.network.mode", "bridge")],
            "invalid value \"bridge\" for annotation com.urunc.network.mode",
        ),
        (
            vec![
                ("com.urunc.network.mode", "pod"),
                ("com.urunc.network.ports", "80/sctp"),
            ],
            "invalid port \"80/sctp\" in annotation com.urunc.network.ports",
        ),
    ] {
        let g = Guest::new(&assets, &net, &spec("pod-bad", "true"));
        annotate(&g, &pairs);
        let bundle = g.dir.path().display().to_string();
        let o = g.urunc(&["create", "--bundle", &bundle, &g.id]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{err}");
        assert!(
            !g.dir.path().join("state").join(&g.id).exists(),
            "no state left"
        );
    }
    net.assert_clean();
}

/// The guard chain drops what the guest sends from an address not its own: a spoofed ping to
/// the tap's address gets no answer while the guard is there (the pod routes the spoofed
/// address back through the tap, so only the guard stops it), and gets one once the test
/// deletes the guard chain (the control that the setup would otherwise deliver it).
#[test]
fn the_guard_drops_what_the_guest_sends_from_a_foreign_address() {
    let Some(assets) = assets() else { return };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = TestNet::new("grd", Addressing::SubnetDualStack);
    let script = format!(
        "ip addr add 10.99.99.99/32 dev eth0; echo READY; i=0; while [ $i -lt 120 ]; do \
         ping -c 1 -W 1 -I 10.99.99.99 {FIRST_TAP_IP} > /dev/null 2>&1 \
         && {{ echo SPOOF-ANSWERED; break; }}; i=$((i+1)); done; echo SPOOF-DONE; \
         sleep 1000 & wait"
    );
    let g = Guest::new(&assets, &net, &spec("pod-guard", &script));
    annotate(
        &g,
        &[
            ("com.urunc.network.mode", "pod"),
            ("com.urunc.network.ports", "8080"),
        ],
    );
    let (mut child, rx) = g.spawn(true);
    lines_until(&rx, "READY", BOOT);
    let tap = g.tap();
    sh(&[
        "ip",
        "-n",
        &net.ns,
        "route",
        "add",
        "10.99.99.99/32",
        "dev",
        &tap,
    ]);
    // a few seconds of spoofed pings, each of which would be answered without the guard
    let end = Instant::now() + Duration::from_secs(8);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if let Ok(l) = rx.recv_timeout(left) {
            assert!(
                !l.contains("SPOOF-ANSWERED"),
                "the guard let a spoofed ping in"
            );
            assert!(!l.contains("SPOOF-DONE"), "the guest stopped pinging early");
        }
    }
    sh(&[
        "ip", "netns", "exec", &net.ns, "nft", "delete", "chain", "ip", &tap, "guard",
    ]);
    let out = lines_until(&rx, "SPOOF-", Duration::from_secs(150)).join("\n");
    assert!(
        out.contains("SPOOF-ANSWERED"),
        "without the guard the spoofed ping must be answered: {out}"
    );
    g.stop(&mut child, true);
    net.assert_clean();
    assert_no_tables(&net);
}
