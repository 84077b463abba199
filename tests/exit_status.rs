//! The container's exit status under the supervisor's rules (`src/supervisor/status.rs`),
//! end to end with the fake monitor standing in for QEMU: the guest's own report wins, a
//! stop by signal is 128+N, and a guest that reported nothing is never 0.

mod common;
use common::*;
use std::process::Stdio;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn run(env: &Env, b: &std::path::Path, id: &str) -> std::process::Output {
    env.track(id);
    env.cmd()
        .args(["run", "--bundle", b.to_str().unwrap(), id])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn unikraft(s: &mut serde_json::Value) {
    s["annotations"]["com.urunc.unikernel.unikernelType"] = "unikraft".into();
    s["process"]["args"] = serde_json::json!(["/kernel"]);
}

#[test]
fn the_guest_report_wins_and_silence_is_not_success() {
    let env = Env::new();
    // a urunit guest whose program exited 3 (the fake writes HELLO and EXIT 3, exits 0)
    let o = run(&env, &env.bundle("g3", "exit 3"), &unique("g3"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // QEMU exits 0 but the guest said nothing: not the program's success
    let o = run(
        &env,
        &env.bundle("silent", "monitor-exit 0"),
        &unique("silent"),
    );
    assert_eq!(o.status.code(), Some(255), "{}", stderr(&o));
    // QEMU's own failure keeps its status
    let o = run(&env, &env.bundle("fail", "monitor-exit 1"), &unique("fail"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // a unikernel with no status carrier: the monitor's clean exit is all there is
    let o = run(
        &env,
        &env.bundle_with("u0", "exit 0", unikraft),
        &unique("u0"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_unikernel_stopped_by_sigterm_reports_143() {
    let env = Env::new();
    let b = env.bundle_with("term", "wait-term 0", unikraft);
    let id = unique("term");
    env.track(&id);
    let mut child = env
        .cmd()
        .args(["run", "--bundle", b.to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.wait_status(&id, "running", T);
    // docker stop: SIGTERM, which the supervisor forwards; the monitor then exits 0
    assert!(env.urunc(&["kill", &id, "TERM"]).status.success());
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(128 + 15));
}
