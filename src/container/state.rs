//! `state.json`: what `create` decided, frozen for the later commands. Written atomically
//! (temp file, rename) in `<root>/<id>/`, mode 0700; fsynced before the rename unless the
//! directory is on a memory filesystem (`write_atomic`).

use super::files::{read_state_file, write_atomic};
use crate::config::Timestamps;
use crate::sandbox::cgroups::Cgroup;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The format of `state.json` this binary writes. 0 (the field absent) is the format of the
/// releases before the field existed, which this binary still reads; raise it when a change
/// is not readable by the previous release, and keep reading the older formats (an edge node
/// upgrades urunc while its containers run: tests/upgrade.rs).
/// 2: the unikernel config, `pidNs` and the whole config file are no longer stored (only its
/// `[timestamps]`); formats 0 and 1 are still read (`state_format`).
pub const STATE_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The format of this file (`STATE_VERSION` when written by this binary).
    #[serde(default)]
    pub state_version: u32,
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
#[serde(rename_all = "camelCase", from = "super::state_format::AnyFormat")]
pub struct Extra {
    /// The guest type (`GuestKind`'s name): `exec` enters only guests with processes.
    pub guest: String,
    /// The config file's `[timestamps]` as `create` read it (`start` logs there too).
    pub timestamps: Timestamps,
    pub cgroup: Option<Cgroup>,
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
    #[error("{0}")]
    Root(String),
    /// Ours, but `create` did not finish (it failed, was killed, or is still running).
    #[error("container was not fully created (its create failed, was killed or is still running): `delete --force` removes what it left")]
    Incomplete,
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("state file {path} has format {version}, newer than this urunc reads (up to {STATE_VERSION}): manage the container with the urunc that created it, or upgrade")]
    Newer { path: String, version: u32 },
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
    /// Makes the state root (0711, as runc's: the monitor, which runs as the container's user,
    /// must traverse it to its work directory) unless it exists; a root that is a dangling
    /// symlink or a file is said to be so.
    pub fn create_root(root: &Path) -> Result<(), StateError> {
        use std::os::unix::fs::DirBuilderExt;
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
        {
            return Err(match std::fs::symlink_metadata(root) {
                Ok(m) if m.file_type().is_symlink() => StateError::Root(format!(
                    "--root {} is a symlink to a missing directory: remove it or point --root at a directory",
                    root.display()
                )),
                Ok(m) if !m.is_dir() => StateError::Root(format!(
                    "--root {} exists and is not a directory: remove it or choose another --root",
                    root.display()
                )),
                _ => io("create state root", root)(e),
            });
        }
        Ok(())
    }

    pub fn load(root: &Path, id: &str) -> Result<State, StateError> {
        let dir = super::dir(root, id);
        let path = dir.join(super::STATE_FILE);
        let data = match read_state_file(&path) {
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
        let mut st = State::parse(&data)
            .map_err(|source| StateError::Corrupt {
                path: path.display().to_string(),
                source,
            })?
            .ok_or(StateError::Foreign)?;
        if st.state_version > STATE_VERSION {
            return Err(StateError::Newer {
                path: path.display().to_string(),
                version: st.state_version,
            });
        }
        st.dir = dir;
        Ok(st)
    }

    /// Parses a state file; `Ok(None)`: valid JSON but not ours (no `urunc` section).
    /// One pass straight into `State`; only a file that is not one (rare: another runtime's,
    /// or a broken one) is read again, skipping values, to tell which.
    pub fn parse(data: &[u8]) -> Result<Option<State>, serde_json::Error> {
        let e = match serde_json::from_slice(data) {
            Ok(st) => return Ok(Some(st)),
            Err(e) => e,
        };
        /// Whether the key was there at all (even as null: that is a broken state file).
        #[derive(Default)]
        struct Seen(bool);
        impl<'de> Deserialize<'de> for Seen {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                serde::de::IgnoredAny::deserialize(d).map(|_| Seen(true))
            }
        }
        #[derive(Deserialize)]
        struct Probe {
            #[serde(default)]
            urunc: Seen,
        }
        match serde_json::from_slice::<Probe>(data) {
            Ok(Probe { urunc: Seen(false) }) => Ok(None),
            _ => Err(e),
        }
    }

    /// Writes the state in this binary's format (`STATE_VERSION`, whatever format it was read in).
    pub fn save(&self) -> Result<(), StateError> {
        let mut st = self.clone();
        st.state_version = STATE_VERSION;
        let data = serde_json::to_vec(&st).expect("state serializes");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tells_foreign_from_corrupt() {
        assert!(State::parse(b"{\"ociVersion\":\"1\"}").unwrap().is_none());
        assert!(State::parse(b"{\"urunc\":{}}").is_err());
        assert!(State::parse(b"{\"urunc\":null}").is_err());
        assert!(State::parse(b"[1]").is_err());
        assert!(State::parse(b"not json").is_err());
    }

    /// Formats 0 and 1 (tests/fixtures: written by urunc at e77226c and 6bc3f46) stored the whole
    /// config file: its `[timestamps]` is what is kept; the dropped fields are skipped.
    #[test]
    fn older_formats_keep_their_timestamps_config() {
        for (fixture, version) in [
            (&include_bytes!("../../tests/fixtures/state-v0.json")[..], 0),
            (&include_bytes!("../../tests/fixtures/state-v1.json")[..], 1),
        ] {
            let mut v: serde_json::Value = serde_json::from_slice(fixture).unwrap();
            assert!(v["urunc"]["unikernel"].is_object() && v["urunc"]["config"].is_object());
            v["urunc"]["config"]["timestamps"] =
                serde_json::json!({"enabled": true, "destination": "/var/log/ts-test.log"});
            let st = State::parse(v.to_string().as_bytes()).unwrap().unwrap();
            assert_eq!(st.state_version, version);
            assert!(st.urunc.timestamps.enabled, "format {version}");
            assert_eq!(
                st.urunc.timestamps.destination,
                Path::new("/var/log/ts-test.log")
            );
            assert_eq!(st.urunc.hooks.prestart.len(), 0);
            // written back in this binary's format: no old field survives
            let out = serde_json::to_value(&st).unwrap();
            let keys: Vec<&String> = out["urunc"].as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                ["cgroup", "guest", "hooks", "netns", "tap", "timestamps"]
            );
            // the guest type comes from the old formats' unikernel configuration
            assert_eq!(st.urunc.guest, v["urunc"]["unikernel"]["unikernel_type"]);
            assert!(!st.urunc.guest.is_empty());
            let again = State::parse(out.to_string().as_bytes()).unwrap().unwrap();
            assert_eq!(again.urunc.timestamps, st.urunc.timestamps);
        }
    }

    /// A state file of the release before `stateVersion` (tests/fixtures/state-v0.json, written
    /// by urunc at e77226c) reads as format 0; one from a newer format is refused, saying why.
    #[test]
    fn formats_older_are_read_and_newer_refused() {
        let old = include_bytes!("../../tests/fixtures/state-v0.json");
        let st = State::parse(old).unwrap().unwrap();
        assert_eq!((st.state_version, st.id.as_str()), (0, "upgrade-fixture"));
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("upgrade-fixture");
        std::fs::create_dir(&dir).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(old).unwrap();
        v["stateVersion"] = (STATE_VERSION + 1).into();
        std::fs::write(dir.join("state.json"), v.to_string()).unwrap();
        let e = State::load(root.path(), "upgrade-fixture").unwrap_err();
        assert!(matches!(e, StateError::Newer { version, .. } if version == STATE_VERSION + 1));
        v["stateVersion"] = STATE_VERSION.into();
        std::fs::write(dir.join("state.json"), v.to_string()).unwrap();
        let mut st = State::load(root.path(), "upgrade-fixture").unwrap();
        st.state_version = 0;
        st.save().unwrap();
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
        assert_eq!(
            saved["stateVersion"], STATE_VERSION,
            "saved in this binary's format"
        );
    }
}
