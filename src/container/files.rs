//! Reading and writing a container's files: atomically (temp file, rename), never through a
//! link, fsynced only where that buys durability.

use super::state::StateError;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.display().to_string();
    move |source| StateError::Io { what, path, source }
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
    if meta.len() > MAX_STATE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the state file is larger than {MAX_STATE} bytes"),
        ));
    }
    // a state file is replaced by rename, never written in place: the size fstat gave is
    // the whole of this inode, read with one read(2) and no read for EOF (`take` ends there),
    // into uninitialised capacity
    data.clear();
    data.reserve(meta.len() as usize);
    f.take(meta.len()).read_to_end(data)?;
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
}
