//! `state.json`: what `create` decided, frozen for the later commands. Written atomically
//! (temp file, fsync, rename) in `<root>/<id>/`, mode 0700.

use crate::config::Config;
use crate::sandbox::cgroups::Cgroup;
use crate::unikernel::UnikernelConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (ticks since boot): a recycled pid is not our process.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
    /// urunc's own record; its presence tells our state files from the delegate's.
    pub urunc: Extra,
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extra {
    pub unikernel: UnikernelConfig,
    pub config: Config,
    pub cgroup: Option<Cgroup>,
    /// The container has its own PID namespace (the supervisor is its PID 1).
    pub pid_ns: bool,
    /// Network namespace path the container's tap lives in (for cleanup).
    pub netns: Option<PathBuf>,
    /// Name of this container's tap, once created.
    pub tap: Option<String>,
    /// The spec's hooks, kept for the commands that run them after create (poststart, poststop).
    pub hooks: crate::spec::Hooks,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container does not exist")]
    NotExist,
    #[error("container with given ID already exists")]
    Exists,
    #[error("not a urunc container")]
    Foreign,
    /// Ours, but `create` did not finish (it failed, was killed, or is still running).
    #[error("container was not fully created (its create failed, was killed or is still running): `delete --force` removes what it left")]
    Incomplete,
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("corrupt state file {path}: {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.display().to_string();
    move |source| StateError::Io { what, path, source }
}

impl State {
    pub fn load(root: &Path, id: &str) -> Result<State, StateError> {
        let dir = super::dir(root, id);
        let path = dir.join(super::STATE_FILE);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if !dir.exists() {
                    StateError::NotExist
                } else if super::Journal::load(&dir).is_ok_and(|j| j.is_some()) {
                    StateError::Incomplete
                } else {
                    StateError::Foreign
                });
            }
            Err(e) => return Err(io("read", &path)(e)),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&data).map_err(|source| StateError::Corrupt {
                path: path.display().to_string(),
                source,
            })?;
        if v.get("urunc").is_none() {
            return Err(StateError::Foreign);
        }
        let mut st: State = serde_json::from_value(v).map_err(|source| StateError::Corrupt {
            path: path.display().to_string(),
            source,
        })?;
        st.dir = dir;
        Ok(st)
    }

    /// Re-reads the state file of this container (another process may have written it).
    pub fn reload(&mut self) -> Result<(), StateError> {
        let root = self.dir.parent().unwrap_or(Path::new("/"));
        *self = State::load(root, &self.id)?;
        Ok(())
    }

    pub fn save(&self) -> Result<(), StateError> {
        let data = serde_json::to_vec(self).expect("state serializes");
        write_atomic(&self.dir.join(super::STATE_FILE), &data, 0o600)
    }

    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.urunc.cgroup.as_ref()
    }

    /// The OCI state as `state` prints it and hooks receive it.
    pub fn oci(&self, status: &str) -> serde_json::Value {
        let pid = if status == "stopped" { 0 } else { self.pid };
        serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": pid,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "annotations": self.annotations,
            "owner": self.owner,
        })
    }
}

/// Writes `path` atomically: a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io("write", path))
}
