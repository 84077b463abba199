//! `state.json`: what `create` decided, frozen for the later commands. Written atomically
//! (temp file, rename) in `<root>/<id>/`, mode 0700; fsynced before the rename unless the
//! directory is on a memory filesystem (`write_atomic`).

use crate::config::Config;
use crate::sandbox::cgroups::Cgroup;
use crate::unikernel::UnikernelConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The format of `state.json` this binary writes. 0 (the field absent) is the format of the
/// releases before the field existed, which this binary still reads; raise it when a change
/// is not readable by the previous release, and keep reading the older formats (an edge node
/// upgrades urunc while its containers run: tests/upgrade.rs).
pub const STATE_VERSION: u32 = 1;

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

    /// Re-reads the state file of this container (another process may have written it).
    pub fn reload(&mut self) -> Result<(), StateError> {
        let root = self.dir.parent().unwrap_or(Path::new("/"));
        *self = State::load(root, &self.id)?;
        Ok(())
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

/// Bound on state.json (hooks and annotations included; a few KiB in practice).
const MAX_STATE: u64 = 16 << 20;

/// Reads state.json without following a link and never blocking on a FIFO: in a container with
/// a user namespace its directory belongs to that namespace's root. One read into a buffer of
/// the file's size (a growing buffer costs a read and a reallocation per doubling).
pub(super) fn read_state_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    read_state_into(path, &mut data)?;
    Ok(data)
}

/// `read_state_file` into `data` (cleared first), whose allocation a caller reading many
/// files reuses.
pub(super) fn read_state_into(path: &Path, data: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let f = std::fs::File::from(crate::sys::open_cloexec(&c, flags)?);
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let too_big = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the state file is larger than {MAX_STATE} bytes"),
        )
    };
    if meta.len() > MAX_STATE {
        return Err(too_big());
    }
    data.clear();
    // one spare byte: the read that returns 0 needs room, or read_to_end grows the buffer
    data.reserve(meta.len() as usize + 1);
    f.take(MAX_STATE + 1).read_to_end(data)?;
    if data.len() as u64 > MAX_STATE {
        return Err(too_big());
    }
    Ok(())
}

/// Whether an fsync of `f` can make anything more durable. On tmpfs and ramfs, where engines
/// keep runtime state (`/run`), it cannot: the data never reaches a disk and is gone at the
/// next boot whatever we do. The filesystem is asked through the open file, so the answer is
/// about the very directory written to, whatever is mounted where.
fn on_disk(f: &std::fs::File) -> bool {
    match nix::sys::statfs::fstatfs(f) {
        // statfs(2)'s f_type values, from linux/magic.h: TMPFS_MAGIC 0x01021994,
        // RAMFS_MAGIC 0x858458f6
        Ok(s) => ![0x0102_1994, 0x8584_58f6].contains(&s.filesystem_type().0),
        Err(_) => true,
    }
}

/// How much a write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// State that `delete --force` reads after a crash (state.json, the journal): fsynced
    /// before the rename, unless on a memory filesystem.
    Crash,
    /// Atomic for readers (temp file + rename) but never fsynced: facts that a crash makes
    /// void anyway, such as the pid in `--pid-file` (the process dies with the host).
    Volatile,
}

/// Writes `path` atomically: a temp file in the same directory, rename; fsynced before the
/// rename only where that buys durability (`Durability::Crash` on a disk filesystem).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    write_atomic_as(path, data, mode, Durability::Crash)
}

pub fn write_atomic_as(
    path: &Path,
    data: &[u8],
    mode: u32,
    durability: Durability,
) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let res = (|| {
        // never through a link: the state directory of a container with a user namespace
        // belongs to that namespace's root (`userns::chown_dir`), which could plant one
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        crate::fault::point(write_point(&name)).map_err(std::io::Error::other)?;
        if durability == Durability::Crash && on_disk(&f) {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io("write", path))
}

/// The fault-injection point between writing the temp file and renaming it (a kill there
/// leaves the old file in place and a stray temp file), named after the file and the process.
fn write_point(name: &str) -> &'static str {
    let create = crate::fault::in_creator();
    match (name, create) {
        (super::journal::JOURNAL, _) => "write:create.json",
        (super::STATE_FILE, true) => "create:write:state.json",
        (super::STATE_FILE, false) => "container:write:state.json",
        ("plan.json", _) => "container:write:plan.json",
        (_, true) => "create:write:other",
        (_, false) => "container:write:other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_never_follows_a_planted_temp_link() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let tmp = d.path().join(format!(".state.json.{}", std::process::id()));
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        write_atomic(&d.path().join("state.json"), b"{}", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert_eq!(std::fs::read(d.path().join("state.json")).unwrap(), b"{}");
        assert!(!tmp.exists());
    }

    /// The fsync policy asks the filesystem of the file itself: a file on a tmpfs (found in
    /// mountinfo, a source independent of statfs) is not on disk, one on the test's temp
    /// directory is unless mountinfo says that is a memory filesystem too.
    #[test]
    fn fsync_is_skipped_on_memory_filesystems_only() {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let fstype_of = |p: &Path| {
            // the longest mount point that contains p (field 5; fstype after the " - ")
            let p = std::fs::canonicalize(p).unwrap();
            let mut best: Option<(usize, String)> = None;
            for line in mountinfo.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                let sep = f.iter().position(|x| *x == "-").unwrap();
                if p.starts_with(f[4]) && best.as_ref().is_none_or(|b| f[4].len() >= b.0) {
                    best = Some((f[4].len(), f[sep + 1].to_string()));
                }
            }
            best.unwrap().1
        };
        let d = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(d.path().join("x")).unwrap();
        let memory = |t: &str| t == "tmpfs" || t == "ramfs";
        assert_eq!(on_disk(&f), !memory(&fstype_of(d.path())));
        if fstype_of(Path::new("/dev/shm")) == "tmpfs" {
            let f = tempfile::tempfile_in("/dev/shm").unwrap();
            assert!(!on_disk(&f));
        }
    }

    #[test]
    fn parse_tells_foreign_from_corrupt() {
        assert!(State::parse(b"{\"ociVersion\":\"1\"}").unwrap().is_none());
        assert!(State::parse(b"{\"urunc\":{}}").is_err());
        assert!(State::parse(b"{\"urunc\":null}").is_err());
        assert!(State::parse(b"[1]").is_err());
        assert!(State::parse(b"not json").is_err());
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
