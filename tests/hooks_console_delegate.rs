//! OCI hooks, the console socket, and delegation of ordinary bundles to runc.

mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn hook(log: &std::path::Path, kind: &str, extra: &str) -> serde_json::Value {
    let script = format!(
        "j=$(cat); echo \"{kind} $(readlink /proc/self/ns/net) $j\" >> {}; {extra}",
        log.display()
    );
    serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 5})
}

#[test]
fn all_six_hooks_run_in_order_with_the_state_on_stdin() {
    let env = Env::new();
    let log = env.dir.path().join("hooks.log");
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let b = env.bundle_with("b", "wait-term 0", |s| {
        let mut hooks = serde_json::Map::new();
        for k in kinds {
            hooks.insert(k.to_string(), serde_json::json!([hook(&log, k, "")]));
        }
        s["hooks"] = serde_json::Value::Object(hooks);
    });
    let id = unique("hooks");
    assert!(
        env.create(&b, &id, &[]).status.success(),
        "{}",
        env.console_text(&id)
    );
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let container_net = std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .display()
        .to_string();
    let host_net = std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string();
    assert!(env.urunc(&["start", &id]).status.success());
    assert!(env.urunc(&["kill", &id, "KILL"]).status.success());
    env.wait_status(&id, "stopped", T);
    assert!(env.urunc(&["delete", &id]).status.success());

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    let want_status = [
        "creating", "creating", "creating", "created", "running", "stopped",
    ];
    for (i, line) in lines.iter().enumerate() {
        let mut parts = line.splitn(3, ' ');
        let kind = parts.next().unwrap();
        let netns = parts.next().unwrap();
        let state: serde_json::Value =
            serde_json::from_str(parts.next().unwrap()).expect("state JSON on stdin");
        assert_eq!(kind, kinds[i], "hook order: {text}");
        assert_eq!(state["id"], id.as_str());
        assert_eq!(state["status"], want_status[i], "{kind}");
        assert_eq!(state["bundle"], b.to_str().unwrap());
        if kind != "poststop" {
            assert_eq!(state["pid"].as_i64(), Some(pid), "{kind}");
        }
        // createContainer and startContainer run in the container's namespaces
        let want_ns = if matches!(kind, "createContainer" | "startContainer") {
            &container_net
        } else {
            &host_net
        };
        assert_eq!(netns, want_ns, "{kind} ran in the wrong network namespace");
    }
}

#[test]
fn a_failing_hook_fails_create_and_leaves_nothing() {
    for kind in ["createRuntime", "createContainer"] {
        let env = Env::new();
        let log = env.dir.path().join("hooks.log");
        let b = env.bundle_with("b", "report", |s| {
            s["hooks"] = serde_json::json!({ kind: [hook(&log, kind, "echo oops >&2; exit 3")] });
        });
        let id = unique("hookfail");
        let o = env.create(&b, &id, &[]);
        assert!(!o.status.success(), "{kind}");
        let out = env.console_text(&id);
        assert!(
            out.contains(&format!("error running {kind} hook #0")) && out.contains("oops"),
            "{kind}: {out}"
        );
        assert!(!env.root.join(&id).exists(), "{kind}: state left");
        assert!(
            cgroup_dirs(&format!("urunc/{id}"))
                .iter()
                .all(|d| !d.exists()),
            "{kind}: cgroup left"
        );
    }
}

#[test]
fn a_hook_that_overruns_its_timeout_fails() {
    let env = Env::new();
    let b = env.bundle_with("b", "report", |s| {
        s["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    });
    let id = unique("hooktimeout");
    let t = std::time::Instant::now();
    assert!(!env.create(&b, &id, &[]).status.success());
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        env.console_text(&id).contains("timed out"),
        "{}",
        env.console_text(&id)
    );
}

#[test]
fn console_socket_receives_a_pty_that_carries_the_guest_console() {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd};
    let env = Env::new();
    let sock = env.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let b = env.bundle_with("b", "print hello on the tty\nwait-term 0", |s| {
        s["process"]["terminal"] = true.into()
    });
    let id = unique("tty");
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg.cmsgs().unwrap().find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        fd.expect("an fd over SCM_RIGHTS")
    });
    let o = env.create(&b, &id, &["--console-socket", sock.to_str().unwrap()]);
    assert!(o.status.success(), "{}", env.console_text(&id));
    let master = receiver.join().unwrap();
    // SAFETY: the fd was just received and is owned by nobody else.
    let mut master = unsafe { std::fs::File::from_raw_fd(master) };
    assert!(env.urunc(&["start", &id]).status.success());
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + T;
    while !String::from_utf8_lossy(&got).contains("hello on the tty") {
        assert!(
            std::time::Instant::now() < deadline,
            "no output on the pty: {:?}",
            String::from_utf8_lossy(&got)
        );
        let mut buf = [0u8; 256];
        let n = master.read(&mut buf).unwrap_or(0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        !env.console_text(&id).contains("hello on the tty"),
        "output went to stdio, not the pty"
    );
    // without a console socket a terminal container is refused at create
    let id2 = unique("tty");
    let o = env.create(&b, &id2, &[]);
    assert!(!o.status.success());
    assert!(env.console_text(&id2).contains("console-socket"));
}

fn busybox_bundle(env: &Env, name: &str, args: &[&str]) -> std::path::PathBuf {
    let b = env.dir.path().join(name);
    std::fs::create_dir_all(b.join("rootfs/bin")).unwrap();
    std::fs::copy("/bin/busybox", b.join("rootfs/bin/busybox"))
        .expect("busybox-static is installed");
    let o = std::process::Command::new("runc")
        .arg("spec")
        .arg("--bundle")
        .arg(&b)
        .output()
        .expect("runc is installed");
    assert!(o.status.success());
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(args);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    b
}

#[test]
fn ordinary_bundles_are_delegated_to_runc() {
    let env = Env::new();
    let b = busybox_bundle(
        &env,
        "p1",
        &["/bin/busybox", "sh", "-c", "echo delegated hi; exit 4"],
    );
    let id = unique("plain");
    env.track(&id);
    let o = env
        .cmd()
        .args(["run", "--bundle", b.to_str().unwrap(), &id])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("delegated hi"),
        "{} {}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(4));

    // the whole lifecycle of a delegated container through urunc
    let b = busybox_bundle(&env, "p2", &["/bin/busybox", "sleep", "30"]);
    let id = unique("plain");
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "{}", env.console_text(&id));
    assert!(
        env.root.join(&id).join("state.json").exists(),
        "runc keeps its state under our --root"
    );
    assert_eq!(env.status(&id), "created");
    assert!(env.urunc(&["start", &id]).status.success());
    assert_eq!(env.status(&id), "running");
    assert!(env.urunc(&["kill", &id, "KILL"]).status.success());
    env.wait_status(&id, "stopped", T);
    assert!(env.urunc(&["delete", &id]).status.success());
    assert!(!env.root.join(&id).exists());
}
