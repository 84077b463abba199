//! A real Linux guest (urunit + busybox, QEMU under TCG) takes the container's place on its
//! network: a private namespace with a veth to the host, joined by path; the host pings the
//! guest and fetches HTTP from it on the container's IPv4 and IPv6 addresses, the guest has the
//! veth's MAC, the container's hostname and DNS servers; after `delete` nothing is left in the
//! namespace. Needs root, `scripts/prepare-assets.sh` and QEMU (else SKIPPED, or a failure
//! with `CI` set). `bench` holds the ignored guest-versus-runc figure.

mod bench;
mod harness;

use harness::*;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// TCG guests are CPU-heavy on two cores: one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());
const BOOT: Duration = Duration::from_secs(120);

/// A Kubernetes-style resolv.conf, as the engine bind-mounts it into the container.
const RESOLV: &str = "search ns.svc.cluster.local svc.cluster.local\nnameserver 192.0.2.53\n\
                      nameserver 2001:db8::53\noptions ndots:5\n";

#[test]
fn dual_stack_guest_answers_on_the_container_address_and_delete_cleans_up() {
    let Some(assets) = assets() else { return };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = TestNet::new("ds", Addressing::SubnetDualStack);
    let (host6, ip6) = (net.host_ip6.unwrap(), net.ip6.unwrap());
    let script = format!(
        "echo MAC=$(cat /sys/class/net/eth0/address); echo HOSTNAME=$(hostname); \
         cat /etc/resolv.conf; ip addr show dev eth0; ip route; ip -6 route\n\
         mkdir -p /tmp/www; echo hello-from-the-guest > /tmp/www/index.html; \
         httpd -p 8080 -h /tmp/www; \
         ping -c 1 -W 5 {} > /dev/null && echo GUEST-PING-OK; \
         ping6 -c 1 -W 5 {host6} > /dev/null && echo GUEST-PING6-OK; \
         echo READY; sleep 1000 & wait",
        net.host_ip
    );
    let g = Guest::new(
        &assets,
        &net,
        &GuestSpec {
            name: "gnet-ds",
            script: &script,
            uid: 0,
            hostname: "web-guest",
            resolv_conf: Some(RESOLV),
            memory_mb: 256,
        },
    );
    let (mut child, rx) = g.spawn(true);
    let out = lines_until(&rx, "READY", BOOT).join("\n");
    let tap = g.tap();
    assert!(
        net.redirects_to(&tap),
        "eth0's ingress must redirect to {tap}"
    );

    assert!(
        out.contains(&format!("MAC={}", net.mac)),
        "guest MAC: {out}"
    );
    assert!(out.contains("HOSTNAME=web-guest"), "hostname: {out}");
    for ns in ["192.0.2.53", "2001:db8::53"] {
        assert!(
            out.contains(&format!("nameserver {ns}")),
            "resolv.conf: {out}"
        );
    }
    assert!(out.contains(&format!("inet {}/30", net.ip)), "IPv4: {out}");
    assert!(out.contains(&format!("inet6 {ip6}/64")), "IPv6: {out}");
    assert!(
        out.contains(&format!("default via {}", net.host_ip)),
        "route: {out}"
    );
    assert!(
        out.contains(&format!("default via {host6}")),
        "IPv6 route: {out}"
    );
    assert!(
        out.contains("GUEST-PING-OK"),
        "guest -> gateway (IPv4): {out}"
    );
    assert!(
        out.contains("GUEST-PING6-OK"),
        "guest -> gateway (IPv6): {out}"
    );

    assert_eq!(ping_rtts(net.ip, 3).len(), 3, "host -> guest ping");
    for ip in [IpAddr::V4(net.ip), IpAddr::V6(ip6)] {
        let (status, _, body, t) = http_get_retry(ip, 8080, "/index.html", Duration::from_secs(20));
        eprintln!("GET http://{ip}:8080/ -> {status} in {t:?}");
        assert!(status.contains("200"), "{ip}: {status}");
        assert!(body.contains("hello-from-the-guest"), "{ip}: {body}");
    }

    // create/start/kill/delete: `delete` removes the tap, filters and qdisc
    g.stop(&mut child, true);
    net.assert_clean();
}

#[test]
fn gateway_outside_the_subnet_is_reached_on_link() {
    let Some(assets) = assets() else { return };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = TestNet::new("ol", Addressing::OnLinkGateway);
    let script = "ip addr show dev eth0; ip route; mkdir -p /tmp/www; \
                  echo hello-on-link > /tmp/www/index.html; httpd -p 8080 -h /tmp/www; \
                  echo READY; sleep 1000 & wait";
    let g = Guest::new(
        &assets,
        &net,
        &GuestSpec {
            name: "gnet-ol",
            script,
            uid: 1000,
            hostname: "",
            resolv_conf: None,
            memory_mb: 256,
        },
    );
    let (mut child, rx) = g.spawn(false);
    let out = lines_until(&rx, "READY", BOOT).join("\n");
    assert!(out.contains(&format!("inet {}/32", net.ip)), "IPv4: {out}");
    assert!(
        out.contains(&format!("default via {} dev eth0 onlink", net.host_ip)),
        "on-link default route: {out}"
    );
    // the replies leave through the on-link default route
    assert_eq!(ping_rtts(net.ip, 3).len(), 3, "host -> guest ping");
    let (status, _, body, _) = http_get_retry(
        IpAddr::V4(net.ip),
        8080,
        "/index.html",
        Duration::from_secs(20),
    );
    assert!(
        status.contains("200") && body.contains("hello-on-link"),
        "{status} {body}"
    );
    // `run` deletes the container when it returns
    g.stop(&mut child, false);
    net.assert_clean();
}
