//! The container's bind mounts (`spec.mounts` of type `bind`, or with a `bind`/`rbind`
//! option), as the guest receives them: files (and directories) appended to the initrd copy,
//! bind mounts inside a shared rootfs, or block devices (see `select`).

use super::error::{sys, StorageError};
pub use crate::plan::{BindMount, InitrdFile};
use crate::spec::Mount;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The bind mounts of the spec, in order, with their index in `spec.mounts` (block volumes are
/// named `vol<index>`, as urunc names them). Relative sources are relative to the bundle.
pub fn from_spec(mounts: &[Mount], bundle: &Path) -> Vec<(usize, BindMount)> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            m.typ.as_deref() == Some("bind")
                || m.options.iter().any(|o| o == "bind" || o == "rbind")
        })
        .filter_map(|(i, m)| {
            let src = PathBuf::from(m.source.as_deref()?);
            let source = if src.is_absolute() {
                src
            } else {
                bundle.join(src)
            };
            let has = |o: &str| m.options.iter().any(|x| x == o);
            Some((
                i,
                BindMount {
                    source,
                    destination: m.destination.clone(),
                    read_only: has("ro"),
                    recursive: has("rbind"),
                    nosuid: has("nosuid"),
                    nodev: has("nodev"),
                    noexec: has("noexec"),
                },
            ))
        })
        .collect()
}

/// Bind-mounts each of `binds` into `root` (the container rootfs as the guest will see it over
/// a shared filesystem), in the current mount namespace. Mount points that do not exist are
/// created; a symlink on the way is refused (it could lead out of the rootfs). The mount goes
/// onto the checked mount point by its fd, never by its path again.
pub fn mount_into(root: &Path, binds: &[BindMount]) -> Result<(), StorageError> {
    use nix::mount::{mount, MsFlags};
    for b in binds {
        let target = target_in(root, &b.destination, b.source.is_dir())?;
        let on = target.proc_path();
        let mut flags = MsFlags::MS_BIND;
        if b.recursive {
            flags |= MsFlags::MS_REC;
        }
        mount(
            Some(&b.source),
            on.as_str(),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(sys(format!(
            "bind mount {} on {}",
            b.source.display(),
            b.destination
        )))?;
        let mut extra = MsFlags::empty();
        for (on, f) in [
            (b.read_only, MsFlags::MS_RDONLY),
            (b.nosuid, MsFlags::MS_NOSUID),
            (b.nodev, MsFlags::MS_NODEV),
            (b.noexec, MsFlags::MS_NOEXEC),
        ] {
            if on {
                extra |= f;
            }
        }
        if !extra.is_empty() {
            // the new mount sits on top of the handle's dentry: reach it by path from the
            // handle of the parent, which cannot have changed (it is held open)
            let f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
            let top = target
                .mounted()
                .map_err(sys(format!("open the mount on {}", b.destination)))?;
            let top = format!("/proc/self/fd/{}", top.as_raw_fd());
            mount(None::<&str>, top.as_str(), None::<&str>, f, None::<&str>)
                .map_err(sys(format!("remount {} with its options", b.destination)))?;
        }
    }
    Ok(())
}

/// A mount point inside the rootfs, held by fd from the moment it was checked.
#[derive(Debug)]
pub struct Target {
    fd: OwnedFd,
    parent: OwnedFd,
    name: std::ffi::OsString,
}

impl Target {
    /// The path of the checked object itself (a magic link to this very inode).
    pub fn proc_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    /// The checked name opened again from its held parent, without following a link: after a
    /// mount on it, the mount's root.
    fn mounted(&self) -> nix::Result<OwnedFd> {
        use nix::fcntl::OFlag;
        nix::fcntl::openat(
            Some(self.parent.as_raw_fd()),
            self.name.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(owned)
    }

    /// Opens the checked file for writing (truncated); it must be a regular file.
    pub fn open_write(&self) -> std::io::Result<std::fs::File> {
        let st = nix::sys::stat::fstat(self.fd.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.proc_path())
    }
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and nothing else owns it.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
}

/// The names of a path inside the container (`None`: empty, or with a `..`).
fn inside(destination: &str) -> Option<Vec<std::ffi::OsString>> {
    let rel = Path::new(destination);
    let mut comps = Vec::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => comps.push(n.to_owned()),
            std::path::Component::ParentDir => return None,
            _ => {}
        }
    }
    (!comps.is_empty()).then_some(comps)
}

/// `destination` inside `root`, created (a directory, or an empty file when `dir` is false)
/// when missing; every existing component must be a real directory, not a symlink. The walk
/// goes from fd to fd (`O_PATH|O_NOFOLLOW`), so nothing can be swapped in behind a check.
pub fn target_in(root: &Path, destination: &str, dir: bool) -> Result<Target, StorageError> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{fstat, mkdirat, Mode};
    let bad = |why: String| StorageError::Destination {
        destination: destination.to_string(),
        why,
    };
    let Some(comps) = inside(destination) else {
        return Err(bad(" is not a path inside the container".into()));
    };
    let path_fl = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let err = |what: &str, e: nix::Error| StorageError::Sys {
        what: format!("mount destination {destination:?}: {what}"),
        source: e,
    };
    let mut cur = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(owned)
    .map_err(|e| err("open the container rootfs", e))?;
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let cur_raw = Some(cur.as_raw_fd());
        let fd = match openat(cur_raw, c.as_os_str(), path_fl, Mode::empty()) {
            Ok(fd) => owned(fd),
            Err(nix::Error::ENOENT) if last && !dir => openat(
                cur_raw,
                c.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | path_fl.difference(OFlag::O_PATH),
                Mode::from_bits_truncate(0o644),
            )
            .map(owned)
            .map_err(|e| err("create the mount point", e))?,
            Err(nix::Error::ENOENT) => {
                mkdirat(cur_raw, c.as_os_str(), Mode::from_bits_truncate(0o755))
                    .map_err(|e| err("create the mount point", e))?;
                openat(
                    cur_raw,
                    c.as_os_str(),
                    path_fl | OFlag::O_DIRECTORY,
                    Mode::empty(),
                )
                .map(owned)
                .map_err(|e| err("open the mount point", e))?
            }
            Err(e) => return Err(err("open", e)),
        };
        let kind = fstat(fd.as_raw_fd()).map_err(|e| err("stat", e))?.st_mode & libc::S_IFMT;
        if kind == libc::S_IFLNK {
            return Err(bad(" goes through a symlink in the container rootfs".into()));
        }
        if !last && kind != libc::S_IFDIR {
            return Err(bad(format!(": {} is not a directory", c.to_string_lossy())));
        }
        if last {
            return Ok(Target {
                fd,
                parent: cur,
                name: c.clone(),
            });
        }
        cur = fd;
    }
    unreachable!("comps is not empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_bind_mounts_only() {
        let m: Vec<Mount> = serde_json::from_str(
            r#"[{"destination":"/proc","type":"proc","source":"proc"},
                {"destination":"/etc/hosts","type":"bind","source":"/h/hosts","options":["rbind","ro"]},
                {"destination":"/data","source":"data","options":["bind","nosuid"]}]"#,
        )
        .unwrap();
        let b = from_spec(&m, Path::new("/b"));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].0, 1);
        assert!(b[0].1.read_only && b[0].1.recursive);
        assert_eq!(b[1].1.source, PathBuf::from("/b/data"));
        assert!(b[1].1.nosuid && !b[1].1.read_only);
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        assert!(target_in(d.path(), "/link/x", false).is_err());
        assert!(target_in(d.path(), "/../x", false).is_err());
        let t = target_in(d.path(), "/a/b/file", false).unwrap();
        assert!(d.path().join("a/b/file").is_file() && d.path().join("a/b").is_dir());
        // the handle stays on the checked file even when the path is swapped afterwards
        std::fs::rename(d.path().join("a/b"), d.path().join("a/c")).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("a/b")).unwrap();
        use std::io::Write;
        t.open_write().unwrap().write_all(b"x").unwrap();
        assert_eq!(std::fs::read(d.path().join("a/c/file")).unwrap(), b"x");
        assert!(target_in(d.path(), "/a/b/file", false).is_err());
    }
}
