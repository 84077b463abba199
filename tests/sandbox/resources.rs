//! Cgroup limits and namespaces (user namespaces with mappings included).

use super::common::{self, report, stderr, unique, Env};
use super::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A network namespace made with `ip netns add`, removed on drop.
struct NetNs(String);

impl NetNs {
    fn new() -> NetNs {
        let name = unique("urunc-sb");
        let st = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success());
        NetNs(name)
    }
    fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

fn ns_inode(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino().to_string()
}

#[test]
fn monitor_sits_in_the_containers_cgroup_and_namespaces() {
    let env = Env::new();
    let netns = NetNs::new();
    // a top-level cgroup of its own, which delete removes
    let cg = format!("/{}", unique("urunc-sb-cg"));
    let c = run_script(&env, "sb-ns", "report", |s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "network", "path": netns.path()}
        ]);
    });
    let r = report(&c);
    let link = |n: &str| r["ns"][n].as_str().unwrap_or("").to_string();
    assert_eq!(link("net"), format!("net:[{}]", ns_inode(&netns.path())));
    for n in ["pid", "mnt", "ipc", "uts"] {
        let ours = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(link(n), ours.display().to_string(), "{n} namespace not new");
    }
    let cgroups = r["cgroup"].as_str().unwrap();
    assert!(
        cgroups.lines().any(|l| l.ends_with(&format!(":{cg}"))),
        "{cgroups}"
    );
    // the supervisor is PID 1 of the new PID namespace, the monitor its child
    assert_eq!(r["pid"], 2, "{r}");
}

#[test]
fn memory_limit_is_enforced_on_the_monitor() {
    let env = Env::new();
    // qemu (the fake's role) needs 96 MiB of the limit for itself under TCG; 16 MiB is the
    // least guest: 112 MiB is the smallest limit create accepts
    let mib = 112i64 << 20;
    let c = run_script(
        &env,
        "sb-mem",
        "alloc 16\nprint after-16\nalloc 256\nprint after-256",
        |s| s["linux"]["resources"] = json!({"memory": {"limit": mib, "swap": mib}}),
    );
    assert!(c.contains("FAKEVMM-ALLOC 16 ok"), "{c}");
    assert!(!c.contains("after-256"), "allocated past the limit:\n{c}");
}

#[test]
fn pids_limit_is_enforced_on_the_whole_sandbox() {
    let env = Env::new();
    // supervisor + monitor + 2 children fit; the rest must be refused
    let c = run_script(&env, "sb-pids", "fork 2\nfork 8", |s| {
        s["linux"]["resources"] = json!({"pids": {"limit": 4}})
    });
    let forks: Vec<&str> = c
        .lines()
        .filter(|l| l.starts_with("FAKEVMM-FORK"))
        .collect();
    assert_eq!(forks.len(), 2, "{c}");
    assert_eq!(forks[0], "FAKEVMM-FORK ok", "{c}");
    assert!(forks[1].contains("os error 11"), "{c}");
}

fn cgroup_file(rel: &str, file: &str) -> Option<String> {
    common::cgroup_dirs(rel)
        .into_iter()
        .map(|d| d.join(file))
        .find(|f| f.exists())
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|s| s.trim().to_string())
}

#[test]
fn update_changes_limits_live_and_delete_removes_the_cgroup() {
    let env = Env::new();
    let id = unique("sb-update");
    let cg = format!("/urunc-{id}");
    let b = env.bundle_with(&id, "tick 50", |s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["linux"]["resources"] = json!({"memory": {"limit": 256i64 << 20}, "pids": {"limit": 50}});
    });
    run(&env, &b, &id);
    assert_eq!(cgroup_file(&cg, "pids.max").as_deref(), Some("50"));
    let o = env.urunc(&["update", "--memory", "134217728", "--pids-limit", "20", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cgroup_file(&cg, "pids.max").as_deref(), Some("20"));
    assert_eq!(
        cgroup_file(&cg, "memory.limit_in_bytes")
            .or_else(|| cgroup_file(&cg, "memory.max"))
            .as_deref(),
        Some("134217728")
    );
    let res = env.dir.path().join("res.json");
    std::fs::write(&res, r#"{"pids": {"limit": 7}}"#).unwrap();
    let o = env.urunc(&["update", "--resources", res.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cgroup_file(&cg, "pids.max").as_deref(), Some("7"));
    let o = env.urunc(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(common::cgroup_dirs(&cg).iter().all(|d| !d.exists()));
}

#[test]
fn user_namespace_maps_the_container_ids() {
    let env = Env::new();
    open_up(&env);
    let id = unique("sb-userns");
    let b = env.bundle_with(&id, "report\ntick 50", |s| {
        s["linux"]["namespaces"] = json!([
            {"type": "user"}, {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "network"}
        ]);
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
        set_user(s, 1000, 1000, &[1001]);
    });
    run(&env, &b, &id);
    let c = env.wait_console(&id, "FAKEVMM-TICK", T);
    let r = report(&c);
    // inside, the spec's ids; outside, the mapped ones
    assert_eq!(ids(&r["uid"]), [1000; 4]);
    assert_eq!(ids(&r["groups"]), [1001]);
    caps_zero(&r);
    assert_eq!(r["seccomp"], "2");
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(r["ns"]["user"], ours.display().to_string());
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let mon = monitor_pid(sup);
    let st = proc_status(mon);
    assert_eq!(
        field(&st, "Uid").split_whitespace().collect::<Vec<_>>(),
        ["101000"; 4]
    );
    assert_eq!(field(&st, "Groups"), "101001");
    let map = std::fs::read_to_string(format!("/proc/{mon}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    let o = env.urunc(&["kill", &id, "TERM"]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.wait_status(&id, "stopped", T);
}

#[test]
fn user_namespace_without_mappings_is_refused_at_create() {
    let env = Env::new();
    let id = unique("sb-userns-bad");
    let b = env.bundle_with(&id, "report", |s| {
        s["linux"]["namespaces"] = json!([{"type": "user"}, {"type": "pid"}]);
    });
    let o = env.create(&b, &id, &[]);
    assert!(!o.status.success());
    assert!(
        env.console_text(&id).contains("uidMappings"),
        "{}",
        env.console_text(&id)
    );
}
