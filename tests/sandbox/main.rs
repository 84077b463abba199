//! The monitor sandbox, through the real lifecycle: the fake monitor reports from inside what
//! it runs as (ids, capabilities, no_new_privs, seccomp, Landlock, cgroup, namespaces), and
//! probes each layer. Each test fails when its layer is removed. Needs root.

#[path = "../common/mod.rs"]
mod common;
mod escape;
mod guests;
mod layers;
mod resources;
mod rootless;

use common::{stderr, unique, Env};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub const T: Duration = Duration::from_secs(20);

/// Lets a non-root monitor traverse the test's temp dir (tempfile makes it 0700).
pub fn open_up(env: &Env) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod tempdir");
}

/// create + start `bundle` as `id`; panics with urunc's error otherwise.
pub fn run(env: &Env, bundle: &Path, id: &str) {
    let o = env.create(bundle, id, &[]);
    assert!(o.status.success(), "create {id}: {}", env.console_text(id));
    let o = env.urunc(&["start", id]);
    assert!(o.status.success(), "start {id}: {}", stderr(&o));
}

/// Runs `script` to completion and returns the console text.
pub fn run_script(env: &Env, name: &str, script: &str, tweak: impl FnOnce(&mut Value)) -> String {
    let id = unique(name);
    let b = env.bundle_with(&id, script, tweak);
    run(env, &b, &id);
    env.wait_status(&id, "stopped", T);
    env.console_text(&id)
}

pub fn set_user(spec: &mut Value, uid: u32, gid: u32, extra: &[u32]) {
    spec["process"]["user"] = json!({"uid": uid, "gid": gid, "additionalGids": extra});
}

/// `Uid:`/`Gid:` fields of /proc/<pid>/status: real, effective, saved, fs.
pub fn ids(field: &Value) -> Vec<u32> {
    field
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .map(|s| s.parse().expect("id"))
        .collect()
}

pub fn caps_zero(r: &Value) {
    for k in ["cap_eff", "cap_prm", "cap_inh", "cap_bnd", "cap_amb"] {
        assert_eq!(r[k], "0000000000000000", "{k} in {r}");
    }
}

pub fn line_with<'a>(console: &'a str, prefix: &str) -> &'a str {
    console
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{console}"))
}

pub fn proc_status(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

pub fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or("")
        .trim()
}

pub fn monitor_pid(supervisor: i64) -> i64 {
    let children =
        std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children")).unwrap();
    children
        .split_whitespace()
        .next()
        .expect("no monitor")
        .parse()
        .unwrap()
}
