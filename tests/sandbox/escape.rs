//! An escaped monitor gets nothing an unprivileged user could not: the fake monitor, in a
//! uid-0 container without a user namespace (and without a PID namespace, so host processes are
//! in reach by pid), runs what a compromised VMM would try. The same script, run as real root
//! outside the sandbox, succeeds probe by probe, so every refusal inside is the sandbox's.

use super::common::escape::{probes, results, script, HostProcess, Victim};
use super::common::{unique, Env};
use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

#[test]
fn an_escaped_root_monitor_reaches_nothing_of_the_host() {
    let env = Env::new();
    let victim = Victim::new();
    let host = HostProcess::sleep();
    // another container, running
    let other = unique("sb-esc-other");
    let b = env.bundle_with(&other, "tick 100", |_| {});
    run(&env, &b, &other);
    env.wait_console(&other, "FAKEVMM-TICK", T);
    let other_sup = env.state(&other).unwrap()["pid"].as_u64().unwrap() as u32;
    let other_state = env.root.join(&other);
    let pids = [host.0.id(), other_sup];

    // the probes as real root, outside any sandbox: each one succeeds
    let outside = probes(&victim, &other_state, &pids, &victim.dir.join("mnt"), &[]);
    let file = env.dir.path().join("outside-script");
    std::fs::write(&file, script(&outside)).unwrap();
    let o = std::process::Command::new(common::fakevmm_bin())
        .arg(&file)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    for (p, r) in results(&out, &outside, "FAKEVMM-ESCAPE") {
        assert_eq!(
            r, "ok",
            "as root outside the sandbox, {p} must succeed:\n{out}"
        );
    }
    let _ = std::fs::remove_file(victim.dir.join("planted"));

    // the same probes from the monitor of a uid-0 container without user or PID namespace:
    // with its leased host uid (the default), and with the view alone (monitor_uid_count = 0)
    for extra in ["", "[sandbox]\nmonitor_uid_count = 0\n"] {
        let env = Env::with_config(extra);
        let id = unique("sb-escape");
        let inside = probes(
            &victim,
            &other_state,
            &pids,
            &env.root.join(&id).join("work"),
            &[],
        );
        let b = env.bundle_with(&id, "", |s| {
            s["linux"]["namespaces"] =
                json!([{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]);
        });
        std::fs::write(b.join("rootfs/kernel"), script(&inside)).unwrap();
        run(&env, &b, &id);
        let c = env.wait_console(&id, "FAKEVMM-ESCAPE-DONE", T);
        for (p, r) in results(&c, &inside, "FAKEVMM-ESCAPE") {
            assert_ne!(
                r, "ok",
                "the escaped monitor ({extra:?}) succeeded: {p}\n{c}"
            );
        }
    }
    // and nothing changed on the host
    assert_eq!(
        std::fs::read_to_string(victim.dir.join("secret")).unwrap(),
        "root only"
    );
    assert!(!victim.dir.join("planted").exists());
    assert!(common::pid_alive(other_sup as i64));
    assert_eq!(env.status(&other), "running");
    let null = std::fs::metadata("/dev/null").unwrap();
    assert_eq!(null.permissions().mode() & 0o7777, 0o666);
}

/// The view seen from outside (`/proc/<monitor>/root`): device nodes of the monitor's own
/// (owned by it, 0600, the host's device number, not the host's inode), no `/etc` beyond the
/// loader cache, no state of the host, and the kernel at its image path.
#[test]
fn the_view_holds_own_device_nodes_and_nothing_else_of_the_host() {
    use std::os::unix::fs::MetadataExt;
    let Ok(host_kvm) = std::fs::metadata("/dev/kvm") else {
        eprintln!("skipped: no /dev/kvm on this host");
        return;
    };
    let env = Env::with_config("");
    // the KVM plan (the fake monitor does not use it): /dev/kvm is among its devices
    let cfg = std::fs::read_to_string(&env.config).unwrap().replacen(
        "accel = \"tcg\"",
        "accel = \"kvm\"",
        1,
    );
    std::fs::write(&env.config, cfg).unwrap();
    open_up(&env);
    let id = unique("sb-view-dev");
    let b = env.bundle_with(&id, "escape open-dev /dev/kvm\ntick 100", |s| {
        set_user(s, 1000, 1000, &[])
    });
    run(&env, &b, &id);
    let c = env.wait_console(&id, "FAKEVMM-TICK", T);
    // the monitor opens its node as uid 1000, without the host's kvm group mattering
    assert!(
        line_with(&c, "FAKEVMM-ESCAPE open-dev /dev/kvm").ends_with(" ok"),
        "{c}"
    );
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let root = PathBuf::from(format!("/proc/{}/root", monitor_pid(sup)));
    let kvm = std::fs::symlink_metadata(root.join("dev/kvm")).unwrap();
    assert_eq!((kvm.uid(), kvm.gid()), (1000, 1000));
    assert_eq!(kvm.mode() & 0o7777, 0o600);
    assert_eq!(kvm.rdev(), host_kvm.rdev());
    assert_ne!((kvm.dev(), kvm.ino()), (host_kvm.dev(), host_kvm.ino()));
    // the host's node is as it was
    assert_eq!(
        std::fs::metadata("/dev/kvm").unwrap().mode(),
        host_kvm.mode()
    );
    assert!(root.join("kernel").is_file());
    let etc: Vec<String> = std::fs::read_dir(root.join("etc"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(etc.iter().all(|e| e == "ld.so.cache"), "{etc:?}");
    for absent in [
        "etc/shadow",
        "root",
        "home",
        "var",
        "sys",
        "run/containerd",
        "dev/sda",
    ] {
        assert!(!root.join(absent).exists(), "{absent} is in the view");
    }
    // the rest of its own state directory is hidden by the view's tmpfs
    let state = env.root.join(&id);
    assert!(state.join("state.json").exists());
    let inner = root.join(state.strip_prefix("/").unwrap());
    assert!(!inner.join("state.json").exists());
}

/// The container's user owns the work dir: a link planted there between create and start
/// (here to /etc/shadow) is not followed into the view; start fails and says why.
#[test]
fn a_link_planted_in_the_work_dir_is_not_followed_into_the_view() {
    let env = Env::new();
    let id = unique("sb-plant");
    let b = env.bundle_with(&id, "report", |_| {});
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    // the default bundle boots Linux with urunit: its configuration is an initrd in the work dir
    let conf = env.root.join(&id).join("work/urunit.conf");
    assert!(conf.is_file());
    std::fs::remove_file(&conf).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &conf).unwrap();
    let o = env.urunc(&["start", &id]);
    assert!(!o.status.success(), "start followed the planted link");
    let e = stderr(&o);
    assert!(
        e.contains("monitor's view") && e.contains("urunit.conf") && e.contains("os error 40"),
        "{e}"
    );
    assert!(!env.console_text(&id).contains("FAKEVMM-REPORT"));
}

fn host_uid_of(pid: i64) -> Vec<u32> {
    let st = proc_status(pid);
    field(&st, "Uid")
        .split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect()
}

/// The monitor of a uid-0 container is uid 0 only inside its own user namespace: on the host
/// it is a uid leased from `[sandbox] monitor_uid_start/count`, a different one per live
/// container; the supervisor still signals it. `monitor_uid_count = 0` keeps uid 0.
#[test]
fn a_root_containers_monitor_is_an_unprivileged_host_uid_unique_per_container() {
    let (start, count) = (3_900_000_000u32, 64u32);
    let env = Env::with_config(&format!(
        "[sandbox]\nmonitor_uid_start = {start}\nmonitor_uid_count = {count}\n"
    ));
    let mut uids = Vec::new();
    for n in 0..2 {
        let id = unique(&format!("sb-hostuid{n}"));
        let b = env.bundle_with(&id, "report\nwait-term 0", |_| {});
        run(&env, &b, &id);
        let c = env.wait_console(&id, "FAKEVMM-REPORT", T);
        // inside its namespace it is root, without a capability
        let r = common::report(&c);
        assert_eq!(ids(&r["uid"]), [0; 4]);
        caps_zero(&r);
        let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
        let host = host_uid_of(monitor_pid(sup));
        assert!(host.iter().all(|u| *u == host[0]), "{host:?}");
        assert!((start..start + count).contains(&host[0]), "{host:?}");
        let lease = env.dir.path().join(format!("monitor-uids/{}", host[0]));
        let text = std::fs::read_to_string(&lease).unwrap();
        assert!(text.contains(&id), "the lease names its container: {text}");
        uids.push(host[0]);
        // the uid-0 supervisor keeps the right to signal it
        let o = env.urunc(&["kill", &id, "TERM"]);
        assert!(o.status.success(), "{}", stderr(&o));
        env.wait_console(&id, "FAKEVMM-TERM", T);
        env.wait_status(&id, "stopped", T);
        // delete ends the lease
        let o = env.urunc(&["delete", &id]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!lease.exists());
    }
    // two live containers at once never share a uid
    let a = unique("sb-hostuid-a");
    let b = unique("sb-hostuid-b");
    let mut live = Vec::new();
    for id in [&a, &b] {
        let bundle = env.bundle_with(id, "tick 100", |_| {});
        run(&env, &bundle, id);
        env.wait_console(id, "FAKEVMM-TICK", T);
        let sup = env.state(id).unwrap()["pid"].as_i64().unwrap();
        live.push(host_uid_of(monitor_pid(sup))[0]);
    }
    assert_ne!(live[0], live[1]);
    assert!(uids
        .iter()
        .chain(&live)
        .all(|u| (start..start + count).contains(u)));

    // opted out: the monitor stays uid 0 on the host
    let env = Env::with_config("[sandbox]\nmonitor_uid_count = 0\n");
    let id = unique("sb-hostuid-off");
    let bundle = env.bundle_with(&id, "tick 100", |_| {});
    run(&env, &bundle, &id);
    env.wait_console(&id, "FAKEVMM-TICK", T);
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    assert_eq!(host_uid_of(monitor_pid(sup)), [0; 4]);
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// containerd's rootfs is an overlayfs, which cannot be idmapped (kernel 6.x): the kernel is
/// bound plainly and read through its "other" bits, and the monitor keeps its leased uid.
#[test]
fn an_overlay_rootfs_keeps_the_leased_uid() {
    let env = Env::new();
    let id = unique("sb-overlay");
    let b = env.bundle_with(&id, "", |_| {});
    let d = env.dir.path().join(format!("{id}-layers"));
    for sub in ["lower", "upper", "work"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let kernel = d.join("lower/kernel");
    std::fs::write(&kernel, "#fakevmm\nreport\nescape read /kernel\ntick 100\n").unwrap();
    std::fs::set_permissions(&kernel, std::fs::Permissions::from_mode(0o644)).unwrap();
    let rootfs = b.join("rootfs");
    std::fs::remove_dir_all(&rootfs).unwrap();
    std::fs::create_dir(&rootfs).unwrap();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        d.join("lower").display(),
        d.join("upper").display(),
        d.join("work").display()
    );
    nix::mount::mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .expect("mount overlayfs");
    let _m = Mounted(rootfs.clone());
    run(&env, &b, &id);
    let c = env.wait_console(&id, "FAKEVMM-TICK", T);
    assert!(
        line_with(&c, "FAKEVMM-ESCAPE read /kernel").ends_with(" ok"),
        "{c}"
    );
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let uid = host_uid_of(monitor_pid(sup));
    assert!(uid[0] >= 3_221_225_472, "{uid:?}");
    let o = env.urunc(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The container's additionalGids are the leased monitor's supplementary groups, mapped into
/// its namespace as the same host gids (`monitor_ns::kept_groups`), except the host's root
/// group: a kernel readable by its group only is read, and on the host the monitor is the
/// leased uid with that group and not gid 0.
#[test]
fn additional_gids_are_mapped_into_the_monitors_namespace() {
    use std::os::unix::fs::chown;
    let env = Env::new();
    let id = unique("sb-gids");
    let g = 4242u32;
    let b = env.bundle_with(&id, "report\nescape read /kernel\ntick 100", |s| {
        set_user(s, 0, 0, &[0, g])
    });
    // another user's file that only group g may read
    let kernel = b.join("rootfs/kernel");
    chown(&kernel, Some(1234), Some(g)).unwrap();
    std::fs::set_permissions(&kernel, std::fs::Permissions::from_mode(0o040)).unwrap();
    run(&env, &b, &id);
    let c = env.wait_console(&id, "FAKEVMM-TICK", T);
    assert!(
        line_with(&c, "FAKEVMM-ESCAPE read /kernel").ends_with(" ok"),
        "{c}"
    );
    let r = common::report(&c);
    assert_eq!(r["groups"], g.to_string(), "{c}");
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let pid = monitor_pid(sup);
    let st = proc_status(pid);
    let host_gid: Vec<u32> = field(&st, "Gid")
        .split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect();
    assert!(host_gid.iter().all(|x| *x >= 3_221_225_472), "{st}");
    assert_eq!(field(&st, "Groups").trim(), g.to_string(), "{st}");
    assert!(host_uid_of(pid)[0] >= 3_221_225_472, "{st}");
    let o = env.urunc(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
}
