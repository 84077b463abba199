//! Each confinement layer of the monitor and the supervisor, probed from inside.

use super::common::{self, report, stderr, unique, Env};
use super::*;
use serde_json::json;
use std::path::Path;

#[test]
fn root_monitor_keeps_no_capability() {
    let env = Env::new();
    let c = run_script(&env, "sb-root", "report", |_| {});
    let r = report(&c);
    assert_eq!(ids(&r["uid"]), [0, 0, 0, 0]);
    assert_eq!(ids(&r["gid"]), [0, 0, 0, 0]);
    assert_eq!(r["groups"], "");
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["seccomp"], "2");
}

#[test]
fn monitor_runs_as_the_spec_user_and_groups() {
    let env = Env::new();
    open_up(&env);
    let c = run_script(&env, "sb-user", "report", |s| {
        set_user(s, 1000, 1001, &[2001, 2000])
    });
    let r = report(&c);
    assert_eq!(ids(&r["uid"]), [1000; 4]);
    assert_eq!(ids(&r["gid"]), [1001; 4]);
    assert_eq!(ids(&r["groups"]), [2000, 2001]);
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
}

#[test]
fn kvm_group_is_added_only_when_the_monitor_needs_kvm() {
    let with_kvm = |accel: &str| {
        let env = Env::with_config("");
        // the harness makes every monitor tcg; rewrite qemu's section
        let cfg = std::fs::read_to_string(&env.config).unwrap().replacen(
            "accel = \"tcg\"",
            &format!("accel = \"{accel}\"\nkvm_group = \"4321\""),
            1,
        );
        std::fs::write(&env.config, cfg).unwrap();
        open_up(&env);
        let c = run_script(&env, "sb-kvm", "report", |s| {
            set_user(s, 1000, 1000, &[2000])
        });
        ids(&report(&c)["groups"])
    };
    assert_eq!(with_kvm("kvm"), [2000, 4321]);
    assert_eq!(with_kvm("tcg"), [2000]);
}

#[test]
fn seccomp_denies_what_no_monitor_needs() {
    let env = Env::new();
    let c = run_script(
        &env,
        "sb-seccomp",
        "report\nsyscall unshare\nsyscall getpid\nsyscall ptrace",
        |_| {},
    );
    assert_eq!(report(&c)["seccomp"], "2");
    // an unprivileged process may create a user namespace here; only the filter refuses it
    assert!(
        line_with(&c, "FAKEVMM-SYSCALL unshare").ends_with("(os error 1)"),
        "{c}"
    );
    assert_eq!(
        line_with(&c, "FAKEVMM-SYSCALL getpid"),
        "FAKEVMM-SYSCALL getpid ok"
    );
    assert!(
        line_with(&c, "FAKEVMM-SYSCALL ptrace").contains("os error 1"),
        "{c}"
    );
    assert!(report(&c)["argv"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a.as_str().unwrap_or("").starts_with("on,obsolete=deny")));
}

#[test]
fn no_linux_seccomp_means_no_monitor_filter() {
    let env = Env::new();
    let c = run_script(&env, "sb-noseccomp", "report\nsyscall unshare", |s| {
        s["linux"].as_object_mut().unwrap().remove("seccomp");
    });
    let r = report(&c);
    assert_eq!(r["seccomp"], "0");
    assert_eq!(
        line_with(&c, "FAKEVMM-SYSCALL unshare"),
        "FAKEVMM-SYSCALL unshare ok"
    );
    assert!(!r["argv"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "-sandbox"));
    // the other layers stay
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
}

/// The monitor sees only its view (`sandbox::view`): the kernel at its image path, nothing else
/// of the rootfs or the host; inside the view, Landlock still refuses what no rule names (the
/// view's own root directory). Replaces the Landlock-only probe: host paths are now absent
/// (ENOENT) rather than denied (EACCES).
#[test]
fn the_monitor_sees_only_its_view_and_landlock_guards_it() {
    let env = Env::new();
    let id = unique("sb-view");
    let rootfs = env.dir.path().join(&id).join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("secret"), "s").unwrap();
    let outside = env.dir.path().join("outside");
    std::fs::write(&outside, "o").unwrap();
    let script = format!(
        "read /kernel\nread {k}\nread /secret\nread /etc/hostname\nread {o}\nwrite {o}\nread /\nread /proc/self/status",
        k = rootfs.join("kernel").display(),
        o = outside.display(),
    );
    let b = env.bundle_with(&id, &script, |_| {});
    run(&env, &b, &id);
    env.wait_status(&id, "stopped", T);
    let c = env.console_text(&id);
    let probe = |what: &str, p: &Path| {
        line_with(&c, &format!("FAKEVMM-{what} {} ", p.display()))
            .rsplit_once(' ')
            .map(|(_, r)| r.to_string())
            .unwrap()
    };
    assert_eq!(probe("READ", Path::new("/kernel")), "ok", "{c}");
    assert_eq!(probe("READ", Path::new("/proc/self/status")), "ok", "{c}");
    let absent = "2)"; // ENOENT: not in the view
    for p in [
        &rootfs.join("kernel"),
        Path::new("/secret"),
        Path::new("/etc/hostname"),
        &outside,
    ] {
        assert!(probe("READ", p).ends_with(absent), "{p:?}: {c}");
    }
    assert!(probe("WRITE", &outside).ends_with(absent), "{c}");
    // the file outside is untouched, and exists: the probe was real
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "o");
    // EACCES from Landlock (a directory open without Landlock passes, and read gives EISDIR)
    assert!(probe("READ", Path::new("/")).ends_with("13)"), "{c}");
}

#[test]
fn supervisor_is_confined_after_start() {
    let env = Env::new();
    open_up(&env);
    let id = unique("sb-sup");
    let b = env.bundle_with(&id, "tick 50", |s| set_user(s, 1000, 1000, &[]));
    run(&env, &b, &id);
    env.wait_console(&id, "FAKEVMM-TICK", T);
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let st = proc_status(pid);
    for k in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"] {
        assert_eq!(field(&st, k), "0000000000000000", "{k}:\n{st}");
    }
    assert_eq!(field(&st, "NoNewPrivs"), "1");
    assert_eq!(field(&st, "Seccomp"), "2");
    assert_eq!(
        field(&st, "Uid").split_whitespace().collect::<Vec<_>>(),
        ["1000"; 4]
    );
    // still in charge: SIGTERM reaches the monitor, which exits
    let o = env.urunc(&["kill", &id, "TERM"]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.wait_status(&id, "stopped", T);
    assert!(env.console_text(&id).contains("FAKEVMM-TERM"));
}

#[test]
fn monitor_dies_with_its_confined_supervisor() {
    let env = Env::new();
    open_up(&env);
    let id = unique("sb-pdeath");
    let b = env.bundle_with(&id, "tick 50", |s| {
        set_user(s, 1000, 1000, &[]);
        // no PID namespace: only PDEATHSIG (set after the identity change) can end the monitor
        s["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]);
    });
    run(&env, &b, &id);
    env.wait_console(&id, "FAKEVMM-TICK", T);
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let mon = monitor_pid(sup);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        common::wait_dead(mon, T),
        "the monitor outlived its supervisor"
    );
}

/// `create` leaves the monitor process forked and confined, waiting for `start` (which then
/// only lets it execve): before start it already runs as the spec's user with no capability
/// and no_new_privs, seccomp not yet installed (it goes on right before execve); after start
/// the same process runs the monitor, filtered.
#[test]
fn a_created_containers_monitor_waits_confined_and_start_only_releases_it() {
    let env = Env::new();
    open_up(&env);
    let id = unique("sb-early");
    let b = env.bundle_with(&id, "tick 50", |s| set_user(s, 1000, 1000, &[]));
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    // the supervisor forks it once create has its answer: wait for it to be fully confined
    let deadline = std::time::Instant::now() + T;
    let (waiting, st) = loop {
        let children = std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children"));
        let child = children
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok());
        if let Some(pid) = child {
            let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if field(&st, "NoNewPrivs") == "1" {
                break (pid, st);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no confined monitor under {sup}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(env.status(&id), "created");
    for k in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"] {
        assert_eq!(field(&st, k), "0000000000000000", "{k}:\n{st}");
    }
    assert_eq!(
        field(&st, "Uid").split_whitespace().collect::<Vec<_>>(),
        ["1000"; 4]
    );
    assert_eq!(
        field(&st, "Seccomp"),
        "0",
        "the filter goes on right before execve"
    );
    assert!(
        !env.console_text(&id).contains("FAKEVMM"),
        "nothing ran yet"
    );
    let o = env.urunc(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    env.wait_console(&id, "FAKEVMM-TICK", T);
    assert_eq!(
        monitor_pid(sup),
        waiting,
        "start released the waiting process"
    );
    assert_eq!(field(&proc_status(waiting), "Seccomp"), "2");
    let o = env.urunc(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
}
