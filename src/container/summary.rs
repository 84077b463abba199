//! What `list` needs of a state file: the OCI fields and what the status is derived from,
//! borrowed from the file's bytes. The rest of `State` (the config, the unikernel's
//! parameters, the hooks: most of the file) is skipped by the parser without being built, and
//! nothing is allocated per field, which keeps `list` cheap with many containers.

use super::files::read_state_into;
use super::state::STATE_VERSION;
use super::Status;
use crate::sandbox::cgroups::{frozen_at, may_be_frozen, Cgroup};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// A string of the file: borrowed unless it holds an escape sequence.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(Text)
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// The fields of `State` that `list` shows or derives the status from, read from the same
/// file (the field names are `State`'s: a test below checks that a saved `State` reads back).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary<'a> {
    #[serde(default)]
    pub state_version: u32,
    #[serde(borrow)]
    pub oci_version: Text<'a>,
    #[serde(borrow)]
    pub id: Text<'a>,
    pub pid: i32,
    pub pid_start: u64,
    #[serde(borrow)]
    pub bundle: Text<'a>,
    #[serde(borrow)]
    pub rootfs: Text<'a>,
    #[serde(borrow)]
    pub created: Text<'a>,
    /// Passed through as written (a JSON object of strings).
    #[serde(borrow)]
    pub annotations: &'a RawValue,
    #[serde(borrow)]
    pub owner: Text<'a>,
    /// Required: its presence tells our state files from the delegate's.
    #[serde(borrow)]
    pub urunc: Ours<'a>,
}

#[derive(Debug, Deserialize)]
pub struct Ours<'a> {
    /// The freezer of the container's cgroup, the one file of it the status needs.
    #[serde(default, borrow, rename = "cgroup")]
    pub freezer: Option<Freezer<'a>>,
}

/// Of the container's `Cgroup` (its `v1`, `v2` and `unified`), what tells where its freezer
/// is, borrowed from the file: the v1 hierarchies (one entry per mount, about ten here) stay
/// unparsed text until `dir` is asked, which the status does only for a task that may be
/// frozen (`cgroups::may_be_frozen`).
#[derive(Debug, Deserialize)]
pub struct Freezer<'a> {
    #[serde(default, borrow)]
    v1: Option<&'a RawValue>,
    #[serde(default, borrow)]
    v2: Option<Text<'a>>,
    #[serde(default)]
    pub unified: bool,
}

impl Freezer<'_> {
    /// The directory whose file tells whether the cgroup is frozen: v2's on a unified host,
    /// else the v1 hierarchy's whose controllers include the freezer.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.unified {
            return self.v2.as_ref().map(|d| PathBuf::from(&**d));
        }
        let v1: Vec<(Text, Text)> = serde_json::from_str(self.v1?.get()).ok()?;
        v1.into_iter()
            .find(|(c, _)| Cgroup::is_freezer(c))
            .map(|(_, d)| PathBuf::from(&*d))
    }
}

/// The OCI state of one container, as `State::oci` gives it (keys in the same, sorted, order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Oci<'s, 'a> {
    annotations: &'a RawValue,
    bundle: &'s str,
    created: &'s str,
    id: &'s str,
    oci_version: &'s str,
    owner: &'s str,
    pid: i32,
    rootfs: &'s str,
    status: &'static str,
}

impl<'a> Summary<'a> {
    /// The container `id` under `root`, read into `buf`, when its state file is ours,
    /// complete and in a format this binary reads; `None` otherwise (`list` shows only those,
    /// as `State::load` would).
    pub fn load(root: &Path, id: &str, buf: &'a mut Vec<u8>) -> Option<Summary<'a>> {
        let dir = super::dir(root, id);
        read_state_into(&dir.join(super::STATE_FILE), buf).ok()?;
        let s: Summary = serde_json::from_slice(buf).ok()?;
        (s.state_version <= STATE_VERSION).then_some(s)
    }

    /// The status; `dir` is the container's state directory.
    pub fn status(&self, dir: &Path) -> Status {
        let frozen = |state| {
            let f = self.urunc.freezer.as_ref();
            f.filter(|f| may_be_frozen(f.unified, state))
                .and_then(|f| Some(frozen_at(f.unified, &f.dir()?)))
                .unwrap_or(false)
        };
        super::status::derive(self.pid, self.pid_start, frozen, dir)
    }

    /// The OCI state, as `State::oci` gives it.
    pub fn oci(&self, status: Status) -> Oci<'_, 'a> {
        Oci {
            annotations: self.annotations,
            bundle: &self.bundle,
            created: &self.created,
            id: &self.id,
            oci_version: &self.oci_version,
            owner: &self.owner,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            rootfs: &self.rootfs,
            status: status.as_str(),
        }
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
        let mut buf = Vec::new();
        let sum = Summary::load(root.path(), "upgrade-fixture", &mut buf).expect("summary");
        assert_eq!(
            (&*sum.id, sum.pid, sum.pid_start, &*sum.owner),
            (st.id.as_str(), 4242, st.pid_start, "someone")
        );
        assert_eq!(
            (Path::new(&*sum.bundle), Path::new(&*sum.rootfs)),
            (st.bundle.as_path(), st.rootfs.as_path())
        );
        // the fixture's host is hybrid (v1 with a freezer hierarchy)
        let cg = st.cgroup().unwrap();
        let want = cg
            .v1
            .iter()
            .find(|(c, _)| c == "freezer")
            .map(|(_, d)| d.clone());
        let freezer = sum.urunc.freezer.as_ref().unwrap();
        assert_eq!((freezer.dir(), freezer.unified), (want.clone(), false));
        assert!(want.is_some());
        for status in [Status::Running, Status::Stopped] {
            // the same object, key for key and in the same order
            let ours = serde_json::to_string(&sum.oci(status)).unwrap();
            assert_eq!(ours, st.oci(status.as_str()).to_string());
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
        let mut buf = Vec::new();
        for id in ["runc", "broken", "newer", "missing"] {
            assert!(Summary::load(root.path(), id, &mut buf).is_none(), "{id}");
        }
        assert!(Summary::load(root.path(), "ours", &mut buf).is_some());
    }

    /// The freezer's file as cgroup v1 (freezer.state) and v2 (cgroup.events) write it,
    /// Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst and cgroup-v2.rst.
    #[test]
    fn the_freezer_is_found_and_read_on_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_str().unwrap();
        let text = format!(r#"{{"path":"/x","v1":[],"v2":"{dir}","unified":true}}"#);
        let v2: Freezer = serde_json::from_str(&text).unwrap();
        assert_eq!((v2.dir(), v2.unified), (Some(t.path().into()), true));
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert!(frozen_at(true, t.path()));
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert!(!frozen_at(true, t.path()));
        let text = format!(
            r#"{{"v1":[["cpu,cpuacct","/a"],["freezer","{dir}"]],"v2":"/u","unified":false}}"#
        );
        let v1: Freezer = serde_json::from_str(&text).unwrap();
        assert_eq!((v1.dir(), v1.unified), (Some(t.path().into()), false));
        // a hierarchy list without the freezer, or not a list at all: no directory
        for v1 in [r#"[["cpu,cpuacct","/a"]]"#, r#""oops""#, "null"] {
            let text = format!(r#"{{"v1":{v1},"unified":false}}"#);
            let f: Freezer = serde_json::from_str(&text).unwrap();
            assert_eq!(f.dir(), None, "{v1}");
        }
        std::fs::write(t.path().join("freezer.state"), "FROZEN\n").unwrap();
        assert!(frozen_at(false, t.path()));
        std::fs::write(t.path().join("freezer.state"), "THAWED\n").unwrap();
        assert!(!frozen_at(false, t.path()));
    }
}
