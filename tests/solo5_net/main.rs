//! Solo5 networking through the real binary with a fake tender that keeps solo5 v0.12.1's
//! rules (`fakevmm/src/solo5.rs`): the fake runs as `solo5-hvt`/`solo5-spt` (a copy of the
//! fake binary under that name), parses the options as the tender does, refuses `@FD`, and
//! attaches to the tap by name as `tap_attach.c` does (getifaddrs up check, /dev/net/tun,
//! TUNSETIFF `IFF_TAP|IFF_NO_PI`, SIOCGIFMTU, ethtool), under the monitor's sandbox (uid 0
//! without capabilities, no_new_privs, Landlock, and hvt's seccomp allow-list or the
//! deny-list for spt). It then answers ARP and ping for its `--ipv4=` address like test_net.
//! The hvt fake opens /dev/kvm but creates no VM: no working KVM is needed.
//!
//! Each test makes its own network namespace (`us5-<pid>-<n>`) with `eth0` inside and a veth
//! end on the host, joins it by path, pings the container IP from the host, and checks that
//! `delete` (or a failed `create`) leaves only `lo` and `eth0` and no tc state.

#[path = "../common/mod.rs"]
mod common;
mod lease;
mod netns;
#[path = "../probe/mod.rs"]
mod probe;

use common::*;
use lease::{assert_no_lease, host_uid_of, leased_uid, tender_pid};
use netns::Netns;
use probe::*;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

/// A unikernel as Solo5's toolchain links it, reduced to what the tender reads: an ELF64
/// executable for this machine with two PT_NOTE segments, `Solo5` ABI1 (target hvt 1 or
/// spt 2, ABI version 2: `include/elf_abi.h`, `hvt_abi.h`, `spt_abi.h`) and MFT1 (version 1,
/// entry 0 `MFT_RESERVED_FIRST` with an empty name, then the devices, 104 bytes each:
/// `include/mft_abi.h`). Real test_net.hvt/.spt of v0.12.1 have the same notes (readelf -n).
fn solo5_elf(target: u32, devices: &[(&str, u32)]) -> Vec<u8> {
    let note = |ty: u32, desc: &[u8]| {
        let mut n = Vec::new();
        n.extend(6u32.to_le_bytes());
        n.extend((desc.len() as u32).to_le_bytes());
        n.extend(ty.to_le_bytes());
        n.extend(b"Solo5\0\0\0");
        n.extend_from_slice(desc);
        n
    };
    let mut abi = Vec::new();
    for v in [target, 2, 0, 0] {
        abi.extend(v.to_le_bytes());
    }
    let mut mft = vec![0u8; 4]; // pads the manifest to 8 bytes (MFT1_NOTE_ALIGN)
    mft.extend(1u32.to_le_bytes());
    mft.extend((devices.len() as u32 + 1).to_le_bytes());
    let mut entries = vec![(String::new(), 1u32 << 30)];
    entries.extend(devices.iter().map(|(n, t)| (n.to_string(), *t)));
    for (name, ty) in entries {
        let mut e = vec![0u8; 104];
        e[..name.len()].copy_from_slice(name.as_bytes());
        e[68..72].copy_from_slice(&ty.to_le_bytes());
        mft.extend(e);
    }
    let notes = [note(0x3149_4241, &abi), note(0x3154_464d, &mft)];
    let machine: u16 = if cfg!(target_arch = "aarch64") {
        183
    } else {
        62
    };
    let mut elf = vec![0u8; 64];
    elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&machine.to_le_bytes());
    elf[20..24].copy_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    elf[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    elf[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
    let mut off = 64 + 2 * 56;
    for n in &notes {
        let mut ph = vec![0u8; 56];
        ph[0..4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        ph[8..16].copy_from_slice(&(off as u64).to_le_bytes());
        ph[32..40].copy_from_slice(&(n.len() as u64).to_le_bytes());
        elf.extend(ph);
        off += n.len();
    }
    for n in notes {
        elf.extend(n);
    }
    elf
}

const NET: u32 = 2;
const BLOCK: u32 = 1;

/// The monitor uid range of these tests (`[sandbox] monitor_uid_start/count`).
const UID_START: u32 = 3_910_000_000;
const UID_COUNT: u32 = 64;

/// An environment whose hvt and spt monitors are the fake under the tenders' names; the
/// monitors of its uid-0 containers run as uids leased from `UID_START` in the test's own
/// registry.
fn env() -> Env {
    let env = Env::new();
    let mut text = format!(
        "[sandbox]\nmonitor_uid_registry = \"{}\"\nmonitor_uid_start = {UID_START}\nmonitor_uid_count = {UID_COUNT}\n",
        env.dir.path().join("monitor-uids").display()
    );
    for (m, bin, accel) in [("hvt", "solo5-hvt", "kvm"), ("spt", "solo5-spt", "tcg")] {
        let p = env.dir.path().join(bin);
        std::fs::copy(fakevmm_bin(), &p).expect("copy the fake tender");
        text.push_str(&format!(
            "[monitors.{m}]\npath = \"{}\"\naccel = \"{accel}\"\n",
            p.display()
        ));
    }
    std::fs::write(&env.config, text).expect("write config");
    env
}

fn bundle(env: &Env, name: &str, monitor: &str, devs: &[(&str, u32)], net: &Netns) -> PathBuf {
    bundle_with(env, (name, monitor), devs, net, |_| {})
}

/// `bundle`, then `tweak` on its spec.
fn bundle_with(
    env: &Env,
    (name, monitor): (&str, &str),
    devs: &[(&str, u32)],
    net: &Netns,
    tweak: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let target = if monitor == "hvt" { 1 } else { 2 };
    let b = env.bundle_with(name, "", |spec| {
        spec["annotations"]["com.urunc.unikernel.unikernelType"] = "mirage".into();
        spec["annotations"]["com.urunc.unikernel.hypervisor"] = monitor.into();
        spec["process"]["args"] = serde_json::json!([]);
        for n in spec["linux"]["namespaces"].as_array_mut().expect("ns") {
            if n["type"] == "network" {
                n["path"] = format!("/var/run/netns/{}", net.ns).into();
            }
        }
        tweak(spec);
    });
    std::fs::write(b.join("rootfs/kernel"), solo5_elf(target, devs)).expect("kernel");
    b
}

/// The tap's `tun_flags`, `owner` and `group` (sysfs, read inside the namespace).
fn tap_details(net: &Netns) -> (String, String, String) {
    let tap = net.links().into_iter().find(|l| l.ends_with("_urunc"));
    let tap = tap.expect("the container's tap exists after create");
    let read = |f: &str| {
        let p = format!("/sys/class/net/{tap}/{f}");
        sh(&["ip", "netns", "exec", &net.ns, "cat", &p])
            .trim()
            .to_string()
    };
    (read("tun_flags"), read("owner"), read("group"))
}

fn fake_report(console: &str) -> serde_json::Value {
    let line = console
        .lines()
        .find_map(|l| l.strip_prefix("FAKESOLO5-REPORT "))
        .expect("no FAKESOLO5-REPORT on the console");
    serde_json::from_str(line).expect("report is JSON")
}

/// Pings until two echoes came back (or the timeout, which only guards against a hang).
fn answered(ip: Ipv4Addr) -> bool {
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        if ping_rtts(ip, 3).len() >= 2 {
            return true;
        }
    }
    false
}

fn run_and_ping(monitor: &str) {
    let env = env();
    let net = Netns::new(1400);
    let b = bundle(&env, monitor, monitor, &[("service0", NET)], &net);
    let id = unique(&format!("s5{monitor}"));
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    // The container is uid 0: its monitor gets a leased host uid, taken before the network.
    // IFF_TAP|IFF_NO_PI|IFF_PERSIST (0x0002|0x1000|0x0800), no IFF_VNET_HDR (0x4000), owned
    // by that uid and gid (sysfs shows them in the initial user namespace); up, as the
    // tender's getifaddrs check wants
    let leased = leased_uid(&env, &id);
    let (flags, owner, group) = tap_details(&net);
    let h = leased.to_string();
    assert_eq!(
        (flags.as_str(), owner.as_str(), group.as_str()),
        ("0x1802", h.as_str(), h.as_str())
    );
    let o = env.urunc(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    let console = env.wait_console(&id, "FAKESOLO5-SERVING", T);
    let tap = net
        .links()
        .into_iter()
        .find(|l| l.ends_with("_urunc"))
        .expect("tap");
    assert!(
        console.contains(&format!("FAKESOLO5-ATTACH service0 iface={tap} mtu=1400")),
        "{console}"
    );
    assert!(
        console.contains(&format!("FAKESOLO5-SERVING {} mac", net.ip)),
        "{console}"
    );
    let r = fake_report(&console);
    // uid 0 in its own user namespace, the leased uid on the host
    assert_eq!(r["Uid"], "0 0 0 0");
    assert_eq!(host_uid_of(tender_pid(&env, &id)), [leased; 4]);
    assert_eq!(r["CapEff"], "0000000000000000");
    assert_eq!(r["CapBnd"], "0000000000000000");
    assert_eq!(r["NoNewPrivs"], "1");
    assert_eq!(r["Seccomp"], "2", "the monitor runs under a seccomp filter");
    // Landlock is on (and allowed the TUNSETIFF ioctl on /dev/net/tun: IoctlDev)
    assert_eq!(r["open_root"], "Permission denied");
    if monitor == "hvt" {
        assert!(console.contains("FAKESOLO5-KVM api=12"), "{console}");
    }
    assert!(
        answered(net.ip),
        "no ping answer from {}: {console}",
        net.ip
    );
    let o = env.urunc(&["kill", &id, "TERM"]);
    assert!(o.status.success(), "kill: {}", stderr(&o));
    env.wait_status(&id, "stopped", T);
    let console = env.console_text(&id);
    assert!(
        console.contains(&format!("solo5-{monitor}: Exiting on signal 15")),
        "{console}"
    );
    let icmp: u32 = console
        .lines()
        .find_map(|l| l.strip_prefix("FAKESOLO5-ECHO "))
        .and_then(|l| l.split("icmp=").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .expect("echo counts");
    assert!(icmp >= 2, "{console}");
    let o = env.urunc(&["delete", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    net.assert_clean();
    assert_no_lease(&env);
}

#[test]
fn spt_answers_ping_on_the_container_ip_and_delete_leaves_nothing() {
    run_and_ping("spt");
}

#[test]
fn hvt_attaches_by_name_under_its_seccomp_allow_list() {
    run_and_ping("hvt");
}

/// The manifest declares a block device and no image is given: `create` fails after the
/// network was set up, and the persistent tap goes with it.
#[test]
fn failed_create_leaves_no_persistent_tap() {
    let env = env();
    let net = Netns::new(1500);
    let devs = [("service0", NET), ("storage", BLOCK)];
    let b = bundle(&env, "blk", "spt", &devs, &net);
    let id = unique("s5fail");
    let o = env.create(&b, &id, &[]);
    assert!(!o.status.success());
    let text = env.console_text(&id);
    assert!(
        text.contains("declares 1 block device(s) (storage) but 0"),
        "{text}"
    );
    net.assert_clean();
    assert!(!env.root.join(&id).exists());
    assert_no_lease(&env);
}

/// A tender that cannot attach (the tap is down: `tap_attach.c` requires IFF_UP or
/// IFF_RUNNING and fails with ENETDOWN) fails with Solo5's message; `delete` still removes
/// the persistent tap.
#[test]
fn tender_attach_failure_is_reported_and_cleaned_up() {
    let env = env();
    let net = Netns::new(1500);
    let b = bundle(&env, "down", "spt", &[("service0", NET)], &net);
    let id = unique("s5down");
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    let tap = net.links().into_iter().find(|l| l.ends_with("_urunc"));
    let tap = tap.expect("the container's tap");
    sh(&["ip", "-n", &net.ns, "link", "set", &tap, "down"]);
    let o = env.urunc(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    env.wait_status(&id, "stopped", T);
    let text = env.console_text(&id);
    let want = format!("solo5-spt: Could not attach interface: {tap}: Network is down");
    assert!(text.contains(&want), "{want:?} not in {text}");
    assert!(!text.contains("FAKESOLO5-SERVING"), "{text}");
    let o = env.urunc(&["delete", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    net.assert_clean();
    assert_no_lease(&env);
}

/// The fake refuses what solo5 v0.12.1 refuses, with its messages (run directly, no urunc;
/// each case was compared with the real solo5-spt built from v0.12.1 on these machines).
#[test]
fn fake_tender_keeps_solo5_rules() {
    let env = env();
    let k = |target, devs: &[(&str, u32)]| {
        let names: Vec<&str> = devs.iter().map(|d| d.0).collect();
        let p = env
            .dir
            .path()
            .join(format!("k{target}-{}", names.join("-")));
        std::fs::write(&p, solo5_elf(target, devs)).expect("kernel");
        p.display().to_string()
    };
    let spt = env.dir.path().join("solo5-spt");
    let net_k = k(2, &[("service0", NET)]);
    let hvt_k = k(1, &[]);
    let plain = k(2, &[]);
    let blk_k = k(2, &[("storage", BLOCK)]);
    for (args, code, want) in [
        (
            vec!["--mem=32", &net_k],
            1,
            "Device 'service0' of type NET_BASIC declared but not attached.",
        ),
        (
            vec!["--mem=32", "--net:service0=@0", &net_k],
            1,
            "Could not attach interface: @0: Success",
        ),
        (
            vec!["--net:service=tap0", &net_k],
            1,
            "Resource not declared in manifest: 'service'",
        ),
        (
            vec!["--net:service0=nosuch0", &net_k],
            1,
            "Could not attach interface: nosuch0: No such file or directory",
        ),
        (
            vec!["--block:storage=/nonexistent", &blk_k],
            1,
            "Could not open block device: /nonexistent",
        ),
        (vec!["--mem=0", &plain], 1, "Malformed argument to --mem"),
        (vec!["--bogus", &plain], 1, "Invalid option: `--bogus'"),
        (
            vec![&hvt_k],
            1,
            "Executable is not for the solo5-spt target",
        ),
        (vec!["--mem=32"], 1, "Missing KERNEL operand"),
    ] {
        let o = std::process::Command::new(&spt)
            .args(&args)
            .output()
            .expect("run the fake");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {want:?} not in {err}");
    }
    let o = std::process::Command::new(&spt)
        .args(["--mem=32", "--", &plain, "Hello_Solo5", "x"])
        .output()
        .expect("run the fake");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAKESOLO5-CMDLINE Hello_Solo5 x"), "{out}");
}
