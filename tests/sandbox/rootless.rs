//! urunc run by an unprivileged user, directly and through rootless podman.

use super::common::{self, report, stderr, unique, Env};
use super::guests::multiboot_kernel;
use super::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs urunc as uid/gid 1000 without `--root`: state goes under `$XDG_RUNTIME_DIR/urunc`.
fn rootless_cmd(env: &Env, xdg: &Path) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(common::urunc_bin());
    c.env("URUNC_CONFIG", &env.config)
        .env("XDG_RUNTIME_DIR", xdg)
        .uid(1000)
        .gid(1000)
        .stdin(std::process::Stdio::null());
    c
}

/// Kills and removes a rootless container even when the test fails.
struct RootlessGuard(PathBuf, String);

impl Drop for RootlessGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new(common::urunc_bin())
            .arg("--root")
            .arg(&self.0)
            .args(["delete", "--force", &self.1])
            .output();
    }
}

#[test]
fn rootless_runtime_runs_a_sandboxed_monitor() {
    let env = Env::new();
    open_up(&env);
    let id = unique("sb-rootless");
    let b = env.bundle_with(&id, "report\nread /etc/hostname\nread /\ntick 50", |s| {
        s["linux"]["namespaces"] = json!([
            {"type": "user"}, {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "network"}
        ]);
        let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
    });
    let xdg = env.dir.path().join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    for p in [&xdg, &env.config] {
        nix::unistd::chown(p.as_path(), Some(1000.into()), Some(1000.into())).unwrap();
    }
    let _guard = RootlessGuard(xdg.join("urunc"), id.clone());
    let console = std::fs::File::create(env.console(&id)).unwrap();
    let o = rootless_cmd(&env, &xdg)
        .args(["create", "--bundle", b.to_str().unwrap(), &id])
        .stdout(console.try_clone().unwrap())
        .stderr(console)
        .output()
        .unwrap();
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    assert!(xdg.join("urunc").join(&id).join("state.json").exists());
    let o = rootless_cmd(&env, &xdg)
        .args(["start", &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "start: {}", stderr(&o));
    let c = env.wait_console(&id, "FAKEVMM-TICK", T);
    let r = report(&c);
    assert_eq!(ids(&r["uid"]), [0; 4]);
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["seccomp"], "2");
    // uid 1000 may read /etc/hostname, but it is not in the monitor's view (ENOENT); inside
    // the view, Landlock refuses what no rule names (EACCES on the view's root directory)
    assert!(
        line_with(&c, "FAKEVMM-READ /etc/hostname").ends_with("2)"),
        "{c}"
    );
    assert!(line_with(&c, "FAKEVMM-READ / ").ends_with("13)"), "{c}");
    let o = rootless_cmd(&env, &xdg)
        .args(["state", &id])
        .output()
        .unwrap();
    let st: Value = serde_json::from_slice(&o.stdout).expect("state JSON");
    let sup = st["pid"].as_i64().unwrap();
    let mon = monitor_pid(sup);
    for pid in [sup, mon] {
        let s = proc_status(pid);
        assert_eq!(
            field(&s, "Uid").split_whitespace().collect::<Vec<_>>(),
            ["1000"; 4]
        );
        assert_eq!(field(&s, "CapEff"), "0000000000000000");
        assert_eq!(field(&s, "Seccomp"), "2");
    }
    let o = rootless_cmd(&env, &xdg)
        .args(["kill", &id, "TERM"])
        .output()
        .unwrap();
    assert!(o.status.success(), "kill: {}", stderr(&o));
    let deadline = std::time::Instant::now() + T;
    while !env.console_text(&id).contains("FAKEVMM-TERM") {
        assert!(std::time::Instant::now() < deadline, "no FAKEVMM-TERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    common::wait_dead(sup, T);
    let o = rootless_cmd(&env, &xdg)
        .args(["delete", &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "delete: {}", stderr(&o));
    assert!(!xdg.join("urunc").join(&id).exists());
}

/// The unprivileged user rootless podman runs as (made here, with a subordinate id range).
const PODMAN_USER: &str = "uruncrl";

fn ensure_podman_user() {
    let exists = std::process::Command::new("id")
        .arg(PODMAN_USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let st = std::process::Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", PODMAN_USER])
            .status()
            .unwrap();
        assert!(st.success(), "useradd {PODMAN_USER}");
    }
    for f in ["/etc/subuid", "/etc/subgid"] {
        let t = std::fs::read_to_string(f).unwrap_or_default();
        if !t.lines().any(|l| l.starts_with(&format!("{PODMAN_USER}:"))) {
            let line = format!("{PODMAN_USER}:300000:65536\n");
            std::fs::write(f, t + &line).unwrap();
        }
    }
}

/// `podman ARGS` as the rootless user, with private runtime dir and engine config.
fn podman(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("runuser")
        .args(["-u", PODMAN_USER, "--", "env"])
        .arg(format!("XDG_RUNTIME_DIR={}", dir.join("xdg").display()))
        .arg(format!("HOME=/home/{PODMAN_USER}"))
        .arg(format!(
            "CONTAINERS_CONF={}",
            dir.join("containers.conf").display()
        ))
        .arg("podman")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run podman")
}

/// Processes of the rootless podman user started for this test (their environment names its
/// private XDG_RUNTIME_DIR; other runs of this test use the same user): pid and cmdline.
fn podman_user_processes(dir: &Path) -> Vec<(i32, String)> {
    let marker = format!("XDG_RUNTIME_DIR={}", dir.join("xdg").display());
    let uid = std::process::Command::new("id")
        .args(["-u", PODMAN_USER])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        let owner = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next().map(str::to_string));
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let ours = env.split(|b| *b == 0).any(|v| v == marker.as_bytes());
        if owner.as_deref() == Some(uid.as_str()) && ours {
            let c = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let pid = e.file_name().to_string_lossy().parse().unwrap_or(0);
            found.push((pid, String::from_utf8_lossy(&c).replace('\0', " ")));
        }
    }
    found
}

/// Ends what rootless podman leaves running once its commands are done: the pause process
/// (`catatonit -P`) that keeps its user namespace alive. `podman system migrate` stops it;
/// whatever is left of the test user's processes is then killed.
fn stop_podman_pause(dir: &Path) {
    let _ = podman(dir, &["system", "migrate"]);
    for (pid, _) in podman_user_processes(dir) {
        // SAFETY: kill(2) on a pid just read; at worst it is gone (ESRCH)
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !podman_user_processes(dir).is_empty() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn rootless_podman_runs_guests_through_urunc() {
    let tools = [
        "/usr/bin/podman",
        "/usr/bin/newuidmap",
        "/usr/bin/qemu-system-x86_64",
    ];
    if let Some(t) = tools.iter().find(|t| !Path::new(t).exists()) {
        // CI installs them (scripts/deps.sh): there a missing tool is a failure, not a skip
        assert!(
            std::env::var_os("CI").is_none(),
            "{t} missing: run scripts/deps.sh"
        );
        eprintln!("SKIPPED: {t} missing (apt-get install podman uidmap qemu-system-x86)");
        return;
    }
    ensure_podman_user();
    let env = Env::new();
    open_up(&env);
    let d = env.dir.path();
    let xdg = d.join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::write(
        d.join("containers.conf"),
        "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    // the fake monitor reports from inside; conmon passes no environment, hence a wrapper
    let wrapper = d.join("urunc-fake");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexport URUNC_CONFIG={}\nexec {} \"$@\"\n",
            env.config.display(),
            common::urunc_bin().display()
        ),
    )
    .unwrap();
    let ctx = d.join("image");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("fake"),
        "#fakevmm\nreport\nread /etc/hostname\nread /\n",
    )
    .unwrap();
    std::fs::write(
        ctx.join("kernel"),
        multiboot_kernel("URUNC-PODMAN-GUEST\n", true),
    )
    .unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY fake kernel /\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [
            "urunc-fake",
            "containers.conf",
            "image/fake",
            "image/kernel",
        ] {
            std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let st = std::process::Command::new("chown")
        .args([
            "-R",
            &format!("{PODMAN_USER}:"),
            xdg.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    // dropped last: after the image's removal, which starts podman's pause process again
    struct Pause<'a>(&'a Path);
    impl Drop for Pause<'_> {
        fn drop(&mut self) {
            stop_podman_pause(self.0);
        }
    }
    let _pause = Pause(d);
    let image = format!("localhost/{}", unique("urunc-sb"));
    let o = podman(d, &["build", "-q", "-t", &image, ctx.to_str().unwrap()]);
    assert!(o.status.success(), "podman build: {}", stderr(&o));
    struct Rmi<'a>(&'a Path, &'a str);
    impl Drop for Rmi<'_> {
        fn drop(&mut self) {
            let _ = podman(self.0, &["rmi", "-f", self.1]);
        }
    }
    let _rmi = Rmi(d, &image);
    let run = |runtime: &Path, kernel: &str| {
        let binary = format!("com.urunc.unikernel.binary={kernel}");
        let args = [
            "--runtime",
            runtime.to_str().unwrap(),
            "run",
            "--rm",
            "--network",
            "none",
            "--annotation",
            "com.urunc.unikernel.unikernelType=linux",
            "--annotation",
            "com.urunc.unikernel.hypervisor=qemu",
            "--annotation",
            &binary,
            &image,
            "/init",
        ];
        podman(d, &args)
    };
    // the real QEMU boots the guest and powers off; podman gets exit status 0
    let o = run(&common::urunc_bin(), "/kernel");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "podman run: {}{out}", stderr(&o));
    assert!(out.contains("URUNC-PODMAN-GUEST"), "{out}");
    // the fake monitor shows the sandbox inside rootless podman's user namespace
    let o = run(&wrapper, "/fake");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "podman run: {}{out}", stderr(&o));
    let r = report(&out);
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["seccomp"], "2");
    // not in the monitor's view (ENOENT); Landlock guards the view itself (EACCES)
    assert!(
        line_with(&out, "FAKEVMM-READ /etc/hostname").ends_with("2)"),
        "{out}"
    );
    assert!(line_with(&out, "FAKEVMM-READ / ").ends_with("13)"), "{out}");
    // the leftover check can fail: a process of the test user in this test's runtime dir (as
    // podman's pause process is) is found, and then ended like one
    let _ = podman(d, &["rmi", "-f", &image]);
    let id = |flag: &str| -> u32 {
        let o = std::process::Command::new("id")
            .args([flag, PODMAN_USER])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    let mut planted = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sleep")
            .arg("300")
            .env_clear()
            .env("XDG_RUNTIME_DIR", d.join("xdg"))
            .uid(id("-u"))
            .gid(id("-g"))
            .spawn()
            .unwrap()
    };
    let before = podman_user_processes(d);
    assert!(
        before.iter().any(|(pid, _)| *pid == planted.id() as i32),
        "the planted process is not found: {before:#?}"
    );
    stop_podman_pause(d);
    let _ = planted.wait();
    let left = podman_user_processes(d);
    assert!(left.is_empty(), "rootless podman left: {left:#?}");
}

#[test]
fn specs_that_cannot_be_honoured_are_refused_at_create() {
    // a KVM group that does not exist
    let env = Env::new();
    let cfg = std::fs::read_to_string(&env.config).unwrap().replacen(
        "accel = \"tcg\"",
        "accel = \"kvm\"\nkvm_group = \"no-such-group-urunc\"",
        1,
    );
    std::fs::write(&env.config, cfg).unwrap();
    let id = unique("sb-kvmgrp");
    let b = env.bundle(&id, "report");
    assert!(!env.create(&b, &id, &[]).status.success());
    assert!(env.console_text(&id).contains("no-such-group-urunc"));
    // rootless without a user namespace
    let env = Env::new();
    open_up(&env);
    let xdg = env.dir.path().join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    nix::unistd::chown(xdg.as_path(), Some(1000.into()), Some(1000.into())).unwrap();
    let id = unique("sb-rl-nouserns");
    let b = env.bundle(&id, "report");
    let _guard = RootlessGuard(xdg.join("urunc"), id.clone());
    let o = rootless_cmd(&env, &xdg)
        .args(["create", "--bundle", b.to_str().unwrap(), &id])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("needs a user namespace"),
        "{}",
        stderr(&o)
    );
}
