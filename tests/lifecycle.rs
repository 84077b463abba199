//! The OCI lifecycle through the real binary, with the fake monitor, as containerd's shim,
//! podman and docker drive it.

mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn full_lifecycle_create_start_kill_delete() {
    let env = Env::new();
    let b = env.bundle("b", "print hello from the guest\nreport\nwait-term 0");
    let id = unique("life");
    let pidfile = env.dir.path().join("init.pid");
    let o = env.create(&b, &id, &["--pid-file", pidfile.to_str().unwrap()]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    let st = env.state(&id).expect("state after create");
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    assert!(
        !env.console_text(&id).contains("hello"),
        "the monitor ran before start"
    );

    let o = env.urunc(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    assert_eq!(env.status(&id), "running");
    let text = env.wait_console(&id, "FAKEVMM-REPORT", T);
    assert!(text.contains("hello from the guest"));
    let r = report(&text);
    // the pid-file pid holds the namespaces the monitor runs in
    for ns in ["net", "mnt", "pid", "ipc", "uts"] {
        let holder = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let mine = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(holder, mine, "{ns} namespace was not created");
        if ns == "mnt" {
            // the monitor's filesystem view is a mount namespace of its own (sandbox::view),
            // made from the container's
            assert_ne!(r["ns"][ns], holder.display().to_string());
            assert_ne!(r["ns"][ns], mine.display().to_string());
        } else {
            assert_eq!(r["ns"][ns], holder.display().to_string(), "{ns}");
        }
    }
    assert_eq!(
        r["pid"], 2,
        "monitor is not a child of the PID-1 supervisor"
    );

    let o = env.urunc(&["kill", &id, "15"]);
    assert!(o.status.success(), "kill: {}", stderr(&o));
    env.wait_console(&id, "FAKEVMM-TERM", T);
    env.wait_status(&id, "stopped", T);
    assert_eq!(env.state(&id).unwrap()["pid"], 0);

    let cg = format!("urunc/{id}");
    let o = env.urunc(&["delete", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    let o = env.urunc(&["state", &id]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("container does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());
    assert!(!env.root.join(&id).exists(), "state directory left behind");
    assert!(!pid_alive(pid));
    for d in cgroup_dirs(&cg) {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}

#[test]
fn run_returns_the_workload_exit_status_and_cleans_up() {
    let env = Env::new();
    let b = env.bundle("b", "print bye\nexit 3");
    let id = unique("run");
    env.track(&id);
    let o = env
        .cmd()
        .args(["run", "--bundle", b.to_str().unwrap(), &id])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("bye"));
    assert!(!env.root.join(&id).exists());

    let id2 = unique("run");
    env.track(&id2);
    let o = env
        .cmd()
        .args(["run", "--detach", "--bundle", b.to_str().unwrap(), &id2])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    env.wait_status(&id2, "stopped", T);
}

#[test]
fn duplicate_id_is_refused_and_the_first_container_survives() {
    let env = Env::new();
    let b = env.bundle("b", "wait-term 0");
    let id = unique("dup");
    assert!(env.create(&b, &id, &[]).status.success());
    let o = env
        .cmd()
        .args(["create", "--bundle", b.to_str().unwrap(), &id])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("container with given ID already exists"),
        "{}",
        stderr(&o)
    );
    assert_eq!(env.status(&id), "created");
    assert!(env.urunc(&["start", &id]).status.success());
    assert_eq!(env.status(&id), "running");
}

#[test]
fn unknown_id_for_every_verb() {
    let env = Env::new();
    for verb in [
        &["start"][..],
        &["state"],
        &["kill"],
        &["delete"],
        &["pause"],
        &["resume"],
        &["ps", "--format", "json"],
        &["update", "--pids-limit", "10"],
        &["exec", "--process", "/dev/null", "--detach"],
    ] {
        let mut args: Vec<&str> = verb.to_vec();
        args.push("no-such-container");
        let o = env.urunc(&args);
        assert!(!o.status.success(), "{verb:?} succeeded");
        assert!(
            stderr(&o).contains("container does not exist"),
            "{verb:?}: {}",
            stderr(&o)
        );
        assert!(o.stdout.is_empty(), "{verb:?} printed on stdout");
    }
    let o = env.urunc(&["delete", "--force", "no-such-container"]);
    assert!(
        o.status.success(),
        "delete --force of a missing id: {}",
        stderr(&o)
    );
}

#[test]
fn delete_of_created_kills_and_cleans() {
    let env = Env::new();
    let b = env.bundle("b", "report");
    let id = unique("delc");
    assert!(env.create(&b, &id, &[]).status.success());
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let o = env.urunc(&["delete", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(wait_dead(pid, T));
    assert!(!env.root.join(&id).exists());
    assert!(
        !env.console_text(&id).contains("FAKEVMM"),
        "the monitor ran"
    );
}

#[test]
fn kill_of_stopped_says_not_running_and_running_delete_needs_force() {
    let env = Env::new();
    let b = env.bundle("b", "wait-term 0");
    let id = unique("kill");
    assert!(env.create(&b, &id, &[]).status.success());
    assert!(env.urunc(&["start", &id]).status.success());
    let o = env.urunc(&["delete", &id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not stopped"), "{}", stderr(&o));
    assert!(env.urunc(&["kill", &id, "KILL"]).status.success());
    env.wait_status(&id, "stopped", T);
    let o = env.urunc(&["kill", &id, "SIGTERM"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("container not running"),
        "{}",
        stderr(&o)
    );
    assert!(
        env.urunc(&["kill", "--all", &id, "9"]).status.success(),
        "kill --all of stopped is fine"
    );
    let o = env.urunc(&["start", &id]);
    assert!(!o.status.success());
    assert!(env.urunc(&["delete", &id]).status.success());
}

#[test]
fn delete_force_of_running_and_sigkill_of_supervisor_leave_nothing() {
    for pidns in [true, false] {
        let env = Env::new();
        let b = env.bundle_with("b", "report\nwait-term 0", |s| {
            if !pidns {
                s["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
            }
        });
        let id = unique("sigkill");
        assert!(env.create(&b, &id, &[]).status.success());
        assert!(env.urunc(&["start", &id]).status.success());
        let r = report(&env.wait_console(&id, "FAKEVMM-REPORT", T));
        let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
        // the monitor's host pid: the supervisor's only child
        let children = std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).unwrap();
        let monitor: i64 = children
            .split_whitespace()
            .next()
            .expect("monitor child")
            .parse()
            .unwrap();
        if !pidns {
            assert_eq!(r["pid"].as_i64().unwrap(), monitor);
        }
        nix_kill(sup, 9);
        assert!(
            wait_dead(monitor, T),
            "monitor survived its supervisor (pidns={pidns})"
        );
        env.wait_status(&id, "stopped", T);
        assert!(env.urunc(&["delete", &id]).status.success());
        assert!(!env.root.join(&id).exists());
    }
    let env = Env::new();
    let b = env.bundle("b", "wait-term 0");
    let id = unique("force");
    assert!(env.create(&b, &id, &[]).status.success());
    assert!(env.urunc(&["start", &id]).status.success());
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let o = env.urunc(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!pid_alive(sup));
    assert!(!env.root.join(&id).exists());
}

fn nix_kill(pid: i64, sig: i32) {
    let st = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn pause_and_resume_really_freeze() {
    let env = Env::new();
    let b = env.bundle("b", "tick 20");
    let id = unique("pause");
    assert!(env.create(&b, &id, &[]).status.success());
    assert!(env.urunc(&["start", &id]).status.success());
    env.wait_console(&id, "FAKEVMM-TICK 3", T);
    let o = env.urunc(&["pause", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(env.status(&id), "paused");
    // list reads only the freezer of the container's cgroup: it must say the same, in both
    // formats
    let o = env.urunc(&["list", "--format", "json"]);
    let l: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).expect("list json");
    assert_eq!((l.len(), &l[0]["status"]), (1, &"paused".into()), "{l:?}");
    let table = String::from_utf8_lossy(&env.urunc(&["list"]).stdout).into_owned();
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|r| r.starts_with(&format!("{id}\t")) && r.contains("\tpaused\t")),
        "{table}"
    );
    let before = env.console_text(&id).matches("TICK").count();
    std::thread::sleep(Duration::from_millis(300));
    let after = env.console_text(&id).matches("TICK").count();
    assert_eq!(before, after, "ticks while paused");
    assert!(!env.urunc(&["pause", &id]).status.success(), "double pause");
    assert!(env.urunc(&["resume", &id]).status.success());
    assert_eq!(env.status(&id), "running");
    env.wait_console(&id, &format!("FAKEVMM-TICK {}", after + 3), T);
}

#[test]
fn ps_features_list_and_version_print_json() {
    let env = Env::new();
    let b = env.bundle("b", "wait-term 0");
    let id = unique("ps");
    assert!(env.create(&b, &id, &[]).status.success());
    assert!(env.urunc(&["start", &id]).status.success());
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let o = env.urunc(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_slice(&o.stdout).expect("ps json");
    assert!(pids.contains(&pid) && pids.len() == 2, "{pids:?}");
    let o = env.urunc(&["features"]);
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).expect("features json");
    assert_eq!(f["ociVersionMax"], "1.2.0");
    assert!(f["hooks"].as_array().unwrap().len() == 6);
    let o = env.urunc(&["list", "--format", "json"]);
    let l: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).expect("list json");
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["status"], "running");
    let o = env.urunc(&["--version"]);
    let v = String::from_utf8_lossy(&o.stdout);
    assert!(
        v.starts_with("urunc version ") && v.contains("\nspec: 1.2.0"),
        "{v}"
    );
}

#[test]
fn exec_fails_at_once_and_bad_arguments_give_usage() {
    let env = Env::new();
    // a unikernel (not urunit: args[0] is the application) has no process to enter, and a
    // urunit guest that is only created has not booted yet: both refused at once
    let uk = env.bundle_with("uk", "wait-term 0", |s| {
        s["annotations"]["com.urunc.unikernel.unikernelType"] = "unikraft".into();
        s["process"]["args"] = serde_json::json!(["/bin/app"]);
    });
    let b = env.bundle("b", "wait-term 0");
    for (bundle, want) in [(&uk, "exec is not supported"), (&b, "not running")] {
        let id = unique("exec");
        let c = env.create(bundle, &id, &[]);
        assert!(c.status.success(), "{}", stderr(&c));
        let t = std::time::Instant::now();
        let o = env.urunc(&[
            "exec",
            "--process",
            "/dev/null",
            "--detach",
            "--pid-file",
            "/tmp/x.pid",
            &id,
        ]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
        assert!(t.elapsed() < Duration::from_secs(2));
        let _ = env.urunc(&["delete", "--force", &id]);
    }
    for bad in [
        &["frobnicate", "x"][..],
        &["state"],
        &["kill", "a", "b", "c"],
        &["delete", "--bogus", "x"],
        &[],
    ] {
        let o = env.urunc(bad);
        assert!(!o.status.success(), "{bad:?}");
        assert!(stderr(&o).contains("usage"), "{bad:?}: {}", stderr(&o));
    }
}

#[test]
fn json_log_lines_follow_the_runc_contract() {
    let env = Env::new();
    let log = env.dir.path().join("log.json");
    let o = env
        .cmd()
        .args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "--debug",
            "state",
            "missing-one",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let mut last_error = None;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        let time = v["time"].as_str().expect("time");
        assert!(
            time.len() >= 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
            "{time}"
        );
        assert!(["debug", "info", "warning", "error"].contains(&v["level"].as_str().unwrap()));
        if v["level"] == "error" {
            last_error = Some(v["msg"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(last_error.as_deref(), Some("container does not exist"));
}

#[test]
fn bad_config_and_bad_bundles_fail_at_create_leaving_nothing() {
    let env = Env::with_config("[log]\nlevel = \"loud\"\n");
    let b = env.bundle("b", "report");
    let id = unique("badcfg");
    let o = env.create(&b, &id, &[]);
    assert!(!o.status.success());
    assert!(
        env.console_text(&id).contains("log.level"),
        "{}",
        env.console_text(&id)
    );
    assert!(!env.root.join(&id).exists());

    let env = Env::new();
    for (name, key, value, msg) in [
        (
            "t",
            "com.urunc.unikernel.unikernelType",
            "plan9",
            "not supported",
        ),
        (
            "m",
            "com.urunc.unikernel.hypervisor",
            "vmware",
            "not supported",
        ),
        (
            "k",
            "com.urunc.unikernel.binary",
            "/nope",
            "not found in the container rootfs",
        ),
        (
            "k2",
            "com.urunc.unikernel.binary",
            "../../etc/passwd",
            "must not start with \"..\"",
        ),
    ] {
        let b = env.bundle_with(name, "report", |s| s["annotations"][key] = value.into());
        let id = unique("bad");
        let o = env.create(&b, &id, &[]);
        assert!(!o.status.success(), "{name}");
        assert!(
            env.console_text(&id).contains(msg),
            "{name}: {}",
            env.console_text(&id)
        );
        assert!(!env.root.join(&id).exists(), "{name}: state left");
    }
    // a bad namespace path: the error names it and nothing is left
    let b = env.bundle_with("ns", "report", |s| {
        s["linux"]["namespaces"] =
            serde_json::json!([{"type": "network", "path": "/nonexistent/netns"}])
    });
    let id = unique("badns");
    assert!(!env.create(&b, &id, &[]).status.success());
    assert!(env.console_text(&id).contains("/nonexistent/netns"));
    assert!(!env.root.join(&id).exists());
    assert!(cgroup_dirs(&format!("urunc/{id}"))
        .iter()
        .all(|d| !d.exists()));
}

#[test]
fn timestamps_cover_every_phase_and_a_bad_destination_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ts.log");
    let env = Env::with_config(&format!(
        "[timestamps]\nenabled = true\ndestination = \"{}\"\n",
        dest.display()
    ));
    let b = env.bundle("b", "exit 0");
    let id = unique("ts");
    env.track(&id);
    let o = env
        .cmd()
        .args(["run", "--bundle", b.to_str().unwrap(), &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&dest).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["containerID"], id.as_str());
        assert!(v["time"].as_u64().unwrap() > 1_700_000_000_000_000_000);
        seen.insert(v["timestampID"].as_str().unwrap().to_string());
    }
    let want: std::collections::BTreeSet<String> = (0..19).map(|n| format!("TS{n:02}")).collect();
    assert_eq!(seen, want);

    let env = Env::with_config(
        "[timestamps]\nenabled = true\ndestination = \"/nonexistent/dir/ts.log\"\n",
    );
    let b = env.bundle("b", "exit 0");
    let id = unique("ts");
    env.track(&id);
    let o = env
        .cmd()
        .args(["run", "--bundle", b.to_str().unwrap(), &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn spec_writes_a_unikernel_config_once() {
    let env = Env::new();
    let dir = env.dir.path().join("specdir");
    std::fs::create_dir_all(&dir).unwrap();
    let o = env.urunc(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        v["annotations"]["com.urunc.unikernel.unikernelType"],
        "linux"
    );
    assert_eq!(v["process"]["args"][0], "/urunit");
    let o = env.urunc(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(!o.status.success(), "spec overwrote config.json");
    assert!(stderr(&o).contains("exists"), "{}", stderr(&o));
}
