//! Files root creates in a directory another uid can write (the container's work directory,
//! `<root>/<id>/work`, owned by the monitor's user). Nothing is ever opened there by path: the
//! directory is opened once without following a link (`O_DIRECTORY|O_NOFOLLOW`), each file is
//! created through that fd with `O_CREAT|O_EXCL|O_NOFOLLOW` (a name planted beforehand, link or
//! not, makes the create fail instead of being followed), and ownership is given with
//! `fchown` on the new file's own fd. The directories above the work directory are root's
//! (the state root and `<root>/<id>`, 0711), so the uid cannot swap the work directory itself.

pub use crate::sys::read_capped;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// A directory held by fd.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A single path component: a name, never a path (no `/`, not `.` or `..`, not empty).
fn check_name(name: &str) -> std::io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        ));
    }
    Ok(())
}

/// `fchown`, tolerating EPERM when not root (rootless: the ids are the user namespace's and
/// `userns::chown_dir` maps the state directory later).
fn chown_fd(fd: impl AsFd, uid: u32, gid: u32) -> std::io::Result<()> {
    match nix::unistd::fchown(fd.as_fd().as_raw_fd(), Some(uid.into()), Some(gid.into())) {
        Ok(()) => Ok(()),
        Err(nix::Error::EPERM) if !nix::unistd::geteuid().is_root() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Dir {
    /// Opens `path` as a directory; its last component must not be a symlink.
    pub fn open(path: &Path) -> std::io::Result<Dir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir { fd: owned(fd) })
    }

    /// Makes `name` (mode `mode`, a fresh directory: it must not exist) inside this one, owned
    /// by `uid:gid` through its fd.
    pub fn make_dir(&self, name: &str, mode: u32, uid: u32, gid: u32) -> std::io::Result<Dir> {
        check_name(name)?;
        nix::sys::stat::mkdirat(
            Some(self.fd.as_raw_fd()),
            name,
            Mode::from_bits_truncate(mode),
        )?;
        let fd = nix::fcntl::openat(
            Some(self.fd.as_raw_fd()),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let d = Dir { fd: owned(fd) };
        // mkdirat applied the umask; the mode is set on the fd, not by path
        nix::sys::stat::fchmod(d.fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
        chown_fd(&d.fd, uid, gid)?;
        Ok(d)
    }

    /// Creates the new file `name` (mode 0600) owned by `uid:gid`. An existing entry of that
    /// name (a planted symlink included) is an error, never followed.
    pub fn create(&self, name: &str, uid: u32, gid: u32) -> std::io::Result<File> {
        check_name(name)?;
        let fd = nix::fcntl::openat(
            Some(self.fd.as_raw_fd()),
            name,
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| {
            let e = std::io::Error::from(e);
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                std::io::Error::new(
                    e.kind(),
                    format!("{name} already exists in the work directory: another process put it there; delete the container and create it again"),
                )
            } else {
                e
            }
        })?;
        let f = File::from(owned(fd));
        chown_fd(&f, uid, gid)?;
        Ok(f)
    }

    /// `create` and write `contents`. Never fsynced, nor are `copy_new`'s files: the monitor
    /// reads them in this boot (from the page cache), and after a crash nothing reads them
    /// again (`delete --force` removes the work directory whole).
    pub fn write_new(
        &self,
        name: &str,
        contents: &[u8],
        uid: u32,
        gid: u32,
    ) -> std::io::Result<()> {
        let mut f = self.create(name, uid, gid)?;
        f.write_all(contents)
    }

    /// `create` and copy `src` (an open file) into it; returns the new file.
    pub fn copy_new(
        &self,
        name: &str,
        src: &mut File,
        uid: u32,
        gid: u32,
    ) -> std::io::Result<File> {
        let mut f = self.create(name, uid, gid)?;
        std::io::copy(src, &mut f)?;
        Ok(f)
    }
}

/// Splits `path` (a file of the work directory) into its directory, opened without following a
/// link, and its name.
pub fn parent_of(path: &Path) -> std::io::Result<(Dir, String)> {
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    };
    let parent = path.parent().ok_or_else(bad)?;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
    Ok((Dir::open(parent)?, name.to_string()))
}

/// Writes the new file `path` (see `Dir::create`).
pub fn write_new(path: &Path, contents: &[u8], uid: u32, gid: u32) -> std::io::Result<()> {
    let (dir, name) = parent_of(path)?;
    dir.write_new(&name, contents, uid, gid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_planted_link_is_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, b"secret").unwrap();
        let work = d.path().join("work");
        std::fs::create_dir(&work).unwrap();
        std::os::unix::fs::symlink(&target, work.join("urunit.conf")).unwrap();
        let e = write_new(&work.join("urunit.conf"), b"X", 0, 0).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
        assert!(e.to_string().contains("urunit.conf already exists"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"secret");
        // the work directory itself swapped for a link: refused (ELOOP or ENOTDIR)
        let moved = d.path().join("moved");
        std::fs::rename(&work, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &work).unwrap();
        assert!(write_new(&work.join("fresh"), b"X", 0, 0).is_err());
        assert!(!moved.join("fresh").exists());
    }

    #[test]
    fn new_files_are_0600_and_owned_by_the_given_ids() {
        let d = tempfile::tempdir().unwrap();
        let root = Dir::open(d.path()).unwrap();
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let w = root.make_dir("work", 0o700, uid, gid).unwrap();
        let m = std::fs::metadata(d.path().join("work")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o700);
        w.write_new("a", b"abc", uid, gid).unwrap();
        let m = std::fs::metadata(d.path().join("work/a")).unwrap();
        assert_eq!((m.mode() & 0o777, m.uid(), m.len()), (0o600, uid, 3));
        assert!(w.create("../escape", uid, gid).is_err());
        assert!(w.create("", uid, gid).is_err());
        assert!(root.make_dir("work", 0o700, uid, gid).is_err());
    }

    #[test]
    fn reads_are_capped() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), vec![b'x'; 11]).unwrap();
        let mut f = File::open(d.path().join("f")).unwrap();
        assert!(read_capped(&mut f, 10, "f").is_err());
        let mut f = File::open(d.path().join("f")).unwrap();
        assert_eq!(read_capped(&mut f, 11, "f").unwrap().len(), 11);
    }
}
