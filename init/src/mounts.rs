//! The filesystems a program expects, and the block volumes urunc asks for.

use crate::config::Block;
use crate::sys;
use std::path::Path;

const NOSUID: libc::c_ulong = libc::MS_NOSUID;
const NODEV: libc::c_ulong = libc::MS_NODEV;
const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;

/// Mounts one filesystem, creating the mount point; an already mounted target is fine.
fn mount_fs(
    src: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), String> {
    let _ = std::fs::create_dir_all(target);
    match sys::mount(src, target, fstype, flags, data) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
        Err(e) => Err(format!("mount {fstype} on {target}: {e}")),
    }
}

/// /proc, /sys, /dev (devtmpfs) with /dev/pts and /dev/shm, /tmp, /run. Returns the errors
/// (none is fatal: the program may not need the one that failed).
pub fn basic() -> Vec<String> {
    let mut errs = Vec::new();
    let list: [(&str, &str, &str, libc::c_ulong, &str); 7] = [
        ("proc", "/proc", "proc", NOSUID | NODEV | NOEXEC, ""),
        ("sysfs", "/sys", "sysfs", NOSUID | NODEV | NOEXEC, ""),
        ("devtmpfs", "/dev", "devtmpfs", NOSUID, "mode=0755"),
        (
            "devpts",
            "/dev/pts",
            "devpts",
            NOSUID | NOEXEC,
            "mode=0620,ptmxmode=0666",
        ),
        ("shm", "/dev/shm", "tmpfs", NOSUID | NODEV, "mode=1777"),
        ("tmpfs", "/tmp", "tmpfs", NOSUID | NODEV, "mode=1777"),
        ("tmpfs", "/run", "tmpfs", NOSUID | NODEV, "mode=0755"),
    ];
    for (src, target, fstype, flags, data) in list {
        if let Err(e) = mount_fs(src, target, fstype, flags, data) {
            errs.push(e);
        }
    }
    for (link, to) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(to, link);
    }
    errs
}

/// The /dev node of the virtio-blk disk whose serial is `id`.
fn find_disk(id: &str) -> Option<String> {
    for e in std::fs::read_dir("/sys/block").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let serial = std::fs::read_to_string(e.path().join("serial")).unwrap_or_default();
        if serial.trim() == id {
            return Some(format!("/dev/{name}"));
        }
    }
    None
}

/// Filesystems the kernel can mount from a block device, from /proc/filesystems.
pub fn block_fstypes() -> Vec<String> {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Mounts each volume (waiting briefly for its disk to appear); the first error is fatal.
pub fn volumes(blocks: &[Block], debug: bool) -> Result<Vec<String>, String> {
    let mut mounted = Vec::new();
    for b in blocks {
        let mut dev = None;
        for _ in 0..100 {
            dev = find_disk(&b.id);
            if dev.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let dev = dev.ok_or_else(|| format!("no block device with serial {:?}", b.id))?;
        if !Path::new(&b.mount_point).is_absolute() {
            return Err(format!("mount point {:?} is not absolute", b.mount_point));
        }
        let _ = std::fs::create_dir_all(&b.mount_point);
        let mut last = String::from("no block filesystem is available");
        let ok =
            block_fstypes()
                .iter()
                .any(|fs| match sys::mount(&dev, &b.mount_point, fs, 0, "") {
                    Ok(()) => true,
                    // a read-only disk (the container's `ro` volume): mount it read-only
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EROFS))
                            && sys::mount(&dev, &b.mount_point, fs, libc::MS_RDONLY, "")
                                .is_ok() =>
                    {
                        true
                    }
                    Err(e) => {
                        last = format!("{fs}: {e}");
                        false
                    }
                });
        if !ok {
            return Err(format!(
                "mount {dev} ({}) on {}: {last}",
                b.id, b.mount_point
            ));
        }
        if debug {
            eprintln!("urunit: mounted {dev} on {}", b.mount_point);
        }
        mounted.push(b.mount_point.clone());
    }
    Ok(mounted)
}
