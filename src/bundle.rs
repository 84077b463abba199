//! Paths named by an image, resolved inside the container rootfs: `openat2(RESOLVE_IN_ROOT)`
//! treats `..` and absolute symlinks as if the rootfs were `/`, so an image can never make the
//! monitor read a host file. `..` in the annotation itself is refused outright.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{what} path {path:?} must be absolute inside the container rootfs, without \"..\"")]
    BadPath { what: &'static str, path: String },
    #[error("{what} {path:?} not found in the container rootfs {rootfs}: {source}")]
    Resolve {
        what: &'static str,
        path: String,
        rootfs: String,
        source: std::io::Error,
    },
    #[error("{what} {path:?} in the container rootfs is not a regular file")]
    NotFile { what: &'static str, path: String },
    #[error("cannot read {what} {path:?} in the container rootfs: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_IN_ROOT: u64 = 0x10;

fn openat2(dir: &OwnedFd, path: &Path, flags: i32, resolve: u64) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `how` is a valid open_how of the size passed; `c` is NUL-terminated and outlives
    // the call; the returned fd (if any) is owned by nobody else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Resolves `path` (an image path such as `/unikernel/kernel`) inside `rootfs`, and returns the
/// host path of the regular file it names (a path without symlinks; see `reopen`).
pub fn resolve_file(rootfs: &Path, path: &str, what: &'static str) -> Result<PathBuf, BundleError> {
    open_file(rootfs, path, what).map(|(_, p)| p)
}

/// Resolves `path` inside `rootfs` as `resolve_file` does and opens it for reading: the file
/// the handle reads is the one that was checked (a regular file; FIFOs and devices are refused
/// before they are opened for reading). Also returns its host path.
pub fn open_file(
    rootfs: &Path,
    path: &str,
    what: &'static str,
) -> Result<(std::fs::File, PathBuf), BundleError> {
    let p = Path::new(path);
    if path.is_empty() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(BundleError::BadPath {
            what,
            path: path.into(),
        });
    }
    let err = |source| BundleError::Resolve {
        what,
        path: path.into(),
        rootfs: rootfs.display().to_string(),
        source,
    };
    let root: OwnedFd = nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    // SAFETY: the fd was just returned by open and nothing else owns it.
    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
    .map_err(|e| err(e.into()))?;
    let rel = p.strip_prefix("/").unwrap_or(p);
    let handle = match openat2(
        &root,
        rel,
        libc::O_PATH,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // kernels before 5.6 (and qemu-user) lack openat2: walk the path ourselves
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let real = walk_in_root(rootfs, rel).map_err(err)?;
            nix::fcntl::open(
                &real,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_NOFOLLOW
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            // SAFETY: the fd was just returned by open and nothing else owns it.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .map_err(|e| err(e.into()))?
        }
        Err(e) => return Err(err(e)),
    };
    let file = reopen_handle(&handle, false).map_err(|e| match e {
        None => BundleError::NotFile {
            what,
            path: path.into(),
        },
        Some(e) => err(e),
    })?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(err)?;
    Ok((file, real))
}

/// Opens the regular file an `O_PATH` handle names for reading. `Err(None)`: not a regular file.
fn reopen_handle(h: &OwnedFd, write: bool) -> Result<std::fs::File, Option<std::io::Error>> {
    let st = nix::sys::stat::fstat(h.as_raw_fd()).map_err(|e| Some(e.into()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(None);
    }
    // the magic link names this very inode, whatever happened to the path since
    std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .open(format!("/proc/self/fd/{}", h.as_raw_fd()))
        .map_err(Some)
}

/// Reads the regular file `path` of the image (resolved as `open_file` does), at most `cap`
/// bytes: a bigger file is an error, not a truncated read.
pub fn read_file(
    rootfs: &Path,
    path: &str,
    what: &'static str,
    cap: u64,
) -> Result<Vec<u8>, BundleError> {
    let (mut f, _) = open_file(rootfs, path, what)?;
    crate::sys::read_capped(&mut f, cap, what).map_err(|source| BundleError::Read {
        what,
        path: path.into(),
        source,
    })
}

/// The names in the directory `path` of the image, resolved inside `rootfs` (an absolute
/// symlink such as `/lib -> /usr/lib` stays in the image). `None` when it is missing or not a
/// directory.
pub fn list_dir(rootfs: &Path, path: &str) -> Option<Vec<String>> {
    let root: OwnedFd = std::fs::File::open(rootfs).ok()?.into();
    let rel = Path::new(path);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    let dir = match openat2(
        &root,
        rel,
        libc::O_PATH | libc::O_DIRECTORY,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(d) => d,
        // kernels before 5.6 (and qemu-user): the equivalent walk, then no link at the end
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let p = walk_in_root(rootfs, rel).ok()?;
            nix::fcntl::open(
                &p,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_NOFOLLOW
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok()
            // SAFETY: a freshly opened fd that nothing else owns.
            .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })?
        }
        Err(_) => return None,
    };
    let rd = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
    Some(
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
    )
}

/// Opens again, for reading, a host path `resolve_file` returned: no component may be a
/// symlink now (the path had none when it was resolved, so one planted since is refused), and
/// it must still be a regular file (never a FIFO, so this does not block).
pub fn reopen(path: &Path) -> std::io::Result<std::fs::File> {
    reopen_with(path, false)
}

/// `reopen`, for reading and writing when `write` (a block image the monitor inherits).
pub fn reopen_with(path: &Path, write: bool) -> std::io::Result<std::fs::File> {
    let cwd: OwnedFd = std::fs::File::open("/")?.into();
    let rel = path.strip_prefix("/").unwrap_or(path);
    let h = match openat2(&cwd, rel, libc::O_PATH, RESOLVE_NO_SYMLINKS) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let fd = nix::fcntl::open(
                path,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_NOFOLLOW
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            // SAFETY: the fd was just returned by open and nothing else owns it.
            let h = unsafe { OwnedFd::from_raw_fd(fd) };
            // O_NOFOLLOW covers the last component only: the path the kernel reached must be
            // the one asked for (it is canonical), else a link was followed on the way
            let real = std::fs::read_link(format!("/proc/self/fd/{}", h.as_raw_fd()))?;
            if real != path {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} leads through a symbolic link now", path.display()),
                ));
            }
            h
        }
        r => r?,
    };
    reopen_handle(&h, write).map_err(|e| {
        e.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            )
        })
    })
}

/// The same resolution as `RESOLVE_IN_ROOT`, component by component: `..` stops at the root
/// and symlinks (absolute ones from the root) are followed inside it.
fn walk_in_root(rootfs: &Path, rel: &Path) -> std::io::Result<PathBuf> {
    let root = std::fs::canonicalize(rootfs)?;
    let mut todo: Vec<std::ffi::OsString> = rel
        .components()
        .rev()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut cur = root.clone();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        match c.to_str() {
            Some("/") | Some(".") => continue,
            Some("..") => {
                if cur != root {
                    cur.pop();
                }
                continue;
            }
            _ => {}
        }
        let next = cur.join(&c);
        let meta = std::fs::symlink_metadata(&next)?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = std::fs::read_link(&next)?;
            if target.is_absolute() {
                cur = root.clone();
            }
            todo.extend(target.components().rev().map(|c| c.as_os_str().to_owned()));
        } else {
            cur = next;
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_inside_and_never_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::write(root.join("boot/vmlinuz"), b"k").unwrap();
        std::os::unix::fs::symlink("/boot/vmlinuz", root.join("kernel")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", root.join("evil2")).unwrap();
        let real = resolve_file(&root, "/kernel", "kernel").unwrap();
        assert_eq!(real, root.canonicalize().unwrap().join("boot/vmlinuz"));
        // absolute and relative symlinks out of the root stay inside it, where nothing exists
        assert!(matches!(
            resolve_file(&root, "/evil", "kernel"),
            Err(BundleError::Resolve { .. })
        ));
        assert!(matches!(
            resolve_file(&root, "/evil2", "kernel"),
            Err(BundleError::Resolve { .. })
        ));
        let e = resolve_file(&root, "../../etc/shadow", "initrd").unwrap_err();
        assert!(matches!(e, BundleError::BadPath { .. }), "{e}");
        assert!(matches!(
            resolve_file(&root, "/boot", "kernel"),
            Err(BundleError::NotFile { .. })
        ));
        // the fallback walk agrees with openat2
        let canon = root.canonicalize().unwrap();
        assert_eq!(
            walk_in_root(&root, Path::new("kernel")).unwrap(),
            canon.join("boot/vmlinuz")
        );
        assert_eq!(
            walk_in_root(&root, Path::new("evil")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        assert_eq!(
            walk_in_root(&root, Path::new("evil2")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), b"inside").unwrap();
        assert_eq!(
            walk_in_root(&root, Path::new("evil2")).unwrap(),
            canon.join("etc/passwd")
        );
        assert_eq!(
            resolve_file(&root, "/evil", "kernel").unwrap(),
            canon.join("etc/passwd")
        );
        // a directory listed through an absolute link stays in the image
        std::os::unix::fs::symlink("/etc", root.join("etclink")).unwrap();
        assert_eq!(
            list_dir(&root, "/etclink").unwrap(),
            vec!["passwd".to_string()]
        );
        assert!(list_dir(&root, "/kernel").is_none());
        // read_file: bounded, and a FIFO is refused without blocking
        assert!(read_file(&root, "/etc/passwd", "f", 5).is_err());
        assert_eq!(read_file(&root, "/etc/passwd", "f", 6).unwrap(), b"inside");
        nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read_file(&root, "/fifo", "f", 10),
            Err(BundleError::NotFile { .. })
        ));
        // reopen refuses a path that gained a symlink since it was resolved
        let boot = canon.join("boot/vmlinuz");
        assert!(reopen(&boot).is_ok());
        {
            use std::io::Write;
            reopen_with(&boot, true).unwrap().write_all(b"K").unwrap();
        }
        assert_eq!(std::fs::read(&boot).unwrap(), b"K");
        std::fs::rename(root.join("boot"), root.join("boot2")).unwrap();
        std::os::unix::fs::symlink(root.join("boot2"), root.join("boot")).unwrap();
        assert!(reopen(&boot).is_err());
    }
}
