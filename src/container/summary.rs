//! What `list` needs of a state file: the OCI fields and what the status is derived from. The
//! rest of `State` (the config, the unikernel's parameters, the hooks: most of the file) is
//! skipped by the parser without being built, which makes `list` cheap with many containers.

use super::state::{read_state_file, STATE_VERSION};
use super::Status;
use crate::sandbox::cgroups::Cgroup;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The fields of `State` that `list` shows or derives the status from, read from the same
/// file (the field names are `State`'s: a test below checks that a saved `State` reads back).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(default)]
    pub state_version: u32,
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
    /// Required: its presence tells our state files from the delegate's.
    pub urunc: Ours,
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Deserialize)]
pub struct Ours {
    /// The freezer of the container's cgroup, the one file of it the status needs.
    #[serde(default, rename = "cgroup")]
    pub freezer: Option<Freezer>,
}

/// Of the container's `Cgroup`, where its freezer is: the v1 hierarchies (one entry per mount,
/// about ten here) are read past, only the freezer's directory kept.
#[derive(Debug)]
pub struct Freezer(Cgroup);

impl<'de> Deserialize<'de> for Freezer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Lite<'a> {
            #[serde(borrow, default)]
            v1: Vec<(Cow<'a, str>, Cow<'a, str>)>,
            #[serde(default)]
            v2: Option<PathBuf>,
            #[serde(default)]
            unified: bool,
        }
        let l = Lite::deserialize(d)?;
        let v1 =
            l.v1.into_iter()
                .find(|(c, _)| c.split(',').any(|x| x == "freezer"))
                .map(|(c, d)| (c.into_owned(), PathBuf::from(d.into_owned())));
        Ok(Freezer(Cgroup {
            path: String::new(),
            v1: v1.into_iter().collect(),
            v2: l.v2.filter(|_| l.unified),
            unified: l.unified,
        }))
    }
}

impl Summary {
    /// The container `id` under `root`, when its state file is ours, complete and in a format
    /// this binary reads; `None` otherwise (`list` shows only those, as `State::load` would).
    pub fn load(root: &Path, id: &str) -> Option<Summary> {
        let dir = super::dir(root, id);
        let data = read_state_file(&dir.join(super::STATE_FILE)).ok()?;
        let mut s: Summary = serde_json::from_slice(&data).ok()?;
        if s.state_version > STATE_VERSION {
            return None;
        }
        s.dir = dir;
        Some(s)
    }

    pub fn status(&self) -> Status {
        let cg = self.urunc.freezer.as_ref().map(|f| &f.0);
        super::status::derive(self.pid, self.pid_start, cg, &self.dir)
    }

    /// The OCI state, as `State::oci` gives it.
    pub fn oci(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
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

    /// A state saved by this binary (tests/fixtures/state-v0.json, written by urunc at
    /// e77226c, brought to this binary's format by `save`) reads back as a summary with the
    /// same values: a field renamed in `State` and not here fails this test, not `list`.
    #[test]
    fn a_saved_state_reads_back_as_its_summary() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("upgrade-fixture");
        std::fs::create_dir(&dir).unwrap();
        let old = include_bytes!("../../tests/fixtures/state-v0.json");
        let mut st = super::super::State::parse(old).unwrap().unwrap();
        st.dir = dir.clone();
        st.pid = 4242;
        st.owner = "someone".into();
        st.save().unwrap();
        let sum = Summary::load(root.path(), "upgrade-fixture").expect("summary");
        assert_eq!(sum.dir, dir);
        assert_eq!(
            (sum.id.as_str(), sum.pid, sum.pid_start, sum.owner.as_str()),
            (st.id.as_str(), 4242, st.pid_start, "someone")
        );
        assert_eq!((&sum.bundle, &sum.rootfs), (&st.bundle, &st.rootfs));
        let (freezer, cg) = (&sum.urunc.freezer.as_ref().unwrap().0, st.cgroup().unwrap());
        let want: Vec<_> = cg
            .v1
            .iter()
            .filter(|(c, _)| c == "freezer")
            .cloned()
            .collect();
        assert_eq!((freezer.v1.len(), &freezer.v1), (1, &want));
        assert_eq!(freezer.unified, cg.unified);
        for status in [Status::Running, Status::Stopped] {
            assert_eq!(sum.oci(status), st.oci(status.as_str()));
        }
    }

    #[test]
    fn foreign_newer_and_broken_files_are_not_listed() {
        let root = tempfile::tempdir().unwrap();
        let put = |id: &str, body: &str| {
            std::fs::create_dir(root.path().join(id)).unwrap();
            std::fs::write(root.path().join(id).join("state.json"), body).unwrap();
        };
        // runc's own state file, as a delegated container leaves it: no `urunc` section
        put("runc", r#"{"id":"runc","init_process_pid":1}"#);
        put("broken", "{");
        let old = include_bytes!("../../tests/fixtures/state-v0.json");
        let mut v: serde_json::Value = serde_json::from_slice(old).unwrap();
        v["stateVersion"] = (STATE_VERSION + 1).into();
        put("newer", &v.to_string());
        v["stateVersion"] = STATE_VERSION.into();
        put("ours", &v.to_string());
        for id in ["runc", "broken", "newer", "missing"] {
            assert!(Summary::load(root.path(), id).is_none(), "{id}");
        }
        assert!(Summary::load(root.path(), "ours").is_some());
    }
}
