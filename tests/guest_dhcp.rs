//! A guest that asks DHCP for its address gets the container's own (what a networked Nanos
//! does on QEMU, where it reads no command line): a real Linux guest (urunit + busybox, QEMU
//! under TCG) whose bundle carries `com.urunc.unikernel.dhcp: true` drops the address urunit
//! gave it, runs busybox `udhcpc` on eth0 and configures what it was offered; the answer can
//! only come from urunc's supervisor (the test network has no DHCP server). The host then pings
//! the guest on the container IP, and after `delete` nothing is left in the namespace. Needs
//! root, `scripts/prepare-assets.sh` and QEMU (else SKIPPED, or a failure with `CI` set).

#[path = "guest_net/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::*;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// TCG guests are CPU-heavy on two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const BOOT: Duration = Duration::from_secs(180);

/// udhcpc's hook: `$1` is the event; for `bound` it exports ip, mask (the prefix length),
/// subnet, router, dns, mtu, serverid, lease (busybox networking/udhcp/dhcpc.c `fill_envp`,
/// examples/udhcp/simple.script).
const HOOK: &str = "#!/bin/sh\n\
    [ \"$1\" = bound ] || exit 0\n\
    echo \"DHCP-BOUND ip=$ip mask=$mask router=$router mtu=$mtu lease=$lease server=$serverid\"\n\
    ip addr add $ip/$mask dev eth0\n\
    ip route add default via $router dev eth0\n";

#[test]
fn dhcp_client_gets_the_container_address_and_answers_on_it() {
    let Some(assets) = assets() else { return };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = TestNet::new("dh", Addressing::SubnetDualStack);
    let g = dhcp_guest(&assets, &net, "gdhcp", true, "-t 10 -T 3");
    let (mut child, rx) = g.spawn(true);
    let out = lines_until(&rx, "READY", BOOT).join("\n");
    // urunit's static address is gone before the client runs
    assert!(out.contains("FLUSHED 0"), "flush: {out}");
    assert!(!out.contains("DHCP-FAILED"), "no DHCP answer: {out}");
    // the test network is a /30 with the host end as gateway (harness.rs `TestNet::new`), the
    // veth's MTU is the kernel's default 1500; the lease is infinite (guest/dhcp.rs)
    let want = format!(
        "DHCP-BOUND ip={} mask=30 router={} mtu=1500 lease=4294967295 server={}",
        net.ip, net.host_ip, net.host_ip
    );
    assert!(out.contains(&want), "want {want:?} in: {out}");
    assert!(
        out.contains(&format!("inet {}/30", net.ip)),
        "address: {out}"
    );
    assert!(
        out.contains(&format!("default via {}", net.host_ip)),
        "route: {out}"
    );
    // the guest answers on the container IP with what DHCP gave it
    assert_eq!(ping_rtts(net.ip, 3).len(), 3, "host -> guest ping");
    // the supervisor that answered had confined itself before the guest booted (irreversible):
    // no capability, no_new_privs, a seccomp filter (sandbox::confine_supervisor)
    let st = g.urunc(&["state", &g.id]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).expect("state is JSON");
    let pid = st["pid"].as_i64().expect("state has the supervisor's pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for want in ["CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"] {
        assert!(
            status.contains(want),
            "supervisor {pid}: want {want:?}: {status}"
        );
    }
    g.stop(&mut child, true);
    net.assert_clean();
}

/// The control: without the annotation (a Linux guest takes `ip=` and urunit's address) nobody
/// answers, so the offer above came from urunc.
#[test]
fn without_the_annotation_nobody_answers() {
    let Some(assets) = assets() else { return };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = TestNet::new("dn", Addressing::SubnetDualStack);
    let g = dhcp_guest(&assets, &net, "gnodhcp", false, "-t 2 -T 2");
    let (mut child, rx) = g.spawn(false);
    let out = lines_until(&rx, "READY", BOOT).join("\n");
    assert!(out.contains("FLUSHED 0"), "flush: {out}");
    assert!(out.contains("DHCP-FAILED"), "an answer came: {out}");
    assert!(!out.contains("DHCP-BOUND"), "an answer came: {out}");
    g.stop(&mut child, false);
    net.assert_clean();
}

/// A value other than true or false fails `create` with a clear error and leaves nothing.
#[test]
fn an_invalid_annotation_value_fails_create() {
    let Some(assets) = assets() else { return };
    let net = TestNet::new("di", Addressing::SubnetDualStack);
    let g = dhcp_guest(&assets, &net, "gbaddhcp", false, "");
    let path = g.dir.path().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    spec["annotations"]["com.urunc.unikernel.dhcp"] = "yes".into();
    std::fs::write(&path, spec.to_string()).unwrap();
    let bundle = g.dir.path().display().to_string();
    let o = g.urunc(&["create", "--bundle", &bundle, &g.id]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "create accepted dhcp=yes");
    assert!(
        err.contains("com.urunc.unikernel.dhcp") && err.contains("true or false"),
        "{err}"
    );
    assert!(
        !g.dir.path().join("state").join(&g.id).exists(),
        "state left"
    );
    net.assert_clean();
}

/// A guest that flushes urunit's IPv4 configuration, runs udhcpc with `tries`, configures
/// what it is offered and prints it; `annotate`: the bundle asks urunc to answer DHCP.
fn dhcp_guest(assets: &Path, net: &TestNet, name: &str, annotate: bool, tries: &str) -> Guest {
    let script = format!(
        "printf '%s' '{hook}' > /tmp/hook; chmod 755 /tmp/hook; \
         ip -4 addr flush dev eth0; ip -4 route flush dev eth0; \
         echo FLUSHED $(ip -4 -o addr show dev eth0 | wc -l); \
         udhcpc -i eth0 -f -q -n {tries} -s /tmp/hook || echo DHCP-FAILED; \
         ip -4 -o addr show dev eth0; ip -4 route; \
         echo READY; sleep 1000 & wait",
        hook = HOOK.replace('\'', "'\\''")
    );
    let g = Guest::new(
        assets,
        net,
        &GuestSpec {
            name,
            script: &script,
            uid: 0,
            hostname: "",
            resolv_conf: None,
            memory_mb: 256,
        },
    );
    if annotate {
        ask_for_dhcp(&g);
    }
    g
}

/// Adds the annotation to the bundle the harness wrote.
fn ask_for_dhcp(g: &Guest) {
    let path = g.dir.path().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    spec["annotations"]["com.urunc.unikernel.dhcp"] = "true".into();
    std::fs::write(&path, spec.to_string()).unwrap();
}
