//! Pod mode in a private network namespace entered by a test thread (root only; skipped
//! otherwise): the nf_tables table as the `nft` tool reads it back (an independent decoder of
//! what we encode), port claims between guests, slots, and teardown. Traffic through the
//! rules is tested with real guests in `tests/pod_net.rs`.

use super::discover::{self, Iface};
use super::mode::Ports;
use super::nl::Nl;
use super::pod::{self, PodError, Slot};
use super::tap::{self, Owner, TapOptions};
use std::process::Command;

fn in_private_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare netns");
            f()
        })
        .join()
        .expect("test thread")
    })
}

/// `nft` run from the test thread (a child forked there shares its network namespace).
fn nft(args: &[&str]) -> Option<String> {
    let o = Command::new("nft").args(args).output().ok()?;
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn sh(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(o.status.success(), "{args:?}: {o:?}");
}

fn new_tap(nl: &mut Nl, id: &str, owner: Owner) -> (u32, String) {
    let opts = TapOptions {
        vnet_hdr: true,
        persistent: true,
        uid: 0,
        gid: 0,
    };
    let name = tap::name_for(id);
    tap::create(&name, &opts).unwrap();
    let l = discover::links(nl)
        .unwrap()
        .into_iter()
        .find(|l| l.name == name)
        .unwrap();
    tap::configure(nl, l.index, 1500, &owner.alias(id)).unwrap();
    (l.index, name)
}

#[test]
fn tables_claims_slots_and_teardown() {
    if !nix::unistd::geteuid().is_root() || nft(&["--version"]).is_none() {
        eprintln!("skipped: needs root and the nft tool (to read the rules back)");
        return;
    }
    in_private_netns(|| {
        sh(&["ip", "link", "set", "lo", "up"]);
        sh(&[
            "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
        ]);
        sh(&["ip", "addr", "add", "10.77.0.5/24", "dev", "eth0"]);
        sh(&["ip", "link", "set", "eth0", "up"]);
        sh(&["ip", "route", "add", "default", "via", "10.77.0.1"]);
        let mut nl = Nl::open().unwrap();
        let iface: Iface = discover::container_iface(&mut nl).unwrap().unwrap();
        let me = Owner {
            pid: std::process::id() as i32,
            start: crate::container::process_start_time(std::process::id() as i32).unwrap(),
        };
        let init = Owner {
            pid: 1,
            start: crate::container::process_start_time(1).unwrap(),
        };
        let web = Ports::decode("t8080,u53").unwrap();
        let (i1, t1) = new_tap(&mut nl, "web", me);
        let s1 = pod::wire(&mut nl, me, "web", &iface, (i1, &t1), &web).unwrap();
        assert_eq!(s1, Slot(0));
        let table = nft(&["list", "table", "ip", &t1]).unwrap();
        for want in [
            "type nat hook prerouting priority dstnat",
            "type nat hook output priority -100",
            "type nat hook postrouting priority srcnat",
            "ip daddr 10.77.0.5 tcp dport 8080 dnat to 198.18.0.2",
            "udp dport 53 dnat to 198.18.0.2",
            "oif \"lo\" tcp dport 8080 dnat to 198.18.0.2",
            "ip saddr 127.0.0.0/8 masquerade",
            &format!("ip saddr 198.18.0.2 oif != \"{t1}\" masquerade"),
            &format!("iif != \"{t1}\" ip daddr 10.77.0.5 tcp dport 8080"),
            "type filter hook prerouting priority raw",
            &format!("iif \"{t1}\" ip daddr 127.0.0.0/8 drop"),
            &format!("iif \"{t1}\" ip saddr != 198.18.0.2 drop"),
        ] {
            assert!(table.contains(want), "{want:?} missing from\n{table}");
        }
        let fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        assert_eq!(fwd.trim(), "1");

        // a second guest (a live owner: pid 1) claiming 8080/tcp is refused; 9090 is fine
        let (i2, t2) = new_tap(&mut nl, "api", init);
        let clash = Ports::decode("t9090,t8080").unwrap();
        match pod::wire(&mut nl, init, "api", &iface, (i2, &t2), &clash) {
            Err(PodError::PortTaken { port, id }) => {
                assert_eq!((port.as_str(), id.as_str()), ("port 8080/tcp is", "web"))
            }
            other => panic!("expected PortTaken, got {other:?}"),
        }
        let api = Ports::decode("t9090").unwrap();
        let s2 = pod::wire(&mut nl, init, "api", &iface, (i2, &t2), &api).unwrap();
        assert_eq!(s2, Slot(1), "the second guest takes the next /30");
        // an all-ports guest conflicts with both
        let (i3, t3) = new_tap(&mut nl, "any", init);
        let any = pod::wire(&mut nl, init, "any", &iface, (i3, &t3), &Ports::Unbound);
        assert!(matches!(any, Err(PodError::PortTaken { .. })), "{any:?}");

        pod::teardown(me);
        let left = nft(&["list", "tables"]).unwrap();
        assert!(!left.contains(&t1), "own table removed: {left}");
        assert!(left.contains(&t2), "the other guest's table kept: {left}");
        pod::teardown(init);
        assert_eq!(nft(&["list", "tables"]).unwrap().trim(), "");
    });
}

#[test]
fn all_ports_mode_skips_local_sockets() {
    if !nix::unistd::geteuid().is_root() || nft(&["--version"]).is_none() {
        eprintln!("skipped: needs root and the nft tool (to read the rules back)");
        return;
    }
    in_private_netns(|| {
        sh(&[
            "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
        ]);
        sh(&["ip", "addr", "add", "10.78.0.5/24", "dev", "eth0"]);
        sh(&["ip", "link", "set", "eth0", "up"]);
        sh(&["ip", "route", "add", "default", "via", "10.78.0.1"]);
        let mut nl = Nl::open().unwrap();
        let iface = discover::container_iface(&mut nl).unwrap().unwrap();
        let me = Owner {
            pid: std::process::id() as i32,
            start: crate::container::process_start_time(std::process::id() as i32).unwrap(),
        };
        let (i, t) = new_tap(&mut nl, "all", me);
        pod::wire(&mut nl, me, "all", &iface, (i, &t), &Ports::Unbound).unwrap();
        let table = nft(&["list", "table", "ip", &t]).unwrap();
        // nft prints the socket expression with a value; the rule accepts whatever it finds
        assert!(table.contains("socket transparent"), "{table}");
        assert!(
            table.contains("meta l4proto tcp dnat to 198.18.0.2"),
            "{table}"
        );
        pod::teardown(me);
        assert_eq!(nft(&["list", "tables"]).unwrap().trim(), "");
    });
}

#[test]
fn the_check_probe_commits_every_kind_of_rule() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // `pod_nat` moves its caller to a namespace of its own: a thread of its own here
    let r = std::thread::spawn(super::probe::pod_nat).join().unwrap();
    assert_eq!(r, Ok(()));
}
