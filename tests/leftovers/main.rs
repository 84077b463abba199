//! Failed and killed creates leave nothing behind (issue 12, items 3 and 4): every named
//! fault-injection point of `create` and of the container process's setup is made to fail,
//! to SIGKILL the process at that point, and to SIGKILL `create` from there; `delete --force`
//! then removes what was left, and the leftover check finds nothing. A state root that fills
//! up after the network was wired leaves the pod reachable. Needs root and a debug build of
//! urunc (fault injection is compiled into debug builds only).

#[path = "../common/mod.rs"]
mod common;
mod killed;
mod netns;
#[path = "../probe/mod.rs"]
mod probe;

use common::leftover::{cgroup_mounts, Kind, Watch, TAG_VAR};
use common::{unique, Env};
use netns::{sh, sh_ok, TestNet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(30);

/// A unikernel bundle whose container joins `net`'s namespace by path.
fn bundle(
    env: &Env,
    name: &str,
    net: &TestNet,
    tweak: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let path = net.path();
    env.bundle_with(name, "exit 0", |spec| {
        for n in spec["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
        {
            if n["type"] == "network" {
                n["path"] = path.clone().into();
            }
        }
        tweak(spec);
    })
}

/// What `create` did: its exit status and everything it printed.
struct Outcome {
    status: std::process::ExitStatus,
    text: String,
}

/// `create` with the watch's tag and the given extra environment. Its output goes to a file:
/// the container process inherits it and keeps it open after `create` exits.
fn create(env: &Env, b: &Path, id: &str, w: &Watch, vars: &[(&str, &str)]) -> Outcome {
    env.track(id);
    let out = std::fs::File::create(env.console(id)).expect("console file");
    let mut c = env.cmd();
    c.env(TAG_VAR, &w.tag);
    for (k, v) in vars {
        c.env(k, v);
    }
    let status = c
        .args(["create", "--bundle"])
        .arg(b)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .status()
        .expect("run urunc create");
    Outcome {
        status,
        text: env.console_text(id),
    }
}

/// The tests of this file run one at a time: a container being created copies the host's
/// mount table into its namespaces, and while such a copy lives, the block device another test
/// takes over is "still mounted elsewhere" (O_EXCL gives EBUSY), a real refusal that would make
/// the takeover test depend on its neighbours' timing.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn watch(env: &Env, id: &str, net: &TestNet) -> Watch {
    Watch::new(
        &env.root,
        id,
        &format!("/urunc/{id}"),
        Some(&net.ns),
        env.dir.path(),
    )
}

/// What the check's own test plants, removed in Drop even when the test fails.
struct Plants {
    sleeper: Option<std::process::Child>,
    cgroups: Vec<PathBuf>,
    mounts: Vec<PathBuf>,
    state: PathBuf,
}

impl Drop for Plants {
    fn drop(&mut self) {
        if let Some(mut s) = self.sleeper.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        for d in &self.cgroups {
            let _ = std::fs::remove_dir(d);
        }
        for m in &self.mounts {
            sh_ok(&["umount", m.to_str().unwrap_or("")]);
        }
        let _ = std::fs::remove_dir(&self.state);
    }
}

#[test]
fn the_check_reports_each_kind_of_leftover() {
    let _serial = serial();
    let env = Env::new();
    let net = TestNet::new();
    let id = unique("plant");
    std::fs::create_dir_all(&env.root).unwrap();
    let kept = env.dir.path().join("kept");
    let new_mount = env.dir.path().join("new");
    std::fs::create_dir(&kept).unwrap();
    std::fs::create_dir(&new_mount).unwrap();
    let mut plants = Plants {
        sleeper: None,
        cgroups: cgroup_mounts()
            .into_iter()
            .map(|(_, mp)| mp.join("urunc").join(&id))
            .collect(),
        mounts: vec![kept.clone(), new_mount.clone()],
        state: env.root.join(&id),
    };
    assert!(!plants.cgroups.is_empty(), "no cgroup hierarchy is mounted");
    sh(&["mount", "-t", "tmpfs", "tmpfs", kept.to_str().unwrap()]);
    let w = watch(&env, &id, &net);
    assert_eq!(w.leftovers(), vec![], "a fresh watch reports something");

    // one of each kind
    plants.sleeper = Some(
        std::process::Command::new("sleep")
            .arg("600")
            .env(TAG_VAR, &w.tag)
            .spawn()
            .expect("spawn sleep"),
    );
    std::fs::create_dir(&plants.state).unwrap();
    for d in &plants.cgroups {
        std::fs::create_dir_all(d).unwrap();
    }
    let ns = net.ns.as_str();
    sh(&[
        "ip", "-n", ns, "tuntap", "add", "dev", "tapplant", "mode", "tap",
    ]);
    sh(&["tc", "-n", ns, "qdisc", "add", "dev", "eth0", "ingress"]);
    sh(&[
        "tc", "-n", ns, "filter", "add", "dev", "eth0", "ingress", "prio", "7", "u32", "match",
        "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "lo",
    ]);
    sh(&["mount", "-t", "tmpfs", "tmpfs", new_mount.to_str().unwrap()]);
    sh(&["umount", kept.to_str().unwrap()]);
    // a lease naming the container, as `sandbox::monitor_ns::lease` writes it (pid and start
    // time of its supervisor, then the key); removed with the test's directory
    let registry = env.dir.path().join("monitor-uids");
    std::fs::create_dir_all(&registry).unwrap();
    let key = env.root.join(&id);
    std::fs::write(
        registry.join("3900000001"),
        format!("1 1\n{}\n", key.display()),
    )
    .unwrap();

    let found = w.leftovers();
    let count = |k: Kind| found.iter().filter(|l| l.kind == k).count();
    assert_eq!(count(Kind::Process), 1, "{found:?}");
    assert_eq!(count(Kind::StateDir), 1, "{found:?}");
    assert_eq!(
        count(Kind::Cgroup),
        plants.cgroups.len(),
        "every hierarchy: {found:?}"
    );
    assert_eq!(count(Kind::Link), 1, "{found:?}");
    assert_eq!(count(Kind::Qdisc), 1, "{found:?}");
    assert_eq!(count(Kind::Filter), 1, "{found:?}");
    // one mount appeared, one disappeared
    assert_eq!(count(Kind::Mount), 2, "{found:?}");
    assert_eq!(count(Kind::Lease), 1, "{found:?}");

    // and once the plants are gone (the kept mount stays away), only that is reported
    drop(plants);
    sh(&["ip", "-n", ns, "link", "del", "tapplant"]);
    sh(&["tc", "-n", ns, "qdisc", "del", "dev", "eth0", "ingress"]);
    std::fs::remove_file(registry.join("3900000001")).unwrap();
    let left = w.leftovers();
    assert!(
        left.len() == 1 && left[0].kind == Kind::Mount && left[0].what.starts_with("missing"),
        "{left:?}"
    );
}

/// The points a successful create passes, in order (from the trace a debug build writes).
fn points(env: &Env, net: &TestNet, b: &Path) -> Vec<String> {
    let id = unique("trace");
    let trace = env.dir.path().join("trace");
    let w = watch(env, &id, net);
    let o = create(
        env,
        b,
        &id,
        &w,
        &[("URUNC_FAULT_TRACE", trace.to_str().unwrap())],
    );
    assert!(o.status.success(), "create: {}", o.text);
    let d = env.urunc(&["delete", "--force", &id]);
    assert!(d.status.success(), "delete: {}", text(&d));
    assert_eq!(w.settle(SETTLE), vec![], "a clean lifecycle left something");
    let mut v: Vec<String> = Vec::new();
    for l in std::fs::read_to_string(&trace)
        .expect("trace written")
        .lines()
    {
        if !v.iter().any(|p| p == l) {
            v.push(l.to_string());
        }
    }
    v
}

#[test]
fn every_failed_or_killed_step_leaves_nothing() {
    // without a prestart/createRuntime hook, create sends `Go` up front: no `NsReady` wait
    every_point_fails_cleanly(|_| {}, &["net:redirect"], &["create:ns-ready"]);
}

/// With a prestart hook, create waits for the container process's namespaces (`NsReady`),
/// runs the hook, then sends `Go`: the points of that path fail cleanly too.
#[test]
fn every_failed_or_killed_step_with_a_prestart_hook_leaves_nothing() {
    every_point_fails_cleanly(
        |spec| spec["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/true"}]}),
        &["net:redirect", "create:ns-ready", "create:prestart"],
        &[],
    );
}

/// Pod mode makes a tap with an address and an nf_tables table instead of tc filters.
#[test]
fn every_failed_or_killed_step_in_pod_mode_leaves_nothing() {
    every_point_fails_cleanly(
        |spec| {
            spec["annotations"]["com.urunc.network.mode"] = "pod".into();
            spec["annotations"]["com.urunc.network.ports"] = "8080".into();
        },
        &["net:nft"],
        &[],
    );
}

fn every_point_fails_cleanly(
    tweak: impl FnOnce(&mut serde_json::Value),
    net_point: &[&str],
    absent: &[&str],
) {
    let _serial = serial();
    let env = Env::new();
    let net = TestNet::new();
    let b = bundle(&env, "b", &net, tweak);
    assert!(
        net.answers_ping(SETTLE),
        "the test namespace does not answer"
    );
    let points = points(&env, &net, &b);
    // the trace covers both processes and the network wiring
    for must in [
        "create:journal",
        "create:cgroup",
        "create:go",
        "container:go",
    ]
    .iter()
    .chain(net_point)
    {
        assert!(
            points.iter().any(|p| p == must),
            "{must} not reached: {points:?}"
        );
    }
    for not in absent {
        assert!(
            !points.iter().any(|p| p == not),
            "{not} reached: {points:?}"
        );
    }
    for p in &points {
        for action in ["fail", "kill", "kill-create"] {
            let id = unique("fault");
            let w = watch(&env, &id, &net);
            let spec = format!("{p}:{action}");
            let o = create(&env, &b, &id, &w, &[("URUNC_FAULT", &spec)]);
            assert!(!o.status.success(), "{spec}: create succeeded");
            match action {
                "fail" => assert!(
                    o.text.contains(&format!("injected fault at {p}")),
                    "{spec}: {}",
                    o.text
                ),
                "kill-create" => assert_eq!(o.status.signal(), Some(9), "{spec}: {}", o.text),
                _ if p.starts_with("create:") => {
                    assert_eq!(o.status.signal(), Some(9), "{spec}: {}", o.text)
                }
                _ => {}
            }
            let d = env.urunc(&["delete", "--force", &id]);
            assert!(d.status.success(), "{spec}: delete --force: {}", text(&d));
            let left = w.settle(SETTLE);
            assert_eq!(left, vec![], "{spec} left this behind");
        }
    }
    assert!(
        net.answers_ping(SETTLE),
        "the pod is unreachable after the faults"
    );
}

/// A tmpfs that holds the state root, unmounted in Drop.
struct Tiny(PathBuf);

impl Drop for Tiny {
    fn drop(&mut self) {
        sh_ok(&["umount", "-l", self.0.to_str().unwrap_or("")]);
    }
}

#[test]
fn a_state_root_that_fills_up_after_network_setup_leaves_the_pod_reachable() {
    let _serial = serial();
    let mut env = Env::new();
    let net = TestNet::new();
    let tiny = Tiny(env.dir.path().join("tiny"));
    std::fs::create_dir(&tiny.0).unwrap();
    sh(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "tmpfs",
        tiny.0.to_str().unwrap(),
    ]);
    env.root = tiny.0.join("root");
    let filler = tiny.0.join("filler");
    // a createContainer hook (it runs right before the network is wired) fills the tmpfs, so
    // the first write after the wiring (state.json, which create writes once the container
    // process reports ready: a Unikraft guest has no generated files) fails with ENOSPC
    let b = bundle(&env, "b", &net, |spec| {
        spec["annotations"]["com.urunc.unikernel.unikernelType"] = "unikraft".into();
        spec["process"]["args"] = serde_json::json!(["/kernel"]);
        spec["hooks"] = serde_json::json!({"createContainer": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat /dev/zero > {} 2>/dev/null; true", filler.display())]
        }]});
    });
    assert!(
        net.answers_ping(SETTLE),
        "the test namespace does not answer"
    );
    let id = unique("full");
    let w = Watch::new(
        &env.root,
        &id,
        &format!("/urunc/{id}"),
        Some(&net.ns),
        &tiny.0,
    );
    let o = create(&env, &b, &id, &w, &[]);
    assert!(!o.status.success(), "create succeeded on a full state root");
    assert!(
        o.text.contains("No space left on device"),
        "create failed otherwise: {}",
        o.text
    );
    let left = w.settle(SETTLE);
    assert_eq!(left, vec![], "the failed create left this behind");
    assert!(
        net.answers_ping(SETTLE),
        "the pod is unreachable after the failed create"
    );
    let d = env.urunc(&["delete", "--force", &id]);
    assert!(d.status.success(), "delete --force: {}", text(&d));
}

#[test]
fn a_half_made_container_is_ours_and_plain_delete_removes_it_once_its_create_is_gone() {
    let _serial = serial();
    let env = Env::new();
    let net = TestNet::new();
    let b = bundle(&env, "b", &net, |_| {});
    let id = unique("half");
    let w = watch(&env, &id, &net);
    // killed right after the cgroups were made: a journal, no state.json
    let o = create(&env, &b, &id, &w, &[("URUNC_FAULT", "create:cgroup:kill")]);
    assert_eq!(o.status.signal(), Some(9), "{}", o.text);
    let dir = env.root.join(&id);
    assert!(dir.join("create.json").exists() && !dir.join("state.json").exists());
    assert!(
        w.leftovers().iter().any(|l| l.kind == Kind::Cgroup),
        "the kill came before the cgroups were made"
    );
    // not handed to another runtime: our own clear error
    let s = env.urunc(&["state", &id]);
    assert!(!s.status.success());
    assert!(text(&s).contains("not fully created"), "{}", text(&s));
    // its create is dead: a plain delete removes it (no --force needed, as for stopped)
    let d = env.urunc(&["delete", &id]);
    assert!(d.status.success(), "delete: {}", text(&d));
    assert_eq!(w.settle(SETTLE), vec![], "delete left this behind");
}

/// An ext4 filesystem on a loop device, mounted at `at`; unmounted and detached in Drop.
struct LoopFs {
    dev: String,
    at: PathBuf,
}

impl LoopFs {
    fn new(image: &Path, at: &Path) -> LoopFs {
        sh(&["mkfs.ext4", "-q", "-F", image.to_str().unwrap(), "8M"]);
        let dev = sh(&["losetup", "-f", "--show", image.to_str().unwrap()]);
        let l = LoopFs {
            dev: dev.trim().to_string(),
            at: at.to_path_buf(),
        };
        std::fs::create_dir_all(at).unwrap();
        sh(&["mount", "-t", "ext4", &l.dev, at.to_str().unwrap()]);
        l
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        while sh_ok(&["umount", self.at.to_str().unwrap_or("")]) {}
        sh_ok(&["losetup", "-d", &self.dev]);
    }
}

#[test]
fn every_failed_or_killed_step_gives_a_taken_block_rootfs_back() {
    let _serial = serial();
    let env = Env::new();
    let net = TestNet::new();
    // the container's rootfs is an ext4 filesystem on a loop device: with mountRootfs the guest
    // takes the device over, the host's mount goes away while the container exists and must
    // come back on every failure
    let b = bundle(&env, "b", &net, |spec| {
        spec["annotations"]["com.urunc.unikernel.mountRootfs"] = "true".into();
    });
    let kernel = std::fs::read(b.join("rootfs/kernel")).unwrap();
    let vol = LoopFs::new(&env.dir.path().join("rootfs.img"), &b.join("rootfs"));
    std::fs::write(b.join("rootfs/kernel"), kernel).unwrap();
    let mounted = || {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let at = vol.at.to_str().unwrap().to_string();
        info.lines()
            .any(|l| l.split(' ').nth(4) == Some(at.as_str()))
    };
    // the create really takes it: gone from the host while the container exists
    let id = unique("taken");
    let w = watch(&env, &id, &net);
    let o = create(&env, &b, &id, &w, &[]);
    assert!(o.status.success(), "create: {}", o.text);
    assert!(!mounted(), "the rootfs was not taken over");
    assert!(env.urunc(&["delete", "--force", &id]).status.success());
    assert!(mounted(), "delete did not mount the rootfs back");
    let points = points(&env, &net, &b);
    for p in &points {
        for action in ["fail", "kill", "kill-create"] {
            let id = unique("blk");
            let w = watch(&env, &id, &net);
            let spec = format!("{p}:{action}");
            let o = create(&env, &b, &id, &w, &[("URUNC_FAULT", &spec)]);
            assert!(!o.status.success(), "{spec}: create succeeded");
            let d = env.urunc(&["delete", "--force", &id]);
            assert!(d.status.success(), "{spec}: delete --force: {}", text(&d));
            assert_eq!(w.settle(SETTLE), vec![], "{spec} left this behind");
        }
    }
}

#[test]
fn delete_refuses_a_create_still_running_and_force_kills_it_then_removes_everything() {
    let _serial = serial();
    let env = Env::new();
    let net = TestNet::new();
    let b = bundle(&env, "b", &net, |_| {});
    let id = unique("busy");
    let w = watch(&env, &id, &net);
    env.track(&id);
    let out = std::fs::File::create(env.console(&id)).expect("console file");
    let mut creating = env
        .cmd()
        .env(TAG_VAR, &w.tag)
        .env("URUNC_FAULT", "create:cgroup:hang")
        .args(["create", "--bundle"])
        .arg(&b)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("spawn create");
    // it hangs once the cgroups exist
    let deadline = std::time::Instant::now() + SETTLE;
    while !w.leftovers().iter().any(|l| l.kind == Kind::Cgroup) {
        assert!(
            std::time::Instant::now() < deadline,
            "create never made its cgroups"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let d = env.urunc(&["delete", &id]);
    assert!(
        !d.status.success(),
        "delete removed a container being created"
    );
    assert!(text(&d).contains("still being created"), "{}", text(&d));
    assert!(
        creating.try_wait().unwrap().is_none(),
        "plain delete killed the create"
    );
    let d = env.urunc(&["delete", "--force", &id]);
    assert!(d.status.success(), "delete --force: {}", text(&d));
    let st = creating.wait().unwrap();
    assert_eq!(st.signal(), Some(9), "create was not killed: {st:?}");
    assert_eq!(w.settle(SETTLE), vec![], "delete --force left this behind");
}
