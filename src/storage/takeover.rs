//! Handing host block devices to the monitor. A filesystem the guest takes over (the
//! container's rootfs snapshot, a block-backed volume) is unmounted in the caller's mount
//! namespace at create, *before* the container's own namespace copies it, and the device is
//! then opened with `O_EXCL`: that open fails while the filesystem is still mounted anywhere
//! (another namespace holds it), so the guest never writes under a live host filesystem, and
//! nothing can mount it while the guest runs. The fd goes to QEMU (`-add-fd`), so the monitor
//! needs neither access to the device node nor a Landlock rule for it. `delete` mounts the
//! filesystem back where it was (`storage.json` in the state directory records it).

use super::error::{io, sys, StorageError};
use super::mountinfo::{self, MountEntry};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

pub const RECORD: &str = "storage.json";

/// A mount to put back on delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restore {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub mount_options: String,
    pub super_options: String,
}

impl From<&MountEntry> for Restore {
    fn from(m: &MountEntry) -> Self {
        Restore {
            source: m.source.clone(),
            target: m.mount_point.display().to_string(),
            fstype: m.fstype.clone(),
            mount_options: m.mount_options.clone(),
            super_options: m.super_options.clone(),
        }
    }
}

/// The flags and data of `mount(2)` that recreate a mount from its mountinfo options.
fn mount_args(r: &Restore) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags;
    let mut flags = MsFlags::empty();
    for o in r.mount_options.split(',') {
        flags |= match o {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "sync" => MsFlags::MS_SYNCHRONOUS,
            _ => MsFlags::empty(),
        };
    }
    let data: Vec<&str> = r
        .super_options
        .split(',')
        .filter(|o| !matches!(*o, "rw" | "ro" | ""))
        .collect();
    (flags, data.join(","))
}

pub fn remount(r: &Restore) -> Result<(), StorageError> {
    let mounts = mountinfo::Table::lazy();
    let text = mounts.text().unwrap_or("");
    if mountinfo::at(text, Path::new(&r.target)).is_some_and(|m| m.source() == r.source) {
        return Ok(());
    }
    let (flags, data) = mount_args(r);

    // the monitor may take a moment to release the device after it is killed
    for _ in 0..50 {
        match nix::mount::mount(
            Some(r.source.as_str()),
            r.target.as_str(),
            Some(r.fstype.as_str()),
            flags,
            Some(data.as_str()),
        ) {
            Ok(()) => return Ok(()),
            Err(nix::Error::EBUSY) => {}
            Err(e) => return Err(sys(format!("mount {} back on {}", r.source, r.target))(e)),
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(StorageError::StillBusy {
        source_dev: r.source.clone(),
        target: r.target.clone(),
    })
}

/// Unmounts `m` and opens its device exclusively (read-only when `read_only`).
pub fn take(m: &MountEntry, read_only: bool) -> Result<OwnedFd, StorageError> {
    nix::mount::umount(&m.mount_point).map_err(sys(format!(
        "cannot unmount {} ({}) to give it to the guest",
        m.mount_point.display(),
        m.source
    )))?;
    open_device(&m.source, read_only, true).map_err(|e| {
        let _ = remount(&Restore::from(m));
        if e.raw_os_error() == Some(libc::EBUSY) {
            StorageError::StillMounted {
                device: m.source.clone(),
            }
        } else {
            io(format!("open {}", m.source))(e)
        }
    })
}

/// Opens a block device or image for the monitor.
pub fn open_device(path: &str, read_only: bool, excl: bool) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(!read_only);
    let mut flags = libc::O_CLOEXEC;
    if excl {
        flags |= libc::O_EXCL;
    }
    o.custom_flags(flags);
    Ok(o.open(path)?.into())
}

/// Writes the record of what delete must mount back.
pub fn record(dir: &Path, list: &[Restore]) -> Result<(), StorageError> {
    let data = serde_json::to_vec(list).unwrap_or_default();
    crate::container::write_atomic(&dir.join(RECORD), &data, 0o600).map_err(StorageError::Record)
}

/// At delete: mounts back every filesystem the guest took over. Errors are returned for the
/// log; the remaining entries are still tried.
pub fn release(dir: &Path) -> Vec<StorageError> {
    let Ok(data) = std::fs::read(dir.join(RECORD)) else {
        return Vec::new();
    };
    let list: Vec<Restore> = serde_json::from_slice(&data).unwrap_or_default();
    list.iter().filter_map(|r| remount(r).err()).collect()
}

/// fd number as the monitor inherits it.
pub fn raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_flags_and_data() {
        let r = Restore {
            source: "/dev/loop0".into(),
            target: "/r".into(),
            fstype: "ext4".into(),
            mount_options: "ro,nosuid,relatime".into(),
            super_options: "rw,errors=remount-ro".into(),
        };
        let (f, d) = mount_args(&r);
        use nix::mount::MsFlags;
        assert_eq!(
            f,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_RELATIME
        );
        assert_eq!(d, "errors=remount-ro");
    }
}
