//! The guest's root filesystem in urunc's priority order (reference 7.1): the initrd, a block
//! image at `/`, the container rootfs as a block device, virtio-fs, 9p, none; and the volumes
//! that go with it. Pure decisions: nothing is changed on the host here (see `takeover`).

use super::binds::{BindMount, InitrdFile};
use super::mountinfo::{self, MountEntry};
use crate::plan::{BlockDev, SharedFs, SharedFsKind, StorageCaps};
use std::path::{Path, PathBuf};

/// What a guest type can take (`Guest::storage`); an unknown type, nothing.
pub fn caps(guest: &str) -> StorageCaps {
    crate::guest::lookup(guest).map_or(
        StorageCaps {
            block: false,
            fs: &[],
        },
        |g| g.storage(),
    )
}

/// A block-device filesystem mounted on the host that the guest takes over: unmounted at
/// create, mounted back by delete.
#[derive(Debug, Clone, PartialEq)]
pub struct Takeover {
    pub mount: MountEntry,
    /// Index in `Selection::blocks`.
    pub block: usize,
}

#[derive(Debug, Default)]
pub struct Selection {
    pub blocks: Vec<BlockDev>,
    pub shared_fs: Option<SharedFs>,
    pub initrd_files: Vec<InitrdFile>,
    pub takeovers: Vec<Takeover>,
    /// Files copied into a block-device rootfs before it is unmounted (urunc's behaviour).
    pub copy_into_rootfs: Vec<BindMount>,
}

pub struct Request<'a> {
    pub guest: &'a str,
    pub monitor: &'a str,
    pub rootfs: &'a Path,
    pub initrd: bool,
    pub mount_rootfs: bool,
    /// From the `block`/`blkMntPoint` annotations (`plan::annotation_blocks`).
    pub annotation_blocks: Vec<BlockDev>,
    pub binds: Vec<(usize, BindMount)>,
    /// The virtiofsd binary, when it is installed.
    pub virtiofsd: Option<PathBuf>,
    /// Read only when a path's filesystem matters (a block-device rootfs or volume).
    pub mounts: &'a mountinfo::Table,
}

const NO_ROOTFS: &str =
    "can not use the container rootfs as the sandbox's guest rootfs through block or shared-fs";

pub fn select(r: Request) -> Result<Selection, super::StorageError> {
    let caps = caps(r.guest);
    let mut s = Selection::default();
    if r.initrd {
        s.initrd_files = r
            .binds
            .iter()
            .map(|(_, b)| InitrdFile {
                source: b.source.clone(),
                destination: b.destination.clone(),
            })
            .collect();
        return Ok(s);
    }
    let root_image = r.annotation_blocks.iter().any(|b| b.mount_point == "/");
    if root_image {
        if !caps.block {
            return Err(super::StorageError::Unsupported(format!(
                "unikernel type {} cannot boot from a block image (block annotation with blkMntPoint \"/\")",
                r.guest
            )));
        }
        s.blocks = r.annotation_blocks;
        volumes(&mut s, &r.binds, r.mounts.text()?, &caps);
        return Ok(s);
    }
    if r.mount_rootfs {
        if caps.block {
            let mounts = r.mounts.text()?;
            if let Some(m) = mountinfo::block_mount_at(mounts, r.rootfs) {
                if caps.fs.contains(&m.fstype.as_str()) {
                    s.blocks.push(BlockDev {
                        id: "rootfs".into(),
                        source: PathBuf::from(&m.source),
                        mount_point: "/".into(),
                        fstype: m.fstype.clone(),
                        read_only: false,
                        fd: None,
                    });
                    s.takeovers.push(Takeover { mount: m, block: 0 });
                    s.copy_into_rootfs = r
                        .binds
                        .iter()
                        .filter(|(_, b)| b.source.is_file())
                        .map(|(_, b)| b.clone())
                        .collect();
                    volumes(&mut s, &r.binds, mounts, &caps);
                    return Ok(s);
                }
            }
        }
        let binds: Vec<BindMount> = r.binds.into_iter().map(|(_, b)| b).collect();
        let fs = crate::monitor::declaration(r.monitor).shared_fs;
        let virtio = fs.contains(&SharedFsKind::Virtiofs);
        if caps.fs.contains(&"virtiofs") && virtio && r.virtiofsd.is_some() {
            return Err(super::StorageError::Unsupported(format!(
                "virtio-fs rootfs: urunc does not start virtiofsd yet; uninstall {} or use qemu (9p)",
                r.virtiofsd.unwrap_or_default().display()
            )));
        }
        if caps.fs.contains(&"9pfs") && fs.contains(&SharedFsKind::NineP) {
            s.shared_fs = Some(SharedFs {
                kind: SharedFsKind::NineP,
                path: r.rootfs.to_path_buf(),
                socket: None,
                binds,
            });
            return Ok(s);
        }
        return Err(super::StorageError::Unsupported(NO_ROOTFS.into()));
    }
    s.blocks = r.annotation_blocks;
    Ok(s)
}

/// Bind mounts whose source is the mount point of a block-device filesystem the guest can
/// read become extra disks, `vol<index in spec.mounts>`, mounted at their destination.
fn volumes(s: &mut Selection, binds: &[(usize, BindMount)], mounts: &str, caps: &StorageCaps) {
    for (i, b) in binds {
        let Some(m) = mountinfo::block_mount_at(mounts, &b.source) else {
            continue;
        };
        if !caps.fs.contains(&m.fstype.as_str()) {
            continue;
        }
        s.blocks.push(BlockDev {
            id: format!("vol{i}"),
            source: PathBuf::from(&m.source),
            mount_point: b.destination.clone(),
            fstype: m.fstype.clone(),
            read_only: b.read_only,
            fd: None,
        });
        s.takeovers.push(Takeover {
            mount: m,
            block: s.blocks.len() - 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mountinfo line (format of proc(5)).
    fn entry(at: &str, source: &str, fstype: &str) -> String {
        format!("30 1 7:0 / {at} rw shared:9 - {fstype} {source} rw\n")
    }

    fn table(lines: &[String]) -> mountinfo::Table {
        mountinfo::Table::from_text(lines.concat())
    }

    fn req<'a>(guest: &'a str, monitor: &'a str, mounts: &'a mountinfo::Table) -> Request<'a> {
        Request {
            guest,
            monitor,
            rootfs: Path::new("/b/rootfs"),
            initrd: false,
            mount_rootfs: true,
            annotation_blocks: Vec::new(),
            binds: vec![(
                2,
                BindMount {
                    source: "/vol".into(),
                    destination: "/data".into(),
                    read_only: true,
                    recursive: true,
                    nosuid: false,
                    nodev: false,
                    noexec: false,
                },
            )],
            virtiofsd: None,
            mounts,
        }
    }

    #[test]
    fn urunc_priority_order() {
        // initrd first: bind mounts go into the initrd copy, nothing else
        let s = select(Request {
            initrd: true,
            ..req("linux", "qemu", &table(&[]))
        })
        .unwrap();
        assert_eq!(s.initrd_files.len(), 1);
        assert!(s.blocks.is_empty() && s.shared_fs.is_none());
        // nothing there needs a path's filesystem: the host's mount table is not read
        let lazy = mountinfo::Table::lazy();
        select(Request {
            initrd: true,
            ..req("linux", "qemu", &lazy)
        })
        .unwrap();
        assert!(!lazy.is_read());
        // a directory rootfs: 9p on QEMU, an error where no shared filesystem exists
        let s = select(req("linux", "qemu", &table(&[]))).unwrap();
        let fs = s.shared_fs.unwrap();
        assert_eq!((fs.kind, fs.binds.len()), (SharedFsKind::NineP, 1));
        let e = select(req("linux", "firecracker", &table(&[]))).unwrap_err();
        assert!(
            e.to_string().contains("can not use the container rootfs"),
            "{e}"
        );
        // a block image at / wins over mountRootfs
        let img = BlockDev {
            id: "rootfs".into(),
            source: "/b/rootfs/disk.img".into(),
            mount_point: "/".into(),
            fstype: String::new(),
            read_only: false,
            fd: None,
        };
        let s = select(Request {
            annotation_blocks: vec![img.clone()],
            ..req("linux", "qemu", &table(&[]))
        })
        .unwrap();
        assert_eq!(s.blocks, vec![img.clone()]);
        assert!(select(Request {
            annotation_blocks: vec![img],
            ..req("hermit", "qemu", &table(&[]))
        })
        .is_err());
        // a block-device rootfs and a block-backed volume (needs a real block device node)
        if !mountinfo::is_block_device("/dev/loop0") || !mountinfo::is_block_device("/dev/loop1") {
            return;
        }
        let m = [
            entry("/b/rootfs", "/dev/loop0", "ext4"),
            entry("/vol", "/dev/loop1", "ext4"),
        ];
        let s = select(req("linux", "qemu", &table(&m))).unwrap();
        assert_eq!(s.blocks.len(), 2);
        assert_eq!(
            (s.blocks[0].id.as_str(), s.blocks[0].mount_point.as_str()),
            ("rootfs", "/")
        );
        assert_eq!(
            (s.blocks[1].id.as_str(), s.blocks[1].read_only),
            ("vol2", true)
        );
        assert_eq!(s.takeovers.len(), 2);
        // an unsupported filesystem, or a device mounted twice, falls back to sharing
        let m2 = [entry("/b/rootfs", "/dev/loop0", "xfs")];
        assert!(select(req("linux", "qemu", &table(&m2)))
            .unwrap()
            .shared_fs
            .is_some());
        let m3 = [m[0].clone(), entry("/elsewhere", "/dev/loop0", "ext4")];
        assert!(select(req("linux", "qemu", &table(&m3)))
            .unwrap()
            .shared_fs
            .is_some());
    }
}
