//! Idmapped bind mounts (the new mount API: `open_tree`, `mount_setattr`, `move_mount`) for
//! the monitor's view: a detached copy of a mount whose files appear with their owners mapped
//! through the monitor's user namespace (`monitor_ns`), attached inside the view.

use super::pivot::PivotError;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn sys(step: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> PivotError {
    let path = path.display().to_string();
    move |source| PivotError::Sys { step, path, source }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

// The new mount API's numbers are the same on x86_64 and aarch64.
const SYS_OPEN_TREE: libc::c_long = 428;
const SYS_MOVE_MOUNT: libc::c_long = 429;
const SYS_MOUNT_SETATTR: libc::c_long = 442;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MOUNT_ATTR_RDONLY: u64 = 1;
const MOUNT_ATTR_NOSUID: u64 = 2;
const MOUNT_ATTR_NODEV: u64 = 4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// A detached copy of the mount of `src` whose files appear with their owners mapped through
/// the user namespace `ns` (on-disk uid 0 is the namespace's 0: the monitor's host uid).
pub fn idmap_tree(src: &OwnedFd, ns: &OwnedFd, ro: bool) -> nix::Result<OwnedFd> {
    let empty = c"";
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint
        | AT_RECURSIVE;
    // SAFETY: an fd we own, a NUL-terminated empty path, integer flags.
    let tree = unsafe { libc::syscall(SYS_OPEN_TREE, src.as_raw_fd(), empty.as_ptr(), flags) };
    if tree < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP
            | MOUNT_ATTR_NOSUID
            | MOUNT_ATTR_NODEV
            | if ro { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    // SAFETY: a detached mount fd we own, an empty path, a valid mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            SYS_MOUNT_SETATTR,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(tree)
}

/// Attaches a detached mount at `target`.
pub fn attach(tree: &OwnedFd, target: &Path) -> Result<(), PivotError> {
    let t = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| sys("path", target)(nix::Error::EINVAL))?;
    // SAFETY: fds we own and NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::syscall(
            SYS_MOVE_MOUNT,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(sys("attach", target)(nix::Error::last()));
    }
    Ok(())
}
