//! `features`: what this runtime honours, decided at compile time (runtime-spec features.md).

use crate::error::Result;

pub fn json() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "uts", "time"],
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": { "enabled": true },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "org.urunc.version": env!("CARGO_PKG_VERSION"),
            "org.urunc.monitors": crate::monitor::NAMES.join(","),
            "org.urunc.unikernel-types": crate::guest::TYPES.join(",")
        },
        "potentiallyUnsafeConfigAnnotations": [crate::unikernel::PREFIX]
    })
}

pub fn run() -> Result<i32> {
    println!(
        "{}",
        serde_json::to_string_pretty(&json()).unwrap_or_default()
    );
    Ok(0)
}
