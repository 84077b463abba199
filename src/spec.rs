//! The parts of the OCI runtime-spec `config.json` that urunc reads.
//!
//! Our own small serde structs instead of the `oci-spec` crate: that crate alone would cost
//! about 1.4 MB of the 3 MB binary budget. Unknown fields are ignored, as the spec requires.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub oci_version: String,
    pub process: Option<Process>,
    pub root: Option<Root>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    pub hooks: Option<Hooks>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub linux: Option<Linux>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub no_new_privileges: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub umask: Option<u32>,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Root {
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub destination: String,
    #[serde(default, rename = "type")]
    pub typ: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    #[serde(default)]
    pub prestart: Vec<Hook>,
    #[serde(default)]
    pub create_runtime: Vec<Hook>,
    #[serde(default)]
    pub create_container: Vec<Hook>,
    #[serde(default)]
    pub start_container: Vec<Hook>,
    #[serde(default)]
    pub poststart: Vec<Hook>,
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Hook {
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default)]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(default)]
    pub gid_mappings: Vec<IdMapping>,
    #[serde(default)]
    pub cgroups_path: Option<String>,
    #[serde(default)]
    pub resources: Option<Resources>,
    /// Only its presence matters: absent means seccomp=unconfined (urunc's rule).
    #[serde(default)]
    pub seccomp: Option<serde_json::Value>,
    #[serde(default)]
    pub rootfs_propagation: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub typ: String,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    /// Everything else (devices, blockIO, hugepageLimits, network, rdma, unified): kept to
    /// report clearly what is not applied.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("failed to read specification file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid OCI spec {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("invalid OCI spec: {0}")]
    Invalid(&'static str),
}

impl Spec {
    pub fn load(bundle: &std::path::Path) -> Result<Spec, SpecError> {
        let path = bundle.join("config.json");
        let data = read_bounded(&path).map_err(|source| SpecError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_slice(&data).map_err(|source| SpecError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// The rootfs directory on the host (root.path is relative to the bundle unless absolute).
    pub fn rootfs(&self, bundle: &std::path::Path) -> Result<std::path::PathBuf, SpecError> {
        let root = self
            .root
            .as_ref()
            .ok_or(SpecError::Invalid("root section is required"))?;
        Ok(bundle.join(&root.path))
    }

    pub fn process(&self) -> Result<&Process, SpecError> {
        self.process
            .as_ref()
            .ok_or(SpecError::Invalid("process section is required"))
    }

    pub fn linux(&self) -> Result<&Linux, SpecError> {
        self.linux
            .as_ref()
            .ok_or(SpecError::Invalid("linux section is required"))
    }

    pub fn hooks(&self) -> Hooks {
        self.hooks.clone().unwrap_or_default()
    }
}

/// Bound on config.json: far above any real spec, far below what would hurt.
const MAX_CONFIG_JSON: u64 = 16 << 20;

/// config.json: a bounded regular file, never a FIFO that would block `create`.
fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    crate::sys::read_regular_capped(path, MAX_CONFIG_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal_runc_spec_and_ignores_unknown_fields() {
        let s: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","process":{"user":{"uid":1,"gid":2,"additionalGids":[3]},
            "args":["sh"],"cwd":"/","capabilities":{"bounding":[]}},"root":{"path":"rootfs"},
            "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"}],
            "resources":{"memory":{"limit":1048576},"devices":[{"allow":false,"access":"rwm"}]}}}"#,
        )
        .unwrap();
        let p = s.process().unwrap();
        assert_eq!(
            (p.user.uid, p.user.gid, p.user.additional_gids.clone()),
            (1, 2, vec![3])
        );
        let l = s.linux().unwrap();
        assert_eq!(l.namespaces[1].path.as_deref(), Some("/proc/1/ns/net"));
        let r = l.resources.as_ref().unwrap();
        assert_eq!(r.memory.as_ref().unwrap().limit, Some(1048576));
        assert!(r.other.contains_key("devices"));
        assert!(l.seccomp.is_none());
    }

    #[test]
    fn missing_sections_give_clear_errors() {
        let s: Spec = serde_json::from_str("{}").unwrap();
        assert_eq!(
            s.process().unwrap_err().to_string(),
            "invalid OCI spec: process section is required"
        );
        assert_eq!(
            s.linux().unwrap_err().to_string(),
            "invalid OCI spec: linux section is required"
        );
    }
}
