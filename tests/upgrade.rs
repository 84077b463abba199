//! An edge node upgrades urunc while its containers run: a container whose `state.json` a
//! previous release wrote is still managed by this binary (state, start, kill, delete).
//!
//! The fixtures were written by `urunc create` with the fake monitor as every monitor:
//! `fixtures/state-v0.json` built from e77226c (the last commit before `stateVersion`),
//! `fixtures/state-v1.json` from 6bc3f46 (format 1: the unikernel config, `pidNs` and the whole
//! config file still stored). The test creates a live container, then replaces its state file
//! by a fixture carrying that container's own facts (id, pids, paths, cgroup, netns, tap):
//! everything else, the format above all, is the old release's.

mod common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The fixture, with the facts of the live container `live` put in (fields every format has).
fn old_format_state(fixture: &[u8], live: &serde_json::Value) -> serde_json::Value {
    let mut old: serde_json::Value = serde_json::from_slice(fixture).unwrap();
    assert!(
        old["urunc"]["config"].is_object() && old["urunc"].get("timestamps").is_none(),
        "the fixture predates format 2"
    );
    for k in ["id", "pid", "pidStart", "bundle", "rootfs", "created"] {
        old[k] = live[k].clone();
    }
    for k in ["cgroup", "netns", "tap"] {
        old["urunc"][k] = live["urunc"][k].clone();
    }
    old
}

#[test]
fn containers_of_the_previous_releases_are_still_managed() {
    for (fixture, version) in [
        (&include_bytes!("fixtures/state-v0.json")[..], None),
        (&include_bytes!("fixtures/state-v1.json")[..], Some(1)),
    ] {
        let old: serde_json::Value = serde_json::from_slice(fixture).unwrap();
        assert_eq!(old["stateVersion"].as_u64(), version, "fixture's format");
        managed(fixture);
    }
}

/// A container whose state file is `fixture`'s format goes through its whole life.
fn managed(fixture: &[u8]) {
    let env = Env::new();
    let b = env.bundle("b", "print up\nreport\nwait-term 0");
    let id = unique("upgrade");
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    let path = env.root.join(&id).join("state.json");
    let live: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(live["stateVersion"].as_u64().is_some_and(|v| v >= 2));
    std::fs::write(&path, old_format_state(fixture, &live).to_string()).unwrap();

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
