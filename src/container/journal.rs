//! The create journal (`<root>/<id>/create.json`): what a `create` of ours is about to set up,
//! rewritten atomically *before* each step that leaves something on the host (cgroups, the
//! container process, the network wiring; block-device takeovers keep their own record,
//! `storage.json`, written before the unmount). A `create` killed at any point leaves a state
//! directory whose journal names everything it may have made, so `delete --force` removes it
//! all, even without `state.json`; a directory without a journal is never ours.
//!
//! The directory is born with its journal: it is made under a temporary hidden name (ids never
//! start with '.'), the journal is written into it, and it is renamed into place with
//! `RENAME_NOREPLACE`, so two creates of one id still have exactly one winner and no
//! `<root>/<id>` of ours ever exists without its journal.

use super::files::write_atomic;
use super::state::StateError;
use crate::sandbox::cgroups::Cgroup;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const JOURNAL: &str = "create.json";
/// Prefix of the temporary names directories are made under (`.new-<pid>-<start>`).
const TEMP_PREFIX: &str = ".new-";
/// A journal is a few hundred bytes; anything larger is not one of ours.
const MAX_JOURNAL: u64 = 64 * 1024;

/// A process named by pid and start time (a recycled pid is someone else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

impl Proc {
    pub fn me() -> Option<Proc> {
        let pid = std::process::id() as i32;
        Some(Proc {
            pid,
            start: super::process_start_time(pid)?,
        })
    }

    pub fn of(pid: i32) -> Option<Proc> {
        Some(Proc {
            pid,
            start: super::process_start_time(pid)?,
        })
    }

    pub fn alive(&self) -> bool {
        super::process_start_time(self.pid) == Some(self.start)
    }
}

/// The network wiring the container process will make: its tap and the redirect filters in
/// `netns`, marked with the container process as owner (`net::cleanup_intent`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetIntent {
    pub netns: PathBuf,
    pub tap: String,
    pub static_mode: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub id: String,
    /// The `create` process itself.
    pub creator: Proc,
    /// Written before the directories are made.
    pub cgroup: Option<Cgroup>,
    /// The container process, written as soon as it exists.
    pub child: Option<Proc>,
    /// Written before the container process is told to set up the network.
    pub net: Option<NetIntent>,
}

impl Journal {
    /// Makes `<root>/<id>` (0711) holding a fresh journal; fails with `Exists` if the id is
    /// taken. Stale temporary directories of killed creates are swept first.
    pub fn begin(root: &Path, id: &str) -> Result<(PathBuf, Journal), StateError> {
        let io = |what: &'static str, p: &Path| {
            let path = p.display().to_string();
            move |source| StateError::Io { what, path, source }
        };
        super::State::create_root(root)?;
        sweep(root);
        let me = Proc::me().ok_or_else(|| {
            io("read the start time of", Path::new("/proc/self"))(std::io::Error::from(
                std::io::ErrorKind::NotFound,
            ))
        })?;
        let j = Journal {
            id: id.to_string(),
            creator: me,
            cgroup: None,
            child: None,
            net: None,
        };
        let tmp = root.join(format!("{TEMP_PREFIX}{}-{}", me.pid, me.start));
        std::fs::DirBuilder::new()
            .mode(0o711)
            .create(&tmp)
            .map_err(io("create state directory", &tmp))?;
        let dir = super::dir(root, id);
        let placed = j.record(&tmp).and_then(|()| {
            match rename_noreplace(&tmp, &dir) {
                // a filesystem without RENAME_NOREPLACE: make the directory, then the journal
                // (a create killed in between leaves an empty directory, which is not ours)
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    std::fs::DirBuilder::new()
                        .mode(0o711)
                        .create(&dir)
                        .map_err(io("create state directory", &dir))?;
                    j.record(&dir).inspect_err(|_| {
                        let _ = std::fs::remove_dir_all(&dir);
                    })
                }
                r => r.map_err(io("create state directory", &dir)),
            }
        });
        // gone already when it was renamed into place
        let _ = std::fs::remove_dir_all(&tmp);
        match placed {
            Ok(()) => Ok((dir, j)),
            Err(e) => match e {
                StateError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    Err(StateError::Exists)
                }
                e => Err(e),
            },
        }
    }

    /// Rewrites the journal in `dir` (atomically).
    pub fn record(&self, dir: &Path) -> Result<(), StateError> {
        let data = serde_json::to_vec(self).expect("journal serializes");
        write_atomic(&dir.join(JOURNAL), &data, 0o600)
    }

    /// The journal in `dir`: `Ok(None)` when there is none (the directory is not ours).
    pub fn load(dir: &Path) -> Result<Option<Journal>, StateError> {
        let path = dir.join(JOURNAL);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path);
        let mut f = match f {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    what: "read",
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let mut data = Vec::new();
        let read = f
            .metadata()
            .and_then(|m| {
                if m.is_file() && m.len() <= MAX_JOURNAL {
                    Ok(())
                } else {
                    Err(std::io::Error::other(
                        "not a regular file of at most 64 KiB",
                    ))
                }
            })
            .and_then(|()| (&mut f).take(MAX_JOURNAL + 1).read_to_end(&mut data));
        read.map_err(|source| StateError::Io {
            what: "read",
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| StateError::Corrupt {
                path: path.display().to_string(),
                source,
            })
    }
}

/// Removes the temporary directories of creates that were killed between making theirs and
/// renaming it into place (their maker, named in the directory's name, is gone).
pub fn sweep(root: &Path) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
            continue;
        };
        let maker = rest.split_once('-').and_then(|(p, s)| {
            Some(Proc {
                pid: p.parse().ok()?,
                start: s.parse().ok()?,
            })
        });
        if maker.is_some_and(|m| !m.alive()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// `renameat2(RENAME_NOREPLACE)`: fails with `EEXIST` if `to` exists (even an empty directory,
/// which plain rename would replace).
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call; the
    // syscall only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_born_with_its_journal_and_has_one_winner() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let (dir, j) = Journal::begin(&root, "c1").unwrap();
        assert_eq!(dir, root.join("c1"));
        assert_eq!(Journal::load(&dir).unwrap(), Some(j.clone()));
        assert!(matches!(
            Journal::begin(&root, "c1"),
            Err(StateError::Exists)
        ));
        // an empty directory of that name is taken too (plain rename would replace it)
        std::fs::create_dir(root.join("c2")).unwrap();
        assert!(matches!(
            Journal::begin(&root, "c2"),
            Err(StateError::Exists)
        ));
        assert_eq!(Journal::load(&root.join("c2")).unwrap(), None);
        // no temporary directory is left by the loser
        let names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    #[test]
    fn stale_temporary_directories_are_swept_live_ones_kept() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let me = Proc::me().unwrap();
        let live = root.join(format!("{TEMP_PREFIX}{}-{}", me.pid, me.start));
        // pid 1's start time is never u64::MAX: its maker is gone
        let stale = root.join(format!("{TEMP_PREFIX}1-{}", u64::MAX));
        std::fs::create_dir(&live).unwrap();
        std::fs::create_dir(&stale).unwrap();
        sweep(root);
        assert!(live.exists());
        assert!(!stale.exists());
    }

    #[test]
    fn oversized_or_linked_journals_are_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("big"), vec![b' '; 70 * 1024]).unwrap();
        std::os::unix::fs::symlink(t.path().join("big"), t.path().join(JOURNAL)).unwrap();
        assert!(Journal::load(t.path()).is_err(), "followed a symlink");
        std::fs::remove_file(t.path().join(JOURNAL)).unwrap();
        std::fs::rename(t.path().join("big"), t.path().join(JOURNAL)).unwrap();
        assert!(Journal::load(t.path()).is_err(), "read an oversized file");
    }
}
