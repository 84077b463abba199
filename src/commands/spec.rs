//! `spec`: writes a starting `config.json` for a unikernel bundle, as `runc spec` does.

use crate::error::{Error, Result};
use std::path::Path;

pub fn template() -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/urunit", "/bin/sh", "-c", "echo hello from a urunc guest"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/"
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "urunc",
        "annotations": {
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": "/kernel",
            "com.urunc.unikernel.initrd": "/initrd"
        },
        "linux": {
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "resources": { "memory": { "limit": 268435456 } },
            "seccomp": { "defaultAction": "SCMP_ACT_ALLOW" }
        }
    })
}

pub fn run(bundle: &Path) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::Msg(format!(
            "File {} exists. Remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_string_pretty(&template()).unwrap_or_default();
    std::fs::write(&path, text + "\n")
        .map_err(crate::error::io(format!("write {}", path.display())))?;
    Ok(0)
}
