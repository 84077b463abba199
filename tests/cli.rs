//! The command line as a user meets it: every verb's `--help`, one error format whatever verb
//! failed, output into a closed pipe, the supervisor's name in `ps`.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const VERBS: &[&str] = &[
    "create", "run", "start", "state", "kill", "delete", "ps", "list", "pause", "resume", "update",
    "exec", "features", "spec", "check", "help", "version",
];

#[test]
fn every_verb_prints_its_usage_and_exits_0() {
    let env = Env::new();
    for verb in VERBS {
        for flag in ["--help", "-h"] {
            let o = env.urunc(&[verb, flag]);
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(o.status.code(), Some(0), "{verb} {flag}: {}", stderr(&o));
            let first = out.lines().next().unwrap_or("");
            assert!(
                first.starts_with("usage: urunc") && first.contains(verb),
                "{verb} {flag}: {out}"
            );
        }
        // runc's spelling too: urunc help VERB
        let o = env.urunc(&["help", verb]);
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(o.stdout, env.urunc(&[verb, "--help"]).stdout, "{verb}");
    }
    // --help after a container id and options still asks for help, as runc's does
    let o = env.urunc(&["create", "--bundle", "/nonexistent", "x", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        env.urunc(&["frobnicate", "--help"]).status.code() != Some(0),
        "an unknown verb is an error"
    );
}

/// Every line of `text` is a JSON log object with a lowercase level, a message and an RFC3339
/// time in seconds (the precision of runc's, which writes into the same file when delegated).
fn all_json(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            let t = v["time"].as_str().unwrap_or_default();
            assert!(
                t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
                "time {t:?} in {l}"
            );
            assert!(v["msg"].is_string() && v["level"].is_string(), "{l}");
            v
        })
        .collect()
}

#[test]
fn with_json_logging_every_error_is_json() {
    let env = Env::new();
    let b = env.bundle("b", "exit 0");
    let cases: &[&[&str]] = &[
        &["create", "--bundle", "/nonexistent", "c1"],
        &["run", "--bundle", "/nonexistent", "c2"],
        &["run", "--bogus", "c3"],
        &["create", "--bundle", b.to_str().unwrap()],
        &["start", "no-such"],
        &["kill", "no-such", "KILL"],
        &["delete", "no-such"],
        &["pause", "no-such"],
        &["update", "--resources", "/nonexistent", "no-such"],
        &["--bogus-global", "state", "x"],
    ];
    for (i, args) in cases.iter().enumerate() {
        // into a log file: the file holds the error as JSON
        let log = env.dir.path().join(format!("log{i}.json"));
        let o = env
            .cmd()
            .args(["--log", log.to_str().unwrap(), "--log-format", "json"])
            .args(*args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!o.status.success(), "{args:?}");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines = all_json(&text);
        assert!(
            lines.iter().any(|l| l["level"] == "error"),
            "{args:?}: no error in the log: {text}"
        );
        // without --log the log is stderr: JSON there too, nothing else
        let o = env
            .cmd()
            .args(["--log-format", "json"])
            .args(*args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let lines = all_json(&stderr(&o));
        assert!(
            lines.iter().any(|l| l["level"] == "error"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_closed_pipe_ends_urunc_quietly() {
    let env = Env::new();
    for args in [
        &["features"][..],
        &["list"],
        &["--help"],
        &["spec", "--help"],
    ] {
        let (rd, wr) = nix::unistd::pipe().unwrap();
        drop(rd); // the reader is gone before urunc writes: like `| grep -q` after its match
        let o = env
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(wr))
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(err.is_empty(), "{args:?}: {err}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), Some(13), "{args:?}: ended by SIGPIPE");
    }
}

#[test]
fn the_supervisor_is_named_after_what_it_is() {
    let env = Env::new();
    let b = env.bundle("b", "wait-term 0");
    let id = unique("named");
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim_end(), "urunc-superviso");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let words: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    assert_eq!(words, ["urunc", "supervisor", id.as_str()]);
    // what ps(1) shows
    let ps = Command::new("ps")
        .args(["-o", "args=", "-p", &pid.to_string()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ps.stdout).trim(),
        format!("urunc supervisor {id}")
    );
    let o = env.urunc(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    let o = env.urunc(&["kill", &id, "KILL"]);
    assert!(o.status.success(), "kill: {}", stderr(&o));
    assert!(wait_dead(pid, Duration::from_secs(10)));
    let o = env.urunc(&["delete", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
}
