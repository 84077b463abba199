//! Tests of the command-line parser.

use super::*;

fn p(args: &[&str]) -> Result<(Global, Command), String> {
    parse(args.iter().map(OsString::from).collect())
}

#[test]
fn shim_create_invocation() {
    let (g, c) = p(&[
        "--root",
        "/run/containerd/runc/default",
        "--log",
        "/b/log.json",
        "--log-format",
        "json",
        "create",
        "--bundle",
        "/b",
        "--pid-file",
        "/b/init.pid",
        "--no-pivot",
        "abc",
    ])
    .unwrap();
    assert!(g.log_json);
    assert_eq!(
        g.root.unwrap(),
        PathBuf::from("/run/containerd/runc/default")
    );
    let Command::Create(c) = c else { panic!() };
    assert_eq!((c.id.as_str(), c.bundle.to_str().unwrap()), ("abc", "/b"));
    assert_eq!(c.pid_file.unwrap(), PathBuf::from("/b/init.pid"));
}

#[test]
fn kill_signal_forms() {
    let Command::Kill { id, signal, all } = p(&["kill", "--all", "abc", "9"]).unwrap().1 else {
        panic!()
    };
    assert_eq!((id.as_str(), signal.as_str(), all), ("abc", "9", true));
    let Command::Kill { signal, .. } = p(&["kill", "abc"]).unwrap().1 else {
        panic!()
    };
    assert_eq!(signal, "SIGTERM");
    assert!(p(&["kill"]).is_err());
}

#[test]
fn bad_input_is_refused() {
    assert!(p(&["frobnicate", "x"])
        .unwrap_err()
        .contains("unknown command"));
    assert!(p(&["--log-format", "xml", "state", "x"])
        .unwrap_err()
        .contains("invalid log-format"));
    assert!(p(&["state"]).is_err());
    assert!(p(&["state", "a", "b"]).is_err());
    assert!(p(&["delete", "--bogus", "a"]).is_err());
    assert!(p(&["ps", "--format", "yaml", "a"])
        .unwrap_err()
        .contains("invalid format option"));
    assert!(p(&[]).is_err());
}

#[test]
fn eq_forms_and_exec() {
    let (g, c) = p(&[
        "--systemd-cgroup",
        "--rootless=true",
        "update",
        "--resources=/tmp/r.json",
        "abc",
    ])
    .unwrap();
    assert!(g.systemd_cgroup);
    let Command::Update { resources, .. } = c else {
        panic!()
    };
    assert_eq!(resources.as_deref(), Some("/tmp/r.json"));
    let Command::Exec(x) = p(&[
        "exec",
        "--process",
        "/tmp/p.json",
        "--detach",
        "--pid-file",
        "/x",
        "abc",
    ])
    .unwrap()
    .1
    else {
        panic!()
    };
    assert_eq!(x.id, "abc");
}
