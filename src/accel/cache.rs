//! KVM verdicts cached under the runtime root, in `<root>/.accel/` (a name no container id can
//! take: ids never start with '.'). One small JSON file per monitor binary, valid while the
//! binary (device, inode, size, mtime) and the kernel's boot id are unchanged. The directory is
//! made and opened without following links and must be ours and not group/other-writable;
//! files are written to a fresh temp file (O_CREAT|O_EXCL|O_NOFOLLOW), fsynced and renamed.

use super::Verdict;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

pub const DIR: &str = ".accel";
/// Bumped when a probe changes meaning: older verdicts are then ignored.
const PROBE_VERSION: u32 = 1;
/// A verdict file is a few hundred bytes; anything larger is not ours.
const MAX_FILE: i64 = 16 * 1024;
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is not a private directory of this user (owner or mode): remove it")]
    Unsafe(String),
}

fn err(what: &'static str, path: impl std::fmt::Display) -> impl FnOnce(nix::Error) -> CacheError {
    let path = path.to_string();
    move |e| CacheError::Io {
        what,
        path,
        source: e.into(),
    }
}

/// What a verdict depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub probe_version: u32,
    pub monitor: String,
    pub binary: String,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub boot_id: String,
}

impl Key {
    /// The key for `binary` (the monitor binary, or /dev/kvm for the /dev/kvm probe) now.
    pub fn new(monitor: &str, binary: &Path) -> std::io::Result<Key> {
        let m = std::fs::metadata(binary)?;
        let boot_id = std::fs::read_to_string(BOOT_ID)?.trim().to_string();
        Ok(Key {
            probe_version: PROBE_VERSION,
            monitor: monitor.into(),
            binary: binary.display().to_string(),
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_sec: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            boot_id,
        })
    }

    /// The file name: the monitor and a hash of the binary's path (FNV-1a, 64 bits).
    pub fn file_name(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.binary.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}-{h:016x}.json", self.monitor)
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: Key,
    kvm: bool,
    reason: String,
}

/// Opens (making it if needed) `<root>/.accel`, refusing a link or a directory that is not
/// ours alone.
pub fn open_dir(root: &Path) -> Result<OwnedFd, CacheError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(root)
        .map_err(|source| CacheError::Io {
            what: "create runtime root",
            path: root.display().to_string(),
            source,
        })?;
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let rfd = nix::fcntl::open(root, dir, Mode::empty()).map_err(err("open", root.display()))?;
    let rfd = owned(rfd);
    let path = root.join(DIR);
    match mkdirat(Some(rfd.as_raw_fd()), DIR, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::Error::EEXIST) => {}
        Err(e) => return Err(err("create", path.display())(e)),
    }
    let dfd = openat(
        Some(rfd.as_raw_fd()),
        DIR,
        dir | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(err("open", path.display()))?;
    let dfd = owned(dfd);
    let st = fstat(dfd.as_raw_fd()).map_err(err("stat", path.display()))?;
    if st.st_uid != nix::unistd::geteuid().as_raw() || st.st_mode & 0o022 != 0 {
        return Err(CacheError::Unsafe(path.display().to_string()));
    }
    Ok(dfd)
}

fn owned(fd: i32) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` was just returned by open(2)/openat(2) and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The cached verdict for `key`, if there is a valid one.
pub fn load(root: &Path, key: &Key) -> Option<Verdict> {
    let dir = open_dir(root).ok()?;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = owned(
        openat(
            Some(dir.as_raw_fd()),
            key.file_name().as_str(),
            flags,
            Mode::empty(),
        )
        .ok()?,
    );
    let st = fstat(fd.as_raw_fd()).ok()?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG
        || st.st_size > MAX_FILE
    {
        return None;
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_FILE as u64)
        .read_to_string(&mut text)
        .ok()?;
    let e: Entry = serde_json::from_str(&text).ok()?;
    (e.key == *key).then_some(Verdict {
        kvm: e.kvm,
        reason: e.reason,
    })
}

/// Stores `v` for `key`, atomically.
pub fn store(root: &Path, key: &Key, v: &Verdict) -> Result<(), CacheError> {
    let dir = open_dir(root)?;
    let name = key.file_name();
    let tmp = format!(".{name}.{}", std::process::id());
    let data = serde_json::to_vec(&Entry {
        key: key.clone(),
        kvm: v.kvm,
        reason: v.reason.clone(),
    })
    .unwrap_or_default();
    let path = root.join(DIR).join(&name);
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let d = dir.as_raw_fd();
    // a temp file left by a process that died with our pid: remove it once, then exclusive
    let _ = nix::unistd::unlinkat(
        Some(d),
        tmp.as_str(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    let fd = openat(
        Some(d),
        tmp.as_str(),
        flags,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(err("create", path.display()))?;
    let mut f = std::fs::File::from(owned(fd));
    let res = f
        .write_all(&data)
        .and_then(|()| f.sync_all())
        .map_err(|source| CacheError::Io {
            what: "write",
            path: path.display().to_string(),
            source,
        })
        .and_then(|()| {
            renameat(Some(d), tmp.as_str(), Some(d), name.as_str())
                .map_err(err("rename into", path.display()))
        });
    if res.is_err() {
        let _ = nix::unistd::unlinkat(
            Some(d),
            tmp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    res
}
