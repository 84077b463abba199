//! Taps in a private network namespace entered by a test thread (root only; skipped
//! otherwise): the paths the lifecycle tests cannot reach yet (Firecracker's persistent tap,
//! Solo5's tap without a virtio-net header), and the owner marker's stale/live judgement.

use super::discover::{self, Iface, Link};
use super::nl::Nl;
use super::tap::{self, Owner, TapOptions};
use super::{clear_stale, remove_own, NetError};

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs `f` on a thread of its own in a fresh network namespace (unshare affects the thread).
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

fn lo_iface(nl: &mut Nl) -> Iface {
    let link = discover::links(nl)
        .unwrap()
        .into_iter()
        .find(|l| l.loopback)
        .unwrap_or(Link {
            index: 1,
            name: "lo".into(),
            mac: vec![],
            mtu: 65536,
            alias: None,
            up: false,
            loopback: true,
        });
    Iface {
        link,
        ip: std::net::Ipv4Addr::LOCALHOST,
        prefix: 8,
        gateway: None,
        ipv6: vec![],
        ipv6_gateway: None,
    }
}

#[test]
fn persistent_tap_outlives_its_fd_and_the_owner_marker_decides_stale_or_live() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    in_private_netns(|| {
        let mut nl = Nl::open().unwrap();
        let iface = lo_iface(&mut nl);
        let me = Owner {
            pid: std::process::id() as i32,
            start: crate::container::process_start_time(std::process::id() as i32).unwrap(),
        };
        let dead = Owner {
            pid: me.pid,
            start: me.start + 1,
        };
        let init = Owner {
            pid: 1,
            start: crate::container::process_start_time(1).unwrap(),
        };
        assert!(me.alive() && init.alive() && !dead.alive());

        // Firecracker's way: persistent, no fd kept; Solo5's: no virtio-net header.
        let opts = TapOptions {
            vnet_hdr: false,
            persistent: true,
            uid: 4242,
            gid: 4343,
        };
        let name = tap::name_for("old-container");
        assert!(tap::create(&name, &opts).unwrap().is_none());
        let find = |nl: &mut Nl, n: &str| {
            discover::links(nl)
                .unwrap()
                .into_iter()
                .find(|l| l.name == n)
        };
        let l = find(&mut nl, &name).expect("the persistent tap outlives its fd");
        tap::configure(&mut nl, l.index, 1300, &dead.alias("old-container")).unwrap();
        let l = find(&mut nl, &name).unwrap();
        assert_eq!(l.mtu, 1300);
        assert!(l.up);
        assert_eq!(l.alias.as_deref().and_then(Owner::from_alias), Some(dead));

        // A foreign tap (no alias) and a live container's tap.
        assert!(tap::create("tap0", &opts).unwrap().is_none());
        let live = tap::name_for("live-container");
        assert!(tap::create(&live, &opts).unwrap().is_none());
        let li = find(&mut nl, &live).unwrap().index;
        tap::configure(&mut nl, li, 1500, &init.alias("live-container")).unwrap();

        // The live one blocks setup; the dead one is removed on the way; the foreign one stays.
        match clear_stale(&mut nl, me, &iface, false) {
            Err(NetError::Busy { tap, id }) => {
                assert_eq!(tap, live);
                assert_eq!(id, "live-container");
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(find(&mut nl, &name).is_none(), "stale tap removed");
        assert!(find(&mut nl, "tap0").is_some(), "foreign tap kept");

        // remove_own touches only the tap whose alias names its owner.
        remove_own(&mut nl, me, Some(&live));
        assert!(find(&mut nl, &live).is_some(), "someone else's tap kept");
        remove_own(&mut nl, init, Some(&live));
        assert!(find(&mut nl, &live).is_none(), "own tap removed");
        clear_stale(&mut nl, me, &iface, false).unwrap();
    });
}
