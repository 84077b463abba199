//! An edge node upgrades urunc while its containers run: a container whose `state.json` the
//! previous release wrote is still managed by this binary (state, start, kill, delete).
//!
//! `fixtures/state-v0.json` was written by `urunc create` built from e77226c (the last commit
//! before `stateVersion`), with the fake monitor as every monitor. The test creates a live
//! container, then replaces its state file by the fixture carrying that container's own
//! facts (id, pids, paths, cgroup, netns): everything else, the format above all, is the old
//! release's.

mod common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The fixture, with the facts of the live container `live` put in (fields both formats have).
fn old_format_state(live: &serde_json::Value) -> serde_json::Value {
    let mut old: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/state-v0.json")).unwrap();
    assert!(
        old.get("stateVersion").is_none(),
        "the fixture predates stateVersion"
    );
    for k in ["id", "pid", "pidStart", "bundle", "rootfs", "created"] {
        old[k] = live[k].clone();
    }
    for k in ["cgroup", "netns", "tap", "config"] {
        old["urunc"][k] = live["urunc"][k].clone();
    }
    old
}

#[test]
fn a_container_of_the_previous_release_is_still_managed() {
    let env = Env::new();
    let b = env.bundle("b", "print up\nreport\nwait-term 0");
    let id = unique("upgrade");
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    let path = env.root.join(&id).join("state.json");
    let live: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(live["stateVersion"].as_u64().is_some_and(|v| v >= 1));
    std::fs::write(&path, old_format_state(&live).to_string()).unwrap();

    let st = env.state(&id).expect("state of an old-format container");
    assert_eq!(
        (st["status"].as_str(), st["id"].as_str()),
        (Some("created"), Some(id.as_str()))
    );
    let pid = st["pid"].as_i64().unwrap();
    let o = env.urunc(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    env.wait_console(&id, "FAKEVMM-REPORT", T);
    assert_eq!(env.status(&id), "running");
    let o = env.urunc(&["kill", &id, "15"]);
    assert!(o.status.success(), "kill: {}", stderr(&o));
    env.wait_console(&id, "FAKEVMM-TERM", T);
    env.wait_status(&id, "stopped", T);
    let o = env.urunc(&["delete", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    assert!(!env.root.join(&id).exists(), "state directory left behind");
    assert!(wait_dead(pid, T), "the container process outlived delete");
    for d in cgroup_dirs(&format!("urunc/{id}")) {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}
