//! Builds the monitor's filesystem view ([`super::view::View`]) in the forked monitor, still
//! privileged, right before the identity change: a private mount namespace, a fresh tmpfs
//! holding only the view's entries, `pivot_root` into it, the old root detached, the tmpfs made
//! read-only. What is not in the view does not exist for the monitor: no `/etc`, no other
//! container's state, no host socket. Firecracker's jailer builds its chroot the same way
//! (bind mounts and `mknod` of the devices into a fresh tree, then `pivot_root`).
//!
//! Sources are opened (`O_PATH`) before anything is mounted, without following links a
//! container's user could plant: paths in the rootfs resolve inside it (`RESOLVE_IN_ROOT`),
//! paths in the state directory (the work dir) must be free of links (`RESOLVE_NO_SYMLINKS`);
//! only the remaining host paths (libraries, firmware, the monitor binary: root's files) may be
//! links. Devices are fresh nodes owned by the monitor, never the host's node (a `chmod` on a
//! bind-mounted node would change the host's); where `mknod` is not allowed (a user namespace)
//! the host node is bind-mounted instead, which that user cannot change either.

use super::idmap::{attach, idmap_tree};
use super::view::{Entry, Kind, View};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PivotError {
    #[error("cannot open {path} for the monitor's view: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot build the monitor's view: {step} {path}: {source}")]
    Sys {
        step: &'static str,
        path: String,
        source: nix::Error,
    },
}

fn sys(step: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> PivotError {
    let path = path.display().to_string();
    move |source| PivotError::Sys { step, path, source }
}

const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn openat2(dir: libc::c_int, path: &Path, resolve: u64) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `how` is a valid open_how of the size passed; `c` is NUL-terminated and outlives
    // the call; the returned fd is owned by nobody else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens an entry's source as an `O_PATH` handle: inside the rootfs resolved in it, inside
/// the state directory beneath it without any link, elsewhere (root's files) as the host has it.
fn open_source(
    view: &View,
    rootfs: &OwnedFd,
    state: (&OwnedFd, &Path),
    src: &Path,
) -> std::io::Result<OwnedFd> {
    let dot = |rel: &Path| {
        if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel.to_path_buf()
        }
    };
    if let Ok(rel) = src.strip_prefix(&view.rootfs) {
        return openat2(
            rootfs.as_raw_fd(),
            &dot(rel),
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        );
    }
    if let Ok(rel) = src.strip_prefix(state.1) {
        return openat2(
            state.0.as_raw_fd(),
            &dot(rel),
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
        );
    }
    openat2(libc::AT_FDCWD, src, RESOLVE_NO_MAGICLINKS)
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Builds the view and pivots into it. With `idmap` (the monitor's user namespace), the binds
/// of the rootfs, the state directory and every writable path show their files through it
/// (`monitor_ns`); when a writable one sits on a filesystem without idmapped mounts (overlayfs
/// on current kernels), the namespace is not used: returns whether it is. `owners` own the
/// device nodes: `.0` with the namespace (the leased host ids), `.1` without.
pub fn mount_view(
    view: &View,
    state_dir: &Path,
    owners: ((u32, u32), (u32, u32)),
    idmap: Option<&OwnedFd>,
) -> Result<bool, PivotError> {
    let slash = Path::new("/");
    // the sources are opened in the new namespace: bind mounts take only its own mounts
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(sys("unshare", slash))?;
    mount(
        None::<&str>,
        slash,
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(sys("make private", slash))?;
    let sources = open_sources(view, state_dir)?;
    let proc = Path::new("/proc");
    let proc_fd = openat2(libc::AT_FDCWD, proc, 0).map_err(open_err(proc))?;
    // The state dir (root's, or the rootless user's) is the mount point: nobody else can
    // plant anything on the way, and the mount is invisible outside this namespace.
    let base = state_dir;
    mount(
        Some("tmpfs"),
        base,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0755,size=1m,nr_inodes=4096"),
    )
    .map_err(sys("mount tmpfs on", base))?;
    let mappable = |e: &Entry| {
        e.kind == Kind::ReadWrite
            || (e.kind == Kind::ReadOnly
                && (e.source.starts_with(&view.rootfs) || e.source.starts_with(state_dir)))
    };
    let idmap = idmap.filter(|ns| {
        let ok = sources
            .iter()
            .filter(|(e, _)| e.kind == Kind::ReadWrite)
            .all(|(_, fd)| idmap_tree(fd, ns, false).is_ok());
        if !ok {
            log::warn!("the monitor keeps uid 0: a writable path of it is on a filesystem without idmapped mounts");
        }
        ok
    });
    let owner = if idmap.is_some() { owners.0 } else { owners.1 };
    for (e, fd) in &sources {
        let target = base.join(e.target.strip_prefix("/").unwrap_or(&e.target));
        place(e.kind, fd, &target, owner, idmap.filter(|_| mappable(e)))?;
    }
    mount_proc(base, &proc_fd)?;
    drop(sources);
    enter(base)?;
    Ok(idmap.is_some())
}

fn open_err(path: &Path) -> impl FnOnce(std::io::Error) -> PivotError {
    let path = path.display().to_string();
    move |source| PivotError::Open { path, source }
}

/// Opens every entry's source (a missing optional one is left out).
fn open_sources<'a>(
    view: &'a View,
    state_dir: &Path,
) -> Result<Vec<(&'a Entry, OwnedFd)>, PivotError> {
    let rootfs = openat2(libc::AT_FDCWD, &view.rootfs, RESOLVE_NO_MAGICLINKS)
        .map_err(open_err(&view.rootfs))?;
    let state =
        openat2(libc::AT_FDCWD, state_dir, RESOLVE_NO_MAGICLINKS).map_err(open_err(state_dir))?;
    let mut sources = Vec::new();
    for e in &view.entries {
        match open_source(view, &rootfs, (&state, state_dir), &e.source) {
            Ok(fd) => sources.push((e, fd)),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) && !e.required => {}
            Err(err) => return Err(open_err(&e.source)(err)),
        }
    }
    Ok(sources)
}

/// Makes `base` the root (`pivot_root(".", ".")`, the old root detached), read-only.
fn enter(base: &Path) -> Result<(), PivotError> {
    let slash = Path::new("/");
    nix::unistd::chdir(base).map_err(sys("chdir", base))?;
    nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root", base))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach the old root", slash))?;
    nix::unistd::chdir(slash).map_err(sys("chdir", slash))?;
    mount(
        None::<&str>,
        slash,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID,
        None::<&str>,
    )
    .map_err(sys("make read-only", slash))
}

fn mkdirs(dir: &Path) -> Result<(), PivotError> {
    std::fs::create_dir_all(dir).map_err(|e| PivotError::Sys {
        step: "mkdir",
        path: dir.display().to_string(),
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// Creates the mount point (or node) at `target` inside the fresh tmpfs and mounts the source.
fn place(
    kind: Kind,
    fd: &OwnedFd,
    target: &Path,
    owner: (u32, u32),
    idmap: Option<&OwnedFd>,
) -> Result<(), PivotError> {
    if let Some(parent) = target.parent() {
        mkdirs(parent)?;
    }
    let meta = std::fs::metadata(fd_path(fd)).map_err(|e| PivotError::Open {
        path: target.display().to_string(),
        source: e,
    })?;
    if kind == Kind::Device && meta.file_type().is_char_device() && make_node(&meta, target, owner)?
    {
        return Ok(());
    }
    if meta.is_dir() {
        mkdirs(target)?;
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .map_err(|e| PivotError::Open {
                path: target.display().to_string(),
                source: e,
            })?;
    }
    // read-only files the filesystem cannot idmap are read through their "other" bits
    if let Some(tree) = idmap.and_then(|ns| idmap_tree(fd, ns, kind == Kind::ReadOnly).ok()) {
        return attach(&tree, target);
    }
    mount(
        Some(&fd_path(fd)),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("bind", target))?;
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | locked(target);
    if kind == Kind::ReadOnly {
        flags |= MsFlags::MS_RDONLY;
    }
    if kind != Kind::Device {
        flags |= MsFlags::MS_NODEV;
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(sys("remount", target))
}

/// A fresh node of the host device `meta` at `target`, owned by `owner`; `false` where the
/// caller may not make device nodes (a user namespace): the host's is then bound instead.
fn make_node(
    meta: &std::fs::Metadata,
    target: &Path,
    owner: (u32, u32),
) -> Result<bool, PivotError> {
    let everyone = matches!(
        (libc::major(meta.rdev()), libc::minor(meta.rdev())),
        (1, 3) | (1, 5) | (1, 8) | (1, 9)
    );
    let perm = Mode::from_bits_truncate(if everyone { 0o666 } else { 0o600 });
    match nix::sys::stat::mknod(target, SFlag::S_IFCHR, perm, meta.rdev()) {
        Ok(()) => {}
        Err(nix::Error::EPERM) => return Ok(false),
        Err(e) => return Err(sys("mknod", target)(e)),
    }
    // the node is ours, in our own tmpfs: no one else can swap it
    nix::unistd::chown(target, Some(owner.0.into()), Some(owner.1.into()))
        .map_err(sys("chown", target))?;
    nix::sys::stat::fchmodat(
        None,
        target,
        perm,
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .map_err(sys("chmod", target))?;
    Ok(true)
}

/// The flags a remount must keep (in a user namespace, they are locked).
fn locked(target: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(target) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut m = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
    ] {
        if f.contains(a) {
            m |= b;
        }
    }
    m
}

/// A procfs of the monitor's own PID namespace showing processes only (`subset=pid`), and only
/// those it may ptrace (`hidepid=invisible`); where a fresh procfs cannot be mounted (a user
/// namespace with a masked `/proc`), the current one, which Landlock then narrows to the
/// monitor's own `/proc/<pid>`.
fn mount_proc(base: &Path, host_proc: &OwnedFd) -> Result<(), PivotError> {
    let target = base.join("proc");
    mkdirs(&target)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let fresh = mount(
        Some("proc"),
        &target,
        Some("proc"),
        flags,
        Some("subset=pid,hidepid=invisible"),
    );
    if fresh.is_ok() {
        return Ok(());
    }
    mount(
        Some(&fd_path(host_proc)),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("bind /proc on", &target))
}
