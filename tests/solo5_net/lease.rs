//! The monitor of a uid-0 container that opens its tap by name (the Solo5 tenders, and
//! Firecracker) runs, like every other, as uid 0 only in a user namespace of its own and as a
//! leased unprivileged host uid outside (`sandbox::monitor_ns`): the lease is taken before the
//! network, and the persistent tap is made that uid's and gid's (TUNSETOWNER/TUNSETGROUP), so
//! that the tender, without a capability, passes the kernel's owner check when it attaches
//! (`tun_not_capable` / `tun_capable`, drivers/net/tun.c: its euid is the owner, its egid the
//! group, both the leased ids since its namespace maps 0 to them).

use super::*;
use common::escape::{probes, results, script, HostProcess, Victim};

/// The host uid of the process `pid` (real, effective, saved, fs), from the host's /proc.
pub(super) fn host_uid_of(pid: i64) -> Vec<u32> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = st
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("Uid");
    line.split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect()
}

/// The supervisor's only child, the tender.
pub(super) fn tender_pid(env: &Env, id: &str) -> i64 {
    let sup = env.state(id).expect("state")["pid"].as_i64().expect("pid");
    let p = format!("/proc/{sup}/task/{sup}/children");
    let children = std::fs::read_to_string(p).expect("children");
    children.trim().parse().expect("one tender")
}

/// The uid leased for the container's monitor: its lease record (`monitor-uid` in its state
/// directory, first line) and the lease in the test's registry naming the container.
pub(super) fn leased_uid(env: &Env, id: &str) -> u32 {
    let rec = std::fs::read_to_string(env.root.join(id).join("monitor-uid")).expect("record");
    let uid: u32 = rec.lines().next().expect("uid").parse().expect("a uid");
    assert!((UID_START..UID_START + UID_COUNT).contains(&uid), "{uid}");
    let lease = env.dir.path().join(format!("monitor-uids/{uid}"));
    let text = std::fs::read_to_string(lease).expect("the lease in the registry");
    assert!(text.contains(id), "the lease names its container: {text}");
    uid
}

/// No lease is left in the test's registry (only its lock file).
pub(super) fn assert_no_lease(env: &Env) {
    let reg = env.dir.path().join("monitor-uids");
    let left: Vec<String> = std::fs::read_dir(&reg)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n != ".lock")
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "leases left in {}: {left:?}",
        reg.display()
    );
}

/// An escaped by-name tender of a uid-0 container (no PID namespace, so host processes are in
/// reach by pid) reaches nothing of the host, cannot make a tap of its own in its network
/// namespace, and still serves its own tap. Outside, as root in the same namespace, every
/// probe succeeds (so each refusal inside is the sandbox's).
#[test]
fn an_escaped_by_name_tender_of_a_root_container_reaches_nothing() {
    let env = env();
    let victim = Victim::new();
    let host = HostProcess::sleep();
    // another container, running (its tender serves its own tap)
    let other_net = Netns::new(1500);
    let ob = bundle(&env, "other", "spt", &[("service0", NET)], &other_net);
    let other = unique("s5esc-other");
    let o = env.create(&ob, &other, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&other));
    let o = env.urunc(&["start", &other]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    env.wait_console(&other, "FAKESOLO5-SERVING", T);
    let other_sup = env.state(&other).unwrap()["pid"].as_u64().unwrap() as u32;
    let other_state = env.root.join(&other);
    let pids = [host.0.id(), other_sup];

    let net = Netns::new(1500);
    let id = unique("s5esc");
    let rogue = format!("us5evil{}", std::process::id() % 100_000);
    let with_tap = |mut p: Vec<String>| {
        p.insert(p.len() - 1, format!("tap {rogue}"));
        p
    };
    // as root outside the sandbox, in the same network namespace: each probe succeeds
    let outside = with_tap(probes(
        &victim,
        &other_state,
        &pids,
        &victim.dir.join("mnt"),
        &[],
    ));
    let file = env.dir.path().join("outside-script");
    std::fs::write(&file, script(&outside)).unwrap();
    let bin = common::fakevmm_bin();
    let out = sh(&[
        "ip",
        "netns",
        "exec",
        &net.ns,
        bin.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    for (p, r) in results(&out, &outside, "FAKEVMM-ESCAPE") {
        assert_eq!(
            r, "ok",
            "as root outside the sandbox, {p} must succeed:\n{out}"
        );
    }
    let _ = std::fs::remove_file(victim.dir.join("planted"));

    // the same from the tender, given /dev/net/tun (its own node)
    let scratch = env.root.join(&id).join("work");
    let inside = with_tap(probes(
        &victim,
        &other_state,
        &pids,
        &scratch,
        &["/dev/net/tun"],
    ));
    let words: Vec<String> = inside
        .iter()
        .map(|p| format!("escape:{}", p.replacen(' ', ":", 1)))
        .collect();
    let b = bundle_with(&env, ("esc", "spt"), &[("service0", NET)], &net, |s| {
        s["process"]["args"] = serde_json::json!(words);
        s["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "network", "path": format!("/var/run/netns/{}", net.ns)}]);
    });
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    let leased = leased_uid(&env, &id);
    let o = env.urunc(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    let c = env.wait_console(&id, "FAKESOLO5-SERVING", T);
    assert!(c.contains("FAKESOLO5-ESCAPE-DONE"), "{c}");
    for (p, r) in results(&c, &inside, "FAKESOLO5-ESCAPE") {
        assert_ne!(r, "ok", "the escaped tender succeeded: {p}\n{c}");
        // a new tap takes CAP_NET_ADMIN over the namespace (tun_set_iff): EPERM
        if p.starts_with("tap ") {
            assert!(r.contains("os error 1)"), "{p}: {r}");
        }
    }
    assert_eq!(host_uid_of(tender_pid(&env, &id)), [leased; 4]);
    assert!(answered(net.ip), "no ping answer from {}: {c}", net.ip);
    // and nothing changed on the host
    let secret = std::fs::read_to_string(victim.dir.join("secret")).unwrap();
    assert_eq!(secret, "root only");
    assert!(!victim.dir.join("planted").exists());
    assert!(common::pid_alive(other_sup as i64));
    assert_eq!(env.status(&other), "running");
    for c in [&id, &other] {
        let o = env.urunc(&["delete", "--force", c]);
        assert!(o.status.success(), "delete: {}", stderr(&o));
    }
    net.assert_clean();
    other_net.assert_clean();
    assert_no_lease(&env);
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A block image on an overlayfs rootfs (containerd's; no idmapped mounts on kernel 6.x) is a
/// writable file the monitor's namespace cannot map: the monitor keeps uid 0 (without
/// capabilities, as before the lease) and, still privileged, takes its tap back from the
/// leased uid before it drops them, so that it attaches all the same.
#[test]
fn a_tender_that_keeps_uid_0_gets_its_tap_back() {
    let env = env();
    let net = Netns::new(1500);
    let devs = [("service0", NET), ("storage", BLOCK)];
    let b = bundle_with(&env, ("ovl", "spt"), &devs, &net, |s| {
        s["annotations"]["com.urunc.unikernel.block"] = "/disk.img".into();
        s["annotations"]["com.urunc.unikernel.blkMntPoint"] = "/data".into();
    });
    let id = unique("s5ovl");
    let d = env.dir.path().join("layers");
    for sub in ["lower", "upper", "work"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let rootfs = b.join("rootfs");
    std::fs::rename(rootfs.join("kernel"), d.join("lower/kernel")).unwrap();
    std::fs::write(d.join("lower/disk.img"), vec![0u8; 1 << 20]).unwrap();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        d.join("lower").display(),
        d.join("upper").display(),
        d.join("work").display()
    );
    let flags = nix::mount::MsFlags::empty();
    nix::mount::mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        flags,
        Some(opts.as_str()),
    )
    .expect("mount overlayfs");
    let _m = Mounted(rootfs.clone());
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    // the lease is taken all the same (the monitor, forked ahead of `start`, may already have
    // taken the tap back: no look at the tap's owner before `start`)
    leased_uid(&env, &id);
    let o = env.urunc(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    let c = env.wait_console(&id, "FAKESOLO5-SERVING", T);
    assert!(c.contains("FAKESOLO5-BLOCK storage"), "{c}");
    assert_eq!(host_uid_of(tender_pid(&env, &id)), [0; 4]);
    let (_, owner, group) = tap_details(&net);
    assert_eq!((owner.as_str(), group.as_str()), ("0", "0"));
    assert!(answered(net.ip), "no ping answer from {}: {c}", net.ip);
    let o = env.urunc(&["delete", "--force", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    net.assert_clean();
    assert_no_lease(&env);
}
