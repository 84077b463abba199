//! The monitor sandbox, through the real lifecycle: the fake monitor reports from inside what
//! it runs as (ids, capabilities, no_new_privs, seccomp, Landlock, cgroup, namespaces), and
//! probes each layer. Each test fails when its layer is removed. Needs root.

mod common;

use common::{report, stderr, unique, Env};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Lets a non-root monitor traverse the test's temp dir (tempfile makes it 0700).
fn open_up(env: &Env) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod tempdir");
}

/// create + start `bundle` as `id`; panics with urunc's error otherwise.
fn run(env: &Env, bundle: &Path, id: &str) {
    let o = env.create(bundle, id, &[]);
    assert!(o.status.success(), "create {id}: {}", env.console_text(id));
    let o = env.urunc(&["start", id]);
    assert!(o.status.success(), "start {id}: {}", stderr(&o));
}

/// Runs `script` to completion and returns the console text.
fn run_script(env: &Env, name: &str, script: &str, tweak: impl FnOnce(&mut Value)) -> String {
    let id = unique(name);
    let b = env.bundle_with(&id, script, tweak);
    run(env, &b, &id);
    env.wait_status(&id, "stopped", T);
    env.console_text(&id)
}

fn set_user(spec: &mut Value, uid: u32, gid: u32, extra: &[u32]) {
    spec["process"]["user"] = json!({"uid": uid, "gid": gid, "additionalGids": extra});
}

/// `Uid:`/`Gid:` fields of /proc/<pid>/status: real, effective, saved, fs.
fn ids(field: &Value) -> Vec<u32> {
    field
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .map(|s| s.parse().expect("id"))
        .collect()
}

fn caps_zero(r: &Value) {
    for k in ["cap_eff", "cap_prm", "cap_inh", "cap_bnd", "cap_amb"] {
        assert_eq!(r[k], "0000000000000000", "{k} in {r}");
    }
}

fn line_with<'a>(console: &'a str, prefix: &str) -> &'a str {
    console
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{console}"))
}

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

#[test]
fn landlock_allows_only_the_monitors_files() {
    let env = Env::new();
    let id = unique("sb-landlock");
    let rootfs = env.dir.path().join(&id).join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("secret"), "s").unwrap();
    let outside = env.dir.path().join("outside");
    std::fs::write(&outside, "o").unwrap();
    let script = format!(
        "read {k}\nread {s}\nread /etc/hostname\nread {o}\nwrite {o}\nread /proc/self/status",
        k = rootfs.join("kernel").display(),
        s = rootfs.join("secret").display(),
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
    assert_eq!(probe("READ", &rootfs.join("kernel")), "ok", "{c}");
    assert_eq!(probe("READ", Path::new("/proc/self/status")), "ok", "{c}");
    let denied = "13)"; // EACCES from Landlock: root would pass DAC
    assert!(
        probe("READ", &rootfs.join("secret")).ends_with(denied),
        "{c}"
    );
    assert!(
        probe("READ", Path::new("/etc/hostname")).ends_with(denied),
        "{c}"
    );
    assert!(probe("READ", &outside).ends_with(denied), "{c}");
    assert!(probe("WRITE", &outside).ends_with(denied), "{c}");
}

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
    let cg = format!("/urunc-test/{}", unique("sb-cg"));
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
    let _ = std::fs::remove_dir_all("/sys/fs/cgroup/pids/urunc-test");
}

#[test]
fn memory_limit_is_enforced_on_the_monitor() {
    let env = Env::new();
    let mib = 64i64 << 20;
    let c = run_script(
        &env,
        "sb-mem",
        "alloc 16\nprint after-16\nalloc 128\nprint after-128",
        |s| s["linux"]["resources"] = json!({"memory": {"limit": mib, "swap": mib}}),
    );
    assert!(c.contains("FAKEVMM-ALLOC 16 ok"), "{c}");
    assert!(!c.contains("after-128"), "allocated past the limit:\n{c}");
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
    let cg = format!("/urunc-test/{id}");
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

fn proc_status(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or("")
        .trim()
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
