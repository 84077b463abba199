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
    pub urunc: Ours,
}

#[derive(Debug, Deserialize)]
pub struct Ours {
    /// The freezer of the container's cgroup, the one file of it the status needs.
    #[serde(default, rename = "cgroup")]
    pub freezer: Option<Freezer>,
}

/// Of the container's `Cgroup` (its `v1`, `v2` and `unified`), the directory whose file tells
/// whether it is frozen: the v1 hierarchies (one entry per mount, about ten here) are read
/// past, only the freezer's kept.
#[derive(Debug, PartialEq)]
pub struct Freezer {
    pub dir: Option<PathBuf>,
    pub unified: bool,
}

impl<'de> Deserialize<'de> for Freezer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// `v1`'s list of [controllers, directory], keeping the freezer's directory only.
        struct V1(Option<PathBuf>);
        impl<'de> Deserialize<'de> for V1 {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Seq;
                impl<'de> serde::de::Visitor<'de> for Seq {
                    type Value = V1;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a list of [controllers, directory]")
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<V1, A::Error> {
                        let mut found = None;
                        while let Some((c, d)) = seq.next_element::<(Text, Text)>()? {
                            if found.is_none() && Cgroup::is_freezer(&c) {
                                found = Some(PathBuf::from(&*d));
                            }
                        }
                        Ok(V1(found))
                    }
                }
                d.deserialize_seq(Seq)
            }
        }
        #[derive(Deserialize)]
        struct Lite {
            #[serde(default)]
            v1: Option<V1>,
            #[serde(default)]
            v2: Option<PathBuf>,
            #[serde(default)]
            unified: bool,
        }
        let l = Lite::deserialize(d)?;
        let dir = if l.unified {
            l.v2
        } else {
            l.v1.and_then(|v| v.0)
        };
        Ok(Freezer {
            dir,
            unified: l.unified,
        })
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
                .and_then(|f| Some(frozen_at(f.unified, f.dir.as_deref()?)))
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
        assert_eq!((&freezer.dir, freezer.unified), (&want, false));
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
        let v2: Freezer = serde_json::from_str(&format!(
            r#"{{"path":"/x","v1":[],"v2":"{dir}","unified":true}}"#
        ))
        .unwrap();
        assert_eq!(
            v2,
            Freezer {
                dir: Some(t.path().into()),
                unified: true
            }
        );
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert!(frozen_at(true, t.path()));
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert!(!frozen_at(true, t.path()));
        let v1: Freezer = serde_json::from_str(&format!(
            r#"{{"v1":[["cpu,cpuacct","/a"],["freezer","{dir}"]],"v2":"/u","unified":false}}"#
        ))
        .unwrap();
        assert_eq!(
            v1,
            Freezer {
                dir: Some(t.path().into()),
                unified: false
            }
        );
        std::fs::write(t.path().join("freezer.state"), "FROZEN\n").unwrap();
        assert!(frozen_at(false, t.path()));
        std::fs::write(t.path().join("freezer.state"), "THAWED\n").unwrap();
        assert!(!frozen_at(false, t.path()));
    }
}
