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
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
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
/// host path of the regular file it names.
pub fn resolve_file(rootfs: &Path, path: &str, what: &'static str) -> Result<PathBuf, BundleError> {
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
    let root = std::fs::File::open(rootfs).map_err(err)?;
    let root: OwnedFd = root.into();
    let rel = p.strip_prefix("/").unwrap_or(p);
    let real = match openat2(
        &root,
        rel,
        libc::O_PATH,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(err)?,
        // kernels before 5.6 (and qemu-user) lack openat2: walk the path ourselves
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            walk_in_root(rootfs, rel).map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    let meta = std::fs::metadata(&real).map_err(err)?;
    if !meta.is_file() {
        return Err(BundleError::NotFile {
            what,
            path: path.into(),
        });
    }
    Ok(real)
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
    }
}
