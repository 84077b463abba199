//! A SIGKILL at any named point of `start`, of the container process after the barrier, of
//! `delete`, and (in `every_failed_or_killed_step_leaves_nothing`, whose trace includes them)
//! between writing a state file's temp copy and renaming it: `state` and `list` still answer
//! clearly, `delete --force` removes everything, and the leftover check finds nothing. The
//! state root skips fsync on tmpfs (`container::write_atomic`): what a kill can leave is the
//! same either way, as the page cache survives a killed process.

use super::*;

/// The points a full lifecycle passes after `create` (from the trace a debug build writes).
fn lifecycle_points(env: &Env, net: &TestNet, b: &Path) -> Vec<String> {
    let id = unique("trace-life");
    let trace = env.dir.path().join("trace-life");
    let vars = [("URUNC_FAULT_TRACE", trace.to_str().unwrap())];
    let w = watch(env, &id, net);
    let o = create(env, b, &id, &w, &vars);
    assert!(o.status.success(), "create: {}", o.text);
    let s = verb(env, &w, &vars, &["start", &id]);
    assert!(s.status.success(), "start: {}", text(&s));
    env.wait_status(&id, "stopped", SETTLE);
    let d = verb(env, &w, &vars, &["delete", &id]);
    assert!(d.status.success(), "delete: {}", text(&d));
    assert_eq!(w.settle(SETTLE), vec![], "a clean lifecycle left something");
    let mut v: Vec<String> = Vec::new();
    for l in std::fs::read_to_string(&trace).expect("trace").lines() {
        let after_create = l.starts_with("start:")
            || l.starts_with("delete:")
            || l == "container:barrier"
            || l == "container:started";
        if after_create && !v.iter().any(|p| p == l) {
            v.push(l.to_string());
        }
    }
    v
}

/// `urunc ARGS` with the watch's tag and extra environment.
fn verb(env: &Env, w: &Watch, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = env.cmd();
    c.env(TAG_VAR, &w.tag);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run urunc")
}

#[test]
fn a_kill_during_start_or_delete_leaves_a_state_that_state_and_delete_force_handle() {
    let _serial = serial();
    let env = Env::new();
    let net = TestNet::new();
    let b = bundle(&env, "b", &net, |_| {});
    let points = lifecycle_points(&env, &net, &b);
    for must in [
        "start:barrier-opened",
        "container:barrier",
        "delete:cgroup",
        "delete:state-file",
    ] {
        assert!(points.iter().any(|p| p == must), "{must}: {points:?}");
    }
    for p in &points {
        let id = unique("killed");
        let w = watch(&env, &id, &net);
        let spec = format!("{p}:kill");
        let vars = [("URUNC_FAULT", spec.as_str())];
        let o = create(&env, &b, &id, &w, &vars);
        assert!(o.status.success(), "{spec}: create: {}", o.text);
        let s = verb(&env, &w, &vars, &["start", &id]);
        if p.starts_with("start:") {
            assert_eq!(s.status.signal(), Some(9), "{spec}: start: {}", text(&s));
        }
        if p.starts_with("delete:") {
            assert!(s.status.success(), "{spec}: start: {}", text(&s));
            env.wait_status(&id, "stopped", SETTLE);
            let d = verb(&env, &w, &vars, &["delete", &id]);
            assert_eq!(d.status.signal(), Some(9), "{spec}: delete: {}", text(&d));
        }
        // a status, or the half-made container's message that names the way out
        let st = env.urunc(&["state", &id]);
        let answer = text(&st);
        if st.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("state json");
            let status = v["status"].as_str().unwrap_or("");
            assert!(
                ["created", "running", "stopped"].contains(&status),
                "{spec}: {answer}"
            );
        } else {
            assert!(answer.contains("delete --force"), "{spec}: state: {answer}");
        }
        let l = env.urunc(&["list"]);
        assert!(l.status.success(), "{spec}: list: {}", text(&l));
        let d = env.urunc(&["delete", "--force", &id]);
        assert!(d.status.success(), "{spec}: delete --force: {}", text(&d));
        assert_eq!(w.settle(SETTLE), vec![], "{spec} left this behind");
    }
}
